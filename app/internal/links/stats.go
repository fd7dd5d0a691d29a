package links

import (
	"errors"

	"github.com/bradfitz/gomemcache/memcache"
)

// CacheStats counts what a Cache's memcached calls found: Hit and Miss for each
// read, Error for each call that failed, by memcached operation (get, set,
// delete, …). Its methods must be safe for concurrent use and must not block.
type CacheStats interface {
	Hit()
	Miss()
	Error(op string)
}

// A CacheOption changes a default of [NewCache].
type CacheOption func(*Cache)

// WithStats makes the Cache report to s (default: to nothing).
func WithStats(s CacheStats) CacheOption {
	return func(c *Cache) { c.stats = s }
}

func withOptions(c *Cache, opts []CacheOption) *Cache {
	for _, opt := range opts {
		opt(c)
	}
	return c
}

// count reports the outcome of a memcached call op to c's CacheStats: a get
// that found the key is a hit, one that did not a miss. Any other error is an
// error, except the answers of a memcached that works: a missing key, a lost
// add or cas, a key it cannot take.
func (c *Cache) count(op string, err error) {
	switch {
	case c.stats == nil:
	case errors.Is(err, memcache.ErrCacheMiss):
		if op == "get" {
			c.stats.Miss()
		}
	case errors.Is(err, memcache.ErrNotStored), errors.Is(err, memcache.ErrCASConflict), errors.Is(err, memcache.ErrMalformedKey):
	case err != nil:
		c.stats.Error(op)
	case op == "get":
		c.stats.Hit()
	}
}
