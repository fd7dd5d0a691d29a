package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gok8s/gok8s/e2e"
	"github.com/jackc/pgx/v5"
)

// TestLinksStore: the API over the real store and cache, step by step, as a
// client sees it (what links' store tests checked before the suites became a
// module of their own).
func TestLinksStore(t *testing.T) {
	t.Parallel()
	_, _, apps := replicas(t, 1)
	a := apps[0]
	ctx := t.Context()
	steps := []struct {
		method, path, body string
		status             int
		want               string // a substring of the answer
	}{
		{"GET", "/api/links/go", "", 404, `{"error":"not found"}`},
		{"POST", "/api/links", `{"slug":"go","url":"https://go.dev"}`, 201, `"slug":"go","url":"https://go.dev"`},
		{"POST", "/api/links", `{"slug":"go","url":"https://go.dev"}`, 409, `{"error":"slug already exists"}`},
		{"GET", "/api/links/go", "", 200, `"url":"https://go.dev"`},
		{"GET", "/api/links/go", "", 200, `"url":"https://go.dev"`}, // now from the cache
		{"POST", "/api/links", `{"slug":"pkg","url":"https://pkg.go.dev"}`, 201, `"slug":"pkg"`},
		{"GET", "/api/links?limit=1", "", 200, `"next":"go"`},
		{"GET", "/api/links?after=go", "", 200, `"slug":"pkg"`},
		{"PUT", "/api/links/go", `{"url":"https://go.dev/doc"}`, 200, `"url":"https://go.dev/doc"`},
		{"GET", "/api/links/go", "", 200, `"url":"https://go.dev/doc"`},
		{"GET", "/go", "", 302, `https://go.dev/doc`},
		{"PUT", "/api/links/nope", `{"url":"https://go.dev"}`, 404, `not found`},
		{"DELETE", "/api/links/go", "", 204, ``},
		{"GET", "/api/links/go", "", 404, `not found`},
		{"GET", "/go", "", 404, `not found`},
		{"DELETE", "/api/links/go", "", 404, `not found`},
		{"POST", "/api/links", `{"slug":"go","url":"https://go.dev/again"}`, 201, `"url":"https://go.dev/again"`},
		{"GET", "/api/links/go", "", 200, `"url":"https://go.dev/again"`},
	}
	for i, s := range steps {
		code, body := a.do(ctx, s.method, s.path, s.body)
		if code != s.status || !strings.Contains(body, s.want) {
			t.Fatalf("step %d: %s %s: %d %s; want %d %s", i, s.method, s.path, code, body, s.status, s.want)
		}
	}
	_, body := a.do(ctx, "GET", "/api/links/pkg", "")
	var l struct {
		CreatedAt time.Time `json:"created_at"`
		UpdatedAt time.Time `json:"updated_at"`
	}
	if err := json.Unmarshal([]byte(body), &l); err != nil || l.CreatedAt.IsZero() || !l.UpdatedAt.Equal(l.CreatedAt) {
		t.Errorf("timestamps of a new link: %s (%v)", body, err)
	}
}

// TestLinksBadInput: requests no link can answer get a 4xx before the database
// and memcached, and none of them is logged as a failure.
func TestLinksBadInput(t *testing.T) {
	t.Parallel()
	_, _, apps := replicas(t, 1, "LOG_LEVEL=info")
	a := apps[0]
	ctx := t.Context()
	big := `{"url":"https://a.example","slug":"big"}` + strings.Repeat(" ", 1100<<10) + "x"
	tests := []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/api/links/%FF", "", 404},
		{"PUT", "/api/links/%FF", `{"url":"https://a.example"}`, 404},
		{"DELETE", "/api/links/%FF", "", 404},
		{"GET", "/%FF", "", 404},
		{"GET", "/api/links?after=%00", "", 400},
		{"GET", "/api/links?after=%FF", "", 400},
		{"GET", "/api/links/" + strings.Repeat("a", 250), "", 404},
		{"GET", "/api/links/a%20b", "", 404},
		{"POST", "/api/links", `{"url":"https://a.example","slug":"t1"}}}]]`, 400},
		{"POST", "/api/links", big, 413},
		{"POST", "/api/links", `{"` + strings.Repeat("f", 900<<10) + `":1}`, 400},
	}
	for _, tt := range tests {
		for range 20 { // enough to show up as an outage in the log if it were one
			code, body := a.do(ctx, tt.method, tt.path, tt.body)
			if code != tt.status {
				t.Fatalf("%s %.60s: %d %.200s, want %d", tt.method, tt.path, code, body, tt.status)
			}
			if len(body) > 200 {
				t.Fatalf("%s %.60s: a %d-byte answer", tt.method, tt.path, len(body))
			}
		}
	}
	if code, _ := a.do(ctx, "GET", "/api/links/t1", ""); code != 404 {
		t.Errorf("the body with trailing data was stored: GET /api/links/t1 = %d", code)
	}
	logs := a.logs.String()
	for _, bad := range []string{"level=ERROR", "level=WARN", "cache available again", "SQLSTATE"} {
		if strings.Contains(logs, bad) {
			t.Errorf("client errors logged %q:\n%s", bad, logs)
		}
	}
}

