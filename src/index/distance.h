/*
 * distance.h -- vector kernels: inner product and squared L2 with AVX2+FMA
 * when the CPU has them (chosen once at run time), a portable loop
 * otherwise.  Results agree with the portable loop to float rounding.
 */
#ifndef DM_INDEX_DISTANCE_H
#define DM_INDEX_DISTANCE_H

#include <stddef.h>

float dist_dot(const float *a, const float *b, size_t dim);
float dist_l2sq(const float *a, const float *b, size_t dim);
/* Normalize v in place; returns the original norm (0: v left as zeros). */
float dist_normalize(float *v, size_t dim);
/* The name of the kernel in use ("avx2" or "portable"). */
const char *dist_kernel_name(void);

/*
 * A kernel set, for callers that compute many distances in a loop (the
 * HNSW search takes the active dot kernel once instead of dispatching per
 * call) and for tests and benchmarks that compare implementations.
 */
typedef float (*dist_fn)(const float *a, const float *b, size_t dim);
typedef struct dist_kernels {
    const char *name; /* "avx2" or "portable" */
    dist_fn dot;
    dist_fn l2sq;
} dist_kernels;

/* dist_kernels_active -- the set dist_dot / dist_l2sq use (chosen once,
 * from the CPU).  Never NULL; static storage; thread-safe. */
const dist_kernels *dist_kernels_active(void);

/* dist_kernels_get -- the set with this name, or NULL when the name is
 * unknown or the CPU cannot run it ("portable" always exists). */
const dist_kernels *dist_kernels_get(const char *name);

#endif
