/*
 * distance.c -- inner product and squared L2 distance between float32
 * vectors, with an AVX2+FMA kernel and a portable one; and the binary16
 * ("f16", IEEE-754 half precision) side: conversion both ways and the
 * inner product of a float32 vector with a binary16 one, with an
 * AVX2+FMA+F16C kernel and a portable one.
 *
 * Design.  The file is compiled without -mavx2: the AVX2 functions carry
 * target("avx2,fma") attributes (target("avx2,fma,f16c") for the binary16
 * ones), so the compiler emits AVX2 code for them alone and the rest of
 * the program stays runnable on any x86-64 (and the file compiles
 * unchanged on other architectures, where only the portable kernels
 * exist).  Each kernel set is chosen once, on first use, from the CPU;
 * callers in hot loops (the HNSW search) fetch the active function
 * pointers once with dist_kernels_active() / dist_f16_kernels_active()
 * instead of paying the dispatch on every call.
 *
 * The AVX2 kernels run four independent 8-lane FMA accumulators (32 floats
 * per iteration) so that the FMA latency is hidden, then 8 floats at a
 * time, then a masked load for the last dim % 8 floats: no byte past
 * a[dim-1] or b[dim-1] is ever read, so any dim works and no padding is
 * required.  The binary16 dot has the same shape, widening 8 halves at a
 * time with VCVTPH2PS; its last dim % 8 halves come from a masked 32-bit
 * load of the whole pairs plus an insert of an odd last half (there is no
 * masked 16-bit load in AVX2).  The
 * portable kernels keep eight partial sums, which compilers turn into
 * SIMD code of the baseline instruction set.  The two sum in a different
 * order, so they agree to float rounding, not bit for bit.
 *
 * Half-precision conversion is done in integer arithmetic on the bit
 * patterns (dist_f32_to_f16 / dist_f16_to_f32), rounding to nearest with
 * ties to even; it handles zeros, subnormals, infinities and NaNs exactly
 * as VCVTPS2PH (immediate rounding mode "nearest") and VCVTPH2PS do, so
 * the F16C array conversions and the portable ones give identical bits,
 * and a vector stored by one machine reads back the same on another.
 * Widening is exact, so the binary16 dot equals the float32 dot of the
 * widened vector up to float rounding.
 *
 * Invariants: the active sets never change after they have been chosen.
 * Locking: none needed.  The choice is published with an atomic store;
 * two threads racing on first use compute the same answer.
 */
#include "index/distance.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define DIST_HAVE_AVX2 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define DIST_HAVE_AVX2 0
#endif

/* ------------------------------------------------------------- portable */

static float dot_portable(const float *a, const float *b, size_t dim)
{
    float s[8] = { 0 };
    size_t i = 0;
    for (; i + 8 <= dim; i += 8)
        for (int j = 0; j < 8; j++)
            s[j] += a[i + j] * b[i + j];
    float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < dim; i++)
        r += a[i] * b[i];
    return r;
}

static float l2sq_portable(const float *a, const float *b, size_t dim)
{
    float s[8] = { 0 };
    size_t i = 0;
    for (; i + 8 <= dim; i += 8)
        for (int j = 0; j < 8; j++) {
            float d = a[i + j] - b[i + j];
            s[j] += d * d;
        }
    float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < dim; i++) {
        float d = a[i] - b[i];
        r += d * d;
    }
    return r;
}

static const dist_kernels portable_kernels = { "portable", dot_portable,
                                               l2sq_portable };

/* ----------------------------------------------------------- binary16 */

/*
 * Binary16: 1 sign bit, 5 exponent bits (bias 15), 10 fraction bits.
 * Binary32: 1, 8 (bias 127), 23.  A normal binary32 of biased exponent e
 * has the binary16 biased exponent e - 112 when that lies in 1..30.
 */
uint16_t dist_f32_to_f16(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
    uint32_t e = (b >> 23) & 0xffu;
    uint32_t m = b & 0x7fffffu;
    if (e == 0xffu) /* infinity, or NaN: quiet, top payload bits kept */
        return (uint16_t)(sign | (m ? 0x7e00u | (m >> 13) : 0x7c00u));
    int he = (int)e - 112;
    if (he >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (he <= 0) {
        /* A binary16 subnormal (units of 2^-24) or zero.  Below 2^-25
         * everything rounds to zero, float32 subnormals included. */
        if (he < -10)
            return sign;
        uint32_t sig = m | 0x800000u; /* 24 significant bits */
        uint32_t shift = (uint32_t)(14 - he); /* 14..24 */
        uint32_t r = sig >> shift;
        uint32_t rem = sig & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1u)))
            r++; /* may carry into the smallest normal, 0x0400: correct */
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((uint32_t)he << 10) | (m >> 13);
    uint32_t rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u)))
        r++; /* a carry out of the fraction bumps the exponent; from
              * 0x7bff it reaches 0x7c00, infinity, as rounding requires */
    return (uint16_t)(sign | r);
}

