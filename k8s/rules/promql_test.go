package rules_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gok8s/gok8s/k8s/rules"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// promQL parses PromQL as Prometheus does with its default options (no
// experimental functions): what the rule manager and the query API accept.
var promQL = parser.NewParser(parser.Options{})

// targetLabels are the labels Prometheus adds to every series of a scrape of
// the app's metrics port (the ServiceMonitor's and k8s/components/prometheus'
// relabelling): the rules may select and group by them.
var targetLabels = []string{"job", "namespace", "pod", "instance"}

// exported describes the series of one /metrics scrape: each series name (a
// histogram's _bucket, _count and _sum apart) with its label names and values.
type exported map[string]map[string]map[string]bool // name → label → values

// add notes series name with labels.
func (e exported) add(name string, labels map[string]string) {
	if e[name] == nil {
		e[name] = map[string]map[string]bool{}
	}
	for k, v := range labels {
		if e[name][k] == nil {
			e[name][k] = map[string]bool{}
		}
		e[name][k][v] = true
	}
}

// seriesOf turns parsed metric families into the series names a Prometheus
// scrape stores.
func seriesOf(families map[string]*dto.MetricFamily) exported {
	e := exported{}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			switch mf.GetType() {
			case dto.MetricType_HISTOGRAM:
				e.add(name+"_count", l)
				e.add(name+"_sum", l)
				for _, b := range m.GetHistogram().GetBucket() {
					bl := maps.Clone(l)
					bl["le"] = strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)
					e.add(name+"_bucket", bl)
				}
				inf := maps.Clone(l)
				inf["le"] = "+Inf"
				e.add(name+"_bucket", inf)
			case dto.MetricType_SUMMARY:
				e.add(name+"_count", l)
				e.add(name+"_sum", l)
				for _, q := range m.GetSummary().GetQuantile() {
					ql := maps.Clone(l)
					ql["quantile"] = strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64)
					e.add(name, ql)
				}
			default:
				e.add(name, l)
			}
		}
	}
	return e
}

// freeAddr returns a loopback address with a port no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// scrapeRealApp builds the app (in the service's own module, with its go.mod),
// runs it with the admin listener on and unreachable backends, sends it a
// probe and API requests so that every series exists, and returns what its
// /metrics serves.
func scrapeRealApp(t *testing.T) exported {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "app")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./app")
	build.Dir = "../.."
	start := time.Now()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./app: %v\n%s", err, out)
	}
	t.Logf("built the app in %s", time.Since(start).Round(100*time.Millisecond))

	api, admin, closed := freeAddr(t), freeAddr(t), freeAddr(t)
	cmd := exec.CommandContext(ctx, bin, "serve")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HTTP_ADDR=" + api, "ADMIN_ADDR=" + admin,
		// Nothing listens there: the checks fail, the API answers 5xx, and
		// every series still exists, as in an outage.
		"DATABASE_URL=postgres://gok8s:unused@" + closed + "/gok8s?sslmode=disable&connect_timeout=1",
		"MEMCACHED_SERVERS=" + closed, "PROBE_OPTIONAL=memcached",
		"CACHE_TIMEOUT=100ms", "SHUTDOWN_DELAY=0s", "LOG_FORMAT=text", "LOG_LEVEL=warn",
	}
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("app log:\n%s", logs.String())
		}
	}()

	client := &http.Client{Timeout: 5 * time.Second}
	get := func(url string) (int, []byte, error) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	// want: the series that appear only once something happened.
	want := []string{"gok8s_probe_check_up", "gok8s_probe_check_optional", "gok8s_http_requests_total", "gok8s_http_request_duration_seconds_bucket"}
	var got exported
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-exited:
			t.Fatalf("the app exited: %v\n%s", err, logs.String())
		default:
		}
		// A probe runs the checks; API requests fill the HTTP series.
		_, _, _ = get("http://" + api + "/readyz")
		_, _, _ = get("http://" + api + "/api/links/nope")
		_, _, _ = get("http://" + api + "/nope")
		code, body, err := get("http://" + admin + "/metrics")
		if err == nil && code == http.StatusOK {
			parser := expfmt.NewTextParser(model.UTF8Validation)
			families, perr := parser.TextToMetricFamilies(bytes.NewReader(body))
			if perr != nil {
				t.Fatalf("/metrics does not parse: %v", perr)
			}
			got = seriesOf(families)
			if !slices.ContainsFunc(want, func(n string) bool { return got[n] == nil }) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 1 minute /metrics (%d, %v) lacks some of %v: has %v", code, err, want, slices.Sorted(maps.Keys(got)))
		}
		time.Sleep(200 * time.Millisecond) // a poll interval, bounded by the deadline above
	}
	return got
}

