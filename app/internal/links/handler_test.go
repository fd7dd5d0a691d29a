package links

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

const created = `"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"`

func TestHandler(t *testing.T) {
	repo := newMemRepo()
	var logs bytes.Buffer
	h := http.MaxBytesHandler(NewHandler(repo, slog.New(slog.NewTextHandler(&logs, nil))), 256)
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
		{"create unknown field", "POST", "/api/links", `{"url":"https://go.dev","owner":"x"}`, "", 400, `{"error":"body is not a valid link request: json: unknown field \"owner\""}` + "\n", ""},
		{"create malformed", "POST", "/api/links", `{"url":`, "", 400, `^\{"error":"body is not a valid link request: `, ""},
		{"create wrong type", "POST", "/api/links", `{"url":1}`, "", 400, `{"error":"body is not a valid link request: field \"url\" has the wrong type"}` + "\n", ""},
		{"create two values", "POST", "/api/links", `{"url":"https://go.dev"} {}`, "", 400, `{"error":"body is not a valid link request: more than one JSON value"}` + "\n", ""},
		{"create empty body", "POST", "/api/links", ``, "", 400, `{"error":"body is not a valid link request: empty body"}` + "\n", ""},
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
		{"list bad limit", "GET", "/api/links?limit=101", "", "", 400, `{"error":"limit must be a whole number from 1 to 100"}` + "\n", ""},
		{"list limit zero", "GET", "/api/links?limit=0", "", "", 400, `{"error":"limit must be a whole number from 1 to 100"}` + "\n", ""},
		{"create generated slug", "POST", "/api/links", `{"url":"https://example.com"}`, "", 201, `^\{"slug":"[a-z2-7]{8}","url":"https://example.com",`, "*"},
		{"update", "PUT", "/api/links/go", `{"url":"https://go.dev/doc"}`, "", 200, `{"slug":"go","url":"https://go.dev/doc",` + created + `}` + "\n", ""},
		{"update slug differs", "PUT", "/api/links/go", `{"url":"https://go.dev","slug":"other"}`, "", 400, `{"error":"slug in the body differs from the path"}` + "\n", ""},
		{"update missing", "PUT", "/api/links/nope", `{"url":"https://go.dev"}`, "", 404, `{"error":"not found"}` + "\n", ""},
		{"update bad url", "PUT", "/api/links/go", `{"url":"go.dev"}`, "", 400, `{"error":"url must begin with http:// or https://"}` + "\n", ""},
		{"delete", "DELETE", "/api/links/go", "", "", 204, "", ""},
		{"delete again", "DELETE", "/api/links/go", "", "", 404, `{"error":"not found"}` + "\n", ""},
		{"get deleted", "GET", "/api/links/go", "", "", 404, `{"error":"not found"}` + "\n", ""},
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
	h := NewHandler(repo, slog.New(slog.NewTextHandler(&logs, nil)))
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
	h := http.MaxBytesHandler(NewHandler(newMemRepo(), slog.New(slog.DiscardHandler)), 4096)
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
