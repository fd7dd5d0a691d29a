package middleware

import (
	"fmt"
	"strings"
)

// mux finds the probe handler for a path.
type mux struct {
	paths []probePath
	// second flags the bytes that follow "/" in some probe path, so that most
	// other requests are told apart by one lookup.
	second [256]bool
}

type probePath struct {
	path    string // "/readyz"
	sub     string // "/readyz/"
	handler *probeHandler
}

func (m *mux) add(path string, h *probeHandler) {
	if len(path) < 2 || path[0] != '/' || strings.HasSuffix(path, "/") {
		panic(fmt.Sprintf("middleware: probe path %q must begin with / and not end with it", path))
	}
	for _, p := range m.paths {
		if p.path == path {
			panic(fmt.Sprintf("middleware: probe path %q given twice", path))
		}
	}
	m.paths = append(m.paths, probePath{path: path, sub: path + "/", handler: h})
	m.second[path[1]] = true
}

// match returns the handler for path, the check named after its probe path,
// and whether path is below the probe path (p/…) rather than p itself. Paths
// are tried longest first.
func (m *mux) match(path string) (h *probeHandler, check string, sub, ok bool) {
	if len(path) < 2 || !m.second[path[1]] {
		return nil, "", false, false
	}
	for i := range m.paths {
		p := &m.paths[i]
		if path == p.path {
			return p.handler, "", false, true
		}
		if strings.HasPrefix(path, p.sub) {
			return p.handler, path[len(p.sub):], true, true
		}
	}
	return nil, "", false, false
}

// endpointName returns the name a verbose body gives the probe path path: its
// first segment, as Kubernetes' InstallPathHandler takes it ("/healthz/ready"
// is "healthz").
func endpointName(path string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return name
}
