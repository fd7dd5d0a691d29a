package links

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"

	linksv1 "github.com/gok8s/gok8s/api/links/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// grpcClient returns a client of a GRPCServer over repo, in memory.
func grpcClient(t *testing.T, repo Repository) linksv1.LinkServiceClient {
	t.Helper()
	ln := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	linksv1.RegisterLinkServiceServer(srv, NewGRPCServer(NewService(repo, slog.New(slog.DiscardHandler))))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return linksv1.NewLinkServiceClient(conn)
}

// TestGRPCServer runs the links API over gRPC, step by step as TestHandler
// does over HTTP: each answer's code and message, or the link it returns.
func TestGRPCServer(t *testing.T) {
	c := grpcClient(t, newMemRepo())
	type call func(ctx context.Context) (string, error) // the result as a short string
	link := func(l *linksv1.Link) string {
		return l.GetSlug() + " " + l.GetUrl() + " " + l.GetCreateTime().AsTime().Format("2006-01-02") + " " + l.GetUpdateTime().AsTime().Format("2006-01-02")
	}
	create := func(slug, url string) call {
		return func(ctx context.Context) (string, error) {
			r, err := c.CreateLink(ctx, &linksv1.CreateLinkRequest{Slug: slug, Url: url})
			return link(r.GetLink()), err
		}
	}
	get := func(slug string) call {
		return func(ctx context.Context) (string, error) {
			r, err := c.GetLink(ctx, &linksv1.GetLinkRequest{Slug: slug})
			return link(r.GetLink()), err
		}
	}
	update := func(slug, url string) call {
		return func(ctx context.Context) (string, error) {
			r, err := c.UpdateLink(ctx, &linksv1.UpdateLinkRequest{Slug: slug, Url: url})
			return link(r.GetLink()), err
		}
	}
	del := func(slug string) call {
		return func(ctx context.Context) (string, error) {
			_, err := c.DeleteLink(ctx, &linksv1.DeleteLinkRequest{Slug: slug})
			return "", err
		}
	}
	list := func(size int32, token string) call {
		return func(ctx context.Context) (string, error) {
			r, err := c.ListLinks(ctx, &linksv1.ListLinksRequest{PageSize: size, PageToken: token})
			var slugs []string
			for _, l := range r.GetLinks() {
				slugs = append(slugs, l.GetSlug())
			}
			return strings.Join(slugs, ",") + " next=" + r.GetNextPageToken(), err
		}
	}
	steps := []struct {
		name string
		call call
		code codes.Code
		want string // the result, or the status message
	}{
		{"create", create("go", "https://go.dev"), codes.OK, "go https://go.dev 2026-01-02 2026-01-02"},
		{"create another", create("pkg", "https://pkg.go.dev"), codes.OK, "pkg https://pkg.go.dev 2026-01-02 2026-01-02"},
		{"create taken", create("go", "https://go.dev"), codes.AlreadyExists, "slug already exists"},
		{"create bad url", create("", "javascript:alert(1)"), codes.InvalidArgument, "url must begin with http:// or https://"},
		{"create empty url", create("x", ""), codes.InvalidArgument, "url is empty"},
		{"create bad slug", create("a b", "https://go.dev"), codes.InvalidArgument, "slug may hold only letters, digits, '-' and '_'"},
		{"create reserved slug", create("readyz", "https://go.dev"), codes.InvalidArgument, `slug "readyz" is reserved`},
		{"get", get("go"), codes.OK, "go https://go.dev 2026-01-02 2026-01-02"},
		{"get missing", get("nope"), codes.NotFound, "not found"},
		{"get empty slug", get(""), codes.InvalidArgument, "slug is empty"},
		{"get long slug", get(strings.Repeat("a", 65)), codes.InvalidArgument, "slug is longer than 64 characters"},
		{"list page 1", list(1, ""), codes.OK, "go next=go"},
		{"list page 2", list(1, "go"), codes.OK, "pkg next="},
		{"list end", list(0, "pkg"), codes.OK, " next="},
		{"list default size", list(0, ""), codes.OK, "go,pkg next="},
		{"list size too big", list(101, ""), codes.InvalidArgument, "page_size must be a whole number from 1 to 100"},
		{"list size negative", list(-1, ""), codes.InvalidArgument, "page_size must be a whole number from 1 to 100"},
		{"list bad token", list(0, "a\x00"), codes.InvalidArgument, "page_token must be a slug"},
		{"update", update("go", "https://go.dev/doc"), codes.OK, "go https://go.dev/doc 2026-01-02 2026-01-02"},
		{"update missing", update("nope", "https://go.dev"), codes.NotFound, "not found"},
		{"update bad url", update("go", "go.dev"), codes.InvalidArgument, "url must begin with http:// or https://"},
		{"delete", del("go"), codes.OK, ""},
		{"delete again", del("go"), codes.NotFound, "not found"},
		{"get deleted", get("go"), codes.NotFound, "not found"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			got, err := s.call(t.Context())
			st := status.Convert(err)
			if st.Code() != s.code {
				t.Fatalf("code %s %q, want %s", st.Code(), st.Message(), s.code)
			}
			if err != nil {
				got = st.Message()
			}
			if got != s.want {
				t.Errorf("got  %q\nwant %q", got, s.want)
			}
		})
	}
	r, err := c.CreateLink(t.Context(), &linksv1.CreateLinkRequest{Url: "https://example.com"})
	if err != nil || len(r.GetLink().GetSlug()) != 8 {
		t.Errorf("create with a generated slug: %v, %v", r, err)
	}
}

// TestGRPCServerHidesErrors: a database failure is UNAVAILABLE or INTERNAL
// with a fixed message: no driver text, address or password.
func TestGRPCServerHidesErrors(t *testing.T) {
	tests := []struct {
		fail error
		code codes.Code
		msg  string
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5432}, Err: syscall.ECONNREFUSED}, codes.Unavailable, "store unavailable"},
		{errBroken, codes.Internal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			repo := newMemRepo()
			repo.fail = tt.fail
			c := grpcClient(t, repo)
			_, err := c.GetLink(t.Context(), &linksv1.GetLinkRequest{Slug: "go"})
			if st := status.Convert(err); st.Code() != tt.code || st.Message() != tt.msg {
				t.Errorf("got %s %q, want %s %q", st.Code(), st.Message(), tt.code, tt.msg)
			}
		})
	}
}

// TestGRPCServerDeadline: a call whose deadline passes while the repository
// works is DEADLINE_EXCEEDED, from the context, not a database error.
func TestGRPCServerDeadline(t *testing.T) {
	repo := newMemRepo()
	repo.beforeWrite = func() {} // no-op: the block comes from the context below
	c := grpcClient(t, blockingRepo{repo})
	ctx, cancel := context.WithTimeout(t.Context(), 50e6)
	defer cancel()
	_, err := c.CreateLink(ctx, &linksv1.CreateLinkRequest{Slug: "go", Url: "https://go.dev"})
	if code := status.Code(err); code != codes.DeadlineExceeded {
		t.Errorf("code %s (%v), want DeadlineExceeded", code, err)
	}
}

// blockingRepo's Create waits for its context to end and fails with its error.
type blockingRepo struct{ *memRepo }

func (blockingRepo) Create(ctx context.Context, _, _ string) (Link, error) {
	<-ctx.Done()
	return Link{}, errors.Join(errors.New("links: create: read tcp: i/o timeout"), ctx.Err())
}
