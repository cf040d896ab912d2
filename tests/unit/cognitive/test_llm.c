/*
 * test_llm.c -- the chat-completion client and the LLM extractor against
 * an HTTP/1.1 server started inside the test.
 *
 * The fixture stands in for an OpenAI-compatible server: a listening
 * socket on 127.0.0.1:0, an accept thread and one thread per connection
 * (the client keeps connections alive and runs several at once).  Every
 * request is parsed (request line, headers, Content-Length body) and
 * recorded -- path, Authorization header, body -- and answered with the
 * next scripted step (a status, a body, a delay, extra headers) or, with
 * no script left, with a completion that echoes the last message.  The
 * model outputs are recorded completions kept below as string literals.
 * Timeouts are short (200 ms) so that the program stays within seconds.
 */
// ctest-labels: concurrency
// ctest-timeout: 120
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cognitive/llm.h"

/* ------------------------------------------------------ recorded replies */

/* A whole reply as an Ollama server sent it. */
static const char REC_HELLO[] =
    "{\"id\":\"chatcmpl-829\",\"object\":\"chat.completion\",\"created\":1715080000,"
    "\"model\":\"qwen2.5:3b-instruct\",\"system_fingerprint\":\"fp_ollama\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
    "\"Hello! How can I help?\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":26,\"completion_tokens\":8,\"total_tokens\":34}}";

/* Model outputs (message contents) for the turn TURN_TEXT. */
static const char TURN_TEXT[] =
    "I moved from Austin to Denver last Saturday with my sister Ann. "
    "I work at Acme Corp now.";

static const char OUT_VALID[] =
    "{\"facts\":[{\"subject\":\"\",\"slot\":\"location.city\",\"value\":\"Denver\","
    "\"prev_value\":\"Austin\",\"polarity\":\"asserted\",\"confidence\":0.9,"
    "\"valid_from\":\"2023-05-06\"},{\"subject\":\"\",\"slot\":\"family.sister\","
    "\"value\":\"Ann\",\"prev_value\":null,\"polarity\":\"asserted\",\"confidence\":"
    "0.9,\"valid_from\":null},{\"subject\":\"\",\"slot\":\"work.employer\",\"value\":"
    "\"Acme Corp\",\"prev_value\":null,\"polarity\":\"asserted\",\"confidence\":0.9,"
    "\"valid_from\":null}],\"events\":[{\"type\":\"milestone\",\"what\":\"moved from "
    "Austin to Denver\",\"who\":[\"Ann\"],\"from\":\"2023-05-06\",\"to\":\"2023-05-07\","
    "\"has_time\":true,\"confidence\":0.85}],\"relations\":[{\"src\":\"\",\"rel\":"
    "\"lives_in\",\"dst\":\"Denver\",\"confidence\":0.9},{\"src\":\"\",\"rel\":"
    "\"family.sister\",\"dst\":\"Ann\",\"confidence\":0.9},{\"src\":\"\",\"rel\":"
    "\"works_at\",\"dst\":\"Acme Corp\",\"confidence\":0.9}]}";

/* Cut off mid-answer (max_tokens reached). */
static const char OUT_TRUNCATED[] =
    "{\"facts\":[{\"subject\":\"\",\"slot\":\"location.city\",\"value\":\"Denver\","
    "\"prev_value\":\"Austin\",\"polarity\":\"asser";

/* A slot outside the taxonomy. */
static const char OUT_UNKNOWN_SLOT[] =
    "{\"facts\":[{\"subject\":\"\",\"slot\":\"residence\",\"value\":\"Denver\","
    "\"prev_value\":null,\"polarity\":\"asserted\",\"confidence\":0.9,"
    "\"valid_from\":null}],\"events\":[],\"relations\":[]}";

/* A server that ignored response_format: a code fence, the speaker's own
 * name as subject, "I" in who, an event without time and one with a month. */
static const char OUT_FENCED[] =
    "Here is the JSON:\n```json\n{\"facts\":[{\"subject\":\"Caroline\",\"slot\":"
    "\"hobby\",\"value\":\" painting \",\"prev_value\":\"\",\"polarity\":\"negated\","
    "\"confidence\":1,\"valid_from\":\"2023-05-08T09:15:00+02:00\"}],\"events\":"
    "[{\"type\":\"activity\",\"what\":\"painted\",\"who\":[\"I\"],\"from\":null,"
    "\"to\":null,\"has_time\":false,\"confidence\":0.5},{\"type\":\"plan\",\"what\":"
    "\"trip to Japan\",\"who\":[],\"from\":\"2023-07\",\"to\":null,\"has_time\":true,"
    "\"confidence\":0.8}],\"relations\":[]}\n```\n";

/* ------------------------------------------------------------- fixture */

#define MAX_CONN 64
#define MAX_STEPS 128
#define MAX_REC 64

typedef struct step {
    int status;        /* 0 = echo the last message */
    char *body;        /* malloc'd */
    int delay_ms;
    const char *extra; /* extra header lines, each ending in \r\n */
} step;

typedef struct server {
    int lfd, port;
    pthread_t accept_th;
    atomic_int stop;
    pthread_mutex_t mu; /* guards everything below */
    step steps[MAX_STEPS];
    int n_steps, pos;
    step repeat;        /* answered when the script is used up, if status */
    char *bodies[MAX_REC]; /* request bodies, in arrival order */
    char *paths[MAX_REC];
    char *auths[MAX_REC];  /* Authorization values or NULL */
    int n_req;
    pthread_t conn_th[MAX_CONN];
    int n_conn;
} server;

static server srv_;
static server *srv = &srv_;

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static char *envelope(const char *content, int pt, int ct)
{
    json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], "
                          "s:{s:i, s:i, s:i}}",
                          "id", "chatcmpl-417", "object", "chat.completion",
                          "created", 1715000000, "model", "qwen2.5:3b-instruct",
                          "choices", "index", 0, "message", "role", "assistant",
                          "content", content, "finish_reason", "stop", "usage",
                          "prompt_tokens", pt, "completion_tokens", ct,
                          "total_tokens", pt + ct);
    assert_non_null(o);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* script -- append a step answered with status and body (copied). */
