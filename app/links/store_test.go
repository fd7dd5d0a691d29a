package links_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/gok8s/gok8s/app/links"
	"github.com/gok8s/gok8s/app/schema"
	"github.com/gok8s/gok8s/e2e"
	"github.com/jackc/pgx/v5/pgxpool"
)

// newStore returns a Store on a fresh, migrated PostgreSQL container.
func newStore(t *testing.T) (*links.Store, *pgxpool.Pool) {
	t.Helper()
	pg := e2e.StartPostgres(t, "")
	pool, err := pgxpool.New(t.Context(), pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := schema.Migrate(t.Context(), pool, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	return links.NewStore(pool), pool
}

func TestStore(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()

	l, err := s.Create(ctx, "go", "https://go.dev")
	if err != nil || l.Slug != "go" || l.URL != "https://go.dev" || l.CreatedAt.IsZero() || !l.UpdatedAt.Equal(l.CreatedAt) {
		t.Fatalf("Create = %+v, %v", l, err)
	}
	if _, err := s.Create(ctx, "go", "https://other"); !errors.Is(err, links.ErrConflict) {
		t.Fatalf("second Create: %v, want ErrConflict", err)
	}
	if got, err := s.Get(ctx, "go"); err != nil || got != l {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, l)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, links.ErrNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
	u, err := s.Update(ctx, "go", "https://go.dev/doc")
	if err != nil || u.URL != "https://go.dev/doc" || !u.UpdatedAt.After(l.UpdatedAt) && !u.UpdatedAt.Equal(l.UpdatedAt) {
		t.Fatalf("Update = %+v, %v", u, err)
	}
	if _, err := s.Update(ctx, "nope", "https://x"); !errors.Is(err, links.ErrNotFound) {
		t.Fatalf("Update missing: %v", err)
	}

	for _, slug := range []string{"c", "a", "b", "d"} {
		if _, err := s.Create(ctx, slug, "https://"+slug); err != nil {
			t.Fatal(err)
		}
	}
	pages := []struct {
		after string
		limit int
		want  []string
	}{
		{"", 2, []string{"a", "b"}},
		{"b", 2, []string{"c", "d"}},
		{"d", 10, []string{"go"}},
		{"go", 10, nil},
	}
	for _, p := range pages {
		got, err := s.List(ctx, p.after, p.limit)
		if err != nil {
			t.Fatal(err)
		}
		var slugs []string
		for _, l := range got {
			slugs = append(slugs, l.Slug)
		}
		if len(slugs) != len(p.want) || (len(slugs) > 0 && slugs[0] != p.want[0]) || (len(slugs) > 1 && slugs[len(slugs)-1] != p.want[len(p.want)-1]) {
			t.Errorf("List(%q, %d) = %v, want %v", p.after, p.limit, slugs, p.want)
		}
	}

	if err := s.Delete(ctx, "go"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "go"); !errors.Is(err, links.ErrNotFound) {
		t.Fatalf("second Delete: %v", err)
	}
}

// TestStoreHonoursContext: a cancelled context ends a query with its error.
func TestStoreHonoursContext(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Get(ctx, "go"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a cancelled context: %v", err)
	}
}
