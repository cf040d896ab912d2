/*
 * http.c -- the HTTP/JSON server: libmicrohttpd glue, limits, API keys,
 * rate limits, routing, error bodies, metrics, the access log and a
 * graceful stop.
 *
 * A request goes through, in this order:
 *   1. the body is gathered (a Content-Length over max_body_len is refused
 *      with 413 before any of it is read; a body that grows past it
 *      without one is dropped and answered 413);
 *   2. the path is split into segments and each is percent-decoded (bad
 *      escapes, NULs and invalid UTF-8 are a 400); the route table is
 *      searched -- a path that matches under another method is a 405;
 *   3. the API key (X-API-Key, Authorization: Bearer|Token) names the
 *      tenant; without any key configured every request is the default
 *      tenant's and the server listens on loopback only;
 *   4. the key's token bucket (or the client address's, without keys);
 *   5. the body is checked for nesting depth, then parsed (jansson also
 *      refuses invalid UTF-8);
 *   6. per-user admission: a request naming a user who already has
 *      user_concurrency requests in progress waits its turn on a suspended
 *      connection (fair.h; wait_turn), and the handler is called again when
 *      the user's slot is handed to it;
 *   7. the handler runs over the dm_* API and fills the response; errors
 *      are formatted in the route's dialect (handlers.h).  A write (a
 *      route with is_write) runs on a write thread while its connection
 *      is suspended, so that its WAL sync never holds a request thread
 *      (offload; the answer is sent when the connection is picked up
 *      again).
 * Nothing is changed before step 7, so a request refused by 1-5 leaves the
 * database as it was.
 *
 * Threads: libmicrohttpd's pool (epoll); each thread runs its handlers one
 * at a time, so n_threads bounds the requests in progress, writes aside
 * (n_write_threads of them run at once).  The counters
 * are atomics; the rate limiter and the access log have one mutex each.
 *
 * Slow clients: libmicrohttpd's idle timeout restarts with every byte, so
 * a watchdog thread also holds each connection to a deadline for its
 * request's headers (timeout_s from the connection's start or its last
 * response) and shuts down the sockets that miss it.
 *
 * Stopping: the draining flag turns new requests into 503s, the listening
 * socket is closed, and http_stop waits for the requests in progress
 * (in_flight) before stopping the daemon.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "server/fair.h"
#include "server/handlers.h"
#include "server/keys.h"
#include "server/mjson.h"
#include "server/server.h"

#define DEF_PORT 6969
#define DEF_MAX_CONN 4096
#define DEF_TIMEOUT_S 30
#define DEF_MAX_BODY (8u << 20)
#define DEF_MAX_TEXT (32u << 10) /* the engine's default max_text_bytes */
#define DEF_MAX_BATCH 1000
#define DEF_MAX_TOP_K 1000
#define DEF_MAX_DEPTH 32
#define DEF_RATE 1000.0
#define MAX_SEGS 16

/* Latency histogram bounds, seconds (Prometheus "le"). */
static const double lat_bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,   0.1,   0.25,   0.5,   1,    2.5 };
#define N_BOUNDS (sizeof lat_bounds / sizeof lat_bounds[0])

typedef struct route_stats {
    atomic_ullong by_class[6]; /* 1xx..5xx by status / 100, [0] unused */
    atomic_ullong buckets[N_BOUNDS + 1];
    atomic_ullong sum_us;
} route_stats;

typedef struct bucket {
    char name[64];             /* key id or client address */
    double tokens;
    double last_s;
    struct bucket *next;
} bucket;

#define RL_SLOTS 1024
#define RL_MAX_ENTRIES 65536

struct http_server {
    dm_db *db;
    http_config cfg;
    char *host, *access_log, *data_dir, *llm_url;
    struct MHD_Daemon *mhd;
    uint16_t port;
    http_keys *keys;
    const http_route **routes;
    route_stats *stats;        /* one per route, plus one for "unrouted" */
    size_t n_routes;
    route_stats stages[DM_N_STAGES]; /* dm_search's stages (http_observe_search) */
    atomic_int in_flight;
    atomic_bool draining;
    atomic_ullong n_requests;
    pthread_mutex_t rl_mu;
    bucket *rl[RL_SLOTS];
    size_t rl_n;
    pthread_mutex_t log_mu;
    FILE *log_fp;
    /* Request deadlines (slowloris): every open connection, with the time
     * by which its request's headers must have arrived.  watch_mu guards
     * the list; the watchdog thread shuts down the sockets that are late. */
    pthread_mutex_t watch_mu;
    struct conn_watch *watch;
    pthread_t watchdog;
    bool has_watchdog;
    atomic_bool stop_watch;
    /* Per-user admission (fair.h).  park_mu orders a request's suspension
     * against the hand-over of a slot to it (conn_req.park). */
    fair *fair;
    pthread_mutex_t park_mu;
    atomic_ullong n_parked;    /* requests that waited for their user */
    route_stats user_wait;     /* how long they waited */
    atomic_ullong user_wait_max_us;
    /* The write threads (http_route.is_write): a queue of offloaded
     * requests under wq_mu; wq_stop ends the threads once it is empty. */
    pthread_t *writers;
    unsigned n_writers;
    pthread_mutex_t wq_mu;
    pthread_cond_t wq_cv;
    struct offload_job *wq_head, *wq_tail;
    bool wq_stop;
    atomic_ullong n_offloaded; /* writes run on the write threads */
};

typedef struct conn_watch {
    int fd;
    double deadline_s;         /* INFINITY while a request is being served */
    struct conn_watch *prev, *next;
} conn_watch;

/* Per-request state, from the first call of the access handler to the
 * completion callback. */
typedef enum { PARK_NONE, PARK_SUSPENDED, PARK_HANDED } park_state;

typedef struct conn_req {
    char *body;
    size_t body_len, body_cap;
    bool is_too_large;
    bool is_counted;           /* in in_flight */
    bool is_again;             /* handled before: parked, then resumed */
    struct timespec t0;
    char *allocs[32];          /* decoded strings handed to the handler */
    size_t n_allocs;
    /* Per-user admission: the user's entry while the request holds a slot
     * or waits for one; fw is its place in the queue.  park (under
     * park_mu): whether the connection is suspended, or was handed the
     * slot before it could be. */
    fair_user *fu;
    fair_waiter fw;
    park_state park;
    struct MHD_Connection *conn;
    struct timespec park_t0;   /* when it was parked; tv_sec 0 = not */
    struct offload_job *job;   /* its handler runs (or ran) on a write thread */
} conn_req;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------- responses */

static const struct {
    int status;
    const char *native, *dm;
} err_info[HTTP_N_ERR] = {
    [HTTP_E_BAD_REQUEST] = { 400, "bad_request", "INVALID_REQUEST" },
    [HTTP_E_UNAUTHORIZED] = { 401, "unauthorized", "INVALID_API_KEY" },
    [HTTP_E_FORBIDDEN] = { 403, "forbidden", "FORBIDDEN" },
    [HTTP_E_NOT_FOUND] = { 404, "not_found", "NOT_FOUND" },
    [HTTP_E_METHOD] = { 405, "method_not_allowed", "METHOD_NOT_ALLOWED" },
    [HTTP_E_CONFLICT] = { 409, "conflict", "CONFLICT" },
    [HTTP_E_TOO_LARGE] = { 413, "too_large", "INVALID_REQUEST" },
    [HTTP_E_UNPROCESSABLE] = { 422, "unprocessable", "INVALID_REQUEST" },
    [HTTP_E_RATE_LIMITED] = { 429, "rate_limited", "RATE_LIMITED" },
    [HTTP_E_UNAVAILABLE] = { 503, "unavailable", "SERVICE_UNAVAILABLE" },
    [HTTP_E_INTERNAL] = { 500, "internal", "INTERNAL_ERROR" },
};

void http_reply(http_resp *rs, int status, json_t *body)
{
    json_decref(rs->body);
    rs->body = body;
    rs->status = status;
    rs->is_error = false;
}

void http_reply_text(http_resp *rs, int status, char *json, size_t len)
{
    json_decref(rs->body);
    rs->body = NULL;
    dm_free(rs->raw);
    rs->raw = json;
    rs->raw_len = len;
    rs->status = status;
    rs->is_error = false;
}

/* Make s valid UTF-8 in place: a sequence cut by truncation at the end is
 * dropped, and every byte that starts no valid sequence becomes '?'.  An
 * error message echoes the client's method, path or field names, and
 * jansson refuses to build a string that is not UTF-8 (the error body
 * would then be empty). */
