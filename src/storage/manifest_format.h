/*
 * manifest_format.h -- constants of the MANIFEST file format.
 * Normative text: docs/format.md, section "MANIFEST".
 *
 *   manifest := header body trailer
 *   header   := magic(u64) version(u32) reserved(u32)              16 bytes
 *   body     := varint next_file, last_seq, log_number, n_files,
 *               n_files * file_entry
 *   file_entry := varint level, number, size, n_entries,
 *                 varint len + smallest ikey, varint len + largest ikey
 *   trailer  := body_len(u32) crc(u32) magic(u64)                  16 bytes
 *
 * crc is crc_mask(CRC32C) of every byte before it: header, body and
 * body_len.  The header and trailer layout (the "envelope") is the same
 * for every version; the version number governs the body only, so a file
 * whose envelope checks out but whose version is unknown is DM_EVERSION,
 * and anything else wrong is DM_ECORRUPT.
 */
#ifndef DM_STORAGE_MANIFEST_FORMAT_H
#define DM_STORAGE_MANIFEST_FORMAT_H

#include <stdint.h>

#define MAN_MAGIC UINT64_C(0x314e414d44444d44) /* "DMDDMAN1" little-endian */
#define MAN_VERSION 1u
#define MAN_HEADER_LEN 16  /* magic(8) version(4) reserved(4) */
#define MAN_TRAILER_LEN 16 /* body_len(4) crc(4) magic(8) */

/* Offsets inside the header and, counted back from the end of the file,
 * inside the trailer. */
#define MAN_OFF_MAGIC 0
#define MAN_OFF_VERSION 8
#define MAN_OFF_RESERVED 12
#define MAN_TRAILER_OFF_BODY_LEN 16 /* from the end of the file */
#define MAN_TRAILER_OFF_CRC 12      /* from the end of the file */
#define MAN_TRAILER_OFF_MAGIC 8     /* from the end of the file */

/* Levels 0 .. MAN_MAX_LEVELS-1 (equal to KV_MAX_LEVELS; checked in
 * manifest.c). */
#define MAN_MAX_LEVELS 7

/* Internal keys are a user key of at most KV_MAX_KEY_LEN bytes plus the
 * 8-byte trailer. */
#define MAN_MIN_KEY_LEN 8
#define MAN_MAX_KEY_LEN ((64u << 10) + 8u)

/* The smallest possible file entry: four 1-byte varints and two keys of
 * MAN_MIN_KEY_LEN bytes with 1-byte lengths.  Bounds n_files before any
 * allocation. */
#define MAN_MIN_ENTRY_LEN (4 + 2 * (1 + MAN_MIN_KEY_LEN))

#endif
