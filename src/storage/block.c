/*
 * block.c -- SSTable blocks: building, parsing, searching, decoding, and
 * the 5-byte envelope (compression type + checksum) around stored blocks.
 *
 * Format owned (docs/format.md "SSTable", "Blocks"):
 *
 *   contents := entry* restart* n_restarts
 *   entry    := varint shared | varint non_shared | varint value_len
 *               | key_delta[non_shared] | value[value_len]
 *   restart  := u32 LE offset of an entry whose shared == 0
 *   n_restarts := u32 LE (0 only for a block without entries)
 *   stored   := contents                               (type 0, NONE)
 *             | varint ulen | compressed(contents)     (type 1 LZ4, 2 ZSTD)
 *   block    := stored | type u8 | masked crc32c(stored ++ type) u32 LE
 *
 * The key of entry i is key(i-1)[0, shared) ++ key_delta; a restart entry
 * stores its key whole, which is what lets a search start at any restart
 * point.
 *
 * Trust model: nothing here assumes the bytes are well formed.  Every
 * varint is decoded against the end of the entry area, every length is
 * compared with what remains, and keys are checked to be at least the 8
 * trailer bytes long before anyone calls the ikey accessors on them.  The
 * cheap O(1) checks run on every access; the O(n_restarts) restart-array
 * check runs once per block load (callers remember that it passed: the
 * reader's verified bitmap, or the fact that a block is in the cache).
 *
 * No locking: every function works on caller-owned memory.
 */
#include "storage/sstable_int.h"

#include <limits.h>
#include <lz4.h>
#include <zstd.h>

#include "base/alloc.h"
#include "base/crc.h"
#include "base/err.h"

/* ====================================================== block builder */

void sst_bb_init(sst_block_builder *bb, int interval)
{
    memset(bb, 0, sizeof *bb);
    buf_init(&bb->data);
    buf_init(&bb->last_key);
    bb->interval = interval > 0 ? interval : 1;
}

void sst_bb_fini(sst_block_builder *bb)
{
    buf_fini(&bb->data);
    buf_fini(&bb->last_key);
    dm_free(bb->restarts);
    bb->restarts = NULL;
    bb->n_restarts = bb->restarts_cap = 0;
}

void sst_bb_reset(sst_block_builder *bb)
{
    buf_clear(&bb->data);
    buf_clear(&bb->last_key);
    bb->n_restarts = 0;
    bb->counter = 0;
    bb->n_entries = 0;
    bb->is_finished = false;
}

static int push_restart(sst_block_builder *bb, uint32_t off)
{
    if (bb->n_restarts == bb->restarts_cap) {
        size_t nc = bb->restarts_cap ? bb->restarts_cap * 2 : 16;
        uint32_t *nr = dm_realloc(bb->restarts, nc * sizeof *nr);
        if (!nr)
            return DM_ENOMEM;
        bb->restarts = nr;
        bb->restarts_cap = nc;
    }
    bb->restarts[bb->n_restarts++] = off;
    return DM_OK;
}

int sst_bb_add(sst_block_builder *bb, buf_slice key, buf_slice value)
{
    size_t shared = 0;
    int rc;
    if (bb->n_entries == 0 || bb->counter >= bb->interval) {
        if ((rc = push_restart(bb, (uint32_t)bb->data.len)))
            return rc;
        bb->counter = 0;
    } else {
        size_t n = bb->last_key.len < key.len ? bb->last_key.len : key.len;
        while (shared < n && bb->last_key.ptr[shared] == key.ptr[shared])
            shared++;
    }
    size_t non_shared = key.len - shared;
    if ((rc = buf_reserve(&bb->data, 3 * 5 + non_shared + value.len)))
        return rc;
    uint8_t *p = bb->data.ptr + bb->data.len;
    p += enc_varint(p, shared);
    p += enc_varint(p, non_shared);
    p += enc_varint(p, value.len);
    if (non_shared)
        memcpy(p, key.ptr + shared, non_shared);
    p += non_shared;
    if (value.len)
        memcpy(p, value.ptr, value.len);
    p += value.len;
    bb->data.len = (size_t)(p - bb->data.ptr);
    /* Keep the previous key's bytes past `shared`: only the tail changes. */
    bb->last_key.len = shared;
    if ((rc = buf_append(&bb->last_key, key.ptr + shared, non_shared)))
        return rc;
    bb->counter++;
    bb->n_entries++;
    return DM_OK;
}

