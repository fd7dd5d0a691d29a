package rules_test

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gok8s/gok8s/k8s/rules"
)

// The monitoring component, its rule files (*.rules.yaml) and their promtool
// tests (*_test.yaml), relative to this directory.
const (
	componentDir = "../components/monitoring"
	rulesDir     = componentDir + "/rules"
	readme       = "../../README.md"
)

// ruleFiles reads every rule file of rulesDir, by file name.
func ruleFiles(t *testing.T) map[string]*rules.File {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(rulesDir, "*.rules.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no rule files in %s (%v)", rulesDir, err)
	}
	out := map[string]*rules.File{}
	for _, p := range paths {
		f, err := rules.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = f
	}
	return out
}

// allRules returns every rule of every rule file, in file name order.
func allRules(t *testing.T) []rules.Rule {
	t.Helper()
	files := ruleFiles(t)
	var out []rules.Rule
	for _, name := range slices.Sorted(maps.Keys(files)) {
		out = append(out, files[name].Rules()...)
	}
	return out
}

// unitTestFiles reads every promtool test file of rulesDir, by file name.
func unitTestFiles(t *testing.T) map[string]*rules.UnitTests {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(rulesDir, "*_test.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no promtool test files in %s (%v)", rulesDir, err)
	}
	out := map[string]*rules.UnitTests{}
	for _, p := range paths {
		u, err := rules.ReadUnitTests(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = u
	}
	return out
}

// alertKey names one alerting rule: its name and its labels that tell it
// from other rules of that name (an SLO's burn-rate pairs: severity, long,
// short).
func alertKey(r rules.Rule) string {
	var b strings.Builder
	b.WriteString(r.Alert)
	for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
		b.WriteString(" " + k + "=" + r.Labels[k])
	}
	return b.String()
}

// TestEveryAlertTested: each alerting rule is expected firing in some
// promtool test (an expected alert that carries all of the rule's labels),
// and each alert name is expected silent in some test; every rule file is
// tested and every test names rule files that exist.
func TestEveryAlertTested(t *testing.T) {
	files := ruleFiles(t)
	fires, silent := map[string]int{}, map[string]int{}
	tested := map[string]bool{}
	for name, u := range unitTestFiles(t) {
		for _, rf := range u.RuleFiles {
			if files[rf] == nil {
				t.Errorf("%s: rule file %s does not exist in %s", name, rf, rulesDir)
			}
			tested[rf] = true
		}
		for _, tc := range u.Tests {
			for _, at := range tc.AlertRuleTest {
				if len(at.ExpAlerts) == 0 {
					silent[at.Alertname]++
					continue
				}
				for _, r := range allRules(t) {
					if r.Alert != at.Alertname {
						continue
					}
					for _, exp := range at.ExpAlerts {
						match := true
						for k, v := range r.Labels {
							match = match && exp.ExpLabels[k] == v
						}
						if match {
							fires[alertKey(r)]++
						}
					}
				}
			}
		}
	}
	n := 0
	for name, f := range files {
		if !tested[name] {
			t.Errorf("no promtool test file loads %s", name)
		}
		for _, r := range f.Rules() {
			if r.Alert == "" {
				continue
			}
			n++
			if fires[alertKey(r)] == 0 {
				t.Errorf("%s: no promtool test expects %s firing", name, alertKey(r))
			}
			if silent[r.Alert] == 0 {
				t.Errorf("%s: no promtool test expects %s silent", name, r.Alert)
			}
		}
	}
	t.Logf("%d alerting rules, each expected firing and silent (%d firing and %d silent expectations)", n, sum(fires), sum(silent))
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// headingAnchor returns GitHub's anchor of a Markdown heading's text.
func headingAnchor(text string) string {
	s := strings.ToLower(strings.TrimSpace(text))
	s = regexp.MustCompile(`[^a-z0-9 _-]`).ReplaceAllString(s, "")
	return strings.ReplaceAll(s, " ", "-")
}

// TestAlertsDocumented: every alert has a severity (critical pages, warning
// opens a ticket), a summary, a description and a runbook_url pointing at a
// heading of README's "Alerts" section, and that section has no heading for
// an alert that does not exist.
func TestAlertsDocumented(t *testing.T) {
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Alerts\n")
	if !ok {
		t.Fatal("README has no \"## Alerts\" section")
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#### (.+)$`).FindAllStringSubmatch(section, -1) {
		anchors[headingAnchor(m[1])] = true
	}
	const base = "https://github.com/gok8s/gok8s/blob/main/README.md#"
	documented := map[string]bool{}
	for _, r := range allRules(t) {
		if r.Alert == "" {
			continue
		}
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: severity %q, want critical or warning", alertKey(r), s)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s", alertKey(r), a)
			}
		}
		for a := range r.Annotations {
			if a != "summary" && a != "description" && a != "runbook_url" {
				t.Errorf("%s: annotation %s, want only summary, description and runbook_url", alertKey(r), a)
			}
		}
		url := r.Annotations["runbook_url"]
		anchor, ok := strings.CutPrefix(url, base)
		switch {
		case !ok:
			t.Errorf("%s: runbook_url %s is not under %s", alertKey(r), url, base)
		case anchor != strings.ToLower(r.Alert):
			t.Errorf("%s: runbook_url anchor %s, want #%s", alertKey(r), anchor, strings.ToLower(r.Alert))
		case !anchors[anchor]:
			t.Errorf("%s: README's Alerts section has no heading \"#### %s\" for its runbook_url", alertKey(r), r.Alert)
		}
		documented[strings.ToLower(r.Alert)] = true
	}
	for a := range anchors {
		if !documented[a] {
			t.Errorf("README's Alerts section has a heading #%s that no alert links to", a)
		}
	}
	t.Logf("%d alerts documented in README", len(documented))
}
