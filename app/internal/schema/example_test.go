package schema_test

import (
	"fmt"
	"io/fs"

	"github.com/gok8s/gok8s/app/internal/schema"
)

func ExampleMigrations() {
	names, err := fs.Glob(schema.Migrations(), "*.sql")
	if err != nil {
		panic(err)
	}
	fmt.Println(names)
	// Output: [00001_links.sql]
}
