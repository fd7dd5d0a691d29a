// Package linksv1 is the reference app's links API over gRPC, generated from
// links.proto by `make generate` (protoc-gen-go and protoc-gen-go-grpc, pinned
// in tools/buf): the messages, the LinkService client and the interface its
// server implements. Only this file is written by hand.
//
// The server is links.GRPCServer in the app; clients dial the app's GRPC_ADDR:
//
//	conn, err := grpc.NewClient("localhost:50051", grpc.WithTransportCredentials(insecure.NewCredentials()))
//	…
//	resp, err := linksv1.NewLinkServiceClient(conn).CreateLink(ctx, &linksv1.CreateLinkRequest{Url: "https://go.dev"})
package linksv1
