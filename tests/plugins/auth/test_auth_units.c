/* test_auth_units.c - the auth plugin's pure parts: hex and SHA-256, roles,
 * key parsing (config list and key file), constant-time lookup, credential
 * headers, basic auth and the rights table. */
#include <CUnit/CUnit.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pyoco/plugin.h>

#include "auth_cred.h"
#include "auth_keys.h"
#include "auth_rights.h"

/* SHA-256("abc"), FIPS 180-2 test vector. */
#define ABC_HEX                                                                \
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void hex_of(const char *s, char out[65]) {
    unsigned char d[32];
    CU_ASSERT_FATAL(pyoco_auth_sha256(s, strlen(s), d) == 0);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void test_hex_and_sha256(void) {
    unsigned char d[32], want[32];
    CU_ASSERT(pyoco_auth_sha256("abc", 3, d) == 0);
    CU_ASSERT(pyoco_auth_hex_decode(ABC_HEX, want) == 0);
    CU_ASSERT(memcmp(d, want, 32) == 0);
    CU_ASSERT(want[0] == 0xba && want[31] == 0xad);
    char upper[65];
    for (int i = 0; i < 65; i++)
        upper[i] = (char)toupper((unsigned char)ABC_HEX[i]);
    CU_ASSERT(pyoco_auth_hex_decode(upper, d) == 0);
    CU_ASSERT(memcmp(d, want, 32) == 0);
    CU_ASSERT(pyoco_auth_hex_decode(ABC_HEX "0", d) == -EINVAL);
    CU_ASSERT(pyoco_auth_hex_decode("ba78", d) == -EINVAL);
    CU_ASSERT(pyoco_auth_hex_decode("", d) == -EINVAL);
    CU_ASSERT(pyoco_auth_hex_decode(NULL, d) == -EINVAL);
    char bad[65];
    memcpy(bad, ABC_HEX, 65);
    bad[10] = 'g';
    CU_ASSERT(pyoco_auth_hex_decode(bad, d) == -EINVAL);
}

static void test_roles(void) {
    CU_ASSERT(pyoco_auth_role_parse("worker", 6) == PYOCO_AUTH_WORKER);
    CU_ASSERT(pyoco_auth_role_parse("admin", 5) == PYOCO_AUTH_ADMIN);
    CU_ASSERT(pyoco_auth_role_parse("reader,x", 6) == PYOCO_AUTH_READER);
    CU_ASSERT(pyoco_auth_role_parse("Worker", 6) == 0);
    CU_ASSERT(pyoco_auth_role_parse("work", 4) == 0);
    CU_ASSERT(pyoco_auth_role_parse("", 0) == 0);
    CU_ASSERT_STRING_EQUAL(pyoco_auth_role_name(PYOCO_AUTH_METRICS), "metrics");
}

static json_t *key_obj(const char *name, const char *hex, const char *role) {
    return json_pack("{s:s, s:s, s:[s]}", "name", name, "sha256", hex, "roles",
                     role);
}

static int from_json(pyoco_auth_keyset *ks, json_t *list, char *err) {
    int rc = pyoco_auth_keys_from_json(ks, list, "p.yaml:3", err, 512);
    json_decref(list);
    return rc;
}

static void test_keys_from_json(void) {
    char h1[65], h2[65], err[512];
    hex_of("one", h1);
    hex_of("two", h2);
    pyoco_auth_keyset ks = {0};
    json_t *l =
        json_pack("[o, {s:s, s:s, s:[s,s]}]", key_obj("a", h1, "worker"),
                  "name", "b", "sha256", h2, "roles", "reader", "admin");
    CU_ASSERT_FATAL(from_json(&ks, l, err) == 0);
    CU_ASSERT(ks.n == 2);
    CU_ASSERT_STRING_EQUAL(ks.keys[1].name, "b");
    CU_ASSERT(ks.keys[1].roles == (PYOCO_AUTH_READER | PYOCO_AUTH_ADMIN));
    pyoco_auth_keyset_free(&ks);

    struct {
        json_t *list;
        const char *want;
    } bad[] = {
        {json_pack("[o]", key_obj("a", "abc", "worker")),
         "p.yaml:3: plugins.auth.keys[0]: key 'a': sha256: expected 64 hex"},
        {json_pack("[o]", key_obj("a", h1, "wizard")),
         "p.yaml:3: plugins.auth.keys[0]: key 'a': roles[0]: unknown role "
         "'wizard'"},
        {json_pack("[o,o]", key_obj("a", h1, "worker"),
                   key_obj("a", h2, "reader")),
         "p.yaml:3: plugins.auth.keys[1]: key 'a': duplicate name"},
        {json_pack("[o,o]", key_obj("a", h1, "worker"),
                   key_obj("b", h1, "reader")),
         "p.yaml:3: plugins.auth.keys[1]: key 'b': same sha256 as key 'a'"},
        {json_pack("[o]", key_obj("has space", h1, "worker")),
         "p.yaml:3: plugins.auth.keys[0]: name: expected"},
        {json_pack("[{s:s,s:s,s:[]}]", "name", "a", "sha256", h1, "roles"),
         "key 'a': roles: expected at least one"},
        {json_pack("[{s:s,s:s,s:[s],s:s}]", "name", "a", "sha256", h1, "roles",
                   "admin", "key", "plain"),
         "keys[0]: unknown key 'key'"},
        {json_pack("[s]", "a"), "keys[0]: expected a mapping"},
        {json_pack("{}"), "plugins.auth.keys: expected a list"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pyoco_auth_keyset k2 = {0};
        err[0] = '\0';
        CU_ASSERT(from_json(&k2, bad[i].list, err) == -EINVAL);
        if (!strstr(err, bad[i].want))
            fprintf(stderr, "\n  case %zu: got \"%s\"\n", i, err);
        CU_ASSERT(strstr(err, bad[i].want) != NULL);
        pyoco_auth_keyset_free(&k2);
    }
}

static char *temp_file(const char *text) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/auth_keys_XXXXXX");
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_keys_from_file(void) {
    char h1[65], h2[65], text[600], err[512];
    hex_of("one", h1);
    hex_of("two", h2);
    snprintf(text, sizeof text,
             "# keys\n\n  ci\t%s  worker,reader # CI\r\nops %s admin\n", h1,
             h2);
    char *p = temp_file(text);
    pyoco_auth_keyset ks = {0};
    CU_ASSERT(pyoco_auth_keys_from_file(&ks, p, err, sizeof err) == 0);
    CU_ASSERT(ks.n == 2);
    CU_ASSERT_STRING_EQUAL(ks.keys[0].name, "ci");
    CU_ASSERT(ks.keys[0].roles == (PYOCO_AUTH_WORKER | PYOCO_AUTH_READER));
    unlink(p);

    /* A second file appended to the same set: duplicate names across. */
    char h3[65];
    hex_of("three", h3);
    snprintf(text, sizeof text, "x %s reader\nci %s reader\n", ABC_HEX, h3);
    p = temp_file(text);
    CU_ASSERT(pyoco_auth_keys_from_file(&ks, p, err, sizeof err) == -EINVAL);
    char want[128];
    snprintf(want, sizeof want, "%s:2: key 'ci': duplicate name", p);
    CU_ASSERT_STRING_EQUAL(err, want);
    unlink(p);
    pyoco_auth_keyset_free(&ks);

    const char *bad[][2] = {
        {"a %s worker,\n", ":1: key 'a': unknown role ''"},
        {"# c\na %s reader extra\n", ":2: key 'a': expected \"name"},
        {"a %s\n", ":1: key 'a': expected \"name"},
        {"a nothex reader\n%s", ":1: key 'a': sha256"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, bad[i][0], h1);
        p = temp_file(text);
        pyoco_auth_keyset k2 = {0};
        CU_ASSERT(pyoco_auth_keys_from_file(&k2, p, err, sizeof err) ==
                  -EINVAL);
        if (!strstr(err, bad[i][1]))
            fprintf(stderr, "\n  case %zu: got \"%s\"\n", i, err);
        CU_ASSERT(strstr(err, bad[i][1]) != NULL);
        pyoco_auth_keyset_free(&k2);
        unlink(p);
    }
    pyoco_auth_keyset k3 = {0};
    CU_ASSERT(pyoco_auth_keys_from_file(&k3, "/nonexistent/k", err,
                                        sizeof err) == -ENOENT);
    CU_ASSERT(strstr(err, "/nonexistent/k: cannot open key file") != NULL);
}

static void test_keys_match(void) {
    /* Several entries: the right one is found wherever it is. */
    const char *secrets[] = {"k-first", "k-middle", "k-last"};
    const char *names[] = {"first", "middle", "last"};
    pyoco_auth_keyset ks = {0};
    char err[256], hex[65];
    for (int i = 0; i < 3; i++) {
        hex_of(secrets[i], hex);
        CU_ASSERT_FATAL(pyoco_auth_keys_add(&ks, names[i], hex,
                                            PYOCO_AUTH_READER, "t", err,
                                            sizeof err) == 0);
    }
    for (int i = 0; i < 3; i++) {
        const pyoco_auth_key *k =
            pyoco_auth_keys_match(&ks, secrets[i], strlen(secrets[i]));
        CU_ASSERT_PTR_NOT_NULL_FATAL(k);
        CU_ASSERT_STRING_EQUAL(k->name, names[i]);
    }
    CU_ASSERT_PTR_NULL(pyoco_auth_keys_match(&ks, "k-firs", 6));
    CU_ASSERT_PTR_NULL(pyoco_auth_keys_match(&ks, "k-first ", 8));
    CU_ASSERT_PTR_NULL(pyoco_auth_keys_match(&ks, "", 0));
    /* The stored digest is not a key. */
    hex_of("k-first", hex);
    CU_ASSERT_PTR_NULL(pyoco_auth_keys_match(&ks, hex, 64));
    pyoco_auth_keyset_free(&ks);
    CU_ASSERT_PTR_NULL(pyoco_auth_keys_match(&ks, "k-first", 7));
}

static void test_cred_parse(void) {
    pyoco_auth_cred c;
    pyoco_auth_cred_parse(NULL, NULL, &c);
    CU_ASSERT(c.kind == PYOCO_AUTH_CRED_NONE);
    pyoco_auth_cred_parse(" abc \t", "Bearer other", &c);
    CU_ASSERT(c.kind == PYOCO_AUTH_CRED_KEY);
    CU_ASSERT(c.keylen == 3 && memcmp(c.key, "abc", 3) == 0);
    pyoco_auth_cred_parse(NULL, "bEaReR  tok-1 ", &c);
    CU_ASSERT(c.kind == PYOCO_AUTH_CRED_KEY);
    CU_ASSERT(c.keylen == 5 && memcmp(c.key, "tok-1", 5) == 0);
    pyoco_auth_cred_parse("", NULL, &c);
    CU_ASSERT(c.kind == PYOCO_AUTH_CRED_BAD);
    pyoco_auth_cred_parse(NULL, "Bearer ", &c);
    CU_ASSERT(c.kind == PYOCO_AUTH_CRED_BAD);
    pyoco_auth_cred_parse(NULL, "Bearertok", &c);
    CU_ASSERT(c.kind == PYOCO_AUTH_CRED_BAD);
    pyoco_auth_cred_parse(NULL, "Digest x", &c);
    CU_ASSERT(c.kind == PYOCO_AUTH_CRED_BAD);

    /* Basic: "a:b" (no padding), "ab:c" (two '='), "ab:cd" (one '='). */
    struct {
        const char *b64, *user, *pass;
    } ok[] = {{"YTpi", "a", "b"},
              {"YWI6Yw==", "ab", "c"},
              {"YWI6Y2Q=", "ab", "cd"},
              {"cHJvbTpzM2NyZXQ6cHc=", "prom", "s3cret:pw"},
              {"dTo=", "u", ""}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char h[64];
        snprintf(h, sizeof h, "Basic %s", ok[i].b64);
        pyoco_auth_cred_parse(NULL, h, &c);
        CU_ASSERT_FATAL(c.kind == PYOCO_AUTH_CRED_BASIC);
        CU_ASSERT(c.userlen == strlen(ok[i].user) &&
                  memcmp(c.user, ok[i].user, c.userlen) == 0);
        CU_ASSERT(c.passlen == strlen(ok[i].pass) &&
                  memcmp(c.pass, ok[i].pass, c.passlen) == 0);
    }
    const char *bad[] = {"Basic",
                         "Basic ",
                         "Basic cHJvbQ==" /* no colon */,
                         "Basic !!!!",
                         "Basic YTpi=" /* length */,
                         "Basic YQA6Yg==" /* "a\0:b" */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pyoco_auth_cred_parse(NULL, bad[i], &c);
        CU_ASSERT(c.kind == PYOCO_AUTH_CRED_BAD);
    }
    /* Longer than we accept: refused, not truncated. */
    size_t n = 4 * (PYOCO_AUTH_BASIC_MAX / 3 + 4);
    char *big = malloc(n + 7);
    memcpy(big, "Basic ", 6);
    memset(big + 6, 'Q', n);
    big[6 + n] = '\0';
    pyoco_auth_cred_parse(NULL, big, &c);
    CU_ASSERT(c.kind == PYOCO_AUTH_CRED_BAD);
    free(big);
    pyoco_auth_cred_clear(&c);
}

static void test_basic_check(void) {
    pyoco_auth_basic b = {.set = true};
    CU_ASSERT_FATAL(pyoco_auth_sha256("prom", 4, b.user_digest) == 0);
    CU_ASSERT_FATAL(pyoco_auth_sha256("s3cret:pw", 9, b.pass_digest) == 0);
    pyoco_auth_cred c;
    pyoco_auth_cred_parse(NULL, "Basic cHJvbTpzM2NyZXQ6cHc=", &c);
    CU_ASSERT(pyoco_auth_basic_check(&b, &c));
    pyoco_auth_cred_parse(NULL, "Basic cHJvbTpzM2NyZXQ6cHg=", &c); /* :px */
    CU_ASSERT(!pyoco_auth_basic_check(&b, &c));
    pyoco_auth_cred_parse(NULL, "Basic cHJvTTpzM2NyZXQ6cHc=", &c); /* proM */
    CU_ASSERT(!pyoco_auth_basic_check(&b, &c));
    pyoco_auth_cred_parse("x", NULL, &c);
    CU_ASSERT(!pyoco_auth_basic_check(&b, &c));
    b.set = false;
    pyoco_auth_cred_parse(NULL, "Basic cHJvbTpzM2NyZXQ6cHc=", &c);
    CU_ASSERT(!pyoco_auth_basic_check(&b, &c));
}

static void test_rights(void) {
    const char *mp = "/metrics";
    struct {
        unsigned m;
        const char *route;
        unsigned need;
    } t[] = {
        {PYOCO_HTTP_POST, "/workers/poll", PYOCO_AUTH_WORKER},
        {PYOCO_HTTP_POST, "/runs/{run_id}/heartbeat", PYOCO_AUTH_WORKER},
        {PYOCO_HTTP_POST, "/runs", PYOCO_AUTH_SUBMITTER},
        {PYOCO_HTTP_POST, "/runs/{run_id}/cancel", PYOCO_AUTH_SUBMITTER},
        {PYOCO_HTTP_GET, "/runs", PYOCO_AUTH_READER},
        {PYOCO_HTTP_GET, "/runs/{run_id}", PYOCO_AUTH_READER},
        {PYOCO_HTTP_GET, "/runs/{run_id}/logs", PYOCO_AUTH_READER},
        {PYOCO_HTTP_GET, "/runs/{run_id}/events", PYOCO_AUTH_READER},
        {PYOCO_HTTP_HEAD, "/runs", PYOCO_AUTH_READER},
        {PYOCO_HTTP_GET, "/some/other/plugin", PYOCO_AUTH_READER},
        {PYOCO_HTTP_GET, "/metrics", PYOCO_AUTH_METRICS},
        {PYOCO_HTTP_POST, "/metrics", PYOCO_AUTH_ADMIN},
        {PYOCO_HTTP_DELETE, "/runs/{run_id}", PYOCO_AUTH_ADMIN},
        {PYOCO_HTTP_PUT, "/runs", PYOCO_AUTH_ADMIN},
        {PYOCO_HTTP_POST, "/webhooks/replay", PYOCO_AUTH_ADMIN},
        {PYOCO_HTTP_POST, NULL, PYOCO_AUTH_ADMIN},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        CU_ASSERT(pyoco_auth_required(t[i].m, t[i].route, mp) == t[i].need);
    CU_ASSERT(pyoco_auth_required(PYOCO_HTTP_GET, "/metrics", "/m") ==
              PYOCO_AUTH_READER);
    CU_ASSERT(pyoco_auth_required(PYOCO_HTTP_GET, "/m", "/m") ==
              PYOCO_AUTH_METRICS);
    CU_ASSERT(pyoco_auth_allows(PYOCO_AUTH_ADMIN, PYOCO_AUTH_WORKER));
    CU_ASSERT(pyoco_auth_allows(PYOCO_AUTH_WORKER | PYOCO_AUTH_READER,
                                PYOCO_AUTH_READER));
    CU_ASSERT(!pyoco_auth_allows(PYOCO_AUTH_READER, PYOCO_AUTH_METRICS));
    CU_ASSERT(!pyoco_auth_allows(PYOCO_AUTH_METRICS | PYOCO_AUTH_SUBMITTER,
                                 PYOCO_AUTH_ADMIN));
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("auth_units", NULL, NULL);
    CU_add_test(s, "hex and sha256", test_hex_and_sha256);
    CU_add_test(s, "roles", test_roles);
    CU_add_test(s, "keys from json", test_keys_from_json);
    CU_add_test(s, "keys from file", test_keys_from_file);
    CU_add_test(s, "keys match", test_keys_match);
    CU_add_test(s, "credential headers", test_cred_parse);
    CU_add_test(s, "basic check", test_basic_check);
    CU_add_test(s, "rights", test_rights);
}
