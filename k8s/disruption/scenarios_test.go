//go:build kind

package disruption_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestKind runs every scenario against the cluster of `make kind-up`, in order,
// each under load, and checks what must hold throughout.
func TestKind(tt *testing.T) {
	start := time.Now()
	t := &recorder{T: tt}
	tt.Cleanup(t.repeat)
	k := setup(tt)
	k.t = t

	dep, err := k.cs.AppsV1().Deployments(ns).Get(k.ctx, "gok8s", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ptr.Deref(dep.Spec.Replicas, 1); got != replicas {
		t.Fatalf("deployment gok8s has %d replicas, want %d (the kind overlay)", got, replicas)
	}
	k.poll("3 ready app pods", 2*time.Minute, 250*time.Millisecond, func() bool { return k.settled(replicas) })
	t.Run("spread", func(t *testing.T) { k.assertSpread(t) })
	t.Run("pod security", func(t *testing.T) { k.podSecurity(t) })
	t.Run("metrics", func(t *testing.T) { k.metrics(t) })
	t.Run("traces", func(t *testing.T) { k.traces(t) })
	k.alerts = startAlertWatcher(tt)
	t.Run("prometheus", func(t *testing.T) { k.prometheusScrapes(t) })
	k.seed()

	var results []result
	zero := func(r result) {
		t.Helper()
		results = append(results, r)
		if n := len(r.summary.Failures); n > 0 {
			t.Errorf("%s: %d of %d requests failed, want 0: %v", r.name, n, r.summary.Requests, r.summary.ByKind())
		}
		if n := len(r.grpc.Failures); n > 0 {
			t.Errorf("%s: %d of %d gRPC calls failed, want 0: %v", r.name, n, r.grpc.Requests, r.grpc.ByKind())
		}
		if m := k.watch.minReady(); m < 1 {
			t.Errorf("%s: the Service had %d ready endpoints at one point", r.name, m)
		}
	}
	// quiet: zero, and no alert fired in Prometheus while it ran.
	quiet := func(r result) {
		t.Helper()
		zero(r)
		k.noAlertFired(t, r.name, r.from, r.to)
	}

	quiet(k.under("networkpolicy", func(time.Time) string { return k.networkPolicy(t) }))

	quiet(k.under("rollout restart", func(time.Time) string {
		k.mustKubectl(time.Minute, "rollout", "restart", "deployment/gok8s")
		k.rolloutStatus()
		return ""
	}))

	image := env("ROLLOUT_IMAGE", "")
	if image == "" {
		t.Fatal("ROLLOUT_IMAGE (the app's image re-tagged and loaded into kind) is empty")
	}
	quiet(k.under("rollout to a new tag", func(time.Time) string {
		k.mustKubectl(time.Minute, "set", "image", "deployment/gok8s", "app="+image)
		k.rolloutStatus()
		for _, p := range k.watch.appPods() {
			if got := p.Spec.Containers[0].Image; got != image {
				t.Errorf("pod %s runs %s, want %s", p.Name, got, image)
			}
		}
		return "image " + image
	}))

	quiet(k.under("drain a worker", func(time.Time) string { return k.drainWorker(t) }))

	scaled := k.under("scale 3→1→3", func(time.Time) string {
		k.scale("deployment", "gok8s", 1)
		k.poll("1 app pod", 2*time.Minute, 250*time.Millisecond, func() bool { return k.settled(1) })
		k.scale("deployment", "gok8s", replicas)
		k.poll("3 app pods", 2*time.Minute, 250*time.Millisecond, func() bool { return k.settled(replicas) })
		return k.grpcSpread(t)
	})
	quiet(scaled)

	mc := k.under("memcached down 30s", func(time.Time) string { return k.memcachedOutage() })
	zero(mc)
	assertNoBrownout(t, mc, scaled)
	if m := k.watch.minReady(); m != replicas {
		t.Errorf("memcached outage: the Service fell to %d ready endpoints, want %d throughout", m, replicas)
	}

	pg := k.under("PostgreSQL pod deleted", func(since time.Time) string { return k.postgresOutage(t, since) })
	results = append(results, pg)
	assertNoInternalErrors(t, pg)
	first, last := pg.summary.Window(k.deleted)
	t.Logf("PostgreSQL pod deleted: %d failures, from +%.1fs to +%.1fs after the deletion; every request succeeds again %.1fs after it",
		len(pg.summary.Failures), first.Seconds(), last.Seconds(), last.Seconds())
	gFirst, gLast := pg.grpc.Window(k.deleted)
	t.Logf("PostgreSQL pod deleted: gRPC clients saw %d failures (%v), from +%.1fs to +%.1fs after the deletion",
		len(pg.grpc.Failures), pg.grpc.ByKind(), gFirst.Seconds(), gLast.Seconds())
	if r := k.watch.restarts(); len(r) > 0 {
		t.Errorf("PostgreSQL outage: app containers restarted: %v", r)
	}

	// Alerts: PostgreSQL stays down until Prometheus pages (alerts_test.go).
	paged := k.under("PostgreSQL down until paged", func(since time.Time) string { return k.postgresDownUntilPaged(t, since) })
	results = append(results, paged)

	t.Run("throughout", func(t *testing.T) { k.throughout(t) })

	t.Logf("| scenario | requests | failed | by kind | p50 | p99 |")
	t.Logf("| --- | ---: | ---: | --- | ---: | ---: |")
	for _, r := range results {
		s := r.summary
		byKind := s.ByKind()
		kinds := make([]string, 0, len(byKind))
		for _, kk := range slices.Sorted(maps.Keys(byKind)) {
			kinds = append(kinds, fmt.Sprintf("%s %d", kk, byKind[kk]))
		}
		t.Logf("| %s | %d | %d | %s | %s | %s |", r.name, s.Requests, len(s.Failures), strings.Join(kinds, ", "),
			s.P50.Round(100*time.Microsecond), s.P99.Round(100*time.Microsecond))
	}
	grpcTable(t, results)
	t.Logf("rate %d requests/s; all scenarios in %s", k.rate, time.Since(start).Round(time.Second))
	windows := make([]scenarioWindow, 0, len(results))
	for _, r := range results {
		windows = append(windows, scenarioWindow{r.name, r.from, r.to})
	}
	k.alertTable(t, windows)
}

// assertSpread: the 3 replicas run on both workers, one zone each.
func (k *kind) assertSpread(t *testing.T) {
	zones := map[string]int{}
	for _, p := range k.watch.appPods() {
		zones[k.zone(p.Spec.NodeName)]++
	}
	t.Logf("placement: %s", k.placement())
	if len(zones) != 2 || zones["zone-a"] == 0 || zones["zone-b"] == 0 {
		t.Errorf("app pods by zone %v, want both zone-a and zone-b", zones)
	}
}

// postgresOutage deletes the PostgreSQL pod and measures what the Service and
// the clients saw until every pod is back.
func (k *kind) postgresOutage(t testing.TB, since time.Time) string {
	deleted := time.Now()
	if err := k.cs.CoreV1().Pods(ns).Delete(k.ctx, "postgres-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	k.deleted = deleted
	left := k.poll("app pods out of the Service", 2*time.Minute, 100*time.Millisecond, func() bool { return k.watch.readyEndpoints() < replicas })
	back := k.poll("app pods back in the Service", 3*time.Minute, 100*time.Millisecond, func() bool { return k.settled(replicas) }) + left
	k.mustKubectl(2*time.Minute, "rollout", "status", "statefulset/postgres", "--timeout=110s")
	return fmt.Sprintf("pod deleted at +%.1fs; first app pod out of the Service after %.1fs, fewest ready endpoints %d; all %d back after %.1fs",
		deleted.Sub(since).Seconds(), left.Seconds(), k.watch.minReady(), replicas, back.Seconds())
}

// throughout: no app container restarted, the kubelet's liveness probe never
// failed, and every create that got 201 is readable.
func (k *kind) throughout(t *testing.T) {
	if r := k.watch.restarts(); len(r) > 0 {
		t.Errorf("app containers restarted: %v", r)
	}
	events, err := k.cs.CoreV1().Events(ns).List(k.ctx, metav1.ListOptions{FieldSelector: "reason=Unhealthy"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if strings.HasPrefix(e.InvolvedObject.Name, "gok8s-") && strings.Contains(e.Message, "Liveness") {
			t.Errorf("pod %s: %s (%d times)", e.InvolvedObject.Name, e.Message, e.Count)
		}
	}
	stored := map[string]bool{}
	for after := ""; ; {
		var page struct {
			Links []struct{ Slug string }
			Next  string
		}
		resp, err := http.Get(k.url + "/api/links?limit=100&after=" + after)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("list links: %d, %v", resp.StatusCode, err)
		}
		for _, l := range page.Links {
			stored[l.Slug] = true
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	missing := 0
	for _, s := range k.created {
		if !stored[s] {
			missing++
		}
	}
	t.Logf("%d creates got 201; %d of them are missing from GET /api/links (%d links stored)", len(k.created), missing, len(stored))
	if missing > 0 {
		t.Errorf("%d creates that got 201 are not readable", missing)
	}
}
