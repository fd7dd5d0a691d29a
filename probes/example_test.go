package probes_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/gok8s/gok8s/probes"
)

func ExampleFunc() {
	disk := probes.Func("disk", func(ctx context.Context) error {
		return errors.New("no space left")
	})
	fmt.Println(disk.Name(), disk.Check(context.Background()))
	// Output: disk no space left
}

func ExampleNewReadiness() {
	ready, err := probes.NewReadiness([]probes.Checker{
		probes.Func("postgres/default", func(context.Context) error { return nil }),
		probes.Optional(probes.Func("memcached/cache:11211", func(context.Context) error {
			return errors.New("connection refused")
		})),
	}, probes.WithTimeout(500*time.Millisecond), probes.WithTTL(time.Second))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	fmt.Println("before start-up:", ready.Check(ctx))
	ready.MarkStarted()
	for _, res := range ready.Report(ctx, probes.Filter{}).Results {
		fmt.Printf("%s failed=%v optional=%v\n", res.Name, res.Err != nil, res.Optional)
	}
	fmt.Println("started:", ready.Check(ctx))
	ready.MarkDraining()
	fmt.Println("draining:", ready.Check(ctx))
	// Output:
	// before start-up: probes: Starting up
	// startup failed=false optional=false
	// shutdown failed=false optional=false
	// postgres/default failed=false optional=false
	// memcached/cache:11211 failed=true optional=true
	// started: <nil>
	// draining: probes: Shutting down
}

func ExamplePostgresPools() {
	// In a service these are *pgxpool.Pool values; any Ping(ctx) error will do.
	pools := map[string]probes.PingerFunc{
		"replica": func(context.Context) error { return errors.New("refused") },
		"primary": func(context.Context) error { return nil },
	}
	for _, c := range probes.PostgresPools(pools) {
		fmt.Println(c.Name(), c.Check(context.Background()))
	}
	// Output:
	// postgres/primary <nil>
	// postgres/replica ping: refused
}

func ExampleNotReady() {
	err := fmt.Errorf("migrations: %w", &probes.NotReady{Content: "Migrating", Err: errors.New("lock held")})

	if nr, ok := errors.AsType[*probes.NotReady](err); ok {
		rec := httptest.NewRecorder()
		nr.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	// Output: 503 Migrating
}

func ExampleWithObserver() {
	transitions := make(chan probes.Transition, 10)
	ready, err := probes.NewReadiness([]probes.Checker{
		probes.Func("postgres/default", func(context.Context) error { return nil }),
	}, probes.WithObserver(probes.Observer{
		// Called off the probe's path, one event at a time: a metrics exporter
		// would set its gauges here. An observer that falls behind skips
		// states, but is always told of the current one.
		StateChanged: func(tr probes.Transition) { transitions <- tr },
	}))
	if err != nil {
		panic(err)
	}
	_ = ready.Check(context.Background()) // the check runs while starting
	ready.MarkStarted()
	tr := <-transitions
	fmt.Println(tr.From, "->", tr.To, tr.Failing)
	ready.MarkDraining()
	tr = <-transitions
	fmt.Println(tr.From, "->", tr.To, tr.Failing)
	fmt.Println("now:", ready.State())
	// Output:
	// starting -> ready []
	// ready -> draining [shutdown]
	// now: draining
}

func ExampleReadiness_Status() {
	ready, err := probes.NewReadiness([]probes.Checker{
		probes.Func("postgres/default", func(context.Context) error { return nil }),
		probes.Optional(probes.Func("memcached/cache:11211", func(context.Context) error {
			return errors.New("connection refused")
		})),
	})
	if err != nil {
		panic(err)
	}
	ready.MarkStarted()
	_ = ready.Report(context.Background(), probes.Filter{}) // runs the checks; Status runs none
	for _, name := range []string{"", "startup", "postgres", "postgres/default", "memcached", "redis"} {
		ok, found := ready.Status(name)
		fmt.Printf("%q ok=%v found=%v\n", name, ok, found)
	}
	// Output:
	// "" ok=true found=true
	// "startup" ok=true found=true
	// "postgres" ok=true found=true
	// "postgres/default" ok=true found=true
	// "memcached" ok=false found=true
	// "redis" ok=false found=false
}

// A watcher, such as a gRPC health Watch stream, reads Status once and then
// again on each signal. While the subscription is open, the checks run as
// their TTL ends, so the watcher sees an outage without any probe request.
func ExampleReadiness_Subscribe() {
	var down atomic.Bool
	ready, err := probes.NewReadiness([]probes.Checker{
		probes.Func("postgres/default", func(context.Context) error {
			if down.Load() {
				return errors.New("connection refused")
			}
			return nil
		}),
	}, probes.WithTTL(10*time.Millisecond))
	if err != nil {
		panic(err)
	}
	ready.MarkStarted()

	sub := ready.Subscribe()
	defer sub.Close()
	// await reads the outcome, then again after each signal, until it is want.
	await := func(want bool) bool {
		for {
			if ok, _ := ready.Status(""); ok == want {
				return ok
			}
			<-sub.C
		}
	}
	fmt.Println("serving:", await(true)) // the subscription ran the check
	down.Store(true)
	fmt.Println("serving:", await(false)) // its next run, a TTL later, failed
	down.Store(false)
	fmt.Println("serving:", await(true))
	// Output:
	// serving: true
	// serving: false
	// serving: true
}
