/*
 * handlers_mem0.c -- the Mem0 dialect: the routes that Mem0's MemoryClient
 * calls (docs/api-mem0.md), answered over the dm_* API.
 *
 * Design.  Mem0's entities map onto ours as the whole server agrees: a
 * Mem0 user_id is our user, agent_id our agent, run_id our session, and
 * app_id lives in the memory's metadata under "app_id".  A memory added
 * without a user belongs to the synthetic user "agent:<agent_id>" (or
 * "app:<app_id>", "run:<run_id>" when only those are given); such a user
 * is shown as user_id null.  Every memory is turned into its Mem0 view (a
 * JSON object with the fields of the client's Memory, plus three internal
 * members "_u", "_c" and "_m": the engine user and the created / updated
 * times in microseconds) and Mem0's filter language is evaluated over that
 * view, so search, listing and the scoped deletes share one
 * implementation.  The users to read are found from the filter: when it
 * pins user_id (eq or in, through AND / OR), only those users are read;
 * otherwise (scoped by agent, app or run alone, or "*") every memory of
 * the tenant is scanned once with dm_export.
 *
 * Memory history: the engine's dm_history is the history of facts, not
 * of memories, so the text a memory had before each update is kept in its
 * metadata under "_mem0_history" (a list of {old, new, at_us}, bounded to
 * HIST_MAX_BYTES by dropping the oldest entries).  That key and "app_id"
 * are reserved: they never appear in the metadata a client sees.
 *
 * Invariants.  Every dm_* call names rq->tenant; dm_get by id alone is
 * administrative (any tenant), so its answer is checked against the tenant
 * before anything is shown or changed, and changes go through a scope
 * naming the owner.  Writes validate everything first (batches look up
 * every id before changing any), so bad input changes nothing.  Every
 * success has a JSON body.
 *
 * Locking: none here; the engine serializes writes to one user.  Format
 * owned: the "_mem0_history" metadata member described above.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "base/alloc.h"
#include "server/handlers.h"
#include "server/mjson.h"

#define KEY_APP "app_id"
#define KEY_HIST "_mem0_history"
#define HIST_MAX_BYTES 16384
#define LIST_PAGE 1000      /* memories per dm_list call while gathering */
#define PAGE_SIZE_DEF 100
#define PAGE_SIZE_MAX 200
#define TOP_K_DEF 10
#define THRESHOLD_DEF 0.1
#define ENGINE_K_MAX 1000   /* dm_search's largest k */

/* What the client may send in each body (strict mode refuses the rest). */
#define ADD_FIELDS                                                                    \
    "messages user_id agent_id app_id run_id metadata infer timestamp "               \
    "custom_categories custom_instructions agent_custom_instructions expiration_date " \
    "structured_data_schema immutable includes excludes enable_graph output_format "   \
    "prompt_profile_id temporal_reasoning timezone observation_datetime "             \
    "observation_date version async_mode"
#define SEARCH_FIELDS                                                                 \
    "query filters top_k threshold metadata output_format rerank latest_only fields " \
    "categories show_expired reference_date keyword_search source"
#define LIST_FIELDS "filters start_date end_date latest_only categories show_expired"
#define UPDATE_FIELDS "text metadata timestamp expiration_date"

/* ------------------------------------------------------------ helpers */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void uuid4(char out[DM_ID_STRLEN + 1])
{
    dm_id id;
    if (getrandom(id.bytes, sizeof id.bytes, 0) != (ssize_t)sizeof id.bytes) {
        /* Fall back to the clock: the id only names an add event. */
        int64_t t = now_us();
        memset(id.bytes, 0, sizeof id.bytes);
        memcpy(id.bytes, &t, sizeof t);
    }
    id.bytes[6] = (uint8_t)((id.bytes[6] & 0x0f) | 0x40);
    id.bytes[8] = (uint8_t)((id.bytes[8] & 0x3f) | 0x80);
    dm_id_format(&id, out);
}

static json_t *iso_json(int64_t us)
{
    char s[40];
    http_time_str(us, s);
    return json_string(s);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *message(const char *m)
{
    return json_pack("{s:s}", "message", m);
}

static bool fail_oom(http_resp *rs)
{
    return http_fail(rs, HTTP_E_INTERNAL, NULL, "out of memory");
}

/* A string member of obj, or NULL. */
static const char *jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* The engine user of a Mem0 memory: its user, else a synthetic user named
 * after the first other entity.  NULL when no entity is given. */
static char *engine_user(const char *user, const char *agent, const char *app,
                         const char *run)
{
    const char *pre = NULL, *name = NULL;
    if (user)
        return dm_strdup(user);
    if (agent)
        pre = "agent:", name = agent;
    else if (app)
        pre = "app:", name = app;
    else if (run)
        pre = "run:", name = run;
    if (!name)
        return NULL;
    size_t n = strlen(pre) + strlen(name) + 1;
    char *s = dm_malloc(n);
    if (s)
        snprintf(s, n, "%s%s", pre, name);
    return s;
}

/* True when user is the synthetic user "<pre><name>". */
static bool is_synthetic(const char *user, const char *pre, const char *name)
{
    size_t l = strlen(pre);
    return name && !strncmp(user, pre, l) && !strcmp(user + l, name);
}

/* ---------------------------------------------------- the Mem0 view */

/* The memory as Mem0's Memory object, with the internal members _u, _c
 * and _m (see the top of the file).  NULL when out of memory. */
static json_t *mview(const dm_memory *m)
{
    json_t *meta = json_loads(m->metadata ? m->metadata : "{}", 0, NULL);
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_object();
    }
    json_t *v = json_object();
    if (!meta || !v)
        goto fail;
    const char *app = jstr(meta, KEY_APP);
    json_t *hist = json_object_get(meta, KEY_HIST);
    int64_t upd = m->event_time_us;
    size_t nh = json_array_size(hist);
    if (nh)
        upd = json_integer_value(json_object_get(json_array_get(hist, nh - 1), "at_us"));
    const char *user = m->user_id;
    if (is_synthetic(user, "agent:", m->agent_id) || is_synthetic(user, "app:", app) ||
        is_synthetic(user, "run:", m->session_id))
        user = NULL;
    char id[DM_ID_STRLEN + 1];
    dm_id_format(&m->id, id);
    json_object_set_new(v, "id", json_string(id));
    json_object_set_new(v, "memory", json_stringn(m->text, m->text_len));
    json_object_set_new(v, "user_id", str_or_null(user));
    json_object_set_new(v, "agent_id", str_or_null(m->agent_id));
    json_object_set_new(v, "app_id", str_or_null(app));
    json_object_set_new(v, "run_id", str_or_null(m->session_id));
    json_object_set_new(v, "session_id", str_or_null(m->session_id));
    json_object_set_new(v, "categories", json_null());
    json_object_set_new(v, "created_at", iso_json(m->event_time_us));
    json_object_set_new(v, "updated_at", iso_json(upd));
    json_object_set_new(v, "_u", json_string(m->user_id));
    json_object_set_new(v, "_c", json_integer(m->event_time_us));
    json_object_set_new(v, "_m", json_integer(upd));
    json_object_del(meta, KEY_APP);
    json_object_del(meta, KEY_HIST);
    json_object_set_new(v, "metadata", meta);
    return v;
fail:
    json_decref(meta);
    json_decref(v);
    return NULL;
}

static void strip_internal(json_t *v)
{
    json_object_del(v, "_u");
    json_object_del(v, "_c");
    json_object_del(v, "_m");
}

/* ------------------------------------------------------------ filters */

