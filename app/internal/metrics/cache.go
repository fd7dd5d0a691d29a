package metrics

import "github.com/prometheus/client_golang/prometheus"

// Cache counts the outcomes of the link cache's memcached calls:
//
//	gok8s_cache_hits_total         reads that found the link in memcached
//	gok8s_cache_misses_total       reads that did not, and went to the database
//	gok8s_cache_errors_total{op}   memcached calls that failed, by operation: get, set, delete, …
//
// It implements links.CacheStats. Its methods are safe for concurrent use.
type Cache struct {
	hits, misses prometheus.Counter
	errors       *prometheus.CounterVec
}

// NewCache registers the cache series in reg and returns them. NewCache panics
// if they are already registered in reg.
func NewCache(reg prometheus.Registerer) *Cache {
	c := &Cache{
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gok8s_cache_hits_total",
			Help: "Link reads answered from memcached.",
		}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gok8s_cache_misses_total",
			Help: "Link reads memcached did not hold, answered from the database.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gok8s_cache_errors_total",
			Help: "Memcached calls that failed (the request went on to the database), by operation.",
		}, []string{"op"}),
	}
	reg.MustRegister(c.hits, c.misses, c.errors)
	for _, op := range []string{"get", "set", "delete"} {
		c.errors.WithLabelValues(op)
	}
	return c
}

// Hit counts a read memcached answered.
func (c *Cache) Hit() { c.hits.Inc() }

// Miss counts a read memcached did not hold.
func (c *Cache) Miss() { c.misses.Inc() }

// Error counts a failed memcached call of operation op.
func (c *Cache) Error(op string) { c.errors.WithLabelValues(op).Inc() }
