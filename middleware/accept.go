package middleware

import (
	"net/http"
	"strconv"
	"strings"
)

// wantsJSON reports whether r's Accept header asks for JSON: application/json
// (or application/*) is named with a q above 0, at least as high as text/plain
// gets. text/plain gets the q of its most specific range (text/plain, text/*,
// */*), or, when none covers it, the highest q of the other ranges; so */*
// alone, a browser's header and "text/html, application/json;q=0.1" get text.
// A range with a q that does not parse is ignored. It does not allocate.
func wantsJSON(r *http.Request) bool {
	accept := r.Header["Accept"]
	if len(accept) == 0 {
		return false
	}
	var json, text ranked
	otherQ := 0.0
	for _, line := range accept {
		for rest := line; rest != ""; {
			var mr string
			mr, rest, _ = strings.Cut(rest, ",")
			typ, q, ok := mediaRange(mr)
			if !ok {
				continue
			}
			switch {
			case strings.EqualFold(typ, "application/json"):
				json.offer(q, 2)
			case strings.EqualFold(typ, "application/*"):
				json.offer(q, 1)
			case strings.EqualFold(typ, "text/plain"):
				text.offer(q, 3)
			case strings.EqualFold(typ, "text/*"):
				text.offer(q, 2)
			case typ == "*/*":
				text.offer(q, 1)
			default:
				otherQ = max(otherQ, q)
			}
		}
	}
	if text.rank == 0 {
		text.q = otherQ
	}
	return json.rank > 0 && json.q > 0 && json.q >= text.q
}

// ranked is the q of the most specific media range seen for a type: rank 0
// for none, higher for more specific.
type ranked struct {
	q    float64
	rank int
}

// offer takes q if rank is more specific than the range seen so far.
func (r *ranked) offer(q float64, rank int) {
	if rank > r.rank {
		r.q, r.rank = q, rank
	}
}

// mediaRange returns the type/subtype of one Accept element and its q (1 when
// absent); ok is false for an empty element or a q that does not parse.
func mediaRange(s string) (typ string, q float64, ok bool) {
	typ, params, _ := strings.Cut(s, ";")
	typ = strings.TrimSpace(typ)
	if typ == "" {
		return "", 0, false
	}
	q = 1
	for params != "" {
		var param string
		param, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(param, "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || f > 1 {
			return "", 0, false
		}
		q = f
	}
	return typ, q, true
}
