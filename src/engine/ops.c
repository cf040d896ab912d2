/*
 * ops.c -- the memory operations of the public API: add, update, delete,
 * erase, get, list and search.
 *
 * Write path (add): validate everything -> embed (no lock held: embedding
 * may be slow) -> take the write lock of every user in the batch, in key
 * order -> ONE storage batch with each memory record, its id-index entry,
 * each user record and, for users with an index checkpoint, index log
 * entries -> one sync -> the in-memory indexes -> unlock.  The
 * memory is searchable when the call returns: a vector joins its user's
 * graph later, on the indexer thread, and is scanned exactly until then
 * (indexer.c).  If the in-memory update
 * fails after the batch is durable, the user is marked unloaded and its
 * indexes are rebuilt from storage on next use, so memory and disk never
 * disagree for long.
 *
 * Read path (search): validate and embed the query -> the user's read lock
 * -> the vector leg (HNSW or exact scan) and the BM25 leg, each over a
 * candidate pool larger than k -> every candidate scored on both legs ->
 * score = 0.5 * cosine + 0.5 * BM25 / best BM25 -> unlock -> fetch the
 * records in score order, applying the metadata filter, until k are found.
 * The next issue replaces the scoring with rank fusion and weights.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "engine/engine_int.h"
#include "engine/record.h"
#include "index/distance.h"

void dm_add_params_init(dm_add_params *p)
{
    memset(p, 0, sizeof *p);
    p->salience = 1.0f;
    p->decay_rate = -1.0f; /* the kind's, user's or tenant's default */
}

static const char *tenant_or_default(const char *t)
{
    return t ? t : DM_DEFAULT_TENANT;
}

/* One validated item of an add batch. */
typedef struct add_item {
    const dm_add_params *p;
    key_tu tu;
    size_t text_len;
    char *metadata;   /* canonical, owned */
    uint8_t id[16];
    int64_t ts, record_us;
    float *vec;       /* into the batch's vector array */
    float decay;      /* the record's decay rate and refresh time, for */
    int64_t sal_at;   /* the document table (add_prepare) */
    uint32_t order;   /* position in the caller's array */
    eng_xwait *wait;  /* a dm_remember waiting for the extraction; NULL */
} add_item;

static int validate_add(dm_db *db, const dm_add_params *p, size_t idx, bool name_idx,
                        add_item *it)
{
    size_t tl, ul, al, sl, rl;
    int rc;
    memset(it, 0, sizeof *it);
    it->p = p;
    if ((rc = eng_validate_name("tenant", p->tenant, false, &tl)) ||
        (rc = eng_validate_name("user_id", p->user_id, true, &ul)) ||
        (rc = eng_validate_name("agent_id", p->agent_id, false, &al)) ||
        (rc = eng_validate_name("session_id", p->session_id, false, &sl)) ||
        (rc = eng_validate_name("role", p->role, false, &rl)))
        goto fail;
    it->text_len = p->text && p->text_len ? p->text_len : p->text ? strlen(p->text) : 0;
    if ((rc = eng_validate_text(db, "text", p->text, it->text_len)))
        goto fail;
    if (!(p->salience >= 0.0f && p->salience <= 1.0f)) {
        rc = err_set_msg(DM_EINVAL, "salience %g is outside [0, 1]", (double)p->salience);
        goto fail;
    }
    if (!(p->decay_rate < 1e6f)) { /* NaN and +inf too */
        rc = err_set_msg(DM_EINVAL, "decay_rate %g must be finite (negative: the default)",
                         (double)p->decay_rate);
        goto fail;
    }
    if ((unsigned)p->kind > DM_KIND_SUMMARY || (unsigned)p->state > DM_STATE_ARCHIVED) {
        rc = err_set_msg(DM_EINVAL, "unknown kind %d or state %d", (int)p->kind, (int)p->state);
        goto fail;
    }
    if (p->embedding && p->dim != db->dim) {
        rc = err_set_msg(DM_EINVAL, "embedding has %u dimensions; the database's model has %u",
                         p->dim, db->dim);
        goto fail;
    }
    if ((rc = eng_validate_metadata(db, p->metadata, &it->metadata)))
        goto fail;
    const char *tenant = tenant_or_default(p->tenant);
    key_tu_make(&it->tu, tenant, strlen(tenant), p->user_id, ul);
    it->ts = p->event_time_us ? p->event_time_us : (int64_t)clock_wall_us();
    it->record_us = p->record_time_us ? p->record_time_us : (int64_t)clock_wall_us();
    it->order = (uint32_t)idx;
    return DM_OK;
fail:
    if (!name_idx)
        return rc;
    char msg[256];
    snprintf(msg, sizeof msg, "%s", err_last_msg());
    return err_set_msg(rc, "item %zu: %s", idx, msg);
}

