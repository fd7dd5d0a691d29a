package probes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable time source for TTL tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// counted returns a check that counts its calls and returns what result returns.
func counted(name string, calls *atomic.Int64, result func(ctx context.Context) error) Checker {
	return Func(name, func(ctx context.Context) error {
		calls.Add(1)
		return result(ctx)
	})
}

func ok(context.Context) error { return nil }

func mustReadiness(t testing.TB, checks []Checker, opts ...Option) *Readiness {
	t.Helper()
	r, err := NewReadiness(checks, opts...)
	if err != nil {
		t.Fatal(err)
	}
	r.MarkStarted()
	return r
}

// summary renders a report as "name:state" words, state one of ok, fail, opt-fail, excl.
func summary(rep Report) string {
	var words []string
	for _, res := range rep.Results {
		state := "ok"
		switch {
		case res.Excluded:
			state = "excl"
		case res.Err != nil && res.Optional:
			state = "opt-fail"
		case res.Err != nil:
			state = "fail"
		}
		words = append(words, res.Name+":"+state)
	}
	return strings.Join(words, " ")
}

func TestNewReadinessNames(t *testing.T) {
	tests := []struct {
		name    string
		checks  []string
		wantErr string
	}{
		{"distinct", []string{"a", "postgres/x", "postgres/y"}, ""},
		{"empty", []string{"a", ""}, "empty name"},
		{"repeated", []string{"a", "a"}, `"a" is reserved or repeated`},
		{"startup reserved", []string{"startup"}, `"startup" is reserved`},
		{"shutdown reserved", []string{"shutdown"}, `"shutdown" is reserved`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var checks []Checker
			for _, n := range tt.checks {
				checks = append(checks, Func(n, ok))
			}
			_, err := NewReadiness(checks)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("err = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestReportSelection(t *testing.T) {
	fail := errors.New("down")
	r := mustReadiness(t, []Checker{
		Func("postgres/a", ok),
		Func("postgres/b", func(context.Context) error { return fail }),
		Optional(Func("memcached/m:1", func(context.Context) error { return fail })),
		Func("disk", ok),
	})
	tests := []struct {
		name    string
		filter  Filter
		want    string
		ready   bool
		unknown []string
	}{
		{"all", Filter{}, "startup:ok shutdown:ok postgres/a:ok postgres/b:fail memcached/m:1:opt-fail disk:ok", false, nil},
		{"exclude name", Filter{Exclude: []string{"postgres/b"}}, "startup:ok shutdown:ok postgres/a:ok postgres/b:excl memcached/m:1:opt-fail disk:ok", true, nil},
		{"exclude group", Filter{Exclude: []string{"postgres"}}, "startup:ok shutdown:ok postgres/a:excl postgres/b:excl memcached/m:1:opt-fail disk:ok", true, nil},
		{"exclude unknown", Filter{Exclude: []string{"nope", "disk"}}, "startup:ok shutdown:ok postgres/a:ok postgres/b:fail memcached/m:1:opt-fail disk:excl", false, []string{"nope"}},
		{"exclude empty name", Filter{Exclude: []string{""}}, "startup:ok shutdown:ok postgres/a:ok postgres/b:fail memcached/m:1:opt-fail disk:ok", false, []string{""}},
		{"only name", Filter{Only: "postgres/a"}, "postgres/a:ok", true, nil},
		{"only group", Filter{Only: "postgres"}, "postgres/a:ok postgres/b:fail", false, nil},
		{"only optional", Filter{Only: "memcached/m:1"}, "memcached/m:1:opt-fail", true, nil},
		{"only lifecycle", Filter{Only: "shutdown"}, "shutdown:ok", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := r.Report(t.Context(), tt.filter)
			if got := summary(rep); got != tt.want {
				t.Errorf("results = %q\nwant      %q", got, tt.want)
			}
			if got := rep.NotReady == nil; got != tt.ready {
				t.Errorf("ready = %v, want %v", got, tt.ready)
			}
			if fmt.Sprint(rep.Unknown) != fmt.Sprint(tt.unknown) {
				t.Errorf("unknown = %q, want %q", rep.Unknown, tt.unknown)
			}
			if !tt.ready && !errors.Is(rep.Err(), fail) {
				t.Errorf("Err() = %v, want it to wrap %v", rep.Err(), fail)
			}
		})
	}
}

func TestHas(t *testing.T) {
	r := mustReadiness(t, []Checker{Func("postgres/a", ok), Func("disk", ok)})
	for name, want := range map[string]bool{
		"postgres/a": true, "postgres": true, "disk": true, "startup": true, "shutdown": true,
		"postgres/b": false, "": false, "disk/x": false, "post": false,
	} {
		if got := r.Has(name); got != want {
			t.Errorf("Has(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestLifecycle(t *testing.T) {
	r, err := NewReadiness([]Checker{Func("db", ok)})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		do      func()
		want    string
		content string
	}{
		{func() {}, "startup:fail shutdown:ok db:ok", "Starting up"},
		{r.MarkStarted, "startup:ok shutdown:ok db:ok", ""},
		{r.MarkDraining, "startup:ok shutdown:fail db:ok", "Shutting down"},
		{r.MarkStarted, "startup:ok shutdown:fail db:ok", "Shutting down"},
	}
	for i, s := range steps {
		s.do()
		rep := r.Report(t.Context(), Filter{})
		if got := summary(rep); got != s.want {
			t.Errorf("step %d: results = %q, want %q", i, got, s.want)
		}
		content := ""
		if rep.NotReady != nil {
			content = rep.NotReady.Body()
			if rep.NotReady.StatusCode() != 503 {
				t.Errorf("step %d: status = %d, want 503", i, rep.NotReady.StatusCode())
			}
		}
		if content != s.content {
			t.Errorf("step %d: content = %q, want %q", i, content, s.content)
		}
	}
}

func TestNotReadyFromCheck(t *testing.T) {
	custom := &NotReady{Content: "Migrating", Status: 500}
	r := mustReadiness(t, []Checker{
		Func("a", func(context.Context) error { return errors.New("plain") }),
		Func("b", func(context.Context) error { return fmt.Errorf("wrapped: %w", custom) }),
	})
	rep := r.Report(t.Context(), Filter{})
	if rep.NotReady != custom {
		t.Fatalf("NotReady = %v, want the check's own %v", rep.NotReady, custom)
	}
	rep = r.Report(t.Context(), Filter{Exclude: []string{"b"}})
	if rep.NotReady == nil || rep.NotReady.Body() != "Not ready" || rep.NotReady.StatusCode() != 503 {
		t.Fatalf("NotReady = %#v, want the default", rep.NotReady)
	}
	if !strings.Contains(rep.NotReady.Error(), "a: plain") {
		t.Errorf("Error() = %q, want it to name the failing check and cause", rep.NotReady.Error())
	}
}

func TestTimeoutAndPanic(t *testing.T) {
	const timeout = 50 * time.Millisecond
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	tests := []struct {
		name    string
		check   func(ctx context.Context) error
		wantErr error
	}{
		{"honours ctx", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, ErrTimeout},
		{"ignores ctx", func(context.Context) error { <-block; return nil }, ErrTimeout},
		{"late success", func(ctx context.Context) error { <-ctx.Done(); return nil }, ErrTimeout},
		{"panics", func(context.Context) error { panic("boom") }, ErrPanic},
		{"panics with nil error", func(context.Context) error { var err error; panic(err) }, ErrPanic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := mustReadiness(t, []Checker{Func("c", tt.check)}, WithTimeout(timeout))
			start := time.Now()
			err := r.Check(t.Context())
			elapsed := time.Since(start)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if elapsed > timeout+250*time.Millisecond {
				t.Errorf("Check took %s, want about %s", elapsed, timeout)
			}
		})
	}
}

// TestHungCheckRunsOnce: a check that never returns is not started again, and
// every request still answers within the timeout.
func TestHungCheckRunsOnce(t *testing.T) {
	const timeout = 30 * time.Millisecond
	var calls atomic.Int64
	block := make(chan struct{})
	defer close(block)
	r := mustReadiness(t, []Checker{counted("hung", &calls, func(context.Context) error { <-block; return nil })},
		WithTimeout(timeout), WithTTL(0))
	before := runtime.NumGoroutine()
	for i := range 10 {
		start := time.Now()
		err := r.Check(t.Context())
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("request %d: err = %v, want ErrTimeout", i, err)
		}
		if d := time.Since(start); d > timeout+250*time.Millisecond {
			t.Fatalf("request %d took %s", i, d)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("hung check started %d times, want 1", n)
	}
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Errorf("goroutines: %d before, %d after 10 requests", before, after)
	}
}

func TestCancelledRequest(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	r := mustReadiness(t, []Checker{counted("slow", &calls, func(ctx context.Context) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})}, WithTimeout(5*time.Second))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.Check(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// The run goes on for the next request: the caller's cancellation is not the check's.
	close(release)
	if err := r.Check(t.Context()); err != nil {
		t.Fatalf("next request: %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("check ran %d times, want 1", n)
	}
}

func TestCachePerTTL(t *testing.T) {
	var calls atomic.Int64
	var failing atomic.Bool
	clk := newClock()
	r := mustReadiness(t, []Checker{counted("c", &calls, func(context.Context) error {
		if failing.Load() {
			return errors.New("down")
		}
		return nil
	})}, WithTTL(time.Second), withClock(clk.now))

	steps := []struct {
		advance   time.Duration
		fail      bool
		wantCalls int64
		wantReady bool
	}{
		{0, false, 1, true},
		{500 * time.Millisecond, true, 1, true}, // cached: the failure is not seen yet
		{499 * time.Millisecond, true, 1, true},
		{time.Millisecond, true, 2, false}, // TTL over: runs again
		{999 * time.Millisecond, false, 2, false},
		{time.Millisecond, false, 3, true},
	}
	for i, s := range steps {
		clk.add(s.advance)
		failing.Store(s.fail)
		for range 3 {
			err := r.Check(t.Context())
			if (err == nil) != s.wantReady {
				t.Fatalf("step %d: err = %v, want ready %v", i, err, s.wantReady)
			}
		}
		if n := calls.Load(); n != s.wantCalls {
			t.Fatalf("step %d: %d calls, want %d", i, n, s.wantCalls)
		}
	}
}

// TestSingleFlight: concurrent requests share one run, and while a refresh is in
// flight a request with a cached result gets it at once.
func TestSingleFlight(t *testing.T) {
	var calls atomic.Int64
	gate := make(chan struct{}, 1)
	clk := newClock()
	r := mustReadiness(t, []Checker{counted("c", &calls, func(ctx context.Context) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})}, WithTimeout(10*time.Second), withClock(clk.now))

	// 500 requests with no cached result all wait for one run.
	var wg sync.WaitGroup
	errs := make(chan error, 500)
	for range 500 {
		wg.Go(func() { errs <- r.Check(t.Context()) })
	}
	waitFor(t, func() bool { return calls.Load() == 1 })
	gate <- struct{}{}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("request failed: %v", err)
		}
	}

	// After the TTL, the first request starts a refresh and waits; others get the old result.
	clk.add(2 * DefaultTTL)
	first := make(chan error, 1)
	go func() { first <- r.Check(t.Context()) }()
	waitFor(t, func() bool { return calls.Load() == 2 })
	for range 100 {
		if err := r.Check(t.Context()); err != nil {
			t.Fatalf("request during refresh: %v", err)
		}
	}
	select {
	case err := <-first:
		t.Fatalf("refreshing request returned %v before its run ended", err)
	default:
	}
	gate <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
}

