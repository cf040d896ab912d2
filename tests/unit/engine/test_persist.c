/*
 * test_persist.c -- what survives dm_close and what survives a crash.
 *
 *   - close and reopen: every memory comes back with every field, the
 *     indexes come back from their checkpoints (loaded lazily, nothing to
 *     replay after a clean close) and searches answer exactly as before;
 *     memories added after the reopen join them;
 *   - many operations with a small checkpoint_ops: checkpoints happen
 *     during the session and the answers after reopen are the same;
 *   - a crash: a child process works with a small checkpoint_ops and ends
 *     with _exit() instead of dm_close, after writing down its lists and
 *     search answers; the parent reopens, finds the index log replayed
 *     (n_replayed > 0) and every answer the same;
 *   - erase_user, then reopen: the user is unknown, the neighbour intact,
 *     the disk shrinks and the user's words are gone from every file;
 *   - a second process cannot open the database while one has it (EBUSY);
 *   - model mismatch: reopening with another model (another name, or the
 *     same name with another dimension) is DM_EINVAL naming both models
 *     and the re-embed way out; with reembed = 1 it opens, every embedding
 *     has the new dimension and search works; then the new model is the
 *     recorded one.
 */
#include "testutil.h"
#include "tinymodel.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double elapsed(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

/* ------------------------------------------------------------------ */
/* Dumps: a user's whole state and search answers as text              */
/* ------------------------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
}

static char *norm_json(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    char *out = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : strdup("(bad json)");
    json_decref(j);
    return out;
}

/* Every memory of the user, newest first, every field but access data. */
static void dump_user(dm_db *db, const char *tenant, const char *user, sbuf *b)
{
    dm_list_params lp;
    memset(&lp, 0, sizeof lp);
    lp.tenant = tenant;
    lp.user_id = user;
    lp.limit = 10000;
    lp.flags = DM_WITH_ARCHIVED | DM_WITH_EMBEDDING;
    dm_list_result *r = NULL;
    int rc = dm_list(db, &lp, &r);
    sb_printf(b, "user %s/%s: %s\n", tenant ? tenant : "-", user, dm_errname(rc));
    if (rc != DM_OK)
        return;
    for (size_t i = 0; i < r->n; i++) {
        const dm_memory *m = &r->items[i];
        char id[DM_ID_STRLEN + 1];
        dm_id_format(&m->id, id);
        char *meta = norm_json(m->metadata);
        double emb = 0;
        for (uint32_t j = 0; m->embedding && j < m->dim; j++)
            emb += m->embedding[j] * (double)(j + 1);
        sb_printf(b, "%s ev=%" PRId64 " rec=%" PRId64 " role=%s agent=%s sal=%.4f "
                  "kind=%d state=%d dim=%u emb=%.4f meta=%s text=%s\n", id,
                  m->event_time_us, m->record_time_us, m->role,
                  m->agent_id ? m->agent_id : "-", m->salience, (int)m->kind,
                  (int)m->state, m->dim, emb, meta, m->text);
        free(meta);
    }
    dm_list_result_free(r);
}

static const char *const queries[] = {
    "pizza pasta", "dog and puppy", "rain snow storm", "mk", "guitar concert",
    "the", "deadline meeting boss",
};
#define N_QUERIES (sizeof queries / sizeof queries[0])

/* One line per hit: "id score". */
static void dump_search(dm_db *db, const char *tenant, const char *user,
                        const char *q, sbuf *b)
{
    dm_search_params sp;
    memset(&sp, 0, sizeof sp);
    sp.tenant = tenant;
    sp.user_id = user;
    sp.query = q;
    sp.k = 15;
    /* A dump must not change what it dumps (no refresh).  The legs and
     * their fusion only: MMR's greedy picks amplify the differences an
     * approximate graph rebuilt from a log may have in its last places. */
    sp.flags = DM_NO_REFRESH | DM_NO_MMR | DM_NO_NEIGHBOURS;
    sp.weights.similarity = 1;
    dm_search_result *r = NULL;
    int rc = dm_search(db, &sp, &r);
    sb_printf(b, "search %s/%s \"%s\": %s\n", tenant ? tenant : "-", user, q,
              dm_errname(rc));
    if (rc != DM_OK)
        return;
    for (size_t i = 0; i < r->n; i++) {
        char id[DM_ID_STRLEN + 1];
        dm_id_format(&r->hits[i].memory.id, id);
        sb_printf(b, "%s %.6f\n", id, (double)r->hits[i].score);
    }
    dm_search_result_free(r);
}

