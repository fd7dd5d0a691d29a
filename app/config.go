package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gok8s/gok8s/probes"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/kelseyhightower/envconfig"
)

// config is the service's configuration, read from the environment by envconfig.
// `app help` prints it.
type config struct {
	HTTPAddr          string        `envconfig:"HTTP_ADDR" default:":8080" desc:"address the HTTP server listens on"`
	ReadHeaderTimeout time.Duration `envconfig:"HTTP_READ_HEADER_TIMEOUT" default:"5s" desc:"time to read a request's headers"`
	ReadTimeout       time.Duration `envconfig:"HTTP_READ_TIMEOUT" default:"15s" desc:"time to read a whole API request"`
	WriteTimeout      time.Duration `envconfig:"HTTP_WRITE_TIMEOUT" default:"15s" desc:"time to answer an API request"`
	IdleTimeout       time.Duration `envconfig:"HTTP_IDLE_TIMEOUT" default:"60s" desc:"keep-alive time between requests"`
	MaxBodyBytes      int64         `envconfig:"HTTP_MAX_BODY_BYTES" default:"1048576" desc:"largest request body"`
	AdminAddr         string        `envconfig:"ADMIN_ADDR" desc:"address of the admin listener (GET /metrics, /debug/pprof/), not HTTP_ADDR's port; empty: none"`

	GRPCAddr                  string        `envconfig:"GRPC_ADDR" default:":50051" desc:"address the gRPC server listens on (links API, grpc.health.v1, reflection), not HTTP_ADDR's or ADMIN_ADDR's port; empty: none"`
	GRPCTimeout               time.Duration `envconfig:"GRPC_TIMEOUT" default:"15s" desc:"bound on one links RPC (a shorter client deadline wins)"`
	GRPCMaxConnectionAge      time.Duration `envconfig:"GRPC_MAX_CONNECTION_AGE" default:"5m" desc:"a gRPC connection's lifetime (±10%), after which the client reconnects through the Service"`
	GRPCMaxConnectionAgeGrace time.Duration `envconfig:"GRPC_MAX_CONNECTION_AGE_GRACE" default:"20s" desc:"then, how long its RPCs in flight have to finish"`

	DatabaseURL        string        `envconfig:"DATABASE_URL" default:"postgres://postgres:postgres@localhost:5432/gok8s?sslmode=disable" desc:"PostgreSQL URL of the store (its password is never logged)" secret:"true"`
	ExtraDatabaseURLs  databaseURLs  `envconfig:"EXTRA_DATABASE_URLS" desc:"more databases to probe, as name=url,name=url" secret:"true"`
	DatabaseMaxConns   int32         `envconfig:"DATABASE_MAX_CONNS" default:"10" desc:"connections per pool"`
	DatabaseMinConns   int32         `envconfig:"DATABASE_MIN_CONNS" default:"4" desc:"connections of DATABASE_URL's pool opened before the pod turns ready, and kept open"`
	DatabaseRetryAfter time.Duration `envconfig:"DATABASE_RETRY_AFTER" default:"5s" desc:"Retry-After of the 503 answered while PostgreSQL cannot be reached (whole seconds, rounded up)"`

	MemcachedServers []string      `envconfig:"MEMCACHED_SERVERS" default:"localhost:11211" desc:"memcached servers, host:port,host:port"`
	CacheTTL         time.Duration `envconfig:"CACHE_TTL" default:"5m" desc:"how long a link stays cached (whole seconds)"`
	CacheTimeout     time.Duration `envconfig:"CACHE_TIMEOUT" default:"200ms" desc:"bound on one request's time in memcached"`
	CacheMaxIdle     int           `envconfig:"CACHE_MAX_IDLE_CONNS" default:"16" desc:"idle connections kept per memcached server (about the requests a pod has in flight); calls beyond them dial and close a connection each"`

	ProbeTimeout  time.Duration `envconfig:"PROBE_TIMEOUT" default:"1s" desc:"bound on one readiness check and on a probe's wait"`
	ProbeTTL      time.Duration `envconfig:"PROBE_TTL" default:"1s" desc:"how long a readiness check's result is reused"`
	ProbeOptional []string      `envconfig:"PROBE_OPTIONAL" desc:"checks reported but not failing readiness: names or groups (memcached), comma-separated"`

	ShutdownDelay   time.Duration `envconfig:"SHUTDOWN_DELAY" default:"5s" desc:"after SIGTERM, how long /readyz answers 503 while the server still serves"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"20s" desc:"then, how long in-flight requests have to finish"`

	LogLevel  string `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat string `envconfig:"LOG_FORMAT" default:"json" desc:"json or text"`
}

// configNames returns the names of the environment variables config reads.
func configNames() []string {
	t := reflect.TypeFor[config]()
	names := make([]string, 0, t.NumField())
	for f := range t.Fields() {
		names = append(names, f.Tag.Get("envconfig"))
	}
	return names
}

// poolName is a database name in EXTRA_DATABASE_URLS.
var poolName = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// databaseURLs is a list of name=url pairs, separated by commas.
type databaseURLs map[string]string

// Decode implements envconfig.Decoder: URLs hold colons, which envconfig's own
// map syntax (key:value) cannot take.
func (d *databaseURLs) Decode(value string) error {
	m := databaseURLs{}
	for pair := range strings.SplitSeq(value, ",") {
		name, url, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return errors.New("want name=url")
		}
		m[name] = url
	}
	*d = m
	return nil
}

// loadConfig reads the configuration from the environment. Its error is one
// line naming the variable and what is wrong with it.
func loadConfig() (config, error) {
	var cfg config
	if err := envconfig.Process("", &cfg); err != nil {
		if pe, ok := errors.AsType[*envconfig.ParseError](err); ok {
			if secret(pe.FieldName) { // the value may hold a password: never print it
				return cfg, fmt.Errorf("%s: is not a valid %s (value not shown: it may hold a password)", pe.KeyName, typeName(pe.TypeName))
			}
			return cfg, fmt.Errorf("%s: %s is not a valid %s", pe.KeyName, quoteShort(pe.Value), typeName(pe.TypeName))
		}
		return cfg, err
	}
	return cfg, cfg.validate()
}

// secret reports whether config's field holds values that may carry a
// password (tag secret:"true"); errors about them never quote the value.
func secret(field string) bool {
	f, ok := reflect.TypeFor[config]().FieldByName(field)
	return ok && f.Tag.Get("secret") == "true"
}

func typeName(t string) string {
	switch t {
	case "time.Duration":
		return "duration (like 500ms, 5s or 1m)"
	case "int32", "int64":
		return "whole number"
	case "main.databaseURLs":
		return "list of name=url pairs"
	}
	return t
}

func (c config) validate() error {
	var errs []error
	bad := func(name, msg string) { errs = append(errs, fmt.Errorf("%s: %s", name, msg)) }
	type duration struct {
		name string
		d    time.Duration
	}
	for _, t := range []duration{
		{"HTTP_READ_HEADER_TIMEOUT", c.ReadHeaderTimeout}, {"HTTP_READ_TIMEOUT", c.ReadTimeout},
		{"HTTP_WRITE_TIMEOUT", c.WriteTimeout}, {"HTTP_IDLE_TIMEOUT", c.IdleTimeout},
		{"CACHE_TIMEOUT", c.CacheTimeout}, {"PROBE_TIMEOUT", c.ProbeTimeout}, {"SHUTDOWN_TIMEOUT", c.ShutdownTimeout},
		{"GRPC_TIMEOUT", c.GRPCTimeout}, {"GRPC_MAX_CONNECTION_AGE", c.GRPCMaxConnectionAge},
		{"GRPC_MAX_CONNECTION_AGE_GRACE", c.GRPCMaxConnectionAgeGrace},
		{"DATABASE_RETRY_AFTER", c.DatabaseRetryAfter},
	} {
		if t.d <= 0 {
			bad(t.name, "must be more than 0")
		}
	}
	for _, t := range []duration{{"PROBE_TTL", c.ProbeTTL}, {"SHUTDOWN_DELAY", c.ShutdownDelay}} {
		if t.d < 0 {
			bad(t.name, "must not be negative")
		}
	}
	if err := validateHostPort("HTTP_ADDR", c.HTTPAddr); err != nil {
		errs = append(errs, err)
	}
	if c.AdminAddr != "" {
		if err := validateHostPort("ADMIN_ADDR", c.AdminAddr); err != nil {
			errs = append(errs, err)
		} else if _, port, _ := net.SplitHostPort(c.AdminAddr); port != "0" {
			if api, _ := c.listenPort(); port == api {
				bad("ADMIN_ADDR", fmt.Sprintf("must not use HTTP_ADDR's port %s: metrics and profiles stay off the API", port))
			}
		}
	}
	if c.GRPCAddr != "" {
		if err := validateHostPort("GRPC_ADDR", c.GRPCAddr); err != nil {
			errs = append(errs, err)
		} else if _, port, _ := net.SplitHostPort(c.GRPCAddr); port != "0" {
			api, _ := c.listenPort()
			_, admin, _ := net.SplitHostPort(c.AdminAddr)
			switch port {
			case api:
				bad("GRPC_ADDR", fmt.Sprintf("must not use HTTP_ADDR's port %s", port))
			case admin:
				bad("GRPC_ADDR", fmt.Sprintf("must not use ADMIN_ADDR's port %s", port))
			}
		}
	}
	if c.CacheTTL < time.Second {
		bad("CACHE_TTL", "must be at least 1s")
	}
	if c.MaxBodyBytes < 1 {
		bad("HTTP_MAX_BODY_BYTES", "must be at least 1")
	}
	if c.DatabaseMaxConns < 1 {
		bad("DATABASE_MAX_CONNS", "must be at least 1")
	}
	if c.DatabaseMinConns < 0 || c.DatabaseMinConns > c.DatabaseMaxConns {
		bad("DATABASE_MIN_CONNS", "must be between 0 and DATABASE_MAX_CONNS")
	}
	if c.CacheMaxIdle < 1 {
		bad("CACHE_MAX_IDLE_CONNS", "must be at least 1")
	}
	if _, err := parseDatabaseURL("DATABASE_URL", c.DatabaseURL); err != nil {
		errs = append(errs, err)
	}
	for _, name := range slices.Sorted(maps.Keys(c.ExtraDatabaseURLs)) {
		u := c.ExtraDatabaseURLs[name]
		if !poolName.MatchString(name) { // not quoted: a misplaced URL may hold a password
			bad("EXTRA_DATABASE_URLS", "a name must be 1 to 32 lower-case letters, digits, '-' or '_'")
		} else if name == "default" {
			bad("EXTRA_DATABASE_URLS", `the name "default" is DATABASE_URL's`)
		} else if _, err := pgxpool.ParseConfig(u); err != nil {
			bad("EXTRA_DATABASE_URLS", fmt.Sprintf("the URL of %q does not parse", name))
		}
	}
	if len(c.MemcachedServers) == 0 {
		bad("MEMCACHED_SERVERS", "must name at least one server")
	}
	seen := map[string]bool{}
	for _, s := range c.MemcachedServers {
		switch {
		case s == "":
			bad("MEMCACHED_SERVERS", "has an empty entry")
		case seen[s]:
			bad("MEMCACHED_SERVERS", fmt.Sprintf("names %q twice", s))
		default:
			if err := validateServer("MEMCACHED_SERVERS", s); err != nil {
				errs = append(errs, err)
			}
		}
		seen[s] = true
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		bad("LOG_LEVEL", err.Error())
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("LOG_FORMAT", fmt.Sprintf("%q is not json or text", c.LogFormat))
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("%q is not debug, info, warn or error", s)
	}
	return l, nil
}

