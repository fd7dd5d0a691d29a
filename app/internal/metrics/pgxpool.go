package metrics

import (
	"maps"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Pools returns a [prometheus.Collector] that reads [pgxpool.Pool.Stat] of each
// pool at every scrape and reports it with the pool's name as the label pool:
//
//	gok8s_pgxpool_acquired_connections          connections lent out now
//	gok8s_pgxpool_idle_connections              connections idle in the pool now
//	gok8s_pgxpool_constructing_connections      connections being opened now
//	gok8s_pgxpool_total_connections             all three together
//	gok8s_pgxpool_max_connections               the pool's limit
//	gok8s_pgxpool_acquires_total                successful acquires
//	gok8s_pgxpool_acquire_duration_seconds_total time spent in successful acquires
//	gok8s_pgxpool_canceled_acquires_total       acquires whose context ended first
//	gok8s_pgxpool_empty_acquires_total          acquires that had to wait for a connection
//	gok8s_pgxpool_empty_acquire_wait_seconds_total time those waited
//	gok8s_pgxpool_new_connections_total         connections opened
//	gok8s_pgxpool_max_lifetime_destroys_total   connections closed for their age
//	gok8s_pgxpool_max_idle_destroys_total       connections closed for idling
func Pools(pools map[string]*pgxpool.Pool) prometheus.Collector {
	return &poolCollector{pools: pools, names: slices.Sorted(maps.Keys(pools)), stats: poolStats()}
}

type poolCollector struct {
	pools map[string]*pgxpool.Pool
	names []string // sorted, for a stable output
	stats []poolStat
}

func poolDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("gok8s_pgxpool_"+name, help, []string{"pool"}, nil)
}

var _ prometheus.Collector = (*poolCollector)(nil)

// poolStat is one series of the pool collector: its description, type and
// how to read it from a Stat.
type poolStat struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(*pgxpool.Stat) float64
}

// poolStats returns the series of the pool collector.
func poolStats() []poolStat {
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	return []poolStat{
		{poolDesc("acquired_connections", "Connections of the pool lent out now."), gauge,
			func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) }},
		{poolDesc("idle_connections", "Connections idle in the pool now."), gauge,
			func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) }},
		{poolDesc("constructing_connections", "Connections of the pool being opened now."), gauge,
			func(s *pgxpool.Stat) float64 { return float64(s.ConstructingConns()) }},
		{poolDesc("total_connections", "Connections of the pool now: acquired, idle and being opened."), gauge,
			func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) }},
		{poolDesc("max_connections", "Most connections the pool opens."), gauge,
			func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) }},
		{poolDesc("acquires_total", "Successful acquires of a connection from the pool."), counter,
			func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) }},
		{poolDesc("acquire_duration_seconds_total", "Time spent in successful acquires."), counter,
			func(s *pgxpool.Stat) float64 { return s.AcquireDuration().Seconds() }},
		{poolDesc("canceled_acquires_total", "Acquires whose context ended before they got a connection."), counter,
			func(s *pgxpool.Stat) float64 { return float64(s.CanceledAcquireCount()) }},
		{poolDesc("empty_acquires_total", "Successful acquires that waited because no connection was idle."), counter,
			func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) }},
		{poolDesc("empty_acquire_wait_seconds_total", "Time successful acquires waited because no connection was idle."), counter,
			func(s *pgxpool.Stat) float64 { return s.EmptyAcquireWaitTime().Seconds() }},
		{poolDesc("new_connections_total", "Connections the pool opened."), counter,
			func(s *pgxpool.Stat) float64 { return float64(s.NewConnsCount()) }},
		{poolDesc("max_lifetime_destroys_total", "Connections closed because they reached their maximum lifetime."), counter,
			func(s *pgxpool.Stat) float64 { return float64(s.MaxLifetimeDestroyCount()) }},
		{poolDesc("max_idle_destroys_total", "Connections closed because they idled too long."), counter,
			func(s *pgxpool.Stat) float64 { return float64(s.MaxIdleDestroyCount()) }},
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range c.stats {
		ch <- s.desc
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, name := range c.names {
		st := c.pools[name].Stat()
		for _, s := range c.stats {
			ch <- prometheus.MustNewConstMetric(s.desc, s.typ, s.value(st), name)
		}
	}
}
