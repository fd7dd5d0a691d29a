package tracing

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Handler returns a [http.Handler] that serves each request through h inside
// a server span (otelhttp): the span continues the trace of an incoming W3C
// traceparent (and tracestate), the request's context carries its baggage,
// and the span's attributes follow the HTTP semantic conventions (the path
// without the query). The span is named by the method alone until [Tracing.Route]
// names it by the route. When tracing is off, Handler returns h.
//
// Mount it behind middleware.Probes, so that probes create no span.
func (t *Tracing) Handler(h http.Handler) http.Handler {
	if !t.Enabled() {
		return h
	}
	return otelhttp.NewHandler(h, "http", otelhttp.WithTracerProvider(t.provider),
		otelhttp.WithPropagators(t.propagator), // The app has its own HTTP metrics (gok8s_http_*); no global meter provider.
		otelhttp.WithMeterProvider(noop.NewMeterProvider()))
}

// Route returns a [http.Handler] that calls mux and then names the request's
// server span after the pattern that matched: "GET /{slug}", "POST
// /api/links", never the raw path, and sets http.route. The method is the
// request's ("HEAD /{slug}" for a HEAD served by "GET /{slug}"), or HTTP for
// a method outside RFC 9110. mux must hand the request it gets to the
// [http.ServeMux] that routes it, which records the pattern there. When
// tracing is off, Route returns mux.
func (t *Tracing) Route(mux http.Handler) http.Handler {
	if !t.Enabled() {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if r.Pattern == "" {
			return
		}
		span := trace.SpanFromContext(r.Context())
		if !span.IsRecording() {
			return
		}
		route := r.Pattern
		if _, rest, ok := strings.Cut(route, " "); ok {
			route = strings.TrimLeft(rest, " \t")
		}
		span.SetName(method(r.Method) + " " + route)
		span.SetAttributes(semconv.HTTPRoute(route))
	})
}

// method returns m if it is one of the methods of RFC 9110 and RFC 5789, else
// "HTTP", as the semantic conventions name a span for an unknown method.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "HTTP"
}
