/*
 * model_build.c -- writes embedding model files: from arrays in memory and
 * by streaming the published JSON word-vector package.
 *
 * FORMAT (owned here and read by model.c; normative text in
 * docs/format.md, section "Embedding model file"; constants and the
 * section layout in model_format.h).
 *
 * DESIGN.  Both entry points fill one in-memory "quantized model": int8
 * rows with one float scale each (scale = max|v| / 127, q = round(v /
 * scale)), the vocabulary as one string pool with offsets, per-word SIF
 * weights, an optional common-component vector, and the open-addressing
 * hash table over the vocabulary.  write_model then appends the sections
 * in layout order through the VFS while extending one running CRC32C, so
 * the file is never assembled twice in memory.
 *
 * The JSON converter maps the package read-only and walks it once with a
 * small hand-written scanner: no DOM (a generic parse of the 307 MB file
 * needs ~2 GB), each vector quantized as soon as its numbers are read, so
 * peak memory is the int8 rows plus the vocabulary (~45 MB for the full
 * package).  Numbers are read with strtof from a short NUL-terminated copy
 * of their characters, so the scanner never reads past the mapping.
 * Strings accept every JSON escape, \uXXXX surrogate pairs included.
 *
 * The common component is fitted on the dequantized rows, i.e. on exactly
 * the vectors the reader will see.
 *
 * Commit: path.tmp is written, fsynced, renamed over path, and the
 * directory fsynced; a failure removes path.tmp and leaves any old path
 * untouched.
 *
 * Host byte order: arrays are written from memory as they are, which is
 * the little-endian file order only on a little-endian host (checked at
 * compile time).
 */
#include "embed/model_build.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/crc.h"
#include "base/err.h"
#include "embed/model_format.h"
#include "os/vfs.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "model files are written from memory: a little-endian host is required"
#endif

/* ------------------------------------------------------------- the model */

typedef struct qmodel {
    uint32_t dim, n_words;
    int8_t *rows;        /* n_words * dim */
    float *scales;       /* n_words */
    float *weights;      /* n_words */
    float *common;       /* dim, or NULL */
    uint32_t common_top; /* words the component was fitted on (0: given) */
    double sif_a;
    int remove_common;
    char name[MODEL_NAME_CAP];
    char *strings;       /* vocabulary bytes, words back to back */
    uint32_t strings_len, strings_cap;
    uint32_t *word_off;  /* n_words + 1 offsets into strings */
    uint32_t n_off_cap;  /* capacity of word_off */
    uint32_t *slots;     /* n_slots: word index + 1, 0 = empty */
    uint32_t n_slots;
    double max_quant_err;
} qmodel;

static void qmodel_fini(qmodel *m)
{
    dm_free(m->rows);
    dm_free(m->scales);
    dm_free(m->weights);
    dm_free(m->common);
    dm_free(m->strings);
    dm_free(m->word_off);
    dm_free(m->slots);
    memset(m, 0, sizeof *m);
}

static int set_name(qmodel *m, const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= MODEL_NAME_CAP)
        return err_set_msg(DM_EINVAL, "model name must have 1..%u bytes",
                           MODEL_NAME_CAP - 1);
    memset(m->name, 0, sizeof m->name);
    memcpy(m->name, name, n);
    return DM_OK;
}

/* add_word -- appends one word to the string pool (no duplicate check:
 * build_slots does that). */
static int add_word(qmodel *m, const char *w, size_t len)
{
    if (len == 0)
        return err_set_msg(DM_EINVAL, "word %u is empty", m->n_words);
    if (len > MODEL_MAX_WORD_LEN)
        return err_set_msg(DM_EINVAL, "word %u is %zu bytes long (max %u)",
                           m->n_words, len, MODEL_MAX_WORD_LEN);
    if (m->n_words >= MODEL_MAX_WORDS)
        return err_set_msg(DM_EINVAL, "more than %u words", MODEL_MAX_WORDS);
    if ((uint64_t)m->strings_len + len > MODEL_MAX_STRINGS_LEN)
        return err_set_msg(DM_EINVAL, "vocabulary text exceeds %u bytes",
                           MODEL_MAX_STRINGS_LEN);
    if (m->strings_len + len > m->strings_cap) {
        uint64_t cap = m->strings_cap ? m->strings_cap : 4096;
        while (cap < m->strings_len + len)
            cap *= 2;
        char *p = dm_realloc(m->strings, (size_t)cap);
        if (!p)
            return DM_ENOMEM;
        m->strings = p;
        m->strings_cap = (uint32_t)(cap > UINT32_MAX ? UINT32_MAX : cap);
    }
    if (m->n_words + 2 > m->n_off_cap) {
        uint32_t cap = m->n_off_cap ? m->n_off_cap * 2 : 1024;
        uint32_t *p = dm_realloc(m->word_off, (size_t)cap * sizeof *p);
        if (!p)
            return DM_ENOMEM;
        m->word_off = p;
        m->n_off_cap = cap;
    }
    if (m->n_words == 0)
        m->word_off[0] = 0;
    memcpy(m->strings + m->strings_len, w, len);
    m->strings_len += (uint32_t)len;
    m->n_words++;
    m->word_off[m->n_words] = m->strings_len;
    return DM_OK;
}

