package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	linksv1 "github.com/gok8s/gok8s/api/links/v1"
	"github.com/gok8s/gok8s/e2e"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
)

// The serving states, for short.
const (
	serving    = healthpb.HealthCheckResponse_SERVING
	notServing = healthpb.HealthCheckResponse_NOT_SERVING
)

// dial returns a client connection to the app's GRPC_ADDR, closed when t ends.
func (a *app) dial() *grpc.ClientConn {
	a.t.Helper()
	conn, err := grpc.NewClient(a.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// check asks the health service about service and returns its state, or the
// error's code as a string.
func check(t *testing.T, h healthpb.HealthClient, service string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return status.Code(err).String()
	}
	return resp.GetStatus().String()
}

// watched is one state a Watch stream received, and when the client got it.
type watched struct {
	status healthpb.HealthCheckResponse_ServingStatus
	at     time.Time
}

// watchStream is an open Watch of one service.
type watchStream struct {
	service string
	states  chan watched
	done    chan struct{}
	err     error // how the stream ended, once done is closed

	mu  sync.Mutex
	all []watched
}

// watch opens a Watch of service; it stays open until the server ends it or
// t ends.
func watch(t *testing.T, h healthpb.HealthClient, service string) *watchStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := h.Watch(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatal(err)
	}
	w := &watchStream{service: service, states: make(chan watched, 100), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			resp, err := stream.Recv()
			if err != nil {
				w.err = err
				return
			}
			st := watched{resp.GetStatus(), time.Now()}
			w.mu.Lock()
			w.all = append(w.all, st)
			w.mu.Unlock()
			w.states <- st
		}
	}()
	return w
}

// next waits up to limit for the stream's next state to be want and returns
// when the client received it; it fails t on another state or the stream's end.
func (w *watchStream) next(t *testing.T, want healthpb.HealthCheckResponse_ServingStatus, limit time.Duration) time.Time {
	t.Helper()
	select {
	case st := <-w.states:
		if st.status != want {
			t.Fatalf("Watch(%q): got %s, want %s (states so far %s)", w.service, st.status, want, w)
		}
		return st.at
	case <-w.done:
		t.Fatalf("Watch(%q) ended with %v, waiting for %s", w.service, w.err, want)
	case <-time.After(limit):
		t.Fatalf("Watch(%q): no %s within %s (states so far %s)", w.service, want, limit, w)
	}
	return time.Time{}
}

// String lists the states the stream received.
func (w *watchStream) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := make([]string, len(w.all))
	for i, s := range w.all {
		names[i] = s.status.String()
	}
	return "[" + strings.Join(names, " ") + "]"
}

// logTime returns the time of the first line of the app's log (text format)
// that holds msg, logged at or after since.
func (a *app) logTime(msg string, since time.Time) (time.Time, bool) {
	for line := range strings.SplitSeq(a.logs.String(), "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err == nil && !at.Before(since.Truncate(time.Millisecond)) {
			return at, true
		}
	}
	return time.Time{}, false
}

// mustLogTime is logTime, failing t when no such line comes within 5 s.
func (a *app) mustLogTime(msg string, since time.Time) time.Time {
	a.t.Helper()
	a.waitLog(msg, 5*time.Second)
	at, ok := a.logTime(msg, since)
	if !ok {
		a.t.Fatalf("no log line %q after %s:\n%s", msg, since.Format(time.RFC3339Nano), a.logs.String())
	}
	return at
}

