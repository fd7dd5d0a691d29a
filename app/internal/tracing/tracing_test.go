package tracing

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// clearEnv unsets every variable New reads, for the duration of t.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, v := range Variables() {
		t.Setenv(v.Name, "")
	}
}

// TestNewFromEnvironment: tracing is on only when the environment names an
// exporter or an OTLP endpoint, and OTEL_SDK_DISABLED or the "none" exporter
// turn it off; an exporter the SDK does not know is an error.
func TestNewFromEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		enabled bool
		err     string
	}{
		{"nothing set", nil, false, ""},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, ""},
		{"traces endpoint, grpc", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, ""},
		{"console", map[string]string{"OTEL_TRACES_EXPORTER": "console"}, true, ""},
		{"none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, false, ""},
		{"disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, false, ""},
		{"unknown exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin2"}, false, "OTEL_TRACES_EXPORTER"},
		{"unknown protocol", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, false, "protocol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			tr, err := New(t.Context(), "v1", prometheus.NewRegistry(), discard())
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one naming %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Shutdown(context.Background())
			if tr.Enabled() != tt.enabled {
				t.Errorf("Enabled() = %v, want %v", tr.Enabled(), tt.enabled)
			}
			if !tt.enabled && (tr.PgxTracer() != nil || tr.Handler(http.NotFoundHandler()) == nil) {
				t.Error("tracing off installs a pgx tracer")
			}
		})
	}
}

// TestResource: service.name defaults to gok8s and service.version to the
// build's; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the pod, namespace
// and node in Kubernetes) are added by the SDK.
func TestResource(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want map[string]string
	}{
		{nil, map[string]string{"service.name": "gok8s", "service.version": "v1.2.3", "telemetry.sdk.language": "go"}},
		{map[string]string{"OTEL_SERVICE_NAME": "orders", "OTEL_RESOURCE_ATTRIBUTES": "k8s.pod.name=gok8s-abc,k8s.namespace.name=gok8s,k8s.node.name=worker"},
			map[string]string{"service.name": "orders", "service.version": "v1.2.3", "k8s.pod.name": "gok8s-abc", "k8s.namespace.name": "gok8s", "k8s.node.name": "worker"}},
	} {
		clearEnv(t)
		for k, v := range tt.env {
			t.Setenv(k, v)
		}
		exp := tracetest.NewInMemoryExporter()
		tr, err := New(t.Context(), "v1.2.3", prometheus.NewRegistry(), discard(), WithSpanExporter(exp))
		if err != nil {
			t.Fatal(err)
		}
		_, span := tr.TracerProvider().Tracer("test").Start(t.Context(), "x")
		span.End()
		if err := tr.ForceFlush(t.Context()); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, kv := range exp.GetSpans()[0].Resource.Attributes() {
			got[string(kv.Key)] = kv.Value.String()
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("env %v: resource %s = %q, want %q", tt.env, k, got[k], v)
			}
		}
		_ = tr.Shutdown(t.Context())
	}
}

// blockingExporter blocks each export until released, as a receiver that
// does not answer does; then it fails or succeeds.
type blockingExporter struct {
	release chan struct{}
	fail    error
	mu      sync.Mutex
	spans   int
}

func (e *blockingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	select {
	case <-e.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	e.mu.Lock()
	e.spans += len(spans)
	e.mu.Unlock()
	return e.fail
}

func (e *blockingExporter) Shutdown(context.Context) error { return nil }

// TestQueueDropsAndCounts: with the receiver hung, ending spans never blocks;
// spans beyond OTEL_BSP_MAX_QUEUE_SIZE are dropped and counted as
// queue_full, the spans of a failed export as export_failed, and every
// sampled span is accounted for once.
func TestQueueDropsAndCounts(t *testing.T) {
	clearEnv(t)
	t.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "10")
	exp := &blockingExporter{release: make(chan struct{}), fail: io.ErrUnexpectedEOF}
	reg := prometheus.NewRegistry()
	tr, err := New(t.Context(), "v1", reg, discard(), WithSpanExporter(exp))
	if err != nil {
		t.Fatal(err)
	}
	tracer := tr.TracerProvider().Tracer("test")
	const n = 1000
	start := time.Now()
	for range n {
		_, span := tracer.Start(t.Context(), "x")
		span.End()
	}
	took := time.Since(start)
	t.Logf("%d spans ended in %s with the exporter hung", n, took)
	if took > 5*time.Second {
		t.Errorf("ending %d spans took %s: the queue blocks", n, took)
	}
	full := testutil.ToFloat64(tr.queue.queueFull)
	if full < n-100 {
		t.Errorf("queue_full = %g, want at least %d", full, n-100)
	}
	if q := gauge(t, reg, "gok8s_trace_spans_queued"); q != 100 {
		t.Errorf("gok8s_trace_spans_queued = %g, want 100", q)
	}
	close(exp.release) // the receiver answers, with an error
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	failed := testutil.ToFloat64(tr.queue.exportFailed)
	if failed+full != n || testutil.ToFloat64(tr.queue.exported) != 0 {
		t.Errorf("queue_full %g + export_failed %g, exported %g; want %d dropped, 0 exported", full, failed, testutil.ToFloat64(tr.queue.exported), n)
	}
}

// gauge returns the value of reg's gauge name.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s in the registry", name)
	return 0
}

