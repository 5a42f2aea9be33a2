/* mock_host.h - a stand-in for the server that drives a plugin's
 * descriptor in-process: records its subscription and route, serves its
 * config from a JSON object, and captures replies. Only what the
 * prometheus plugin calls is implemented; the rest abort the test. */
#ifndef MOCK_HOST_H
#define MOCK_HOST_H

#include <pyoco/plugin.h>

#define MOCK_MAX_SUBS 8

struct pyoco_host {
    json_t *config; /* key -> value (strings for scalars, like the core) */
    pyoco_event_fn subs[MOCK_MAX_SUBS];
    void *sub_ud[MOCK_MAX_SUBS];
    uint32_t sub_kind[MOCK_MAX_SUBS];
    int nsubs;
    unsigned route_methods;
    char route_pattern[256];
    pyoco_route_fn route_fn;
    void *route_ud;
    pyoco_registry_stats stats;
    uint64_t seq;
    int warnings;
};

struct pyoco_request {
    const char *accept;
    int status;
    char content_type[128];
    char *body;
    size_t len;
};

extern const pyoco_api mock_api;

void mock_host_init(pyoco_host *h);
void mock_host_free(pyoco_host *h);
/* Publishes ev to the matching subscribers (size, seq filled in). */
void mock_publish(pyoco_host *h, pyoco_event *ev);
/* GET on the recorded route; the reply lands in *req (free req->body). */
void mock_get(pyoco_host *h, const char *accept, pyoco_request *req);

#endif
