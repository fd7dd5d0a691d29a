// Package links is the reference service's one resource: short links.
//
// A [Link] maps a slug to a URL. [Store] keeps links in PostgreSQL, [Cache] puts
// memcached in front of it as a read-through cache with a TTL, invalidated on
// every write, and [Handler] serves them as a JSON API plus the redirects:
//
//	POST   /api/links          create; 201, 400, 409 (slug taken)
//	GET    /api/links          list by slug; ?limit=1..100 (20) and ?after=<slug>
//	GET    /api/links/{slug}   read; 200, 404
//	PUT    /api/links/{slug}   change the URL; 200, 400, 404
//	DELETE /api/links/{slug}   delete; 204, 404
//	GET    /{slug}             302 to the URL; 404
//
// Errors are JSON objects {"error": "..."}. A cache failure falls back to the
// database and is logged; it never fails a request.
package links
