package middleware

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gok8s/gok8s/probes"
)

// app is the wrapped handler: it answers 418 so that a probe that reaches it shows.
var app = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusTeapot)
	_, _ = w.Write([]byte("app"))
})

func newReadiness(t testing.TB, cacheDown bool) *probes.Readiness {
	t.Helper()
	down := errors.New("dial tcp 10.0.0.7:11211: connect: connection refused password=hunter2")
	cache := func(context.Context) error {
		if cacheDown {
			return down
		}
		return nil
	}
	r, err := probes.NewReadiness([]probes.Checker{
		probes.Func("postgres/default", func(context.Context) error { return nil }),
		probes.Func("memcached/a:1", cache),
		probes.Optional(probes.Func("disk", func(context.Context) error { return down })),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.MarkStarted()
	return r
}

type probeCase struct {
	name   string
	method string
	target string
	accept string
	status int
	body   string
}

func runCases(t *testing.T, h http.Handler, tests []probeCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, tt.target, nil)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status || rec.Body.String() != tt.body {
				t.Errorf("%s %s: got %d %q\nwant %d %q", method, tt.target, rec.Code, rec.Body.String(), tt.status, tt.body)
			}
			if tt.status == http.StatusTeapot {
				return
			}
			want := map[string]string{
				"Content-Type":           "text/plain; charset=utf-8",
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
			}
			if strings.HasPrefix(tt.body, "{") {
				want["Content-Type"] = "application/json"
			}
			if tt.status == http.StatusMethodNotAllowed {
				want["Allow"] = "GET, HEAD"
			}
			for k, v := range want {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if strings.Contains(rec.Body.String(), "refused") || strings.Contains(rec.Body.String(), "hunter2") {
				t.Errorf("body leaks the error: %q", rec.Body.String())
			}
		})
	}
}

func TestProbesReady(t *testing.T) {
	h := Probes(newReadiness(t, false))(app)
	runCases(t, h, []probeCase{
		{name: "livez", target: "/livez", status: 200, body: "ok"},
		{name: "healthz", target: "/healthz", status: 200, body: "ok"},
		{name: "livez verbose", target: "/livez?verbose", status: 200, body: "[+]ping ok\nlivez check passed\n"},
		{name: "livez trailing slash", target: "/livez/", status: 404, body: "404 page not found\n"},
		{name: "livez ping", target: "/livez/ping", status: 200, body: "ok"},
		{name: "livez unknown check", target: "/livez/postgres", status: 404, body: "no check named \"postgres\"\n"},
		{name: "livez exclude ping", target: "/livez?verbose&exclude=ping", status: 200, body: "[+]ping excluded: ok\nlivez check passed\n"},
		{name: "livez json", target: "/livez", accept: "application/json", status: 200, body: `{"status":"ok","checks":[{"name":"ping","status":"ok"}]}` + "\n"},
		{name: "readyz", target: "/readyz", status: 200, body: "ok"},
		{name: "readyz head", method: http.MethodHead, target: "/readyz", status: 200, body: ""},
		{name: "readyz verbose", target: "/readyz?verbose", status: 200, body: "" +
			"[+]startup ok\n" +
			"[+]shutdown ok\n" +
			"[+]postgres/default ok\n" +
			"[+]memcached/a:1 ok\n" +
			"[-]disk failed: reason withheld (optional)\n" +
			"readyz check passed\n"},
		{name: "readyz verbose=false still verbose", target: "/readyz?verbose=false", status: 200, body: "" +
			"[+]startup ok\n[+]shutdown ok\n[+]postgres/default ok\n[+]memcached/a:1 ok\n" +
			"[-]disk failed: reason withheld (optional)\nreadyz check passed\n"},
		{name: "readyz exclude unknown", target: "/readyz?verbose&exclude=nope&exclude=memcached", status: 200, body: "" +
			"[+]startup ok\n[+]shutdown ok\n[+]postgres/default ok\n[+]memcached/a:1 excluded with memcached: ok\n" +
			"[-]disk failed: reason withheld (optional)\n" +
			"warn: some health checks cannot be excluded: no matches for \"nope\"\n" +
			"readyz check passed\n"},
		{name: "readyz one check", target: "/readyz/postgres/default", status: 200, body: "ok"},
		{name: "readyz one group verbose", target: "/readyz/postgres?verbose", status: 200, body: "[+]postgres/default ok\nreadyz check passed\n"},
		{name: "readyz one optional failing", target: "/readyz/disk?verbose", status: 200, body: "[-]disk failed: reason withheld (optional)\nreadyz check passed\n"},
		{name: "readyz unknown check", target: "/readyz/redis", status: 404, body: "no check named \"redis\"\n"},
		{name: "readyz json", target: "/readyz", accept: "text/plain;q=0.5, application/json;q=0.9", status: 200, body: `{"status":"ok","checks":[` +
			`{"name":"startup","status":"ok"},{"name":"shutdown","status":"ok"},{"name":"postgres/default","status":"ok"},` +
			`{"name":"memcached/a:1","status":"ok"},{"name":"disk","status":"failed","optional":true}]}` + "\n"},
		{name: "post livez", method: http.MethodPost, target: "/livez", status: 405, body: "method not allowed\n"},
		{name: "delete readyz check", method: http.MethodDelete, target: "/readyz/postgres", status: 405, body: "method not allowed\n"},
		{name: "app root", target: "/", status: 418, body: "app"},
		{name: "app lookalike", target: "/readyzz", status: 418, body: "app"},
		{name: "app prefix", target: "/api/livez", status: 418, body: "app"},
		{name: "app post", method: http.MethodPost, target: "/notes", status: 418, body: "app"},
		{name: "app short", target: "/r", status: 418, body: "app"},
	})
}

