/*
 * extractq.c -- extraction after the write: the queue of stored turns
 * whose facts, events and relations are still to be extracted.
 *
 * A turn is durable and searchable when its add returns; extracting it
 * (tens of microseconds with the built-in extractor, seconds with a chat
 * model) and merging what it says into the user's facts happen here, in
 * one thread per database, so that neither delays the write.  A stored
 * turn that asks for extraction writes a 'P' record in the same atomic
 * batch as the memory, and the merge deletes it in the same batch as the
 * facts: a crash in between leaves the 'P' record, and the next open
 * queues the turn again (eng_xq_recover).  The merge is idempotent, so a
 * turn is extracted once in effect whatever happens.
 *
 * Jobs queue per user, in the order of the user's writes (a writer queues
 * its turn under the user's write lock).  A user is worked on by one
 * thread at a time (eng_user.xbusy), a batch of up to XQ_BATCH turns per
 * turn of the ring: extraction runs with no lock held, then the merge
 * takes the user's write lock once for the whole batch.  Users take turns,
 * so a user with a long backlog delays nobody else by more than a batch.
 *
 * dm_close extracts what is queued before it returns; readers of facts
 * (profile, history, events, graph) first extract their user's queue, so
 * they see every turn stored before they asked.
 *
 * Bounds: past max_jobs queued turns in all (dm_options.extract_queue_max)
 * or XQ_USER_MAX of one user, the writer that queues a turn extracts its
 * own user's queue before its add returns.  Only that user's writers slow
 * down; the queue's memory stays bounded.  A dm_remember that wants its
 * turn's counts (not async) does the same for its own user, which also
 * spares a context switch: the thread that waits does the work.
 *
 * Locking: xq.mu is a leaf lock.  It guards the ring, the counters and the
 * users' xhead / xtail / n_xjobs / xqueued / xbusy.  eng_extract_batch
 * (cognition.c) is called with no lock held.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <jansson.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "engine/engine_int.h"
#include "engine/record.h"

#define XQ_BATCH 64          /* turns per merge (one write lock, one write) */
#define XQ_USER_MAX 1024     /* one user's queued turns before its writers help */
#define XQ_DEFAULT_MAX 16384 /* all users' queued turns (dm_options default) */

static void *xq_main(void *arg);

int eng_xq_start(dm_db *db)
{
    eng_xqueue *xq = &db->xq;
    memset(xq, 0, sizeof *xq);
    pthread_mutex_init(&xq->mu, NULL);
    pthread_cond_init(&xq->work, NULL);
    pthread_cond_init(&xq->done, NULL);
    xq->max_jobs = db->opt.extract_queue_max ? db->opt.extract_queue_max : XQ_DEFAULT_MAX;
    xq->inited = true;
    int e = pthread_create(&xq->thread, NULL, xq_main, db);
    if (e) {
        /* Without the thread every writer extracts its own turns. */
        log_msg(LOG_WARN, "extraction thread not started (%s); extracting inline",
                strerror(e));
        return DM_OK;
    }
    xq->running = true;
    return DM_OK;
}

void eng_xjob_free(eng_xjob *job)
{
    if (!job)
        return;
    dm_free(job->speaker);
    dm_free(job->session);
    dm_free(job->text);
    dm_free(job);
}

void eng_xq_stop(dm_db *db)
{
    eng_xqueue *xq = &db->xq;
    if (!xq->inited)
        return;
    /* A quiet close extracts what was stored: what a crash leaves is
     * queued again at the next open instead. */
    dm_sync_extraction(db);
    if (xq->running) {
        pthread_mutex_lock(&xq->mu);
        xq->stop = true;
        pthread_cond_broadcast(&xq->work);
        pthread_mutex_unlock(&xq->mu);
        pthread_join(xq->thread, NULL);
        xq->running = false;
    }
    /* What is left keeps its 'P' record and is queued again at the next
     * open.  Users with jobs need not be in the ring (the ring skips a
     * user a writer works on), so every user is looked at. */
    for (int st = 0; st < ENG_STRIPES; st++) {
        eng_stripe *sp = &db->stripes[st];
        for (uint32_t i = 0; i < sp->cap; i++) {
            eng_user *u = sp->slots[i];
            if (!u)
                continue;
            while (u->xhead) {
                eng_xjob *j = u->xhead;
                u->xhead = j->next;
                eng_xjob_free(j);
            }
            u->xtail = NULL;
            u->n_xjobs = 0;
            u->xqueued = false;
        }
    }
    dm_free(xq->q);
    xq->q = NULL;
    xq->n = xq->cap = 0;
    pthread_cond_destroy(&xq->work);
    pthread_cond_destroy(&xq->done);
    pthread_mutex_destroy(&xq->mu);
    xq->inited = false;
}

/* The speaker named in a memory's metadata, if any (a copy; NULL). */
static char *metadata_speaker(const char *metadata)
{
    if (!metadata || !strstr(metadata, "\"speaker\""))
        return NULL;
    json_t *j = json_loads(metadata, 0, NULL);
    json_t *s = json_object_get(j, "speaker");
    char *out = json_is_string(s) ? dm_strdup(json_string_value(s)) : NULL;
    json_decref(j);
    return out;
}

