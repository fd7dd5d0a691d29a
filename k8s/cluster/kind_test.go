//go:build kind

package cluster_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gok8s/gok8s/k8s/cluster"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
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
	t       *testing.T
	ctx     context.Context
	cs      *kubernetes.Clientset
	context string // kubectl's --context
	url     string
	rate    int
	slugs   []string
	watch   *watcher
	created []string  // slugs of every 201, all scenarios
	deleted time.Time // when the PostgreSQL pod was deleted
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
	k := &kind{t: t, ctx: t.Context(), cs: cs, context: kubeContext, url: env("APP_URL", "http://localhost:8080"), rate: rate}
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
	name    string
	summary cluster.Summary
	note    string
}

// under runs action under load and returns what the load saw; it prints the
// figures and the placement before and after.
func (k *kind) under(name string, action func(since time.Time) string) result {
	k.t.Helper()
	k.t.Logf("%s: before: %s", name, k.placement())
	k.watch.resetMin()
	l, err := cluster.Start(cluster.Config{BaseURL: k.url, Rate: k.rate, Slugs: k.slugs})
	if err != nil {
		k.t.Fatal(err)
	}
	warm := time.Now()
	k.poll("load warm-up", 5*time.Second, 100*time.Millisecond, func() bool { return time.Since(warm) > 2*time.Second })
	began := time.Now()
	note := action(began)
	k.poll("load cool-down", 5*time.Second, 100*time.Millisecond, func() bool { return time.Since(began) > 0 && k.settled(replicas) })
	end := time.Now()
	k.poll("load tail", 5*time.Second, 100*time.Millisecond, func() bool { return time.Since(end) > 3*time.Second })
	s := l.Stop()
	k.created = append(k.created, s.Created...)
	k.t.Logf("%s: %s", name, s)
	k.t.Logf("%s: after: %s; fewest ready endpoints %d", name, k.placement(), k.watch.minReady())
	if note != "" {
		k.t.Logf("%s: %s", name, note)
	}
	for _, f := range s.Failures {
		k.t.Logf("%s: failure at +%.2fs: %s %s %s", name, f.At.Sub(began).Seconds(), f.Conn, f.Op, f.Kind)
	}
	return result{name: name, summary: s, note: note}
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

// TestKind runs every scenario against the cluster of `make kind-up`, in order,
// each under load, and checks what must hold throughout.
func TestKind(t *testing.T) {
	start := time.Now()
	k := setup(t)

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
	k.seed()

	var results []result
	zero := func(r result) {
		t.Helper()
		results = append(results, r)
		if n := len(r.summary.Failures); n > 0 {
			t.Errorf("%s: %d of %d requests failed, want 0: %v", r.name, n, r.summary.Requests, r.summary.ByKind())
		}
		if m := k.watch.minReady(); m < 1 {
			t.Errorf("%s: the Service had %d ready endpoints at one point", r.name, m)
		}
	}

	zero(k.under("networkpolicy", func(time.Time) string { return k.networkPolicy(t) }))

	zero(k.under("rollout restart", func(time.Time) string {
		k.mustKubectl(time.Minute, "rollout", "restart", "deployment/gok8s")
		k.rolloutStatus()
		return ""
	}))

	image := env("ROLLOUT_IMAGE", "")
	if image == "" {
		t.Fatal("ROLLOUT_IMAGE (the app's image re-tagged and loaded into kind) is empty")
	}
	zero(k.under("rollout to a new tag", func(time.Time) string {
		k.mustKubectl(time.Minute, "set", "image", "deployment/gok8s", "app="+image)
		k.rolloutStatus()
		for _, p := range k.watch.appPods() {
			if got := p.Spec.Containers[0].Image; got != image {
				t.Errorf("pod %s runs %s, want %s", p.Name, got, image)
			}
		}
		return "image " + image
	}))

	zero(k.under("drain a worker", func(time.Time) string { return k.drain(t) }))

	zero(k.under("scale 3→1→3", func(time.Time) string {
		k.scale("deployment", "gok8s", 1)
		k.poll("1 app pod", 2*time.Minute, 250*time.Millisecond, func() bool { return k.settled(1) })
		k.scale("deployment", "gok8s", replicas)
		k.poll("3 app pods", 2*time.Minute, 250*time.Millisecond, func() bool { return k.settled(replicas) })
		return ""
	}))

	mc := k.under("memcached down 30s", func(time.Time) string {
		k.scale("deployment", "memcached", 0)
		k.poll("memcached gone", time.Minute, 250*time.Millisecond, func() bool { return len(k.watch.pods("app.kubernetes.io/name=memcached")) == 0 })
		down := time.Now()
		k.poll("30 s outage", 45*time.Second, 250*time.Millisecond, func() bool { return time.Since(down) > 30*time.Second })
		k.scale("deployment", "memcached", 1)
		k.mustKubectl(2*time.Minute, "rollout", "status", "deployment/memcached", "--timeout=110s")
		return ""
	})
	zero(mc)
	if m := k.watch.minReady(); m != replicas {
		t.Errorf("memcached outage: the Service fell to %d ready endpoints, want %d throughout", m, replicas)
	}

	pg := k.under("PostgreSQL pod deleted", func(since time.Time) string { return k.postgresOutage(t, since) })
	results = append(results, pg)
	first, last := pg.summary.Window(k.deleted)
	t.Logf("PostgreSQL pod deleted: %d failures, from +%.1fs to +%.1fs after the deletion; every request succeeds again %.1fs after it",
		len(pg.summary.Failures), first.Seconds(), last.Seconds(), last.Seconds())
	if r := k.watch.restarts(); len(r) > 0 {
		t.Errorf("PostgreSQL outage: app containers restarted: %v", r)
	}

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
	t.Logf("rate %d requests/s; all scenarios in %s", k.rate, time.Since(start).Round(time.Second))
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

// drain drains the worker with the most app pods (the app's pods only: the dev
// PostgreSQL's volume is bound to its node), checks that the pods moved to the
// other worker, and uncordons it.
func (k *kind) drain(t *testing.T) string {
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
	start := time.Now()
	k.mustKubectl(3*time.Minute, "drain", node, "--pod-selector", appSelector, "--delete-emptydir-data", "--timeout=170s")
	drained := time.Since(start)
	k.poll("3 app pods off "+node, 2*time.Minute, 250*time.Millisecond, func() bool { return k.settled(replicas) })
	for _, p := range k.watch.appPods() {
		if p.Spec.NodeName == node {
			t.Errorf("pod %s still on the drained node %s", p.Name, node)
		}
	}
	moved := k.placement()
	k.mustKubectl(time.Minute, "uncordon", node)
	return fmt.Sprintf("drained %s (%d app pods) in %s; pods then: %s; uncordoned", node, byNode[node], drained.Round(100*time.Millisecond), moved)
}

// postgresOutage deletes the PostgreSQL pod and measures what the Service and
// the clients saw until every pod is back.
func (k *kind) postgresOutage(t *testing.T, since time.Time) string {
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

// podSecurity: the namespace enforces "restricted", and every pod template of
// every overlay is admitted by the cluster's Pod Security admission (a
// server-side dry run) with no warning; a privileged pod is rejected, so the
// check can fail.
func (k *kind) podSecurity(t *testing.T) {
	nsObj, err := k.cs.CoreV1().Namespaces().Get(k.ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := nsObj.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("namespace %s enforces %q, want restricted", ns, got)
	}
	for _, overlay := range []string{"overlays/kind", "overlays/production"} {
		for _, tmpl := range podTemplates(t, "../"+overlay) {
			name := overlay + ": " + tmpl.name
			warns, err := k.dryRunPod(tmpl.spec)
			switch {
			case err != nil:
				t.Errorf("%s: rejected: %v", name, err)
			case len(warns) > 0:
				t.Errorf("%s: admitted with warnings: %q", name, warns)
			default:
				t.Logf("%s: admitted by Pod Security (restricted), no warning", name)
			}
		}
	}
	bad := corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x",
		SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}}
	if _, err := k.dryRunPod(bad); err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Errorf("a privileged pod: %v, want rejected by PodSecurity", err)
	}
}

