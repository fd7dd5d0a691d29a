// Package sbom reads the CycloneDX JSON documents that `make sbom` writes with
// cyclonedx-gomod's bin mode: the app as the document's main component, and one
// component per Go module linked into its binary, the standard library included.
//
// It decodes only what this project checks (format, the components' names,
// versions and package URLs), not the whole CycloneDX schema.
package sbom

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Format is the bomFormat of every CycloneDX document.
const Format = "CycloneDX"

// ErrFormat is returned by [Decode] for JSON that is not a CycloneDX document.
var ErrFormat = errors.New("sbom: not a CycloneDX document")

// BOM is a decoded CycloneDX document.
type BOM struct {
	Format      string      `json:"bomFormat"`
	SpecVersion string      `json:"specVersion"`
	Metadata    Metadata    `json:"metadata"`
	Components  []Component `json:"components"`
}

// Metadata holds the component the document describes: for `make sbom`, the app.
type Metadata struct {
	Component Component `json:"component"`
}

// Component is one module: Name is its module path ("std" for the standard
// library), Version its module version, PURL its package URL.
type Component struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Version string `json:"version"`
	PURL    string `json:"purl"`
}

// Decode reads one CycloneDX JSON document from r. It returns an error wrapping
// [ErrFormat] when the JSON's bomFormat is not CycloneDX or it names no spec version.
func Decode(r io.Reader) (*BOM, error) {
	var b BOM
	if err := json.NewDecoder(r).Decode(&b); err != nil {
		return nil, fmt.Errorf("sbom: decoding: %w", err)
	}
	if b.Format != Format || b.SpecVersion == "" {
		return nil, fmt.Errorf("%w: bomFormat %q, specVersion %q", ErrFormat, b.Format, b.SpecVersion)
	}
	return &b, nil
}

// Module returns the component named path, a Go module path or "std", and
// whether the document lists it.
func (b *BOM) Module(path string) (Component, bool) {
	for _, c := range b.Components {
		if c.Name == path {
			return c, true
		}
	}
	return Component{}, false
}
