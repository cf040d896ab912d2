/*
 * test_sstable.c -- SSTable builder, reader, iterator and verifier.
 *
 * Round trips compare everything with an in-memory model (sorted arrays of
 * internal keys and values): forward and reverse iteration, random seeks
 * with direction changes, and point gets at many snapshots over keys with
 * several versions and tombstones, for every compression type, with and
 * without mmap and block cache.  The corruption tests damage a clean table
 * in many ways (a bit in every block, sampled single bytes, zeroed ranges,
 * truncation) and check that damage is reported as DM_ECORRUPT exactly
 * where it is and that every undamaged block still reads correctly.
 */
// ctest-labels: concurrency
// ctest-timeout: 300
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/crc.h"
#include "base/err.h"
#include "os/proc.h"
#include "storage/ikey.h"
#include "storage/sstable.h"
#include "storage/sstable_int.h"

/* ============================================================== model */

typedef struct ment {
    uint8_t *k; /* internal key */
    size_t kl;
    uint8_t *v;
    size_t vl;
} ment;

typedef struct model {
    ment *e;
    size_t n;
    uint64_t max_seq;
} model;

static int ment_cmp(const void *a, const void *b)
{
    const ment *x = a, *y = b;
    return ikey_cmp(buf_slice_of(x->k, x->kl), buf_slice_of(y->k, y->kl));
}

static buf_slice mkey(const model *m, size_t i)
{
    return buf_slice_of(m->e[i].k, m->e[i].kl);
}

static buf_slice mval(const model *m, size_t i)
{
    return buf_slice_of(m->e[i].v, m->e[i].vl);
}

typedef struct genspec {
    size_t max_ukey;   /* user key length 0..max_ukey */
    size_t max_val;    /* typical value length bound */
    int big_val_pct;   /* % of values far larger than a block */
    int multi_pct;     /* % of user keys with several versions */
    int del_pct;       /* % tombstones */
} genspec;

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

static size_t rand_val_len(tu_rng *r, const genspec *g)
{
    if (g->big_val_pct && (int)tu_randn(r, 100) < g->big_val_pct)
        return 5000 + tu_randn(r, 15000);
    int c = (int)tu_randn(r, 10);
    if (c == 0)
        return 0;
    return 1 + tu_randn(r, g->max_val);
}

/*
 * gen_model -- about n entries.  User keys are drawn from a small alphabet
 * with shared prefixes (so prefix compression matters); some keys have
 * several versions, one key has a long run of versions spanning blocks.
 */
static model gen_model(uint64_t seed, size_t n, const genspec *g)
{
    tu_rng r;
    tu_rng_seed(&r, seed);
    model m = { xmalloc(n * sizeof(ment)), 0, 0 };
    uint64_t seq = 1;
    size_t long_run_at = n > 1000 ? n / 2 : SIZE_MAX;
    while (m.n < n) {
        uint8_t uk[64];
        size_t ul = tu_randn(&r, g->max_ukey + 1);
        int style = (int)tu_randn(&r, 3);
        for (size_t i = 0; i < ul; i++)
            uk[i] = style == 0 ? (uint8_t)tu_rand(&r)
                               : (uint8_t)('a' + tu_randn(&r, style == 1 ? 3 : 26));
        size_t versions = 1;
        if ((int)tu_randn(&r, 100) < g->multi_pct)
            versions = 2 + tu_randn(&r, 5);
        if (m.n >= long_run_at) {
            versions = 300;
            long_run_at = SIZE_MAX;
        }
        for (size_t v = 0; v < versions && m.n < n; v++) {
            ment *e = &m.e[m.n++];
            int type = (int)tu_randn(&r, 100) < g->del_pct ? IKEY_DEL : IKEY_PUT;
            uint64_t s = (seq += 1 + tu_randn(&r, 3));
            e->kl = ul + IKEY_TRAILER_LEN;
            e->k = xmalloc(e->kl);
            ikey_encode(e->k, buf_slice_of(uk, ul), s, type);
            e->vl = type == IKEY_PUT ? rand_val_len(&r, g) : 0;
            e->v = xmalloc(e->vl);
            for (size_t i = 0; i < e->vl; i++)
                e->v[i] = (uint8_t)(s * 31 + i * 7 + (i >> 8));
        }
    }
    m.max_seq = seq;
    qsort(m.e, m.n, sizeof(ment), ment_cmp);
    /* The same user key drawn twice gets distinct seqs, so keys are
     * unique; check anyway. */
    for (size_t i = 1; i < m.n; i++)
        assert_true(ment_cmp(&m.e[i - 1], &m.e[i]) < 0);
    return m;
}

static void model_free(model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].k);
        free(m->e[i].v);
    }
    free(m->e);
    m->e = NULL;
    m->n = 0;
}

/* First model entry with key >= target (ikey order). */
static size_t model_lower_bound(const model *m, buf_slice target)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ikey_cmp(mkey(m, mid), target) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The model's answer to get(ukey, snap): index of the deciding entry or
 * SIZE_MAX when none. */
static size_t model_get(const model *m, buf_slice ukey, uint64_t snap)
{
    uint8_t kb[128];
    assert_true(ukey.len + 8 <= sizeof kb);
    ikey_encode(kb, ukey, snap, IKEY_SEEK_TYPE);
    size_t i = model_lower_bound(m, buf_slice_of(kb, ukey.len + 8));
    if (i < m->n && buf_slice_cmp(ikey_user(mkey(m, i)), ukey) == 0)
        return i;
    return SIZE_MAX;
}

/* ================================================================ vfs */

static int nommap(vfs *v, vfs_file *f, uint64_t len, const void **out)
{
    *out = NULL;
    return DM_EINVAL;
}

static vfs nommap_vfs_tab;
static vfs *nommap_vfs(void)
{
    nommap_vfs_tab = *vfs_posix();
    nommap_vfs_tab.name = "nommap";
    nommap_vfs_tab.mmap = nommap;
    return &nommap_vfs_tab;
}

static long n_appends;
static int (*real_append)(vfs *, vfs_file *, const void *, size_t);
static int counting_append(vfs *v, vfs_file *f, const void *p, size_t n)
{
    n_appends++;
    return real_append(v, f, p, n);
}

static vfs counting_vfs_tab;
static vfs *counting_vfs(void)
{
    counting_vfs_tab = *vfs_posix();
    real_append = counting_vfs_tab.append;
    counting_vfs_tab.append = counting_append;
    return &counting_vfs_tab;
}

/* A table whose pread, append or sync fails with an injected error. */
static int fail_pread_rc, fail_append_rc, fail_sync_rc;
static int (*real_pread)(vfs *, vfs_file *, void *, size_t, uint64_t, size_t *);
static int (*real_append2)(vfs *, vfs_file *, const void *, size_t);
static int (*real_sync)(vfs *, vfs_file *);
static int failing_pread(vfs *v, vfs_file *f, void *d, size_t n, uint64_t off,
                         size_t *got)
{
    if (fail_pread_rc) {
        *got = 0;
        return fail_pread_rc;
    }
    return real_pread(v, f, d, n, off, got);
}
static int failing_append(vfs *v, vfs_file *f, const void *p, size_t n)
{
    return fail_append_rc ? fail_append_rc : real_append2(v, f, p, n);
}
static int failing_sync(vfs *v, vfs_file *f)
{
    return fail_sync_rc ? fail_sync_rc : real_sync(v, f);
}
static vfs failing_vfs_tab;
static vfs *failing_vfs(void)
{
    failing_vfs_tab = *vfs_posix();
    real_pread = failing_vfs_tab.pread;
    real_append2 = failing_vfs_tab.append;
    real_sync = failing_vfs_tab.sync;
    failing_vfs_tab.pread = failing_pread;
    failing_vfs_tab.append = failing_append;
    failing_vfs_tab.sync = failing_sync;
    failing_vfs_tab.mmap = nommap;
    return &failing_vfs_tab;
}

/* ============================================================ helpers */

static const char *dir;
static uint64_t next_file_number = 1;

static void build_table(const char *path, const model *m, const sst_options *o,
                        sst_info *info)
{
    sst_builder *b = NULL;
    assert_int_equal(sst_builder_open(vfs_posix(), path, o, &b), DM_OK);
    for (size_t i = 0; i < m->n; i++)
        assert_int_equal(sst_builder_add(b, mkey(m, i), mval(m, i)), DM_OK);
    assert_int_equal(sst_builder_entries(b), m->n);
    assert_int_equal(sst_builder_finish(b, info), DM_OK);
    assert_int_equal(info->n_entries, m->n);
    if (m->n) {
        assert_int_equal(buf_slice_cmp(buf_slice_of(info->smallest.ptr, info->smallest.len),
                                       mkey(m, 0)), 0);
        assert_int_equal(buf_slice_cmp(buf_slice_of(info->largest.ptr, info->largest.len),
                                       mkey(m, m->n - 1)), 0);
    }
}

