/*
 * sstable.c -- SSTable builder, reader (point get and iterator) and the
 * offline verifier.
 *
 * Format owned: docs/format.md "SSTable" (constants in sstable_format.h):
 *
 *   file := header(16) data_block+ [filter_block] index_block footer(64)
 *
 * Blocks are contiguous: the first data block starts at offset 16, each
 * block starts where the previous block's trailer ends, the filter (if
 * any) follows the last data block, the index follows the filter, and the
 * footer follows the index.  Index entry i has key >= the last key of data
 * block i and < the first key of block i+1 (the builder writes exactly
 * the last key) and value varint offset ‖ varint stored_length.
 *
 * Builder.  Entries go into a block builder (block.c); when its estimated
 * size reaches block_size the block is finished, compressed if that saves
 * at least 1/min_saving_div (1/8 by default), wrapped in its trailer and
 * appended to an output buffer that is written to the file in
 * WRITE_BUF_LEN chunks.  User-key hashes are
 * collected for the bloom filter (bloom.c), built at finish.  Any write
 * error is sticky.
 *
 * Reader.  Open reads and checks the footer, the header, the index block
 * (decoded once into a flat array idx[] with whole keys and an 8-byte
 * big-endian prefix of each user key, so that binary search mostly
 * compares integers) and the filter.  Then it maps the file (vfs->mmap);
 * when the VFS refuses, blocks are read with pread.  A data block is used
 *   - in place from the mapping when stored uncompressed;
 *   - from the block cache (decompressed or pread copy) otherwise; without
 *     a cache, from a private copy freed after use.
 * Every block is CRC-checked and its restart array validated before first
 * use.  For mapped blocks the reader remembers that in the block's index
 * entry (`seen`: 0, or its trailer's type + 1, stored once the checks
 * pass), so a hot block is not re-hashed on every get, and a compressed
 * block found in the cache is used without touching the mapping at all:
 * its pages may then be dropped (sst_reader_drop_pages) and stay out of
 * the process's resident set.  `seen` only ever goes from 0 to one value
 * and covers immutable bytes, so relaxed ordering is enough.  With a page
 * clock (sst_reader_set_page_clock) the entry also keeps `used`, the
 * clock when the block's mapped bytes were last read, which tells
 * sst_reader_drop_pages which pages are old; it is a hint, and a race on
 * it costs at most a page dropped while in use (read again with a minor
 * fault) or one kept too long.  Blocks in the cache were checked before
 * insertion.  Entry-level bounds checks
 * (varints, lengths, key >= 8 bytes) run on every decode regardless.
 *
 * Iterator.  Two levels: a position in idx[] and a materialised data
 * block.  Entering a block decodes all its entries once (keys into a
 * reusable arena, values left in the block), which validates the whole
 * block and makes next and prev O(1).  The iterator pins the block (cache
 * handle) while positioned in it and holds a reader reference.
 *
 * Thread safety.  A reader is immutable after open except for `seen` and
 * `used` (atomic) and the zstd context pool (zmu); any number of threads may call
 * sst_reader_get and use their own iterators at once.  An iterator and a
 * builder are used by one thread at a time.
 *
 * Damage.  Every problem found in bytes from disk is DM_ECORRUPT with
 * err_set_msg("<path>: offset <block or footer offset>: <reason>").  Open
 * fails if the footer, header, index or filter is damaged; a damaged data
 * block fails only the gets and iterator steps that need it.
 */
#include "storage/sstable.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>
#include <lz4.h>
#include <lz4hc.h>
#include <zstd.h>

#include "base/alloc.h"
#include "base/crc.h"
#include "base/err.h"
#include "storage/sstable_int.h"

#define WRITE_BUF_LEN ((size_t)1 << 20) /* bytes buffered before an append */

sst_options sst_options_default(void)
{
    sst_options o = {
        .block_size = 4096,
        .restart_interval = 16,
        .compression = SST_COMP_NONE,
        .zstd_level = 3,
        .lz4_hc_level = 0,
        .bloom_bits_per_key = 10,
        .min_saving_div = 8,
    };
    return o;
}

void sst_info_fini(sst_info *info)
{
    if (!info)
        return;
    buf_fini(&info->smallest);
    buf_fini(&info->largest);
    info->file_size = info->n_entries = 0;
}

/* ============================================================ footer */

typedef struct footer {
    uint64_t index_off, index_len;
    uint64_t filter_off, filter_len;
    uint64_t n_entries, n_blocks;
    uint32_t version;
    uint64_t data_end; /* derived: where the data blocks end */
} footer;

static void footer_encode(const footer *fo, uint8_t *p)
{
    memset(p, 0, SST_FOOTER_LEN);
    enc_u64(p + SST_FOOTER_INDEX_OFF, fo->index_off);
    enc_u64(p + SST_FOOTER_INDEX_LEN, fo->index_len);
    enc_u64(p + SST_FOOTER_FILTER_OFF, fo->filter_off);
    enc_u64(p + SST_FOOTER_FILTER_LEN, fo->filter_len);
    enc_u64(p + SST_FOOTER_ENTRIES, fo->n_entries);
    enc_u64(p + SST_FOOTER_BLOCKS, fo->n_blocks);
    enc_u32(p + SST_FOOTER_VERSION, fo->version);
    enc_u64(p + SST_FOOTER_MAGIC, SST_MAGIC);
    uint32_t c = crc32c(p, SST_FOOTER_CRC);
    c = crc32c_extend(c, p + SST_FOOTER_MAGIC, 8);
    enc_u32(p + SST_FOOTER_CRC, crc_mask(c));
}

/*
 * footer_decode -- checks magic, checksum and version, then the layout:
 * index block ending at the footer, filter block (if any) ending at the
 * index, data region [16, data_end) able to hold n_blocks blocks, and
 * n_entries == 0 exactly when n_blocks == 0.  DM_OK, DM_ECORRUPT or
 * DM_EVERSION, with *why.
 */
static int footer_decode(const uint8_t *p, uint64_t file_size, footer *fo,
                         const char **why)
{
    memset(fo, 0, sizeof *fo);
    if (dec_u64(p + SST_FOOTER_MAGIC) != SST_MAGIC) {
        *why = "bad footer magic (not an SSTable, or truncated)";
        return DM_ECORRUPT;
    }
    uint32_t c = crc32c(p, SST_FOOTER_CRC);
    c = crc32c_extend(c, p + SST_FOOTER_MAGIC, 8);
    if (crc_mask(c) != dec_u32(p + SST_FOOTER_CRC)) {
        *why = "footer checksum mismatch";
        return DM_ECORRUPT;
    }
    fo->version = dec_u32(p + SST_FOOTER_VERSION);
    if (fo->version != SST_VERSION) {
        *why = "unsupported SSTable format version";
        return DM_EVERSION;
    }
    fo->index_off = dec_u64(p + SST_FOOTER_INDEX_OFF);
    fo->index_len = dec_u64(p + SST_FOOTER_INDEX_LEN);
    fo->filter_off = dec_u64(p + SST_FOOTER_FILTER_OFF);
    fo->filter_len = dec_u64(p + SST_FOOTER_FILTER_LEN);
    fo->n_entries = dec_u64(p + SST_FOOTER_ENTRIES);
    fo->n_blocks = dec_u64(p + SST_FOOTER_BLOCKS);
    /* Blocks live in [16, foot_off).  Each comparison below is arranged
     * so that no subtraction can wrap. */
    uint64_t foot_off = file_size - SST_FOOTER_LEN;
    uint64_t avail = foot_off - SST_HEADER_LEN;
    if (fo->index_len < 1 || fo->index_len > avail ||
        avail - fo->index_len < SST_BLOCK_TRAILER_LEN ||
        fo->index_off != foot_off - SST_BLOCK_TRAILER_LEN - fo->index_len) {
        *why = "index block handle out of range";
        return DM_ECORRUPT;
    }
    if (fo->filter_len) {
        avail = fo->index_off - SST_HEADER_LEN;
        if (fo->filter_len > avail ||
            avail - fo->filter_len < SST_BLOCK_TRAILER_LEN ||
            fo->filter_off != fo->index_off - SST_BLOCK_TRAILER_LEN - fo->filter_len) {
            *why = "filter block handle out of range";
            return DM_ECORRUPT;
        }
        fo->data_end = fo->filter_off;
    } else {
        if (fo->filter_off != 0) {
            *why = "filter offset without a filter";
            return DM_ECORRUPT;
        }
        fo->data_end = fo->index_off;
    }
    uint64_t data_len = fo->data_end - SST_HEADER_LEN;
    if (fo->n_blocks > data_len / (1 + SST_BLOCK_TRAILER_LEN) ||
        (fo->n_blocks == 0) != (data_len == 0) ||
        (fo->n_blocks == 0) != (fo->n_entries == 0)) {
        *why = "footer block or entry count inconsistent with the file";
        return DM_ECORRUPT;
    }
    return DM_OK;
}

