/*
 * test_bloom.c -- the SSTable bloom filter and its key hash: probe count,
 * sizes, false-positive rates, no false negatives, validation, and golden
 * hash values (the hash is part of the file format).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "storage/sstable_int.h"

static void test_k_and_len(void **state)
{
    assert_int_equal(sst_bloom_k(1), 1);
    assert_int_equal(sst_bloom_k(2), 1);
    assert_int_equal(sst_bloom_k(5), 3);
    assert_int_equal(sst_bloom_k(10), 7);
    assert_int_equal(sst_bloom_k(20), 14);
    assert_int_equal(sst_bloom_k(43), 30);
    assert_int_equal(sst_bloom_k(100), 30);
    /* At least 64 bits, then n*b bits rounded up to bytes, plus k. */
    assert_int_equal(sst_bloom_len(0, 10), 9);
    assert_int_equal(sst_bloom_len(6, 10), 9);
    assert_int_equal(sst_bloom_len(7, 10), 10);
    assert_int_equal(sst_bloom_len(100, 10), 126);
    assert_int_equal(sst_bloom_len(3, 3), 9);
}

static void test_hash_golden(void **state)
{
    /* Changing these changes every filter on disk: a format change. */
    assert_int_equal(sst_hash64("", 0), UINT64_C(0xb800bd6c02472607));
    assert_int_equal(sst_hash64("a", 1), UINT64_C(0x1f0ac7d1afc4302d));
    assert_int_equal(sst_hash64("abcdefgh", 8), UINT64_C(0xe28e3f207070828b));
    assert_int_equal(sst_hash64("hello world, this is a key", 26),
                     UINT64_C(0x1944d8d4e1a4f11c));
}

static void test_hash_avalanche(void **state)
{
    /* Flipping any one input bit flips about half the output bits. */
    tu_rng r;
    tu_rng_seed(&r, 5);
    uint64_t total = 0, n = 0;
    for (int t = 0; t < 2000; t++) {
        uint8_t k[24];
        size_t len = 1 + tu_randn(&r, sizeof k);
        for (size_t i = 0; i < len; i++)
            k[i] = (uint8_t)tu_rand(&r);
        uint64_t h = sst_hash64(k, len);
        size_t bit = tu_randn(&r, len * 8);
        k[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        total += (uint64_t)__builtin_popcountll(h ^ sst_hash64(k, len));
        n++;
    }
    double avg = (double)total / (double)n;
    print_message("avalanche: %.2f of 64 bits flip on average\n", avg);
    assert_true(avg > 30.0 && avg < 34.0);
}

/* fp_rate -- builds a filter over n keys "key<i>" and returns the rate of
 * "maybe" answers over n other keys; asserts no false negatives. */
static double fp_rate(size_t n, int bpk)
{
    uint64_t *h = malloc(n * sizeof *h);
    assert_non_null(h);
    char k[32];
    for (size_t i = 0; i < n; i++) {
        int kl = snprintf(k, sizeof k, "key%zu", i);
        h[i] = sst_hash64(k, (size_t)kl);
    }
    size_t len = sst_bloom_len(n, bpk);
    uint8_t *f = malloc(len);
    assert_non_null(f);
    sst_bloom_build(h, n, bpk, f);
    const char *why;
    assert_int_equal(sst_bloom_check(f, len, &why), DM_OK);
    for (size_t i = 0; i < n; i++)
        assert_true(sst_bloom_may_contain(f, len, h[i]));
    size_t fp = 0;
    for (size_t i = 0; i < n; i++) {
        int kl = snprintf(k, sizeof k, "other%zu", i);
        fp += sst_bloom_may_contain(f, len, sst_hash64(k, (size_t)kl));
    }
    free(h);
    free(f);
    return (double)fp / (double)n;
}

static void test_false_positive_rate(void **state)
{
    double r10 = fp_rate(100000, 10);
    double r5 = fp_rate(100000, 5);
    double r20 = fp_rate(100000, 20);
    print_message("false positives: 5 bits/key %.3f%%, 10 bits/key %.3f%%, "
                  "20 bits/key %.4f%%\n", 100 * r5, 100 * r10, 100 * r20);
    /* Theory: 0.82% at 10 bits and k = 7; 9.2% at 5, k = 3; 0.0067% at 20. */
    assert_true(r10 > 0.004 && r10 < 0.015);
    assert_true(r5 > 0.06 && r5 < 0.13);
    assert_true(r20 < 0.0005);
    /* Small filters (the 64-bit minimum) still answer sensibly. */
    for (size_t n = 1; n < 50; n++)
        assert_true(fp_rate(n, 10) <= 1.0);
}

static void test_varied_keys_no_false_negatives(void **state)
{
    tu_rng r;
    tu_rng_seed(&r, 77);
    enum { N = 5000 };
    static uint8_t keys[N][48];
    static size_t lens[N];
    uint64_t *h = malloc(N * sizeof *h);
    assert_non_null(h);
    for (size_t i = 0; i < N; i++) {
        lens[i] = tu_randn(&r, 48);
        for (size_t j = 0; j < lens[i]; j++)
            keys[i][j] = (uint8_t)tu_rand(&r);
        h[i] = sst_hash64(keys[i], lens[i]);
    }
    for (int bpk = 1; bpk <= 30; bpk += 7) {
        size_t len = sst_bloom_len(N, bpk);
        uint8_t *f = malloc(len);
        assert_non_null(f);
        sst_bloom_build(h, N, bpk, f);
        assert_int_equal(f[len - 1], sst_bloom_k(bpk));
        for (size_t i = 0; i < N; i++)
            assert_true(sst_bloom_may_contain(f, len, sst_hash64(keys[i], lens[i])));
        free(f);
    }
    free(h);
}

static void test_check(void **state)
{
    const char *why = NULL;
    uint8_t f[10] = { 0 };
    assert_int_equal(sst_bloom_check(f, 1, &why), DM_ECORRUPT);
    f[9] = 0;
    assert_int_equal(sst_bloom_check(f, 10, &why), DM_ECORRUPT);
    f[9] = 31;
    assert_int_equal(sst_bloom_check(f, 10, &why), DM_ECORRUPT);
    f[9] = 30;
    assert_int_equal(sst_bloom_check(f, 10, &why), DM_OK);
    f[1] = 1;
    assert_int_equal(sst_bloom_check(f, 2, &why), DM_OK);
    /* All bits clear: nothing may be present. */
    memset(f, 0, 9);
    f[9] = 7;
    assert_false(sst_bloom_may_contain(f, 10, sst_hash64("x", 1)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_k_and_len),
        cmocka_unit_test(test_hash_golden),
        cmocka_unit_test(test_hash_avalanche),
        cmocka_unit_test(test_false_positive_rate),
        cmocka_unit_test(test_varied_keys_no_false_negatives),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
