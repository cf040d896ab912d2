/*
 * bench_server.c -- the HTTP server under load: throughput, latency
 * percentiles and errors of many keep-alive connections against a server
 * over a database of a million memories, in one process.
 *
 * Data: U users with 100 memories each (default 10,000 x 100 = 1M at
 * --scale 1), interleaved round-robin, generated English sentences
 * (bench_words.h) embedded by the built-in model and stored with
 * dm_add_batch without extraction, under the default sync mode (batch).
 * The load rate is reported (ingest, then the wait for the indexer).  A
 * --keep run leaves the database; --reuse reopens it instead of loading.
 * Before the first timed run every user is searched once directly
 * (dm_search), so that no timed request pays for loading a user's indexes.
 *
 * Server: http_start on a free loopback port over that database, rate
 * limit off, its default thread counts (--server-threads N and
 * --write-threads N to change them)
 * and per-user bound (--user-concurrency N).
 *
 * Load generator (same process, --gen-threads threads, default 1): each
 * thread owns an epoll set and its share of the connections; sockets are
 * non-blocking, HTTP/1.1 keep-alive, one request in flight per connection
 * (no pipelining).  A response is read whole and checked: status line,
 * headers (Content-Length or chunked; "Connection: close" closes the
 * socket and the next request reconnects), the body's length.  Errors are
 * counted by cause: a status outside 2xx, a reset or an end of stream
 * before the response is whole, a request older than --timeout-ms, a
 * failed connect, a malformed response (including an add's 201 without
 * an id, a search's 200 without "results").  Latencies go to log-bucketed
 * histograms (64 linear sub-buckets per power of two of microseconds: 1.6 %
 * resolution), one per request kind and connection group, merged after
 * the run.
 *
 * Two ways to offer load:
 *   closed loop (--rate 0, the default): each connection sends its next
 *     request as soon as the previous response is read.  This measures
 *     capacity; by Little's law the mean latency is then connections /
 *     throughput (1,000 connections at 10,000 requests/s = 100 ms), so a
 *     latency target is read at a fixed rate instead:
 *   fixed rate (--rate R): the connections share R requests/s evenly,
 *     each on its own schedule; a request's latency is counted from the
 *     time it was scheduled, not from when it could be sent, so a server
 *     that falls behind is charged for the wait (no coordinated omission).
 * Every run first offers its load for --warmup seconds (1 by default; not
 * with --requests) and measures from then on: latencies, requests/s and
 * CPU per request count the requests scheduled after the warm-up.  The
 * warm-up's errors and acknowledged adds still count.  What it leaves
 * out is the seconds just after 1,000 connections open at once; the
 * engine's counters (compactions, syncs, stalls) include it.
 *
 * Mix (--mix): "native" (default) = 80 % POST /v1/search {"user_id",
 * "query", "k":10} and 20 % POST /v1/memories {"user_id", "text",
 * "extract":false}; "core" = 90 % GET /v1/health, 10 % GET /metrics;
 * "health" = GET /v1/health only; "miss" = GET of a path no route serves,
 * whose expected answer is a 404 (the server's fixed cost per request:
 * parsing, routing, an error body; /v1/health and /metrics read the
 * engine's statistics, which walk every user); or weights,
 * "search=70,add=20,health=10".
 * Users are picked uniformly, for every request; or, with --session-s S,
 * per session: a connection keeps its user for S seconds (an agent talking
 * to one user at a time; the first session of each connection is cut at
 * a random point so that the sessions do not turn over together), then
 * draws the next.  Over a long run every user is visited either way; with
 * sessions, only the users of the last few sessions are in use at once,
 * and --user-idle S (dm_options.user_idle_s) lets the others' indexes
 * leave memory.  --index-memory BYTES sets dm_options.index_memory_bytes,
 * --map-memory BYTES dm_options.map_memory_bytes, --block-cache BYTES
 * dm_options.block_cache_bytes, --pread-tables dm_options.pread_tables.
 * Queries are short questions from the same words as the data.  After all runs, every acknowledged add (the id of a
 * 201 answer) is read back with dm_get under its user: adds_missing must
 * be 0.
 *
 * --hammer: after the main run (the baseline), the same run again with
 * --hammer-conns (200) more connections, closed loop, all on one user (the
 * last one, which the normal load never picks), same mix.  Reported: the
 * other users' p99 in both runs and the ratio (target <= 2).
 *
 * --soak S: one run of S seconds (instead of --seconds); the resident set
 * (/proc/self/statm) is sampled every 10 s; reported: first, last and
 * largest sample, the least-squares slope in MB per minute, and the growth
 * per acknowledged add.  The database grows with the adds, and so do its
 * in-memory indexes, so the samples are split: the pages of mapped files
 * (SSTables, the model: the kernel's to drop), the anonymous rest, the
 * loaded indexes (dm_stats index_bytes) and what is anonymous beyond the
 * indexes and memtables (caches, buffers, the allocator's slack), which is
 * the part that must stay flat.  Also sampled: the users whose indexes are
 * loaded, the unloads (--user-idle, --index-memory) and the times the
 * mapped tables' pages were given back (--map-memory).
 *
 * --timeline MS: after each run, one line per MS milliseconds of its
 * measured time: the requests whose origin fell in it (count, those over
 * 20 ms, adds, the slowest, those the generator sent over 5 ms late and
 * the latest send), the process's CPU use, and the engine's
 * flushes, compactions, WAL syncs (count and time), write stalls and
 * level-0 tables meanwhile -- to tell a stall from a busy moment.  The
 * engine's counters come from dm_stats_get, which walks the user records:
 * at 250 ms, about one percent of a core.
 *
 * Also reported: the engine's write stalls during each run (writers
 * waiting for a flush or a level-0 compaction: count and time) and its
 * compactions; the CPU time of the process per request and the share of
 * it the generator's threads used (both share the machine's cores), and
 * the load average at the start (the machine is shared).
 *
 * usage: bench_server [--json] [--scale F] [--dir D] [--model PATH]
 *                     [--conns C] [--seconds T] [--requests R] [--rate R]
 *                     [--mix M] [--gen-threads N] [--server-threads N]
 *                     [--write-threads N]
 *                     [--user-concurrency N]
 *                     [--timeout-ms MS] [--hammer] [--hammer-conns N]
 *                     [--soak S] [--warmup S] [--keep] [--reuse]
 *                     [--timeline MS] [--sync-interval-ms MS]
 *                     [--session-s S] [--user-idle S] [--index-memory BYTES]
 *                     [--map-memory BYTES] [--block-cache BYTES] [--pread-tables]
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <jansson.h>

#include "bench_util.h"
#include "bench_words.h"
#include "deltamemory.h"
#include "os/proc.h"
#include "server/server.h"

#define PER_USER 100
#define BATCH 1000
#define RSS_EVERY_S 10

static struct {
    bool is_json;
    double scale;
    const char *dir;
    const char *model;
    unsigned conns;
    double seconds;
    uint64_t max_requests; /* 0 = no cap */
    double rate;           /* offered requests/s; 0 = closed loop */
    const char *mix;
    unsigned gen_threads;
    unsigned server_threads; /* 0 = the server's default */
    unsigned write_threads;  /* 0 = the server's default */
    unsigned user_concurrency; /* 0 = the server's default */
    unsigned timeout_ms;
    bool is_hammer;
    unsigned hammer_conns;
    double soak_s; /* 0 = no soak */
    bool is_keep;
    bool is_reuse;
    double warmup_s; /* load before the measured time of each run */
    unsigned timeline_ms; /* 0 = no timeline */
    unsigned sync_interval_ms; /* 0 = the engine's default */
    double session_s;     /* 0 = a user drawn for every request */
    long user_idle_s;     /* -1 = the engine's default */
    size_t index_memory;  /* 0 = the engine's default (no bound) */
    size_t map_memory;    /* 0 = the engine's default (no bound) */
    size_t block_cache;   /* 0 = the engine's default (64 MB) */
    bool is_pread;        /* dm_options.pread_tables */
} cfg = { false, 1.0, "/tmp/dm-bench-server", NULL, 1000, 30, 0, 0, "native", 1, 0, 0, 0,
          10000, false, 200, 0, false, false, 1.0, 0, 0, 0, -1, 0, 0, 0, false };

/* ------------------------------------------------------------ the mix */

enum { K_SEARCH, K_ADD, K_HEALTH, K_METRICS, K_MISS, N_KINDS };
static const char *const kind_names[N_KINDS] = { "search", "add", "health", "metrics", "miss" };
static unsigned mix_w[N_KINDS]; /* weights; the kind is drawn by cumulative weight */
static unsigned mix_total;

