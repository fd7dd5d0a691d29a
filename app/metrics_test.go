package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gok8s/gok8s/app/internal/links"
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
	h := apiHandler(ready, oneLink{}, reg, slog.New(slog.NewTextHandler(io.Discard, nil)), apiLimits{maxBody: 1 << 20, read: time.Minute, write: time.Minute})

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
