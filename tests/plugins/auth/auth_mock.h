/* auth_mock.h - a small host for the auth plugin's CUnit tests: config from
 * a JSON object, one filter, requests built by the test, and what the
 * plugin logged, replied and counted. */
#ifndef AUTH_MOCK_H
#define AUTH_MOCK_H

#include <pyoco/plugin.h>

struct pyoco_host {
    json_t *config;          /* the plugin's block */
    struct event_base *base; /* NULL: no loop */
    pyoco_filter_fn filter;
    void *filter_ud;
    double now;
    int warnings;
    char last_log[512];
    /* pyoco_auth_requests_total by outcome */
    double allowed, unauthenticated, forbidden;
    int metric_calls;
};

struct pyoco_request {
    unsigned method;
    const char *route;
    const char *x_api_key;
    const char *authorization;
    int status; /* 0 until replied */
    char detail[256];
    char www[4][64];
    int nwww;
};

const pyoco_api *mock_api(void);
const pyoco_plugin_desc *mock_desc(void);
/* Run the plugin's filter; returns what it returned. */
int mock_filter(pyoco_host *h, pyoco_request *req);

#endif