static void assert_slice_eq(buf_slice a, buf_slice b)
{
    assert_int_equal(a.len, b.len);
    if (a.len)
        assert_memory_equal(a.ptr, b.ptr, a.len);
}

static void assert_at(iter *it, const model *m, size_t i)
{
    assert_true(iter_valid(it));
    assert_slice_eq(iter_key(it), mkey(m, i));
    assert_slice_eq(iter_value(it), mval(m, i));
}

static void check_iteration(sst_reader *r, const model *m, uint64_t seed)
{
    iter *it = sst_iter_new(r);
    assert_non_null(it);
    size_t i = 0;
    for (iter_seek_first(it); iter_valid(it); iter_next(it))
        assert_at(it, m, i++);
    assert_int_equal(iter_status(it), DM_OK);
    assert_int_equal(i, m->n);

    i = m->n;
    for (iter_seek_last(it); iter_valid(it); iter_prev(it))
        assert_at(it, m, --i);
    assert_int_equal(iter_status(it), DM_OK);
    assert_int_equal(i, 0);

    /* Random seeks, each followed by a random walk. */
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    size_t n_seeks = m->n < 300 ? m->n + 5 : 300;
    for (size_t s = 0; s < n_seeks; s++) {
        uint8_t tk[80];
        buf_slice target;
        int kind = (int)tu_randn(&rng, 4);
        if (m->n && kind == 0) {
            target = mkey(m, tu_randn(&rng, m->n));
        } else if (m->n && kind == 1) {
            buf_slice u = ikey_user(mkey(m, tu_randn(&rng, m->n)));
            ikey_encode(tk, u, tu_randn(&rng, m->max_seq + 2), IKEY_SEEK_TYPE);
            target = buf_slice_of(tk, u.len + 8);
        } else if (kind == 2) {
            size_t ul = tu_randn(&rng, 20);
            for (size_t j = 0; j < ul; j++)
                tk[j] = (uint8_t)('a' + tu_randn(&rng, 26));
            enc_u64(tk + ul, ikey_pack(tu_randn(&rng, m->max_seq + 2), IKEY_PUT));
            target = buf_slice_of(tk, ul + 8);
        } else {
            /* A short, non-internal key: before every version of it. */
            size_t ul = tu_randn(&rng, 8);
            for (size_t j = 0; j < ul; j++)
                tk[j] = (uint8_t)('a' + tu_randn(&rng, 3));
            target = buf_slice_of(tk, ul);
        }
        size_t want;
        if (target.len >= 8) {
            want = model_lower_bound(m, target);
        } else {
            /* first entry whose user key >= target */
            want = 0;
            while (want < m->n && buf_slice_cmp(ikey_user(mkey(m, want)), target) < 0)
                want++;
        }
        iter_seek(it, target);
        assert_int_equal(iter_status(it), DM_OK);
        if (want == m->n) {
            assert_false(iter_valid(it));
            continue;
        }
        assert_at(it, m, want);
        size_t pos = want;
        for (int step = 0; step < 40; step++) {
            if (tu_randn(&rng, 2)) {
                iter_next(it);
                if (++pos == m->n) {
                    assert_false(iter_valid(it));
                    break;
                }
            } else {
                iter_prev(it);
                if (pos-- == 0) {
                    assert_false(iter_valid(it));
                    break;
                }
            }
            assert_at(it, m, pos);
        }
        assert_int_equal(iter_status(it), DM_OK);
    }
    iter_free(it);
}

static void check_one_get(sst_reader *r, const model *m, buf_slice u,
                          uint64_t snap, buf *val)
{
    enum sst_get_result res;
    assert_int_equal(sst_reader_get(r, u, snap, val, &res), DM_OK);
    size_t want = model_get(m, u, snap);
    if (want == SIZE_MAX) {
        assert_int_equal(res, SST_NONE);
    } else if (ikey_type(mkey(m, want)) == IKEY_DEL) {
        assert_int_equal(res, SST_DELETED);
    } else {
        assert_int_equal(res, SST_FOUND);
        assert_slice_eq(buf_slice_of(val->ptr, val->len), mval(m, want));
    }
}

static void check_gets(sst_reader *r, const model *m, uint64_t seed,
                       size_t stride)
{
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    buf val;
    buf_init(&val);
    for (size_t i = 0; i < m->n; i += stride) {
        buf_slice u = ikey_user(mkey(m, i));
        uint64_t seq = ikey_seq(mkey(m, i));
        /* Exactly at this version, just below it, the newest, random. */
        check_one_get(r, m, u, seq, &val);
        check_one_get(r, m, u, seq - 1, &val);
        check_one_get(r, m, u, UINT64_MAX, &val);
        check_one_get(r, m, u, tu_randn(&rng, m->max_seq + 2), &val);
    }
    /* Absent keys. */
    for (int i = 0; i < 500; i++) {
        uint8_t k[24];
        size_t ul = 1 + tu_randn(&rng, sizeof k);
        for (size_t j = 0; j < ul; j++)
            k[j] = (uint8_t)tu_rand(&rng);
        check_one_get(r, m, buf_slice_of(k, ul), UINT64_MAX, &val);
    }
    buf_fini(&val);
}

/* round_trip -- builds, then reads back through every read path. */
static void round_trip(const model *m, const sst_options *o, uint64_t seed,
                       bool is_thorough, size_t stride)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/rt.sst", dir);
    sst_info info;
    build_table(path, m, o, &info);

    uint64_t n = 0;
    assert_int_equal(sst_verify(vfs_posix(), path, NULL, NULL, &n), DM_OK);
    assert_int_equal(n, m->n);

    sst_cache *small = NULL, *big = NULL;
    assert_int_equal(sst_cache_new(64 << 10, &small), DM_OK);
    assert_int_equal(sst_cache_new(64 << 20, &big), DM_OK);
    struct {
        vfs *v;
        sst_cache *c;
    } paths[] = {
        { vfs_posix(), NULL }, { vfs_posix(), big },   { nommap_vfs(), NULL },
        { nommap_vfs(), small }, { nommap_vfs(), big },
    };
    size_t n_paths = is_thorough ? sizeof paths / sizeof paths[0] : 2;
    for (size_t p = 0; p < n_paths; p++) {
        sst_reader *r = NULL;
        assert_int_equal(sst_reader_open(paths[p].v, path, next_file_number++,
                                         paths[p].c, &r), DM_OK);
        assert_int_equal(sst_reader_entries(r), m->n);
        assert_int_equal(sst_reader_file_size(r), info.file_size);
        assert_int_equal(sst_reader_is_mmapped(r), paths[p].v == vfs_posix());
        check_iteration(r, m, seed + p);
        /* Without map and cache every get is a pread: sample fewer. */
        check_gets(r, m, seed + p, paths[p].v == vfs_posix() || paths[p].c ? stride : 4 * stride);
        if (p < 2)
            check_gets(r, m, seed + p, stride); /* second pass: verified/cached */
        sst_reader_unref(r);
    }
    sst_info_fini(&info);
    sst_cache_free(small);
    sst_cache_free(big);
}

static const genspec gen_default = { 24, 200, 1, 15, 20 };

/* ============================================================== tests */

static void test_round_trip_sizes(void **state)
{
    static const size_t sizes[] = { 1, 2, 3, 17, 100, 1000, 10000 };
    for (int comp = SST_COMP_NONE; comp <= SST_COMP_ZSTD; comp++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            model m = gen_model(1000 + s * 7 + (uint64_t)comp, sizes[s], &gen_default);
            sst_options o = sst_options_default();
            o.compression = comp;
            round_trip(&m, &o, s, sizes[s] <= 1000, 1);
            model_free(&m);
        }
    }
}

static void test_round_trip_100k(void **state)
{
    /* 100k entries; small values keep the ASan run short. */
    genspec g = { 24, 60, 0, 10, 10 };
    for (int comp = SST_COMP_NONE; comp <= SST_COMP_ZSTD; comp++) {
        model m = gen_model(77 + (uint64_t)comp, 100000, &g);
        sst_options o = sst_options_default();
        o.compression = comp;
        round_trip(&m, &o, 5, false, comp == SST_COMP_NONE ? 3 : 17);
        model_free(&m);
    }
}

