package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	linksv1 "github.com/gok8s/gok8s/api/links/v1"
	"github.com/gok8s/gok8s/grpchealth"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/gok8s/gok8s/app/internal/links"
	"github.com/gok8s/gok8s/app/internal/metrics"
	"github.com/gok8s/gok8s/app/internal/tracing"
	"github.com/gok8s/gok8s/probes"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// offTracing returns tracing that is off, whatever OTEL_* the environment has.
func offTracing(t *testing.T) *tracing.Tracing {
	t.Helper()
	t.Setenv("OTEL_SDK_DISABLED", "true")
	tr, err := tracing.New(t.Context(), "test", prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || tr.Enabled() {
		t.Fatalf("tracing.New with OTEL_SDK_DISABLED=true: enabled %v, %v", tr.Enabled(), err)
	}
	return tr
}

// TestAPIHandlerTracing: through the service's real handler stack, probes
// create no span; an API request continues the incoming traceparent in one
// server span named by its route; its access-log line carries the trace and
// span IDs; and the HTTP duration histogram carries the trace ID as an
// exemplar in the OpenMetrics format.
func TestAPIHandlerTracing(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	tr, err := tracing.New(t.Context(), "test", reg, slog.New(slog.NewTextHandler(io.Discard, nil)), tracing.WithSpanExporter(exp))
	if err != nil {
		t.Fatal(err)
	}
	ready, err := probes.NewReadiness(nil)
	if err != nil {
		t.Fatal(err)
	}
	ready.MarkStarted()
	log := tr.Logger(slog.New(slog.NewJSONHandler(&logs, nil)))
	h := apiHandler(ready, links.NewService(oneLink{}, log), reg, log, apiLimits{maxBody: 1 << 20, read: time.Minute, write: time.Minute}, tr)

	for _, path := range []string{"/livez", "/readyz", "/readyz?verbose", "/healthz", "/readyz/ping"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	if err := tr.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(exp.GetSpans()); n != 0 || logs.Len() != 0 {
		t.Fatalf("probes made %d spans and logged %q", n, logs.String())
	}

	const traceID, parentID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	r := httptest.NewRequest("GET", "/go?utm=x", nil)
	r.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	r.Header.Set("tracestate", "vendor=opaque")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 302 {
		t.Fatalf("GET /go: %d", w.Code)
	}
	if err := tr.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1: %v", len(spans), spans)
	}
	s := spans[0]
	if s.Name != "GET /{slug}" || s.SpanContext.TraceID().String() != traceID || s.Parent.SpanID().String() != parentID || !s.Parent.IsRemote() {
		t.Errorf("span %q in trace %s, parent %s; want GET /{slug} in %s, parent %s", s.Name, s.SpanContext.TraceID(), s.Parent.SpanID(), traceID, parentID)
	}
	if got := s.SpanContext.TraceState().String(); got != "vendor=opaque" {
		t.Errorf("tracestate %q, want vendor=opaque", got)
	}

	var line struct{ Msg, Path, TraceID, SpanID string }
	for l := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		if m["msg"] == "http request" {
			line.Path, _ = m["path"].(string)
			line.TraceID, _ = m["trace_id"].(string)
			line.SpanID, _ = m["span_id"].(string)
		}
	}
	if line.Path != "/go" || line.TraceID != traceID || line.SpanID != s.SpanContext.SpanID().String() {
		t.Errorf("access log: path %q trace_id %q span_id %q; want /go, %s, %s\n%s", line.Path, line.TraceID, line.SpanID, traceID, s.SpanContext.SpanID(), logs.String())
	}

	scrape := httptest.NewRequest("GET", "/metrics", nil)
	scrape.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	admin := httptest.NewRecorder()
	metrics.AdminHandler(reg, nil).ServeHTTP(admin, scrape)
	if !strings.Contains(admin.Header().Get("Content-Type"), "openmetrics") {
		t.Fatalf("/metrics answered %q to an OpenMetrics scrape", admin.Header().Get("Content-Type"))
	}
	var exemplar string
	for l := range strings.SplitSeq(admin.Body.String(), "\n") {
		if strings.HasPrefix(l, `gok8s_http_request_duration_seconds_bucket{method="GET",route="/{slug}"`) && strings.Contains(l, " # ") {
			exemplar = l
		}
	}
	if !strings.Contains(exemplar, `# {trace_id="`+traceID+`"}`) {
		t.Errorf("no exemplar with the trace ID on the duration histogram:\n%s", admin.Body.String())
	}
}

