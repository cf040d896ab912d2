/*
 * test_tokenize.c -- the shared word tokenizer: punctuation, case,
 * contractions, hyphenated compounds, numbers, Unicode normalization (NFKC +
 * case folding), CJK, emoji, invalid UTF-8, source offsets, long inputs and
 * allocation failure.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "base/alloc.h"
#include "base/err.h"
#include "embed/tokenize.h"

/*
 * render -- the tokens as one string: a word as itself, a compound as
 * "x=", a part as "+x", a clitic as "~x", separated by single spaces.
 */
static char *render(const tok_list *l)
{
    static char out[8192];
    size_t n = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < l->n; i++) {
        const char *pre = "", *post = "";
        switch (l->toks[i].kind) {
        case TOK_COMPOUND: post = "="; break;
        case TOK_PART: pre = "+"; break;
        case TOK_CLITIC: pre = "~"; break;
        default: break;
        }
        assert_int_equal(strlen(tok_str(l, i)), l->toks[i].len);
        assert_true(l->toks[i].len > 0);
        n += (size_t)snprintf(out + n, sizeof out - n, "%s%s%s%s",
                              i ? " " : "", pre, tok_str(l, i), post);
        assert_true(n < sizeof out);
    }
    return out;
}

static void expect(const char *in, const char *want)
{
    tok_list l;
    tok_list_init(&l);
    int rc = tok_text(in, strlen(in), &l);
    if (rc != DM_OK)
        fail_msg("tok_text(\"%s\") = %s: %s", in, dm_errname(rc),
                 err_last_msg());
    const char *got = render(&l);
    if (strcmp(got, want) != 0)
        fail_msg("tok_text(\"%s\")\n  got  \"%s\"\n  want \"%s\"", in, got,
                 want);
    tok_list_fini(&l);
}

static void test_punctuation_and_case(void **state)
{
    expect("", "");
    expect("   ", "");
    expect("Hello, World!", "hello world");
    expect("HeLLo\tWORLD\n(again)", "hello world again");
    expect("e-mail: bob@example.com; #tag", "e-mail= +e +mail bob example com tag");
    expect("a.b a_b a/b \"quoted\" [x]", "a b a b a b quoted x");
    expect("end. Next", "end next");
    expect("...wait...", "wait");
    expect("x", "x");
}

static void test_contractions(void **state)
{
    expect("Don't stop", "do ~n't stop");
    expect("DON'T", "do ~n't");
    expect("can't won't", "ca ~n't wo ~n't");
    expect("John's car", "john ~'s car");
    expect("John\u2019s car", "john ~'s car");
    expect("we're they've I'll she'd I'm", "we ~'re they ~'ve i ~'ll she ~'d i ~'m");
    expect("we\u2019re", "we ~'re");
    expect("o'neil", "o'neil");
    expect("O\u2019Neil's", "o'neil ~'s");
    expect("rock'n'roll", "rock'n'roll");
    expect("'quoted' James' book", "quoted james book");
    expect("n't", "n't");
    expect("it's.", "it ~'s");
    expect("x's", "x ~'s");
}

static void test_hyphens(void **state)
{
    expect("well-known", "well-known= +well +known");
    expect("Well-Known fact", "well-known= +well +known fact");
    expect("state\u2010of\u2011the-art", "state-of-the-art= +state +of +the +art");
    expect("mother-in-law's", "mother-in-law= +mother +in +law ~'s");
    expect("a--b -x- y-", "a b x y");
    expect("1.5-2.0", "1.5-2.0= +1.5 +2.0");
    expect("don't-care", "don't-care= +don't +care");
    expect("x-ray's", "x-ray= +x +ray ~'s");
}

static void test_numbers(void **state)
{
    expect("3.5 and 1,000", "3.5 and 1,000");
    expect("pi is 3.14159, e is 2.718.", "pi is 3.14159 e is 2.718");
    expect("1,000,000.50", "1,000,000.50");
    expect("1,a a,1 1. 2", "1 a a 1 1 2");
    expect("v1.2.3 $5 10%", "v1.2.3 5 10");
    expect("\uFF13\uFF0E\uFF15", "3.5"); /* full-width digits and stop */
    expect("\u0663.\u0665", "\u0663.\u0665"); /* Arabic-Indic digits */
}

