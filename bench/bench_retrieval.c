/*
 * bench_retrieval.c -- the speed of the whole retrieval pipeline (dm_search:
 * query embedding, vector + BM25 + temporal legs, RRF, cognitive score,
 * MMR, context neighbours) through the public API, with the legs' peers
 * (hnswlib, SQLite FTS5) timed alone beside them.
 *
 * Workload: U users with 100 memories each plus one "big" user with B
 * memories (defaults 10,000 x 100 + 100,000 = 1.1M), interleaved
 * round-robin and generated as in bench_engine.c (English sentences from
 * fixed word lists).  Every 20 consecutive memories of a user form a
 * session, so that the context-neighbour stage has turns to walk, and the
 * event times are spread evenly over the year 2023, so that time
 * expressions select something.  Ingest is dm_add_batch with sync none and
 * then dm_sync_indexes (not the measured part); then the database is
 * closed and reopened and every user is loaded by one search, so that a
 * fresh ingest and a --reuse of a --keep run measure the same state.
 *
 * Queries: short questions from the same word lists ("Who cooked a sushi
 * dinner?", "What did Ann do near the beach?"); every fifth has a time
 * expression ("last week", "in May", "recently", ...).  The reference time
 * (now_us) is 2024-01-01, the end of the data's year.  k = 10.  Every
 * timed search uses DM_NO_REFRESH, so that the database does not change
 * under the benchmark, except search_big_refresh (default flags), which
 * runs last to show what refreshing the results' salience costs (a --keep
 * run leaves those refreshes in the database: the salience of some of the
 * big user's memories is lifted for a later --reuse run).
 *
 * Cases (latencies of single calls, CLOCK_MONOTONIC; each case runs
 * --rounds times back to back and reports its round with the lowest p50;
 * ops/s is that round's queries over its summed latencies):
 *   ingest, close, reopen  seconds (not the subject; for orientation)
 *   load_user       the first search of each small user after the reopen
 *                   (loads its indexes); first_big the same for the big
 *                   user, in ms
 *   embed_query     the built-in model embedding one query (embedder_embed)
 *   big_vector      the big user, legs = vector only, no MMR, no neighbours
 *   peer_hnswlib    hnswlib alone on the big user's vectors (exported with
 *                   dm_export), the queries embedded beforehand, the legs'
 *                   depth (50) nearest, M 16, ef_construction 128, ef 64
 *                   (the engine's settings)
 *   big_bm25        legs = BM25 only, no MMR, no neighbours
 *   peer_fts5       SQLite FTS5 (porter unicode61, in memory) alone on the
 *                   big user's texts, the same queries as OR queries of
 *                   their words less our analyzer's stop words, best 50
 *                   by bm25(); one round
 *   big_temporal    legs = temporal only, the queries with a time
 *                   expression
 *   big_fused       all legs, RRF and the cognitive score, no MMR, no
 *                   neighbours (value of these four: mean hits returned)
 *   big_mmr         ... plus MMR; value: p50 added over big_fused
 *   search_big      the whole pipeline; value: p50 added over big_mmr
 *   search_big_cpu  the same round in thread CPU time per query; value: the
 *                   share of the round the thread waited for a CPU
 *   big_timeq       search_big's queries with a time expression; value:
 *                   how many of them the engine read as time
 *   small_*, search_small, small_timeq: the same on random 100-memory users
 *   mt_small_1/2    throughput of 1 and 2 threads sharing the same small-
 *                   user queries (three alternating rounds, best of each);
 *                   value of mt_small_2: its throughput over one thread's;
 *                   mt_small_N_runq: the share of those rounds' thread time
 *                   spent runnable but waiting for a CPU;
 *                   mt_small_2_sleeps: voluntary context switches per
 *                   query in the 2-thread round (a thread blocked, on a
 *                   lock mostly)
 *   search_big_refresh  search_big with refresh on; value: p50 added
 * The leg cases include the fixed costs of a search (embedding the query,
 * reading the hits' records, building the result): they time the pipeline
 * from outside, as a user would.  The peers do not: they are the bare
 * index, as a lower bound.  The header line gives the machine's load
 * average at the start: on a shared VM the figures follow it.
 *
 * usage: bench_retrieval [--json] [--scale F] [--dir D] [--model PATH]
 *                        [--queries N] [--rounds R] [--no-peers]
 *                        [--keep] [--reuse] [--only big,small,mt,refresh]
 * --only runs the named groups of cases after the reopen and the users'
 * loading (big: embed_query, the peers and the big_* cases; small: the
 * small_* cases; mt: mt_small_*; refresh: search_big_refresh).
 */
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sys/resource.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "bench_words.h"
#include "deltamemory.h"
#include "embed/embed.h"
#include "index/analyze.h"

#ifdef BR_WITH_FTS5
#include <sqlite3.h>
#endif

#ifdef BR_WITH_HNSWLIB
/* bench_retrieval_peers.cc (C++, the same program). */
typedef struct br_hnswlib br_hnswlib;
br_hnswlib *br_hnswlib_build(const float *vecs, size_t n, uint32_t dim, uint32_t m,
                             uint32_t ef_construction);