static void test_round_trip_options(void **state)
{
    /* Tiny blocks and every restart interval class, with and without the
     * filter; big values (several times the block size). */
    struct {
        size_t block_size;
        int restart;
        int bloom;
        int comp;
    } cfg[] = {
        { 64, 1, 10, SST_COMP_NONE },  { 256, 2, 0, SST_COMP_LZ4 },
        { 512, 16, 4, SST_COMP_ZSTD }, { 1024, 1000, 20, SST_COMP_NONE },
        { 65536, 16, 10, SST_COMP_LZ4 },
    };
    genspec g = { 40, 300, 3, 30, 25 };
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        model m = gen_model(500 + i, 3000, &g);
        sst_options o = sst_options_default();
        o.block_size = cfg[i].block_size;
        o.restart_interval = cfg[i].restart;
        o.bloom_bits_per_key = cfg[i].bloom;
        o.compression = cfg[i].comp;
        round_trip(&m, &o, i, true, 2);
        model_free(&m);
    }
}

static void test_empty_table(void **state)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/empty.sst", dir);
    model m = { NULL, 0, 0 };
    sst_info info;
    build_table(path, &m, NULL, &info);
    assert_int_equal(info.smallest.len, 0);
    assert_int_equal(info.file_size, SST_HEADER_LEN + 4 + 5 + SST_FOOTER_LEN);
    sst_reader *r = NULL;
    assert_int_equal(sst_reader_open(vfs_posix(), path, 1, NULL, &r), DM_OK);
    buf val;
    buf_init(&val);
    enum sst_get_result res;
    assert_int_equal(sst_reader_get(r, buf_slice_of("a", 1), 5, &val, &res), DM_OK);
    assert_int_equal(res, SST_NONE);
    iter *it = sst_iter_new(r);
    iter_seek_first(it);
    assert_false(iter_valid(it));
    iter_seek_last(it);
    assert_false(iter_valid(it));
    iter_seek(it, buf_slice_of("abcdefghi", 9));
    assert_false(iter_valid(it));
    assert_int_equal(iter_status(it), DM_OK);
    iter_free(it);
    sst_reader_unref(r);
    uint64_t n = 99;
    assert_int_equal(sst_verify(vfs_posix(), path, NULL, NULL, &n), DM_OK);
    assert_int_equal(n, 0);
    buf_fini(&val);
    sst_info_fini(&info);
}

static void test_builder_errors(void **state)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/err.sst", dir);
    sst_builder *b = NULL;
    sst_options o = sst_options_default();
    o.block_size = 1;
    assert_int_equal(sst_builder_open(vfs_posix(), path, &o, &b), DM_EINVAL);
    assert_null(b);
    o = sst_options_default();
    o.compression = 7;
    assert_int_equal(sst_builder_open(vfs_posix(), path, &o, &b), DM_EINVAL);
    o = sst_options_default();
    o.restart_interval = 0;
    assert_int_equal(sst_builder_open(vfs_posix(), path, &o, &b), DM_EINVAL);

    assert_int_equal(sst_builder_open(vfs_posix(), path, NULL, &b), DM_OK);
    uint8_t k1[9], k2[9];
    ikey_encode(k1, buf_slice_of("b", 1), 5, IKEY_PUT);
    ikey_encode(k2, buf_slice_of("a", 1), 5, IKEY_PUT);
    assert_int_equal(sst_builder_add(b, buf_slice_of("short", 5), buf_slice_of("", 0)),
                     DM_EINVAL);
    assert_int_equal(sst_builder_add(b, buf_slice_of(k1, 9), buf_slice_of("x", 1)), DM_OK);
    assert_int_equal(sst_builder_add(b, buf_slice_of(k1, 9), buf_slice_of("x", 1)), DM_EINVAL);
    assert_int_equal(sst_builder_add(b, buf_slice_of(k2, 9), buf_slice_of("x", 1)), DM_EINVAL);
    assert_true(sst_builder_size(b) > SST_HEADER_LEN);
    sst_builder_abandon(b);
    sst_builder_abandon(NULL);

    /* A directory that does not exist. */
    snprintf(path, sizeof path, "%s/nope/x.sst", dir);
    assert_int_not_equal(sst_builder_open(vfs_posix(), path, NULL, &b), DM_OK);
    assert_null(b);
    sst_reader *r = (sst_reader *)1;
    assert_int_equal(sst_reader_open(vfs_posix(), path, 1, NULL, &r), DM_ENOTFOUND);
    assert_null(r);
}

static void test_builder_syscalls(void **state)
{
    /* A 16 MB table must be written in large appends. */
    char path[4096];
    snprintf(path, sizeof path, "%s/big.sst", dir);
    sst_builder *b = NULL;
    n_appends = 0;
    assert_int_equal(sst_builder_open(counting_vfs(), path, NULL, &b), DM_OK);
    uint8_t key[32], val[300];
    memset(val, 'v', sizeof val);
    uint64_t i = 0;
    while (sst_builder_size(b) < (16u << 20)) {
        char uk[24];
        snprintf(uk, sizeof uk, "key%020llu", (unsigned long long)i);
        ikey_encode(key, buf_slice_of(uk, 23), i + 1, IKEY_PUT);
        enc_u64(val, i);
        assert_int_equal(sst_builder_add(b, buf_slice_of(key, 31), buf_slice_of(val, sizeof val)),
                         DM_OK);
        i++;
    }
    sst_info info;
    assert_int_equal(sst_builder_finish(b, &info), DM_OK);
    print_message("16 MB table: %ld appends for %llu entries, %llu bytes\n", n_appends,
                  (unsigned long long)i, (unsigned long long)info.file_size);
    assert_true(n_appends < 64);
    sst_info_fini(&info);
}

/* Builds a table of 2000 entries whose values LZ4 shrinks by about a
 * quarter (150 random bytes, then 50 zero bytes) with the given rule; returns
 * its size, after checking that every entry reads back. */
static uint64_t build_saving(int compression, int min_saving_div)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/saving-%d-%d.sst", dir, compression, min_saving_div);
    sst_options o = sst_options_default();
    o.compression = compression;
    o.min_saving_div = min_saving_div;
    sst_builder *b = NULL;
    assert_int_equal(sst_builder_open(vfs_posix(), path, &o, &b), DM_OK);
    tu_rng rng;
    tu_rng_seed(&rng, 9);
    uint8_t key[32], val[200];
    for (uint64_t i = 0; i < 2000; i++) {
        char uk[24];
        snprintf(uk, sizeof uk, "key%020llu", (unsigned long long)i);
        ikey_encode(key, buf_slice_of(uk, 23), i + 1, IKEY_PUT);
        for (size_t j = 0; j < sizeof val; j++)
            val[j] = j >= 150 ? 0 : (uint8_t)tu_randn(&rng, 256);
        enc_u64(val, i);
        assert_int_equal(sst_builder_add(b, buf_slice_of(key, 31), buf_slice_of(val, sizeof val)),
                         DM_OK);
    }
    sst_info info;
    assert_int_equal(sst_builder_finish(b, &info), DM_OK);
    uint64_t size = info.file_size;
    sst_info_fini(&info);
    sst_reader *r = NULL;
    assert_int_equal(sst_reader_open(vfs_posix(), path, next_file_number++, NULL, &r), DM_OK);
    iter *it = sst_iter_new(r);
    assert_non_null(it);
    uint64_t n = 0;
    for (iter_seek_first(it); iter_valid(it); iter_next(it))
        assert_int_equal(dec_u64(iter_value(it).ptr), n++);
    assert_int_equal(iter_status(it), DM_OK);
    assert_int_equal(n, 2000);
    iter_free(it);
    sst_reader_unref(r);
    return size;
}

static void test_min_saving(void **state)
{
    /* A quarter saved: enough for the default 1/8, not for 1/3 or 1/1
     * (never), where the blocks are stored as they are. */
    uint64_t none = build_saving(SST_COMP_NONE, 8);
    uint64_t lz4_8 = build_saving(SST_COMP_LZ4, 8);
    uint64_t lz4_3 = build_saving(SST_COMP_LZ4, 3);
    uint64_t lz4_1 = build_saving(SST_COMP_LZ4, 1);
    print_message("table bytes: stored %llu, LZ4 1/8 %llu\n", (unsigned long long)none,
                  (unsigned long long)lz4_8);
    assert_true(lz4_8 < none - none / 8);
    assert_true(lz4_8 > none - none / 3);
    assert_int_equal(lz4_3, none);
    assert_int_equal(lz4_1, none);
    /* Out of range. */
    char path[4096];
    snprintf(path, sizeof path, "%s/saving-bad.sst", dir);
    sst_options o = sst_options_default();
    sst_builder *b = NULL;
    o.min_saving_div = 0;
    assert_int_equal(sst_builder_open(vfs_posix(), path, &o, &b), DM_EINVAL);
    o.min_saving_div = 65;
    assert_int_equal(sst_builder_open(vfs_posix(), path, &o, &b), DM_EINVAL);
    assert_null(b);
}