int sst_bb_finish(sst_block_builder *bb, buf_slice *out)
{
    int rc = buf_reserve(&bb->data, 4 * bb->n_restarts + 4);
    if (rc)
        return rc;
    for (size_t i = 0; i < bb->n_restarts; i++) {
        enc_u32(bb->data.ptr + bb->data.len, bb->restarts[i]);
        bb->data.len += 4;
    }
    enc_u32(bb->data.ptr + bb->data.len, (uint32_t)bb->n_restarts);
    bb->data.len += 4;
    bb->is_finished = true;
    *out = buf_slice_of(bb->data.ptr, bb->data.len);
    return DM_OK;
}

/* ======================================================== key buffer */

void sst_kbuf_fini(sst_kbuf *kb)
{
    if (kb->p != kb->stack)
        dm_free(kb->p);
    sst_kbuf_init(kb);
}

int sst_kbuf_reserve(sst_kbuf *kb, size_t n)
{
    if (n <= kb->cap)
        return DM_OK;
    size_t nc = kb->cap * 2 > n ? kb->cap * 2 : n;
    uint8_t *p = dm_malloc(nc);
    if (!p)
        return DM_ENOMEM;
    if (kb->len)
        memcpy(p, kb->p, kb->len);
    if (kb->p != kb->stack)
        dm_free(kb->p);
    kb->p = p;
    kb->cap = nc;
    return DM_OK;
}

/* ======================================================= block reader */

int sst_block_parse(const uint8_t *p, size_t len, bool is_full, sst_block *out,
                    const char **why)
{
    memset(out, 0, sizeof *out);
    if (len < SST_BLOCK_MIN_LEN) {
        *why = "block shorter than its restart count";
        return DM_ECORRUPT;
    }
    if (len > SST_MAX_BLOCK_LEN) {
        *why = "block longer than the format allows";
        return DM_ECORRUPT;
    }
    uint32_t n = dec_u32(p + len - 4);
    if (n > (len - 4) / 4) {
        *why = "restart count exceeds the block";
        return DM_ECORRUPT;
    }
    size_t entries_len = len - 4 - 4 * (size_t)n;
    if ((n == 0) != (entries_len == 0)) {
        *why = n ? "restart points in a block without entries"
                 : "entries without restart points";
        return DM_ECORRUPT;
    }
    out->data = p;
    out->entries_len = (uint32_t)entries_len;
    out->n_restarts = n;
    out->restarts = p + entries_len;
    if (!is_full)
        return DM_OK;
    uint32_t prev = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = sst_block_restart(out, i);
        if (i == 0 && r != 0) {
            *why = "first restart offset is not 0";
            return DM_ECORRUPT;
        }
        if (i > 0 && r <= prev) {
            *why = "restart offsets not increasing";
            return DM_ECORRUPT;
        }
        /* An entry needs at least its three one-byte varints. */
        if ((uint64_t)r + 3 > entries_len) {
            *why = "restart offset beyond the entries";
            return DM_ECORRUPT;
        }
        prev = r;
    }
    return DM_OK;
}

#define CORRUPT_AT(msg, off)                                                   \
    do {                                                                       \
        *why = (msg);                                                          \
        *bad_off = (uint32_t)(off);                                            \
        return DM_ECORRUPT;                                                    \
    } while (0)

