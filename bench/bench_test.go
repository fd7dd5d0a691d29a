package bench

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gok8s/gok8s/middleware"
	"github.com/gok8s/gok8s/probes"
)

// discard is a ResponseWriter that keeps nothing, shared by every library, so
// that the benchmarks count the handlers' own work and allocations.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

func serve(b *testing.B, h http.Handler, path string) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, req)
	if w.code != 0 && w.code != http.StatusOK {
		b.Fatalf("GET %s: %d", path, w.code)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

func noop(context.Context) error { return nil }

// sleep returns a check that takes d, or ends with its context.
func sleep(d time.Duration, runs *atomic.Int64) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if runs != nil {
			runs.Add(1)
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Workload 1: a liveness request.
func BenchmarkLiveness(b *testing.B) {
	for _, lib := range Libs() {
		b.Run(lib.Name, func(b *testing.B) {
			h, path := lib.Liveness()
			serve(b, h, path)
		})
	}
}

// Workload 2: a readiness request with one no-op check, each library with its
// default caching.
func BenchmarkReadinessNoop(b *testing.B) {
	for _, lib := range Libs() {
		b.Run(lib.Name, func(b *testing.B) {
			h, path, stop := lib.Readiness([]Check{{Name: "noop", Fn: noop}}, Settings{Timeout: time.Second})
			defer stop()
			waitHealthy(b, h, path)
			serve(b, h, path)
		})
	}
}

// Workload 3: a readiness request with three 20 ms checks and caching off:
// the wall time of one request shows whether checks run concurrently.
func BenchmarkReadiness3x20ms(b *testing.B) {
	for _, lib := range Libs() {
		b.Run(lib.Name, func(b *testing.B) {
			checks := []Check{{"a", sleep(20*time.Millisecond, nil)}, {"b", sleep(20*time.Millisecond, nil)}, {"c", sleep(20*time.Millisecond, nil)}}
			h, path, stop := lib.Readiness(checks, Settings{Timeout: time.Second, NoCache: true})
			defer stop()
			waitHealthy(b, h, path)
			serve(b, h, path)
		})
	}
}

// Workload 4: n concurrent readiness requests against one 20 ms check, on a
// fresh handler each time (an empty cache): wall time for all n, and how many
// times the check ran.
func BenchmarkConcurrent(b *testing.B) {
	for _, n := range []int{64, 1000} {
		for _, lib := range Libs() {
			b.Run(lib.Name+"/"+itoa(n), func(b *testing.B) {
				var runs atomic.Int64
				non200 := burst(b, lib, []Check{{"db", sleep(20*time.Millisecond, &runs)}}, n)
				b.ReportMetric(float64(runs.Load())/float64(b.N), "check-runs/op")
				b.ReportMetric(non200, "non-200/op")
			})
		}
	}
}

// burst sends n concurrent readiness requests to a fresh handler of lib for
// checks (an empty cache) on each iteration, and returns the answers other
// than 200 per burst. Only the burst is timed: not making the handler and the
// requests, nor stopping the handler.
func burst(b *testing.B, lib Lib, checks []Check, n int) (non200 float64) {
	var failed atomic.Int64
	reqs := make([]*http.Request, n)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		h, path, stop := lib.Readiness(checks, Settings{Timeout: time.Second})
		for i := range reqs {
			reqs[i] = httptest.NewRequest(http.MethodGet, path, nil)
		}
		b.StartTimer()
		var wg sync.WaitGroup
		for _, req := range reqs {
			wg.Go(func() {
				w := &discard{h: http.Header{}}
				h.ServeHTTP(w, req)
				if w.code != 0 && w.code != http.StatusOK {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		stop()
		b.StartTimer()
	}
	return float64(failed.Load()) / float64(b.N)
}

func itoa(n int) string {
	if n == 1000 {
		return "1000"
	}
	return "64"
}

// waitHealthy polls until the handler answers 200: libraries that check in
// the background answer 503 until their first run.
func waitHealthy(b *testing.B, h http.Handler, path string) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("GET %s: %d after 5s", path, rec.Code)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAdapters: each library answers 200 for a passing check and 503 for a
// failing one through its adapter, so the comparisons measure real answers.
func TestAdapters(t *testing.T) {
	for _, lib := range Libs() {
		t.Run(lib.Name, func(t *testing.T) {
			h, path := lib.Liveness()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != http.StatusOK {
				t.Errorf("liveness %s: %d", path, rec.Code)
			}
			if r := Leak(lib); r.Status < 500 {
				t.Errorf("readiness with a failing check: %d, want 5xx", r.Status)
			}
		})
	}
}

// Workload 7: cached readiness with 1, 10 and 100 no-op checks, each library
// with its default caching: how the cost of a request grows with the checks.
func BenchmarkReadinessChecks(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		for _, lib := range Libs() {
			b.Run(lib.Name+"/"+strconv.Itoa(n), func(b *testing.B) {
				checks := make([]Check, n)
				for i := range checks {
					checks[i] = Check{Name: "check-" + strconv.Itoa(i), Fn: noop}
				}
				h, path, stop := lib.Readiness(checks, Settings{Timeout: time.Second})
				defer stop()
				waitHealthy(b, h, path)
				serve(b, h, path)
			})
		}
	}
}

// Workload 8: 1,000 concurrent readiness requests against 100 checks of 20 ms
// each, on a fresh handler (an empty cache): wall time for all, and how many
// times each check ran. gok8s only: libraries that run checks one after
// another would take two seconds a request.
func BenchmarkFlood100(b *testing.B) {
	const n, checks = 1000, 100
	var runs atomic.Int64
	list := make([]Check, checks)
	for i := range list {
		list[i] = Check{Name: "check-" + strconv.Itoa(i), Fn: sleep(20*time.Millisecond, &runs)}
	}
	non200 := burst(b, Libs()[0], list, n)
	b.ReportMetric(float64(runs.Load())/float64(b.N)/checks, "runs/check")
	b.ReportMetric(non200, "non-200/op")
}

// Workload 9: requests through a real http.Server on loopback, keep-alive, from
// one load generator (b.RunParallel over one http.Transport): a bare net/http
// handler writing "ok"; gok8s's /livez and cached /readyz (two checks) through
// a server set up as app/main.go sets up the app's (its timeouts, header limit
// and error log; Probes in front of an API that probe paths never reach); and
// each library's liveness and readiness (one no-op check, default caching) on a
// plain server. ns/op is wall time per request: requests/s is 1e9 / ns/op.
func BenchmarkServer(b *testing.B) {
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	b.Run("bare", func(b *testing.B) { serveHTTP(b, &http.Server{Handler: bare, ReadHeaderTimeout: 5 * time.Second}, "/") })

	ready, err := probes.NewReadiness([]probes.Checker{
		probes.Func("postgres/default", noop),
		probes.Func("memcached/cache:11211", noop),
	}, probes.WithTTL(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	ready.MarkStarted()
	app := appServer(middleware.Probes(ready)(http.NotFoundHandler()))
	b.Run("app/livez", func(b *testing.B) { serveHTTP(b, app(), "/livez") })
	b.Run("app/readyz", func(b *testing.B) { serveHTTP(b, app(), "/readyz") })

	for _, lib := range Libs() {
		b.Run(lib.Name+"/livez", func(b *testing.B) {
			h, path := lib.Liveness()
			serveHTTP(b, &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, path)
		})
		b.Run(lib.Name+"/readyz", func(b *testing.B) {
			h, path, stop := lib.Readiness([]Check{{Name: "noop", Fn: noop}}, Settings{Timeout: time.Second})
			defer stop()
			waitHealthy(b, h, path)
			serveHTTP(b, &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, path)
		})
	}
}

// appServer returns a maker of servers for h with the app's settings.
func appServer(h http.Handler) func() *http.Server {
	return func() *http.Server { return NewServer(Target{Handler: h, App: true}) }
}

// serveHTTP serves srv on a loopback port and GETs path from parallel clients
// over keep-alive connections; every answer must be 200.
func serveHTTP(b *testing.B, srv *http.Server, path string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + path
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func() error { return getOK(client, url) }
	if err := get(); err != nil {
		b.Fatal(err)
	}
	var failed atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if get() != nil {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests failed", n, b.N)
	}
}