// TestGRPCPostgresOutage: with PostgreSQL stopped, readiness over gRPC turns
// NOT_SERVING (an open Watch sees it; the server's transition comes within
// PROBE_TTL + PROBE_TIMEOUT of the container's stop, with no prober but the
// Watch), liveness stays SERVING, the links API answers UNAVAILABLE without
// driver text; started again, the Watch sees SERVING.
func TestGRPCPostgresOutage(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	conn := s.app.dial()
	health, links := healthpb.NewHealthClient(conn), linksv1.NewLinkServiceClient(conn)
	w := watch(t, health, "readiness")
	w.next(t, serving, 10*time.Second)
	if _, err := links.CreateLink(t.Context(), &linksv1.CreateLinkRequest{Slug: "before", Url: "https://go.dev"}); err != nil {
		t.Fatal(err)
	}

	requested := time.Now()
	s.pg.Stop(t)
	info, err := s.pg.Inspect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	stopped, err := time.Parse(time.RFC3339Nano, info.State.FinishedAt)
	if err != nil {
		t.Fatalf("container FinishedAt %q: %v", info.State.FinishedAt, err)
	}
	got := w.next(t, notServing, detect+10*time.Second) // a bound on the client's wait only
	turned := s.app.mustLogTime("readiness: not ready", requested)
	t.Logf("postgres stopped (stop requested at %s, container exited at %s): the server turned not ready %s after the exit, %s after the request (the engine's bound PROBE_TTL + PROBE_TIMEOUT = %s, from the exit); the Watch client received NOT_SERVING %s after the exit",
		requested.Format("15:04:05.000"), stopped.Format("15:04:05.000"), turned.Sub(stopped).Round(time.Millisecond), turned.Sub(requested).Round(time.Millisecond),
		detect, got.Sub(stopped).Round(time.Millisecond))
	// The bound is exact when a run that starts just before the exit passes
	// and the next one hangs until PROBE_TIMEOUT: the transition then waits
	// for a timer and a goroutine, which a loaded machine delays (CI, once).
	// The probes package holds the engine to the bound on a fake clock; this
	// guard says the app wires it: a TTL or timeout left at another value
	// breaks it.
	if d := turned.Sub(stopped); d > detect+detectSlack {
		t.Errorf("readiness turned NOT_SERVING %s after PostgreSQL stopped, limit %s (PROBE_TTL + PROBE_TIMEOUT + %s for a loaded machine)", d, detect+detectSlack, detectSlack)
	}

	for service, want := range map[string]string{
		"": "NOT_SERVING", "readiness": "NOT_SERVING", "postgres/default": "NOT_SERVING", "postgres": "NOT_SERVING",
		"liveness": "SERVING", "memcached": "SERVING", "memcached/" + s.mc.Addr: "SERVING", "startup": "SERVING", "nope": "NotFound",
	} {
		if got := check(t, health, service); got != want {
			t.Errorf("Check(%q) during the outage: %s, want %s", service, got, want)
		}
	}
	_, err = links.CreateLink(t.Context(), &linksv1.CreateLinkRequest{Slug: "during", Url: "https://go.dev"})
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != "store unavailable" {
		t.Errorf("CreateLink during the outage: %s %q, want Unavailable %q", st.Code(), st.Message(), "store unavailable")
	}

	s.pg.Start(t)
	back := w.next(t, serving, 30*time.Second)
	t.Logf("postgres started: the Watch received SERVING %s after the start returned; states %s", time.Since(back).Round(time.Millisecond), w)
	if _, err := links.GetLink(t.Context(), &linksv1.GetLinkRequest{Slug: "before"}); err != nil {
		t.Errorf("GetLink after the outage: %v", err)
	}
}