void br_hnswlib_set_ef(br_hnswlib *h, uint32_t ef);
uint64_t br_hnswlib_search(br_hnswlib *h, const float *q, uint32_t k, uint32_t *n_out);
void br_hnswlib_free(br_hnswlib *h);
#endif

static struct {
    bool is_json;
    double scale;
    const char *dir;
    const char *model;
    uint32_t n_queries;
    uint32_t rounds;
    bool with_peers;
    bool is_keep;  /* leave the database for a later --reuse run */
    bool is_reuse; /* skip ingest: search the database a --keep run left */
    const char *only; /* NULL, or the groups to run: big,small,mt,refresh */
} cfg = { false, 1.0, "/tmp/dm-bench-retrieval", NULL, 1000, 3, true, false, false, NULL };

/* Whether the group of cases named g runs (--only). */
static bool group_on(const char *g)
{
    if (!cfg.only)
        return true;
    size_t n = strlen(g);
    for (const char *p = cfg.only; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !memcmp(p, g, n))
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

#define BATCH 1000
#define SESSION_LEN 20
#define K 10
#define LEG_DEPTH 50 /* the legs' default depth: what the peers fetch */
#define NO_STAGES (DM_NO_MMR | DM_NO_NEIGHBOURS)

/* The data's year, 2023, and the reference time at its end. */
#define BASE_US INT64_C(1672531200000000)
#define YEAR_US (INT64_C(365) * 86400 * 1000000)
#define REF_US (BASE_US + YEAR_US)

/* The time expressions of the queries, relative to REF_US. */
static const char *const query_times[] = { "last week", "in May", "recently", "last month",
                                           "in March", "two weeks ago" };


/* A short question from the same words; `when` (NULL = none) is put
 * before the question mark. */
static void question(bench_rng *r, const char *when, char *out, size_t cap)
{
    char body[128];
    switch (bench_rng_below(r, 5)) {
    case 0:
        snprintf(body, sizeof body, "Who %s %s", PICK(r, verbs), PICK(r, objects));
        break;
    case 1:
        snprintf(body, sizeof body, "What did %s do %s", PICK(r, names), PICK(r, places));
        break;
    case 2:
        snprintf(body, sizeof body, "Did %s mention %s", PICK(r, names), PICK(r, objects));
        break;
    case 3:
        snprintf(body, sizeof body, "What do I know about %s", PICK(r, objects));
        break;
    default:
        snprintf(body, sizeof body, "Has %s %s %s", PICK(r, names), PICK(r, verbs),
                 PICK(r, objects));
        break;
    }
    snprintf(out, cap, "%s%s%s?", body, when ? " " : "", when ? when : "");
}

typedef struct query {
    char text[160];
    char user[32];
    bool is_timed;
} query;

/* n questions, every fifth with a time expression (in turn from
 * query_times); user "big", or random small users when n_users > 0. */
static query *make_queries(bench_rng *r, size_t n, uint32_t n_users)
{
    query *qs = bench_xmalloc(n * sizeof *qs);
    for (size_t i = 0; i < n; i++) {
        qs[i].is_timed = i % 5 == 4;
        const char *when = qs[i].is_timed ? query_times[(i / 5) % N_OF(query_times)] : NULL;
        question(r, when, qs[i].text, sizeof qs[i].text);
        if (n_users)
            snprintf(qs[i].user, sizeof qs[i].user, "user%05u",
                     (uint32_t)bench_rng_below(r, n_users));
        else
            snprintf(qs[i].user, sizeof qs[i].user, "big");
    }
    return qs;
}

static void check(int rc, const char *what)
{
    if (rc)
        bench_die("%s: %s: %s", what, dm_errname(rc), dm_errmsg());
}

static dm_db *open_db(void)
{
    dm_options o;
    dm_options_init(&o);
    o.sync = DM_SYNC_NONE;
    o.model_path = cfg.model;
    dm_db *db;
    check(dm_open(cfg.dir, &o, &db), "dm_open");
    return db;
}

static void report(const char *name, double ops_per_s, double p50, double p99, double extra,
                   const char *extra_name)
{
    if (cfg.is_json)
        printf("{\"suite\":\"retrieval\",\"case\":\"%s\",\"ops_per_s\":%.1f,\"p50_us\":%.2f,"
               "\"p99_us\":%.2f,\"%s\":%.3f}\n",
               name, ops_per_s, p50, p99, extra_name, extra);
    else
        printf("%-18s %10.0f %10.2f %10.2f %14.3f %s\n", name, ops_per_s, p50, p99, extra,
               extra_name);
    fflush(stdout);
}

/* The machine's 1-minute load average (0 where unavailable): the VM is
 * shared, and the figures follow its load. */
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

static double secs_since(uint64_t t0_ns)
{
    return (double)(bench_now_ns() - t0_ns) / 1e9;
}

/* ------------------------------------------------------------ ingest */

/* The workload of the header comment in batches of BATCH, then the wait
 * for the indexer; reported for orientation only (bench_engine measures
 * ingest properly). */
static void ingest(dm_db *db, uint32_t n_users, uint32_t n_big, uint64_t total)
{
    bench_rng r = { 42 };
    dm_add_params *ps = bench_xmalloc(sizeof *ps * BATCH);
    char(*texts)[160] = bench_xmalloc(sizeof *texts * BATCH);
    char(*users)[32] = bench_xmalloc(sizeof *users * BATCH);
    char(*sessions)[16] = bench_xmalloc(sizeof *sessions * BATCH);
    uint64_t done = 0, big_done = 0;
    int64_t step_us = YEAR_US / (int64_t)total;
    uint64_t t0 = bench_now_ns();
    while (done < total) {
        uint32_t nb = 0;
        while (nb < BATCH && done + nb < total) {
            uint64_t seq = done + nb;
            /* Every (total / n_big)-th memory goes to the big user, as in
             * bench_engine.c; the others go round-robin, so a small user's
             * i-th memory is number (seq - big_done) / n_users. */
            bool is_big = big_done < n_big && seq * n_big / total >= big_done;
            uint64_t nth;
            dm_add_params_init(&ps[nb]);
            if (is_big) {
                snprintf(users[nb], sizeof users[nb], "big");
                nth = big_done++;
            } else {
                snprintf(users[nb], sizeof users[nb], "user%05u",
                         (uint32_t)((seq - big_done) % n_users));
                nth = (seq - big_done) / n_users;
            }
            snprintf(sessions[nb], sizeof sessions[nb], "s%05u", (uint32_t)(nth / SESSION_LEN));
            bench_sentence(&r, texts[nb], sizeof texts[nb]);
            ps[nb].user_id = users[nb];
            ps[nb].session_id = sessions[nb];
            ps[nb].text = texts[nb];
            ps[nb].event_time_us = BASE_US + (int64_t)seq * step_us;
            nb++;
        }
        check(dm_add_batch(db, ps, nb, NULL), "dm_add_batch");
        done += nb;
        if (!cfg.is_json && isatty(2) && done % (BATCH * 50) == 0)
            fprintf(stderr, "\r  %" PRIu64 "/%" PRIu64, done, total);
    }
    double add_s = secs_since(t0);
    if (!cfg.is_json && isatty(2))
        fprintf(stderr, "\r");
    uint64_t t1 = bench_now_ns();
    check(dm_sync_indexes(db), "dm_sync_indexes");
    double catchup_s = secs_since(t1);
    report("ingest", (double)total / (add_s + catchup_s), 0, 0, add_s + catchup_s, "seconds");
    free(ps);
    free(texts);
    free(users);
    free(sessions);
}

/* One search of every user, so that every index is loaded before the
 * timed cases: the first search of a user after open loads its indexes
 * (checkpoint and index log), and its time is reported as load_user (the
 * small users) and first_big. */
static void load_users(dm_db *db, uint32_t n_users)
{
    bench_lat lat;
    bench_lat_init(&lat, n_users);
    double big_ms = 0;
    char u[32];
    for (uint32_t i = 0; i <= n_users; i++) {
        if (i == n_users)
            snprintf(u, sizeof u, "big");
        else
            snprintf(u, sizeof u, "user%05u", i);
        dm_search_params sp = { .user_id = u, .query = "warm up", .k = 1,
                                .flags = DM_NO_REFRESH, .now_us = REF_US };
        dm_search_result *res;
        uint64_t s = bench_now_ns();
        check(dm_search(db, &sp, &res), "dm_search");
        uint64_t ns = bench_now_ns() - s;
        if (i < n_users)
            bench_lat_add(&lat, ns);
        else
            big_ms = (double)ns / 1e6;
        dm_search_result_free(res);
    }
    report("load_user", 0, bench_lat_pct_us(&lat, 0.50), bench_lat_pct_us(&lat, 0.99), n_users,
           "users");
    report("first_big", 0, 0, 0, big_ms, "ms");
    bench_lat_fini(&lat);
}

/* Untimed searches, to warm the caches for the queries of a case. */
static void warm(dm_db *db, const query *qs, size_t n_qs)
{
    for (size_t i = 0; i < n_qs; i++) {
        dm_search_params sp = { .user_id = qs[i].user, .query = qs[i].text, .k = K,
                                .flags = DM_NO_REFRESH, .now_us = REF_US };
        dm_search_result *res;
        check(dm_search(db, &sp, &res), "dm_search");
        dm_search_result_free(res);
    }
}

/* ------------------------------------------------------------ search cases */

typedef struct case_run {
    bench_lat lat;       /* every query of the round */
    bench_lat lat_timed; /* the queries with a time expression */
    bench_lat cpu;       /* every query's thread CPU time */
    double runq_share;   /* of the round, the share the thread spent
                            runnable but waiting for a CPU */
    double total_s;      /* summed latencies */
    double timed_s;
    uint64_t n_hits;
    uint32_t n_understood; /* timed queries the engine read as time */
    uint32_t n_misread;    /* untimed queries it read as time */
} case_run;

static void case_init(case_run *c, size_t n)
{
    bench_lat_init(&c->lat, n);
    bench_lat_init(&c->lat_timed, n);
    bench_lat_init(&c->cpu, n);
    c->runq_share = 0;
    c->total_s = c->timed_s = 0;
    c->n_hits = 0;
    c->n_understood = c->n_misread = 0;
}

static void case_fini(case_run *c)
{
    bench_lat_fini(&c->lat);
    bench_lat_fini(&c->lat_timed);
    bench_lat_fini(&c->cpu);
}

static void run_round(dm_db *db, const query *qs, size_t n, unsigned legs, unsigned flags,
                      bool only_timed, case_run *c)
{
    double on0, rq0, on1, rq1;
    uint64_t t0 = bench_now_ns();
    bench_sched_times(&on0, &rq0);
    for (size_t i = 0; i < n; i++) {
        if (only_timed && !qs[i].is_timed)
            continue;
        dm_search_params sp = { .user_id = qs[i].user, .query = qs[i].text, .k = K,
                                .flags = flags, .legs = legs, .now_us = REF_US };
        dm_search_result *res;
        /* The thread's CPU time around the wall-clock pair, so that its
         * system call is not inside the wall-clock latency. */
        struct timespec c0, c1;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
        uint64_t s = bench_now_ns();
        check(dm_search(db, &sp, &res), "dm_search");
        uint64_t ns = bench_now_ns() - s;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
        bench_lat_add(&c->cpu, (uint64_t)((c1.tv_sec - c0.tv_sec) * 1000000000LL +
                                          (c1.tv_nsec - c0.tv_nsec)));
        bench_lat_add(&c->lat, ns);
        c->total_s += (double)ns / 1e9;
        if (qs[i].is_timed) {
            bench_lat_add(&c->lat_timed, ns);
            c->timed_s += (double)ns / 1e9;
            c->n_understood += res->time_label[0] != 0;
        } else {
            c->n_misread += res->time_label[0] != 0;
        }
        c->n_hits += res->n;
        dm_search_result_free(res);
    }
    bench_sched_times(&on1, &rq1);
    double wall_s = secs_since(t0);
    c->runq_share = wall_s > 0 ? (rq1 - rq0) / wall_s : 0;
}

/* cfg.rounds rounds of the case; *best receives the one with the lowest
 * p50 (the caller frees it with case_fini). */
static void run_case(dm_db *db, const query *qs, size_t n, unsigned legs, unsigned flags,
                     bool only_timed, case_run *best)
{
    case_init(best, n);
    run_round(db, qs, n, legs, flags, only_timed, best);
    for (uint32_t r = 1; r < cfg.rounds; r++) {
        case_run c;
        case_init(&c, n);
        run_round(db, qs, n, legs, flags, only_timed, &c);
        if (bench_lat_pct_us(&c.lat, 0.5) < bench_lat_pct_us(&best->lat, 0.5)) {
            case_fini(best);
            *best = c;
        } else {
            case_fini(&c);
        }
    }
    if (best->n_misread)
        fprintf(stderr, "bench_retrieval: %u queries without a time expression were read "
                        "as time\n", best->n_misread);
}

static double p50_of(case_run *c)
{
    return bench_lat_pct_us(&c->lat, 0.50);
}

static void report_case(const char *name, case_run *c, double extra, const char *extra_name)
{
    report(name, c->total_s > 0 ? (double)c->lat.n / c->total_s : 0, bench_lat_pct_us(&c->lat, 0.50),
           bench_lat_pct_us(&c->lat, 0.99), extra, extra_name);
}

static double mean_hits(const case_run *c)
{
    return c->lat.n ? (double)c->n_hits / (double)c->lat.n : 0;
}

/* The stage chain on one set of queries (the big user or the small ones);
 * prefix "big" or "small".  Peers are reported between the legs by the
 * callbacks, which may be NULL; *full_p50 (may be NULL) receives the whole
 * pipeline's p50. */
typedef void (*peer_fn)(void *arg);

static void stage_cases(dm_db *db, const query *qs, size_t n, const char *prefix,
                        const char *full_name, peer_fn after_vector, peer_fn after_bm25,
                        void *peer_arg, double *full_p50)
{
    char name[64];
    case_run c, prev;

    run_case(db, qs, n, DM_LEG_VECTOR, DM_NO_REFRESH | NO_STAGES, false, &c);
    snprintf(name, sizeof name, "%s_vector", prefix);
    report_case(name, &c, mean_hits(&c), "hits");
    case_fini(&c);
    if (after_vector)
        after_vector(peer_arg);

    run_case(db, qs, n, DM_LEG_BM25, DM_NO_REFRESH | NO_STAGES, false, &c);
    snprintf(name, sizeof name, "%s_bm25", prefix);
    report_case(name, &c, mean_hits(&c), "hits");
    case_fini(&c);
    if (after_bm25)
        after_bm25(peer_arg);

    run_case(db, qs, n, DM_LEG_TEMPORAL, DM_NO_REFRESH | NO_STAGES, true, &c);
    snprintf(name, sizeof name, "%s_temporal", prefix);
    report_case(name, &c, mean_hits(&c), "hits");
    case_fini(&c);

    run_case(db, qs, n, 0, DM_NO_REFRESH | NO_STAGES, false, &prev);
    snprintf(name, sizeof name, "%s_fused", prefix);
    report_case(name, &prev, mean_hits(&prev), "hits");

    run_case(db, qs, n, 0, DM_NO_REFRESH | DM_NO_NEIGHBOURS, false, &c);
    snprintf(name, sizeof name, "%s_mmr", prefix);
    report_case(name, &c, p50_of(&c) - p50_of(&prev), "p50_added_us");
    case_fini(&prev);
    prev = c;

    run_case(db, qs, n, 0, DM_NO_REFRESH, false, &c);
    report_case(full_name, &c, p50_of(&c) - p50_of(&prev), "p50_added_us");
    case_fini(&prev);
    if (full_p50)
        *full_p50 = p50_of(&c);
    /* The same round in the thread's CPU time: what the code costs, apart
     * from the time the shared machine kept the thread off a CPU. */
    snprintf(name, sizeof name, "%s_cpu", full_name);
    report(name, 0, bench_lat_pct_us(&c.cpu, 0.50), bench_lat_pct_us(&c.cpu, 0.99),
           c.runq_share, "runq_share");

    /* The same round's queries with a time expression. */
    snprintf(name, sizeof name, "%s_timeq", prefix);
    report(name, c.timed_s > 0 ? (double)c.lat_timed.n / c.timed_s : 0,
           bench_lat_pct_us(&c.lat_timed, 0.50), bench_lat_pct_us(&c.lat_timed, 0.99),
           c.n_understood, "time_understood");
    case_fini(&c);
}

/* ------------------------------------------------------------ threads */

typedef struct mt_arg {
    dm_db *db;
    const query *qs;
    size_t n, first, step;
    pthread_barrier_t *start;
    bench_lat lat;
    double runq_s; /* the thread's wait for a CPU over its queries */
} mt_arg;

static void *mt_main(void *p)
{
    mt_arg *a = p;
    double on0, rq0, on1, rq1;
    pthread_barrier_wait(a->start);
    bench_sched_times(&on0, &rq0);
    for (size_t i = a->first; i < a->n; i += a->step) {
        dm_search_params sp = { .user_id = a->qs[i].user, .query = a->qs[i].text, .k = K,
                                .flags = DM_NO_REFRESH, .now_us = REF_US };
        dm_search_result *res;
        uint64_t s = bench_now_ns();
        check(dm_search(a->db, &sp, &res), "dm_search");
        bench_lat_add(&a->lat, bench_now_ns() - s);
        dm_search_result_free(res);
    }
    bench_sched_times(&on1, &rq1);
    a->runq_s = rq1 - rq0;
    return NULL;
}

/* The result of one round of mt_round. */
typedef struct mt_result {
    double qps;        /* queries per second of wall time */
    double runq_share; /* of the threads' time, the share spent waiting for
                          a CPU (the machine's other load, or each other) */
    double sleeps;     /* voluntary context switches per query: a thread
                          that blocked (on a lock, mostly) */
} mt_result;

/* n queries shared by n_threads threads (thread t takes every n_threads-th
 * from t); every latency goes to *all. */
static mt_result mt_round(dm_db *db, const query *qs, size_t n, uint32_t n_threads,
                          bench_lat *all)
{
    mt_arg args[2];
    pthread_t th[2];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, n_threads + 1);
    for (uint32_t t = 0; t < n_threads; t++) {
        args[t] = (mt_arg){ .db = db, .qs = qs, .n = n, .first = t, .step = n_threads,
                            .start = &start };
        bench_lat_init(&args[t].lat, n);
        if (pthread_create(&th[t], NULL, mt_main, &args[t]))
            bench_die("pthread_create");
    }
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    pthread_barrier_wait(&start);
    uint64_t t0 = bench_now_ns();
    for (uint32_t t = 0; t < n_threads; t++)
        pthread_join(th[t], NULL);
    double wall_s = secs_since(t0);
    getrusage(RUSAGE_SELF, &ru1);
    pthread_barrier_destroy(&start);
    all->n = 0;
    all->is_sorted = 0;
    double rq_s = 0;
    for (uint32_t t = 0; t < n_threads; t++) {
        for (size_t i = 0; i < args[t].lat.n; i++)
            bench_lat_add(all, args[t].lat.ns[i]);
        bench_lat_fini(&args[t].lat);
        rq_s += args[t].runq_s;
    }
    /* Less the main thread's own two (the barrier and the joins). */
    long sw = ru1.ru_nvcsw - ru0.ru_nvcsw - 1 - (long)n_threads;
    mt_result r = { (double)n / wall_s, 0, sw > 0 ? (double)sw / (double)n : 0 };
    if (wall_s > 0)
        r.runq_share = rq_s / (wall_s * n_threads);
    return r;
}

