package probes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for [NewReadiness].
const (
	DefaultTimeout = time.Second
	DefaultTTL     = time.Second
)

// Names of the lifecycle checks every [Readiness] reports first.
const (
	StartupCheck  = "startup"
	ShutdownCheck = "shutdown"
)

var (
	// ErrTimeout is wrapped by the error of a check that did not answer within its timeout.
	ErrTimeout = errors.New("probes: check timed out")
	// ErrPanic is wrapped by the error of a check that panicked.
	ErrPanic = errors.New("probes: check panicked")
)

// An Option changes a default of [NewReadiness].
type Option func(*options)

type options struct {
	timeout time.Duration
	ttl     time.Duration
	log     *slog.Logger
	now     func() time.Time // time.Now; tests set it with withClock
	clock   bool             // now was set: snapshots expire by it, not by a timer

	observers []Observer
}

func defaultOptions() options {
	return options{timeout: DefaultTimeout, ttl: DefaultTTL, log: slog.New(slog.DiscardHandler), now: time.Now}
}

// withClock sets the time source, for tests that move past the TTL.
func withClock(now func() time.Time) Option {
	return func(o *options) { o.now, o.clock = now, true }
}

// WithTimeout sets how long one check may run and how long a request waits for
// results ([DefaultTimeout], 1s). A value of zero or less keeps the default.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithTTL sets how long a check's result is reused before the check runs again
// ([DefaultTTL], 1s). Zero reuses nothing, but concurrent requests still share one
// run. A negative value keeps the default.
func WithTTL(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.ttl = d
		}
	}
}

// WithLogger sets the logger for readiness transitions and check failures
// (default: none). Errors are logged at WARN with passwords redacted.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// Readiness runs a fixed list of checks for a readiness probe. Its methods are
// safe for concurrent use.
//
// Every check runs in its own goroutine under its own timeout, its result is
// cached for the TTL, and at most one run of a check is in flight: a request that
// finds a result older than the TTL starts a run and waits for it, requests that
// arrive meanwhile take the previous result, and none waits longer than the
// timeout. A check that ignores its context is not started again until it returns;
// until then it reports [ErrTimeout].
//
// The unfiltered outcome, which [Readiness.Check] and a plain /readyz report,
// is kept as one snapshot of the last round of checks: while it is younger than
// the TTL a request reads it without locking any check, reading the clock or
// allocating, so its cost does not grow with the number of checks.
type Readiness struct {
	checks  []*entry
	timeout time.Duration
	ttl     time.Duration
	log     *slog.Logger

	started  atomic.Bool
	draining atomic.Bool
	events   *events

	stateMu sync.Mutex   // orders transitions
	state   atomic.Int32 // the current State; written under stateMu

	starting *NotReady
	stopping *NotReady

	// snap is the outcome of the last round of every check, which Check reads
	// without locking any entry; round is the round in flight, nil when none.
	snap    atomic.Pointer[snapshot]
	clock   bool // see options.clock
	roundMu sync.Mutex
	round   chan struct{} // closed when the round ends

	now func() time.Time
}

var _ Checker = (*Readiness)(nil)

// NewReadiness returns a [Readiness] for checks, in that order. It fails if a name
// is empty, repeated, or one of [StartupCheck] and [ShutdownCheck].
func NewReadiness(checks []Checker, opts ...Option) (*Readiness, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	r := &Readiness{
		timeout:  o.timeout,
		ttl:      o.ttl,
		log:      o.log,
		starting: &NotReady{Content: "Starting up"},
		stopping: &NotReady{Content: "Shutting down"},
		now:      o.now,
		events:   newEvents(o.observers, o.log),
		clock:    o.clock,
	}
	seen := map[string]bool{StartupCheck: true, ShutdownCheck: true}
	for _, c := range checks {
		name := c.Name()
		if name == "" {
			return nil, errors.New("probes: a check has an empty name")
		}
		if seen[name] {
			return nil, fmt.Errorf("probes: check name %q is reserved or repeated", name)
		}
		seen[name] = true
		e := &entry{check: c, name: name, group: group(name), timeout: o.timeout, ttl: o.ttl, log: o.log, now: o.now, events: r.events}
		if t, ok := c.(*traits); ok {
			e.optional = t.optional
			if t.timeout > 0 {
				e.timeout = t.timeout
			}
		}
		r.checks = append(r.checks, e)
	}
	return r, nil
}

