/*
 * kv.c -- the storage engine: open and recovery, the group-commit write
 * path, point reads, snapshots, version installs, stats and close.
 *
 * DESIGN
 * Writes: every kv_write enqueues a kv_writer under mu.  The writer at the
 * head of the queue is the leader: it makes room (switching to a fresh
 * memtable and WAL when the active one is full), gathers the batches of
 * the writers queued behind it (a "group"), releases mu, appends one WAL
 * record per batch, flushes them with one write call, syncs once if any
 * member asked for it, inserts every batch into the memtable, re-takes mu,
 * publishes the new last sequence number and wakes the group.  So N
 * concurrent writers share one write and one fsync, and the memtable has
 * a single writer at any time (its readers need no lock).
 *
 * KV_SYNC_BATCH: the leader waits until sync_interval_ms have passed since
 * the previous sync, gathers everyone who queued meanwhile, and syncs once
 * for all of them; each is acknowledged after that sync.
 *
 * Reads pin a kv_super (active memtable, immutable memtables, current
 * version) with one reference taken under mu and then search without any
 * lock: memtable, immutables newest first, L0 files newest first, then one
 * file per deeper level.
 *
 * Recovery: read the MANIFEST, open every live SSTable, replay every live
 * WAL (number >= log_number) in order into memtables without flushing (a
 * full memtable becomes immutable and is flushed by the background thread
 * after open returns), skip records whose sequence numbers are already in
 * the SSTables, start a new WAL.  Damage in the middle of a WAL is skipped
 * and reported; a torn tail is dropped quietly.
 *
 * Failures: the first failed WAL append or sync, or background write, is
 * stored in bg_error; from then on every write returns it (a failed fsync
 * is never retried: the page cache state after it is unknown).
 *
 * Locks and their order are described in kv_int.h and docs/design.md.
 */
#include "storage/kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "storage/filename.h"
#include "storage/ikey.h"
#include "storage/wal_format.h"

const uint32_t kv_sync_bucket_us[KV_SYNC_BUCKETS - 1] = DM_WAL_SYNC_BOUNDS_US;

/* ------------------------------------------------------------ options */

kv_options kv_options_default(void)
{
    kv_options o;
    memset(&o, 0, sizeof o);
    o.vfs = NULL;
    o.create_if_missing = true;
    o.error_if_exists = false;
    o.write_buffer_size = 16u << 20;
    o.max_immutable = 4;
    o.sync = KV_SYNC_BATCH;
    o.sync_interval_ms = 10;
    o.block_cache_size = 64u << 20;
    o.table = sst_options_default();
    /* Memory text compresses about 2x; LZ4 decompresses a 4 KB block in
     * about a microsecond, so reads barely notice it. */
    o.table.compression = SST_COMP_LZ4;
    /* Compaction output lives long: pack it denser (about 3 % smaller on
     * memory text) at no cost to reads, which decompress LZ4 HC output
     * exactly as fast. */
    o.compaction_lz4_hc_level = 4;
    o.l0_compaction_trigger = 4;
    o.l0_stop_trigger = 20;
    o.level1_max_bytes = 64u << 20;
    o.target_file_size = 16u << 20;
    o.disable_auto_compaction = false;
    o.paranoid_checks = false;
    return o;
}

/* ------------------------------------------------------------ batches */

#define BATCH_HEADER 4

kv_batch *kv_batch_new(void)
{
    kv_batch *b = dm_calloc(1, sizeof *b);
    if (!b)
        return NULL;
    buf_init(&b->rep);
    if (buf_put_u32(&b->rep, 0)) {
        dm_free(b);
        return NULL;
    }
    return b;
}

void kv_batch_free(kv_batch *b)
{
    if (!b)
        return;
    buf_fini(&b->rep);
    dm_free(b);
}

void kv_batch_clear(kv_batch *b)
{
    b->rep.len = BATCH_HEADER;
    enc_u32(b->rep.ptr, 0);
    b->count = 0;
    b->user_bytes = 0;
}

static int check_key(buf_slice key)
{
    if (key.len == 0 || key.len > KV_MAX_KEY_LEN)
        return err_set_msg(DM_EINVAL, "key length %zu out of range 1..%u",
                           key.len, KV_MAX_KEY_LEN);
    return DM_OK;
}

static int batch_append(kv_batch *b, int type, buf_slice key, buf_slice value)
{
    int rc = check_key(key);
    if (rc)
        return rc;
    if (type == IKEY_PUT && value.len > KV_MAX_VALUE_LEN)
        return err_set_msg(DM_EINVAL, "value length %zu over the limit %u",
                           value.len, KV_MAX_VALUE_LEN);
    size_t need = 1 + 2 * BUF_VARINT64_MAX + key.len + value.len;
    if ((rc = buf_reserve(&b->rep, need)))
        return rc;
    uint8_t *p = b->rep.ptr + b->rep.len;
    *p++ = (uint8_t)type;
    p += enc_varint(p, key.len);
    memcpy(p, key.ptr, key.len);
    p += key.len;
    if (type == IKEY_PUT) {
        p += enc_varint(p, value.len);
        if (value.len)
            memcpy(p, value.ptr, value.len);
        p += value.len;
    }
    b->rep.len = (size_t)(p - b->rep.ptr);
    b->count++;
    enc_u32(b->rep.ptr, b->count);
    b->user_bytes += key.len + (type == IKEY_PUT ? value.len : 0);
    return DM_OK;
}

int kv_batch_put(kv_batch *b, buf_slice key, buf_slice value)
{
    return batch_append(b, IKEY_PUT, key, value);
}

int kv_batch_delete(kv_batch *b, buf_slice key)
{
    return batch_append(b, IKEY_DEL, key, buf_slice_of(NULL, 0));
}

uint32_t kv_batch_count(const kv_batch *b)
{
    return b->count;
}

size_t kv_batch_size(const kv_batch *b)
{
    return b->rep.len;
}

/*
 * batch_apply -- inserts the entries of an encoded batch into mt with
 * sequence numbers seq, seq+1, ...  The payload may come from disk, so it
 * is validated completely before anything is inserted (a batch is applied
 * whole or not at all).  *count receives the entry count.
 */
int kv_batch_validate(buf_slice rep, uint32_t *count)
{
    buf_slice s = rep;
    uint32_t n;
    if (!get_u32(&s, &n) || n == 0)
        return DM_ECORRUPT;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t type;
        buf_slice k, v;
        if (!get_u8(&s, &type) || (type != IKEY_PUT && type != IKEY_DEL) ||
            !get_lenbytes(&s, &k) || k.len == 0 || k.len > KV_MAX_KEY_LEN)
            return DM_ECORRUPT;
        if (type == IKEY_PUT && (!get_lenbytes(&s, &v) || v.len > KV_MAX_VALUE_LEN))
            return DM_ECORRUPT;
    }
    if (s.len != 0)
        return DM_ECORRUPT;
    *count = n;
    return DM_OK;
}

static int batch_apply(mt_table *mt, uint64_t seq, buf_slice rep)
{
    buf_slice s = rep;
    uint32_t n = 0;
    get_u32(&s, &n);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t type = IKEY_PUT;
        buf_slice k, v = buf_slice_of(NULL, 0);
        get_u8(&s, &type);
        get_lenbytes(&s, &k);
        if (type == IKEY_PUT)
            get_lenbytes(&s, &v);
        int rc = mt_add(mt, seq + i, type, k, v);
        if (rc)
            return rc;
    }
    return DM_OK;
}

/* -------------------------------------------------- files and versions */

