/*
 * test_http_load.c -- the server under a short concurrent load: 32
 * keep-alive connections, one thread each, a few thousand requests.
 *
 * Core routes: each connection sends a fixed sequence of GET /v1/health,
 * GET /metrics and GET of a path no route serves; every answer must be
 * whole and carry the expected status (200, 200, 404), no connection may
 * be reset, and afterwards the server's request counter for the health
 * route must equal the number of health requests sent: no request lost,
 * none counted twice.
 *
 * The native mix, when the native routes are present (a probe POST
 * /v1/memories that is not a 404): 80 % POST /v1/search, 20 % POST
 * /v1/memories over 16 users; every answer 200 / 201, and afterwards
 * every acknowledged add (the id of a 201) is read back with dm_get under
 * its user.
 *
 * One user on every connection: the same mix, all on one user, with the
 * server admitting one request of a user at a time (user_concurrency 1):
 * the others wait their turn, suspended, and must all be answered; the
 * server must say that requests waited, and that none waits afterwards.
 *
 * One request thread: the native mix with n_threads 1 and two write
 * threads; every write goes through them (the offload counter).
 *
 * The client is a plain blocking socket per thread (HTTP/1.1, keep-alive,
 * Content-Length framing; a "Connection: close" reconnects).  The
 * threads never call cmocka: they count failures and keep the first
 * message, which the main thread asserts on.  The server runs without a
 * rate limit (one client address sends everything).
 */
// ctest-labels: concurrency
// ctest-timeout: 120
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "srvtest.h"
#include "testutil.h"

#define N_CONNS 32
#define N_CORE 60   /* requests per connection, core routes */
#define N_NATIVE 40 /* requests per connection, native mix */
#define N_USERS 16

typedef struct client {
    uint16_t port;
    int fd;
    char buf[1 << 16];
    size_t len;
} client;

typedef struct worker {
    pthread_t th;
    int idx;
    uint16_t port;
    bool is_native;
    bool is_one_user;          /* every request on user "hot" (user 99) */
    /* results */
    int n_ok;
    int n_fail;
    int n_health;
    char first_err[256];
    char (*ids)[40];
    int *id_user;
    int n_ids;
} worker;

static void note(worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(worker *w, const char *fmt, ...)
{
    w->n_fail++;
    if (w->first_err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->first_err, sizeof w->first_err, fmt, ap);
    va_end(ap);
}

static bool cl_connect(client *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return false;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* A hung server fails the test instead of hanging it. */
    struct timeval tv = { 60, 0 };
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(c->port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(c->fd);
        c->fd = -1;
        return false;
    }
    c->len = 0;
    return true;
}

/* The value of header name in the header block [h, e), or NULL. */
static const char *hdr(const char *h, const char *e, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(h, "\r\n"); p && p + 2 < e; p = strstr(p + 2, "\r\n")) {
        const char *l = p + 2;
        if (!strncasecmp(l, name, nl) && l[nl] == ':') {
            l += nl + 1;
            while (*l == ' ')
                l++;
            return l;
        }
    }
    return NULL;
}

/*
 * One request on the keep-alive connection; *status and the body (NUL-
 * terminated, in c->buf at *body) on success.  false = the connection
 * broke or the answer was malformed (message in err).
 */