static void parse_mix(const char *m)
{
    memset(mix_w, 0, sizeof mix_w);
    if (!strcmp(m, "native")) {
        mix_w[K_SEARCH] = 80;
        mix_w[K_ADD] = 20;
    } else if (!strcmp(m, "core")) {
        mix_w[K_HEALTH] = 90;
        mix_w[K_METRICS] = 10;
    } else if (!strcmp(m, "health")) {
        mix_w[K_HEALTH] = 100;
    } else if (!strcmp(m, "miss")) {
        mix_w[K_MISS] = 100;
    } else {
        for (const char *p = m; *p;) {
            const char *eq = strchr(p, '=');
            if (!eq)
                bench_die("--mix %s: want native, core, health, miss or kind=weight,...", m);
            int k = -1;
            for (int i = 0; i < N_KINDS; i++)
                if (strlen(kind_names[i]) == (size_t)(eq - p) &&
                    !memcmp(p, kind_names[i], (size_t)(eq - p)))
                    k = i;
            if (k < 0)
                bench_die("--mix: unknown kind in %s (search, add, health, metrics, miss)", p);
            char *end;
            mix_w[k] = (unsigned)strtoul(eq + 1, &end, 10);
            if (*end && *end != ',')
                bench_die("--mix: bad weight in %s", p);
            p = *end ? end + 1 : end;
        }
    }
    mix_total = 0;
    for (int i = 0; i < N_KINDS; i++)
        mix_total += mix_w[i];
    if (!mix_total)
        bench_die("--mix %s: every weight is 0", m);
}

static int draw_kind(bench_rng *r)
{
    unsigned x = (unsigned)bench_rng_below(r, mix_total);
    for (int i = 0; i < N_KINDS; i++) {
        if (x < mix_w[i])
            return i;
        x -= mix_w[i];
    }
    return N_KINDS - 1;
}

/* A short question from the data's words. */
static void question(bench_rng *r, char *out, size_t cap)
{
    switch (bench_rng_below(r, 4)) {
    case 0:
        snprintf(out, cap, "Who %s %s?", PICK(r, verbs), PICK(r, objects));
        break;
    case 1:
        snprintf(out, cap, "What did %s do %s?", PICK(r, names), PICK(r, places));
        break;
    case 2:
        snprintf(out, cap, "Did %s mention %s?", PICK(r, names), PICK(r, objects));
        break;
    default:
        snprintf(out, cap, "What do I know about %s?", PICK(r, objects));
        break;
    }
}

static void user_name(uint32_t u, char *out, size_t cap)
{
    snprintf(out, cap, "user%05u", u);
}

/* ------------------------------------------------------------ histograms */

#define H_SUB_BITS 6
#define H_SUB (1u << H_SUB_BITS)
#define H_N (40 * H_SUB)

typedef struct hist {
    uint64_t n;
    uint64_t max_us;
    uint64_t b[H_N];
} hist;

/* Values below 2 * H_SUB have a bucket each; above, a power of two is cut
 * into H_SUB equal buckets. */
static unsigned h_index(uint64_t v)
{
    if (v < 2 * H_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - H_SUB_BITS;
    unsigned idx = (shift + 1) * H_SUB + (unsigned)((v >> shift) - H_SUB);
    return idx < H_N ? idx : H_N - 1;
}

/* The largest value of bucket idx. */
static uint64_t h_upper(unsigned idx)
{
    if (idx < 2 * H_SUB)
        return idx;
    unsigned shift = idx / H_SUB - 1;
    uint64_t sub = idx % H_SUB + H_SUB;
    return ((sub + 1) << shift) - 1;
}

static void h_add(hist *h, uint64_t us)
{
    h->b[h_index(us)]++;
    h->n++;
    if (us > h->max_us)
        h->max_us = us;
}

static void h_merge(hist *into, const hist *h)
{
    for (unsigned i = 0; i < H_N; i++)
        into->b[i] += h->b[i];
    into->n += h->n;
    if (h->max_us > into->max_us)
        into->max_us = h->max_us;
}

/* Nearest rank: the smallest bucket bound with at least p of the samples
 * at or below it (never above the largest sample). */
static double h_pct_us(const hist *h, double p)
{
    if (!h->n)
        return 0;
    uint64_t rank = (uint64_t)((double)h->n * p + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < H_N; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t u = h_upper(i);
            return (double)(u < h->max_us ? u : h->max_us);
        }
    }
    return (double)h->max_us;
}

/* ------------------------------------------------------------ one run */

enum { G_NORMAL, G_HAMMER, N_GROUPS };
enum { E_STATUS, E_RESET, E_TIMEOUT, E_CONNECT, E_BAD, N_ERRS };
static const char *const err_names[N_ERRS] = { "status", "reset", "timeout", "connect",
                                               "bad_response" };

enum { C_IDLE, C_CONNECTING, C_SENDING, C_READING };

typedef struct conn {
    int fd;
    int state;
    int group;
    int kind;
    uint32_t user;
    uint64_t session_end_ns; /* --session-s: when the user changes; 0 = new */
    bench_rng rng;
    char out[1024];
    size_t out_len, out_off;
    char *in;
    size_t in_len, in_cap;
    uint64_t origin_ns;   /* latency counted from here */
    uint64_t deadline_ns; /* the request times out after this */
    uint64_t next_ns;     /* fixed rate: when the next request is due */
    uint64_t period_ns;   /* fixed rate: 0 = closed loop */
    uint32_t heap_pos;    /* in the worker's timer heap, or UINT32_MAX */
} conn;

typedef struct ack {
    dm_id id;
    uint32_t user;
} ack;

/* --timeline: the measured requests whose origin fell in one interval. */
typedef struct tl_slot {
    uint32_t n, slow, adds; /* slow: over TL_SLOW_US */
    uint32_t max_us;
    uint32_t late;       /* sent over TL_LATE_US after their due time */
    uint32_t lag_max_us; /* the latest send */
} tl_slot;

#define TL_SLOW_US 20000
#define TL_LATE_US 5000

typedef struct worker {
    pthread_t th;
    struct run *run;
    conn *conns;
    unsigned n_conns;
    unsigned in_flight;
    int ep;
    conn **heap; /* conns waiting for their next due time, earliest first */
    unsigned n_heap;
    hist h[N_GROUPS][N_KINDS];
    uint64_t errs[N_ERRS];
    uint64_t status_seen[6]; /* errors by status class */
    ack *acks;
    size_t n_acks, cap_acks;
    double cpu_s;         /* the thread's CPU time in the measured part */
    double cpu_at_measure;
    bool is_measuring;
    struct tl_slot *tl;   /* --timeline: by the interval of the origin */
} worker;

typedef struct run {
    uint16_t port;
    uint32_t n_users;      /* the normal load picks users [0, n_users) */
    uint32_t hammer_user;
    unsigned n_normal, n_hammer;
    double seconds;
    uint64_t max_requests;
    double rate;
    _Atomic uint64_t issued;
    uint64_t start_ns, stop_ns;
    uint64_t measure_ns;   /* requests scheduled before it are the warm-up */
    dm_db *db;             /* for the timeline's engine counters */
    unsigned n_tl;         /* --timeline: intervals (0 = none) */
    tl_slot *tl;           /* the workers' slots, merged */
    struct tl_engine *tle; /* the engine's counters at each interval's end */
    worker *w;
    unsigned n_w;
    /* results */
    hist h[N_GROUPS][N_KINDS];
    hist all[N_GROUPS];
    uint64_t errs[N_ERRS];
    uint64_t status_seen[6];
    double wall_s;
    double gen_cpu_s;
    double proc_cpu_s;
} run;

static ack *g_acks;
static size_t g_n_acks, g_cap_acks;
static atomic_int printed_errors;

static double cpu_process_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static double cpu_thread_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The timer heap of a worker (fixed rate): a binary heap on next_ns. */
static void heap_swap(worker *w, unsigned a, unsigned b)
{
    conn *t = w->heap[a];
    w->heap[a] = w->heap[b];
    w->heap[b] = t;
    w->heap[a]->heap_pos = a;
    w->heap[b]->heap_pos = b;
}