static void mt_cases(dm_db *db, const query *qs, size_t n)
{
    bench_lat lat[2], tmp;
    mt_result best[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
    bench_lat_init(&lat[0], n);
    bench_lat_init(&lat[1], n);
    bench_lat_init(&tmp, n);
    warm(db, qs, n);
    /* Alternating rounds, so that both thread counts see the same spread
     * of the machine's other load. */
    for (int round = 0; round < 3; round++) {
        for (uint32_t t = 0; t < 2; t++) {
            mt_result r = mt_round(db, qs, n, t + 1, &tmp);
            if (r.qps > best[t].qps) {
                best[t] = r;
                bench_lat swap = lat[t];
                lat[t] = tmp;
                tmp = swap;
            }
        }
    }
    report("mt_small_1", best[0].qps, bench_lat_pct_us(&lat[0], 0.50),
           bench_lat_pct_us(&lat[0], 0.99), 1, "threads");
    report("mt_small_2", best[1].qps, bench_lat_pct_us(&lat[1], 0.50),
           bench_lat_pct_us(&lat[1], 0.99), best[0].qps > 0 ? best[1].qps / best[0].qps : 0,
           "x_one_thread");
    /* How much of those rounds the threads spent runnable but without a
     * CPU: where the second thread's shortfall is the machine's. */
    report("mt_small_1_runq", 0, 0, 0, best[0].runq_share, "share");
    report("mt_small_2_runq", 0, 0, 0, best[1].runq_share, "share");
    /* How often a thread went to sleep (waiting for a lock, mostly). */
    report("mt_small_2_sleeps", 0, 0, 0, best[1].sleeps, "per_query");
    bench_lat_fini(&lat[0]);
    bench_lat_fini(&lat[1]);
    bench_lat_fini(&tmp);
}

/* ------------------------------------------------------------ peers */

/* The big user's memories, from dm_export. */
typedef struct corpus {
    float *vecs;
    char **texts;
    size_t n, cap;
    uint32_t dim;
} corpus;

static int collect(void *arg, const dm_memory *m)
{
    corpus *c = arg;
    if (!m->embedding || !m->dim)
        bench_die("dm_export gave no embedding");
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 4096;
        c->vecs = realloc(c->vecs, c->cap * m->dim * sizeof *c->vecs);
        c->texts = realloc(c->texts, c->cap * sizeof *c->texts);
        if (!c->vecs || !c->texts)
            bench_die("out of memory");
    }
    c->dim = m->dim;
    memcpy(c->vecs + c->n * m->dim, m->embedding, m->dim * sizeof *c->vecs);
    c->texts[c->n] = strdup(m->text);
    if (!c->texts[c->n])
        bench_die("out of memory");
    c->n++;
    return 0;
}

