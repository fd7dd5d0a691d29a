package sbom

import (
	"errors"
	"go/version"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

func TestDecode(t *testing.T) {
	fixture, err := os.ReadFile("testdata/app.cdx.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   string
		want int // components; -1: a decoding error, -2: an error wrapping ErrFormat
	}{
		{"cyclonedx-gomod bin output", string(fixture), 3},
		{"not JSON", "<bom/>", -1},
		{"SPDX document", `{"spdxVersion": "SPDX-2.3", "packages": []}`, -2},
		{"CycloneDX without spec version", `{"bomFormat": "CycloneDX"}`, -2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bom, err := Decode(strings.NewReader(tc.in))
			switch {
			case tc.want >= 0 && err != nil:
				t.Fatalf("Decode: %v", err)
			case tc.want >= 0:
				if len(bom.Components) != tc.want {
					t.Errorf("%d components, want %d", len(bom.Components), tc.want)
				}
			case err == nil:
				t.Fatal("Decode: no error")
			case errors.Is(err, ErrFormat) != (tc.want == -2):
				t.Errorf("Decode: %v; wraps ErrFormat: %t, want %t", err, errors.Is(err, ErrFormat), tc.want == -2)
			}
		})
	}
}

// TestMakeSBOM runs `make sbom` at the repository's root, as CI does, and checks
// that the SBOM describes the binary the service ships: the modules it runs on,
// at go.mod's versions, the patched standard library, and nothing that only the
// e2e/, k8s/ or bench/ modules use.
func TestMakeSBOM(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := modfile.Parse("go.mod", gomod, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mod.Toolchain == nil {
		t.Fatal("go.mod has no toolchain line")
	}
	out := filepath.Join(t.TempDir(), "sbom.cdx.json")
	cmd := exec.CommandContext(t.Context(), "make", "--no-print-directory", "sbom", "SBOM="+out)
	cmd.Dir = root
	// A make that runs this test hands down its flags and jobserver; start afresh.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "MAKEFLAGS=") || strings.HasPrefix(kv, "MFLAGS=")
	})
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make sbom: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bom, err := Decode(f)
	if err != nil {
		t.Fatal(err)
	}

	if got := bom.Metadata.Component; got.Name != mod.Module.Mod.Path || got.Type != "application" {
		t.Errorf("main component %s (%s), want %s (application)", got.Name, got.Type, mod.Module.Mod.Path)
	}
	for _, path := range []string{
		"github.com/jackc/pgx/v5",
		"github.com/bradfitz/gomemcache",
		"github.com/kelseyhightower/envconfig",
		"github.com/pressly/goose/v3",
	} {
		if _, ok := bom.Module(path); !ok {
			t.Errorf("no component %s", path)
		}
	}
	std, ok := bom.Module("std")
	if !ok {
		t.Error("no component std (the standard library)")
	} else if version.Compare(std.Version, mod.Toolchain.Name) < 0 {
		t.Errorf("std %s, older than go.mod's toolchain %s", std.Version, mod.Toolchain.Name)
	}
	required := map[string]string{}
	for _, r := range mod.Require {
		required[r.Mod.Path] = r.Mod.Version
	}
	for _, c := range bom.Components {
		for _, prefix := range []string{
			"github.com/testcontainers/", "github.com/docker/", "github.com/stretchr/testify",
			"k8s.io/", "sigs.k8s.io/",
		} {
			if strings.HasPrefix(c.Name, prefix) {
				t.Errorf("component %s: a test-only module is in the app's SBOM", c.Name)
			}
		}
		if v, ok := required[c.Name]; c.Name != "std" && (!ok || v != c.Version) {
			t.Errorf("component %s %s: go.mod requires %q", c.Name, c.Version, v)
		}
	}
	t.Logf("make sbom: %d components, std %s", len(bom.Components), std.Version)
}
