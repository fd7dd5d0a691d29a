package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gok8s/gok8s/e2e"
)

// compose returns the compose command: "docker compose" where the plugin is
// installed, else docker-compose, as the Makefile picks it.
func compose(t *testing.T) []string {
	t.Helper()
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("neither docker compose nor docker-compose is installed, and CI is set")
	}
	t.Skip("neither docker compose nor docker-compose is installed; install one and run `make test`")
	return nil
}

// TestComposeStack builds the image with `make run`, brings the compose stack
// up, and watches /readyz while the postgres service stops and starts.
func TestComposeStack(t *testing.T) {
	t.Parallel()
	e2e.RequireDocker(t)
	cmd := compose(t)
	port, jaegerPort := e2e.FreePort(t), e2e.FreePort(t)
	env := append(os.Environ(),
		"COMPOSE_PROJECT_NAME=gok8s-e2e-"+port,
		"APP_PORT="+port,
		"JAEGER_PORT="+jaegerPort,
		"IMG=gok8s:e2e-"+port,
	)
	run := func(name string, args ...string) string {
		t.Helper()
		c := exec.Command(name, args...)
		c.Dir, c.Env = "..", env
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		c := exec.Command("make", "down")
		c.Dir, c.Env = "..", env
		if out, err := c.CombinedOutput(); err != nil {
			t.Errorf("make down: %v\n%s", err, out)
		}
		_ = exec.Command("docker", "rmi", "gok8s:e2e-"+port).Run()
	})

	start := time.Now()
	out := run("make", "run")
	t.Logf("make run: ready after %s", time.Since(start).Round(time.Second))
	composeTrace(t, "http://127.0.0.1:"+port, jaegerPort, out)

	a := &app{t: t, url: "http://127.0.0.1:" + port, client: &http.Client{Timeout: 5 * time.Second}, exited: make(chan struct{})}
	if code, body, _ := a.get("/readyz?verbose"); code != 200 || !strings.Contains(body, "[+]memcached/memcached:11211 ok") {
		t.Fatalf("/readyz?verbose: %d\n%s", code, body)
	}
	live := sample(a, "/livez")
	run(cmd[0], append(cmd[1:], "stop", "postgres")...)
	down := a.waitStatus("/readyz", 503, detectWait)
	t.Logf("compose: postgres stopped, /readyz 503 after %s", down.Round(time.Millisecond))
	run(cmd[0], append(cmd[1:], "start", "postgres")...)
	up := a.waitStatus("/readyz", 200, 60*time.Second)
	t.Logf("compose: postgres started, /readyz 200 after %s", up.Round(time.Millisecond))
	live.end(t, "/livez")

	var health string
	if err := e2e.Poll(t.Context(), 60*time.Second, func(context.Context) error {
		health = strings.TrimSpace(run("docker", "inspect", "-f", "{{.State.Health.Status}}", containerName(t, cmd, env)))
		if health != "healthy" {
			return fmt.Errorf("app container health %q", health)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// containerName returns the name of the compose service app's container.
func containerName(t *testing.T, cmd, env []string) string {
	t.Helper()
	c := exec.Command(cmd[0], append(cmd[1:], "ps", "-q", "app")...)
	c.Dir, c.Env = "..", env
	out, err := c.Output()
	if err != nil {
		t.Fatalf("compose ps: %v", err)
	}
	return strings.TrimSpace(string(out))
}
