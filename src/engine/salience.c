/*
 * salience.c -- salience: refresh on recall, archive on fading.
 *
 * A memory's current salience is stored * e^(-decay_rate * days since its
 * last refresh) (eng_salience); the record keeps the stored value,
 * the rate and the time of the last refresh (last_access_us, or the record
 * time before any).  Two things change it:
 *
 *   refresh  dm_search queues the memories it returned (eng_refresh_push);
 *            the indexer thread drains the queue in batches, off the
 *            request path: per user, under its write lock, each record is
 *            rewritten with salience lifted from its current value by
 *            dm_options.refresh_boost of the way to 1, last_access_us set
 *            and access_count counted.  The write does not wait for a WAL
 *            sync (a crash may lose the last refreshes and nothing else;
 *            the lock is never held across a sync wait).  A memory
 *            refreshed less than refresh_interval_s ago is left alone
 *            (dm_search does not even queue it): a burst of recalls counts
 *            once, and searches do not rewrite the records they return over
 *            and over.  A memory deleted meanwhile is skipped.  At most
 *            dm_options.refresh_rate refreshes are written a second (a
 *            token bucket; unbounded while dm_sync_indexes waits): each
 *            rewrites a record, and left unbounded under a heavy stream of
 *            searches they fill the memtable, the compactions and the disk
 *            (and so the WAL syncs adds wait for) many times faster than
 *            the adds do.  The queue is bounded (RF_MAX); a full queue
 *            drops the oldest requests and counts them -- a missed refresh
 *            only lets a memory fade a little sooner, and its next recall
 *            queues it again.
 *   archive  dm_decay and the indexer's periodic pass archive the live
 *            episodic memories whose current salience is below the prune
 *            threshold: the record's state becomes archived (an index log
 *            entry makes reloads see it), the doc table's DOC_ARCHIVED flag
 *            takes it out of every leg unless DM_WITH_ARCHIVED.  Nothing is
 *            deleted; dm_set_state restores.
 *
 * Salience is not part of any index, so a refresh writes the record only.
 */
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "engine/engine_int.h"
#include "engine/record.h"

#define RF_MAX 65536 /* queued refreshes at most */
#define RF_SLICE 32  /* refreshes written under one hold of a user's lock */
#define US_PER_DAY 86400000000.0

double eng_salience(double stored, double rate_per_day, int64_t refreshed_us, int64_t now_us)
{
    double days = now_us > refreshed_us ? (double)(now_us - refreshed_us) / US_PER_DAY : 0;
    double s = stored * exp(-(rate_per_day > 0 ? rate_per_day : 0) * days);
    return s < 0 ? 0 : s > 1 ? 1 : s;
}

double eng_salience_refreshed(double current, double boost)
{
    double s = current + boost * (1.0 - current);
    return s < 0 ? 0 : s > 1 ? 1 : s;
}

/* ------------------------------------------------------ decay rates */

/*
 * Default decay rates per user or tenant and kind: one record each,
 *   key   'D' "decay-rate" 0x00 tlen:u8 tenant ulen:u8 user kind:u8
 *         (ulen 0: every user of the tenant)
 *   value u8 version=1, f32 rate
 * (docs/format.md).  A user caches its own and its tenant's rates, read
 * again whenever db->decay_gen moved (dm_set_decay_rate bumps it); while
 * no rate is stored at all (has_decay_rates) nothing is read.
 */
#define DECAY_KEY "decay-rate"

static size_t decay_key(uint8_t *k, const char *tenant, const char *user, int kind)
{
    size_t tl = strlen(tenant), ul = user ? strlen(user) : 0, n = 0;
    k[n++] = KEY_META;
    memcpy(k + n, DECAY_KEY, sizeof DECAY_KEY); /* with its NUL */
    n += sizeof DECAY_KEY;
    k[n++] = (uint8_t)tl;
    memcpy(k + n, tenant, tl);
    n += tl;
    k[n++] = (uint8_t)ul;
    if (ul)
        memcpy(k + n, user, ul);
    n += ul;
    k[n++] = (uint8_t)kind;
    return n;
}

/* The stored rate under key k, or -1 when none.  Errors: DM_EIO,
 * DM_ECORRUPT. */