/* Mem0's filter language (docs/api-mem0.md): which member of the view a
 * key reads and how its values compare. */
typedef enum fkind {
    F_ENTITY, /* a string member: user_id, agent_id, app_id, run_id */
    F_TIME,   /* microseconds; conditions are ISO times or epoch seconds */
    F_TEXT,   /* the memory's text */
    F_META,   /* metadata: {key: condition} */
    F_IDS,    /* memory_ids: a list of ids, or {"in": [...]} */
    F_CATS,   /* categories (always null here) */
} fkind;

static const struct {
    const char *key;
    fkind kind;
    const char *member; /* the view's member it reads */
} fkeys[] = {
    { "user_id", F_ENTITY, "user_id" },  { "agent_id", F_ENTITY, "agent_id" },
    { "app_id", F_ENTITY, "app_id" },    { "run_id", F_ENTITY, "run_id" },
    { "created_at", F_TIME, "_c" },      { "updated_at", F_TIME, "_m" },
    { "timestamp", F_TIME, "_c" },       { "expiration_date", F_TIME, "expiration_date" },
    { "text", F_TEXT, "memory" },        { "keywords", F_TEXT, "memory" },
    { "keywords_search", F_TEXT, "memory" }, { "categories", F_CATS, "categories" },
    { "metadata", F_META, "metadata" },  { "memory_ids", F_IDS, "id" },
};
#define N_FKEYS (sizeof fkeys / sizeof fkeys[0])

static const char *const fops[] = { "eq", "ne", "in", "nin", "gt", "gte",
                                    "lt", "lte", "contains", "icontains" };

static int fkey_find(const char *k)
{
    for (size_t i = 0; i < N_FKEYS; i++)
        if (!strcmp(fkeys[i].key, k))
            return (int)i;
    return -1;
}

static bool is_op(const char *k)
{
    for (size_t i = 0; i < sizeof fops / sizeof fops[0]; i++)
        if (!strcmp(fops[i], k))
            return true;
    return false;
}

/* A time condition's value in microseconds: an ISO string or epoch
 * seconds.  False when it is neither. */
static bool time_value(const json_t *c, int64_t *out)
{
    if (json_is_number(c)) {
        *out = (int64_t)(json_number_value(c) * 1e6);
        return true;
    }
    return json_is_string(c) && !dm_time_parse(json_string_value(c), out);
}

/* A scalar operand is valid for the kind; err names the key. */
static bool operand_ok(const json_t *c, fkind kind, const char *key, char *err, size_t cap)
{
    int64_t t;
    if (json_is_object(c) || json_is_array(c) || json_is_null(c)) {
        snprintf(err, cap, "filter \"%s\": an operand must be a string, number or boolean",
                 key);
        return false;
    }
    if (kind == F_TIME && !(json_is_string(c) && !strcmp(json_string_value(c), "*")) &&
        !time_value(c, &t)) {
        snprintf(err, cap, "filter \"%s\": \"%.40s\" is not an ISO 8601 time", key,
                 json_is_string(c) ? json_string_value(c) : "?");
        return false;
    }
    return true;
}

/* A condition: a scalar (equality, or "*"), a list (any of), or an object
 * of operators that must all hold. */
static bool cond_ok(const json_t *c, fkind kind, const char *key, char *err, size_t cap)
{
    if (json_is_array(c)) {
        size_t i;
        json_t *e;
        json_array_foreach(c, i, e) if (!operand_ok(e, kind, key, err, cap)) return false;
        return true;
    }
    if (!json_is_object(c))
        return operand_ok(c, kind, key, err, cap);
    if (!json_object_size(c)) {
        snprintf(err, cap, "filter \"%s\": an empty condition", key);
        return false;
    }
    const char *op;
    json_t *x;
    json_object_foreach((json_t *)c, op, x) {
        if (!is_op(op)) {
            snprintf(err, cap, "filter \"%s\": unknown operator \"%.40s\"", key, op);
            return false;
        }
        bool is_list = !strcmp(op, "in") || !strcmp(op, "nin");
        if (is_list != json_is_array(x)) {
            snprintf(err, cap, "filter \"%s\": operator \"%s\" takes %s", key, op,
                     is_list ? "a list" : "a single value");
            return false;
        }
        if ((!strcmp(op, "contains") || !strcmp(op, "icontains")) && !json_is_string(x)) {
            snprintf(err, cap, "filter \"%s\": operator \"%s\" takes a string", key, op);
            return false;
        }
        if (!cond_ok(x, kind, key, err, cap))
            return false;
    }
    return true;
}

/* A filter object: every key known, every condition well-formed. */
static bool filter_ok(const json_t *f, int depth, char *err, size_t cap)
{
    if (!json_is_object(f)) {
        snprintf(err, cap, "a filter must be a JSON object");
        return false;
    }
    if (depth > 16) {
        snprintf(err, cap, "filters nest too deeply");
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)f, k, v) {
        if (!strcmp(k, "AND") || !strcmp(k, "OR") || !strcmp(k, "NOT")) {
            if (!strcmp(k, "NOT") && json_is_object(v)) {
                if (!filter_ok(v, depth + 1, err, cap))
                    return false;
                continue;
            }
            if (!json_is_array(v) || !json_array_size(v)) {
                snprintf(err, cap, "filter \"%s\" takes a non-empty list of filters", k);
                return false;
            }
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) if (!filter_ok(e, depth + 1, err, cap)) return false;
            continue;
        }
        int fi = fkey_find(k);
        if (fi < 0) {
            snprintf(err, cap, "unknown filter key \"%.60s\"", k);
            return false;
        }
        fkind kind = fkeys[fi].kind;
        if (kind == F_META) {
            if (!json_is_object(v)) {
                snprintf(err, cap, "filter \"metadata\" takes an object");
                return false;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv) if (!cond_ok(mv, F_ENTITY, mk, err, cap)) return false;
        } else if (kind == F_IDS) {
            if (json_is_object(v) && json_object_size(v) == 1 && json_object_get(v, "in"))
                v = json_object_get(v, "in");
            size_t i;
            json_t *e;
            if (!json_is_array(v)) {
                snprintf(err, cap, "filter \"memory_ids\" takes a list of ids");
                return false;
            }
            json_array_foreach(v, i, e) if (!json_is_string(e)) {
                snprintf(err, cap, "filter \"memory_ids\" takes a list of ids");
                return false;
            }
        } else if (!cond_ok(v, kind, k, err, cap)) {
            return false;
        }
    }
    return true;
}

/* Order of a condition's operand against a value: <0, 0, >0, or 2 when
 * they do not compare (a null value, different types). */
static int order(const json_t *c, const json_t *val, fkind kind)
{
    if (!val || json_is_null(val))
        return 2;
    if (kind == F_TIME) {
        int64_t t;
        if (!json_is_integer(val) || !time_value(c, &t))
            return 2;
        int64_t x = json_integer_value(val);
        return x < t ? -1 : x > t;
    }
    if (json_is_number(c) && json_is_number(val)) {
        double a = json_number_value(val), b = json_number_value(c);
        return a < b ? -1 : a > b;
    }
    if (json_is_string(c) && json_is_string(val)) {
        int r = strcmp(json_string_value(val), json_string_value(c));
        return r < 0 ? -1 : r > 0;
    }
    if (json_is_boolean(c) && json_is_boolean(val))
        return json_is_true(c) == json_is_true(val) ? 0 : 2;
    return 2;
}

