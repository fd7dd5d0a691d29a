// Package middleware serves Kubernetes liveness and readiness probes over HTTP.
//
// [Probes] wraps an application's handler and answers the probe paths (/livez,
// /healthz and /readyz by default) before any of the application's own
// middleware or handlers run, so that a probe costs no database call, no access
// log line and no authentication. [LivenessHandler] and [ReadinessHandler] are the
// same endpoints as plain handlers, for mounting on a mux.
//
// Liveness checks nothing but that the process serves HTTP. Readiness reports a
// [probes.Readiness]. Bodies follow the Kubernetes healthz grammar ("ok",
// "[+]name ok", "[-]name failed: reason withheld") and never carry error text.
package middleware
