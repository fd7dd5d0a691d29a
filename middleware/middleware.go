package middleware

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
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
// (liveness has the one check "ping"). p/ is 404 with net/http's body "404 page
// not found", as in Kubernetes; any other p/… is 404 "no check named …". When
// one probe path is inside another (/healthz and /healthz/ready), the longer one
// answers for its subtree, in whatever order the options come. GET and HEAD are
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
	for _, p := range o.livez {
		m.add(p, newProbeHandler(endpointName(p), nil))
	}
	for _, p := range o.readyz {
		m.add(p, newProbeHandler(endpointName(p), ready))
	}
	// The most specific path wins: /healthz/ready before /healthz.
	slices.SortStableFunc(m.paths, func(a, b probePath) int { return len(b.path) - len(a.path) })
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p, check, sub, ok := m.match(r.URL.Path); ok {
				p.serve(w, r, check, sub)
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
// lists each check as "[+]name ok", "[+]name excluded: ok" (excluded by its
// name), "[+]name excluded with group: ok" (through its group) or
// "[-]name failed: reason withheld" (with " (optional)" after an optional
// check), then "<endpoint> check passed" or "<endpoint> check failed". The
// endpoint is the first segment of the probe path, as Kubernetes names it:
// /healthz/ready ends "healthz check passed"; a handler mounted on its own is
// "readyz". Error text never reaches a body. Each exclude=name query
// parameter skips a check or a group; one that matches nothing adds a "warn:"
// line and does not fail. A request whose Accept header ranks
// application/json at least as high as text/plain (q values count; */* alone
// does not ask for JSON) gets the same information as a JSON object.
//
// Responses are text/plain; charset=utf-8 (or application/json) with
// Cache-Control: no-store and X-Content-Type-Options: nosniff. A probe reads
// no request body: an HTTP/1 request that has one is answered with
// Connection: close, so that the server does not wait for the body to discard
// it. Methods other than GET and HEAD get 405. Mounted on a [http.ServeMux]
// pattern that ends in {check...}, such as "GET /readyz/{check...}", it
// answers for that one check or group, or 404 if there is none ("404 page not
// found" for /readyz/ itself).
func ReadinessHandler(ready *probes.Readiness) http.Handler {
	return newProbeHandler("readyz", ready)
}

// probeHandler answers one endpoint: livez (ready == nil) or readyz.
type probeHandler struct {
	endpoint string
	ready    *probes.Readiness

	// Header values, made once; each slice is full (len == cap), so that a
	// later Header().Add copies instead of writing into it.
	textType, jsonType, noStore, nosniff, allow, okLength, connClose []string
	okBody                                                           []byte
}

var _ http.Handler = (*probeHandler)(nil)

func newProbeHandler(endpoint string, ready *probes.Readiness) *probeHandler {
	return &probeHandler{
		endpoint:  endpoint,
		ready:     ready,
		textType:  []string{"text/plain; charset=utf-8"},
		jsonType:  []string{"application/json"},
		noStore:   []string{"no-store"},
		nosniff:   []string{"nosniff"},
		allow:     []string{"GET, HEAD"},
		okLength:  []string{"2"},
		connClose: []string{"close"},
		okBody:    []byte("ok"),
	}
}

// ServeHTTP serves a probe mounted on its own. A check named by the mux pattern
// wildcard "check" selects one check; the pattern's p/ itself is 404.
func (p *probeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.serve(w, r, r.PathValue("check"), strings.HasSuffix(r.Pattern, "{check...}"))
}

// serve answers r for check, "" for the whole endpoint; sub reports that the
// request names a check (p/check), so that an empty check there is 404.
func (p *probeHandler) serve(w http.ResponseWriter, r *http.Request, check string, sub bool) {
	h := w.Header()
	h["Cache-Control"] = p.noStore
	h["X-Content-Type-Options"] = p.nosniff
	if r.ContentLength != 0 && r.ProtoMajor == 1 {
		// A probe reads no body. Closing the connection after the answer keeps
		// net/http from first waiting for the body to discard it, which on a
		// server without a ReadTimeout a client could make last for ever.
		h["Connection"] = p.connClose
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h["Allow"] = p.allow
		p.write(w, r, http.StatusMethodNotAllowed, "method not allowed\n")
		return
	}
	asJSON := wantsJSON(r)
	if p.ready == nil && !sub && r.URL.RawQuery == "" && !asJSON {
		p.writeOK(w, r) // the liveness fast path: no report to build
		return
	}
	if p.ready != nil && !sub && r.URL.RawQuery == "" && !asJSON {
		// The readiness fast path: Check reads a snapshot while results are cached.
		err := p.ready.Check(r.Context())
		if err == nil {
			p.writeOK(w, r)
			return
		}
		nr, ok := errors.AsType[*probes.NotReady](err)
		if !ok {
			nr = &probes.NotReady{Err: err}
		}
		p.write(w, r, nr.StatusCode(), nr.Body()+"\n")
		return
	}

	var q url.Values
	if r.URL.RawQuery != "" {
		q, _ = url.ParseQuery(r.URL.RawQuery) // keep what parses; probes have no required parameters
	}
	switch {
	case sub && check == "":
		p.write(w, r, http.StatusNotFound, notFound) // p/ is no check, as Kubernetes' mux answers
		return
	case sub && !p.has(check):
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
		p.writeBody(w, r, status, p.jsonType, p.jsonBody(rep))
	case q.Has("verbose"):
		p.write(w, r, status, p.verboseBody(rep))
	case rep.NotReady != nil:
		p.write(w, r, status, rep.NotReady.Body()+"\n")
	default:
		p.writeOK(w, r)
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
	return probes.Report{
		Results: []probes.Result{{Name: "ping", Excluded: slices.Contains(f.Exclude, "ping")}},
		Unknown: f.Unknown(p.has),
	}
}
