package middleware

import (
	"encoding/json"
	"errors"
	"fmt"
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
// (liveness has the one check "ping"); any other p/…, p/ included, is 404. When
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
// lists each check as "[+]name ok", "[+]name excluded: ok" or
// "[-]name failed: reason withheld" (with " (optional)" after an optional
// check), then "<endpoint> check passed" or "<endpoint> check failed", the
// endpoint being the last element of the probe path ("readyz" for a handler
// mounted on its own). Error text never reaches a body. Each exclude=name
// query parameter skips a check or a group; one that matches nothing adds a
// "warn:" line and does not fail. A request whose Accept header ranks
// application/json at least as high as text/plain (q values count; */* alone
// does not ask for JSON) gets the same information as a JSON object.
//
// Responses are text/plain; charset=utf-8 (or application/json) with
// Cache-Control: no-store and X-Content-Type-Options: nosniff. A probe reads
// no request body: an HTTP/1 request that has one is answered with
// Connection: close, so that the server does not wait for the body to discard
// it. Methods other than GET and HEAD get 405. Mounted on a [http.ServeMux]
// pattern that ends in {check...}, such as "GET /readyz/{check...}", it
// answers for that one check or group, or 404 if there is none.
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

// endpointName returns the name a verbose body gives path: its last element
// ("/healthz/ready" is "ready").
func endpointName(path string) string {
	return path[strings.LastIndexByte(path, '/')+1:]
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
	if sub && !p.has(check) {
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

// writeOK writes 200 and the body "ok" without allocating. For GET it leaves
// Content-Type and Content-Length to the ResponseWriter, which net/http
// documents it derives from the body: "ok" is sniffed as text/plain;
// charset=utf-8, and its 2 bytes are counted. net/http copies the header map
// at WriteHeader and writes each entry, so the most frequent response carries
// two entries fewer. A HEAD writes no body, so both are set.
func (p *probeHandler) writeOK(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		h := w.Header()
		h["Content-Type"] = p.textType
		h["Content-Length"] = p.okLength
		w.WriteHeader(http.StatusOK)
		return
	}
	_, _ = w.Write(p.okBody)
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
		} else {
			rep.Unknown = append(rep.Unknown, x)
		}
	}
	slices.Sort(rep.Unknown)
	rep.Unknown = slices.Compact(rep.Unknown)
	return rep
}

// write writes status and a text/plain body.
func (p *probeHandler) write(w http.ResponseWriter, r *http.Request, status int, body string) {
	p.writeBody(w, r, status, p.textType, body)
}

// writeBody writes status and body, of Content-Type ctype.
func (p *probeHandler) writeBody(w http.ResponseWriter, r *http.Request, status int, ctype []string, body string) {
	h := w.Header()
	h["Content-Type"] = ctype
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
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
		case res.Err == nil && res.Optional:
			fmt.Fprintf(&b, "[+]%s ok (optional)\n", res.Name)
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

// wantsJSON reports whether r's Accept header asks for JSON: application/json
// (or application/*) is named with a q above 0, at least as high as text/plain
// gets. text/plain gets the q of its most specific range (text/plain, text/*,
// */*), or, when none covers it, the highest q of the other ranges; so */*
// alone, a browser's header and "text/html, application/json;q=0.1" get text.
// A range with a q that does not parse is ignored. It does not allocate.
func wantsJSON(r *http.Request) bool {
	accept := r.Header["Accept"]
	if len(accept) == 0 {
		return false
	}
	jsonQ, jsonRank := 0.0, 0 // rank: 0 none, 1 application/*, 2 application/json
	textQ, textRank := 0.0, 0 // rank: 0 none, 1 */*, 2 text/*, 3 text/plain
	otherQ := 0.0
	for _, line := range accept {
		for rest := line; rest != ""; {
			var mr string
			mr, rest, _ = strings.Cut(rest, ",")
			typ, q, ok := mediaRange(mr)
			if !ok {
				continue
			}
			switch {
			case strings.EqualFold(typ, "application/json"):
				if jsonRank < 2 {
					jsonQ, jsonRank = q, 2
				}
			case strings.EqualFold(typ, "application/*"):
				if jsonRank < 1 {
					jsonQ, jsonRank = q, 1
				}
			case strings.EqualFold(typ, "text/plain"):
				if textRank < 3 {
					textQ, textRank = q, 3
				}
			case strings.EqualFold(typ, "text/*"):
				if textRank < 2 {
					textQ, textRank = q, 2
				}
			case typ == "*/*":
				if textRank < 1 {
					textQ, textRank = q, 1
				}
			default:
				otherQ = max(otherQ, q)
			}
		}
	}
	if textRank == 0 {
		textQ = otherQ
	}
	return jsonRank > 0 && jsonQ > 0 && jsonQ >= textQ
}

// mediaRange returns the type/subtype of one Accept element and its q (1 when
// absent); ok is false for an empty element or a q that does not parse.
func mediaRange(s string) (typ string, q float64, ok bool) {
	typ, params, _ := strings.Cut(s, ";")
	typ = strings.TrimSpace(typ)
	if typ == "" {
		return "", 0, false
	}
	q = 1
	for params != "" {
		var param string
		param, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(param, "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || f > 1 {
			return "", 0, false
		}
		q = f
	}
	return typ, q, true
}
