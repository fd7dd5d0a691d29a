package probes

import "testing"

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"dial tcp 10.0.0.1:5432: refused", "dial tcp 10.0.0.1:5432: refused"},
		{"postgres://u:pw@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"host=h password=pw user=u", "host=h password=xxxxx user=u"},
		{"host=h password='p w' user=u", "host=h password=xxxxx user=u"},
		{"PASSWORD = pw", "PASSWORD = xxxxx"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
