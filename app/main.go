// Command app is gok8s's reference service: a link shortener that keeps links in
// PostgreSQL and caches them in memcached, behind the probe middleware.
//
// Usage:
//
//	app [serve]        serve HTTP until SIGTERM or SIGINT (the default)
//	app healthcheck    GET this service's /readyz (or -path /livez); exit 0 if 200
//	app migrate        apply the database migrations and exit
//	app wait           wait until the database answers (-timeout 60s)
//	app version        print the version
//	app help           print this and the configuration variables
//
// Configuration comes from the environment; `app help` lists the variables.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gok8s/gok8s/app/internal/accesslog"
	"github.com/gok8s/gok8s/app/internal/links"
	"github.com/gok8s/gok8s/app/internal/metrics"
	"github.com/gok8s/gok8s/app/internal/schema"
	"github.com/gok8s/gok8s/middleware"
	"github.com/gok8s/gok8s/probes"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// version is stamped at build time: -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command named by args and returns the exit status: 0, 1 when the
// command fails, 2 for a bad command line or configuration. Logs go to stdout,
// command-line and configuration errors to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "version":
		fmt.Fprintln(stdout, version)
		return 0
	}

	// =========================================================================
	// Configuration

	cfg, err := loadConfig()
	if err != nil {
		for line := range strings.SplitSeq(err.Error(), "\n") {
			fmt.Fprintf(stderr, "app: %s\n", line)
		}
		return 2
	}
	log := cfg.newLogger(stdout)

	switch cmd {
	case "serve":
		err = serve(ctx, cfg, log)
	case "healthcheck":
		err = healthcheck(ctx, cfg, args, stdout)
	case "migrate":
		err = migrate(ctx, cfg, log)
	case "wait":
		err = waitForDatabase(ctx, cfg, args, log)
	default:
		err = usageError{fmt.Errorf("unknown command %q; see app help", cmd)}
	}
	if ue, ok := errors.AsType[usageError](err); ok {
		fmt.Fprintf(stderr, "app: %v\n", ue.err)
		return 2
	}
	if err != nil {
		log.Error(cmd+" failed", "error", probes.Redact(err.Error()))
		return 1
	}
	return 0
}

