/*
 * test_kv.c -- the storage engine through its API: puts, deletes, batches,
 * gets, snapshots, iterators both ways, flush, compaction, reopen, stats,
 * argument errors and the lock file.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "os/vfs.h"
#include "storage/kv.h"

static buf_slice S(const char *s)
{
    return buf_slice_of(s, strlen(s));
}

static kv_options small_opts(void)
{
    kv_options o = kv_options_default();
    o.vfs = tu_vfs_nosync(); /* logic, not durability */
    o.write_buffer_size = 64 << 10;
    o.sync = KV_SYNC_NONE;
    o.level1_max_bytes = 256 << 10;
    o.target_file_size = 64 << 10;
    return o;
}

static void expect_get(kv_db *db, const kv_snapshot *snap, const char *k,
                       const char *want)
{
    buf v;
    buf_init(&v);
    int rc = kv_get(db, snap, S(k), &v);
    if (!want) {
        assert_int_equal(rc, DM_ENOTFOUND);
    } else {
        assert_int_equal(rc, DM_OK);
        assert_int_equal(v.len, strlen(want));
        assert_memory_equal(v.ptr, want, v.len);
    }
    buf_fini(&v);
}

static void test_basic(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("kv_basic");
    kv_options o = small_opts();
    kv_db *db;
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    assert_int_equal(kv_put(db, NULL, S("a"), S("1")), DM_OK);
    assert_int_equal(kv_put(db, NULL, S("b"), S("2")), DM_OK);
    assert_int_equal(kv_put(db, NULL, S("a"), S("3")), DM_OK);
    expect_get(db, NULL, "a", "3");
    expect_get(db, NULL, "b", "2");
    expect_get(db, NULL, "c", NULL);
    assert_int_equal(kv_delete(db, NULL, S("b")), DM_OK);
    expect_get(db, NULL, "b", NULL);
    /* empty value is a value */
    assert_int_equal(kv_put(db, NULL, S("e"), S("")), DM_OK);
    expect_get(db, NULL, "e", "");
    assert_int_equal(kv_close(db), DM_OK);

    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    expect_get(db, NULL, "a", "3");
    expect_get(db, NULL, "b", NULL);
    expect_get(db, NULL, "e", "");
    kv_stats st;
    assert_int_equal(kv_stats_get(db, &st), DM_OK);
    assert_true(st.recovered_records >= 5);
    assert_int_equal(st.recovery_damaged, 0);
    assert_int_equal(kv_close(db), DM_OK);
    tu_rmrf(dir);
}

static size_t count_wals(const char *dir)
{
    char **names = NULL;
    size_t n = 0, wals = 0;
    vfs *v = vfs_posix();
    assert_int_equal(v->list(v, dir, &names, &n), DM_OK);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        wals += l > 4 && !strcmp(names[i] + l - 4, ".wal");
    }
    vfs_list_free(names, n);
    return wals;
}

/* Opening and closing without writing leaves one log, not one more per
 * open; a log that holds records is kept until they are flushed. */
static void test_reopen_no_log_pileup(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("kv_logs");
    kv_options o = small_opts();
    kv_db *db;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(kv_open(dir, &o, &db), DM_OK);
        assert_int_equal(kv_close(db), DM_OK);
    }
    assert_int_equal(count_wals(dir), 1);
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    assert_int_equal(kv_put(db, NULL, S("k"), S("v")), DM_OK);
    assert_int_equal(kv_close(db), DM_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(kv_open(dir, &o, &db), DM_OK);
        expect_get(db, NULL, "k", "v");
        assert_int_equal(kv_close(db), DM_OK);
    }
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    expect_get(db, NULL, "k", "v");
    assert_int_equal(kv_close(db), DM_OK);
    assert_true(count_wals(dir) <= 2);
    tu_rmrf(dir);
}

