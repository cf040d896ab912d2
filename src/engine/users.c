/*
 * users.c -- the user table, per-user locking, and each user's in-memory
 * indexes: the document table, the vector index and the BM25 index, how
 * they are loaded, checkpointed and erased.
 *
 * Loading (on first use, under the user's write lock):
 *   1. no user record          -> the user does not exist (yet);
 *   2. user record "erasing"   -> finish the interrupted erase;
 *   3. checkpoint head present -> read its chunks, verify the CRC, restore
 *      the document table and both indexes, then replay the index log
 *      written after the checkpoint;
 *   4. otherwise (or when the checkpoint is damaged) -> rebuild by scanning
 *      the user's memory records, whose embeddings are stored beside the
 *      text, so nothing is ever re-embedded.
 *
 * Index log replay: an entry names a memory id and, for updates and
 * deletes, the text that was indexed before.  For every id touched after
 * the checkpoint, the checkpointed document (if any) is removed using the
 * old text of the FIRST entry for that id -- exactly the text indexed at
 * checkpoint time -- and the memory record as it is now (if it still
 * exists) is indexed.  The result equals applying every entry in order.
 *
 * Checkpoints: the blob (docs/format.md, "Index checkpoint") is written as
 * chunks of a new generation, then one batch switches the head to it and
 * deletes the previous generation and the log entries it covers.  A crash
 * before the switch leaves the old head valid (and orphan chunks that the
 * next checkpoint of the user overwrites or deletes); after it, the new.
 * A user is first checkpointed once it holds checkpoint_ops memories;
 * smaller users load by scanning their records, which is as fast.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/crc.h"
#include "base/err.h"
#include "base/log.h"
#include "engine/engine_int.h"
#include "engine/record.h"
#include "engine/record_format.h"

static uint32_t hash_bytes(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h ^ (h >> 15);
}

static uint32_t hash_id(const uint8_t id[16])
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    uint64_t h = (a ^ (b * UINT64_C(0x9e3779b97f4a7c15))) * UINT64_C(0xff51afd7ed558ccd);
    return (uint32_t)(h >> 32);
}

/* ------------------------------------------------------------------ */
/* The user table                                                      */
/* ------------------------------------------------------------------ */

int eng_user_get(dm_db *db, const char *tenant, const char *user, eng_user **out)
{
    key_tu tu;
    key_tu_make(&tu, tenant, strlen(tenant), user, strlen(user));
    return eng_user_get_tu(db, &tu, out);
}

int eng_user_get_tu(dm_db *db, const key_tu *tup, eng_user **out)
{
    key_tu tu = *tup;
    *out = NULL;
    uint32_t h = hash_bytes(tu.b, tu.len);
    eng_stripe *st = &db->stripes[h % ENG_STRIPES];
    pthread_mutex_lock(&st->mu);
    uint32_t mask = st->cap - 1;
    for (uint32_t i = (h / ENG_STRIPES) & mask;; i = (i + 1) & mask) {
        eng_user *u = st->cap ? st->slots[i] : NULL;
        if (!u)
            break;
        if (u->hash == h && u->tu.len == tu.len && !memcmp(u->tu.b, tu.b, tu.len)) {
            pthread_mutex_unlock(&st->mu);
            *out = u;
            return DM_OK;
        }
    }
    /* Not present: grow at 1/2 load, then insert. */
    if ((st->n + 1) * 2 > st->cap) {
        uint32_t ncap = st->cap ? st->cap * 2 : 16;
        eng_user **ns = dm_calloc(ncap, sizeof *ns);
        if (!ns) {
            pthread_mutex_unlock(&st->mu);
            return err_set_msg(DM_ENOMEM, "out of memory growing the user table");
        }
        for (uint32_t i = 0; i < st->cap; i++) {
            eng_user *u = st->slots[i];
            if (!u)
                continue;
            uint32_t j = (u->hash / ENG_STRIPES) & (ncap - 1);
            while (ns[j])
                j = (j + 1) & (ncap - 1);
            ns[j] = u;
        }
        dm_free(st->slots);
        st->slots = ns;
        st->cap = ncap;
    }
    eng_user *u = dm_calloc(1, sizeof *u);
    if (!u) {
        pthread_mutex_unlock(&st->mu);
        return err_set_msg(DM_ENOMEM, "out of memory creating a user");
    }
    u->hash = h;
    u->tu = tu;
    atomic_init(&u->lock_waiters, 0);
    pthread_rwlock_init(&u->rw, NULL);
    uint32_t j = (h / ENG_STRIPES) & (st->cap - 1);
    while (st->slots[j])
        j = (j + 1) & (st->cap - 1);
    st->slots[j] = u;
    st->n++;
    pthread_mutex_unlock(&st->mu);
    *out = u;
    return DM_OK;
}

void eng_user_reset(eng_user *u)
{
    u->epoch++; /* ckpt_busy stays: only the checkpoint's writer clears it */
    eng_vec_fini(u);
    hnsw_free(u->vec);
    bm25_free(u->text);
    dm_free(u->docs);
    dm_free(u->map);
    u->vec = NULL;
    u->text = NULL;
    u->docs = NULL;
    u->map = NULL;
    u->n_docs = u->docs_cap = u->n_live = 0;
    u->map_cap = u->map_used = 0;
    u->has_ckpt = u->dirty = false;
    u->ckpt_gen = u->ckpt_covered = u->log_first = 0;
    u->next_useq = 1;
    u->n_memories = 0;
    fact_set_fini(&u->facts);
    u->facts_loaded = false;
    eng_graph_drop(u);
    dm_free(u->spans);
    u->spans = NULL;
    u->n_spans = u->spans_cap = 0;
}

