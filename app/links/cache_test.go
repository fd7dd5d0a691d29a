package links

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gok8s/gok8s/e2e"
)

func (m *memRepo) getCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets
}

func TestCacheReadThrough(t *testing.T) {
	t.Parallel()
	mc := e2e.StartMemcached(t, "")
	repo := newMemRepo()
	c := NewCache(repo, []string{mc.Addr}, time.Minute, time.Second, slog.New(slog.DiscardHandler))
	ctx := t.Context()

	if _, err := c.Get(ctx, "go"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before create: %v", err)
	}
	if _, err := c.Create(ctx, "go", "https://go.dev"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name     string
		do       func() error
		wantURL  string
		wantGets int // reads that reached the repository so far
	}{
		{"miss reads through", nil, "https://go.dev", 2},
		{"hit", nil, "https://go.dev", 2},
		{"hit again", nil, "https://go.dev", 2},
		{"update invalidates", func() error { _, err := c.Update(ctx, "go", "https://go.dev/doc"); return err }, "https://go.dev/doc", 3},
		{"hit after update", nil, "https://go.dev/doc", 3},
	}
	for _, s := range steps {
		if s.do != nil {
			if err := s.do(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		l, err := c.Get(ctx, "go")
		if err != nil || l.URL != s.wantURL {
			t.Fatalf("%s: Get = %+v, %v; want URL %s", s.name, l, err, s.wantURL)
		}
		if n := repo.getCount(); n != s.wantGets {
			t.Fatalf("%s: %d reads reached the repository, want %d", s.name, n, s.wantGets)
		}
	}
	if err := c.Delete(ctx, "go"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "go"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after delete: %v, want ErrNotFound (the cached copy must be gone)", err)
	}
}

// TestCacheExpires: an entry is read from the repository again after the TTL.
func TestCacheExpires(t *testing.T) {
	t.Parallel()
	mc := e2e.StartMemcached(t, "")
	repo := newMemRepo()
	c := NewCache(repo, []string{mc.Addr}, time.Second, time.Second, slog.New(slog.DiscardHandler))
	if _, err := c.Create(t.Context(), "go", "https://go.dev"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(t.Context(), "go"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := e2e.Poll(t.Context(), 5*time.Second, func(ctx context.Context) error {
		if _, err := c.Get(ctx, "go"); err != nil {
			return err
		}
		if repo.getCount() < 2 {
			return errors.New("still cached")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("entry expired after %s (TTL 1s)", time.Since(start).Round(10*time.Millisecond))
}

// TestCacheDegrades: with memcached unreachable every call still succeeds from
// the repository, and the outage is logged once at WARN, not per request.
func TestCacheDegrades(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()

	var logs e2e.SyncBuffer
	repo := newMemRepo()
	c := NewCache(repo, []string{down}, time.Minute, 100*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := t.Context()
	if _, err := c.Create(ctx, "go", "https://go.dev"); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if l, err := c.Get(ctx, "go"); err != nil || l.URL != "https://go.dev" {
			t.Fatalf("Get = %+v, %v", l, err)
		}
	}
	if _, err := c.Update(ctx, "go", "https://go.dev/x"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "go"); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d WARN lines, want 1:\n%s", n, logs.String())
	}
}

func TestExpiration(t *testing.T) {
	for ttl, want := range map[time.Duration]int32{
		0: 1, 500 * time.Millisecond: 1, time.Second: 1, 90 * time.Second: 90, 1500 * time.Millisecond: 1,
		30 * 24 * time.Hour: 2592000, 31 * 24 * time.Hour: 2592000, 1 << 62: 2592000,
	} {
		if got := expiration(ttl); got != want {
			t.Errorf("expiration(%s) = %d, want %d", ttl, got, want)
		}
	}
}
