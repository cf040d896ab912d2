/* test_memtable.c -- the memtable against a sorted-array model: random
 * keys with many versions, tombstones, gets at many snapshots, iteration
 * in both directions, seeks, insert patterns, reference counting and
 * allocation failure.  The concurrent reader/writer test is
 * test_memtable_concurrent.c. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/buf.h"
#include "storage/ikey.h"
#include "storage/memtable.h"

#define KMAX 24

/* Structural check, defined in memtable.c as a test hook. */
int mt_check(mt_table *t);

/* ---- the model ---- */

typedef struct ment {
    uint8_t key[KMAX];
    size_t klen;
    uint64_t seq;
    int type;
    size_t vlen; /* value bytes are val_byte(seq, j) */
} ment;

static uint8_t val_byte(uint64_t seq, size_t j)
{
    return (uint8_t)(seq * 7 + j * 13 + (j >> 8));
}

static uint8_t *make_value(uint64_t seq, size_t vlen)
{
    uint8_t *v = malloc(vlen ? vlen : 1);
    assert_non_null(v);
    for (size_t j = 0; j < vlen; j++)
        v[j] = val_byte(seq, j);
    return v;
}

/* ikey order on (user key, trailer) */
static int cmp_parts(const uint8_t *a, size_t alen, uint64_t atr,
                     const uint8_t *b, size_t blen, uint64_t btr)
{
    int c = buf_slice_cmp(buf_slice_of(a, alen), buf_slice_of(b, blen));
    if (c)
        return c;
    return atr > btr ? -1 : atr < btr ? 1 : 0;
}

static int ment_cmp(const void *pa, const void *pb)
{
    const ment *a = pa, *b = pb;
    return cmp_parts(a->key, a->klen, ikey_pack(a->seq, a->type), b->key,
                     b->klen, ikey_pack(b->seq, b->type));
}

/* lower_bound -- first model index >= (key, trailer). */
static size_t lower_bound(const ment *m, size_t n, const uint8_t *key,
                          size_t klen, uint64_t trailer)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_parts(m[mid].key, m[mid].klen, ikey_pack(m[mid].seq, m[mid].type),
                      key, klen, trailer) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void expect_entry(iter *it, const ment *e)
{
    assert_true(iter_valid(it));
    buf_slice k = iter_key(it);
    assert_int_equal(k.len, e->klen + IKEY_TRAILER_LEN);
    assert_memory_equal(k.ptr, e->key, e->klen ? e->klen : 0);
    assert_int_equal(ikey_seq(k), e->seq);
    assert_int_equal(ikey_type(k), e->type);
    buf_slice v = iter_value(it);
    assert_int_equal(v.len, e->vlen);
    for (size_t j = 0; j < v.len; j++)
        if (v.ptr[j] != val_byte(e->seq, j))
            fail_msg("value byte %zu of seq %llu differs", j,
                     (unsigned long long)e->seq);
}

static void check_get(mt_table *t, const ment *m, size_t n, const uint8_t *key,
                      size_t klen, uint64_t snap)
{
    uint64_t s = snap > IKEY_MAX_SEQ ? IKEY_MAX_SEQ : snap;
    size_t i = lower_bound(m, n, key, klen, ikey_pack(s, IKEY_SEEK_TYPE));
    buf_slice v = buf_slice_of(NULL, 0);
    enum mt_get_result r = mt_get(t, buf_slice_of(key, klen), snap, &v);
    if (i == n || m[i].klen != klen || (klen && memcmp(m[i].key, key, klen))) {
        assert_int_equal(r, MT_NONE);
        return;
    }
    if (m[i].type == IKEY_DEL) {
        assert_int_equal(r, MT_DELETED);
        return;
    }
    assert_int_equal(r, MT_FOUND);
    assert_int_equal(v.len, m[i].vlen);
    for (size_t j = 0; j < v.len; j++)
        assert_int_equal(v.ptr[j], val_byte(m[i].seq, j));
}

