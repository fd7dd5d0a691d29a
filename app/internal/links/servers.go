package links

import (
	"hash/crc32"
)

// serverList is the list of a Cache's servers. A key's server is picked by
// the key's CRC-32, as memcache.ServerList does, so that replicas and other
// clients of the same servers agree.
type serverList []string

// pick returns the index of key's server; s must not be empty.
func (s serverList) pick(key string) int {
	return int(checksum(key) % uint32(len(s))) //nolint:gosec // len(s) is a handful of servers
}

// checksum returns crc32.ChecksumIEEE of key without converting it to a byte
// slice, which would allocate on every request.
func checksum(key string) uint32 {
	crc := ^uint32(0)
	for i := range len(key) {
		crc = crc32.IEEETable[(crc^uint32(key[i]))&0xff] ^ crc>>8
	}
	return ^crc
}

// A server is one memcached server as a Cache sees it: its client (resolving
// the server's host name at each dial, see probes.MemcachedServer), its
// circuit breaker (breaker.go) and the tombstones it has not taken yet
// (repair.go).
type server struct {
	addr   string
	client client
	breaker
	repairs
}

// newServers returns a server for each address of list, in order, with the
// client dial returns for it.
func newServers(list serverList, dial func(addr string) client) []*server {
	servers := make([]*server, len(list))
	for i, a := range list {
		servers[i] = &server{addr: a, client: dial(a)}
	}
	return servers
}
