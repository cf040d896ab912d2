// ctest-labels: concurrency
/*
 * test_hnsw.c -- the vector index: recall against the exact scan on fixed
 * seeds, the flat path, add / replace / delete, filters, checkpoints
 * (round trip, every truncation, bit flips, hand-made structural damage
 * with a valid checksum), hnsw_check, concurrent searches, and allocation
 * failure during add, search and load.  Half-precision storage: recall
 * against the exact scan and against float32 ground truth, stored values,
 * hnsw_get_vector / hnsw_similarity, its checkpoints; version-1
 * checkpoints (the documented example, and ones converted from version 2)
 * still load; rows spread over several segments.  Runs under TSan too
 * (the concurrent-search test), so the data sets are small.
 */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/crc.h"
#include "base/err.h"
#include "index/distance.h"
#include "index/hnsw.h"
#include "index/hnsw_format.h"

/* ------------------------------------------------------------- helpers */

static double gauss(tu_rng *r)
{
    double u = ((double)(tu_rand(r) >> 11) + 1.0) * 0x1.0p-53;
    double v = (double)(tu_rand(r) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* n unit vectors around n_centres Gaussian centres (caller frees). */
static float *clustered(uint32_t n, uint32_t dim, uint32_t n_centres,
                        double sigma, uint64_t seed)
{
    tu_rng r;
    tu_rng_seed(&r, seed);
    float *c = malloc((size_t)n_centres * dim * sizeof *c);
    float *v = malloc((size_t)n * dim * sizeof *v);
    assert_non_null(c);
    assert_non_null(v);
    for (size_t i = 0; i < (size_t)n_centres * dim; i++)
        c[i] = (float)gauss(&r);
    for (uint32_t i = 0; i < n; i++) {
        const float *ci = c + tu_randn(&r, n_centres) * dim;
        for (uint32_t j = 0; j < dim; j++)
            v[(size_t)i * dim + j] = ci[j] + (float)(sigma * gauss(&r));
        dist_normalize(v + (size_t)i * dim, dim);
    }
    free(c);
    return v;
}

static hnsw *new_index_elem(uint32_t dim, uint32_t M, uint32_t efc,
                            uint32_t threshold, hnsw_elem elem)
{
    hnsw_params p = hnsw_params_default(dim);
    p.M = M;
    p.ef_construction = efc;
    p.flat_threshold = threshold;
    p.elem = elem;
    hnsw *h = NULL;
    assert_int_equal(hnsw_new(&p, &h), DM_OK);
    return h;
}

static hnsw *new_index(uint32_t dim, uint32_t M, uint32_t efc, uint32_t threshold)
{
    return new_index_elem(dim, M, efc, threshold, HNSW_ELEM_F32);
}

/* What a half-precision index stores for x. */
static float f16_round(float x)
{
    return dist_f16_to_f32(dist_f32_to_f16(x));
}

static void assert_params_equal(const hnsw_params *a, const hnsw_params *b)
{
    assert_int_equal(a->dim, b->dim);
    assert_int_equal(a->M, b->M);
    assert_int_equal(a->ef_construction, b->ef_construction);
    assert_int_equal(a->ef_search, b->ef_search);
    assert_int_equal(a->flat_threshold, b->flat_threshold);
    assert_true(a->seed == b->seed);
    assert_int_equal(a->elem, b->elem);
}

static void add_all(hnsw *h, const float *v, uint32_t n, uint32_t dim,
                    uint32_t label0)
{
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(hnsw_add(h, label0 + i, v + (size_t)i * dim), DM_OK);
}

static void check_ok(const hnsw *h)
{
    int rc = hnsw_check(h);
    if (rc != DM_OK) {
        print_error("hnsw_check: %s\n", err_last_msg());
        fail();
    }
}

/* Mean recall@k of hnsw_search against hnsw_search_exact. */
static double recall(const hnsw *h, const float *q, uint32_t nq, uint32_t dim,
                     uint32_t k, uint32_t ef, ix_filter_fn f, void *arg)
{
    hnsw_hit *a = malloc(k * sizeof *a), *b = malloc(k * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    double total = 0;
    for (uint32_t i = 0; i < nq; i++) {
        uint32_t na, nb;
        const float *qi = q + (size_t)i * dim;
        assert_int_equal(hnsw_search(h, qi, k, ef, f, arg, a, &na), DM_OK);
        assert_int_equal(hnsw_search_exact(h, qi, k, f, arg, b, &nb), DM_OK);
        assert_int_equal(na, nb);
        uint32_t hit = 0;
        for (uint32_t x = 0; x < na; x++)
            for (uint32_t y = 0; y < nb; y++)
                hit += a[x].label == b[y].label;
        total += nb ? (double)hit / nb : 1.0;
        for (uint32_t x = 1; x < na; x++)
            assert_true(a[x - 1].sim >= a[x].sim);
    }
    free(a);
    free(b);
    return total / nq;
}

static void serialize(const hnsw *h, buf *b)
{
    buf_init(b);
    assert_int_equal(hnsw_serialize(h, b), DM_OK);
}

/* Recompute the trailer checksum after editing a checkpoint. */
static void reseal(uint8_t *p, size_t len)
{
    enc_u32(p + len - HNSW_TRAILER_OFF_CRC,
            crc_mask(crc32c(p, len - HNSW_TRAILER_LEN)));
}

static bool even_only(void *arg, uint32_t doc)
{
    (void)arg;
    return doc % 2 == 0;
}

static bool below(void *arg, uint32_t doc)
{
    return doc < *(const uint32_t *)arg;
}

static bool is_multiple(void *arg, uint32_t doc)
{
    return doc % *(const uint32_t *)arg == 0;
}

/* --------------------------------------------------------------- tests */

static void test_params(void **state)
{
    hnsw_params p = hnsw_params_default(100);
    assert_int_equal(p.dim, 100);
    assert_int_equal(p.M, 16);
    assert_int_equal(p.ef_construction, 200);
    assert_int_equal(p.ef_search, 64);
    assert_int_equal(p.seed, 42);
    assert_int_equal(p.elem, HNSW_ELEM_F32);
    assert_true(p.flat_threshold > 0);
    hnsw *h = (hnsw *)(uintptr_t)1; /* must come back NULL */
    hnsw_params bad = p;
    bad.dim = 0;
    assert_int_equal(hnsw_new(&bad, &h), DM_EINVAL);
    assert_null(h);
    assert_non_null(strstr(err_last_msg(), "dim"));
    bad = p;
    bad.dim = HNSW_MAX_DIM + 1;
    assert_int_equal(hnsw_new(&bad, &h), DM_EINVAL);
    bad = p;
    bad.M = 1;
    assert_int_equal(hnsw_new(&bad, &h), DM_EINVAL);
    assert_non_null(strstr(err_last_msg(), "M"));
    bad = p;
    bad.ef_construction = 0;
    assert_int_equal(hnsw_new(&bad, &h), DM_EINVAL);
    bad = p;
    bad.ef_search = 0;
    assert_int_equal(hnsw_new(&bad, &h), DM_EINVAL);
    bad = p;
    bad.elem = (hnsw_elem)2;
    assert_int_equal(hnsw_new(&bad, &h), DM_EINVAL);
    assert_non_null(strstr(err_last_msg(), "elem"));
    assert_null(h);
    hnsw_free(NULL);

    assert_int_equal(hnsw_new(&p, &h), DM_OK);
    assert_int_equal(hnsw_count(h), 0);
    assert_int_equal(hnsw_has_graph(h), 0);
    assert_true(hnsw_get_params(h)->dim == 100);
    assert_true(hnsw_memsize(h) > 0);
    float q[100] = { 1 };
    hnsw_hit out[3];
    uint32_t n = 99;
    assert_int_equal(hnsw_search(h, q, 3, 0, NULL, NULL, out, &n), DM_OK);
    assert_int_equal(n, 0);
    assert_int_equal(hnsw_add(h, UINT32_MAX, q), DM_EINVAL);
    assert_int_equal(hnsw_delete(h, 5), DM_ENOTFOUND);
    check_ok(h);
    hnsw_free(h);
}

static void test_flat_exact(void **state)
{
    const uint32_t dim = 24, n = 500;
    float *v = clustered(n + 50, dim, 20, 0.5, 1);
    hnsw *h = new_index(dim, 16, 200, 1000);
    add_all(h, v, n, dim, 1000);
    assert_int_equal(hnsw_has_graph(h), 0);
    assert_int_equal(hnsw_count(h), n);
    check_ok(h);
    for (uint32_t qi = 0; qi < 50; qi++) {
        const float *q = v + (size_t)(n + qi) * dim;
        hnsw_hit a[12], b[12];
        uint32_t na, nb;
        assert_int_equal(hnsw_search(h, q, 12, 0, NULL, NULL, a, &na), DM_OK);
        assert_int_equal(hnsw_search_exact(h, q, 12, NULL, NULL, b, &nb), DM_OK);
        assert_int_equal(na, 12);
        assert_memory_equal(a, b, na * sizeof *a);
        /* Against a brute force of our own. */
        float best = -2;
        uint32_t best_l = 0;
        for (uint32_t i = 0; i < n; i++) {
            double s = 0;
            for (uint32_t j = 0; j < dim; j++)
                s += (double)q[j] * v[(size_t)i * dim + j];
            if (s > best) {
                best = (float)s;
                best_l = 1000 + i;
            }
        }
        assert_int_equal(a[0].label, best_l);
        assert_true(fabsf(a[0].sim - best) < 1e-5f);
    }
    /* k larger than the index. */
    hnsw_hit all[600];
    uint32_t na;
    assert_int_equal(hnsw_search(h, v, 600, 0, NULL, NULL, all, &na), DM_OK);
    assert_int_equal(na, n);
    hnsw_free(h);
    free(v);
}

static int cmp_ref(const void *pa, const void *pb)
{
    const hnsw_hit *a = pa, *b = pb;
    if (a->sim != b->sim)
        return a->sim > b->sim ? -1 : 1;
    return a->label < b->label ? -1 : a->label > b->label;
}

/* The exact scan of a flat index, against a reference sorted here: every
 * k from 1 past n, sizes on both sides of the scan's word buffer (512),
 * every vector present twice (ties broken by label), some deleted, some
 * rejected by a filter.  Checked in full: labels and similarities. */
static bool odd_label(void *arg, uint32_t label)
{
    (void)arg;
    return label % 7 != 3;
}

static void test_exact_order(void **state)
{
    (void)state;
    const uint32_t dim = 8;
    const uint32_t sizes[] = { 1, 2, 17, 40, 255, 256, 300, 700 };
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        uint32_t half = sizes[si];
        float *v = clustered(half + 4, dim, 3, 0.3, 7 + si);
        hnsw *h = new_index(dim, 16, 100, 100000);
        add_all(h, v, half, dim, 0);
        add_all(h, v, half, dim, half); /* the same vectors again: ties */
        uint32_t n = 2 * half;
        if (half > 4)
            for (uint32_t l = 1; l < n; l += 5)
                assert_int_equal(hnsw_delete(h, l), DM_OK);
        hnsw_hit *ref = malloc(sizeof *ref * (n + 8));
        hnsw_hit *got = malloc(sizeof *got * (n + 8));
        assert_non_null(ref);
        assert_non_null(got);
        for (uint32_t qi = 0; qi < 4; qi++) {
            const float *q = v + (size_t)(half + qi) * dim;
            for (int filtered = 0; filtered < 2; filtered++) {
                uint32_t m = 0;
                for (uint32_t l = 0; l < n; l++) {
                    float sim;
                    if (hnsw_similarity(h, q, l, &sim) != DM_OK)
                        continue; /* deleted */
                    if (filtered && !odd_label(NULL, l))
                        continue;
                    ref[m++] = (hnsw_hit){ l, sim };
                }
                qsort(ref, m, sizeof *ref, cmp_ref);
                for (uint32_t k = 1; k <= m + 2; k += (k < 20 || k + 20 > m ? 1 : 13)) {
                    uint32_t ng;
                    assert_int_equal(hnsw_search_exact(h, q, k, filtered ? odd_label : NULL,
                                                       NULL, got, &ng),
                                     DM_OK);
                    assert_int_equal(ng, k < m ? k : m);
                    for (uint32_t i = 0; i < ng; i++) {
                        assert_int_equal(got[i].label, ref[i].label);
                        assert_true(got[i].sim == ref[i].sim);
                    }
                }
            }
        }
        free(ref);
        free(got);
        hnsw_free(h);
        free(v);
    }
}

static void test_recall_graph(void **state)
{
    const uint32_t dim = 32, n = 5000, nq = 200;
    float *v = clustered(n + nq, dim, 50, 0.6, 2);
    hnsw *h = new_index(dim, 16, 100, 100);
    add_all(h, v, n, dim, 0);
    assert_int_equal(hnsw_has_graph(h), 1);
    check_ok(h);
    const float *q = v + (size_t)n * dim;
    double r64 = recall(h, q, nq, dim, 10, 64, NULL, NULL);
    double r10 = recall(h, q, nq, dim, 10, 10, NULL, NULL);
    print_message("recall@10: ef 10 %.4f, ef 64 %.4f\n", r10, r64);
    assert_true(r64 >= 0.95);
    assert_true(r64 >= r10);
    /* A vector of the index finds itself first. */
    for (uint32_t i = 0; i < 200; i++) {
        hnsw_hit a[1];
        uint32_t na;
        assert_int_equal(hnsw_search(h, v + (size_t)i * 7 * dim, 1, 0, NULL, NULL,
                                     a, &na), DM_OK);
        assert_int_equal(na, 1);
        assert_true(fabsf(a[0].sim - 1.0f) < 1e-4f);
    }
    hnsw_free(h);
    free(v);
}

static void test_threshold_transition(void **state)
{
    /* The graph appears exactly when the live count reaches the threshold,
     * from the vectors already stored; deletions in flat mode move nodes. */
    const uint32_t dim = 16, n = 400;
    float *v = clustered(n, dim, 10, 0.5, 3);
    hnsw *h = new_index(dim, 8, 50, 300);
    add_all(h, v, 200, dim, 0);
    for (uint32_t l = 0; l < 200; l += 3)
        assert_int_equal(hnsw_delete(h, l), DM_OK);
    assert_int_equal(hnsw_deleted(h), 0);
    assert_int_equal(hnsw_count(h), 133);
    check_ok(h);
    for (uint32_t l = 0; l < 200; l++) {
        const float *x = hnsw_vector(h, l);
        if (l % 3 == 0)
            assert_null(x);
        else
            assert_memory_equal(x, v + (size_t)l * dim, dim * sizeof *x);
    }
    uint32_t label = 200;
    while (hnsw_count(h) < 299) {
        assert_int_equal(hnsw_add(h, label, v + (size_t)label * dim), DM_OK);
        label++;
    }
    assert_int_equal(hnsw_has_graph(h), 0);
    assert_int_equal(hnsw_add(h, label, v + (size_t)label * dim), DM_OK);
    assert_int_equal(hnsw_count(h), 300);
    assert_int_equal(hnsw_has_graph(h), 1);
    check_ok(h);
    for (uint32_t l = 0; l <= label; l++) {
        const float *x = hnsw_vector(h, l);
        if (l < 200 && l % 3 == 0)
            assert_null(x);
        else
            assert_memory_equal(x, v + (size_t)l * dim, dim * sizeof *x);
    }
    /* Deleting below the threshold keeps the graph; search is exact. */
    for (uint32_t l = 1; l < 200; l += 3)
        assert_int_equal(hnsw_delete(h, l), DM_OK);
    assert_int_equal(hnsw_has_graph(h), 1);
    assert_true(hnsw_count(h) < 300);
    check_ok(h);
    hnsw_hit a[10], b[10];
    uint32_t na, nb;
    assert_int_equal(hnsw_search(h, v, 10, 0, NULL, NULL, a, &na), DM_OK);
    assert_int_equal(hnsw_search_exact(h, v, 10, NULL, NULL, b, &nb), DM_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    hnsw_free(h);
    free(v);
}

static void test_add_replace_delete(void **state)
{
    const uint32_t dim = 16, n = 1000;
    float *v = clustered(2 * n, dim, 20, 0.5, 4);
    /* threshold 1: graph from the first add; threshold 5000: flat. */
    for (int mode = 0; mode < 2; mode++) {
        hnsw *h = new_index(dim, 8, 64, mode == 0 ? 1 : 5000);
        add_all(h, v, n, dim, 0);
        assert_int_equal(hnsw_has_graph(h), mode == 0);
        /* Replace labels 0..99 with vectors from the second half. */
        for (uint32_t l = 0; l < 100; l++)
            assert_int_equal(hnsw_add(h, l, v + (size_t)(n + l) * dim), DM_OK);
        assert_int_equal(hnsw_count(h), n);
        assert_int_equal(hnsw_deleted(h), mode == 0 ? 100 : 0);
        for (uint32_t l = 0; l < 100; l++) {
            assert_memory_equal(hnsw_vector(h, l), v + (size_t)(n + l) * dim,
                                dim * sizeof(float));
            hnsw_hit a[3];
            uint32_t na;
            assert_int_equal(hnsw_search(h, v + (size_t)(n + l) * dim, 3, 0,
                                         NULL, NULL, a, &na), DM_OK);
            assert_int_equal(a[0].label, l);
            assert_true(fabsf(a[0].sim - 1.0f) < 1e-4f);
            /* The old vector no longer belongs to l: a search for it may
             * still return l, but only with l's new similarity. */
            assert_int_equal(hnsw_search(h, v + (size_t)l * dim, 3, 0, NULL, NULL,
                                         a, &na), DM_OK);
            for (uint32_t i = 0; i < na; i++)
                if (a[i].label == l)
                    assert_true(a[i].sim < 0.9999f);
        }
        check_ok(h);
        /* Delete every odd label: never returned again. */
        for (uint32_t l = 1; l < n; l += 2)
            assert_int_equal(hnsw_delete(h, l), DM_OK);
        assert_int_equal(hnsw_delete(h, 1), DM_ENOTFOUND);
        assert_int_equal(hnsw_count(h), n / 2);
        assert_null(hnsw_vector(h, 1));
        check_ok(h);
        for (uint32_t qi = 0; qi < 100; qi++) {
            hnsw_hit a[20];
            uint32_t na;
            assert_int_equal(hnsw_search(h, v + (size_t)qi * 2 * dim, 20, 0, NULL,
                                         NULL, a, &na), DM_OK);
            assert_int_equal(na, 20);
            for (uint32_t i = 0; i < na; i++)
                assert_int_equal(a[i].label % 2, 0);
        }
        /* Recall over the survivors (here the exact scan answers: see
         * test_delete_routing for the graph). */
        double r = recall(h, v + (size_t)n * dim, 100, dim, 10, 64, NULL, NULL);
        assert_true(r >= 0.95);
        /* Re-add a deleted label; delete everything. */
        assert_int_equal(hnsw_add(h, 1, v + (size_t)1 * dim), DM_OK);
        assert_non_null(hnsw_vector(h, 1));
        for (uint32_t l = 0; l < n; l++)
            if (hnsw_vector(h, l))
                assert_int_equal(hnsw_delete(h, l), DM_OK);
        assert_int_equal(hnsw_count(h), 0);
        check_ok(h);
        hnsw_hit a[5];
        uint32_t na = 7;
        assert_int_equal(hnsw_search(h, v, 5, 0, NULL, NULL, a, &na), DM_OK);
        assert_int_equal(na, 0);
        /* And it comes back to life. */
        add_all(h, v, 50, dim, 5000);
        assert_int_equal(hnsw_count(h), 50);
        assert_int_equal(hnsw_search(h, v, 5, 0, NULL, NULL, a, &na), DM_OK);
        assert_int_equal(na, 5);
        assert_int_equal(a[0].label, 5000);
        check_ok(h);
        hnsw_free(h);
    }
    free(v);
}

static void test_label_model(void **state)
{
    /* Random adds, replacements and deletions of labels drawn from a small
     * set of values spread over the whole u32 range (so that the label
     * map's probe runs collide and wrap), checked against a model: the
     * vector of every label, the count, and hnsw_check. */
    enum { NL = 300, DIM = 4 };
    static uint32_t labels[NL];
    static float model[NL][DIM];
    static bool present[NL];
    tu_rng r;
    tu_rng_seed(&r, 14);
    for (int i = 0; i < NL; i++)
        labels[i] = i < 100 ? (uint32_t)i * 64 : (uint32_t)(tu_rand(&r) % UINT32_MAX);
    labels[NL - 1] = UINT32_MAX - 1;
    for (int mode = 0; mode < 2; mode++) {
        memset(present, 0, sizeof present);
        hnsw *h = new_index(DIM, 4, 16, mode ? 20 : 100000);
        uint32_t live = 0;
        for (int step = 0; step < 4000; step++) {
            int i = (int)tu_randn(&r, NL);
            if (tu_randn(&r, 3) == 0) {
                int rc = hnsw_delete(h, labels[i]);
                assert_int_equal(rc, present[i] ? DM_OK : DM_ENOTFOUND);
                live -= present[i];
                present[i] = false;
            } else {
                for (int j = 0; j < DIM; j++)
                    model[i][j] = (float)gauss(&r);
                dist_normalize(model[i], DIM);
                assert_int_equal(hnsw_add(h, labels[i], model[i]), DM_OK);
                live += !present[i];
                present[i] = true;
            }
            assert_int_equal(hnsw_count(h), live);
            if (step % 500 == 0 || step == 3999) {
                check_ok(h);
                for (int j = 0; j < NL; j++) {
                    const float *x = hnsw_vector(h, labels[j]);
                    if (!present[j])
                        assert_null(x);
                    else
                        assert_memory_equal(x, model[j], sizeof model[j]);
                }
            }
        }
        assert_int_equal(hnsw_has_graph(h), mode);
        hnsw_free(h);
    }
}

static void test_delete_routing(void **state)
{
    /* Half the nodes deleted, enough nodes that the graph still answers
     * (32 * 64 / 0.5 = 4096 < 8000 * 0.75): deleted nodes keep routing,
     * so recall over the survivors stays high. */
    const uint32_t dim = 16, n = 8000, nq = 100;
    float *v = clustered(n + nq, dim, 40, 0.6, 13);
    hnsw *h = new_index(dim, 8, 40, 100);
    add_all(h, v, n, dim, 0);
    for (uint32_t l = 0; l < n; l += 2)
        assert_int_equal(hnsw_delete(h, l), DM_OK);
    check_ok(h);
    double r = recall(h, v + (size_t)n * dim, nq, dim, 10, 64, NULL, NULL);
    print_message("recall@10 with half deleted: %.4f\n", r);
    assert_true(r >= 0.95);
    hnsw_free(h);
    free(v);
}

static void test_filter(void **state)
{
    const uint32_t dim = 24, n = 3000, nq = 100;
    float *v = clustered(n + nq, dim, 30, 0.6, 5);
    hnsw *h = new_index(dim, 12, 100, 200);
    add_all(h, v, n, dim, 0);
    const float *q = v + (size_t)n * dim;
    /* ef 24 keeps this on the graph (the exact scan takes over when
     * 32 ef / share exceeds n (share + 1/4): 1536 < 2250 here). */
    double r = recall(h, q, nq, dim, 10, 24, even_only, NULL);
    print_message("recall@10 with half filtered out, ef 24: %.4f\n", r);
    assert_true(r >= 0.95);
    for (uint32_t i = 0; i < nq; i++) {
        hnsw_hit a[10];
        uint32_t na;
        assert_int_equal(hnsw_search(h, q + (size_t)i * dim, 10, 0, even_only, NULL,
                                     a, &na), DM_OK);
        assert_int_equal(na, 10);
        for (uint32_t j = 0; j < na; j++)
            assert_int_equal(a[j].label % 2, 0);
    }
    /* Very selective filters: the answer is still complete and exact. */
    uint32_t lim = 7;
    for (uint32_t i = 0; i < 20; i++) {
        hnsw_hit a[10], b[10];
        uint32_t na, nb;
        assert_int_equal(hnsw_search(h, q + (size_t)i * dim, 10, 0, below, &lim, a,
                                     &na), DM_OK);
        assert_int_equal(hnsw_search_exact(h, q + (size_t)i * dim, 10, below, &lim,
                                           b, &nb), DM_OK);
        assert_int_equal(na, 7);
        assert_int_equal(nb, 7);
        assert_memory_equal(a, b, na * sizeof *a);
    }
    uint32_t every = 97;
    r = recall(h, q, nq, dim, 10, 64, is_multiple, &every);
    print_message("recall@10 with 1%% passing: %.4f\n", r);
    assert_true(r >= 0.95);
    lim = 0;
    hnsw_hit a[10];
    uint32_t na = 3;
    assert_int_equal(hnsw_search(h, q, 10, 0, below, &lim, a, &na), DM_OK);
    assert_int_equal(na, 0);
    hnsw_free(h);
    free(v);
}

static void test_deterministic(void **state)
{
    const uint32_t dim = 16, n = 1500;
    float *v = clustered(n, dim, 20, 0.5, 6);
    hnsw *a = new_index(dim, 8, 64, 100), *b = new_index(dim, 8, 64, 100);
    add_all(a, v, n, dim, 0);
    add_all(b, v, n, dim, 0);
    buf ba, bb;
    serialize(a, &ba);
    serialize(b, &bb);
    assert_int_equal(ba.len, bb.len);
    assert_memory_equal(ba.ptr, bb.ptr, ba.len);
    buf_fini(&ba);
    buf_fini(&bb);
    hnsw_free(a);
    hnsw_free(b);
    free(v);
}

static void round_trip(hnsw *h, const float *q, uint32_t nq, uint32_t dim)
{
    buf b;
    serialize(h, &b);
    hnsw *g = NULL;
    hnsw_params p = *hnsw_get_params(h);
    assert_int_equal(hnsw_deserialize(&p, buf_slice_of(b.ptr, b.len), &g), DM_OK);
    check_ok(g);
    assert_int_equal(hnsw_count(g), hnsw_count(h));
    assert_int_equal(hnsw_deleted(g), hnsw_deleted(h));
    assert_int_equal(hnsw_has_graph(g), hnsw_has_graph(h));
    assert_params_equal(hnsw_get_params(g), &p);
    for (uint32_t i = 0; i < nq; i++) {
        hnsw_hit x[10], y[10];
        uint32_t nx, ny;
        assert_int_equal(hnsw_search(h, q + (size_t)i * dim, 10, 0, NULL, NULL, x,
                                     &nx), DM_OK);
        assert_int_equal(hnsw_search(g, q + (size_t)i * dim, 10, 0, NULL, NULL, y,
                                     &ny), DM_OK);
        assert_int_equal(nx, ny);
        assert_memory_equal(x, y, nx * sizeof *x);
    }
    /* Serializing the loaded index gives the same bytes. */
    buf b2;
    serialize(g, &b2);
    assert_int_equal(b.len, b2.len);
    assert_memory_equal(b.ptr, b2.ptr, b.len);
    /* Both continue identically: same level draws, same graph. */
    assert_int_equal(hnsw_add(h, 777777, q), DM_OK);
    assert_int_equal(hnsw_add(g, 777777, q), DM_OK);
    buf_clear(&b);
    buf_clear(&b2);
    assert_int_equal(hnsw_serialize(h, &b), DM_OK);
    assert_int_equal(hnsw_serialize(g, &b2), DM_OK);
    assert_int_equal(b.len, b2.len);
    assert_memory_equal(b.ptr, b2.ptr, b.len);
    buf_fini(&b);
    buf_fini(&b2);
    hnsw_free(g);
}

static void test_round_trip(void **state)
{
    /* dim 21: rows padded, and with an odd n the binary16 vectors need
     * their padding section. */
    const uint32_t dim = 21, n = 2001;
    float *v = clustered(n + 50, dim, 25, 0.6, 7);
    const float *q = v + (size_t)n * dim;
    for (int e = 0; e < 2; e++) {
        hnsw_elem elem = e ? HNSW_ELEM_F16 : HNSW_ELEM_F32;
        /* Empty, flat, graph, graph with deletions and replacements. */
        hnsw *h = new_index_elem(dim, 10, 80, 500, elem);
        round_trip(h, q, 5, dim);
        hnsw_free(h);
        h = new_index_elem(dim, 10, 80, 500, elem);
        add_all(h, v, 301, dim, 0);
        round_trip(h, q, 50, dim);
        hnsw_free(h);
        h = new_index_elem(dim, 10, 80, 500, elem);
        add_all(h, v, n, dim, 10);
        round_trip(h, q, 50, dim);
        for (uint32_t l = 10; l < 400; l += 2)
            assert_int_equal(hnsw_delete(h, l), DM_OK);
        for (uint32_t l = 11; l < 300; l += 2)
            assert_int_equal(hnsw_add(h, l, v + (size_t)(l + 1000) * dim), DM_OK);
        round_trip(h, q, 50, dim);
        hnsw_free(h);
        /* Graph mode with no nodes at all (threshold 0). */
        h = new_index_elem(dim, 10, 80, 0, elem);
        assert_int_equal(hnsw_add(h, 3, v), DM_OK);
        assert_int_equal(hnsw_delete(h, 3), DM_OK);
        round_trip(h, q, 5, dim);
        hnsw_free(h);
    }
    free(v);
}

/* A small graph checkpoint with deletions, for the damage tests. */
enum { CN = 300, CDIM = 8, CM = 4 };

static void small_checkpoint(buf *b, hnsw **out)
{
    float *v = clustered(CN, CDIM, 10, 0.5, 8);
    hnsw *h = new_index(CDIM, CM, 40, 1);
    add_all(h, v, CN, CDIM, 0);
    for (uint32_t l = 0; l < CN; l += 10)
        assert_int_equal(hnsw_delete(h, l), DM_OK);
    serialize(h, b);
    free(v);
    if (out)
        *out = h;
    else
        hnsw_free(h);
}

static int load(const uint8_t *p, size_t len)
{
    hnsw *g = NULL;
    hnsw_params pr = hnsw_params_default(CDIM);
    int rc = hnsw_deserialize(&pr, buf_slice_of(p, len), &g);
    if (rc == DM_OK) {
        assert_non_null(g);
        check_ok(g);
        float q[CDIM] = { 1 };
        hnsw_hit a[5];
        uint32_t na;
        assert_int_equal(hnsw_search(g, q, 5, 0, NULL, NULL, a, &na), DM_OK);
        hnsw_free(g);
    } else {
        assert_null(g);
    }
    return rc;
}

/* load_any -- deserialize with default params of any dim; a loaded index
 * must pass hnsw_check. */
static int load_any(const uint8_t *p, size_t len)
{
    hnsw *g = NULL;
    hnsw_params pr = hnsw_params_default(1);
    int rc = hnsw_deserialize(&pr, buf_slice_of(p, len), &g);
    if (rc == DM_OK) {
        assert_non_null(g);
        check_ok(g);
        hnsw_free(g);
    } else {
        assert_null(g);
    }
    return rc;
}

static void test_truncation_and_flips(void **state)
{
    buf b;
    small_checkpoint(&b, NULL);
    assert_int_equal(load(b.ptr, b.len), DM_OK);
    uint8_t *c = malloc(b.len + 8);
    assert_non_null(c);
    /* Every truncation, placed so that it ends where its allocation ends
     * (ASan then sees any read past the end). */
    uint8_t *t = malloc(b.len);
    assert_non_null(t);
    for (size_t len = 0; len < b.len; len++) {
        memcpy(t + b.len - len, b.ptr, len);
        assert_int_equal(load(t + b.len - len, len), DM_ECORRUPT);
    }
    free(t);
    /* Bytes appended. */
    memcpy(c, b.ptr, b.len);
    memset(c + b.len, 0, 8);
    assert_int_equal(load(c, b.len + 8), DM_ECORRUPT);
    /* Every bit of the header and trailer, and random bits elsewhere. */
    tu_rng r;
    tu_rng_seed(&r, 9);
    for (size_t bit = 0; bit < b.len * 8; bit++) {
        bool edge = bit < HNSW_HEADER_LEN * 8 ||
                    bit >= (b.len - HNSW_TRAILER_LEN) * 8;
        if (!edge && tu_randn(&r, 16) != 0)
            continue;
        memcpy(c, b.ptr, b.len);
        c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(load(c, b.len), DM_ECORRUPT);
    }
    free(c);
    buf_fini(&b);
}

/* Offsets of the sections of the small checkpoint. */
typedef struct offs {
    size_t labels, meta, vectors, links0, upper;
} offs;

static offs offsets_of(uint32_t n)
{
    offs o;
    o.labels = HNSW_HEADER_LEN + HNSW_VDESC_LEN;
    o.meta = o.labels + 4 * (size_t)n;
    o.vectors = o.meta + ((n + 3) & ~3u);
    o.links0 = o.vectors + 4 * (size_t)n * CDIM;
    o.upper = o.links0 + 4 * (size_t)n * (1 + 2 * CM);
    return o;
}

/* Edit a u32 of a copy, reseal, load: expect rc and, if want_off is not
 * SIZE_MAX, "offset <want_off>" in the message. */
static void damage_u32(const buf *b, size_t off, uint32_t val, int want_rc,
                       size_t want_off)
{
    uint8_t *c = malloc(b->len);
    assert_non_null(c);
    memcpy(c, b->ptr, b->len);
    enc_u32(c + off, val);
    reseal(c, b->len);
    int rc = load(c, b->len);
    if (rc != want_rc) {
        print_error("u32 at %zu = %u: got %s (%s), want %s\n", off, val,
                    dm_errname(rc), err_last_msg(), dm_errname(want_rc));
        fail();
    }
    if (want_off != SIZE_MAX) {
        char s[64];
        snprintf(s, sizeof s, "offset %zu:", want_off);
        if (!strstr(err_last_msg(), s)) {
            print_error("message '%s' lacks '%s'\n", err_last_msg(), s);
            fail();
        }
    }
    free(c);
}

static void test_structural_damage(void **state)
{
    buf b;
    hnsw *h = NULL;
    small_checkpoint(&b, &h);
    offs o = offsets_of(CN);
    const size_t rec = 4 * (1 + 2 * CM);
    const size_t none = SIZE_MAX;

    /* Sanity: resealing unchanged bytes loads. */
    damage_u32(&b, HNSW_OFF_RNG_STATE, 12345, DM_OK, none);

    /* Header fields. */
    damage_u32(&b, HNSW_OFF_VERSION, 3, DM_EVERSION, none);
    damage_u32(&b, HNSW_OFF_VERSION, 0, DM_EVERSION, none);
    /* Version 1 has no vector descriptor: the sizes no longer add up. */
    damage_u32(&b, HNSW_OFF_VERSION, 1, DM_ECORRUPT, HNSW_OFF_BODY_LEN);
    /* The vector descriptor: unknown type, half precision where the
     * vectors are sized for float32, reserved word. */
    damage_u32(&b, HNSW_OFF_ELEM_TYPE, 2, DM_ECORRUPT, HNSW_OFF_ELEM_TYPE);
    damage_u32(&b, HNSW_OFF_ELEM_TYPE, UINT32_MAX, DM_ECORRUPT,
               HNSW_OFF_ELEM_TYPE);
    damage_u32(&b, HNSW_OFF_ELEM_TYPE, HNSW_ELEM_TYPE_F16, DM_ECORRUPT,
               HNSW_OFF_BODY_LEN);
    damage_u32(&b, HNSW_OFF_VDESC_RESERVED, 1, DM_ECORRUPT,
               HNSW_OFF_VDESC_RESERVED);
    damage_u32(&b, HNSW_OFF_FLAGS, 3, DM_ECORRUPT, HNSW_OFF_FLAGS);
    damage_u32(&b, HNSW_OFF_FLAGS, 0, DM_ECORRUPT, none);
    damage_u32(&b, HNSW_OFF_DIM, 0, DM_ECORRUPT, HNSW_OFF_DIM);
    damage_u32(&b, HNSW_OFF_DIM, CDIM + 1, DM_ECORRUPT, HNSW_OFF_BODY_LEN);
    damage_u32(&b, HNSW_OFF_M, 1, DM_ECORRUPT, HNSW_OFF_M);
    damage_u32(&b, HNSW_OFF_M, 100000, DM_ECORRUPT, HNSW_OFF_M);
    damage_u32(&b, HNSW_OFF_EF_CONSTRUCTION, 0, DM_ECORRUPT,
               HNSW_OFF_EF_CONSTRUCTION);
    damage_u32(&b, HNSW_OFF_N_NODES, CN + 1, DM_ECORRUPT, HNSW_OFF_BODY_LEN);
    damage_u32(&b, HNSW_OFF_N_NODES, UINT32_MAX, DM_ECORRUPT, HNSW_OFF_N_NODES);
    damage_u32(&b, HNSW_OFF_N_DELETED, CN + 1, DM_ECORRUPT, HNSW_OFF_N_DELETED);
    damage_u32(&b, HNSW_OFF_N_DELETED, 0, DM_ECORRUPT, HNSW_OFF_N_DELETED);
    damage_u32(&b, HNSW_OFF_ENTRY, CN, DM_ECORRUPT, HNSW_OFF_ENTRY);
    damage_u32(&b, HNSW_OFF_MAX_LEVEL, 40, DM_ECORRUPT, HNSW_OFF_MAX_LEVEL);
    damage_u32(&b, HNSW_OFF_MAX_LEVEL, 0, DM_ECORRUPT, HNSW_OFF_MAX_LEVEL);
    damage_u32(&b, HNSW_OFF_N_UPPER, 0, DM_ECORRUPT, HNSW_OFF_BODY_LEN);
    damage_u32(&b, b.len - HNSW_TRAILER_OFF_RESERVED, 1, DM_ECORRUPT,
               b.len - HNSW_TRAILER_OFF_RESERVED);
    /* body_len (u64 at 16): its low word. */
    damage_u32(&b, HNSW_OFF_BODY_LEN, 5, DM_ECORRUPT, HNSW_OFF_BODY_LEN);

    /* Find a live node with neighbours, a node of level >= 1, its list. */
    uint32_t node = 1;
    assert_true(dec_u32(b.ptr + o.links0 + node * rec) >= 2);
    size_t first = o.links0 + node * rec + 4;
    uint32_t second_id = dec_u32(b.ptr + first + 4);

    /* Links: out of range, itself, repeated, count too big, stray slot. */
    damage_u32(&b, first, CN, DM_ECORRUPT, first);
    damage_u32(&b, first, UINT32_MAX, DM_ECORRUPT, first);
    damage_u32(&b, first, node, DM_ECORRUPT, first);
    damage_u32(&b, first, second_id, DM_ECORRUPT, first + 4);
    damage_u32(&b, first - 4, 2 * CM + 1, DM_ECORRUPT, first - 4);
    uint32_t cnt = dec_u32(b.ptr + first - 4);
    if (cnt < 2 * CM)
        damage_u32(&b, first + 4 * (size_t)(2 * CM - 1), 5, DM_ECORRUPT,
                   first + 4 * (size_t)(2 * CM - 1));

    /* Upper layers: the first list of the pool belongs to the first node
     * of level >= 1; a link to a node without that layer is damage. */
    uint32_t up_node = UINT32_MAX, flat_node = UINT32_MAX;
    for (uint32_t i = 0; i < CN; i++) {
        uint8_t m = b.ptr[o.meta + i] & HNSW_META_LEVEL_MASK;
        if (m && up_node == UINT32_MAX)
            up_node = i;
        if (!m && flat_node == UINT32_MAX && i != up_node)
            flat_node = i;
    }
    assert_true(up_node != UINT32_MAX && flat_node != UINT32_MAX);
    uint32_t ucnt = dec_u32(b.ptr + o.upper);
    assert_true(ucnt >= 1);
    damage_u32(&b, o.upper + 4, flat_node, DM_ECORRUPT, o.upper + 4);
    damage_u32(&b, o.upper, CM + 1, DM_ECORRUPT, o.upper);

    /* Labels: reserved value, two live nodes with one label. */
    damage_u32(&b, o.labels + 4 * 3, UINT32_MAX, DM_ECORRUPT, o.labels + 4 * 3);
    damage_u32(&b, o.labels + 4 * 3, 2, DM_ECORRUPT, o.labels + 4 * 3);
    /* ... but a deleted node may share its label with a live one. */
    assert_true(b.ptr[o.meta + 0] & HNSW_META_DELETED);
    damage_u32(&b, o.labels, 2, DM_OK, none);

    /* Meta: reserved bits, a level change (upper pool no longer fits). */
    {
        uint8_t *c = malloc(b.len);
        memcpy(c, b.ptr, b.len);
        c[o.meta + 5] |= 0x20;
        reseal(c, b.len);
        assert_int_equal(load(c, b.len), DM_ECORRUPT);
        memcpy(c, b.ptr, b.len);
        c[o.meta + flat_node] += 1;
        reseal(c, b.len);
        assert_int_equal(load(c, b.len), DM_ECORRUPT);
        /* Deleted mark removed: count mismatch. */
        memcpy(c, b.ptr, b.len);
        c[o.meta + 0] &= (uint8_t)~HNSW_META_DELETED;
        reseal(c, b.len);
        assert_int_equal(load(c, b.len), DM_ECORRUPT);
        assert_non_null(strstr(err_last_msg(), "n_deleted"));
        /* Meta padding (300 nodes: none), so vectors: any value loads. */
        memcpy(c, b.ptr, b.len);
        enc_u32(c + o.vectors + 4, 0x7fc00000u); /* a NaN */
        reseal(c, b.len);
        assert_int_equal(load(c, b.len), DM_OK);
        free(c);
    }

    /* Random damage with a valid checksum: any result but a crash; a
     * checkpoint that loads passes hnsw_check (inside load()). */
    tu_rng r;
    tu_rng_seed(&r, 10);
    uint8_t *c = malloc(b.len);
    int n_ok = 0, n_bad = 0;
    for (int t = 0; t < 3000; t++) {
        memcpy(c, b.ptr, b.len);
        int flips = 1 + (int)tu_randn(&r, 3);
        for (int f = 0; f < flips; f++) {
            size_t at;
            switch (tu_randn(&r, 4)) {
            case 0: at = tu_randn(&r, HNSW_HEADER_LEN); break;
            case 1: at = o.labels + tu_randn(&r, o.vectors - o.labels); break;
            default: at = o.links0 + tu_randn(&r, b.len - 16 - o.links0); break;
            }
            c[at] ^= (uint8_t)(1u << tu_randn(&r, 8));
        }
        reseal(c, b.len);
        int rc = load(c, b.len);
        assert_true(rc == DM_OK || rc == DM_ECORRUPT || rc == DM_EVERSION);
        if (rc == DM_OK)
            n_ok++;
        else
            n_bad++;
    }
    print_message("resealed random damage: %d loaded, %d refused\n", n_ok, n_bad);
    assert_true(n_bad > 0);
    free(c);
    hnsw_free(h);
    buf_fini(&b);
}

/* ---------------------------------------------------- concurrent search */

typedef struct conc {
    const hnsw *h;
    const float *q;
    uint32_t nq, dim;
    const hnsw_hit *want; /* nq * 10 per mode */
    const uint32_t *want_n;
    _Atomic int mismatches;
} conc;

static void *searcher(void *arg)
{
    conc *c = arg;
    for (int rep = 0; rep < 2; rep++)
        for (uint32_t i = 0; i < c->nq; i++)
            for (int mode = 0; mode < 2; mode++) {
                hnsw_hit a[10];
                uint32_t na;
                int rc = hnsw_search(c->h, c->q + (size_t)i * c->dim, 10, 0,
                                     mode ? even_only : NULL, NULL, a, &na);
                size_t slot = (size_t)mode * c->nq + i;
                if (rc != DM_OK || na != c->want_n[slot] ||
                    memcmp(a, c->want + slot * 10, na * sizeof *a))
                    atomic_fetch_add(&c->mismatches, 1);
            }
    return NULL;
}

static void test_concurrent_search(void **state)
{
    const uint32_t dim = 16, n = 3000, nq = 100;
    float *v = clustered(n + nq, dim, 20, 0.6, 11);
    hnsw *h = new_index(dim, 8, 60, 100);
    add_all(h, v, n, dim, 0);
    for (uint32_t l = 0; l < n; l += 5)
        assert_int_equal(hnsw_delete(h, l), DM_OK);
    hnsw_hit *want = malloc(2 * nq * 10 * sizeof *want);
    uint32_t *want_n = malloc(2 * nq * sizeof *want_n);
    const float *q = v + (size_t)n * dim;
    for (int mode = 0; mode < 2; mode++)
        for (uint32_t i = 0; i < nq; i++) {
            size_t slot = (size_t)mode * nq + i;
            assert_int_equal(hnsw_search(h, q + (size_t)i * dim, 10, 0,
                                         mode ? even_only : NULL, NULL,
                                         want + slot * 10, &want_n[slot]),
                             DM_OK);
        }
    conc c = { h, q, nq, dim, want, want_n, 0 };
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, searcher, &c), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&c.mismatches), 0);
    size_t mem = hnsw_memsize(h);
    assert_true(mem > (size_t)n * dim * sizeof(float));
    free(want);
    free(want_n);
    hnsw_free(h);
    free(v);
}

