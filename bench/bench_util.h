/*
 * bench_util.h -- small helpers shared by the benchmarks: a monotonic
 * clock, a seeded PRNG, latency arrays with percentiles, and directory
 * size/removal.  Header-only (static functions) so each benchmark stays a
 * single translation unit; benchmarks are tools, not engine code, so they
 * use plain malloc and abort on failure instead of propagating DM_ENOMEM.
 */
#ifndef DM_BENCH_UTIL_H
#define DM_BENCH_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

__attribute__((noreturn, format(printf, 1, 2)))
static inline void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static inline void *bench_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        bench_die("out of memory (%zu bytes)", n);
    return p;
}

/* CLOCK_MONOTONIC in nanoseconds: every latency in the benchmarks is the
 * difference of two of these around one operation. */
static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64's finaliser: a bijective mix, so distinct inputs give distinct
 * outputs (used to derive per-record fields from a record number). */
static inline uint64_t bench_mix64(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* splitmix64 generator: deterministic for a given seed. */
typedef struct bench_rng {
    uint64_t s;
} bench_rng;

static inline uint64_t bench_rng_next(bench_rng *r)
{
    r->s += UINT64_C(0x9e3779b97f4a7c15);
    uint64_t x = r->s;
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* Uniform in [0, n), n > 0 (modulo bias is negligible for n << 2^64). */
static inline uint64_t bench_rng_below(bench_rng *r, uint64_t n)
{
    return bench_rng_next(r) % n;
}

/* ------------------------------------------------------------ latencies */

/* A fixed-capacity array of per-operation latencies in nanoseconds. */
typedef struct bench_lat {
    uint64_t *ns;
    size_t n;
    size_t cap;
    int is_sorted;
} bench_lat;

static inline void bench_lat_init(bench_lat *l, size_t cap)
{
    l->ns = (uint64_t *)bench_xmalloc(cap * sizeof *l->ns);
    l->n = 0;
    l->cap = cap;
    l->is_sorted = 0;
}

static inline void bench_lat_fini(bench_lat *l)
{
    free(l->ns);
    l->ns = NULL;
    l->n = l->cap = 0;
}

static inline void bench_lat_add(bench_lat *l, uint64_t ns)
{
    if (l->n < l->cap)
        l->ns[l->n++] = ns;
    l->is_sorted = 0;
}

static inline int bench_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* bench_lat_pct_us -- the p-th percentile (0 < p <= 1, nearest rank: the
 * smallest sample with at least p of the samples at or below it) in
 * microseconds; 0 for an empty array.  Sorts the array once. */
static inline double bench_lat_pct_us(bench_lat *l, double p)
{
    if (!l->n)
        return 0.0;
    if (!l->is_sorted) {
        qsort(l->ns, l->n, sizeof *l->ns, bench_u64_cmp);
        l->is_sorted = 1;
    }
    size_t rank = (size_t)ceil(p * (double)l->n);
    if (rank < 1)
        rank = 1;
    if (rank > l->n)
        rank = l->n;
    return (double)l->ns[rank - 1] / 1000.0;
}

/* ---------------------------------------------------------- directories */

/* bench_dir_bytes -- the sum of the apparent sizes (st_size) of the
 * regular files under path, recursively; symlinks are not followed. */
static inline uint64_t bench_dir_bytes(const char *path)
{
    uint64_t total = 0;
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char sub[4096];
        struct stat st;
        if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >=
            (int)sizeof sub)
            continue;
        if (lstat(sub, &st) != 0)
            continue;
        if (S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
        else if (S_ISDIR(st.st_mode))
            total += bench_dir_bytes(sub);
    }
    closedir(d);
    return total;
}

static inline int bench_rm_one(const char *p, const struct stat *sb, int flag,
                        struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (remove(p) != 0 && errno != ENOENT)
        fprintf(stderr, "bench: cannot remove %s: %s\n", p, strerror(errno));
    return 0;
}

/* bench_rm_rf -- removes path and everything under it (depth first, not
 * following symlinks).  A missing path is not an error. */
static inline void bench_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    nftw(path, bench_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
