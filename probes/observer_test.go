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
		{"filtered report", func() { dbDown.Store(false); r.Report(t.Context(), Filter{Exclude: []string{"cache"}}) }, StateNotReady, "db:ok"},
		{"db back", func() { r.Check(t.Context()) }, StateReady, "db:ok cache:failed(optional) not_ready->ready[]"},
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
	const timeout = 100 * time.Millisecond
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
		}, "readiness: an observer is blocked; dropping events"},
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
			r, err := NewReadiness([]Checker{counted("db", &runs, ok)}, WithTTL(0), WithTimeout(timeout),
				WithLogger(slog.New(slog.NewTextHandler(&buf, nil))),
				WithObserver(tt.bad), WithObserver(good.observer()))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			r.MarkStarted()
			if d := time.Since(start); d > timeout {
				t.Fatalf("MarkStarted took %s", d)
			}
			// More runs than the queue holds, so that a blocked observer overflows it.
			for i := range MaxPendingEvents + 100 {
				start := time.Now()
				if err := r.Check(t.Context()); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if d := time.Since(start); d > timeout {
					t.Fatalf("request %d took %s", i, d)
				}
			}
			start = time.Now()
			r.MarkDraining()
			if d := time.Since(start); d > timeout {
				t.Fatalf("MarkDraining took %s", d)
			}
			if got := r.State(); got != StateDraining {
				t.Errorf("State() = %v, want draining", got)
			}
			{
				// Every event reaches the good observer, in order.
				n := int(runs.Load()) + 3
				got := good.wait(t, n)
				if !strings.HasPrefix(got, "starting->not_ready[db] db:ok not_ready->ready[] db:ok") || !strings.HasSuffix(got, "db:ok ready->draining[shutdown]") {
					t.Errorf("events %.80q … %.80q", got, got[max(0, len(got)-80):])
				}
			}
			waitFor(t, func() bool { return strings.Contains(buf.String(), tt.log) })
		})
	}
}
