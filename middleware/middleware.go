package middleware

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gok8s/gok8s/probes"
)

// An Option changes a default of [Probes].
type Option func(*options)

type options struct {
	livez  []string
	readyz []string
}

func defaultOptions() options {
	return options{livez: []string{"/livez", "/healthz"}, readyz: []string{"/readyz"}}
}

// WithLivenessPaths sets the liveness paths (default /livez and /healthz). Each
// path must begin with "/"; none disables liveness.
func WithLivenessPaths(paths ...string) Option {
	return func(o *options) { o.livez = paths }
}

// WithReadinessPaths sets the readiness paths (default /readyz). Each path must
// begin with "/"; none disables readiness.
func WithReadinessPaths(paths ...string) Option {
	return func(o *options) { o.readyz = paths }
}

// Probes returns middleware that answers liveness and readiness probes before
// the handler it wraps, h, which gets every other request unchanged.
//
// A probe path p answers p itself and p/<check>, for one check or group of ready
// (liveness has the one check "ping"); any other p/… is 404. GET and HEAD are
// answered; other methods get 405 with Allow: GET, HEAD. The query options are
// verbose and exclude (repeatable). See [ReadinessHandler] for the responses.
// A nil ready answers readiness like liveness.
//
// Probes panics if a path does not begin with "/" or is given twice.
func Probes(ready *probes.Readiness, opts ...Option) func(http.Handler) http.Handler {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	m := &mux{}
	live := newProbeHandler("livez", nil)
	readyz := newProbeHandler("readyz", ready)
	for _, p := range o.livez {
		m.add(p, live)
	}
	for _, p := range o.readyz {
		m.add(p, readyz)
	}
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p, check, ok := m.match(r.URL.Path); ok {
				p.serve(w, r, check)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

// LivenessHandler returns an [http.Handler] that answers liveness probes: 200 and the
// body "ok" while the process can serve HTTP at all. It checks no dependency, so
// that an outage of one does not make Kubernetes restart the pod. Responses are
// as for [ReadinessHandler], with the single check "ping".
func LivenessHandler() http.Handler {
	return newProbeHandler("livez", nil)
}

// ReadinessHandler returns an [http.Handler] that answers readiness probes with the
// results of ready.
//
// When ready, the status is 200 and the body "ok". Otherwise the status and body
// come from the report's [probes.NotReady] (503 and "Not ready" by default,
// "Shutting down" while draining). With the query parameter verbose, the body
// lists each check as "[+]name ok", "[+]name excluded: ok" or
// "[-]name failed: reason withheld", then "readyz check passed" or
// "readyz check failed". Error text never reaches a body. Each exclude=name
// query parameter skips a check or a group; one that matches nothing adds a
// "warn:" line and does not fail. A request with Accept: application/json gets
// the same information as a JSON object.
//
// Responses are text/plain; charset=utf-8 (or application/json) with
// Cache-Control: no-store and X-Content-Type-Options: nosniff. Methods other
// than GET and HEAD get 405. Mounted on a [http.ServeMux] pattern that ends in
// {check...}, such as "GET /readyz/{check...}", it answers for that one check
// or group, or 404 if there is none.
func ReadinessHandler(ready *probes.Readiness) http.Handler {
	return newProbeHandler("readyz", ready)
}

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

// match returns the handler for path and the check named after its probe path.
func (m *mux) match(path string) (*probeHandler, string, bool) {
	if len(path) < 2 || !m.second[path[1]] {
		return nil, "", false
	}
	for i := range m.paths {
		p := &m.paths[i]
		if path == p.path {
			return p.handler, "", true
		}
		if strings.HasPrefix(path, p.sub) {
			return p.handler, path[len(p.sub):], true
		}
	}
	return nil, "", false
}

// probeHandler answers one endpoint: livez (ready == nil) or readyz.
type probeHandler struct {
	endpoint string
	ready    *probes.Readiness

	// Header values, made once; each slice is full (len == cap), so that a
	// later Header().Add copies instead of writing into it.
	textType, jsonType, noStore, nosniff, allow, okLength []string
	okBody                                                []byte
}

var _ http.Handler = (*probeHandler)(nil)

func newProbeHandler(endpoint string, ready *probes.Readiness) *probeHandler {
	return &probeHandler{
		endpoint: endpoint,
		ready:    ready,
		textType: []string{"text/plain; charset=utf-8"},
		jsonType: []string{"application/json"},
		noStore:  []string{"no-store"},
		nosniff:  []string{"nosniff"},
		allow:    []string{"GET, HEAD"},
		okLength: []string{"2"},
		okBody:   []byte("ok"),
	}
}

// ServeHTTP serves a probe mounted on its own. A check named by the mux pattern
// wildcard "check" selects one check.
func (p *probeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.serve(w, r, r.PathValue("check"))
}

func (p *probeHandler) serve(w http.ResponseWriter, r *http.Request, check string) {
	h := w.Header()
	h["Cache-Control"] = p.noStore
	h["X-Content-Type-Options"] = p.nosniff
	h["Content-Type"] = p.textType
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h["Allow"] = p.allow
		p.write(w, r, http.StatusMethodNotAllowed, "method not allowed\n")
		return
	}
	asJSON := wantsJSON(r)
	if p.ready == nil && check == "" && r.URL.RawQuery == "" && !asJSON {
		p.writeOK(w, r) // the liveness fast path: no report to build
		return
	}

	var q url.Values
	if r.URL.RawQuery != "" {
		q, _ = url.ParseQuery(r.URL.RawQuery) // keep what parses; probes have no required parameters
	}
	if check != "" && !p.has(check) {
		p.write(w, r, http.StatusNotFound, "no check named "+strconv.Quote(check)+"\n")
		return
	}
	rep := p.report(r, probes.Filter{Only: check, Exclude: q["exclude"]})

	status := http.StatusOK
	if rep.NotReady != nil {
		status = rep.NotReady.StatusCode()
	}
	switch {
	case asJSON:
		h["Content-Type"] = p.jsonType
		p.write(w, r, status, p.jsonBody(rep))
	case q.Has("verbose"):
		p.write(w, r, status, p.verboseBody(rep))
	case rep.NotReady != nil:
		p.write(w, r, status, rep.NotReady.Body()+"\n")
	default:
		p.writeOK(w, r)
	}
}

// writeOK writes 200 and the body "ok" without allocating.
func (p *probeHandler) writeOK(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Length"] = p.okLength
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(p.okBody)
	}
}

