package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/gok8s/gok8s/middleware"
	"github.com/gok8s/gok8s/probes"
)

func get(h http.Handler, target string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	body, _ := io.ReadAll(rec.Body)
	fmt.Printf("GET %s: %d\n%s\n", target, rec.Code, body)
}

func ExampleProbes() {
	ready, err := probes.NewReadiness([]probes.Checker{
		probes.Func("postgres/default", func(context.Context) error { return nil }),
		probes.Func("memcached/cache:11211", func(context.Context) error {
			return errors.New("dial tcp: connection refused")
		}),
	})
	if err != nil {
		panic(err)
	}
	ready.MarkStarted()

	app := http.NewServeMux()
	app.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	})
	h := middleware.Probes(ready)(app)

	get(h, "/hello")
	get(h, "/livez")
	get(h, "/readyz")
	get(h, "/readyz?verbose&exclude=memcached")
	// Output:
	// GET /hello: 200
	// hello
	// GET /livez: 200
	// ok
	// GET /readyz: 503
	// Not ready
	//
	// GET /readyz?verbose&exclude=memcached: 200
	// [+]startup ok
	// [+]shutdown ok
	// [+]postgres/default ok
	// [+]memcached/cache:11211 excluded with memcached: ok
	// readyz check passed
}

func ExampleReadinessHandler() {
	ready, err := probes.NewReadiness([]probes.Checker{
		probes.Func("postgres/default", func(context.Context) error { return nil }),
	})
	if err != nil {
		panic(err)
	}
	ready.MarkStarted()

	mux := http.NewServeMux()
	mux.Handle("GET /livez", middleware.LivenessHandler())
	mux.Handle("GET /readyz", middleware.ReadinessHandler(ready))
	mux.Handle("GET /readyz/{check...}", middleware.ReadinessHandler(ready))

	get(mux, "/readyz/postgres?verbose")
	ready.MarkDraining()
	get(mux, "/readyz")
	// Output:
	// GET /readyz/postgres?verbose: 200
	// [+]postgres/default ok
	// readyz check passed
	//
	// GET /readyz: 503
	// Shutting down
}