static void utf8_scrub(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = n > 0;
        for (size_t i = 1; ok && i < n; i++)
            ok = (p[i] & 0xc0) == 0x80;
        if (ok && n > 1) {
            uint32_t cp = c & (0xff >> (n + 1));
            for (size_t i = 1; i < n; i++)
                cp = cp << 6 | (p[i] & 0x3f);
            ok = !(n == 2 && cp < 0x80) && !(n == 3 && cp < 0x800) &&
                 !(n == 4 && cp < 0x10000) && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
        }
        if (ok) {
            p += n;
            continue;
        }
        size_t i = 1;
        while (i < n && (p[i] & 0xc0) == 0x80)
            i++;
        if (n > 1 && i < n && !p[i]) {
            *p = 0; /* a sequence cut off at the end */
            return;
        }
        *p++ = '?';
    }
}

static bool vfail(http_resp *rs, http_err kind, const char *code, const char *field,
                  const char *fmt, va_list ap)
{
    rs->is_error = true;
    rs->err = kind;
    rs->status = err_info[kind].status;
    snprintf(rs->err_code, sizeof rs->err_code, "%s", code ? code : "");
    snprintf(rs->err_field, sizeof rs->err_field, "%s", field ? field : "");
    vsnprintf(rs->err_msg, sizeof rs->err_msg, fmt, ap);
    utf8_scrub(rs->err_msg);
    utf8_scrub(rs->err_field);
    return false;
}

bool http_fail(http_resp *rs, http_err kind, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(rs, kind, NULL, field, fmt, ap);
    va_end(ap);
    return false;
}

bool http_fail_code(http_resp *rs, http_err kind, const char *code, const char *field,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(rs, kind, code, field, fmt, ap);
    va_end(ap);
    return false;
}

bool http_fail_dm(http_resp *rs, int rc, const char *what)
{
    const char *msg = dm_errmsg();
    if (!msg || !*msg)
        msg = dm_strerror(rc);
    http_err kind;
    switch (rc) {
    case DM_EINVAL:
        kind = HTTP_E_BAD_REQUEST;
        break;
    case DM_ENOTFOUND:
        kind = HTTP_E_NOT_FOUND;
        break;
    case DM_EEXISTS:
        kind = HTTP_E_CONFLICT;
        break;
    case DM_ETOOBIG:
        kind = HTTP_E_TOO_LARGE;
        break;
    case DM_EBUSY:
    case DM_ECLOSED:
    case DM_ECANCELED:
        kind = HTTP_E_UNAVAILABLE;
        break;
    default:
        kind = HTTP_E_INTERNAL;
    }
    return http_fail(rs, kind, NULL, "%s: %s", what, msg);
}

void http_header_add(http_resp *rs, const char *name, const char *value)
{
    if (rs->n_headers == sizeof rs->headers / sizeof rs->headers[0])
        return;
    size_t n = strlen(name) + strlen(value) + 3;
    char *h = dm_malloc(n);
    if (!h)
        return;
    snprintf(h, n, "%s: %s", name, value);
    rs->headers[rs->n_headers++] = h;
}

/* The error body in the dialect of the route. */
static json_t *error_body(const http_resp *rs, http_dialect d)
{
    const char *code = rs->err_code[0] ? rs->err_code : NULL;
    switch (d) {
    case HTTP_DELTAMEMORY:
        return json_pack("{s:s, s:s}", "error", rs->err_msg, "code",
                         code ? code : err_info[rs->err].dm);
    case HTTP_MEM0:
        return json_pack("{s:s}", "error", rs->err_msg);
    case HTTP_NATIVE:
    default: {
        json_t *e = json_pack("{s:s, s:s}", "code", code ? code : err_info[rs->err].native,
                              "message", rs->err_msg);
        if (e && rs->err_field[0])
            json_object_set_new(e, "field", json_string(rs->err_field));
        return e ? json_pack("{s:o}", "error", e) : NULL;
    }
    }
}

/* ---------------------------------------------------------- arguments */

/* Percent-decode n bytes of s into a new NUL-terminated string; NULL on a
 * bad escape, a NUL, or invalid UTF-8. */
static char *pct_decode(const char *s, size_t n)
{
    char *o = dm_malloc(n + 1);
    if (!o)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int v = 0;
            for (int k = 1; k <= 2; k++) {
                char h = i + (size_t)k < n ? s[i + (size_t)k] : 0;
                int d = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
                if (d < 0) {
                    dm_free(o);
                    return NULL;
                }
                v = v * 16 + d;
            }
            c = (char)v;
            i += 2;
        }
        if (!c) {
            dm_free(o);
            return NULL;
        }
        o[j++] = c;
    }
    o[j] = 0;
    json_t *t = json_stringn(o, j); /* jansson's UTF-8 check */
    if (!t) {
        dm_free(o);
        return NULL;
    }
    json_decref(t);
    return o;
}

/* What the handler sees, with the connection state behind it. */
typedef struct req_box {
    http_req rq; /* first: a handler's http_req * is the box */
    conn_req *cr;
    struct http_server *s;
} req_box;

static conn_req *req_state(http_req *rq)
{
    return ((req_box *)rq)->cr;
}

static const char *keep(http_req *rq, char *s)
{
    conn_req *cr = req_state(rq);
    if (!s)
        return NULL;
    if (cr->n_allocs == sizeof cr->allocs / sizeof cr->allocs[0]) {
        dm_free(s);
        return NULL;
    }
    cr->allocs[cr->n_allocs++] = s;
    return s;
}

const char *http_query(http_req *rq, const char *name)
{
    const char *v = MHD_lookup_connection_value(rq->_conn, MHD_GET_ARGUMENT_KIND, name);
    if (!v)
        return NULL;
    return keep(rq, pct_decode(v, strlen(v)));
}

bool http_query_int(http_req *rq, http_resp *rs, const char *name, int64_t min, int64_t max,
                    int64_t *out)
{
    const char *v = http_query(rq, name);
    if (!v || !*v)
        return true;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x < min || x > max)
        return http_fail(rs, HTTP_E_BAD_REQUEST, name,
                         "query parameter %s must be an integer in [%lld, %lld], not \"%.40s\"",
                         name, (long long)min, (long long)max, v);
    *out = x;
    return true;
}

bool http_query_bool(http_req *rq, const char *name)
{
    const char *v = http_query(rq, name);
    return v && (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !*v);
}

const char *http_header(http_req *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->_conn, MHD_HEADER_KIND, name);
}

json_t *http_body_object(http_req *rq, http_resp *rs)
{
    if (!rq->body) {
        http_fail(rs, HTTP_E_BAD_REQUEST, NULL, "the request needs a JSON object as its body");
        return NULL;
    }
    if (!json_is_object(rq->body)) {
        http_fail(rs, HTTP_E_BAD_REQUEST, NULL, "the body must be a JSON object");
        return NULL;
    }
    return rq->body;
}

bool http_fields_known(http_req *rq, http_resp *rs, json_t *obj, const char *known)
{
    if (!rq->cfg->is_strict || !json_is_object(obj))
        return true;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        size_t kl = strlen(k);
        const char *p = known;
        bool found = false;
        while (p && *p && !found) {
            const char *e = strchr(p, ' ');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            found = l == kl && !memcmp(p, k, l);
            p = e ? e + 1 : NULL;
        }
        if (!found)
            return http_fail(rs, HTTP_E_UNPROCESSABLE, k, "unknown field \"%s\"", k);
    }
    return true;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* The member, or NULL when absent or null (then a 400 when required). */
static json_t *member(http_resp *rs, json_t *obj, const char *key, bool is_required,
                      bool *ok)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    *ok = true;
    if (!v || json_is_null(v)) {
        if (is_required)
            *ok = http_fail(rs, HTTP_E_BAD_REQUEST, key, "missing field \"%s\"", key);
        return NULL;
    }
    return v;
}

static bool str_member(http_req *rq, http_resp *rs, json_t *obj, const char *key,
                       bool is_required, bool allow_empty, const char **out)
{
    bool ok;
    json_t *v = member(rs, obj, key, is_required, &ok);
    if (!v)
        return ok;
    if (!json_is_string(v))
        return http_fail(rs, HTTP_E_BAD_REQUEST, key, "field \"%s\" must be a string, not %s",
                         key, type_name(v));
    size_t n = json_string_length(v);
    if (!n && !allow_empty)
        return http_fail(rs, HTTP_E_BAD_REQUEST, key, "field \"%s\" must not be empty", key);
    if (n > rq->cfg->max_text_len)
        return http_fail(rs, HTTP_E_TOO_LARGE, key,
                         "field \"%s\" is %zu bytes, over the limit of %zu", key, n,
                         rq->cfg->max_text_len);
    if (memchr(json_string_value(v), 0, n))
        return http_fail(rs, HTTP_E_BAD_REQUEST, key, "field \"%s\" holds a NUL character",
                         key);
    *out = json_string_value(v);
    return true;
}