// TestConcurrentChecks: checks run at the same time, so three 100 ms checks take
// about 100 ms, not 300 ms.
func TestConcurrentChecks(t *testing.T) {
	var running, peak atomic.Int64
	slow := func(ctx context.Context) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-time.After(100 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r := mustReadiness(t, []Checker{Func("a", slow), Func("b", slow), Func("c", slow)})
	if err := r.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p != 3 {
		t.Errorf("at most %d checks ran at once, want 3", p)
	}
}

func TestTransitionLogs(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	var failing atomic.Bool
	r, err := NewReadiness([]Checker{Func("db", func(context.Context) error {
		if failing.Load() {
			return errors.New(`connect postgres://app:s3cret@db:5432/x password=hunter2: refused`)
		}
		return nil
	})}, WithLogger(log), WithTTL(0))
	if err != nil {
		t.Fatal(err)
	}
	report := func(n int) {
		for range n {
			r.Report(t.Context(), Filter{})
		}
	}
	report(2) // not started
	r.MarkStarted()
	report(3)
	failing.Store(true)
	report(3)
	r.Report(t.Context(), Filter{Exclude: []string{"db"}}) // filtered reports do not log
	failing.Store(false)
	report(3)
	r.MarkDraining()
	report(2)

	want := strings.Join([]string{
		`level=INFO msg="readiness: ready"`,
		`level=WARN msg="readiness: check failed" check=db optional=false error="connect postgres://app:xxxxx@db:5432/x password=xxxxx refused"`,
		`level=WARN msg="readiness: not ready" failing=[db]`,
		`level=INFO msg="readiness: check passed" check=db`,
		`level=INFO msg="readiness: ready"`,
		`level=INFO msg="readiness: draining" failing=[shutdown]`,
	}, "\n") + "\n"
	if got := buf.String(); got != want {
		t.Errorf("log:\n%s\nwant:\n%s", got, want)
	}
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		runtime.Gosched()
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCheckSnapshot: Check reads the last round's outcome until the TTL ends
// (a timer, not a clock read, marks it stale), applies the lifecycle at once,
// and allocates nothing while the outcome is cached.
func TestCheckSnapshot(t *testing.T) {
	tests := []struct {
		name      string
		ttl       time.Duration
		wantCalls func(n int64) bool // after 20 sequential Checks
	}{
		{"ttl zero runs every time", 0, func(n int64) bool { return n == 20 }},
		{"cached for the ttl", time.Hour, func(n int64) bool { return n == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			r := mustReadiness(t, []Checker{counted("c", &calls, ok)}, WithTTL(tt.ttl))
			for range 20 {
				if err := r.Check(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if n := calls.Load(); !tt.wantCalls(n) {
				t.Errorf("%d calls for 20 requests", n)
			}
		})
	}

	t.Run("expires by timer", func(t *testing.T) {
		var calls atomic.Int64
		var failing atomic.Bool
		r := mustReadiness(t, []Checker{counted("c", &calls, func(context.Context) error {
			if failing.Load() {
				return errors.New("down")
			}
			return nil
		})}, WithTTL(50*time.Millisecond))
		if err := r.Check(t.Context()); err != nil {
			t.Fatal(err)
		}
		failing.Store(true)
		waitFor(t, func() bool { return r.Check(t.Context()) != nil })
		if n := calls.Load(); n < 2 {
			t.Errorf("%d calls, want a second run after the TTL", n)
		}
	})

	t.Run("lifecycle at once", func(t *testing.T) {
		r, err := NewReadiness([]Checker{Func("c", ok)}, WithTTL(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			do   func()
			want string
		}{
			{func() {}, "Starting up"},
			{r.MarkStarted, ""},
			{r.MarkDraining, "Shutting down"},
		}
		for i, s := range steps {
			s.do()
			got := ""
			if nr, ok := errors.AsType[*NotReady](r.Check(t.Context())); ok {
				got = nr.Body()
			}
			if got != s.want {
				t.Errorf("step %d: %q, want %q", i, got, s.want)
			}
			if rep := r.Report(t.Context(), Filter{}); (rep.NotReady == nil) != (s.want == "") {
				t.Errorf("step %d: Report disagrees: %v", i, rep.NotReady)
			}
		}
	})

	t.Run("no allocation when cached", func(t *testing.T) {
		r := mustReadiness(t, []Checker{Func("a", ok), Func("b", ok)}, WithTTL(time.Hour))
		ctx := t.Context()
		_ = r.Check(ctx)
		if n := testing.AllocsPerRun(1000, func() { _ = r.Check(ctx) }); n != 0 {
			t.Errorf("%v allocations per cached Check, want 0", n)
		}
	})
}
