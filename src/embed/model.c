/*
 * model.c -- the built-in embedder: a static word-vector model read from a
 * memory-mapped model file.
 *
 * FORMAT (read here, written by model_build.c; normative text in
 * docs/format.md, section "Embedding model file"; constants and the
 * section layout in model_format.h).  The file is mapped read-only through
 * the VFS and used in place: the int8 rows, scales, SIF weights, the
 * vocabulary strings and the hash table are never copied.
 *
 * OPEN validates everything a lookup or an embedding will rely on, so that
 * no later read can leave the mapping: header and footer magic, the
 * footer's file length, the CRC32C over every byte before the crc field
 * (about 10 ms for the 45 MB GloVe file with SSE4.2), then the version
 * (DM_EVERSION only once the checksum matched, so damage is never taken
 * for a newer format), the header fields, the computed layout against the
 * file size, zero padding, finite scales/weights/component, monotone word
 * offsets, and a hash table whose entries are in range, distinct, and leave
 * at least one empty slot (so every probe sequence ends).
 *
 * SENTENCE EMBEDDING.  The text is tokenized (tokenize.h).  A TOK_COMPOUND
 * found in the vocabulary ("well-known") is used and its TOK_PART pieces
 * skipped; otherwise the pieces are used.  Unknown tokens, clitics such as
 * "'s" and "n't" included, are skipped.  The vector is the SIF-weighted sum
 * of the known words' dequantized rows, sum_w weight(w) * scale(w) * q(w),
 * accumulated straight into the caller's output row; when the model says
 * so its projection on the common component is subtracted; the result is
 * L2-normalized.  Dividing by the sum of weights (a weighted *mean*) would
 * not change the normalized vector, so it is skipped.  No known word (or a
 * vector that vanishes with the component removed) gives the zero vector.
 *
 * LOCKING: none.  The mapping is immutable and each embedder_embed call
 * owns its tokenizer list, so any number of threads may embed at once.
 * embed_builtin_set_common_removal is the one mutator and is documented as
 * not concurrent with embedding.
 */
#include "embed/embed.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/crc.h"
#include "base/err.h"
#include "embed/embed_int.h"
#include "embed/model_format.h"
#include "embed/tokenize.h"
#include "os/vfs.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "model files are used in place: a little-endian host is required"
#endif

typedef struct model_emb {
    embedder base;
    vfs *v;
    vfs_file *f;
    const uint8_t *map;
    uint64_t map_len;
    uint32_t n_words, n_slots, flags;
    const float *scales;
    const float *weights;
    const float *common;     /* NULL when the file has none */
    const int8_t *rows;
    const uint32_t *word_off;
    const char *strings;
    const uint32_t *slots;
    int remove_common;
} model_emb;

static const embedder_ops model_ops;

static int64_t lookup(const model_emb *m, const char *w, size_t len)
{
    if (len == 0 || len > MODEL_MAX_WORD_LEN)
        return -1;
    uint32_t mask = m->n_slots - 1;
    uint32_t s = (uint32_t)model_hash(w, (uint32_t)len) & mask;
    for (;;) {
        uint32_t v = m->slots[s];
        if (v == 0)
            return -1;
        uint32_t i = v - 1;
        uint32_t o = m->word_off[i];
        if (m->word_off[i + 1] - o == len && memcmp(m->strings + o, w, len) == 0)
            return i;
        s = (s + 1) & mask;
    }
}

/* add_word -- out += weight * scale * q for word idx.
 *
 * This loop is most of the cost of an embedding after tokenization.  At
 * -O2 the compiler leaves a plain loop over int8 -> float scalar (the
 * widening conversion is beyond its cheap vectorizer), so blocks of 16
 * components are written with vector types that GCC and clang both lower
 * to SIMD on any target; memcpy does the unaligned loads and stores. */
typedef int8_t v16i8 __attribute__((vector_size(16)));
typedef float v16f __attribute__((vector_size(64)));

