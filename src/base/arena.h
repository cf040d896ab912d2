/*
 * arena.h -- a bump allocator over blocks obtained from dm_malloc.
 *
 * Allocations are carved from the current block by moving a pointer; there
 * is no per-allocation free: everything is released at once by
 * arena_fini.  Used where many small objects share one lifetime (memtable
 * nodes live until the memtable is freed).
 *
 * Block sizes start at ARENA_BLOCK_MIN and double up to ARENA_BLOCK_MAX,
 * so that a small arena stays small while a big one makes few calls to
 * dm_malloc; a big arena (ARENA_HUGE_AFTER) switches to huge-page blocks.
 * A request larger than a quarter of the regular block size gets a block
 * of its own so that the tail of the current block is not wasted.
 *
 * Thread-safety: one thread allocates at a time (the owner serialises
 * arena_alloc*); arena_mem_usage may be called from any thread at any
 * time.  Memory handed out stays valid (and does not move) until
 * arena_fini.
 */
#ifndef DM_BASE_ARENA_H
#define DM_BASE_ARENA_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define ARENA_BLOCK_MIN ((size_t)4096)
#define ARENA_BLOCK_MAX ((size_t)65536)
/* Once an arena holds ARENA_HUGE_AFTER bytes, regular blocks become
 * ARENA_HUGE_BLOCK usable bytes aligned to ARENA_HUGE_PAGE and advised
 * for transparent huge pages (see arena.c). */
#define ARENA_HUGE_AFTER ((size_t)512 << 10)
#define ARENA_HUGE_BLOCK ((size_t)4 << 20)
#define ARENA_HUGE_PAGE ((size_t)2 << 20)

struct arena_block;

/* Fields are private (leading underscore); the struct is visible only so
 * that owners can embed it and the fast path can be inlined. */
typedef struct arena {
    uint8_t *_cur;                /* next free byte in the current block */
    size_t _left;                 /* bytes left in the current block */
    size_t _next_block_len;       /* size of the next regular block */
    struct arena_block *_blocks;  /* every block, newest first */
    size_t _reserved;             /* bytes obtained from dm_malloc */
    size_t _counted;              /* _reserved minus never-touched slack */
    _Atomic size_t _mem_usage;    /* _counted - _left (arena_mem_usage) */
} arena;

/* arena_init -- an empty arena (allocates nothing; cannot fail). */
void arena_init(arena *a);
/* arena_fini -- frees every block; the arena is empty (and reusable)
 * afterwards.  All memory handed out becomes invalid. */
void arena_fini(arena *a);

/* arena_alloc_slow -- internal: the path of arena_alloc_aligned taken
 * when the current block is too small. */
void *arena_alloc_slow(arena *a, size_t n, size_t align);

/*
 * arena_alloc_aligned -- n bytes (n > 0) whose address is a multiple of
 * align (a power of two, at most 64).  Returns NULL when out of memory
 * (the arena is unchanged).  Valid until arena_fini.  REQUIRES: the caller
 * serialises allocations.
 */
static inline void *arena_alloc_aligned(arena *a, size_t n, size_t align)
{
    size_t pad = (size_t)(-(uintptr_t)a->_cur) & (align - 1);
    if (n <= a->_left && pad <= a->_left - n) {
        uint8_t *p = a->_cur + pad;
        a->_cur = p + n;
        a->_left -= n + pad;
        atomic_store_explicit(&a->_mem_usage, a->_counted - a->_left,
                              memory_order_relaxed);
        return p;
    }
    return arena_alloc_slow(a, n, align);
}

/* arena_alloc -- n bytes (n > 0) with no alignment guarantee. */
static inline void *arena_alloc(arena *a, size_t n)
{
    return arena_alloc_aligned(a, n, 1);
}

/*
 * arena_mem_usage -- bytes this arena holds from dm_malloc, minus memory
 * it has never touched (the free tail of the current block and the
 * alignment slack around huge-page blocks): everything handed out plus
 * block headers, alignment padding and the abandoned tails of earlier
 * blocks.  Untouched memory is left out because it is not resident and
 * because counting it would make the figure jump by a whole block at a
 * time, which would trip size limits early.  Thread-safe (a relaxed
 * atomic; another thread may see a slightly older value).
 */
static inline size_t arena_mem_usage(const arena *a)
{
    return atomic_load_explicit((_Atomic size_t *)&a->_mem_usage,
                                memory_order_relaxed);
}

#endif