/* --------------------------------------------------- allocation failure */

/*
 * fail_each -- run op on the index with the k-th allocation failing, for
 * k = 1, 2, ... until op succeeds without an injected failure.  Every
 * failure must be DM_ENOMEM with the index byte-for-byte as before; the
 * index must pass hnsw_check and accept the same op afterwards.
 */
typedef int (*op_fn)(hnsw *h, void *arg);

static void fail_each(hnsw *h, op_fn op, void *arg)
{
    buf before;
    serialize(h, &before);
    for (int64_t k = 1;; k++) {
        int64_t f0 = alloc_failures();
        alloc_fail_after(k, 0);
        int rc = op(h, arg);
        alloc_fail_after(0, 0);
        bool fired = alloc_failures() > f0;
        if (rc == DM_OK) {
            if (!fired)
                break;
            /* A failure that did not matter (a candidate heap could not
             * grow): the op still succeeded.  Undo is not possible, so
             * stop here; the index must be sound. */
            check_ok(h);
            break;
        }
        assert_int_equal(rc, DM_ENOMEM);
        assert_true(fired);
        check_ok(h);
        buf now;
        serialize(h, &now);
        assert_int_equal(now.len, before.len);
        assert_memory_equal(now.ptr, before.ptr, now.len);
        buf_fini(&now);
        assert_true(k < 100);
    }
    buf_fini(&before);
    check_ok(h);
}