static void test_args(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("kv_args");
    kv_options o = small_opts();
    kv_db *db, *db2;
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    assert_int_equal(kv_put(db, NULL, buf_slice_of("", 0), S("x")), DM_EINVAL);
    static uint8_t big[KV_MAX_KEY_LEN + 1];
    assert_int_equal(kv_put(db, NULL, buf_slice_of(big, sizeof big), S("x")), DM_EINVAL);
    kv_write_options wo = { .sync = 7 };
    assert_int_equal(kv_put(db, &wo, S("k"), S("x")), DM_EINVAL);
    /* a second open of the same directory is refused */
    assert_int_equal(kv_open(dir, &o, &db2), DM_EBUSY);
    assert_null(db2);
    assert_int_equal(kv_close(db), DM_OK);
    o.create_if_missing = false;
    assert_int_equal(kv_open(tu_file_path(dir, "missing"), &o, &db2), DM_ENOTFOUND);
    o.create_if_missing = true;
    o.error_if_exists = true;
    assert_int_equal(kv_open(dir, &o, &db2), DM_EEXISTS);
    assert_int_equal(kv_close(NULL), DM_OK);
    tu_rmrf(dir);
}

static void test_batch_and_snapshot(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("kv_batch");
    kv_options o = small_opts();
    kv_db *db;
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    kv_batch *b = kv_batch_new();
    assert_non_null(b);
    assert_int_equal(kv_batch_put(b, S("x"), S("1")), DM_OK);
    assert_int_equal(kv_batch_put(b, S("y"), S("2")), DM_OK);
    assert_int_equal(kv_batch_delete(b, S("x")), DM_OK);
    assert_int_equal(kv_batch_count(b), 3);
    assert_int_equal(kv_write(db, NULL, b), DM_OK);
    expect_get(db, NULL, "x", NULL); /* later entry in a batch wins */
    expect_get(db, NULL, "y", "2");

    const kv_snapshot *snap = kv_snapshot_new(db);
    assert_non_null(snap);
    assert_int_equal(kv_put(db, NULL, S("y"), S("3")), DM_OK);
    assert_int_equal(kv_delete(db, NULL, S("y")), DM_OK);
    expect_get(db, NULL, "y", NULL);
    expect_get(db, snap, "y", "2");
    /* the snapshot survives flush and full compaction */
    assert_int_equal(kv_compact_range(db, NULL, NULL), DM_OK);
    expect_get(db, snap, "y", "2");
    expect_get(db, NULL, "y", NULL);
    kv_snapshot_release(db, snap);
    assert_int_equal(kv_compact_range(db, NULL, NULL), DM_OK);
    expect_get(db, NULL, "y", NULL);
    kv_batch_clear(b);
    assert_int_equal(kv_batch_count(b), 0);
    assert_int_equal(kv_write(db, NULL, b), DM_OK);
    kv_batch_free(b);
    assert_int_equal(kv_close(db), DM_OK);
    tu_rmrf(dir);
}

static void expect_view(kv_view *v, const char *k, const char *want)
{
    buf b;
    buf_init(&b);
    int rc = kv_view_get(v, S(k), &b);
    if (!want) {
        assert_int_equal(rc, DM_ENOTFOUND);
    } else {
        assert_int_equal(rc, DM_OK);
        assert_int_equal(b.len, strlen(want));
        assert_memory_equal(b.ptr, want, b.len);
    }
    buf_fini(&b);
}

/* A read view sees the state of its opening, through writes, a flush and
 * a full compaction after it. */
static void test_view(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("kv_view");
    kv_options o = small_opts();
    kv_db *db;
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    assert_int_equal(kv_put(db, NULL, S("a"), S("1")), DM_OK);
    assert_int_equal(kv_put(db, NULL, S("b"), S("1")), DM_OK);
    kv_view *v = NULL;
    assert_int_equal(kv_view_open(db, &v), DM_OK);
    assert_int_equal(kv_put(db, NULL, S("a"), S("2")), DM_OK);
    assert_int_equal(kv_delete(db, NULL, S("b")), DM_OK);
    assert_int_equal(kv_put(db, NULL, S("c"), S("3")), DM_OK);
    expect_view(v, "a", "1");
    expect_view(v, "b", "1");
    expect_view(v, "c", NULL);
    expect_get(db, NULL, "a", "2");
    expect_get(db, NULL, "b", NULL);
    assert_int_equal(kv_compact_range(db, NULL, NULL), DM_OK);
    expect_view(v, "a", "1");
    expect_view(v, "b", "1");
    kv_view_close(v);
    /* A new view sees the new state. */
    assert_int_equal(kv_view_open(db, &v), DM_OK);
    expect_view(v, "a", "2");
    expect_view(v, "b", NULL);
    expect_view(v, "c", "3");
    buf b;
    buf_init(&b);
    assert_int_equal(kv_view_get(v, buf_slice_of("", 0), &b), DM_EINVAL);
    buf_fini(&b);
    kv_view_close(v);
    kv_view_close(NULL);
    assert_int_equal(kv_close(db), DM_OK);
    tu_rmrf(dir);
}

