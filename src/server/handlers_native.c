/*
 * handlers_native.c -- the server's own dialect: every part of the dm_*
 * API over JSON, with paths under /v1 and no trailing slash (docs/api.md).
 *
 * What: memories (add, batch add, get, patch, delete, list, search),
 * sessions (messages, context, chat), knowledge (profile, events, graph,
 * fact and memory history), users (export, import, erase, decay), the
 * engine's statistics, and the OpenAPI document of every dialect.
 *
 * Design.  Each handler reads all of its arguments with the helpers of
 * handlers.h before it makes its first dm_* call, so that a refused request
 * changes nothing; writes of several items go through one dm_add_batch
 * (validated whole before anything is stored).  Every call carries the
 * request's tenant, and single-memory calls a dm_scope with the user too,
 * so an id of another user or tenant is simply not found.  A user with no
 * memories is not an error for reads that return lists (list, search,
 * profile, events, graph, context, export): they answer empty, as for a
 * user who erased everything.  Field names in errors use the body's own
 * path ("memories[3].text", "weights.recency").  JSON shapes of knowledge
 * come from kjson.c and of memories from mjson.c, shared with the
 * command line.
 *
 * Export streams: a thread runs dm_export (one consistent snapshot, in
 * key order, the lines of `deltamemory export`) and writes each line to
 * one end of a socket pair; the response's stream callback reads the
 * other end.  The socket's buffer bounds what waits in memory, and a
 * client that goes away closes the reading end, which stops the thread at
 * its next write (MSG_NOSIGNAL: no SIGPIPE).  The stream's free function
 * joins the thread, so nothing outlives the response.
 *
 * The OpenAPI document docs/openapi.json is assembled into the binary
 * (.incbin; the build passes its path as DM_OPENAPI_JSON).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/alloc.h"
#include "server/handlers.h"
#include "server/jw.h"
#include "server/kjson.h"
#include "server/mjson.h"

#ifndef DM_OPENAPI_JSON
#error "DM_OPENAPI_JSON must be the quoted path of docs/openapi.json"
#endif

/* The document, followed by one NUL byte.  Hidden symbols. */
__asm__(".pushsection .rodata\n"
        ".balign 16\n"
        ".globl native_openapi_begin\n"
        ".hidden native_openapi_begin\n"
        "native_openapi_begin:\n"
        ".incbin \"" DM_OPENAPI_JSON "\"\n"
        ".globl native_openapi_end\n"
        ".hidden native_openapi_end\n"
        "native_openapi_end:\n"
        ".byte 0\n"
        ".popsection\n");
extern const char native_openapi_begin[] __attribute__((visibility("hidden")));
extern const char native_openapi_end[] __attribute__((visibility("hidden")));

#define LIST_LIMIT_MAX 10000
#define DEF_LIST_LIMIT 100
#define DEF_SEARCH_K 10

/* ------------------------------------------------------------ helpers */

/* Prefix the failed field's name with where it sits in the body:
 * "text" -> "memories[3].text". */
__attribute__((format(printf, 2, 3)))
static void refield(http_resp *rs, const char *fmt, ...)
{
    char pre[64], old[sizeof rs->err_field];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    snprintf(old, sizeof old, "%s", rs->err_field);
    /* Both fit: field names and indexes are short; a cut is harmless. */
    size_t n = strlen(pre);
    if (n >= sizeof rs->err_field)
        n = sizeof rs->err_field - 1;
    memcpy(rs->err_field, pre, n);
    snprintf(rs->err_field + n, sizeof rs->err_field - n, "%.*s",
             (int)(sizeof rs->err_field - n - 1), old);
}

/* The error of a dm_* call, naming the field it concerns (NULL = none). */
static void fail_dm(http_resp *rs, int rc, const char *what, const char *field)
{
    http_fail_dm(rs, rc, what);
    if (field)
        snprintf(rs->err_field, sizeof rs->err_field, "%s", field);
}

/* The error of dm_add_batch: its message names the item ("item 3: ..."),
 * which becomes the field "memories[3]". */
static void fail_batch(http_resp *rs, int rc, const char *what, const char *array)
{
    char f[48];
    const char *m = strstr(dm_errmsg(), "item ");
    unsigned long i;
    if (m && sscanf(m + 5, "%lu", &i) == 1)
        snprintf(f, sizeof f, "%s[%lu]", array, i);
    else
        snprintf(f, sizeof f, "%s", array);
    fail_dm(rs, rc, what, f);
}

static bool is_name_ok(http_resp *rs, const char *field, const char *s)
{
    if (strlen(s) > DM_MAX_NAME_LEN)
        return http_fail(rs, HTTP_E_UNPROCESSABLE, field, "%s is %zu bytes, over the limit of %d",
                         field, strlen(s), DM_MAX_NAME_LEN);
    return true;
}

/* The user of a /v1/users/{user}/... path. */
static bool path_user(http_req *rq, http_resp *rs, const char **out)
{
    *out = rq->segs[2];
    return is_name_ok(rs, "user_id", *out);
}

/* A memory id in the path or the query: 404 when it is not one. */
static bool parse_id(http_resp *rs, const char *s, dm_id *out)
{
    if (!s || dm_id_parse(s, out) != DM_OK)
        return http_fail(rs, HTTP_E_NOT_FOUND, "id", "memory %.64s not found", s ? s : "");
    return true;
}

/* A required query parameter user_id. */
static bool query_user(http_req *rq, http_resp *rs, const char **out)
{
    *out = http_query(rq, "user_id");
    if (!*out || !**out)
        return http_fail(rs, HTTP_E_BAD_REQUEST, "user_id",
                         "missing query parameter user_id (the memory's user)");
    return is_name_ok(rs, "user_id", *out);
}

/* An optional time in the query: ISO 8601, or seconds since the epoch. */
static bool query_time(http_req *rq, http_resp *rs, const char *name, int64_t *out)
{
    const char *v = http_query(rq, name);
    if (!v || !*v)
        return true;
    char *end;
    errno = 0;
    double secs = strtod(v, &end);
    if (!*end && !errno && secs >= 0 && secs < 253402300800.0) {
        *out = (int64_t)(secs * 1e6);
        return true;
    }
    if (dm_time_parse(v, out) != DM_OK)
        return http_fail(rs, HTTP_E_BAD_REQUEST, name,
                         "query parameter %s must be an ISO 8601 time such as "
                         "2024-05-08T13:56:00Z, or seconds since the epoch, not \"%.40s\"",
                         name, v);
    return true;
}

