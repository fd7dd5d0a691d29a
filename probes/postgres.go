package probes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// A Pinger checks a database connection. *pgxpool.Pool and *pgx.Conn are
// Pingers; for a *sql.DB use PingerFunc(db.PingContext).
type Pinger interface {
	Ping(ctx context.Context) error
}

// PingerFunc adapts a function to a [Pinger].
type PingerFunc func(ctx context.Context) error

// Ping calls f(ctx).
func (f PingerFunc) Ping(ctx context.Context) error { return f(ctx) }

// Postgres returns a [Checker] named "postgres/" + name that pings db. With a
// pool the ping borrows one of the pool's connections, so a probe opens no new
// connection while the pool has an idle one, and waits for one while requests
// hold them all: under load the probe can fail although the database answers.
// [PostgresConn] gives the check a connection of its own instead.
func Postgres(name string, db Pinger) Checker {
	return &postgresCheck{name: "postgres/" + name, db: db}
}

// PostgresPools returns one [Postgres] check per entry of pools, sorted by name.
func PostgresPools[P Pinger](pools map[string]P) []Checker {
	return byName(pools, func(name string, db P) Checker { return Postgres(name, db) })
}

// byName returns check(name, pool) for each entry of pools, sorted by name.
func byName[P any](pools map[string]P, check func(name string, pool P) Checker) []Checker {
	checks := make([]Checker, 0, len(pools))
	for _, name := range slices.Sorted(maps.Keys(pools)) {
		checks = append(checks, check(name, pools[name]))
	}
	return checks
}

type postgresCheck struct {
	name string
	db   Pinger
}

var _ Checker = (*postgresCheck)(nil)

func (c *postgresCheck) Name() string { return c.name }

func (c *postgresCheck) Check(ctx context.Context) error {
	if err := c.db.Ping(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// PostgresConn returns a [Checker] named "postgres/" + name that pings the
// database of pool over a connection of its own, so that request load never
// queues a probe: a pool whose every connection is busy answers "is the pool
// idle", not "can this pod reach its database", and a probe that waits for it
// fails at peak load on every replica at once.
//
// The check keeps a one-connection pool built from pool's config (the same
// host, credentials, TLS and hooks, application_name suffixed "readiness"). It
// dials on its first run, not before, reuses the connection while it answers,
// and dials a new one on the run after a failure: a probe opens no connection
// while its own is healthy. The check implements [io.Closer]; [Readiness.Close]
// closes it. Like every check, it runs once per TTL at most.
//
// Use [Postgres] with the pool itself for the old behaviour, which borrows one
// of the pool's connections.
func PostgresConn(name string, pool *pgxpool.Pool) Checker {
	cfg := pool.Config()
	cfg.MaxConns, cfg.MinConns, cfg.MinIdleConns = 1, 0, 0
	// The check pings itself; a second ping at acquire would double the round trips.
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	app := cfg.ConnConfig.RuntimeParams["application_name"]
	cfg.ConnConfig.RuntimeParams["application_name"] = strings.TrimSpace(app + " readiness")
	return &postgresConn{name: "postgres/" + name, cfg: cfg}
}

// PostgresConns returns one [PostgresConn] check per entry of pools, sorted by name.
func PostgresConns(pools map[string]*pgxpool.Pool) []Checker {
	return byName(pools, PostgresConn)
}

type postgresConn struct {
	name string
	cfg  *pgxpool.Config

	mu     sync.Mutex
	pool   *pgxpool.Pool // nil until the first run, and after Close
	closed bool
}

var (
	_ Checker   = (*postgresConn)(nil)
	_ io.Closer = (*postgresConn)(nil)
)

func (c *postgresConn) Name() string { return c.name }

func (c *postgresConn) Check(ctx context.Context) error {
	pool, err := c.open()
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		// Take the connection out of the pool and close it, so that the next
		// run dials afresh instead of trusting a connection that failed.
		bad := conn.Hijack()
		go func() {
			closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = bad.Close(closeCtx)
		}()
		return fmt.Errorf("ping: %w", err)
	}
	conn.Release()
	return nil
}

// open returns the check's pool, making it on first use. Making it dials nothing.
func (c *postgresConn) open() (*pgxpool.Pool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("check closed")
	}
	if c.pool == nil {
		pool, err := pgxpool.NewWithConfig(context.Background(), c.cfg)
		if err != nil {
			return nil, fmt.Errorf("pool for the check: %w", err)
		}
		c.pool = pool
	}
	return c.pool, nil
}

// Close closes the check's connection. Runs after it fail.
func (c *postgresConn) Close() error {
	c.mu.Lock()
	pool := c.pool
	c.pool, c.closed = nil, true
	c.mu.Unlock()
	if pool != nil {
		pool.Close()
	}
	return nil
}
