/*
 * block_cache.c -- sst_cache: a sharded LRU cache of decoded SSTable blocks.
 *
 * Design.  Entries are keyed by (file_number, block offset); file numbers
 * are never reused, so an entry can never be confused with another
 * table's block and stale entries of deleted tables simply age out.  The
 * key hash picks one of 16 shards; each shard has its own mutex, a chained
 * hash table and an LRU list, and gets 1/16 of the capacity.  An entry is
 * one allocation: header followed by the block bytes.
 *
 * Reference counting.  A handle returned by lookup/insert carries one
 * reference; the cache itself holds one more while the entry is in its
 * table.  So:
 *   refs == 1 and in_cache   -> unused; on the LRU list; may be evicted
 *   refs >= 2 and in_cache   -> in use; off the LRU list; never evicted
 *   in_cache == false        -> evicted or replaced; freed when refs hits 0
 * Usage counts every entry in the table, in use or not, so a burst of
 * pinned blocks can exceed the capacity until they are released; release
 * then evicts down to the capacity.  An entry bigger than a shard's share
 * is still inserted (the caller needs it now) and is evicted when released.
 *
 * Locking.  shard->mu guards the shard's table, LRU list, count, and the
 * refs / in_cache / list links of every entry in that shard.  usage and
 * the lookup counts (hits, misses) are also written under mu but are
 * atomic so that sst_cache_usage and sst_cache_lookups read them without
 * locking.  Memory of victims is freed after unlocking.  A standalone
 * handle (no shard) has exactly one owner and needs no lock.
 *
 * Spares.  An entry that leaves the cache for good is not freed at once:
 * each shard keeps up to MAX_SPARES of them, and sst_cache_handle_new_for
 * hands one out for the next miss in that shard whose block fits.  A busy
 * cache evicts about one block per miss, so in the steady state a miss
 * neither allocates nor frees.  That matters beyond the allocator's own
 * cost: glibc frees a chunk into the arena of the thread that allocated
 * it, under that arena's lock, and a shared cache whose victims were
 * allocated by other threads makes the readers queue on each other's
 * arenas.  Spares are not counted in usage; a shard holds at most
 * MAX_SPARES of them.  New allocations are rounded up to SPARE_ROUND bytes
 * so that blocks of nearly the same size can share one.
 */
#include "storage/sstable_int.h"

#include <pthread.h>
#include <stdatomic.h>

#include "base/alloc.h"
#include "base/err.h"

#define N_SHARDS 16
#define SHARD_SHIFT 28 /* top 4 bits of the 32-bit hash pick the shard */
#define INITIAL_BUCKETS 64
#define MAX_SPARES 8
#define SPARE_ROUND 256

struct cache_shard;

/* LRU list links; the first member of an entry, so a link is its entry. */
typedef struct lru_link {
    struct lru_link *prev, *next;
} lru_link;

struct sst_cache_handle {
    lru_link link;                 /* LRU links (unused entries only) */
    sst_cache_handle *hnext;       /* hash chain (in_cache only) */
    struct cache_shard *shard;     /* NULL while standalone */
    uint64_t file;
    uint64_t off;
    uint32_t hash;
    uint32_t refs;
    bool in_cache;
    size_t len;       /* bytes of block contents in use */
    size_t alloc_len; /* bytes allocated after the header */
    size_t charge;    /* what the entry costs against the capacity */
    uint8_t data[];
};

struct cache_shard {
    pthread_mutex_t mu;
    sst_cache_handle **buckets; /* n_buckets chains, a power of two */
    size_t n_buckets;
    size_t count;
    lru_link lru; /* sentinel: lru.next oldest, lru.prev newest */
    size_t capacity;
    _Atomic size_t usage;
    sst_cache_handle *spares; /* chained via hnext, at most MAX_SPARES */
    unsigned n_spares;
    _Atomic uint64_t hits, misses; /* lookups, written under mu */
    char _pad[64]; /* keep neighbouring shards' locks off one cache line */
};

