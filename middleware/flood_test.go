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

// flood sends every request of reqs at once through Probes to a new Readiness
// of checks checks that take 20 ms each, with an empty cache and opts, and
// returns how many times the checks ran and how many requests did not get 200.
func flood(tb testing.TB, checks int, reqs []*http.Request, opts ...probes.Option) (runs, failed int64) {
	tb.Helper()
	var ran, bad atomic.Int64
	slow := func(ctx context.Context) error {
		ran.Add(1)
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
	ready, err := probes.NewReadiness(list, append([]probes.Option{probes.WithTTL(time.Minute)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	ready.MarkStarted()
	h := middleware.Probes(ready)(noop)
	var wg sync.WaitGroup
	for _, req := range reqs {
		wg.Go(func() {
			w := &discard{h: http.Header{}}
			h.ServeHTTP(w, req)
			if w.status() != http.StatusOK {
				bad.Add(1)
			}
		})
	}
	wg.Wait()
	return ran.Load(), bad.Load()
}

// readyzRequests returns n requests for /readyz.
func readyzRequests(n int) []*http.Request {
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, "/readyz", nil)
	}
	return reqs
}

// TestReadyzFlood: 1,000 concurrent /readyz against 1 or 100 checks of 20 ms
// with an empty cache all get 200 from a single run of each check. The
// timeout is long, so that a loaded machine cannot fail the test: how long the
// flood takes is BenchmarkReadyzFlood's to measure.
func TestReadyzFlood(t *testing.T) {
	for _, checks := range []int{1, 100} {
		t.Run(fmt.Sprintf("checks=%d", checks), func(t *testing.T) {
			start := time.Now()
			runs, failed := flood(t, checks, readyzRequests(1000), probes.WithTimeout(time.Minute))
			if failed > 0 {
				t.Errorf("%d of 1000 requests did not get 200", failed)
			}
			if runs != int64(checks) {
				t.Errorf("%d runs of %d checks for 1000 requests, want one each", runs, checks)
			}
			t.Logf("1000 requests, %d checks: all answered in %s", checks, time.Since(start))
		})
	}
}

// BenchmarkReadyzFlood sends 1,000 concurrent /readyz requests against 1 or
// 100 checks of 20 ms each with an empty cache and the default timeout; it
// reports the runs of each check per flood, which must be 1.
func BenchmarkReadyzFlood(b *testing.B) {
	for _, checks := range []int{1, 100} {
		b.Run(fmt.Sprintf("checks=%d", checks), func(b *testing.B) {
			reqs := readyzRequests(1000)
			var runs int64
			b.ReportAllocs()
			for b.Loop() {
				r, failed := flood(b, checks, reqs)
				if failed > 0 {
					b.Fatalf("%d of %d requests failed", failed, len(reqs))
				}
				runs += r
			}
			b.ReportMetric(float64(runs)/float64(b.N)/float64(checks), "runs/check")
		})
	}
}
