package rules_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// defaultPrometheusImage is the image whose promtool checks the rules, unless
// PROMETHEUS_IMAGE names another: the release k8s/components/prometheus runs.
const defaultPrometheusImage = "prom/prometheus:v3.16.0"

// needDocker skips the test without a Docker engine, or fails it in CI.
func needDocker(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("promtool runs in the Prometheus image and needs Docker: %v\n%s", err, out)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// promtool runs promtool of PROMETHEUS_IMAGE with args in a container whose
// working directory holds a copy of rulesDir (docker cp: no bind mount, so
// that a remote or rootless engine works too), and returns its output.
func promtool(t *testing.T, args ...string) (string, error) {
	t.Helper()
	image := os.Getenv("PROMETHEUS_IMAGE")
	if image == "" {
		image = defaultPrometheusImage
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	docker := func(args ...string) (string, error) {
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, "docker", args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	if _, err := docker("image", "inspect", image); err != nil {
		if out, err := docker("pull", image); err != nil {
			return out, fmt.Errorf("image %s: %w", image, err)
		}
	}
	name := fmt.Sprintf("gok8s-promtool-%d", time.Now().UnixNano())
	create := append([]string{"create", "--name", name, "--network", "none", "--workdir", "/rules",
		"--entrypoint", "/bin/promtool", image}, args...)
	if out, err := docker(create...); err != nil {
		return out, fmt.Errorf("docker create: %w", err)
	}
	defer func() { _, _ = exec.Command("docker", "rm", "-f", name).CombinedOutput() }()
	if out, err := docker("cp", rulesDir+"/.", name+":/rules"); err != nil {
		return out, fmt.Errorf("docker cp: %w", err)
	}
	out, err := docker("start", "--attach", name)
	t.Logf("promtool %s (%s):\n%s", strings.Join(args, " "), image, strings.TrimSpace(out))
	return out, err
}

// TestPromtool: `promtool check rules` accepts every rule file (syntax,
// PromQL, templates, no duplicate rules) and `promtool test rules` passes
// every unit test of the rules, with the promtool of the Prometheus release
// the cluster runs.
func TestPromtool(t *testing.T) {
	needDocker(t)
	start := time.Now()
	ruleNames := slices.Sorted(maps.Keys(ruleFiles(t)))
	out, err := promtool(t, append([]string{"check", "rules"}, ruleNames...)...)
	if err != nil || strings.Count(out, "SUCCESS") != len(ruleNames) {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	testNames := slices.Sorted(maps.Keys(unitTestFiles(t)))
	out, err = promtool(t, append([]string{"test", "rules"}, testNames...)...)
	if err != nil || strings.Count(out, "SUCCESS") != len(testNames) || strings.Contains(out, "FAILED") {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	t.Logf("promtool checked %d rule files and passed %d test files in %s", len(ruleNames), len(testNames), time.Since(start).Round(100*time.Millisecond))
}
