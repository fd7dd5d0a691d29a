package middleware

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gok8s/gok8s/probes"
)

// The tests in this file pin the Kubernetes healthz contract: the cases of
// issue 12, and the three of issue 19 where k8s.io/apiserver v0.37.2's healthz
// answered otherwise (the endpoint named by the probe path's first segment,
// "excluded with <group>", p/ as net/http's 404).

// TestNestedPaths: the most specific probe path wins, whatever the order of
// the options.
func TestNestedPaths(t *testing.T) {
	cases := []probeCase{
		{name: "liveness root", target: "/healthz", status: 200, body: "ok"},
		{name: "liveness check", target: "/healthz/ping", status: 200, body: "ok"},
		{name: "readiness root", target: "/healthz/ready", status: 503, body: "Not ready\n"},
		{name: "readiness verbose", target: "/healthz/ready?verbose", status: 503, body: "" +
			"[+]startup ok\n[+]shutdown ok\n[+]postgres/default ok\n[-]memcached/a:1 failed: reason withheld\n" +
			"[-]disk failed: reason withheld (optional)\nhealthz check failed\n"},
		{name: "readiness check", target: "/healthz/ready/postgres/default", status: 200, body: "ok"},
		{name: "readiness failing check", target: "/healthz/ready/memcached", status: 503, body: "Not ready\n"},
		{name: "liveness unknown", target: "/healthz/readyz", status: 404, body: "no check named \"readyz\"\n"},
		{name: "app", target: "/health", status: 418, body: "app"},
	}
	ready := newReadiness(t, true)
	tests := []struct {
		name string
		opts []Option
	}{
		{"liveness first", []Option{WithLivenessPaths("/healthz"), WithReadinessPaths("/healthz/ready")}},
		{"readiness first", []Option{WithReadinessPaths("/healthz/ready"), WithLivenessPaths("/healthz")}},
		{"deeper readiness listed first", []Option{WithReadinessPaths("/healthz/ready", "/ready"), WithLivenessPaths("/livez", "/healthz")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runCases(t, Probes(ready, tt.opts...)(app), cases) })
	}
}

// TestEndpointName: a verbose body ends with the name of the endpoint, the
// first segment of its probe path, as Kubernetes' InstallPathHandler names it
// (strings.Split(strings.TrimPrefix(path, "/"), "/")[0]): /healthz/ready ends
// "healthz check passed".
func TestEndpointName(t *testing.T) {
	ready := newReadiness(t, false)
	h := Probes(ready, WithLivenessPaths("/livez", "/healthz", "/-/alive"),
		WithReadinessPaths("/readyz", "/ready", "/healthz/ready", "/probes/v1/ready"))(app)
	const checks = "[+]startup ok\n[+]shutdown ok\n[+]postgres/default ok\n[+]memcached/a:1 ok\n[-]disk failed: reason withheld (optional)\n"
	runCases(t, h, []probeCase{
		{name: "livez", target: "/livez?verbose", status: 200, body: "[+]ping ok\nlivez check passed\n"},
		{name: "healthz", target: "/healthz?verbose", status: 200, body: "[+]ping ok\nhealthz check passed\n"},
		{name: "custom liveness", target: "/-/alive?verbose", status: 200, body: "[+]ping ok\n- check passed\n"},
		{name: "liveness check", target: "/healthz/ping?verbose", status: 200, body: "[+]ping ok\nhealthz check passed\n"},
		{name: "readyz", target: "/readyz?verbose", status: 200, body: checks + "readyz check passed\n"},
		{name: "ready", target: "/ready?verbose", status: 200, body: checks + "ready check passed\n"},
		{name: "nested ready", target: "/healthz/ready?verbose", status: 200, body: checks + "healthz check passed\n"},
		{name: "deeper ready", target: "/probes/v1/ready?verbose", status: 200, body: checks + "probes check passed\n"},
		{name: "ready check", target: "/ready/postgres?verbose", status: 200, body: "[+]postgres/default ok\nready check passed\n"},
		{name: "nested ready check", target: "/healthz/ready/postgres?verbose", status: 200, body: "[+]postgres/default ok\nhealthz check passed\n"},
	})
	failing := Probes(newReadiness(t, true), WithReadinessPaths("/healthz/ready"))(app)
	runCases(t, failing, []probeCase{
		{name: "nested ready failing", target: "/healthz/ready?verbose", status: 503, body: "" +
			"[+]startup ok\n[+]shutdown ok\n[+]postgres/default ok\n[-]memcached/a:1 failed: reason withheld\n" +
			"[-]disk failed: reason withheld (optional)\nhealthz check failed\n"},
	})
}