static void heap_push(worker *w, conn *c)
{
    unsigned i = w->n_heap++;
    w->heap[i] = c;
    c->heap_pos = i;
    while (i && w->heap[(i - 1) / 2]->next_ns > w->heap[i]->next_ns) {
        heap_swap(w, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static conn *heap_pop(worker *w)
{
    conn *top = w->heap[0];
    w->n_heap--;
    if (w->n_heap) {
        w->heap[0] = w->heap[w->n_heap];
        w->heap[0]->heap_pos = 0;
        unsigned i = 0;
        for (;;) {
            unsigned l = 2 * i + 1, r = l + 1, m = i;
            if (l < w->n_heap && w->heap[l]->next_ns < w->heap[m]->next_ns)
                m = l;
            if (r < w->n_heap && w->heap[r]->next_ns < w->heap[m]->next_ns)
                m = r;
            if (m == i)
                break;
            heap_swap(w, i, m);
            i = m;
        }
    }
    top->heap_pos = UINT32_MAX;
    return top;
}

static void conn_close(worker *w, conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->in_len = 0;
}

static void build_request(run *r, conn *c)
{
    char user[32], text[200], body[512];
    c->kind = draw_kind(&c->rng);
    if (c->group == G_HAMMER) {
        c->user = r->hammer_user;
    } else if (cfg.session_s > 0) {
        /* One user per session; the first session's length is drawn, so
         * that the connections do not all change users at once. */
        uint64_t now = bench_now_ns(), len = (uint64_t)(cfg.session_s * 1e9);
        if (now >= c->session_end_ns) {
            c->session_end_ns = c->session_end_ns
                                    ? now + len
                                    : now + bench_rng_below(&c->rng, len ? len : 1);
            c->user = (uint32_t)bench_rng_below(&c->rng, r->n_users);
        }
    } else {
        c->user = (uint32_t)bench_rng_below(&c->rng, r->n_users);
    }
    user_name(c->user, user, sizeof user);
    const char *method = "POST", *path;
    int body_len = 0;
    switch (c->kind) {
    case K_SEARCH:
        question(&c->rng, text, sizeof text);
        body_len = snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"query\":\"%s\",\"k\":10}",
                            user, text);
        path = "/v1/search";
        break;
    case K_ADD:
        bench_sentence(&c->rng, text, sizeof text);
        body_len = snprintf(body, sizeof body,
                            "{\"user_id\":\"%s\",\"text\":\"%s\",\"extract\":false}", user, text);
        path = "/v1/memories";
        break;
    case K_HEALTH:
        method = "GET";
        path = "/v1/health";
        break;
    case K_MISS:
        method = "GET";
        path = "/v1/no-such-route";
        break;
    default:
        method = "GET";
        path = "/metrics";
        break;
    }
    if (body_len)
        c->out_len = (size_t)snprintf(c->out, sizeof c->out,
                                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                      "Content-Type: application/json\r\n"
                                      "Content-Length: %d\r\n\r\n%s",
                                      method, path, body_len, body);
    else
        c->out_len = (size_t)snprintf(c->out, sizeof c->out,
                                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    c->out_off = 0;
}

static void fail_req(worker *w, conn *c, int why);
static void next_request(worker *w, conn *c, uint64_t now);

/* Writes what remains of the request; on EAGAIN the socket's EPOLLOUT
 * edge resumes it. */
static void try_send(worker *w, conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        fail_req(w, c, E_RESET);
        return;
    }
    c->state = C_READING;
}

static bool conn_open(worker *w, conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return false;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(w->run->port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                              .data.ptr = c };
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        close(c->fd);
        c->fd = -1;
        return false;
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        conn_close(w, c);
        return false;
    }
    c->state = C_CONNECTING;
    return true;
}

/* A blocking connect, then the socket made non-blocking and added to the
 * worker's set; a failure leaves fd -1 (the first request reconnects). */
static void preconnect(worker *w, conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(w->run->port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                              .data.ptr = c };
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        fcntl(c->fd, F_SETFL, O_NONBLOCK) != 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev)) {
        close(c->fd);
        c->fd = -1;
        return;
    }
    c->state = C_IDLE;
}

/* Starts a request whose latency counts from origin_ns. */
/* --timeline: the slot of a request due at origin_ns; NULL when it was due
 * in the warm-up or after the last interval. */
static tl_slot *tl_slot_of(worker *w, uint64_t origin_ns)
{
    run *r = w->run;
    if (origin_ns < r->measure_ns)
        return NULL;
    uint64_t i = (origin_ns - r->measure_ns) / ((uint64_t)cfg.timeline_ms * 1000000u);
    return i < r->n_tl ? &w->tl[i] : NULL;
}

/* --timeline: how late the generator sends a request (its own delay, or
 * the connection's previous answer arriving after this one was due). */
