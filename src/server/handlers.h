/*
 * handlers.h -- what a route handler of the HTTP server sees: the parsed
 * request, the response it fills, and the helpers that read arguments and
 * report errors the same way everywhere.
 *
 * A handler runs on one of the server's threads with the request already
 * authenticated (rq->tenant set from the API key), rate-limited, and its
 * body parsed (rq->body, a JSON value, NULL when the request had none).
 * It reads its arguments with http_str / http_int / ... which, on a
 * missing or ill-typed argument, fill the response with the error and
 * return false; the handler then just returns.  On success it sets the
 * JSON body with http_reply (status 200 unless said otherwise).  Errors
 * are formatted by the route's dialect (docs/api.md):
 *   native      {"error": {"code": "...", "message": "...", "field": "..."}}
 *   deltamemory {"error": "<message>", "code": "<CODE>"}
 *   mem0        {"error": "<message>"} (the client shows the raw body)
 * Handlers must not keep pointers into rq after returning.  Every
 * handler is called concurrently with others; the dm_* API is thread-safe.
 */
#ifndef DM_SERVER_HANDLERS_H
#define DM_SERVER_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "deltamemory.h"
#include "server/server.h"

typedef enum http_dialect {
    HTTP_NATIVE = 0,
    HTTP_DELTAMEMORY = 1,
    HTTP_MEM0 = 2,
} http_dialect;

/* Error kinds; each has its HTTP status and its code in each dialect. */
typedef enum http_err {
    HTTP_E_BAD_REQUEST = 0,   /* 400: malformed JSON, wrong type, missing field */
    HTTP_E_UNAUTHORIZED,      /* 401: no key or an unknown key */
    HTTP_E_FORBIDDEN,         /* 403 */
    HTTP_E_NOT_FOUND,         /* 404: unknown route or object */
    HTTP_E_METHOD,            /* 405 */
    HTTP_E_CONFLICT,          /* 409 */
    HTTP_E_TOO_LARGE,         /* 413: body, text or batch over the limit */
    HTTP_E_UNPROCESSABLE,     /* 422: well-formed but invalid (unknown field in
                                 strict mode, a value out of range) */
    HTTP_E_RATE_LIMITED,      /* 429 */
    HTTP_E_UNAVAILABLE,       /* 503: shutting down, embedding or model failure */
    HTTP_E_INTERNAL,          /* 500 */
    HTTP_N_ERR
} http_err;

typedef struct http_req {
    dm_db *db;
    const http_config *cfg;
    const char *method;        /* "GET", "POST", ... */
    const char *path;          /* as received, still percent-encoded, no query */
    /* The path's segments, percent-decoded (NUL-terminated; a segment that
     * decodes to invalid UTF-8 or holds a NUL is refused before routing).
     * For "/v1/memories/abc%20d/" segs = {"v1", "memories", "abc d", ""}. */
    char **segs;
    size_t n_segs;
    json_t *body;              /* parsed body; NULL when empty */
    const char *raw_body;      /* the body's bytes (NUL-terminated) */
    size_t body_len;
    const char *tenant;        /* from the API key; DM_DEFAULT_TENANT without keys */
    const char *key_id;        /* the key's public id; NULL without keys */
    void *_conn;               /* struct MHD_Connection * */
} http_req;

/* A streamed body: fill up to cap bytes of buf; return the bytes written,
 * 0 at the end, or -1 on an error (the connection is then cut). */
typedef long (*http_stream_fn)(void *cls, char *buf, size_t cap);

typedef struct http_resp {
    int status;                /* 200 unless set */
    json_t *body;              /* owned; NULL = {} for a success */
    const char *content_type;  /* NULL = application/json */
    char *raw;                 /* instead of body: raw bytes (dm_malloc'd, owned) */
    size_t raw_len;
    http_stream_fn stream;     /* instead of body: a streamed body */
    void *stream_cls;
    void (*stream_free)(void *cls);
    char *headers[8];          /* extra "Name: value" lines (dm_malloc'd, owned) */
    size_t n_headers;
    /* The error, when is_error; the body is then built from it. */
    bool is_error;
    http_err err;
    char err_code[40];         /* dialect code override, "" = the default */
    char err_msg[256];
    char err_field[64];
} http_resp;

typedef void (*http_handler)(http_req *rq, http_resp *rs);

/* One route.  pattern: "/v1/memories/{}/" -- {} matches one non-empty
 * segment, "{*}" at the end matches the rest; the trailing slash is part
 * of the match.  The method "*" matches any. */
