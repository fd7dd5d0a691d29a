// Package cluster proves in a kind cluster that clients lose no request while
// the app's pods roll, move and lose a dependency.
//
// [Start] sends a steady mix of redirects, reads and creates to the app at a
// fixed rate, half on keep-alive connections and half on a new connection per
// request, and records every failure with its time and kind; [Load.Stop]
// returns a [Summary] with latency percentiles. The scenarios themselves run in
// kind_test.go, behind the build tag kind (`make kind-e2e`): rollouts, a node
// drain, scaling, a memcached and a PostgreSQL outage, NetworkPolicy
// enforcement, Pod Security admission and the metrics of every pod.
package cluster
