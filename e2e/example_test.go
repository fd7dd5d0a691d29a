package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gok8s/gok8s/e2e"
)

func ExamplePoll() {
	tries := 0
	err := e2e.Poll(context.Background(), time.Second, func(context.Context) error {
		tries++
		if tries < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	fmt.Println(tries, err)
	// Output: 3 <nil>
}

func ExamplePermanent() {
	tries := 0
	err := e2e.Poll(context.Background(), time.Minute, func(context.Context) error {
		tries++
		return e2e.Permanent(errors.New("the process exited"))
	})
	fmt.Println(tries, err)
	// Output: 1 the process exited
}