void eng_user_free(eng_user *u)
{
    if (!u)
        return;
    eng_user_reset(u);
    eng_xrecent_fini(u);
    pthread_rwlock_destroy(&u->rw);
    dm_free(u);
}

/* ------------------------------------------------------------------ */
/* The document table                                                  */
/* ------------------------------------------------------------------ */

#define MAP_TOMB UINT32_MAX

static int map_grow(eng_user *u)
{
    uint32_t ncap = u->map_cap ? u->map_cap * 2 : 64;
    while (ncap < (u->n_live + 1) * 2)
        ncap *= 2;
    uint32_t *nm = dm_calloc(ncap, sizeof *nm);
    if (!nm)
        return err_set_msg(DM_ENOMEM, "out of memory growing a user's id map");
    for (uint32_t d = 0; d < u->n_docs; d++) {
        if (!u->docs[d].flags)
            continue;
        uint32_t i = hash_id(u->docs[d].id) & (ncap - 1);
        while (nm[i])
            i = (i + 1) & (ncap - 1);
        nm[i] = d + 1;
    }
    dm_free(u->map);
    u->map = nm;
    u->map_cap = ncap;
    u->map_used = u->n_live;
    return DM_OK;
}

uint32_t eng_doc_find(const eng_user *u, const uint8_t id[16])
{
    if (!u->map_cap)
        return UINT32_MAX;
    uint32_t mask = u->map_cap - 1;
    for (uint32_t i = hash_id(id) & mask;; i = (i + 1) & mask) {
        uint32_t v = u->map[i];
        if (!v)
            return UINT32_MAX;
        if (v != MAP_TOMB && !memcmp(u->docs[v - 1].id, id, 16))
            return v - 1;
    }
}

int eng_doc_add(eng_user *u, const uint8_t id[16], int64_t ts, uint32_t flags,
                uint32_t *out_doc)
{
    if (u->n_docs == UINT32_MAX - 1)
        return err_set_msg(DM_ETOOBIG, "a user can hold at most 2^32-2 memories");
    if (u->n_docs == u->docs_cap) {
        uint32_t ncap = u->docs_cap < 16 ? 16 : u->docs_cap + u->docs_cap / 2;
        eng_doc *nd = dm_realloc(u->docs, (size_t)ncap * sizeof *nd);
        if (!nd)
            return err_set_msg(DM_ENOMEM, "out of memory growing a user's documents");
        u->docs = nd;
        u->docs_cap = ncap;
    }
    if ((u->map_used + 1) * 4 > u->map_cap * 3) {
        int rc = map_grow(u);
        if (rc)
            return rc;
    }
    uint32_t doc = u->n_docs++;
    eng_doc *d = &u->docs[doc];
    memcpy(d->id, id, 16);
    d->ts = ts;
    d->flags = flags | DOC_LIVE;
    d->pend = 0;
    eng_doc_salience_forget(u, doc);
    uint32_t mask = u->map_cap - 1, i = hash_id(id) & mask;
    while (u->map[i] && u->map[i] != MAP_TOMB)
        i = (i + 1) & mask;
    if (!u->map[i])
        u->map_used++;
    u->map[i] = doc + 1;
    u->n_live++;
    *out_doc = doc;
    return DM_OK;
}

void eng_doc_remove(eng_user *u, uint32_t doc)
{
    eng_vec_remove(u, doc); /* from the graph or the pending tail */
    uint32_t mask = u->map_cap - 1;
    for (uint32_t i = hash_id(u->docs[doc].id) & mask;; i = (i + 1) & mask) {
        if (u->map[i] == doc + 1) {
            u->map[i] = MAP_TOMB;
            break;
        }
        if (!u->map[i])
            break;
    }
    u->docs[doc].flags = 0;
    eng_doc_salience_forget(u, doc);
    u->n_live--;
}

void eng_doc_salience_set(eng_user *u, uint32_t doc, float stored, float rate,
                          int64_t refreshed_us)
{
    eng_doc *d = &u->docs[doc];
    atomic_store_explicit(&d->sal_bits, f32_bits(stored), memory_order_relaxed);
    atomic_store_explicit(&d->rate_bits, f32_bits(rate), memory_order_relaxed);
    atomic_store_explicit(&d->sal_at, refreshed_us, memory_order_release);
}

void eng_doc_salience_forget(eng_user *u, uint32_t doc)
{
    atomic_store_explicit(&u->docs[doc].sal_at, ENG_SAL_UNKNOWN, memory_order_relaxed);
}

bool eng_doc_salience(const eng_user *u, uint32_t doc, int64_t now_us, double *out)
{
    eng_doc *d = &u->docs[doc];
    int64_t at = atomic_load_explicit(&d->sal_at, memory_order_acquire);
    if (at == ENG_SAL_UNKNOWN)
        return false;
    float stored = f32_of_bits(atomic_load_explicit(&d->sal_bits, memory_order_relaxed));
    float rate = f32_of_bits(atomic_load_explicit(&d->rate_bits, memory_order_relaxed));
    *out = eng_salience(stored, rate, at, now_us);
    return true;
}