typedef struct add_arg {
    uint32_t label;
    const float *vec;
} add_arg;

static int op_add(hnsw *h, void *arg)
{
    add_arg *a = arg;
    return hnsw_add(h, a->label, a->vec);
}

static void test_alloc_failure(void **state)
{
    const uint32_t dim = 12, n = 400;
    float *v = clustered(n + 10, dim, 10, 0.5, 12);
    hnsw *h = new_index(dim, 6, 30, 200);
    /* Flat adds, including the one that grows the arrays (at 64) and a
     * label far beyond the map. */
    for (uint32_t i = 0; i < 70; i++) {
        add_arg a = { i, v + (size_t)i * dim };
        fail_each(h, op_add, &a);
    }
    add_arg big = { 100000, v + (size_t)70 * dim };
    fail_each(h, op_add, &big);
    add_all(h, v + (size_t)71 * dim, 128, dim, 71);
    assert_int_equal(hnsw_count(h), 199);
    /* The add that builds the graph. */
    add_arg t = { 199, v + (size_t)199 * dim };
    fail_each(h, op_add, &t);
    assert_int_equal(hnsw_has_graph(h), 1);
    /* Graph adds, across a capacity growth, and replacements. */
    for (uint32_t i = 200; i < 260; i++) {
        add_arg a = { i, v + (size_t)i * dim };
        fail_each(h, op_add, &a);
    }
    for (uint32_t i = 0; i < 5; i++) {
        add_arg a = { i, v + (size_t)(300 + i) * dim };
        fail_each(h, op_add, &a);
    }
    add_arg big2 = { 300000, v + (size_t)310 * dim };
    fail_each(h, op_add, &big2);
    check_ok(h);
    double r = recall(h, v + (size_t)n * dim, 10, dim, 5, 32, NULL, NULL);
    assert_true(r >= 0.9);

    /* Search: a fresh pool needs memory; failure is DM_ENOMEM. */
    buf b;
    serialize(h, &b);
    hnsw *g = NULL;
    hnsw_params p = *hnsw_get_params(h);
    for (int64_t k = 1;; k++) {
        alloc_fail_after(k, 0);
        int rc = hnsw_deserialize(&p, buf_slice_of(b.ptr, b.len), &g);
        alloc_fail_after(0, 0);
        if (rc == DM_OK)
            break;
        assert_int_equal(rc, DM_ENOMEM);
        assert_null(g);
        assert_true(k < 100);
    }
    hnsw_hit hits[5];
    uint32_t nh = 9;
    alloc_fail_after(1, 1);
    int rc = hnsw_search(g, v, 5, 0, NULL, NULL, hits, &nh);
    alloc_fail_after(0, 0);
    assert_int_equal(rc, DM_ENOMEM);
    assert_int_equal(nh, 0);
    /* The exact scan needs no memory. */
    alloc_fail_after(1, 1);
    rc = hnsw_search_exact(g, v, 5, NULL, NULL, hits, &nh);
    alloc_fail_after(0, 0);
    assert_int_equal(rc, DM_OK);
    assert_int_equal(nh, 5);
    assert_int_equal(hnsw_search(g, v, 5, 0, NULL, NULL, hits, &nh), DM_OK);
    assert_int_equal(nh, 5);
    /* Serialize into a buffer that cannot grow. */
    buf out;
    buf_init(&out);
    assert_int_equal(buf_append(&out, "x", 1), DM_OK);
    alloc_fail_after(1, 1);
    rc = hnsw_serialize(g, &out);
    alloc_fail_after(0, 0);
    assert_int_equal(rc, DM_ENOMEM);
    assert_int_equal(out.len, 1);
    buf_fini(&out);
    /* After hnsw_reserve, flat adds need no memory at all. */
    hnsw *pre = new_index(dim, 6, 30, 1000);
    assert_int_equal(hnsw_reserve(pre, 300), DM_OK);
    alloc_fail_after(1, 1);
    for (uint32_t i = 0; i < 300; i++)
        if (hnsw_add(pre, i * 7, v + (size_t)i * dim) != DM_OK)
            fail_msg("add %u needed memory after hnsw_reserve", i);
    alloc_fail_after(0, 0);
    assert_int_equal(hnsw_count(pre), 300);
    check_ok(pre);
    alloc_fail_after(1, 0);
    assert_int_equal(hnsw_reserve(pre, 5000), DM_ENOMEM);
    alloc_fail_after(0, 0);
    check_ok(pre);
    hnsw_free(pre);
    /* hnsw_new. */
    hnsw *e = NULL;
    alloc_fail_after(1, 0);
    assert_int_equal(hnsw_new(&p, &e), DM_ENOMEM);
    alloc_fail_after(0, 0);
    assert_null(e);

    hnsw_free(g);
    buf_fini(&b);
    hnsw_free(h);
    free(v);
}

