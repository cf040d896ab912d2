/*
 * test_http.c -- the OpenAI-compatible HTTP embedding provider against a
 * real HTTP/1.1 server started inside the test.
 *
 * The fixture stands in for Ollama: a listening socket on 127.0.0.1:0, an
 * accept thread, and one thread per connection (curl keeps connections
 * alive, so a blocked single-threaded server could deadlock a second
 * client).  Each request is parsed (request line, headers, Content-Length
 * body), its JSON body and Authorization header are checked, and the
 * server answers with deterministic embeddings derived from each input's
 * bytes, or with the next scripted failure: 503/429 (to prove retries),
 * a slow reply (timeouts), malformed JSON, a wrong dimension, shuffled or
 * repeated indices, a 401, a connection closed without a reply.
 */
// ctest-timeout: 120
#include "testutil.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "embed/embed.h"

/* ------------------------------------------------------------- fixture */

enum action {
    ACT_OK = 0,
    ACT_503,
    ACT_429,
    ACT_401,
    ACT_SLOW,       /* wait slow_ms, then answer normally */
    ACT_MALFORMED,  /* 200 with a body that is not JSON */
    ACT_WRONG_DIM,  /* one number too many in every embedding */
    ACT_SHUFFLED,   /* items in reverse order, with correct indices */
    ACT_DUP_INDEX,  /* every item says index 0 */
    ACT_FEWER,      /* one item short */
    ACT_HANGUP,     /* close the connection without answering */
    ACT_STRING_NUM, /* a string where a number belongs */
};

#define MAX_CONN 64
#define MAX_SCRIPT 16

typedef struct server {
    int lfd;
    int port;
    pthread_t accept_th;
    atomic_int stop;
    pthread_mutex_t mu; /* guards everything below */
    int script[MAX_SCRIPT];
    int n_script, pos;
    int dim;            /* reply dimension when the request has none */
    int slow_ms;
    char expect_auth[128]; /* "" = no Authorization header expected */
    const char *expect_model;
    int n_requests;
    int n_inputs_total;
    int max_inputs;
    int last_dimensions; /* "dimensions" of the last request, 0 = absent */
    int bad;             /* requests that failed the fixture's checks */
    char bad_why[256];
    char last_path[128];
    pthread_t conn_th[MAX_CONN];
    int conn_fd[MAX_CONN];
    int n_conn;
} server;

static server *srv; /* the one server of the running test */

/* Deterministic embedding of a text: an LCG seeded by FNV-1a of it. */
static void fake_vec(const char *s, size_t len, int dim, double *out)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    for (int j = 0; j < dim; j++) {
        h = h * 6364136223846793005ull + 1442695040888963407ull;
        out[j] = (double)((int)((h >> 40) & 0xffff) - 32768) / 1000.0;
    }
}

static void expect_row(const char *s, const float *row, int dim)
{
    double v[64], n2 = 0;
    fake_vec(s, strlen(s), dim, v);
    for (int j = 0; j < dim; j++)
        n2 += v[j] * v[j];
    double n = sqrt(n2), r2 = 0;
    for (int j = 0; j < dim; j++) {
        assert_true(fabs(v[j] / n - row[j]) < 1e-5);
        r2 += (double)row[j] * row[j];
    }
    assert_true(fabs(r2 - 1.0) < 1e-5);
}

static void mark_bad(const char *why)
{
    /* caller holds srv->mu */
    srv->bad++;
    snprintf(srv->bad_why, sizeof srv->bad_why, "%s", why);
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int respond(int fd, int status, const char *reason, const char *body)
{
    char head[256];
    size_t bl = strlen(body);
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      status, reason, bl);
    if (send_all(fd, head, (size_t)hl) != 0)
        return -1;
    return send_all(fd, body, bl);
}

