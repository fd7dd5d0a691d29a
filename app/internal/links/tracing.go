package links

import (
	"context"
	"errors"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/gok8s/gok8s/app/internal/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ResultKey is the attribute of a memcached span that says what memcached
// answered: hit or miss for a get; stored, not_stored or exists (a cas that
// lost) for add, set and cas; error when the call failed or timed out.
const ResultKey = attribute.Key("memcached.result")

// cacheTracing is what a Cache needs to trace its memcached calls.
// gomemcache has no instrumentation of its own.
type cacheTracing struct {
	tracer trace.Tracer // nil: no spans
}

// WithTracerProvider makes the Cache record each memcached call it makes for
// a traced request (get, add, cas, set, version) as a client span, child of the
// request's span (default: no spans). A span is named by the operation and
// carries db.system.name=memcached, db.operation.name, server.address and
// server.port of the key's server, and [ResultKey]; a failed call sets the
// span's status and error.type. Calls outside a recording span (the
// tombstone retries) and calls the request's cache time no longer allows get
// no span.
func WithTracerProvider(tp trace.TracerProvider) CacheOption {
	return func(c *Cache) { c.tracing.tracer = tp.Tracer("github.com/gok8s/gok8s/app/internal/links") }
}

// startSpan starts the span of memcached operation op on the server at addr,
// or returns nil when ctx's span is not recording or tracing is off.
func (c *Cache) startSpan(ctx context.Context, op, addr string) trace.Span {
	if c.tracing.tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return nil
	}
	host, port := tracing.HostPort(addr) // a Unix socket: the path, no port
	attrs := []attribute.KeyValue{semconv.DBSystemNameMemcached, semconv.DBOperationName(op), semconv.ServerAddress(host)}
	if port > 0 {
		attrs = append(attrs, semconv.ServerPort(port))
	}
	_, span := c.tracing.tracer.Start(ctx, op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return span
}

// endSpan ends span (nil: none) of operation op, which returned err.
func endSpan(span trace.Span, op string, err error) {
	if span == nil {
		return
	}
	result := "error"
	switch {
	case err == nil && op == OpGet:
		result = "hit"
	case err == nil:
		result = "stored"
	case errors.Is(err, memcache.ErrCacheMiss) && op == OpGet:
		result = "miss"
	case errors.Is(err, memcache.ErrNotStored), errors.Is(err, memcache.ErrCacheMiss):
		result = "not_stored"
	case errors.Is(err, memcache.ErrCASConflict):
		result = "exists"
	}
	span.SetAttributes(ResultKey.String(result))
	if result == "error" {
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
	}
	span.End()
}

// errorType is the error.type of a failed memcached call.
func errorType(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case refused(err):
		return "connection_refused"
	case errors.Is(err, memcache.ErrMalformedKey):
		return "malformed_key"
	}
	return semconv.ErrorTypeOther.Value.AsString()
}