/* header_check -- magic, version, reserved zero. */
static int header_check(const uint8_t *p, const char **why)
{
    if (dec_u64(p) != SST_MAGIC) {
        *why = "bad header magic";
        return DM_ECORRUPT;
    }
    if (dec_u32(p + 8) != SST_VERSION) {
        *why = "header version differs from the footer";
        return DM_ECORRUPT;
    }
    if (dec_u32(p + 12) != 0) {
        *why = "header reserved field not zero";
        return DM_ECORRUPT;
    }
    return DM_OK;
}

/* ============================================================ builder */

struct sst_builder {
    vfs *v;
    vfs_file *f;
    char *path;
    sst_options opt;
    sst_block_builder data;
    sst_block_builder index;
    buf out;          /* encoded bytes not yet appended to the file */
    uint64_t flushed; /* bytes already appended */
    buf cbuf;         /* compression / filter scratch */
    buf first_key;
    buf last_key;
    uint64_t *hashes; /* one per distinct user key, for the filter */
    size_t n_hashes;
    size_t hashes_cap;
    uint64_t n_entries;
    uint64_t n_blocks;
    ZSTD_CCtx *zc;
    void *lz4hc_state; /* LZ4_sizeofStateHC() bytes, with lz4_hc_level */
    int err; /* sticky: the first write/encode failure */
};

static int check_options(const sst_options *o)
{
    if (o->block_size < 64 || o->block_size > SST_MAX_BLOCK_SIZE_OPT)
        return err_set_msg(DM_EINVAL, "sst: block_size %zu out of range",
                           o->block_size);
    if (o->restart_interval < 1 || o->restart_interval > 65536)
        return err_set_msg(DM_EINVAL, "sst: restart_interval %d out of range",
                           o->restart_interval);
    if (o->compression < SST_COMP_NONE || o->compression > SST_COMP_ZSTD)
        return err_set_msg(DM_EINVAL, "sst: unknown compression %d",
                           o->compression);
    if (o->compression == SST_COMP_ZSTD &&
        (o->zstd_level < ZSTD_minCLevel() || o->zstd_level > ZSTD_maxCLevel()))
        return err_set_msg(DM_EINVAL, "sst: zstd_level %d out of range",
                           o->zstd_level);
    if (o->lz4_hc_level < 0 || o->lz4_hc_level > LZ4HC_CLEVEL_MAX)
        return err_set_msg(DM_EINVAL, "sst: lz4_hc_level %d out of range",
                           o->lz4_hc_level);
    if (o->bloom_bits_per_key < 0 ||
        o->bloom_bits_per_key > SST_BLOOM_MAX_BITS_PER_KEY)
        return err_set_msg(DM_EINVAL, "sst: bloom_bits_per_key %d out of range",
                           o->bloom_bits_per_key);
    if (o->min_saving_div < 1 || o->min_saving_div > 64)
        return err_set_msg(DM_EINVAL, "sst: min_saving_div %d out of range 1..64",
                           o->min_saving_div);
    return DM_OK;
}

static void builder_free(sst_builder *b)
{
    if (!b)
        return;
    if (b->f)
        b->v->close(b->v, b->f);
    sst_bb_fini(&b->data);
    sst_bb_fini(&b->index);
    buf_fini(&b->out);
    buf_fini(&b->cbuf);
    buf_fini(&b->first_key);
    buf_fini(&b->last_key);
    dm_free(b->hashes);
    ZSTD_freeCCtx(b->zc);
    dm_free(b->lz4hc_state);
    dm_free(b->path);
    dm_free(b);
}

static int io_fail(sst_builder *b, int rc, const char *what)
{
    b->err = rc;
    return err_set_msg(rc, "%s: %s: %s (%s, errno %d)", b->path, what,
                       dm_strerror(rc), b->v->last_op ? b->v->last_op : "?",
                       b->v->last_errno);
}

int sst_builder_open(vfs *v, const char *path, const sst_options *opt,
                     sst_builder **out)
{
    *out = NULL;
    sst_options o = opt ? *opt : sst_options_default();
    int rc = check_options(&o);
    if (rc)
        return rc;
    sst_builder *b = dm_calloc(1, sizeof *b);
    if (!b)
        return DM_ENOMEM;
    b->v = v;
    b->opt = o;
    sst_bb_init(&b->data, o.restart_interval);
    sst_bb_init(&b->index, SST_INDEX_RESTART_INTERVAL);
    if (!(b->path = dm_strdup(path))) {
        rc = DM_ENOMEM;
        goto fail;
    }
    if (o.compression == SST_COMP_ZSTD && !(b->zc = ZSTD_createCCtx())) {
        rc = DM_ENOMEM;
        goto fail;
    }
    if (o.compression == SST_COMP_LZ4 && o.lz4_hc_level > 0 &&
        !(b->lz4hc_state = dm_malloc((size_t)LZ4_sizeofStateHC()))) {
        rc = DM_ENOMEM;
        goto fail;
    }
    if ((rc = v->open(v, path, VFS_RDWR | VFS_CREATE | VFS_TRUNC, &b->f))) {
        io_fail(b, rc, "create");
        goto fail;
    }
    uint8_t hdr[SST_HEADER_LEN];
    enc_u64(hdr, SST_MAGIC);
    enc_u32(hdr + 8, SST_VERSION);
    enc_u32(hdr + 12, 0);
    if ((rc = v->append(v, b->f, hdr, sizeof hdr))) {
        io_fail(b, rc, "write header");
        goto fail;
    }
    b->flushed = SST_HEADER_LEN;
    *out = b;
    return DM_OK;
fail:
    builder_free(b);
    return rc;
}

static int flush_out(sst_builder *b)
{
    if (!b->out.len)
        return DM_OK;
    int rc = b->v->append(b->v, b->f, b->out.ptr, b->out.len);
    if (rc)
        return io_fail(b, rc, "write");
    b->flushed += b->out.len;
    buf_clear(&b->out);
    return DM_OK;
}

/* compress -- into b->cbuf as varint ulen ‖ payload; false when the
 * compressor fails (the block is then stored uncompressed). */
static bool compress(sst_builder *b, buf_slice raw)
{
    buf_clear(&b->cbuf);
    size_t bound = b->opt.compression == SST_COMP_LZ4
                       ? (size_t)LZ4_compressBound((int)raw.len)
                       : ZSTD_compressBound(raw.len);
    if (bound == 0 || buf_reserve(&b->cbuf, BUF_VARINT64_MAX + bound))
        return false;
    size_t hdr = enc_varint(b->cbuf.ptr, raw.len);
    size_t n;
    if (b->opt.compression == SST_COMP_LZ4) {
        int r = b->lz4hc_state
                    ? LZ4_compress_HC_extStateHC(b->lz4hc_state, (const char *)raw.ptr,
                                                 (char *)b->cbuf.ptr + hdr, (int)raw.len,
                                                 (int)bound, b->opt.lz4_hc_level)
                    : LZ4_compress_default((const char *)raw.ptr,
                                           (char *)b->cbuf.ptr + hdr, (int)raw.len,
                                           (int)bound);
        if (r <= 0)
            return false;
        n = (size_t)r;
    } else {
        n = ZSTD_compressCCtx(b->zc, b->cbuf.ptr + hdr, bound, raw.ptr,
                              raw.len, b->opt.zstd_level);
        if (ZSTD_isError(n))
            return false;
    }
    b->cbuf.len = hdr + n;
    return true;
}

/*
 * emit_block -- appends contents as a stored block (compressed when
 * allowed and it saves at least 1/min_saving_div) plus its trailer to the output
 * buffer; *off / *len receive the block handle.
 */
