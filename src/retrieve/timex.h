/*
 * timex.h -- time expressions in a query, relative to a reference time.
 *
 * "yesterday", "last week", "in May 2023", "two months ago", "last
 * summer", "on my birthday" (when the birthday is known) become a time
 * window [from_us, to_us); "recently", "lately", "these days" become a
 * preference for recent memories.  Everything is computed on the UTC
 * calendar of the microsecond timestamps the engine stores (event times
 * given without a zone are stored as if they were UTC, so their calendar
 * fields are kept).  Weeks start on Monday; seasons are the northern
 * meteorological ones (summer = June to August).
 *
 * The parser is conservative: a word that is usually something else in a
 * question ("May I ...", "Summer's dog", "march in the parade", "the
 * second one") is not read as time.  Thread safety: pure functions.
 */
#ifndef DM_RETRIEVE_TIMEX_H
#define DM_RETRIEVE_TIMEX_H

#include <stddef.h>
#include <stdint.h>

typedef enum timex_kind {
    TIMEX_NONE = 0,   /* no time expression */
    TIMEX_WINDOW = 1, /* a calendar window: from_us <= t < to_us */
    TIMEX_RECENT = 2, /* "recently": prefer the newest memories */
} timex_kind;

typedef struct timex_ctx {
    int64_t ref_us;    /* the reference time ("now"), UTC microseconds */
    int birthday_month; /* 1..12, 0 = unknown ("on my birthday" then
                           does not parse) */
    int birthday_day;  /* 1..31 */
} timex_ctx;

typedef struct timex_expr { /* (not "struct timex": <time.h> has one) */
    timex_kind kind;
    int64_t from_us, to_us; /* TIMEX_WINDOW only; from_us < to_us */
    uint32_t span_off;      /* the matched expression: bytes of the query */
    uint32_t span_len;
    char label[64];         /* what was understood, for explanations, e.g.
                               "May 2023", "2023-05-01..2023-05-08",
                               "recent"; NUL-terminated */
} timex;

/*
 * timex_parse -- find the time expression of query (len bytes of UTF-8,
 * case-insensitive) relative to c.  With several, the most specific one
 * (the narrowest window) wins; a window beats "recently".  *out is always
 * filled (kind TIMEX_NONE when nothing parses).  A window that would end
 * after ref ("this week", "this year") is kept whole: the caller decides
 * whether the future part matters.
 * Errors: DM_EINVAL (query or c NULL).  Never fails on content.
 */
int timex_parse(const char *query, size_t len, const timex_ctx *c, timex *out);

#endif