// serve runs the HTTP service until a signal, then drains and shuts down.
func serve(ctx context.Context, cfg config, log *slog.Logger) error {
	log.Info("starting", append([]any{"version", version}, cfg.attrs()...)...)
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	// =========================================================================
	// Database and cache support

	pools, err := openPools(cfg)
	if err != nil {
		return err
	}
	defer func() {
		for _, p := range pools {
			p.Close()
		}
	}()

	// Metrics: one registry of our own, served on ADMIN_ADDR.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		metrics.BuildInfo(version), metrics.Pools(pools))

	repo := links.NewCache(links.NewStore(pools["default"]), cfg.MemcachedServers, cfg.CacheTTL, cfg.CacheTimeout, log,
		links.WithStats(metrics.NewCache(reg)))

	// Each PostgreSQL check has a connection of its own: request load never queues a probe.
	checks, err := optionalChecks(append(probes.PostgresConns(pools), probes.MemcachedServers(cfg.MemcachedServers)...), cfg.ProbeOptional)
	if err != nil {
		return usageError{err}
	}
	ready, err := probes.NewReadiness(checks,
		probes.WithTimeout(cfg.ProbeTimeout), probes.WithTTL(cfg.ProbeTTL), probes.WithLogger(log),
		probes.WithObserver(metrics.NewProbes(reg, checkNames(checks)).Observer()),
	)
	if err != nil {
		return err
	}
	defer ready.Close()

	// =========================================================================
	// Start API service

	var draining atomic.Bool
	srv := &http.Server{
		Handler: closeWhenDraining(&draining, apiHandler(ready, repo, reg, log, apiLimits{
			maxBody: cfg.MaxBodyBytes, read: cfg.ReadTimeout, write: cfg.WriteTimeout,
		})),
		// HTTP_READ_TIMEOUT and HTTP_WRITE_TIMEOUT bound each API request (see
		// withDeadlines), not the server's: probes read no body and write a
		// few bytes, and skip two deadline changes per request.
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	serverErrors := make(chan error, 1)
	go func() { serverErrors <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())

	if cfg.AdminAddr != "" {
		admin := &http.Server{
			Handler:           metrics.AdminHandler(reg, srv.ErrorLog),
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			ReadTimeout:       cfg.ReadTimeout,
			WriteTimeout:      2 * time.Minute, // above pprof's 30 s CPU profile
			IdleTimeout:       cfg.IdleTimeout,
			ErrorLog:          srv.ErrorLog,
		}
		aln, err := net.Listen("tcp", cfg.AdminAddr)
		if err != nil {
			return fmt.Errorf("listen for admin: %w", err)
		}
		go func() { _ = admin.Serve(aln) }()
		defer admin.Close() // after the API's shutdown, so the drain can be scraped
		log.Info("admin listening", "addr", aln.Addr().String(), "paths", "/metrics /debug/pprof/")
	}

	// Ready once migrations are applied; until then /livez answers and /readyz is 503.
	startCtx, cancelStart := context.WithCancel(ctx)
	defer cancelStart()
	go startUp(startCtx, pools["default"], ready, log)

	// =========================================================================
	// Shutdown

	select {
	case err := <-serverErrors:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	stopSignals()        // a second signal ends the process at once
	draining.Store(true) // each connection closes after its next response
	ready.MarkDraining()
	cancelStart()
	log.Info("shutdown: draining, /readyz answers 503, connections close after their response", "delay", cfg.ShutdownDelay)
	select {
	case <-time.After(cfg.ShutdownDelay):
	case err := <-serverErrors:
		return fmt.Errorf("serve: %w", err)
	}

	log.Info("shutdown: closing the listener and waiting for requests", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown: requests still running after %s: %w", cfg.ShutdownTimeout, err)
	}
	log.Info("shutdown: done")
	return nil
}

// closeWhenDraining returns a [http.Handler] that calls h and, once draining is
// set, adds Connection: close to every response, so that the server closes each
// HTTP/1 connection after its response and keep-alive clients reconnect through
// the Service to a ready pod. HTTP/2 clients get GOAWAY at Shutdown.
//
// Not http.Server.SetKeepAlivesEnabled(false): it also closes every idle
// connection at once, and a request a client sends on one at that moment is
// lost (a POST is not retried), as Shutdown loses it later. Here an idle
// connection gets its next request answered, then closes.
func closeWhenDraining(draining *atomic.Bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// apiLimits are the bounds apiHandler puts on each API request.
type apiLimits struct {
	maxBody     int64         // bytes of request body
	read, write time.Duration // time to read the whole request, and to answer it
}

// apiHandler returns the service's handler: the probes first, then the links
// API behind its deadlines, the access log, the body limit and the HTTP
// metrics. Probe requests are neither logged nor counted.
func apiHandler(ready *probes.Readiness, repo links.Repository, reg prometheus.Registerer, log *slog.Logger, lim apiLimits) http.Handler {
	api := metrics.HTTPHandler(reg, links.NewHandler(repo, log)) // inside MaxBytesHandler, which copies the request
	return middleware.Probes(ready)(withDeadlines(lim.read, lim.write, accesslog.Handler(log, http.MaxBytesHandler(api, lim.maxBody))))
}

// withDeadlines returns a [http.Handler] that sets the connection's read and
// write deadlines to read and write from now (0 leaves one unset), then calls
// h: what http.Server's ReadTimeout and WriteTimeout do, for the requests h
// serves only. net/http clears both before the connection's next request.
func withDeadlines(read, write time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		if read > 0 {
			_ = rc.SetReadDeadline(now.Add(read)) // fails only on a writer without deadlines; then h runs unbounded
		}
		if write > 0 {
			_ = rc.SetWriteDeadline(now.Add(write))
		}
		h.ServeHTTP(w, r)
	})
}

// checkNames returns the names of checks.
func checkNames(checks []probes.Checker) []string {
	names := make([]string, len(checks))
	for i, c := range checks {
		names[i] = c.Name()
	}
	return names
}

// startUp applies the migrations, retrying until they succeed or ctx ends, and
// then marks ready as started.
func startUp(ctx context.Context, db *pgxpool.Pool, ready *probes.Readiness, log *slog.Logger) {
	start := time.Now()
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		versions, err := schema.Migrate(ctx, db, log)
		if err == nil {
			log.Info("start-up: done", "migrations_applied", versions, "took", time.Since(start).Round(time.Millisecond))
			ready.MarkStarted()
			return
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("start-up: migrations failed, retrying", "error", probes.Redact(err.Error()), "retry_in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

// openPools returns a pool named "default" for DATABASE_URL and one per
// EXTRA_DATABASE_URLS entry. Pools connect lazily, so a database that is down
// does not stop the service from starting.
func openPools(cfg config) (map[string]*pgxpool.Pool, error) {
	urls := map[string]string{"default": cfg.DatabaseURL}
	for name, u := range cfg.ExtraDatabaseURLs {
		urls[name] = u
	}
	pools := make(map[string]*pgxpool.Pool, len(urls))
	for name, u := range urls {
		pool, err := newPool(u, cfg.DatabaseMaxConns)
		if err != nil {
			for _, p := range pools {
				p.Close()
			}
			return nil, fmt.Errorf("database %s: %w", name, err)
		}
		pools[name] = pool
	}
	return pools, nil
}

// newPool returns a pool for url with a 5 s connect timeout unless url sets one.
func newPool(url string, maxConns int32) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	pc.MaxConns = maxConns
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	return pgxpool.NewWithConfig(context.Background(), pc)
}
