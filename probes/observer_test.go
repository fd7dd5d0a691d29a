package probes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is an Observer that keeps its events as words.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (rec *recorder) observer() Observer {
	return Observer{
		CheckDone: func(run CheckRun) { rec.add(runWord(run)) },
		StateChanged: func(tr Transition) {
			rec.add(fmt.Sprintf("%s->%s%v", tr.From, tr.To, tr.Failing))
		},
	}
}

// runWord renders run as name:outcome, outcome one of ok, failed, timeout, panic.
func runWord(run CheckRun) string {
	word := run.Name + ":ok"
	switch {
	case run.Panicked:
		word = run.Name + ":panic"
	case run.TimedOut:
		word = run.Name + ":timeout"
	case run.Err != nil:
		word = run.Name + ":failed"
	}
	if run.Optional {
		word += "(optional)"
	}
	return word
}

func (rec *recorder) add(word string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.events = append(rec.events, word)
}

// String returns the events so far.
func (rec *recorder) String() string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return strings.Join(rec.events, " ")
}

// lastTransition returns the last transition so far, "" if none.
func (rec *recorder) lastTransition() string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, ev := range slices.Backward(rec.events) {
		if strings.Contains(ev, "->") {
			return ev
		}
	}
	return ""
}

// wait returns the events once there are n of them, failing the test after 5 s.
func (rec *recorder) wait(t *testing.T, n int) string {
	t.Helper()
	waitFor(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.events) >= n
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return strings.Join(rec.events, " ")
}

func TestObserverEvents(t *testing.T) {
	var dbDown atomic.Bool
	db := Func("db", func(context.Context) error {
		if dbDown.Load() {
			return errors.New("down")
		}
		return nil
	})
	cache := Optional(Func("cache", func(context.Context) error { return errors.New("down") }))
	var first, second recorder
	r, err := NewReadiness([]Checker{db, cache}, WithTTL(0),
		WithObserver(first.observer()), WithObserver(second.observer()), WithObserver(Observer{}))
	if err != nil {
		t.Fatal(err)
	}
	if r.State() != StateStarting {
		t.Fatalf("State() = %v before start, want starting", r.State())
	}
	steps := []struct {
		name  string
		do    func()
		state State
		want  string // the events this step adds
	}{
		{"report while starting", func() { r.Check(t.Context()) }, StateStarting, "db:ok cache:failed(optional)"},
		{"mark started", r.MarkStarted, StateReady, "starting->ready[]"},
		{"db fails", func() { dbDown.Store(true); r.Check(t.Context()) }, StateNotReady, "db:failed cache:failed(optional) ready->not_ready[db]"},
		{"still failing", func() { r.Check(t.Context()) }, StateNotReady, "db:failed cache:failed(optional)"},
		// A report changes no state itself, but the result of a run it starts
		// counts as any other: the state changes when the result is in.
		{"filtered report", func() { dbDown.Store(false); r.Report(t.Context(), Filter{Exclude: []string{"cache"}}) }, StateReady, "db:ok not_ready->ready[]"},
		{"db still up", func() { r.Check(t.Context()) }, StateReady, "db:ok cache:failed(optional)"},
		{"mark draining", r.MarkDraining, StateDraining, "ready->draining[shutdown]"},
		{"mark started again", r.MarkStarted, StateDraining, ""},
		{"report while draining", func() { r.Check(t.Context()) }, StateDraining, "db:ok cache:failed(optional)"},
	}
	var want []string
	for _, s := range steps {
		s.do()
		if s.want != "" {
			want = append(want, strings.Fields(s.want)...)
		}
		if got := r.State(); got != s.state {
			t.Errorf("%s: State() = %v, want %v", s.name, got, s.state)
		}
		// Runs of one report may end in any order; compare them as sets.
		for _, rec := range []*recorder{&first, &second} {
			got := rec.wait(t, len(want))
			if sorted(got) != sorted(strings.Join(want, " ")) {
				t.Fatalf("%s: events %q\nwant %q", s.name, got, strings.Join(want, " "))
			}
		}
	}
}

func sorted(words string) string {
	f := strings.Fields(words)
	slices.Sort(f)
	return strings.Join(f, " ")
}

func TestObserverCheckRun(t *testing.T) {
	const timeout = 50 * time.Millisecond
	tests := []struct {
		name  string
		check Checker
		want  string
	}{
		{"passes", Func("c", ok), "c:ok"},
		{"fails", Func("c", func(context.Context) error { return errors.New("down") }), "c:failed"},
		{"times out", Func("c", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }), "c:timeout"},
		{"panics", Func("c", func(context.Context) error { panic("boom") }), "c:panic"},
		{"optional", Optional(Func("c", ok)), "c:ok(optional)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var runs []CheckRun
			var mu sync.Mutex
			r := mustReadiness(t, []Checker{tt.check}, WithTimeout(timeout),
				WithObserver(Observer{CheckDone: func(run CheckRun) { mu.Lock(); runs = append(runs, run); mu.Unlock() }}))
			r.Check(t.Context())
			waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(runs) == 1 })
			mu.Lock()
			run := runs[0]
			mu.Unlock()
			if got := runWord(run); got != tt.want {
				t.Errorf("run %q, want %q", got, tt.want)
			}
			if run.Duration <= 0 || run.Duration > 5*time.Second {
				t.Errorf("Duration = %s", run.Duration)
			}
			if (run.Err == nil) != (tt.want == "c:ok" || tt.want == "c:ok(optional)") {
				t.Errorf("Err = %v for %s", run.Err, tt.want)
			}
			if run.TimedOut && !errors.Is(run.Err, ErrTimeout) || run.Panicked && !errors.Is(run.Err, ErrPanic) {
				t.Errorf("Err = %v does not match TimedOut=%v Panicked=%v", run.Err, run.TimedOut, run.Panicked)
			}
		})
	}
}

