//go:build soak

package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gok8s/gok8s/e2e"
)

// TestSoak runs the app under a steady mix of API and probe requests
// (`make soak`; SOAK_DURATION, default 10s): no API request may fail while the
// backends are up, /readyz must never take longer than the probe timeout, and
// goroutines and memory must settle once the load stops.
func TestSoak(t *testing.T) {
	duration := 10 * time.Second
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SOAK_DURATION: %v", err)
		}
		duration = d
	}
	debugAddr := "127.0.0.1:" + e2e.FreePort(t)
	s := startStack(t, "DEBUG_ADDR="+debugAddr, "LOG_LEVEL=warn")
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
	runtimeOf := func() runtimeFigures {
		resp, err := http.Get("http://" + debugAddr + "/debug/runtime")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rt runtimeFigures
		if err := json.NewDecoder(resp.Body).Decode(&rt); err != nil {
			t.Fatal(err)
		}
		return rt
	}
	rss := func() int64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		for l := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				return kb * 1024
			}
		}
		t.Fatal("no VmRSS")
		return 0
	}
	before, rssBefore := runtimeOf(), rss()

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
	during, rssDuring := runtimeOf(), rss()

	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(float64(len(latencies)-1)*p)] }
	t.Logf("load: %d API requests in %s (%.0f/s) from %d workers, %d failed; latency p50 %s p99 %s max %s",
		total.Load(), duration, float64(total.Load())/duration.Seconds(), workers, failed.Load(),
		pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	t.Logf("probes: %d /readyz, %d not 200, slowest %s (limit %s)", probes, probeFailures, slowestProbe.Round(time.Microsecond), probeTimeout)
	if failed.Load() > 0 {
		t.Errorf("%d API requests failed: %v", failed.Load(), failures)
	}
	if probeFailures > 0 || slowestProbe > probeTimeout {
		t.Errorf("/readyz: %d not 200, slowest %s, limit %s", probeFailures, slowestProbe, probeTimeout)
	}

	// Afterwards: goroutines back to where they were, memory not growing.
	client.CloseIdleConnections()
	var after runtimeFigures
	err := e2e.Poll(t.Context(), 15*time.Second, func(context.Context) error {
		after = runtimeOf()
		if after.Goroutines > before.Goroutines+5 {
			return fmt.Errorf("%d goroutines, %d before the load", after.Goroutines, before.Goroutines)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	rssAfter := rss()
	t.Logf("goroutines: %d before, %d under load, %d after", before.Goroutines, during.Goroutines, after.Goroutines)
	t.Logf("RSS: %.1f MiB before, %.1f MiB at the end of the load, %.1f MiB after; Go heap %.1f MiB after, %d GC cycles",
		mib(rssBefore), mib(rssDuring), mib(rssAfter), mib(int64(after.HeapAllocBytes)), after.GCCycles-before.GCCycles)
	if rssAfter > rssDuring+4<<20 {
		t.Errorf("RSS grew after the load: %.1f MiB -> %.1f MiB", mib(rssDuring), mib(rssAfter))
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

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

// runtimeFigures is the document the app's DEBUG_ADDR listener serves at /debug/runtime.
type runtimeFigures struct {
	Goroutines     int    `json:"goroutines"`
	HeapAllocBytes uint64 `json:"heap_alloc_bytes"`
	TotalBytes     uint64 `json:"total_bytes"`
	GCCycles       uint64 `json:"gc_cycles"`
}
