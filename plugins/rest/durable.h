/* plugins/rest/durable.h - answering state-changing requests only once the
 * change is durable (api->when_durable), without a malloc per request. */
#ifndef PYOCO_REST_DURABLE_H
#define PYOCO_REST_DURABLE_H

#include <pyoco/plugin.h>

typedef struct pyoco_rest_durable pyoco_rest_durable;

pyoco_rest_durable *pyoco_rest_durable_new(pyoco_host *host,
                                           const pyoco_api *api);
/* Frees the pool. Replies still waiting are the host's to drain first
 * (stop waits for the durability barrier), so none is expected here. */
void pyoco_rest_durable_free(pyoco_rest_durable *d);

/* Answer req with 200 and `body` (a constant, or copied: len <= 255) once
 * everything published so far is durable; 503 when storage failed. */
void pyoco_rest_durable_reply_text(pyoco_rest_durable *d, pyoco_request *req,
                                   const char *body, size_t len);
/* Same with a JSON reply; takes over the reference to `body`. */
void pyoco_rest_durable_reply_json(pyoco_rest_durable *d, pyoco_request *req,
                                   json_t *body);

#endif
