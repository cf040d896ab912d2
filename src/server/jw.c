/*
 * jw.c -- the JSON text writer (jw.h) and the shortest text of a float32.
 */
#include "server/jw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "deltamemory.h"

/* ------------------------------------------------------------ floats */

/* The fewest significant digits (<= 9) that read back to f, by snprintf
 * and strtod: whether d digits read back is monotonic in d, so a binary
 * search over 1..9 finds them in three or four conversions. */
static double shortest_by_text(float f)
{
    char b[330]; /* room for any %g, whatever the compiler assumes of mid */
    int lo = 1, hi = 9;
    double best = (double)f;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        snprintf(b, sizeof b, "%.*g", mid, (double)f);
        double d = strtod(b, NULL);
        if ((float)d == f) {
            hi = mid;
            best = d;
        } else {
            lo = mid + 1;
        }
    }
    if (lo == 9) {
        snprintf(b, sizeof b, "%.9g", (double)f);
        best = strtod(b, NULL);
    }
    return best;
}

static const double p10[] = { 1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                              1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15 };

/*
 * The same by arithmetic, for |f| in [1e-6, 1e9) (scores, salience,
 * rates): f rounded to p significant digits is r * 10^-k with r an
 * integer; p = 6 first, since a float's nearest 6-digit decimal always
 * reads back to it when any shorter one does (FLT_DIG is 6), its trailing
 * zeros dropped give the fewest digits; else 7, 8, 9.  Every power of ten
 * used is exact in a double, so r / 10^k (or r * 10^-k) is the double
 * nearest the decimal.  No text conversion at all.  *r is |f|'s digits.
 */
static bool shortest_parts(float f, uint64_t *digits, int *k_out)
{
    double a = fabs((double)f);
    if (!(a >= 1e-6 && a < 1e9))
        return false;
    int e = (int)floor(log10(a)); /* a in [10^e, 10^(e+1)), give or take one */
    if (a < (e >= 0 ? p10[e] : 1 / p10[-e]))
        e--;
    else if (e + 1 <= 15 && a >= (e + 1 >= 0 ? p10[e + 1] : 1 / p10[-(e + 1)]))
        e++;
    for (int p = 6; p <= 9; p++) {
        int k = p - 1 - e; /* a * 10^k has p digits before the point */
        if (k < -15 || k > 15)
            return false;
        double r = nearbyint(k >= 0 ? a * p10[k] : a / p10[-k]);
        double d = k >= 0 ? r / p10[k] : r * p10[-k];
        if ((float)d == (float)a) {
            *digits = (uint64_t)r;
            *k_out = k;
            return true;
        }
    }
    return false;
}

double jw_float_shortest(float f)
{
    uint64_t r;
    int k;
    if (f == 0 || !isfinite(f))
        return (double)f;
    if (!shortest_parts(f, &r, &k))
        return shortest_by_text(f);
    double d = k >= 0 ? (double)r / p10[k] : (double)r * p10[-k];
    return f < 0 ? -d : d;
}

/* What jansson makes of "%.*g" text: a point or an exponent always (so
 * that it reads back as a real), no '+' and no leading zeros in the
 * exponent. */
static size_t jansson_real_form(char *s, size_t n)
{
    if (!memchr(s, '.', n) && !memchr(s, 'e', n)) {
        memcpy(s + n, ".0", 3);
        n += 2;
    }
    char *e = memchr(s, 'e', n);
    if (e) {
        char *start = e + 1, *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, n - (size_t)(end - s) + 1);
            n -= (size_t)(end - start);
        }
    }
    return n;
}

size_t jw_float_text(float f, char out[32])
{
    uint64_t r;
    int k;
    if (!isfinite(f))
        return 0;
    if (f == 0 || !shortest_parts(f, &r, &k)) {
        int n = snprintf(out, 32, "%.9g", jw_float_shortest(f));
        return jansson_real_form(out, (size_t)n);
    }
    /* r * 10^-k, as %.9g prints the double nearest it: r's digits without
     * its trailing zeros, in fixed notation when the leading digit's power
     * x is in [-4, 9), else d.ddde<x>. */
    char dg[24];
    int nd = 0;
    while (r && r % 10 == 0) {
        r /= 10;
        k--;
    }
    for (uint64_t t = r; t; t /= 10)
        dg[nd++] = (char)('0' + t % 10);
    for (int i = 0; i < nd / 2; i++) { /* most significant first */
        char c = dg[i];
        dg[i] = dg[nd - 1 - i];
        dg[nd - 1 - i] = c;
    }
    int x = nd - 1 - k;
    size_t n = 0;
    if (f < 0)
        out[n++] = '-';
    if (x < -4 || x >= 9) {
        out[n++] = dg[0];
        if (nd > 1) {
            out[n++] = '.';
            memcpy(out + n, dg + 1, (size_t)nd - 1);
            n += (size_t)nd - 1;
        }
        n += (size_t)snprintf(out + n, 32 - n, "e%d", x);
        return n;
    }
    if (x < 0) {
        out[n++] = '0';
        out[n++] = '.';
        for (int i = -1; i > x; i--)
            out[n++] = '0';
        memcpy(out + n, dg, (size_t)nd);
        return n + (size_t)nd;
    }
    for (int i = 0; i <= x; i++)
        out[n++] = i < nd ? dg[i] : '0';
    out[n++] = '.';
    if (nd > x + 1) {
        memcpy(out + n, dg + x + 1, (size_t)(nd - x - 1));
        n += (size_t)(nd - x - 1);
    } else {
        out[n++] = '0';
    }
    return n;
}

