/*
 * fuzz_sstable.c -- fuzz target for the SSTable reader and verifier
 * (src/storage/sstable.c, block.c, bloom.c, block_cache.c).
 *
 * The input is a whole table file.  It is written to a scratch file, then:
 *
 *   1. sst_verify reads every block.  Its verdict decides how much the
 *      harness may expect below: DM_OK promises a table that is clean in
 *      every respect the reader checks.
 *   2. The table is opened four ways -- mapped or read with pread (a VFS
 *      whose mmap says "not supported"), each with and without a block
 *      cache -- and each reader is driven the same way: full forward
 *      iteration, full reverse iteration, seeks and point gets.  The four
 *      must agree exactly (same codes, same entries, same answers): they
 *      differ only in where the bytes come from, so any disagreement is a
 *      check that one path skips.
 *   3. Whatever happens, nothing may crash or read outside a buffer
 *      (ASan), every code is one the header documents, and no dm_malloc'd
 *      byte survives the input.
 *
 * When sst_verify said DM_OK, the harness also holds the reader to a model
 * built from the forward iteration: keys strictly increasing in ikey_cmp
 * order, as many as verify counted, reverse iteration the exact mirror,
 * each seek to an entry's key landing on it, and each get answering what a
 * linear scan of the entries answers (newest version with seq <= snapshot;
 * the bloom filter must never hide a key).  Also: open failing means
 * verify must have complained.
 *
 * Each input runs twice: as given, and with every checksum it can locate
 * recomputed (footer; index and filter blocks from the footer's handles;
 * data blocks from the handles in an uncompressed index), so mutations
 * reach the block, index and filter decoders behind the CRCs.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/crc.h"
#include "base/err.h"
#include "fuzz_util.h"
#include "storage/ikey.h"
#include "storage/iter.h"
#include "storage/sstable.h"
#include "storage/sstable_format.h"

/* Caps that keep one input's work bounded even when a compressed block
 * decompresses into a great many entries. */
#define MAX_STEPS 200000         /* iterator steps per direction */
#define MAX_MODEL_BYTES (16u << 20)
#define MAX_SAMPLES 48           /* entries used as get/seek targets */
#define N_INPUT_TARGETS 8        /* get targets cut from the input bytes */

/* ------------------------------------------------------------- model */

/* The entries seen by forward iteration: keys and values copied into one
 * byte buffer, offsets in a side array. */
typedef struct model {
    buf bytes;
    size_t *off; /* entry i: key at off[2i], value at off[2i+1] */
    size_t *len;
    size_t n, cap;
    bool is_complete; /* every entry fit under the caps */
} model;

static void model_init(model *m)
{
    memset(m, 0, sizeof *m);
    buf_init(&m->bytes);
    m->is_complete = true;
}

static void model_fini(model *m)
{
    buf_fini(&m->bytes);
    free(m->off);
    free(m->len);
    memset(m, 0, sizeof *m);
}

static void model_add(model *m, buf_slice k, buf_slice v)
{
    if (!m->is_complete)
        return;
    if (m->bytes.len + k.len + v.len > MAX_MODEL_BYTES) {
        m->is_complete = false;
        return;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 64;
        m->off = realloc(m->off, 2 * m->cap * sizeof *m->off);
        m->len = realloc(m->len, 2 * m->cap * sizeof *m->len);
        FUZZ_CHECK(m->off && m->len);
    }
    m->off[2 * m->n] = m->bytes.len;
    m->len[2 * m->n] = k.len;
    FUZZ_CHECK(buf_append(&m->bytes, k.ptr, k.len) == DM_OK);
    m->off[2 * m->n + 1] = m->bytes.len;
    m->len[2 * m->n + 1] = v.len;
    FUZZ_CHECK(buf_append(&m->bytes, v.ptr, v.len) == DM_OK);
    m->n++;
}

static buf_slice model_key(const model *m, size_t i)
{
    return buf_slice_of(m->bytes.ptr + m->off[2 * i], m->len[2 * i]);
}

