package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gok8s/gok8s/middleware"
	"github.com/gok8s/gok8s/probes"
)

// discard is a ResponseWriter that keeps nothing, so that benchmarks count the
// handler's own allocations and not a recorder's. Like net/http's, it takes a
// Write before any WriteHeader as 200.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header { return d.h }

func (d *discard) Write(p []byte) (int, error) {
	if d.code == 0 {
		d.code = http.StatusOK
	}
	return len(p), nil
}

func (d *discard) WriteHeader(code int) {
	if d.code == 0 {
		d.code = code
	}
}

// status returns the status net/http would send: 200 for a handler that
// wrote nothing.
func (d *discard) status() int {
	if d.code == 0 {
		return http.StatusOK
	}
	return d.code
}

// serve measures h answering target, after one request that warms its cache
// and must answer want.
func serve(b *testing.B, h http.Handler, target string, want int) {
	b.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, req)
	if w.status() != want {
		b.Fatalf("status %d, want %d", w.status(), want)
	}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, req)
	}
	if w.status() != want {
		b.Fatalf("status %d, want %d", w.status(), want)
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
