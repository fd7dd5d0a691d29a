package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gok8s/gok8s/app/internal/links"
	"github.com/gok8s/gok8s/app/internal/metrics"
	"github.com/gok8s/gok8s/probes"
	"github.com/prometheus/client_golang/prometheus"
)

// oneLink is a links.Repository that holds the single link "go".
type oneLink struct{}

func (oneLink) Create(_ context.Context, slug, url string) (links.Link, error) {
	return links.Link{Slug: slug, URL: url}, nil
}

func (oneLink) Get(_ context.Context, slug string) (links.Link, error) {
	if slug != "go" {
		return links.Link{}, links.ErrNotFound
	}
	return links.Link{Slug: "go", URL: "https://go.dev"}, nil
}

func (oneLink) List(context.Context, string, int) ([]links.Link, error) { return nil, nil }

func (oneLink) Update(_ context.Context, slug, url string) (links.Link, error) {
	return links.Link{Slug: slug, URL: url}, nil
}

func (oneLink) Delete(context.Context, string) error { return nil }

// TestAPIHandlerMetrics: through the service's real handler stack the HTTP
// series carry the links API's route patterns, not the raw paths, and probe
// requests are not counted.
func TestAPIHandlerMetrics(t *testing.T) {
	ready, err := probes.NewReadiness(nil)
	if err != nil {
		t.Fatal(err)
	}
	ready.MarkStarted()
	reg := prometheus.NewPedanticRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := apiHandler(ready, links.NewService(oneLink{}, log), reg, log, apiLimits{maxBody: 1 << 20, read: time.Minute, write: time.Minute}, offTracing(t))

	for _, r := range []struct{ method, path, body string }{
		{"GET", "/livez", ""}, {"GET", "/readyz", ""}, {"GET", "/readyz?verbose", ""}, {"HEAD", "/healthz", ""},
		{"GET", "/readyz/ping", ""},
		{"GET", "/go", ""}, {"GET", "/nope", ""}, {"GET", "/api/links/go", ""}, {"GET", "/api/links/other", ""},
		{"POST", "/api/links", `{"url":"https://example.com","slug":"ex"}`}, {"GET", "/api/links", ""},
		{"PATCH", "/api/links", ""}, {"GET", "/a/b", ""},
	} {
		req := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		if mf.GetName() != "gok8s_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var l []string
			for _, lp := range m.GetLabel() {
				l = append(l, lp.GetName()+"="+lp.GetValue())
			}
			got = append(got, fmt.Sprintf("%s %g", strings.Join(l, ","), m.GetCounter().GetValue()))
		}
	}
	slices.Sort(got)
	want := []string{
		"code=200,method=GET,route=/api/links 1",
		"code=200,method=GET,route=/api/links/{slug} 1",
		"code=201,method=POST,route=/api/links 1",
		"code=302,method=GET,route=/{slug} 1",
		"code=404,method=GET,route=/ 1",
		"code=404,method=GET,route=/api/links/{slug} 1",
		"code=404,method=GET,route=/{slug} 1",
		"code=405,method=PATCH,route=/api/links 1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("gok8s_http_requests_total:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestREADMECacheOps: README's row of gok8s_cache_errors_total names the
// memcached operations of links.CacheOps, and no other.
func TestREADMECacheOps(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, row, ok := strings.Cut(string(b), "| `gok8s_cache_errors_total` |")
	if !ok {
		t.Fatal("README has no row for gok8s_cache_errors_total")
	}
	row, _, _ = strings.Cut(row, "\n")
	cells := strings.Split(row, "|") // type, labels, meaning
	_, values, _ := strings.Cut(cells[1], "`op`:")
	var named []string
	for _, m := range regexp.MustCompile("`([a-z]+)`").FindAllStringSubmatch(values, -1) {
		named = append(named, m[1])
	}
	if want := links.CacheOps(); !slices.Equal(named, want) {
		t.Errorf("README's gok8s_cache_errors_total row names the operations %q, want %q", named, want)
	}
}

// TestCacheBreakersFollowReadiness: a failed readiness check of a memcached
// server opens that server's breaker in the cache (gok8s_cache_breaker_state),
// and no other check does.
func TestCacheBreakersFollowReadiness(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	cache := links.NewCache(oneLink{}, []string{"cache-0:11211", "cache-1:11211"}, time.Minute, time.Second,
		slog.New(slog.DiscardHandler), links.WithStats(metrics.NewCache(reg)))
	defer cache.Close()
	down := errors.New("ping: i/o timeout")
	checks := []probes.Checker{
		probes.Func("memcached/cache-0:11211", func(context.Context) error { return nil }),
		probes.Func("memcached/cache-1:11211", func(context.Context) error { return down }),
		probes.Func("postgres/default", func(context.Context) error { return down }),
	}
	ready, err := probes.NewReadiness(checks, probes.WithObserver(cacheBreakers(cache)))
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	ready.MarkStarted()
	_ = ready.Check(t.Context())

	open := func(server string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if mf.GetName() == "gok8s_cache_breaker_state" && labels["server"] == server && labels["state"] == "open" {
					return m.GetGauge().GetValue()
				}
			}
		}
		t.Fatalf("no gok8s_cache_breaker_state{server=%q,state=\"open\"}", server)
		return 0
	}
	for deadline := time.Now().Add(10 * time.Second); open("cache-1:11211") != 1; {
		if time.Now().After(deadline) {
			t.Fatal("the breaker of cache-1:11211 did not open after its readiness check failed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if v := open("cache-0:11211"); v != 0 {
		t.Errorf("the breaker of cache-0:11211, whose check passed, is open: %v", v)
	}
}