static int emit_block(sst_builder *b, buf_slice contents, bool may_compress,
                      uint64_t *off, uint64_t *len)
{
    buf_slice stored = contents;
    uint8_t type = SST_COMP_NONE;
    if (may_compress && b->opt.compression != SST_COMP_NONE &&
        compress(b, contents) &&
        b->cbuf.len <= contents.len - contents.len / (size_t)b->opt.min_saving_div) {
        stored = buf_slice_of(b->cbuf.ptr, b->cbuf.len);
        type = (uint8_t)b->opt.compression;
    }
    *off = b->flushed + b->out.len;
    *len = stored.len;
    if (buf_reserve(&b->out, stored.len + SST_BLOCK_TRAILER_LEN))
        return b->err = DM_ENOMEM;
    memcpy(b->out.ptr + b->out.len, stored.ptr, stored.len);
    b->out.len += stored.len;
    uint8_t *t = b->out.ptr + b->out.len;
    t[0] = type;
    enc_u32(t + 1, sst_trailer_crc(stored.ptr, stored.len, type));
    b->out.len += SST_BLOCK_TRAILER_LEN;
    return DM_OK;
}

static int flush_data_block(sst_builder *b)
{
    buf_slice contents;
    uint64_t off, len;
    int rc;
    if ((rc = sst_bb_finish(&b->data, &contents)))
        return b->err = rc;
    if ((rc = emit_block(b, contents, true, &off, &len)))
        return rc;
    uint8_t hv[2 * BUF_VARINT64_MAX];
    size_t n = enc_varint(hv, off);
    n += enc_varint(hv + n, len);
    if ((rc = sst_bb_add(&b->index,
                         buf_slice_of(b->data.last_key.ptr, b->data.last_key.len),
                         buf_slice_of(hv, n))))
        return b->err = rc;
    b->n_blocks++;
    sst_bb_reset(&b->data);
    if (b->out.len >= WRITE_BUF_LEN)
        return flush_out(b);
    return DM_OK;
}

int sst_builder_add(sst_builder *b, buf_slice ikey, buf_slice value)
{
    int rc;
    if (b->err)
        return b->err;
    if (ikey.len < IKEY_TRAILER_LEN)
        return err_set_msg(DM_EINVAL, "%s: key shorter than 8 bytes", b->path);
    if (ikey.len + value.len > SST_MAX_ENTRY_LEN)
        return err_set_msg(DM_ETOOBIG, "%s: entry of %zu bytes too large",
                           b->path, ikey.len + value.len);
    bool is_new_user = true;
    if (b->n_entries > 0) {
        buf_slice last = buf_slice_of(b->last_key.ptr, b->last_key.len);
        if (ikey_cmp(last, ikey) >= 0)
            return err_set_msg(DM_EINVAL, "%s: keys added out of order",
                               b->path);
        is_new_user = buf_slice_cmp(ikey_user(last), ikey_user(ikey)) != 0;
    }
    if (b->opt.bloom_bits_per_key > 0 && is_new_user) {
        if (b->n_hashes == b->hashes_cap) {
            size_t nc = b->hashes_cap ? b->hashes_cap * 2 : 1024;
            uint64_t *nh = dm_realloc(b->hashes, nc * sizeof *nh);
            if (!nh)
                return b->err = DM_ENOMEM;
            b->hashes = nh;
            b->hashes_cap = nc;
        }
        buf_slice u = ikey_user(ikey);
        b->hashes[b->n_hashes++] = sst_hash64(u.ptr, u.len);
    }
    if ((rc = sst_bb_add(&b->data, ikey, value)))
        return b->err = rc;
    if (b->n_entries == 0 && (rc = buf_append(&b->first_key, ikey.ptr, ikey.len)))
        return b->err = rc;
    buf_clear(&b->last_key);
    if ((rc = buf_append(&b->last_key, ikey.ptr, ikey.len)))
        return b->err = rc;
    b->n_entries++;
    if (sst_bb_estimate(&b->data) >= b->opt.block_size)
        return flush_data_block(b);
    return DM_OK;
}

uint64_t sst_builder_size(const sst_builder *b)
{
    return b->flushed + b->out.len +
           (sst_bb_empty(&b->data) ? 0 : sst_bb_estimate(&b->data));
}

uint64_t sst_builder_entries(const sst_builder *b)
{
    return b->n_entries;
}

int sst_builder_finish(sst_builder *b, sst_info *info)
{
    int rc;
    footer fo;
    memset(&fo, 0, sizeof fo);
    memset(info, 0, sizeof *info);
    buf_init(&info->smallest);
    buf_init(&info->largest);
    if ((rc = b->err))
        goto fail;
    if (!sst_bb_empty(&b->data) && (rc = flush_data_block(b)))
        goto fail;
    if (b->opt.bloom_bits_per_key > 0 && b->n_hashes > 0) {
        size_t flen = sst_bloom_len(b->n_hashes, b->opt.bloom_bits_per_key);
        buf_clear(&b->cbuf);
        if ((rc = buf_reserve(&b->cbuf, flen)))
            goto fail;
        sst_bloom_build(b->hashes, b->n_hashes, b->opt.bloom_bits_per_key,
                        b->cbuf.ptr);
        b->cbuf.len = flen;
        if ((rc = emit_block(b, buf_slice_of(b->cbuf.ptr, flen), false,
                             &fo.filter_off, &fo.filter_len)))
            goto fail;
    }
    buf_slice index;
    if ((rc = sst_bb_finish(&b->index, &index)))
        goto fail;
    if ((rc = emit_block(b, index, false, &fo.index_off, &fo.index_len)))
        goto fail;
    fo.n_entries = b->n_entries;
    fo.n_blocks = b->n_blocks;
    fo.version = SST_VERSION;
    if ((rc = buf_reserve(&b->out, SST_FOOTER_LEN)))
        goto fail;
    footer_encode(&fo, b->out.ptr + b->out.len);
    b->out.len += SST_FOOTER_LEN;
    if ((rc = buf_append(&info->smallest, b->first_key.ptr, b->first_key.len)) ||
        (rc = buf_append(&info->largest, b->last_key.ptr, b->last_key.len)))
        goto fail;
    if ((rc = flush_out(b)))
        goto fail;
    if ((rc = b->v->sync(b->v, b->f))) {
        io_fail(b, rc, "sync");
        goto fail;
    }
    rc = b->v->close(b->v, b->f);
    b->f = NULL;
    if (rc) {
        io_fail(b, rc, "close");
        goto fail;
    }
    info->file_size = b->flushed;
    info->n_entries = b->n_entries;
    builder_free(b);
    return DM_OK;
fail:
    sst_info_fini(info);
    builder_free(b);
    return rc;
}

void sst_builder_abandon(sst_builder *b)
{
    builder_free(b);
}

/* ============================================================= reader */

/* One data block as the reader knows it from the index. */
typedef struct idx_ent {
    uint64_t prefix;    /* user key's first 8 bytes, big-endian, 0-padded */
    const uint8_t *key; /* the whole index key (in r->idx_keys) */
    uint64_t off;       /* block offset in the file */
    uint64_t len;       /* stored length, trailer excluded */
    uint32_t key_len;
    _Atomic uint8_t seen; /* map only: 0, or the checked block's type + 1 */
    _Atomic uint16_t used; /* map with a page clock: the clock when the
                              block's mapped bytes were last read; 0 = not
                              since open or since its pages were dropped */
} idx_ent;

struct sst_reader {
    _Atomic long refs;
    vfs *v;
    vfs_file *f;
    char *path;
    uint64_t file_number;
    sst_cache *cache; /* may be NULL */
    uint64_t file_size;
    uint64_t n_entries;
    const uint8_t *map; /* whole file; NULL when reading with pread */
    idx_ent *idx;
    size_t n_blocks;
    uint8_t *idx_keys;
    size_t idx_keys_cap;   /* its allocation */
    const uint8_t *filter; /* NULL when the table has none */
    size_t filter_len;
    uint8_t *filter_owned;
    const _Atomic uint16_t *clock; /* sst_reader_set_page_clock; NULL = none */
    pthread_mutex_t zmu;        /* guards zpool, n_z, z_cap */
    bool is_zmu_init;
    ZSTD_DCtx **zpool;
    size_t n_z, z_cap;
};

static int corrupt(const sst_reader *r, uint64_t off, const char *why)
{
    return err_set_msg(DM_ECORRUPT, "%s: offset %llu: %s", r->path,
                       (unsigned long long)off, why);
}

static int corrupt_in_block(const sst_reader *r, size_t bi, const char *why,
                            uint32_t in_off)
{
    return err_set_msg(DM_ECORRUPT, "%s: offset %llu: %s (data block %zu, entry at +%u)",
                       r->path, (unsigned long long)r->idx[bi].off, why, bi,
                       in_off);
}

