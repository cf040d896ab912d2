/*
 * test_model.c -- the built-in embedder and its model file: a tiny model
 * (a few dozen words, dim 8) is generated with model_build_write, opened
 * and checked: lookups, the sentence-embedding arithmetic against values
 * computed by hand, the compound/parts and clitic rules, the zero vector,
 * common-component removal, corrupt and missing files, allocation
 * failures, concurrent use, and the streaming JSON converter on a small
 * file in the package's exact layout.
 */
// ctest-labels: concurrency
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/crc.h"
#include "base/err.h"
#include "embed/embed.h"
#include "embed/embed_int.h"
#include "embed/model_build.h"
#include "embed/model_format.h"

#define DIM 8

/* The vocabulary, most frequent first.  "well-known" is a compound in the
 * vocabulary; "ice-cream" is not, but its parts are. */
static const char *const vocab[] = {
    "the", "a", "of", "and", "to", "in", "is", "my", "she", "he",
    "cat", "dog", "sat", "on", "mat", "well-known", "well", "known", "ice",
    "cream", "loves", "hiking", "mountains", "wife", "birthday", "python",
    "docker", "sqlite", "3.5", "café", "n't", "do", "market", "stock",
    "fell", "today",
};
#define N_WORDS (sizeof vocab / sizeof vocab[0])

static float vecs[N_WORDS * DIM];
static float weights[N_WORDS];

/* Integer components with a largest magnitude of exactly 127: the int8
 * quantization (scale = max/127) then reproduces every row exactly, so
 * expected values can be computed from these floats by hand. */
static void make_vectors(void)
{
    tu_rng r;
    tu_rng_seed(&r, 42);
    for (size_t i = 0; i < N_WORDS; i++) {
        float *v = vecs + i * DIM;
        for (int j = 0; j < DIM; j++)
            v[j] = (float)((int)tu_randn(&r, 201) - 100);
        v[tu_randn(&r, DIM)] = (i % 2) ? 127.0f : -127.0f;
        weights[i] = 0.25f + 0.05f * (float)i;
    }
}

static char model_path[512];

static int write_tiny(const char *path, const float *common, int remove)
{
    model_build_input in;
    memset(&in, 0, sizeof in);
    in.name = "tiny-test";
    in.dim = DIM;
    in.n_words = N_WORDS;
    in.words = vocab;
    in.vectors = vecs;
    in.weights = weights;
    in.common = common;
    in.remove_common = remove;
    return model_build_write(&in, path);
}

static int setup(void **state)
{
    make_vectors();
    const char *dir = tu_tmpdir("embed_model");
    snprintf(model_path, sizeof model_path, "%s/tiny.dmm", dir);
    return write_tiny(model_path, NULL, 0) == DM_OK ? 0 : -1;
}

static int idx_of(const char *w)
{
    for (size_t i = 0; i < N_WORDS; i++)
        if (strcmp(vocab[i], w) == 0)
            return (int)i;
    fail_msg("word %s not in the test vocabulary", w);
    return -1;
}

/* expected -- normalize(sum_i weight(w_i) * vec(w_i)) for the listed
 * vocabulary words, optionally minus the projection on u. */
static void expected(const char *const *words, size_t n, const float *u,
                     float *out)
{
    double acc[DIM] = { 0 };
    for (size_t k = 0; k < n; k++) {
        int i = idx_of(words[k]);
        for (int j = 0; j < DIM; j++)
            acc[j] += (double)weights[i] * vecs[i * DIM + j];
    }
    if (u) {
        double d = 0;
        for (int j = 0; j < DIM; j++)
            d += acc[j] * u[j];
        for (int j = 0; j < DIM; j++)
            acc[j] -= d * u[j];
    }
    double n2 = 0;
    for (int j = 0; j < DIM; j++)
        n2 += acc[j] * acc[j];
    for (int j = 0; j < DIM; j++)
        out[j] = n2 > 0 ? (float)(acc[j] / sqrt(n2)) : 0.0f;
}

