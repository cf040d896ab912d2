/* test_iter.c -- the empty iterator and the merging iterator, checked
 * against a model (all children's entries sorted by key, then child
 * index, then position): random children with duplicate keys inside and
 * across children, empty children, full scans both ways, random walks
 * with direction changes and seeks, erroring children, allocation
 * failure, and a merge of real memtables under ikey_cmp. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "storage/ikey.h"
#include "storage/iter.h"
#include "storage/memtable.h"

/* ---- an array iterator over sorted (key, value) entries ---- */

typedef struct kv {
    uint8_t key[4];
    size_t klen;
    uint8_t val[8]; /* child index and position, u32 each */
} kv;

typedef struct arr_iter {
    iter base;
    const kv *e;      /* borrowed, sorted by key, duplicates allowed */
    size_t n;
    size_t pos;       /* n when not valid */
    size_t fail_at;   /* moving onto this position fails; SIZE_MAX: never */
    int status;       /* sticky once an error happened */
} arr_iter;

static int bytes_cmp(buf_slice a, buf_slice b) { return buf_slice_cmp(a, b); }

static buf_slice kv_key(const kv *e) { return buf_slice_of(e->key, e->klen); }

static void arr_landed(arr_iter *a)
{
    if (a->status != DM_OK)
        a->pos = a->n;
    else if (a->pos < a->n && a->pos == a->fail_at) {
        a->status = DM_EIO;
        a->pos = a->n;
    }
}

