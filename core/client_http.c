/* core/client_http.c - the client's requests (libcurl easy interface: this
 * is a command-line tool, not the server loop) and the mapping of every
 * failure to an exit code with a message that names the URL. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"

typedef struct sink {
    char *buf;
    size_t len, cap;
    bool too_big;
} sink;

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud) {
    sink *s = ud;
    size_t n = size * nmemb;
    if (n > PYOCO_CLIENT_MAX_ANSWER - s->len) {
        s->too_big = true;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 16384;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b)
            return 0;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

int pyoco_client_http_open(pyoco_client_conn *c, const char *server,
                           double timeout_s) {
    memset(c, 0, sizeof *c);
    /* Check the URL up front so a typo is a usage error, not a network
     * one. */
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, server, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
              (!strcasecmp(scheme, "http") || !strcasecmp(scheme, "https")) &&
              *host;
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    if (!ok) {
        fprintf(stderr,
                "pyoco: --server: expected an http:// or https:// URL, got "
                "'%s'\n",
                server);
        return PYOCO_CLIENT_EXIT_USAGE;
    }
    size_t n = strlen(server);
    while (n > 0 && server[n - 1] == '/')
        n--;
    c->base = strndup(server, n);
    c->curl = curl_easy_init();
    if (!c->base || !c->curl) {
        fprintf(stderr, "pyoco: out of memory\n");
        pyoco_client_http_close(c);
        return PYOCO_CLIENT_EXIT_SERVER;
    }
    c->timeout_ms = (long)(timeout_s * 1000.0 + 0.5);
    if (c->timeout_ms < 1)
        c->timeout_ms = 1;
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "pyoco/" PYOCO_VERSION);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     c->timeout_ms < PYOCO_CLIENT_CONNECT_TIMEOUT_MS
                         ? c->timeout_ms
                         : PYOCO_CLIENT_CONNECT_TIMEOUT_MS);
    /* A declared size over the limit fails before any byte is stored. */
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                     (curl_off_t)PYOCO_CLIENT_MAX_ANSWER);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    return 0;
}

void pyoco_client_http_close(pyoco_client_conn *c) {
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->base);
    c->curl = NULL;
    c->base = NULL;
}

void pyoco_client_reply_free(pyoco_client_reply *r) {
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

char *pyoco_client_escape(pyoco_client_conn *c, const char *s) {
    char *e = curl_easy_escape(c->curl, s, 0);
    if (!e)
        return NULL;
    char *copy = strdup(e);
    curl_free(e);
    return copy;
}

/* Print at most max bytes of s, control characters as '?', so a garbage
 * answer cannot flood or mangle the terminal. */
static void put_clean(FILE *f, const char *s, size_t len, size_t max) {
    size_t n = len < max ? len : max;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, f);
    }
    if (len > max)
        fputs("...", f);
}

/* The `detail` of an error answer: a string, or FastAPI's list of
 * {"loc": [...], "msg": str}. */
static void put_detail(FILE *f, const pyoco_client_reply *r) {
    json_t *doc = r->len ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    json_t *d = json_object_get(doc, "detail");
    if (json_is_string(d)) {
        put_clean(f, json_string_value(d), json_string_length(d), 1000);
    } else if (json_is_array(d) && json_array_size(d)) {
        size_t i;
        json_t *e;
        json_array_foreach(d, i, e) {
            if (i == 5) {
                fprintf(f, "; ... (%zu errors)", json_array_size(d));
                break;
            }
            if (i)
                fputs("; ", f);
            json_t *loc = json_object_get(e, "loc");
            const char *msg = json_string_value(json_object_get(e, "msg"));
            size_t j;
            json_t *part;
            json_array_foreach(loc, j, part) {
                if (j)
                    fputc('.', f);
                if (json_is_string(part))
                    put_clean(f, json_string_value(part),
                              json_string_length(part), 200);
                else if (json_is_integer(part))
                    fprintf(f, "%lld", (long long)json_integer_value(part));
            }
            if (json_array_size(loc))
                fputs(": ", f);
            if (msg)
                put_clean(f, msg, strlen(msg), 500);
            else
                fputs("invalid", f);
        }
    } else if (r->len) {
        put_clean(f, r->body, r->len, 300);
    } else {
        fputs("(empty answer)", f);
    }
    json_decref(doc);
}

