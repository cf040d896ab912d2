/*
 * test_block_cache.c -- sst_cache: lookup/insert, LRU eviction, pinned
 * entries surviving eviction, replacement, capacity limits, spares,
 * memory accounting, and concurrent use with data integrity checks.
 */
// ctest-labels: concurrency
#include "testutil.h"

#include <pthread.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "storage/sstable_int.h"

static void fill(sst_cache_handle *h, uint64_t key)
{
    uint8_t *p = sst_cache_handle_data(h);
    for (size_t i = 0; i < sst_cache_handle_len(h); i++)
        p[i] = (uint8_t)(key * 131 + i);
}

static bool intact(sst_cache_handle *h, uint64_t key)
{
    uint8_t *p = sst_cache_handle_data(h);
    for (size_t i = 0; i < sst_cache_handle_len(h); i++)
        if (p[i] != (uint8_t)(key * 131 + i))
            return false;
    return true;
}

static void put(sst_cache *c, uint64_t file, uint64_t off, size_t len)
{
    sst_cache_handle *h = sst_cache_handle_new(len);
    assert_non_null(h);
    fill(h, file * 1000003 + off);
    sst_cache_insert(c, file, off, h);
    sst_cache_release(h);
}

static bool present(sst_cache *c, uint64_t file, uint64_t off)
{
    sst_cache_handle *h = sst_cache_lookup(c, file, off);
    if (!h)
        return false;
    assert_true(intact(h, file * 1000003 + off));
    sst_cache_release(h);
    return true;
}

static void test_basic(void **state)
{
    int64_t mem0 = alloc_bytes_in_use();
    sst_cache *c = NULL;
    assert_int_equal(sst_cache_new(1 << 20, &c), DM_OK);
    assert_int_equal(sst_cache_usage(c), 0);
    assert_false(present(c, 1, 0));
    put(c, 1, 0, 100);
    put(c, 1, 4096, 200);
    put(c, 2, 0, 300);
    assert_true(present(c, 1, 0));
    assert_true(present(c, 1, 4096));
    assert_true(present(c, 2, 0));
    assert_false(present(c, 2, 4096));
    assert_false(present(c, 3, 0));
    assert_int_equal(sst_cache_entries(c), 3);
    uint64_t hits, misses; /* each present() is one lookup; put() makes none */
    sst_cache_lookups(c, &hits, &misses);
    assert_int_equal(hits, 3);
    assert_int_equal(misses, 3);
    size_t u = sst_cache_usage(c);
    assert_true(u >= 600 && u < 600 + 3 * 256);
    sst_cache_free(c);
    sst_cache_free(NULL);
    assert_int_equal(alloc_bytes_in_use(), mem0);

    /* A standalone handle is freed by its release. */
    sst_cache_handle *h = sst_cache_handle_new(50);
    sst_cache_handle_set_len(h, 10);
    assert_int_equal(sst_cache_handle_len(h), 10);
    sst_cache_handle_set_len(h, 60); /* larger than allocated: ignored */
    assert_int_equal(sst_cache_handle_len(h), 10);
    sst_cache_release(h);
    sst_cache_release(NULL);
    assert_int_equal(alloc_bytes_in_use(), mem0);
}

static void test_lru_eviction(void **state)
{
    /* 16 shards of 100 KiB; 1 KiB entries.  A hot set touched constantly
     * survives a flood of cold entries; old cold entries go. */
    sst_cache *c = NULL;
    size_t cap = 16 * 100 * 1024;
    assert_int_equal(sst_cache_new(cap, &c), DM_OK);
    for (uint64_t k = 0; k < 48; k++)
        put(c, 7, k * 4096, 1024);
    for (uint64_t k = 0; k < 20000; k++) {
        put(c, 8, k * 4096, 1024);
        if (k % 10 == 0)
            for (uint64_t j = 0; j < 48; j++)
                assert_true(present(c, 7, j * 4096));
        assert_true(sst_cache_usage(c) <= cap);
    }
    for (uint64_t j = 0; j < 48; j++)
        assert_true(present(c, 7, j * 4096));
    size_t old = 0;
    for (uint64_t k = 0; k < 1000; k++)
        old += present(c, 8, k * 4096);
    assert_int_equal(old, 0);
    assert_true(present(c, 8, 19999 * 4096));
    assert_true(sst_cache_entries(c) < cap / 1024);
    sst_cache_free(c);
}

