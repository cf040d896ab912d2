/*
 * distance.c -- inner product and squared L2 distance between float32
 * vectors, with an AVX2+FMA kernel and a portable one.
 *
 * Design.  The file is compiled without -mavx2: the AVX2 functions carry
 * target("avx2,fma") attributes, so the compiler emits AVX2 code for them
 * alone and the rest of the program stays runnable on any x86-64 (and the
 * file compiles unchanged on other architectures, where only the portable
 * kernels exist).  The kernel set is chosen once, on first use, from
 * __builtin_cpu_supports; callers in hot loops (the HNSW search) fetch the
 * active function pointers once with dist_kernels_active() instead of
 * paying the dispatch on every call.
 *
 * The AVX2 kernels run four independent 8-lane FMA accumulators (32 floats
 * per iteration) so that the FMA latency is hidden, then 8 floats at a
 * time, then a masked load for the last dim % 8 floats: no byte past
 * a[dim-1] or b[dim-1] is ever read, so any dim works and no padding is
 * required.  The portable kernels keep eight partial sums, which compilers
 * turn into SIMD code of the baseline instruction set.  The two sum in a
 * different order, so they agree to float rounding, not bit for bit.
 *
 * Invariants: the active set never changes after it has been chosen.
 * Locking: none needed.  The choice is published with an atomic store;
 * two threads racing on first use compute the same answer.
 */
#include "index/distance.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define DIST_HAVE_AVX2 1
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
