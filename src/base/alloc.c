/*
 * alloc.c -- accounting allocator with fault injection.
 *
 * Each block carries a 16-byte header holding what the block was charged,
 * so that dm_free can keep alloc_bytes_in_use exact.  The charge is the
 * allocator's own size of the block (malloc_usable_size: the header and the
 * rounding up to the allocator's size class included), not the size asked
 * for: many small blocks cost the header and the rounding each, and the
 * account is of what the engine's heap costs.  Injection is a countdown
 * shared by all threads: when it reaches zero the allocation fails.
 */
#include "base/alloc.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define HDR 16

/* Bytes in use, striped: one counter per thread slot, each on its own cache
 * line, summed by alloc_bytes_in_use.  A single shared counter made every
 * allocation of every thread bounce one cache line between cores (two
 * threads searching gave 1.5x the throughput of one).  A block freed on
 * another thread than its allocator's moves bytes between slots; the sum
 * stays exact. */
#define N_SLOTS 64
static struct {
    _Alignas(64) _Atomic int64_t v;
} slots[N_SLOTS];
static _Atomic unsigned next_slot;
static _Thread_local int my_slot = -1;

static inline _Atomic int64_t *bytes_slot(void)
{
    if (my_slot < 0)
        my_slot = (int)(atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed) % N_SLOTS);
    return &slots[my_slot].v;
}
static _Atomic int64_t fail_countdown; /* 0 = off */
static _Atomic int fail_persistent;
static _Atomic int64_t n_failed;

static int should_fail(void)
{
    int64_t c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (c == 0)
        return 0;
    if (c < 0) { /* persistent failure already firing */
        atomic_fetch_add(&n_failed, 1);
        return 1;
    }
    c = atomic_fetch_sub(&fail_countdown, 1) - 1;
    if (c == 0) {
        if (atomic_load(&fail_persistent))
            atomic_store(&fail_countdown, -1);
        atomic_fetch_add(&n_failed, 1);
        return 1;
    }
    if (c < 0) { /* raced past zero */
        atomic_store(&fail_countdown, 0);
        return 0;
    }
    return 0;
}

void *dm_malloc(size_t n)
{
    if (should_fail() || n > SIZE_MAX - HDR)
        return NULL;
    unsigned char *p = malloc(n + HDR);
    if (!p)
        return NULL;
    size_t charge = malloc_usable_size(p);
    memcpy(p, &charge, sizeof charge);
    atomic_fetch_add_explicit(bytes_slot(), (int64_t)charge, memory_order_relaxed);
    return p + HDR;
}

void *dm_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = dm_malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *dm_realloc(void *p, size_t n)
{
    if (!p)
        return dm_malloc(n);
    if (should_fail() || n > SIZE_MAX - HDR)
        return NULL;
    unsigned char *base = (unsigned char *)p - HDR;
    size_t old;
    memcpy(&old, base, sizeof old);
    unsigned char *q = realloc(base, n + HDR);
    if (!q)
        return NULL;
    size_t charge = malloc_usable_size(q);
    memcpy(q, &charge, sizeof charge);
    atomic_fetch_add_explicit(bytes_slot(), (int64_t)charge - (int64_t)old,
                              memory_order_relaxed);
    return q + HDR;
}

void dm_free(void *p)
{
    if (!p)
        return;
    unsigned char *base = (unsigned char *)p - HDR;
    size_t n;
    memcpy(&n, base, sizeof n);
    atomic_fetch_sub_explicit(bytes_slot(), (int64_t)n, memory_order_relaxed);
    free(base);
}

char *dm_strdup(const char *s)
{
    return dm_memdup(s, strlen(s) + 1);
}

char *dm_strndup(const void *p, size_t n)
{
    char *q = dm_malloc(n + 1);
    if (q) {
        if (n)
            memcpy(q, p, n);
        q[n] = 0;
    }
    return q;
}

void *dm_memdup(const void *p, size_t n)
{
    void *q = dm_malloc(n ? n : 1);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

int64_t alloc_bytes_in_use(void)
{
    int64_t sum = 0;
    for (int i = 0; i < N_SLOTS; i++)
        sum += atomic_load(&slots[i].v);
    return sum;
}

void alloc_fail_after(int64_t k, int is_persistent)
{
    atomic_store(&fail_persistent, is_persistent);
    atomic_store(&fail_countdown, k);
}

int64_t alloc_failures(void)
{
    return atomic_load(&n_failed);
}
