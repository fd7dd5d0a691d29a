package metrics

import (
	"time"

	"github.com/gok8s/gok8s/probes"
	"github.com/prometheus/client_golang/prometheus"
)

// Results of a check run, the values of gok8s_probe_check_runs_total's result label.
const (
	ResultOK      = "ok"
	ResultFailed  = "failed"
	ResultTimeout = "timeout"
	ResultPanic   = "panic"
)

// Probes holds the readiness series:
//
//	gok8s_probe_check_up{check}                 1 if the check's last run passed, else 0
//	gok8s_probe_check_duration_seconds{check}   histogram of run durations
//	gok8s_probe_check_runs_total{check,result}  runs by result: ok, failed, timeout, panic
//	gok8s_ready                                 1 while the readiness state is ready, else 0
//	gok8s_readiness_state{state}                1 for the current state, 0 for the others
//	gok8s_readiness_state_changed_timestamp_seconds
//	                                            Unix time of the latest change of state
//
// [Probes.Observer] feeds it from the readiness checker; until the first
// transition the state is "starting", since NewProbes was called. An
// observer that falls behind is told of the latest state, so the state series
// always end on the current one; runs beyond its queue are dropped, and
// [DroppedRuns] counts them. Its methods are safe for concurrent use.
type Probes struct {
	up       *prometheus.GaugeVec
	duration *prometheus.HistogramVec
	runs     *prometheus.CounterVec
	ready    prometheus.Gauge
	state    *prometheus.GaugeVec
	changed  prometheus.Gauge
}

// NewProbes registers the readiness series in reg and returns them. The
// series of each named check start at zero runs, so that rate() sees the
// first failure; gok8s_probe_check_up appears with a check's first run.
// NewProbes panics if the series are already registered in reg.
func NewProbes(reg prometheus.Registerer, checks []string) *Probes {
	p := &Probes{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gok8s_probe_check_up",
			Help: "1 if the readiness check's last run passed, 0 if it failed, timed out or panicked.",
		}, []string{"check"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gok8s_probe_check_duration_seconds",
			Help:    "Time one run of a readiness check took.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"check"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gok8s_probe_check_runs_total",
			Help: "Runs of a readiness check, by result: ok, failed, timeout or panic.",
		}, []string{"check", "result"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gok8s_ready",
			Help: "1 while the service is ready (its /readyz answers 200), else 0.",
		}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gok8s_readiness_state",
			Help: "1 for the current readiness state (starting, ready, not_ready or draining), 0 for the others.",
		}, []string{"state"}),
		// The age of a state at a scrape, timestamp(x) - x, is measured by
		// the scrape itself: DrainingTooLong reads it so, and a pod that has
		// gone keeps the age of its last scrape, not one that grows.
		changed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gok8s_readiness_state_changed_timestamp_seconds",
			Help: "Unix time at which the readiness state last changed (gok8s_readiness_state).",
		}),
	}
	reg.MustRegister(p.up, p.duration, p.runs, p.ready, p.state, p.changed)
	for _, c := range checks {
		p.duration.WithLabelValues(c)
		for _, r := range []string{ResultOK, ResultFailed, ResultTimeout, ResultPanic} {
			p.runs.WithLabelValues(c, r)
		}
	}
	p.setState(probes.StateStarting, time.Now())
	return p
}

// Observer returns the [probes.Observer] that feeds p: pass it to
// probes.NewReadiness with probes.WithObserver. A run that panicked counts as
// panic, one that timed out as timeout, any other error as failed.
func (p *Probes) Observer() probes.Observer {
	return probes.Observer{
		CheckDone:    func(run probes.CheckRun) { p.checkDone(run.Name, resultOf(run), run.Duration) },
		StateChanged: func(tr probes.Transition) { p.setState(tr.To, tr.At) },
	}
}

// resultOf returns the result label of run.
func resultOf(run probes.CheckRun) string {
	switch {
	case run.Panicked:
		return ResultPanic
	case run.TimedOut:
		return ResultTimeout
	case run.Err != nil:
		return ResultFailed
	}
	return ResultOK
}

// checkDone counts one run of check with result, which took d.
func (p *Probes) checkDone(check, result string, d time.Duration) {
	up := 0.0
	if result == ResultOK {
		up = 1
	}
	p.up.WithLabelValues(check).Set(up)
	p.duration.WithLabelValues(check).Observe(d.Seconds())
	p.runs.WithLabelValues(check, result).Inc()
}

// setState makes state the current readiness state, entered at since.
func (p *Probes) setState(state probes.State, since time.Time) {
	for _, s := range []probes.State{probes.StateStarting, probes.StateReady, probes.StateNotReady, probes.StateDraining} {
		v := 0.0
		if s == state {
			v = 1
		}
		p.state.WithLabelValues(s.String()).Set(v)
	}
	p.changed.Set(float64(since.UnixNano()) / 1e9)
	if state == probes.StateReady {
		p.ready.Set(1)
	} else {
		p.ready.Set(0)
	}
}

// DroppedRuns returns the counter gok8s_probe_check_runs_dropped_total, read
// from ready at each scrape: the check runs that an observer of ready, such as
// [Probes.Observer], was not told of because it was [probes.MaxPendingEvents]
// events behind. While it grows, gok8s_probe_check_runs_total undercounts.
func DroppedRuns(ready *probes.Readiness) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "gok8s_probe_check_runs_dropped_total",
		Help: "Readiness check runs not reported to a metrics observer that was too far behind; the runs counter misses them.",
	}, func() float64 { return float64(ready.DroppedRuns()) })
}
