package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// DefaultMemcachedImage is the memcached image, as on any machine with a registry.
const DefaultMemcachedImage = "memcached:1.6-alpine"

// MemcachedImage returns $MEMCACHED_IMAGE, or DefaultMemcachedImage.
func MemcachedImage() string { return envOr("MEMCACHED_IMAGE", DefaultMemcachedImage) }

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
			testcontainers.WithWaitStrategyAndDeadline(startTimeout, wait.ForListeningPort("11211/tcp").WithStartupTimeout(startTimeout)),
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