bool http_str(http_req *rq, http_resp *rs, json_t *obj, const char *key, bool is_required,
              const char **out)
{
    return str_member(rq, rs, obj, key, is_required, false, out);
}

bool http_str_empty(http_req *rq, http_resp *rs, json_t *obj, const char *key,
                    bool is_required, const char **out)
{
    return str_member(rq, rs, obj, key, is_required, true, out);
}

bool http_int(http_req *rq, http_resp *rs, json_t *obj, const char *key, bool is_required,
              int64_t min, int64_t max, int64_t *out)
{
    (void)rq;
    bool ok;
    json_t *v = member(rs, obj, key, is_required, &ok);
    if (!v)
        return ok;
    double d = json_is_integer(v) ? (double)json_integer_value(v)
               : json_is_real(v)  ? json_real_value(v)
                                  : NAN;
    if (json_is_real(v) && d != floor(d))
        d = NAN;
    if (isnan(d))
        return http_fail(rs, HTTP_E_BAD_REQUEST, key, "field \"%s\" must be an integer, not %s",
                         key, json_is_number(v) ? "a fraction" : type_name(v));
    if (d < (double)min || d > (double)max)
        return http_fail(rs, HTTP_E_UNPROCESSABLE, key,
                         "field \"%s\" must be in [%lld, %lld]", key, (long long)min,
                         (long long)max);
    *out = json_is_integer(v) ? json_integer_value(v) : (int64_t)d;
    return true;
}

bool http_num(http_req *rq, http_resp *rs, json_t *obj, const char *key, bool is_required,
              double min, double max, double *out)
{
    (void)rq;
    bool ok;
    json_t *v = member(rs, obj, key, is_required, &ok);
    if (!v)
        return ok;
    if (!json_is_number(v))
        return http_fail(rs, HTTP_E_BAD_REQUEST, key, "field \"%s\" must be a number, not %s",
                         key, type_name(v));
    double d = json_number_value(v);
    if (!(d >= min && d <= max))
        return http_fail(rs, HTTP_E_UNPROCESSABLE, key, "field \"%s\" must be in [%g, %g]",
                         key, min, max);
    *out = d;
    return true;
}

bool http_bool(http_req *rq, http_resp *rs, json_t *obj, const char *key, bool *out)
{
    (void)rq;
    bool ok;
    json_t *v = member(rs, obj, key, false, &ok);
    if (!v)
        return ok;
    if (!json_is_boolean(v))
        return http_fail(rs, HTTP_E_BAD_REQUEST, key, "field \"%s\" must be a boolean, not %s",
                         key, type_name(v));
    *out = json_is_true(v);
    return true;
}

bool http_time(http_req *rq, http_resp *rs, json_t *obj, const char *key, int64_t *out_us)
{
    (void)rq;
    bool ok;
    json_t *v = member(rs, obj, key, false, &ok);
    if (!v)
        return ok;
    if (json_is_number(v)) {
        double s = json_number_value(v);
        if (!(s >= 0 && s < 253402300800.0)) /* before year 10000 */
            return http_fail(rs, HTTP_E_UNPROCESSABLE, key,
                             "field \"%s\" is out of range for seconds since the epoch", key);
        *out_us = (int64_t)(s * 1e6);
        return true;
    }
    if (!json_is_string(v) || dm_time_parse(json_string_value(v), out_us))
        return http_fail(rs, HTTP_E_BAD_REQUEST, key,
                         "field \"%s\" must be an ISO 8601 time such as "
                         "2024-05-08T13:56:00Z, or seconds since the epoch",
                         key);
    return true;
}

bool http_obj(http_req *rq, http_resp *rs, json_t *obj, const char *key, bool is_required,
              json_t **out)
{
    (void)rq;
    bool ok;
    json_t *v = member(rs, obj, key, is_required, &ok);
    if (!v)
        return ok;
    if (!json_is_object(v))
        return http_fail(rs, HTTP_E_BAD_REQUEST, key, "field \"%s\" must be an object, not %s",
                         key, type_name(v));
    *out = v;
    return true;
}

bool http_arr(http_req *rq, http_resp *rs, json_t *obj, const char *key, bool is_required,
              json_t **out)
{
    bool ok;
    json_t *v = member(rs, obj, key, is_required, &ok);
    if (!v)
        return ok;
    if (!json_is_array(v))
        return http_fail(rs, HTTP_E_BAD_REQUEST, key, "field \"%s\" must be an array, not %s",
                         key, type_name(v));
    if (json_array_size(v) > rq->cfg->max_batch)
        return http_fail(rs, HTTP_E_TOO_LARGE, key,
                         "field \"%s\" has %zu items, over the limit of %u", key,
                         json_array_size(v), rq->cfg->max_batch);
    *out = v;
    return true;
}

bool http_id(http_req *rq, http_resp *rs, const char *s, dm_id *out)
{
    (void)rq;
    if (!s || dm_id_parse(s, out))
        return http_fail_code(rs, HTTP_E_NOT_FOUND, "MEMORY_NOT_FOUND", "id",
                              "Memory not found: %.64s", s ? s : "");
    return true;
}

void http_time_str(int64_t us, char out[40])
{
    dm_time_format(us, out);
}


/* ------------------------------------------------------------ routing */

/* A route's pattern against the decoded segments: 1 = match. */
static bool pattern_match(const char *pat, char **segs, size_t n)
{
    size_t i = 0;
    const char *p = pat;
    if (*p == '/')
        p++;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == 3 && !memcmp(p, "{*}", 3))
            return i < n;
        if (i == n)
            return false;
        if (l == 2 && !memcmp(p, "{}", 2)) {
            if (!segs[i][0])
                return false;
        } else if (strlen(segs[i]) != l || memcmp(segs[i], p, l)) {
            return false;
        }
        i++;
        if (!e)
            return i == n;
        p = e + 1;
    }
}

/* ------------------------------------------------------- rate limiting */

/* Take one token from name's bucket; false when it is empty. */
static bool rate_take(http_server *s, const char *name)
{
    double rate = s->cfg.rate_per_s;
    if (rate < 0)
        return true;
    double burst = s->cfg.rate_burst > 0 ? s->cfg.rate_burst : 2 * rate;
    uint64_t h = 1469598103934665603ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    double t = now_s();
    bool ok = true;
    pthread_mutex_lock(&s->rl_mu);
    bucket **slot = &s->rl[h % RL_SLOTS], *b = *slot;
    while (b && strcmp(b->name, name))
        b = b->next;
    if (!b && s->rl_n < RL_MAX_ENTRIES && (b = dm_calloc(1, sizeof *b))) {
        snprintf(b->name, sizeof b->name, "%s", name);
        b->tokens = burst;
        b->last_s = t;
        b->next = *slot;
        *slot = b;
        s->rl_n++;
    }
    if (b) {
        b->tokens = fmin(burst, b->tokens + (t - b->last_s) * rate);
        b->last_s = t;
        if (b->tokens >= 1)
            b->tokens -= 1;
        else
            ok = false;
    }
    pthread_mutex_unlock(&s->rl_mu);
    return ok;
}

/* ------------------------------------------------------------ metrics */

static void observe_into(route_stats *st, int status, double secs)
{
    int cls = status / 100;
    if (cls >= 1 && cls <= 5)
        atomic_fetch_add_explicit(&st->by_class[cls], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < N_BOUNDS && secs > lat_bounds[b])
        b++;
    atomic_fetch_add_explicit(&st->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->sum_us, (unsigned long long)(secs * 1e6),
                              memory_order_relaxed);
}

static void observe(http_server *s, size_t route, int status, double secs)
{
    observe_into(&s->stats[route], status, secs);
}

static http_server *server_of(http_req *rq);

void http_observe_search(http_req *rq, const dm_search_result *res)
{
    http_server *s = server_of(rq);
    for (int i = 0; i < DM_N_STAGES; i++)
        observe_into(&s->stages[i], 200, res->stage_us[i] / 1e6);
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool is_oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        if (b->is_oom)
            return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->is_oom = true;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 8192) + (size_t)n;
        char *np = dm_realloc(b->p, nc);
        if (!np) {
            b->is_oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
}

