package main

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// hostName is a DNS name: dot-separated labels of letters, digits and inner '-'.
var hostName = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$`)

// validateHostPort returns an error naming the variable name unless value is
// host:port with a numeric port from 0 to 65535 and a host that is empty (every
// address), an IP address or a DNS name. It never quotes more than 64 bytes
// of value.
func validateHostPort(name, value string) error {
	host, port, err := net.SplitHostPort(value)
	if err != nil {
		return fmt.Errorf("%s: %s is not host:port", name, quoteShort(value))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || port[0] == '+' {
		return fmt.Errorf("%s: the port of %s is not a number from 0 to 65535", name, quoteShort(value))
	}
	if host != "" && !validHost(host) {
		return fmt.Errorf("%s: the host of %s is neither an IP address nor a host name", name, quoteShort(value))
	}
	return nil
}

// validateServer is validateHostPort for an address to dial: the host may not be
// empty nor the port 0. An absolute path (a Unix socket) is also accepted.
func validateServer(name, value string) error {
	if strings.HasPrefix(value, "/") {
		return nil
	}
	if err := validateHostPort(name, value); err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(value)
	if host == "" || port == "0" || strings.Trim(port, "0") == "" {
		return fmt.Errorf("%s: %s must name a host and a port from 1 to 65535", name, quoteShort(value))
	}
	return nil
}

func validHost(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if strings.Trim(host, "0123456789.") == "" {
		return false // looks like an IPv4 address but is not one (256.1.1.1, 1.2.3)
	}
	return len(host) <= 253 && hostName.MatchString(host)
}

// quoteShort quotes s, cut to 64 bytes.
func quoteShort(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "…"
	}
	return strconv.Quote(s)
}