// TestGRPCSIGTERM: on SIGTERM readiness turns NOT_SERVING at once (the
// server's own wait, from the signal to the transition, is under 100 ms; open
// Watch streams receive it) while liveness stays SERVING and links RPCs are
// still served; after SHUTDOWN_DELAY the Watch streams end with UNAVAILABLE,
// the server stops gracefully and the process exits 0 well within
// SHUTDOWN_DELAY + SHUTDOWN_TIMEOUT, though clients keep their streams open.
func TestGRPCSIGTERM(t *testing.T) {
	t.Parallel()
	const delay, timeout = 2 * time.Second, 10 * time.Second
	s := startStack(t, fmt.Sprintf("SHUTDOWN_DELAY=%s", delay), fmt.Sprintf("SHUTDOWN_TIMEOUT=%s", timeout))
	conn := s.app.dial()
	health, links := healthpb.NewHealthClient(conn), linksv1.NewLinkServiceClient(conn)
	ready, live := watch(t, health, ""), watch(t, health, "liveness")
	ready.next(t, serving, 10*time.Second)
	live.next(t, serving, 10*time.Second)

	sent := time.Now()
	if err := s.app.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	got := ready.next(t, notServing, 5*time.Second) // a bound on the client's wait only
	signalled := s.app.mustLogTime("shutdown: signal received", sent)
	draining := s.app.mustLogTime("readiness: draining", sent)
	t.Logf("SIGTERM: the server marked draining %s after the signal; the Watch client received NOT_SERVING %s after sending it",
		draining.Sub(signalled).Round(time.Microsecond), got.Sub(sent).Round(time.Millisecond))
	if d := draining.Sub(signalled); d > 100*time.Millisecond {
		t.Errorf("readiness turned NOT_SERVING %s after the signal, limit 100ms", d)
	}
	for service, want := range map[string]string{"": "NOT_SERVING", "readiness": "NOT_SERVING", "postgres/default": "NOT_SERVING", "memcached": "NOT_SERVING", "liveness": "SERVING"} {
		if got := check(t, health, service); got != want {
			t.Errorf("Check(%q) while draining: %s, want %s", service, got, want)
		}
	}
	if _, err := links.CreateLink(t.Context(), &linksv1.CreateLinkRequest{Slug: "draining", Url: "https://go.dev"}); err != nil {
		t.Errorf("CreateLink during SHUTDOWN_DELAY: %v, want served", err)
	}

	for _, w := range []*watchStream{ready, live} {
		select {
		case <-w.done:
			if status.Code(w.err) != codes.Unavailable {
				t.Errorf("Watch(%q) ended with %v, want UNAVAILABLE", w.service, w.err)
			}
		case <-time.After(delay + timeout):
			t.Fatalf("Watch(%q) still open %s after SIGTERM", w.service, delay+timeout)
		}
	}
	select {
	case <-s.app.exited:
	case <-time.After(delay + timeout + 5*time.Second):
		t.Fatalf("app still running %s after SIGTERM", delay+timeout+5*time.Second)
	}
	if s.app.err != nil {
		t.Errorf("exit: %v, want status 0 (a forced stop exits 1)", s.app.err)
	}
	done := s.app.mustLogTime("shutdown: done", sent)
	t.Logf("SIGTERM: shutdown done %s after the signal (delay %s, timeout %s); the process exited %s after it was sent; streams %s %s",
		done.Sub(signalled).Round(time.Millisecond), delay, timeout, time.Since(sent).Round(time.Millisecond), ready, live)
	if d := done.Sub(signalled); d > delay+timeout/2 {
		t.Errorf("shutdown took %s with Watch streams open, want well under SHUTDOWN_DELAY + SHUTDOWN_TIMEOUT (%s)", d, delay+timeout)
	}
}