static void script(int status, const char *body, int delay_ms, const char *extra)
{
    pthread_mutex_lock(&srv->mu);
    assert_true(srv->n_steps < MAX_STEPS);
    step *s = &srv->steps[srv->n_steps++];
    s->status = status;
    s->body = xstrdup(body);
    s->delay_ms = delay_ms;
    s->extra = extra;
    pthread_mutex_unlock(&srv->mu);
}

/* script_content -- append a 200 whose message content is content. */
static void script_content(const char *content, int pt, int ct)
{
    char *b = envelope(content, pt, ct);
    script(200, b, 0, NULL);
    free(b);
}

/* script_repeat -- the step answered once the script is used up. */
static void script_repeat(int status, const char *body, int delay_ms)
{
    pthread_mutex_lock(&srv->mu);
    free(srv->repeat.body);
    srv->repeat.status = status;
    srv->repeat.body = xstrdup(body);
    srv->repeat.delay_ms = delay_ms;
    pthread_mutex_unlock(&srv->mu);
}

static int n_requests(void)
{
    pthread_mutex_lock(&srv->mu);
    int n = srv->n_req;
    pthread_mutex_unlock(&srv->mu);
    return n;
}

/* request_json -- the i-th recorded request body, parsed (caller decrefs). */
static json_t *request_json(int i)
{
    json_error_t e;
    pthread_mutex_lock(&srv->mu);
    assert_true(i < srv->n_req);
    json_t *j = json_loads(srv->bodies[i], 0, &e);
    pthread_mutex_unlock(&srv->mu);
    assert_non_null(j);
    return j;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            return; /* the client gave up (timeout): nothing to do */
        }
        p += k;
        n -= (size_t)k;
    }
}

/* reply -- head and body in one send: two small writes would meet Nagle's
 * algorithm and the client's delayed ACK, 40 ms per request. */
static void reply(int fd, int status, const char *body, const char *extra)
{
    const char *reason = status == 200 ? "OK" : status == 401 ? "Unauthorized"
                       : status == 429 ? "Too Many Requests"
                       : status == 500 ? "Internal Server Error" : "Error";
    size_t cap = strlen(body) + 512;
    char *msg = malloc(cap);
    int n = snprintf(msg, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n%s\r\n%s",
                     status, reason, strlen(body), extra ? extra : "", body);
    send_all(fd, msg, (size_t)n);
    free(msg);
}

/* echo_body -- a completion whose content is the last message's. */
static char *echo_body(const char *req)
{
    json_error_t e;
    json_t *j = json_loads(req, 0, &e);
    json_t *msgs = json_object_get(j, "messages");
    const char *last = json_string_value(
        json_object_get(json_array_get(msgs, json_array_size(msgs) - 1), "content"));
    char *b = envelope(last ? last : "(none)", 10, 5);
    json_decref(j);
    return b;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* read_request -- one request from fd into *buf; returns false when the
 * connection ends or the server stops. */
static bool read_request(int fd, char **path, char **auth, char **body)
{
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    char *hend = NULL;
    size_t clen = 0;
    *path = *auth = *body = NULL;
    for (;;) {
        if (hend && len >= (size_t)(hend - b) + 4 + clen)
            break;
        struct pollfd pf = { fd, POLLIN, 0 };
        int pr = poll(&pf, 1, 50);
        if (atomic_load(&srv->stop))
            goto fail;
        if (pr <= 0)
            continue;
        if (len + 4096 + 1 > cap) {
            cap *= 2;
            b = realloc(b, cap);
        }
        ssize_t k = recv(fd, b + len, cap - len - 1, 0);
        if (k <= 0)
            goto fail;
        len += (size_t)k;
        b[len] = '\0';
        if (!hend && (hend = strstr(b, "\r\n\r\n")) != NULL) {
            *hend = '\0';
            for (char *line = strstr(b, "\r\n"); line && line < hend;
                 line = strstr(line + 2, "\r\n")) {
                char *l = line + 2;
                if (strncasecmp(l, "Content-Length:", 15) == 0)
                    clen = strtoul(l + 15, NULL, 10);
                if (strncasecmp(l, "Authorization:", 14) == 0) {
                    char *v = l + 14, *e = strstr(v, "\r\n");
                    while (*v == ' ')
                        v++;
                    *auth = strndup(v, e ? (size_t)(e - v) : strlen(v));
                }
            }
            char *sp1 = strchr(b, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
            if (sp1 && sp2)
                *path = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
            *hend = '\r';
        }
    }
    *body = strndup(hend + 4, clen);
    free(b);
    return true;
fail:
    free(b);
    free(*auth);
    free(*path);
    *path = *auth = NULL;
    return false;
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *path, *auth, *body;
    while (read_request(fd, &path, &auth, &body)) {
        step st = { 0, NULL, 0, NULL };
        pthread_mutex_lock(&srv->mu);
        if (srv->n_req < MAX_REC) {
            srv->bodies[srv->n_req] = strdup(body);
            srv->paths[srv->n_req] = strdup(path ? path : "");
            srv->auths[srv->n_req] = xstrdup(auth);
        }
        srv->n_req++;
        if (srv->pos < srv->n_steps)
            st = srv->steps[srv->pos++];
        else if (srv->repeat.status)
            st = srv->repeat;
        st.body = xstrdup(st.body);
        pthread_mutex_unlock(&srv->mu);
        if (st.delay_ms)
            sleep_ms(st.delay_ms);
        if (st.status == 0) {
            char *b = echo_body(body);
            reply(fd, 200, b, NULL);
            free(b);
        } else {
            reply(fd, st.status, st.body, st.extra);
        }
        free(st.body);
        free(path);
        free(auth);
        free(body);
    }
    close(fd);
    return NULL;
}

static void *accept_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&srv->stop)) {
        struct pollfd pf = { srv->lfd, POLLIN, 0 };
        if (poll(&pf, 1, 50) <= 0)
            continue;
        int fd = accept(srv->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&srv->mu);
        if (srv->n_conn >= MAX_CONN) {
            pthread_mutex_unlock(&srv->mu);
            close(fd);
            continue;
        }
        pthread_create(&srv->conn_th[srv->n_conn++], NULL, conn_main,
                       (void *)(intptr_t)fd);
        pthread_mutex_unlock(&srv->mu);
    }
    return NULL;
}

