package probes

import (
	"context"
	"strings"
	"time"
)

// A Checker is one named readiness check. Check reports whether the dependency it
// checks can serve requests; it must return once ctx is done.
type Checker interface {
	Name() string
	Check(ctx context.Context) error
}

// Func returns a [Checker] named name that calls check.
func Func(name string, check func(ctx context.Context) error) Checker {
	return funcChecker{name: name, check: check}
}

type funcChecker struct {
	name  string
	check func(context.Context) error
}

var _ Checker = funcChecker{}

func (f funcChecker) Name() string                    { return f.name }
func (f funcChecker) Check(ctx context.Context) error { return f.check(ctx) }

// Optional returns a [Checker] that runs c and reports its result, but whose
// failure does not make a [Readiness] fail.
func Optional(c Checker) Checker {
	t := withTraits(c)
	t.optional = true
	return t
}

// Timeout returns a [Checker] that runs c under its own timeout d instead of the
// Readiness's (see [WithTimeout]). A request still waits no longer than the
// Readiness's timeout; a longer run goes on and its result serves later requests.
func Timeout(c Checker, d time.Duration) Checker {
	t := withTraits(c)
	t.timeout = d
	return t
}

// traits is a Checker with the per-check settings of Optional and Timeout.
type traits struct {
	Checker
	optional bool
	timeout  time.Duration
}

var _ Checker = (*traits)(nil)

func withTraits(c Checker) *traits {
	if t, ok := c.(*traits); ok {
		cp := *t
		return &cp
	}
	return &traits{Checker: c}
}

// Match reports whether name selects the check named check: name is the whole
// name, or its group, the part before the first "/" ("postgres" selects
// "postgres/default"). An empty name selects nothing. [Filter], [Readiness.Has]
// and [Readiness.Status] match names this way.
func Match(name, check string) bool {
	return name != "" && (name == check || name == group(check))
}

// group returns the part of name before its first "/", or "" if it has none.
func group(name string) string {
	g, _, ok := strings.Cut(name, "/")
	if !ok {
		return ""
	}
	return g
}