static void assert_vec_near(const float *a, const float *b, double tol)
{
    for (int j = 0; j < DIM; j++)
        if (fabs((double)a[j] - b[j]) > tol)
            fail_msg("component %d: %g vs %g", j, (double)a[j], (double)b[j]);
}

static void embed1(embedder *e, const char *text, float *out)
{
    size_t len = strlen(text);
    assert_int_equal(embedder_embed(e, &text, &len, 1, out), DM_OK);
}

/* --------------------------------------------------------------- tests */

static void test_open_and_lookup(void **state)
{
    embedder *e = NULL;
    assert_int_equal(embed_builtin_open(model_path, &e), DM_OK);
    assert_string_equal(embedder_name(e), "builtin:tiny-test");
    assert_int_equal(embedder_dim(e), DIM);
    assert_int_equal(embed_builtin_n_words(e), N_WORDS);
    for (size_t i = 0; i < N_WORDS; i++) {
        assert_int_equal(embed_builtin_lookup(e, vocab[i], strlen(vocab[i])),
                         (int64_t)i);
        float row[DIM], w;
        embed_builtin_row(e, (uint32_t)i, row, &w);
        assert_vec_near(row, vecs + i * DIM, 1e-4);
        assert_true(w == weights[i]);
    }
    assert_int_equal(embed_builtin_lookup(e, "zebra", 5), -1);
    assert_int_equal(embed_builtin_lookup(e, "", 0), -1);
    assert_int_equal(embed_builtin_lookup(e, "the ", 4), -1);
    assert_int_equal(embed_builtin_lookup(e, "th", 2), -1);
    assert_null(embed_builtin_common(e));
    embedder_close(e);
}

static void test_weighted_mean(void **state)
{
    embedder *e = NULL;
    assert_int_equal(embed_builtin_open(model_path, &e), DM_OK);
    float got[DIM], want[DIM];

    /* Hand check for two words, written out: 0.25 + 0.05 * rank. */
    embed1(e, "cat dog", got);
    {
        double acc[DIM], n2 = 0;
        for (int j = 0; j < DIM; j++) {
            acc[j] = 0.75 * vecs[10 * DIM + j] + 0.80 * vecs[11 * DIM + j];
            n2 += acc[j] * acc[j];
        }
        for (int j = 0; j < DIM; j++)
            want[j] = (float)(acc[j] / sqrt(n2));
    }
    assert_vec_near(got, want, 1e-5);

    /* Case folding, punctuation, unknown words and repeats. */
    const char *w1[] = { "my", "wife", "loves", "hiking", "in", "the",
                         "mountains" };
    expected(w1, 7, NULL, want);
    embed1(e, "My WIFE loves hiking in the Mountains!!", got);
    assert_vec_near(got, want, 1e-5);
    embed1(e, "my wife loves hiking (zorblax) in the mountains", got);
    assert_vec_near(got, want, 1e-5);
    const char *w2[] = { "cat", "cat", "sat" };
    expected(w2, 3, NULL, want);
    embed1(e, "cat, cat sat", got);
    assert_vec_near(got, want, 1e-5);
    /* Non-ASCII and number tokens. */
    const char *w3[] = { "café", "3.5" };
    expected(w3, 2, NULL, want);
    embed1(e, "Café 3.5", got);
    assert_vec_near(got, want, 1e-5);

    /* Several texts in one call give the same rows as one by one. */
    const char *texts[] = { "the cat sat on the mat", "stock market fell today",
                            "" };
    size_t lens[] = { strlen(texts[0]), strlen(texts[1]), 0 };
    float rows[3 * DIM];
    assert_int_equal(embedder_embed(e, texts, lens, 3, rows), DM_OK);
    embed1(e, texts[0], got);
    assert_vec_near(rows, got, 0);
    embed1(e, texts[1], got);
    assert_vec_near(rows + DIM, got, 0);
    for (int j = 0; j < DIM; j++)
        assert_true(rows[2 * DIM + j] == 0.0f);
    assert_int_equal(embedder_known_words(e, texts[0], lens[0]), 6);
    embedder_close(e);
}

