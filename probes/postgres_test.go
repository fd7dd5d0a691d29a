package probes

import (
	"context"
	"database/sql"
	"errors"
	"testing"
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