static int listen_socket(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Captured warnings. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int n_warnings;
static char last_warning[512];

static void log_capture(enum log_level level, const char *msg, void *arg)
{
    (void)arg;
    if (level < LOG_WARN)
        return;
    pthread_mutex_lock(&log_mu);
    n_warnings++;
    snprintf(last_warning, sizeof last_warning, "%s", msg);
    pthread_mutex_unlock(&log_mu);
}

static int setup(void **state)
{
    memset(srv, 0, sizeof *srv);
    pthread_mutex_init(&srv->mu, NULL);
    srv->lfd = listen_socket(&srv->port);
    pthread_create(&srv->accept_th, NULL, accept_main, NULL);
    unsetenv("DM_LLM_API_KEY");
    unsetenv("DM_TEST_LLM_KEY");
    /* A proxy from the environment would take the fixture's traffic. */
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    n_warnings = 0;
    last_warning[0] = '\0';
    log_set_sink(log_capture, NULL);
    return 0;
}

static int teardown(void **state)
{
    atomic_store(&srv->stop, 1);
    pthread_join(srv->accept_th, NULL);
    for (int i = 0; i < srv->n_conn; i++)
        pthread_join(srv->conn_th[i], NULL);
    close(srv->lfd);
    for (int i = 0; i < srv->n_steps; i++)
        free(srv->steps[i].body);
    free(srv->repeat.body);
    for (int i = 0; i < srv->n_req && i < MAX_REC; i++) {
        free(srv->bodies[i]);
        free(srv->paths[i]);
        free(srv->auths[i]);
    }
    pthread_mutex_destroy(&srv->mu);
    log_set_sink(NULL, NULL);
    return 0;
}

static llm *open_client(uint32_t timeout_ms, uint32_t retries, const char *key_env)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/", srv->port);
    llm_config c = { .base_url = url, .model = "qwen2.5:3b-instruct",
                     .api_key_env = key_env, .timeout_ms = timeout_ms,
                     .retries = retries, .max_tokens = 512, .temperature = 0.2f };
    llm *l = NULL;
    assert_int_equal(llm_open(&c, &l), DM_OK);
    assert_non_null(l);
    return l;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int chat1(llm *l, const char *text, const char *schema, char **out)
{
    llm_msg m[2] = { { "system", "You are terse." }, { "user", text } };
    return llm_chat(l, m, 2, schema, out);
}

/* ---------------------------------------------------------- the client */

static void test_open_args(void **state)
{
    llm *l = (llm *)1;
    llm_config c = { .base_url = "http://127.0.0.1:1/v1", .model = "m" };
    assert_int_equal(llm_open(NULL, &l), DM_EINVAL);
    assert_null(l);
    assert_int_equal(llm_open(&c, NULL), DM_EINVAL);
    c.base_url = NULL;
    assert_int_equal(llm_open(&c, &l), DM_EINVAL);
    c.base_url = "ftp://127.0.0.1/v1";
    assert_int_equal(llm_open(&c, &l), DM_EINVAL);
    c.base_url = "https://api.example.com/v1";
    c.model = "";
    assert_int_equal(llm_open(&c, &l), DM_EINVAL);
    c.model = "m";
    c.temperature = -1.0f;
    assert_int_equal(llm_open(&c, &l), DM_EINVAL);
    c.temperature = 0.0f;
    assert_int_equal(llm_open(&c, &l), DM_OK);
    llm_usage u;
    llm_usage_get(l, &u);
    assert_int_equal(u.calls + u.failures + u.invalid, 0);
    llm_close(l);
    llm_close(NULL);
    assert_int_equal(n_requests(), 0);
}

static void test_chat_request_body(void **state)
{
    static const char schema[] =
        "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},"
        "\"required\":[\"a\"],\"additionalProperties\":false}";
    llm *l = open_client(2000, 0, NULL);
    script(200, REC_HELLO, 0, NULL);
    char *out = NULL;
    assert_int_equal(chat1(l, "hi, caf\xc3\xa9", schema, &out), DM_OK);
    assert_string_equal(out, "Hello! How can I help?");
    dm_free(out);
    assert_int_equal(n_requests(), 1);
    assert_string_equal(srv->paths[0], "/v1/chat/completions");
    assert_null(srv->auths[0]); /* no key in the environment */
    json_t *j = request_json(0);
    assert_string_equal(json_string_value(json_object_get(j, "model")),
                        "qwen2.5:3b-instruct");
    json_t *msgs = json_object_get(j, "messages");
    assert_int_equal(json_array_size(msgs), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "role")),
                        "system");
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "content")),
                        "hi, caf\xc3\xa9");
    assert_true(json_real_value(json_object_get(j, "temperature")) == 0.2);
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 512);
    assert_true(json_is_false(json_object_get(j, "stream")));
    json_t *rf = json_object_get(j, "response_format");
    assert_string_equal(json_string_value(json_object_get(rf, "type")), "json_schema");
    json_t *js = json_object_get(rf, "json_schema");
    assert_true(json_is_true(json_object_get(js, "strict")));
    assert_non_null(json_string_value(json_object_get(js, "name")));
    json_error_t e;
    json_t *want = json_loads(schema, 0, &e);
    assert_true(json_equal(json_object_get(js, "schema"), want));
    json_decref(want);
    json_decref(j);

    /* Without a schema, no response_format. */
    assert_int_equal(chat1(l, "echo me", NULL, &out), DM_OK);
    assert_string_equal(out, "echo me");
    dm_free(out);
    j = request_json(1);
    assert_null(json_object_get(j, "response_format"));
    json_decref(j);

    llm_usage u;
    llm_usage_get(l, &u);
    assert_int_equal(u.calls, 2);
    assert_int_equal(u.failures, 0);
    llm_close(l);
}

static void test_chat_bad_args(void **state)
{
    llm *l = open_client(2000, 0, NULL);
    char *out = (char *)1;
    llm_msg m[1] = { { "user", "x" } };
    assert_int_equal(llm_chat(l, m, 0, NULL, &out), DM_EINVAL);
    assert_null(out);
    assert_int_equal(llm_chat(l, NULL, 1, NULL, &out), DM_EINVAL);
    assert_int_equal(llm_chat(l, m, 1, "{not json", &out), DM_EINVAL);
    assert_int_equal(llm_chat(l, m, 1, "[1, 2]", &out), DM_EINVAL);
    llm_msg bad[1] = { { "user", "caf\xc3(" } };
    assert_int_equal(llm_chat(l, bad, 1, NULL, &out), DM_EINVAL);
    llm_msg norole[1] = { { NULL, "x" } };
    assert_int_equal(llm_chat(l, norole, 1, NULL, &out), DM_EINVAL);
    assert_null(out);
    assert_int_equal(n_requests(), 0);
    llm_close(l);
}