static buf_slice model_val(const model *m, size_t i)
{
    return buf_slice_of(m->bytes.ptr + m->off[2 * i + 1], m->len[2 * i + 1]);
}

static bool slice_eq(buf_slice a, buf_slice b)
{
    return buf_slice_cmp(a, b) == 0;
}

/* model_get -- what sst_reader_get must answer on a clean table: the
 * first entry (newest version) of user key u with seq <= snap. */
static enum sst_get_result model_get(const model *m, buf_slice u, uint64_t snap,
                                     buf_slice *val)
{
    if (snap > IKEY_MAX_SEQ)
        snap = IKEY_MAX_SEQ;
    for (size_t i = 0; i < m->n; i++) {
        buf_slice k = model_key(m, i);
        if (!slice_eq(ikey_user(k), u) || ikey_seq(k) > snap)
            continue;
        if (ikey_type(k) == IKEY_DEL)
            return SST_DELETED;
        *val = model_val(m, i);
        return SST_FOUND;
    }
    return SST_NONE;
}

/* -------------------------------------------------------- one reader */

/* What one reader reported; two open modes must produce equal ones. */
typedef struct outcome {
    int open_rc;
    uint64_t entries;         /* sst_reader_entries */
    uint64_t n_fwd, fwd_hash;
    int fwd_status;
    uint64_t n_rev, rev_hash;
    int rev_status;
    uint64_t probe_hash;      /* gets and seeks: codes, results, values */
} outcome;

typedef struct ctx {
    const char *path;
    uint64_t file_size;
    const uint8_t *data; /* the input, for cutting get targets */
    size_t size;
    int verify_rc;
    uint64_t verify_entries;
    uint64_t n_damage;
    model m;        /* filled by the first reader that opens */
    bool has_model;
} ctx;

static uint64_t hash_entry(uint64_t h, buf_slice k, buf_slice v)
{
    h = fuzz_hash_u64(h, k.len);
    h = fuzz_hash(h, k.ptr, k.len);
    h = fuzz_hash_u64(h, v.len);
    return fuzz_hash(h, v.ptr, v.len);
}

static void forward(ctx *c, sst_reader *r, outcome *o, model *m)
{
    iter *it = sst_iter_new(r);
    FUZZ_CHECK(it != NULL);
    buf prev;
    buf_init(&prev);
    o->fwd_hash = FUZZ_HASH_INIT;
    for (iter_seek_first(it); iter_valid(it) && o->n_fwd < MAX_STEPS;
         iter_next(it)) {
        buf_slice k = iter_key(it), v = iter_value(it);
        FUZZ_CHECKF(k.len >= IKEY_TRAILER_LEN, "key of %zu bytes", k.len);
        if (c->verify_rc == DM_OK && o->n_fwd > 0)
            FUZZ_CHECK(ikey_cmp(buf_slice_of(prev.ptr, prev.len), k) < 0);
        buf_clear(&prev);
        FUZZ_CHECK(buf_append(&prev, k.ptr, k.len) == DM_OK);
        o->fwd_hash = hash_entry(o->fwd_hash, k, v);
        if (m)
            model_add(m, k, v);
        o->n_fwd++;
    }
    o->fwd_status = iter_status(it);
    if (m && (o->n_fwd >= MAX_STEPS || o->fwd_status != DM_OK))
        m->is_complete = false;
    FUZZ_CHECKF(o->fwd_status == DM_OK || o->fwd_status == DM_ECORRUPT,
                "forward iteration: %d (%s)", o->fwd_status, err_last_msg());
    buf_fini(&prev);
    iter_free(it);
}