static void key_of(char *out, int i)
{
    snprintf(out, 32, "key%06d", i);
}

static void test_iterators(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("kv_iter");
    kv_options o = small_opts();
    kv_db *db;
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    enum { N = 3000 };
    char k[32], v[160];
    for (int i = 0; i < N; i++) {
        key_of(k, i);
        snprintf(v, sizeof v, "value-%d-%0100d", i, 0);
        assert_int_equal(kv_put(db, NULL, S(k), S(v)), DM_OK);
        if (i == N / 3)
            assert_int_equal(kv_flush(db), DM_OK);
    }
    for (int i = 0; i < N; i += 3) { /* every third deleted */
        key_of(k, i);
        assert_int_equal(kv_delete(db, NULL, S(k)), DM_OK);
    }
    iter *it;
    assert_int_equal(kv_iter_new(db, NULL, &it), DM_OK);
    int count = 0, prev = -1;
    for (iter_seek_first(it); iter_valid(it); iter_next(it)) {
        buf_slice key = iter_key(it);
        int i = atoi((const char *)key.ptr + 3);
        assert_true(i % 3 != 0);
        assert_true(i > prev);
        prev = i;
        count++;
    }
    assert_int_equal(iter_status(it), DM_OK);
    assert_int_equal(count, N - (N + 2) / 3);
    /* reverse */
    count = 0;
    prev = N;
    for (iter_seek_last(it); iter_valid(it); iter_prev(it)) {
        int i = atoi((const char *)iter_key(it).ptr + 3);
        assert_true(i < prev);
        snprintf(v, sizeof v, "value-%d-%0100d", i, 0);
        assert_int_equal(iter_value(it).len, strlen(v));
        assert_memory_equal(iter_value(it).ptr, v, strlen(v));
        prev = i;
        count++;
    }
    assert_int_equal(count, N - (N + 2) / 3);
    /* seek, then change direction */
    key_of(k, 1500); /* deleted: lands on 1501 */
    iter_seek(it, S(k));
    assert_true(iter_valid(it));
    assert_int_equal(atoi((const char *)iter_key(it).ptr + 3), 1501);
    iter_prev(it);
    assert_int_equal(atoi((const char *)iter_key(it).ptr + 3), 1499);
    iter_next(it);
    assert_int_equal(atoi((const char *)iter_key(it).ptr + 3), 1501);
    iter_next(it);
    assert_int_equal(atoi((const char *)iter_key(it).ptr + 3), 1502);
    iter_free(it);

    /* the same after compaction and reopen */
    assert_int_equal(kv_compact_range(db, NULL, NULL), DM_OK);
    assert_int_equal(kv_close(db), DM_OK);
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    assert_int_equal(kv_iter_new(db, NULL, &it), DM_OK);
    count = 0;
    for (iter_seek_last(it); iter_valid(it); iter_prev(it))
        count++;
    assert_int_equal(count, N - (N + 2) / 3);
    iter_free(it);
    kv_stats st;
    assert_int_equal(kv_stats_get(db, &st), DM_OK);
    assert_int_equal(st.levels[0].files, 0);
    assert_int_equal(kv_close(db), DM_OK);
    tu_rmrf(dir);
}

/* Erased data leaves the disk: after deleting every key and compacting, no
 * table holds it any more. */
