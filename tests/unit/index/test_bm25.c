/*
 * test_bm25.c -- the BM25 analyzer and inverted index: stop words and
 * stemming, hand-computed scores, MaxScore top-k equal to brute force on
 * random corpora, deletes and re-adds, filters, checkpoint round trips,
 * corrupted checkpoints (every truncation, every bit flip, re-checksummed
 * mutations), allocation failure and concurrent searches; the search
 * strategies (MaxScore, term-at-a-time windows, the automatic mix) agree
 * bit for bit with each other and with brute force on a small-vocabulary
 * corpus and a Zipfian one.
 */
// ctest-labels: concurrency
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/crc.h"
#include "base/err.h"
#include "index/analyze.h"
#include "index/bm25.h"
#include "index/bm25_format.h"

/* ------------------------------------------------------------- helpers */

static void add(bm25 *ix, uint32_t doc, const char *text)
{
    int rc = bm25_add(ix, doc, text, strlen(text));
    if (rc)
        fail_msg("bm25_add(%u): %s: %s", doc, dm_errname(rc), err_last_msg());
}

static char *terms_of(const char *text)
{
    static char out[1024];
    tok_list l;
    tok_list_init(&l);
    assert_int_equal(an_text(text, strlen(text), &l), DM_OK);
    size_t n = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < l.n; i++)
        n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", i ? " " : "",
                              tok_str(&l, i));
    tok_list_fini(&l);
    return out;
}

/* A random corpus over a Zipf-like vocabulary of made-up words. */
typedef struct corpus {
    char **text;      /* text[d], NULL when doc d is not indexed */
    uint32_t n_docs;  /* doc numbers are 0..n_docs-1 */
    char **vocab;
    uint32_t n_vocab;
} corpus;

static char *make_word(tu_rng *r)
{
    static const char *const syl[] = { "ka", "lo", "mi", "ne", "pu", "ra",
                                       "so", "ti", "vu", "ze", "bo", "da" };
    char w[32];
    size_t n = 0;
    int k = 2 + (int)tu_randn(r, 3);
    for (int i = 0; i < k; i++)
        n += (size_t)sprintf(w + n, "%s", syl[tu_randn(r, 12)]);
    return strdup(w);
}

static uint32_t zipf_pick(tu_rng *r, uint32_t n)
{
    /* Roughly Zipf: the square of a uniform variate, skewed to small ids. */
    double u = (double)tu_randn(r, 1u << 30) / (double)(1u << 30);
    uint32_t i = (uint32_t)(u * u * u * n);
    return i < n ? i : n - 1;
}

static char *make_doc(tu_rng *r, const corpus *c)
{
    uint32_t n = 1 + (uint32_t)tu_randn(r, 25);
    size_t cap = n * 20 + 1, len = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    s[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        const char *w = c->vocab[zipf_pick(r, c->n_vocab)];
        len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? " " : "", w);
        if (tu_randn(r, 10) == 0) /* a repeated word */
            len += (size_t)snprintf(s + len, cap - len, " %s", w);
    }
    return s;
}

static void corpus_make(corpus *c, uint64_t seed, uint32_t n_docs,
                        uint32_t n_vocab)
{
    tu_rng r;
    tu_rng_seed(&r, seed);
    c->n_vocab = n_vocab;
    c->vocab = calloc(n_vocab, sizeof *c->vocab);
    for (uint32_t i = 0; i < n_vocab; i++)
        c->vocab[i] = make_word(&r);
    c->n_docs = n_docs;
    c->text = calloc(n_docs, sizeof *c->text);
    for (uint32_t d = 0; d < n_docs; d++)
        c->text[d] = make_doc(&r, c);
}

static void corpus_free(corpus *c)
{
    for (uint32_t i = 0; i < c->n_vocab; i++)
        free(c->vocab[i]);
    for (uint32_t d = 0; d < c->n_docs; d++)
        free(c->text[d]);
    free(c->vocab);
    free(c->text);
}

/* Index the corpus in a random order (exercising inserts into the middle
 * of posting lists), then delete every seventh document. */
