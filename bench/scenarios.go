package bench

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"time"
)

// HungResult is what requests to a readiness handler whose one check never
// returns came back with.
type HungResult struct {
	Requests   int
	Answered   int           // requests answered within the cap
	First      time.Duration // time to the first request's answer (the cap if none)
	Median     time.Duration // median time to an answer of the other requests (the cap if none)
	Status     int           // status of the first answered request, 0 if none
	LeftBehind int           // goroutines still running afterwards, beyond those before
}

// Hung sends requests GET readiness requests, one after another, to lib's
// handler with one check that never returns and ignores its context; each
// waits at most waitCap. The library is given timeout where it takes one.
func Hung(lib Lib, timeout, waitCap time.Duration, requests int) HungResult {
	block := make(chan struct{})
	defer close(block)
	before := settledGoroutines()
	h, path, stop := lib.Readiness([]Check{{Name: "db", Fn: func(context.Context) error { <-block; return nil }}}, Settings{Timeout: timeout})
	defer stop()

	res := HungResult{Requests: requests, First: waitCap, Median: waitCap}
	var rest []time.Duration
	for i := range requests {
		start := time.Now()
		done := make(chan int, 1)
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			done <- rec.Code
		}()
		var took time.Duration
		select {
		case code := <-done:
			took = time.Since(start)
			res.Answered++
			if res.Status == 0 {
				res.Status = code
			}
		case <-time.After(waitCap):
			took = waitCap
		}
		if i == 0 {
			res.First = took
		} else {
			rest = append(rest, took)
		}
	}
	if len(rest) > 0 {
		slices.Sort(rest)
		res.Median = rest[len(rest)/2]
	}
	res.LeftBehind = settledGoroutines() - before
	return res
}

// settledGoroutines returns the goroutine count once it has held for 100 ms
// (or after 2 s), so that goroutines on their way out are not counted.
func settledGoroutines() int {
	deadline := time.Now().Add(2 * time.Second)
	n := runtime.NumGoroutine()
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return n
		}
		n = m
	}
	return n
}

// SecretError is the failing check's error in the Leak scenario: what a
// database driver might say, with an address and a password in it.
const SecretError = "dial tcp 10.0.0.7:5432: connect: connection refused (password=hunter2)"

// LeakResult says whether a failing check's error text reached a response.
type LeakResult struct {
	Status       int  // status of the default readiness request
	DefaultLeaks bool // the default request's body holds the error text
	DetailLeaks  bool // the most detailed request's body holds it
}

// Leak asks lib's readiness, with one check "db" that fails with SecretError,
// once plainly and once for the most detail (Lib.Detail).
func Leak(lib Lib) LeakResult {
	h, path, stop := lib.Readiness([]Check{{Name: "db", Fn: func(context.Context) error { return errors.New(SecretError) }}}, Settings{Timeout: time.Second})
	defer stop()
	get := func(target string) (int, string) {
		// Libraries that check in the background need a moment for a first result.
		var code int
		var body string
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
			code, body = rec.Code, rec.Body.String()
			if code >= 500 && (strings.Contains(body, "db") || rec.Body.Len() == 0 || target == path) {
				break
			}
		}
		return code, body
	}
	leaks := func(body string) bool {
		return strings.Contains(body, "hunter2") || strings.Contains(body, "10.0.0.7") || strings.Contains(body, "refused")
	}
	status, body := get(path)
	_, detail := get(lib.Detail)
	return LeakResult{Status: status, DefaultLeaks: leaks(body), DetailLeaks: leaks(detail)}
}
