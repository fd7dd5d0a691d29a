package k8s_test

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gok8s/gok8s/k8s/manifests"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// overlays are the kustomizations under test, relative to this directory:
// the base, each overlay, and the production overlay with the monitoring
// component (testdata/monitoring), as a prometheus-operator user writes it.
var overlays = []string{"base", "overlays/kind", "overlays/production", "testdata/monitoring"}

// render builds the kustomization in dir, as `kubectl kustomize dir` would.
func render(t testing.TB, dir string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := manifests.Render(dir)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// crdDir holds the CustomResourceDefinitions the components use, installed
// before the manifests are applied (testdata/crds/generate.sh writes them).
const crdDir = "testdata/crds"

// startAPIServer starts etcd and kube-apiserver from KUBEBUILDER_ASSETS, with
// the CRDs in crdDir installed.
func startAPIServer(t *testing.T) *manifests.Client {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		msg := "KUBEBUILDER_ASSETS is unset: point it at etcd and kube-apiserver " +
			"(`setup-envtest use 1.32 -p path`, or `bash ../shared/offline/kube-binaries.sh DIR` where there are no downloads) and run `make test`"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	env := &envtest.Environment{
		CRDDirectoryPaths: []string{crdDir}, ErrorIfCRDPathMissing: true,
		// envtest's 20 s default was too short at load 55: kube-apiserver
		// did not answer in time, five times over. A hang guard, not a measure.
		ControlPlaneStartTimeout: 3 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	start := time.Now()
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("envtest stop: %v", err)
		}
	})
	t.Logf("kube-apiserver and etcd up in %s", time.Since(start).Round(time.Millisecond))
	c, err := manifests.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// podOf returns the first Pod of the Deployment or StatefulSet w.
