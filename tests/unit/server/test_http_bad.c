/*
 * test_http_bad.c -- the server against bad input, over raw sockets: broken
 * JSON, wrong types, missing fields, huge bodies, deep nesting, invalid
 * UTF-8, NULs, duplicate keys, out-of-range numbers, bodies that are not
 * objects, unknown routes, wrong methods, percent-encoded path traps,
 * invalid query escapes, a 10 KB request line, many headers, a header
 * without a colon, a Content-Length that lies either way, chunked bodies,
 * pipelined requests, slowloris connections and clients that vanish in the
 * middle of a body.
 *
 * Every case checks the status (or that the connection was closed where
 * HTTP leaves nothing else to do), that an error produced by the server is
 * JSON in the dialect of the route (handlers.h), and, at the end of the
 * suite, that /v1/health still answers 200 and that the database holds
 * exactly the memories and users it held before the first bad request.
 *
 * Design: one server for the whole group (small limits: 4096-byte bodies,
 * nesting 8, a 2 s idle timeout) and a tiny HTTP/1.1 client written here,
 * because libcurl refuses to send most of these requests.  The client
 * keeps a buffer per connection, so pipelined responses are read one by
 * one from it.
 *
 * Write routes come from the dialect modules.  A route that is not in the
 * table yet answers the core's unrouted 404; each case then accepts that
 * 404 and nothing else.  Once the route is present (probed before the
 * suite with one valid request, which must succeed) the case insists on
 * the exact 4xx of the route's documentation and on its dialect's error
 * shape.  The probe writes happen before the count of memories is taken.
 *
 * Two gaps of the server core are reported as skips rather than failures
 * until src/server/http.c closes them: no deadline on a request's headers
 * (test_slowloris) and error bodies that come out as {} when the message
 * echoes bytes that are not UTF-8 (test_error_echo_utf8).  A server that
 * closes them only in part fails.
 */
// ctest-timeout: 120
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include "server/handlers.h"
#include "srvtest.h"
#include "tinymodel.h"

#define MAX_BODY 4096
#define MAX_DEPTH 8
#define TIMEOUT_S 2
#define IO_MS 5000 /* how long a read waits for a response */

/* ------------------------------------------------------------ the client */

typedef struct rconn {
    int fd;
    char *buf; /* received and not yet consumed */
    size_t len, cap;
    bool is_eof;
} rconn;

typedef struct rresp {
    int status;
    char content_type[128];
    char *body;
    size_t body_len;
    json_t *json; /* the body parsed; NULL when it is not JSON */
} rresp;

enum { RD_TIMEOUT = -1, RD_CLOSED = 0, RD_OK = 1 };

static st_server S;
static uint64_t base_memories, base_users;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static rconn rc_open(void)
{
    rconn c = { .fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) };
    if (c.fd < 0)
        fail_msg("socket: %s", strerror(errno));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(S.port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c.fd, (struct sockaddr *)&a, sizeof a) != 0)
        fail_msg("connect to port %u: %s", S.port, strerror(errno));
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
}