static inline void add_word(const model_emb *m, uint32_t idx, float *out)
{
    uint32_t dim = m->base.dim;
    float c = m->weights[idx] * m->scales[idx];
    const int8_t *q = m->rows + (size_t)idx * dim;
    uint32_t j = 0;
    for (; j + 16 <= dim; j += 16) {
        v16i8 qv;
        v16f acc;
        memcpy(&qv, q + j, sizeof qv);
        memcpy(&acc, out + j, sizeof acc);
        acc += c * __builtin_convertvector(qv, v16f);
        memcpy(out + j, &acc, sizeof acc);
    }
    for (; j < dim; j++)
        out[j] += c * (float)q[j];
}

/* embed_tokens -- the sentence vector of the tokens in tl into out (dim
 * floats); returns how many tokens contributed. */
static uint32_t embed_tokens(const model_emb *m, const tok_list *tl, float *out)
{
    uint32_t dim = m->base.dim, known = 0;
    memset(out, 0, (size_t)dim * sizeof *out);
    for (uint32_t i = 0; i < tl->n; i++) {
        const tok_token *t = &tl->toks[i];
        int64_t idx = lookup(m, tok_str(tl, i), t->len);
        if (t->kind == TOK_COMPOUND) {
            if (idx >= 0) {
                add_word(m, (uint32_t)idx, out);
                known++;
                while (i + 1 < tl->n && tl->toks[i + 1].kind == TOK_PART)
                    i++;
            }
            continue;
        }
        if (idx >= 0) {
            add_word(m, (uint32_t)idx, out);
            known++;
        }
    }
    return known;
}

/* finish_vector -- common-component removal and L2 normalization. */
static void finish_vector(const model_emb *m, float *out)
{
    uint32_t dim = m->base.dim;
    double n0 = 0.0;
    for (uint32_t j = 0; j < dim; j++)
        n0 += (double)out[j] * out[j];
    if (!(n0 > 0.0))
        goto zero;
    if (m->remove_common && m->common) {
        double d = 0.0;
        for (uint32_t j = 0; j < dim; j++)
            d += (double)out[j] * m->common[j];
        for (uint32_t j = 0; j < dim; j++)
            out[j] -= (float)(d * m->common[j]);
    }
    double n2 = 0.0;
    for (uint32_t j = 0; j < dim; j++)
        n2 += (double)out[j] * out[j];
    /* A single word lying almost along the component leaves only rounding
     * noise, whose direction means nothing: treat it as no signal. */
    if (!(n2 > 1e-12 * n0) || !isfinite(n2))
        goto zero;
    float inv = (float)(1.0 / sqrt(n2));
    for (uint32_t j = 0; j < dim; j++)
        out[j] *= inv;
    return;
zero:
    memset(out, 0, (size_t)dim * sizeof *out);
}

static int tokenize(const char *text, size_t len, size_t text_index,
                    tok_list *tl)
{
    int rc = tok_text(text, len, tl);
    size_t bad = 0;
    if (rc == DM_EINVAL && !tok_utf8_valid(text, len, &bad))
        return err_set_msg(DM_EINVAL, "text %zu: invalid UTF-8 at byte %zu",
                           text_index, bad);
    return rc;
}

static int model_embed(embedder *e, const char *const *texts,
                       const size_t *lens, size_t n, float *out)
{
    const model_emb *m = (const model_emb *)e;
    uint32_t dim = e->dim;
    tok_list tl;
    tok_list_init(&tl);
    int rc = DM_OK;
    for (size_t i = 0; i < n; i++) {
        float *row = out + i * dim;
        if (lens[i] == 0) {
            memset(row, 0, (size_t)dim * sizeof *row);
            continue;
        }
        if ((rc = tokenize(texts[i], lens[i], i, &tl)) != DM_OK)
            break;
        embed_tokens(m, &tl, row);
        finish_vector(m, row);
    }
    tok_list_fini(&tl);
    return rc;
}

static uint32_t model_known_words(embedder *e, const char *text, size_t len)
{
    const model_emb *m = (const model_emb *)e;
    if (len == 0)
        return 0;
    uint32_t known = 0;
    tok_list tl;
    tok_list_init(&tl);
    float *tmp = dm_malloc((size_t)e->dim * sizeof *tmp);
    if (tmp && tok_text(text, len, &tl) == DM_OK)
        known = embed_tokens(m, &tl, tmp);
    dm_free(tmp);
    tok_list_fini(&tl);
    return known;
}