/* One histogram's lines: name{label="value",le=...}. */
static void histogram_lines(sbuf *b, const char *name, const char *label, const char *value,
                            route_stats *st)
{
    unsigned long long cum = 0;
    for (size_t k = 0; k <= N_BOUNDS; k++)
        cum += atomic_load(&st->buckets[k]);
    if (!cum)
        return;
    cum = 0;
    for (size_t k = 0; k < N_BOUNDS; k++) {
        cum += atomic_load(&st->buckets[k]);
        sb_printf(b, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", name, label, value,
                  lat_bounds[k], cum);
    }
    cum += atomic_load(&st->buckets[N_BOUNDS]);
    sb_printf(b, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", name, label, value, cum);
    sb_printf(b, "%s_sum{%s=\"%s\"} %.6f\n", name, label, value,
              (double)atomic_load(&st->sum_us) / 1e6);
    sb_printf(b, "%s_count{%s=\"%s\"} %llu\n", name, label, value, cum);
}

static void metrics_render(http_server *s, sbuf *b)
{
    sb_printf(b, "# HELP deltamemory_http_requests_total HTTP requests by route and status "
                 "class.\n# TYPE deltamemory_http_requests_total counter\n");
    for (size_t i = 0; i <= s->n_routes; i++) {
        const char *name = i < s->n_routes ? s->routes[i]->name : "unrouted";
        for (int c = 1; c <= 5; c++) {
            unsigned long long v = atomic_load(&s->stats[i].by_class[c]);
            if (v)
                sb_printf(b, "deltamemory_http_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n",
                          name, c, v);
        }
    }
    sb_printf(b, "# HELP deltamemory_http_request_seconds Time from the full request to the "
                 "response, by route.\n# TYPE deltamemory_http_request_seconds histogram\n");
    for (size_t i = 0; i <= s->n_routes; i++)
        histogram_lines(b, "deltamemory_http_request_seconds", "route",
                        i < s->n_routes ? s->routes[i]->name : "unrouted", &s->stats[i]);
    static const char *const stage_names[DM_N_STAGES] = { "query", "candidates", "rank",
                                                          "fetch" };
    sb_printf(b, "# HELP deltamemory_search_stage_seconds Time of each stage of a search "
                 "(docs/retrieval.md).\n# TYPE deltamemory_search_stage_seconds histogram\n");
    for (int i = 0; i < DM_N_STAGES; i++)
        histogram_lines(b, "deltamemory_search_stage_seconds", "stage", stage_names[i],
                        &s->stages[i]);
    sb_printf(b, "# TYPE deltamemory_http_in_flight gauge\ndeltamemory_http_in_flight %d\n",
              atomic_load(&s->in_flight));
    sb_printf(b, "# HELP deltamemory_http_user_wait_seconds How long requests waited for a "
                 "turn of their user.\n# TYPE deltamemory_http_user_wait_seconds histogram\n");
    histogram_lines(b, "deltamemory_http_user_wait_seconds", "queue", "user", &s->user_wait);
    uint64_t f_users = 0, f_waiting = 0;
    fair_stats(s->fair, &f_users, &f_waiting);
    sb_printf(b,
              "# HELP deltamemory_http_user_waiting Requests waiting for a turn of their user "
              "(user_concurrency).\n# TYPE deltamemory_http_user_waiting gauge\n"
              "deltamemory_http_user_waiting %llu\n"
              "# HELP deltamemory_http_user_waits_total Requests that waited for a turn of "
              "their user.\n# TYPE deltamemory_http_user_waits_total counter\n"
              "deltamemory_http_user_waits_total %llu\n",
              (unsigned long long)f_waiting, (unsigned long long)atomic_load(&s->n_parked));
    sb_printf(b,
              "# HELP deltamemory_http_writes_offloaded_total Writes run on the write "
              "threads.\n# TYPE deltamemory_http_writes_offloaded_total counter\n"
              "deltamemory_http_writes_offloaded_total %llu\n",
              (unsigned long long)atomic_load(&s->n_offloaded));
    dm_stats st;
    if (dm_stats_get(s->db, &st) == DM_OK) {
        const struct {
            const char *name, *type, *help;
            uint64_t v;
        } g[] = {
            { "users", "gauge", "users with at least one record", st.n_users },
            { "memories", "gauge", "memories in all states", st.n_memories },
            { "loaded_users", "gauge", "users whose indexes are in memory", st.n_loaded_users },
            { "index_bytes", "gauge", "memory used by the loaded indexes", st.index_bytes },
            { "heap_bytes", "gauge",
              "bytes the engine's allocations hold (indexes, memtables and block cache included)",
              st.heap_bytes },
            { "disk_bytes", "gauge", "bytes of the database's files", st.disk_bytes },
            { "memtable_bytes", "gauge", "bytes in the memtable", st.memtable_bytes },
            { "wal_bytes", "gauge", "bytes of the write-ahead log", st.wal_bytes },
            { "index_pending", "gauge", "vectors not yet linked into the graph index",
              st.index_pending },
            { "extract_queued", "gauge", "turns waiting for extraction", st.extract_queued },
            { "extract_done_total", "counter", "turns extracted since open", st.extract_done },
            { "extract_failed_total", "counter", "extractions that failed since open",
              st.extract_failed },
            { "llm_calls_total", "counter", "chat model requests answered", st.llm_calls },
            { "llm_failures_total", "counter", "chat model requests that failed",
              st.llm_failures },
            { "llm_prompt_tokens_total", "counter", "prompt tokens used",
              st.llm_prompt_tokens },
            { "llm_completion_tokens_total", "counter", "completion tokens used",
              st.llm_completion_tokens },
            { "wal_syncs_total", "counter", "write-ahead log syncs since open", st.wal_syncs },
            { "flushes_total", "counter", "memtables flushed since open", st.flushes },
            { "compactions_total", "counter", "compactions since open", st.compactions },
            { "compaction_read_bytes_total", "counter", "bytes read by compactions",
              st.compact_bytes_read },
            { "compaction_written_bytes_total", "counter", "bytes written by compactions",
              st.compact_bytes_written },
            { "l0_files", "gauge", "SSTables in level 0", st.l0_files },
            { "background_busy", "gauge", "1 while a flush or compaction runs or is due",
              st.background_busy },
            { "write_stalls_total", "counter",
              "times writers waited for a flush or a level-0 compaction", st.write_stalls },
            { "write_stall_microseconds_total", "counter", "time writers waited, in all",
              st.write_stall_us },
            { "block_cache_bytes", "gauge", "decoded table blocks held in the block cache",
              st.block_cache_bytes },
            { "table_bytes", "gauge",
              "heap held by the open tables: their decoded index blocks and filters",
              st.table_bytes },
            { "block_cache_hits_total", "counter",
              "compressed table block reads the block cache answered", st.block_cache_hits },
            { "block_cache_misses_total", "counter",
              "compressed table block reads decoded from the table file", st.block_cache_misses },
            { "refreshes_total", "counter",
              "salience refreshes written (records of recalled memories rewritten)",
              st.refreshes },
            { "refreshes_dropped_total", "counter", "salience refreshes dropped by a full queue",
              st.refreshes_dropped },
            { "refresh_queued", "gauge", "salience refreshes waiting to be written",
              st.refresh_queued },
            { "user_unloads_total", "counter",
              "users whose indexes left memory (idle, or past the index memory bound)",
              st.n_unloads },
            { "map_drops_total", "counter",
              "passes that gave back mapped table pages (past the map memory bound)",
              st.n_map_drops },
        };
        for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
            sb_printf(b, "# HELP deltamemory_%s %s.\n# TYPE deltamemory_%s %s\ndeltamemory_%s %llu\n",
                      g[i].name, g[i].help, g[i].name, g[i].type, g[i].name,
                      (unsigned long long)g[i].v);
        static const uint32_t sync_le[DM_WAL_SYNC_BUCKETS - 1] = DM_WAL_SYNC_BOUNDS_US;
        sb_printf(b, "# HELP deltamemory_wal_sync_seconds How long each write-ahead log sync "
                     "took.\n# TYPE deltamemory_wal_sync_seconds histogram\n");
        unsigned long long cum = 0;
        for (int k = 0; k < DM_WAL_SYNC_BUCKETS; k++) {
            cum += st.wal_sync_buckets[k];
            if (k < DM_WAL_SYNC_BUCKETS - 1)
                sb_printf(b, "deltamemory_wal_sync_seconds_bucket{le=\"%g\"} %llu\n",
                          sync_le[k] / 1e6, cum);
            else
                sb_printf(b, "deltamemory_wal_sync_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
        }
        sb_printf(b, "deltamemory_wal_sync_seconds_sum %.6f\ndeltamemory_wal_sync_seconds_count %llu\n",
                  (double)st.wal_sync_us / 1e6, cum);
    }
}

/* ---------------------------------------------------- built-in routes */

static void h_metrics(http_req *rq, http_resp *rs)
{
    sbuf b = { 0 };
    metrics_render(server_of(rq), &b);
    if (b.is_oom) {
        dm_free(b.p);
        http_fail(rs, HTTP_E_INTERNAL, NULL, "out of memory");
        return;
    }
    rs->raw = b.p;
    rs->raw_len = b.len;
    rs->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void h_health(http_req *rq, http_resp *rs)
{
    /* Cheap on purpose (probes come often): the database's figures are in
     * /metrics. */
    http_server *s = server_of(rq);
    bool ready = !atomic_load(&s->draining);
    json_t *o = json_pack("{s:b, s:s, s:s, s:b, s:b}", "healthy", ready, "version",
                          dm_version(), "status", ready ? "ok" : "unavailable", "live", true,
                          "ready", ready);
    http_reply(rs, ready ? 200 : 503, o);
}

static const http_route core_routes[] = {
    { "GET", "/v1/health", HTTP_DELTAMEMORY, h_health, "health", true, false },
    { "GET", "/health", HTTP_DELTAMEMORY, h_health, "health", true, false },
    { "GET", "/metrics", HTTP_NATIVE, h_metrics, "metrics", true, false },
    { 0 },
};

/* ------------------------------------------------------------ request */

static http_server *server_of(http_req *rq)
{
    return ((req_box *)rq)->s;
}

static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

/* Deepest nesting of arrays and objects in a JSON text (strings skipped). */
static uint32_t json_depth(const char *p, size_t n)
{
    uint32_t d = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++d > max)
                max = d;
        } else if ((c == ']' || c == '}') && d) {
            d--;
        }
    }
    return max;
}