static int read_rate(dm_db *db, const uint8_t *k, size_t kl, buf *v, float *out)
{
    *out = -1;
    int rc = kv_get(db->kv, NULL, buf_slice_of(k, kl), v);
    if (rc == DM_ENOTFOUND)
        return DM_OK;
    if (rc)
        return rc;
    if (v->len != 5 || v->ptr[0] != 1)
        return err_set_msg(DM_ECORRUPT, "decay-rate record of %zu bytes", v->len);
    uint32_t bits = dec_u32(v->ptr + 1);
    memcpy(out, &bits, sizeof *out);
    return DM_OK;
}

int eng_decay_rates_open(dm_db *db)
{
    uint8_t lo[1 + sizeof DECAY_KEY];
    lo[0] = KEY_META;
    memcpy(lo + 1, DECAY_KEY, sizeof DECAY_KEY);
    iter *it = NULL;
    int rc = kv_iter_new(db->kv, NULL, &it);
    if (rc)
        return rc;
    iter_seek(it, buf_slice_of(lo, sizeof lo));
    bool any = iter_valid(it) && iter_key(it).len > sizeof lo &&
               !memcmp(iter_key(it).ptr, lo, sizeof lo);
    rc = iter_status(it);
    iter_free(it);
    atomic_store(&db->has_decay_rates, any);
    return rc;
}

int eng_default_decay(dm_db *db, eng_user *u, int kind, float *out)
{
    if (kind < 0 || kind > 2)
        kind = DM_KIND_EPISODIC;
    *out = db->opt.decay_rates[kind];
    if (!atomic_load(&db->has_decay_rates))
        return DM_OK;
    uint64_t gen = atomic_load(&db->decay_gen);
    if (u->decay_gen != gen) {
        buf_slice tn, un;
        size_t tul;
        if (!key_tu_split(u->tu.b, u->tu.len, &tn, &un, &tul))
            return err_set_msg(DM_ECORRUPT, "malformed user prefix");
        char t[256], us[256];
        memcpy(t, tn.ptr, tn.len);
        t[tn.len] = 0;
        memcpy(us, un.ptr, un.len);
        us[un.len] = 0;
        buf v;
        buf_init(&v);
        int rc = DM_OK;
        for (int k = 0; k < 3 && !rc; k++) {
            uint8_t key[KEY_MAX + 16];
            float user_rate, tenant_rate = -1;
            rc = read_rate(db, key, decay_key(key, t, us, k), &v, &user_rate);
            if (!rc && user_rate < 0)
                rc = read_rate(db, key, decay_key(key, t, NULL, k), &v, &tenant_rate);
            u->decay_rates[k] = user_rate >= 0 ? user_rate : tenant_rate;
        }
        buf_fini(&v);
        if (rc)
            return rc;
        u->decay_gen = gen;
    }
    if (u->decay_rates[kind] >= 0)
        *out = u->decay_rates[kind];
    return DM_OK;
}

int dm_set_decay_rate(dm_db *db, const char *tenant, const char *user_id, dm_memory_kind kind,
                      float rate)
{
    size_t tl, ul;
    int rc;
    if (!db)
        return err_set_msg(DM_EINVAL, "set_decay_rate: no database");
    if ((rc = eng_validate_name("tenant", tenant, false, &tl)) ||
        (rc = eng_validate_name("user_id", user_id, false, &ul)))
        return rc;
    if ((unsigned)kind > DM_KIND_SUMMARY)
        return err_set_msg(DM_EINVAL, "set_decay_rate: unknown kind %d", (int)kind);
    if (isnan(rate) || !(rate < 1e6f))
        return err_set_msg(DM_EINVAL, "set_decay_rate: rate %g is not a finite number",
                           (double)rate);
    uint8_t key[KEY_MAX + 16];
    size_t kl = decay_key(key, tenant ? tenant : DM_DEFAULT_TENANT, user_id, (int)kind);
    kv_batch *b = kv_batch_new();
    if (!b)
        return err_set_msg(DM_ENOMEM, "out of memory");
    if (rate < 0) {
        rc = kv_batch_delete(b, buf_slice_of(key, kl));
    } else {
        uint8_t v[5];
        uint32_t bits;
        memcpy(&bits, &rate, sizeof bits);
        v[0] = 1;
        enc_u32(v + 1, bits);
        rc = kv_batch_put(b, buf_slice_of(key, kl), buf_slice_of(v, sizeof v));
    }
    if (!rc)
        rc = eng_write(db, b);
    kv_batch_free(b);
    if (rc)
        return rc;
    if (rate >= 0)
        atomic_store(&db->has_decay_rates, true);
    atomic_fetch_add(&db->decay_gen, 1);
    return DM_OK;
}

