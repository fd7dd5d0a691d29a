package manifests_test

import (
	"fmt"

	"github.com/gok8s/gok8s/k8s/manifests"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The kind overlay's PostgreSQL is a StatefulSet: its first Pod mounts the
// claim its controller would make from the volumeClaimTemplate.
func ExamplePodOf() {
	objs, err := manifests.Render("../overlays/kind")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, o := range objs {
		if o.GetKind() != "StatefulSet" {
			continue
		}
		pod, err := manifests.PodOf(o)
		if err != nil {
			fmt.Println(err)
			return
		}
		volumes, _, _ := unstructured.NestedSlice(pod.Object, "spec", "volumes")
		for _, v := range volumes {
			claim, ok, _ := unstructured.NestedString(v.(map[string]any), "persistentVolumeClaim", "claimName")
			if ok {
				fmt.Println(pod.GetNamespace(), pod.GetName(), "mounts claim", claim)
			}
		}
	}
	// Output:
	// gok8s postgres-0 mounts claim data-postgres-0
}
