package probes

import "regexp"

var (
	passwordParam = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|\S+)`)
	urlPassword   = regexp.MustCompile(`(://[^:/@\s]*:)[^@\s]*@`)
)

// Redact returns s with the passwords of connection strings (password=…) and of
// URLs (scheme://user:…@host) replaced by "xxxxx", for logging driver errors.
func Redact(s string) string {
	s = passwordParam.ReplaceAllString(s, "${1}xxxxx")
	return urlPassword.ReplaceAllString(s, "${1}xxxxx@")
}
