/*
 * vfs_fault.h -- a fault-injecting VFS for tests (crash and I/O-error
 * simulation), wrapping another table (normally vfs_posix()).
 *
 * What it can do:
 *   - fail the n-th call of an operation kind with DM_EIO or DM_ENOSPC,
 *     once or persistently (SQLite's syscall fault simulation);
 *   - simulate a power cut at the n-th sync/sync_dir or right now, after
 *     which every call fails with DM_EIO;
 *   - afterwards, rewrite the real files so that the directory looks as it
 *     would after the power cut: unsynced bytes dropped or torn, creations,
 *     renames and unlinks not made durable by sync_dir undone (LevelDB
 *     fault_injection_test, RocksDB FaultInjectionFS, SQLite test6.c).
 *
 * Writes go to the real files at once so the engine can read back what it
 * wrote; the loss is applied later by vfs_fault_apply_crash().
 *
 * The durability model (per normalized path; see vfs_fault.c):
 *   - a file's durable length is its length at its last successful sync;
 *     files created or opened with VFS_TRUNC start at 0; a truncate below
 *     it lowers it; a file this table has not seen written counts as fully
 *     durable;
 *   - a creation, rename or unlink is durable only after a successful
 *     sync_dir of the directory holding the name (for a rename across
 *     directories: of both directories);
 *   - mkdir and lock files are durable at once (not tracked).
 *
 * Paths are compared after a textual normalization (repeated '/' and "."
 * components removed, trailing '/' dropped; ".." and symlinks are not
 * resolved), so the engine must name one file by one spelling.
 *
 * Thread safety: every function here and every table entry may be called
 * from several threads; one mutex inside guards all state.  It is held
 * across the wrapped table's calls that change tracked state (open, close,
 * sync, sync_dir, truncate, rename, unlink, mkdir, lock, unlock) and
 * released before append, pread, size, mmap, munmap, list and file_size
 * reach it, so reads and appends of different threads overlap.  Call
 * vfs_fault_apply_crash, vfs_fault_reset and vfs_fault_free only when no
 * other thread is using the table.
 *
 * If a test changes the directory behind the table's back (restores an
 * image, deletes it), call vfs_fault_reset first: tracked state would
 * otherwise describe files that are no longer there.
 *
 * Random choices (torn prefixes, garbage, which metadata operations
 * survive, the prefix written by a failing append) come from one PRNG
 * seeded by vfs_fault_new's seed, so a single-threaded run is exactly
 * reproducible.
 */
#ifndef DM_OS_VFS_FAULT_H
#define DM_OS_VFS_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#include "os/vfs.h"

typedef struct vfs_fault vfs_fault;

/* The operation kinds that are counted and can be failed.  open counts
 * vfs->open only (not lock); the others count the entry of the same name. */
enum vfs_fault_op {
    VFS_OP_OPEN,
    VFS_OP_APPEND,
    VFS_OP_SYNC,
    VFS_OP_SYNC_DIR,
    VFS_OP_RENAME,
    VFS_OP_TRUNCATE,
    VFS_OP_UNLINK,
    VFS_OP_PREAD,
    VFS_OP_MKDIR,
    VFS_OP_COUNT_
};

/* How unsynced bytes fare in vfs_fault_apply_crash. */
enum vfs_tear {
    VFS_TEAR_NONE,    /* every unsynced byte and namespace change is lost */
    VFS_TEAR_PREFIX,  /* a random prefix of the unsynced bytes survives */
    VFS_TEAR_GARBAGE, /* as PREFIX, then its last <= 512 bytes are garbage */
};

/*
 * vfs_fault_new -- a fault table over `base` (borrowed: must outlive the
 * fault table).  seed drives every random choice.  *out receives the
 * handle (NULL on failure); free with vfs_fault_free.
 * Returns DM_OK, DM_EINVAL (base or out NULL), DM_ENOMEM.
 */
int vfs_fault_new(vfs *base, uint64_t seed, vfs_fault **out);

/*
 * vfs_fault_free -- frees the table and its tracking state.  NULL is a
 * no-op.  REQUIRES: no file or lock handle from it is still open and no
 * other thread uses it.  Files on disk are left as they are.
 */
void vfs_fault_free(vfs_fault *f);

/*
 * vfs_fault_vfs -- the table to hand to the engine.  Borrowed; valid until
 * vfs_fault_free.  Its entries follow src/os/vfs.h, plus the injected
 * failures and crash behaviour described here.
 */
