package tracing

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Logger returns log with every record written inside a span carrying that
// span's trace_id and span_id attributes, when tracing is on; otherwise it
// returns log. Records must be written with their request's context
// (InfoContext, LogAttrs(ctx, …)) to carry the IDs.
func (t *Tracing) Logger(log *slog.Logger) *slog.Logger {
	if !t.Enabled() {
		return log
	}
	return slog.New(logHandler{log.Handler()})
}

// logHandler adds the trace and span IDs of the record's context.
type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{h.Handler.WithGroup(name)}
}

// TraceID returns the trace ID of ctx's span if it is sampled, else "": the
// exemplar of a metric observed while serving a request, which points to a
// trace the receiver has.
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
		return sc.TraceID().String()
	}
	return ""
}
