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
#include <limits.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "engine/engine_int.h"
#include "os/proc.h"

/* Vectors linked per write-lock acquisition when nobody waits for the lock:
 * ~1 ms for a 100k-vector graph. */
#define ENG_LINK_SLICE 8

static void *indexer_main(void *arg);

int eng_indexer_start(dm_db *db)
{
    eng_indexer *ix = &db->ix;
    memset(ix, 0, sizeof *ix);
    pthread_mutex_init(&ix->mu, NULL);
    /* The thread's timed waits (the decay pass) count on the monotonic
     * clock: a deadline on it passed to a CLOCK_REALTIME condition would
     * always lie in the past, and the wait would spin. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ix->work, &ca);
    pthread_condattr_destroy(&ca);
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
    eng_refresh_drain(db, true); /* what is left (or everything, without a thread) */
    pthread_mutex_lock(&ix->mu);
    dm_free(ix->rf); /* left only if the drain ran out of memory */
    ix->rf = NULL;
    ix->rf_n = ix->rf_cap = ix->rf_head = 0;
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

/* The background decay pass: archive the faded memories of loaded users
 * (salience.c).  Users that are not loaded wait for dm_decay. */
static void decay_pass(dm_db *db)
{
    int64_t now = (int64_t)clock_wall_us();
    for (int s = 0; s < ENG_STRIPES; s++) {
        eng_stripe *st = &db->stripes[s];
        pthread_mutex_lock(&st->mu);
        uint32_t cap = st->cap;
        eng_user **us = cap ? dm_malloc(sizeof *us * cap) : NULL;
        uint32_t n = 0;
        for (uint32_t i = 0; us && i < cap; i++)
            if (st->slots[i])
                us[n++] = st->slots[i];
        pthread_mutex_unlock(&st->mu);
        for (uint32_t i = 0; i < n; i++) {
            eng_user *u = us[i];
            pthread_rwlock_wrlock(&u->rw);
            if (u->loaded && u->exists) {
                uint64_t n_arch = 0;
                if (eng_decay_user_locked(db, u, now, db->opt.prune_threshold, &n_arch))
                    log_msg(LOG_WARN, "decay: %s", err_last_msg());
            }
            pthread_rwlock_unlock(&u->rw);
        }
        dm_free(us);
    }
}

static bool decay_due(const dm_db *db)
{
    return db->opt.decay_interval_s && clock_mono_us() >= db->ix.next_decay_us;
}

/* The memory pass (dm_options.user_idle_s, index_memory_bytes,
 * map_memory_bytes): once a second under a bound; with idleness alone
 * every user_idle_s / 8 seconds (at least 1), so that an idle user leaves
 * at most an eighth late and the default (900 s) walks the users every
 * 112 s, not every second.  The unload part reads every user's figures
 * under a try-lock, as dm_stats_get does, then unloads with a try-lock
 * outside the stripe's mutex: a user whose lock is held or awaited is in
 * use and stays. */
static bool has_memory_pass(const dm_db *db)
{
    return db->opt.user_idle_s || db->opt.index_memory_bytes || db->opt.map_memory_bytes;
}

static uint64_t memory_every_us(const dm_db *db)
{
    uint64_t s = db->opt.index_memory_bytes || db->opt.map_memory_bytes
                     ? 1 : db->opt.user_idle_s / 8;
    return (s ? s : 1) * 1000000u;
}

static bool memory_due(const dm_db *db)
{
    return db->ix.next_memory_us && clock_mono_us() >= db->ix.next_memory_us;
}

typedef struct unload_cand {
    eng_user *u;
    unsigned used_s;
    uint64_t bytes;
} unload_cand;

static int cmp_used(const void *a, const void *b)
{
    const unload_cand *x = a, *y = b;
    return x->used_s < y->used_s ? -1 : x->used_s > y->used_s;
}

/* Unload u unless it is in use or was used at or after used_before. */
static bool unload_one(dm_db *db, eng_user *u, unsigned used_before)
{
    if (atomic_load_explicit(&u->lock_waiters, memory_order_relaxed) ||
        pthread_rwlock_trywrlock(&u->rw))
        return false;
    bool done = false;
    if (u->loaded && u->exists && !u->ckpt_busy &&
        atomic_load_explicit(&u->used_s, memory_order_relaxed) < used_before) {
        int rc = eng_user_unload(db, u);
        if (rc)
            log_msg(LOG_WARN, "unloading a user's indexes: %s", err_last_msg());
        done = rc == DM_OK;
    }
    pthread_rwlock_unlock(&u->rw);
    return done;
}

typedef struct unload_list {
    unload_cand *c;
    size_t n, cap;
    uint64_t total; /* bytes of every loaded user's indexes */
} unload_list;

static void note_loaded(dm_db *db, eng_user *u, void *arg)
{
    unload_list *l = arg;
    uint64_t bytes = eng_user_index_bytes(db, u);
    l->total += bytes;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? 2 * l->cap : 1024;
        unload_cand *nc = dm_realloc(l->c, ncap * sizeof *nc);
        if (!nc)
            return; /* out of memory: the next pass sees the user */
        l->c = nc;
        l->cap = ncap;
    }
    l->c[l->n++] = (unload_cand){ u, atomic_load_explicit(&u->used_s, memory_order_relaxed),
                                  bytes };
}