typedef struct peers {
    corpus big;
    const query *qs;
    size_t n_qs;
    float *qvecs; /* the queries embedded, n_qs x big.dim */
} peers;

static void peer_hnswlib(void *arg)
{
#ifdef BR_WITH_HNSWLIB
    peers *pr = arg;
    uint64_t t0 = bench_now_ns();
    br_hnswlib *h = br_hnswlib_build(pr->big.vecs, pr->big.n, pr->big.dim, 16, 128);
    double build_s = secs_since(t0);
    br_hnswlib_set_ef(h, 64);
    case_run best;
    uint64_t sink = 0;
    for (uint32_t r = 0; r < cfg.rounds; r++) {
        case_run c;
        case_init(&c, pr->n_qs);
        for (size_t i = 0; i < pr->n_qs; i++) {
            uint32_t got;
            uint64_t s = bench_now_ns();
            sink += br_hnswlib_search(h, pr->qvecs + i * pr->big.dim, LEG_DEPTH, &got);
            uint64_t ns = bench_now_ns() - s;
            bench_lat_add(&c.lat, ns);
            c.total_s += (double)ns / 1e9;
            c.n_hits += got;
        }
        if (!r || p50_of(&c) < p50_of(&best)) {
            if (r)
                case_fini(&best);
            best = c;
        } else {
            case_fini(&c);
        }
    }
    report_case("peer_hnswlib", &best, build_s, "build_s");
    case_fini(&best);
    br_hnswlib_free(h);
    if (sink == UINT64_MAX)
        fputc(' ', stderr);
#else
    (void)arg;
    fprintf(stderr, "bench_retrieval: hnswlib headers not found at build time; "
                    "peer_hnswlib skipped\n");
#endif
}

