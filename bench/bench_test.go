package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
				var failed atomic.Int64
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					h, path, stop := lib.Readiness([]Check{{"db", sleep(20*time.Millisecond, &runs)}}, Settings{Timeout: time.Second})
					b.StartTimer()
					var wg sync.WaitGroup
					for range n {
						wg.Go(func() {
							rec := httptest.NewRecorder()
							h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
							if rec.Code != http.StatusOK {
								failed.Add(1)
							}
						})
					}
					wg.Wait()
					b.StopTimer()
					stop()
					b.StartTimer()
				}
				b.ReportMetric(float64(runs.Load())/float64(b.N), "check-runs/op")
				b.ReportMetric(float64(failed.Load())/float64(b.N), "non-200/op")
			})
		}
	}
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
