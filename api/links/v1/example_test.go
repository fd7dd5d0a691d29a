package linksv1_test

import (
	"context"
	"fmt"
	"log"
	"net"

	linksv1 "github.com/gok8s/gok8s/api/links/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// oneLink serves a single link, "go"; the app's server is links.GRPCServer.
type oneLink struct {
	linksv1.UnimplementedLinkServiceServer
}

func (oneLink) GetLink(_ context.Context, req *linksv1.GetLinkRequest) (*linksv1.GetLinkResponse, error) {
	if req.GetSlug() != "go" {
		return nil, status.Error(codes.NotFound, "not found")
	}
	return &linksv1.GetLinkResponse{Link: &linksv1.Link{Slug: "go", Url: "https://go.dev"}}, nil
}

// A client calls the LinkService over a connection to the app's GRPC_ADDR;
// here the server runs in memory.
func ExampleNewLinkServiceClient() {
	ln := bufconn.Listen(1 << 16)
	srv := grpc.NewServer()
	linksv1.RegisterLinkServiceServer(srv, oneLink{})
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	conn, err := grpc.NewClient("passthrough:///app",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := linksv1.NewLinkServiceClient(conn)

	resp, err := client.GetLink(context.Background(), &linksv1.GetLinkRequest{Slug: "go"})
	fmt.Println(resp.GetLink().GetUrl(), err)
	_, err = client.GetLink(context.Background(), &linksv1.GetLinkRequest{Slug: "nope"})
	fmt.Println(status.Code(err))
	// Output:
	// https://go.dev <nil>
	// NotFound
}
