/*
 * vfs_fault.c -- the fault-injecting VFS (tests only).
 *
 * DESIGN
 *
 * The table wraps a base table and passes every call through, after
 * (1) refusing it with DM_EIO if the power is out or the handle is from
 * before the last vfs_fault_apply_crash, (2) counting it and failing it if
 * an injection says so, (3) for sync/sync_dir, counting down to a
 * scheduled crash.  Data always reaches the real files immediately; what a
 * power cut would have lost is computed from the tracked state below and
 * applied to the real files only by vfs_fault_apply_crash().
 *
 * Tracked state:
 *
 *   fnode   one per file this table has opened (the "inode"): its current
 *           normalized path (NULL once unlinked or replaced by a rename:
 *           an orphan), its durable length and how many handles use it.
 *           State is keyed by path, so it survives close and reopen; a
 *           rename moves the fnode to the new path.  Files never opened
 *           through this table are not tracked and count as fully durable.
 *
 *   nsop    one per namespace change (create, rename, unlink) not yet made
 *           durable by sync_dir of its directory, in call order.  Renames
 *           and unlinks carry the durable bytes of the file they removed,
 *           so that they can be undone.
 *
 * Invariants:
 *   - at most one fnode has a given non-NULL path;
 *   - an fnode is freed as soon as it is an orphan with no open handle,
 *     and on reset when it has no open handle;
 *   - fnode.durable_len only decreases on truncate/open(TRUNC) and is set
 *     to the file's length on a successful sync (appends only add at the
 *     end, so everything up to that length is on disk after fdatasync);
 *   - saved_total is the sum of nsop.saved_len and stays <= SAVE_MAX.
 *
 * Durable length of a file at crash time = min(durable_len, current length)
 * for tracked files; the whole file otherwise.
 *
 * The crash (vfs_fault_apply_crash) first truncates/tears every tracked
 * file with a path, in fnode creation order, then undoes pending nsops
 * from last to first (all of them, or in tear modes all after a random
 * cut point), then resets.  Undoing in reverse order keeps every step
 * well defined: e.g. "create a.tmp, rename a.tmp -> a" undoes to "move a
 * back to a.tmp, restore old a, remove a.tmp".
 *
 * LOCKING
 *
 * One mutex, `mu`, guards every field of struct vfs_fault and of the
 * fnodes/nsops (including the table's last_errno/last_op).  It is held
 * across the base table's calls for everything that changes tracked state
 * (open, close, sync, sync_dir, truncate, rename, unlink, mkdir, lock) so
 * that state and disk change together.  append, pread, size, mmap and the
 * directory queries only take it for the checks and counting, then call
 * the base without it: they touch no tracked state and are the hot path
 * (a handle is used by one thread at a time, see vfs.h, so an append
 * cannot race with a sync on the same handle).  The base table must not
 * call back into this one.
 *
 * Format owned: none (files keep the engine's formats).
 */
#include "os/vfs_fault.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

/* Upper bound on the bytes remembered for undoing renames and unlinks. */
#define SAVE_MAX ((uint64_t)64 << 20)
/* Size of a torn sector filled with garbage in VFS_TEAR_GARBAGE. */
#define TORN_SECTOR 512

typedef struct fnode {
    char *path;          /* normalized current path; NULL = orphan */
    uint64_t durable_len; /* bytes covered by the last successful sync */
    int n_open;          /* vfs_file handles referring to this node */
} fnode;

enum nsop_kind { NS_CREATE, NS_RENAME, NS_UNLINK };

typedef struct nsop {
    enum nsop_kind kind;
    char *path;        /* CREATE/UNLINK: the file; RENAME: the target */
    char *from;        /* RENAME: the source; NULL otherwise */
    char *dir;         /* directory whose sync_dir makes it durable */
    char *dir2;        /* RENAME across directories: the source's; or NULL */
    bool has_saved;    /* RENAME: a target existed; UNLINK: always true */
    uint8_t *saved;    /* the removed file's durable bytes (may be NULL) */
    size_t saved_len;
} nsop;

struct vfs_file {
    vfs_file *base; /* handle of the base table */
    fnode *node;    /* NULL for lock handles */
    uint64_t gen;   /* vfs_fault.gen at open time */
};

struct fail_spec {
    uint64_t at;        /* absolute call number that fails; 0 = off */
    int err;
    bool is_persistent;
};