static void test_delete_reclaims(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("kv_reclaim");
    kv_options o = small_opts();
    kv_db *db;
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    char k[32], v[300];
    tu_rng r;
    tu_rng_seed(&r, 5);
    for (int i = 0; i < 5000; i++) {
        key_of(k, i);
        for (size_t j = 0; j < sizeof v - 1; j++) /* incompressible enough */
            v[j] = (char)('!' + tu_randn(&r, 90));
        v[sizeof v - 1] = 0;
        assert_int_equal(kv_put(db, NULL, S(k), S(v)), DM_OK);
    }
    assert_int_equal(kv_compact_range(db, NULL, NULL), DM_OK);
    kv_stats st;
    assert_int_equal(kv_stats_get(db, &st), DM_OK);
    uint64_t before = 0;
    for (int l = 0; l < KV_MAX_LEVELS; l++)
        before += st.levels[l].bytes;
    assert_true(before > 100000);
    for (int i = 0; i < 5000; i++) {
        key_of(k, i);
        assert_int_equal(kv_delete(db, NULL, S(k)), DM_OK);
    }
    assert_int_equal(kv_compact_range(db, NULL, NULL), DM_OK);
    assert_int_equal(kv_stats_get(db, &st), DM_OK);
    uint64_t after = 0;
    for (int l = 0; l < KV_MAX_LEVELS; l++)
        after += st.levels[l].bytes;
    assert_int_equal(after, 0);
    assert_true(st.n_compactions > 0);
    assert_true(st.write_amplification > 1.0);
    assert_int_equal(kv_close(db), DM_OK);
    tu_rmrf(dir);
}

/* Whether dir holds every (all = true) or any (all = false) of names. */
static bool has_files(const char *dir, char **want, size_t n_want, bool all)
{
    char **names = NULL;
    size_t n = 0, found = 0;
    vfs *v = vfs_posix();
    assert_int_equal(v->list(v, dir, &names, &n), DM_OK);
    for (size_t i = 0; i < n_want; i++)
        for (size_t j = 0; j < n; j++)
            if (!strcmp(want[i], names[j])) {
                found++;
                break;
            }
    vfs_list_free(names, n);
    return all ? found == n_want : found > 0;
}

/* A table replaced by a compaction stays on disk while an iterator still
 * reads it, and is deleted soon after the iterator lets go: by the
 * background threads, not by the thread that dropped the last reference. */
static void test_obsolete_tables_reaped(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("kv_reap");
    kv_options o = small_opts();
    kv_db *db;
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    char k[32], v[200];
    for (int i = 0; i < 2000; i++) {
        key_of(k, i);
        snprintf(v, sizeof v, "first value %d %0150d", i, i);
        assert_int_equal(kv_put(db, NULL, S(k), S(v)), DM_OK);
    }
    assert_int_equal(kv_compact_range(db, NULL, NULL), DM_OK);
    char **names = NULL, *old[64];
    size_t n = 0, n_old = 0;
    vfs *fs = vfs_posix();
    assert_int_equal(fs->list(fs, dir, &names, &n), DM_OK);
    for (size_t i = 0; i < n && n_old < 64; i++) {
        size_t l = strlen(names[i]);
        if (l > 4 && !strcmp(names[i] + l - 4, ".sst"))
            old[n_old++] = names[i];
    }
    assert_true(n_old > 0);

    iter *it;
    assert_int_equal(kv_iter_new(db, NULL, &it), DM_OK);
    iter_seek_first(it);
    assert_true(iter_valid(it));
    for (int i = 0; i < 2000; i++) {
        key_of(k, i);
        snprintf(v, sizeof v, "second value %d %0150d", i, i);
        assert_int_equal(kv_put(db, NULL, S(k), S(v)), DM_OK);
    }
    assert_int_equal(kv_compact_range(db, NULL, NULL), DM_OK);
    assert_true(has_files(dir, old, n_old, true)); /* still read */
    assert_true(iter_valid(it));
    iter_free(it);
    bool gone = false;
    for (int i = 0; i < 50 && !gone; i++) {
        gone = !has_files(dir, old, n_old, false);
        if (!gone)
            usleep(100 * 1000);
    }
    assert_true(gone);
    vfs_list_free(names, n);
    snprintf(v, sizeof v, "second value %d %0150d", 7, 7);
    expect_get(db, NULL, "key000007", v);
    assert_int_equal(kv_close(db), DM_OK);
    tu_rmrf(dir);
}

/* Block reads are counted: the first get of a compressed block reads it
 * from its table, a second get of the same key finds it in the block
 * cache.  (Blocks that compression would not shrink are read in place
 * from the mapped table and never enter the cache.) */
