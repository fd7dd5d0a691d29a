package probes

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// entry is one check and what the [Readiness] knows of it. The fields after
// timeout are guarded by Readiness.mu.
type entry struct {
	check    Checker
	name     string
	optional bool
	timeout  time.Duration // how long one run may take

	err     error   // the last result
	ran     bool    // err is a result: a run has returned or timed out
	due     bool    // the result's TTL has ended
	busy    bool    // the check is running, maybe past its timeout
	flight  *flight // the run whose result is awaited; nil when none is
	results uint64  // results so far, so that a TTL timer ends its own only
	failing bool    // the last result failed, for the logs
}

// flight is one run of a check, until its result is in.
type flight struct {
	done  chan struct{} // closed by the publish after the result is in
	start time.Time
}

// stale reports whether a request must run e before it can use e's result:
// there is none, or it is older than ttl.
func (e *entry) stale(ttl time.Duration) bool { return !e.ran || e.due || ttl == 0 }

// result returns e's result for a report: the last one, or ctxErr, or why
// there is none.
func (e *entry) result(ctxErr error) error {
	switch {
	case e.ran:
		return e.err
	case ctxErr != nil:
		return ctxErr
	case e.flight != nil:
		return errNoResult
	}
	return errNotRun
}

var (
	errNoResult = fmt.Errorf("%w: no result yet", ErrTimeout)
	errNotRun   = errors.New("probes: check has not run yet")
)

// Check returns nil when r is ready and a [NotReady] otherwise, as the
// unfiltered [Readiness.Report] would, without building the report. While
// every check's result is younger than the TTL it reads the outcome r keeps:
// it locks nothing, reads no clock and allocates nothing. Otherwise it starts
// the runs that are due, every check's (see [Readiness]), and waits for those of
// the checks that count, no longer than the timeout.
func (r *Readiness) Check(ctx context.Context) error {
	o := r.cur.Load()
	if !o.stale && o.firsts == nil {
		return o.err
	}
	return r.refresh(ctx, o)
}

// refresh is Check when a result is stale or a first result is awaited. One
// request claims a stale outcome and starts the runs; the others wait for the
// outcome it publishes rather than queue on the lock. Then each waits for the
// runs it started of checks that count and for every first result of a check
// that counts, all within the timeout from its arrival.
func (r *Readiness) refresh(ctx context.Context, o *outcome) error {
	expired, stop := r.deadline()
	defer stop()
	for o.stale && !o.claimed.CompareAndSwap(false, true) {
		select {
		case <-o.next:
			o = r.cur.Load()
		case <-expired:
			return r.cur.Load().err
		case <-ctx.Done():
			return &NotReady{Err: ctx.Err()}
		}
	}
	var waits []<-chan struct{}
	switch {
	case o.stale:
		waits = r.startStale()
	case o.firsts != nil:
		waits = append(waits, o.firsts)
	}
	if err := await(ctx, expired, waits); err != nil {
		return &NotReady{Err: err}
	}
	return r.cur.Load().err
}

// startStale starts a run of every check whose result is stale, publishes,
// and returns what a request waits for: the runs of the checks that count and
// every first result of a check that counts.
func (r *Readiness) startStale() []<-chan struct{} {
	var waits []<-chan struct{}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.checks {
		if e.stale(r.ttl) && !e.busy {
			f := r.start(e)
			if !e.optional {
				waits = append(waits, f.done)
			}
		}
	}
	r.publish() // even with no run started: it ends the wait of those who did not claim
	if r.firsts != nil {
		waits = append(waits, r.firsts)
	}
	return waits
}

// deadline returns a channel closed once the timeout has passed, and the
// function that stops its timer.
func (r *Readiness) deadline() (expired <-chan struct{}, stop func() bool) {
	c := make(chan struct{})
	t := r.clock.AfterFunc(r.timeout, func() { close(c) })
	return c, t.Stop
}

