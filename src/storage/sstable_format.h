/*
 * sstable_format.h -- constants of the SSTable file format.
 * Normative text: docs/format.md, section "SSTable".
 *
 *   file    := header data_block* [filter_block] index_block footer
 *   header  := magic u64 | version u32 | reserved u32 (= 0)      16 bytes
 *   block   := stored_bytes | type u8 | masked_crc32c u32         + 5 bytes
 *   footer  := see SST_FOOTER_* offsets below                     64 bytes
 *
 * All integers are little-endian; varints are LEB128 (base/buf.h).
 */
#ifndef DM_STORAGE_SSTABLE_FORMAT_H
#define DM_STORAGE_SSTABLE_FORMAT_H

#include <stdint.h>

#define SST_MAGIC UINT64_C(0x3154535344444d44) /* "DMDDSST1" little-endian */
#define SST_VERSION 1u
#define SST_HEADER_LEN 16   /* magic(8) version(4) reserved(4) */
#define SST_FOOTER_LEN 64
#define SST_BLOCK_TRAILER_LEN 5 /* compression(1) crc(4) */

enum sst_compression {
    SST_COMP_NONE = 0,
    SST_COMP_LZ4 = 1,
    SST_COMP_ZSTD = 2,
};

/* Footer layout (byte offsets inside the 64-byte footer). */
#define SST_FOOTER_INDEX_OFF 0    /* u64: file offset of the index block */
#define SST_FOOTER_INDEX_LEN 8    /* u64: its stored length (no trailer) */
#define SST_FOOTER_FILTER_OFF 16  /* u64: filter block offset (0 = none) */
#define SST_FOOTER_FILTER_LEN 24  /* u64: its stored length (0 = none) */
#define SST_FOOTER_ENTRIES 32     /* u64: number of entries in the table */
#define SST_FOOTER_BLOCKS 40      /* u64: number of data blocks */
#define SST_FOOTER_VERSION 48     /* u32: SST_VERSION */
#define SST_FOOTER_CRC 52         /* u32: masked CRC32C of bytes [0,52) ++ [56,64) */
#define SST_FOOTER_MAGIC 56       /* u64: SST_MAGIC */

/* Block contents: entries, then u32 restart offsets, then u32 count. */
#define SST_BLOCK_MIN_LEN 4                 /* an empty block: count = 0 */
#define SST_MAX_BLOCK_LEN (UINT32_C(1) << 30) /* uncompressed contents */
#define SST_MAX_ENTRY_LEN (UINT32_C(1) << 28) /* key + value of one entry */
#define SST_MAX_BLOCK_SIZE_OPT (UINT32_C(1) << 26) /* sst_options.block_size */
#define SST_INDEX_RESTART_INTERVAL 1        /* index keys stored whole */

/* Bloom filter: bit array then k (u8); k = (bits_per_key*69 + 50) / 100
 * clamped to [SST_BLOOM_MIN_K, SST_BLOOM_MAX_K]; at least 64 bits. */
#define SST_BLOOM_MIN_K 1
#define SST_BLOOM_MAX_K 30
#define SST_BLOOM_MIN_BITS 64
#define SST_BLOOM_MAX_BITS_PER_KEY 100

#endif
