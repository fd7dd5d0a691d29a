package links

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// errorLog logs a Service's repository errors without a line per request
// during an outage. The first error of a kind (see errorKind) is logged with
// its text, at ERROR for an internal error and at WARN for an unavailable
// repository; the others are counted, logged at DEBUG, and summed up in one
// WARN line per interval while they go on. Once an interval passes without
// one, the next is logged at its level again.
type errorLog struct {
	log   *slog.Logger
	every time.Duration

	mu    sync.Mutex
	kinds map[string]int // kind → failures since the last line about it
}

func newErrorLog(log *slog.Logger, every time.Duration) *errorLog {
	return &errorLog{log: log, every: every, kinds: map[string]int{}}
}

// failed records a failed operation (create, get, …), logged as msg at level
// when it is the first of its kind.
func (e *errorLog) failed(ctx context.Context, level slog.Level, msg, op string, err error) {
	kind := errorKind(err)
	e.mu.Lock()
	n, seen := e.kinds[kind]
	if seen {
		e.kinds[kind] = n + 1
	} else {
		e.kinds[kind] = 0 // the ERROR line below is this one's
	}
	e.mu.Unlock()
	if seen {
		e.log.DebugContext(ctx, msg, "op", op, "kind", kind, "error", err.Error())
		return
	}
	e.log.Log(ctx, level, msg, "op", op, "kind", kind, "error", err.Error(),
		"note", "more failures of this kind are counted, one line per "+e.every.String())
	time.AfterFunc(e.every, func() { e.summarise(kind) })
}

// summarise logs how many failures of kind the last interval had, if any, and
// watches the next interval; after one without, it forgets the kind.
func (e *errorLog) summarise(kind string) {
	e.mu.Lock()
	n := e.kinds[kind]
	if n == 0 {
		delete(e.kinds, kind)
	} else {
		e.kinds[kind] = 0
	}
	e.mu.Unlock()
	if n == 0 {
		return
	}
	e.log.Warn("links: more requests failed", "kind", kind, "count", n, "interval", e.every.String())
	time.AfterFunc(e.every, func() { e.summarise(kind) })
}

// errorKind names the class of a repository error: a PostgreSQL error code, or
// a failure to connect, a timeout, another network error; "unavailable: "
// before it for an unavailable repository.
func errorKind(err error) string {
	if errors.Is(err, ErrUnavailable) {
		return "unavailable: " + causeKind(err)
	}
	return causeKind(err)
}

func causeKind(err error) string {
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		return "sqlstate " + pe.Code
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return "connect"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return "network"
	}
	return "other"
}
