package probes

import (
	"context"
	"fmt"
	"maps"
	"slices"
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
// connection while the pool has an idle one.
func Postgres(name string, db Pinger) Checker {
	return &postgresCheck{name: "postgres/" + name, db: db}
}

// PostgresPools returns one [Postgres] check per entry of pools, sorted by name.
func PostgresPools[P Pinger](pools map[string]P) []Checker {
	checks := make([]Checker, 0, len(pools))
	for _, name := range slices.Sorted(maps.Keys(pools)) {
		checks = append(checks, Postgres(name, pools[name]))
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