int sst_block_seek(const sst_block *b, const sst_target *t, sst_kbuf *kb,
                   buf_slice *key, buf_slice *val, const char **why,
                   uint32_t *bad_off)
{
    if (b->n_restarts == 0)
        return 0;
    const uint8_t *data = b->data;
    const uint8_t *limit = data + b->entries_len;
    uint32_t sh, ns, vl;
    const uint8_t *kp;

    /* Binary search: the last restart point whose key is < target.  The
     * first entry >= target then lies at or after it. */
    uint32_t left = 0, right = b->n_restarts - 1;
    while (left < right) {
        uint32_t mid = left + (right - left + 1) / 2;
        uint32_t roff = sst_block_restart(b, mid);
        if (roff >= b->entries_len)
            CORRUPT_AT("restart offset beyond the entries", b->entries_len);
        kp = sst_entry_decode(data + roff, limit, &sh, &ns, &vl);
        if (!kp || sh != 0)
            CORRUPT_AT("bad entry at a restart point", roff);
        if (ns < IKEY_TRAILER_LEN)
            CORRUPT_AT("key shorter than 8 bytes", roff);
        if (sst_key_cmp_target(kp, ns, t) < 0)
            left = mid;
        else
            right = mid - 1;
    }

    uint32_t off = sst_block_restart(b, left);
    if (off >= b->entries_len)
        CORRUPT_AT("restart offset beyond the entries", b->entries_len);
    kb->len = 0;
    while (off < b->entries_len) {
        kp = sst_entry_decode(data + off, limit, &sh, &ns, &vl);
        if (!kp)
            CORRUPT_AT("entry runs past the end of the block", off);
        if (sh > kb->len)
            CORRUPT_AT("shared prefix longer than the previous key", off);
        size_t klen = (size_t)sh + ns;
        if (klen < IKEY_TRAILER_LEN)
            CORRUPT_AT("key shorter than 8 bytes", off);
        kb->len = sh;
        if (sst_kbuf_reserve(kb, klen))
            return DM_ENOMEM;
        memcpy(kb->p + sh, kp, ns);
        kb->len = klen;
        const uint8_t *vp = kp + ns;
        if (sst_key_cmp_target(kb->p, klen, t) >= 0) {
            *key = buf_slice_of(kb->p, klen);
            *val = buf_slice_of(vp, vl);
            return 1;
        }
        off = (uint32_t)(vp + vl - data);
    }
    return 0;
}

void sst_decoded_init(sst_decoded *d)
{
    memset(d, 0, sizeof *d);
    buf_init(&d->keys);
}

void sst_decoded_fini(sst_decoded *d)
{
    buf_fini(&d->keys);
    dm_free(d->ents);
    sst_decoded_init(d);
}

int sst_block_decode_all(const sst_block *b, sst_decoded *d, const char **why,
                         uint32_t *bad_off)
{
    const uint8_t *data = b->data;
    const uint8_t *limit = data + b->entries_len;
    uint32_t off = 0, ri = 0;
    size_t prev_off = 0, prev_len = 0;
    buf_clear(&d->keys);
    d->n_ents = 0;
    while (off < b->entries_len) {
        uint32_t sh, ns, vl;
        bool is_restart = false;
        if (ri < b->n_restarts) {
            uint32_t r = sst_block_restart(b, ri);
            if (r < off)
                CORRUPT_AT("restart offset is not an entry boundary", r);
            is_restart = r == off;
        }
        const uint8_t *kp = sst_entry_decode(data + off, limit, &sh, &ns, &vl);
        if (!kp)
            CORRUPT_AT("entry runs past the end of the block", off);
        if (is_restart) {
            if (sh != 0)
                CORRUPT_AT("restart entry with a shared prefix", off);
            ri++;
        }
        if (sh > prev_len)
            CORRUPT_AT("shared prefix longer than the previous key", off);
        size_t klen = (size_t)sh + ns;
        if (klen < IKEY_TRAILER_LEN)
            CORRUPT_AT("key shorter than 8 bytes", off);
        if (d->keys.len + klen > UINT32_MAX)
            CORRUPT_AT("block keys expand beyond 4 GiB", off);
        if (buf_reserve(&d->keys, klen))
            return DM_ENOMEM;
        uint8_t *k = d->keys.ptr + d->keys.len;
        if (sh)
            memcpy(k, d->keys.ptr + prev_off, sh);
        memcpy(k + sh, kp, ns);
        /* The type is the low byte of the little-endian trailer. */
        if (k[klen - IKEY_TRAILER_LEN] > IKEY_PUT)
            CORRUPT_AT("unknown entry type", off);
        if (d->n_ents > 0 &&
            ikey_cmp(buf_slice_of(d->keys.ptr + prev_off, prev_len),
                     buf_slice_of(k, klen)) >= 0)
            CORRUPT_AT("keys out of order", off);
        if (d->n_ents == d->ents_cap) {
            size_t nc = d->ents_cap ? d->ents_cap * 2 : 64;
            sst_ent *ne = dm_realloc(d->ents, nc * sizeof *ne);
            if (!ne)
                return DM_ENOMEM;
            d->ents = ne;
            d->ents_cap = nc;
        }
        sst_ent *e = &d->ents[d->n_ents++];
        e->key_off = (uint32_t)d->keys.len;
        e->key_len = (uint32_t)klen;
        e->val_off = (uint32_t)(kp + ns - data);
        e->val_len = vl;
        prev_off = d->keys.len;
        prev_len = klen;
        d->keys.len += klen;
        off = e->val_off + vl;
    }
    if (ri != b->n_restarts)
        CORRUPT_AT("restart offset is not an entry boundary",
                   sst_block_restart(b, ri));
    return DM_OK;
}