// newLogger returns the service's logger, writing to w.
func (c config) newLogger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel) // validated
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// attrs returns the configuration for the start-up log line: every variable
// of config, by its name in lower case, with the passwords of the values that
// may hold one (tag secret:"true") masked.
func (c config) attrs() []any {
	v := reflect.ValueOf(c)
	attrs := make([]any, 0, 2*v.NumField())
	for i := range v.NumField() {
		f, value := v.Type().Field(i), v.Field(i).Interface()
		if f.Tag.Get("secret") == "true" {
			value = masked(value)
		}
		attrs = append(attrs, strings.ToLower(f.Tag.Get("envconfig")), value)
	}
	return attrs
}

// masked returns value, a secret variable's, with its passwords hidden.
func masked(value any) any {
	switch v := value.(type) {
	case string:
		return maskURL(v)
	case databaseURLs:
		out := make([]string, 0, len(v))
		for _, name := range slices.Sorted(maps.Keys(v)) {
			out = append(out, name+"="+maskURL(v[name]))
		}
		return out
	}
	return "xxxxx" // a secret of a type with no masking of its own: none of it is shown
}

// maskURL hides the password of a database URL.
func maskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" { // a keyword/value connection string
		return probes.Redact(s)
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// parseDatabaseURL parses url, the value of the variable name, as pgxpool
// does. Its error names the variable and wraps pgx's, but never prints url:
// it may hold a password, and pgx hides one only where it can find it.
func parseDatabaseURL(name, url string) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, urlError{err})
	}
	return pc, nil
}