/* quantize_row -- int8 with one scale; returns the largest absolute
 * error through *err.  The caller has checked that v is finite. */
static void quantize_row(const float *v, uint32_t dim, int8_t *q,
                         float *scale, double *err)
{
    float mx = 0.0f;
    for (uint32_t j = 0; j < dim; j++)
        mx = fmaxf(mx, fabsf(v[j]));
    float s = mx / (float)MODEL_INT8_MAX;
    *scale = s;
    double e = 0.0;
    for (uint32_t j = 0; j < dim; j++) {
        long r = s > 0.0f ? lrintf(v[j] / s) : 0;
        if (r > MODEL_INT8_MAX)
            r = MODEL_INT8_MAX;
        if (r < -MODEL_INT8_MAX)
            r = -MODEL_INT8_MAX;
        q[j] = (int8_t)r;
        double d = fabs((double)v[j] - (double)((float)r * s));
        if (d > e)
            e = d;
    }
    if (e > *err)
        *err = e;
}

static int alloc_rows(qmodel *m)
{
    m->rows = dm_malloc((size_t)m->n_words * m->dim);
    m->scales = dm_calloc(m->n_words, sizeof *m->scales);
    m->weights = dm_calloc(m->n_words, sizeof *m->weights);
    if (!m->rows || !m->scales || !m->weights)
        return DM_ENOMEM;
    return DM_OK;
}

/* build_slots -- the open-addressing table: n_slots is the smallest power
 * of two >= 2 * n_words (load factor <= 1/2, about 1.5 probes for a
 * miss), linear probing from model_hash(word) & (n_slots - 1). */
static int build_slots(qmodel *m)
{
    uint32_t n = 16;
    while (n < 2u * m->n_words)
        n *= 2;
    m->n_slots = n;
    m->slots = dm_calloc(n, sizeof *m->slots);
    if (!m->slots)
        return DM_ENOMEM;
    for (uint32_t i = 0; i < m->n_words; i++) {
        const char *w = m->strings + m->word_off[i];
        uint32_t len = m->word_off[i + 1] - m->word_off[i];
        uint32_t s = (uint32_t)model_hash(w, len) & (n - 1);
        while (m->slots[s]) {
            uint32_t o = m->slots[s] - 1;
            uint32_t olen = m->word_off[o + 1] - m->word_off[o];
            if (olen == len && memcmp(m->strings + m->word_off[o], w, len) == 0)
                return err_set_msg(DM_EINVAL,
                                   "duplicate word \"%.*s\" (ranks %u and %u)",
                                   (int)len, w, o, i);
            s = (s + 1) & (n - 1);
        }
        m->slots[s] = i + 1;
    }
    return DM_OK;
}

void model_sif_weights(uint32_t n, double a, float *out)
{
    double h = 0.0;
    /* Summing the smallest terms first keeps the harmonic number exact to
     * the last bits, so the weights do not depend on summation noise. */
    for (uint32_t k = n; k >= 1; k--)
        h += 1.0 / (double)k;
    for (uint32_t i = 0; i < n; i++) {
        double p = 1.0 / ((double)(i + 1) * h);
        out[i] = (float)(a / (a + p));
    }
}

