package links

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

const created = `"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"`

func TestHandler(t *testing.T) {
	repo := newMemRepo()
	var logs bytes.Buffer
	h := http.MaxBytesHandler(NewHandler(NewService(repo, slog.New(slog.NewTextHandler(&logs, nil)))), 256)
	long := `{"url":"https://example.com/` + strings.Repeat("x", 300) + `"}`

	steps := []struct {
		name     string
		method   string
		target   string
		body     string
		ctype    string
		status   int
		want     string // exact body, or a regexp when it begins with ^
		location string
	}{
		{"create", "POST", "/api/links", `{"url":"https://go.dev","slug":"go"}`, "application/json", 201, `{"slug":"go","url":"https://go.dev",` + created + `}` + "\n", "/api/links/go"},
		{"create charset", "POST", "/api/links", `{"url":"https://pkg.go.dev","slug":"pkg"}`, "application/json; charset=utf-8", 201, `{"slug":"pkg","url":"https://pkg.go.dev",` + created + `}` + "\n", "/api/links/pkg"},
		{"create taken", "POST", "/api/links", `{"url":"https://go.dev","slug":"go"}`, "application/json", 409, `{"error":"slug already exists"}` + "\n", ""},
		{"create bad url", "POST", "/api/links", `{"url":"javascript:alert(1)"}`, "", 400, `{"error":"url must begin with http:// or https://"}` + "\n", ""},
		{"create no host", "POST", "/api/links", `{"url":"https://"}`, "", 400, `{"error":"url has no host"}` + "\n", ""},
		{"create empty url", "POST", "/api/links", `{}`, "", 400, `{"error":"url is empty"}` + "\n", ""},
		{"create bad slug", "POST", "/api/links", `{"url":"https://go.dev","slug":"a b"}`, "", 400, `{"error":"slug may hold only letters, digits, '-' and '_'"}` + "\n", ""},
		{"create reserved slug", "POST", "/api/links", `{"url":"https://go.dev","slug":"readyz"}`, "", 400, `{"error":"slug \"readyz\" is reserved"}` + "\n", ""},
		{"create unknown field", "POST", "/api/links", `{"url":"https://go.dev","owner":"x"}`, "", 400, `{"error":"body is not a valid link request: unknown field \"owner\""}` + "\n", ""},
		{"create malformed", "POST", "/api/links", `{"url":`, "", 400, `^\{"error":"body is not a valid link request: `, ""},
		{"create wrong type", "POST", "/api/links", `{"url":1}`, "", 400, `{"error":"body is not a valid link request: field \"url\" has the wrong type"}` + "\n", ""},
		{"create two values", "POST", "/api/links", `{"url":"https://go.dev"} {}`, "", 400, `{"error":"body is not a valid link request: data after the JSON value"}` + "\n", ""},
		{"create empty body", "POST", "/api/links", ``, "", 400, `{"error":"body is not a valid link request: empty body"}` + "\n", ""},
		{"create trailing brackets", "POST", "/api/links", `{"url":"https://a.example","slug":"t1"}}}]]`, "", 400, `{"error":"body is not a valid link request: data after the JSON value"}` + "\n", ""},
		{"create trailing garbage", "POST", "/api/links", `{"url":"https://a.example","slug":"t1"}x`, "", 400, `{"error":"body is not a valid link request: data after the JSON value"}` + "\n", ""},
		{"create trailing spaces past the limit", "POST", "/api/links", `{"url":"https://a.example","slug":"t1"}` + strings.Repeat(" ", 300) + "x", "", 413, `{"error":"body too large"}` + "\n", ""},
		{"create long unknown field", "POST", "/api/links", `{"` + strings.Repeat("f", 100) + `":1}`, "", 400, `{"error":"body is not a valid link request: unknown field"}` + "\n", ""},
		{"create form", "POST", "/api/links", `url=x`, "application/x-www-form-urlencoded", 415, `{"error":"body must be application/json"}` + "\n", ""},
		{"create too large", "POST", "/api/links", long, "", 413, `{"error":"body too large"}` + "\n", ""},
		{"get", "GET", "/api/links/go", "", "", 200, `{"slug":"go","url":"https://go.dev",` + created + `}` + "\n", ""},
		{"get missing", "GET", "/api/links/nope", "", "", 404, `{"error":"not found"}` + "\n", ""},
		{"redirect", "GET", "/go", "", "", 302, `^<a href="https://go.dev">Found</a>`, "https://go.dev"},
		{"redirect missing", "GET", "/nope", "", "", 404, `{"error":"not found"}` + "\n", ""},
		{"redirect invalid slug", "GET", "/a.b", "", "", 404, `{"error":"not found"}` + "\n", ""},
		{"list page 1", "GET", "/api/links?limit=1", "", "", 200, `{"links":[{"slug":"go","url":"https://go.dev",` + created + `}],"next":"go"}` + "\n", ""},
		{"list after", "GET", "/api/links?after=go&limit=5", "", "", 200, `{"links":[{"slug":"pkg","url":"https://pkg.go.dev",` + created + `}]}` + "\n", ""},
		{"list end", "GET", "/api/links?after=pkg", "", "", 200, `{"links":[]}` + "\n", ""},
		{"list bad cursor NUL", "GET", "/api/links?after=%00", "", "", 400, `{"error":"after must be a slug"}` + "\n", ""},
		{"list bad cursor UTF-8", "GET", "/api/links?after=%FF", "", "", 400, `{"error":"after must be a slug"}` + "\n", ""},
		{"list long cursor", "GET", "/api/links?after=" + strings.Repeat("a", 65), "", "", 400, `{"error":"after must be a slug"}` + "\n", ""},
		{"list bad limit", "GET", "/api/links?limit=101", "", "", 400, `{"error":"limit must be a whole number from 1 to 100"}` + "\n", ""},
		{"list limit zero", "GET", "/api/links?limit=0", "", "", 400, `{"error":"limit must be a whole number from 1 to 100"}` + "\n", ""},
		{"create generated slug", "POST", "/api/links", `{"url":"https://example.com"}`, "", 201, `^\{"slug":"[a-z2-7]{8}","url":"https://example.com",`, "*"},
		{"create trailing newline", "POST", "/api/links", `{"url":"https://a.example","slug":"t2"}` + "\n\t ", "", 201, `{"slug":"t2","url":"https://a.example",` + created + `}` + "\n", "/api/links/t2"},
		{"update", "PUT", "/api/links/go", `{"url":"https://go.dev/doc"}`, "", 200, `{"slug":"go","url":"https://go.dev/doc",` + created + `}` + "\n", ""},
		{"update slug differs", "PUT", "/api/links/go", `{"url":"https://go.dev","slug":"other"}`, "", 400, `{"error":"slug in the body differs from the path"}` + "\n", ""},
		{"update missing", "PUT", "/api/links/nope", `{"url":"https://go.dev"}`, "", 404, `{"error":"not found"}` + "\n", ""},
		{"update bad url", "PUT", "/api/links/go", `{"url":"go.dev"}`, "", 400, `{"error":"url must begin with http:// or https://"}` + "\n", ""},
		{"delete", "DELETE", "/api/links/go", "", "", 204, "", ""},
		{"delete again", "DELETE", "/api/links/go", "", "", 404, `{"error":"not found"}` + "\n", ""},
		{"get deleted", "GET", "/api/links/go", "", "", 404, `{"error":"not found"}` + "\n", ""},
		{"get invalid UTF-8", "GET", "/api/links/%FF", "", "", 404, `{"error":"not found"}` + "\n", ""},
		{"get NUL", "GET", "/api/links/a%00b", "", "", 404, `{"error":"not found"}` + "\n", ""},
		{"get space", "GET", "/api/links/a%20b", "", "", 404, `{"error":"not found"}` + "\n", ""},
		{"get too long", "GET", "/api/links/" + strings.Repeat("a", 250), "", "", 404, `{"error":"not found"}` + "\n", ""},
		{"update invalid UTF-8", "PUT", "/api/links/%FF", `{"url":"https://go.dev"}`, "", 404, `{"error":"not found"}` + "\n", ""},
		{"delete invalid UTF-8", "DELETE", "/api/links/%FF", "", "", 404, `{"error":"not found"}` + "\n", ""},
		{"method not allowed", "PATCH", "/api/links/go", "", "", 405, `{"error":"method not allowed"}` + "\n", ""},
		{"method not allowed on list", "DELETE", "/api/links", "", "", 405, `{"error":"method not allowed"}` + "\n", ""},
		{"unknown path", "GET", "/api/nothing/here", "", "", 404, `{"error":"not found"}` + "\n", ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			req := httptest.NewRequest(s.method, s.target, strings.NewReader(s.body))
			if s.ctype != "" {
				req.Header.Set("Content-Type", s.ctype)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != s.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, s.status, body)
			}
			if strings.HasPrefix(s.want, "^") {
				if !regexp.MustCompile(s.want).Match(body) {
					t.Errorf("body %s does not match %s", body, s.want)
				}
			} else if string(body) != s.want {
				t.Errorf("body %s\nwant %s", body, s.want)
			}
			if got := rec.Header().Get("Location"); s.location != "*" && got != s.location {
				t.Errorf("Location %q, want %q", got, s.location)
			}
		})
	}
}

