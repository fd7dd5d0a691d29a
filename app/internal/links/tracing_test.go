package links

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gok8s/gok8s/app/internal/tracing"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// sqlRepo is memRepo whose calls pass their statements through a pgx tracer,
// as Store's do through the pool: each traced call gets its SQL span.
type sqlRepo struct {
	*memRepo
	tracer pgx.QueryTracer
}

func (r sqlRepo) query(ctx context.Context, sql string, args ...any) func(error) {
	ctx = r.tracer.TraceQueryStart(ctx, nil, pgx.TraceQueryStartData{SQL: sql, Args: args})
	return func(err error) { r.tracer.TraceQueryEnd(ctx, nil, pgx.TraceQueryEndData{Err: err}) }
}

func (r sqlRepo) Get(ctx context.Context, slug string) (Link, error) {
	end := r.query(ctx, "SELECT "+columns+" FROM links WHERE slug = $1", slug)
	l, err := r.memRepo.Get(ctx, slug)
	end(err)
	return l, err
}

func (r sqlRepo) Create(ctx context.Context, slug, url string) (Link, error) {
	end := r.query(ctx, "INSERT INTO links (slug, url) VALUES ($1, $2) RETURNING "+columns, slug, url)
	l, err := r.memRepo.Create(ctx, slug, url)
	end(err)
	return l, err
}

// span is what a test checks of an exported span.
type span struct {
	name   string
	kind   trace.SpanKind
	parent string // the parent span's name, "" for none, "remote" for a remote one
	attrs  map[string]string
}

func spansOf(stubs tracetest.SpanStubs) []span {
	names := map[trace.SpanID]string{}
	for _, s := range stubs {
		names[s.SpanContext.SpanID()] = s.Name
	}
	out := make([]span, 0, len(stubs))
	for _, s := range stubs {
		sp := span{name: s.Name, kind: s.SpanKind, attrs: map[string]string{}}
		if s.Parent.IsValid() {
			sp.parent = names[s.Parent.SpanID()]
			if s.Parent.IsRemote() {
				sp.parent = "remote"
			}
		}
		for _, kv := range s.Attributes {
			sp.attrs[string(kv.Key)] = kv.Value.String()
		}
		out = append(out, sp)
	}
	// The order spans end in: children before their parent.
	return out
}

