package links

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// Lifetimes of the cache's markers. memcached counts whole seconds and may
// expire an entry up to a second early, so each lives 2 to 3 seconds.
const (
	leaseTTL     = 3 // seconds a reader's placeholder holds the key for its fill
	tombstoneTTL = 3 // seconds a write's tombstone keeps fills out
)

// retryEvery is how often a Cache retries the tombstones memcached did not
// take; maxRepairs bounds how many keys wait for one.
const (
	retryEvery = 250 * time.Millisecond
	maxRepairs = 100_000
)

// Kinds of cache entry: the first byte of the value.
const (
	kindLink      = 'v' // a link as JSON
	kindAbsent    = 'n' // no such link
	kindLease     = 'l' // a reader is filling the key; the rest is its token
	kindTombstone = 't' // a write just happened; nobody fills
)

// client is the part of gomemcache's client a Cache uses.
type client interface {
	Get(key string) (*memcache.Item, error)
	Add(item *memcache.Item) error
	Set(item *memcache.Item) error
	CompareAndSwap(item *memcache.Item) error
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
// expired. Readers meanwhile time out on memcached and read the database, so
// an older value can come back only once memcached answers again, and then for
// at most 250 ms (one retry interval), or for the TTL if the writing process
// ends first or more than 100,000 keys wait for their tombstone.
//
// Cost: a hit is one memcached get. A miss is get, add, then the database,
// then get and cas: four memcached round trips. A write is two sets. With
// memcached unavailable, one request spends at most one timeout in memcached
// in total, then uses the database: the cache can make reads slower by the
// timeout, never make them fail. After a write, the slug is read from the
// database for 2 to 3 s.
//
// The first memcached error after a success is logged at WARN, the others at
// DEBUG, and the first success after an error at INFO, so that an outage does
// not log a line per request.
type Cache struct {
	next    Repository
	client  client
	expires int32 // memcached expiration of links, in seconds
	ttl     time.Duration
	timeout time.Duration // one request's time in memcached, in total
	log     *slog.Logger
	down    atomic.Bool // the last memcached call failed
	stats   CacheStats  // nil: none
	repairs repairs     // tombstones memcached did not take yet
}

var _ Repository = (*Cache)(nil)

// NewCache returns a Cache in front of next. Keys are spread over servers
// (host:port) as gomemcache does, and host names are resolved at each dial, so
// the cache starts even while memcached's DNS name does not resolve yet.
// timeout bounds the time one request spends in memcached; ttl is rounded
// down to whole seconds and capped at 30 days, beyond which memcached reads it
// as a Unix time. Each server must be one memcached process (not a load
// balancer over several).
func NewCache(next Repository, servers []string, ttl, timeout time.Duration, log *slog.Logger, opts ...CacheOption) *Cache {
	c := memcache.NewFromSelector(serverList(servers))
	c.Timeout = timeout
	return withOptions(newCache(next, c, ttl, timeout, log), opts)
}

func newCache(next Repository, cl client, ttl, timeout time.Duration, log *slog.Logger) *Cache {
	return &Cache{next: next, client: cl, expires: expiration(ttl), ttl: ttl, timeout: timeout, log: log}
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
	b := c.budget(ctx)
	k := key(slug)
	item, err := call(b, "get", func() (*memcache.Item, error) { return c.client.Get(k) })
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
	_, err = call(b, "add", func() (struct{}, error) {
		return struct{}{}, c.client.Add(&memcache.Item{Key: k, Value: lease, Expiration: leaseTTL})
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
	item, err := call(b, "get", func() (*memcache.Item, error) { return c.client.Get(k) })
	if err != nil || !bytes.Equal(item.Value, lease) {
		return
	}
	item.Value, item.Expiration = value, c.expires
	_, _ = call(b, "cas", func() (struct{}, error) { return struct{}{}, c.client.CompareAndSwap(item) })
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
	first := c.tombstone(c.budget(ctx), k)
	err := do()
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		return err // nothing changed
	}
	switch {
	case first != nil && refused(first):
		// Not running: it starts empty, so it holds no older value.
	case first != nil:
		c.repair(k)
	default:
		// After the commit, or after a failure that may have committed, even
		// if the client has gone.
		if terr := c.tombstone(c.budget(context.WithoutCancel(ctx)), k); terr != nil && !refused(terr) {
			c.repair(k)
		}
	}
	return err
}

// tombstone sets a tombstone on k. A connection memcached closed (an idle
// connection to a server that has since stopped) is tried once more on a new
// one, which tells a stopped server (refused) from a running one.
func (c *Cache) tombstone(b *budget, k string) error {
	set := func() (struct{}, error) {
		return struct{}{}, c.client.Set(&memcache.Item{Key: k, Value: []byte{kindTombstone}, Expiration: tombstoneTTL})
	}
	_, err := call(b, "set", set)
	if err != nil && !refused(err) && !b.spent {
		_, err = call(b, "set", set)
	}
	return err
}

// repairs is the set of keys whose tombstone memcached has not taken yet,
// each with the time after which any older copy has expired, and whether a
// goroutine is retrying them.
type repairs struct {
	mu      sync.Mutex
	keys    map[string]time.Time
	running bool
}

// repair sets a tombstone on k later: every retryEvery one goroutine per
// Cache tries the waiting keys (in random order, stopping at the first
// failure, so that a hung memcached costs one timeout per interval whatever
// the number of keys) until each is taken, refused, or past the TTL. The
// goroutine ends when no key waits.
func (c *Cache) repair(k string) {
	r := &c.repairs
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys == nil {
		r.keys = map[string]time.Time{}
	}
	if len(r.keys) >= maxRepairs {
		return // the TTL bounds what this key's older copy can do
	}
	r.keys[k] = time.Now().Add(c.ttl)
	if r.running {
		return
	}
	r.running = true
	go c.repairLoop()
}

func (c *Cache) repairLoop() {
	r := &c.repairs
	tick := time.NewTicker(retryEvery)
	defer tick.Stop()
	for range tick.C {
		r.mu.Lock()
		now := time.Now()
		var keys []string
		for k, end := range r.keys { // random order
			if now.After(end) {
				delete(r.keys, k)
			} else {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		for _, k := range keys {
			if err := c.tombstone(c.budget(context.Background()), k); err != nil && !refused(err) {
				break // still unavailable: the next interval tries again
			}
			r.mu.Lock()
			delete(r.keys, k)
			r.mu.Unlock()
		}
	}
}

func kindOf(v []byte) byte {
	if len(v) == 0 {
		return 0
	}
	return v[0]
}

// refused reports whether err says memcached is not running: it then holds
// nothing, and starts empty.
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// A budget is one request's time in memcached: one timeout in all. Once a
// call has used it up, the request makes no more calls.
type budget struct {
	c        *Cache
	ctx      context.Context
	deadline time.Time
	spent    bool
}

func (c *Cache) budget(ctx context.Context) *budget {
	return &budget{c: c, ctx: ctx, deadline: time.Now().Add(c.timeout)}
}

// errSpent is the error of a call made after the budget ran out.
var errSpent = errors.New("links: memcached: the request's cache time is spent")

// call runs f, memcached operation op, within b, and notes its outcome. The
// call is left to finish by itself (within the client's timeout) if the budget
// runs out or the request ends first.
func call[T any](b *budget, op string, f func() (T, error)) (T, error) {
	var zero T
	if b.spent || !time.Now().Before(b.deadline) {
		b.spent = true
		return zero, errSpent
	}
	ctx, cancel := context.WithDeadline(b.ctx, b.deadline)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		r.err = fmt.Errorf("links: memcached %s: %w", op, ctx.Err())
	}
	if r.err != nil && (errors.Is(r.err, context.DeadlineExceeded) || errors.Is(r.err, os.ErrDeadlineExceeded) || isTimeout(r.err)) {
		b.spent = true
	}
	if b.ctx.Err() == nil { // a request that ended is no news about memcached
		b.c.note(b.ctx, op, r.err)
	} else {
		b.spent = true
	}
	return r.v, r.err
}

func isTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	_, ok := errors.AsType[*memcache.ConnectTimeoutError](err)
	return ok
}

// note logs the outcome of a memcached call op when it changes the cache's
// state. A miss, a lost add or cas, and a key memcached cannot take are not
// outages.
func (c *Cache) note(ctx context.Context, op string, err error) {
	c.count(op, err)
	switch {
	case err == nil, errors.Is(err, memcache.ErrCacheMiss), errors.Is(err, memcache.ErrNotStored),
		errors.Is(err, memcache.ErrCASConflict):
		if c.down.Swap(false) {
			c.log.InfoContext(ctx, "links: cache available again")
		}
	case errors.Is(err, memcache.ErrMalformedKey):
		c.log.DebugContext(ctx, "links: key memcached cannot take", "op", op)
	default:
		level := slog.LevelDebug
		if !c.down.Swap(true) {
			level = slog.LevelWarn
		}
		c.log.Log(ctx, level, "links: cache unavailable, using the database", "op", op, "error", err.Error())
	}
}

// serverList is a memcache.ServerSelector that picks a server by the key's
// CRC-32, as memcache.ServerList does, but resolves host names at each dial.
type serverList []string

func (s serverList) PickServer(key string) (net.Addr, error) {
	if len(s) == 0 {
		return nil, memcache.ErrNoServers
	}
	return addr(s[int(crc32.ChecksumIEEE([]byte(key)))%len(s)]), nil
}

func (s serverList) Each(f func(net.Addr) error) error {
	for _, a := range s {
		if err := f(addr(a)); err != nil {
			return err
		}
	}
	return nil
}

// addr is an unresolved memcached address: host:port, or a Unix socket path.
type addr string

func (a addr) Network() string {
	if strings.Contains(string(a), "/") {
		return "unix"
	}
	return "tcp"
}

func (a addr) String() string { return string(a) }