static void reverse(ctx *c, sst_reader *r, outcome *o, const model *m)
{
    iter *it = sst_iter_new(r);
    FUZZ_CHECK(it != NULL);
    o->rev_hash = FUZZ_HASH_INIT;
    for (iter_seek_last(it); iter_valid(it) && o->n_rev < MAX_STEPS;
         iter_prev(it)) {
        buf_slice k = iter_key(it), v = iter_value(it);
        FUZZ_CHECK(k.len >= IKEY_TRAILER_LEN);
        if (m && m->is_complete && c->verify_rc == DM_OK) {
            FUZZ_CHECK(o->n_rev < m->n);
            size_t i = m->n - 1 - o->n_rev;
            FUZZ_CHECK(slice_eq(k, model_key(m, i)));
            FUZZ_CHECK(slice_eq(v, model_val(m, i)));
        }
        o->rev_hash = hash_entry(o->rev_hash, k, v);
        o->n_rev++;
    }
    o->rev_status = iter_status(it);
    FUZZ_CHECKF(o->rev_status == DM_OK || o->rev_status == DM_ECORRUPT,
                "reverse iteration: %d (%s)", o->rev_status, err_last_msg());
    iter_free(it);
}

static void probe_get(ctx *c, sst_reader *r, outcome *o, const model *m,
                      buf_slice u, uint64_t snap)
{
    buf val;
    buf_init(&val);
    enum sst_get_result res = (enum sst_get_result)99;
    int rc = sst_reader_get(r, u, snap, &val, &res);
    FUZZ_CHECKF(rc == DM_OK || rc == DM_ECORRUPT, "get: %d (%s)", rc,
                err_last_msg());
    FUZZ_CHECK(res == SST_NONE || res == SST_FOUND || res == SST_DELETED);
    if (rc != DM_OK)
        FUZZ_CHECK(res == SST_NONE);
    if (res != SST_FOUND)
        FUZZ_CHECK(val.len == 0);
    if (m && m->is_complete && c->verify_rc == DM_OK) {
        FUZZ_CHECK(rc == DM_OK);
        buf_slice want = { 0 };
        enum sst_get_result exp = model_get(m, u, snap, &want);
        FUZZ_CHECKF(res == exp, "get(%zu-byte key, seq %llu): %d, model %d",
                    u.len, (unsigned long long)snap, (int)res, (int)exp);
        if (exp == SST_FOUND)
            FUZZ_CHECK(slice_eq(buf_slice_of(val.ptr, val.len), want));
    }
    uint64_t h = fuzz_hash_u64(o->probe_hash, (uint64_t)(int64_t)rc);
    h = fuzz_hash_u64(h, (uint64_t)res);
    o->probe_hash = fuzz_hash(h, val.ptr, val.len);
    buf_fini(&val);
}

static void probe_seek(ctx *c, iter *it, outcome *o, const model *m,
                       buf_slice target, size_t want_index)
{
    iter_seek(it, target);
    int st = iter_status(it);
    FUZZ_CHECKF(st == DM_OK || st == DM_ECORRUPT, "seek: %d", st);
    uint64_t h = fuzz_hash_u64(o->probe_hash, (uint64_t)(int64_t)st);
    if (iter_valid(it)) {
        buf_slice k = iter_key(it), v = iter_value(it);
        FUZZ_CHECK(k.len >= IKEY_TRAILER_LEN);
        h = hash_entry(h, k, v);
        if (m && m->is_complete && c->verify_rc == DM_OK &&
            want_index < m->n) {
            FUZZ_CHECK(slice_eq(k, model_key(m, want_index)));
            FUZZ_CHECK(slice_eq(v, model_val(m, want_index)));
        }
    } else {
        h = fuzz_hash_u64(h, 0xdead);
        if (m && m->is_complete && c->verify_rc == DM_OK)
            FUZZ_CHECK(st == DM_OK && want_index == SIZE_MAX);
    }
    o->probe_hash = h;
}

/* Gets and seeks: for a sample of the entries, their own version, the
 * version just older, the newest version, a key just after and a key
 * just before; then some user keys cut out of the input itself. */
