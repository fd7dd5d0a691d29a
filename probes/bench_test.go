package probes_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gok8s/gok8s/probes"
)

// readiness returns a started Readiness of n checks that pass, each result
// kept for an hour and already in.
func readiness(b *testing.B, n int) *probes.Readiness {
	b.Helper()
	checks := make([]probes.Checker, n)
	for i := range checks {
		checks[i] = probes.Func(fmt.Sprintf("group-%d/check-%d", i%10, i), func(context.Context) error { return nil })
	}
	ready, err := probes.NewReadiness(checks, probes.WithTTL(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	ready.MarkStarted()
	if err := ready.Check(b.Context()); err != nil {
		b.Fatal(err)
	}
	return ready
}

// BenchmarkCheck is Check with fresh results: one pointer read, whatever the
// number of checks.
func BenchmarkCheck(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("checks=%d", n), func(b *testing.B) {
			ready := readiness(b, n)
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if err := ready.Check(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStatus is Status of the whole readiness, of one check and of a
// group of 10 among 100 checks.
func BenchmarkStatus(b *testing.B) {
	ready := readiness(b, 100)
	for _, name := range []string{"", "group-3/check-53", "group-3"} {
		b.Run(fmt.Sprintf("name=%q", name), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ok, found := ready.Status(name); !ok || !found {
					b.Fatalf("Status(%q) = %v, %v", name, ok, found)
				}
			}
		})
	}
}

// BenchmarkChange is one run whose result changes the outcome (a check that
// passes and fails in turn, with no TTL), with 0 and 1,000 subscriptions
// open, each signalled on every change. The timeout is long, so that a run
// slowed by a loaded machine still ends within the request's wait.
func BenchmarkChange(b *testing.B) {
	for _, subs := range []int{0, 1000} {
		b.Run(fmt.Sprintf("subscriptions=%d", subs), func(b *testing.B) {
			var flip atomic.Bool
			ready, err := probes.NewReadiness([]probes.Checker{probes.Func("db", func(context.Context) error {
				if flip.Load() {
					return errors.New("down")
				}
				return nil
			})}, probes.WithTTL(0), probes.WithTimeout(time.Minute))
			if err != nil {
				b.Fatal(err)
			}
			ready.MarkStarted()
			for range subs {
				defer ready.Subscribe().Close()
			}
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				flip.Store(!flip.Load())
				// With subscribers the Readiness also runs the check by
				// itself, and a Check joins the run in flight: one begun
				// before the flip answers as before it. A run begun after
				// it must follow within a few Checks.
				for tries := 1; ; tries++ {
					err := ready.Check(ctx)
					if (err == nil) != flip.Load() {
						break
					}
					if tries == 100 {
						b.Fatalf("Check = %v with the check failing %v, %d times", err, flip.Load(), tries)
					}
				}
			}
		})
	}
}
