package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gok8s/gok8s/e2e"
)

// binDir holds the app binary, built once per test run by appBinary.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gok8s-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var buildOnce = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(binDir, "app")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	// Built in the service's own module (the parent directory), with its go.mod.
	cmd := exec.Command("go", append(args, "./app")...)
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
})

// appBinary returns the path of the app binary, building it on first use.
func appBinary(t *testing.T) string {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// app is one running app process.
type app struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	grpc   string // GRPC_ADDR: host:port on loopback
	logs   *e2e.SyncBuffer
	exited chan struct{}
	err    error // the process's exit error, once exited is closed
	client *http.Client
}

// startApp starts the app binary with env (NAME=value) on a free loopback port
// and waits until /livez answers 200. It is stopped when t ends.
func startApp(t *testing.T, env ...string) *app {
	t.Helper()
	a := launchApp(t, env...)
	a.waitLive()
	return a
}

// launchApp starts the app binary without waiting for it.
func launchApp(t *testing.T, env ...string) *app {
	t.Helper()
	port, grpcPort := e2e.FreePort(t), e2e.FreePort(t)
	cmd := exec.Command(appBinary(t))
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HTTP_ADDR=127.0.0.1:" + port,
		"GRPC_ADDR=127.0.0.1:" + grpcPort,
		"LOG_FORMAT=text",
		"SHUTDOWN_DELAY=0s",
		"SHUTDOWN_TIMEOUT=5s",
	}, env...)
	a := &app{t: t, cmd: cmd, url: "http://127.0.0.1:" + port, grpc: "127.0.0.1:" + grpcPort, logs: &e2e.SyncBuffer{}, exited: make(chan struct{}),
		client: &http.Client{Timeout: 10 * time.Second}}
	cmd.Stdout, cmd.Stderr = a.logs, a.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		a.err = cmd.Wait()
		close(a.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-a.exited
		}
		if t.Failed() {
			t.Logf("app %s log:\n%s", a.url, a.logs.String())
		}
	})
	return a
}

func (a *app) waitLive() {
	a.t.Helper()
	err := e2e.Poll(a.t.Context(), 60*time.Second, func(ctx context.Context) error {
		select {
		case <-a.exited:
			return e2e.Permanent(fmt.Errorf("app exited: %w", a.err))
		default:
		}
		if code, _, _ := a.tryGet(ctx, "/livez"); code != 200 {
			return fmt.Errorf("/livez: %d", code)
		}
		return nil
	})
	if err != nil {
		a.t.Fatalf("app did not come up: %v\n%s", err, a.logs.String())
	}
}

// tryGet GETs path and returns the status (0 on a transport error), the body
// and how long the answer took.
func (a *app) tryGet(ctx context.Context, path string) (int, string, time.Duration) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url+path, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, err.Error(), time.Since(start)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), time.Since(start)
}

// get GETs path and fails the test on a transport error.
func (a *app) get(path string) (int, string, time.Duration) {
	a.t.Helper()
	code, body, d := a.tryGet(a.t.Context(), path)
	if code == 0 {
		a.t.Fatalf("GET %s: %s", path, body)
	}
	return code, body, d
}

// waitStatus polls path until it answers want, fails the test after limit, and
// returns how long it took.
func (a *app) waitStatus(path string, want int, limit time.Duration) time.Duration {
	a.t.Helper()
	start := time.Now()
	var last string
	err := e2e.Poll(a.t.Context(), limit, func(ctx context.Context) error {
		code, body, _ := a.tryGet(ctx, path)
		if code != want {
			last = fmt.Sprintf("%d %q", code, body)
			return fmt.Errorf("GET %s: %s, want %d", path, last, want)
		}
		return nil
	})
	if err != nil {
		a.t.Fatal(err)
	}
	return time.Since(start)
}

// waitLog polls the app's log until it contains s.
func (a *app) waitLog(s string, limit time.Duration) {
	a.t.Helper()
	err := e2e.Poll(a.t.Context(), limit, func(context.Context) error {
		if !strings.Contains(a.logs.String(), s) {
			return fmt.Errorf("log has no %q", s)
		}
		return nil
	})
	if err != nil {
		a.t.Fatalf("%v\n%s", err, a.logs.String())
	}
}

// sampler GETs a path over and over until stopped, and counts the answers.
type sampler struct {
	stop     chan struct{}
	done     chan struct{}
	samples  int
	failures []string
}

func sample(a *app, path string) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			code, body, _ := a.tryGet(context.Background(), path)
			s.samples++
			if code != 200 {
				s.failures = append(s.failures, fmt.Sprintf("%d %q", code, body))
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// end stops the sampler and fails t if any answer was not 200.
func (s *sampler) end(t *testing.T, path string) {
	t.Helper()
	close(s.stop)
	<-s.done
	if len(s.failures) > 0 {
		t.Errorf("%s failed %d of %d times: %v", path, len(s.failures), s.samples, s.failures)
	}
	t.Logf("%s: %d samples, all 200", path, s.samples)
}