static bool cl_call(client *c, const char *method, const char *path, const char *json,
                    int *status, const char **body, char *err, size_t err_cap)
{
    if (c->fd < 0 && !cl_connect(c)) {
        snprintf(err, err_cap, "connect failed");
        return false;
    }
    char req[1024];
    int n = json ? snprintf(req, sizeof req,
                            "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                            "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                            method, path, strlen(json), json)
                 : snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                            method, path);
    for (int off = 0; off < n;) {
        ssize_t k = send(c->fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (k <= 0) {
            snprintf(err, err_cap, "%s %s: send failed", method, path);
            return false;
        }
        off += (int)k;
    }
    c->len = 0;
    size_t need = 0, hlen = 0;
    for (;;) {
        if (!hlen) {
            c->buf[c->len] = 0;
            char *e = strstr(c->buf, "\r\n\r\n");
            if (e) {
                hlen = (size_t)(e - c->buf) + 4;
                if (sscanf(c->buf, "HTTP/1.%*d %d", status) != 1) {
                    snprintf(err, err_cap, "%s %s: bad status line", method, path);
                    return false;
                }
                const char *cl = hdr(c->buf, e + 2, "Content-Length");
                if (!cl) {
                    snprintf(err, err_cap, "%s %s: no Content-Length", method, path);
                    return false;
                }
                need = hlen + strtoul(cl, NULL, 10);
                if (need >= sizeof c->buf) {
                    snprintf(err, err_cap, "%s %s: answer too long", method, path);
                    return false;
                }
            }
        }
        if (hlen && c->len >= need)
            break;
        ssize_t k = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
        if (k <= 0) {
            snprintf(err, err_cap, "%s %s: connection %s before the answer was whole", method,
                     path, k == 0 ? "closed" : "failed");
            return false;
        }
        c->len += (size_t)k;
    }
    if (c->len != need) {
        snprintf(err, err_cap, "%s %s: %zu bytes after the answer", method, path,
                 c->len - need);
        return false;
    }
    const char *conn = hdr(c->buf, c->buf + hlen - 2, "Connection");
    bool is_close = conn && !strncasecmp(conn, "close", 5);
    memmove(c->buf, c->buf + hlen, need - hlen);
    c->buf[need - hlen] = 0;
    *body = c->buf;
    if (is_close) {
        close(c->fd);
        c->fd = -1;
    }
    return true;
}

static void expect(worker *w, client *c, const char *method, const char *path,
                   const char *json, int want, const char **body)
{
    char err[200];
    int status = 0;
    const char *b = NULL;
    if (!cl_call(c, method, path, json, &status, &b, err, sizeof err)) {
        note(w, "connection %d: %s", w->idx, err);
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        *body = NULL;
        return;
    }
    if (status != want) {
        note(w, "connection %d: %s %s: status %d, want %d: %.100s", w->idx, method, path,
             status, want, b);
        *body = NULL;
        return;
    }
    w->n_ok++;
    *body = b;
}

static void *core_main(void *arg)
{
    worker *w = arg;
    client *c = calloc(1, sizeof *c);
    c->port = w->port;
    c->fd = -1;
    const char *body;
    for (int i = 0; i < N_CORE; i++) {
        switch ((i + w->idx) % 3) {
        case 0:
            expect(w, c, "GET", "/v1/health", NULL, 200, &body);
            w->n_health++;
            if (body && !strstr(body, "\"healthy\": true") && !strstr(body, "\"healthy\":true"))
                note(w, "health: %.100s", body);
            break;
        case 1:
            expect(w, c, "GET", "/metrics", NULL, 200, &body);
            if (body && !strstr(body, "deltamemory_http_requests_total"))
                note(w, "metrics without the request counter");
            break;
        default:
            expect(w, c, "GET", "/v1/no-such-route", NULL, 404, &body);
            break;
        }
    }
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    return NULL;
}

