/* core/client_curl.c - dlopen libcurl for the client (see client_curl.h). */
#include "client_curl.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static pyoco_curl_api g_api;
static bool g_loaded;

/* Object pointer -> function pointer, the way POSIX dlsym allows. */
#define LOAD(field, sym)                                                       \
    do {                                                                       \
        void *p = dlsym(h, sym);                                               \
        if (!p) {                                                              \
            snprintf(err, errlen, "libcurl has no %s", sym);                   \
            return NULL;                                                       \
        }                                                                      \
        memcpy(&g_api.field, &p, sizeof(p));                                   \
    } while (0)

const pyoco_curl_api *pyoco_curl_load(char *err, size_t errlen) {
    if (g_loaded)
        return &g_api;
    /* The soname of libcurl 7.x and 8.x; kept loaded until exit. */
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(err, errlen, "cannot load libcurl (libcurl.so.4): %s",
                 why ? why : "unknown error");
        return NULL;
    }
    LOAD(global_init, "curl_global_init");
    LOAD(global_cleanup, "curl_global_cleanup");
    LOAD(easy_init, "curl_easy_init");
    LOAD(easy_setopt, "curl_easy_setopt");
    LOAD(easy_perform, "curl_easy_perform");
    LOAD(easy_getinfo, "curl_easy_getinfo");
    LOAD(easy_cleanup, "curl_easy_cleanup");
    LOAD(easy_strerror, "curl_easy_strerror");
    LOAD(easy_escape, "curl_easy_escape");
    LOAD(free, "curl_free");
    LOAD(slist_append, "curl_slist_append");
    LOAD(slist_free_all, "curl_slist_free_all");
    LOAD(url, "curl_url");
    LOAD(url_cleanup, "curl_url_cleanup");
    LOAD(url_get, "curl_url_get");
    LOAD(url_set, "curl_url_set");
    g_loaded = true;
    return &g_api;
}

const pyoco_curl_api *pyoco_curl(void) {
    return &g_api;
}