// TestExcludedWithGroup: a check excluded through its group says so, as
// Kubernetes' GroupedHealthChecker does; one excluded by its own name says
// "excluded: ok", even when its group is excluded too.
func TestExcludedWithGroup(t *testing.T) {
	h := Probes(newReadiness(t, true))(app)
	const head = "[+]startup ok\n[+]shutdown ok\n"
	const opt = "[-]disk failed: reason withheld (optional)\n"
	runCases(t, h, []probeCase{
		{name: "group", target: "/readyz?verbose&exclude=memcached", status: 200, body: head +
			"[+]postgres/default ok\n[+]memcached/a:1 excluded with memcached: ok\n" + opt + "readyz check passed\n"},
		{name: "name", target: "/readyz?verbose&exclude=memcached/a:1", status: 200, body: head +
			"[+]postgres/default ok\n[+]memcached/a:1 excluded: ok\n" + opt + "readyz check passed\n"},
		{name: "name and group", target: "/readyz?verbose&exclude=memcached&exclude=memcached/a:1", status: 200, body: head +
			"[+]postgres/default ok\n[+]memcached/a:1 excluded: ok\n" + opt + "readyz check passed\n"},
		{name: "two groups", target: "/readyz?verbose&exclude=postgres&exclude=memcached", status: 200, body: head +
			"[+]postgres/default excluded with postgres: ok\n[+]memcached/a:1 excluded with memcached: ok\n" + opt + "readyz check passed\n"},
		{name: "lifecycle", target: "/readyz?verbose&exclude=shutdown&exclude=memcached", status: 200, body: "[+]startup ok\n" +
			"[+]shutdown excluded: ok\n[+]postgres/default ok\n[+]memcached/a:1 excluded with memcached: ok\n" + opt + "readyz check passed\n"},
		{name: "group on its subpath", target: "/readyz/memcached?verbose&exclude=memcached", status: 200, body: "" +
			"[+]memcached/a:1 excluded with memcached: ok\nreadyz check passed\n"},
		{name: "group, not verbose", target: "/readyz?exclude=memcached", status: 200, body: "ok"},
	})
}

// TestTrailingSlash: p/ is no check, and p/ is not p: it is 404 with net/http's
// own "404 page not found", as Kubernetes' mux answers it. Any other p/… that
// names no check is 404 and says so.
func TestTrailingSlash(t *testing.T) {
	const notFound = "404 page not found\n"
	h := Probes(newReadiness(t, false))(app)
	runCases(t, h, []probeCase{
		{name: "livez", target: "/livez/", status: 404, body: notFound},
		{name: "healthz", target: "/healthz/", status: 404, body: notFound},
		{name: "readyz", target: "/readyz/", status: 404, body: notFound},
		{name: "readyz verbose", target: "/readyz/?verbose", status: 404, body: notFound},
		{name: "readyz json", target: "/readyz/", accept: "application/json", status: 404, body: notFound},
		{name: "readyz head", method: http.MethodHead, target: "/readyz/", status: 404, body: ""},
		{name: "readyz group", target: "/readyz/postgres/", status: 404, body: "no check named \"postgres/\"\n"},
		{name: "livez ping", target: "/livez/ping/", status: 404, body: "no check named \"ping/\"\n"},
		{name: "readyz root still ok", target: "/readyz", status: 200, body: "ok"},
	})
	mux := http.NewServeMux()
	mux.Handle("GET /readyz", ReadinessHandler(newReadiness(t, false)))
	mux.Handle("GET /readyz/{check...}", ReadinessHandler(newReadiness(t, false)))
	runCases(t, mux, []probeCase{
		{name: "mux readyz", target: "/readyz", status: 200, body: "ok"},
		{name: "mux trailing slash", target: "/readyz/", status: 404, body: notFound},
		{name: "mux check", target: "/readyz/postgres", status: 200, body: "ok"},
	})
	// What net/http itself answers, which the cases above compare with.
	rec := httptest.NewRecorder()
	http.NotFound(rec, httptest.NewRequest(http.MethodGet, "/readyz/", nil))
	if rec.Body.String() != notFound {
		t.Fatalf("net/http's 404 body is %q", rec.Body.String())
	}
}

// TestUnknownExclude: unknown exclude names are warned about sorted and once each.
func TestUnknownExclude(t *testing.T) {
	h := Probes(newReadiness(t, false))(app)
	const checks = "[+]startup ok\n[+]shutdown ok\n[+]postgres/default ok\n[+]memcached/a:1 ok\n[-]disk failed: reason withheld (optional)\n"
	runCases(t, h, []probeCase{
		{name: "readyz", target: "/readyz?verbose&exclude=zz&exclude=aa&exclude=aa", status: 200, body: checks +
			"warn: some health checks cannot be excluded: no matches for \"aa\",\"zz\"\nreadyz check passed\n"},
		{name: "readyz with a known one", target: "/readyz?verbose&exclude=zz&exclude=postgres&exclude=zz&exclude=b", status: 200, body: "" +
			"[+]startup ok\n[+]shutdown ok\n[+]postgres/default excluded with postgres: ok\n[+]memcached/a:1 ok\n[-]disk failed: reason withheld (optional)\n" +
			"warn: some health checks cannot be excluded: no matches for \"b\",\"zz\"\nreadyz check passed\n"},
		{name: "livez", target: "/livez?verbose&exclude=zz&exclude=aa&exclude=aa", status: 200, body: "[+]ping ok\n" +
			"warn: some health checks cannot be excluded: no matches for \"aa\",\"zz\"\nlivez check passed\n"},
		{name: "readyz json", target: "/readyz?exclude=zz&exclude=aa&exclude=zz&exclude=disk", accept: "application/json", status: 200, body: `{"status":"ok","checks":[` +
			`{"name":"startup","status":"ok"},{"name":"shutdown","status":"ok"},{"name":"postgres/default","status":"ok"},` +
			`{"name":"memcached/a:1","status":"ok"},{"name":"disk","status":"excluded","optional":true}],` +
			`"warnings":["some health checks cannot be excluded: no matches for \"aa\",\"zz\""]}` + "\n"},
	})
}