/* ==================================================== block envelope */

uint32_t sst_trailer_crc(const uint8_t *p, size_t len, uint8_t type)
{
    uint32_t c = crc32c(p, len);
    c = crc32c_extend(c, &type, 1);
    return crc_mask(c);
}

int sst_trailer_check(const uint8_t *p, size_t len, const char **why)
{
    uint8_t type = p[len];
    if (sst_trailer_crc(p, len, type) != dec_u32(p + len + 1)) {
        *why = "block checksum mismatch";
        return DM_ECORRUPT;
    }
    if (type > SST_COMP_ZSTD) {
        *why = "unknown block compression type";
        return DM_ECORRUPT;
    }
    return type;
}

int sst_compressed_len(int type, const uint8_t *p, size_t len, size_t *ulen,
                       size_t *hdr_len, const char **why)
{
    uint64_t v;
    const uint8_t *q = dec_varint(p, p + len, &v);
    if (!q) {
        *why = "bad uncompressed-length prefix";
        return DM_ECORRUPT;
    }
    if (v < SST_BLOCK_MIN_LEN || v > SST_MAX_BLOCK_LEN) {
        *why = "uncompressed length out of range";
        return DM_ECORRUPT;
    }
    size_t src_len = len - (size_t)(q - p);
    if (type == SST_COMP_LZ4 && v > (uint64_t)src_len * 255u + 16u) {
        *why = "uncompressed length larger than lz4 can produce";
        return DM_ECORRUPT;
    }
    if (type == SST_COMP_ZSTD) {
        unsigned long long fcs = ZSTD_getFrameContentSize(q, src_len);
        if (fcs == ZSTD_CONTENTSIZE_ERROR || fcs != v) {
            *why = "uncompressed length does not match the zstd frame";
            return DM_ECORRUPT;
        }
    }
    *ulen = (size_t)v;
    *hdr_len = (size_t)(q - p);
    return DM_OK;
}

int sst_decompress(int type, void *zctx, const uint8_t *p, size_t len,
                   uint8_t *dst, size_t ulen, const char **why)
{
    size_t want, hdr;
    int rc = sst_compressed_len(type, p, len, &want, &hdr, why);
    if (rc)
        return rc;
    if (want != ulen) {
        *why = "uncompressed length changed";
        return DM_ECORRUPT;
    }
    const uint8_t *src = p + hdr;
    size_t src_len = len - hdr;
    if (type == SST_COMP_LZ4) {
        if (src_len > INT_MAX || ulen > INT_MAX) {
            *why = "lz4 block too large";
            return DM_ECORRUPT;
        }
        int n = LZ4_decompress_safe((const char *)src, (char *)dst,
                                    (int)src_len, (int)ulen);
        if (n < 0 || (size_t)n != ulen) {
            *why = "lz4 data corrupt";
            return DM_ECORRUPT;
        }
        return DM_OK;
    }
    if (type == SST_COMP_ZSTD) {
        size_t n = zctx ? ZSTD_decompressDCtx((ZSTD_DCtx *)zctx, dst, ulen,
                                              src, src_len)
                        : ZSTD_decompress(dst, ulen, src, src_len);
        if (ZSTD_isError(n) || n != ulen) {
            *why = "zstd data corrupt";
            return DM_ECORRUPT;
        }
        return DM_OK;
    }
    *why = "unknown block compression type";
    return DM_ECORRUPT;
}
