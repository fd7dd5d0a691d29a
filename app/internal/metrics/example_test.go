package metrics_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gok8s/gok8s/app/internal/links"
	"github.com/gok8s/gok8s/app/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

func ExampleHTTPHandler() {
	reg := prometheus.NewRegistry()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/links/{slug}", func(w http.ResponseWriter, r *http.Request) {})
	h := metrics.HTTPHandler(reg, mux)
	for _, slug := range []string{"a", "b", "c"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/links/"+slug, nil))
	}

	rec := httptest.NewRecorder()
	metrics.AdminHandler(reg, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "gok8s_http_requests_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// gok8s_http_requests_total{code="200",method="GET",route="/api/links/{slug}"} 3
}

func ExampleCache() {
	reg := prometheus.NewRegistry()
	c := metrics.NewCache(reg) // pass it to links.NewCache with links.WithStats(c)
	c.Hit()
	c.Miss()
	c.Error("get")
	c.Breaker("cache-0:11211", "closed") // the cache reports each server's breaker…
	c.Breaker("cache-0:11211", "open")   // …and each change of it
	c.Skipped("cache-0:11211", links.SkipBreaker)

	rec := httptest.NewRecorder()
	metrics.AdminHandler(reg, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "gok8s_cache") {
			fmt.Println(line)
		}
	}
	// Output:
	// gok8s_cache_breaker_skipped_total{reason="breaker",server="cache-0:11211"} 1
	// gok8s_cache_breaker_skipped_total{reason="tombstone",server="cache-0:11211"} 0
	// gok8s_cache_breaker_state{server="cache-0:11211",state="closed"} 0
	// gok8s_cache_breaker_state{server="cache-0:11211",state="half_open"} 0
	// gok8s_cache_breaker_state{server="cache-0:11211",state="open"} 1
	// gok8s_cache_errors_total{op="add"} 0
	// gok8s_cache_errors_total{op="cas"} 0
	// gok8s_cache_errors_total{op="get"} 1
	// gok8s_cache_errors_total{op="set"} 0
	// gok8s_cache_errors_total{op="version"} 0
	// gok8s_cache_hits_total 1
	// gok8s_cache_misses_total 1
}