static bool range_ok(http_resp *rs, int64_t from, int64_t to)
{
    if (from && to && from > to)
        return http_fail(rs, HTTP_E_UNPROCESSABLE, "from", "from is after to");
    return true;
}

/* A metadata or filter object as the engine's text (free()). */
static bool dump_obj(http_resp *rs, json_t *obj, char **out)
{
    *out = mjson_metadata_dumps(obj);
    if (!*out)
        return http_fail(rs, HTTP_E_INTERNAL, NULL, "out of memory");
    return true;
}

static void reply_memory(http_resp *rs, int status, const dm_memory *m)
{
    char err[256], id[DM_ID_STRLEN + 1];
    size_t len;
    char *txt = mjson_memory_text(m, &len, err, sizeof err);
    if (!txt) {
        dm_id_format(&m->id, id);
        http_fail(rs, HTTP_E_INTERNAL, NULL, "memory %s: %s", id, err);
        return;
    }
    http_reply_text(rs, status, txt, len);
}

/* ----------------------------------------------------------- memories */

/* One memory to add, from a body object; *meta (free()) owns the metadata
 * text p points to. */
/* The arrays of a batch of n adds: parameters, metadata texts, ids; false
 * after the error (the caller frees what was allocated). */
static bool batch_alloc(http_resp *rs, size_t n, dm_add_params **ps, char ***metas,
                        dm_id **ids)
{
    *ps = dm_calloc(n, sizeof **ps);
    *metas = dm_calloc(n, sizeof **metas);
    *ids = dm_calloc(n, sizeof **ids);
    if (*ps && *metas && *ids)
        return true;
    return http_fail(rs, HTTP_E_INTERNAL, NULL, "out of memory");
}

static bool add_item(http_req *rq, http_resp *rs, json_t *o, dm_add_params *p, char **meta)
{
    const char *kind = NULL;
    json_t *md = NULL;
    double sal = -1, decay = -1;
    bool extract = true;
    dm_add_params_init(p);
    *meta = NULL;
    if (!json_is_object(o))
        return http_fail(rs, HTTP_E_BAD_REQUEST, "", "each item must be a JSON object");
    if (!http_fields_known(rq, rs, o,
                           "user_id text agent_id session_id role time metadata kind salience "
                           "decay_rate extract") ||
        !http_str(rq, rs, o, "user_id", true, &p->user_id) ||
        !is_name_ok(rs, "user_id", p->user_id) || !http_str(rq, rs, o, "text", true, &p->text) ||
        !http_str(rq, rs, o, "agent_id", false, &p->agent_id) ||
        !http_str(rq, rs, o, "session_id", false, &p->session_id) ||
        !http_str(rq, rs, o, "role", false, &p->role) ||
        !http_time(rq, rs, o, "time", &p->event_time_us) ||
        !http_obj(rq, rs, o, "metadata", false, &md) ||
        !http_str(rq, rs, o, "kind", false, &kind) ||
        !http_num(rq, rs, o, "salience", false, 0, 1, &sal) ||
        !http_num(rq, rs, o, "decay_rate", false, 0, 1e6, &decay) ||
        !http_bool(rq, rs, o, "extract", &extract))
        return false;
    if (kind && mjson_kind_parse(kind, &p->kind) != 0)
        return http_fail(rs, HTTP_E_UNPROCESSABLE, "kind",
                         "kind \"%.40s\" is not one of episodic, fact, summary", kind);
    if (p->agent_id && !is_name_ok(rs, "agent_id", p->agent_id))
        return false;
    if (p->session_id && !is_name_ok(rs, "session_id", p->session_id))
        return false;
    if (p->role && !is_name_ok(rs, "role", p->role))
        return false;
    if (sal >= 0)
        p->salience = (float)sal;
    if (decay >= 0)
        p->decay_rate = (float)decay;
    p->no_extract = !extract;
    p->tenant = rq->tenant;
    if (md && !dump_obj(rs, md, meta))
        return false;
    p->metadata = *meta;
    return true;
}

static void h_add(http_req *rq, http_resp *rs)
{
    json_t *o = http_body_object(rq, rs);
    dm_add_params p;
    char *meta = NULL;
    dm_memory *m = NULL;
    dm_id id;
    if (!o || !add_item(rq, rs, o, &p, &meta))
        goto done;
    int rc = dm_add(rq->db, &p, &id);
    if (rc != DM_OK) {
        fail_dm(rs, rc, "add", NULL);
        goto done;
    }
    dm_scope sc = { rq->tenant, p.user_id };
    if ((rc = dm_get(rq->db, &sc, &id, 0, &m)) != DM_OK) {
        fail_dm(rs, rc, "add", NULL);
        goto done;
    }
    reply_memory(rs, 201, m);
done:
    dm_memory_free(m);
    free(meta);
}

static void h_add_batch(http_req *rq, http_resp *rs)
{
    json_t *o = http_body_object(rq, rs), *arr = NULL;
    dm_add_params *ps = NULL;
    char **metas = NULL;
    dm_id *ids = NULL;
    size_t n = 0;
    if (!o || !http_fields_known(rq, rs, o, "memories") ||
        !http_arr(rq, rs, o, "memories", true, &arr))
        return;
    n = json_array_size(arr);
    if (!n) {
        http_fail(rs, HTTP_E_BAD_REQUEST, "memories", "memories is empty");
        return;
    }
    if (!batch_alloc(rs, n, &ps, &metas, &ids))
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (!add_item(rq, rs, json_array_get(arr, i), &ps[i], &metas[i])) {
            refield(rs, rs->err_field[0] ? "memories[%zu]." : "memories[%zu]", i);
            goto done;
        }
    }
    int rc = dm_add_batch(rq->db, ps, n, ids);
    if (rc != DM_OK) {
        fail_batch(rs, rc, "batch add", "memories");
        goto done;
    }
    json_t *out = json_array();
    for (size_t i = 0; out && i < n; i++)
        json_array_append_new(out, kjson_id(&ids[i]));
    http_reply(rs, 201, json_pack("{s:o}", "ids", out));