/* ------------------------------------------------------ half precision */

/* Mean recall@k of h's graph search against the exact scan of ref (an
 * index of the same labels, e.g. the float32 one), by label. */
static double recall_vs(const hnsw *h, const hnsw *ref, const float *q,
                        uint32_t nq, uint32_t dim, uint32_t k, uint32_t ef)
{
    hnsw_hit a[10], b[10];
    assert_true(k <= 10);
    double total = 0;
    for (uint32_t i = 0; i < nq; i++) {
        uint32_t na, nb;
        const float *qi = q + (size_t)i * dim;
        assert_int_equal(hnsw_search(h, qi, k, ef, NULL, NULL, a, &na), DM_OK);
        assert_int_equal(hnsw_search_exact(ref, qi, k, NULL, NULL, b, &nb), DM_OK);
        uint32_t hit = 0;
        for (uint32_t x = 0; x < na; x++)
            for (uint32_t y = 0; y < nb; y++)
                hit += a[x].label == b[y].label;
        total += nb ? (double)hit / nb : 1.0;
    }
    return total / nq;
}

/* label's stored vector must be the rounding of src (dim floats). */
static void assert_stored_f16(const hnsw *h, uint32_t label, const float *src,
                              uint32_t dim)
{
    float out[64];
    assert_true(dim <= 64);
    assert_null(hnsw_vector(h, label));
    assert_int_equal(hnsw_get_vector(h, label, out), DM_OK);
    for (uint32_t j = 0; j < dim; j++)
        if (out[j] != f16_round(src[j]))
            fail_msg("label %u [%u]: %a, want %a", label, j, (double)out[j],
                     (double)f16_round(src[j]));
}

