package probes

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeMemcached is a loopback stand-in that answers memcached's version command,
// or, when hung, accepts connections and never answers.
type fakeMemcached struct {
	ln   net.Listener
	hung bool
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
}

// close stops the listener and every connection, and waits for their goroutines.
func (f *fakeMemcached) close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func startFakeMemcached(t *testing.T, hung bool) *fakeMemcached {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeMemcached{ln: ln, hung: hung}
	f.wg.Go(f.serve)
	t.Cleanup(f.close)
	return f
}

func (f *fakeMemcached) addr() string { return f.ln.Addr().String() }

func (f *fakeMemcached) serve() {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, c)
		f.mu.Unlock()
		conns.Go(func() {
			defer c.Close()
			if f.hung {
				_, _ = io.Copy(io.Discard, c) // read, never answer, until closed
				return
			}
			rw := bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
			for {
				line, err := rw.ReadString('\n')
				if err != nil {
					return
				}
				if strings.TrimSpace(line) == "version" {
					rw.WriteString("VERSION 1.6.0-fake\r\n")
				} else {
					rw.WriteString("ERROR\r\n")
				}
				rw.Flush()
			}
		})
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestMemcached(t *testing.T) {
	up := startFakeMemcached(t, false)
	hung := startFakeMemcached(t, true)
	down := closedAddr(t)
	tests := []struct {
		name    string
		addr    string
		timeout time.Duration
		wantErr error // nil: passes; otherwise wrapped
		anyErr  bool
	}{
		{"up", up.addr(), time.Second, nil, false},
		{"down", down, time.Second, nil, true},
		{"hung", hung.addr(), 100 * time.Millisecond, nil, true},
		{"unresolvable", "no-such-host.invalid:11211", time.Second, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Memcached(tt.addr)
			if c.Name() != "memcached/"+tt.addr {
				t.Errorf("Name() = %q", c.Name())
			}
			ctx, cancel := context.WithTimeout(t.Context(), tt.timeout)
			defer cancel()
			start := time.Now()
			err := c.Check(ctx)
			if elapsed := time.Since(start); elapsed > tt.timeout+200*time.Millisecond {
				t.Errorf("Check took %s with a %s deadline", elapsed, tt.timeout)
			}
			switch {
			case !tt.anyErr && err != nil:
				t.Fatalf("err = %v, want nil", err)
			case tt.anyErr && err == nil:
				t.Fatal("err = nil, want an error")
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want it to wrap %v", err, tt.wantErr)
			}
		})
	}
}

// TestMemcachedOneOfSeveralDown: the seed's probe could not tell which server
// was down; here the down one is named and the others pass.
func TestMemcachedOneOfSeveralDown(t *testing.T) {
	a, b := startFakeMemcached(t, false), startFakeMemcached(t, false)
	down := closedAddr(t)
	r := mustReadiness(t, MemcachedServers([]string{a.addr(), down, b.addr()}))
	rep := r.Report(t.Context(), Filter{})
	want := "startup:ok shutdown:ok memcached/" + a.addr() + ":ok memcached/" + down + ":fail memcached/" + b.addr() + ":ok"
	if got := summary(rep); got != want {
		t.Fatalf("results = %q\nwant      %q", got, want)
	}
}

// TestMemcachedRecovers: a server that comes back is found by the same check.
func TestMemcachedRecovers(t *testing.T) {
	// The server comes up on the address the check failed on; another
	// process may take that port in between, so try a few.
	var c Checker
	var ln net.Listener
	for attempt := 0; ln == nil; attempt++ {
		addr := closedAddr(t)
		c = Memcached(addr)
		if err := c.Check(t.Context()); err == nil {
			t.Fatal("check passed with no server")
		}
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil && attempt == 4 {
			t.Fatalf("no free port to come back on: %v", err)
		}
	}
	f := &fakeMemcached{ln: ln}
	f.wg.Go(f.serve)
	t.Cleanup(f.close)
	if err := c.Check(t.Context()); err != nil {
		t.Fatalf("check after the server started: %v", err)
	}
}