static void test_version_and_header(void **state)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/ver.sst", dir);
    model m = gen_model(3, 50, &gen_default);
    sst_info info;
    build_table(path, &m, NULL, &info);
    uint8_t *data;
    size_t len;
    assert_int_equal(vfs_read_all(vfs_posix(), path, &data, &len), DM_OK);
    assert_int_equal(dec_u64(data), SST_MAGIC);
    assert_int_equal(dec_u64(data + len - 8), SST_MAGIC);
    /* A future version with a valid checksum: DM_EVERSION, not corrupt. */
    uint8_t *ft = data + len - SST_FOOTER_LEN;
    enc_u32(ft + SST_FOOTER_VERSION, 2);
    uint32_t c = crc32c(ft, SST_FOOTER_CRC);
    c = crc32c_extend(c, ft + SST_FOOTER_MAGIC, 8);
    enc_u32(ft + SST_FOOTER_CRC, crc_mask(c));
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    sst_reader *r = NULL;
    assert_int_equal(sst_reader_open(vfs_posix(), path, 1, NULL, &r), DM_EVERSION);
    assert_null(r);
    dm_free(data);
    sst_info_fini(&info);
    model_free(&m);
}

/* A golden file: the worked example of docs/parts/sstable.md. */
static const uint8_t example_sst[] = {
    0x44, 0x4d, 0x44, 0x44, 0x53, 0x53, 0x54, 0x31, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x03, 0x61, 0x70, 0x70, 0x6c, 0x65,
    0x01, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x72, 0x65, 0x64, 0x06,
    0x07, 0x05, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x67, 0x72, 0x65,
    0x65, 0x6e, 0x00, 0x0f, 0x00, 0x61, 0x70, 0x72, 0x69, 0x63, 0x6f, 0x74,
    0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x22, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x2e, 0xf2, 0xba,
    0xf6, 0xc0, 0x48, 0x20, 0xc0, 0x40, 0x42, 0x48, 0x60, 0x07, 0x00, 0xd1,
    0xf9, 0x0a, 0x75, 0x00, 0x0f, 0x02, 0x61, 0x70, 0x72, 0x69, 0x63, 0x6f,
    0x74, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x40, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x5e, 0x22, 0x9d, 0xcb,
    0x63, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x55, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x24, 0x7d, 0x60, 0x19, 0x44, 0x4d, 0x44, 0x44,
    0x53, 0x53, 0x54, 0x31
};

static void build_example(const char *path, sst_info *info)
{
    sst_options o = sst_options_default();
    o.restart_interval = 2;
    sst_builder *b = NULL;
    assert_int_equal(sst_builder_open(vfs_posix(), path, &o, &b), DM_OK);
    struct {
        const char *k;
        uint64_t seq;
        int type;
        const char *v;
    } ex[] = {
        { "apple", 7, IKEY_PUT, "red" },
        { "apple", 3, IKEY_PUT, "green" },
        { "apricot", 5, IKEY_DEL, "" },
    };
    for (size_t i = 0; i < 3; i++) {
        uint8_t k[32];
        size_t kl = strlen(ex[i].k);
        ikey_encode(k, buf_slice_of(ex[i].k, kl), ex[i].seq, ex[i].type);
        assert_int_equal(sst_builder_add(b, buf_slice_of(k, kl + 8),
                                         buf_slice_of(ex[i].v, strlen(ex[i].v))),
                         DM_OK);
    }
    assert_int_equal(sst_builder_finish(b, info), DM_OK);
}

static void test_format_example(void **state)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/example.sst", dir);
    sst_info info;
    build_example(path, &info);
    uint8_t *data;
    size_t len;
    assert_int_equal(vfs_read_all(vfs_posix(), path, &data, &len), DM_OK);
    if (getenv("SST_DUMP_EXAMPLE")) {
        for (size_t i = 0; i < len; i++)
            printf("0x%02x,%s", data[i], i % 12 == 11 ? "\n" : " ");
        printf("\n");
    }
    /* The format is frozen: this table must be byte-identical to the one
     * in the specification, and the reader must read the golden bytes. */
    assert_int_equal(len, sizeof example_sst);
    assert_memory_equal(data, example_sst, len);
    sst_reader *r = NULL;
    assert_int_equal(sst_reader_open(vfs_posix(), path, 1, NULL, &r), DM_OK);
    buf val;
    buf_init(&val);
    enum sst_get_result res;
    assert_int_equal(sst_reader_get(r, buf_slice_of("apple", 5), 10, &val, &res), DM_OK);
    assert_int_equal(res, SST_FOUND);
    assert_slice_eq(buf_slice_of(val.ptr, val.len), buf_slice_of("red", 3));
    assert_int_equal(sst_reader_get(r, buf_slice_of("apple", 5), 6, &val, &res), DM_OK);
    assert_int_equal(res, SST_FOUND);
    assert_slice_eq(buf_slice_of(val.ptr, val.len), buf_slice_of("green", 5));
    assert_int_equal(sst_reader_get(r, buf_slice_of("apple", 5), 2, &val, &res), DM_OK);
    assert_int_equal(res, SST_NONE);
    assert_int_equal(sst_reader_get(r, buf_slice_of("apricot", 7), 9, &val, &res), DM_OK);
    assert_int_equal(res, SST_DELETED);
    buf_fini(&val);
    sst_reader_unref(r);
    dm_free(data);
    sst_info_fini(&info);
}

/* ------------------------------------------------------------ blocks */

