package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// FlushTimeout is the longest [Tracing.Shutdown] waits for the last spans to
// be exported.
const FlushTimeout = 5 * time.Second

// A Variable is an environment variable the OpenTelemetry SDK reads for New.
type Variable struct {
	Name, Default, Description string
}

// Variables returns the OTEL_* environment variables that configure tracing,
// for `app help`. The SDK and autoexport read them; the app does not parse
// them, except to tell whether any exporter is configured at all.
func Variables() []Variable {
	return []Variable{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP receiver (http://host:4318, or :4317 with grpc); setting it turns tracing on"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "the same for traces only, the full URL (http://host:4318/v1/traces)"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "http/protobuf or grpc"},
		{"OTEL_EXPORTER_OTLP_TIMEOUT", "10000", "milliseconds one export may take"},
		{"OTEL_TRACES_EXPORTER", "", "otlp, console or none; empty: otlp if an endpoint is set, else no tracing"},
		{"OTEL_SERVICE_NAME", "gok8s", "service.name of the spans"},
		{"OTEL_RESOURCE_ATTRIBUTES", "", "more resource attributes, key=value,key=value (the manifests add the pod, namespace and node)"},
		{"OTEL_TRACES_SAMPLER", "parentbased_always_on", "always_on, always_off, traceidratio, parentbased_traceidratio, ..."},
		{"OTEL_TRACES_SAMPLER_ARG", "", "the sampler's argument: the ratio for the traceidratio samplers"},
		{"OTEL_BSP_MAX_QUEUE_SIZE", "2048", "spans waiting for export; more are dropped and counted"},
		{"OTEL_SDK_DISABLED", "false", "true: no tracing, whatever else is set"},
	}
}

// Tracing is the app's tracing: a tracer provider and what it installs in
// the request path. Its zero value is not usable; call New.
type Tracing struct {
	provider   trace.TracerProvider
	sdk        *sdktrace.TracerProvider // nil when off
	propagator propagation.TextMapPropagator
	queue      *queue
}

// An Option changes a default of New.
type Option func(*options)

type options struct {
	exporter sdktrace.SpanExporter
}

// WithSpanExporter makes New export to e instead of the exporter the
// environment names, and turns tracing on whatever the environment says but
// OTEL_SDK_DISABLED: for tests and benchmarks.
func WithSpanExporter(e sdktrace.SpanExporter) Option {
	return func(o *options) { o.exporter = e }
}

// New returns the tracing the OTEL_* environment variables describe, for the
// service version version. It registers in reg the series
// gok8s_trace_spans_exported_total, gok8s_trace_spans_dropped_total{reason}
// (reason queue_full or export_failed) and gok8s_trace_spans_queued, and logs
// failed exports to log (the first of a run at WARN, then at DEBUG). It
// returns an error for a variable the SDK cannot use, such as an unknown
// OTEL_TRACES_EXPORTER.
func New(ctx context.Context, version string, reg prometheus.Registerer, log *slog.Logger, opts ...Option) (*Tracing, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	size := queueSize()
	t := &Tracing{
		provider:   tracenoop.NewTracerProvider(),
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		queue:      newQueue(reg, size, log),
	}
	if disabled, _ := strconv.ParseBool(os.Getenv("OTEL_SDK_DISABLED")); disabled {
		return t, nil
	}
	exp := o.exporter
	if exp == nil {
		if !configured() {
			return t, nil
		}
		var err error
		if exp, err = autoexport.NewSpanExporter(ctx); err != nil {
			return nil, fmt.Errorf("tracing: OTEL_TRACES_EXPORTER or OTEL_EXPORTER_OTLP_*: %w", err)
		}
		if autoexport.IsNoneSpanExporter(exp) {
			return t, nil
		}
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("gok8s"), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	// The queue's own bound and the batch processor's are the same, so that
	// the batch processor never drops a span the queue did not count.
	bsp := sdktrace.NewBatchSpanProcessor(t.queue.exporter(exp), sdktrace.WithMaxQueueSize(size))
	t.sdk = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSpanProcessor(t.queue.processor(bsp)))
	t.provider = t.sdk
	return t, nil
}

// configured reports whether the environment names a trace exporter or an
// OTLP endpoint. Without one autoexport would send to localhost:4318; the
// app traces nothing instead.
func configured() bool {
	for _, name := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if strings.TrimSpace(os.Getenv(name)) != "" {
			return true
		}
	}
	return false
}

// queueSize returns the batch processor's queue bound as the SDK reads it:
// OTEL_BSP_MAX_QUEUE_SIZE, or 2048 when it is unset or not a positive number.
func queueSize() int {
	n, err := strconv.Atoi(os.Getenv("OTEL_BSP_MAX_QUEUE_SIZE"))
	if err != nil || n < 1 {
		return sdktrace.DefaultMaxQueueSize
	}
	return n
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t.sdk != nil }

// TracerProvider returns the tracer provider: the SDK's, or a no-op one when
// tracing is off.
func (t *Tracing) TracerProvider() trace.TracerProvider { return t.provider }

// PgxTracer returns a pgx tracer that records each SQL statement of a traced
// request as one client span (otelpgx: the statement with its $n
// placeholders, never the parameter values), or nil when tracing is off.
// Statements run outside a traced request (readiness pings, migrations) get
// no span.
func (t *Tracing) PgxTracer() pgx.QueryTracer {
	if !t.Enabled() {
		return nil
	}
	return queryTracer{otelpgx.NewTracer(otelpgx.WithTracerProvider(t.provider), otelpgx.WithMeterProvider(noop.NewMeterProvider()))}
}

// queryTracer shows pgx only otelpgx's query hooks. pgx also calls the
// prepare, connect and pool-acquire hooks of a tracer that has them, which
// would give a statement a second span (its preparation, on the first use on
// each connection) and a request spans for the pool's bookkeeping.
type queryTracer struct{ pgx.QueryTracer }

// ForceFlush exports the spans that have ended and waits until they are
// exported or ctx ends.
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	return t.sdk.ForceFlush(ctx)
}

// Shutdown exports the spans that have ended and stops the exporter, within
// FlushTimeout or ctx's deadline, whichever comes first. Spans that end later
// are not exported.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, FlushTimeout)
	defer cancel()
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}