static bool arr_valid(iter *it)
{
    arr_iter *a = (arr_iter *)it;
    return a->pos < a->n;
}
static void arr_seek_first(iter *it)
{
    arr_iter *a = (arr_iter *)it;
    a->pos = 0;
    arr_landed(a);
}
static void arr_seek_last(iter *it)
{
    arr_iter *a = (arr_iter *)it;
    a->pos = a->n ? a->n - 1 : 0;
    arr_landed(a);
}
static void arr_seek(iter *it, buf_slice t)
{
    arr_iter *a = (arr_iter *)it;
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (buf_slice_cmp(kv_key(&a->e[mid]), t) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    a->pos = lo;
    arr_landed(a);
}
static void arr_next(iter *it)
{
    arr_iter *a = (arr_iter *)it;
    assert_true(a->pos < a->n);
    a->pos++;
    arr_landed(a);
}
static void arr_prev(iter *it)
{
    arr_iter *a = (arr_iter *)it;
    assert_true(a->pos < a->n);
    a->pos = a->pos == 0 ? a->n : a->pos - 1;
    arr_landed(a);
}
static buf_slice arr_key(iter *it)
{
    arr_iter *a = (arr_iter *)it;
    assert_true(a->pos < a->n);
    return kv_key(&a->e[a->pos]);
}
static buf_slice arr_value(iter *it)
{
    arr_iter *a = (arr_iter *)it;
    assert_true(a->pos < a->n);
    return buf_slice_of(a->e[a->pos].val, 8);
}
static int arr_status(iter *it) { return ((arr_iter *)it)->status; }
static void arr_free(iter *it) { dm_free(it); }

static const iter_ops arr_ops = {
    arr_valid, arr_seek_first, arr_seek_last, arr_seek, arr_next,
    arr_prev, arr_key, arr_value, arr_status, arr_free,
};

static iter *arr_new(const kv *e, size_t n, size_t fail_at)
{
    arr_iter *a = dm_malloc(sizeof *a);
    assert_non_null(a);
    a->base.ops = &arr_ops;
    a->e = e;
    a->n = n;
    a->pos = n;
    a->fail_at = fail_at;
    a->status = DM_OK;
    return &a->base;
}

/* ---- the model ---- */

#define MAX_CHILDREN 16
#define MAX_PER_CHILD 80

typedef struct world {
    size_t n_children;
    kv e[MAX_CHILDREN][MAX_PER_CHILD];
    size_t n[MAX_CHILDREN];
    bool is_empty_iter[MAX_CHILDREN]; /* child is iter_empty_new(DM_OK) */
    kv *model;                        /* merged order */
    size_t n_model;
} world;

static int kv_cmp(const void *pa, const void *pb)
{
    const kv *a = pa, *b = pb;
    int c = buf_slice_cmp(kv_key(a), kv_key(b));
    if (c)
        return c;
    /* child index, then position: the value bytes encode both (LE u32s,
     * compared numerically) */
    uint32_t ca = dec_u32(a->val), cb = dec_u32(b->val);
    if (ca != cb)
        return ca < cb ? -1 : 1;
    uint32_t pa2 = dec_u32(a->val + 4), pb2 = dec_u32(b->val + 4);
    return pa2 < pb2 ? -1 : pa2 > pb2;
}

static void random_key(tu_rng *r, kv *e)
{
    e->klen = 1 + (size_t)tu_randn(r, 3);
    for (size_t j = 0; j < e->klen; j++)
        e->key[j] = (uint8_t)('a' + tu_randn(r, 4));
}

static void make_world(world *w, tu_rng *r, size_t n_children)
{
    memset(w, 0, sizeof *w);
    w->n_children = n_children;
    size_t total = 0;
    for (size_t c = 0; c < n_children; c++) {
        uint64_t kind = tu_randn(r, 10);
        size_t n = kind == 0 ? 0 : kind < 3 ? 1 + (size_t)tu_randn(r, 3)
                                            : (size_t)tu_randn(r, MAX_PER_CHILD + 1);
        w->is_empty_iter[c] = n == 0 && tu_randn(r, 2);
        for (size_t i = 0; i < n; i++)
            random_key(r, &w->e[c][i]);
        qsort(w->e[c], n, sizeof(kv), kv_cmp); /* by key (vals all 0) */
        for (size_t i = 0; i < n; i++) {
            enc_u32(w->e[c][i].val, (uint32_t)c);
            enc_u32(w->e[c][i].val + 4, (uint32_t)i);
        }
        w->n[c] = n;
        total += n;
    }
    w->model = calloc(total ? total : 1, sizeof(kv));
    assert_non_null(w->model);
    w->n_model = 0;
    for (size_t c = 0; c < n_children; c++)
        for (size_t i = 0; i < w->n[c]; i++)
            w->model[w->n_model++] = w->e[c][i];
    qsort(w->model, w->n_model, sizeof(kv), kv_cmp);
}

/* merge_world -- the merged iterator; child `fail_child` (if < n) fails
 * when it moves onto position fail_at. */
static iter *merge_world(world *w, size_t fail_child, size_t fail_at)
{
    iter *ch[MAX_CHILDREN];
    for (size_t c = 0; c < w->n_children; c++)
        ch[c] = w->is_empty_iter[c]
                    ? iter_empty_new(DM_OK)
                    : arr_new(w->e[c], w->n[c], c == fail_child ? fail_at : SIZE_MAX);
    iter *m = iter_merge_new(bytes_cmp, ch, w->n_children);
    assert_non_null(m);
    return m;
}

static void expect_at(iter *m, const world *w, size_t pos)
{
    if (pos >= w->n_model) {
        assert_false(iter_valid(m));
        assert_int_equal(iter_status(m), DM_OK);
        return;
    }
    assert_true(iter_valid(m));
    buf_slice k = iter_key(m), v = iter_value(m);
    assert_int_equal(buf_slice_cmp(k, kv_key(&w->model[pos])), 0);
    assert_int_equal(v.len, 8);
    assert_memory_equal(v.ptr, w->model[pos].val, 8);
}

static size_t model_seek(const world *w, buf_slice t)
{
    size_t i = 0;
    while (i < w->n_model && buf_slice_cmp(kv_key(&w->model[i]), t) < 0)
        i++;
    return i;
}

#define OFF SIZE_MAX /* model position "not valid" */

static void random_walk(iter *m, const world *w, tu_rng *r, int steps)
{
    size_t pos = OFF;
    for (int s = 0; s < steps; s++) {
        uint64_t op = tu_randn(r, 20);
        bool is_valid = pos != OFF && pos < w->n_model;
        if (op < 8 && is_valid) {
            iter_next(m);
            pos++;
        } else if (op < 16 && is_valid) {
            iter_prev(m);
            pos = pos == 0 ? OFF : pos - 1;
        } else if (op == 16) {
            iter_seek_first(m);
            pos = 0;
        } else if (op == 17) {
            iter_seek_last(m);
            pos = w->n_model ? w->n_model - 1 : OFF;
        } else {
            kv t;
            random_key(r, &t);
            if (tu_randn(r, 4) == 0)
                t.klen = 0;
            iter_seek(m, kv_key(&t));
            pos = model_seek(w, kv_key(&t));
        }
        expect_at(m, w, pos);
    }
}

/* ---- tests ---- */

static void test_empty_iter(void **state)
{
    (void)state;
    iter *it = iter_empty_new(DM_OK);
    assert_non_null(it);
    assert_false(iter_valid(it));
    iter_seek_first(it);
    iter_seek_last(it);
    iter_seek(it, buf_slice_of("x", 1));
    assert_false(iter_valid(it));
    assert_int_equal(iter_status(it), DM_OK);
    iter_free(it);
    it = iter_empty_new(DM_ECORRUPT);
    assert_non_null(it);
    iter_seek_first(it);
    assert_false(iter_valid(it));
    assert_int_equal(iter_status(it), DM_ECORRUPT);
    iter_free(it);
    iter_free(NULL);
    alloc_fail_after(1, 0);
    assert_null(iter_empty_new(DM_OK));
    alloc_fail_after(0, 0);
}

static void test_small_merges(void **state)
{
    (void)state;
    /* no children: empty */
    iter *m = iter_merge_new(bytes_cmp, NULL, 0);
    assert_non_null(m);
    iter_seek_first(m);
    assert_false(iter_valid(m));
    assert_int_equal(iter_status(m), DM_OK);
    iter_free(m);

    /* hand-checked: duplicates across children, lower index first going
     * forward, higher index first going backward */
    static kv a[2], b[2];
    memcpy(a[0].key, "k1", 2); a[0].klen = 2; a[0].val[0] = 'A';
    memcpy(a[1].key, "k2", 2); a[1].klen = 2; a[1].val[0] = 'B';
    memcpy(b[0].key, "k1", 2); b[0].klen = 2; b[0].val[0] = 'C';
    memcpy(b[1].key, "k3", 2); b[1].klen = 2; b[1].val[0] = 'D';
    iter *ch[2] = { arr_new(a, 2, SIZE_MAX), arr_new(b, 2, SIZE_MAX) };
    m = iter_merge_new(bytes_cmp, ch, 2);
    assert_non_null(m);
    const char *fwd = "ACBD";
    iter_seek_first(m);
    for (int i = 0; i < 4; i++, iter_next(m))
        assert_int_equal(iter_value(m).ptr[0], fwd[i]);
    assert_false(iter_valid(m));
    iter_seek_last(m);
    for (int i = 3; i >= 0; i--, iter_prev(m))
        assert_int_equal(iter_value(m).ptr[0], fwd[i]);
    assert_false(iter_valid(m));
    /* direction change on a duplicate: A C (prev) A (next) C B */
    iter_seek_first(m);
    iter_next(m);
    assert_int_equal(iter_value(m).ptr[0], 'C');
    iter_prev(m);
    assert_int_equal(iter_value(m).ptr[0], 'A');
    iter_next(m);
    assert_int_equal(iter_value(m).ptr[0], 'C');
    iter_next(m);
    assert_int_equal(iter_value(m).ptr[0], 'B');
    iter_prev(m);
    assert_int_equal(iter_value(m).ptr[0], 'C');
    iter_free(m);

    /* one child: passes through */
    ch[0] = arr_new(a, 2, SIZE_MAX);
    m = iter_merge_new(bytes_cmp, ch, 1);
    iter_seek_last(m);
    assert_int_equal(iter_value(m).ptr[0], 'B');
    iter_free(m);
}

static void test_random_model(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 5);
    static world w;
    int64_t base = alloc_bytes_in_use();
    for (int round = 0; round < 400; round++) {
        size_t nc = round < 20 ? (size_t)round % 6 : 1 + (size_t)tu_randn(&r, MAX_CHILDREN);
        make_world(&w, &r, nc);
        iter *m = merge_world(&w, SIZE_MAX, 0);
        /* full forward and backward */
        iter_seek_first(m);
        for (size_t i = 0; i < w.n_model; i++, iter_next(m))
            expect_at(m, &w, i);
        expect_at(m, &w, OFF);
        iter_seek_last(m);
        for (size_t i = w.n_model; i-- > 0; iter_prev(m))
            expect_at(m, &w, i);
        expect_at(m, &w, OFF);
        /* zig-zag: every direction change point */
        iter_seek_first(m);
        for (size_t i = 0; i + 1 < w.n_model; i++) {
            iter_next(m);
            expect_at(m, &w, i + 1);
            iter_prev(m);
            expect_at(m, &w, i);
            iter_next(m);
            expect_at(m, &w, i + 1);
        }
        iter_seek_last(m);
        for (size_t i = w.n_model; i-- > 1;) {
            iter_prev(m);
            expect_at(m, &w, i - 1);
            iter_next(m);
            expect_at(m, &w, i);
            iter_prev(m);
            expect_at(m, &w, i - 1);
        }
        random_walk(m, &w, &r, 300);
        iter_free(m);
        free(w.model);
    }
    assert_int_equal(alloc_bytes_in_use(), base);
}

