package links_test

import (
	"fmt"

	"github.com/gok8s/gok8s/app/internal/links"
)

func ExampleValidateURL() {
	for _, u := range []string{"https://go.dev/doc", "go.dev", "javascript:alert(1)"} {
		fmt.Printf("%s: %v\n", u, links.ValidateURL(u))
	}
	// Output:
	// https://go.dev/doc: <nil>
	// go.dev: url must begin with http:// or https://
	// javascript:alert(1): url must begin with http:// or https://
}
