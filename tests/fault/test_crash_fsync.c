/*
 * test_crash_fsync.c -- power cut at every fsync of a workload.
 *
 * The workload (puts, batches, deletes with KV_SYNC_ALWAYS; memtables so
 * small that flushes, WAL rotations, MANIFEST commits and compactions
 * happen throughout) first runs once to count its syncs S.  Then for every
 * N in 1..S: fresh directory, crash at sync N (that sync never happens and
 * the "machine" is dead from then on), drop every byte and directory change
 * that was not durable (three tear modes: drop all, keep a random prefix,
 * keep a prefix ending in a garbage sector), reopen on a healthy file
 * system and compare with the model:
 *   - every write acknowledged before the crash is present;
 *   - the write in flight at the crash is either wholly present or wholly
 *     absent;
 *   - nothing else appears;
 *   - the offline checker finds no damage, and the database accepts writes.
 * Several seeds.  The wrapped table's real fsyncs are skipped (the fault
 * table itself decides what is durable), which keeps the test fast.
 */
// ctest-labels: crash
// ctest-timeout: 900
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os/vfs.h"
#include "os/vfs_fault.h"
#include "storage/kv.h"
#include "workload.h"

static kv_options opts(vfs *v)
{
    return wl_options(v, KV_SYNC_ALWAYS);
}

static void on_problem(void *arg, const char *file, uint64_t off, const char *reason)
{
    (void)arg;
    fprintf(stderr, "check: %s: offset %llu: %s\n", file, (unsigned long long)off, reason);
}

static void run_seed(uint64_t seed)
{
    static wl_op ops[WL_NOPS];
    wl_make(ops, seed);
    char tag[64];
    snprintf(tag, sizeof tag, "crashsync_%llu", (unsigned long long)seed);
    const char *dir_s = tu_tmpdir(tag);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/db", dir_s);

    /* Count the syncs of a clean run. */
    vfs_fault *f;
    assert_int_equal(vfs_fault_new(tu_vfs_nosync(), seed, &f), DM_OK);
    kv_options o = opts(vfs_fault_vfs(f));
    kv_db *db;
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    int acked;
    assert_int_equal(wl_run(db, ops, &acked), DM_OK);
    assert_int_equal(kv_close(db), DM_OK);
    uint64_t total = vfs_fault_syncs(f);
    vfs_fault_free(f);
    assert_true(total > WL_NOPS / 2);

    uint64_t step = (uint64_t)tu_env_int("DM_CRASH_STEP", 1);
    for (uint64_t n = 1; n <= total; n += step) {
        tu_rmrf(dir);
        assert_int_equal(vfs_fault_new(tu_vfs_nosync(), seed * 1000 + n, &f), DM_OK);
        o = opts(vfs_fault_vfs(f));
        vfs_fault_crash_at_sync(f, n);
        int rc = kv_open(dir, &o, &db);
        acked = -1; /* the open itself may be what crashed */
        if (rc == DM_OK) {
            wl_run(db, ops, &acked);
            kv_close(db);
        }
        enum vfs_tear mode = (enum vfs_tear)(n % 3);
        assert_int_equal(vfs_fault_apply_crash(f, mode), DM_OK);

        /* Reopen on the same (now healthy) table. */
        o = opts(vfs_fault_vfs(f));
        rc = kv_open(dir, &o, &db);
        if (rc)
            fail_msg("seed %llu crash at sync %llu (tear %d): reopen: %s",
                     (unsigned long long)seed, (unsigned long long)n, (int)mode,
                     dm_errname(rc));
        if (!wl_matches_acked(db, ops, acked))
            fail_msg("seed %llu crash at sync %llu (tear %d): state differs from the "
                     "model after %d acknowledged ops",
                     (unsigned long long)seed, (unsigned long long)n, (int)mode, acked);
        /* it still takes writes */
        assert_int_equal(kv_put(db, NULL, buf_slice_of("zz", 2), buf_slice_of("1", 1)), DM_OK);
        assert_int_equal(kv_close(db), DM_OK);
        kv_check_stats cs;
        rc = kv_check(dir, tu_vfs_nosync(), on_problem, NULL, &cs);
        if (rc)
            fail_msg("seed %llu crash at sync %llu: check: %s", (unsigned long long)seed,
                     (unsigned long long)n, dm_errname(rc));
        vfs_fault_free(f);
    }
    tu_rmrf(dir_s);
}

static void test_crash_every_sync(void **state)
{
    (void)state;
    long seeds = tu_env_int("DM_CRASH_SEEDS", 3);
    for (long s = 1; s <= seeds; s++)
        run_seed((uint64_t)s);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_crash_every_sync) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
