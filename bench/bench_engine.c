/*
 * bench_engine.c -- the whole memory engine through the public API.
 *
 * Workload: U users with P memories each, plus one "big" user with B
 * memories (defaults 10,000 x 100 + 100,000 = 1.1M memories), interleaved
 * round-robin the way many agents would write.  Texts are generated
 * English sentences (names, activities, places, times) embedded by the
 * built-in model; they are stored without extraction (no_extract: this
 * measures the memory core; bench_retrieval's graph group measures
 * remembering with extraction).  Measured:
 *   ingest      dm_add_batch of --batch memories (embedding included), one
 *               thread, sync mode batch (every call returns after its fsync)
 *   index_catchup  after the last add: time until the indexer thread has
 *               linked every vector into its graph (dm_sync_indexes);
 *               ingest_linked is the rate counting that time too;
 *               ingest_runq / ingest_blocked: of the ingest's wall time,
 *               how long the writing thread waited for a CPU, and was
 *               blocked (fsync, locks)
 *   add_1       single dm_add calls with sync none (latency of one add)
 *   rss         resident memory per memory after ingest (all users loaded)
 *   reopen      dm_close + dm_open of the whole database
 *   first       the first search of the big user after reopen (loads its
 *               indexes from the checkpoint)
 *   search_big  dm_search p50/p99 for the big user, k 10, 1,000 queries
 *   search_small dm_search p50/p99 over random small users
 *
 * usage: bench_engine [--json] [--scale F] [--dir D] [--batch N] [--model PATH]
 *                     [--keep] [--reuse]
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "bench_words.h"
#include "deltamemory.h"

static struct {
    bool is_json;
    double scale;
    const char *dir;
    const char *model;
    uint32_t batch;
    bool is_keep;   /* leave the database for a later --reuse run */
    bool is_reuse;  /* skip ingest: search the database a --keep run left */
} cfg = { false, 1.0, "/tmp/dm-bench-engine", NULL, 1000, false, false };

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static void check(int rc, const char *what)
{
    if (rc)
        bench_die("%s: %s: %s", what, dm_errname(rc), dm_errmsg());
}

static dm_db *open_db(int sync)
{
    dm_options o;
    dm_options_init(&o);
    o.sync = (dm_sync_mode)sync;
    o.model_path = cfg.model;
    dm_db *db;
    check(dm_open(cfg.dir, &o, &db), "dm_open");
    return db;
}