static void test_unicode(void **state)
{
    expect("Caf\u00e9 \u00dcBER na\u00efve", "caf\u00e9 \u00fcber na\u00efve");
    /* Decomposed input composes to the same bytes. */
    expect("Cafe\u0301", "caf\u00e9");
    expect("Stra\u00dfe STRASSE", "strasse strasse");
    expect("\u1E9E", "ss"); /* capital sharp s */
    expect("\uFB01ne", "fine"); /* ligature */
    expect("\uFF21\uFF22\uFF23\uFF11\uFF12\uFF13", "abc123");
    expect("\u0391\u03b8\u03ae\u03bd\u03b1", "\u03b1\u03b8\u03ae\u03bd\u03b1");
    expect("\u041c\u043e\u0441\u043a\u0432\u0430", "\u043c\u043e\u0441\u043a\u0432\u0430");
    expect("x\u00b2", "x2"); /* superscript two is a digit after NFKC */
    expect("\u2474", "1"); /* "(1)" after NFKC: the parentheses cut */
    expect("\u0301abc", "abc"); /* a leading mark is dropped */
}

static void test_cjk(void **state)
{
    expect("\u6211\u5b66\u4e60\u4e2d\u6587",
           "\u6211 \u5b66 \u4e60 \u4e2d \u6587");
    expect("abc\u4e2d\u6587def", "abc \u4e2d \u6587 def");
    expect("\u3072\u3089\u304c\u306a", "\u3072 \u3089 \u304c \u306a");
    /* Hiragana + combining voiced mark composes and stays one token. */
    expect("\u304b\u3099", "\u304c");
    expect("\u30ab\u30bf\u30ab\u30ca", "\u30ab\u30bf\u30ab\u30ca");
    expect("\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
           "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8");
    /* Conjoining jamo compose into a syllable. */
    expect("\u1112\u1161\u11ab", "\ud55c");
    expect("\u4e2d\u6587\u3002\u82f1\u8bed", "\u4e2d \u6587 \u82f1 \u8bed");
}

static void test_emoji(void **state)
{
    expect("I\u2764\ufe0fNY", "i ny");
    expect("\U0001F389party\U0001F44D\U0001F3FDok", "party ok");
    expect("1\ufe0f\u20e3 go", "1 go");
    expect("\U0001F468\u200d\U0001F469\u200d\U0001F467 family", "family");
    expect("\U0001F1EB\U0001F1F7 flag", "flag");
}

