package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gok8s/gok8s/e2e"
	"github.com/jackc/pgx/v5"
)

// Saturation settings (issue 12.2): a pool of 10 connections, 80 concurrent
// creates, each insert slowed to 1 s by a trigger, so that a request waits
// about 8 s for a connection; the check's timeout is 3 s. A check that took
// its connection from the pool would time out by seconds, while one with a
// connection of its own passes even when a loaded machine slows its ping
// past the default 1 s timeout (seen at load 45: one 503 of two probes).
const (
	saturationConns   = 10
	saturationClients = 80
	slowInsert        = time.Second
	saturationTimeout = 3 * time.Second // PROBE_TIMEOUT
	saturationFor     = 5 * time.Second // how long the load runs before the outage
)

// TestReadinessUnderSaturation: while requests hold every connection of the
// pool, /readyz stays 200 as long as the database answers, because the check
// pings over a connection of its own; it still turns 503 within the timeout
// when the database is stopped or paused, load or not.
func TestReadinessUnderSaturation(t *testing.T) {
	tests := []struct {
		name   string
		outage func(pg *e2e.Postgres, t *testing.T) (restore func(testing.TB))
	}{
		{"stopped", func(pg *e2e.Postgres, t *testing.T) func(testing.TB) { pg.Stop(t); return pg.Start }},
		{"paused", func(pg *e2e.Postgres, t *testing.T) func(testing.TB) { pg.Pause(t); return pg.Unpause }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startStack(t, fmt.Sprintf("DATABASE_MAX_CONNS=%d", saturationConns), "PROBE_TIMEOUT="+saturationTimeout.String())
			slowDown(t, s.pg.URL)

			ctx, stopLoad := context.WithCancel(t.Context())
			load := startLoad(ctx, s.app.url, saturationClients)
			probe := startProbing(ctx, s.app)

			// Saturated: creates queue for the pool, and /readyz keeps answering 200.
			deadline := time.Now().Add(saturationFor)
			probeConns := 0
			tick := time.NewTicker(500 * time.Millisecond)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				probeConns = max(probeConns, countProbeConns(t, s.pg.URL))
				select {
				case <-tick.C:
				case <-ctx.Done():
				}
			}
			tick.Stop()
			healthy := probe.snapshot()
			created, failed, p50 := load.snapshot()
			t.Logf("saturated for %s: %d creates (%d failed), median %s; /readyz %d of %d answers 200, slowest %s; probe connections %d",
				saturationFor, created, failed, p50.Round(time.Millisecond), healthy.ok, healthy.n, healthy.slowest.Round(time.Millisecond), probeConns)
			if healthy.n == 0 || healthy.ok != healthy.n {
				t.Errorf("/readyz under load: %d of %d answers 200: %v", healthy.ok, healthy.n, healthy.other)
			}
			if queued := 2 * slowInsert; created == 0 || p50 < queued {
				t.Errorf("the pool was not saturated: %d creates, median %s (want ≥ %s)", created, p50, queued)
			}
			if probeConns != 1 {
				t.Errorf("the check held %d connections at most, want exactly 1", probeConns)
			}

			// Outage under the same load: 503 within the TTL plus the timeout.
			restore := tt.outage(s.pg, t)
			start := time.Now()
			down := probe.waitFirst(t, 503, detectWait+saturationTimeout)
			t.Logf("postgres %s under load: /readyz 503 after %s, as the prober saw it (the app's bound %s)",
				tt.name, down.Sub(start).Round(time.Millisecond), probeTTL+saturationTimeout)
			stopLoad()
			load.wait()
			probe.wait()
			restore(t)
		})
	}
}

// slowDown makes every insert into links take slowInsert.
func slowDown(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, fmt.Sprintf(`
CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(%g); RETURN NEW; END $$;
CREATE TRIGGER slow_insert BEFORE INSERT ON links FOR EACH ROW EXECUTE FUNCTION slow_insert();`, slowInsert.Seconds()))
	if err != nil {
		t.Fatal(err)
	}
}

// countProbeConns returns how many connections the readiness checks hold.
func countProbeConns(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '%readiness'`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// load is clients sending POST /api/links one after another until ctx ends.
type load struct {
	wg              sync.WaitGroup
	created, failed atomic.Int64
	mu              sync.Mutex
	latencies       []time.Duration
}

func startLoad(ctx context.Context, base string, clients int) *load {
	l := &load{}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	for c := range clients {
		l.wg.Go(func() {
			for i := 0; ctx.Err() == nil && i < 10_000; i++ {
				body := fmt.Sprintf(`{"url":"https://go.dev/%d/%d","slug":"sat-%d-%d"}`, c, i, c, i)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/links", strings.NewReader(body))
				if err != nil {
					return
				}
				req.Header.Set("Content-Type", "application/json")
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						l.failed.Add(1)
					}
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					l.failed.Add(1)
					continue
				}
				l.created.Add(1)
				l.mu.Lock()
				l.latencies = append(l.latencies, time.Since(start))
				l.mu.Unlock()
			}
		})
	}
	return l
}

// snapshot returns the creates so far, the failures and the median latency.
func (l *load) snapshot() (created, failed int64, median time.Duration) {
	l.mu.Lock()
	lat := slices.Clone(l.latencies)
	l.mu.Unlock()
	slices.Sort(lat)
	if len(lat) > 0 {
		median = lat[len(lat)/2]
	}
	return l.created.Load(), l.failed.Load(), median
}

func (l *load) wait() { l.wg.Wait() }

// prober GETs /readyz every 100 ms until ctx ends and keeps the answers.
type prober struct {
	done chan struct{}
	mu   sync.Mutex
	log  []answer
}

type answer struct {
	at   time.Time
	code int
	took time.Duration
	body string
}

type probeStats struct {
	n, ok   int
	slowest time.Duration
	other   []string
}

func startProbing(ctx context.Context, a *app) *prober {
	p := &prober{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for range 2000 {
			code, body, took := a.tryGet(ctx, "/readyz")
			if ctx.Err() != nil {
				return
			}
			p.mu.Lock()
			p.log = append(p.log, answer{at: time.Now(), code: code, took: took, body: body})
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

func (p *prober) snapshot() probeStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s probeStats
	for _, a := range p.log {
		s.n++
		s.slowest = max(s.slowest, a.took)
		if a.code == 200 {
			s.ok++
		} else {
			s.other = append(s.other, fmt.Sprintf("%d %q after %s", a.code, a.body, a.took))
		}
	}
	return s
}

// waitFirst returns the time of the first answer with code, polling until limit.
func (p *prober) waitFirst(t *testing.T, code int, limit time.Duration) time.Time {
	t.Helper()
	since := time.Now()
	var at time.Time
	err := e2e.Poll(t.Context(), limit, func(context.Context) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, a := range p.log {
			if a.code == code && !a.at.Before(since) {
				at = a.at
				return nil
			}
		}
		return fmt.Errorf("no /readyz %d yet", code)
	})
	if err != nil {
		t.Fatalf("/readyz did not answer %d within %s: %v", code, limit, err)
	}
	return at
}

func (p *prober) wait() { <-p.done }
