package e2e_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gok8s/gok8s/e2e"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape is one /metrics answer, parsed by the Prometheus text parser.
type scrape map[string]*dto.MetricFamily

// get returns the sum of the series of name whose labels include the pairs
// labels (name, value, name, value, …); a histogram or summary counts its
// samples. It returns NaN when no series matches.
func (s scrape) get(name string, labels ...string) float64 {
	mf, ok := s[name]
	if !ok {
		return math.NaN()
	}
	sum, found := 0.0, false
	for _, m := range mf.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Summary != nil:
			sum += float64(m.Summary.GetSampleCount())
		}
	}
	if !found {
		return math.NaN()
	}
	return sum
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
			return l.GetName() == labels[i] && l.GetValue() == labels[i+1]
		}) {
			return false
		}
	}
	return true
}

// over returns how many samples of the histograms of name with labels were
// above le, which must be one of their bucket bounds; NaN when no histogram
// matches.
func (s scrape) over(le float64, name string, labels ...string) float64 {
	mf, ok := s[name]
	if !ok {
		return math.NaN()
	}
	n, found := 0.0, false
	for _, m := range mf.GetMetric() {
		h := m.GetHistogram()
		if h == nil || !hasLabels(m, labels) {
			continue
		}
		i := slices.IndexFunc(h.GetBucket(), func(b *dto.Bucket) bool { return b.GetUpperBound() == le })
		if i < 0 {
			return math.NaN()
		}
		found = true
		n += float64(h.GetSampleCount() - h.GetBucket()[i].GetCumulativeCount())
	}
	if !found {
		return math.NaN()
	}
	return n
}

// grown returns after − before of one series in two scrapes, a series that
// did not exist yet (NaN) counting as 0.
func grown(after, before float64) float64 {
	if math.IsNaN(before) {
		before = 0
	}
	if math.IsNaN(after) {
		after = 0
	}
	return after - before
}

// labelValues returns the values of label over the series of name.
func (s scrape) labelValues(name, label string) []string {
	var out []string
	for _, m := range s[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && !slices.Contains(out, l.GetValue()) {
				out = append(out, l.GetValue())
			}
		}
	}
	slices.Sort(out)
	return out
}

// adminClient scrapes an app's admin listener.
type adminClient struct {
	t      *testing.T
	url    string
	client *http.Client
}

func newAdminClient(t *testing.T, addr string) *adminClient {
	return &adminClient{t: t, url: "http://" + addr + "/metrics", client: &http.Client{Timeout: 5 * time.Second}}
}

// scrape GETs /metrics and parses it.
func (c *adminClient) scrape(ctx context.Context) (scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", c.url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", c.url, err)
	}
	return mfs, nil
}

