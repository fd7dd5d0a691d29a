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
// "[+]name ok", "[+]name excluded with group: ok", "[-]name failed: reason
// withheld") and never carry error text. A verbose body ends "<endpoint> check
// passed" (or failed), the endpoint being the probe path's first segment, as
// Kubernetes' InstallPathHandler names it: /healthz/ready ends "healthz check
// passed". p/ is 404 with net/http's "404 page not found".
//
// Reading the source: middleware.go holds the options, [Probes], the two
// handlers and the request flow; paths.go the matching of probe paths;
// body.go the text and JSON bodies; accept.go the Accept negotiation.
package middleware