struct sst_cache {
    struct cache_shard shards[N_SHARDS];
};

static uint32_t key_hash(uint64_t file, uint64_t off)
{
    uint64_t h = file * UINT64_C(0x9E3779B97F4A7C15) ^ off;
    h ^= h >> 31;
    h *= UINT64_C(0xBF58476D1CE4E5B9);
    h ^= h >> 29;
    return (uint32_t)(h >> 32);
}

/* ------------------------------------------------------------ handles */

sst_cache_handle *sst_cache_handle_new(size_t len)
{
    if (len > SIZE_MAX - sizeof(sst_cache_handle))
        return NULL;
    sst_cache_handle *h = dm_malloc(sizeof *h + len);
    if (!h)
        return NULL;
    memset(h, 0, sizeof *h);
    h->refs = 1;
    h->len = h->alloc_len = len;
    h->charge = sizeof *h + len;
    return h;
}

uint8_t *sst_cache_handle_data(sst_cache_handle *h) { return h->data; }
size_t sst_cache_handle_len(const sst_cache_handle *h) { return h->len; }

void sst_cache_handle_set_len(sst_cache_handle *h, size_t len)
{
    if (len <= h->alloc_len)
        h->len = len;
}

/* ------------------------------------------------------------- shards */

/* REQUIRES: s->mu held; e out of the table with no references.  Keeps e
 * as a spare, or chains it on *dead for freeing after the unlock. */
static void retire(struct cache_shard *s, sst_cache_handle *e, sst_cache_handle **dead)
{
    if (s->n_spares < MAX_SPARES) {
        e->hnext = s->spares;
        s->spares = e;
        s->n_spares++;
    } else {
        e->hnext = *dead;
        *dead = e;
    }
}

/* REQUIRES: s->mu held.  A spare with room for len bytes and not much
 * more, taken off the list; NULL when none fits. */
static sst_cache_handle *take_spare(struct cache_shard *s, size_t len)
{
    size_t most = len + len / 4 + SPARE_ROUND;
    for (sst_cache_handle **pp = &s->spares; *pp; pp = &(*pp)->hnext) {
        sst_cache_handle *e = *pp;
        if (e->alloc_len >= len && e->alloc_len <= most) {
            *pp = e->hnext;
            s->n_spares--;
            return e;
        }
    }
    return NULL;
}

static void lru_remove(sst_cache_handle *e)
{
    e->link.prev->next = e->link.next;
    e->link.next->prev = e->link.prev;
    e->link.prev = e->link.next = NULL;
}

static void lru_append(struct cache_shard *s, sst_cache_handle *e)
{
    e->link.next = &s->lru;
    e->link.prev = s->lru.prev;
    e->link.prev->next = &e->link;
    s->lru.prev = &e->link;
}

