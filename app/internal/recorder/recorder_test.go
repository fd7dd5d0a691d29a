package recorder_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gok8s/gok8s/app/internal/recorder"
)

// sink is a ResponseWriter that takes every status and byte, 1xx included,
// as net/http's does (httptest.ResponseRecorder takes a 1xx as final).
type sink struct{ h http.Header }

func (s *sink) Header() http.Header         { return s.h }
func (s *sink) Write(p []byte) (int, error) { return len(p), nil }
func (s *sink) WriteHeader(int)             {}

func TestResponseWriter(t *testing.T) {
	tests := []struct {
		name   string
		handle func(w http.ResponseWriter)
		status int
		bytes  int64
	}{
		{"nothing written", func(http.ResponseWriter) {}, 200, 0},
		{"body only", func(w http.ResponseWriter) { _, _ = w.Write([]byte("hello")) }, 200, 5},
		{"status then body", func(w http.ResponseWriter) { w.WriteHeader(404); _, _ = w.Write([]byte("no")) }, 404, 2},
		{"second status ignored", func(w http.ResponseWriter) { w.WriteHeader(201); w.WriteHeader(500) }, 201, 0},
		{"early hints, then the response", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte("x"))
		}, 201, 1},
		{"continue, then a body", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusContinue)
			_, _ = w.Write([]byte("ok"))
		}, 200, 2},
		{"switching protocols is final", func(w http.ResponseWriter) { w.WriteHeader(http.StatusSwitchingProtocols) }, 101, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := recorder.Wrap(&sink{h: http.Header{}})
			tt.handle(rec)
			if rec.Status() != tt.status || rec.Bytes() != tt.bytes {
				t.Errorf("Status %d, Bytes %d; want %d, %d", rec.Status(), rec.Bytes(), tt.status, tt.bytes)
			}
		})
	}
}

func TestUnwrap(t *testing.T) {
	inner := httptest.NewRecorder()
	if got := recorder.Wrap(inner).Unwrap(); got != inner {
		t.Errorf("Unwrap = %v, want the wrapped writer", got)
	}
}
