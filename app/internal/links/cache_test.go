package links

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// lockedBuffer is a bytes.Buffer a logger may write to while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
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

	var logs lockedBuffer
	repo := newMemRepo()
	c := NewCache(repo, []string{down}, time.Minute, 100*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { _ = c.Close() })
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

// newFakeCache returns a Cache on a fake memcached with a 1-minute TTL.
func newFakeCache(t *testing.T, timeout time.Duration) (*Cache, *memRepo, *fakeMemcache, *lockedBuffer) {
	t.Helper()
	var logs lockedBuffer
	repo, mc := newMemRepo(), newFakeMemcache()
	c := newCache(repo, []string{fakeServer}, func(string) client { return mc }, time.Minute, timeout, slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { _ = c.Close() })
	return c, repo, mc, &logs
}

// afterTombstone moves the fake's clock past a write's tombstone.
const afterTombstone = (tombstoneTTL + 1) * time.Second

func TestCacheReadThrough(t *testing.T) {
	c, repo, mc, _ := newFakeCache(t, time.Second)
	ctx := t.Context()
	steps := []struct {
		name     string
		do       func() error
		wantURL  string // "" for ErrNotFound
		wantGets int    // reads that reached the repository so far
	}{
		{"miss reads through", nil, "", 1},
		{"absence is cached", nil, "", 1},
		{"create leaves a tombstone", func() error { _, err := c.Create(ctx, "go", "https://go.dev"); return err }, "https://go.dev", 2},
		{"no fill under the tombstone", nil, "https://go.dev", 3},
		{"fill after the tombstone", func() error { mc.advance(afterTombstone); return nil }, "https://go.dev", 4},
		{"hit", nil, "https://go.dev", 4},
		{"hit again", nil, "https://go.dev", 4},
		{"update invalidates", func() error { _, err := c.Update(ctx, "go", "https://go.dev/doc"); return err }, "https://go.dev/doc", 5},
		{"refill", func() error { mc.advance(afterTombstone); return nil }, "https://go.dev/doc", 6},
		{"hit after update", nil, "https://go.dev/doc", 6},
		{"delete invalidates", func() error { return c.Delete(ctx, "go") }, "", 7},
		{"expires after the TTL", func() error { mc.advance(2 * time.Minute); return nil }, "", 8},
		{"absence cached again", nil, "", 8},
	}
	for _, s := range steps {
		if s.do != nil {
			if err := s.do(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		l, err := c.Get(ctx, "go")
		if s.wantURL == "" && !errors.Is(err, ErrNotFound) || s.wantURL != "" && (err != nil || l.URL != s.wantURL) {
			t.Fatalf("%s: Get = %+v, %v; want URL %q", s.name, l, err, s.wantURL)
		}
		if n := repo.getCount(); n != s.wantGets {
			t.Fatalf("%s: %d reads reached the repository, want %d", s.name, n, s.wantGets)
		}
	}
}

// TestCacheFillLosesToWrite: a write that lands anywhere in a read's fill
// (before its lease, during its database read, between its get and its cas)
// leaves no older value behind, under the tombstone or after it.
func TestCacheFillLosesToWrite(t *testing.T) {
	tests := []struct {
		name string
		op   string // the fill's call the write lands before
		nth  int    // the how-manieth such call
	}{
		{"before the lease", "add", 1},
		{"during the database read", "get", 2},
		{"between get and cas", "cas", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, repo, mc, _ := newFakeCache(t, time.Second)
			ctx := t.Context()
			if _, err := repo.Create(ctx, "go", "https://old.example"); err != nil {
				t.Fatal(err)
			}
			seen := 0
			mc.before = func(op, _ string) {
				if op != tt.op {
					return
				}
				if seen++; seen == tt.nth {
					if _, err := c.Update(ctx, "go", "https://new.example"); err != nil {
						t.Errorf("Update: %v", err)
					}
				}
			}
			if _, err := c.Get(ctx, "go"); err != nil { // races the write: either answer will do
				t.Fatal(err)
			}
			mc.before = nil
			if seen < tt.nth {
				t.Fatalf("the fill made %d %s calls; the write never landed", seen, tt.op)
			}
			for _, when := range []time.Duration{0, afterTombstone, afterTombstone} {
				mc.advance(when)
				if v := mc.value(key("go")); strings.Contains(string(v), "old.example") {
					t.Fatalf("memcached holds the older value %q", v)
				}
				if l, err := c.Get(ctx, "go"); err != nil || l.URL != "https://new.example" {
					t.Fatalf("Get after the write returned = %+v, %v", l, err)
				}
			}
		})
	}
}

// TestCacheWriteOutage: a write goes on whatever memcached does: when it
// hangs, the older copy it holds is gone at the first retry after memcached
// answers again (retryEvery later at most); when it is not running, nothing
// needs repairing; and when memcached stops answering after the first
// tombstone, an older value filled meanwhile is gone at that first retry too.
// The test sends the retry loop its ticks, so that the bound is one tick,
// whatever the machine's load does to a wall clock.
func TestCacheWriteOutage(t *testing.T) {
	// goneWithin makes memcached answer again, sends one tick, and fails
	// unless that retry took the tombstone.
	goneWithin := func(t *testing.T, c *Cache, ticks chan time.Time, mc *fakeMemcache) {
		t.Helper()
		if v := mc.value(key("go")); !strings.Contains(string(v), "old.example") {
			t.Fatalf("before memcached answers again it does not hold the older value: %q", v)
		}
		tick := func() {
			t.Helper()
			select {
			case ticks <- time.Now():
			case <-time.After(5 * time.Second):
				t.Fatal("the retry loop is not running")
			}
		}
		calls := mc.opCount()
		tick() // a retry while memcached still hangs: it fails
		if err := pollFor(5*time.Second, func() bool { return mc.opCount() > calls }); err != nil {
			t.Fatalf("no retry reached memcached: %v", err)
		}
		if v := mc.value(key("go")); !strings.Contains(string(v), "old.example") {
			t.Fatalf("a retry took the tombstone while memcached hung: %q", v)
		}
		mc.setFail(nil) // memcached answers again
		tick()
		// The loop got the tick; wait for its round to end (a guard, not a bound).
		err := pollFor(5*time.Second, func() bool { return !strings.Contains(string(mc.value(key("go"))), "old.example") })
		if err != nil {
			t.Fatalf("the older value is still cached after the first retry once memcached answered: %v", err)
		}
	}
	// withOld returns a Cache whose retry loop takes its ticks from the
	// returned channel, over a database holding "go" at the older URL.
	withOld := func(t *testing.T) (*Cache, *memRepo, *fakeMemcache, chan time.Time) {
		t.Helper()
		c, repo, mc, _ := newFakeCache(t, 100*time.Millisecond)
		ticks := make(chan time.Time)
		c.testTicks = ticks
		if _, err := repo.Create(t.Context(), "go", "https://old.example"); err != nil {
			t.Fatal(err)
		}
		return c, repo, mc, ticks
	}
	t.Run("hung", func(t *testing.T) {
		c, repo, mc, ticks := withOld(t)
		ctx := t.Context()
		if l, err := c.Get(ctx, "go"); err != nil || l.URL != "https://old.example" {
			t.Fatalf("Get = %+v, %v", l, err)
		}
		if v := mc.value(key("go")); !strings.Contains(string(v), "old.example") {
			t.Fatalf("the test did not get the older value cached: %q", v)
		}
		mc.setFail(func(string) error { return errFakeTimeout })
		if _, err := c.Update(ctx, "go", "https://new.example"); err != nil {
			t.Fatalf("Update with memcached hung = %v, want it applied", err)
		}
		if l, _ := repo.Get(ctx, "go"); l.URL != "https://new.example" {
			t.Errorf("the write was not applied: %+v", l)
		}
		if l, err := c.Get(ctx, "go"); err != nil || l.URL != "https://new.example" {
			t.Errorf("Get with memcached hung = %+v, %v; want the database's value", l, err)
		}
		goneWithin(t, c, ticks, mc)
		if l, err := c.Get(ctx, "go"); err != nil || l.URL != "https://new.example" {
			t.Errorf("Get = %+v, %v", l, err)
		}
	})
	t.Run("not running", func(t *testing.T) {
		c, repo, mc, _ := newFakeCache(t, 100*time.Millisecond)
		mc.setFail(func(string) error { return errFakeRefused })
		if _, err := c.Create(t.Context(), "go", "https://new.example"); err != nil {
			t.Fatalf("Create = %v", err)
		}
		if l, _ := repo.Get(t.Context(), "go"); l.URL != "https://new.example" {
			t.Errorf("the write was not applied: %+v", l)
		}
	})
	t.Run("stopped, on an idle connection", func(t *testing.T) {
		c, repo, mc, _ := newFakeCache(t, 100*time.Millisecond)
		calls := 0
		mc.setFail(func(string) error {
			if calls++; calls == 1 {
				return io.EOF // the server closed the pooled connection
			}
			return errFakeRefused
		})
		if _, err := c.Create(t.Context(), "go", "https://new.example"); err != nil {
			t.Fatalf("Create = %v", err)
		}
		if l, _ := repo.Get(t.Context(), "go"); l.URL != "https://new.example" {
			t.Errorf("the write was not applied: %+v", l)
		}
	})
	t.Run("stops answering during the commit", func(t *testing.T) {
		c, repo, mc, ticks := withOld(t)
		ctx := t.Context()
		// A commit slower than the tombstone: a reader fills the older value
		// meanwhile, and then memcached stops answering.
		repo.beforeWrite = func() {
			mc.advance(afterTombstone)
			if l, err := c.Get(ctx, "go"); err != nil || l.URL != "https://old.example" {
				t.Errorf("Get during the commit = %+v, %v", l, err)
			}
			mc.setFail(func(string) error { return errFakeTimeout })
		}
		if _, err := c.Update(ctx, "go", "https://new.example"); err != nil {
			t.Fatalf("Update = %v", err)
		}
		if v := mc.value(key("go")); !strings.Contains(string(v), "old.example") {
			t.Fatalf("the test did not get the older value cached: %q", v)
		}
		goneWithin(t, c, ticks, mc)
		if l, err := c.Get(ctx, "go"); err != nil || l.URL != "https://new.example" {
			t.Errorf("Get = %+v, %v", l, err)
		}
	})
}

// TestCacheMissTimeBudget: with memcached hung at any step of a miss, a read
// spends at most one timeout in memcached in total: it returns without
// waiting for the hung call, and makes no call after it; with memcached slow
// at every step, the calls stop once their time adds up to the timeout. Both
// are counted, not timed, so that a loaded machine cannot break them: a slow
// call takes at least 0.4 timeouts, so at most three start within one
// timeout (a budget per call would make four); load only makes fewer.
func TestCacheMissTimeBudget(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, hangFrom := range []int{0, 1, 2, 3, 4} { // the call memcached hangs from: get, add, get, cas; 0: none, all slow
		t.Run(fmt.Sprint("call ", hangFrom), func(t *testing.T) {
			c, repo, mc, logs := newFakeCache(t, timeout)
			if _, err := repo.Create(t.Context(), "go", "https://go.dev"); err != nil {
				t.Fatal(err)
			}
			release := make(chan struct{}) // a hung call answers once the read has returned
			defer close(release)
			var mu sync.Mutex
			calls, hung := 0, 0
			mc.before = func(string, string) {
				mu.Lock()
				calls++
				n := calls
				mu.Unlock()
				switch {
				case hangFrom == 0: // slow, not hung: each call answers in time
					time.Sleep(timeout * 4 / 10)
				case n >= hangFrom: // paused from here on
					mu.Lock()
					hung++
					mu.Unlock()
					<-release
				}
			}
			start := time.Now()
			l, err := c.Get(t.Context(), "go")
			took := time.Since(start)
			mu.Lock()
			n, waiting := calls, hung
			mu.Unlock()
			t.Logf("%d memcached calls, the read took %s (timeout %s)", n, took.Round(time.Millisecond), timeout)
			if err != nil || l.URL != "https://go.dev" {
				t.Fatalf("Get = %+v, %v", l, err)
			}
			switch {
			case hangFrom == 0 && n > 3:
				t.Errorf("%d slow calls: the budget is per call, not per request", n)
			case hangFrom > 0 && n > hangFrom:
				t.Errorf("%d calls, the hung one was call %d: the read went on calling memcached", n, hangFrom)
			case hangFrom > 0 && n == hangFrom && waiting != 1:
				t.Errorf("the read returned with %d calls hung, want it to leave the one", waiting)
			}
			if hangFrom > 0 && n == hangFrom && !strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("the hang was not logged:\n%s", logs.String())
			}
		})
	}
}