/* build_reply -- the JSON answer for the parsed request. */
static char *build_reply(json_t *inputs, int dim, int act)
{
    size_t n = json_array_size(inputs);
    json_t *root = json_object();
    json_t *data = json_array();
    for (size_t k = 0; k < n; k++) {
        size_t i = act == ACT_SHUFFLED ? n - 1 - k : k;
        if (act == ACT_FEWER && k == n - 1)
            break;
        json_t *s = json_array_get(inputs, i);
        double v[80];
        int d = act == ACT_WRONG_DIM ? dim + 1 : dim;
        fake_vec(json_string_value(s), json_string_length(s), d, v);
        json_t *emb = json_array();
        for (int j = 0; j < d; j++) {
            if (act == ACT_STRING_NUM && j == 1)
                json_array_append_new(emb, json_string("1.0"));
            else
                json_array_append_new(emb, json_real(v[j]));
        }
        json_t *item = json_object();
        json_object_set_new(item, "object", json_string("embedding"));
        json_object_set_new(item, "index",
                            json_integer(act == ACT_DUP_INDEX ? 0 : (json_int_t)i));
        json_object_set_new(item, "embedding", emb);
        json_array_append_new(data, item);
    }
    json_object_set_new(root, "object", json_string("list"));
    json_object_set_new(root, "data", data);
    json_object_set_new(root, "model", json_string("fake"));
    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return out;
}

/* handle -- one parsed request; returns -1 to close the connection. */
static int handle(int fd, const char *path, const char *auth, const char *body,
                  size_t body_len)
{
    pthread_mutex_lock(&srv->mu);
    int act = srv->pos < srv->n_script ? srv->script[srv->pos++] : ACT_OK;
    srv->n_requests++;
    snprintf(srv->last_path, sizeof srv->last_path, "%s", path);
    int dim = srv->dim, slow = srv->slow_ms;
    if (strcmp(auth, srv->expect_auth) != 0)
        mark_bad("unexpected Authorization header");
    json_error_t je;
    json_t *req = json_loadb(body, body_len, 0, &je);
    json_t *inputs = req ? json_object_get(req, "input") : NULL;
    json_t *model = req ? json_object_get(req, "model") : NULL;
    if (!req || !json_is_array(inputs) || json_array_size(inputs) == 0 ||
        !json_is_string(model) ||
        strcmp(json_string_value(model), srv->expect_model) != 0) {
        mark_bad("bad request body");
        pthread_mutex_unlock(&srv->mu);
        json_decref(req);
        return respond(fd, 400, "Bad Request", "{\"error\":\"bad body\"}");
    }
    for (size_t i = 0; i < json_array_size(inputs); i++) {
        json_t *s = json_array_get(inputs, i);
        if (!json_is_string(s) || json_string_length(s) == 0)
            mark_bad("input not a non-empty string");
    }
    json_t *dj = json_object_get(req, "dimensions");
    srv->last_dimensions = dj ? (int)json_integer_value(dj) : 0;
    if (dj)
        dim = (int)json_integer_value(dj);
    int n = (int)json_array_size(inputs);
    srv->n_inputs_total += n;
    if (n > srv->max_inputs)
        srv->max_inputs = n;
    pthread_mutex_unlock(&srv->mu);

    int rc;
    char *reply = NULL;
    switch (act) {
    case ACT_503:
        rc = respond(fd, 503, "Service Unavailable",
                     "{\"error\":\"model is loading\"}");
        break;
    case ACT_429:
        rc = respond(fd, 429, "Too Many Requests", "{\"error\":\"slow down\"}");
        break;
    case ACT_401:
        rc = respond(fd, 401, "Unauthorized", "{\"error\":\"bad key\"}");
        break;
    case ACT_MALFORMED:
        rc = respond(fd, 200, "OK", "{\"data\": [ {\"embedding\": [1, 2,");
        break;
    case ACT_HANGUP:
        rc = -1;
        break;
    case ACT_SLOW:
        for (int waited = 0; waited < slow && !atomic_load(&srv->stop); waited += 10)
            usleep(10000);
        /* Then answer normally, late. */
        __attribute__((fallthrough));
    default:
        reply = build_reply(inputs, dim, act);
        rc = respond(fd, 200, "OK", reply);
        break;
    }
    free(reply);
    json_decref(req);
    return rc;
}