static int cmp_item(const void *a, const void *b)
{
    const add_item *x = a, *y = b;
    if (x->tu.len != y->tu.len)
        return x->tu.len < y->tu.len ? -1 : 1;
    int c = memcmp(x->tu.b, y->tu.b, x->tu.len);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int put_user_record(eng_user *u, kv_batch *b, buf *v)
{
    uint8_t k[KEY_MAX];
    size_t kl = key_user_kind(k, KEY_USER, &u->tu);
    rec_user ur = { .state = USER_LIVE, .created_us = u->created_us,
                    .n_memories = u->n_memories, .next_useq = u->next_useq };
    buf_clear(v);
    int rc = rec_user_encode(&ur, v);
    return rc ? rc : kv_batch_put(b, buf_slice_of(k, kl), buf_slice_of(v->ptr, v->len));
}

int eng_put_log(eng_user *u, kv_batch *b, buf *v, int op, const uint8_t id[16],
                int64_t ts, buf_slice old_text)
{
    if (!u->has_ckpt)
        return DM_OK;
    uint8_t k[KEY_MAX];
    uint64_t useq = u->next_useq++;
    if (!u->log_first)
        u->log_first = useq;
    size_t kl = key_log(k, &u->tu, useq);
    rec_log l = { .op = (uint8_t)op, .ts = ts, .old_text = old_text };
    memcpy(l.id, id, 16);
    buf_clear(v);
    int rc = rec_log_encode(&l, v);
    return rc ? rc : kv_batch_put(b, buf_slice_of(k, kl), buf_slice_of(v->ptr, v->len));
}

/* The records of items[0..n), all of user u, appended to b.
 * REQUIRES: u's write lock.  On failure u is unchanged. */
static int add_prepare(dm_db *db, eng_user *u, add_item *items, size_t n, kv_batch *b,
                       buf *v)
{
    uint8_t k[KEY_MAX];
    int rc = DM_OK;
    uint64_t saved_useq = u->next_useq, saved_first = u->log_first;
    if (!u->exists) {
        u->created_us = (int64_t)clock_wall_us();
        u->next_useq = 1;
        u->n_memories = 0;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        add_item *it = &items[i];
        const dm_add_params *p = it->p;
        float decay = p->decay_rate;
        if (decay < 0 && (rc = eng_default_decay(db, u, (int)p->kind, &decay)))
            break;
        it->decay = decay;
        rec_memory r = {
            .kind = (uint8_t)p->kind, .state = (uint8_t)p->state,
            .record_time_us = it->record_us, .salience = p->salience,
            .decay_rate = decay, .access_count = p->access_count,
            .last_access_us = p->last_access_us,
            .role = p->role ? buf_slice_of(p->role, strlen(p->role)) : buf_slice_of("user", 4),
            .text = buf_slice_of(p->text, it->text_len),
            .metadata = buf_slice_of(it->metadata, strlen(it->metadata)),
            .dim = db->dim, .emb_f16 = db->vec_f16,
        };
        if (p->agent_id)
            r.agent_id = buf_slice_of(p->agent_id, strlen(p->agent_id));
        if (p->session_id)
            r.session_id = buf_slice_of(p->session_id, strlen(p->session_id));
        it->sal_at = rec_memory_refreshed_us(&r);
        buf_clear(v);
        rc = rec_memory_encode(&r, it->vec, v);
        size_t kl = key_memory(k, &u->tu, it->ts, it->id);
        if (!rc)
            rc = kv_batch_put(b, buf_slice_of(k, kl), buf_slice_of(v->ptr, v->len));
        uint8_t ik[17], iv[KEY_TU_MAX + 8];
        key_id(ik, it->id);
        memcpy(iv, u->tu.b, u->tu.len);
        enc_be64(iv + u->tu.len, key_ts_encode(it->ts));
        if (!rc)
            rc = kv_batch_put(b, buf_slice_of(ik, 17), buf_slice_of(iv, u->tu.len + 8));
        if (!rc)
            rc = eng_put_log(u, b, v, LOG_ADD, it->id, it->ts, buf_slice_of("", 0));
        if (!rc && !p->no_extract) {
            /* The extraction job, durable with the turn (extractq.c). */
            uint8_t pv[8];
            enc_be64(pv, key_ts_encode(it->ts));
            kl = key_pending(k, &u->tu, it->id);
            rc = kv_batch_put(b, buf_slice_of(k, kl), buf_slice_of(pv, 8));
        }
    }
    u->n_memories += n;
    if (!rc)
        rc = put_user_record(u, b, v);
    if (rc) {
        u->n_memories -= n;
        u->next_useq = saved_useq;
        u->log_first = saved_first;
    }
    return rc;
}

/* Undo add_prepare's bookkeeping after a failed write. */
static void add_unprepare(eng_user *u, size_t n, uint64_t useq, uint64_t first)
{
    u->n_memories -= n;
    u->next_useq = useq;
    u->log_first = first;
}

/* Queue the extraction of items[0..n) of u, stored durably.  True when
 * the caller must run u's queue once it has unlocked u.  REQUIRES: write
 * lock, so that the user's turns queue in the order they were written. */
static bool add_queue(dm_db *db, eng_user *u, add_item *items, size_t n)
{
    bool run = false;
    for (size_t i = 0; i < n; i++) {
        const dm_add_params *p = items[i].p;
        if (p->no_extract)
            continue;
        eng_xjob *j = eng_xjob_new(items[i].id, items[i].ts, items[i].record_us, p->role,
                                   p->session_id, p->text, items[i].text_len,
                                   items[i].metadata);
        if (!j) {
            /* The 'P' record keeps the job for the next open. */
            if (items[i].wait) {
                items[i].wait->rc = err_set_msg(DM_ENOMEM, "out of memory queueing extraction");
                items[i].wait->done = true;
            }
            continue;
        }
        j->wait = items[i].wait;
        run |= eng_xq_push(db, u, j);
    }
    return run;
}

/* Index items[0..n) of u after their batch is durable.  REQUIRES: write lock. */
static void add_apply(dm_db *db, eng_user *u, add_item *items, size_t n)
{
    int rc = DM_OK;
    u->exists = true;
    u->dirty = true;
    for (size_t i = 0; i < n && !rc; i++) {
        uint32_t doc;
        const dm_add_params *p = items[i].p;
        rc = eng_doc_add(u, items[i].id, items[i].ts,
                         p->state == DM_STATE_ARCHIVED ? DOC_ARCHIVED : 0, &doc);
        if (!rc)
            eng_doc_salience_set(u, doc, p->salience, items[i].decay, items[i].sal_at);
        if (!rc)
            rc = eng_index_memory(db, u, doc, items[i].p->text, items[i].text_len,
                                  items[i].vec);
    }
    if (rc) {
        /* Stored but not indexed: rebuild from storage on next use. */
        eng_user_reset(u);
        u->loaded = false;
    } else {
        eng_after_write(db, u);
    }
}

/* One user's slice of a sorted batch. */
typedef struct add_group {
    eng_user *u;
    size_t first, n;
    uint64_t saved_useq, saved_first;
    bool locked, prepared;
    bool run_queue;   /* extract the user's queue after unlocking */
} add_group;

/*
 * Store sorted items as ONE storage write: every user of the batch is
 * write-locked in key order (the same order in every batch, so two batches
 * cannot deadlock), all records go into one batch, and one sync makes them
 * durable together.
 */
static int add_sorted(dm_db *db, add_item *items, size_t n)
{
    add_group *g = dm_calloc(n, sizeof *g);
    kv_batch *b = kv_batch_new();
    buf v;
    buf_init(&v);
    size_t ng = 0;
    int rc = g && b ? DM_OK : err_set_msg(DM_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc;) {
        size_t j = i + 1;
        while (j < n && items[j].tu.len == items[i].tu.len &&
               !memcmp(items[j].tu.b, items[i].tu.b, items[i].tu.len))
            j++;
        g[ng].first = i;
        g[ng].n = j - i;
        rc = eng_user_get_tu(db, &items[i].tu, &g[ng].u);
        if (!rc)
            rc = eng_user_lock_write(db, g[ng].u);
        if (!rc)
            g[ng].locked = true;
        ng++;
        i = j;
    }
    for (size_t x = 0; x < ng && !rc; x++) {
        g[x].saved_useq = g[x].u->next_useq;
        g[x].saved_first = g[x].u->log_first;
        rc = add_prepare(db, g[x].u, items + g[x].first, g[x].n, b, &v);
        g[x].prepared = rc == DM_OK;
    }
    if (!rc)
        rc = eng_write(db, b);
    for (size_t x = 0; x < ng; x++) {
        if (rc && g[x].prepared)
            add_unprepare(g[x].u, g[x].n, g[x].saved_useq, g[x].saved_first);
        else if (!rc) {
            add_apply(db, g[x].u, items + g[x].first, g[x].n);
            g[x].run_queue = add_queue(db, g[x].u, items + g[x].first, g[x].n);
        }
        if (g[x].locked)
            eng_user_unlock(g[x].u);
    }
    for (size_t x = 0; x < ng; x++)
        if (g[x].run_queue)
            eng_xq_run(db, g[x].u, NULL);
    dm_free(g);
    kv_batch_free(b);
    buf_fini(&v);
    return rc;
}

/* dm_add_batch; wait (n == 1 only; may be NULL) learns the extraction's
 * outcome once it has run. */
static int add_batch(dm_db *db, const dm_add_params *ps, size_t n, dm_id *out_ids,
                     eng_xwait *wait)
{
    add_item *items = NULL;
    float *vecs = NULL;
    const char **texts = NULL;
    size_t *lens = NULL;
    size_t *which = NULL;
    int rc = DM_OK;
    if (out_ids)
        memset(out_ids, 0, n * sizeof *out_ids);
    if (!db || (!ps && n))
        return err_set_msg(DM_EINVAL, "add: no database or no items");
    if (n == 0)
        return DM_OK;
    items = dm_calloc(n, sizeof *items);
    vecs = dm_malloc(n * (size_t)(db->dim ? db->dim : 1) * sizeof(float));
    texts = dm_malloc(n * sizeof *texts);
    lens = dm_malloc(n * sizeof *lens);
    which = dm_malloc(n * sizeof *which);
    if (!items || !vecs || !texts || !lens || !which) {
        rc = err_set_msg(DM_ENOMEM, "out of memory adding %zu memories", n);
        goto out;
    }
    size_t n_embed = 0;
    for (size_t i = 0; i < n; i++) {
        rc = validate_add(db, &ps[i], i, n > 1, &items[i]);
        if (rc)
            goto out;
        items[i].vec = vecs + i * db->dim;
        if (ps[i].id) {
            buf val;
            buf_init(&val);
            uint8_t ik[17];
            key_id(ik, ps[i].id->bytes);
            rc = kv_get(db->kv, NULL, buf_slice_of(ik, 17), &val);
            buf_fini(&val);
            if (rc == DM_OK) {
                char s[DM_ID_STRLEN + 1];
                dm_id_format(ps[i].id, s);
                rc = err_set_msg(DM_EEXISTS, "item %zu: id %s is already in use", i, s);
                goto out;
            }
            if (rc != DM_ENOTFOUND)
                goto out;
            rc = DM_OK;
            for (size_t j = 0; j < i; j++)
                if (ps[j].id && !memcmp(ps[j].id->bytes, ps[i].id->bytes, 16)) {
                    rc = err_set_msg(DM_EEXISTS, "items %zu and %zu have the same id", j, i);
                    goto out;
                }
            memcpy(items[i].id, ps[i].id->bytes, 16);
            eng_id_seen(db, items[i].id);
        }
        if (ps[i].embedding) {
            memcpy(items[i].vec, ps[i].embedding, sizeof(float) * db->dim);
        } else {
            texts[n_embed] = ps[i].text;
            lens[n_embed] = items[i].text_len;
            which[n_embed++] = i;
        }
    }
    /* Embed without any lock: an HTTP model may take milliseconds. */
    if (n_embed) {
        float *tmp = n_embed == n ? vecs : dm_malloc(n_embed * db->dim * sizeof(float));
        if (!tmp) {
            rc = err_set_msg(DM_ENOMEM, "out of memory embedding");
            goto out;
        }
        rc = embedder_embed(db->emb, texts, lens, n_embed, tmp);
        if (!rc && tmp != vecs)
            for (size_t j = 0; j < n_embed; j++)
                memcpy(items[which[j]].vec, tmp + j * db->dim, sizeof(float) * db->dim);
        if (tmp != vecs)
            dm_free(tmp);
        if (rc)
            goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (!ps[i].id)
            eng_new_id(db, items[i].id);
    if (n == 1)
        items[0].wait = wait;
    if (n > 1)
        qsort(items, n, sizeof *items, cmp_item);
    rc = add_sorted(db, items, n);
    for (size_t x = 0; x < n && !rc && out_ids; x++)
        memcpy(out_ids[items[x].order].bytes, items[x].id, 16);
out:
    for (size_t i = 0; items && i < n; i++)
        dm_free(items[i].metadata);
    dm_free(items);
    dm_free(vecs);
    dm_free(texts);
    dm_free(lens);
    dm_free(which);
    return rc;
}

int dm_add_batch(dm_db *db, const dm_add_params *ps, size_t n, dm_id *out_ids)
{
    return add_batch(db, ps, n, out_ids, NULL);
}

int dm_add(dm_db *db, const dm_add_params *p, dm_id *out_id)
{
    if (!p)
        return err_set_msg(DM_EINVAL, "add: no parameters");
    return add_batch(db, p, 1, out_id, NULL);
}

int eng_add_wait(dm_db *db, const dm_add_params *p, dm_id *out_id, eng_xwait *wait)
{
    if (!p)
        return err_set_msg(DM_EINVAL, "add: no parameters");
    return add_batch(db, p, 1, out_id, wait);
}

/* ------------------------------------------------------------------ */
/* Lookup by id                                                        */
/* ------------------------------------------------------------------ */

/* The owner (tu) and event time of id, checked against the scope. */
static int locate(dm_db *db, const dm_scope *scope, const dm_id *id, key_tu *tu, int64_t *ts)
{
    uint8_t ik[17];
    buf v;
    buf_init(&v);
    char s[DM_ID_STRLEN + 1];
    if (!db || !id)
        return err_set_msg(DM_EINVAL, "no database or no id");
    dm_id_format(id, s);
    key_id(ik, id->bytes);
    int rc = kv_get(db->kv, NULL, buf_slice_of(ik, 17), &v);
    if (rc == DM_ENOTFOUND)
        rc = err_set_msg(DM_ENOTFOUND, "no memory with id %s", s);
    buf_slice t, u;
    size_t tul = 0;
    if (!rc && (!key_tu_split(v.ptr, v.len, &t, &u, &tul) || v.len != tul + 8))
        rc = err_set_msg(DM_ECORRUPT, "id index entry of %s is damaged", s);
    if (!rc) {
        memcpy(tu->b, v.ptr, tul);
        tu->len = (uint32_t)tul;
        *ts = key_ts_decode(dec_be64(v.ptr + tul));
    }
    if (!rc && scope && scope->user_id) {
        const char *tn = tenant_or_default(scope->tenant);
        key_tu want;
        size_t tl, ul;
        if ((rc = eng_validate_name("tenant", scope->tenant, false, &tl)) ||
            (rc = eng_validate_name("user_id", scope->user_id, true, &ul)))
            goto out;
        key_tu_make(&want, tn, strlen(tn), scope->user_id, ul);
        if (want.len != tu->len || memcmp(want.b, tu->b, tu->len))
            rc = err_set_msg(DM_ENOTFOUND, "no memory with id %s for this user", s);
    }
out:
    buf_fini(&v);
    return rc;
}

int dm_get(dm_db *db, const dm_scope *scope, const dm_id *id, unsigned flags,
           dm_memory **out)
{
    key_tu tu;
    int64_t ts;
    uint8_t k[KEY_MAX];
    buf v;
    *out = NULL;
    int rc = locate(db, scope, id, &tu, &ts);
    if (rc)
        return rc;
    buf_init(&v);
    size_t kl = key_memory(k, &tu, ts, id->bytes);
    rc = kv_get(db->kv, NULL, buf_slice_of(k, kl), &v);
    if (rc == DM_ENOTFOUND)
        rc = err_set_msg(DM_ENOTFOUND, "memory was deleted");
    dm_memory *m = rc ? NULL : dm_malloc(sizeof *m);
    if (!rc && !m)
        rc = err_set_msg(DM_ENOMEM, "out of memory");
    if (!rc)
        rc = eng_memory_fill(m, &tu, ts, id->bytes, buf_slice_of(v.ptr, v.len), flags);
    buf_fini(&v);
    if (rc) {
        dm_free(m);
        return rc;
    }
    *out = m;
    return DM_OK;
}

/* ------------------------------------------------------------------ */
/* Update and delete                                                   */
/* ------------------------------------------------------------------ */

/* Lock the owner of a located id for writing; reads its record into v. */
static int lock_owner(dm_db *db, const key_tu *tu, int64_t ts, const dm_id *id,
                      eng_user **out_u, buf *v)
{
    uint8_t k[KEY_MAX];
    eng_user *u;
    int rc = eng_user_get_tu(db, tu, &u);
    if (!rc)
        rc = eng_user_lock_write(db, u);
    if (rc)
        return rc;
    size_t kl = key_memory(k, tu, ts, id->bytes);
    rc = kv_get(db->kv, NULL, buf_slice_of(k, kl), v);
    if (rc == DM_ENOTFOUND)
        rc = err_set_msg(DM_ENOTFOUND, "memory was deleted");
    if (rc) {
        eng_user_unlock(u);
        return rc;
    }
    *out_u = u;
    return DM_OK;
}

int dm_update(dm_db *db, const dm_scope *scope, const dm_id *id, const char *text,
              const char *metadata)
{
    key_tu tu;
    int64_t ts;
    char *meta = NULL;
    float *vec = NULL;
    kv_batch *b = NULL;
    buf old, v, lv;
    buf_init(&old);
    buf_init(&v);
    buf_init(&lv);
    eng_user *u = NULL;
    size_t text_len = text ? strlen(text) : 0;
    int rc;
    if (!db)
        return err_set_msg(DM_EINVAL, "no database");
    if (!text && !metadata)
        return err_set_msg(DM_EINVAL, "update: neither text nor metadata given");
    if (text && (rc = eng_validate_text(db, "text", text, text_len)))
        return rc;
    if (metadata && (rc = eng_validate_metadata(db, metadata, &meta)))
        return rc;
    rc = locate(db, scope, id, &tu, &ts);
    if (rc)
        goto out;
    if (text) {
        vec = dm_malloc(sizeof(float) * (db->dim ? db->dim : 1));
        rc = vec ? embedder_embed(db->emb, &text, &text_len, 1, vec)
                 : err_set_msg(DM_ENOMEM, "out of memory");
        if (rc)
            goto out;
    }
    b = kv_batch_new();
    if (!b) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto out;
    }
    rc = lock_owner(db, &tu, ts, id, &u, &old);
    if (rc) {
        u = NULL;
        goto out;
    }
    rec_memory r;
    rc = rec_memory_decode(buf_slice_of(old.ptr, old.len), &r);
    if (rc)
        goto out;
    buf_slice old_text = r.text;
    float *keep = NULL;
    if (text) {
        r.text = buf_slice_of(text, text_len);
        r.dim = db->dim;
        r.emb_f16 = db->vec_f16;
    } else {
        keep = dm_malloc(sizeof(float) * (r.dim ? r.dim : 1));
        if (!keep) {
            rc = err_set_msg(DM_ENOMEM, "out of memory");
            goto out;
        }
        rec_memory_embedding(&r, keep);
    }
    if (meta)
        r.metadata = buf_slice_of(meta, strlen(meta));
    rc = rec_memory_encode(&r, text ? vec : keep, &v);
    dm_free(keep);
    uint8_t k[KEY_MAX];
    size_t kl = key_memory(k, &tu, ts, id->bytes);
    if (!rc)
        rc = kv_batch_put(b, buf_slice_of(k, kl), buf_slice_of(v.ptr, v.len));
    uint64_t saved_useq = u->next_useq, saved_first = u->log_first;
    if (!rc && text)
        rc = eng_put_log(u, b, &lv, LOG_UPDATE, id->bytes, ts, old_text);
    if (!rc)
        rc = eng_write(db, b);
    if (rc) {
        u->next_useq = saved_useq;
        u->log_first = saved_first;
        goto out;
    }
    u->dirty = true;
    uint32_t doc = eng_doc_find(u, id->bytes);
    if (doc != UINT32_MAX)
        eng_doc_salience_set(u, doc, r.salience, r.decay_rate, rec_memory_refreshed_us(&r));
    if (text && doc != UINT32_MAX) {
        int irc = bm25_delete(u->text, doc, (const char *)old_text.ptr, old_text.len);
        eng_vec_remove(u, doc);
        if (!irc)
            irc = eng_index_memory(db, u, doc, text, text_len, vec);
        if (irc) {
            eng_user_reset(u);
            u->loaded = false;
        } else {
            eng_after_write(db, u);
        }
    }
out:
    if (u)
        eng_user_unlock(u);
    kv_batch_free(b);
    dm_free(meta);
    dm_free(vec);
    buf_fini(&old);
    buf_fini(&v);
    buf_fini(&lv);
    return rc;
}

int dm_set_state(dm_db *db, const dm_scope *scope, const dm_id *id, dm_memory_state state)
{
    key_tu tu;
    int64_t ts;
    eng_user *u = NULL;
    buf old;
    buf_init(&old);
    if (!db)
        return err_set_msg(DM_EINVAL, "no database");
    if (state != DM_STATE_ACTIVE && state != DM_STATE_ARCHIVED)
        return err_set_msg(DM_EINVAL, "set_state: unknown state %d", (int)state);
    int rc = locate(db, scope, id, &tu, &ts);
    if (!rc)
        rc = lock_owner(db, &tu, ts, id, &u, &old);
    if (!rc) {
        rc = eng_set_state_locked(db, u, ts, id->bytes, buf_slice_of(old.ptr, old.len), state,
                                  (int64_t)clock_wall_us());
        eng_user_unlock(u);
    }
    buf_fini(&old);
    return rc;
}

int dm_delete(dm_db *db, const dm_scope *scope, const dm_id *id)
{
    key_tu tu;
    int64_t ts;
    buf old, v, lv;
    buf_init(&old);
    buf_init(&v);
    buf_init(&lv);
    eng_user *u = NULL;
    kv_batch *b = NULL;
    int rc = locate(db, scope, id, &tu, &ts);
    if (rc)
        goto out;
    b = kv_batch_new();
    if (!b) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto out;
    }
    rc = lock_owner(db, &tu, ts, id, &u, &old);
    if (rc) {
        u = NULL;
        goto out;
    }
    rec_memory r;
    rc = rec_memory_decode(buf_slice_of(old.ptr, old.len), &r);
    if (rc)
        goto out;
    uint8_t k[KEY_MAX], ik[17];
    size_t kl = key_memory(k, &tu, ts, id->bytes);
    key_id(ik, id->bytes);
    uint64_t saved_useq = u->next_useq, saved_first = u->log_first;
    rc = kv_batch_delete(b, buf_slice_of(k, kl));
    if (!rc)
        rc = kv_batch_delete(b, buf_slice_of(ik, 17));
    if (!rc)
        rc = eng_put_log(u, b, &lv, LOG_DELETE, id->bytes, ts, r.text);
    if (!rc) {
        u->n_memories--;
        rc = put_user_record(u, b, &v);
        if (rc)
            u->n_memories++;
    }
    if (!rc) {
        rc = eng_write(db, b);
        if (rc)
            u->n_memories++;
    }
    if (rc) {
        u->next_useq = saved_useq;
        u->log_first = saved_first;
        goto out;
    }
    u->dirty = true;
    uint32_t doc = eng_doc_find(u, id->bytes);
    if (doc != UINT32_MAX) {
        bm25_delete(u->text, doc, (const char *)r.text.ptr, r.text.len);
        eng_doc_remove(u, doc);
        eng_after_write(db, u);
    }
out:
    if (u)
        eng_user_unlock(u);
    kv_batch_free(b);
    buf_fini(&old);
    buf_fini(&v);
    buf_fini(&lv);
    return rc;
}

