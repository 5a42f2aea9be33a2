/* bench/ceiling.c - the cost floor of any evhttp + jansson server here:
 * parse the request body as JSON with jansson (as our handlers do), then
 * answer a fixed JSON reply. Every workload is reported as a ratio to this.
 *
 *   pyoco-bench-ceiling PORT    (prints "listening on http://127.0.0.1:PORT")
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

static void on_request(struct evhttp_request *req, void *arg) {
    (void)arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len) {
        json_error_t err;
        json_t *body = json_loadb((const char *)evbuffer_pullup(in, -1), len,
                                  JSON_REJECT_DUPLICATES, &err);
        if (!body) {
            evhttp_send_error(req, 422, "bad json");
            return;
        }
        json_decref(body);
    }
    static const char reply[] = "{\"cancel_requested\":false}";
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evbuffer_add_reference(evhttp_request_get_output_buffer(req), reply,
                           sizeof(reply) - 1, NULL, NULL);
    evhttp_send_reply(req, 200, "OK", NULL);
}

static void on_term(evutil_socket_t s, short w, void *base) {
    (void)s;
    (void)w;
    event_base_loopexit(base, NULL);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    evhttp_set_gencb(http, on_request, NULL);
    struct evhttp_bound_socket *sock =
        evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)port);
    if (!sock) {
        fprintf(stderr, "cannot bind 127.0.0.1:%d\n", port);
        return 1;
    }
    struct event *term = evsignal_new(base, SIGTERM, on_term, base);
    evsignal_add(term, NULL);
    fprintf(stderr, "listening on http://127.0.0.1:%d\n", port);
    event_base_dispatch(base);
    event_free(term);
    evhttp_free(http);
    event_base_free(base);
    return 0;
}
