package k8s_test

import (
	"fmt"

	"github.com/gok8s/gok8s/k8s/manifests"
)

// The production overlay renders the app alone: no Secret, no database, no
// cache. The Secret gok8s-database is the team's to create.
func Example() {
	objs, err := manifests.Render("overlays/production")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, o := range objs {
		fmt.Println(o.GetKind(), o.GetName())
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
