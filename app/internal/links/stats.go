package links

import (
	"errors"

	"github.com/bradfitz/gomemcache/memcache"
)

// CacheStats counts what a Cache's memcached calls found: Hit and Miss for each
// read, Error for each call that failed, by memcached operation (one of
// [CacheOps]). Breaker reports the state of a server's circuit breaker
// ("closed", "open" or "half_open"): each server's "closed" when the Cache is
// made, then each change. Skipped counts a call to a server that the Cache
// did not make, and why (one of [SkipReasons]): its breaker was not closed
// ([SkipBreaker]), or the key waited for a recent write's tombstone
// ([SkipTombstone]). Its methods must be safe for concurrent use and must not
// block.
type CacheStats interface {
	Hit()
	Miss()
	Error(op string)
	Skipped(server, reason string)
	Breaker(server, state string)
}

// Why a Cache did not call a memcached server: the reason of
// [CacheStats.Skipped].
const (
	// SkipBreaker: the server's circuit breaker was not closed (an outage).
	SkipBreaker = "breaker"
	// SkipTombstone: a recent write's tombstone keeps the key out of
	// memcached for a moment (normal traffic; the read goes to the database).
	SkipTombstone = "tombstone"
)

// SkipReasons returns every reason of [CacheStats.Skipped]: the one list of
// them, which metrics take from here.
func SkipReasons() []string { return []string{SkipBreaker, SkipTombstone} }

// A CacheOption changes a default of [NewCache].
type CacheOption func(*Cache)

// WithStats makes the Cache report to s (default: to nothing).
func WithStats(s CacheStats) CacheOption {
	return func(c *Cache) { c.stats = s }
}

// DefaultMaxIdleConns is the number of idle connections a Cache made by
// [NewCache] keeps per memcached server unless [WithMaxIdleConns] says
// otherwise. gomemcache's own default, 2, is too few for a server with a
// handful of requests in flight: each call beyond the second dials a new
// connection and closes it after use, which costs a TCP handshake (and, where
// NetworkPolicies are enforced, a policy decision) per cache read.
const DefaultMaxIdleConns = 16

// WithMaxIdleConns makes the Cache keep up to n idle connections per memcached
// server (default: [DefaultMaxIdleConns]); set it to about the number of
// requests a pod has in flight at its busiest. It has no effect on a Cache
// not made by [NewCache].
func WithMaxIdleConns(n int) CacheOption {
	return func(c *Cache) { c.maxIdle = n }
}

func withOptions(c *Cache, opts []CacheOption) *Cache {
	for _, opt := range opts {
		opt(c)
	}
	if c.stats != nil {
		for _, s := range c.servers {
			c.stats.Breaker(s.addr, breakerClosed.String())
		}
	}
	return c
}

// count reports a failed memcached call op to c's CacheStats. The answers of a
// memcached that works are no errors: a missing key, a lost add or cas, a key
// it cannot take. Hits and misses are counted by Get, which knows what the
// value it found means.
func (c *Cache) count(op string, err error) {
	switch {
	case c.stats == nil, err == nil:
	case errors.Is(err, memcache.ErrCacheMiss), errors.Is(err, memcache.ErrNotStored),
		errors.Is(err, memcache.ErrCASConflict), errors.Is(err, memcache.ErrMalformedKey):
	default:
		c.stats.Error(op)
	}
}

// lookedUp reports a read's first get to c's CacheStats: a hit when it found a
// link or a link's absence, a miss otherwise (no entry, a lease, a tombstone,
// an entry that does not decode). A get that failed is an error, neither.
func (c *Cache) lookedUp(hit bool) {
	switch {
	case c.stats == nil:
	case hit:
		c.stats.Hit()
	default:
		c.stats.Miss()
	}
}
