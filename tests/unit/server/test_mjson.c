/*
 * test_mjson.c -- number formatting of src/server/mjson.c: a float field
 * prints with the fewest digits that read back to the same float (0.01,
 * not 0.00999999977), across magnitudes, signs and the ranges taken by
 * arithmetic and by text; a metadata double that needs 17 digits keeps
 * them.  The JSON writer (src/server/jw.c) prints every float as
 * mjson_dumps does, escapes strings as jansson does, refuses what is not
 * UTF-8, places commas and checks nesting; times print as gmtime would.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "server/jw.h"
#include "server/mjson.h"

/* The document [f] as mjson_dumps prints it, without the brackets. */
static void dump_float(float f, char *out, size_t cap)
{
    json_t *a = json_pack("[o]", mjson_float(f));
    assert_non_null(a);
    char *s = mjson_dumps(a);
    assert_non_null(s);
    size_t n = strlen(s);
    assert_true(n >= 2 && n - 2 < cap);
    memcpy(out, s + 1, n - 2);
    out[n - 2] = 0;
    free(s);
    json_decref(a);
}

/* The fewest significant digits that read back to f, by brute force. */
static int fewest_digits(float f)
{
    char b[64];
    for (int p = 1; p <= 9; p++) {
        snprintf(b, sizeof b, "%.*g", p, (double)f);
        if ((float)strtod(b, NULL) == f)
            return p;
    }
    return 9;
}

static int digits_of(const char *s)
{
    int n = 0, lead = 1;
    for (; *s && *s != 'e' && *s != 'E'; s++) {
        if (*s < '0' || *s > '9')
            continue;
        if (lead && *s == '0')
            continue;
        lead = 0;
        n++;
    }
    /* "1.0" style: trailing zeros after the point are not significant. */
    return n;
}

static void check(float f)
{
    char s[64], w[32];
    dump_float(f, s, sizeof s);
    size_t wn = jw_float_text(f, w);
    if (wn != strlen(s) || memcmp(w, s, wn))
        fail_msg("%.9g: the writer prints %.*s, mjson_dumps %s", (double)f, (int)wn, w, s);
    float back = (float)strtod(s, NULL);
    if (back != f)
        fail_msg("%.9g printed as %s reads back as %.9g", (double)f, s, (double)back);
    char t[64];
    snprintf(t, sizeof t, "%s", s);
    /* Drop a ".0" that jansson appends to a whole number. */
    size_t n = strlen(t);
    if (n > 2 && !strcmp(t + n - 2, ".0"))
        t[n - 2] = 0;
    char *e = strpbrk(t, "eE");
    char mant[64];
    snprintf(mant, sizeof mant, "%.*s", e ? (int)(e - t) : (int)strlen(t), t);
    size_t m = strlen(mant);
    while (m > 1 && strchr(mant, '.') && mant[m - 1] == '0')
        mant[--m] = 0;
    int got = digits_of(mant), want = fewest_digits(f);
    /* Whole numbers print their zeros ("100"): count them as written. */
    if (!strchr(mant, '.') && !e)
        return;
    if (got != want)
        fail_msg("%.9g printed as %s: %d digits, %d would do", (double)f, s, got, want);
}

static void test_known(void **state)
{
    (void)state;
    char s[64];
    dump_float(0.01f, s, sizeof s);
    assert_string_equal(s, "0.01");
    dump_float(0.1f, s, sizeof s);
    assert_string_equal(s, "0.1");
    dump_float(1.0f, s, sizeof s);
    assert_string_equal(s, "1.0");
    dump_float(-0.5f, s, sizeof s);
    assert_string_equal(s, "-0.5");
    dump_float(0.0f, s, sizeof s);
    assert_string_equal(s, "0.0");
    dump_float(0.25f, s, sizeof s);
    assert_string_equal(s, "0.25");
    float odd[] = { FLT_MIN, FLT_MAX, 1e-7f, 9.9999999e-7f, 1e-6f, 999999999.0f, 1e9f,
                    3.4e38f, 1.17549449e-38f, 123456.789f, 0.30000001f, 16777216.0f };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        check(odd[i]);
        check(-odd[i]);
    }
}

static void test_many(void **state)
{
    (void)state;
    uint32_t x = 2463534242u;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        float f;
        switch (i % 4) {
        case 0: { /* any finite float */
            uint32_t b = x;
            memcpy(&f, &b, sizeof f);
            if (!isfinite(f))
                continue;
            break;
        }
        case 1: /* a score or a similarity */
            f = (float)(x / 4294967296.0);
            break;
        case 2: /* a value someone typed */
            f = (float)((x % 100000) / 1000.0);
            break;
        default: /* powers of ten and their neighbours */
            f = nextafterf((float)pow(10, (int)(x % 20) - 8), (x & 1) ? INFINITY : 0);
            break;
        }
        check(f);
    }
}

