// Package k8s holds the tests of the Kubernetes manifests in this directory:
// each overlay is rendered with kustomize, applied with server-side apply and
// strict field validation to a real kube-apiserver started by envtest, and
// checked against policies the API server cannot know, such as probe paths
// the middleware serves and ConfigMap keys the app reads.
package k8s
