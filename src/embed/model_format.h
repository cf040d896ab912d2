/*
 * model_format.h -- constants of the embedding model file (the converted
 * static word-vector model read by the built-in embedder).
 * Normative text: docs/format.md, section "Embedding model file".
 *
 *   file    := header scales weights [common] rows word_off strings slots
 *              footer
 *   header  := 128 bytes, MODEL_HDR_* offsets below
 *   section := its array, then zero bytes up to the next multiple of 64
 *   footer  := file_len u64 | reserved u32 | crc u32 | magic u64   24 bytes
 *
 * The sections have no offsets of their own: each starts at the first
 * multiple of MODEL_ALIGN after the previous one, so the whole layout
 * follows from the header's counts.  All integers and floats are
 * little-endian (IEEE 754 binary32 for floats).  The CRC covers every
 * byte before the crc field: [0, file_len - 12).
 */
#ifndef DM_EMBED_MODEL_FORMAT_H
#define DM_EMBED_MODEL_FORMAT_H

#include <stdint.h>

#define MODEL_MAGIC UINT64_C(0x314445424d454d44) /* "DMEMBED1" little-endian */
#define MODEL_VERSION 1u
#define MODEL_ALIGN 64u        /* every section starts at a multiple of this */

/* Header (128 bytes at offset 0). */
#define MODEL_HDR_LEN 128u
#define MODEL_HDR_MAGIC 0        /* u64 MODEL_MAGIC */
#define MODEL_HDR_VERSION 8      /* u32 MODEL_VERSION */
#define MODEL_HDR_FLAGS 12       /* u32 MODEL_FLAG_* */
#define MODEL_HDR_DIM 16         /* u32 vector dimension */
#define MODEL_HDR_N_WORDS 20     /* u32 vocabulary size */
#define MODEL_HDR_N_SLOTS 24     /* u32 hash table slots, a power of two */
#define MODEL_HDR_STRINGS_LEN 28 /* u32 bytes of vocabulary text */
#define MODEL_HDR_SIF_A 32       /* f32 the SIF constant a the weights used */
#define MODEL_HDR_COMMON_TOP 36  /* u32 words the common component came from */
#define MODEL_HDR_NAME 40        /* 64 bytes: model name, NUL-padded */
#define MODEL_HDR_RESERVED 104   /* 24 bytes, zero */
#define MODEL_NAME_CAP 64u       /* name bytes + at least one NUL */

/* Footer (24 bytes, ends the file). */
#define MODEL_FOOTER_LEN 24u
#define MODEL_FOOTER_FILE_LEN 0  /* u64 length of the whole file */
#define MODEL_FOOTER_RESERVED 8  /* u32 zero */
#define MODEL_FOOTER_CRC 12      /* u32 crc_mask(crc32c(file [0, file_len-12))) */
#define MODEL_FOOTER_MAGIC 16    /* u64 MODEL_MAGIC */

/* Flags. */
#define MODEL_FLAG_HAS_COMMON 1u    /* the common section is present */
#define MODEL_FLAG_REMOVE_COMMON 2u /* sentence vectors lose their projection
                                       on it (requires HAS_COMMON) */
#define MODEL_FLAGS_KNOWN 3u

/* Limits a valid file respects. */
#define MODEL_MAX_DIM 4096u
#define MODEL_MAX_WORDS (UINT32_C(1) << 24)
#define MODEL_MAX_SLOTS (UINT32_C(1) << 26)
#define MODEL_MAX_WORD_LEN 255u
#define MODEL_MAX_STRINGS_LEN (UINT32_C(1) << 30)

/* Writer choices (not checked by readers). */
#define MODEL_SIF_A 1e-3                  /* SIF weight a / (a + p(w)) */
#define MODEL_COMMON_TOP_DEFAULT 50000u   /* words the component is fit on */
#define MODEL_DEFAULT_NAME "glove-6b-100d-int8"
#define MODEL_INT8_MAX 127                /* rows hold -127..127 */

/* The vocabulary hash (docs/format.md gives test vectors): FNV-1a over the
 * word's bytes, then a murmur-style finalizer so that the low bits, which
 * pick the slot, depend on every input byte. */
#define MODEL_FNV_OFFSET UINT64_C(0xcbf29ce484222325)
#define MODEL_FNV_PRIME UINT64_C(0x100000001b3)
#define MODEL_MIX_MUL UINT64_C(0xff51afd7ed558ccd)

static inline uint64_t model_hash(const void *p, uint32_t len)
{
    const uint8_t *s = (const uint8_t *)p;
    uint64_t h = MODEL_FNV_OFFSET;
    for (uint32_t i = 0; i < len; i++)
        h = (h ^ s[i]) * MODEL_FNV_PRIME;
    h ^= h >> 33;
    h *= MODEL_MIX_MUL;
    h ^= h >> 33;
    return h;
}

/* model_align -- x rounded up to a multiple of MODEL_ALIGN. */
static inline uint64_t model_align(uint64_t x)
{
    return (x + MODEL_ALIGN - 1) & ~(uint64_t)(MODEL_ALIGN - 1);
}

/* Section offsets computed from the header counts (docs/format.md). */
typedef struct model_layout {
    uint64_t scales_off;   /* f32[n_words] */
    uint64_t weights_off;  /* f32[n_words] */
    uint64_t common_off;   /* f32[dim], or 0 when absent */
    uint64_t rows_off;     /* i8[n_words * dim] */
    uint64_t word_off_off; /* u32[n_words + 1] */
    uint64_t strings_off;  /* u8[strings_len] */
    uint64_t slots_off;    /* u32[n_slots] */
    uint64_t footer_off;   /* footer */
    uint64_t file_len;     /* footer_off + MODEL_FOOTER_LEN */
} model_layout;

static inline model_layout model_layout_of(uint32_t dim, uint32_t n_words,
                                           uint32_t n_slots,
                                           uint32_t strings_len,
                                           int has_common)
{
    model_layout l;
    uint64_t off = MODEL_HDR_LEN;
    l.scales_off = off;
    off = model_align(off + 4ull * n_words);
    l.weights_off = off;
    off = model_align(off + 4ull * n_words);
    l.common_off = has_common ? off : 0;
    if (has_common)
        off = model_align(off + 4ull * dim);
    l.rows_off = off;
    off = model_align(off + (uint64_t)n_words * dim);
    l.word_off_off = off;
    off = model_align(off + 4ull * ((uint64_t)n_words + 1));
    l.strings_off = off;
    off = model_align(off + strings_len);
    l.slots_off = off;
    off = model_align(off + 4ull * n_slots);
    l.footer_off = off;
    l.file_len = off + MODEL_FOOTER_LEN;
    return l;
}

#endif
