// Package recorder wraps an [http.ResponseWriter] to note what a handler
// answered: the status of the response and the size of its body. The access
// log and the HTTP metrics both read it, so they agree on every response.
package recorder

import "net/http"

// A ResponseWriter passes everything to the writer it wraps and notes the
// response's final status and the bytes of its body. Interim 1xx answers
// (100 Continue, 103 Early Hints) are not the response: a later status is.
// 101 Switching Protocols is final, as net/http treats it.
type ResponseWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

// Wrap returns a ResponseWriter around w.
func Wrap(w http.ResponseWriter) *ResponseWriter { return &ResponseWriter{ResponseWriter: w} }

// WriteHeader notes code, unless a final status was noted first or code is an
// interim 1xx, and passes it on.
func (r *ResponseWriter) WriteHeader(code int) {
	if r.status == 0 && (code < 100 || code > 199 || code == http.StatusSwitchingProtocols) {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write notes 200 if no final status was written, as net/http sends it, and
// counts the bytes the wrapped writer took.
func (r *ResponseWriter) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Status returns the response's status: 200 when the handler wrote nothing,
// as net/http answers then.
func (r *ResponseWriter) Status() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// Bytes returns the bytes of body written so far.
func (r *ResponseWriter) Bytes() int64 { return r.bytes }

// Unwrap returns the wrapped writer, for [http.ResponseController].
func (r *ResponseWriter) Unwrap() http.ResponseWriter { return r.ResponseWriter }
