package links

import (
	"context"
	"encoding/json"
	"errors"
	"hash/crc32"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// Cache is a read-through [Repository] that keeps links read from next in
// memcached for a TTL and drops them on every write through it. On a memcached
// error the request goes on to next: the cache can make requests faster, never
// make them fail. The first error after a success is logged at WARN, the others
// at DEBUG, and the first success after an error at INFO, so that an outage
// does not log a line per request.
//
// Another replica's write leaves this one's cached copy until the TTL ends, and
// so does a read that races a write: the TTL bounds how stale a read can be.
type Cache struct {
	next    Repository
	client  *memcache.Client
	expires int32 // memcached expiration, in seconds
	log     *slog.Logger
	down    atomic.Bool // the last memcached call failed
	stats   CacheStats  // nil: none
}

var _ Repository = (*Cache)(nil)

// NewCache returns a Cache in front of next. Keys are spread over servers
// (host:port) as gomemcache does, and host names are resolved at each dial, so
// the cache starts even while memcached's DNS name does not resolve yet.
// timeout bounds each memcached call; ttl is rounded down to whole seconds and
// capped at 30 days, beyond which memcached reads it as a Unix time.
func NewCache(next Repository, servers []string, ttl, timeout time.Duration, log *slog.Logger, opts ...CacheOption) *Cache {
	c := memcache.NewFromSelector(serverList(servers))
	c.Timeout = timeout
	return withOptions(&Cache{next: next, client: c, expires: expiration(ttl), log: log}, opts)
}

// expiration returns ttl in whole seconds, at least 1 and at most 30 days' worth.
func expiration(ttl time.Duration) int32 {
	secs := min(max(ttl, time.Second), 30*24*time.Hour) / time.Second
	return int32(secs) //nolint:gosec // from 1 to 2,592,000: fits in an int32
}

func key(slug string) string { return "link:" + slug }

// Create creates the link in next and drops any cached copy of slug.
func (c *Cache) Create(ctx context.Context, slug, url string) (Link, error) {
	l, err := c.next.Create(ctx, slug, url)
	if err == nil {
		c.drop(ctx, slug) // a miss may have been cached before the create
	}
	return l, err
}

// Get returns the cached link, or reads it from next and caches it.
func (c *Cache) Get(ctx context.Context, slug string) (Link, error) {
	item, err := c.client.Get(key(slug))
	c.note(ctx, "get", err)
	if err == nil {
		var l Link
		if err := json.Unmarshal(item.Value, &l); err == nil {
			return l, nil
		}
		c.log.WarnContext(ctx, "links: cached link does not decode; using the database", "slug", slug)
	}

	l, err := c.next.Get(ctx, slug)
	if err != nil {
		return l, err
	}
	value, err := json.Marshal(l)
	if err != nil {
		return l, nil
	}
	err = c.client.Set(&memcache.Item{Key: key(slug), Value: value, Expiration: c.expires})
	c.note(ctx, "set", err)
	return l, nil
}

// List reads through to next: pages change with every write, so they are not cached.
func (c *Cache) List(ctx context.Context, after string, limit int) ([]Link, error) {
	return c.next.List(ctx, after, limit)
}

// Update changes the link in next and drops its cached copy.
func (c *Cache) Update(ctx context.Context, slug, url string) (Link, error) {
	l, err := c.next.Update(ctx, slug, url)
	if err == nil {
		c.drop(ctx, slug)
	}
	return l, err
}

// Delete deletes the link in next and drops its cached copy.
func (c *Cache) Delete(ctx context.Context, slug string) error {
	err := c.next.Delete(ctx, slug)
	if err == nil {
		c.drop(ctx, slug)
	}
	return err
}

func (c *Cache) drop(ctx context.Context, slug string) {
	c.note(ctx, "delete", c.client.Delete(key(slug)))
}

// note logs the outcome of a memcached call op when it changes the cache's state.
func (c *Cache) note(ctx context.Context, op string, err error) {
	c.count(op, err)
	if err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
		level := slog.LevelDebug
		if !c.down.Swap(true) {
			level = slog.LevelWarn
		}
		c.log.Log(ctx, level, "links: cache unavailable, using the database", "op", op, "error", err.Error())
		return
	}
	if c.down.Swap(false) {
		c.log.InfoContext(ctx, "links: cache available again")
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
