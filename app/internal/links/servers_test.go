package links

import (
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestChecksum: the key's server is the one memcache.ServerList would pick:
// CRC-32 (IEEE) of the key, modulo the number of servers.
func TestChecksum(t *testing.T) {
	keys := []string{"", "link:go", "link:" + strings.Repeat("x", 64), "gok8s:breaker:0"}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		b := make([]byte, rnd.IntN(80))
		for i := range b {
			b[i] = byte(rnd.IntN(256))
		}
		keys = append(keys, string(b))
	}
	for _, k := range keys {
		if got, want := checksum(k), crc32.ChecksumIEEE([]byte(k)); got != want {
			t.Fatalf("checksum(%q) = %#x, want %#x", k, got, want)
		}
	}
}