static bm25 *corpus_index(corpus *c, tu_rng *r, const bm25_params *p)
{
    bm25 *ix;
    assert_int_equal(bm25_new(p, &ix), DM_OK);
    uint32_t *perm = malloc(c->n_docs * sizeof *perm);
    for (uint32_t i = 0; i < c->n_docs; i++)
        perm[i] = i;
    for (uint32_t i = c->n_docs; i > 1; i--) {
        uint32_t j = (uint32_t)tu_randn(r, i), t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    for (uint32_t i = 0; i < c->n_docs; i++)
        add(ix, perm[i], c->text[perm[i]]);
    for (uint32_t d = 0; d < c->n_docs; d += 7) {
        assert_int_equal(bm25_delete(ix, d, c->text[d], strlen(c->text[d])),
                         DM_OK);
        free(c->text[d]);
        c->text[d] = NULL;
    }
    free(perm);
    assert_int_equal(bm25_check(ix), DM_OK);
    return ix;
}

static void make_query(tu_rng *r, const corpus *c, char *q, size_t cap)
{
    uint32_t n = 1 + (uint32_t)tu_randn(r, 5);
    size_t len = 0;
    q[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        /* Mix frequent and rare words. */
        uint32_t w = tu_randn(r, 2) ? zipf_pick(r, c->n_vocab)
                                    : (uint32_t)tu_randn(r, c->n_vocab);
        len += (size_t)snprintf(q + len, cap - len, "%s%s", i ? " " : "",
                                c->vocab[w]);
    }
}

static int cmp_hit_desc(const void *a, const void *b)
{
    const bm25_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->doc < y->doc ? -1 : x->doc > y->doc;
}

/* brute -- exhaustive top k through bm25_score on every document. */
static uint32_t brute(const bm25 *ix, uint32_t n_docs, const char *q,
                      uint32_t k, ix_filter_fn f, void *arg, bm25_hit *out)
{
    bm25_hit *all = malloc((n_docs + 1) * sizeof *all);
    uint32_t n = 0;
    for (uint32_t d = 0; d < n_docs; d++) {
        float s;
        assert_int_equal(bm25_score(ix, q, strlen(q), d, &s), DM_OK);
        if (s > 0 && (!f || f(arg, d)))
            all[n++] = (bm25_hit){ d, s };
    }
    qsort(all, n, sizeof *all, cmp_hit_desc);
    if (n > k)
        n = k;
    memcpy(out, all, n * sizeof *out);
    free(all);
    return n;
}

static void expect_same(const bm25_hit *a, uint32_t na, const bm25_hit *b,
                        uint32_t nb, const char *q)
{
    if (na != nb)
        fail_msg("query \"%s\": %u hits, brute force %u", q, na, nb);
    for (uint32_t i = 0; i < na; i++)
        if (a[i].doc != b[i].doc || a[i].score != b[i].score)
            fail_msg("query \"%s\" hit %u: doc %u %.9g, brute force doc %u "
                     "%.9g", q, i, a[i].doc, (double)a[i].score, b[i].doc,
                     (double)b[i].score);
}

static bool keep_not_div3(void *arg, uint32_t doc)
{
    (*(int *)arg)++;
    return doc % 3 != 0;
}

/* --------------------------------------------------------------- tests */

static void test_analyzer(void **state)
{
    assert_string_equal(terms_of("The runners weren't running quickly"),
                        "runner n't run quick");
    assert_string_equal(terms_of("Well-known generalizations of 3.5 and 1,000"),
                        "well known general 3.5 1,000");
    assert_string_equal(terms_of("John's cats aren't here; I'm not sure"),
                        "john cat n't not sure");
    assert_string_equal(terms_of("Caf\u00e9s \u4e2d\u6587"), "caf\u00e9 \u4e2d \u6587");
    assert_string_equal(terms_of("the of and a to"), "");
    assert_true(an_is_stopword("the", 3));
    assert_true(an_is_stopword("'s", 2));
    assert_true(an_is_stopword("yourselves", 10));
    assert_false(an_is_stopword("not", 3));
    assert_false(an_is_stopword("n't", 3));
    assert_false(an_is_stopword("cat", 3));
    assert_false(an_is_stopword("th", 2));
    assert_false(an_is_stopword("", 0));
    tok_list l;
    tok_list_init(&l);
    assert_int_equal(an_text("ok \xff", 4, &l), DM_EINVAL);
    assert_int_equal(l.n, 0);
    tok_list_fini(&l);
}

static void test_hand_computed(void **state)
{
    bm25 *ix;
    bm25_params p = bm25_params_default();
    assert_true(p.k1 == 1.2f && p.b == 0.75f);
    assert_int_equal(bm25_new(&p, &ix), DM_OK);
    add(ix, 1, "cat dog");
    add(ix, 2, "Cat, cat... fish!");
    add(ix, 3, "bird");
    assert_int_equal(bm25_doc_count(ix), 3);
    assert_int_equal(bm25_term_count(ix), 4);
    /* N = 3, avgdl = 6 / 3 = 2, k1 = 1.2, b = 0.75.
     * idf(cat) = ln(1 + 1.5/2.5) = ln 1.6; idf(fish) = ln(1 + 2.5/1.5).
     * d2: tf(cat) = 2, dl = 3, K = 1.2 * (0.25 + 0.75 * 1.5) = 1.65;
     * cat: ln1.6 * 2 * 2.2 / 3.65; fish: ln(8/3) * 2.2 / 2.65. */
    double idf_cat = log(1.6), idf_fish = log(8.0 / 3.0);
    double cat_d1 = idf_cat * 2.2 / 2.2;
    double cat_d2 = idf_cat * 4.4 / 3.65, fish_d2 = idf_fish * 2.2 / 2.65;
    assert_float_equal(cat_d2, 0.5665797174469143, 1e-12);
    assert_float_equal(fish_d2, 0.8142733421229427, 1e-12);

    bm25_term_explain e[4];
    uint32_t n;
    assert_int_equal(bm25_explain(ix, "cats fish cat zebra", 19, 2, e, 4, &n),
                     DM_OK);
    assert_int_equal(n, 3); /* "cats" and "cat" are one term */
    assert_string_equal(e[0].term, "cat");
    assert_int_equal(e[0].tf, 2);
    assert_int_equal(e[0].df, 2);
    assert_float_equal(e[0].idf, idf_cat, 1e-6);
    assert_float_equal(e[0].score, cat_d2, 1e-6);
    assert_string_equal(e[1].term, "fish");
    assert_int_equal(e[1].tf, 1);
    assert_int_equal(e[1].df, 1);
    assert_float_equal(e[1].idf, idf_fish, 1e-6);
    assert_float_equal(e[1].score, fish_d2, 1e-6);
    assert_string_equal(e[2].term, "zebra");
    assert_int_equal(e[2].tf, 0);
    assert_int_equal(e[2].df, 0);
    assert_float_equal(e[2].score, 0.0, 0.0);
    /* cap limits the output. */
    assert_int_equal(bm25_explain(ix, "cats fish", 9, 2, e, 1, &n), DM_OK);
    assert_int_equal(n, 1);

    float s;
    assert_int_equal(bm25_score(ix, "cat fish", 8, 2, &s), DM_OK);
    assert_float_equal(s, cat_d2 + fish_d2, 1e-6);
    assert_int_equal(bm25_score(ix, "cat fish", 8, 1, &s), DM_OK);
    assert_float_equal(s, cat_d1, 1e-6);
    assert_int_equal(bm25_score(ix, "cat fish", 8, 3, &s), DM_OK);
    assert_true(s == 0.0f);
    assert_int_equal(bm25_score(ix, "cat fish", 8, 99, &s), DM_OK);
    assert_true(s == 0.0f);

    bm25_hit h[5];
    assert_int_equal(bm25_search(ix, "fish or cat", 11, 5, NULL, NULL, h, &n),
                     DM_OK);
    assert_int_equal(n, 2);
    assert_int_equal(h[0].doc, 2);
    assert_float_equal(h[0].score, cat_d2 + fish_d2, 1e-6);
    assert_int_equal(h[1].doc, 1);
    assert_float_equal(h[1].score, cat_d1, 1e-6);
    /* Ties break by the smaller document. */
    add(ix, 0, "bird");
    assert_int_equal(bm25_search(ix, "bird", 4, 5, NULL, NULL, h, &n), DM_OK);
    assert_int_equal(n, 2);
    assert_int_equal(h[0].doc, 0);
    assert_int_equal(h[1].doc, 3);
    assert_true(h[0].score == h[1].score);
    assert_int_equal(bm25_search(ix, "bird", 4, 1, NULL, NULL, h, &n), DM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].doc, 0);
    /* Nothing to find. */
    assert_int_equal(bm25_search(ix, "the of", 6, 5, NULL, NULL, h, &n), DM_OK);
    assert_int_equal(n, 0);
    assert_int_equal(bm25_search(ix, "cat", 3, 0, NULL, NULL, h, &n), DM_OK);
    assert_int_equal(n, 0);
    assert_int_equal(bm25_search(ix, "c\xc3", 3, 5, NULL, NULL, h, &n),
                     DM_EINVAL);
    assert_int_equal(n, 0);
    assert_int_equal(bm25_check(ix), DM_OK);
    assert_true(bm25_memsize(ix) > 0);
    bm25_free(ix);
    bm25_free(NULL);
}