int model_common_component(const float *vecs, uint32_t n, uint32_t dim,
                           uint32_t n_vocab, float *out)
{
    if (n == 0 || dim == 0 || n_vocab < n)
        return err_set_msg(DM_EINVAL, "common component: %u rows, dim %u, "
                           "vocabulary %u", n, dim, n_vocab);
    int rc = DM_OK;
    double *mat = dm_calloc((size_t)dim * dim, sizeof *mat);
    double *mean = dm_calloc(dim, sizeof *mean);
    double *x = dm_calloc(dim, sizeof *x);
    double *y = dm_calloc(dim, sizeof *y);
    if (!mat || !mean || !x || !y) {
        rc = DM_ENOMEM;
        goto fail;
    }
    double h = 0.0;
    for (uint32_t k = n_vocab; k >= 1; k--)
        h += 1.0 / (double)k;
    /* The weighted second-moment matrix, upper triangle first. */
    for (uint32_t i = 0; i < n; i++) {
        const float *v = vecs + (size_t)i * dim;
        double p = 1.0 / ((double)(i + 1) * h);
        for (uint32_t a = 0; a < dim; a++) {
            double pa = p * v[a];
            mean[a] += pa;
            double *row = mat + (size_t)a * dim;
            for (uint32_t b = a; b < dim; b++)
                row[b] += pa * v[b];
        }
    }
    for (uint32_t a = 0; a < dim; a++)
        for (uint32_t b = 0; b < a; b++)
            mat[(size_t)a * dim + b] = mat[(size_t)b * dim + a];
    double tr = 0.0;
    for (uint32_t a = 0; a < dim; a++)
        tr += mat[(size_t)a * dim + a];
    if (!(tr > 0.0)) {
        rc = err_set_msg(DM_EINVAL, "common component: all rows are zero");
        goto fail;
    }
    /* Start from the weighted mean: for word vectors, which share a strong
     * common direction, it is already close to the answer.  A tiny tilt
     * keeps the start off any exact orthogonality in hand-made tests. */
    double nx = 0.0;
    for (uint32_t a = 0; a < dim; a++) {
        x[a] = mean[a] + 1e-3 * sqrt(tr / dim) * (1.0 + 0.01 * a);
        nx += x[a] * x[a];
    }
    nx = sqrt(nx);
    for (uint32_t a = 0; a < dim; a++)
        x[a] /= nx;
    for (int it = 0; it < 20000; it++) {
        double ny = 0.0;
        for (uint32_t a = 0; a < dim; a++) {
            const double *row = mat + (size_t)a * dim;
            double s = 0.0;
            for (uint32_t b = 0; b < dim; b++)
                s += row[b] * x[b];
            y[a] = s;
            ny += s * s;
        }
        ny = sqrt(ny);
        if (!(ny > 0.0)) {
            rc = err_set_msg(DM_EINVAL, "common component: degenerate matrix");
            goto fail;
        }
        double diff = 0.0;
        for (uint32_t a = 0; a < dim; a++) {
            y[a] /= ny;
            diff += (y[a] - x[a]) * (y[a] - x[a]);
            x[a] = y[a];
        }
        if (diff < 1e-24)
            break;
    }
    double dot = 0.0;
    for (uint32_t a = 0; a < dim; a++)
        dot += x[a] * mean[a];
    double sign = dot < 0.0 ? -1.0 : 1.0;
    for (uint32_t a = 0; a < dim; a++)
        out[a] = (float)(sign * x[a]);
fail:
    dm_free(y);
    dm_free(x);
    dm_free(mean);
    dm_free(mat);
    return rc;
}

/* fit_common -- dequantizes the first `top` rows and fits the component. */
static int fit_common(qmodel *m, uint32_t top)
{
    if (top > m->n_words)
        top = m->n_words;
    float *v = dm_malloc((size_t)top * m->dim * sizeof *v);
    m->common = dm_malloc((size_t)m->dim * sizeof *m->common);
    if (!v || !m->common) {
        dm_free(v);
        return DM_ENOMEM;
    }
    for (uint32_t i = 0; i < top; i++)
        for (uint32_t j = 0; j < m->dim; j++)
            v[(size_t)i * m->dim + j] =
                (float)m->rows[(size_t)i * m->dim + j] * m->scales[i];
    int rc = model_common_component(v, top, m->dim, m->n_words, m->common);
    dm_free(v);
    if (rc == DM_OK)
        m->common_top = top;
    return rc;
}

/* ------------------------------------------------------------- writing */

typedef struct fwriter {
    vfs *v;
    vfs_file *f;
    uint32_t crc;
    uint64_t off;
} fwriter;

static int put(fwriter *w, const void *p, size_t n)
{
    if (n == 0)
        return DM_OK;
    int rc = w->v->append(w->v, w->f, p, n);
    if (rc != DM_OK)
        return err_set_msg(rc, "write: %s", strerror(w->v->last_errno));
    w->crc = crc32c_extend(w->crc, p, n);
    w->off += n;
    return DM_OK;
}

/* put_pad -- zero bytes up to the next multiple of MODEL_ALIGN. */
static int put_pad(fwriter *w)
{
    static const uint8_t zeros[MODEL_ALIGN];
    return put(w, zeros, (size_t)(model_align(w->off) - w->off));
}