bool eng_refresh_too_soon(const dm_db *db, int64_t last_access_us, int64_t at_us)
{
    return last_access_us && at_us >= last_access_us &&
           (uint64_t)(at_us - last_access_us) < (uint64_t)db->opt.refresh_interval_s * 1000000u;
}

/* REQUIRES: ix->mu.  Grow the refresh queue to hold `want` entries, up to
 * RF_MAX; the entries move to the front in age order. */
static void refresh_grow(eng_indexer *ix, uint32_t want)
{
    if (want <= ix->rf_cap || ix->rf_cap >= RF_MAX)
        return;
    uint32_t nc = ix->rf_cap ? ix->rf_cap * 2 : 256;
    while (nc < want && nc < RF_MAX)
        nc *= 2;
    if (nc > RF_MAX)
        nc = RF_MAX;
    eng_refresh *t = dm_malloc(sizeof *t * nc);
    if (!t)
        return; /* the queue stays as it is and drops its oldest */
    for (uint32_t i = 0; i < ix->rf_n; i++)
        t[i] = ix->rf[(ix->rf_head + i) % ix->rf_cap];
    dm_free(ix->rf);
    ix->rf = t;
    ix->rf_cap = nc;
    ix->rf_head = 0;
}

void eng_refresh_push(dm_db *db, eng_user *u, const int64_t *ts, const uint8_t (*ids)[16],
                      uint32_t n, int64_t now_us)
{
    eng_indexer *ix = &db->ix;
    if (!n || db->opt.refresh_boost < 0)
        return;
    pthread_mutex_lock(&ix->mu);
    /* The thread is woken only if this push may end its wait sooner: on
     * a queue that was empty (it may be waiting for other work, or for
     * nothing), or with no rate to wait for.  Otherwise it is writing, or
     * waiting for the tokens of a batch that more entries do not make
     * due any sooner; a wake-up per search would cost a futex call and a
     * context switch each. */
    bool wake = !ix->rf_n || !db->opt.refresh_rate || ix->n_syncing;
    refresh_grow(ix, ix->rf_n + n);
    for (uint32_t i = 0; i < n && ix->rf_cap; i++) {
        eng_refresh *e;
        if (ix->rf_n < ix->rf_cap) {
            e = &ix->rf[(ix->rf_head + ix->rf_n++) % ix->rf_cap];
        } else {
            /* Full: the newest takes the oldest's place. */
            e = &ix->rf[ix->rf_head];
            ix->rf_head = (ix->rf_head + 1) % ix->rf_cap;
            ix->rf_dropped++;
        }
        e->u = u;
        e->ts = ts[i];
        e->at_us = now_us;
        memcpy(e->id, ids[i], 16);
    }
    if (ix->running && wake)
        pthread_cond_signal(&ix->work);
    pthread_mutex_unlock(&ix->mu);
}

/* REQUIRES: ix->mu.  The token bucket of dm_options.refresh_rate: tokens
 * accrue at that rate, a second's worth at most. */
static double refresh_tokens(dm_db *db, uint64_t now_us)
{
    eng_indexer *ix = &db->ix;
    double rate = db->opt.refresh_rate;
    if (now_us > ix->rf_tokens_us) {
        ix->rf_tokens += (double)(now_us - ix->rf_tokens_us) * rate / 1e6;
        ix->rf_tokens_us = now_us;
    }
    if (ix->rf_tokens > rate)
        ix->rf_tokens = rate;
    return ix->rf_tokens;
}

bool eng_refresh_ready(dm_db *db, uint64_t *wait_us)
{
    eng_indexer *ix = &db->ix;
    *wait_us = 0;
    if (!ix->rf_n)
        return false;
    if (!db->opt.refresh_rate || ix->n_syncing)
        return true;
    /* A drain of a few is not worth a turn: wait for a batch's worth. */
    double want = ix->rf_n < RF_SLICE ? ix->rf_n : RF_SLICE;
    double have = refresh_tokens(db, clock_mono_us());
    if (have >= want)
        return true;
    *wait_us = (uint64_t)((want - have) * 1e6 / db->opt.refresh_rate) + 1;
    return false;
}

