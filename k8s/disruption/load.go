package disruption

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// The operations of the mix, in the order [Start] cycles through them.
const (
	OpRedirect = "redirect" // GET /{slug}: 302
	OpGet      = "get"      // GET /api/links/{slug}: 200
	OpCreate   = "create"   // POST /api/links: 201
)

// Connection kinds: each carries half the rate.
const (
	KeepAlive = "keep-alive"
	NewConn   = "new-conn"
)

// A Failure is one request that failed: a transport error or a status the
// operation does not expect.
type Failure struct {
	At   time.Time
	Op   string
	Conn string
	Kind string // "timeout", "connection reset", "status 503 (not ready)", ...
}

// Config sets up a [Load].
type Config struct {
	BaseURL string        // the app, e.g. http://localhost:8080
	Rate    int           // requests per second, both connection kinds together
	Slugs   []string      // existing links the reads and redirects ask for
	Timeout time.Duration // bound on one request; 5s when zero
	// KeepAliveClients share the keep-alive half of the rate, each with its own
	// connection pool, so that keep-alive connections reach several pods; 8 when zero.
	KeepAliveClients int
}

// Load is a running load: see [Start].
type Load struct {
	cfg       Config
	attackers []*vegeta.Attacker
	done      sync.WaitGroup
	began     time.Time
	n         atomic.Uint64

	mu       sync.Mutex
	metrics  vegeta.Metrics
	byConn   map[string]int
	failures []Failure
	created  []string
}

// Start begins sending cfg.Rate requests per second to cfg.BaseURL until
// [Load.Stop]: redirects, reads and creates in turn, cfg.Rate/2 on keep-alive
// connections (spread over cfg.KeepAliveClients clients) and cfg.Rate/2 on a
// new connection each.
func Start(cfg Config) (*Load, error) {
	if cfg.Rate < 2 || len(cfg.Slugs) == 0 {
		return nil, errors.New("disruption: a load needs a rate of 2 or more and at least one slug")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.KeepAliveClients == 0 {
		cfg.KeepAliveClients = 8
	}
	l := &Load{cfg: cfg, began: time.Now(), byConn: map[string]int{}}
	conns := []string{NewConn}
	for range cfg.KeepAliveClients {
		conns = append(conns, KeepAlive)
	}
	for _, conn := range conns {
		rate := vegeta.Rate{Freq: cfg.Rate / 2, Per: time.Second}
		if conn == KeepAlive {
			rate.Per *= time.Duration(cfg.KeepAliveClients)
		}
		a := vegeta.NewAttacker(
			vegeta.KeepAlive(conn == KeepAlive),
			vegeta.Redirects(vegeta.NoFollow),
			vegeta.Timeout(cfg.Timeout),
			vegeta.Workers(4),
			vegeta.MaxWorkers(400),
			vegeta.Connections(64),
			vegeta.Proxy(func(*http.Request) (*url.URL, error) { return nil, nil }), // straight to the app
		)
		l.attackers = append(l.attackers, a)
		results := a.Attack(l.targeter(), rate, 0, conn)
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for r := range results {
				l.record(conn, r)
			}
		}()
	}
	return l, nil
}

// targeter returns the mix: redirect, get, create, redirect, ...
func (l *Load) targeter() vegeta.Targeter {
	return func(t *vegeta.Target) error {
		i := l.n.Add(1)
		slug := l.cfg.Slugs[int(i/3)%len(l.cfg.Slugs)]
		switch i % 3 {
		case 0:
			t.Method, t.URL = http.MethodGet, l.cfg.BaseURL+"/"+slug
		case 1:
			t.Method, t.URL = http.MethodGet, l.cfg.BaseURL+"/api/links/"+slug
		default:
			t.Method, t.URL = http.MethodPost, l.cfg.BaseURL+"/api/links"
			t.Body = fmt.Appendf(nil, `{"url":"https://example.com/load/%d"}`, i)
			t.Header = http.Header{"Content-Type": {"application/json"}}
		}
		return nil
	}
}

// op returns the operation of r and the status it expects.
func op(r *vegeta.Result) (string, int) {
	switch {
	case r.Method == http.MethodPost:
		return OpCreate, http.StatusCreated
	case strings.Contains(r.URL, "/api/links/"):
		return OpGet, http.StatusOK
	default:
		return OpRedirect, http.StatusFound
	}
}