static void test_f16_index(void **state)
{
    const uint32_t dim = 23, n = 3001, nq = 100;
    float *v = clustered(n + nq, dim, 40, 0.6, 15);
    const float *q = v + (size_t)n * dim;
    hnsw *h = new_index_elem(dim, 12, 100, 200, HNSW_ELEM_F16);
    hnsw *g = new_index(dim, 12, 100, 200);
    add_all(h, v, n, dim, 0);
    add_all(g, v, n, dim, 0);
    assert_int_equal(hnsw_has_graph(h), 1);
    assert_int_equal(hnsw_get_params(h)->elem, HNSW_ELEM_F16);
    check_ok(h);

    /* The stored values are the rounded inputs; there is no float32 view. */
    for (uint32_t l = 0; l < n; l += 7)
        assert_stored_f16(h, l, v + (size_t)l * dim, dim);

    /* hnsw_similarity: the exact scan's value, and the inner product with
     * the stored values. */
    for (uint32_t i = 0; i < 20; i++) {
        const float *qi = q + (size_t)i * dim;
        hnsw_hit b[5];
        uint32_t nb;
        assert_int_equal(hnsw_search_exact(h, qi, 5, NULL, NULL, b, &nb), DM_OK);
        assert_int_equal(nb, 5);
        for (uint32_t x = 0; x < nb; x++) {
            float sim = -9;
            assert_int_equal(hnsw_similarity(h, qi, b[x].label, &sim), DM_OK);
            assert_true(sim == b[x].sim);
            double ref = 0;
            for (uint32_t j = 0; j < dim; j++)
                ref += (double)qi[j] * f16_round(v[(size_t)b[x].label * dim + j]);
            assert_true(fabs(sim - ref) < 1e-5);
        }
    }

    /* Recall: against the exact scan of the same index, and against the
     * float32 ground truth (rounding costs no neighbours). */
    double r_same = recall(h, q, nq, dim, 10, 64, NULL, NULL);
    double r_f32 = recall_vs(h, g, q, nq, dim, 10, 64);
    double r_f32_exact = 0;
    for (uint32_t i = 0; i < nq; i++) {
        hnsw_hit a[10], b[10];
        uint32_t na, nb;
        hnsw_search_exact(h, q + (size_t)i * dim, 10, NULL, NULL, a, &na);
        hnsw_search_exact(g, q + (size_t)i * dim, 10, NULL, NULL, b, &nb);
        for (uint32_t x = 0; x < na; x++)
            for (uint32_t y = 0; y < nb; y++)
                r_f32_exact += a[x].label == b[y].label;
    }
    r_f32_exact /= nq * 10.0;
    print_message("f16 recall@10 ef 64: vs own exact %.4f, vs float32 exact %.4f; "
                  "f16 exact vs float32 exact %.4f\n", r_same, r_f32, r_f32_exact);
    assert_true(r_same >= 0.95);
    assert_true(r_f32 >= 0.95);
    assert_true(r_f32_exact >= 0.98);
    double rf = recall(h, q, nq, dim, 10, 24, even_only, NULL);
    assert_true(rf >= 0.95);

    /* Memory: the same index but for half the vector bytes (stride 24). */
    size_t m16 = hnsw_memsize(h), m32 = hnsw_memsize(g);
    print_message("memsize: f32 %zu, f16 %zu bytes\n", m32, m16);
    assert_true(m32 > m16 && m32 - m16 >= (size_t)n * 24 * 2);

    /* Replace and delete in graph mode. */
    for (uint32_t l = 0; l < 50; l++) {
        const float *nv = v + (size_t)(n - 1 - l) * dim;
        assert_int_equal(hnsw_add(h, l, nv), DM_OK);
        assert_stored_f16(h, l, nv, dim);
    }
    for (uint32_t l = 100; l < 150; l++)
        assert_int_equal(hnsw_delete(h, l), DM_OK);
    float out[23], sim = 5;
    for (uint32_t j = 0; j < dim; j++)
        out[j] = 7;
    assert_int_equal(hnsw_get_vector(h, 120, out), DM_ENOTFOUND);
    for (uint32_t j = 0; j < dim; j++)
        assert_true(out[j] == 0.0f);
    assert_int_equal(hnsw_similarity(h, q, 120, &sim), DM_ENOTFOUND);
    assert_true(sim == 0.0f);
    assert_int_equal(hnsw_similarity(h, q, 999999, &sim), DM_ENOTFOUND);
    assert_int_equal(hnsw_count(h), n - 50);
    check_ok(h);
    assert_true(recall(h, q, nq, dim, 10, 64, NULL, NULL) >= 0.95);
    hnsw_free(h);
    hnsw_free(g);

    /* Flat mode: exact search on the stored values; deletion moves the
     * last row into the hole. */
    h = new_index_elem(dim, 8, 50, 10000, HNSW_ELEM_F16);
    add_all(h, v, 300, dim, 0);
    for (uint32_t l = 0; l < 300; l += 4)
        assert_int_equal(hnsw_delete(h, l), DM_OK);
    assert_int_equal(hnsw_add(h, 1, v + 400 * (size_t)dim), DM_OK);
    check_ok(h);
    for (uint32_t l = 0; l < 300; l++) {
        if (l % 4 == 0)
            assert_int_equal(hnsw_get_vector(h, l, out), DM_ENOTFOUND);
        else
            assert_stored_f16(h, l, v + (size_t)(l == 1 ? 400 : l) * dim, dim);
    }
    for (uint32_t i = 0; i < 20; i++) {
        const float *qi = q + (size_t)i * dim;
        hnsw_hit a[3];
        uint32_t na;
        assert_int_equal(hnsw_search(h, qi, 3, 0, NULL, NULL, a, &na), DM_OK);
        float best = -2;
        uint32_t best_l = 0;
        for (uint32_t l = 0; l < 300; l++) {
            if (hnsw_similarity(h, qi, l, &sim) == DM_OK &&
                (sim > best || (sim == best && l < best_l))) {
                best = sim;
                best_l = l;
            }
        }
        assert_int_equal(a[0].label, best_l);
        assert_true(a[0].sim == best);
    }
    hnsw_free(h);

    /* Allocation failure: the add that builds the graph and graph adds
     * leave a half-precision index exactly as it was. */
    h = new_index_elem(dim, 6, 30, 60, HNSW_ELEM_F16);
    add_all(h, v, 59, dim, 0);
    for (uint32_t i = 59; i < 70; i++) {
        add_arg a = { i, v + (size_t)i * dim };
        fail_each(h, op_add, &a);
    }
    assert_int_equal(hnsw_has_graph(h), 1);
    assert_int_equal(hnsw_count(h), 70);
    hnsw_free(h);
    free(v);
}

