package e2e

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// startTimeout bounds a backend's start: with both cores busy (four
// PostgreSQL containers initializing at once beside compilers), one took over
// a minute to log that it was ready. A guard against a hang, not a measure.
const startTimeout = 5 * time.Minute

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

// Pause freezes the container: connections to its backend hang. The
// runtime's freeze fails now and then on a busy machine ("unable to freeze"),
// leaving the container running: it is tried again for up to 10 s.
func (c *Container) Pause(tb testing.TB) {
	tb.Helper()
	c.docker(tb, func(ctx context.Context, cli *testcontainers.DockerClient) error {
		return Poll(ctx, 10*time.Second, func(ctx context.Context) error {
			_, err := cli.ContainerPause(ctx, c.GetContainerID(), client.ContainerPauseOptions{})
			if err != nil && !strings.Contains(err.Error(), "unable to freeze") {
				return Permanent(err)
			}
			return err
		})
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
	err := Poll(tb.Context(), startTimeout, func(ctx context.Context) error { return c.ready(ctx) })
	if err != nil {
		tb.Fatalf("backend not ready after start: %v", err)
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

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
