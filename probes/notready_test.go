package probes

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestNotReady(t *testing.T) {
	cause := errors.New("dial tcp: password=pw refused")
	tests := []struct {
		name       string
		nr         *NotReady
		method     string
		wantStatus int
		wantBody   string
		wantError  string
	}{
		{"defaults", &NotReady{}, http.MethodGet, 503, "Not ready\n", "probes: Not ready"},
		{"content and status", &NotReady{Content: "Migrating", Status: 500}, http.MethodGet, 500, "Migrating\n", "probes: Migrating"},
		{"cause stays out of the body", &NotReady{Err: cause}, http.MethodGet, 503, "Not ready\n", "probes: Not ready: " + cause.Error()},
		{"head", &NotReady{}, http.MethodHead, 503, "", "probes: Not ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.nr.ServeHTTP(rec, httptest.NewRequest(tt.method, "/readyz", nil))
			if rec.Code != tt.wantStatus || rec.Body.String() != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tt.wantStatus, tt.wantBody)
			}
			for k, v := range map[string]string{
				"Content-Type":           "text/plain; charset=utf-8",
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
				"Content-Length":         fmt.Sprint(len(tt.nr.Body()) + 1),
			} {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if got := tt.nr.Error(); got != tt.wantError {
				t.Errorf("Error() = %q, want %q", got, tt.wantError)
			}
		})
	}

	wrapped := fmt.Errorf("readyz: %w", &NotReady{Err: cause})
	nr, ok := errors.AsType[*NotReady](wrapped)
	if !ok || !errors.Is(nr.Err, cause) {
		t.Fatalf("errors.As found %v, %v", nr, ok)
	}
	if !errors.Is(wrapped, cause) {
		t.Error("NotReady does not unwrap to its cause")
	}
}