typedef struct http_route {
    const char *method;
    const char *pattern;
    http_dialect dialect;
    http_handler fn;
    const char *name;          /* metric label, e.g. "mem0_search" */
    bool is_public;            /* answered without an API key (health, ping
                                  of liveness probes, metrics) */
    bool is_write;             /* waits for a WAL sync: runs on the write
                                  threads, its connection suspended, so that
                                  a slow sync never holds a request thread */
} http_route;

/* The route tables of each module, each ended by a zero entry. */
extern const http_route http_routes_native[];
extern const http_route http_routes_dm[];
extern const http_route http_routes_mem0[];
extern const http_route http_routes_mcp[];

/* ---------------------------------------------------------- responses */

/* http_reply -- the success body (stolen; NULL = {}) and status. */
void http_reply(http_resp *rs, int status, json_t *body);
/* http_reply_text -- the success body as JSON text already written
 * (dm_malloc'd, stolen), for the answers built with jw.h. */
void http_reply_text(http_resp *rs, int status, char *json, size_t len);

/* http_fail -- an error: kind, the field it concerns (NULL = none) and a
 * message (printf).  Returns false, so that `return http_fail(...)` works
 * in the argument helpers. */
bool http_fail(http_resp *rs, http_err kind, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* http_fail_code -- http_fail with a dialect error code ("MEMORY_NOT_FOUND"). */
bool http_fail_code(http_resp *rs, http_err kind, const char *code, const char *field,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* http_fail_dm -- the error of a dm_* call (rc < 0, message from
 * dm_errmsg): DM_EINVAL 400, DM_ENOTFOUND 404, DM_EEXIST 409, DM_ENOMEM /
 * DM_EIO / other 500 or 503.  what: "search", "add", ... */
bool http_fail_dm(http_resp *rs, int rc, const char *what);

/* http_observe_search -- add a search's stage times (dm_search_result.
 * stage_us) to the server's per-stage histograms (/metrics).  Every
 * handler that calls dm_search calls it after a success. */
void http_observe_search(http_req *rq, const dm_search_result *res);

/* http_header_add -- an extra response header. */
void http_header_add(http_resp *rs, const char *name, const char *value);

/* ---------------------------------------------------------- arguments */

/* The object of the body; without a body (or one that is not an object)
 * a 400 and NULL. */
json_t *http_body_object(http_req *rq, http_resp *rs);

/* http_fields_known -- in strict mode, a 422 naming the first member of
 * obj that is not in the space-separated list known; always true when not
 * strict. */
bool http_fields_known(http_req *rq, http_resp *rs, json_t *obj, const char *known);

/*
 * Members of a JSON object.  Each returns true and sets *out when the
 * member is present and well-typed (or absent and !is_required: *out is
 * left as it was, so preset the default).  A null value counts as absent.
 * Strings must be non-empty unless allow_empty; their length is bounded by
 * cfg->max_text_len (413).
 */
bool http_str(http_req *rq, http_resp *rs, json_t *obj, const char *key, bool is_required,
              const char **out);
bool http_str_empty(http_req *rq, http_resp *rs, json_t *obj, const char *key,
                    bool is_required, const char **out);
bool http_int(http_req *rq, http_resp *rs, json_t *obj, const char *key, bool is_required,
              int64_t min, int64_t max, int64_t *out);
bool http_num(http_req *rq, http_resp *rs, json_t *obj, const char *key, bool is_required,
              double min, double max, double *out);
bool http_bool(http_req *rq, http_resp *rs, json_t *obj, const char *key, bool *out);
/* An ISO 8601 string, or a number of seconds since the epoch (Mem0). */
bool http_time(http_req *rq, http_resp *rs, json_t *obj, const char *key, int64_t *out_us);
/* An object member (metadata, filters); *out borrowed. */
bool http_obj(http_req *rq, http_resp *rs, json_t *obj, const char *key, bool is_required,
              json_t **out);
/* An array member of at most cfg->max_batch items; *out borrowed. */
bool http_arr(http_req *rq, http_resp *rs, json_t *obj, const char *key, bool is_required,
              json_t **out);

/* Query-string arguments, percent-decoded ('+' is a space); NULL when
 * absent.  The string lives as long as the request. */
const char *http_query(http_req *rq, const char *name);
bool http_query_int(http_req *rq, http_resp *rs, const char *name, int64_t min, int64_t max,
                    int64_t *out);
bool http_query_bool(http_req *rq, const char *name);
/* A request header, NULL when absent. */
const char *http_header(http_req *rq, const char *name);

/* An id in a path segment or a body: a 404 (not found, in the dialect's
 * words) when it is not a well-formed memory id. */
bool http_id(http_req *rq, http_resp *rs, const char *s, dm_id *out);

/* ------------------------------------------------------------- shared */

/* http_time_str -- ISO 8601 UTC with microseconds into out. */
void http_time_str(int64_t us, char out[40]);

#endif
