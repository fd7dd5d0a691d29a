package debug_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"

	"github.com/gok8s/gok8s/app/internal/debug"
)

func ExampleHandler() {
	rec := httptest.NewRecorder()
	debug.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/runtime", nil))
	var rt debug.Runtime
	if err := json.NewDecoder(rec.Body).Decode(&rt); err != nil {
		panic(err)
	}
	fmt.Println(rec.Code, rt.Goroutines > 0, rt.TotalBytes > 0)
	// Output: 200 true true
}