/* An erroring child: everything yielded before the error matches the
 * model, the failing entry is never yielded, and afterwards the merged
 * iterator is invalid with the child's status. */
static void test_erroring_child(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 11);
    static world w;
    for (int round = 0; round < 300; round++) {
        make_world(&w, &r, 2 + (size_t)tu_randn(&r, 8));
        size_t fc = (size_t)tu_randn(&r, w.n_children);
        if (w.n[fc] == 0 || w.is_empty_iter[fc]) {
            free(w.model);
            continue;
        }
        size_t fa = (size_t)tu_randn(&r, w.n[fc]);
        kv bad = w.e[fc][fa];
        iter *m = merge_world(&w, fc, fa);
        int mode = round % 3;
        size_t pos = OFF;
        if (mode == 0) {
            iter_seek_first(m);
            pos = 0;
        } else if (mode == 1) {
            iter_seek_last(m);
            pos = w.n_model - 1;
        } else {
            iter_seek(m, kv_key(&w.model[tu_randn(&r, w.n_model)]));
            pos = model_seek(&w, iter_valid(m) ? iter_key(m) : kv_key(&bad));
        }
        for (int s = 0; s < 1000 && iter_valid(m); s++) {
            assert_int_equal(iter_status(m), DM_OK);
            /* value identifies (child, position) */
            assert_memory_not_equal(iter_value(m).ptr, bad.val, 8);
            if (mode == 2)
                pos = model_seek(&w, iter_key(m)); /* re-sync on dups */
            else
                expect_at(m, &w, pos);
            assert_true(pos < w.n_model);
            bool fwd = mode == 0 ? true : mode == 1 ? false : tu_randn(&r, 2);
            if (fwd) {
                iter_next(m);
                pos++;
            } else {
                iter_prev(m);
                pos = pos == 0 ? OFF : pos - 1;
            }
        }
        /* Walking off an end without touching the bad entry is possible
         * only in mode 2; otherwise the error must have stopped us. */
        if (iter_status(m) != DM_OK) {
            assert_false(iter_valid(m));
            assert_int_equal(iter_status(m), DM_EIO);
            /* re-seeking does not hide the error of a sticky child */
            iter_seek_first(m);
            assert_false(iter_valid(m));
            assert_int_equal(iter_status(m), DM_EIO);
        } else {
            assert_int_equal(mode, 2);
        }
        iter_free(m);
        free(w.model);
    }
}

