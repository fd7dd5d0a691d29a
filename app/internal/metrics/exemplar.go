package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// An HTTPOption changes a default of [HTTPHandler].
type HTTPOption func(*httpHandler)

// WithExemplars makes [HTTPHandler] attach an exemplar, {trace_id="…"}, to
// each observation of gok8s_http_request_duration_seconds for which traceID
// returns an ID from the request's context (default: no exemplars). Exemplars
// reach a scraper that asks for the OpenMetrics format, as Prometheus does;
// [AdminHandler] offers it. Each bucket keeps its latest exemplar.
func WithExemplars(traceID func(ctx context.Context) string) HTTPOption {
	return func(m *httpHandler) { m.traceID = traceID }
}

// observe records v in o, with an exemplar when ctx has a trace ID to give.
func (m *httpHandler) observe(ctx context.Context, o prometheus.Observer, v float64) {
	if m.traceID != nil {
		if id := m.traceID(ctx); id != "" {
			if eo, ok := o.(prometheus.ExemplarObserver); ok {
				eo.ObserveWithExemplar(v, prometheus.Labels{"trace_id": id})
				return
			}
		}
	}
	o.Observe(v)
}
