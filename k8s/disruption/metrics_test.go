//go:build kind

package disruption_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape GETs /metrics from the metrics port of pod through kubectl
// port-forward: the kubelet connects inside the pod, where no NetworkPolicy
// applies (the policy admits the port from pods only, not from the API
// server's node).
func (k *kind) scrape(pod string) ([]byte, error) { return k.scrapeAs(pod, "") }

// scrapeAs is scrape asking for the format accept (an Accept header; "": the
// server's default).
func (k *kind) scrapeAs(pod, accept string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(k.ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, env("KUBECTL", "kubectl"), "--context", k.context, "-n", ns, "port-forward", "pod/"+pod, ":metrics")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n') // Forwarding from 127.0.0.1:PORT -> 9090
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s: %w", pod, err)
	}
	addr, _, _ := strings.Cut(strings.TrimPrefix(line, "Forwarding from "), " ")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// metrics scrapes the metrics port of every app pod and shows the per-check series.
func (k *kind) metrics(t *testing.T) {
	for _, p := range k.watch.appPods() {
		body, err := k.scrape(p.Name)
		if err != nil {
			t.Errorf("pod %s: GET :9090/metrics: %v", p.Name, err)
			continue
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			t.Errorf("pod %s: /metrics does not parse: %v", p.Name, err)
			continue
		}
		var series []string
		for _, name := range slices.Sorted(maps.Keys(families)) {
			if !strings.HasPrefix(name, "gok8s_probe_check_up") && name != "gok8s_ready" {
				continue
			}
			for _, m := range families[name].GetMetric() {
				lbl := make([]string, 0, len(m.GetLabel()))
				for _, l := range m.GetLabel() {
					lbl = append(lbl, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				series = append(series, fmt.Sprintf("%s{%s} %g", name, strings.Join(lbl, ","), m.GetGauge().GetValue()))
			}
		}
		t.Logf("pod %s: %s", p.Name, strings.Join(series, "  "))
		if !slices.Contains(series, `gok8s_probe_check_up{check="postgres/default"} 1`) || !slices.Contains(series, `gok8s_ready{} 1`) {
			t.Errorf("pod %s: want gok8s_probe_check_up{check=\"postgres/default\"} 1 and gok8s_ready 1 in %q", p.Name, series)
		}
	}
}
