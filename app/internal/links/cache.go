package links

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/gok8s/gok8s/probes"
)

// Lifetimes of the cache's markers. memcached counts whole seconds and may
// expire an entry up to a second early, so each lives 2 to 3 seconds.
const (
	leaseTTL     = 3 // seconds a reader's placeholder holds the key for its fill
	tombstoneTTL = 3 // seconds a write's tombstone keeps fills out
)

// Kinds of cache entry: the first byte of the value.
const (
	kindLink      = 'v' // a link as JSON
	kindAbsent    = 'n' // no such link
	kindLease     = 'l' // a reader is filling the key; the rest is its token
	kindTombstone = 't' // a write just happened; nobody fills
)

// The memcached operations a Cache performs: the op of [CacheStats.Error].
const (
	OpGet = "get" // a read, and a fill's check of its lease
	OpAdd = "add" // a miss's lease
	OpCAS = "cas" // a fill
	OpSet = "set" // a write's tombstone
	// OpVersion is memcached's version command: a ping of a server whose
	// circuit breaker is open and that owes no tombstone.
	OpVersion = "version"
)

// CacheOps returns every memcached operation a Cache performs, in the order
// of a miss, a write and a breaker's ping: the one list of them, which metrics and docs
// take from here.
func CacheOps() []string { return []string{OpGet, OpAdd, OpCAS, OpSet, OpVersion} }

// client is the part of gomemcache's client a Cache uses, one per server.
type client interface {
	Get(key string) (*memcache.Item, error)
	Add(item *memcache.Item) error
	Set(item *memcache.Item) error
	CompareAndSwap(item *memcache.Item) error
	Ping() error
}

var _ client = (*memcache.Client)(nil)

// Cache is a read-through [Repository] that keeps links (and their absence)
// from next in memcached for a TTL, shared by every replica that uses the same
// memcached servers.
//
// It follows the lease scheme of "Scaling Memcache at Facebook" (NSDI 2013)
// with memcached's own add and cas:
//
//   - A read that misses adds a placeholder (a lease, 2 to 3 s) before it reads
//     the database, and fills the key with cas only if its own lease is still
//     there. A read that finds another's lease or a tombstone reads the
//     database and does not fill.
//   - A write sets a tombstone (2 to 3 s) before it writes the database, and
//     again after the commit. Either one replaces a lease, so a fill that read
//     the database before the commit finds its lease gone and cannot store the
//     older value.
//
// Guarantee: a read that starts after a write returned sees that write or a
// newer one, on any replica sharing memcached, while memcached answers and
// keeps the tombstone (it evicts only under memory pressure). A write never
// fails because of memcached: the cache is optional. When memcached does not
// take a write's tombstone (paused, hung, partitioned, or not running), the
// write goes on, and the Cache retries the tombstone every 250 ms until
// memcached takes it or refuses connections (a memcached that is not running
// restarts empty), for at most the TTL, by which time any older copy has
// expired. Until then this process reads that key from the database. Another
// replica may read an older copy only if its own breaker closes before this
// process's tombstone lands, which the breaker's 500 ms of settling makes
// unlikely, and only until it lands; or for the TTL if the writing process
// ends first or more than 100,000 keys of one server wait for their tombstone.
//
// Cost: a hit is one memcached get. A miss is get, add, then the database,
// then get and cas: four memcached round trips. A write is two sets. With
// memcached unavailable, one request spends at most one timeout in memcached
// in total, then uses the database: the cache can make reads slower by the
// timeout, never make them fail. Each server has a circuit breaker
// (breaker.go): once a server is known to be down, by 3 failed calls in a row
// or by its readiness check ([Cache.ServerDown]), requests skip it and cost
// nothing, and one goroutine tries it every 250 ms. After a write, the slug is
// read from the database for 2 to 3 s.
//
// The first memcached error of a server after a success is logged at WARN, the
// others at DEBUG, and the first success after an error at INFO, so that an
// outage does not log a line per request; the breaker logs its changes at INFO.
type Cache struct {
	next    Repository
	expires int32 // memcached expiration of links, in seconds
	ttl     time.Duration
	timeout time.Duration // one request's time in memcached, in total
	maxIdle int           // idle connections kept per server; see WithMaxIdleConns
	log     *slog.Logger
	stats   CacheStats // nil: none
	list    serverList
	servers []*server // list's servers, in its order

	every time.Duration // retryEvery; tests change it
	// testTicks, when set, replaces the servers' tickers: the test sends a tick.
	testTicks <-chan time.Time
	stop      chan struct{} // closed by Close: the servers' goroutines end
	closeOnce sync.Once
	tracing   cacheTracing
}

