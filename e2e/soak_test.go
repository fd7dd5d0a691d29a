//go:build soak

package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gok8s/gok8s/e2e"
)

// TestSoak runs the app under a steady mix of API and probe requests
// (`make soak`; SOAK_DURATION, default 10s): no API request may fail while the
// backends are up, /readyz must answer 200 throughout with each check run at
// most once per TTL window and never failing or timing out (as the app counts
// them; the probes' time as the client saw it is logged), and goroutines and
// memory must settle once the load stops.
func TestSoak(t *testing.T) {
	duration := 10 * time.Second
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SOAK_DURATION: %v", err)
		}
		duration = d
	}
	adminAddr := "127.0.0.1:" + e2e.FreePort(t)
	s := startStack(t, "ADMIN_ADDR="+adminAddr, "LOG_LEVEL=warn")
	a := s.app
	const workers = 16
	client := &http.Client{
		Timeout:       5 * time.Second,
		Transport:     &http.Transport{MaxIdleConnsPerHost: workers + 4},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	slugs := make([]string, 200)
	for i := range slugs {
		slugs[i] = "soak-" + strconv.Itoa(i)
		if code := send(t, client, "POST", a.url+"/api/links", `{"url":"https://example.com/`+slugs[i]+`","slug":"`+slugs[i]+`"}`); code != 201 {
			t.Fatalf("seeding %s: %d", slugs[i], code)
		}
	}
	admin := newAdminClient(t, adminAddr)
	runtimeOf := func() runtimeFigures {
		m, err := admin.scrape(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		rt := runtimeFigures{
			Goroutines:     m.get("go_goroutines"),
			HeapAllocBytes: m.get("go_memstats_heap_alloc_bytes"),
			RSSBytes:       m.get("process_resident_memory_bytes"),
			GCCycles:       m.get("go_gc_duration_seconds"), // the summary's count: one per cycle
		}
		if math.IsNaN(rt.Goroutines + rt.HeapAllocBytes + rt.RSSBytes + rt.GCCycles) {
			t.Fatalf("/metrics lacks a Go or process series: %+v", rt)
		}
		return rt
	}
	before := runtimeOf()
	runsBefore := admin.mustScrape()
	loadStart := time.Now()

	// The load: each worker cycles through a mix of requests with their expected status.
	type op struct {
		method, path, body string
		want               int
	}
	mix := func(i int, r *rand.Rand) op {
		slug := slugs[r.IntN(len(slugs))]
		switch i % 20 {
		case 0:
			n := "new-" + strconv.FormatUint(r.Uint64(), 36)
			return op{"POST", "/api/links", `{"url":"https://example.com/` + n + `","slug":"` + n + `"}`, 201}
		case 1:
			return op{"PUT", "/api/links/" + slug, `{"url":"https://example.org/` + slug + `"}`, 200}
		case 2:
			return op{"GET", "/api/links?limit=20&after=" + slug, "", 200}
		case 3, 4, 5, 6:
			return op{"GET", "/" + slug, "", 302}
		}
		return op{"GET", "/api/links/" + slug, "", 200}
	}
	ctx, cancel := context.WithTimeout(t.Context(), duration)
	defer cancel()
	var total, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	var latencies []time.Duration
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			var mine []time.Duration
			for i := 0; ctx.Err() == nil; i++ {
				o := mix(i+w, r)
				start := time.Now()
				code := send(t, client, o.method, a.url+o.path, o.body)
				mine = append(mine, time.Since(start))
				total.Add(1)
				if code != o.want && ctx.Err() == nil {
					failed.Add(1)
					mu.Lock()
					if len(failures) < 10 {
						failures = append(failures, fmt.Sprintf("%s %s: %d, want %d", o.method, o.path, code, o.want))
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	// The kubelet's view: /readyz every 20 ms, on its own connection.
	var probes, probeFailures int
	var slowestProbe time.Duration
	probeClient := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	for ctx.Err() == nil {
		start := time.Now()
		code := send(t, probeClient, "GET", a.url+"/readyz", "")
		slowestProbe = max(slowestProbe, time.Since(start))
		probes++
		if code != 200 {
			probeFailures++
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	tick.Stop()
	wg.Wait()
	during := runtimeOf()
	runsAfter := admin.mustScrape()
	windows := int(time.Since(loadStart)/probeTTL) + 2

	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(float64(len(latencies)-1)*p)] }
	t.Logf("load: %d API requests in %s (%.0f/s) from %d workers, %d failed; latency p50 %s p99 %s max %s",
		total.Load(), duration, float64(total.Load())/duration.Seconds(), workers, failed.Load(),
		pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	t.Logf("probes: %d /readyz, %d not 200; the client's slowest answer %s (the app's probe timeout %s)",
		probes, probeFailures, slowestProbe.Round(time.Microsecond), probeTimeout)
	if failed.Load() > 0 {
		t.Errorf("%d API requests failed: %v", failed.Load(), failures)
	}
	if probeFailures > 0 {
		t.Errorf("/readyz: %d of %d not 200", probeFailures, probes)
	}
	for _, c := range []string{"postgres/default", "memcached/" + s.mc.Addr} {
		runs := runsSince(runsBefore, runsAfter, c)
		t.Logf("%s: the app ran it %v", c, runs)
		if runs["ok"] > float64(windows) || runs["failed"]+runs["timeout"]+runs["panic"] > 0 {
			t.Errorf("%s under load: runs %v, want at most %d (one a TTL window), all ok", c, runs, windows)
		}
	}

	// Afterwards: goroutines back to where they were, memory not growing.
	client.CloseIdleConnections()
	var after runtimeFigures
	err := e2e.Poll(t.Context(), 15*time.Second, func(context.Context) error {
		after = runtimeOf()
		if after.Goroutines > before.Goroutines+5 {
			return fmt.Errorf("%v goroutines, %v before the load", after.Goroutines, before.Goroutines)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	t.Logf("goroutines (go_goroutines): %v before, %v under load, %v after", before.Goroutines, during.Goroutines, after.Goroutines)
	t.Logf("RSS (process_resident_memory_bytes): %.1f MiB before, %.1f MiB at the end of the load, %.1f MiB after; "+
		"Go heap %.1f MiB after, %v GC cycles", mib(before.RSSBytes), mib(during.RSSBytes), mib(after.RSSBytes),
		mib(after.HeapAllocBytes), after.GCCycles-before.GCCycles)
	if after.RSSBytes > during.RSSBytes+4<<20 {
		t.Errorf("RSS grew after the load: %.1f MiB -> %.1f MiB", mib(during.RSSBytes), mib(after.RSSBytes))
	}
}

func mib(b float64) float64 { return b / (1 << 20) }

// send makes one request and returns its status, or 0 on a transport error.
func send(t *testing.T, c *http.Client, method, url, body string) int {
	var r io.Reader
	if body != "" {
		r = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// runtimeFigures are the process's figures the soak test follows, read from
// the Go and process collectors' series on the app's /metrics.
type runtimeFigures struct {
	Goroutines     float64 // go_goroutines
	HeapAllocBytes float64 // go_memstats_heap_alloc_bytes
	RSSBytes       float64 // process_resident_memory_bytes
	GCCycles       float64 // go_gc_duration_seconds' count
}
