package metrics

import (
	"log"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminHandler returns a [http.Handler] for the admin listener:
//
//	GET /metrics          reg's series in the Prometheus text, OpenMetrics or protobuf format
//	/debug/pprof/         net/http/pprof: index, profile, trace, symbol, cmdline, heap, goroutine, …
//
// and 404 for anything else. Scrape errors go to errorLog (nil: none), and are
// counted in reg as promhttp_metric_handler_errors_total. Serve it on an address
// apart from the API's: profiles and metrics are for operators, not clients.
func AdminHandler(reg *prometheus.Registry, errorLog *log.Logger) http.Handler {
	// OpenMetrics when the scraper asks for it: the format that carries the
	// HTTP histogram's exemplars (trace IDs).
	opts := promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true}
	if errorLog != nil {
		opts.ErrorLog = errorLog
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, opts))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
