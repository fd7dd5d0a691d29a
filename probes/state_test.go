package probes

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestStatus(t *testing.T) {
	down := func(context.Context) error { return errors.New("down") }
	r, err := NewReadiness([]Checker{
		Func("postgres/a", ok),
		Func("postgres/b", ok),
		Func("memcached/m:1", ok),
		Optional(Func("memcached/m:2", down)),
		Func("disk", ok),
	})
	if err != nil {
		t.Fatal(err)
	}
	type status struct{ ok, found bool }
	tests := []struct {
		name                      string
		before, started, draining status // before any run; started and run; draining
	}{
		{name: "", before: status{false, true}, started: status{true, true}, draining: status{false, true}},
		{name: "startup", before: status{false, true}, started: status{true, true}, draining: status{true, true}},
		{name: "shutdown", before: status{true, true}, started: status{true, true}, draining: status{false, true}},
		{name: "postgres/a", before: status{false, true}, started: status{true, true}, draining: status{true, true}},
		{name: "postgres", before: status{false, true}, started: status{true, true}, draining: status{true, true}},
		{name: "memcached", before: status{false, true}, started: status{false, true}, draining: status{false, true}},
		{name: "memcached/m:1", before: status{false, true}, started: status{true, true}, draining: status{true, true}},
		{name: "memcached/m:2", before: status{false, true}, started: status{false, true}, draining: status{false, true}},
		{name: "disk", before: status{false, true}, started: status{true, true}, draining: status{true, true}},
		{name: "nope", before: status{false, false}, started: status{false, false}, draining: status{false, false}},
		{name: "postgres/", before: status{false, false}, started: status{false, false}, draining: status{false, false}},
		{name: "readyz", before: status{false, false}, started: status{false, false}, draining: status{false, false}},
	}
	phases := []struct {
		name string
		do   func()
		want func(tt int) status
	}{
		{"before", func() {}, func(i int) status { return tests[i].before }},
		{"started", func() { r.MarkStarted(); _ = r.Check(t.Context()) }, func(i int) status { return tests[i].started }},
		{"draining", r.MarkDraining, func(i int) status { return tests[i].draining }},
	}
	for _, p := range phases {
		p.do()
		for i, tt := range tests {
			ok, found := r.Status(tt.name)
			if want := p.want(i); (status{ok, found}) != want {
				t.Errorf("%s: Status(%q) = %v, %v; want %v, %v", p.name, tt.name, ok, found, want.ok, want.found)
			}
		}
	}
}

// TestStateFollowsResults: the state changes when a run's result is in,
// whoever started the run (a request, any report or a subscription), and
// only then: a report over fresh results changes nothing.
func TestStateFollowsResults(t *testing.T) {
	tests := []struct {
		name  string
		start func(r *Readiness) // starts a run of db once its TTL has ended
	}{
		{"check", func(r *Readiness) { _ = r.Check(context.Background()) }},
		{"report", func(r *Readiness) { r.Report(context.Background(), Filter{}) }},
		{"verbose report of the group", func(r *Readiness) { r.Report(context.Background(), Filter{Only: "postgres"}) }},
		{"report excluding another check", func(r *Readiness) { r.Report(context.Background(), Filter{Exclude: []string{"disk"}}) }},
		{"subscription", func(r *Readiness) { r.Subscribe() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var down atomic.Bool
			var runs atomic.Int64
			clk := newFakeClock()
			var rec recorder
			r := mustReadiness(t, []Checker{
				counted("postgres/default", &runs, func(context.Context) error {
					if down.Load() {
						return errors.New("down")
					}
					return nil
				}),
				Func("disk", ok),
			}, withClock(clk), WithObserver(rec.observer()))
			if err := answer(t, async(func() error { return r.Check(t.Context()) })); err != nil {
				t.Fatal(err)
			}
			down.Store(true)
			for range 3 { // fresh results: nothing runs, nothing changes
				r.Report(t.Context(), Filter{})
				if r.State() != StateReady || runs.Load() != 1 {
					t.Fatalf("a report over fresh results: state %v after %d runs, want ready after 1", r.State(), runs.Load())
				}
			}
			clk.advance(DefaultTTL)
			answer(t, async(func() error { tt.start(r); return nil }))
			waitFor(t, func() bool { return r.State() == StateNotReady })
			if ok, _ := r.Status("postgres/default"); ok {
				t.Error("Status(postgres/default) is ok after it failed")
			}
			// The observer ends on the state (latest-wins may merge the transitions it missed).
			waitFor(t, func() bool { return strings.Contains(rec.lastTransition(), "->not_ready[") })
		})
	}
}