type podTemplate struct {
	name string
	spec corev1.PodSpec
}

// podTemplates renders the kustomization in dir and returns the pod template of
// each Deployment and StatefulSet.
func podTemplates(t *testing.T, dir string) []podTemplate {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	var out []podTemplate
	for _, r := range rm.Resources() {
		js, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		switch r.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			if err := json.Unmarshal(js, &d); err != nil {
				t.Fatal(err)
			}
			out = append(out, podTemplate{"Deployment " + d.Name, d.Spec.Template.Spec})
		case "StatefulSet":
			var s appsv1.StatefulSet
			if err := json.Unmarshal(js, &s); err != nil {
				t.Fatal(err)
			}
			spec := s.Spec.Template.Spec
			for _, c := range s.Spec.VolumeClaimTemplates { // as the StatefulSet controller adds them
				spec.Volumes = append(spec.Volumes, corev1.Volume{Name: c.Name, VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name + "-" + s.Name + "-0"}}})
			}
			out = append(out, podTemplate{"StatefulSet " + s.Name, spec})
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no pod templates", dir)
	}
	return out
}

// warningsOf collects the API server's warnings.
type warningsOf struct {
	mu   sync.Mutex
	list []string
}

func (w *warningsOf) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// dryRunPod creates a pod with spec in the namespace, as a server-side dry run
// that goes through admission, and returns the API server's warnings.
func (k *kind) dryRunPod(spec corev1.PodSpec) ([]string, error) {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{CurrentContext: k.context}).ClientConfig()
	if err != nil {
		return nil, err
	}
	w := &warningsOf{}
	cfg.WarningHandler = w
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	spec.ServiceAccountName = "" // the production overlay's may not exist here; Pod Security does not look at it
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "pod-security-", Namespace: ns}, Spec: spec}
	_, err = cs.CoreV1().Pods(ns).Create(k.ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	return w.list, err
}