/* check_all -- the table holds exactly the model m[0..n) (sorted). */
static void check_all(mt_table *t, ment *m, size_t n, tu_rng *r)
{
    assert_int_equal(mt_check(t), 0);
    assert_int_equal(mt_count(t), n);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < n; i++) {
        if (m[i].seq < lo) lo = m[i].seq;
        if (m[i].seq > hi) hi = m[i].seq;
    }
    assert_int_equal(mt_first_seq(t), n ? lo : 0);
    assert_int_equal(mt_last_seq(t), n ? hi : 0);

    iter *it = mt_iter_new(t);
    assert_non_null(it);
    /* forward */
    iter_seek_first(it);
    for (size_t i = 0; i < n; i++) {
        expect_entry(it, &m[i]);
        iter_next(it);
    }
    assert_false(iter_valid(it));
    /* backward */
    iter_seek_last(it);
    for (size_t i = n; i-- > 0;) {
        expect_entry(it, &m[i]);
        iter_prev(it);
    }
    assert_false(iter_valid(it));
    assert_int_equal(iter_status(it), 0);

    /* seeks followed by random walks */
    buf target;
    buf_init(&target);
    for (int s = 0; s < 300; s++) {
        uint8_t key[KMAX];
        size_t klen;
        if (n && tu_randn(r, 4)) {
            const ment *e = &m[tu_randn(r, n)];
            klen = e->klen;
            memcpy(key, e->key, klen);
            if (klen && tu_randn(r, 3) == 0)
                klen--; /* a prefix of an existing key */
        } else {
            klen = (size_t)tu_randn(r, 6);
            for (size_t j = 0; j < klen; j++)
                key[j] = (uint8_t)("ab\0\xff"[tu_randn(r, 4)]);
        }
        uint64_t seq = tu_randn(r, hi + 2);
        int type = (int)tu_randn(r, 2);
        size_t pos;
        if (tu_randn(r, 10) == 0 && klen < IKEY_TRAILER_LEN) {
            /* a bare user key: before every version of that key */
            iter_seek(it, buf_slice_of(key, klen));
            pos = lower_bound(m, n, key, klen, UINT64_MAX);
        } else {
            assert_int_equal(ikey_build(&target, buf_slice_of(key, klen), seq, type), 0);
            iter_seek(it, buf_slice_of(target.ptr, target.len));
            pos = lower_bound(m, n, key, klen, ikey_pack(seq, type));
        }
        for (int step = 0; step < 20; step++) {
            if (pos == n || pos == SIZE_MAX) {
                assert_false(iter_valid(it));
                break;
            }
            expect_entry(it, &m[pos]);
            if (tu_randn(r, 2)) {
                iter_next(it);
                pos++;
            } else {
                iter_prev(it);
                pos = pos == 0 ? SIZE_MAX : pos - 1;
            }
        }
    }
    buf_fini(&target);
    iter_free(it);

    /* gets at many snapshots for every model entry's key */
    for (size_t i = 0; i < n; i += 1 + (size_t)tu_randn(r, 3)) {
        const ment *e = &m[i];
        check_get(t, m, n, e->key, e->klen, e->seq);
        check_get(t, m, n, e->key, e->klen, e->seq - 1);
        check_get(t, m, n, e->key, e->klen, e->seq + 1);
        check_get(t, m, n, e->key, e->klen, tu_randn(r, hi + 2));
        check_get(t, m, n, e->key, e->klen, UINT64_MAX);
        check_get(t, m, n, e->key, e->klen, IKEY_MAX_SEQ);
        check_get(t, m, n, e->key, e->klen, IKEY_MAX_SEQ + 1 + e->seq);
        check_get(t, m, n, e->key, e->klen, 0);
        if (e->klen)
            check_get(t, m, n, e->key, e->klen - 1, UINT64_MAX);
    }
    /* absent keys */
    for (int i = 0; i < 200; i++) {
        uint8_t key[KMAX];
        size_t klen = 1 + (size_t)tu_randn(r, KMAX - 1);
        for (size_t j = 0; j < klen; j++)
            key[j] = (uint8_t)tu_randn(r, 256);
        check_get(t, m, n, key, klen, UINT64_MAX);
    }
}

/* add -- inserts e into table and model (unsorted tail). */
static int add(mt_table *t, const ment *e)
{
    uint8_t *v = make_value(e->seq, e->vlen);
    int rc = mt_add(t, e->seq, e->type, buf_slice_of(e->key, e->klen),
                    buf_slice_of(v, e->vlen));
    free(v);
    return rc;
}

/* A pool of user keys with shared prefixes, zero and 0xff bytes and the
 * empty key, so that comparisons hit every branch. */
static void make_pool(tu_rng *r, ment *pool, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t klen = i == 0 ? 0 : (size_t)tu_randn(r, KMAX + 1);
        for (size_t j = 0; j < klen; j++)
            pool[i].key[j] = (uint8_t)("ab\0\xff"[tu_randn(r, 4)]);
        pool[i].klen = klen;
    }
}