static void test_block_malformed(void **state)
{
    /* Hand-made and mutated block contents: parse/seek/decode never read
     * out of bounds and report DM_ECORRUPT. */
    sst_block_builder bb;
    sst_bb_init(&bb, 3);
    tu_rng r;
    tu_rng_seed(&r, 9);
    model m = gen_model(11, 40, &gen_default);
    for (size_t i = 0; i < m.n; i++)
        assert_int_equal(sst_bb_add(&bb, mkey(&m, i), mval(&m, i)), DM_OK);
    buf_slice c;
    assert_int_equal(sst_bb_finish(&bb, &c), DM_OK);
    sst_block blk;
    const char *why;
    uint32_t bad;
    sst_decoded d;
    sst_decoded_init(&d);
    assert_int_equal(sst_block_parse(c.ptr, c.len, true, &blk, &why), DM_OK);
    assert_int_equal(sst_block_decode_all(&blk, &d, &why, &bad), DM_OK);
    assert_int_equal(d.n_ents, m.n);

    /* Fixed malformations. */
    uint8_t tiny[3] = { 0 };
    assert_int_equal(sst_block_parse(tiny, 3, true, &blk, &why), DM_ECORRUPT);
    uint8_t cnt_big[8] = { 0, 0, 0, 0, 9, 0, 0, 0 };
    assert_int_equal(sst_block_parse(cnt_big, 8, true, &blk, &why), DM_ECORRUPT);
    uint8_t no_restart[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
    assert_int_equal(sst_block_parse(no_restart, 8, true, &blk, &why), DM_ECORRUPT);
    /* entry: shared=0 non_shared=200 (past end) */
    uint8_t overrun[] = { 0, 200, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0 };
    assert_int_equal(sst_block_parse(overrun, sizeof overrun, true, &blk, &why), DM_OK);
    assert_int_equal(sst_block_decode_all(&blk, &d, &why, &bad), DM_ECORRUPT);
    /* one entry with a 3-byte key */
    uint8_t shortkey[] = { 0, 3, 0, 'a', 'b', 'c', 0, 0, 0, 0, 1, 0, 0, 0 };
    assert_int_equal(sst_block_parse(shortkey, sizeof shortkey, true, &blk, &why), DM_OK);
    assert_int_equal(sst_block_decode_all(&blk, &d, &why, &bad), DM_ECORRUPT);
    sst_kbuf kb;
    sst_kbuf_init(&kb);
    sst_target t = { buf_slice_of("zzz", 3), 0 };
    buf_slice k, v;
    assert_int_equal(sst_block_seek(&blk, &t, &kb, &k, &v, &why, &bad), DM_ECORRUPT);
    /* varint that never ends */
    uint8_t endless[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0, 0, 0, 0, 1, 0, 0, 0 };
    assert_int_equal(sst_block_parse(endless, sizeof endless, true, &blk, &why), DM_OK);
    assert_int_equal(sst_block_decode_all(&blk, &d, &why, &bad), DM_ECORRUPT);
    assert_int_equal(sst_block_seek(&blk, &t, &kb, &k, &v, &why, &bad), DM_ECORRUPT);

    /* Random mutations of a good block: anything may be reported, nothing
     * may crash (ASan watches), and whatever decodes is in order. */
    uint8_t *copy = xmalloc(c.len);
    for (int round = 0; round < 20000; round++) {
        memcpy(copy, c.ptr, c.len);
        int n_mut = 1 + (int)tu_randn(&r, 4);
        for (int j = 0; j < n_mut; j++)
            copy[tu_randn(&r, c.len)] ^= (uint8_t)(1 + tu_randn(&r, 255));
        size_t len = c.len - (tu_randn(&r, 8) == 0 ? tu_randn(&r, c.len) : 0);
        if (sst_block_parse(copy, len, true, &blk, &why))
            continue;
        (void)sst_block_decode_all(&blk, &d, &why, &bad);
        for (int j = 0; j < 4; j++) {
            buf_slice u = ikey_user(mkey(&m, tu_randn(&r, m.n)));
            sst_target tt = { u, tu_rand(&r) };
            int rc = sst_block_seek(&blk, &tt, &kb, &k, &v, &why, &bad);
            assert_true(rc == 0 || rc == 1 || rc == DM_ECORRUPT);
            if (rc == 1) {
                assert_true(k.len >= 8);
                assert_true(v.ptr >= copy && v.ptr + v.len <= copy + len);
            }
        }
    }
    free(copy);
    sst_kbuf_fini(&kb);
    sst_decoded_fini(&d);
    sst_bb_fini(&bb);
    model_free(&m);
}

/* --------------------------------------------------------- corruption */

typedef struct region {
    uint64_t off, end; /* [off, end) */
    int kind;          /* 0 header, 1 data, 2 filter, 3 index, 4 footer */
    size_t block;      /* data block number */
} region;

typedef struct ctable {
    char path[4096];
    char bad_path[4096];
    model m;
    uint8_t *clean;
    size_t len;
    region *rg;
    size_t n_rg;
    buf_slice *index_keys; /* copies of the clean index keys */
    size_t n_blocks;
    size_t *block_of; /* model entry -> data block */
    size_t *first_of; /* data block -> first model entry */
    vfs *v;
    sst_cache *cache;
    int n_reports;
    size_t cur_len; /* length of the damaged copy being checked */
} ctable;

static void ct_setup(ctable *ct, int comp, vfs *v, bool use_cache, uint64_t seed)
{
    memset(ct, 0, sizeof *ct);
    snprintf(ct->path, sizeof ct->path, "%s/clean.sst", dir);
    snprintf(ct->bad_path, sizeof ct->bad_path, "%s/bad.sst", dir);
    genspec g = { 16, 60, 0, 20, 20 };
    ct->m = gen_model(seed, 1000, &g);
    sst_options o = sst_options_default();
    o.block_size = 768;
    o.compression = comp;
    sst_info info;
    build_table(ct->path, &ct->m, &o, &info);
    sst_info_fini(&info);
    assert_int_equal(vfs_read_all(vfs_posix(), ct->path, &ct->clean, &ct->len), DM_OK);
    ct->v = v;
    if (use_cache)
        assert_int_equal(sst_cache_new(1 << 20, &ct->cache), DM_OK);

    sst_reader *r = NULL;
    assert_int_equal(sst_reader_open(vfs_posix(), ct->path, next_file_number++, NULL, &r),
                     DM_OK);
    ct->n_blocks = sst_reader_n_blocks(r);
    ct->index_keys = xmalloc(ct->n_blocks * sizeof(buf_slice));
    ct->rg = xmalloc((ct->n_blocks + 4) * sizeof(region));
    ct->rg[ct->n_rg++] = (region){ 0, SST_HEADER_LEN, 0, 0 };
    for (size_t i = 0; i < ct->n_blocks; i++) {
        uint64_t off, len;
        buf_slice k;
        sst_reader_block(r, i, &off, &len, &k);
        uint8_t *kc = xmalloc(k.len);
        memcpy(kc, k.ptr, k.len);
        ct->index_keys[i] = buf_slice_of(kc, k.len);
        ct->rg[ct->n_rg++] = (region){ off, off + len + SST_BLOCK_TRAILER_LEN, 1, i };
    }
    sst_reader_unref(r);
    const uint8_t *ft = ct->clean + ct->len - SST_FOOTER_LEN;
    uint64_t foff = dec_u64(ft + SST_FOOTER_FILTER_OFF);
    uint64_t flen = dec_u64(ft + SST_FOOTER_FILTER_LEN);
    uint64_t ioff = dec_u64(ft + SST_FOOTER_INDEX_OFF);
    uint64_t ilen = dec_u64(ft + SST_FOOTER_INDEX_LEN);
    assert_true(flen > 0);
    ct->rg[ct->n_rg++] = (region){ foff, foff + flen + 5, 2, 0 };
    ct->rg[ct->n_rg++] = (region){ ioff, ioff + ilen + 5, 3, 0 };
    ct->rg[ct->n_rg++] = (region){ ct->len - SST_FOOTER_LEN, ct->len, 4, 0 };
    /* The regions tile the file. */
    for (size_t i = 1; i < ct->n_rg; i++)
        assert_int_equal(ct->rg[i].off, ct->rg[i - 1].end);
    assert_int_equal(ct->rg[ct->n_rg - 1].end, ct->len);

    ct->block_of = xmalloc(ct->m.n * sizeof(size_t));
    ct->first_of = xmalloc((ct->n_blocks + 1) * sizeof(size_t));
    size_t b = 0;
    for (size_t i = 0; i < ct->m.n; i++) {
        while (ikey_cmp(ct->index_keys[b], mkey(&ct->m, i)) < 0)
            b++;
        if (i == 0 || ct->block_of[i - 1] != b)
            ct->first_of[b] = i;
        ct->block_of[i] = b;
    }
    assert_int_equal(b, ct->n_blocks - 1);
    ct->first_of[ct->n_blocks] = ct->m.n;
}

static void ct_teardown(ctable *ct)
{
    for (size_t i = 0; i < ct->n_blocks; i++)
        free((void *)ct->index_keys[i].ptr);
    free(ct->index_keys);
    free(ct->rg);
    free(ct->block_of);
    free(ct->first_of);
    dm_free(ct->clean);
    model_free(&ct->m);
    sst_cache_free(ct->cache);
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void on_damage(void *arg, const char *path, uint64_t off, const char *reason)
{
    ctable *ct = arg;
    assert_string_equal(path, ct->bad_path);
    assert_true(off <= ct->cur_len);
    assert_non_null(reason);
    ct->n_reports++;
}

static void assert_msg_names_file(const ctable *ct)
{
    const char *msg = err_last_msg();
    if (!strstr(msg, ct->bad_path) || !strstr(msg, "offset "))
        fail_msg("message does not name file and offset: %s", msg);
}

/* landing block of a get or seek for target: first block with index key
 * >= target (SIZE_MAX past the end). */
static size_t ct_landing(const ctable *ct, buf_slice target)
{
    size_t lo = 0, hi = ct->n_blocks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ikey_cmp(ct->index_keys[mid], target) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == ct->n_blocks ? SIZE_MAX : lo;
}

/*
 * ct_check -- writes `bad` (len bytes) and checks the reader and verifier
 * against the damaged-region set derived by comparing with the clean file.
 */
static void ct_check(ctable *ct, const uint8_t *bad, size_t len)
{
    write_file(ct->bad_path, bad, len);
    ct->cur_len = len;
    bool *dmg = calloc(ct->n_blocks, sizeof(bool));
    bool meta_damaged = len != ct->len;
    bool any = len != ct->len;
    for (size_t i = 0; i < ct->n_rg && len == ct->len; i++) {
        const region *g = &ct->rg[i];
        if (!memcmp(ct->clean + g->off, bad + g->off, g->end - g->off))
            continue;
        any = true;
        if (g->kind == 1)
            dmg[g->block] = true;
        else
            meta_damaged = true;
    }
    ct->n_reports = 0;
    uint64_t n = 0;
    int vrc = sst_verify(vfs_posix(), ct->bad_path, on_damage, ct, &n);
    if (any) {
        assert_int_equal(vrc, DM_ECORRUPT);
        assert_true(ct->n_reports > 0);
    } else {
        assert_int_equal(vrc, DM_OK);
    }

    sst_reader *r = NULL;
    int rc = sst_reader_open(ct->v, ct->bad_path, next_file_number++, ct->cache, &r);
    if (meta_damaged) {
        assert_int_equal(rc, DM_ECORRUPT);
        assert_null(r);
        assert_msg_names_file(ct);
        free(dmg);
        return;
    }
    assert_int_equal(rc, DM_OK);

    /* Gets: exact answers except where the lookup lands in a damaged block,
     * which must say DM_ECORRUPT. */
    buf val;
    buf_init(&val);
    const model *m = &ct->m;
    for (size_t i = 0; i < m->n; i++) {
        buf_slice u = ikey_user(mkey(m, i));
        uint64_t snaps[2] = { ikey_seq(mkey(m, i)), UINT64_MAX };
        for (int s = 0; s < 2; s++) {
            uint8_t tk[64];
            ikey_encode(tk, u, snaps[s] > IKEY_MAX_SEQ ? IKEY_MAX_SEQ : snaps[s],
                        IKEY_SEEK_TYPE);
            size_t land = ct_landing(ct, buf_slice_of(tk, u.len + 8));
            enum sst_get_result res;
            rc = sst_reader_get(r, u, snaps[s], &val, &res);
            if (land != SIZE_MAX && dmg[land]) {
                assert_int_equal(rc, DM_ECORRUPT);
                assert_msg_names_file(ct);
            } else {
                assert_int_equal(rc, DM_OK);
                size_t want = model_get(m, u, snaps[s]);
                assert_true(want != SIZE_MAX);
                assert_int_equal(res, ikey_type(mkey(m, want)) == IKEY_PUT ? SST_FOUND
                                                                           : SST_DELETED);
                if (res == SST_FOUND)
                    assert_slice_eq(buf_slice_of(val.ptr, val.len), mval(m, want));
            }
        }
    }
    buf_fini(&val);

    /* Forward: every undamaged block reads correctly; at a damaged block
     * the iterator stops with DM_ECORRUPT and a seek past it resumes. */
    iter *it = sst_iter_new(r);
    assert_non_null(it);
    size_t i = 0;
    iter_seek_first(it);
    while (i < m->n) {
        if (dmg[ct->block_of[i]]) {
            assert_false(iter_valid(it));
            assert_int_equal(iter_status(it), DM_ECORRUPT);
            assert_msg_names_file(ct);
            assert_int_equal(ct->first_of[ct->block_of[i]], i);
            i = ct->first_of[ct->block_of[i] + 1];
            if (i < m->n)
                iter_seek(it, mkey(m, i));
            continue;
        }
        assert_int_equal(iter_status(it), DM_OK);
        assert_at(it, m, i);
        iter_next(it);
        i++;
    }
    assert_false(iter_valid(it));
    assert_int_equal(iter_status(it), dmg[ct->n_blocks - 1] ? DM_ECORRUPT : DM_OK);

    /* Backward, the same. */
    i = m->n;
    iter_seek_last(it);
    while (i > 0) {
        size_t b = ct->block_of[i - 1];
        if (dmg[b]) {
            assert_false(iter_valid(it));
            assert_int_equal(iter_status(it), DM_ECORRUPT);
            i = ct->first_of[b];
            if (i > 0)
                iter_seek(it, mkey(m, i - 1));
            continue;
        }
        assert_int_equal(iter_status(it), DM_OK);
        assert_at(it, m, i - 1);
        iter_prev(it);
        i--;
    }
    assert_false(iter_valid(it));
    iter_free(it);
    sst_reader_unref(r);
    free(dmg);
}

static void corruption_suite(int comp, vfs *v, bool use_cache, uint64_t seed)
{
    ctable ct;
    ct_setup(&ct, comp, v, use_cache, seed);
    uint8_t *bad = xmalloc(ct.len);
    tu_rng r;
    tu_rng_seed(&r, seed);

    /* Unchanged copy: everything reads. */
    ct_check(&ct, ct.clean, ct.len);

    /* A bit in every region (data blocks, filter, index, footer, header),
     * at the start, in the middle, in the trailer. */
    for (size_t g = 0; g < ct.n_rg; g++) {
        uint64_t span = ct.rg[g].end - ct.rg[g].off;
        uint64_t picks[3] = { 0, tu_randn(&r, span), span - 1 };
        for (int p = 0; p < 3; p++) {
            memcpy(bad, ct.clean, ct.len);
            bad[ct.rg[g].off + picks[p]] ^= (uint8_t)(1u << tu_randn(&r, 8));
            ct_check(&ct, bad, ct.len);
        }
    }
    /* Single bytes sampled across the file. */
    for (int k = 0; k < 80; k++) {
        memcpy(bad, ct.clean, ct.len);
        bad[tu_randn(&r, ct.len)] ^= (uint8_t)(1 + tu_randn(&r, 255));
        ct_check(&ct, bad, ct.len);
    }
    /* Zeroed ranges, some spanning several blocks. */
    for (int k = 0; k < 30; k++) {
        memcpy(bad, ct.clean, ct.len);
        size_t at = tu_randn(&r, ct.len);
        size_t n = 1 + tu_randn(&r, k < 20 ? 64 : 3000);
        if (at + n > ct.len)
            n = ct.len - at;
        memset(bad + at, 0, n);
        ct_check(&ct, bad, ct.len);
    }
    /* Two damaged data blocks at once. */
    for (int k = 0; k < 10; k++) {
        memcpy(bad, ct.clean, ct.len);
        for (int j = 0; j < 2; j++) {
            const region *g = &ct.rg[1 + tu_randn(&r, ct.n_blocks)];
            bad[g->off + tu_randn(&r, g->end - g->off)] ^= 0x10;
        }
        ct_check(&ct, bad, ct.len);
    }
    /* Truncation: open fails, verify reports. */
    size_t cuts[] = { 0, 1, 15, 16, 17, 100, ct.len / 2, ct.len - 65, ct.len - 64,
                      ct.len - 63, ct.len - 8, ct.len - 1 };
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++)
        ct_check(&ct, ct.clean, cuts[k]);
    /* Appended garbage shifts the footer. */
    uint8_t *longer = xmalloc(ct.len + 100);
    memcpy(longer, ct.clean, ct.len);
    memset(longer + ct.len, 0xab, 100);
    ct_check(&ct, longer, ct.len + 100);
    free(longer);

    free(bad);
    ct_teardown(&ct);
}

static void test_corruption_none_mmap(void **state)
{
    corruption_suite(SST_COMP_NONE, vfs_posix(), false, 101);
}

static void test_corruption_lz4_mmap_cache(void **state)
{
    corruption_suite(SST_COMP_LZ4, vfs_posix(), true, 102);
}

static void test_corruption_zstd_pread_cache(void **state)
{
    corruption_suite(SST_COMP_ZSTD, nommap_vfs(), true, 103);
}

static void test_corruption_none_pread(void **state)
{
    corruption_suite(SST_COMP_NONE, nommap_vfs(), false, 104);
}

/* ------------------------------------------------------- concurrency */

typedef struct cthread {
    sst_reader *r;
    const model *m;
    uint64_t seed;
    int errors;
} cthread;

static void *get_worker(void *arg)
{
    cthread *t = arg;
    tu_rng r;
    tu_rng_seed(&r, t->seed);
    buf val;
    buf_init(&val);
    sst_pins pins = SST_PINS_INIT;
    for (int i = 0; i < 20000; i++) {
        size_t j = tu_randn(&r, t->m->n);
        buf_slice u = ikey_user(mkey(t->m, j));
        uint64_t snap = tu_randn(&r, 2) ? UINT64_MAX : ikey_seq(mkey(t->m, j));
        enum sst_get_result res;
        /* Odd workers keep blocks pinned between gets, letting go of them
         * every 50 gets. */
        int rc = t->seed % 2 ? sst_reader_get_pinned(t->r, &pins, u, snap, &val, &res)
                             : sst_reader_get(t->r, u, snap, &val, &res);
        if (i % 50 == 49)
            sst_pins_release(&pins);
        if (rc != DM_OK) {
            t->errors++;
            continue;
        }
        size_t want = model_get(t->m, u, snap);
        int wres = ikey_type(mkey(t->m, want)) == IKEY_PUT ? SST_FOUND : SST_DELETED;
        if ((int)res != wres ||
            (res == SST_FOUND &&
             buf_slice_cmp(buf_slice_of(val.ptr, val.len), mval(t->m, want)) != 0))
            t->errors++;
        if (i % 1000 == 0) {
            /* An iterator in the mix, pinning blocks while others evict. */
            iter *it = sst_iter_new(t->r);
            size_t k = j;
            for (iter_seek(it, mkey(t->m, j)); iter_valid(it) && k < j + 200; iter_next(it), k++)
                if (buf_slice_cmp(iter_key(it), mkey(t->m, k)))
                    t->errors++;
            if (iter_status(it))
                t->errors++;
            iter_free(it);
        }
    }
    sst_pins_release(&pins);
    buf_fini(&val);
    return NULL;
}

static void test_concurrent_gets(void **state)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/conc.sst", dir);
    genspec g = { 20, 100, 0, 20, 10 };
    model m = gen_model(42, 20000, &g);
    for (int mode = 0; mode < 3; mode++) {
        sst_options o = sst_options_default();
        o.compression = mode == 0 ? SST_COMP_NONE : mode == 1 ? SST_COMP_LZ4 : SST_COMP_ZSTD;
        sst_info info;
        build_table(path, &m, &o, &info);
        sst_info_fini(&info);
        sst_cache *c = NULL;
        assert_int_equal(sst_cache_new(32 << 10, &c), DM_OK); /* tiny: constant eviction */
        sst_reader *r = NULL;
        assert_int_equal(sst_reader_open(mode == 2 ? nommap_vfs() : vfs_posix(), path,
                                         next_file_number++, c, &r), DM_OK);
        pthread_t th[4];
        cthread ct[4];
        for (int i = 0; i < 4; i++) {
            ct[i] = (cthread){ r, &m, 1000 + (uint64_t)i, 0 };
            assert_int_equal(pthread_create(&th[i], NULL, get_worker, &ct[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(ct[i].errors, 0);
        }
        sst_reader_unref(r);
        assert_true(sst_cache_usage(c) <= (32 << 10) + 16 * 8192);
        sst_cache_free(c);
    }
    model_free(&m);
}

/* Gets through pins answer as plain gets do, pin at most SST_PINS
 * blocks, and let go of them all on release. */
static void test_pinned_gets(void **state)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/pins.sst", dir);
    genspec g = { 20, 100, 0, 20, 10 };
    model m = gen_model(7, 5000, &g);
    sst_options o = sst_options_default();
    o.compression = SST_COMP_LZ4;
    sst_info info;
    build_table(path, &m, &o, &info);
    sst_info_fini(&info);
    sst_cache *c = NULL;
    assert_int_equal(sst_cache_new(64 << 10, &c), DM_OK);
    sst_reader *r = NULL;
    assert_int_equal(sst_reader_open(vfs_posix(), path, next_file_number++, c, &r), DM_OK);
    sst_pins pins = SST_PINS_INIT;
    buf a, b;
    buf_init(&a);
    buf_init(&b);
    tu_rng rng;
    tu_rng_seed(&rng, 11);
    for (int i = 0; i < 20000; i++) {
        /* Runs of gets near each other, then a jump. */
        size_t j = i % 40 < 30 ? (size_t)(i / 40 * 97 + tu_randn(&rng, 60)) % m.n
                               : tu_randn(&rng, m.n);
        buf_slice u = ikey_user(mkey(&m, j));
        enum sst_get_result ra, rb;
        assert_int_equal(sst_reader_get_pinned(r, &pins, u, UINT64_MAX, &a, &ra), DM_OK);
        assert_int_equal(sst_reader_get(r, u, UINT64_MAX, &b, &rb), DM_OK);
        assert_int_equal(ra, rb);
        assert_slice_eq(buf_slice_of(a.ptr, a.len), buf_slice_of(b.ptr, b.len));
        assert_true(pins.n <= SST_PINS);
        if (i == 10000) {
            /* Pinned blocks cannot be evicted: usage stays above what the
             * pins hold; once released, the cache can shrink again. */
            assert_int_equal(pins.n, SST_PINS);
            assert_true(sst_cache_usage(c) >= SST_PINS * 1024);
            sst_pins_release(&pins);
            assert_int_equal(pins.n, 0);
        }
    }
    sst_pins_release(&pins);
    sst_pins_release(&pins); /* twice is harmless */
    buf_fini(&a);
    buf_fini(&b);
    sst_reader_unref(r);
    assert_true(sst_cache_usage(c) <= (64 << 10));
    sst_cache_free(c);
    model_free(&m);
}

/* ---------------------------------------------------------------- OOM */

static void test_out_of_memory(void **state)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/oom.sst", dir);
    model m = gen_model(8, 400, &gen_default);
    sst_options o = sst_options_default();
    o.block_size = 512;
    o.compression = SST_COMP_LZ4;
    sst_info info;
    build_table(path, &m, &o, &info);
    sst_info_fini(&info);
    /* Fail the k-th allocation in open + get + iterate, for every k until
     * a whole pass succeeds: each step either works or says DM_ENOMEM. */
    for (int64_t k = 1;; k++) {
        sst_cache *c = NULL;
        sst_reader *r = NULL;
        int64_t before = alloc_failures();
        alloc_fail_after(k, 0);
        int rc = sst_cache_new(1 << 20, &c);
        if (!rc)
            rc = sst_reader_open(nommap_vfs(), path, next_file_number++, c, &r);
        buf val;
        buf_init(&val);
        for (size_t i = 0; !rc && i < m.n; i += 7) {
            enum sst_get_result res;
            rc = sst_reader_get(r, ikey_user(mkey(&m, i)), UINT64_MAX, &val, &res);
        }
        if (!rc) {
            iter *it = sst_iter_new(r);
            if (!it) {
                rc = DM_ENOMEM;
            } else {
                size_t i = 0;
                for (iter_seek_first(it); iter_valid(it); iter_next(it))
                    assert_at(it, &m, i++);
                rc = iter_status(it);
                if (!rc)
                    assert_int_equal(i, m.n);
                iter_free(it);
            }
        }
        alloc_fail_after(0, 0);
        bool fired = alloc_failures() > before;
        buf_fini(&val);
        sst_reader_unref(r);
        sst_cache_free(c);
        if (!fired) {
            assert_int_equal(rc, DM_OK);
            break;
        }
        assert_true(rc == DM_OK || rc == DM_ENOMEM);
    }
    model_free(&m);
}

static void test_io_errors(void **state)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/io.sst", dir);
    model m = gen_model(21, 2000, &gen_default);
    sst_info info;
    build_table(path, &m, NULL, &info);
    sst_info_fini(&info);
    vfs *v = failing_vfs();

    /* Reads: open fails; gets and iteration report DM_EIO, never data. */
    fail_pread_rc = DM_EIO;
    sst_reader *r = NULL;
    assert_int_equal(sst_reader_open(v, path, next_file_number++, NULL, &r), DM_EIO);
    assert_null(r);
    fail_pread_rc = 0;
    assert_int_equal(sst_reader_open(v, path, next_file_number++, NULL, &r), DM_OK);
    fail_pread_rc = DM_EIO;
    buf val;
    buf_init(&val);
    enum sst_get_result res;
    assert_int_equal(sst_reader_get(r, ikey_user(mkey(&m, 0)), UINT64_MAX, &val, &res),
                     DM_EIO);
    assert_int_equal(res, SST_NONE);
    assert_int_equal(val.len, 0);
    iter *it = sst_iter_new(r);
    iter_seek_first(it);
    assert_false(iter_valid(it));
    assert_int_equal(iter_status(it), DM_EIO);
    fail_pread_rc = 0;
    iter_seek_first(it); /* a new seek retries */
    assert_int_equal(iter_status(it), DM_OK);
    assert_at(it, &m, 0);
    iter_free(it);
    sst_reader_unref(r);
    buf_fini(&val);

    /* Writes: the error reaches the caller and sticks. */
    sst_builder *b = NULL;
    assert_int_equal(sst_builder_open(v, path, NULL, &b), DM_OK);
    fail_append_rc = DM_ENOSPC;
    int rc = DM_OK;
    size_t i = 0;
    for (; i < m.n && rc == DM_OK; i++)
        rc = sst_builder_add(b, mkey(&m, i), mval(&m, i));
    if (rc == DM_OK)
        rc = sst_builder_finish(b, &info);
    else
        sst_builder_abandon(b);
    assert_int_equal(rc, DM_ENOSPC);
    fail_append_rc = 0;

    assert_int_equal(sst_builder_open(v, path, NULL, &b), DM_OK);
    assert_int_equal(sst_builder_add(b, mkey(&m, 0), mval(&m, 0)), DM_OK);
    fail_sync_rc = DM_EIO;
    assert_int_equal(sst_builder_finish(b, &info), DM_EIO);
    assert_int_equal(info.smallest.len, 0);
    fail_sync_rc = 0;
    model_free(&m);
}

