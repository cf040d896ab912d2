/*
 * indexer.c -- background index maintenance of the memory engine.
 *
 * Linking a vector into a large user's HNSW graph costs ~100 µs, twenty
 * times the rest of an add, and a checkpoint of a large user writes tens of
 * megabytes.  Neither has to happen before an add returns: a writer stores
 * the vector as *pending* (vectors.c), which every search sees through an
 * exact scan of the pending tail, and hands
 * the user to this module.  One thread per database then links the pending
 * vectors a slice at a time and takes the checkpoints writers found due.
 *
 * Bounds: a writer that finds more than ENG_PENDING_MAX vectors pending
 * links the excess itself (so the exact scan a search pays for stays
 * small and a writer faster than the thread slows down to its pace), and
 * a checkpoint whose log tail has grown to twice its limit is taken
 * inline.  Nothing here is needed for correctness: with the thread stopped
 * every search is still exact over the pending vectors.
 *
 * Locking: ix.mu is a leaf lock guarding the queue and eng_user.queued; it
 * is never held while a user lock is taken.  The thread works on a user
 * under the user's write lock, one slice (ENG_LINK_SLICE vectors or one
 * checkpoint) per acquisition, and the slice ends after the current link
 * as soon as a search or a write of the user is waiting for its lock
 * (eng_user.lock_waiters), so that they wait for one link, not a slice.
 * User structs live until dm_close, which stops the thread before it frees
 * them, so queued pointers stay valid.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "engine/engine_int.h"

/* Vectors linked per write-lock acquisition when nobody waits for the lock:
 * ~1 ms for a 100k-vector graph. */
#define ENG_LINK_SLICE 8

static void *indexer_main(void *arg);

int eng_indexer_start(dm_db *db)
{
    eng_indexer *ix = &db->ix;
    memset(ix, 0, sizeof *ix);
    pthread_mutex_init(&ix->mu, NULL);
    pthread_cond_init(&ix->work, NULL);
    pthread_cond_init(&ix->idle, NULL);
    ix->inited = true;
    int e = pthread_create(&ix->thread, NULL, indexer_main, db);
    if (e) {
        /* Without the thread every link and checkpoint runs inline. */
        log_msg(LOG_WARN, "index thread not started (%s); indexing inline", strerror(e));
        return DM_OK;
    }
    ix->running = true;
    return DM_OK;
}

void eng_indexer_stop(dm_db *db)
{
    eng_indexer *ix = &db->ix;
    if (!ix->inited)
        return;
    if (ix->running) {
        pthread_mutex_lock(&ix->mu);
        ix->stop = true;
        pthread_cond_broadcast(&ix->work);
        pthread_mutex_unlock(&ix->mu);
        pthread_join(ix->thread, NULL);
        ix->running = false;
    }
    pthread_mutex_lock(&ix->mu);
    for (uint32_t i = 0; i < ix->n; i++)
        ix->q[(ix->head + i) % ix->cap]->queued = false;
    ix->n = 0;
    pthread_cond_broadcast(&ix->idle);
    pthread_mutex_unlock(&ix->mu);
    dm_free(ix->q);
    ix->q = NULL;
    ix->cap = 0;
    pthread_cond_destroy(&ix->work);
    pthread_cond_destroy(&ix->idle);
    pthread_mutex_destroy(&ix->mu);
    ix->inited = false;
}

/* Queue u unless it is queued already; false when the thread is not
 * running or the queue cannot grow (the caller then works inline). */
static bool enqueue(eng_indexer *ix, eng_user *u)
{
    bool ok = true;
    pthread_mutex_lock(&ix->mu);
    if (!ix->running || ix->stop) {
        ok = false;
    } else if (!u->queued) {
        if (ix->n == ix->cap) {
            uint32_t ncap = ix->cap ? ix->cap * 2 : 64;
            eng_user **nq = dm_malloc((size_t)ncap * sizeof *nq);
            if (!nq) {
                ok = false;
                goto out;
            }
            for (uint32_t i = 0; i < ix->n; i++)
                nq[i] = ix->q[(ix->head + i) % ix->cap];
            dm_free(ix->q);
            ix->q = nq;
            ix->cap = ncap;
            ix->head = 0;
        }
        ix->q[(ix->head + ix->n) % ix->cap] = u;
        ix->n++;
        u->queued = true;
        pthread_cond_signal(&ix->work);
    }
out:
    pthread_mutex_unlock(&ix->mu);
    return ok;
}