static int cmp_refresh(const void *a, const void *b)
{
    const eng_refresh *x = a, *y = b;
    if (x->u != y->u)
        return x->u < y->u ? -1 : 1;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return memcmp(x->id, y->id, 16);
}

/* Refresh one user's memories in e[0..n).  Takes the user's write lock. */
static int refresh_user(dm_db *db, eng_user *u, const eng_refresh *e, size_t n)
{
    int rc = eng_user_lock_write(db, u);
    if (rc)
        return rc;
    kv_batch *b = kv_batch_new();
    buf v, out;
    buf_init(&v);
    buf_init(&out);
    float *vec = dm_malloc(sizeof(float) * (db->dim ? db->dim : 1));
    if (!b || !vec) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        if (i && e[i].ts == e[i - 1].ts && !memcmp(e[i].id, e[i - 1].id, 16))
            continue; /* returned twice in the batch: one refresh */
        uint8_t k[KEY_MAX];
        size_t kl = key_memory(k, &u->tu, e[i].ts, e[i].id);
        rc = kv_get(db->kv, NULL, buf_slice_of(k, kl), &v);
        if (rc == DM_ENOTFOUND) {
            rc = DM_OK;
            continue;
        }
        rec_memory m;
        if (rc || (rc = rec_memory_decode(buf_slice_of(v.ptr, v.len), &m)))
            break;
        int64_t last = rec_memory_refreshed_us(&m);
        if (e[i].at_us <= last || eng_refresh_too_soon(db, m.last_access_us, e[i].at_us))
            continue;
        double cur = eng_salience(m.salience, m.decay_rate, last, e[i].at_us);
        m.salience = (float)eng_salience_refreshed(cur, db->opt.refresh_boost);
        m.last_access_us = e[i].at_us;
        if (m.access_count < UINT32_MAX)
            m.access_count++;
        if (m.dim > db->dim) {
            rc = err_set_msg(DM_ECORRUPT, "memory record with %u dimensions", m.dim);
            break;
        }
        rec_memory_embedding(&m, vec);
        buf_clear(&out);
        if (!(rc = rec_memory_encode(&m, vec, &out)))
            rc = kv_batch_put(b, buf_slice_of(k, kl), buf_slice_of(out.ptr, out.len));
        uint32_t doc = eng_doc_find(u, e[i].id);
        if (!rc && doc != UINT32_MAX)
            eng_doc_salience_set(u, doc, m.salience, m.decay_rate,
                                 rec_memory_refreshed_us(&m));
    }
    if (!rc && kv_batch_count(b)) {
        rc = eng_write_lazy(db, b); /* a lost refresh costs little */
        if (!rc)
            atomic_fetch_add(&db->n_refreshed, kv_batch_count(b));
    }
    if (rc) /* what the documents say may not be stored: read it again */
        for (size_t i = 0; i < n; i++) {
            uint32_t doc = eng_doc_find(u, e[i].id);
            if (doc != UINT32_MAX)
                eng_doc_salience_forget(u, doc);
        }
done:
    eng_user_unlock(u);
    kv_batch_free(b);
    dm_free(vec);
    buf_fini(&v);
    buf_fini(&out);
    return rc;
}

void eng_refresh_drain(dm_db *db, bool all)
{
    eng_indexer *ix = &db->ix;
    pthread_mutex_lock(&ix->mu);
    /* The oldest, as many as the rate allows. */
    size_t n = ix->rf_n;
    if (!all && db->opt.refresh_rate && !ix->n_syncing) {
        double t = refresh_tokens(db, clock_mono_us());
        if ((double)n > t)
            n = t > 0 ? (size_t)t : 0;
        ix->rf_tokens -= (double)n;
    }
    eng_refresh *e = n ? dm_malloc(sizeof *e * n) : NULL;
    if (!e)
        n = 0;
    for (size_t i = 0; i < n; i++)
        e[i] = ix->rf[(ix->rf_head + i) % ix->rf_cap];
    if (n) {
        ix->rf_head = (uint32_t)((ix->rf_head + n) % ix->rf_cap);
        ix->rf_n -= (uint32_t)n;
    }
    if (!ix->rf_n) { /* an idle queue gives its memory back */
        dm_free(ix->rf);
        ix->rf = NULL;
        ix->rf_cap = ix->rf_head = 0;
    }
    pthread_mutex_unlock(&ix->mu);
    /* The order is the drain's own (by user, time and id), not the age. */
    if (!n) {
        dm_free(e);
        return;
    }
    qsort(e, n, sizeof *e, cmp_refresh);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && e[j].u == e[i].u)
            j++;
        /* In slices, so that a user's own requests never wait long for
         * its lock behind a pile of refreshes. */
        for (size_t a = i; a < j; a += RF_SLICE) {
            size_t b = a + RF_SLICE < j ? a + RF_SLICE : j;
            int rc = refresh_user(db, e[a].u, e + a, b - a);
            if (rc)
                log_msg(LOG_WARN, "salience refresh: %s", err_last_msg());
            for (int y = 0; y < 100 && b < j &&
                            atomic_load_explicit(&e[a].u->lock_waiters, memory_order_relaxed);
                 y++)
                sched_yield();
        }
        i = j;
    }
    dm_free(e);
}