float dist_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x3ffu;
    uint32_t b;
    if (e == 0x1fu) {
        b = sign | 0x7f800000u | (m << 13);
        if (m)
            b |= 0x400000u; /* quiet NaN */
    } else if (e) {
        b = sign | ((e + 112) << 23) | (m << 13);
    } else if (m) {
        /* Subnormal: m * 2^-24.  Normalise: with the top set bit of m at
         * position p (0..9), the value is 1.f * 2^(p - 24). */
        uint32_t p = 9;
        while (!(m & (1u << p)))
            p--;
        b = sign | ((p + 103) << 23) | ((m << (23 - p)) & 0x7fffffu);
    } else {
        b = sign;
    }
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

static void encode_portable(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = dist_f32_to_f16(src[i]);
}

static void decode_portable(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = dist_f16_to_f32(src[i]);
}

static float dot_f16_portable(const float *a, const uint16_t *b, size_t dim)
{
    float s[8] = { 0 }, t[8];
    size_t i = 0;
    for (; i + 8 <= dim; i += 8) {
        for (int j = 0; j < 8; j++)
            t[j] = dist_f16_to_f32(b[i + j]);
        for (int j = 0; j < 8; j++)
            s[j] += a[i + j] * t[j];
    }
    float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < dim; i++)
        r += a[i] * dist_f16_to_f32(b[i]);
    return r;
}

static const dist_f16_kernels portable_f16_kernels = {
    "portable", dot_f16_portable, encode_portable, decode_portable
};

/* ----------------------------------------------------------------- AVX2 */

#if DIST_HAVE_AVX2

/* Eight "on" lanes followed by eight "off" lanes: loading 8 lanes starting
 * at tail_mask + 8 - r gives a mask whose first r lanes are on. */
static const int32_t tail_mask[16] = { -1, -1, -1, -1, -1, -1, -1, -1,
                                       0,  0,  0,  0,  0,  0,  0,  0 };

__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    __m128 sh = _mm_movehl_ps(lo, lo);
    lo = _mm_add_ps(lo, sh);
    sh = _mm_shuffle_ps(lo, lo, 0x55);
    lo = _mm_add_ss(lo, sh);
    return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a,
                                                          const float *b,
                                                          size_t dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8),
                             _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16),
                             _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24),
                             _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= dim; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < dim) {
        __m256i m = _mm256_loadu_si256(
            (const __m256i *)(const void *)(tail_mask + 8 - (dim - i)));
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m),
                             _mm256_maskload_ps(b + i, m), s1);
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

__attribute__((target("avx2,fma"))) static float l2sq_avx2(const float *a,
                                                           const float *b,
                                                           size_t dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8),
                                  _mm256_loadu_ps(b + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16),
                                  _mm256_loadu_ps(b + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24),
                                  _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    for (; i + 8 <= dim; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    if (i < dim) {
        __m256i m = _mm256_loadu_si256(
            (const __m256i *)(const void *)(tail_mask + 8 - (dim - i)));
        __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m),
                                 _mm256_maskload_ps(b + i, m));
        s1 = _mm256_fmadd_ps(d, d, s1);
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

static const dist_kernels avx2_kernels = { "avx2", dot_avx2, l2sq_avx2 };

static int cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

#define F16C_ATTR __attribute__((target("avx2,fma,f16c")))

static inline F16C_ATTR __m256 load_f16x8(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

/*
 * load_f16_tail -- the first r (1..7) halves at p widened, the other lanes
 * zero, reading no byte past p[r-1]: whole pairs of halves with a masked
 * 32-bit load, an odd last half inserted on its own (the lane number of
 * an insert must be a constant, hence the switch).
 */
static inline F16C_ATTR __m256 load_f16_tail(const uint16_t *p, size_t r)
{
    __m128i m = _mm_loadu_si128(
        (const __m128i *)(const void *)(tail_mask + 8 - r / 2));
    __m128i v = _mm_maskload_epi32((const int *)(const void *)p, m);
    switch (r) {
    case 1: v = _mm_insert_epi16(v, p[0], 0); break;
    case 3: v = _mm_insert_epi16(v, p[2], 2); break;
    case 5: v = _mm_insert_epi16(v, p[4], 4); break;
    case 7: v = _mm_insert_epi16(v, p[6], 6); break;
    default: break;
    }
    return _mm256_cvtph_ps(v);
}

F16C_ATTR static float dot_f16_f16c(const float *a, const uint16_t *b,
                                    size_t dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_f16x8(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), load_f16x8(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), load_f16x8(b + i + 16),
                             s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), load_f16x8(b + i + 24),
                             s3);
    }
    for (; i + 8 <= dim; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_f16x8(b + i), s0);
    if (i < dim) {
        __m256i m = _mm256_loadu_si256(
            (const __m256i *)(const void *)(tail_mask + 8 - (dim - i)));
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m),
                             load_f16_tail(b + i, dim - i), s1);
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

