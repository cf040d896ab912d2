/*
 * test_indexer.c -- vectors linked into the graph in the background.
 *
 * A user past the flat threshold gets its new vectors as pending; the
 * indexer thread links them.  What must hold whatever the thread's pace:
 *   - a memory is found by the vector leg as soon as its add returns
 *     (queried with its own text, its vector similarity is 1 and it is in
 *     the vector candidates), before and after the graph catches up;
 *   - dm_sync_indexes leaves nothing pending (stats.index_pending 0);
 *   - a batch larger than the pending bound is linked partly by the writer
 *     and still found;
 *   - closing with vectors pending loses nothing: after reopen they are
 *     found, and the thread links them;
 *   - searches running while a writer adds and the thread links see only
 *     the user's memories, each with its text (run under TSan too);
 *   - erasing the user while the thread writes its checkpoints leaves,
 *     after a reopen, exactly the memories added after the last erase.
 */
// ctest-labels: concurrency
// ctest-timeout: 300
#include "testutil.h"
#include "tinymodel.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TEXT_CAP 160

typedef struct corpus {
    char (*text)[TEXT_CAP];
    dm_id *id;
    size_t n;
} corpus;

static void options(dm_options *o)
{
    tm_options(o);
    o->flat_threshold = 200;   /* a graph after 200 memories */
    o->checkpoint_ops = 128;   /* checkpoints taken by the thread */
}

/* Add n memories of random topics to user "big", in batches of batch. */
static void add_many(dm_db *db, corpus *c, size_t n, size_t batch, tu_rng *r)
{
    c->text = realloc(c->text, (c->n + n) * sizeof *c->text);
    c->id = realloc(c->id, (c->n + n) * sizeof *c->id);
    assert_non_null(c->text);
    assert_non_null(c->id);
    dm_add_params *ps = calloc(batch, sizeof *ps);
    assert_non_null(ps);
    for (size_t done = 0; done < n;) {
        size_t nb = n - done < batch ? n - done : batch;
        for (size_t i = 0; i < nb; i++) {
            size_t x = c->n + done + i;
            /* A serial number keeps every text (and vector) distinct. */
            size_t len = tm_sentence(r, (unsigned)tu_randn(r, TM_N_TOPICS), 5,
                                     c->text[x], TEXT_CAP - 16);
            snprintf(c->text[x] + len, TEXT_CAP - len, " n%zu", x);
            dm_add_params_init(&ps[i]);
            ps[i].user_id = "big";
            ps[i].text = c->text[x];
        }
        assert_rc(dm_add_batch(db, ps, nb, c->id + c->n + done), DM_OK);
        done += nb;
    }
    c->n += n;
    free(ps);
}

/* Memory x queried by its own text: in the vector candidates, similarity 1. */
static void check_found(dm_db *db, const corpus *c, size_t x)
{
    dm_search_params sp;
    memset(&sp, 0, sizeof sp);
    sp.user_id = "big";
    sp.query = c->text[x];
    sp.k = 10;
    dm_search_result *r = NULL;
    assert_rc(dm_search(db, &sp, &r), DM_OK);
    bool found = false;
    for (size_t i = 0; i < r->n; i++)
        if (!memcmp(r->hits[i].memory.id.bytes, c->id[x].bytes, 16)) {
            found = true;
            if (r->hits[i].vector_rank == 0 || r->hits[i].vector_sim < 0.999f)
                fail_msg("memory %zu: vector rank %u sim %f", x, r->hits[i].vector_rank,
                         (double)r->hits[i].vector_sim);
        }
    if (!found)
        fail_msg("memory %zu ('%s') not found", x, c->text[x]);
    dm_search_result_free(r);
}

static uint64_t pending(dm_db *db)
{
    dm_stats st;
    assert_rc(dm_stats_get(db, &st), DM_OK);
    return st.index_pending;
}

static void free_corpus(corpus *c)
{
    free(c->text);
    free(c->id);
    memset(c, 0, sizeof *c);
}

static void test_searchable_before_linked(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("ix-search");
    dm_options o;
    options(&o);
    dm_db *db = NULL;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    tu_rng r;
    tu_rng_seed(&r, 11);
    corpus c = { 0 };
    for (int round = 0; round < 6; round++) {
        size_t first = c.n;
        add_many(db, &c, 400, 400, &r);
        /* Right after the add: whatever is linked or not yet. */
        for (size_t i = 0; i < 40; i++)
            check_found(db, &c, first + tu_randn(&r, 400));
    }
    assert_rc(dm_sync_indexes(db), DM_OK);
    assert_int_equal(pending(db), 0);
    dm_stats st;
    assert_rc(dm_stats_get(db, &st), DM_OK);
    assert_int_equal(st.n_graph_users, 1);
    for (size_t i = 0; i < c.n; i += 7)
        check_found(db, &c, i);
    assert_rc(dm_close(db), DM_OK);
    free_corpus(&c);
    tu_rmrf(dir);
}

