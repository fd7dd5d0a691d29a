// Package schema holds the service's database migrations, embedded in the
// binary, and applies them.
//
// Migrations are goose SQL files in migrations/, named NNNNN_what.sql. [Migrate]
// applies them under a PostgreSQL session-level advisory lock, so replicas that
// start together migrate once: one applies them while the others wait for the
// lock, then find nothing to do.
package schema

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var embedded embed.FS

// Migrations returns the embedded migration files.
func Migrations() fs.FS {
	sub, err := fs.Sub(embedded, "migrations")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}

// lockWait bounds the wait for another replica's migrations: one try a second.
const lockWait = 5 * time.Minute

// Migrate applies the pending migrations to db and returns the versions it
// applied, none if another replica got there first. The lock wait ends with ctx.
func Migrate(ctx context.Context, db *pgxpool.Pool, log *slog.Logger) ([]int64, error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, uint64(lockWait/time.Second)))
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(db)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, Migrations(),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(log),
	)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("schema: migrate: %w", err)
	}
	versions := make([]int64, 0, len(results))
	for _, r := range results {
		versions = append(versions, r.Source.Version)
	}
	return versions, nil
}
