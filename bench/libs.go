// Package bench puts gok8s's probes side by side with the Go health-check
// libraries people pick instead, behind one adapter each, so that the same
// workloads run against all of them in one process: benchmarks in
// bench_test.go, the hung-check and error-text scenarios in scenarios.go, and
// the report in cmd/compare (`make bench-compare` writes docs/benchmarks.md).
package bench

import (
	"context"
	"net/http"
	"time"

	gosundheit "github.com/AppsFlyer/go-sundheit"
	sundheitchecks "github.com/AppsFlyer/go-sundheit/checks"
	sundheithttp "github.com/AppsFlyer/go-sundheit/http"
	alhealth "github.com/alexliesenfeld/health"
	"github.com/gok8s/gok8s/middleware"
	"github.com/gok8s/gok8s/probes"
	hellofresh "github.com/hellofresh/health-go/v5"
	"github.com/heptiolabs/healthcheck"
	"k8s.io/apiserver/pkg/server/healthz"
)

// A Check is one readiness check, as each library is given it.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Settings are what a workload asks of a library, where it has the knob.
type Settings struct {
	// Timeout bounds one check (libraries without a timeout ignore it).
	Timeout time.Duration
	// NoCache turns off result caching, to measure a check's execution.
	NoCache bool
}

// A Lib builds a library's liveness and readiness handlers. Each handler is
// served as mounted in a service: a request for Path on Handler.
type Lib struct {
	Name string
	// Liveness returns a handler answering liveness on the returned path.
	Liveness func() (http.Handler, string)
	// Readiness returns a handler answering readiness for checks on the
	// returned path, and a function that stops its background work.
	Readiness func(checks []Check, s Settings) (http.Handler, string, func())
	// Detail is the request for the most detailed readiness answer about a
	// check named "db", as an operator would ask it.
	Detail string
}

// Libs returns the libraries under comparison, gok8s first.
func Libs() []Lib {
	return []Lib{
		{
			Name:   "gok8s",
			Detail: "/readyz/db?verbose",
			Liveness: func() (http.Handler, string) {
				return middleware.Probes(nil)(http.NotFoundHandler()), "/livez"
			},
			Readiness: func(checks []Check, s Settings) (http.Handler, string, func()) {
				var cs []probes.Checker
				for _, c := range checks {
					cs = append(cs, probes.Func(c.Name, c.Fn))
				}
				opts := []probes.Option{probes.WithTimeout(s.Timeout)}
				if s.NoCache {
					opts = append(opts, probes.WithTTL(0))
				}
				ready, err := probes.NewReadiness(cs, opts...)
				if err != nil {
					panic(err)
				}
				ready.MarkStarted()
				return middleware.Probes(ready)(http.NotFoundHandler()), "/readyz", func() {}
			},
		},
		{
			Name:   "heptiolabs/healthcheck",
			Detail: "/ready?full=1",
			Liveness: func() (http.Handler, string) {
				return healthcheck.NewHandler(), "/live"
			},
			Readiness: func(checks []Check, s Settings) (http.Handler, string, func()) {
				h := healthcheck.NewHandler()
				for _, c := range checks {
					fn := c.Fn
					// Its checks take no context; Timeout is its decorator for a deadline.
					h.AddReadinessCheck(c.Name, healthcheck.Timeout(func() error { return fn(context.Background()) }, s.Timeout))
				}
				return h, "/ready", func() {}
			},
		},
		{
			Name:   "alexliesenfeld/health",
			Detail: "/",
			Liveness: func() (http.Handler, string) {
				return alhealth.NewHandler(alhealth.NewChecker()), "/"
			},
			Readiness: func(checks []Check, s Settings) (http.Handler, string, func()) {
				opts := []alhealth.CheckerOption{alhealth.WithTimeout(s.Timeout)}
				if s.NoCache {
					opts = append(opts, alhealth.WithDisabledCache())
				}
				for _, c := range checks {
					opts = append(opts, alhealth.WithCheck(alhealth.Check{Name: c.Name, Check: c.Fn}))
				}
				return alhealth.NewHandler(alhealth.NewChecker(opts...)), "/", func() {}
			},
		},
		{
			Name:   "hellofresh/health-go",
			Detail: "/",
			Liveness: func() (http.Handler, string) {
				h, err := hellofresh.New()
				if err != nil {
					panic(err)
				}
				return h.Handler(), "/"
			},
			Readiness: func(checks []Check, s Settings) (http.Handler, string, func()) {
				var cs []hellofresh.Config
				for _, c := range checks {
					cs = append(cs, hellofresh.Config{Name: c.Name, Timeout: s.Timeout, Check: c.Fn})
				}
				h, err := hellofresh.New(hellofresh.WithChecks(cs...))
				if err != nil {
					panic(err)
				}
				return h.Handler(), "/", func() {}
			},
		},
		{
			Name:   "AppsFlyer/go-sundheit",
			Detail: "/",
			Liveness: func() (http.Handler, string) {
				return sundheithttp.HandleHealthJSON(gosundheit.New()), "/"
			},
			Readiness: func(checks []Check, s Settings) (http.Handler, string, func()) {
				// It runs each check in the background every ExecutionPeriod;
				// a request reads the last results and never runs a check.
				h := gosundheit.New()
				for _, c := range checks {
					fn := c.Fn
					err := h.RegisterCheck(&sundheitchecks.CustomCheck{
						CheckName: c.Name,
						CheckFunc: func(ctx context.Context) (any, error) { return nil, fn(ctx) },
					}, gosundheit.ExecutionPeriod(time.Second), gosundheit.ExecutionTimeout(s.Timeout))
					if err != nil {
						panic(err)
					}
				}
				return sundheithttp.HandleHealthJSON(h), "/", h.DeregisterAll
			},
		},
		{
			Name:   "k8s.io/apiserver healthz",
			Detail: "/readyz/db",
			Liveness: func() (http.Handler, string) {
				mux := http.NewServeMux()
				healthz.InstallLivezHandler(mux)
				return mux, "/livez"
			},
			Readiness: func(checks []Check, s Settings) (http.Handler, string, func()) {
				// Its checks run one after another, with no timeout of their own.
				var cs []healthz.HealthChecker
				for _, c := range checks {
					fn := c.Fn
					cs = append(cs, healthz.NamedCheck(c.Name, func(r *http.Request) error { return fn(r.Context()) }))
				}
				mux := http.NewServeMux()
				healthz.InstallReadyzHandler(mux, cs...)
				return mux, "/readyz", func() {}
			},
		},
	}
}
