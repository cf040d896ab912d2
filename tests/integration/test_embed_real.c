/*
 * test_embed_real.c -- the real built-in model file, when it has been
 * built (`make model` writes $DM_SOURCE_DIR/models/glove-6b-100d.dmm).
 *
 * Checks the converted GloVe vectors against the published values, a few
 * vocabulary facts the retrieval design relies on (everyday words known,
 * contraction pieces unknown), that related sentences land closer than
 * unrelated ones, and prints the embedding speed without asserting it.
 * Without the file every test prints a skip line and passes.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "embed/embed.h"
#include "embed/embed_int.h"

static char model_path[4096];
static embedder *emb;

static int setup(void **state)
{
    const char *src = getenv("DM_SOURCE_DIR");
    snprintf(model_path, sizeof model_path, "%s%smodels/glove-6b-100d.dmm",
             src ? src : "", src ? "/" : "");
    if (access(model_path, F_OK) != 0)
        return 0; /* the tests skip */
    int rc = embed_builtin_open(model_path, &emb);
    if (rc != DM_OK) {
        print_error("cannot open %s: %s\n", model_path, err_last_msg());
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    embedder_close(emb);
    emb = NULL;
    return 0;
}

#define NEED_MODEL()                                                           \
    do {                                                                       \
        if (!emb) {                                                            \
            print_message("skip: %s not built (run `make model`)\n",          \
                          model_path);                                         \
            skip();                                                            \
        }                                                                      \
    } while (0)

static void embed1(const char *text, float *out)
{
    size_t len = strlen(text);
    assert_int_equal(embedder_embed(emb, &text, &len, 1, out), DM_OK);
}

static double cosine(const char *a, const char *b)
{
    float x[100], y[100];
    embed1(a, x);
    embed1(b, y);
    double d = 0;
    for (int j = 0; j < 100; j++)
        d += (double)x[j] * y[j];
    return d;
}

static void test_identity_and_the_row(void **state)
{
    NEED_MODEL();
    assert_string_equal(embedder_name(emb), "builtin:glove-6b-100d-int8");
    assert_int_equal(embedder_dim(emb), 100);
    assert_int_equal(embed_builtin_n_words(emb), 341479);
    assert_int_equal(embed_builtin_lookup(emb, "the", 3), 0);
    float row[100], w;
    embed_builtin_row(emb, 0, row, &w);
    float mx = 0;
    for (int j = 0; j < 100; j++)
        mx = fmaxf(mx, fabsf(row[j]));
    /* int8 with one scale per row: each component within half a step. */
    float tol = mx / 127.0f / 2.0f + 1e-6f;
    const float want[3] = { -0.038194f, -0.24487f, 0.72812f };
    for (int j = 0; j < 3; j++)
        if (fabsf(row[j] - want[j]) > tol)
            fail_msg("the[%d] = %f, want %f +- %f", j, (double)row[j],
                     (double)want[j], (double)tol);
    /* The most frequent word gets the smallest SIF weight. */
    float w_rare;
    embed_builtin_row(emb, 300000, row, &w_rare);
    assert_true(w < 0.05f && w_rare > 0.99f);
}

static void test_vocabulary(void **state)
{
    NEED_MODEL();
    const char *known[] = { "wife", "birthday", "allergic", "deadline",
                            "python", "docker", "sqlite", "github",
                            "well-known" };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (embed_builtin_lookup(emb, known[i], strlen(known[i])) < 0)
            fail_msg("\"%s\" should be in the vocabulary", known[i]);
    const char *unknown[] = { "kubernetes", "chatgpt", "'s", "n't" };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        assert_int_equal(embed_builtin_lookup(emb, unknown[i], strlen(unknown[i])),
                         -1);
    /* The compound is used whole, its parts skipped. */
    assert_int_equal(embedder_known_words(emb, "well-known", 10), 1);
    assert_int_equal(embedder_known_words(emb, "John's wife didn't come", 23), 4);
}

static void test_related_closer(void **state)
{
    NEED_MODEL();
    static const char *const triples[][3] = {
        { "My wife loves hiking in the mountains.",
          "She enjoys climbing hills with her husband.",
          "The stock market fell sharply today." },
        { "I am allergic to peanuts.",
          "Nuts give me a bad allergic reaction.",
          "We deployed the new server on Friday." },
        { "The project deadline is next Friday.",
          "We must finish the work by the end of the week.",
          "My cat likes to sleep on the sofa." },
        { "I adopted a puppy from the shelter.",
          "We got a new dog last month.",
          "The database migration to SQLite failed." },
        { "We celebrated my daughter's birthday at the beach.",
          "Her birthday party was by the sea.",
          "I am learning to program in Python." },
    };
    for (size_t i = 0; i < sizeof triples / sizeof triples[0]; i++) {
        double rel = cosine(triples[i][0], triples[i][1]);
        double unrel = cosine(triples[i][0], triples[i][2]);
        print_message("triple %zu: related %.3f, unrelated %.3f\n", i, rel, unrel);
        assert_true(rel > unrel);
    }
    float v[100];
    embed1("Kubernetes ChatGPT", v);
    for (int j = 0; j < 100; j++)
        assert_true(v[j] == 0.0f);
    embed1("hello world", v);
    double n2 = 0;
    for (int j = 0; j < 100; j++)
        n2 += (double)v[j] * v[j];
    assert_true(fabs(n2 - 1.0) < 1e-5);
}

static void test_speed_report(void **state)
{
    NEED_MODEL();
    const char *t = "I went to the farmers market with my sister on Saturday "
                    "and we bought fresh strawberries and honey.";
    size_t len = strlen(t);
    float out[100];
    struct timespec a, b;
    int n = 2000;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++)
        assert_int_equal(embedder_embed(emb, &t, &len, 1, out), DM_OK);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us = ((double)(b.tv_sec - a.tv_sec) * 1e6 +
                 (double)(b.tv_nsec - a.tv_nsec) / 1e3) / n;
    print_message("embedding speed (not asserted; sanitizers slow it): "
                  "%.2f us per sentence\n", us);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_and_the_row),
        cmocka_unit_test(test_vocabulary),
        cmocka_unit_test(test_related_closer),
        cmocka_unit_test(test_speed_report),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
