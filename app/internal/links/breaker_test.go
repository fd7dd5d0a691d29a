package links

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// newBreakerCache returns a Cache on a fake memcached with the servers
// addrs, whose goroutines attempt servers every few milliseconds, and its
// stats.
func newBreakerCache(t *testing.T, addrs ...string) (*Cache, *memRepo, *fakeMemcache, *countingStats) {
	t.Helper()
	repo, mc, stats := newMemRepo(), newFakeMemcache(), newCountingStats()
	c := withOptions(newCache(repo, addrs, func(string) client { return mc }, time.Minute, 100*time.Millisecond, slog.New(slog.DiscardHandler)), []CacheOption{WithStats(stats)})
	c.every = 5 * time.Millisecond
	t.Cleanup(func() { _ = c.Close() })
	return c, repo, mc, stats
}

// waitState polls until the breaker of addr is in state want.
func waitState(t *testing.T, c *Cache, addr string, want breakerState) {
	t.Helper()
	i := slices.IndexFunc(c.servers, func(s *server) bool { return s.addr == addr })
	for deadline := time.Now().Add(10 * time.Second); c.servers[i].current() != want; {
		if time.Now().After(deadline) {
			t.Fatalf("breaker of %s is %s after 10 s, want %s", addr, c.servers[i].current(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// getURL reads slug through c and fails the test unless it has url.
func getURL(t *testing.T, c *Cache, slug, url string) {
	t.Helper()
	if l, err := c.Get(t.Context(), slug); err != nil || l.URL != url {
		t.Fatalf("Get(%s) = %+v, %v; want %s", slug, l, err, url)
	}
}

// TestBreakerOpensAndCloses: failed calls open the breaker, after which reads
// make no memcached call and are counted as skipped; once memcached answers,
// background attempts close it and reads use memcached again.
func TestBreakerOpensAndCloses(t *testing.T) {
	for _, outage := range []struct {
		name string
		err  error
	}{{"hung", errFakeTimeout}, {"not running", errFakeRefused}, {"broken", errBroken}} {
		t.Run(outage.name, func(t *testing.T) {
			c, repo, mc, stats := newBreakerCache(t, fakeServer)
			if _, err := repo.Create(t.Context(), "go", "https://go.dev"); err != nil {
				t.Fatal(err)
			}
			getURL(t, c, "go", "https://go.dev") // fills
			getURL(t, c, "go", "https://go.dev") // hits

			mc.setFail(func(string) error { return outage.err })
			for range tripAfter {
				getURL(t, c, "go", "https://go.dev")
			}
			if s := c.servers[0].current(); s != breakerOpen {
				t.Fatalf("after %d failed reads the breaker is %s, want open", tripAfter, s)
			}
			calls := mc.calls("", key("go"))
			for range 10 {
				getURL(t, c, "go", "https://go.dev")
			}
			if n := mc.calls("", key("go")) - calls; n != 0 {
				t.Errorf("%d memcached calls with the breaker open, want 0", n)
			}
			if skipped, _ := stats.snapshot(); skipped[fakeServer] != 10 {
				t.Errorf("%d calls counted as skipped, want 10", skipped[fakeServer])
			}

			mc.setFail(nil)
			waitState(t, c, fakeServer, breakerClosed)
			calls = mc.calls("", key("go"))
			getURL(t, c, "go", "https://go.dev")
			if n := mc.calls("", key("go")) - calls; n != 1 {
				t.Errorf("%d memcached calls after the breaker closed, want 1 (a hit)", n)
			}
			if _, states := stats.snapshot(); !slices.Equal(states[fakeServer], []string{"closed", "open", "half_open", "closed"}) {
				t.Errorf("breaker states %v", states[fakeServer])
			}
		})
	}
}

// TestBreakerAnswersAreNoFailures: misses, lost adds and cas conflicts are
// memcached's answers; fewer than tripAfter failures in a row never open it.
func TestBreakerAnswersAreNoFailures(t *testing.T) {
	c, repo, mc, _ := newBreakerCache(t, fakeServer)
	for i := range 50 {
		slug := fmt.Sprint("s", i)
		if _, err := repo.Create(t.Context(), slug, "https://go.dev"); err != nil {
			t.Fatal(err)
		}
		getURL(t, c, slug, "https://go.dev") // miss, add, fill
	}
	var calls atomic.Int64
	mc.setFail(func(string) error {
		if calls.Add(1)%tripAfter == 0 {
			return nil
		}
		return errFakeTimeout
	})
	for i := range 50 {
		getURL(t, c, fmt.Sprint("s", i), "https://go.dev")
	}
	if s := c.servers[0].current(); s != breakerClosed {
		t.Errorf("breaker %s after failures never %d in a row, want closed", s, tripAfter)
	}
}

// TestServerDown: a failed readiness check opens the server's breaker at
// once; another address changes nothing.
func TestServerDown(t *testing.T) {
	c, repo, mc, _ := newBreakerCache(t, "a:11211", "b:11211")
	if _, err := repo.Create(t.Context(), "go", "https://go.dev"); err != nil {
		t.Fatal(err)
	}
	c.ServerDown("c:11211")
	for _, s := range c.servers {
		if s.current() != breakerClosed {
			t.Fatalf("ServerDown of an unknown server changed %s's breaker to %s", s.addr, s.current())
		}
	}
	owner := c.server(key("go")).addr
	c.every = time.Hour // no attempt: the breaker stays open
	c.ServerDown(owner)
	calls := mc.calls("", key("go"))
	getURL(t, c, "go", "https://go.dev")
	if n := mc.calls("", key("go")) - calls; n != 0 {
		t.Errorf("%d memcached calls after ServerDown(%s), want 0", n, owner)
	}
}

// TestBreakerOneServerDown: with one of two servers down, the keys of the
// other still use memcached.
func TestBreakerOneServerDown(t *testing.T) {
	c, repo, mc, _ := newBreakerCache(t, "a:11211", "b:11211")
	var onA, onB string
	for i := 0; onA == "" || onB == ""; i++ {
		slug := fmt.Sprint("s", i)
		if c.server(key(slug)).addr == "a:11211" {
			onA = slug
		} else {
			onB = slug
		}
	}
	for _, slug := range []string{onA, onB} {
		if _, err := repo.Create(t.Context(), slug, "https://"+slug+".example"); err != nil {
			t.Fatal(err)
		}
	}
	mc.setFailKey(func(k string) error {
		if c.list.pick(k) == 0 {
			return errFakeTimeout
		}
		return nil
	})
	for range tripAfter {
		getURL(t, c, onA, "https://"+onA+".example")
	}
	waitState(t, c, "a:11211", breakerOpen)
	getURL(t, c, onB, "https://"+onB+".example") // fills
	gets := c.servers[1]
	calls := mc.calls("", key(onB))
	getURL(t, c, onB, "https://"+onB+".example")
	if n := mc.calls("", key(onB)) - calls; n != 1 || gets.current() != breakerClosed {
		t.Errorf("server b: %d calls, breaker %s; want 1 (a hit), closed", n, gets.current())
	}
}

// TestBreakerRepairsBeforeUse: a key whose tombstone memcached did not take is
// read from the database until the tombstone is set, and a server whose
// breaker opened gets every tombstone it is owed before its breaker closes,
// so that no replica reads the older copy memcached still holds.
func TestBreakerRepairsBeforeUse(t *testing.T) {
	c, repo, mc, stats := newBreakerCache(t, fakeServer)
	ctx := t.Context()
	if _, err := repo.Create(ctx, "go", "https://old.example"); err != nil {
		t.Fatal(err)
	}
	getURL(t, c, "go", "https://old.example")
	if v := mc.value(key("go")); !strings.Contains(string(v), "old.example") {
		t.Fatalf("the test did not get the older value cached: %q", v)
	}
	var closedWith atomic.Value // what memcached held for the key when the breaker closed
	stats.onBreaker = func(_, state string) {
		if state == "closed" {
			closedWith.Store(string(mc.value(key("go"))))
		}
	}

	// memcached takes no set: the write's tombstones fail, the key waits, and
	// the failed retries open the breaker.
	mc.setFail(func(op string) error {
		if op == "set" {
			return errFakeTimeout
		}
		return nil
	})
	if _, err := c.Update(ctx, "go", "https://new.example"); err != nil {
		t.Fatal(err)
	}
	gets := mc.calls("get", key("go"))
	for range 5 {
		getURL(t, c, "go", "https://new.example") // memcached still holds the older copy
	}
	if n := mc.calls("get", key("go")) - gets; n != 0 {
		t.Errorf("%d reads reached memcached while the key waited for its tombstone, want 0", n)
	}
	if n := stats.tombstoneSkips(fakeServer); n != 5 {
		t.Errorf("%d reads counted as skipped for a tombstone, want 5 (CacheErrorsHigh tells them from a breaker's)", n)
	}
	waitState(t, c, fakeServer, breakerOpen)
	if !c.servers[0].waits(key("go")) {
		t.Fatal("the key does not wait for its tombstone")
	}

	mc.setFail(nil)
	waitState(t, c, fakeServer, breakerClosed)
	if v, _ := closedWith.Load().(string); strings.Contains(v, "old.example") || v == "" {
		t.Errorf("the breaker closed while memcached held %q for the key, want the tombstone", v)
	}
	if c.servers[0].waits(key("go")) {
		t.Error("the breaker closed with the tombstone still owed")
	}
	getURL(t, c, "go", "https://new.example")
}

// TestBreakerHalfOpenFails: an attempt that fails after one that succeeded
// opens the breaker again, and the count of successes starts over.
func TestBreakerHalfOpenFails(t *testing.T) {
	c, _, mc, stats := newBreakerCache(t, fakeServer)
	var probes atomic.Int64
	mc.setFail(func(op string) error {
		if op == "version" && probes.Add(1) == 2 {
			return errFakeTimeout
		}
		return nil
	})
	c.ServerDown(fakeServer)
	waitState(t, c, fakeServer, breakerClosed)
	_, states := stats.snapshot()
	if want := []string{"closed", "open", "half_open", "open", "half_open", "closed"}; !slices.Equal(states[fakeServer], want) {
		t.Errorf("breaker states %v, want %v", states[fakeServer], want)
	}
	if n := probes.Load(); n != 1+1+closeAfter {
		t.Errorf("%d attempts, want %d", n, 1+1+closeAfter)
	}
}

// TestBreakerConcurrent: readers and writers while memcached fails and
// answers in turn: every call succeeds, and once memcached answers every read
// sees the last write (run with -race).
func TestBreakerConcurrent(t *testing.T) {
	c, repo, mc, _ := newBreakerCache(t, "a:11211", "b:11211")
	ctx := t.Context()
	const slugs = 8
	for i := range slugs {
		if _, err := repo.Create(ctx, fmt.Sprint("s", i), "https://example.com/0"); err != nil {
			t.Fatal(err)
		}
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		last    = map[string]string{}
		failing atomic.Bool
		stop    = make(chan struct{})
	)
	mc.setFail(func(string) error {
		if failing.Load() {
			return errFakeTimeout
		}
		return nil
	})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				failing.Store(false)
				return
			case <-time.After(3 * time.Millisecond):
				failing.Store(i%3 == 0)
			}
		}
	})
	var workers sync.WaitGroup
	for w := range 8 {
		workers.Go(func() {
			for n := range 200 {
				slug := fmt.Sprint("s", (w+n)%slugs)
				if w%2 == 0 {
					mu.Lock() // writes to one slug in order, as in the coherence test
					url := fmt.Sprintf("https://example.com/%d-%d", w, n)
					if _, err := c.Update(ctx, slug, url); err != nil {
						t.Error(err)
					}
					last[slug] = url
					mu.Unlock()
				} else if _, err := c.Get(ctx, slug); err != nil && !errors.Is(err, ErrNotFound) {
					t.Error(err)
				}
			}
		})
	}
	workers.Wait()
	close(stop)
	wg.Wait()
	for _, s := range c.servers {
		waitState(t, c, s.addr, breakerClosed)
	}
	mc.advance(afterTombstone)
	for slug, url := range last {
		for range 3 { // fill, then hits
			getURL(t, c, slug, url)
		}
	}
}

// BenchmarkBreakerClosed: the work the breaker adds to a cache hit while it is
// closed: find the key's server (its CRC-32 with several servers), check that
// the key owes no tombstone and the breaker lets the call through, and note
// the answer. For scale, "ServerList" is what gomemcache's own selector,
// which the Cache used before, spends on each memcached call to pick the
// server with several.
func BenchmarkBreakerClosed(b *testing.B) {
	k := key("a-typical-slug")
	for _, servers := range [][]string{{"a:11211"}, {"a:11211", "b:11211"}} {
		b.Run(fmt.Sprintf("servers=%d", len(servers)), func(b *testing.B) {
			c := newCache(newMemRepo(), servers, func(string) client { return newFakeMemcache() }, time.Minute, time.Second, slog.New(slog.DiscardHandler))
			defer c.Close()
			b.ReportAllocs()
			for b.Loop() {
				s := c.server(k)
				if s.waits(k) || !s.closed() {
					b.Fatal("skipped")
				}
				c.answered(s)
			}
		})
	}
	b.Run("ServerList", func(b *testing.B) {
		var sl memcache.ServerList
		if err := sl.SetServers("127.0.0.1:11211", "127.0.0.2:11211"); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := sl.PickServer(k); err != nil {
				b.Fatal(err)
			}
		}
	})
}
