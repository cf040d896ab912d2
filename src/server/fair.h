/*
 * fair.h -- per-user admission: at most `per_user` requests of one user in
 * progress at once; the others wait their turn, first come first served.
 *
 * Why: a request runs on one of a fixed pool of threads, and each thread
 * serves its connections one request at a time.  Without a bound, one user
 * sending on hundreds of connections fills every thread with its requests
 * (its writes serialize on the user's lock anyway) and everyone else
 * queues behind them.  With it, the user's extra requests are parked off
 * the threads (the caller suspends their connections) and the threads stay
 * free for other users.
 *
 * A user is named by an opaque key (the server uses tenant + user id).
 * An entry exists while the user has a request in progress or waiting, so
 * the table holds the active users only.  One mutex guards the table; every
 * call is O(1) but for the hash of the key.  Thread-safe.
 */
#ifndef DM_SERVER_FAIR_H
#define DM_SERVER_FAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fair fair;
typedef struct fair_user fair_user;

/* A request waiting for a slot; embedded in the caller's request state. */
typedef struct fair_waiter {
    struct fair_waiter *next;
} fair_waiter;

/* fair_new -- a table admitting per_user (>= 1) requests per user.  NULL
 * when out of memory.  fair_free frees it; no request may be in it then. */
fair *fair_new(unsigned per_user);
void fair_free(fair *f);

/*
 * fair_enter -- request w of the user named key[0..len) asks for a slot.
 * Returns the user's entry (held until fair_leave or fair_cancel), with
 * *admitted true when w may run now, false when w was queued: it runs once
 * a fair_leave of the same user returns it.  NULL when out of memory (the
 * request then runs without a slot; pass NULL to nothing).
 */
fair_user *fair_enter(fair *f, const char *key, size_t len, fair_waiter *w, bool *admitted);

/*
 * fair_leave -- a request of u that held a slot has ended.  Returns the
 * waiter that now holds the slot (the caller resumes it; it then runs and
 * later leaves in turn), or NULL when nobody waited -- the slot is free and
 * u may be freed.
 */
fair_waiter *fair_leave(fair *f, fair_user *u);

/* fair_cancel -- take queued w out of u's queue (its request ended while
 * it waited).  False when w was not queued (it holds a slot: call
 * fair_leave instead). */
bool fair_cancel(fair *f, fair_user *u, fair_waiter *w);

/* fair_pop_any -- some user's oldest waiter, now holding a slot (over the
 * bound if need be), or NULL when nobody waits.  For a server that stops:
 * every waiter must run (and be refused) before it can. */
fair_waiter *fair_pop_any(fair *f);

/* fair_stats -- users with an entry, and requests waiting, now. */
void fair_stats(fair *f, uint64_t *users, uint64_t *waiting);

#endif
