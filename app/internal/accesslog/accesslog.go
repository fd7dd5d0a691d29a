// Package accesslog gives each request an ID and logs it once it is answered.
//
// Mount it behind middleware.Probes, so that probe requests are answered before
// they get here and are not logged.
package accesslog

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"time"

	"github.com/gok8s/gok8s/app/internal/recorder"
)

// Header is the request and response header that carries the request ID.
const Header = "X-Request-Id"

type ctxKey struct{}

// RequestID returns the ID Handler gave the request with context ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// Handler returns a [http.Handler] that calls h with a request ID in the
// request's context and the X-Request-Id response header, then logs the request
// at INFO: method, path (without the query, which may hold secrets), status,
// response bytes, duration and ID. An incoming X-Request-Id of up to 64
// letters, digits, '-', '_' and '.' is kept; otherwise a random one is made.
func Handler(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(Header)
		if !valid(id) {
			id = rand.Text()
		}
		w.Header().Set(Header, id)
		rec := recorder.Wrap(w)
		ctx := context.WithValue(r.Context(), ctxKey{}, id)
		h.ServeHTTP(rec, r.WithContext(ctx))
		log.LogAttrs(ctx, slog.LevelInfo, "http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.Status()),
			slog.Int64("bytes", rec.Bytes()),
			slog.Duration("duration", time.Since(start)),
			slog.String("request_id", id),
		)
	})
}

func valid(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}