static void rc_close(rconn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

/* Send everything; false when the server has already closed (it may
 * refuse a request before reading all of it, which is not an error). */
static bool rc_send(rconn *c, const void *p, size_t n)
{
    const char *q = p;
    while (n) {
        ssize_t w = send(c->fd, q, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        q += w;
        n -= (size_t)w;
    }
    return true;
}

static bool rc_sends(rconn *c, const char *s)
{
    return rc_send(c, s, strlen(s));
}

/* Read more bytes into the buffer; RD_OK, RD_CLOSED (EOF or reset) or
 * RD_TIMEOUT once deadline (monotonic seconds) passes. */
static int rc_fill(rconn *c, double deadline)
{
    if (c->is_eof)
        return RD_CLOSED;
    for (;;) {
        int ms = (int)((deadline - mono_s()) * 1e3);
        if (ms < 0)
            return RD_TIMEOUT;
        struct pollfd pf = { .fd = c->fd, .events = POLLIN };
        int pr = poll(&pf, 1, ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            return RD_TIMEOUT;
        if (c->len + 4097 > c->cap) {
            c->cap = c->cap ? 2 * c->cap : 16384;
            c->buf = realloc(c->buf, c->cap);
            assert_non_null(c->buf);
        }
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            c->is_eof = true;
            return RD_CLOSED;
        }
        c->len += (size_t)r;
        c->buf[c->len] = 0;
        return RD_OK;
    }
}

static void rc_consume(rconn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    c->buf[c->len] = 0; /* strstr must not find stale bytes */
}

/* The value of header name in the header block [h, h+n), or NULL. */
static const char *hdr_value(const char *h, size_t n, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = h; p < h + n;) {
        const char *e = memchr(p, '\n', (size_t)(h + n - p));
        if (!e)
            e = h + n;
        if ((size_t)(e - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            size_t vl = (size_t)(e - v);
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                vl--;
            snprintf(out, cap, "%.*s", (int)vl, v);
            return out;
        }
        p = e + 1;
    }
    return NULL;
}

/*
 * rc_read -- one response from the connection: RD_OK and *r filled,
 * RD_CLOSED when the server closed without (the rest of) a response, or
 * RD_TIMEOUT.  Handles Content-Length, chunked and read-to-close bodies;
 * the body of an event stream is not read.
 */
static int rc_read(rconn *c, rresp *r, int timeout_ms)
{
    memset(r, 0, sizeof *r);
    double deadline = mono_s() + timeout_ms / 1e3;
    char *eoh;
    while (!c->buf || !(eoh = strstr(c->buf, "\r\n\r\n"))) {
        int f = rc_fill(c, deadline);
        if (f != RD_OK)
            return f;
    }
    size_t hlen = (size_t)(eoh - c->buf) + 4;
    int major = 0, minor = 0, status = 0;
    if (sscanf(c->buf, "HTTP/%d.%d %d", &major, &minor, &status) != 3 || major != 1 ||
        status < 100 || status > 599)
        fail_msg("not an HTTP/1.x status line: %.80s", c->buf);
    r->status = status;
    char v[128];
    if (hdr_value(c->buf, hlen, "Content-Type", v, sizeof v))
        snprintf(r->content_type, sizeof r->content_type, "%s", v);
    bool is_chunked = hdr_value(c->buf, hlen, "Transfer-Encoding", v, sizeof v) &&
                      strstr(v, "chunked");
    long long clen = -1;
    if (hdr_value(c->buf, hlen, "Content-Length", v, sizeof v))
        clen = atoll(v);
    rc_consume(c, hlen);
    char *body = NULL;
    size_t blen = 0;
    if (!strncmp(r->content_type, "text/event-stream", 17)) {
        /* An event stream may stay open: its status is all a case reads. */
    } else if (is_chunked) {
        for (;;) {
            char *eol;
            while (!(eol = c->len ? memmem(c->buf, c->len, "\r\n", 2) : NULL))
                if (rc_fill(c, deadline) != RD_OK)
                    goto cut;
            unsigned long sz = strtoul(c->buf, NULL, 16);
            size_t need = (size_t)(eol - c->buf) + 2 + sz + 2;
            while (c->len < need)
                if (rc_fill(c, deadline) != RD_OK)
                    goto cut;
            body = realloc(body, blen + sz + 1);
            assert_non_null(body);
            memcpy(body + blen, eol + 2, sz);
            blen += sz;
            rc_consume(c, need);
            if (!sz)
                break;
        }
    } else if (clen >= 0) {
        while (c->len < (size_t)clen)
            if (rc_fill(c, deadline) != RD_OK)
                goto cut;
        body = malloc((size_t)clen + 1);
        assert_non_null(body);
        memcpy(body, c->buf, (size_t)clen);
        blen = (size_t)clen;
        rc_consume(c, blen);
    } else if (status >= 200 && status != 204 && status != 304) {
        int f;
        while ((f = rc_fill(c, deadline)) == RD_OK)
            ;
        if (f == RD_TIMEOUT)
            goto cut;
        body = malloc(c->len + 1);
        assert_non_null(body);
        memcpy(body, c->buf, c->len);
        blen = c->len;
        rc_consume(c, c->len);
    }
    if (!body)
        body = malloc(1);
    assert_non_null(body);
    body[blen] = 0;
    r->body = body;
    r->body_len = blen;
    r->json = json_loadb(body, blen, JSON_DECODE_ANY, NULL);
    return RD_OK;
cut:
    free(body);
    memset(r, 0, sizeof *r);
    return RD_CLOSED;
}

static void rr_free(rresp *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* One request (raw bytes) on a fresh connection; returns what rc_read
 * returned. */
static int raw(const void *req, size_t n, rresp *r)
{
    rconn c = rc_open();
    rc_send(&c, req, n);
    int got = rc_read(&c, r, IO_MS);
    rc_close(&c);
    return got;
}

/* A request built from method, target, extra header lines ("" or lines
 * each ending in CRLF) and a body of n bytes (Content-Length set), on a
 * fresh connection. */
static int req(const char *method, const char *target, const char *headers, const char *body,
               size_t n, rresp *r)
{
    size_t cap = strlen(target) + strlen(headers) + n + 256;
    char *b = malloc(cap);
    assert_non_null(b);
    int h = snprintf(b, cap,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     method, target, headers, n);
    memcpy(b + h, body, n);
    int got = raw(b, (size_t)h + n, r);
    free(b);
    return got;
}

/* ---------------------------------------------------------- the checks */

/* Any dialect: what a JSON error of the route's dialect must look like;
 * HTTP_ANY accepts any object with an "error" member (the MCP route
 * answers in JSON-RPC's words). */
#define HTTP_ANY ((http_dialect)-1)

static void check_error_shape(const rresp *r, http_dialect d, const char *what)
{
    if (strncmp(r->content_type, "application/json", 16))
        fail_msg("%s: status %d with content type \"%s\", not JSON: %.300s", what, r->status,
                 r->content_type, r->body);
    if (!json_is_object(r->json))
        fail_msg("%s: status %d, the body is not a JSON object: %.300s", what, r->status,
                 r->body);
    json_t *e = json_object_get(r->json, "error");
    bool ok;
    switch ((int)d) {
    case HTTP_NATIVE:
        ok = json_is_object(e) && json_is_string(json_object_get(e, "code")) &&
             json_is_string(json_object_get(e, "message"));
        break;
    case HTTP_DELTAMEMORY:
        ok = json_is_string(e) && json_is_string(json_object_get(r->json, "code"));
        break;
    case HTTP_MEM0:
        ok = json_is_string(e) && json_string_length(e) > 0;
        break;
    default:
        ok = e != NULL;
    }
    if (!ok)
        fail_msg("%s: status %d, the error body is not of dialect %d: %.300s", what, r->status,
                 (int)d, r->body);
}

/* Status is one of the |-separated list want ("400|422"). */
static bool status_in(int status, const char *want)
{
    char s[8];
    snprintf(s, sizeof s, "%d", status);
    for (const char *p = want; p && *p;) {
        const char *e = strchr(p, '|');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == strlen(s) && !memcmp(p, s, l))
            return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

/* The core's answer to a path no route matches: 404, native dialect. */
static void check_unrouted(const rresp *r, const char *what)
{
    if (r->status != 404)
        fail_msg("%s: status %d, want the unrouted 404: %.300s", what, r->status, r->body);
    check_error_shape(r, HTTP_NATIVE, what);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r->json, "error"),
                                                          "code")),
                        "not_found");
}

/* One request that must be refused with a status in want and an error body
 * of dialect d. */
static void expect_h(const char *method, const char *target, const char *headers,
                     const char *body, size_t n, const char *want, http_dialect d)
{
    rresp r;
    char what[160];
    snprintf(what, sizeof what, "%s %.60s [%.50s]", method, target, body);
    if (req(method, target, headers, body, n, &r) != RD_OK)
        fail_msg("%s: no response", what);
    if (!status_in(r.status, want))
        fail_msg("%s: status %d, want %s: %.300s", what, r.status, want, r.body);
    check_error_shape(&r, d, what);
    rr_free(&r);
}

static void expect(const char *method, const char *target, const char *body, size_t n,
                   const char *want, http_dialect d)
{
    expect_h(method, target, "", body, n, want, d);
}

static void expect_s(const char *method, const char *target, const char *body, const char *want,
                     http_dialect d)
{
    expect(method, target, body, strlen(body), want, d);
}

static void expect_health(void)
{
    rresp r;
    double t0 = mono_s();
    if (req("GET", "/v1/health", "", "", 0, &r) != RD_OK)
        fail_msg("GET /v1/health: no response");
    if (r.status != 200 || !json_is_true(json_object_get(r.json, "healthy")))
        fail_msg("GET /v1/health: status %d: %.300s", r.status, r.body);
    rr_free(&r);
    double dt = mono_s() - t0;
    if (dt > 1.0)
        fail_msg("GET /v1/health took %.2f s", dt);
}

/* ------------------------------------------------------ the write routes */

typedef struct wroute {
    const char *method, *path;
    http_dialect d;
    const char *valid;   /* a body the route accepts */
    const char *ok;      /* its success statuses */
    const char *headers; /* extra header lines the route's clients send */
    bool is_present;
} wroute;

enum { W_NATIVE, W_DM, W_MEM0, W_MCP, N_W };