struct vfs_fault {
    vfs table; /* handed to the engine; table.ctx points back here */
    vfs *base;
    pthread_mutex_t mu; /* guards everything below */
    uint64_t rng;
    bool is_partial_appends;
    bool is_crashed;
    uint64_t crash_countdown; /* syncs until the crash; 0 = none pending */
    uint64_t gen;             /* bumped by apply_crash: older handles die */
    uint64_t calls[VFS_OP_COUNT_];
    struct fail_spec fail[VFS_OP_COUNT_];
    uint64_t n_syncs;
    int n_handles; /* open vfs_file handles, for vfs_fault_free's check */
    fnode **nodes; /* in creation order (determinism of apply_crash) */
    size_t n_nodes, nodes_cap;
    nsop *ops; /* pending namespace changes, in call order */
    size_t n_ops, ops_cap;
    uint64_t saved_total;
};

/* ---- small helpers ---------------------------------------------------- */

/* splitmix64: small, good enough, and identical on every platform. */
static uint64_t rng_next(vfs_fault *F)
{
    uint64_t z = (F->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [0, n); 0 when n == 0 */
static uint64_t rng_below(vfs_fault *F, uint64_t n)
{
    return n ? rng_next(F) % n : 0;
}

static vfs_fault *F_of(vfs *v)
{
    return v->ctx;
}

static void lock(vfs_fault *F)
{
    pthread_mutex_lock(&F->mu);
}

static void unlock(vfs_fault *F)
{
    pthread_mutex_unlock(&F->mu);
}

/*
 * norm_path -- textual normalization: drops empty and "." components and
 * a trailing '/'.  "" and "." become "."; "/" stays "/".  Returns a
 * dm_malloc'd string or NULL when out of memory.
 */
static char *norm_path(const char *p)
{
    size_t n = strlen(p);
    char *out = dm_malloc(n + 2);
    if (!out)
        return NULL;
    size_t o = 0;
    bool is_abs = p[0] == '/';
    if (is_abs)
        out[o++] = '/';
    const char *s = p;
    while (*s) {
        while (*s == '/')
            s++;
        const char *e = s;
        while (*e && *e != '/')
            e++;
        size_t len = (size_t)(e - s);
        if (len && !(len == 1 && s[0] == '.')) {
            if (o && out[o - 1] != '/')
                out[o++] = '/';
            memcpy(out + o, s, len);
            o += len;
        }
        s = e;
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = '\0';
    return out;
}

/* parent_dir -- the directory part of a normalized path (dm_malloc'd). */
static char *parent_dir(const char *np)
{
    const char *slash = strrchr(np, '/');
    if (!slash)
        return dm_strdup(".");
    if (slash == np)
        return dm_strdup("/");
    size_t len = (size_t)(slash - np);
    char *d = dm_malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, np, len);
    d[len] = '\0';
    return d;
}

static bool streq(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

/* Copy the base table's diagnostics into ours.  Caller holds mu. */
static int base_err(vfs_fault *F, int rc)
{
    F->table.last_errno = F->base->last_errno;
    F->table.last_op = F->base->last_op;
    return rc;
}

/* The error of an injected or post-crash failure.  Caller holds mu. */
static int fake_err(vfs_fault *F, int rc, const char *op)
{
    F->table.last_errno = rc == DM_ENOSPC ? ENOSPC : EIO;
    F->table.last_op = op;
    return rc;
}

/* Whether a handle can no longer be used (power out, or pre-crash). */
static bool is_dead(vfs_fault *F, const vfs_file *h)
{
    return F->is_crashed || (h && h->gen != F->gen);
}

/*
 * count_call -- counts one call of op and returns the injected error for
 * it, or DM_OK.  Caller holds mu and has checked the crash state.
 */
static int count_call(vfs_fault *F, enum vfs_fault_op op)
{
    uint64_t c = ++F->calls[op];
    const struct fail_spec *s = &F->fail[op];
    if (s->at && (c == s->at || (s->is_persistent && c > s->at)))
        return s->err;
    return DM_OK;
}

/*
 * sync_gate -- the checks common to sync and sync_dir: counts the call,
 * fires a scheduled crash (the call then has no effect), or returns an
 * injected failure.  Caller holds mu.
 */
static int sync_gate(vfs_fault *F, enum vfs_fault_op op, const char *name)
{
    int rc = count_call(F, op);
    if (F->crash_countdown && --F->crash_countdown == 0) {
        F->is_crashed = true;
        return fake_err(F, DM_EIO, name);
    }
    if (rc)
        return fake_err(F, rc, name);
    return DM_OK;
}

/* ---- fnodes ----------------------------------------------------------- */

static fnode *node_find(vfs_fault *F, const char *np)
{
    for (size_t i = 0; i < F->n_nodes; i++)
        if (streq(F->nodes[i]->path, np))
            return F->nodes[i];
    return NULL;
}

static int nodes_reserve(vfs_fault *F)
{
    if (F->n_nodes < F->nodes_cap)
        return DM_OK;
    size_t nc = F->nodes_cap ? F->nodes_cap * 2 : 16;
    fnode **nn = dm_realloc(F->nodes, nc * sizeof *nn);
    if (!nn)
        return DM_ENOMEM;
    F->nodes = nn;
    F->nodes_cap = nc;
    return DM_OK;
}

/* Removes node from the list, keeping the order, and frees it. */
static void node_free(vfs_fault *F, fnode *n)
{
    for (size_t i = 0; i < F->n_nodes; i++) {
        if (F->nodes[i] == n) {
            memmove(F->nodes + i, F->nodes + i + 1,
                    (F->n_nodes - i - 1) * sizeof *F->nodes);
            F->n_nodes--;
            break;
        }
    }
    dm_free(n->path);
    dm_free(n);
}

/* The node loses its name (unlinked or replaced); freed if unused. */
static void node_orphan(vfs_fault *F, fnode *n)
{
    if (!n)
        return;
    dm_free(n->path);
    n->path = NULL;
    if (n->n_open == 0)
        node_free(F, n);
}

/* ---- pending namespace operations -------------------------------------- */

static int ops_reserve(vfs_fault *F)
{
    if (F->n_ops < F->ops_cap)
        return DM_OK;
    size_t nc = F->ops_cap ? F->ops_cap * 2 : 16;
    nsop *no = dm_realloc(F->ops, nc * sizeof *no);
    if (!no)
        return DM_ENOMEM;
    F->ops = no;
    F->ops_cap = nc;
    return DM_OK;
}

/* Frees an operation's memory; no accounting (for ops never pushed). */
static void nsop_release(nsop *o)
{
    dm_free(o->path);
    dm_free(o->from);
    dm_free(o->dir);
    dm_free(o->dir2);
    dm_free(o->saved);
    memset(o, 0, sizeof *o);
}

/* Frees a pushed operation, giving back its saved bytes.  Holds mu. */
static void nsop_drop(vfs_fault *F, nsop *o)
{
    F->saved_total -= o->saved_len;
    nsop_release(o);
}

static void ops_clear(vfs_fault *F)
{
    for (size_t i = 0; i < F->n_ops; i++)
        nsop_drop(F, &F->ops[i]);
    F->n_ops = 0;
}

/*
 * ops_push -- appends o (ops_reserve must have succeeded) and takes
 * ownership of its allocations; o is zeroed.  Caller holds mu.
 */
static void ops_push(vfs_fault *F, nsop *o)
{
    assert(F->n_ops < F->ops_cap);
    F->saved_total += o->saved_len;
    F->ops[F->n_ops++] = *o;
    memset(o, 0, sizeof *o);
}

/*
 * save_durable -- reads the durable bytes of the file at `path` (np: its
 * normalized form) into *out and *len, for undoing its removal.  *is_saved is
 * false when the file does not exist or the bytes would exceed SAVE_MAX
 * (then nothing is kept).  Caller holds mu.  Returns DM_OK, DM_ENOMEM or a
 * read error of the base table.
 */
static int save_durable(vfs_fault *F, const char *path, const char *np,
                        bool *is_saved, uint8_t **out, size_t *len)
{
    vfs *b = F->base;
    vfs_file *bh = NULL;
    uint8_t *data = NULL;
    uint64_t size = 0;
    size_t got = 0;
    *is_saved = false;
    *out = NULL;
    *len = 0;
    int rc = b->file_size(b, path, &size);
    if (rc == DM_ENOTFOUND)
        return DM_OK;
    if (rc)
        goto fail;
    const fnode *n = node_find(F, np);
    if (n && n->durable_len < size)
        size = n->durable_len;
    if (F->saved_total + size > SAVE_MAX)
        return DM_OK;
    if ((rc = b->open(b, path, VFS_RDONLY, &bh)))
        goto fail;
    if (!(data = dm_malloc(size ? (size_t)size : 1))) {
        rc = DM_ENOMEM;
        goto fail;
    }
    if ((rc = b->pread(b, bh, data, (size_t)size, 0, &got)))
        goto fail;
    b->close(b, bh);
    *is_saved = true;
    *out = data;
    *len = got;
    return DM_OK;
fail:
    dm_free(data);
    b->close(b, bh);
    return rc;
}

/* ---- the table -------------------------------------------------------- */

static int f_open(vfs *v, const char *path, int flags, vfs_file **out)
{
    vfs_fault *F = F_of(v);
    vfs *b = F->base;
    vfs_file *h = NULL, *bh = NULL;
    fnode *fresh = NULL;
    nsop op = { 0 };
    char *np = NULL;
    uint64_t size = 0;
    int rc;
    *out = NULL;
    lock(F);
    if (F->is_crashed) {
        rc = fake_err(F, DM_EIO, "open(crashed)");
        goto fail;
    }
    if ((rc = count_call(F, VFS_OP_OPEN))) {
        rc = fake_err(F, rc, "open(injected)");
        goto fail;
    }
    /* Allocate everything first so that no failure can come after the
     * base open changed the disk. */
    if (!(np = norm_path(path)) || !(h = dm_malloc(sizeof *h)) ||
        nodes_reserve(F) || ops_reserve(F)) {
        rc = DM_ENOMEM;
        goto fail;
    }
    fnode *n = node_find(F, np);
    if (!n) {
        if (!(fresh = dm_calloc(1, sizeof *fresh))) {
            rc = DM_ENOMEM;
            goto fail;
        }
    }
    bool is_created = false;
    if (flags & VFS_CREATE) {
        is_created = b->file_size(b, path, &size) == DM_ENOTFOUND;
        if (is_created) {
            op.kind = NS_CREATE;
            if (!(op.dir = parent_dir(np)) || !(op.path = dm_strdup(np))) {
                rc = DM_ENOMEM;
                goto fail;
            }
        }
    }
    if ((rc = b->open(b, path, flags, &bh))) {
        rc = base_err(F, rc);
        goto fail;
    }
    if (!n) {
        /* First sight of an existing file: all of it counts as durable. */
        if (!is_created && !(flags & VFS_TRUNC)) {
            if ((rc = b->size(b, bh, &size))) {
                rc = base_err(F, rc);
                goto fail;
            }
            fresh->durable_len = size;
        }
        fresh->path = np;
        np = NULL;
        F->nodes[F->n_nodes++] = fresh;
        n = fresh;
        fresh = NULL;
    }
    if (is_created || (flags & VFS_TRUNC))
        n->durable_len = 0;
    if (is_created)
        ops_push(F, &op);
    n->n_open++;
    h->base = bh;
    h->node = n;
    h->gen = F->gen;
    F->n_handles++;
    unlock(F);
    dm_free(np);
    *out = h;
    return DM_OK;
fail:
    if (bh)
        b->close(b, bh);
    unlock(F);
    nsop_release(&op);
    dm_free(fresh);
    dm_free(h);
    dm_free(np);
    return rc;
}

/* Drops a handle's reference to its node.  Caller holds mu. */
static void handle_release(vfs_fault *F, vfs_file *h)
{
    fnode *n = h->node;
    if (n && --n->n_open == 0 && !n->path)
        node_free(F, n);
    F->n_handles--;
    dm_free(h);
}

static int f_close(vfs *v, vfs_file *h)
{
    if (!h)
        return DM_OK;
    vfs_fault *F = F_of(v);
    lock(F);
    bool is_gone = is_dead(F, h);
    int rc = F->base->close(F->base, h->base);
    if (rc)
        rc = is_gone ? DM_OK : base_err(F, rc);
    handle_release(F, h);
    unlock(F);
    return rc;
}

static int f_pread(vfs *v, vfs_file *h, void *dst, size_t n, uint64_t off,
                   size_t *nread)
{
    vfs_fault *F = F_of(v);
    int rc = DM_OK;
    *nread = 0;
    lock(F);
    if (is_dead(F, h))
        rc = fake_err(F, DM_EIO, "pread(crashed)");
    else if ((rc = count_call(F, VFS_OP_PREAD)))
        rc = fake_err(F, rc, "pread(injected)");
    unlock(F);
    if (rc)
        return rc;
    return F->base->pread(F->base, h->base, dst, n, off, nread);
}

static int f_append(vfs *v, vfs_file *h, const void *src, size_t n)
{
    vfs_fault *F = F_of(v);
    size_t prefix = 0;
    int rc = DM_OK;
    lock(F);
    if (is_dead(F, h)) {
        rc = fake_err(F, DM_EIO, "append(crashed)");
    } else if ((rc = count_call(F, VFS_OP_APPEND))) {
        rc = fake_err(F, rc, "append(injected)");
        if (F->is_partial_appends)
            prefix = (size_t)rng_below(F, n);
    }
    unlock(F);
    if (rc) {
        /* What reached the file before the "device" failed.  Its own
         * error is irrelevant: the caller sees the injected one. */
        if (prefix)
            (void)F->base->append(F->base, h->base, src, prefix);
        return rc;
    }
    return F->base->append(F->base, h->base, src, n);
}

static int f_sync(vfs *v, vfs_file *h)
{
    vfs_fault *F = F_of(v);
    vfs *b = F->base;
    uint64_t size = 0;
    int rc;
    lock(F);
    if (is_dead(F, h)) {
        rc = fake_err(F, DM_EIO, "sync(crashed)");
        goto out;
    }
    if ((rc = sync_gate(F, VFS_OP_SYNC, "sync(injected)")))
        goto out;
    /* The length before the sync is what the sync covers: nothing else
     * appends to this handle meanwhile (one thread per handle). */
    if ((rc = b->size(b, h->base, &size)) || (rc = b->sync(b, h->base))) {
        rc = base_err(F, rc);
        goto out;
    }
    if (h->node)
        h->node->durable_len = size;
    F->n_syncs++;
out:
    unlock(F);
    return rc;
}

static int f_truncate(vfs *v, vfs_file *h, uint64_t size)
{
    vfs_fault *F = F_of(v);
    int rc;
    lock(F);
    if (is_dead(F, h)) {
        rc = fake_err(F, DM_EIO, "truncate(crashed)");
        goto out;
    }
    if ((rc = count_call(F, VFS_OP_TRUNCATE))) {
        rc = fake_err(F, rc, "truncate(injected)");
        goto out;
    }
    if ((rc = F->base->truncate(F->base, h->base, size))) {
        rc = base_err(F, rc);
        goto out;
    }
    /* Bytes cut off are gone for good (we kept no copy), so the shrink
     * counts as durable at once; an extension is unsynced like an append. */
    if (h->node && size < h->node->durable_len)
        h->node->durable_len = size;
out:
    unlock(F);
    return rc;
}

static int f_size(vfs *v, vfs_file *h, uint64_t *size)
{
    vfs_fault *F = F_of(v);
    lock(F);
    bool is_gone = is_dead(F, h);
    int rc = is_gone ? fake_err(F, DM_EIO, "size(crashed)") : DM_OK;
    unlock(F);
    if (rc) {
        *size = 0;
        return rc;
    }
    return F->base->size(F->base, h->base, size);
}

static int f_mmap(vfs *v, vfs_file *h, uint64_t len, const void **out)
{
    vfs_fault *F = F_of(v);
    lock(F);
    int rc = is_dead(F, h) ? fake_err(F, DM_EIO, "mmap(crashed)") : DM_OK;
    unlock(F);
    if (rc) {
        *out = NULL;
        return rc;
    }
    return F->base->mmap(F->base, h->base, len, out);
}

static int f_munmap(vfs *v, const void *p, uint64_t len)
{
    vfs_fault *F = F_of(v);
    int rc = F->base->munmap(F->base, p, len);
    lock(F);
    if (rc)
        rc = F->is_crashed ? DM_OK : base_err(F, rc);
    unlock(F);
    return rc;
}

/* A memory hint, not file I/O: nothing to fail or to lose in a crash. */
static int f_drop_pages(vfs *v, const void *p, uint64_t len)
{
    vfs_fault *F = F_of(v);
    return F->base->drop_pages(F->base, p, len);
}

static int f_rename(vfs *v, const char *from, const char *to)
{
    vfs_fault *F = F_of(v);
    vfs *b = F->base;
    char *nf = NULL, *nt = NULL;
    nsop op = { 0 };
    int rc;
    lock(F);
    if (F->is_crashed) {
        rc = fake_err(F, DM_EIO, "rename(crashed)");
        goto out;
    }
    if ((rc = count_call(F, VFS_OP_RENAME))) {
        rc = fake_err(F, rc, "rename(injected)");
        goto out;
    }
    if (!(nf = norm_path(from)) || !(nt = norm_path(to)) || ops_reserve(F)) {
        rc = DM_ENOMEM;
        goto out;
    }
    if (!strcmp(nf, nt)) { /* POSIX: renaming a file onto itself is a no-op */
        if ((rc = b->rename(b, from, to)))
            rc = base_err(F, rc);
        goto out;
    }
    /* Everything the record needs is allocated before the disk changes. */
    op.kind = NS_RENAME;
    if (!(op.dir = parent_dir(nt)) || !(op.dir2 = parent_dir(nf)) ||
        !(op.path = dm_strdup(nt)) || !(op.from = dm_strdup(nf))) {
        rc = DM_ENOMEM;
        goto out;
    }
    if (!strcmp(op.dir, op.dir2)) {
        dm_free(op.dir2);
        op.dir2 = NULL;
    }
    uint64_t tsize = 0;
    bool is_target = b->file_size(b, to, &tsize) == DM_OK;
    if (is_target &&
        (rc = save_durable(F, to, nt, &op.has_saved, &op.saved,
                           &op.saved_len)))
        goto out;
    if ((rc = b->rename(b, from, to))) {
        rc = base_err(F, rc);
        goto out;
    }
    fnode *tn = node_find(F, nt), *fn = node_find(F, nf);
    node_orphan(F, tn);
    if (fn) {
        dm_free(fn->path);
        fn->path = nt;
        nt = NULL;
    }
    /* A replaced target too big to remember makes the rename
     * irreversible: it counts as durable at once (documented). */
    if (!is_target || op.has_saved)
        ops_push(F, &op);
    rc = DM_OK;
out:
    nsop_release(&op);
    unlock(F);
    dm_free(nf);
    dm_free(nt);
    return rc;
}

static int f_unlink(vfs *v, const char *path)
{
    vfs_fault *F = F_of(v);
    vfs *b = F->base;
    char *np = NULL;
    nsop op = { 0 };
    int rc;
    lock(F);
    if (F->is_crashed) {
        rc = fake_err(F, DM_EIO, "unlink(crashed)");
        goto fail;
    }
    if ((rc = count_call(F, VFS_OP_UNLINK))) {
        rc = fake_err(F, rc, "unlink(injected)");
        goto fail;
    }
    if (!(np = norm_path(path)) || ops_reserve(F)) {
        rc = DM_ENOMEM;
        goto fail;
    }
    op.kind = NS_UNLINK;
    if (!(op.dir = parent_dir(np))) {
        rc = DM_ENOMEM;
        goto fail;
    }
    if ((rc = save_durable(F, path, np, &op.has_saved, &op.saved,
                           &op.saved_len)))
        goto fail;
    if ((rc = b->unlink(b, path))) {
        rc = base_err(F, rc);
        goto fail;
    }
    node_orphan(F, node_find(F, np));
    if (op.has_saved) {
        op.path = np;
        np = NULL;
        ops_push(F, &op);
    }
    rc = DM_OK;
fail:
    nsop_release(&op);
    unlock(F);
    dm_free(np);
    return rc;
}

static int f_sync_dir(vfs *v, const char *dir)
{
    vfs_fault *F = F_of(v);
    char *nd = NULL;
    int rc;
    lock(F);
    if (F->is_crashed) {
        rc = fake_err(F, DM_EIO, "sync_dir(crashed)");
        goto out;
    }
    if ((rc = sync_gate(F, VFS_OP_SYNC_DIR, "sync_dir(injected)")))
        goto out;
    if (!(nd = norm_path(dir))) {
        rc = DM_ENOMEM;
        goto out;
    }
    if ((rc = F->base->sync_dir(F->base, dir))) {
        rc = base_err(F, rc);
        goto out;
    }
    /* Everything pending in this directory is durable now. */
    size_t w = 0;
    for (size_t i = 0; i < F->n_ops; i++) {
        nsop *o = &F->ops[i];
        if (streq(o->dir, nd)) {
            dm_free(o->dir);
            o->dir = NULL;
        }
        if (streq(o->dir2, nd)) {
            dm_free(o->dir2);
            o->dir2 = NULL;
        }
        if (!o->dir && !o->dir2)
            nsop_drop(F, o);
        else
            F->ops[w++] = *o;
    }
    F->n_ops = w;
    F->n_syncs++;
out:
    unlock(F);
    dm_free(nd);
    return rc;
}

static int f_mkdir(vfs *v, const char *path)
{
    vfs_fault *F = F_of(v);
    int rc;
    lock(F);
    if (F->is_crashed)
        rc = fake_err(F, DM_EIO, "mkdir(crashed)");
    else if ((rc = count_call(F, VFS_OP_MKDIR)))
        rc = fake_err(F, rc, "mkdir(injected)");
    else if ((rc = F->base->mkdir(F->base, path)))
        rc = base_err(F, rc);
    unlock(F);
    return rc;
}

static int f_list(vfs *v, const char *dir, char ***names, size_t *n)
{
    vfs_fault *F = F_of(v);
    lock(F);
    int rc = F->is_crashed ? fake_err(F, DM_EIO, "list(crashed)") : DM_OK;
    unlock(F);
    if (rc) {
        *names = NULL;
        *n = 0;
        return rc;
    }
    return F->base->list(F->base, dir, names, n);
}

static int f_file_size(vfs *v, const char *path, uint64_t *size)
{
    vfs_fault *F = F_of(v);
    lock(F);
    int rc = F->is_crashed ? fake_err(F, DM_EIO, "file_size(crashed)") : DM_OK;
    unlock(F);
    if (rc) {
        *size = 0;
        return rc;
    }
    return F->base->file_size(F->base, path, size);
}

static int f_lock(vfs *v, const char *path, vfs_file **out)
{
    vfs_fault *F = F_of(v);
    vfs_file *h = NULL, *bh = NULL;
    int rc;
    *out = NULL;
    lock(F);
    if (F->is_crashed) {
        rc = fake_err(F, DM_EIO, "lock(crashed)");
        goto fail;
    }
    if (!(h = dm_malloc(sizeof *h))) {
        rc = DM_ENOMEM;
        goto fail;
    }
    if ((rc = F->base->lock(F->base, path, &bh))) {
        rc = base_err(F, rc);
        goto fail;
    }
    h->base = bh;
    h->node = NULL;
    h->gen = F->gen;
    F->n_handles++;
    unlock(F);
    *out = h;
    return DM_OK;
fail:
    unlock(F);
    dm_free(h);
    return rc;
}

static int f_unlock(vfs *v, vfs_file *h)
{
    if (!h)
        return DM_OK;
    vfs_fault *F = F_of(v);
    lock(F);
    bool is_gone = is_dead(F, h);
    int rc = F->base->unlock(F->base, h->base);
    if (rc)
        rc = is_gone ? DM_OK : base_err(F, rc);
    handle_release(F, h);
    unlock(F);
    return rc;
}

/* ---- control ---------------------------------------------------------- */

int vfs_fault_new(vfs *base, uint64_t seed, vfs_fault **out)
{
    if (!out)
        return DM_EINVAL;
    *out = NULL;
    if (!base)
        return DM_EINVAL;
    vfs_fault *F = dm_calloc(1, sizeof *F);
    if (!F)
        return DM_ENOMEM;
    if (pthread_mutex_init(&F->mu, NULL) != 0) {
        dm_free(F);
        return DM_ENOMEM;
    }
    F->base = base;
    F->rng = seed;
    F->is_partial_appends = true;
    F->table = (vfs){
        .name = "fault",
        .open = f_open, .close = f_close, .pread = f_pread,
        .append = f_append, .sync = f_sync, .truncate = f_truncate,
        .size = f_size, .mmap = f_mmap, .munmap = f_munmap,
        .rename = f_rename, .unlink = f_unlink, .sync_dir = f_sync_dir,
        .mkdir = f_mkdir, .list = f_list, .file_size = f_file_size,
        .lock = f_lock, .unlock = f_unlock,
        .drop_pages = base->drop_pages ? f_drop_pages : NULL,
        .ctx = F,
    };
    *out = F;
    return DM_OK;
}

void vfs_fault_free(vfs_fault *F)
{
    if (!F)
        return;
    assert(F->n_handles == 0 && "vfs_fault_free with open handles");
    ops_clear(F);
    dm_free(F->ops);
    for (size_t i = 0; i < F->n_nodes; i++) {
        dm_free(F->nodes[i]->path);
        dm_free(F->nodes[i]);
    }
    dm_free(F->nodes);
    pthread_mutex_destroy(&F->mu);
    dm_free(F);
}

vfs *vfs_fault_vfs(vfs_fault *F)
{
    return &F->table;
}

void vfs_fault_fail_nth(vfs_fault *F, enum vfs_fault_op op, uint64_t n,
                        int err, bool is_persistent)
{
    if ((unsigned)op >= VFS_OP_COUNT_)
        return;
    lock(F);
    struct fail_spec *s = &F->fail[op];
    s->at = n ? F->calls[op] + n : 0;
    s->err = err < 0 ? err : DM_EIO;
    s->is_persistent = is_persistent;
    unlock(F);
}

void vfs_fault_partial_appends(vfs_fault *F, bool on)
{
    lock(F);
    F->is_partial_appends = on;
    unlock(F);
}

uint64_t vfs_fault_calls(vfs_fault *F, enum vfs_fault_op op)
{
    if ((unsigned)op >= VFS_OP_COUNT_)
        return 0;
    lock(F);
    uint64_t c = F->calls[op];
    unlock(F);
    return c;
}

void vfs_fault_crash_at_sync(vfs_fault *F, uint64_t n)
{
    lock(F);
    F->crash_countdown = n;
    unlock(F);
}

void vfs_fault_crash_now(vfs_fault *F)
{
    lock(F);
    F->is_crashed = true;
    F->crash_countdown = 0;
    unlock(F);
}

bool vfs_fault_crashed(vfs_fault *F)
{
    lock(F);
    bool c = F->is_crashed;
    unlock(F);
    return c;
}

uint64_t vfs_fault_syncs(vfs_fault *F)
{
    lock(F);
    uint64_t s = F->n_syncs;
    unlock(F);
    return s;
}

/*
 * reset_locked -- the body of vfs_fault_reset.  Nodes in use by open
 * handles survive (a handle points at its node); with is_detach they also
 * lose their path, so that they no longer describe the post-crash files.
 * Caller holds mu.
 */
static void reset_locked(vfs_fault *F, bool is_detach)
{
    memset(F->calls, 0, sizeof F->calls);
    memset(F->fail, 0, sizeof F->fail);
    F->n_syncs = 0;
    F->crash_countdown = 0;
    F->is_crashed = false;
    ops_clear(F);
    size_t w = 0;
    for (size_t i = 0; i < F->n_nodes; i++) {
        fnode *n = F->nodes[i];
        if (n->n_open == 0) {
            dm_free(n->path);
            dm_free(n);
            continue;
        }
        if (is_detach) {
            dm_free(n->path);
            n->path = NULL;
        } else if (n->path) {
            uint64_t size = 0;
            if (F->base->file_size(F->base, n->path, &size) == DM_OK)
                n->durable_len = size;
        }
        F->nodes[w++] = n;
    }
    F->n_nodes = w;
}

void vfs_fault_reset(vfs_fault *F)
{
    lock(F);
    reset_locked(F, false);
    unlock(F);
}

/* Writes `len` bytes as the whole content of path.  Caller holds mu. */
static int put_file(vfs_fault *F, const char *path, const void *data,
                    size_t len)
{
    vfs *b = F->base;
    vfs_file *bh = NULL;
    int rc = b->open(b, path, VFS_RDWR | VFS_CREATE | VFS_TRUNC, &bh);
    if (rc == DM_OK && len)
        rc = b->append(b, bh, data, len);
    int crc = b->close(b, bh);
    return rc ? rc : crc;
}

/* Cuts one tracked file back to what survives the power cut. */
static int crash_file(vfs_fault *F, const fnode *n, enum vfs_tear mode)
{
    vfs *b = F->base;
    uint64_t size = 0;
    if (b->file_size(b, n->path, &size) != DM_OK)
        return DM_OK; /* gone behind our back: nothing to cut */
    uint64_t durable = n->durable_len < size ? n->durable_len : size;
    uint64_t keep = durable;
    if (mode != VFS_TEAR_NONE)
        keep += rng_below(F, size - durable + 1);
    uint64_t garbage = 0;
    if (mode == VFS_TEAR_GARBAGE)
        garbage = keep - durable < TORN_SECTOR ? keep - durable : TORN_SECTOR;
    if (keep == size && garbage == 0)
        return DM_OK;
    uint8_t junk[TORN_SECTOR];
    for (uint64_t i = 0; i < garbage; i++)
        junk[i] = (uint8_t)rng_next(F);
    vfs_file *bh = NULL;
    int rc = b->open(b, n->path, VFS_RDWR, &bh);
    if (rc == DM_OK)
        rc = b->truncate(b, bh, keep - garbage);
    if (rc == DM_OK && garbage)
        rc = b->append(b, bh, junk, (size_t)garbage);
    int crc = b->close(b, bh);
    return rc ? rc : crc;
}

/* Undoes one pending namespace change.  Caller holds mu. */
static int undo_op(vfs_fault *F, const nsop *o)
{
    vfs *b = F->base;
    uint64_t size;
    int rc = DM_OK;
    switch (o->kind) {
    case NS_CREATE:
        rc = b->unlink(b, o->path);
        if (rc == DM_ENOTFOUND)
            rc = DM_OK;
        break;
    case NS_RENAME:
        if (b->file_size(b, o->path, &size) == DM_OK)
            rc = b->rename(b, o->path, o->from);
        if (rc == DM_OK && o->has_saved)
            rc = put_file(F, o->path, o->saved, o->saved_len);
        break;
    case NS_UNLINK:
        rc = put_file(F, o->path, o->saved, o->saved_len);
        break;
    }
    return rc;
}

int vfs_fault_apply_crash(vfs_fault *F, enum vfs_tear mode)
{
    int rc = DM_OK, r;
    lock(F);
    F->is_crashed = true;
    for (size_t i = 0; i < F->n_nodes; i++) {
        if (F->nodes[i]->path && (r = crash_file(F, F->nodes[i], mode)) &&
            rc == DM_OK)
            rc = r;
    }
    size_t cut = 0;
    if (mode != VFS_TEAR_NONE)
        cut = (size_t)rng_below(F, (uint64_t)F->n_ops + 1);
    for (size_t i = F->n_ops; i > cut; i--) {
        if ((r = undo_op(F, &F->ops[i - 1])) && rc == DM_OK)
            rc = r;
    }
    if (rc)
        base_err(F, rc);
    reset_locked(F, true);
    F->gen++;
    unlock(F);
    return rc;
}