static void probes(ctx *c, sst_reader *r, outcome *o, const model *m)
{
    o->probe_hash = FUZZ_HASH_INIT;
    iter *it = sst_iter_new(r);
    FUZZ_CHECK(it != NULL);
    buf t;
    buf_init(&t);
    size_t n = m ? m->n : 0;
    size_t step = n > MAX_SAMPLES ? n / MAX_SAMPLES : 1;
    for (size_t i = 0; i < n; i += step) {
        buf_slice k = model_key(m, i);
        buf_slice u = ikey_user(k);
        uint64_t seq = ikey_seq(k);
        probe_get(c, r, o, m, u, seq);
        if (seq > 0)
            probe_get(c, r, o, m, u, seq - 1);
        probe_get(c, r, o, m, u, IKEY_MAX_SEQ);
        probe_get(c, r, o, m, u, UINT64_MAX); /* clamped to 2^56-1 */
        /* u ++ 0x00: the smallest user key after u. */
        buf_clear(&t);
        FUZZ_CHECK(buf_append(&t, u.ptr, u.len) == DM_OK);
        FUZZ_CHECK(buf_put_u8(&t, 0) == DM_OK);
        probe_get(c, r, o, m, buf_slice_of(t.ptr, t.len), IKEY_MAX_SEQ);
        if (u.len > 0)
            probe_get(c, r, o, m, buf_slice_of(u.ptr, u.len - 1), IKEY_MAX_SEQ);
        /* A seek to the entry's own key lands on it (keys are unique in
         * a clean table). */
        probe_seek(c, it, o, m, k, i);
    }
    /* Past the last key: nothing.  Expressed as the last user key ++ 0xff
     * repeated, which sorts after it. */
    if (n > 0 && m->is_complete) {
        buf_slice u = ikey_user(model_key(m, n - 1));
        buf after;
        buf_init(&after);
        buf_clear(&t);
        FUZZ_CHECK(buf_append(&t, u.ptr, u.len) == DM_OK);
        for (int i = 0; i < 4; i++)
            FUZZ_CHECK(buf_put_u8(&t, 0xff) == DM_OK);
        FUZZ_CHECK(ikey_build(&after, buf_slice_of(t.ptr, t.len), IKEY_MAX_SEQ,
                              IKEY_SEEK_TYPE) == DM_OK);
        probe_seek(c, it, o, m, buf_slice_of(after.ptr, after.len), SIZE_MAX);
        buf_fini(&after);
    }
    /* Short targets are user keys to seek (iter contract in sstable.c),
     * so this also runs the "not an internal key" branch. */
    probe_seek(c, it, o, m, buf_slice_of("", 0), n ? 0 : SIZE_MAX);
    for (int i = 0; i < N_INPUT_TARGETS && c->size > 0; i++) {
        size_t off = ((size_t)i * 131u) % c->size;
        size_t len = (size_t)i * 3u;
        if (len > c->size - off)
            len = c->size - off;
        probe_get(c, r, o, m, buf_slice_of(c->data + off, len),
                  i & 1 ? IKEY_MAX_SEQ : (uint64_t)i);
    }
    buf_fini(&t);
    iter_free(it);
}

/* ---------------------------------------------------------- the modes */

static int no_mmap(vfs *v, vfs_file *f, uint64_t len, const void **out)
{
    *out = NULL;
    return DM_EINVAL; /* "not supported; use pread" (vfs.h) */
}

static vfs *nomap_vfs(void)
{
    static vfs table;
    static bool is_init;
    if (!is_init) {
        table = *vfs_posix();
        table.name = "posix-nommap";
        table.mmap = no_mmap;
        is_init = true;
    }
    return &table;
}