// scrape GETs /metrics from the metrics port of pod through kubectl
// port-forward: the kubelet connects inside the pod, where no NetworkPolicy
// applies (the policy admits the port from pods only, not from the API
// server's node).
func (k *kind) scrape(pod string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(k.ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, env("KUBECTL", "kubectl"), "--context", k.context, "-n", ns, "port-forward", "pod/"+pod, ":metrics")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n') // Forwarding from 127.0.0.1:PORT -> 9090
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s: %w", pod, err)
	}
	addr, _, _ := strings.Cut(strings.TrimPrefix(line, "Forwarding from "), " ")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// metrics scrapes the metrics port of every app pod and shows the per-check series.
func (k *kind) metrics(t *testing.T) {
	for _, p := range k.watch.appPods() {
		body, err := k.scrape(p.Name)
		if err != nil {
			t.Errorf("pod %s: GET :9090/metrics: %v", p.Name, err)
			continue
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			t.Errorf("pod %s: /metrics does not parse: %v", p.Name, err)
			continue
		}
		var series []string
		for _, name := range slices.Sorted(maps.Keys(families)) {
			if !strings.HasPrefix(name, "gok8s_probe_check_up") && name != "gok8s_ready" {
				continue
			}
			for _, m := range families[name].GetMetric() {
				lbl := make([]string, 0, len(m.GetLabel()))
				for _, l := range m.GetLabel() {
					lbl = append(lbl, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				series = append(series, fmt.Sprintf("%s{%s} %g", name, strings.Join(lbl, ","), m.GetGauge().GetValue()))
			}
		}
		t.Logf("pod %s: %s", p.Name, strings.Join(series, "  "))
		if !slices.Contains(series, `gok8s_probe_check_up{check="postgres/default"} 1`) || !slices.Contains(series, `gok8s_ready{} 1`) {
			t.Errorf("pod %s: want gok8s_probe_check_up{check=\"postgres/default\"} 1 and gok8s_ready 1 in %q", p.Name, series)
		}
	}
}

// networkPolicy: a pod without the app's labels cannot reach PostgreSQL nor
// memcached while the policies exist, and reaches both without them; then the
// policies are restored. The app serves throughout (under load).
func (k *kind) networkPolicy(t *testing.T) string {
	image := env("PROBE_IMAGE", "memcached:1.6-alpine")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "np-probe", Namespace: ns, Labels: map[string]string{"app.kubernetes.io/name": "np-probe"}},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{
				Name: "probe", Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sleep", "600"},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			}},
		},
	}
	_ = k.cs.CoreV1().Pods(ns).Delete(k.ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	k.poll("old np-probe gone", time.Minute, 250*time.Millisecond, func() bool {
		_, err := k.cs.CoreV1().Pods(ns).Get(k.ctx, pod.Name, metav1.GetOptions{})
		return err != nil
	})
	if _, err := k.cs.CoreV1().Pods(ns).Create(k.ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("np-probe pod: %v", err)
	}
	defer func() {
		_ = k.cs.CoreV1().Pods(ns).Delete(context.WithoutCancel(k.ctx), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	}()
	k.poll("np-probe running", time.Minute, 250*time.Millisecond, func() bool {
		p, err := k.cs.CoreV1().Pods(ns).Get(k.ctx, pod.Name, metav1.GetOptions{})
		return err == nil && podReady(p)
	})

	targets := []string{"postgres 5432", "memcached 11211"}
	// reach reports whether np-probe opens a TCP connection to target within 2 s.
	reach := func(target string) bool {
		host, port, _ := strings.Cut(target, " ")
		script := fmt.Sprintf(`if command -v nc >/dev/null; then nc -z -w 2 %[1]s %[2]s; else timeout 2 bash -c '</dev/tcp/%[1]s/%[2]s'; fi`, host, port)
		_, err := k.kubectl(15*time.Second, "exec", pod.Name, "--", "sh", "-c", script)
		return err == nil
	}
	// holds polls until every target is reachable (want) twice in a row.
	holds := func(what string, want bool) time.Duration {
		streak := 0
		return k.poll(what, 45*time.Second, time.Second, func() bool {
			for _, tg := range targets {
				if reach(tg) != want {
					streak = 0
					return false
				}
			}
			streak++
			return streak == 2
		})
	}
	var notes []string
	d := holds("np-probe blocked from postgres and memcached", false)
	notes = append(notes, fmt.Sprintf("np-probe blocked from %s (held twice, %.1fs)", strings.Join(targets, ", "), d.Seconds()))

	policies, err := k.cs.NetworkingV1().NetworkPolicies(ns).List(k.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(policies.Items) == 0 {
		t.Fatal("no NetworkPolicy in namespace " + ns)
	}
	restore := func() {
		for _, p := range policies.Items {
			p := networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: ns, Labels: p.Labels, Annotations: p.Annotations}, Spec: p.Spec}
			if _, err := k.cs.NetworkingV1().NetworkPolicies(ns).Create(context.WithoutCancel(k.ctx), &p, metav1.CreateOptions{}); err != nil {
				t.Errorf("restore NetworkPolicy %s: %v", p.Name, err)
			}
		}
	}
	for _, p := range policies.Items {
		if err := k.cs.NetworkingV1().NetworkPolicies(ns).Delete(k.ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			restore()
			t.Fatal(err)
		}
	}
	d = holds("np-probe connects without the policies", true)
	notes = append(notes, fmt.Sprintf("%d policies deleted: connects (%.1fs)", len(policies.Items), d.Seconds()))
	restore()
	d = holds("np-probe blocked again", false)
	notes = append(notes, fmt.Sprintf("restored: blocked again (%.1fs)", d.Seconds()))
	return strings.Join(notes, "; ")
}

// watcher follows the app's pods, every pod's restarts and the app Service's
// endpoints through informers.
type watcher struct {
	podIndex  cache.Indexer
	endpoints cache.Indexer

	mu        sync.Mutex
	restart   map[string]int32 // pod/container -> restarts seen, app pods only
	minReadyN int
}

func startWatcher(t *testing.T, cs *kubernetes.Clientset) *watcher {
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	pi := f.Core().V1().Pods().Informer()
	ei := f.Discovery().V1().EndpointSlices().Informer()
	w := &watcher{podIndex: pi.GetIndexer(), endpoints: ei.GetIndexer(), restart: map[string]int32{}, minReadyN: replicas}
	onPod := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Labels["app.kubernetes.io/name"] != "gok8s" {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, c := range p.Status.ContainerStatuses {
			if c.RestartCount > 0 {
				w.restart[p.Name+"/"+c.Name] = max(w.restart[p.Name+"/"+c.Name], c.RestartCount)
			}
		}
	}
	onEndpoints := func(any) {
		n := w.readyEndpoints()
		w.mu.Lock()
		defer w.mu.Unlock()
		w.minReadyN = min(w.minReadyN, n)
	}
	_, _ = pi.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(_, o any) { onPod(o) }})
	_, _ = ei.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onEndpoints, UpdateFunc: func(_, o any) { onEndpoints(o) }, DeleteFunc: onEndpoints})
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	f.Start(stop)
	for typ, ok := range f.WaitForCacheSync(stop) {
		if !ok {
			t.Fatalf("informer %v did not sync", typ)
		}
	}
	return w
}

func (w *watcher) pods(selector string) []*corev1.Pod {
	sel, _ := labels.Parse(selector)
	var out []*corev1.Pod
	for _, o := range w.podIndex.List() {
		if p := o.(*corev1.Pod); sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (w *watcher) appPods() []*corev1.Pod { return w.pods(appSelector) }

// readyEndpoints returns the number of ready endpoints of Service gok8s.
func (w *watcher) readyEndpoints() int {
	n := 0
	for _, o := range w.endpoints.List() {
		es := o.(*discoveryv1.EndpointSlice)
		if es.Labels[discoveryv1.LabelServiceName] != "gok8s" {
			continue
		}
		for _, e := range es.Endpoints {
			if ptr.Deref(e.Conditions.Ready, false) {
				n++
			}
		}
	}
	return n
}

func (w *watcher) resetMin() {
	n := w.readyEndpoints()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.minReadyN = n
}

// minReady returns the fewest ready endpoints since resetMin.
func (w *watcher) minReady() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.minReadyN
}

func (w *watcher) restarts() map[string]int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.restart)
}

var _ rest.WarningHandler = (*warningsOf)(nil)