// TestGRPCLinksAcrossTransports: one store and cache behind both APIs: a link
// created over gRPC is read over HTTP and the other way round, changes made
// on one show on the other, the status codes are the ones users expect, and
// reflection and List describe the server.
func TestGRPCLinksAcrossTransports(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	a, ctx := s.app, t.Context()
	conn := a.dial()
	links := linksv1.NewLinkServiceClient(conn)

	created, err := links.CreateLink(ctx, &linksv1.CreateLinkRequest{Slug: "from-grpc", Url: "https://go.dev/grpc"})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := a.do(ctx, "GET", "/api/links/from-grpc", ""); code != 200 || !strings.Contains(body, `"url":"https://go.dev/grpc"`) {
		t.Errorf("GET over HTTP a link made over gRPC: %d %s", code, body)
	}
	if code, body := a.do(ctx, "POST", "/api/links", `{"slug":"from-http","url":"https://go.dev/http"}`); code != 201 {
		t.Fatalf("POST over HTTP: %d %s", code, body)
	}
	got, err := links.GetLink(ctx, &linksv1.GetLinkRequest{Slug: "from-http"})
	if err != nil || got.GetLink().GetUrl() != "https://go.dev/http" {
		t.Errorf("GetLink over gRPC a link made over HTTP: %v, %v", got, err)
	}
	if _, err := links.UpdateLink(ctx, &linksv1.UpdateLinkRequest{Slug: "from-grpc", Url: "https://go.dev/changed"}); err != nil {
		t.Fatal(err)
	}
	if code, body := a.do(ctx, "GET", "/from-grpc", ""); code != 302 || !strings.Contains(body, "https://go.dev/changed") {
		t.Errorf("redirect after an update over gRPC: %d %s", code, body)
	}
	if code, body := a.do(ctx, "PUT", "/api/links/from-http", `{"url":"https://go.dev/put"}`); code != 200 {
		t.Fatalf("PUT over HTTP: %d %s", code, body)
	}
	if got, err := links.GetLink(ctx, &linksv1.GetLinkRequest{Slug: "from-http"}); err != nil || got.GetLink().GetUrl() != "https://go.dev/put" {
		t.Errorf("GetLink after a PUT over HTTP: %v, %v", got, err)
	}
	page, err := links.ListLinks(ctx, &linksv1.ListLinksRequest{PageSize: 1})
	if err != nil || len(page.GetLinks()) != 1 || page.GetNextPageToken() == "" {
		t.Errorf("ListLinks page 1: %v, %v", page, err)
	}
	if _, err := links.DeleteLink(ctx, &linksv1.DeleteLinkRequest{Slug: "from-grpc"}); err != nil {
		t.Fatal(err)
	}
	if code, _ := a.do(ctx, "GET", "/api/links/from-grpc", ""); code != 404 {
		t.Errorf("GET over HTTP a link deleted over gRPC: %d", code)
	}
	t.Logf("created over gRPC at %s: read, updated, redirected and deleted across both transports", created.GetLink().GetCreateTime().AsTime().Format(time.RFC3339))

	for _, tt := range []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"taken", func() error {
			_, err := links.CreateLink(ctx, &linksv1.CreateLinkRequest{Slug: "from-http", Url: "https://go.dev"})
			return err
		}, codes.AlreadyExists, "slug already exists"},
		{"bad url", func() error {
			_, err := links.CreateLink(ctx, &linksv1.CreateLinkRequest{Url: "ftp://go.dev"})
			return err
		}, codes.InvalidArgument, "url must begin with http:// or https://"},
		{"missing", func() error {
			_, err := links.GetLink(ctx, &linksv1.GetLinkRequest{Slug: "from-grpc"})
			return err
		}, codes.NotFound, "not found"},
		{"page size", func() error {
			_, err := links.ListLinks(ctx, &linksv1.ListLinksRequest{PageSize: 1000})
			return err
		}, codes.InvalidArgument, "page_size must be a whole number from 1 to 100"},
	} {
		if st := status.Convert(tt.call()); st.Code() != tt.code || st.Message() != tt.msg {
			t.Errorf("%s: %s %q, want %s %q", tt.name, st.Code(), st.Message(), tt.code, tt.msg)
		}
	}

	// Reflection, as grpcurl uses it: the server lists its services.
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var services []string
	for _, svc := range resp.GetListServicesResponse().GetService() {
		services = append(services, svc.GetName())
	}
	_ = stream.CloseSend()
	slices.Sort(services)
	if want := []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", "links.v1.LinkService"}; !slices.Equal(services, want) {
		t.Errorf("reflection lists %q, want %q", services, want)
	}

	list, err := healthpb.NewHealthClient(conn).List(ctx, &healthpb.HealthListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for name, st := range list.GetStatuses() {
		listed = append(listed, fmt.Sprintf("%q:%s", name, st.GetStatus()))
	}
	slices.Sort(listed)
	want := []string{`"":SERVING`, `"liveness":SERVING`, `"memcached":SERVING`, `"memcached/` + s.mc.Addr + `":SERVING`, `"postgres":SERVING`,
		`"postgres/default":SERVING`, `"readiness":SERVING`, `"shutdown":SERVING`, `"startup":SERVING`}
	if !slices.Equal(listed, want) {
		t.Errorf("health List:\n%q\nwant\n%q", listed, want)
	}
}

// TestGRPCHealthcheckCommand: `app healthcheck -grpc` asks the running
// app's gRPC health service, for an image without a shell: exit 0 when the
// service is SERVING, 1 when it is not or unknown.
func TestGRPCHealthcheckCommand(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	run := func(args ...string) (int, string) {
		cmd := exec.CommandContext(t.Context(), appBinary(t), append([]string{"healthcheck", "-grpc"}, args...)...)
		cmd.Env = []string{"GRPC_ADDR=" + s.app.grpc, "LOG_FORMAT=text"}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return 0, string(out)
		case errors.As(err, &exit):
			return exit.ExitCode(), string(out)
		}
		t.Fatal(err)
		return -1, ""
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 0, `gRPC health check of "readiness" at ` + s.app.grpc + ": SERVING"},
		{[]string{"-service", "postgres/default"}, 0, "SERVING"},
		{[]string{"-service", "liveness"}, 0, "SERVING"},
		{[]string{"-service", "nope"}, 1, "NotFound"},
	} {
		code, out := run(tt.args...)
		if code != tt.code || !strings.Contains(out, tt.want) {
			t.Errorf("app healthcheck -grpc %v: exit %d %q, want %d with %q", tt.args, code, out, tt.code, tt.want)
		}
	}
	s.pg.Stop(t)
	err := e2e.Poll(t.Context(), detect+5*time.Second, func(context.Context) error {
		if code, out := run(); code != 1 || !strings.Contains(out, "NOT_SERVING") {
			return fmt.Errorf("exit %d %q, want 1 and NOT_SERVING", code, out)
		}
		return nil
	})
	if err != nil {
		t.Errorf("app healthcheck -grpc with PostgreSQL stopped: %v", err)
	}
}