// pollFor calls cond until it holds or timeout passes.
func pollFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not after %s", timeout)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// TestCacheBadKeys: a slug memcached cannot take as a key never reaches it,
// and is not logged as an outage.
func TestCacheBadKeys(t *testing.T) {
	c, _, mc, logs := newFakeCache(t, time.Second)
	for _, slug := range []string{"a b", strings.Repeat("x", 250), "a\x00b", "a\nb", ""} {
		if _, err := c.Get(t.Context(), slug); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v", slug, err)
		}
		if _, err := c.Create(t.Context(), slug, "https://go.dev"); err != nil {
			t.Errorf("Create(%q) = %v", slug, err)
		}
	}
	if n := mc.opCount(); n != 0 {
		t.Errorf("%d calls reached memcached", n)
	}
	if logs.String() != "" {
		t.Errorf("logged:\n%s", logs.String())
	}
}

// TestCacheMalformedKeyIsNoOutage: memcached refusing a key is not an outage.
func TestCacheMalformedKeyIsNoOutage(t *testing.T) {
	c, repo, mc, logs := newFakeCache(t, time.Second)
	if _, err := repo.Create(t.Context(), "go", "https://go.dev"); err != nil {
		t.Fatal(err)
	}
	mc.setFail(func(string) error { return memcache.ErrMalformedKey })
	for range 100 {
		if _, err := c.Get(t.Context(), "go"); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "level=INFO") {
		t.Errorf("logged as an outage:\n%s", logs.String())
	}
}

