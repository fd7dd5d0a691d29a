// Package metrics builds the service's Prometheus series with client_golang and
// serves them, with net/http/pprof, on the admin listener (ADMIN_ADDR).
//
// Every series is named gok8s_…; the README's "Metrics" section lists them.
// Nothing here touches the global registry: main makes one with
// [prometheus.NewRegistry] and hands it to each constructor.
//
//   - [HTTPHandler] counts API requests by route pattern, method and code;
//   - [Probes] turns the readiness checker's observer calls into per-check and
//     readiness series;
//   - [Pools] reads pgxpool.Stat of each pool at scrape time;
//   - [Cache] counts the link cache's hits, misses and errors, and shows each
//     memcached server's circuit breaker and the calls it skipped;
//   - [BuildInfo] is the constant gok8s_build_info series;
//   - [AdminHandler] serves /metrics and /debug/pprof/.
package metrics