// grafanaVariables are the dashboard's variables and Grafana's built-in
// intervals, replaced by values PromQL accepts before parsing.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "5m", "${__rate_interval}", "5m", "$__interval", "1m", "$__range", "1h",
	"${namespace}", "shop", "$namespace", "shop", "${pod}", "gok8s-a", "$pod", "gok8s-a",
)

// TestExpressionsUseExportedSeries parses every PromQL expression of the rule
// files and the dashboard with Prometheus' parser and checks each series it
// selects against a scrape of the real app: the series must be one the app
// exports, a recording rule's, or Prometheus' up (ALERTS for the dashboard);
// each label matched or grouped by must exist on it (or be a target label);
// each value matched with = must be one the app exports, and each regular
// expression must match one. A renamed series, label or value fails here.
func TestExpressionsUseExportedSeries(t *testing.T) {
	app := scrapeRealApp(t)
	t.Logf("the app exports %d series names", len(app))

	// Recorded series: their labels are the rule's own, its expression's
	// grouping labels and the target labels.
	recorded := exported{}
	type source struct{ where, expr string }
	var sources []source
	for _, r := range allRules(t) {
		sources = append(sources, source{"rule " + alertKeyOrRecord(r), r.Expr})
		if r.Record == "" {
			continue
		}
		expr, err := promQL.ParseExpr(r.Expr)
		if err != nil {
			continue // reported below
		}
		l := maps.Clone(r.Labels)
		if l == nil {
			l = map[string]string{}
		}
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			if a, ok := n.(*parser.AggregateExpr); ok && !a.Without {
				for _, g := range a.Grouping {
					if _, ok := l[g]; !ok {
						l[g] = ""
					}
				}
			}
			return nil
		})
		recorded.add(r.Record, l)
	}
	title, queries, err := rules.ReadDashboard(filepath.Join(componentDir, "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		sources = append(sources, source{"dashboard " + q.Where, grafanaVariables.Replace(q.Expr)})
	}
	selectors := 0
	for _, s := range sources {
		selectors += checkExpr(t, s.where, s.expr, app, recorded)
	}
	t.Logf("%d expressions (%d of them in dashboard %q) with %d series selectors checked", len(sources), len(queries), title, selectors)
}

// reporter is the part of testing.TB the checks use.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// prometheusSeries are the series Prometheus makes itself: up for every
// target, and ALERTS (the dashboard's table of alerts firing).
var prometheusSeries = func() exported {
	e := exported{}
	e.add("up", nil)
	e.add("ALERTS", map[string]string{"alertname": "", "alertstate": "firing", "severity": "", "pod": "", "check": ""})
	return e
}()

