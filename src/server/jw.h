/*
 * jw.h -- a JSON text writer: compact JSON appended straight to a buffer,
 * for the answers the server sends most (search results, memories), where
 * building a tree of values only to print it cost more than the search.
 *
 * The writer places commas and colons itself.  The first failure (out of
 * memory, a string that is not UTF-8, a number that is not finite,
 * containers nested deeper than JW_DEPTH or closed out of order) is kept
 * in w->why and every later call does nothing, so a caller checks once at
 * the end.  Strings are escaped as jansson escapes them (quote, backslash
 * and control characters; everything else as UTF-8), numbers are written
 * as mjson_dumps writes them, so a document reads back to the same values
 * whichever way it was built.  A jw belongs to one thread.
 */
#ifndef DM_SERVER_JW_H
#define DM_SERVER_JW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define JW_DEPTH 32

typedef struct jw {
    buf b;
    const char *why;   /* the first failure; NULL = none */
    uint32_t depth;
    char open[JW_DEPTH];   /* '{' or '[' per level */
    bool any[JW_DEPTH];    /* the container at that level has an item */
    bool after_key;        /* a key was written: its value comes next */
} jw;

void jw_init(jw *w);
void jw_fini(jw *w);

/* Containers: jw_open(w, '{') ... jw_close(w, '}'), and '[' ... ']'. */
void jw_open(jw *w, char c);
void jw_close(jw *w, char c);
/* An object's key (UTF-8); its value is the next call. */
void jw_key(jw *w, const char *k);

void jw_str(jw *w, const char *s, size_t n);
void jw_cstr(jw *w, const char *s);   /* NULL = null */
void jw_null(jw *w);
void jw_bool(jw *w, bool v);
void jw_int(jw *w, int64_t v);
/* The shortest decimal that reads back to f (mjson_float_text). */
void jw_float(jw *w, float f);
/* An ISO 8601 UTC time (dm_time_format). */
void jw_time(jw *w, int64_t us);
/* A value already in JSON, copied as it is: the caller vouches for it. */
void jw_raw(jw *w, const char *json, size_t n);
/* The shortest decimal (at most 9 significant digits) that reads back to
 * f, as a double (f itself when 0 or not finite), and as the text
 * mjson_dumps writes for it: "%.9g" of that double, with a point or an
 * exponent always and no '+' or leading zeros in the exponent.
 * jw_float_text returns the length, 0 for a non-finite f. */
double jw_float_shortest(float f);
size_t jw_float_text(float f, char out[32]);
/* Fail the document with a reason of the caller's (a static string). */
void jw_fail(jw *w, const char *why);

/* The text, NUL-terminated, dm_malloc'd and now the caller's; *len its
 * length.  NULL (the writer freed) when a call failed or a container is
 * still open: w->why says which. */
char *jw_take(jw *w, size_t *len);

#endif
