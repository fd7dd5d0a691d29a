// Package e2e holds the end-to-end suites, which run the real app against real
// PostgreSQL and memcached containers and watch its probes, and the helpers they
// share with the app's own store and cache tests.
//
// The suites need a Docker engine. Without one they skip, saying how to run
// them, except when the environment variable CI is set: then they fail. Image
// names come from POSTGRES_IMAGE and MEMCACHED_IMAGE (defaults postgres:17-alpine
// and memcached:1.6-alpine), the same variables docker-compose.yml reads.
//
// Outage tests keep the app's address for a backend across a stop and start by
// pinning the container's host port: Docker gives a restarted container a new
// random port otherwise, and the app would go on dialing the old one.
package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Default images, as on any machine with a registry.
const (
	DefaultPostgresImage  = "postgres:17-alpine"
	DefaultMemcachedImage = "memcached:1.6-alpine"
)

// PostgresImage returns $POSTGRES_IMAGE, or DefaultPostgresImage.
func PostgresImage() string { return envOr("POSTGRES_IMAGE", DefaultPostgresImage) }

// MemcachedImage returns $MEMCACHED_IMAGE, or DefaultMemcachedImage.
func MemcachedImage() string { return envOr("MEMCACHED_IMAGE", DefaultMemcachedImage) }

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// RequireDocker skips tb when no Docker engine answers, or fails it when the
// environment variable CI is set.
func RequireDocker(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := dockerHealth(ctx)
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("e2e: no Docker engine answers and CI is set: %v", err)
	}
	tb.Skipf("e2e: no Docker engine answers (%v); start Docker and run `make test` to run this test", err)
}

func dockerHealth(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil { // testcontainers panics when it finds no engine
			err = fmt.Errorf("%v", p)
		}
	}()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.Ping(ctx, client.PingOptions{})
	return err
}

// A Container is a started backend container whose host port stays the same
// across Stop and Start.
type Container struct {
	testcontainers.Container
	// Port is the host port of the backend's service port.
	Port string
	// ready reports whether the backend answers, after a Start.
	ready func(ctx context.Context) error
}

// Stop stops the container; its backend refuses connections at once.
func (c *Container) Stop(tb testing.TB) {
	tb.Helper()
	timeout := 10 * time.Second
	if err := c.Container.Stop(tb.Context(), &timeout); err != nil {
		tb.Fatalf("stop: %v", err)
	}
}

// Start starts the stopped container on the same host port and waits until its
// backend answers.
func (c *Container) Start(tb testing.TB) {
	tb.Helper()
	if err := c.Container.Start(tb.Context()); err != nil {
		tb.Fatalf("start: %v", err)
	}
	c.waitReady(tb)
}

// Pause freezes the container: connections to its backend hang.
func (c *Container) Pause(tb testing.TB) {
	tb.Helper()
	c.docker(tb, func(ctx context.Context, cli *testcontainers.DockerClient) error {
		_, err := cli.ContainerPause(ctx, c.GetContainerID(), client.ContainerPauseOptions{})
		return err
	})
}

// Unpause thaws a paused container.
func (c *Container) Unpause(tb testing.TB) {
	tb.Helper()
	c.docker(tb, func(ctx context.Context, cli *testcontainers.DockerClient) error {
		_, err := cli.ContainerUnpause(ctx, c.GetContainerID(), client.ContainerUnpauseOptions{})
		return err
	})
}

func (c *Container) docker(tb testing.TB, f func(context.Context, *testcontainers.DockerClient) error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 30*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer cli.Close()
	if err := f(ctx, cli); err != nil {
		tb.Fatal(err)
	}
}

// Logs returns what the container has logged so far.
func (c *Container) Logs(tb testing.TB) string {
	tb.Helper()
	rc, err := c.Container.Logs(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func (c *Container) waitReady(tb testing.TB) {
	tb.Helper()
	err := Poll(tb.Context(), 60*time.Second, func(ctx context.Context) error { return c.ready(ctx) })
	if err != nil {
		tb.Fatalf("backend not ready after start: %v", err)
	}
}

// Stop wraps err so that Poll returns it at once instead of trying again.
func Stop(err error) error { return stopError{err} }

type stopError struct{ error }

func (s stopError) Unwrap() error { return s.error }

// Poll calls f until it returns nil or timeout passes, and returns f's last
// error. An error made by Stop ends the polling at once.
func Poll(ctx context.Context, timeout time.Duration, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		err := f(attempt)
		cancelAttempt()
		if err == nil {
			return nil
		}
		if errors.As(err, new(stopError)) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}

// FreePort returns a TCP port that was free on every host address a moment
// ago. It picks from below Linux's ephemeral range (32768 and up), where the
// kernel and Docker choose ports by themselves, so that they rarely take it
// first; StartPostgres and StartMemcached retry with another if one does.
func FreePort(tb testing.TB) string {
	tb.Helper()
	for range 100 {
		port := strconv.Itoa(20000 + rand.IntN(12000))
		ln, err := net.Listen("tcp", ":"+port)
		if err == nil {
			ln.Close()
			return port
		}
	}
	tb.Fatal("no free port found in 100 tries")
	return ""
}

// start runs a container on host port port, or on a FreePort (retried while
// another process takes the port first) when port is "".
func start(tb testing.TB, port string, run func(port string) (testcontainers.Container, error)) (testcontainers.Container, string) {
	tb.Helper()
	fixed := port != ""
	for attempt := 1; ; attempt++ {
		if !fixed {
			port = FreePort(tb)
		}
		ctr, err := run(port)
		testcontainers.CleanupContainer(tb, ctr)
		if err == nil {
			return ctr, port
		}
		if fixed || attempt == 5 || !strings.Contains(err.Error(), "address already in use") {
			tb.Fatalf("start container: %v", err)
		}
		tb.Logf("host port %s was taken meanwhile; trying another", port)
	}
}

// pinPort binds the container port to hostPort on every host address.
func pinPort(containerPort, hostPort string) testcontainers.CustomizeRequestOption {
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		hc.PortBindings = network.PortMap{
			network.MustParsePort(containerPort): {{HostIP: netip.IPv4Unspecified(), HostPort: hostPort}},
		}
	})
}