static size_t random_vlen(tu_rng *r)
{
    uint64_t k = tu_randn(r, 200);
    if (k == 0)
        return 20000 + (size_t)tu_randn(r, 60000); /* dedicated arena block */
    if (k < 20)
        return 128 + (size_t)tu_randn(r, 400); /* two-byte varint */
    return (size_t)tu_randn(r, 100);
}

static void run_random(uint64_t seed, size_t n, bool is_seq_shuffled)
{
    tu_rng r;
    tu_rng_seed(&r, seed);
    int64_t base = alloc_bytes_in_use();
    enum { POOL = 400 };
    ment *pool = calloc(POOL, sizeof *pool);
    ment *m = calloc(n, sizeof *m);
    uint64_t *seqs = calloc(n, sizeof *seqs);
    assert_non_null(pool);
    assert_non_null(m);
    assert_non_null(seqs);
    make_pool(&r, pool, POOL);
    for (size_t i = 0; i < n; i++)
        seqs[i] = i + 1;
    if (is_seq_shuffled)
        for (size_t i = n; i > 1; i--) {
            size_t j = (size_t)tu_randn(&r, i);
            uint64_t tmp = seqs[i - 1];
            seqs[i - 1] = seqs[j];
            seqs[j] = tmp;
        }

    mt_table *t;
    assert_int_equal(mt_new(&t), 0);
    size_t payload = 0;
    for (size_t i = 0; i < n; i++) {
        ment *e = &m[i];
        *e = pool[tu_randn(&r, POOL)];
        e->seq = seqs[i];
        e->type = tu_randn(&r, 5) == 0 ? IKEY_DEL : IKEY_PUT;
        e->vlen = e->type == IKEY_DEL ? 0 : random_vlen(&r);
        assert_int_equal(add(t, e), 0);
        payload += e->klen + 8 + e->vlen;
        if (i == n / 3) { /* check a partial table too */
            qsort(m, i + 1, sizeof *m, ment_cmp);
            check_all(t, m, i + 1, &r);
        }
    }
    assert_true(mt_mem_usage(t) >= payload);
    qsort(m, n, sizeof *m, ment_cmp);
    check_all(t, m, n, &r);
    mt_unref(t);
    assert_int_equal(alloc_bytes_in_use(), base);
    free(seqs);
    free(m);
    free(pool);
}

static void test_random_in_seq_order(void **state)
{
    (void)state;
    run_random(1, 20000, false);
    run_random(2, 3000, false);
}

static void test_random_shuffled_seqs(void **state)
{
    (void)state;
    run_random(3, 20000, true);
    run_random(4, 50, true);
}

static void test_empty(void **state)
{
    (void)state;
    mt_table *t;
    assert_int_equal(mt_new(&t), 0);
    assert_int_equal(mt_count(t), 0);
    assert_int_equal(mt_first_seq(t), 0);
    assert_int_equal(mt_last_seq(t), 0);
    assert_true(mt_mem_usage(t) > 0);
    buf_slice v;
    assert_int_equal(mt_get(t, buf_slice_of("a", 1), 100, &v), MT_NONE);
    assert_int_equal(mt_get(t, buf_slice_of(NULL, 0), 100, &v), MT_NONE);
    iter *it = mt_iter_new(t);
    assert_non_null(it);
    assert_false(iter_valid(it));
    iter_seek_first(it);
    assert_false(iter_valid(it));
    iter_seek_last(it);
    assert_false(iter_valid(it));
    iter_seek(it, buf_slice_of("abcdefghij", 10));
    assert_false(iter_valid(it));
    iter_seek(it, buf_slice_of(NULL, 0));
    assert_false(iter_valid(it));
    assert_int_equal(iter_status(it), 0);
    iter_free(it);
    mt_unref(t);
    mt_unref(NULL);
}

/* Ascending, descending, one key with many versions, and alternations
 * between them: exercises the splice hint and its fallback. */
