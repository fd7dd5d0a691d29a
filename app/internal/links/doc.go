// Package links is the reference service's one resource: short links.
//
// A [Link] maps a slug to a URL. [Store] keeps links in PostgreSQL, [Cache] puts
// memcached in front of it as a read-through cache that is never staler than
// the last write (leases and tombstones; its doc says what that guarantees and
// costs). [Service] is the API over a [Repository]: it validates requests,
// generates slugs and classifies errors, once for both transports. [Handler]
// serves it as a JSON API plus the redirects:
//
//	POST   /api/links          create; 201, 400, 408, 409 (slug taken), 413, 415, 503
//	GET    /api/links          list by slug; ?limit=1..100 (20) and ?after=<slug>; 200, 400, 503
//	GET    /api/links/{slug}   read; 200, 404, 503
//	PUT    /api/links/{slug}   change the URL; 200, 400, 404, 408, 413, 415, 503
//	DELETE /api/links/{slug}   delete; 204, 404, 503
//	GET    /{slug}             302 to the URL; 404, 503
//
// and [GRPCServer] serves it over gRPC as links.v1.LinkService
// (api/links/v1/links.proto), with INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS
// and UNAVAILABLE where HTTP answers 400, 404, 409 and 503.
//
// A path slug that no link can have is 404 and a bad cursor 400, before the
// repository is asked. A body is one JSON object and nothing after it but white
// space. Errors are JSON objects {"error": "..."} that quote nothing from the
// request but a short field name. A cache failure never fails a request: it
// falls back to the database (see [Cache] for what that costs and the bound on
// staleness it keeps), and a memcached server known to be down is skipped at
// no cost by its circuit breaker. A database that cannot be reached
// ([ErrUnavailable]) is 503 {"error":"store unavailable"} (UNAVAILABLE) with
// Retry-After ([WithRetryAfter]), logged at WARN; reads the cache holds still
// answer. Any other database failure is 500 (INTERNAL), logged at ERROR.
// Either is logged once per kind and then counted, one line per 10 s, and no
// response carries the driver's text.
// [WithTracerProvider] makes the cache trace each memcached call of a traced
// request as a child span (gomemcache has no instrumentation of its own).
//
// The service redirects to any http(s) URL and has no authentication: it is a
// reference app, not a public shortener. A fork adds authentication for writes
// in [NewHandler], around the POST, PUT and DELETE routes, and in [GRPCServer]
// (or an interceptor) for CreateLink, UpdateLink and DeleteLink.
package links
