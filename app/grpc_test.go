package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	linksv1 "github.com/gok8s/gok8s/api/links/v1"
	"github.com/gok8s/gok8s/app/internal/links"
	"github.com/gok8s/gok8s/grpchealth"
	"github.com/gok8s/gok8s/probes"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// trickyRepo is a links.Repository whose Get panics and whose Create waits
// for its context to end.
type trickyRepo struct{ oneLink }

func (trickyRepo) Get(context.Context, string) (links.Link, error) { panic("boom: password=hunter2") }

func (trickyRepo) Create(ctx context.Context, _, _ string) (links.Link, error) {
	<-ctx.Done()
	return links.Link{}, ctx.Err()
}

// TestGRPCServer: through the app's real interceptor chain, a panic is
// INTERNAL with a fixed message and its stack is logged; GRPC_TIMEOUT bounds a
// call whose client set no deadline; links calls are logged and counted in
// grpc_server_* while health calls are neither.
func TestGRPCServer(t *testing.T) {
	t.Setenv("GRPC_TIMEOUT", "100ms")
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	ready, err := probes.NewReadiness(nil)
	if err != nil {
		t.Fatal(err)
	}
	ready.MarkStarted()
	reg := prometheus.NewPedanticRegistry()
	srv := newGRPCServer(cfg, links.NewService(trickyRepo{}, log), grpchealth.NewServer(ready), reg, log, offTracing(t))
	conn := serveBufconn(t, srv)
	ctx := context.Background() // no deadline of the client's
	client, health := linksv1.NewLinkServiceClient(conn), healthpb.NewHealthClient(conn)

	_, err = client.GetLink(ctx, &linksv1.GetLinkRequest{Slug: "go"})
	if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Errorf("a panicking handler: %s %q, want Internal %q", st.Code(), st.Message(), "internal error")
	}
	_, err = client.CreateLink(ctx, &linksv1.CreateLinkRequest{Slug: "go", Url: "https://go.dev"})
	if code := status.Code(err); code != codes.DeadlineExceeded {
		t.Errorf("a call past GRPC_TIMEOUT: %s (%v), want DeadlineExceeded", code, err)
	}
	for range 3 {
		if resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "readiness"}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check: %v, %v", resp, err)
		}
	}

	out := logs.String()
	if !strings.Contains(out, `"msg":"grpc: handler panicked"`) || !strings.Contains(out, `"stack":"goroutine`) {
		t.Errorf("the panic and its stack are not logged:\n%s", out)
	}
	var finished []string
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var l struct{ Msg, Level, Method string }
		var raw map[string]any
		if json.Unmarshal([]byte(line), &l) != nil || json.Unmarshal([]byte(line), &raw) != nil || l.Msg != "finished call" {
			continue
		}
		finished = append(finished, raw["grpc.method"].(string)+" "+raw["grpc.code"].(string)+" "+l.Level)
	}
	if want := []string{"GetLink Internal ERROR", "CreateLink DeadlineExceeded WARN"}; strings.Join(finished, ",") != strings.Join(want, ",") {
		t.Errorf("finished-call lines %q, want %q (health calls not logged)", finished, want)
	}

	if got := handled(t, reg, "GetLink", "Internal") + handled(t, reg, "CreateLink", "DeadlineExceeded"); got != 2 {
		t.Errorf("grpc_server_handled_total for the two links calls: %g, want 2", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "grpc_service" && l.GetValue() == healthpb.Health_ServiceDesc.ServiceName {
					t.Errorf("%s counts health calls: %v", mf.GetName(), m)
				}
			}
		}
	}
}

// handled returns grpc_server_handled_total of method and code, from reg.
func handled(t *testing.T, reg *prometheus.Registry, method, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "grpc_server_handled_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["grpc_method"] == method && labels["grpc_code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestServeGRPCDrain: the real serve command on GRPC_ADDR: on cancel (as on
// SIGTERM) a Watch of the shutdown check turns NOT_SERVING while liveness
// stays SERVING, both streams end with UNAVAILABLE, and serve exits 0 with
// the streams still open on the client's side.
func TestServeGRPCDrain(t *testing.T) {
	_, logs, cancel, done := startServe(t, map[string]string{"SHUTDOWN_DELAY": "300ms", "SHUTDOWN_TIMEOUT": "10s"})
	var grpcListening struct{ Addr string }
	if err := json.Unmarshal([]byte(waitLine(t, logs, `"msg":"grpc listening"`)), &grpcListening); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(grpcListening.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	watch := func(service string) (healthpb.Health_WatchClient, healthpb.HealthCheckResponse_ServingStatus) {
		s, err := health.Watch(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatal(err)
		}
		first, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return s, first.GetStatus()
	}
	shutdown, first := watch(probes.ShutdownCheck)
	live, firstLive := watch(grpchealth.Liveness)
	if first != healthpb.HealthCheckResponse_SERVING || firstLive != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("before the drain: shutdown %s, liveness %s; want both SERVING", first, firstLive)
	}

	cancel() // as SIGTERM does
	if resp, err := shutdown.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("Watch(shutdown) while draining: %v, %v; want NOT_SERVING", resp, err)
	}
	if resp, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: grpchealth.Liveness}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("Check(liveness) while draining: %v, %v; want SERVING", resp, err)
	}
	for name, s := range map[string]healthpb.Health_WatchClient{"shutdown": shutdown, "liveness": live} {
		if resp, err := s.Recv(); status.Code(err) != codes.Unavailable {
			t.Errorf("Watch(%s) at shutdown: %v, %v; want it ended with UNAVAILABLE", name, resp, err)
		}
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d, want 0 (a forced stop fails)", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve still running 15s after cancel")
	}
}

// TestHealthcheckGRPC: app healthcheck -grpc asks GRPC_ADDR's health service;
// with gRPC off it is a usage error.
func TestHealthcheckGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ready, err := probes.NewReadiness(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, grpchealth.NewServer(ready))
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	tests := []struct {
		addr string
		args []string
		code int
		out  string
	}{
		{":" + port, []string{"-grpc"}, 1, "readiness\\\" at 127.0.0.1:" + port + ": NOT_SERVING"},
		{":" + port, []string{"-grpc", "-service", "liveness"}, 0, `gRPC health check of "liveness" at 127.0.0.1:` + port + ": SERVING"},
		{":" + port, []string{"-grpc", "-service", "nope"}, 1, "code = NotFound"},
		{"", []string{"-grpc"}, 2, "GRPC_ADDR is empty"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " ")+" "+tt.addr, func(t *testing.T) {
			t.Setenv("GRPC_ADDR", tt.addr)
			t.Setenv("LOG_FORMAT", "text")
			var stdout, stderr strings.Builder
			code := run(t.Context(), append([]string{"healthcheck"}, tt.args...), &stdout, &stderr)
			if code != tt.code || !strings.Contains(stdout.String()+stderr.String(), tt.out) {
				t.Errorf("exit %d, out %q %q; want %d with %q", code, stdout.String(), stderr.String(), tt.code, tt.out)
			}
		})
	}
}

// serveBufconn serves srv on an in-memory listener until the test ends and
// returns a client connection to it, closed at the end too.
func serveBufconn(t *testing.T, srv *grpc.Server) *grpc.ClientConn {
	t.Helper()
	ln := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