static bool eq(const json_t *c, const json_t *val, fkind kind)
{
    if (json_is_array(val)) { /* categories: any element */
        size_t i;
        json_t *e;
        json_array_foreach(val, i, e) if (order(c, e, kind) == 0) return true;
        return false;
    }
    if (json_is_string(c) && !strcmp(json_string_value(c), "*"))
        return val && !json_is_null(val);
    return order(c, val, kind) == 0;
}

static bool contains(const char *hay, const char *needle, bool fold)
{
    return fold ? strcasestr(hay, needle) != NULL : strstr(hay, needle) != NULL;
}

static bool op_holds(const char *op, const json_t *x, const json_t *val, fkind kind)
{
    if (!strcmp(op, "eq"))
        return eq(x, val, kind);
    if (!strcmp(op, "ne"))
        return !eq(x, val, kind);
    if (!strcmp(op, "in") || !strcmp(op, "nin")) {
        bool any = false;
        size_t i;
        json_t *e;
        json_array_foreach(x, i, e) any = any || eq(e, val, kind);
        return op[0] == 'i' ? any : !any;
    }
    if (!strcmp(op, "contains") || !strcmp(op, "icontains")) {
        /* Categories compare without case, as the platform does. */
        bool fold = op[0] == 'i' || kind == F_CATS;
        if (json_is_string(val))
            return contains(json_string_value(val), json_string_value(x), fold);
        size_t i;
        json_t *e;
        json_array_foreach(val, i, e) if (json_is_string(e) &&
                                          contains(json_string_value(e),
                                                   json_string_value(x), fold)) return true;
        return false;
    }
    int o = order(x, val, kind);
    if (o == 2)
        return false;
    if (!strcmp(op, "gt"))
        return o > 0;
    if (!strcmp(op, "gte"))
        return o >= 0;
    if (!strcmp(op, "lt"))
        return o < 0;
    return o <= 0; /* lte */
}

static bool cond_holds(const json_t *c, const json_t *val, fkind kind)
{
    if (json_is_array(c))
        return op_holds("in", c, val, kind);
    if (!json_is_object(c))
        return eq(c, val, kind);
    const char *op;
    json_t *x;
    json_object_foreach((json_t *)c, op, x) if (!op_holds(op, x, val, kind)) return false;
    return true;
}

/* The filter (validated by filter_ok) over a view. */
static bool filter_holds(const json_t *f, const json_t *v)
{
    const char *k;
    json_t *c;
    json_object_foreach((json_t *)f, k, c) {
        size_t i;
        json_t *e;
        if (!strcmp(k, "AND")) {
            json_array_foreach(c, i, e) if (!filter_holds(e, v)) return false;
        } else if (!strcmp(k, "OR")) {
            bool any = false;
            json_array_foreach(c, i, e) any = any || filter_holds(e, v);
            if (!any)
                return false;
        } else if (!strcmp(k, "NOT")) {
            /* NOT of a list: none of them holds. */
            if (json_is_object(c)) {
                if (filter_holds(c, v))
                    return false;
            } else {
                json_array_foreach(c, i, e) if (filter_holds(e, v)) return false;
            }
        } else {
            int fi = fkey_find(k);
            fkind kind = fkeys[fi].kind;
            json_t *val = json_object_get(v, fkeys[fi].member);
            if (kind == F_META) {
                const char *mk;
                json_t *mc;
                json_object_foreach(c, mk, mc) if (!cond_holds(mc, json_object_get(val, mk),
                                                               F_ENTITY)) return false;
            } else if (kind == F_IDS) {
                json_t *list = json_is_object(c) ? json_object_get(c, "in") : c;
                bool any = false;
                json_array_foreach(list, i, e) any =
                    any || !strcasecmp(json_string_value(e), json_string_value(val));
                if (!any)
                    return false;
            } else if (!cond_holds(c, val, kind)) {
                return false;
            }
        }
    }
    return true;
}

/* Whether the filter names at least one entity positively (a value, a
 * list, "*", eq or in) on every path: the platform's rule for search and
 * listing. */
static bool filter_scoped(const json_t *f)
{
    const char *k;
    json_t *c;
    json_object_foreach((json_t *)f, k, c) {
        size_t i;
        json_t *e;
        if (!strcmp(k, "AND")) {
            json_array_foreach(c, i, e) if (filter_scoped(e)) return true;
        } else if (!strcmp(k, "OR")) {
            bool all = true;
            json_array_foreach(c, i, e) all = all && filter_scoped(e);
            if (all)
                return true;
        } else if (!strcmp(k, "NOT")) {
            continue;
        } else {
            int fi = fkey_find(k);
            if (fi < 0 || fkeys[fi].kind != F_ENTITY)
                continue;
            if (!json_is_object(c) || json_object_get(c, "eq") || json_object_get(c, "in"))
                return true;
        }
    }
    return false;
}

/* The users a filter can match, as a new JSON array of names, or NULL
 * when it is not pinned to a set of users (every user of the tenant must
 * then be read).  Sets are small: intersections are quadratic. */
static json_t *set_and(json_t *a, json_t *b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    json_t *r = json_array();
    size_t i, j;
    json_t *x, *y;
    json_array_foreach(a, i, x) json_array_foreach(b, j, y) if (json_equal(x, y)) {
        json_array_append(r, x);
        break;
    }
    json_decref(a);
    json_decref(b);
    return r;
}

static json_t *filter_users(const json_t *f)
{
    json_t *r = NULL;
    const char *k;
    json_t *c;
    json_object_foreach((json_t *)f, k, c) {
        json_t *s = NULL;
        size_t i;
        json_t *e;
        if (!strcmp(k, "AND")) {
            json_array_foreach(c, i, e) s = set_and(s, filter_users(e));
        } else if (!strcmp(k, "OR")) {
            s = json_array();
            json_array_foreach(c, i, e) {
                json_t *u = filter_users(e);
                if (!u) {
                    json_decref(s);
                    s = NULL;
                    break;
                }
                json_array_extend(s, u);
                json_decref(u);
            }
        } else if (!strcmp(k, "user_id")) {
            json_t *x = json_is_object(c) ? json_object_get(c, "eq") : c;
            json_t *in = json_is_object(c) ? json_object_get(c, "in") : NULL;
            if (json_is_string(x) && strcmp(json_string_value(x), "*"))
                s = json_pack("[O]", x);
            else if (json_is_array(x))
                s = json_copy(x);
            else if (json_is_array(in))
                s = json_copy(in);
        }
        /* Only names can be users: a number in a list matches none. */
        for (size_t j = json_array_size(s); j-- > 0;)
            if (!json_is_string(json_array_get(s, j)))
                json_array_remove(s, j);
        r = set_and(r, s);
    }
    return r;
}

/* --------------------------------------------------------- gathering */

typedef struct gather {
    const json_t *filter; /* NULL = all */
    json_t *out;          /* views that hold */
    bool is_oom;
} gather;

static void gather_one(gather *g, const dm_memory *m)
{
    json_t *v = mview(m);
    if (!v) {
        g->is_oom = true;
        return;
    }
    if (!g->filter || filter_holds(g->filter, v))
        json_array_append(g->out, v);
    json_decref(v);
}

static int gather_cb(void *arg, const dm_memory *m)
{
    gather *g = arg;
    gather_one(g, m);
    return g->is_oom;
}

/*
 * The views of the tenant's memories that the filter holds for, archived
 * ones included (a Mem0 memory never fades from listing).  users: the
 * users to read (from filter_users), NULL = every user of the tenant.
 * On error fills rs and returns NULL.
 */
