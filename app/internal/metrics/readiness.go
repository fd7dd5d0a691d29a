package metrics

import (
	"github.com/gok8s/gok8s/probes"
	"github.com/prometheus/client_golang/prometheus"
)

// Readiness holds the readiness series the alerts need beside [Probes]':
//
//	gok8s_readiness_transitions_total{from,to}  changes of the readiness state, by the state left and the state entered
//	gok8s_probe_check_optional{check}           1 for a check that never fails readiness (PROBE_OPTIONAL), 0 for one that does
//
// The transitions counter counts every change the readiness checker reports,
// however short, where gok8s_ready sampled at each scrape misses a pod that
// turned not ready and back between two scrapes: the flapping alert counts
// its ready → not_ready changes. (A pod's start is starting → not_ready →
// ready when its first checks have not run yet at MarkStarted, or starting →
// ready.) gok8s_probe_check_optional appears with a check's first run, as
// gok8s_probe_check_up does, so that an alert can tell a failing check that
// takes the pod out of the Service from one that does not.
//
// [Readiness.Observer] feeds it from the readiness checker. Its methods are
// safe for concurrent use.
type Readiness struct {
	transitions *prometheus.CounterVec
	optional    *prometheus.GaugeVec
}

// NewReadiness registers the series in reg and returns them. The transitions
// counter starts at zero for each change the lifecycle allows (it never goes
// back to starting, nor leaves draining), so that increase() sees the first
// one. NewReadiness panics if the series are already
// registered in reg.
func NewReadiness(reg prometheus.Registerer) *Readiness {
	r := &Readiness{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gok8s_readiness_transitions_total",
			Help: "Changes of the readiness state, by the state left and the state entered (starting, ready, not_ready, draining).",
		}, []string{"from", "to"}),
		optional: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gok8s_probe_check_optional",
			Help: "1 for a readiness check that never fails readiness (PROBE_OPTIONAL), 0 for one that does.",
		}, []string{"check"}),
	}
	reg.MustRegister(r.transitions, r.optional)
	starting, ready, notReady, draining := probes.StateStarting.String(), probes.StateReady.String(),
		probes.StateNotReady.String(), probes.StateDraining.String()
	for _, ch := range [][2]string{
		{starting, ready}, {starting, notReady}, {starting, draining},
		{ready, notReady}, {notReady, ready}, {ready, draining}, {notReady, draining},
	} {
		r.transitions.WithLabelValues(ch[0], ch[1])
	}
	return r
}

// Observer returns the [probes.Observer] that feeds r: pass it to
// probes.NewReadiness with probes.WithObserver, beside [Probes.Observer].
func (r *Readiness) Observer() probes.Observer {
	return probes.Observer{
		CheckDone:    func(run probes.CheckRun) { r.checkDone(run.Name, run.Optional) },
		StateChanged: func(tr probes.Transition) { r.transitions.WithLabelValues(tr.From.String(), tr.To.String()).Inc() },
	}
}

// checkDone notes whether check is optional.
func (r *Readiness) checkDone(check string, optional bool) {
	v := 0.0
	if optional {
		v = 1
	}
	r.optional.WithLabelValues(check).Set(v)
}
