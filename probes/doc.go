// Package probes runs the readiness checks behind a Kubernetes readiness probe.
//
// A [Checker] is a named check with a context: [Func] adapts a closure,
// [PostgresConn] and [Postgres] ping a database, and [Memcached] pings one
// memcached server. [NewReadiness]
// gathers checks into a [Readiness], which runs them concurrently, each under its
// own timeout, caches each result for a short TTL and lets only one run of a check
// be in flight at a time, however many probes arrive. A Readiness also carries the
// lifecycle of the process: it is not ready until [Readiness.MarkStarted] and not
// ready again from [Readiness.MarkDraining] on.
//
// A PostgreSQL check answers "can this pod reach its database", not "is its pool
// idle". [PostgresConn] (and [PostgresConns] for many pools) gives the check a
// one-connection pool of its own, built from the request pool's config, dialled
// on the first run, reused while it answers and dialled again after a failure,
// so that requests holding every connection of the request pool never queue a
// probe, and a probe opens no connection while its own is healthy.
// [Postgres] accepts any [Pinger], a *pgxpool.Pool or a *sql.DB among them; with
// a pool it borrows one of the pool's connections, which under load can make
// every replica fail readiness at once. [Readiness.Close] closes what the checks
// hold.
//
// [WithObserver] reports each run of a check and each change of the overall
// [State] to callbacks that run off the probe's path, for metrics.
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
