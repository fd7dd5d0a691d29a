package links

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// retryEvery is how often a server's goroutine retries the tombstones
// memcached did not take and, while its breaker is open, attempts the server;
// maxRepairs bounds how many keys wait for a tombstone on one server.
const (
	retryEvery = 250 * time.Millisecond
	maxRepairs = 100_000
)

// tombstone sets a tombstone on k. A connection memcached closed (an idle
// connection to a server that has since stopped) is tried once more on a new
// one, which tells a stopped server (refused) from a running one.
func (c *Cache) tombstone(b *budget, k string) error {
	set := func() (struct{}, error) {
		return struct{}{}, b.s.client.Set(&memcache.Item{Key: k, Value: []byte{kindTombstone}, Expiration: tombstoneTTL})
	}
	_, err := call(b, OpSet, set)
	if err != nil && !refused(err) && !b.spent {
		_, err = call(b, OpSet, set)
	}
	return err
}

// ping sends memcached's version command to s, as its readiness check does.
// Like tombstone, it tries a closed connection once more on a new one.
func (c *Cache) ping(b *budget, s *server) error {
	ping := func() (struct{}, error) { return struct{}{}, s.client.Ping() }
	_, err := call(b, OpVersion, ping)
	if err != nil && !refused(err) && !b.spent {
		_, err = call(b, OpVersion, ping)
	}
	return err
}

// repairs are the keys of a server whose tombstone memcached has not taken
// yet, each with the time after which any older copy has expired, and
// whether a goroutine tends the server.
type repairs struct {
	mu      sync.Mutex
	keys    map[string]time.Time
	waiting atomic.Int32 // len(keys), read by requests without the lock
	running bool         // tend's goroutine runs
}

// waits reports whether k waits for its tombstone: memcached may still hold
// an older copy, so requests leave k alone until it is set.
func (r *repairs) waits(k string) bool {
	if r.waiting.Load() == 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.keys[k]
	return ok
}

// done forgets k: its tombstone is set.
func (r *repairs) done(k string) {
	if r.waiting.Load() == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.keys, k)
	r.waiting.Store(int32(len(r.keys))) //nolint:gosec // at most maxRepairs
}

// repair sets a tombstone on k, a key of s, later: s's goroutine tries it
// every retryEvery (see tend) until it is taken, refused, or past the TTL.
// Until then requests read k from the database.
func (c *Cache) repair(s *server, k string) {
	s.mu.Lock()
	if s.keys == nil {
		s.keys = map[string]time.Time{}
	}
	if len(s.keys) >= maxRepairs {
		s.mu.Unlock()
		return // the TTL bounds what this key's older copy can do
	}
	s.keys[k] = time.Now().Add(c.ttl)
	s.waiting.Store(int32(len(s.keys))) //nolint:gosec // at most maxRepairs
	s.mu.Unlock()
	c.tend(s)
}

// tend starts s's goroutine unless it runs. Every retryEvery it tries the
// keys waiting for a tombstone on s (in random order, stopping at the first
// failure, so that a hung memcached costs one timeout per interval whatever
// the number of keys) and, while s's breaker is not closed, counts that as an
// attempt on s, pinging s when no key waits. It ends when no key
// waits and the breaker is closed.
func (c *Cache) tend(s *server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return
	}
	s.running = true
	go c.tendLoop(s)
}

func (c *Cache) tendLoop(s *server) {
	ticks := c.testTicks
	if ticks == nil {
		tick := time.NewTicker(c.every)
		defer tick.Stop()
		ticks = tick.C
	}
	for {
		select {
		case <-ticks:
		case <-c.stop:
			s.mu.Lock()
			s.running = false
			s.mu.Unlock()
			return
		}
		keys, closed, more := s.due(time.Now())
		if !more {
			return
		}
		b := c.budget(context.Background(), s)
		b.attempt = !closed
		ok := c.setTombstones(b, s, keys)
		if closed {
			continue
		}
		if ok && len(keys) == 0 {
			ok = c.ping(b, s) == nil
		}
		c.attempted(s, ok)
	}
}

// due returns the keys waiting on s, forgetting those past their time, and
// whether s's breaker is closed. When no key waits and the breaker is
// closed, it marks tend's goroutine stopped and returns more false.
func (s *server) due(now time.Time) (keys []string, closed, more bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, end := range s.keys { // random order
		if now.After(end) {
			delete(s.keys, k)
		} else {
			keys = append(keys, k)
		}
	}
	s.waiting.Store(int32(len(s.keys))) //nolint:gosec // at most maxRepairs
	closed = s.closed()
	if len(keys) == 0 && closed {
		s.running = false
		return nil, true, false
	}
	return keys, closed, true
}

// setTombstones sets a tombstone on each of keys, keys of s, and reports
// whether memcached took them all. It stops at the first failure. A server
// that refuses connections is not running: it will start empty, so it owes
// no tombstone any more.
func (c *Cache) setTombstones(b *budget, s *server, keys []string) bool {
	for _, k := range keys {
		err := c.tombstone(b, k)
		if err != nil && refused(err) {
			s.mu.Lock()
			clear(s.keys)
			s.waiting.Store(0)
			s.mu.Unlock()
			return false
		}
		if err != nil {
			return false // still unavailable: the next interval tries again
		}
		s.done(k)
	}
	return true
}

// refused reports whether err says memcached is not running: it then holds
// nothing, and starts empty.
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
