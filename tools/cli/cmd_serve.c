/*
 * cmd_serve.c -- `deltamemory serve`: the HTTP/JSON server over a database.
 *
 * The configuration comes from, lowest first: the defaults, a JSON file
 * (--config FILE, else deltamemory.json in the working directory when it
 * exists), the environment (DELTAMEMORY_HOST, DELTAMEMORY_PORT, ...) and
 * the command line.  docs/api.md lists every setting.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "server/server.h"

/* One setting: its name in the file, its environment variable and flag,
 * and where it goes: the server's configuration or, for the engine's
 * options, the globals the database is opened with. */
typedef enum { T_STR, T_U32, T_SIZE, T_NUM, T_BOOL } set_type;

typedef struct setting {
    const char *key, *env, *flag;
    set_type type;
    size_t off;
    bool is_engine;
} setting;

#define OFF(f) offsetof(http_config, f)
#define HTTP(f) OFF(f), false
#define ENG(f) offsetof(cli_globals, f), true
static const setting settings[] = {
    { "host", "DELTAMEMORY_HOST", "host", T_STR, HTTP(host) },
    { "port", "DELTAMEMORY_PORT", "port", T_U32, HTTP(port) },
    { "threads", "DELTAMEMORY_THREADS", "threads", T_U32, HTTP(n_threads) },
    { "write_threads", "DELTAMEMORY_WRITE_THREADS", "write-threads", T_U32,
      HTTP(n_write_threads) },
    { "max_connections", "DELTAMEMORY_MAX_CONNECTIONS", "max-connections", T_U32,
      HTTP(max_connections) },
    { "timeout_s", "DELTAMEMORY_TIMEOUT_S", "timeout", T_U32, HTTP(timeout_s) },
    { "max_body_bytes", "DELTAMEMORY_MAX_BODY_BYTES", "max-body", T_SIZE, HTTP(max_body_len) },
    { "max_text_bytes", "DELTAMEMORY_MAX_TEXT_BYTES", "max-text", T_SIZE, HTTP(max_text_len) },
    { "max_batch", "DELTAMEMORY_MAX_BATCH", "max-batch", T_U32, HTTP(max_batch) },
    { "max_top_k", "DELTAMEMORY_MAX_TOP_K", "max-top-k", T_U32, HTTP(max_top_k) },
    { "max_depth", "DELTAMEMORY_MAX_DEPTH", "max-depth", T_U32, HTTP(max_depth) },
    { "rate_per_second", "DELTAMEMORY_RATE", "rate", T_NUM, HTTP(rate_per_s) },
    { "rate_burst", "DELTAMEMORY_RATE_BURST", "rate-burst", T_NUM, HTTP(rate_burst) },
    { "user_concurrency", "DELTAMEMORY_USER_CONCURRENCY", "user-concurrency", T_U32,
      HTTP(user_concurrency) },
    { "strict", "DELTAMEMORY_STRICT", "strict", T_BOOL, HTTP(is_strict) },
    { "open", "DELTAMEMORY_OPEN", "open", T_BOOL, HTTP(is_open) },
    { "access_log", "DELTAMEMORY_ACCESS_LOG", "access-log", T_STR, HTTP(access_log) },
    { "user_idle_s", "DELTAMEMORY_USER_IDLE_S", "user-idle", T_U32, ENG(user_idle_s) },
    { "index_memory_bytes", "DELTAMEMORY_INDEX_MEMORY_BYTES", "index-memory", T_SIZE,
      ENG(index_memory_bytes) },
    { "map_memory_bytes", "DELTAMEMORY_MAP_MEMORY_BYTES", "map-memory", T_SIZE,
      ENG(map_memory_bytes) },
    { "pread_tables", "DELTAMEMORY_PREAD_TABLES", "pread-tables", T_BOOL, ENG(pread_tables) },
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

/* Set one setting from text; false when the text does not parse. */
static bool set_text(http_config *c, cli_globals *g, const setting *s, const char *v)
{
    char *p = (s->is_engine ? (char *)g : (char *)c) + s->off, *end;
    errno = 0;
    switch (s->type) {
    case T_STR:
        *(const char **)p = v;
        return true;
    case T_U32: {
        unsigned long x = strtoul(v, &end, 10);
        bool is_port = !s->is_engine && s->off == OFF(port);
        if (errno || *end || !*v || x > (is_port ? 65535ul : 0xfffffffful))
            return false;
        if (is_port)
            *(uint16_t *)p = (uint16_t)x;
        else
            *(uint32_t *)p = (uint32_t)x; /* every other T_U32 field is 32-bit */
        return true;
    }
    case T_SIZE: {
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || *end || !*v)
            return false;
        *(size_t *)p = (size_t)x;
        return true;
    }
    case T_NUM: {
        double x = strtod(v, &end);
        if (errno || *end || !*v)
            return false;
        *(double *)p = x;
        return true;
    }
    case T_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "1") || !*v)
            *(bool *)p = true;
        else if (!strcmp(v, "false") || !strcmp(v, "0"))
            *(bool *)p = false;
        else
            return false;
        return true;
    }
    return false;
}

