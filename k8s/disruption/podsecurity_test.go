//go:build kind

package disruption_test

import (
	"strings"
	"testing"

	"github.com/gok8s/gok8s/k8s/manifests"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// podSecurity: the namespace enforces "restricted", and the first Pod of every
// Deployment and StatefulSet of every overlay is admitted by the cluster's Pod
// Security admission (a server-side dry run) with no warning; a privileged
// pod is rejected, so the check can fail. The manifest tests make the same
// Pods (manifests.PodOf) against envtest's API server.
func (k *kind) podSecurity(t *testing.T) {
	nsObj, err := k.cs.CoreV1().Namespaces().Get(k.ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := nsObj.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("namespace %s enforces %q, want restricted", ns, got)
	}
	c, err := manifests.NewClient(k.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, overlay := range []string{"overlays/kind", "overlays/production"} {
		objs, err := manifests.Render("../" + overlay)
		if err != nil {
			t.Fatal(err)
		}
		pods := 0
		for _, o := range objs {
			if o.GetKind() != "Deployment" && o.GetKind() != "StatefulSet" {
				continue
			}
			pod, err := manifests.PodOf(o)
			if err != nil {
				t.Fatal(err)
			}
			pods++
			name := overlay + ": " + o.GetKind() + " " + o.GetName()
			warns, err := k.dryRunPod(c, pod)
			switch {
			case err != nil:
				t.Errorf("%s: rejected: %v", name, err)
			case len(warns) > 0:
				t.Errorf("%s: admitted with warnings: %q", name, warns)
			default:
				t.Logf("%s: admitted by Pod Security (restricted), no warning", name)
			}
		}
		if pods == 0 {
			t.Errorf("%s: no Deployment or StatefulSet", overlay)
		}
	}
	bad := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "privileged"},
		"spec": map[string]any{"containers": []any{map[string]any{
			"name": "c", "image": "x", "securityContext": map[string]any{"privileged": true},
		}}},
	}}
	if _, err := k.dryRunPod(c, bad); err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Errorf("a privileged pod: %v, want rejected by PodSecurity", err)
	}
}

// dryRunPod submits pod to the app's namespace as a server-side dry run, which
// goes through admission, and returns the API server's warnings.
func (k *kind) dryRunPod(c *manifests.Client, pod *unstructured.Unstructured) ([]string, error) {
	pod = pod.DeepCopy()
	pod.SetNamespace(ns)
	pod.SetName("pod-security-" + pod.GetName()) // not a running pod's (postgres-0): a new Pod, not an update
	// The production overlay's ServiceAccount may not exist here; Pod Security does not look at it.
	unstructured.RemoveNestedField(pod.Object, "spec", "serviceAccountName")
	return c.Apply(k.ctx, pod, true)
}
