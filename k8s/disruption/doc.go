// Package disruption proves in a kind cluster that clients lose no request
// while the app's pods roll, move, scale and lose a dependency: the voluntary
// and involuntary disruptions Kubernetes puts a service through.
//
// [Start] sends a steady mix of redirects, reads and creates to the app at a
// fixed rate, half on keep-alive connections and half on a new connection per
// request, and records every failure with its time and kind; [Load.Stop]
// returns a [Summary] with latency percentiles. [StartGRPC] does the same for
// the gRPC API (GetLink, GetLink, CreateLink on a few long-lived connections),
// beside it in every scenario; [GRPCLoad.Stop] returns a [GRPCSummary]. The
// scenarios themselves run
// behind the build tag kind (`make kind-e2e`): scenarios_test.go holds
// rollouts, a node drain, scaling, a memcached and a PostgreSQL outage, and
// outages_test.go what the outages and the drain of a whole worker must show;
// networkpolicy_test.go, podsecurity_test.go and metrics_test.go check
// NetworkPolicy enforcement, Pod Security admission and the metrics of every
// pod under the same load; grpc_test.go runs the gRPC load and measures how
// its calls spread over the pods a scale-up adds; alerts_test.go watches the
// cluster's Prometheus (no alert during rollouts, a drain and scaling; a
// PostgreSQL outage pages and resolves); harness_test.go and watcher_test.go
// hold what they share.
package disruption
