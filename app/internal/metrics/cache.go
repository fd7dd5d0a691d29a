package metrics

import (
	"github.com/gok8s/gok8s/app/internal/links"
	"github.com/prometheus/client_golang/prometheus"
)

// Cache counts the outcomes of the link cache's memcached calls:
//
//	gok8s_cache_hits_total         reads that found the link in memcached
//	gok8s_cache_misses_total       reads that did not, and went to the database
//	gok8s_cache_errors_total{op}   memcached calls that failed, by operation (links.CacheOps)
//	gok8s_cache_breaker_state{server,state}   1 for the state of the server's circuit breaker, 0 for the others
//	gok8s_cache_breaker_skipped_total{server,reason} memcached calls not made, by reason (links.SkipReasons):
//	                               breaker (not closed) or tombstone (the key waited for a recent write's)
//
// It implements links.CacheStats. Its methods are safe for concurrent use.
type Cache struct {
	hits, misses prometheus.Counter
	errors       *prometheus.CounterVec
	state        *prometheus.GaugeVec
	skipped      *prometheus.CounterVec
}

// BreakerStates are the values of gok8s_cache_breaker_state's state label.
var BreakerStates = []string{"closed", "open", "half_open"}

// NewCache registers the cache series in reg and returns them, with an error
// series of each operation of links.CacheOps at zero, so that rate() sees the
// first failure. NewCache panics if they are already registered in reg.
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
	c.state = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gok8s_cache_breaker_state",
		Help: "1 for the state of the memcached server's circuit breaker (closed: used; open: skipped; half_open: answering, not used yet), 0 for the others.",
	}, []string{"server", "state"})
	c.skipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gok8s_cache_breaker_skipped_total",
		Help: "Memcached calls not made, the request going to the database, by reason: breaker (the server's circuit breaker was not closed) or tombstone (the key waited for a recent write's tombstone).",
	}, []string{"server", "reason"})
	reg.MustRegister(c.hits, c.misses, c.errors, c.state, c.skipped)
	for _, op := range links.CacheOps() {
		c.errors.WithLabelValues(op)
	}
	return c
}

var _ links.CacheStats = (*Cache)(nil)

// Hit counts a read memcached answered.
func (c *Cache) Hit() { c.hits.Inc() }

// Miss counts a read memcached did not hold.
func (c *Cache) Miss() { c.misses.Inc() }

// Error counts a failed memcached call of operation op.
func (c *Cache) Error(op string) { c.errors.WithLabelValues(op).Inc() }

// Skipped counts a memcached call to server that the cache did not make, for
// reason, one of links.SkipReasons.
func (c *Cache) Skipped(server, reason string) { c.skipped.WithLabelValues(server, reason).Inc() }

// Breaker sets server's breaker state to state, one of BreakerStates, and
// makes its skipped series, one per reason.
func (c *Cache) Breaker(server, state string) {
	for _, s := range BreakerStates {
		v := 0.0
		if s == state {
			v = 1
		}
		c.state.WithLabelValues(server, s).Set(v)
	}
	for _, reason := range links.SkipReasons() {
		c.skipped.WithLabelValues(server, reason)
	}
}