func podOf(t *testing.T, w *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	pod, err := manifests.PodOf(w)
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// TestAPIServerAccepts applies every rendered object of every overlay to a real
// kube-apiserver: schema, field names (of the ServiceMonitor and the
// PrometheusRule too, against their CRDs) and admission all pass, with no
// warning. Pod Security "restricted" in the overlays' namespaces admits a Pod
// made from each workload's template.
func TestAPIServerAccepts(t *testing.T) {
	c := startAPIServer(t)
	ctx := t.Context()
	var warned []string
	apply := func(obj *unstructured.Unstructured, dryRun bool) error {
		ws, err := c.Apply(ctx, obj, dryRun)
		warned = append(warned, ws...)
		return err
	}
	take := func() []string {
		ws := warned
		warned = nil
		return ws
	}
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			start := time.Now()
			objs := render(t, dir)
			// Namespaced objects are admitted only into a namespace that
			// exists, and Pods only with a ServiceAccount that exists: those
			// are stored, the rest is a dry run.
			stored := func(kind string) bool { return kind == "Namespace" || kind == "ServiceAccount" }
			namespaced := slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == "Namespace" })
			for i, o := range objs {
				if namespaced && o.GetKind() != "Namespace" && o.GetNamespace() == "" {
					t.Errorf("%s %s has no namespace, in an overlay that creates one", o.GetKind(), o.GetName())
				}
				if o.GetKind() != "Namespace" && o.GetNamespace() == "" {
					objs[i] = o.DeepCopy()
					objs[i].SetNamespace("default")
				}
			}
			for _, kind := range []string{"Namespace", "ServiceAccount"} {
				for _, o := range objs {
					if o.GetKind() == kind {
						if err := apply(o, false); err != nil {
							t.Fatalf("%s %s: %v", kind, o.GetName(), err)
						}
					}
				}
			}
			pods := 0
			for _, o := range objs {
				if stored(o.GetKind()) {
					continue
				}
				if err := apply(o, true); err != nil {
					t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
				}
				if o.GetKind() == "Deployment" || o.GetKind() == "StatefulSet" {
					pods++
					if err := apply(podOf(t, o), true); err != nil {
						t.Errorf("a Pod of %s %s: %v", o.GetKind(), o.GetName(), err)
					}
				}
			}
			if ws := take(); len(ws) > 0 {
				t.Errorf("the API server warned:\n%s", strings.Join(ws, "\n"))
			}
			t.Logf("%d objects and %d pods accepted in %s", len(objs), pods, time.Since(start).Round(time.Millisecond))
		})
	}

	t.Run("misspelled field is rejected", func(t *testing.T) {
		dep := find(t, render(t, "overlays/kind"), "Deployment", "gok8s").DeepCopy()
		containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
		app := containers[0].(map[string]any)
		app["readinesProbe"] = app["readinessProbe"]
		delete(app, "readinessProbe")
		if err := unstructured.SetNestedSlice(dep.Object, containers, "spec", "template", "spec", "containers"); err != nil {
			t.Fatal(err)
		}
		err := apply(dep, true)
		if err == nil || !strings.Contains(err.Error(), "readinesProbe") {
			t.Fatalf("apply with readinesProbe: %v, want an error naming the field", err)
		}
		t.Logf("rejected: %v", err)
	})

	t.Run("restricted pod security is enforced", func(t *testing.T) {
		dep := find(t, render(t, "overlays/kind"), "Deployment", "gok8s").DeepCopy()
		if err := unstructured.SetNestedField(dep.Object, true, "spec", "template", "spec", "hostNetwork"); err != nil {
			t.Fatal(err)
		}
		_ = apply(dep, true)
		ws := take()
		if len(ws) == 0 || !strings.Contains(strings.Join(ws, " "), "hostNetwork") {
			t.Fatalf("a pod template with hostNetwork drew warnings %q, want one naming hostNetwork", ws)
		}
		err := apply(podOf(t, dep), true)
		if err == nil || !strings.Contains(err.Error(), "hostNetwork") {
			t.Fatalf("a Pod with hostNetwork: %v, want a rejection naming hostNetwork", err)
		}
		take()
	})

	t.Run("the PrometheusRule CRD validates", func(t *testing.T) {
		group := func(rule map[string]any) []any {
			return []any{map[string]any{"name": "test", "rules": []any{rule}}}
		}
		for _, tt := range []struct {
			name  string
			value []any
			want  string
		}{
			{"misspelled field", []any{map[string]any{"name": "test", "rulez": []any{}}}, "rulez"},
			{"bad duration", group(map[string]any{"alert": "A", "expr": "up == 0", "for": "1 minute"}), "for"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				pr := find(t, render(t, "testdata/monitoring"), "PrometheusRule", "gok8s").DeepCopy()
				if err := apply(pr, true); err != nil {
					t.Fatalf("unchanged: %v", err)
				}
				if err := unstructured.SetNestedSlice(pr.Object, tt.value, "spec", "groups"); err != nil {
					t.Fatal(err)
				}
				err := apply(pr, true)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("apply: %v, want an error naming %s", err, tt.want)
				}
				t.Logf("rejected: %v", err)
			})
		}
	})

	t.Run("the ServiceMonitor CRD validates", func(t *testing.T) {
		for _, tt := range []struct {
			name  string
			field []string
			value any
			want  string
		}{
			{"misspelled field", []string{"spec", "endpoints"}, []any{map[string]any{"port": "metrics", "intervall": "15s"}}, "intervall"},
			{"bad duration", []string{"spec", "endpoints"}, []any{map[string]any{"port": "metrics", "interval": "15 seconds"}}, "interval"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				sm := find(t, render(t, "testdata/monitoring"), "ServiceMonitor", "gok8s").DeepCopy()
				if err := apply(sm, true); err != nil {
					t.Fatalf("unchanged: %v", err)
				}
				if err := unstructured.SetNestedField(sm.Object, tt.value, tt.field...); err != nil {
					t.Fatal(err)
				}
				err := apply(sm, true)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("apply: %v, want an error naming %s", err, tt.want)
				}
				t.Logf("rejected: %v", err)
			})
		}
	})
}

// find returns the object of kind and name in objs.
func find(t testing.TB, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return nil
}