var _ Repository = (*Cache)(nil)

// NewCache returns a Cache in front of next. Keys are spread over servers
// (host:port) as gomemcache's ServerList does, by their CRC-32, and host names
// are resolved at each dial, so the cache starts even while memcached's DNS
// name does not resolve yet. timeout bounds the time one request spends in
// memcached; ttl is rounded down to whole seconds and capped at 30 days,
// beyond which memcached reads it as a Unix time. Each server must be one
// memcached process (not a load balancer over several).
func NewCache(next Repository, servers []string, ttl, timeout time.Duration, log *slog.Logger, opts ...CacheOption) *Cache {
	c := withOptions(newCache(next, servers, func(string) client { return nil }, ttl, timeout, log), opts)
	for _, s := range c.servers {
		mc := memcache.NewFromSelector(probes.MemcachedServer(s.addr))
		mc.Timeout = timeout
		mc.MaxIdleConns = c.maxIdle
		s.client = mc
	}
	return c
}

// newCache returns a Cache whose servers use the clients dial returns, one
// per address.
func newCache(next Repository, servers []string, dial func(addr string) client, ttl, timeout time.Duration, log *slog.Logger) *Cache {
	list := serverList(slices.Clone(servers))
	return &Cache{next: next, expires: expiration(ttl), ttl: ttl, timeout: timeout, log: log,
		list: list, servers: newServers(list, dial), maxIdle: DefaultMaxIdleConns, every: retryEvery, stop: make(chan struct{})}
}

// Close ends the goroutines that retry tombstones and attempt servers whose
// breaker is open, and returns nil. The Cache still serves requests, with no
// more retries and attempts: close it when the process ends.
func (c *Cache) Close() error {
	c.closeOnce.Do(func() { close(c.stop) })
	return nil
}

// server returns the server of key k, or nil when the Cache has none.
func (c *Cache) server(k string) *server {
	switch len(c.servers) {
	case 0:
		return nil
	case 1:
		return c.servers[0]
	}
	return c.servers[c.list.pick(k)]
}

// expiration returns ttl in whole seconds, at least 1 and at most 30 days' worth.
func expiration(ttl time.Duration) int32 {
	secs := min(max(ttl, time.Second), 30*24*time.Hour) / time.Second
	return int32(secs) //nolint:gosec // from 1 to 2,592,000: fits in an int32
}

func key(slug string) string { return "link:" + slug }

// cacheable reports whether slug makes a key memcached takes: at most 250
// bytes, no spaces or control characters. The handler lets only valid slugs
// through; this guard keeps any other caller's from reaching memcached.
func cacheable(slug string) bool {
	if slug == "" || len(key(slug)) > 250 {
		return false
	}
	for i := range len(slug) {
		if slug[i] <= ' ' || slug[i] == 0x7f {
			return false
		}
	}
	return true
}