func TestHandlerHidesErrors(t *testing.T) {
	repo := newMemRepo()
	repo.fail = errBroken
	var logs bytes.Buffer
	h := NewHandler(NewService(repo, slog.New(slog.NewTextHandler(&logs, nil))))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/links/x", nil))
	if rec.Code != 500 || rec.Body.String() != `{"error":"internal error"}`+"\n" {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "links: request failed") {
		t.Errorf("error not logged: %s", logs.String())
	}
}

// FuzzCreate: no body panics the handler or gets an unexpected status.
func FuzzCreate(f *testing.F) {
	for _, seed := range []string{`{"url":"https://go.dev","slug":"go"}`, `{"url":"http://[::1]:80/x"}`, `{"slug":"`, `[]`, `null`, `{"url":"https://a","slug":"\u0000"}`} {
		f.Add(seed)
	}
	h := http.MaxBytesHandler(NewHandler(NewService(newMemRepo(), slog.New(slog.DiscardHandler))), 4096)
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/links", strings.NewReader(body)))
		switch rec.Code {
		case 201, 400, 409, 413:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}

// checkingRepo fails the test when a slug or cursor that cannot exist reaches it.
type checkingRepo struct {
	*memRepo
	t *testing.T
}

func (c checkingRepo) check(s string) {
	if s != "" && ValidateSlug(s) != nil && !reserved(s) {
		c.t.Errorf("%q reached the repository", s)
	}
}

func (c checkingRepo) Get(ctx context.Context, slug string) (Link, error) {
	c.check(slug)
	return c.memRepo.Get(ctx, slug)
}

func (c checkingRepo) List(ctx context.Context, after string, limit int) ([]Link, error) {
	c.check(after)
	return c.memRepo.List(ctx, after, limit)
}

func (c checkingRepo) Update(ctx context.Context, slug, url string) (Link, error) {
	c.check(slug)
	return c.memRepo.Update(ctx, slug, url)
}

func (c checkingRepo) Delete(ctx context.Context, slug string) error {
	c.check(slug)
	return c.memRepo.Delete(ctx, slug)
}

// TestHandlerValidatesBeforeRepository: path slugs and cursors that cannot
// exist never reach the repository, and nothing is logged for them.
func TestHandlerValidatesBeforeRepository(t *testing.T) {
	var logs bytes.Buffer
	h := NewHandler(NewService(checkingRepo{newMemRepo(), t}, slog.New(slog.NewTextHandler(&logs, nil))))
	for _, target := range []string{"/api/links/%FF", "/api/links/a%00", "/api/links/a%20b", "/api/links/" + strings.Repeat("x", 250), "/%FF", "/api/links?after=%00", "/api/links?after=%FF"} {
		for _, method := range []string{"GET", "PUT", "DELETE"} {
			if strings.Contains(target, "?") && method != "GET" {
				continue
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(`{"url":"https://go.dev"}`)))
			if rec.Code != 404 && rec.Code != 400 && rec.Code != 405 {
				t.Errorf("%s %s: %d %s", method, target, rec.Code, rec.Body)
			}
		}
	}
	if logs.Len() > 0 {
		t.Errorf("client errors were logged:\n%s", logs.String())
	}
}