int eng_scope_user(dm_db *db, const char *tenant, const char *user, eng_user **u)
{
    size_t tl, ul;
    int rc;
    *u = NULL;
    if (!db)
        return err_set_msg(DM_EINVAL, "no database");
    if ((rc = eng_validate_name("tenant", tenant, false, &tl)) ||
        (rc = eng_validate_name("user_id", user, true, &ul)))
        return rc;
    return eng_user_get(db, tenant_or_default(tenant), user, u);
}

int eng_unknown_user(const char *tenant, const char *user)
{
    return err_set_msg(DM_ENOTFOUND, "unknown user '%s' in tenant '%s'", user,
                       tenant_or_default(tenant));
}

int dm_erase_user(dm_db *db, const char *tenant, const char *user_id, uint64_t *n_erased)
{
    eng_user *u;
    if (n_erased)
        *n_erased = 0;
    int rc = eng_scope_user(db, tenant, user_id, &u);
    if (!rc)
        rc = eng_user_lock_write(db, u);
    if (rc)
        return rc;
    if (!u->exists)
        rc = eng_unknown_user(tenant, user_id);
    else
        rc = eng_erase_locked(db, u, true, n_erased);
    eng_user_unlock(u);
    /* The user's decay-rate settings name the user too. */
    for (int k = DM_KIND_EPISODIC; !rc && atomic_load(&db->has_decay_rates) && k <= DM_KIND_SUMMARY;
         k++)
        rc = dm_set_decay_rate(db, tenant, user_id, (dm_memory_kind)k, -1);
    return rc;
}

