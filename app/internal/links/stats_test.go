package links

import (
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"
)

// countingStats is a CacheStats that counts its calls.
type countingStats struct {
	mu           sync.Mutex
	hits, misses int
	errors       map[string]int
}

func (s *countingStats) Hit()  { s.mu.Lock(); s.hits++; s.mu.Unlock() }
func (s *countingStats) Miss() { s.mu.Lock(); s.misses++; s.mu.Unlock() }
func (s *countingStats) Error(op string) {
	s.mu.Lock()
	s.errors[op]++
	s.mu.Unlock()
}

// TestCacheStatsErrors: with memcached unreachable every memcached call is
// counted as an error of its operation, and none as a hit or a miss.
func TestCacheStatsErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()

	stats := &countingStats{errors: map[string]int{}}
	c := NewCache(newMemRepo(), []string{down}, time.Minute, 100*time.Millisecond,
		slog.New(slog.NewTextHandler(io.Discard, nil)), WithStats(stats))
	ctx := t.Context()
	if _, err := c.Create(ctx, "go", "https://go.dev"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Get(ctx, "go"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Delete(ctx, "go"); err != nil {
		t.Fatal(err)
	}
	writes := 0 // the write's cache calls: however the cache keeps itself coherent
	for op, n := range stats.errors {
		if op != "get" {
			writes += n
		}
	}
	if stats.hits != 0 || stats.misses != 0 || stats.errors["get"] != 3 || writes < 2 {
		t.Errorf("hits %d, misses %d, errors %v; want 0, 0, 3 gets and at least one per write", stats.hits, stats.misses, stats.errors)
	}
}