static void expect_bad(const char *in, size_t len, size_t off)
{
    tok_list l;
    tok_list_init(&l);
    /* Leave old tokens in the list: an error must clear them. */
    assert_int_equal(tok_text("old words", 9, &l), DM_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(tok_text(in, len, &l), DM_EINVAL);
    assert_int_equal(l.n, 0);
    char want[32];
    snprintf(want, sizeof want, "byte %zu ", off);
    if (!strstr(err_last_msg(), want))
        fail_msg("message \"%s\" does not name %s", err_last_msg(), want);
    size_t bad = 999;
    assert_int_equal(tok_utf8_valid(in, len, &bad), 0);
    assert_int_equal(bad, off);
    tok_list_fini(&l);
}

static void test_invalid_utf8(void **state)
{
    expect_bad("abc\xff" "def", 7, 3);
    expect_bad("\x80", 1, 0);
    expect_bad("ok \xc0\xaf", 5, 3);          /* overlong '/' */
    expect_bad("ok \xe0\x80\xaf", 6, 3);      /* overlong, 3 bytes */
    expect_bad("ok \xf0\x80\x80\xaf", 7, 3);  /* overlong, 4 bytes */
    expect_bad("\xed\xa0\x80", 3, 0);         /* surrogate U+D800 */
    expect_bad("xy\xf4\x90\x80\x80", 6, 2);   /* above U+10FFFF */
    expect_bad("ab\xe2\x82", 4, 2);           /* truncated */
    expect_bad("ab\xe2" "A" "\x82", 5, 2);    /* bad continuation */
    expect_bad("0123456789abcdef\xc3", 17, 16); /* after the 8-byte skip */

    size_t bad = 7;
    assert_int_equal(tok_utf8_valid("", 0, &bad), 1);
    assert_int_equal(bad, 0);
    assert_int_equal(tok_utf8_valid("\xf4\x8f\xbf\xbf", 4, NULL), 1);
    assert_int_equal(tok_utf8_valid("\xef\xbf\xbf\xed\x9f\xbf", 6, NULL), 1);
    assert_int_equal(tok_utf8_valid("a\0b", 3, NULL), 1);
    /* A NUL byte is valid UTF-8 and separates words. */
    tok_list l;
    tok_list_init(&l);
    assert_int_equal(tok_text("a\0b", 3, &l), DM_OK);
    assert_string_equal(render(&l), "a b");
    assert_int_equal(tok_text(NULL, 0, &l), DM_OK);
    assert_int_equal(l.n, 0);
    tok_list_fini(&l);
}

static void test_source_offsets(void **state)
{
    const char *in = "  Don't x \u00e9t\u00e9-well's \u4e2d\u6587";
    tok_list l;
    tok_list_init(&l);
    assert_int_equal(tok_text(in, strlen(in), &l), DM_OK);
    assert_string_equal(render(&l), "do ~n't x \u00e9t\u00e9-well= +\u00e9t\u00e9 +well ~'s \u4e2d \u6587");
    uint32_t want[] = { 2, 4, 8, 10, 10, 16, 20, 23, 26 };
    assert_int_equal(l.n, sizeof want / sizeof *want);
    for (uint32_t i = 0; i < l.n; i++)
        assert_int_equal(l.toks[i].src_off, want[i]);
    assert_int_equal(l.toks[1].kind, TOK_CLITIC);
    assert_int_equal(l.toks[3].kind, TOK_COMPOUND);
    assert_int_equal(l.toks[4].kind, TOK_PART);
    assert_int_equal(l.toks[0].kind, TOK_WORD);
    tok_list_fini(&l);
}

/* Every word's text equals utf8proc_map with the documented options. */
static void test_matches_utf8proc_map(void **state)
{
    static const char *const words[] = {
        "Caf\u00e9", "Cafe\u0301", "STRA\u00dfE", "\u0130stanbul",
        "\uFB03x", "\u2163", "\u00c5ngstr\u00f6m", "\u212b", "\u0399\u0301",
        "\u1f88", "\uff76\uff9e", "M\u0326\u0301\u0300",
    };
    tok_list l;
    tok_list_init(&l);
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
        utf8proc_uint8_t *m = NULL;
        utf8proc_ssize_t n = utf8proc_map(
            (const utf8proc_uint8_t *)words[i], (utf8proc_ssize_t)strlen(words[i]), &m,
            UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD);
        assert_true(n > 0);
        assert_int_equal(tok_text(words[i], strlen(words[i]), &l), DM_OK);
        assert_int_equal(l.n, 1);
        if (strcmp(tok_str(&l, 0), (const char *)m) != 0)
            fail_msg("word %zu: got \"%s\" want \"%s\"", i, tok_str(&l, 0), m);
        free(m);
    }
    tok_list_fini(&l);
}

static void test_long_inputs(void **state)
{
    /* A compound of 500 parts overflows every stack scratch array. */
    size_t n = 500;
    char *in = malloc(n * 4);
    assert_non_null(in);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(in + len, "%s%c", i ? "-" : "", 'a' + (char)(i % 26));
    tok_list l;
    tok_list_init(&l);
    assert_int_equal(tok_text(in, len, &l), DM_OK);
    assert_int_equal(l.n, n + 1);
    assert_int_equal(l.toks[0].kind, TOK_COMPOUND);
    assert_int_equal(l.toks[0].len, len);
    free(in);

    /* One 10,000-letter non-ASCII word: the code point buffer grows. */
    n = 5000;
    in = malloc(n * 2 + 16);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++)
        memcpy(in + 2 * i, "\u00c9", 2);
    assert_int_equal(tok_text(in, 2 * n, &l), DM_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.toks[0].len, 2 * n);
    assert_memory_equal(tok_str(&l, 0), "\u00e9\u00e9", 4);
    free(in);

    /* Many tokens: the list grows. */
    n = 20000;
    in = malloc(n * 6);
    assert_non_null(in);
    len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(in + len, "w%zu ", i % 1000);
    assert_int_equal(tok_text(in, len, &l), DM_OK);
    assert_int_equal(l.n, n);
    assert_string_equal(tok_str(&l, 1234), "w234");
    free(in);
    tok_list_fini(&l);
}

