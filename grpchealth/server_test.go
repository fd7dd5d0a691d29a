package grpchealth_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gok8s/gok8s/grpchealth"
	"github.com/gok8s/gok8s/probes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// switchable is a check whose outcome the test sets.
type switchable struct {
	name string
	down atomic.Bool
}

func (c *switchable) Name() string { return c.name }

func (c *switchable) Check(context.Context) error {
	if c.down.Load() {
		return errors.New("dial tcp 10.0.0.1:5432: connection refused (password=hunter2)")
	}
	return nil
}

// fixture is a Readiness with postgres/default and an optional memcached
// check, served by a grpchealth.Server on an in-memory gRPC server.
type fixture struct {
	ready    *probes.Readiness
	pg, mc   *switchable
	health   *grpchealth.Server
	srv      *grpc.Server
	client   healthpb.HealthClient
	ln       *bufconn.Listener
	serveErr chan error
}

func newFixture(t testing.TB, opts ...probes.Option) *fixture {
	t.Helper()
	f := &fixture{pg: &switchable{name: "postgres/default"}, mc: &switchable{name: "memcached/a:1"}, serveErr: make(chan error, 1)}
	var err error
	f.ready, err = probes.NewReadiness([]probes.Checker{f.pg, probes.Optional(f.mc)},
		append([]probes.Option{probes.WithTTL(10 * time.Millisecond), probes.WithTimeout(time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.health = grpchealth.NewServer(f.ready)
	f.ln = bufconn.Listen(1 << 20)
	f.srv = grpc.NewServer()
	healthpb.RegisterHealthServer(f.srv, f.health)
	go func() { f.serveErr <- f.srv.Serve(f.ln) }()
	t.Cleanup(f.srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return f.ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	f.client = healthpb.NewHealthClient(conn)
	return f
}

// check returns the state Check answers for service, or its error's code.
func (f *fixture) check(t *testing.T, service string) string {
	t.Helper()
	resp, err := f.client.Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		st := status.Convert(err)
		return st.Code().String() + ": " + st.Message()
	}
	return resp.GetStatus().String()
}

// TestCheck: every service name Check knows, through the lifecycle and with
// a critical and an optional check down; no answer carries error text.
func TestCheck(t *testing.T) {
	f := newFixture(t)
	type want map[string]string
	const ok, no = "SERVING", "NOT_SERVING"
	steps := []struct {
		name  string
		setup func()
		want  want
	}{
		{"starting", func() {}, want{"": no, "readiness": no, "liveness": ok, "startup": no, "shutdown": ok, "postgres/default": ok, "postgres": ok, "nope": "NotFound: unknown service", "postgres/": "NotFound: unknown service"}},
		{"ready", f.ready.MarkStarted, want{"": ok, "readiness": ok, "liveness": ok, "startup": ok, "shutdown": ok, "postgres/default": ok, "postgres": ok, "memcached": ok, "memcached/a:1": ok}},
		{"optional check down", func() { f.mc.down.Store(true) }, want{"": ok, "readiness": ok, "memcached": no, "memcached/a:1": no, "postgres": ok}},
		{"critical check down", func() { f.pg.down.Store(true) }, want{"": no, "readiness": no, "liveness": ok, "postgres/default": no, "postgres": no, "startup": ok}},
		{"both back", func() { f.pg.down.Store(false); f.mc.down.Store(false) }, want{"": ok, "readiness": ok, "postgres": ok, "memcached": ok}},
		{"draining", f.ready.MarkDraining, want{"": no, "readiness": no, "liveness": ok, "startup": no, "shutdown": no, "postgres/default": no, "postgres": no, "memcached/a:1": no, "nope": "NotFound: unknown service"}},
	}
	for _, s := range steps {
		s.setup()
		for service, want := range s.want {
			// Results live 10 ms: ask until the change shows, for 5 s at most.
			got := f.check(t, service)
			for deadline := time.Now().Add(5 * time.Second); got != want && time.Now().Before(deadline); {
				got = f.check(t, service)
			}
			if got != want {
				t.Errorf("%s: Check(%q) = %s, want %s", s.name, service, got, want)
			}
		}
	}
}

// TestList: List names every service with the state Check gives it.
func TestList(t *testing.T) {
	f := newFixture(t)
	f.ready.MarkStarted()
	f.mc.down.Store(true)
	resp, err := f.client.List(t.Context(), &healthpb.HealthListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for name, st := range resp.GetStatuses() {
		got[name] = st.GetStatus().String()
	}
	want := map[string]string{"": "SERVING", "readiness": "SERVING", "liveness": "SERVING", "startup": "SERVING", "shutdown": "SERVING",
		"postgres/default": "SERVING", "postgres": "SERVING", "memcached/a:1": "NOT_SERVING", "memcached": "NOT_SERVING"}
	if len(got) != len(want) {
		t.Errorf("List: %v\nwant  %v", got, want)
	}
	for name, st := range want {
		if got[name] != st {
			t.Errorf("List[%q] = %q, want %q", name, got[name], st)
		}
	}
}

// stream is an open Watch whose states arrive on a channel.
type stream struct {
	states chan healthpb.HealthCheckResponse_ServingStatus
	end    chan error
}

func (f *fixture) watch(t *testing.T, service string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := f.client.Watch(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{states: make(chan healthpb.HealthCheckResponse_ServingStatus, 100), end: make(chan error, 1)}
	go func() {
		for {
			resp, err := w.Recv()
			if err != nil {
				s.end <- err
				return
			}
			s.states <- resp.GetStatus()
		}
	}()
	return s
}

// next fails t unless the stream's next state is want, within 5 s.
func (s *stream) next(t *testing.T, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	select {
	case got := <-s.states:
		if got != want {
			t.Fatalf("Watch sent %s, want %s", got, want)
		}
	case err := <-s.end:
		t.Fatalf("Watch ended with %v, want %s", err, want)
	case <-time.After(5 * time.Second):
		t.Fatalf("Watch sent nothing in 5s, want %s", want)
	}
}

// TestWatch: a Watch sends the current state, then each change, with no
// prober (the open Watch keeps the checks fresh); MarkDraining reaches every
// Watch but liveness's; Shutdown ends every stream with UNAVAILABLE.
func TestWatch(t *testing.T) {
	f := newFixture(t)
	ready, pg, mc, live, unknown := f.watch(t, ""), f.watch(t, "postgres"), f.watch(t, "memcached/a:1"), f.watch(t, "liveness"), f.watch(t, "nope")
	ready.next(t, healthpb.HealthCheckResponse_NOT_SERVING) // starting
	pg.next(t, healthpb.HealthCheckResponse_SERVING)
	mc.next(t, healthpb.HealthCheckResponse_SERVING)
	live.next(t, healthpb.HealthCheckResponse_SERVING)
	unknown.next(t, healthpb.HealthCheckResponse_SERVICE_UNKNOWN)

	f.ready.MarkStarted()
	ready.next(t, healthpb.HealthCheckResponse_SERVING)
	f.pg.down.Store(true) // nothing asks: only the Watch keeps the checks running
	pg.next(t, healthpb.HealthCheckResponse_NOT_SERVING)
	ready.next(t, healthpb.HealthCheckResponse_NOT_SERVING)
	f.pg.down.Store(false)
	pg.next(t, healthpb.HealthCheckResponse_SERVING)
	ready.next(t, healthpb.HealthCheckResponse_SERVING)
	f.mc.down.Store(true) // optional: its own Watch sees it, readiness does not
	mc.next(t, healthpb.HealthCheckResponse_NOT_SERVING)
	f.mc.down.Store(false)
	mc.next(t, healthpb.HealthCheckResponse_SERVING)

	f.ready.MarkDraining()
	ready.next(t, healthpb.HealthCheckResponse_NOT_SERVING)
	pg.next(t, healthpb.HealthCheckResponse_NOT_SERVING)
	mc.next(t, healthpb.HealthCheckResponse_NOT_SERVING)

	f.health.Shutdown()
	for name, s := range map[string]*stream{"": ready, "postgres": pg, "memcached/a:1": mc, "liveness": live, "nope": unknown} {
		select {
		case st := <-s.states:
			t.Errorf("Watch(%q) sent %s after draining, want only the end", name, st)
		case err := <-s.end:
			if status.Code(err) != codes.Unavailable {
				t.Errorf("Watch(%q) ended with %v, want UNAVAILABLE", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Watch(%q) still open 5s after Shutdown", name)
		}
	}
	late, err := f.client.Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := late.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("a Watch after Shutdown: %v, %v; want UNAVAILABLE at once", resp, err)
	}
}

// TestGracefulStopWithWatches: with Watch streams open, Shutdown then
// GracefulStop returns, as grpc-go's own health server does not let it
// (grpc/grpc-go#8776): GracefulStop would wait for the clients.
func TestGracefulStopWithWatches(t *testing.T) {
	f := newFixture(t)
	f.ready.MarkStarted()
	var streams []*stream
	for _, service := range []string{"", "readiness", "liveness", "postgres/default", "nope"} {
		s := f.watch(t, service)
		<-s.states
		streams = append(streams, s)
	}
	f.ready.MarkDraining()
	f.health.Shutdown()
	stopped := make(chan struct{})
	go func() { f.srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("GracefulStop still waiting 10s after Shutdown, with Watch streams open")
	}
	for _, s := range streams {
		if err := <-s.end; status.Code(err) != codes.Unavailable {
			t.Errorf("stream ended with %v, want UNAVAILABLE", err)
		}
	}
}

// TestCheckHungCheck: Check waits at most the Readiness's timeout for a check
// that hangs, then answers NOT_SERVING; it never hangs with the check.
func TestCheckHungCheck(t *testing.T) {
	hung := probes.Func("postgres/default", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	ready, err := probes.NewReadiness([]probes.Checker{hung}, probes.WithTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ready.MarkStarted()
	s := grpchealth.NewServer(ready)
	for _, service := range []string{"", "postgres/default", "postgres"} {
		resp, err := s.Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("Check(%q) with a hung check: %v, %v; want NOT_SERVING", service, resp, err)
		}
	}
}