/* ------------------------------------------------- mapped pages */

/* n entries "key%08zu" -> about 1,000 bytes of words from a small
 * dictionary: LZ4 halves them, so the blocks are stored compressed. */
static model gen_words(size_t n, uint64_t seed)
{
    static const char *const words[] = { "memory ", "agent ", "recall ", "salience ",
                                         "tables ", "Austin ", "coffee ", "weekend ",
                                         "sister ", "hiking ", "guitar ", "morning " };
    tu_rng r;
    tu_rng_seed(&r, seed);
    model m = { xmalloc(n * sizeof(ment)), n, n };
    for (size_t i = 0; i < n; i++) {
        char uk[32];
        snprintf(uk, sizeof uk, "key%08zu", i);
        ment *e = &m.e[i];
        e->kl = strlen(uk) + IKEY_TRAILER_LEN;
        e->k = xmalloc(e->kl);
        ikey_encode(e->k, buf_slice_of((const uint8_t *)uk, strlen(uk)), i + 1, IKEY_PUT);
        e->v = xmalloc(1100);
        e->vl = 0;
        while (e->vl < 1000) {
            const char *w = words[tu_randn(&r, sizeof words / sizeof words[0])];
            memcpy(e->v + e->vl, w, strlen(w));
            e->vl += strlen(w);
        }
    }
    return m;
}

