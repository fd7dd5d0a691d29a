package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gok8s/gok8s/middleware"
	"github.com/gok8s/gok8s/probes"
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

// Target is one server of the Throughput scenario: a handler, the path to ask,
// and whether it is served as app/main.go serves the app.
type Target struct {
	Name    string
	Handler http.Handler
	Path    string
	App     bool
}

// ServerTargets returns the targets of the Throughput scenario: a bare net/http
// handler writing "ok"; the same handler on a second server, so that the
// report shows how far two identical servers measure apart; that handler
// with the two headers every probe response carries (Cache-Control: no-store,
// X-Content-Type-Options: nosniff), the least a probe can cost through
// net/http; then gok8s's /livez and cached /readyz (two checks) through a
// server set up as the app's, with Probes in front of an API that probe paths
// never reach.
func ServerTargets() ([]Target, error) {
	body := []byte("ok")
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) })
	noStore, nosniff := []string{"no-store"}, []string{"nosniff"}
	headers := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Cache-Control"], h["X-Content-Type-Options"] = noStore, nosniff
		_, _ = w.Write(body)
	})
	ready, err := probes.NewReadiness([]probes.Checker{
		probes.Func("postgres/default", noopCheck),
		probes.Func("memcached/cache:11211", noopCheck),
	}, probes.WithTTL(time.Hour))
	if err != nil {
		return nil, err
	}
	ready.MarkStarted()
	app := middleware.Probes(ready)(http.NotFoundHandler())
	return []Target{
		{Name: "bare", Handler: bare, Path: "/"},
		{Name: "bare, second server", Handler: bare, Path: "/"},
		{Name: "bare + 2 headers", Handler: headers, Path: "/"},
		{Name: "livez", Handler: app, Path: "/livez", App: true},
		{Name: "readyz", Handler: app, Path: "/readyz", App: true},
	}, nil
}

func noopCheck(context.Context) error { return nil }

// NewServer returns the http.Server for t: the app's settings (app/main.go's
// header and idle timeouts, header limit and error log; its read and write
// timeouts bound API requests only) when t.App, net/http's defaults and a
// header timeout otherwise.
func NewServer(t Target) *http.Server {
	if !t.App {
		return &http.Server{Handler: t.Handler, ReadHeaderTimeout: 5 * time.Second}
	}
	return &http.Server{
		Handler:           t.Handler,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelWarn),
	}
}

// Throughput serves each target on its own loopback listener and, round after
// round, sends GETs from clients goroutines over keep-alive connections to one
// target at a time for d: the targets alternate, each round beginning with the
// next one, so that a change of the machine's load falls on all of them. It returns each target's requests/s,
// one value per round. Every answer must be 200.
func Throughput(targets []Target, rounds, clients int, d time.Duration) (map[string][]float64, error) {
	urls := make([]string, len(targets))
	for i, t := range targets {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		srv := NewServer(t)
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		urls[i] = "http://" + ln.Addr().String() + t.Path
	}
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	out := map[string][]float64{}
	for round := range rounds {
		for k := range targets {
			i := (round + k) % len(targets) // each round begins with the next target
			t := targets[i]
			var n atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			start := time.Now()
			end := start.Add(d)
			for range clients {
				wg.Go(func() {
					for time.Now().Before(end) {
						if err := getOK(client, urls[i]); err != nil {
							failed.Store(err)
							return
						}
						n.Add(1)
					}
				})
			}
			wg.Wait()
			if err, ok := failed.Load().(error); ok {
				return nil, err
			}
			out[t.Name] = append(out[t.Name], float64(n.Load())/time.Since(start).Seconds())
		}
	}
	return out, nil
}

// getOK GETs url with client, reads the whole body, and returns an error
// unless the answer is 200.
func getOK(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return nil
}
