package links

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// A budget is one request's time in memcached, on the server s of its key:
// one timeout in all. Once a call has used it up, or s's breaker has skipped
// one, the request makes no more calls.
type budget struct {
	c        *Cache
	s        *server
	ctx      context.Context
	deadline time.Time
	spent    bool
	attempt  bool // a breaker's attempt: calls s whatever its breaker says
}

func (c *Cache) budget(ctx context.Context, s *server) *budget {
	return &budget{c: c, s: s, ctx: ctx, deadline: time.Now().Add(c.timeout)}
}

// errSpent is the error of a call made after the budget ran out.
var errSpent = errors.New("links: memcached: the request's cache time is spent")

// call runs f, memcached operation op, within b, and notes its outcome (and
// traces it: see WithTracerProvider). The call is left to finish by itself
// (within the client's timeout) if the budget runs out or the request ends
// first. While the server's breaker is not closed, a request's call is
// skipped: it returns errSkipped at once.
func call[T any](b *budget, op string, f func() (T, error)) (T, error) {
	var zero T
	if b.spent || !time.Now().Before(b.deadline) {
		b.spent = true
		return zero, errSpent
	}
	if !b.attempt && !b.s.closed() {
		b.spent = true
		b.c.skipped(b.s, SkipBreaker)
		return zero, errSkipped
	}
	ctx, cancel := context.WithDeadline(b.ctx, b.deadline)
	defer cancel()
	span := b.c.startSpan(b.ctx, op, b.s.addr)
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
	endSpan(span, op, r.err)
	if r.err != nil && (errors.Is(r.err, context.DeadlineExceeded) || errors.Is(r.err, os.ErrDeadlineExceeded) || isTimeout(r.err)) {
		b.spent = true
	}
	if b.ctx.Err() == nil { // a request that ended is no news about memcached
		b.c.note(b.ctx, b.s, op, r.err)
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

// note tells s's breaker the outcome of a memcached call op, and logs it when
// it changes s's state. A miss, a lost add or cas, and a key memcached cannot
// take are answers, not outages.
func (c *Cache) note(ctx context.Context, s *server, op string, err error) {
	c.count(op, err)
	switch {
	case err == nil, errors.Is(err, memcache.ErrCacheMiss), errors.Is(err, memcache.ErrNotStored),
		errors.Is(err, memcache.ErrCASConflict):
		c.answered(s)
		if s.down.Load() && s.down.Swap(false) {
			c.log.InfoContext(ctx, "links: cache available again", "server", s.addr)
		}
	case errors.Is(err, memcache.ErrMalformedKey):
		c.log.DebugContext(ctx, "links: key memcached cannot take", "op", op)
	default:
		level := slog.LevelDebug
		if !s.down.Swap(true) {
			level = slog.LevelWarn
		}
		c.log.Log(ctx, level, "links: cache unavailable, using the database", "server", s.addr, "op", op, "error", err.Error())
		c.failed(s)
	}
}
