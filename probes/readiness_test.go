package probes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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

// summary renders a report as "name:state" words, state one of ok, fail,
// opt-fail, excl and excl(group).
func summary(rep Report) string {
	var words []string
	for _, res := range rep.Results {
		state := "ok"
		switch {
		case res.Excluded && res.ExcludedWith != "":
			state = "excl(" + res.ExcludedWith + ")"
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
		{"exclude group", Filter{Exclude: []string{"postgres"}}, "startup:ok shutdown:ok postgres/a:excl(postgres) postgres/b:excl(postgres) memcached/m:1:opt-fail disk:ok", true, nil},
		{"exclude name and group", Filter{Exclude: []string{"postgres", "postgres/b"}}, "startup:ok shutdown:ok postgres/a:excl(postgres) postgres/b:excl memcached/m:1:opt-fail disk:ok", true, nil},
		{"exclude lifecycle", Filter{Exclude: []string{"shutdown"}}, "startup:ok shutdown:excl postgres/a:ok postgres/b:fail memcached/m:1:opt-fail disk:ok", false, nil},
		{"exclude unknown", Filter{Exclude: []string{"nope", "disk", "nope", "a"}}, "startup:ok shutdown:ok postgres/a:ok postgres/b:fail memcached/m:1:opt-fail disk:excl", false, []string{"a", "nope"}},
		{"exclude empty name", Filter{Exclude: []string{""}}, "startup:ok shutdown:ok postgres/a:ok postgres/b:fail memcached/m:1:opt-fail disk:ok", false, []string{""}},
		{"only name", Filter{Only: "postgres/a"}, "postgres/a:ok", true, nil},
		{"only group", Filter{Only: "postgres"}, "postgres/a:ok postgres/b:fail", false, nil},
		{"only group excluding one", Filter{Only: "postgres", Exclude: []string{"postgres/b"}}, "postgres/a:ok postgres/b:excl", true, nil},
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
	tests := []struct {
		name string
		want bool
	}{
		{"postgres/a", true}, {"postgres", true}, {"disk", true}, {"startup", true}, {"shutdown", true},
		{"postgres/b", false}, {"", false}, {"disk/x", false}, {"post", false}, {"postgres/", false},
	}
	for _, tt := range tests {
		if got := r.Has(tt.name); got != tt.want {
			t.Errorf("Has(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name, check string
		want        bool
	}{
		{"postgres/default", "postgres/default", true},
		{"postgres", "postgres/default", true},
		{"postgres", "postgres", true},
		{"memcached", "memcached/a:1/x", true},
		{"postgres/", "postgres/default", false},
		{"post", "postgres/default", false},
		{"default", "postgres/default", false},
		{"", "postgres/default", false},
		{"", "", false},
		{"disk", "disk/x", true},
		{"disk/x", "disk", false},
	}
	for _, tt := range tests {
		if got := Match(tt.name, tt.check); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.name, tt.check, got, tt.want)
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

// waitFor polls cond until it holds, and fails t after 30 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a hang guard, not a timing assertion
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(time.Millisecond) // poll; a spin would take the CPU from what it waits for
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
