/*
 * compaction.c -- memtable flushes and leveled compaction.
 *
 * DESIGN
 * Two background threads: the flush thread writes the oldest immutable
 * memtable to a new level-0 SSTable; the compaction thread keeps the tree
 * in shape.  Separate threads so that a long compaction never holds up a
 * flush (writers stall only when max_immutable memtables wait).
 *
 * Leveled compaction (docs/design.md explains the choice):
 *   - level 0 holds flushed tables, which may overlap; when it has
 *     l0_compaction_trigger files, all of them are merged with the level-1
 *     files they overlap into new level-1 files;
 *   - level L >= 1 is sorted and non-overlapping, with a size target of
 *     level1_max_bytes * 10^(L-1); when over it, one file (round robin
 *     through the key space) is merged with the files of L+1 it overlaps;
 *   - a file with nothing to merge with in the next level is moved down
 *     without rewriting it.
 * Output files are cut at target_file_size, but never between two entries
 * of the same user key, so that a point read finds all versions of a key
 * in one file per level >= 1.
 *
 * What compaction drops (this is how deleted data leaves the disk):
 *   - an entry hidden by a newer entry of the same key that every snapshot
 *     can see (seq of the newer one <= smallest snapshot);
 *   - a tombstone every snapshot can see, when no deeper level holds the key
 *     (nothing left for it to hide).
 *
 * Locking: picking and installing happen under mu (install under man_mu);
 * merging runs without mu.  Compactions are serialised by cmp_mu, so the
 * levels >= 1 only change under cmp_mu; a flush only adds to level 0.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/thread.h"
#include "storage/filename.h"
#include "storage/ikey.h"
#include "storage/kv_int.h"

uint64_t cpt_max_bytes_for_level(const kv_db *db, int level)
{
    uint64_t b = db->opt.level1_max_bytes;
    for (int l = 1; l < level; l++)
        b *= 10;
    return b;
}

static buf_slice fkey_small(const kv_file *f)
{
    return buf_slice_of(f->smallest.ptr, f->smallest.len);
}

static buf_slice fkey_large(const kv_file *f)
{
    return buf_slice_of(f->largest.ptr, f->largest.len);
}

static uint64_t level_bytes(const kv_version *v, int l)
{
    uint64_t b = 0;
    for (size_t i = 0; i < v->n[l]; i++)
        b += v->files[l][i]->size;
    return b;
}

/* ---------------------------------------------------------------- flush */

/* write_table -- writes the entries of `it` (already positioned) to a new
 * table `number` until it ends or, when cut_size > 0, the table reaches
 * cut_size at a user-key boundary.  *info->n_entries == 0 means nothing
 * was written (the file is removed).  `drop` decides which entries to
 * leave out (NULL keeps everything). */
typedef struct drop_state {
    uint64_t smallest_snap;
    buf cur_user;
    bool has_cur;
    uint64_t last_seq_for_key;
    const kv_version *v;
    int out_level;
    uint64_t n_dropped;
} drop_state;

static bool is_base_level_for_key(const drop_state *ds, buf_slice user)
{
    for (int l = ds->out_level + 1; l < KV_MAX_LEVELS; l++) {
        const kv_version *v = ds->v;
        for (size_t i = 0; i < v->n[l]; i++) {
            const kv_file *f = v->files[l][i];
            if (buf_slice_cmp(user, ikey_user(fkey_large(f))) <= 0) {
                if (buf_slice_cmp(user, ikey_user(fkey_small(f))) >= 0)
                    return false;
                break;
            }
        }
    }
    return true;
}

static bool should_drop(drop_state *ds, buf_slice ikey)
{
    buf_slice user = ikey_user(ikey);
    uint64_t seq = ikey_seq(ikey);
    if (!ds->has_cur || buf_slice_cmp(user, buf_slice_of(ds->cur_user.ptr, ds->cur_user.len))) {
        buf_clear(&ds->cur_user);
        if (buf_append(&ds->cur_user, user.ptr, user.len)) {
            ds->has_cur = false; /* keep everything rather than guess */
            return false;
        }
        ds->has_cur = true;
        ds->last_seq_for_key = UINT64_MAX;
    }
    bool drop = false;
    if (ds->last_seq_for_key <= ds->smallest_snap)
        drop = true; /* a newer entry visible to every reader hides it */
    else if (ikey_type(ikey) == IKEY_DEL && seq <= ds->smallest_snap &&
             is_base_level_for_key(ds, user))
        drop = true; /* nothing below for the tombstone to hide */
    ds->last_seq_for_key = seq;
    return drop;
}