// await waits until every channel of waits is closed or expired is. It
// returns ctx's error if ctx is done first.
func await(ctx context.Context, expired <-chan struct{}, waits []<-chan struct{}) error {
	for _, w := range waits {
		select {
		case <-w:
		case <-expired:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// start starts a run of e, which is not busy. The run's result is in when the
// check returns or its timeout ends, whichever comes first. r.mu is held; the
// caller publishes.
func (r *Readiness) start(e *entry) *flight {
	f := &flight{done: make(chan struct{}), start: r.clock.Now()}
	e.busy, e.flight = true, f
	ctx, cancel := context.WithDeadline(context.Background(), f.start.Add(e.timeout))
	timeout := r.clock.AfterFunc(e.timeout, func() {
		r.mu.Lock()
		if r.record(e, f, CheckRun{Err: fmt.Errorf("%w after %s", ErrTimeout, e.timeout), TimedOut: true}) {
			r.publish()
		}
		r.mu.Unlock()
		cancel()
	})
	go r.run(ctx, cancel, timeout, e, f)
	return f
}

// run runs e's check for flight f and records its result, unless the timeout
// did first. Then e is no longer busy: a check that ignored its context can
// run again.
func (r *Readiness) run(ctx context.Context, cancel context.CancelFunc, timeout timer, e *entry, f *flight) {
	panicked, err := r.call(ctx, e)
	timeout.Stop()
	timedOut := ctx.Err() != nil && !panicked
	if timedOut {
		// Late is failed, even when the check ignored ctx and then passed.
		err = fmt.Errorf("%w after %s: %w", ErrTimeout, e.timeout, errors.Join(err, ctx.Err()))
	}
	cancel()

	r.mu.Lock()
	defer r.mu.Unlock()
	r.record(e, f, CheckRun{Err: err, TimedOut: timedOut, Panicked: panicked})
	e.busy = false
	if e.due && r.watching() {
		r.start(e)
	}
	r.publish()
}

// call runs the check, turning a panic into an error that wraps ErrPanic.
func (r *Readiness) call(ctx context.Context, e *entry) (panicked bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("readiness: check panicked", "check", e.name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			panicked, err = true, fmt.Errorf("%w: %v", ErrPanic, p)
		}
	}()
	return false, e.check.Check(ctx)
}

// record makes run the result of e's flight f, unless f's result is in
// already, and reports whether it did. It logs a check that starts or stops
// failing, tells the observers of the run and sets the timer that ends the
// result's TTL. r.mu is held; the caller publishes.
func (r *Readiness) record(e *entry, f *flight, run CheckRun) bool {
	if e.flight != f {
		return false
	}
	e.flight = nil
	r.ended = append(r.ended, f.done)
	e.err, e.ran, e.due = run.Err, true, false
	e.results++
	n := e.results
	period := r.ttl
	if period == 0 {
		period = r.timeout // without a TTL, a Subscription's checks run once per timeout
	}
	r.clock.AfterFunc(period, func() { r.expire(e, n) })

	failing := run.Err != nil
	switch {
	case failing && !e.failing:
		r.log.Warn("readiness: check failed", "check", e.name, "optional", e.optional, "error", Redact(run.Err.Error()))
	case !failing && e.failing:
		r.log.Info("readiness: check passed", "check", e.name)
	}
	e.failing = failing
	run.Name, run.Optional, run.Duration = e.name, e.optional, r.clock.Now().Sub(f.start)
	r.events.run(run)
	return true
}

// expire ends the TTL of e's result number n. While a Subscription is open,
// e runs again at once, unless it is still running.
func (r *Readiness) expire(e *entry, n uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.results != n {
		return // a newer result has its own timer
	}
	e.due = true
	if !e.busy && r.watching() {
		r.start(e)
	}
	r.publish()
}

// watching reports whether a Subscription is open, so that r keeps its
// results fresh by itself. r.mu is held.
func (r *Readiness) watching() bool { return len(r.subs) > 0 && !r.closed }
