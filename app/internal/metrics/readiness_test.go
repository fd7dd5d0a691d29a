package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gok8s/gok8s/probes"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestReadiness: through a real readiness checker, each change of state is
// counted once by the state entered, and each check's optional flag follows
// probes.Optional.
func TestReadiness(t *testing.T) {
	var fail atomic.Bool
	checks := []probes.Checker{
		probes.Func("db", func(context.Context) error {
			if fail.Load() {
				return errors.New("down")
			}
			return nil
		}),
		probes.Optional(probes.Func("cache", func(context.Context) error { return errors.New("down") })),
	}
	reg := prometheus.NewPedanticRegistry()
	r := NewReadiness(reg)
	if got := series(t, reg, "gok8s_readiness_transitions_total"); len(got) != 7 || got["ready not_ready"] != 0 {
		t.Fatalf("initial transitions %v, want the 7 possible changes at 0", got)
	}
	ready, err := probes.NewReadiness(checks, probes.WithTTL(0),
		probes.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), probes.WithObserver(r.Observer()))
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	ready.MarkStarted()

	// waitFor probes until the transitions counter holds want ("from to":
	// count; the others must not have moved from start).
	var start map[string]float64
	waitFor := func(what string, want map[string]float64) {
		t.Helper()
		var got map[string]float64
		if err := poll(5*time.Second, func() bool {
			ready.Report(t.Context(), probes.Filter{})
			got = series(t, reg, "gok8s_readiness_transitions_total")
			for k, v := range got {
				if w, ok := want[k]; (ok && v != w) || (!ok && v != start[k]) {
					return false
				}
			}
			return true
		}); err != nil {
			t.Fatalf("%s: %v: transitions %v, want %v", what, err, got, want)
		}
	}
	// The start: starting → ready, or starting → not_ready → ready when the
	// first round had not finished at MarkStarted.
	if err := poll(5*time.Second, func() bool {
		ready.Report(t.Context(), probes.Filter{})
		return ready.State() == probes.StateReady
	}); err != nil {
		t.Fatal("not ready:", err)
	}
	var got map[string]float64
	if err := poll(5*time.Second, func() bool {
		got = series(t, reg, "gok8s_readiness_transitions_total")
		return got["starting ready"]+got["not_ready ready"] == 1
	}); err != nil || got["starting ready"]+got["starting not_ready"] != 1 {
		t.Fatalf("start: transitions %v, want one from starting and one to ready", got)
	}
	start = got
	for n := range 3 { // flapping: three times out and back
		i := float64(n)
		fail.Store(true)
		waitFor("db down", map[string]float64{"ready not_ready": i + 1, "not_ready ready": start["not_ready ready"] + i})
		fail.Store(false)
		waitFor("db back", map[string]float64{"ready not_ready": i + 1, "not_ready ready": start["not_ready ready"] + i + 1})
	}
	ready.MarkDraining()
	waitFor("draining", map[string]float64{"ready not_ready": 3, "not_ready ready": start["not_ready ready"] + 3, "ready draining": 1})

	if got := series(t, reg, "gok8s_probe_check_optional"); len(got) != 2 || got["db"] != 0 || got["cache"] != 1 {
		t.Errorf("optional %v, want db 0 and cache 1", got)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