/* Search answers may differ only in the order of equal scores, and in
 * scores by rounding. */
static void compare_search(const char *what, const char *want, const char *got)
{
    char *w = strdup(want), *g = strdup(got);
    char *ws = NULL, *gs = NULL;
    char *wl = strtok_r(w, "\n", &ws), *gl = strtok_r(g, "\n", &gs);
    if (!wl || !gl || strcmp(wl, gl) != 0)
        fail_msg("%s: header \"%s\" vs \"%s\"", what, wl ? wl : "", gl ? gl : "");
    char wid[64][40], gid[64][40];
    double wsc[64], gsc[64];
    int nw = 0, ng = 0;
    while ((wl = strtok_r(NULL, "\n", &ws)) && nw < 64) {
        sscanf(wl, "%39s %lf", wid[nw], &wsc[nw]);
        nw++;
    }
    while ((gl = strtok_r(NULL, "\n", &gs)) && ng < 64) {
        sscanf(gl, "%39s %lf", gid[ng], &gsc[ng]);
        ng++;
    }
    if (nw != ng)
        fail_msg("%s: %d hits before, %d after", what, nw, ng);
    for (int i = 0; i < nw; i++) {
        if (fabs(wsc[i] - gsc[i]) > 1e-4)
            fail_msg("%s: hit %d scored %f before, %f after", what, i, wsc[i], gsc[i]);
        int found = 0;
        for (int j = 0; j < ng && !found; j++)
            found = strcmp(wid[i], gid[j]) == 0 && fabs(wsc[i] - gsc[j]) <= 1e-4;
        /* At the end of the list, another memory of the same score may
         * take the place. */
        if (!found && fabs(wsc[i] - wsc[nw - 1]) <= 1e-4 && nw > 0 &&
            fabs(gsc[ng - 1] - wsc[nw - 1]) <= 1e-4)
            found = 1;
        if (!found)
            fail_msg("%s: hit %s (%f) is missing after\nbefore:\n%s\nafter:\n%s", what,
                     wid[i], wsc[i], want, got);
    }
    free(w);
    free(g);
}

typedef struct world {
    int n_users;
    const char *tenants[8];
    char users[8][16];
} world;

static void world_init(world *w, int n)
{
    static const char *const t[4] = { NULL, "acme", NULL, "globex" };
    w->n_users = n;
    for (int i = 0; i < n; i++) {
        w->tenants[i] = t[i % 4];
        snprintf(w->users[i], sizeof w->users[i], "p%d", i);
    }
}

/* The dumps of every user (state, then searches), separated by a form
 * feed so that searches can be compared leniently. */
static void dump_world(dm_db *db, const world *w, sbuf *state, sbuf *search)
{
    for (int i = 0; i < w->n_users; i++) {
        dump_user(db, w->tenants[i], w->users[i], state);
        for (size_t q = 0; q < N_QUERIES; q++) {
            dump_search(db, w->tenants[i], w->users[i], queries[q], search);
            sb_printf(search, "\f");
        }
    }
}