done:
    for (size_t i = 0; metas && i < n; i++)
        free(metas[i]);
    dm_free(metas);
    dm_free(ps);
    dm_free(ids);
}

static void h_get(http_req *rq, http_resp *rs)
{
    const char *user;
    dm_id id;
    dm_memory *m = NULL;
    if (!parse_id(rs, rq->segs[2], &id) || !query_user(rq, rs, &user))
        return;
    unsigned flags = http_query_bool(rq, "embedding") ? DM_WITH_EMBEDDING : 0;
    dm_scope sc = { rq->tenant, user };
    int rc = dm_get(rq->db, &sc, &id, flags, &m);
    if (rc == DM_ENOTFOUND)
        http_fail(rs, HTTP_E_NOT_FOUND, "id", "memory %s not found", rq->segs[2]);
    else if (rc != DM_OK)
        fail_dm(rs, rc, "get", NULL);
    else
        reply_memory(rs, 200, m);
    dm_memory_free(m);
}

static void h_patch(http_req *rq, http_resp *rs)
{
    json_t *o = http_body_object(rq, rs), *md = NULL;
    const char *user = NULL, *text = NULL;
    char *meta = NULL;
    dm_memory *m = NULL;
    dm_id id;
    if (!parse_id(rs, rq->segs[2], &id) || !o ||
        !http_fields_known(rq, rs, o, "user_id text metadata") ||
        !http_str(rq, rs, o, "user_id", true, &user) || !is_name_ok(rs, "user_id", user) ||
        !http_str(rq, rs, o, "text", false, &text) ||
        !http_obj(rq, rs, o, "metadata", false, &md))
        return;
    if (!text && !md) {
        http_fail(rs, HTTP_E_BAD_REQUEST, "text", "give text, metadata or both to change");
        return;
    }
    if (md && !dump_obj(rs, md, &meta))
        return;
    dm_scope sc = { rq->tenant, user };
    int rc = dm_update(rq->db, &sc, &id, text, meta);
    if (rc == DM_OK)
        rc = dm_get(rq->db, &sc, &id, 0, &m);
    if (rc == DM_ENOTFOUND)
        http_fail(rs, HTTP_E_NOT_FOUND, "id", "memory %s not found", rq->segs[2]);
    else if (rc != DM_OK)
        fail_dm(rs, rc, "update", text && !md ? "text" : !text ? "metadata" : NULL);
    else
        reply_memory(rs, 200, m);
    dm_memory_free(m);
    free(meta);
}

static void h_delete(http_req *rq, http_resp *rs)
{
    const char *user;
    dm_id id;
    if (!parse_id(rs, rq->segs[2], &id) || !query_user(rq, rs, &user))
        return;
    dm_scope sc = { rq->tenant, user };
    int rc = dm_delete(rq->db, &sc, &id);
    if (rc == DM_ENOTFOUND)
        http_fail(rs, HTTP_E_NOT_FOUND, "id", "memory %s not found", rq->segs[2]);
    else if (rc != DM_OK)
        fail_dm(rs, rc, "delete", NULL);
    else
        http_reply(rs, 200, json_pack("{s:o, s:b}", "id", kjson_id(&id), "deleted", 1));
}

static void h_list(http_req *rq, http_resp *rs)
{
    dm_list_params p;
    int64_t limit = DEF_LIST_LIMIT;
    memset(&p, 0, sizeof p);
    p.tenant = rq->tenant;
    if (!path_user(rq, rs, &p.user_id) || !query_time(rq, rs, "from", &p.from_us) ||
        !query_time(rq, rs, "to", &p.to_us) || !range_ok(rs, p.from_us, p.to_us) ||
        !http_query_int(rq, rs, "limit", 1, LIST_LIMIT_MAX, &limit))
        return;
    p.limit = (uint32_t)limit;
    p.cursor = http_query(rq, "cursor");
    if (p.cursor && !*p.cursor)
        p.cursor = NULL;
    if (http_query_bool(rq, "archived"))
        p.flags |= DM_WITH_ARCHIVED;
    if (http_query_bool(rq, "embedding"))
        p.flags |= DM_WITH_EMBEDDING;
    dm_list_result *r = NULL;
    int rc = dm_list(rq->db, &p, &r);
    if (rc != DM_OK && rc != DM_ENOTFOUND) {
        fail_dm(rs, rc, "list", rc == DM_EINVAL && p.cursor ? "cursor" : NULL);
        return;
    }
    jw w;
    jw_init(&w);
    jw_open(&w, '{');
    jw_key(&w, "items");
    jw_open(&w, '[');
    for (size_t i = 0; r && !w.why && i < r->n; i++) {
        jw_open(&w, '{');
        mjson_memory_write(&w, &r->items[i]);
        jw_close(&w, '}');
    }
    jw_close(&w, ']');
    jw_key(&w, "next_cursor");
    jw_cstr(&w, r ? r->next_cursor : NULL);
    jw_close(&w, '}');
    size_t len;
    char *txt = jw_take(&w, &len);
    if (txt)
        http_reply_text(rs, 200, txt, len);
    else
        http_fail(rs, HTTP_E_INTERNAL, NULL, "%s", w.why);
    dm_list_result_free(r);
}