// checkExpr parses src and reports each series selector that names a series,
// label or value that app, the recording rules (recorded) and Prometheus do
// not have; it returns the number of selectors.
func checkExpr(t reporter, where, src string, app, recorded exported) int {
	t.Helper()
	expr, err := promQL.ParseExpr(src)
	if err != nil {
		t.Errorf("%s: %v\n%s", where, err, src)
		return 0
	}
	selectors := 0
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		selectors++
		series, known := app[vs.Name], "the app"
		switch {
		case series != nil:
		case recorded[vs.Name] != nil:
			series, known = recorded[vs.Name], "a recording rule"
		case prometheusSeries[vs.Name] != nil:
			series, known = prometheusSeries[vs.Name], "Prometheus"
		default:
			t.Errorf("%s: %s is not a series the app exports, a recording rule writes or Prometheus makes", where, vs.Name)
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel || slices.Contains(targetLabels, m.Name) {
				continue
			}
			values, ok := series[m.Name]
			if !ok {
				t.Errorf("%s: %s has no label %s (from %s: labels %v)", where, vs.Name, m.Name, known, slices.Sorted(maps.Keys(series)))
				continue
			}
			if known != "the app" {
				continue // recorded values are the rules' own
			}
			switch m.Type {
			case labels.MatchEqual:
				if !values[m.Value] {
					t.Errorf("%s: %s{%s=%q}: the app exports %s values %v", where, vs.Name, m.Name, m.Value, m.Name, slices.Sorted(maps.Keys(values)))
				}
			case labels.MatchRegexp:
				if !slices.ContainsFunc(slices.Collect(maps.Keys(values)), m.Matches) {
					t.Errorf("%s: %s{%s=~%q} matches none of the values the app exports: %v", where, vs.Name, m.Name, m.Value, slices.Sorted(maps.Keys(values)))
				}
			}
		}
		return nil
	})
	checkGrouping(t, where, expr, app, recorded)
	return selectors
}

// checkGrouping: every label an aggregation groups by, or a binary operation
// matches on, is a target label or a label of some series the expression
// selects.
func checkGrouping(t reporter, where string, expr parser.Expr, app, recorded exported) {
	t.Helper()
	known := map[string]bool{"le": true}
	for _, l := range targetLabels {
		known[l] = true
	}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			for l := range app[vs.Name] {
				known[l] = true
			}
			for l := range recorded[vs.Name] {
				known[l] = true
			}
			for l := range prometheusSeries[vs.Name] {
				known[l] = true
			}
		}
		return nil
	})
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		var names []string
		switch e := n.(type) {
		case *parser.AggregateExpr:
			names = e.Grouping
		case *parser.BinaryExpr:
			if e.VectorMatching != nil {
				names = append(e.VectorMatching.MatchingLabels, e.VectorMatching.Include...)
			}
		}
		for _, l := range names {
			if !known[l] {
				t.Errorf("%s: groups or matches by %s, which none of its series has", where, l)
			}
		}
		return nil
	})
}

func alertKeyOrRecord(r rules.Rule) string {
	if r.Alert != "" {
		return alertKey(r)
	}
	return r.Record
}

// TestExpressionsCatchRenames: the check above fails for a renamed series, a
// renamed label and a value the app does not export, so it can fail.
func TestExpressionsCatchRenames(t *testing.T) {
	app := exported{}
	app.add("gok8s_ready", nil)
	app.add("gok8s_readiness_state", map[string]string{"state": "draining"})
	for _, tt := range []struct{ expr, want string }{
		{`gok8s_readyy == 0`, "gok8s_readyy is not a series"},
		{`gok8s_readiness_state{phase="draining"}`, "has no label phase"},
		{`gok8s_readiness_state{state="drained"}`, `values [draining]`},
		{`gok8s_readiness_state{state=~"drain"}`, "matches none"},
		{`sum by (zone) (gok8s_ready)`, "groups or matches by zone"},
	} {
		var got []string
		checkExpr(&recorder{T: t, errors: &got}, "test", tt.expr, app, exported{})
		if !slices.ContainsFunc(got, func(e string) bool { return strings.Contains(e, tt.want) }) {
			t.Errorf("%s: errors %q, want one with %q", tt.expr, got, tt.want)
		}
	}
}

// recorder collects Errorf calls instead of failing.
type recorder struct {
	*testing.T
	errors *[]string
}

func (r *recorder) Errorf(format string, args ...any) {
	*r.errors = append(*r.errors, fmt.Sprintf(format, args...))
}
