package links

import (
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// countingStats is a CacheStats that counts its calls.
type countingStats struct {
	mu           sync.Mutex
	hits, misses int
	errors       map[string]int
	skipped      map[string]int      // by server, breaker skips only
	tombstones   map[string]int      // by server: skips of a key waiting for a tombstone
	states       map[string][]string // by server: the breaker's states, in order
	onBreaker    func(server, state string)
}

func newCountingStats() *countingStats {
	return &countingStats{errors: map[string]int{}, skipped: map[string]int{}, tombstones: map[string]int{}, states: map[string][]string{}}
}

func (s *countingStats) Skipped(server, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch reason {
	case SkipBreaker:
		s.skipped[server]++
	case SkipTombstone:
		s.tombstones[server]++
	default:
		panic("links: Skipped with reason " + reason)
	}
}
func (s *countingStats) Breaker(server, state string) {
	s.mu.Lock()
	s.states[server] = append(s.states[server], state)
	f := s.onBreaker
	s.mu.Unlock()
	if f != nil {
		f(server, state)
	}
}

// tombstoneSkips returns the calls to server skipped for a waiting tombstone.
func (s *countingStats) tombstoneSkips(server string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tombstones[server]
}

// snapshot returns copies of the skipped calls and the breakers' states.
func (s *countingStats) snapshot() (map[string]int, map[string][]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	states := map[string][]string{}
	for k, v := range s.states {
		states[k] = slices.Clone(v)
	}
	return maps.Clone(s.skipped), states
}

func (s *countingStats) Hit()  { s.mu.Lock(); s.hits++; s.mu.Unlock() }
func (s *countingStats) Miss() { s.mu.Lock(); s.misses++; s.mu.Unlock() }
func (s *countingStats) Error(op string) {
	s.mu.Lock()
	s.errors[op]++
	s.mu.Unlock()
}

// counts returns the hits, the misses and a copy of the errors so far: a
// repair goroutine may still be counting.
func (s *countingStats) counts() (hits, misses int, errors map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits, s.misses, maps.Clone(s.errors)
}

// TestCacheStatsErrors: with memcached unreachable every memcached call is
// counted as an error of its operation, or, once the server's breaker has
// opened, as a call skipped, and none as a hit or a miss.
func TestCacheStatsErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()

	stats := newCountingStats()
	c := NewCache(newMemRepo(), []string{down}, time.Minute, 100*time.Millisecond,
		slog.New(slog.NewTextHandler(io.Discard, nil)), WithStats(stats))
	t.Cleanup(func() { _ = c.Close() })
	c.every = time.Hour // no background attempt during the test
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
	hits, misses, errs := stats.counts()
	writes := 0 // the write's cache calls: however the cache keeps itself coherent
	for op, n := range errs {
		if op != "get" {
			writes += n
		}
	}
	skipped, states := stats.snapshot()
	// Create and the first two reads fail: the breaker opens (tripAfter), and
	// the third read and the delete skip memcached.
	if hits != 0 || misses != 0 || errs["get"] != tripAfter-1 || writes < 1 || skipped[down] != 2 {
		t.Errorf("hits %d, misses %d, errors %v, skipped %v; want 0, 0, %d gets and at least one set, 2 skipped",
			hits, misses, errs, skipped, tripAfter-1)
	}
	if want := []string{"closed", "open"}; !slices.Equal(states[down], want) {
		t.Errorf("breaker states %v, want %v", states[down], want)
	}
}