static void tl_note_send(worker *w, uint64_t origin_ns, uint64_t now)
{
    tl_slot *t = tl_slot_of(w, origin_ns);
    if (!t || now < origin_ns)
        return;
    uint64_t us = (now - origin_ns) / 1000;
    t->late += us > TL_LATE_US;
    if (us > t->lag_max_us)
        t->lag_max_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void start_request(worker *w, conn *c, uint64_t origin_ns, uint64_t now)
{
    run *r = w->run;
    if (r->max_requests && atomic_fetch_add(&r->issued, 1) >= r->max_requests) {
        c->state = C_IDLE;
        return;
    }
    if (w->tl)
        tl_note_send(w, origin_ns, now);
    build_request(r, c);
    c->origin_ns = origin_ns;
    c->deadline_ns = now + (uint64_t)cfg.timeout_ms * 1000000u;
    w->in_flight++;
    if (c->fd < 0) {
        if (!conn_open(w, c)) {
            c->state = C_SENDING; /* so that fail_req accounts for it */
            fail_req(w, c, E_CONNECT);
        }
        return; /* the EPOLLOUT of the connect sends the request */
    }
    c->state = C_SENDING;
    try_send(w, c);
}

static bool stopping(run *r, uint64_t now)
{
    return now >= r->stop_ns ||
           (r->max_requests && atomic_load_explicit(&r->issued, memory_order_relaxed) >=
                                   r->max_requests);
}

/* After a response or a failure: the connection's next request now
 * (closed loop or already late), later (fixed rate), or none (the run is
 * ending). */
static void next_request(worker *w, conn *c, uint64_t now)
{
    c->state = C_IDLE;
    if (stopping(w->run, now))
        return;
    if (!c->period_ns) {
        start_request(w, c, now, now);
        return;
    }
    c->next_ns += c->period_ns;
    if (c->next_ns <= now)
        start_request(w, c, c->next_ns, now);
    else
        heap_push(w, c);
}

static void fail_req(worker *w, conn *c, int why)
{
    w->errs[why]++;
    if (why != E_STATUS && atomic_fetch_add(&printed_errors, 1) < 5) {
        if (why == E_RESET || why == E_CONNECT)
            fprintf(stderr, "bench_server: %s: %s (%s)\n", kind_names[c->kind],
                    err_names[why], strerror(errno));
        else
            fprintf(stderr, "bench_server: %s: %s\n", kind_names[c->kind], err_names[why]);
    }
    conn_close(w, c);
    w->in_flight--;
    uint64_t now = bench_now_ns();
    /* A connect that failed would fail again at once: retry a little
     * later instead of spinning. */
    if (why == E_CONNECT && !c->period_ns) {
        c->state = C_IDLE;
        c->next_ns = now + 10000000u;
        c->period_ns = 0;
        heap_push(w, c);
        return;
    }
    next_request(w, c, now);
}

/* Case-insensitive header lookup in the header block [h, e): the value
 * (leading blanks skipped) and its length, or NULL. */
static const char *header(const char *h, const char *e, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = memchr(h, '\n', (size_t)(e - h)); /* skip the status line */
    while (p && p + 1 < e) {
        p++;
        const char *eol = memchr(p, '\n', (size_t)(e - p));
        if (!eol)
            eol = e;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

/*
 * The chunked body starting at b (n bytes available): 0 = not whole yet,
 * -1 = malformed, else the bytes it spans; the data is copied into out
 * (capacity n) and *out_len set.
 */
static long dechunk(const char *b, size_t n, char *out, size_t *out_len)
{
    size_t i = 0, o = 0;
    for (;;) {
        const char *eol = memchr(b + i, '\n', n - i);
        if (!eol)
            return 0;
        char *end;
        unsigned long sz = strtoul(b + i, &end, 16);
        if (end == b + i)
            return -1;
        i = (size_t)(eol - b) + 1;
        if (sz == 0) {
            /* trailers, then an empty line */
            for (;;) {
                const char *l = memchr(b + i, '\n', n - i);
                if (!l)
                    return 0;
                size_t len = (size_t)(l - (b + i));
                i = (size_t)(l - b) + 1;
                if (len == 0 || (len == 1 && b[i - 2] == '\r')) {
                    *out_len = o;
                    return (long)i;
                }
            }
        }
        if (n - i < sz + 2)
            return 0;
        memcpy(out + o, b + i, sz);
        o += sz;
        i += sz;
        if (b[i] == '\r')
            i++;
        if (b[i] != '\n')
            return -1;
        i++;
    }
}

/* Bytes the generator holds for its acknowledged adds (the soak's samples
 * count them apart: they are the benchmark's, not the server's). */
static atomic_size_t g_ack_bytes;

static void add_ack(worker *w, const dm_id *id, uint32_t user)
{
    if (w->n_acks == w->cap_acks) {
        size_t was = w->cap_acks;
        w->cap_acks = w->cap_acks ? 2 * w->cap_acks : 4096;
        atomic_fetch_add(&g_ack_bytes, (w->cap_acks - was) * sizeof *w->acks);
        w->acks = realloc(w->acks, w->cap_acks * sizeof *w->acks);
        if (!w->acks)
            bench_die("out of memory");
    }
    w->acks[w->n_acks].id = *id;
    w->acks[w->n_acks].user = user;
    w->n_acks++;
}

/* A whole response: checks it, records its latency, moves on. */
static void tl_note(worker *w, const conn *c, uint64_t us)
{
    tl_slot *t = tl_slot_of(w, c->origin_ns);
    if (!t)
        return;
    t->n++;
    t->slow += us > TL_SLOW_US;
    t->adds += c->kind == K_ADD;
    if (us > t->max_us)
        t->max_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void on_response(worker *w, conn *c, int status, const char *body, size_t body_len,
                        bool is_close, uint64_t now)
{
    bool ok = c->kind == K_MISS ? status == 404 : status >= 200 && status < 300;
    if (!ok) {
        w->errs[E_STATUS]++;
        w->status_seen[status / 100 < 6 ? status / 100 : 0]++;
        if (atomic_fetch_add(&printed_errors, 1) < 5)
            fprintf(stderr, "bench_server: %s answered %d: %.*s\n", kind_names[c->kind], status,
                    (int)(body_len < 200 ? body_len : 200), body);
    } else if (c->kind == K_ADD) {
        json_t *j = json_loadb(body, body_len, 0, NULL);
        const char *s = json_string_value(json_object_get(j, "id"));
        dm_id id;
        if (status == 201 && s && dm_id_parse(s, &id) == DM_OK) {
            add_ack(w, &id, c->user);
        } else {
            ok = false;
            w->errs[E_BAD]++;
        }
        json_decref(j);
    } else if (c->kind == K_SEARCH) {
        if (!memmem(body, body_len, "\"results\"", 9)) {
            ok = false;
            w->errs[E_BAD]++;
        }
    }
    if (ok && c->origin_ns >= w->run->measure_ns) {
        uint64_t us = (now - c->origin_ns) / 1000;
        h_add(&w->h[c->group][c->kind], us);
        if (w->tl)
            tl_note(w, c, us);
    }
    w->in_flight--;
    c->in_len = 0;
    if (is_close)
        conn_close(w, c);
    next_request(w, c, now);
}

/* Parses what has been read: returns once more bytes are needed, or
 * after the response was handled. */
static void try_parse(worker *w, conn *c, uint64_t now)
{
    const char *hend = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!hend)
        return;
    size_t hlen = (size_t)(hend - c->in) + 4;
    int status = 0;
    if (c->in_len < 12 || memcmp(c->in, "HTTP/1.", 7) != 0 ||
        sscanf(c->in + 8, " %3d", &status) != 1) {
        fail_req(w, c, E_BAD);
        return;
    }
    size_t vl;
    const char *v = header(c->in, hend + 2, "Connection", &vl);
    bool is_close = (v && vl >= 5 && !strncasecmp(v, "close", 5)) || c->in[7] == '0';
    const char *te = header(c->in, hend + 2, "Transfer-Encoding", &vl);
    if (te && vl >= 7 && !strncasecmp(te, "chunked", 7)) {
        char *body = malloc(c->in_len - hlen + 1);
        size_t body_len = 0;
        long used = dechunk(c->in + hlen, c->in_len - hlen, body, &body_len);
        if (used > 0 && hlen + (size_t)used != c->in_len)
            used = -1; /* bytes after the response: never pipelined */
        if (used < 0)
            fail_req(w, c, E_BAD);
        else if (used > 0)
            on_response(w, c, status, body, body_len, is_close, now);
        free(body);
        return;
    }
    const char *cl = header(c->in, hend + 2, "Content-Length", &vl);
    if (!cl) {
        /* A length-less body ends with the stream; MHD always sends one
         * of the two, so this is a malformed answer here. */
        if (status == 204 || status == 304)
            on_response(w, c, status, "", 0, is_close, now);
        else
            fail_req(w, c, E_BAD);
        return;
    }
    size_t clen = (size_t)strtoull(cl, NULL, 10);
    if (c->in_len < hlen + clen)
        return;
    if (c->in_len > hlen + clen) {
        fail_req(w, c, E_BAD);
        return;
    }
    on_response(w, c, status, c->in + hlen, clen, is_close, now);
}

static void on_readable(worker *w, conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 4096) {
            c->in_cap = c->in_cap ? 2 * c->in_cap : 8192;
            c->in = realloc(c->in, c->in_cap + 1);
            if (!c->in)
                bench_die("out of memory");
        }
        size_t room = c->in_cap - c->in_len;
        ssize_t n = recv(c->fd, c->in + c->in_len, room, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            c->in[c->in_len] = 0;
            /* Less than the room: the socket was drained, and any later
             * bytes raise a new edge; no recv just to read EAGAIN. */
            if ((size_t)n < room)
                break;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        /* end of stream or error */
        if (c->state == C_IDLE) { /* the server closed an idle connection */
            conn_close(w, c);
            return;
        }
        if (n == 0)
            errno = ECONNRESET;
        fail_req(w, c, E_RESET);
        return;
    }
    if (c->state == C_IDLE) {
        if (c->in_len) { /* bytes nobody asked for */
            c->in_len = 0;
            w->errs[E_BAD]++;
            conn_close(w, c);
        }
        return;
    }
    if (c->state == C_READING || c->state == C_SENDING)
        try_parse(w, c, bench_now_ns());
}

static void on_event(worker *w, conn *c, uint32_t ev)
{
    if (c->state == C_CONNECTING) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            errno = err;
            fail_req(w, c, E_CONNECT);
            return;
        }
        c->state = C_SENDING;
    }
    if (c->state == C_SENDING && (ev & EPOLLOUT))
        try_send(w, c);
    if (c->fd >= 0 && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        on_readable(w, c);
}

static void check_timeouts(worker *w, uint64_t now)
{
    for (unsigned i = 0; i < w->n_conns; i++) {
        conn *c = &w->conns[i];
        if (c->state != C_IDLE && now > c->deadline_ns)
            fail_req(w, c, E_TIMEOUT);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    run *r = w->run;
    struct epoll_event evs[256];
    uint64_t now = bench_now_ns(), last_scan = now;
    for (unsigned i = 0; i < w->n_conns; i++) {
        conn *c = &w->conns[i];
        if (c->period_ns) {
            heap_push(w, c);
        } else {
            start_request(w, c, now, now);
        }
    }
    for (;;) {
        now = bench_now_ns();
        if (!w->is_measuring && now >= r->measure_ns) {
            w->is_measuring = true;
            w->cpu_at_measure = cpu_thread_s();
        }
        bool is_stop = stopping(r, now);
        while (!is_stop && w->n_heap && w->heap[0]->next_ns <= now) {
            conn *c = heap_pop(w);
            start_request(w, c, c->period_ns ? c->next_ns : now, now);
        }
        if (is_stop && !w->in_flight)
            break;
        int wait_ms = 50;
        if (!is_stop && w->n_heap) {
            uint64_t due = w->heap[0]->next_ns;
            wait_ms = due <= now ? 0 : (int)((due - now + 999999) / 1000000);
            if (wait_ms > 50)
                wait_ms = 50;
        }
        int n = epoll_wait(w->ep, evs, 256, wait_ms);
        now = bench_now_ns();
        for (int i = 0; i < n; i++)
            on_event(w, evs[i].data.ptr, evs[i].events);
        if (now - last_scan > 100000000u) {
            check_timeouts(w, now);
            last_scan = now;
        }
    }
    for (unsigned i = 0; i < w->n_conns; i++) {
        conn_close(w, &w->conns[i]);
        free(w->conns[i].in);
    }
    w->cpu_s = cpu_thread_s() - (w->is_measuring ? w->cpu_at_measure : 0);
    return NULL;
}

/* --timeline: the engine's counters and the process's CPU time, sampled
 * at the end of each interval by tl_main. */
typedef struct tl_engine {
    double cpu_s;
    dm_stats st;
    bool is_set;
} tl_engine;

static void *tl_main(void *arg)
{
    run *r = arg;
    uint64_t step = (uint64_t)cfg.timeline_ms * 1000000u;
    for (unsigned i = 0; i <= r->n_tl; i++) {
        /* [0] is the start of the measured time, [i] the end of interval i-1 */
        for (uint64_t t, due = r->measure_ns + step * i; (t = bench_now_ns()) < due;) {
            struct timespec ts = { (time_t)((due - t) / 1000000000u),
                                   (long)((due - t) % 1000000000u) };
            nanosleep(&ts, NULL);
        }
        tl_engine *e = &r->tle[i];
        e->cpu_s = cpu_process_s();
        e->is_set = dm_stats_get(r->db, &e->st) == DM_OK;
    }
    return NULL;
}

/* One line per interval: the requests whose origin fell in it (their
 * count, those over TL_SLOW_US, the adds, the slowest) and what the
 * process and the engine did meanwhile. */
static void print_timeline(const run *r)
{
    printf("timeline (every %u ms, by request origin; slow = over %d ms; late = sent over %d ms "
           "after due, lag = the latest send):\n",
           cfg.timeline_ms, TL_SLOW_US / 1000, TL_LATE_US / 1000);
    printf("%8s %7s %6s %6s %8s %6s %7s %6s %6s %5s %6s %9s %6s %9s %3s\n", "t s", "reqs",
           "slow", "adds", "max ms", "late", "lag ms", "cpu %", "flush", "comp", "syncs",
           "sync ms", "stall", "stall ms", "l0");
    double step_s = cfg.timeline_ms / 1e3;
    for (unsigned i = 0; i < r->n_tl; i++) {
        const tl_slot *t = &r->tl[i];
        const tl_engine *ea = &r->tle[i], *eb = &r->tle[i + 1];
        const dm_stats *a = &ea->st, *b = &eb->st;
        bool has = ea->is_set && eb->is_set;
        printf("%8.2f %7u %6u %6u %8.1f %6u %7.1f %6.0f", i * step_s, t->n, t->slow, t->adds,
               t->max_us / 1e3, t->late, t->lag_max_us / 1e3,
               (eb->cpu_s - ea->cpu_s) / step_s * 100);
        if (has)
            printf(" %6" PRIu64 " %5" PRIu64 " %6" PRIu64 " %9.1f %6" PRIu64 " %9.1f %3" PRIu64
                   "\n",
                   b->flushes - a->flushes, b->compactions - a->compactions,
                   b->wal_syncs - a->wal_syncs, (double)(b->wal_sync_us - a->wal_sync_us) / 1e3,
                   b->write_stalls - a->write_stalls,
                   (double)(b->write_stall_us - a->write_stall_us) / 1e3, b->l0_files);
        else
            printf("\n");
    }
}

/* The timeline of r, then freed. */
static void report_timeline(run *r)
{
    if (r->n_tl && !cfg.is_json)
        print_timeline(r);
    free(r->tl);
    free(r->tle);
    r->tl = NULL;
    r->tle = NULL;
    r->n_tl = 0;
}

/* Runs the load of r for its time (or request count) and merges the
 * workers' results into r. */
static void run_load(run *r)
{
    static unsigned n_runs; /* each run its own requests, the same every time */
    n_runs++;
    unsigned n_conns = r->n_normal + r->n_hammer;
    r->n_w = cfg.gen_threads < n_conns ? cfg.gen_threads : n_conns;
    r->w = calloc(r->n_w, sizeof *r->w);
    if (!r->w)
        bench_die("out of memory");
    if (cfg.timeline_ms && !r->max_requests) {
        r->n_tl = (unsigned)ceil(r->seconds * 1000 / cfg.timeline_ms);
        r->tl = calloc(r->n_tl, sizeof *r->tl);
        r->tle = calloc(r->n_tl + 1, sizeof *r->tle);
        if (!r->tl || !r->tle)
            bench_die("out of memory");
    }
    for (unsigned t = 0; t < r->n_w; t++) {
        worker *w = &r->w[t];
        w->run = r;
        w->n_conns = n_conns / r->n_w + (t < n_conns % r->n_w);
        w->conns = calloc(w->n_conns, sizeof *w->conns);
        w->heap = calloc(w->n_conns, sizeof *w->heap);
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->tl = r->n_tl ? calloc(r->n_tl, sizeof *w->tl) : NULL;
        if (!w->conns || !w->heap || w->ep < 0 || (r->n_tl && !w->tl))
            bench_die("worker setup failed");
    }
    /* Connection i goes to worker i % n_w; with a fixed rate, the normal
     * connections' first requests are spread over one period. */
    uint64_t period = r->rate > 0 ? (uint64_t)((double)r->n_normal / r->rate * 1e9) : 0;
    for (unsigned i = 0; i < n_conns; i++) {
        worker *w = &r->w[i % r->n_w];
        conn *c = &w->conns[i / r->n_w];
        c->fd = -1;
        c->group = i < r->n_normal ? G_NORMAL : G_HAMMER;
        c->rng.s = bench_mix64(UINT64_C(0x5eed) + ((uint64_t)n_runs << 32) + i);
        c->heap_pos = UINT32_MAX;
        if (c->group == G_NORMAL && period) {
            c->period_ns = period;
            c->next_ns = period * i / (r->n_normal ? r->n_normal : 1); /* + start */
        }
    }
    /* Every connection is open before the clock starts, one at a time, so
     * that the first requests' latencies do not hold a connect storm's
     * SYN retries (reconnects during the run do count). */
    for (unsigned i = 0; i < n_conns; i++) {
        worker *w = &r->w[i % r->n_w];
        preconnect(w, &w->conns[i / r->n_w]);
    }
    r->start_ns = bench_now_ns() + 20000000u;
    r->measure_ns = r->start_ns + (r->max_requests ? 0 : (uint64_t)(cfg.warmup_s * 1e9));
    r->stop_ns = r->measure_ns + (uint64_t)(r->seconds * 1e9);
    for (unsigned i = 0; i < n_conns; i++) {
        worker *w = &r->w[i % r->n_w];
        conn *c = &w->conns[i / r->n_w];
        if (c->period_ns)
            c->next_ns += r->start_ns;
    }
    while (bench_now_ns() < r->start_ns)
        ;
    for (unsigned t = 0; t < r->n_w; t++)
        if (pthread_create(&r->w[t].th, NULL, worker_main, &r->w[t]))
            bench_die("pthread_create");
    pthread_t tl_th;
    if (r->n_tl && pthread_create(&tl_th, NULL, tl_main, r))
        bench_die("pthread_create");
    /* The process's CPU time and the wall time count from the end of the
     * warm-up. */
    for (uint64_t t; (t = bench_now_ns()) < r->measure_ns;) {
        uint64_t d = r->measure_ns - t;
        struct timespec ts = { (time_t)(d / 1000000000u), (long)(d % 1000000000u) };
        nanosleep(&ts, NULL);
    }
    double cpu0 = cpu_process_s();
    uint64_t t0 = bench_now_ns();
    for (unsigned t = 0; t < r->n_w; t++)
        pthread_join(r->w[t].th, NULL);
    r->wall_s = (double)(bench_now_ns() - t0) / 1e9;
    r->proc_cpu_s = cpu_process_s() - cpu0;
    if (r->n_tl)
        pthread_join(tl_th, NULL);
    for (unsigned t = 0; t < r->n_w; t++) {
        worker *w = &r->w[t];
        for (int g = 0; g < N_GROUPS; g++)
            for (int k = 0; k < N_KINDS; k++) {
                h_merge(&r->h[g][k], &w->h[g][k]);
                h_merge(&r->all[g], &w->h[g][k]);
            }
        for (int e = 0; e < N_ERRS; e++)
            r->errs[e] += w->errs[e];
        for (int s = 0; s < 6; s++)
            r->status_seen[s] += w->status_seen[s];
        r->gen_cpu_s += w->cpu_s;
        for (unsigned i = 0; i < r->n_tl; i++) {
            tl_slot *a = &r->tl[i];
            const tl_slot *b = &w->tl[i];
            a->n += b->n;
            a->slow += b->slow;
            a->adds += b->adds;
            a->late += b->late;
            if (b->max_us > a->max_us)
                a->max_us = b->max_us;
            if (b->lag_max_us > a->lag_max_us)
                a->lag_max_us = b->lag_max_us;
        }
        free(w->tl);
        if (g_n_acks + w->n_acks > g_cap_acks) {
            g_cap_acks = 2 * (g_n_acks + w->n_acks);
            g_acks = realloc(g_acks, g_cap_acks * sizeof *g_acks);
            if (!g_acks)
                bench_die("out of memory");
        }
        if (w->n_acks)
            memcpy(g_acks + g_n_acks, w->acks, w->n_acks * sizeof *w->acks);
        g_n_acks += w->n_acks;
        free(w->acks);
        free(w->conns);
        free(w->heap);
        close(w->ep);
    }
    free(r->w);
    r->w = NULL;
}

static uint64_t run_errors(const run *r)
{
    uint64_t n = 0;
    for (int e = 0; e < N_ERRS; e++)
        n += r->errs[e];
    return n;
}

/* ------------------------------------------------------------ reporting */

static void check(int rc, const char *what)
{
    if (rc)
        bench_die("%s: %s: %s", what, dm_errname(rc), dm_errmsg());
}

static void report_hist(const char *name, const hist *h, double wall_s, uint64_t errors)
{
    double rps = wall_s > 0 ? (double)h->n / wall_s : 0;
    if (cfg.is_json)
        printf("{\"suite\":\"server\",\"case\":\"%s\",\"ops_per_s\":%.1f,\"p50_us\":%.0f,"
               "\"p90_us\":%.0f,\"p99_us\":%.0f,\"p999_us\":%.0f,\"max_us\":%" PRIu64
               ",\"requests\":%" PRIu64 ",\"errors\":%" PRIu64 "}\n",
               name, rps, h_pct_us(h, 0.5), h_pct_us(h, 0.9), h_pct_us(h, 0.99),
               h_pct_us(h, 0.999), h->max_us, h->n, errors);
    else
        printf("%-16s %9.0f %8.2f %8.2f %8.2f %8.2f %8.2f %9" PRIu64 " %7" PRIu64 "\n", name,
               rps, h_pct_us(h, 0.5) / 1e3, h_pct_us(h, 0.9) / 1e3, h_pct_us(h, 0.99) / 1e3,
               h_pct_us(h, 0.999) / 1e3, (double)h->max_us / 1e3, h->n, errors);
    fflush(stdout);
}

static void report_value(const char *name, double value, const char *unit)
{
    if (cfg.is_json)
        printf("{\"suite\":\"server\",\"case\":\"%s\",\"value\":%.3f,\"unit\":\"%s\"}\n", name,
               value, unit);
    else
        printf("%-16s %14.3f %s\n", name, value, unit);
    fflush(stdout);
}

static void print_header(void)
{
    if (!cfg.is_json)
        printf("%-16s %9s %8s %8s %8s %8s %8s %9s %7s\n", "case", "req/s", "p50 ms", "p90 ms",
               "p99 ms", "p99.9 ms", "max ms", "requests", "errors");
}

/* The run's table: every group and kind that saw requests, the errors by
 * cause, and the CPU split. */
/* The engine's write stalls since st0 and its compactions; the requests
 * that waited for a turn of their user since the start and the longest
 * wait. */
static void report_counters(const char *prefix, dm_db *db, const dm_stats *st0,
                          http_server *srv)
{
    uint64_t waits;
    double wait_max;
    char wname[64];
    http_user_waits(srv, &waits, &wait_max);
    snprintf(wname, sizeof wname, "%s_user_waits", prefix);
    report_value(wname, (double)waits, "requests_since_start");
    snprintf(wname, sizeof wname, "%s_user_wait_max", prefix);
    report_value(wname, wait_max * 1e3, "ms_since_start");
    dm_stats st;
    char name[64];
    if (dm_stats_get(db, &st) != DM_OK)
        return;
    snprintf(name, sizeof name, "%s_write_stalls", prefix);
    report_value(name, (double)(st.write_stalls - st0->write_stalls), "stalls");
    snprintf(name, sizeof name, "%s_write_stall_ms", prefix);
    report_value(name, (double)(st.write_stall_us - st0->write_stall_us) / 1e3, "ms");
    uint64_t hits = st.block_cache_hits - st0->block_cache_hits;
    uint64_t misses = st.block_cache_misses - st0->block_cache_misses;
    snprintf(name, sizeof name, "%s_block_cache_hit_ratio", prefix);
    report_value(name, hits + misses ? (double)hits / (double)(hits + misses) : 0.0, "ratio");
    /* The run's WAL syncs: how many, the bucket bound under which 99 % of
     * them finished, and how many took over 10 ms. */
    static const uint32_t sync_le[DM_WAL_SYNC_BUCKETS - 1] = DM_WAL_SYNC_BOUNDS_US;
    uint64_t syncs = st.wal_syncs - st0->wal_syncs, cum = 0, slow = 0;
    double sync_p99 = 0;
    for (int k = 0; k < DM_WAL_SYNC_BUCKETS; k++) {
        uint64_t n = st.wal_sync_buckets[k] - st0->wal_sync_buckets[k];
        if (k > 0 && sync_le[k - 1] >= 10000)
            slow += n;
        cum += n;
        if (syncs && !sync_p99 && (double)cum >= 0.99 * (double)syncs)
            sync_p99 = k < DM_WAL_SYNC_BUCKETS - 1 ? sync_le[k] / 1e3 : INFINITY;
    }
    snprintf(name, sizeof name, "%s_wal_syncs", prefix);
    report_value(name, (double)syncs, "syncs");
    snprintf(name, sizeof name, "%s_wal_sync_p99_le", prefix);
    report_value(name, sync_p99, "ms");
    snprintf(name, sizeof name, "%s_wal_syncs_over_10ms", prefix);
    report_value(name, (double)slow, "syncs");
    snprintf(name, sizeof name, "%s_compactions", prefix);
    report_value(name, (double)(st.compactions - st0->compactions), "compactions");
    snprintf(name, sizeof name, "%s_refreshes", prefix);
    report_value(name, (double)(st.refreshes - st0->refreshes), "records");
    snprintf(name, sizeof name, "%s_refreshes_dropped", prefix);
    report_value(name, (double)(st.refreshes_dropped - st0->refreshes_dropped), "refreshes");
}

static void report_run(const char *prefix, const run *r)
{
    char name[64];
    print_header();
    hist total = { 0 };
    for (int g = 0; g < N_GROUPS; g++)
        h_merge(&total, &r->all[g]);
    snprintf(name, sizeof name, "%s", prefix);
    report_hist(name, &total, r->wall_s, run_errors(r));
    for (int g = 0; g < N_GROUPS; g++) {
        if (!r->all[g].n)
            continue;
        if (r->n_hammer) {
            snprintf(name, sizeof name, "%s_%s", prefix, g == G_NORMAL ? "others" : "hammer");
            report_hist(name, &r->all[g], r->wall_s, 0);
        }
        for (int k = 0; k < N_KINDS; k++) {
            if (!r->h[g][k].n)
                continue;
            snprintf(name, sizeof name, "%s%s_%s", prefix, g == G_HAMMER ? "_hammer" : "",
                     kind_names[k]);
            report_hist(name, &r->h[g][k], r->wall_s, 0);
        }
    }
    uint64_t done = total.n + run_errors(r);
    for (int e = 0; e < N_ERRS; e++) {
        if (!r->errs[e] && e != E_STATUS)
            continue;
        snprintf(name, sizeof name, "%s_err_%s", prefix, err_names[e]);
        report_value(name, (double)r->errs[e], "requests");
    }
    for (int s = 1; s < 6; s++)
        if (r->status_seen[s]) {
            snprintf(name, sizeof name, "%s_err_%dxx", prefix, s);
            report_value(name, (double)r->status_seen[s], "requests");
        }
    snprintf(name, sizeof name, "%s_cpu", prefix);
    report_value(name, done ? r->proc_cpu_s * 1e6 / (double)done : 0, "us_cpu_per_request");
    snprintf(name, sizeof name, "%s_gen_cpu", prefix);
    report_value(name, r->proc_cpu_s > 0 ? r->gen_cpu_s / r->proc_cpu_s : 0,
                 "share_of_process_cpu");
}

/* ------------------------------------------------------------ data */

static double load1(void)
{
    double l = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf", &l) != 1)
        l = 0;
    if (f)
        fclose(f);
    return l;
}

/* The resident set in MB: all of it, and the part no file backs (the
 * heap and anonymous maps; the rest is pages of the mapped SSTables and
 * the model, which the kernel may drop). */
static double rss_mb_of(bool anon_only)
{
    uint64_t total, file;
    proc_resident(&total, &file);
    return (double)(anon_only ? total - file : total) / (1024.0 * 1024.0);
}

static double rss_mb(void) { return rss_mb_of(false); }

static void ingest(dm_db *db, uint32_t n_users)
{
    uint64_t total = (uint64_t)n_users * PER_USER;
    bench_rng r = { 42 };
    dm_add_params *ps = bench_xmalloc(sizeof *ps * BATCH);
    char(*texts)[160] = bench_xmalloc(sizeof *texts * BATCH);
    char(*users)[32] = bench_xmalloc(sizeof *users * BATCH);
    uint64_t done = 0, t0 = bench_now_ns();
    while (done < total) {
        uint32_t nb = 0;
        while (nb < BATCH && done + nb < total) {
            uint64_t seq = done + nb;
            dm_add_params_init(&ps[nb]);
            ps[nb].no_extract = 1;
            user_name((uint32_t)(seq % n_users), users[nb], sizeof users[nb]);
            bench_sentence(&r, texts[nb], sizeof texts[nb]);
            ps[nb].user_id = users[nb];
            ps[nb].text = texts[nb];
            nb++;
        }
        check(dm_add_batch(db, ps, nb, NULL), "dm_add_batch");
        done += nb;
        if (!cfg.is_json && isatty(2) && done % (BATCH * 50) == 0)
            fprintf(stderr, "\r  %" PRIu64 "/%" PRIu64, done, total);
    }
    if (!cfg.is_json && isatty(2))
        fprintf(stderr, "\r");
    double add_s = (double)(bench_now_ns() - t0) / 1e9;
    check(dm_sync_indexes(db), "dm_sync_indexes");
    double all_s = (double)(bench_now_ns() - t0) / 1e9;
    report_value("load_memories", (double)total, "memories");
    report_value("load_rate", (double)total / add_s, "memories_per_s");
    report_value("load_rate_indexed", (double)total / all_s, "memories_per_s");
    free(ps);
    free(texts);
    free(users);
}

/* One search per user, untimed by the load: the first search of a user
 * after an open loads its indexes. */
static void warm(dm_db *db, uint32_t n_users)
{
    uint64_t t0 = bench_now_ns();
    char u[32];
    for (uint32_t i = 0; i < n_users; i++) {
        user_name(i, u, sizeof u);
        dm_search_params sp = { .user_id = u, .query = "warm up", .k = 1,
                                .flags = DM_NO_REFRESH };
        dm_search_result *res;
        check(dm_search(db, &sp, &res), "dm_search");
        dm_search_result_free(res);
    }
    report_value("warm_users", (double)(bench_now_ns() - t0) / 1e9, "seconds");
}

/* Every acknowledged add read back under its user. */
static void verify_acks(dm_db *db)
{
    uint64_t missing = 0;
    char u[32];
    for (size_t i = 0; i < g_n_acks; i++) {
        user_name(g_acks[i].user, u, sizeof u);
        dm_scope sc = { .tenant = NULL, .user_id = u };
        dm_memory *m = NULL;
        int rc = dm_get(db, &sc, &g_acks[i].id, 0, &m);
        if (rc != DM_OK || !m || !m->text || !*m->text)
            missing++;
        dm_memory_free(m);
    }
    report_value("adds_acknowledged", (double)g_n_acks, "memories");
    report_value("adds_missing", (double)missing, "memories");
}

/* ------------------------------------------------------------ soak */

typedef struct sampler {
    pthread_t th;
    dm_db *db;
    atomic_bool is_done;
    unsigned n;
    double t_s[4096];
    double mb[4096];      /* resident set */
    double anon[4096];    /* its anonymous part */
    double index[4096];   /* the loaded indexes (dm_stats index_bytes) */
    double other[4096];   /* anonymous beyond the indexes and memtables
                             (and the generator's list of acknowledged adds) */
    double heap[4096];    /* the engine's heap (dm_stats heap_bytes) */
    double loaded[4096];  /* users whose indexes are in memory */
    double unloads[4096]; /* users unloaded since open (dm_stats n_unloads) */
    double drops[4096];   /* mapped pages given back (dm_stats n_map_drops) */
    double tables[4096];  /* its part the open tables hold (table_bytes) */
    double beyond[4096];  /* that heap beyond the indexes, memtables, block
                             cache and tables */
    /* The allocator's own account, when the process runs on jemalloc:
     * what other libraries hold live (jemalloc's allocated bytes beyond
     * the engine's heap and the generator's list), and jemalloc's pages
     * beyond all live allocations (metadata, dirty pages, fragments). */
    double je_others[4096];
    double je_over[4096];
    double alloc[4096];   /* anonymous beyond the engine's heap and the
                             generator's list: the allocator's overhead,
                             the HTTP library's and the threads' stacks */
} sampler;

/* jemalloc's introspection, when the process runs on it (the Release
 * build links it; sanitizer builds do not, and mallctl is then NULL). */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));