static void test_zero_vector(void **state)
{
    embedder *e = NULL;
    assert_int_equal(embed_builtin_open(model_path, &e), DM_OK);
    float got[DIM];
    const char *texts[] = { "zorblax quuxify", "", "!!! ... ???", "'s" };
    for (size_t k = 0; k < 4; k++) {
        memset(got, 0x55, sizeof got);
        size_t len = strlen(texts[k]);
        assert_int_equal(embedder_embed(e, &texts[k], &len, 1, got), DM_OK);
        for (int j = 0; j < DIM; j++)
            assert_true(got[j] == 0.0f);
        assert_int_equal(embedder_known_words(e, texts[k], len), 0);
    }
    embedder_close(e);
}

static void test_compounds_and_clitics(void **state)
{
    embedder *e = NULL;
    assert_int_equal(embed_builtin_open(model_path, &e), DM_OK);
    float got[DIM], want[DIM];

    /* A compound in the vocabulary is used and its parts skipped. */
    const char *w1[] = { "well-known" };
    expected(w1, 1, NULL, want);
    embed1(e, "well-known", got);
    assert_vec_near(got, want, 1e-5);
    assert_int_equal(embedder_known_words(e, "well-known", 10), 1);
    const char *w1b[] = { "well-known", "python" };
    expected(w1b, 2, NULL, want);
    embed1(e, "Well-Known python", got);
    assert_vec_near(got, want, 1e-5);

    /* A compound not in the vocabulary falls back to its parts. */
    const char *w2[] = { "ice", "cream" };
    expected(w2, 2, NULL, want);
    embed1(e, "ice-cream", got);
    assert_vec_near(got, want, 1e-5);
    assert_int_equal(embedder_known_words(e, "ice-cream", 9), 2);
    /* ... and a part that is unknown is simply skipped. */
    const char *w3[] = { "ice" };
    expected(w3, 1, NULL, want);
    embed1(e, "ice-zorblax", got);
    assert_vec_near(got, want, 1e-5);

    /* A clitic missing from the vocabulary is skipped ("'s"); one that is
     * present is used ("n't"). */
    const char *w4[] = { "cat" };
    expected(w4, 1, NULL, want);
    embed1(e, "cat's", got);
    assert_vec_near(got, want, 1e-5);
    const char *w5[] = { "do", "n't" };
    expected(w5, 2, NULL, want);
    embed1(e, "don't", got);
    assert_vec_near(got, want, 1e-5);
    assert_int_equal(embedder_known_words(e, "don't", 5), 2);
    embedder_close(e);
}

static void test_sif_weights_and_component(void **state)
{
    /* SIF by hand for n = 4: H_4 = 25/12, p_1 = 12/25, p_4 = 3/25. */
    float w[4];
    model_sif_weights(4, 1e-3, w);
    assert_true(fabs(w[0] - 1e-3 / (1e-3 + 0.48)) < 1e-7);
    assert_true(fabs(w[3] - 1e-3 / (1e-3 + 0.12)) < 1e-7);
    assert_true(w[0] < w[1] && w[1] < w[2] && w[2] < w[3]);

    /* Rows spread around +e0 with a smaller spread along e1: the first
     * principal direction is e0, and its sign follows the mean. */
    float v[6 * 3] = {
        5, 1, 0,   4, -1, 0.5f,   6, 0.5f, -0.5f,
        5, -0.5f, 0,   4.5f, 1, 0,   5.5f, 0, 0.2f,
    };
    float u[3];
    assert_int_equal(model_common_component(v, 6, 3, 6, u), DM_OK);
    assert_true(u[0] > 0.99f);
    for (int k = 0; k < 18; k++)
        v[k] = -v[k];
    assert_int_equal(model_common_component(v, 6, 3, 6, u), DM_OK);
    assert_true(u[0] < -0.99f);
    float z[3] = { 0, 0, 0 };
    assert_int_equal(model_common_component(z, 1, 3, 1, u), DM_EINVAL);
}