/* ------------------------------------------------------------ writer */

void jw_init(jw *w)
{
    memset(w, 0, sizeof *w);
    buf_init(&w->b);
    /* A search answer of ten memories is a few kilobytes: grow once. */
    if (buf_reserve(&w->b, 4096))
        w->why = "out of memory";
}

void jw_fini(jw *w)
{
    buf_fini(&w->b);
    w->why = "freed";
}

void jw_fail(jw *w, const char *why)
{
    if (!w->why)
        w->why = why;
}

static inline void put(jw *w, const void *p, size_t n)
{
    if (w->why)
        return;
    if (w->b.cap - w->b.len < n && buf_reserve(&w->b, n)) {
        w->why = "out of memory";
        return;
    }
    memcpy(w->b.ptr + w->b.len, p, n);
    w->b.len += n;
}

/* Before a value: the comma after the previous item of an array. */
static bool value_begin(jw *w)
{
    if (w->why)
        return false;
    if (w->after_key) {
        w->after_key = false;
        return true;
    }
    if (w->depth) {
        if (w->open[w->depth - 1] == '{') {
            jw_fail(w, "a value in an object without a key");
            return false;
        }
        if (w->any[w->depth - 1])
            put(w, ",", 1);
        w->any[w->depth - 1] = true;
    }
    return !w->why;
}

void jw_open(jw *w, char c)
{
    if (!value_begin(w))
        return;
    if (w->depth == JW_DEPTH) {
        jw_fail(w, "nested too deep");
        return;
    }
    w->open[w->depth] = c;
    w->any[w->depth++] = false;
    put(w, &c, 1);
}

void jw_close(jw *w, char c)
{
    if (w->why)
        return;
    if (!w->depth || w->after_key || w->open[w->depth - 1] != (c == '}' ? '{' : '[')) {
        jw_fail(w, "a container closed out of order");
        return;
    }
    w->depth--;
    put(w, &c, 1);
}

/* The escaped string, in quotes; false when s is not UTF-8. */
static bool put_string(jw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF"; /* as jansson writes it */
    const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
    if (buf_reserve(&w->b, n + 2)) {
        w->why = "out of memory";
        return true;
    }
    put(w, "\"", 1);
    while (p < end) {
        unsigned c = *p;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
            if (!len || (size_t)(end - p) < len)
                return false;
            uint32_t cp = c & (0xffu >> (len + 1));
            for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                    return false;
                cp = cp << 6 | (p[i] & 0x3f);
            }
            if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
                (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return false;
            p += len;
            continue;
        }
        put(w, run, (size_t)(p - run));
        char esc[6] = { '\\', 0 };
        size_t el = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        }
        put(w, esc, el);
        run = ++p;
    }
    put(w, run, (size_t)(p - run));
    put(w, "\"", 1);
    return true;
}

void jw_key(jw *w, const char *k)
{
    if (w->why)
        return;
    if (!w->depth || w->open[w->depth - 1] != '{' || w->after_key) {
        jw_fail(w, "a key outside an object");
        return;
    }
    size_t n = strlen(k), i = 0;
    while (i < n && (unsigned char)k[i] >= 0x20 && (unsigned char)k[i] < 0x80 && k[i] != '"' &&
           k[i] != '\\')
        i++;
    if (w->any[w->depth - 1])
        put(w, ",", 1);
    w->any[w->depth - 1] = true;
    if (i == n && n < 60) { /* the usual key: plain ASCII, as it is */
        char t[64];
        t[0] = '"';
        memcpy(t + 1, k, n);
        memcpy(t + 1 + n, "\":", 2);
        put(w, t, n + 3);
    } else {
        if (!put_string(w, k, n))
            jw_fail(w, "a key is not valid UTF-8");
        put(w, ":", 1);
    }
    w->after_key = true;
}

void jw_str(jw *w, const char *s, size_t n)
{
    if (value_begin(w) && !put_string(w, s, n))
        jw_fail(w, "a string is not valid UTF-8");
}

void jw_cstr(jw *w, const char *s)
{
    if (s)
        jw_str(w, s, strlen(s));
    else
        jw_null(w);
}

void jw_null(jw *w)
{
    if (value_begin(w))
        put(w, "null", 4);
}

void jw_bool(jw *w, bool v)
{
    if (value_begin(w))
        put(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_int(jw *w, int64_t v)
{
    char t[24];
    size_t n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do
        t[sizeof t - 1 - n++] = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        t[sizeof t - 1 - n++] = '-';
    if (value_begin(w))
        put(w, t + sizeof t - n, n);
}

void jw_float(jw *w, float f)
{
    char t[32];
    size_t n = jw_float_text(f, t);
    if (!n)
        jw_fail(w, "a number is not finite");
    else if (value_begin(w))
        put(w, t, n);
}

void jw_time(jw *w, int64_t us)
{
    char t[40];
    dm_time_format(us, t);
    jw_str(w, t, strlen(t));
}

void jw_raw(jw *w, const char *json, size_t n)
{
    if (value_begin(w))
        put(w, json, n);
}

char *jw_take(jw *w, size_t *len)
{
    if (!w->why && (w->depth || w->after_key))
        w->why = "a container left open";
    put(w, "", 1);
    if (w->why) {
        buf_fini(&w->b);
        return NULL;
    }
    char *s = (char *)w->b.ptr;
    *len = w->b.len - 1;
    buf_init(&w->b);
    w->why = "taken";
    return s;
}
