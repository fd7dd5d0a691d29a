package middleware

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gok8s/gok8s/probes"
)

// writeOK writes 200 and the body "ok" without allocating. For GET it leaves
// Content-Type and Content-Length to the ResponseWriter, which net/http
// documents it derives from the body: "ok" is sniffed as text/plain;
// charset=utf-8, and its 2 bytes are counted. net/http copies the header map
// at WriteHeader and writes each entry, so the most frequent response carries
// two entries fewer. A HEAD writes no body, so both are set.
func (p *probeHandler) writeOK(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		h := w.Header()
		h["Content-Type"] = p.textType
		h["Content-Length"] = p.okLength
		w.WriteHeader(http.StatusOK)
		return
	}
	_, _ = w.Write(p.okBody)
}

// write writes status and a text/plain body.
func (p *probeHandler) write(w http.ResponseWriter, r *http.Request, status int, body string) {
	p.writeBody(w, r, status, p.textType, body)
}

// writeBody writes status and body, of Content-Type ctype.
func (p *probeHandler) writeBody(w http.ResponseWriter, r *http.Request, status int, ctype []string, body string) {
	h := w.Header()
	h["Content-Type"] = ctype
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body))
	}
}

// notFound is net/http's 404 body (http.NotFound), which Kubernetes' mux
// answers for p/.
const notFound = "404 page not found\n"

// verboseBody renders rep in the Kubernetes healthz grammar.
func (p *probeHandler) verboseBody(rep probes.Report) string {
	var b strings.Builder
	for _, res := range rep.Results {
		switch {
		case res.ExcludedWith != "":
			fmt.Fprintf(&b, "[+]%s excluded with %s: ok\n", res.Name, res.ExcludedWith)
		case res.Excluded:
			fmt.Fprintf(&b, "[+]%s excluded: ok\n", res.Name)
		case res.Err == nil && res.Optional:
			fmt.Fprintf(&b, "[+]%s ok (optional)\n", res.Name)
		case res.Err == nil:
			fmt.Fprintf(&b, "[+]%s ok\n", res.Name)
		case res.Optional:
			fmt.Fprintf(&b, "[-]%s failed: reason withheld (optional)\n", res.Name)
		default:
			fmt.Fprintf(&b, "[-]%s failed: reason withheld\n", res.Name)
		}
	}
	if len(rep.Unknown) > 0 {
		fmt.Fprintf(&b, "warn: %s\n", unknownWarning(rep.Unknown))
	}
	if rep.NotReady != nil {
		fmt.Fprintf(&b, "%s check failed\n", p.endpoint)
	} else {
		fmt.Fprintf(&b, "%s check passed\n", p.endpoint)
	}
	return b.String()
}

// unknownWarning is the warning about exclude names that match no check, in
// Kubernetes' words; the text body prefixes it with "warn: ".
func unknownWarning(unknown []string) string {
	quoted := make([]string, len(unknown))
	for i, u := range unknown {
		quoted[i] = strconv.Quote(u)
	}
	return "some health checks cannot be excluded: no matches for " + strings.Join(quoted, ",")
}

// jsonReport is the JSON form of a report.
type jsonReport struct {
	Status   string      `json:"status"` // "ok" or "failed"
	Message  string      `json:"message,omitempty"`
	Checks   []jsonCheck `json:"checks"`
	Warnings []string    `json:"warnings,omitempty"`
}

type jsonCheck struct {
	Name     string `json:"name"`
	Status   string `json:"status"` // "ok", "failed" or "excluded"
	Optional bool   `json:"optional,omitempty"`
}

func (p *probeHandler) jsonBody(rep probes.Report) string {
	doc := jsonReport{Status: "ok", Checks: make([]jsonCheck, 0, len(rep.Results))}
	if rep.NotReady != nil {
		doc.Status, doc.Message = "failed", rep.NotReady.Body()
	}
	for _, res := range rep.Results {
		c := jsonCheck{Name: res.Name, Status: "ok", Optional: res.Optional}
		switch {
		case res.Excluded:
			c.Status = "excluded"
		case res.Err != nil:
			c.Status = "failed"
		}
		doc.Checks = append(doc.Checks, c)
	}
	if len(rep.Unknown) > 0 {
		doc.Warnings = []string{unknownWarning(rep.Unknown)}
	}
	b, err := json.Marshal(doc)
	if err != nil { // cannot happen: the document holds only strings and bools
		return `{"status":"failed"}`
	}
	return string(b) + "\n"
}