static void test_params(void **state)
{
    bm25 *ix = (bm25 *)1;
    bm25_params p = { -0.1f, 0.5f };
    assert_int_equal(bm25_new(&p, &ix), DM_EINVAL);
    assert_null(ix);
    p = (bm25_params){ 1.0f, 1.5f };
    assert_int_equal(bm25_new(&p, &ix), DM_EINVAL);
    p = (bm25_params){ 1.0f, NAN };
    assert_int_equal(bm25_new(&p, &ix), DM_EINVAL);
    p = (bm25_params){ 0.0f, 0.0f };
    assert_int_equal(bm25_new(&p, &ix), DM_OK);
    bm25_free(ix);
}

/* One brute-force comparison run: several parameter sets and k values. */
static void maxscore_run(uint64_t seed, uint32_t n_docs, uint32_t n_vocab,
                         const bm25_params *p, int n_queries)
{
    corpus c;
    corpus_make(&c, seed, n_docs, n_vocab);
    tu_rng r;
    tu_rng_seed(&r, seed + 1000);
    bm25 *ix = corpus_index(&c, &r, p);
    static const uint32_t ks[] = { 1, 3, 10, 50 };
    bm25_hit got[50], want[50];
    char q[256];
    for (int i = 0; i < n_queries; i++) {
        make_query(&r, &c, q, sizeof q);
        uint32_t k = ks[tu_randn(&r, 4)], ng;
        int calls = 0;
        int use_filter = tu_randn(&r, 4) == 0;
        ix_filter_fn f = use_filter ? keep_not_div3 : NULL;
        assert_int_equal(bm25_search(ix, q, strlen(q), k, f, &calls, got, &ng),
                         DM_OK);
        uint32_t nw = brute(ix, n_docs, q, k, f, &calls, want);
        expect_same(got, ng, want, nw, q);
        for (uint32_t j = 0; j < ng; j++)
            assert_true(!use_filter || got[j].doc % 3 != 0);
    }
    bm25_free(ix);
    corpus_free(&c);
}

static void test_maxscore_equals_brute_force(void **state)
{
    bm25_params def = bm25_params_default();
    bm25_params flat = { 0.0f, 0.0f }, full = { 2.0f, 1.0f };
    for (uint64_t seed = 1; seed <= 4; seed++)
        maxscore_run(seed, 800, 300, &def, 50);
    maxscore_run(11, 600, 100, &flat, 30);
    maxscore_run(12, 600, 2000, &full, 30);
    /* Few documents, long posting lists relative to the corpus. */
    maxscore_run(13, 300, 20, &def, 50);
}

static void test_filter(void **state)
{
    bm25 *ix;
    assert_int_equal(bm25_new(NULL, &ix), DM_OK);
    for (uint32_t d = 0; d < 300; d++)
        add(ix, d, d % 2 ? "apple banana" : "apple cherry banana");
    bm25_hit h[20];
    uint32_t n;
    int calls = 0;
    assert_int_equal(bm25_search(ix, "apple", 5, 20, keep_not_div3, &calls, h,
                                 &n), DM_OK);
    assert_int_equal(n, 20);
    assert_true(calls > 0);
    for (uint32_t i = 0; i < n; i++)
        assert_true(h[i].doc % 3 != 0);
    /* The shorter (odd) documents score higher. */
    assert_int_equal(h[0].doc, 1);
    assert_int_equal(h[1].doc, 5);
    bm25_free(ix);
}