static void test_get_vector_similarity(void **state)
{
    /* Float32: hnsw_get_vector copies exactly what hnsw_vector shows, and
     * hnsw_similarity is the exact scan's similarity; flat and graph. */
    const uint32_t dim = 13, n = 500;
    float *v = clustered(n + 20, dim, 10, 0.5, 16);
    for (int mode = 0; mode < 2; mode++) {
        hnsw *h = new_index(dim, 8, 40, mode ? 100 : 1000);
        add_all(h, v, n, dim, 1000);
        assert_int_equal(hnsw_has_graph(h), mode);
        float out[13];
        for (uint32_t i = 0; i < n; i++) {
            assert_int_equal(hnsw_get_vector(h, 1000 + i, out), DM_OK);
            assert_memory_equal(out, v + (size_t)i * dim, sizeof out);
            assert_memory_equal(hnsw_vector(h, 1000 + i), out, sizeof out);
        }
        for (uint32_t i = 0; i < 20; i++) {
            const float *qi = v + (size_t)(n + i) * dim;
            hnsw_hit b[10];
            uint32_t nb;
            assert_int_equal(hnsw_search_exact(h, qi, 10, NULL, NULL, b, &nb),
                             DM_OK);
            for (uint32_t x = 0; x < nb; x++) {
                float sim;
                assert_int_equal(hnsw_similarity(h, qi, b[x].label, &sim), DM_OK);
                assert_true(sim == b[x].sim);
                assert_true(sim == dist_dot(qi, hnsw_vector(h, b[x].label), dim));
            }
        }
        assert_int_equal(hnsw_delete(h, 1003), DM_OK);
        float sim = 3;
        for (uint32_t j = 0; j < dim; j++)
            out[j] = 7;
        assert_int_equal(hnsw_get_vector(h, 1003, out), DM_ENOTFOUND);
        for (uint32_t j = 0; j < dim; j++)
            assert_true(out[j] == 0.0f);
        assert_int_equal(hnsw_similarity(h, v, 1003, &sim), DM_ENOTFOUND);
        assert_true(sim == 0.0f);
        assert_int_equal(hnsw_get_vector(h, 5, out), DM_ENOTFOUND);
        assert_int_equal(hnsw_similarity(h, v, UINT32_MAX, &sim), DM_ENOTFOUND);
        hnsw_free(h);
    }
    free(v);
}

