/*
 * record_format.h -- constants of the engine's record values
 * (docs/format.md, "Memory engine records").
 */
#ifndef DM_ENGINE_RECORD_FORMAT_H
#define DM_ENGINE_RECORD_FORMAT_H

#define REC_MEMORY_VERSION 1
#define REC_USER_VERSION 1
#define REC_LOG_VERSION 1
#define REC_HEAD_VERSION 1

#define REC_MEMORY_HAS_AGENT 0x01
#define REC_MEMORY_HAS_SESSION 0x02
#define REC_MEMORY_EMB_F16 0x04 /* the embedding is IEEE binary16 */

/* The per-user index checkpoint blob (docs/format.md, "Index checkpoint"). */
#define CKPT_MAGIC 0x4b434d44u /* "DMCK" little-endian */
#define CKPT_VERSION 1
#define CKPT_PART_MAX (4u << 20)

/* Database metadata keys ('D' kind). */
#define META_MODEL "model"
#define META_FORMAT "format"
#define ENGINE_FORMAT_VERSION 1

#endif
