package accesslog_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/gok8s/gok8s/app/internal/accesslog"
)

func ExampleHandler() {
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "duration" {
				return slog.Attr{} // vary from run to run
			}
			return a
		},
	}))
	h := accesslog.Handler(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "id "+accesslog.RequestID(r.Context()))
	}))
	req := httptest.NewRequest("GET", "/api/links?token=secret", nil)
	req.Header.Set(accesslog.Header, "req-42")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Body.String(), rec.Header().Get(accesslog.Header))
	// Output:
	// level=INFO msg="http request" method=GET path=/api/links status=200 bytes=9 request_id=req-42
	// id req-42 req-42
}