static const char *client_addr(struct MHD_Connection *c, char *buf, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    buf[0] = 0;
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)cap);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
                      (socklen_t)cap);
    }
    return buf;
}

/* The secret of the request's API key, or NULL. */
static const char *request_key(struct MHD_Connection *c)
{
    const char *k = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
    if (k && *k)
        return k;
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!a)
        return NULL;
    if (!strncasecmp(a, "Bearer ", 7))
        return a + 7;
    if (!strncasecmp(a, "Token ", 6))
        return a + 6;
    return NULL;
}

typedef struct stream_box {
    http_stream_fn fn;
    void *cls;
    void (*free_fn)(void *);
} stream_box;

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream_box *b = cls;
    long n = b->fn(b->cls, buf, max);
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    stream_box *b = cls;
    if (b->free_fn)
        b->free_fn(b->cls);
    dm_free(b);
}

static void access_log(http_server *s, const char *method, const char *path,
                       const char *route, int status, double secs, const char *who,
                       size_t in_len, size_t out_len)
{
    if (!s->log_fp)
        return;
    char ts[40];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    dm_time_format((int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000, ts);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:f, s:s, s:I, s:I}", "time", ts,
                          "method", method, "path", path, "route", route, "status", status,
                          "ms", secs * 1e3, "who", who, "bytes_in", (json_int_t)in_len,
                          "bytes_out", (json_int_t)out_len);
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!line)
        return;
    pthread_mutex_lock(&s->log_mu);
    fputs(line, s->log_fp);
    fputc('\n', s->log_fp);
    fflush(s->log_fp);
    pthread_mutex_unlock(&s->log_mu);
    free(line);
}

static enum MHD_Result send_response(struct MHD_Connection *c, http_resp *rs,
                                     http_dialect d, size_t *out_len)
{
    struct MHD_Response *r = NULL;
    int status = rs->status ? rs->status : 200;
    *out_len = 0;
    if (rs->is_error) {
        json_decref(rs->body);
        rs->body = error_body(rs, d);
        status = rs->status;
        dm_free(rs->raw); /* an answer written before the failure */
        rs->raw = NULL;
        rs->content_type = NULL;
    }
    if (rs->stream) {
        stream_box *b = dm_malloc(sizeof *b);
        if (b) {
            *b = (stream_box){ rs->stream, rs->stream_cls, rs->stream_free };
            r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_reader, b,
                                                  stream_free);
            if (!r)
                stream_free(b);
        } else if (rs->stream_free) {
            rs->stream_free(rs->stream_cls);
        }
        rs->stream = NULL;
    } else if (rs->raw) {
        r = MHD_create_response_from_buffer_with_free_callback(rs->raw_len, rs->raw, dm_free);
        if (r)
            rs->raw = NULL; /* the response frees it */
        *out_len = rs->raw_len;
    } else {
        char *txt = rs->body ? mjson_dumps(rs->body) : NULL;
        if (!txt)
            txt = strdup("{}");
        if (txt) {
            *out_len = strlen(txt);
            r = MHD_create_response_from_buffer(*out_len, txt, MHD_RESPMEM_MUST_FREE);
            if (!r)
                free(txt);
        }
    }
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            rs->content_type ? rs->content_type : "application/json");
    for (size_t i = 0; i < rs->n_headers; i++) {
        char *h = rs->headers[i];
        char *colon = strchr(h, ':');
        if (colon) {
            *colon = 0;
            MHD_add_response_header(r, h, colon + 2);
        }
    }
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static void resp_fini(http_resp *rs)
{
    json_decref(rs->body);
    dm_free(rs->raw);
    for (size_t i = 0; i < rs->n_headers; i++)
        dm_free(rs->headers[i]);
    if (rs->stream && rs->stream_free)
        rs->stream_free(rs->stream_cls);
}

/* Split path into decoded segments; false when a segment does not decode. */
static bool split_path(const char *path, char **segs, size_t *n, conn_req *cr)
{
    *n = 0;
    const char *p = path;
    if (*p == '/')
        p++;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (*n == MAX_SEGS || cr->n_allocs == sizeof cr->allocs / sizeof cr->allocs[0])
            return false;
        char *d = pct_decode(p, l);
        if (!d)
            return false;
        cr->allocs[cr->n_allocs++] = d;
        segs[(*n)++] = d;
        if (!e)
            return true;
        p = e + 1;
    }
}

/* ------------------------------------------------- per-user admission */

/* The user request rq is about, as "tenant\x1fuser" in out: the path's
 * /v1/users/{id}, else the body's user_id, filters.user_id or collection,
 * else the query's user_id or collection.  False when it names none (such
 * a request is not bounded per user). */
static bool user_key(const http_req *rq, struct MHD_Connection *c, char *out, size_t cap,
                     size_t *len)
{
    const char *u = NULL;
    if (rq->n_segs >= 3 && !strcmp(rq->segs[0], "v1") && !strcmp(rq->segs[1], "users"))
        u = rq->segs[2];
    if (!u && json_is_object(rq->body)) {
        json_t *f = json_object_get(rq->body, "filters");
        json_t *v = json_object_get(rq->body, "user_id");
        if (!json_is_string(v) && json_is_object(f))
            v = json_object_get(f, "user_id");
        if (!json_is_string(v))
            v = json_object_get(rq->body, "collection");
        u = json_string_value(v);
    }
    if (!u)
        u = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "user_id");
    if (!u)
        u = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "collection");
    if (!u || !*u)
        return false;
    int n = snprintf(out, cap, "%s\x1f%s", rq->tenant, u);
    if (n < 0)
        return false;
    *len = (size_t)n < cap ? (size_t)n : cap - 1; /* a long id: its prefix */
    return true;
}

/* Give waiter w the slot: resume its connection, or, when it has not
 * suspended yet, tell it to run at once. */
static void hand_over(http_server *s, fair_waiter *w)
{
    conn_req *cr = (conn_req *)(void *)((char *)w - offsetof(conn_req, fw));
    pthread_mutex_lock(&s->park_mu);
    bool is_suspended = cr->park == PARK_SUSPENDED;
    struct MHD_Connection *conn = cr->conn;
    cr->park = PARK_HANDED;
    /* Once resumed, the request may run and end on its own thread, and cr
     * be freed: it is not touched after this. */
    if (is_suspended)
        MHD_resume_connection(conn);
    pthread_mutex_unlock(&s->park_mu);
}

/*
 * Ask for a slot of rq's user (fair.h).  True when the request must wait:
 * its connection is suspended and the handler is called again, with
 * cr->fu set, once a request of the same user ends.  False when it may
 * run now (or names no user).
 */
static bool wait_turn(http_server *s, struct MHD_Connection *c, const http_req *rq,
                      conn_req *cr)
{
    char key[HTTP_TENANT_CAP + 256];
    size_t kl;
    bool admitted = true;
    if (!user_key(rq, c, key, sizeof key, &kl))
        return false;
    cr->conn = c;
    cr->park = PARK_NONE;
    cr->fu = fair_enter(s->fair, key, kl, &cr->fw, &admitted);
    if (!cr->fu || admitted)
        return false;
    bool parked = false;
    pthread_mutex_lock(&s->park_mu);
    if (cr->park != PARK_HANDED) {
        MHD_suspend_connection(c);
        cr->park = PARK_SUSPENDED;
        parked = true;
    }
    pthread_mutex_unlock(&s->park_mu);
    if (!parked)
        return false; /* handed the slot already */
    atomic_fetch_add_explicit(&s->n_parked, 1, memory_order_relaxed);
    clock_gettime(CLOCK_MONOTONIC, &cr->park_t0);
    cr->is_again = true;
    for (size_t i = 0; i < cr->n_allocs; i++)
        dm_free(cr->allocs[i]);
    cr->n_allocs = 0;
    return true;
}