static bool unreachable(CURLcode rc) {
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

int pyoco_client_http_call(pyoco_client_conn *c, const char *method,
                           const char *path, const char *run_id,
                           pyoco_client_reply *out) {
    memset(out, 0, sizeof *out);
    size_t ul = strlen(c->base) + strlen(path) + 1;
    char *url = malloc(ul);
    if (!url) {
        fprintf(stderr, "pyoco: out of memory\n");
        return PYOCO_CLIENT_EXIT_SERVER;
    }
    snprintf(url, ul, "%s%s", c->base, path);
    CURL *h = c->curl;
    struct curl_slist *hdrs =
        curl_slist_append(NULL, "Accept: application/json");
    bool post = !strcmp(method, "POST");
    if (post) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_URL, url);
    sink s = {0};
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    c->errbuf[0] = '\0';
    CURLcode rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
    int code = PYOCO_CLIENT_EXIT_SERVER;
    if (rc != CURLE_OK) {
        if (s.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
            fprintf(stderr,
                    "pyoco: bad answer from %s %s: larger than the %zu MiB "
                    "limit\n",
                    method, url, PYOCO_CLIENT_MAX_ANSWER >> 20);
        } else if (unreachable(rc)) {
            fprintf(stderr,
                    "pyoco: cannot reach the server at %s (%s %s): %s\n",
                    c->base, method, url, why);
            code = PYOCO_CLIENT_EXIT_UNREACHABLE;
        } else {
            fprintf(stderr, "pyoco: bad answer from %s %s: %s\n", method, url,
                    why);
        }
        free(s.buf);
        free(url);
        return code;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    out->status = status;
    out->body = s.buf ? s.buf : strdup("");
    out->len = s.len;
    if (!out->body) {
        fprintf(stderr, "pyoco: out of memory\n");
        free(url);
        return PYOCO_CLIENT_EXIT_SERVER;
    }
    if (status >= 200 && status < 300) {
        free(url);
        return 0;
    }
    if (status == 404 && run_id) {
        fprintf(stderr, "pyoco: run '");
        put_clean(stderr, run_id, strlen(run_id), 200);
        fprintf(stderr, "' not found (404 from %s %s: ", method, url);
        put_detail(stderr, out);
        fputs(")\n", stderr);
        code = PYOCO_CLIENT_EXIT_NOT_FOUND;
    } else {
        fprintf(stderr, "pyoco: server answered %ld to %s %s: ", status, method,
                url);
        put_detail(stderr, out);
        fputc('\n', stderr);
    }
    pyoco_client_reply_free(out);
    free(url);
    return code;
}

int pyoco_client_reply_json(const pyoco_client_conn *c, const char *path,
                            const pyoco_client_reply *r, bool want_array,
                            json_t **out) {
    json_error_t jerr;
    *out = NULL;
    /* Without JSON_DECODE_ANY jansson insists on an object or an array;
     * its nesting limit keeps a hostile answer from exhausting the
     * stack. */
    json_t *doc = json_loadb(r->body, r->len, 0, &jerr);
    if (!doc) {
        fprintf(stderr,
                "pyoco: bad answer from %s%s: not JSON (line %d, column "
                "%d: ",
                c->base, path, jerr.line, jerr.column);
        put_clean(stderr, jerr.text, strlen(jerr.text), 200);
        fputs(")\n", stderr);
        return PYOCO_CLIENT_EXIT_SERVER;
    }
    if (want_array ? !json_is_array(doc) : !json_is_object(doc)) {
        fprintf(stderr, "pyoco: bad answer from %s%s: expected a JSON %s\n",
                c->base, path, want_array ? "array" : "object");
        json_decref(doc);
        return PYOCO_CLIENT_EXIT_SERVER;
    }
    *out = doc;
    return 0;
}