static void open_and_drive(ctx *c, vfs *v, bool use_cache, outcome *o)
{
    sst_cache *cache = NULL;
    /* Poisoned: open must set the out-parameter, to NULL on failure. */
    sst_reader *r = (sst_reader *)(uintptr_t)1;
    memset(o, 0, sizeof *o);
    /* A fresh cache per reader: the cache is keyed by file number, and a
     * cache shared across inputs would serve the previous input's blocks. */
    if (use_cache)
        FUZZ_CHECK(sst_cache_new(64u << 10, &cache) == DM_OK);
    o->open_rc = sst_reader_open(v, c->path, 7, cache, &r);
    FUZZ_CHECKF(o->open_rc == DM_OK || o->open_rc == DM_ECORRUPT ||
                o->open_rc == DM_EVERSION,
                "sst_reader_open: %d (%s)", o->open_rc, err_last_msg());
    if (o->open_rc != DM_OK) {
        FUZZ_CHECK(r == NULL);
        FUZZ_CHECKF(strstr(err_last_msg(), c->path) != NULL, "message \"%s\"",
                    err_last_msg());
        /* A table the reader refuses cannot be clean to the verifier. */
        FUZZ_CHECK(c->verify_rc != DM_OK);
        goto out;
    }
    FUZZ_CHECK(r != NULL);
    FUZZ_CHECK(sst_reader_file_size(r) == c->file_size);
    o->entries = sst_reader_entries(r);

    model *m = NULL;
    if (!c->has_model) {
        m = &c->m;
        c->has_model = true;
    }
    forward(c, r, o, m);
    const model *mm = &c->m;
    if (c->verify_rc == DM_OK) {
        FUZZ_CHECK(o->fwd_status == DM_OK);
        if (o->n_fwd < MAX_STEPS)
            FUZZ_CHECKF(o->n_fwd == c->verify_entries && o->n_fwd == o->entries,
                        "iterated %llu entries; verify counted %llu, footer %llu",
                        (unsigned long long)o->n_fwd,
                        (unsigned long long)c->verify_entries,
                        (unsigned long long)o->entries);
    }
    reverse(c, r, o, mm);
    if (c->verify_rc == DM_OK && mm->is_complete) {
        FUZZ_CHECK(o->rev_status == DM_OK);
        FUZZ_CHECK(o->n_rev == o->n_fwd);
    }
    /* A reference taken and dropped around use must not free the reader. */
    sst_reader_ref(r);
    probes(c, r, o, mm);
    sst_reader_unref(r);
out:
    sst_reader_unref(r);
    sst_cache_free(cache);
}

static void on_damage(void *arg, const char *path, uint64_t off,
                      const char *reason)
{
    ctx *c = arg;
    FUZZ_CHECK(path && strcmp(path, c->path) == 0);
    FUZZ_CHECK(reason && reason[0]);
    c->n_damage++;
}

static void same_outcome(const outcome *a, const outcome *b, const char *what)
{
    FUZZ_CHECKF(a->open_rc == b->open_rc && a->entries == b->entries &&
                a->n_fwd == b->n_fwd && a->fwd_hash == b->fwd_hash &&
                a->fwd_status == b->fwd_status && a->n_rev == b->n_rev &&
                a->rev_hash == b->rev_hash && a->rev_status == b->rev_status &&
                a->probe_hash == b->probe_hash,
                "%s differs from mapped/no cache: open %d/%d fwd %llu/%llu "
                "(%d/%d) rev %llu/%llu (%d/%d) probes %s",
                what, a->open_rc, b->open_rc, (unsigned long long)a->n_fwd,
                (unsigned long long)b->n_fwd, a->fwd_status, b->fwd_status,
                (unsigned long long)a->n_rev, (unsigned long long)b->n_rev,
                a->rev_status, b->rev_status,
                a->probe_hash == b->probe_hash ? "same" : "differ");
}