// TestEmptyExclude: an empty exclude= is warned about on both endpoints.
func TestEmptyExclude(t *testing.T) {
	h := Probes(newReadiness(t, false))(app)
	const warn = "warn: some health checks cannot be excluded: no matches for \"\"\n"
	const checks = "[+]startup ok\n[+]shutdown ok\n[+]postgres/default ok\n[+]memcached/a:1 ok\n[-]disk failed: reason withheld (optional)\n"
	runCases(t, h, []probeCase{
		{name: "readyz", target: "/readyz?verbose&exclude=", status: 200, body: checks + warn + "readyz check passed\n"},
		{name: "livez", target: "/livez?verbose&exclude=", status: 200, body: "[+]ping ok\n" + warn + "livez check passed\n"},
		{name: "healthz bare key", target: "/healthz?verbose&exclude", status: 200, body: "[+]ping ok\n" + warn + "healthz check passed\n"},
		{name: "livez twice", target: "/livez?verbose&exclude=&exclude=", status: 200, body: "[+]ping ok\n" + warn + "livez check passed\n"},
		{name: "livez not verbose", target: "/livez?exclude=", status: 200, body: "ok"},
	})
}

// TestAcceptJSON: JSON only when application/json is acceptable and ranks at
// least as high as text/plain; the kubelet's */* stays text.
func TestAcceptJSON(t *testing.T) {
	h := Probes(nil)(app)
	const asJSON = `{"status":"ok","checks":[{"name":"ping","status":"ok"}]}` + "\n"
	tests := []struct {
		accept string
		json   bool
	}{
		{"", false},
		{"*/*", false},
		{"text/plain", false},
		{"application/json", true},
		{"Application/JSON", true},
		{"application/json; charset=utf-8", true},
		{"application/*", true},
		{"application/json;q=0", false},
		{"application/json; q=0.0", false},
		{"text/html, application/json;q=0.1", false},
		{"text/html, application/json;q=0.9", false},
		{"text/plain;q=0.5, application/json;q=0.6", true},
		{"text/plain, application/json", true},
		{"application/json, text/plain;q=0.9", true},
		{"text/plain;q=0.9, application/json;q=0.8", false},
		{"application/json, */*", true},
		{"application/json;q=0.5, */*", false},
		{"*/*;q=0.1, application/json", true},
		{"text/*;q=0.5, application/json;q=0.5", true},
		{"application/json;q=0, text/plain;q=0", false},
		{"application/jsonx", false},
		{"application/json;q=abc", false},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", false},
	}
	for _, tt := range tests {
		body := "ok"
		if tt.json {
			body = asJSON
		}
		runCases(t, h, []probeCase{{name: "accept " + tt.accept, target: "/livez", accept: tt.accept, status: 200, body: body}})
	}
}

// TestOptionalMarked: optional checks say so on ok lines as on failed ones.
func TestOptionalMarked(t *testing.T) {
	ready, err := probes.NewReadiness([]probes.Checker{
		probes.Optional(probes.Func("memcached/x", func(context.Context) error { return nil })),
		probes.Optional(probes.Func("memcached/y", func(context.Context) error { return errors.New("down") })),
	})
	if err != nil {
		t.Fatal(err)
	}
	ready.MarkStarted()
	runCases(t, Probes(ready)(app), []probeCase{
		{name: "verbose", target: "/readyz?verbose", status: 200, body: "" +
			"[+]startup ok\n[+]shutdown ok\n[+]memcached/x ok (optional)\n[-]memcached/y failed: reason withheld (optional)\nreadyz check passed\n"},
		{name: "excluded", target: "/readyz?verbose&exclude=memcached/x", status: 200, body: "" +
			"[+]startup ok\n[+]shutdown ok\n[+]memcached/x excluded: ok\n[-]memcached/y failed: reason withheld (optional)\nreadyz check passed\n"},
		{name: "json", target: "/readyz", accept: "application/json", status: 200, body: `{"status":"ok","checks":[` +
			`{"name":"startup","status":"ok"},{"name":"shutdown","status":"ok"},` +
			`{"name":"memcached/x","status":"ok","optional":true},{"name":"memcached/y","status":"failed","optional":true}]}` + "\n"},
	})
}