static int write_table(kv_db *db, iter *it, uint64_t number, uint64_t cut_size,
                       drop_state *ds, sst_info *info, uint64_t *bytes_in)
{
    char path[FN_PATH_MAX];
    fn_make(path, db->dir, number, FN_SST);
    sst_builder *b = NULL;
    memset(info, 0, sizeof *info);
    sst_options topt = db->opt.table;
    if (ds) /* a compaction, not a flush */
        topt.lz4_hc_level = db->opt.compaction_lz4_hc_level;
    int rc = sst_builder_open(db->vfs, path, &topt, &b);
    if (rc)
        return rc;
    buf last_user;
    buf_init(&last_user);
    for (; iter_valid(it); iter_next(it)) {
        buf_slice k = iter_key(it), v = iter_value(it);
        if (k.len < IKEY_TRAILER_LEN) {
            rc = err_set_msg(DM_ECORRUPT, "internal key of %zu bytes", k.len);
            break;
        }
        if (cut_size && sst_builder_size(b) >= cut_size &&
            buf_slice_cmp(ikey_user(k), buf_slice_of(last_user.ptr, last_user.len)) != 0)
            break;
        if (bytes_in)
            *bytes_in += k.len + v.len;
        if (ds && should_drop(ds, k)) {
            ds->n_dropped++;
            continue;
        }
        if ((rc = sst_builder_add(b, k, v)))
            break;
        if (cut_size) {
            buf_clear(&last_user);
            buf_slice u = ikey_user(k);
            if ((rc = buf_append(&last_user, u.ptr, u.len)))
                break;
        }
    }
    buf_fini(&last_user);
    if (!rc)
        rc = iter_status(it);
    if (rc) {
        sst_builder_abandon(b);
        db->vfs->unlink(db->vfs, path);
        return rc;
    }
    bool is_empty = sst_builder_entries(b) == 0;
    rc = sst_builder_finish(b, info);
    if (rc || is_empty) {
        sst_info_fini(info);
        memset(info, 0, sizeof *info);
        db->vfs->unlink(db->vfs, path);
    }
    return rc;
}

/* flush_one -- writes the oldest immutable memtable to level 0.
 * REQUIRES: mu held on entry and exit; called by the flush thread only. */
static int flush_one(kv_db *db)
{
    kv_mem *m = db->imm_head;
    uint64_t number = db->next_file++;
    pthread_mutex_unlock(&db->mu);

    kv_edit edit;
    memset(&edit, 0, sizeof edit);
    sst_info info;
    memset(&info, 0, sizeof info);
    int rc = DM_OK;
    iter *it = mt_iter_new(m->table);
    if (!it)
        rc = DM_ENOMEM;
    if (!rc) {
        iter_seek_first(it);
        rc = write_table(db, it, number, 0, NULL, &info, NULL);
    }
    iter_free(it);
    kv_file *f = NULL;
    if (!rc && info.n_entries) {
        rc = kv_file_new(db, number, 0, &info, &f);
        if (!rc && (rc = kv_edit_add(&edit, f, 0)))
            kv_file_unref(f);
    }
    if (!rc) {
        pthread_mutex_lock(&db->mu);
        /* Every log older than the next memtable's is now redundant. */
        edit.has_log_number = true;
        edit.log_number = m->next ? m->next->log_number : db->mem->log_number;
        edit.has_flushed_seq = true;
        edit.flushed_seq = mt_last_seq(m->table);
        pthread_mutex_unlock(&db->mu);
        pthread_mutex_lock(&db->man_mu);
        rc = kv_install(db, &edit);
        pthread_mutex_unlock(&db->man_mu);
    } else {
        kv_edit_fini(&edit);
    }
    uint64_t written = info.file_size;
    sst_info_fini(&info);

    pthread_mutex_lock(&db->mu);
    if (rc) {
        kv_set_bg_error(db, rc);
        return rc;
    }
    db->imm_head = m->next;
    if (!db->imm_head)
        db->imm_tail = NULL;
    db->n_imm--;
    db->st.n_flushes++;
    db->st.flush_bytes_written += written;
    rc = kv_super_rebuild(db);
    if (rc)
        kv_set_bg_error(db, rc);
    mt_unref(m->table);
    dm_free(m);
    return rc;
}

