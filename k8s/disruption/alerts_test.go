//go:build kind

package disruption_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// alert is one alert of Prometheus' /api/v1/alerts.
type alert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"` // pending or firing
}

// key names an alert by its name and labels, as Alertmanager groups it.
func (a alert) key() string {
	var b strings.Builder
	b.WriteString(a.Labels["alertname"])
	for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
		if k != "alertname" {
			fmt.Fprintf(&b, " %s=%s", k, a.Labels[k])
		}
	}
	return b.String()
}

// alertState is what the watcher saw of one alert: when it was first
// pending, first firing and last seen, and whether it is gone.
type alertState struct {
	Alert                 alert
	Pending, Firing, Seen time.Time
	Gone                  time.Time // zero while Prometheus still has it
}

// alertWatcher polls Prometheus' /api/v1/alerts every second for the whole
// run and keeps every alert's history, so that a scenario can ask which
// alerts fired within its window, and when one turned pending, firing and
// resolved.
type alertWatcher struct {
	url string

	mu     sync.Mutex
	alerts map[string]*alertState // by key, the current and past ones
	polls  int
	err    error // the last poll's, nil once one succeeds again
}

// prometheusURL is where the tests reach the cluster's Prometheus:
// kind-config.yaml maps its NodePort to localhost:9090.
func prometheusURL() string { return env("PROMETHEUS_URL", "http://localhost:9090") }

// startAlertWatcher starts polling until t ends; it fails t if Prometheus
// does not answer within a minute.
func startAlertWatcher(t *testing.T) *alertWatcher {
	t.Helper()
	w := &alertWatcher{url: prometheusURL(), alerts: map[string]*alertState{}}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			w.poll(ctx)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	deadline := time.Now().Add(time.Minute)
	for !w.answered() {
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus at %s does not answer /api/v1/alerts: %v", w.url, w.lastErr())
		}
		time.Sleep(200 * time.Millisecond) // bounded by the deadline
	}
	return w
}

func (w *alertWatcher) poll(ctx context.Context) {
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Alerts []alert `json:"alerts"`
		} `json:"data"`
	}
	err := getJSON(ctx, w.url+"/api/v1/alerts", &body)
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.err = err
		return
	}
	w.err = nil
	w.polls++
	present := map[string]bool{}
	for _, a := range body.Data.Alerts {
		k := a.key()
		present[k] = true
		s := w.alerts[k]
		if s == nil || !s.Gone.IsZero() { // new, or back after resolving
			s = &alertState{Alert: a}
			w.alerts[k] = s
		}
		s.Seen = now
		if s.Pending.IsZero() {
			s.Pending = now
		}
		if a.State == "firing" && s.Firing.IsZero() {
			s.Firing = now
		}
	}
	for k, s := range w.alerts {
		if !present[k] && s.Gone.IsZero() {
			s.Gone = now
		}
	}
}

func (w *alertWatcher) answered() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.polls > 0
}

func (w *alertWatcher) lastErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// firedBetween returns the alerts that were firing at some time in [from, to].
func (w *alertWatcher) firedBetween(from, to time.Time) []alertState {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []alertState
	for _, s := range w.alerts {
		if !s.Firing.IsZero() && !s.Firing.After(to) && (s.Gone.IsZero() || s.Gone.After(from)) {
			out = append(out, *s)
		}
	}
	slices.SortFunc(out, func(a, b alertState) int { return a.Firing.Compare(b.Firing) })
	return out
}

// find returns the latest state of the alert named name whose labels include
// match, or false.
func (w *alertWatcher) find(name string, match map[string]string) (alertState, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var best *alertState
	for _, s := range w.alerts {
		if s.Alert.Labels["alertname"] != name {
			continue
		}
		ok := true
		for k, v := range match {
			ok = ok && s.Alert.Labels[k] == v
		}
		if ok && (best == nil || s.Pending.After(best.Pending)) {
			best = s
		}
	}
	if best == nil {
		return alertState{}, false
	}
	return *best, true
}