func (p *probeHandler) has(check string) bool {
	if p.ready == nil {
		return check == "ping"
	}
	return p.ready.Has(check)
}

func (p *probeHandler) report(r *http.Request, f probes.Filter) probes.Report {
	if p.ready != nil {
		return p.ready.Report(r.Context(), f)
	}
	rep := probes.Report{Results: []probes.Result{{Name: "ping"}}}
	for _, x := range f.Exclude {
		if x == "ping" {
			rep.Results[0].Excluded = true
		} else if x != "" {
			rep.Unknown = append(rep.Unknown, x)
		}
	}
	return rep
}

func (p *probeHandler) write(w http.ResponseWriter, r *http.Request, status int, body string) {
	w.Header()["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body))
	}
}

// verboseBody renders rep in the Kubernetes healthz grammar.
func (p *probeHandler) verboseBody(rep probes.Report) string {
	var b strings.Builder
	for _, res := range rep.Results {
		switch {
		case res.Excluded:
			fmt.Fprintf(&b, "[+]%s excluded: ok\n", res.Name)
		case res.Err == nil:
			fmt.Fprintf(&b, "[+]%s ok\n", res.Name)
		case res.Optional:
			fmt.Fprintf(&b, "[-]%s failed: reason withheld (optional)\n", res.Name)
		default:
			fmt.Fprintf(&b, "[-]%s failed: reason withheld\n", res.Name)
		}
	}
	if len(rep.Unknown) > 0 {
		fmt.Fprintf(&b, "warn: %s\n", unknownWarning(rep.Unknown))
	}
	if rep.NotReady != nil {
		fmt.Fprintf(&b, "%s check failed\n", p.endpoint)
	} else {
		fmt.Fprintf(&b, "%s check passed\n", p.endpoint)
	}
	return b.String()
}

// unknownWarning is the warning about exclude names that match no check, in
// Kubernetes' words; the text body prefixes it with "warn: ".
func unknownWarning(unknown []string) string {
	quoted := make([]string, len(unknown))
	for i, u := range unknown {
		quoted[i] = strconv.Quote(u)
	}
	return "some health checks cannot be excluded: no matches for " + strings.Join(quoted, ",")
}

// jsonReport is the JSON form of a report.
type jsonReport struct {
	Status   string      `json:"status"` // "ok" or "failed"
	Message  string      `json:"message,omitempty"`
	Checks   []jsonCheck `json:"checks"`
	Warnings []string    `json:"warnings,omitempty"`
}

type jsonCheck struct {
	Name     string `json:"name"`
	Status   string `json:"status"` // "ok", "failed" or "excluded"
	Optional bool   `json:"optional,omitempty"`
}

func (p *probeHandler) jsonBody(rep probes.Report) string {
	doc := jsonReport{Status: "ok", Checks: make([]jsonCheck, 0, len(rep.Results))}
	if rep.NotReady != nil {
		doc.Status, doc.Message = "failed", rep.NotReady.Body()
	}
	for _, res := range rep.Results {
		c := jsonCheck{Name: res.Name, Status: "ok", Optional: res.Optional}
		switch {
		case res.Excluded:
			c.Status = "excluded"
		case res.Err != nil:
			c.Status = "failed"
		}
		doc.Checks = append(doc.Checks, c)
	}
	if len(rep.Unknown) > 0 {
		doc.Warnings = []string{unknownWarning(rep.Unknown)}
	}
	b, err := json.Marshal(doc)
	if err != nil { // cannot happen: the document holds only strings and bools
		return `{"status":"failed"}`
	}
	return string(b) + "\n"
}

// wantsJSON reports whether r's Accept header names application/json.
func wantsJSON(r *http.Request) bool {
	accept := r.Header["Accept"]
	for _, a := range accept {
		if strings.Contains(a, "application/json") {
			return true
		}
	}
	return false
}
