/* core/http_conn.h - connection-level HTTP limits evhttp (libevent 2.1)
 * cannot enforce itself (internal; used by http.c only):
 *  - server.read_timeout as a total deadline for reading one request,
 *    counted from its first byte: a client trickling bytes cannot extend
 *    it (evhttp's own timeout is re-armed by every read);
 *  - server.idle_timeout for a keep-alive connection waiting for its next
 *    request (and read_timeout for a new connection's first request);
 *  - server.max_connections: a connection over the cap is closed as soon
 *    as it is accepted, before anything is read (or, if its request was
 *    already complete in that loop turn, answered 503 and closed).
 * A connection past a deadline is closed without a reply.
 *
 * How (PYOCO_HTTP_CONN_LIMITS): evhttp_set_bevcb lets us create every
 * accepted connection's bufferevent, so we see each accept; one loop turn
 * later evhttp has made the evhttp_connection (it is the bufferevent's
 * callback argument), and we take over its close callback to see the close.
 * An evbuffer callback on the input buffer sees a request's first byte. */
#ifndef PYOCO_CORE_HTTP_CONN_H
#define PYOCO_CORE_HTTP_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/http.h>

#include "http.h"

typedef struct pyoco_http_conns pyoco_http_conns;

/* Installs the bufferevent callback on evh. `limits` is read at each use
 * (so SIGHUP changes apply to the next deadline armed). */
pyoco_http_conns *pyoco_http_conns_new(struct event_base *base,
                                       struct evhttp *evh,
                                       const pyoco_http_limits *limits);
/* Call after evhttp_free (which closes every connection). */
void pyoco_http_conns_free(pyoco_http_conns *conns);

/* A request was read completely (the evhttp generic callback): its read
 * deadline stops; the idle clock starts again when its reply is sent.
 * -EBUSY: the connection is over max_connections (it was accepted and
 * read within one loop turn, before it could be closed): answer 503 with
 * "Connection: close". */
int pyoco_http_conns_request(pyoco_http_conns *conns,
                             struct evhttp_request *ev);

/* The connection's close callback belongs to this module; a streaming
 * reply registers here instead (fn NULL to remove). false when the
 * connection is not tracked (its bufferevent could not be made): the
 * caller then uses evhttp_connection_set_closecb itself. */
bool pyoco_http_conns_on_close(pyoco_http_conns *conns,
                               struct evhttp_connection *evcon,
                               void (*fn)(void *arg), void *arg);

size_t pyoco_http_conns_open(const pyoco_http_conns *conns);

#endif
