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
func openPools(cfg config, tracer pgx.QueryTracer) (map[string]*pgxpool.Pool, error) {
	pools := make(map[string]*pgxpool.Pool, 1+len(cfg.ExtraDatabaseURLs))
	open := func(name, variable, url string) error {
		pool, err := newPool(variable, url, cfg.DatabaseMaxConns, tracer)
		if err != nil {
			return fmt.Errorf("database %s: %w", name, err)
		}
		pools[name] = pool
		return nil
	}
	err := open("default", "DATABASE_URL", cfg.DatabaseURL)
	for _, name := range slices.Sorted(maps.Keys(cfg.ExtraDatabaseURLs)) {
		if err == nil {
			err = open(name, "EXTRA_DATABASE_URLS", cfg.ExtraDatabaseURLs[name])
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

// newPool returns a pool for url, the value of the variable name, with a 5 s
// connect timeout unless url sets one, whose statements go through tracer
// (nil: none).
func newPool(name, url string, maxConns int32, tracer pgx.QueryTracer) (*pgxpool.Pool, error) {
	pc, err := parseDatabaseURL(name, url)
	if err != nil {
		return nil, err
	}
	pc.MaxConns = maxConns
	pc.ConnConfig.Tracer = tracer
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	return pgxpool.NewWithConfig(context.Background(), pc)
}