/* ------------------------------------------------------------ version 1 */

/* The worked example of docs/format.md ("HNSW index checkpoint"): a
 * version-1 checkpoint as the float32 code wrote it.  dim 2, M 2, labels
 * 7 (1, 0), 8 (0, 1) deleted, 9 (0.6, 0.8). */
static const char v1_example[] =
    "444d4444484e5331010000000100000088000000000000000200000002000000"
    "0800000003000000010000000100000002000000090000006974df7d2c6da6da"
    "070000000800000009000000008201000000803f00000000000000000000803f"
    "9a99193fcdcc4c3f020000000100000002000000000000000000000002000000"
    "0000000002000000000000000000000002000000010000000000000000000000"
    "0000000001000000020000000000000000000000000000000000000001000000"
    "01000000000000006eaa2cb100000000444d4444484e5331";

static size_t unhex(const char *s, uint8_t *out)
{
    size_t n = 0;
    for (; s[0] && s[1]; s += 2) {
        unsigned x;
        assert_int_equal(sscanf(s, "%2x", &x), 1);
        out[n++] = (uint8_t)x;
    }
    return n;
}

/* A version-2 float32 checkpoint rewritten as version 1: the vector
 * descriptor removed, version and body_len adjusted, resealed. */
static void to_v1(const buf *v2, buf *v1)
{
    buf_init(v1);
    assert_int_equal(buf_append(v1, v2->ptr, HNSW_HEADER_LEN), DM_OK);
    assert_int_equal(buf_append(v1, v2->ptr + HNSW_HEADER_LEN + HNSW_VDESC_LEN,
                                v2->len - HNSW_HEADER_LEN - HNSW_VDESC_LEN),
                     DM_OK);
    enc_u32(v1->ptr + HNSW_OFF_VERSION, HNSW_VERSION_1);
    enc_u64(v1->ptr + HNSW_OFF_BODY_LEN,
            dec_u64(v1->ptr + HNSW_OFF_BODY_LEN) - HNSW_VDESC_LEN);
    reseal(v1->ptr, v1->len);
}

static void test_checkpoint_v1(void **state)
{
    /* The documented example loads, answers as documented, and writing it
     * again gives version 2 with the same content. */
    uint8_t ex[256];
    size_t ex_len = unhex(v1_example, ex);
    assert_int_equal(ex_len, 216);
    hnsw_params p = hnsw_params_default(2);
    p.elem = HNSW_ELEM_F16; /* ignored: the checkpoint says float32 */
    hnsw *h = NULL;
    int rc = hnsw_deserialize(&p, buf_slice_of(ex, ex_len), &h);
    if (rc != DM_OK)
        fail_msg("example: %s", err_last_msg());
    check_ok(h);
    assert_int_equal(hnsw_get_params(h)->elem, HNSW_ELEM_F32);
    assert_int_equal(hnsw_get_params(h)->M, 2);
    assert_int_equal(hnsw_get_params(h)->ef_construction, 8);
    assert_int_equal(hnsw_count(h), 2);
    assert_int_equal(hnsw_deleted(h), 1);
    assert_int_equal(hnsw_has_graph(h), 1);
    const float q[2] = { 0.6f, 0.8f };
    hnsw_hit a[3];
    uint32_t na;
    hnsw_params sp = *hnsw_get_params(h);
    assert_true(sp.flat_threshold > 2); /* the exact scan answers: fine */
    assert_int_equal(hnsw_search(h, q, 3, 0, NULL, NULL, a, &na), DM_OK);
    assert_int_equal(na, 2);
    assert_int_equal(a[0].label, 9);
    assert_true(fabsf(a[0].sim - 1.0f) < 1e-6f);
    assert_int_equal(a[1].label, 7);
    assert_true(fabsf(a[1].sim - 0.6f) < 1e-6f);
    float out[2];
    assert_int_equal(hnsw_get_vector(h, 9, out), DM_OK);
    assert_true(out[0] == 0.6f && out[1] == 0.8f);
    assert_null(hnsw_vector(h, 8));
    buf b2, b1;
    serialize(h, &b2);
    assert_int_equal(b2.len, ex_len + HNSW_VDESC_LEN);
    assert_int_equal(dec_u32(b2.ptr + HNSW_OFF_VERSION), HNSW_VERSION);
    assert_int_equal(dec_u32(b2.ptr + HNSW_OFF_ELEM_TYPE), HNSW_ELEM_TYPE_F32);
    assert_int_equal(dec_u32(b2.ptr + HNSW_OFF_VDESC_RESERVED), 0);
    to_v1(&b2, &b1);
    assert_int_equal(b1.len, ex_len);
    assert_memory_equal(b1.ptr, ex, ex_len);
    buf_fini(&b1);
    buf_fini(&b2);
    hnsw_free(h);
    /* The example relabelled version 2 lacks the descriptor. */
    enc_u32(ex + HNSW_OFF_VERSION, HNSW_VERSION);
    reseal(ex, ex_len);
    assert_int_equal(load(ex, ex_len), DM_ECORRUPT);

    /* A larger graph with deletions and replacements, padded rows. */
    const uint32_t dim = 5, n = 1500;
    float *v = clustered(n + 200, dim, 15, 0.5, 17);
    h = new_index(dim, 6, 40, 100);
    add_all(h, v, n, dim, 0);
    for (uint32_t l = 0; l < n; l += 9)
        assert_int_equal(hnsw_delete(h, l), DM_OK);
    for (uint32_t l = 1; l < 100; l += 9)
        assert_int_equal(hnsw_add(h, l, v + (size_t)(n + l) * dim), DM_OK);
    serialize(h, &b2);
    to_v1(&b2, &b1);
    hnsw *g = NULL;
    p = *hnsw_get_params(h);
    rc = hnsw_deserialize(&p, buf_slice_of(b1.ptr, b1.len), &g);
    if (rc != DM_OK)
        fail_msg("converted: %s", err_last_msg());
    check_ok(g);
    assert_params_equal(hnsw_get_params(g), &p);
    for (uint32_t i = 0; i < 100; i++) {
        const float *qi = v + (size_t)(n + 100 + i) * dim;
        hnsw_hit x[10], y[10];
        uint32_t nx, ny;
        assert_int_equal(hnsw_search(h, qi, 10, 0, NULL, NULL, x, &nx), DM_OK);
        assert_int_equal(hnsw_search(g, qi, 10, 0, NULL, NULL, y, &ny), DM_OK);
        assert_int_equal(nx, ny);
        assert_memory_equal(x, y, nx * sizeof *x);
    }
    buf b3;
    serialize(g, &b3);
    assert_int_equal(b3.len, b2.len);
    assert_memory_equal(b3.ptr, b2.ptr, b2.len);
    /* Version 1 is validated like version 2: truncations and flips. */
    for (size_t cut = 0; cut < b1.len; cut += 97)
        assert_int_equal(load_any(b1.ptr, cut), DM_ECORRUPT);
    uint8_t *c = malloc(b1.len);
    assert_non_null(c);
    for (size_t bit = 0; bit < HNSW_HEADER_LEN * 8; bit++) {
        memcpy(c, b1.ptr, b1.len);
        c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(load_any(c, b1.len), DM_ECORRUPT);
    }
    /* A link out of range, resealed. */
    memcpy(c, b1.ptr, b1.len);
    uint32_t nn = dec_u32(b1.ptr + HNSW_OFF_N_NODES);
    assert_true(nn > n); /* the replacements added nodes */
    size_t links0 = HNSW_HEADER_LEN + 4 * (size_t)nn + ((nn + 3) & ~3u) +
                    4 * (size_t)nn * dim;
    enc_u32(c + links0 + 4, nn + 5);
    reseal(c, b1.len);
    assert_int_equal(load_any(c, b1.len), DM_ECORRUPT);
    char want[64];
    snprintf(want, sizeof want, "offset %zu:", links0 + 4);
    assert_non_null(strstr(err_last_msg(), want));
    free(c);
    buf_fini(&b1);
    buf_fini(&b2);
    buf_fini(&b3);
    hnsw_free(g);
    hnsw_free(h);

    /* A half-precision checkpoint cannot pass for version 1. */
    h = new_index_elem(dim, 6, 40, 100, HNSW_ELEM_F16);
    add_all(h, v, 300, dim, 0);
    serialize(h, &b2);
    to_v1(&b2, &b1);
    assert_int_equal(load_any(b1.ptr, b1.len), DM_ECORRUPT);
    snprintf(want, sizeof want, "offset %d:", HNSW_OFF_BODY_LEN);
    assert_non_null(strstr(err_last_msg(), want));
    buf_fini(&b1);
    buf_fini(&b2);
    hnsw_free(h);
    free(v);
}

