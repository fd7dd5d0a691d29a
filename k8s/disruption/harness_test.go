//go:build kind

package disruption_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gok8s/gok8s/k8s/disruption"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// The cluster's names (see COMMON names in the manifests).
const (
	ns          = "gok8s"
	appSelector = "app.kubernetes.io/name=gok8s"
	zoneLabel   = "topology.kubernetes.io/zone"
	replicas    = 3
)

// env returns the variable name, or def when it is empty.
func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// kind is what the scenarios share: clients, the app's URL, the watchers.
type kind struct {
	t       testing.TB
	ctx     context.Context
	cs      *kubernetes.Clientset
	cfg     *rest.Config // of cs
	context string       // kubectl's --context
	url     string
	rate    int
	slugs   []string
	watch   *watcher
	created []string      // slugs of every 201, all scenarios
	deleted time.Time     // when the PostgreSQL pod was deleted
	alerts  *alertWatcher // Prometheus' alerts, polled throughout (alerts_test.go)
}

// recorder is the testing.TB of TestKind's own checks: it keeps the message of
// each failure and repeats them all when the test ends, below the tables, so
// that the tail of a long log (what CI keeps of it) says why the test failed.
type recorder struct {
	*testing.T
	failures []string
}

func (r *recorder) Error(args ...any) {
	r.Helper()
	r.failures = append(r.failures, fmt.Sprint(args...))
	r.T.Error(args...)
}

func (r *recorder) Errorf(format string, args ...any) {
	r.Helper()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
	r.T.Errorf(format, args...)
}

func (r *recorder) Fatal(args ...any) {
	r.Helper()
	r.failures = append(r.failures, fmt.Sprint(args...))
	r.T.Fatal(args...)
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Helper()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
	r.T.Fatalf(format, args...)
}

// repeat logs the failures again; TestKind runs it as a cleanup.
func (r *recorder) repeat() {
	if len(r.failures) == 0 {
		return
	}
	r.Logf("TestKind: %d checks failed:", len(r.failures))
	for _, f := range r.failures {
		r.Logf("FAILED: %s", f)
	}
}

