package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/gok8s/gok8s/app/internal/accesslog"
	"github.com/gok8s/gok8s/app/internal/links"
	"github.com/gok8s/gok8s/app/internal/metrics"
	"github.com/gok8s/gok8s/app/internal/tracing"
	"github.com/gok8s/gok8s/middleware"
	"github.com/gok8s/gok8s/probes"
	"github.com/prometheus/client_golang/prometheus"
)

// todayHandler is apiHandler as it was before tracing: the baseline the
// "off" figures are compared with.
func todayHandler(ready *probes.Readiness, repo links.Repository, reg prometheus.Registerer, log *slog.Logger, lim apiLimits) http.Handler {
	api := metrics.HTTPHandler(reg, links.NewHandler(links.NewService(repo, log)))
	return middleware.Probes(ready)(withDeadlines(lim.read, lim.write, accesslog.Handler(log, http.MaxBytesHandler(api, lim.maxBody))))
}

// tracingModes are the ways the benchmarks run the service's handler: as it
// was before tracing, with tracing off (no OTEL_* set), with the SDK on and
// sampling nothing, and sampling every request with the batch exporter
// sending OTLP/HTTP to an endpoint that discards it.
var tracingModes = []struct {
	name string
	env  map[string]string // "" endpoint: none
}{
	{"today", nil},
	{"off", nil},
	{"sampled-none", map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}},
	{"always-on", map[string]string{"OTEL_TRACES_SAMPLER": "always_on"}},
}

// benchTracing returns the tracing of mode name: for the two sampled modes
// from the environment, with OTEL_EXPORTER_OTLP_ENDPOINT at a discarding
// OTLP receiver.
func benchTracing(b *testing.B, env map[string]string) *tracing.Tracing {
	b.Helper()
	for _, v := range tracing.Variables() {
		b.Setenv(v.Name, "")
	}
	if env != nil {
		sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/x-protobuf")
		}))
		b.Cleanup(sink.Close)
		b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.URL)
		for k, v := range env {
			b.Setenv(k, v)
		}
	}
	tr, err := tracing.New(b.Context(), "bench", prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	if tr.Enabled() != (env != nil) {
		b.Fatalf("tracing enabled %v with %v", tr.Enabled(), env)
	}
	b.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

// benchHandler returns the service's handler for repo in mode.
func benchHandler(b *testing.B, mode string, tr *tracing.Tracing, repo links.Repository) http.Handler {
	b.Helper()
	ready, err := probes.NewReadiness(nil)
	if err != nil {
		b.Fatal(err)
	}
	ready.MarkStarted()
	log := tr.Logger(slog.New(slog.NewJSONHandler(io.Discard, nil)))
	lim := apiLimits{maxBody: 1 << 20, read: time.Minute, write: time.Minute}
	if mode == "today" {
		return todayHandler(ready, repo, prometheus.NewRegistry(), log, lim)
	}
	return apiHandler(ready, links.NewService(repo, log), prometheus.NewRegistry(), log, lim, tr)
}

// serveBench runs b.N requests GET path through h, as the server would hand them.
func serveBench(b *testing.B, h http.Handler, path string, want int) {
	b.Helper()
	r := httptest.NewRequest("GET", path, nil)
	w := &benchWriter{header: http.Header{}}
	h.ServeHTTP(w, r)
	if w.status != want {
		b.Fatalf("GET %s: %d, want %d", path, w.status, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.header)
		w.status = 0
		h.ServeHTTP(w, r)
	}
}

// BenchmarkChain: a redirect through the service's whole handler chain
// (probes, deadlines, tracing, access log, body limit, metrics, mux) from a
// repository in memory, so that the figures are the chain's own cost.
func BenchmarkChain(b *testing.B) {
	for _, m := range tracingModes {
		b.Run(m.name, func(b *testing.B) {
			tr := benchTracing(b, m.env)
			serveBench(b, benchHandler(b, m.name, tr, oneLink{}), "/go", http.StatusFound)
		})
	}
}

// BenchmarkRedirectCacheHit: a cache-hit redirect through the whole chain
// and the link cache, from a real memcached (the memcached binary, started
// on a free loopback port) holding the link: one memcached round trip per
// request, as in production.
func BenchmarkRedirectCacheHit(b *testing.B) {
	addr := startMemcached(b)
	for _, m := range tracingModes[1:] {
		b.Run(m.name, func(b *testing.B) {
			tr := benchTracing(b, m.env)
			var opts []links.CacheOption
			if tr.Enabled() {
				opts = append(opts, links.WithTracerProvider(tr.TracerProvider()))
			}
			cache := links.NewCache(oneLink{}, []string{addr}, time.Minute, time.Second, slog.New(slog.DiscardHandler), opts...)
			h := benchHandler(b, m.name, tr, cache)
			serveBench(b, h, "/go", http.StatusFound) // the first request fills the cache
		})
	}
}

// startMemcached runs the memcached binary on a free loopback port until b ends.
func startMemcached(b *testing.B) string {
	b.Helper()
	bin, err := exec.LookPath("memcached")
	if err != nil {
		const msg = "memcached is not installed (Debian: apt-get install memcached)"
		if os.Getenv("CI") != "" {
			b.Fatal(msg + ", and CI is set")
		}
		b.Skip(msg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "64", "-u", "nobody")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			b.Fatalf("memcached on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a process we just started
	}
}

// benchWriter is a ResponseWriter that keeps only the status.
type benchWriter struct {
	header http.Header
	status int
}

func (w *benchWriter) Header() http.Header { return w.header }
func (w *benchWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}
func (w *benchWriter) WriteHeader(code int) { w.status = code }

// BenchmarkProbeThroughChain: a cached /readyz through the service's whole
// handler, with tracing off and always on: the probe is answered before the
// tracing handler, so it costs the same and allocates nothing either way.
func BenchmarkProbeThroughChain(b *testing.B) {
	for _, m := range []int{1, 3} { // off, always-on
		b.Run(tracingModes[m].name, func(b *testing.B) {
			tr := benchTracing(b, tracingModes[m].env)
			serveBench(b, benchHandler(b, tracingModes[m].name, tr, oneLink{}), "/readyz", http.StatusOK)
		})
	}
}
