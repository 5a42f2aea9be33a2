/* core/http.h - the HTTP listener (evhttp) and the route table plugins add
 * to (internal). */
#ifndef PYOCO_CORE_HTTP_H
#define PYOCO_CORE_HTTP_H

#include <stddef.h>

#include <event2/event.h>
#include <pyoco/plugin.h>

#include "bus.h"

typedef struct pyoco_http pyoco_http;

typedef struct pyoco_http_limits {
    size_t max_body_bytes;
    size_t max_header_bytes;
    double read_timeout; /* seconds */
    double idle_timeout;
    int max_connections;
} pyoco_http_limits;

pyoco_http *pyoco_http_new(struct event_base *base, pyoco_bus *bus,
                           const pyoco_http_limits *limits);
/* Closes the listener and every connection; frees the routes (their free
 * functions run). Requests still waiting for a reply are answered 503. */
void pyoco_http_free(pyoco_http *http);

/* Bind and listen. *bound_port receives the port (useful with port 0). */
int pyoco_http_listen(pyoco_http *http, const char *host, int port,
                      int *bound_port);
/* Stop accepting new connections (shutdown); in-flight requests go on. */
void pyoco_http_stop_accepting(pyoco_http *http);
/* Requests received and not yet answered. */
size_t pyoco_http_in_flight(const pyoco_http *http);

int pyoco_http_route_add(pyoco_http *http, unsigned methods,
                         const char *pattern, pyoco_route_fn fn,
                         void *user_data, pyoco_free_fn free_fn, void *owner);
int pyoco_http_routes_remove_owner(pyoco_http *http, void *owner);

int pyoco_http_filter_add(pyoco_http *http, pyoco_filter_fn fn, void *user_data,
                          pyoco_free_fn free_fn, void *owner);
int pyoco_http_filters_remove_owner(pyoco_http *http, void *owner);

/* Change the limits of a running listener (SIGHUP). */
void pyoco_http_set_limits(pyoco_http *http, const pyoco_http_limits *limits);

unsigned pyoco_http_req_method(pyoco_request *req);
const char *pyoco_http_req_route(pyoco_request *req);
const char *pyoco_http_req_peer(pyoco_request *req);
int pyoco_http_reply_start(pyoco_request *req, int status,
                           const char *content_type);
int pyoco_http_reply_chunk(pyoco_request *req, const char *data, size_t len);
int pyoco_http_reply_end(pyoco_request *req);
size_t pyoco_http_req_output_pending(pyoco_request *req);
int pyoco_http_req_on_close(pyoco_request *req, pyoco_close_fn fn,
                            void *user_data);
const char *pyoco_http_req_path(pyoco_request *req);
const char *pyoco_http_req_param(pyoco_request *req, const char *name);
const char *pyoco_http_req_query(pyoco_request *req, const char *name);
const char *pyoco_http_req_header(pyoco_request *req, const char *name);
const char *pyoco_http_req_body(pyoco_request *req, size_t *len);
int pyoco_http_reply(pyoco_request *req, int status, const char *content_type,
                     const char *body, size_t len);
int pyoco_http_reply_ref(pyoco_request *req, int status,
                         const char *content_type, const char *body, size_t len,
                         pyoco_free_fn done, void *user_data);
int pyoco_http_reply_json(pyoco_request *req, int status, const json_t *body);
int pyoco_http_reply_error(pyoco_request *req, int status, const char *detail);
int pyoco_http_req_add_header(pyoco_request *req, const char *name,
                              const char *value);

#endif
