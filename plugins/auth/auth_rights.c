/* auth_rights.c - see auth_rights.h. The table is by route pattern (what the
 * host matched), so /runs/x/cancel and /runs/y/cancel are one entry. */
#include "auth_rights.h"

#include <string.h>

#include <pyoco/plugin.h>

#include "auth_keys.h"

static const struct {
    unsigned methods;
    const char *route;
    unsigned right;
} table[] = {
    {PYOCO_HTTP_POST, "/workers/poll", PYOCO_AUTH_WORKER},
    {PYOCO_HTTP_POST, "/runs/{run_id}/heartbeat", PYOCO_AUTH_WORKER},
    {PYOCO_HTTP_POST, "/runs", PYOCO_AUTH_SUBMITTER},
    {PYOCO_HTTP_POST, "/runs/{run_id}/cancel", PYOCO_AUTH_SUBMITTER},
};

unsigned pyoco_auth_required(unsigned method, const char *route,
                             const char *metrics_path) {
    bool read = method == PYOCO_HTTP_GET || method == PYOCO_HTTP_HEAD;
    if (!route)
        return PYOCO_AUTH_ADMIN;
    if (read)
        return metrics_path && strcmp(route, metrics_path) == 0
                   ? PYOCO_AUTH_METRICS
                   : PYOCO_AUTH_READER;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if ((table[i].methods & method) && strcmp(table[i].route, route) == 0)
            return table[i].right;
    /* Writes of routes we do not know (other plugins) are for admins. */
    return PYOCO_AUTH_ADMIN;
}

bool pyoco_auth_allows(unsigned roles, unsigned required) {
    return (roles & PYOCO_AUTH_ADMIN) || (roles & required) == required;
}
