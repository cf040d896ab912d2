/*
 * embed_int.h -- private to src/embed: the provider vtable behind the
 * opaque `embedder`, and the built-in model's internals used by its tests
 * and benchmark.
 *
 * Each provider's object starts with `struct embedder`, so a pointer to
 * the provider's object is a pointer to its embedder and back.  embed.c
 * dispatches through `ops`; the providers fill name and dim at open.
 */
#ifndef DM_EMBED_EMBED_INT_H
#define DM_EMBED_EMBED_INT_H

#include <stddef.h>
#include <stdint.h>

#include "embed/embed.h"

typedef struct embedder_ops {
    /* close -- releases everything, including the object itself. */
    void (*close)(embedder *e);
    /* embed -- as embedder_embed; n >= 1, arguments already checked. */
    int (*embed)(embedder *e, const char *const *texts, const size_t *lens,
                 size_t n, float *out);
    /* known_words -- as embedder_known_words; NULL = always 0. */
    uint32_t (*known_words)(embedder *e, const char *text, size_t len);
} embedder_ops;

struct embedder {
    const embedder_ops *ops;
    uint32_t dim;
    char name[EMBED_NAME_MAX]; /* NUL-terminated */
};

/* ------------------------------------------- built-in model internals */

/*
 * embed_builtin_lookup -- the vocabulary index of the word's bytes (the
 * rank; 0 = most frequent), or -1 when unknown.  e must be a builtin
 * embedder.  Thread-safe.
 */
int64_t embed_builtin_lookup(const embedder *e, const char *word, size_t len);

/* embed_builtin_n_words -- vocabulary size. */
uint32_t embed_builtin_n_words(const embedder *e);

/*
 * embed_builtin_row -- the dequantized vector of word idx (dim floats into
 * out) and, through *weight (may be NULL), its SIF weight.
 * Requires idx < embed_builtin_n_words(e).
 */
void embed_builtin_row(const embedder *e, uint32_t idx, float *out,
                       float *weight);

/*
 * embed_builtin_common -- the stored common component (borrowed, dim
 * floats, valid until close) or NULL when the file has none.
 */
const float *embed_builtin_common(const embedder *e);

/*
 * embed_builtin_set_common_removal -- switch the subtraction of the
 * common component on or off (the file's flag sets the default).  For the
 * benchmark that measures both; not concurrent with embedder_embed.
 * Returns DM_EINVAL when the file stores no component.
 */
int embed_builtin_set_common_removal(embedder *e, int on);

#endif