/* The process's resident file-backed bytes. */
static uint64_t file_resident(void)
{
    uint64_t file = 0;
    assert_int_equal(proc_resident(NULL, &file), DM_OK);
    return file;
}

static void get_all(sst_reader *r, const model *m)
{
    buf val;
    buf_init(&val);
    for (size_t i = 0; i < m->n; i++)
        check_one_get(r, m, ikey_user(mkey(m, i)), UINT64_MAX, &val);
    buf_fini(&val);
}

/* sst_reader_drop_pages gives the mapping's pages back to the kernel, and
 * reads go on; compressed blocks in the block cache are then read without
 * touching the mapping, so they do not bring its pages back. */
static void test_drop_pages(void **state)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/drop.sst", dir);
    model m = gen_words(16000, 5); /* 16 MB of values */
    for (int comp = 0; comp < 2; comp++) {
        sst_options o = sst_options_default();
        o.compression = comp ? SST_COMP_LZ4 : SST_COMP_NONE;
        sst_info info;
        build_table(path, &m, &o, &info);
        uint64_t size = info.file_size;
        sst_info_fini(&info);
        sst_cache *c = NULL;
        assert_int_equal(sst_cache_new(64 << 20, &c), DM_OK); /* holds every block */
        sst_reader *r = NULL;
        assert_int_equal(sst_reader_open(vfs_posix(), path, next_file_number++, c, &r), DM_OK);
        assert_true(sst_reader_is_mmapped(r));
        get_all(r, &m); /* every block read from the mapping once */
        uint64_t before = file_resident();
        assert_int_equal(sst_reader_drop_pages(r, 0), DM_OK);
        uint64_t after = file_resident();
        if (before < after + size / 2)
            fail_msg("%s: %llu MB resident before the drop, %llu after, table %llu MB",
                     comp ? "lz4" : "none", (unsigned long long)(before >> 20),
                     (unsigned long long)(after >> 20), (unsigned long long)(size >> 20));
        get_all(r, &m); /* right answers after the drop */
        uint64_t again = file_resident();
        if (comp && again > after + size / 8)
            fail_msg("lz4: reads from the cache brought back %llu of %llu MB",
                     (unsigned long long)((again - after) >> 20),
                     (unsigned long long)(size >> 20));
        if (!comp && again < after + size / 2)
            fail_msg("none: reads in place mapped only %llu of %llu MB again",
                     (unsigned long long)((again - after) >> 20),
                     (unsigned long long)(size >> 20));
        sst_reader_unref(r);
        sst_cache_free(c);
    }
    model_free(&m);

    /* Without a mapping there is nothing to drop. */
    sst_reader *r = NULL;
    assert_int_equal(sst_reader_open(nommap_vfs(), path, next_file_number++, NULL, &r), DM_OK);
    assert_int_equal(sst_reader_drop_pages(r, 0), DM_OK);
    sst_reader_unref(r);
}

