/*
 * test_distance.c -- the vector kernels: the AVX2 kernels against the
 * portable ones and against a double-precision reference on every
 * dimension from 1 to 300 and a few large ones, unaligned inputs, no read
 * past the last element, and normalisation.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "index/distance.h"

static float frand(tu_rng *r)
{
    return (float)((double)(tu_rand(r) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

static double ref_dot(const float *a, const float *b, size_t n, double *mag)
{
    double s = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        s += (double)a[i] * b[i];
        m += fabs((double)a[i] * b[i]);
    }
    *mag = m;
    return s;
}

static double ref_l2sq(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        s += d * d;
    }
    return s;
}

/* Float rounding of a sum of n terms: a relative error of a few n*eps of
 * the sum of magnitudes. */
static void assert_close(double got, double want, double mag, size_t n)
{
    double tol = 4.0 * (double)(n + 8) * 1.2e-7 * (mag + 1e-30) + 1e-30;
    if (fabs(got - want) > tol) {
        print_error("got %.9g want %.9g (tol %.3g, n %zu)\n", got, want, tol, n);
        fail();
    }
}

static void check_kernels(const dist_kernels *k, tu_rng *r, size_t dim,
                          size_t misalign)
{
    float *a = malloc((dim + 8) * sizeof *a);
    float *b = malloc((dim + 8) * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    float *pa = a + misalign, *pb = b + (misalign ? 8 - misalign : 0);
    for (size_t i = 0; i < dim; i++) {
        pa[i] = frand(r);
        pb[i] = frand(r);
    }
    double mag;
    double d = ref_dot(pa, pb, dim, &mag);
    assert_close(k->dot(pa, pb, dim), d, mag, dim);
    double l = ref_l2sq(pa, pb, dim);
    assert_close(k->l2sq(pa, pb, dim), l, l, dim);
    free(a);
    free(b);
}

static void test_kernels_all_dims(void **state)
{
    const dist_kernels *kp = dist_kernels_get("portable");
    const dist_kernels *ka = dist_kernels_get("avx2");
    assert_non_null(kp);
    print_message("active kernel: %s; avx2 %savailable\n", dist_kernel_name(),
                  ka ? "" : "not ");
    tu_rng r;
    tu_rng_seed(&r, 11);
    static const size_t big[] = { 384, 512, 768, 1000, 1023, 1536, 4096 };
    for (size_t dim = 1; dim <= 300; dim++)
        for (size_t mis = 0; mis < 3; mis++) {
            check_kernels(kp, &r, dim, mis);
            if (ka)
                check_kernels(ka, &r, dim, mis);
        }
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        check_kernels(kp, &r, big[i], 1);
        if (ka)
            check_kernels(ka, &r, big[i], 1);
    }
}

static void test_kernels_agree(void **state)
{
    /* The two kernels agree with each other to float rounding, and the
     * dispatching entry points use the active set. */
    const dist_kernels *kp = dist_kernels_get("portable");
    const dist_kernels *ka = dist_kernels_get("avx2");
    const dist_kernels *act = dist_kernels_active();
    assert_string_equal(act->name, dist_kernel_name());
    assert_true(act == kp || act == ka);
    assert_null(dist_kernels_get("sse9"));
    assert_null(dist_kernels_get(NULL));
    tu_rng r;
    tu_rng_seed(&r, 12);
    float a[257], b[257];
    for (size_t dim = 1; dim <= 257; dim += 7) {
        for (size_t i = 0; i < dim; i++) {
            a[i] = frand(&r);
            b[i] = frand(&r);
        }
        double mag;
        ref_dot(a, b, dim, &mag);
        assert_close(dist_dot(a, b, dim), kp->dot(a, b, dim), mag, dim);
        assert_true(dist_dot(a, b, dim) == act->dot(a, b, dim));
        assert_true(dist_l2sq(a, b, dim) == act->l2sq(a, b, dim));
        if (ka)
            assert_close(ka->dot(a, b, dim), kp->dot(a, b, dim), mag, dim);
    }
    assert_true(dist_dot(a, b, 0) == 0.0f);
    assert_true(dist_l2sq(a, b, 0) == 0.0f);
}

static void test_no_overread(void **state)
{
    /* Vectors that end exactly at an inaccessible page: a kernel that
     * reads one float too many faults. */
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *m = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    assert_int_equal(mprotect(m + page, (size_t)page, PROT_NONE), 0);
    float *end = (float *)(void *)(m + page);
    const char *names[] = { "portable", "avx2" };
    for (int k = 0; k < 2; k++) {
        const dist_kernels *ks = dist_kernels_get(names[k]);
        if (!ks)
            continue;
        for (size_t dim = 1; dim <= 100; dim++) {
            float *a = end - dim;
            for (size_t i = 0; i < dim; i++)
                a[i] = 1.0f;
            assert_true(ks->dot(a, a, dim) == (float)dim);
            assert_true(ks->l2sq(a, a, dim) == 0.0f);
        }
    }
    munmap(m, (size_t)page * 2);
}

static void test_normalize(void **state)
{
    float v[5] = { 3, 4, 0, 0, 0 };
    assert_true(fabsf(dist_normalize(v, 5) - 5.0f) < 1e-6f);
    assert_true(fabsf(v[0] - 0.6f) < 1e-7f && fabsf(v[1] - 0.8f) < 1e-7f);
    assert_true(fabsf(dist_dot(v, v, 5) - 1.0f) < 1e-6f);

    float z[7] = { 0 };
    assert_true(dist_normalize(z, 7) == 0.0f);
    for (int i = 0; i < 7; i++)
        assert_true(z[i] == 0.0f);

    /* Non-finite input cannot be normalised: zero vector, norm 0. */
    float bad[3] = { 1.0f, NAN, 2.0f };
    assert_true(dist_normalize(bad, 3) == 0.0f);
    assert_true(bad[0] == 0.0f && bad[1] == 0.0f && bad[2] == 0.0f);
    float inf[2] = { INFINITY, 1.0f };
    assert_true(dist_normalize(inf, 2) == 0.0f);
    assert_true(inf[0] == 0.0f && inf[1] == 0.0f);

    /* Huge components whose float sum of squares would overflow. */
    float huge[4] = { 3e30f, 4e30f, 0, 0 };
    assert_true(fabsf(dist_normalize(huge, 4) / 5e30f - 1.0f) < 1e-6f);
    assert_true(fabsf(huge[0] - 0.6f) < 1e-6f);

    tu_rng r;
    tu_rng_seed(&r, 3);
    float w[100];
    for (size_t dim = 1; dim <= 100; dim++) {
        for (size_t i = 0; i < dim; i++)
            w[i] = frand(&r) * 10;
        dist_normalize(w, dim);
        assert_true(fabsf(dist_dot(w, w, dim) - 1.0f) < 1e-5f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels_all_dims),
        cmocka_unit_test(test_kernels_agree),
        cmocka_unit_test(test_no_overread),
        cmocka_unit_test(test_normalize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
