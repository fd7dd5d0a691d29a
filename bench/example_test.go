package bench_test

import (
	"fmt"

	"github.com/gok8s/gok8s/bench"
)

func ExampleLeak() {
	for _, lib := range bench.Libs()[:2] {
		r := bench.Leak(lib)
		fmt.Printf("%s: %d, error text in the detailed answer: %v\n", lib.Name, r.Status, r.DetailLeaks)
	}
	// Output:
	// gok8s: 503, error text in the detailed answer: false
	// heptiolabs/healthcheck: 503, error text in the detailed answer: true
}