void *cpt_flush_main(void *arg)
{
    pthread_setname_np(pthread_self(), "dm-flush");
    kv_db *db = arg;
    /* Below the request threads, above compaction: a flush has the time
     * the next memtable takes to fill (seconds), so its compression and
     * write can yield to the requests. */
    if (!thread_set_nice(5))
        LOG_D("flush thread keeps the default priority");
    pthread_mutex_lock(&db->mu);
    for (;;) {
        while (!db->is_closing && (!db->imm_head || db->bg_error)) {
            /* Tables whose last reader let go since the last install are
             * deleted here, within a second. */
            if (kv_reap_pending(db)) {
                pthread_mutex_unlock(&db->mu);
                kv_reap(db);
                pthread_mutex_lock(&db->mu);
                continue;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&db->bg_cv, &db->mu, &ts);
        }
        if (db->is_closing)
            break;
        db->is_flushing = true;
        flush_one(db);
        db->is_flushing = false;
        pthread_cond_broadcast(&db->bg_done_cv);
        pthread_cond_broadcast(&db->bg_cv); /* the compaction thread */
    }
    pthread_mutex_unlock(&db->mu);
    return NULL;
}

/* ----------------------------------------------------------- compaction */

typedef struct compaction {
    int level;           /* inputs from level and level + 1 */
    int out_level;
    kv_version *v;       /* the version the inputs were picked from */
    size_t n_in[2];
    kv_file **in[2];
    bool is_manual;
} compaction;

static void compaction_fini(compaction *c)
{
    for (int i = 0; i < 2; i++)
        dm_free(c->in[i]);
    kv_version_unref(c->v);
    memset(c, 0, sizeof *c);
}

/* add_overlapping -- every file of `level` overlapping [lo, hi] (user keys;
 * NULL = unbounded) into *arr. */
static int add_overlapping(const kv_version *v, int level, const buf_slice *lo,
                           const buf_slice *hi, kv_file ***arr, size_t *n)
{
    *arr = NULL;
    *n = 0;
    if (!v->n[level])
        return DM_OK;
    kv_file **a = dm_malloc(v->n[level] * sizeof *a);
    if (!a)
        return DM_ENOMEM;
    for (size_t i = 0; i < v->n[level]; i++) {
        kv_file *f = v->files[level][i];
        if (lo && buf_slice_cmp(ikey_user(fkey_large(f)), *lo) < 0)
            continue;
        if (hi && buf_slice_cmp(ikey_user(fkey_small(f)), *hi) > 0)
            continue;
        a[(*n)++] = f;
    }
    *arr = a;
    return DM_OK;
}

static void range_of(kv_file **fs, size_t n, buf_slice *lo, buf_slice *hi)
{
    for (size_t i = 0; i < n; i++) {
        buf_slice s = ikey_user(fkey_small(fs[i])), l = ikey_user(fkey_large(fs[i]));
        if (i == 0 || buf_slice_cmp(s, *lo) < 0)
            *lo = s;
        if (i == 0 || buf_slice_cmp(l, *hi) > 0)
            *hi = l;
    }
}

bool cpt_needs_compaction(kv_db *db)
{
    if (db->opt.disable_auto_compaction)
        return false;
    const kv_version *v = db->current;
    if ((int)v->n[0] >= db->opt.l0_compaction_trigger)
        return true;
    for (int l = 1; l < KV_MAX_LEVELS - 1; l++)
        if (level_bytes(v, l) > cpt_max_bytes_for_level(db, l))
            return true;
    return false;
}