/* REQUIRES: s->mu held; e in the table. */
static void table_unlink(struct cache_shard *s, sst_cache_handle *e)
{
    sst_cache_handle **pp = &s->buckets[e->hash & (s->n_buckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    e->hnext = NULL;
    s->count--;
    e->in_cache = false;
    atomic_store_explicit(&s->usage,
                          atomic_load_explicit(&s->usage, memory_order_relaxed) -
                              e->charge,
                          memory_order_relaxed);
}

/* REQUIRES: s->mu held.  Doubling is best effort: without memory the
 * chains just get longer. */
static void table_grow(struct cache_shard *s)
{
    size_t nb = s->n_buckets * 2;
    sst_cache_handle **b = dm_calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < s->n_buckets; i++) {
        sst_cache_handle *e = s->buckets[i];
        while (e) {
            sst_cache_handle *nx = e->hnext;
            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = nx;
        }
    }
    dm_free(s->buckets);
    s->buckets = b;
    s->n_buckets = nb;
}

/* REQUIRES: s->mu held.  Evicts unused entries, oldest first, until the
 * usage fits; victims are chained on *dead (via hnext) for freeing after
 * the unlock. */
static void evict(struct cache_shard *s, sst_cache_handle **dead)
{
    while (atomic_load_explicit(&s->usage, memory_order_relaxed) > s->capacity &&
           s->lru.next != &s->lru) {
        sst_cache_handle *e = (sst_cache_handle *)s->lru.next;
        lru_remove(e);
        table_unlink(s, e);
        e->refs = 0;
        retire(s, e, dead);
    }
}

static void free_chain(sst_cache_handle *e)
{
    while (e) {
        sst_cache_handle *nx = e->hnext;
        dm_free(e);
        e = nx;
    }
}

sst_cache_handle *sst_cache_handle_new_for(sst_cache *c, uint64_t file_number,
                                           uint64_t off, size_t len)
{
    if (!c)
        return sst_cache_handle_new(len);
    struct cache_shard *s = &c->shards[key_hash(file_number, off) >> SHARD_SHIFT];
    pthread_mutex_lock(&s->mu);
    sst_cache_handle *h = s->spares ? take_spare(s, len) : NULL;
    pthread_mutex_unlock(&s->mu);
    if (!h) {
        size_t room = len;
        if (len <= SIZE_MAX - SPARE_ROUND)
            room = (len + SPARE_ROUND - 1) / SPARE_ROUND * SPARE_ROUND;
        if (!(h = sst_cache_handle_new(room)))
            return NULL;
    }
    size_t room = h->alloc_len;
    memset(h, 0, sizeof *h);
    h->refs = 1;
    h->len = len;
    h->alloc_len = room;
    h->charge = sizeof *h + room;
    return h;
}

/* -------------------------------------------------------------- cache */

/* A shard's lock is held for a few hundred nanoseconds at most, so a
 * thread that finds it taken spins briefly before it sleeps (glibc's
 * adaptive mutex): sleeping and waking through the kernel would cost far
 * more than the wait. */
static int shard_mutex_init(pthread_mutex_t *mu)
{
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
    pthread_mutexattr_t a;
    if (pthread_mutexattr_init(&a))
        return -1;
    int rc = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
    if (!rc)
        rc = pthread_mutex_init(mu, &a);
    pthread_mutexattr_destroy(&a);
    return rc;
#else
    return pthread_mutex_init(mu, NULL);
#endif
}

int sst_cache_new(size_t capacity, sst_cache **out)
{
    *out = NULL;
    sst_cache *c = dm_calloc(1, sizeof *c);
    int n_init = 0;
    if (!c)
        goto nomem;
    for (; n_init < N_SHARDS; n_init++) {
        struct cache_shard *s = &c->shards[n_init];
        s->buckets = dm_calloc(INITIAL_BUCKETS, sizeof *s->buckets);
        if (!s->buckets)
            goto nomem;
        if (shard_mutex_init(&s->mu)) {
            dm_free(s->buckets);
            goto nomem;
        }
        s->n_buckets = INITIAL_BUCKETS;
        s->lru.next = s->lru.prev = &s->lru;
        s->capacity = capacity / N_SHARDS + (capacity % N_SHARDS != 0);
        atomic_init(&s->usage, 0);
    }
    *out = c;
    return DM_OK;
nomem:
    if (c) {
        while (n_init-- > 0) {
            pthread_mutex_destroy(&c->shards[n_init].mu);
            dm_free(c->shards[n_init].buckets);
        }
        dm_free(c);
    }
    return DM_ENOMEM;
}

void sst_cache_free(sst_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < N_SHARDS; i++) {
        struct cache_shard *s = &c->shards[i];
        for (size_t b = 0; b < s->n_buckets; b++)
            free_chain(s->buckets[b]);
        free_chain(s->spares);
        dm_free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    dm_free(c);
}

size_t sst_cache_usage(const sst_cache *c)
{
    size_t u = 0;
    for (int i = 0; i < N_SHARDS; i++)
        u += atomic_load_explicit(&c->shards[i].usage, memory_order_relaxed);
    return u;
}

void sst_cache_lookups(const sst_cache *c, uint64_t *hits, uint64_t *misses)
{
    uint64_t h = 0, m = 0;
    for (int i = 0; i < N_SHARDS; i++) {
        h += atomic_load_explicit(&c->shards[i].hits, memory_order_relaxed);
        m += atomic_load_explicit(&c->shards[i].misses, memory_order_relaxed);
    }
    *hits = h;
    *misses = m;
}

size_t sst_cache_entries(const sst_cache *c)
{
    size_t n = 0;
    sst_cache *mc = (sst_cache *)c; /* the mutexes are not part of the value */
    for (int i = 0; i < N_SHARDS; i++) {
        pthread_mutex_lock(&mc->shards[i].mu);
        n += mc->shards[i].count;
        pthread_mutex_unlock(&mc->shards[i].mu);
    }
    return n;
}

sst_cache_handle *sst_cache_lookup(sst_cache *c, uint64_t file_number,
                                   uint64_t off)
{
    uint32_t h = key_hash(file_number, off);
    struct cache_shard *s = &c->shards[h >> SHARD_SHIFT];
    pthread_mutex_lock(&s->mu);
    sst_cache_handle *e = s->buckets[h & (s->n_buckets - 1)];
    while (e && !(e->hash == h && e->file == file_number && e->off == off))
        e = e->hnext;
    if (e) {
        if (e->refs == 1)
            lru_remove(e);
        e->refs++;
    }
    _Atomic uint64_t *n = e ? &s->hits : &s->misses; /* one writer: mu's holder */
    atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    pthread_mutex_unlock(&s->mu);
    return e;
}

void sst_cache_insert(sst_cache *c, uint64_t file_number, uint64_t off,
                      sst_cache_handle *e)
{
    uint32_t h = key_hash(file_number, off);
    struct cache_shard *s = &c->shards[h >> SHARD_SHIFT];
    sst_cache_handle *dead = NULL;
    pthread_mutex_lock(&s->mu);
    e->shard = s;
    e->file = file_number;
    e->off = off;
    e->hash = h;
    e->refs++; /* the cache's own reference */
    e->in_cache = true;
    sst_cache_handle *old = s->buckets[h & (s->n_buckets - 1)];
    while (old && !(old->hash == h && old->file == file_number && old->off == off))
        old = old->hnext;
    if (old) {
        /* Two readers missed at once and both built the block; the newer
         * copy replaces the older, which its users keep until release. */
        if (old->refs == 1)
            lru_remove(old);
        table_unlink(s, old);
        if (--old->refs == 0)
            retire(s, old, &dead);
    }
    sst_cache_handle **bucket = &s->buckets[h & (s->n_buckets - 1)];
    e->hnext = *bucket;
    *bucket = e;
    s->count++;
    atomic_store_explicit(&s->usage,
                          atomic_load_explicit(&s->usage, memory_order_relaxed) +
                              e->charge,
                          memory_order_relaxed);
    if (s->count > s->n_buckets)
        table_grow(s);
    evict(s, &dead);
    pthread_mutex_unlock(&s->mu);
    free_chain(dead);
}

void sst_cache_release(sst_cache_handle *e)
{
    if (!e)
        return;
    struct cache_shard *s = e->shard;
    if (!s) {
        dm_free(e);
        return;
    }
    sst_cache_handle *dead = NULL;
    pthread_mutex_lock(&s->mu);
    if (--e->refs == 0) {
        retire(s, e, &dead);
    } else if (e->refs == 1 && e->in_cache) {
        lru_append(s, e);
        evict(s, &dead);
    }
    pthread_mutex_unlock(&s->mu);
    free_chain(dead);
}
