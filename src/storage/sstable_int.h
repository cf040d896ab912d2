/*
 * sstable_int.h -- internals shared by the SSTable files (tier 3: only
 * sstable.c, block.c, bloom.c, block_cache.c and their unit tests include
 * this).
 *
 *   block.c        block builder, block parsing/search/decoding, block
 *                  trailers and decompression
 *   bloom.c        the table's bloom filter and its 64-bit key hash
 *   block_cache.c  sst_cache: sharded LRU of decoded blocks
 *   sstable.c      table builder, reader, point get, iterator, verify
 *
 * Format: docs/format.md "SSTable"; constants in sstable_format.h.
 */
#ifndef DM_STORAGE_SSTABLE_INT_H
#define DM_STORAGE_SSTABLE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "storage/ikey.h"
#include "storage/sstable.h"
#include "storage/sstable_format.h"

/* ============================================================ targets */

/*
 * A seek target: an internal key split into its user key and trailer, so
 * that a target can be formed without copying the user key (the get path
 * builds (user_key, snap_seq, IKEY_SEEK_TYPE) without a buffer).
 */
typedef struct sst_target {
    buf_slice ukey;
    uint64_t trailer;
} sst_target;

/* sst_key_cmp_target -- ikey_cmp(k, target).  REQUIRES: klen >= 8. */
static inline int sst_key_cmp_target(const uint8_t *k, size_t klen,
                                     const sst_target *t)
{
    size_t ulen = klen - IKEY_TRAILER_LEN;
    size_t n = ulen < t->ukey.len ? ulen : t->ukey.len;
    int c = n ? memcmp(k, t->ukey.ptr, n) : 0;
    if (c)
        return c;
    if (ulen != t->ukey.len)
        return ulen < t->ukey.len ? -1 : 1;
    uint64_t tr = dec_u64(k + ulen);
    return tr > t->trailer ? -1 : tr < t->trailer ? 1 : 0;
}

/* ====================================================== block builder */

/*
 * Builds one block (data or index): prefix-compressed entries with a
 * restart point every `interval` entries, then the restart array and its
 * count.  Owned buffers; reused across blocks through sst_bb_reset.
 */
typedef struct sst_block_builder {
    buf data;          /* entries, then (after finish) restarts + count */
    uint32_t *restarts;
    size_t n_restarts;
    size_t restarts_cap;
    int interval;
    int counter;       /* entries since the last restart point */
    buf last_key;      /* previous key added (for prefix compression) */
    size_t n_entries;
    bool is_finished;
} sst_block_builder;

void sst_bb_init(sst_block_builder *bb, int interval);
void sst_bb_fini(sst_block_builder *bb);
void sst_bb_reset(sst_block_builder *bb);
/* sst_bb_add -- appends key/value.  REQUIRES: key > previous key; not
 * finished.  DM_OK or DM_ENOMEM (the builder is then unusable). */
int sst_bb_add(sst_block_builder *bb, buf_slice key, buf_slice value);
/* sst_bb_finish -- appends the restart array; *out borrows bb->data until
 * the next reset.  DM_OK or DM_ENOMEM. */
int sst_bb_finish(sst_block_builder *bb, buf_slice *out);
/* Size of the contents if finished now. */
static inline size_t sst_bb_estimate(const sst_block_builder *bb)
{
    return bb->data.len + 4 * bb->n_restarts + 4;
}
static inline bool sst_bb_empty(const sst_block_builder *bb)
{
    return bb->n_entries == 0;
}

/* ======================================================= block reader */

/*
 * A parsed view of block contents (uncompressed).  The entries occupy
 * [data, data + entries_len); the restart array follows.
 */
typedef struct sst_block {
    const uint8_t *data;
    uint32_t entries_len;
    uint32_t n_restarts;
    const uint8_t *restarts; /* n_restarts u32 LE */
} sst_block;

/*
 * sst_block_parse -- locates the restart array of contents [p, p+len).
 * With is_full, also checks the whole restart array: restarts[0] == 0,
 * strictly increasing, each < entries_len, and n_restarts == 0 exactly
 * when the block has no entries.  Returns DM_OK or DM_ECORRUPT with *why
 * set to a static reason.  The O(1) part (count and sizes) is always
 * checked.
 */
int sst_block_parse(const uint8_t *p, size_t len, bool is_full, sst_block *out,
                    const char **why);

static inline uint32_t sst_block_restart(const sst_block *b, uint32_t i)
{
    return dec_u32(b->restarts + 4 * (size_t)i);
}

/*
 * sst_entry_decode -- decodes the entry header at p (entries end at limit):
 * shared, non_shared and value_len, each checked to fit in 32 bits and
 * the delta + value bytes to lie before limit.  Returns a pointer to the
 * key delta bytes, or NULL when the entry is malformed.
 */