/* conn_main -- reads requests off one keep-alive connection. */
static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    for (;;) {
        char *hend = NULL;
        while (!(hend = memmem(b, len, "\r\n\r\n", 4))) {
            if (len + 4096 > cap)
                b = realloc(b, cap *= 2);
            ssize_t r = recv(fd, b + len, cap - len, 0);
            if (r <= 0)
                goto done;
            len += (size_t)r;
        }
        size_t hlen = (size_t)(hend - b) + 4;
        b[hlen - 2] = '\0';
        char method[16] = "", path[128] = "", auth[256] = "";
        sscanf(b, "%15s %127s", method, path);
        size_t clen = 0;
        for (char *line = strstr(b, "\r\n"); line && line < hend; line = strstr(line + 2, "\r\n")) {
            char *l = line + 2;
            if (strncasecmp(l, "Content-Length:", 15) == 0)
                clen = strtoul(l + 15, NULL, 10);
            else if (strncasecmp(l, "Authorization:", 14) == 0) {
                char *e = strstr(l, "\r\n");
                const char *v = l + 14;
                while (*v == ' ')
                    v++;
                snprintf(auth, sizeof auth, "%.*s", (int)(e - v), v);
            }
        }
        while (len < hlen + clen) {
            if (hlen + clen > cap)
                b = realloc(b, cap = hlen + clen + 1);
            ssize_t r = recv(fd, b + len, cap - len, 0);
            if (r <= 0)
                goto done;
            len += (size_t)r;
        }
        if (strcmp(method, "POST") != 0) {
            pthread_mutex_lock(&srv->mu);
            mark_bad("not a POST");
            pthread_mutex_unlock(&srv->mu);
        }
        if (handle(fd, path, auth, b + hlen, clen) != 0)
            goto done;
        memmove(b, b + hlen + clen, len - hlen - clen);
        len -= hlen + clen;
    }
done:
    free(b);
    shutdown(fd, SHUT_RDWR);
    return NULL;
}

static void *accept_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&srv->stop)) {
        struct pollfd p = { srv->lfd, POLLIN, 0 };
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(srv->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&srv->mu);
        if (srv->n_conn == MAX_CONN) {
            pthread_mutex_unlock(&srv->mu);
            close(fd);
            continue;
        }
        srv->conn_fd[srv->n_conn] = fd;
        pthread_create(&srv->conn_th[srv->n_conn], NULL, conn_main,
                       (void *)(intptr_t)fd);
        srv->n_conn++;
        pthread_mutex_unlock(&srv->mu);
    }
    return NULL;
}