// urlError is a database URL that does not parse. It unwraps to pgx's error
// (a *pgconn.ParseConfigError) without quoting the URL.
type urlError struct{ err error }

func (e urlError) Error() string {
	return "does not parse as a PostgreSQL URL"
}

func (e urlError) Unwrap() error { return e.err }

// listenPort returns the port of HTTP_ADDR, for the healthcheck command.
func (c config) listenPort() (string, error) {
	_, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return "", fmt.Errorf("HTTP_ADDR: %w", err)
	}
	return port, nil
}

// optionalChecks returns checks with each check that names (PROBE_OPTIONAL) lists,
// by its name or its group ([probes.Match]), wrapped with [probes.Optional].
// A name that matches no check is an error naming the variable.
func optionalChecks(checks []probes.Checker, names []string) ([]probes.Checker, error) {
	out := slices.Clone(checks)
	var errs []error
	for _, n := range names {
		n = strings.TrimSpace(n)
		matched := false
		for i, c := range out {
			if probes.Match(n, c.Name()) {
				out[i] = probes.Optional(c)
				matched = true
			}
		}
		if !matched {
			all := make([]string, 0, len(checks))
			for _, c := range checks {
				all = append(all, c.Name())
			}
			errs = append(errs, fmt.Errorf("PROBE_OPTIONAL: %q matches no check (checks: %s)", n, strings.Join(all, ", ")))
		}
	}
	return out, errors.Join(errs...)
}
