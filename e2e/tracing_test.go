package e2e_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gok8s/gok8s/e2e"
)

// newID returns n random bytes in hex: a W3C trace ID (16) or span ID (8).
func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tracedClient sends requests with a traceparent and never follows redirects.
type tracedClient struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newTracedClient(t *testing.T, base string) *tracedClient {
	return &tracedClient{t: t, base: base, client: &http.Client{
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends method path with body and, unless traceID is "", the traceparent
// 00-traceID-parentID-01; it returns the status and the client's wait.
func (c *tracedClient) do(method, path, body, traceID, parentID string) (int, time.Duration) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if traceID != "" {
		req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	}
	start := time.Now()
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}

// waitTrace polls Jaeger until it has trace id with want spans.
func waitTrace(t *testing.T, j *e2e.Jaeger, id string, want int) e2e.Trace {
	t.Helper()
	var tr e2e.Trace
	err := e2e.Poll(t.Context(), 30*time.Second, func(ctx context.Context) error {
		got, ok, err := j.Trace(ctx, id)
		switch {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("trace %s not in Jaeger", id)
		case len(got.Spans) < want:
			return fmt.Errorf("trace %s has %d spans, want %d", id, len(got.Spans), want)
		}
		tr = got
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// shape describes a trace as the server span's name and its parent, then
// each child's name in start order, each as name<-parent name.
func shape(tr e2e.Trace, remoteParent string) []string {
	names := map[string]string{remoteParent: "traceparent"}
	for _, s := range tr.Spans {
		names[s.SpanID] = s.OperationName
	}
	spans := slices.Clone(tr.Spans)
	sort.Slice(spans, func(i, k int) bool { return spans[i].StartTime < spans[k].StartTime })
	out := make([]string, 0, len(spans))
	for _, s := range spans {
		out = append(out, s.OperationName+"<-"+names[s.Parent()])
	}
	return out
}

// TestTracing runs the real binary exporting over OTLP/HTTP to a real Jaeger
// and reads the traces back through Jaeger's query API: a request with a
// traceparent is one trace, the server span named by its route with its
// memcached and SQL spans as children; the access-log line has its trace ID;
// probes make no span; the histogram has the trace ID as an exemplar. Then,
// with the receiver stopped and then paused, requests keep their latency
// (measured by the app, against the same run's baseline) while the dropped
// span count rises, exports resume when the receiver does, and SIGTERM with
// the receiver hung still ends within SHUTDOWN_TIMEOUT.
func TestTracing(t *testing.T) {
	t.Parallel()
	pg, mc, jg := e2e.StartPostgres(t, ""), e2e.StartMemcached(t, ""), e2e.StartJaeger(t)
	adminAddr := "127.0.0.1:" + e2e.FreePort(t)
	service := "gok8s-e2e-" + jg.Port
	a := startApp(t, "DATABASE_URL="+pg.URL, "MEMCACHED_SERVERS="+mc.Addr, "ADMIN_ADDR="+adminAddr,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+jg.OTLP, "OTEL_SERVICE_NAME="+service,
		"OTEL_RESOURCE_ATTRIBUTES=k8s.pod.name=e2e-pod,k8s.namespace.name=e2e",
		"OTEL_BSP_SCHEDULE_DELAY=100",     // export every 100 ms: the test waits less
		"OTEL_BSP_MAX_QUEUE_SIZE=64",      // a queue the outage phases overflow
		"OTEL_EXPORTER_OTLP_TIMEOUT=2000", // a hung receiver costs an export 2 s
		"CACHE_TIMEOUT=2s",                // the miss fills the cache however loaded the machine is
		"SHUTDOWN_TIMEOUT=5s")
	a.waitStatus("/readyz", 200, 60*time.Second)
	c := newTracedClient(t, a.url)
	m := newAdminClient(t, adminAddr)

	// Probes with a traceparent first: were they traced, their spans would be
	// exported before the API requests' below.
	probeTrace := newID(16)
	for _, p := range []string{"/readyz", "/livez", "/readyz?verbose", "/healthz"} {
		if code, _ := c.do("GET", p, "", probeTrace, newID(8)); code != 200 {
			t.Fatalf("GET %s: %d", p, code)
		}
	}

	slug := "tr-" + newID(4)
	writeTrace, writeParent := newID(16), newID(8)
	if code, _ := c.do("POST", "/api/links", `{"url":"https://example.com/private-query?token=s3cret","slug":"`+slug+`"}`, writeTrace, writeParent); code != 201 {
		t.Fatalf("POST /api/links: %d", code)
	}
	// The write's tombstone keeps the key out of the cache for 2-3 s; then
	// the first read misses and fills, the second hits.
	if err := e2e.Poll(t.Context(), 10*time.Second, func(ctx context.Context) error {
		v, ok, err := mc.Get(ctx, "link:"+slug)
		if err != nil {
			return err
		}
		if ok && len(v) > 0 && v[0] == 't' {
			return errors.New("the write's tombstone is still there")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	missTrace, missParent := newID(16), newID(8)
	if code, _ := c.do("GET", "/"+slug, "", missTrace, missParent); code != 302 {
		t.Fatalf("GET /%s: %d", slug, code)
	}
	hitTrace, hitParent := newID(16), newID(8)
	if code, _ := c.do("GET", "/"+slug, "", hitTrace, hitParent); code != 302 {
		t.Fatalf("GET /%s: %d", slug, code)
	}

	tests := []struct {
		name          string
		id, parent    string
		want          []string
		statement     string
		serverSpanTag map[string]string
	}{
		{"write", writeTrace, writeParent, []string{"POST /api/links<-traceparent", "set<-POST /api/links", "INSERT<-POST /api/links", "set<-POST /api/links"},
			"INSERT INTO links (slug, url) VALUES ($1, $2) RETURNING slug, url, created_at, updated_at",
			map[string]string{"http.route": "/api/links", "http.response.status_code": "201"}},
		{"miss", missTrace, missParent, []string{"GET /{slug}<-traceparent", "get<-GET /{slug}", "add<-GET /{slug}", "SELECT<-GET /{slug}", "get<-GET /{slug}", "cas<-GET /{slug}"},
			"SELECT slug, url, created_at, updated_at FROM links WHERE slug = $1",
			map[string]string{"http.route": "/{slug}", "http.response.status_code": "302", "url.path": "/" + slug}},
		{"hit", hitTrace, hitParent, []string{"GET /{slug}<-traceparent", "get<-GET /{slug}"}, "",
			map[string]string{"http.route": "/{slug}", "http.response.status_code": "302"}},
	}
	for _, tt := range tests {
		tr := waitTrace(t, jg, tt.id, len(tt.want))
		got := shape(tr, tt.parent)
		t.Logf("%s: trace %s: %s", tt.name, tt.id, strings.Join(got, ", "))
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: trace %s is\n%s\nwant\n%s", tt.name, tt.id, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
		for _, s := range tr.Spans {
			p := tr.Processes[s.ProcessID]
			if p.ServiceName != service {
				t.Errorf("%s: span %s from service %q, want %q", tt.name, s.OperationName, p.ServiceName, service)
			}
			for _, kv := range s.Tags {
				if v := fmt.Sprint(kv.Value); strings.Contains(v, "s3cret") || strings.Contains(v, "example.com") {
					t.Errorf("%s: span %s tag %s = %q carries a request value", tt.name, s.OperationName, kv.Key, v)
				}
			}
			switch {
			case s.Parent() == tt.parent:
				for k, v := range tt.serverSpanTag {
					if s.Tag(k) != v {
						t.Errorf("%s: server span tag %s = %q, want %q", tt.name, k, s.Tag(k), v)
					}
				}
			case s.Tag("db.system.name") == "postgresql":
				if s.Tag("db.query.text") != tt.statement {
					t.Errorf("%s: SQL span db.query.text = %q, want %q", tt.name, s.Tag("db.query.text"), tt.statement)
				}
			case s.Tag("db.system.name") == "memcached":
				if s.Tag("server.port") != mc.Port || s.Tag("memcached.result") == "" || s.Tag("memcached.result") == "error" {
					t.Errorf("%s: memcached span %s: server.port %q, memcached.result %q", tt.name, s.OperationName, s.Tag("server.port"), s.Tag("memcached.result"))
				}
			default:
				t.Errorf("%s: span %s is neither the server span nor a memcached or SQL one", tt.name, s.OperationName)
			}
		}
		pt := tr.Processes[tr.Spans[0].ProcessID].Tags
		if !slices.ContainsFunc(pt, func(kv e2e.KeyValue) bool { return kv.Key == "k8s.pod.name" && kv.Value == "e2e-pod" }) {
			t.Errorf("%s: process tags %v lack k8s.pod.name=e2e-pod from OTEL_RESOURCE_ATTRIBUTES", tt.name, pt)
		}
	}

	// No probe span: the probes' trace never reached Jaeger, whose every
	// operation of the service is an API route or a client call.
	if _, ok, err := jg.Trace(t.Context(), probeTrace); err != nil || ok {
		t.Errorf("the probes' trace %s is in Jaeger (%v): probes made spans", probeTrace, err)
	}
	ops, err := jg.Operations(t.Context(), service)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("operations of %s: %v", service, ops)
	known := []string{"GET /{slug}", "POST /api/links", "get", "add", "cas", "set", "SELECT", "INSERT"}
	for _, op := range ops {
		if !slices.Contains(known, op) {
			t.Errorf("operation %q: neither an API route nor a memcached or SQL call (a probe?)", op)
		}
	}

	// The access-log line of the hit carries its trace ID.
	var line string
	for l := range strings.SplitSeq(a.logs.String(), "\n") {
		if strings.Contains(l, `msg="http request"`) && strings.Contains(l, "path=/"+slug) && strings.Contains(l, "trace_id="+hitTrace) {
			line = l
		}
	}
	if line == "" {
		t.Errorf("no access-log line for /%s with trace_id=%s:\n%s", slug, hitTrace, a.logs.String())
	}
	t.Logf("access log: %s", line)

	// The duration histogram carries a trace ID of ours as an exemplar.
	if ex := exemplars(t, adminAddr); !slices.ContainsFunc([]string{missTrace, hitTrace}, func(id string) bool { return strings.Contains(ex, `trace_id="`+id+`"`) }) {
		t.Errorf("no exemplar with the requests' trace IDs on gok8s_http_request_duration_seconds:\n%s", ex)
	}

	// The receiver stopped, then paused: the requests' own latency, as the
	// app measures it, against this run's baseline. The histogram times the
	// handler, inside which each request ends its memcached spans (one for a
	// hit), the same non-blocking hand-over to the export queue as the server
	// span's.
	//
	// Each phase sends its redirects one every 5 ms (two spans each, 400 a
	// second): with the receiver up, the exports of every 100 ms (40 spans)
	// keep inside the 64-span queue however fast the machine answers; with it
	// hung, the queue overflows within a quarter of a second.
	const n = 150
	phase := func(name string) (server time.Duration, exported, dropped float64) {
		t.Helper()
		before, err := m.scrape(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var waits []time.Duration
		pace := time.NewTicker(5 * time.Millisecond)
		defer pace.Stop()
		for range n {
			<-pace.C
			code, d := c.do("GET", "/"+slug, "", "", "")
			if code != 302 {
				t.Fatalf("%s: GET /%s: %d", name, slug, code)
			}
			waits = append(waits, d)
		}
		after, err := m.scrape(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		count := after.get("gok8s_http_request_duration_seconds", "route", "/{slug}") - before.get("gok8s_http_request_duration_seconds", "route", "/{slug}")
		sum := histSum(after) - histSum(before)
		slices.Sort(waits)
		server = time.Duration(sum / count * float64(time.Second))
		dropped = after.get("gok8s_trace_spans_dropped_total") - before.get("gok8s_trace_spans_dropped_total")
		t.Logf("%-16s %d redirects: server mean %v, client p50 %v p99 %v; spans dropped %g (queue_full %g, export_failed %g), exported %g",
			name, n, server.Round(time.Microsecond), waits[n/2].Round(time.Microsecond), waits[n*99/100].Round(time.Microsecond), dropped,
			after.get("gok8s_trace_spans_dropped_total", "reason", "queue_full")-before.get("gok8s_trace_spans_dropped_total", "reason", "queue_full"),
			after.get("gok8s_trace_spans_dropped_total", "reason", "export_failed")-before.get("gok8s_trace_spans_dropped_total", "reason", "export_failed"),
			after.get("gok8s_trace_spans_exported_total")-before.get("gok8s_trace_spans_exported_total"))
		return server, after.get("gok8s_trace_spans_exported_total") - before.get("gok8s_trace_spans_exported_total"), dropped
	}
	// With the receiver up the spans are exported. (A machine busy enough to
	// slow an export past 160 ms, the queue's worth of spans, drops a few
	// even then: logged, not asserted.)
	base, baseExported, _ := phase("receiver up")
	if baseExported == 0 {
		t.Error("no span exported with the receiver up")
	}
	jg.Stop(t)
	stopped, _, stoppedDropped := phase("receiver stopped")
	jg.Start(t)
	jg.Pause(t)
	paused, _, pausedDropped := phase("receiver paused")
	for _, p := range []struct {
		name    string
		server  time.Duration
		dropped float64
	}{{"stopped", stopped, stoppedDropped}, {"paused", paused, pausedDropped}} {
		ratio := float64(p.server) / float64(base)
		t.Logf("receiver %s: server-side mean %.2fx the baseline", p.name, ratio)
		if ratio > 3 {
			t.Errorf("receiver %s: requests took %v on average in the app, %.1fx the %v with the receiver up", p.name, p.server, ratio, base)
		}
		if p.dropped <= 0 {
			t.Errorf("receiver %s: gok8s_trace_spans_dropped_total did not rise", p.name)
		}
	}
	jg.Unpause(t)
	exported := func(s scrape) error {
		if s.get("gok8s_trace_spans_queued") != 0 {
			return fmt.Errorf("%g spans still queued", s.get("gok8s_trace_spans_queued"))
		}
		return nil
	}
	m.waitFor("the queue to drain once the receiver answers", 30*time.Second, exported)
	resumed := newID(16)
	c.do("GET", "/"+slug, "", resumed, newID(8))
	waitTrace(t, jg, resumed, 2)
	t.Logf("receiver back: trace %s exported", resumed)

	// SIGTERM with the receiver hung: the flush gives up within
	// SHUTDOWN_TIMEOUT (5s) and the app exits 0.
	jg.Pause(t)
	for range 20 {
		c.do("GET", "/"+slug, "", "", "")
	}
	start := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the app did not exit 20 s after SIGTERM with the receiver paused")
	}
	took := time.Since(start)
	jg.Unpause(t)
	// The bound is the app's own: from its "signal received" line to its
	// last, by its clock; what the test saw is logged.
	logs := a.logs.String()
	signalled, done := logTimes(t, logs, `msg="shutdown: signal received"`), logTimes(t, logs, `msg="shutdown: done"`)
	if len(signalled) != 1 || len(done) != 1 {
		t.Fatalf("SIGTERM with the receiver paused: exit %v, %d signal lines and %d done lines in the log", a.err, len(signalled), len(done))
	}
	inApp := done[0].Sub(signalled[0])
	t.Logf("SIGTERM with the receiver paused: exit %v, shutdown %s by the app's log, %s seen by the test", a.err, inApp.Round(time.Millisecond), took.Round(time.Millisecond))
	if a.err != nil || inApp > 5*time.Second+1500*time.Millisecond {
		t.Errorf("exit %v after a shutdown of %s; want 0 within SHUTDOWN_TIMEOUT (5s) and SHUTDOWN_DELAY (0s)", a.err, inApp)
	}
}

// histSum returns the sum of gok8s_http_request_duration_seconds for GET /{slug}.
func histSum(s scrape) float64 {
	var sum float64
	for _, m := range s["gok8s_http_request_duration_seconds"].GetMetric() {
		if hasLabels(m, []string{"route", "/{slug}", "method", "GET"}) {
			sum += m.GetHistogram().GetSampleSum()
		}
	}
	return sum
}

// exemplars returns the OpenMetrics lines of the duration histogram that
// carry an exemplar.
func exemplars(t *testing.T, adminAddr string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+adminAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out []string
	for l := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(l, "gok8s_http_request_duration_seconds_bucket") && strings.Contains(l, " # {") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// composeTrace: make run printed Jaeger's URL, and a request made with a
// traceparent shows up in that Jaeger's query API as a trace with the server
// span and its memcached child.
func composeTrace(t *testing.T, appURL, jaegerPort, out string) {
	t.Helper()
	if want := "traces: http://localhost:" + jaegerPort + "/"; !strings.Contains(out, want) {
		t.Errorf("make run did not print %q:\n%s", want, out)
	}
	c := newTracedClient(t, appURL)
	id := newID(16)
	if code, _ := c.do("GET", "/no-such-link", "", id, newID(8)); code != 404 {
		t.Fatalf("GET /no-such-link: %d", code)
	}
	tr := waitTrace(t, &e2e.Jaeger{Query: "http://127.0.0.1:" + jaegerPort}, id, 2)
	names := make([]string, 0, len(tr.Spans))
	for _, s := range tr.Spans {
		names = append(names, s.OperationName)
	}
	t.Logf("make run: trace %s in Jaeger: %v", id, names)
	if !slices.Contains(names, "GET /{slug}") || !slices.Contains(names, "get") {
		t.Errorf("trace %s has spans %v, want GET /{slug} and memcached's get", id, names)
	}
}