static void test_pinned_survives(void **state)
{
    sst_cache *c = NULL;
    assert_int_equal(sst_cache_new(64 * 1024, &c), DM_OK);
    sst_cache_handle *h = sst_cache_handle_new(2000);
    fill(h, 42);
    sst_cache_insert(c, 1, 42, h);
    /* Flood far past the capacity while h is pinned. */
    for (uint64_t k = 0; k < 2000; k++)
        put(c, 2, k, 1000);
    assert_true(intact(h, 42));
    sst_cache_handle *h2 = sst_cache_lookup(c, 1, 42);
    assert_true(h2 == h);
    sst_cache_release(h2);
    sst_cache_release(h);
    /* Replacement: the old copy stays readable for its holder. */
    sst_cache_handle *a = sst_cache_handle_new(100);
    fill(a, 5);
    sst_cache_insert(c, 3, 0, a);
    sst_cache_handle *b = sst_cache_handle_new(100);
    fill(b, 5);
    sst_cache_insert(c, 3, 0, b);
    sst_cache_handle *l = sst_cache_lookup(c, 3, 0);
    assert_true(l == b);
    assert_true(intact(a, 5));
    sst_cache_release(l);
    sst_cache_release(a); /* freed now: no longer in the cache */
    sst_cache_release(b);
    /* Replacing an unused entry drops it at once. */
    put(c, 4, 0, 10);
    put(c, 4, 0, 10);
    assert_true(present(c, 4, 0));
    sst_cache_free(c);
}

static void test_tiny_capacity(void **state)
{
    int64_t mem0 = alloc_bytes_in_use();
    sst_cache *c = NULL;
    assert_int_equal(sst_cache_new(0, &c), DM_OK);
    sst_cache_handle *h = sst_cache_handle_new(4096);
    fill(h, 1 * 1000003 + 1);
    sst_cache_insert(c, 1, 1, h);
    assert_true(present(c, 1, 1)); /* pinned by h */
    sst_cache_release(h);
    assert_false(present(c, 1, 1)); /* evicted on release */
    assert_int_equal(sst_cache_usage(c), 0);
    sst_cache_free(c);

    /* An entry larger than a shard's share is evicted once unused. */
    assert_int_equal(sst_cache_new(16 * 1024, &c), DM_OK);
    put(c, 1, 0, 8192);
    assert_false(present(c, 1, 0));
    put(c, 1, 1, 100);
    assert_true(present(c, 1, 1));
    sst_cache_free(c);
    assert_int_equal(alloc_bytes_in_use(), mem0);
}

/* An entry that leaves the cache is kept as a spare, and the next miss
 * in its shard whose block fits is made from it: a busy cache neither
 * allocates nor frees per miss. */