/* The request of cr ends: its slot goes to its user's next waiter. */
static void leave_turn(http_server *s, conn_req *cr)
{
    if (!cr->fu)
        return;
    fair_waiter *w = fair_leave(s->fair, cr->fu);
    cr->fu = NULL;
    if (w)
        hand_over(s, w);
}

/* ------------------------------------------------------ write threads */

/*
 * A write (a route with is_write) does not run on the request thread that
 * read it: its answer waits for a WAL sync, which on a busy disk can take
 * a long time, and a request thread held there cannot serve searches.  Its
 * connection is suspended, the request goes to the write threads' queue,
 * and a write thread runs the handler and resumes the connection; the
 * request thread that then picks the connection up sends the answer
 * (handle, finish).  Everything the handler and the answer need is copied
 * into the job, since the request thread's stack is gone by then.
 */
typedef struct offload_job {
    req_box box; /* first: the handler's http_req */
    http_resp rs;
    struct offload_job *next;
    size_t route;
    http_dialect d;
    bool is_done; /* under park_mu: the handler has run */
    char *segs[MAX_SEGS];
    char tenant[HTTP_TENANT_CAP], key_id[HTTP_KEY_ID_LEN + 1], who[72];
} offload_job;

static void job_free(offload_job *j)
{
    if (!j)
        return;
    json_decref(j->box.rq.body);
    resp_fini(&j->rs);
    dm_free(j);
}

static void *writer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "dm-writer");
    http_server *s = arg;
    pthread_mutex_lock(&s->wq_mu);
    for (;;) {
        while (!s->wq_head && !s->wq_stop)
            pthread_cond_wait(&s->wq_cv, &s->wq_mu);
        offload_job *j = s->wq_head;
        if (!j)
            break; /* stopping, and nothing is left */
        s->wq_head = j->next;
        if (!s->wq_head)
            s->wq_tail = NULL;
        pthread_mutex_unlock(&s->wq_mu);
        s->routes[j->route]->fn(&j->box.rq, &j->rs);
        /* Once resumed, the request may end on its own thread and free the
         * job: it is not touched after this. */
        pthread_mutex_lock(&s->park_mu);
        struct MHD_Connection *c = j->box.cr->conn;
        j->is_done = true;
        MHD_resume_connection(c);
        pthread_mutex_unlock(&s->park_mu);
        pthread_mutex_lock(&s->wq_mu);
    }
    pthread_mutex_unlock(&s->wq_mu);
    return NULL;
}

/* Hand the request in box to the write threads.  False when it must run
 * here after all (no memory, or the threads are stopping). */
static bool offload(http_server *s, struct MHD_Connection *c, const req_box *box, size_t route,
                    http_dialect d, const char *who)
{
    offload_job *j = dm_calloc(1, sizeof *j);
    if (!j)
        return false;
    j->box = *box;
    http_req *rq = &j->box.rq;
    memcpy(j->segs, rq->segs, sizeof *rq->segs * rq->n_segs);
    rq->segs = j->segs;
    snprintf(j->tenant, sizeof j->tenant, "%s", rq->tenant);
    rq->tenant = j->tenant;
    if (rq->key_id) {
        snprintf(j->key_id, sizeof j->key_id, "%s", rq->key_id);
        rq->key_id = j->key_id;
    }
    snprintf(j->who, sizeof j->who, "%s", who);
    j->route = route;
    j->d = d;
    conn_req *cr = box->cr;
    pthread_mutex_lock(&s->wq_mu);
    if (s->wq_stop) {
        pthread_mutex_unlock(&s->wq_mu);
        dm_free(j);
        return false;
    }
    cr->conn = c;
    cr->job = j;
    MHD_suspend_connection(c);
    if (s->wq_tail)
        s->wq_tail->next = j;
    else
        s->wq_head = j;
    s->wq_tail = j;
    pthread_cond_signal(&s->wq_cv);
    pthread_mutex_unlock(&s->wq_mu);
    atomic_fetch_add_explicit(&s->n_offloaded, 1, memory_order_relaxed);
    return true;
}

/* Let the write threads finish what is queued (resuming its connections),
 * then end them. */
static void writers_stop(http_server *s)
{
    if (!s->writers)
        return;
    pthread_mutex_lock(&s->wq_mu);
    s->wq_stop = true;
    pthread_cond_broadcast(&s->wq_cv);
    pthread_mutex_unlock(&s->wq_mu);
    for (unsigned i = 0; i < s->n_writers; i++)
        pthread_join(s->writers[i], NULL);
    dm_free(s->writers);
    s->writers = NULL;
    s->n_writers = 0;
}

/* The answer of a request: sent, counted, logged; its user's slot passed
 * on.  Frees the parsed body and the response. */
static enum MHD_Result finish(http_server *s, struct MHD_Connection *c, const char *url,
                              const char *method, conn_req *cr, http_req *rq, http_resp *rs,
                              http_dialect d, size_t route, const char *who_in)
{
    char who[72], addr[64];
    snprintf(who, sizeof who, "%s", who_in);
    size_t out_len = 0;
    enum MHD_Result ret = send_response(c, rs, d, &out_len);
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - cr->t0.tv_sec) + (double)(t1.tv_nsec - cr->t0.tv_nsec) / 1e9;
    int status = rs->status ? rs->status : 200;
    observe(s, route, status, secs);
    if (!who[0])
        snprintf(who, sizeof who, "addr:%s", client_addr(c, addr, sizeof addr));
    access_log(s, method, url, route < s->n_routes ? s->routes[route]->name : "unrouted",
               status, secs, who, cr->body_len, out_len);
    json_decref(rq->body);
    rq->body = NULL;
    resp_fini(rs);
    leave_turn(s, cr);
    atomic_fetch_sub(&s->in_flight, 1);
    cr->is_counted = false;
    return ret;
}

