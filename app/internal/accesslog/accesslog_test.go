package accesslog

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequestID(t *testing.T) {
	tests := []struct {
		incoming string
		kept     bool
	}{
		{"abc-123_x.y", true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{"has space", false},
		{"new\nline", false},
		{"<script>", false},
	}
	for _, tt := range tests {
		var logs bytes.Buffer
		var seen string
		h := Handler(slog.New(slog.NewTextHandler(&logs, nil)), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = RequestID(r.Context())
			w.WriteHeader(http.StatusTeapot)
		}))
		req := httptest.NewRequest("GET", "/x", nil)
		req.Header.Set(Header, tt.incoming)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get(Header)
		switch {
		case got != seen || got == "":
			t.Errorf("%q: header %q, context %q", tt.incoming, got, seen)
		case tt.kept && got != tt.incoming, !tt.kept && got == tt.incoming:
			t.Errorf("%q: ID %q, kept = %v", tt.incoming, got, tt.kept)
		}
		if !strings.Contains(logs.String(), "status=418") || !strings.Contains(logs.String(), "request_id="+got) {
			t.Errorf("%q: log %q", tt.incoming, logs.String())
		}
	}
}