static void compare_world(const char *phase, const char *state_before,
                          const char *state_after, const char *search_before,
                          const char *search_after)
{
    if (strcmp(state_before, state_after) != 0) {
        /* Show the first differing line. */
        const char *a = state_before, *b = state_after;
        while (*a && *a == *b)
            a++, b++;
        while (a > state_before && a[-1] != '\n')
            a--, b--;
        fail_msg("%s: state differs at\n  before: %.300s\n  after:  %.300s", phase, a, b);
    }
    char *x = strdup(search_before), *y = strdup(search_after);
    char *xs = NULL, *ys = NULL;
    char *xa = strtok_r(x, "\f", &xs), *ya = strtok_r(y, "\f", &ys);
    while (xa || ya) {
        if (!xa || !ya)
            fail_msg("%s: a different number of searches", phase);
        compare_search(phase, xa, ya);
        xa = strtok_r(NULL, "\f", &xs);
        ya = strtok_r(NULL, "\f", &ys);
    }
    free(x);
    free(y);
}

/* A random operation on a random user of w: mostly adds, some updates and
 * deletes.  Returns DM_OK or the failing call's code. */
static int random_op(dm_db *db, const world *w, tu_rng *r, int add_only)
{
    int u = (int)tu_randn(r, (uint64_t)w->n_users);
    uint64_t x = add_only ? 0 : tu_randn(r, 10);
    if (x < 7) {
        char text[256], s[200], meta[64];
        tm_sentence(r, (unsigned)tu_randn(r, TM_N_TOPICS), 3, s, sizeof s);
        snprintf(text, sizeof text, "%s mk%04u", s, (unsigned)tu_randn(r, 10000));
        snprintf(meta, sizeof meta, "{\"r\": %u}", (unsigned)tu_randn(r, 5));
        dm_add_params p;
        dm_add_params_init(&p);
        p.tenant = w->tenants[u];
        p.user_id = w->users[u];
        p.text = text;
        p.metadata = meta;
        p.event_time_us = 1600000000000000 + (int64_t)tu_randn(r, 1000000) * 1000;
        p.salience = (float)tu_randn(r, 101) / 100.0f;
        p.agent_id = tu_randn(r, 2) ? "ag" : NULL;
        return dm_add(db, &p, NULL);
    }
    /* Update or delete a random existing memory of u. */
    dm_list_params lp;
    memset(&lp, 0, sizeof lp);
    lp.tenant = w->tenants[u];
    lp.user_id = w->users[u];
    lp.limit = 10000;
    dm_list_result *lr;
    int rc = dm_list(db, &lp, &lr);
    if (rc == DM_ENOTFOUND)
        return DM_OK;
    if (rc != DM_OK)
        return rc;
    if (lr->n > 0) {
        dm_id id = lr->items[tu_randn(r, lr->n)].id;
        dm_scope sc = { w->tenants[u], w->users[u] };
        if (x < 9) {
            char text[256];
            tm_sentence(r, (unsigned)tu_randn(r, TM_N_TOPICS), 4, text, sizeof text);
            rc = dm_update(db, &sc, &id, text, tu_randn(r, 2) ? "{\"upd\": 1}" : NULL);
        } else {
            rc = dm_delete(db, &sc, &id);
        }
    }
    dm_list_result_free(lr);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Clean close and reopen                                              */
/* ------------------------------------------------------------------ */

static void test_reopen(void **state)
{
    (void)state;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const char *d = tu_tmpdir("test_persist_reopen");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", d);
    dm_options o;
    tm_options(&o);
    world w;
    world_init(&w, 5);
    tu_rng r;
    tu_rng_seed(&r, 1);
    dm_db *db;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    for (int i = 0; i < 300; i++)
        assert_rc(random_op(db, &w, &r, 1), DM_OK);
    for (int i = 0; i < 100; i++)
        assert_rc(random_op(db, &w, &r, 0), DM_OK);
    sbuf s1 = { 0 }, q1 = { 0 };
    dump_world(db, &w, &s1, &q1);
    assert_rc(dm_close(db), DM_OK);

    assert_rc(dm_open(dir, &o, &db), DM_OK);
    dm_stats st;
    assert_rc(dm_stats_get(db, &st), DM_OK);
    assert_int_equal(st.n_loaded_users, 0); /* loaded when first used */
    sbuf s2 = { 0 }, q2 = { 0 };
    dump_world(db, &w, &s2, &q2);
    compare_world("reopen", s1.p, s2.p, q1.p, q2.p);
    assert_rc(dm_stats_get(db, &st), DM_OK);
    assert_int_equal(st.n_loaded_users, (uint64_t)w.n_users);
    assert_int_equal(st.n_replayed, 0); /* dm_close checkpointed them all */
    assert_int_equal(st.n_users, (uint64_t)w.n_users);

    /* More after the reopen, then once more. */
    for (int i = 0; i < 100; i++)
        assert_rc(random_op(db, &w, &r, 0), DM_OK);
    sbuf s3 = { 0 }, q3 = { 0 };
    dump_world(db, &w, &s3, &q3);
    assert_rc(dm_close(db), DM_OK);
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    sbuf s4 = { 0 }, q4 = { 0 };
    dump_world(db, &w, &s4, &q4);
    compare_world("second reopen", s3.p, s4.p, q3.p, q4.p);
    assert_rc(dm_close(db), DM_OK);
    free(s1.p), free(q1.p), free(s2.p), free(q2.p);
    free(s3.p), free(q3.p), free(s4.p), free(q4.p);
    tu_rmrf(dir);
    print_message("reopen: %.2f s\n", elapsed(&t0));
}

/* Small checkpoint_ops: checkpoints during the session; the same answers
 * after reopening. */
static void test_checkpoints(void **state)
{
    (void)state;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const char *d = tu_tmpdir("test_persist_cpt");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", d);
    dm_options o;
    tm_options(&o);
    o.checkpoint_ops = 8;
    o.memtable_bytes = 128 << 10;
    world w;
    world_init(&w, 3);
    tu_rng r;
    tu_rng_seed(&r, 2);
    dm_db *db;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    /* The indexer writes the checkpoints as they fall due; how many it
     * has written at a given moment depends on how busy the machine is,
     * so the test waits for it every 100 operations (each user has had
     * several checkpoints' worth of operations by then). */
    for (int i = 0; i < 600; i++) {
        assert_rc(random_op(db, &w, &r, i < 200), DM_OK);
        if (i % 100 == 99)
            assert_rc(dm_sync_indexes(db), DM_OK);
    }
    dm_stats st;
    assert_rc(dm_stats_get(db, &st), DM_OK);
    print_message("checkpoints during the session: %" PRIu64 "\n", st.n_checkpoints);
    assert_true(st.n_checkpoints >= 10);
    sbuf s1 = { 0 }, q1 = { 0 };
    dump_world(db, &w, &s1, &q1);
    assert_rc(dm_close(db), DM_OK);

    /* Reopen with the default checkpoint_ops too: the files do not depend
     * on the option. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass) {
            dm_options def;
            dm_options_init(&def);
            o.checkpoint_ops = def.checkpoint_ops;
        }
        assert_rc(dm_open(dir, &o, &db), DM_OK);
        sbuf s2 = { 0 }, q2 = { 0 };
        dump_world(db, &w, &s2, &q2);
        compare_world(pass ? "reopen (default checkpoint_ops)" : "reopen", s1.p, s2.p,
                      q1.p, q2.p);
        free(s2.p), free(q2.p);
        assert_rc(dm_close(db), DM_OK);
    }
    free(s1.p), free(q1.p);
    tu_rmrf(dir);
    print_message("checkpoints: %.2f s\n", elapsed(&t0));
}

/* ------------------------------------------------------------------ */
/* A crash: a child that never closes                                  */
/* ------------------------------------------------------------------ */

static int write_file(const char *path, const char *a, const char *b)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t la = strlen(a), lb = strlen(b);
    int ok = fwrite(&la, sizeof la, 1, f) == 1 && fwrite(a, 1, la, f) == la &&
             fwrite(&lb, sizeof lb, 1, f) == 1 && fwrite(b, 1, lb, f) == lb;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static void read_file(const char *path, char **a, char **b)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t la, lb;
    assert_int_equal(fread(&la, sizeof la, 1, f), 1);
    *a = calloc(1, la + 1);
    assert_int_equal(fread(*a, 1, la, f), la);
    assert_int_equal(fread(&lb, sizeof lb, 1, f), 1);
    *b = calloc(1, lb + 1);
    assert_int_equal(fread(*b, 1, lb, f), lb);
    fclose(f);
}

static void crash_child(const char *dir, const dm_options *o, const world *w,
                        uint64_t seed, int n_ops, const char *out)
{
    dm_db *db;
    if (dm_open(dir, o, &db) != DM_OK) {
        fprintf(stderr, "child: open: %s\n", dm_errmsg());
        _exit(2);
    }
    tu_rng r;
    tu_rng_seed(&r, seed);
    for (int i = 0; i < n_ops; i++) {
        if (random_op(db, w, &r, i < n_ops / 3) != DM_OK) {
            fprintf(stderr, "child: op %d: %s\n", i, dm_errmsg());
            _exit(3);
        }
        /* Checkpoints are written by the indexer thread: let the due ones
         * land two thirds in, so that the rest is a log tail to replay. */
        if (i == 2 * n_ops / 3 && dm_sync_indexes(db) != DM_OK)
            _exit(6);
    }
    dm_stats st;
    if (dm_stats_get(db, &st) != DM_OK || st.n_checkpoints == 0) {
        fprintf(stderr, "child: no checkpoint was written\n");
        _exit(4);
    }
    sbuf s = { 0 }, q = { 0 };
    dump_world(db, w, &s, &q);
    if (write_file(out, s.p, q.p) != 0)
        _exit(5);
    /* The crash: no dm_close, no exit handlers. */
    _exit(0);
}

static void test_crash_replay(void **state)
{
    (void)state;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const char *d = tu_tmpdir("test_persist_crash");
    char dir[4200], out[4300];
    snprintf(dir, sizeof dir, "%s/db", d);
    snprintf(out, sizeof out, "%s/expected", d);
    (void)tm_default_model(); /* built before the fork */
    dm_options o;
    tm_options(&o);
    o.checkpoint_ops = 16;
    world w;
    world_init(&w, 4);

    for (int round = 0; round < 3; round++) {
        /* Each round crashes once more on top of the last one's state. */
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            crash_child(dir, &o, &w, 100 + (uint64_t)round, 400 * (round + 1), out);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("round %d: the child failed (status %d)", round, status);

        char *s1, *q1;
        read_file(out, &s1, &q1);
        dm_db *db;
        assert_rc(dm_open(dir, &o, &db), DM_OK);
        sbuf s2 = { 0 }, q2 = { 0 };
        dump_world(db, &w, &s2, &q2);
        dm_stats st;
        assert_rc(dm_stats_get(db, &st), DM_OK);
        print_message("crash round %d: %" PRIu64 " memories, %" PRIu64
                      " index log entries replayed\n", round, st.n_memories,
                      st.n_replayed);
        assert_true(st.n_replayed > 0);
        compare_world("after a crash", s1, s2.p, q1, q2.p);
        free(s1), free(q1), free(s2.p), free(q2.p);
        if (round == 2) {
            /* A clean close after the replay leaves nothing to replay. */
            sbuf s3 = { 0 }, q3 = { 0 };
            dump_world(db, &w, &s3, &q3);
            assert_rc(dm_close(db), DM_OK);
            assert_rc(dm_open(dir, &o, &db), DM_OK);
            sbuf s4 = { 0 }, q4 = { 0 };
            dump_world(db, &w, &s4, &q4);
            assert_rc(dm_stats_get(db, &st), DM_OK);
            assert_int_equal(st.n_replayed, 0);
            compare_world("clean reopen after crashes", s3.p, s4.p, q3.p, q4.p);
            free(s3.p), free(q3.p), free(s4.p), free(q4.p);
            assert_rc(dm_close(db), DM_OK);
        } else {
            /* Closed so that the next child can open the replayed state. */
            assert_rc(dm_close(db), DM_OK);
        }
    }
    tu_rmrf(d);
    print_message("crash replay: %.2f s\n", elapsed(&t0));
}

/* ------------------------------------------------------------------ */
/* Erase and the disk                                                  */
/* ------------------------------------------------------------------ */

/* 1 if some file under dir contains needle. */
static int dir_contains(const char *dir, const char *needle)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return 0;
    struct dirent *e;
    int found = 0;
    size_t nl = strlen(needle);
    while (!found && (e = readdir(dp))) {
        if (e->d_name[0] == '.')
            continue;
        char p[4600];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            found = dir_contains(p, needle);
            continue;
        }
        FILE *f = fopen(p, "rb");
        if (!f)
            continue;
        char *buf = malloc((size_t)sb.st_size + 1);
        size_t n = fread(buf, 1, (size_t)sb.st_size, f);
        fclose(f);
        found = memmem(buf, n, needle, nl) != NULL;
        free(buf);
    }
    closedir(dp);
    return found;
}

