package sbom_test

import (
	"fmt"
	"log"
	"os"

	"github.com/gok8s/gok8s/tools/sbom"
)

func ExampleDecode() {
	f, err := os.Open("testdata/app.cdx.json")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	bom, err := sbom.Decode(f)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(bom.Metadata.Component.Name, bom.Metadata.Component.Type)
	if pgx, ok := bom.Module("github.com/jackc/pgx/v5"); ok {
		fmt.Println(pgx.PURL)
	}
	_, ok := bom.Module("github.com/testcontainers/testcontainers-go")
	fmt.Println("testcontainers:", ok)
	// Output:
	// example.com/shop application
	// pkg:golang/github.com/jackc/pgx/v5@v5.12.0?goarch=amd64&goos=linux&type=module
	// testcontainers: false
}
