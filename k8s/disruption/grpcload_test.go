package disruption_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"

	linksv1 "github.com/gok8s/gok8s/api/links/v1"
	"github.com/gok8s/gok8s/k8s/disruption"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// links is a stand-in for the app's gRPC API: every fail-th call is
// UNAVAILABLE (none when fail is 0). It closes enough once n calls arrived.
type links struct {
	linksv1.UnimplementedLinkServiceServer
	count, fail, n int64
	enough         chan struct{}
}

func (l *links) next() (int64, error) {
	i := atomic.AddInt64(&l.count, 1)
	if i == l.n {
		close(l.enough)
	}
	if l.fail > 0 && i%l.fail == 0 {
		return i, status.Error(codes.Unavailable, "database unavailable")
	}
	return i, nil
}

func (l *links) GetLink(_ context.Context, req *linksv1.GetLinkRequest) (*linksv1.GetLinkResponse, error) {
	if _, err := l.next(); err != nil {
		return nil, err
	}
	return &linksv1.GetLinkResponse{Link: &linksv1.Link{Slug: req.GetSlug()}}, nil
}

func (l *links) CreateLink(context.Context, *linksv1.CreateLinkRequest) (*linksv1.CreateLinkResponse, error) {
	i, err := l.next()
	if err != nil {
		return nil, err
	}
	return &linksv1.CreateLinkResponse{Link: &linksv1.Link{Slug: fmt.Sprintf("s%d", i)}}, nil
}

// TestGRPCLoad: every RPC the stand-in fails is recorded with its status,
// the creates that succeeded are kept, and both methods carry load.
func TestGRPCLoad(t *testing.T) {
	for _, fail := range []int64{0, 4} {
		t.Run(fmt.Sprintf("every %dth fails", fail), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			stub := &links{fail: fail, n: 60, enough: make(chan struct{})}
			srv := grpc.NewServer()
			linksv1.RegisterLinkServiceServer(srv, stub)
			go func() { _ = srv.Serve(ln) }()
			defer srv.Stop()

			l, err := disruption.StartGRPC(disruption.GRPCConfig{Target: ln.Addr().String(), Rate: 100, Slugs: []string{"a"}, Conns: 3})
			if err != nil {
				t.Fatal(err)
			}
			wait(t, stub.enough)
			s := l.Stop()
			t.Log(s)
			if s.Requests < 60 || s.ByOp[disruption.OpGetLink] == 0 || s.ByOp[disruption.OpCreateLink] == 0 || s.Conns != 3 {
				t.Errorf("RPCs %d, by method %v, on %d connections", s.Requests, s.ByOp, s.Conns)
			}
			want := 0
			if fail > 0 {
				want = s.Requests / int(fail)
			}
			if len(s.Failures) != want {
				t.Errorf("%d failures, want %d: %v", len(s.Failures), want, s.ByKind())
			}
			for kind := range s.ByKind() {
				if kind != disruption.OpGetLink+" Unavailable (database unavailable)" && kind != disruption.OpCreateLink+" Unavailable (database unavailable)" {
					t.Errorf("failure kind %q", kind)
				}
			}
			if got := len(s.Created); got != s.ByOp[disruption.OpCreateLink]-countOp(s.Failures, disruption.OpCreateLink) {
				t.Errorf("%d creates kept, want every CreateLink that succeeded", got)
			}
			if s.P50 <= 0 || s.P99 < s.P50 {
				t.Errorf("p50 %s, p99 %s", s.P50, s.P99)
			}
		})
	}
}

func countOp(fs []disruption.Failure, op string) int {
	n := 0
	for _, f := range fs {
		if f.Op == op {
			n++
		}
	}
	return n
}
