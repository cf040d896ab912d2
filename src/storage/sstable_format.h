/*
 * sstable_format.h -- constants of the SSTable file format.
 * Normative text: docs/format.md, section "SSTable".
 */
#ifndef DM_STORAGE_SSTABLE_FORMAT_H
#define DM_STORAGE_SSTABLE_FORMAT_H

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

#endif