// A Postgres is a PostgreSQL container with user and password "postgres" and a
// database "gok8s".
type Postgres struct {
	*Container
	// URL is the database URL of gok8s on the host.
	URL string
}

// StartPostgres starts PostgreSQL on host port port (FreePort when ""), with
// every statement logged (see CountStatements). The container is removed when
// tb ends.
func StartPostgres(tb testing.TB, port string) *Postgres {
	tb.Helper()
	RequireDocker(tb)
	ctr, port := start(tb, port, func(port string) (testcontainers.Container, error) {
		ctr, err := postgres.Run(tb.Context(), PostgresImage(),
			postgres.WithDatabase("gok8s"),
			postgres.WithUsername("postgres"),
			postgres.WithPassword("postgres"),
			postgres.BasicWaitStrategies(),
			testcontainers.WithExposedPorts("5432/tcp"),
			pinPort("5432/tcp", port),
			testcontainers.WithCmdArgs("-c", "log_statement=all", "-c", "fsync=off"),
		)
		if ctr == nil {
			return nil, err // a typed nil would not be nil as a Container
		}
		return ctr, err
	})
	url := "postgres://postgres:postgres@127.0.0.1:" + port + "/gok8s?sslmode=disable"
	p := &Postgres{URL: url, Container: &Container{Container: ctr, Port: port}}
	p.ready = func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		return conn.Ping(ctx)
	}
	p.waitReady(tb)
	return p
}

// CountStatements returns how many times the server has logged the statement
// stmt, as log_statement=all writes it ("statement: <stmt>").
func (p *Postgres) CountStatements(tb testing.TB, stmt string) int {
	tb.Helper()
	return strings.Count(p.Logs(tb), "statement: "+stmt+"\n")
}

// A Memcached is a memcached container.
type Memcached struct {
	*Container
	// Addr is the server's host:port on the host.
	Addr string
}

// StartMemcached starts memcached on host port port (FreePort when ""). The
// container is removed when tb ends.
func StartMemcached(tb testing.TB, port string) *Memcached {
	tb.Helper()
	RequireDocker(tb)
	ctr, port := start(tb, port, func(port string) (testcontainers.Container, error) {
		ctr, err := testcontainers.Run(tb.Context(), MemcachedImage(),
			testcontainers.WithExposedPorts("11211/tcp"),
			pinPort("11211/tcp", port),
			testcontainers.WithWaitStrategy(wait.ForListeningPort("11211/tcp")),
		)
		if ctr == nil {
			return nil, err
		}
		return ctr, err
	})
	addr := "127.0.0.1:" + port
	m := &Memcached{Addr: addr, Container: &Container{Container: ctr, Port: port}}
	m.ready = func(ctx context.Context) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		if _, err := conn.Write([]byte("version\r\n")); err != nil {
			return err
		}
		buf := make([]byte, 8)
		if _, err := io.ReadFull(conn, buf); err != nil {
			return err
		}
		if !strings.HasPrefix(string(buf), "VERSION") {
			return fmt.Errorf("memcached answered %q", buf)
		}
		return nil
	}
	m.waitReady(tb)
	return m
}

// Get returns the value memcached holds for key, and whether it holds one,
// over memcached's text protocol.
func (m *Memcached) Get(ctx context.Context, key string) ([]byte, bool, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return nil, false, err
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	_ = conn.SetDeadline(deadline)
	if _, err := fmt.Fprintf(conn, "get %s\r\n", key); err != nil {
		return nil, false, err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, false, err
	}
	if line == "END\r\n" {
		return nil, false, nil
	}
	var k string
	var flags, n int
	if _, err := fmt.Sscanf(line, "VALUE %s %d %d", &k, &flags, &n); err != nil {
		return nil, false, fmt.Errorf("memcached answered %q", line)
	}
	value := make([]byte, n+2)
	if _, err := io.ReadFull(r, value); err != nil {
		return nil, false, err
	}
	return value[:n], true, nil
}
