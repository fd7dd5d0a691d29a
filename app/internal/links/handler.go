package links

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Handler serves the links API and the redirects over HTTP, from a [Service].
type Handler struct {
	svc        *Service
	mux        *http.ServeMux
	retryAfter string // Retry-After of a 503 for an unavailable store, in seconds
}

// DefaultRetryAfter is the Retry-After of a 503 answered while the repository
// is unavailable, unless [WithRetryAfter] sets another.
const DefaultRetryAfter = 5 * time.Second

// A HandlerOption changes a default of [NewHandler].
type HandlerOption func(*Handler)

// WithRetryAfter sets the Retry-After header of the 503 answered while the
// repository is unavailable to d, rounded up to whole seconds, at least 1
// (default [DefaultRetryAfter]).
func WithRetryAfter(d time.Duration) HandlerOption {
	return func(h *Handler) { h.retryAfter = retryAfter(d) }
}

func retryAfter(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}

// NewHandler returns a Handler for svc. Routes are listed in the package doc.
func NewHandler(svc *Service, opts ...HandlerOption) *Handler {
	h := &Handler{svc: svc, mux: http.NewServeMux(), retryAfter: retryAfter(DefaultRetryAfter)}
	for _, opt := range opts {
		opt(h)
	}
	h.mux.HandleFunc("GET /api/links", h.list)
	h.mux.HandleFunc("GET /api/links/{slug}", h.get)
	h.mux.HandleFunc("GET /{slug}", h.redirect)
	// The writes. There is no authentication: anyone who reaches the service
	// can repoint a slug. A fork that needs it wraps these three handlers here,
	// and only here (see README, "The reference app"), and does the same for
	// the gRPC API's writes (GRPCServer).
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
	l, err := h.svc.Create(r.Context(), req.Slug, req.URL)
	if err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("Location", "/api/links/"+l.Slug)
	writeJSON(w, http.StatusCreated, l)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := DefaultPageSize
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 { // 0 is the Service's default: here, an absent limit
			h.fail(w, invalid("limit", "must be a whole number from 1 to 100"))
			return
		}
		limit = n
	}
	page, err := h.svc.List(r.Context(), q.Get("after"), limit)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Links []Link `json:"links"`
		Next  string `json:"next,omitempty"`
	}{page.Links, page.Next})
}

// pathSlug returns the path's slug, or answers 404 and returns false for one
// that no link can have: a path is an address, not a field to correct.
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
	l, err := h.svc.Get(r.Context(), slug)
	if err != nil {
		h.fail(w, err)
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
	l, err := h.svc.Update(r.Context(), slug, req.URL)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	slug, ok := pathSlug(w, r)
	if !ok {
		return
	}
	if err := h.svc.Delete(r.Context(), slug); err != nil {
		h.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) redirect(w http.ResponseWriter, r *http.Request) {
	slug, ok := pathSlug(w, r)
	if !ok {
		return
	}
	l, err := h.svc.Get(r.Context(), slug)
	if err != nil {
		h.fail(w, err)
		return
	}
	http.Redirect(w, r, l.URL, http.StatusFound)
}

// httpStatus maps each [Code] to its HTTP status.
var httpStatus = [...]int{
	Internal:    http.StatusInternalServerError,
	Invalid:     http.StatusBadRequest,
	NotFound:    http.StatusNotFound,
	Conflict:    http.StatusConflict,
	Unavailable: http.StatusServiceUnavailable,
	Canceled:    http.StatusServiceUnavailable,
}

// fail writes the response for a [Service] error: its status and its
// message, which quotes nothing from a driver; an unavailable store's 503
// carries Retry-After.
func (h *Handler) fail(w http.ResponseWriter, err error) {
	e, ok := errors.AsType[*Error](err)
	if !ok {
		e = &Error{Code: Internal, Reason: "internal error"}
	}
	if e.Code == Unavailable {
		w.Header().Set("Retry-After", h.retryAfter)
	}
	writeError(w, httpStatus[e.Code], e.Error())
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
