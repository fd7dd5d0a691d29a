package links

import (
	"context"
	"errors"

	linksv1 "github.com/gok8s/gok8s/api/links/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// GRPCServer serves the links API over gRPC (links.v1.LinkService, defined
// in api/links/v1/links.proto) from a [Service], as [Handler] serves it over
// HTTP: the same rules, the same store and cache.
//
// A Service error becomes a status: Invalid is INVALID_ARGUMENT (the message
// names the request field), NotFound NOT_FOUND, Conflict ALREADY_EXISTS,
// Unavailable UNAVAILABLE, Canceled the context's CANCELED or
// DEADLINE_EXCEEDED, anything else INTERNAL. No message carries driver text.
//
// There is no authentication, as on HTTP: a fork that needs it checks the
// writes (CreateLink, UpdateLink, DeleteLink) here, or in an interceptor.
type GRPCServer struct {
	linksv1.UnimplementedLinkServiceServer
	svc *Service
}

var _ linksv1.LinkServiceServer = (*GRPCServer)(nil)

// NewGRPCServer returns a GRPCServer for svc; register it with
// linksv1.RegisterLinkServiceServer.
func NewGRPCServer(svc *Service) *GRPCServer { return &GRPCServer{svc: svc} }

// CreateLink stores a new link.
func (g *GRPCServer) CreateLink(ctx context.Context, req *linksv1.CreateLinkRequest) (*linksv1.CreateLinkResponse, error) {
	l, err := g.svc.Create(ctx, req.GetSlug(), req.GetUrl())
	if err != nil {
		return nil, grpcError(ctx, err)
	}
	return &linksv1.CreateLinkResponse{Link: toProto(l)}, nil
}

// GetLink returns the link of a slug.
func (g *GRPCServer) GetLink(ctx context.Context, req *linksv1.GetLinkRequest) (*linksv1.GetLinkResponse, error) {
	l, err := g.svc.Get(ctx, req.GetSlug())
	if err != nil {
		return nil, grpcError(ctx, err)
	}
	return &linksv1.GetLinkResponse{Link: toProto(l)}, nil
}

// UpdateLink points a slug at another URL.
func (g *GRPCServer) UpdateLink(ctx context.Context, req *linksv1.UpdateLinkRequest) (*linksv1.UpdateLinkResponse, error) {
	l, err := g.svc.Update(ctx, req.GetSlug(), req.GetUrl())
	if err != nil {
		return nil, grpcError(ctx, err)
	}
	return &linksv1.UpdateLinkResponse{Link: toProto(l)}, nil
}

// DeleteLink deletes the link of a slug.
func (g *GRPCServer) DeleteLink(ctx context.Context, req *linksv1.DeleteLinkRequest) (*linksv1.DeleteLinkResponse, error) {
	if err := g.svc.Delete(ctx, req.GetSlug()); err != nil {
		return nil, grpcError(ctx, err)
	}
	return &linksv1.DeleteLinkResponse{}, nil
}

// ListLinks returns one page of links. The page token is the slug the page
// starts after, as HTTP's ?after=; clients pass next_page_token back as it is.
func (g *GRPCServer) ListLinks(ctx context.Context, req *linksv1.ListLinksRequest) (*linksv1.ListLinksResponse, error) {
	page, err := g.svc.List(ctx, req.GetPageToken(), int(req.GetPageSize()))
	if err != nil {
		return nil, grpcError(ctx, err)
	}
	resp := &linksv1.ListLinksResponse{Links: make([]*linksv1.Link, len(page.Links)), NextPageToken: page.Next}
	for i, l := range page.Links {
		resp.Links[i] = toProto(l)
	}
	return resp, nil
}

func toProto(l Link) *linksv1.Link {
	return &linksv1.Link{Slug: l.Slug, Url: l.URL, CreateTime: timestamppb.New(l.CreatedAt), UpdateTime: timestamppb.New(l.UpdatedAt)}
}

// grpcCode maps each [Code] but Canceled to its gRPC code.
var grpcCode = [...]codes.Code{
	Internal:    codes.Internal,
	Invalid:     codes.InvalidArgument,
	NotFound:    codes.NotFound,
	Conflict:    codes.AlreadyExists,
	Unavailable: codes.Unavailable,
}

// grpcField names the request fields of the Service's List in the proto.
var grpcField = map[string]string{"limit": "page_size", "after": "page_token"}

// grpcError returns the status for a [Service] error.
func grpcError(ctx context.Context, err error) error {
	e, ok := errors.AsType[*Error](err)
	switch {
	case !ok:
		return status.Error(codes.Internal, "internal error")
	case e.Code == Canceled:
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
		return status.Error(codes.Canceled, e.Reason)
	case e.Field != "":
		field := e.Field
		if f, ok := grpcField[field]; ok {
			field = f
		}
		return status.Error(grpcCode[e.Code], field+" "+e.Reason)
	}
	return status.Error(grpcCode[e.Code], e.Reason)
}