/* pick -- REQUIRES mu.  Chooses the most urgent compaction. */
static int pick(kv_db *db, compaction *c)
{
    memset(c, 0, sizeof *c);
    const kv_version *v = db->current;
    double best = 0;
    int level = -1;
    double s0 = (double)v->n[0] / (double)db->opt.l0_compaction_trigger;
    if (s0 >= 1.0) {
        best = s0;
        level = 0;
    }
    for (int l = 1; l < KV_MAX_LEVELS - 1; l++) {
        double s = (double)level_bytes(v, l) / (double)cpt_max_bytes_for_level(db, l);
        if (s > 1.0 && s > best) {
            best = s;
            level = l;
        }
    }
    if (level < 0)
        return DM_ENOTFOUND;
    c->level = level;
    c->out_level = level + 1;
    c->v = db->current;
    kv_version_ref(c->v);
    int rc;
    if (level == 0) {
        if ((rc = add_overlapping(v, 0, NULL, NULL, &c->in[0], &c->n_in[0])))
            return rc;
    } else {
        /* round robin: the first file past the last compacted key */
        buf *ptr = &db->compact_ptr[level];
        size_t i = 0;
        if (ptr->len)
            while (i < v->n[level] &&
                   ikey_cmp(fkey_large(v->files[level][i]), buf_slice_of(ptr->ptr, ptr->len)) <= 0)
                i++;
        if (i == v->n[level])
            i = 0;
        if (!(c->in[0] = dm_malloc(sizeof *c->in[0])))
            return DM_ENOMEM;
        c->in[0][0] = v->files[level][i];
        c->n_in[0] = 1;
        buf_clear(ptr);
        if ((rc = buf_append(ptr, c->in[0][0]->largest.ptr, c->in[0][0]->largest.len)))
            return rc;
    }
    buf_slice lo, hi;
    range_of(c->in[0], c->n_in[0], &lo, &hi);
    return add_overlapping(v, c->out_level, &lo, &hi, &c->in[1], &c->n_in[1]);
}

/* run -- merges the inputs into new files of out_level and installs the
 * result.  REQUIRES: cmp_mu held, mu not held. */
