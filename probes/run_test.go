package probes

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// async calls f on a goroutine of its own and returns where its answer goes.
func async(f func() error) <-chan error {
	c := make(chan error, 1)
	go func() { c <- f() }()
	return c
}

// answer returns what c receives, failing the test after 5 s: no answer
// means a request is waiting for a timer that never fires.
func answer(t *testing.T, c <-chan error) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no answer within 5 s")
		return nil
	}
}

// answerAdvancing returns what c receives, moving clk on 10 ms at a time
// until it does, and fails the test after 5 s.
func answerAdvancing(t *testing.T, clk *fakeClock, c <-chan error) error {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-c:
			return err
		case <-time.After(time.Millisecond):
			clk.advance(10 * time.Millisecond)
		}
	}
	t.Fatal("no answer within 5 s")
	return nil
}

// noAnswer fails the test if c has an answer already.
func noAnswer(t *testing.T, c <-chan error, when string) {
	t.Helper()
	select {
	case err := <-c:
		t.Fatalf("%s: answered %v", when, err)
	default:
	}
}

// TestTimeoutAndPanic: a request answers when the check's timeout ends, not
// before, with ErrTimeout, or at once with ErrPanic. Time is the fake clock's.
func TestTimeoutAndPanic(t *testing.T) {
	const timeout = 50 * time.Millisecond
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	tests := []struct {
		name    string
		check   func(ctx context.Context) error
		wantErr error
		waits   bool // the answer comes at the timeout
	}{
		{"honours ctx", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, ErrTimeout, true},
		{"ignores ctx", func(context.Context) error { <-block; return nil }, ErrTimeout, true},
		{"late success", func(ctx context.Context) error { <-ctx.Done(); return nil }, ErrTimeout, true},
		{"panics", func(context.Context) error { panic("boom") }, ErrPanic, false},
		{"panics with nil error", func(context.Context) error { var err error; panic(err) }, ErrPanic, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock()
			r := mustReadiness(t, []Checker{Func("c", tt.check)}, WithTimeout(timeout), withClock(clk))
			got := async(func() error { return r.Check(t.Context()) })
			if tt.waits {
				waitFor(t, func() bool { return clk.pending() >= 2 }) // the run's timeout and the request's
				clk.advance(timeout - time.Nanosecond)
				noAnswer(t, got, "before the timeout")
				clk.advance(time.Nanosecond)
			}
			if err := answer(t, got); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestHungCheckRunsOnce: a check that never returns is not started again, and
// every later request answers ErrTimeout without waiting.
func TestHungCheckRunsOnce(t *testing.T) {
	const timeout = 30 * time.Millisecond
	var calls atomic.Int64
	block := make(chan struct{})
	defer close(block)
	clk := newFakeClock()
	r := mustReadiness(t, []Checker{counted("hung", &calls, func(context.Context) error { <-block; return nil })},
		WithTimeout(timeout), WithTTL(0), withClock(clk))
	before := runtime.NumGoroutine()
	first := async(func() error { return r.Check(t.Context()) })
	// The run's timeout and the request's, and the check has been called.
	waitFor(t, func() bool { return clk.pending() >= 2 && calls.Load() == 1 })
	clk.advance(timeout)
	if err := answer(t, first); !errors.Is(err, ErrTimeout) {
		t.Fatalf("first request: err = %v, want ErrTimeout", err)
	}
	for i := range 10 {
		clk.advance(time.Second) // past any TTL: the check is due, but still running
		if err := answer(t, async(func() error { return r.Check(t.Context()) })); !errors.Is(err, ErrTimeout) {
			t.Fatalf("request %d: err = %v, want ErrTimeout", i, err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("hung check started %d times, want 1", n)
	}
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Errorf("goroutines: %d before, %d after 11 requests", before, after)
	}
}

// TestHungCheckReturns: once a check that ignored its context returns, the
// next request runs it again.
func TestHungCheckReturns(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	clk := newFakeClock()
	r := mustReadiness(t, []Checker{counted("c", &calls, func(context.Context) error {
		if calls.Load() == 1 {
			<-release
		}
		return nil
	})}, WithTimeout(time.Second), WithTTL(time.Second), withClock(clk))
	first := async(func() error { return r.Check(t.Context()) })
	// Not before the check has been called: a count of 0 below would then say
	// only that the run's goroutine had not been scheduled yet.
	waitFor(t, func() bool { return clk.pending() >= 2 && calls.Load() == 1 })
	clk.advance(time.Second)
	if err := answer(t, first); !errors.Is(err, ErrTimeout) {
		t.Fatalf("first: %v, want ErrTimeout", err)
	}
	clk.advance(time.Second) // the TTL of the timeout ends; the check still runs
	if err := r.Check(t.Context()); !errors.Is(err, ErrTimeout) || calls.Load() != 1 {
		t.Fatalf("while the check still runs: %v after %d calls, want ErrTimeout after 1", err, calls.Load())
	}
	close(release)
	// Once it has returned, the next request runs it again, and it passes.
	waitFor(t, func() bool { return r.Check(t.Context()) == nil })
	if n := calls.Load(); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
}

// TestLateSuccess is issue 19's case: a 50 ms check with its own timeout of
// 1 s under a 10 ms request timeout. The first request answers not ready after
// 10 ms; the run goes on, passes, and from then on requests are ready at once,
// without another run.
func TestLateSuccess(t *testing.T) {
	var calls atomic.Int64
	gate := make(chan struct{})
	clk := newFakeClock()
	r := mustReadiness(t, []Checker{Timeout(counted("slow", &calls, func(ctx context.Context) error {
		select {
		case <-gate: // 50 ms, in the fake clock's time
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}), time.Second)}, WithTimeout(10*time.Millisecond), withClock(clk))

	first := async(func() error { return r.Check(t.Context()) })
	waitFor(t, func() bool { return clk.pending() >= 2 })
	clk.advance(10 * time.Millisecond)
	if err := answer(t, first); !errors.Is(err, ErrTimeout) {
		t.Fatalf("first request: %v, want not ready with ErrTimeout", err)
	}
	clk.advance(40 * time.Millisecond)
	close(gate)
	waitFor(t, func() bool { ok, _ := r.Status("slow"); return ok })
	clk.advance(50 * time.Millisecond) // 100 ms after the first request
	if err := answer(t, async(func() error { return r.Check(t.Context()) })); err != nil {
		t.Fatalf("request 100 ms later: %v, want ready", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d runs, want 1", n)
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
	clk := newFakeClock()
	r := mustReadiness(t, []Checker{counted("c", &calls, func(context.Context) error {
		if failing.Load() {
			return errors.New("down")
		}
		return nil
	})}, WithTTL(time.Second), withClock(clk))

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
		clk.advance(s.advance)
		failing.Store(s.fail)
		for range 3 {
			err := answer(t, async(func() error { return r.Check(t.Context()) }))
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
	clk := newFakeClock()
	r := mustReadiness(t, []Checker{counted("c", &calls, func(ctx context.Context) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})}, WithTimeout(10*time.Second), withClock(clk))

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
	clk.advance(DefaultTTL)
	first := async(func() error { return r.Check(t.Context()) })
	waitFor(t, func() bool { return calls.Load() == 2 })
	for range 100 {
		if err := r.Check(t.Context()); err != nil {
			t.Fatalf("request during refresh: %v", err)
		}
	}
	noAnswer(t, first, "the refreshing request, before its run ended")
	gate <- struct{}{}
	if err := answer(t, first); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
}

// TestConcurrentChecks: checks run at the same time: three checks that each
// wait for the others to start all pass.
func TestConcurrentChecks(t *testing.T) {
	var started sync.WaitGroup
	started.Add(3)
	meet := func(ctx context.Context) error {
		started.Done()
		done := make(chan struct{})
		go func() { started.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r := mustReadiness(t, []Checker{Func("a", meet), Func("b", meet), Func("c", meet)}, WithTimeout(5*time.Second))
	if err := r.Check(t.Context()); err != nil {
		t.Fatalf("%v: the checks did not run at once", err)
	}
}

// TestCheckCached: Check reads the outcome until a result's TTL ends (a timer,
// not a clock read, marks it stale), applies the lifecycle at once, and
// allocates nothing while the results are fresh.
func TestCheckCached(t *testing.T) {
	tests := []struct {
		name      string
		ttl       time.Duration
		wantCalls int64 // after 20 sequential Checks
	}{
		{"ttl zero runs every time", 0, 20},
		{"cached for the ttl", time.Hour, 1},
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
			if n := calls.Load(); n != tt.wantCalls {
				t.Errorf("%d calls for 20 requests, want %d", n, tt.wantCalls)
			}
		})
	}

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
		for _, n := range []int{1, 100} {
			checks := make([]Checker, n)
			for i := range checks {
				checks[i] = Func("c/"+string(rune('a'+i%26))+string(rune('a'+i/26)), ok)
			}
			r := mustReadiness(t, checks, WithTTL(time.Hour))
			ctx := t.Context()
			_ = r.Check(ctx)
			if allocs := testing.AllocsPerRun(1000, func() { _ = r.Check(ctx) }); allocs != 0 {
				t.Errorf("%d checks: %v allocations per cached Check, want 0", n, allocs)
			}
		}
	})
}

// TestOptionalHungCheck: a hung optional check never fails a probe, not even
// the first, which waits for the checks that count only; a report shows it
// failing.
func TestOptionalHungCheck(t *testing.T) {
	clk := newFakeClock()
	r := mustReadiness(t, []Checker{
		Func("db", ok),
		Optional(Func("cache", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })),
	}, WithTimeout(50*time.Millisecond), WithTTL(time.Millisecond), withClock(clk))
	for i := range 5 {
		if err := answer(t, async(func() error { return r.Check(t.Context()) })); err != nil {
			t.Fatalf("probe %d with the optional check hung: %v, want ready", i, err)
		}
		clk.advance(20 * time.Millisecond)
	}
	rep := async(func() error {
		rep := r.Report(t.Context(), Filter{})
		if rep.NotReady != nil || summary(rep) != "startup:ok shutdown:ok db:ok cache:opt-fail" {
			return errors.New(summary(rep))
		}
		return nil
	})
	if err := answerAdvancing(t, clk, rep); err != nil {
		t.Errorf("report %v, want ready and the cache failing", err)
	}
}