F16C_ATTR static void encode_f16c(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i),
                                         _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        dst[i] = dist_f32_to_f16(src[i]);
}

F16C_ATTR static void decode_f16c(float *dst, const uint16_t *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, load_f16x8(src + i));
    for (; i < n; i++)
        dst[i] = dist_f16_to_f32(src[i]);
}

static const dist_f16_kernels f16c_kernels = { "f16c", dot_f16_f16c, encode_f16c,
                                               decode_f16c };

/* F16C is a CPUID leaf 1 bit (ECX 29); the OS support for the YMM state
 * that it needs is part of what __builtin_cpu_supports("avx2") checks. */
static int cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    if (!cpu_has_avx2() || !__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    return (c & (1u << 29)) != 0;
}

#endif /* DIST_HAVE_AVX2 */

/* -------------------------------------------------------------- dispatch */

static const dist_kernels *active;

static const dist_kernels *choose(void)
{
#if DIST_HAVE_AVX2
    if (cpu_has_avx2())
        return &avx2_kernels;
#endif
    return &portable_kernels;
}

const dist_kernels *dist_kernels_active(void)
{
    const dist_kernels *k = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    if (!k) {
        k = choose();
        __atomic_store_n(&active, k, __ATOMIC_RELEASE);
    }
    return k;
}

const dist_kernels *dist_kernels_get(const char *name)
{
    if (!name)
        return NULL;
    if (!strcmp(name, "portable"))
        return &portable_kernels;
#if DIST_HAVE_AVX2
    if (!strcmp(name, "avx2") && cpu_has_avx2())
        return &avx2_kernels;
#endif
    return NULL;
}

static const dist_f16_kernels *active_f16;

const dist_f16_kernels *dist_f16_kernels_active(void)
{
    const dist_f16_kernels *k = __atomic_load_n(&active_f16, __ATOMIC_ACQUIRE);
    if (!k) {
        k = &portable_f16_kernels;
#if DIST_HAVE_AVX2
        if (cpu_has_f16c())
            k = &f16c_kernels;
#endif
        __atomic_store_n(&active_f16, k, __ATOMIC_RELEASE);
    }
    return k;
}

const dist_f16_kernels *dist_f16_kernels_get(const char *name)
{
    if (!name)
        return NULL;
    if (!strcmp(name, "portable"))
        return &portable_f16_kernels;
#if DIST_HAVE_AVX2
    if (!strcmp(name, "f16c") && cpu_has_f16c())
        return &f16c_kernels;
#endif
    return NULL;
}

float dist_dot_f16(const float *a, const uint16_t *b, size_t dim)
{
    return dist_f16_kernels_active()->dot(a, b, dim);
}

float dist_dot(const float *a, const float *b, size_t dim)
{
    return dist_kernels_active()->dot(a, b, dim);
}

float dist_l2sq(const float *a, const float *b, size_t dim)
{
    return dist_kernels_active()->l2sq(a, b, dim);
}

const char *dist_kernel_name(void)
{
    return dist_kernels_active()->name;
}

/*
 * The norm is accumulated in double: normalising is not on a hot path, and
 * a float sum of squares overflows for components beyond about 1e19 where
 * the double one does not.  A vector with a non-finite norm (it holds an
 * infinity or a NaN) cannot be normalised; it is treated like the zero
 * vector so that no NaN ever reaches an index.
 */
float dist_normalize(float *v, size_t dim)
{
    double ss = 0.0;
    for (size_t i = 0; i < dim; i++)
        ss += (double)v[i] * (double)v[i];
    double norm = sqrt(ss);
    if (!(norm > 0.0) || !isfinite(norm)) {
        memset(v, 0, dim * sizeof *v);
        return 0.0f;
    }
    double inv = 1.0 / norm;
    for (size_t i = 0; i < dim; i++)
        v[i] = (float)((double)v[i] * inv);
    return (float)norm;
}
