/* auth_rights.h - which right a routed request needs, from its method and
 * the route pattern it matched. */
#ifndef PYOCO_AUTH_RIGHTS_H
#define PYOCO_AUTH_RIGHTS_H

#include <stdbool.h>

/* The right (one PYOCO_AUTH_* bit) a request needs: worker, submitter,
 * metrics, reader for other GETs, admin for other writes. method is a
 * PYOCO_HTTP_* bit; HEAD counts as GET. */
unsigned pyoco_auth_required(unsigned method, const char *route,
                             const char *metrics_path);

/* Whether a key holding `roles` has `required` (admin has every right). */
bool pyoco_auth_allows(unsigned roles, unsigned required);

#endif