static int ensure_indexes(dm_db *db, eng_user *u)
{
    int rc = DM_OK;
    if (!u->vec && db->dim)
        rc = hnsw_new(&db->hp, &u->vec);
    if (!rc && !u->text)
        rc = bm25_new(&db->bp, &u->text);
    return rc;
}

int eng_index_memory(dm_db *db, eng_user *u, uint32_t doc, const char *text,
                     size_t text_len, const float *vec)
{
    int rc = ensure_indexes(db, u);
    if (rc)
        return rc;
    if (vec && db->dim && !eng_vec_is_zero(vec, db->dim)) {
        rc = eng_vec_add(db, u, doc, vec);
        if (rc)
            return rc;
    }
    rc = bm25_add(u->text, doc, text, text_len);
    if (rc)
        eng_vec_remove(u, doc);
    return rc;
}

/* Index one stored memory record (key and value as in the store). */
static int load_record(dm_db *db, eng_user *u, buf_slice key, buf_slice val,
                       float *vec)
{
    rec_memory r;
    size_t base = 1 + u->tu.len;
    if (key.len != base + 24)
        return err_set_msg(DM_ECORRUPT, "memory key of %zu bytes", key.len);
    int rc = rec_memory_decode(val, &r);
    if (rc)
        return rc;
    int64_t ts = key_ts_decode(dec_be64(key.ptr + base));
    const uint8_t *id = key.ptr + base + 8;
    uint32_t doc;
    rc = eng_doc_add(u, id, ts, r.state == DM_STATE_ARCHIVED ? DOC_ARCHIVED : 0, &doc);
    if (rc)
        return rc;
    eng_doc_salience_set(u, doc, r.salience, r.decay_rate, rec_memory_refreshed_us(&r));
    const float *v = NULL;
    if (r.dim == db->dim && db->dim) {
        rec_memory_embedding(&r, vec);
        v = vec;
    }
    rc = eng_index_memory(db, u, doc, (const char *)r.text.ptr, r.text.len, v);
    if (rc)
        eng_doc_remove(u, doc);
    return rc;
}