static void test_common_removal(void **state)
{
    char path[600];
    snprintf(path, sizeof path, "%s.common", model_path);
    /* A component that is not yet unit length: the writer normalizes. */
    float c[DIM] = { 2, 1, 0, 0, -1, 0, 0, 1 };
    float u[DIM];
    double n2 = 0;
    for (int j = 0; j < DIM; j++)
        n2 += c[j] * c[j];
    for (int j = 0; j < DIM; j++)
        u[j] = (float)(c[j] / sqrt(n2));
    assert_int_equal(write_tiny(path, c, 1), DM_OK);
    embedder *e = NULL;
    assert_int_equal(embed_builtin_open(path, &e), DM_OK);
    assert_non_null(embed_builtin_common(e));
    assert_vec_near(embed_builtin_common(e), u, 1e-6);

    float got[DIM], want[DIM];
    const char *w1[] = { "stock", "market", "fell", "today" };
    expected(w1, 4, u, want);
    embed1(e, "stock market fell today", got);
    assert_vec_near(got, want, 1e-5);
    double d = 0;
    for (int j = 0; j < DIM; j++)
        d += (double)got[j] * u[j];
    assert_true(fabs(d) < 1e-5);

    /* Switched off, the plain weighted mean comes back. */
    assert_int_equal(embed_builtin_set_common_removal(e, 0), DM_OK);
    expected(w1, 4, NULL, want);
    embed1(e, "stock market fell today", got);
    assert_vec_near(got, want, 1e-5);
    embedder_close(e);

    /* Stored but not removed by default. */
    assert_int_equal(write_tiny(path, c, 0), DM_OK);
    assert_int_equal(embed_builtin_open(path, &e), DM_OK);
    embed1(e, "stock market fell today", got);
    assert_vec_near(got, want, 1e-5);
    embedder_close(e);

    /* A model without a component refuses to switch removal on. */
    assert_int_equal(embed_builtin_open(model_path, &e), DM_OK);
    assert_int_equal(embed_builtin_set_common_removal(e, 1), DM_EINVAL);
    embedder_close(e);
    unlink(path);
}

/* ------------------------------------------------------- damaged files */

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(*len);
    assert_int_equal(fread(p, 1, *len, f), *len);
    fclose(f);
    return p;
}

static void write_file(const char *path, const uint8_t *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    fclose(f);
}

/* reseal -- recompute the footer checksum after an edit, so that the
 * structural checks behind the CRC are reached. */
static void reseal(uint8_t *p, size_t len)
{
    uint32_t crc = crc32c(p, len - MODEL_FOOTER_LEN + MODEL_FOOTER_CRC);
    uint32_t m = crc_mask(crc);
    memcpy(p + len - MODEL_FOOTER_LEN + MODEL_FOOTER_CRC, &m, 4);
}

static void expect_open_fails(const char *path, int code)
{
    embedder *e = (embedder *)1;
    int rc = embed_builtin_open(path, &e);
    if (rc != code)
        fail_msg("expected %s, got %s (%s)", dm_errname(code), dm_errname(rc),
                 err_last_msg());
    assert_null(e);
    assert_non_null(strstr(err_last_msg(), path));
}

