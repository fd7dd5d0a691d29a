package grpchealth

import (
	"context"
	"strings"
	"sync"

	"github.com/gok8s/gok8s/probes"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Names of the services a [Server] answers besides the checks and groups.
const (
	Readiness = "readiness" // the whole readiness, as the empty name
	Liveness  = "liveness"  // SERVING while the process serves
)

// The serving states, for short.
const (
	serving    = healthpb.HealthCheckResponse_SERVING
	notServing = healthpb.HealthCheckResponse_NOT_SERVING
	unknown    = healthpb.HealthCheckResponse_SERVICE_UNKNOWN
)

// Server serves grpc.health.v1.Health from a [probes.Readiness]; see the
// package documentation for what it answers. Register it with
// healthpb.RegisterHealthServer. Its methods are safe for concurrent use.
type Server struct {
	healthpb.UnimplementedHealthServer

	ready *probes.Readiness

	stopOnce sync.Once
	stopped  chan struct{} // closed by Shutdown
}

var _ healthpb.HealthServer = (*Server)(nil)

// errStopped ends the Watch streams after Shutdown.
var errStopped = status.Error(codes.Unavailable, "server is shutting down")

// NewServer returns a Server for r.
func NewServer(r *probes.Readiness) *Server {
	return &Server{ready: r, stopped: make(chan struct{})}
}

// Shutdown ends every Watch stream, now and from now on, with UNAVAILABLE, so
// that grpc.Server.GracefulStop does not wait for them; call it just before
// GracefulStop. Check and List still answer, until the server stops. It does
// not change readiness: [probes.Readiness.MarkDraining] does, and has made
// watchers see NOT_SERVING long before, when the drain began.
func (s *Server) Shutdown() {
	s.stopOnce.Do(func() { close(s.stopped) })
}

// Check answers the state of one service. The whole readiness ("" and
// readiness) is read from the Readiness's cache as /readyz reads it; a check
// or group runs its checks if their results are older than the TTL, as
// /readyz/<name> does. Either waits at most the Readiness's timeout, or until
// ctx ends. An unknown service is NOT_FOUND.
func (s *Server) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	name := req.GetService()
	switch name {
	case Liveness:
		return response(serving), nil
	case "", Readiness:
		if s.ready.Check(ctx) != nil {
			return response(notServing), nil
		}
		return response(serving), nil
	}
	if !s.ready.Has(name) {
		return nil, status.Error(codes.NotFound, "unknown service")
	}
	if s.ready.State() == probes.StateDraining {
		return response(notServing), nil
	}
	for _, res := range s.ready.Report(ctx, probes.Filter{Only: name}).Results {
		if res.Err != nil { // an optional check too: its own state
			return response(notServing), nil
		}
	}
	if s.ready.State() == probes.StateDraining { // began while the checks ran
		return response(notServing), nil
	}
	return response(serving), nil
}

// List answers the state of every service Check knows: "", readiness,
// liveness, the lifecycle checks, each check and each group. Like
// /readyz?verbose it runs the checks whose results are older than the TTL
// and waits at most the Readiness's timeout, or until ctx ends.
func (s *Server) List(ctx context.Context, _ *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	rep := s.ready.Report(ctx, probes.Filter{})
	draining := s.ready.State() == probes.StateDraining
	of := func(pass bool) *healthpb.HealthCheckResponse {
		if pass && !draining {
			return response(serving)
		}
		return response(notServing)
	}
	statuses := map[string]*healthpb.HealthCheckResponse{
		"": of(rep.NotReady == nil), Readiness: of(rep.NotReady == nil), Liveness: response(serving),
	}
	groups := map[string]bool{} // group → every check of it passed
	for _, res := range rep.Results {
		statuses[res.Name] = of(res.Err == nil)
		if grp, _, ok := strings.Cut(res.Name, "/"); ok {
			pass, seen := groups[grp]
			groups[grp] = (pass || !seen) && res.Err == nil
		}
	}
	for grp, pass := range groups {
		statuses[grp] = of(pass)
	}
	return &healthpb.HealthListResponse{Statuses: statuses}, nil
}

// Watch sends the state of one service, then each change of it until the
// client hangs up or [Server.Shutdown] is called. The first state is the one
// Check would answer: checks without a fresh result run first, for at most
// the Readiness's timeout. A change reaches the
// stream when the Readiness reports it; a stream that cannot keep up skips
// states but always ends on the current one. An unknown service gets
// SERVICE_UNKNOWN, and the stream stays open, as grpc-go's server does.
func (s *Server) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	select {
	case <-s.stopped:
		return errStopped
	default:
	}
	name := req.GetService()
	var changed <-chan struct{} // nil: the state of name never changes
	switch {
	case name == "" || name == Readiness:
		sub := s.ready.Subscribe()
		defer sub.Close()
		changed = sub.C
		_ = s.ready.Check(stream.Context()) // the first state, as Check would answer it
	case name != Liveness && s.ready.Has(name):
		sub := s.ready.Subscribe()
		defer sub.Close()
		changed = sub.C
		s.ready.Report(stream.Context(), probes.Filter{Only: name})
	}
	last := healthpb.HealthCheckResponse_ServingStatus(-1)
	for {
		st, found := s.status(name)
		if !found {
			st = unknown
		}
		if st != last {
			if err := stream.Send(response(st)); err != nil {
				return err
			}
			last = st
		}
		select {
		case <-changed:
		case <-s.stopped:
			return errStopped
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		}
	}
}

// status returns the current state of the service name from the outcomes the
// Readiness holds, without running a check, and whether name is known.
func (s *Server) status(name string) (healthpb.HealthCheckResponse_ServingStatus, bool) {
	switch name {
	case Liveness:
		return serving, true
	case Readiness:
		name = ""
	}
	ok, found := s.ready.Status(name)
	switch {
	case !found:
		return unknown, false
	case !ok || s.ready.State() == probes.StateDraining:
		return notServing, true
	}
	return serving, true
}

// response returns a response with st. Responses are built anew: grpc-go
// may hold a message after Send returns.
func response(st healthpb.HealthCheckResponse_ServingStatus) *healthpb.HealthCheckResponse {
	return &healthpb.HealthCheckResponse{Status: st}
}