// MarkStarted ends start-up: from now on the startup check passes. The state
// leaves [StateStarting] at once, for [StateReady] if the last run of every
// check that counts passed and [StateNotReady] otherwise (a check that has not
// run yet counts as failing); no check runs.
func (r *Readiness) MarkStarted() {
	if r.started.Swap(true) || r.draining.Load() {
		return
	}
	failing, failed := r.lastFailing()
	to := StateReady
	if len(failing) > 0 {
		to = StateNotReady
	}
	r.transition(to, failing, failed)
}

// MarkDraining begins shutdown: from now on the shutdown check fails with a
// [NotReady] whose content is "Shutting down", and the state is
// [StateDraining] at once. It cannot be undone.
func (r *Readiness) MarkDraining() {
	if r.draining.Swap(true) {
		return
	}
	var failing []string
	if !r.started.Load() {
		failing = append(failing, StartupCheck)
	}
	failing = append(failing, ShutdownCheck)
	rest, _ := r.lastFailing()
	r.transition(StateDraining, append(failing, rest...), false)
}

// State returns the current state: the lifecycle, and the outcome of the last
// unfiltered report. It runs no check.
func (r *Readiness) State() State { return State(r.state.Load()) }

// lastFailing returns the checks that count whose last run failed or that have
// not run, and whether any of them ran and failed.
func (r *Readiness) lastFailing() (failing []string, failed bool) {
	for _, e := range r.checks {
		if e.optional {
			continue
		}
		e.mu.Lock()
		never, err := e.checked.IsZero(), e.err
		e.mu.Unlock()
		if never || err != nil {
			failing = append(failing, e.name)
			failed = failed || err != nil
		}
	}
	return failing, failed
}