static inline uint64_t ukey_prefix(const uint8_t *u, size_t n)
{
    if (n >= 8)
        return dec_be64(u);
    uint8_t b[8] = { 0 };
    if (n)
        memcpy(b, u, n);
    return dec_be64(b);
}

static ZSTD_DCtx *zpool_get(sst_reader *r)
{
    ZSTD_DCtx *z = NULL;
    pthread_mutex_lock(&r->zmu);
    if (r->n_z)
        z = r->zpool[--r->n_z];
    pthread_mutex_unlock(&r->zmu);
    return z ? z : ZSTD_createDCtx();
}

static void zpool_put(sst_reader *r, ZSTD_DCtx *z)
{
    if (!z)
        return;
    pthread_mutex_lock(&r->zmu);
    if (r->n_z == r->z_cap) {
        size_t nc = r->z_cap ? r->z_cap * 2 : 4;
        ZSTD_DCtx **np = dm_realloc(r->zpool, nc * sizeof *np);
        if (!np) {
            pthread_mutex_unlock(&r->zmu);
            ZSTD_freeDCtx(z);
            return;
        }
        r->zpool = np;
        r->z_cap = nc;
    }
    r->zpool[r->n_z++] = z;
    pthread_mutex_unlock(&r->zmu);
}

static void reader_free(sst_reader *r)
{
    if (!r)
        return;
    if (r->map)
        r->v->munmap(r->v, r->map, r->file_size);
    if (r->f)
        r->v->close(r->v, r->f);
    dm_free(r->idx);
    dm_free(r->idx_keys);
    dm_free(r->filter_owned);
    for (size_t i = 0; i < r->n_z; i++)
        ZSTD_freeDCtx(r->zpool[i]);
    dm_free(r->zpool);
    if (r->is_zmu_init)
        pthread_mutex_destroy(&r->zmu);
    dm_free(r->path);
    dm_free(r);
}

/* read_exact -- n bytes at off; a short read means the file is shorter
 * than its footer says. */
static int read_exact(sst_reader *r, void *dst, size_t n, uint64_t off)
{
    size_t got = 0;
    int rc = r->v->pread(r->v, r->f, dst, n, off, &got);
    if (rc)
        return err_set_msg(rc, "%s: offset %llu: read failed: %s", r->path,
                           (unsigned long long)off, dm_strerror(rc));
    if (got != n)
        return corrupt(r, off, "block extends past the end of the file");
    return DM_OK;
}

/*
 * load_meta_block -- reads and checks the index or filter block (off, len)
 * and returns its contents in *contents / *clen.  The contents are in the
 * mapping or in *owned (caller frees with dm_free).
 */
static int load_meta_block(sst_reader *r, uint64_t off, uint64_t len,
                           const uint8_t **contents, size_t *clen,
                           uint8_t **owned)
{
    const char *why = NULL;
    uint8_t *raw = NULL, *dec = NULL;
    int rc;
    *contents = NULL;
    *owned = NULL;
    const uint8_t *p;
    if (r->map) {
        p = r->map + off;
    } else {
        if (!(raw = dm_malloc((size_t)len + SST_BLOCK_TRAILER_LEN)))
            return DM_ENOMEM;
        if ((rc = read_exact(r, raw, (size_t)len + SST_BLOCK_TRAILER_LEN, off)))
            goto fail;
        p = raw;
    }
    int type = sst_trailer_check(p, (size_t)len, &why);
    if (type < 0) {
        rc = corrupt(r, off, why);
        goto fail;
    }
    if (type == SST_COMP_NONE) {
        *contents = p;
        *clen = (size_t)len;
        *owned = raw;
        return DM_OK;
    }
    size_t ulen, hdr;
    if ((rc = sst_compressed_len(type, p, (size_t)len, &ulen, &hdr, &why))) {
        rc = corrupt(r, off, why);
        goto fail;
    }
    if (!(dec = dm_malloc(ulen))) {
        rc = DM_ENOMEM;
        goto fail;
    }
    if (sst_decompress(type, NULL, p, (size_t)len, dec, ulen, &why)) {
        rc = corrupt(r, off, why);
        goto fail;
    }
    dm_free(raw);
    *contents = dec;
    *clen = ulen;
    *owned = dec;
    return DM_OK;
fail:
    dm_free(raw);
    dm_free(dec);
    return rc;
}

/*
 * load_index -- decodes the index block into r->idx: every entry checked
 * (block.c), handles decoded exactly, blocks contiguous from the header
 * to data_end, count equal to the footer's.
 */
static int load_index(sst_reader *r, const footer *fo)
{
    const uint8_t *contents;
    size_t clen;
    uint8_t *owned = NULL;
    const char *why = NULL;
    uint32_t bad_off = 0;
    sst_decoded d;
    sst_block blk;
    sst_decoded_init(&d);
    int rc = load_meta_block(r, fo->index_off, fo->index_len, &contents, &clen,
                             &owned);
    if (rc)
        goto out;
    if ((rc = sst_block_parse(contents, clen, true, &blk, &why)) ||
        (rc = sst_block_decode_all(&blk, &d, &why, &bad_off))) {
        if (rc == DM_ECORRUPT)
            rc = corrupt(r, fo->index_off, why);
        goto out;
    }
    if (d.n_ents != fo->n_blocks) {
        rc = corrupt(r, fo->index_off, "index entry count differs from the footer");
        goto out;
    }
    if (d.n_ents && !(r->idx = dm_calloc(d.n_ents, sizeof *r->idx))) {
        rc = DM_ENOMEM;
        goto out;
    }
    uint64_t expect = SST_HEADER_LEN;
    for (size_t i = 0; i < d.n_ents; i++) {
        buf_slice v = buf_slice_of(contents + d.ents[i].val_off, d.ents[i].val_len);
        uint64_t off, len;
        if (!get_varint(&v, &off) || !get_varint(&v, &len) || v.len != 0) {
            rc = corrupt(r, fo->index_off, "bad block handle in the index");
            goto out;
        }
        if (off != expect || len < 1 || len > fo->data_end - off ||
            fo->data_end - off - len < SST_BLOCK_TRAILER_LEN) {
            rc = corrupt(r, fo->index_off,
                         "index block handle out of place (blocks must be contiguous)");
            goto out;
        }
        expect = off + len + SST_BLOCK_TRAILER_LEN;
        idx_ent *e = &r->idx[i];
        e->off = off;
        e->len = len;
        e->key_len = d.ents[i].key_len;
        atomic_init(&e->seen, 0);
        atomic_init(&e->used, 0);
        /* Pointers are set below, once the key arena stops moving. */
        e->prefix = d.ents[i].key_off;
    }
    if (expect != fo->data_end) {
        rc = corrupt(r, fo->index_off, "data blocks do not end where the filter/index begins");
        goto out;
    }
    r->n_blocks = d.n_ents;
    r->idx_keys = d.keys.ptr; /* steal the arena */
    r->idx_keys_cap = d.keys.cap;
    buf_init(&d.keys);
    for (size_t i = 0; i < r->n_blocks; i++) {
        idx_ent *e = &r->idx[i];
        e->key = r->idx_keys + e->prefix;
        e->prefix = ukey_prefix(e->key, e->key_len - IKEY_TRAILER_LEN);
    }
    rc = DM_OK;
out:
    sst_decoded_fini(&d);
    dm_free(owned);
    return rc;
}

int sst_reader_open(vfs *v, const char *path, uint64_t file_number,
                    sst_cache *cache, sst_reader **out)
{
    return sst_reader_open_ex(v, path, file_number, cache, 0, out);
}