// getJSON GETs url and decodes its JSON body into v.
func getJSON(ctx context.Context, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// query runs an instant PromQL query and returns its samples as
// "labels value" strings.
func query(ctx context.Context, q string) ([]string, error) {
	var body struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(ctx, prometheusURL()+"/api/v1/query?query="+url.QueryEscape(q), &body); err != nil {
		return nil, err
	}
	var out []string
	for _, r := range body.Data.Result {
		var l []string
		for _, k := range slices.Sorted(maps.Keys(r.Metric)) {
			l = append(l, k+"="+r.Metric[k])
		}
		out = append(out, fmt.Sprintf("{%s} %v", strings.Join(l, ","), r.Value[1]))
	}
	return out, nil
}

// prometheusScrapes: Prometheus finds and scrapes every app pod (pod
// discovery through its Role, allowed by the NetworkPolicies) and has loaded
// the rule files; it waits up to 2 minutes for the first scrapes.
func (k *kind) prometheusScrapes(t *testing.T) {
	var up []string
	start := time.Now()
	k.poll("Prometheus scraping the app's pods", 2*time.Minute, time.Second, func() bool {
		var err error
		up, err = query(k.ctx, `up{job="gok8s-metrics"} == 1`)
		return err == nil && len(up) == replicas
	})
	t.Logf("Prometheus scrapes %d app pods (after %.1fs): %s", len(up), time.Since(start).Seconds(), strings.Join(up, "; "))
	var rules struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name   string `json:"name"`
					Health string `json:"health"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := getJSON(k.ctx, prometheusURL()+"/api/v1/rules", &rules); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health == "err" {
				t.Errorf("rule %s of group %s: health %s", r.Name, g.Name, r.Health)
			}
		}
	}
	if n == 0 {
		t.Error("Prometheus has loaded no rules")
	}
	t.Logf("Prometheus evaluates %d rules in %d groups", n, len(rules.Data.Groups))
}

// noAlertFired fails t if any alert was firing between from and to.
func (k *kind) noAlertFired(t testing.TB, scenario string, from, to time.Time) {
	t.Helper()
	for _, s := range k.alerts.firedBetween(from, to) {
		t.Errorf("%s: alert %s fired at +%.1fs", scenario, s.Alert.key(), s.Firing.Sub(from).Seconds())
	}
}

// postgresDownUntilPaged stops PostgreSQL (its StatefulSet scaled to 0) under
// load and keeps it down until NoReadyPod fires and the fast availability
// burn (1h/5m) is at least pending, as read from /api/v1/alerts; then starts
// it again and waits until both have resolved. It returns the times.
func (k *kind) postgresDownUntilPaged(t testing.TB, since time.Time) string {
	const limit = 6 * time.Minute
	fast := map[string]string{"slo": "availability", "long": "1h", "short": "5m"}
	down := time.Now()
	k.scale("statefulset", "postgres", 0)
	k.poll("NoReadyPod firing and AvailabilityBudgetBurn 1h/5m pending", limit, time.Second, func() bool {
		// Active after the stop: firing (NoReadyPod), pending or firing (the burn).
		nr, ok1 := k.alerts.find("NoReadyPod", nil)
		burn, ok2 := k.alerts.find("AvailabilityBudgetBurn", fast)
		return ok1 && !nr.Firing.IsZero() && nr.Seen.After(down) && ok2 && burn.Seen.After(down)
	})
	nr, _ := k.alerts.find("NoReadyPod", nil)
	burn, _ := k.alerts.find("AvailabilityBudgetBurn", fast)
	up := time.Now()
	k.scale("statefulset", "postgres", 1)
	k.mustKubectl(3*time.Minute, "rollout", "status", "statefulset/postgres", "--timeout=170s")
	k.poll("app pods back", 3*time.Minute, 250*time.Millisecond, func() bool { return k.settled(replicas) })
	back := time.Now()
	// The fast burn resolves once its 5-minute window holds few enough errors.
	k.poll("NoReadyPod and AvailabilityBudgetBurn 1h/5m resolved", 8*time.Minute, time.Second, func() bool {
		nr, _ = k.alerts.find("NoReadyPod", nil)
		burn, _ = k.alerts.find("AvailabilityBudgetBurn", fast)
		return !nr.Gone.IsZero() && !burn.Gone.IsZero()
	})
	at := func(ts time.Time) string {
		if ts.IsZero() {
			return "never"
		}
		return fmt.Sprintf("+%.0fs", ts.Sub(down).Seconds())
	}
	return fmt.Sprintf("PostgreSQL stopped at +%.1fs of the load; NoReadyPod pending %s, firing %s, resolved %s; "+
		"AvailabilityBudgetBurn 1h/5m pending %s, firing %s, resolved %s; PostgreSQL started %s, all pods back %s "+
		"(times from the stop)", down.Sub(since).Seconds(), at(nr.Pending), at(nr.Firing), at(nr.Gone),
		at(burn.Pending), at(burn.Firing), at(burn.Gone), at(up), at(back))
}

// alertTable logs every alert Prometheus had during the run, with the
// scenario it began in and its times from that scenario's start.
func (k *kind) alertTable(t testing.TB, windows []scenarioWindow) {
	k.alerts.mu.Lock()
	states := slices.Collect(maps.Values(k.alerts.alerts))
	k.alerts.mu.Unlock()
	slices.SortFunc(states, func(a, b *alertState) int { return a.Pending.Compare(b.Pending) })
	t.Logf("| alert | scenario | pending | firing | resolved |")
	t.Logf("| --- | --- | ---: | ---: | ---: |")
	for _, s := range states {
		name, start := "between scenarios", s.Pending
		for _, w := range windows {
			if !s.Pending.Before(w.from) && !s.Pending.After(w.to) {
				name, start = w.name, w.from
			}
		}
		rel := func(ts time.Time) string {
			if ts.IsZero() {
				return "-"
			}
			return fmt.Sprintf("+%.0fs", ts.Sub(start).Seconds())
		}
		t.Logf("| %s | %s | %s | %s | %s |", s.Alert.key(), name, rel(s.Pending), rel(s.Firing), rel(s.Gone))
	}
}

// scenarioWindow is when a scenario ran.
type scenarioWindow struct {
	name     string
	from, to time.Time
}
