package tracing_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/gok8s/gok8s/app/internal/tracing"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// ExampleTracing_Handler traces a mux: the server span continues the
// caller's trace and is named by the route that matched.
func ExampleTracing_Handler() {
	exp := tracetest.NewInMemoryExporter() // in a service: the OTEL_* variables name the exporter
	tr, err := tracing.New(context.Background(), "v1.0.0", prometheus.NewRegistry(),
		slog.New(slog.NewTextHandler(io.Discard, nil)), tracing.WithSpanExporter(exp))
	if err != nil {
		panic(err)
	}
	defer tr.Shutdown(context.Background())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{slug}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://go.dev", http.StatusFound)
	})
	h := tr.Handler(tr.Route(mux))

	r := httptest.NewRequest("GET", "/go", nil)
	r.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	h.ServeHTTP(httptest.NewRecorder(), r)
	_ = tr.ForceFlush(context.Background())

	for _, s := range exp.GetSpans() {
		fmt.Println(s.Name, s.SpanContext.TraceID(), s.Parent.SpanID())
	}
	// Output: GET /{slug} 0af7651916cd43dd8448eb211c80319c b7ad6b7169203331
}
