/* test_vfs_fault.c -- the fault-injecting VFS: injected errors, crashes,
 * torn writes and the namespace undo. */
// ctest-labels: concurrency
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "os/vfs.h"
#include "os/vfs_fault.h"

static char dir[2048];
static vfs_fault *F;
static vfs *V;   /* the fault table */
static vfs *PX;  /* the real one, to look at the disk behind its back */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("vfs_fault"));
    PX = vfs_posix();
    if (vfs_fault_new(PX, 42, &F) != DM_OK)
        return -1;
    V = vfs_fault_vfs(F);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    vfs_fault_free(F);
    F = NULL;
    tu_rmrf(dir);
    return 0;
}

/* "dir/name" in rotating buffers so one call can take two paths. */
static const char *P(const char *name)
{
    static char bufs[4][4200];
    static int next;
    char *b = bufs[next++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

/* Real size of a file, or -1 when missing. */
static int64_t disk_size(const char *name)
{
    uint64_t s = 0;
    int rc = PX->file_size(PX, P(name), &s);
    return rc == DM_OK ? (int64_t)s : -1;
}

/* Real content of a file; caller frees with dm_free. */
static uint8_t *disk_read(const char *name, size_t *len)
{
    uint8_t *d = NULL;
    assert_int_equal(vfs_read_all(PX, P(name), &d, len), DM_OK);
    return d;
}

static void assert_disk(const char *name, const char *content)
{
    size_t len = 0;
    uint8_t *d = disk_read(name, &len);
    assert_int_equal(len, strlen(content));
    assert_memory_equal(d, content, len);
    dm_free(d);
}

/* Writes a file through the real table, synced: durable from the start. */
static void disk_put(const char *name, const char *content)
{
    assert_int_equal(vfs_write_atomic(PX, dir, name, content, strlen(content)),
                     DM_OK);
}

static vfs_file *fopen_rw(const char *name, int extra)
{
    vfs_file *f = NULL;
    assert_int_equal(V->open(V, P(name), VFS_RDWR | VFS_CREATE | extra, &f),
                     DM_OK);
    assert_non_null(f);
    return f;
}

static void app(vfs_file *f, const char *s)
{
    assert_int_equal(V->append(V, f, s, strlen(s)), DM_OK);
}

/* Fresh directory and a fresh fault state for each test. */
static int per_test(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("vfs_fault"));
    vfs_fault_reset(F);
    return 0;
}

/* ---- pass-through and counting ----------------------------------------- */

static void test_passthrough(void **state)
{
    (void)state;
    assert_string_equal(V->name, "fault");
    vfs_file *f = fopen_rw("a", 0);
    app(f, "hello ");
    app(f, "world");
    char buf[32];
    size_t n = 0;
    assert_int_equal(V->pread(V, f, buf, sizeof buf, 0, &n), DM_OK);
    assert_int_equal(n, 11);
    assert_memory_equal(buf, "hello world", 11);
    uint64_t size = 0;
    assert_int_equal(V->size(V, f, &size), DM_OK);
    assert_int_equal(size, 11);
    assert_int_equal(V->truncate(V, f, 5), DM_OK);
    assert_int_equal(V->sync(V, f), DM_OK);
    assert_int_equal(V->close(V, f), DM_OK);
    assert_int_equal(V->sync_dir(V, dir), DM_OK);
    assert_int_equal(V->file_size(V, P("a"), &size), DM_OK);
    assert_int_equal(size, 5);

    f = (vfs_file *)&f;
    assert_int_equal(V->open(V, P("missing"), VFS_RDONLY, &f), DM_ENOTFOUND);
    assert_null(f);
    assert_int_equal(V->unlink(V, P("missing")), DM_ENOTFOUND);
    assert_int_equal(V->mkdir(V, P("sub")), DM_OK);

    char **names = NULL;
    assert_int_equal(V->list(V, dir, &names, &n), DM_OK);
    assert_int_equal(n, 2);
    vfs_list_free(names, n);

    assert_int_equal(vfs_fault_calls(F, VFS_OP_OPEN), 2);
    assert_int_equal(vfs_fault_calls(F, VFS_OP_APPEND), 2);
    assert_int_equal(vfs_fault_calls(F, VFS_OP_PREAD), 1);
    assert_int_equal(vfs_fault_calls(F, VFS_OP_TRUNCATE), 1);
    assert_int_equal(vfs_fault_calls(F, VFS_OP_SYNC), 1);
    assert_int_equal(vfs_fault_calls(F, VFS_OP_SYNC_DIR), 1);
    assert_int_equal(vfs_fault_calls(F, VFS_OP_UNLINK), 1);
    assert_int_equal(vfs_fault_calls(F, VFS_OP_MKDIR), 1);
    assert_int_equal(vfs_fault_calls(F, VFS_OP_RENAME), 0);
    assert_int_equal(vfs_fault_syncs(F), 2);
    assert_false(vfs_fault_crashed(F));

    /* mmap and the lock pass through. */
    assert_int_equal(V->open(V, P("a"), VFS_RDONLY, &f), DM_OK);
    const void *p = NULL;
    assert_int_equal(V->mmap(V, f, 5, &p), DM_OK);
    assert_memory_equal(p, "hello", 5);
    assert_int_equal(V->munmap(V, p, 5), DM_OK);
    assert_int_equal(V->close(V, f), DM_OK);
    vfs_file *l = NULL;
    assert_int_equal(V->lock(V, P("LOCK"), &l), DM_OK);
    assert_int_equal(V->unlock(V, l), DM_OK);
    assert_int_equal(V->close(V, NULL), DM_OK);
    assert_int_equal(V->unlock(V, NULL), DM_OK);

    /* vfs.h helpers work through the fault table. */
    assert_int_equal(vfs_write_atomic(V, dir, "M", "manifest", 8), DM_OK);
    uint8_t *d = NULL;
    size_t len = 0;
    assert_int_equal(vfs_read_all(V, P("M"), &d, &len), DM_OK);
    assert_int_equal(len, 8);
    dm_free(d);
}

/* ---- injected errors -------------------------------------------------- */

static void test_fail_append(void **state)
{
    (void)state;
    const int errs[2] = { DM_EIO, DM_ENOSPC };
    char big[4000];
    memset(big, 'x', sizeof big);
    for (int e = 0; e < 2; e++) {
        vfs_file *f = fopen_rw(e ? "enospc" : "eio", VFS_TRUNC);
        app(f, "abc");
        vfs_fault_fail_nth(F, VFS_OP_APPEND, 2, errs[e], false);
        app(f, "def"); /* the first from now: fine */
        /* The second fails, having written a strict prefix at most. */
        assert_int_equal(V->append(V, f, big, sizeof big), errs[e]);
        assert_non_null(V->last_op);
        assert_int_equal(V->last_errno, e ? ENOSPC : EIO);
        uint64_t size = 0;
        assert_int_equal(V->size(V, f, &size), DM_OK);
        assert_true(size >= 6 && size < 6 + sizeof big);
        /* Not persistent: the next one works. */
        assert_int_equal(V->truncate(V, f, 6), DM_OK);
        app(f, "ghi");
        assert_int_equal(V->close(V, f), DM_OK);
        assert_disk(e ? "enospc" : "eio", "abcdefghi");
    }

    /* Without partial appends a failing append writes nothing. */
    vfs_fault_partial_appends(F, false);
    vfs_file *f = fopen_rw("nopartial", 0);
    vfs_fault_fail_nth(F, VFS_OP_APPEND, 1, DM_EIO, false);
    assert_int_equal(V->append(V, f, big, sizeof big), DM_EIO);
    assert_int_equal(V->close(V, f), DM_OK);
    assert_int_equal(disk_size("nopartial"), 0);
    vfs_fault_partial_appends(F, true);

    /* Over several seeds the partial prefix varies (and is seeded). */
    int64_t sizes[8];
    bool differ = false;
    for (int s = 0; s < 8; s++) {
        vfs_fault *g = NULL;
        assert_int_equal(vfs_fault_new(PX, (uint64_t)s, &g), DM_OK);
        vfs *gv = vfs_fault_vfs(g);
        vfs_file *h = NULL;
        assert_int_equal(gv->open(gv, P("seeded"),
                                  VFS_RDWR | VFS_CREATE | VFS_TRUNC, &h), DM_OK);
        vfs_fault_fail_nth(g, VFS_OP_APPEND, 1, DM_EIO, false);
        assert_int_equal(gv->append(gv, h, big, sizeof big), DM_EIO);
        assert_int_equal(gv->close(gv, h), DM_OK);
        vfs_fault_free(g);
        sizes[s] = disk_size("seeded");
        assert_true(sizes[s] >= 0 && sizes[s] < (int64_t)sizeof big);
        if (s && sizes[s] != sizes[0])
            differ = true;
    }
    assert_true(differ);
}

static void test_fail_persistent(void **state)
{
    (void)state;
    vfs_file *f = fopen_rw("p", 0);
    app(f, "a");
    vfs_fault_fail_nth(F, VFS_OP_SYNC, 2, DM_EIO, true);
    assert_int_equal(V->sync(V, f), DM_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(V->sync(V, f), DM_EIO);
    assert_int_equal(vfs_fault_calls(F, VFS_OP_SYNC), 6);
    assert_int_equal(vfs_fault_syncs(F), 1);
    /* n = 0 clears. */
    vfs_fault_fail_nth(F, VFS_OP_SYNC, 0, DM_EIO, true);
    assert_int_equal(V->sync(V, f), DM_OK);
    assert_int_equal(vfs_fault_syncs(F), 2);

    /* Persistent ENOSPC on appends, from the first call. */
    vfs_fault_fail_nth(F, VFS_OP_APPEND, 1, DM_ENOSPC, true);
    for (int i = 0; i < 3; i++)
        assert_int_equal(V->append(V, f, "zz", 2), DM_ENOSPC);
    vfs_fault_fail_nth(F, VFS_OP_APPEND, 0, 0, false);
    assert_int_equal(V->close(V, f), DM_OK);
    assert_false(vfs_fault_crashed(F));
}

/* Every other counted operation fails without effect. */
static void test_fail_other_ops(void **state)
{
    (void)state;
    disk_put("x", "xx");
    vfs_file *f = (vfs_file *)&f;
    vfs_fault_fail_nth(F, VFS_OP_OPEN, 1, DM_ENOSPC, false);
    assert_int_equal(V->open(V, P("new"), VFS_RDWR | VFS_CREATE, &f),
                     DM_ENOSPC);
    assert_null(f);
    assert_int_equal(disk_size("new"), -1);

    vfs_fault_fail_nth(F, VFS_OP_RENAME, 1, DM_EIO, false);
    assert_int_equal(V->rename(V, P("x"), P("y")), DM_EIO);
    assert_int_equal(disk_size("x"), 2);
    assert_int_equal(disk_size("y"), -1);

    vfs_fault_fail_nth(F, VFS_OP_UNLINK, 1, DM_EIO, false);
    assert_int_equal(V->unlink(V, P("x")), DM_EIO);
    assert_int_equal(disk_size("x"), 2);

    vfs_fault_fail_nth(F, VFS_OP_MKDIR, 1, DM_EIO, false);
    assert_int_equal(V->mkdir(V, P("d")), DM_EIO);
    assert_int_equal(disk_size("d"), -1);

    vfs_fault_fail_nth(F, VFS_OP_SYNC_DIR, 1, DM_EIO, false);
    assert_int_equal(V->sync_dir(V, dir), DM_EIO);
    assert_int_equal(vfs_fault_syncs(F), 0);

    f = fopen_rw("x", 0);
    vfs_fault_fail_nth(F, VFS_OP_TRUNCATE, 1, DM_EIO, false);
    assert_int_equal(V->truncate(V, f, 0), DM_EIO);
    assert_int_equal(disk_size("x"), 2);

    char buf[4] = { 0 };
    size_t n = 99;
    vfs_fault_fail_nth(F, VFS_OP_PREAD, 2, DM_EIO, false);
    assert_int_equal(V->pread(V, f, buf, 2, 0, &n), DM_OK);
    assert_int_equal(V->pread(V, f, buf, 2, 0, &n), DM_EIO);
    assert_int_equal(n, 0);
    assert_int_equal(V->pread(V, f, buf, 2, 0, &n), DM_OK);
    assert_int_equal(n, 2);
    assert_int_equal(V->close(V, f), DM_OK);
    assert_false(vfs_fault_crashed(F));
}

/* ---- crash -------------------------------------------------------------- */

static void test_crash_at_sync(void **state)
{
    (void)state;
    vfs_file *f = fopen_rw("w", 0);
    assert_int_equal(V->sync_dir(V, dir), DM_OK); /* creation durable */
    vfs_fault_crash_at_sync(F, 3);
    app(f, "AAAA");
    assert_int_equal(V->sync(V, f), DM_OK); /* sync 1 */
    app(f, "BBBB");
    assert_int_equal(V->sync(V, f), DM_OK); /* sync 2 */
    app(f, "CCCC");
    assert_false(vfs_fault_crashed(F));
    assert_int_equal(V->sync(V, f), DM_EIO); /* sync 3: power lost */
    assert_true(vfs_fault_crashed(F));
    assert_int_equal(vfs_fault_syncs(F), 3); /* sync_dir + two syncs */

    /* Everything fails now except releasing resources. */
    char buf[16];
    size_t n;
    uint64_t size;
    char **names;
    vfs_file *g = (vfs_file *)&g;
    assert_int_equal(V->append(V, f, "D", 1), DM_EIO);
    assert_int_equal(V->pread(V, f, buf, 4, 0, &n), DM_EIO);
    assert_int_equal(V->size(V, f, &size), DM_EIO);
    assert_int_equal(V->sync(V, f), DM_EIO);
    assert_int_equal(V->truncate(V, f, 0), DM_EIO);
    const void *p = &p;
    assert_int_equal(V->mmap(V, f, 4, &p), DM_EIO);
    assert_null(p);
    assert_int_equal(V->open(V, P("w"), VFS_RDONLY, &g), DM_EIO);
    assert_null(g);
    assert_int_equal(V->lock(V, P("LOCK"), &g), DM_EIO);
    assert_int_equal(V->rename(V, P("w"), P("v")), DM_EIO);
    assert_int_equal(V->unlink(V, P("w")), DM_EIO);
    assert_int_equal(V->sync_dir(V, dir), DM_EIO);
    assert_int_equal(V->mkdir(V, P("d")), DM_EIO);
    assert_int_equal(V->list(V, dir, &names, &n), DM_EIO);
    assert_int_equal(V->file_size(V, P("w"), &size), DM_EIO);
    assert_int_equal(V->close(V, f), DM_OK);
    assert_int_equal(vfs_fault_syncs(F), 3);

    /* The real file still has everything until the crash is applied. */
    assert_disk("w", "AAAABBBBCCCC");
    assert_int_equal(vfs_fault_apply_crash(F, VFS_TEAR_NONE), DM_OK);
    assert_disk("w", "AAAABBBB");
    assert_false(vfs_fault_crashed(F));
    assert_int_equal(vfs_fault_syncs(F), 0);
    assert_int_equal(vfs_fault_calls(F, VFS_OP_SYNC), 0);
}

/* crash_at_sync counts sync_dir too, and n = 0 cancels. */
static void test_crash_at_sync_dir(void **state)
{
    (void)state;
    vfs_fault_crash_at_sync(F, 1);
    vfs_fault_crash_at_sync(F, 0);
    vfs_file *f = fopen_rw("c", 0);
    app(f, "synced");
    assert_int_equal(V->sync(V, f), DM_OK);
    assert_int_equal(V->close(V, f), DM_OK);
    vfs_fault_crash_at_sync(F, 1);
    assert_int_equal(V->sync_dir(V, dir), DM_EIO);
    assert_true(vfs_fault_crashed(F));
    /* The sync_dir did not take effect: the creation is lost. */
    assert_int_equal(vfs_fault_apply_crash(F, VFS_TEAR_NONE), DM_OK);
    assert_int_equal(disk_size("c"), -1);
}

/* Durable length is tracked by path across close and reopen. */
static void test_durable_across_reopen(void **state)
{
    (void)state;
    disk_put("old", "0123456789"); /* pre-existing: fully durable */
    vfs_file *f = fopen_rw("old", 0);
    app(f, "unsynced");
    assert_int_equal(V->close(V, f), DM_OK);

    f = fopen_rw("n", 0);
    assert_int_equal(V->sync_dir(V, dir), DM_OK);
    app(f, "one");
    assert_int_equal(V->sync(V, f), DM_OK);
    app(f, "two");
    assert_int_equal(V->close(V, f), DM_OK);
    f = fopen_rw("n", 0); /* reopen: not a creation, durable stays 3 */
    app(f, "three");
    assert_int_equal(V->close(V, f), DM_OK);
    /* A read-only handle sees it all before the crash. */
    assert_int_equal(V->open(V, P("n"), VFS_RDONLY, &f), DM_OK);
    char buf[32];
    size_t n = 0;
    assert_int_equal(V->pread(V, f, buf, sizeof buf, 0, &n), DM_OK);
    assert_int_equal(n, 11);
    assert_int_equal(V->close(V, f), DM_OK);

    /* Shrinking below the durable length lowers it. */
    disk_put("shr", "abcdefgh");
    f = fopen_rw("shr", 0);
    assert_int_equal(V->truncate(V, f, 3), DM_OK);
    app(f, "XYZ");
    assert_int_equal(V->close(V, f), DM_OK);

    /* TRUNC on open: durable 0, though the creation is old. */
    disk_put("tr", "old content");
    f = fopen_rw("tr", VFS_TRUNC);
    app(f, "new");
    assert_int_equal(V->close(V, f), DM_OK);

    vfs_fault_crash_now(F);
    assert_true(vfs_fault_crashed(F));
    assert_int_equal(vfs_fault_apply_crash(F, VFS_TEAR_NONE), DM_OK);
    assert_disk("old", "0123456789");
    assert_disk("n", "one");
    assert_disk("shr", "abc");
    assert_disk("tr", "");
}

static void test_created_removed(void **state)
{
    (void)state;
    /* Created, directory synced, data not synced: empty but present. */
    vfs_file *f = fopen_rw("empty", 0);
    assert_int_equal(V->sync_dir(V, P("")), DM_OK); /* "dir/" normalizes */
    app(f, "data");
    assert_int_equal(V->close(V, f), DM_OK);
    /* Created and synced, but the directory not synced since: gone. */
    f = fopen_rw("lost", 0);
    app(f, "data");
    assert_int_equal(V->sync(V, f), DM_OK);
    assert_int_equal(V->close(V, f), DM_OK);
    /* Created in a subdirectory whose sync does not cover the parent. */
    assert_int_equal(V->mkdir(V, P("sub")), DM_OK);
    f = fopen_rw("sub/kept", 0);
    app(f, "k");
    assert_int_equal(V->sync(V, f), DM_OK);
    assert_int_equal(V->close(V, f), DM_OK);
    f = fopen_rw("lost2", 0);
    assert_int_equal(V->close(V, f), DM_OK);
    assert_int_equal(V->sync_dir(V, P("./sub//")), DM_OK);
    /* A creation through a different spelling of the same path. */
    assert_int_equal(V->open(V, P("./sub/../sub/x"), VFS_RDWR | VFS_CREATE, &f),
                     DM_OK);
    assert_int_equal(V->close(V, f), DM_OK);

    assert_int_equal(vfs_fault_apply_crash(F, VFS_TEAR_NONE), DM_OK);
    assert_int_equal(disk_size("lost"), -1);
    assert_int_equal(disk_size("lost2"), -1);
    assert_int_equal(disk_size("empty"), 0);
    assert_disk("sub/kept", "k");
    /* ".." is not resolved: its directory "dir/sub/../sub" was never
     * synced, so the creation is undone. */
    assert_int_equal(disk_size("sub/x"), -1);
}

/* The vfs_write_atomic sequence without its final sync_dir. */
static void commit_without_dir_sync(const char *name, const char *content)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    vfs_file *f = fopen_rw(tmp, VFS_TRUNC);
    app(f, content);
    assert_int_equal(V->sync(V, f), DM_OK);
    assert_int_equal(V->close(V, f), DM_OK);
    assert_int_equal(V->rename(V, P(tmp), P(name)), DM_OK);
}

static void test_rename_undo(void **state)
{
    (void)state;
    /* Made durable by the sync_dir that follows it: kept. */
    vfs_file *f = fopen_rw("u", 0);
    app(f, "unsynced");
    assert_int_equal(V->close(V, f), DM_OK);
    assert_int_equal(V->sync_dir(V, dir), DM_OK);
    assert_int_equal(V->rename(V, P("u"), P("u2")), DM_OK);
    assert_int_equal(V->sync_dir(V, dir), DM_OK);

    /* From here on nothing is dir-synced. */
    disk_put("MANIFEST", "old");
    commit_without_dir_sync("MANIFEST", "new");
    assert_disk("MANIFEST", "new");
    assert_int_equal(disk_size("MANIFEST.tmp"), -1);
    /* Rename to a name that did not exist; the source was durable. */
    disk_put("src", "payload");
    assert_int_equal(V->rename(V, P("src"), P("dst")), DM_OK);
    /* A commit with no previous target. */
    commit_without_dir_sync("CURRENT", "c1");

    assert_int_equal(vfs_fault_apply_crash(F, VFS_TEAR_NONE), DM_OK);
    assert_disk("MANIFEST", "old");
    assert_int_equal(disk_size("MANIFEST.tmp"), -1);
    assert_int_equal(disk_size("CURRENT"), -1);
    assert_int_equal(disk_size("CURRENT.tmp"), -1);
    assert_disk("src", "payload");
    assert_int_equal(disk_size("dst"), -1);
    assert_disk("u2", ""); /* rename kept; its unsynced data lost */
    assert_int_equal(disk_size("u"), -1);
}

static void test_rename_kept_with_dir_sync(void **state)
{
    (void)state;
    disk_put("MANIFEST", "old");
    assert_int_equal(vfs_write_atomic(V, dir, "MANIFEST", "new", 3), DM_OK);
    assert_int_equal(vfs_fault_apply_crash(F, VFS_TEAR_NONE), DM_OK);
    assert_disk("MANIFEST", "new");
    assert_int_equal(disk_size("MANIFEST.tmp"), -1);

    /* Rename across directories needs both synced. */
    assert_int_equal(V->mkdir(V, P("a")), DM_OK);
    assert_int_equal(V->mkdir(V, P("b")), DM_OK);
    disk_put("a/f", "F");
    disk_put("a/g", "G");
    assert_int_equal(V->rename(V, P("a/f"), P("b/f")), DM_OK);
    assert_int_equal(V->rename(V, P("a/g"), P("b/g")), DM_OK);
    assert_int_equal(V->sync_dir(V, P("b")), DM_OK);
    assert_int_equal(V->sync_dir(V, P("a")), DM_OK);
    assert_int_equal(V->rename(V, P("b/f"), P("a/f")), DM_OK);
    assert_int_equal(V->sync_dir(V, P("a")), DM_OK); /* b not synced */
    assert_int_equal(vfs_fault_apply_crash(F, VFS_TEAR_NONE), DM_OK);
    assert_disk("b/f", "F");
    assert_int_equal(disk_size("a/f"), -1);
    assert_disk("b/g", "G");
}

static void test_unlink_undo(void **state)
{
    (void)state;
    disk_put("keep", "survives");
    disk_put("gone", "really gone");
    vfs_file *f = fopen_rw("part", 0);
    assert_int_equal(V->sync_dir(V, dir), DM_OK);
    app(f, "durable|");
    assert_int_equal(V->sync(V, f), DM_OK);
    app(f, "not");
    assert_int_equal(V->close(V, f), DM_OK);

    assert_int_equal(V->unlink(V, P("gone")), DM_OK);
    assert_int_equal(V->sync_dir(V, dir), DM_OK);
    assert_int_equal(V->unlink(V, P("keep")), DM_OK);
    assert_int_equal(V->unlink(V, P("part")), DM_OK);
    /* Created and unlinked without a sync_dir: nothing comes back. */
    f = fopen_rw("tmp", 0);
    app(f, "t");
    assert_int_equal(V->sync(V, f), DM_OK);
    assert_int_equal(V->close(V, f), DM_OK);
    assert_int_equal(V->unlink(V, P("tmp")), DM_OK);

    assert_int_equal(vfs_fault_apply_crash(F, VFS_TEAR_NONE), DM_OK);
    assert_int_equal(disk_size("gone"), -1);
    assert_disk("keep", "survives");
    assert_disk("part", "durable|");
    assert_int_equal(disk_size("tmp"), -1);
}

/* ---- tear modes --------------------------------------------------------- */

/* A fixed scenario; returns the content of "t" after the crash. */
static uint8_t *tear_run(uint64_t seed, enum vfs_tear mode, size_t *len,
                         uint8_t *written, size_t *written_len,
                         size_t *durable)
{
    vfs_fault *g = NULL;
    assert_int_equal(vfs_fault_new(PX, seed, &g), DM_OK);
    vfs *gv = vfs_fault_vfs(g);
    vfs_file *f = NULL;
    uint8_t chunk[3000];
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (uint8_t)(i % 251);
    assert_int_equal(gv->open(gv, P("t"), VFS_RDWR | VFS_CREATE | VFS_TRUNC,
                              &f), DM_OK);
    assert_int_equal(gv->sync_dir(gv, dir), DM_OK);
    assert_int_equal(gv->append(gv, f, chunk, 1000), DM_OK);
    assert_int_equal(gv->sync(gv, f), DM_OK);
    assert_int_equal(gv->append(gv, f, chunk + 1000, 2000), DM_OK);
    assert_int_equal(gv->close(gv, f), DM_OK);
    memcpy(written, chunk, sizeof chunk);
    *written_len = sizeof chunk;
    *durable = 1000;
    assert_int_equal(vfs_fault_apply_crash(g, mode), DM_OK);
    vfs_fault_free(g);
    return disk_read("t", len);
}

static void test_tear_modes(void **state)
{
    (void)state;
    uint8_t w[3000];
    size_t wl = 0, dur = 0;
    for (int m = VFS_TEAR_NONE; m <= VFS_TEAR_GARBAGE; m++) {
        bool len_differs = false, has_garbage = false;
        size_t first_len = 0;
        for (uint64_t seed = 1; seed <= 12; seed++) {
            size_t l1 = 0, l2 = 0;
            uint8_t *a = tear_run(seed, (enum vfs_tear)m, &l1, w, &wl, &dur);
            uint8_t *b = tear_run(seed, (enum vfs_tear)m, &l2, w, &wl, &dur);
            /* Deterministic for a seed. */
            assert_int_equal(l1, l2);
            assert_memory_equal(a, b, l1);
            /* Durable bytes always survive intact. */
            assert_true(l1 >= dur && l1 <= wl);
            assert_memory_equal(a, w, dur);
            if (m == VFS_TEAR_NONE)
                assert_int_equal(l1, dur);
            if (m == VFS_TEAR_PREFIX)
                assert_memory_equal(a, w, l1);
            if (m == VFS_TEAR_GARBAGE) {
                /* Only the last <= 512 bytes may differ. */
                size_t g = l1 - dur < 512 ? l1 - dur : 512;
                assert_memory_equal(a, w, l1 - g);
                if (g && memcmp(a + l1 - g, w + l1 - g, g) != 0)
                    has_garbage = true;
            }
            if (seed == 1)
                first_len = l1;
            else if (l1 != first_len)
                len_differs = true;
            dm_free(a);
            dm_free(b);
        }
        if (m != VFS_TEAR_NONE)
            assert_true(len_differs);
        if (m == VFS_TEAR_GARBAGE)
            assert_true(has_garbage);
    }
}

/* In the tear modes a random leading run of pending namespace changes
 * survives; every outcome is one a real file system could leave. */
static void test_tear_namespace(void **state)
{
    (void)state;
    int seen_old = 0, seen_new = 0;
    for (uint64_t seed = 1; seed <= 16; seed++) {
        snprintf(dir, sizeof dir, "%s", tu_tmpdir("vfs_fault"));
        disk_put("MANIFEST", "old");
        vfs_fault *g = NULL;
        assert_int_equal(vfs_fault_new(PX, seed, &g), DM_OK);
        vfs *save = V;
        V = vfs_fault_vfs(g);
        commit_without_dir_sync("MANIFEST", "new");
        assert_int_equal(vfs_fault_apply_crash(g, VFS_TEAR_PREFIX), DM_OK);
        V = save;
        vfs_fault_free(g);
        size_t len = 0;
        uint8_t *d = disk_read("MANIFEST", &len);
        assert_int_equal(len, 3);
        if (!memcmp(d, "old", 3)) {
            seen_old++;
        } else {
            assert_memory_equal(d, "new", 3);
            seen_new++;
            assert_int_equal(disk_size("MANIFEST.tmp"), -1);
        }
        dm_free(d);
        /* MANIFEST.tmp may survive (creation kept, rename lost), but then
         * with its synced content. */
        int64_t ts = disk_size("MANIFEST.tmp");
        if (ts >= 0)
            assert_disk("MANIFEST.tmp", "new");
    }
    assert_true(seen_old > 0 && seen_new > 0);
}

/* ---- reuse and reset ------------------------------------------------- */

static void test_apply_crash_then_reuse(void **state)
{
    (void)state;
    vfs_file *f = fopen_rw("r", 0);
    assert_int_equal(V->sync_dir(V, dir), DM_OK);
    app(f, "first|");
    assert_int_equal(V->sync(V, f), DM_OK);
    app(f, "lost");
    vfs_fault_fail_nth(F, VFS_OP_OPEN, 3, DM_EIO, false);
    /* f is abandoned: apply the crash while it is still open. */
    assert_int_equal(vfs_fault_apply_crash(F, VFS_TEAR_NONE), DM_OK);
    assert_disk("r", "first|");
    /* The abandoned handle belongs to the dead machine. */
    assert_int_equal(V->append(V, f, "zombie", 6), DM_EIO);
    assert_int_equal(V->sync(V, f), DM_EIO);
    assert_int_equal(V->close(V, f), DM_OK);
    assert_disk("r", "first|");

    /* Counters and injections were reset; the directory is all durable. */
    assert_int_equal(vfs_fault_calls(F, VFS_OP_OPEN), 0);
    for (int i = 0; i < 4; i++) { /* the old "3rd open" must not fire */
        f = fopen_rw("r", 0);
        assert_int_equal(V->close(V, f), DM_OK);
    }
    f = fopen_rw("r", 0);
    app(f, "second|");
    assert_int_equal(V->sync(V, f), DM_OK);
    app(f, "lost again");
    assert_int_equal(V->close(V, f), DM_OK);
    vfs_fault_crash_at_sync(F, 1);
    assert_int_equal(V->sync_dir(V, dir), DM_EIO);
    assert_int_equal(vfs_fault_apply_crash(F, VFS_TEAR_NONE), DM_OK);
    assert_disk("r", "first|second|");
}

static void test_reset(void **state)
{
    (void)state;
    vfs_file *f = fopen_rw("s", 0);
    app(f, "before reset");
    vfs_fault_fail_nth(F, VFS_OP_APPEND, 1, DM_EIO, true);
    vfs_fault_crash_at_sync(F, 1);
    vfs_fault_reset(F);
    /* Open handles keep working; injections and pending crash are gone. */
    app(f, "|after");
    assert_int_equal(V->sync(V, f), DM_OK);
    app(f, "|unsynced");
    assert_false(vfs_fault_crashed(F));
    assert_int_equal(V->close(V, f), DM_OK);
    assert_int_equal(vfs_fault_calls(F, VFS_OP_APPEND), 2);
    assert_int_equal(vfs_fault_apply_crash(F, VFS_TEAR_NONE), DM_OK);
    /* The creation happened before the reset, so it counts as durable. */
    assert_disk("s", "before reset|after");
}

/* ---- allocation failure --------------------------------------------- */

static void test_oom(void **state)
{
    (void)state;
    disk_put("o", "x");
    /* Warm up: the table's arrays keep their capacity across resets. */
    vfs_file *w = fopen_rw("o2", 0);
    assert_int_equal(V->close(V, w), DM_OK);
    assert_int_equal(V->unlink(V, P("o2")), DM_OK);
    vfs_fault_reset(F);
    int64_t base_bytes = alloc_bytes_in_use();
    int saw_nomem = 0;
    for (int64_t k = 1; k <= 12; k++) {
        alloc_fail_after(k, 0);
        vfs_file *f = NULL;
        int rc = V->open(V, P("o2"), VFS_RDWR | VFS_CREATE, &f);
        int rc2 = rc ? rc : V->rename(V, P("o"), P("o3"));
        int rc3 = rc2 ? rc2 : V->unlink(V, P("o3"));
        alloc_fail_after(0, 0);
        if (rc == DM_ENOMEM || rc2 == DM_ENOMEM || rc3 == DM_ENOMEM)
            saw_nomem++;
        assert_true(rc == DM_OK || rc == DM_ENOMEM);
        assert_true(rc2 == DM_OK || rc2 == DM_ENOMEM);
        assert_true(rc3 == DM_OK || rc3 == DM_ENOMEM);
        if (f)
            assert_int_equal(V->close(V, f), DM_OK);
        if (rc2 == DM_OK && rc3 != DM_OK)
            assert_int_equal(V->rename(V, P("o3"), P("o")), DM_OK);
        if (rc3 == DM_OK)
            disk_put("o", "x");
        vfs_fault_reset(F);
    }
    assert_true(saw_nomem > 0);
    assert_int_equal(alloc_bytes_in_use(), base_bytes);
}

/* ---- threads ---------------------------------------------------------- */

#define N_THREADS 4
#define N_ROUNDS 200

struct worker {
    int id;
    size_t synced_len; /* bytes covered by this worker's last sync */
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char path[4200], rec[64];
    /* Not P(): its static buffers are not thread-safe. */
    snprintf(path, sizeof path, "%s/thr%d", dir, w->id);
    vfs_file *f = NULL;
    if (V->open(V, path, VFS_RDWR | VFS_CREATE | VFS_TRUNC, &f))
        return NULL;
    size_t len = 0;
    for (int i = 0; i < N_ROUNDS; i++) {
        int n = snprintf(rec, sizeof rec, "[%d:%d]", w->id, i);
        if (V->append(V, f, rec, (size_t)n))
            break;
        len += (size_t)n;
        if (i % 7 == 3) {
            if (V->sync(V, f))
                break;
            w->synced_len = len;
        }
        size_t got = 0;
        if (V->pread(V, f, rec, 4, 0, &got))
            break;
    }
    V->close(V, f);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t th[N_THREADS];
    struct worker w[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        char name[32];
        snprintf(name, sizeof name, "thr%d", i);
        vfs_file *f = fopen_rw(name, 0);
        assert_int_equal(V->close(V, f), DM_OK);
    }
    assert_int_equal(V->sync_dir(V, dir), DM_OK);
    for (int i = 0; i < N_THREADS; i++) {
        w[i] = (struct worker){ .id = i };
    }
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(vfs_fault_calls(F, VFS_OP_APPEND), N_THREADS * N_ROUNDS);
    assert_int_equal(vfs_fault_apply_crash(F, VFS_TEAR_NONE), DM_OK);
    for (int i = 0; i < N_THREADS; i++) {
        char name[32];
        snprintf(name, sizeof name, "thr%d", i);
        assert_int_equal(disk_size(name), (int64_t)w[i].synced_len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_passthrough, per_test),
        cmocka_unit_test_setup(test_fail_append, per_test),
        cmocka_unit_test_setup(test_fail_persistent, per_test),
        cmocka_unit_test_setup(test_fail_other_ops, per_test),
        cmocka_unit_test_setup(test_crash_at_sync, per_test),
        cmocka_unit_test_setup(test_crash_at_sync_dir, per_test),
        cmocka_unit_test_setup(test_durable_across_reopen, per_test),
        cmocka_unit_test_setup(test_created_removed, per_test),
        cmocka_unit_test_setup(test_rename_undo, per_test),
        cmocka_unit_test_setup(test_rename_kept_with_dir_sync, per_test),
        cmocka_unit_test_setup(test_unlink_undo, per_test),
        cmocka_unit_test_setup(test_tear_modes, per_test),
        cmocka_unit_test_setup(test_tear_namespace, per_test),
        cmocka_unit_test_setup(test_apply_crash_then_reuse, per_test),
        cmocka_unit_test_setup(test_reset, per_test),
        cmocka_unit_test_setup(test_oom, per_test),
        cmocka_unit_test_setup(test_threads, per_test),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