int sst_reader_open_ex(vfs *v, const char *path, uint64_t file_number,
                       sst_cache *cache, unsigned flags, sst_reader **out)
{
    *out = NULL;
    const char *why = NULL;
    uint8_t ft[SST_FOOTER_LEN], hd[SST_HEADER_LEN];
    footer fo;
    int rc;
    sst_reader *r = dm_calloc(1, sizeof *r);
    if (!r)
        return DM_ENOMEM;
    atomic_init(&r->refs, 1);
    r->v = v;
    r->file_number = file_number;
    r->cache = cache;
    if (!(r->path = dm_strdup(path))) {
        rc = DM_ENOMEM;
        goto fail;
    }
    if (pthread_mutex_init(&r->zmu, NULL)) {
        rc = DM_ENOMEM;
        goto fail;
    }
    r->is_zmu_init = true;
    if ((rc = v->open(v, path, VFS_RDONLY, &r->f))) {
        err_set_msg(rc, "%s: open: %s", path, dm_strerror(rc));
        goto fail;
    }
    if ((rc = v->size(v, r->f, &r->file_size))) {
        err_set_msg(rc, "%s: size: %s", path, dm_strerror(rc));
        goto fail;
    }
    if (r->file_size < SST_HEADER_LEN + SST_FOOTER_LEN) {
        rc = corrupt(r, 0, "file too short for header and footer");
        goto fail;
    }
    uint64_t foot_off = r->file_size - SST_FOOTER_LEN;
    if ((rc = read_exact(r, ft, sizeof ft, foot_off)))
        goto fail;
    if ((rc = footer_decode(ft, r->file_size, &fo, &why))) {
        err_set_msg(rc, "%s: offset %llu: %s", path,
                    (unsigned long long)foot_off, why);
        goto fail;
    }
    if ((rc = read_exact(r, hd, sizeof hd, 0)))
        goto fail;
    if ((rc = header_check(hd, &why))) {
        rc = corrupt(r, 0, why);
        goto fail;
    }
    r->n_entries = fo.n_entries;
    /* A VFS without mmap (or a failed map) is not an error: pread then. */
    const void *map = NULL;
    if (!(flags & SST_OPEN_PREAD) && v->mmap(v, r->f, r->file_size, &map) == DM_OK)
        r->map = map;
    if ((rc = load_index(r, &fo)))
        goto fail;
    if (fo.filter_len) {
        const uint8_t *fc;
        size_t flen;
        if ((rc = load_meta_block(r, fo.filter_off, fo.filter_len, &fc, &flen,
                                  &r->filter_owned)))
            goto fail;
        if ((rc = sst_bloom_check(fc, flen, &why))) {
            rc = corrupt(r, fo.filter_off, why);
            goto fail;
        }
        r->filter = fc;
        r->filter_len = flen;
    }
    *out = r;
    return DM_OK;
fail:
    reader_free(r);
    return rc;
}

