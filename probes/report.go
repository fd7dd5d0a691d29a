package probes

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// A Filter selects the checks of a [Readiness.Report]. The zero Filter selects all.
type Filter struct {
	// Only, when set, is the one check or group to report.
	Only string
	// Exclude lists checks or groups that are reported as excluded and not run.
	Exclude []string
}

// Unknown returns the names of f.Exclude that known rejects, sorted, each once.
// [Readiness.Report] passes [Readiness.Has].
func (f Filter) Unknown(known func(name string) bool) []string {
	var unknown []string
	for _, x := range f.Exclude {
		if !known(x) {
			unknown = append(unknown, x)
		}
	}
	slices.Sort(unknown)
	return slices.Compact(unknown)
}

// add appends to results the result err of the check name, unless f leaves
// the check out.
func (f Filter) add(results []Result, name string, err error, optional bool) []Result {
	if f.Only != "" && !Match(f.Only, name) {
		return results
	}
	res := Result{Name: name, Err: err, Optional: optional}
	switch {
	case slices.Contains(f.Exclude, name):
		res.Err, res.Excluded = nil, true
	case slices.ContainsFunc(f.Exclude, func(x string) bool { return Match(x, name) }):
		res.Err, res.Excluded, res.ExcludedWith = nil, true, group(name)
	}
	return append(results, res)
}

// runs reports whether f has the check name run: it is selected and not excluded.
func (f Filter) runs(name string) bool {
	return (f.Only == "" || Match(f.Only, name)) && !slices.ContainsFunc(f.Exclude, func(x string) bool { return Match(x, name) })
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
	// ExcludedWith is the group through which the check was excluded, as in
	// Kubernetes' "[+]postgres/default excluded with postgres: ok"; empty when
	// it was excluded by its own name, or not at all.
	ExcludedWith string
}

// Report returns the results of the checks f selects. It starts a run of each
// selected check whose result is older than the TTL and waits for those runs
// and for first results, no longer than the timeout, or until ctx is done.
// Report changes nothing itself: the results of the runs it starts count as
// any run's do (see [Readiness]).
func (r *Readiness) Report(ctx context.Context, f Filter) Report {
	var waits []<-chan struct{}
	r.mu.Lock()
	started := false
	for _, e := range r.checks {
		switch {
		case !f.runs(e.name):
		case e.stale(r.ttl) && !e.busy:
			waits = append(waits, r.start(e).done)
			started = true
		case e.flight != nil && !e.ran:
			waits = append(waits, e.flight.done)
		}
	}
	if started {
		r.publish()
	}
	r.mu.Unlock()
	var ctxErr error
	if len(waits) > 0 {
		expired, stop := r.deadline()
		ctxErr = await(ctx, expired, waits)
		stop()
	}

	r.mu.Lock()
	rep := Report{Results: r.results(f, ctxErr)}
	r.mu.Unlock()
	rep.Unknown = f.Unknown(r.Has)
	rep.NotReady = notReadyOf(rep.Results)
	return rep
}

// results returns the current results of the checks f selects: the lifecycle,
// then each check's last result (see entry.result). r.mu is held.
func (r *Readiness) results(f Filter, ctxErr error) []Result {
	n := 2 + len(r.checks)
	if f.Only != "" {
		n = 1
	}
	results := make([]Result, 0, n)
	var startup, shutdown error
	if !r.started {
		startup = r.starting
	}
	if r.draining {
		shutdown = r.stopping
	}
	results = f.add(results, StartupCheck, startup, false)
	results = f.add(results, ShutdownCheck, shutdown, false)
	for _, e := range r.checks {
		results = f.add(results, e.name, e.result(ctxErr), e.optional)
	}
	return results
}

// notReadyOf returns the Report.NotReady for results.
func notReadyOf(results []Result) *NotReady {
	var failed failures
	for _, res := range results {
		if res.Err != nil && !res.Optional && !res.Excluded {
			failed = append(failed, failure{res.Name, res.Err})
		}
	}
	return notReady(failed)
}

// notReady returns nil when nothing failed; otherwise the first failure that
// is a *NotReady itself, or a default NotReady wrapping them all.
func notReady(failed failures) *NotReady {
	if len(failed) == 0 {
		return nil
	}
	for _, f := range failed {
		if nr, ok := errors.AsType[*NotReady](f.err); ok {
			return nr
		}
	}
	return &NotReady{Err: failed}
}

// failure is a check that failed, lifecycle checks included, and its error.
type failure struct {
	name string
	err  error
}

// failures is the cause of a default NotReady: one "name: error" line per
// failed check. It formats only when asked, so that keeping the outcome
// current costs no formatting.
type failures []failure

func (f failures) Error() string {
	var b strings.Builder
	for i, x := range f {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(x.name + ": " + x.err.Error())
	}
	return b.String()
}

// Unwrap returns the checks' errors, for [errors.Is] and [errors.As].
func (f failures) Unwrap() []error {
	errs := make([]error, len(f))
	for i, x := range f {
		errs[i] = x.err
	}
	return errs
}