static void model_close(embedder *e)
{
    model_emb *m = (model_emb *)e;
    if (m->map)
        m->v->munmap(m->v, m->map, m->map_len);
    if (m->f)
        m->v->close(m->v, m->f);
    dm_free(m);
}

static const embedder_ops model_ops = {
    .close = model_close,
    .embed = model_embed,
    .known_words = model_known_words,
};

/* ---------------------------------------------------------- validation */

static int corrupt(const char *path, uint64_t off, const char *what)
{
    return err_set_msg(DM_ECORRUPT, "model file %s: offset %llu: %s", path,
                       (unsigned long long)off, what);
}

static int all_zero(const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static int floats_ok(const float *a, uint64_t n, int nonneg)
{
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(a[i]) || (nonneg && a[i] < 0.0f))
            return 0;
    return 1;
}

/* check_padding -- the zero bytes between sections (after the header,
 * every section ends at `end` and is padded to the next section). */
static int check_padding(const char *path, const uint8_t *map, uint64_t end,
                         uint64_t next)
{
    if (!all_zero(map + end, next - end))
        return corrupt(path, end, "padding bytes not zero");
    return DM_OK;
}

/* validate -- everything after the checksum; fills m's pointers. */
static int validate(model_emb *m, const char *path)
{
    const uint8_t *p = m->map;
    uint64_t size = m->map_len;
    int rc;
    uint32_t version = dec_u32(p + MODEL_HDR_VERSION);
    if (version != MODEL_VERSION)
        return err_set_msg(DM_EVERSION,
                           "model file %s: format version %u (this build "
                           "reads %u): run `make model`",
                           path, version, MODEL_VERSION);
    uint32_t flags = dec_u32(p + MODEL_HDR_FLAGS);
    uint32_t dim = dec_u32(p + MODEL_HDR_DIM);
    uint32_t n_words = dec_u32(p + MODEL_HDR_N_WORDS);
    uint32_t n_slots = dec_u32(p + MODEL_HDR_N_SLOTS);
    uint32_t strings_len = dec_u32(p + MODEL_HDR_STRINGS_LEN);
    if (flags & ~MODEL_FLAGS_KNOWN)
        return corrupt(path, MODEL_HDR_FLAGS, "unknown flags");
    if ((flags & MODEL_FLAG_REMOVE_COMMON) && !(flags & MODEL_FLAG_HAS_COMMON))
        return corrupt(path, MODEL_HDR_FLAGS, "removal flag without component");
    if (dim == 0 || dim > MODEL_MAX_DIM)
        return corrupt(path, MODEL_HDR_DIM, "dimension out of range");
    if (n_words == 0 || n_words > MODEL_MAX_WORDS)
        return corrupt(path, MODEL_HDR_N_WORDS, "word count out of range");
    if (n_slots <= n_words || n_slots > MODEL_MAX_SLOTS ||
        (n_slots & (n_slots - 1)) != 0)
        return corrupt(path, MODEL_HDR_N_SLOTS,
                       "slot count not a power of two above the word count");
    if (strings_len < n_words || strings_len > MODEL_MAX_STRINGS_LEN)
        return corrupt(path, MODEL_HDR_STRINGS_LEN, "strings length out of range");
    const uint8_t *name = p + MODEL_HDR_NAME;
    size_t name_len = strnlen((const char *)name, MODEL_NAME_CAP);
    if (name_len == 0 || name_len == MODEL_NAME_CAP ||
        !all_zero(name + name_len, MODEL_NAME_CAP - name_len))
        return corrupt(path, MODEL_HDR_NAME, "bad model name");
    if (!all_zero(p + MODEL_HDR_RESERVED, MODEL_HDR_LEN - MODEL_HDR_RESERVED))
        return corrupt(path, MODEL_HDR_RESERVED, "reserved bytes not zero");
    int has_common = (flags & MODEL_FLAG_HAS_COMMON) != 0;
    model_layout l = model_layout_of(dim, n_words, n_slots, strings_len,
                                     has_common);
    if (l.file_len != size)
        return corrupt(path, 0, "file length does not match the header's counts");

    m->base.dim = dim;
    m->n_words = n_words;
    m->n_slots = n_slots;
    m->flags = flags;
    m->scales = (const float *)(p + l.scales_off);
    m->weights = (const float *)(p + l.weights_off);
    m->common = has_common ? (const float *)(p + l.common_off) : NULL;
    m->rows = (const int8_t *)(p + l.rows_off);
    m->word_off = (const uint32_t *)(p + l.word_off_off);
    m->strings = (const char *)(p + l.strings_off);
    m->slots = (const uint32_t *)(p + l.slots_off);
    m->remove_common = (flags & MODEL_FLAG_REMOVE_COMMON) != 0;

    /* Padding after each section. */
    uint64_t after_weights = l.weights_off + 4ull * n_words;
    uint64_t next_after_weights = has_common ? l.common_off : l.rows_off;
    if ((rc = check_padding(path, p, l.scales_off + 4ull * n_words,
                            l.weights_off)) != DM_OK ||
        (rc = check_padding(path, p, after_weights, next_after_weights)) != DM_OK ||
        (has_common &&
         (rc = check_padding(path, p, l.common_off + 4ull * dim, l.rows_off)) != DM_OK) ||
        (rc = check_padding(path, p, l.rows_off + (uint64_t)n_words * dim,
                            l.word_off_off)) != DM_OK ||
        (rc = check_padding(path, p, l.word_off_off + 4ull * (n_words + 1ull),
                            l.strings_off)) != DM_OK ||
        (rc = check_padding(path, p, l.strings_off + strings_len,
                            l.slots_off)) != DM_OK ||
        (rc = check_padding(path, p, l.slots_off + 4ull * n_slots,
                            l.footer_off)) != DM_OK)
        return rc;

    if (!floats_ok(m->scales, n_words, 1))
        return corrupt(path, l.scales_off, "row scale negative or not finite");
    if (!floats_ok(m->weights, n_words, 1))
        return corrupt(path, l.weights_off, "word weight negative or not finite");
    if (has_common) {
        double n2 = 0.0;
        if (!floats_ok(m->common, dim, 0))
            return corrupt(path, l.common_off, "common component not finite");
        for (uint32_t j = 0; j < dim; j++)
            n2 += (double)m->common[j] * m->common[j];
        if (fabs(n2 - 1.0) > 1e-3)
            return corrupt(path, l.common_off, "common component not a unit vector");
    }
    if (m->word_off[0] != 0 || m->word_off[n_words] != strings_len)
        return corrupt(path, l.word_off_off, "word offsets do not span the strings");
    for (uint32_t i = 0; i < n_words; i++) {
        uint32_t wl = m->word_off[i + 1] - m->word_off[i];
        if (m->word_off[i + 1] <= m->word_off[i] || wl > MODEL_MAX_WORD_LEN)
            return corrupt(path, l.word_off_off + 4ull * i,
                           "word offsets not increasing or word too long");
    }
    /* Slots: each word index at most once, exactly n_words used. */
    uint8_t *seen = dm_calloc(((size_t)n_words + 7) / 8, 1);
    if (!seen)
        return DM_ENOMEM;
    uint32_t used = 0;
    rc = DM_OK;
    for (uint32_t s = 0; s < n_slots; s++) {
        uint32_t v = m->slots[s];
        if (v == 0)
            continue;
        uint32_t i = v - 1;
        if (v > n_words || (seen[i / 8] & (1u << (i % 8)))) {
            rc = corrupt(path, l.slots_off + 4ull * s,
                         "hash slot out of range or repeated");
            break;
        }
        seen[i / 8] |= (uint8_t)(1u << (i % 8));
        used++;
    }
    dm_free(seen);
    if (rc != DM_OK)
        return rc;
    if (used != n_words)
        return corrupt(path, l.slots_off, "hash table misses words");
    return DM_OK;
}

