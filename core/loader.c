/* core/loader.c - dlopen a plugin, check its descriptor before calling any
 * of its code but the entry point, bind its config block, init it; undo
 * everything when a step fails. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

#ifndef PYOCO_PLUGIN_INSTALL_DIR
#define PYOCO_PLUGIN_INSTALL_DIR "/usr/local/lib/pyoco/plugins"
#endif

/* The smallest descriptor we can use: everything up to fini. */
#define DESC_MIN_SIZE                                                          \
    (offsetof(pyoco_plugin_desc, fini) + sizeof(((pyoco_plugin_desc *)0)->fini))

size_t pyoco_loader_default_dirs(const char **out, size_t max) {
    /* Next to the binary first, so a build tree and a relocated install
     * find their own plugins: build/core/pyoco -> build/plugins, and
     * PREFIX/bin/pyoco -> PREFIX/lib/pyoco/plugins. Then the directory
     * compiled in from the install prefix. */
    static char build_rel[PATH_MAX + 16], inst_rel[PATH_MAX + 32];
    size_t n = 0;
    if (!build_rel[0]) {
        char exe[PATH_MAX];
        ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (len > 0) {
            exe[len] = '\0';
            char *slash = strrchr(exe, '/');
            if (slash) {
                *slash = '\0';
                snprintf(build_rel, sizeof(build_rel), "%s/../plugins", exe);
                snprintf(inst_rel, sizeof(inst_rel), "%s/../lib/pyoco/plugins",
                         exe);
            }
        }
    }
    if (build_rel[0] && n < max)
        out[n++] = build_rel;
    if (inst_rel[0] && n < max)
        out[n++] = inst_rel;
    if (n < max)
        out[n++] = PYOCO_PLUGIN_INSTALL_DIR;
    return n;
}

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

char *pyoco_loader_find(const pyoco_config *cfg, const char *name, char *err,
                        size_t errlen) {
    const char *dirs[64];
    size_t nd = 0;
    size_t np = cfg ? pyoco_config_path_count(cfg) : 0;
    for (size_t i = 0; i < np && nd < 60; i++)
        dirs[nd++] = pyoco_config_path(cfg, i);
    nd += pyoco_loader_default_dirs(dirs + nd, 64 - nd);
    char tried[1024] = "";
    for (size_t i = 0; i < nd; i++) {
        char path[PATH_MAX];
        int pn = snprintf(path, sizeof(path), "%s/%s.so", dirs[i], name);
        if (pn > 0 && (size_t)pn < sizeof(path) && file_exists(path))
            return strdup(path);
        /* The list of places looked at may be cut short; that is fine. */
        size_t used = strlen(tried), plen = strlen(path);
        if (used + plen + 3 < sizeof(tried)) {
            if (used) {
                memcpy(tried + used, ", ", 2);
                used += 2;
            }
            memcpy(tried + used, path, plen + 1);
        }
    }
    snprintf(err, errlen, "plugin '%s': not found (looked for %s)", name,
             tried);
    return NULL;
}

int pyoco_loader_probe(const char *path, void **dl,
                       const pyoco_plugin_desc **desc, char *err,
                       size_t errlen) {
    *dl = NULL;
    *desc = NULL;
    if (!file_exists(path)) {
        snprintf(err, errlen, "%s: no such file", path);
        return -ENOENT;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(err, errlen, "%s: cannot load as a shared object: %s", path,
                 why ? why : "unknown error");
        return -ENOEXEC;
    }
    dlerror();
    void *sym = dlsym(h, PYOCO_PLUGIN_ENTRY_NAME);
    if (!sym) {
        snprintf(err, errlen,
                 "%s: not a pyoco plugin: missing symbol '%s' "
                 "(export it with PYOCO_PLUGIN_EXPORT)",
                 path, PYOCO_PLUGIN_ENTRY_NAME);
        dlclose(h);
        return -ENOEXEC;
    }
    pyoco_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof(entry)); /* object -> function pointer */
    const pyoco_plugin_desc *d = entry();
    int rc = 0;
    if (!d) {
        snprintf(err, errlen, "%s: %s() returned NULL", path,
                 PYOCO_PLUGIN_ENTRY_NAME);
        rc = -EINVAL;
    } else if (d->abi_major != PYOCO_ABI_MAJOR) {
        snprintf(err, errlen,
                 "%s: ABI mismatch: plugin built for ABI %u.%u, this server "
                 "speaks %d.%d (majors must match)",
                 path, d->abi_major, d->abi_minor, PYOCO_ABI_MAJOR,
                 PYOCO_ABI_MINOR);
        rc = -EPROTO;
    } else if (d->abi_minor > PYOCO_ABI_MINOR) {
        snprintf(err, errlen,
                 "%s: ABI mismatch: plugin needs ABI %u.%u, this server "
                 "speaks %d.%d (upgrade the server)",
                 path, d->abi_major, d->abi_minor, PYOCO_ABI_MAJOR,
                 PYOCO_ABI_MINOR);
        rc = -EPROTO;
    } else if (d->size < DESC_MIN_SIZE) {
        snprintf(err, errlen, "%s: descriptor too small (%u bytes)", path,
                 d->size);
        rc = -EPROTO;
    } else if (!d->name || !d->init) {
        snprintf(err, errlen, "%s: descriptor without a name or init", path);
        rc = -EINVAL;
    }
    if (rc) {
        dlclose(h);
        return rc;
    }
    *dl = h;
    *desc = d;
    return 0;
}

