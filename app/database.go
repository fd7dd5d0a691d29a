package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/gok8s/gok8s/app/internal/schema"
	"github.com/gok8s/gok8s/probes"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// startUp applies the migrations and opens the connections the pool keeps
// (DATABASE_MIN_CONNS), retrying until both succeed or ctx ends, and then
// marks ready as started: a new pod's first requests find connections open
// rather than each waiting for one to be dialled.
func startUp(ctx context.Context, db *pgxpool.Pool, ready *probes.Readiness, log *slog.Logger) {
	start := time.Now()
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		versions, err := schema.Migrate(ctx, db, log)
		if err == nil {
			err = warmPool(ctx, db)
		}
		if err == nil {
			log.Info("start-up: done", "migrations_applied", versions, "connections", db.Stat().TotalConns(),
				"took", time.Since(start).Round(time.Millisecond))
			ready.MarkStarted()
			return
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("start-up: failed, retrying", "error", probes.Redact(err.Error()), "retry_in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

// warmPool holds the pool's MinConns connections at once, then gives them
// back: afterwards the pool has opened at least that many. pgxpool opens
// them in the background too, but does not say when it is done.
func warmPool(ctx context.Context, db *pgxpool.Pool) error {
	n := db.Config().MinConns
	held := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()
	for range n {
		c, err := db.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("open %d connections: %w", n, err)
		}
		held = append(held, c)
	}
	return nil
}

// openPools returns a pool named "default" for DATABASE_URL and one per
// EXTRA_DATABASE_URLS entry. Pools connect lazily, so a database that is down
// does not stop the service from starting.
func openPools(cfg config, tracer pgx.QueryTracer) (map[string]*pgxpool.Pool, error) {
	pools := make(map[string]*pgxpool.Pool, 1+len(cfg.ExtraDatabaseURLs))
	open := func(name, variable, url string, minConns int32) error {
		pool, err := newPool(variable, url, minConns, cfg.DatabaseMaxConns, tracer)
		if err != nil {
			return fmt.Errorf("database %s: %w", name, err)
		}
		pools[name] = pool
		return nil
	}
	err := open("default", "DATABASE_URL", cfg.DatabaseURL, cfg.DatabaseMinConns)
	for _, name := range slices.Sorted(maps.Keys(cfg.ExtraDatabaseURLs)) {
		if err == nil {
			err = open(name, "EXTRA_DATABASE_URLS", cfg.ExtraDatabaseURLs[name], 0) // probed, not queried
		}
	}
	if err != nil {
		for _, p := range pools {
			p.Close()
		}
		return nil, err
	}
	return pools, nil
}

// newPool returns a pool for url, the value of the variable name, of
// minConns to maxConns connections, with a 5 s connect timeout unless url
// sets one, whose statements go through tracer (nil: none).
func newPool(name, url string, minConns, maxConns int32, tracer pgx.QueryTracer) (*pgxpool.Pool, error) {
	pc, err := parseDatabaseURL(name, url)
	if err != nil {
		return nil, err
	}
	pc.MinConns, pc.MaxConns = minConns, maxConns
	pc.ConnConfig.Tracer = tracer
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	return pgxpool.NewWithConfig(context.Background(), pc)
}
