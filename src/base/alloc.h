/*
 * alloc.h -- the engine's heap: every allocation goes through dm_malloc.
 *
 * Why: byte accounting (alloc_bytes_in_use) and fault injection ("fail the
 * k-th allocation") for the out-of-memory tests.  dm_free(NULL) does
 * nothing.  All functions are thread-safe.
 */
#ifndef DM_BASE_ALLOC_H
#define DM_BASE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/* dm_malloc -- like malloc; NULL when out of memory or when an injected
 * failure fires.  Caller frees with dm_free. */
void *dm_malloc(size_t n);
/* dm_calloc -- zeroed allocation of n*size bytes (overflow-checked). */
void *dm_calloc(size_t n, size_t size);
/* dm_realloc -- like realloc; on failure returns NULL and p stays valid. */
void *dm_realloc(void *p, size_t n);
/* dm_free -- release memory from dm_malloc/dm_calloc/dm_realloc. */
void dm_free(void *p);
/* dm_strdup / dm_memdup -- copies; caller frees with dm_free.  dm_strndup
 * copies n bytes (which need not be NUL-terminated) and adds a NUL. */
char *dm_strdup(const char *s);
char *dm_strndup(const void *p, size_t n);
void *dm_memdup(const void *p, size_t n);

/* alloc_bytes_in_use -- bytes the allocator holds for the blocks currently
 * allocated through dm_malloc: each block's usable size, which includes its
 * 16-byte header and the rounding to the allocator's size class. */
int64_t alloc_bytes_in_use(void);

/*
 * alloc_fail_after -- make the k-th next allocation (k >= 1) and, if
 * is_persistent, every one after it fail.  k = 0 switches injection off.
 * Tests only.
 */
void alloc_fail_after(int64_t k, int is_persistent);
/* alloc_failures -- how many allocations injection has failed so far. */
int64_t alloc_failures(void);

#endif