static int listen_socket(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t sl = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static int server_setup(void **state)
{
    srv = calloc(1, sizeof *srv);
    pthread_mutex_init(&srv->mu, NULL);
    srv->lfd = listen_socket(&srv->port);
    srv->dim = 16;
    srv->slow_ms = 1500;
    srv->expect_model = "test-model";
    snprintf(srv->expect_auth, sizeof srv->expect_auth, "Bearer testkey-123");
    setenv("DM_TEST_EMBED_KEY", "testkey-123", 1);
    unsetenv("DM_TEST_NO_SUCH_KEY");
    pthread_create(&srv->accept_th, NULL, accept_main, NULL);
    *state = srv;
    return 0;
}

static int server_teardown(void **state)
{
    atomic_store(&srv->stop, 1);
    pthread_join(srv->accept_th, NULL);
    for (int i = 0; i < srv->n_conn; i++)
        shutdown(srv->conn_fd[i], SHUT_RDWR);
    for (int i = 0; i < srv->n_conn; i++) {
        pthread_join(srv->conn_th[i], NULL);
        close(srv->conn_fd[i]);
    }
    close(srv->lfd);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
    srv = NULL;
    return 0;
}

static void script(int n, const int *acts)
{
    pthread_mutex_lock(&srv->mu);
    memcpy(srv->script, acts, (size_t)n * sizeof *acts);
    srv->n_script = n;
    srv->pos = 0;
    pthread_mutex_unlock(&srv->mu);
}

static int requests(void)
{
    pthread_mutex_lock(&srv->mu);
    int n = srv->n_requests;
    pthread_mutex_unlock(&srv->mu);
    return n;
}

static char base_url[64];

static embed_http_config cfg_default(void)
{
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d/v1/", srv->port);
    embed_http_config c;
    memset(&c, 0, sizeof c);
    c.base_url = base_url;
    c.model = "test-model";
    c.api_key_env = "DM_TEST_EMBED_KEY";
    c.dim = 16;
    c.timeout_ms = 5000;
    return c;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int embed_strs(embedder *e, const char **t, size_t n, float *out)
{
    size_t lens[16];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(t[i]);
    return embedder_embed(e, t, lens, n, out);
}

/* --------------------------------------------------------------- tests */

static void test_probe_batches_auth(void **state)
{
    embed_http_config c = cfg_default();
    c.dim = 0; /* learned by a probe */
    c.batch = 2;
    int r0 = requests();
    embedder *e = NULL;
    assert_int_equal(embed_http_open(&c, &e), DM_OK);
    assert_int_equal(requests(), r0 + 1);
    assert_int_equal(embedder_dim(e), 16);
    assert_string_equal(embedder_name(e), "http:test-model");
    assert_int_equal(embedder_known_words(e, "hello", 5), 0);

    const char *t[] = { "alpha", "beta gamma", "delta", "épsilon ✓", "zeta" };
    float out[5 * 16];
    pthread_mutex_lock(&srv->mu);
    srv->max_inputs = 0;
    pthread_mutex_unlock(&srv->mu);
    assert_int_equal(embed_strs(e, t, 5, out), DM_OK);
    assert_int_equal(requests(), r0 + 1 + 3); /* batches of 2, 2, 1 */
    for (int i = 0; i < 5; i++)
        expect_row(t[i], out + i * 16, 16);
    pthread_mutex_lock(&srv->mu);
    assert_int_equal(srv->max_inputs, 2);
    assert_string_equal(srv->last_path, "/v1/embeddings");
    assert_int_equal(srv->last_dimensions, 0);
    assert_int_equal(srv->bad, 0);
    pthread_mutex_unlock(&srv->mu);
    embedder_close(e);
}

static void test_no_key_and_dimensions(void **state)
{
    embed_http_config c = cfg_default();
    c.api_key_env = "DM_TEST_NO_SUCH_KEY";
    c.dim = 8;
    c.send_dimensions = 1;
    pthread_mutex_lock(&srv->mu);
    srv->expect_auth[0] = '\0';
    pthread_mutex_unlock(&srv->mu);
    embedder *e = NULL;
    assert_int_equal(embed_http_open(&c, &e), DM_OK);
    const char *t[] = { "one", "two" };
    float out[2 * 8];
    assert_int_equal(embed_strs(e, t, 2, out), DM_OK);
    expect_row("one", out, 8);
    expect_row("two", out + 8, 8);
    pthread_mutex_lock(&srv->mu);
    assert_int_equal(srv->last_dimensions, 8);
    assert_int_equal(srv->bad, 0);
    snprintf(srv->expect_auth, sizeof srv->expect_auth, "Bearer testkey-123");
    pthread_mutex_unlock(&srv->mu);
    embedder_close(e);
}

static void test_empty_texts_not_sent(void **state)
{
    embed_http_config c = cfg_default();
    embedder *e = NULL;
    assert_int_equal(embed_http_open(&c, &e), DM_OK);
    const char *t[] = { "", "x", "" };
    float out[3 * 16];
    memset(out, 0x7f, sizeof out);
    pthread_mutex_lock(&srv->mu);
    int before = srv->n_inputs_total;
    pthread_mutex_unlock(&srv->mu);
    assert_int_equal(embed_strs(e, t, 3, out), DM_OK);
    for (int j = 0; j < 16; j++) {
        assert_true(out[j] == 0.0f);
        assert_true(out[32 + j] == 0.0f);
    }
    expect_row("x", out + 16, 16);
    pthread_mutex_lock(&srv->mu);
    assert_int_equal(srv->n_inputs_total, before + 1);
    pthread_mutex_unlock(&srv->mu);
    /* All empty: no request at all. */
    int r0 = requests();
    const char *t2[] = { "" };
    assert_int_equal(embed_strs(e, t2, 1, out), DM_OK);
    assert_int_equal(requests(), r0);
    /* n = 0 is a no-op. */
    assert_int_equal(embedder_embed(e, NULL, NULL, 0, NULL), DM_OK);
    embedder_close(e);
}

static void test_retry_then_success(void **state)
{
    embed_http_config c = cfg_default();
    c.retries = 3;
    embedder *e = NULL;
    assert_int_equal(embed_http_open(&c, &e), DM_OK);
    const int acts[] = { ACT_503, ACT_429, ACT_HANGUP, ACT_OK };
    script(4, acts);
    int r0 = requests();
    const char *t[] = { "retry me" };
    float out[16];
    double t0 = now_ms();
    assert_int_equal(embed_strs(e, t, 1, out), DM_OK);
    double dt = now_ms() - t0;
    assert_int_equal(requests(), r0 + 4);
    expect_row("retry me", out, 16);
    /* At least the backoffs after the 503 and the 429 (100 + 200 ms);
     * curl itself may retry a request whose reused connection died
     * without an answer, so the hang-up need not cost a backoff. */
    assert_true(dt >= 250.0);
    embedder_close(e);
}

static void test_retries_exhausted(void **state)
{
    embed_http_config c = cfg_default();
    c.retries = 1;
    embedder *e = NULL;
    assert_int_equal(embed_http_open(&c, &e), DM_OK);
    const int acts[] = { ACT_503, ACT_503 };
    script(2, acts);
    int r0 = requests();
    const char *t[] = { "never" };
    float out[16];
    assert_int_equal(embed_strs(e, t, 1, out), DM_EIO);
    assert_int_equal(requests(), r0 + 2);
    const char *m = err_last_msg();
    assert_non_null(strstr(m, "HTTP 503"));
    assert_non_null(strstr(m, base_url));
    assert_non_null(strstr(m, "model is loading"));
    embedder_close(e);
}

static void test_not_retried(void **state)
{
    embed_http_config c = cfg_default();
    c.retries = 3;
    embedder *e = NULL;
    assert_int_equal(embed_http_open(&c, &e), DM_OK);
    const char *t[] = { "a", "b" };
    float out[2 * 16];
    struct {
        int act;
        const char *needle;
    } cases[] = {
        { ACT_401, "HTTP 401" },
        { ACT_MALFORMED, "not JSON" },
        { ACT_WRONG_DIM, "expected 16" },
        { ACT_DUP_INDEX, "repeats" },
        { ACT_FEWER, "1 embeddings for 2 inputs" },
        { ACT_STRING_NUM, "not a finite number" },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        script(1, &cases[k].act);
        int r0 = requests();
        assert_int_equal(embed_strs(e, t, 2, out), DM_EIO);
        assert_int_equal(requests(), r0 + 1);
        if (!strstr(err_last_msg(), cases[k].needle))
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", k, err_last_msg(),
                     cases[k].needle);
    }
    embedder_close(e);
}

static void test_shuffled_reply(void **state)
{
    embed_http_config c = cfg_default();
    embedder *e = NULL;
    assert_int_equal(embed_http_open(&c, &e), DM_OK);
    const int act = ACT_SHUFFLED;
    script(1, &act);
    const char *t[] = { "first", "second", "third" };
    float out[3 * 16];
    assert_int_equal(embed_strs(e, t, 3, out), DM_OK);
    for (int i = 0; i < 3; i++)
        expect_row(t[i], out + i * 16, 16);
    embedder_close(e);
}

static void test_timeout(void **state)
{
    embed_http_config c = cfg_default();
    c.timeout_ms = 200;
    embedder *e = NULL;
    assert_int_equal(embed_http_open(&c, &e), DM_OK);
    const int acts[] = { ACT_SLOW };
    script(1, acts);
    const char *t[] = { "slow" };
    float out[16];
    double t0 = now_ms();
    assert_int_equal(embed_strs(e, t, 1, out), DM_ECANCELED);
    double dt = now_ms() - t0;
    assert_true(dt >= 150.0 && dt < 1200.0);
    assert_non_null(strstr(err_last_msg(), "timed out"));
    embedder_close(e);

    /* A slow first attempt followed by a fast one succeeds with a retry. */
    c.retries = 1;
    assert_int_equal(embed_http_open(&c, &e), DM_OK);
    script(1, acts);
    assert_int_equal(embed_strs(e, t, 1, out), DM_OK);
    expect_row("slow", out, 16);
    embedder_close(e);
}

static void test_connection_refused(void **state)
{
    int port;
    int fd = listen_socket(&port);
    close(fd); /* nothing listens there now */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    embed_http_config c = cfg_default();
    c.base_url = url;
    c.dim = 0;
    c.retries = 1;
    embedder *e = (embedder *)1;
    assert_int_equal(embed_http_open(&c, &e), DM_EIO);
    assert_null(e);
    assert_non_null(strstr(err_last_msg(), url));
    assert_non_null(strstr(err_last_msg(), "probe"));
}

static void test_bad_config_and_utf8(void **state)
{
    embed_http_config c = cfg_default();
    embedder *e = NULL;
    c.base_url = NULL;
    assert_int_equal(embed_http_open(&c, &e), DM_EINVAL);
    assert_non_null(strstr(err_last_msg(), "base_url"));
    c = cfg_default();
    c.model = "";
    assert_int_equal(embed_http_open(&c, &e), DM_EINVAL);
    assert_non_null(strstr(err_last_msg(), "model"));
    c = cfg_default();
    c.base_url = "ftp://example.com";
    assert_int_equal(embed_http_open(&c, &e), DM_EINVAL);

    c = cfg_default();
    assert_int_equal(embed_http_open(&c, &e), DM_OK);
    int r0 = requests();
    const char *t[] = { "fine", "ab\xc3(" };
    float out[2 * 16];
    assert_int_equal(embed_strs(e, t, 2, out), DM_EINVAL);
    assert_non_null(strstr(err_last_msg(), "text 1: invalid UTF-8 at byte 2"));
    assert_int_equal(requests(), r0);
    embedder_close(e);
    embedder_close(NULL);
}

typedef struct worker {
    embedder *e;
    int id;
    int failures;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int k = 0; k < 20; k++) {
        char a[32], b[32];
        snprintf(a, sizeof a, "thread %d text %d", w->id, k);
        snprintf(b, sizeof b, "other %d %d", k, w->id);
        const char *t[] = { a, b };
        size_t l[] = { strlen(a), strlen(b) };
        float out[2 * 16];
        if (embedder_embed(w->e, t, l, 2, out) != DM_OK) {
            w->failures++;
            continue;
        }
        double v[16], n2 = 0;
        fake_vec(a, strlen(a), 16, v);
        for (int j = 0; j < 16; j++)
            n2 += v[j] * v[j];
        for (int j = 0; j < 16; j++)
            if (fabs(v[j] / sqrt(n2) - out[j]) > 1e-5)
                w->failures++;
    }
    return NULL;
}

static void test_concurrent_calls(void **state)
{
    embed_http_config c = cfg_default();
    embedder *e = NULL;
    assert_int_equal(embed_http_open(&c, &e), DM_OK);
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){ e, i, 0 };
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    pthread_mutex_lock(&srv->mu);
    assert_int_equal(srv->bad, 0);
    pthread_mutex_unlock(&srv->mu);
    embedder_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_batches_auth),
        cmocka_unit_test(test_no_key_and_dimensions),
        cmocka_unit_test(test_empty_texts_not_sent),
        cmocka_unit_test(test_retry_then_success),
        cmocka_unit_test(test_retries_exhausted),
        cmocka_unit_test(test_not_retried),
        cmocka_unit_test(test_shuffled_reply),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_bad_config_and_utf8),
        cmocka_unit_test(test_concurrent_calls),
    };
    return cmocka_run_group_tests(tests, server_setup, server_teardown);
}