static void test_error_status_order(void **state)
{
    (void)state;
    static kv a[1];
    memcpy(a[0].key, "k", 1);
    a[0].klen = 1;
    iter *ch[3] = { arr_new(a, 1, SIZE_MAX), iter_empty_new(DM_ECORRUPT),
                    iter_empty_new(DM_EIO) };
    iter *m = iter_merge_new(bytes_cmp, ch, 3);
    assert_non_null(m);
    iter_seek_first(m);
    assert_false(iter_valid(m));
    assert_int_equal(iter_status(m), DM_ECORRUPT);
    iter_seek(m, buf_slice_of("a", 1));
    assert_false(iter_valid(m));
    iter_seek_last(m);
    assert_false(iter_valid(m));
    assert_int_equal(iter_status(m), DM_ECORRUPT);
    iter_free(m);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    static kv a[1];
    memcpy(a[0].key, "k", 1);
    a[0].klen = 1;
    int64_t base = alloc_bytes_in_use();
    int n_null = 0;
    iter *m = NULL;
    for (int k = 1; k <= 10; k++) {
        iter *ch[3] = { arr_new(a, 1, SIZE_MAX), arr_new(a, 1, SIZE_MAX),
                        iter_empty_new(DM_OK) };
        alloc_fail_after(k, 0);
        m = iter_merge_new(bytes_cmp, ch, 3);
        alloc_fail_after(0, 0);
        if (!m) {
            n_null++;
        } else {
            iter_seek_first(m);
            assert_true(iter_valid(m));
            iter_free(m);
        }
        assert_int_equal(alloc_bytes_in_use(), base);
    }
    assert_true(n_null > 0);
    assert_non_null(m); /* the last attempt had enough allocations */
}

