/*
 * test_io_errors.c -- system-call failures reach the caller and never
 * lose acknowledged data.
 *
 * For each kind of call (open, append, sync, sync_dir, rename, truncate),
 * each error (EIO, ENOSPC) and many positions k: run the workload with the
 * k-th such call failing.  Checked:
 *   - the failing write (or a later one, when the failure hit background
 *     work) returns an error, and it is DM_EIO or DM_ENOSPC;
 *   - after the first failed write the engine refuses every further write
 *     with an error (a failed fsync is never retried), while reads go on;
 *   - after reopening on a healthy file system the database holds every
 *     acknowledged write, the write that failed all-or-nothing, nothing
 *     else, and passes the offline check.
 */
// ctest-labels: fault
// ctest-timeout: 900
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"
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

static const struct {
    enum vfs_fault_op op;
    const char *name;
} kinds[] = {
    { VFS_OP_OPEN, "open" },         { VFS_OP_APPEND, "append" },
    { VFS_OP_SYNC, "sync" },         { VFS_OP_SYNC_DIR, "sync_dir" },
    { VFS_OP_RENAME, "rename" },     { VFS_OP_TRUNCATE, "truncate" },
};

static void one_case(const char *dir, const wl_op *ops, int kind, int err,
                     uint64_t k, uint64_t seed)
{
    tu_rmrf(dir);
    vfs_fault *f;
    assert_int_equal(vfs_fault_new(vfs_posix(), seed, &f), DM_OK);
    kv_options o = opts(vfs_fault_vfs(f));
    kv_db *db;
    vfs_fault_fail_nth(f, kinds[kind].op, k, err, false);
    int acked = -1;
    int rc = kv_open(dir, &o, &db);
    if (rc == DM_OK) {
        rc = wl_run(db, ops, &acked);
        if (rc) {
            if (rc != DM_EIO && rc != DM_ENOSPC)
                fail_msg("%s k=%llu: write failed with %s", kinds[kind].name,
                         (unsigned long long)k, dm_errname(rc));
            /* sticky: no write succeeds any more */
            int rc2 = kv_put(db, NULL, buf_slice_of("zz", 2), buf_slice_of("1", 1));
            if (rc2 == DM_OK)
                fail_msg("%s k=%llu: a write succeeded after a failure",
                         kinds[kind].name, (unsigned long long)k);
            /* reads still work */
            buf v;
            buf_init(&v);
            int rc3 = kv_get(db, NULL, buf_slice_of("key000", 6), &v);
            assert_true(rc3 == DM_OK || rc3 == DM_ENOTFOUND);
            buf_fini(&v);
        }
        kv_close(db);
    } else if (rc != DM_EIO && rc != DM_ENOSPC) {
        fail_msg("%s k=%llu: open failed with %s", kinds[kind].name,
                 (unsigned long long)k, dm_errname(rc));
    }
    vfs_fault_free(f);

    /* Healthy again: reopen and compare. */
    o = opts(vfs_posix());
    rc = kv_open(dir, &o, &db);
    if (rc)
        fail_msg("%s k=%llu: reopen: %s (%s)", kinds[kind].name,
                 (unsigned long long)k, dm_errname(rc), err_last_msg());
    if (!wl_matches_acked(db, ops, acked))
        fail_msg("%s k=%llu err %s: state differs after %d acknowledged ops",
                 kinds[kind].name, (unsigned long long)k, dm_errname(err), acked);
    assert_int_equal(kv_close(db), DM_OK);
    kv_check_stats cs;
    rc = kv_check(dir, NULL, on_problem, NULL, &cs);
    if (rc)
        fail_msg("%s k=%llu: check: %s", kinds[kind].name, (unsigned long long)k,
                 dm_errname(rc));
}

static void test_io_errors(void **state)
{
    (void)state;
    static wl_op ops[WL_NOPS];
    wl_make(ops, 42);
    const char *tmp = tu_tmpdir("ioerr");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/db", tmp);

    /* How many calls of each kind does a clean run make? */
    uint64_t calls[VFS_OP_COUNT_];
    vfs_fault *f;
    assert_int_equal(vfs_fault_new(vfs_posix(), 1, &f), DM_OK);
    kv_options o = opts(vfs_fault_vfs(f));
    kv_db *db;
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    int acked;
    assert_int_equal(wl_run(db, ops, &acked), DM_OK);
    assert_int_equal(kv_close(db), DM_OK);
    for (int i = 0; i < VFS_OP_COUNT_; i++)
        calls[i] = vfs_fault_calls(f, (enum vfs_fault_op)i);
    vfs_fault_free(f);

    long stride = tu_env_int("DM_IOERR_STRIDE", 7);
    for (size_t kind = 0; kind < sizeof kinds / sizeof kinds[0]; kind++) {
        uint64_t n = calls[kinds[kind].op];
        for (uint64_t k = 1; k <= n; k += (uint64_t)stride) {
            int err = (k / (uint64_t)stride) % 2 ? DM_ENOSPC : DM_EIO;
            one_case(dir, ops, (int)kind, err, k, k * 31 + kind);
        }
    }
    tu_rmrf(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_io_errors) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