/* ------------------------------------------------------------ archive */

int eng_set_state_locked(dm_db *db, eng_user *u, int64_t ts, const uint8_t id[16],
                         buf_slice value, dm_memory_state state, int64_t now_us)
{
    rec_memory m;
    int rc = rec_memory_decode(value, &m);
    if (rc)
        return rc;
    if (m.state == (uint8_t)state)
        return DM_OK;
    m.state = (uint8_t)state;
    if (state == DM_STATE_ACTIVE) {
        /* Restored: it starts fading again from now. */
        m.last_access_us = now_us;
    }
    float *vec = dm_malloc(sizeof(float) * (m.dim ? m.dim : 1));
    kv_batch *b = kv_batch_new();
    buf out, lv;
    buf_init(&out);
    buf_init(&lv);
    uint64_t saved_useq = u->next_useq, saved_first = u->log_first;
    if (!vec || !b) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto out;
    }
    rec_memory_embedding(&m, vec);
    uint8_t k[KEY_MAX];
    size_t kl = key_memory(k, &u->tu, ts, id);
    if (!(rc = rec_memory_encode(&m, vec, &out)))
        rc = kv_batch_put(b, buf_slice_of(k, kl), buf_slice_of(out.ptr, out.len));
    /* Logged as an update, so that a reload from the checkpoint re-reads
     * the record and sees the new state. */
    if (!rc)
        rc = eng_put_log(u, b, &lv, LOG_UPDATE, id, ts, m.text);
    if (!rc)
        rc = eng_write(db, b);
    if (rc) {
        u->next_useq = saved_useq;
        u->log_first = saved_first;
        goto out;
    }
    uint32_t doc = eng_doc_find(u, id);
    if (doc != UINT32_MAX) {
        if (state == DM_STATE_ARCHIVED)
            u->docs[doc].flags |= DOC_ARCHIVED;
        else
            u->docs[doc].flags &= ~(uint32_t)DOC_ARCHIVED;
        eng_doc_salience_set(u, doc, m.salience, m.decay_rate, rec_memory_refreshed_us(&m));
    }
    u->dirty = true;
    eng_after_write(db, u);
out:
    kv_batch_free(b);
    dm_free(vec);
    buf_fini(&out);
    buf_fini(&lv);
    return rc;
}