static json_t *gather_views(http_req *rq, http_resp *rs, const json_t *filter,
                            const json_t *users)
{
    gather g = { .filter = filter, .out = json_array() };
    int rc = DM_OK;
    if (!g.out) {
        fail_oom(rs);
        return NULL;
    }
    if (!users) {
        rc = dm_export(rq->db, rq->tenant, NULL, gather_cb, &g);
    } else {
        size_t i;
        json_t *u;
        json_array_foreach(users, i, u) {
            char *cursor = NULL;
            do {
                dm_list_params lp = { .tenant = rq->tenant,
                                      .user_id = json_string_value(u),
                                      .limit = LIST_PAGE,
                                      .cursor = cursor,
                                      .flags = DM_WITH_ARCHIVED };
                dm_list_result *lr = NULL;
                rc = dm_list(rq->db, &lp, &lr);
                dm_free(cursor);
                cursor = NULL;
                if (rc == DM_ENOTFOUND || rc == DM_EINVAL) {
                    /* An unknown user, or a name no user can have, has
                     * no memories. */
                    rc = DM_OK;
                    break;
                }
                if (rc)
                    break;
                for (size_t j = 0; j < lr->n && !g.is_oom; j++)
                    gather_one(&g, &lr->items[j]);
                if (lr->next_cursor)
                    cursor = dm_strdup(lr->next_cursor);
                dm_list_result_free(lr);
            } while (cursor && !g.is_oom);
            dm_free(cursor);
            if (rc || g.is_oom)
                break;
        }
    }
    if (g.is_oom || rc == DM_ECANCELED) {
        json_decref(g.out);
        fail_oom(rs);
        return NULL;
    }
    if (rc) {
        json_decref(g.out);
        http_fail_dm(rs, rc, "list");
        return NULL;
    }
    return g.out;
}

/* Newest first (created time, then id), as the platform lists. */
static int by_created_desc(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int64_t cx = json_integer_value(json_object_get(x, "_c"));
    int64_t cy = json_integer_value(json_object_get(y, "_c"));
    if (cx != cy)
        return cx > cy ? -1 : 1;
    return -strcmp(jstr(x, "id"), jstr(y, "id"));
}

static int by_score_desc(const void *a, const void *b)
{
    double x = json_number_value(json_object_get(*(json_t *const *)a, "score"));
    double y = json_number_value(json_object_get(*(json_t *const *)b, "score"));
    return x > y ? -1 : x < y;
}

/* Sort a JSON array in place. */
static bool sort_array(json_t *arr, int (*cmp)(const void *, const void *))
{
    size_t n = json_array_size(arr);
    json_t **v = dm_malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return false;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(arr, i));
    qsort(v, n, sizeof *v, cmp);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, v[i]);
    dm_free(v);
    return true;
}

/* Every user of the tenant with at least one memory, as a JSON array. */
static int users_cb(void *arg, const dm_memory *m)
{
    return json_object_set_new(arg, m->user_id, json_true()) ? 1 : 0;
}

