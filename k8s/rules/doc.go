// Package rules reads the Prometheus rule files, their promtool unit tests and
// the Grafana dashboard of k8s/components/monitoring, and its tests hold them
// to what the app really exports:
//
//   - promtool (from the pinned Prometheus image, PROMETHEUS_IMAGE) checks the
//     rule files and runs their unit tests, and every alert must have a test
//     that makes it fire and one that keeps it silent;
//   - every PromQL expression of the rules and the dashboard is parsed with
//     Prometheus' own parser, and every series and label it names must be one
//     the real app binary serves on its /metrics (or a recording rule's, or
//     Prometheus' up), so that a renamed series fails the build, not the alert;
//   - the PrometheusRule of the component holds exactly the rule files' groups
//     (`go generate` rewrites it), and every alert's runbook_url points at a
//     heading of README's "Alerts" section.
//
// A module of its own: Prometheus' module requires newer Kubernetes libraries
// than the manifest tests in k8s/go.mod use.
package rules

//go:generate go test -run ^TestPrometheusRule$ -update .