void kv_file_ref(kv_file *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

/* Queues file `number` for kv_reap; false when out of memory. */
static bool doom_push(kv_db *db, uint64_t number, int type)
{
    pthread_mutex_lock(&db->doom_mu);
    bool ok = true;
    if (db->n_doom == db->cap_doom) {
        size_t nc = db->cap_doom ? db->cap_doom * 2 : 16;
        struct kv_doomed *nd = dm_realloc(db->doom, nc * sizeof *nd);
        if (nd) {
            db->doom = nd;
            db->cap_doom = nc;
        } else {
            ok = false;
        }
    }
    if (ok)
        db->doom[db->n_doom++] = (struct kv_doomed){ number, type };
    pthread_mutex_unlock(&db->doom_mu);
    return ok;
}

static void unlink_file(kv_db *db, uint64_t number, int type)
{
    char path[FN_PATH_MAX];
    fn_make(path, db->dir, number, type);
    int rc = db->vfs->unlink(db->vfs, path);
    if (rc && rc != DM_ENOTFOUND)
        LOG_W("%s: could not remove obsolete %s: %s", path,
              type == FN_WAL ? "log" : "table", dm_strerror(rc));
}

bool kv_reap_pending(kv_db *db)
{
    pthread_mutex_lock(&db->doom_mu);
    bool any = db->n_doom > 0;
    pthread_mutex_unlock(&db->doom_mu);
    return any;
}

void kv_reap(kv_db *db)
{
    pthread_mutex_lock(&db->doom_mu);
    struct kv_doomed *d = db->doom;
    size_t n = db->n_doom;
    db->doom = NULL;
    db->n_doom = db->cap_doom = 0;
    pthread_mutex_unlock(&db->doom_mu);
    for (size_t i = 0; i < n; i++)
        if (!atomic_load(&db->is_shutdown_keep_files))
            unlink_file(db, d[i].number, d[i].type);
    dm_free(d);
}

void kv_file_unref(kv_file *f)
{
    if (!f || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* The last reference: no version lists the file any more, so it is
     * obsolete -- unless the database is closing, when every file is
     * released but stays live on disk. */
    kv_db *db = f->db;
    sst_reader_unref(f->reader);
    if (db && !atomic_load(&db->is_shutdown_keep_files) && !doom_push(db, f->number, FN_SST))
        unlink_file(db, f->number, FN_SST); /* no memory to queue it: now */
    buf_fini(&f->smallest);
    buf_fini(&f->largest);
    dm_free(f);
}

int kv_file_new(kv_db *db, uint64_t number, int level, const sst_info *info,
                kv_file **out)
{
    char path[FN_PATH_MAX];
    *out = NULL;
    kv_file *f = dm_calloc(1, sizeof *f);
    if (!f)
        return DM_ENOMEM;
    atomic_init(&f->refs, 1);
    f->number = number;
    f->size = info->file_size;
    f->n_entries = info->n_entries;
    f->level = level;
    f->db = db;
    buf_init(&f->smallest);
    buf_init(&f->largest);
    int rc = buf_append(&f->smallest, info->smallest.ptr, info->smallest.len);
    if (!rc)
        rc = buf_append(&f->largest, info->largest.ptr, info->largest.len);
    if (!rc) {
        fn_make(path, db->dir, number, FN_SST);
        rc = sst_reader_open_ex(db->vfs, path, number, db->cache,
                                db->opt.pread_tables ? SST_OPEN_PREAD : 0, &f->reader);
    }
    if (rc) {
        f->db = NULL; /* never unlink on a failed wrap */
        kv_file_unref(f);
        return rc;
    }
    sst_reader_set_page_clock(f->reader, &db->page_clock);
    *out = f;
    return DM_OK;
}

void kv_version_ref(kv_version *v)
{
    atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
}

void kv_version_unref(kv_version *v)
{
    if (!v || atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (int l = 0; l < KV_MAX_LEVELS; l++) {
        for (size_t i = 0; i < v->n[l]; i++)
            kv_file_unref(v->files[l][i]);
        dm_free(v->files[l]);
    }
    dm_free(v);
}

static kv_version *version_new(void)
{
    kv_version *v = dm_calloc(1, sizeof *v);
    if (v)
        atomic_init(&v->refs, 1);
    return v;
}

static int cmp_l0(const void *a, const void *b)
{
    const kv_file *x = *(kv_file *const *)a, *y = *(kv_file *const *)b;
    return x->number > y->number ? -1 : x->number < y->number ? 1 : 0;
}

static int cmp_smallest(const void *a, const void *b)
{
    const kv_file *x = *(kv_file *const *)a, *y = *(kv_file *const *)b;
    return ikey_cmp(buf_slice_of(x->smallest.ptr, x->smallest.len),
                    buf_slice_of(y->smallest.ptr, y->smallest.len));
}

void kv_edit_fini(kv_edit *e)
{
    for (size_t i = 0; i < e->n_add; i++)
        kv_file_unref(e->add[i].file);
    dm_free(e->add);
    dm_free(e->del);
    memset(e, 0, sizeof *e);
}

int kv_edit_add(kv_edit *e, kv_file *f, int level)
{
    if (e->n_add == e->cap_add) {
        size_t nc = e->cap_add ? e->cap_add * 2 : 8;
        kv_edit_entry *na = dm_realloc(e->add, nc * sizeof *na);
        if (!na)
            return DM_ENOMEM;
        e->add = na;
        e->cap_add = nc;
    }
    e->add[e->n_add].file = f;
    e->add[e->n_add].level = level;
    e->n_add++;
    return DM_OK;
}

int kv_edit_del(kv_edit *e, uint64_t number)
{
    if (e->n_del == e->cap_del) {
        size_t nc = e->cap_del ? e->cap_del * 2 : 8;
        uint64_t *nd = dm_realloc(e->del, nc * sizeof *nd);
        if (!nd)
            return DM_ENOMEM;
        e->del = nd;
        e->cap_del = nc;
    }
    e->del[e->n_del++] = number;
    return DM_OK;
}

static bool edit_deletes(const kv_edit *e, uint64_t number)
{
    for (size_t i = 0; i < e->n_del; i++)
        if (e->del[i] == number)
            return true;
    return false;
}

/* version_apply -- base + edit as a new version (edit's files get a
 * reference of the new version; the edit keeps its own). */
static int version_apply(const kv_version *base, const kv_edit *e,
                         kv_version **out)
{
    *out = NULL;
    kv_version *v = version_new();
    if (!v)
        return DM_ENOMEM;
    for (int l = 0; l < KV_MAX_LEVELS; l++) {
        size_t cap = (base ? base->n[l] : 0);
        for (size_t i = 0; i < e->n_add; i++)
            cap += e->add[i].level == l;
        if (!cap)
            continue;
        v->files[l] = dm_malloc(cap * sizeof *v->files[l]);
        if (!v->files[l]) {
            kv_version_unref(v);
            return DM_ENOMEM;
        }
        for (size_t i = 0; base && i < base->n[l]; i++) {
            kv_file *f = base->files[l][i];
            if (edit_deletes(e, f->number))
                continue;
            kv_file_ref(f);
            v->files[l][v->n[l]++] = f;
        }
        for (size_t i = 0; i < e->n_add; i++) {
            if (e->add[i].level != l)
                continue;
            kv_file_ref(e->add[i].file);
            v->files[l][v->n[l]++] = e->add[i].file;
        }
        qsort(v->files[l], v->n[l], sizeof *v->files[l],
              l == 0 ? cmp_l0 : cmp_smallest);
    }
    *out = v;
    return DM_OK;
}

static int version_to_manifest(const kv_version *v, man_state *s)
{
    size_t n = 0;
    for (int l = 0; l < KV_MAX_LEVELS; l++)
        n += v->n[l];
    s->n_files = 0;
    s->files = n ? dm_calloc(n, sizeof *s->files) : NULL;
    if (n && !s->files)
        return DM_ENOMEM;
    for (int l = 0; l < KV_MAX_LEVELS; l++) {
        for (size_t i = 0; i < v->n[l]; i++) {
            const kv_file *f = v->files[l][i];
            man_file *m = &s->files[s->n_files++];
            m->level = (uint32_t)l;
            m->number = f->number;
            m->size = f->size;
            m->n_entries = f->n_entries;
            buf_init(&m->smallest);
            buf_init(&m->largest);
            if (buf_append(&m->smallest, f->smallest.ptr, f->smallest.len) ||
                buf_append(&m->largest, f->largest.ptr, f->largest.len))
                return DM_ENOMEM;
        }
    }
    return DM_OK;
}

/* ------------------------------------------------------- super versions */

void kv_super_unref(kv_super *sv)
{
    if (!sv || atomic_fetch_sub_explicit(&sv->refs, 1, memory_order_acq_rel) != 1)
        return;
    mt_unref(sv->mem);
    for (size_t i = 0; i < sv->n_imm; i++)
        mt_unref(sv->imm[i]);
    dm_free(sv->imm);
    kv_version_unref(sv->version);
    dm_free(sv);
}

int kv_super_rebuild(kv_db *db)
{
    kv_super *sv = dm_calloc(1, sizeof *sv);
    if (!sv)
        return DM_ENOMEM;
    atomic_init(&sv->refs, 1);
    if (db->n_imm) {
        sv->imm = dm_malloc((size_t)db->n_imm * sizeof *sv->imm);
        if (!sv->imm) {
            dm_free(sv);
            return DM_ENOMEM;
        }
    }
    sv->mem = db->mem->table;
    mt_ref(sv->mem);
    /* newest first: the imm list is oldest first */
    size_t n = (size_t)db->n_imm;
    sv->n_imm = n;
    size_t i = n;
    for (kv_mem *m = db->imm_head; m; m = m->next) {
        sv->imm[--i] = m->table;
        mt_ref(m->table);
    }
    sv->version = db->current;
    kv_version_ref(sv->version);
    kv_super *old = db->super;
    db->super = sv;
    kv_super_unref(old);
    return DM_OK;
}

static kv_super *super_acquire(kv_db *db, uint64_t *seq)
{
    pthread_mutex_lock(&db->mu);
    kv_super *sv = db->super;
    atomic_fetch_add_explicit(&sv->refs, 1, memory_order_relaxed);
    if (seq)
        *seq = atomic_load_explicit(&db->last_seq, memory_order_acquire);
    pthread_mutex_unlock(&db->mu);
    return sv;
}

/* ------------------------------------------------------------- errors */

void kv_set_bg_error(kv_db *db, int rc)
{
    if (rc && !db->bg_error) {
        db->bg_error = rc;
        /* After a failed MANIFEST commit nobody knows which file set is
         * live on disk (the rename may have happened), and after any other
         * failure nothing more is installed: stop deleting files.  The next
         * open removes what its MANIFEST does not name. */
        atomic_store(&db->is_shutdown_keep_files, true);
        /* Whoever waits for background progress must see the failure. */
        pthread_cond_broadcast(&db->bg_done_cv);
        pthread_cond_broadcast(&db->bg_cv);
        LOG_E("%s: storage engine stopped accepting writes: %s (%s)", db->dir,
              dm_strerror(rc), err_last_msg());
    }
}

uint64_t kv_smallest_snapshot(kv_db *db)
{
    if (db->snap_list.next != &db->snap_list)
        return db->snap_list.next->seq;
    return atomic_load(&db->last_seq);
}

/* ------------------------------------------------------------ install */

static void delete_obsolete_wals(kv_db *db)
{
    /* REQUIRES mu.  WAL files below log_number hold only flushed data. */
    size_t keep = 0;
    for (size_t i = 0; i < db->n_live_wals; i++) {
        uint64_t n = db->live_wals[i];
        if (n < db->log_number && n != db->wal_number) {
            if (!doom_push(db, n, FN_WAL))
                unlink_file(db, n, FN_WAL); /* no memory to queue it: now */
        } else {
            db->live_wals[keep++] = n;
        }
    }
    db->n_live_wals = keep;
}

/* edit_only_moves -- every added file is one the edit also deletes (a
 * file moving down a level), so no new file appears. */
static bool edit_only_moves(const kv_edit *e)
{
    for (size_t i = 0; i < e->n_add; i++)
        if (!edit_deletes(e, e->add[i].file->number))
            return false;
    return true;
}

int kv_install(kv_db *db, kv_edit *edit)
{
    man_state ms;
    memset(&ms, 0, sizeof ms);
    kv_version *v = NULL;

    pthread_mutex_lock(&db->mu);
    int rc = version_apply(db->current, edit, &v);
    uint64_t log_number = edit->has_log_number ? edit->log_number : db->log_number;
    uint64_t flushed = edit->has_flushed_seq && edit->flushed_seq > db->flushed_seq
                           ? edit->flushed_seq : db->flushed_seq;
    if (!rc) {
        ms.next_file = db->next_file;
        ms.last_seq = flushed;
        ms.log_number = log_number;
        rc = version_to_manifest(v, &ms);
    }
    pthread_mutex_unlock(&db->mu);

    /* New tables must have durable directory entries before a MANIFEST
     * that names them can be: file systems do not promise to order the
     * two. */
    if (!rc && edit->n_add && !edit_only_moves(edit))
        rc = db->vfs->sync_dir(db->vfs, db->dir);
    if (!rc)
        rc = man_write(db->vfs, db->dir, &ms);
    man_state_fini(&ms);

    pthread_mutex_lock(&db->mu);
    if (rc) {
        kv_set_bg_error(db, rc);
        pthread_mutex_unlock(&db->mu);
        kv_version_unref(v);
        kv_edit_fini(edit);
        return rc;
    }
    kv_version *old = db->current;
    db->current = v;
    db->log_number = log_number;
    db->flushed_seq = flushed;
    rc = kv_super_rebuild(db);
    if (rc)
        kv_set_bg_error(db, rc);
    delete_obsolete_wals(db);
    pthread_mutex_unlock(&db->mu);
    kv_version_unref(old);
    kv_edit_fini(edit);
    kv_reap(db);
    return rc;
}

/* ----------------------------------------------------------------- WAL */

static int live_wal_add(kv_db *db, uint64_t n)
{
    if (db->n_live_wals == db->cap_live_wals) {
        size_t nc = db->cap_live_wals ? db->cap_live_wals * 2 : 8;
        uint64_t *na = dm_realloc(db->live_wals, nc * sizeof *na);
        if (!na)
            return DM_ENOMEM;
        db->live_wals = na;
        db->cap_live_wals = nc;
    }
    db->live_wals[db->n_live_wals++] = n;
    return DM_OK;
}

/* open_new_wal -- creates WAL `number`; wal_writer_open syncs the file
 * header and the directory, so the log's directory entry is durable
 * before any record in it is acknowledged. */
static int open_new_wal(kv_db *db, uint64_t number, wal_writer **out)
{
    char path[FN_PATH_MAX];
    fn_make(path, db->dir, number, FN_WAL);
    return wal_writer_open(db->vfs, path, number, out);
}

static kv_mem *kv_mem_new(uint64_t log_number)
{
    kv_mem *m = dm_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (mt_new(&m->table)) {
        dm_free(m);
        return NULL;
    }
    m->log_number = log_number;
    return m;
}

static void kv_mem_free(kv_mem *m)
{
    if (!m)
        return;
    mt_unref(m->table);
    dm_free(m);
}

/* ----------------------------------------------------------- write path */

static int l0_count(kv_db *db)
{
    return (int)db->current->n[0];
}

/*
 * make_room -- REQUIRES mu held by the write leader.  Switches to a new
 * memtable and WAL when the active memtable is full; stalls while too many
 * immutable memtables or L0 files wait for the background threads.
 * With force, switches whenever the active memtable is not empty.
 */
static int make_room(kv_db *db, bool force)
{
    uint64_t stall_t0 = 0;
    for (;;) {
        if (stall_t0) {
            db->st.stall_us += clock_mono_us() - stall_t0;
            stall_t0 = 0;
        }
        if (db->bg_error)
            return db->bg_error;
        if (db->is_closing)
            return DM_ECLOSED;
        if (force ? mt_count(db->mem->table) == 0
                  : mt_mem_usage(db->mem->table) < db->opt.write_buffer_size)
            return DM_OK;
        if (db->n_imm >= db->opt.max_immutable ||
            (!db->opt.disable_auto_compaction && l0_count(db) >= db->opt.l0_stop_trigger)) {
            db->st.n_stalls++;
            stall_t0 = clock_mono_us();
            pthread_cond_broadcast(&db->bg_cv);
            pthread_cond_wait(&db->bg_done_cv, &db->mu);
            continue;
        }
        uint64_t number = db->next_file++;
        kv_mem *m = kv_mem_new(number);
        int rc = m ? live_wal_add(db, number) : DM_ENOMEM;
        wal_writer *w = NULL;
        pthread_mutex_unlock(&db->mu);
        if (!rc)
            rc = open_new_wal(db, number, &w);
        pthread_mutex_lock(&db->mu);
        if (rc) {
            kv_mem_free(m);
            kv_set_bg_error(db, rc);
            return rc;
        }
        wal_writer *old = db->wal;
        db->wal = w;
        db->wal_number = number;
        kv_mem *full = db->mem;
        full->next = NULL;
        if (db->imm_tail)
            db->imm_tail->next = full;
        else
            db->imm_head = full;
        db->imm_tail = full;
        db->n_imm++;
        db->mem = m;
        rc = kv_super_rebuild(db);
        pthread_cond_broadcast(&db->bg_cv);
        /* The old log was flushed by the last group; closing only releases
         * its descriptor. */
        int close_rc = wal_writer_close(old);
        rc = rc ? rc : close_rc;
        if (rc) {
            kv_set_bg_error(db, rc);
            return rc;
        }
    }
}

int kv_write(kv_db *db, const kv_write_options *wo, const kv_batch *b)
{
    if (!db || !b)
        return DM_EINVAL;
    if (b->count == 0)
        return DM_OK;
    kv_writer w;
    memset(&w, 0, sizeof w);
    w.batch = b;
    w.sync = (wo && wo->sync >= 0) ? wo->sync : db->opt.sync;
    if (w.sync < KV_SYNC_NONE || w.sync > KV_SYNC_ALWAYS)
        return err_set_msg(DM_EINVAL, "unknown sync policy %d", w.sync);
    pthread_cond_init(&w.cv, NULL);

    pthread_mutex_lock(&db->mu);
    if (db->is_closing) {
        pthread_mutex_unlock(&db->mu);
        pthread_cond_destroy(&w.cv);
        return DM_ECLOSED;
    }
    if (db->wq_tail)
        db->wq_tail->next = &w;
    else
        db->wq_head = &w;
    db->wq_tail = &w;
    while (!w.is_done && db->wq_head != &w)
        pthread_cond_wait(&w.cv, &db->mu);
    if (w.is_done) {
        pthread_mutex_unlock(&db->mu);
        pthread_cond_destroy(&w.cv);
        return w.rc;
    }

    /* We lead a group. */
    int rc = make_room(db, false);
    if (!rc && w.sync == KV_SYNC_BATCH) {
        uint64_t due = db->last_sync_us + (uint64_t)db->opt.sync_interval_ms * 1000u;
        uint64_t now = clock_mono_us();
        if (now < due) {
            pthread_mutex_unlock(&db->mu);
            struct timespec ts = { (time_t)((due - now) / 1000000u),
                                   (long)((due - now) % 1000000u) * 1000 };
            while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
            pthread_mutex_lock(&db->mu);
        }
    }
    kv_writer *last = &w;
    int sync = w.sync;
    size_t size = b->rep.len;
    size_t max = size <= (128u << 10) ? size + (128u << 10) : (1u << 20);
    for (kv_writer *p = w.next; p; p = p->next) {
        /* A writer without a batch is kv_flush waiting for its turn. */
        if (!p->batch || size + p->batch->rep.len > max)
            break;
        size += p->batch->rep.len;
        if (p->sync > sync)
            sync = p->sync;
        last = p;
    }
    uint64_t first_seq = atomic_load(&db->last_seq) + 1;
    uint64_t seq = first_seq;
    mt_table *mt = db->mem->table;
    wal_writer *wal = db->wal;
    pthread_mutex_unlock(&db->mu);

    uint64_t user_bytes = 0, n_batches = 0, sync_t0 = 0, sync_t1 = 0;
    uint64_t wal_before = rc ? 0 : wal_size(wal);
    if (!rc) {
        for (kv_writer *p = &w;; p = p->next) {
            rc = wal_add(wal, seq, WAL_REC_BATCH,
                         buf_slice_of(p->batch->rep.ptr, p->batch->rep.len));
            if (rc)
                break;
            seq += p->batch->count;
            user_bytes += p->batch->user_bytes;
            n_batches++;
            if (p == last)
                break;
        }
        if (!rc && sync != KV_SYNC_NONE) {
            sync_t0 = clock_mono_us();
            rc = wal_sync(wal);
            sync_t1 = clock_mono_us();
        } else if (!rc) {
            rc = wal_flush(wal);
        }
    }
    if (!rc) {
        uint64_t s = first_seq;
        for (kv_writer *p = &w;; p = p->next) {
            rc = batch_apply(mt, s, buf_slice_of(p->batch->rep.ptr, p->batch->rep.len));
            if (rc)
                break;
            s += p->batch->count;
            if (p == last)
                break;
        }
    }

    pthread_mutex_lock(&db->mu);
    if (rc) {
        kv_set_bg_error(db, rc);
    } else {
        atomic_store_explicit(&db->last_seq, seq - 1, memory_order_release);
        db->st.user_bytes_written += user_bytes;
        db->st.n_writes += n_batches;
        db->st.n_group_commits++;
        db->st.wal_bytes_written += wal_size(wal) - wal_before;
        if (sync != KV_SYNC_NONE) {
            uint64_t took = sync_t1 - sync_t0;
            unsigned bk = 0;
            while (bk < KV_SYNC_BUCKETS - 1 && took > kv_sync_bucket_us[bk])
                bk++;
            db->st.n_syncs++;
            db->st.sync_us += took;
            db->st.sync_buckets[bk]++;
            db->last_sync_us = sync_t1;
        }
    }
    for (;;) {
        kv_writer *p = db->wq_head;
        db->wq_head = p->next;
        if (p != &w) {
            p->rc = rc;
            p->is_done = true;
            pthread_cond_signal(&p->cv);
        }
        if (p == last)
            break;
    }
    if (!db->wq_head)
        db->wq_tail = NULL;
    else
        pthread_cond_signal(&db->wq_head->cv);
    pthread_mutex_unlock(&db->mu);
    pthread_cond_destroy(&w.cv);
    return rc;
}

int kv_put(kv_db *db, const kv_write_options *wo, buf_slice key, buf_slice value)
{
    /* A batch of one on the stack: no allocation for small entries. */
    uint8_t small[512];
    kv_batch b;
    b.rep.ptr = small;
    b.rep.len = 0;
    b.rep.cap = sizeof small;
    int rc = check_key(key);
    if (rc)
        return rc;
    if (value.len > KV_MAX_VALUE_LEN)
        return err_set_msg(DM_EINVAL, "value length %zu over the limit %u",
                           value.len, KV_MAX_VALUE_LEN);
    bool is_heap = key.len + value.len + 32 > sizeof small;
    if (is_heap) {
        buf_init(&b.rep);
        if ((rc = buf_put_u32(&b.rep, 0)))
            return rc;
    } else {
        b.rep.len = BATCH_HEADER;
        enc_u32(small, 0);
    }
    b.count = 0;
    b.user_bytes = 0;
    /* batch_append only grows the buffer when needed, so the stack buffer
     * is never passed to dm_realloc. */
    rc = batch_append(&b, IKEY_PUT, key, value);
    if (!rc)
        rc = kv_write(db, wo, &b);
    if (is_heap)
        buf_fini(&b.rep);
    return rc;
}

int kv_delete(kv_db *db, const kv_write_options *wo, buf_slice key)
{
    uint8_t small[KV_MAX_KEY_LEN + 32];
    kv_batch b;
    int rc = check_key(key);
    if (rc)
        return rc;
    b.rep.ptr = small;
    b.rep.len = BATCH_HEADER;
    b.rep.cap = sizeof small;
    enc_u32(small, 0);
    b.count = 0;
    b.user_bytes = 0;
    rc = batch_append(&b, IKEY_DEL, key, buf_slice_of(NULL, 0));
    if (!rc)
        rc = kv_write(db, wo, &b);
    return rc;
}

/* ---------------------------------------------------------------- reads */

int kv_version_get(kv_db *db, kv_version *v, sst_pins *pins, buf_slice key, uint64_t seq,
                   buf *value, bool *is_found)
{
    enum sst_get_result res = SST_NONE;
    int rc;
    *is_found = false;
    for (size_t i = 0; i < v->n[0]; i++) {
        kv_file *f = v->files[0][i];
        if (buf_slice_cmp(key, ikey_user(buf_slice_of(f->smallest.ptr, f->smallest.len))) < 0 ||
            buf_slice_cmp(key, ikey_user(buf_slice_of(f->largest.ptr, f->largest.len))) > 0)
            continue;
        if ((rc = sst_reader_get_pinned(f->reader, pins, key, seq, value, &res)))
            return rc;
        if (res != SST_NONE) {
            *is_found = res == SST_FOUND;
            return res == SST_FOUND ? DM_OK : DM_ENOTFOUND;
        }
    }
    uint8_t stack[256];
    uint8_t *seek = key.len + IKEY_TRAILER_LEN <= sizeof stack
                        ? stack : dm_malloc(key.len + IKEY_TRAILER_LEN);
    if (!seek)
        return DM_ENOMEM;
    ikey_encode(seek, key, seq, IKEY_SEEK_TYPE);
    buf_slice sk = buf_slice_of(seek, key.len + IKEY_TRAILER_LEN);
    rc = DM_ENOTFOUND;
    for (int l = 1; l < KV_MAX_LEVELS; l++) {
        size_t lo = 0, hi = v->n[l];
        kv_file **fs = v->files[l];
        while (lo < hi) { /* first file whose largest >= seek */
            size_t mid = lo + (hi - lo) / 2;
            if (ikey_cmp(buf_slice_of(fs[mid]->largest.ptr, fs[mid]->largest.len), sk) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == v->n[l])
            continue;
        kv_file *f = fs[lo];
        if (buf_slice_cmp(key, ikey_user(buf_slice_of(f->smallest.ptr, f->smallest.len))) < 0)
            continue;
        int grc = sst_reader_get_pinned(f->reader, pins, key, seq, value, &res);
        if (grc) {
            rc = grc;
            break;
        }
        if (res != SST_NONE) {
            *is_found = res == SST_FOUND;
            rc = res == SST_FOUND ? DM_OK : DM_ENOTFOUND;
            break;
        }
    }
    if (seek != stack)
        dm_free(seek);
    return rc;
}

/* The value of key in sv as of seq (value cleared first). */
static int get_in(kv_db *db, kv_super *sv, sst_pins *pins, uint64_t seq, buf_slice key,
                  buf *value)
{
    buf_clear(value);
    buf_slice v;
    enum mt_get_result r = mt_get(sv->mem, key, seq, &v);
    for (size_t i = 0; r == MT_NONE && i < sv->n_imm; i++)
        r = mt_get(sv->imm[i], key, seq, &v);
    if (r == MT_FOUND)
        return buf_append(value, v.ptr, v.len);
    if (r == MT_DELETED)
        return DM_ENOTFOUND;
    bool is_found;
    return kv_version_get(db, sv->version, pins, key, seq, value, &is_found);
}

int kv_get(kv_db *db, const kv_snapshot *snap, buf_slice key, buf *value)
{
    if (!db || !value)
        return DM_EINVAL;
    int rc = check_key(key);
    if (rc)
        return rc;
    uint64_t seq;
    kv_super *sv = super_acquire(db, &seq);
    if (snap)
        seq = snap->seq;
    rc = get_in(db, sv, NULL, seq, key, value);
    kv_super_unref(sv);
    return rc;
}

struct kv_view {
    kv_db *db;
    kv_super *sv;
    uint64_t seq;
    sst_pins pins; /* the blocks its gets read last */
};

int kv_view_open(kv_db *db, kv_view **out)
{
    *out = NULL;
    if (!db)
        return DM_EINVAL;
    kv_view *v = dm_malloc(sizeof *v);
    if (!v)
        return DM_ENOMEM;
    v->db = db;
    v->sv = super_acquire(db, &v->seq);
    v->pins = (sst_pins)SST_PINS_INIT;
    *out = v;
    return DM_OK;
}

int kv_view_get(kv_view *v, buf_slice key, buf *value)
{
    if (!v || !value)
        return DM_EINVAL;
    int rc = check_key(key);
    return rc ? rc : get_in(v->db, v->sv, &v->pins, v->seq, key, value);
}

void kv_view_close(kv_view *v)
{
    if (!v)
        return;
    sst_pins_release(&v->pins);
    kv_super_unref(v->sv);
    dm_free(v);
}

int kv_iter_new(kv_db *db, const kv_snapshot *snap, iter **out)
{
    *out = NULL;
    if (!db)
        return DM_EINVAL;
    uint64_t seq;
    kv_super *sv = super_acquire(db, &seq);
    if (snap)
        seq = snap->seq;
    kv_version *v = sv->version;
    size_t cap = 1 + sv->n_imm + v->n[0] + KV_MAX_LEVELS;
    iter **kids = dm_calloc(cap, sizeof *kids);
    size_t n = 0;
    int rc = kids ? DM_OK : DM_ENOMEM;
    if (!rc && !(kids[n++] = mt_iter_new(sv->mem)))
        rc = DM_ENOMEM;
    for (size_t i = 0; !rc && i < sv->n_imm; i++)
        if (!(kids[n++] = mt_iter_new(sv->imm[i])))
            rc = DM_ENOMEM;
    for (size_t i = 0; !rc && i < v->n[0]; i++)
        if (!(kids[n++] = sst_iter_new(v->files[0][i]->reader)))
            rc = DM_ENOMEM;
    for (int l = 1; !rc && l < KV_MAX_LEVELS; l++)
        if (v->n[l] && !(kids[n++] = kv_level_iter_new(v, l)))
            rc = DM_ENOMEM;
    kv_super_unref(sv);
    if (rc) {
        for (size_t i = 0; kids && i < n; i++)
            iter_free(kids[i]);
        dm_free(kids);
        return rc;
    }
    iter *merged = iter_merge_new(ikey_cmp, kids, n);
    dm_free(kids);
    if (!merged)
        return DM_ENOMEM;
    iter *it = kv_db_iter_new(merged, seq);
    if (!it)
        return DM_ENOMEM;
    *out = it;
    return DM_OK;
}

/* ------------------------------------------------------------ snapshots */

const kv_snapshot *kv_snapshot_new(kv_db *db)
{
    kv_snapshot *s = dm_malloc(sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_lock(&db->mu);
    s->seq = atomic_load(&db->last_seq);
    s->next = &db->snap_list;
    s->prev = db->snap_list.prev;
    s->prev->next = s;
    db->snap_list.prev = s;
    pthread_mutex_unlock(&db->mu);
    return s;
}

void kv_snapshot_release(kv_db *db, const kv_snapshot *snap)
{
    if (!snap)
        return;
    kv_snapshot *s = (kv_snapshot *)snap;
    pthread_mutex_lock(&db->mu);
    s->prev->next = s->next;
    s->next->prev = s->prev;
    pthread_mutex_unlock(&db->mu);
    dm_free(s);
}

uint64_t kv_snapshot_seq(const kv_snapshot *snap)
{
    return snap->seq;
}

/* ------------------------------------------------------ flush, compact */

int kv_flush(kv_db *db)
{
    if (!db)
        return DM_EINVAL;
    /* Switch the memtable as the write leader, so that the WAL/memtable
     * pairing is only ever changed by the one thread allowed to: queue as a
     * writer carrying no batch. */
    pthread_mutex_lock(&db->mu);
    int rc = db->bg_error;
    if (!rc && mt_count(db->mem->table) > 0) {
        kv_writer w;
        memset(&w, 0, sizeof w);
        pthread_cond_init(&w.cv, NULL);
        if (db->wq_tail)
            db->wq_tail->next = &w;
        else
            db->wq_head = &w;
        db->wq_tail = &w;
        while (db->wq_head != &w)
            pthread_cond_wait(&w.cv, &db->mu);
        rc = make_room(db, true);
        db->wq_head = w.next;
        if (!db->wq_head)
            db->wq_tail = NULL;
        else
            pthread_cond_signal(&db->wq_head->cv);
        pthread_cond_destroy(&w.cv);
    }
    while (!rc && db->imm_head && !db->bg_error) {
        pthread_cond_broadcast(&db->bg_cv);
        pthread_cond_wait(&db->bg_done_cv, &db->mu);
    }
    if (!rc)
        rc = db->bg_error;
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int kv_compact_range(kv_db *db, const buf_slice *begin, const buf_slice *end)
{
    int rc = kv_flush(db);
    if (rc)
        return rc;
    return cpt_compact_range(db, begin, end);
}

/* ---------------------------------------------------------------- stats */

void kv_tick_page_clock(kv_db *db)
{
    uint16_t now = atomic_load_explicit(&db->page_clock, memory_order_relaxed);
    now = (uint16_t)(now + 1) ? (uint16_t)(now + 1) : 1; /* 0 means "never" */
    atomic_store_explicit(&db->page_clock, now, memory_order_relaxed);
}

int kv_drop_table_pages(kv_db *db, uint64_t bytes)
{
    pthread_mutex_lock(&db->mu);
    kv_version *v = db->current;
    kv_version_ref(v);
    db->st.n_page_drops++;
    pthread_mutex_unlock(&db->mu);
    /* The oldest age buckets that hold `bytes` between them go. */
    unsigned from = 0;
    if (bytes != UINT64_MAX) {
        uint64_t ages[SST_AGE_BUCKETS] = { 0 }, sum = 0;
        for (int l = 0; l < KV_MAX_LEVELS; l++)
            for (size_t i = 0; i < v->n[l]; i++)
                sst_reader_page_ages(v->files[l][i]->reader, ages);
        for (from = SST_AGE_BUCKETS - 1; from > 0 && (sum += ages[from]) < bytes; from--)
            ;
    }
    int rc = DM_OK;
    for (int l = 0; l < KV_MAX_LEVELS; l++)
        for (size_t i = 0; i < v->n[l]; i++) {
            int r = sst_reader_drop_pages(v->files[l][i]->reader, from);
            if (r && !rc)
                rc = r;
        }
    kv_version_unref(v);
    return rc;
}

int kv_stats_get(kv_db *db, kv_stats *out)
{
    if (!db || !out)
        return DM_EINVAL;
    pthread_mutex_lock(&db->mu);
    *out = db->st;
    for (int l = 0; l < KV_MAX_LEVELS; l++) {
        out->levels[l].files = db->current->n[l];
        out->levels[l].bytes = 0;
        for (size_t i = 0; i < db->current->n[l]; i++) {
            kv_file *f = db->current->files[l][i];
            out->levels[l].bytes += f->size;
            /* A reader's pool mutex is a leaf: mu may be held. */
            out->table_bytes += sst_reader_memsize(f->reader);
        }
    }
    out->memtable_bytes = mt_mem_usage(db->mem->table);
    for (kv_mem *m = db->imm_head; m; m = m->next)
        out->memtable_bytes += mt_mem_usage(m->table);
    out->n_immutable = (uint64_t)db->n_imm;
    out->last_seq = atomic_load(&db->last_seq);
    out->wal_bytes_written = db->st.wal_bytes_written;
    out->background_error = db->bg_error;
    out->is_background_busy = db->n_imm > 0 || db->is_flushing || db->is_compacting ||
                              db->manual_compactions > 0 ||
                              (!db->bg_error && cpt_needs_compaction(db));
    pthread_mutex_unlock(&db->mu);
    out->cache_bytes = sst_cache_usage(db->cache);
    sst_cache_lookups(db->cache, &out->cache_hits, &out->cache_misses);
    uint64_t moved = out->flush_bytes_written + out->compact_bytes_written;
    out->write_amplification =
        out->user_bytes_written
            ? (double)(out->wal_bytes_written + moved) / (double)out->user_bytes_written
            : 0.0;
    return DM_OK;
}

/* ---------------------------------------------------------------- open */

/*
 * fcntl locks belong to a process, so a second kv_open of the same
 * directory from the same process would get the lock again.  This table of
 * the directories this process has open refuses that too.
 */
static pthread_mutex_t open_dirs_mu = PTHREAD_MUTEX_INITIALIZER;
static char **open_dirs;
static size_t n_open_dirs;

static char *canonical_dir(const char *dir)
{
    char *r = realpath(dir, NULL); /* malloc'd by libc */
    char *c = dm_strdup(r ? r : dir);
    free(r);
    return c;
}

static int open_dirs_claim(const char *canon)
{
    int rc = DM_OK;
    pthread_mutex_lock(&open_dirs_mu);
    for (size_t i = 0; i < n_open_dirs; i++)
        if (!strcmp(open_dirs[i], canon))
            rc = DM_EBUSY;
    if (!rc) {
        char **na = dm_realloc(open_dirs, (n_open_dirs + 1) * sizeof *na);
        if (!na)
            rc = DM_ENOMEM;
        else {
            open_dirs = na;
            open_dirs[n_open_dirs++] = (char *)canon;
        }
    }
    pthread_mutex_unlock(&open_dirs_mu);
    return rc;
}

static void open_dirs_release(const char *canon)
{
    pthread_mutex_lock(&open_dirs_mu);
    for (size_t i = 0; i < n_open_dirs; i++)
        if (open_dirs[i] == canon) {
            open_dirs[i] = open_dirs[--n_open_dirs];
            break;
        }
    if (!n_open_dirs) {
        dm_free(open_dirs);
        open_dirs = NULL;
    }
    pthread_mutex_unlock(&open_dirs_mu);
}

typedef struct replay_ctx {
    kv_db *db;
    uint64_t wal_number;
    uint64_t max_seq;
    const char *path;
    const wal_replay_stats *ws; /* of the log being replayed */
    bool has_damage;            /* first damage, for paranoid_checks */
    uint64_t damage_off;
    char damage_reason[96];
} replay_ctx;

static void on_wal_damage(void *arg, const char *path, uint64_t off,
                          uint64_t len, const char *reason)
{
    replay_ctx *c = arg;
    c->db->st.recovery_damaged++;
    c->db->st.recovery_damaged_bytes += len;
    if (!c->has_damage) {
        c->has_damage = true;
        c->damage_off = off;
        snprintf(c->damage_reason, sizeof c->damage_reason, "%s", reason);
    }
    LOG_W("%s: offset %" PRIu64 ": %" PRIu64 " damaged bytes skipped: %s", path,
          off, len, reason);
}

static int on_wal_record(void *arg, uint64_t seq, uint8_t type, buf_slice payload)
{
    replay_ctx *c = arg;
    kv_db *db = c->db;
    uint32_t count;
    if (type != WAL_REC_BATCH || kv_batch_validate(payload, &count)) {
        /* The record's checksums held, so this is not a torn write: the
         * payload itself is malformed.  Skip it like damage. */
        /* wal_replay has already counted this record: it ends at
         * valid_end. */
        uint64_t rec_len = WAL_RECORD_HEADER_LEN + payload.len;
        uint64_t off = c->ws->valid_end >= rec_len ? c->ws->valid_end - rec_len : 0;
        on_wal_damage(arg, c->path, off, rec_len, "malformed write batch");
        return DM_OK;
    }
    db->st.recovered_records++;
    if (count == 0 || seq + count - 1 <= db->flushed_seq || seq <= c->max_seq)
        return DM_OK; /* already in an SSTable, or a duplicate */
    if (mt_mem_usage(db->mem->table) >= db->opt.write_buffer_size) {
        kv_mem *m = kv_mem_new(c->wal_number);
        if (!m)
            return DM_ENOMEM;
        kv_mem *full = db->mem;
        if (db->imm_tail)
            db->imm_tail->next = full;
        else
            db->imm_head = full;
        db->imm_tail = full;
        db->n_imm++;
        db->mem = m;
    }
    if (mt_count(db->mem->table) == 0)
        db->mem->log_number = c->wal_number;
    int rc = batch_apply(db->mem->table, seq, payload);
    if (rc)
        return rc;
    c->max_seq = seq + count - 1;
    return DM_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * recover -- REQUIRES: the lock file is held; no threads yet.  Reads the
 * MANIFEST (writing a first one for a new database), opens the tables,
 * replays the live logs, removes files nothing refers to, and opens a new
 * log.
 */
static int recover(kv_db *db)
{
    man_state ms;
    memset(&ms, 0, sizeof ms);
    char **names = NULL;
    size_t n_names = 0;
    uint64_t *wals = NULL;
    size_t n_wals = 0;
    kv_edit edit;
    memset(&edit, 0, sizeof edit);
    kv_version *v = NULL;
    uint64_t t0 = clock_mono_us();
    /* Until recovery succeeds, dropping a table reference must never
     * delete the file: a failed open leaves the directory as it was. */
    atomic_store(&db->is_shutdown_keep_files, true);

    int rc = man_read(db->vfs, db->dir, &ms);
    if (rc == DM_ENOTFOUND) {
        if (!db->opt.create_if_missing) {
            rc = err_set_msg(DM_ENOTFOUND, "%s: no database (no MANIFEST)", db->dir);
            goto fail;
        }
        memset(&ms, 0, sizeof ms);
        ms.next_file = 1;
        if ((rc = man_write(db->vfs, db->dir, &ms)))
            goto fail;
    } else if (rc) {
        goto fail;
    } else if (db->opt.error_if_exists) {
        rc = err_set_msg(DM_EEXISTS, "%s: database exists", db->dir);
        goto fail;
    }
    db->next_file = ms.next_file;
    db->log_number = ms.log_number;
    db->flushed_seq = ms.last_seq;
    atomic_store(&db->last_seq, ms.last_seq);

    /* Open every live table. */
    for (uint32_t i = 0; i < ms.n_files; i++) {
        man_file *m = &ms.files[i];
        sst_info info = { .file_size = m->size, .n_entries = m->n_entries,
                          .smallest = m->smallest, .largest = m->largest };
        kv_file *f = NULL;
        if ((rc = kv_file_new(db, m->number, (int)m->level, &info, &f)))
            goto fail;
        if ((rc = kv_edit_add(&edit, f, (int)m->level))) {
            f->db = NULL;
            kv_file_unref(f);
            goto fail;
        }
    }
    if ((rc = version_apply(NULL, &edit, &v)))
        goto fail;
    db->current = v;
    v = NULL;

    /* Which files are there? */
    if ((rc = db->vfs->list(db->vfs, db->dir, &names, &n_names)))
        goto fail;
    if (!(wals = dm_malloc((n_names + 1) * sizeof *wals))) {
        rc = DM_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n_names; i++) {
        uint64_t num = 0;
        enum fn_kind k = fn_parse(names[i], &num);
        char path[FN_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", db->dir, names[i]);
        if (k == FN_WAL) {
            if (num >= db->log_number)
                wals[n_wals++] = num;
            else
                db->vfs->unlink(db->vfs, path);
        } else if (k == FN_SST) {
            bool is_live = false;
            for (uint32_t j = 0; j < ms.n_files && !is_live; j++)
                is_live = ms.files[j].number == num;
            if (!is_live) /* left by a flush or compaction cut short */
                db->vfs->unlink(db->vfs, path);
        } else if (!strcmp(names[i], FN_MANIFEST ".tmp")) {
            db->vfs->unlink(db->vfs, path);
        }
        if ((k == FN_WAL || k == FN_SST) && num >= db->next_file)
            db->next_file = num + 1;
    }
    qsort(wals, n_wals, sizeof *wals, cmp_u64);

    /* Replay. */
    if (!(db->mem = kv_mem_new(n_wals ? wals[0] : db->next_file))) {
        rc = DM_ENOMEM;
        goto fail;
    }
    replay_ctx c = { .db = db, .max_seq = ms.last_seq };
    for (size_t i = 0; i < n_wals; i++) {
        char path[FN_PATH_MAX];
        fn_make(path, db->dir, wals[i], FN_WAL);
        wal_replay_stats ws;
        c.wal_number = wals[i];
        c.path = path;
        c.ws = &ws;
        c.has_damage = false;
        rc = wal_replay(db->vfs, path, true, on_wal_record, on_wal_damage, &c, &ws);
        if (rc == DM_ECORRUPT && ws.records == 0 && ws.valid_end == 0) {
            /* Unreadable header: nothing in this log can be trusted.  The
             * damage has been reported; keep the file for inspection. */
            LOG_W("%s: log header damaged; log skipped", path);
            rc = DM_OK;
        }
        if (rc)
            goto fail;
        db->st.recovered_wal_files++;
        db->st.recovery_tail_bytes += ws.tail_bytes;
        if (db->opt.paranoid_checks && c.has_damage) {
            rc = err_set_msg(DM_ECORRUPT, "%s: offset %" PRIu64 ": %s", path,
                             c.damage_off, c.damage_reason);
            goto fail;
        }
        if (ws.records == 0 && ws.damaged == 0 && ws.tail_bytes == 0 && ws.valid_end > 0) {
            /* A log that held nothing (its session only read) goes now:
             * kept, every open would add one more for every later open
             * to replay.  A log with damage or a torn tail stays. */
            if ((rc = db->vfs->unlink(db->vfs, path)) && rc != DM_ENOTFOUND)
                goto fail;
            rc = DM_OK;
            continue;
        }
        if ((rc = live_wal_add(db, wals[i])))
            goto fail;
    }
    if (c.max_seq > atomic_load(&db->last_seq))
        atomic_store(&db->last_seq, c.max_seq);
    if (mt_count(db->mem->table) == 0)
        db->mem->log_number = db->next_file;

    /* A new log for new writes. */
    db->wal_number = db->next_file++;
    if ((rc = live_wal_add(db, db->wal_number)))
        goto fail;
    if ((rc = open_new_wal(db, db->wal_number, &db->wal)))
        goto fail;
    if ((rc = kv_super_rebuild(db)))
        goto fail;
    db->st.recovery_us = clock_mono_us() - t0;
    atomic_store(&db->is_shutdown_keep_files, false);
    if (db->st.recovery_damaged)
        LOG_W("%s: recovery skipped %" PRIu64 " damaged log region(s), %" PRIu64 " bytes",
              db->dir, db->st.recovery_damaged, db->st.recovery_damaged_bytes);
fail:
    kv_edit_fini(&edit);
    man_state_fini(&ms);
    vfs_list_free(names, n_names);
    dm_free(wals);
    kv_version_unref(v);
    return rc;
}

static void db_free(kv_db *db)
{
    if (!db)
        return;
    atomic_store(&db->is_shutdown_keep_files, true);
    kv_super_unref(db->super);
    kv_version_unref(db->current);
    kv_mem_free(db->mem);
    while (db->imm_head) {
        kv_mem *m = db->imm_head;
        db->imm_head = m->next;
        kv_mem_free(m);
    }
    for (int l = 0; l < KV_MAX_LEVELS; l++)
        buf_fini(&db->compact_ptr[l]);
    sst_cache_free(db->cache);
    if (db->lock)
        db->vfs->unlock(db->vfs, db->lock);
    if (db->canon_dir) {
        if (db->is_dir_claimed)
            open_dirs_release(db->canon_dir);
        dm_free(db->canon_dir);
    }
    dm_free(db->live_wals);
    dm_free(db->doom);
    pthread_mutex_destroy(&db->doom_mu);
    pthread_mutex_destroy(&db->mu);
    pthread_mutex_destroy(&db->man_mu);
    pthread_mutex_destroy(&db->cmp_mu);
    pthread_cond_destroy(&db->bg_cv);
    pthread_cond_destroy(&db->bg_done_cv);
    dm_free(db->dir);
    dm_free(db);
}

int kv_open(const char *dir, const kv_options *opt, kv_db **out)
{
    *out = NULL;
    if (!dir || !*dir)
        return err_set_msg(DM_EINVAL, "empty database directory");
    if (strlen(dir) > FN_PATH_MAX - 64)
        return err_set_msg(DM_EINVAL, "database directory path too long");
    kv_db *db = dm_calloc(1, sizeof *db);
    if (!db)
        return DM_ENOMEM;
    db->opt = opt ? *opt : kv_options_default();
    db->vfs = db->opt.vfs ? db->opt.vfs : vfs_posix();
    if (db->opt.max_immutable < 1)
        db->opt.max_immutable = 1;
    if (db->opt.l0_compaction_trigger < 1)
        db->opt.l0_compaction_trigger = 1;
    if (db->opt.l0_stop_trigger < db->opt.l0_compaction_trigger)
        db->opt.l0_stop_trigger = db->opt.l0_compaction_trigger;
    if (db->opt.sync_interval_ms < 0)
        db->opt.sync_interval_ms = 0;
    pthread_mutex_init(&db->mu, NULL);
    pthread_mutex_init(&db->man_mu, NULL);
    pthread_mutex_init(&db->cmp_mu, NULL);
    pthread_mutex_init(&db->doom_mu, NULL);
    pthread_cond_init(&db->bg_cv, NULL);
    pthread_cond_init(&db->bg_done_cv, NULL);
    db->snap_list.next = db->snap_list.prev = &db->snap_list;
    for (int l = 0; l < KV_MAX_LEVELS; l++)
        buf_init(&db->compact_ptr[l]);

    int rc = DM_OK;
    if (!(db->dir = dm_strdup(dir))) {
        rc = DM_ENOMEM;
        goto fail;
    }
    if (db->opt.create_if_missing && (rc = db->vfs->mkdir(db->vfs, dir)))
        goto fail;
    char path[FN_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, FN_LOCK);
    if (!(db->canon_dir = canonical_dir(dir))) {
        rc = DM_ENOMEM;
        goto fail;
    }
    if ((rc = open_dirs_claim(db->canon_dir))) {
        if (rc == DM_EBUSY)
            err_set_msg(rc, "%s: the database is already open in this process", dir);
        goto fail;
    }
    db->is_dir_claimed = true;
    if ((rc = db->vfs->lock(db->vfs, path, &db->lock))) {
        if (rc == DM_EBUSY)
            err_set_msg(rc, "%s: the database is open in another process", dir);
        else if (rc == DM_ENOTFOUND)
            err_set_msg(rc, "%s: no such database directory", dir);
        goto fail;
    }
    atomic_init(&db->page_clock, 1);
    if ((rc = sst_cache_new(db->opt.block_cache_size, &db->cache)))
        goto fail;
    if ((rc = recover(db)))
        goto fail;
    if (pthread_create(&db->flush_thread, NULL, cpt_flush_main, db)) {
        rc = DM_ENOMEM;
        goto fail;
    }
    if (pthread_create(&db->cmp_thread, NULL, cpt_compact_main, db)) {
        pthread_mutex_lock(&db->mu);
        db->is_closing = true;
        pthread_cond_broadcast(&db->bg_cv);
        pthread_mutex_unlock(&db->mu);
        pthread_join(db->flush_thread, NULL);
        rc = DM_ENOMEM;
        goto fail;
    }
    db->has_threads = true;
    *out = db;
    return DM_OK;
fail:
    wal_writer_close(db->wal);
    db->wal = NULL;
    db_free(db);
    return rc;
}

int kv_close(kv_db *db)
{
    if (!db)
        return DM_OK;
    pthread_mutex_lock(&db->mu);
    db->is_closing = true;
    pthread_cond_broadcast(&db->bg_cv);
    pthread_cond_broadcast(&db->bg_done_cv);
    pthread_mutex_unlock(&db->mu);
    if (db->has_threads) {
        pthread_join(db->flush_thread, NULL);
        pthread_join(db->cmp_thread, NULL);
    }
    kv_reap(db); /* what readers released since the last install */
    int rc = wal_writer_close(db->wal);
    db->wal = NULL;
    if (db->bg_error)
        rc = db->bg_error;
    db_free(db);
    return rc;
}
