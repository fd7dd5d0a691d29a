package disruption_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gok8s/gok8s/k8s/disruption"
)

// standInTimeout bounds one request to a stand-in: far above what it takes
// (microseconds), so that only a failure the stand-in makes is counted, even
// on a loaded machine (at load 55 a 5 s bound timed out 399 of 450).
const standInTimeout = time.Minute

// app is a stand-in for the link shortener: each operation answers as the app
// does, except that every fail-th request answers 503 (none when fail is 0).
// It closes enough once n requests arrived.
func app(fail, n int64, enough chan struct{}) http.Handler {
	var count atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := count.Add(1)
		if i == n {
			close(enough)
		}
		if fail > 0 && i%fail == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":"not ready"}`)
			return
		}
		switch {
		case r.Method == http.MethodPost:
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"slug":"s%d"}`, i)
		case strings.HasPrefix(r.URL.Path, "/api/links/"):
			fmt.Fprint(w, `{"slug":"a"}`)
		default:
			http.Redirect(w, r, "https://example.com/", http.StatusFound)
		}
	})
}

func wait(t testing.TB, ch chan struct{}) {
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("the load sent too few requests in 30s")
	}
}

// TestLoad: every request the stand-in fails is recorded with its kind, the
// creates that got 201 are kept, and both connection kinds carry load.
func TestLoad(t *testing.T) {
	tests := []struct {
		name string
		fail int64
	}{
		{"none fail", 0},
		{"every 4th fails", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enough := make(chan struct{})
			srv := httptest.NewServer(app(tt.fail, 60, enough))
			defer srv.Close()
			l, err := disruption.Start(disruption.Config{BaseURL: srv.URL, Rate: 100, Slugs: []string{"a"}, Timeout: standInTimeout})
			if err != nil {
				t.Fatal(err)
			}
			wait(t, enough)
			s := l.Stop()
			t.Log(s)
			if s.Requests < 60 || s.ByConn[disruption.KeepAlive] == 0 || s.ByConn[disruption.NewConn] == 0 {
				t.Errorf("requests %d, by connection %v", s.Requests, s.ByConn)
			}
			want := 0
			if tt.fail > 0 {
				want = s.Requests / int(tt.fail)
			}
			if got := s.ByKind()[disruption.KeepAlive+" status 503 (not ready)"] + s.ByKind()[disruption.NewConn+" status 503 (not ready)"]; got != want || len(s.Failures) != want {
				t.Errorf("%d failures (%d 503), want %d: %v", len(s.Failures), got, want, s.ByKind())
			}
			creates := 0
			for _, f := range s.Failures {
				if f.Op == disruption.OpCreate {
					creates++
				}
			}
			if len(s.Created)+creates < s.Requests/3 || len(s.Created) == 0 {
				t.Errorf("%d creates kept, %d failed, of %d requests", len(s.Created), creates, s.Requests)
			}
			if s.P99 <= 0 || s.P50 > s.P99 {
				t.Errorf("p50 %s, p99 %s", s.P50, s.P99)
			}
		})
	}
}

// TestLoadTransportErrors: a server that closes each connection it accepts
// fails every request with EOF, a reset or a closed idle connection, counted as such.
func TestLoadTransportErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	enough := make(chan struct{})
	go func() {
		for i := 1; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
			if i == 20 {
				close(enough)
			}
		}
	}()
	l, err := disruption.Start(disruption.Config{BaseURL: "http://" + ln.Addr().String(), Rate: 100, Slugs: []string{"a"}, Timeout: standInTimeout})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, enough)
	s := l.Stop()
	t.Log(s)
	byKind := s.ByKind()
	n := 0
	for _, conn := range []string{disruption.KeepAlive, disruption.NewConn} {
		n += byKind[conn+" EOF"] + byKind[conn+" connection reset"] + byKind[conn+" closed idle connection"]
	}
	if n == 0 || n != len(s.Failures) || len(s.Failures) != s.Requests {
		t.Errorf("%d requests, failures by kind %v, want each EOF or connection reset", s.Requests, byKind)
	}
}

func ExampleStart() {
	enough := make(chan struct{})
	srv := httptest.NewServer(app(0, 30, enough))
	defer srv.Close()

	l, err := disruption.Start(disruption.Config{BaseURL: srv.URL, Rate: 100, Slugs: []string{"a"}, Timeout: standInTimeout})
	if err != nil {
		fmt.Println(err)
		return
	}
	<-enough // or: do what must not fail a request
	s := l.Stop()
	fmt.Println(s.Requests >= 30, len(s.Failures))
	// Output: true 0
}