static void test_patterns(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 77);
    enum { N = 12000 };
    ment *m = calloc(N, sizeof *m);
    assert_non_null(m);
    mt_table *t;
    assert_int_equal(mt_new(&t), 0);
    size_t n = 0;
    uint64_t seq = 1;
    for (int round = 0; round < 12; round++) {
        int pattern = round % 4;
        for (int i = 0; i < 1000; i++) {
            ment *e = &m[n++];
            int id;
            switch (pattern) {
            case 0: id = round * 1000 + i; break;          /* ascending */
            case 1: id = round * 1000 + 999 - i; break;    /* descending */
            case 2: id = 424242; break;                    /* one key */
            default: id = (int)tu_randn(&r, 20000); break; /* random */
            }
            e->klen = (size_t)snprintf((char *)e->key, KMAX, "k%08d", id);
            e->seq = seq++;
            e->type = (i % 7 == 3) ? IKEY_DEL : IKEY_PUT;
            e->vlen = e->type == IKEY_DEL ? 0 : (size_t)(i % 50);
            assert_int_equal(add(t, e), 0);
        }
        qsort(m, n, sizeof *m, ment_cmp);
    }
    check_all(t, m, n, &r);
    mt_unref(t);
    free(m);
}

/* The iterator keeps the table alive, and sees entries added after it
 * was created. */
static void test_refcount_and_live_iterator(void **state)
{
    (void)state;
    int64_t base = alloc_bytes_in_use();
    mt_table *t;
    assert_int_equal(mt_new(&t), 0);
    assert_int_equal(mt_add(t, 5, IKEY_PUT, buf_slice_of("b", 1),
                            buf_slice_of("vb", 2)), 0);
    iter *it = mt_iter_new(t);
    assert_non_null(it);
    iter_seek_first(it);
    assert_true(iter_valid(it));
    assert_int_equal(mt_add(t, 6, IKEY_PUT, buf_slice_of("c", 1),
                            buf_slice_of("vc", 2)), 0);
    assert_int_equal(mt_add(t, 7, IKEY_PUT, buf_slice_of("a", 1),
                            buf_slice_of("va", 2)), 0);
    mt_ref(t);
    mt_unref(t);
    mt_unref(t); /* the iterator's reference remains */
    iter_next(it);
    assert_true(iter_valid(it));
    assert_memory_equal(iter_value(it).ptr, "vc", 2);
    iter_prev(it);
    iter_prev(it);
    assert_true(iter_valid(it));
    assert_memory_equal(iter_value(it).ptr, "va", 2);
    iter_prev(it);
    assert_false(iter_valid(it));
    iter_free(it); /* frees the table */
    assert_int_equal(alloc_bytes_in_use(), base);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    int64_t base = alloc_bytes_in_use();
    mt_table *t = (mt_table *)1;
    for (int k = 1; k <= 2; k++) {
        alloc_fail_after(k, 0);
        assert_int_equal(mt_new(&t), DM_ENOMEM);
        assert_null(t);
        alloc_fail_after(0, 0);
        assert_int_equal(alloc_bytes_in_use(), base);
    }
    assert_int_equal(mt_new(&t), 0);

    tu_rng r;
    tu_rng_seed(&r, 9);
    enum { N = 4000 };
    ment *m = calloc(N, sizeof *m);
    assert_non_null(m);
    size_t n = 0;
    int n_fail = 0;
    for (uint64_t seq = 1; n < N; seq++) {
        ment e = { .seq = seq, .type = IKEY_PUT };
        e.klen = (size_t)snprintf((char *)e.key, KMAX, "key%06d",
                                  (int)tu_randn(&r, 3000));
        e.vlen = random_vlen(&r);
        /* Now and then, fail every allocation until an insert hits it
         * (inserts mostly allocate from the current arena block). */
        if (tu_randn(&r, 50) == 0)
            alloc_fail_after(1, 1);
        size_t before_usage = mt_mem_usage(t);
        int rc = add(t, &e);
        if (rc == DM_ENOMEM) {
            alloc_fail_after(0, 0);
            /* Table unchanged (check_all below proves the entry is
             * absent: iteration must match the model exactly). */
            n_fail++;
            assert_int_equal(mt_count(t), n);
            assert_int_equal(mt_mem_usage(t), before_usage);
            continue;
        }
        assert_int_equal(rc, 0);
        m[n++] = e;
    }
    alloc_fail_after(0, 0);
    assert_true(n_fail > 10);
    qsort(m, n, sizeof *m, ment_cmp);
    check_all(t, m, n, &r);

    alloc_fail_after(1, 0);
    assert_null(mt_iter_new(t));
    alloc_fail_after(0, 0);
    mt_unref(t);
    assert_int_equal(alloc_bytes_in_use(), base);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_random_in_seq_order),
        cmocka_unit_test(test_random_shuffled_seqs),
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_refcount_and_live_iterator),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
