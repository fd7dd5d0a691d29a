package links

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// Handler serves the links API and the redirects.
type Handler struct {
	repo Repository
	log  *slog.Logger
	mux  *http.ServeMux
}

// NewHandler returns a Handler for repo. Routes are listed in the package doc.
func NewHandler(repo Repository, log *slog.Logger) *Handler {
	h := &Handler{repo: repo, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("POST /api/links", h.create)
	h.mux.HandleFunc("GET /api/links", h.list)
	h.mux.HandleFunc("GET /api/links/{slug}", h.get)
	h.mux.HandleFunc("PUT /api/links/{slug}", h.update)
	h.mux.HandleFunc("DELETE /api/links/{slug}", h.delete)
	h.mux.HandleFunc("GET /{slug}", h.redirect)
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

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	l, err := h.repo.Get(r.Context(), r.PathValue("slug"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	var req linkRequest
	if !decode(w, r, &req) {
		return
	}
	slug := r.PathValue("slug")
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
	if err := h.repo.Delete(r.Context(), r.PathValue("slug")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) redirect(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	if ValidateSlug(slug) != nil {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	l, err := h.repo.Get(r.Context(), slug)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	http.Redirect(w, r, l.URL, http.StatusFound)
}

// fail writes the response for a repository error; an unexpected one is logged
// and answered 500 without its text.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "not found")
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, "slug already exists")
	case r.Context().Err() != nil:
		writeError(w, http.StatusServiceUnavailable, "request cancelled")
	default:
		h.log.ErrorContext(r.Context(), "links: request failed", "method", r.Method, "path", r.URL.Path, "error", err.Error())
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

// decode reads a JSON request body into v, or writes a 4xx and returns false.
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
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		writeError(w, http.StatusRequestEntityTooLarge, "body too large")
		return false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "body is not a valid link request: "+jsonProblem(err))
		return false
	}
	return true
}

// jsonProblem describes a decoding error without echoing the body.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return "malformed JSON at byte " + strconv.FormatInt(syntax.Offset, 10)
	case errors.As(err, &typ):
		return "field " + strconv.Quote(typ.Field) + " has the wrong type"
	case errors.Is(err, io.EOF):
		return "empty body"
	}
	return err.Error()
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
