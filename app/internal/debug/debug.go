// Package debug serves the process's runtime figures for operators and load
// tests, on a listener of its own (DEBUG_ADDR) that is never exposed with the API.
package debug

import (
	"encoding/json"
	"net/http"
	"runtime"
	"runtime/metrics"
)

// Runtime is the document Handler serves.
type Runtime struct {
	Goroutines     int    `json:"goroutines"`
	HeapAllocBytes uint64 `json:"heap_alloc_bytes"`
	TotalBytes     uint64 `json:"total_bytes"` // all memory the Go runtime has mapped
	GCCycles       uint64 `json:"gc_cycles"`
}

// Read returns the current runtime figures.
func Read() Runtime {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}
	metrics.Read(samples)
	value := func(s metrics.Sample) uint64 {
		if s.Value.Kind() == metrics.KindUint64 {
			return s.Value.Uint64()
		}
		return 0
	}
	return Runtime{
		Goroutines:     runtime.NumGoroutine(),
		HeapAllocBytes: value(samples[0]),
		TotalBytes:     value(samples[1]),
		GCCycles:       value(samples[2]),
	}
}

// Handler returns a [http.Handler] that answers GET /debug/runtime with [Read]
// as JSON, and 404 for anything else.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/runtime", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(Read())
	})
	return mux
}