static void test_corrupt_files(void **state)
{
    size_t len;
    uint8_t *orig = read_file(model_path, &len);
    uint8_t *p = malloc(len);
    char path[600];
    snprintf(path, sizeof path, "%s.bad", model_path);

    /* Truncations, from one byte short to empty. */
    size_t cuts[] = { len - 1, len - 12, len - 24, len / 2, 200, 100, 1, 0 };
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        write_file(path, orig, cuts[k]);
        expect_open_fails(path, DM_ECORRUPT);
    }
    /* An extended file. */
    memcpy(p, orig, len);
    FILE *f = fopen(path, "wb");
    fwrite(orig, 1, len, f);
    fputc(0, f);
    fclose(f);
    expect_open_fails(path, DM_ECORRUPT);

    /* Single bit flips everywhere (every 7th byte, all caught by the CRC
     * or the magic checks). */
    for (size_t off = 0; off < len; off += 7) {
        memcpy(p, orig, len);
        p[off] ^= (uint8_t)(1u << (off % 8));
        write_file(path, p, len);
        expect_open_fails(path, DM_ECORRUPT);
    }
    /* Bad magic with a matching checksum. */
    memcpy(p, orig, len);
    p[0] = 'X';
    reseal(p, len);
    write_file(path, p, len);
    expect_open_fails(path, DM_ECORRUPT);
    assert_non_null(strstr(err_last_msg(), "magic"));

    /* A newer version with a matching checksum: DM_EVERSION. */
    memcpy(p, orig, len);
    p[MODEL_HDR_VERSION] = 2;
    reseal(p, len);
    write_file(path, p, len);
    expect_open_fails(path, DM_EVERSION);

    /* Structural damage behind a valid checksum. */
    uint32_t n_slots;
    memcpy(&n_slots, orig + MODEL_HDR_N_SLOTS, 4);
    uint32_t strings_len;
    memcpy(&strings_len, orig + MODEL_HDR_STRINGS_LEN, 4);
    model_layout ly = model_layout_of(DIM, N_WORDS, n_slots, strings_len, 0);
    struct {
        uint64_t off;
        uint32_t val;
        const char *needle;
    } edits[] = {
        { MODEL_HDR_DIM, 0, "dimension" },
        { MODEL_HDR_N_SLOTS, 100, "slot" },
        { MODEL_HDR_FLAGS, 2, "removal flag" },
        { MODEL_HDR_FLAGS, 8, "flags" },
        { ly.word_off_off + 4, 0, "offsets" },
        { ly.scales_off, 0xffc00000u /* NaN */, "scale" },
        { ly.weights_off + 4, 0xbf800000u /* -1.0f */, "weight" },
    };
    for (size_t k = 0; k < sizeof edits / sizeof edits[0]; k++) {
        memcpy(p, orig, len);
        memcpy(p + edits[k].off, &edits[k].val, 4);
        reseal(p, len);
        write_file(path, p, len);
        expect_open_fails(path, DM_ECORRUPT);
        if (!strstr(err_last_msg(), edits[k].needle))
            fail_msg("edit %zu: \"%s\" lacks \"%s\"", k, err_last_msg(),
                     edits[k].needle);
    }
    /* A slot naming a word that does not exist, and a repeated slot. */
    const uint32_t *slots = (const uint32_t *)(orig + ly.slots_off);
    uint32_t used = 0;
    while (slots[used] == 0)
        used++;
    memcpy(p, orig, len);
    uint32_t big = N_WORDS + 5;
    memcpy(p + ly.slots_off + 4ull * used, &big, 4);
    reseal(p, len);
    write_file(path, p, len);
    expect_open_fails(path, DM_ECORRUPT);
    uint32_t empty = 0;
    while (slots[empty] != 0)
        empty++;
    memcpy(p, orig, len);
    memcpy(p + ly.slots_off + 4ull * empty, &slots[used], 4);
    reseal(p, len);
    write_file(path, p, len);
    expect_open_fails(path, DM_ECORRUPT);
    /* Non-zero padding. */
    memcpy(p, orig, len);
    p[ly.word_off_off + 4 * (N_WORDS + 1)] = 7;
    reseal(p, len);
    write_file(path, p, len);
    expect_open_fails(path, DM_ECORRUPT);

    /* The original still opens. */
    write_file(path, orig, len);
    embedder *e = NULL;
    assert_int_equal(embed_builtin_open(path, &e), DM_OK);
    embedder_close(e);
    unlink(path);
    free(p);
    free(orig);
}

static void test_missing_file(void **state)
{
    char path[600];
    snprintf(path, sizeof path, "%s.absent", model_path);
    embedder *e = (embedder *)1;
    assert_int_equal(embed_builtin_open(path, &e), DM_ENOTFOUND);
    assert_null(e);
    assert_non_null(strstr(err_last_msg(), path));
    assert_non_null(strstr(err_last_msg(), "make model"));
}

