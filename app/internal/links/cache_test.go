package links

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer a logger may write to while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestCacheDegrades: with memcached unreachable every call still succeeds from
// the repository, and the outage is logged once at WARN, not per request.
func TestCacheDegrades(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()

	var logs lockedBuffer
	repo := newMemRepo()
	c := NewCache(repo, []string{down}, time.Minute, 100*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := t.Context()
	if _, err := c.Create(ctx, "go", "https://go.dev"); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if l, err := c.Get(ctx, "go"); err != nil || l.URL != "https://go.dev" {
			t.Fatalf("Get = %+v, %v", l, err)
		}
	}
	if _, err := c.Update(ctx, "go", "https://go.dev/x"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "go"); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d WARN lines, want 1:\n%s", n, logs.String())
	}
}

func TestExpiration(t *testing.T) {
	for ttl, want := range map[time.Duration]int32{
		0: 1, 500 * time.Millisecond: 1, time.Second: 1, 90 * time.Second: 90, 1500 * time.Millisecond: 1,
		30 * 24 * time.Hour: 2592000, 31 * 24 * time.Hour: 2592000, 1 << 62: 2592000,
	} {
		if got := expiration(ttl); got != want {
			t.Errorf("expiration(%s) = %d, want %d", ttl, got, want)
		}
	}
}
