// Package probes runs the readiness checks behind a Kubernetes readiness probe.
//
// A [Checker] is a named check with a context: [Func] adapts a closure, [Postgres]
// pings a database pool and [Memcached] pings one memcached server. [NewReadiness]
// gathers checks into a [Readiness], which runs them concurrently, each under its
// own timeout, caches each result for a short TTL and lets only one run of a check
// be in flight at a time, however many probes arrive. A Readiness also carries the
// lifecycle of the process: it is not ready until [Readiness.MarkStarted] and not
// ready again from [Readiness.MarkDraining] on.
//
// Check names are short and lower-case. A name of the form group/instance, such as
// "postgres/default" or "memcached/cache-0:11211", puts the check in a group, so
// excluding "postgres" skips every pool. The names "startup" and "shutdown" are
// reserved for the lifecycle checks.
//
// A failing check's error is meant for the log, not for a response body: it may
// carry driver detail. [NotReady] is what a caller shows instead. Package
// middleware serves a Readiness over HTTP.
//
// Reading the source: checker.go holds [Checker] and its adapters ([Func],
// [Optional], [Timeout]); readiness.go holds [Readiness] and the engine behind it
// (the cache, the runs in flight and the transitions).
package probes
