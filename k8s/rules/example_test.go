package rules_test

import (
	"cmp"
	"fmt"

	"github.com/gok8s/gok8s/k8s/rules"
)

// The readiness alerts, their severities and how long each condition must
// hold before it notifies.
func ExampleReadFile() {
	f, err := rules.ReadFile("../components/monitoring/rules/alerts.rules.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range f.Rules() {
		fmt.Println(r.Name(), r.Labels["severity"], "for", cmp.Or(r.For, "0s"))
	}
	// Output:
	// NoReadyPod critical for 1m
	// ReplicasNotReady warning for 10m
	// CriticalCheckFailing warning for 2m
	// OptionalCheckFailing warning for 5m
	// ReadinessFlapping warning for 0s
	// DrainingTooLong warning for 0s
	// PostgresPoolExhausted warning for 5m
	// CacheErrorsHigh warning for 5m
}