typedef struct ent {
    uint8_t ikey[12];
    uint32_t table, idx;
} ent;

/* (ikey, table index): the merged order of memtable entries */
static int cmp_ent(const void *pa, const void *pb)
{
    const ent *a = pa, *b = pb;
    int c = ikey_cmp(buf_slice_of(a->ikey, 12), buf_slice_of(b->ikey, 12));
    if (c)
        return c;
    return a->table < b->table ? -1 : a->table > b->table;
}

/* Memtables merged under ikey_cmp, with the same internal key present in
 * several tables (the lower index must come first). */
static void test_merge_memtables(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 99);
    enum { NT = 5, PER = 2000 };
    ent *model = calloc(NT * PER, sizeof *model);
    assert_non_null(model);
    size_t n = 0;
    iter *ch[NT];
    for (uint32_t t = 0; t < NT; t++) {
        mt_table *mt;
        assert_int_equal(mt_new(&mt), 0);
        for (uint32_t i = 0; i < PER; i++) {
            uint8_t key[4];
            enc_u32(key, (uint32_t)tu_randn(&r, 3000));
            /* seq unique inside a table, but shared across tables */
            uint64_t seq = (uint64_t)i * 3 + tu_randn(&r, 3);
            uint8_t val[8];
            enc_u32(val, t);
            enc_u32(val + 4, i);
            assert_int_equal(mt_add(mt, seq, IKEY_PUT, buf_slice_of(key, 4),
                                    buf_slice_of(val, 8)), 0);
            ikey_encode(model[n].ikey, buf_slice_of(key, 4), seq, IKEY_PUT);
            model[n].table = t;
            model[n].idx = i;
            n++;
        }
        ch[t] = mt_iter_new(mt);
        assert_non_null(ch[t]);
        mt_unref(mt); /* the iterator keeps it */
    }
    qsort(model, n, sizeof *model, cmp_ent);
    iter *m = iter_merge_new(ikey_cmp, ch, NT);
    assert_non_null(m);
    iter_seek_first(m);
    for (size_t i = 0; i < n; i++, iter_next(m)) {
        assert_true(iter_valid(m));
        assert_memory_equal(iter_key(m).ptr, model[i].ikey, 12);
        assert_int_equal(dec_u32(iter_value(m).ptr), model[i].table);
        assert_int_equal(dec_u32(iter_value(m).ptr + 4), model[i].idx);
    }
    assert_false(iter_valid(m));
    iter_seek_last(m);
    for (size_t i = n; i-- > 0; iter_prev(m)) {
        assert_true(iter_valid(m));
        assert_memory_equal(iter_key(m).ptr, model[i].ikey, 12);
        assert_int_equal(dec_u32(iter_value(m).ptr), model[i].table);
    }
    assert_false(iter_valid(m));
    iter_free(m);
    free(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_iter),
        cmocka_unit_test(test_small_merges),
        cmocka_unit_test(test_random_model),
        cmocka_unit_test(test_erroring_child),
        cmocka_unit_test(test_error_status_order),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_merge_memtables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
