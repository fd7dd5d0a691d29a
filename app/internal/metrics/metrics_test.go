package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gok8s/gok8s/app/internal/links"
	"github.com/gok8s/gok8s/middleware"
	"github.com/gok8s/gok8s/probes"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// linksMux has the links API's patterns, with handlers that answer a fixed status.
func linksMux() *http.ServeMux {
	mux := http.NewServeMux()
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }
	}
	mux.HandleFunc("POST /api/links", status(201))
	mux.HandleFunc("GET /api/links", status(200))
	mux.HandleFunc("GET /api/links/{slug}", status(200))
	mux.HandleFunc("DELETE /api/links/{slug}", status(204))
	mux.HandleFunc("GET /{slug}", status(302))
	mux.HandleFunc("/api/links", status(405))
	mux.HandleFunc("GET /silent", func(http.ResponseWriter, *http.Request) {}) // writes nothing: 200
	mux.HandleFunc("GET /body", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hi") })
	return mux
}

// series returns the values of the gathered series name, keyed by their label
// values joined with spaces, in the order of the label names.
func series(t *testing.T, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			out[strings.Join(labels, " ")] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

// TestHTTPRouteLabels: the route label is the pattern that matched, without
// its method, never the raw path.
func TestHTTPRouteLabels(t *testing.T) {
	tests := []struct {
		method, path       string
		route, label, code string // the labels route, method and code
	}{
		{"GET", "/api/links/abc", "/api/links/{slug}", "GET", "200"},
		{"GET", "/api/links/xyz-123", "/api/links/{slug}", "GET", "200"},
		{"HEAD", "/api/links/abc", "/api/links/{slug}", "HEAD", "200"},
		{"DELETE", "/api/links/abc", "/api/links/{slug}", "DELETE", "204"},
		{"POST", "/api/links", "/api/links", "POST", "201"},
		{"PATCH", "/api/links", "/api/links", "PATCH", "405"},
		{"GET", "/some-slug", "/{slug}", "GET", "302"},
		{"GET", "/silent", "/silent", "GET", "200"},
		{"GET", "/body", "/body", "GET", "200"},
		{"BREW", "/api/links", "/api/links", "OTHER", "405"},
		{"PUT", "/some-slug", Unmatched, "PUT", "405"}, // the mux's own 405: no pattern
		{"GET", "/a/b/c", Unmatched, "GET", "404"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			h := HTTPHandler(reg, linksMux())
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tt.method, tt.path, nil))
			// Series keys list the label values in the order of the names: code, method, route.
			want := tt.code + " " + tt.label + " " + tt.route
			if got := series(t, reg, "gok8s_http_requests_total"); len(got) != 1 || got[want] != 1 {
				t.Errorf("gok8s_http_requests_total = %v, want {%s: 1}", got, want)
			}
			want = tt.label + " " + tt.route
			if got := series(t, reg, "gok8s_http_request_duration_seconds"); len(got) != 1 || got[want] != 1 {
				t.Errorf("gok8s_http_request_duration_seconds = %v, want one sample for %s", got, want)
			}
			if got := series(t, reg, "gok8s_http_requests_in_flight"); got[""] != 0 {
				t.Errorf("gok8s_http_requests_in_flight = %v after the request, want 0", got)
			}
		})
	}
}

// TestHTTPProbesNotCounted: mounted behind middleware.Probes, as main mounts
// it, probe requests never reach the HTTP metrics.
func TestHTTPProbesNotCounted(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	h := middleware.Probes(nil)(HTTPHandler(reg, linksMux()))
	for _, path := range []string{"/livez", "/healthz", "/readyz", "/readyz?verbose", "/livez/ping", "/readyz/nothing"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 && rec.Code != 404 {
			t.Errorf("GET %s: %d", path, rec.Code)
		}
	}
	if got := series(t, reg, "gok8s_http_requests_total"); len(got) != 0 {
		t.Errorf("probe requests were counted: %v", got)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/links", nil))
	if got := series(t, reg, "gok8s_http_requests_total"); len(got) != 1 {
		t.Errorf("after one API request: %v", got)
	}
}

// TestHTTPInFlight: the gauge counts a request while its handler runs.
func TestHTTPInFlight(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	inside, release := make(chan struct{}), make(chan struct{})
	h := HTTPHandler(reg, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(inside)
		<-release
	}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}()
	<-inside
	if g := series(t, reg, "gok8s_http_requests_in_flight"); g[""] != 1 {
		t.Errorf("in flight during the request: %v, want 1", g)
	}
	close(release)
	<-done
	if g := series(t, reg, "gok8s_http_requests_in_flight"); g[""] != 0 {
		t.Errorf("in flight after the request: %v, want 0", g)
	}
}