// BenchmarkCacheGet: a hit and a miss (lease, read, fill) against the
// in-memory fake, so the figures are the cache's own cost.
func BenchmarkCacheGet(b *testing.B) {
	for _, hit := range []bool{true, false} {
		b.Run(map[bool]string{true: "hit", false: "miss"}[hit], func(b *testing.B) {
			repo, mc := newMemRepo(), newFakeMemcache()
			c := newCache(repo, []string{fakeServer}, func(string) client { return mc }, time.Minute, time.Second, slog.New(slog.DiscardHandler))
			defer c.Close()
			if _, err := repo.Create(b.Context(), "go", "https://go.dev"); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if !hit {
					mc.advance(2 * time.Minute) // past the TTL: a miss
				}
				if _, err := c.Get(b.Context(), "go"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// countingMemcached is a memcached stand-in on loopback that counts the
// connections it accepts. Every read misses after delay (so that calls
// overlap) and every store is refused, which sends each read to the
// repository without ever opening the breaker.
type countingMemcached struct {
	addr     string
	mu       sync.Mutex
	accepted int
	conns    []net.Conn // to close when the test ends: clients keep theirs open
}

func startCountingMemcached(t *testing.T, delay time.Duration) *countingMemcached {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &countingMemcached{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		m.mu.Lock()
		for _, c := range m.conns {
			c.Close()
		}
		m.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			m.mu.Lock()
			m.accepted++
			m.conns = append(m.conns, conn)
			m.mu.Unlock()
			wg.Go(func() { m.serve(conn, delay) })
		}
	})
	return m
}

func (m *countingMemcached) serve(conn net.Conn, delay time.Duration) {
	defer conn.Close()
	buf := make([]byte, 4096)
	var pending []byte
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		pending = append(pending, buf[:n]...)
		for {
			line, rest, ok := bytes.Cut(pending, []byte("\r\n"))
			if !ok {
				break
			}
			var reply string
			switch verb, _, _ := strings.Cut(string(line), " "); verb {
			case "get", "gets":
				time.Sleep(delay) // a slow server, so that calls overlap
				reply = "END\r\n"
			case "set", "add", "cas", "replace":
				_, data, ok := bytes.Cut(rest, []byte("\r\n")) // the value's line
				if !ok {
					return // the value in the next read: not from gomemcache
				}
				rest = data
				reply = "NOT_STORED\r\n"
			case "delete":
				reply = "NOT_FOUND\r\n"
			default:
				reply = "ERROR\r\n"
			}
			pending = rest
			if _, err := io.WriteString(conn, reply); err != nil {
				return
			}
		}
	}
}

func (m *countingMemcached) connections() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.accepted
}

// TestCacheKeepsConnections: rounds of 8 reads in parallel reuse the
// connections of the previous round with NewCache's default idle pool,
// instead of dialing one per call beyond gomemcache's 2 idle connections.
func TestCacheKeepsConnections(t *testing.T) {
	const readers, reads = 8, 20
	for _, tc := range []struct {
		name     string
		opts     []CacheOption
		min, max int // connections accepted
	}{
		{"default", nil, 1, readers},
		{"WithMaxIdleConns(8)", []CacheOption{WithMaxIdleConns(readers)}, 1, readers},
		{"WithMaxIdleConns(1)", []CacheOption{WithMaxIdleConns(1)}, 2 * readers, 2 * readers * reads}, // a read: get, then add
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := startCountingMemcached(t, 2*time.Millisecond)
			repo := newMemRepo()
			for i := range readers {
				if _, err := repo.Create(t.Context(), fmt.Sprint("go", i), "https://go.dev"); err != nil {
					t.Fatal(err)
				}
			}
			var errs lockedBuffer
			c := NewCache(repo, []string{m.addr}, time.Minute, 5*time.Second, slog.New(slog.NewTextHandler(&errs, &slog.HandlerOptions{Level: slog.LevelWarn})), tc.opts...)
			t.Cleanup(func() { _ = c.Close() })
			for range reads { // in rounds: the connections of one round are idle in the next
				var wg sync.WaitGroup
				for i := range readers {
					wg.Go(func() {
						if l, err := c.Get(t.Context(), fmt.Sprint("go", i)); err != nil || l.URL != "https://go.dev" {
							t.Errorf("Get = %+v, %v", l, err)
						}
					})
				}
				wg.Wait()
			}
			n := m.connections()
			t.Logf("%d readers x %d reads: %d connections", readers, reads, n)
			if n < tc.min || n > tc.max {
				t.Errorf("memcached accepted %d connections, want %d to %d", n, tc.min, tc.max)
			}
			if errs.String() != "" {
				t.Errorf("the cache logged:\n%s", errs.String())
			}
		})
	}
}
