package grpchealth_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gok8s/gok8s/grpchealth"
	"github.com/gok8s/gok8s/probes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// loopback serves on 127.0.0.1 and returns one client connection to it.
func loopback(b *testing.B, register func(*grpc.Server)) *grpc.ClientConn {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	register(srv)
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	return conn
}

// BenchmarkCheck: a Check of the whole readiness over one loopback
// connection, on a warm cache, answered by this package and by grpc-go's own
// health.Server. Both servers are registered on the same grpc.Server (grpc-go's
// under a service name of its own) and reached over the same connection, and
// each op calls both, in alternating order, timing each call: on a busy machine
// both see the same load. It reports ns/check for each and their ratio
// (grpchealth/grpc-go); ns/op is the two calls together.
func BenchmarkCheck(b *testing.B) {
	ready, err := probes.NewReadiness([]probes.Checker{
		probes.Func("postgres/default", func(context.Context) error { return nil }),
		probes.Func("memcached/a:1", func(context.Context) error { return nil }),
	}, probes.WithTTL(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	ready.MarkStarted()
	if err := ready.Check(context.Background()); err != nil { // warm the cache
		b.Fatal(err)
	}
	ref := health.NewServer() // "" is SERVING
	refDesc := healthpb.Health_ServiceDesc
	refDesc.ServiceName = "grpc.health.v1.HealthReference"
	conn := loopback(b, func(s *grpc.Server) {
		healthpb.RegisterHealthServer(s, grpchealth.NewServer(ready))
		s.RegisterService(&refDesc, ref)
	})
	ctx, req := context.Background(), &healthpb.HealthCheckRequest{}
	call := func(method string) time.Duration {
		start := time.Now()
		resp := new(healthpb.HealthCheckResponse)
		if err := conn.Invoke(ctx, method, req, resp); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			b.Fatalf("%s: %v, %v", method, resp, err)
		}
		return time.Since(start)
	}
	const theirs, ours = "/grpc.health.v1.HealthReference/Check", "/grpc.health.v1.Health/Check"
	call(theirs) // connect
	var tTheirs, tOurs time.Duration
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		if n%2 == 0 {
			tTheirs += call(theirs)
			tOurs += call(ours)
		} else {
			tOurs += call(ours)
			tTheirs += call(theirs)
		}
		n++
	}
	b.ReportMetric(float64(tTheirs.Nanoseconds())/float64(n), "ns/check-grpc-go")
	b.ReportMetric(float64(tOurs.Nanoseconds())/float64(n), "ns/check-grpchealth")
	b.ReportMetric(float64(tOurs)/float64(tTheirs), "ratio")
}

// watchers is the number of open Watch streams of BenchmarkWatchFanout,
// spread over watcherConns client connections.
const watchers, watcherConns = 1000, 10

// BenchmarkWatchFanout: the time from a change of readiness until each of
// 1,000 open Watch streams (over 10 loopback connections) has received it:
// one op is one transition, alternately to NOT_SERVING and back. The check
// runs as the op begins (a TTL of zero: Report runs it at once), and the op
// ends when the last client has read the new state.
func BenchmarkWatchFanout(b *testing.B) {
	var down atomic.Bool
	flip := probes.Func("postgres/default", func(context.Context) error {
		if down.Load() {
			return context.DeadlineExceeded
		}
		return nil
	})
	// A TTL of zero makes Report run the check at once; with Watch streams
	// open the Readiness would also run it a timeout after each result, hence
	// the long timeout: only the benchmark changes the outcome.
	ready, err := probes.NewReadiness([]probes.Checker{flip}, probes.WithTTL(0), probes.WithTimeout(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	ready.MarkStarted()
	ready.Report(context.Background(), probes.Filter{})
	srv := grpchealth.NewServer(ready)

	conns := make([]*grpc.ClientConn, watcherConns)
	conns[0] = loopback(b, func(s *grpc.Server) { healthpb.RegisterHealthServer(s, srv) })
	target := conns[0].Target()
	for i := 1; i < len(conns); i++ {
		c, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		conns[i] = c
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan healthpb.HealthCheckResponse_ServingStatus, watchers)
	for i := range watchers {
		stream, err := healthpb.NewHealthClient(conns[i%len(conns)]).Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for {
				resp, err := stream.Recv()
				if err != nil {
					return
				}
				got <- resp.GetStatus()
			}
		}()
	}
	for range watchers { // every stream's first state
		if st := <-got; st != healthpb.HealthCheckResponse_SERVING {
			b.Fatalf("first state %s", st)
		}
	}

	want := healthpb.HealthCheckResponse_SERVING
	start := time.Now()
	for b.Loop() {
		down.Store(!down.Load())
		want = healthpb.HealthCheckResponse_NOT_SERVING + healthpb.HealthCheckResponse_SERVING - want
		ready.Report(ctx, probes.Filter{Only: "postgres/default"}) // runs the check: the transition
		for range watchers {
			if st := <-got; st != want {
				b.Fatalf("a stream got %s, want %s", st, want)
			}
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/transition")
	b.ReportMetric(watchers, "streams")
}