// Get returns the cached link, or reads it from next and fills the cache if
// this read holds the key's lease.
func (c *Cache) Get(ctx context.Context, slug string) (Link, error) {
	if !cacheable(slug) {
		return c.next.Get(ctx, slug)
	}
	k := key(slug)
	s := c.server(k)
	if s == nil {
		return c.next.Get(ctx, slug)
	}
	if s.waits(k) { // memcached may hold an older copy
		c.skipped(s, SkipTombstone)
		return c.next.Get(ctx, slug)
	}
	b := c.budget(ctx, s)
	item, err := call(b, OpGet, func() (*memcache.Item, error) { return s.client.Get(k) })
	switch {
	case err == nil:
		switch kindOf(item.Value) {
		case kindLink:
			var l Link
			if err := json.Unmarshal(item.Value[1:], &l); err == nil {
				c.lookedUp(true)
				return l, nil
			}
			c.log.WarnContext(ctx, "links: cached link does not decode; using the database", "slug", slug)
		case kindAbsent:
			c.lookedUp(true)
			return Link{}, ErrNotFound
		}
		c.lookedUp(false)
		return c.next.Get(ctx, slug) // a lease, a tombstone, or not ours to read
	case !errors.Is(err, memcache.ErrCacheMiss):
		return c.next.Get(ctx, slug) // memcached unavailable: counted as an error
	}
	c.lookedUp(false)

	lease := append([]byte{kindLease}, rand.Text()...)
	_, err = call(b, OpAdd, func() (struct{}, error) {
		return struct{}{}, s.client.Add(&memcache.Item{Key: k, Value: lease, Expiration: leaseTTL})
	})
	if err != nil { // another reader's lease, a write's tombstone, or an outage
		return c.next.Get(ctx, slug)
	}
	l, err := c.next.Get(ctx, slug)
	var value []byte
	switch {
	case err == nil:
		j, jerr := json.Marshal(l)
		if jerr != nil {
			return l, nil
		}
		value = append([]byte{kindLink}, j...)
	case errors.Is(err, ErrNotFound):
		value = []byte{kindAbsent}
	default:
		return l, err // the lease expires by itself
	}
	c.fill(b, k, lease, value)
	return l, err
}

// fill replaces the lease on k with value, unless a write replaced it first.
func (c *Cache) fill(b *budget, k string, lease, value []byte) {
	item, err := call(b, OpGet, func() (*memcache.Item, error) { return b.s.client.Get(k) })
	if err != nil || !bytes.Equal(item.Value, lease) {
		return
	}
	item.Value, item.Expiration = value, c.expires
	_, _ = call(b, OpCAS, func() (struct{}, error) { return struct{}{}, b.s.client.CompareAndSwap(item) })
}

// List reads through to next: pages change with every write, so they are not cached.
func (c *Cache) List(ctx context.Context, after string, limit int) ([]Link, error) {
	return c.next.List(ctx, after, limit)
}

// Create creates the link in next between two tombstones on slug.
func (c *Cache) Create(ctx context.Context, slug, url string) (Link, error) {
	var l Link
	err := c.write(ctx, slug, func() (err error) {
		l, err = c.next.Create(ctx, slug, url)
		return err
	})
	return l, err
}

// Update changes the link in next between two tombstones on slug.
func (c *Cache) Update(ctx context.Context, slug, url string) (Link, error) {
	var l Link
	err := c.write(ctx, slug, func() (err error) {
		l, err = c.next.Update(ctx, slug, url)
		return err
	})
	return l, err
}

// Delete deletes the link in next between two tombstones on slug.
func (c *Cache) Delete(ctx context.Context, slug string) error {
	return c.write(ctx, slug, func() error { return c.next.Delete(ctx, slug) })
}

// write runs do, which writes slug's link to next, between two tombstones.
// When memcached does not take the first, the write goes on and the second is
// left to the repair loop, so that a write spends at most one timeout in
// memcached.
func (c *Cache) write(ctx context.Context, slug string, do func() error) error {
	if !cacheable(slug) {
		return do() // never cached
	}
	k := key(slug)
	s := c.server(k)
	if s == nil {
		return do()
	}
	first := c.tombstone(c.budget(ctx, s), k)
	err := do()
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		return err // nothing changed
	}
	switch {
	case first != nil && refused(first):
		// Not running: it starts empty, so it holds no older value.
	case first != nil: // failed, timed out, or skipped by the breaker
		c.repair(s, k)
	default:
		// After the commit, or after a failure that may have committed, even
		// if the client has gone.
		switch terr := c.tombstone(c.budget(context.WithoutCancel(ctx), s), k); {
		case terr == nil:
			s.done(k) // an earlier write's tombstone is owed no more
		case !refused(terr):
			c.repair(s, k)
		}
	}
	return err
}

func kindOf(v []byte) byte {
	if len(v) == 0 {
		return 0
	}
	return v[0]
}