static wroute W[N_W] = {
    [W_NATIVE] = { "POST", "/v1/memories", HTTP_NATIVE,
                   "{\"user_id\": \"bad-native\", \"text\": \"my dog likes the park\"}", "201",
                   "", false },
    [W_DM] = { "POST", "/v1/store", HTTP_DELTAMEMORY,
               "{\"collection\": \"bad-dm\", \"content\": \"my cat sleeps on the sofa\", "
               "\"memory_type\": \"Fact\", \"metadata\": {}}",
               "200|201", "", false },
    [W_MEM0] = { "POST", "/v3/memories/add/", HTTP_MEM0,
                 "{\"messages\": [{\"role\": \"user\", \"content\": \"I like pizza and pasta\"}], "
                 "\"user_id\": \"bad-mem0\", \"infer\": false}",
                 "200|201", "Authorization: Token bad-suite\r\n", false },
    [W_MCP] = { "POST", "/mcp", HTTP_ANY,
                "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"initialize\", \"params\": "
                "{\"protocolVersion\": \"2025-03-26\", \"capabilities\": {}, \"clientInfo\": "
                "{\"name\": \"t\", \"version\": \"1\"}}}",
                "200", "Accept: application/json, text/event-stream\r\n", false },
};

/* A refusal on write route w: the exact statuses want (dialect of the
 * route) when the route is present, else the unrouted 404. */
static void expect_w(int w, const char *body, size_t n, const char *want)
{
    if (W[w].is_present) {
        expect_h(W[w].method, W[w].path, W[w].headers, body, n, want, W[w].d);
        return;
    }
    rresp r;
    if (req(W[w].method, W[w].path, W[w].headers, body, n, &r) != RD_OK)
        fail_msg("%s %s: no response", W[w].method, W[w].path);
    check_unrouted(&r, W[w].path);
    rr_free(&r);
}

static void expect_ws(int w, const char *body, const char *want)
{
    expect_w(w, body, strlen(body), want);
}

static void db_counts(uint64_t *n_memories, uint64_t *n_users)
{
    dm_stats st;
    assert_rc(dm_stats_get(S.db, &st), DM_OK);
    *n_memories = st.n_memories;
    *n_users = st.n_users;
}

static int setup(void **state)
{
    (void)state;
    http_config c;
    http_config_init(&c);
    c.port = 0;
    c.max_body_len = MAX_BODY;
    c.max_depth = MAX_DEPTH;
    c.timeout_s = TIMEOUT_S;
    c.rate_per_s = -1; /* the suite sends far more than a client would */
    st_start(&S, "http_bad", &c);
    /* Probe each write route: absent = the core's unrouted 404. */
    for (int w = 0; w < N_W; w++) {
        rresp r;
        if (req(W[w].method, W[w].path, W[w].headers, W[w].valid, strlen(W[w].valid), &r) !=
            RD_OK)
            fail_msg("probe %s %s: no response", W[w].method, W[w].path);
        bool is_unrouted = r.status == 404 && strstr(r.body, "no route");
        if (!is_unrouted && !status_in(r.status, W[w].ok))
            fail_msg("probe %s %s with a valid body: status %d, want %s: %.300s", W[w].method,
                     W[w].path, r.status, W[w].ok, r.body);
        W[w].is_present = !is_unrouted;
        print_message("route %s %s: %s\n", W[w].method, W[w].path,
                      W[w].is_present ? "present, strict checks" : "absent, 404 accepted");
        rr_free(&r);
    }
    assert_rc(dm_sync_extraction(S.db), DM_OK);
    db_counts(&base_memories, &base_users);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    st_stop(&S, false);
    return 0;
}

/* ------------------------------------------------------------ the cases */

static void test_broken_json(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{",
        "{\"user_id\": \"u\", \"text\": ",
        "{\"a\" 1}",
        "{'a': 1}",
        "{\"a\": 1,}",
        "[1, 2",
        "nul",
        "{\"a\": tru}",
        "}{",
        "{\"a\": 1} trailing",
        "{\"a\": \"unterminated}",
        "{\"a\": \"\\x41\"}",
        "{\"a\": 01}",
        "{\"a\": NaN}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* The core parses every body before the handler runs, so a core
         * route shows the refusal in its own dialect. */
        expect_s("GET", "/v1/health", bad[i], "400", HTTP_DELTAMEMORY);
        expect_s("GET", "/metrics", bad[i], "400", HTTP_NATIVE);
        for (int w = 0; w < N_W; w++)
            expect_ws(w, bad[i], "400");
    }
}

static void test_wrong_types(void **state)
{
    (void)state;
    static const char *const native[] = {
        "{\"user_id\": 5, \"text\": \"my dog\"}",
        "{\"user_id\": \"u\", \"text\": [\"my dog\"]}",
        "{\"user_id\": \"u\", \"text\": {\"t\": 1}}",
        "{\"user_id\": true, \"text\": \"my dog\"}",
        "{\"user_id\": \"u\", \"text\": \"my dog\", \"metadata\": \"x\"}",
        "{\"user_id\": \"u\", \"text\": \"my dog\", \"salience\": \"high\"}",
        "{\"user_id\": \"u\", \"text\": \"my dog\", \"time\": [1]}",
        "{\"user_id\": \"u\", \"text\": \"my dog\", \"extract\": \"yes\"}",
    };
    for (size_t i = 0; i < sizeof native / sizeof native[0]; i++)
        expect_ws(W_NATIVE, native[i], "400");
    static const char *const dm[] = {
        "{\"collection\": \"c\", \"content\": 5}",
        "{\"collection\": 7, \"content\": \"my cat\"}",
        "{\"collection\": \"c\", \"content\": \"my cat\", \"metadata\": [1]}",
        "{\"collection\": \"c\", \"content\": [\"my cat\"]}",
    };
    for (size_t i = 0; i < sizeof dm / sizeof dm[0]; i++)
        expect_ws(W_DM, dm[i], "400");
    static const char *const mem0[] = {
        "{\"messages\": 5, \"user_id\": \"u\"}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"user_id\": 5}",
        "{\"messages\": [{\"role\": \"user\", \"content\": 5}], \"user_id\": \"u\"}",
        "{\"messages\": [5], \"user_id\": \"u\"}",
        ("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"user_id\": \"u\", "
         "\"metadata\": \"x\"}"),
    };
    for (size_t i = 0; i < sizeof mem0 / sizeof mem0[0]; i++)
        expect_ws(W_MEM0, mem0[i], "400|422");
}

