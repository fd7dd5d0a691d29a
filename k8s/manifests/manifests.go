package manifests

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Render builds the kustomization in dir, as `kubectl kustomize dir` does, and
// returns its objects in order. A kustomization that makes nothing is an
// error.
func Render(dir string) ([]*unstructured.Unstructured, error) {
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	objs := make([]*unstructured.Unstructured, 0, len(rm.Resources()))
	for _, r := range rm.Resources() {
		// Through JSON, so that numbers are int64 as client-go expects.
		js, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("kustomize %s: %s %s: %w", dir, r.GetKind(), r.GetName(), err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("kustomize %s: %s %s: %w", dir, r.GetKind(), r.GetName(), err)
		}
		objs = append(objs, u)
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("kustomize %s: no objects", dir)
	}
	return objs, nil
}

// PodOf returns the first Pod the controller of w, a Deployment or a
// StatefulSet, would create: w's pod template as a Pod named w's name + "-0"
// in w's namespace. A StatefulSet's Pod also mounts the claim of each
// volumeClaimTemplate, named <template>-<pod>, as the StatefulSet controller
// adds them.
func PodOf(w *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	if k := w.GetKind(); k != "Deployment" && k != "StatefulSet" {
		return nil, fmt.Errorf("%s %s: not a Deployment or StatefulSet", k, w.GetName())
	}
	tmpl, ok, err := unstructured.NestedMap(w.Object, "spec", "template")
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", w.GetKind(), w.GetName(), err)
	}
	if !ok {
		return nil, fmt.Errorf("%s %s has no pod template", w.GetKind(), w.GetName())
	}
	pod := &unstructured.Unstructured{Object: tmpl}
	pod.SetAPIVersion("v1")
	pod.SetKind("Pod")
	pod.SetName(w.GetName() + "-0")
	pod.SetNamespace(w.GetNamespace())
	claims, _, err := unstructured.NestedSlice(w.Object, "spec", "volumeClaimTemplates")
	if err != nil || len(claims) == 0 {
		return pod, err
	}
	volumes, _, err := unstructured.NestedSlice(pod.Object, "spec", "volumes")
	if err != nil {
		return nil, err
	}
	for _, c := range claims {
		m, ok := c.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s %s: a volumeClaimTemplate is not an object", w.GetKind(), w.GetName())
		}
		name, _, _ := unstructured.NestedString(m, "metadata", "name")
		volumes = append(volumes, map[string]any{
			"name":                  name,
			"persistentVolumeClaim": map[string]any{"claimName": name + "-" + pod.GetName()},
		})
	}
	if err := unstructured.SetNestedSlice(pod.Object, volumes, "spec", "volumes"); err != nil {
		return nil, err
	}
	return pod, nil
}
