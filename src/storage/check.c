/*
 * check.c -- kv_check, the offline verifier behind `deltamemory check`.
 *
 * What it does.  Reads every file the database in a directory depends on
 * and reports each problem through the caller's callback:
 *   1. the MANIFEST (man_decode: envelope, checksum, every field);
 *   2. every SSTable the MANIFEST lists: present, of the recorded size,
 *      every block and checksum (sst_verify), the recorded entry count,
 *      and the first/last internal keys equal to the recorded smallest and
 *      largest keys;
 *   3. the MANIFEST's level structure: files of level >= 1 must not
 *      overlap within their level (ikey_cmp order), because reads and
 *      compaction binary-search those levels;
 *   4. every live WAL file (number >= MANIFEST log_number), record by
 *      record (wal_replay without truncation).  A torn tail is what a
 *      crash leaves behind and recovery drops it quietly, so it is not a
 *      problem; damage before the tail is.
 * Without a MANIFEST but with WAL files the database never flushed: every
 * WAL is live and checked.  With a MANIFEST that cannot be decoded, the
 * live set is unknown, so every *.sst and *.wal in the directory is
 * checked as a best effort (the MANIFEST problem is reported either way).
 * SSTables the MANIFEST does not list (a flush or compaction that crashed
 * before its commit) and WALs below log_number are obsolete leftovers the
 * engine deletes; they are not checked and not problems.
 *
 * Problems are reported as (file, offset, reason) where file is the name
 * inside the directory ("000012.sst", "MANIFEST"), never a full path, so
 * callers print "DIR/FILE: offset N: reason".  Offsets of MANIFEST
 * entry-level problems (overlaps) are computed from the format
 * (docs/format.md "MANIFEST").
 *
 * Safety.  Read-only: no lock file, no recovery, no truncation, nothing
 * written or removed, so it may run next to a live process (it then sees
 * whatever state the files are in; a file deleted under it is skipped).
 * Reentrant: all state lives in a check_ctx on the stack.
 */
#include "storage/kv.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "storage/filename.h"
#include "storage/ikey.h"
#include "storage/manifest.h"
#include "storage/manifest_format.h"
#include "storage/sstable.h"
#include "storage/wal.h"
#include "storage/wal_format.h"

typedef struct check_ctx {
    const char *dir;
    vfs *v;
    kv_check_fn fn;
    void *arg;
    kv_check_stats st;
    const char *cur_wal_path;            /* the log being replayed */
    const wal_replay_stats *cur_wal_stats;
} check_ctx;

__attribute__((format(printf, 4, 5)))
static void problem(check_ctx *c, const char *file, uint64_t off,
                    const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    c->st.problems++;
    if (c->fn)
        c->fn(c->arg, file, off, why);
}

/* The name of a file inside the directory, from a path handed back by the
 * SSTable or WAL code. */
static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void on_sst_damage(void *arg, const char *path, uint64_t off,
                          const char *reason)
{
    problem(arg, base_name(path), off, "%s", reason);
}

static void on_wal_damage(void *arg, const char *path, uint64_t off,
                          uint64_t len, const char *reason)
{
    problem(arg, base_name(path), off, "%s (%" PRIu64 " bytes skipped)",
            reason, len);
}

