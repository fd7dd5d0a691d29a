package links

import (
	"errors"
	"sync/atomic"
)

// Each memcached server of a Cache has a circuit breaker, so that a server
// known to be down costs requests no time:
//
//   - closed: requests call the server. tripAfter failed calls in a row (an
//     error or a timeout; a miss or a lost add is an answer), or a failed
//     readiness check of the server ([Cache.ServerDown]), open it.
//   - open: requests skip the server and use the database for its keys. One
//     goroutine makes one attempt every retryEvery (250 ms): it sets the
//     tombstones that writes could not leave on the server (repair.go), or
//     reads a key of the server when none waits. A success makes the breaker
//     half-open.
//   - half-open: requests still skip the server; closeAfter successful
//     attempts in a row close the breaker, a failed one opens it again.
//
// So a server is used again only after every tombstone this process owes it
// has been set, and after it has answered for two more intervals (500 ms), in
// which the other replicas' goroutines set the tombstones they owe it too.
const (
	tripAfter  = 3 // failed calls in a row that open a closed breaker
	closeAfter = 3 // successful attempts in a row that close an open one
)

// breakerState is the state of a server's circuit breaker.
type breakerState int32

const (
	breakerClosed breakerState = iota
	breakerOpen
	breakerHalfOpen
)

// String returns the state as CacheStats.Breaker reports it: "closed",
// "open" or "half_open".
func (s breakerState) String() string {
	switch s {
	case breakerOpen:
		return "open"
	case breakerHalfOpen:
		return "half_open"
	}
	return "closed"
}

// breaker is a server's circuit breaker. Requests read it with one atomic
// load, and write it only when a call fails or the first succeeds after one
// failed.
type breaker struct {
	state     atomic.Int32 // a breakerState
	failures  atomic.Int32 // failed calls in a row, while closed
	successes atomic.Int32 // successful attempts in a row, while open or half-open
	down      atomic.Bool  // the last call failed: for the log
}

func (b *breaker) current() breakerState { return breakerState(b.state.Load()) }

// closed reports whether requests may call the server.
func (b *breaker) closed() bool { return b.current() == breakerClosed }

// errSkipped is the error of a call the server's breaker did not let through.
var errSkipped = errors.New("links: memcached: the server's circuit breaker is open")

// ServerDown opens the circuit breaker of the memcached server addr (as given
// to [NewCache]; another address is ignored), as a failed readiness check of
// that server reports: from now on requests skip it, until a background
// attempt finds it answering again.
func (c *Cache) ServerDown(addr string) {
	for _, s := range c.servers {
		if s.addr == addr {
			c.trip(s, "its readiness check failed")
		}
	}
}

// answered notes a call to s that memcached answered.
func (c *Cache) answered(s *server) {
	if s.failures.Load() != 0 {
		s.failures.Store(0)
	}
}

// failed notes a call to s that failed, and opens its breaker after tripAfter
// in a row.
func (c *Cache) failed(s *server) {
	if s.failures.Add(1) >= tripAfter && s.closed() {
		c.trip(s, "calls failed")
	}
}

// trip opens s's breaker, unless it is open already, and starts the goroutine
// that tries s.
func (c *Cache) trip(s *server, why string) {
	for {
		from := s.current()
		if from == breakerOpen {
			return
		}
		if s.state.CompareAndSwap(int32(from), int32(breakerOpen)) {
			s.successes.Store(0)
			c.changed(s, from, breakerOpen, why)
			c.tend(s)
			return
		}
	}
}

// attempted notes the outcome of a background attempt on s while its breaker
// was not closed.
func (c *Cache) attempted(s *server, ok bool) {
	from := s.current()
	if from == breakerClosed {
		return
	}
	if !ok {
		s.successes.Store(0)
		if from == breakerHalfOpen && s.state.CompareAndSwap(int32(from), int32(breakerOpen)) {
			c.changed(s, from, breakerOpen, "an attempt failed")
		}
		return
	}
	switch n := s.successes.Add(1); {
	case n >= closeAfter:
		s.failures.Store(0)
		if s.state.CompareAndSwap(int32(from), int32(breakerClosed)) {
			c.changed(s, from, breakerClosed, "attempts succeeded")
		}
	case from == breakerOpen:
		if s.state.CompareAndSwap(int32(from), int32(breakerHalfOpen)) {
			c.changed(s, from, breakerHalfOpen, "an attempt succeeded")
		}
	}
}

// changed reports a change of s's breaker to the log and the CacheStats.
func (c *Cache) changed(s *server, from, to breakerState, why string) {
	if c.stats != nil {
		c.stats.Breaker(s.addr, to.String())
	}
	switch to {
	case breakerOpen:
		c.log.Info("links: memcached server skipped: reads of its keys use the database until it answers again",
			"server", s.addr, "breaker", to.String(), "from", from.String(), "because", why)
	case breakerClosed:
		c.log.Info("links: memcached server used again", "server", s.addr, "breaker", to.String(), "because", why)
	default:
		c.log.Debug("links: memcached server answers; not used yet", "server", s.addr, "breaker", to.String(), "because", why)
	}
}

// skipped counts a call to s that the breaker or a waiting tombstone kept
// from memcached, for reason (one of SkipReasons).
func (c *Cache) skipped(s *server, reason string) {
	if c.stats != nil {
		c.stats.Skipped(s.addr, reason)
	}
}
