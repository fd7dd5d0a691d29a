package k8s_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// overlays are the kustomizations under test, relative to this directory:
// the base, each overlay, and the production overlay with the monitoring
// component (testdata/monitoring), as a prometheus-operator user writes it.
var overlays = []string{"base", "overlays/kind", "overlays/production", "testdata/monitoring"}

// render builds the kustomization in dir, as `kubectl kustomize dir` would.
func render(t testing.TB, dir string) []*unstructured.Unstructured {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range rm.Resources() {
		// Through JSON, so that numbers are int64 as client-go expects.
		js, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, u)
	}
	if len(objs) == 0 {
		t.Fatalf("kustomize %s: no objects", dir)
	}
	return objs
}

// warnings collects the API server's warning headers, such as Pod Security
// admission's.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.list
	w.list = nil
	return l
}

// crdDir holds the CustomResourceDefinitions the components use, installed
// before the manifests are applied (testdata/crds/generate.sh writes them).
const crdDir = "testdata/crds"

// startAPIServer starts etcd and kube-apiserver from KUBEBUILDER_ASSETS, with
// the CRDs in crdDir installed.
func startAPIServer(t *testing.T) (client.Client, *warnings) {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		msg := "KUBEBUILDER_ASSETS is unset: point it at etcd and kube-apiserver " +
			"(`setup-envtest use 1.32 -p path`, or `bash ../shared/offline/kube-binaries.sh DIR` where there are no downloads) and run `make test`"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{crdDir}, ErrorIfCRDPathMissing: true}
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
	w := &warnings{}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = w
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

// apply sends obj with server-side apply and strict field validation; with
// dryRun the server validates and admits it without storing it.
func apply(ctx context.Context, c client.Client, obj *unstructured.Unstructured, dryRun bool) error {
	opts := []client.PatchOption{client.FieldOwner("gok8s-manifest-test"), client.ForceOwnership, client.FieldValidation("Strict")}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	return c.Patch(ctx, obj.DeepCopy(), client.Apply, opts...)
}

// podOf returns a Pod with the template of the Deployment or StatefulSet w, as
// its controller would create it.
func podOf(t *testing.T, w *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	tmpl, ok, err := unstructured.NestedMap(w.Object, "spec", "template")
	if err != nil || !ok {
		t.Fatalf("%s %s has no pod template: %v", w.GetKind(), w.GetName(), err)
	}
	pod := &unstructured.Unstructured{Object: tmpl}
	pod.SetAPIVersion("v1")
	pod.SetKind("Pod")
	pod.SetName(w.GetName() + "-0")
	pod.SetNamespace(w.GetNamespace())
	// A StatefulSet's pods mount a claim of each volumeClaimTemplate.
	claims, _, _ := unstructured.NestedSlice(w.Object, "spec", "volumeClaimTemplates")
	volumes, _, _ := unstructured.NestedSlice(pod.Object, "spec", "volumes")
	for _, c := range claims {
		name, _, _ := unstructured.NestedString(c.(map[string]any), "metadata", "name")
		volumes = append(volumes, map[string]any{
			"name":                  name,
			"persistentVolumeClaim": map[string]any{"claimName": name + "-" + pod.GetName()},
		})
	}
	if len(claims) > 0 {
		if err := unstructured.SetNestedSlice(pod.Object, volumes, "spec", "volumes"); err != nil {
			t.Fatal(err)
		}
	}
	return pod
}

// TestAPIServerAccepts applies every rendered object of every overlay to a real
// kube-apiserver: schema, field names (of the ServiceMonitor too, against its
// CRD) and admission all pass, with no warning. Pod Security "restricted" in
// the overlays' namespaces admits a Pod made from each workload's template.
func TestAPIServerAccepts(t *testing.T) {
	c, w := startAPIServer(t)
	ctx := t.Context()
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
						if err := apply(ctx, c, o, false); err != nil {
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
				if err := apply(ctx, c, o, true); err != nil {
					t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
				}
				if o.GetKind() == "Deployment" || o.GetKind() == "StatefulSet" {
					pods++
					if err := apply(ctx, c, podOf(t, o), true); err != nil {
						t.Errorf("a Pod of %s %s: %v", o.GetKind(), o.GetName(), err)
					}
				}
			}
			if ws := w.take(); len(ws) > 0 {
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
		err := apply(ctx, c, dep, true)
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
		_ = apply(ctx, c, dep, true)
		ws := w.take()
		if len(ws) == 0 || !strings.Contains(strings.Join(ws, " "), "hostNetwork") {
			t.Fatalf("a pod template with hostNetwork drew warnings %q, want one naming hostNetwork", ws)
		}
		err := apply(ctx, c, podOf(t, dep), true)
		if err == nil || !strings.Contains(err.Error(), "hostNetwork") {
			t.Fatalf("a Pod with hostNetwork: %v, want a rejection naming hostNetwork", err)
		}
		w.take()
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
				if err := apply(ctx, c, sm, true); err != nil {
					t.Fatalf("unchanged: %v", err)
				}
				if err := unstructured.SetNestedField(sm.Object, tt.value, tt.field...); err != nil {
					t.Fatal(err)
				}
				err := apply(ctx, c, sm, true)
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