static void test_checkpoint_f16_layout(void **state)
{
    /* 7 nodes of 3 components, flat: the binary16 vectors take 42 bytes,
     * padded by 2 to a multiple of 4. */
    const uint32_t dim = 3, n = 7;
    float v[7 * 3];
    tu_rng r;
    tu_rng_seed(&r, 18);
    for (uint32_t i = 0; i < n * dim; i++)
        v[i] = (float)gauss(&r);
    v[0] = 1e-7f;    /* a binary16 subnormal */
    v[1] = 70000.0f; /* beyond the range: infinity */
    hnsw *h = new_index_elem(dim, 4, 10, 100, HNSW_ELEM_F16);
    add_all(h, v, n, dim, 20);
    buf b;
    serialize(h, &b);
    size_t labels = HNSW_HEADER_LEN + HNSW_VDESC_LEN, meta = labels + 4 * n,
           vectors = meta + 8, pad = vectors + 2 * n * dim, end = pad + 2;
    assert_int_equal(b.len, end + HNSW_TRAILER_LEN);
    assert_int_equal(dec_u32(b.ptr + HNSW_OFF_VERSION), HNSW_VERSION);
    assert_int_equal(dec_u64(b.ptr + HNSW_OFF_BODY_LEN), end - HNSW_HEADER_LEN);
    assert_int_equal(dec_u32(b.ptr + HNSW_OFF_ELEM_TYPE), HNSW_ELEM_TYPE_F16);
    assert_int_equal(dec_u32(b.ptr + HNSW_OFF_VDESC_RESERVED), 0);
    assert_int_equal(dec_u32(b.ptr + labels + 4), 21);
    for (uint32_t i = 0; i < n * dim; i++)
        assert_int_equal(dec_u16(b.ptr + vectors + 2 * i), dist_f32_to_f16(v[i]));
    assert_int_equal(dec_u16(b.ptr + vectors), 0x0002); /* 1e-7 = 1.68 units */
    assert_int_equal(dec_u16(b.ptr + vectors + 2), 0x7c00);
    assert_int_equal(dec_u16(b.ptr + pad), 0);
    /* Loads as half precision whatever the caller's params say. */
    hnsw *g = NULL;
    hnsw_params p = hnsw_params_default(dim);
    assert_int_equal(hnsw_deserialize(&p, buf_slice_of(b.ptr, b.len), &g), DM_OK);
    assert_int_equal(hnsw_get_params(g)->elem, HNSW_ELEM_F16);
    for (uint32_t i = 0; i < n; i++)
        assert_stored_f16(g, 20 + i, v + (size_t)i * dim, dim);
    hnsw_free(g);
    /* Damage to the padding. */
    uint8_t *c = malloc(b.len);
    assert_non_null(c);
    memcpy(c, b.ptr, b.len);
    c[pad + 1] = 1;
    reseal(c, b.len);
    assert_int_equal(load_any(c, b.len), DM_ECORRUPT);
    char want[64];
    snprintf(want, sizeof want, "offset %zu:", pad + 1);
    assert_non_null(strstr(err_last_msg(), want));
    /* Any vector bits load (NaN included). */
    memcpy(c, b.ptr, b.len);
    c[vectors + 5] = 0x7e;
    reseal(c, b.len);
    assert_int_equal(load_any(c, b.len), DM_OK);
    free(c);
    buf_fini(&b);
    hnsw_free(h);
}

/* ------------------------------------------------------------- segments */

static void test_segments(void **state)
{
    /* Rows of 16 KiB (4096 float32): a full segment holds 512 rows, so
     * this index spans two segments, grows its short last segment after
     * an exact load, and runs out of memory in the middle of appending a
     * segment.  (The segment code does not depend on the element type.) */
    const uint32_t dim = 4096, n = 700, nq = 20;
    float *v = clustered(n + 300 + nq, dim, 20, 0.3, 19);
    const float *q = v + (size_t)(n + 300) * dim;
    hnsw *h = new_index(dim, 4, 16, 1);
    add_all(h, v, n, dim, 0);
    check_ok(h);
    assert_int_equal(hnsw_count(h), n);
    double r = recall(h, q, nq, dim, 5, 32, NULL, NULL);
    print_message("%u rows of %u floats: recall@5 %.3f\n", n, dim, r);
    assert_true(r >= 0.9);
    float *out = malloc(dim * sizeof *out);
    assert_non_null(out);
    for (uint32_t l = 0; l < n; l += 37) {
        assert_int_equal(hnsw_get_vector(h, l, out), DM_OK);
        assert_memory_equal(out, v + (size_t)l * dim, dim * sizeof *out);
    }
    free(out);
    /* Loaded exactly (512 + 188 rows), then grown: the same index as the
     * original. */
    round_trip(h, q, nq, dim);
    buf b;
    serialize(h, &b);
    hnsw *g = NULL;
    hnsw_params p = *hnsw_get_params(h);
    assert_int_equal(hnsw_deserialize(&p, buf_slice_of(b.ptr, b.len), &g), DM_OK);
    for (uint32_t i = n; i < n + 300; i++) {
        assert_int_equal(hnsw_add(h, i, v + (size_t)i * dim), DM_OK);
        assert_int_equal(hnsw_add(g, i, v + (size_t)i * dim), DM_OK);
    }
    check_ok(g);
    buf b1, b2;
    serialize(h, &b1);
    serialize(g, &b2);
    assert_int_equal(b1.len, b2.len);
    assert_memory_equal(b1.ptr, b2.ptr, b1.len);
    buf_fini(&b);
    buf_fini(&b1);
    buf_fini(&b2);
    hnsw_free(g);
    hnsw_free(h);

    /* Allocation failure while the capacity grows from 472 to 590 rows,
     * across the 512-row segment boundary. */
    h = new_index(dim, 4, 16, 1);
    add_all(h, v, 472, dim, 0);
    add_arg a = { 472, v + (size_t)472 * dim };
    fail_each(h, op_add, &a);
    add_all(h, v + 473 * (size_t)dim, 60, dim, 473);
    check_ok(h);
    r = recall(h, q, nq, dim, 5, 32, NULL, NULL);
    print_message("after the failures, 533 rows: recall@5 %.3f\n", r);
    assert_true(r >= 0.9);
    hnsw_free(h);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_flat_exact),
        cmocka_unit_test(test_exact_order),
        cmocka_unit_test(test_recall_graph),
        cmocka_unit_test(test_threshold_transition),
        cmocka_unit_test(test_add_replace_delete),
        cmocka_unit_test(test_label_model),
        cmocka_unit_test(test_delete_routing),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_truncation_and_flips),
        cmocka_unit_test(test_structural_damage),
        cmocka_unit_test(test_concurrent_search),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_f16_index),
        cmocka_unit_test(test_get_vector_similarity),
        cmocka_unit_test(test_checkpoint_v1),
        cmocka_unit_test(test_checkpoint_f16_layout),
        cmocka_unit_test(test_segments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