static void report(const char *name, double ops_per_s, double p50, double p99, double extra,
                   const char *extra_name)
{
    if (cfg.is_json)
        printf("{\"suite\":\"engine\",\"case\":\"%s\",\"ops_per_s\":%.1f,\"p50_us\":%.2f,"
               "\"p99_us\":%.2f,\"%s\":%.3f}\n",
               name, ops_per_s, p50, p99, extra_name, extra);
    else
        printf("%-14s %12.0f %10.2f %10.2f %14.3f %s\n", name, ops_per_s, p50, p99, extra,
               extra_name);
    fflush(stdout);
}

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
        else if (!strcmp(a, "--batch") && i + 1 < argc)
            cfg.batch = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(a, "--model") && i + 1 < argc)
            cfg.model = argv[++i];
        else if (!strcmp(a, "--keep"))
            cfg.is_keep = true;
        else if (!strcmp(a, "--reuse"))
            cfg.is_reuse = true;
        else {
            fprintf(stderr, "usage: bench_engine [--json] [--scale F] [--dir D] [--batch N] "
                            "[--model PATH] [--keep] [--reuse]\n");
            return 2;
        }
    }
    uint32_t n_users = (uint32_t)(10000 * cfg.scale), per_user = 100;
    uint32_t n_big = (uint32_t)(100000 * cfg.scale);
    if (n_users < 10)
        n_users = 10;
    if (n_big < 1000)
        n_big = 1000;
    uint64_t total = (uint64_t)n_users * per_user + n_big;
    FILE *info = cfg.is_json ? stderr : stdout;
    fprintf(info, "bench_engine: %u users x %u memories + 1 user x %u = %" PRIu64
                  " memories, batch %u, dir %s\n",
            n_users, per_user, n_big, total, cfg.batch, cfg.dir);
    if (!cfg.is_json)
        printf("%-14s %12s %10s %10s %14s\n", "case", "ops/s", "p50 us", "p99 us", "value");

    if (!cfg.is_reuse)
        bench_rm_rf(cfg.dir);
    long rss0 = rss_kb();
    dm_db *db = open_db(DM_SYNC_BATCH);
    long rss_open = rss_kb();

    /* Ingest: round-robin over users; the big user gets its share of each
     * round so that it grows alongside the others. */
    bench_rng r = { 42 };
    dm_add_params *ps = bench_xmalloc(sizeof *ps * cfg.batch);
    char (*texts)[160] = bench_xmalloc(sizeof *texts * cfg.batch);
    char (*users)[32] = bench_xmalloc(sizeof *users * cfg.batch);
    uint64_t done = 0, text_bytes = 0, big_done = 0;
    uint64_t t0 = bench_now_ns();
    struct timespec cpu0, cpu1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
    double on0, rq0, on1, rq1;
    bench_sched_times(&on0, &rq0);
    int64_t base_us = INT64_C(1600000000000000);
    if (cfg.is_reuse) {
        done = total;
        big_done = n_big;
    }
    while (done < total) {
        uint32_t nb = 0;
        while (nb < cfg.batch && done + nb < total) {
            uint64_t seq = done + nb;
            /* Every (total / n_big)-th memory goes to the big user. */
            bool big = big_done < n_big && seq * n_big / total >= big_done;
            dm_add_params_init(&ps[nb]);
            ps[nb].no_extract = 1;
            if (big) {
                snprintf(users[nb], sizeof users[nb], "big");
                big_done++;
            } else {
                snprintf(users[nb], sizeof users[nb], "user%05u",
                         (uint32_t)((seq - big_done) % n_users));
            }
            bench_sentence(&r, texts[nb], sizeof texts[nb]);
            text_bytes += strlen(texts[nb]);
            ps[nb].user_id = users[nb];
            ps[nb].text = texts[nb];
            ps[nb].event_time_us = base_us + (int64_t)seq * 1000000;
            nb++;
        }
        check(dm_add_batch(db, ps, nb, NULL), "dm_add_batch");
        done += nb;
        if (!cfg.is_json && isatty(2) && done % (cfg.batch * 50) == 0)
            fprintf(stderr, "\r  %" PRIu64 "/%" PRIu64, done, total);
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    if (!cfg.is_json && isatty(2))
        fprintf(stderr, "\r");
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
    bench_sched_times(&on1, &rq1);
    report("ingest", (double)total / secs, 0, 0, secs, "seconds");
    /* The calling thread's CPU time: steadier than wall time on a shared
     * machine, and what one writer costs. */
    double cpu_s = (double)(cpu1.tv_sec - cpu0.tv_sec) + (double)(cpu1.tv_nsec - cpu0.tv_nsec) / 1e9;
    report("ingest_cpu", (double)total / cpu_s, 0, 0, cpu_s, "cpu_seconds");
    /* Where the rest of the wall time went: waiting for a CPU (the other
     * threads and the machine's other tenants), and blocked (fsync, locks). */
    if (on1 > on0) {
        report("ingest_runq", 0, 0, 0, rq1 - rq0, "seconds");
        report("ingest_blocked", 0, 0, 0, secs - (on1 - on0) - (rq1 - rq0), "seconds");
    }
    /* The graph links of the last adds may still be in progress on the
     * indexer thread (the memories are searchable, exactly, meanwhile):
     * the time until everything is linked, and the rate counting it. */
    {
        dm_stats st;
        check(dm_stats_get(db, &st), "dm_stats_get");
        uint64_t t1 = bench_now_ns();
        check(dm_sync_indexes(db), "dm_sync_indexes");
        double catchup = (double)(bench_now_ns() - t1) / 1e9;
        report("index_catchup", 0, 0, 0, catchup, "seconds");
        report("ingest_linked", (double)total / (secs + catchup), 0, 0, secs + catchup,
               "seconds");
        report("pending_at_ack", 0, 0, 0, (double)st.index_pending, "vectors");
    }
    long rss1 = rss_kb();
    report("rss_per_mem", 0, 0, 0, (double)(rss1 - rss_open) * 1024.0 / (double)total,
           "bytes");
    report("text_per_mem", 0, 0, 0, (double)text_bytes / (double)total, "bytes");
    {
        dm_stats st0;
        check(dm_stats_get(db, &st0), "dm_stats_get");
        report("index_per_mem", 0, 0, 0, (double)st0.index_bytes / (double)total, "bytes");
    }
    (void)rss0;

    if (cfg.is_reuse) {
        /* Load every user's indexes first so that the figures below are
         * warm, as after an ingest. */
        char u[32];
        for (uint32_t i = 0; i <= n_users; i++) {
            if (i == n_users)
                snprintf(u, sizeof u, "big");
            else
                snprintf(u, sizeof u, "user%05u", i);
            dm_search_params sp = { .user_id = u, .query = "warm up", .k = 1 };
            dm_search_result *res;
            check(dm_search(db, &sp, &res), "dm_search");
            dm_search_result_free(res);
        }
    }

    /* Search latency on the big user, warm. */
    bench_lat lat;
    bench_lat_init(&lat, 1000);
    char q[160];
    for (int i = 0; i < 1000; i++) {
        bench_sentence(&r, q, sizeof q);
        dm_search_params sp = { .user_id = "big", .query = q, .k = 10 };
        dm_search_result *res;
        uint64_t s = bench_now_ns();
        check(dm_search(db, &sp, &res), "dm_search");
        bench_lat_add(&lat, bench_now_ns() - s);
        dm_search_result_free(res);
    }
    report("search_big", 1e6 / bench_lat_pct_us(&lat, 0.50), bench_lat_pct_us(&lat, 0.50),
           bench_lat_pct_us(&lat, 0.99), (double)n_big, "memories");
    lat.n = 0;
    lat.is_sorted = 0;
    for (int i = 0; i < 1000; i++) {
        char u[32];
        snprintf(u, sizeof u, "user%05u", (uint32_t)bench_rng_below(&r, n_users));
        bench_sentence(&r, q, sizeof q);
        dm_search_params sp = { .user_id = u, .query = q, .k = 10 };
        dm_search_result *res;
        uint64_t s = bench_now_ns();
        check(dm_search(db, &sp, &res), "dm_search");
        bench_lat_add(&lat, bench_now_ns() - s);
        dm_search_result_free(res);
    }
    report("search_small", 1e6 / bench_lat_pct_us(&lat, 0.50), bench_lat_pct_us(&lat, 0.50),
           bench_lat_pct_us(&lat, 0.99), per_user, "memories");

    /* Close (checkpoints) and reopen. */
    t0 = bench_now_ns();
    check(dm_close(db), "dm_close");
    double close_s = (double)(bench_now_ns() - t0) / 1e9;
    report("close", 0, 0, 0, close_s, "seconds");
    t0 = bench_now_ns();
    db = open_db(DM_SYNC_BATCH);
    double open_s = (double)(bench_now_ns() - t0) / 1e9;
    report("reopen", 0, 0, 0, open_s, "seconds");
    {
        bench_sentence(&r, q, sizeof q);
        dm_search_params sp = { .user_id = "big", .query = q, .k = 10 };
        dm_search_result *res;
        t0 = bench_now_ns();
        check(dm_search(db, &sp, &res), "dm_search");
        report("first_big", 0, 0, 0, (double)(bench_now_ns() - t0) / 1e6, "ms");
        dm_search_result_free(res);
    }
    dm_stats st;
    check(dm_stats_get(db, &st), "dm_stats_get");
    report("disk", 0, 0, 0, (double)st.disk_bytes / 1e6, "MB");
    check(dm_close(db), "dm_close");

    /* Single adds, no sync: the latency of one dm_add to a user whose
     * indexes are loaded (the first touch of each user after open loads
     * them and is measured separately). */
    db = open_db(DM_SYNC_NONE);
    lat.n = 0;
    lat.is_sorted = 0;
    bench_lat cold;
    bench_lat_init(&cold, 200);
    for (int pass = 0; pass < 2; pass++) {
        bench_rng r2 = { 7 };
        uint32_t n_warm = 200 < n_users ? 200 : n_users;
        for (uint32_t i = 0; i < (pass ? 1000 : n_warm); i++) {
            dm_add_params p;
            dm_add_params_init(&p);
            p.no_extract = 1;
            char u[32];
            /* pass 0: each user once, first touch; pass 1: random, warm */
            snprintf(u, sizeof u, "user%05u", pass ? (uint32_t)bench_rng_below(&r2, n_warm) : i);
            bench_sentence(&r, q, sizeof q);
            p.user_id = u;
            p.text = q;
            uint64_t s = bench_now_ns();
            check(dm_add(db, &p, NULL), "dm_add");
            bench_lat_add(pass ? &lat : &cold, bench_now_ns() - s);
        }
    }
    report("add_1_nosync", 1e6 / bench_lat_pct_us(&lat, 0.50), bench_lat_pct_us(&lat, 0.50),
           bench_lat_pct_us(&lat, 0.99), 0, "-");
    report("load_user", 0, bench_lat_pct_us(&cold, 0.50), bench_lat_pct_us(&cold, 0.99),
           per_user, "memories");
    bench_lat_fini(&cold);
    check(dm_close(db), "dm_close");
    bench_lat_fini(&lat);
    free(ps);
    free(texts);
    free(users);
    if (!cfg.is_keep)
        bench_rm_rf(cfg.dir);
    return 0;
}