static void run(const uint8_t *data, size_t size)
{
    ctx c;
    memset(&c, 0, sizeof c);
    c.path = fuzz_tmp_path("000007.sst");
    c.data = data;
    c.size = size;
    c.file_size = size;
    model_init(&c.m);
    fuzz_write_file(c.path, data, size);

    uint64_t n_entries = 12345;
    c.verify_rc = sst_verify(vfs_posix(), c.path, on_damage, &c, &n_entries);
    FUZZ_CHECKF(c.verify_rc == DM_OK || c.verify_rc == DM_ECORRUPT,
                "sst_verify: %d (%s)", c.verify_rc, err_last_msg());
    FUZZ_CHECK((c.verify_rc == DM_OK) == (c.n_damage == 0));
    c.verify_entries = n_entries;
    /* The same verdict without a callback. */
    FUZZ_CHECK(sst_verify(vfs_posix(), c.path, NULL, NULL, NULL) == c.verify_rc);

    outcome o[4];
    open_and_drive(&c, vfs_posix(), false, &o[0]);
    open_and_drive(&c, vfs_posix(), true, &o[1]);
    open_and_drive(&c, nomap_vfs(), false, &o[2]);
    open_and_drive(&c, nomap_vfs(), true, &o[3]);
    same_outcome(&o[0], &o[1], "mapped with cache");
    same_outcome(&o[0], &o[2], "pread without cache");
    same_outcome(&o[0], &o[3], "pread with cache");
    model_fini(&c.m);
}

/* ------------------------------------------------------ checksum fixup */

static bool in_file(uint64_t off, uint64_t len, size_t limit)
{
    return off <= limit && len <= limit - off &&
           limit - off - len >= SST_BLOCK_TRAILER_LEN;
}

/* fix_block -- recomputes the trailer CRC of the block (off, len), keeping
 * its type byte. */
static void fix_block(uint8_t *p, uint64_t off, uint64_t len)
{
    uint8_t *s = p + off;
    uint32_t crc = crc32c(s, (size_t)len);
    crc = crc32c_extend(crc, s + len, 1);
    enc_u32(s + len + 1, crc_mask(crc));
}

/* fix_data_blocks -- walks the entries of an uncompressed index block
 * (contents [ix, ix+len)) and fixes each data block its handles name. */
static void fix_data_blocks(uint8_t *p, const uint8_t *ix, size_t len,
                            size_t limit)
{
    if (len < 4)
        return;
    uint32_t n = dec_u32(ix + len - 4);
    if (n > (len - 4) / 4)
        return;
    const uint8_t *q = ix, *end = ix + len - 4 - 4 * (size_t)n;
    while (q < end) {
        uint64_t shared, non_shared, vlen, off, blen;
        if (!(q = dec_varint(q, end, &shared)) ||
            !(q = dec_varint(q, end, &non_shared)) ||
            !(q = dec_varint(q, end, &vlen)) ||
            non_shared > (uint64_t)(end - q) ||
            vlen > (uint64_t)(end - q) - non_shared)
            return;
        q += non_shared;
        const uint8_t *v = q, *vend = q + vlen;
        q = vend;
        if (!(v = dec_varint(v, vend, &off)) || !dec_varint(v, vend, &blen))
            return;
        if (in_file(off, blen, limit))
            fix_block(p, off, blen);
    }
}

static void fix_checksums(uint8_t *p, size_t size)
{
    if (size < SST_HEADER_LEN + SST_FOOTER_LEN)
        return;
    size_t limit = size - SST_FOOTER_LEN; /* blocks end before the footer */
    uint8_t *ft = p + limit;
    uint64_t index_off = dec_u64(ft + SST_FOOTER_INDEX_OFF);
    uint64_t index_len = dec_u64(ft + SST_FOOTER_INDEX_LEN);
    uint64_t filter_off = dec_u64(ft + SST_FOOTER_FILTER_OFF);
    uint64_t filter_len = dec_u64(ft + SST_FOOTER_FILTER_LEN);
    if (in_file(index_off, index_len, limit) && p[index_off + index_len] == 0)
        fix_data_blocks(p, p + index_off, (size_t)index_len, limit);
    if (filter_len && in_file(filter_off, filter_len, limit))
        fix_block(p, filter_off, filter_len);
    if (in_file(index_off, index_len, limit))
        fix_block(p, index_off, index_len);
    uint32_t crc = crc32c(ft, SST_FOOTER_CRC);
    crc = crc32c_extend(crc, ft + SST_FOOTER_MAGIC, 8);
    enc_u32(ft + SST_FOOTER_CRC, crc_mask(crc));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_drive(data, size, run, fix_checksums);
}
