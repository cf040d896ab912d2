/* test_arena.c -- the bump allocator: contents survive, alignment holds,
 * accounting is consistent with dm_malloc, blocks grow (to huge-page
 * blocks for big arenas), big requests get their own block, and
 * allocation failure leaves the arena unchanged and usable. */
#include "testutil.h"

#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/arena.h"

typedef struct rec {
    uint8_t *p;
    size_t n;
    uint8_t fill;
} rec;

static void test_contents_and_alignment(void **state)
{
    (void)state;
    int64_t base = alloc_bytes_in_use();
    arena a;
    arena_init(&a);
    assert_int_equal(arena_mem_usage(&a), 0);

    enum { N = 20000 };
    static rec recs[N];
    tu_rng r;
    tu_rng_seed(&r, 42);
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        size_t n;
        uint64_t kind = tu_randn(&r, 100);
        if (kind < 90)
            n = 1 + (size_t)tu_randn(&r, 200);
        else if (kind < 99)
            n = 1 + (size_t)tu_randn(&r, 5000);
        else
            n = 1 + (size_t)tu_randn(&r, 100000);
        size_t align = (size_t)1 << tu_randn(&r, 7); /* 1..64 */
        uint8_t *p = arena_alloc_aligned(&a, n, align);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % align, 0);
        recs[i].p = p;
        recs[i].n = n;
        recs[i].fill = (uint8_t)(i * 31 + 7);
        memset(p, recs[i].fill, n);
        total += n;
        /* Accounting: usage covers everything handed out, and differs
         * from what the arena holds from dm_malloc only by the unused
         * tail of the current block. */
        size_t held = (size_t)(alloc_bytes_in_use() - base);
        assert_true(arena_mem_usage(&a) >= total);
        assert_true(arena_mem_usage(&a) <= held);
        assert_true(held - arena_mem_usage(&a) <=
                    ARENA_HUGE_BLOCK +
                        ARENA_HUGE_PAGE * (held / ARENA_HUGE_BLOCK + 1));
    }
    /* Waste stays bounded (LevelDB's rule: at most ~25% plus headers). */
    assert_true(arena_mem_usage(&a) < total + total / 3 + 65536);
    /* No allocation overlapped another. */
    for (int i = 0; i < N; i++)
        for (size_t j = 0; j < recs[i].n; j++)
            if (recs[i].p[j] != recs[i].fill)
                fail_msg("allocation %d byte %zu overwritten", i, j);

    arena_fini(&a);
    assert_int_equal(arena_mem_usage(&a), 0);
    assert_int_equal(alloc_bytes_in_use(), base);
    /* Reusable after fini. */
    assert_non_null(arena_alloc(&a, 10));
    arena_fini(&a);
    assert_int_equal(alloc_bytes_in_use(), base);
}

static void test_block_growth(void **state)
{
    (void)state;
    int64_t base = alloc_bytes_in_use();
    arena a;
    arena_init(&a);
    /* A small arena stays small. */
    assert_non_null(arena_alloc(&a, 16));
    assert_true(alloc_bytes_in_use() - base <= (int64_t)ARENA_BLOCK_MIN + 64);
    assert_true(arena_mem_usage(&a) >= 16 && arena_mem_usage(&a) <= 64);
    /* Many small allocations: blocks grow to ARENA_BLOCK_MAX, then to
     * huge-page blocks once the arena is big. */
    int64_t max_step = 0;
    for (int i = 0; i < 100000; i++) {
        int64_t before = alloc_bytes_in_use();
        size_t usage_before = arena_mem_usage(&a);
        uint8_t *p = arena_alloc_aligned(&a, 104, 8);
        assert_non_null(p);
        int64_t step = alloc_bytes_in_use() - before;
        if (step > max_step)
            max_step = step;
        /* A huge block's usable part starts on a huge-page boundary. */
        if (step >= (int64_t)ARENA_HUGE_BLOCK)
            assert_int_equal((uintptr_t)p % ARENA_HUGE_PAGE, 0);
        if (before - base + (int64_t)ARENA_BLOCK_MAX < (int64_t)ARENA_HUGE_AFTER)
            assert_true(step <= (int64_t)ARENA_BLOCK_MAX + 64);
        /* usage moves smoothly: this allocation, padding, a block header
         * and at most one abandoned tail */
        assert_true(arena_mem_usage(&a) - usage_before <= 104 + 7 + 64 + 104);
    }
    assert_true(max_step >= (int64_t)(ARENA_HUGE_BLOCK + ARENA_HUGE_PAGE));
    assert_true(max_step <= (int64_t)(ARENA_HUGE_BLOCK + ARENA_HUGE_PAGE) + 64);
    size_t used = arena_mem_usage(&a);
    assert_true(used >= 104u * 100000u);
    /* Waste: one partial allocation and a header per block. */
    assert_true(used < 104u * 100000u + 104u * 100000u / 100);
    arena_fini(&a);
    assert_int_equal(alloc_bytes_in_use(), base);

    /* A request too big for the current block gets a dedicated block, and
     * the current block keeps serving small requests contiguously. */
    uint8_t *s1 = arena_alloc(&a, 8);
    int64_t held = alloc_bytes_in_use();
    uint8_t *big = arena_alloc(&a, 100000);
    assert_non_null(big);
    assert_true(alloc_bytes_in_use() - held >= 100000);
    assert_true(alloc_bytes_in_use() - held <= 100000 + 64);
    uint8_t *s2 = arena_alloc(&a, 8);
    memset(big, 0xAB, 100000);
    assert_ptr_equal(s2, s1 + 8);
    arena_fini(&a);
    assert_int_equal(alloc_bytes_in_use(), base);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    arena a;
    arena_init(&a);
    /* First allocation fails: nothing held. */
    alloc_fail_after(1, 0);
    assert_null(arena_alloc(&a, 10));
    assert_int_equal(arena_mem_usage(&a), 0);
    uint8_t *p = arena_alloc(&a, 10);
    assert_non_null(p);
    memset(p, 1, 10);
    size_t before = arena_mem_usage(&a);
    /* Failure of a dedicated block. */
    alloc_fail_after(1, 0);
    assert_null(arena_alloc(&a, 100000));
    assert_int_equal(arena_mem_usage(&a), before);
    /* Failure of a new regular block: under persistent failure the
     * current block is used up, then allocations fail without changing
     * the usage. */
    alloc_fail_after(1, 1);
    int n_null = 0;
    size_t last = arena_mem_usage(&a);
    for (int i = 0; i < 1000; i++) {
        if (!arena_alloc(&a, 100)) {
            n_null++;
            assert_int_equal(arena_mem_usage(&a), last);
        }
        last = arena_mem_usage(&a);
    }
    alloc_fail_after(0, 0);
    assert_true(n_null > 900);
    assert_non_null(arena_alloc(&a, 100));
    assert_int_equal(p[9], 1);
    arena_fini(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contents_and_alignment),
        cmocka_unit_test(test_block_growth),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
