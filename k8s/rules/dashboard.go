package rules

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Query is one PromQL query of a dashboard: a panel's target, or the
// selector of a template variable's label_values().
type Query struct {
	Where string // the panel's title and the target's refId, or "variable <name>"
	Expr  string // as written, with Grafana's $variables
}

// dashboard is the part of a Grafana dashboard's JSON that holds queries.
type dashboard struct {
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"` // a string, or {"query": "..."}
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"` // a collapsed row's
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

var labelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// ReadDashboard returns the title and every PromQL query of the Grafana
// dashboard JSON at path: each panel target's expr (rows' panels too) and
// the selector of each query variable's label_values(selector, label).
func ReadDashboard(path string) (string, []Query, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return "", nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) != "" {
					out = append(out, Query{Where: fmt.Sprintf("panel %q, target %s", p.Title, t.RefID), Expr: t.Expr})
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		sm := labelValues.FindStringSubmatch(q)
		if sm == nil {
			return "", nil, fmt.Errorf("%s: variable %s: query %q is not label_values(selector, label)", path, v.Name, q)
		}
		out = append(out, Query{Where: "variable " + v.Name, Expr: sm[1]})
	}
	return d.Title, out, nil
}