static json_t *tenant_users(http_req *rq, http_resp *rs)
{
    json_t *set = json_object(), *arr = json_array();
    if (!set || !arr || dm_export(rq->db, rq->tenant, NULL, users_cb, set)) {
        json_decref(set);
        json_decref(arr);
        fail_oom(rs);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(set, k, v) json_array_append_new(arr, json_string(k));
    json_decref(set);
    return arr;
}

/* ----------------------------------------------------------- lookups */

/* The memory with the id of a path segment, within the tenant: 404 for an
 * id that is malformed, unknown, or another tenant's. */
static dm_memory *find_memory(http_req *rq, http_resp *rs, const char *sid)
{
    dm_id id;
    dm_memory *m = NULL;
    if (!http_id(rq, rs, sid, &id))
        return NULL;
    /* By id alone: the engine finds the owner in any tenant, so the tenant
     * is checked here before anything is shown. */
    int rc = dm_get(rq->db, NULL, &id, DM_WITH_ARCHIVED, &m);
    if (rc == DM_ENOTFOUND || (!rc && strcmp(m->tenant, rq->tenant))) {
        dm_memory_free(m);
        http_fail_code(rs, HTTP_E_NOT_FOUND, "MEMORY_NOT_FOUND", "memory_id",
                       "Memory not found: %.64s", sid);
        return NULL;
    }
    if (rc) {
        http_fail_dm(rs, rc, "get");
        return NULL;
    }
    return m;
}

/* The scope that names a found memory's owner. */
static dm_scope owner(const http_req *rq, const dm_memory *m)
{
    return (dm_scope){ .tenant = rq->tenant, .user_id = m->user_id };
}

/*
 * Change a memory's text and/or its user metadata (NULL = keep), keeping
 * its reserved members and recording a text change in its history.
 */
static bool apply_update(http_req *rq, http_resp *rs, const dm_memory *m, const char *text,
                         const json_t *user_meta)
{
    json_t *old = json_loads(m->metadata ? m->metadata : "{}", 0, NULL);
    json_t *meta = NULL;
    char *ms = NULL;
    bool ok = false;
    if (!json_is_object(old)) {
        json_decref(old);
        old = json_object();
    }
    meta = user_meta ? json_deep_copy(user_meta) : json_deep_copy(old);
    if (!old || !meta)
        goto fail_oom;
    json_object_del(meta, KEY_APP);
    json_object_del(meta, KEY_HIST);
    if (json_object_get(old, KEY_APP))
        json_object_set(meta, KEY_APP, json_object_get(old, KEY_APP));
    json_t *hist = json_object_get(old, KEY_HIST);
    hist = json_is_array(hist) ? json_copy(hist) : json_array();
    if (!hist)
        goto fail_oom;
    if (text && (strlen(text) != m->text_len || memcmp(text, m->text, m->text_len)))
        json_array_append_new(hist, json_pack("{s:s%, s:s, s:I}", "old", m->text, m->text_len,
                                              "new", text, "at_us", (json_int_t)now_us()));
    /* Bound the history: the oldest entries go first. */
    for (;;) {
        char *hs = json_dumps(hist, JSON_COMPACT);
        size_t hl = hs ? strlen(hs) : 0;
        free(hs);
        if (hl <= HIST_MAX_BYTES || json_array_size(hist) <= 1)
            break;
        json_array_remove(hist, 0);
    }
    if (json_array_size(hist))
        json_object_set(meta, KEY_HIST, hist);
    json_decref(hist);
    ms = mjson_metadata_dumps(meta);
    if (!ms)
        goto fail_oom;
    dm_scope sc = owner(rq, m);
    int rc = dm_update(rq->db, &sc, &m->id, text, ms);
    ok = rc ? http_fail_dm(rs, rc, "update") : true;
    goto out;
fail_oom:
    fail_oom(rs);
out:
    free(ms);
    json_decref(meta);
    json_decref(old);
    return ok;
}

/* ------------------------------------------------------------ routes */

/* GET /v1/ping/ -- the client's first call.  The ids are stable names of
 * the tenant (FNV-1a), so a client sees the same ones on every start. */
static void h_ping(http_req *rq, http_resp *rs)
{
    uint64_t h = 1469598103934665603ull, g;
    for (const char *p = rq->tenant; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    g = (h ^ 0x9e3779b97f4a7c15ull) * 1099511628211ull;
    char org[40], proj[40];
    snprintf(org, sizeof org, "org_%016llx", (unsigned long long)h);
    snprintf(proj, sizeof proj, "proj_%016llx", (unsigned long long)g);
    http_reply(rs, 200, json_pack("{s:s, s:s, s:s}", "status", "ok", "org_id", org,
                                  "project_id", proj));
}

/* POST /v3/memories/add/ */
static void h_add(http_req *rq, http_resp *rs)
{
    json_t *body = http_body_object(rq, rs);
    const char *user = NULL, *agent = NULL, *app = NULL, *run = NULL;
    json_t *meta = NULL, *msgs, *res = NULL, *mj = NULL;
    bool infer = true;
    int64_t ts = 0;
    char *euser = NULL, *ms = NULL;
    dm_add_params *ps = NULL;
    dm_id *ids = NULL;
    size_t n = 0;
    if (!body || !http_fields_known(rq, rs, body, ADD_FIELDS) ||
        !http_str(rq, rs, body, "user_id", false, &user) ||
        !http_str(rq, rs, body, "agent_id", false, &agent) ||
        !http_str(rq, rs, body, "app_id", false, &app) ||
        !http_str(rq, rs, body, "run_id", false, &run) ||
        !http_obj(rq, rs, body, "metadata", false, &meta) ||
        !http_bool(rq, rs, body, "infer", &infer) ||
        !http_time(rq, rs, body, "timestamp", &ts))
        return;
    msgs = json_object_get(body, "messages");
    if (!msgs || json_is_null(msgs)) {
        http_fail(rs, HTTP_E_BAD_REQUEST, "messages", "missing field \"messages\"");
        return;
    }
    if (!json_is_string(msgs) && !http_arr(rq, rs, body, "messages", true, &msgs))
        return;
    if (!user && !agent && !app && !run) {
        http_fail(rs, HTTP_E_BAD_REQUEST, "user_id",
                  "at least one of user_id, agent_id, app_id or run_id is required");
        return;
    }
    mj = meta ? json_deep_copy(meta) : json_object();
    euser = engine_user(user, agent, app, run);
    size_t cap = json_is_string(msgs) ? 1 : json_array_size(msgs);
    ps = dm_calloc(cap ? cap : 1, sizeof *ps);
    ids = dm_calloc(cap ? cap : 1, sizeof *ids);
    if (!mj || !euser || !ps || !ids)
        goto oom;
    json_object_del(mj, KEY_HIST);
    if (app)
        json_object_set_new(mj, KEY_APP, json_string(app));
    if (!(ms = mjson_metadata_dumps(mj)))
        goto oom;
    for (size_t i = 0; i < cap; i++) {
        const char *role = "user", *text = NULL;
        if (json_is_string(msgs)) {
            if (!http_str_empty(rq, rs, body, "messages", true, &text))
                goto out;
        } else {
            json_t *it = json_array_get(msgs, i);
            if (!json_is_object(it)) {
                http_fail(rs, HTTP_E_BAD_REQUEST, "messages",
                          "messages[%zu] must be an object {role, content}", i);
                goto out;
            }
            json_t *c = json_object_get(it, "content");
            if (json_is_object(c) || json_is_array(c)) {
                http_fail(rs, HTTP_E_UNPROCESSABLE, "content",
                          "messages[%zu]: only text content is supported", i);
                goto out;
            }
            if (!http_str(rq, rs, it, "role", false, &role) ||
                !http_str_empty(rq, rs, it, "content", true, &text))
                goto out;
            if (strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "system")) {
                http_fail(rs, HTTP_E_BAD_REQUEST, "role",
                          "messages[%zu]: role must be user, assistant or system", i);
                goto out;
            }
        }
        if (!text[strspn(text, " \t\r\n")])
            continue; /* nothing to remember */
        dm_add_params *p = &ps[n++];
        dm_add_params_init(p);
        p->tenant = rq->tenant;
        p->user_id = euser;
        p->agent_id = agent;
        p->session_id = run;
        p->role = role;
        p->text = text;
        p->event_time_us = ts;
        p->metadata = ms;
        /* infer: the turn's facts are extracted as for a remembered turn;
         * instructions are never facts about the user. */
        p->no_extract = !infer || !strcmp(role, "system");
    }
    if (!n) {
        http_fail(rs, HTTP_E_BAD_REQUEST, "messages", "no message has any text");
        goto out;
    }
    int rc = dm_add_batch(rq->db, ps, n, ids);
    if (rc) {
        http_fail_dm(rs, rc, "add");
        goto out;
    }
    if (!(res = json_array()))
        goto oom;
    for (size_t i = 0; i < n; i++) {
        char s[DM_ID_STRLEN + 1];
        dm_id_format(&ids[i], s);
        json_array_append_new(res, json_pack("{s:s, s:{s:s}, s:s}", "id", s, "data", "memory",
                                             ps[i].text, "event", "ADD"));
    }
    char ev[DM_ID_STRLEN + 1], msg[64];
    uuid4(ev);
    snprintf(msg, sizeof msg, "%zu memor%s added", n, n == 1 ? "y" : "ies");
    http_reply(rs, 200, json_pack("{s:s, s:s, s:s, s:O}", "event_id", ev, "status", "SUCCEEDED",
                                  "message", msg, "results", res));
    goto out;
oom:
    fail_oom(rs);
out:
    json_decref(res);
    json_decref(mj);
    free(ms);
    dm_free(euser);
    dm_free(ps);
    dm_free(ids);
}

/* The filters member of a search or listing body: validated and scoped.
 * Extra conditions (a top-level metadata, start_date...) are ANDed in by
 * the caller.  On error fills rs and returns NULL; else a new reference. */
static json_t *read_filters(http_req *rq, http_resp *rs, json_t *body)
{
    json_t *f = NULL;
    char err[200];
    static const char *const entity[] = { "user_id", "agent_id", "app_id", "run_id" };
    for (size_t i = 0; i < 4; i++)
        if (json_object_get(body, entity[i])) {
            http_fail(rs, HTTP_E_BAD_REQUEST, entity[i],
                      "\"%s\" must be given inside \"filters\", not at the top level",
                      entity[i]);
            return NULL;
        }
    if (!http_obj(rq, rs, body, "filters", false, &f))
        return NULL;
    if (!f || !filter_scoped(f)) {
        if (!f || filter_ok(f, 0, err, sizeof err))
            http_fail(rs, HTTP_E_BAD_REQUEST, "filters",
                      "filters must name at least one of user_id, agent_id, app_id or "
                      "run_id (a value, a list with \"in\", or \"*\")");
        else
            http_fail(rs, HTTP_E_BAD_REQUEST, "filters", "%s", err);
        return NULL;
    }
    if (!filter_ok(f, 0, err, sizeof err)) {
        http_fail(rs, HTTP_E_BAD_REQUEST, "filters", "%s", err);
        return NULL;
    }
    return json_incref(f);
}

/* AND one more filter into f (both validated); f is replaced. */
static json_t *and_filter(json_t *f, json_t *more)
{
    json_t *r = json_pack("{s:[O, O]}", "AND", f, more);
    json_decref(f);
    json_decref(more);
    return r;
}

/* POST /v3/memories/search/ */
static void h_search(http_req *rq, http_resp *rs)
{
    json_t *body = http_body_object(rq, rs), *f = NULL, *meta = NULL, *users = NULL,
           *out = NULL;
    const char *query = NULL;
    int64_t top_k = TOP_K_DEF;
    double threshold = THRESHOLD_DEF;
    if (!body || !http_fields_known(rq, rs, body, SEARCH_FIELDS) ||
        !http_str(rq, rs, body, "query", true, &query) ||
        !http_int(rq, rs, body, "top_k", false, 1, rq->cfg->max_top_k, &top_k) ||
        !http_num(rq, rs, body, "threshold", false, 0, 1, &threshold) ||
        !http_obj(rq, rs, body, "metadata", false, &meta) ||
        !(f = read_filters(rq, rs, body)))
        return;
    /* Only a filter that is exactly {"user_id": "<name>"} is answered by
     * the engine alone; any other condition is checked on the results, so
     * the engine is asked for more of them. */
    bool is_plain = !meta && json_object_size(f) == 1 &&
                    json_is_string(json_object_get(f, "user_id"));
    if (meta) {
        char err[200];
        json_t *mf = json_pack("{s:O}", "metadata", meta);
        if (!filter_ok(mf, 0, err, sizeof err)) {
            json_decref(mf);
            http_fail(rs, HTTP_E_BAD_REQUEST, "metadata", "%s", err);
            goto out;
        }
        f = and_filter(f, mf);
    }
    users = filter_users(f);
    if (!users && !(users = tenant_users(rq, rs)))
        goto out;
    int64_t k = is_plain ? top_k : top_k * 4 < 100 ? 100 : top_k * 4;
    if (k > ENGINE_K_MAX)
        k = ENGINE_K_MAX;
    if (!(out = json_array()))
        goto oom;
    size_t i;
    json_t *u;
    json_array_foreach(users, i, u) {
        dm_search_params sp = { .tenant = rq->tenant,
                                .user_id = json_string_value(u),
                                .query = query,
                                .k = (uint32_t)k };
        dm_search_result *sr = NULL;
        int rc = dm_search(rq->db, &sp, &sr);
        if (rc == DM_ENOTFOUND)
            continue;
        if (rc) {
            http_fail_dm(rs, rc, "search");
            goto out;
        }
        http_observe_search(rq, sr);
        for (size_t j = 0; j < sr->n; j++) {
            json_t *v = mview(&sr->hits[j].memory);
            if (!v) {
                dm_search_result_free(sr);
                goto oom;
            }
            if (sr->hits[j].score >= threshold && filter_holds(f, v)) {
                json_object_set_new(v, "score", mjson_float(sr->hits[j].score));
                json_array_append(out, v);
            }
            json_decref(v);
        }
        dm_search_result_free(sr);
    }
    if (!sort_array(out, by_score_desc))
        goto oom;
    while (json_array_size(out) > (size_t)top_k)
        json_array_remove(out, json_array_size(out) - 1);
    json_array_foreach(out, i, u) strip_internal(u);
    http_reply(rs, 200, json_pack("{s:O}", "results", out));
    goto out;
oom:
    fail_oom(rs);
out:
    json_decref(out);
    json_decref(users);
    json_decref(f);
}

/* The URL of another page of this listing, or null. */
static json_t *page_url(http_req *rq, const char *path, int64_t page, int64_t size,
                        bool exists)
{
    if (!exists)
        return json_null();
    const char *host = http_header(rq, "Host");
    char u[512];
    snprintf(u, sizeof u, "%s%s%s?page=%lld&page_size=%lld", host ? "http://" : "",
             host ? host : "", path, (long long)page, (long long)size);
    return json_string(u);
}

/* {count, next, previous, results} for one page of items (stolen). */
static bool reply_page(http_req *rq, http_resp *rs, json_t *items, const char *path,
                       int64_t page, int64_t size, json_t *extra)
{
    size_t n = json_array_size(items);
    size_t from = (size_t)((page - 1) * size);
    json_t *res = json_array();
    if (!res) {
        json_decref(items);
        json_decref(extra);
        return fail_oom(rs);
    }
    for (size_t i = from; i < n && i < from + (size_t)size; i++)
        json_array_append(res, json_array_get(items, i));
    json_t *b = extra ? extra : json_object();
    json_object_set_new(b, "count", json_integer((json_int_t)n));
    json_object_set_new(b, "next", page_url(rq, path, page + 1, size, from + (size_t)size < n));
    json_object_set_new(b, "previous", page_url(rq, path, page - 1, size, page > 1));
    json_object_set_new(b, "results", res);
    json_decref(items);
    http_reply(rs, 200, b);
    return true;
}

/* POST /v3/memories/?page=&page_size= */
static void h_list(http_req *rq, http_resp *rs)
{
    json_t *body = http_body_object(rq, rs), *f = NULL, *users = NULL, *items = NULL;
    int64_t page = 1, size = PAGE_SIZE_DEF, from = 0, to = 0;
    if (!body || !http_fields_known(rq, rs, body, LIST_FIELDS) ||
        !http_query_int(rq, rs, "page", 1, 1000000, &page) ||
        !http_query_int(rq, rs, "page_size", 1, PAGE_SIZE_MAX, &size) ||
        !http_time(rq, rs, body, "start_date", &from) ||
        !http_time(rq, rs, body, "end_date", &to) || !(f = read_filters(rq, rs, body)))
        return;
    if (from || to) {
        json_t *c = json_object();
        if (from)
            json_object_set_new(c, "gte", json_integer(from / 1000000));
        if (to)
            json_object_set_new(c, "lte", json_integer(to / 1000000));
        f = and_filter(f, json_pack("{s:o}", "created_at", c));
    }
    users = filter_users(f);
    items = gather_views(rq, rs, f, users);
    if (items) {
        if (!sort_array(items, by_created_desc)) {
            json_decref(items);
            fail_oom(rs);
        } else {
            size_t i;
            json_t *v;
            json_array_foreach(items, i, v) strip_internal(v);
            reply_page(rq, rs, items, "/v3/memories/", page, size, NULL);
        }
    }
    json_decref(users);
    json_decref(f);
}

/* Answer 200 with m's Mem0 view (internal keys stripped); frees m. */
static void reply_memory(http_resp *rs, dm_memory *m)
{
    json_t *v = mview(m);
    dm_memory_free(m);
    if (!v) {
        fail_oom(rs);
        return;
    }
    strip_internal(v);
    http_reply(rs, 200, v);
}

/* GET /v1/memories/{id}/ */
static void h_get(http_req *rq, http_resp *rs)
{
    dm_memory *m = find_memory(rq, rs, rq->segs[2]);
    if (m)
        reply_memory(rs, m);
}

/* PUT /v1/memories/{id}/ -- text and/or metadata.  timestamp and
 * expiration_date are accepted and ignored: the engine keeps a memory's
 * event time, and memories here do not expire. */
static void h_update(http_req *rq, http_resp *rs)
{
    json_t *body = http_body_object(rq, rs), *meta = NULL;
    const char *text = NULL;
    int64_t ts = 0;
    if (!body || !http_fields_known(rq, rs, body, UPDATE_FIELDS) ||
        !http_str(rq, rs, body, "text", false, &text) ||
        !http_obj(rq, rs, body, "metadata", false, &meta) ||
        !http_time(rq, rs, body, "timestamp", &ts))
        return;
    dm_memory *m = find_memory(rq, rs, rq->segs[2]);
    if (!m)
        return;
    if ((text || meta) && !apply_update(rq, rs, m, text, meta)) {
        dm_memory_free(m);
        return;
    }
    dm_id id = m->id;
    dm_scope sc = owner(rq, m);
    dm_memory *n = NULL;
    int rc = dm_get(rq->db, &sc, &id, DM_WITH_ARCHIVED, &n);
    dm_memory_free(m);
    if (rc) {
        http_fail_dm(rs, rc, "get");
        return;
    }
    reply_memory(rs, n);
}

/* DELETE /v1/memories/{id}/ */
static void h_delete(http_req *rq, http_resp *rs)
{
    dm_memory *m = find_memory(rq, rs, rq->segs[2]);
    if (!m)
        return;
    dm_scope sc = owner(rq, m);
    int rc = dm_delete(rq->db, &sc, &m->id);
    dm_memory_free(m);
    if (rc)
        http_fail_dm(rs, rc, "delete");
    else
        http_reply(rs, 200, message("Memory deleted successfully!"));
}

/* Delete every memory of the tenant the filter holds for; *n the count. */
static bool delete_matching(http_req *rq, http_resp *rs, json_t *f, uint64_t *n)
{
    json_t *users = filter_users(f);
    json_t *items = gather_views(rq, rs, f, users);
    bool ok = items != NULL;
    size_t i;
    json_t *v;
    *n = 0;
    json_array_foreach(items, i, v) {
        dm_id id;
        dm_scope sc = { .tenant = rq->tenant, .user_id = jstr(v, "_u") };
        if (dm_id_parse(jstr(v, "id"), &id))
            continue;
        int rc = dm_delete(rq->db, &sc, &id);
        if (rc == DM_ENOTFOUND)
            continue; /* deleted meanwhile */
        if (rc) {
            ok = http_fail_dm(rs, rc, "delete");
            break;
        }
        (*n)++;
    }
    json_decref(items);
    json_decref(users);
    return ok;
}

/* DELETE /v1/memories/?user_id=&agent_id=&app_id=&run_id= */
static void h_delete_all(http_req *rq, http_resp *rs)
{
    static const char *const keys[] = { "user_id", "agent_id", "app_id", "run_id" };
    json_t *f = json_object();
    uint64_t n = 0;
    if (!f) {
        fail_oom(rs);
        return;
    }
    for (size_t i = 0; i < 4; i++) {
        const char *v = http_query(rq, keys[i]);
        if (v && *v)
            json_object_set_new(f, keys[i], json_string(v));
    }
    if (!json_object_size(f)) {
        http_fail(rs, HTTP_E_BAD_REQUEST, "user_id",
                  "name at least one of user_id, agent_id, app_id or run_id");
        goto out;
    }
    const char *user = jstr(f, "user_id");
    if (user && json_object_size(f) == 1) {
        /* A whole user: erased with its indexes in one call. */
        int rc = dm_erase_user(rq->db, rq->tenant, user, &n);
        if (rc && rc != DM_ENOTFOUND && rc != DM_EINVAL) {
            http_fail_dm(rs, rc, "delete");
            goto out;
        }
    } else if (!delete_matching(rq, rs, f, &n)) {
        goto out;
    }
    http_reply(rs, 200, json_pack("{s:s, s:I}", "message", "Memories deleted successfully!",
                                  "deleted", (json_int_t)n));
out:
    json_decref(f);
}

/* One entry of a MemoryHistory array. */
static json_t *history_entry(const dm_memory *m, const json_t *v, size_t i, const char *event,
                             const char *old_text, const char *new_text, int64_t at_us)
{
    dm_id hid = m->id;
    /* A stable id per entry: the memory's id with its last byte varied. */
    hid.bytes[15] ^= (uint8_t)(i + 1);
    char hs[DM_ID_STRLEN + 1];
    dm_id_format(&hid, hs);
    json_t *input = json_array();
    if (!strcmp(event, "ADD"))
        json_array_append_new(input, json_pack("{s:s, s:s}", "role", m->role ? m->role : "user",
                                               "content", new_text));
    return json_pack("{s:s, s:O, s:o, s:o, s:s, s:O, s:O, s:O, s:O, s:n, s:s, s:O, s:o, s:o}",
                     "id", hs, "memory_id", json_object_get(v, "id"), "input", input,
                     "old_memory", str_or_null(old_text), "new_memory", new_text, "user_id",
                     json_object_get(v, "user_id"), "agent_id", json_object_get(v, "agent_id"),
                     "app_id", json_object_get(v, "app_id"), "session_id",
                     json_object_get(v, "session_id"), "categories", "event", event,
                     "metadata", json_object_get(v, "metadata"), "created_at", iso_json(at_us),
                     "updated_at", iso_json(at_us));
}

/* GET /v1/memories/{id}/history/ -- the add, then each text update. */
static void h_history(http_req *rq, http_resp *rs)
{
    dm_memory *m = find_memory(rq, rs, rq->segs[2]);
    if (!m)
        return;
    json_t *meta = json_loads(m->metadata ? m->metadata : "{}", 0, NULL);
    json_t *v = mview(m), *out = json_array();
    if (!v || !out) {
        fail_oom(rs);
        goto out;
    }
    json_t *hist = json_object_get(meta, KEY_HIST);
    size_t nh = json_array_size(hist);
    char *cur = dm_strndup(m->text, m->text_len);
    if (!cur) {
        fail_oom(rs);
        goto out;
    }
    const char *first = nh ? jstr(json_array_get(hist, 0), "old") : cur;
    json_array_append_new(out, history_entry(m, v, 0, "ADD", NULL, first ? first : cur,
                                             m->event_time_us));
    for (size_t i = 0; i < nh; i++) {
        json_t *e = json_array_get(hist, i);
        const char *o = jstr(e, "old"), *n = jstr(e, "new");
        json_array_append_new(out, history_entry(m, v, i + 1, "UPDATE", o ? o : "",
                                                 n ? n : "",
                                                 json_integer_value(json_object_get(e, "at_us"))));
    }
    dm_free(cur);
    http_reply(rs, 200, out);
    out = NULL;
out:
    json_decref(out);
    json_decref(v);
    json_decref(meta);
    dm_memory_free(m);
}

/* Entities: one per (type, name) with its memory count and times. */
typedef struct ent_acc {
    json_t *by_type; /* {"user": {name: [count, first_us, last_us]}, ...} */
    bool is_oom;
} ent_acc;

static void ent_add(ent_acc *a, const char *type, const json_t *name, const json_t *v)
{
    if (!json_is_string(name))
        return;
    json_t *t = json_object_get(a->by_type, type);
    json_t *e = json_object_get(t, json_string_value(name));
    int64_t c = json_integer_value(json_object_get(v, "_c"));
    int64_t m = json_integer_value(json_object_get(v, "_m"));
    if (!e) {
        if (json_object_set_new(t, json_string_value(name), json_pack("[i, I, I]", 0, c, m))) {
            a->is_oom = true;
            return;
        }
        e = json_object_get(t, json_string_value(name));
    }
    json_array_set_new(e, 0, json_integer(json_integer_value(json_array_get(e, 0)) + 1));
    if (c < json_integer_value(json_array_get(e, 1)))
        json_array_set_new(e, 1, json_integer(c));
    if (m > json_integer_value(json_array_get(e, 2)))
        json_array_set_new(e, 2, json_integer(m));
}

static int ent_cb(void *arg, const dm_memory *m)
{
    ent_acc *a = arg;
    json_t *v = mview(m);
    if (!v)
        return a->is_oom = true;
    ent_add(a, "user", json_object_get(v, "user_id"), v);
    ent_add(a, "agent", json_object_get(v, "agent_id"), v);
    ent_add(a, "app", json_object_get(v, "app_id"), v);
    ent_add(a, "run", json_object_get(v, "run_id"), v);
    json_decref(v);
    return a->is_oom;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(jstr(*(json_t *const *)a, "name"), jstr(*(json_t *const *)b, "name"));
}

/* GET /v1/entities/ -- one scan of the tenant's memories (the engine keeps
 * no list of agents, apps or runs). */
static void h_entities(http_req *rq, http_resp *rs)
{
    static const char *const types[] = { "user", "agent", "app", "run" };
    int64_t page = 1, size = PAGE_SIZE_DEF;
    if (!http_query_int(rq, rs, "page", 1, 1000000, &page) ||
        !http_query_int(rq, rs, "page_size", 1, PAGE_SIZE_MAX, &size))
        return;
    ent_acc a = { .by_type = json_pack("{s:{}, s:{}, s:{}, s:{}}", "user", "agent", "app", "run") };
    json_t *all = json_array(), *extra = json_object();
    if (!a.by_type || !all || !extra)
        goto oom;
    int rc = dm_export(rq->db, rq->tenant, NULL, ent_cb, &a);
    if (a.is_oom)
        goto oom;
    if (rc) {
        http_fail_dm(rs, rc, "entities");
        goto out;
    }
    for (size_t t = 0; t < 4; t++) {
        json_t *part = json_array(), *e;
        const char *name;
        char total[32];
        json_object_foreach(json_object_get(a.by_type, types[t]), name, e) {
            int64_t c = json_integer_value(json_array_get(e, 1));
            int64_t m = json_integer_value(json_array_get(e, 2));
            json_array_append_new(
                part, json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:I, s:{}}", "id", name, "name",
                                name, "type", types[t], "created_at", iso_json(c), "updated_at",
                                iso_json(m), "owner", rq->tenant, "total_memories",
                                json_integer_value(json_array_get(e, 0)), "metadata"));
        }
        if (!part || !sort_array(part, by_name)) {
            json_decref(part);
            goto oom;
        }
        snprintf(total, sizeof total, "total_%ss", types[t]);
        json_object_set_new(extra, total, json_integer((json_int_t)json_array_size(part)));
        json_array_extend(all, part);
        json_decref(part);
    }
    reply_page(rq, rs, all, "/v1/entities/", page, size, extra);
    all = extra = NULL;
    goto out;
