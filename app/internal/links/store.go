package links

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is a [Repository] in PostgreSQL, in the table the schema package creates.
type Store struct {
	db *pgxpool.Pool
}

var _ Repository = (*Store)(nil)

// NewStore returns a Store that uses db.
func NewStore(db *pgxpool.Pool) *Store { return &Store{db: db} }

const columns = "slug, url, created_at, updated_at"

// Create inserts a link; it returns ErrConflict if the slug is taken.
func (s *Store) Create(ctx context.Context, slug, url string) (Link, error) {
	rows, _ := s.db.Query(ctx, "INSERT INTO links (slug, url) VALUES ($1, $2) RETURNING "+columns, slug, url)
	l, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Link])
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "23505" { // unique_violation
		return Link{}, ErrConflict
	}
	if err != nil {
		return Link{}, fmt.Errorf("links: create %q: %w", slug, classify(err))
	}
	return l, nil
}

// Get returns the link for slug, or ErrNotFound.
func (s *Store) Get(ctx context.Context, slug string) (Link, error) {
	rows, _ := s.db.Query(ctx, "SELECT "+columns+" FROM links WHERE slug = $1", slug)
	return one(rows, "get", slug)
}

// List returns up to limit links with slugs after after, in slug order.
func (s *Store) List(ctx context.Context, after string, limit int) ([]Link, error) {
	rows, _ := s.db.Query(ctx, "SELECT "+columns+" FROM links WHERE slug > $1 ORDER BY slug LIMIT $2", after, limit)
	links, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Link])
	if err != nil {
		return nil, fmt.Errorf("links: list: %w", classify(err))
	}
	return links, nil
}

// Update sets the URL of slug's link, or returns ErrNotFound.
func (s *Store) Update(ctx context.Context, slug, url string) (Link, error) {
	rows, _ := s.db.Query(ctx, "UPDATE links SET url = $2, updated_at = now() WHERE slug = $1 RETURNING "+columns, slug, url)
	return one(rows, "update", slug)
}

// Delete deletes slug's link, or returns ErrNotFound.
func (s *Store) Delete(ctx context.Context, slug string) error {
	tag, err := s.db.Exec(ctx, "DELETE FROM links WHERE slug = $1", slug)
	if err != nil {
		return fmt.Errorf("links: delete %q: %w", slug, classify(err))
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

func one(rows pgx.Rows, op, slug string) (Link, error) {
	l, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Link])
	if errors.Is(err, pgx.ErrNoRows) {
		return Link{}, ErrNotFound
	}
	if err != nil {
		return Link{}, fmt.Errorf("links: %s %q: %w", op, slug, classify(err))
	}
	return l, nil
}

// classify returns err, wrapped so that it is also [ErrUnavailable] when it
// says that PostgreSQL cannot be reached.
func classify(err error) error {
	if unreachable(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// unreachable reports whether err says that PostgreSQL cannot be reached, or
// cannot serve for now: a connection that could not be made (refused, timed
// out, no such host; the pool's too), that broke or timed out, or an error of
// SQLSTATE class 08 (connection exception), 57P01 to 57P03 (the server is
// shutting down or starting up) or 53300 (too many connections). A request
// whose own context ended is no outage: the caller checks that first.
func unreachable(err error) bool {
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch {
		case strings.HasPrefix(pe.Code, "08"), pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", pe.Code == "53300":
			return true
		}
		return false
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, pgconn.ErrConnClosed) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