// TestTransitionOnce: a change of state is told once, however many requests
// and reports see it.
func TestTransitionOnce(t *testing.T) {
	var rec recorder
	var down atomic.Bool
	clk := newFakeClock()
	r, err := NewReadiness([]Checker{Func("db", func(context.Context) error {
		if down.Load() {
			return errors.New("down")
		}
		return nil
	})}, WithTTL(time.Millisecond), withClock(clk), WithObserver(Observer{StateChanged: rec.observer().StateChanged}))
	if err != nil {
		t.Fatal(err)
	}
	answer(t, async(func() error { return r.Check(t.Context()) })) // runs the check while starting
	r.MarkStarted()
	waitFor(t, func() bool { return rec.lastTransition() == "starting->ready[]" })
	down.Store(true)
	for range 50 {
		clk.advance(time.Millisecond)
		_ = answer(t, async(func() error { return r.Check(t.Context()) }))
		r.Report(t.Context(), Filter{})
	}
	waitFor(t, func() bool { return rec.lastTransition() == "ready->not_ready[db]" })
	for range 50 {
		_ = r.Check(t.Context())
	}
	const want = "starting->ready[] ready->not_ready[db]"
	if got := rec.String(); got != want {
		t.Errorf("transitions %q, want %q", got, want)
	}
}

// TestTransitionAt: a transition carries the time of the change by the
// readiness' clock, also when it reaches an observer later; one that merges
// the transitions a busy observer missed (latest wins) carries the latest's.
func TestTransitionAt(t *testing.T) {
	var down atomic.Bool
	clk := newFakeClock()
	start := clk.Now()
	entered, block := make(chan struct{}, 1), make(chan struct{})
	got := make(chan Transition, 4)
	r, err := NewReadiness([]Checker{Func("db", func(context.Context) error {
		if down.Load() {
			return errors.New("down")
		}
		return nil
	})}, WithTTL(time.Millisecond), withClock(clk), WithObserver(Observer{StateChanged: func(tr Transition) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-block
		got <- tr
	}}))
	if err != nil {
		t.Fatal(err)
	}
	answer(t, async(func() error { return r.Check(t.Context()) }))
	r.MarkStarted() // starting -> ready at start: the observer takes it and is busy
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the observer was not called within 10s")
	}
	down.Store(true)
	clk.advance(time.Second)
	_ = answer(t, async(func() error { return r.Check(t.Context()) })) // ready -> not_ready, queued
	waitFor(t, func() bool { return r.State() == StateNotReady })
	clk.advance(6 * time.Second)
	r.MarkDraining() // not_ready -> draining at start+7s: merged with the queued one
	close(block)

	want := []Transition{
		{From: StateStarting, To: StateReady, At: start},
		{From: StateReady, To: StateDraining, At: start.Add(7 * time.Second)},
	}
	for i, w := range want {
		select {
		case tr := <-got:
			if tr.From != w.From || tr.To != w.To || !tr.At.Equal(w.At) {
				t.Errorf("transition %d: %s -> %s at %s, want %s -> %s at %s", i, tr.From, tr.To, tr.At, w.From, w.To, w.At)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no transition %d within 10s", i)
		}
	}
}
