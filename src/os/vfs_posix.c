/*
 * vfs_posix.c -- the real VFS table over POSIX system calls.
 *
 * Every call retries EINTR, maps errno to DM_E* and records the errno and
 * the call's name in the table for logs.  Data syncs use fdatasync; the
 * directory sync opens the directory and fsyncs it, which is what makes a
 * creation or rename durable on Linux file systems.
 */
#include "os/vfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"

struct vfs_file {
    int fd;
};

static int fail(vfs *v, const char *op)
{
    int e = errno;
    v->last_errno = e;
    v->last_op = op;
    return err_from_errno(e);
}

static int p_open(vfs *v, const char *path, int flags, vfs_file **out)
{
    *out = NULL;
    int of = O_CLOEXEC;
    of |= (flags & VFS_RDWR) ? O_RDWR : O_RDONLY;
    if (flags & VFS_CREATE) of |= O_CREAT;
    if (flags & VFS_TRUNC) of |= O_TRUNC;
    if (flags & VFS_EXCL) of |= O_EXCL;
    if (flags & VFS_RDWR) of |= O_APPEND;
    int fd;
    do fd = open(path, of, 0644);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return fail(v, "open");
    vfs_file *f = dm_malloc(sizeof *f);
    if (!f) {
        close(fd);
        return DM_ENOMEM;
    }
    f->fd = fd;
    *out = f;
    return DM_OK;
}

static int p_close(vfs *v, vfs_file *f)
{
    if (!f)
        return DM_OK;
    int rc = DM_OK;
    if (close(f->fd) < 0 && errno != EINTR)
        rc = fail(v, "close");
    dm_free(f);
    return rc;
}

static int p_pread(vfs *v, vfs_file *f, void *dst, size_t n, uint64_t off,
                   size_t *nread)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(f->fd, (char *)dst + got, n - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR) continue;
            *nread = got;
            return fail(v, "pread");
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    *nread = got;
    return DM_OK;
}

static int p_append(vfs *v, vfs_file *f, const void *src, size_t n)
{
    const char *p = src;
    while (n) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return fail(v, "write");
        }
        p += w;
        n -= (size_t)w;
    }
    return DM_OK;
}

static int p_sync(vfs *v, vfs_file *f)
{
    if (fdatasync(f->fd) < 0)
        return fail(v, "fdatasync");
    return DM_OK;
}

static int p_truncate(vfs *v, vfs_file *f, uint64_t size)
{
    int r;
    do r = ftruncate(f->fd, (off_t)size);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return fail(v, "ftruncate");
    return DM_OK;
}

static int p_size(vfs *v, vfs_file *f, uint64_t *size)
{
    struct stat st;
    if (fstat(f->fd, &st) < 0)
        return fail(v, "fstat");
    *size = (uint64_t)st.st_size;
    return DM_OK;
}

static int p_mmap(vfs *v, vfs_file *f, uint64_t len, const void **out)
{
    *out = NULL;
    if (len == 0)
        return DM_EINVAL;
    void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, f->fd, 0);
    if (p == MAP_FAILED)
        return fail(v, "mmap");
    *out = p;
    return DM_OK;
}

/* MADV_DONTNEED on a shared read-only file mapping drops only this
 * process's page-table entries: the data stays in the file and, while the
 * kernel keeps them, in the page cache. */
static int p_drop_pages(vfs *v, const void *p, uint64_t len)
{
    if (madvise((void *)p, (size_t)len, MADV_DONTNEED) < 0)
        return fail(v, "madvise");
    return DM_OK;
}

static int p_munmap(vfs *v, const void *p, uint64_t len)
{
    if (munmap((void *)p, (size_t)len) < 0)
        return fail(v, "munmap");
    return DM_OK;
}

static int p_rename(vfs *v, const char *from, const char *to)
{
    if (rename(from, to) < 0)
        return fail(v, "rename");
    return DM_OK;
}

static int p_unlink(vfs *v, const char *path)
{
    if (unlink(path) < 0)
        return fail(v, "unlink");
    return DM_OK;
}

