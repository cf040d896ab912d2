/*
 * remote.c -- the memory commands against a running server (--url).
 *
 * With --url URL (or $DELTAMEMORY_URL) the commands below do not open a
 * database: each becomes one request to the server's native API
 * (docs/api.md) and prints the server's JSON answer on one line.  The
 * API key comes from --api-key or $DELTAMEMORY_API_KEY.  The table says,
 * per command, the method and path and where each option goes: a path
 * segment ({u} the user, {s} the session, {i} the id), a query parameter
 * or a body member, and how its text is typed (string, integer, a JSON
 * value, a flag).  Errors print the server's message on one line and exit
 * 1 (2 for a refused request: a 4xx).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"

typedef enum { A_STR, A_INT, A_JSON, A_FLAG, A_NOFLAG } arg_type;
typedef enum { TO_BODY, TO_QUERY, TO_PATH, TO_MSG, TO_NONE } arg_to;

typedef struct remote_arg {
    const char *flag;   /* the command's option */
    char short_name;
    arg_type type;
    arg_to to;
    const char *key;    /* body member / query name / path placeholder */
    bool is_required;
} remote_arg;

typedef struct remote_cmd {
    const char *name;
    const char *method;
    const char *path;   /* with {u}, {s}, {i} */
    remote_arg args[16];
} remote_cmd;

#define USER_PATH { "user", 'u', A_STR, TO_PATH, "u", true }
#define USER_BODY { "user", 'u', A_STR, TO_BODY, "user_id", true }
#define USER_QUERY { "user", 'u', A_STR, TO_QUERY, "user_id", true }
#define ID_PATH { "id", 0, A_STR, TO_PATH, "i", true }

static const remote_cmd cmds[] = {
    { "add", "POST", "/v1/memories",
      { USER_BODY,
        { "text", 't', A_STR, TO_BODY, "text", true },
        { "time", 0, A_STR, TO_BODY, "time", false },
        { "meta", 'm', A_JSON, TO_BODY, "metadata", false },
        { "agent", 0, A_STR, TO_BODY, "agent_id", false },
        { "session", 0, A_STR, TO_BODY, "session_id", false },
        { "role", 0, A_STR, TO_BODY, "role", false },
        { "kind", 0, A_STR, TO_BODY, "kind", false },
        { "no-extract", 0, A_NOFLAG, TO_BODY, "extract", false } } },
    { "search", "POST", "/v1/search",
      { USER_BODY,
        { "query", 'q', A_STR, TO_BODY, "query", true },
        { "k", 'k', A_INT, TO_BODY, "k", false },
        { "time", 0, A_STR, TO_BODY, "now", false },
        { "from", 0, A_STR, TO_BODY, "from", false },
        { "to", 0, A_STR, TO_BODY, "to", false },
        { "filter", 0, A_JSON, TO_BODY, "filter", false },
        { "agent", 0, A_STR, TO_BODY, "agent_id", false },
        { "session", 0, A_STR, TO_BODY, "session_id", false },
        { "explain", 0, A_FLAG, TO_BODY, "explain", false },
        { "archived", 0, A_FLAG, TO_BODY, "archived", false } } },
    { "get", "GET", "/v1/memories/{i}", { ID_PATH, USER_QUERY } },
    { "update", "PATCH", "/v1/memories/{i}",
      { ID_PATH, USER_BODY,
        { "text", 't', A_STR, TO_BODY, "text", false },
        { "meta", 'm', A_JSON, TO_BODY, "metadata", false } } },
    { "delete", "DELETE", "/v1/memories/{i}", { ID_PATH, USER_QUERY } },
    { "list", "GET", "/v1/users/{u}/memories",
      { USER_PATH,
        { "from", 0, A_STR, TO_QUERY, "from", false },
        { "to", 0, A_STR, TO_QUERY, "to", false },
        { "limit", 'n', A_STR, TO_QUERY, "limit", false },
        { "cursor", 0, A_STR, TO_QUERY, "cursor", false },
        { "archived", 0, A_FLAG, TO_QUERY, "archived", false } } },
    { "erase-user", "DELETE", "/v1/users/{u}", { USER_PATH } },
    { "remember", "POST", "/v1/sessions/{s}/messages",
      { USER_BODY,
        { "session", 0, A_STR, TO_PATH, "s", true },
        { "text", 't', A_STR, TO_MSG, "content", true },
        { "role", 0, A_STR, TO_MSG, "role", false },
        { "time", 0, A_STR, TO_MSG, "time", false },
        { "speaker", 0, A_STR, TO_MSG, "name", false },
        { "async", 0, A_NOFLAG, TO_BODY, "wait", false } } },
    { "profile", "GET", "/v1/users/{u}/profile",
      { USER_PATH,
        { "as-of", 0, A_STR, TO_QUERY, "as_of", false },
        { "history", 0, A_FLAG, TO_QUERY, "history", false },
        { "known-now", 0, A_FLAG, TO_QUERY, "known_now", false } } },
    { "events", "GET", "/v1/users/{u}/events",
      { USER_PATH,
        { "from", 0, A_STR, TO_QUERY, "from", false },
        { "to", 0, A_STR, TO_QUERY, "to", false } } },
    { "graph", "GET", "/v1/users/{u}/graph",
      { USER_PATH,
        { "entity", 'e', A_STR, TO_QUERY, "entity", false },
        { "depth", 'd', A_STR, TO_QUERY, "depth", false } } },
    { "context", "GET", "/v1/sessions/{s}/context",
      { USER_QUERY,
        { "session", 0, A_STR, TO_PATH, "s", true },
        { "query", 'q', A_STR, TO_QUERY, "query", false },
        { "max-tokens", 0, A_STR, TO_QUERY, "max_tokens", false },
        { "time", 0, A_STR, TO_QUERY, "time", false } } },
    { "history", "GET", "/v1/users/{u}/history/{i}", { USER_PATH, ID_PATH } },
};

