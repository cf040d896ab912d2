/*
 * fuzz_http.c -- fuzz target for the HTTP server's request handling
 * (src/server/http.c and the route handlers behind it): request line,
 * headers, percent-decoding, routing, body limits, the JSON parse and the
 * argument helpers.
 *
 * The input is the raw bytes of one or more HTTP/1.1 requests.  One
 * in-process server over a fresh database (the tiny test model, small
 * limits) is started at the first input and serves every input after it.
 * Each input is written to a new loopback connection with a
 * "Connection: close" header added after its first line (so that the
 * server closes once the first request is answered) and, when it holds no
 * blank line, one appended (so that its headers end).  The harness reads
 * until the server closes; a server that stays silent for QUIET_MS is
 * waiting for bytes the input does not have, and the harness hangs up.
 * The contract it checks:
 *
 *   - a response, once begun, ends within IO_S seconds;
 *   - whatever it sent is a sequence of well-formed HTTP/1.x responses:
 *     a status line with a three-digit status, headers, and exactly the
 *     body its Content-Length or chunked framing announces;
 *   - no status is a 5xx other than 503 (and 505, the HTTP layer's answer
 *     to an unknown protocol version, which has no JSON body);
 *   - a body whose type is application/json parses, and an error status
 *     carries an object with an "error" member (every dialect has one);
 *   - at the first input and every 1000 after it, GET /v1/health on a
 *     fresh connection is 200.
 *
 * Each input with a header block also runs a second time with its framing
 * repaired: Content-Length and Transfer-Encoding headers dropped and a
 * Content-Length that matches the bytes after the blank line inserted.
 * Mutations of a body then reach the JSON parser and the handlers instead
 * of being cut off by a length that no longer fits.
 *
 * The server, its database and the scratch directory live until exit.
 */
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "deltamemory.h"
#include "fuzz_util.h"
#include "server/server.h"
#include "tinymodel.h"

#define IO_S 10.0             /* a response slower than this is a hang */
#define QUIET_MS 100          /* silence that means "waiting for more input" */
#define HEALTH_EVERY 1000
#define MAX_INPUT (256u << 10) /* longer inputs are cut: the body limit is 8 KiB */

static struct {
    bool is_up;
    char dir[512];
    dm_db *db;
    http_server *srv;
    uint16_t port;
    unsigned long n_inputs;
} G;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