static void test_invalid_utf8(void **state)
{
    embedder *e = NULL;
    assert_int_equal(embed_builtin_open(model_path, &e), DM_OK);
    const char *texts[] = { "the cat", "ok \xff here" };
    size_t lens[] = { 7, 9 };
    float out[2 * DIM];
    assert_int_equal(embedder_embed(e, texts, lens, 2, out), DM_EINVAL);
    assert_non_null(strstr(err_last_msg(), "text 1"));
    assert_non_null(strstr(err_last_msg(), "byte 3"));
    /* Not NUL-terminated input: only len bytes are read. */
    const char raw[] = { 'c', 'a', 't', 'X' };
    const char *t = raw;
    size_t n = 3;
    float a[DIM], b[DIM];
    assert_int_equal(embedder_embed(e, &t, &n, 1, a), DM_OK);
    embed1(e, "cat", b);
    assert_vec_near(a, b, 0);
    embedder_close(e);
}

static void test_build_errors(void **state)
{
    char path[600];
    snprintf(path, sizeof path, "%s.err", model_path);
    const char *dup[] = { "a", "b", "a" };
    float v[3 * 2] = { 1, 0, 0, 1, 1, 1 };
    model_build_input in;
    memset(&in, 0, sizeof in);
    in.name = "dup";
    in.dim = 2;
    in.n_words = 3;
    in.words = dup;
    in.vectors = v;
    assert_int_equal(model_build_write(&in, path), DM_EINVAL);
    assert_non_null(strstr(err_last_msg(), "duplicate"));
    const char *ok[] = { "a", "b", "" };
    in.words = ok;
    assert_int_equal(model_build_write(&in, path), DM_EINVAL);
    in.words = dup;
    in.n_words = 2;
    in.name = "";
    assert_int_equal(model_build_write(&in, path), DM_EINVAL);
    in.name = "x";
    v[1] = NAN;
    assert_int_equal(model_build_write(&in, path), DM_EINVAL);
    v[1] = 0;
    in.dim = 0;
    assert_int_equal(model_build_write(&in, path), DM_EINVAL);
    struct stat st;
    assert_int_equal(stat(path, &st), -1);
    /* SIF weights by default, and a fitted component. */
    in.dim = 2;
    in.common_top = 2;
    in.remove_common = 1;
    assert_int_equal(model_build_write(&in, path), DM_OK);
    embedder *e = NULL;
    assert_int_equal(embed_builtin_open(path, &e), DM_OK);
    float row[2], w0, w1;
    embed_builtin_row(e, 0, row, &w0);
    embed_builtin_row(e, 1, row, &w1);
    float sif[2];
    model_sif_weights(2, 1e-3, sif);
    assert_true(w0 == sif[0] && w1 == sif[1]);
    assert_non_null(embed_builtin_common(e));
    embedder_close(e);
    unlink(path);
}

static void test_alloc_failures(void **state)
{
    /* Every allocation of open and embed may fail: the error reaches the
     * caller and nothing leaks. */
    int64_t base = alloc_bytes_in_use();
    int opened = 0;
    for (int64_t k = 1; k < 200 && !opened; k++) {
        embedder *e = NULL;
        alloc_fail_after(k, 0);
        int rc = embed_builtin_open(model_path, &e);
        alloc_fail_after(0, 0);
        if (rc == DM_OK) {
            opened = 1;
            embedder_close(e);
        } else {
            assert_int_equal(rc, DM_ENOMEM);
            assert_null(e);
        }
    }
    assert_true(opened);
    embedder *e = NULL;
    assert_int_equal(embed_builtin_open(model_path, &e), DM_OK);
    const char *t = "the well-known cat sat on my mat, didn't it?";
    size_t len = strlen(t);
    float out[DIM];
    int done = 0;
    for (int64_t k = 1; k < 200 && !done; k++) {
        alloc_fail_after(k, 0);
        int rc = embedder_embed(e, &t, &len, 1, out);
        alloc_fail_after(0, 0);
        if (rc == DM_OK)
            done = 1;
        else
            assert_int_equal(rc, DM_ENOMEM);
    }
    assert_true(done);
    embedder_close(e);
    assert_int_equal(alloc_bytes_in_use(), base);
}

typedef struct worker {
    embedder *e;
    const float *ref;
    int mismatches;
} worker;