func TestProbesNotReady(t *testing.T) {
	h := Probes(newReadiness(t, true))(app)
	runCases(t, h, []probeCase{
		{name: "livez stays ok", target: "/livez", status: 200, body: "ok"},
		{name: "readyz", target: "/readyz", status: 503, body: "Not ready\n"},
		{name: "readyz head", method: http.MethodHead, target: "/readyz", status: 503, body: ""},
		{name: "readyz verbose", target: "/readyz?verbose", status: 503, body: "" +
			"[+]startup ok\n" +
			"[+]shutdown ok\n" +
			"[+]postgres/default ok\n" +
			"[-]memcached/a:1 failed: reason withheld\n" +
			"[-]disk failed: reason withheld (optional)\n" +
			"readyz check failed\n"},
		{name: "readyz exclude failing", target: "/readyz?exclude=memcached/a:1", status: 200, body: "ok"},
		{name: "readyz failing check", target: "/readyz/memcached/a:1", status: 503, body: "Not ready\n"},
		{name: "readyz other check", target: "/readyz/postgres/default", status: 200, body: "ok"},
		{name: "readyz json", target: "/readyz", accept: "application/json", status: 503, body: `{"status":"failed","message":"Not ready","checks":[` +
			`{"name":"startup","status":"ok"},{"name":"shutdown","status":"ok"},{"name":"postgres/default","status":"ok"},` +
			`{"name":"memcached/a:1","status":"failed"},{"name":"disk","status":"failed","optional":true}]}` + "\n"},
		{name: "readyz json warning", target: "/readyz?exclude=x", accept: "application/json", status: 503, body: `{"status":"failed","message":"Not ready","checks":[` +
			`{"name":"startup","status":"ok"},{"name":"shutdown","status":"ok"},{"name":"postgres/default","status":"ok"},` +
			`{"name":"memcached/a:1","status":"failed"},{"name":"disk","status":"failed","optional":true}],` +
			`"warnings":["some health checks cannot be excluded: no matches for \"x\""]}` + "\n"},
	})
}

