// Package probes runs the readiness checks behind a Kubernetes readiness probe.
//
// A [Checker] is a named check with a context: [Func] adapts a closure,
// [PostgresConn] and [Postgres] ping a database, and [Memcached] pings one
// memcached server. [NewReadiness]
// gathers checks into a [Readiness], which runs them concurrently, each under its
// own timeout, keeps each result for a short TTL and lets only one run of a check
// be in flight at a time, however many probes arrive. A Readiness also carries the
// lifecycle of the process: it is not ready until [Readiness.MarkStarted] and not
// ready again from [Readiness.MarkDraining] on. Whenever a result or the lifecycle
// changes, it works out its outcome anew, so that [Readiness.Check] with fresh
// results reads it without locking or allocating, and [Readiness.Status] and
// [Readiness.Subscribe] give it to other protocols, such as a gRPC health service.
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
// excluding "postgres" skips every pool ([Match]). The names "startup" and
// "shutdown" are reserved for the lifecycle checks.
//
// A failing check's error is meant for the log, not for a response body: it may
// carry driver detail. [NotReady] is what a caller shows instead. Package
// middleware serves a Readiness over HTTP.
//
// Reading the source, in the order a request meets it: checker.go holds
// [Checker], its adapters ([Func], [Optional], [Timeout]) and [Match];
// readiness.go the [Readiness] type, its options and its lifecycle
// (MarkStarted, MarkDraining, Close); run.go the running of checks
// ([Readiness.Check], the runs in flight, their timeouts, the end of a
// result's TTL); state.go [State], [Transition], [Readiness.Status] and
// publish, the one place where the outcome and the state change; report.go
// [Filter], [Report] and [Readiness.Report], which only read;
// subscription.go [Subscription]; observer.go [Observer] and the delivery of
// its events; clock.go the clock the engine reads time through. postgres.go,
// memcached.go, notready.go and redact.go hold the PostgreSQL and memcached
// checks, [NotReady] and [Redact].
package probes