static void test_delete_readd(void **state)
{
    corpus c;
    corpus_make(&c, 77, 800, 200);
    bm25 *ix, *fresh;
    assert_int_equal(bm25_new(NULL, &ix), DM_OK);
    for (uint32_t d = 0; d < c.n_docs; d++)
        add(ix, d, c.text[d]);
    uint32_t terms_before = bm25_term_count(ix);

    /* Errors leave the index unchanged. */
    assert_int_equal(bm25_add(ix, 5, "x", 1), DM_EEXISTS);
    assert_int_equal(bm25_add(ix, UINT32_MAX, "x", 1), DM_EINVAL);
    assert_int_equal(bm25_delete(ix, 9999, "x", 1), DM_ENOTFOUND);
    assert_int_equal(bm25_delete(ix, 5, "not the text", 12), DM_EINVAL);
    char wrong[512];
    snprintf(wrong, sizeof wrong, "%s %s", c.text[5], c.vocab[0]);
    assert_int_equal(bm25_delete(ix, 5, wrong, strlen(wrong)), DM_EINVAL);
    assert_int_equal(bm25_check(ix), DM_OK);
    assert_int_equal(bm25_doc_count(ix), 800);

    /* Delete half, in a scattered order, then add them back. */
    for (uint32_t d = 1; d < c.n_docs; d += 2)
        assert_int_equal(bm25_delete(ix, d, c.text[d], strlen(c.text[d])),
                         DM_OK);
    assert_int_equal(bm25_doc_count(ix), 400);
    assert_int_equal(bm25_check(ix), DM_OK);
    float s;
    assert_int_equal(bm25_score(ix, c.text[3], strlen(c.text[3]), 3, &s),
                     DM_OK);
    assert_true(s == 0.0f);
    for (uint32_t d = c.n_docs; d-- > 1;)
        if (d % 2)
            add(ix, d, c.text[d]);
    assert_int_equal(bm25_check(ix), DM_OK);
    assert_int_equal(bm25_term_count(ix), terms_before);

    /* Same documents, same answers as an index built in one go. */
    assert_int_equal(bm25_new(NULL, &fresh), DM_OK);
    for (uint32_t d = 0; d < c.n_docs; d++)
        add(fresh, d, c.text[d]);
    tu_rng r;
    tu_rng_seed(&r, 5);
    char q[256];
    bm25_hit a[10], b[10];
    for (int i = 0; i < 100; i++) {
        uint32_t na, nb;
        make_query(&r, &c, q, sizeof q);
        assert_int_equal(bm25_search(ix, q, strlen(q), 10, NULL, NULL, a, &na),
                         DM_OK);
        assert_int_equal(bm25_search(fresh, q, strlen(q), 10, NULL, NULL, b,
                                     &nb), DM_OK);
        expect_same(a, na, b, nb, q);
    }

    /* Delete everything: no terms remain, and an empty text is a document. */
    for (uint32_t d = 0; d < c.n_docs; d++)
        assert_int_equal(bm25_delete(ix, d, c.text[d], strlen(c.text[d])),
                         DM_OK);
    assert_int_equal(bm25_doc_count(ix), 0);
    assert_int_equal(bm25_term_count(ix), 0);
    add(ix, 4, "the of and");
    assert_int_equal(bm25_doc_count(ix), 1);
    assert_int_equal(bm25_delete(ix, 4, "", 0), DM_OK);
    assert_int_equal(bm25_check(ix), DM_OK);
    bm25_free(ix);
    bm25_free(fresh);
    corpus_free(&c);
}

static void test_long_lists(void **state)
{
    /* One term in 20,000 documents (many blocks), with the odd ones
     * inserted after the even ones (splits), then deletes in the middle. */
    bm25 *ix;
    assert_int_equal(bm25_new(NULL, &ix), DM_OK);
    char t[64];
    for (uint32_t d = 0; d < 20000; d += 2) {
        snprintf(t, sizeof t, "common common%s w%u", d % 5 ? "" : " common", d % 97);
        add(ix, d, t);
    }
    for (uint32_t d = 1; d < 20000; d += 2) {
        snprintf(t, sizeof t, "common%s w%u", d % 5 ? "" : " common", d % 97);
        add(ix, d, t);
    }
    assert_int_equal(bm25_check(ix), DM_OK);
    for (uint32_t d = 5000; d < 15000; d += 3) {
        snprintf(t, sizeof t, "%scommon%s w%u", d % 2 ? "" : "common ",
                 d % 5 ? "" : " common", d % 97);
        assert_int_equal(bm25_delete(ix, d, t, strlen(t)), DM_OK);
    }
    assert_int_equal(bm25_check(ix), DM_OK);
    bm25_hit got[10], want[10];
    uint32_t ng, nw;
    const char *q = "common w3 w50";
    assert_int_equal(bm25_search(ix, q, strlen(q), 10, NULL, NULL, got, &ng),
                     DM_OK);
    nw = brute(ix, 20000, q, 10, NULL, NULL, want);
    expect_same(got, ng, want, nw, q);
    bm25_free(ix);
}

static void expect_same_search(const bm25 *a, const bm25 *b, const corpus *c,
                               uint64_t seed)
{
    tu_rng r;
    tu_rng_seed(&r, seed);
    char q[256];
    bm25_hit ha[20], hb[20];
    for (int i = 0; i < 100; i++) {
        uint32_t na, nb;
        make_query(&r, c, q, sizeof q);
        assert_int_equal(bm25_search(a, q, strlen(q), 20, NULL, NULL, ha, &na),
                         DM_OK);
        assert_int_equal(bm25_search(b, q, strlen(q), 20, NULL, NULL, hb, &nb),
                         DM_OK);
        expect_same(ha, na, hb, nb, q);
    }
}

