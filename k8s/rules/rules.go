package rules

import (
	"bytes"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// File is a Prometheus rule file: `groups:` of recording and alerting rules.
type File struct {
	Groups []Group `yaml:"groups"`
}

// Group is a named list of rules, evaluated together.
type Group struct {
	Name  string `yaml:"name"`
	Rules []Rule `yaml:"rules"`
}

// Rule is a recording rule (Record set) or an alerting rule (Alert set).
type Rule struct {
	Record      string            `yaml:"record,omitempty"`
	Alert       string            `yaml:"alert,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// Name returns the rule's alert name, or its recorded series' name.
func (r Rule) Name() string {
	if r.Alert != "" {
		return r.Alert
	}
	return r.Record
}

// ReadFile reads the rule file at path; it rejects fields a rule file does
// not have.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	if err := decodeStrict(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// Rules returns every rule of every group of f, in order.
func (f *File) Rules() []Rule {
	var out []Rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

// UnitTests is a promtool test file (`promtool test rules`), as far as the
// tests here read it: which alert is expected firing, with which labels, at
// which evaluation time.
type UnitTests struct {
	RuleFiles          []string `yaml:"rule_files"`
	EvaluationInterval string   `yaml:"evaluation_interval"`
	Tests              []struct {
		Name          string `yaml:"name"`
		Interval      string `yaml:"interval"`
		InputSeries   []any  `yaml:"input_series"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// ReadUnitTests reads the promtool test file at path.
func ReadUnitTests(path string) (*UnitTests, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var u UnitTests
	if err := decodeStrict(b, &u); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &u, nil
}

// decodeStrict decodes YAML into v, failing on unknown fields.
func decodeStrict(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}
