package probes

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// signalled reports whether s has a signal pending, taking it.
func signalled(s *Subscription) bool {
	select {
	case <-s.C:
		return true
	default:
		return false
	}
}

// waitSignal waits up to 5 s for a signal on s.
func waitSignal(t *testing.T, s *Subscription, what string) {
	t.Helper()
	select {
	case <-s.C:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no signal within 5 s", what)
	}
}

// TestSubscriptionSignals: a subscription is signalled on each change of the
// lifecycle and of any check's outcome, optional checks included, and on
// nothing else; one slot holds any number of changes. The subscription keeps
// the checks fresh, so the steps move the clock and wait for the results.
func TestSubscriptionSignals(t *testing.T) {
	var dbDown, cacheDown atomic.Bool
	fails := func(down *atomic.Bool) func(context.Context) error {
		return func(context.Context) error {
			if down.Load() {
				return errors.New("down")
			}
			return nil
		}
	}
	var results atomic.Int64
	clk := newFakeClock()
	r, err := NewReadiness([]Checker{Func("db", fails(&dbDown)), Optional(Func("cache", fails(&cacheDown)))},
		WithTTL(time.Second), withClock(clk), WithObserver(Observer{CheckDone: func(CheckRun) { results.Add(1) }}))
	if err != nil {
		t.Fatal(err)
	}
	// settle waits for n more results, then for the publish that made them
	// (an observer is told of a result just before): Report takes the lock.
	settle := func(n int64) {
		waitFor(t, func() bool { return results.Load() >= n })
		r.Report(t.Context(), Filter{Only: StartupCheck})
	}
	tick := func() { n := results.Load() + 2; clk.advance(time.Second); settle(n) }
	var sub *Subscription
	steps := []struct {
		name   string
		do     func()
		signal bool
		status string // Status of "", db and cache after the step
	}{
		{"subscribe: the first runs", func() { sub = r.Subscribe(); settle(2) }, true, "false true true"},
		{"mark started", r.MarkStarted, true, "true true true"},
		{"mark started again", r.MarkStarted, false, "true true true"},
		{"same results after the TTL", tick, false, "true true true"},
		{"optional check fails", func() { cacheDown.Store(true); tick() }, true, "true true false"},
		{"check fails", func() { dbDown.Store(true); tick() }, true, "false false false"},
		{"still failing", tick, false, "false false false"},
		{"mark draining", r.MarkDraining, true, "false false false"},
		{"check passes while draining", func() { dbDown.Store(false); tick() }, true, "false true false"},
	}
	for _, s := range steps {
		s.do()
		if got := signalled(sub); got != s.signal {
			t.Errorf("%s: signalled %v, want %v", s.name, got, s.signal)
		}
		got := ""
		for _, name := range []string{"", "db", "cache"} {
			ok, _ := r.Status(name)
			got += fmt.Sprint(ok, " ")
		}
		if got != s.status+" " {
			t.Errorf("%s: Status = %s, want %s", s.name, got, s.status)
		}
	}
	sub.Close()
	sub.Close()
	cacheDown.Store(false)
	check := func() error { return r.Check(t.Context()) }
	n := results.Load() + 2
	clk.advance(time.Second)
	answer(t, async(check)) // runs the checks: no subscription keeps them fresh
	settle(n)
	if ok, _ := r.Status("cache"); !ok {
		t.Fatal("the cache's outcome did not change")
	}
	if signalled(sub) {
		t.Error("signalled after Close")
	}
}

// TestSubscriptionsMany: a change signals each of 1,000 open subscriptions.
func TestSubscriptionsMany(t *testing.T) {
	r := mustReadiness(t, []Checker{Func("db", ok)})
	subs := make([]*Subscription, 1000)
	for i := range subs {
		subs[i] = r.Subscribe()
		defer subs[i].Close()
	}
	waitFor(t, func() bool { ok, _ := r.Status("db"); return ok })
	r.Report(t.Context(), Filter{Only: StartupCheck}) // the lock: the first result's signals are sent
	for _, s := range subs {
		signalled(s) // the first result's, for those open then
	}
	r.MarkDraining()
	for i, s := range subs {
		if !signalled(s) {
			t.Fatalf("subscription %d not signalled", i)
		}
	}
}

// TestSubscriptionKeepsFresh: while a subscription is open, each check runs
// again as its TTL ends, with no request, so that a watcher sees an outage;
// a hung check is not started again until it returns. With none open, time
// passing runs nothing.
func TestSubscriptionKeepsFresh(t *testing.T) {
	var runs, results atomic.Int64
	var down atomic.Bool
	clk := newFakeClock()
	r := mustReadiness(t, []Checker{counted("db", &runs, func(context.Context) error {
		if down.Load() {
			return errors.New("down")
		}
		return nil
	})}, WithTTL(time.Second), WithTimeout(100*time.Millisecond), withClock(clk),
		// An observer is told of a result once its TTL timer is set.
		WithObserver(Observer{CheckDone: func(CheckRun) { results.Add(1) }}))

	clk.advance(10 * time.Second)
	if n := runs.Load(); n != 0 {
		t.Fatalf("%d runs with no request and no subscription", n)
	}
	sub := r.Subscribe() // no result yet: runs at once
	waitFor(t, func() bool { return runs.Load() == 1 })
	waitSignal(t, sub, "first result")
	if r.State() != StateReady {
		t.Fatalf("state %v after the first run, want ready", r.State())
	}
	for i := range int64(5) {
		waitFor(t, func() bool { return results.Load() == 1+i })
		clk.advance(time.Second)
		waitFor(t, func() bool { return runs.Load() == 2+i })
	}
	down.Store(true)
	waitFor(t, func() bool { return results.Load() == 6 })
	clk.advance(time.Second)
	waitSignal(t, sub, "outage")
	if ok, _ := r.Status(""); ok || r.State() != StateNotReady {
		t.Fatalf("Status(\"\") %v, state %v during the outage, want not ready", ok, r.State())
	}

	sub.Close()
	waitFor(t, func() bool { return results.Load() == 7 })
	before := runs.Load()
	clk.advance(10 * time.Second)
	if n := runs.Load(); n != before {
		t.Errorf("%d runs after the last subscription closed", n-before)
	}
}

// TestCloseStopsKeepingFresh: after Readiness.Close, an open subscription no
// longer runs the checks (they may hold closed connections).
func TestCloseStopsKeepingFresh(t *testing.T) {
	var runs atomic.Int64
	clk := newFakeClock()
	r := mustReadiness(t, []Checker{counted("db", &runs, ok)}, WithTTL(time.Second), withClock(clk))
	sub := r.Subscribe()
	defer sub.Close()
	waitFor(t, func() bool { ok, _ := r.Status("db"); return ok })
	r.Report(t.Context(), Filter{Only: StartupCheck}) // the lock: the first run's TTL timer is set
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	clk.advance(10 * time.Second)
	if n := runs.Load(); n != 1 {
		t.Errorf("%d runs, want the first only", n)
	}
}