static int run(kv_db *db, compaction *c)
{
    kv_edit edit;
    memset(&edit, 0, sizeof edit);
    int rc = DM_OK;
    uint64_t bytes_read = 0, bytes_written = 0;

    /* A single file with nothing below it moves down unchanged. */
    if (c->n_in[0] == 1 && c->n_in[1] == 0 && !c->is_manual) {
        kv_file *f = c->in[0][0];
        kv_file_ref(f);
        if ((rc = kv_edit_add(&edit, f, c->out_level))) {
            kv_file_unref(f);
            goto done;
        }
        if ((rc = kv_edit_del(&edit, f->number)))
            goto done;
        pthread_mutex_lock(&db->man_mu);
        rc = kv_install(db, &edit);
        pthread_mutex_unlock(&db->man_mu);
        goto done;
    }

    size_t n = c->n_in[0] + c->n_in[1];
    iter **kids = dm_calloc(n ? n : 1, sizeof *kids);
    if (!kids) {
        rc = DM_ENOMEM;
        goto done;
    }
    size_t k = 0;
    for (int w = 0; w < 2 && !rc; w++)
        for (size_t i = 0; i < c->n_in[w] && !rc; i++) {
            if ((rc = kv_edit_del(&edit, c->in[w][i]->number)))
                break;
            if (!(kids[k++] = sst_iter_new(c->in[w][i]->reader)))
                rc = DM_ENOMEM;
        }
    iter *it = NULL;
    if (rc) {
        for (size_t i = 0; i < k; i++)
            iter_free(kids[i]);
    } else if (!(it = iter_merge_new(ikey_cmp, kids, k))) {
        rc = DM_ENOMEM; /* iter_merge_new has freed the children */
    }
    dm_free(kids);
    if (rc)
        goto done;

    drop_state ds;
    memset(&ds, 0, sizeof ds);
    buf_init(&ds.cur_user);
    ds.v = c->v;
    ds.out_level = c->out_level;
    pthread_mutex_lock(&db->mu);
    ds.smallest_snap = kv_smallest_snapshot(db);
    pthread_mutex_unlock(&db->mu);

    iter_seek_first(it);
    while (!rc && iter_valid(it)) {
        pthread_mutex_lock(&db->mu);
        uint64_t number = db->next_file++;
        bool is_closing = db->is_closing && !c->is_manual;
        pthread_mutex_unlock(&db->mu);
        if (is_closing) {
            rc = DM_ECANCELED;
            break;
        }
        sst_info info;
        rc = write_table(db, it, number, db->opt.target_file_size, &ds, &info, &bytes_read);
        if (!rc && info.n_entries) {
            kv_file *f = NULL;
            bytes_written += info.file_size;
            rc = kv_file_new(db, number, c->out_level, &info, &f);
            if (!rc && (rc = kv_edit_add(&edit, f, c->out_level)))
                kv_file_unref(f);
        }
        sst_info_fini(&info);
    }
    if (!rc)
        rc = iter_status(it);
    iter_free(it);
    buf_fini(&ds.cur_user);
    if (!rc) {
        pthread_mutex_lock(&db->man_mu);
        rc = kv_install(db, &edit);
        pthread_mutex_unlock(&db->man_mu);
    }
done:
    kv_edit_fini(&edit);
    pthread_mutex_lock(&db->mu);
    if (rc && rc != DM_ECANCELED)
        kv_set_bg_error(db, rc);
    if (!rc) {
        db->st.n_compactions++;
        db->st.compact_bytes_read += bytes_read;
        db->st.compact_bytes_written += bytes_written;
    }
    pthread_cond_broadcast(&db->bg_done_cv);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

void *cpt_compact_main(void *arg)
{
    pthread_setname_np(pthread_self(), "dm-compact");
    kv_db *db = arg;
    /* Compaction can wait longest: below the request threads and the
     * flush thread in CPU priority. */
    if (!thread_set_nice(10))
        LOG_D("compaction thread keeps the default priority");
    pthread_mutex_lock(&db->mu);
    for (;;) {
        while (!db->is_closing && (db->bg_error || db->manual_compactions ||
                                   !cpt_needs_compaction(db)))
            pthread_cond_wait(&db->bg_cv, &db->mu);
        if (db->is_closing)
            break;
        pthread_mutex_unlock(&db->mu);
        pthread_mutex_lock(&db->cmp_mu);
        pthread_mutex_lock(&db->mu);
        compaction c;
        int rc = pick(db, &c);
        db->is_compacting = !rc;
        pthread_mutex_unlock(&db->mu);
        if (!rc)
            run(db, &c);
        else if (rc != DM_ENOTFOUND) {
            pthread_mutex_lock(&db->mu);
            kv_set_bg_error(db, rc);
            pthread_mutex_unlock(&db->mu);
        }
        compaction_fini(&c); /* drops the inputs' last references */
        kv_reap(db);
        pthread_mutex_unlock(&db->cmp_mu);
        pthread_mutex_lock(&db->mu);
        db->is_compacting = false;
    }
    pthread_mutex_unlock(&db->mu);
    return NULL;
}

int cpt_compact_range(kv_db *db, const buf_slice *begin, const buf_slice *end)
{
    int rc = DM_OK;
    pthread_mutex_lock(&db->mu);
    db->manual_compactions++;
    pthread_mutex_unlock(&db->mu);
    pthread_mutex_lock(&db->cmp_mu);

    pthread_mutex_lock(&db->mu);
    int deepest = 0;
    for (int l = 0; l < KV_MAX_LEVELS; l++)
        if (db->current->n[l])
            deepest = l;
    pthread_mutex_unlock(&db->mu);

    /* Push every level above the deepest one down into it (level 0 alone
     * goes to level 1).  The deepest level is not rewritten: everything that
     * arrives there is merged on the way, dropping what is hidden or
     * deleted, so a second call on a compacted tree does no work. */
    int last = deepest > 0 ? deepest - 1 : 0;
    for (int l = 0; l <= last && !rc; l++) {
        compaction c;
        memset(&c, 0, sizeof c);
        c.is_manual = true;
        c.level = l;
        c.out_level = l + 1 < KV_MAX_LEVELS ? l + 1 : l;
        pthread_mutex_lock(&db->mu);
        c.v = db->current;
        kv_version_ref(c.v);
        /* Level-0 files overlap each other: compacting some of them would
         * move a newer version below an older one that stays in level 0,
         * so level 0 is always compacted whole. */
        rc = l == 0 ? add_overlapping(c.v, 0, NULL, NULL, &c.in[0], &c.n_in[0])
                    : add_overlapping(c.v, l, begin, end, &c.in[0], &c.n_in[0]);
        if (!rc && c.n_in[0] && c.out_level != l) {
            buf_slice lo, hi;
            range_of(c.in[0], c.n_in[0], &lo, &hi);
            rc = add_overlapping(c.v, c.out_level, &lo, &hi, &c.in[1], &c.n_in[1]);
        }
        rc = rc ? rc : db->bg_error;
        pthread_mutex_unlock(&db->mu);
        if (!rc && c.n_in[0])
            rc = run(db, &c);
        compaction_fini(&c);
        kv_reap(db);
    }

    pthread_mutex_unlock(&db->cmp_mu);
    pthread_mutex_lock(&db->mu);
    db->manual_compactions--;
    pthread_cond_broadcast(&db->bg_cv);
    pthread_mutex_unlock(&db->mu);
    return rc;
}