/* ------------------------------------------------------------------ */
/* List                                                                */
/* ------------------------------------------------------------------ */

static int user_exists(dm_db *db, const key_tu *tu)
{
    uint8_t k[KEY_MAX];
    buf v;
    buf_init(&v);
    size_t kl = key_user_kind(k, KEY_USER, tu);
    int rc = kv_get(db->kv, NULL, buf_slice_of(k, kl), &v);
    rec_user ur;
    if (!rc)
        rc = rec_user_decode(buf_slice_of(v.ptr, v.len), &ur);
    buf_fini(&v);
    if (!rc && ur.state != USER_LIVE)
        rc = DM_ENOTFOUND;
    return rc;
}

static void cursor_format(const uint8_t *tail24, char out[49])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 24; i++) {
        out[2 * i] = hex[tail24[i] >> 4];
        out[2 * i + 1] = hex[tail24[i] & 15];
    }
    out[48] = 0;
}

static int cursor_parse(const char *s, uint8_t tail24[24])
{
    if (strlen(s) != 48)
        return err_set_msg(DM_EINVAL, "cursor '%.60s' is not one this database returned", s);
    for (int i = 0; i < 24; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char c = s[2 * i + j];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return err_set_msg(DM_EINVAL, "cursor: bad character at position %d", 2 * i + j);
            v = v * 16 + d;
        }
        tail24[i] = (uint8_t)v;
    }
    return DM_OK;
}