static uint32_t xorshift(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* A writer's document, taken; the writer must not have failed. */
static char *take(jw *w)
{
    size_t n;
    char *s = jw_take(w, &n);
    if (!s)
        fail_msg("writer failed: %s", w->why);
    assert_int_equal(strlen(s), n);
    return s;
}

static void test_writer(void **state)
{
    (void)state;
    jw w;
    jw_init(&w);
    jw_open(&w, '{');
    jw_key(&w, "a");
    jw_open(&w, '[');
    jw_int(&w, 0);
    jw_int(&w, INT64_MIN);
    jw_int(&w, INT64_MAX);
    jw_null(&w);
    jw_bool(&w, true);
    jw_float(&w, 0.25f);
    jw_open(&w, '{');
    jw_close(&w, '}');
    jw_open(&w, '[');
    jw_close(&w, ']');
    jw_close(&w, ']');
    jw_key(&w, "s");
    const char *mixed = "q\"b\\c\n\t\x01\x7f/\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    jw_str(&w, mixed, strlen(mixed));
    jw_key(&w, "m");
    jw_raw(&w, "{\"x\":[1,2]}", 11);
    jw_key(&w, "n");
    jw_cstr(&w, NULL);
    jw_close(&w, '}');
    char *s = take(&w);
    assert_string_equal(s, "{\"a\":[0,-9223372036854775808,9223372036854775807,null,true,0.25,"
                           "{},[]],\"s\":\"q\\\"b\\\\c\\n\\t\\u0001\x7f/\xc3\xa9\xe2\x82"
                           "\xac\xf0\x9f\x98\x80\",\"m\":{\"x\":[1,2]},\"n\":null}");
    dm_free(s);

    /* Strings escape as jansson escapes them. */
    uint32_t x = 88172645u;
    for (int i = 0; i < 20000; i++) {
        char t[24];
        size_t n = xorshift(&x) % sizeof t;
        for (size_t j = 0; j < n; j++) {
            uint32_t r = xorshift(&x) % 8;
            t[j] = r == 0 ? (char)(xorshift(&x) % 32) : r == 1 ? '"' : r == 2 ? '\\'
                                                                 : (char)('a' + r);
        }
        json_t *js = json_stringn(t, n);
        assert_non_null(js);
        char *want = json_dumps(js, JSON_ENCODE_ANY | JSON_COMPACT);
        jw_init(&w);
        jw_str(&w, t, n);
        char *got = take(&w);
        assert_string_equal(got, want);
        dm_free(got);
        free(want);
        json_decref(js);
    }

    /* Not UTF-8: overlong, a surrogate, past U+10FFFF, cut short, a stray
     * continuation byte. */
    static const char *const bad[] = { "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                       "ab\xe2\x82", "\x80" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        jw_init(&w);
        jw_open(&w, '[');
        jw_str(&w, bad[i], strlen(bad[i]));
        jw_close(&w, ']');
        size_t n;
        assert_null(jw_take(&w, &n));
        assert_string_equal(w.why, "a string is not valid UTF-8");
    }
    /* Misuse: a value in an object without its key, a wrong close, a
     * container left open, a number that is not finite. */
    jw_init(&w);
    jw_open(&w, '{');
    jw_int(&w, 1);
    assert_non_null(w.why);
    jw_fini(&w);
    jw_init(&w);
    jw_open(&w, '[');
    jw_close(&w, '}');
    assert_non_null(w.why);
    jw_fini(&w);
    jw_init(&w);
    jw_open(&w, '[');
    size_t n;
    assert_null(jw_take(&w, &n));
    jw_init(&w);
    jw_float(&w, NAN);
    assert_null(jw_take(&w, &n));
}

/* A memory written directly reads back as the tree mjson_memory builds. */
static void test_memory(void **state)
{
    (void)state;
    float emb[3] = { 0.1f, -2.5f, 1e-7f };
    dm_memory m = {
        .tenant = "t", .user_id = "u\u00e9", .role = "user", .text = "tab\there \"quoted\"",
        .text_len = 17, .event_time_us = 1692199800123456, .record_time_us = 1692199800000000,
        .salience = 0.45242f, .decay_rate = 0.01f, .access_count = 3, .last_access_us = 0,
        .metadata = "{\"k\":[1,\"v\",0.30000000000000004]}", .embedding = emb, .dim = 3,
    };
    m.id.bytes[0] = 0xab;
    jw w;
    jw_init(&w);
    jw_open(&w, '{');
    mjson_memory_write(&w, &m);
    jw_close(&w, '}');
    char *s = take(&w);
    json_error_t je;
    json_t *a = json_loads(s, 0, &je);
    if (!a)
        fail_msg("%s: %s", s, je.text);
    char err[128];
    json_t *b = mjson_memory(&m, err, sizeof err);
    assert_non_null(b);
    assert_true(json_equal(a, b));
    assert_string_equal(json_string_value(json_object_get(a, "time")), "2023-08-16T15:30:00.123456Z");
    assert_string_equal(json_string_value(json_object_get(a, "record_time")), "2023-08-16T15:30:00Z");
    assert_true(json_is_null(json_object_get(a, "last_access")));
    assert_true(strstr(s, "\"metadata\":{\"k\":[1,\"v\",0.30000000000000004]}") != NULL);
    assert_true(strstr(s, "\"embedding\":[0.1,-2.5,1e-7]") != NULL);
    dm_free(s);
    json_decref(a);
    json_decref(b);
    /* Text that is not UTF-8 fails the memory, with the reason. */
    m.text = "\xff";
    m.text_len = 1;
    assert_null(mjson_memory(&m, err, sizeof err));
    assert_string_equal(err, "a string is not valid UTF-8");
}

/* dm_time_format against gmtime over the years it prints by hand. */
static void test_times(void **state)
{
    (void)state;
    uint32_t x = 1234567u;
    for (int i = 0; i < 100000; i++) {
        int64_t secs = (int64_t)(((uint64_t)xorshift(&x) << 32 | xorshift(&x)) % 253402300800u);
        int64_t frac = i % 3 ? (int64_t)(xorshift(&x) % 1000000) : 0;
        char got[40], want[64];
        dm_time_format(secs * 1000000 + frac, got);
        time_t t = (time_t)secs;
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        int n = (int)strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
        if (tm.tm_year + 1900 < 1000) /* strftime does not pad the year */
            n = snprintf(want, sizeof want, "%04d%s", tm.tm_year + 1900, strchr(want, '-'));
        snprintf(want + n, sizeof want - (size_t)n, frac ? ".%06lldZ" : "Z", (long long)frac);
        assert_string_equal(got, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_writer),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
