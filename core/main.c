/* core/main.c - the `pyoco` command line.
 *
 *   pyoco server start [--host H] [--port P] [--config FILE] [--log-level L]
 *   pyoco plugins list [--config FILE] [--json]
 *   pyoco --version | --help
 *
 * Exit status: 0 success, 1 the server or a plugin failed, 2 bad usage or
 * bad configuration. */
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client.h"
#include "log.h"
#include "server.h"

/* Without --config (or PYOCO_CONFIG): what Pyoco's own server offers. */
static const char k_default_yaml[] = "plugins:\n"
                                     "  rest: {}\n"
                                     "  prometheus: {}\n"
                                     "  webhook: {}\n";

static void usage(FILE *f) {
    fputs(
        "usage:\n"
        "  pyoco server start [--host H] [--port P] [--config FILE]\n"
        "                     [--log-level debug|info|warn|error]\n"
        "  pyoco plugins list [--config FILE] [--json]\n"
        "  pyoco runs list|show|cancel|logs ... [--server URL] [--json]\n"
        "                     (pyoco runs --help for details)\n"
        "  pyoco --version\n"
        "  pyoco --help\n"
        "\n"
        "server start   serve the Kanban API and the enabled plugins\n"
        "               (defaults: --host 0.0.0.0 --port 8000; --port 0\n"
        "               picks a free port and logs it). Without --config,\n"
        "               $PYOCO_CONFIG or built-in defaults (rest, prometheus,\n"
        "               webhook) are used.\n"
        "plugins list   the plugins found in the plugin path, with their\n"
        "               version, ABI and configuration keys\n"
        "runs ...       list, show, cancel runs and read their logs on a\n"
        "               Kanban server (see docs/cli.md)\n",
        f);
}

typedef struct cli {
    const char *host;
    const char *port;
    const char *config;
    const char *log_level;
    bool json;
} cli;

/* Parse --flag VALUE / --flag=VALUE options. Returns 0, or 2 on bad usage. */
static int parse_opts(int argc, char **argv, int i, cli *c, bool server) {
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        const char *name = NULL;
        if (!strncmp(a, "--config", 8))
            slot = &c->config, name = "--config";
        else if (server && !strncmp(a, "--host", 6))
            slot = &c->host, name = "--host";
        else if (server && !strncmp(a, "--port", 6))
            slot = &c->port, name = "--port";
        else if (server && !strncmp(a, "--log-level", 11))
            slot = &c->log_level, name = "--log-level";
        else if (!server && !strcmp(a, "--json")) {
            c->json = true;
            continue;
        }
        size_t nl = name ? strlen(name) : 0;
        if (!slot || (a[nl] != '\0' && a[nl] != '=')) {
            fprintf(stderr, "pyoco: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (a[nl] == '=') {
            *slot = a + nl + 1;
        } else if (i + 1 < argc) {
            *slot = argv[++i];
        } else {
            fprintf(stderr, "pyoco: %s needs a value\n", name);
            return 2;
        }
    }
    return 0;
}

static int load_config(const cli *c, pyoco_config **cfg) {
    char err[1024] = "";
    const char *path = c->config ? c->config : getenv("PYOCO_CONFIG");
    int rc;
    if (path && *path)
        rc = pyoco_config_load(path, cfg, err, sizeof(err));
    else
        rc = pyoco_config_parse(k_default_yaml, sizeof(k_default_yaml) - 1,
                                "<built-in defaults>", ".", cfg, err,
                                sizeof(err));
    if (rc) {
        fprintf(stderr, "pyoco: configuration error: %s\n", err);
        return 2;
    }
    return 0;
}

static int cmd_server_start(int argc, char **argv) {
    cli c = {0};
    if (parse_opts(argc, argv, 3, &c, true))
        return 2;
    if (c.log_level) {
        static const char *const names[] = {"debug", "info", "warn", "error"};
        int lv = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(c.log_level, names[i]))
                lv = i;
        if (lv < 0) {
            fprintf(stderr, "pyoco: --log-level: expected debug, info, warn "
                            "or error\n");
            return 2;
        }
        pyoco_log_set_level((pyoco_log_level)lv);
    }
    pyoco_config *cfg = NULL;
    if (load_config(&c, &cfg))
        return 2;
    pyoco_server_settings *s = pyoco_config_server_mut(cfg);
    char *file_host = strdup(s->host);
    int file_port = s->port;
    if (c.host) {
        char *h = strdup(c.host);
        if (!h)
            return 1;
        free(s->host);
        s->host = h;
    }
    if (c.port) {
        char *end = NULL;
        long p = strtol(c.port, &end, 10);
        if (!*c.port || *end || p < 0 || p > 65535) {
            fprintf(stderr, "pyoco: --port: expected 0..65535, got '%s'\n",
                    c.port);
            free(file_host);
            pyoco_config_free(cfg);
            return 2;
        }
        s->port = (int)p;
    }
    char err[2048] = "";
    pyoco_server *srv = NULL;
    if (pyoco_server_new(cfg, &srv, err, sizeof(err))) {
        fprintf(stderr, "pyoco: %s\n", err);
        free(file_host);
        pyoco_config_free(cfg);
        return 1;
    }
    const char *path = c.config ? c.config : getenv("PYOCO_CONFIG");
    srv->config_path = path && *path ? realpath(path, NULL) : NULL;
    srv->file_host = file_host;
    srv->file_port = file_port;
    if (pyoco_server_start(srv, err, sizeof(err))) {
        PYOCO_LOGE("%s", err);
        PYOCO_LOGE("not started");
        pyoco_server_free(srv);
        return 1;
    }
    int code = pyoco_server_run(srv);
    pyoco_server_free(srv);
    PYOCO_LOGI("stopped");
    return code;
}

