package main

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gok8s/gok8s/probes"
)

// TestOptionalChecks: PROBE_OPTIONAL's names and groups make their checks
// optional (reported, never failing readiness); the others stay critical.
func TestOptionalChecks(t *testing.T) {
	down := func(name string) probes.Checker {
		return probes.Func(name, func(context.Context) error { return errors.New("down") })
	}
	tests := []struct {
		names   []string
		failing []string // the failing checks that still fail readiness
		err     string
	}{
		{names: nil, failing: []string{"postgres/default", "memcached/a:1", "memcached/b:1"}},
		{names: []string{"memcached"}, failing: []string{"postgres/default"}},
		{names: []string{"memcached/b:1"}, failing: []string{"postgres/default", "memcached/a:1"}},
		{names: []string{" memcached/a:1", "postgres"}, failing: []string{"memcached/b:1"}},
		{names: []string{"memcached", "memcached/a:1"}, failing: []string{"postgres/default"}},
		{names: []string{"redis"}, err: `PROBE_OPTIONAL: "redis" matches no check (checks: postgres/default, memcached/a:1, memcached/b:1)`},
		{names: []string{"memcached", "a:1"}, err: `PROBE_OPTIONAL: "a:1" matches no check`},
		{names: []string{"memcached/"}, err: `PROBE_OPTIONAL: "memcached/" matches no check`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.names, ","), func(t *testing.T) {
			checks := []probes.Checker{down("postgres/default"), down("memcached/a:1"), down("memcached/b:1")}
			got, err := optionalChecks(checks, tt.names)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one holding %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ready, err := probes.NewReadiness(got)
			if err != nil {
				t.Fatal(err)
			}
			ready.MarkStarted()
			var failing []string
			for _, res := range ready.Report(t.Context(), probes.Filter{}).Results {
				if res.Err != nil && !res.Optional {
					failing = append(failing, res.Name)
				}
			}
			if !slices.Equal(failing, tt.failing) {
				t.Errorf("failing readiness: %q, want %q", failing, tt.failing)
			}
			if err := ready.Check(t.Context()); err == nil {
				t.Error("readiness passes with a critical check down")
			}
		})
	}
}

// TestRunProbeOptionalUnknown: serve exits 2 naming PROBE_OPTIONAL when one of
// its names matches no check.
func TestRunProbeOptionalUnknown(t *testing.T) {
	t.Setenv("PROBE_OPTIONAL", "memcached,redis")
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"serve"}, &stdout, &stderr); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	want := `app: PROBE_OPTIONAL: "redis" matches no check (checks: postgres/default, memcached/localhost:11211)` + "\n"
	if stderr.String() != want {
		t.Errorf("stderr %q\nwant   %q", stderr.String(), want)
	}
}