static bool je_stats(size_t *allocated, size_t *resident)
{
    if (!mallctl)
        return false;
    uint64_t epoch = 1;
    size_t n = sizeof epoch;
    if (mallctl("epoch", &epoch, &n, &epoch, n)) /* refresh the statistics */
        return false;
    n = sizeof *allocated;
    if (mallctl("stats.allocated", allocated, &n, NULL, 0))
        return false;
    n = sizeof *resident;
    return !mallctl("stats.resident", resident, &n, NULL, 0);
}

static void *sampler_main(void *arg)
{
    sampler *s = arg;
    uint64_t t0 = bench_now_ns();
    unsigned tick = 0;
    while (!atomic_load(&s->is_done)) {
        struct timespec ts = { 0, 100000000 };
        nanosleep(&ts, NULL);
        if (++tick % (RSS_EVERY_S * 10) == 0 && s->n < 4096) {
            dm_stats st;
            if (dm_stats_get(s->db, &st))
                memset(&st, 0, sizeof st);
            double mib = 1024.0 * 1024.0;
            s->t_s[s->n] = (double)(bench_now_ns() - t0) / 1e9;
            s->mb[s->n] = rss_mb();
            s->anon[s->n] = rss_mb_of(true);
            s->index[s->n] = (double)st.index_bytes / mib;
            double acks = (double)atomic_load(&g_ack_bytes) / mib;
            s->other[s->n] = s->anon[s->n] - s->index[s->n] -
                             (double)st.memtable_bytes / mib - acks;
            s->heap[s->n] = (double)st.heap_bytes / mib;
            s->loaded[s->n] = (double)st.n_loaded_users;
            s->unloads[s->n] = (double)st.n_unloads;
            s->drops[s->n] = (double)st.n_map_drops;
            s->tables[s->n] = (double)st.table_bytes / mib;
            s->beyond[s->n] = s->heap[s->n] - s->index[s->n] - s->tables[s->n] -
                              (double)(st.memtable_bytes + st.block_cache_bytes) / mib;
            s->alloc[s->n] = s->anon[s->n] - s->heap[s->n] - acks;
            size_t allocated, resident;
            if (je_stats(&allocated, &resident)) {
                s->je_others[s->n] = (double)allocated / mib - s->heap[s->n] - acks;
                s->je_over[s->n] = (double)(resident - allocated) / mib;
            }
            s->n++;
        }
    }
    return NULL;
}