#ifdef BR_WITH_FTS5
static void sql_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        bench_die("sqlite: %s: %s", sql, err ? err : "?");
}

/* The query's words as an FTS5 OR query, "cooked" OR "sushi" OR ...,
 * without the stop words that our BM25 analyzer drops (an_is_stopword), so
 * that both engines look up the same words. */
static void fts5_query(const char *q, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = 0;
    while (*q) {
        char w[64];
        size_t n = 0;
        while (q[n] && ((q[n] >= 'a' && q[n] <= 'z') || (q[n] >= 'A' && q[n] <= 'Z') ||
                        (q[n] >= '0' && q[n] <= '9'))) {
            if (n < sizeof w)
                w[n] = (char)(q[n] >= 'A' && q[n] <= 'Z' ? q[n] - 'A' + 'a' : q[n]);
            n++;
        }
        if (n && n < sizeof w && !an_is_stopword(w, n) && len < cap)
            len += (size_t)snprintf(out + len, cap - len, "%s\"%.*s\"", len ? " OR " : "",
                                    (int)n, w);
        q += n ? n : 1;
    }
    if (!len)
        snprintf(out, cap, "\"%s\"", "nothing");
}
#endif

static void peer_fts5(void *arg)
{
#ifdef BR_WITH_FTS5
    peers *pr = arg;
    sqlite3 *db;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK)
        bench_die("sqlite3_open");
    sql_exec(db, "CREATE VIRTUAL TABLE t USING fts5(body, tokenize='porter unicode61')");
    sqlite3_stmt *ins, *sel;
    if (sqlite3_prepare_v2(db, "INSERT INTO t(rowid, body) VALUES(?, ?)", -1, &ins, NULL))
        bench_die("prepare insert: %s", sqlite3_errmsg(db));
    uint64_t t0 = bench_now_ns();
    sql_exec(db, "BEGIN");
    for (size_t d = 0; d < pr->big.n; d++) {
        sqlite3_bind_int64(ins, 1, (sqlite3_int64)d);
        sqlite3_bind_text(ins, 2, pr->big.texts[d], -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            bench_die("insert: %s", sqlite3_errmsg(db));
        sqlite3_reset(ins);
    }
    sql_exec(db, "COMMIT");
    sql_exec(db, "INSERT INTO t(t) VALUES('optimize')");
    double build_s = secs_since(t0);
    sqlite3_finalize(ins);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT rowid FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT %d",
             LEG_DEPTH);
    if (sqlite3_prepare_v2(db, sql, -1, &sel, NULL))
        bench_die("prepare select: %s", sqlite3_errmsg(db));
    char(*fq)[512] = bench_xmalloc(pr->n_qs * sizeof *fq);
    for (size_t i = 0; i < pr->n_qs; i++)
        fts5_query(pr->qs[i].text, fq[i], sizeof fq[i]);
    case_run best;
    /* One round: at milliseconds a query, more would dominate the run. */
    for (uint32_t r = 0; r < 1; r++) {
        case_run c;
        case_init(&c, pr->n_qs);
        for (size_t i = 0; i < pr->n_qs; i++) {
            uint64_t s = bench_now_ns();
            sqlite3_bind_text(sel, 1, fq[i], -1, SQLITE_STATIC);
            int src;
            while ((src = sqlite3_step(sel)) == SQLITE_ROW)
                c.n_hits++;
            sqlite3_reset(sel);
            uint64_t ns = bench_now_ns() - s;
            if (src != SQLITE_DONE)
                bench_die("query %s: %s", fq[i], sqlite3_errmsg(db));
            bench_lat_add(&c.lat, ns);
            c.total_s += (double)ns / 1e9;
        }
        if (!r || p50_of(&c) < p50_of(&best)) {
            if (r)
                case_fini(&best);
            best = c;
        } else {
            case_fini(&c);
        }
    }
    report_case("peer_fts5", &best, build_s, "build_s");
    case_fini(&best);
    free(fq);
    sqlite3_finalize(sel);
    sqlite3_close(db);
