package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// DefaultJaegerImage is the Jaeger v2 all-in-one image, as on any machine with a registry.
const DefaultJaegerImage = "jaegertracing/jaeger:2.12.0"

// JaegerImage returns $JAEGER_IMAGE, or DefaultJaegerImage.
func JaegerImage() string { return envOr("JAEGER_IMAGE", DefaultJaegerImage) }

// A Jaeger is a Jaeger v2 all-in-one container: an OTLP receiver with memory
// storage and its query API.
type Jaeger struct {
	*Container
	// OTLP is the OTLP/HTTP receiver's base URL on the host (http://127.0.0.1:port),
	// for OTEL_EXPORTER_OTLP_ENDPOINT. Container.Port is its port.
	OTLP string
	// Query is the query API's base URL on the host; its port too stays the
	// same across Stop and Start (the traces do not: storage is in memory).
	Query string
}

// StartJaeger starts Jaeger with its OTLP/HTTP (4318) and query (16686) ports
// on free host ports. The container is removed when tb ends.
func StartJaeger(tb testing.TB) *Jaeger {
	tb.Helper()
	RequireDocker(tb)
	var query string
	ctr, port := start(tb, "", func(port string) (testcontainers.Container, error) {
		query = FreePort(tb)
		ctr, err := testcontainers.Run(tb.Context(), JaegerImage(),
			testcontainers.WithExposedPorts("4318/tcp", "16686/tcp"),
			testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
				hc.PortBindings = network.PortMap{
					network.MustParsePort("4318/tcp"):  {{HostIP: netip.IPv4Unspecified(), HostPort: port}},
					network.MustParsePort("16686/tcp"): {{HostIP: netip.IPv4Unspecified(), HostPort: query}},
				}
			}),
			testcontainers.WithWaitStrategy(wait.ForListeningPort("4318/tcp"),
				wait.ForHTTP("/api/services").WithPort("16686/tcp").WithStartupTimeout(60*time.Second)),
		)
		if ctr == nil {
			return nil, err
		}
		return ctr, err
	})
	j := &Jaeger{
		Container: &Container{Container: ctr, Port: port},
		OTLP:      "http://127.0.0.1:" + port,
		Query:     "http://127.0.0.1:" + query,
	}
	j.ready = func(ctx context.Context) error {
		_, err := j.get(ctx, "/api/services")
		return err
	}
	j.waitReady(tb)
	return j
}

// A Trace is a trace as Jaeger's query API returns it.
type Trace struct {
	TraceID   string             `json:"traceID"`
	Spans     []Span             `json:"spans"`
	Processes map[string]Process `json:"processes"`
}

// A Span is a span of a Trace.
type Span struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	OperationName string      `json:"operationName"`
	References    []Reference `json:"references"`
	StartTime     int64       `json:"startTime"` // µs since the epoch
	Duration      int64       `json:"duration"`  // µs
	Tags          []KeyValue  `json:"tags"`
	ProcessID     string      `json:"processID"`
}

// Tag returns the value of the span's tag key, or "".
func (s Span) Tag(key string) string {
	for _, kv := range s.Tags {
		if kv.Key == key {
			return fmt.Sprint(kv.Value)
		}
	}
	return ""
}

// Parent returns the span ID of the span's CHILD_OF reference, or "".
func (s Span) Parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// A Reference links a span to another.
type Reference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// A KeyValue is a span tag or a process tag.
type KeyValue struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// A Process is the service that sent spans, with its resource attributes as tags.
type Process struct {
	ServiceName string     `json:"serviceName"`
	Tags        []KeyValue `json:"tags"`
}

// Trace returns the trace with ID id, and false if Jaeger has none.
func (j *Jaeger) Trace(ctx context.Context, id string) (Trace, bool, error) {
	body, err := j.get(ctx, "/api/traces/"+id)
	if err != nil {
		if he, ok := errors.AsType[httpStatusError](err); ok && he == http.StatusNotFound {
			return Trace{}, false, nil
		}
		return Trace{}, false, err
	}
	var r struct{ Data []Trace }
	if err := json.Unmarshal(body, &r); err != nil {
		return Trace{}, false, fmt.Errorf("jaeger: trace %s: %w", id, err)
	}
	if len(r.Data) == 0 {
		return Trace{}, false, nil
	}
	return r.Data[0], true, nil
}

// Operations returns the span names Jaeger has seen from service.
func (j *Jaeger) Operations(ctx context.Context, service string) ([]string, error) {
	body, err := j.get(ctx, "/api/services/"+service+"/operations")
	if err != nil {
		return nil, err
	}
	// Jaeger's query API lists names; some builds list {"name": ...} objects.
	var r struct{ Data []json.RawMessage }
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("jaeger: operations of %s: %w", service, err)
	}
	names := make([]string, 0, len(r.Data))
	for _, raw := range r.Data {
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			var o struct{ Name string }
			if err := json.Unmarshal(raw, &o); err != nil {
				return nil, fmt.Errorf("jaeger: operations of %s: %s: %w", service, raw, err)
			}
			name = o.Name
		}
		names = append(names, name)
	}
	return names, nil
}

type httpStatusError int

func (e httpStatusError) Error() string { return fmt.Sprintf("HTTP status %d", int(e)) }

func (j *Jaeger) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.Query+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, httpStatusError(resp.StatusCode)
	}
	return body, nil
}