static const char *const sentences[] = {
    "the cat sat on the mat", "my wife loves hiking in the mountains",
    "stock market fell today", "she loves python and docker",
    "well-known ice-cream", "he don't",
};
#define N_SENT (sizeof sentences / sizeof sentences[0])

static void *worker_main(void *arg)
{
    worker *w = arg;
    float out[DIM];
    for (int it = 0; it < 300; it++) {
        size_t k = (size_t)it % N_SENT;
        size_t len = strlen(sentences[k]);
        if (embedder_embed(w->e, &sentences[k], &len, 1, out) != DM_OK ||
            memcmp(out, w->ref + k * DIM, sizeof out) != 0)
            w->mismatches++;
    }
    return NULL;
}

static void test_concurrent_embed(void **state)
{
    embedder *e = NULL;
    assert_int_equal(embed_builtin_open(model_path, &e), DM_OK);
    float ref[N_SENT * DIM];
    for (size_t k = 0; k < N_SENT; k++)
        embed1(e, sentences[k], ref + k * DIM);
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){ e, ref, 0 };
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].mismatches, 0);
    }
    embedder_close(e);
}

/* ------------------------------------------------------- JSON converter */

/* The package's layout in miniature: metadata, "words" in rank order,
 * "vectors" keyed by word with the components, the norm and the rank,
 * then "unkVector"; with \" and \\ escapes and exponent numbers. */
static const char tiny_json[] =
    "{\"precision\":8,\"l2NormIndex\":4,\"wordIndex\":5,\"size\":5,"
    "\"dimensions\":4,\"words\":[\"the\",\"\\\"\",\"a\\\\b\",\"x\",\"caf\\u00e9\"],"
    "\"vectors\":{"
    "\"the\":[-0.038194,-0.24487,0.72812,-0.39961,0.8,0],"
    "\"\\\"\":[1,2,3,4,5.4772,1],"
    "\"a\\\\b\":[0.5,-0.25,1e-2,2.5E+0,2.6,2],"
    "\"x\":[1.5e-2,-3.0e-3,0,1,1.0,3],"
    "\"caf\\u00e9\":[0,0,1,0,1,4]"
    "},\"unkVector\":[0,0,0,0,0,-1]}";

