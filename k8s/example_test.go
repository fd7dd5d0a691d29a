package k8s_test

import (
	"fmt"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The production overlay renders the app alone: no Secret, no database, no
// cache. The Secret gok8s-database is the team's to create.
func Example() {
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "overlays/production")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range rm.Resources() {
		fmt.Println(r.GetKind(), r.GetName())
	}
	// Output:
	// Namespace gok8s
	// ServiceAccount gok8s
	// ConfigMap gok8s
	// Deployment gok8s
	// Service gok8s
	// Service gok8s-metrics
	// PodDisruptionBudget gok8s
	// NetworkPolicy default-deny
	// NetworkPolicy gok8s
	// HorizontalPodAutoscaler gok8s
}
