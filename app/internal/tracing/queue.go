package tracing

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// queue bounds and counts the spans between their end and their export.
//
// The SDK's batch span processor drops a span that finds its queue full but
// keeps the count to itself, so the queue stands in front of it with the same
// bound: a sampled span that ends while size spans are still waiting or being
// exported is dropped here, without blocking, and counted; otherwise it goes
// on to the batch processor, which therefore never drops one itself. The
// exporter wrapper takes each batch off the count once its export returns,
// and counts the spans of a failed export as dropped too.
type queue struct {
	size    int64
	pending atomic.Int64 // spans passed on and not yet exported
	failing atomic.Bool  // the last export failed
	log     *slog.Logger

	exported, queueFull, exportFailed prometheus.Counter
}

func newQueue(reg prometheus.Registerer, size int, log *slog.Logger) *queue {
	q := &queue{size: int64(size), log: log}
	q.exported = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gok8s_trace_spans_exported_total",
		Help: "Spans the trace exporter delivered.",
	})
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gok8s_trace_spans_dropped_total",
		Help: "Sampled spans never delivered: queue_full (the export queue was full when the span ended), export_failed (the receiver refused or did not answer in time).",
	}, []string{"reason"})
	q.queueFull, q.exportFailed = dropped.WithLabelValues("queue_full"), dropped.WithLabelValues("export_failed")
	queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gok8s_trace_spans_queued",
		Help: "Spans ended and waiting for, or in, an export; at most OTEL_BSP_MAX_QUEUE_SIZE.",
	}, func() float64 { return float64(q.pending.Load()) })
	reg.MustRegister(q.exported, dropped, queued)
	return q
}

// processor returns a SpanProcessor that passes sampled spans on to next
// while the queue has room, and drops and counts them when it has none.
func (q *queue) processor(next sdktrace.SpanProcessor) sdktrace.SpanProcessor {
	return &gate{SpanProcessor: next, q: q}
}

// exporter returns a SpanExporter that exports through next and counts the
// outcome. A failed export is counted and logged here and reported to the
// batch processor as done: it drops the batch either way.
func (q *queue) exporter(next sdktrace.SpanExporter) sdktrace.SpanExporter {
	return &countingExporter{SpanExporter: next, q: q}
}

type gate struct {
	sdktrace.SpanProcessor
	q *queue
}

func (g *gate) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return // the batch processor would ignore it too
	}
	if g.q.pending.Add(1) > g.q.size {
		g.q.pending.Add(-1)
		g.q.queueFull.Inc()
		return
	}
	g.SpanProcessor.OnEnd(s)
}

type countingExporter struct {
	sdktrace.SpanExporter
	q *queue
}

func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	q, n := e.q, len(spans)
	q.pending.Add(-int64(n))
	if err == nil {
		q.exported.Add(float64(n))
		if q.failing.Swap(false) {
			q.log.InfoContext(ctx, "tracing: exporting spans again")
		}
		return nil
	}
	q.exportFailed.Add(float64(n))
	level := slog.LevelDebug
	if !q.failing.Swap(true) {
		level = slog.LevelWarn
	}
	q.log.Log(ctx, level, "tracing: export failed, spans dropped (counted in gok8s_trace_spans_dropped_total)", "spans", n, "error", err.Error())
	return nil
}