static void test_auth_header(void **state)
{
    setenv("DM_TEST_LLM_KEY", "sk-test-123", 1);
    llm *l = open_client(2000, 0, "DM_TEST_LLM_KEY");
    char *out = NULL;
    assert_int_equal(chat1(l, "a", NULL, &out), DM_OK);
    dm_free(out);
    llm_close(l);
    /* The default variable. */
    setenv("DM_LLM_API_KEY", "sk-default", 1);
    l = open_client(2000, 0, NULL);
    assert_int_equal(chat1(l, "b", NULL, &out), DM_OK);
    dm_free(out);
    llm_close(l);
    assert_int_equal(n_requests(), 2);
    assert_string_equal(srv->auths[0], "Bearer sk-test-123");
    assert_string_equal(srv->auths[1], "Bearer sk-default");
}

static void test_usage_tokens(void **state)
{
    llm *l = open_client(2000, 0, NULL);
    script_content("one", 100, 20);
    script_content("two", 50, 7);
    script(200, REC_HELLO, 0, NULL);
    char *out = NULL;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(chat1(l, "q", NULL, &out), DM_OK);
        dm_free(out);
    }
    llm_usage u;
    llm_usage_get(l, &u);
    assert_int_equal(u.calls, 3);
    assert_int_equal(u.prompt_tokens, 176);
    assert_int_equal(u.completion_tokens, 35);
    assert_int_equal(u.failures, 0);
    llm_close(l);
}

static void test_retry_5xx_and_429(void **state)
{
    llm *l = open_client(2000, 0, NULL); /* retries 0 = 2 */
    script(500, "{\"error\":\"model is loading\"}", 0, NULL);
    script_content("after 500", 1, 1);
    char *out = NULL;
    assert_int_equal(chat1(l, "q", NULL, &out), DM_OK);
    assert_string_equal(out, "after 500");
    dm_free(out);
    assert_int_equal(n_requests(), 2);

    /* Retry-After is honoured: one second instead of the 100 ms backoff. */
    script(429, "{\"error\":\"rate limited\"}", 0, "Retry-After: 1\r\n");
    script_content("after 429", 1, 1);
    uint64_t t0 = now_ms();
    assert_int_equal(chat1(l, "q", NULL, &out), DM_OK);
    assert_true(now_ms() - t0 >= 950);
    assert_string_equal(out, "after 429");
    dm_free(out);
    assert_int_equal(n_requests(), 4);

    /* Three 503s in a row: 1 + 2 attempts, then the error. */
    script(503, "{\"error\":\"overloaded\"}", 0, NULL);
    script(503, "{\"error\":\"overloaded\"}", 0, NULL);
    script(503, "{\"error\":\"overloaded\"}", 0, NULL);
    assert_int_equal(chat1(l, "q", NULL, &out), DM_EIO);
    assert_null(out);
    assert_non_null(strstr(err_last_msg(), "503"));
    assert_int_equal(n_requests(), 7);
    llm_usage u;
    llm_usage_get(l, &u);
    assert_int_equal(u.calls, 2);
    assert_int_equal(u.failures, 1);
    llm_close(l);
}

static void test_401_not_retried(void **state)
{
    llm *l = open_client(2000, 2, NULL);
    script(401, "{\"error\":{\"message\":\"Incorrect API key provided\"}}", 0, NULL);
    char *out = NULL;
    assert_int_equal(chat1(l, "q", NULL, &out), DM_EIO);
    assert_null(out);
    const char *m = err_last_msg();
    assert_non_null(strstr(m, "401"));
    assert_non_null(strstr(m, "/v1/chat/completions"));
    assert_non_null(strstr(m, "Incorrect API key"));
    assert_int_equal(n_requests(), 1);
    llm_usage u;
    llm_usage_get(l, &u);
    assert_int_equal(u.failures, 1);
    assert_int_equal(u.calls, 0);
    llm_close(l);
}

static void test_timeout(void **state)
{
    llm *l = open_client(200, 1, NULL);
    script_repeat(200, REC_HELLO, 600);
    char *out = NULL;
    uint64_t t0 = now_ms();
    assert_int_equal(chat1(l, "q", NULL, &out), DM_ECANCELED);
    uint64_t took = now_ms() - t0;
    assert_null(out);
    assert_non_null(strstr(err_last_msg(), "timed out"));
    assert_true(took >= 450);  /* two attempts of 200 ms and a backoff */
    assert_true(took < 3000);
    assert_int_equal(n_requests(), 2);
    llm_close(l);
}

static void test_bad_replies(void **state)
{
    llm *l = open_client(2000, 2, NULL);
    char *out = NULL;
    script(200, "{\"choices\":[]}", 0, NULL);
    assert_int_equal(chat1(l, "q", NULL, &out), DM_EIO);
    assert_non_null(strstr(err_last_msg(), "choices[0].message.content"));
    script(200, "<html>proxy error</html>", 0, NULL);
    assert_int_equal(chat1(l, "q", NULL, &out), DM_EIO);
    assert_non_null(strstr(err_last_msg(), "proxy error"));
    script(200, "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,"
                "\"refusal\":\"I can't\"}}]}", 0, NULL);
    assert_int_equal(chat1(l, "q", NULL, &out), DM_EIO);
    assert_null(out);
    /* Malformed 2xx replies are not retried. */
    assert_int_equal(n_requests(), 3);
    llm_close(l);

    /* Nobody listening: connection errors are retried, then DM_EIO. */
    int port;
    int fd = listen_socket(&port);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", port);
    llm_config c = { .base_url = url, .model = "m", .timeout_ms = 500, .retries = 1 };
    assert_int_equal(llm_open(&c, &l), DM_OK);
    assert_int_equal(chat1(l, "q", NULL, &out), DM_EIO);
    assert_non_null(strstr(err_last_msg(), url));
    llm_usage u;
    llm_usage_get(l, &u);
    assert_int_equal(u.failures, 1);
    llm_close(l);
}