static inline const uint8_t *sst_entry_decode(const uint8_t *p,
                                              const uint8_t *limit,
                                              uint32_t *shared,
                                              uint32_t *non_shared,
                                              uint32_t *vlen)
{
    if (limit - p < 3)
        return NULL;
    uint32_t a = p[0], b = p[1], c = p[2];
    if ((a | b | c) < 128) {
        /* Fast path: all three fields fit in one byte each (the common
         * case for keys and values below 128 bytes). */
        p += 3;
    } else {
        uint64_t v[3];
        for (int i = 0; i < 3; i++) {
            p = dec_varint(p, limit, &v[i]);
            if (!p || v[i] > UINT32_MAX)
                return NULL;
        }
        a = (uint32_t)v[0];
        b = (uint32_t)v[1];
        c = (uint32_t)v[2];
    }
    if ((uint64_t)(limit - p) < (uint64_t)b + c)
        return NULL;
    *shared = a;
    *non_shared = b;
    *vlen = c;
    return p;
}

/* A small key buffer: on the stack for typical keys, heap beyond that, so
 * the point-get path does not allocate. */
typedef struct sst_kbuf {
    uint8_t *p;
    size_t len;
    size_t cap;
    uint8_t stack[256];
} sst_kbuf;

static inline void sst_kbuf_init(sst_kbuf *kb)
{
    kb->p = kb->stack;
    kb->len = 0;
    kb->cap = sizeof kb->stack;
}
void sst_kbuf_fini(sst_kbuf *kb);
/* sst_kbuf_reserve -- capacity for n bytes keeping the first kb->len.
 * DM_OK or DM_ENOMEM. */
int sst_kbuf_reserve(sst_kbuf *kb, size_t n);

/*
 * sst_block_seek -- finds the first entry >= target in a block whose
 * restart array has been checked (sst_block_parse with is_full).  Binary
 * search over the restart points, then a linear scan.  On 1, *key / *val
 * describe the entry (key bytes in kb or in the block; valid until kb
 * changes or the block is released).  Returns 1 (found), 0 (every entry
 * < target), DM_ECORRUPT (with *why and *bad_off, the offset inside the
 * block) or DM_ENOMEM.
 */
int sst_block_seek(const sst_block *b, const sst_target *t, sst_kbuf *kb,
                   buf_slice *key, buf_slice *val, const char **why,
                   uint32_t *bad_off);

/* One decoded entry of a materialised block: the key lives in a key
 * arena, the value in the block contents. */
typedef struct sst_ent {
    uint32_t key_off;
    uint32_t key_len;
    uint32_t val_off;
    uint32_t val_len;
} sst_ent;

/* A reusable decoding area for whole blocks (iterator, verify). */
typedef struct sst_decoded {
    buf keys;
    sst_ent *ents;
    size_t n_ents;
    size_t ents_cap;
} sst_decoded;

void sst_decoded_init(sst_decoded *d);
void sst_decoded_fini(sst_decoded *d);

/*
 * sst_block_decode_all -- decodes every entry of a parsed block into d,
 * checking everything: entry bounds, shared <= previous key length,
 * shared == 0 exactly at restart offsets and every restart offset an entry
 * boundary, keys >= 8 bytes with a known type, keys strictly increasing.
 * Returns DM_OK, DM_ECORRUPT (*why, *bad_off) or DM_ENOMEM.
 */
int sst_block_decode_all(const sst_block *b, sst_decoded *d, const char **why,
                         uint32_t *bad_off);

static inline buf_slice sst_decoded_key(const sst_decoded *d, size_t i)
{
    return buf_slice_of(d->keys.ptr + d->ents[i].key_off, d->ents[i].key_len);
}

/* ==================================================== block envelope */

/*
 * sst_trailer_check -- verifies the 5-byte trailer that follows the
 * stored bytes [p, p+len): type known and masked CRC32C of stored bytes ++
 * type byte equal to the stored value.  Returns the type (>= 0) or
 * DM_ECORRUPT with *why.
 */
int sst_trailer_check(const uint8_t *p, size_t len, const char **why);
/* sst_trailer_crc -- the masked checksum stored for (p, len, type). */
uint32_t sst_trailer_crc(const uint8_t *p, size_t len, uint8_t type);

/*
 * sst_compressed_len -- for a stored block compressed with `type`, decodes
 * the varint uncompressed length prefix: *ulen and *hdr_len (bytes of the
 * prefix).  DM_OK or DM_ECORRUPT (*why) when the prefix is bad, the length
 * is outside [SST_BLOCK_MIN_LEN, SST_MAX_BLOCK_LEN], or it is more than the
 * codec can produce from the stored bytes (LZ4 expands at most ~255x; a
 * zstd frame records its content size), so that a damaged prefix cannot
 * make the reader allocate a huge buffer.
 */