func setup(t *testing.T) *kind {
	t.Helper()
	kubeContext := env("KIND_CONTEXT", "kind-gok8s")
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		t.Fatalf("kube config for context %s (run make kind-up first): %v", kubeContext, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rate, err := strconv.Atoi(env("LOAD_RATE", "120"))
	if err != nil {
		t.Fatalf("LOAD_RATE: %v", err)
	}
	k := &kind{t: t, ctx: t.Context(), cs: cs, cfg: cfg, context: kubeContext, url: env("APP_URL", "http://localhost:8080"), rate: rate}
	ctx, cancel := context.WithTimeout(k.ctx, 10*time.Second)
	defer cancel()
	if _, err := cs.Discovery().ServerVersion(); err != nil || ctx.Err() != nil {
		t.Fatalf("cluster %s does not answer (run make kind-up first): %v", kubeContext, err)
	}
	k.watch = startWatcher(t, cs)
	return k
}

// kubectl runs kubectl against the cluster and returns its combined output.
func (k *kind) kubectl(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(k.ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, env("KUBECTL", "kubectl"), append([]string{"--context", k.context, "-n", ns}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (k *kind) mustKubectl(timeout time.Duration, args ...string) string {
	k.t.Helper()
	out, err := k.kubectl(timeout, args...)
	if err != nil {
		k.t.Fatal(err)
	}
	return out
}

// poll calls cond every interval until it returns true or timeout passes.
func (k *kind) poll(what string, timeout, interval time.Duration, cond func() bool) time.Duration {
	k.t.Helper()
	start := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > timeout {
			k.t.Fatalf("%s: not after %s", what, timeout)
		}
		select {
		case <-tick.C:
		case <-k.ctx.Done():
			k.t.Fatalf("%s: %v", what, k.ctx.Err())
		}
	}
	return time.Since(start)
}

// settled reports whether the app runs n pods, all ready and none terminating.
func (k *kind) settled(n int) bool {
	pods := k.watch.appPods()
	if len(pods) != n {
		return false
	}
	for _, p := range pods {
		if p.DeletionTimestamp != nil || !podReady(p) {
			return false
		}
	}
	return k.watch.readyEndpoints() == n
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// placement returns the app's pods by node, as "node (zone): pod pod".
func (k *kind) placement() string {
	byNode := map[string][]string{}
	for _, p := range k.watch.appPods() {
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p.Name)
	}
	var b strings.Builder
	for _, node := range slices.Sorted(maps.Keys(byNode)) {
		fmt.Fprintf(&b, "%s (%s): %s; ", node, k.zone(node), strings.Join(byNode[node], " "))
	}
	return strings.TrimSuffix(b.String(), "; ")
}

func (k *kind) zone(node string) string {
	n, err := k.cs.CoreV1().Nodes().Get(k.ctx, node, metav1.GetOptions{})
	if err != nil {
		return "?"
	}
	return n.Labels[zoneLabel]
}

// seed creates the links the reads and redirects ask for.
func (k *kind) seed() {
	k.t.Helper()
	for i := range 20 {
		resp, err := http.Post(k.url+"/api/links", "application/json", strings.NewReader(fmt.Sprintf(`{"url":"https://example.com/seed/%d"}`, i)))
		if err != nil {
			k.t.Fatal(err)
		}
		var l struct{ Slug string }
		err = json.NewDecoder(resp.Body).Decode(&l)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || err != nil {
			k.t.Fatalf("seed: %d, %v", resp.StatusCode, err)
		}
		k.slugs = append(k.slugs, l.Slug)
		k.created = append(k.created, l.Slug)
	}
}

// result is one scenario's outcome, for the closing table.
type result struct {
	name     string
	summary  disruption.Summary
	grpc     disruption.GRPCSummary // what the gRPC clients saw meanwhile (grpc_test.go)
	note     string
	from, to time.Time // the load's start and end
}

// under runs action under load and returns what the load saw; it prints the
// figures and the placement before and after.
func (k *kind) under(name string, action func(since time.Time) string) result {
	k.t.Helper()
	k.t.Logf("%s: before: %s", name, k.placement())
	k.watch.resetMin()
	from := time.Now()
	l, err := disruption.Start(disruption.Config{BaseURL: k.url, Rate: k.rate, Slugs: k.slugs})
	if err != nil {
		k.t.Fatal(err)
	}
	gl := k.startGRPC()
	warm := time.Now()
	k.poll("load warm-up", 5*time.Second, 100*time.Millisecond, func() bool { return time.Since(warm) > 2*time.Second })
	began := time.Now()
	note := action(began)
	k.poll("load cool-down", 5*time.Second, 100*time.Millisecond, func() bool { return time.Since(began) > 0 && k.settled(replicas) })
	end := time.Now()
	k.poll("load tail", 5*time.Second, 100*time.Millisecond, func() bool { return time.Since(end) > 3*time.Second })
	s, gs := l.Stop(), gl.Stop()
	k.created = append(k.created, s.Created...)
	k.created = append(k.created, gs.Created...) // made over gRPC, read back over HTTP at the end
	k.t.Logf("%s: %s", name, s)
	k.logGRPC(name, gs, began)
	k.t.Logf("%s: after: %s; fewest ready endpoints %d", name, k.placement(), k.watch.minReady())
	if note != "" {
		k.t.Logf("%s: %s", name, note)
	}
	for _, f := range s.Failures {
		k.t.Logf("%s: failure at +%.2fs: %s %s %s", name, f.At.Sub(began).Seconds(), f.Conn, f.Op, f.Kind)
	}
	return result{name: name, summary: s, grpc: gs, note: note, from: from, to: time.Now()}
}

func (k *kind) rolloutStatus() {
	k.t.Helper()
	k.mustKubectl(3*time.Minute, "rollout", "status", "deployment/gok8s", "--timeout=170s")
	k.poll("rollout settled", 90*time.Second, 250*time.Millisecond, func() bool { return k.settled(replicas) })
}

func (k *kind) scale(kindName, name string, n int32) {
	k.t.Helper()
	var err error
	switch kindName {
	case "deployment":
		var s *autoscalingv1.Scale
		s, err = k.cs.AppsV1().Deployments(ns).GetScale(k.ctx, name, metav1.GetOptions{})
		if err == nil {
			s.Spec.Replicas = n
			_, err = k.cs.AppsV1().Deployments(ns).UpdateScale(k.ctx, name, s, metav1.UpdateOptions{})
		}
	case "statefulset":
		var s *autoscalingv1.Scale
		s, err = k.cs.AppsV1().StatefulSets(ns).GetScale(k.ctx, name, metav1.GetOptions{})
		if err == nil {
			s.Spec.Replicas = n
			_, err = k.cs.AppsV1().StatefulSets(ns).UpdateScale(k.ctx, name, s, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		k.t.Fatalf("scale %s/%s to %d: %v", kindName, name, n, err)
	}
}
