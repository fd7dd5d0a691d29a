package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gok8s/gok8s/app/internal/links"
	"github.com/gok8s/gok8s/probes"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestOptionalChecks: PROBE_OPTIONAL's names and groups make their checks
// optional (reported, never failing readiness); the others stay critical.
func TestOptionalChecks(t *testing.T) {
	down := func(name string) probes.Checker {
		return probes.Func(name, func(context.Context) error { return errors.New("down") })
	}
	tests := []struct {
		names   []string
		failing []string // the failing checks that still fail readiness
		err     string
	}{
		{names: nil, failing: []string{"postgres/default", "memcached/a:1", "memcached/b:1"}},
		{names: []string{"memcached"}, failing: []string{"postgres/default"}},
		{names: []string{"memcached/b:1"}, failing: []string{"postgres/default", "memcached/a:1"}},
		{names: []string{" memcached/a:1", "postgres"}, failing: []string{"memcached/b:1"}},
		{names: []string{"memcached", "memcached/a:1"}, failing: []string{"postgres/default"}},
		{names: []string{"redis"}, err: `PROBE_OPTIONAL: "redis" matches no check (checks: postgres/default, memcached/a:1, memcached/b:1)`},
		{names: []string{"memcached", "a:1"}, err: `PROBE_OPTIONAL: "a:1" matches no check`},
		{names: []string{"memcached/"}, err: `PROBE_OPTIONAL: "memcached/" matches no check`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.names, ","), func(t *testing.T) {
			checks := []probes.Checker{down("postgres/default"), down("memcached/a:1"), down("memcached/b:1")}
			got, err := optionalChecks(checks, tt.names)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one holding %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ready, err := probes.NewReadiness(got)
			if err != nil {
				t.Fatal(err)
			}
			ready.MarkStarted()
			var failing []string
			for _, res := range ready.Report(t.Context(), probes.Filter{}).Results {
				if res.Err != nil && !res.Optional {
					failing = append(failing, res.Name)
				}
			}
			if !slices.Equal(failing, tt.failing) {
				t.Errorf("failing readiness: %q, want %q", failing, tt.failing)
			}
			if err := ready.Check(t.Context()); err == nil {
				t.Error("readiness passes with a critical check down")
			}
		})
	}
}

// TestRunProbeOptionalUnknown: serve exits 2 naming PROBE_OPTIONAL when one of
// its names matches no check.
func TestRunProbeOptionalUnknown(t *testing.T) {
	t.Setenv("PROBE_OPTIONAL", "memcached,redis")
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("GRPC_ADDR", "127.0.0.1:0")
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"serve"}, &stdout, &stderr); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	want := `app: PROBE_OPTIONAL: "redis" matches no check (checks: postgres/default, memcached/localhost:11211)` + "\n"
	if stderr.String() != want {
		t.Errorf("stderr %q\nwant   %q", stderr.String(), want)
	}
}

