// Package e2e holds the end-to-end suites, which run the real app against real
// PostgreSQL and memcached containers and watch its probes, and the helpers they
// share with the app's own store and cache tests.
//
// The suites need a Docker engine. Without one they skip, saying how to run
// them, except when the environment variable CI is set: then they fail. Image
// names come from POSTGRES_IMAGE and MEMCACHED_IMAGE (defaults postgres:17-alpine
// and memcached:1.6-alpine), the same variables docker-compose.yml reads.
//
// Outage tests keep the app's address for a backend across a stop and start by
// pinning the container's host port: Docker gives a restarted container a new
// random port otherwise, and the app would go on dialing the old one.
package e2e
