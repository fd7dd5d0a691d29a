package recorder_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gok8s/gok8s/app/internal/recorder"
)

func ExampleWrap() {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("no such link\n"))
	})
	rec := recorder.Wrap(httptest.NewRecorder())
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	fmt.Println(rec.Status(), rec.Bytes())
	// Output: 404 13
}