func TestProbes(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	before := time.Now()
	p := NewProbes(reg, []string{"postgres/default", "memcached/a:1"})
	if got := series(t, reg, "gok8s_readiness_state"); got["starting"] != 1 || got["ready"] != 0 || len(got) != 4 {
		t.Errorf("initial state: %v", got)
	}
	if got := series(t, reg, "gok8s_readiness_state_changed_timestamp_seconds")[""]; got < float64(before.Unix()) || got > float64(time.Now().Unix()+1) {
		t.Errorf("initial state changed at %v, want about %d (NewProbes)", got, before.Unix())
	}
	if got := series(t, reg, "gok8s_probe_check_runs_total"); len(got) != 8 || got["postgres/default failed"] != 0 {
		t.Errorf("initial runs: %v, want 8 series at 0", got)
	}
	if got := series(t, reg, "gok8s_probe_check_up"); len(got) != 0 {
		t.Errorf("up before any run: %v, want none", got)
	}

	steps := []struct {
		check, result string
		state         probes.State
		wantUp        float64
		wantReady     float64
	}{
		{"postgres/default", ResultOK, probes.StateReady, 1, 1},
		{"postgres/default", ResultFailed, probes.StateNotReady, 0, 0},
		{"postgres/default", ResultTimeout, probes.StateNotReady, 0, 0},
		{"postgres/default", ResultPanic, probes.StateNotReady, 0, 0},
		{"postgres/default", ResultOK, probes.StateReady, 1, 1},
		{"postgres/default", ResultOK, probes.StateDraining, 1, 0},
	}
	changed := p.Observer().StateChanged
	at := time.Date(2026, 12, 7, 17, 0, 0, 500_000_000, time.UTC)
	for i, s := range steps {
		at = at.Add(time.Duration(i+1) * time.Second)
		p.checkDone(s.check, s.result, 3*time.Millisecond)
		changed(probes.Transition{To: s.state, At: at})
		if got, want := series(t, reg, "gok8s_readiness_state_changed_timestamp_seconds")[""], float64(at.UnixMilli())/1e3; got != want {
			t.Errorf("step %d: state changed at %v, want %v (the transition's At)", i, got, want)
		}
		if got := series(t, reg, "gok8s_probe_check_up")[s.check]; got != s.wantUp {
			t.Errorf("step %d: up %v, want %v", i, got, s.wantUp)
		}
		if got := series(t, reg, "gok8s_ready")[""]; got != s.wantReady {
			t.Errorf("step %d: ready %v, want %v", i, got, s.wantReady)
		}
		st := series(t, reg, "gok8s_readiness_state")
		sum := 0.0
		for _, v := range st {
			sum += v
		}
		if st[s.state.String()] != 1 || sum != 1 {
			t.Errorf("step %d: state %v, want one-hot %s", i, st, s.state)
		}
	}
	runs := series(t, reg, "gok8s_probe_check_runs_total")
	for key, want := range map[string]float64{
		"postgres/default ok": 3, "postgres/default failed": 1, "postgres/default timeout": 1, "postgres/default panic": 1,
		"memcached/a:1 ok": 0,
	} {
		if runs[key] != want {
			t.Errorf("runs_total{%s} = %v, want %v", key, runs[key], want)
		}
	}
	if d := series(t, reg, "gok8s_probe_check_duration_seconds")["postgres/default"]; d != 6 {
		t.Errorf("duration samples %v, want 6", d)
	}
}

