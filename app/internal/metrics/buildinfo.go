package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// BuildInfo returns the collector of gok8s_build_info{version,goversion}, which
// is always 1: its labels carry the service's version and the Go version it was
// built with, for joins such as `* on(instance) group_left(version) gok8s_build_info`.
func BuildInfo(version string) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "gok8s_build_info",
		Help:        "Always 1; the labels give the service's version and the Go version that built it.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	}, func() float64 { return 1 })
}
