/*
 * test_kv_model.c -- randomized test against an in-memory model.
 *
 * Random puts, deletes, batches, snapshots, flushes, range compactions and
 * reopens, many seeds; after every step the engine must agree with the
 * model: point gets (latest and at every live snapshot) and full or partial
 * iteration in both directions.  DM_MODEL_SEEDS / DM_MODEL_OPS scale it.
 */
// ctest-timeout: 600
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/kv.h"

#define NKEYS 300
#define MAXSNAP 4

typedef struct model {
    char *v[NKEYS]; /* NULL = absent */
} model;

/* where we are, for failure messages */
static uint64_t cur_seed;
static int cur_op;
static const char *cur_what = "";

static void model_copy(model *dst, const model *src)
{
    for (int i = 0; i < NKEYS; i++)
        dst->v[i] = src->v[i] ? strdup(src->v[i]) : NULL;
}

static void model_free(model *m)
{
    for (int i = 0; i < NKEYS; i++) {
        free(m->v[i]);
        m->v[i] = NULL;
    }
}

static void key_of(char *k, int i)
{
    snprintf(k, 16, "k%04d", i);
}

static void value_of(tu_rng *r, char *v, size_t cap)
{
    size_t n = (size_t)tu_randn(r, 8) == 0 ? tu_randn(r, cap - 1) : tu_randn(r, 40);
    for (size_t i = 0; i < n; i++)
        v[i] = (char)('a' + tu_randn(r, 26));
    v[n] = 0;
}

static void check_get(kv_db *db, const kv_snapshot *s, const model *m, int i)
{
    char k[16];
    key_of(k, i);
    buf out;
    buf_init(&out);
    int rc = kv_get(db, s, buf_slice_of(k, strlen(k)), &out);
    if (m->v[i]) {
        if (rc != DM_OK || out.len != strlen(m->v[i]) ||
            (out.len && memcmp(out.ptr, m->v[i], out.len)))
            fail_msg("seed %llu op %d (%s): get %s%s: rc %d, got %zu bytes '%.20s', "
                     "want %zu bytes '%.20s'", (unsigned long long)cur_seed, cur_op,
                     cur_what, k, s ? " at a snapshot" : "", rc, out.len,
                     out.len ? (const char *)out.ptr : "", strlen(m->v[i]), m->v[i]);
    } else if (rc != DM_ENOTFOUND) {
        fail_msg("seed %llu op %d (%s): get %s%s: rc %d, want not found",
                 (unsigned long long)cur_seed, cur_op, cur_what, k,
                 s ? " at a snapshot" : "", rc);
    }
    buf_fini(&out);
}

/* expect_entry -- the iterator sits on key i of the model with its value;
 * want receives the key's text. */
static void expect_entry(iter *it, const model *m, int i, char *want)
{
    key_of(want, i);
    buf_slice key = iter_key(it), val = iter_value(it);
    assert_int_equal(key.len, strlen(want));
    assert_memory_equal(key.ptr, want, key.len);
    assert_int_equal(val.len, strlen(m->v[i]));
    if (val.len)
        assert_memory_equal(val.ptr, m->v[i], val.len);
}

static void check_iter(kv_db *db, const kv_snapshot *s, const model *m, tu_rng *r)
{
    iter *it;
    assert_int_equal(kv_iter_new(db, s, &it), DM_OK);
    bool is_reverse = tu_randn(r, 2);
    int start = (int)tu_randn(r, NKEYS);
    char k[16];
    key_of(k, start);
    if (is_reverse) {
        /* seek to start, then walk backwards from the entry before it */
        iter_seek(it, buf_slice_of(k, strlen(k)));
        if (iter_valid(it))
            iter_prev(it);
        else
            iter_seek_last(it);
        int i = start - 1;
        for (; iter_valid(it); iter_prev(it)) {
            while (i >= 0 && !m->v[i])
                i--;
            assert_true(i >= 0);
            char want[16];
            expect_entry(it, m, i, want);
            i--;
            /* occasionally turn around and back */
            if (tu_randn(r, 16) == 0) {
                iter_next(it);
                assert_true(iter_valid(it));
                iter_prev(it);
                assert_true(iter_valid(it));
                assert_memory_equal(iter_key(it).ptr, want, strlen(want));
            }
        }
        while (i >= 0 && !m->v[i])
            i--;
        assert_true(i < 0);
    } else {
        iter_seek(it, buf_slice_of(k, strlen(k)));
        int i = start;
        for (; iter_valid(it); iter_next(it)) {
            while (i < NKEYS && !m->v[i])
                i++;
            assert_true(i < NKEYS);
            char want[16];
            expect_entry(it, m, i, want);
            i++;
            if (tu_randn(r, 16) == 0) {
                iter_prev(it);
                assert_true(iter_valid(it));
                iter_next(it);
                assert_true(iter_valid(it));
                assert_memory_equal(iter_key(it).ptr, want, strlen(want));
            }
        }
        while (i < NKEYS && !m->v[i])
            i++;
        assert_true(i == NKEYS);
    }
    assert_int_equal(iter_status(it), DM_OK);
    iter_free(it);
}