// Close closes every check that is an [io.Closer], such as [PostgresConn]'s,
// and returns their errors joined. Call it once the server no longer probes.
func (r *Readiness) Close() error {
	var errs []error
	for _, e := range r.checks {
		c := e.check
		if t, ok := c.(*traits); ok {
			c = t.Checker
		}
		if cl, ok := c.(io.Closer); ok {
			if err := cl.Close(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", e.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Name returns "readyz", so that a Readiness is itself a [Checker].
func (r *Readiness) Name() string { return "readyz" }

// Check returns nil when r is ready and a [NotReady] otherwise, as the
// unfiltered [Readiness.Report] would, without building the report: while every
// check's result is younger than the TTL it reads one snapshot of them, locks
// nothing and does not allocate. When a result is older, the first request
// starts a round that runs the checks whose results are old (see [Readiness])
// and waits for it; requests that come during the round get the previous
// snapshot, or wait for the round when there is none.
func (r *Readiness) Check(ctx context.Context) error {
	err := r.checksErr(ctx)
	switch {
	case !r.started.Load():
		return r.starting
	case r.draining.Load():
		return r.stopping
	}
	return err
}

// snapshot is the outcome of a round: what Check reports until expires. A
// timer marks it stale then, so that a request reads no clock.
type snapshot struct {
	err     error // nil, or the *NotReady of the checks, lifecycle aside
	expires time.Time
	stale   atomic.Bool
}

// checksErr returns the checks' outcome from the snapshot, running a round
// when it has expired.
func (r *Readiness) checksErr(ctx context.Context) error {
	snap := r.snap.Load()
	if snap != nil && !snap.stale.Load() && (!r.clock || r.now().Before(snap.expires)) {
		return snap.err
	}
	r.roundMu.Lock()
	done := r.round
	switch {
	case done == nil:
		done = make(chan struct{})
		r.round = done
		go r.runRound(context.WithoutCancel(ctx), done)
	case snap != nil:
		r.roundMu.Unlock()
		return snap.err // a round is in flight: the previous outcome meanwhile
	}
	r.roundMu.Unlock()
	// The round ends within the timeout, but it began on another goroutine:
	// bound the wait from this request's own arrival too.
	timer := time.NewTimer(r.timeout)
	defer timer.Stop()
	select {
	case <-done:
		return r.snap.Load().err
	case <-timer.C:
		return &NotReady{Err: fmt.Errorf("%w: no result within %s", ErrTimeout, r.timeout)}
	case <-ctx.Done():
		return &NotReady{Err: ctx.Err()}
	}
}

// runRound runs one round: an unfiltered report, whose outcome becomes the
// snapshot. It ends within the timeout, since the report does.
func (r *Readiness) runRound(ctx context.Context, done chan struct{}) {
	start := r.now()
	rep := r.Report(ctx, Filter{})
	snap := &snapshot{expires: r.now().Add(r.ttl)}
	if nr := notReady(rep.Results[2:]); nr != nil { // the checks, lifecycle aside
		snap.err = nr
	}
	for _, e := range r.checks {
		snap.expires = minTime(snap.expires, e.expires(start))
	}
	switch d := snap.expires.Sub(r.now()); {
	case d <= 0:
		snap.stale.Store(true) // a TTL of zero, or a check that timed out at once
	case !r.clock:
		time.AfterFunc(d, func() { snap.stale.Store(true) })
	}
	r.snap.Store(snap)
	r.roundMu.Lock()
	r.round = nil
	r.roundMu.Unlock()
	close(done)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Has reports whether name is a check's name or group, lifecycle checks included.
func (r *Readiness) Has(name string) bool {
	if name == StartupCheck || name == ShutdownCheck {
		return true
	}
	for _, e := range r.checks {
		if e.matches(name) {
			return true
		}
	}
	return false
}

// A Filter selects the checks of a [Readiness.Report]. The zero Filter selects all.
type Filter struct {
	// Only, when set, is the one check or group to report.
	Only string
	// Exclude lists checks or groups that are reported as excluded and not run.
	Exclude []string
}

// A Report is the outcome of one readiness request.
type Report struct {
	// Results holds one result per selected check: the lifecycle checks first,
	// then the others in the order given to NewReadiness.
	Results []Result
	// Unknown lists the Exclude entries that match no check, sorted, each once.
	Unknown []string
	// NotReady is nil when every selected check that is neither optional nor
	// excluded passed. Otherwise it is the first such failure that is a
	// *NotReady itself, or a default NotReady wrapping the failures.
	NotReady *NotReady
}

// Err returns rep.NotReady as an error, or nil when rep is ready.
func (rep Report) Err() error {
	if rep.NotReady == nil {
		return nil
	}
	return rep.NotReady
}

// A Result is one check's outcome in a [Report].
type Result struct {
	Name string
	// Err is the check's error, nil when it passed. It may carry driver detail:
	// log it, never write it to a response.
	Err      error
	Optional bool
	Excluded bool
}

// Report returns the results of the checks f selects, running those whose
// cached result is older than the TTL. It returns within the timeout, or when
// ctx is done if that comes first.
func (r *Readiness) Report(ctx context.Context, f Filter) Report {
	now := r.now()
	n := 2 + len(r.checks)
	if f.Only != "" {
		n = 1
	}
	rep := Report{Results: make([]Result, 0, n)}
	rep.Unknown = r.unknown(f.Exclude)

	var failStartup, failShutdown error
	if !r.started.Load() {
		failStartup = r.starting
	}
	if r.draining.Load() {
		failShutdown = r.stopping
	}
	rep.add(f, StartupCheck, "", failStartup, false)
	rep.add(f, ShutdownCheck, "", failShutdown, false)

	var waits []wait
	for _, e := range r.checks {
		if !rep.add(f, e.name, e.group, nil, e.optional) {
			continue
		}
		flight, err := e.peek(ctx, now)
		rep.Results[len(rep.Results)-1].Err = err
		if flight != nil {
			waits = append(waits, wait{at: len(rep.Results) - 1, e: e, flight: flight})
		}
	}
	if len(waits) > 0 {
		r.await(ctx, now, rep.Results, waits)
	}

	rep.NotReady = notReady(rep.Results)
	if f.Only == "" && len(f.Exclude) == 0 {
		r.reportState(rep, failStartup != nil, failShutdown != nil)
	}
	return rep
}

// add appends a result for the check name unless f leaves it out, and reports
// whether the check is selected and must run.
func (rep *Report) add(f Filter, name, grp string, err error, optional bool) bool {
	if f.Only != "" && f.Only != name && f.Only != grp {
		return false
	}
	excluded := matchesAny(f.Exclude, name, grp)
	if excluded {
		err = nil
	}
	rep.Results = append(rep.Results, Result{Name: name, Err: err, Optional: optional, Excluded: excluded})
	return !excluded
}

// unknown returns the names of exclude that match no check, sorted, each once.
func (r *Readiness) unknown(exclude []string) []string {
	var unknown []string
	for _, x := range exclude {
		if !r.Has(x) {
			unknown = append(unknown, x)
		}
	}
	slices.Sort(unknown)
	return slices.Compact(unknown)
}

// wait is a result that waits for the run in flight.
type wait struct {
	at     int
	e      *entry
	flight chan struct{}
}

// await fills in the results of waits as their runs end, until the timeout or ctx.
func (r *Readiness) await(ctx context.Context, now time.Time, results []Result, waits []wait) {
	timer := time.NewTimer(now.Add(r.timeout).Sub(r.now()))
	defer timer.Stop()
	expired := false
	for _, w := range waits {
		if !expired {
			select {
			case <-w.flight:
			case <-timer.C:
				expired = true
			case <-ctx.Done():
				expired = true
			}
		}
		results[w.at].Err = w.e.outcome(w.flight, r.timeout, ctx.Err())
	}
}

// notReady returns the Report.NotReady for results.
func notReady(results []Result) *NotReady {
	var failed []error
	for _, res := range results {
		if res.Err == nil || res.Optional || res.Excluded {
			continue
		}
		if nr, ok := errors.AsType[*NotReady](res.Err); ok {
			return nr
		}
		failed = append(failed, fmt.Errorf("%s: %w", res.Name, res.Err))
	}
	if failed == nil {
		return nil
	}
	return &NotReady{Err: errors.Join(failed...)}
}

// reportState moves to the state an unfiltered report rep shows, which was made
// while starting and draining held.
func (r *Readiness) reportState(rep Report, starting, draining bool) {
	to := StateReady
	switch {
	case draining:
		to = StateDraining
	case starting:
		to = StateStarting
	case rep.NotReady != nil:
		to = StateNotReady
	}
	if State(r.state.Load()) == to {
		return // the common case, without a lock
	}
	var failing []string
	failed := false
	for _, res := range rep.Results {
		if res.Err != nil && !res.Optional {
			failing = append(failing, res.Name)
			failed = failed || (res.Name != StartupCheck && res.Name != ShutdownCheck)
		}
	}
	r.transition(to, failing, failed)
}

// transition moves to the state to, unless r is there already or in a later
// stage, then logs the change and tells the observers. A move to
// StateNotReady logs at WARN when a dependency failed (failed), at INFO when
// only the lifecycle or checks not yet run hold readiness back.
func (r *Readiness) transition(to State, failing []string, failed bool) {
	r.stateMu.Lock()
	from := State(r.state.Load())
	if from == to || to.stage() < from.stage() {
		r.stateMu.Unlock()
		return
	}
	r.state.Store(int32(to))
	r.events.send(event{tr: Transition{From: from, To: to, Failing: failing}})
	r.stateMu.Unlock()

	switch to {
	case StateReady:
		r.log.Info("readiness: ready")
	case StateDraining:
		r.log.Info("readiness: draining", "failing", failing)
	default:
		level := slog.LevelInfo
		if failed {
			level = slog.LevelWarn
		}
		r.log.Log(context.Background(), level, "readiness: not ready", "failing", failing)
	}
}

// entry is one check with its cached result and its run in flight.
type entry struct {
	check    Checker
	name     string
	group    string
	optional bool
	timeout  time.Duration // how long one run may take
	ttl      time.Duration // how long a result is reused
	log      *slog.Logger
	now      func() time.Time
	events   *events // observers of runs

	mu      sync.Mutex
	err     error         // result of the last run
	checked time.Time     // end of the last run; zero before the first
	flight  chan struct{} // closed when the run in flight ends; nil when none is
	since   time.Time     // start of the run in flight
	failing bool          // the last run failed, for transition logs
}

func (e *entry) matches(name string) bool {
	return name != "" && (name == e.name || name == e.group)
}

// peek returns the result to report now, or the run to wait for.
func (e *entry) peek(ctx context.Context, now time.Time) (chan struct{}, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fresh := !e.checked.IsZero() && now.Sub(e.checked) < e.ttl
	switch {
	case fresh:
		return nil, e.err
	case e.flight != nil && now.Sub(e.since) >= e.timeout:
		return nil, fmt.Errorf("%w: still running after %s", ErrTimeout, e.timeout)
	case e.flight != nil && !e.checked.IsZero():
		return nil, e.err
	case e.flight != nil:
		return e.flight, nil
	}
	e.flight = make(chan struct{})
	e.since = now
	go e.run(context.WithoutCancel(ctx), e.flight)
	return e.flight, nil
}

// expires returns when the entry's result, as a round that began at start
// found it, is to be looked at again: at the end of its TTL, when the run in
// flight times out, or a TTL after start for a run that has already timed out.
func (e *entry) expires(start time.Time) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.flight == nil:
		return e.checked.Add(e.ttl)
	case start.Sub(e.since) < e.timeout:
		return e.since.Add(e.timeout)
	}
	return start.Add(e.ttl)
}

// outcome returns the result of the run flight, or a timeout if it has not ended.
func (e *entry) outcome(flight chan struct{}, limit time.Duration, ctxErr error) error {
	select {
	case <-flight:
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.err
	default:
	}
	if ctxErr != nil {
		return ctxErr
	}
	return fmt.Errorf("%w: no result within %s", ErrTimeout, limit)
}

// run runs the check once under its timeout, stores the result and ends flight.
func (e *entry) run(parent context.Context, flight chan struct{}) {
	ctx, cancel := context.WithTimeout(parent, e.timeout)
	start := time.Now()
	panicked, err := e.call(ctx)
	took := time.Since(start)
	timedOut := ctx.Err() != nil && !panicked
	if timedOut {
		// Late is failed, even when the check ignored ctx and then passed.
		err = fmt.Errorf("%w after %s: %w", ErrTimeout, e.timeout, errors.Join(err, ctx.Err()))
	}
	cancel()

	e.mu.Lock()
	e.err, e.checked, e.flight = err, e.now(), nil
	flipped := (err != nil) != e.failing
	e.failing = err != nil
	e.mu.Unlock()

	switch {
	case flipped && err != nil:
		e.log.Warn("readiness: check failed", "check", e.name, "optional", e.optional, "error", Redact(err.Error()))
	case flipped:
		e.log.Info("readiness: check passed", "check", e.name)
	}
	if e.events.wantRuns { // before flight ends, so that a transition this run causes comes after it
		e.events.send(event{run: &CheckRun{Name: e.name, Err: err, Duration: took, TimedOut: timedOut, Panicked: panicked, Optional: e.optional}})
	}
	close(flight)
}

// call runs the check, turning a panic into an error that wraps ErrPanic.
func (e *entry) call(ctx context.Context) (panicked bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			e.log.Error("readiness: check panicked", "check", e.name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			panicked, err = true, fmt.Errorf("%w: %v", ErrPanic, p)
		}
	}()
	return false, e.check.Check(ctx)
}

// group returns the part of name before its first "/", or "" if it has none.
func group(name string) string {
	g, _, ok := strings.Cut(name, "/")
	if !ok {
		return ""
	}
	return g
}

func matchesAny(names []string, name, grp string) bool {
	return slices.ContainsFunc(names, func(x string) bool {
		return x != "" && (x == name || x == grp)
	})
}