static int write_sections(fwriter *w, const qmodel *m, const model_layout *l)
{
    int rc;
    uint8_t hdr[MODEL_HDR_LEN];
    memset(hdr, 0, sizeof hdr);
    uint32_t flags = 0;
    if (m->common)
        flags |= MODEL_FLAG_HAS_COMMON;
    if (m->common && m->remove_common)
        flags |= MODEL_FLAG_REMOVE_COMMON;
    float a = (float)m->sif_a;
    uint32_t a_bits;
    memcpy(&a_bits, &a, sizeof a_bits);
    enc_u64(hdr + MODEL_HDR_MAGIC, MODEL_MAGIC);
    enc_u32(hdr + MODEL_HDR_VERSION, MODEL_VERSION);
    enc_u32(hdr + MODEL_HDR_FLAGS, flags);
    enc_u32(hdr + MODEL_HDR_DIM, m->dim);
    enc_u32(hdr + MODEL_HDR_N_WORDS, m->n_words);
    enc_u32(hdr + MODEL_HDR_N_SLOTS, m->n_slots);
    enc_u32(hdr + MODEL_HDR_STRINGS_LEN, m->strings_len);
    enc_u32(hdr + MODEL_HDR_SIF_A, a_bits);
    enc_u32(hdr + MODEL_HDR_COMMON_TOP, m->common ? m->common_top : 0);
    memcpy(hdr + MODEL_HDR_NAME, m->name, MODEL_NAME_CAP);
    if ((rc = put(w, hdr, sizeof hdr)) != DM_OK)
        return rc;
    if ((rc = put(w, m->scales, 4ull * m->n_words)) != DM_OK ||
        (rc = put_pad(w)) != DM_OK)
        return rc;
    if ((rc = put(w, m->weights, 4ull * m->n_words)) != DM_OK ||
        (rc = put_pad(w)) != DM_OK)
        return rc;
    if (m->common) {
        if ((rc = put(w, m->common, 4ull * m->dim)) != DM_OK ||
            (rc = put_pad(w)) != DM_OK)
            return rc;
    }
    if (w->off != l->rows_off)
        return err_set_msg(DM_EINVAL, "layout mismatch at rows");
    if ((rc = put(w, m->rows, (size_t)m->n_words * m->dim)) != DM_OK ||
        (rc = put_pad(w)) != DM_OK)
        return rc;
    if ((rc = put(w, m->word_off, 4ull * (m->n_words + 1))) != DM_OK ||
        (rc = put_pad(w)) != DM_OK)
        return rc;
    if ((rc = put(w, m->strings, m->strings_len)) != DM_OK ||
        (rc = put_pad(w)) != DM_OK)
        return rc;
    if ((rc = put(w, m->slots, 4ull * m->n_slots)) != DM_OK ||
        (rc = put_pad(w)) != DM_OK)
        return rc;
    if (w->off != l->footer_off)
        return err_set_msg(DM_EINVAL, "layout mismatch at footer");
    uint8_t foot[MODEL_FOOTER_LEN];
    memset(foot, 0, sizeof foot);
    enc_u64(foot + MODEL_FOOTER_FILE_LEN, l->file_len);
    enc_u32(foot + MODEL_FOOTER_RESERVED, 0);
    uint32_t crc = crc32c_extend(w->crc, foot, MODEL_FOOTER_CRC);
    enc_u32(foot + MODEL_FOOTER_CRC, crc_mask(crc));
    enc_u64(foot + MODEL_FOOTER_MAGIC, MODEL_MAGIC);
    return put(w, foot, sizeof foot);
}

/* parent_dir -- the directory part of path ("." when none) into dst. */
static void parent_dir(const char *path, char *dst, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dst, cap, ".");
        return;
    }
    size_t n = (size_t)(slash - path);
    if (n == 0)
        n = 1; /* "/name": the root */
    snprintf(dst, cap, "%.*s", (int)n, path);
}