static void h_search(http_req *rq, http_resp *rs)
{
    json_t *o = http_body_object(rq, rs), *filter = NULL, *w = NULL;
    dm_search_params p;
    int64_t k = DEF_SEARCH_K;
    bool explain = false, archived = false, embedding = false;
    char *ftxt = NULL;
    memset(&p, 0, sizeof p);
    p.tenant = rq->tenant;
    if (!o ||
        !http_fields_known(rq, rs, o,
                           "user_id query k filter from to agent_id session_id weights explain "
                           "archived now embedding") ||
        !http_str(rq, rs, o, "user_id", true, &p.user_id) ||
        !is_name_ok(rs, "user_id", p.user_id) || !http_str(rq, rs, o, "query", true, &p.query) ||
        !http_int(rq, rs, o, "k", false, 1, rq->cfg->max_top_k, &k) ||
        !http_obj(rq, rs, o, "filter", false, &filter) ||
        !http_time(rq, rs, o, "from", &p.from_us) || !http_time(rq, rs, o, "to", &p.to_us) ||
        !range_ok(rs, p.from_us, p.to_us) ||
        !http_str(rq, rs, o, "agent_id", false, &p.agent_id) ||
        !http_str(rq, rs, o, "session_id", false, &p.session_id) ||
        !http_obj(rq, rs, o, "weights", false, &w) || !http_bool(rq, rs, o, "explain", &explain) ||
        !http_bool(rq, rs, o, "archived", &archived) ||
        !http_bool(rq, rs, o, "embedding", &embedding) || !http_time(rq, rs, o, "now", &p.now_us))
        return;
    if (w) {
        double x[3] = { 0, 0, 0 };
        if (!http_fields_known(rq, rs, w, "similarity recency salience") ||
            !http_num(rq, rs, w, "similarity", false, 0, 1e6, &x[0]) ||
            !http_num(rq, rs, w, "recency", false, 0, 1e6, &x[1]) ||
            !http_num(rq, rs, w, "salience", false, 0, 1e6, &x[2])) {
            refield(rs, "weights.");
            return;
        }
        p.weights = (dm_weights){ (float)x[0], (float)x[1], (float)x[2] };
    }
    p.k = (uint32_t)k;
    p.flags = (explain ? DM_EXPLAIN : 0) | (archived ? DM_WITH_ARCHIVED : 0) |
              (embedding ? DM_WITH_EMBEDDING : 0);
    if (filter && !dump_obj(rs, filter, &ftxt))
        return;
    p.filter = ftxt;
    dm_search_result *r = NULL;
    int rc = dm_search(rq->db, &p, &r);
    if (rc == DM_OK)
        http_observe_search(rq, r);
    if (rc != DM_OK && rc != DM_ENOTFOUND) {
        const char *m = dm_errmsg();
        fail_dm(rs, rc, "search",
                rc != DM_EINVAL ? NULL
                : ftxt && strstr(m, "filter") ? "filter"
                : strstr(m, "quer")           ? "query"
                                              : NULL);
    } else {
        char err[512];
        size_t len;
        char *txt = kjson_search_text(r, &len, err, sizeof err);
        if (txt)
            http_reply_text(rs, 200, txt, len);
        else
            http_fail(rs, HTTP_E_INTERNAL, NULL, "%s", err);
    }
    dm_search_result_free(r);
    free(ftxt);
}

/* ----------------------------------------------------------- sessions */

/* A new session id: a random (version 4) UUID. */
static bool new_session_id(char out[DM_ID_STRLEN + 1])
{
    dm_id id;
    if (getrandom(id.bytes, sizeof id.bytes, 0) != (ssize_t)sizeof id.bytes)
        return false;
    id.bytes[6] = (uint8_t)((id.bytes[6] & 0x0f) | 0x40);
    id.bytes[8] = (uint8_t)((id.bytes[8] & 0x3f) | 0x80);
    dm_id_format(&id, out);
    return true;
}

static void h_session_new(http_req *rq, http_resp *rs)
{
    json_t *o = http_body_object(rq, rs);
    const char *user = NULL, *sid = NULL, *agent = NULL;
    char gen[DM_ID_STRLEN + 1];
    if (!o || !http_fields_known(rq, rs, o, "user_id session_id agent_id") ||
        !http_str(rq, rs, o, "user_id", true, &user) || !is_name_ok(rs, "user_id", user) ||
        !http_str(rq, rs, o, "session_id", false, &sid) ||
        !http_str(rq, rs, o, "agent_id", false, &agent))
        return;
    if ((sid && !is_name_ok(rs, "session_id", sid)) || (agent && !is_name_ok(rs, "agent_id", agent)))
        return;
    if (!sid) {
        if (!new_session_id(gen)) {
            http_fail(rs, HTTP_E_INTERNAL, NULL, "cannot draw a random session id");
            return;
        }
        sid = gen;
    }
    json_t *out = json_pack("{s:s, s:s}", "session_id", sid, "user_id", user);
    if (out && agent)
        json_object_set_new(out, "agent_id", json_string(agent));
    http_reply(rs, 201, out);
}

/* One message of a messages array as the dm_add_params that store it: a
 * user or assistant turn as dm_remember would (the speaker's name in the
 * metadata, queued for extraction), a system message with nothing
 * extracted.  *meta (free()) owns the metadata text. */
static bool read_msg(http_req *rq, http_resp *rs, json_t *o, dm_add_params *p, char **meta)
{
    json_t *md = NULL;
    const char *name = NULL;
    dm_add_params_init(p);
    *meta = NULL;
    if (!json_is_object(o))
        return http_fail(rs, HTTP_E_BAD_REQUEST, "", "each item must be a JSON object");
    if (!http_fields_known(rq, rs, o, "role content time name metadata") ||
        !http_str(rq, rs, o, "role", true, &p->role) ||
        !http_str(rq, rs, o, "content", true, &p->text) ||
        !http_time(rq, rs, o, "time", &p->event_time_us) ||
        !http_str(rq, rs, o, "name", false, &name) ||
        !http_obj(rq, rs, o, "metadata", false, &md))
        return false;
    bool is_system = !strcmp(p->role, "system");
    if (strcmp(p->role, "user") && strcmp(p->role, "assistant") && !is_system)
        return http_fail(rs, HTTP_E_UNPROCESSABLE, "role",
                         "role \"%.40s\" is not one of user, assistant, system", p->role);
    if (name && !is_name_ok(rs, "name", name))
        return false;
    /* Instructions to an agent say nothing about the user. */
    p->no_extract = is_system;
    if (name) {
        json_t *m = md ? json_copy(md) : json_object();
        if (!m || json_object_set_new(m, "speaker", json_string(name))) {
            json_decref(m);
            return http_fail(rs, HTTP_E_INTERNAL, NULL, "out of memory");
        }
        bool ok = dump_obj(rs, m, meta);
        json_decref(m);
        if (!ok)
            return false;
    } else if (md && !dump_obj(rs, md, meta)) {
        return false;
    }
    p->metadata = *meta;
    return true;
}