/* The settings of a JSON config file; *doc keeps its strings alive. */
static int load_file(const char *cmd, const char *path, http_config *c, cli_globals *g,
                     json_t **doc)
{
    json_error_t je;
    *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!*doc)
        return cli_usage(cmd, "config file %s: line %d column %d: %s", path, je.line,
                         je.column, je.text);
    if (!json_is_object(*doc))
        return cli_usage(cmd, "config file %s: must hold a JSON object", path);
    const char *k;
    json_t *v;
    json_object_foreach(*doc, k, v) {
        const setting *s = NULL;
        for (size_t i = 0; i < N_SETTINGS && !s; i++)
            if (!strcmp(settings[i].key, k))
                s = &settings[i];
        if (!s)
            return cli_usage(cmd, "config file %s: unknown setting \"%s\"", path, k);
        char buf[64];
        const char *txt = NULL;
        if (json_is_string(v) && s->type == T_STR)
            txt = json_string_value(v);
        else if (json_is_boolean(v) && s->type == T_BOOL)
            txt = json_is_true(v) ? "true" : "false";
        else if (json_is_number(v) && s->type != T_STR && s->type != T_BOOL) {
            snprintf(buf, sizeof buf, s->type == T_NUM ? "%.17g" : "%.0f",
                     json_number_value(v));
            txt = buf;
        }
        if (!txt || !set_text(c, g, s, txt))
            return cli_usage(cmd, "config file %s: setting \"%s\" has the wrong type or "
                             "range", path, k);
    }
    return CLI_OK;
}

int cli_cmd_serve(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "serve";
    cli_opt opts[N_SETTINGS + 1];
    for (size_t i = 0; i < N_SETTINGS; i++)
        opts[i] = (cli_opt){ settings[i].flag, 0, settings[i].type != T_BOOL };
    opts[N_SETTINGS] = (cli_opt){ "config", 0, true };
    cli_args a;
    int st = cli_parse(cmd, g, opts, N_SETTINGS + 1, argc, argv, &a);
    if (st != CLI_OK)
        return st;
    if (a.is_help)
        return cli_print_help(cli_find_command(cmd));
    if (a.n_pos > 1)
        return cli_usage(cmd, "serve takes at most one argument: the database directory");
    cli_globals gg = *g;
    if (a.n_pos == 1)
        gg.data_dir = a.pos[0];

    http_config c;
    http_config_init(&c);
    json_t *doc = NULL;
    const char *file = cli_get(&a, "config");
    if (!file && access("deltamemory.json", R_OK) == 0)
        file = "deltamemory.json";
    if (file && (st = load_file(cmd, file, &c, &gg, &doc)) != CLI_OK)
        goto out;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *v = getenv(settings[i].env);
        if (v && !set_text(&c, &gg, &settings[i], v)) {
            st = cli_usage(cmd, "environment variable %s=\"%s\" is not valid", settings[i].env,
                           v);
            goto out;
        }
    }
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *v = cli_get(&a, settings[i].flag);
        if (v && !set_text(&c, &gg, &settings[i], v)) {
            st = cli_usage(cmd, "--%s \"%s\" is not valid", settings[i].flag, v);
            goto out;
        }
    }
    c.data_dir = gg.data_dir;
    gg.max_text_bytes = c.max_text_len;
    c.llm_url = g->llm_url;

    dm_db *db;
    if ((st = cli_open(&gg, cmd, true, false, &db)) != CLI_OK)
        goto out;
    int rc = http_serve(db, &c);
    if (rc)
        st = cli_fail(cmd, rc, "cannot start the server");
    st = cli_close(cmd, db, st);
out:
    json_decref(doc);
    return st;
}