typedef struct worker {
    llm *l;
    int id, ok;
} worker;

#define N_THREADS 4
#define N_PER_THREAD 12

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < N_PER_THREAD; i++) {
        char q[64];
        snprintf(q, sizeof q, "thread %d call %d", w->id, i);
        char *out = NULL;
        if (chat1(w->l, q, NULL, &out) == DM_OK && strcmp(out, q) == 0)
            w->ok++;
        dm_free(out);
    }
    return NULL;
}

static void test_concurrent_chat(void **state)
{
    llm *l = open_client(5000, 0, NULL);
    pthread_t th[N_THREADS];
    worker w[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        w[i] = (worker){ l, i, 0 };
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].ok, N_PER_THREAD);
    }
    llm_usage u;
    llm_usage_get(l, &u);
    assert_int_equal(u.calls, N_THREADS * N_PER_THREAD);
    assert_int_equal(u.prompt_tokens, 10 * N_THREADS * N_PER_THREAD);
    assert_int_equal(u.completion_tokens, 5 * N_THREADS * N_PER_THREAD);
    assert_int_equal(u.failures, 0);
    assert_int_equal(n_requests(), N_THREADS * N_PER_THREAD);
    llm_close(l);
}

/* ------------------------------------------------------- the extractor */

#define TURN_US (INT64_C(1683559800) * 1000000) /* 2023-05-08T15:30:00Z */
#define DAY_US (INT64_C(86400) * 1000000)
#define MAY6_US (INT64_C(1683331200) * 1000000)  /* 2023-05-06 */

static char *s_dup(const char *s)
{
    char *d = dm_strdup(s);
    assert_non_null(d);
    return d;
}

/* The built-in extractor's result stand-in: what a fallback must copy. */
static void make_builtin(ex_result *b)
{
    memset(b, 0, sizeof *b);
    b->facts = dm_calloc(1, sizeof *b->facts);
    b->n_facts = 1;
    b->facts[0] = (ex_fact){ s_dup(""), s_dup("location.city"), s_dup("Denver"),
                             s_dup("Austin"), EX_ASSERTED, 0.6f, TURN_US, { 14, 6 } };
    b->events = dm_calloc(1, sizeof *b->events);
    b->n_events = 1;
    b->events[0].type = EX_EV_MILESTONE;
    b->events[0].what = s_dup("moved");
    b->events[0].who = dm_calloc(1, sizeof(char *));
    b->events[0].who[0] = s_dup("Ann");
    b->events[0].n_who = 1;
    b->events[0].from_us = MAY6_US;
    b->events[0].to_us = MAY6_US + DAY_US;
    b->events[0].has_time = true;
    b->events[0].confidence = 0.7f;
    b->entities = dm_calloc(2, sizeof *b->entities);
    b->n_entities = 2;
    b->entities[0] = (ex_entity){ s_dup("Austin"), EX_ENT_PLACE, 0.9f, { 13, 6 } };
    b->entities[1] = (ex_entity){ s_dup("Acme Corp"), EX_ENT_ORG, 0.8f, { 78, 9 } };
    b->relations = dm_calloc(1, sizeof *b->relations);
    b->n_relations = 1;
    b->relations[0] = (ex_relation){ s_dup(""), s_dup("works_at"), s_dup("Acme Corp"),
                                     0.8f, { 63, 24 } };
}

static void assert_same_result(const ex_result *a, const ex_result *b)
{
    assert_int_equal(a->n_facts, b->n_facts);
    for (size_t i = 0; i < a->n_facts; i++) {
        assert_ptr_not_equal(a->facts[i].value, b->facts[i].value); /* a copy */
        assert_string_equal(a->facts[i].subject, b->facts[i].subject);
        assert_string_equal(a->facts[i].slot, b->facts[i].slot);
        assert_string_equal(a->facts[i].value, b->facts[i].value);
        assert_string_equal(a->facts[i].prev_value, b->facts[i].prev_value);
        assert_int_equal(a->facts[i].polarity, b->facts[i].polarity);
        assert_true(a->facts[i].confidence == b->facts[i].confidence);
        assert_int_equal(a->facts[i].valid_from_us, b->facts[i].valid_from_us);
        assert_int_equal(a->facts[i].span.off, b->facts[i].span.off);
    }
    assert_int_equal(a->n_events, b->n_events);
    for (size_t i = 0; i < a->n_events; i++) {
        assert_string_equal(a->events[i].what, b->events[i].what);
        assert_int_equal(a->events[i].n_who, b->events[i].n_who);
        for (size_t k = 0; k < a->events[i].n_who; k++)
            assert_string_equal(a->events[i].who[k], b->events[i].who[k]);
        assert_int_equal(a->events[i].from_us, b->events[i].from_us);
        assert_int_equal(a->events[i].to_us, b->events[i].to_us);
    }
    assert_int_equal(a->n_entities, b->n_entities);
    for (size_t i = 0; i < a->n_entities; i++) {
        assert_string_equal(a->entities[i].name, b->entities[i].name);
        assert_int_equal(a->entities[i].type, b->entities[i].type);
    }
    assert_int_equal(a->n_relations, b->n_relations);
    for (size_t i = 0; i < a->n_relations; i++) {
        assert_string_equal(a->relations[i].src, b->relations[i].src);
        assert_string_equal(a->relations[i].rel, b->relations[i].rel);
        assert_string_equal(a->relations[i].dst, b->relations[i].dst);
    }
}

static ex_input turn_input(void)
{
    ex_input in = { .text = TURN_TEXT, .len = sizeof TURN_TEXT - 1, .role = "user",
                    .time_us = TURN_US };
    return in;
}

static const ex_entity *find_entity(const ex_result *r, const char *name)
{
    for (size_t i = 0; i < r->n_entities; i++)
        if (strcmp(r->entities[i].name, name) == 0)
            return &r->entities[i];
    return NULL;
}

