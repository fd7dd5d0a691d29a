package disruption

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	linksv1 "github.com/gok8s/gok8s/api/links/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// The RPCs of the gRPC mix, in the order [StartGRPC] cycles through them.
const (
	OpGetLink    = "GetLink"
	OpCreateLink = "CreateLink"
)

// GRPCConfig sets up a [GRPCLoad].
type GRPCConfig struct {
	Target string        // the app's gRPC Service, e.g. localhost:50051
	Rate   int           // RPCs per second, every connection together
	Slugs  []string      // existing links the reads ask for
	Conns  int           // client connections (grpc.ClientConn), each long-lived; 16 when zero
	Limit  time.Duration // deadline of one RPC; 5s when zero
}

// GRPCLoad is a running gRPC load: see [StartGRPC].
type GRPCLoad struct {
	cfg    GRPCConfig
	conns  []*grpc.ClientConn
	began  time.Time
	stop   chan struct{}
	paced  sync.WaitGroup // the pacer
	flight sync.WaitGroup // RPCs in flight

	mu        sync.Mutex
	latencies []time.Duration
	byOp      map[string]int
	failures  []Failure
	created   []string
}

// StartGRPC begins sending cfg.Rate RPCs per second to cfg.Target until
// [GRPCLoad.Stop]: GetLink, GetLink, CreateLink in turn, round robin over
// cfg.Conns connections. Each connection is one grpc.ClientConn that lives as
// long as the load; when the server ends its HTTP/2 connection
// (GRPC_MAX_CONNECTION_AGE, a drain) the ClientConn dials again through the
// Service, as a real client does. The pacing is open-loop: a slow answer does
// not delay the next call.
func StartGRPC(cfg GRPCConfig) (*GRPCLoad, error) {
	if cfg.Rate < 1 || len(cfg.Slugs) == 0 {
		return nil, errors.New("disruption: a gRPC load needs a rate of 1 or more and at least one slug")
	}
	if cfg.Conns == 0 {
		cfg.Conns = 16
	}
	if cfg.Limit == 0 {
		cfg.Limit = 5 * time.Second
	}
	l := &GRPCLoad{cfg: cfg, stop: make(chan struct{}), byOp: map[string]int{}}
	for range cfg.Conns {
		cc, err := grpc.NewClient("passthrough:///"+cfg.Target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			l.closeConns()
			return nil, err
		}
		cc.Connect()
		l.conns = append(l.conns, cc)
	}
	l.began = time.Now()
	l.paced.Add(1)
	go l.pace()
	return l, nil
}

func (l *GRPCLoad) closeConns() {
	for _, cc := range l.conns {
		_ = cc.Close()
	}
}

// pace starts the i-th RPC at began + i/Rate, until stop.
func (l *GRPCLoad) pace() {
	defer l.paced.Done()
	interval := time.Second / time.Duration(l.cfg.Rate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		case <-timer.C:
		}
		l.flight.Add(1)
		go l.call(i)
		timer.Reset(time.Until(l.began.Add(time.Duration(i+1) * interval)))
	}
}

// call sends the i-th RPC of the mix and records its outcome.
func (l *GRPCLoad) call(i int) {
	defer l.flight.Done()
	client := linksv1.NewLinkServiceClient(l.conns[i%len(l.conns)])
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Limit)
	defer cancel()
	op, start := OpGetLink, time.Now()
	var err error
	var slug string
	if i%3 == 2 {
		op = OpCreateLink
		var resp *linksv1.CreateLinkResponse
		resp, err = client.CreateLink(ctx, &linksv1.CreateLinkRequest{Url: fmt.Sprintf("https://example.com/grpc/%d", i)})
		slug = resp.GetLink().GetSlug()
	} else {
		_, err = client.GetLink(ctx, &linksv1.GetLinkRequest{Slug: l.cfg.Slugs[(i/3)%len(l.cfg.Slugs)]})
	}
	took := time.Since(start)

	l.mu.Lock()
	defer l.mu.Unlock()
	l.latencies = append(l.latencies, took)
	l.byOp[op]++
	if err != nil {
		l.failures = append(l.failures, Failure{At: start, Op: op, Conn: fmt.Sprintf("conn-%d", i%len(l.conns)), Kind: grpcKind(err)})
		return
	}
	if op == OpCreateLink && slug != "" {
		l.created = append(l.created, slug)
	}
}

// grpcKind names what went wrong: the status code and the message's start.
func grpcKind(err error) string {
	st := status.Convert(err)
	return fmt.Sprintf("%s (%.40s)", st.Code(), st.Message())
}

// Stop stops the load, waits for the RPCs in flight, closes the connections
// and returns what happened.
func (l *GRPCLoad) Stop() GRPCSummary {
	close(l.stop)
	l.paced.Wait()
	l.flight.Wait()
	l.closeConns()
	l.mu.Lock()
	defer l.mu.Unlock()
	lat := slices.Clone(l.latencies)
	slices.Sort(lat)
	return GRPCSummary{
		Began:    l.began,
		Duration: time.Since(l.began),
		Requests: len(lat),
		Conns:    len(l.conns),
		ByOp:     maps.Clone(l.byOp),
		Failures: slices.Clone(l.failures),
		Created:  slices.Clone(l.created),
		P50:      quantile(lat, 0.50),
		P99:      quantile(lat, 0.99),
	}
}

// quantile returns the q-quantile of sorted (nearest rank), 0 when empty.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// GRPCSummary is what a [GRPCLoad] saw.
type GRPCSummary struct {
	Began    time.Time
	Duration time.Duration
	Requests int
	Conns    int
	ByOp     map[string]int // RPCs per method
	Failures []Failure      // Conn names the client connection, Kind the status
	Created  []string       // slugs of the CreateLink calls that succeeded
	P50, P99 time.Duration
}

// ByKind returns the number of failures of each RPC and status.
func (s GRPCSummary) ByKind() map[string]int {
	m := map[string]int{}
	for _, f := range s.Failures {
		m[f.Op+" "+f.Kind]++
	}
	return m
}

// Window returns the time from since to the first and to the last failure, or
// zeros without failures.
func (s GRPCSummary) Window(since time.Time) (first, last time.Duration) {
	return Summary{Failures: s.Failures}.Window(since)
}

// String prints the summary on one line, failures by kind.
func (s GRPCSummary) String() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d RPCs in %s on %d connections (%s %d, %s %d), %d failed", s.Requests, s.Duration.Round(100*time.Millisecond),
		s.Conns, OpGetLink, s.ByOp[OpGetLink], OpCreateLink, s.ByOp[OpCreateLink], len(s.Failures))
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