static void test_missing_fields(void **state)
{
    (void)state;
    expect_ws(W_NATIVE, "{\"text\": \"my dog\"}", "400");
    expect_ws(W_NATIVE, "{\"user_id\": \"u\"}", "400");
    expect_ws(W_NATIVE, "{\"user_id\": \"u\", \"text\": null}", "400");
    expect_ws(W_NATIVE, "{\"user_id\": \"u\", \"text\": \"\"}", "400");
    expect_ws(W_NATIVE, "{}", "400");
    expect_ws(W_DM, "{\"collection\": \"c\"}", "400");
    expect_ws(W_DM, "{\"collection\": \"c\", \"content\": \"\"}", "400");
    expect_ws(W_MEM0, "{\"user_id\": \"u\"}", "400|422");
    expect_ws(W_MEM0, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", "400|422");
    /* The field a native refusal names is the missing one. */
    if (W[W_NATIVE].is_present) {
        rresp r;
        const char *b = "{\"text\": \"my dog\"}";
        assert_int_equal(req("POST", "/v1/memories", "", b, strlen(b), &r), RD_OK);
        assert_int_equal(r.status, 400);
        json_t *f = json_object_get(json_object_get(r.json, "error"), "field");
        assert_string_equal(json_string_value(f), "user_id");
        rr_free(&r);
    }
}

static void test_not_objects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\"my dog likes the park\"", "[{\"user_id\": \"u\", \"text\": \"my dog\"}]", "42",
        "null", "true",
    };
    for (int w = 0; w < N_W; w++) {
        if (w == W_MCP)
            continue; /* JSON-RPC allows a batch array; see test_mcp */
        expect_w(w, "", 0, "400");
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            expect_ws(w, bad[i], w == W_MEM0 ? "400|422" : "400");
    }
    /* An empty body is no JSON at all: fine for routes that read none. */
    rresp r;
    assert_int_equal(req("GET", "/v1/health", "", "", 0, &r), RD_OK);
    assert_int_equal(r.status, 200);
    rr_free(&r);
}

static void test_huge_bodies(void **state)
{
    (void)state;
    size_t n = MAX_BODY + 1;
    char *big = malloc(n + 1);
    assert_non_null(big);
    /* A valid JSON object just over the limit. */
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = 0;
    expect("GET", "/v1/health", big, n, "413", HTTP_DELTAMEMORY);
    for (int w = 0; w < N_W; w++)
        expect_w(w, big, n, "413");
    /* Exactly at the limit is accepted. */
    rresp r;
    assert_int_equal(req("GET", "/v1/health", "", big, MAX_BODY - 1, &r), RD_OK);
    assert_int_equal(r.status, 400); /* unterminated object: refused as JSON, not by size */
    rr_free(&r);
    big[MAX_BODY - 1] = '}';
    assert_int_equal(req("GET", "/v1/health", "", big, MAX_BODY, &r), RD_OK);
    assert_int_equal(r.status, 200);
    rr_free(&r);
    free(big);

    /* A declared length of a gigabyte is refused before any body byte is
     * sent: the answer comes at once. */
    double t0 = mono_s();
    rconn c = rc_open();
    rc_sends(&c, "POST /v1/memories HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Content-Length: 1073741824\r\n\r\n");
    assert_int_equal(rc_read(&c, &r, IO_MS), RD_OK);
    if (W[W_NATIVE].is_present) {
        assert_int_equal(r.status, 413);
        check_error_shape(&r, HTTP_NATIVE, "1 GB declared");
    } else {
        assert_true(r.status == 413 || r.status == 404);
    }
    rr_free(&r);
    rc_close(&c);
    assert_true(mono_s() - t0 < 2.0);

    /* Declared lengths that are not numbers, or overflow. */
    static const char *const cl[] = { "-1", "abc", "99999999999999999999999", "1 2", "0x10" };
    for (size_t i = 0; i < sizeof cl / sizeof cl[0]; i++) {
        char q[256];
        snprintf(q, sizeof q,
                 "GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n{}", cl[i]);
        int got = raw(q, strlen(q), &r);
        if (got == RD_OK) {
            if (!status_in(r.status, "400|413"))
                fail_msg("Content-Length: %s: status %d", cl[i], r.status);
            if (!strncmp(r.content_type, "application/json", 16))
                check_error_shape(&r, HTTP_DELTAMEMORY, cl[i]);
            rr_free(&r);
        } else {
            assert_int_equal(got, RD_CLOSED);
        }
    }
}

static void nest(char *out, int depth, const char *inner)
{
    out[0] = 0;
    for (int i = 0; i < depth; i++)
        strcat(out, i % 2 ? "[" : "{\"k\":");
    strcat(out, inner);
    for (int i = depth - 1; i >= 0; i--)
        strcat(out, i % 2 ? "]" : "}");
}

static void test_deep_nesting(void **state)
{
    (void)state;
    char b[4096];
    nest(b, MAX_DEPTH, "1");
    rresp r;
    assert_int_equal(req("GET", "/v1/health", "", b, strlen(b), &r), RD_OK);
    assert_int_equal(r.status, 200); /* at the limit */
    rr_free(&r);
    nest(b, MAX_DEPTH + 1, "1");
    expect_s("GET", "/v1/health", b, "400", HTTP_DELTAMEMORY);
    for (int w = 0; w < N_W; w++)
        expect_ws(w, b, "400");
    /* Far deeper than any parser's stack should take, in a valid body. */
    char *deep = malloc(MAX_BODY);
    assert_non_null(deep);
    size_t n = MAX_BODY / 2 - 1;
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    expect("GET", "/v1/health", deep, 2 * n, "400", HTTP_DELTAMEMORY);
    /* Nesting inside a member the handler reads (metadata). */
    snprintf(b, sizeof b, "{\"user_id\": \"u\", \"text\": \"my dog\", \"metadata\": ");
    nest(b + strlen(b), MAX_DEPTH, "1");
    strcat(b, "}");
    expect_ws(W_NATIVE, b, "400");
    /* Brackets inside strings do not count. */
    memset(deep, '[', n);
    deep[0] = '"';
    deep[n - 1] = '"';
    assert_int_equal(req("GET", "/v1/health", "", deep, n, &r), RD_OK);
    assert_int_equal(r.status, 200);
    rr_free(&r);
    free(deep);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"user_id\": \"u\", \"text\": \"caf\xe9\"}",         /* Latin-1 */
        "{\"user_id\": \"u\", \"text\": \"\xc0\xaf\"}",         /* overlong '/' */
        "{\"user_id\": \"u\", \"text\": \"\xed\xa0\x80\"}",     /* a surrogate */
        "{\"user_id\": \"u\", \"text\": \"\xf4\x90\x80\x80\"}", /* over U+10FFFF */
        "{\"user_id\": \"u\", \"text\": \"\xe2\x82\"}",         /* cut short */
        "{\"user_\xff\": \"u\", \"text\": \"my dog\"}",         /* in a key */
        "{\"user_id\": \"u\", \"text\": \"\\udc00\"}",         /* lone low surrogate escape */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_s("GET", "/v1/health", bad[i], "400", HTTP_DELTAMEMORY);
        for (int w = 0; w < N_W; w++)
            expect_ws(w, bad[i], "400");
    }
}