// TestREADMEConfiguration: README's configuration table (the first of its
// Configuration section) lists every variable of the config struct, and no
// other, each with the struct's default, and README names every command of
// the table in commands.go.
func TestREADMEConfiguration(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	_, section, ok := strings.Cut(readme, "\n## Configuration\n")
	if !ok {
		t.Fatal("README has no Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	documented := map[string]string{} // variable → default
	name := regexp.MustCompile("^`([A-Z][A-Z0-9_]*)`$")
	inTable := false
	for line := range strings.SplitSeq(section, "\n") {
		if inTable && !strings.HasPrefix(line, "|") {
			break // the first table is the app's; the OpenTelemetry SDK reads the next
		}
		cells := strings.Split(line, "|") // "", variables, defaults, meaning, ""
		if !strings.HasPrefix(line, "| `") || len(cells) < 4 {
			continue
		}
		inTable = true
		names := strings.Split(strings.TrimSpace(cells[1]), ", ")
		var defaults []string
		if d := strings.TrimSpace(cells[2]); d != "" {
			defaults = strings.Split(d, ", ")
		}
		if defaults != nil && len(defaults) != len(names) {
			t.Errorf("README row %q: %d variables, %d defaults", cells[1], len(names), len(defaults))
			continue
		}
		for i, n := range names {
			m := name.FindStringSubmatch(n)
			if m == nil {
				t.Errorf("README row %q: %q is not a variable name", cells[1], n)
				continue
			}
			documented[m[1]] = ""
			if defaults != nil {
				documented[m[1]] = strings.Trim(defaults[i], "`")
			}
		}
	}
	want := map[string]string{}
	for f := range reflect.TypeFor[config]().Fields() {
		want[f.Tag.Get("envconfig")] = f.Tag.Get("default")
	}
	for _, v := range slices.Sorted(maps.Keys(want)) {
		switch d, ok := documented[v]; {
		case !ok:
			t.Errorf("README's configuration table does not list %s", v)
		case d != want[v]:
			t.Errorf("README gives %s the default %q, the config struct %q", v, d, want[v])
		}
	}
	for _, v := range slices.Sorted(maps.Keys(documented)) {
		if _, ok := want[v]; !ok {
			t.Errorf("README's configuration table lists %s, which the config struct does not read", v)
		}
	}
	for _, c := range commands() {
		if !strings.Contains(readme, "`app "+c.name) {
			t.Errorf("README does not name the command `app %s`", c.name)
		}
	}
}

// TestStartupLogListsEveryVariable: the start-up log line carries every
// variable of the config struct, by its name in lower case, with no password.
func TestStartupLogListsEveryVariable(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://u:secret1@db:5432/app")
	t.Setenv("EXTRA_DATABASE_URLS", "reports=postgres://u:secret2@r/db,audit=host=a password=secret3")
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	slog.New(slog.NewJSONHandler(&out, nil)).Info("starting", cfg.attrs()...)
	var line map[string]any
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	for _, name := range configNames() {
		if _, ok := line[strings.ToLower(name)]; !ok {
			t.Errorf("the start-up line has no %s: %s", strings.ToLower(name), out.String())
		}
	}
	if want := len(configNames()) + 3; len(line) != want { // time, level, msg
		t.Errorf("the start-up line has %d keys, want %d: %s", len(line), want, out.String())
	}
	if strings.Contains(out.String(), "secret") {
		t.Errorf("the start-up line shows a password: %s", out.String())
	}
	if want := `"extra_database_urls":["audit=host=a password=xxxxx","reports=postgres://u:xxxxx@r/db"]`; !strings.Contains(out.String(), want) {
		t.Errorf("the start-up line does not hold %s: %s", want, out.String())
	}
}

// TestDatabaseURLErrors: migrate and wait return DATABASE_URL's parse error
// wrapped (errors.As finds pgx's) and naming the variable, without the URL.
func TestDatabaseURLErrors(t *testing.T) {
	const url = "postgres://u:secret@h:notaport/db"
	log := slog.New(slog.DiscardHandler)
	for _, tt := range []struct {
		name string
		run  func(config) error
	}{
		{"migrate", func(cfg config) error { return migrate(t.Context(), cfg, log) }},
		{"wait", func(cfg config) error { return waitForDatabase(t.Context(), cfg, nil, log) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run(config{DatabaseURL: url})
			if _, ok := errors.AsType[*pgconn.ParseConfigError](err); !ok {
				t.Errorf("%s: %v (%T), want a wrapped *pgconn.ParseConfigError", tt.name, err, err)
			}
			if err == nil || !strings.HasPrefix(err.Error(), "DATABASE_URL: ") || strings.Contains(err.Error(), "secret") {
				t.Errorf("%s: %q, want an error naming DATABASE_URL without the password", tt.name, err)
			}
		})
	}
}

// TestCacheMaxIdleDefault: CACHE_MAX_IDLE_CONNS defaults to the links
// package's own default (envconfig's tag must be a literal, so it is written
// twice; this keeps the two equal).
func TestCacheMaxIdleDefault(t *testing.T) {
	f, ok := reflect.TypeFor[config]().FieldByName("CacheMaxIdle")
	if !ok {
		t.Fatal("config has no field CacheMaxIdle")
	}
	if got, want := f.Tag.Get("default"), fmt.Sprint(links.DefaultMaxIdleConns); got != want {
		t.Errorf("CACHE_MAX_IDLE_CONNS defaults to %s, links.DefaultMaxIdleConns is %s", got, want)
	}
}
