// Package grpchealth serves the gRPC health service, grpc.health.v1.Health,
// from a [probes.Readiness], so that one readiness state answers HTTP probes
// (package middleware) and gRPC probes alike: the kubelet's grpc probes,
// grpc-health-probe, and clients that watch a backend's health.
//
// The services a [Server] knows:
//
//	""         the whole readiness, as /readyz: SERVING or NOT_SERVING
//	readiness  the same
//	liveness   SERVING while the process serves, as /livez: never a dependency
//	<check>    one check, as /readyz/<check>: startup, shutdown,
//	           postgres/default, memcached/cache-0:11211, …
//	<group>    every check of a group, as /readyz/<group>: postgres, memcached
//
// An optional check reports its own state, though it never makes readiness
// NOT_SERVING. Any other name is unknown: NOT_FOUND for Check and
// SERVICE_UNKNOWN for Watch, as grpc-go's own health server answers. List
// lists every known service with its state.
//
// Check reads the cached outcome as /readyz does and waits at most the
// Readiness's timeout; no response carries an error's text. Watch sends the
// current state, then each change as the Readiness reports it (no polling):
// a slow reader skips states but always ends on the current one. While a
// Watch is open the Readiness keeps its checks fresh by itself, so a watcher
// learns of an outage without any prober.
//
// From [probes.Readiness.MarkDraining] on, "", readiness and every check are
// NOT_SERVING at once (watchers see it), while liveness stays SERVING. Call
// [Server.Shutdown] before grpc.Server.GracefulStop: it ends every Watch,
// which grpc-go's own health server leaves open (grpc/grpc-go#8776), so that
// GracefulStop does not wait for clients that never hang up.
//
// The package depends on grpc-go; packages probes and middleware do not.
package grpchealth