void dm_list_result_free(dm_list_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        eng_memory_fini(&r->items[i]);
    dm_free(r->items);
    dm_free(r->next_cursor);
    dm_free(r);
}

int dm_list(dm_db *db, const dm_list_params *p, dm_list_result **out)
{
    *out = NULL;
    size_t tl, ul;
    int rc;
    if (!db || !p)
        return err_set_msg(DM_EINVAL, "list: no database or parameters");
    if ((rc = eng_validate_name("tenant", p->tenant, false, &tl)) ||
        (rc = eng_validate_name("user_id", p->user_id, true, &ul)))
        return rc;
    if (p->from_us && p->to_us && p->from_us > p->to_us)
        return err_set_msg(DM_EINVAL, "list: from is after to");
    if (p->limit > 10000)
        return err_set_msg(DM_EINVAL, "list: limit %u is over 10000", p->limit);
    uint32_t limit = p->limit ? p->limit : 100;
    key_tu tu;
    const char *tn = tenant_or_default(p->tenant);
    key_tu_make(&tu, tn, strlen(tn), p->user_id, ul);
    uint8_t lo[KEY_MAX], hi[KEY_MAX];
    size_t lo_len = key_user_kind(lo, KEY_MEMORY, &tu);
    memcpy(hi, lo, lo_len);
    size_t hi_len = lo_len;
    if (p->cursor) {
        rc = cursor_parse(p->cursor, hi + lo_len);
        if (rc)
            return rc;
        hi_len = lo_len + 24; /* exclusive: the last key of the previous page */
    } else if (p->to_us) {
        enc_be64(hi + lo_len, key_ts_encode(p->to_us));
        hi_len = lo_len + 8;
    } else {
        hi[lo_len] = 0xff; /* past every timestamp of the user */
        memset(hi + lo_len + 1, 0xff, 24);
        hi_len = lo_len + 25;
    }
    rc = user_exists(db, &tu);
    if (rc == DM_ENOTFOUND)
        return eng_unknown_user(p->tenant, p->user_id);
    if (rc)
        return rc;
    dm_list_result *r = dm_calloc(1, sizeof *r);
    iter *it = NULL;
    if (!r || !(r->items = dm_calloc(limit, sizeof *r->items))) {
        dm_free(r);
        return err_set_msg(DM_ENOMEM, "out of memory");
    }
    rc = kv_iter_new(db->kv, NULL, &it);
    if (rc)
        goto out;
    iter_seek(it, buf_slice_of(hi, hi_len));
    if (iter_valid(it))
        iter_prev(it);
    else
        iter_seek_last(it);
    uint8_t last[24];
    bool more = false;
    for (; iter_valid(it); iter_prev(it)) {
        buf_slice k = iter_key(it);
        if (k.len != lo_len + 24 || memcmp(k.ptr, lo, lo_len))
            break;
        int64_t ts = key_ts_decode(dec_be64(k.ptr + lo_len));
        if (p->to_us && ts >= p->to_us)
            continue;
        if (p->from_us && ts < p->from_us)
            break;
        if (r->n == limit) {
            more = true;
            break;
        }
        dm_memory *m = &r->items[r->n];
        rc = eng_memory_fill(m, &tu, ts, k.ptr + lo_len + 8, iter_value(it), p->flags);
        if (rc)
            goto out;
        if (m->state == DM_STATE_ARCHIVED && !(p->flags & DM_WITH_ARCHIVED)) {
            eng_memory_fini(m);
            continue;
        }
        memcpy(last, k.ptr + lo_len, 24);
        r->n++;
    }
    rc = iter_status(it);
    if (!rc && more) {
        r->next_cursor = dm_malloc(49);
        if (!r->next_cursor)
            rc = err_set_msg(DM_ENOMEM, "out of memory");
        else
            cursor_format(last, r->next_cursor);
    }
out:
    iter_free(it);
    if (rc) {
        dm_list_result_free(r);
        return rc;
    }
    *out = r;
    return DM_OK;
}