/* write_model -- the atomic commit of m to path. */
static int write_model(qmodel *m, const char *path)
{
    vfs *v = vfs_posix();
    fwriter w = { v, NULL, 0, 0 };
    char *tmp = NULL, *dir = NULL;
    int rc, have_tmp = 0;
    size_t plen = strlen(path);
    tmp = dm_malloc(plen + 5);
    dir = dm_malloc(plen + 2);
    if (!tmp || !dir) {
        rc = DM_ENOMEM;
        goto fail;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    parent_dir(path, dir, plen + 2);
    model_layout l = model_layout_of(m->dim, m->n_words, m->n_slots,
                                     m->strings_len, m->common != NULL);
    rc = v->open(v, tmp, VFS_RDWR | VFS_CREATE | VFS_TRUNC, &w.f);
    if (rc != DM_OK) {
        rc = err_set_msg(rc, "cannot create %s: %s", tmp,
                         strerror(v->last_errno));
        goto fail;
    }
    have_tmp = 1;
    if ((rc = write_sections(&w, m, &l)) != DM_OK)
        goto fail;
    if ((rc = v->sync(v, w.f)) != DM_OK) {
        rc = err_set_msg(rc, "fsync %s: %s", tmp, strerror(v->last_errno));
        goto fail;
    }
    rc = v->close(v, w.f);
    w.f = NULL;
    if (rc != DM_OK) {
        rc = err_set_msg(rc, "close %s: %s", tmp, strerror(v->last_errno));
        goto fail;
    }
    if ((rc = v->rename(v, tmp, path)) != DM_OK) {
        rc = err_set_msg(rc, "rename %s -> %s: %s", tmp, path,
                         strerror(v->last_errno));
        goto fail;
    }
    have_tmp = 0;
    if ((rc = v->sync_dir(v, dir)) != DM_OK) {
        rc = err_set_msg(rc, "fsync directory %s: %s", dir,
                         strerror(v->last_errno));
        goto fail;
    }
    dm_free(dir);
    dm_free(tmp);
    return DM_OK;
fail:
    if (w.f)
        v->close(v, w.f);
    if (have_tmp)
        v->unlink(v, tmp);
    dm_free(dir);
    dm_free(tmp);
    return rc;
}

/* finish -- weights, component, hash table, file. */
static int finish(qmodel *m, const float *weights, const float *common,
                  uint32_t common_top, const char *path)
{
    int rc;
    if (weights) {
        for (uint32_t i = 0; i < m->n_words; i++) {
            if (!isfinite(weights[i]) || weights[i] < 0.0f)
                return err_set_msg(DM_EINVAL, "weight of word %u is %g", i,
                                   (double)weights[i]);
            m->weights[i] = weights[i];
        }
    } else {
        model_sif_weights(m->n_words, m->sif_a, m->weights);
    }
    if (common) {
        double n2 = 0.0;
        for (uint32_t j = 0; j < m->dim; j++) {
            if (!isfinite(common[j]))
                return err_set_msg(DM_EINVAL, "common component is not finite");
            n2 += (double)common[j] * common[j];
        }
        if (!(n2 > 0.0))
            return err_set_msg(DM_EINVAL, "common component is zero");
        m->common = dm_malloc((size_t)m->dim * sizeof *m->common);
        if (!m->common)
            return DM_ENOMEM;
        for (uint32_t j = 0; j < m->dim; j++)
            m->common[j] = (float)(common[j] / sqrt(n2));
        m->common_top = 0;
    } else if (common_top > 0) {
        if ((rc = fit_common(m, common_top)) != DM_OK)
            return rc;
    }
    if ((rc = build_slots(m)) != DM_OK)
        return rc;
    return write_model(m, path);
}

int model_build_write(const model_build_input *in, const char *path)
{
    qmodel m;
    memset(&m, 0, sizeof m);
    int rc;
    if (!in || !path || !in->words || !in->vectors) {
        rc = err_set_msg(DM_EINVAL, "model_build_write: missing input");
        goto fail;
    }
    if (in->dim == 0 || in->dim > MODEL_MAX_DIM) {
        rc = err_set_msg(DM_EINVAL, "dimension %u out of range 1..%u",
                         in->dim, MODEL_MAX_DIM);
        goto fail;
    }
    if (in->n_words == 0 || in->n_words > MODEL_MAX_WORDS) {
        rc = err_set_msg(DM_EINVAL, "word count %u out of range 1..%u",
                         in->n_words, MODEL_MAX_WORDS);
        goto fail;
    }
    if ((rc = set_name(&m, in->name)) != DM_OK)
        goto fail;
    m.dim = in->dim;
    m.sif_a = in->sif_a > 0.0 ? in->sif_a : MODEL_SIF_A;
    m.remove_common = in->remove_common;
    for (uint32_t i = 0; i < in->n_words; i++) {
        const char *w = in->words[i];
        size_t len = in->word_lens ? in->word_lens[i] : (w ? strlen(w) : 0);
        if (!w) {
            rc = err_set_msg(DM_EINVAL, "word %u is NULL", i);
            goto fail;
        }
        if ((rc = add_word(&m, w, len)) != DM_OK)
            goto fail;
    }
    if ((rc = alloc_rows(&m)) != DM_OK)
        goto fail;
    for (uint32_t i = 0; i < m.n_words; i++) {
        const float *v = in->vectors + (size_t)i * m.dim;
        for (uint32_t j = 0; j < m.dim; j++)
            if (!isfinite(v[j])) {
                rc = err_set_msg(DM_EINVAL, "vector of word %u is not finite", i);
                goto fail;
            }
        quantize_row(v, m.dim, m.rows + (size_t)i * m.dim, &m.scales[i],
                     &m.max_quant_err);
    }
    rc = finish(&m, in->weights, in->common, in->common_top, path);
fail:
    qmodel_fini(&m);
    return rc;
}

/* ------------------------------------------------------ streaming JSON */

typedef struct jscan {
    const char *base, *p, *end;
    const char *path;
} jscan;

static int jerr(const jscan *j, const char *what)
{
    return err_set_msg(DM_ECORRUPT, "%s: offset %zu: %s", j->path,
                       (size_t)(j->p - j->base), what);
}

static void jws(jscan *j)
{
    while (j->p < j->end &&
           (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

/* jpeek -- the next non-blank byte, or 0 at the end. */
static char jpeek(jscan *j)
{
    jws(j);
    return j->p < j->end ? *j->p : 0;
}

static int jexpect(jscan *j, char c, const char *what)
{
    if (jpeek(j) != c)
        return jerr(j, what);
    j->p++;
    return DM_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int read_hex4(jscan *j, uint32_t *cp)
{
    if (j->end - j->p < 4)
        return jerr(j, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(j->p[i]);
        if (h < 0)
            return jerr(j, "bad \\u escape");
        v = v * 16 + (uint32_t)h;
    }
    j->p += 4;
    *cp = v;
    return DM_OK;
}

static int put_utf8(buf *b, uint32_t cp)
{
    uint8_t u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (uint8_t)(0xC0 | (cp >> 6));
        u[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (uint8_t)(0xE0 | (cp >> 12));
        u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (uint8_t)(0xF0 | (cp >> 18));
        u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return buf_append(b, u, n);
}

/* jstring -- decodes the JSON string at the cursor into out (cleared). */
static int jstring(jscan *j, buf *out)
{
    int rc;
    buf_clear(out);
    if (jpeek(j) != '"')
        return jerr(j, "expected a string");
    j->p++;
    for (;;) {
        const char *s = j->p;
        while (j->p < j->end && *j->p != '"' && *j->p != '\\' &&
               (unsigned char)*j->p >= 0x20)
            j->p++;
        if ((rc = buf_append(out, s, (size_t)(j->p - s))) != DM_OK)
            return rc;
        if (j->p >= j->end)
            return jerr(j, "unterminated string");
        char c = *j->p;
        if (c == '"') {
            j->p++;
            return DM_OK;
        }
        if (c != '\\')
            return jerr(j, "control character in string");
        j->p++;
        if (j->p >= j->end)
            return jerr(j, "unterminated escape");
        char e = *j->p++;
        char lit;
        switch (e) {
        case '"': lit = '"'; break;
        case '\\': lit = '\\'; break;
        case '/': lit = '/'; break;
        case 'b': lit = '\b'; break;
        case 'f': lit = '\f'; break;
        case 'n': lit = '\n'; break;
        case 'r': lit = '\r'; break;
        case 't': lit = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if ((rc = read_hex4(j, &cp)) != DM_OK)
                return rc;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return jerr(j, "lone low surrogate");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
                    return jerr(j, "lone high surrogate");
                j->p += 2;
                if ((rc = read_hex4(j, &lo)) != DM_OK)
                    return rc;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return jerr(j, "bad surrogate pair");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if ((rc = put_utf8(out, cp)) != DM_OK)
                return rc;
            continue;
        }
        default:
            j->p--;
            return jerr(j, "unknown escape");
        }
        if ((rc = buf_append(out, &lit, 1)) != DM_OK)
            return rc;
    }
}

/* jnumber -- one JSON number as a float.  Its characters are copied into
 * a short NUL-terminated buffer so that strtof cannot run past the
 * mapping; strtof must consume them all. */
static int jnumber(jscan *j, float *out)
{
    jws(j);
    char tmp[64];
    size_t n = 0;
    while (j->p + n < j->end && n < sizeof tmp - 1) {
        char c = j->p[n];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' ||
            c == 'e' || c == 'E')
            n++;
        else
            break;
    }
    if (n == 0)
        return jerr(j, "expected a number");
    if (n == sizeof tmp - 1)
        return jerr(j, "number too long");
    memcpy(tmp, j->p, n);
    tmp[n] = '\0';
    char *endp;
    errno = 0;
    float v = strtof(tmp, &endp);
    if ((size_t)(endp - tmp) != n)
        return jerr(j, "malformed number");
    if (!isfinite(v))
        return jerr(j, "number out of range");
    j->p += n;
    *out = v;
    return DM_OK;
}

/* jcount -- a non-negative integer number (metadata fields). */
static int jcount(jscan *j, uint32_t *out)
{
    float v;
    int rc = jnumber(j, &v);
    if (rc != DM_OK)
        return rc;
    if (v < 0.0f || v != floorf(v) || v >= 4294967296.0f)
        return jerr(j, "expected a non-negative integer");
    *out = (uint32_t)v;
    return DM_OK;
}

static int jskip_string(jscan *j)
{
    j->p++; /* the opening quote */
    while (j->p < j->end) {
        char c = *j->p++;
        if (c == '"')
            return DM_OK;
        if (c == '\\') {
            if (j->p >= j->end)
                break;
            j->p++;
        }
    }
    return jerr(j, "unterminated string");
}

/* jskip -- passes over one value of any kind (fields the converter does
 * not use, such as "unkVector").  Depth is bounded so that a hostile file
 * cannot exhaust the stack. */
static int jskip(jscan *j, int depth)
{
    int rc;
    if (depth > 64)
        return jerr(j, "nesting too deep");
    char c = jpeek(j);
    if (c == '"')
        return jskip_string(j);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        if (jpeek(j) == close) {
            j->p++;
            return DM_OK;
        }
        for (;;) {
            if (c == '{') {
                if (jpeek(j) != '"')
                    return jerr(j, "expected a key");
                if ((rc = jskip_string(j)) != DM_OK ||
                    (rc = jexpect(j, ':', "expected ':'")) != DM_OK)
                    return rc;
            }
            if ((rc = jskip(j, depth + 1)) != DM_OK)
                return rc;
            char d = jpeek(j);
            j->p++;
            if (d == close)
                return DM_OK;
            if (d != ',') {
                j->p--;
                return jerr(j, "expected ',' or a closing bracket");
            }
        }
    }
    if (c == 't' || c == 'f' || c == 'n') {
        const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
        size_t n = strlen(lit);
        if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
            return jerr(j, "bad literal");
        j->p += n;
        return DM_OK;
    }
    float v;
    return jnumber(j, &v);
}

/* The package's metadata, read before "vectors". */
typedef struct pkg_meta {
    uint32_t dim, size, l2_index, word_index;
    int has_dim, has_size, has_l2, has_wi, has_words;
} pkg_meta;

static int parse_words(jscan *j, qmodel *m, buf *tmp)
{
    int rc;
    if ((rc = jexpect(j, '[', "\"words\" must be an array")) != DM_OK)
        return rc;
    if (jpeek(j) == ']') {
        j->p++;
        return DM_OK;
    }
    for (;;) {
        const char *at = j->p;
        if ((rc = jstring(j, tmp)) != DM_OK)
            return rc;
        rc = add_word(m, (const char *)tmp->ptr, tmp->len);
        if (rc == DM_EINVAL) {
            char why[128];
            snprintf(why, sizeof why, "%s", err_last_msg());
            j->p = at;
            return jerr(j, why);
        }
        if (rc != DM_OK)
            return rc;
        char d = jpeek(j);
        if (d == ']') {
            j->p++;
            return DM_OK;
        }
        if ((rc = jexpect(j, ',', "expected ',' or ']' in \"words\"")) != DM_OK)
            return rc;
    }
}

static int parse_vectors(jscan *j, qmodel *m, const pkg_meta *meta,
                         uint8_t *seen, buf *key)
{
    int rc;
    uint32_t n_vals = meta->dim;
    if (meta->l2_index + 1 > n_vals)
        n_vals = meta->l2_index + 1;
    if (meta->word_index + 1 > n_vals)
        n_vals = meta->word_index + 1;
    float *vals = dm_malloc((size_t)n_vals * sizeof *vals);
    if (!vals)
        return DM_ENOMEM;
    if ((rc = jexpect(j, '{', "\"vectors\" must be an object")) != DM_OK)
        goto out;
    if (jpeek(j) == '}') {
        j->p++;
        goto out;
    }
    for (;;) {
        const char *at = j->p;
        if ((rc = jstring(j, key)) != DM_OK ||
            (rc = jexpect(j, ':', "expected ':'")) != DM_OK ||
            (rc = jexpect(j, '[', "a vector must be an array")) != DM_OK)
            goto out;
        uint32_t k = 0;
        for (;;) {
            if (k == n_vals) {
                rc = jerr(j, "vector has too many numbers");
                goto out;
            }
            if ((rc = jnumber(j, &vals[k++])) != DM_OK)
                goto out;
            char d = jpeek(j);
            j->p++;
            if (d == ']')
                break;
            if (d != ',') {
                j->p--;
                rc = jerr(j, "expected ',' or ']' in a vector");
                goto out;
            }
        }
        if (k != n_vals) {
            rc = jerr(j, "vector has too few numbers");
            goto out;
        }
        float fi = vals[meta->word_index];
        if (fi < 0.0f || fi != floorf(fi) || fi >= (float)m->n_words) {
            j->p = at;
            rc = jerr(j, "vector's word index out of range");
            goto out;
        }
        uint32_t idx = (uint32_t)fi;
        uint32_t wlen = m->word_off[idx + 1] - m->word_off[idx];
        if (wlen != key->len ||
            memcmp(m->strings + m->word_off[idx], key->ptr, wlen) != 0) {
            j->p = at;
            rc = jerr(j, "vector's word index names another word");
            goto out;
        }
        if (seen[idx]) {
            j->p = at;
            rc = jerr(j, "second vector for the same word");
            goto out;
        }
        seen[idx] = 1;
        quantize_row(vals, m->dim, m->rows + (size_t)idx * m->dim,
                     &m->scales[idx], &m->max_quant_err);
        char d = jpeek(j);
        j->p++;
        if (d == '}')
            break;
        if (d != ',') {
            j->p--;
            rc = jerr(j, "expected ',' or '}' in \"vectors\"");
            goto out;
        }
    }
out:
    dm_free(vals);
    return rc;
}

static int parse_package(jscan *j, qmodel *m, uint8_t **seen_out)
{
    int rc;
    pkg_meta meta;
    memset(&meta, 0, sizeof meta);
    int has_vectors = 0;
    size_t vectors_off = 0;
    uint8_t *seen = NULL;
    buf key;
    buf_init(&key);
    if ((rc = jexpect(j, '{', "expected '{' at the start")) != DM_OK)
        goto out;
    if (jpeek(j) == '}') {
        j->p++;
    } else {
        for (;;) {
            if ((rc = jstring(j, &key)) != DM_OK ||
                (rc = jexpect(j, ':', "expected ':'")) != DM_OK)
                goto out;
            const char *k = (const char *)key.ptr;
            size_t kl = key.len;
#define KEY_IS(s) (kl == sizeof(s) - 1 && memcmp(k, s, kl) == 0)
            if (KEY_IS("dimensions")) {
                rc = jcount(j, &meta.dim);
                meta.has_dim = 1;
            } else if (KEY_IS("size")) {
                rc = jcount(j, &meta.size);
                meta.has_size = 1;
            } else if (KEY_IS("l2NormIndex")) {
                rc = jcount(j, &meta.l2_index);
                meta.has_l2 = 1;
            } else if (KEY_IS("wordIndex")) {
                rc = jcount(j, &meta.word_index);
                meta.has_wi = 1;
            } else if (KEY_IS("words")) {
                if (meta.has_words) {
                    rc = jerr(j, "second \"words\"");
                    goto out;
                }
                rc = parse_words(j, m, &key);
                meta.has_words = 1;
            } else if (KEY_IS("vectors")) {
                if (!meta.has_dim || !meta.has_size || !meta.has_wi ||
                    !meta.has_l2 || !meta.has_words) {
                    rc = jerr(j, "\"vectors\" before \"dimensions\", \"size\", "
                                 "\"l2NormIndex\", \"wordIndex\" and \"words\"");
                    goto out;
                }
                if (has_vectors) {
                    rc = jerr(j, "second \"vectors\"");
                    goto out;
                }
                if (meta.dim == 0 || meta.dim > MODEL_MAX_DIM) {
                    rc = jerr(j, "\"dimensions\" out of range");
                    goto out;
                }
                if (meta.size != m->n_words || m->n_words == 0) {
                    rc = jerr(j, "\"size\" differs from the number of words");
                    goto out;
                }
                if (meta.word_index < meta.dim || meta.l2_index < meta.dim ||
                    meta.word_index > meta.dim + 8 ||
                    meta.l2_index > meta.dim + 8) {
                    rc = jerr(j, "\"wordIndex\"/\"l2NormIndex\" inside the "
                                 "components or far after them");
                    goto out;
                }
                m->dim = meta.dim;
                if ((rc = alloc_rows(m)) != DM_OK)
                    goto out;
                vectors_off = (size_t)(j->p - j->base);
                seen = dm_calloc(m->n_words, 1);
                if (!seen) {
                    rc = DM_ENOMEM;
                    goto out;
                }
                rc = parse_vectors(j, m, &meta, seen, &key);
                has_vectors = 1;
            } else {
                rc = jskip(j, 0);
            }
#undef KEY_IS
            if (rc != DM_OK)
                goto out;
            char d = jpeek(j);
            j->p++;
            if (d == '}')
                break;
            if (d != ',') {
                j->p--;
                rc = jerr(j, "expected ',' or '}' at the top level");
                goto out;
            }
        }
    }
    if (jpeek(j) != 0) {
        rc = jerr(j, "data after the top-level object");
        goto out;
    }
    if (!has_vectors) {
        rc = jerr(j, "no \"vectors\" object");
        goto out;
    }
    for (uint32_t i = 0; i < m->n_words; i++)
        if (!seen[i]) {
            rc = err_set_msg(DM_ECORRUPT, "%s: offset %zu: word %u (\"%.*s\") "
                             "has no vector in \"vectors\"", j->path,
                             vectors_off, i,
                             (int)(m->word_off[i + 1] - m->word_off[i]),
                             m->strings + m->word_off[i]);
            goto out;
        }
out:
    buf_fini(&key);
    *seen_out = seen;
    return rc;
}

int model_build_from_json(const char *json_path, const char *out_path,
                          const model_json_options *opt,
                          model_json_stats *stats)
{
    vfs *v = vfs_posix();
    vfs_file *f = NULL;
    const void *map = NULL;
    uint64_t size = 0;
    uint8_t *seen = NULL;
    qmodel m;
    memset(&m, 0, sizeof m);
    int rc;
    if (stats)
        memset(stats, 0, sizeof *stats);
    if ((rc = set_name(&m, opt && opt->name ? opt->name : MODEL_DEFAULT_NAME)) != DM_OK)
        goto fail;
    m.sif_a = MODEL_SIF_A;
    m.remove_common = opt ? opt->remove_common : 0;
    rc = v->open(v, json_path, VFS_RDONLY, &f);
    if (rc == DM_ENOTFOUND) {
        rc = err_set_msg(rc, "package file %s not found", json_path);
        goto fail;
    }
    if (rc != DM_OK) {
        rc = err_set_msg(rc, "cannot open %s: %s", json_path,
                         strerror(v->last_errno));
        goto fail;
    }
    if ((rc = v->size(v, f, &size)) != DM_OK)
        goto fail;
    if (size == 0) {
        rc = err_set_msg(DM_ECORRUPT, "%s: empty file", json_path);
        goto fail;
    }
    if ((rc = v->mmap(v, f, size, &map)) != DM_OK) {
        rc = err_set_msg(rc, "cannot map %s: %s", json_path,
                         strerror(v->last_errno));
        map = NULL;
        goto fail;
    }
    jscan j = { map, map, (const char *)map + size, json_path };
    if ((rc = parse_package(&j, &m, &seen)) != DM_OK)
        goto fail;
    uint32_t top = 0;
    if (!opt || !opt->no_common)
        top = opt && opt->common_top ? opt->common_top : MODEL_COMMON_TOP_DEFAULT;
    if ((rc = finish(&m, NULL, NULL, top, out_path)) != DM_OK)
        goto fail;
    if (stats) {
        stats->dim = m.dim;
        stats->n_words = m.n_words;
        stats->file_len = model_layout_of(m.dim, m.n_words, m.n_slots,
                                          m.strings_len, m.common != NULL)
                              .file_len;
        stats->max_quant_err = m.max_quant_err;
    }
fail:
    dm_free(seen);
    qmodel_fini(&m);
    if (map)
        v->munmap(v, map, size);
    if (f)
        v->close(v, f);
    return rc;
}
