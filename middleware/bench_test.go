package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gok8s/gok8s/middleware"
	"github.com/gok8s/gok8s/probes"
)

// discard is a ResponseWriter that keeps nothing, so that benchmarks count the
// handler's own allocations and not a recorder's.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

func serve(b *testing.B, h http.Handler, target string, want int) {
	b.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, req)
	}
	if w.code != want && (want != 200 || w.code != 0) {
		b.Fatalf("status %d, want %d", w.code, want)
	}
}

var noop = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

// BenchmarkPassThrough compares a request for the app through Probes with the
// bare app handler; `make bench` prints the ratio.
func BenchmarkPassThrough(b *testing.B) {
	b.Run("bare", func(b *testing.B) { serve(b, noop, "/api/notes/42", 200) })
	b.Run("probes", func(b *testing.B) { serve(b, middleware.Probes(nil)(noop), "/api/notes/42", 200) })
}

// cachedReadiness returns a started Readiness of the four checks of a typical
// service (the two lifecycle checks, a pool and a memcached server) whose
// results are cached for an hour, with opts.
func cachedReadiness(b *testing.B, opts ...probes.Option) *probes.Readiness {
	b.Helper()
	ready, err := probes.NewReadiness([]probes.Checker{
		probes.Func("postgres/default", func(context.Context) error { return nil }),
		probes.Func("memcached/cache:11211", func(context.Context) error { return nil }),
	}, append([]probes.Option{probes.WithTTL(time.Hour)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	ready.MarkStarted()
	return ready
}

// observer is an Observer that counts its events, as a metrics exporter would.
func observer() probes.Option {
	var runs, transitions atomic.Int64
	return probes.WithObserver(probes.Observer{
		CheckDone:    func(probes.CheckRun) { runs.Add(1) },
		StateChanged: func(probes.Transition) { transitions.Add(1) },
	})
}

func BenchmarkLivez(b *testing.B) {
	b.Run("bare", func(b *testing.B) { serve(b, middleware.Probes(nil)(noop), "/livez", 200) })
	b.Run("observer", func(b *testing.B) { serve(b, middleware.Probes(cachedReadiness(b, observer()))(noop), "/livez", 200) })
}

// BenchmarkReadyzCached is /readyz with four checks and a cached result, with
// and without an observer.
func BenchmarkReadyzCached(b *testing.B) {
	b.Run("bare", func(b *testing.B) { serve(b, middleware.Probes(cachedReadiness(b))(noop), "/readyz", 200) })
	b.Run("observer", func(b *testing.B) { serve(b, middleware.Probes(cachedReadiness(b, observer()))(noop), "/readyz", 200) })
}

// BenchmarkReadyzChecks is cached /readyz with 1, 10 and 100 checks.
func BenchmarkReadyzChecks(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("checks=%d", n), func(b *testing.B) {
			checks := make([]probes.Checker, n)
			for i := range checks {
				checks[i] = probes.Func(fmt.Sprintf("check-%d", i), func(context.Context) error { return nil })
			}
			ready, err := probes.NewReadiness(checks, probes.WithTTL(time.Hour))
			if err != nil {
				b.Fatal(err)
			}
			ready.MarkStarted()
			serve(b, middleware.Probes(ready)(noop), "/readyz", 200)
		})
	}
}

// BenchmarkReadyzFlood sends 1,000 concurrent /readyz requests against 1 or 100
// checks of 20 ms each with an empty cache; it reports the runs of each check
// per flood, which must be 1.
func BenchmarkReadyzFlood(b *testing.B) {
	for _, checks := range []int{1, 100} {
		b.Run(fmt.Sprintf("checks=%d", checks), func(b *testing.B) { flood(b, checks) })
	}
}

func flood(b *testing.B, checks int) {
	const n = 1000
	var runs atomic.Int64
	slow := func(ctx context.Context) error {
		runs.Add(1)
		t := time.NewTimer(20 * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	list := make([]probes.Checker, checks)
	for i := range list {
		list[i] = probes.Func(fmt.Sprintf("slow-%d", i), slow)
	}
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, "/readyz", nil)
	}
	b.ReportAllocs()
	for b.Loop() {
		ready, err := probes.NewReadiness(list, probes.WithTTL(time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		ready.MarkStarted()
		h := middleware.Probes(ready)(noop)
		var wg sync.WaitGroup
		var failed atomic.Int64
		for i := range n {
			wg.Go(func() {
				w := &discard{h: http.Header{}}
				h.ServeHTTP(w, reqs[i])
				if w.code != 200 {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		if failed.Load() > 0 {
			b.Fatalf("%d of %d requests failed", failed.Load(), n)
		}
	}
	b.ReportMetric(float64(runs.Load())/float64(b.N)/float64(checks), "runs/check")
}
