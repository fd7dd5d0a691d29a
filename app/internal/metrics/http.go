package metrics

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gok8s/gok8s/app/internal/recorder"
	"github.com/prometheus/client_golang/prometheus"
)

// Unmatched is the route label of a request that no pattern of the mux matched.
const Unmatched = "unmatched"

// HTTPHandler returns a [http.Handler] that calls h and counts the request in
// reg's series gok8s_http_requests_total{route,method,code},
// gok8s_http_request_duration_seconds{route,method} and
// gok8s_http_requests_in_flight.
//
// The route is the pattern of the [http.ServeMux] that served the request,
// without its method ("/api/links/{slug}"), never the raw path, so the number
// of series stays bounded; it is read from the request after h returns, so h
// must hand the same *http.Request to the mux (wrappers that copy the request,
// like [http.MaxBytesHandler], go outside). A request no pattern matched has
// the route [Unmatched]. Methods other than the nine of RFC 9110 and RFC 5789
// are counted as "OTHER". A handler that writes nothing counts as 200.
//
// Mount it behind middleware.Probes, so that probe requests are answered before
// they get here and are not counted as API traffic. HTTPHandler panics if the
// series are already registered in reg.
func HTTPHandler(reg prometheus.Registerer, h http.Handler, opts ...HTTPOption) http.Handler {
	m := &httpHandler{
		h: h,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gok8s_http_requests_total",
			Help: "API requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gok8s_http_request_duration_seconds",
			Help:    "Time from the request reaching the API handler to its handler returning, by route pattern and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gok8s_http_requests_in_flight",
			Help: "API requests being served now.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight)
	for _, opt := range opts {
		opt(m)
	}
	return m
}

type httpHandler struct {
	h        http.Handler
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	series   sync.Map                     // seriesKey → seriesOf: the vectors' children, found once
	traceID  func(context.Context) string // the exemplar's trace ID; nil: no exemplars
}

// seriesKey is what labels a request: its pattern, method and status.
type seriesKey struct {
	pattern, method string
	status          int
}

// seriesOf holds the series of one seriesKey.
type seriesOf struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// seriesFor returns the series of k, making them on first use. Keys are
// bounded as the labels are: patterns, methods and statuses.
func (m *httpHandler) seriesFor(k seriesKey) seriesOf {
	if s, ok := m.series.Load(k); ok {
		return s.(seriesOf)
	}
	route, method := routeOf(k.pattern), methodOf(k.method)
	s := seriesOf{m.requests.WithLabelValues(route, method, codeOf(k.status)), m.duration.WithLabelValues(route, method)}
	if method == "OTHER" { // do not keep a key per unknown method
		return s
	}
	m.series.Store(k, s)
	return s
}

func (m *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	m.inFlight.Inc()
	defer m.inFlight.Dec()
	rec := recorder.Wrap(w)
	m.h.ServeHTTP(rec, r)
	s := m.seriesFor(seriesKey{r.Pattern, r.Method, rec.Status()})
	s.requests.Inc()
	m.observe(r.Context(), s.duration, time.Since(start).Seconds())
}

// routeOf returns the route label of a ServeMux pattern: the pattern without
// its method, or Unmatched for none.
func routeOf(pattern string) string {
	if pattern == "" {
		return Unmatched
	}
	if _, rest, ok := strings.Cut(pattern, " "); ok {
		return strings.TrimLeft(rest, " \t")
	}
	return pattern
}

// methodOf returns the method label: a standard method as it is, any other as "OTHER".
func methodOf(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// codeOf returns the code label of status; the common ones without an allocation.
func codeOf(status int) string {
	switch status {
	case http.StatusOK:
		return "200"
	case http.StatusCreated:
		return "201"
	case http.StatusNoContent:
		return "204"
	case http.StatusFound:
		return "302"
	case http.StatusNotModified:
		return "304"
	case http.StatusBadRequest:
		return "400"
	case http.StatusNotFound:
		return "404"
	case http.StatusMethodNotAllowed:
		return "405"
	case http.StatusConflict:
		return "409"
	case http.StatusRequestEntityTooLarge:
		return "413"
	case http.StatusUnsupportedMediaType:
		return "415"
	case http.StatusInternalServerError:
		return "500"
	case http.StatusServiceUnavailable:
		return "503"
	}
	return strconv.Itoa(status)
}