static void *native_main(void *arg)
{
    worker *w = arg;
    client *c = calloc(1, sizeof *c);
    c->port = w->port;
    c->fd = -1;
    w->ids = calloc(N_NATIVE, sizeof *w->ids);
    w->id_user = calloc(N_NATIVE, sizeof *w->id_user);
    tu_rng r;
    tu_rng_seed(&r, 1000 + (uint64_t)w->idx);
    static const char *const words[] = { "coffee", "garden", "piano", "Lisbon", "bicycle",
                                         "sushi", "marathon", "library" };
    char json[512], user[16];
    const char *body;
    for (int i = 0; i < N_NATIVE; i++) {
        int u = (int)tu_randn(&r, N_USERS);
        if (w->is_one_user)
            u = 99;
        snprintf(user, sizeof user, "load%02d", u);
        const char *a = words[tu_randn(&r, 8)], *b = words[tu_randn(&r, 8)];
        if (tu_randn(&r, 5) == 0) {
            snprintf(json, sizeof json,
                     "{\"user_id\":\"%s\",\"text\":\"Connection %d talked about %s and %s, "
                     "turn %d.\",\"extract\":false}",
                     user, w->idx, a, b, i);
            expect(w, c, "POST", "/v1/memories", json, 201, &body);
            if (!body)
                continue;
            json_t *j = json_loads(body, 0, NULL);
            const char *id = json_string_value(json_object_get(j, "id"));
            if (id && strlen(id) < sizeof w->ids[0]) {
                snprintf(w->ids[w->n_ids], sizeof w->ids[0], "%s", id);
                w->id_user[w->n_ids++] = u;
            } else {
                note(w, "add answered without an id: %.100s", body);
            }
            json_decref(j);
        } else {
            snprintf(json, sizeof json, "{\"user_id\":\"%s\",\"query\":\"%s %s\",\"k\":10}",
                     user, a, b);
            expect(w, c, "POST", "/v1/search", json, 200, &body);
            if (body) {
                json_t *j = json_loads(body, 0, NULL);
                if (!json_is_array(json_object_get(j, "results")))
                    note(w, "search answered without results: %.100s", body);
                json_decref(j);
            }
        }
    }
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    return NULL;
}

static void run_workers(worker *ws, uint16_t port, void *(*fn)(void *))
{
    for (int i = 0; i < N_CONNS; i++) {
        ws[i].idx = i;
        ws[i].port = port;
        assert_int_equal(pthread_create(&ws[i].th, NULL, fn, &ws[i]), 0);
    }
    for (int i = 0; i < N_CONNS; i++)
        pthread_join(ws[i].th, NULL);
    for (int i = 0; i < N_CONNS; i++)
        if (ws[i].n_fail)
            fail_msg("%d failures on connection %d; first: %s", ws[i].n_fail, i,
                     ws[i].first_err);
}

/* A server without a rate limit; 0 = the default for the three counts. */
static void start_with(st_server *s, const char *tag, unsigned user_concurrency,
                       unsigned n_threads, unsigned n_write_threads)
{
    http_config c;
    http_config_init(&c);
    c.port = 0;
    c.rate_per_s = -1;
    c.user_concurrency = user_concurrency;
    c.n_threads = n_threads;
    c.n_write_threads = n_write_threads;
    st_start(s, tag, &c);
}

static void start(st_server *s, const char *tag)
{
    start_with(s, tag, 0, 0, 0);
}

static void test_core_routes_under_load(void **state)
{
    (void)state;
    st_server s;
    start(&s, "http_load_core");
    worker *ws = calloc(N_CONNS, sizeof *ws);
    run_workers(ws, s.port, core_main);
    int n_ok = 0, n_health = 0;
    for (int i = 0; i < N_CONNS; i++) {
        n_ok += ws[i].n_ok;
        n_health += ws[i].n_health;
    }
    assert_int_equal(n_ok, N_CONNS * N_CORE);
    /* The server counted every health request once.  A request is
     * counted once its answer is queued, which may be a moment after the
     * client read it: a few tries, no more. */
    char want[128];
    snprintf(want, sizeof want,
             "deltamemory_http_requests_total{route=\"health\",code=\"2xx\"} %d\n", n_health);
    bool is_counted = false;
    char last[4096] = "";
    for (int tries = 0; tries < 50 && !is_counted; tries++) {
        st_resp r = st_call(&s, "GET", "/metrics", NULL, NULL);
        assert_int_equal(r.status, 200);
        is_counted = strstr(r.body, want) != NULL;
        const char *l = strstr(r.body, "deltamemory_http_requests_total{route=\"health\"");
        snprintf(last, sizeof last, "%.120s", l ? l : "(no health counter)");
        st_resp_free(&r);
        if (!is_counted)
            usleep(20000);
    }
    if (!is_counted)
        fail_msg("metrics do not say %s but %s", want, last);
    free(ws);
    st_stop(&s, false);
}