static void unload_pass(dm_db *db)
{
    unsigned now = (unsigned)(clock_mono_us() / 1000000u);
    uint32_t idle = db->opt.user_idle_s;
    uint64_t budget = db->opt.index_memory_bytes;
    unload_list l = { 0 };
    eng_users_scan_loaded(db, note_loaded, &l);
    unload_cand *c = l.c;
    size_t n = l.n;
    uint64_t total = l.total;
    if (idle && now > idle) {
        /* Used at second now - idle or later: maybe less than idle seconds
         * ago.  Earlier: surely not. */
        unsigned before = now - idle;
        for (size_t i = 0; i < n; i++)
            if (c[i].used_s < before && unload_one(db, c[i].u, before)) {
                total -= c[i].bytes;
                c[i].u = NULL;
            }
    }
    if (budget && total > budget) {
        uint64_t target = budget / 10 * 9;
        qsort(c, n, sizeof *c, cmp_used);
        for (size_t i = 0; i < n && total > target; i++)
            if (c[i].u && unload_one(db, c[i].u, UINT_MAX))
                total -= c[i].bytes;
    }
    dm_free(c);
}

/* The mapped tables' part: the page clock ticks (a second), and past
 * map_memory_bytes of resident file-backed pages, the pages of the table
 * blocks read longest ago go, down to 90 % of the bound. */
static void map_pass(dm_db *db)
{
    uint64_t file, bound = db->opt.map_memory_bytes;
    kv_tick_page_clock(db->kv);
    if (proc_resident(NULL, &file) || file <= bound)
        return;
    if (kv_drop_table_pages(db->kv, file - bound / 10 * 9))
        log_msg(LOG_WARN, "giving back mapped table pages: %s", err_last_msg());
}

static void memory_pass(dm_db *db)
{
    if (db->opt.user_idle_s || db->opt.index_memory_bytes)
        unload_pass(db);
    if (db->opt.map_memory_bytes)
        map_pass(db);
}

/* REQUIRES: ix->mu.  Wait for work: a user to link, refreshes the rate
 * allows, or the next decay pass.  Sets *refresh to whether refreshes may
 * be written now. */
static void wait_for_work(dm_db *db, bool *refresh)
{
    eng_indexer *ix = &db->ix;
    for (;;) {
        uint64_t rf_wait_us;
        *refresh = eng_refresh_ready(db, &rf_wait_us);
        if (ix->stop || ix->n || *refresh || decay_due(db) || memory_due(db))
            return;
        uint64_t wait_us = rf_wait_us;
        uint64_t timers[2] = { db->opt.decay_interval_s ? ix->next_decay_us : 0,
                               ix->next_memory_us };
        uint64_t now = clock_mono_us();
        bool is_due = false;
        for (int t = 0; t < 2; t++) {
            if (!timers[t])
                continue;
            if (now >= timers[t]) {
                is_due = true; /* due since decay_due or memory_due looked */
                break;
            }
            uint64_t d = timers[t] - now;
            if (!wait_us || d < wait_us)
                wait_us = d;
        }
        if (is_due)
            continue;
        if (!wait_us) {
            pthread_cond_wait(&ix->work, &ix->mu);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(wait_us / 1000000u);
        ts.tv_nsec += (long)(wait_us % 1000000u) * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&ix->work, &ix->mu, &ts);
    }
}

static void *indexer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "dm-indexer");
    dm_db *db = arg;
    eng_indexer *ix = &db->ix;
    pthread_mutex_lock(&ix->mu);
    ix->next_decay_us = clock_mono_us() + (uint64_t)db->opt.decay_interval_s * 1000000u;
    if (has_memory_pass(db))
        ix->next_memory_us = clock_mono_us() + memory_every_us(db);
    bool drained = false; /* the last turn wrote refreshes */
    for (;;) {
        bool refresh;
        wait_for_work(db, &refresh);
        if (ix->stop)
            break;
        /* A due decay pass (hourly) goes first; then refreshes (small, and
         * they keep recall honest), but not twice in a row while users
         * wait to be linked: under a steady stream of searches the refresh
         * queue is never empty, and linking would starve. */
        if (memory_due(db)) {
            ix->next_memory_us = clock_mono_us() + memory_every_us(db);
            ix->busy = true;
            pthread_mutex_unlock(&ix->mu);
            memory_pass(db);
            pthread_mutex_lock(&ix->mu);
            ix->busy = false;
            if (ix->n == 0 && ix->rf_n == 0)
                pthread_cond_broadcast(&ix->idle);
            continue;
        }
        bool decay = decay_due(db);
        if (decay || (refresh && !(drained && ix->n))) {
            drained = !decay;
            if (decay)
                ix->next_decay_us = clock_mono_us() + (uint64_t)db->opt.decay_interval_s * 1000000u;
            ix->busy = true;
            pthread_mutex_unlock(&ix->mu);
            if (decay)
                decay_pass(db);
            else
                eng_refresh_drain(db, false);
            pthread_mutex_lock(&ix->mu);
            ix->busy = false;
            if (ix->n == 0 && ix->rf_n == 0)
                pthread_cond_broadcast(&ix->idle);
            continue;
        }
        drained = false;
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
        if (ix->n == 0 && ix->rf_n == 0)
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
    /* Queued refreshes are written without waiting for the rate. */
    ix->n_syncing++;
    pthread_cond_signal(&ix->work);
    while (ix->running && !ix->stop && (ix->n || ix->busy || ix->rf_n))
        pthread_cond_wait(&ix->idle, &ix->mu);
    ix->n_syncing--;
    pthread_mutex_unlock(&ix->mu);
    return DM_OK;
}
