/*
 * hnsw_format.h -- constants of the HNSW index checkpoint.
 * Normative text: docs/format.md, section "HNSW index checkpoint".
 *
 * Version 2 (written):
 *   checkpoint := header body trailer
 *   header     := magic(u64) version(u32) flags(u32) body_len(u64)
 *                 dim(u32) M(u32) ef_construction(u32) n_nodes(u32)
 *                 n_deleted(u32) entry(u32) max_level(u32) n_upper(u32)
 *                 rng_state(u64)                                   64 bytes
 *   body       := vdesc    elem_type(u32) reserved(u32)           8 bytes
 *                 labels   n_nodes * u32
 *                 meta     n_nodes * u8, zero bytes to a multiple of 4
 *                 vectors  n_nodes * dim * (f32 | f16 by elem_type),
 *                          zero bytes to a multiple of 4
 *                 links0   n_nodes * (1 + 2M) * u32        (graph only)
 *                 upper    n_upper * u32                    (graph only)
 *   trailer    := crc(u32) reserved(u32) magic(u64)                16 bytes
 *
 * Version 1 (read only): no vdesc; vectors are always f32 (so never
 * padded); everything else as in version 2.
 *
 * crc is crc_mask(CRC32C) of every byte before it (header and body).  The
 * header fields up to body_len and the trailer (the "envelope") have the
 * same layout in every version; the version governs everything else, and
 * is looked at only after the checksum matched, so damage is DM_ECORRUPT
 * and only a genuine newer file is DM_EVERSION.
 */
#ifndef DM_INDEX_HNSW_FORMAT_H
#define DM_INDEX_HNSW_FORMAT_H

#include <stdint.h>

#define HNSW_MAGIC UINT64_C(0x31534e4844444d44) /* "DMDDHNS1" little-endian */
#define HNSW_VERSION 2u   /* the version hnsw_serialize writes */
#define HNSW_VERSION_1 1u /* float32 only; still read */
#define HNSW_HEADER_LEN 64
#define HNSW_TRAILER_LEN 16
#define HNSW_VDESC_LEN 8 /* version 2: the body's first section */

/* Header field offsets. */
#define HNSW_OFF_MAGIC 0
#define HNSW_OFF_VERSION 8
#define HNSW_OFF_FLAGS 12
#define HNSW_OFF_BODY_LEN 16
#define HNSW_OFF_DIM 24
#define HNSW_OFF_M 28
#define HNSW_OFF_EF_CONSTRUCTION 32
#define HNSW_OFF_N_NODES 36
#define HNSW_OFF_N_DELETED 40
#define HNSW_OFF_ENTRY 44
#define HNSW_OFF_MAX_LEVEL 48
#define HNSW_OFF_N_UPPER 52
#define HNSW_OFF_RNG_STATE 56

/* vdesc field offsets (version 2), from the start of the checkpoint. */
#define HNSW_OFF_ELEM_TYPE 64
#define HNSW_OFF_VDESC_RESERVED 68 /* zero */

/* elem_type: how the vectors section stores a component. */
#define HNSW_ELEM_TYPE_F32 0u /* IEEE-754 binary32, 4 bytes */
#define HNSW_ELEM_TYPE_F16 1u /* IEEE-754 binary16, 2 bytes */

/* Trailer field offsets, counted back from the end of the checkpoint. */
#define HNSW_TRAILER_OFF_CRC 16
#define HNSW_TRAILER_OFF_RESERVED 12
#define HNSW_TRAILER_OFF_MAGIC 8

/* flags: bit 0 says the graph sections are present; other bits are 0. */
#define HNSW_FLAG_GRAPH 1u
#define HNSW_FLAGS_KNOWN HNSW_FLAG_GRAPH

/* meta byte of a node: bits 0-4 its top layer, bit 7 "deleted", bits 5-6
 * zero. */
#define HNSW_META_LEVEL_MASK 0x1fu
#define HNSW_META_DELETED 0x80u
#define HNSW_META_RESERVED 0x60u

/* "No node" in entry (an empty index). */
#define HNSW_NO_NODE UINT32_MAX

/* Limits shared by hnsw_new and the loader. */
#define HNSW_MAX_DIM 4096u
#define HNSW_MIN_M 2u
#define HNSW_MAX_M 256u
#define HNSW_MAX_EF (1u << 20)
#define HNSW_MAX_LEVEL 31u
#define HNSW_MAX_NODES (UINT32_MAX - 1u)

#endif