/* Least-squares slope of y over the samples' times, in units per minute. */
static double slope_per_min(const sampler *s, const double *y)
{
    double st = 0, sy = 0, stt = 0, sty = 0, n = s->n;
    for (unsigned i = 0; i < s->n; i++) {
        st += s->t_s[i];
        sy += y[i];
        stt += s->t_s[i] * s->t_s[i];
        sty += s->t_s[i] * y[i];
    }
    return (n * sty - st * sy) / (n * stt - st * st) * 60;
}

static void report_series(const char *name, const sampler *s, const double *y)
{
    printf("%s (MB, every %d s):", name, RSS_EVERY_S);
    for (unsigned i = 0; i < s->n; i++)
        printf(" %.0f", y[i]);
    printf("\n");
}

static void report_soak(const sampler *s, uint64_t adds)
{
    if (s->n < 2) {
        fprintf(stderr, "bench_server: soak too short for two RSS samples\n");
        return;
    }
    double max = 0;
    for (unsigned i = 0; i < s->n; i++)
        if (s->mb[i] > max)
            max = s->mb[i];
    unsigned z = s->n - 1;
    report_value("soak_rss_first", s->mb[0], "MB");
    report_value("soak_rss_last", s->mb[z], "MB");
    report_value("soak_rss_max", max, "MB");
    report_value("soak_rss_slope", slope_per_min(s, s->mb), "MB_per_min");
    report_value("soak_adds", (double)adds, "memories");
    report_value("soak_rss_per_add", adds ? (s->mb[z] - s->mb[0]) * 1048576.0 / (double)adds : 0,
                 "bytes");
    report_value("soak_anon_first", s->anon[0], "MB");
    report_value("soak_anon_last", s->anon[z], "MB");
    report_value("soak_file_first", s->mb[0] - s->anon[0], "MB");
    report_value("soak_file_last", s->mb[z] - s->anon[z], "MB");
    report_value("soak_index_first", s->index[0], "MB");
    report_value("soak_index_last", s->index[z], "MB");
    report_value("soak_loaded_users_first", s->loaded[0], "users");
    report_value("soak_loaded_users_last", s->loaded[z], "users");
    report_value("soak_unloads", s->unloads[z] - s->unloads[0], "users");
    report_value("soak_map_drops", s->drops[z] - s->drops[0], "passes");
    report_value("soak_index_per_add",
                 adds ? (s->index[z] - s->index[0]) * 1048576.0 / (double)adds : 0, "bytes");
    report_value("soak_other_first", s->other[0], "MB");
    report_value("soak_other_last", s->other[z], "MB");
    report_value("soak_other_slope", slope_per_min(s, s->other), "MB_per_min");
    report_value("soak_heap_first", s->heap[0], "MB");
    report_value("soak_heap_last", s->heap[z], "MB");
    report_value("soak_tables_first", s->tables[0], "MB");
    report_value("soak_tables_last", s->tables[z], "MB");
    report_value("soak_heap_beyond_first", s->beyond[0], "MB");
    report_value("soak_heap_beyond_last", s->beyond[z], "MB");
    report_value("soak_heap_beyond_slope", slope_per_min(s, s->beyond), "MB_per_min");
    report_value("soak_alloc_first", s->alloc[0], "MB");
    report_value("soak_alloc_last", s->alloc[z], "MB");
    report_value("soak_alloc_slope", slope_per_min(s, s->alloc), "MB_per_min");
    if (mallctl) {
        report_value("soak_je_others_first", s->je_others[0], "MB");
        report_value("soak_je_others_last", s->je_others[z], "MB");
        report_value("soak_je_overhead_first", s->je_over[0], "MB");
        report_value("soak_je_overhead_last", s->je_over[z], "MB");
    }
    if (!cfg.is_json) {
        report_series("rss samples", s, s->mb);
        report_series("anonymous", s, s->anon);
        report_series("indexes", s, s->index);
        printf("loaded users (every %d s):", RSS_EVERY_S);
        for (unsigned i = 0; i < s->n; i++)
            printf(" %.0f", s->loaded[i]);
        printf("\n");
        report_series("anonymous beyond indexes and memtables", s, s->other);
        report_series("engine heap", s, s->heap);
        report_series("tables' heap", s, s->tables);
        report_series("engine heap beyond indexes, memtables, block cache, tables", s,
                      s->beyond);
        report_series("anonymous beyond the engine heap", s, s->alloc);
        if (mallctl) {
            report_series("  of it, other libraries' live allocations", s, s->je_others);
            report_series("  of it, jemalloc's pages beyond live allocations", s, s->je_over);
        }
    }
}