#else
    (void)arg;
    fprintf(stderr, "bench_retrieval: SQLite not found at build time; peer_fts5 skipped\n");
#endif
}

/* ------------------------------------------------------------ embedding */

/* The model file, found as dm_open finds it: --model, $DM_MODEL, models/
 * in the working directory, then beside the executable's tree. */
static void model_path(char *out, size_t cap)
{
    static const char *const file = "glove-6b-100d.dmm";
    const char *env = getenv("DM_MODEL");
    if (cfg.model) {
        snprintf(out, cap, "%s", cfg.model);
        return;
    }
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return;
    }
    snprintf(out, cap, "models/%s", file);
    if (access(out, R_OK) == 0)
        return;
    char exe[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = 0;
        static const char *const ups[] = { "/../models/", "/../../models/",
                                           "/../../../models/" };
        for (size_t i = 0; i < N_OF(ups); i++) {
            snprintf(out, cap, "%s%s%s", exe, ups[i], file);
            if (access(out, R_OK) == 0)
                return;
        }
    }
    snprintf(out, cap, "models/%s", file);
}

/* Times embedding each query alone; fills qvecs (n x dim) when not NULL. */
static void embed_cases(embedder *e, const query *qs, size_t n, float *qvecs)
{
    uint32_t dim = embedder_dim(e);
    float *v = bench_xmalloc(dim * sizeof *v);
    case_run best;
    for (uint32_t r = 0; r < cfg.rounds; r++) {
        case_run c;
        case_init(&c, n);
        for (size_t i = 0; i < n; i++) {
            const char *t = qs[i].text;
            size_t len = strlen(t);
            uint64_t s = bench_now_ns();
            check(embedder_embed(e, &t, &len, 1, v), "embedder_embed");
            uint64_t ns = bench_now_ns() - s;
            bench_lat_add(&c.lat, ns);
            c.total_s += (double)ns / 1e9;
            if (qvecs)
                memcpy(qvecs + i * dim, v, dim * sizeof *v);
        }
        if (!r || p50_of(&c) < p50_of(&best)) {
            if (r)
                case_fini(&best);
            best = c;
        } else {
            case_fini(&c);
        }
    }
    report_case("embed_query", &best, dim, "dim");
    case_fini(&best);
    free(v);
}

