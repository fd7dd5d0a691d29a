package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRunConfigErrors: a bad value exits 2 with one line naming the variable.
func TestRunConfigErrors(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SHUTDOWN_DELAY": "abc"}, `app: SHUTDOWN_DELAY: "abc" is not a valid duration (like 500ms, 5s or 1m)` + "\n"},
		{map[string]string{"DATABASE_MAX_CONNS": "ten"}, `app: DATABASE_MAX_CONNS: "ten" is not a valid whole number` + "\n"},
		{map[string]string{"DATABASE_MIN_CONNS": "11"}, "app: DATABASE_MIN_CONNS: must be between 0 and DATABASE_MAX_CONNS\n"},
		{map[string]string{"DATABASE_MIN_CONNS": "-1"}, "app: DATABASE_MIN_CONNS: must be between 0 and DATABASE_MAX_CONNS\n"},
		{map[string]string{"PROBE_TIMEOUT": "0s"}, "app: PROBE_TIMEOUT: must be more than 0\n"},
		{map[string]string{"DATABASE_RETRY_AFTER": "0s"}, "app: DATABASE_RETRY_AFTER: must be more than 0\n"},
		{map[string]string{"SHUTDOWN_DELAY": "-1s"}, "app: SHUTDOWN_DELAY: must not be negative\n"},
		{map[string]string{"CACHE_TTL": "500ms"}, "app: CACHE_TTL: must be at least 1s\n"},
		{map[string]string{"LOG_FORMAT": "xml"}, `app: LOG_FORMAT: "xml" is not json or text` + "\n"},
		{map[string]string{"LOG_LEVEL": "loud"}, `app: LOG_LEVEL: "loud" is not debug, info, warn or error` + "\n"},
		{map[string]string{"HTTP_ADDR": "8080"}, `app: HTTP_ADDR: "8080" is not host:port` + "\n"},
		{map[string]string{"ADMIN_ADDR": "9090"}, `app: ADMIN_ADDR: "9090" is not host:port` + "\n"},
		{map[string]string{"ADMIN_ADDR": ":metrics"}, `app: ADMIN_ADDR: the port of ":metrics" is not a number from 0 to 65535` + "\n"},
		{map[string]string{"ADMIN_ADDR": "127.0.0.1:8080"}, "app: ADMIN_ADDR: must not use HTTP_ADDR's port 8080: metrics and profiles stay off the API\n"},
		{map[string]string{"GRPC_ADDR": "50051"}, `app: GRPC_ADDR: "50051" is not host:port` + "\n"},
		{map[string]string{"GRPC_ADDR": ":8080"}, "app: GRPC_ADDR: must not use HTTP_ADDR's port 8080\n"},
		{map[string]string{"GRPC_ADDR": ":9090", "ADMIN_ADDR": "127.0.0.1:9090"}, "app: GRPC_ADDR: must not use ADMIN_ADDR's port 9090\n"},
		{map[string]string{"GRPC_ADDR": "[::1]:65536"}, `app: GRPC_ADDR: the port of "[::1]:65536" is not a number from 0 to 65535` + "\n"},
		{map[string]string{"GRPC_TIMEOUT": "0s"}, "app: GRPC_TIMEOUT: must be more than 0\n"},
		{map[string]string{"GRPC_MAX_CONNECTION_AGE": "-1m"}, "app: GRPC_MAX_CONNECTION_AGE: must be more than 0\n"},
		{map[string]string{"GRPC_MAX_CONNECTION_AGE_GRACE": "soon"}, `app: GRPC_MAX_CONNECTION_AGE_GRACE: "soon" is not a valid duration (like 500ms, 5s or 1m)` + "\n"},
		{map[string]string{"DATABASE_URL": "postgres://u:secret@h:notaport/db"}, "app: DATABASE_URL: does not parse as a PostgreSQL URL\n"},
		{map[string]string{"EXTRA_DATABASE_URLS": "reports"}, "app: EXTRA_DATABASE_URLS: is not a valid list of name=url pairs (value not shown: it may hold a password)\n"},
		{map[string]string{"EXTRA_DATABASE_URLS": "default=postgres://h/db"}, `app: EXTRA_DATABASE_URLS: the name "default" is DATABASE_URL's` + "\n"},
		{map[string]string{"HTTP_ADDR": "127.0.0.1:99999"}, `app: HTTP_ADDR: the port of "127.0.0.1:99999" is not a number from 0 to 65535` + "\n"},
		{map[string]string{"HTTP_ADDR": "256.1.1.1:80"}, `app: HTTP_ADDR: the host of "256.1.1.1:80" is neither an IP address nor a host name` + "\n"},
		{map[string]string{"MEMCACHED_SERVERS": "notahostport"}, `app: MEMCACHED_SERVERS: "notahostport" is not host:port` + "\n"},
		{map[string]string{"MEMCACHED_SERVERS": "a:1,a:1"}, `app: MEMCACHED_SERVERS: names "a:1" twice` + "\n"},
		{map[string]string{"OTEL_TRACES_EXPORTER": "zipkin2"}, "app: tracing: OTEL_TRACES_EXPORTER or OTEL_EXPORTER_OTLP_*: unknown exporter or metrics producer\n"},
		{map[string]string{"LOG_FORMAT": "xml", "LOG_LEVEL": "loud"}, "app: LOG_LEVEL: \"loud\" is not debug, info, warn or error\napp: LOG_FORMAT: \"xml\" is not json or text\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(keys(tt.env), ","), func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{"serve"}, &stdout, &stderr); code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if stderr.String() != tt.want {
				t.Errorf("stderr %q\nwant   %q", stderr.String(), tt.want)
			}
			if strings.Contains(stderr.String(), "secret") {
				t.Error("stderr shows the password")
			}
		})
	}
}

