package k8s_test

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// kubeScoreIgnored are the kube-score checks the manifests do not follow, by
// name; README ("kube-score") says why:
//   - container-image-pull-policy wants imagePullPolicy Always, so that a
//     moved tag is pulled again: production pins the image by digest, which
//     cannot move, and kind loads images into the nodes, where Always would
//     try a registry.
//   - deployment-has-host-podantiaffinity wants a podAntiAffinity on the
//     hostname: the app spreads its pods with topologySpreadConstraints over
//     nodes (hard) and zones (soft) instead, which also schedules more pods
//     than nodes.
var kubeScoreIgnored = []string{"container-image-pull-policy", "deployment-has-host-podantiaffinity"}

// TestKubeScore runs kube-score (pinned in tools/kube-score) on every overlay,
// as `kubectl kustomize <overlay> | kube-score score -` would, with only the
// checks of kubeScoreIgnored ignored: a CRITICAL finding fails the test,
// warnings are logged.
func TestKubeScore(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			var in bytes.Buffer
			for _, obj := range render(t, dir) {
				b, err := yaml.Marshal(obj.Object)
				if err != nil {
					t.Fatal(err)
				}
				in.WriteString("---\n")
				in.Write(b)
			}
			args := []string{"tool", "-modfile=../tools/kube-score/go.mod", "kube-score", "score", "--output-format", "ci"}
			for _, name := range kubeScoreIgnored {
				args = append(args, "--ignore-test", name)
			}
			cmd := exec.Command("go", append(args, "-")...)
			cmd.Stdin = &in
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			var critical, warning []string
			for line := range strings.SplitSeq(string(out), "\n") {
				switch {
				case strings.HasPrefix(line, "[CRITICAL]"):
					critical = append(critical, line)
				case strings.HasPrefix(line, "[WARNING]"):
					warning = append(warning, line)
				}
			}
			for _, w := range warning {
				t.Logf("kube-score: %s", w)
			}
			if len(critical) > 0 {
				t.Errorf("kube-score: %d critical:\n%s", len(critical), strings.Join(critical, "\n"))
			}
			// kube-score exits 1 when it finds something critical; any other
			// failure (it did not build, did not run, or failed without a
			// finding) is the test's.
			if _, exited := errors.AsType[*exec.ExitError](err); err != nil && (!exited || len(critical) == 0) {
				t.Fatalf("kube-score: %v\n%s%s", err, stderr.Bytes(), out)
			}
			if !strings.Contains(string(out), "[OK]") {
				t.Fatalf("kube-score scored nothing:\n%s%s", stderr.Bytes(), out)
			}
		})
	}
}