/* The number of the user's facts in every state (a user with none yet:
 * 0).  Reading them first extracts the user's queued turns. */
static int fact_count(http_req *rq, const char *user, size_t *n)
{
    dm_profile_params p;
    memset(&p, 0, sizeof p);
    p.tenant = rq->tenant;
    p.user_id = user;
    p.history = 1;
    p.min_confidence = -1;
    dm_fact *f = NULL;
    *n = 0;
    int rc = dm_profile(rq->db, &p, &f, n);
    dm_facts_free(f, *n);
    if (rc != DM_OK)
        *n = 0;
    return rc == DM_ENOTFOUND ? DM_OK : rc;
}

/*
 * The turns go in with one dm_add_batch: validated whole, stored all or
 * none, embedded in one call, queued for extraction in order (each turn is
 * read with the session's turns before it, so a correction supersedes).
 * With wait, reading the user's facts afterwards runs that extraction
 * before the answer, and facts_added is how many facts it added.
 */
static void h_messages(http_req *rq, http_resp *rs)
{
    json_t *o = http_body_object(rq, rs), *arr = NULL;
    const char *user = NULL, *agent = NULL, *sid = rq->segs[2];
    bool wait = true;
    dm_add_params *ps = NULL;
    char **metas = NULL;
    dm_id *ids = NULL;
    size_t n = 0, before = 0, after = 0;
    if (!o || !is_name_ok(rs, "session_id", sid) ||
        !http_fields_known(rq, rs, o, "user_id agent_id messages wait") ||
        !http_str(rq, rs, o, "user_id", true, &user) || !is_name_ok(rs, "user_id", user) ||
        !http_str(rq, rs, o, "agent_id", false, &agent) ||
        (agent && !is_name_ok(rs, "agent_id", agent)) || !http_bool(rq, rs, o, "wait", &wait) ||
        !http_arr(rq, rs, o, "messages", true, &arr))
        return;
    n = json_array_size(arr);
    if (!n) {
        http_fail(rs, HTTP_E_BAD_REQUEST, "messages", "messages is empty");
        return;
    }
    if (!batch_alloc(rs, n, &ps, &metas, &ids))
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (!read_msg(rq, rs, json_array_get(arr, i), &ps[i], &metas[i])) {
            refield(rs, rs->err_field[0] ? "messages[%zu]." : "messages[%zu]", i);
            goto done;
        }
        ps[i].tenant = rq->tenant;
        ps[i].user_id = user;
        ps[i].agent_id = agent;
        ps[i].session_id = sid;
    }
    int rc = wait ? fact_count(rq, user, &before) : DM_OK;
    if (rc != DM_OK) {
        fail_dm(rs, rc, "messages", NULL);
        goto done;
    }
    if ((rc = dm_add_batch(rq->db, ps, n, ids)) != DM_OK) {
        fail_batch(rs, rc, "messages", "messages");
        goto done;
    }
    /* The turns are stored: a failure to read the facts back only loses
     * the count (extraction goes on in the background). */
    if (wait && (fact_count(rq, user, &after) != DM_OK || after < before))
        after = before;
    json_t *out = json_array();
    for (size_t i = 0; out && i < n; i++)
        json_array_append_new(out, kjson_id(&ids[i]));
    http_reply(rs, 201, json_pack("{s:o, s:I}", "ids", out, "facts_added",
                                  (json_int_t)(after - before)));
done:
    for (size_t i = 0; metas && i < n; i++)
        free(metas[i]);
    dm_free(metas);
    dm_free(ps);
    dm_free(ids);
}

static void h_context(http_req *rq, http_resp *rs)
{
    dm_perceive_params p;
    int64_t max_tokens = 0, k = 0, recent = 0;
    memset(&p, 0, sizeof p);
    p.tenant = rq->tenant;
    p.session_id = rq->segs[2];
    if (!is_name_ok(rs, "session_id", p.session_id) || !query_user(rq, rs, &p.user_id) ||
        !http_query_int(rq, rs, "max_tokens", 50, 1000000, &max_tokens) ||
        !http_query_int(rq, rs, "k", 1, rq->cfg->max_top_k, &k) ||
        !http_query_int(rq, rs, "recent", 1, 1000, &recent) ||
        !query_time(rq, rs, "time", &p.now_us))
        return;
    p.query = http_query(rq, "query");
    p.max_tokens = (uint32_t)max_tokens;
    p.k = (uint32_t)k;
    p.recent_turns = (uint32_t)recent;
    dm_context *c = NULL;
    int rc = dm_perceive(rq->db, &p, &c);
    if (rc == DM_ENOTFOUND) {
        dm_context empty;
        memset(&empty, 0, sizeof empty);
        http_reply(rs, 200, kjson_context(&empty));
    } else if (rc != DM_OK) {
        fail_dm(rs, rc, "context", NULL);
    } else {
        http_reply(rs, 200, kjson_context(c));
    }
    dm_context_free(c);
}

static void h_chat(http_req *rq, http_resp *rs)
{
    json_t *o = http_body_object(rq, rs);
    dm_chat_params p;
    int64_t max_tokens = 0;
    memset(&p, 0, sizeof p);
    p.tenant = rq->tenant;
    p.session_id = rq->segs[2];
    if (!o || !is_name_ok(rs, "session_id", p.session_id) ||
        !http_fields_known(rq, rs, o, "user_id message system max_tokens agent_id name time") ||
        !http_str(rq, rs, o, "user_id", true, &p.user_id) ||
        !is_name_ok(rs, "user_id", p.user_id) || !http_str(rq, rs, o, "message", true, &p.text) ||
        !http_str(rq, rs, o, "system", false, &p.system) ||
        !http_int(rq, rs, o, "max_tokens", false, 50, 1000000, &max_tokens) ||
        !http_str(rq, rs, o, "agent_id", false, &p.agent_id) ||
        !http_str(rq, rs, o, "name", false, &p.speaker) || !http_time(rq, rs, o, "time", &p.time_us))
        return;
    if ((p.agent_id && !is_name_ok(rs, "agent_id", p.agent_id)) ||
        (p.speaker && !is_name_ok(rs, "name", p.speaker)))
        return;
    p.max_tokens = (uint32_t)max_tokens;
    dm_chat_result *r = NULL;
    int rc = dm_chat(rq->db, &p, &r);
    if (rc != DM_OK) {
        fail_dm(rs, rc, "chat", NULL);
        return;
    }
    dm_context empty;
    memset(&empty, 0, sizeof empty);
    json_t *out = json_pack("{s:o, s:o, s:o, s:o, s:o}", "reply",
                            r->reply ? json_string(r->reply) : json_null(), "context",
                            kjson_context(r->context ? r->context : &empty), "model",
                            r->reply && rq->cfg->llm_url ? json_string(rq->cfg->llm_url)
                                                         : json_null(),
                            "user_turn", kjson_id(&r->user_turn), "reply_turn",
                            kjson_id(&r->reply_turn));
    http_reply(rs, 200, out);
    dm_chat_result_free(r);
}

