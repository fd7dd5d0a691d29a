//go:build kind

package disruption_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// drainWorker drains the worker with the most app pods as a user types it,
// `kubectl drain <worker> --ignore-daemonsets --delete-emptydir-data`: every
// pod goes but the DaemonSets' (the kind overlay keeps PostgreSQL and
// memcached on the control-plane node, so only app pods and the cluster's own
// move). It checks that the app's pods moved to the other worker, then
// uncordons it.
func (k *kind) drainWorker(t testing.TB) string {
	byNode := map[string]int{}
	for _, p := range k.watch.appPods() {
		byNode[p.Spec.NodeName]++
	}
	node := ""
	for n, c := range byNode {
		if node == "" || c > byNode[node] || (c == byNode[node] && n < node) {
			node = n
		}
	}
	others := k.podsOn(node)
	start := time.Now()
	k.mustKubectl(4*time.Minute, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=230s")
	drained := time.Since(start)
	k.poll("3 app pods off "+node, 2*time.Minute, 250*time.Millisecond, func() bool { return k.settled(replicas) })
	for _, p := range k.watch.appPods() {
		if p.Spec.NodeName == node {
			t.Errorf("pod %s still on the drained node %s", p.Name, node)
		}
	}
	moved := k.placement()
	k.mustKubectl(time.Minute, "uncordon", node)
	return fmt.Sprintf("drained %s (%d app pods; also evicted: %s) in %s; pods then: %s; uncordoned",
		node, byNode[node], others, drained.Round(100*time.Millisecond), moved)
}

// podsOn names the pods on node that a drain evicts and that are not the
// app's: not DaemonSet pods, not mirror pods.
func (k *kind) podsOn(node string) string {
	pods, err := k.cs.CoreV1().Pods("").List(k.ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return "?"
	}
	var names []string
	for _, p := range pods.Items {
		if p.Labels["app.kubernetes.io/name"] == "gok8s" || ownedBy(p, "DaemonSet") || p.Annotations[corev1.MirrorPodAnnotationKey] != "" {
			continue
		}
		names = append(names, p.Namespace+"/"+p.Name)
	}
	if len(names) == 0 {
		return "none"
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}

func ownedBy(p corev1.Pod, kind string) bool {
	for _, o := range p.OwnerReferences {
		if o.Kind == kind {
			return true
		}
	}
	return false
}

// memcachedOutage scales memcached to 0 for 30 s and back.
func (k *kind) memcachedOutage() string {
	k.scale("deployment", "memcached", 0)
	k.poll("memcached gone", time.Minute, 250*time.Millisecond, func() bool { return len(k.watch.pods("app.kubernetes.io/name=memcached")) == 0 })
	down := time.Now()
	k.poll("30 s outage", 45*time.Second, 250*time.Millisecond, func() bool { return time.Since(down) > 30*time.Second })
	k.scale("deployment", "memcached", 1)
	k.mustKubectl(2*time.Minute, "rollout", "status", "deployment/memcached", "--timeout=110s")
	return fmt.Sprintf("memcached at 0 replicas for %s", time.Since(down).Round(100*time.Millisecond))
}

// assertNoBrownout: a cache outage costs requests no more than twice the p50
// of the scenario before it, in the same run: the app's circuit breaker skips
// a memcached it knows is down instead of waiting CACHE_TIMEOUT for it.
func assertNoBrownout(t testing.TB, outage, before result) {
	t.Helper()
	ratio := float64(outage.summary.P50) / float64(before.summary.P50)
	t.Logf("%s: p50 %s, %.2fx the p50 of %s (%s)", outage.name, outage.summary.P50.Round(100*time.Microsecond), ratio,
		before.name, before.summary.P50.Round(100*time.Microsecond))
	if ratio > 2 {
		t.Errorf("%s: p50 %s is %.1fx the p50 of %s (%s); want at most 2x", outage.name, outage.summary.P50, ratio, before.name, before.summary.P50)
	}
}

// assertNoInternalErrors prints a scenario's failures by kind, HTTP and gRPC,
// and fails on a 500 or an INTERNAL: a database that cannot be reached is 503
// with Retry-After (UNAVAILABLE), never an internal error.
func assertNoInternalErrors(t testing.TB, r result) {
	t.Helper()
	byKind := r.summary.ByKind()
	internal := 0
	for _, kk := range slices.Sorted(maps.Keys(byKind)) {
		t.Logf("%s: failures by kind: %s: %d", r.name, kk, byKind[kk])
		if strings.Contains(kk, "status 500") {
			internal += byKind[kk]
		}
	}
	grpcKinds := r.grpc.ByKind()
	for _, kk := range slices.Sorted(maps.Keys(grpcKinds)) {
		t.Logf("%s: gRPC failures by kind: %s: %d", r.name, kk, grpcKinds[kk])
		if strings.Contains(kk, "Internal (") {
			internal += grpcKinds[kk]
		}
	}
	if internal > 0 {
		t.Errorf("%s: %d requests answered 500 or INTERNAL; an unreachable database must answer 503, UNAVAILABLE", r.name, internal)
	}
}