static void shutdown_server(void)
{
    if (!G.is_up)
        return;
    G.is_up = false;
    http_stop(G.srv, 2000);
    dm_close(G.db);
    nftw(G.dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    /* The tiny model's directory is this process's too. */
    const char *m = tm_default_model();
    const char *slash = strrchr(m, '/');
    if (slash && strstr(m, "/tinymodel.")) {
        char d[1024];
        snprintf(d, sizeof d, "%.*s", (int)(slash - m), m);
        nftw(d, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    }
}

static void start_server(void)
{
    snprintf(G.dir, sizeof G.dir, "%.400s/dm-fuzz-http.XXXXXX", fuzz_tmp_base());
    FUZZ_CHECKF(mkdtemp(G.dir) != NULL, "mkdtemp %s: %s", G.dir, strerror(errno));
    if (!getenv("DM_TEST_TMPDIR"))
        setenv("DM_TEST_TMPDIR", fuzz_tmp_base(), 0);
    dm_options o;
    tm_options(&o);
    int rc = dm_open(G.dir, &o, &G.db);
    FUZZ_CHECKF(rc == DM_OK, "dm_open: %s (%s)", dm_errname(rc), dm_errmsg());
    http_config c;
    http_config_init(&c);
    c.port = 0;
    c.n_threads = 2;
    c.timeout_s = 2;
    c.max_body_len = 8192;
    c.max_text_len = 2048;
    c.max_batch = 16;
    c.max_top_k = 50;
    c.max_depth = 8;
    c.rate_per_s = -1;
    c.data_dir = G.dir;
    rc = http_start(G.db, &c, &G.srv);
    FUZZ_CHECKF(rc == DM_OK, "http_start: %s (%s)", dm_errname(rc), dm_errmsg());
    G.port = http_port(G.srv);
    G.is_up = true;
    atexit(shutdown_server);
}

/* ------------------------------------------------------------ transport */

/* Whether buf holds at least one whole response (headers, and the body
 * its Content-Length or chunked framing announces). */
static bool has_response(const char *buf, size_t n)
{
    const char *eoh = memmem(buf, n, "\r\n\r\n", 4);
    if (!eoh)
        return false;
    size_t hlen = (size_t)(eoh - buf) + 4;
    const char *cl = memmem(buf, hlen, "\r\nContent-Length: ", 18);
    if (cl)
        return n >= hlen + strtoull(cl + 18, NULL, 10);
    if (memmem(buf, hlen, "chunked", 7))
        return memmem(buf + hlen, n - hlen, "0\r\n\r\n", 5) != NULL;
    return true;
}

/*
 * Send req and read what comes back until the server closes.  The request
 * asks for "Connection: close", so a served request ends in a close.  A
 * server that sends nothing for QUIET_MS is waiting for bytes the input
 * does not have (a declared body longer than the input, say): that is
 * allowed, and the harness hangs up like a client that gave up.  Once a
 * response has begun, it must end within IO_S.  Returns the bytes
 * received (malloc'd, NUL-terminated) in *out.
 */
static size_t exchange(const uint8_t *req, size_t n, char **out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECKF(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(G.port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    FUZZ_CHECKF(connect(fd, (struct sockaddr *)&a, sizeof a) == 0,
                "connect to the server: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    double deadline = mono_s() + IO_S;
    size_t len = 0, cap = 8192, off = 0;
    char *buf = malloc(cap);
    FUZZ_CHECK(buf != NULL);
    bool is_wr_open = true;
    for (;;) {
        struct pollfd pf = { .fd = fd, .events = POLLIN | (is_wr_open ? POLLOUT : 0) };
        bool may_quit = !is_wr_open && (len == 0 || has_response(buf, len));
        int ms = (int)((deadline - mono_s()) * 1e3);
        FUZZ_CHECKF(ms > 0 || may_quit, "no end of the response within %.0f s: %.300s", IO_S,
                    len ? buf : "");
        if (may_quit && ms > QUIET_MS)
            ms = QUIET_MS;
        int pr = poll(&pf, 1, ms > 0 ? ms : 0);
        if (pr < 0 && errno == EINTR)
            continue;
        FUZZ_CHECK(pr >= 0);
        if (pr == 0 && may_quit)
            break;
        if (is_wr_open && (pf.revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = send(fd, req + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                off += (size_t)w;
            /* The server may refuse before reading all of the input. */
            if (off == n || (w < 0 && errno != EAGAIN && errno != EINTR))
                is_wr_open = false;
        }
        if (pf.revents & (POLLIN | POLLERR | POLLHUP)) {
            if (len + 4097 > cap) {
                cap *= 2;
                buf = realloc(buf, cap);
                FUZZ_CHECK(buf != NULL);
            }
            ssize_t r = recv(fd, buf + len, cap - len - 1, MSG_DONTWAIT);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0)
                break; /* closed, or reset after a refusal */
            len += (size_t)r;
            buf[len] = 0;
        }
    }
    close(fd);
    buf[len] = 0;
    *out = buf;
    return len;
}

/* ------------------------------------------------------------ responses */

static const char *hdr(const char *h, size_t n, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = h; p < h + n;) {
        const char *e = memchr(p, '\n', (size_t)(h + n - p));
        if (!e)
            e = h + n;
        if ((size_t)(e - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < e && *v == ' ')
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
 * Check one response at buf[0..n); returns its length, or 0 when the bytes
 * end inside it (the server closed a connection it could no longer serve:
 * allowed only for what follows a response, see check_stream).  is_head:
 * the request was a HEAD, so the response has no body whatever its
 * Content-Length says.
 */
static size_t check_response(const char *buf, size_t n, bool is_head, int *status_out)
{
    const char *eoh = memmem(buf, n, "\r\n\r\n", 4);
    if (!eoh)
        return 0;
    size_t hlen = (size_t)(eoh - buf) + 4;
    int major = 0, minor = 0, status = 0;
    char sp = 0;
    FUZZ_CHECKF(sscanf(buf, "HTTP/%d.%d %3d%c", &major, &minor, &status, &sp) == 4 &&
                    major == 1 && (minor == 0 || minor == 1) && status >= 100 &&
                    status <= 599 && sp == ' ',
                "malformed status line: %.80s", buf);
    *status_out = status;
    FUZZ_CHECKF(status < 500 || status == 503 || status == 505, "status %d: %.300s", status,
                buf);
    char v[128], ct[128] = "";
    hdr(buf, hlen, "Content-Type", ct, sizeof ct);
    bool is_chunked = hdr(buf, hlen, "Transfer-Encoding", v, sizeof v) && strstr(v, "chunked");
    long long clen = -1;
    if (hdr(buf, hlen, "Content-Length", v, sizeof v)) {
        char *end;
        clen = strtoll(v, &end, 10);
        FUZZ_CHECKF(*end == 0 && clen >= 0, "Content-Length: %s", v);
    }
    if (status < 200 || status == 204 || status == 304 || is_head)
        return hlen;
    const char *body = buf + hlen;
    size_t avail = n - hlen, used = 0, blen = 0;
    char *dechunked = NULL;
    if (is_chunked) {
        dechunked = malloc(avail + 1);
        FUZZ_CHECK(dechunked != NULL);
        for (;;) {
            const char *eol = memmem(body + used, avail - used, "\r\n", 2);
            if (!eol) {
                free(dechunked);
                return 0;
            }
            char *end;
            unsigned long sz = strtoul(body + used, &end, 16);
            size_t at = (size_t)(eol - body) + 2;
            if (at + sz + 2 > avail) {
                free(dechunked);
                return 0;
            }
            memcpy(dechunked + blen, body + at, sz);
            blen += sz;
            FUZZ_CHECKF(!memcmp(body + at + sz, "\r\n", 2), "chunk of %lu bytes not ended", sz);
            used = at + sz + 2;
            if (!sz)
                break;
        }
        body = dechunked;
    } else if (clen >= 0) {
        if ((size_t)clen > avail)
            return 0;
        used = blen = (size_t)clen;
    } else {
        used = blen = avail; /* until close */
    }
    if (!strncmp(ct, "application/json", 16)) {
        json_error_t je;
        json_t *j = json_loadb(body, blen, JSON_DECODE_ANY, &je);
        FUZZ_CHECKF(j != NULL, "status %d: a JSON body that does not parse (%s): %.300s",
                    status, je.text, body);
        if (status >= 400)
            FUZZ_CHECKF(json_is_object(j) && json_object_get(j, "error"),
                        "status %d: an error body without \"error\": %.300s", status, body);
        json_decref(j);
    } else {
        /* Only the HTTP layer's own refusals and the text routes (metrics)
         * answer in something else than JSON. */
        FUZZ_CHECKF(status == 200 || status >= 400, "status %d with content type \"%s\"",
                    status, ct);
    }
    free(dechunked);
    return hlen + used;
}

/* Every response in what the server sent.  The first must be complete
 * (or absent: a close without an answer is allowed); later ones may be cut
 * when the harness hangs up after the first. */
static void check_stream(const char *buf, size_t n, const uint8_t *req, size_t req_len)
{
    bool has_head = req_len >= 5 && memmem(req, req_len, "HEAD", 4);
    size_t off = 0;
    for (int i = 0; off < n; i++) {
        int status = 0;
        bool is_head = has_head && i == 0 && !memcmp(req, "HEAD ", 5);
        size_t used = check_response(buf + off, n - off, is_head, &status);
        if (!used) {
            FUZZ_CHECKF(i > 0 || has_head, "a response cut short: %.200s", buf + off);
            return;
        }
        off += used;
        /* A later HEAD makes the framing unknowable from here. */
        if (has_head && i > 0)
            return;
    }
}

/* ---------------------------------------------------------------- input */

static void run(const uint8_t *data, size_t size)
{
    char *resp = NULL;
    size_t n = exchange(data, size, &resp);
    check_stream(resp, n, data, size);
    free(resp);
}

static void check_health(void)
{
    static const char h[] = "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char *resp = NULL;
    size_t n = exchange((const uint8_t *)h, sizeof h - 1, &resp);
    int status = 0;
    FUZZ_CHECKF(n > 0 && check_response(resp, n, false, &status) && status == 200,
                "GET /v1/health after %lu inputs: %.300s", G.n_inputs, resp);
    free(resp);
}

/* The input with its framing repaired (see the opening comment); NULL when
 * it has no header block or the repair changes nothing. */
static uint8_t *repair(const uint8_t *d, size_t n, size_t *out_len)
{
    const uint8_t *eoh = memmem(d, n, "\r\n\r\n", 4);
    if (!eoh)
        return NULL;
    size_t hlen = (size_t)(eoh - d) + 2; /* through the last header's CRLF */
    size_t body_off = hlen + 2, body_len = n - body_off;
    uint8_t *o = malloc(n + 64);
    FUZZ_CHECK(o != NULL);
    size_t len = 0;
    for (size_t p = 0; p < hlen;) {
        const uint8_t *e = memmem(d + p, hlen - p, "\r\n", 2);
        size_t l = (size_t)(e - (d + p)) + 2;
        bool drop = p > 0 && ((l > 15 && !strncasecmp((const char *)d + p, "content-length:", 15)) ||
                              (l > 18 && !strncasecmp((const char *)d + p, "transfer-encoding:", 18)));
        if (!drop) {
            memcpy(o + len, d + p, l);
            len += l;
        }
        p += l;
    }
    len += (size_t)sprintf((char *)o + len, "Content-Length: %zu\r\n\r\n", body_len);
    memcpy(o + len, d + body_off, body_len);
    len += body_len;
    if (len == n && !memcmp(o, d, n)) {
        free(o);
        return NULL;
    }
    *out_len = len;
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!G.is_up)
        start_server();
    if (size > MAX_INPUT)
        size = MAX_INPUT;
    /* "Connection: close" goes after the first line, so that the server
     * closes once it has answered the first request; headers that never
     * end get their blank line, or every such input would only measure
     * the idle timeout. */
    static const char close_hdr[] = "Connection: close\r\n";
    bool has_end = memmem(data, size, "\r\n\r\n", 4) || memmem(data, size, "\n\n", 2);
    const uint8_t *nl = memchr(data, '\n', size);
    size_t line_len = nl ? (size_t)(nl - data) + 1 : size;
    uint8_t *req = malloc(size + sizeof close_hdr + 8);
    FUZZ_CHECK(req != NULL);
    size_t n = 0;
    memcpy(req, data, line_len);
    n += line_len;
    if (!nl) {
        memcpy(req + n, "\r\n", 2);
        n += 2;
    }
    memcpy(req + n, close_hdr, sizeof close_hdr - 1);
    n += sizeof close_hdr - 1;
    memcpy(req + n, data + line_len, size - line_len);
    n += size - line_len;
    if (!has_end) {
        const char *blank = req[n - 1] == '\n' ? "\r\n" : "\r\n\r\n";
        memcpy(req + n, blank, strlen(blank));
        n += strlen(blank);
    }
    run(req, n);
    size_t fixed_len = 0;
    uint8_t *fixed = repair(req, n, &fixed_len);
    if (fixed) {
        run(fixed, fixed_len);
        free(fixed);
    }
    free(req);
    if (G.n_inputs++ % HEALTH_EVERY == 0)
        check_health();
    return 0;
}
