package main

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestRenameFork renames a copy of this repository as a fork would, then
// builds it and runs its unit tests there.
func TestRenameFork(t *testing.T) {
	src, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	copyTree(t, src, dst)
	oldModule, err := find(filepath.Join(src, "go.mod"), moduleLine)
	if err != nil {
		t.Fatal(err)
	}
	oldName, err := find(filepath.Join(src, "Makefile"), appNameLine)
	if err != nil {
		t.Fatal(err)
	}
	const module, name = "example.com/test/renamed", "renamed"

	changed, err := Rename(dst, module, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first run rewrote %d files", len(changed))
	for _, want := range []string{"go.mod", "Makefile", "docker-compose.yml", "k8s/base/app.yaml", "k8s/kind.sh", "app/main.go", "k8s/go.mod", "tools/go.mod", "api/buf.gen.yaml", "README.md"} {
		if !slices.Contains(changed, want) {
			t.Errorf("%s was not rewritten", want)
		}
	}
	again, err := Rename(dst, module, name)
	if err != nil || len(again) != 0 {
		t.Errorf("second run: rewrote %v, %v; want nothing (idempotent)", again, err)
	}

	// Nothing in scope names the old module or app any more.
	left := regexp.MustCompile(regexp.QuoteMeta(oldModule) + `|\b` + regexp.QuoteMeta(oldName) + `\b`)
	_ = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dst, p)
		if d.IsDir() && slices.Contains([]string{".git", "testdata"}, d.Name()) {
			return filepath.SkipDir
		}
		if d.IsDir() || !inScope(filepath.ToSlash(rel)) {
			return nil
		}
		b, _ := os.ReadFile(p)
		if loc := left.FindIndex(b); loc != nil {
			t.Errorf("%s still names %s: %q", rel, oldName, b[max(0, loc[0]-30):min(len(b), loc[1]+30)])
		}
		return nil
	})
	for _, tt := range []struct{ file, want string }{
		{"go.mod", "module " + module + "\n"},
		{"k8s/go.mod", "replace " + module + " => ../"},
		{"Makefile", "APP_NAME ?= " + name + "\n"},
		{"k8s/base/kustomization.yaml", "newName: ghcr.io/test/" + name},
		{"k8s/overlays/kind/kustomization.yaml", "name: ghcr.io/test/" + name},
		{"k8s/base/app.yaml", "app.kubernetes.io/name: " + name},
		{"docker-compose.yml", "${APP_IMAGE:-" + name + ":dev}"},
		{"README.md", "localhost:5432/" + name + "?sslmode=disable"},
	} {
		b, err := os.ReadFile(filepath.Join(dst, tt.file))
		if err != nil || !bytes.Contains(b, []byte(tt.want)) {
			t.Errorf("%s does not contain %q (%v)", tt.file, tt.want, err)
		}
	}

	// The fork builds, is gofmt-clean, and passes its unit tests.
	run(t, dst, "gofmt", "-l", ".")
	run(t, dst, "go", "vet", "./...")
	run(t, dst, "go", "build", "./...")
	run(t, dst, "go", "test", "-count=1", "./probes/...", "./middleware/...", "./app")
	run(t, filepath.Join(dst, "k8s"), "go", "test", "-count=1", "-run", "TestPolicies", "./...")
}

// run runs a command in dir and fails the test if it fails or, for gofmt -l, prints anything.
func run(t *testing.T, dir string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil || (name == "gofmt" && len(bytes.TrimSpace(out)) > 0) {
		t.Fatalf("%s %s in the fork: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// copyTree copies the repository at src to dst, without .git and build output.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && slices.Contains([]string{".git", "bin", "dist", ".generated"}, d.Name()) {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}
