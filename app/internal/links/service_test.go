package links

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestServiceErrors: each repository failure becomes one Code, whose message
// quotes nothing from the driver; only the unexpected ones are logged.
func TestServiceErrors(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		fail   error
		code   Code
		reason string
		logged bool
	}{
		{ErrNotFound, NotFound, "not found", false},
		{fmt.Errorf("wrapped: %w", ErrConflict), Conflict, "slug already exists", false},
		{refused, Unavailable, "store unavailable", true},
		{&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, Unavailable, "store unavailable", true},
		{&pgconn.PgError{Code: "08006", Message: "connection failure"}, Unavailable, "store unavailable", true},
		{fmt.Errorf("links: get %q: %w", "go", io.ErrUnexpectedEOF), Unavailable, "store unavailable", true},
		{&pgconn.PgError{Code: "23502", Message: "null value in column \"url\""}, Internal, "internal error", true},
		{errBroken, Internal, "internal error", true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%T %v", tt.fail, tt.fail), func(t *testing.T) {
			repo := newMemRepo()
			repo.fail = tt.fail
			logs := &lockedBuffer{}
			svc := NewService(repo, slog.New(slog.NewTextHandler(logs, nil)))
			_, err := svc.Get(t.Context(), "go")
			e, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("error %v (%T), want an *Error", err, err)
			}
			if e.Code != tt.code || e.Error() != tt.reason || !errors.Is(err, tt.fail) {
				t.Errorf("got code %d %q (cause %v), want %d %q wrapping the repository's error", e.Code, e.Error(), e.Err, tt.code, tt.reason)
			}
			if logged := logs.String() != ""; logged != tt.logged {
				t.Errorf("logged %v, want %v: %s", logged, tt.logged, logs.String())
			}
		})
	}
}

// TestServiceCanceled: a failure after the caller's context ended is
// Canceled, not a database error, and is not logged.
func TestServiceCanceled(t *testing.T) {
	repo := newMemRepo()
	repo.fail = context.Canceled
	logs := &lockedBuffer{}
	svc := NewService(repo, slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := svc.Create(ctx, "go", "https://go.dev")
	if e, ok := errors.AsType[*Error](err); !ok || e.Code != Canceled {
		t.Errorf("error %v, want Canceled", err)
	}
	if logs.String() != "" {
		t.Errorf("a cancelled request was logged: %s", logs.String())
	}
}

// TestHandlerDatabaseUnavailable: over HTTP a database that cannot be
// reached is 503 with Retry-After, not 500, and the body names no address.
func TestHandlerDatabaseUnavailable(t *testing.T) {
	repo := newMemRepo()
	repo.fail = &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5432}, Err: syscall.ECONNREFUSED}
	h := NewHandler(NewService(repo, slog.New(slog.DiscardHandler)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/links/go", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Body.String() != `{"error":"store unavailable"}`+"\n" || rec.Header().Get("Retry-After") != "5" {
		t.Errorf("got %d %q Retry-After %q", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
}
