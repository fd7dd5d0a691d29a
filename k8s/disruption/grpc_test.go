//go:build kind

package disruption_test

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gok8s/gok8s/k8s/disruption"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// linksService is the gRPC service the load calls, as grpc_server_handled_total labels it.
const linksService = "links.v1.LinkService"

// startGRPC starts the gRPC load of a scenario: GRPC_LOAD_RATE (120) RPCs/s
// on GRPC_LOAD_CONNS (16) long-lived connections through the app's gRPC
// NodePort (GRPC_TARGET, localhost:50051), beside the HTTP load.
func (k *kind) startGRPC() *disruption.GRPCLoad {
	k.t.Helper()
	rate, err1 := strconv.Atoi(env("GRPC_LOAD_RATE", "120"))
	conns, err2 := strconv.Atoi(env("GRPC_LOAD_CONNS", "16"))
	if err1 != nil || err2 != nil {
		k.t.Fatalf("GRPC_LOAD_RATE, GRPC_LOAD_CONNS: %v %v", err1, err2)
	}
	l, err := disruption.StartGRPC(disruption.GRPCConfig{Target: env("GRPC_TARGET", "localhost:50051"), Rate: rate, Conns: conns, Slugs: k.slugs})
	if err != nil {
		k.t.Fatal(err)
	}
	return l
}

// logGRPC prints what the gRPC load of scenario name saw.
func (k *kind) logGRPC(name string, s disruption.GRPCSummary, began time.Time) {
	k.t.Logf("%s: gRPC: %s (%.0f RPC/s)", name, s, float64(s.Requests)/s.Duration.Seconds())
	for _, f := range s.Failures {
		k.t.Logf("%s: gRPC failure at +%.2fs: %s %s %s", name, f.At.Sub(began).Seconds(), f.Conn, f.Op, f.Kind)
	}
}

// grpcTable prints one line per scenario of what the gRPC clients saw.
func grpcTable(t testing.TB, results []result) {
	t.Logf("| scenario (gRPC) | RPCs | RPC/s | failed | by kind | p50 | p99 |")
	t.Logf("| --- | ---: | ---: | ---: | --- | ---: | ---: |")
	for _, r := range results {
		s := r.grpc
		byKind := s.ByKind()
		kinds := make([]string, 0, len(byKind))
		for _, kk := range slices.Sorted(maps.Keys(byKind)) {
			kinds = append(kinds, fmt.Sprintf("%s %d", kk, byKind[kk]))
		}
		t.Logf("| %s | %d | %.0f | %d | %s | %s | %s |", r.name, s.Requests, float64(s.Requests)/s.Duration.Seconds(), len(s.Failures),
			strings.Join(kinds, ", "), s.P50.Round(100*time.Microsecond), s.P99.Round(100*time.Microsecond))
	}
}

// linksCalls returns, per app pod, how many links RPCs it has answered
// (grpc_server_handled_total of the links service, every method and code),
// scraped concurrently through port-forward.
func (k *kind) linksCalls() (map[string]float64, error) {
	pods := k.watch.appPods()
	counts := make(map[string]float64, len(pods))
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, p := range pods {
		wg.Go(func() {
			body, err := k.scrape(p.Name)
			var n float64
			if err == nil {
				n, err = handled(body)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("pod %s: %w", p.Name, err))
				return
			}
			counts[p.Name] = n
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return counts, nil
}

// handled sums grpc_server_handled_total of the links service in a scrape.
func handled(body []byte) (float64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	var n float64
	for _, m := range families["grpc_server_handled_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "grpc_service" && l.GetValue() == linksService {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n, nil
}

// maxConnectionAge returns the app's GRPC_MAX_CONNECTION_AGE from its pods' spec.
func (k *kind) maxConnectionAge() time.Duration {
	k.t.Helper()
	for _, p := range k.watch.appPods() {
		for _, e := range p.Spec.Containers[0].Env {
			if e.Name == "GRPC_MAX_CONNECTION_AGE" {
				d, err := time.ParseDuration(e.Value)
				if err != nil {
					k.t.Fatalf("GRPC_MAX_CONNECTION_AGE %q: %v", e.Value, err)
				}
				return d
			}
		}
	}
	k.t.Fatal("no GRPC_MAX_CONNECTION_AGE in the app pods' env (the kind overlay sets it)")
	return 0
}

// grpcSpread runs right after the scale back to 3 pods, under the gRPC load:
// every pod must answer links RPCs within GRPC_MAX_CONNECTION_AGE + 10 s (the
// server's own counters, scraped from each pod), and over the next 30 s the
// pods' counts must differ by at most a factor of 2. It returns the figures.
func (k *kind) grpcSpread(t testing.TB) string {
	age := k.maxConnectionAge()
	settled := time.Now()
	base, err := k.linksCalls()
	if err != nil {
		t.Fatal(err)
	}
	reached := map[string]time.Duration{}
	limit := age + 10*time.Second
	var last map[string]float64
	k.poll(fmt.Sprintf("links RPCs on every pod within GRPC_MAX_CONNECTION_AGE + 10s (%s)", limit), limit+30*time.Second, 500*time.Millisecond, func() bool {
		now, err := k.linksCalls()
		if err != nil {
			t.Logf("scrape: %v", err)
			return false
		}
		at := time.Since(settled)
		for pod, n := range now {
			if _, ok := reached[pod]; !ok && n > base[pod] {
				reached[pod] = at // an upper bound: the scrape that first saw it
			}
		}
		last = now
		return len(reached) == len(now)
	})
	var slowest time.Duration
	for pod, d := range reached {
		t.Logf("scale: links RPCs reached pod %s within %.1fs of the scale-up", pod, d.Seconds())
		slowest = max(slowest, d)
	}
	if slowest > limit {
		t.Errorf("scale: links RPCs reached the last pod %.1fs after the scale-up, limit GRPC_MAX_CONNECTION_AGE + 10s = %s", slowest.Seconds(), limit)
	}

	from, start := last, time.Now()
	k.poll("30 s of spread", 45*time.Second, 250*time.Millisecond, func() bool { return time.Since(start) > 30*time.Second })
	to, err := k.linksCalls()
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]float64{}
	lo, hi := -1.0, 0.0
	for pod, n := range to {
		per[pod] = n - from[pod]
		hi = max(hi, per[pod])
		if lo < 0 || per[pod] < lo {
			lo = per[pod]
		}
	}
	ratio := hi / max(lo, 1)
	var counts []string
	for _, pod := range slices.Sorted(maps.Keys(per)) {
		counts = append(counts, fmt.Sprintf("%s %.0f", pod, per[pod]))
	}
	note := fmt.Sprintf("gRPC after the scale-up (GRPC_MAX_CONNECTION_AGE %s): every pod answered within %.1fs; links RPCs per pod over the next %.0fs: %s (max/min %.2f)",
		age, slowest.Seconds(), time.Since(start).Seconds(), strings.Join(counts, ", "), ratio)
	if len(per) != replicas || ratio > 2 {
		t.Errorf("scale: links RPCs per pod over 30 s: %s; want %d pods with max/min <= 2", strings.Join(counts, ", "), replicas)
	}
	return note
}