static void test_erase_disk(void **state)
{
    (void)state;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const char *d = tu_tmpdir("test_persist_erase");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", d);
    dm_options o;
    tm_options(&o);
    o.memtable_bytes = 256 << 10;
    dm_db *db;
    assert_rc(dm_open(dir, &o, &db), DM_OK);

    /* A big user whose every memory carries the word "secretword" plus a
     * random filler that compresses badly, and a small neighbour.  A piece
     * of one memory's filler is the needle looked for in the files: it is
     * unlike anything before it, so a block compressor that keeps literal
     * runs as they are (LZ4) keeps it findable. */
    char needle[32] = "";
    enum { N_BIG = 2000 };
    tu_rng r;
    tu_rng_seed(&r, 3);
    dm_add_params ps[50];
    char texts[50][700];
    for (int i = 0; i < N_BIG; i += 50) {
        for (int j = 0; j < 50; j++) {
            size_t len = (size_t)snprintf(texts[j], sizeof texts[j],
                                          "secretword%05d the pizza ", i + j);
            while (len < 600)
                texts[j][len++] = (char)('a' + tu_randn(&r, 26));
            texts[j][len] = '\0';
            if (i + j == 1234)
                snprintf(needle, sizeof needle, "%.24s", texts[j] + 100);
            dm_add_params_init(&ps[j]);
            ps[j].tenant = "acme";
            ps[j].user_id = "big";
            ps[j].text = texts[j];
        }
        assert_rc(dm_add_batch(db, ps, 50, NULL), DM_OK);
    }
    for (int i = 0; i < 50; i++)
        assert_rc(dm_add(db, &(dm_add_params){ .tenant = "acme", .user_id = "small",
                                                .text = "the small neighbour pizza",
                                                .salience = 1.0f, .decay_rate = 0.01f },
                         NULL), DM_OK);
    assert_rc(dm_close(db), DM_OK);
    int present_before = dir_contains(dir, needle);
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    dm_stats st;
    assert_rc(dm_stats_get(db, &st), DM_OK);
    uint64_t disk_before = st.disk_bytes;
    print_message("before erase: disk %" PRIu64 " bytes, marker on disk: %s\n",
                  disk_before, present_before ? "yes" : "no (compressed)");

    uint64_t n = 0;
    assert_rc(dm_erase_user(db, "acme", "big", &n), DM_OK);
    assert_int_equal(n, N_BIG);
    /* The bytes leave the disk: at once or soon after. */
    uint64_t disk_after = 0;
    for (int i = 0; i < 100; i++) {
        assert_rc(dm_stats_get(db, &st), DM_OK);
        disk_after = st.disk_bytes;
        if (disk_after < disk_before / 4)
            break;
        usleep(100 * 1000);
    }
    print_message("after erase: disk %" PRIu64 " bytes\n", disk_after);
    if (disk_after >= disk_before / 4)
        fail_msg("disk bytes %" PRIu64 " -> %" PRIu64 " after erasing most of the data",
                 disk_before, disk_after);
    assert_rc(dm_close(db), DM_OK);

    assert_rc(dm_open(dir, &o, &db), DM_OK);
    dm_list_params lp = { .tenant = "acme", .user_id = "big" };
    dm_list_result *lr;
    assert_rc(dm_list(db, &lp, &lr), DM_ENOTFOUND);
    dm_search_params sp = { .tenant = "acme", .user_id = "big", .query = "pizza" };
    dm_search_result *sr;
    assert_rc(dm_search(db, &sp, &sr), DM_ENOTFOUND);
    assert_rc(dm_erase_user(db, "acme", "big", NULL), DM_ENOTFOUND);
    lp.user_id = "small";
    assert_rc(dm_list(db, &lp, &lr), DM_OK);
    assert_int_equal(lr->n, 50);
    dm_list_result_free(lr);
    sp.user_id = "small";
    sp.query = "secretword01234";
    assert_rc(dm_search(db, &sp, &sr), DM_OK);
    for (size_t i = 0; i < sr->n; i++)
        assert_string_equal(sr->hits[i].memory.user_id, "small");
    dm_search_result_free(sr);
    assert_rc(dm_stats_get(db, &st), DM_OK);
    assert_int_equal(st.n_users, 1);
    assert_int_equal(st.n_memories, 50);
    assert_true(st.disk_bytes < disk_before / 4);
    assert_rc(dm_close(db), DM_OK);
    if (present_before && dir_contains(dir, needle))
        fail_msg("an erased user's text is still in the database files");
    tu_rmrf(dir);
    print_message("erase: %.2f s\n", elapsed(&t0));
}

