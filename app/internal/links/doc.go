// Package links is the reference service's one resource: short links.
//
// A [Link] maps a slug to a URL. [Store] keeps links in PostgreSQL, [Cache] puts
// memcached in front of it as a read-through cache that is never staler than
// the last write (leases and tombstones; its doc says what that guarantees and
// costs), and [Handler] serves them as a JSON API plus the redirects:
//
//	POST   /api/links          create; 201, 400, 408, 409 (slug taken), 413, 415
//	GET    /api/links          list by slug; ?limit=1..100 (20) and ?after=<slug>; 200, 400
//	GET    /api/links/{slug}   read; 200, 404
//	PUT    /api/links/{slug}   change the URL; 200, 400, 404, 408, 413, 415
//	DELETE /api/links/{slug}   delete; 204, 404
//	GET    /{slug}             302 to the URL; 404
//
// A path slug that no link can have is 404 and a bad cursor 400, before the
// repository is asked. A body is one JSON object and nothing after it but white
// space. Errors are JSON objects {"error": "..."} that quote nothing from the
// request but a short field name. A cache failure never fails a request: it
// falls back to the database (see [Cache] for what that costs and the bound on
// staleness it keeps). A database failure is 500, logged at ERROR once per kind and then
// counted, one line per 10 s.
//
// The service redirects to any http(s) URL and has no authentication: it is a
// reference app, not a public shortener. A fork adds authentication for writes
// in [NewHandler], around the POST, PUT and DELETE routes.
package links
