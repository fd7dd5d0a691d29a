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
	// What the start-up logged is not the input's doing: on a loaded machine
	// the first readiness check may time out (WARN) before the app turns
	// ready. Nor are the readiness checks' own lines later (counted below).
	before := len(a.logs.String())
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
	// A memcached call that ran out of CACHE_TIMEOUT is the machine's load
	// (a cold make test), not the input: its WARN line and the "available
	// again" after it are left out, and counted. Any other WARN or ERROR line,
	// a memcached error of another kind included, fails the test.
	var logs []string
	timeouts, readiness := 0, 0
	for line := range strings.Lines(a.logs.String()[before:]) {
		switch {
		case strings.Contains(line, "links: cache unavailable") && strings.Contains(line, "context deadline exceeded"):
			timeouts++
		case strings.Contains(line, "cache available again") && timeouts > 0:
		case strings.Contains(line, `msg="readiness: `):
			readiness++
		default:
			logs = append(logs, line)
		}
	}
	if timeouts > 0 || readiness > 0 {
		t.Logf("%d memcached calls ran out of CACHE_TIMEOUT and %d readiness lines (machine load), left out of the check", timeouts, readiness)
	}
	for _, bad := range []string{"level=ERROR", "level=WARN", "cache available again", "SQLSTATE"} {
		if all := strings.Join(logs, ""); strings.Contains(all, bad) {
			t.Errorf("client errors logged %q:\n%s", bad, all)
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
// last write's tombstone has gone: 3 s). The bound guards against a hang: on
// a cold machine (make test beside the first compiles) 10 s ran out.
func pollCached(t *testing.T, mc *e2e.Memcached, a *app, slug string) {
	t.Helper()
	err := e2e.Poll(t.Context(), 30*time.Second, func(ctx context.Context) error {
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
	err := e2e.Poll(t.Context(), 30*time.Second, func(ctx context.Context) error {
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
// one CACHE_TIMEOUT in memcached: the app counts at most one failed memcached
// call per request (the get that hangs; the request's budget is then spent,
// and it makes no other call). How long the client waited is logged.
func TestCacheMissPaused(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	adminAddr := "127.0.0.1:" + e2e.FreePort(t)
	_, mc, apps := replicas(t, 1, "CACHE_TIMEOUT="+timeout.String(), "ADMIN_ADDR="+adminAddr)
	a := apps[0]
	m := newAdminClient(t, adminAddr)
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
	before := m.mustScrape()
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
	after := m.mustScrape()
	slices.Sort(took)
	errs := map[string]float64{}
	for _, op := range []string{"get", "add", "cas", "set"} {
		errs[op] = grown(after.get("gok8s_cache_errors_total", "op", op), before.get("gok8s_cache_errors_total", "op", op))
	}
	// The app's own measure of each request, from its arrival at the API
	// handler to the handler's return (buckets: 0.25 s, 0.5 s, 1 s).
	route := []string{"route", "/api/links/{slug}", "method", "GET"}
	slow := grown(after.over(1, "gok8s_http_request_duration_seconds", route...), before.over(1, "gok8s_http_request_duration_seconds", route...))
	overBudget := grown(after.over(0.25, "gok8s_http_request_duration_seconds", route...), before.over(0.25, "gok8s_http_request_duration_seconds", route...))
	if got := grown(after.get("gok8s_http_request_duration_seconds", route...), before.get("gok8s_http_request_duration_seconds", route...)); got != n {
		t.Errorf("the app measured %v GET /api/links/{slug} requests, want %d", got, n)
	}
	t.Logf("cache-miss GET with memcached paused (CACHE_TIMEOUT %s): the app counted failed memcached calls %v for %d requests, "+
		"%v of them took over 0.25 s in its handler, %v over 1 s; the client saw p50 %s, max %s",
		timeout, errs, n, overBudget, slow, took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
	if slow != 0 {
		t.Errorf("%v requests took over 1 s in the app's handler with a %s cache budget", slow, timeout)
	}
	if errs["get"] < 1 || errs["get"] > n || errs["add"]+errs["cas"]+errs["set"] != 0 {
		t.Errorf("failed memcached calls %v for %d GETs: want 1 to %d gets (at most one a request) and nothing else", errs, n, n)
	}
}

// TestDatabaseOutageLogs: with PostgreSQL stopped under load, the app answers
// 503 and logs the outage once at WARN and then counts, not one line per
// request; nothing is logged at ERROR, which is for internal errors.
func TestDatabaseOutageLogs(t *testing.T) {
	t.Parallel()
	pg, _, apps := replicas(t, 1)
	a := apps[0]
	ctx := t.Context()
	pg.Stop(t)
	var requests, unavailable, other int64
	var mu sync.Mutex
	end := time.Now().Add(4 * time.Second)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; i < 5000 && time.Now().Before(end); i++ {
				code, _ := a.do(ctx, "GET", fmt.Sprintf("/api/links/s%d-%d", w, i), "")
				mu.Lock()
				requests++
				switch {
				case code == 503:
					unavailable++
				case code >= 500:
					other++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	logs := a.logs.String()
	warnLines, errorLines := 0, 0
	for line := range strings.SplitSeq(logs, "\n") {
		switch {
		case strings.Contains(line, "level=ERROR") && strings.Contains(line, "links:"):
			errorLines++
		case strings.Contains(line, "level=WARN") && strings.Contains(line, `msg="links: store unavailable"`):
			warnLines++
		}
	}
	t.Logf("PostgreSQL stopped for 4 s: %d requests, %d answered 503, %d another 5xx; %d WARN lines for the outage, %d ERROR lines from links",
		requests, unavailable, other, warnLines, errorLines)
	if unavailable < 20 {
		t.Fatalf("only %d requests answered 503; the outage did not take", unavailable)
	}
	if other > 0 || errorLines > 0 {
		t.Errorf("%d requests answered another 5xx and %d ERROR lines were logged; want 503 and WARN only", other, errorLines)
	}
	if warnLines == 0 || warnLines > 3 {
		t.Errorf("%d WARN lines for %d unavailable answers; want the first of a kind, then counts", warnLines, unavailable)
	}
}