static void test_serialize_round_trip(void **state)
{
    corpus c;
    corpus_make(&c, 31, 1000, 400);
    tu_rng r;
    tu_rng_seed(&r, 32);
    bm25 *ix = corpus_index(&c, &r, NULL), *back;
    buf b, b2;
    buf_init(&b);
    buf_init(&b2);
    assert_int_equal(buf_append(&b, "prefix", 6), DM_OK);
    assert_int_equal(bm25_serialize(ix, &b), DM_OK);
    buf_slice s = buf_slice_of(b.ptr + 6, b.len - 6);
    assert_int_equal(bm25_deserialize(NULL, s, &back), DM_OK);
    assert_int_equal(bm25_check(back), DM_OK);
    assert_int_equal(bm25_doc_count(back), bm25_doc_count(ix));
    assert_int_equal(bm25_term_count(back), bm25_term_count(ix));
    expect_same_search(ix, back, &c, 33);
    /* Serializing the loaded index gives the same bytes. */
    assert_int_equal(bm25_serialize(back, &b2), DM_OK);
    assert_int_equal(b2.len, s.len);
    assert_memory_equal(b2.ptr, s.ptr, s.len);
    print_message("checkpoint: %zu bytes for %u docs, %u terms; memsize %zu\n",
                  s.len, bm25_doc_count(ix), bm25_term_count(ix),
                  bm25_memsize(ix));
    /* The loaded index keeps working: add and delete. */
    add(back, 5000, "brand new words");
    assert_int_equal(bm25_delete(back, 1, c.text[1], strlen(c.text[1])), DM_OK);
    assert_int_equal(bm25_check(back), DM_OK);
    bm25_free(back);

    /* An empty index. */
    bm25 *empty;
    assert_int_equal(bm25_new(NULL, &empty), DM_OK);
    buf_clear(&b);
    assert_int_equal(bm25_serialize(empty, &b), DM_OK);
    assert_int_equal(b.len, 35);
    assert_int_equal(bm25_deserialize(NULL, buf_slice_of(b.ptr, b.len), &back),
                     DM_OK);
    assert_int_equal(bm25_doc_count(back), 0);
    bm25_free(back);
    bm25_free(empty);
    bm25_free(ix);
    buf_fini(&b);
    buf_fini(&b2);
    corpus_free(&c);
}

/* The worked example of docs/format.md, byte for byte. */
static void test_format_example(void **state)
{
    bm25 *ix;
    assert_int_equal(bm25_new(NULL, &ix), DM_OK);
    add(ix, 3, "Cats chase cats");
    add(ix, 7, "Dogs chase");
    buf b;
    buf_init(&b);
    assert_int_equal(bm25_serialize(ix, &b), DM_OK);
    static const uint8_t want_body[] = {
        0x02, 0x05,             /* n_docs 2, total_len 5 */
        0x03, 0x03, 0x03, 0x02, /* doc 3 len 3, doc 7 (gap 3) len 2 */
        0x03,                   /* n_terms 3 */
        0x00, 0x03, 'c', 'a', 't', 0x01, 0x07, 0x00, /* cat: doc 3 tf 2 */
        0x01, 0x04, 'h', 'a', 's', 'e', 0x02, 0x06, 0x06, /* chase: 3, 7 */
        0x00, 0x03, 'd', 'o', 'g', 0x01, 0x0e,     /* dog: doc 7 */
    };
    assert_int_equal(b.len, 16 + sizeof want_body + 16);
    assert_memory_equal(b.ptr, "DMDDBM25\x01\0\0\0\0\0\0\0", 16);
    assert_memory_equal(b.ptr + 16, want_body, sizeof want_body);
    assert_int_equal(dec_u32(b.ptr + b.len - 16), sizeof want_body);
    assert_int_equal(dec_u32(b.ptr + b.len - 12),
                     crc_mask(crc32c(b.ptr, b.len - 12)));
    print_message("example crc field: 0x%08x\n", dec_u32(b.ptr + b.len - 12));
    assert_memory_equal(b.ptr + b.len - 8, "DMDDBM25", 8);
    buf_fini(&b);
    bm25_free(ix);
}

static void recrc(uint8_t *p, size_t n)
{
    enc_u32(p + n - 12, crc_mask(crc32c(p, n - 12)));
}

static void test_corrupt_checkpoints(void **state)
{
    bm25 *ix, *back;
    assert_int_equal(bm25_new(NULL, &ix), DM_OK);
    add(ix, 0, "alpha beta gamma");
    add(ix, 2, "beta beta delta epsilon");
    add(ix, 9, "gamma alpha zeta-eta theta");
    add(ix, 300, "");
    add(ix, 700, "iota kappa lambda alpha");
    buf b;
    buf_init(&b);
    assert_int_equal(bm25_serialize(ix, &b), DM_OK);
    size_t n = b.len;
    uint8_t *m = malloc(n);

    /* Every truncation. */
    for (size_t len = 0; len < n; len++) {
        back = (bm25 *)1;
        int rc = bm25_deserialize(NULL, buf_slice_of(b.ptr, len), &back);
        if (rc != DM_ECORRUPT)
            fail_msg("truncated to %zu: %s", len, dm_errname(rc));
        assert_null(back);
        assert_non_null(strstr(err_last_msg(), "offset"));
    }
    /* Appended garbage. */
    memcpy(m, b.ptr, n);
    uint8_t *big = malloc(n + 1);
    memcpy(big, b.ptr, n);
    big[n] = 0;
    assert_int_equal(bm25_deserialize(NULL, buf_slice_of(big, n + 1), &back),
                     DM_ECORRUPT);
    free(big);
    /* Every single-bit flip. */
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(m, b.ptr, n);
            m[i] ^= (uint8_t)(1u << bit);
            int rc = bm25_deserialize(NULL, buf_slice_of(m, n), &back);
            if (rc != DM_ECORRUPT)
                fail_msg("bit %d of byte %zu: %s", bit, i, dm_errname(rc));
        }
    }
    /* A sound envelope with another version. */
    memcpy(m, b.ptr, n);
    enc_u32(m + BM25_OFF_VERSION, 2);
    recrc(m, n);
    assert_int_equal(bm25_deserialize(NULL, buf_slice_of(m, n), &back),
                     DM_EVERSION);
    /* Body damage behind a valid checksum: every byte set to several
     * values.  Anything accepted must be a consistent index. */
    static const uint8_t vals[] = { 0x00, 0x01, 0x02, 0x7f, 0x80, 0xff };
    int accepted = 0;
    for (size_t i = BM25_HEADER_LEN; i < n - BM25_TRAILER_LEN; i++) {
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(m, b.ptr, n);
            if (m[i] == vals[v])
                continue;
            m[i] = vals[v];
            recrc(m, n);
            int rc = bm25_deserialize(NULL, buf_slice_of(m, n), &back);
            if (rc == DM_OK) {
                accepted++;
                assert_int_equal(bm25_check(back), DM_OK);
                bm25_free(back);
            } else if (rc != DM_ECORRUPT) {
                fail_msg("byte %zu = 0x%02x: %s", i, vals[v], dm_errname(rc));
            } else {
                assert_non_null(strstr(err_last_msg(), "offset"));
            }
        }
    }
    print_message("re-checksummed mutations accepted as valid: %d\n", accepted);
    /* Reserved field. */
    memcpy(m, b.ptr, n);
    m[BM25_OFF_RESERVED] = 1;
    recrc(m, n);
    assert_int_equal(bm25_deserialize(NULL, buf_slice_of(m, n), &back),
                     DM_ECORRUPT);
    free(m);
    buf_fini(&b);
    bm25_free(ix);
}