/* Valid records still need a well-formed write batch inside. */
static int on_wal_record(void *arg, uint64_t seq, uint8_t type,
                         buf_slice payload)
{
    check_ctx *c = arg;
    uint32_t count;
    if (type != WAL_REC_BATCH || kv_batch_validate(payload, &count)) {
        uint64_t rec_len = WAL_RECORD_HEADER_LEN + payload.len;
        uint64_t end = c->cur_wal_stats->valid_end;
        problem(c, base_name(c->cur_wal_path), end >= rec_len ? end - rec_len : 0,
                "malformed write batch in a record with valid checksums");
    }
    return DM_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Reports a decoder message "offset N: reason" as (file, N, reason). */
static void report_msg(check_ctx *c, const char *file, const char *msg)
{
    unsigned long long off = 0;
    int skip = 0;
    if (sscanf(msg, "offset %llu: %n", &off, &skip) == 1 && skip > 0)
        problem(c, file, off, "%s", msg + skip);
    else
        problem(c, file, 0, "%s", msg);
}

/* Compares the table's first and last keys with the MANIFEST's record. */
static int check_bounds(check_ctx *c, const char *path, const char *name,
                        const man_file *mf)
{
    sst_reader *r = NULL;
    iter *it = NULL;
    int rc = sst_reader_open(c->v, path, mf->number, NULL, &r);
    if (rc == DM_ENOMEM)
        goto fail;
    if (rc) {
        report_msg(c, name, err_last_msg());
        rc = DM_OK;
        goto fail;
    }
    if (!(it = sst_iter_new(r))) {
        rc = DM_ENOMEM;
        goto fail;
    }
    buf_slice want[2] = { buf_slice_of(mf->smallest.ptr, mf->smallest.len),
                          buf_slice_of(mf->largest.ptr, mf->largest.len) };
    for (int i = 0; i < 2; i++) {
        if (i == 0)
            iter_seek_first(it);
        else
            iter_seek_last(it);
        if ((rc = iter_status(it))) {
            if (rc == DM_ENOMEM)
                goto fail;
            report_msg(c, name, err_last_msg());
            rc = DM_OK;
            goto fail;
        }
        if (!iter_valid(it)) {
            problem(c, name, 0, "table is empty but the MANIFEST records a "
                    "key range");
            goto fail;
        }
        if (buf_slice_cmp(iter_key(it), want[i]) != 0)
            problem(c, name, 0, "%s key differs from the MANIFEST's %s key",
                    i == 0 ? "first" : "last",
                    i == 0 ? "smallest" : "largest");
    }
fail:
    iter_free(it);
    sst_reader_unref(r);
    return rc;
}

/* Checks one SSTable; mf is its MANIFEST record, or NULL when the
 * MANIFEST is unreadable.  Problems are reported, not returned; the
 * return value is DM_OK or DM_ENOMEM. */
static int check_sst(check_ctx *c, uint64_t number, const man_file *mf)
{
    char path[FN_PATH_MAX];
    fn_make(path, c->dir, number, FN_SST);
    const char *name = base_name(path);
    uint64_t size = 0, n_entries = 0;

    int rc = c->v->file_size(c->v, path, &size);
    if (rc == DM_ENOTFOUND) {
        if (mf)
            problem(c, name, 0, "missing: the MANIFEST lists it at level %"
                    PRIu32 " with %" PRIu64 " bytes", mf->level, mf->size);
        return DM_OK;
    }
    c->st.files_checked++;
    if (rc) {
        problem(c, name, 0, "cannot read its size: %s", dm_errname(rc));
        return DM_OK;
    }
    if (mf && size != mf->size)
        problem(c, name, size < mf->size ? size : mf->size,
                "file size %" PRIu64 " differs from the MANIFEST's %" PRIu64,
                size, mf->size);

    uint64_t before = c->st.problems;
    rc = sst_verify(c->v, path, on_sst_damage, c, &n_entries);
    if (rc == DM_OK) {
        c->st.sst_entries += n_entries;
        if (mf && n_entries != mf->n_entries)
            problem(c, name, 0, "holds %" PRIu64 " entries, the MANIFEST "
                    "says %" PRIu64, n_entries, mf->n_entries);
        if (mf)
            return check_bounds(c, path, name, mf);
        return DM_OK;
    }
    if (rc == DM_ENOMEM)
        return rc;
    /* Every failure is a problem for a checker; make sure one is
     * reported even when the verifier gave only a message. */
    if (c->st.problems == before) {
        if (rc == DM_ECORRUPT || rc == DM_EVERSION)
            report_msg(c, name, err_last_msg());
        else
            problem(c, name, 0, "read error: %s (%s)", dm_errname(rc),
                    err_last_msg());
    }
    return DM_OK;
}

/* Checks one WAL file.  DM_OK or DM_ENOMEM. */
static int check_wal(check_ctx *c, uint64_t number)
{
    char path[FN_PATH_MAX];
    fn_make(path, c->dir, number, FN_WAL);
    const char *name = base_name(path);
    wal_replay_stats ws;
    memset(&ws, 0, sizeof ws);
    uint64_t before = c->st.problems;
    c->cur_wal_path = path;
    c->cur_wal_stats = &ws;
    int rc = wal_replay(c->v, path, false, on_wal_record, on_wal_damage, c,
                        &ws);
    if (rc == DM_ENOTFOUND)
        return DM_OK; /* removed since the listing: obsolete */
    c->st.files_checked++;
    c->st.wal_records += ws.records;
    if (rc == DM_OK || rc == DM_ENOMEM)
        return rc;
    if (c->st.problems == before) {
        if (rc == DM_ECORRUPT || rc == DM_EVERSION)
            report_msg(c, name, err_last_msg());
        else
            problem(c, name, 0, "read error: %s (%s)", dm_errname(rc),
                    err_last_msg());
    }
    return DM_OK;
}

/* Byte offset of each file entry in the MANIFEST image, following the
 * body layout (docs/format.md "MANIFEST"). */
static void entry_offsets(const man_state *ms, uint64_t *off)
{
    uint64_t o = MAN_HEADER_LEN + varint_len(ms->next_file) +
                 varint_len(ms->last_seq) + varint_len(ms->log_number) +
                 varint_len(ms->n_files);
    for (uint32_t i = 0; i < ms->n_files; i++) {
        const man_file *f = &ms->files[i];
        off[i] = o;
        o += varint_len(f->level) + varint_len(f->number) +
             varint_len(f->size) + varint_len(f->n_entries) +
             varint_len(f->smallest.len) + f->smallest.len +
             varint_len(f->largest.len) + f->largest.len;
    }
}

typedef struct level_ent {
    const man_file *f;
    uint64_t off;
} level_ent;

static int cmp_smallest(const void *a, const void *b)
{
    const man_file *x = ((const level_ent *)a)->f;
    const man_file *y = ((const level_ent *)b)->f;
    return ikey_cmp(buf_slice_of(x->smallest.ptr, x->smallest.len),
                    buf_slice_of(y->smallest.ptr, y->smallest.len));
}

/* Levels >= 1 must hold files with disjoint key ranges.  DM_OK or
 * DM_ENOMEM. */
static int check_levels(check_ctx *c, const man_state *ms)
{
    uint64_t *offs = NULL;
    level_ent *ents = NULL;
    int rc = DM_OK;
    if (ms->n_files < 2)
        return DM_OK;
    offs = dm_malloc(ms->n_files * sizeof *offs);
    ents = dm_malloc(ms->n_files * sizeof *ents);
    if (!offs || !ents) {
        rc = DM_ENOMEM;
        goto fail;
    }
    entry_offsets(ms, offs);
    for (uint32_t level = 1; level < KV_MAX_LEVELS; level++) {
        size_t n = 0;
        for (uint32_t i = 0; i < ms->n_files; i++) {
            if (ms->files[i].level == level) {
                ents[n].f = &ms->files[i];
                ents[n].off = offs[i];
                n++;
            }
        }
        if (n > 1)
            qsort(ents, n, sizeof *ents, cmp_smallest);
        for (size_t i = 1; i < n; i++) {
            const man_file *a = ents[i - 1].f, *b = ents[i].f;
            if (ikey_cmp(buf_slice_of(a->largest.ptr, a->largest.len),
                         buf_slice_of(b->smallest.ptr, b->smallest.len)) >= 0)
                problem(c, FN_MANIFEST, ents[i].off,
                        "level %" PRIu32 ": key range of %06" PRIu64 ".sst "
                        "overlaps %06" PRIu64 ".sst", level, b->number,
                        a->number);
        }
    }
fail:
    dm_free(ents);
    dm_free(offs);
    return rc;
}

int kv_check(const char *dir, vfs *v, kv_check_fn on_problem, void *arg,
             kv_check_stats *st)
{
    check_ctx c = { .dir = dir, .v = v ? v : vfs_posix(), .fn = on_problem,
                    .arg = arg };
    char **names = NULL;
    size_t n_names = 0, n_wals = 0, n_ssts = 0;
    uint64_t *wals = NULL, *ssts = NULL;
    uint8_t *img = NULL;
    size_t img_len = 0;
    man_state ms = { 0 };
    bool has_manifest = false, is_manifest_bad = false;
    char mpath[FN_PATH_MAX];
    int rc;

    if (st)
        memset(st, 0, sizeof *st);
    if (!dir || snprintf(mpath, sizeof mpath, "%s/%s", dir, FN_MANIFEST) >=
                    (int)sizeof mpath) {
        rc = err_set_msg(DM_EINVAL, "kv_check: bad directory path");
        goto fail;
    }

    rc = c.v->list(c.v, dir, &names, &n_names);
    if (rc == DM_ENOTFOUND) {
        err_set_msg(rc, "%s: no database (the directory does not exist)",
                    dir);
        goto fail;
    }
    if (rc) {
        err_set_msg(rc, "%s: cannot list the directory: %s", dir,
                    dm_errname(rc));
        goto fail;
    }
    if (n_names) {
        wals = dm_malloc(n_names * sizeof *wals);
        ssts = dm_malloc(n_names * sizeof *ssts);
        if (!wals || !ssts) {
            rc = DM_ENOMEM;
            goto fail;
        }
    }
    for (size_t i = 0; i < n_names; i++) {
        uint64_t num;
        switch (fn_parse(names[i], &num)) {
        case FN_WAL: wals[n_wals++] = num; break;
        case FN_SST: ssts[n_ssts++] = num; break;
        default: break;
        }
    }
    /* Directory order is arbitrary; report in file-number order. */
    if (n_wals > 1)
        qsort(wals, n_wals, sizeof *wals, cmp_u64);
    if (n_ssts > 1)
        qsort(ssts, n_ssts, sizeof *ssts, cmp_u64);

    rc = vfs_read_all(c.v, mpath, &img, &img_len);
    if (rc == DM_ENOTFOUND) {
        if (!n_wals) {
            err_set_msg(rc, "%s: no database (no MANIFEST and no WAL files)",
                        dir);
            goto fail;
        }
    } else if (rc == DM_ENOMEM) {
        goto fail;
    } else if (rc) {
        c.st.files_checked++;
        is_manifest_bad = true;
        problem(&c, FN_MANIFEST, 0, "read error: %s", dm_errname(rc));
    } else {
        c.st.files_checked++;
        /* No path: the message is "offset N: reason", parsed back here. */
        rc = man_decode(buf_slice_of(img, img_len), NULL, &ms);
        if (rc == DM_ENOMEM)
            goto fail;
        if (rc) {
            is_manifest_bad = true;
            report_msg(&c, FN_MANIFEST, err_last_msg());
        } else {
            has_manifest = true;
        }
    }
    rc = DM_OK;

    if (has_manifest) {
        for (uint32_t i = 0; i < ms.n_files; i++)
            if ((rc = check_sst(&c, ms.files[i].number, &ms.files[i])))
                goto fail;
        if ((rc = check_levels(&c, &ms)))
            goto fail;
    } else if (is_manifest_bad) {
        /* The live set is unknown: every table present is what we can
         * check.  (With no MANIFEST at all no table was ever committed,
         * and a table left by a crashed first flush is not a problem.) */
        for (size_t i = 0; i < n_ssts; i++)
            if ((rc = check_sst(&c, ssts[i], NULL)))
                goto fail;
    }
    for (size_t i = 0; i < n_wals; i++) {
        if (has_manifest && wals[i] < ms.log_number)
            continue; /* obsolete: its data is in the SSTables */
        if ((rc = check_wal(&c, wals[i])))
            goto fail;
    }

    if (c.st.problems)
        rc = err_set_msg(DM_ECORRUPT, "%s: %" PRIu64 " problem%s found", dir,
                         c.st.problems, c.st.problems == 1 ? "" : "s");
fail:
    if (st)
        *st = c.st;
    man_state_fini(&ms);
    dm_free(img);
    dm_free(ssts);
    dm_free(wals);
    vfs_list_free(names, n_names);
    return rc;
}