/* Archive u's faded memories.  REQUIRES: u's write lock. */
int eng_decay_user_locked(dm_db *db, eng_user *u, int64_t now_us, float threshold,
                          uint64_t *n_archived)
{
    /* First collect (the iterator must not outlive writes we make). */
    typedef struct faded {
        int64_t ts;
        uint8_t id[16];
    } faded;
    faded *f = NULL;
    size_t n = 0, cap = 0;
    uint8_t lo[KEY_MAX], k[KEY_MAX];
    size_t plen = key_user_kind(lo, KEY_MEMORY, &u->tu);
    iter *it = NULL;
    int rc = kv_iter_new(db->kv, NULL, &it);
    for (eng_seek(it, buf_slice_of(lo, plen)); !rc && eng_valid(it); iter_next(it)) {
        buf_slice key = iter_key(it);
        if (key.len != plen + 24 || memcmp(key.ptr, lo, plen))
            break;
        rec_memory m;
        if ((rc = rec_memory_decode(iter_value(it), &m)))
            break;
        if (m.state != DM_STATE_ACTIVE || m.kind != DM_KIND_EPISODIC)
            continue;
        if (eng_salience(m.salience, m.decay_rate, rec_memory_refreshed_us(&m), now_us) >= threshold)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            faded *t = dm_realloc(f, sizeof *t * nc);
            if (!t) {
                rc = err_set_msg(DM_ENOMEM, "out of memory");
                break;
            }
            f = t;
            cap = nc;
        }
        f[n].ts = key_ts_decode(dec_be64(key.ptr + plen));
        memcpy(f[n].id, key.ptr + plen + 8, 16);
        n++;
    }
    if (!rc && it)
        rc = iter_status(it);
    iter_free(it);
    buf v;
    buf_init(&v);
    uint64_t done = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        size_t kl = key_memory(k, &u->tu, f[i].ts, f[i].id);
        rc = kv_get(db->kv, NULL, buf_slice_of(k, kl), &v);
        if (rc == DM_ENOTFOUND) {
            rc = DM_OK;
            continue;
        }
        if (!rc)
            rc = eng_set_state_locked(db, u, f[i].ts, f[i].id, buf_slice_of(v.ptr, v.len),
                                      DM_STATE_ARCHIVED, now_us);
        if (!rc)
            done++;
    }
    buf_fini(&v);
    dm_free(f);
    if (n_archived)
        *n_archived += done;
    return rc;
}

int dm_decay(dm_db *db, const char *tenant, const char *user_id, int64_t now_us,
             float threshold, uint64_t *n_archived)
{
    if (n_archived)
        *n_archived = 0;
    if (!db)
        return err_set_msg(DM_EINVAL, "decay: no database");
    if (!(threshold >= 0 && threshold < 1))
        return err_set_msg(DM_EINVAL, "decay: threshold must be in [0, 1)");
    float thr = threshold > 0 ? threshold : db->opt.prune_threshold;
    int64_t now = now_us ? now_us : (int64_t)clock_wall_us();
    if (user_id) {
        eng_user *u;
        int rc = eng_scope_user(db, tenant, user_id, &u);
        if (!rc)
            rc = eng_user_lock_write(db, u);
        if (rc)
            return rc;
        rc = u->exists ? eng_decay_user_locked(db, u, now, thr, n_archived)
                       : eng_unknown_user(tenant, user_id);
        eng_user_unlock(u);
        return rc;
    }
    /* Every user of the tenant: walk the user records. */
    size_t tl;
    int rc = eng_validate_name("tenant", tenant, false, &tl);
    if (rc)
        return rc;
    const char *t = tenant ? tenant : DM_DEFAULT_TENANT;
    tl = strlen(t);
    /* User records are 'U' tu; a tenant's are the range of 'U' tlen tenant. */
    uint8_t lo[KEY_MAX];
    lo[0] = KEY_USER;
    lo[1] = (uint8_t)tl;
    memcpy(lo + 2, t, tl);
    size_t plen = 2 + tl;
    iter *it = NULL;
    if ((rc = kv_iter_new(db->kv, NULL, &it)))
        return rc;
    /* Collect the users first: decaying writes. */
    key_tu *users = NULL;
    size_t n = 0, cap = 0;
    for (iter_seek(it, buf_slice_of(lo, plen)); iter_valid(it); iter_next(it)) {
        buf_slice key = iter_key(it);
        if (key.len < plen || memcmp(key.ptr, lo, plen))
            break;
        if (key.len - 1 > KEY_TU_MAX)
            continue; /* not a user record key */
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            key_tu *x = dm_realloc(users, sizeof *x * nc);
            if (!x) {
                rc = err_set_msg(DM_ENOMEM, "out of memory");
                break;
            }
            users = x;
            cap = nc;
        }
        users[n].len = key.len - 1;
        memcpy(users[n].b, key.ptr + 1, key.len - 1);
        n++;
    }
    if (!rc)
        rc = iter_status(it);
    iter_free(it);
    for (size_t i = 0; !rc && i < n; i++) {
        eng_user *u;
        rc = eng_user_get_tu(db, &users[i], &u);
        if (!rc)
            rc = eng_user_lock_write(db, u);
        if (rc)
            break;
        if (u->exists)
            rc = eng_decay_user_locked(db, u, now, thr, n_archived);
        eng_user_unlock(u);
    }
    dm_free(users);
    return rc;
}
