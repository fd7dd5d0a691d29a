// Package k8s holds the tests of the Kubernetes manifests in this directory:
// each overlay is rendered with kustomize, applied with server-side apply and
// strict field validation to a real kube-apiserver started by envtest (which
// also admits a Pod of each workload under Pod Security "restricted"), and
// checked against policies the API server cannot know, such as probe paths
// the middleware serves, ConfigMap keys the app reads, and what each
// NetworkPolicy lets in and out. Package manifests renders the overlays and
// applies them, for these tests and for the kind scenarios in package
// disruption.
//
// The layout: base is the app alone; it reads DATABASE_URL from the Secret
// gok8s-database (key DATABASE_URL), which no manifest here creates in
// production. components/dev-backends adds PostgreSQL, memcached, that Secret
// with a dev-only password, and their NetworkPolicies; overlays/kind uses it.
// components/monitoring adds a ServiceMonitor, a PrometheusRule and a Grafana
// dashboard; testdata/crds holds the CRDs, generated from prometheus-operator's
// API types by the directive below. components/prometheus is a development
// Prometheus with the same rules, in the kind overlay. The rules themselves are
// tested in the module k8s/rules.
package k8s

//go:generate bash testdata/crds/generate.sh