// keys returns the keys of m in order, so that subtest names do not follow
// map order.
func keys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

func TestRunCommands(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string // a line the output must hold
		stderr string
	}{
		{[]string{"help"}, 0, "  SHUTDOWN_DELAY", ""},
		{[]string{"--help"}, 0, "Usage: app", ""},
		{[]string{"version"}, 0, "dev", ""},
		{[]string{"frobnicate"}, 2, "", `app: unknown command "frobnicate"; see app help`},
		{[]string{"healthcheck", "-nope"}, 2, "", "app: healthcheck: flag provided but not defined: -nope"},
		{[]string{"healthcheck", "-path", "readyz"}, 2, "", `app: healthcheck: -path "readyz" must begin with /`},
		{[]string{"wait", "extra"}, 2, "", `app: wait: unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout.String(), stderr.String(), tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

func TestMaskURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"postgres://u:pw@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://h/db?password=pw", "postgres://h/db?password=xxxxx"},
		{"host=h password=pw", "host=h password=xxxxx"},
	} {
		if got := maskURL(tt.in); got != tt.want {
			t.Errorf("maskURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzConfig: any value of any variable either loads or fails with lines that
// each name a variable, and never panics.
func FuzzConfig(f *testing.F) {
	names := configNames()
	for i, v := range []string{"5s", "-1s", "abc", "reports=postgres://h/db,x=y", "a:1,,b:2", "postgres://u:p@h:99999/db", "9223372036854775807", ""} {
		f.Add(uint8(i), v)
	}
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		if strings.ContainsRune(value, 0) {
			return // the environment cannot hold NUL
		}
		name := names[int(which)%len(names)]
		t.Setenv(name, value)
		_, err := loadConfig()
		if err == nil {
			return
		}
		for line := range strings.SplitSeq(err.Error(), "\n") {
			if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(line, n+":") }) {
				t.Fatalf("%s=%q: error line %q names no variable", name, value, line)
			}
		}
	})
}

// lines is an io.Writer that sends each line written to it on a channel, so a
// test can wait for a log line without polling.
type lines chan string

func (l lines) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimSuffix(string(p), "\n"), "\n") {
		select {
		case l <- line:
		default: // nobody waits for this one
		}
	}
	return len(p), nil
}

// waitLine returns the first line from l holding msg, or fails the test after a while.
func waitLine(t *testing.T, l lines, msg string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line := <-l:
			if strings.Contains(line, msg) {
				return line
			}
		case <-timeout:
			t.Fatalf("no log line holding %q after 10s", msg)
		}
	}
}

// startServe runs the serve command on a loopback port, with env over
// unreachable backends, and returns its address, its log lines, a cancel that
// stops it as SIGTERM does, and its exit code once it has stopped.
func startServe(t *testing.T, env map[string]string) (listening struct{ Addr string }, logs lines, cancel context.CancelFunc, done <-chan int) {
	t.Helper()
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("GRPC_ADDR", "127.0.0.1:0")
	t.Setenv("DATABASE_URL", "postgres://u@127.0.0.1:1/db?sslmode=disable&connect_timeout=1")
	t.Setenv("MEMCACHED_SERVERS", "127.0.0.1:1")
	for k, v := range env {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	logs = make(lines, 100)
	exit := make(chan int, 1)
	go func() { exit <- run(ctx, []string{"serve"}, logs, io.Discard) }()
	if err := json.Unmarshal([]byte(waitLine(t, logs, `"msg":"listening"`)), &listening); err != nil {
		t.Fatal(err)
	}
	return listening, logs, cancel, exit
}

// TestServeDrainClosesConnections: once the shutdown delay has begun, a
// keep-alive connection (opened before, or new) gets one response with
// Connection: close and is then closed; before, connections are kept alive.
// The idle connection is answered, not dropped: a request sent on it as
// draining begins is not lost.
func TestServeDrainClosesConnections(t *testing.T) {
	listening, logs, cancel, done := startServe(t, map[string]string{"SHUTDOWN_DELAY": "5s"})
	dial := func() (net.Conn, *bufio.Reader) {
		t.Helper()
		c, err := net.DialTimeout("tcp", listening.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}
	// get sends GET /livez on c and returns whether the response says the server closes c.
	get := func(c net.Conn, r *bufio.Reader) bool {
		t.Helper()
		if _, err := io.WriteString(c, "GET /livez HTTP/1.1\r\nHost: app\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /livez: %d", resp.StatusCode)
		}
		return resp.Close
	}
	// closed reports whether the server closes c within a second: well inside the delay.
	closed := func(c net.Conn, r *bufio.Reader) bool {
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, err := r.ReadByte()
		return errors.Is(err, io.EOF)
	}

	idle, idleR := dial()
	for i := range 2 {
		if get(idle, idleR) {
			t.Fatalf("request %d before draining: Connection: close", i+1)
		}
	}

	cancel() // as SIGTERM does
	waitLine(t, logs, "shutdown: draining")
	if !get(idle, idleR) {
		t.Error("on a keep-alive connection from before, a response while draining has no Connection: close")
	}
	if !closed(idle, idleR) {
		t.Error("a keep-alive connection from before stays open after its first response while draining")
	}
	c, r := dial()
	if !get(c, r) {
		t.Error("a response while draining has no Connection: close")
	}
	if !closed(c, r) {
		t.Error("the connection stays open after its first response while draining")
	}
	if code := <-done; code != 0 {
		t.Errorf("serve exited %d", code)
	}
}

// TestServeDeadlines: HTTP_READ_TIMEOUT bounds an API request whose body
// does not come (408, the connection closed), while a probe that announces a
// body it never sends is answered at once; neither waits for the other's bound.
func TestServeDeadlines(t *testing.T) {
	// Bounds that machine load cannot break: the API's answer comes no sooner
	// than its read timeout (load only delays), and the probe's before it (a
	// probe that waited for the body would take the whole read timeout; 2 s
	// is far more than a loaded machine adds to one request).
	const readTimeout = 2 * time.Second
	listening, _, cancel, done := startServe(t, map[string]string{"HTTP_READ_TIMEOUT": readTimeout.String(), "SHUTDOWN_DELAY": "0s"})
	tests := []struct {
		name, request string
		status        int
		min, max      time.Duration
	}{
		{"api body never sent", "POST /api/links HTTP/1.1\r\nHost: app\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{\"url\":", 408, readTimeout - 50*time.Millisecond, 0},
		{"probe body never sent", "GET /livez HTTP/1.1\r\nHost: app\r\nContent-Length: 50\r\n\r\n", 200, 0, readTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", listening.Addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(readTimeout + 10*time.Second))
			start := time.Now()
			if _, err := io.WriteString(c, tt.request); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !resp.Close {
				t.Errorf("got %d, Connection: close %v; want %d and close", resp.StatusCode, resp.Close, tt.status)
			}
			t.Logf("answered %d after %s", resp.StatusCode, took.Round(time.Millisecond))
			if took < tt.min || tt.max > 0 && took >= tt.max {
				t.Errorf("answered after %s, want at least %s and less than %s (0: any)", took, tt.min, tt.max)
			}
		})
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exited %d", code)
	}
}

// TestConfigErrorsHideSecrets: no malformed value of a URL-bearing variable
// shows up in the configuration error, whichever check it fails.
func TestConfigErrorsHideSecrets(t *testing.T) {
	values := map[string][]string{
		"DATABASE_URL": {"postgres://u:secret@h:notaport/db", "postgres://u:secret@h/db?sslmode=maybe", "host=h password=secret port=x"},
		"EXTRA_DATABASE_URLS": {
			"replica:postgres://u:secret@h/db", // a malformed list: the ParseError branch
			"replica=postgres://u:secret@h:99999/db",
			"postgres://u:secret@h/db=postgres://h/db", // the URL where the name goes
			"=postgres://u:secret@h/db",
			"a=postgres://h/db,secret",
		},
	}
	for _, name := range slices.Sorted(maps.Keys(values)) {
		for _, v := range values[name] {
			t.Run(name+"="+v, func(t *testing.T) {
				t.Setenv(name, v)
				var stdout, stderr bytes.Buffer
				code := run(context.Background(), []string{"serve"}, &stdout, &stderr)
				if code != 2 {
					t.Errorf("exit %d, want 2; stderr %q", code, stderr.String())
				}
				if !strings.HasPrefix(stderr.String(), "app: "+name+": ") {
					t.Errorf("stderr %q does not name %s", stderr.String(), name)
				}
				if strings.Contains(stderr.String()+stdout.String(), "secret") {
					t.Errorf("the output shows the secret: %q", stderr.String())
				}
			})
		}
	}
}

// TestAddressErrors: a listen or server address that cannot work exits 2 at
// start-up naming the variable.
func TestAddressErrors(t *testing.T) {
	tests := []struct {
		name, value string
		ok          bool
	}{
		{"HTTP_ADDR", ":8080", true},
		{"HTTP_ADDR", "127.0.0.1:8080", true},
		{"HTTP_ADDR", "[::1]:8080", true},
		{"HTTP_ADDR", "localhost:65535", true},
		{"HTTP_ADDR", "127.0.0.1:99999", false},
		{"HTTP_ADDR", "256.1.1.1:80", false},
		{"HTTP_ADDR", "1.2.3:80", false},
		{"HTTP_ADDR", ":http", false},
		{"HTTP_ADDR", ":-1", false},
		{"HTTP_ADDR", "a b:80", false},
		{"HTTP_ADDR", "8080", false},
		{"MEMCACHED_SERVERS", "memcached:11211", true},
		{"MEMCACHED_SERVERS", "a:1,10.0.0.2:11211", true},
		{"MEMCACHED_SERVERS", "/run/memcached.sock", true},
		{"MEMCACHED_SERVERS", "notahostport", false},
		{"MEMCACHED_SERVERS", "a:1,notahostport", false},
		{"MEMCACHED_SERVERS", ":11211", false},
		{"MEMCACHED_SERVERS", "memcached:0", false},
		{"MEMCACHED_SERVERS", "memcached:99999", false},
		{"MEMCACHED_SERVERS", "300.0.0.1:11211", false},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			t.Setenv(tt.name, tt.value)
			_, err := loadConfig()
			if (err == nil) != tt.ok {
				t.Fatalf("loadConfig() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !strings.HasPrefix(err.Error(), tt.name+": ") {
				t.Errorf("error %q does not begin with %s", err, tt.name)
			}
		})
	}
}

// TestServeAdminAddrTaken: when ADMIN_ADDR cannot be listened on, serve fails
// before the API has served anything: it never logs "listening", and its
// port is closed again.
func TestServeAdminAddrTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	api, err := net.Listen("tcp", "127.0.0.1:0") // a free port for the API, known beforehand
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := api.Addr().String()
	api.Close()
	t.Setenv("HTTP_ADDR", apiAddr)
	t.Setenv("GRPC_ADDR", "127.0.0.1:0")
	t.Setenv("ADMIN_ADDR", taken.Addr().String())
	t.Setenv("DATABASE_URL", "postgres://u@127.0.0.1:1/db?sslmode=disable&connect_timeout=1")
	t.Setenv("MEMCACHED_SERVERS", "127.0.0.1:1")
	var logs bytes.Buffer
	if code := run(t.Context(), []string{"serve"}, &logs, io.Discard); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(logs.String(), "listen for admin") {
		t.Errorf("the log does not say the admin listen failed:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), `"msg":"listening"`) {
		t.Errorf("the API served before the admin listener failed:\n%s", logs.String())
	}
	if c, err := net.DialTimeout("tcp", apiAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("HTTP_ADDR %s still accepts connections after serve returned", apiAddr)
	}
}
