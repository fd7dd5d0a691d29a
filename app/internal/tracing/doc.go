// Package tracing gives the app OpenTelemetry traces: a server span for each
// API request, named by its route, with the request's memcached calls and SQL
// statements as children, exported over OTLP.
//
// Configuration comes only from the standard OTEL_* environment variables,
// read by the OpenTelemetry SDK and its autoexport package (see [Variables]):
// with none of OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT and
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set, or with OTEL_SDK_DISABLED=true,
// [New] returns a Tracing that is off: a no-op tracer provider, and handlers
// and loggers handed back unchanged, so that tracing costs nothing.
//
// Exporting never holds up a request: ended spans wait in a bounded queue
// (OTEL_BSP_MAX_QUEUE_SIZE, 2048 by default) for the batch exporter, a span
// that finds it full is dropped, and drops and failed exports are counted in
// gok8s_trace_spans_dropped_total. Nothing here sets a global: the tracer
// provider is passed to what uses it.
package tracing