static const char *type_name(pyoco_config_type t) {
    switch (t) {
    case PYOCO_CONFIG_STRING:
        return "string";
    case PYOCO_CONFIG_INT:
        return "int";
    case PYOCO_CONFIG_DOUBLE:
        return "number";
    case PYOCO_CONFIG_BOOL:
        return "bool";
    case PYOCO_CONFIG_LIST:
        return "list";
    case PYOCO_CONFIG_MAP:
        return "map";
    }
    return "?";
}

static json_t *describe(const char *path, const pyoco_plugin_desc *d) {
    json_t *keys = json_array();
    for (const pyoco_config_key *k = d->config_keys; k && k->name; k++)
        json_array_append_new(
            keys, json_pack("{s:s, s:s, s:s?, s:s?, s:s?}", "name", k->name,
                            "type", type_name(k->type), "default",
                            k->default_value, "help", k->help, "env", k->env));
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "name", d->name,
                     "version", d->version ? d->version : "", "abi", "",
                     "description", d->description ? d->description : "",
                     "config_keys", keys, "file", path);
}

static int cmd_plugins_list(int argc, char **argv) {
    cli c = {0};
    if (parse_opts(argc, argv, 3, &c, false))
        return 2;
    pyoco_config *cfg = NULL;
    if (c.config && load_config(&c, &cfg))
        return 2;
    const char *dirs[72];
    size_t nd = 0;
    for (size_t i = 0; cfg && i < pyoco_config_path_count(cfg) && nd < 64; i++)
        dirs[nd++] = pyoco_config_path(cfg, i);
    nd += pyoco_loader_default_dirs(dirs + nd, 72 - nd);
    json_t *all = json_array();
    json_t *seen = json_object();
    int problems = 0;
    for (size_t i = 0; i < nd; i++) {
        DIR *dir = opendir(dirs[i]);
        if (!dir)
            continue;
        struct dirent *e;
        while ((e = readdir(dir))) {
            size_t len = strlen(e->d_name);
            if (len < 4 || strcmp(e->d_name + len - 3, ".so"))
                continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", dirs[i], e->d_name);
            void *dl;
            const pyoco_plugin_desc *d;
            char err[1024];
            if (pyoco_loader_probe(path, &dl, &d, err, sizeof(err))) {
                fprintf(stderr, "pyoco: skipped %s\n", err);
                problems++;
                continue;
            }
            if (!json_object_get(seen, d->name)) { /* first in path wins */
                json_t *o = describe(path, d);
                char abi[32];
                snprintf(abi, sizeof(abi), "%u.%u", d->abi_major, d->abi_minor);
                json_object_set_new(o, "abi", json_string(abi));
                json_array_append_new(all, o);
                json_object_set_new(seen, d->name, json_true());
            }
            dlclose(dl);
        }
        closedir(dir);
    }
    if (c.json) {
        char *s = json_dumps(all, JSON_INDENT(2));
        puts(s);
        free(s);
    } else {
        size_t i;
        json_t *o;
        json_array_foreach(all, i, o) {
            printf("%s %s (ABI %s) - %s\n  %s\n",
                   json_string_value(json_object_get(o, "name")),
                   json_string_value(json_object_get(o, "version")),
                   json_string_value(json_object_get(o, "abi")),
                   json_string_value(json_object_get(o, "description")),
                   json_string_value(json_object_get(o, "file")));
            size_t j;
            json_t *k;
            json_array_foreach(json_object_get(o, "config_keys"), j, k) {
                const char *def =
                    json_string_value(json_object_get(k, "default"));
                const char *env = json_string_value(json_object_get(k, "env"));
                printf("    %-22s %-7s default %-10s %s%s%s%s\n",
                       json_string_value(json_object_get(k, "name")),
                       json_string_value(json_object_get(k, "type")),
                       def ? def : "-",
                       json_string_value(json_object_get(k, "help"))
                           ? json_string_value(json_object_get(k, "help"))
                           : "",
                       env ? " (env " : "", env ? env : "", env ? ")" : "");
            }
        }
        if (json_array_size(all) == 0)
            printf("no plugins found\n");
    }
    json_decref(all);
    json_decref(seen);
    pyoco_config_free(cfg);
    return problems ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("pyoco %s (plugin ABI %d.%d)\n", PYOCO_VERSION, PYOCO_ABI_MAJOR,
               PYOCO_ABI_MINOR);
        return 0;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "server") && !strcmp(argv[2], "start"))
        return cmd_server_start(argc, argv);
    if (argc >= 3 && !strcmp(argv[1], "plugins") && !strcmp(argv[2], "list"))
        return cmd_plugins_list(argc, argv);
    if (!strcmp(argv[1], "runs"))
        return pyoco_client_runs(argc - 2, argv + 2);
    fprintf(stderr, "pyoco: unknown command '%s%s%s'\n", argv[1],
            argc >= 3 ? " " : "", argc >= 3 ? argv[2] : "");
    usage(stderr);
    return 2;
}
