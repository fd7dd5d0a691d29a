// Package manifests renders this repository's kustomizations and submits what
// they make to an API server, for the two places that check them: the
// manifest tests (a kube-apiserver from envtest, package k8s) and the kind
// scenarios (a cluster, package disruption).
//
// [Render] builds a kustomization as `kubectl kustomize` does. [PodOf] makes
// the Pod a Deployment's or a StatefulSet's controller would create, claims
// included, so that Pod Security admission can judge it without a controller
// running. [Client.Apply] sends an object with server-side apply and strict
// field validation, for real or as a dry run through admission, and returns
// the API server's warnings about that object.
package manifests
