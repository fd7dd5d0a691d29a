package links

import (
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// memRepo is an in-memory Repository for handler tests.
type memRepo struct {
	mu    sync.Mutex
	links map[string]Link
	gets  int
	fail  error // returned by every call when set
	// beforeWrite, when set, runs at the start of Create, Update and Delete,
	// before the change: while the write's transaction is open.
	beforeWrite func()
}

func (m *memRepo) getCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets
}

func (m *memRepo) hook() {
	m.mu.Lock()
	f := m.beforeWrite
	m.beforeWrite = nil // once
	m.mu.Unlock()
	if f != nil {
		f()
	}
}

var _ Repository = (*memRepo)(nil)

func newMemRepo() *memRepo { return &memRepo{links: map[string]Link{}} }

var fixed = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (m *memRepo) Create(_ context.Context, slug, url string) (Link, error) {
	m.hook()
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
	m.hook()
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
	m.hook()
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

// fakeMemcache is an in-memory memcached with its get, add, set and cas
// semantics, a clock the test moves, and hooks to interleave other calls,
// and to hold or fail calls.
type fakeMemcache struct {
	mu    sync.Mutex
	items map[string]fakeItem
	casID uint64
	now   time.Time
	ops   []string // the calls made, as "op key"

	// before, when set, runs before each call without the lock held.
	before func(op, key string)
	// fail, when set, returns an error for a call instead of making it.
	fail func(op string) error
	// failKey, when set, does the same by the call's key.
	failKey func(key string) error
	// stall makes each call wait this long first, and then fail with a timeout.
	stall time.Duration
}

type fakeItem struct {
	value   []byte
	cas     uint64
	expires time.Time
}

var _ client = (*fakeMemcache)(nil)

func newFakeMemcache() *fakeMemcache {
	return &fakeMemcache{items: map[string]fakeItem{}, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// fakeServer is the one server of a Cache on a fakeMemcache.
const fakeServer = "fake:11211"

// errFakeTimeout is what gomemcache returns when the server does not answer in time.
var errFakeTimeout error = &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}

// errFakeRefused is what gomemcache returns when nothing listens.
var errFakeRefused error = &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}

// advance moves the fake's clock by d.
func (f *fakeMemcache) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// value returns what the fake holds for key, or nil.
func (f *fakeMemcache) value(key string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	it, ok := f.items[key]
	if !ok || !f.now.Before(it.expires) {
		return nil
	}
	return it.value
}

func (f *fakeMemcache) opCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ops)
}

func (f *fakeMemcache) setFail(fail func(op string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

// enter runs the hooks of a call and returns an error to fail it with.
func (f *fakeMemcache) enter(op, key string) error {
	f.mu.Lock()
	f.ops = append(f.ops, op+" "+key)
	before, fail, failKey, stall := f.before, f.fail, f.failKey, f.stall
	f.mu.Unlock()
	if before != nil {
		before(op, key)
	}
	if stall > 0 {
		time.Sleep(stall) // a hung server: the caller must not wait for this
		return errFakeTimeout
	}
	if failKey != nil {
		if err := failKey(key); err != nil {
			return err
		}
	}
	if fail != nil {
		return fail(op)
	}
	return nil
}

func (f *fakeMemcache) setFailKey(fail func(key string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failKey = fail
}

// calls returns how many calls of op ("" for any) were made on key.
func (f *fakeMemcache) calls(op, key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.ops {
		o, k, _ := strings.Cut(c, " ")
		if k == key && (op == "" || o == op) {
			n++
		}
	}
	return n
}

// live returns key's item if it has not expired. f.mu must be held.
func (f *fakeMemcache) live(key string) (fakeItem, bool) {
	it, ok := f.items[key]
	if ok && !f.now.Before(it.expires) {
		delete(f.items, key)
		return it, false
	}
	return it, ok
}

func (f *fakeMemcache) store(item *memcache.Item) {
	f.casID++
	f.items[item.Key] = fakeItem{value: slices.Clone(item.Value), cas: f.casID, expires: f.now.Add(time.Duration(item.Expiration) * time.Second)}
}

func (f *fakeMemcache) Get(key string) (*memcache.Item, error) {
	if err := f.enter("get", key); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	it, ok := f.live(key)
	if !ok {
		return nil, memcache.ErrCacheMiss
	}
	return &memcache.Item{Key: key, Value: slices.Clone(it.value), CasID: it.cas}, nil
}

func (f *fakeMemcache) Add(item *memcache.Item) error {
	if err := f.enter("add", item.Key); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.live(item.Key); ok {
		return memcache.ErrNotStored
	}
	f.store(item)
	return nil
}

func (f *fakeMemcache) Set(item *memcache.Item) error {
	if err := f.enter("set", item.Key); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.store(item)
	return nil
}

func (f *fakeMemcache) Ping() error { return f.enter("version", "") }

func (f *fakeMemcache) CompareAndSwap(item *memcache.Item) error {
	if err := f.enter("cas", item.Key); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	it, ok := f.live(item.Key)
	switch {
	case !ok:
		return memcache.ErrNotStored
	case it.cas != item.CasID:
		return memcache.ErrCASConflict
	}
	f.store(item)
	return nil
}
