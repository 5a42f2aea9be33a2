/* auth_conf.h - the auth plugin's settings, read from its block at init
 * and again on reload (SIGHUP). */
#ifndef PYOCO_AUTH_CONF_H
#define PYOCO_AUTH_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include <pyoco/plugin.h>

#include "auth_cred.h"
#include "auth_keys.h"

typedef struct pyoco_auth_conf {
    bool enabled;
    pyoco_auth_keyset keys;
    char **open_routes; /* route patterns anyone may call */
    size_t nopen;
    char *metrics_path;
    pyoco_auth_basic basic; /* metrics_basic_auth */
} pyoco_auth_conf;

extern const pyoco_config_key pyoco_auth_config_keys[];

/* Read and check the whole block into *out (zeroed first). On error *out is
 * left empty and err names file:line and key. */
int pyoco_auth_conf_load(pyoco_host *h, const pyoco_api *api,
                         pyoco_auth_conf *out, char *err, size_t errlen);
void pyoco_auth_conf_free(pyoco_auth_conf *c);

bool pyoco_auth_conf_is_open(const pyoco_auth_conf *c, const char *route);

#endif
