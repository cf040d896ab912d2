/*
 * arena.c -- block management for the bump allocator (arena.h).
 *
 * Design: the arena keeps a singly linked list of blocks, newest first;
 * each block starts with a small header (the link and the block's size)
 * followed by its payload.  The fast path (in arena.h) bumps a pointer
 * inside the current block; this file handles the case where the current
 * block cannot satisfy a request:
 *
 *   - a request larger than a quarter of the next regular block size gets
 *     a dedicated block of exactly the size it needs.  The current block
 *     stays current, so its free tail is still used by later small
 *     requests (the LevelDB arena's rule, which bounds waste to 25%);
 *   - otherwise a new regular block becomes current, and the tail of the
 *     old one is abandoned.  Regular blocks double from ARENA_BLOCK_MIN to
 *     ARENA_BLOCK_MAX, so that a small arena stays small;
 *   - once the arena holds ARENA_HUGE_AFTER bytes, regular blocks are
 *     ARENA_HUGE_BLOCK bytes and their 2 MiB-aligned interior is advised
 *     for transparent huge pages (madvise MADV_HUGEPAGE; a hint that is
 *     ignored where unsupported).  A huge block is allocated with
 *     ARENA_HUGE_PAGE bytes of slack so that its usable part can start
 *     on a huge-page boundary and be backed by huge pages entirely; the
 *     slack before and after it is never touched, so it costs address
 *     space, not memory.  Why: a memtable is filled through
 *     first-touch page faults (the allocator hands freed memory back to
 *     the kernel, so every new memtable faults again) and is searched by
 *     random accesses.  One fault and one TLB entry per 2 MiB instead of
 *     per 4 KiB made inserts into 4 MiB memtables ~15x faster and into
 *     64 MiB ones ~1.3-2x faster on our (virtualised) benchmark machine.
 *     Arenas under ARENA_HUGE_AFTER never reserve a huge block; the cost
 *     for bigger ones is up to one huge page of resident memory beyond
 *     what is used (arena_mem_usage does not count the untouched tail).
 *
 * Invariants: _cur/_left describe the free tail of the current regular
 * block (NULL/0 before the first one); _reserved equals the sum of the
 * sizes passed to dm_malloc for the blocks on the list; _counted equals
 * _reserved minus ARENA_HUGE_PAGE per huge block (the untouched slack);
 * after every successful allocation _mem_usage == _counted - _left.
 *
 * madvise is a memory hint, not file I/O, so it does not go through the
 * VFS; nothing depends on whether it succeeds.
 *
 * Locking: none.  The owner serialises allocation; _mem_usage is a copy
 * of _counted - _left kept in an atomic so that other threads may read it
 * while the owner allocates.
 */
#include "base/arena.h"

#include <assert.h>
#include <stdalign.h>
#include <sys/mman.h>

#include "base/alloc.h"

struct arena_block {
    struct arena_block *next;
    size_t len; /* bytes obtained from dm_malloc, header included */
};

/* Payload starts after the header rounded up to max_align_t, so that a
 * block's first allocation needs no padding for any ordinary alignment. */
#define HDR_LEN                                                                \
    ((sizeof(struct arena_block) + alignof(max_align_t) - 1) &                 \
     ~(alignof(max_align_t) - 1))

void arena_init(arena *a)
{
    a->_cur = NULL;
    a->_left = 0;
    a->_next_block_len = ARENA_BLOCK_MIN;
    a->_blocks = NULL;
    a->_reserved = 0;
    a->_counted = 0;
    atomic_init(&a->_mem_usage, 0);
}

void arena_fini(arena *a)
{
    struct arena_block *b = a->_blocks;
    while (b) {
        struct arena_block *next = b->next;
        dm_free(b);
        b = next;
    }
    arena_init(a);
}

/* new_block -- a block with `payload` usable bytes, linked first on the
 * list and counted in _reserved; NULL when out of memory. */
static struct arena_block *new_block(arena *a, size_t payload)
{
    if (payload > SIZE_MAX - HDR_LEN)
        return NULL;
    size_t len = HDR_LEN + payload;
    struct arena_block *b = dm_malloc(len);
    if (!b)
        return NULL;
    b->len = len;
    b->next = a->_blocks;
    a->_blocks = b;
    a->_reserved += len;
    a->_counted += len;
    return b;
}

/* advise_huge -- asks the kernel to back [p, p+len) (huge-page aligned)
 * with transparent huge pages.  Only a hint: failure (no THP support, THP
 * disabled) changes nothing but speed, so it is ignored. */
static void advise_huge(uint8_t *p, size_t len)
{
#ifdef MADV_HUGEPAGE
    (void)madvise(p, len, MADV_HUGEPAGE);
#else
    (void)p;
    (void)len;
#endif
}

void *arena_alloc_slow(arena *a, size_t n, size_t align)
{
    assert(n > 0 && align > 0 && (align & (align - 1)) == 0 && align <= 64);
    /* Worst-case padding: the payload start is aligned to max_align_t, so
     * only alignments beyond that need slack. */
    size_t slack = align > alignof(max_align_t) ? align - 1 : 0;
    if (n > SIZE_MAX - slack)
        return NULL;
    size_t need = n + slack;

    if (need > a->_next_block_len / 4) {
        struct arena_block *b = new_block(a, need);
        if (!b)
            return NULL;
        uint8_t *p = (uint8_t *)b + HDR_LEN;
        p += (size_t)(-(uintptr_t)p) & (align - 1);
        atomic_store_explicit(&a->_mem_usage, a->_counted - a->_left,
                              memory_order_relaxed);
        return p;
    }

    /* The old block's tail is abandoned: it stays counted but leaves
     * _left, so the usage now includes it. */
    if (a->_reserved >= ARENA_HUGE_AFTER) {
        struct arena_block *b =
            new_block(a, ARENA_HUGE_BLOCK + ARENA_HUGE_PAGE);
        if (!b)
            return NULL;
        uint8_t *payload = (uint8_t *)b + HDR_LEN;
        uint8_t *start = payload + ((size_t)(-(uintptr_t)payload) &
                                    (ARENA_HUGE_PAGE - 1));
        a->_counted -= ARENA_HUGE_PAGE; /* slack around [start, +BLOCK) */
        a->_cur = start;
        a->_left = ARENA_HUGE_BLOCK;
        advise_huge(start, ARENA_HUGE_BLOCK);
    } else {
        struct arena_block *b = new_block(a, a->_next_block_len);
        if (!b)
            return NULL;
        a->_cur = (uint8_t *)b + HDR_LEN;
        a->_left = a->_next_block_len;
        if (a->_next_block_len < ARENA_BLOCK_MAX)
            a->_next_block_len *= 2;
    }
    /* Cannot recurse again: need <= ARENA_BLOCK_MIN/4 fits a new block. */
    return arena_alloc_aligned(a, n, align);
}