static void run_seed(uint64_t seed, int n_ops)
{
    tu_rng r;
    tu_rng_seed(&r, seed);
    char tag[64];
    snprintf(tag, sizeof tag, "kv_model_%llu", (unsigned long long)seed);
    const char *dir_s = tu_tmpdir(tag);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", dir_s);

    kv_options o = kv_options_default();
    o.vfs = tu_vfs_nosync(); /* logic, not durability: see test_crash_fsync */
    o.write_buffer_size = 4096 + tu_randn(&r, 16384);
    o.sync = KV_SYNC_NONE;
    o.level1_max_bytes = 16 << 10;
    o.target_file_size = 8 << 10;
    o.l0_compaction_trigger = 2 + (int)tu_randn(&r, 3);
    o.table.block_size = 256 + tu_randn(&r, 2048);
    o.table.compression = (int)tu_randn(&r, 3);
    o.disable_auto_compaction = tu_randn(&r, 4) == 0;
    kv_db *db;
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);

    model m = { { 0 } };
    model snaps[MAXSNAP];
    const kv_snapshot *snap[MAXSNAP] = { 0 };
    char k[16], v[600];
    kv_batch *b = kv_batch_new();

    cur_seed = seed;
    for (int op = 0; op < n_ops; op++) {
        int what = (int)tu_randn(&r, 100);
        cur_op = op;
        cur_what = what < 45 ? "put" : what < 60 ? "delete" : what < 70 ? "batch"
                 : what < 75 ? "snapshot" : what < 80 ? "flush" : what < 83 ? "compact"
                 : what < 86 ? "reopen" : what < 95 ? "gets" : "iterate";
        if (what < 45) {
            int i = (int)tu_randn(&r, NKEYS);
            key_of(k, i);
            value_of(&r, v, sizeof v);
            assert_int_equal(kv_put(db, NULL, buf_slice_of(k, strlen(k)),
                                    buf_slice_of(v, strlen(v))), DM_OK);
            free(m.v[i]);
            m.v[i] = strdup(v);
        } else if (what < 60) {
            int i = (int)tu_randn(&r, NKEYS);
            key_of(k, i);
            assert_int_equal(kv_delete(db, NULL, buf_slice_of(k, strlen(k))), DM_OK);
            free(m.v[i]);
            m.v[i] = NULL;
        } else if (what < 70) {
            kv_batch_clear(b);
            int n = 1 + (int)tu_randn(&r, 20);
            for (int j = 0; j < n; j++) {
                int i = (int)tu_randn(&r, NKEYS);
                key_of(k, i);
                free(m.v[i]);
                m.v[i] = NULL;
                if (tu_randn(&r, 3)) {
                    value_of(&r, v, sizeof v);
                    assert_int_equal(kv_batch_put(b, buf_slice_of(k, strlen(k)),
                                                  buf_slice_of(v, strlen(v))), DM_OK);
                    m.v[i] = strdup(v);
                } else {
                    assert_int_equal(kv_batch_delete(b, buf_slice_of(k, strlen(k))), DM_OK);
                }
            }
            assert_int_equal(kv_write(db, NULL, b), DM_OK);
        } else if (what < 75) {
            int s = (int)tu_randn(&r, MAXSNAP);
            if (snap[s]) {
                kv_snapshot_release(db, snap[s]);
                model_free(&snaps[s]);
                snap[s] = NULL;
            } else {
                snap[s] = kv_snapshot_new(db);
                model_copy(&snaps[s], &m);
            }
        } else if (what < 80) {
            assert_int_equal(kv_flush(db), DM_OK);
        } else if (what < 83) {
            int a = (int)tu_randn(&r, NKEYS), z = (int)tu_randn(&r, NKEYS);
            char ka[16], kz[16];
            key_of(ka, a < z ? a : z);
            key_of(kz, a < z ? z : a);
            buf_slice sa = buf_slice_of(ka, strlen(ka)), sz = buf_slice_of(kz, strlen(kz));
            bool is_full = tu_randn(&r, 3) == 0;
            assert_int_equal(kv_compact_range(db, is_full ? NULL : &sa,
                                              is_full ? NULL : &sz), DM_OK);
        } else if (what < 86) {
            /* reopen: snapshots do not survive it */
            for (int s = 0; s < MAXSNAP; s++)
                if (snap[s]) {
                    kv_snapshot_release(db, snap[s]);
                    model_free(&snaps[s]);
                    snap[s] = NULL;
                }
            assert_int_equal(kv_close(db), DM_OK);
            assert_int_equal(kv_open(dir, &o, &db), DM_OK);
        } else if (what < 95) {
            for (int j = 0; j < 10; j++)
                check_get(db, NULL, &m, (int)tu_randn(&r, NKEYS));
            for (int s = 0; s < MAXSNAP; s++)
                if (snap[s])
                    check_get(db, snap[s], &snaps[s], (int)tu_randn(&r, NKEYS));
        } else {
            check_iter(db, NULL, &m, &r);
            int s = (int)tu_randn(&r, MAXSNAP);
            if (snap[s])
                check_iter(db, snap[s], &snaps[s], &r);
        }
    }
    /* final full comparison */
    cur_what = "final";
    for (int i = 0; i < NKEYS; i++)
        check_get(db, NULL, &m, i);
    for (int s = 0; s < MAXSNAP; s++)
        if (snap[s]) {
            for (int i = 0; i < NKEYS; i++)
                check_get(db, snap[s], &snaps[s], i);
            kv_snapshot_release(db, snap[s]);
            model_free(&snaps[s]);
        }
    assert_int_equal(kv_close(db), DM_OK);
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    for (int i = 0; i < NKEYS; i++)
        check_get(db, NULL, &m, i);
    assert_int_equal(kv_close(db), DM_OK);
    kv_batch_free(b);
    model_free(&m);
    tu_rmrf(dir);
}

static void test_model(void **state)
{
    (void)state;
    long seeds = tu_env_int("DM_MODEL_SEEDS", 24);
    long ops = tu_env_int("DM_MODEL_OPS", 1500);
    for (long s = 1; s <= seeds; s++)
        run_seed((uint64_t)s, (int)ops);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_model) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