func TestProbesLifecycle(t *testing.T) {
	r, err := probes.NewReadiness([]probes.Checker{probes.Func("db", func(context.Context) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	h := Probes(r)(app)
	runCases(t, h, []probeCase{
		{name: "starting", target: "/readyz", status: 503, body: "Starting up\n"},
		{name: "starting verbose", target: "/readyz?verbose", status: 503, body: "[-]startup failed: reason withheld\n[+]shutdown ok\n[+]db ok\nreadyz check failed\n"},
		{name: "starting livez", target: "/livez", status: 200, body: "ok"},
	})
	r.MarkStarted()
	runCases(t, h, []probeCase{{name: "started", target: "/readyz", status: 200, body: "ok"}})
	r.MarkDraining()
	runCases(t, h, []probeCase{
		{name: "draining", target: "/readyz", status: 503, body: "Shutting down\n"},
		{name: "draining verbose", target: "/readyz?verbose", status: 503, body: "[+]startup ok\n[-]shutdown failed: reason withheld\n[+]db ok\nreadyz check failed\n"},
		{name: "draining livez", target: "/livez", status: 200, body: "ok"},
		{name: "draining app", target: "/notes", status: 418, body: "app"},
	})
}

func TestProbesPaths(t *testing.T) {
	h := Probes(nil, WithLivenessPaths("/-/alive"), WithReadinessPaths("/-/ready", "/ready"))(app)
	runCases(t, h, []probeCase{
		{name: "custom live", target: "/-/alive", status: 200, body: "ok"},
		{name: "custom ready", target: "/-/ready?verbose", status: 200, body: "[+]ping ok\n- check passed\n"},
		{name: "second ready", target: "/ready", status: 200, body: "ok"},
		{name: "default livez passes", target: "/livez", status: 418, body: "app"},
		{name: "default readyz passes", target: "/readyz", status: 418, body: "app"},
	})
	for _, bad := range [][]string{{"livez"}, {"/"}, {"/livez/"}, {"/a", "/a"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("paths %q: no panic", bad)
				}
			}()
			Probes(nil, WithLivenessPaths(bad...))
		}()
	}
}

// TestLateSuccess is issue 19's case through HTTP: a 50 ms check with a long
// timeout of its own (1 s in the issue; a minute here, so that nothing but
// the run's result can end the 503) under a 10 ms probe timeout. The first
// /readyz is 503; the run goes on and passes, and from then on /readyz is 200
// from that run's result, without running the check again.
func TestLateSuccess(t *testing.T) {
	var runs atomic.Int64
	slow := probes.Timeout(probes.Func("postgres/default", func(ctx context.Context) error {
		runs.Add(1)
		select {
		case <-time.After(50 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}), time.Minute)
	ready, err := probes.NewReadiness([]probes.Checker{slow}, probes.WithTimeout(10*time.Millisecond), probes.WithTTL(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ready.MarkStarted()
	h := Probes(ready)(app)
	get := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	if code := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("first /readyz: %d, want 503 (the check takes 50 ms, the probe waits 10)", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for get() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still not 200 5 s after the run began")
		}
		time.Sleep(5 * time.Millisecond) // poll: the run ends on its own
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("%d runs, want the first one only", n)
	}
}

func TestHandlersOnMux(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET /livez", LivenessHandler())
	mux.Handle("GET /readyz", ReadinessHandler(newReadiness(t, true)))
	mux.Handle("GET /readyz/{check...}", ReadinessHandler(newReadiness(t, true)))
	runCases(t, mux, []probeCase{
		{name: "livez", target: "/livez", status: 200, body: "ok"},
		{name: "readyz", target: "/readyz", status: 503, body: "Not ready\n"},
		{name: "readyz check", target: "/readyz/postgres/default", status: 200, body: "ok"},
		{name: "readyz unknown", target: "/readyz/nope", status: 404, body: "no check named \"nope\"\n"},
	})
}

// TestWireHeaders: through a real net/http server every probe response carries
// exactly Content-Type, Content-Length, Cache-Control and X-Content-Type-Options,
// including the 200 "ok" of GET, whose type and length net/http derives from
// the body.
func TestWireHeaders(t *testing.T) {
	srv := httptest.NewServer(Probes(newReadiness(t, false))(app))
	defer srv.Close()
	text, json := "text/plain; charset=utf-8", "application/json"
	tests := []struct {
		method, target, accept string
		status                 int
		ctype, length          string
	}{
		{method: http.MethodGet, target: "/livez", status: 200, ctype: text, length: "2"},
		{method: http.MethodHead, target: "/livez", status: 200, ctype: text, length: "2"},
		{method: http.MethodGet, target: "/readyz", status: 200, ctype: text, length: "2"},
		{method: http.MethodHead, target: "/readyz", status: 200, ctype: text, length: "2"},
		{method: http.MethodGet, target: "/readyz/postgres/default", status: 200, ctype: text, length: "2"},
		{method: http.MethodGet, target: "/livez?verbose", status: 200, ctype: text, length: "30"},
		{method: http.MethodGet, target: "/livez", accept: json, status: 200, ctype: json, length: "57"},
		{method: http.MethodGet, target: "/readyz/nope", status: 404, ctype: text, length: "22"},
		{method: http.MethodPost, target: "/readyz", status: 405, ctype: text, length: "19"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target+" "+tt.accept, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, tt.method, srv.URL+tt.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			want := map[string]string{
				"Content-Type":           tt.ctype,
				"Content-Length":         tt.length,
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
			}
			for k, v := range want {
				if got := resp.Header.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("%s = %q, want [%q]", k, got, v)
				}
			}
		})
	}
}

// TestProbeWithBody: a probe request that announces a body it never sends is
// answered at once, on a server without a ReadTimeout, and its connection
// closed, instead of the server waiting to discard the body.
func TestProbeWithBody(t *testing.T) {
	srv := httptest.NewServer(Probes(newReadiness(t, false))(app))
	defer srv.Close()
	tests := []struct{ name, request string }{
		{"content-length", "GET /livez HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"},
		{"chunked", "GET /readyz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"post", "POST /readyz HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := io.WriteString(c, tt.request); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no response while the body is pending: %v", err)
			}
			resp.Body.Close()
			if !resp.Close {
				t.Error("response keeps the connection open")
			}
		})
	}
}