static void test_spares(void **state)
{
    int64_t mem0 = alloc_bytes_in_use();
    sst_cache *c = NULL;
    assert_int_equal(sst_cache_new(0, &c), DM_OK); /* every entry leaves on release */
    sst_cache_handle *h = sst_cache_handle_new_for(c, 9, 4096, 3000);
    assert_non_null(h);
    assert_int_equal(sst_cache_handle_len(h), 3000);
    uint8_t *mem = sst_cache_handle_data(h);
    fill(h, 9 * 1000003 + 4096);
    sst_cache_insert(c, 9, 4096, h);
    sst_cache_release(h); /* evicted: now a spare of its shard */
    assert_false(present(c, 9, 4096));
    assert_int_equal(sst_cache_usage(c), 0);

    /* The same key is in the same shard: a block of about the same size
     * reuses the memory; its length is the new one. */
    sst_cache_handle *g = sst_cache_handle_new_for(c, 9, 4096, 2900);
    assert_true(sst_cache_handle_data(g) == mem);
    assert_int_equal(sst_cache_handle_len(g), 2900);
    fill(g, 9 * 1000003 + 4096);
    sst_cache_insert(c, 9, 4096, g);
    assert_true(present(c, 9, 4096)); /* pinned by g */
    sst_cache_release(g);

    /* A block much bigger or much smaller than every spare gets its own. */
    sst_cache_handle *big = sst_cache_handle_new_for(c, 9, 4096, 30000);
    assert_true(sst_cache_handle_data(big) != mem);
    sst_cache_release(big); /* standalone: freed */
    sst_cache_handle *small = sst_cache_handle_new_for(c, 9, 4096, 100);
    assert_true(sst_cache_handle_data(small) != mem);
    sst_cache_release(small);

    /* Without a cache it is sst_cache_handle_new. */
    sst_cache_handle *alone = sst_cache_handle_new_for(NULL, 9, 4096, 10);
    assert_int_equal(sst_cache_handle_len(alone), 10);
    sst_cache_release(alone);

    /* Many evictions keep a bounded number of spares; freeing the cache
     * frees them. */
    for (uint64_t k = 0; k < 5000; k++) {
        sst_cache_handle *e = sst_cache_handle_new_for(c, 10, k * 4096, 500 + k % 700);
        fill(e, 10 * 1000003 + k * 4096);
        sst_cache_insert(c, 10, k * 4096, e);
        sst_cache_release(e);
    }
    assert_true(alloc_bytes_in_use() - mem0 < 16 * 8 * 2048 + 64 * 1024);
    sst_cache_free(c);
    assert_int_equal(alloc_bytes_in_use(), mem0);
}

static void test_oom(void **state)
{
    for (int64_t k = 1; k < 40; k++) {
        sst_cache *c = NULL;
        alloc_fail_after(k, 0);
        int rc = sst_cache_new(1 << 20, &c);
        alloc_fail_after(0, 0);
        assert_true(rc == DM_OK || rc == DM_ENOMEM);
        if (rc == DM_ENOMEM)
            assert_null(c);
        sst_cache_free(c);
    }
}

typedef struct worker {
    sst_cache *c;
    uint64_t seed;
    int errors;
} worker;

static void *run(void *arg)
{
    worker *w = arg;
    tu_rng r;
    tu_rng_seed(&r, w->seed);
    sst_cache_handle *held[8] = { 0 };
    uint64_t held_key[8] = { 0 };
    for (int i = 0; i < 100000; i++) {
        uint64_t file = 1 + tu_randn(&r, 3), off = tu_randn(&r, 700) * 4096;
        uint64_t key = file * 1000003 + off;
        sst_cache_handle *h = sst_cache_lookup(w->c, file, off);
        if (!h) {
            /* Odd misses are made from the cache's spares, which other
             * threads' evictions keep refilling. */
            size_t len = 64 + (size_t)(key % 1500);
            h = i % 2 ? sst_cache_handle_new_for(w->c, file, off, len) : sst_cache_handle_new(len);
            if (!h) {
                w->errors++;
                continue;
            }
            fill(h, key);
            sst_cache_insert(w->c, file, off, h);
        }
        if (!intact(h, key))
            w->errors++;
        /* Keep a few handles pinned for a while to mix in-use entries with
         * evictions and replacements. */
        int slot = (int)tu_randn(&r, 8);
        if (held[slot] && !intact(held[slot], held_key[slot]))
            w->errors++;
        sst_cache_release(held[slot]);
        held[slot] = h;
        held_key[slot] = key;
    }
    for (int s = 0; s < 8; s++)
        sst_cache_release(held[s]);
    return NULL;
}

static void test_concurrent(void **state)
{
    int64_t mem0 = alloc_bytes_in_use();
    sst_cache *c = NULL;
    assert_int_equal(sst_cache_new(256 * 1024, &c), DM_OK);
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){ c, 10 + (uint64_t)i, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, run, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].errors, 0);
    }
    assert_true(sst_cache_usage(c) <= 256 * 1024);
    sst_cache_free(c);
    assert_int_equal(alloc_bytes_in_use(), mem0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_pinned_survives),
        cmocka_unit_test(test_tiny_capacity),
        cmocka_unit_test(test_spares),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