void sst_reader_ref(sst_reader *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void sst_reader_unref(sst_reader *r)
{
    if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        reader_free(r);
}

uint64_t sst_reader_entries(const sst_reader *r) { return r->n_entries; }
uint64_t sst_reader_file_size(const sst_reader *r) { return r->file_size; }
size_t sst_reader_n_blocks(const sst_reader *r) { return r->n_blocks; }
bool sst_reader_is_mmapped(const sst_reader *r) { return r->map != NULL; }

void sst_reader_set_page_clock(sst_reader *r, const _Atomic uint16_t *clock)
{
    r->clock = clock;
}

/* The age bucket of a block last read at clock value `used`. */
static unsigned age_bucket(uint16_t now, uint16_t used)
{
    uint16_t age = (uint16_t)(now - used);
    return age ? 1 + (unsigned)(31 - __builtin_clz(age)) : 0;
}

void sst_reader_page_ages(sst_reader *r, uint64_t bytes[SST_AGE_BUCKETS])
{
    if (!r->map || !r->clock)
        return;
    uint16_t now = atomic_load_explicit(r->clock, memory_order_relaxed);
    for (size_t i = 0; i < r->n_blocks; i++) {
        uint16_t u = atomic_load_explicit(&r->idx[i].used, memory_order_relaxed);
        if (u)
            bytes[age_bucket(now, u)] += r->idx[i].len + SST_BLOCK_TRAILER_LEN;
    }
}

static int drop_bytes(sst_reader *r, uint64_t off, uint64_t len)
{
    int rc = r->v->drop_pages(r->v, r->map + off, len);
    if (rc)
        err_set_msg(rc, "%s: dropping mapped pages: %s", r->path, dm_strerror(rc));
    return rc;
}

static int drop_range(sst_reader *r, uint64_t from, uint64_t to)
{
    uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
    from = (from + pg - 1) / pg * pg; /* whole pages only: the ends may be */
    to = to / pg * pg;                /* shared with blocks still in use */
    return to > from ? drop_bytes(r, from, to - from) : DM_OK;
}

int sst_reader_drop_pages(sst_reader *r, unsigned from_bucket)
{
    if (!r->map || !r->v->drop_pages)
        return DM_OK;
    if (!r->clock)
        return drop_bytes(r, 0, r->file_size);
    /* Runs of blocks not read since from_bucket's age, with the blocks
     * not known to be mapped between them, each dropped whole pages at a
     * time.  A run of the latter alone stays: they are the pages the
     * kernel mapped around a block in use (or none at all). */
    uint16_t now = atomic_load_explicit(r->clock, memory_order_relaxed);
    uint64_t run = UINT64_MAX; /* the current run's first byte */
    bool has_old = from_bucket == 0;
    int rc = DM_OK;
    for (size_t i = 0; i <= r->n_blocks; i++) {
        uint16_t u = 0;
        bool is_cold = false;
        if (i < r->n_blocks) {
            u = atomic_load_explicit(&r->idx[i].used, memory_order_relaxed);
            is_cold = !u || age_bucket(now, u) >= from_bucket;
        }
        if (is_cold) {
            if (run == UINT64_MAX)
                run = r->idx[i].off;
            /* Forget it was mapped, unless a reader has just read it. */
            if (u) {
                has_old = true;
                atomic_compare_exchange_strong_explicit(&r->idx[i].used, &u, 0,
                                                        memory_order_relaxed,
                                                        memory_order_relaxed);
            }
            continue;
        }
        if (run != UINT64_MAX && has_old) {
            uint64_t end = i < r->n_blocks ? r->idx[i].off
                                           : r->idx[i - 1].off + r->idx[i - 1].len +
                                                 SST_BLOCK_TRAILER_LEN;
            int e = drop_range(r, run, end);
            if (e && !rc)
                rc = e;
        }
        run = UINT64_MAX;
        has_old = from_bucket == 0;
    }
    return rc;
}

uint64_t sst_reader_memsize(sst_reader *r)
{
    uint64_t n = sizeof *r + r->n_blocks * sizeof *r->idx + r->idx_keys_cap;
    if (r->filter_owned)
        n += r->filter_len;
    if (r->is_zmu_init) {
        pthread_mutex_lock(&r->zmu);
        n += r->z_cap * sizeof *r->zpool;
        pthread_mutex_unlock(&r->zmu);
    }
    return n;
}

void sst_reader_block(const sst_reader *r, size_t i, uint64_t *off,
                      uint64_t *len, buf_slice *index_key)
{
    *off = r->idx[i].off;
    *len = r->idx[i].len;
    *index_key = buf_slice_of(r->idx[i].key, r->idx[i].key_len);
}

/* ------------------------------------------------------- block access */

/* The block's mapped bytes are read now: note the page clock. */
static inline void note_map_read(sst_reader *r, idx_ent *e)
{
    uint16_t now = atomic_load_explicit(r->clock, memory_order_relaxed);
    if (atomic_load_explicit(&e->used, memory_order_relaxed) != now)
        atomic_store_explicit(&e->used, now, memory_order_relaxed);
}

/* 0 while block bi has not been checked; then its trailer's type + 1. */
static inline int seen_type(sst_reader *r, size_t bi)
{
    return atomic_load_explicit(&r->idx[bi].seen, memory_order_relaxed);
}

static inline void set_seen(sst_reader *r, size_t bi, int type)
{
    atomic_store_explicit(&r->idx[bi].seen, (uint8_t)(type + 1), memory_order_relaxed);
}

/* decode_compressed -- stored block (p, len) of `type` into a new handle,
 * restart array checked, inserted into the cache when there is one. */
static int decode_compressed(sst_reader *r, size_t bi, const uint8_t *p,
                             size_t len, int type, sst_block *blk,
                             sst_cache_handle **hout)
{
    const char *why = NULL;
    size_t ulen, hdr;
    uint64_t off = r->idx[bi].off;
    if (sst_compressed_len(type, p, len, &ulen, &hdr, &why))
        return corrupt(r, off, why);
    sst_cache_handle *h = sst_cache_handle_new_for(r->cache, r->file_number, off, ulen);
    if (!h)
        return DM_ENOMEM;
    ZSTD_DCtx *z = NULL;
    if (type == SST_COMP_ZSTD && !(z = zpool_get(r))) {
        sst_cache_release(h);
        return DM_ENOMEM;
    }
    int rc = sst_decompress(type, z, p, len, sst_cache_handle_data(h), ulen, &why);
    zpool_put(r, z);
    if (!rc)
        rc = sst_block_parse(sst_cache_handle_data(h), ulen, true, blk, &why);
    if (rc) {
        sst_cache_release(h);
        return corrupt(r, off, why);
    }
    if (r->cache)
        sst_cache_insert(r->cache, r->file_number, off, h);
    *hout = h;
    return DM_OK;
}

/*
 * load_block -- data block bi, checked, as a parsed block whose restart
 * array has been validated.  *hout receives the handle pinning the bytes
 * (NULL when they are in the mapping); release with sst_cache_release.
 */
static int load_block(sst_reader *r, size_t bi, sst_block *blk,
                      sst_cache_handle **hout)
{
    const char *why = NULL;
    idx_ent *e = &r->idx[bi];
    sst_cache_handle *h;
    int rc, type;
    *hout = NULL;
    if (r->map) {
        const uint8_t *p = r->map + e->off;
        int seen = seen_type(r, bi);
        bool ok = seen != 0;
        if (ok) {
            type = seen - 1;
        } else if ((type = sst_trailer_check(p, (size_t)e->len, &why)) < 0) {
            return corrupt(r, e->off, why);
        }
        if (r->clock && (!ok || type == SST_COMP_NONE))
            note_map_read(r, e); /* its mapped bytes are read */
        if (type == SST_COMP_NONE) {
            if (sst_block_parse(p, (size_t)e->len, !ok, blk, &why))
                return corrupt(r, e->off, why);
            if (!ok)
                set_seen(r, bi, type);
            return DM_OK;
        }
        if (r->cache && (h = sst_cache_lookup(r->cache, r->file_number, e->off))) {
            /* Checked before it was inserted. */
            sst_block_parse(sst_cache_handle_data(h), sst_cache_handle_len(h),
                            false, blk, &why);
            *hout = h;
            return DM_OK;
        }
        if (!ok)
            set_seen(r, bi, type); /* the stored bytes passed the CRC */
        else if (r->clock)
            note_map_read(r, e);
        return decode_compressed(r, bi, p, (size_t)e->len, type, blk, hout);
    }

    if (r->cache && (h = sst_cache_lookup(r->cache, r->file_number, e->off))) {
        sst_block_parse(sst_cache_handle_data(h), sst_cache_handle_len(h),
                        false, blk, &why);
        *hout = h;
        return DM_OK;
    }
    sst_cache_handle *raw = sst_cache_handle_new((size_t)e->len + SST_BLOCK_TRAILER_LEN);
    if (!raw)
        return DM_ENOMEM;
    uint8_t *p = sst_cache_handle_data(raw);
    if ((rc = read_exact(r, p, (size_t)e->len + SST_BLOCK_TRAILER_LEN, e->off)))
        goto fail;
    if ((type = sst_trailer_check(p, (size_t)e->len, &why)) < 0) {
        rc = corrupt(r, e->off, why);
        goto fail;
    }
    if (type == SST_COMP_NONE) {
        sst_cache_handle_set_len(raw, (size_t)e->len);
        if (sst_block_parse(p, (size_t)e->len, true, blk, &why)) {
            rc = corrupt(r, e->off, why);
            goto fail;
        }
        if (r->cache)
            sst_cache_insert(r->cache, r->file_number, e->off, raw);
        *hout = raw;
        return DM_OK;
    }
    rc = decode_compressed(r, bi, p, (size_t)e->len, type, blk, hout);
fail:
    sst_cache_release(raw);
    return rc;
}

/* idx_lower_bound -- the first block whose index key >= target. */
static size_t idx_lower_bound(const sst_reader *r, const sst_target *t)
{
    uint64_t tp = ukey_prefix(t->ukey.ptr, t->ukey.len);
    size_t lo = 0, hi = r->n_blocks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const idx_ent *e = &r->idx[mid];
        int c = e->prefix != tp ? (e->prefix < tp ? -1 : 1)
                                : sst_key_cmp_target(e->key, e->key_len, t);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---------------------------------------------------------- point get */

void sst_pins_release(sst_pins *p)
{
    for (unsigned i = 0; i < p->n; i++)
        sst_cache_release(p->pin[i].h);
    p->n = p->next = 0;
}

/* load_block through pins: a pinned block costs no cache lookup; a block
 * loaded from the cache is pinned (*hout stays NULL: the pins own it). */
static int load_pinned(sst_reader *r, sst_pins *pins, size_t bi, sst_block *blk,
                       sst_cache_handle **hout)
{
    if (!pins || !r->cache)
        return load_block(r, bi, blk, hout);
    uint64_t off = r->idx[bi].off;
    for (unsigned i = 0; i < pins->n; i++) {
        const struct sst_pin *p = &pins->pin[i];
        if (p->off == off && p->file == r->file_number) {
            const char *why = NULL;
            sst_block_parse(sst_cache_handle_data(p->h), sst_cache_handle_len(p->h), false,
                            blk, &why); /* checked when it was loaded */
            *hout = NULL;
            return DM_OK;
        }
    }
    int rc = load_block(r, bi, blk, hout);
    if (rc || !*hout)
        return rc; /* an error, or the bytes are in the mapping */
    unsigned slot = pins->n;
    if (slot == SST_PINS) {
        slot = pins->next;
        pins->next = (pins->next + 1) % SST_PINS;
        sst_cache_release(pins->pin[slot].h);
    } else {
        pins->n++;
    }
    pins->pin[slot] = (struct sst_pin){ r->file_number, off, *hout };
    *hout = NULL;
    return DM_OK;
}

int sst_reader_get(sst_reader *r, buf_slice user_key, uint64_t snap_seq,
                   buf *value, enum sst_get_result *result)
{
    return sst_reader_get_pinned(r, NULL, user_key, snap_seq, value, result);
}

int sst_reader_get_pinned(sst_reader *r, sst_pins *pins, buf_slice user_key,
                          uint64_t snap_seq, buf *value, enum sst_get_result *result)
{
    *result = SST_NONE;
    buf_clear(value);
    if (r->n_blocks == 0)
        return DM_OK;
    if (r->filter && !sst_bloom_may_contain(r->filter, r->filter_len,
                                            sst_hash64(user_key.ptr, user_key.len)))
        return DM_OK;
    if (snap_seq > IKEY_MAX_SEQ)
        snap_seq = IKEY_MAX_SEQ;
    sst_target t = { user_key, ikey_pack(snap_seq, IKEY_SEEK_TYPE) };
    sst_kbuf kb;
    sst_kbuf_init(&kb);
    int rc = DM_OK;
    /* With exact last keys in the index the answer is in the first block
     * tried; the loop also serves an index of separators, where the first
     * entry >= target may be the next block's first. */
    for (size_t bi = idx_lower_bound(r, &t); bi < r->n_blocks; bi++) {
        sst_block blk;
        sst_cache_handle *h;
        buf_slice k, v;
        const char *why = NULL;
        uint32_t bad_off = 0;
        if ((rc = load_pinned(r, pins, bi, &blk, &h)))
            break;
        int found = sst_block_seek(&blk, &t, &kb, &k, &v, &why, &bad_off);
        if (found == 1) {
            buf_slice ku = ikey_user(k);
            if (buf_slice_cmp(ku, user_key) == 0) {
                int type = ikey_type(k);
                if (type == IKEY_PUT) {
                    rc = buf_append(value, v.ptr, v.len);
                    if (!rc)
                        *result = SST_FOUND;
                } else if (type == IKEY_DEL) {
                    *result = SST_DELETED;
                } else {
                    rc = corrupt_in_block(r, bi, "unknown entry type", 0);
                }
            }
        } else if (found == DM_ECORRUPT) {
            rc = corrupt_in_block(r, bi, why, bad_off);
        } else if (found < 0) {
            rc = found;
        }
        sst_cache_release(h);
        if (found != 0)
            break;
    }
    sst_kbuf_fini(&kb);
    if (rc)
        *result = SST_NONE;
    return rc;
}

/* ----------------------------------------------------------- iterator */

typedef struct sst_iter {
    iter base;
    sst_reader *r;
    size_t bi;            /* block the iterator is in (when has_block) */
    bool has_block;
    sst_cache_handle *h;  /* pins the block's bytes unless mapped */
    const uint8_t *bdata; /* the block contents */
    sst_decoded d;        /* the block's entries */
    size_t ei;            /* current entry in d */
    bool is_valid;
    int status;
} sst_iter;

static void it_drop_block(sst_iter *it)
{
    sst_cache_release(it->h);
    it->h = NULL;
    it->bdata = NULL;
    it->has_block = false;
    it->d.n_ents = 0;
}

static void it_fail(sst_iter *it, int rc)
{
    it_drop_block(it);
    it->is_valid = false;
    it->status = rc;
}

static void it_end(sst_iter *it)
{
    it_drop_block(it);
    it->is_valid = false;
}

/*
 * it_enter -- loads and materialises block bi, checking its keys against
 * the index: first key > index key of bi-1, last key <= index key of bi.
 * DM_OK, or the iterator has failed with the returned code.
 */
static int it_enter(sst_iter *it, size_t bi)
{
    sst_reader *r = it->r;
    sst_block blk;
    sst_cache_handle *h = NULL;
    const char *why = NULL;
    uint32_t bad_off = 0;
    it_drop_block(it);
    int rc = load_block(r, bi, &blk, &h);
    if (rc)
        goto fail;
    rc = sst_block_decode_all(&blk, &it->d, &why, &bad_off);
    if (rc == DM_ECORRUPT) {
        rc = corrupt_in_block(r, bi, why, bad_off);
        goto fail;
    }
    if (rc)
        goto fail;
    if (it->d.n_ents == 0) {
        rc = corrupt(r, r->idx[bi].off, "data block without entries");
        goto fail;
    }
    buf_slice last = sst_decoded_key(&it->d, it->d.n_ents - 1);
    if (ikey_cmp(last, buf_slice_of(r->idx[bi].key, r->idx[bi].key_len)) > 0) {
        rc = corrupt(r, r->idx[bi].off, "block's last key is beyond its index key");
        goto fail;
    }
    if (bi > 0 && ikey_cmp(sst_decoded_key(&it->d, 0),
                           buf_slice_of(r->idx[bi - 1].key,
                                        r->idx[bi - 1].key_len)) <= 0) {
        rc = corrupt(r, r->idx[bi].off,
                     "block's first key is not after the previous block");
        goto fail;
    }
    it->h = h;
    it->bdata = blk.data;
    it->bi = bi;
    it->has_block = true;
    return DM_OK;
fail:
    sst_cache_release(h);
    it_fail(it, rc);
    return rc;
}

static bool it_valid(iter *base)
{
    return ((sst_iter *)base)->is_valid;
}

static void it_seek_first(iter *base)
{
    sst_iter *it = (sst_iter *)base;
    it->status = DM_OK;
    if (it->r->n_blocks == 0 || it_enter(it, 0)) {
        it_end(it);
        return;
    }
    it->ei = 0;
    it->is_valid = true;
}

static void it_seek_last(iter *base)
{
    sst_iter *it = (sst_iter *)base;
    it->status = DM_OK;
    if (it->r->n_blocks == 0 || it_enter(it, it->r->n_blocks - 1)) {
        it_end(it);
        return;
    }
    it->ei = it->d.n_ents - 1;
    it->is_valid = true;
}

static void it_seek(iter *base, buf_slice target)
{
    sst_iter *it = (sst_iter *)base;
    sst_target t;
    if (target.len >= IKEY_TRAILER_LEN) {
        t.ukey = ikey_user(target);
        t.trailer = ikey_trailer(target);
    } else {
        /* Not an internal key: treat it as a user key, before all of its
         * versions. */
        t.ukey = target;
        t.trailer = UINT64_MAX;
    }
    it->status = DM_OK;
    for (size_t bi = idx_lower_bound(it->r, &t); bi < it->r->n_blocks; bi++) {
        if (it_enter(it, bi))
            return;
        size_t lo = 0, hi = it->d.n_ents;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            const sst_ent *e = &it->d.ents[mid];
            if (sst_key_cmp_target(it->d.keys.ptr + e->key_off, e->key_len, &t) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < it->d.n_ents) {
            it->ei = lo;
            it->is_valid = true;
            return;
        }
    }
    it_end(it);
}

static void it_next(iter *base)
{
    sst_iter *it = (sst_iter *)base;
    if (++it->ei < it->d.n_ents)
        return;
    if (it->bi + 1 >= it->r->n_blocks) {
        it_end(it);
        return;
    }
    if (it_enter(it, it->bi + 1))
        return;
    it->ei = 0;
}

static void it_prev(iter *base)
{
    sst_iter *it = (sst_iter *)base;
    if (it->ei > 0) {
        it->ei--;
        return;
    }
    if (it->bi == 0) {
        it_end(it);
        return;
    }
    if (it_enter(it, it->bi - 1))
        return;
    it->ei = it->d.n_ents - 1;
}

static buf_slice it_key(iter *base)
{
    sst_iter *it = (sst_iter *)base;
    return sst_decoded_key(&it->d, it->ei);
}

static buf_slice it_value(iter *base)
{
    sst_iter *it = (sst_iter *)base;
    const sst_ent *e = &it->d.ents[it->ei];
    return buf_slice_of(it->bdata + e->val_off, e->val_len);
}

static int it_status(iter *base)
{
    return ((sst_iter *)base)->status;
}

static void it_free(iter *base)
{
    sst_iter *it = (sst_iter *)base;
    it_drop_block(it);
    sst_decoded_fini(&it->d);
    sst_reader_unref(it->r);
    dm_free(it);
}

static const iter_ops sst_iter_ops = {
    .valid = it_valid,
    .seek_first = it_seek_first,
    .seek_last = it_seek_last,
    .seek = it_seek,
    .next = it_next,
    .prev = it_prev,
    .key = it_key,
    .value = it_value,
    .status = it_status,
    .free = it_free,
};

iter *sst_iter_new(sst_reader *r)
{
    sst_iter *it = dm_calloc(1, sizeof *it);
    if (!it)
        return NULL;
    it->base.ops = &sst_iter_ops;
    it->r = r;
    sst_decoded_init(&it->d);
    sst_reader_ref(r);
    return &it->base;
}

/* ============================================================= verify */

/*
 * The verifier shares only the leaf decoders (footer, trailer, block
 * parsing, bloom) with the reader; it reads with pread, never maps, never
 * caches, and walks every block whatever the reader would have needed.
 */
typedef struct vctx {
    vfs *v;
    vfs_file *f;
    const char *path;
    sst_damage_fn fn;
    void *arg;
    uint64_t n_problems;
    uint64_t file_size;
} vctx;

static void damage(vctx *c, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void damage(vctx *c, uint64_t off, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->n_problems++ == 0)
        err_set_msg(DM_ECORRUPT, "%s: offset %llu: %s", c->path,
                    (unsigned long long)off, msg);
    if (c->fn)
        c->fn(c->arg, c->path, off, msg);
}

/* v_read -- reads n bytes at off into dst; 1 when short (damage
 * reported), 0 on success, < 0 on an I/O error. */
static int v_read(vctx *c, void *dst, size_t n, uint64_t off)
{
    size_t got = 0;
    int rc = c->v->pread(c->v, c->f, dst, n, off, &got);
    if (rc)
        return err_set_msg(rc, "%s: offset %llu: read failed: %s", c->path,
                           (unsigned long long)off, dm_strerror(rc));
    if (got != n) {
        damage(c, off, "block extends past the end of the file");
        return 1;
    }
    return 0;
}

/*
 * v_block -- reads the block (off, len) and leaves its contents in *raw or
 * *dec (as *contents / *clen).  Returns 0 when good, 1 when damaged
 * (reported), < 0 on I/O error or out of memory.
 */
static int v_block(vctx *c, const char *kind, uint64_t off, uint64_t len,
                   buf *raw, buf *dec, const uint8_t **contents, size_t *clen)
{
    const char *why = NULL;
    buf_clear(raw);
    if (buf_reserve(raw, (size_t)len + SST_BLOCK_TRAILER_LEN))
        return DM_ENOMEM;
    int rc = v_read(c, raw->ptr, (size_t)len + SST_BLOCK_TRAILER_LEN, off);
    if (rc)
        return rc;
    int type = sst_trailer_check(raw->ptr, (size_t)len, &why);
    if (type < 0) {
        damage(c, off, "%s block: %s", kind, why);
        return 1;
    }
    if (type == SST_COMP_NONE) {
        *contents = raw->ptr;
        *clen = (size_t)len;
        return 0;
    }
    size_t ulen, hdr;
    if (sst_compressed_len(type, raw->ptr, (size_t)len, &ulen, &hdr, &why)) {
        damage(c, off, "%s block: %s", kind, why);
        return 1;
    }
    buf_clear(dec);
    if (buf_reserve(dec, ulen))
        return DM_ENOMEM;
    if (sst_decompress(type, NULL, raw->ptr, (size_t)len, dec->ptr, ulen, &why)) {
        damage(c, off, "%s block: %s", kind, why);
        return 1;
    }
    *contents = dec->ptr;
    *clen = ulen;
    return 0;
}

int sst_verify(vfs *v, const char *path, sst_damage_fn on_damage, void *arg,
               uint64_t *n_entries)
{
    vctx c = { .v = v, .path = path, .fn = on_damage, .arg = arg };
    uint8_t ft[SST_FOOTER_LEN], hd[SST_HEADER_LEN];
    const char *why = NULL;
    uint32_t bad_off = 0;
    buf raw, dec, prev_key;
    sst_decoded d, idx;
    footer fo;
    uint64_t total = 0;
    int rc;
    const uint8_t *filter = NULL;
    size_t filter_len = 0;
    uint8_t *filter_copy = NULL;
    buf_init(&raw);
    buf_init(&dec);
    buf_init(&prev_key);
    sst_decoded_init(&d);
    sst_decoded_init(&idx);
    if (n_entries)
        *n_entries = 0;
    if ((rc = v->open(v, path, VFS_RDONLY, &c.f))) {
        err_set_msg(rc, "%s: open: %s", path, dm_strerror(rc));
        goto out;
    }
    if ((rc = v->size(v, c.f, &c.file_size)))
        goto out;
    if (c.file_size < SST_HEADER_LEN + SST_FOOTER_LEN) {
        damage(&c, 0, "file too short (%llu bytes) for header and footer",
               (unsigned long long)c.file_size);
        goto done;
    }
    uint64_t foot_off = c.file_size - SST_FOOTER_LEN;
    if ((rc = v_read(&c, hd, sizeof hd, 0)) < 0)
        goto out;
    if (rc == 0 && header_check(hd, &why))
        damage(&c, 0, "header: %s", why);
    if ((rc = v_read(&c, ft, sizeof ft, foot_off)) < 0)
        goto out;
    if (rc > 0)
        goto done;
    if (footer_decode(ft, c.file_size, &fo, &why)) {
        damage(&c, foot_off, "footer: %s; the blocks cannot be located", why);
        goto done;
    }

    /* Filter: checked on its own, then used to test every key below. */
    if (fo.filter_len) {
        const uint8_t *fc;
        size_t flen;
        rc = v_block(&c, "filter", fo.filter_off, fo.filter_len, &raw, &dec,
                     &fc, &flen);
        if (rc < 0)
            goto out;
        if (rc == 0 && sst_bloom_check(fc, flen, &why)) {
            damage(&c, fo.filter_off, "filter block: %s", why);
        } else if (rc == 0) {
            if (!(filter_copy = dm_memdup(fc, flen))) {
                rc = DM_ENOMEM;
                goto out;
            }
            filter = filter_copy;
            filter_len = flen;
        }
    }

    /* Index: without it the data blocks cannot be found. */
    const uint8_t *ic;
    size_t ilen;
    sst_block iblk;
    rc = v_block(&c, "index", fo.index_off, fo.index_len, &raw, &dec, &ic, &ilen);
    if (rc < 0)
        goto out;
    if (rc > 0)
        goto done;
    rc = sst_block_parse(ic, ilen, true, &iblk, &why);
    if (!rc)
        rc = sst_block_decode_all(&iblk, &idx, &why, &bad_off);
    if (rc == DM_ENOMEM)
        goto out;
    if (rc) {
        damage(&c, fo.index_off, "index block: %s (entry at +%u)", why, bad_off);
        goto done;
    }
    /* The values point into ic, which the data block reads below reuse:
     * decode every handle first. */
    uint64_t *handles = dm_calloc(idx.n_ents ? 2 * idx.n_ents : 1, sizeof *handles);
    if (!handles) {
        rc = DM_ENOMEM;
        goto out;
    }
    uint64_t expect = SST_HEADER_LEN;
    for (size_t i = 0; i < idx.n_ents; i++) {
        buf_slice hv = buf_slice_of(ic + idx.ents[i].val_off, idx.ents[i].val_len);
        uint64_t off = 0, len = 0;
        if (!get_varint(&hv, &off) || !get_varint(&hv, &len) || hv.len) {
            damage(&c, fo.index_off, "index entry %zu: bad block handle", i);
            off = len = UINT64_MAX;
        } else if (off != expect) {
            damage(&c, off, "data block %zu: expected at offset %llu (gap or overlap)",
                   i, (unsigned long long)expect);
        }
        if (off != UINT64_MAX && (len < 1 || off > fo.data_end ||
                                  len > fo.data_end - off ||
                                  fo.data_end - off - len < SST_BLOCK_TRAILER_LEN)) {
            damage(&c, off, "data block %zu: handle beyond the data region", i);
            off = len = UINT64_MAX;
        }
        if (off != UINT64_MAX)
            expect = off + len + SST_BLOCK_TRAILER_LEN;
        handles[2 * i] = off;
        handles[2 * i + 1] = len;
    }
    if (expect != fo.data_end)
        damage(&c, expect, "data blocks end at %llu, the filter/index begins at %llu",
               (unsigned long long)expect, (unsigned long long)fo.data_end);
    if (idx.n_ents != fo.n_blocks)
        damage(&c, foot_off, "footer says %llu data blocks, the index has %zu",
               (unsigned long long)fo.n_blocks, idx.n_ents);

    /* Data blocks: each on its own, so one bad block does not hide the
     * state of the others. */
    bool all_good = true;
    for (size_t i = 0; i < idx.n_ents; i++) {
        uint64_t off = handles[2 * i], len = handles[2 * i + 1];
        buf_slice ikey = sst_decoded_key(&idx, i);
        const uint8_t *bc;
        size_t blen;
        sst_block blk;
        if (off == UINT64_MAX) {
            all_good = false;
            continue;
        }
        rc = v_block(&c, "data", off, len, &raw, &dec, &bc, &blen);
        if (rc < 0) {
            dm_free(handles);
            goto out;
        }
        if (rc > 0) {
            all_good = false;
            continue;
        }
        rc = sst_block_parse(bc, blen, true, &blk, &why);
        if (!rc)
            rc = sst_block_decode_all(&blk, &d, &why, &bad_off);
        if (rc == DM_ENOMEM) {
            dm_free(handles);
            goto out;
        }
        if (rc) {
            damage(&c, off, "data block %zu: %s (entry at +%u)", i, why, bad_off);
            all_good = false;
            continue;
        }
        if (d.n_ents == 0) {
            damage(&c, off, "data block %zu: no entries", i);
            all_good = false;
            continue;
        }
        buf_slice first = sst_decoded_key(&d, 0);
        buf_slice last = sst_decoded_key(&d, d.n_ents - 1);
        if (prev_key.len &&
            ikey_cmp(buf_slice_of(prev_key.ptr, prev_key.len), first) >= 0)
            damage(&c, off, "data block %zu: first key not after the previous block's last key", i);
        if (i > 0 && ikey_cmp(sst_decoded_key(&idx, i - 1), first) >= 0)
            damage(&c, off, "data block %zu: first key not after index key %zu", i, i - 1);
        if (ikey_cmp(last, ikey) > 0)
            damage(&c, off, "data block %zu: last key beyond its index key", i);
        if (filter) {
            for (size_t j = 0; j < d.n_ents; j++) {
                buf_slice u = ikey_user(sst_decoded_key(&d, j));
                if (!sst_bloom_may_contain(filter, filter_len, sst_hash64(u.ptr, u.len))) {
                    damage(&c, fo.filter_off,
                           "filter does not contain a key of data block %zu", i);
                    break;
                }
            }
        }
        total += d.n_ents;
        buf_clear(&prev_key);
        if (buf_append(&prev_key, last.ptr, last.len)) {
            dm_free(handles);
            rc = DM_ENOMEM;
            goto out;
        }
    }
    dm_free(handles);
    if (all_good && total != fo.n_entries)
        damage(&c, foot_off, "footer says %llu entries, the blocks hold %llu",
               (unsigned long long)fo.n_entries, (unsigned long long)total);
done:
    rc = c.n_problems ? DM_ECORRUPT : DM_OK;
    if (n_entries)
        *n_entries = total;
out:
    if (c.f)
        v->close(v, c.f);
    dm_free(filter_copy);
    buf_fini(&raw);
    buf_fini(&dec);
    buf_fini(&prev_key);
    sst_decoded_fini(&d);
    sst_decoded_fini(&idx);
    return rc;
}
