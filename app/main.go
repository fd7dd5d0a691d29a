// Command app is gok8s's reference service: a link shortener that keeps links in
// PostgreSQL and caches them in memcached, behind the probe middleware.
//
// Usage:
//
//	app [command] [flags]
//
// Without a command it serves HTTP and gRPC until SIGTERM or SIGINT. Configuration comes
// from the environment. `app help` lists the commands (healthcheck, migrate,
// wait, …) and the variables, from their one source each: the table in
// commands.go and the tags of the config struct.
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

	"github.com/gok8s/gok8s/app/internal/links"
	"github.com/gok8s/gok8s/app/internal/metrics"
	"github.com/gok8s/gok8s/app/internal/tracing"
	"github.com/gok8s/gok8s/grpchealth"
	"github.com/gok8s/gok8s/probes"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
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
	name := "serve"
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	cmd, ok := lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "app: unknown command %q; see app help\n", name)
		return 2
	}
	switch cmd.name {
	case "help":
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

	err = cmd.run(ctx, cfg, args, stdout, log)
	if ue, ok := errors.AsType[usageError](err); ok {
		fmt.Fprintf(stderr, "app: %v\n", ue.err)
		return 2
	}
	if err != nil {
		log.Error(cmd.name+" failed", "error", probes.Redact(err.Error()))
		return 1
	}
	return 0
}