static void test_alloc_failure(void **state)
{
    corpus c;
    corpus_make(&c, 41, 300, 150);
    bm25 *ix;
    assert_int_equal(bm25_new(NULL, &ix), DM_OK);
    for (uint32_t d = 0; d < 200; d++)
        add(ix, d * 2, c.text[d]);
    buf ref;
    buf_init(&ref);
    assert_int_equal(bm25_serialize(ix, &ref), DM_OK);
    /* Adds (some into the middle of lists) under injected failures: each
     * either succeeds or leaves the index exactly as it was. */
    int n_fail = 0;
    for (uint32_t d = 200; d < 300; d++) {
        uint32_t doc = (d - 200) * 4 + 1;
        for (int64_t k = 1;; k++) {
            alloc_fail_after(k, 0);
            int rc = bm25_add(ix, doc, c.text[d], strlen(c.text[d]));
            alloc_fail_after(0, 0);
            if (rc == DM_OK)
                break;
            assert_int_equal(rc, DM_ENOMEM);
            n_fail++;
            buf now;
            buf_init(&now);
            assert_int_equal(bm25_serialize(ix, &now), DM_OK);
            assert_int_equal(now.len, ref.len);
            assert_memory_equal(now.ptr, ref.ptr, ref.len);
            buf_fini(&now);
        }
        buf_clear(&ref);
        assert_int_equal(bm25_serialize(ix, &ref), DM_OK);
    }
    assert_true(n_fail > 0);
    assert_int_equal(bm25_check(ix), DM_OK);
    /* Serialize, deserialize and search under failures. */
    for (int64_t k = 1; k < 400; k++) {
        buf b;
        buf_init(&b);
        alloc_fail_after(k, 0);
        int rc = bm25_serialize(ix, &b);
        alloc_fail_after(0, 0);
        assert_true(rc == DM_OK || rc == DM_ENOMEM);
        if (rc == DM_OK) {
            bm25 *back = NULL;
            alloc_fail_after(k, 0);
            rc = bm25_deserialize(NULL, buf_slice_of(b.ptr, b.len), &back);
            alloc_fail_after(0, 0);
            assert_true(rc == DM_OK || rc == DM_ENOMEM);
            if (rc == DM_OK)
                bm25_free(back);
            else
                assert_null(back);
        }
        bm25_hit h[10];
        uint32_t nh;
        alloc_fail_after(k, 0);
        rc = bm25_search(ix, c.text[7], strlen(c.text[7]), 10, NULL, NULL, h,
                         &nh);
        alloc_fail_after(0, 0);
        assert_true(rc == DM_OK || (rc == DM_ENOMEM && nh == 0));
        buf_fini(&b);
    }
    buf_fini(&ref);
    bm25_free(ix);
    corpus_free(&c);
}

/* Four threads search one index at once and must see the answers a single
 * thread saw. */
typedef struct conc {
    const bm25 *ix;
    const corpus *c;
    char (*queries)[256];
    bm25_hit (*want)[10];
    uint32_t *n_want;
    int n_queries;
    int errors;
} conc;

static void *conc_thread(void *arg)
{
    conc *x = arg;
    bm25_hit h[10];
    for (int rep = 0; rep < 3; rep++) {
        for (int i = 0; i < x->n_queries; i++) {
            uint32_t n;
            const char *q = x->queries[i];
            if (bm25_search(x->ix, q, strlen(q), 10, NULL, NULL, h, &n) ||
                n != x->n_want[i] ||
                memcmp(h, x->want[i], n * sizeof *h) != 0)
                __atomic_add_fetch(&x->errors, 1, __ATOMIC_RELAXED);
        }
    }
    return NULL;
}