bool cli_remote_has(const char *cmd)
{
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmds[i].name, cmd))
            return true;
    return false;
}

typedef struct grow {
    char *p;
    size_t n;
} grow;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    grow *g = ud;
    size_t add = size * nmemb;
    char *np = realloc(g->p, g->n + add + 1);
    if (!np)
        return 0;
    memcpy(np + g->n, ptr, add);
    g->p = np;
    g->n += add;
    g->p[g->n] = 0;
    return add;
}

/* Append s to the URL being built, percent-encoded. */
static bool url_add(char *url, size_t cap, const char *s, bool is_encoded)
{
    size_t n = strlen(url);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = !is_encoded || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
        if (n + 4 >= cap)
            return false;
        n += (size_t)(plain ? snprintf(url + n, cap - n, "%c", c)
                            : snprintf(url + n, cap - n, "%%%02X", c));
    }
    return true;
}

int cli_remote(const cli_globals *g, const char *name, int argc, char **argv)
{
    const remote_cmd *rc = NULL;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmds[i].name, name))
            rc = &cmds[i];
    if (!rc)
        return cli_usage(name, "this command does not work with --url (only on a local "
                         "database)");
    cli_opt opts[CLI_MAX_OPTS];
    size_t n_opts = 0;
    for (const remote_arg *a = rc->args; a->flag && n_opts < CLI_MAX_OPTS; a++)
        opts[n_opts++] = (cli_opt){ a->flag, a->short_name,
                                    a->type != A_FLAG && a->type != A_NOFLAG };
    cli_args ca;
    int st = cli_begin(name, g, opts, n_opts, argc, argv, &ca);
    if (st != CLI_PROCEED)
        return st;

    json_t *body = json_object(), *msg = json_object();
    char url[4096], query[4096] = "";
    snprintf(url, sizeof url, "%s", g->url);
    size_t ul = strlen(url);
    if (ul && url[ul - 1] == '/')
        url[ul - 1] = 0;
    const char *pathvals[3] = { NULL, NULL, NULL }; /* u, s, i */
    bool has_body = false, has_msg = false;
    st = CLI_OK;
    for (const remote_arg *a = rc->args; a->flag && st == CLI_OK; a++) {
        const char *v = cli_get(&ca, a->flag);
        if (!v) {
            if (a->is_required)
                st = cli_usage(name, "--%s is required", a->flag);
            continue;
        }
        if (a->to == TO_PATH) {
            pathvals[a->key[0] == 'u' ? 0 : a->key[0] == 's' ? 1 : 2] = v;
            continue;
        }
        if (a->to == TO_QUERY) {
            size_t ql = strlen(query);
            snprintf(query + ql, sizeof query - ql, "%c%s=", ql ? '&' : '?', a->key);
            if (!url_add(query, sizeof query, a->type == A_FLAG ? "true" : v, true))
                st = cli_usage(name, "the arguments are too long");
            continue;
        }
        json_t *jv = NULL;
        if (a->type == A_STR) {
            jv = json_string(v);
        } else if (a->type == A_INT) {
            uint32_t x;
            if ((st = cli_parse_u32(name, a->flag, v, 0, 0xffffffffu, &x)) != CLI_OK)
                break;
            jv = json_integer(x);
        } else if (a->type == A_JSON) {
            jv = json_loads(v, JSON_DECODE_ANY, NULL);
            if (!jv)
                st = cli_usage(name, "--%s must be JSON", a->flag);
        } else {
            jv = json_boolean(a->type == A_FLAG);
        }
        if (!jv)
            continue;
        json_object_set_new(a->to == TO_MSG ? msg : body, a->key, jv);
        has_msg |= a->to == TO_MSG;
        has_body |= a->to == TO_BODY;
    }
    if (st == CLI_OK && has_msg) {
        json_object_set_new(body, "messages", json_pack("[O]", msg));
        has_body = true;
    }
    for (const char *p = rc->path; st == CLI_OK && *p; p++) {
        if (p[0] == '{' && p[2] == '}') {
            const char *v = pathvals[p[1] == 'u' ? 0 : p[1] == 's' ? 1 : 2];
            if (!url_add(url, sizeof url, v ? v : "", true))
                st = cli_usage(name, "the arguments are too long");
            p += 2;
        } else {
            char c[2] = { *p, 0 };
            url_add(url, sizeof url, c, false);
        }
    }
    if (st == CLI_OK && !url_add(url, sizeof url, query, false))
        st = cli_usage(name, "the arguments are too long");
    char *txt = st == CLI_OK && has_body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    json_decref(msg);
    if (st != CLI_OK)
        return st;

    CURL *h = curl_easy_init();
    grow resp = { NULL, 0 };
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    const char *key = g->api_key ? g->api_key : getenv("DELTAMEMORY_API_KEY");
    char kh[512];
    if (key && *key) {
        snprintf(kh, sizeof kh, "X-API-Key: %s", key);
        hl = curl_slist_append(hl, kh);
    }
    long status = 0;
    CURLcode cc = CURLE_FAILED_INIT;
    if (h) {
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rc->method);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L);
        if (txt)
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, txt);
        cc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
    }
    curl_slist_free_all(hl);
    free(txt);
    if (cc != CURLE_OK) {
        free(resp.p);
        return cli_error(name, "cannot reach the server at %s: %s", g->url,
                         curl_easy_strerror(cc));
    }
    if (status < 200 || status > 299) {
        json_t *e = resp.p ? json_loads(resp.p, 0, NULL) : NULL;
        json_t *eo = json_object_get(e, "error");
        const char *m = json_string_value(json_object_get(eo, "message"));
        if (!m)
            m = json_string_value(eo);
        cli_error(name, "the server answered %ld: %s", status, m ? m : (resp.p ? resp.p : ""));
        json_decref(e);
        free(resp.p);
        return status >= 400 && status < 500 ? CLI_USAGE : CLI_FAILED;
    }
    if (resp.p)
        fputs(resp.p, stdout);
    if (!resp.n || resp.p[resp.n - 1] != '\n')
        fputc('\n', stdout);
    free(resp.p);
    return cli_finish_output(name, CLI_OK);
}
