package probes

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// CheckRun describes one finished run of a check.
type CheckRun struct {
	// Name is the check's name.
	Name string
	// Err is the run's error, nil when the check passed. It may carry driver
	// detail: log it (see [Redact]) or count it, never write it to a response.
	Err error
	// Duration is how long the check ran, up to its return.
	Duration time.Duration
	// TimedOut is set when the check did not return within its timeout; Err
	// then wraps [ErrTimeout].
	TimedOut bool
	// Panicked is set when the check panicked; Err then wraps [ErrPanic].
	Panicked bool
	// Optional is set for a check wrapped in [Optional].
	Optional bool
}

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

// stage orders states by lifecycle: a state of a lower stage never follows one
// of a higher stage.
func (s State) stage() int {
	switch s {
	case StateStarting:
		return 0
	case StateDraining:
		return 2
	}
	return 1
}

// Transition is a change of the overall state.
type Transition struct {
	From, To State
	// Failing names the checks that hold readiness back, in report order,
	// lifecycle checks ("startup", "shutdown") included; optional checks never.
	Failing []string
}

// Observer receives events, httptrace-style: nil fields are skipped.
//
// Callbacks run off the probe's path, each observer's on a goroutine of its own,
// one at a time and in the order the events happened, so an Observer needs no
// locking of its own. A callback that blocks holds back that observer's later
// events, but never a probe request, a check or another observer: events wait in
// a queue of [MaxPendingEvents] per observer, and the newest are dropped (and
// counted in a WARN log line) while it is full. A callback that panics is
// recovered and logged at ERROR; delivery goes on.
type Observer struct {
	// CheckDone is called once for each run of a check, after it returns.
	// Runs happen at most once per TTL per check, however many probes arrive.
	CheckDone func(CheckRun)
	// StateChanged is called once for each change of the overall state.
	// [Readiness.MarkStarted] and [Readiness.MarkDraining] cause theirs at once;
	// the others are found when a round of checks, or an unfiltered
	// [Readiness.Report], sees the change. Checks run only when asked (by
	// probes), so with no probe nothing changes.
	StateChanged func(Transition)
}

// MaxPendingEvents is how many events wait for a blocked [Observer] before new
// ones are dropped.
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
	run *CheckRun
	tr  Transition
}

// events sends observer events to one sink per observer.
type events struct {
	sinks    []*sink
	wantRuns bool // some observer takes CheckDone, so runs build events
}

func newEvents(observers []Observer, log *slog.Logger) *events {
	q := &events{}
	for _, o := range observers {
		q.sinks = append(q.sinks, &sink{o: o, log: log})
		q.wantRuns = q.wantRuns || o.CheckDone != nil
	}
	return q
}

// send queues ev for every observer. It never blocks on one.
func (q *events) send(ev event) {
	for _, s := range q.sinks {
		s.send(ev)
	}
}

// sink delivers one observer's events on a goroutine of its own, which runs
// while the queue holds any.
type sink struct {
	o   Observer
	log *slog.Logger

	mu      sync.Mutex
	queue   []event
	running bool // a delivery goroutine is running
	dropped int  // events dropped since the queue was last full
}

// send queues ev and starts delivery if none is running.
func (s *sink) send(ev event) {
	if ev.run != nil && s.o.CheckDone == nil || ev.run == nil && s.o.StateChanged == nil {
		return
	}
	s.mu.Lock()
	if len(s.queue) >= MaxPendingEvents {
		s.dropped++
		first := s.dropped == 1
		s.mu.Unlock()
		if first {
			s.log.Warn("readiness: an observer is blocked; dropping events", "pending", MaxPendingEvents)
		}
		return
	}
	s.queue = append(s.queue, ev)
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
				s.log.Warn("readiness: observer events dropped", "count", dropped)
			}
			return
		}
		ev := s.queue[0]
		s.queue[0] = event{}
		s.queue = s.queue[1:]
		s.mu.Unlock()
		s.call(ev)
	}
}

// call calls the observer for ev, recovering a panic.
func (s *sink) call(ev event) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("readiness: observer panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	if ev.run != nil {
		s.o.CheckDone(*ev.run)
	} else {
		s.o.StateChanged(ev.tr)
	}
}