static void test_concurrent_search(void **state)
{
    corpus c;
    corpus_make(&c, 51, 1000, 300);
    tu_rng r;
    tu_rng_seed(&r, 52);
    bm25 *ix = corpus_index(&c, &r, NULL);
    enum { NQ = 100, NT = 4 };
    static char queries[NQ][256];
    static bm25_hit want[NQ][10];
    static uint32_t n_want[NQ];
    for (int i = 0; i < NQ; i++) {
        make_query(&r, &c, queries[i], sizeof queries[i]);
        assert_int_equal(bm25_search(ix, queries[i], strlen(queries[i]), 10,
                                     NULL, NULL, want[i], &n_want[i]), DM_OK);
    }
    conc x = { ix, &c, queries, want, n_want, NQ, 0 };
    pthread_t th[NT];
    for (int i = 0; i < NT; i++)
        assert_int_equal(pthread_create(&th[i], NULL, conc_thread, &x), 0);
    for (int i = 0; i < NT; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(x.errors, 0);
    bm25_free(ix);
    corpus_free(&c);
}

/* ----------------------------------------------- strategies (windows) */

/* A small-vocabulary corpus: generated sentences whose words all recur
 * (every query visits most of its postings, the term-at-a-time case). */
static const char *const g_names[] = { "Ann", "Bob", "Carla", "Dev", "Emma",
                                       "Farid", "Grace", "Hiro", "Ines" };
static const char *const g_verbs[] = { "visited", "cooked", "painted",
                                       "read about", "talked about",
                                       "planned", "fixed", "wrote about" };
static const char *const g_objects[] = {
    "a birthday cake", "the old bicycle", "a trip to Lisbon",
    "the garden shed", "a new laptop", "a jazz concert", "the tax forms",
    "a sushi dinner", "the wedding photos", "a python script",
    "the piano lessons", "a surprise party", "the vegetable soup",
    "a birthday party at the garden" };
static const char *const g_places[] = { "at home", "in the city",
                                        "with her sister", "near the beach",
                                        "at the library", "online" };
static const char *const g_whens[] = { "on Monday", "last weekend",
                                       "yesterday", "on her birthday",
                                       "last night", "in the spring" };
#define PICK(r, a) ((a)[tu_randn((r), sizeof(a) / sizeof *(a))])

static void make_sentence(tu_rng *r, char *out, size_t cap)
{
    snprintf(out, cap, "%s %s %s %s %s.", PICK(r, g_names), PICK(r, g_verbs),
             PICK(r, g_objects), PICK(r, g_places), PICK(r, g_whens));
}

/* A part of a sentence: one to three of its five phrases. */
static void make_fragment(tu_rng *r, char *out, size_t cap)
{
    const char *ph[5] = { PICK(r, g_names), PICK(r, g_verbs),
                          PICK(r, g_objects), PICK(r, g_places),
                          PICK(r, g_whens) };
    uint32_t n = 1 + (uint32_t)tu_randn(r, 3);
    size_t len = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? " " : "",
                                ph[tu_randn(r, 5)]);
}

/* brute_all -- every scored document passing f, best first (the exact
 * order bm25_search must follow), through bm25_score_many. */
static uint32_t brute_all(const bm25 *ix, const uint32_t *docs, uint32_t n,
                          const char *q, ix_filter_fn f, void *arg,
                          bm25_hit *out)
{
    float *sc = malloc((n + 1) * sizeof *sc);
    assert_non_null(sc);
    assert_int_equal(bm25_score_many(ix, q, strlen(q), docs, n, sc), DM_OK);
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++)
        if (sc[i] > 0 && (!f || f(arg, docs[i])))
            out[m++] = (bm25_hit){ docs[i], sc[i] };
    qsort(out, m, sizeof *out, cmp_hit_desc);
    free(sc);
    return m;
}

static bool keep_not_div5(void *arg, uint32_t doc)
{
    (*(int *)arg)++;
    return doc % 5 != 0;
}

/*
 * strategies_run -- index texts[i] as document docs[i] (in a shuffled
 * order), delete every ninth, then for each query: the three strategies
 * give identical hits for several k, with and without a filter, and every
 * fourth query is also checked against brute force.
 */
static void strategies_run(char **texts, const uint32_t *docs, uint32_t n,
                           char **queries, uint32_t n_queries, uint64_t seed)
{
    tu_rng r;
    tu_rng_seed(&r, seed);
    bm25 *ix;
    assert_int_equal(bm25_new(NULL, &ix), DM_OK);
    uint32_t *perm = malloc(n * sizeof *perm);
    uint32_t *live = malloc(n * sizeof *live);
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)tu_randn(&r, i), t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    for (uint32_t i = 0; i < n; i++)
        add(ix, docs[perm[i]], texts[perm[i]]);
    uint32_t n_live = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i % 9 == 4)
            assert_int_equal(bm25_delete(ix, docs[i], texts[i],
                                         strlen(texts[i])), DM_OK);
        else
            live[n_live++] = docs[i];
    }
    assert_int_equal(bm25_check(ix), DM_OK);

    static const uint32_t ks[] = { 1, 7, 20, 100 };
    bm25_hit *all = malloc((n_live + 1) * sizeof *all);
    bm25_hit got[3][100];
    for (uint32_t qi = 0; qi < n_queries; qi++) {
        const char *q = queries[qi];
        for (int use_filter = 0; use_filter < 2; use_filter++) {
            ix_filter_fn f = use_filter ? keep_not_div5 : NULL;
            int calls = 0;
            uint32_t n_all = qi % 4 ? 0 : brute_all(ix, live, n_live, q, f,
                                                    &calls, all);
            for (uint32_t ki = 0; ki < 4; ki++) {
                uint32_t k = ks[ki], ng[3];
                for (int st = 0; st < 3; st++) {
                    bm25_set_strategy(ix, (bm25_strategy)st);
                    assert_int_equal(bm25_search(ix, q, strlen(q), k, f,
                                                 &calls, got[st], &ng[st]),
                                     DM_OK);
                    for (uint32_t j = 0; use_filter && j < ng[st]; j++)
                        assert_true(got[st][j].doc % 5 != 0);
                }
                expect_same(got[BM25_STRATEGY_AUTO], ng[0],
                            got[BM25_STRATEGY_MAXSCORE], ng[1], q);
                expect_same(got[BM25_STRATEGY_WINDOW], ng[2],
                            got[BM25_STRATEGY_MAXSCORE], ng[1], q);
                if (qi % 4 == 0)
                    expect_same(got[BM25_STRATEGY_WINDOW], ng[2], all,
                                n_all < k ? n_all : k, q);
            }
        }
    }
    bm25_set_strategy(ix, BM25_STRATEGY_AUTO);
    free(all);
    free(live);
    free(perm);
    bm25_free(ix);
}

