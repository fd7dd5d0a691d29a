package links

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
)

// memRepo is an in-memory Repository for handler tests.
type memRepo struct {
	mu    sync.Mutex
	links map[string]Link
	gets  int
	fail  error // returned by every call when set
}

var _ Repository = (*memRepo)(nil)

func newMemRepo() *memRepo { return &memRepo{links: map[string]Link{}} }

var fixed = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (m *memRepo) Create(_ context.Context, slug, url string) (Link, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return Link{}, m.fail
	}
	if _, ok := m.links[slug]; ok {
		return Link{}, ErrConflict
	}
	l := Link{Slug: slug, URL: url, CreatedAt: fixed, UpdatedAt: fixed}
	m.links[slug] = l
	return l, nil
}

func (m *memRepo) Get(_ context.Context, slug string) (Link, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	if m.fail != nil {
		return Link{}, m.fail
	}
	l, ok := m.links[slug]
	if !ok {
		return Link{}, ErrNotFound
	}
	return l, nil
}

func (m *memRepo) List(_ context.Context, after string, limit int) ([]Link, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	var out []Link
	for _, l := range m.links {
		if l.Slug > after {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b Link) int { return strings.Compare(a.Slug, b.Slug) })
	return out[:min(limit, len(out))], nil
}

func (m *memRepo) Update(_ context.Context, slug, url string) (Link, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return Link{}, m.fail
	}
	l, ok := m.links[slug]
	if !ok {
		return Link{}, ErrNotFound
	}
	l.URL = url
	m.links[slug] = l
	return l, nil
}

func (m *memRepo) Delete(_ context.Context, slug string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if _, ok := m.links[slug]; !ok {
		return ErrNotFound
	}
	delete(m.links, slug)
	return nil
}

var errBroken = errors.New("conn closed: password=hunter2")