func TestCache(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	c := NewCache(reg)
	c.Hit()
	c.Hit()
	c.Miss()
	c.Error("get")
	c.Error("set")
	c.Error("set")
	if got := series(t, reg, "gok8s_cache_hits_total")[""]; got != 2 {
		t.Errorf("hits %v, want 2", got)
	}
	if got := series(t, reg, "gok8s_cache_misses_total")[""]; got != 1 {
		t.Errorf("misses %v, want 1", got)
	}
	got := series(t, reg, "gok8s_cache_errors_total")
	want := map[string]float64{"get": 1, "add": 0, "cas": 0, "set": 2, "version": 0} // every op from the start
	if !maps.Equal(got, want) {
		t.Errorf("errors %v, want %v", got, want)
	}

	c.Breaker("a:11211", "closed")
	c.Breaker("b:11211", "closed")
	c.Breaker("b:11211", "open")
	c.Skipped("b:11211", links.SkipBreaker)
	c.Skipped("b:11211", links.SkipBreaker)
	c.Skipped("a:11211", links.SkipTombstone)
	c.Breaker("b:11211", "half_open")
	states := series(t, reg, "gok8s_cache_breaker_state")
	want = map[string]float64{
		"a:11211 closed": 1, "a:11211 open": 0, "a:11211 half_open": 0,
		"b:11211 closed": 0, "b:11211 open": 0, "b:11211 half_open": 1,
	}
	if !maps.Equal(states, want) {
		t.Errorf("breaker states %v, want %v", states, want)
	}
	want = map[string]float64{ // every reason of every server from its first state (labels sorted by name)
		"breaker a:11211": 0, "tombstone a:11211": 1,
		"breaker b:11211": 2, "tombstone b:11211": 0,
	}
	if skipped := series(t, reg, "gok8s_cache_breaker_skipped_total"); !maps.Equal(skipped, want) {
		t.Errorf("skipped %v, want %v", skipped, want)
	}
}

// lazyPool returns a pool that never connects: its Stat is all zeros but MaxConns.
func lazyPool(t *testing.T, maxConns int32) *pgxpool.Pool {
	t.Helper()
	pc, err := pgxpool.ParseConfig("postgres://u@127.0.0.1:1/db")
	if err != nil {
		t.Fatal(err)
	}
	pc.MaxConns = maxConns
	p, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestPools(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Pools(map[string]*pgxpool.Pool{"default": lazyPool(t, 7), "reports": lazyPool(t, 3)}))
	if got := series(t, reg, "gok8s_pgxpool_max_connections"); got["default"] != 7 || got["reports"] != 3 {
		t.Errorf("max_connections %v", got)
	}
	if got := series(t, reg, "gok8s_pgxpool_acquires_total"); len(got) != 2 {
		t.Errorf("acquires_total %v, want one series per pool", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 13 {
		t.Errorf("%d pgxpool families, want 13", len(mfs))
	}
}

// TestLint: every collector passes client_golang's linter (naming, units,
// _total counters, help text).
func TestLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	h := HTTPHandler(reg, linksMux())
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/links/x", nil))
	p := NewProbes(reg, []string{"postgres/default"})
	p.checkDone("postgres/default", ResultOK, time.Millisecond)
	cache := NewCache(reg)
	cache.Hit()
	cache.Breaker("memcached:11211", "closed")
	reg.MustRegister(BuildInfo("v1.2.3"))

	ready, err := probes.NewReadiness(nil)
	if err != nil {
		t.Fatal(err)
	}
	collectors := map[string]prometheus.Collector{
		"Pools":       Pools(map[string]*pgxpool.Pool{"default": lazyPool(t, 2)}),
		"BuildInfo":   BuildInfo("v1.2.3"),
		"DroppedRuns": DroppedRuns(ready),
	}
	for _, name := range slices.Sorted(maps.Keys(collectors)) {
		problems, err := testutil.CollectAndLint(collectors[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s: %s", name, p.Metric, p.Text)
		}
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	if n := len(series(t, reg, "gok8s_build_info")); n != 1 {
		t.Errorf("%d build_info series", n)
	}
}

func TestAdminHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(BuildInfo("v9"))
	h := AdminHandler(reg, nil)
	tests := []struct {
		method, path string
		code         int
		contains     string
	}{
		{"GET", "/metrics", 200, `gok8s_build_info{goversion="go`},
		{"GET", "/debug/pprof/", 200, "goroutine"},
		{"GET", "/debug/pprof/goroutine?debug=1", 200, "goroutine profile:"},
		{"GET", "/debug/pprof/cmdline", 200, ""},
		{"GET", "/debug/pprof/symbol", 200, "num_symbols"},
		{"GET", "/debug/runtime", 404, ""},
		{"GET", "/", 404, ""},
		{"POST", "/metrics", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.contains) {
				t.Errorf("%d %.200q, want %d containing %q", rec.Code, rec.Body.String(), tt.code, tt.contains)
			}
		})
	}
}

