package probes

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	timeout   time.Duration
	ttl       time.Duration
	log       *slog.Logger
	clock     clock
	observers []Observer
}

func defaultOptions() options {
	return options{timeout: DefaultTimeout, ttl: DefaultTTL, log: slog.New(slog.DiscardHandler), clock: systemClock{}}
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

// Readiness runs a fixed list of checks for a readiness probe and keeps their
// outcome. Its methods are safe for concurrent use.
//
// Each check runs in a goroutine of its own under its own timeout, at most one
// run of it at a time, and its result is kept for the TTL. A request that finds
// a result older than the TTL starts a run and waits for it; requests that come
// meanwhile take the previous result, or wait for the first one; none waits
// longer than the timeout. A run that ends after its request stopped waiting
// still counts: its result serves the next request at once. A check that
// ignores its context reports [ErrTimeout] from the end of its timeout on and is
// not started again until it returns.
//
// Whenever a check's result or the lifecycle changes, the Readiness works out
// the outcome anew, in one place: the answer of [Readiness.Check], the [State],
// [Readiness.Status], the transitions its observers and log see and the signals
// of its [Subscription]s. So a request whose results are fresh reads one
// pointer: it locks nothing, reads no clock and allocates nothing, however many
// checks there are.
//
// Checks run when asked, by [Readiness.Check] or [Readiness.Report]; while a
// [Subscription] is open, the Readiness also runs each again as its TTL ends.
type Readiness struct {
	checks  []*entry
	index   map[string][]int // check and group names: the indexes of their checks
	timeout time.Duration
	ttl     time.Duration
	log     *slog.Logger
	clock   clock
	events  *events

	starting *NotReady
	stopping *NotReady

	cur atomic.Pointer[outcome] // written by publish, under mu

	mu       sync.Mutex
	started  bool
	draining bool
	closed   bool
	firsts   chan struct{}   // closed when every check that counts has a result; nil while none is awaited
	ended    []chan struct{} // flights whose result is in, closed by the next publish
	subs     map[*Subscription]struct{}
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
		index:    make(map[string][]int),
		timeout:  o.timeout,
		ttl:      o.ttl,
		log:      o.log,
		clock:    o.clock,
		events:   newEvents(o.observers, o.log),
		starting: &NotReady{Content: "Starting up"},
		stopping: &NotReady{Content: "Shutting down"},
		subs:     make(map[*Subscription]struct{}),
	}
	seen := map[string]bool{StartupCheck: true, ShutdownCheck: true}
	for i, c := range checks {
		name := c.Name()
		if name == "" {
			return nil, errors.New("probes: a check has an empty name")
		}
		if seen[name] {
			return nil, fmt.Errorf("probes: check name %q is reserved or repeated", name)
		}
		seen[name] = true
		e := &entry{check: c, name: name, timeout: o.timeout}
		if t, ok := c.(*traits); ok {
			e.optional = t.optional
			if t.timeout > 0 {
				e.timeout = t.timeout
			}
		}
		r.checks = append(r.checks, e)
		r.index[name] = append(r.index[name], i)
		if g := group(name); g != "" {
			r.index[g] = append(r.index[g], i)
		}
	}
	r.cur.Store(&outcome{state: StateStarting, next: make(chan struct{})})
	r.mu.Lock()
	r.publish()
	r.mu.Unlock()
	return r, nil
}

// MarkStarted ends start-up: from now on the startup check passes. The state
// leaves [StateStarting] at once, for [StateReady] if the last result of every
// check that counts passed and [StateNotReady] otherwise (a check that has not
// run yet counts as failing); no check runs.
func (r *Readiness) MarkStarted() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		r.started = true
		r.publish()
	}
}

// MarkDraining begins shutdown: from now on the shutdown check fails with a
// [NotReady] whose content is "Shutting down", and the state is
// [StateDraining] at once. It cannot be undone.
func (r *Readiness) MarkDraining() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.draining {
		r.draining = true
		r.publish()
	}
}

// Has reports whether name is a check's name or group, lifecycle checks included.
func (r *Readiness) Has(name string) bool {
	_, ok := r.index[name]
	return ok || name == StartupCheck || name == ShutdownCheck
}

// Name returns "readyz", so that a Readiness is itself a [Checker].
func (r *Readiness) Name() string { return "readyz" }

// DroppedRuns returns how many [Observer.CheckDone] calls were dropped so far
// because an observer was [MaxPendingEvents] events behind. State changes are
// never dropped.
func (r *Readiness) DroppedRuns() uint64 { return r.events.dropped.Load() }

// Close stops the runs a [Subscription] keeps going, closes every check that
// is an [io.Closer], such as [PostgresConn]'s, and returns their errors joined.
// Call it once the server no longer probes.
func (r *Readiness) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
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