vfs *vfs_fault_vfs(vfs_fault *f);

/*
 * vfs_fault_fail_nth -- the n-th call of `op` counted from now (n >= 1,
 * 1-based: n = 1 is the next call) fails with `err` (DM_EIO or DM_ENOSPC;
 * any value >= 0 is taken as DM_EIO) without taking effect; with
 * is_persistent every later call of `op` fails too.  n = 0 clears the
 * injection for `op`.  One injection per op kind: a new call replaces the
 * previous one.
 *
 * A failing append first writes a random (seeded) prefix of its bytes,
 * strictly shorter than the request and possibly empty, to model "an
 * error means an unknown prefix may have been written"; switch that off
 * with vfs_fault_partial_appends(f, false).  Other failing calls change
 * nothing on disk.  Thread-safe.
 */
void vfs_fault_fail_nth(vfs_fault *f, enum vfs_fault_op op, uint64_t n,
                        int err, bool is_persistent);

/*
 * vfs_fault_partial_appends -- whether a failing append writes a random
 * prefix first (default: true).  Thread-safe.
 */
void vfs_fault_partial_appends(vfs_fault *f, bool on);

/*
 * vfs_fault_calls -- calls of `op` made so far (since vfs_fault_new, the
 * last vfs_fault_reset or vfs_fault_apply_crash), including those that
 * failed.  Calls made after the crash are not counted.  Thread-safe.
 */
uint64_t vfs_fault_calls(vfs_fault *f, enum vfs_fault_op op);

/*
 * vfs_fault_crash_at_sync -- the n-th call (from now, 1-based) of sync or
 * sync_dir, counted together, does not take effect: the machine loses
 * power just before it.  That call and every later call on the table fail
 * with DM_EIO, except close, unlock and munmap, which still release their
 * resources and return DM_OK.  n = 0 cancels a pending crash.
 * Thread-safe.
 */
void vfs_fault_crash_at_sync(vfs_fault *f, uint64_t n);

/* vfs_fault_crash_now -- the same, immediately.  Thread-safe. */
void vfs_fault_crash_now(vfs_fault *f);

/* vfs_fault_crashed -- whether the power is out.  Thread-safe. */
bool vfs_fault_crashed(vfs_fault *f);

/*
 * vfs_fault_syncs -- sync + sync_dir calls that succeeded (took effect)
 * since the last reset; run a workload once, read this as S, then crash at
 * sync 1..S.  Thread-safe.
 */
uint64_t vfs_fault_syncs(vfs_fault *f);

/*
 * vfs_fault_apply_crash -- cuts the power (if not cut already) and
 * rewrites the real files to what a power cut would leave:
 *
 *  1. every tracked file keeps its durable bytes; of its unsynced bytes
 *     NONE keeps none, PREFIX a random prefix, GARBAGE a random prefix
 *     whose last min(512, kept unsynced) bytes are replaced by random
 *     bytes (a torn sector).  Durable bytes are never touched.
 *  2. creations, renames and unlinks not yet made durable by sync_dir are
 *     pending, in call order.  NONE undoes all of them; PREFIX and GARBAGE
 *     keep a random leading run of them (journalling file systems commit
 *     metadata in order, so the survivors are a prefix) and undo the rest.
 *     Undo, last first: a creation removes the file; a rename moves the
 *     file back and restores the old target's durable bytes (or leaves no
 *     target if there was none); an unlink recreates the file with its
 *     durable bytes.  Content is remembered at rename/unlink time up to
 *     64 MiB in total over all pending operations; a rename or unlink
 *     whose content did not fit is treated as durable at once.
 *
 * Then the fault state is reset as by vfs_fault_reset: the power is back,
 * the files on disk are all durable, injections and counters are cleared.
 * Handles opened before the crash stay dead: every call on them except
 * close/unlock/munmap fails with DM_EIO.  The PRNG is not reseeded.
 *
 * REQUIRES: the engine has closed or abandoned its files; no other thread
 * is using the table.  Returns DM_OK, or the first error of the wrapped
 * table while rewriting (the rewrite carries on past it).
 */
int vfs_fault_apply_crash(vfs_fault *f, enum vfs_tear mode);

/*
 * vfs_fault_reset -- clears injected failures, a pending or happened
 * crash, and the counters, and forgets the tracked state: the current
 * on-disk state becomes the durable state.  Open handles keep working.
 * REQUIRES: no other thread is using the table.
 */
void vfs_fault_reset(vfs_fault *f);

#endif