eng_xjob *eng_xjob_new(const uint8_t id[16], int64_t ts, int64_t recorded_us,
                       const char *role, const char *session, const char *text,
                       size_t text_len, const char *metadata)
{
    eng_xjob *j = dm_calloc(1, sizeof *j);
    if (!j)
        return NULL;
    memcpy(j->id, id, 16);
    j->ts = ts;
    j->recorded_us = recorded_us;
    j->assistant = role && !strcmp(role, "assistant");
    j->text = dm_strndup(text, text_len);
    j->text_len = text_len;
    j->speaker = metadata_speaker(metadata);
    j->session = session ? dm_strdup(session) : NULL;
    if (!j->text || (session && !j->session)) {
        eng_xjob_free(j);
        return NULL;
    }
    return j;
}

/* Put u in the ring unless it is there or a thread works on it (that
 * thread puts it back when it leaves jobs behind).  REQUIRES: xq.mu. */
static bool ring_put(eng_xqueue *xq, eng_user *u)
{
    if (u->xqueued || u->xbusy)
        return true;
    if (xq->n == xq->cap) {
        uint32_t ncap = xq->cap ? xq->cap * 2 : 64;
        eng_user **nq = dm_malloc((size_t)ncap * sizeof *nq);
        if (!nq)
            return false;
        for (uint32_t i = 0; i < xq->n; i++)
            nq[i] = xq->q[(xq->head + i) % xq->cap];
        dm_free(xq->q);
        xq->q = nq;
        xq->cap = ncap;
        xq->head = 0;
    }
    xq->q[(xq->head + xq->n) % xq->cap] = u;
    xq->n++;
    u->xqueued = true;
    pthread_cond_signal(&xq->work);
    return true;
}

bool eng_xq_push(dm_db *db, eng_user *u, eng_xjob *job)
{
    eng_xqueue *xq = &db->xq;
    pthread_mutex_lock(&xq->mu);
    job->next = NULL;
    if (u->xtail)
        u->xtail->next = job;
    else
        u->xhead = job;
    u->xtail = job;
    u->n_xjobs++;
    xq->n_jobs++;
    bool inline_run = !xq->running || xq->stop || xq->n_jobs > xq->max_jobs ||
                      u->n_xjobs > XQ_USER_MAX;
    /* A job somebody waits for is run by that thread (eng_xq_run) at
     * once: waking the thread for it would only make the two race and
     * cost the waiter a sleep. */
    if (!job->wait && !ring_put(xq, u))
        inline_run = true;
    pthread_mutex_unlock(&xq->mu);
    return inline_run;
}

/*
 * Extract one batch of u, which the caller has claimed (xbusy set under
 * xq.mu), and release it.  Called and returns with xq.mu held; drops it
 * while it works.
 */
static void run_batch(dm_db *db, eng_user *u)
{
    eng_xqueue *xq = &db->xq;
    eng_xjob *jobs[XQ_BATCH];
    size_t n = 0;
    while (u->xhead && n < XQ_BATCH) {
        eng_xjob *j = u->xhead;
        u->xhead = j->next;
        jobs[n++] = j;
    }
    if (!u->xhead)
        u->xtail = NULL;
    pthread_mutex_unlock(&xq->mu);

    int rc = eng_extract_batch(db, u, jobs, n);
    if (rc)
        log_msg(LOG_WARN, "extraction of %zu turns failed (%s); they are extracted again at "
                "the next open", n, err_last_msg());

    pthread_mutex_lock(&xq->mu);
    for (size_t i = 0; i < n; i++) {
        if (jobs[i]->wait && !jobs[i]->wait->done) {
            if (rc)
                jobs[i]->wait->rc = rc;
            jobs[i]->wait->done = true;
        }
        eng_xjob_free(jobs[i]);
    }
    u->n_xjobs -= (uint32_t)n;
    xq->n_jobs -= n;
    if (rc)
        xq->n_failed += n;
    else
        xq->n_done += n;
    u->xbusy = false;
    if (u->xhead && !xq->stop)
        ring_put(xq, u);
    pthread_cond_broadcast(&xq->done);
}

void eng_xq_run(dm_db *db, eng_user *u, eng_xwait *wait)
{
    eng_xqueue *xq = &db->xq;
    pthread_mutex_lock(&xq->mu);
    /* Without a wait: until u has no job queued and none in a batch. */
    while (wait ? !wait->done : u->xhead != NULL || u->xbusy) {
        if (u->xbusy) {
            pthread_cond_wait(&xq->done, &xq->mu);
            continue;
        }
        u->xbusy = true;
        run_batch(db, u);
    }
    pthread_mutex_unlock(&xq->mu);
}

