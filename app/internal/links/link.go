package links

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"
)

// A Link is one short link.
type Link struct {
	Slug      string    `json:"slug"`
	URL       string    `json:"url"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Errors of a [Repository]. An error that wraps ErrUnavailable says that the
// repository cannot be reached now (refused, timed out, shutting down): the
// request may succeed if tried again later. Other errors are internal.
var (
	ErrNotFound    = errors.New("links: not found")
	ErrConflict    = errors.New("links: slug already exists")
	ErrUnavailable = errors.New("links: the store is unavailable")
)

// A Repository stores links. [Store] and [Cache] are Repositories.
type Repository interface {
	Create(ctx context.Context, slug, url string) (Link, error)
	Get(ctx context.Context, slug string) (Link, error)
	List(ctx context.Context, after string, limit int) ([]Link, error)
	Update(ctx context.Context, slug, url string) (Link, error)
	Delete(ctx context.Context, slug string) error
}

// Limits of a link.
const (
	MaxURLLength  = 2048
	MaxSlugLength = 64
)

var slugPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// reserved are the slugs that name the service's own paths.
func reserved(slug string) bool {
	switch slug {
	case "api", "livez", "healthz", "readyz", "metrics":
		return true
	}
	return false
}

// ValidateSlug returns an [*Error] (Invalid, field "slug") saying what is wrong
// with slug, or nil.
func ValidateSlug(slug string) error {
	switch {
	case slug == "":
		return invalid("slug", "is empty")
	case len(slug) > MaxSlugLength:
		return invalid("slug", fmt.Sprintf("is longer than %d characters", MaxSlugLength))
	case !slugPattern.MatchString(slug):
		return invalid("slug", "may hold only letters, digits, '-' and '_'")
	case reserved(slug):
		return invalid("slug", fmt.Sprintf("%q is reserved", slug))
	}
	return nil
}

// ValidateURL returns an [*Error] (Invalid, field "url") saying what is wrong
// with u, or nil: it must be an absolute http or https URL with a host, of at
// most MaxURLLength bytes.
func ValidateURL(u string) error {
	if u == "" {
		return invalid("url", "is empty")
	}
	if len(u) > MaxURLLength {
		return invalid("url", fmt.Sprintf("is longer than %d bytes", MaxURLLength))
	}
	p, err := url.Parse(u)
	if err != nil {
		return invalid("url", "does not parse")
	}
	if p.Scheme != "http" && p.Scheme != "https" {
		return invalid("url", "must begin with http:// or https://")
	}
	if p.Host == "" {
		return invalid("url", "has no host")
	}
	return nil
}