/* The native mix on s from N_CONNS connections; every acknowledged add is
 * then read back. */
static void native_mix(st_server *s, bool is_one_user)
{
    st_resp probe = st_call(s, "POST", "/v1/memories",
                            "{\"user_id\":\"probe\",\"text\":\"A probe.\",\"extract\":false}",
                            NULL);
    long probe_status = probe.status;
    st_resp_free(&probe);
    assert_int_equal(probe_status, 201);
    worker *ws = calloc(N_CONNS, sizeof *ws);
    for (int i = 0; i < N_CONNS; i++)
        ws[i].is_one_user = is_one_user;
    run_workers(ws, s->port, native_main);
    int n_acked = 0, n_missing = 0;
    for (int i = 0; i < N_CONNS; i++) {
        for (int j = 0; j < ws[i].n_ids; j++) {
            char user[16];
            snprintf(user, sizeof user, "load%02d", ws[i].id_user[j]);
            dm_scope sc = { .tenant = NULL, .user_id = user };
            dm_id id;
            assert_int_equal(dm_id_parse(ws[i].ids[j], &id), DM_OK);
            dm_memory *m = NULL;
            if (dm_get(s->db, &sc, &id, 0, &m) != DM_OK || !m || !strstr(m->text, "talked about"))
                n_missing++;
            dm_memory_free(m);
            n_acked++;
        }
        free(ws[i].ids);
        free(ws[i].id_user);
    }
    assert_true(n_acked > 0);
    assert_int_equal(n_missing, 0);
    free(ws);
}

static void test_native_mix_under_load(void **state)
{
    (void)state;
    st_server s;
    start(&s, "http_load_native");
    native_mix(&s, false);
    st_stop(&s, false);
}

/* The value of metric line `name ` in s's /metrics; -1 when absent. */
static long long metric(st_server *s, const char *name)
{
    st_resp r = st_call(s, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    char want[128];
    snprintf(want, sizeof want, "\n%s ", name);
    const char *p = strstr(r.body, want);
    long long v = p ? strtoll(p + strlen(want), NULL, 10) : -1;
    st_resp_free(&r);
    return v;
}

static void test_one_user_on_every_connection(void **state)
{
    (void)state;
    st_server s;
    start_with(&s, "http_load_one_user", 1, 0, 0);
    native_mix(&s, true);
    /* 32 connections of one user, one admitted at a time: many waited. */
    assert_true(metric(&s, "deltamemory_http_user_waits_total") > 0);
    assert_int_equal(metric(&s, "deltamemory_http_user_waiting"), 0);
    st_stop(&s, false);
}

/* One request thread: every write runs on a write thread while its
 * connection is suspended, and the one request thread serves the searches
 * and picks the writes' connections up again to answer them.  Every answer
 * must come, every add be read back, and every add have been offloaded. */
static void test_writes_off_the_request_thread(void **state)
{
    (void)state;
    st_server s;
    start_with(&s, "http_load_writes", 0, 1, 2);
    native_mix(&s, false);
    long long adds = metric(&s, "deltamemory_http_writes_offloaded_total");
    long long added = metric(&s, "deltamemory_memories");
    assert_true(adds > 0);
    assert_true(adds >= added);
    st_stop(&s, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_routes_under_load),
        cmocka_unit_test(test_native_mix_under_load),
        cmocka_unit_test(test_one_user_on_every_connection),
        cmocka_unit_test(test_writes_off_the_request_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