func (l *Load) record(conn string, r *vegeta.Result) {
	name, want := op(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.metrics.Add(r)
	l.byConn[conn]++
	if r.Code == uint16(want) {
		if name == OpCreate {
			var link struct{ Slug string }
			if json.Unmarshal(r.Body, &link) == nil && link.Slug != "" {
				l.created = append(l.created, link.Slug)
			}
		}
		return
	}
	l.failures = append(l.failures, Failure{At: r.Timestamp, Op: name, Conn: conn, Kind: kind(r)})
}

// kind names what went wrong with r, in a few words that group alike failures.
func kind(r *vegeta.Result) string {
	if r.Code != 0 {
		var body struct{ Error string }
		if json.Unmarshal(r.Body, &body) == nil && body.Error != "" {
			return fmt.Sprintf("status %d (%.40s)", r.Code, body.Error)
		}
		return fmt.Sprintf("status %d", r.Code)
	}
	for _, k := range []struct{ match, name string }{
		{"Client.Timeout", "timeout"},
		{"deadline exceeded", "timeout"},
		{"i/o timeout", "timeout"},
		{"connection reset", "connection reset"},
		{"connection refused", "connection refused"},
		{"broken pipe", "broken pipe"},
		{"EOF", "EOF"},
		{"server closed idle connection", "closed idle connection"},
	} {
		if strings.Contains(r.Error, k.match) {
			return k.name
		}
	}
	msg := r.Error
	if _, after, ok := strings.Cut(msg, `": `); ok { // Get "url": error
		msg = after
	}
	if len(msg) > 60 {
		return msg[:60]
	}
	return msg
}

// Stop stops the load, waits for the requests in flight and returns what happened.
func (l *Load) Stop() Summary {
	for _, a := range l.attackers {
		a.Stop()
	}
	l.done.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.metrics.Close()
	return Summary{
		Began:    l.began,
		Duration: time.Since(l.began),
		Requests: int(l.metrics.Requests),
		ByConn:   maps.Clone(l.byConn),
		Failures: slices.Clone(l.failures),
		Created:  slices.Clone(l.created),
		P50:      l.metrics.Latencies.P50,
		P99:      l.metrics.Latencies.P99,
	}
}

// Summary is what a [Load] saw.
type Summary struct {
	Began    time.Time
	Duration time.Duration
	Requests int
	ByConn   map[string]int // requests per connection kind
	Failures []Failure
	Created  []string // slugs of the creates that got 201
	P50, P99 time.Duration
}

// ByKind returns the number of failures of each kind, with the connection kind
// (e.g. "new-conn connection reset").
func (s Summary) ByKind() map[string]int {
	m := map[string]int{}
	for _, f := range s.Failures {
		m[f.Conn+" "+f.Kind]++
	}
	return m
}

// Window returns the time from since to the first and to the last failure, or
// zeros without failures.
func (s Summary) Window(since time.Time) (first, last time.Duration) {
	if len(s.Failures) == 0 {
		return 0, 0
	}
	first, last = s.Failures[0].At.Sub(since), s.Failures[0].At.Sub(since)
	for _, f := range s.Failures {
		first, last = min(first, f.At.Sub(since)), max(last, f.At.Sub(since))
	}
	return first, last
}

// String prints the summary on one line, failures by kind.
func (s Summary) String() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d requests in %s (%s %d, %s %d), %d failed", s.Requests, s.Duration.Round(100*time.Millisecond),
		KeepAlive, s.ByConn[KeepAlive], NewConn, s.ByConn[NewConn], len(s.Failures))
	if byKind := s.ByKind(); len(byKind) > 0 {
		b.WriteString(" (")
		for i, k := range slices.Sorted(maps.Keys(byKind)) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s: %d", k, byKind[k])
		}
		first, last := s.Window(s.Began)
		fmt.Fprintf(&b, "; from +%.1fs to +%.1fs)", first.Seconds(), last.Seconds())
	}
	fmt.Fprintf(&b, ", p50 %s, p99 %s", s.P50.Round(100*time.Microsecond), s.P99.Round(100*time.Microsecond))
	return b.String()
}