/* Is a checkpoint of u due, and how far past due (1 = due, 2 = overdue)? */
static int checkpoint_due(const dm_db *db, const eng_user *u)
{
    uint32_t every = db->opt.checkpoint_ops;
    if (!u->has_ckpt)
        return u->n_live >= every ? 1 : 0;
    uint64_t tail = u->next_useq - 1 - u->ckpt_covered;
    uint64_t limit = u->n_live / 2 > every ? u->n_live / 2 : every;
    return tail >= 2 * limit ? 2 : tail >= limit ? 1 : 0;
}

int eng_user_maybe_checkpoint(dm_db *db, eng_user *u)
{
    return checkpoint_due(db, u) ? eng_user_checkpoint(db, u) : DM_OK;
}

void eng_after_write(dm_db *db, eng_user *u)
{
    if (!u->loaded || !u->exists)
        return;
    uint32_t pending = u->n_pend;
    int due = checkpoint_due(db, u);
    if (!pending && !due)
        return;
    bool queued = enqueue(&db->ix, u);
    if (pending > (queued ? ENG_PENDING_MAX : 0)) {
        int rc = eng_vec_link(db, u, pending - (queued ? ENG_PENDING_MAX : 0));
        if (rc) /* still searchable (exactly); the next write tries again */
            log_msg(LOG_WARN, "linking vectors inline: %s", err_last_msg());
    }
    if (due == 2 || (due && !queued)) {
        int rc = eng_user_checkpoint(db, u);
        if (rc)
            log_msg(LOG_WARN, "index checkpoint: %s", err_last_msg());
    }
}

void eng_after_load(dm_db *db, eng_user *u)
{
    /* Vectors replayed from the log or saved pending are linked by the
     * thread; the first searches scan them exactly meanwhile. */
    if (u->n_pend || checkpoint_due(db, u))
        if (!enqueue(&db->ix, u))
            eng_after_write(db, u);
}

/* One slice of work on u.  REQUIRES: u's write lock.  Returns whether more
 * work remains. */
static bool work_slice(dm_db *db, eng_user *u)
{
    if (!u->loaded || !u->exists)
        return false;
    /* A due checkpoint first: a user written without pause never runs
     * out of pending vectors, and its writers would otherwise take the
     * checkpoint themselves at twice the limit.  It links the (short)
     * tail before the snapshot. */
    if (checkpoint_due(db, u)) {
        int rc = eng_user_checkpoint_unlocked(db, u);
        if (rc)
            log_msg(LOG_WARN, "index checkpoint: %s", err_last_msg());
        return u->loaded && u->n_pend > 0;
    }
    /* Up to a slice, but one link at a time once a search or a write of
     * the user waits: it then waits for one link, not for the slice. */
    for (uint32_t i = 0; i < ENG_LINK_SLICE && u->n_pend; i++) {
        if (i && atomic_load_explicit(&u->lock_waiters, memory_order_relaxed))
            break;
        int rc = eng_vec_link(db, u, 1);
        if (rc) {
            log_msg(LOG_WARN, "linking vectors: %s", err_last_msg());
            return false; /* the next write of the user queues it again */
        }
    }
    return u->n_pend > 0;
}

static void *indexer_main(void *arg)
{
    dm_db *db = arg;
    eng_indexer *ix = &db->ix;
    pthread_mutex_lock(&ix->mu);
    for (;;) {
        while (!ix->stop && ix->n == 0)
            pthread_cond_wait(&ix->work, &ix->mu);
        if (ix->stop)
            break;
        eng_user *u = ix->q[ix->head];
        ix->head = (ix->head + 1) % ix->cap;
        ix->n--;
        u->queued = false;
        ix->busy = true;
        pthread_mutex_unlock(&ix->mu);

        pthread_rwlock_wrlock(&u->rw);
        bool more = work_slice(db, u);
        pthread_rwlock_unlock(&u->rw);
        /* Let the threads that made the slice end take the lock before
         * this one asks for it again (a woken waiter would otherwise often
         * lose the race to us and wait for another link). */
        for (int i = 0; i < 100 && atomic_load_explicit(&u->lock_waiters, memory_order_relaxed); i++)
            sched_yield();

        if (more)
            enqueue(ix, u);
        pthread_mutex_lock(&ix->mu);
        ix->busy = false;
        if (ix->n == 0)
            pthread_cond_broadcast(&ix->idle);
    }
    ix->busy = false;
    pthread_cond_broadcast(&ix->idle);
    pthread_mutex_unlock(&ix->mu);
    return NULL;
}

int dm_sync_indexes(dm_db *db)
{
    if (!db)
        return err_set_msg(DM_EINVAL, "sync_indexes: no database");
    eng_indexer *ix = &db->ix;
    pthread_mutex_lock(&ix->mu);
    while (ix->running && !ix->stop && (ix->n || ix->busy))
        pthread_cond_wait(&ix->idle, &ix->mu);
    pthread_mutex_unlock(&ix->mu);
    return DM_OK;
}