static void *xq_main(void *arg)
{
    pthread_setname_np(pthread_self(), "dm-extract");
    dm_db *db = arg;
    eng_xqueue *xq = &db->xq;
    pthread_mutex_lock(&xq->mu);
    for (;;) {
        while (!xq->stop && !xq->n)
            pthread_cond_wait(&xq->work, &xq->mu);
        if (xq->stop)
            break;
        eng_user *u = xq->q[xq->head];
        xq->head = (xq->head + 1) % xq->cap;
        xq->n--;
        u->xqueued = false;
        if (u->xbusy || !u->xhead)
            continue; /* a writer is at it; it puts u back when it leaves jobs */
        u->xbusy = true;
        run_batch(db, u);
    }
    pthread_mutex_unlock(&xq->mu);
    return NULL;
}

int dm_sync_extraction(dm_db *db)
{
    if (!db)
        return err_set_msg(DM_EINVAL, "sync: no database");
    eng_xqueue *xq = &db->xq;
    if (!xq->inited)
        return DM_OK;
    pthread_mutex_lock(&xq->mu);
    while (xq->n_jobs) {
        if (xq->running && !xq->stop) {
            pthread_cond_wait(&xq->done, &xq->mu);
            continue;
        }
        /* No thread: run the first queued user here. */
        eng_user *u = xq->n ? xq->q[xq->head] : NULL;
        if (!u)
            break;
        xq->head = (xq->head + 1) % xq->cap;
        xq->n--;
        u->xqueued = false;
        pthread_mutex_unlock(&xq->mu);
        eng_xq_run(db, u, NULL);
        pthread_mutex_lock(&xq->mu);
    }
    pthread_mutex_unlock(&xq->mu);
    return DM_OK;
}

/* ------------------------------------------------------------ recovery */

/* Queue the turn behind one 'P' record, or drop the record when its
 * memory is gone. */
static int recover_one(dm_db *db, buf_slice key, buf_slice val, kv_batch *drop, buf *v)
{
    buf_slice tenant, user;
    size_t tul;
    if (key.len < 1 + 16 || !key_tu_split(key.ptr + 1, key.len - 1 - 16, &tenant, &user, &tul) ||
        1 + tul + 16 != key.len || val.len != 8)
        return err_set_msg(DM_ECORRUPT, "extraction queue: malformed record (%zu bytes)",
                           key.len);
    key_tu tu;
    key_tu_make(&tu, (const char *)tenant.ptr, tenant.len, (const char *)user.ptr, user.len);
    const uint8_t *id = key.ptr + 1 + tul;
    int64_t ts = key_ts_decode(dec_be64(val.ptr));
    uint8_t mk[KEY_MAX];
    size_t mkl = key_memory(mk, &tu, ts, id);
    int rc = kv_get(db->kv, NULL, buf_slice_of(mk, mkl), v);
    if (rc == DM_ENOTFOUND)
        return kv_batch_delete(drop, key);
    if (rc)
        return rc;
    rec_memory m;
    if ((rc = rec_memory_decode(buf_slice_of(v->ptr, v->len), &m)))
        return rc;
    char role[16] = "user";
    if (m.role.len && m.role.len < sizeof role) {
        memcpy(role, m.role.ptr, m.role.len);
        role[m.role.len] = 0;
    }
    char *meta = m.metadata.len ? dm_strndup((const char *)m.metadata.ptr, m.metadata.len)
                                : NULL;
    char *session = m.session_id.ptr ? dm_strndup((const char *)m.session_id.ptr,
                                                  m.session_id.len)
                                     : NULL;
    eng_xjob *j = eng_xjob_new(id, ts, m.record_time_us, role, session,
                               (const char *)m.text.ptr, m.text.len, meta);
    dm_free(meta);
    dm_free(session);
    if (!j)
        return err_set_msg(DM_ENOMEM, "out of memory queueing extraction");
    eng_user *u;
    if ((rc = eng_user_get_tu(db, &tu, &u))) {
        eng_xjob_free(j);
        return rc;
    }
    /* Past the bounds the thread still takes them, one batch at a time:
     * at open no writer waits. */
    (void)eng_xq_push(db, u, j);
    return DM_OK;
}

int eng_xq_recover(dm_db *db)
{
    iter *it = NULL;
    kv_batch *drop = kv_batch_new();
    buf v;
    buf_init(&v);
    int rc = drop ? kv_iter_new(db->kv, NULL, &it) : err_set_msg(DM_ENOMEM, "out of memory");
    uint8_t lo = KEY_PENDING;
    uint64_t n = 0;
    for (eng_seek(it, buf_slice_of(&lo, 1)); !rc && eng_valid(it); iter_next(it)) {
        buf_slice k = iter_key(it);
        if (!k.len || k.ptr[0] != KEY_PENDING)
            break;
        rc = recover_one(db, k, iter_value(it), drop, &v);
        n++;
    }
    if (!rc && it)
        rc = iter_status(it);
    if (!rc && kv_batch_count(drop))
        rc = eng_write(db, drop);
    if (!rc && n)
        log_msg(LOG_INFO, "%" PRIu64 " stored turns queued for extraction again", n);
    iter_free(it);
    kv_batch_free(drop);
    buf_fini(&v);
    return rc;
}