/* ------------------------------------------------------------ main */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_server [--json] [--scale F] [--dir D] [--model PATH]\n"
            "                    [--conns C] [--seconds T] [--requests R] [--rate R]\n"
            "                    [--mix native|core|health|miss|kind=w,...] [--gen-threads N]\n"
            "                    [--server-threads N] [--write-threads N]\n"
            "                    [--user-concurrency N]\n"
            "                    [--timeout-ms MS] [--hammer]\n"
            "                    [--hammer-conns N] [--soak S] [--warmup S] [--keep]\n"
            "                    [--reuse] [--timeline MS] [--sync-interval-ms MS]\n"
            "                    [--session-s S] [--user-idle S] [--index-memory BYTES]\n"
            "                    [--map-memory BYTES] [--block-cache BYTES] [--pread-tables]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--json"))
            cfg.is_json = true;
        else if (!strcmp(a, "--scale") && has)
            cfg.scale = atof(argv[++i]);
        else if (!strcmp(a, "--dir") && has)
            cfg.dir = argv[++i];
        else if (!strcmp(a, "--model") && has)
            cfg.model = argv[++i];
        else if (!strcmp(a, "--conns") && has)
            cfg.conns = (unsigned)atoi(argv[++i]);
        else if (!strcmp(a, "--seconds") && has)
            cfg.seconds = atof(argv[++i]);
        else if (!strcmp(a, "--requests") && has)
            cfg.max_requests = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--rate") && has)
            cfg.rate = atof(argv[++i]);
        else if (!strcmp(a, "--mix") && has)
            cfg.mix = argv[++i];
        else if (!strcmp(a, "--gen-threads") && has)
            cfg.gen_threads = (unsigned)atoi(argv[++i]);
        else if (!strcmp(a, "--server-threads") && has)
            cfg.server_threads = (unsigned)atoi(argv[++i]);
        else if (!strcmp(a, "--write-threads") && has)
            cfg.write_threads = (unsigned)atoi(argv[++i]);
        else if (!strcmp(a, "--user-concurrency") && has)
            cfg.user_concurrency = (unsigned)atoi(argv[++i]);
        else if (!strcmp(a, "--timeout-ms") && has)
            cfg.timeout_ms = (unsigned)atoi(argv[++i]);
        else if (!strcmp(a, "--hammer"))
            cfg.is_hammer = true;
        else if (!strcmp(a, "--hammer-conns") && has)
            cfg.hammer_conns = (unsigned)atoi(argv[++i]);
        else if (!strcmp(a, "--soak") && has)
            cfg.soak_s = atof(argv[++i]);
        else if (!strcmp(a, "--keep"))
            cfg.is_keep = true;
        else if (!strcmp(a, "--reuse"))
            cfg.is_reuse = true;
        else if (!strcmp(a, "--warmup") && has)
            cfg.warmup_s = atof(argv[++i]);
        else if (!strcmp(a, "--timeline") && has)
            cfg.timeline_ms = (unsigned)atoi(argv[++i]);
        else if (!strcmp(a, "--sync-interval-ms") && has)
            cfg.sync_interval_ms = (unsigned)atoi(argv[++i]);
        else if (!strcmp(a, "--session-s") && has)
            cfg.session_s = atof(argv[++i]);
        else if (!strcmp(a, "--user-idle") && has)
            cfg.user_idle_s = atol(argv[++i]);
        else if (!strcmp(a, "--index-memory") && has)
            cfg.index_memory = (size_t)strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--block-cache") && has)
            cfg.block_cache = (size_t)strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--map-memory") && has)
            cfg.map_memory = (size_t)strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--pread-tables"))
            cfg.is_pread = true;
        else
            usage();
    }
    if (!cfg.conns || !cfg.gen_threads || cfg.seconds <= 0 || cfg.scale <= 0 ||
        !(cfg.warmup_s >= 0 && cfg.warmup_s <= 3600))
        usage();
    parse_mix(cfg.mix);
    signal(SIGPIPE, SIG_IGN);
    /* Both ends of every connection live in this process. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    uint32_t n_users = (uint32_t)(10000 * cfg.scale);
    if (n_users < 10)
        n_users = 10;
    FILE *info = cfg.is_json ? stderr : stdout;
    fprintf(info,
            "bench_server: %u users x %u memories = %" PRIu64 ", %u connections%s, %s, mix %s, "
            "%u generator thread(s), load average %.2f, dir %s\n",
            n_users, PER_USER, (uint64_t)n_users * PER_USER, cfg.conns,
            cfg.is_hammer ? " (+ hammer)" : "",
            cfg.rate > 0 ? "fixed rate" : "closed loop", cfg.mix, cfg.gen_threads, load1(),
            cfg.dir);
    if (cfg.rate > 0)
        fprintf(info, "  offered: %.0f requests/s\n", cfg.rate);

    if (!cfg.is_reuse)
        bench_rm_rf(cfg.dir);
    dm_options o;
    dm_options_init(&o);
    o.model_path = cfg.model;
    if (cfg.sync_interval_ms)
        o.sync_interval_ms = cfg.sync_interval_ms;
    if (cfg.user_idle_s >= 0)
        o.user_idle_s = (uint32_t)cfg.user_idle_s;
    if (cfg.index_memory)
        o.index_memory_bytes = cfg.index_memory;
    if (cfg.map_memory)
        o.map_memory_bytes = cfg.map_memory;
    if (cfg.block_cache)
        o.block_cache_bytes = cfg.block_cache;
    o.pread_tables = cfg.is_pread;
    dm_db *db;
    check(dm_open(cfg.dir, &o, &db), "dm_open");
    if (!cfg.is_reuse)
        ingest(db, n_users);
    warm(db, n_users);

    http_config hc;
    http_config_init(&hc);
    hc.port = 0;
    hc.rate_per_s = -1;
    hc.n_threads = cfg.server_threads;
    hc.n_write_threads = cfg.write_threads;
    hc.user_concurrency = cfg.user_concurrency;
    hc.max_connections = cfg.conns + cfg.hammer_conns + 64;
    hc.data_dir = cfg.dir;
    http_server *srv;
    check(http_start(db, &hc, &srv), "http_start");

    /* The last user is the hammer's; the normal load never picks it, in
     * the baseline either, so that both runs see the same users. */
    run base = { 0 };
    base.port = http_port(srv);
    base.n_users = cfg.is_hammer ? n_users - 1 : n_users;
    base.hammer_user = n_users - 1;
    base.n_normal = cfg.conns;
    base.seconds = cfg.soak_s > 0 ? cfg.soak_s : cfg.seconds;
    base.max_requests = cfg.max_requests;
    base.rate = cfg.rate;
    base.db = db;

    sampler *smp = NULL;
    if (cfg.soak_s > 0) {
        smp = calloc(1, sizeof *smp);
        if (smp)
            smp->db = db;
        if (!smp || pthread_create(&smp->th, NULL, sampler_main, smp))
            bench_die("sampler");
    }
    size_t acks0 = g_n_acks;
    dm_stats st0 = { 0 };
    (void)dm_stats_get(db, &st0);
    run_load(&base);
    if (smp) {
        atomic_store(&smp->is_done, true);
        pthread_join(smp->th, NULL);
    }
    report_run(cfg.soak_s > 0 ? "soak" : "run", &base);
    report_counters(cfg.soak_s > 0 ? "soak" : "run", db, &st0, srv);
    report_timeline(&base);
    if (smp) {
        report_soak(smp, g_n_acks - acks0);
        free(smp);
    }

    if (cfg.is_hammer) {
        run ham = { 0 };
        ham.port = base.port;
        ham.n_users = base.n_users;
        ham.hammer_user = base.hammer_user;
        ham.n_normal = cfg.conns;
        ham.n_hammer = cfg.hammer_conns;
        ham.seconds = cfg.seconds;
        ham.max_requests = cfg.max_requests;
        ham.rate = cfg.rate;
        ham.db = db;
        (void)dm_stats_get(db, &st0);
        run_load(&ham);
        report_run("hammer", &ham);
        report_counters("hammer", db, &st0, srv);
        report_timeline(&ham);
        double p0 = h_pct_us(&base.all[G_NORMAL], 0.99);
        double p1 = h_pct_us(&ham.all[G_NORMAL], 0.99);
        report_value("others_p99_base", p0 / 1e3, "ms");
        report_value("others_p99_hammer", p1 / 1e3, "ms");
        report_value("others_p99_ratio", p0 > 0 ? p1 / p0 : 0, "x");
    }

    http_stop(srv, 5000);
    verify_acks(db);
    check(dm_close(db), "dm_close");
    if (!cfg.is_keep)
        bench_rm_rf(cfg.dir);
    free(g_acks);
    return 0;
}
