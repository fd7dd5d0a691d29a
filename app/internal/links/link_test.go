package links

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	slugs := map[string]bool{
		"go": true, "A-b_9": true, strings.Repeat("a", 64): true,
		"": false, strings.Repeat("a", 65): false, "a/b": false, "a b": false, "é": false,
		"api": false, "livez": false, "healthz": false, "readyz": false,
	}
	for s, ok := range slugs {
		if err := ValidateSlug(s); (err == nil) != ok {
			t.Errorf("ValidateSlug(%q) = %v, want ok=%v", s, err, ok)
		}
	}
	urls := map[string]bool{
		"https://go.dev": true, "http://localhost:8080/x?y=1#z": true,
		"": false, "go.dev": false, "ftp://go.dev": false, "https://": false, "https://%zz": false,
		"https://go.dev/" + strings.Repeat("x", MaxURLLength): false,
	}
	for u, ok := range urls {
		if err := ValidateURL(u); (err == nil) != ok {
			t.Errorf("ValidateURL(%q) = %v, want ok=%v", u, err, ok)
		}
	}
}
