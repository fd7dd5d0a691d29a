//go:build kind

package disruption_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	corev1 "k8s.io/api/core/v1"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// jaegerTrace is a trace as Jaeger's query API (/api/traces/{id}) returns it.
type jaegerTrace struct {
	Spans []struct {
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		StartTime     int64  `json:"startTime"`
		References    []struct {
			RefType, SpanID string
		} `json:"references"`
		ProcessID string `json:"processID"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
		Tags        []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
	} `json:"processes"`
}

// traces: a write through the NodePort with a traceparent becomes one trace
// in the in-cluster Jaeger (k8s/components/jaeger, JAEGER_URL): the server
// span named by its route and parented on the traceparent, its memcached
// and SQL spans as children, and the pod, namespace and node that served it
// in the resource. That pod's log line of the request carries the trace ID,
// and its metrics port (OpenMetrics) the trace ID as an exemplar.
func (k *kind) traces(t *testing.T) {
	id, parent := hexID(16), hexID(8)
	slug := fmt.Sprintf("trace-%d", time.Now().UnixNano())
	req, err := http.NewRequestWithContext(k.ctx, http.MethodPost, k.url+"/api/links", strings.NewReader(`{"url":"https://example.com/t","slug":"`+slug+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+id+"-"+parent+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/links: %s", resp.Status)
	}

	jaeger := env("JAEGER_URL", "http://localhost:16686")
	var tr jaegerTrace
	var last error
	took := k.poll("the trace in Jaeger", time.Minute, time.Second, func() bool {
		tr, last = getTrace(k, jaeger, id)
		return last == nil && len(tr.Spans) >= 4
	})
	names := map[string]string{parent: "traceparent"}
	for _, s := range tr.Spans {
		names[s.SpanID] = s.OperationName
	}
	sort.Slice(tr.Spans, func(i, j int) bool { return tr.Spans[i].StartTime < tr.Spans[j].StartTime })
	var shape []string
	for _, s := range tr.Spans {
		p := ""
		for _, r := range s.References {
			if r.RefType == "CHILD_OF" {
				p = names[r.SpanID]
			}
		}
		shape = append(shape, s.OperationName+"<-"+p)
	}
	t.Logf("trace %s in Jaeger after %s: %s (%s/trace/%s)", id, took.Round(time.Millisecond), strings.Join(shape, ", "), jaeger, id)
	if want := []string{"POST /api/links<-traceparent", "set<-POST /api/links", "INSERT<-POST /api/links", "set<-POST /api/links"}; !slices.Equal(shape, want) {
		t.Errorf("trace %s is %v, want %v", id, shape, want)
	}
	resource := map[string]string{}
	for _, kv := range tr.Processes[tr.Spans[0].ProcessID].Tags {
		resource[kv.Key] = fmt.Sprint(kv.Value)
	}
	pod := resource["k8s.pod.name"]
	if !slices.ContainsFunc(k.watch.appPods(), func(p *corev1.Pod) bool { return p.Name == pod && p.Spec.NodeName == resource["k8s.node.name"] }) ||
		resource["k8s.namespace.name"] != ns || tr.Processes[tr.Spans[0].ProcessID].ServiceName != "gok8s" {
		t.Fatalf("resource %v: want service gok8s and an app pod with its node and namespace %s", resource, ns)
	}

	logs := k.mustKubectl(30*time.Second, "logs", "pod/"+pod, "--tail=500")
	var line string
	for l := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(l, `msg="http request"`) && strings.Contains(l, "trace_id="+id) {
			line = l
		}
	}
	if line == "" {
		t.Errorf("pod %s has no access-log line with trace_id=%s", pod, id)
	}
	t.Logf("pod %s: %s", pod, line)

	body, err := k.scrapeAs(pod, "application/openmetrics-text;version=1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	var exemplar string
	for l := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(l, "gok8s_http_request_duration_seconds_bucket") && strings.Contains(l, `# {trace_id="`+id+`"}`) {
			exemplar = l
		}
	}
	if exemplar == "" {
		t.Errorf("pod %s: no exemplar trace_id=%q on gok8s_http_request_duration_seconds", pod, id)
	}
	t.Logf("pod %s: %s", pod, exemplar)
}

// getTrace reads trace id from Jaeger's query API at base.
func getTrace(k *kind, base, id string) (jaegerTrace, error) {
	req, err := http.NewRequestWithContext(k.ctx, http.MethodGet, base+"/api/traces/"+id, nil)
	if err != nil {
		return jaegerTrace{}, err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return jaegerTrace{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return jaegerTrace{}, fmt.Errorf("GET /api/traces/%s: %w", id, err)
	}
	if resp.StatusCode != http.StatusOK {
		return jaegerTrace{}, fmt.Errorf("GET /api/traces/%s: %s", id, resp.Status)
	}
	var r struct{ Data []jaegerTrace }
	if err := json.Unmarshal(body, &r); err != nil {
		return jaegerTrace{}, fmt.Errorf("GET /api/traces/%s: %w", id, err)
	}
	if len(r.Data) == 0 {
		return jaegerTrace{}, fmt.Errorf("GET /api/traces/%s: no trace", id)
	}
	return r.Data[0], nil
}

// hexID returns n random bytes in hex: a W3C trace (16) or span (8) ID.
func hexID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
