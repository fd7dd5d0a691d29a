package probes_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
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
		// would set its gauges here.
		StateChanged: func(tr probes.Transition) { transitions <- tr },
	}))
	if err != nil {
		panic(err)
	}
	_ = ready.Check(context.Background()) // the check runs while starting
	ready.MarkStarted()
	ready.MarkDraining()
	for range 2 {
		tr := <-transitions
		fmt.Println(tr.From, "->", tr.To, tr.Failing)
	}
	fmt.Println("now:", ready.State())
	// Output:
	// starting -> ready []
	// ready -> draining [shutdown]
	// now: draining
}