static enum MHD_Result handle(http_server *s, struct MHD_Connection *c, const char *url,
                              const char *method, conn_req *cr)
{
    if (cr->job) { /* back from a write thread */
        offload_job *j = cr->job;
        pthread_mutex_lock(&s->park_mu);
        bool done = j->is_done;
        pthread_mutex_unlock(&s->park_mu);
        if (!done)
            return MHD_YES;
        cr->job = NULL;
        enum MHD_Result ret =
            finish(s, c, url, method, cr, &j->box.rq, &j->rs, j->d, j->route, j->who);
        dm_free(j);
        return ret;
    }
    req_box box = { .cr = cr, .s = s };
    http_req *rq = &box.rq;
    http_resp rs = { 0 };
    char *segs[MAX_SEGS];
    size_t n_segs = 0, route = s->n_routes;
    http_dialect d = HTTP_NATIVE;
    char who[72] = "", addr[64];
    char tenant[HTTP_TENANT_CAP], key_id[HTTP_KEY_ID_LEN + 1];
    rq->db = s->db;
    rq->cfg = &s->cfg;
    rq->method = method;
    rq->path = url;
    rq->_conn = c;
    rq->tenant = DM_DEFAULT_TENANT;
    if (!cr->is_counted) {
        atomic_fetch_add(&s->in_flight, 1);
        cr->is_counted = true;
    }
    if (!cr->is_again)
        atomic_fetch_add_explicit(&s->n_requests, 1, memory_order_relaxed);
    if (cr->park_t0.tv_sec) { /* back from its user's queue */
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        double w = (double)(t.tv_sec - cr->park_t0.tv_sec) +
                   (double)(t.tv_nsec - cr->park_t0.tv_nsec) / 1e9;
        observe_into(&s->user_wait, 200, w);
        unsigned long long us = (unsigned long long)(w * 1e6),
                           m = atomic_load(&s->user_wait_max_us);
        while (us > m && !atomic_compare_exchange_weak(&s->user_wait_max_us, &m, us))
            ;
        cr->park_t0.tv_sec = 0;
    }

    if (strlen(url) > 2048 || !split_path(url, segs, &n_segs, cr)) {
        http_fail(&rs, HTTP_E_BAD_REQUEST, NULL,
                  "the path is not valid: a bad %%-escape, a NUL, invalid UTF-8 or too long");
        goto done;
    }
    rq->segs = segs;
    rq->n_segs = n_segs;
    bool path_known = false;
    for (size_t i = 0; i < s->n_routes; i++) {
        const http_route *r = s->routes[i];
        if (!pattern_match(r->pattern, segs, n_segs))
            continue;
        path_known = true;
        d = r->dialect;
        if (!strcmp(r->method, "*") || !strcmp(r->method, method)) {
            route = i;
            break;
        }
    }
    if (route == s->n_routes) {
        if (path_known)
            http_fail(&rs, HTTP_E_METHOD, NULL, "method %s is not allowed on %s", method, url);
        else
            http_fail(&rs, HTTP_E_NOT_FOUND, NULL, "no route %s %s", method, url);
        goto done;
    }
    const http_route *r = s->routes[route];
    if (atomic_load(&s->draining)) {
        http_fail(&rs, HTTP_E_UNAVAILABLE, NULL, "the server is shutting down");
        goto done;
    }
    /* The key names the tenant; without keys everything is the default
     * tenant and a key, if sent, is ignored. */
    if (http_keys_any(s->keys)) {
        const char *k = request_key(c);
        if (k && http_keys_check(s->keys, k, tenant, key_id)) {
            rq->tenant = tenant;
            rq->key_id = key_id;
            snprintf(who, sizeof who, "key:%s", key_id);
        } else if (!r->is_public) {
            http_fail_code(&rs, HTTP_E_UNAUTHORIZED, k ? "INVALID_API_KEY" : "MISSING_API_KEY",
                           NULL,
                           k ? "the API key is not valid"
                             : "an API key is required (X-API-Key, or Authorization: Bearer)");
            goto done;
        }
    }
    if (!who[0])
        snprintf(who, sizeof who, "addr:%s", client_addr(c, addr, sizeof addr));
    if (!r->is_public && !cr->is_again && !rate_take(s, who)) {
        http_fail(&rs, HTTP_E_RATE_LIMITED, NULL,
                  "too many requests: the limit is %g per second", s->cfg.rate_per_s);
        http_header_add(&rs, "Retry-After", "1");
        goto done;
    }
    if (cr->is_too_large) {
        http_fail(&rs, HTTP_E_TOO_LARGE, NULL, "the body is over the limit of %zu bytes",
                  s->cfg.max_body_len);
        goto done;
    }
    rq->raw_body = cr->body ? cr->body : "";
    rq->body_len = cr->body_len;
    if (cr->body_len) {
        uint32_t depth = json_depth(cr->body, cr->body_len);
        if (depth > s->cfg.max_depth) {
            http_fail(&rs, HTTP_E_BAD_REQUEST, NULL,
                      "the body nests %u levels deep, over the limit of %u", depth,
                      s->cfg.max_depth);
            goto done;
        }
        json_error_t je;
        rq->body = json_loadb(cr->body, cr->body_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                              &je);
        if (!rq->body) {
            http_fail(&rs, HTTP_E_BAD_REQUEST, NULL, "malformed JSON at line %d column %d: %s",
                      je.line, je.column, je.text);
            goto done;
        }
    }
    if (!r->is_public && !cr->fu && s->fair && wait_turn(s, c, rq, cr)) {
        json_decref(rq->body);
        return MHD_YES; /* parked: called again when its turn comes */
    }
    if (r->is_write && s->writers && offload(s, c, &box, route, d, who))
        return MHD_YES; /* called again once a write thread has run it */
    r->fn(rq, &rs);

done:
    return finish(s, c, url, method, cr, rq, &rs, d, route, who);
}

/* The deadline of connection c's headers. */
static void watch_set(http_server *s, struct MHD_Connection *c, double deadline_s)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_watch *w = ci ? ci->socket_context : NULL;
    if (!w)
        return;
    pthread_mutex_lock(&s->watch_mu);
    w->deadline_s = deadline_s;
    pthread_mutex_unlock(&s->watch_mu);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    http_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_watch *w = ci ? dm_calloc(1, sizeof *w) : NULL;
        *socket_context = w;
        if (!w)
            return;
        w->fd = ci->connect_fd;
        w->deadline_s = now_s() + s->cfg.timeout_s;
        pthread_mutex_lock(&s->watch_mu);
        w->next = s->watch;
        if (w->next)
            w->next->prev = w;
        s->watch = w;
        pthread_mutex_unlock(&s->watch_mu);
        return;
    }
    /* MHD_CONNECTION_NOTIFY_CLOSED comes before the socket is closed, so
     * the watchdog never shuts down a descriptor that was reused. */
    conn_watch *w = *socket_context;
    if (!w)
        return;
    pthread_mutex_lock(&s->watch_mu);
    if (w->prev)
        w->prev->next = w->next;
    else
        s->watch = w->next;
    if (w->next)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&s->watch_mu);
    dm_free(w);
    *socket_context = NULL;
}

static void *watchdog_main(void *arg)
{
    pthread_setname_np(pthread_self(), "dm-watchdog");
    http_server *s = arg;
    while (!atomic_load(&s->stop_watch)) {
        usleep(250 * 1000);
        double t = now_s();
        pthread_mutex_lock(&s->watch_mu);
        for (conn_watch *w = s->watch; w; w = w->next)
            if (t > w->deadline_s) {
                shutdown(w->fd, SHUT_RDWR);
                w->deadline_s = INFINITY;
            }
        pthread_mutex_unlock(&s->watch_mu);
    }
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    http_server *s = cls;
    conn_req *cr = *con_cls;
    if (!cr) {
        cr = dm_calloc(1, sizeof *cr);
        if (!cr)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &cr->t0);
        *con_cls = cr;
        watch_set(s, c, INFINITY);
        /* A declared length over the limit is refused before its body is
         * read; the connection is then closed by libmicrohttpd. */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->cfg.max_body_len)
            cr->is_too_large = true;
        if (!cr->is_too_large)
            return MHD_YES;
        return handle(s, c, url, method, cr);
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (cr->is_too_large || cr->body_len + n > s->cfg.max_body_len) {
            cr->is_too_large = true;
            dm_free(cr->body);
            cr->body = NULL;
            cr->body_len = cr->body_cap = 0;
            return MHD_YES;
        }
        if (cr->body_len + n + 1 > cr->body_cap) {
            size_t nc = cr->body_cap ? cr->body_cap : 4096;
            while (nc < cr->body_len + n + 1)
                nc *= 2;
            char *nb = dm_realloc(cr->body, nc);
            if (!nb)
                return MHD_NO;
            cr->body = nb;
            cr->body_cap = nc;
        }
        memcpy(cr->body + cr->body_len, upload_data, n);
        cr->body_len += n;
        cr->body[cr->body_len] = 0;
        return MHD_YES;
    }
    return handle(s, c, url, method, cr);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    http_server *s = cls;
    /* The next request on a kept-alive connection gets its own deadline. */
    watch_set(s, c, now_s() + s->cfg.timeout_s);
    conn_req *cr = *con_cls;
    if (!cr)
        return;
    /* Ended while it waited for its user (the server stops), or after it
     * was handed a slot it did not use (the client went away). */
    if (cr->fu && fair_cancel(s->fair, cr->fu, &cr->fw))
        cr->fu = NULL;
    /* A write that ran but whose answer was never sent (the daemon
     * stopped right after its connection was resumed).  One still running
     * cannot end here: its connection is suspended until it is done. */
    job_free(cr->job);
    cr->job = NULL;
    leave_turn(s, cr);
    if (cr->is_counted)
        atomic_fetch_sub(&s->in_flight, 1);
    for (size_t i = 0; i < cr->n_allocs; i++)
        dm_free(cr->allocs[i]);
    dm_free(cr->body);
    dm_free(cr);
    *con_cls = NULL;
}

/* ---------------------------------------------------------- lifecycle */

void http_config_init(http_config *c)
{
    memset(c, 0, sizeof *c);
    c->port = DEF_PORT;
}

