/* plugins/rest/validate.h - wire validation of the Kanban API bodies and
 * query parameters (pure functions over jansson values, no host calls).
 *
 * Every failure is described FastAPI/pydantic-style, so the caller answers
 * 422 {"detail": <array>} with one entry per bad field:
 *   {"loc": ["body", "task_states", "t1"], "msg": "...", "type": "..."}
 * The registry re-checks shapes, but validating here first means a bad
 * request never reaches it (nothing applied, nothing published). */
#ifndef PYOCO_REST_VALIDATE_H
#define PYOCO_REST_VALIDATE_H

#include <stddef.h>

#include <jansson.h>

/* Bodies nested deeper than this are refused with a 422. */
#define PYOCO_REST_MAX_DEPTH 100

/* At most this many entries are listed in one detail array: a 1 MB body of
 * bad log entries must not become a 50 MB answer. */
#define PYOCO_REST_MAX_ERRORS 64

/* Parse a request body that must be a JSON object (duplicate keys, NUL in
 * strings, trailing garbage and too deep nesting are rejected). Returns the
 * object (new reference) or NULL with *detail set (new reference). */
json_t *pyoco_rest_parse_object(const char *buf, size_t len, json_t **detail);

/* Body validators: NULL when valid, else the detail array (new reference). */
json_t *pyoco_rest_validate_submit(const json_t *body);
json_t *pyoco_rest_validate_poll(const json_t *body);
json_t *pyoco_rest_validate_heartbeat(const json_t *body);

/* An integer query parameter `name` with value `text` in [lo, hi].
 * 0 and *out on success; -EINVAL with *detail (loc ["query", name]). */
int pyoco_rest_parse_query_int(const char *name, const char *text, long lo,
                               long hi, long *out, json_t **detail);

/* True when s is a wire run status / task state name. */
int pyoco_rest_is_run_status(const char *s);
int pyoco_rest_is_task_state(const char *s);

#endif