static void test_convert_json(void **state)
{
    const char *dir = tu_tmpdir("embed_json");
    char jpath[600], mpath[600];
    snprintf(jpath, sizeof jpath, "%s/pkg.json", dir);
    snprintf(mpath, sizeof mpath, "%s/out.dmm", dir);
    write_file(jpath, (const uint8_t *)tiny_json, strlen(tiny_json));
    model_json_options opt;
    memset(&opt, 0, sizeof opt);
    opt.name = "tiny-json";
    opt.remove_common = 1;
    model_json_stats st;
    assert_int_equal(model_build_from_json(jpath, mpath, &opt, &st), DM_OK);
    assert_int_equal(st.dim, 4);
    assert_int_equal(st.n_words, 5);
    struct stat sb;
    assert_int_equal(stat(mpath, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, st.file_len);

    embedder *e = NULL;
    assert_int_equal(embed_builtin_open(mpath, &e), DM_OK);
    assert_string_equal(embedder_name(e), "builtin:tiny-json");
    assert_int_equal(embed_builtin_lookup(e, "the", 3), 0);
    assert_int_equal(embed_builtin_lookup(e, "\"", 1), 1);
    assert_int_equal(embed_builtin_lookup(e, "a\\b", 3), 2);
    assert_int_equal(embed_builtin_lookup(e, "x", 1), 3);
    assert_int_equal(embed_builtin_lookup(e, "caf\xc3\xa9", 5), 4);
    float row[4], w;
    embed_builtin_row(e, 0, row, &w);
    float the[4] = { -0.038194f, -0.24487f, 0.72812f, -0.39961f };
    for (int j = 0; j < 4; j++)
        assert_true(fabsf(row[j] - the[j]) <= 0.72812f / 127 / 2 + 1e-6f);
    float sif[5];
    model_sif_weights(5, 1e-3, sif);
    assert_true(w == sif[0]);
    embed_builtin_row(e, 2, row, NULL);
    float ab[4] = { 0.5f, -0.25f, 0.01f, 2.5f };
    for (int j = 0; j < 4; j++)
        assert_true(fabsf(row[j] - ab[j]) <= 2.5f / 127 / 2 + 1e-6f);
    embed_builtin_row(e, 3, row, NULL);
    assert_true(fabsf(row[0] - 0.015f) <= 1.0f / 127 / 2 + 1e-6f);
    assert_true(row[3] == 1.0f);
    assert_non_null(embed_builtin_common(e));
    embedder_close(e);

    /* --no-common: no component section. */
    opt.no_common = 1;
    opt.remove_common = 0;
    assert_int_equal(model_build_from_json(jpath, mpath, &opt, NULL), DM_OK);
    assert_int_equal(embed_builtin_open(mpath, &e), DM_OK);
    assert_null(embed_builtin_common(e));
    embedder_close(e);

    /* Malformed packages: DM_ECORRUPT with the offset, old output kept. */
    struct {
        const char *json;
        const char *needle;
    } bad[] = {
        { "{\"dimensions\":4,\"size\":1,\"l2NormIndex\":4,\"wordIndex\":5,"
          "\"words\":[\"a\"],\"vectors\":{\"a\":[1,2,3,4,5]}}", "too few" },
        { "{\"dimensions\":4,\"size\":1,\"l2NormIndex\":4,\"wordIndex\":5,"
          "\"words\":[\"a\"],\"vectors\":{\"a\":[1,2,3,4,5,1]}}", "out of range" },
        { "{\"dimensions\":4,\"size\":2,\"l2NormIndex\":4,\"wordIndex\":5,"
          "\"words\":[\"a\",\"b\"],\"vectors\":{\"a\":[1,2,3,4,5,0]}}", "no vector" },
        { "{\"dimensions\":4,\"size\":1,\"l2NormIndex\":4,\"wordIndex\":5,"
          "\"words\":[\"a\"],\"vectors\":{\"a\":[1,2,3,4x,5,0]}}", "expected" },
        { "{\"dimensions\":4,\"size\":1,\"l2NormIndex\":4,\"wordIndex\":5,"
          "\"words\":[\"a\"],\"vectors\":{\"a\":[1,2,3,1e99,5,0]}}", "range" },
        { "{\"vectors\":{}, \"words\":[]}", "before" },
        { "{\"dimensions\":4,\"size\":1,\"l2NormIndex\":4,\"wordIndex\":5,"
          "\"words\":[\"a\\q\"]}", "escape" },
        { "{\"dimensions\":4,\"size\":1,\"l2NormIndex\":4,\"wordIndex\":5,"
          "\"words\":[\"a\"],\"vectors\":{\"a\":[1,2,3,4,5,0]", "expected" },
        { "[1,2]", "expected '{'" },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        write_file(jpath, (const uint8_t *)bad[k].json, strlen(bad[k].json));
        int rc = model_build_from_json(jpath, mpath, NULL, NULL);
        if (rc != DM_ECORRUPT || !strstr(err_last_msg(), bad[k].needle) ||
            !strstr(err_last_msg(), "offset"))
            fail_msg("case %zu: %s \"%s\"", k, dm_errname(rc), err_last_msg());
    }
    assert_int_equal(embed_builtin_open(mpath, &e), DM_OK);
    embedder_close(e);
    assert_int_equal(stat(tu_file_path(dir, "out.dmm.tmp"), &sb), -1);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/none.json", dir);
    assert_int_equal(model_build_from_json(missing, mpath, NULL, NULL),
                     DM_ENOTFOUND);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_and_lookup),
        cmocka_unit_test(test_weighted_mean),
        cmocka_unit_test(test_zero_vector),
        cmocka_unit_test(test_compounds_and_clitics),
        cmocka_unit_test(test_sif_weights_and_component),
        cmocka_unit_test(test_common_removal),
        cmocka_unit_test(test_corrupt_files),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_concurrent_embed),
        cmocka_unit_test(test_convert_json),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