static void test_extract_valid(void **state)
{
    llm *l = open_client(2000, 0, NULL);
    script_content(OUT_VALID, 900, 300);
    ex_result b, r;
    make_builtin(&b);
    ex_input in = turn_input();
    bool used = false;
    assert_int_equal(llm_extract(l, &in, &b, 0, &r, &used), DM_OK);
    assert_true(used);
    assert_int_equal(r.n_facts, 3);
    const ex_fact *f = &r.facts[0];
    assert_string_equal(f->subject, "");
    assert_string_equal(f->slot, "location.city");
    assert_string_equal(f->value, "Denver");
    assert_string_equal(f->prev_value, "Austin");
    assert_int_equal(f->polarity, EX_ASSERTED);
    assert_true(f->confidence > 0.899f && f->confidence < 0.901f);
    assert_int_equal(f->valid_from_us, MAY6_US);
    assert_int_equal(f->span.off, 23); /* "Denver" in the text */
    assert_int_equal(f->span.len, 6);
    assert_null(r.facts[1].prev_value);
    assert_int_equal(r.facts[1].valid_from_us, TURN_US);
    assert_string_equal(r.facts[2].value, "Acme Corp");
    assert_int_equal(r.n_events, 1);
    const ex_event *e = &r.events[0];
    assert_int_equal(e->type, EX_EV_MILESTONE);
    assert_string_equal(e->what, "moved from Austin to Denver");
    assert_int_equal(e->n_who, 1);
    assert_string_equal(e->who[0], "Ann");
    assert_int_equal(e->from_us, MAY6_US);
    assert_int_equal(e->to_us, MAY6_US + DAY_US);
    assert_true(e->has_time);
    assert_int_equal(r.n_relations, 3);
    assert_string_equal(r.relations[2].rel, "works_at");
    assert_string_equal(r.relations[2].dst, "Acme Corp");
    /* Entities: the built-in ones first, then those the answer names. */
    assert_string_equal(r.entities[0].name, "Austin");
    assert_string_equal(r.entities[1].name, "Acme Corp");
    assert_int_equal(find_entity(&r, "Denver")->type, EX_ENT_PLACE);
    assert_int_equal(find_entity(&r, "Ann")->type, EX_ENT_PERSON);
    assert_int_equal(r.n_entities, 4);

    /* The request: the prompt with the taxonomy and the turn's time, the
     * text as the user message, the schema with the slot list. */
    json_t *j = request_json(0);
    json_t *msgs = json_object_get(j, "messages");
    assert_int_equal(json_array_size(msgs), 2);
    const char *sys = json_string_value(json_object_get(json_array_get(msgs, 0), "content"));
    assert_non_null(strstr(sys, "2023-05-08T15:30:00Z"));
    assert_non_null(strstr(sys, "Monday"));
    assert_non_null(strstr(sys, "location.city"));
    assert_non_null(strstr(sys, "grandmother"));
    assert_non_null(strstr(sys, "correction"));
    assert_non_null(strstr(sys, "milestone"));
    assert_non_null(strstr(sys, "studied_at"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "content")),
                        TURN_TEXT);
    json_t *schema = json_object_get(json_object_get(json_object_get(j, "response_format"),
                                                     "json_schema"), "schema");
    json_t *fprops = json_object_get(json_object_get(json_object_get(
        json_object_get(schema, "properties"), "facts"), "items"), "properties");
    json_t *slots = json_object_get(json_object_get(fprops, "slot"), "enum");
    bool has_family = false, has_diet = false;
    for (size_t i = 0; i < json_array_size(slots); i++) {
        const char *s = json_string_value(json_array_get(slots, i));
        assert_true(ex_slot_known(s));
        has_family |= strcmp(s, "family.nephew") == 0;
        has_diet |= strcmp(s, "diet") == 0;
    }
    assert_true(has_family && has_diet);
    json_t *req = json_object_get(json_object_get(json_object_get(
        json_object_get(schema, "properties"), "events"), "items"), "required");
    assert_int_equal(json_array_size(req), 7);
    json_decref(j);

    llm_usage u;
    llm_usage_get(l, &u);
    assert_int_equal(u.invalid, 0);
    assert_int_equal(u.prompt_tokens, 900);
    assert_int_equal(n_warnings, 0);
    ex_result_free(&r);
    ex_result_free(&b);
    llm_close(l);
}

/* The turns before the turn go into the prompt, oldest first, so that an
 * elliptical turn can be read. */
static void test_extract_context(void **state)
{
    llm *l = open_client(2000, 0, NULL);
    script_content(OUT_VALID, 900, 300);
    ex_result b, r;
    make_builtin(&b);
    ex_input in = turn_input();
    ex_turn ctx[2] = { { .text = "I'm allergic to peanuts.", .role = "user",
                         .time_us = TURN_US - 60000000 },
                       { .text = "Noted! Anything else?", .role = "assistant",
                         .time_us = TURN_US - 30000000 } };
    in.context = ctx;
    in.n_context = 2;
    bool used = false;
    assert_int_equal(llm_extract(l, &in, &b, 0, &r, &used), DM_OK);
    json_t *j = request_json(0);
    json_t *msgs = json_object_get(j, "messages");
    const char *sys = json_string_value(json_object_get(json_array_get(msgs, 0), "content"));
    const char *a = strstr(sys, "user: I'm allergic to peanuts.");
    const char *c = strstr(sys, "assistant: Noted! Anything else?");
    assert_non_null(a);
    assert_non_null(c);
    assert_true(a < c);
    /* The turn itself is still the user message. */
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "content")),
                        TURN_TEXT);
    json_decref(j);
    ex_result_free(&r);
    ex_result_free(&b);
    llm_close(l);
}

static void test_extract_malformed_then_valid(void **state)
{
    llm *l = open_client(2000, 0, NULL);
    script_content(OUT_TRUNCATED, 900, 512);
    script_content(OUT_VALID, 1000, 300);
    ex_result b, r;
    make_builtin(&b);
    ex_input in = turn_input();
    bool used = false;
    assert_int_equal(llm_extract(l, &in, &b, 0, &r, &used), DM_OK);
    assert_true(used);
    assert_int_equal(r.n_facts, 3);
    assert_string_equal(r.facts[0].value, "Denver");
    llm_usage u;
    llm_usage_get(l, &u);
    assert_int_equal(u.invalid, 1);
    assert_int_equal(u.calls, 2);
    assert_int_equal(u.prompt_tokens, 1900);
    assert_int_equal(u.completion_tokens, 812);
    /* The second request shows the model its answer and what was wrong. */
    assert_int_equal(n_requests(), 2);
    json_t *j = request_json(1);
    json_t *msgs = json_object_get(j, "messages");
    assert_int_equal(json_array_size(msgs), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 2), "role")),
                        "assistant");
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 2), "content")),
                        OUT_TRUNCATED);
    const char *fb = json_string_value(json_object_get(json_array_get(msgs, 3), "content"));
    assert_non_null(strstr(fb, "not valid JSON"));
    json_decref(j);
    ex_result_free(&r);
    ex_result_free(&b);
    llm_close(l);
}