/* One batch past ENG_PENDING_MAX (4096), then close at once, reopen. */
static void test_big_batch_and_close_pending(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("ix-close");
    dm_options o;
    options(&o);
    dm_db *db = NULL;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    tu_rng r;
    tu_rng_seed(&r, 12);
    corpus c = { 0 };
    add_many(db, &c, 300, 300, &r);
    add_many(db, &c, 5000, 5000, &r);
    assert_true(pending(db) <= 4096);
    for (size_t i = 0; i < 30; i++)
        check_found(db, &c, tu_randn(&r, c.n));
    assert_rc(dm_close(db), DM_OK); /* whatever is pending stays pending */

    assert_rc(dm_open(dir, &o, &db), DM_OK);
    for (size_t i = 0; i < c.n; i += 53)
        check_found(db, &c, i);
    assert_rc(dm_sync_indexes(db), DM_OK);
    assert_int_equal(pending(db), 0);
    for (size_t i = 0; i < c.n; i += 29)
        check_found(db, &c, i);
    assert_rc(dm_close(db), DM_OK);
    free_corpus(&c);
    tu_rmrf(dir);
}

typedef struct reader_arg {
    dm_db *db;
    volatile int *stop;
    unsigned seed;
    size_t n_searches;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    tu_rng r;
    tu_rng_seed(&r, a->seed);
    char q[TEXT_CAP];
    while (!__atomic_load_n(a->stop, __ATOMIC_ACQUIRE)) {
        tm_sentence(&r, (unsigned)tu_randn(&r, TM_N_TOPICS), 3, q, sizeof q);
        dm_search_params sp;
        memset(&sp, 0, sizeof sp);
        sp.user_id = "big";
        sp.query = q;
        sp.k = 10;
        dm_search_result *res = NULL;
        int rc = dm_search(a->db, &sp, &res);
        if (rc == DM_ENOTFOUND) /* before the first add */
            continue;
        if (rc != DM_OK)
            fail_msg("search: %s %s", dm_errname(rc), dm_errmsg());
        for (size_t i = 0; i < res->n; i++)
            if (!res->hits[i].memory.text || strncmp(res->hits[i].memory.user_id, "big", 4))
                fail_msg("a hit of another user or without text");
        dm_search_result_free(res);
        a->n_searches++;
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("ix-conc");
    dm_options o;
    options(&o);
    dm_db *db = NULL;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    volatile int stop = 0;
    pthread_t th[3];
    reader_arg ra[3];
    for (int i = 0; i < 3; i++) {
        ra[i] = (reader_arg){ db, &stop, 100u + (unsigned)i, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, reader, &ra[i]), 0);
    }
    tu_rng r;
    tu_rng_seed(&r, 13);
    corpus c = { 0 };
    add_many(db, &c, 3000, 50, &r);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    assert_rc(dm_sync_indexes(db), DM_OK);
    assert_int_equal(pending(db), 0);
    for (size_t i = 0; i < c.n; i += 31)
        check_found(db, &c, i);
    assert_rc(dm_close(db), DM_OK);
    free_corpus(&c);
    tu_rmrf(dir);
}

/* Erase the user again and again while the thread checkpoints it: after
 * a reopen only the memories added after the last erase exist, each
 * found, nothing pending. */
static void test_erase_during_checkpoints(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("ix-erase");
    dm_options o;
    options(&o);
    o.checkpoint_ops = 16;
    dm_db *db = NULL;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    tu_rng r;
    tu_rng_seed(&r, 14);
    corpus c = { 0 };
    for (int round = 0; round < 12; round++) {
        free_corpus(&c);
        add_many(db, &c, 260 + 20 * (size_t)round, 20, &r);
        if (round < 11)
            assert_rc(dm_erase_user(db, NULL, "big", NULL), DM_OK);
    }
    assert_rc(dm_close(db), DM_OK);
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    dm_list_params lp;
    memset(&lp, 0, sizeof lp);
    lp.user_id = "big";
    lp.limit = 10000;
    dm_list_result *l = NULL;
    assert_rc(dm_list(db, &lp, &l), DM_OK);
    assert_int_equal(l->n, c.n);
    dm_list_result_free(l);
    for (size_t i = 0; i < c.n; i += 9)
        check_found(db, &c, i);
    assert_rc(dm_sync_indexes(db), DM_OK);
    assert_int_equal(pending(db), 0);
    assert_rc(dm_close(db), DM_OK);
    free_corpus(&c);
    tu_rmrf(dir);
}

/* An open database with nothing to do uses no CPU: the thread's timed wait
 * for the next decay pass must sleep, not spin. */
static void test_idle(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("ix-idle");
    dm_options o;
    options(&o);
    o.decay_interval_s = 3600;
    dm_db *db = NULL;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    struct timespec c0, c1, w = { 0, 400 * 1000 * 1000 };
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    nanosleep(&w, NULL);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu_ms = (double)(c1.tv_sec - c0.tv_sec) * 1e3 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e6;
    if (cpu_ms > 100)
        fail_msg("idle database used %.0f ms of CPU in 400 ms", cpu_ms);
    assert_rc(dm_close(db), DM_OK);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle),
        cmocka_unit_test(test_searchable_before_linked),
        cmocka_unit_test(test_big_batch_and_close_pending),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_erase_during_checkpoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