// mustScrape scrapes once and fails the test on an error.
func (c *adminClient) mustScrape() scrape {
	c.t.Helper()
	s, err := c.scrape(c.t.Context())
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// waitFor scrapes until ok holds, fails the test after limit, and returns the
// scrape that held and how long it took.
func (c *adminClient) waitFor(what string, limit time.Duration, ok func(scrape) error) (scrape, time.Duration) {
	c.t.Helper()
	start := time.Now()
	var last scrape
	err := e2e.Poll(c.t.Context(), limit, func(ctx context.Context) error {
		s, err := c.scrape(ctx)
		if err != nil {
			return err
		}
		last = s
		return ok(s)
	})
	if err != nil {
		c.t.Fatalf("metrics: %s: %v", what, err)
	}
	return last, time.Since(start)
}

// want returns an error unless the series of name with labels has value v.
func (s scrape) want(v float64, name string, labels ...string) error {
	if got := s.get(name, labels...); got != v {
		return fmt.Errorf("%s%v = %v, want %v", name, labels, got, v)
	}
	return nil
}

// kubelet GETs the app's /readyz every 100 ms, as the kubelet's readiness
// probe would, until the test ends: the checks run when probes ask.
func kubelet(t *testing.T, a *app) {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for range 3000 { // 5 minutes at most
			a.tryGet(context.Background(), "/readyz")
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// failures returns the check's runs that did not pass.
func (s scrape) failures(check string) float64 {
	n := 0.0
	for _, r := range []string{"failed", "timeout", "panic"} {
		n += s.get("gok8s_probe_check_runs_total", "check", check, "result", r)
	}
	return n
}

// readyIs returns a condition: check's up gauge is up, gok8s_ready is ready,
// and the readiness state is state.
func readyIs(check string, up, ready float64, state string) func(scrape) error {
	return func(s scrape) error {
		return joinErrs(
			s.want(up, "gok8s_probe_check_up", "check", check),
			s.want(ready, "gok8s_ready"),
			s.want(1, "gok8s_readiness_state", "state", state),
		)
	}
}

func joinErrs(errs ...error) error {
	var msgs []string
	for _, err := range errs {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// TestMetricsPostgresOutage scrapes /metrics while PostgreSQL is stopped and
// started: the check's up gauge goes 1 → 0 → 1, its failures grow and
// gok8s_ready flips; after SIGTERM the state is draining.
func TestMetricsPostgresOutage(t *testing.T) {
	t.Parallel()
	adminAddr := "127.0.0.1:" + e2e.FreePort(t)
	s := startStack(t, "ADMIN_ADDR="+adminAddr, "SHUTDOWN_DELAY=5s")
	kubelet(t, s.app)
	m := newAdminClient(t, adminAddr)
	const check = "postgres/default"

	before, _ := m.waitFor("postgres up", 10*time.Second, readyIs(check, 1, 1, "ready"))
	if err := joinErrs(
		before.want(10, "gok8s_pgxpool_max_connections", "pool", "default"),
		before.want(1, "gok8s_build_info", "version", "dev"),
	); err != nil {
		t.Error(err)
	}
	if v := before.get("gok8s_pgxpool_acquires_total", "pool", "default"); !(v > 0) {
		t.Errorf("gok8s_pgxpool_acquires_total = %v, want > 0 after the migrations and pings", v)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "gok8s_probe_check_duration_seconds"} {
		if v := before.get(name); math.IsNaN(v) {
			t.Errorf("no %s series", name)
		}
	}
	failedBefore := before.failures(check)
	t.Logf("before: up=%v ready=%v state=ready failures=%v", before.get("gok8s_probe_check_up", "check", check),
		before.get("gok8s_ready"), failedBefore)

	t0 := time.Now()
	s.pg.Stop(t)
	stopped := time.Since(t0)
	down, _ := m.waitFor("postgres down", detectWait, func(s scrape) error {
		return joinErrs(readyIs(check, 0, 0, "not_ready")(s), grew(s.failures(check), failedBefore, "failures"))
	})
	t.Logf("postgres stop: %s (container stopped after %s): up=%v ready=%v state=not_ready failures %v -> %v %s",
		time.Since(t0).Round(time.Millisecond), stopped.Round(time.Millisecond), down.get("gok8s_probe_check_up", "check", check),
		down.get("gok8s_ready"), failedBefore, down.failures(check), down.results(check))

	t0 = time.Now()
	s.pg.Start(t)
	started := time.Since(t0)
	up, _ := m.waitFor("postgres up again", 30*time.Second, readyIs(check, 1, 1, "ready"))
	t.Logf("postgres start: %s (answering after %s): up=%v ready=%v state=ready %s",
		time.Since(t0).Round(time.Millisecond), started.Round(time.Millisecond),
		up.get("gok8s_probe_check_up", "check", check), up.get("gok8s_ready"), up.results(check))

	// Draining: from SIGTERM on the state says so, while SHUTDOWN_DELAY keeps the admin listener up.
	t0 = time.Now()
	if err := s.app.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	drain, _ := m.waitFor("draining", 4*time.Second, func(s scrape) error {
		return joinErrs(s.want(0, "gok8s_ready"), s.want(1, "gok8s_readiness_state", "state", "draining"),
			s.want(0, "gok8s_readiness_state", "state", "ready"))
	})
	t.Logf("SIGTERM: %s: ready=%v state=draining", time.Since(t0).Round(time.Millisecond), drain.get("gok8s_ready"))
}

// results returns check's runs by result, as "ok=3 failed=1 timeout=0 panic=0".
func (s scrape) results(check string) string {
	var b strings.Builder
	for _, r := range []string{"ok", "failed", "timeout", "panic"} {
		fmt.Fprintf(&b, " %s=%v", r, s.get("gok8s_probe_check_runs_total", "check", check, "result", r))
	}
	return "runs:" + b.String()
}

func grew(now, before float64, what string) error {
	if !(now > before) {
		return fmt.Errorf("%s %v, want more than %v", what, now, before)
	}
	return nil
}

// TestMetricsMemcachedPaused scrapes /metrics while one of two memcached
// servers is paused: its up gauge goes 1 → 0 → 1, gok8s_ready flips, cache
// errors grow while the API keeps answering, and the HTTP series carry route
// patterns only. Before the pause a memcached call may still run out of
// CACHE_TIMEOUT on a loaded machine (issue 19: one error, cold): the app
// logs every cache error (LOG_LEVEL=debug), and any that is not a timeout
// fails the test.
func TestMetricsMemcachedPaused(t *testing.T) {
	t.Parallel()
	pg := e2e.StartPostgres(t, "")
	mc1, mc2 := e2e.StartMemcached(t, ""), e2e.StartMemcached(t, "")
	adminAddr := "127.0.0.1:" + e2e.FreePort(t)
	a := startApp(t, "DATABASE_URL="+pg.URL, "MEMCACHED_SERVERS="+mc1.Addr+","+mc2.Addr, "ADMIN_ADDR="+adminAddr,
		"LOG_LEVEL=debug")
	a.waitStatus("/readyz", 200, 60*time.Second)
	kubelet(t, a)
	m := newAdminClient(t, adminAddr)
	check := "memcached/" + mc2.Addr

	slugs := make([]string, 20)
	for i := range slugs {
		slugs[i] = "m-" + strconv.Itoa(i)
		if code := a.request("POST", "/api/links", `{"url":"https://example.com/`+slugs[i]+`","slug":"`+slugs[i]+`"}`); code != 201 {
			t.Fatalf("POST %s: %d", slugs[i], code)
		}
	}
	gets := 0 // GET /api/links/{slug} requests sent
	readAll := func() {
		gets += len(slugs)
		var wg sync.WaitGroup
		for _, slug := range slugs {
			wg.Go(func() {
				if code := a.request("GET", "/api/links/"+slug, ""); code != 200 {
					t.Errorf("GET /api/links/%s: %d", slug, code)
				}
			})
		}
		wg.Wait()
	}
	// A create leaves a tombstone for 2-3 s (links.Cache): reads are misses
	// until it expires, then one fills the key and the next ones hit.
	before, _ := m.waitFor("both memcached up and every slug cached", 60*time.Second, func(s scrape) error {
		readAll()
		if hits := s.get("gok8s_cache_hits_total"); hits < float64(len(slugs)) {
			return fmt.Errorf("%v cache hits so far, want %d", hits, len(slugs))
		}
		return joinErrs(readyIs(check, 1, 1, "ready")(s), s.want(1, "gok8s_probe_check_up", "check", "memcached/"+mc1.Addr))
	})
	hits, misses, errs := before.get("gok8s_cache_hits_total"), before.get("gok8s_cache_misses_total"), before.get("gok8s_cache_errors_total")
	cacheErrors := cacheErrorLines(a.logs.String())
	t.Logf("before: hits=%v misses=%v errors=%v %q", hits, misses, errs, cacheErrors)
	if hits < float64(len(slugs)) || misses < float64(len(slugs)) {
		t.Errorf("cache before the pause: hits %v misses %v; want both >= %d", hits, misses, len(slugs))
	}
	if float64(len(cacheErrors)) < errs {
		t.Errorf("%v cache errors counted, %d logged: the log must show each", errs, len(cacheErrors))
	}
	for _, line := range cacheErrors {
		if !strings.Contains(line, "timeout") && !strings.Contains(line, "deadline exceeded") {
			t.Errorf("with both memcached up, a cache error other than a timeout: %s", line)
		}
	}

	t0 := time.Now()
	mc2.Pause(t)
	readAll() // the slugs on mc2 wait CACHE_TIMEOUT, then come from the database
	paused, _ := m.waitFor("memcached paused", detectWait, func(s scrape) error {
		return joinErrs(readyIs(check, 0, 0, "not_ready")(s),
			s.want(1, "gok8s_probe_check_up", "check", "memcached/"+mc1.Addr),
			grew(s.get("gok8s_cache_errors_total"), errs, "cache errors"),
			grew(s.failures(check), before.failures(check), "failures"))
	})
	t.Logf("memcached %s pause: %s: up=%v (other server %v) ready=%v state=not_ready cache errors %v -> %v (get %v, set %v) %s",
		mc2.Addr, time.Since(t0).Round(time.Millisecond), paused.get("gok8s_probe_check_up", "check", check),
		paused.get("gok8s_probe_check_up", "check", "memcached/"+mc1.Addr), paused.get("gok8s_ready"),
		errs, paused.get("gok8s_cache_errors_total"), paused.get("gok8s_cache_errors_total", "op", "get"),
		paused.get("gok8s_cache_errors_total", "op", "set"), paused.results(check))

	t0 = time.Now()
	mc2.Unpause(t)
	up, _ := m.waitFor("memcached unpaused", 30*time.Second, readyIs(check, 1, 1, "ready"))
	t.Logf("memcached %s unpause: %s: up=%v ready=%v state=ready", mc2.Addr, time.Since(t0).Round(time.Millisecond),
		up.get("gok8s_probe_check_up", "check", check), up.get("gok8s_ready"))

	// Requests are counted by route pattern; probes are not counted at all.
	routes := up.labelValues("gok8s_http_requests_total", "route")
	if want := []string{"/api/links", "/api/links/{slug}"}; !slices.Equal(routes, want) {
		t.Errorf("routes %v, want %v", routes, want)
	}
	if v := up.get("gok8s_http_requests_total", "route", "/api/links/{slug}", "method", "GET", "code", "200"); v != float64(gets) {
		t.Errorf("GET /api/links/{slug} 200: %v, want %d", v, gets)
	}
}

// cacheErrorLines returns the lines of logs in which the link cache reports a
// failed memcached call: at WARN the first after a success, at DEBUG the others.
func cacheErrorLines(logs string) []string {
	var out []string
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, "links: cache unavailable") {
			out = append(out, line)
		}
	}
	return out
}

// request sends one request to the app and returns its status; it fails the
// test on a transport error.
func (a *app) request(method, path, body string) int {
	a.t.Helper()
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.url+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Errorf("%s %s: %v", method, path, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