// serve runs the HTTP service until a signal, then drains and shuts down.
func serve(ctx context.Context, cfg config, log *slog.Logger) error {
	log.Info("starting", append([]any{"version", version}, cfg.attrs()...)...)
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	// Metrics: one registry of our own, served on ADMIN_ADDR.
	reg := prometheus.NewRegistry()

	// Tracing: from the OTEL_* variables, read by the OpenTelemetry SDK; none
	// set, no tracing. Flushed at shutdown, within SHUTDOWN_TIMEOUT.
	tr, err := tracing.New(ctx, version, reg, log)
	if err != nil {
		return usageError{err}
	}
	log = tr.Logger(log) // trace_id and span_id on the lines of a traced request
	if tr.Enabled() {
		log.Info("tracing on", "otel_exporter_otlp_endpoint", maskURL(os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")),
			"otel_exporter_otlp_traces_endpoint", maskURL(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")))
	}

	// =========================================================================
	// Database and cache support

	pools, err := openPools(cfg, tr.PgxTracer())
	if err != nil {
		return err
	}
	defer func() {
		for _, p := range pools {
			p.Close()
		}
	}()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		metrics.BuildInfo(version), metrics.Pools(pools))

	cacheOpts := []links.CacheOption{links.WithStats(metrics.NewCache(reg)), links.WithMaxIdleConns(cfg.CacheMaxIdle)}
	if tr.Enabled() {
		cacheOpts = append(cacheOpts, links.WithTracerProvider(tr.TracerProvider()))
	}
	cache := links.NewCache(links.NewStore(pools["default"]), cfg.MemcachedServers, cfg.CacheTTL, cfg.CacheTimeout, log, cacheOpts...)
	defer cache.Close()
	svc := links.NewService(cache, log) // the links API of both transports

	// Each PostgreSQL check has a connection of its own: request load never queues a probe.
	checks, err := optionalChecks(append(probes.PostgresConns(pools), probes.MemcachedServers(cfg.MemcachedServers)...), cfg.ProbeOptional)
	if err != nil {
		return usageError{err}
	}
	ready, err := probes.NewReadiness(checks,
		probes.WithTimeout(cfg.ProbeTimeout), probes.WithTTL(cfg.ProbeTTL), probes.WithLogger(log),
		probes.WithObserver(metrics.NewProbes(reg, checkNames(checks)).Observer()),
		probes.WithObserver(metrics.NewReadiness(reg).Observer()),
		probes.WithObserver(cacheBreakers(cache)),
	)
	if err != nil {
		return err
	}
	defer ready.Close()
	reg.MustRegister(metrics.DroppedRuns(ready))

	// =========================================================================
	// Start API service: HTTP, and gRPC on GRPC_ADDR

	var draining atomic.Bool
	srv := &http.Server{
		Handler: closeWhenDraining(&draining, apiHandler(ready, svc, reg, log, apiLimits{
			maxBody: cfg.MaxBodyBytes, read: cfg.ReadTimeout, write: cfg.WriteTimeout, retryAfter: cfg.DatabaseRetryAfter,
		}, tr)),
		// HTTP_READ_TIMEOUT and HTTP_WRITE_TIMEOUT bound each API request (see
		// withDeadlines), not the server's: probes read no body and write a
		// few bytes, and skip two deadline changes per request.
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Both listeners first: a port that is taken fails the start before
	// either server has answered anything.
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close() // for a return before Serve; Shutdown closes it otherwise

	health := grpchealth.NewServer(ready) // the same readiness over grpc.health.v1
	var grpcSrv *grpc.Server
	var gln net.Listener
	if cfg.GRPCAddr != "" {
		if gln, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
			return fmt.Errorf("listen for gRPC: %w", err)
		}
		defer gln.Close() // for a return before Serve; Stop closes it otherwise
		grpcSrv = newGRPCServer(cfg, svc, health, reg, log, tr)
	}
	var admin *http.Server
	var aln net.Listener
	if cfg.AdminAddr != "" {
		admin = &http.Server{
			Handler:           metrics.AdminHandler(reg, srv.ErrorLog),
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			ReadTimeout:       cfg.ReadTimeout,
			WriteTimeout:      2 * time.Minute, // above pprof's 30 s CPU profile
			IdleTimeout:       cfg.IdleTimeout,
			ErrorLog:          srv.ErrorLog,
		}
		if aln, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			return fmt.Errorf("listen for admin: %w", err)
		}
	}

	serverErrors := make(chan error, 3)
	go func() { serverErrors <- srv.Serve(ln) }()
	defer srv.Close() // when a server fails; after a Shutdown, a no-op
	log.Info("listening", "addr", ln.Addr().String())
	if grpcSrv != nil {
		go func() { serverErrors <- grpcSrv.Serve(gln) }()
		defer grpcSrv.Stop() // when a server fails; after stopGRPC, a no-op
		log.Info("grpc listening", "addr", gln.Addr().String(), "services", "links.v1.LinkService grpc.health.v1.Health reflection")
	}
	if admin != nil {
		go func() {
			if err := admin.Serve(aln); !errors.Is(err, http.ErrServerClosed) {
				serverErrors <- fmt.Errorf("admin: %w", err)
			}
		}()
		defer admin.Close() // after the API's shutdown, so the drain can be scraped
		log.Info("admin listening", "addr", aln.Addr().String(), "paths", "/metrics /debug/pprof/")
	}

	// Ready once migrations are applied and the pool's DATABASE_MIN_CONNS are
	// open; until then /livez answers and /readyz is 503.
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
	log.Info("shutdown: signal received")
	stopSignals()        // a second signal ends the process at once
	draining.Store(true) // each connection closes after its next response
	ready.MarkDraining() // /readyz 503; gRPC readiness NOT_SERVING, to watchers too
	cancelStart()
	log.Info("shutdown: draining, /readyz answers 503 and gRPC readiness NOT_SERVING, HTTP connections close after their response", "delay", cfg.ShutdownDelay)
	select {
	case <-time.After(cfg.ShutdownDelay):
	case err := <-serverErrors:
		return fmt.Errorf("serve: %w", err)
	}

	log.Info("shutdown: closing the listeners and waiting for requests", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	grpcStopped := make(chan error, 1)
	if grpcSrv != nil {
		// Watch streams end, then GOAWAY: clients finish their calls and reconnect elsewhere.
		go func() { grpcStopped <- stopGRPC(shutdownCtx, grpcSrv, health) }()
	} else {
		grpcStopped <- nil
	}
	var errs []error
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		errs = append(errs, fmt.Errorf("HTTP requests still running: %w", err))
	}
	if err := <-grpcStopped; err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shutdown after %s: %w", cfg.ShutdownTimeout, err)
	}
	// The requests' last spans, within what is left of SHUTDOWN_TIMEOUT (at
	// most tracing.FlushTimeout): an unreachable receiver cannot hold the pod.
	if err := tr.Shutdown(shutdownCtx); err != nil {
		log.Warn("shutdown: spans not exported", "error", err.Error())
	}
	log.Info("shutdown: done")
	return nil
}

// cacheBreakers returns an Observer that opens the circuit breaker of a
// memcached server whose readiness check failed, so that the cache and
// /readyz agree: once either finds a server down, requests skip it.
func cacheBreakers(cache *links.Cache) probes.Observer {
	return probes.Observer{CheckDone: func(run probes.CheckRun) {
		if addr, ok := strings.CutPrefix(run.Name, "memcached/"); ok && run.Err != nil {
			cache.ServerDown(addr)
		}
	}}
}

// checkNames returns the names of checks.
func checkNames(checks []probes.Checker) []string {
	names := make([]string, len(checks))
	for i, c := range checks {
		names[i] = c.Name()
	}
	return names
}
