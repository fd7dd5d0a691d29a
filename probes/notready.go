package probes

import (
	"net/http"
	"strconv"
)

// NotReady is the error of a check, or of a whole [Readiness], that is not ready,
// with the response a probe request gets for it. It works with [errors.As] and
// wraps its cause, which is never written to the response.
type NotReady struct {
	// Content is the response body; "Not ready" when empty.
	Content string
	// Status is the response status; 503 (Service Unavailable) when zero.
	Status int
	// Err is the cause, for logs.
	Err error
}

// Error returns the content, followed by the cause when there is one.
func (e *NotReady) Error() string {
	if e.Err == nil {
		return "probes: " + e.Body()
	}
	return "probes: " + e.Body() + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *NotReady) Unwrap() error { return e.Err }

// Body returns the response body: Content, or "Not ready" when it is empty.
func (e *NotReady) Body() string {
	if e.Content == "" {
		return "Not ready"
	}
	return e.Content
}

// StatusCode returns the response status: Status, or 503 when it is zero.
func (e *NotReady) StatusCode() int {
	if e.Status == 0 {
		return http.StatusServiceUnavailable
	}
	return e.Status
}

// ServeHTTP writes e as a response: [NotReady.StatusCode], a text/plain body of
// [NotReady.Body] and a newline, Cache-Control: no-store and
// X-Content-Type-Options: nosniff. It never writes the cause.
func (e *NotReady) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := e.Body() + "\n"
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.StatusCode())
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body))
	}
}
