package probes

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

func TestPostgresPools(t *testing.T) {
	down := errors.New("connection refused")
	var gotCtx context.Context
	pools := map[string]PingerFunc{
		"replica": func(context.Context) error { return down },
		"default": func(ctx context.Context) error { gotCtx = ctx; return nil },
	}
	checks := PostgresPools(pools)
	if len(checks) != 2 || checks[0].Name() != "postgres/default" || checks[1].Name() != "postgres/replica" {
		t.Fatalf("names: %v, %v", checks[0].Name(), checks[1].Name())
	}
	ctx := t.Context()
	if err := checks[0].Check(ctx); err != nil || gotCtx != ctx {
		t.Errorf("default: err %v, ctx passed through %v", err, gotCtx == ctx)
	}
	if err := checks[1].Check(ctx); !errors.Is(err, down) {
		t.Errorf("replica: err %v, want it to wrap %v", err, down)
	}
}

// TestPostgresSQLDB shows the *sql.DB adapter compiles against the interface.
func TestPostgresSQLDB(t *testing.T) {
	var db *sql.DB
	c := Postgres("sql", PingerFunc(db.PingContext))
	if c.Name() != "postgres/sql" {
		t.Fatal(c.Name())
	}
}

// TestPostgresConnRedials: the check dials lazily, dials again after a failed
// run, and is closed by Readiness.Close. The server here accepts and hangs up,
// so every run fails; a real server is in e2e's saturation test.
func TestPostgresConnRedials(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	pool, err := pgxpool.New(t.Context(), "postgres://u:secret@"+ln.Addr().String()+"/db?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	check := PostgresConn("default", pool)
	if check.Name() != "postgres/default" {
		t.Fatalf("name %q", check.Name())
	}
	r := mustReadiness(t, []Checker{check}, WithTTL(0))
	if n := accepted.Load(); n != 0 {
		t.Fatalf("%d connections before the first run, want 0", n)
	}
	// Each failed run leaves no connection behind, so the next one dials again.
	// (pgx may dial more than once per run; what matters is that every run does.)
	var before int64
	for i := range 3 {
		if err := r.Check(t.Context()); err == nil || strings.Contains(err.Error(), "secret") {
			t.Fatalf("run %d: err = %v, want a failure without the password", i, err)
		}
		waitFor(t, func() bool { return accepted.Load() > before })
		before = accepted.Load()
	}
	if got := pool.Stat().TotalConns(); got != 0 {
		t.Errorf("request pool has %d connections; the check must not use it", got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := check.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("after Close: %v, want closed", err)
	}
}