// TestCacheSpans: each API request through the traced handler is one trace:
// a server span named by its route, and a client span per memcached call and
// per SQL statement as its children, with their semantic-convention
// attributes; statements carry no parameter values.
func TestCacheSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tr, err := tracing.New(t.Context(), "test", prometheus.NewRegistry(), log, tracing.WithSpanExporter(exp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })

	mc := newFakeMemcache()
	repo := newMemRepo()
	repo.links["go"] = Link{Slug: "go", URL: "https://go.dev"}
	c := withOptions(newCache(sqlRepo{repo, tr.PgxTracer()}, []string{"cache-0:11211"}, func(string) client { return mc }, time.Minute, time.Second, log),
		[]CacheOption{WithTracerProvider(tr.TracerProvider())})
	h := tr.Handler(tr.Route(NewHandler(NewService(c, log))))

	mcAttrs := func(op, result string) map[string]string {
		return map[string]string{"db.system.name": "memcached", "db.operation.name": op, "server.address": "cache-0",
			"server.port": "11211", "memcached.result": result}
	}
	const select1 = "SELECT slug, url, created_at, updated_at FROM links WHERE slug = $1"
	const insert = "INSERT INTO links (slug, url) VALUES ($1, $2) RETURNING slug, url, created_at, updated_at"
	tests := []struct {
		name         string
		method, path string
		body         string
		want         []span // in the order they end
	}{
		{"miss: get, lease, database, fill", "GET", "/go", "", []span{
			{"get", trace.SpanKindClient, "GET /{slug}", mcAttrs("get", "miss")},
			{"add", trace.SpanKindClient, "GET /{slug}", mcAttrs("add", "stored")},
			{"SELECT", trace.SpanKindClient, "GET /{slug}", map[string]string{"db.system.name": "postgresql", "db.query.text": select1, "db.operation.name": "SELECT"}},
			{"get", trace.SpanKindClient, "GET /{slug}", mcAttrs("get", "hit")},
			{"cas", trace.SpanKindClient, "GET /{slug}", mcAttrs("cas", "stored")},
			{"GET /{slug}", trace.SpanKindServer, "remote", map[string]string{"http.route": "/{slug}", "http.request.method": "GET", "http.response.status_code": "302", "url.path": "/go"}},
		}},
		{"hit: one get", "GET", "/go", "", []span{
			{"get", trace.SpanKindClient, "GET /{slug}", mcAttrs("get", "hit")},
			{"GET /{slug}", trace.SpanKindServer, "remote", map[string]string{"http.route": "/{slug}", "http.response.status_code": "302"}},
		}},
		{"write: tombstone, statement, tombstone", "POST", "/api/links", `{"url":"https://example.com/secret-value","slug":"ex"}`, []span{
			{"set", trace.SpanKindClient, "POST /api/links", mcAttrs("set", "stored")},
			{"INSERT", trace.SpanKindClient, "POST /api/links", map[string]string{"db.system.name": "postgresql", "db.query.text": insert, "db.operation.name": "INSERT"}},
			{"set", trace.SpanKindClient, "POST /api/links", mcAttrs("set", "stored")},
			{"POST /api/links", trace.SpanKindServer, "remote", map[string]string{"http.route": "/api/links", "http.response.status_code": "201"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp.Reset()
			const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			r.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code >= 400 {
				t.Fatalf("%s %s: %d %s", tt.method, tt.path, w.Code, w.Body)
			}
			if err := tr.ForceFlush(t.Context()); err != nil {
				t.Fatal(err)
			}
			stubs := exp.GetSpans()
			got := spansOf(stubs)
			if len(got) != len(tt.want) {
				t.Fatalf("%d spans, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.name != w.name || g.kind != w.kind || g.parent != w.parent {
					t.Errorf("span %d: %q %s, parent %q; want %q %s, parent %q", i, g.name, g.kind, g.parent, w.name, w.kind, w.parent)
				}
				for k, v := range w.attrs {
					if g.attrs[k] != v {
						t.Errorf("span %d %q: %s = %q, want %q", i, g.name, k, g.attrs[k], v)
					}
				}
				for k, v := range g.attrs {
					if strings.Contains(v, "secret-value") {
						t.Errorf("span %d %q: %s = %q holds a parameter value", i, g.name, k, v)
					}
				}
			}
			for _, s := range stubs {
				if s.SpanContext.TraceID().String() != traceID {
					t.Errorf("span %q is in trace %s, want the traceparent's %s", s.Name, s.SpanContext.TraceID(), traceID)
				}
			}
		})
	}
}

// TestCacheSpanErrors: a memcached call that fails or times out ends its span
// with an error status and error.type; a call made outside a recording span
// (the tombstone retries) records none.
func TestCacheSpanErrors(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	mc := newFakeMemcache()
	c := withOptions(newCache(newMemRepo(), []string{fakeServer}, func(string) client { return mc }, time.Minute, 50*time.Millisecond, log), []CacheOption{WithTracerProvider(tp)})
	mc.setFail(func(string) error { return errFakeRefused })
	ctx, parent := tp.Tracer("test").Start(t.Context(), "request")
	if _, err := c.Get(ctx, "go"); err == nil {
		t.Fatal("Get of a missing link: no error")
	}
	mc.setFail(nil)
	mc.stall = 200 * time.Millisecond
	if _, err := c.Get(ctx, "go"); err == nil {
		t.Fatal("Get of a missing link: no error")
	}
	parent.End()
	if _, err := c.Get(context.Background(), "go"); err == nil { // no span around it
		t.Fatal("Get of a missing link: no error")
	}

	var got []string
	for _, s := range exp.GetSpans() {
		attrs := attribute.NewSet(s.Attributes...)
		et, _ := attrs.Value("error.type")
		res, _ := attrs.Value(ResultKey)
		got = append(got, s.Name+" "+s.Status.Code.String()+" "+res.String()+" "+et.String())
	}
	want := []string{
		"get Error error connection_refused",
		"get Error error timeout",
		"request Unset  ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("spans:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

var _ http.Handler = (*Handler)(nil)