static void host_release(pyoco_server *srv, pyoco_host *h) {
    /* Drop everything the plugin registered while its code is still
     * mapped: the free functions live in the plugin. */
    pyoco_bus_unsubscribe_owner(srv->bus, h);
    if (srv->http) {
        pyoco_http_routes_remove_owner(srv->http, h);
        pyoco_http_filters_remove_owner(srv->http, h);
    }
    if (srv->dur)
        pyoco_durability_remove(srv->dur, h);
    size_t j = 0;
    for (size_t i = 0; i < srv->narchives; i++) {
        archive_source *a = &srv->archives[i];
        if (a->owner == h) {
            if (a->free_fn)
                a->free_fn(a->ud);
        } else {
            srv->archives[j++] = *a;
        }
    }
    srv->narchives = j;
}

static void host_free(pyoco_host *h) {
    if (!h)
        return;
    pyoco_plugin_config_free(h->cfg);
    if (h->dl)
        dlclose(h->dl);
    free(h->name);
    free(h->file);
    free(h);
}

void pyoco_loader_unload(pyoco_server *srv, pyoco_host *h) {
    if (!h)
        return;
    if (h->phase >= HOST_INITED && h->desc->fini)
        h->desc->fini(h, h->state);
    host_release(srv, h);
    host_free(h);
}

int pyoco_loader_load(pyoco_server *srv, const char *name, const char *file,
                      size_t block, pyoco_host **out, char *err,
                      size_t errlen) {
    *out = NULL;
    char *path =
        file ? strdup(file) : pyoco_loader_find(srv->cfg, name, err, errlen);
    if (!path)
        return file ? -ENOMEM : -ENOENT;
    pyoco_host *h = calloc(1, sizeof(*h));
    if (!h) {
        free(path);
        return -ENOMEM;
    }
    h->srv = srv;
    h->file = path;
    h->name = strdup(name);
    char why[1024];
    int rc = pyoco_loader_probe(path, &h->dl, &h->desc, why, sizeof(why));
    if (rc) {
        snprintf(err, errlen, "plugin '%s': %s", name, why);
        host_free(h);
        return rc;
    }
    if (strcmp(h->desc->name, name) != 0) {
        snprintf(err, errlen, "plugin '%s': %s provides plugin '%s'", name,
                 path, h->desc->name);
        host_free(h);
        return -EINVAL;
    }
    rc = pyoco_config_plugin_bind(srv->cfg, block, name, h->desc->config_keys,
                                  &h->cfg, why, sizeof(why));
    if (rc) {
        snprintf(err, errlen, "%s", why);
        host_free(h);
        return rc;
    }
    why[0] = '\0';
    rc = h->desc->init(h, pyoco_host_api(), &h->state, why, sizeof(why));
    if (rc) {
        why[sizeof(why) - 1] = '\0';
        snprintf(err, errlen, "plugin '%s' (%s): init failed: %s", name, path,
                 why[0] ? why : strerror(rc < 0 ? -rc : rc));
        /* init failed: no fini, but whatever it registered goes. */
        host_release(srv, h);
        host_free(h);
        return rc < 0 ? rc : -EINVAL;
    }
    h->phase = HOST_INITED;
    *out = h;
    return 0;
}
