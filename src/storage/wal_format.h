/*
 * wal_format.h -- constants of the write-ahead log format.
 * Normative text: docs/format.md, section "WAL".
 */
#ifndef DM_STORAGE_WAL_FORMAT_H
#define DM_STORAGE_WAL_FORMAT_H

/* File header: magic(8) version(4) reserved(4) log_number(8) crc(4) pad(4) */
#define WAL_MAGIC UINT64_C(0x314c41574d4c4444) /* "DDLMWAL1" little-endian */
#define WAL_VERSION 1u
#define WAL_FILE_HEADER_LEN 32

/* Record header: crc(4) hcrc(4) len(4) type(1) reserved(3) seq(8) */
#define WAL_RECORD_HEADER_LEN 24
#define WAL_MAX_RECORD_LEN (64u << 20) /* payload bytes */

enum wal_record_type {
    WAL_REC_BATCH = 1, /* payload: a write batch (kv.h, docs/format.md) */
};

#endif