static void test_extract_fallback_unknown_slot(void **state)
{
    llm *l = open_client(2000, 0, NULL);
    char *env = envelope(OUT_UNKNOWN_SLOT, 10, 10);
    script_repeat(200, env, 0);
    free(env);
    ex_result b, r;
    make_builtin(&b);
    ex_input in = turn_input();
    bool used = true;
    assert_int_equal(llm_extract(l, &in, &b, 3, &r, &used), DM_OK);
    assert_false(used);
    assert_same_result(&r, &b);
    llm_usage u;
    llm_usage_get(l, &u);
    assert_int_equal(u.invalid, 3);
    assert_int_equal(n_requests(), 3);
    assert_int_equal(n_warnings, 1);
    assert_non_null(strstr(last_warning, "residence"));
    json_t *j = request_json(2);
    const char *fb = json_string_value(json_object_get(
        json_array_get(json_object_get(j, "messages"), 3), "content"));
    assert_non_null(strstr(fb, "facts[0].slot \"residence\""));
    json_decref(j);
    ex_result_free(&r);
    assert_null(r.facts);
    ex_result_free(&b);
    llm_close(l);
}

static void test_extract_server_error_fallback(void **state)
{
    llm *l = open_client(2000, 0, NULL);
    script_repeat(401, "{\"error\":\"no key\"}", 0);
    ex_result b, r;
    make_builtin(&b);
    ex_input in = turn_input();
    bool used = true;
    assert_int_equal(llm_extract(l, &in, &b, 4, &r, &used), DM_OK);
    assert_false(used);
    assert_same_result(&r, &b);
    assert_int_equal(n_requests(), 1); /* a server error ends the attempts */
    assert_non_null(strstr(last_warning, "401"));
    llm_usage u;
    llm_usage_get(l, &u);
    assert_int_equal(u.invalid, 0);
    assert_int_equal(u.failures, 1);
    ex_result_free(&r);
    /* No built-in result: an empty one. */
    assert_int_equal(llm_extract(l, &in, NULL, 1, &r, &used), DM_OK);
    assert_false(used);
    assert_int_equal(r.n_facts + r.n_events + r.n_entities + r.n_relations, 0);
    assert_null(r.facts);
    ex_result_free(&b);
    llm_close(l);
}

/* One-item answers, each invalid for one reason. */
#define FACT(s, v, pol, c, vf)                                                     \
    "{\"facts\":[{\"subject\":\"\",\"slot\":\"" s "\",\"value\":" v ",\"prev_value\":" \
    "null,\"polarity\":" pol ",\"confidence\":" c ",\"valid_from\":" vf "}],"     \
    "\"events\":[],\"relations\":[]}"
#define EVENT(t, what, from, to, ht)                                               \
    "{\"facts\":[],\"events\":[{\"type\":" t ",\"what\":" what ",\"who\":[],"      \
    "\"from\":" from ",\"to\":" to ",\"has_time\":" ht ",\"confidence\":0.8}],"    \
    "\"relations\":[]}"
#define REL(src, rel, dst, c)                                                      \
    "{\"facts\":[],\"events\":[],\"relations\":[{\"src\":" src ",\"rel\":" rel     \
    ",\"dst\":" dst ",\"confidence\":" c "}]}"

static const struct {
    const char *out, *why;
} INVALID[] = {
    { FACT("diet", "\"vegan\"", "\"asserted\"", "1.5", "null"), "confidence" },
    { FACT("diet", "\"vegan\"", "\"asserted\"", "-0.1", "null"), "confidence" },
    { FACT("diet", "\"vegan\"", "\"asserted\"", "\"high\"", "null"), "confidence" },
    { FACT("diet", "\"  \"", "\"asserted\"", "0.9", "null"), "value is empty" },
    { FACT("diet", "null", "\"asserted\"", "0.9", "null"), "value must be" },
    { FACT("diet", "\"vegan\"", "\"maybe\"", "0.9", "null"), "polarity" },
    { FACT("family.butler", "\"Jeeves\"", "\"asserted\"", "0.9", "null"), "slot" },
    { FACT("diet", "\"vegan\"", "\"asserted\"", "0.9", "\"2023-02-30\""), "ISO 8601" },
    { FACT("diet", "\"vegan\"", "\"asserted\"", "0.9", "\"last May\""), "ISO 8601" },
    { EVENT("\"party\"", "\"went out\"", "null", "null", "false"), "type" },
    { EVENT("\"activity\"", "\"\"", "null", "null", "false"), "what is empty" },
    { EVENT("\"activity\"", "\"hiked\"", "\"2023-05-07\"", "\"2023-05-06\"", "true"),
      "before" },
    { EVENT("\"activity\"", "\"hiked\"", "\"2023-05-07\"", "\"2023-05-07\"", "true"),
      "before" },
    { EVENT("\"activity\"", "\"hiked\"", "null", "null", "true"), "has_time" },
    { EVENT("\"activity\"", "\"hiked\"", "null", "\"2023-05-07\"", "true"), "without" },
    { EVENT("\"activity\"", "\"hiked\"", "\"2023-13-01\"", "null", "true"), "ISO 8601" },
    { EVENT("\"activity\"", "\"hiked\"", "null", "null", "\"no\""), "has_time" },
    { REL("\"\"", "\"knows\"", "\"Ann\"", "0.9"), "relation type" },
    { REL("\"\"", "\"works_at\"", "\"\"", "0.9"), "itself" },
    { REL("\"\"", "\"works_at\"", "\"Acme\"", "2"), "confidence" },
    { "{\"facts\":[],\"events\":[]}", "\"relations\" must be an array" },
    { "{\"facts\":{},\"events\":[],\"relations\":[]}", "\"facts\" must be an array" },
    { "{\"facts\":[1],\"events\":[],\"relations\":[]}", "facts[0] must be an object" },
    { "[]", "not a JSON object" },
    { "I could not find any facts.", "not a JSON object" },
};