/* The query embedding alone, the big user's cases and their peers; *p50
 * receives search_big's p50. */
static void big_cases(dm_db *db, const query *qbig, size_t n_q, uint32_t n_big, double *p50)
{
    char mpath[PATH_MAX];
    model_path(mpath, sizeof mpath);
    embedder *emb = NULL;
    check(embed_builtin_open(mpath, &emb), "embed_builtin_open");
    peers pr = { .qs = qbig, .n_qs = n_q };
    pr.qvecs = bench_xmalloc(n_q * embedder_dim(emb) * sizeof *pr.qvecs);
    embed_cases(emb, qbig, n_q, pr.qvecs);
    if (cfg.with_peers) {
        check(dm_export(db, NULL, "big", collect, &pr.big), "dm_export");
        if (pr.big.n != n_big || pr.big.dim != embedder_dim(emb))
            bench_die("dm_export gave %zu vectors of %u floats; expected %u of %u", pr.big.n,
                      pr.big.dim, n_big, embedder_dim(emb));
    }
    embedder_close(emb);
    stage_cases(db, qbig, n_q, "big", "search_big", cfg.with_peers ? peer_hnswlib : NULL,
                cfg.with_peers ? peer_fts5 : NULL, &pr, p50);
    if (cfg.with_peers) {
        for (size_t i = 0; i < pr.big.n; i++)
            free(pr.big.texts[i]);
        free(pr.big.texts);
        free(pr.big.vecs);
    }
    free(pr.qvecs);
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json"))
            cfg.is_json = true;
        else if (!strcmp(a, "--scale") && i + 1 < argc)
            cfg.scale = atof(argv[++i]);
        else if (!strcmp(a, "--dir") && i + 1 < argc)
            cfg.dir = argv[++i];
        else if (!strcmp(a, "--model") && i + 1 < argc)
            cfg.model = argv[++i];
        else if (!strcmp(a, "--queries") && i + 1 < argc)
            cfg.n_queries = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(a, "--rounds") && i + 1 < argc)
            cfg.rounds = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(a, "--no-peers"))
            cfg.with_peers = false;
        else if (!strcmp(a, "--keep"))
            cfg.is_keep = true;
        else if (!strcmp(a, "--reuse"))
            cfg.is_reuse = true;
        else if (!strcmp(a, "--only") && i + 1 < argc)
            cfg.only = argv[++i];
        else {
            fprintf(stderr, "usage: bench_retrieval [--json] [--scale F] [--dir D] "
                            "[--model PATH] [--queries N] [--rounds R] [--no-peers] "
                            "[--keep] [--reuse] [--only big,small,mt,refresh]\n");
            return 2;
        }
    }
    if (cfg.n_queries < 10)
        cfg.n_queries = 10;
    if (cfg.rounds < 1)
        cfg.rounds = 1;
    uint32_t n_users = (uint32_t)(10000 * cfg.scale), per_user = 100;
    uint32_t n_big = (uint32_t)(100000 * cfg.scale);
    if (n_users < 10)
        n_users = 10;
    if (n_big < 1000)
        n_big = 1000;
    uint64_t total = (uint64_t)n_users * per_user + n_big;
    size_t n_q = cfg.n_queries, n_mt = 4 * (size_t)cfg.n_queries;
    FILE *info = cfg.is_json ? stderr : stdout;
    fprintf(info,
            "bench_retrieval: %u users x %u memories + 1 user x %u = %" PRIu64
            " memories, sessions of %d, events over 2023; %zu queries (1 in 5 with a time "
            "expression), k %d, best of %u rounds; load %.2f; dir %s\n",
            n_users, per_user, n_big, total, SESSION_LEN, n_q, K, cfg.rounds, load1(), cfg.dir);
    if (!cfg.is_json)
        printf("%-18s %10s %10s %10s %14s\n", "case", "ops/s", "p50 us", "p99 us", "value");

    if (!cfg.is_reuse) {
        bench_rm_rf(cfg.dir);
        dm_db *db = open_db();
        ingest(db, n_users, n_big, total);
        uint64_t t0 = bench_now_ns();
        check(dm_close(db), "dm_close");
        report("close", 0, 0, 0, secs_since(t0), "seconds");
    }

    bench_rng r = { 4242 };
    query *qbig = make_queries(&r, n_q, 0);
    query *qsmall = make_queries(&r, n_q, n_users);
    query *qmt = make_queries(&r, n_mt, n_users);

    uint64_t t0 = bench_now_ns();
    dm_db *db = open_db();
    report("reopen", 0, 0, 0, secs_since(t0), "seconds");
    {
        dm_stats st;
        check(dm_stats_get(db, &st), "dm_stats_get");
        if (st.n_memories != total)
            bench_die("%s holds %" PRIu64 " memories, not %" PRIu64
                      ": --reuse needs the --scale of the --keep run",
                      cfg.dir, st.n_memories, total);
    }
    load_users(db, n_users);
    warm(db, qbig, n_q < 200 ? n_q : 200);
    warm(db, qsmall, n_q < 200 ? n_q : 200);

    double big_p50 = 0;
    if (group_on("big"))
        big_cases(db, qbig, n_q, n_big, &big_p50);
    if (group_on("small"))
        stage_cases(db, qsmall, n_q, "small", "search_small", NULL, NULL, NULL, NULL);
    if (group_on("mt"))
        mt_cases(db, qmt, n_mt);

    /* Refresh on, last: from here on the database changes. */
    if (group_on("refresh")) {
        case_run c;
        run_case(db, qbig, n_q, 0, 0, false, &c);
        report_case("search_big_refresh", &c, big_p50 > 0 ? p50_of(&c) - big_p50 : 0,
                    "p50_added_us");
        case_fini(&c);
    }
    check(dm_sync_indexes(db), "dm_sync_indexes");
    check(dm_close(db), "dm_close");
    free(qbig);
    free(qsmall);
    free(qmt);
    if (!cfg.is_keep && !cfg.is_reuse) /* a --reuse run's database stays */
        bench_rm_rf(cfg.dir);
    return 0;
}