static char *dup_or_null(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = dm_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static bool is_loopback(const char *host)
{
    return !strcmp(host, "127.0.0.1") || !strcmp(host, "::1") || !strcmp(host, "localhost") ||
           !strncmp(host, "127.", 4);
}

int http_start(dm_db *db, const http_config *c, http_server **out)
{
    *out = NULL;
    http_server *s = dm_calloc(1, sizeof *s);
    if (!s)
        return err_set_msg(DM_ENOMEM, "out of memory");
    int rc = DM_OK;
    s->db = db;
    s->cfg = *c;
    http_config *k = &s->cfg;
    if (!k->host)
        k->host = "127.0.0.1";
    if (!k->n_threads) {
        /* 12 per core.  Chosen when an add held its request thread
         * through the WAL sync (at 4 per core, half the pool sat in those
         * waits: bench_server 6,100 -> 8,000 requests/s on 2 cores).
         * Writes now run on the write threads; a search still waits for
         * its user's lock while that user's add syncs.  8 threads instead
         * of 24 changed neither CPU nor p99 at 10,000 requests/s (five
         * interleaved pairs), so the count stayed. */
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        k->n_threads = nc > 0 ? (unsigned)nc * 12 : 16;
        if (k->n_threads < 16)
            k->n_threads = 16;
    }
    if (!k->n_write_threads) {
        /* They mostly wait for WAL syncs, and the writes in progress at
         * once make one group commit: with 16, under a closed loop of 20 %
         * adds the adds queued for a write thread (p50 280 ms, and a
         * hammered user's requests, which hold its slot meanwhile, timed
         * out); with 64, 91 ms and none (bench_server, 2 cores). */
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        k->n_write_threads = nc > 0 ? (unsigned)nc * 32 : 64;
        if (k->n_write_threads < 64)
            k->n_write_threads = 64;
    }
    if (!k->max_connections)
        k->max_connections = DEF_MAX_CONN;
    if (!k->timeout_s)
        k->timeout_s = DEF_TIMEOUT_S;
    if (!k->max_body_len)
        k->max_body_len = DEF_MAX_BODY;
    if (!k->max_text_len)
        k->max_text_len = DEF_MAX_TEXT;
    if (!k->max_batch)
        k->max_batch = DEF_MAX_BATCH;
    if (!k->max_top_k)
        k->max_top_k = DEF_MAX_TOP_K;
    if (!k->max_depth)
        k->max_depth = DEF_MAX_DEPTH;
    if (k->rate_per_s == 0)
        k->rate_per_s = DEF_RATE;
    if (!k->user_concurrency) {
        /* Half the cores: a user whose requests follow each other without
         * pause keeps its slots' threads running, so with two slots on
         * two cores one user could take the whole machine from the
         * others (bench_server --rate 1000 --hammer: the others' p99 rose
         * up to 3.4x with 2 slots, 1.3-1.8x with 1). */
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        k->user_concurrency = nc >= 4 ? (unsigned)nc / 2 : 1;
    }
    s->host = dup_or_null(k->host);
    s->access_log = dup_or_null(c->access_log);
    s->data_dir = dup_or_null(c->data_dir);
    s->llm_url = dup_or_null(c->llm_url);
    k->host = s->host;
    k->access_log = s->access_log;
    k->data_dir = s->data_dir;
    k->llm_url = s->llm_url;
    pthread_mutex_init(&s->rl_mu, NULL);
    pthread_mutex_init(&s->log_mu, NULL);
    pthread_mutex_init(&s->watch_mu, NULL);
    pthread_mutex_init(&s->park_mu, NULL);
    pthread_mutex_init(&s->wq_mu, NULL);
    pthread_cond_init(&s->wq_cv, NULL);
    if (!(s->fair = fair_new(k->user_concurrency))) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto fail;
    }
    if (!s->host) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto fail;
    }
    if (s->data_dir && (rc = http_keys_open(s->data_dir, &s->keys)))
        goto fail;
    if (!http_keys_any(s->keys) && !k->is_open && !is_loopback(s->host)) {
        rc = err_set_msg(DM_EINVAL,
                         "no API key is configured, so the server listens on loopback only "
                         "(not %s): create a key with `deltamemory keys create`, or pass "
                         "--open",
                         s->host);
        goto fail;
    }
    if (s->access_log) {
        s->log_fp = !strcmp(s->access_log, "-") ? stderr : fopen(s->access_log, "a");
        if (!s->log_fp) {
            rc = err_set_msg(DM_EIO, "cannot open the access log %s: %s", s->access_log,
                             strerror(errno));
            goto fail;
        }
    }
    /* The route table: the built-in routes, then each dialect's. */
    const http_route *const tables[] = { core_routes, http_routes_native, http_routes_dm,
                                         http_routes_mem0, http_routes_mcp };
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const http_route *r = tables[t]; r->pattern; r++)
            s->n_routes++;
    s->routes = dm_calloc(s->n_routes ? s->n_routes : 1, sizeof *s->routes);
    s->stats = dm_calloc(s->n_routes + 1, sizeof *s->stats);
    if (!s->routes || !s->stats) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto fail;
    }
    size_t i = 0;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const http_route *r = tables[t]; r->pattern; r++)
            s->routes[i++] = r;

    s->writers = dm_calloc(k->n_write_threads, sizeof *s->writers);
    if (!s->writers) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto fail;
    }
    for (; s->n_writers < k->n_write_threads; s->n_writers++)
        if (pthread_create(&s->writers[s->n_writers], NULL, writer_main, s) != 0) {
            rc = err_set_msg(DM_ENOMEM, "cannot start the write threads");
            goto fail;
        }

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    const char *host = !strcmp(s->host, "localhost") ? "127.0.0.1" : s->host;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(k->port);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(k->port);
        flags |= MHD_USE_IPv6;
    } else {
        rc = err_set_msg(DM_EINVAL, "listen address \"%s\" is not an IPv4 or IPv6 address",
                         s->host);
        goto fail;
    }
    s->mhd = MHD_start_daemon(
        flags, k->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, k->n_threads, MHD_OPTION_CONNECTION_LIMIT,
        k->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, k->timeout_s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, s, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape,
        s, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, MHD_OPTION_END);
    if (!s->mhd) {
        rc = err_set_msg(DM_EIO, "cannot listen on %s:%u (in use, or not permitted)", s->host,
                         k->port);
        goto fail;
    }
    if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0) {
        rc = err_set_msg(DM_ENOMEM, "cannot start the connection watchdog");
        goto fail;
    }
    s->has_watchdog = true;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : k->port;
    *out = s;
    return DM_OK;

fail:
    http_stop(s, 0);
    return rc;
}

void http_user_waits(http_server *s, uint64_t *n, double *max_s)
{
    *n = atomic_load(&s->n_parked);
    *max_s = (double)atomic_load(&s->user_wait_max_us) / 1e6;
}

uint16_t http_port(const http_server *s)
{
    return s->port;
}

void http_stop(http_server *s, unsigned drain_ms)
{
    if (!s)
        return;
    atomic_store(&s->draining, true);
    if (s->has_watchdog) {
        atomic_store(&s->stop_watch, true);
        pthread_join(s->watchdog, NULL);
    }
    if (s->mhd) {
        MHD_socket ls = MHD_quiesce_daemon(s->mhd);
        if (ls != MHD_INVALID_SOCKET)
            close(ls);
        double end = now_s() + drain_ms / 1e3;
        while (atomic_load(&s->in_flight) > 0 && now_s() < end)
            usleep(2000);
        /* libmicrohttpd must not stop with a connection suspended: what
         * still waits for its user runs now, and is refused (draining). */
        for (fair_waiter *w; s->fair && (w = fair_pop_any(s->fair));)
            hand_over(s, w);
        /* Nor with a write in progress: it finishes, and its connection is
         * resumed (then closed by the stop, if the answer was not sent). */
        writers_stop(s);
        MHD_stop_daemon(s->mhd);
    }
    writers_stop(s);
    pthread_mutex_destroy(&s->wq_mu);
    pthread_cond_destroy(&s->wq_cv);
    for (size_t i = 0; i < RL_SLOTS; i++)
        for (bucket *b = s->rl[i], *n; b; b = n) {
            n = b->next;
            dm_free(b);
        }
    if (s->log_fp && s->log_fp != stderr)
        fclose(s->log_fp);
    pthread_mutex_destroy(&s->rl_mu);
    pthread_mutex_destroy(&s->log_mu);
    pthread_mutex_destroy(&s->watch_mu);
    pthread_mutex_destroy(&s->park_mu);
    fair_free(s->fair);
    http_keys_close(s->keys);
    dm_free(s->routes);
    dm_free(s->stats);
    dm_free(s->host);
    dm_free(s->access_log);
    dm_free(s->data_dir);
    dm_free(s->llm_url);
    dm_free(s);
}

static volatile sig_atomic_t n_signals;

static void on_signal(int sig)
{
    (void)sig;
    if (++n_signals >= 2)
        _exit(130);
}

int http_serve(dm_db *db, const http_config *c)
{
    http_server *s;
    int rc = http_start(db, c, &s);
    if (rc)
        return rc;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    bool keyed = http_keys_any(s->keys);
    const char *key = keyed ? " -H 'X-API-Key: YOUR_KEY'" : "";
    fprintf(stderr,
            "deltamemory %s listening on http://%s:%u (%s)\n"
            "  try: curl -s%s http://%s:%u/v1/memories -d '{\"user_id\": \"alice\", "
            "\"text\": \"I just moved to Austin\"}'\n"
            "       curl -s%s http://%s:%u/v1/search -d '{\"user_id\": \"alice\", "
            "\"query\": \"where do I live?\"}'\n"
            "  docs: docs/api.md; stop with Ctrl-C\n",
            dm_version(), s->host, s->port,
            keyed ? "API keys required"
                  : "no API key configured: loopback only, every request is the default tenant",
            key, s->host, s->port, key, s->host, s->port);
    fflush(stderr);
    while (!n_signals)
        pause();
    fprintf(stderr, "deltamemory: stopping (finishing the requests in progress; a second "
                    "signal exits at once)\n");
    http_stop(s, 10000);
    return DM_OK;
}