static void test_extract_validation(void **state)
{
    llm *l = open_client(2000, 0, NULL);
    ex_result b, r;
    make_builtin(&b);
    ex_input in = turn_input();
    size_t n = sizeof INVALID / sizeof *INVALID;
    for (size_t i = 0; i < n; i++) {
        script_content(INVALID[i].out, 1, 1);
        script_content(OUT_VALID, 1, 1);
        bool used = false;
        assert_int_equal(llm_extract(l, &in, &b, 2, &r, &used), DM_OK);
        if (!used)
            print_error("case %zu was taken as invalid twice\n", i);
        assert_true(used);
        ex_result_free(&r);
        json_t *j = request_json((int)(2 * i + 1));
        const char *fb = json_string_value(json_object_get(
            json_array_get(json_object_get(j, "messages"), 3), "content"));
        if (!fb || !strstr(fb, INVALID[i].why))
            print_error("case %zu: feedback \"%s\" lacks \"%s\"\n", i,
                        fb ? fb : "(none)", INVALID[i].why);
        assert_non_null(fb);
        assert_non_null(strstr(fb, INVALID[i].why));
        json_decref(j);
    }
    llm_usage u;
    llm_usage_get(l, &u);
    assert_int_equal(u.invalid, n);
    assert_int_equal(n_warnings, 0);
    ex_result_free(&b);
    llm_close(l);
}

static void test_extract_conversions(void **state)
{
    llm *l = open_client(2000, 0, NULL);
    script_content(OUT_FENCED, 1, 1);
    static const char text[] = "Caroline doesn't paint anymore. Planning Japan in July!";
    ex_input in = { .text = text, .len = sizeof text - 1, .speaker = "Caroline",
                    .role = "assistant", .time_us = TURN_US };
    ex_result r;
    bool used = false;
    assert_int_equal(llm_extract(l, &in, NULL, 1, &r, &used), DM_OK);
    assert_true(used);
    assert_int_equal(r.n_facts, 1);
    const ex_fact *f = &r.facts[0];
    assert_string_equal(f->subject, "");    /* the speaker's own name */
    assert_string_equal(f->value, "painting"); /* trimmed */
    assert_null(f->prev_value);             /* "" is no value */
    assert_int_equal(f->polarity, EX_NEGATED);
    assert_true(f->confidence > 0.449f && f->confidence < 0.451f); /* assistant */
    /* 09:15 at +02:00 is 07:15 UTC. */
    assert_int_equal(f->valid_from_us, TURN_US - (8 * 3600 + 15 * 60) * INT64_C(1000000));
    assert_int_equal(f->span.off, 0);       /* not in the text: the whole turn */
    assert_int_equal(f->span.len, sizeof text - 1);
    assert_int_equal(r.n_events, 2);
    const ex_event *e = &r.events[0];
    assert_int_equal(e->n_who, 0);          /* "I" is the user */
    assert_null(e->who);
    assert_false(e->has_time);
    assert_int_equal(e->from_us, TURN_US - (15 * 3600 + 30 * 60) * INT64_C(1000000));
    assert_int_equal(e->to_us, e->from_us + DAY_US);
    e = &r.events[1];
    assert_int_equal(e->type, EX_EV_PLAN);
    assert_true(e->has_time);
    assert_int_equal(e->from_us, INT64_C(1688169600) * 1000000); /* 2023-07-01 */
    assert_int_equal(e->to_us, INT64_C(1690848000) * 1000000);   /* 2023-08-01 */
    assert_null(r.entities); /* a negated value names no entity */
    assert_null(r.relations);
    /* The prompt says who spoke. */
    json_t *j = request_json(0);
    const char *sys = json_string_value(json_object_get(
        json_array_get(json_object_get(j, "messages"), 0), "content"));
    assert_non_null(strstr(sys, "said by the assistant"));
    assert_non_null(strstr(sys, "Caroline"));
    json_decref(j);
    ex_result_free(&r);
    llm_close(l);
}

/* Every allocation of an extraction fails in turn, once (the built-in
 * copy then succeeds) and from then on (it fails too): the result is the
 * LLM's, the built-in copy, or empty with DM_ENOMEM -- never half-filled,
 * never leaked (the sanitizer build checks the last part). */
static void test_extract_oom(void **state)
{
    llm *l = open_client(2000, 0, NULL);
    char *env = envelope(OUT_VALID, 1, 1);
    script_repeat(200, env, 0);
    free(env);
    ex_result b, r;
    make_builtin(&b);
    ex_input in = turn_input();
    for (int persistent = 0; persistent <= 1; persistent++) {
        int n_llm = 0, n_fallback = 0, n_nomem = 0;
        for (int64_t k = 1; k < 400; k++) {
            bool used = false;
            int64_t before = alloc_failures();
            alloc_fail_after(k, persistent);
            int rc = llm_extract(l, &in, &b, 1, &r, &used);
            alloc_fail_after(0, 0);
            bool injected = alloc_failures() > before;
            if (rc == DM_ENOMEM) {
                assert_true(injected);
                assert_false(used);
                assert_int_equal(r.n_facts + r.n_events + r.n_entities + r.n_relations, 0);
                assert_null(r.facts);
                n_nomem++;
            } else {
                assert_int_equal(rc, DM_OK);
                if (used) {
                    assert_int_equal(r.n_facts, 3);
                    assert_int_equal(r.n_entities, 4);
                    n_llm++;
                } else {
                    assert_true(injected);
                    assert_same_result(&r, &b);
                    n_fallback++;
                }
            }
            ex_result_free(&r);
            if (!injected)
                break; /* k is past the last allocation */
        }
        assert_int_equal(n_llm, 1); /* only the run without a failure */
        if (persistent) {
            assert_true(n_nomem > 0);
        } else {
            assert_int_equal(n_nomem, 0);
            assert_true(n_fallback > 10);
        }
    }
    ex_result_free(&b);
    llm_close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_request_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_5xx_and_429, setup, teardown),
        cmocka_unit_test_setup_teardown(test_401_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_chat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract_context, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract_malformed_then_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract_fallback_unknown_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract_server_error_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract_conversions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract_oom, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