// BenchmarkHTTP compares the links API's route through HTTPHandler with the
// bare mux: the difference is the middleware's cost.
func BenchmarkHTTP(b *testing.B) {
	for _, bm := range []struct {
		name string
		h    func() http.Handler
	}{
		{"bare", func() http.Handler { return linksMux() }},
		{"metrics", func() http.Handler { return HTTPHandler(prometheus.NewRegistry(), linksMux()) }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			h := bm.h()
			r := httptest.NewRequest("GET", "/api/links/abc", nil)
			w := discard{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}

// discard is a ResponseWriter that keeps nothing, so the benchmark measures
// the handlers, not a recorder.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(p []byte) (int, error) { return len(p), nil }
func (d discard) WriteHeader(int)             {}

// TestProbesObserver: wired to a real readiness checker, the observer turns
// runs and transitions into the series: a failing check is down and counted
// by its result, and the readiness gauge follows the state.
func TestProbesObserver(t *testing.T) {
	var fail atomic.Bool
	checks := []probes.Checker{
		probes.Func("db", func(ctx context.Context) error {
			if fail.Load() {
				return errors.New("down")
			}
			return nil
		}),
		probes.Func("slow", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }),
		probes.Func("boom", func(ctx context.Context) error { panic("boom") }),
	}
	reg := prometheus.NewPedanticRegistry()
	p := NewProbes(reg, []string{"db", "slow", "boom"})
	ready, err := probes.NewReadiness(checks, probes.WithTTL(0), probes.WithTimeout(20*time.Millisecond),
		probes.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), probes.WithObserver(p.Observer()))
	if err != nil {
		t.Fatal(err)
	}
	ready.MarkStarted()

	// waitFor probes and scrapes until the series hold want, or fails after 5 s.
	waitFor := func(what string, want map[string]float64) {
		t.Helper()
		var got map[string]float64
		err := poll(5*time.Second, func() bool {
			ready.Report(t.Context(), probes.Filter{}) // a probe: runs the checks
			got = map[string]float64{"ready": series(t, reg, "gok8s_ready")[""]}
			for k, v := range series(t, reg, "gok8s_probe_check_up") {
				got["up "+k] = v
			}
			for k, v := range series(t, reg, "gok8s_readiness_state") {
				got["state "+k] = v
			}
			for k, v := range want {
				if g, ok := got[k]; !ok || g != v {
					return false
				}
			}
			return true
		})
		if err != nil {
			t.Fatalf("%s: %v: series %v, want %v", what, err, got, want)
		}
	}
	waitFor("db up", map[string]float64{"up db": 1, "up slow": 0, "up boom": 0, "ready": 0, "state not_ready": 1})
	// Events reach the observer off the probe's path: poll for the counts too
	// (a gauge that was never set reads 0 before the first run is seen).
	var runs map[string]float64
	if err := poll(5*time.Second, func() bool {
		ready.Report(t.Context(), probes.Filter{})
		runs = series(t, reg, "gok8s_probe_check_runs_total")
		return runs["db ok"] > 0 && runs["slow timeout"] > 0 && runs["boom panic"] > 0
	}); err != nil || runs["db failed"] != 0 {
		t.Errorf("runs %v: want db ok, slow timeout, boom panic and no db failed", runs)
	}
	fail.Store(true)
	waitFor("db down", map[string]float64{"up db": 0, "ready": 0})
	if series(t, reg, "gok8s_probe_check_runs_total")["db failed"] == 0 {
		t.Error("no failed run of db counted")
	}
	ready.MarkDraining()
	waitFor("draining", map[string]float64{"state draining": 1, "state not_ready": 0, "ready": 0})
}

// TestDroppedRuns: the runs an observer blocked beyond its queue misses are
// counted, as the Readiness counts them.
func TestDroppedRuns(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	ready, err := probes.NewReadiness([]probes.Checker{probes.Func("db", func(context.Context) error { return nil })},
		probes.WithTTL(0), probes.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		probes.WithObserver(probes.Observer{CheckDone: func(probes.CheckRun) { <-block }}))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(DroppedRuns(ready))
	if got := series(t, reg, "gok8s_probe_check_runs_dropped_total")[""]; got != 0 {
		t.Fatalf("%v dropped before any run", got)
	}
	const runs = probes.MaxPendingEvents + 50
	for range runs {
		_ = ready.Check(t.Context())
	}
	// One run is with the blocked observer, MaxPendingEvents wait behind it.
	got := series(t, reg, "gok8s_probe_check_runs_dropped_total")[""]
	if want := float64(ready.DroppedRuns()); got != want || got < runs-probes.MaxPendingEvents-1 {
		t.Errorf("gok8s_probe_check_runs_dropped_total = %v, want %v (at least %d)", got, want, runs-probes.MaxPendingEvents-1)
	}
}

// TestProbesReadyFlips: with every check passing the state goes starting →
// ready, and the ready gauge with it.
func TestProbesReadyFlips(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	p := NewProbes(reg, []string{"db"})
	ready, err := probes.NewReadiness([]probes.Checker{probes.Func("db", func(context.Context) error { return nil })},
		probes.WithTTL(0), probes.WithObserver(p.Observer()))
	if err != nil {
		t.Fatal(err)
	}
	if got := series(t, reg, "gok8s_ready")[""]; got != 0 {
		t.Fatalf("ready before start: %v", got)
	}
	ready.MarkStarted()
	err = poll(5*time.Second, func() bool {
		ready.Report(t.Context(), probes.Filter{})
		return series(t, reg, "gok8s_ready")[""] == 1 && series(t, reg, "gok8s_probe_check_up")["db"] == 1
	})
	if err != nil {
		t.Fatalf("ready %v, up %v; want 1, 1", series(t, reg, "gok8s_ready"), series(t, reg, "gok8s_probe_check_up"))
	}
	if got := series(t, reg, "gok8s_readiness_state"); got["ready"] != 1 || got["starting"] != 0 {
		t.Errorf("state %v, want ready", got)
	}
}

// poll calls ok every 10 ms until it returns true, or returns an error after limit.
func poll(limit time.Duration, ok func() bool) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(limit)
	for !ok() {
		select {
		case <-tick.C:
		case <-deadline:
			return fmt.Errorf("not so after %s", limit)
		}
	}
	return nil
}

// TestHTTPSeriesReused: repeated requests land on the series found the first
// time, and a request with an unknown method leaves no key behind.
func TestHTTPSeriesReused(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	h := HTTPHandler(reg, linksMux()).(*httpHandler)
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/links/a"}, {"GET", "/api/links/b"}, {"GET", "/api/links/a"}, {"DELETE", "/api/links/a"},
		{"BREW", "/api/links"}, {"MOO", "/api/links"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(r.method, r.path, nil))
	}
	got := series(t, reg, "gok8s_http_requests_total")
	want := map[string]float64{"200 GET /api/links/{slug}": 3, "204 DELETE /api/links/{slug}": 1, "405 OTHER /api/links": 2}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v, want %v", k, got[k], v)
		}
	}
	keys := 0
	h.series.Range(func(any, any) bool { keys++; return true })
	if keys != 2 {
		t.Errorf("%d cached keys, want 2 (none for unknown methods)", keys)
	}
}
