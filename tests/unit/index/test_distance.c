/*
 * test_distance.c -- the vector kernels: the AVX2 kernels against the
 * portable ones and against a double-precision reference on every
 * dimension from 1 to 300 and a few large ones, unaligned inputs, no read
 * past the last element, and normalisation.  Half precision: exact
 * conversions of known values, round to nearest even (ties, the subnormal
 * range, overflow) checked against an independent nearest-value search,
 * every binary16 pattern round-tripped, the F16C conversions bit-identical
 * to the portable ones, and the float32 . binary16 dot kernels against a
 * double-precision reference.
 */
#include "testutil.h"

#include <math.h>
#include <stdbool.h>
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

/* ----------------------------------------------------------- binary16 */

static uint32_t f32_bits(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static float bits_f32(uint32_t b)
{
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

static bool is_nan16(uint16_t h)
{
    return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu);
}

static void expect16(float x, uint16_t want)
{
    uint16_t got = dist_f32_to_f16(x);
    if (got != want) {
        print_error("f16(%a) = 0x%04x, want 0x%04x\n", (double)x, got, want);
        fail();
    }
}

static void test_f16_known_values(void **state)
{
    expect16(0.0f, 0x0000);
    expect16(-0.0f, 0x8000);
    expect16(1.0f, 0x3c00);
    expect16(-2.0f, 0xc000);
    expect16(0.5f, 0x3800);
    expect16(0.1f, 0x2e66);       /* 0x1.99999ap-4 rounds down */
    expect16(1.0f / 3.0f, 0x3555);
    expect16(65504.0f, 0x7bff);   /* the largest finite half */
    expect16(65519.996f, 0x7bff); /* just below the rounding boundary */
    expect16(65520.0f, 0x7c00);   /* the boundary ties to even: infinity */
    expect16(1e10f, 0x7c00);
    expect16(-1e10f, 0xfc00);
    expect16(INFINITY, 0x7c00);
    expect16(-INFINITY, 0xfc00);
    expect16(0x1p-14f, 0x0400);   /* the smallest normal */
    expect16(0x1p-24f, 0x0001);   /* the smallest subnormal */
    expect16(0x1.ff8p-15f, 0x03ff); /* the largest subnormal */
    expect16(-0x1p-24f, 0x8001);
    /* Ties to even, normal range: 1 + 2^-11 lies halfway between 1 and
     * 1 + 2^-10. */
    expect16(1.0f + 0x1p-11f, 0x3c00);
    expect16(1.0f + 3 * 0x1p-11f, 0x3c02);
    expect16(1.0f + 0x1p-11f + 0x1p-23f, 0x3c01);
    expect16(1.0f + 0x1p-11f - 0x1p-23f, 0x3c00);
    /* Ties to even, subnormal range (units of 2^-24). */
    expect16(0x1p-25f, 0x0000);        /* half of the smallest: to 0 */
    expect16(0x1.000002p-25f, 0x0001); /* just above half */
    expect16(3 * 0x1p-25f, 0x0002);    /* 1.5 units: to 2 */
    expect16(5 * 0x1p-25f, 0x0002);    /* 2.5 units: to 2 */
    expect16(0x1p-14f - 0x1p-25f, 0x0400); /* 1023.5 units: up to normal */
    expect16(0x1p-26f, 0x0000);
    expect16(-0x1p-26f, 0x8000);
    expect16(1e-30f, 0x0000);
    expect16(0x1p-149f, 0x0000); /* float32 subnormals */
    expect16(-0x1p-130f, 0x8000);
    /* NaNs stay NaNs, quiet, sign and top payload bits kept. */
    expect16(bits_f32(0x7fc00000u), 0x7e00);
    expect16(bits_f32(0xffc00000u), 0xfe00);
    expect16(bits_f32(0x7f800001u), 0x7e00); /* signalling, low payload */
    expect16(bits_f32(0x7fa00000u), 0x7f00);
    expect16(bits_f32(0x7f802000u), 0x7e01);

    assert_true(dist_f16_to_f32(0x3c00) == 1.0f);
    assert_true(dist_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(dist_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(dist_f16_to_f32(0x03ff) == 0x1.ff8p-15f);
    assert_true(dist_f16_to_f32(0x8001) == -0x1p-24f);
    assert_true(dist_f16_to_f32(0x7c00) == INFINITY);
    assert_true(dist_f16_to_f32(0xfc00) == -INFINITY);
    assert_int_equal(f32_bits(dist_f16_to_f32(0x8000)), 0x80000000u);
    assert_int_equal(f32_bits(dist_f16_to_f32(0x7e00)), 0x7fc00000u);
    assert_int_equal(f32_bits(dist_f16_to_f32(0x7c01)), 0x7fc02000u);
    assert_int_equal(f32_bits(dist_f16_to_f32(0xfd00)), 0xffe00000u);
}

/*
 * Every binary16 pattern: widening is exact and narrowing it back gives
 * the same pattern (NaNs: a quiet NaN of the same sign and payload); the
 * values increase with the pattern (so the neighbour search below is
 * sound).
 */
static void test_f16_round_trip_all(void **state)
{
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float x = dist_f16_to_f32((uint16_t)h);
        uint16_t back = dist_f32_to_f16(x);
        if (is_nan16((uint16_t)h)) {
            assert_true(isnan(x));
            assert_int_equal(back, h | 0x200u);
            continue;
        }
        if (back != h) {
            print_error("0x%04x -> %a -> 0x%04x\n", h, (double)x, back);
            fail();
        }
        if ((h & 0x7fffu) < 0x7c00u && (h & 0x7fffu) > 0) {
            float next = dist_f16_to_f32((uint16_t)(h + 1));
            if ((h & 0x7fffu) < 0x7bffu || !(h & 0x8000u))
                assert_true(h & 0x8000u ? next < x : next > x);
        }
    }
}

/*
 * Round to nearest even, checked independently: the result and its two
 * neighbours are widened (exact) and compared in double with x; the
 * result must be nearest, and on a tie the one with an even pattern.
 * Inputs: random bit patterns over the whole float range, and random
 * values near the binary16 range and its boundaries.
 */
static void check_nearest(float x)
{
    uint16_t h = dist_f32_to_f16(x);
    if (isnan(x)) {
        assert_true(is_nan16(h));
        return;
    }
    double ax = fabs((double)x);
    uint16_t mag = h & 0x7fffu;
    assert_int_equal(h & 0x8000u, (f32_bits(x) >> 16) & 0x8000u);
    if (mag == 0x7c00u) {
        assert_true(ax >= 65520.0);
        return;
    }
    double got = fabs((double)dist_f16_to_f32(h));
    double err = fabs(got - ax);
    if (mag > 0) {
        double lo = fabs((double)dist_f16_to_f32((uint16_t)(mag - 1)));
        assert_true(err <= ax - lo || (err == ax - lo && !(mag & 1u)));
        if (err == ax - lo)
            assert_true(!(mag & 1u));
    }
    double hi = mag + 1 == 0x7c00u ? 65536.0
                                   : (double)dist_f16_to_f32((uint16_t)(mag + 1));
    assert_true(err <= hi - ax);
    if (err == hi - ax)
        assert_true(!(mag & 1u));
}

static void test_f16_rounding(void **state)
{
    tu_rng r;
    tu_rng_seed(&r, 21);
    for (int i = 0; i < 200000; i++)
        check_nearest(bits_f32((uint32_t)tu_rand(&r)));
    for (int i = 0; i < 200000; i++) {
        /* Exponents 2^-27 .. 2^16: subnormals, normals, overflow. */
        int e = (int)tu_randn(&r, 44) - 27;
        float m = 1.0f + (float)((tu_rand(&r) >> 40) * 0x1p-24);
        float x = ldexpf(m, e);
        check_nearest(tu_randn(&r, 2) ? -x : x);
    }
    /* Every tie in a few binades: halfway between adjacent halves. */
    for (uint32_t h = 0x0000; h < 0x7bffu; h += 37) {
        double a = dist_f16_to_f32((uint16_t)h), b = dist_f16_to_f32((uint16_t)(h + 1));
        float mid = (float)((a + b) / 2); /* exact: 12 significant bits */
        assert_true((double)mid == (a + b) / 2);
        assert_int_equal(dist_f32_to_f16(mid), h & 1u ? h + 1 : h);
    }
}

static void test_f16_kernels(void **state)
{
    const dist_f16_kernels *kp = dist_f16_kernels_get("portable");
    const dist_f16_kernels *kf = dist_f16_kernels_get("f16c");
    const dist_f16_kernels *act = dist_f16_kernels_active();
    assert_non_null(kp);
    assert_true(act == kp || act == kf);
    assert_null(dist_f16_kernels_get("f17"));
    assert_null(dist_f16_kernels_get(NULL));
    print_message("active f16 kernel: %s; f16c %savailable\n", act->name,
                  kf ? "" : "not ");

    /* Conversions: every binary16 pattern, and random float32 patterns,
     * with lengths that leave every tail size, bit for bit the same. */
    static uint16_t all[0x10000 + 7], h1[4103], h2[4103];
    static float f1[0x10000 + 7], f2[0x10000 + 7], src[4103];
    for (uint32_t i = 0; i < 0x10000u; i++)
        all[i] = (uint16_t)i;
    const dist_f16_kernels *ks[2] = { kp, kf };
    for (int k = 0; k < 2; k++) {
        if (!ks[k])
            continue;
        ks[k]->decode(f1, all, 0x10000);
        for (uint32_t i = 0; i < 0x10000u; i++)
            if (f32_bits(f1[i]) != f32_bits(dist_f16_to_f32((uint16_t)i)))
                fail_msg("%s decode 0x%04x", ks[k]->name, i);
    }
    tu_rng r;
    tu_rng_seed(&r, 22);
    for (size_t n = 0; n <= 40; n++) {
        for (size_t i = 0; i < n; i++)
            src[i] = tu_randn(&r, 2) ? bits_f32((uint32_t)tu_rand(&r))
                                     : frand(&r) * (float)(1 << tu_randn(&r, 18));
        kp->encode(h1, src, n);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(h1[i], dist_f32_to_f16(src[i]));
        if (kf) {
            memset(h2, 0xab, sizeof h2);
            kf->encode(h2, src, n);
            assert_memory_equal(h1, h2, n * sizeof *h1);
            assert_int_equal(h2[n], 0xabab); /* nothing written past n */
            kf->decode(f2, h1, n);
            kp->decode(f1, h1, n);
            assert_memory_equal(f1, f2, n * sizeof *f1);
        }
    }
    for (int rep = 0; rep < 20; rep++) {
        size_t n = 4096 + tu_randn(&r, 8);
        for (size_t i = 0; i < n; i++)
            src[i] = bits_f32((uint32_t)tu_rand(&r));
        kp->encode(h1, src, n);
        if (kf) {
            kf->encode(h2, src, n);
            assert_memory_equal(h1, h2, n * sizeof *h1);
        }
    }

    /* The dot: against a double reference on the widened values, every
     * dim 1..300, unaligned, and the two kernels against each other. */
    float a[4104];
    uint16_t b[4104];
    static const size_t big[] = { 384, 1000, 1023, 4096 };
    for (size_t t = 0; t < 300 + 4; t++) {
        size_t dim = t < 300 ? t + 1 : big[t - 300];
        size_t mis = t % 3;
        float *pa = a + mis;
        uint16_t *pb = b + (mis ? 8 - mis : 0);
        double ref = 0, mag = 0;
        for (size_t i = 0; i < dim; i++) {
            pa[i] = frand(&r);
            pb[i] = dist_f32_to_f16(frand(&r));
            double p = (double)pa[i] * dist_f16_to_f32(pb[i]);
            ref += p;
            mag += fabs(p);
        }
        assert_close(kp->dot(pa, pb, dim), ref, mag, dim);
        if (kf) {
            assert_close(kf->dot(pa, pb, dim), ref, mag, dim);
            assert_close(kf->dot(pa, pb, dim), kp->dot(pa, pb, dim), mag, dim);
        }
        assert_true(dist_dot_f16(pa, pb, dim) == act->dot(pa, pb, dim));
        /* The float32 kernel on the widened vector agrees too. */
        act->decode(f1, pb, dim);
        assert_close(dist_dot(pa, f1, dim), ref, mag, dim);
    }
    assert_true(kp->dot(a, b, 0) == 0.0f);
    if (kf)
        assert_true(kf->dot(a, b, 0) == 0.0f);
}

static void test_f16_no_overread(void **state)
{
    /* Operands that end exactly at an inaccessible page: a kernel that
     * touches one element too many faults. */
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *m = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    assert_int_equal(mprotect(m + page, (size_t)page, PROT_NONE), 0);
    uint8_t *end = m + page;
    const char *names[] = { "portable", "f16c" };
    for (int k = 0; k < 2; k++) {
        const dist_f16_kernels *ks = dist_f16_kernels_get(names[k]);
        if (!ks)
            continue;
        for (size_t dim = 1; dim <= 100; dim++) {
            float fa[100], fb[100];
            uint16_t hb[100];
            /* The binary16 operand at the end of the page. */
            uint16_t *b = (uint16_t *)(void *)end - dim;
            for (size_t i = 0; i < dim; i++) {
                fa[i] = 1.0f;
                b[i] = 0x3c00;
            }
            assert_true(ks->dot(fa, b, dim) == (float)dim);
            ks->decode(fb, b, dim);
            assert_true(fb[dim - 1] == 1.0f);
            ks->encode(b, fa, dim);
            assert_int_equal(b[dim - 1], 0x3c00);
            /* The float32 operand at the end of the page. */
            float *a = (float *)(void *)end - dim;
            for (size_t i = 0; i < dim; i++) {
                a[i] = 2.0f;
                hb[i] = 0x3800; /* 0.5 */
            }
            assert_true(ks->dot(a, hb, dim) == (float)dim);
            ks->encode(hb, a, dim);
            assert_int_equal(hb[dim - 1], 0x4000);
            ks->decode(a, hb, dim);
            assert_true(a[dim - 1] == 2.0f);
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
        cmocka_unit_test(test_f16_known_values),
        cmocka_unit_test(test_f16_round_trip_all),
        cmocka_unit_test(test_f16_rounding),
        cmocka_unit_test(test_f16_kernels),
        cmocka_unit_test(test_f16_no_overread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