static void test_nul_dup_range(void **state)
{
    (void)state;
    /* A raw NUL byte in the body, and an escaped one in a string. */
    static const char raw_nul[] = "{\"user_id\": \"u\", \"text\": \"a\0b\"}";
    expect("GET", "/v1/health", raw_nul, sizeof raw_nul - 1, "400", HTTP_DELTAMEMORY);
    for (int w = 0; w < N_W; w++)
        expect_w(w, raw_nul, sizeof raw_nul - 1, "400");
    expect_ws(W_NATIVE, "{\"user_id\": \"u\", \"text\": \"my\\u0000dog\"}", "400");
    expect_ws(W_NATIVE, "{\"user_id\": \"u\\u0000v\", \"text\": \"my dog\"}", "400");
    expect_ws(W_DM, "{\"collection\": \"c\", \"content\": \"my\\u0000cat\"}", "400");
    expect_ws(W_MEM0,
              "{\"messages\": [{\"role\": \"user\", \"content\": \"a\\u0000b\"}], "
              "\"user_id\": \"u\"}",
              "400|422");
    /* Duplicate keys: refused, whichever one a handler would have read. */
    static const char *const dup[] = {
        "{\"user_id\": \"u\", \"text\": \"my dog\", \"text\": \"my cat\"}",
        "{\"user_id\": \"u\", \"user_id\": \"v\", \"text\": \"my dog\"}",
        "{\"collection\": \"c\", \"content\": \"a\", \"content\": \"b\"}",
        ("{\"messages\": [], \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], "
         "\"user_id\": \"u\"}"),
    };
    for (size_t i = 0; i < sizeof dup / sizeof dup[0]; i++) {
        expect_s("GET", "/v1/health", dup[i], "400", HTTP_DELTAMEMORY);
        for (int w = 0; w < N_W; w++)
            expect_ws(w, dup[i], "400");
    }
    /* Numbers the parser cannot hold. */
    static const char *const num[] = {
        "{\"user_id\": \"u\", \"text\": \"my dog\", \"salience\": 1e400}",
        "{\"user_id\": \"u\", \"text\": \"my dog\", \"salience\": -1e400}",
        "{\"user_id\": \"u\", \"text\": \"my dog\", \"n\": 99999999999999999999999}",
    };
    for (size_t i = 0; i < sizeof num / sizeof num[0]; i++) {
        expect_s("GET", "/v1/health", num[i], "400", HTTP_DELTAMEMORY);
        for (int w = 0; w < N_W; w++)
            expect_ws(w, num[i], "400");
    }
    /* Numbers that parse but are out of the field's range. */
    expect_ws(W_NATIVE, "{\"user_id\": \"u\", \"text\": \"my dog\", \"salience\": 1e300}",
              "400|422");
    expect_ws(W_NATIVE, "{\"user_id\": \"u\", \"text\": \"my dog\", \"salience\": -0.5}",
              "400|422");
    expect_ws(W_NATIVE, "{\"user_id\": \"u\", \"text\": \"my dog\", \"time\": -1e300}",
              "400|422");
    expect_ws(W_MEM0,
              "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"user_id\": \"u\", "
              "\"timestamp\": 1e300}",
              "400|422");
    /* A text over max_text_len is not a concern here (the limit is the
     * body's 4096 bytes); an unknown field is ignored outside strict mode. */
}

static void test_routes_methods(void **state)
{
    (void)state;
    static const char *const unknown[] = {
        "/", "/v1", "/v1/", "/v1/healthz", "/V1/HEALTH", "/v1/health/", "/v1//health",
        "/metrics/", "/v9/memories", "/v1/health/x", "//v1/health", "/v1/health;x",
        "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o",
    };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        rresp r;
        if (req("GET", unknown[i], "", "", 0, &r) != RD_OK)
            fail_msg("GET %s: no response", unknown[i]);
        check_unrouted(&r, unknown[i]);
        rr_free(&r);
    }
    /* More segments than the router keeps is a bad path, not a crash. */
    expect_s("GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t", "", "400|404", HTTP_NATIVE);
    static const char *const methods[] = { "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
                                           "FOO" };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        expect_s(methods[i], "/v1/health", "", "405", HTTP_DELTAMEMORY);
        expect_s(methods[i], "/metrics", "", "405", HTTP_NATIVE);
    }
    /* Wrong methods on the write routes. */
    if (W[W_NATIVE].is_present) {
        expect_s("PUT", "/v1/memories", "{}", "405", HTTP_NATIVE);
        expect_s("DELETE", "/v1/memories", "", "405", HTTP_NATIVE);
    }
    if (W[W_DM].is_present) {
        expect_s("GET", "/v1/store", "", "405", HTTP_DELTAMEMORY);
        expect_s("DELETE", "/v1/store", "", "405", HTTP_DELTAMEMORY);
    }
    if (W[W_MEM0].is_present) {
        expect_s("GET", "/v3/memories/add/", "", "405", HTTP_MEM0);
        expect_s("PUT", "/v3/memories/add/", "{}", "405", HTTP_MEM0);
    }
    /* A HEAD has no body to check; it must not hang or crash. */
    rresp r;
    rconn c = rc_open();
    rc_sends(&c, "HEAD /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    int got = rc_read(&c, &r, IO_MS);
    assert_true(got == RD_OK || got == RD_CLOSED);
    rr_free(&r);
    rc_close(&c);
}

