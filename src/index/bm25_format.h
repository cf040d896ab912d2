/*
 * bm25_format.h -- constants of the BM25 index checkpoint format.
 * Normative text: docs/format.md, section "BM25 index checkpoint".
 *
 *   checkpoint := header body trailer
 *   header     := magic(u64) version(u32) reserved(u32)            16 bytes
 *   body       := varint n_docs, total_len, n_docs * doc,
 *                 varint n_terms, n_terms * term
 *   doc        := varint gap, len          doc = prev + gap + 1 (prev = -1)
 *   term       := varint shared, suffix_len, suffix bytes, varint df,
 *                 df * posting                   (terms in strict byte order)
 *   posting    := varint code [varint tf - 2 if code & 1]
 *                 doc = prev + (code >> 1) + 1 (prev = -1 per term);
 *                 tf = code & 1 ? that + 2 : 1
 *   trailer    := body_len(u32) crc(u32) magic(u64)                16 bytes
 *
 * crc is crc_mask(CRC32C) of every byte before it: header, body and
 * body_len.  The envelope (header and trailer layout) is the same in every
 * version: damage is DM_ECORRUPT, a sound file of another version is
 * DM_EVERSION.  The scoring parameters (k1, b) are not stored: the index
 * content does not depend on them.
 */
#ifndef DM_INDEX_BM25_FORMAT_H
#define DM_INDEX_BM25_FORMAT_H

#include <stdint.h>

#define BM25_MAGIC UINT64_C(0x35324d4244444d44) /* "DMDDBM25" little-endian */
#define BM25_VERSION 1u
#define BM25_HEADER_LEN 16  /* magic(8) version(4) reserved(4) */
#define BM25_TRAILER_LEN 16 /* body_len(4) crc(4) magic(8) */

#define BM25_OFF_MAGIC 0
#define BM25_OFF_VERSION 8
#define BM25_OFF_RESERVED 12
#define BM25_TRAILER_OFF_BODY_LEN 16 /* from the end of the checkpoint */
#define BM25_TRAILER_OFF_CRC 12      /* from the end of the checkpoint */
#define BM25_TRAILER_OFF_MAGIC 8     /* from the end of the checkpoint */

/* Terms are 1..BM25_MAX_TERM_LEN bytes of UTF-8.  Longer analyzed words are
 * not indexed at all (neither in postings nor in the document length), in
 * documents and queries alike. */
#define BM25_MAX_TERM_LEN 255u

/* Document numbers are below BM25_DOC_LIMIT (UINT32_MAX is reserved). */
#define BM25_DOC_LIMIT UINT32_MAX

/* The smallest encodings, which bound counts before any allocation: a doc
 * entry is two 1-byte varints; a term entry is shared, suffix_len, one
 * suffix byte, df and one 1-byte posting. */
#define BM25_MIN_DOC_LEN 2
#define BM25_MIN_TERM_LEN 5

#endif