oom:
    fail_oom(rs);
out:
    json_decref(a.by_type);
    json_decref(all);
    json_decref(extra);
}

/* DELETE /v2/entities/{type}/{name}/ (and the older /v1/ form). */
static void h_delete_entity(http_req *rq, http_resp *rs)
{
    const char *type = rq->segs[2], *name = rq->segs[3];
    uint64_t n = 0;
    if (strcmp(type, "user") && strcmp(type, "agent") && strcmp(type, "app") &&
        strcmp(type, "run")) {
        http_fail(rs, HTTP_E_BAD_REQUEST, "type",
                  "entity type must be user, agent, app or run, not \"%.40s\"", type);
        return;
    }
    if (!strcmp(type, "user")) {
        int rc = dm_erase_user(rq->db, rq->tenant, name, &n);
        if (rc && rc != DM_ENOTFOUND && rc != DM_EINVAL) {
            http_fail_dm(rs, rc, "delete");
            return;
        }
    } else {
        char key[16];
        snprintf(key, sizeof key, "%s_id", type);
        json_t *f = json_pack("{s:s}", key, name);
        bool ok = f && delete_matching(rq, rs, f, &n);
        json_decref(f);
        if (!ok) {
            if (!f)
                fail_oom(rs);
            return;
        }
    }
    if (!n) {
        http_fail(rs, HTTP_E_NOT_FOUND, NULL, "Entity not found: %s %.80s", type, name);
        return;
    }
    http_reply(rs, 200, json_pack("{s:s, s:I}", "message", "Entity deleted successfully.",
                                  "deleted", (json_int_t)n));
}

