package probes

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"
)

// State is the overall readiness state.
type State int

// The states of a [Readiness]. It begins in StateStarting, moves between
// StateReady and StateNotReady once started, and ends in StateDraining; it
// never goes back to an earlier stage.
const (
	// StateStarting is the state until [Readiness.MarkStarted].
	StateStarting State = iota
	// StateReady is the state while every check that counts passes.
	StateReady
	// StateNotReady is the state while a check that counts fails.
	StateNotReady
	// StateDraining is the state from [Readiness.MarkDraining] on.
	StateDraining
)

// String returns "starting", "ready", "not_ready" or "draining".
func (s State) String() string {
	switch s {
	case StateStarting:
		return "starting"
	case StateReady:
		return "ready"
	case StateNotReady:
		return "not_ready"
	case StateDraining:
		return "draining"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Transition is a change of the overall state.
type Transition struct {
	From, To State
	// Failing names the checks that hold readiness back, in report order,
	// lifecycle checks ("startup", "shutdown") included; optional checks never.
	Failing []string
	// At is when the state changed, by the Readiness' clock.
	At time.Time
}

// outcome is what r knows at one moment, worked out by publish: what Check,
// State and Status read without a lock. It is never changed once stored.
type outcome struct {
	err      error // Check's answer: nil, or the *NotReady of the unfiltered report
	state    State
	started  bool
	draining bool
	pass     []bool        // per check, in order: its last result passed
	stale    bool          // a check's result is stale and no run of it is going: a request starts one
	firsts   chan struct{} // closed when every check that counts has a result; nil when none is awaited
	claimed  atomic.Bool   // a request is starting the runs of this stale outcome
	next     chan struct{} // closed when a newer outcome replaces this one
}

// State returns the current state: the lifecycle, and the last results of the
// checks that count. It runs no check.
func (r *Readiness) State() State { return r.cur.Load().state }

// Status reports the current outcome of name without running any check, and
// whether name is known. The empty name is the whole readiness, lifecycle and
// checks that count, as [Readiness.Check] answers when its results are fresh.
// [StartupCheck] and [ShutdownCheck] are the lifecycle checks. Any other name
// is a check or a group (see [Match]): ok when the last result of each of its
// checks passed. A check reports its own outcome, optional or not, and the
// lifecycle aside: while draining, Status("") is false and Status("postgres")
// may be true. A check that has not run yet is not ok.
//
// Status reads what the last runs found: checks run when asked (by Check and
// Report) or, while a [Subscription] is open, as their TTL ends. It locks
// nothing.
func (r *Readiness) Status(name string) (ok, found bool) {
	o := r.cur.Load()
	switch name {
	case "":
		return o.err == nil, true
	case StartupCheck:
		return o.started, true
	case ShutdownCheck:
		return !o.draining, true
	}
	idx, found := r.index[name]
	if !found {
		return false, false
	}
	for _, i := range idx {
		if !o.pass[i] {
			return false, true
		}
	}
	return true, true
}

// publish works out the outcome from the lifecycle and the checks' results,
// stores it, and then tells of the change: a transition to the log and the
// observers, a signal to the subscribers, and the end of the waits for the
// results now in. It is the one place where the state changes; every change of
// a result or of the lifecycle calls it. r.mu is held.
func (r *Readiness) publish() {
	prev := r.cur.Load()
	o := &outcome{started: r.started, draining: r.draining, pass: make([]bool, len(r.checks)), next: make(chan struct{})}
	failing := 0
	for i, e := range r.checks {
		o.pass[i] = e.ran && e.err == nil
		o.stale = o.stale || e.stale(r.ttl) && !e.busy
		if !e.optional && !o.pass[i] {
			failing++
		}
	}
	var failed failures // in report order: the lifecycle, then the checks that count
	if failing > 0 || !r.started || r.draining {
		failed = make(failures, 0, 2+failing)
	}
	if !r.started {
		failed = append(failed, failure{StartupCheck, r.starting})
	}
	if r.draining {
		failed = append(failed, failure{ShutdownCheck, r.stopping})
	}
	pending, ran := false, false // a check that counts awaits its first result; one ran and failed
	for i, e := range r.checks {
		if e.optional || o.pass[i] {
			continue
		}
		failed = append(failed, failure{e.name, e.result(nil)})
		pending = pending || !e.ran && e.flight != nil
		ran = ran || e.ran
	}
	if pending {
		if r.firsts == nil {
			r.firsts = make(chan struct{})
		}
		o.firsts = r.firsts
	}
	if nr := notReady(failed); nr != nil {
		o.err = nr
	}
	switch {
	case r.draining:
		o.state = StateDraining
	case !r.started:
		o.state = StateStarting
	case o.err != nil:
		o.state = StateNotReady
	default:
		o.state = StateReady
	}
	r.cur.Store(o)

	// Waiters read the outcome when they wake: only now may they.
	close(prev.next)
	for _, done := range r.ended {
		close(done)
	}
	clear(r.ended)
	r.ended = r.ended[:0]
	if !pending && r.firsts != nil {
		close(r.firsts)
		r.firsts = nil
	}
	if o.state != prev.state {
		r.transition(prev.state, o.state, failed, ran)
	}
	if o.state != prev.state || o.started != prev.started || o.draining != prev.draining || !slices.Equal(o.pass, prev.pass) {
		for s := range r.subs {
			select {
			case s.c <- struct{}{}:
			default: // a signal is pending already: the subscriber reads the latest
			}
		}
	}
}

// transition logs the move from one state to another and tells the
// observers. A move to StateNotReady logs at WARN when a check that counts ran
// and failed (ran), at INFO when only the lifecycle or checks not yet run hold
// readiness back.
func (r *Readiness) transition(from, to State, failed failures, ran bool) {
	var failing []string
	for _, f := range failed {
		failing = append(failing, f.name)
	}
	r.events.transition(Transition{From: from, To: to, Failing: failing, At: r.clock.Now()})
	switch to {
	case StateReady:
		r.log.Info("readiness: ready")
	case StateDraining:
		r.log.Info("readiness: draining", "failing", failing)
	case StateNotReady:
		level := slog.LevelInfo
		if ran {
			level = slog.LevelWarn
		}
		r.log.Log(context.Background(), level, "readiness: not ready", "failing", failing)
	}
}