// TestAPIHandlerTracingOff: with tracing off, log lines carry no trace IDs
// and the histogram no exemplar, even for a request with a traceparent.
func TestAPIHandlerTracingOff(t *testing.T) {
	tr := offTracing(t)
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	ready, err := probes.NewReadiness(nil)
	if err != nil {
		t.Fatal(err)
	}
	ready.MarkStarted()
	log := tr.Logger(slog.New(slog.NewJSONHandler(&logs, nil)))
	h := apiHandler(ready, links.NewService(oneLink{}, log), reg, log, apiLimits{maxBody: 1 << 20, read: time.Minute, write: time.Minute}, tr)
	r := httptest.NewRequest("GET", "/go", nil)
	r.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if strings.Contains(logs.String(), "trace_id") || !strings.Contains(logs.String(), "http request") {
		t.Errorf("log with tracing off: %s", logs.String())
	}
	scrape := httptest.NewRequest("GET", "/metrics", nil)
	scrape.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	admin := httptest.NewRecorder()
	metrics.AdminHandler(reg, nil).ServeHTTP(admin, scrape)
	if strings.Contains(admin.Body.String(), "trace_id") {
		t.Errorf("exemplar with tracing off:\n%s", admin.Body.String())
	}
}

// TestGRPCTracing: through the app's real gRPC server, a links RPC whose
// metadata carries a traceparent is one server span in that trace, named by
// the method, with its log lines carrying the trace ID; the health service's
// RPCs (the kubelet's probes) make no span.
func TestGRPCTracing(t *testing.T) {
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	exp := tracetest.NewInMemoryExporter()
	tr, err := tracing.New(t.Context(), "test", prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)), tracing.WithSpanExporter(exp))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := tr.Logger(slog.New(slog.NewJSONHandler(&logs, nil)))
	ready, err := probes.NewReadiness(nil)
	if err != nil {
		t.Fatal(err)
	}
	ready.MarkStarted()
	srv := newGRPCServer(cfg, links.NewService(oneLink{}, log), grpchealth.NewServer(ready), prometheus.NewRegistry(), log, tr)
	conn := serveBufconn(t, srv)

	const traceID, parentID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	ctx := metadata.AppendToOutgoingContext(t.Context(), "traceparent", "00-"+traceID+"-"+parentID+"-01")
	for range 3 {
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "readiness"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := linksv1.NewLinkServiceClient(conn).GetLink(ctx, &linksv1.GetLinkRequest{Slug: "go"}); err != nil {
		t.Fatal(err)
	}
	// otelgrpc ends a server span after the response has left, so the client
	// may have it first: GracefulStop returns once every RPC has finished.
	_ = conn.Close()
	srv.GracefulStop()
	if err := tr.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1 (the links RPC, not the health checks): %v", len(spans), spans)
	}
	s := spans[0]
	if s.Name != "links.v1.LinkService/GetLink" || s.SpanContext.TraceID().String() != traceID || s.Parent.SpanID().String() != parentID {
		t.Errorf("span %q in trace %s, parent %s; want links.v1.LinkService/GetLink in %s, parent %s", s.Name, s.SpanContext.TraceID(), s.Parent.SpanID(), traceID, parentID)
	}
	if !strings.Contains(logs.String(), `"trace_id":"`+traceID+`"`) {
		t.Errorf("no log line of the RPC carries its trace ID:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer the server's goroutines may write to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