/* PUT and DELETE /v1/batch/ -- {memories: [{memory_id, text?}]}.  Every id
 * is looked up (and every text checked) before anything changes. */
static void batch(http_req *rq, http_resp *rs, bool is_delete)
{
    json_t *body = http_body_object(rq, rs), *mems = NULL;
    if (!body || !http_arr(rq, rs, body, "memories", true, &mems))
        return;
    size_t n = json_array_size(mems), got = 0, done = 0;
    dm_memory **ms = dm_calloc(n ? n : 1, sizeof *ms);
    const char **texts = dm_calloc(n ? n : 1, sizeof *texts);
    if (!ms || !texts) {
        fail_oom(rs);
        goto out;
    }
    if (!n) {
        http_fail(rs, HTTP_E_BAD_REQUEST, "memories", "\"memories\" is empty");
        goto out;
    }
    for (; got < n; got++) {
        json_t *it = json_array_get(mems, got);
        const char *id = NULL;
        if (!json_is_object(it)) {
            http_fail(rs, HTTP_E_BAD_REQUEST, "memories",
                      "memories[%zu] must be an object {memory_id%s}", got,
                      is_delete ? "" : ", text");
            goto out;
        }
        if (!http_str(rq, rs, it, "memory_id", true, &id) ||
            (!is_delete && !http_str(rq, rs, it, "text", true, &texts[got])))
            goto out;
        if (!(ms[got] = find_memory(rq, rs, id)))
            goto out;
    }
    for (; done < n; done++) {
        if (is_delete) {
            dm_scope sc = owner(rq, ms[done]);
            int rc = dm_delete(rq->db, &sc, &ms[done]->id);
            if (rc && rc != DM_ENOTFOUND) {
                http_fail_dm(rs, rc, "delete");
                goto out;
            }
        } else if (!apply_update(rq, rs, ms[done], texts[done], NULL)) {
            goto out;
        }
    }
    char msg[64];
    snprintf(msg, sizeof msg, "Successfully %s %zu memories", is_delete ? "deleted" : "updated",
             n);
    http_reply(rs, 200, message(msg));
out:
    for (size_t i = 0; ms && i < got; i++)
        dm_memory_free(ms[i]);
    dm_free(ms);
    dm_free(texts);
}