/* ---------------------------------------------------------- knowledge */

static void h_profile(http_req *rq, http_resp *rs)
{
    dm_profile_params p;
    memset(&p, 0, sizeof p);
    p.tenant = rq->tenant;
    if (!path_user(rq, rs, &p.user_id) || !query_time(rq, rs, "as_of", &p.as_of_us))
        return;
    p.history = http_query_bool(rq, "history");
    p.as_known_now = http_query_bool(rq, "known_now");
    p.slot = http_query(rq, "slot");
    p.subject = http_query(rq, "entity");
    if (p.slot && !*p.slot)
        p.slot = NULL;
    dm_fact *f = NULL;
    size_t n = 0;
    int rc = dm_profile(rq->db, &p, &f, &n);
    if (rc != DM_OK && rc != DM_ENOTFOUND)
        fail_dm(rs, rc, "profile", NULL);
    else
        http_reply(rs, 200, json_pack("{s:o}", "facts", kjson_facts(f, n)));
    dm_facts_free(f, n);
}

static void h_events(http_req *rq, http_resp *rs)
{
    dm_events_params p;
    int64_t limit = 0;
    memset(&p, 0, sizeof p);
    p.tenant = rq->tenant;
    if (!path_user(rq, rs, &p.user_id) || !query_time(rq, rs, "from", &p.from_us) ||
        !query_time(rq, rs, "to", &p.to_us) || !range_ok(rs, p.from_us, p.to_us) ||
        !http_query_int(rq, rs, "limit", 1, 100000, &limit))
        return;
    p.limit = (uint32_t)limit;
    dm_event *e = NULL;
    size_t n = 0;
    int rc = dm_events(rq->db, &p, &e, &n);
    if (rc != DM_OK && rc != DM_ENOTFOUND)
        fail_dm(rs, rc, "events", NULL);
    else
        http_reply(rs, 200, kjson_events(e, n));
    dm_events_free(e, n);
}

static void reply_graph(http_resp *rs, int rc, dm_graph_result *r, const char *entity,
                        uint32_t depth)
{
    dm_graph_result empty;
    memset(&empty, 0, sizeof empty);
    if (rc != DM_OK && rc != DM_ENOTFOUND)
        fail_dm(rs, rc, "graph", NULL);
    else
        http_reply(rs, 200, kjson_graph(r ? r : &empty, entity, depth));
    dm_graph_result_free(r);
}

static void h_graph(http_req *rq, http_resp *rs)
{
    const char *user, *entity;
    int64_t depth = 2;
    if (!path_user(rq, rs, &user) || !http_query_int(rq, rs, "depth", 1, 5, &depth))
        return;
    entity = http_query(rq, "entity");
    if (entity && !*entity)
        entity = NULL;
    dm_graph_result *r = NULL;
    int rc = dm_graph_neighbours(rq->db, rq->tenant, user, entity, (uint32_t)depth, &r);
    reply_graph(rs, rc, r, entity, (uint32_t)depth);
}

static void h_graph_search(http_req *rq, http_resp *rs)
{
    const char *user, *q;
    if (!path_user(rq, rs, &user))
        return;
    q = http_query(rq, "q");
    if (!q || !*q) {
        http_fail(rs, HTTP_E_BAD_REQUEST, "q", "missing query parameter q (the text to search)");
        return;
    }
    dm_graph_result *r = NULL;
    int rc = dm_graph_search(rq->db, rq->tenant, user, q, &r);
    reply_graph(rs, rc, r, q, 2);
}

/* The changes a memory caused: every change of the user's facts whose
 * source is that memory, fact by fact in slot order, each oldest first. */
static int memory_changes(http_req *rq, const char *user, const dm_id *id, json_t *out)
{
    dm_profile_params p;
    memset(&p, 0, sizeof p);
    p.tenant = rq->tenant;
    p.user_id = user;
    p.history = 1;
    p.min_confidence = -1;
    dm_fact *f = NULL;
    size_t n = 0;
    int rc = dm_profile(rq->db, &p, &f, &n);
    for (size_t i = 0; rc == DM_OK && i < n; i++) {
        dm_change *c = NULL;
        size_t nc = 0;
        rc = dm_history(rq->db, rq->tenant, user, &f[i].id, &c, &nc);
        if (rc == DM_ENOTFOUND) {
            rc = DM_OK;
            continue;
        }
        for (size_t j = 0; rc == DM_OK && j < nc; j++)
            if (!memcmp(&c[j].source, id, sizeof *id))
                json_array_append_new(out, kjson_change(&c[j]));
        dm_changes_free(c, nc);
    }
    dm_facts_free(f, n);
    return rc == DM_ENOTFOUND ? DM_OK : rc;
}

static void h_history(http_req *rq, http_resp *rs)
{
    const char *user;
    dm_id id;
    if (!path_user(rq, rs, &user) || !parse_id(rs, rq->segs[4], &id))
        return;
    dm_change *c = NULL;
    size_t n = 0;
    int rc = dm_history(rq->db, rq->tenant, user, &id, &c, &n);
    if (rc == DM_OK) {
        http_reply(rs, 200, kjson_changes(c, n));
        dm_changes_free(c, n);
        return;
    }
    if (rc != DM_ENOTFOUND) {
        fail_dm(rs, rc, "history", NULL);
        return;
    }
    /* Not a fact: perhaps a memory of the user. */
    dm_memory *m = NULL;
    dm_scope sc = { rq->tenant, user };
    rc = dm_get(rq->db, &sc, &id, 0, &m);
    dm_memory_free(m);
    if (rc == DM_ENOTFOUND) {
        http_fail(rs, HTTP_E_NOT_FOUND, "id", "no fact or memory %s of user %s", rq->segs[4],
                  user);
        return;
    }
    json_t *arr = json_array();
    if (rc == DM_OK && arr)
        rc = memory_changes(rq, user, &id, arr);
    if (rc != DM_OK) {
        json_decref(arr);
        fail_dm(rs, rc, "history", NULL);
        return;
    }
    http_reply(rs, 200, json_pack("{s:o}", "changes", arr));
}