int sst_compressed_len(int type, const uint8_t *p, size_t len, size_t *ulen,
                       size_t *hdr_len, const char **why);

/*
 * sst_decompress -- decompresses the stored block (p, len) of the given
 * type into dst (exactly ulen bytes, from sst_compressed_len).  zctx is a
 * ZSTD_DCtx for SST_COMP_ZSTD (opaque here).  DM_OK or DM_ECORRUPT (*why).
 */
int sst_decompress(int type, void *zctx, const uint8_t *p, size_t len,
                   uint8_t *dst, size_t ulen, const char **why);

/* =============================================================== bloom */

/* sst_hash64 -- the filter's key hash (part of the format: see the doc). */
uint64_t sst_hash64(const void *p, size_t n);
/* sst_bloom_k -- probes per key for bits_per_key (>= 1). */
int sst_bloom_k(int bits_per_key);
/* sst_bloom_len -- filter contents length (bit array + k byte). */
size_t sst_bloom_len(size_t n_keys, int bits_per_key);
/* sst_bloom_build -- writes the filter for n key hashes into out
 * (sst_bloom_len(n, bpk) bytes). */
void sst_bloom_build(const uint64_t *hashes, size_t n, int bits_per_key,
                     uint8_t *out);
/* sst_bloom_check -- validates filter contents: at least 1 byte of bits,
 * k in range.  DM_OK or DM_ECORRUPT (*why). */
int sst_bloom_check(const uint8_t *f, size_t len, const char **why);
/* sst_bloom_may_contain -- false only when the key is certainly absent.
 * REQUIRES: sst_bloom_check passed. */
bool sst_bloom_may_contain(const uint8_t *f, size_t len, uint64_t hash);

/* ========================================================= block cache */

/*
 * A cache entry: header plus `len` bytes of block contents.  A handle is
 * either standalone (made by sst_cache_handle_new, owned by its creator,
 * freed by sst_cache_release) or lives in a cache (refcounted; the cache
 * holds one reference while the entry is in its table).
 */
typedef struct sst_cache_handle sst_cache_handle;

/* sst_cache_handle_new -- a standalone entry with room for len bytes;
 * NULL when out of memory. */
sst_cache_handle *sst_cache_handle_new(size_t len);
/* sst_cache_handle_new_for -- the same, for a block about to be inserted
 * under (file_number, off) in c: reuses memory the cache kept from an
 * evicted entry when some fits (see block_cache.c, "Spares").  c may be
 * NULL (then it is sst_cache_handle_new).  Thread-safe. */
sst_cache_handle *sst_cache_handle_new_for(sst_cache *c, uint64_t file_number,
                                           uint64_t off, size_t len);
uint8_t *sst_cache_handle_data(sst_cache_handle *h);
size_t sst_cache_handle_len(const sst_cache_handle *h);
/* sst_cache_handle_set_len -- shrink the used length (<= allocated). */
void sst_cache_handle_set_len(sst_cache_handle *h, size_t len);

/*
 * sst_cache_lookup -- the entry for (file_number, off) with a new
 * reference, or NULL.  Thread-safe.
 */
sst_cache_handle *sst_cache_lookup(sst_cache *c, uint64_t file_number,
                                   uint64_t off);
/*
 * sst_cache_insert -- puts standalone handle h into the cache under
 * (file_number, off), replacing any entry with that key (which is freed
 * once its last user releases it).  The caller keeps its reference and
 * must release it.  Thread-safe.  Evicts least recently used entries not
 * in use until the usage fits the capacity.
 */
void sst_cache_insert(sst_cache *c, uint64_t file_number, uint64_t off,
                      sst_cache_handle *h);
/* sst_cache_release -- drops one reference (standalone: frees).
 * Thread-safe.  NULL does nothing. */
void sst_cache_release(sst_cache_handle *h);
/* sst_cache_entries -- number of entries held (tests). */
size_t sst_cache_entries(const sst_cache *c);

/* ================================================== reader internals */

/* For tests and tools: the data block handles of an open reader. */
size_t sst_reader_n_blocks(const sst_reader *r);
/* sst_reader_block -- block i's offset, stored length (no trailer) and
 * index key (borrowed from the reader).  REQUIRES: i < n_blocks. */
void sst_reader_block(const sst_reader *r, size_t i, uint64_t *off,
                      uint64_t *len, buf_slice *index_key);
/* sst_reader_is_mmapped -- whether data blocks are read from a mapping. */
bool sst_reader_is_mmapped(const sst_reader *r);

#endif
