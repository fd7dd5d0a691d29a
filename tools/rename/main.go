// Command rename turns a fork of gok8s into a service of its own: it rewrites
// the module path in every go.mod and import, the image path, and the app's
// name (binary, image, Kubernetes objects and labels, kind cluster) in the
// Makefile, Dockerfile, docker-compose.yml, kind-config.yaml, k8s/, .github/
// and buf.gen.yaml, and in README.md (whose commands and configuration table
// name them too). The generated gRPC code names neither (its descriptors
// carry no go_package), so it stays valid without regenerating. Running it
// again with the same arguments changes nothing.
//
//	make rename MODULE=example.com/acme/orders [NAME=orders]
//	go run ./rename -root .. -module example.com/acme/orders -name orders
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

func main() {
	root := flag.String("root", ".", "the repository to rename")
	module := flag.String("module", "", "the new module path, such as example.com/acme/orders")
	name := flag.String("name", "", "the new app name (default: the module path's last element)")
	flag.Parse()
	changed, err := Rename(*root, *module, *name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rename:", err)
		os.Exit(1)
	}
	for _, f := range changed {
		fmt.Println("rewrote", f)
	}
	fmt.Printf("rename: %d files changed\n", len(changed))
}

var (
	moduleLine  = regexp.MustCompile(`(?m)^module\s+(\S+)\s*$`)
	appNameLine = regexp.MustCompile(`(?m)^APP_NAME \?= (\S+)\s*$`)
	validName   = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,40}[a-z0-9])?$`)
	validModule = regexp.MustCompile(`^[a-z0-9.-]+(/[A-Za-z0-9._~-]+)+$`)
)

// Rename rewrites the repository at root from its current module path (in
// go.mod) and app name (APP_NAME in the Makefile) to module and name, and
// returns the files it changed, relative to root.
func Rename(root, module, name string) ([]string, error) {
	if name == "" {
		name = path.Base(module)
	}
	if !validModule.MatchString(module) {
		return nil, fmt.Errorf("module %q is not a module path like example.com/acme/orders", module)
	}
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("name %q must be a lower-case DNS label (letters, digits, '-'), as Kubernetes names are", name)
	}
	oldModule, err := find(filepath.Join(root, "go.mod"), moduleLine)
	if err != nil {
		return nil, err
	}
	oldName, err := find(filepath.Join(root, "Makefile"), appNameLine)
	if err != nil {
		return nil, err
	}
	r := renamer{
		oldModule: oldModule, module: module,
		oldImage: "ghcr.io/" + withoutHost(oldModule), image: "ghcr.io/" + withoutHost(module),
		oldName: regexp.MustCompile(`\b` + regexp.QuoteMeta(oldName) + `\b`), name: name,
	}

	var changed []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if slices.Contains([]string{".git", "bin", "dist", "testdata", ".generated"}, d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !inScope(filepath.ToSlash(rel)) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out := r.rewrite(b, strings.HasSuffix(p, ".go"))
		if bytes.Equal(out, b) {
			return nil
		}
		changed = append(changed, rel)
		return os.WriteFile(p, out, d.Type().Perm()|0o600)
	})
	return changed, err
}

// inScope reports whether the file at rel (slash-separated) names the module or the app.
func inScope(rel string) bool {
	base := path.Base(rel)
	switch {
	case base == "go.mod", strings.HasSuffix(base, ".go"):
		return true
	case rel == "Makefile", rel == "Dockerfile", rel == "docker-compose.yml", rel == "kind-config.yaml", rel == "README.md":
		return true
	case base == "buf.gen.yaml": // the Go import path of the generated gRPC code
		return true
	case strings.HasPrefix(rel, "k8s/") || strings.HasPrefix(rel, ".github/"):
		return strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml") || strings.HasSuffix(base, ".sh") ||
			strings.HasSuffix(base, ".json") // the Grafana dashboard's job selector
	}
	return false
}

type renamer struct {
	oldModule, module string
	oldImage, image   string
	oldName           *regexp.Regexp
	name              string
}

// rewrite replaces the module path, then the image path, then the app name,
// leaving what it has already written alone (the new module path may contain
// the old name).
func (r renamer) rewrite(b []byte, goFile bool) []byte {
	s := string(b)
	parts := strings.Split(s, r.oldModule)
	s = strings.Join(parts, "\x00module\x00")
	s = strings.ReplaceAll(s, r.oldImage, "\x00image\x00")
	s = r.oldName.ReplaceAllString(s, r.name)
	s = strings.ReplaceAll(s, "\x00image\x00", r.image)
	s = strings.ReplaceAll(s, "\x00module\x00", r.module)
	if goFile {
		// Import paths changed: sort them again, as gofmt would.
		if formatted, err := format.Source([]byte(s)); err == nil {
			return formatted
		}
	}
	return []byte(s)
}

func find(file string, re *regexp.Regexp) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	m := re.FindSubmatch(b)
	if m == nil {
		return "", errors.New(file + ": no line matching " + re.String())
	}
	return string(m[1]), nil
}

// withoutHost returns a module path without its first element (the host).
func withoutHost(module string) string {
	_, rest, ok := strings.Cut(module, "/")
	if !ok {
		return module
	}
	return rest
}