// TestProbesKeepsRequest: the middleware passes the very request it got.
func TestProbesKeepsRequest(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/notes?x=1", nil)
	var got *http.Request
	h := Probes(nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r }))
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got != req || req.URL.String() != "/notes?x=1" {
		t.Fatalf("app got %p %v, want %p unchanged", got, got.URL, req)
	}
}

// FuzzProbes: no input panics, a probe path never reaches the app and every
// other path does.
func FuzzProbes(f *testing.F) {
	for _, seed := range [][3]string{
		{"GET", "/readyz", "verbose"},
		{"HEAD", "/readyz/postgres/default", "exclude=x&exclude=postgres"},
		{"POST", "/livez", ""},
		{"GET", "/healthz/ping", "verbose=1&exclude=%zz"},
		{"GET", "/readyz/../notes", ";;&&=="},
		{"GET", "/notes", "q=1"},
		{"PATCH", "/", ""},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	r := newReadiness(f, true)
	f.Fuzz(func(t *testing.T, method, path, query string) {
		reached := false
		h := Probes(r)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }))
		req := &http.Request{Method: method, URL: &url.URL{Path: path, RawQuery: query}, Header: http.Header{}}
		req = req.WithContext(t.Context())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		isProbe := false
		for _, p := range []string{"/livez", "/healthz", "/readyz"} {
			if path == p || strings.HasPrefix(path, p+"/") {
				isProbe = true
			}
		}
		if reached == isProbe {
			t.Fatalf("%s %q?%q: reached app = %v", method, path, query, reached)
		}
		if isProbe && strings.Contains(rec.Body.String(), "refused") {
			t.Fatalf("body leaks the error: %q", rec.Body.String())
		}
	})
}