/* Rebuild the user's indexes from its memory records. */
static int load_by_scan(dm_db *db, eng_user *u)
{
    uint8_t lo[KEY_MAX];
    size_t lo_len = key_user_kind(lo, KEY_MEMORY, &u->tu);
    iter *it = NULL;
    float *vec = dm_malloc(sizeof(float) * (db->dim ? db->dim : 1));
    int rc = vec ? kv_iter_new(db->kv, NULL, &it) : DM_ENOMEM;
    if (rc)
        goto out;
    rc = ensure_indexes(db, u);
    /* The user record counts the memories (all states): size the document
     * table and the vector index once instead of growing them step by
     * step.  A count that is off only costs a later growth. */
    if (!rc && u->n_memories && u->n_memories < UINT32_MAX / 2 && !u->n_docs) {
        uint32_t n = (uint32_t)u->n_memories;
        eng_doc *nd = dm_realloc(u->docs, (size_t)n * sizeof *nd);
        if (nd) {
            u->docs = nd;
            u->docs_cap = n;
        }
        if (db->dim)
            (void)hnsw_reserve(u->vec, n); /* only an optimization */
    }
    for (eng_seek(it, buf_slice_of(lo, lo_len)); !rc && eng_valid(it); iter_next(it)) {
        buf_slice k = iter_key(it);
        if (k.len < lo_len || memcmp(k.ptr, lo, lo_len))
            break;
        rc = load_record(db, u, k, iter_value(it), vec);
    }
    if (!rc)
        rc = iter_status(it);
out:
    iter_free(it);
    dm_free(vec);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Checkpoints                                                         */
/* ------------------------------------------------------------------ */

static int serialize_user(const eng_user *u, buf *out)
{
    int rc = buf_put_u32(out, CKPT_MAGIC) | buf_put_u32(out, CKPT_VERSION) |
             buf_put_u64(out, u->next_useq - 1) | buf_put_u32(out, u->n_docs) |
             buf_put_u32(out, 0);
    for (uint32_t d = 0; d < u->n_docs && !rc; d++) {
        rc |= buf_append(out, u->docs[d].id, 16);
        rc |= buf_put_u64(out, (uint64_t)u->docs[d].ts);
        rc |= buf_put_u32(out, u->docs[d].flags);
    }
    if (rc)
        return err_set_msg(DM_ENOMEM, "out of memory writing a checkpoint");
    size_t at = out->len;
    rc = buf_put_u64(out, 0);
    if (!rc && u->vec)
        rc = hnsw_serialize(u->vec, out);
    if (rc)
        return rc;
    enc_u64(out->ptr + at, out->len - at - 8);
    at = out->len;
    rc = buf_put_u64(out, 0);
    if (!rc && u->text)
        rc = bm25_serialize(u->text, out);
    if (rc)
        return rc;
    enc_u64(out->ptr + at, out->len - at - 8);
    return DM_OK;
}

static int ckpt_corrupt(const eng_user *u, size_t off, const char *what)
{
    return err_set_msg(DM_ECORRUPT, "index checkpoint damaged at offset %zu: %s", off, what);
}

static int deserialize_user(dm_db *db, eng_user *u, buf_slice in)
{
    buf_slice s = in;
    uint32_t magic = 0, ver = 0, n_docs = 0, resv = 0;
    uint64_t covered = 0, n = 0;
    if (!get_u32(&s, &magic) || magic != CKPT_MAGIC)
        return ckpt_corrupt(u, 0, "bad magic");
    if (!get_u32(&s, &ver) || ver != CKPT_VERSION)
        return err_set_msg(DM_EVERSION, "index checkpoint version %u is not supported", ver);
    if (!get_u64(&s, &covered) || !get_u32(&s, &n_docs) || !get_u32(&s, &resv))
        return ckpt_corrupt(u, 8, "short header");
    if ((uint64_t)n_docs * 28 > s.len)
        return ckpt_corrupt(u, 16, "document count exceeds the checkpoint");
    if (covered != u->ckpt_covered)
        return ckpt_corrupt(u, 8, "covered sequence differs from the head");
    u->docs = dm_malloc((size_t)(n_docs ? n_docs : 1) * sizeof *u->docs);
    if (!u->docs)
        return err_set_msg(DM_ENOMEM, "out of memory loading a checkpoint");
    u->docs_cap = n_docs ? n_docs : 1;
    for (uint32_t d = 0; d < n_docs; d++) {
        eng_doc *e = &u->docs[d];
        memcpy(e->id, s.ptr, 16);
        e->ts = (int64_t)dec_u64(s.ptr + 16);
        e->flags = dec_u32(s.ptr + 24);
        e->pend = 0;
        eng_doc_salience_forget(u, d);
        if (e->flags & ~(uint32_t)(DOC_LIVE | DOC_ARCHIVED | DOC_HAS_VEC) ||
            (e->flags && !(e->flags & DOC_LIVE)))
            return ckpt_corrupt(u, (size_t)(s.ptr - in.ptr) + 24, "bad document flags");
        s.ptr += 28;
        s.len -= 28;
        if (e->flags)
            u->n_live++;
    }
    u->n_docs = n_docs;
    int rc = map_grow(u);
    if (rc)
        return rc;
    if (!get_u64(&s, &n) || n > s.len)
        return ckpt_corrupt(u, (size_t)(s.ptr - in.ptr), "vector index length");
    if (n) {
        rc = hnsw_deserialize(&db->hp, buf_slice_of(s.ptr, (size_t)n), &u->vec);
        if (rc)
            return rc;
        if (hnsw_get_params(u->vec)->dim != db->dim)
            return ckpt_corrupt(u, (size_t)(s.ptr - in.ptr), "vector dimension differs");
    }
    s.ptr += n;
    s.len -= (size_t)n;
    if (!get_u64(&s, &n) || n != s.len)
        return ckpt_corrupt(u, (size_t)(s.ptr - in.ptr), "text index length");
    if (n) {
        rc = bm25_deserialize(&db->bp, s, &u->text);
        if (rc)
            return rc;
    }
    return ensure_indexes(db, u);
}

/* Read the head and chunks of u's checkpoint into blob. */
static int read_checkpoint(dm_db *db, eng_user *u, const rec_head *h, buf *blob)
{
    uint8_t k[KEY_MAX];
    buf part;
    buf_init(&part);
    int rc = DM_OK;
    for (uint32_t i = 0; i < h->n_parts && !rc; i++) {
        size_t kl = key_chunk(k, &u->tu, h->gen, i);
        rc = kv_get(db->kv, NULL, buf_slice_of(k, kl), &part);
        if (rc == DM_ENOTFOUND)
            rc = err_set_msg(DM_ECORRUPT, "index checkpoint chunk %u of %u missing", i,
                             h->n_parts);
        if (!rc && buf_append(blob, part.ptr, part.len))
            rc = err_set_msg(DM_ENOMEM, "out of memory reading a checkpoint");
    }
    buf_fini(&part);
    if (!rc && blob->len != h->total_len)
        rc = err_set_msg(DM_ECORRUPT, "index checkpoint is %zu bytes; its head says %llu",
                         blob->len, (unsigned long long)h->total_len);
    if (!rc && crc32c(blob->ptr, blob->len) != h->crc)
        rc = err_set_msg(DM_ECORRUPT, "index checkpoint checksum mismatch");
    return rc;
}

/* One id touched by the log tail, with the text indexed before it. */
typedef struct touched {
    uint8_t id[16];
    int64_t ts;
    char *old_text;
    size_t old_len;
    bool had_old;
} touched;

static int replay_log(dm_db *db, eng_user *u)
{
    uint8_t lo[KEY_MAX], k[KEY_MAX];
    size_t lo_len = key_user_kind(lo, KEY_LOG, &u->tu);
    size_t start_len = key_log(k, &u->tu, u->ckpt_covered + 1);
    touched *t = NULL;
    size_t n_t = 0, cap_t = 0;
    uint32_t *seen = NULL, seen_cap = 0;
    iter *it = NULL;
    buf val;
    buf_init(&val);
    float *vec = dm_malloc(sizeof(float) * (db->dim ? db->dim : 1));
    int rc = vec ? kv_iter_new(db->kv, NULL, &it) : DM_ENOMEM;
    for (eng_seek(it, buf_slice_of(k, start_len)); !rc && eng_valid(it); iter_next(it)) {
        buf_slice key = iter_key(it);
        if (key.len < lo_len || memcmp(key.ptr, lo, lo_len))
            break;
        if (key.len != lo_len + 8) {
            rc = err_set_msg(DM_ECORRUPT, "index log key of %zu bytes", key.len);
            break;
        }
        uint64_t useq = dec_be64(key.ptr + lo_len);
        rec_log l;
        rc = rec_log_decode(iter_value(it), &l);
        if (rc)
            break;
        if (!u->log_first)
            u->log_first = useq;
        if (useq >= u->next_useq)
            u->next_useq = useq + 1;
        /* Dedupe by id with a small open-addressing set over t[]. */
        if ((n_t + 1) * 2 > seen_cap) {
            uint32_t ncap = seen_cap ? seen_cap * 2 : 64;
            uint32_t *ns = dm_calloc(ncap, sizeof *ns);
            if (!ns) {
                rc = DM_ENOMEM;
                break;
            }
            for (size_t i = 0; i < n_t; i++) {
                uint32_t j = hash_id(t[i].id) & (ncap - 1);
                while (ns[j])
                    j = (j + 1) & (ncap - 1);
                ns[j] = (uint32_t)i + 1;
            }
            dm_free(seen);
            seen = ns;
            seen_cap = ncap;
        }
        uint32_t j = hash_id(l.id) & (seen_cap - 1);
        while (seen[j] && memcmp(t[seen[j] - 1].id, l.id, 16))
            j = (j + 1) & (seen_cap - 1);
        if (seen[j])
            continue;
        if (n_t == cap_t) {
            size_t nc = cap_t ? cap_t * 2 : 64;
            touched *nt = dm_realloc(t, nc * sizeof *nt);
            if (!nt) {
                rc = DM_ENOMEM;
                break;
            }
            t = nt;
            cap_t = nc;
        }
        touched *e = &t[n_t];
        memset(e, 0, sizeof *e);
        memcpy(e->id, l.id, 16);
        e->ts = l.ts;
        e->had_old = l.op != LOG_ADD;
        e->old_len = l.old_text.len;
        /* The old text is the record's last field: the byte after it is
         * not the value's, so copy len bytes and terminate the copy. */
        e->old_text = dm_malloc(l.old_text.len + 1);
        if (!e->old_text) {
            rc = DM_ENOMEM;
            break;
        }
        memcpy(e->old_text, l.old_text.ptr, l.old_text.len);
        e->old_text[l.old_text.len] = 0;
        seen[j] = (uint32_t)++n_t;
    }
    if (!rc && it)
        rc = iter_status(it);
    for (size_t i = 0; i < n_t && !rc; i++) {
        uint32_t doc = eng_doc_find(u, t[i].id);
        if (doc != UINT32_MAX) {
            if (t[i].had_old)
                bm25_delete(u->text, doc, t[i].old_text, t[i].old_len);
            eng_doc_remove(u, doc);
        }
        size_t kl = key_memory(k, &u->tu, t[i].ts, t[i].id);
        rc = kv_get(db->kv, NULL, buf_slice_of(k, kl), &val);
        if (rc == DM_ENOTFOUND) {
            rc = DM_OK;
            continue;
        }
        if (!rc)
            rc = load_record(db, u, buf_slice_of(k, kl), buf_slice_of(val.ptr, val.len), vec);
        atomic_fetch_add(&db->n_replayed, 1);
    }
    for (size_t i = 0; i < n_t; i++)
        dm_free(t[i].old_text);
    dm_free(t);
    dm_free(seen);
    dm_free(vec);
    buf_fini(&val);
    iter_free(it);
    if (rc == DM_ENOMEM)
        err_set_msg(DM_ENOMEM, "out of memory replaying the index log");
    return rc;
}

/*
 * A checkpoint in three phases, so that the indexer thread can write the
 * bytes without holding the user's lock:
 *   ckpt_begin  (write lock) link the pending tail, serialize, note the
 *               generation, the covered log entry and the user's epoch;
 *   ckpt_write  (no lock needed) store the chunks of the new generation;
 *   ckpt_switch (write lock) unless the user was reset meanwhile (epoch),
 *               one batch: the new head, old chunks and covered log
 *               entries deleted.  Log entries written after begin stay.
 * Until the switch the old head and its chunks are the checkpoint, so a
 * crash at any point leaves a usable one.  u->ckpt_busy keeps a second
 * checkpoint from starting meanwhile.  Writers keep logging throughout:
 * only users that already have a checkpoint (has_ckpt, so their writes are
 * logged) are checkpointed without the lock.
 */
typedef struct ckpt_job {
    buf blob;
    rec_head h;
    uint64_t epoch;
} ckpt_job;

static int ckpt_begin(dm_db *db, eng_user *u, ckpt_job *j)
{
    buf_init(&j->blob);
    int rc = eng_vec_link(db, u, UINT32_MAX); /* the graph, not the tail */
    if (!rc)
        rc = serialize_user(u, &j->blob);
    if (rc) {
        buf_fini(&j->blob);
        return rc;
    }
    j->h = (rec_head){ .gen = u->ckpt_gen + 1, .covered_useq = u->next_useq - 1,
                       .total_len = j->blob.len, .crc = crc32c(j->blob.ptr, j->blob.len) };
    j->h.n_parts = (uint32_t)((j->blob.len + CKPT_PART_MAX - 1) / CKPT_PART_MAX);
    if (!j->h.n_parts)
        j->h.n_parts = 1;
    j->epoch = u->epoch;
    u->ckpt_busy = true;
    return DM_OK;
}

static int ckpt_write(dm_db *db, const key_tu *tu, ckpt_job *j)
{
    kv_batch *b = kv_batch_new();
    uint8_t k[KEY_MAX];
    int rc = b ? DM_OK : err_set_msg(DM_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < j->h.n_parts && !rc; i++) {
        size_t off = (size_t)i * CKPT_PART_MAX;
        size_t n = j->blob.len - off < CKPT_PART_MAX ? j->blob.len - off : CKPT_PART_MAX;
        size_t kl = key_chunk(k, tu, j->h.gen, i);
        kv_batch_clear(b);
        rc = kv_batch_put(b, buf_slice_of(k, kl), buf_slice_of(j->blob.ptr + off, n));
        if (!rc)
            rc = eng_write(db, b);
    }
    kv_batch_free(b);
    return rc;
}

/* Delete the chunks of a checkpoint that will not be switched to. */
static void ckpt_drop(dm_db *db, const key_tu *tu, const ckpt_job *j)
{
    kv_batch *b = kv_batch_new();
    uint8_t k[KEY_MAX];
    int rc = b ? DM_OK : DM_ENOMEM;
    for (uint32_t i = 0; i < j->h.n_parts && !rc; i++) {
        size_t kl = key_chunk(k, tu, j->h.gen, i);
        rc = kv_batch_delete(b, buf_slice_of(k, kl));
    }
    if (!rc)
        rc = eng_write(db, b);
    if (rc)
        log_msg(LOG_WARN, "could not delete an abandoned index checkpoint: %s",
                err_last_msg());
    kv_batch_free(b);
}

static int ckpt_switch(dm_db *db, eng_user *u, ckpt_job *j)
{
    buf v;
    buf_init(&v);
    kv_batch *b = kv_batch_new();
    uint8_t k[KEY_MAX];
    int rc = b ? DM_OK : err_set_msg(DM_ENOMEM, "out of memory");
    size_t kl = key_user_kind(k, KEY_CKPT_HEAD, &u->tu);
    if (!rc)
        rc = rec_head_encode(&j->h, &v);
    if (!rc)
        rc = kv_batch_put(b, buf_slice_of(k, kl), buf_slice_of(v.ptr, v.len));
    for (uint32_t i = 0; u->has_ckpt && i < u->ckpt_parts && !rc; i++) {
        kl = key_chunk(k, &u->tu, u->ckpt_gen, i);
        rc = kv_batch_delete(b, buf_slice_of(k, kl));
    }
    for (uint64_t s = u->log_first; s && s <= j->h.covered_useq && !rc; s++) {
        kl = key_log(k, &u->tu, s);
        rc = kv_batch_delete(b, buf_slice_of(k, kl));
    }
    if (!rc)
        rc = eng_write(db, b);
    if (!rc) {
        u->has_ckpt = true;
        u->ckpt_gen = j->h.gen;
        u->ckpt_parts = j->h.n_parts;
        u->ckpt_covered = j->h.covered_useq;
        /* Entries logged after the snapshot stay: the new tail. */
        bool newer = u->next_useq - 1 > j->h.covered_useq;
        u->log_first = newer ? j->h.covered_useq + 1 : 0;
        u->dirty = newer;
        atomic_fetch_add(&db->n_checkpoints, 1);
    }
    kv_batch_free(b);
    buf_fini(&v);
    return rc;
}

int eng_user_checkpoint(dm_db *db, eng_user *u)
{
    if (u->ckpt_busy)
        return DM_OK; /* the indexer thread is writing one */
    ckpt_job j;
    int rc = ckpt_begin(db, u, &j);
    if (rc)
        return rc;
    rc = ckpt_write(db, &u->tu, &j);
    if (!rc)
        rc = ckpt_switch(db, u, &j);
    if (rc)
        ckpt_drop(db, &u->tu, &j);
    u->ckpt_busy = false;
    buf_fini(&j.blob);
    return rc;
}

int eng_user_checkpoint_unlocked(dm_db *db, eng_user *u)
{
    if (!u->has_ckpt || u->ckpt_busy) /* the first one is small: keep the lock */
        return eng_user_checkpoint(db, u);
    ckpt_job j;
    int rc = ckpt_begin(db, u, &j);
    if (rc)
        return rc;
    key_tu tu = u->tu;
    pthread_rwlock_unlock(&u->rw);
    rc = ckpt_write(db, &tu, &j);
    pthread_rwlock_wrlock(&u->rw);
    if (!rc && u->epoch != j.epoch) {
        /* Erased or reloaded meanwhile: the snapshot describes nothing. */
        ckpt_drop(db, &tu, &j);
    } else {
        if (!rc)
            rc = ckpt_switch(db, u, &j);
        if (rc)
            ckpt_drop(db, &tu, &j);
    }
    u->ckpt_busy = false;
    buf_fini(&j.blob);
    return rc;
}


/* ------------------------------------------------------------------ */
/* Loading and locking                                                 */
/* ------------------------------------------------------------------ */

static int load_user(dm_db *db, eng_user *u)
{
    uint8_t k[KEY_MAX];
    buf v, blob;
    buf_init(&v);
    buf_init(&blob);
    eng_user_reset(u);
    size_t kl = key_user_kind(k, KEY_USER, &u->tu);
    rec_user ur;
    int rc = kv_get(db->kv, NULL, buf_slice_of(k, kl), &v);
    if (rc == DM_ENOTFOUND) {
        u->exists = false;
        u->loaded = true;
        rc = DM_OK;
        goto out;
    }
    if (!rc)
        rc = rec_user_decode(buf_slice_of(v.ptr, v.len), &ur);
    if (rc)
        goto out;
    u->exists = true;
    u->created_us = ur.created_us;
    u->n_memories = ur.n_memories;
    u->next_useq = ur.next_useq ? ur.next_useq : 1;
    if (ur.state == USER_ERASING) {
        rc = eng_erase_locked(db, u, false, NULL);
        u->loaded = rc == DM_OK;
        goto out;
    }
    kl = key_user_kind(k, KEY_CKPT_HEAD, &u->tu);
    rec_head h;
    rc = kv_get(db->kv, NULL, buf_slice_of(k, kl), &v);
    if (rc == DM_OK) {
        rc = rec_head_decode(buf_slice_of(v.ptr, v.len), &h);
        if (!rc) {
            if (u->next_useq <= h.covered_useq)
                u->next_useq = h.covered_useq + 1;
            u->has_ckpt = true;
            u->ckpt_gen = h.gen;
            u->ckpt_parts = h.n_parts;
            u->ckpt_covered = h.covered_useq;
            rc = read_checkpoint(db, u, &h, &blob);
        }
        if (!rc)
            rc = deserialize_user(db, u, buf_slice_of(blob.ptr, blob.len));
        if (!rc)
            rc = replay_log(db, u);
        if (!rc && u->log_first)
            u->dirty = true; /* checkpoint at close so the next open replays nothing */
        if (rc == DM_ECORRUPT || rc == DM_EVERSION) {
            /* The records are the truth; the checkpoint only saves time. */
            log_msg(LOG_WARN, "user index checkpoint unusable (%s); rebuilding from records",
                    err_last_msg());
            bool had = u->has_ckpt;
            uint64_t gen = u->ckpt_gen, covered = u->ckpt_covered, first = u->log_first;
            uint32_t parts = u->ckpt_parts;
            uint64_t nm = u->n_memories, nu = u->next_useq;
            eng_user_reset(u);
            u->has_ckpt = had;
            u->ckpt_gen = gen;
            u->ckpt_parts = parts;
            u->ckpt_covered = covered;
            u->log_first = first;
            u->n_memories = nm;
            u->next_useq = nu;
            u->dirty = true;
            rc = load_by_scan(db, u);
        }
    } else if (rc == DM_ENOTFOUND) {
        rc = load_by_scan(db, u);
    }
    if (!rc)
        rc = ensure_indexes(db, u);
    if (!rc)
        rc = eng_facts_load(db, u);
    if (!rc) {
        u->loaded = true;
        eng_after_load(db, u);
    } else {
        eng_user_reset(u);
    }
out:
    buf_fini(&v);
    buf_fini(&blob);
    return rc;
}

/* Note a use of u for the unload pass (indexer.c): at most one store a
 * second, so that searches of one user do not keep writing its line. */
static void touch(eng_user *u)
{
    unsigned now = (unsigned)(clock_mono_us() / 1000000u);
    if (atomic_load_explicit(&u->used_s, memory_order_relaxed) != now)
        atomic_store_explicit(&u->used_s, now, memory_order_relaxed);
}

int eng_user_lock_write(dm_db *db, eng_user *u)
{
    atomic_fetch_add_explicit(&u->lock_waiters, 1, memory_order_relaxed);
    pthread_rwlock_wrlock(&u->rw);
    atomic_fetch_sub_explicit(&u->lock_waiters, 1, memory_order_relaxed);
    touch(u);
    if (u->loaded)
        return DM_OK;
    int rc = load_user(db, u);
    if (rc)
        pthread_rwlock_unlock(&u->rw);
    return rc;
}

int eng_user_lock_read(dm_db *db, eng_user *u)
{
    for (;;) {
        atomic_fetch_add_explicit(&u->lock_waiters, 1, memory_order_relaxed);
        pthread_rwlock_rdlock(&u->rw);
        atomic_fetch_sub_explicit(&u->lock_waiters, 1, memory_order_relaxed);
        if (u->loaded) {
            touch(u);
            return DM_OK;
        }
        pthread_rwlock_unlock(&u->rw);
        int rc = eng_user_lock_write(db, u);
        if (rc)
            return rc;
        pthread_rwlock_unlock(&u->rw);
    }
}

void eng_user_unlock(eng_user *u) { pthread_rwlock_unlock(&u->rw); }

void eng_users_scan_loaded(dm_db *db, void (*fn)(dm_db *db, eng_user *u, void *arg), void *arg)
{
    for (int s = 0; s < ENG_STRIPES; s++) {
        eng_stripe *st = &db->stripes[s];
        pthread_mutex_lock(&st->mu);
        for (uint32_t i = 0; i < st->cap; i++) {
            eng_user *u = st->slots[i];
            if (!u || pthread_rwlock_tryrdlock(&u->rw))
                continue;
            if (u->loaded && u->exists)
                fn(db, u, arg);
            pthread_rwlock_unlock(&u->rw);
        }
        pthread_mutex_unlock(&st->mu);
    }
}

uint64_t eng_user_index_bytes(const dm_db *db, const eng_user *u)
{
    if (!u->loaded || !u->exists)
        return 0;
    return eng_vec_memsize(db, u) + (u->text ? bm25_memsize(u->text) : 0) +
           (uint64_t)u->docs_cap * sizeof(eng_doc) + (uint64_t)u->map_cap * 4;
}

/* Unloading is a reset like the one a load starts with: everything a load
 * rebuilds goes, and u->loaded tells the next lock to load.  The
 * checkpoint rule is dm_close's: a user that has a checkpoint, or has
 * grown to checkpoint_ops memories, gets one when changed since, so that
 * its next load reads the snapshot instead of replaying or scanning. */
int eng_user_unload(dm_db *db, eng_user *u)
{
    if (u->exists && u->dirty && (u->has_ckpt || u->n_live >= db->opt.checkpoint_ops)) {
        int rc = eng_user_checkpoint(db, u);
        if (rc)
            return rc; /* stays loaded: nothing is lost either way */
    }
    eng_user_reset(u);
    u->loaded = false;
    atomic_fetch_add(&db->n_unloads, 1);
    return DM_OK;
}

/* ------------------------------------------------------------------ */
/* Erase                                                               */
/* ------------------------------------------------------------------ */

int eng_erase_locked(dm_db *db, eng_user *u, bool compact, uint64_t *n_erased)
{
    static const int kinds[] = { KEY_MEMORY, KEY_LOG,  KEY_CKPT_CHUNK,
                                 KEY_CKPT_HEAD, KEY_FACT, KEY_CHANGE, KEY_EVENT,
                                 KEY_PENDING };
    uint8_t k[KEY_MAX], lo[KEY_MAX];
    buf v;
    buf_init(&v);
    kv_batch *b = kv_batch_new();
    iter *it = NULL;
    uint64_t n_mem = 0;
    bool had[sizeof kinds / sizeof kinds[0]] = { false };
    int rc = b ? DM_OK : err_set_msg(DM_ENOMEM, "out of memory");
    /* Mark first: an erase cut short by a crash is finished on next use. */
    rec_user ur = { .state = USER_ERASING, .created_us = u->created_us,
                    .n_memories = u->n_memories, .next_useq = u->next_useq };
    size_t ukl = key_user_kind(k, KEY_USER, &u->tu);
    if (!rc)
        rc = rec_user_encode(&ur, &v);
    if (!rc)
        rc = kv_batch_put(b, buf_slice_of(k, ukl), buf_slice_of(v.ptr, v.len));
    if (!rc)
        rc = eng_write(db, b);
    if (!rc)
        rc = kv_iter_new(db->kv, NULL, &it);
    for (size_t ki = 0; ki < sizeof kinds / sizeof kinds[0] && !rc; ki++) {
        size_t lo_len = key_user_kind(lo, kinds[ki], &u->tu);
        kv_batch_clear(b);
        for (eng_seek(it, buf_slice_of(lo, lo_len)); !rc && eng_valid(it); iter_next(it)) {
            buf_slice key = iter_key(it);
            if (key.len < lo_len || memcmp(key.ptr, lo, lo_len))
                break;
            rc = kv_batch_delete(b, key);
            had[ki] = true;
            if (!rc && kinds[ki] == KEY_MEMORY && key.len == lo_len + 24) {
                size_t il = key_id(k, key.ptr + lo_len + 8);
                rc = kv_batch_delete(b, buf_slice_of(k, il));
                n_mem++;
            }
            if (!rc && kv_batch_count(b) >= 8192) {
                rc = eng_write(db, b);
                kv_batch_clear(b);
            }
        }
        if (!rc)
            rc = iter_status(it);
        if (!rc && kv_batch_count(b))
            rc = eng_write(db, b);
    }
    iter_free(it);
    if (!rc) {
        kv_batch_clear(b);
        ukl = key_user_kind(k, KEY_USER, &u->tu);
        rc = kv_batch_delete(b, buf_slice_of(k, ukl));
        if (!rc)
            rc = eng_write(db, b);
    }
    if (!rc) {
        eng_user_reset(u);
        u->exists = false;
        u->loaded = true;
        if (n_erased)
            *n_erased = n_mem;
    }
    /* Compact the user's ranges so that the erased bytes leave the disk
     * now, not at some later compaction: every kind that held content
     * (texts, embeddings, index terms).  These ranges are contiguous, so
     * the cost is the files that overlap them, not the database.  The
     * id-index entries (id -> user and time, no content) and the user
     * record are scattered or tiny; they leave with the next compaction
     * that reaches them. */
    for (size_t ki = 0; !rc && compact && ki < sizeof kinds / sizeof kinds[0]; ki++) {
        if (!had[ki])
            continue; /* nothing of this kind was written */
        uint8_t hi[KEY_MAX + 1];
        size_t n = key_user_kind(lo, kinds[ki], &u->tu);
        memcpy(hi, lo, n);
        hi[n] = 0xff; /* every key of the range sorts below lo + 0xff.. */
        memset(hi + n + 1, 0xff, 24);
        rc = kv_compact_range(db->kv, &(buf_slice){ lo, n }, &(buf_slice){ hi, n + 25 });
    }
    kv_batch_free(b);
    buf_fini(&v);
    return rc;
}

int eng_users_close(dm_db *db)
{
    int first = DM_OK;
    for (int s = 0; s < ENG_STRIPES; s++) {
        eng_stripe *st = &db->stripes[s];
        for (uint32_t i = 0; i < st->cap; i++) {
            eng_user *u = st->slots[i];
            if (!u)
                continue;
            if (u->loaded && u->exists && u->dirty &&
                (u->has_ckpt || u->n_live >= db->opt.checkpoint_ops)) {
                int rc = eng_user_checkpoint(db, u);
                if (rc && !first)
                    first = rc;
            }
            eng_user_free(u);
        }
        dm_free(st->slots);
        st->slots = NULL;
        st->cap = st->n = 0;
        pthread_mutex_destroy(&st->mu);
    }
    return first;
}