// TestShutdownBounded: with the receiver hung, Shutdown returns by ctx's
// deadline.
func TestShutdownBounded(t *testing.T) {
	clearEnv(t)
	exp := &blockingExporter{release: make(chan struct{})}
	tr, err := New(t.Context(), "v1", prometheus.NewRegistry(), discard(), WithSpanExporter(exp))
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.TracerProvider().Tracer("test").Start(t.Context(), "x")
	span.End()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = tr.Shutdown(ctx)
	took := time.Since(start)
	t.Logf("Shutdown with a hung receiver: %v after %s", err, took)
	if err == nil || took > 3*time.Second {
		t.Errorf("Shutdown = %v after %s; want a deadline error after about 300ms", err, took)
	}
	close(exp.release)
}

// TestHandlerPropagation: the server span continues traceparent, and the
// handler sees the incoming baggage in its context; Route names the span by
// the mux pattern and an unknown method as HTTP.
func TestHandlerPropagation(t *testing.T) {
	tr, exp := inMemory(t)
	var member string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		member = baggage.FromContext(r.Context()).Member("tenant").Value()
	})
	mux.HandleFunc("/things", func(w http.ResponseWriter, r *http.Request) {})
	h := tr.Handler(tr.Route(mux))

	for _, tt := range []struct{ method, path, name string }{
		{"GET", "/things/42", "GET /things/{id}"},
		{"HEAD", "/things/42", "HEAD /things/{id}"},
		{"BREW", "/things", "HTTP /things"},
		{"GET", "/nothing", "GET"}, // no pattern: the method alone, never the path
	} {
		exp.Reset()
		r := httptest.NewRequest(tt.method, tt.path, nil)
		r.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		r.Header.Set("baggage", "tenant=acme")
		h.ServeHTTP(httptest.NewRecorder(), r)
		if err := tr.ForceFlush(t.Context()); err != nil {
			t.Fatal(err)
		}
		spans := exp.GetSpans()
		if len(spans) != 1 || spans[0].Name != tt.name || spans[0].SpanContext.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" {
			t.Errorf("%s %s: spans %v, want one %q in the traceparent's trace", tt.method, tt.path, spans, tt.name)
		}
	}
	if member != "acme" {
		t.Errorf("baggage tenant = %q, want acme", member)
	}
}

// inMemory returns tracing that exports to an in-memory exporter, shut down
// when t ends.
func inMemory(t *testing.T) (*Tracing, *tracetest.InMemoryExporter) {
	t.Helper()
	clearEnv(t)
	exp := tracetest.NewInMemoryExporter()
	tr, err := New(t.Context(), "v1", prometheus.NewRegistry(), discard(), WithSpanExporter(exp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr, exp
}

// TestHandlerAttributes: a sampled request's server span carries the HTTP
// semantic conventions' attributes, the response's status, and an error
// status from 500 on only; a method outside RFC 9110 is _OTHER with the
// original beside it.
func TestHandlerAttributes(t *testing.T) {
	tr, exp := inMemory(t)
	h := tr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("status"))
		if code != 0 {
			w.WriteHeader(code)
		}
		_, _ = io.WriteString(w, "body")
	}))

	tests := []struct {
		name, method, target string
		want                 map[string]string // "-": absent
		error                bool
	}{
		{"ok", "GET", "http://links.example:8080/go?status=0", map[string]string{
			"http.request.method": "GET", "url.path": "/go", "url.scheme": "http", "server.address": "links.example",
			"server.port": "8080", "client.address": "192.0.2.1", "network.peer.port": "1234",
			"network.protocol.version": "1.1", "user_agent.original": "probe/1", "http.response.status_code": "200",
			"error.type": "-", "http.request.method_original": "-"}, false},
		{"redirect", "HEAD", "http://links.example/go?status=302", map[string]string{
			"http.request.method": "HEAD", "server.port": "-", "http.response.status_code": "302", "error.type": "-"}, false},
		{"client error", "GET", "/nope?status=404", map[string]string{"http.response.status_code": "404", "error.type": "-"}, false},
		{"server error", "POST", "/api/links?status=503", map[string]string{"http.response.status_code": "503", "error.type": "503"}, true},
		{"unknown method", "BREW", "/pot?status=418", map[string]string{
			"http.request.method": "_OTHER", "http.request.method_original": "BREW", "http.response.status_code": "418"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp.Reset()
			r := httptest.NewRequest(tt.method, tt.target, nil)
			r.RemoteAddr = "192.0.2.1:1234"
			r.Header.Set("User-Agent", "probe/1")
			h.ServeHTTP(httptest.NewRecorder(), r)
			if err := tr.ForceFlush(t.Context()); err != nil {
				t.Fatal(err)
			}
			spans := exp.GetSpans()
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1", len(spans))
			}
			got := map[string]string{}
			for _, kv := range spans[0].Attributes {
				got[string(kv.Key)] = kv.Value.String()
			}
			for k, v := range tt.want {
				if g, ok := got[k]; v == "-" && ok || v != "-" && g != v {
					t.Errorf("%s = %q (present %v), want %q", k, g, ok, v)
				}
			}
			if isErr := spans[0].Status.Code == codes.Error; isErr != tt.error {
				t.Errorf("status %v, want error %v", spans[0].Status, tt.error)
			}
		})
	}
}
