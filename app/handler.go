package main

import (
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gok8s/gok8s/app/internal/accesslog"
	"github.com/gok8s/gok8s/app/internal/links"
	"github.com/gok8s/gok8s/app/internal/metrics"
	"github.com/gok8s/gok8s/app/internal/tracing"
	"github.com/gok8s/gok8s/middleware"
	"github.com/gok8s/gok8s/probes"
	"github.com/prometheus/client_golang/prometheus"
)

// closeWhenDraining returns a [http.Handler] that calls h and, once draining is
// set, adds Connection: close to every response, so that the server closes each
// HTTP/1 connection after its response and keep-alive clients reconnect through
// the Service to a ready pod. HTTP/2 clients get GOAWAY at Shutdown.
//
// Not http.Server.SetKeepAlivesEnabled(false): it also closes every idle
// connection at once, and a request a client sends on one at that moment is
// lost (a POST is not retried), as Shutdown loses it later. Here an idle
// connection gets its next request answered, then closes.
func closeWhenDraining(draining *atomic.Bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// apiLimits are the bounds apiHandler puts on each API request.
type apiLimits struct {
	maxBody     int64         // bytes of request body
	read, write time.Duration // time to read the whole request, and to answer it
	retryAfter  time.Duration // Retry-After of a 503 while the database cannot be reached; 0: the default
}

// apiHandler returns the service's handler: the probes first, then the links
// API behind its deadlines, its server span (when tr is on), the access log,
// the body limit and the HTTP metrics. Probe requests are neither traced,
// logged nor counted.
func apiHandler(ready *probes.Readiness, svc *links.Service, reg prometheus.Registerer, log *slog.Logger, lim apiLimits, tr *tracing.Tracing) http.Handler {
	var hopts []links.HandlerOption
	if lim.retryAfter > 0 {
		hopts = append(hopts, links.WithRetryAfter(lim.retryAfter))
	}
	var opts []metrics.HTTPOption
	if tr.Enabled() {
		opts = append(opts, metrics.WithExemplars(tracing.TraceID))
	}
	// Inside MaxBytesHandler, which copies the request: both read the route
	// the mux records on the request it is handed.
	api := metrics.HTTPHandler(reg, tr.Route(links.NewHandler(svc, hopts...)), opts...)
	return middleware.Probes(ready)(withDeadlines(lim.read, lim.write,
		tr.Handler(accesslog.Handler(log, http.MaxBytesHandler(api, lim.maxBody)))))
}

// withDeadlines returns a [http.Handler] that sets the connection's read and
// write deadlines to read and write from now (0 leaves one unset), then calls
// h: what http.Server's ReadTimeout and WriteTimeout do, for the requests h
// serves only. net/http clears both before the connection's next request.
func withDeadlines(read, write time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		if read > 0 {
			_ = rc.SetReadDeadline(now.Add(read)) // fails only on a writer without deadlines; then h runs unbounded
		}
		if write > 0 {
			_ = rc.SetWriteDeadline(now.Add(write))
		}
		h.ServeHTTP(w, r)
	})
}