static void test_block_cache_counts(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("kv_cache_counts");
    kv_options o = small_opts();
    kv_db *db;
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    char k[32], v[300];
    memset(v, 'a', sizeof v - 1); /* compresses well */
    v[sizeof v - 1] = 0;
    for (int i = 0; i < 2000; i++) {
        key_of(k, i);
        assert_int_equal(kv_put(db, NULL, S(k), S(v)), DM_OK);
    }
    assert_int_equal(kv_compact_range(db, NULL, NULL), DM_OK);
    kv_stats st0, st1, st2;
    assert_int_equal(kv_stats_get(db, &st0), DM_OK);
    buf val;
    buf_init(&val);
    key_of(k, 1717);
    assert_int_equal(kv_get(db, NULL, S(k), &val), DM_OK);
    assert_int_equal(val.len, sizeof v - 1);
    assert_int_equal(kv_stats_get(db, &st1), DM_OK);
    assert_int_equal(st1.cache_misses, st0.cache_misses + 1);
    assert_true(st1.cache_bytes > st0.cache_bytes);
    assert_int_equal(kv_get(db, NULL, S(k), &val), DM_OK);
    assert_int_equal(kv_stats_get(db, &st2), DM_OK);
    assert_int_equal(st2.cache_misses, st1.cache_misses);
    assert_int_equal(st2.cache_hits, st1.cache_hits + 1);
    buf_fini(&val);
    assert_int_equal(kv_close(db), DM_OK);
    tu_rmrf(dir);
}

/* kv_drop_table_pages gives back the tables' mapped pages, all of them or
 * the oldest; reads go on and answer as before. */
static void test_drop_table_pages(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("kv_drop_pages");
    kv_options o = small_opts();
    kv_db *db;
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    char k[32], v[64];
    for (int i = 0; i < 3000; i++) {
        key_of(k, i);
        snprintf(v, sizeof v, "value %d", i * 7);
        assert_int_equal(kv_put(db, NULL, S(k), S(v)), DM_OK);
    }
    assert_int_equal(kv_flush(db), DM_OK);
    kv_stats st;
    for (int round = 1; round <= 2; round++) {
        kv_tick_page_clock(db);
        assert_int_equal(kv_drop_table_pages(db, round == 1 ? UINT64_MAX : 1), DM_OK);
        assert_int_equal(kv_stats_get(db, &st), DM_OK);
        assert_int_equal(st.n_page_drops, (uint64_t)round);
        for (int i = 0; i < 3000; i += 7) {
            key_of(k, i);
            snprintf(v, sizeof v, "value %d", i * 7);
            expect_get(db, NULL, k, v);
        }
    }
    uint64_t files = 0;
    for (int l = 0; l < KV_MAX_LEVELS; l++)
        files += st.levels[l].files;
    assert_true(files > 0);
    assert_int_equal(kv_close(db), DM_OK);
    tu_rmrf(dir);
}

static void test_many_flushes_background(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("kv_bg");
    kv_options o = small_opts();
    o.write_buffer_size = 32 << 10;
    kv_db *db;
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    char k[32], v[200];
    enum { N = 20000 };
    for (int i = 0; i < N; i++) {
        key_of(k, (i * 7919) % N);
        snprintf(v, sizeof v, "%d-%0150d", (i * 7919) % N, i);
        assert_int_equal(kv_put(db, NULL, S(k), S(v)), DM_OK);
    }
    kv_stats st;
    assert_int_equal(kv_stats_get(db, &st), DM_OK);
    assert_true(st.n_flushes > 10);
    for (int i = 0; i < N; i += 97) {
        key_of(k, i);
        buf val;
        buf_init(&val);
        assert_int_equal(kv_get(db, NULL, S(k), &val), DM_OK);
        assert_int_equal(atoi((const char *)val.ptr), i);
        buf_fini(&val);
    }
    assert_int_equal(kv_close(db), DM_OK);
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    iter *it;
    assert_int_equal(kv_iter_new(db, NULL, &it), DM_OK);
    int count = 0;
    for (iter_seek_first(it); iter_valid(it); iter_next(it))
        count++;
    assert_int_equal(count, N);
    iter_free(it);
    assert_int_equal(kv_close(db), DM_OK);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_reopen_no_log_pileup),
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_batch_and_snapshot),
        cmocka_unit_test(test_view),
        cmocka_unit_test(test_iterators),
        cmocka_unit_test(test_delete_reclaims),
        cmocka_unit_test(test_obsolete_tables_reaped),
        cmocka_unit_test(test_block_cache_counts),
        cmocka_unit_test(test_drop_table_pages),
        cmocka_unit_test(test_many_flushes_background),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
