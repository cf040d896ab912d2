/*
 * test_unload.c -- users' indexes leaving memory (dm_options.user_idle_s,
 * index_memory_bytes) and coming back.
 *
 * What must hold:
 *   - a user unused for user_idle_s seconds is unloaded by the background
 *     pass (dm_stats: n_loaded_users and index_bytes fall, n_unloads
 *     rises), a small user (loaded by scanning its records) and a large one
 *     (graph and checkpoints; checkpointed as it is unloaded when changes
 *     were logged since its last one, which the indexer thread's own
 *     checkpoints make a matter of timing) alike;
 *   - its next search loads it again and answers exactly as before the
 *     unload (same memories, same order, same scores), and so does a
 *     reopened database after more changes;
 *   - under index_memory_bytes, searches and adds of several users running
 *     while every pass unloads whatever it can, and, under
 *     map_memory_bytes, gives back the mapped tables' pages, lose nothing:
 *     each add is read back and found by its own text, each search sees
 *     only its user's memories (run under TSan too).
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
#define NOW_US 1800000000000000LL /* a fixed reference time: scores repeat */

static void options(dm_options *o)
{
    tm_options(o);
    o->flat_threshold = 60; /* "big" has a graph */
    o->checkpoint_ops = 32; /* and checkpoints */
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static dm_stats stats(dm_db *db)
{
    dm_stats st;
    assert_rc(dm_stats_get(db, &st), DM_OK);
    return st;
}

/* Add n memories of random topics to user, ids to id[0..n). */
static void add_n(dm_db *db, const char *user, size_t n, tu_rng *r, unsigned serial, dm_id *id)
{
    for (size_t i = 0; i < n; i++) {
        char text[TEXT_CAP];
        size_t len = tm_sentence(r, (unsigned)tu_randn(r, TM_N_TOPICS), 5, text, TEXT_CAP - 24);
        snprintf(text + len, TEXT_CAP - len, " s%u.%zu", serial, i);
        dm_add_params p;
        dm_add_params_init(&p);
        p.user_id = user;
        p.text = text;
        p.no_extract = 1;
        p.event_time_us = NOW_US - 1000000LL * (int64_t)(n - i);
        assert_rc(dm_add(db, &p, id ? &id[i] : NULL), DM_OK);
    }
}

/* The answers to a fixed set of queries, as one string. */
static char *answers(dm_db *db, const char *user)
{
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = 0;
    tu_rng r;
    tu_rng_seed(&r, 99);
    for (int q = 0; q < 12; q++) {
        char query[TEXT_CAP];
        tm_sentence(&r, (unsigned)q % TM_N_TOPICS, 3, query, sizeof query);
        dm_search_params sp;
        memset(&sp, 0, sizeof sp);
        sp.user_id = user;
        sp.query = query;
        sp.k = 8;
        sp.now_us = NOW_US;
        sp.flags = DM_NO_REFRESH;
        dm_search_result *res = NULL;
        assert_rc(dm_search(db, &sp, &res), DM_OK);
        for (size_t i = 0; i < res->n; i++) {
            char id[DM_ID_STRLEN + 1];
            dm_id_format(&res->hits[i].memory.id, id);
            len += (size_t)snprintf(out + len, cap - len, "%s %.6f %.6f %.6f|", id,
                                    (double)res->hits[i].score, (double)res->hits[i].vector_sim,
                                    (double)res->hits[i].bm25);
            assert_true(len < cap);
        }
        len += (size_t)snprintf(out + len, cap - len, "\n");
        dm_search_result_free(res);
    }
    return out;
}

/* Wait (at most 15 s) until no user is loaded. */
static void wait_unloaded(dm_db *db)
{
    for (int i = 0; i < 150 && stats(db).n_loaded_users; i++)
        sleep_ms(100);
    dm_stats st = stats(db);
    if (st.n_loaded_users || st.index_bytes)
        fail_msg("still loaded after 15 s: %llu users, %llu bytes",
                 (unsigned long long)st.n_loaded_users, (unsigned long long)st.index_bytes);
}

static void test_idle(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("unload-idle");
    dm_options o;
    options(&o);
    o.user_idle_s = 2; /* the checks of the loaded users below take less */
    dm_db *db = NULL;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    tu_rng r;
    tu_rng_seed(&r, 5);
    dm_id big[150];
    add_n(db, "small", 12, &r, 1, NULL);
    add_n(db, "big", 150, &r, 2, big);
    dm_scope bs = { NULL, "big" };
    assert_rc(dm_delete(db, &bs, &big[7]), DM_OK);
    assert_rc(dm_sync_indexes(db), DM_OK);
    char *small0 = answers(db, "small"), *big0 = answers(db, "big");
    dm_stats st = stats(db);
    assert_true(st.n_loaded_users >= 1); /* "big", just searched */
    assert_int_equal(st.n_graph_users, 1);
    assert_true(st.index_bytes > 0);

    wait_unloaded(db);
    st = stats(db);
    assert_true(st.n_unloads >= 2);
    uint64_t replayed = st.n_replayed;

    /* Loaded again by the searches, answering as before; "big" from a
     * checkpoint that covers everything (it was taken on the way out, if
     * not before), so nothing is replayed. */
    char *small1 = answers(db, "small"), *big1 = answers(db, "big");
    assert_int_equal(stats(db).n_replayed, replayed);
    assert_string_equal(small1, small0);
    assert_string_equal(big1, big0);
    assert_true(stats(db).n_loaded_users >= 1); /* "big", just searched */

    /* More changes after the reload, then out again, then a reopen: the
     * reloaded user, the twice-unloaded one and the reopened one agree. */
    add_n(db, "big", 40, &r, 3, NULL);
    assert_rc(dm_delete(db, &bs, &big[20]), DM_OK);
    add_n(db, "small", 5, &r, 4, NULL);
    assert_rc(dm_sync_indexes(db), DM_OK);
    char *small2 = answers(db, "small"), *big2 = answers(db, "big");
    wait_unloaded(db);
    char *small3 = answers(db, "small"), *big3 = answers(db, "big");
    assert_string_equal(small3, small2);
    assert_string_equal(big3, big2);
    assert_rc(dm_close(db), DM_OK);
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    char *small4 = answers(db, "small"), *big4 = answers(db, "big");
    assert_string_equal(small4, small2);
    assert_string_equal(big4, big2);
    assert_rc(dm_close(db), DM_OK);
    char *all[] = { small0, big0, small1, big1, small2, big2, small3, big3, small4, big4 };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    tu_rmrf(dir);
}

/* Without either bound nothing is unloaded. */
static void test_off(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("unload-off");
    dm_options o;
    options(&o);
    o.user_idle_s = 0;
    o.index_memory_bytes = 0;
    dm_db *db = NULL;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    tu_rng r;
    tu_rng_seed(&r, 6);
    add_n(db, "u", 10, &r, 1, NULL);
    sleep_ms(2500);
    dm_stats st = stats(db);
    assert_int_equal(st.n_loaded_users, 1);
    assert_int_equal(st.n_unloads, 0);
    assert_int_equal(st.n_map_drops, 0);
    assert_rc(dm_close(db), DM_OK);
    tu_rmrf(dir);
}

#define N_USERS 6
#define N_ADDS 60

typedef struct worker_arg {
    dm_db *db;
    unsigned seed;
    bool is_writer;
    volatile int *stop;
    char (*text)[TEXT_CAP]; /* writer: [N_USERS * N_ADDS] */
    dm_id *id;
    unsigned n_searches;
} worker_arg;

static void user_of(unsigned u, char *out, size_t cap) { snprintf(out, cap, "user%u", u); }

static void *worker(void *arg)
{
    worker_arg *a = arg;
    tu_rng r;
    tu_rng_seed(&r, a->seed);
    if (a->is_writer) {
        for (unsigned i = 0; i < N_USERS * N_ADDS; i++) {
            unsigned u = i % N_USERS;
            char user[16];
            user_of(u, user, sizeof user);
            size_t len = tm_sentence(&r, (unsigned)tu_randn(&r, TM_N_TOPICS), 5, a->text[i],
                                     TEXT_CAP - 24);
            snprintf(a->text[i] + len, TEXT_CAP - len, " %s w%u", user, i);
            dm_add_params p;
            dm_add_params_init(&p);
            p.user_id = user;
            p.text = a->text[i];
            p.no_extract = 1;
            if (dm_add(a->db, &p, &a->id[i]) != DM_OK)
                fail_msg("add %u: %s", i, dm_errmsg());
            if (i % 20 == 19)
                sleep_ms(150); /* passes (once a second) run between the adds */
        }
        return NULL;
    }
    while (!__atomic_load_n(a->stop, __ATOMIC_ACQUIRE)) {
        unsigned u = (unsigned)tu_randn(&r, N_USERS);
        char user[16], query[TEXT_CAP], tag[24];
        user_of(u, user, sizeof user);
        snprintf(tag, sizeof tag, " %s w", user);
        tm_sentence(&r, (unsigned)tu_randn(&r, TM_N_TOPICS), 3, query, sizeof query);
        dm_search_params sp;
        memset(&sp, 0, sizeof sp);
        sp.user_id = user;
        sp.query = query;
        sp.k = 5;
        dm_search_result *res = NULL;
        int rc = dm_search(a->db, &sp, &res);
        if (rc == DM_ENOTFOUND) { /* its first add is still to come */
            sleep_ms(5);
            continue;
        }
        if (rc != DM_OK)
            fail_msg("search: %s", dm_errmsg());
        for (size_t i = 0; i < res->n; i++)
            if (!res->hits[i].memory.text || !strstr(res->hits[i].memory.text, tag))
                fail_msg("a hit of another user or without text in %s's search", user);
        dm_search_result_free(res);
        a->n_searches++;
        sleep_ms(5);
    }
    return NULL;
}

static void test_budget_concurrent(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("unload-budget");
    dm_options o;
    options(&o);
    o.flat_threshold = 30;
    o.checkpoint_ops = 16;
    o.user_idle_s = 0;
    o.index_memory_bytes = 1; /* every pass unloads every user it can */
    o.map_memory_bytes = 1;   /* and gives back the tables' pages */
    o.memtable_bytes = 32 << 10; /* so that there are tables */
    dm_db *db = NULL;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    volatile int stop = 0;
    char(*text)[TEXT_CAP] = calloc(N_USERS * N_ADDS, TEXT_CAP);
    dm_id *id = calloc(N_USERS * N_ADDS, sizeof *id);
    assert_non_null(text);
    assert_non_null(id);
    worker_arg wa[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        wa[i] = (worker_arg){ db, 40u + (unsigned)i, i == 0, &stop, text, id, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, worker, &wa[i]), 0);
    }
    pthread_join(th[0], NULL); /* the writer */
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 1; i < 3; i++)
        pthread_join(th[i], NULL);
    assert_true(wa[1].n_searches + wa[2].n_searches > 0);
    dm_stats st = stats(db);
    if (st.n_unloads < 2 || st.n_map_drops < 2)
        fail_msg("only %llu unloads and %llu drops of mapped pages while the writer ran",
                 (unsigned long long)st.n_unloads, (unsigned long long)st.n_map_drops);

    /* Every add is there and found by its own text. */
    for (unsigned i = 0; i < N_USERS * N_ADDS; i++) {
        char user[16];
        user_of(i % N_USERS, user, sizeof user);
        dm_memory *m = NULL;
        dm_scope sc = { NULL, user };
        assert_rc(dm_get(db, &sc, &id[i], 0, &m), DM_OK);
        assert_string_equal(m->text, text[i]);
        dm_memory_free(m);
        if (i % 7)
            continue;
        dm_search_params sp;
        memset(&sp, 0, sizeof sp);
        sp.user_id = user;
        sp.query = text[i];
        sp.k = 5;
        sp.flags = DM_NO_REFRESH;
        dm_search_result *res = NULL;
        assert_rc(dm_search(db, &sp, &res), DM_OK);
        bool found = false;
        for (size_t h = 0; h < res->n; h++)
            found |= !memcmp(res->hits[h].memory.id.bytes, id[i].bytes, 16);
        if (!found)
            fail_msg("memory %u ('%s') not found after its user was unloaded", i, text[i]);
        dm_search_result_free(res);
    }
    assert_rc(dm_close(db), DM_OK);
    free(text);
    free(id);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle),
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_budget_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