// TestObserverOffProbePath: an observer that blocks or panics never stalls or
// fails a probe, and the other observers still get every event.
func TestObserverOffProbePath(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	tests := []struct {
		name string
		bad  Observer
		log  string // what the log must say
	}{
		{"blocks", Observer{
			CheckDone:    func(CheckRun) { <-block },
			StateChanged: func(Transition) { <-block },
		}, "readiness: an observer is blocked; dropping check runs"},
		{"panics", Observer{
			CheckDone:    func(CheckRun) { panic("observer boom") },
			StateChanged: func(Transition) { panic("observer boom") },
		}, "readiness: observer panicked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf syncBuffer
			var good recorder
			var runs atomic.Int64
			r, err := NewReadiness([]Checker{counted("db", &runs, ok)}, WithTTL(0),
				WithLogger(slog.New(slog.NewTextHandler(&buf, nil))),
				WithObserver(tt.bad), WithObserver(good.observer()))
			if err != nil {
				t.Fatal(err)
			}
			// A call that blocked on the bad observer would give no answer.
			call := func(f func()) error { f(); return nil }
			answer(t, async(func() error { return call(r.MarkStarted) }))
			// More runs than the queue holds, so that a blocked observer overflows it.
			for i := range MaxPendingEvents + 100 {
				if err := answer(t, async(func() error { return r.Check(t.Context()) })); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			answer(t, async(func() error { return call(r.MarkDraining) }))
			if got := r.State(); got != StateDraining {
				t.Errorf("State() = %v, want draining", got)
			}
			// Every event reaches the good observer, in order; the first two
			// transitions may be one, if the observer is told of them late.
			var got string
			waitFor(t, func() bool {
				got = good.String()
				return strings.HasSuffix(got, "db:ok ready->draining[shutdown]")
			})
			if !strings.HasPrefix(got, "starting->not_ready[db] db:ok not_ready->ready[]") && !strings.HasPrefix(got, "db:ok starting->ready[]") {
				t.Errorf("events begin %.80q", got)
			}
			if n := strings.Count(got, "db:ok"); n != int(runs.Load()) {
				t.Errorf("%d runs reached the good observer, want %d", n, runs.Load())
			}
			waitFor(t, func() bool { return strings.Contains(buf.String(), tt.log) })
			if tt.name == "blocks" && r.DroppedRuns() == 0 {
				t.Error("DroppedRuns() = 0, want the runs the blocked observer missed")
			}
		})
	}
}

// TestObserverLatestWins: an observer that is blocked while the state changes
// many times is then told of the current state, from the one it knew, and of
// no run beyond its queue; the runs dropped are counted.
func TestObserverLatestWins(t *testing.T) {
	var down atomic.Bool
	clk := newFakeClock()
	block := make(chan struct{})
	var mu sync.Mutex
	var states []Transition
	var runs int
	r, err := NewReadiness([]Checker{Func("db", func(context.Context) error {
		if down.Load() {
			return errors.New("down")
		}
		return nil
	})}, WithTTL(time.Second), withClock(clk), WithObserver(Observer{
		CheckDone: func(CheckRun) {
			<-block
			mu.Lock()
			runs++
			mu.Unlock()
		},
		StateChanged: func(tr Transition) {
			<-block
			mu.Lock()
			states = append(states, tr)
			mu.Unlock()
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	r.MarkStarted()
	const flips = MaxPendingEvents + 500
	for i := range flips {
		down.Store(i%2 == 0)
		clk.advance(time.Second)
		answer(t, async(func() error { _ = r.Check(t.Context()); return nil }))
	}
	want := r.State()
	dropped := r.DroppedRuns()
	if dropped == 0 {
		t.Fatalf("DroppedRuns() = 0 after %d runs with the observer blocked", flips)
	}
	close(block)
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(states) > 0 && states[len(states)-1].To == want && uint64(runs)+dropped == flips
	})
	mu.Lock()
	defer mu.Unlock()
	from := StateStarting
	for i, tr := range states {
		if tr.From != from || tr.From == tr.To {
			t.Fatalf("transition %d: %v->%v after %v", i, tr.From, tr.To, from)
		}
		from = tr.To
	}
	if len(states) > MaxPendingEvents+2 {
		t.Errorf("%d transitions delivered: latest-wins should have merged them", len(states))
	}
	t.Logf("%d runs: %d delivered, %d dropped; %d transitions delivered", flips, runs, dropped, len(states))
}
