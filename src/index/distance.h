/*
 * distance.h -- vector kernels: inner product and squared L2 with AVX2+FMA
 * when the CPU has them (chosen once at run time), a portable loop
 * otherwise.  Results agree with the portable loop to float rounding.
 * Also IEEE-754 half precision (binary16, "f16") storage: conversion both
 * ways and the inner product of a float32 vector with an f16 one, with
 * AVX2+FMA+F16C kernels chosen the same way.
 */
#ifndef DM_INDEX_DISTANCE_H
#define DM_INDEX_DISTANCE_H

#include <stddef.h>
#include <stdint.h>

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

/* ----------------------------------------------------------- half floats */

/*
 * dist_f32_to_f16 -- x as an IEEE-754 binary16 bit pattern, rounded to
 * nearest, ties to even.  Magnitudes from 65520 up become infinity, those
 * up to 2^-25 (and float32 subnormals) zero of the same sign, and those in
 * between the binary16 normal range and 2^-25 binary16 subnormals.  A NaN
 * stays a NaN of the same sign, made quiet, keeping the top 9 bits of its
 * payload (what the F16C instructions do, so both paths agree bit for bit).
 */
uint16_t dist_f32_to_f16(float x);

/* dist_f16_to_f32 -- the value of a binary16 bit pattern; exact, subnormals
 * included.  A NaN becomes a quiet float32 NaN with the same payload bits. */
float dist_f16_to_f32(uint16_t h);

/* Inner product of a float32 vector a with a binary16 vector b (dim
 * elements each): each b[i] is widened exactly, products and sums are in
 * float32. */
typedef float (*dist_f16_fn)(const float *a, const uint16_t *b, size_t dim);
/* Array conversions, n elements, bit-identical to the scalar functions
 * above. */
typedef void (*dist_to_f16_fn)(uint16_t *dst, const float *src, size_t n);
typedef void (*dist_from_f16_fn)(float *dst, const uint16_t *src, size_t n);

typedef struct dist_f16_kernels {
    const char *name;         /* "f16c" (AVX2+FMA+F16C) or "portable" */
    dist_f16_fn dot;          /* float32 . binary16 */
    dist_to_f16_fn encode;    /* float32 -> binary16 */
    dist_from_f16_fn decode;  /* binary16 -> float32 */
} dist_f16_kernels;

/* dist_f16_kernels_active -- the binary16 set chosen once from the CPU.
 * Never NULL; static storage; thread-safe. */
const dist_f16_kernels *dist_f16_kernels_active(void);

/* dist_f16_kernels_get -- the set with this name ("f16c", "portable"), or
 * NULL when the name is unknown or the CPU cannot run it. */
const dist_f16_kernels *dist_f16_kernels_get(const char *name);

/* dist_dot_f16 -- the active set's dot. */
float dist_dot_f16(const float *a, const uint16_t *b, size_t dim);

#endif
