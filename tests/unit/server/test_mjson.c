/*
 * test_mjson.c -- number formatting of src/server/mjson.c: a float field
 * prints with the fewest digits that read back to the same float (0.01,
 * not 0.00999999977), across magnitudes, signs and the ranges taken by
 * arithmetic and by text; a metadata double that needs 17 digits keeps
 * them.
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

#include <cmocka.h>

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
    char s[64];
    dump_float(f, s, sizeof s);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