static void get_range(sst_reader *r, const model *m, size_t from, size_t to)
{
    buf val;
    buf_init(&val);
    for (size_t i = from; i < to; i++)
        check_one_get(r, m, ikey_user(mkey(m, i)), UINT64_MAX, &val);
    buf_fini(&val);
}

/* With a page clock, the reader knows which blocks were read when, and
 * gives back only the pages of those read longest ago. */
static void test_drop_old_pages(void **state)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/drop_old.sst", dir);
    model m = gen_words(16000, 6);
    size_t half = m.n / 2;
    sst_options o = sst_options_default();
    o.compression = SST_COMP_NONE; /* read in place */
    sst_info info;
    build_table(path, &m, &o, &info);
    uint64_t size = info.file_size;
    sst_info_fini(&info);
    _Atomic uint16_t clock = 1;
    sst_reader *r = NULL;
    assert_int_equal(sst_reader_open(vfs_posix(), path, next_file_number++, NULL, &r), DM_OK);
    sst_reader_set_page_clock(r, &clock);
    get_range(r, &m, 0, half); /* read at 1 */
    atomic_store(&clock, 40);
    get_range(r, &m, half, m.n); /* read at 40 */
    uint64_t ages[SST_AGE_BUCKETS] = { 0 };
    sst_reader_page_ages(r, ages);
    /* Age 39 is in bucket 1 + floor(log2(39)) = 6. */
    for (unsigned b = 0; b < SST_AGE_BUCKETS; b++)
        if (b != 0 && b != 6)
            assert_int_equal(ages[b], 0);
    assert_true(ages[6] > size / 3 && ages[0] > size / 3);
    assert_true(ages[6] + ages[0] <= size);

    uint64_t before = file_resident();
    assert_int_equal(sst_reader_drop_pages(r, 1), DM_OK); /* all but age 0 */
    uint64_t after = file_resident();
    if (before < after + ages[6] / 2 || before > after + ages[6] + size / 8)
        fail_msg("%llu MB resident before, %llu after: the old half is %llu MB",
                 (unsigned long long)(before >> 20), (unsigned long long)(after >> 20),
                 (unsigned long long)(ages[6] >> 20));
    get_range(r, &m, half, m.n); /* still mapped: nothing comes back */
    uint64_t again = file_resident();
    if (again > after + size / 16)
        fail_msg("reading the recent half mapped %llu MB again",
                 (unsigned long long)((again - after) >> 20));
    uint64_t ages2[SST_AGE_BUCKETS] = { 0 };
    sst_reader_page_ages(r, ages2);
    assert_int_equal(ages2[6], 0); /* dropped: not known to be mapped */
    assert_int_equal(ages2[0], ages[0]);
    get_range(r, &m, 0, half); /* and the old half reads right */
    sst_reader_unref(r);
    model_free(&m);
}

static int setup(void **state)
{
    dir = tu_tmpdir("test_sstable");
    return 0;
}

static int teardown(void **state)
{
    tu_rmrf(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_example),
        cmocka_unit_test(test_empty_table),
        cmocka_unit_test(test_builder_errors),
        cmocka_unit_test(test_min_saving),
        cmocka_unit_test(test_version_and_header),
        cmocka_unit_test(test_block_malformed),
        cmocka_unit_test(test_round_trip_sizes),
        cmocka_unit_test(test_round_trip_options),
        cmocka_unit_test(test_round_trip_100k),
        cmocka_unit_test(test_builder_syscalls),
        cmocka_unit_test(test_corruption_none_mmap),
        cmocka_unit_test(test_corruption_lz4_mmap_cache),
        cmocka_unit_test(test_corruption_zstd_pread_cache),
        cmocka_unit_test(test_corruption_none_pread),
        cmocka_unit_test(test_concurrent_gets),
        cmocka_unit_test(test_pinned_gets),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_io_errors),
        cmocka_unit_test(test_drop_pages),
        cmocka_unit_test(test_drop_old_pages),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