static void test_path_traps(void **state)
{
    (void)state;
    /* Escapes that decode to something no segment may hold: 400. */
    static const char *const bad[] = {
        "/v1/health%00",   "/v1/%00health",   "/v1/he%FFalth", "/v1/%C0%AF",
        "/v1/%C0%AFhealth", "/v1/%E0%80%AF",   "/v1/%ED%A0%80", "/v1/health%",
        "/v1/health%4",    "/v1/health%zz",   "/v1/%%32%65",   "/v1/%G0",
        "/v1/%c0%ae%c0%ae/v1/health",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_s("GET", bad[i], "", "400", HTTP_NATIVE);
    /* Escapes that decode cleanly but name no route: a %2F is a slash
     * inside one segment, never a separator, so these do not reach
     * /v1/health. */
    static const char *const other[] = {
        "/v1%2Fhealth", "/v1%2fhealth", "/v1/health%2F", "/v1/%2E%2E/v1/health",
        "/v1/../v1/health", "/v1/./health", "/%2Fv1/health", "/v1/health%20",
        "/v1/health%09",
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        rresp r;
        if (req("GET", other[i], "", "", 0, &r) != RD_OK)
            fail_msg("GET %s: no response", other[i]);
        /* The request target may also be refused outright. */
        if (r.status == 400)
            check_error_shape(&r, HTTP_NATIVE, other[i]);
        else
            check_unrouted(&r, other[i]);
        rr_free(&r);
    }
    /* A percent-encoded letter decodes before routing (RFC 3986 says it is
     * the same path). */
    rresp r;
    assert_int_equal(req("GET", "/v1/h%65alth", "", "", 0, &r), RD_OK);
    assert_int_equal(r.status, 200);
    rr_free(&r);
    /* Raw bytes in the request line that no client should send. */
    static const char *const rawp[] = {
        "GET /v1/\xff HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/\xc0\xaf HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/health\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET http://127.0.0.1/v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET * HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof rawp / sizeof rawp[0]; i++) {
        int got = raw(rawp[i], strlen(rawp[i]), &r);
        if (got == RD_OK) {
            if (r.status >= 500 || (r.status == 200 && i < 3))
                fail_msg("raw request %zu: status %d: %.200s", i, r.status, r.body);
            if (r.status >= 400 && !strncmp(r.content_type, "application/json", 16))
                check_error_shape(&r, HTTP_NATIVE, rawp[i]);
            rr_free(&r);
        } else {
            assert_int_equal(got, RD_CLOSED);
        }
    }
}

/*
 * Error messages echo the method and the path.  A method with a byte that
 * is not UTF-8, or a path whose echo is cut inside a multi-byte character
 * by the message's 256-byte buffer, must still give a JSON error with its
 * message, not an empty object.
 */
static void test_error_echo_utf8(void **state)
{
    (void)state;
    char path[600] = "/";
    for (int i = 0; i < 200; i++)
        strcat(path, "\xc3\xa9"); /* U+00E9, two bytes each */
    char q[3][800];
    snprintf(q[0], sizeof q[0], "GE\xac /v1/health HTTP/1.1\r\nHost: x\r\n\r\n");
    snprintf(q[1], sizeof q[1], "GE\xac /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    snprintf(q[2], sizeof q[2], "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    static const http_dialect d[3] = { HTTP_DELTAMEMORY, HTTP_NATIVE, HTTP_NATIVE };
    int n_empty = 0;
    for (int i = 0; i < 3; i++) {
        rresp r;
        int got = raw(q[i], strlen(q[i]), &r);
        if (got == RD_CLOSED)
            continue; /* refused by the HTTP layer */
        assert_int_equal(got, RD_OK);
        if (r.status < 400 || r.status >= 500)
            fail_msg("request %d: status %d", i, r.status);
        if (!strcmp(r.body, "{}"))
            n_empty++;
        else
            check_error_shape(&r, d[i], q[i]);
        rr_free(&r);
    }
    /* The message echoes the client's bytes: the server makes it UTF-8
     * (otherwise jansson refuses the string and the body is {}). */
    if (n_empty)
        fail_msg("%d of 3 error bodies were {}", n_empty);
}

static void test_query_escapes(void **state)
{
    (void)state;
    /* Routes that read no query ignore it, however it is spelt. */
    static const char *const q[] = {
        "?%zz",        "?a=%zz",     "?a=%",     "?a=%0",       "?%00=1",
        "?a=%00",      "?a=%FF%FE",  "?a=%C0%AF", "?&&&=&=",    "?a=b=c",
        "?a[]=1&a[]=2", "?" /* bare */,
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        char t[128];
        snprintf(t, sizeof t, "/v1/health%s", q[i]);
        rresp r;
        assert_int_equal(req("GET", t, "", "", 0, &r), RD_OK);
        if (r.status != 200)
            fail_msg("GET %s: status %d: %.200s", t, r.status, r.body);
        rr_free(&r);
    }
    /* A query value that does not decode is absent for the handler, never
     * "match everything": Mem0's delete-all with a broken user_id must not
     * delete anything (the final count checks it), and native reads of a
     * memory need a user_id that decodes. */
    static const char *const del[] = {
        "/v1/memories/?user_id=%zz", "/v1/memories/?user_id=%00", "/v1/memories/?user_id=%FF",
        "/v1/memories/?user_id=", "/v1/memories/?agent_id=%C0%AF",
    };
    for (size_t i = 0; i < sizeof del / sizeof del[0]; i++) {
        rresp r;
        assert_int_equal(req("DELETE", del[i], "", "", 0, &r), RD_OK);
        if (W[W_MEM0].is_present) {
            if (!status_in(r.status, "400|422"))
                fail_msg("DELETE %s: status %d, want 400: %.200s", del[i], r.status, r.body);
            check_error_shape(&r, HTTP_MEM0, del[i]);
        } else if (r.status != 404) {
            fail_msg("DELETE %s: status %d before the route exists", del[i], r.status);
        }
        rr_free(&r);
    }
    const char *g = "/v1/memories/00000000-0000-0000-0000-000000000000?user_id=%zz";
    rresp r;
    assert_int_equal(req("GET", g, "", "", 0, &r), RD_OK);
    if (!status_in(r.status, "400|404"))
        fail_msg("GET %s: status %d: %.200s", g, r.status, r.body);
    check_error_shape(&r, HTTP_ANY, g);
    rr_free(&r);
}

static void test_request_line_headers(void **state)
{
    (void)state;
    rresp r;
    /* A 10 KB request target: refused (our 400 or the HTTP layer's 414). */
    size_t n = 10 * 1024;
    char *b = malloc(n + 256);
    assert_non_null(b);
    strcpy(b, "GET /v1/");
    memset(b + 8, 'a', n);
    strcpy(b + 8 + n, " HTTP/1.1\r\nHost: x\r\n\r\n");
    int got = raw(b, strlen(b), &r);
    if (got == RD_OK) {
        if (!status_in(r.status, "400|414|431"))
            fail_msg("10 KB request line: status %d", r.status);
        if (r.status == 400)
            check_error_shape(&r, HTTP_NATIVE, "10 KB request line");
        rr_free(&r);
    } else {
        assert_int_equal(got, RD_CLOSED);
    }
    /* 200 short headers fit in the connection's memory: answered. */
    size_t cap = 64 * 1024;
    b = realloc(b, cap);
    assert_non_null(b);
    int len = snprintf(b, cap, "GET /v1/health HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 200; i++)
        len += snprintf(b + len, cap - (size_t)len, "X-Header-%d: value %d\r\n", i, i);
    len += snprintf(b + len, cap - (size_t)len, "\r\n");
    assert_int_equal(raw(b, (size_t)len, &r), RD_OK);
    if (!status_in(r.status, "200|431"))
        fail_msg("200 headers: status %d", r.status);
    rr_free(&r);
    /* 2000 headers do not fit: refused or cut, never served. */
    len = snprintf(b, cap, "GET /v1/health HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 2000 && (size_t)len + 64 < cap; i++)
        len += snprintf(b + len, cap - (size_t)len, "X-Header-%d: value %d\r\n", i, i);
    len += snprintf(b + len, cap - (size_t)len, "\r\n");
    got = raw(b, (size_t)len, &r);
    if (got == RD_OK) {
        if (!status_in(r.status, "400|413|414|431"))
            fail_msg("2000 headers: status %d", r.status);
        rr_free(&r);
    } else {
        assert_int_equal(got, RD_CLOSED);
    }
    free(b);
    /* Malformed header lines. */
    static const char *const bad[] = {
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
        "GET /v1/health HTTP/1.1\r\nHost: x\r\n: no name\r\n\r\n",
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
        "GET /v1/health HTTP/1.1\r\n Host: x\r\n\r\n",
        "GET /v1/health HTTP/9.9\r\nHost: x\r\n\r\n",
        "GET /v1/health\r\nHost: x\r\n\r\n",
        "GET  /v1/health  HTTP/1.1\r\nHost: x\r\n\r\n",
        "\r\n\r\n",
        "GET /v1/health HTTP/1.1\nHost: x\n\n",
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nX: \xff\xfe\r\n\r\n",
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-API-Key: \x01\x02\r\n\r\n",
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\n\r\n",
        "GET /v1/health HTTP/1.1\r\n\r\n", /* no Host: HTTP/1.1 says 400 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        got = raw(bad[i], strlen(bad[i]), &r);
        if (got == RD_OK) {
            /* 505 is HTTP's answer to an unknown version. */
            if (r.status >= 500 && r.status != 505)
                fail_msg("malformed header %zu: status %d", i, r.status);
            /* The header without a colon must not be served. */
            if (i == 0 && r.status != 400)
                fail_msg("header without a colon: status %d", r.status);
            rr_free(&r);
        } else if (got == RD_TIMEOUT) {
            fail_msg("malformed header %zu: no answer and no close", i);
        }
    }
}

static void test_content_length_lies(void **state)
{
    (void)state;
    rresp r;
    /* Shorter than the bytes sent: the rest is the next request, and it
     * reaches the route it names. */
    rconn c = rc_open();
    rc_sends(&c, "GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
                 "{}GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(rc_read(&c, &r, IO_MS), RD_OK);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "healthy")));
    rr_free(&r);
    assert_int_equal(rc_read(&c, &r, IO_MS), RD_OK);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.content_type, "text/plain"));
    rr_free(&r);
    rc_close(&c);
    /* Shorter, and the rest is garbage: the first request is answered, the
     * garbage refused or the connection closed. */
    c = rc_open();
    rc_sends(&c, "GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"
                 "{}}XYZZY\x01\x02 garbage\r\n\r\n");
    assert_int_equal(rc_read(&c, &r, IO_MS), RD_OK);
    assert_int_equal(r.status, 400); /* "{}}" is not JSON */
    check_error_shape(&r, HTTP_DELTAMEMORY, "short Content-Length");
    rr_free(&r);
    int got = rc_read(&c, &r, IO_MS);
    if (got == RD_OK) {
        assert_true(r.status >= 400 && r.status < 500);
        rr_free(&r);
    } else {
        assert_int_equal(got, RD_CLOSED);
    }
    rc_close(&c);
    /* Shorter on a write route: the first request is refused as JSON, and
     * the smuggled write is answered as its own request, never merged. */
    for (int w = 0; w < N_W; w++) {
        if (w == W_MCP)
            continue;
        char q[1024];
        snprintf(q, sizeof q,
                 "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Content-Length: 1\r\n\r\n{GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
                 W[w].method, W[w].path);
        c = rc_open();
        rc_sends(&c, q);
        assert_int_equal(rc_read(&c, &r, IO_MS), RD_OK);
        if (W[w].is_present) {
            assert_int_equal(r.status, 400);
            check_error_shape(&r, W[w].d, q);
        } else {
            check_unrouted(&r, q);
        }
        rr_free(&r);
        assert_int_equal(rc_read(&c, &r, IO_MS), RD_OK);
        assert_int_equal(r.status, 200);
        rr_free(&r);
        rc_close(&c);
    }
    /* Longer than the bytes sent, then close: nothing to answer; the server
     * must not wait on it or hold anything. */
    for (int i = 0; i < 20; i++) {
        c = rc_open();
        rc_sends(&c, "POST /v1/memories HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     "application/json\r\nContent-Length: 100\r\n\r\n{\"user_id\": \"u\"");
        rc_close(&c);
    }
    /* Longer, and the client waits: the idle timeout closes it. */
    double t0 = mono_s();
    c = rc_open();
    rc_sends(&c, "GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}");
    got = rc_read(&c, &r, (TIMEOUT_S + 3) * 1000);
    if (got == RD_OK) {
        /* An HTTP layer may answer 408 before closing. */
        assert_int_equal(r.status, 408);
        rr_free(&r);
        got = rc_read(&c, &r, IO_MS);
    }
    assert_int_equal(got, RD_CLOSED);
    assert_true(mono_s() - t0 < TIMEOUT_S + 2.5);
    rc_close(&c);
    expect_health();
}

static void test_chunked(void **state)
{
    (void)state;
    rresp r;
    /* A valid JSON object in three chunks. */
    const char *ok = "GET /v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\n{\"a\":\r\n2\r\n 1\r\n1\r\n}\r\n0\r\n\r\n";
    assert_int_equal(raw(ok, strlen(ok), &r), RD_OK);
    assert_int_equal(r.status, 200);
    rr_free(&r);
    /* Broken JSON across chunks. */
    const char *brk = "GET /v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\n{\"a\":\r\n1\r\n[\r\n0\r\n\r\n";
    assert_int_equal(raw(brk, strlen(brk), &r), RD_OK);
    assert_int_equal(r.status, 400);
    check_error_shape(&r, HTTP_DELTAMEMORY, "chunked broken JSON");
    rr_free(&r);
    /* A chunked body that grows past the limit without a declared length. */
    for (int w = -1; w < N_W; w++) {
        const char *method = w < 0 ? "GET" : W[w].method;
        const char *path = w < 0 ? "/v1/health" : W[w].path;
        rconn c = rc_open();
        char h[512];
        snprintf(h, sizeof h,
                 "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n",
                 method, path);
        rc_sends(&c, h);
        char chunk[1100];
        memset(chunk, ' ', sizeof chunk);
        memcpy(chunk, "400\r\n", 5);
        memcpy(chunk + 5 + 0x400, "\r\n", 2);
        for (int i = 0; i < 5; i++)
            if (!rc_send(&c, chunk, 5 + 0x400 + 2))
                break;
        rc_sends(&c, "0\r\n\r\n");
        assert_int_equal(rc_read(&c, &r, IO_MS), RD_OK);
        if (w < 0) {
            assert_int_equal(r.status, 413);
            check_error_shape(&r, HTTP_DELTAMEMORY, "chunked over the limit");
        } else if (W[w].is_present) {
            assert_int_equal(r.status, 413);
            check_error_shape(&r, W[w].d, "chunked over the limit");
        } else {
            check_unrouted(&r, path);
        }
        rr_free(&r);
        rc_close(&c);
    }
    /* Malformed chunk framing: refused or closed, never served. */
    static const char *const bad[] = {
        "zz\r\n{}\r\n0\r\n\r\n",
        "-1\r\n{}\r\n0\r\n\r\n",
        "ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
        "2\r\n{}XX0\r\n\r\n",
        "2;ext=\"x\r\n{}\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char q[512];
        snprintf(q, sizeof q,
                 "GET /v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%s",
                 bad[i]);
        rconn c = rc_open();
        rc_sends(&c, q);
        int got = rc_read(&c, &r, (TIMEOUT_S + 3) * 1000);
        if (got == RD_OK) {
            if (r.status >= 500)
                fail_msg("bad chunking %zu: status %d", i, r.status);
            rr_free(&r);
        } else {
            assert_int_equal(got, RD_CLOSED);
        }
        rc_close(&c);
    }
    /* Both Transfer-Encoding and Content-Length (a smuggling attempt): the
     * bytes after the chunked body must not become a request that is served
     * as part of this one. */
    const char *both = "GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"
                       "2\r\n{}\r\n0\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    rconn c = rc_open();
    rc_sends(&c, both);
    int got = rc_read(&c, &r, IO_MS);
    if (got == RD_OK) {
        assert_true(r.status == 200 || r.status == 400);
        rr_free(&r);
        got = rc_read(&c, &r, IO_MS);
        if (got == RD_OK) {
            /* If read on, it is a request of its own, routed by its path,
             * or the leftover of a body taken by its length, refused. */
            if (r.status == 200)
                assert_non_null(strstr(r.content_type, "text/plain"));
            else
                assert_true(r.status >= 400 && r.status < 500);
            rr_free(&r);
        }
    }
    rc_close(&c);
    expect_health();
}

static void test_pipelined(void **state)
{
    (void)state;
    rresp r;
    rconn c = rc_open();
    rc_sends(&c, "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /no/such/route HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n{bad"
                 "DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
    static const int want[] = { 200, 404, 400, 405, 200, 200 };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (rc_read(&c, &r, IO_MS) != RD_OK)
            fail_msg("pipelined response %zu missing", i);
        if (r.status != want[i])
            fail_msg("pipelined response %zu: status %d, want %d", i, r.status, want[i]);
        if (want[i] >= 400)
            check_error_shape(&r, i == 1 || i == 3 ? HTTP_NATIVE : HTTP_DELTAMEMORY, "pipelined");
        rr_free(&r);
    }
    rc_close(&c);
    /* Many in one write, each answered in order. */
    c = rc_open();
    char *all = malloc(64 * 100);
    assert_non_null(all);
    size_t len = 0;
    for (int i = 0; i < 100; i++)
        len += (size_t)sprintf(all + len, "GET /%s HTTP/1.1\r\nHost: x\r\n\r\n",
                               i % 2 ? "v1/health" : "nope");
    rc_send(&c, all, len);
    free(all);
    for (int i = 0; i < 100; i++) {
        if (rc_read(&c, &r, IO_MS) != RD_OK)
            fail_msg("pipelined response %d of 100 missing", i);
        assert_int_equal(r.status, i % 2 ? 200 : 404);
        rr_free(&r);
    }
    rc_close(&c);
}

/*
 * Slowloris: 50 connections that each send one byte of an endless header
 * every 500 ms.  The server must close every one within timeout_s + 2 s
 * and answer a normal request in under a second meanwhile.
 */
#define N_SLOW 50
static void test_slowloris(void **state)
{
    (void)state;
    static const char head[] = "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    rconn c[N_SLOW];
    bool is_open[N_SLOW];
    size_t sent[N_SLOW];
    for (int i = 0; i < N_SLOW; i++) {
        c[i] = rc_open();
        is_open[i] = true;
        sent[i] = 0;
    }
    double t0 = mono_s(), deadline = t0 + TIMEOUT_S + 2.0;
    int n_open = N_SLOW, n_probes = 0;
    double worst = 0;
    while (n_open && mono_s() < deadline) {
        for (int i = 0; i < N_SLOW; i++) {
            if (!is_open[i])
                continue;
            char b = sent[i] < sizeof head - 1 ? head[sent[i]] : 'a';
            bool ok = rc_send(&c[i], &b, 1);
            if (ok) {
                /* Closed by the server: recv sees EOF (or a reset). */
                char x[512];
                ssize_t r = recv(c[i].fd, x, sizeof x, MSG_DONTWAIT);
                ok = r > 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
            }
            if (!ok) {
                is_open[i] = false;
                n_open--;
            }
            sent[i]++;
        }
        /* A normal client is served meanwhile. */
        double t1 = mono_s();
        expect_health();
        n_probes++;
        double dt = mono_s() - t1;
        if (dt > worst)
            worst = dt;
        struct timespec ts = { 0, 500 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    double took = mono_s() - t0;
    for (int i = 0; i < N_SLOW; i++)
        rc_close(&c[i]);
    print_message("slowloris: %d of %d still open after %.1f s; %d health probes, worst %.3f s\n",
                  n_open, N_SLOW, took, n_probes, worst);
    /* The idle timeout restarts with every byte, so only a deadline on the
     * whole header block closes these. */
    if (n_open)
        fail_msg("slowloris: %d of %d connections still open after %.1f s (timeout %d s)",
                 n_open, N_SLOW, took, TIMEOUT_S);
}

static void test_vanishing_client(void **state)
{
    (void)state;
    for (int i = 0; i < 100; i++) {
        int w = i % N_W;
        rconn c = rc_open();
        char h[512];
        snprintf(h, sizeof h,
                 "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Content-Length: %d\r\n\r\n",
                 W[w].method, W[w].path, (int)strlen(W[w].valid));
        rc_sends(&c, h);
        rc_send(&c, W[w].valid, strlen(W[w].valid) / 2);
        if (i % 3 == 0) {
            /* A reset instead of an orderly close. */
            struct linger lg = { 1, 0 };
            setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        rc_close(&c);
    }
    /* Vanishing before the headers end, and while the answer is written. */
    for (int i = 0; i < 20; i++) {
        rconn c = rc_open();
        rc_sends(&c, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Half: ab");
        rc_close(&c);
        c = rc_open();
        rc_sends(&c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        struct linger lg = { 1, 0 };
        setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        rc_close(&c);
    }
    expect_health();
}

/* Last: the server is healthy and nothing was written. */
static void test_nothing_changed(void **state)
{
    (void)state;
    expect_health();
    assert_rc(dm_sync_extraction(S.db), DM_OK);
    uint64_t n_mem, n_users;
    db_counts(&n_mem, &n_users);
    assert_int_equal(n_mem, base_memories);
    assert_int_equal(n_users, base_users);
    /* No request of the suite was answered with a 5xx. */
    st_resp m = st_call(&S, "GET", "/metrics", NULL, NULL);
    assert_int_equal(m.status, 200);
    if (strstr(m.body, "code=\"5xx\""))
        fail_msg("a request was answered with a 5xx:\n%s", m.body);
    st_resp_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broken_json),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_not_objects),
        cmocka_unit_test(test_huge_bodies),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_nul_dup_range),
        cmocka_unit_test(test_routes_methods),
        cmocka_unit_test(test_path_traps),
        cmocka_unit_test(test_error_echo_utf8),
        cmocka_unit_test(test_query_escapes),
        cmocka_unit_test(test_request_line_headers),
        cmocka_unit_test(test_content_length_lies),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_vanishing_client),
        cmocka_unit_test(test_nothing_changed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
