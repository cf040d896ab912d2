/*
 * vfs.h -- every file-system call the engine makes goes through one table.
 *
 * Why: fault injection.  The POSIX table (vfs_posix) is the real thing;
 * the fault table (vfs_fault, tests only) wraps it and can fail the k-th
 * call of a kind with EIO or ENOSPC, simulate a power cut (drop every byte
 * not made durable by sync/sync_dir), and tear the last writes.
 *
 * Conventions: functions return DM_OK or a negative DM_E* code (DM_EIO,
 * DM_ENOSPC, DM_ENOTFOUND, DM_EEXISTS, DM_ENOMEM); the underlying errno is
 * kept in vfs->last_errno and the failing call's name in vfs->last_op for
 * logs.  Only the VFS retries EINTR.  Files opened for writing are written
 * sequentially: `append` always writes at the current end of the file.
 *
 * Thread safety: a vfs table may be used from many threads at once; one
 * vfs_file must not be used by two threads at the same time except for
 * pread/mmap'd reads, which are safe concurrently.
 */
#ifndef DM_OS_VFS_H
#define DM_OS_VFS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vfs vfs;
typedef struct vfs_file vfs_file; /* defined by each implementation */

enum vfs_open_flags {
    VFS_RDONLY = 0,
    VFS_RDWR = 1 << 0,    /* read and append */
    VFS_CREATE = 1 << 1,  /* create if missing */
    VFS_TRUNC = 1 << 2,   /* truncate to 0 on open */
    VFS_EXCL = 1 << 3,    /* with CREATE: fail with DM_EEXISTS if present */
};

struct vfs {
    const char *name;
    /* open -- *out receives the handle (NULL on failure).  Missing file
     * without VFS_CREATE -> DM_ENOTFOUND. */
    int (*open)(vfs *v, const char *path, int flags, vfs_file **out);
    /* close -- releases the handle even when it returns an error;
     * close(NULL) is DM_OK. */
    int (*close)(vfs *v, vfs_file *f);
    /* pread -- reads up to n bytes at off; *nread < n only at end of file. */
    int (*pread)(vfs *v, vfs_file *f, void *dst, size_t n, uint64_t off,
                 size_t *nread);
    /* append -- writes all n bytes at the end of the file (loops on short
     * writes); an error means an unknown prefix may have been written. */
    int (*append)(vfs *v, vfs_file *f, const void *src, size_t n);
    /* sync -- makes the file's data durable (fdatasync). */
    int (*sync)(vfs *v, vfs_file *f);
    /* truncate -- sets the file's size (the next append goes there). */
    int (*truncate)(vfs *v, vfs_file *f, uint64_t size);
    /* size -- the file's current size in bytes. */
    int (*size)(vfs *v, vfs_file *f, uint64_t *size);
    /* mmap -- maps [0, len) read-only; *out is valid until munmap.  A
     * table may return DM_EINVAL to say "not supported; use pread". */
    int (*mmap)(vfs *v, vfs_file *f, uint64_t len, const void **out);
    int (*munmap)(vfs *v, const void *p, uint64_t len);
    /* drop_pages -- optional (NULL: not supported).  Gives the kernel back
     * the resident pages of a mapping made by mmap: the mapping stays
     * valid, and a later read of a page maps it again from the file (from
     * the page cache while the kernel keeps it there).  The process's
     * resident set shrinks; the page cache does not. */
    int (*drop_pages)(vfs *v, const void *p, uint64_t len);
    /* rename -- atomically replaces `to` with `from` (durable only after
     * sync_dir of the directory). */
    int (*rename)(vfs *v, const char *from, const char *to);
    /* unlink -- removes a file; missing -> DM_ENOTFOUND. */
    int (*unlink)(vfs *v, const char *path);
    /* sync_dir -- makes creations, renames and unlinks in dir durable. */
    int (*sync_dir)(vfs *v, const char *dir);
    /* mkdir -- creates one directory; existing -> DM_OK. */
    int (*mkdir)(vfs *v, const char *path);
    /* list -- names (not paths) of the entries of dir except "." and "..",
     * in no particular order.  *names is an array of *n strings; free with
     * vfs_list_free. */
    int (*list)(vfs *v, const char *dir, char ***names, size_t *n);
    /* file_size -- size of the file at path without opening it. */
    int (*file_size)(vfs *v, const char *path, uint64_t *size);
    /* lock -- creates/opens path and takes an exclusive advisory lock on it
     * (fcntl F_SETLK); held -> DM_EBUSY.  unlock releases and closes. */
    int (*lock)(vfs *v, const char *path, vfs_file **out);
    int (*unlock)(vfs *v, vfs_file *f);

    /* Diagnostics, written by whichever thread's call failed last (atomic:
     * two threads may fail at once; a message may then name the other's
     * call, never a torn value). */
    _Atomic int last_errno;          /* errno of the last failed call */
    const char *_Atomic last_op;     /* its name, e.g. "fsync" */
    void *ctx;           /* implementation data */
};

/* vfs_posix -- the process-wide POSIX table.  Never freed. */
vfs *vfs_posix(void);

/* vfs_list_free -- frees the result of vfs->list. */
void vfs_list_free(char **names, size_t n);

/* vfs_read_all -- reads a whole file into a dm_malloc'd buffer (*out,
 * *len); caller frees with dm_free.  Missing -> DM_ENOTFOUND. */
int vfs_read_all(vfs *v, const char *path, uint8_t **out, size_t *len);

/* vfs_write_atomic -- the commit point used for small metadata files:
 * write path.tmp, sync it, rename it over path, sync the directory. */
int vfs_write_atomic(vfs *v, const char *dir, const char *name,
                     const void *data, size_t len);

#endif