// timeoutReader is a request body whose read times out, as a connection past
// its read deadline does.
type timeoutReader struct{}

func (timeoutReader) Read([]byte) (int, error) {
	return 0, timeoutErr
}

var timeoutErr = &net.OpError{Op: "read", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8080}, Err: os.ErrDeadlineExceeded}

// errReader is a body whose read fails with err after giving prefix.
type errReader struct {
	prefix io.Reader
	err    error
}

func (e errReader) Read(p []byte) (int, error) {
	if n, err := e.prefix.Read(p); err == nil {
		return n, nil
	}
	return 0, e.err
}

// TestHandlerBodyErrors: a body read timeout is 408, and no error message
// quotes the request or the server's addresses.
func TestHandlerBodyErrors(t *testing.T) {
	h := http.MaxBytesHandler(NewHandler(NewService(newMemRepo(), slog.New(slog.DiscardHandler))), 1<<20)
	tests := []struct {
		name   string
		body   io.Reader
		status int
		want   string
	}{
		{"timeout", timeoutReader{}, 408, `{"error":"body read timed out"}` + "\n"},
		{"timeout after a value", errReader{strings.NewReader(`{"url":"https://go.dev"}`), timeoutErr}, 408, `{"error":"body read timed out"}` + "\n"},
		{"broken connection", errReader{strings.NewReader(`{"url":`), errors.New("read tcp 10.1.2.3:8080->10.9.9.9:5555: connection reset by peer")}, 400, `{"error":"body could not be read"}` + "\n"},
		{"huge unknown field", strings.NewReader(`{"` + strings.Repeat("u", 900<<10) + `":1}`), 400, `{"error":"body is not a valid link request: unknown field"}` + "\n"},
		{"huge bad string", strings.NewReader(`{"url":"` + strings.Repeat("\\q", 1000) + `"}`), 400, `{"error":"body is not a valid link request: malformed JSON at byte 10"}` + "\n"},
		{"object for a string", strings.NewReader(`{"url":{"` + strings.Repeat("k", 1000) + `":1}}`), 400, `{"error":"body is not a valid link request: field \"url\" has the wrong type"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/links", tt.body))
			if rec.Code != tt.status || rec.Body.String() != tt.want {
				t.Errorf("got %d %.300s\nwant %d %s", rec.Code, rec.Body, tt.status, tt.want)
			}
		})
	}
}

// TestHandlerLogsOutageOnce: during a repository outage the first failure of
// a kind is logged at ERROR and the rest are counted in one summary line per
// interval; every request still gets its 500.
func TestHandlerLogsOutageOnce(t *testing.T) {
	repo := newMemRepo()
	repo.fail = errBroken
	var logs lockedBuffer
	h := NewHandler(NewService(repo, slog.New(slog.NewTextHandler(&logs, nil))))
	h.svc.errors.every = time.Second // long enough that a stalled machine does not end an interval mid-outage
	const requests = 1000
	for range requests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/links/x", nil))
		if rec.Code != 500 {
			t.Fatalf("status %d", rec.Code)
		}
	}
	counted := func() int { // the failures the summary lines count
		n := 0
		for _, m := range regexp.MustCompile(`more requests failed.* count=(\d+)`).FindAllStringSubmatch(logs.String(), -1) {
			c, _ := strconv.Atoi(m[1])
			n += c
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); counted() < requests-1 && time.Now().Before(deadline); {
		runtime.Gosched()
	}
	out := logs.String()
	lines := strings.Count(out, "\n")
	t.Logf("%d requests failed: %d log lines", requests, lines)
	if n := strings.Count(out, "level=ERROR"); n != 1 {
		t.Errorf("%d ERROR lines, want 1:\n%s", n, out)
	}
	if n := counted(); n != requests-1 {
		t.Errorf("the summaries count %d failures, want %d:\n%s", n, requests-1, out)
	}
	if strings.Contains(out, "hunter2") && strings.Count(out, "hunter2") > 1 {
		t.Errorf("the error text is repeated per request:\n%s", out)
	}
}

// TestHandlerUnavailable: a repository that cannot be reached is 503 with
// Retry-After and a JSON error that says so, on every route that reads or
// writes it, logged at WARN once, never at ERROR and never in a body.
func TestHandlerUnavailable(t *testing.T) {
	down := fmt.Errorf("links: get %q: %w", "x", fmt.Errorf("%w: %w", ErrUnavailable, errBroken))
	tests := []struct {
		name       string
		opts       []HandlerOption
		retryAfter string
	}{
		{"default", nil, "5"},
		{"configured", []HandlerOption{WithRetryAfter(1500 * time.Millisecond)}, "2"},
		{"below a second", []HandlerOption{WithRetryAfter(time.Millisecond)}, "1"},
		{"zero", []HandlerOption{WithRetryAfter(0)}, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := newMemRepo()
			repo.fail = down
			var logs lockedBuffer
			h := NewHandler(NewService(repo, slog.New(slog.NewTextHandler(&logs, nil))), tt.opts...)
			for _, req := range []struct{ method, target, body string }{
				{"GET", "/api/links/x", ""}, {"GET", "/x", ""}, {"GET", "/api/links", ""},
				{"POST", "/api/links", `{"url":"https://go.dev","slug":"go"}`}, {"POST", "/api/links", `{"url":"https://go.dev"}`},
				{"PUT", "/api/links/x", `{"url":"https://go.dev"}`}, {"DELETE", "/api/links/x", ""},
			} {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(req.method, req.target, strings.NewReader(req.body)))
				if rec.Code != 503 || rec.Body.String() != `{"error":"store unavailable"}`+"\n" || rec.Header().Get("Retry-After") != tt.retryAfter {
					t.Errorf("%s %s: %d Retry-After %q %s; want 503 Retry-After %q {\"error\":\"store unavailable\"}",
						req.method, req.target, rec.Code, rec.Header().Get("Retry-After"), rec.Body, tt.retryAfter)
				}
			}
			out := logs.String()
			if strings.Contains(out, "level=ERROR") || strings.Count(out, "level=WARN") != 1 ||
				!strings.Contains(out, `msg="links: store unavailable"`) || !strings.Contains(out, `kind="unavailable: other"`) {
				t.Errorf("want one WARN line for the outage and no ERROR:\n%s", out)
			}
		})
	}
	// A repository error that is not an outage stays 500, without Retry-After.
	repo := newMemRepo()
	repo.fail = errBroken
	rec := httptest.NewRecorder()
	NewHandler(NewService(repo, slog.New(slog.DiscardHandler))).ServeHTTP(rec, httptest.NewRequest("GET", "/api/links/x", nil))
	if rec.Code != 500 || rec.Header().Get("Retry-After") != "" {
		t.Errorf("internal error: %d Retry-After %q, want 500 and none", rec.Code, rec.Header().Get("Retry-After"))
	}
}
