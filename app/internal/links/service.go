package links

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"time"
)

// Page sizes of [Service.List].
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Service is the links API that both transports serve: [Handler] over HTTP and
// [GRPCServer] over gRPC translate their requests into its calls and its
// [*Error] into their statuses, and nothing else. It validates every request,
// generates slugs, and classifies the repository's errors; it logs the
// unexpected ones (once per kind and interval, see errorLog) and returns
// errors whose text quotes nothing from a driver.
type Service struct {
	repo   Repository
	errors *errorLog
}

// NewService returns a Service over repo that logs to log.
func NewService(repo Repository, log *slog.Logger) *Service {
	return &Service{repo: repo, errors: newErrorLog(log, 10*time.Second)}
}

// A Code classifies an [Error]. Each transport maps it to its own status.
type Code int

// The codes of an [Error].
const (
	// Internal: anything unexpected (HTTP 500, gRPC INTERNAL).
	Internal Code = iota
	// Invalid: the request breaks a rule; the message says which (400, INVALID_ARGUMENT).
	Invalid
	// NotFound: no link has the slug (404, NOT_FOUND).
	NotFound
	// Conflict: the slug is taken (409, ALREADY_EXISTS).
	Conflict
	// Unavailable: the database cannot be reached; a retry may succeed (503, UNAVAILABLE).
	Unavailable
	// Canceled: the caller's context ended first (503, CANCELED or DEADLINE_EXCEEDED).
	Canceled
)

// An Error is a request the [Service] refused or could not serve.
type Error struct {
	Code Code
	// Field is the request field at fault for an Invalid error: "url",
	// "slug", "limit" or "after"; empty otherwise.
	Field string
	// Reason says what is wrong; it quotes nothing from the request but a
	// reserved slug, and nothing from a driver.
	Reason string
	// Err is the cause, for the log only: it may carry driver detail.
	Err error
}

// Error returns the field and the reason, as a client may be shown them.
func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + " " + e.Reason
	}
	return e.Reason
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// invalid returns an Invalid error about field.
func invalid(field, reason string) *Error {
	return &Error{Code: Invalid, Field: field, Reason: reason}
}

// Create stores a link from slug to url; an empty slug gets a random one.
func (s *Service) Create(ctx context.Context, slug, url string) (Link, error) {
	if err := ValidateURL(url); err != nil {
		return Link{}, err
	}
	generated := slug == ""
	if generated {
		slug = newSlug()
	} else if err := ValidateSlug(slug); err != nil {
		return Link{}, err
	}
	l, err := s.repo.Create(ctx, slug, url)
	if errors.Is(err, ErrConflict) && generated {
		// One retry: with 2^40 slugs a second collision is unlikely.
		l, err = s.repo.Create(ctx, newSlug(), url)
	}
	if err != nil {
		return Link{}, s.fail(ctx, "create", err)
	}
	return l, nil
}

// Get returns the link of slug.
func (s *Service) Get(ctx context.Context, slug string) (Link, error) {
	if err := ValidateSlug(slug); err != nil {
		return Link{}, err
	}
	l, err := s.repo.Get(ctx, slug)
	if err != nil {
		return Link{}, s.fail(ctx, "get", err)
	}
	return l, nil
}

// Update points slug's link at url.
func (s *Service) Update(ctx context.Context, slug, url string) (Link, error) {
	if err := ValidateSlug(slug); err != nil {
		return Link{}, err
	}
	if err := ValidateURL(url); err != nil {
		return Link{}, err
	}
	l, err := s.repo.Update(ctx, slug, url)
	if err != nil {
		return Link{}, s.fail(ctx, "update", err)
	}
	return l, nil
}

// Delete deletes slug's link.
func (s *Service) Delete(ctx context.Context, slug string) error {
	if err := ValidateSlug(slug); err != nil {
		return err
	}
	if err := s.repo.Delete(ctx, slug); err != nil {
		return s.fail(ctx, "delete", err)
	}
	return nil
}

// A Page is one page of [Service.List].
type Page struct {
	Links []Link // never nil
	Next  string // the after of the next page; empty on the last page
}

// List returns up to limit links (0 means [DefaultPageSize], at most
// [MaxPageSize]) whose slugs sort after after, in slug order.
func (s *Service) List(ctx context.Context, after string, limit int) (Page, error) {
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 0 || limit > MaxPageSize {
		return Page{}, invalid("limit", "must be a whole number from 1 to 100")
	}
	if after != "" && (len(after) > MaxSlugLength || !slugPattern.MatchString(after)) {
		return Page{}, invalid("after", "must be a slug")
	}
	links, err := s.repo.List(ctx, after, limit+1)
	if err != nil {
		return Page{}, s.fail(ctx, "list", err)
	}
	p := Page{Links: links}
	if len(links) > limit {
		p.Links, p.Next = links[:limit], links[limit-1].Slug
	}
	if p.Links == nil {
		p.Links = []Link{}
	}
	return p, nil
}

// fail returns the Error for the repository's err in the operation op, and
// logs it: an unavailable store at WARN (an outage, not a fault of the app),
// anything unexpected at ERROR.
func (s *Service) fail(ctx context.Context, op string, err error) *Error {
	switch {
	case errors.Is(err, ErrNotFound):
		return &Error{Code: NotFound, Reason: "not found", Err: err}
	case errors.Is(err, ErrConflict):
		return &Error{Code: Conflict, Reason: "slug already exists", Err: err}
	case ctx.Err() != nil:
		return &Error{Code: Canceled, Reason: "request cancelled", Err: err}
	case errors.Is(err, ErrUnavailable) || unreachable(err):
		s.errors.failed(ctx, slog.LevelWarn, "links: store unavailable", op, err)
		return &Error{Code: Unavailable, Reason: "store unavailable", Err: err}
	}
	s.errors.failed(ctx, slog.LevelError, "links: request failed", op, err)
	return &Error{Code: Internal, Reason: "internal error", Err: err}
}

// newSlug returns 8 random characters of lower-case base32 (40 bits).
func newSlug() string {
	return strings.ToLower(rand.Text()[:8])
}