static void test_strategies_small_vocabulary(void **state)
{
    /* 2,500 sentences numbered over 0..~37,500, so that the term-at-a-time
     * windows (8,192 numbers) number five and blocks straddle them. */
    enum { N = 2500, NQ = 40 };
    tu_rng r;
    tu_rng_seed(&r, 91);
    char **texts = malloc(N * sizeof *texts);
    uint32_t *docs = malloc(N * sizeof *docs);
    char line[256];
    for (uint32_t i = 0; i < N; i++) {
        make_sentence(&r, line, sizeof line);
        texts[i] = strdup(line);
        docs[i] = i * 15 + (uint32_t)tu_randn(&r, 15);
    }
    char *queries[NQ];
    for (uint32_t i = 0; i < NQ; i++) {
        if (i % 3 == 2)
            make_fragment(&r, line, sizeof line);
        else
            make_sentence(&r, line, sizeof line);
        queries[i] = strdup(line);
    }
    strategies_run(texts, docs, N, queries, NQ, 92);
    for (uint32_t i = 0; i < N; i++)
        free(texts[i]);
    for (uint32_t i = 0; i < NQ; i++)
        free(queries[i]);
    free(texts);
    free(docs);
}

static void test_strategies_zipf(void **state)
{
    /* The Zipf-like corpus, numbered densely (one window) and sparsely. */
    enum { N = 2500, NQ = 40 };
    corpus c;
    corpus_make(&c, 93, N, 1500);
    tu_rng r;
    tu_rng_seed(&r, 94);
    uint32_t *docs = malloc(N * sizeof *docs);
    char *queries[NQ];
    char q[256];
    for (uint32_t i = 0; i < NQ; i++) {
        make_query(&r, &c, q, sizeof q);
        queries[i] = strdup(q);
    }
    for (uint32_t i = 0; i < N; i++)
        docs[i] = i;
    strategies_run(c.text, docs, N, queries, NQ, 95);
    for (uint32_t i = 0; i < N; i++)
        docs[i] = i * 9 + 5;
    strategies_run(c.text, docs, N, queries, NQ, 96);
    for (uint32_t i = 0; i < NQ; i++)
        free(queries[i]);
    free(docs);
    corpus_free(&c);
}

/* Out of memory, a search either fails before calling the filter or
 * succeeds with the full answer (the window accumulator is optional). */
static void test_strategies_alloc_failure(void **state)
{
    enum { N = 1500 };
    tu_rng r;
    tu_rng_seed(&r, 97);
    bm25 *ix;
    assert_int_equal(bm25_new(NULL, &ix), DM_OK);
    char line[256];
    for (uint32_t i = 0; i < N; i++) {
        make_sentence(&r, line, sizeof line);
        add(ix, i * 11, line);
    }
    make_sentence(&r, line, sizeof line);
    bm25_hit want[20], got[20];
    uint32_t nw, ng;
    int calls = 0;
    assert_int_equal(bm25_search(ix, line, strlen(line), 20, keep_not_div5,
                                 &calls, want, &nw), DM_OK);
    assert_int_equal(nw, 20);
    int n_ok_after_fail = 0;
    for (int st = 0; st < 3; st++) {
        bm25_set_strategy(ix, (bm25_strategy)st);
        for (int64_t k = 1; k < 12; k++) {
            calls = 0;
            alloc_fail_after(k, 1);
            int64_t before = alloc_failures();
            int rc = bm25_search(ix, line, strlen(line), 20, keep_not_div5,
                                 &calls, got, &ng);
            int failed = alloc_failures() != before;
            alloc_fail_after(0, 0);
            if (rc == DM_ENOMEM) {
                assert_int_equal(ng, 0);
                assert_int_equal(calls, 0);
                continue;
            }
            assert_int_equal(rc, DM_OK);
            expect_same(got, ng, want, nw, line);
            n_ok_after_fail += failed;
        }
    }
    /* Some run lost only the accumulator and fell back to MaxScore. */
    assert_true(n_ok_after_fail > 0);
    bm25_free(ix);
}

/* Term-at-a-time searches share nothing between threads either. */
static void test_concurrent_window_search(void **state)
{
    enum { N = 3000, NQ = 30, NT = 4 };
    tu_rng r;
    tu_rng_seed(&r, 98);
    bm25 *ix;
    assert_int_equal(bm25_new(NULL, &ix), DM_OK);
    char line[256];
    for (uint32_t i = 0; i < N; i++) {
        make_sentence(&r, line, sizeof line);
        add(ix, i * 7, line);
    }
    static char queries[NQ][256];
    static bm25_hit want[NQ][10];
    static uint32_t n_want[NQ];
    for (int i = 0; i < NQ; i++) {
        make_sentence(&r, queries[i], sizeof queries[i]);
        assert_int_equal(bm25_search(ix, queries[i], strlen(queries[i]), 10,
                                     NULL, NULL, want[i], &n_want[i]), DM_OK);
    }
    conc x = { ix, NULL, queries, want, n_want, NQ, 0 };
    pthread_t th[NT];
    for (int i = 0; i < NT; i++)
        assert_int_equal(pthread_create(&th[i], NULL, conc_thread, &x), 0);
    for (int i = 0; i < NT; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(x.errors, 0);
    bm25_free(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_analyzer),
        cmocka_unit_test(test_hand_computed),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_maxscore_equals_brute_force),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_delete_readd),
        cmocka_unit_test(test_long_lists),
        cmocka_unit_test(test_serialize_round_trip),
        cmocka_unit_test(test_format_example),
        cmocka_unit_test(test_corrupt_checkpoints),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_concurrent_search),
        cmocka_unit_test(test_strategies_small_vocabulary),
        cmocka_unit_test(test_strategies_zipf),
        cmocka_unit_test(test_strategies_alloc_failure),
        cmocka_unit_test(test_concurrent_window_search),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