/* -------------------------------------------------------------- users */

typedef struct export_job {
    dm_db *db;
    char tenant[DM_MAX_NAME_LEN + 1];
    char user[DM_MAX_NAME_LEN + 1];
    int fd_read, fd_write;
    pthread_t thread;
    atomic_int rc;      /* dm_export's result, set before fd_write closes */
} export_job;

static bool send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static int export_line(void *arg, const dm_memory *m)
{
    export_job *j = arg;
    char why[256];
    json_t *o = mjson_memory(m, why, sizeof why);
    char *s = o ? mjson_dumps(o) : NULL;
    json_decref(o);
    if (!s)
        return 1;
    size_t n = strlen(s);
    bool ok = send_all(j->fd_write, s, n) && send_all(j->fd_write, "\n", 1);
    free(s);
    return ok ? 0 : 1;
}

static void *export_main(void *arg)
{
    pthread_setname_np(pthread_self(), "dm-export");
    export_job *j = arg;
    int rc = dm_export(j->db, j->tenant, j->user, export_line, j);
    atomic_store(&j->rc, rc == DM_ENOTFOUND ? DM_OK : rc);
    close(j->fd_write);
    j->fd_write = -1;
    return NULL;
}

static long export_read(void *cls, char *out, size_t cap)
{
    export_job *j = cls;
    for (;;) {
        ssize_t n = recv(j->fd_read, out, cap, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0)
            return (long)n;
        /* End of the lines: complete only when the export succeeded, so
         * that a client never takes a cut stream for a whole one. */
        if (n == 0 && atomic_load(&j->rc) == DM_OK)
            return 0;
        return -1;
    }
}

static void export_free(void *cls)
{
    export_job *j = cls;
    close(j->fd_read);
    pthread_join(j->thread, NULL);
    dm_free(j);
}

static void h_export(http_req *rq, http_resp *rs)
{
    const char *user;
    if (!path_user(rq, rs, &user))
        return;
    export_job *j = dm_calloc(1, sizeof *j);
    int fds[2];
    if (!j) {
        http_fail(rs, HTTP_E_INTERNAL, NULL, "out of memory");
        return;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        http_fail(rs, HTTP_E_INTERNAL, NULL, "cannot start the export: %s", strerror(errno));
        dm_free(j);
        return;
    }
    j->db = rq->db;
    snprintf(j->tenant, sizeof j->tenant, "%s", rq->tenant);
    snprintf(j->user, sizeof j->user, "%s", user);
    j->fd_read = fds[0];
    j->fd_write = fds[1];
    atomic_init(&j->rc, DM_EIO);
    int e = pthread_create(&j->thread, NULL, export_main, j);
    if (e) {
        close(fds[0]);
        close(fds[1]);
        dm_free(j);
        http_fail(rs, HTTP_E_INTERNAL, NULL, "cannot start the export: %s", strerror(e));
        return;
    }
    rs->status = 200;
    rs->content_type = "application/x-ndjson";
    rs->stream = export_read;
    rs->stream_cls = j;
    rs->stream_free = export_free;
}