static int p_sync_dir(vfs *v, const char *dir)
{
    int fd;
    do fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return fail(v, "open(dir)");
    int rc = DM_OK;
    if (fsync(fd) < 0)
        rc = fail(v, "fsync(dir)");
    close(fd);
    return rc;
}

static int p_mkdir(vfs *v, const char *path)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return fail(v, "mkdir");
    return DM_OK;
}

static int p_list(vfs *v, const char *dir, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return fail(v, "opendir");
    char **arr = NULL;
    size_t cnt = 0, cap = 0;
    int rc = DM_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **na = dm_realloc(arr, nc * sizeof *na);
            if (!na) { rc = DM_ENOMEM; break; }
            arr = na;
            cap = nc;
        }
        if (!(arr[cnt] = dm_strdup(e->d_name))) { rc = DM_ENOMEM; break; }
        cnt++;
    }
    closedir(d);
    if (rc) {
        vfs_list_free(arr, cnt);
        return rc;
    }
    *names = arr;
    *n = cnt;
    return DM_OK;
}

static int p_file_size(vfs *v, const char *path, uint64_t *size)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return fail(v, "stat");
    *size = (uint64_t)st.st_size;
    return DM_OK;
}

static int p_lock(vfs *v, const char *path, vfs_file **out)
{
    int rc = p_open(v, path, VFS_RDWR | VFS_CREATE, out);
    if (rc)
        return rc;
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (fcntl((*out)->fd, F_SETLK, &fl) < 0) {
        int e = errno;
        p_close(v, *out);
        *out = NULL;
        v->last_errno = e;
        v->last_op = "fcntl(F_SETLK)";
        return (e == EACCES || e == EAGAIN) ? DM_EBUSY : err_from_errno(e);
    }
    return DM_OK;
}

static int p_unlock(vfs *v, vfs_file *f)
{
    if (!f)
        return DM_OK;
    struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
    (void)fcntl(f->fd, F_SETLK, &fl);
    return p_close(v, f);
}

static vfs posix_vfs = {
    .name = "posix",
    .open = p_open, .close = p_close, .pread = p_pread, .append = p_append,
    .sync = p_sync, .truncate = p_truncate, .size = p_size, .mmap = p_mmap,
    .munmap = p_munmap, .rename = p_rename, .unlink = p_unlink,
    .sync_dir = p_sync_dir, .mkdir = p_mkdir, .list = p_list,
    .file_size = p_file_size, .lock = p_lock, .unlock = p_unlock,
    .drop_pages = p_drop_pages,
};

vfs *vfs_posix(void)
{
    return &posix_vfs;
}

void vfs_list_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dm_free(names[i]);
    dm_free(names);
}

int vfs_read_all(vfs *v, const char *path, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    vfs_file *f = NULL;
    uint8_t *data = NULL;
    uint64_t size = 0;
    size_t got = 0;
    int rc = v->open(v, path, VFS_RDONLY, &f);
    if (rc) goto fail;
    if ((rc = v->size(v, f, &size))) goto fail;
    if (!(data = dm_malloc(size ? (size_t)size : 1))) { rc = DM_ENOMEM; goto fail; }
    if ((rc = v->pread(v, f, data, (size_t)size, 0, &got))) goto fail;
    v->close(v, f);
    *out = data;
    *len = got;
    return DM_OK;
fail:
    dm_free(data);
    v->close(v, f);
    return rc;
}

int vfs_write_atomic(vfs *v, const char *dir, const char *name,
                     const void *data, size_t len)
{
    char path[4096], tmp[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path ||
        snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name) >= (int)sizeof tmp)
        return DM_EINVAL;
    vfs_file *f = NULL;
    int rc = v->open(v, tmp, VFS_RDWR | VFS_CREATE | VFS_TRUNC, &f);
    if (rc) goto fail;
    if ((rc = v->append(v, f, data, len))) goto fail;
    if ((rc = v->sync(v, f))) goto fail;
    rc = v->close(v, f);
    f = NULL;
    if (rc) goto fail;
    if ((rc = v->rename(v, tmp, path))) goto fail;
    if ((rc = v->sync_dir(v, dir))) goto fail;
    return DM_OK;
fail:
    v->close(v, f);
    return rc;
}
