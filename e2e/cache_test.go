package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gok8s/gok8s/e2e"
)

// replicas starts PostgreSQL, memcached and n app processes sharing both, and
// waits until every app is ready.
func replicas(t *testing.T, n int, env ...string) (*e2e.Postgres, *e2e.Memcached, []*app) {
	t.Helper()
	pg, mc := e2e.StartPostgres(t, ""), e2e.StartMemcached(t, "")
	apps := make([]*app, n)
	for i := range apps {
		apps[i] = startApp(t, append([]string{"DATABASE_URL=" + pg.URL, "MEMCACHED_SERVERS=" + mc.Addr}, env...)...)
	}
	for _, a := range apps {
		a.waitStatus("/readyz", 200, 60*time.Second)
	}
	return pg, mc, apps
}

// do sends method path with body (JSON, or none when "") and returns the
// status (0 on a transport error) and the body.
func (a *app) do(ctx context.Context, method, path, body string) (int, string) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	cl := *a.client // answers as they are: a redirect is not followed
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := cl.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// versionURL is the URL of a link at version v; urlVersion reads v back.
func versionURL(slug string, v int) string {
	return "https://example.com/" + slug + "/v/" + strconv.Itoa(v)
}

func urlVersion(body string) (int, error) {
	var l struct{ URL string }
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		return 0, err
	}
	i := strings.LastIndex(l.URL, "/v/")
	if i < 0 {
		return 0, fmt.Errorf("no version in %q", l.URL)
	}
	return strconv.Atoi(l.URL[i+3:])
}

// history is what happened to one slug: its writes in version order, and the
// newest version whose write has returned successfully. Writes to one slug
// are serialized (mu), so versions commit in order.
type history struct {
	mu       sync.Mutex // held for the whole of a write
	exists   bool       // as the last successful write left it
	next     int        // the next version to write
	deletes  sync.Map   // version → struct{}: the writes that were deletes
	returned atomic.Int64
}

// coherence counts what the stress test saw.
type coherence struct {
	reads, writes, failedWrites, readErrors, violations atomic.Int64
	mu                                                  sync.Mutex
	examples                                            []string
}

func (c *coherence) violation(format string, args ...any) {
	c.violations.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.examples) < 10 {
		c.examples = append(c.examples, fmt.Sprintf(format, args...))
	}
}

// TestCacheCoherence: writers (update, delete, create) and readers on a few
// slugs, through two app processes sharing one memcached and one PostgreSQL,
// with memcached paused for a while mid-run. Every read that starts after a
// write returned must see that write's version or a newer one.
func TestCacheCoherence(t *testing.T) {
	t.Parallel()
	_, mc, apps := replicas(t, 2, "CACHE_TIMEOUT=200ms", "CACHE_TTL=5m", "LOG_LEVEL=warn")
	const (
		slugs   = 4
		writers = 4
		readers = 8
		run     = 9 * time.Second
		maxOps  = 20000 // per goroutine: every loop is bounded in count as well as time
	)
	ctx := t.Context()
	hist := make([]*history, slugs)
	for i := range hist {
		slug := "c" + strconv.Itoa(i)
		hist[i] = &history{exists: true, next: 1}
		if code, body := apps[0].do(ctx, "POST", "/api/links", `{"slug":"`+slug+`","url":"`+versionURL(slug, 0)+`"}`); code != 201 {
			t.Fatalf("create %s: %d %s", slug, code, body)
		}
	}

	var c coherence
	end := time.Now().Add(run)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 1))
			for n := 0; n < maxOps && time.Now().Before(end); n++ {
				i := rnd.IntN(slugs)
				write(ctx, &c, apps[rnd.IntN(len(apps))], "c"+strconv.Itoa(i), hist[i], rnd)
			}
		})
	}
	for r := range readers {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(r), 2))
			for n := 0; n < maxOps && time.Now().Before(end); n++ {
				i := rnd.IntN(slugs)
				read(ctx, &c, apps[rnd.IntN(len(apps))], "c"+strconv.Itoa(i), hist[i])
			}
		})
	}

	// Pause memcached for 2 s in the middle of the run.
	pauseAt, pauseFor := 3*time.Second, 2*time.Second
	after(ctx, pauseAt)
	mc.Pause(t)
	t.Log("memcached paused")
	after(ctx, pauseFor)
	mc.Unpause(t)
	t.Log("memcached unpaused")
	wg.Wait()

	c.check(t)
}

// check logs what the stress test saw, and fails t on a violation or when it
// saw too little to tell.
func (c *coherence) check(t *testing.T) {
	t.Helper()
	t.Logf("cache coherence: %d reads, %d writes (%d more failed or changed nothing), %d read errors, %d violations",
		c.reads.Load(), c.writes.Load(), c.failedWrites.Load(), c.readErrors.Load(), c.violations.Load())
	if n := c.violations.Load(); n > 0 {
		c.mu.Lock()
		defer c.mu.Unlock()
		t.Errorf("%d reads saw a value older than a write that had returned before they started; for example:\n%s",
			n, strings.Join(c.examples, "\n"))
	}
	if c.writes.Load() < 50 || c.reads.Load() < 200 {
		t.Errorf("too few operations to tell: %d writes, %d reads", c.writes.Load(), c.reads.Load())
	}
}

// write makes the next version of slug through a: an update or a delete when
// it exists, a create when it does not.
func write(ctx context.Context, c *coherence, a *app, slug string, h *history, rnd *rand.Rand) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.next
	h.next++
	var code int
	switch {
	case !h.exists:
		code, _ = a.do(ctx, "POST", "/api/links", `{"slug":"`+slug+`","url":"`+versionURL(slug, v)+`"}`)
		if code == 409 {
			h.exists = true
		}
	case rnd.IntN(3) == 0:
		h.deletes.Store(v, struct{}{})
		code, _ = a.do(ctx, "DELETE", "/api/links/"+slug, "")
		if code == 404 {
			h.exists = false
		}
	default:
		code, _ = a.do(ctx, "PUT", "/api/links/"+slug, `{"url":"`+versionURL(slug, v)+`"}`)
		if code == 404 {
			h.exists = false
		}
	}
	if code < 200 || code > 299 {
		c.failedWrites.Add(1)
		return
	}
	_, deleted := h.deletes.Load(v)
	h.exists = !deleted
	h.returned.Store(int64(v))
	c.writes.Add(1)
}

// read GETs slug through a and checks the answer against the newest write
// that had returned before the read started.
func read(ctx context.Context, c *coherence, a *app, slug string, h *history) {
	floor := int(h.returned.Load())
	start := time.Now()
	code, body := a.do(ctx, "GET", "/api/links/"+slug, "")
	c.reads.Add(1)
	switch code {
	case 200:
		v, err := urlVersion(body)
		if err != nil {
			c.readErrors.Add(1)
			return
		}
		if v < floor {
			c.violation("%s GET %s at %s: version %d, but version %d had returned", a.url, slug, start.Format("15:04:05.000"), v, floor)
		}
	case 404:
		// Valid only if a delete at floor or later has started by now.
		ok := false
		h.deletes.Range(func(k, _ any) bool {
			ok = k.(int) >= floor
			return !ok
		})
		if !ok {
			c.violation("%s GET %s at %s: 404, but version %d (not a delete) had returned", a.url, slug, start.Format("15:04:05.000"), floor)
		}
	default:
		c.readErrors.Add(1)
	}
}

// after returns when d has passed or ctx ends: the schedule of a fault.
func after(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}