static void h_import(http_req *rq, http_resp *rs)
{
    json_t *o = http_body_object(rq, rs), *arr = NULL;
    const char *user;
    bool new_ids = false;
    dm_add_params *ps = NULL;
    mjson_owned *own = NULL;
    size_t n = 0;
    if (!path_user(rq, rs, &user) || !o ||
        !http_fields_known(rq, rs, o, "memories new_ids") ||
        !http_bool(rq, rs, o, "new_ids", &new_ids) ||
        !http_arr(rq, rs, o, "memories", true, &arr))
        return;
    n = json_array_size(arr);
    if (!n) {
        http_reply(rs, 200, json_pack("{s:i}", "imported", 0));
        return;
    }
    ps = dm_calloc(n, sizeof *ps);
    own = dm_calloc(n, sizeof *own);
    if (!ps || !own) {
        http_fail(rs, HTTP_E_INTERNAL, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(arr, i);
        char why[256];
        const char *field = NULL;
        if (!json_is_object(x)) {
            http_fail(rs, HTTP_E_BAD_REQUEST, "", "memories[%zu] must be an object", i);
            refield(rs, "memories[%zu]", i);
            goto done;
        }
        if (mjson_add_params(x, false, &ps[i], &own[i], why, sizeof why, &field) != 0) {
            http_fail(rs, HTTP_E_BAD_REQUEST, field, "memories[%zu]: %s", i, why);
            refield(rs, "memories[%zu].", i);
            goto done;
        }
        if (ps[i].text_len > rq->cfg->max_text_len) {
            http_fail(rs, HTTP_E_TOO_LARGE, "text", "memories[%zu]: text is %zu bytes, over the "
                      "limit of %zu", i, ps[i].text_len, rq->cfg->max_text_len);
            refield(rs, "memories[%zu].", i);
            goto done;
        }
        /* The path names the user and the key the tenant, whatever the
         * object says: an import never writes outside them. */
        ps[i].tenant = rq->tenant;
        ps[i].user_id = user;
        if (new_ids)
            ps[i].id = NULL;
    }
    int rc = dm_add_batch(rq->db, ps, n, NULL);
    if (rc != DM_OK)
        fail_batch(rs, rc, "import", "memories");
    else
        http_reply(rs, 200, json_pack("{s:I}", "imported", (json_int_t)n));
done:
    for (size_t i = 0; own && i < n; i++)
        mjson_owned_fini(&own[i]);
    dm_free(own);
    dm_free(ps);
}

static void h_erase(http_req *rq, http_resp *rs)
{
    const char *user;
    if (!path_user(rq, rs, &user))
        return;
    uint64_t n = 0;
    int rc = dm_erase_user(rq->db, rq->tenant, user, &n);
    if (rc != DM_OK && rc != DM_ENOTFOUND)
        fail_dm(rs, rc, "erase", NULL);
    else
        http_reply(rs, 200, json_pack("{s:s, s:I}", "user_id", user, "erased", (json_int_t)n));
}

static void h_decay(http_req *rq, http_resp *rs)
{
    const char *user;
    int64_t now = 0;
    double threshold = 0;
    json_t *o = rq->body;
    if (!path_user(rq, rs, &user))
        return;
    if (o && !json_is_object(o)) {
        http_fail(rs, HTTP_E_BAD_REQUEST, NULL, "the body must be a JSON object");
        return;
    }
    if (o && (!http_fields_known(rq, rs, o, "now threshold") ||
              !http_time(rq, rs, o, "now", &now) ||
              !http_num(rq, rs, o, "threshold", false, 0, 1, &threshold)))
        return;
    uint64_t n = 0;
    int rc = dm_decay(rq->db, rq->tenant, user, now, (float)threshold, &n);
    if (rc != DM_OK && rc != DM_ENOTFOUND)
        fail_dm(rs, rc, "decay", NULL);
    else
        http_reply(rs, 200, json_pack("{s:I}", "affected", (json_int_t)n));
}

/* ------------------------------------------------------------ service */

/* GET /v1/stats is also the DeltaMemory dialect's statistics of one
 * collection (its SDK always sends ?collection=); this route comes first
 * in the table, so it hands those requests to that dialect's handler. */
static bool delegate_dm_stats(http_req *rq, http_resp *rs)
{
    if (!http_query(rq, "collection"))
        return false;
    for (const http_route *r = http_routes_dm; r->pattern; r++) {
        if (!strcmp(r->pattern, "/v1/stats") && !strcmp(r->method, "GET") && r->fn) {
            r->fn(rq, rs);
            return true;
        }
    }
    return false;
}

static void h_stats(http_req *rq, http_resp *rs)
{
    if (delegate_dm_stats(rq, rs))
        return;
    dm_stats st;
    int rc = dm_stats_get(rq->db, &st);
    if (rc != DM_OK) {
        fail_dm(rs, rc, "stats", NULL);
        return;
    }
    json_t *o = json_object();
#define U(f) json_object_set_new(o, #f, json_integer((json_int_t)st.f))
    U(n_users);
    U(n_memories);
    U(n_loaded_users);
    U(n_graph_users);
    U(index_bytes);
    U(disk_bytes);
    U(memtable_bytes);
    U(wal_bytes);
    U(n_checkpoints);
    U(n_replayed);
    U(n_unloads);
    U(n_map_drops);
    U(index_pending);
    U(extract_queued);
    U(extract_done);
    U(extract_failed);
    json_object_set_new(o, "model", json_string(st.model));
    U(dim);
    U(llm_calls);
    U(llm_failures);
    U(llm_invalid);
    U(llm_prompt_tokens);
    U(llm_completion_tokens);
#undef U
    json_object_set_new(o, "version", json_string(dm_version()));
    http_reply(rs, 200, o);
}

static void h_openapi(http_req *rq, http_resp *rs)
{
    (void)rq;
    size_t n = (size_t)(native_openapi_end - native_openapi_begin);
    rs->raw = dm_malloc(n ? n : 1);
    if (!rs->raw) {
        http_fail(rs, HTTP_E_INTERNAL, NULL, "out of memory");
        return;
    }
    memcpy(rs->raw, native_openapi_begin, n);
    rs->raw_len = n;
    rs->content_type = "application/json";
}

const http_route http_routes_native[] = {
    { "POST", "/v1/memories/batch", HTTP_NATIVE, h_add_batch, "native_add_batch", false, true },
    { "POST", "/v1/memories", HTTP_NATIVE, h_add, "native_add", false, true },
    { "GET", "/v1/memories/{}", HTTP_NATIVE, h_get, "native_get", false, false },
    { "PATCH", "/v1/memories/{}", HTTP_NATIVE, h_patch, "native_update", false, true },
    { "DELETE", "/v1/memories/{}", HTTP_NATIVE, h_delete, "native_delete", false, true },
    { "POST", "/v1/search", HTTP_NATIVE, h_search, "native_search", false, false },
    { "POST", "/v1/sessions", HTTP_NATIVE, h_session_new, "native_session", false, false },
    { "POST", "/v1/sessions/{}/messages", HTTP_NATIVE, h_messages, "native_messages", false, true },
    { "GET", "/v1/sessions/{}/context", HTTP_NATIVE, h_context, "native_context", false, false },
    { "POST", "/v1/sessions/{}/chat", HTTP_NATIVE, h_chat, "native_chat", false, false },
    { "GET", "/v1/users/{}/memories", HTTP_NATIVE, h_list, "native_list", false, false },
    { "GET", "/v1/users/{}/profile", HTTP_NATIVE, h_profile, "native_profile", false, false },
    { "GET", "/v1/users/{}/events", HTTP_NATIVE, h_events, "native_events", false, false },
    { "GET", "/v1/users/{}/graph/search", HTTP_NATIVE, h_graph_search, "native_graph_search",
      false, false },
    { "GET", "/v1/users/{}/graph", HTTP_NATIVE, h_graph, "native_graph", false, false },
    { "GET", "/v1/users/{}/history/{}", HTTP_NATIVE, h_history, "native_history", false, false },
    { "GET", "/v1/users/{}/export", HTTP_NATIVE, h_export, "native_export", false, false },
    { "POST", "/v1/users/{}/import", HTTP_NATIVE, h_import, "native_import", false, false },
    { "POST", "/v1/users/{}/decay", HTTP_NATIVE, h_decay, "native_decay", false, false },
    { "DELETE", "/v1/users/{}", HTTP_NATIVE, h_erase, "native_erase", false, false },
    { "GET", "/v1/stats", HTTP_NATIVE, h_stats, "native_stats", false, false },
    { "GET", "/v1/openapi.json", HTTP_NATIVE, h_openapi, "openapi", true, false },
    { 0 },
};
