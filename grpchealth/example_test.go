package grpchealth_test

import (
	"context"
	"fmt"
	"log"

	"github.com/gok8s/gok8s/grpchealth"
	"github.com/gok8s/gok8s/probes"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// A Server answers from the Readiness the HTTP probes use: register it on
// the gRPC server, and on shutdown call Shutdown before GracefulStop.
func ExampleNewServer() {
	ready, err := probes.NewReadiness([]probes.Checker{
		probes.Func("postgres/default", func(context.Context) error { return nil }),
	})
	if err != nil {
		log.Fatal(err)
	}
	health := grpchealth.NewServer(ready)
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health)

	ask := func(service string) {
		resp, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			fmt.Printf("%q: %v\n", service, status.Code(err))
			return
		}
		fmt.Printf("%q: %v\n", service, resp.GetStatus())
	}
	ask("readiness") // not started yet
	ready.MarkStarted()
	ask("readiness")
	ask("postgres")
	ready.MarkDraining() // on SIGTERM: every service but liveness turns NOT_SERVING
	ask("readiness")
	ask("postgres/default")
	ask("liveness")
	ask("redis")

	// Then, after the shutdown delay:
	health.Shutdown() // ends the Watch streams
	srv.GracefulStop()
	// Output:
	// "readiness": NOT_SERVING
	// "readiness": SERVING
	// "postgres": SERVING
	// "readiness": NOT_SERVING
	// "postgres/default": NOT_SERVING
	// "liveness": SERVING
	// "redis": NotFound
}
