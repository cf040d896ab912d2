/*
 * test_oom.c -- the engine survives allocation failure.
 *
 * For k = 1, 2, ...: make the k-th allocation through dm_malloc (and every
 * one after it) fail, then open a database, run the shared workload, read,
 * iterate, flush and close.  Every call must either succeed or return an
 * error (DM_ENOMEM, or the sticky error a failed background job left);
 * nothing may crash, leak (ASan checks at exit, and the allocator's byte
 * count must return to where it started) or lose an acknowledged write:
 * after switching injection off, a reopen holds every acknowledged write.
 * Stops once a run completes without any injected failure.
 */
// ctest-labels: fault
// ctest-timeout: 900
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "storage/kv.h"
#include "workload.h"

static kv_options opts(void)
{
    kv_options o = wl_options(tu_vfs_nosync(), KV_SYNC_NONE);
    o.block_cache_size = 64 << 10;
    return o;
}

static bool is_allowed(int rc)
{
    return rc == DM_OK || rc == DM_ENOMEM || rc == DM_ENOTFOUND || rc == DM_EIO;
}

static void test_oom(void **state)
{
    (void)state;
    static wl_op ops[WL_NOPS];
    wl_make(ops, 7);
    const char *tmp = tu_tmpdir("oom");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/db", tmp);
    long step = tu_env_int("DM_OOM_STEP", 1);
    int64_t base = alloc_bytes_in_use();

    for (int64_t k = 1;; k += step) {
        tu_rmrf(dir);
        alloc_fail_after(k, 1);
        int64_t failed_before = alloc_failures();
        kv_options o = opts();
        kv_db *db = NULL;
        int acked = -1;
        int rc = kv_open(dir, &o, &db);
        if (!is_allowed(rc))
            fail_msg("k=%lld: open returned %s", (long long)k, dm_errname(rc));
        if (rc == DM_OK) {
            rc = wl_run(db, ops, &acked);
            if (!is_allowed(rc))
                fail_msg("k=%lld: write returned %s", (long long)k, dm_errname(rc));
            buf v;
            buf_init(&v);
            rc = kv_get(db, NULL, buf_slice_of("key001", 6), &v);
            if (!is_allowed(rc))
                fail_msg("k=%lld: get returned %s", (long long)k, dm_errname(rc));
            buf_fini(&v);
            iter *it = NULL;
            if (kv_iter_new(db, NULL, &it) == DM_OK) {
                for (iter_seek_last(it); iter_valid(it); iter_prev(it))
                    ;
                if (!is_allowed(iter_status(it)))
                    fail_msg("k=%lld: iterator status %s", (long long)k,
                             dm_errname(iter_status(it)));
                iter_free(it);
            }
            kv_flush(db);
            kv_close(db);
        }
        bool is_done = alloc_failures() == failed_before;
        alloc_fail_after(0, 0);
        if (alloc_bytes_in_use() != base)
            fail_msg("k=%lld: %lld bytes still allocated after close", (long long)k,
                     (long long)(alloc_bytes_in_use() - base));

        /* Healthy again: everything acknowledged is there. */
        o = opts();
        assert_int_equal(kv_open(dir, &o, &db), DM_OK);
        if (!wl_matches_acked(db, ops, acked))
            fail_msg("k=%lld: state differs after %d acknowledged ops", (long long)k,
                     acked);
        assert_int_equal(kv_close(db), DM_OK);
        if (is_done)
            break;
    }
    tu_rmrf(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_oom) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