int embed_builtin_open(const char *path, embedder **out)
{
    vfs *v = vfs_posix();
    model_emb *m = NULL;
    int rc;
    if (out)
        *out = NULL;
    if (!path || !out)
        return err_set_msg(DM_EINVAL, "embed_builtin_open: NULL argument");
    m = dm_calloc(1, sizeof *m);
    if (!m)
        return DM_ENOMEM;
    m->v = v;
    m->base.ops = &model_ops;
    rc = v->open(v, path, VFS_RDONLY, &m->f);
    if (rc == DM_ENOTFOUND) {
        rc = err_set_msg(DM_ENOTFOUND, "model file %s not found: run `make model`",
                         path);
        goto fail;
    }
    if (rc != DM_OK) {
        rc = err_set_msg(rc, "model file %s: %s: %s", path,
                         v->last_op ? v->last_op : "open",
                         strerror(v->last_errno));
        goto fail;
    }
    uint64_t size = 0;
    if ((rc = v->size(v, m->f, &size)) != DM_OK) {
        rc = err_set_msg(rc, "model file %s: size: %s", path,
                         strerror(v->last_errno));
        goto fail;
    }
    if (size < MODEL_HDR_LEN + MODEL_FOOTER_LEN) {
        rc = corrupt(path, 0, "file too short");
        goto fail;
    }
    if (size > SIZE_MAX / 2) {
        rc = corrupt(path, 0, "file too large");
        goto fail;
    }
    const void *map = NULL;
    if ((rc = v->mmap(v, m->f, size, &map)) != DM_OK) {
        rc = err_set_msg(rc, "model file %s: mmap: %s", path,
                         strerror(v->last_errno));
        goto fail;
    }
    m->map = map;
    m->map_len = size;
    const uint8_t *p = m->map;
    const uint8_t *foot = p + size - MODEL_FOOTER_LEN;
    uint64_t foot_off = size - MODEL_FOOTER_LEN;
    if (dec_u64(p + MODEL_HDR_MAGIC) != MODEL_MAGIC) {
        rc = corrupt(path, 0, "bad magic (not a model file)");
        goto fail;
    }
    if (dec_u64(foot + MODEL_FOOTER_MAGIC) != MODEL_MAGIC) {
        rc = corrupt(path, foot_off + MODEL_FOOTER_MAGIC,
                     "bad footer magic (truncated or extended file)");
        goto fail;
    }
    if (dec_u64(foot + MODEL_FOOTER_FILE_LEN) != size) {
        rc = corrupt(path, foot_off + MODEL_FOOTER_FILE_LEN,
                     "footer file length differs from the file size");
        goto fail;
    }
    if (dec_u32(foot + MODEL_FOOTER_RESERVED) != 0) {
        rc = corrupt(path, foot_off + MODEL_FOOTER_RESERVED,
                     "reserved bytes not zero");
        goto fail;
    }
    uint32_t want = crc_unmask(dec_u32(foot + MODEL_FOOTER_CRC));
    uint32_t got = crc32c(p, (size_t)(foot_off + MODEL_FOOTER_CRC));
    if (want != got) {
        rc = corrupt(path, foot_off + MODEL_FOOTER_CRC, "checksum mismatch");
        goto fail;
    }
    if ((rc = validate(m, path)) != DM_OK)
        goto fail;
    snprintf(m->base.name, sizeof m->base.name, "builtin:%s",
             (const char *)(p + MODEL_HDR_NAME));
    *out = &m->base;
    return DM_OK;
fail:
    model_close(&m->base);
    return rc;
}