static void h_batch_update(http_req *rq, http_resp *rs)
{
    batch(rq, rs, false);
}

static void h_batch_delete(http_req *rq, http_resp *rs)
{
    batch(rq, rs, true);
}

const http_route http_routes_mem0[] = {
    { "GET", "/v1/ping/", HTTP_MEM0, h_ping, "mem0_ping", false, false },
    { "POST", "/v3/memories/add/", HTTP_MEM0, h_add, "mem0_add", false, true },
    { "POST", "/v3/memories/search/", HTTP_MEM0, h_search, "mem0_search", false, false },
    { "POST", "/v3/memories/", HTTP_MEM0, h_list, "mem0_list", false, false },
    { "DELETE", "/v1/memories/", HTTP_MEM0, h_delete_all, "mem0_delete_all", false, false },
    { "GET", "/v1/memories/{}/", HTTP_MEM0, h_get, "mem0_get", false, false },
    { "PUT", "/v1/memories/{}/", HTTP_MEM0, h_update, "mem0_update", false, true },
    { "DELETE", "/v1/memories/{}/", HTTP_MEM0, h_delete, "mem0_delete", false, true },
    { "GET", "/v1/memories/{}/history/", HTTP_MEM0, h_history, "mem0_history", false, false },
    { "GET", "/v1/entities/", HTTP_MEM0, h_entities, "mem0_entities", false, false },
    { "DELETE", "/v2/entities/{}/{}/", HTTP_MEM0, h_delete_entity, "mem0_delete_entity", false, false },
    { "DELETE", "/v1/entities/{}/{}/", HTTP_MEM0, h_delete_entity, "mem0_delete_entity", false, false },
    { "PUT", "/v1/batch/", HTTP_MEM0, h_batch_update, "mem0_batch_update", false, false },
    { "DELETE", "/v1/batch/", HTTP_MEM0, h_batch_delete, "mem0_batch_delete", false, false },
    { 0 },
};