/* ------------------------------------------------------------------ */
/* One process at a time                                               */
/* ------------------------------------------------------------------ */

static void test_busy(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("test_persist_busy");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", d);
    (void)tm_default_model();
    dm_options o;
    tm_options(&o);
    int go[2], res[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(res), 0);
    /* The child is forked before the parent has any engine thread. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* First attempt while the parent has it open, second after the
         * parent closed it; each result goes back at once. */
        char c;
        dm_db *db = NULL;
        for (int i = 0; i < 2; i++) {
            if (read(go[0], &c, 1) != 1)
                _exit(1);
            int rc = dm_open(dir, &o, &db);
            if (rc == DM_OK)
                rc = dm_close(db) == DM_OK ? DM_OK : DM_EIO;
            if (write(res[1], &rc, sizeof rc) != (ssize_t)sizeof rc)
                _exit(1);
        }
        _exit(0);
    }
    dm_db *db;
    int out[2];
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    assert_int_equal(write(go[1], "1", 1), 1);
    assert_int_equal(read(res[0], &out[0], sizeof out[0]), (ssize_t)sizeof out[0]);
    assert_rc(dm_close(db), DM_OK);
    assert_int_equal(write(go[1], "2", 1), 1);
    assert_int_equal(read(res[0], &out[1], sizeof out[1]), (ssize_t)sizeof out[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(go[0]), close(go[1]), close(res[0]), close(res[1]);
    if (out[0] != DM_EBUSY)
        fail_msg("a second process opened an open database: %s", dm_errname(out[0]));
    assert_rc(out[1], DM_OK);
    tu_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* Model mismatch                                                      */
/* ------------------------------------------------------------------ */

static void test_model_mismatch(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("test_persist_model");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", d);
    const char *model_a = tm_default_model();                 /* tiny-test, 32 */
    const char *model_b = tm_model("tiny-other", 16, 2);      /* another name */
    const char *model_c = tm_model(TM_DEFAULT_NAME, 16, 1);   /* same name, 16 */
    dm_options o;
    tm_options(&o);
    dm_db *db;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    dm_id ids[TM_N_TOPICS];
    for (unsigned t = 0; t < TM_N_TOPICS; t++) {
        char text[200];
        snprintf(text, sizeof text, "%s %s and %s %s", tm_topic_word(t, 0),
                 tm_topic_word(t, 1), tm_topic_word(t, 2), tm_topic_word(t, 3));
        dm_add_params p;
        dm_add_params_init(&p);
        p.user_id = t % 2 ? "m1" : "m2";
        p.text = text;
        assert_rc(dm_add(db, &p, &ids[t]), DM_OK);
    }
    assert_rc(dm_close(db), DM_OK);

    /* Another model: refused, with both names and the way out. */
    o.model_path = model_b;
    db = (dm_db *)&o;
    assert_rc(dm_open(dir, &o, &db), DM_EINVAL);
    assert_null(db);
    const char *m = dm_errmsg();
    print_message("mismatch message: %s\n", m);
    if (!strstr(m, "tiny-test") || !strstr(m, "tiny-other") ||
        !(strcasestr(m, "re-embed") || strcasestr(m, "reembed")))
        fail_msg("the mismatch message names not both models and re-embedding: %s", m);
    /* The same name with another dimension: refused too. */
    o.model_path = model_c;
    assert_rc(dm_open(dir, &o, &db), DM_EINVAL);
    m = dm_errmsg();
    print_message("dimension mismatch message: %s\n", m);
    if (!(strcasestr(m, "re-embed") || strcasestr(m, "reembed")))
        fail_msg("the dimension mismatch message does not say how to re-embed: %s", m);
    /* Nothing was changed by the refusals. */
    o.model_path = model_a;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    assert_rc(dm_close(db), DM_OK);

    /* Re-embed with model b. */
    o.model_path = model_b;
    o.reembed = 1;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    print_message("re-embed open: %.3f s\n", elapsed(&t0));
    dm_stats st;
    assert_rc(dm_stats_get(db, &st), DM_OK);
    assert_string_equal(st.model, TM_ENGINE_NAME("tiny-other"));
    assert_int_equal(st.dim, 16);
    assert_int_equal(st.n_memories, TM_N_TOPICS);
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned t = 0; t < TM_N_TOPICS; t++) {
            dm_memory *mem;
            assert_rc(dm_get(db, NULL, &ids[t], DM_WITH_EMBEDDING, &mem), DM_OK);
            assert_int_equal(mem->dim, 16);
            assert_non_null(mem->embedding);
            dm_memory_free(mem);
            /* A query of the topic's other words finds it by vector. */
            char q[128];
            snprintf(q, sizeof q, "%s %s %s", tm_topic_word(t, 8), tm_topic_word(t, 9),
                     tm_topic_word(t, 10));
            dm_search_params sp = { .user_id = t % 2 ? "m1" : "m2", .query = q, .k = 3 };
            dm_search_result *r;
            assert_rc(dm_search(db, &sp, &r), DM_OK);
            assert_true(r->n >= 1);
            if (memcmp(r->hits[0].memory.id.bytes, ids[t].bytes, 16) != 0)
                fail_msg("pass %d: after re-embedding, \"%s\" finds \"%s\"", pass, q,
                         r->hits[0].memory.text);
            assert_true(r->hits[0].vector_sim > 0.6f);
            dm_search_result_free(r);
        }
        /* Model b is now the recorded one: it opens without reembed, and
         * model a is the mismatch. */
        assert_rc(dm_close(db), DM_OK);
        o.reembed = 0;
        assert_rc(dm_open(dir, &o, &db), DM_OK);
    }
    assert_rc(dm_close(db), DM_OK);
    o.model_path = model_a;
    assert_rc(dm_open(dir, &o, &db), DM_EINVAL);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reopen),
        cmocka_unit_test(test_checkpoints),
        cmocka_unit_test(test_crash_replay),
        cmocka_unit_test(test_erase_disk),
        cmocka_unit_test(test_busy),
        cmocka_unit_test(test_model_mismatch),
    };
    /* DM_TEST_FILTER / DM_TEST_SKIP: run only / skip tests matching a
     * pattern (cmocka's wildcards). */
    if (getenv("DM_TEST_FILTER"))
        cmocka_set_test_filter(getenv("DM_TEST_FILTER"));
    if (getenv("DM_TEST_SKIP"))
        cmocka_set_skip_filter(getenv("DM_TEST_SKIP"));
    struct timespec a;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    print_message("test_persist: %.2f s\n", elapsed(&a));
    return rc;
}
