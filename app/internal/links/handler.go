package links

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Handler serves the links API and the redirects.
type Handler struct {
	repo   Repository
	log    *slog.Logger
	mux    *http.ServeMux
	errors *errorLog
}

// NewHandler returns a Handler for repo. Routes are listed in the package doc.
func NewHandler(repo Repository, log *slog.Logger) *Handler {
	h := &Handler{repo: repo, log: log, mux: http.NewServeMux(), errors: newErrorLog(log, 10*time.Second)}
	h.mux.HandleFunc("GET /api/links", h.list)
	h.mux.HandleFunc("GET /api/links/{slug}", h.get)
	h.mux.HandleFunc("GET /{slug}", h.redirect)
	// The writes. There is no authentication: anyone who reaches the service
	// can repoint a slug. A fork that needs it wraps these three handlers here,
	// and only here (see README, "The reference app").
	h.mux.HandleFunc("POST /api/links", h.create)
	h.mux.HandleFunc("PUT /api/links/{slug}", h.update)
	h.mux.HandleFunc("DELETE /api/links/{slug}", h.delete)
	h.mux.Handle("/api/links", methodNotAllowed("GET, HEAD, POST"))
	h.mux.Handle("/api/links/{slug}", methodNotAllowed("GET, HEAD, PUT, DELETE"))
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not found")
	})
	return h
}

// methodNotAllowed answers 405 with a JSON error and the Allow header.
func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	})
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// linkRequest is the body of a create or update.
type linkRequest struct {
	URL  string `json:"url"`
	Slug string `json:"slug,omitempty"`
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	var req linkRequest
	if !decode(w, r, &req) {
		return
	}
	if err := ValidateURL(req.URL); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	generated := req.Slug == ""
	if generated {
		req.Slug = newSlug()
	} else if err := ValidateSlug(req.Slug); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	l, err := h.repo.Create(r.Context(), req.Slug, req.URL)
	if errors.Is(err, ErrConflict) && generated {
		req.Slug = newSlug() // one retry: with 2^40 slugs a second collision is unlikely
		l, err = h.repo.Create(r.Context(), req.Slug, req.URL)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/links/"+l.Slug)
	writeJSON(w, http.StatusCreated, l)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 20
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			writeError(w, http.StatusBadRequest, "limit must be a whole number from 1 to 100")
			return
		}
		limit = n
	}
	after := q.Get("after")
	if after != "" && !slugPattern.MatchString(after) || len(after) > MaxSlugLength {
		writeError(w, http.StatusBadRequest, "after must be a slug")
		return
	}
	links, err := h.repo.List(r.Context(), after, limit+1)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page := struct {
		Links []Link `json:"links"`
		Next  string `json:"next,omitempty"`
	}{Links: links}
	if len(links) > limit {
		page.Links = links[:limit]
		page.Next = links[limit-1].Slug
	}
	if page.Links == nil {
		page.Links = []Link{}
	}
	writeJSON(w, http.StatusOK, page)
}

// pathSlug returns the path's slug, or answers 404 and returns false for one
// that no link can have.
func pathSlug(w http.ResponseWriter, r *http.Request) (string, bool) {
	slug := r.PathValue("slug")
	if ValidateSlug(slug) != nil {
		writeError(w, http.StatusNotFound, "not found")
		return "", false
	}
	return slug, true
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	slug, ok := pathSlug(w, r)
	if !ok {
		return
	}
	l, err := h.repo.Get(r.Context(), slug)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	slug, ok := pathSlug(w, r)
	if !ok {
		return
	}
	var req linkRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Slug != "" && req.Slug != slug {
		writeError(w, http.StatusBadRequest, "slug in the body differs from the path")
		return
	}
	if err := ValidateURL(req.URL); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	l, err := h.repo.Update(r.Context(), slug, req.URL)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	slug, ok := pathSlug(w, r)
	if !ok {
		return
	}
	if err := h.repo.Delete(r.Context(), slug); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) redirect(w http.ResponseWriter, r *http.Request) {
	slug, ok := pathSlug(w, r)
	if !ok {
		return
	}
	l, err := h.repo.Get(r.Context(), slug)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	http.Redirect(w, r, l.URL, http.StatusFound)
}

// fail writes the response for a repository error; an unexpected one is
// answered 500 without its text and logged, once per kind and interval (see
// errorLog).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "not found")
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, "slug already exists")
	case r.Context().Err() != nil:
		writeError(w, http.StatusServiceUnavailable, "request cancelled")
	default:
		h.errors.failed(r.Context(), r.Method, r.Pattern, err)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

// decode reads a JSON request body into v, or writes a 4xx and returns false.
// The body must hold one JSON value and nothing after it but white space;
// the body limit applies to all of it.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "body must be application/json")
			return false
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		err = onlySpace(io.MultiReader(dec.Buffered(), r.Body))
	}
	switch {
	case err == nil:
		return true
	case isMaxBytes(err):
		writeError(w, http.StatusRequestEntityTooLarge, "body too large")
	case errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err):
		writeError(w, http.StatusRequestTimeout, "body read timed out")
	default:
		if msg := jsonProblem(err); msg != "" {
			writeError(w, http.StatusBadRequest, "body is not a valid link request: "+msg)
		} else {
			writeError(w, http.StatusBadRequest, "body could not be read")
		}
	}
	return false
}

func isMaxBytes(err error) bool {
	_, ok := errors.AsType[*http.MaxBytesError](err)
	return ok
}

// errTrailing is the error for data after the body's JSON value.
var errTrailing = errors.New("data after the JSON value")

// onlySpace reads r to its end and returns errTrailing if it holds anything but
// JSON white space, or the read error.
func onlySpace(r io.Reader) error {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				return errTrailing
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// maxFieldName is the longest unknown field name an error message quotes.
const maxFieldName = 32

// jsonProblem describes a decoding error in a few words that quote nothing
// from the body but a short field name, or returns "" for a read error.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, errTrailing):
		return errTrailing.Error()
	case errors.As(err, &syntax):
		return "malformed JSON at byte " + strconv.FormatInt(syntax.Offset, 10)
	case errors.As(err, &typ):
		return "field " + strconv.Quote(typ.Field) + " has the wrong type"
	case errors.Is(err, io.EOF):
		return "empty body"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON value is cut short"
	}
	// encoding/json has no error type for these two; its text is stable.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if name, err := strconv.Unquote(name); err == nil && len(name) <= maxFieldName && slugPattern.MatchString(name) {
			return "unknown field " + strconv.Quote(name)
		}
		return "unknown field"
	}
	if strings.HasPrefix(err.Error(), "json: ") {
		return "not a JSON object of the expected form"
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// newSlug returns 8 random characters of lower-case base32 (40 bits).
func newSlug() string {
	return strings.ToLower(rand.Text()[:8])
}
