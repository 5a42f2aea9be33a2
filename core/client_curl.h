/* core/client_curl.h - libcurl for the command-line client, loaded with
 * dlopen on first use (internal).
 *
 * Why: linking libcurl into the binary would load it, and its TLS, LDAP and
 * Kerberos libraries, into every server process too (about 5 MB of idle RSS)
 * although only `pyoco runs ...` uses it. The client's code keeps calling
 * curl_* names; the macros below route them through the loaded table. */
#ifndef PYOCO_CORE_CLIENT_CURL_H
#define PYOCO_CORE_CLIENT_CURL_H

#include <stddef.h>

#define CURL_DISABLE_TYPECHECK /* the macros below replace curl's own */
#include <curl/curl.h>

typedef struct pyoco_curl_api {
    CURLcode (*global_init)(long flags);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *c, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *c);
    CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *c);
    const char *(*easy_strerror)(CURLcode code);
    char *(*easy_escape)(CURL *c, const char *s, int len);
    void (*free)(void *p);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
    CURLU *(*url)(void);
    void (*url_cleanup)(CURLU *u);
    CURLUcode (*url_get)(CURLU *u, CURLUPart part, char **out,
                         unsigned int flags);
    CURLUcode (*url_set)(CURLU *u, CURLUPart part, const char *s,
                         unsigned int flags);
} pyoco_curl_api;

/* Load libcurl (once). NULL with a message in err when it cannot be had. */
const pyoco_curl_api *pyoco_curl_load(char *err, size_t errlen);
/* The loaded table; only after pyoco_curl_load succeeded. */
const pyoco_curl_api *pyoco_curl(void);

#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_global_init(...) pyoco_curl()->global_init(__VA_ARGS__)
#define curl_global_cleanup() pyoco_curl()->global_cleanup()
#define curl_easy_init() pyoco_curl()->easy_init()
#define curl_easy_setopt(...) pyoco_curl()->easy_setopt(__VA_ARGS__)
#define curl_easy_perform(...) pyoco_curl()->easy_perform(__VA_ARGS__)
#define curl_easy_getinfo(...) pyoco_curl()->easy_getinfo(__VA_ARGS__)
#define curl_easy_cleanup(...) pyoco_curl()->easy_cleanup(__VA_ARGS__)
#define curl_easy_strerror(...) pyoco_curl()->easy_strerror(__VA_ARGS__)
#define curl_easy_escape(...) pyoco_curl()->easy_escape(__VA_ARGS__)
#define curl_free(...) pyoco_curl()->free(__VA_ARGS__)
#define curl_slist_append(...) pyoco_curl()->slist_append(__VA_ARGS__)
#define curl_slist_free_all(...) pyoco_curl()->slist_free_all(__VA_ARGS__)
#define curl_url() pyoco_curl()->url()
#define curl_url_cleanup(...) pyoco_curl()->url_cleanup(__VA_ARGS__)
#define curl_url_get(...) pyoco_curl()->url_get(__VA_ARGS__)
#define curl_url_set(...) pyoco_curl()->url_set(__VA_ARGS__)

#endif