static void test_alloc_failure(void **state)
{
    const char *in = "Well-known caf\u00e9s don't close; \u4e2d\u6587 3.5 "
                     "and 1,000 more words to make the list grow past its "
                     "first allocation of sixteen tokens, surely by now.";
    int64_t before = alloc_bytes_in_use();
    int saw_oom = 0, saw_ok = 0;
    for (int64_t k = 1; k < 20 && !saw_ok; k++) {
        tok_list l;
        tok_list_init(&l);
        alloc_fail_after(k, 0);
        int rc = tok_text(in, strlen(in), &l);
        alloc_fail_after(0, 0);
        if (rc == DM_ENOMEM) {
            saw_oom = 1;
            assert_int_equal(l.n, 0);
        } else {
            assert_int_equal(rc, DM_OK);
            saw_ok = 1;
        }
        tok_list_fini(&l);
        assert_int_equal(alloc_bytes_in_use(), before);
    }
    assert_true(saw_oom && saw_ok);
}

/* Random strings of troublesome pieces: no crash, and every token is
 * non-empty, NUL-terminated, valid UTF-8 and points into the input. */
static void test_random_inputs(void **state)
{
    static const char *const pieces[] = {
        "a", "Z", "7", "'", "-", ".", ",", " ", "\u00e9", "\u0301", "\u00df",
        "\u4e2d", "\U0001F600", "\u2019", "\u2010", "\uFF21", "\u2474", "\u00bd",
        "\ufe0f", "\u200d", "s", "t", "n", "\u3099", "\u1112", "\u1161", "\t",
        "\u0663", "\uFF0E", "ll",
    };
    size_t n_pieces = sizeof pieces / sizeof *pieces;
    tu_rng r;
    tu_rng_seed(&r, 99);
    tok_list l;
    tok_list_init(&l);
    char in[512];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = 0, n = 1 + tu_randn(&r, 40);
        for (size_t i = 0; i < n; i++) {
            const char *p = pieces[tu_randn(&r, n_pieces)];
            size_t pl = strlen(p);
            memcpy(in + len, p, pl);
            len += pl;
        }
        assert_int_equal(tok_text(in, len, &l), DM_OK);
        for (uint32_t i = 0; i < l.n; i++) {
            const tok_token *t = &l.toks[i];
            assert_true(t->len > 0);
            assert_true(t->off + t->len < l.text_len + 1);
            assert_int_equal(l.text[t->off + t->len], '\0');
            assert_int_equal(strlen(tok_str(&l, i)), t->len);
            assert_true(tok_utf8_valid(tok_str(&l, i), t->len, NULL));
            assert_true(t->src_off < len);
            assert_true(t->kind <= TOK_CLITIC);
            if (i > 0)
                assert_true(t->src_off >= l.toks[i - 1].src_off);
        }
    }
    tok_list_fini(&l);
}

static void test_speed(void **state)
{
    const char *sent = "The quick brown fox jumps over the lazy dog, and "
                       "doesn't look back at the well-known 3.5 mile path.";
    tok_list l;
    tok_list_init(&l);
    int iters = 20000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < iters; i++)
        assert_int_equal(tok_text(sent, strlen(sent), &l), DM_OK);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 +
                 (double)(b.tv_nsec - a.tv_nsec)) / iters;
    print_message("tokenize: %.0f ns per %zu-byte sentence (%u tokens)\n", ns,
                  strlen(sent), l.n);
    assert_int_equal(l.n, 22);
    tok_list_fini(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_punctuation_and_case),
        cmocka_unit_test(test_contractions),
        cmocka_unit_test(test_hyphens),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_unicode),
        cmocka_unit_test(test_cjk),
        cmocka_unit_test(test_emoji),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_source_offsets),
        cmocka_unit_test(test_matches_utf8proc_map),
        cmocka_unit_test(test_long_inputs),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_random_inputs),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