/* ------------------------------------------------------------ internals */

int64_t embed_builtin_lookup(const embedder *e, const char *word, size_t len)
{
    if (e->ops != &model_ops)
        return -1;
    return lookup((const model_emb *)e, word, len);
}

uint32_t embed_builtin_n_words(const embedder *e)
{
    return e->ops == &model_ops ? ((const model_emb *)e)->n_words : 0;
}

void embed_builtin_row(const embedder *e, uint32_t idx, float *out,
                       float *weight)
{
    const model_emb *m = (const model_emb *)e;
    const int8_t *q = m->rows + (size_t)idx * e->dim;
    for (uint32_t j = 0; j < e->dim; j++)
        out[j] = (float)q[j] * m->scales[idx];
    if (weight)
        *weight = m->weights[idx];
}

const float *embed_builtin_common(const embedder *e)
{
    return e->ops == &model_ops ? ((const model_emb *)e)->common : NULL;
}

int embed_builtin_set_common_removal(embedder *e, int on)
{
    if (e->ops != &model_ops)
        return err_set_msg(DM_EINVAL, "not a builtin embedder");
    model_emb *m = (model_emb *)e;
    if (on && !m->common)
        return err_set_msg(DM_EINVAL, "the model file stores no common component");
    m->remove_common = on != 0;
    return DM_OK;
}
