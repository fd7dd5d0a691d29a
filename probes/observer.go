package probes

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// CheckRun describes one run of a check whose result is in.
type CheckRun struct {
	// Name is the check's name.
	Name string
	// Err is the run's error, nil when the check passed. It may carry driver
	// detail: log it (see [Redact]) or count it, never write it to a response.
	Err error
	// Duration is how long the run took until its result was in: until the
	// check returned, or its timeout if it had not returned by then.
	Duration time.Duration
	// TimedOut is set when the check did not return within its timeout; Err
	// then wraps [ErrTimeout].
	TimedOut bool
	// Panicked is set when the check panicked; Err then wraps [ErrPanic].
	Panicked bool
	// Optional is set for a check wrapped in [Optional].
	Optional bool
}

// Observer receives events, httptrace-style: nil fields are skipped.
//
// Callbacks run off the probe's path, each observer's on a goroutine of its own,
// one at a time and in the order the events happened, so an Observer needs no
// locking of its own. A callback that blocks holds back that observer's later
// events, but never a probe request, a check or another observer. Meanwhile its
// events wait: state changes latest-wins, as grpc-go's health Watch keeps one
// slot, so that a slow observer may skip an intermediate state but always ends
// on the current one; runs in a queue of [MaxPendingEvents], beyond which new
// runs are dropped, logged at WARN and counted ([Readiness.DroppedRuns]). A
// callback that panics is recovered and logged at ERROR; delivery goes on.
type Observer struct {
	// CheckDone is called once for each run of a check, when its result is in:
	// when the check returns, or when its timeout ends if it has not returned
	// by then. Runs happen at most once per TTL per check, however many probes
	// arrive.
	CheckDone func(CheckRun)
	// StateChanged is called for each change of the overall state, except
	// that a state followed by another before the observer was told of it is
	// skipped: From is then the state it was last told of. The state changes
	// as soon as a check's result or the lifecycle does; checks run when asked
	// (by probes) or while a [Subscription] is open.
	StateChanged func(Transition)
}

// MaxPendingEvents is how many events wait for a blocked [Observer] before new
// runs are dropped.
const MaxPendingEvents = 1024

// WithObserver adds o to the observers of a [Readiness]. It may be given several
// times; every observer is called, in the order given.
func WithObserver(o Observer) Option {
	return func(opts *options) {
		if o.CheckDone != nil || o.StateChanged != nil {
			opts.observers = append(opts.observers, o)
		}
	}
}

// event is one observer event: a run, or a transition when run is nil.
type event struct {
	run  *CheckRun
	tr   Transition
	skip bool // a transition that a later one replaced, or that changes nothing
}

// events sends observer events to one sink per observer.
type events struct {
	sinks   []*sink
	runs    bool // some observer takes CheckDone, so runs build events
	log     *slog.Logger
	dropped atomic.Uint64 // runs dropped, all observers together
}

func newEvents(observers []Observer, log *slog.Logger) *events {
	q := &events{log: log}
	for _, o := range observers {
		q.sinks = append(q.sinks, &sink{o: o, q: q})
		q.runs = q.runs || o.CheckDone != nil
	}
	return q
}

// run sends run to the observers that take runs. It never blocks on one.
func (q *events) run(run CheckRun) {
	if !q.runs {
		return
	}
	for _, s := range q.sinks {
		if s.o.CheckDone != nil {
			s.send(&event{run: &run})
		}
	}
}

// transition sends tr to the observers that take state changes. It never blocks on one.
func (q *events) transition(tr Transition) {
	for _, s := range q.sinks {
		if s.o.StateChanged != nil {
			s.send(&event{tr: tr})
		}
	}
}

// sink delivers one observer's events on a goroutine of its own, which runs
// while the queue holds any.
type sink struct {
	o Observer
	q *events

	mu      sync.Mutex
	queue   []*event
	pending *event // the transition in queue, if any: a later one replaces it
	running bool   // a delivery goroutine is running
	dropped int    // runs dropped since the queue was last full
}

// send queues ev and starts delivery if none is running.
func (s *sink) send(ev *event) {
	s.mu.Lock()
	switch {
	case ev.run != nil && len(s.queue) >= MaxPendingEvents:
		s.dropped++
		first := s.dropped == 1
		s.mu.Unlock()
		s.q.dropped.Add(1)
		if first {
			s.q.log.Warn("readiness: an observer is blocked; dropping check runs", "pending", MaxPendingEvents)
		}
		return
	case ev.run == nil && s.pending != nil:
		// Latest wins: one transition from the state the observer was last
		// told of to the new one, after every run queued so far.
		from := s.pending.tr.From
		if s.pending != s.queue[len(s.queue)-1] {
			s.pending.skip = true
			s.pending = &event{}
			s.queue = append(s.queue, s.pending)
		}
		s.pending.tr = Transition{From: from, To: ev.tr.To, Failing: ev.tr.Failing, At: ev.tr.At}
		s.pending.skip = from == ev.tr.To
	default:
		s.queue = append(s.queue, ev)
		if ev.run == nil {
			s.pending = ev
		}
	}
	start := !s.running
	s.running = true
	s.mu.Unlock()
	if start {
		go s.deliver()
	}
}

// deliver calls the observer for queued events until the queue is empty.
func (s *sink) deliver() {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.running, s.queue = false, nil
			dropped := s.dropped
			s.dropped = 0
			s.mu.Unlock()
			if dropped > 0 {
				s.q.log.Warn("readiness: check runs dropped for an observer", "count", dropped)
			}
			return
		}
		ev := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		if ev == s.pending {
			s.pending = nil
		}
		s.mu.Unlock()
		if !ev.skip {
			s.call(ev)
		}
	}
}

// call calls the observer for ev, recovering a panic.
func (s *sink) call(ev *event) {
	defer func() {
		if p := recover(); p != nil {
			s.q.log.Error("readiness: observer panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	if ev.run != nil {
		s.o.CheckDone(*ev.run)
	} else {
		s.o.StateChanged(ev.tr)
	}
}
