/* test_vfs_posix.c -- the POSIX VFS table and the vfs.h helpers. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "os/vfs.h"

static char dir[4096];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("vfs_posix"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmrf(dir);
    return 0;
}

/* "dir/name" in one of four rotating buffers, so that a call may take
 * two paths (tu_file_path has only one). */
static const char *P(const char *name)
{
    static char bufs[4][4200];
    static int next;
    char *b = bufs[next++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

static void put(vfs *v, const char *name, const char *s)
{
    vfs_file *f = NULL;
    assert_int_equal(v->open(v, P(name), VFS_RDWR | VFS_CREATE | VFS_TRUNC, &f),
                     DM_OK);
    assert_int_equal(v->append(v, f, s, strlen(s)), DM_OK);
    assert_int_equal(v->close(v, f), DM_OK);
}

static void test_open_flags(void **state)
{
    (void)state;
    vfs *v = vfs_posix();
    vfs_file *f = (vfs_file *)&f; /* must be reset to NULL */
    assert_int_equal(v->open(v, P("missing"), VFS_RDONLY, &f), DM_ENOTFOUND);
    assert_null(f);
    assert_non_null(v->last_op);
    assert_int_equal(v->open(v, P("missing"), VFS_RDWR, &f), DM_ENOTFOUND);
    assert_null(f);

    assert_int_equal(v->open(v, P("a"), VFS_RDWR | VFS_CREATE | VFS_EXCL, &f),
                     DM_OK);
    assert_non_null(f);
    assert_int_equal(v->append(v, f, "hello", 5), DM_OK);
    assert_int_equal(v->close(v, f), DM_OK);

    /* EXCL on an existing file. */
    f = (vfs_file *)&f;
    assert_int_equal(v->open(v, P("a"), VFS_RDWR | VFS_CREATE | VFS_EXCL, &f),
                     DM_EEXISTS);
    assert_null(f);

    /* CREATE without TRUNC keeps the content; appends go to the end. */
    uint64_t size = 0;
    assert_int_equal(v->open(v, P("a"), VFS_RDWR | VFS_CREATE, &f), DM_OK);
    assert_int_equal(v->size(v, f, &size), DM_OK);
    assert_int_equal(size, 5);
    assert_int_equal(v->append(v, f, "!", 1), DM_OK);
    assert_int_equal(v->size(v, f, &size), DM_OK);
    assert_int_equal(size, 6);
    assert_int_equal(v->close(v, f), DM_OK);

    /* TRUNC empties it. */
    assert_int_equal(v->open(v, P("a"), VFS_RDWR | VFS_TRUNC, &f), DM_OK);
    assert_int_equal(v->size(v, f, &size), DM_OK);
    assert_int_equal(size, 0);
    assert_int_equal(v->close(v, f), DM_OK);

    /* A read-only handle cannot append. */
    assert_int_equal(v->open(v, P("a"), VFS_RDONLY, &f), DM_OK);
    assert_int_not_equal(v->append(v, f, "x", 1), DM_OK);
    assert_int_not_equal(v->last_errno, 0);
    assert_int_equal(v->close(v, f), DM_OK);

    assert_int_equal(v->close(v, NULL), DM_OK);
    assert_int_equal(v->unlock(v, NULL), DM_OK);
}

static void test_append_pread(void **state)
{
    (void)state;
    vfs *v = vfs_posix();
    vfs_file *f = NULL;
    uint8_t big[70000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 131 + 7);
    assert_int_equal(v->open(v, P("b"), VFS_RDWR | VFS_CREATE, &f), DM_OK);
    assert_int_equal(v->append(v, f, big, 1000), DM_OK);
    assert_int_equal(v->append(v, f, big + 1000, sizeof big - 1000), DM_OK);
    assert_int_equal(v->append(v, f, big, 0), DM_OK);
    assert_int_equal(v->sync(v, f), DM_OK);

    uint8_t got[sizeof big];
    size_t n = 0;
    assert_int_equal(v->pread(v, f, got, sizeof got, 0, &n), DM_OK);
    assert_int_equal(n, sizeof big);
    assert_memory_equal(got, big, sizeof big);
    assert_int_equal(v->pread(v, f, got, 100, 12345, &n), DM_OK);
    assert_int_equal(n, 100);
    assert_memory_equal(got, big + 12345, 100);
    /* Short read only at the end of the file. */
    assert_int_equal(v->pread(v, f, got, 100, sizeof big - 10, &n), DM_OK);
    assert_int_equal(n, 10);
    assert_int_equal(v->pread(v, f, got, 100, sizeof big + 10, &n), DM_OK);
    assert_int_equal(n, 0);
    assert_int_equal(v->close(v, f), DM_OK);

    uint64_t size = 0;
    assert_int_equal(v->file_size(v, P("b"), &size), DM_OK);
    assert_int_equal(size, sizeof big);
    assert_int_equal(v->file_size(v, P("nope"), &size), DM_ENOTFOUND);
}

static void test_truncate(void **state)
{
    (void)state;
    vfs *v = vfs_posix();
    vfs_file *f = NULL;
    uint64_t size = 0;
    size_t n = 0;
    char got[32];
    assert_int_equal(v->open(v, P("t"), VFS_RDWR | VFS_CREATE, &f), DM_OK);
    assert_int_equal(v->append(v, f, "0123456789", 10), DM_OK);
    assert_int_equal(v->truncate(v, f, 4), DM_OK);
    assert_int_equal(v->size(v, f, &size), DM_OK);
    assert_int_equal(size, 4);
    /* The next append goes to the new end. */
    assert_int_equal(v->append(v, f, "xy", 2), DM_OK);
    assert_int_equal(v->pread(v, f, got, sizeof got, 0, &n), DM_OK);
    assert_int_equal(n, 6);
    assert_memory_equal(got, "0123xy", 6);
    /* Growing fills with zeros. */
    assert_int_equal(v->truncate(v, f, 8), DM_OK);
    assert_int_equal(v->pread(v, f, got, sizeof got, 0, &n), DM_OK);
    assert_int_equal(n, 8);
    assert_memory_equal(got, "0123xy\0\0", 8);
    assert_int_equal(v->close(v, f), DM_OK);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_dir_ops(void **state)
{
    (void)state;
    vfs *v = vfs_posix();
    char sub[4096];
    snprintf(sub, sizeof sub, "%s", P("sub"));
    assert_int_equal(v->mkdir(v, sub), DM_OK);
    assert_int_equal(v->mkdir(v, sub), DM_OK); /* existing is fine */
    put(v, "sub/x", "1");
    put(v, "sub/y", "22");
    put(v, "sub/z", "333");
    assert_int_equal(v->sync_dir(v, sub), DM_OK);

    char **names = NULL;
    size_t n = 0;
    assert_int_equal(v->list(v, sub, &names, &n), DM_OK);
    assert_int_equal(n, 3);
    qsort(names, n, sizeof *names, cmp_str);
    assert_string_equal(names[0], "x");
    assert_string_equal(names[1], "y");
    assert_string_equal(names[2], "z");
    vfs_list_free(names, n);

    assert_int_equal(v->rename(v, P("sub/z"), P("sub/x")), DM_OK);
    uint64_t size = 0;
    assert_int_equal(v->file_size(v, P("sub/x"), &size), DM_OK);
    assert_int_equal(size, 3);
    assert_int_equal(v->file_size(v, P("sub/z"), &size), DM_ENOTFOUND);
    assert_int_equal(v->rename(v, P("sub/z"), P("sub/q")), DM_ENOTFOUND);
    assert_int_equal(v->unlink(v, P("sub/y")), DM_OK);
    assert_int_equal(v->unlink(v, P("sub/y")), DM_ENOTFOUND);
    assert_string_equal(v->last_op, "unlink");

    assert_int_equal(v->list(v, sub, &names, &n), DM_OK);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "x");
    vfs_list_free(names, n);

    /* An empty directory lists as nothing. */
    char empty[4096];
    snprintf(empty, sizeof empty, "%s", P("empty"));
    assert_int_equal(v->mkdir(v, empty), DM_OK);
    names = (char **)&names;
    assert_int_equal(v->list(v, empty, &names, &n), DM_OK);
    assert_int_equal(n, 0);
    vfs_list_free(names, n);

    names = (char **)&names;
    assert_int_equal(v->list(v, P("nodir"), &names, &n), DM_ENOTFOUND);
    assert_null(names);
    assert_int_equal(n, 0);
    assert_int_equal(v->sync_dir(v, P("nodir")), DM_ENOTFOUND);
}

static void test_lock(void **state)
{
    (void)state;
    vfs *v = vfs_posix();
    vfs_file *l = NULL;
    assert_int_equal(v->lock(v, P("LOCK"), &l), DM_OK);
    assert_non_null(l);

    /* fcntl locks belong to the process: only another process sees the
     * conflict.  The child reports through its exit status. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        vfs_file *c = (vfs_file *)&c;
        int rc = v->lock(v, P("LOCK"), &c);
        _exit(rc == DM_EBUSY && c == NULL ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);

    assert_int_equal(v->unlock(v, l), DM_OK);

    /* Released: the other process can take it now. */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        vfs_file *c = NULL;
        int rc = v->lock(v, P("LOCK"), &c);
        _exit(rc == DM_OK && c != NULL && v->unlock(v, c) == DM_OK ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_write_atomic_read_all(void **state)
{
    (void)state;
    vfs *v = vfs_posix();
    uint8_t *data = (uint8_t *)&data;
    size_t len = 99;
    assert_int_equal(vfs_read_all(v, P("M"), &data, &len), DM_ENOTFOUND);
    assert_null(data);
    assert_int_equal(len, 0);

    assert_int_equal(vfs_write_atomic(v, dir, "M", "first", 5), DM_OK);
    assert_int_equal(vfs_read_all(v, P("M"), &data, &len), DM_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(data, "first", 5);
    dm_free(data);

    assert_int_equal(vfs_write_atomic(v, dir, "M", "second!", 7), DM_OK);
    assert_int_equal(vfs_read_all(v, P("M"), &data, &len), DM_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(data, "second!", 7);
    dm_free(data);
    uint64_t size;
    assert_int_equal(v->file_size(v, P("M.tmp"), &size), DM_ENOTFOUND);

    /* Empty content round-trips too. */
    assert_int_equal(vfs_write_atomic(v, dir, "E", "", 0), DM_OK);
    assert_int_equal(vfs_read_all(v, P("E"), &data, &len), DM_OK);
    assert_int_equal(len, 0);
    assert_non_null(data);
    dm_free(data);

    /* A missing directory fails cleanly. */
    assert_int_equal(vfs_write_atomic(v, P("nodir"), "M", "x", 1),
                     DM_ENOTFOUND);
}

static void test_mmap(void **state)
{
    (void)state;
    vfs *v = vfs_posix();
    char buf[10000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (char)('a' + i % 26);
    vfs_file *f = NULL;
    assert_int_equal(v->open(v, P("m"), VFS_RDWR | VFS_CREATE, &f), DM_OK);
    assert_int_equal(v->append(v, f, buf, sizeof buf), DM_OK);
    assert_int_equal(v->sync(v, f), DM_OK);
    assert_int_equal(v->close(v, f), DM_OK);

    assert_int_equal(v->open(v, P("m"), VFS_RDONLY, &f), DM_OK);
    const void *p = NULL;
    assert_int_equal(v->mmap(v, f, sizeof buf, &p), DM_OK);
    assert_non_null(p);
    assert_memory_equal(p, buf, sizeof buf);
    /* The mapping outlives the handle. */
    assert_int_equal(v->close(v, f), DM_OK);
    assert_memory_equal((const char *)p + 5000, buf + 5000, 100);
    assert_int_equal(v->munmap(v, p, sizeof buf), DM_OK);

    assert_int_equal(v->open(v, P("m"), VFS_RDONLY, &f), DM_OK);
    p = &p;
    assert_int_equal(v->mmap(v, f, 0, &p), DM_EINVAL);
    assert_null(p);
    assert_int_equal(v->close(v, f), DM_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_flags),
        cmocka_unit_test(test_append_pread),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_dir_ops),
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_write_atomic_read_all),
        cmocka_unit_test(test_mmap),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
