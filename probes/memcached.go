package probes

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// Memcached returns a [Checker] named "memcached/" + addr that sends memcached's
// version command to the one server at addr (host:port, or a Unix socket path).
//
// Each check keeps its own client with one idle connection, so that a server that
// is down is found and named even when others answer. The host name is resolved
// at every dial, not once at construction. The client has no context: its I/O
// timeout is set from ctx's deadline (DefaultTimeout without one), at most one
// ping per server is in flight, and Check returns when ctx is done.
func Memcached(addr string) Checker {
	c := memcache.NewFromSelector(MemcachedServer(addr))
	c.MaxIdleConns = 1
	return &memcachedCheck{
		name:   "memcached/" + addr,
		client: c,
		slot:   make(chan struct{}, 1),
	}
}

// MemcachedServers returns one [Memcached] check per address, in order.
func MemcachedServers(addrs []string) []Checker {
	checks := make([]Checker, 0, len(addrs))
	for _, a := range addrs {
		checks = append(checks, Memcached(a))
	}
	return checks
}

type memcachedCheck struct {
	name   string
	client *memcache.Client
	slot   chan struct{} // held while a ping runs; guards client.Timeout
}

var _ Checker = (*memcachedCheck)(nil)

func (c *memcachedCheck) Name() string { return c.name }

func (c *memcachedCheck) Check(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultTimeout)
	}
	select {
	case c.slot <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("ping: previous ping still running: %w", ctx.Err())
	}
	timeout := time.Until(deadline)
	if timeout <= 0 {
		<-c.slot
		return fmt.Errorf("ping: %w", context.DeadlineExceeded)
	}
	c.client.Timeout = timeout
	done := make(chan error, 1)
	go func() {
		defer func() { <-c.slot }()
		done <- c.client.Ping()
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ping: %w", ctx.Err())
	}
}

// MemcachedServer is the address of one memcached server, host:port or a
// Unix socket path (one with a "/"), resolved at every dial rather than once,
// so that a client starts before the server's DNS name resolves. It is a
// [net.Addr], and a memcache.ServerSelector that always picks itself.
type MemcachedServer string

var _ memcache.ServerSelector = MemcachedServer("")

// Network returns "unix" for a socket path, else "tcp".
func (s MemcachedServer) Network() string {
	if strings.Contains(string(s), "/") {
		return "unix"
	}
	return "tcp"
}

func (s MemcachedServer) String() string { return string(s) }

// PickServer returns s, whatever the key.
func (s MemcachedServer) PickServer(string) (net.Addr, error) { return s, nil }

// Each calls f with s.
func (s MemcachedServer) Each(f func(net.Addr) error) error { return f(s) }
