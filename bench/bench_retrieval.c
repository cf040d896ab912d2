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
 * expressions select something.  Ingest is dm_add_batch with sync none,
 * without extraction (no_extract: the graph group below measures the
 * graph leg on users built with dm_remember), and
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
 *   graph_*         the graph leg (src/retrieve/search.c) at scale, on a
 *                   database of its own (--dir with "-graph" appended):
 *                   one user "gbig" of 32,000 turns (x --scale) and 100
 *                   users of 100, every turn stored with dm_remember, so
 *                   that the built-in extractor builds each user's facts
 *                   and knowledge graph.  The turns are generated from
 *                   fixed word lists with fixed seeds: about a third state
 *                   facts the extractor reads (a relative or friend by
 *                   name, where they live and work, an employer's industry,
 *                   pets, hobbies, likes, "I moved from X to Y"; of 5,000
 *                   people for the big user, 40 for a small one, each with
 *                   a fixed relation, city and employer, one time in ten
 *                   changed so that old facts are superseded), the rest
 *                   ordinary chat and the assistant's replies.  Queries:
 *                   every other one names entities or relations of the
 *                   user's graph ("Where does my sister work?", "What
 *                   industry is Acme Labs in?", "Which city did I move
 *                   to?"), the others are the main workload's.
 *     graph_build_big/_small  turns/s of building the users, one
 *                   dm_remember a turn, extraction included, then
 *                   dm_sync_indexes (value: seconds);
 *                   graph_build_tail the big user's last tenth of turns
 *                   alone (a turn's cost once the facts have grown);
 *                   graph_facts_* the facts the turns added
 *     graph_load_user, graph_first_big  as load_user and first_big
 *     graph_nodes_*, graph_edges_*  the size of the big user's graph and
 *                   the small users' mean (walked with dm_graph_neighbours
 *                   and dm_profile: the API has no counter)
 *     graph_big     dm_search, the whole pipeline, the legs' default
 *                   weights (graph 0.5); value: the share of the queries
 *                   whose best k hold a memory the graph leg brought (an
 *                   untimed pass with DM_EXPLAIN)
 *     graph_big_entq  the same round's queries that name graph entities
 *     graph_big_w0  the graph leg's weight 0 (leg_weight; the others at
 *                   their defaults for the built-in model): the leg still
 *                   runs, its candidates count for nothing; value: p50 of
 *                   graph_big less this one
 *     graph_big_noleg  legs = vector, BM25, temporal: the leg not run;
 *                   value: p50 of graph_big less this one (the leg's cost)
 *     graph_small*  the same on random small users
 * The leg cases include the fixed costs of a search (embedding the query,
 * reading the hits' records, building the result): they time the pipeline
 * from outside, as a user would.  The peers do not: they are the bare
 * index, as a lower bound.  The header line gives the machine's load
 * average at the start: on a shared VM the figures follow it.
 *
 * usage: bench_retrieval [--json] [--scale F] [--dir D] [--model PATH]
 *                        [--queries N] [--rounds R] [--no-peers]
 *                        [--keep] [--reuse] [--only big,small,mt,refresh,graph]
 * --only runs the named groups of cases after the reopen and the users'
 * loading (big: embed_query, the peers and the big_* cases; small: the
 * small_* cases; mt: mt_small_*; refresh: search_big_refresh; graph: the
 * graph_* cases).  The main workload is built (or reopened) only when one
 * of big, small, mt and refresh runs, the graph group's database only when
 * graph runs.  --keep leaves both databases; --reuse reopens them instead
 * of building them (with the --scale of the --keep run).
 */
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sys/resource.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
    const char *only; /* NULL, or the groups to run: big,small,mt,refresh,graph */
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
    bool is_graph; /* names entities or relations of the user's graph */
} query;

/* n questions, every fifth with a time expression (in turn from
 * query_times); user "big", or random small users when n_users > 0. */
static query *make_queries(bench_rng *r, size_t n, uint32_t n_users)
{
    query *qs = bench_xmalloc(n * sizeof *qs);
    for (size_t i = 0; i < n; i++) {
        qs[i].is_timed = i % 5 == 4;
        qs[i].is_graph = false;
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
            ps[nb].no_extract = 1;
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
    bench_lat lat_graph; /* the queries naming graph entities */
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
    bench_lat_init(&c->lat_graph, n);
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
    bench_lat_fini(&c->lat_graph);
    bench_lat_fini(&c->cpu);
}

/* lw: the legs' weights (dm_search_params.leg_weight), NULL = the
 * defaults. */
static void run_round(dm_db *db, const query *qs, size_t n, unsigned legs, unsigned flags,
                      const float *lw, bool only_timed, case_run *c)
{
    double on0, rq0, on1, rq1;
    uint64_t t0 = bench_now_ns();
    bench_sched_times(&on0, &rq0);
    for (size_t i = 0; i < n; i++) {
        if (only_timed && !qs[i].is_timed)
            continue;
        dm_search_params sp = { .user_id = qs[i].user, .query = qs[i].text, .k = K,
                                .flags = flags, .legs = legs, .now_us = REF_US };
        if (lw)
            memcpy(sp.leg_weight, lw, sizeof sp.leg_weight);
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
        if (qs[i].is_graph)
            bench_lat_add(&c->lat_graph, ns);
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

/* cfg.rounds rounds of the case with the legs' weights lw (NULL = the
 * defaults); *best receives the one with the lowest p50 (the caller frees
 * it with case_fini). */
static void run_case_lw(dm_db *db, const query *qs, size_t n, unsigned legs, unsigned flags,
                        const float *lw, bool only_timed, case_run *best)
{
    case_init(best, n);
    run_round(db, qs, n, legs, flags, lw, only_timed, best);
    for (uint32_t r = 1; r < cfg.rounds; r++) {
        case_run c;
        case_init(&c, n);
        run_round(db, qs, n, legs, flags, lw, only_timed, &c);
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

static void run_case(dm_db *db, const query *qs, size_t n, unsigned legs, unsigned flags,
                     bool only_timed, case_run *best)
{
    run_case_lw(db, qs, n, legs, flags, NULL, only_timed, best);
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

/* ------------------------------------------------------------ graph */

/* The graph group's own database, beside the main one (cfg.dir "-graph"):
 * its users are built with dm_remember, which the main workload's million
 * memories are not, and --only graph must not need that workload. */
static void graph_dir(char *out, size_t cap)
{
    snprintf(out, cap, "%s-graph", cfg.dir);
}

#define G_BIG_TURNS 32000   /* the big user's turns at --scale 1 */
#define G_BIG_PEOPLE 5000   /* the people the big user speaks of */
#define G_SMALL_USERS 100
#define G_SMALL_TURNS 100
#define G_SMALL_PEOPLE 40
#define G_BIG_USER "gbig"

/* The people of the conversations: a first name, and for the relations
 * outside the household a family name too ("my friend Omar Reyes"). */
static const char *const g_first[] = {
    "Ann", "Bob", "Carla", "Dev", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jon", "Kemal",
    "Lena", "Mia", "Noah", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor",
    "Wendy", "Xavier", "Yara", "Zoe", "Aaron", "Bella", "Caleb", "Diana", "Eli", "Fiona",
    "Gavin", "Hannah", "Ivan", "Julia", "Kevin", "Laura", "Marco", "Nadia", "Oscar", "Paula",
    "Rafael", "Sofia", "Tomas", "Valerie", "Walter", "Yusuf", "Zara", "Adam", "Beatrice",
    "Carlos", "Daphne", "Ethan", "Freya", "George", "Helena", "Isaac", "Jasmine", "Kyle",
    "Lucia", "Martin", "Nora", "Oliver", "Petra", "Ruben", "Sara", "Theo", "Vera", "William",
    "Amir", "Bianca", "Cyrus", "Delia", "Emil", "Flora", "Gustav", "Hazel", "Igor", "Jade",
    "Karim", "Leila", "Malik", "Naomi", "Otto", "Pilar", "Ravi", "Selma", "Tobias", "Ursula",
    "Vikram", "Wanda", "Abel", "Cora", "Dante", "Elsa", "Felix", "Gemma", "Hector", "Irene",
    "Jonas", "Kira", "Leon", "Maya", "Nils", "Olga", "Pablo", "Rita", "Simon", "Tessa",
    "Hugo", "Ada", "Basil", "Clara", "Dmitri", "Edith", "Frank", "Greta", "Henry", "Ida",
    "Jorge", "Kaya", "Liam", "Mila", "Nico", "Orla", "Pedro", "Rhea", "Stefan", "Talia",
};
static const char *const g_last[] = {
    "Reyes", "Nair", "Hart", "Chen", "Patel", "Okafor", "Novak", "Silva", "Kowalski", "Haddad",
    "Larsen", "Moreau", "Tanaka", "Schmidt", "Rossi", "Dubois", "Murphy", "Kim", "Santos",
    "Ivanova", "Fischer", "Costa", "Jensen", "Ortiz", "Nguyen", "Mendes", "Berger", "Horvat",
    "Lindqvist", "Mensah", "Quinlan", "Varga", "Walsh", "Yilmaz", "Zhou", "Abbott", "Baker",
    "Carver", "Dalton", "Ellison", "Fletcher", "Gallagher", "Holloway", "Ingram", "Jennings",
    "Keller", "Lambert", "Mercer", "Norris", "Osborne", "Pearce", "Ramsey", "Sutton",
    "Thornton", "Underwood", "Vance", "Whitaker", "Yates", "Alvarez", "Brennan",
};
/* Relations: the first eight are the household, called by first name. */
static const char *const g_rel[] = {
    "sister", "brother", "mother", "father", "wife", "husband", "son", "daughter",
    "friend", "cousin", "aunt", "uncle", "niece", "nephew", "friend", "cousin",
};
#define G_HOUSEHOLD 8
static const char *const g_org_a[] = {
    "Acme", "Globex", "Initech", "Umbrella", "Blue River", "Northwind", "Summit", "Redwood",
    "Silver Oak", "Bright Harbor", "Ironclad", "Lakeside", "Cobalt", "Evergreen", "Falcon",
    "Granite", "Harbor Point", "Juniper", "Keystone", "Lumen", "Maple Leaf", "Nimbus",
    "Orchard", "Pinnacle", "Quartz", "Riverbend", "Sterling", "Tidewater", "Vertex",
    "Willow Creek", "Zenith", "Aurora", "Beacon", "Cascade", "Driftwood", "Ember", "Frontier",
    "Golden Gate", "Highland", "Ivory", "Jasper", "Kestrel", "Lighthouse", "Meridian",
    "Northstar", "Oakridge", "Polaris", "Red Rock", "Sapphire", "Thunderbird",
};
static const char *const g_org_b[] = {
    "Corp", "Labs", "Industries", "Systems", "Group", "Health", "Foods", "Logistics",
    "Partners", "Media", "Robotics", "Energy", "Bank", "Studios", "Analytics",
};
static const char *const g_industries[] = {
    "healthcare", "finance", "software", "logistics", "retail", "energy", "education",
    "insurance", "biotech", "gaming", "media", "travel", "real estate", "manufacturing",
    "agriculture", "telecom", "fashion", "hospitality", "automotive", "aerospace",
    "construction", "pharmaceutical", "advertising", "cybersecurity", "consulting",
};
static const char *const g_cities[] = {
    "Denver", "Austin", "Seattle", "Boston", "Chicago", "Portland", "Miami", "Atlanta",
    "Phoenix", "Houston", "Dallas", "San Diego", "San Francisco", "Los Angeles", "Oakland",
    "Sacramento", "Boise", "Salt Lake City", "Las Vegas", "Albuquerque", "Tucson", "El Paso",
    "San Antonio", "Oklahoma City", "Kansas City", "Omaha", "Minneapolis", "Milwaukee",
    "Detroit", "Cleveland", "Columbus", "Cincinnati", "Indianapolis", "Louisville",
    "Nashville", "Memphis", "New Orleans", "Birmingham", "Charlotte", "Raleigh", "Richmond",
    "Baltimore", "Philadelphia", "Pittsburgh", "Buffalo", "Albany", "Hartford", "Providence",
    "Burlington", "Portland", "Tampa", "Orlando", "Jacksonville", "Savannah", "Charleston",
    "Anchorage", "Honolulu", "Spokane", "Tacoma", "Fresno", "Madison", "Des Moines",
    "St. Louis", "Little Rock", "Tulsa", "Wichita", "Lincoln", "Fargo", "Billings",
    "Cheyenne", "Reno", "Santa Fe", "Toronto", "Vancouver", "Montreal", "Calgary", "Ottawa",
    "London", "Manchester", "Edinburgh", "Dublin", "Paris", "Lyon", "Berlin", "Munich",
    "Hamburg", "Vienna", "Zurich", "Geneva", "Amsterdam", "Rotterdam", "Brussels",
    "Copenhagen", "Stockholm", "Oslo", "Helsinki", "Madrid", "Barcelona", "Valencia",
    "Lisbon", "Porto", "Rome", "Milan", "Naples", "Athens", "Istanbul", "Warsaw", "Krakow",
    "Prague", "Budapest", "Bucharest", "Sofia", "Zagreb", "Belgrade", "Tokyo", "Osaka",
    "Kyoto", "Seoul", "Busan", "Beijing", "Shanghai", "Hong Kong", "Taipei", "Singapore",
    "Bangkok", "Hanoi", "Manila", "Jakarta", "Kuala Lumpur", "Mumbai", "Delhi", "Bengaluru",
    "Chennai", "Karachi", "Dubai", "Doha", "Tel Aviv", "Cairo", "Nairobi", "Lagos", "Accra",
    "Cape Town", "Johannesburg", "Casablanca", "Sydney", "Melbourne", "Brisbane", "Perth",
    "Auckland", "Wellington", "Mexico City", "Guadalajara", "Bogota", "Lima", "Santiago",
    "Buenos Aires", "Montevideo", "Sao Paulo", "Rio de Janeiro", "Havana", "Reykjavik",
};
static const char *const g_species[] = { "dog", "cat", "parrot", "hamster", "rabbit",
                                         "turtle", "horse", "goldfish" };
static const char *const g_pets[] = {
    "Rex", "Luna", "Milo", "Bella", "Max", "Coco", "Pip", "Kiwi", "Miso", "Biscuit", "Pepper",
    "Shadow", "Ziggy", "Nala", "Oreo", "Mochi", "Tofu", "Waffles", "Ginger", "Pickles",
    "Rocky", "Daisy", "Bruno", "Olive", "Scout", "Hazel", "Toby", "Juno", "Loki", "Maple",
    "Nugget", "Peanut", "Rusty", "Sunny", "Teddy", "Willow", "Zeus", "Clover", "Fudge",
    "Gizmo",
};
static const char *const g_hobbies[] = {
    "hiking", "pottery", "painting", "chess", "surfing", "knitting", "rock climbing",
    "photography", "gardening", "baking", "cycling", "swimming", "woodworking", "fishing",
    "birdwatching", "skiing", "running", "yoga", "sailing", "calligraphy", "archery",
    "kayaking", "origami", "tennis", "salsa dancing", "beekeeping", "scuba diving",
    "board games", "camping", "embroidery",
};
static const char *const g_likes[] = {
    "sushi", "jazz", "spicy food", "dark chocolate", "green tea", "science fiction",
    "old movies", "ramen", "tacos", "opera", "heavy metal", "mystery novels", "espresso",
    "thai curry", "vinyl records", "cheesecake", "hip hop", "documentaries", "dim sum",
    "folk music", "board games", "anime", "red wine", "craft beer", "pizza", "classical music",
    "podcasts", "crossword puzzles", "strawberries", "country music",
};
/* The assistant's side of the ordinary chat. */
static const char *const g_replies[] = {
    "That sounds lovely, how did it go?", "I can help you plan that.",
    "Good luck with it, tell me how it turns out.", "That must have been a long day.",
    "Here is a short checklist you could follow.", "Would you like a reminder for that?",
};

/* A deterministic hash of (a, b): the generator's stable choices. */
static uint64_t g_hash(uint64_t a, uint64_t b)
{
    return bench_mix64(a * UINT64_C(0x9e3779b97f4a7c15) ^ bench_mix64(b + 1));
}

/* Person j of the user with seed `seed`: a relation, a name, a home city
 * and an employer, all fixed by (seed, j), so that the queries can name
 * what the turns said. */
typedef struct g_person {
    const char *rel;
    char name[48];
    const char *city;
    char org[48];
} g_person;

static void g_org_name(uint64_t h, char *out, size_t cap)
{
    snprintf(out, cap, "%s %s", g_org_a[h % N_OF(g_org_a)],
             g_org_b[(h / N_OF(g_org_a)) % N_OF(g_org_b)]);
}

static void g_person_of(uint64_t seed, uint32_t j, g_person *p)
{
    uint64_t h = g_hash(seed, j);
    size_t ri = h % N_OF(g_rel);
    p->rel = g_rel[ri];
    const char *first = g_first[(h >> 8) % N_OF(g_first)];
    if (ri < G_HOUSEHOLD)
        snprintf(p->name, sizeof p->name, "%s", first);
    else
        snprintf(p->name, sizeof p->name, "%s %s", first, g_last[(h >> 24) % N_OF(g_last)]);
    p->city = g_cities[(h >> 32) % N_OF(g_cities)];
    g_org_name(g_hash(h, 7), p->org, sizeof p->org);
}

/* An organisation's industry, fixed per name, so that saying it again
 * merges rather than supersedes. */
static const char *g_industry_of(const char *org)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *c = org; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    return g_industries[bench_mix64(h) % N_OF(g_industries)];
}

/* Turn i of a user (seed, n_people): about a third state facts the
 * built-in extractor reads, the rest is ordinary chat, half of it the
 * assistant's replies.  *role receives "user" or "assistant". */
static void g_turn(bench_rng *r, uint64_t seed, uint32_t n_people, char *out, size_t cap,
                   const char **role)
{
    *role = "user";
    uint64_t kind = bench_rng_below(r, 30);
    if (kind >= 20) {
        *role = "assistant";
        snprintf(out, cap, "%s", PICK(r, g_replies));
        return;
    }
    if (kind >= 10) {
        bench_sentence(r, out, cap);
        return;
    }
    g_person p;
    g_person_of(seed, (uint32_t)bench_rng_below(r, n_people), &p);
    /* One time in ten a person is somewhere else or works elsewhere now:
     * the old fact is superseded, as in life. */
    if (bench_rng_below(r, 10) == 0)
        p.city = PICK(r, g_cities);
    if (bench_rng_below(r, 10) == 0)
        g_org_name(bench_rng_next(r), p.org, sizeof p.org);
    char org[48];
    switch (kind) {
    case 0:
        snprintf(out, cap, "My %s %s lives in %s.", p.rel, p.name, p.city);
        break;
    case 1:
        snprintf(out, cap, "My %s %s works at %s.", p.rel, p.name, p.org);
        break;
    case 2:
        snprintf(out, cap, "My %s %s lives in %s and works at %s.", p.rel, p.name, p.city,
                 p.org);
        break;
    case 3:
        g_org_name(bench_rng_next(r), org, sizeof org);
        snprintf(out, cap, "%s is in the %s space.", org, g_industry_of(org));
        break;
    case 4:
        if (bench_rng_below(r, 4) == 0) {
            g_org_name(bench_rng_next(r), org, sizeof org);
            snprintf(out, cap, "I work at %s.", org);
        } else {
            snprintf(out, cap, "%s is in the %s space.", p.org, g_industry_of(p.org));
        }
        break;
    case 5:
        if (bench_rng_below(r, 4) == 0)
            snprintf(out, cap, "I moved from %s to %s.", PICK(r, g_cities), PICK(r, g_cities));
        else
            snprintf(out, cap, "My %s %s moved to %s.", p.rel, p.name, p.city);
        break;
    case 6:
        snprintf(out, cap, "My %s %s has a %s named %s.", p.rel, p.name, PICK(r, g_species),
                 PICK(r, g_pets));
        break;
    case 7:
        if (bench_rng_below(r, 3) == 0)
            snprintf(out, cap, "I have a %s named %s.", PICK(r, g_species), PICK(r, g_pets));
        else
            snprintf(out, cap, "My %s %s enjoys %s.", p.rel, p.name, PICK(r, g_hobbies));
        break;
    case 8:
        if (bench_rng_below(r, 3) == 0)
            snprintf(out, cap, "I love %s.", PICK(r, g_hobbies));
        else
            snprintf(out, cap, "My %s %s likes %s.", p.rel, p.name, PICK(r, g_likes));
        break;
    default:
        if (bench_rng_below(r, 3) == 0)
            snprintf(out, cap, "I really like %s.", PICK(r, g_likes));
        else
            snprintf(out, cap, "My %s %s loves %s.", p.rel, p.name, PICK(r, g_hobbies));
        break;
    }
}

/* A question that names entities or relations of the user's graph. */
static void g_question(bench_rng *r, uint64_t seed, uint32_t n_people, char *out, size_t cap)
{
    g_person p, q;
    g_person_of(seed, (uint32_t)bench_rng_below(r, n_people), &p);
    g_person_of(seed, (uint32_t)bench_rng_below(r, n_people), &q);
    switch (bench_rng_below(r, 10)) {
    case 0:
        snprintf(out, cap, "Where does my %s work?", p.rel);
        break;
    case 1:
        snprintf(out, cap, "Where does %s work?", p.name);
        break;
    case 2:
        snprintf(out, cap, "Which city does %s live in?", p.name);
        break;
    case 3:
        snprintf(out, cap, "What industry is %s in?", p.org);
        break;
    case 4:
        snprintf(out, cap, "Which city did I move to?");
        break;
    case 5:
        snprintf(out, cap, "Where do I work and what does the company do?");
        break;
    case 6:
        snprintf(out, cap, "What is the name of %s's pet?", p.name);
        break;
    case 7:
        snprintf(out, cap, "Where does %s's %s work?", p.name, q.rel);
        break;
    case 8:
        snprintf(out, cap, "What does my %s %s like?", p.rel, p.name);
        break;
    default:
        snprintf(out, cap, "Does %s still live in %s?", p.name, p.city);
        break;
    }
}

static void g_small_user(uint32_t i, char *out, size_t cap)
{
    snprintf(out, cap, "guser%03u", i);
}

/* n queries, every other one naming graph entities, the others as the
 * main workload's (every fifth of those with a time expression); user
 * G_BIG_USER, or random small users when n_users > 0. */
static query *g_queries(bench_rng *r, size_t n, uint32_t n_users)
{
    query *qs = bench_xmalloc(n * sizeof *qs);
    for (size_t i = 0; i < n; i++) {
        uint32_t u = n_users ? (uint32_t)bench_rng_below(r, n_users) : 0;
        if (n_users)
            g_small_user(u, qs[i].user, sizeof qs[i].user);
        else
            snprintf(qs[i].user, sizeof qs[i].user, G_BIG_USER);
        qs[i].is_graph = i % 2 == 0;
        qs[i].is_timed = !qs[i].is_graph && i % 10 == 9;
        if (qs[i].is_graph)
            g_question(r, n_users ? u + 1 : 0, n_users ? G_SMALL_PEOPLE : G_BIG_PEOPLE,
                       qs[i].text, sizeof qs[i].text);
        else
            question(r, qs[i].is_timed ? query_times[(i / 10) % N_OF(query_times)] : NULL,
                     qs[i].text, sizeof qs[i].text);
    }
    return qs;
}

/* Remembers n_turns turns of user (seed, n_people), one dm_remember each,
 * sessions of SESSION_LEN, the turns spread over 2023.  *n_facts receives
 * the facts the turns added, *tail_s (may be NULL) the seconds of the last
 * tenth of the turns: a turn's cost as the user's facts have grown. */
static void g_remember_user(dm_db *db, const char *user, uint64_t seed, uint32_t n_people,
                            uint32_t n_turns, uint64_t *n_facts, double *tail_s)
{
    uint32_t tail_from = n_turns - n_turns / 10;
    uint64_t t_tail = 0;
    bench_rng r = { 777 + seed };
    int64_t step_us = YEAR_US / (int64_t)n_turns;
    char text[200], session[16];
    for (uint32_t i = 0; i < n_turns; i++) {
        const char *role;
        if (i == tail_from)
            t_tail = bench_now_ns();
        g_turn(&r, seed, n_people, text, sizeof text, &role);
        snprintf(session, sizeof session, "s%05u", i / SESSION_LEN);
        dm_remember_params p;
        dm_remember_params_init(&p);
        p.user_id = user;
        p.session_id = session;
        p.role = role;
        p.text = text;
        p.time_us = BASE_US + (int64_t)i * step_us;
        dm_remember_result res;
        check(dm_remember(db, &p, &res), "dm_remember");
        *n_facts += res.n_added;
        if (!cfg.is_json && isatty(2) && i % 5000 == 4999)
            fprintf(stderr, "\r  %u/%u", i + 1, n_turns);
    }
    if (tail_s)
        *tail_s = secs_since(t_tail);
    if (!cfg.is_json && isatty(2) && n_turns >= 5000)
        fprintf(stderr, "\r");
}

/* A set of strings (case-folded), for counting the graph's nodes. */
typedef struct g_set {
    char **slot;
    size_t cap, n;
} g_set;

static bool g_set_add(g_set *s, const char *name)
{
    if (2 * (s->n + 1) > s->cap) {
        g_set o = *s;
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->slot = calloc(s->cap, sizeof *s->slot);
        if (!s->slot)
            bench_die("out of memory");
        s->n = 0;
        for (size_t i = 0; i < o.cap; i++) {
            if (o.slot[i])
                g_set_add(s, o.slot[i]);
            free(o.slot[i]);
        }
        free(o.slot);
    }
    char key[256];
    size_t len = 0;
    for (; name[len] && len + 1 < sizeof key; len++)
        key[len] = (char)(name[len] >= 'A' && name[len] <= 'Z' ? name[len] + 32 : name[len]);
    key[len] = 0;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ull;
    for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->slot[i]) {
            s->slot[i] = strdup(key);
            if (!s->slot[i])
                bench_die("out of memory");
            s->n++;
            return true;
        }
        if (!strcmp(s->slot[i], key))
            return false;
    }
}

static void g_set_free(g_set *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slot[i]);
    free(s->slot);
}

/* The user's graph size: the public API shows no counts, and
 * dm_graph_neighbours stops at 1,024 nodes and 64 neighbours a node, so
 * the graph is walked one node at a time.  A node's edges are those of
 * dm_graph_neighbours (depth 1) whose source it is; where the walk is cut
 * at 64 neighbours, and for the user's node, they are its current facts
 * (dm_profile), as cognition.c builds the edges from them (one a current
 * fact, subject -slot-> value, except the user's name).  The walk starts
 * from the user and from every name the generator can make a subject, so
 * that a part not connected to the user is counted too; each name is
 * asked once. */
typedef struct g_todo {
    char **name;
    size_t n, cap;
    g_set queued;
} g_todo;

static void g_todo_push(g_todo *t, const char *name)
{
    if (!g_set_add(&t->queued, name))
        return;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->name = realloc(t->name, t->cap * sizeof *t->name);
        if (!t->name)
            bench_die("out of memory");
    }
    t->name[t->n] = strdup(name);
    if (!t->name[t->n])
        bench_die("out of memory");
    t->n++;
}

#define G_WALK_FANOUT 64 /* dm_graph_neighbours' neighbours a node */

/* The edges leaving subject ("" = the user) by its current facts; their
 * values join todo. */
static uint64_t g_fact_edges(dm_db *db, const char *user, const char *subject, g_todo *todo)
{
    dm_profile_params pp = { .user_id = user, .subject = subject, .min_confidence = -1 };
    dm_fact *f;
    size_t nf;
    uint64_t n = 0;
    check(dm_profile(db, &pp, &f, &nf), "dm_profile");
    for (size_t k = 0; k < nf; k++) {
        if (!subject[0] && !strcmp(f[k].slot, "name"))
            continue;
        n++;
        g_todo_push(todo, f[k].value);
    }
    dm_facts_free(f, nf);
    return n;
}

static void g_graph_size(dm_db *db, const char *user, uint64_t seed, uint32_t n_people,
                         uint64_t *n_nodes, uint64_t *n_edges)
{
    g_todo todo = { 0 };
    g_set_add(&todo.queued, "user"); /* the user's node, done first */
    *n_edges = g_fact_edges(db, user, "", &todo);
    *n_nodes = 1;
    for (uint32_t j = 0; j < n_people + N_OF(g_org_a) * N_OF(g_org_b); j++) {
        char name[64];
        if (j < n_people) {
            g_person p;
            g_person_of(seed, j, &p);
            snprintf(name, sizeof name, "%s", p.name);
        } else {
            g_org_name(j - n_people, name, sizeof name);
        }
        g_todo_push(&todo, name);
    }
    for (size_t i = 0; i < todo.n; i++) {
        const char *name = todo.name[i];
        dm_graph_result *g;
        check(dm_graph_neighbours(db, NULL, user, name, 1, &g), "dm_graph_neighbours");
        if (g->n_nodes) { /* else a seed the graph does not hold */
            ++*n_nodes;
            if (g->n_nodes > G_WALK_FANOUT) {
                *n_edges += g_fact_edges(db, user, name, &todo);
            } else {
                for (size_t k = 0; k < g->n_edges; k++)
                    *n_edges += !strcasecmp(g->edges[k].src, name);
            }
            for (size_t k = 0; k < g->n_nodes; k++)
                g_todo_push(&todo, g->nodes[k].name);
        }
        dm_graph_result_free(g);
    }
    for (size_t i = 0; i < todo.n; i++)
        free(todo.name[i]);
    free(todo.name);
    g_set_free(&todo.queued);
}

/* Of the queries, the share whose best k hold a memory the graph leg
 * brought (an untimed pass with DM_EXPLAIN): that the leg is doing work
 * in the cases timed. */
static double g_graph_hit_share(dm_db *db, const query *qs, size_t n)
{
    size_t n_with = 0;
    for (size_t i = 0; i < n; i++) {
        dm_search_params sp = { .user_id = qs[i].user, .query = qs[i].text, .k = K,
                                .flags = DM_NO_REFRESH | DM_EXPLAIN, .now_us = REF_US };
        dm_search_result *res;
        check(dm_search(db, &sp, &res), "dm_search");
        bool has = false;
        for (size_t h = 0; h < res->n && !has; h++)
            has = res->hits[h].explain && res->hits[h].explain->leg_rank[3] > 0;
        n_with += has;
        dm_search_result_free(res);
    }
    return n ? (double)n_with / (double)n : 0;
}

/* The graph leg on one set of queries: the whole pipeline with the legs'
 * default weights, with the graph leg's weight 0 (the other legs at their
 * defaults for the built-in model: vector 0.3, BM25 1, temporal 0.3; the
 * leg still runs, its candidates count for nothing) and without the leg
 * (legs = the other three: what the leg's walk costs). */
static void g_search_cases(dm_db *db, const query *qs, size_t n, const char *prefix)
{
    static const float w0[DM_N_LEGS] = { 0.3f, 1.0f, 0.3f, 0.0f };
    const unsigned no_graph = DM_LEG_VECTOR | DM_LEG_BM25 | DM_LEG_TEMPORAL;
    char name[64];
    case_run on, off;

    run_case_lw(db, qs, n, 0, DM_NO_REFRESH, NULL, false, &on);
    report_case(prefix, &on, g_graph_hit_share(db, qs, n), "graph_hit_share");
    snprintf(name, sizeof name, "%s_entq", prefix);
    report(name, 0, bench_lat_pct_us(&on.lat_graph, 0.50), bench_lat_pct_us(&on.lat_graph, 0.99),
           (double)on.lat_graph.n, "queries");

    run_case_lw(db, qs, n, 0, DM_NO_REFRESH, w0, false, &off);
    snprintf(name, sizeof name, "%s_w0", prefix);
    report_case(name, &off, p50_of(&on) - p50_of(&off), "graph_p50_us");
    case_fini(&off);

    run_case_lw(db, qs, n, no_graph, DM_NO_REFRESH, NULL, false, &off);
    snprintf(name, sizeof name, "%s_noleg", prefix);
    report_case(name, &off, p50_of(&on) - p50_of(&off), "graph_p50_us");
    case_fini(&off);
    case_fini(&on);
}

/* The graph group: build (or with --reuse reopen) its database, then
 * the cases of the header comment. */
static void graph_cases(void)
{
    char dir[PATH_MAX];
    graph_dir(dir, sizeof dir);
    uint32_t n_big = (uint32_t)(G_BIG_TURNS * cfg.scale);
    if (n_big < 2000)
        n_big = 2000;
    uint64_t total = n_big + (uint64_t)G_SMALL_USERS * G_SMALL_TURNS;
    size_t n_q = cfg.n_queries;
    fprintf(cfg.is_json ? stderr : stdout,
            "graph: 1 user x %u remembered turns (%u people) + %u users x %u turns, 1 in 3 "
            "stating facts; %zu queries, half naming graph entities; dir %s\n",
            n_big, G_BIG_PEOPLE, G_SMALL_USERS, G_SMALL_TURNS, n_q, dir);
    const char *saved_dir = cfg.dir;
    cfg.dir = dir; /* open_db opens cfg.dir */
    if (!cfg.is_reuse) {
        bench_rm_rf(dir);
        dm_db *db = open_db();
        uint64_t n_facts = 0;
        uint64_t t0 = bench_now_ns();
        double tail_s;
        g_remember_user(db, G_BIG_USER, 0, G_BIG_PEOPLE, n_big, &n_facts, &tail_s);
        double loop_s = secs_since(t0);
        uint64_t t1 = bench_now_ns();
        check(dm_sync_indexes(db), "dm_sync_indexes");
        double s = loop_s + secs_since(t1);
        report("graph_build_big", (double)n_big / s, 0, 0, s, "seconds");
        report("graph_build_tail", tail_s > 0 ? (double)(n_big / 10) / tail_s : 0,
               0, 0, tail_s, "seconds");
        report("graph_facts_big", 0, 0, 0, (double)n_facts, "facts_added");
        n_facts = 0;
        t0 = bench_now_ns();
        for (uint32_t u = 0; u < G_SMALL_USERS; u++) {
            char user[32];
            g_small_user(u, user, sizeof user);
            g_remember_user(db, user, u + 1, G_SMALL_PEOPLE, G_SMALL_TURNS, &n_facts, NULL);
        }
        check(dm_sync_indexes(db), "dm_sync_indexes");
        s = secs_since(t0);
        report("graph_build_small", (double)G_SMALL_USERS * G_SMALL_TURNS / s, 0, 0, s,
               "seconds");
        report("graph_facts_small", 0, 0, 0, (double)n_facts / G_SMALL_USERS,
               "facts_per_user");
        t0 = bench_now_ns();
        check(dm_close(db), "dm_close");
        report("graph_close", 0, 0, 0, secs_since(t0), "seconds");
    }
    bench_rng r = { 4343 };
    query *qbig = g_queries(&r, n_q, 0);
    query *qsmall = g_queries(&r, n_q, G_SMALL_USERS);

    uint64_t t0 = bench_now_ns();
    dm_db *db = open_db();
    report("graph_reopen", 0, 0, 0, secs_since(t0), "seconds");
    dm_stats st;
    check(dm_stats_get(db, &st), "dm_stats_get");
    if (st.n_memories != total)
        bench_die("%s holds %" PRIu64 " memories, not %" PRIu64
                  ": --reuse needs the --scale of the --keep run",
                  dir, st.n_memories, total);

    /* The first search of each user loads its indexes and facts. */
    bench_lat lat;
    bench_lat_init(&lat, G_SMALL_USERS);
    double big_ms = 0;
    for (uint32_t i = 0; i <= G_SMALL_USERS; i++) {
        char u[32];
        if (i == G_SMALL_USERS)
            snprintf(u, sizeof u, G_BIG_USER);
        else
            g_small_user(i, u, sizeof u);
        dm_search_params sp = { .user_id = u, .query = "warm up", .k = 1,
                                .flags = DM_NO_REFRESH, .now_us = REF_US };
        dm_search_result *res;
        uint64_t s = bench_now_ns();
        check(dm_search(db, &sp, &res), "dm_search");
        uint64_t ns = bench_now_ns() - s;
        if (i < G_SMALL_USERS)
            bench_lat_add(&lat, ns);
        else
            big_ms = (double)ns / 1e6;
        dm_search_result_free(res);
    }
    report("graph_load_user", 0, bench_lat_pct_us(&lat, 0.50), bench_lat_pct_us(&lat, 0.99),
           G_SMALL_USERS, "users");
    report("graph_first_big", 0, 0, 0, big_ms, "ms");
    bench_lat_fini(&lat);

    uint64_t nn, ne, sn = 0, se = 0;
    g_graph_size(db, G_BIG_USER, 0, G_BIG_PEOPLE, &nn, &ne);
    report("graph_nodes_big", 0, 0, 0, (double)nn, "nodes");
    report("graph_edges_big", 0, 0, 0, (double)ne, "edges");
    for (uint32_t i = 0; i < G_SMALL_USERS; i++) {
        char u[32];
        uint64_t a, b;
        g_small_user(i, u, sizeof u);
        g_graph_size(db, u, i + 1, G_SMALL_PEOPLE, &a, &b);
        sn += a;
        se += b;
    }
    report("graph_nodes_small", 0, 0, 0, (double)sn / G_SMALL_USERS, "nodes_per_user");
    report("graph_edges_small", 0, 0, 0, (double)se / G_SMALL_USERS, "edges_per_user");

    warm(db, qbig, n_q < 200 ? n_q : 200);
    warm(db, qsmall, n_q < 200 ? n_q : 200);
    g_search_cases(db, qbig, n_q, "graph_big");
    g_search_cases(db, qsmall, n_q, "graph_small");

    check(dm_close(db), "dm_close");
    free(qbig);
    free(qsmall);
    cfg.dir = saved_dir;
}

/* ------------------------------------------------------------ main */

static void main_cases(uint32_t n_users, uint32_t n_big, uint64_t total, size_t n_q,
                       size_t n_mt);

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
                            "[--keep] [--reuse] [--only big,small,mt,refresh,graph]\n");
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
    /* The main workload is built (or reopened) only for the groups that
     * search it. */
    bool main_on = group_on("big") || group_on("small") || group_on("mt") ||
                   group_on("refresh");
    FILE *info = cfg.is_json ? stderr : stdout;
    if (main_on)
        fprintf(info,
                "bench_retrieval: %u users x %u memories + 1 user x %u = %" PRIu64
                " memories, sessions of %d, events over 2023; %zu queries (1 in 5 with a time "
                "expression), k %d, best of %u rounds; load %.2f; dir %s\n",
                n_users, per_user, n_big, total, SESSION_LEN, n_q, K, cfg.rounds, load1(),
                cfg.dir);
    else
        fprintf(info, "bench_retrieval: k %d, best of %u rounds; load %.2f\n", K, cfg.rounds,
                load1());
    if (!cfg.is_json)
        printf("%-18s %10s %10s %10s %14s\n", "case", "ops/s", "p50 us", "p99 us", "value");
    if (main_on)
        main_cases(n_users, n_big, total, n_q, n_mt);
    if (group_on("graph"))
        graph_cases();
    if (!cfg.is_keep && !cfg.is_reuse) { /* a --reuse run's database stays */
        char gdir[PATH_MAX];
        graph_dir(gdir, sizeof gdir);
        bench_rm_rf(cfg.dir);
        bench_rm_rf(gdir);
    }
    return 0;
}

/* The main workload's cases (the groups big, small, mt and refresh). */
static void main_cases(uint32_t n_users, uint32_t n_big, uint64_t total, size_t n_q,
                       size_t n_mt)
{
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
}