// TestCacheAcrossReplicas: a write through one replica is what the other reads
// next, though it had the link cached.
func TestCacheAcrossReplicas(t *testing.T) {
	t.Parallel()
	_, mc, apps := replicas(t, 2, "CACHE_TTL=5m")
	a, b := apps[0], apps[1]
	ctx := t.Context()
	fresh := func(step string, want int, url string) {
		t.Helper()
		code, body := a.do(ctx, "GET", "/api/links/x", "")
		if code != want || url != "" && !strings.Contains(body, url) {
			t.Errorf("%s: replica a reads %d %s, want %d %s", step, code, body, want, url)
		}
	}
	if code, body := b.do(ctx, "POST", "/api/links", `{"slug":"x","url":"https://one.example"}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	for i := range 5 { // rounds of: a caches the link (past the tombstone), b writes it
		pollCached(t, mc, a, "x")
		url := fmt.Sprintf("https://v%d.example", i)
		if code, body := b.do(ctx, "PUT", "/api/links/x", `{"url":"`+url+`"}`); code != 200 {
			t.Fatalf("update: %d %s", code, body)
		}
		fresh("after an update through b", 200, url)
	}
	if code, _ := b.do(ctx, "DELETE", "/api/links/x", ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	fresh("after a delete through b", 404, "")
}

// pollCached GETs slug through a until memcached holds the link (once the
// last write's tombstone has gone).
func pollCached(t *testing.T, mc *e2e.Memcached, a *app, slug string) {
	t.Helper()
	err := e2e.Poll(t.Context(), 10*time.Second, func(ctx context.Context) error {
		if code, body := a.do(ctx, "GET", "/api/links/"+slug, ""); code != 200 {
			return fmt.Errorf("GET: %d %s", code, body)
		}
		v, _, err := mc.Get(ctx, "link:"+slug)
		if err != nil {
			return err
		}
		if len(v) == 0 || v[0] != 'v' {
			return fmt.Errorf("memcached holds %q", v)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("link %s not cached: %v", slug, err)
	}
}

// pollUncached waits until memcached holds nothing for slug.
func pollUncached(t *testing.T, mc *e2e.Memcached, slug string) {
	t.Helper()
	err := e2e.Poll(t.Context(), 10*time.Second, func(ctx context.Context) error {
		v, ok, err := mc.Get(ctx, "link:"+slug)
		if err == nil && ok {
			return fmt.Errorf("memcached holds %q", v)
		}
		return err
	})
	if err != nil {
		t.Fatalf("link %s still in memcached: %v", slug, err)
	}
}

// TestCacheOutageDuringWrite: a write goes on with memcached paused or
// stopped; once memcached answers again no replica reads an older value after
// the repair interval (250 ms; the test allows 2 s for a loaded machine).
func TestCacheOutageDuringWrite(t *testing.T) {
	t.Parallel()
	pg, mc, apps := replicas(t, 2, "CACHE_TIMEOUT=200ms", "CACHE_TTL=5m")
	a, b := apps[0], apps[1]
	ctx := t.Context()
	if code, _ := a.do(ctx, "POST", "/api/links", `{"slug":"x","url":"https://old.example"}`); code != 201 {
		t.Fatal("create failed")
	}
	dbURL := func() string {
		conn, err := pgx.Connect(ctx, pg.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		var u string
		if err := conn.QueryRow(ctx, "SELECT url FROM links WHERE slug = 'x'").Scan(&u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	cached := func() { // memcached holds the link as it is now
		t.Helper()
		pollCached(t, mc, a, "x")
	}
	check := func(step string) {
		t.Helper()
		want := dbURL()
		for _, r := range apps {
			if code, body := r.do(ctx, "GET", "/api/links/x", ""); code != 200 || !strings.Contains(body, want) {
				t.Errorf("%s: %s reads %d %s; the database has %s", step, r.url, code, body, want)
			}
		}
	}

	cached()
	mc.Pause(t)
	code, body := b.do(ctx, "PUT", "/api/links/x", `{"url":"https://paused.example"}`)
	if code != 200 {
		t.Errorf("PUT with memcached paused: %d %s, want 200", code, body)
	}
	mc.Unpause(t)
	back := time.Now()
	err := e2e.Poll(ctx, 2*time.Second, func(ctx context.Context) error {
		want := dbURL()
		for _, r := range apps {
			if code, body := r.do(ctx, "GET", "/api/links/x", ""); code != 200 || !strings.Contains(body, want) {
				return fmt.Errorf("%s reads %d %s; the database has %s", r.url, code, strings.TrimSpace(body), want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after a PUT with memcached paused: %v", err)
	}
	t.Logf("PUT with memcached paused: 200; every replica reads it %s after memcached answered again", time.Since(back).Round(time.Millisecond))
	check("after a PUT with memcached paused")

	cached()
	mc.Stop(t)
	code, body = b.do(ctx, "PUT", "/api/links/x", `{"url":"https://stopped.example"}`)
	if code != 200 {
		t.Errorf("PUT with memcached stopped: %d %s, want 200", code, body)
	}
	mc.Start(t)
	check("after a PUT with memcached stopped")
}

// TestCacheMissPaused: with memcached paused, a cache-miss GET spends at most
// one CACHE_TIMEOUT in memcached.
func TestCacheMissPaused(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	_, mc, apps := replicas(t, 1, "CACHE_TIMEOUT="+timeout.String())
	a := apps[0]
	ctx := t.Context()
	const n = 15
	for i := range n {
		if code, _ := a.do(ctx, "POST", "/api/links", fmt.Sprintf(`{"slug":"m%d","url":"https://m.example"}`, i)); code != 201 {
			t.Fatal("create failed")
		}
	}
	for i := range n {
		pollUncached(t, mc, fmt.Sprintf("m%d", i)) // past the creates' tombstones
	}
	mc.Pause(t)
	defer mc.Unpause(t)
	var took []time.Duration
	for i := range n {
		start := time.Now()
		if code, body := a.do(ctx, "GET", fmt.Sprintf("/api/links/m%d", i), ""); code != 200 {
			t.Fatalf("GET with memcached paused: %d %s", code, body)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	p50 := took[len(took)/2]
	t.Logf("cache-miss GET with memcached paused (CACHE_TIMEOUT %s): p50 %s, max %s", timeout, p50.Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
	if p50 > timeout*3/2 {
		t.Errorf("p50 %s: more than one CACHE_TIMEOUT (%s) in memcached", p50, timeout)
	}
}

// TestDatabaseOutageLogs: with PostgreSQL stopped under load, the app logs the
// failure once at ERROR and then counts, not one ERROR line per request.
func TestDatabaseOutageLogs(t *testing.T) {
	t.Parallel()
	pg, _, apps := replicas(t, 1)
	a := apps[0]
	ctx := t.Context()
	pg.Stop(t)
	var requests, failed int64
	var mu sync.Mutex
	end := time.Now().Add(4 * time.Second)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; i < 5000 && time.Now().Before(end); i++ {
				code, _ := a.do(ctx, "GET", fmt.Sprintf("/api/links/s%d-%d", w, i), "")
				mu.Lock()
				requests++
				if code >= 500 {
					failed++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	logs := a.logs.String()
	errorLines := 0
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, "level=ERROR") && strings.Contains(line, "links:") {
			errorLines++
		}
	}
	t.Logf("PostgreSQL stopped for 4 s: %d requests, %d answered 5xx, %d ERROR lines from links", requests, failed, errorLines)
	if failed < 20 {
		t.Fatalf("only %d requests failed; the outage did not take", failed)
	}
	if errorLines > 3 {
		t.Errorf("%d ERROR lines for %d failed requests; want the first of a kind, then counts", errorLines, failed)
	}
}
