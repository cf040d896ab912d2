/*
 * fair.c -- per-user admission (fair.h).
 *
 * A chained hash table of the users with a request in progress or
 * waiting.  An entry counts its running requests and keeps a FIFO of its
 * waiters; fair_leave hands the slot straight to the oldest waiter, so a
 * slot is never free while somebody waits and a waiter cannot be
 * overtaken by a request that arrives later.  The entry goes when its
 * last request leaves.
 */
#include <pthread.h>
#include <string.h>

#include "base/alloc.h"
#include "server/fair.h"

#define FAIR_SLOTS 4096

struct fair_user {
    struct fair_user *next;    /* hash chain */
    uint64_t hash;
    unsigned running;          /* requests holding a slot */
    fair_waiter *head, *tail;  /* requests waiting, oldest first */
    size_t len;
    char key[];
};

struct fair {
    pthread_mutex_t mu;
    unsigned per_user;
    uint64_t n_users, n_waiting;
    fair_user *slots[FAIR_SLOTS];
};

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

fair *fair_new(unsigned per_user)
{
    fair *f = dm_calloc(1, sizeof *f);
    if (!f)
        return NULL;
    pthread_mutex_init(&f->mu, NULL);
    f->per_user = per_user ? per_user : 1;
    return f;
}

void fair_free(fair *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < FAIR_SLOTS; i++)
        for (fair_user *u = f->slots[i], *n; u; u = n) {
            n = u->next;
            dm_free(u);
        }
    pthread_mutex_destroy(&f->mu);
    dm_free(f);
}

fair_user *fair_enter(fair *f, const char *key, size_t len, fair_waiter *w, bool *admitted)
{
    uint64_t h = fnv1a(key, len);
    *admitted = true;
    pthread_mutex_lock(&f->mu);
    fair_user **slot = &f->slots[h % FAIR_SLOTS], *u = *slot;
    while (u && (u->hash != h || u->len != len || memcmp(u->key, key, len)))
        u = u->next;
    if (!u) {
        u = dm_malloc(sizeof *u + len + 1);
        if (!u) {
            pthread_mutex_unlock(&f->mu);
            return NULL;
        }
        memset(u, 0, sizeof *u);
        u->hash = h;
        u->len = len;
        memcpy(u->key, key, len);
        u->key[len] = 0;
        u->next = *slot;
        *slot = u;
        f->n_users++;
    }
    if (u->running < f->per_user) {
        u->running++;
    } else {
        w->next = NULL;
        if (u->tail)
            u->tail->next = w;
        else
            u->head = w;
        u->tail = w;
        f->n_waiting++;
        *admitted = false;
    }
    pthread_mutex_unlock(&f->mu);
    return u;
}

/* REQUIRES: f->mu.  Free u when nothing runs or waits. */
static void drop_if_idle(fair *f, fair_user *u)
{
    if (u->running || u->head)
        return;
    fair_user **p = &f->slots[u->hash % FAIR_SLOTS];
    while (*p != u)
        p = &(*p)->next;
    *p = u->next;
    f->n_users--;
    dm_free(u);
}

fair_waiter *fair_leave(fair *f, fair_user *u)
{
    pthread_mutex_lock(&f->mu);
    fair_waiter *w = u->head;
    if (w) {
        /* The slot passes to the oldest waiter: running stays. */
        u->head = w->next;
        if (!u->head)
            u->tail = NULL;
        w->next = NULL;
        f->n_waiting--;
    } else {
        u->running--;
        drop_if_idle(f, u);
    }
    pthread_mutex_unlock(&f->mu);
    return w;
}

bool fair_cancel(fair *f, fair_user *u, fair_waiter *w)
{
    pthread_mutex_lock(&f->mu);
    fair_waiter **p = &u->head, *prev = NULL;
    while (*p && *p != w) {
        prev = *p;
        p = &(*p)->next;
    }
    bool found = *p == w;
    if (found) {
        *p = w->next;
        if (u->tail == w)
            u->tail = prev;
        f->n_waiting--;
        drop_if_idle(f, u);
    }
    pthread_mutex_unlock(&f->mu);
    return found;
}

fair_waiter *fair_pop_any(fair *f)
{
    fair_waiter *w = NULL;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < FAIR_SLOTS && !w; i++)
        for (fair_user *u = f->slots[i]; u && !w; u = u->next)
            if ((w = u->head)) {
                u->head = w->next;
                if (!u->head)
                    u->tail = NULL;
                w->next = NULL;
                u->running++;
                f->n_waiting--;
            }
    pthread_mutex_unlock(&f->mu);
    return w;
}

void fair_stats(fair *f, uint64_t *users, uint64_t *waiting)
{
    pthread_mutex_lock(&f->mu);
    *users = f->n_users;
    *waiting = f->n_waiting;
    pthread_mutex_unlock(&f->mu);
}
