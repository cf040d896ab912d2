/*
 * test_timex.c -- query time expressions: a table of phrases with windows
 * worked out by hand for three reference times (mid-year, just after a
 * year boundary, the day after a leap day), phrases that must not parse,
 * spans, labels, the birthday context, long queries read in chunks,
 * argument errors, and random input that must keep the invariants.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "retrieve/timex.h"

/* ---- a small independent ISO parser for expected values ---------------- */

static int leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 by plain counting: slow, obvious, and unrelated to
 * the arithmetic under test. */
static long long count_days(long y, int mon, int d)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    long long z = 0;
    for (long k = 1970; k < y; k++)
        z += leap(k) ? 366 : 365;
    for (long k = y; k < 1970; k++)
        z -= leap(k) ? 366 : 365;
    for (int k = 1; k < mon; k++)
        z += mdays[k - 1] + (k == 2 && leap(y));
    return z + d - 1;
}

/* iso_us -- "YYYY-MM-DDTHH:MM:SS" with an optional ".ffffff". */
static int64_t iso_us(const char *s)
{
    long y;
    int mon, d, h, mi, sec, n = 0;
    if (sscanf(s, "%ld-%d-%dT%d:%d:%d%n", &y, &mon, &d, &h, &mi, &sec, &n) !=
        6)
        fail_msg("bad expected timestamp %s", s);
    int64_t us = (int64_t)count_days(y, mon, d) * INT64_C(86400000000) +
                 ((int64_t)h * 3600 + mi * 60 + sec) * INT64_C(1000000);
    if (s[n] == '.')
        us += strtol(s + n + 1, NULL, 10);
    return us;
}

/* ---- the table --------------------------------------------------------- */

#define R1 "2023-08-16T15:30:00" /* a Wednesday in summer */
#define R2 "2024-01-02T09:00:00" /* a Tuesday just after New Year */
#define R3 "2024-03-01T12:00:00" /* a Friday, the day after Feb 29 */

#define N TIMEX_NONE
#define W TIMEX_WINDOW
#define REC TIMEX_RECENT

typedef struct tcase {
    const char *ref;
    const char *q;
    timex_kind kind;
    const char *from, *to; /* TIMEX_WINDOW only */
} tcase;

static const tcase CASES[] = {
    /* everyday agent queries */
    {R1, "What did I eat yesterday", W, "2023-08-15T00:00:00", "2023-08-16T00:00:00"},
    {R1, "meetings last week", W, "2023-08-07T00:00:00", "2023-08-14T00:00:00"},
    {R1, "my trip in May 2023", W, "2023-05-01T00:00:00", "2023-06-01T00:00:00"},
    {R1, "what have I been up to recently", REC, NULL, NULL},
    {R1, "What did Melanie paint last summer?", W, "2022-06-01T00:00:00", "2022-09-01T00:00:00"},
    {R1, "What did John do two months ago?", W, "2023-06-01T00:00:00", "2023-07-01T00:00:00"},
    /* days and parts of days */
    {R1, "today", W, "2023-08-16T00:00:00", "2023-08-17T00:00:00"},
    {R1, "tonight", W, "2023-08-16T18:00:00", "2023-08-17T06:00:00"},
    {R1, "this morning", W, "2023-08-16T05:00:00", "2023-08-16T12:00:00"},
    {R1, "this afternoon", W, "2023-08-16T12:00:00", "2023-08-16T18:00:00"},
    {R1, "this evening", W, "2023-08-16T18:00:00", "2023-08-17T00:00:00"},
    {R1, "earlier today", W, "2023-08-16T00:00:00", "2023-08-16T15:30:00.000001"},
    {R1, "last night", W, "2023-08-15T18:00:00", "2023-08-16T06:00:00"},
    {R1, "the day before yesterday", W, "2023-08-14T00:00:00", "2023-08-15T00:00:00"},
    {R1, "tomorrow", W, "2023-08-17T00:00:00", "2023-08-18T00:00:00"},
    {R1, "yesterday morning", W, "2023-08-15T05:00:00", "2023-08-15T12:00:00"},
    {R1, "on Friday night", W, "2023-08-11T18:00:00", "2023-08-12T06:00:00"},
    {R1, "the other day", W, "2023-08-09T00:00:00", "2023-08-16T00:00:00"},
    /* N units ago */
    {R1, "3 days ago", W, "2023-08-13T00:00:00", "2023-08-14T00:00:00"},
    {R1, "two weeks ago", W, "2023-07-31T00:00:00", "2023-08-07T00:00:00"},
    {R1, "a year ago", W, "2022-01-01T00:00:00", "2023-01-01T00:00:00"},
    {R1, "a few days ago", W, "2023-08-09T00:00:00", "2023-08-16T00:00:00"},
    {R1, "a couple of days ago", W, "2023-08-14T00:00:00", "2023-08-15T00:00:00"},
    {R1, "an hour ago", W, "2023-08-16T14:00:00", "2023-08-16T15:00:00"},
    {R1, "5 minutes ago", REC, NULL, NULL},
    {R1, "Where did Caroline move from 4 years ago?", W, "2019-01-01T00:00:00", "2020-01-01T00:00:00"},
    /* calendar units relative to now */
    {R1, "this week", W, "2023-08-14T00:00:00", "2023-08-21T00:00:00"},
    {R1, "next week", W, "2023-08-21T00:00:00", "2023-08-28T00:00:00"},
    {R1, "last month", W, "2023-07-01T00:00:00", "2023-08-01T00:00:00"},
    {R1, "this year", W, "2023-01-01T00:00:00", "2024-01-01T00:00:00"},
    {R1, "last year", W, "2022-01-01T00:00:00", "2023-01-01T00:00:00"},
    {R1, "this weekend", W, "2023-08-19T00:00:00", "2023-08-21T00:00:00"},
    {R1, "last weekend", W, "2023-08-12T00:00:00", "2023-08-14T00:00:00"},
    {R1, "over the weekend", W, "2023-08-12T00:00:00", "2023-08-14T00:00:00"},
    {R1, "the week before last", W, "2023-07-31T00:00:00", "2023-08-07T00:00:00"},
    {R1, "Monday last week", W, "2023-08-07T00:00:00", "2023-08-08T00:00:00"},
    {R1, "last week on Tuesday", W, "2023-08-08T00:00:00", "2023-08-09T00:00:00"},
    /* rolling windows */
    {R1, "the past 3 days", W, "2023-08-13T00:00:00", "2023-08-16T15:30:00.000001"},
    {R1, "in the last two weeks", W, "2023-08-02T00:00:00", "2023-08-16T15:30:00.000001"},
    {R1, "over the past few weeks", W, "2023-06-28T00:00:00", "2023-08-16T15:30:00.000001"},
    {R1, "in the past year", W, "2022-08-16T00:00:00", "2023-08-16T15:30:00.000001"},
    /* day names */
    {R1, "on Monday", W, "2023-08-14T00:00:00", "2023-08-15T00:00:00"},
    {R1, "last Friday", W, "2023-08-11T00:00:00", "2023-08-12T00:00:00"},
    {R1, "on Wednesday", W, "2023-08-09T00:00:00", "2023-08-10T00:00:00"},
    {R1, "this Friday", W, "2023-08-18T00:00:00", "2023-08-19T00:00:00"},
    {R1, "next Friday", W, "2023-08-25T00:00:00", "2023-08-26T00:00:00"},
    {R1, "Monday, May 8, 2023", W, "2023-05-08T00:00:00", "2023-05-09T00:00:00"},
    /* months and dates */
    {R1, "in May", W, "2023-05-01T00:00:00", "2023-06-01T00:00:00"},
    {R1, "in September", W, "2022-09-01T00:00:00", "2022-10-01T00:00:00"},
    {R1, "in August", W, "2023-08-01T00:00:00", "2023-09-01T00:00:00"},
    {R1, "last August", W, "2022-08-01T00:00:00", "2022-09-01T00:00:00"},
    {R1, "WHAT DID I DO IN MAY", W, "2023-05-01T00:00:00", "2023-06-01T00:00:00"},
    {R1, "May 7", W, "2023-05-07T00:00:00", "2023-05-08T00:00:00"},
    {R1, "May 7th, 2022", W, "2022-05-07T00:00:00", "2022-05-08T00:00:00"},
    {R1, "7 May 2023", W, "2023-05-07T00:00:00", "2023-05-08T00:00:00"},
    {R1, "on the 7th of May", W, "2023-05-07T00:00:00", "2023-05-08T00:00:00"},
    {R1, "in Sept", W, "2022-09-01T00:00:00", "2022-10-01T00:00:00"},
    {R1, "Dec 25", W, "2022-12-25T00:00:00", "2022-12-26T00:00:00"},
    {R1, "shared on December 1,2023", W, "2023-12-01T00:00:00", "2023-12-02T00:00:00"},
    {R1, "in the second week of November", W, "2022-11-08T00:00:00", "2022-11-15T00:00:00"},
    {R1, "the last week of May", W, "2023-05-25T00:00:00", "2023-06-01T00:00:00"},
    /* years and numeric dates */
    {R1, "in 2022", W, "2022-01-01T00:00:00", "2023-01-01T00:00:00"},
    {R1, "What happened in 1999?", W, "1999-01-01T00:00:00", "2000-01-01T00:00:00"},
    {R1, "2023-05-07", W, "2023-05-07T00:00:00", "2023-05-08T00:00:00"},
    {R1, "2023-05", W, "2023-05-01T00:00:00", "2023-06-01T00:00:00"},
    {R1, "5/7/2023", W, "2023-05-07T00:00:00", "2023-05-08T00:00:00"},
    /* seasons */
    {R1, "this winter", W, "2023-12-01T00:00:00", "2024-03-01T00:00:00"},
    {R1, "in the spring", W, "2023-03-01T00:00:00", "2023-06-01T00:00:00"},
    {R1, "in spring 2021", W, "2021-03-01T00:00:00", "2021-06-01T00:00:00"},
    {R1, "the summer of 2022", W, "2022-06-01T00:00:00", "2022-09-01T00:00:00"},
    {R1, "winter 2023", W, "2022-12-01T00:00:00", "2023-03-01T00:00:00"},
    /* recent */
    {R1, "lately", REC, NULL, NULL},
    {R1, "these days", REC, NULL, NULL},
    {R1, "nowadays", REC, NULL, NULL},
    {R1, "in the last while", REC, NULL, NULL},
    /* holidays */
    {R1, "on Christmas", W, "2022-12-25T00:00:00", "2022-12-26T00:00:00"},
    {R1, "last Christmas", W, "2022-12-25T00:00:00", "2022-12-26T00:00:00"},
    {R1, "New Year's Eve", W, "2022-12-31T00:00:00", "2023-01-01T00:00:00"},
    {R1, "Thanksgiving 2022", W, "2022-11-24T00:00:00", "2022-11-25T00:00:00"},
    /* anchored and wrapped forms */
    {R1, "What did Maria do last weekend before April 10, 2023?", W, "2023-04-08T00:00:00", "2023-04-10T00:00:00"},
    {R1, "in the week before 9 June 2023", W, "2023-06-02T00:00:00", "2023-06-09T00:00:00"},
    {R1, "The Friday before 15 July 2023", W, "2023-07-14T00:00:00", "2023-07-15T00:00:00"},
    {R1, "the week of May 7", W, "2023-05-01T00:00:00", "2023-05-08T00:00:00"},
    {R1, "early May", W, "2023-05-01T00:00:00", "2023-05-11T00:00:00"},
    {R1, "mid-2023", W, "2023-05-01T00:00:00", "2023-09-01T00:00:00"},
    {R1, "late last year", W, "2022-09-01T00:00:00", "2023-01-01T00:00:00"},
    {R1, "the end of last month", W, "2023-07-21T00:00:00", "2023-08-01T00:00:00"},
    {R1, "since May", W, "2023-05-01T00:00:00", "2023-08-16T15:30:00.000001"},
    {R1, "from May to July", W, "2023-05-01T00:00:00", "2023-08-01T00:00:00"},
    {R1, "3 days after May 7", W, "2023-05-10T00:00:00", "2023-05-11T00:00:00"},
    {R1, "I was late last week", W, "2023-08-07T00:00:00", "2023-08-14T00:00:00"},
    {R1, "two weeks before August 11, 2023", W, "2023-07-28T00:00:00", "2023-08-04T00:00:00"},
    {R1, "between August 11 and August 15 2023", W, "2023-08-11T00:00:00", "2023-08-16T00:00:00"},
    /* several expressions: the narrowest wins, a window beats recent */
    {R1, "What did I do last year, especially in May?", W, "2023-05-01T00:00:00", "2023-06-01T00:00:00"},
    {R1, "recently, in 2022", W, "2022-01-01T00:00:00", "2023-01-01T00:00:00"},
    {R1, "last week or yesterday", W, "2023-08-15T00:00:00", "2023-08-16T00:00:00"},
    /* equal widths: the explicit date beats the relative day */
    {R1, "two days ago or May 7", W, "2023-05-07T00:00:00", "2023-05-08T00:00:00"},
    {R1, "it cost 1,000 dollars in 2022", W, "2022-01-01T00:00:00", "2023-01-01T00:00:00"},

    /* just after a year boundary */
    {R2, "yesterday", W, "2024-01-01T00:00:00", "2024-01-02T00:00:00"},
    {R2, "last week", W, "2023-12-25T00:00:00", "2024-01-01T00:00:00"},
    {R2, "a week ago", W, "2023-12-25T00:00:00", "2024-01-01T00:00:00"},
    {R2, "last month", W, "2023-12-01T00:00:00", "2024-01-01T00:00:00"},
    {R2, "two months ago", W, "2023-11-01T00:00:00", "2023-12-01T00:00:00"},
    {R2, "last year", W, "2023-01-01T00:00:00", "2024-01-01T00:00:00"},
    {R2, "in December", W, "2023-12-01T00:00:00", "2024-01-01T00:00:00"},
    {R2, "last weekend", W, "2023-12-30T00:00:00", "2024-01-01T00:00:00"},
    {R2, "on Tuesday", W, "2023-12-26T00:00:00", "2023-12-27T00:00:00"},
    {R2, "on Monday", W, "2024-01-01T00:00:00", "2024-01-02T00:00:00"},
    {R2, "last winter", W, "2022-12-01T00:00:00", "2023-03-01T00:00:00"},
    {R2, "during the winter", W, "2023-12-01T00:00:00", "2024-03-01T00:00:00"},
    {R2, "New Year's Eve", W, "2023-12-31T00:00:00", "2024-01-01T00:00:00"},
    {R2, "the past month", W, "2023-12-02T00:00:00", "2024-01-02T09:00:00.000001"},
    {R2, "a few weeks ago", W, "2023-11-13T00:00:00", "2024-01-01T00:00:00"},
    {R2, "Feb 29", W, "2020-02-29T00:00:00", "2020-03-01T00:00:00"},
    {R2, "next May", W, "2024-05-01T00:00:00", "2024-06-01T00:00:00"},
    {R2, "early this year", W, "2024-01-01T00:00:00", "2024-05-01T00:00:00"},

    /* the day after a leap day */
    {R3, "yesterday", W, "2024-02-29T00:00:00", "2024-03-01T00:00:00"},
    {R3, "Feb 29", W, "2024-02-29T00:00:00", "2024-03-01T00:00:00"},
    {R3, "the past month", W, "2024-02-01T00:00:00", "2024-03-01T12:00:00.000001"},
    {R3, "the past year", W, "2023-03-01T00:00:00", "2024-03-01T12:00:00.000001"},
    {R3, "a month ago", W, "2024-02-01T00:00:00", "2024-03-01T00:00:00"},
    {R3, "last winter", W, "2023-12-01T00:00:00", "2024-03-01T00:00:00"},
    {R3, "this spring", W, "2024-03-01T00:00:00", "2024-06-01T00:00:00"},
    {R3, "last spring", W, "2023-03-01T00:00:00", "2023-06-01T00:00:00"},
    {R3, "3 days ago", W, "2024-02-27T00:00:00", "2024-02-28T00:00:00"},
    {R3, "on Friday", W, "2024-02-23T00:00:00", "2024-02-24T00:00:00"},
    {R3, "this Friday", W, "2024-03-01T00:00:00", "2024-03-02T00:00:00"},
    {R3, "the last week of February", W, "2024-02-23T00:00:00", "2024-03-01T00:00:00"},
    {R3, "the end of February", W, "2024-02-20T00:00:00", "2024-03-01T00:00:00"},
    {R3, "the week before 1 March 2024", W, "2024-02-23T00:00:00", "2024-03-01T00:00:00"},

    /* must not parse */
    {R1, "May I ask about the trip?", N, NULL, NULL},
    {R1, "Summer is my sister", N, NULL, NULL},
    {R1, "Jan's dog", N, NULL, NULL},
    {R1, "they march in the parade", N, NULL, NULL},
    {R1, "the second time", N, NULL, NULL},
    {R1, "a while back", N, NULL, NULL},
    {R1, "in a minute", N, NULL, NULL},
    {R1, "2022 people came", N, NULL, NULL},
    {R1, "room 2023", N, NULL, NULL},
    {R1, "the last one", N, NULL, NULL},
    {R1, "last of the cookies", N, NULL, NULL},
    {R1, "I will", N, NULL, NULL},
    {R1, "in August Wilson's play", N, NULL, NULL},
    {R1, "August Wilson's play", N, NULL, NULL},
    {R1, "Mark's birthday", N, NULL, NULL},
    {R1, "When did Caroline go to the LGBTQ support group?", N, NULL, NULL},
    {R1, "the week", N, NULL, NULL},
    {R1, "a day", N, NULL, NULL},
    {R1, "since", N, NULL, NULL},
    {R1, "ago", N, NULL, NULL},
    {R1, "$2022 in cash", N, NULL, NULL},
    {R1, "20221 tickets", N, NULL, NULL},
    {R1, "this may be useful", N, NULL, NULL},
    {R1, "decorating the Christmas tree", N, NULL, NULL},
    {R1, "I fall asleep easily", N, NULL, NULL},
    {R1, "spring cleaning tips", N, NULL, NULL},
    {R1, "every Monday", N, NULL, NULL},
    {R1, "on the 7th", N, NULL, NULL},
    {R1, "in 2 days", N, NULL, NULL},
    {R1, "it took 2.5 days ago", N, NULL, NULL},
    {R1, "the last day of school", N, NULL, NULL},
    {R1, "I sat on the chair", N, NULL, NULL},
    {R1, "the first week of school", N, NULL, NULL},
    {R1, "2023-02-29", N, NULL, NULL},
    {R1, "the 2020s", N, NULL, NULL},
    {R1, "I was late", N, NULL, NULL},
};

static void check_case(const tcase *tc)
{
    timex_ctx c = {.ref_us = iso_us(tc->ref)};
    timex t;
    memset(&t, 0x5a, sizeof t);
    int rc = timex_parse(tc->q, strlen(tc->q), &c, &t);
    if (rc != DM_OK)
        fail_msg("\"%s\": rc %d", tc->q, rc);
    if (t.kind != tc->kind)
        fail_msg("\"%s\" (ref %s): kind %d, want %d (label %s)", tc->q,
                 tc->ref, (int)t.kind, (int)tc->kind, t.label);
    if (tc->kind == TIMEX_WINDOW) {
        int64_t f = iso_us(tc->from), to = iso_us(tc->to);
        if (t.from_us != f || t.to_us != to)
            fail_msg("\"%s\" (ref %s): got %s, want %s..%s", tc->q, tc->ref,
                     t.label, tc->from, tc->to);
    }
    if (tc->kind == TIMEX_NONE) {
        if (t.span_len != 0 || t.label[0] != '\0')
            fail_msg("\"%s\": NONE with a span or a label", tc->q);
    } else if (t.span_len == 0 || t.span_off + t.span_len > strlen(tc->q)) {
        fail_msg("\"%s\": bad span %u+%u", tc->q, t.span_off, t.span_len);
    }
}

static void test_table(void **state)
{
    size_t n = sizeof CASES / sizeof CASES[0], n_none = 0;
    for (size_t i = 0; i < n; i++) {
        check_case(&CASES[i]);
        n_none += CASES[i].kind == TIMEX_NONE;
    }
    print_message("%zu cases, %zu that must not parse\n", n, n_none);
    assert_true(n >= 60);
    assert_true(n_none >= 15);
}

/* ---- spans and labels -------------------------------------------------- */

static void expect_span(const char *q, const char *ref, const char *want)
{
    timex_ctx c = {.ref_us = iso_us(ref)};
    timex t;
    assert_int_equal(timex_parse(q, strlen(q), &c, &t), DM_OK);
    assert_int_not_equal(t.kind, TIMEX_NONE);
    const char *at = strstr(q, want);
    assert_non_null(at);
    if (t.span_off != (uint32_t)(at - q) || t.span_len != strlen(want))
        fail_msg("\"%s\": span \"%.*s\", want \"%s\"", q, (int)t.span_len,
                 q + t.span_off, want);
}

static void test_spans(void **state)
{
    expect_span("What did I eat yesterday?", R1, "yesterday");
    expect_span("my trip in May 2023 was fun", R1, "in May 2023");
    expect_span("back in May we moved", R1, "back in May");
    expect_span("what did I do over the past few weeks", R1,
                "over the past few weeks");
    expect_span("When did Caroline go to the LGBTQ support group on 8 May, "
                "2023?", R1, "on 8 May, 2023");
    /* A typographic apostrophe is three bytes of UTF-8. */
    expect_span("plans for New Year\xE2\x80\x99s Eve party", R1,
                "New Year\xE2\x80\x99s Eve");
    /* A possessive belongs to the expression. */
    expect_span("how was yesterday's lunch", R1, "yesterday's");
    /* The chosen expression's span, not the first one's. */
    expect_span("recently, I think last Friday", R1, "last Friday");
}

static void expect_label(const char *q, const char *ref, const char *want)
{
    timex_ctx c = {.ref_us = iso_us(ref)};
    timex t;
    assert_int_equal(timex_parse(q, strlen(q), &c, &t), DM_OK);
    if (strcmp(t.label, want) != 0)
        fail_msg("\"%s\": label \"%s\", want \"%s\"", q, t.label, want);
}

static void test_labels(void **state)
{
    expect_label("yesterday", R1, "2023-08-15");
    expect_label("in May 2023", R1, "2023-05");
    expect_label("last year", R1, "2022");
    expect_label("last week", R1, "2023-08-07..2023-08-14");
    expect_label("tonight", R1, "2023-08-16T18:00..2023-08-17T06:00");
    expect_label("lately", R1, "recent");
    expect_label("nothing here", R1, "");
}

/* ---- birthday ---------------------------------------------------------- */

static void test_birthday(void **state)
{
    const char *q = "what did I get on my birthday";
    timex t;
    timex_ctx c = {.ref_us = iso_us(R1)};
    /* Unknown birthday: nothing. */
    assert_int_equal(timex_parse(q, strlen(q), &c, &t), DM_OK);
    assert_int_equal(t.kind, TIMEX_NONE);
    /* March 14 has passed in 2023. */
    c.birthday_month = 3;
    c.birthday_day = 14;
    assert_int_equal(timex_parse(q, strlen(q), &c, &t), DM_OK);
    assert_int_equal(t.kind, TIMEX_WINDOW);
    assert_true(t.from_us == iso_us("2023-03-14T00:00:00"));
    assert_true(t.to_us == iso_us("2023-03-15T00:00:00"));
    /* December 3 has not: last year's. */
    c.birthday_month = 12;
    c.birthday_day = 3;
    assert_int_equal(timex_parse(q, strlen(q), &c, &t), DM_OK);
    assert_true(t.from_us == iso_us("2022-12-03T00:00:00"));
    /* Today is the birthday: today; "my last birthday" is a year back. */
    c.birthday_month = 8;
    c.birthday_day = 16;
    assert_int_equal(timex_parse(q, strlen(q), &c, &t), DM_OK);
    assert_true(t.from_us == iso_us("2023-08-16T00:00:00"));
    const char *q2 = "my last birthday";
    assert_int_equal(timex_parse(q2, strlen(q2), &c, &t), DM_OK);
    assert_true(t.from_us == iso_us("2022-08-16T00:00:00"));
    /* Feb 29 in a common year is kept on Feb 28. */
    c.birthday_month = 2;
    c.birthday_day = 29;
    assert_int_equal(timex_parse(q, strlen(q), &c, &t), DM_OK);
    assert_true(t.from_us == iso_us("2023-02-28T00:00:00"));
    /* Somebody else's birthday is not the user's. */
    const char *q3 = "Mark's birthday party";
    assert_int_equal(timex_parse(q3, strlen(q3), &c, &t), DM_OK);
    assert_int_equal(t.kind, TIMEX_NONE);
    /* An invalid month is "unknown". */
    c.birthday_month = 13;
    assert_int_equal(timex_parse(q, strlen(q), &c, &t), DM_OK);
    assert_int_equal(t.kind, TIMEX_NONE);
}

/* ---- errors and odd input ---------------------------------------------- */

static void test_errors(void **state)
{
    timex_ctx c = {.ref_us = iso_us(R1)};
    timex t;
    memset(&t, 0x5a, sizeof t);
    assert_int_equal(timex_parse(NULL, 3, &c, &t), DM_EINVAL);
    assert_int_equal(t.kind, TIMEX_NONE);
    assert_int_equal(t.span_len, 0);
    assert_int_equal(timex_parse("today", 5, NULL, &t), DM_EINVAL);
    assert_int_equal(timex_parse("today", 5, &c, NULL), DM_EINVAL);
    /* Empty text and a reference time far outside the calendar: nothing. */
    assert_int_equal(timex_parse("", 0, &c, &t), DM_OK);
    assert_int_equal(t.kind, TIMEX_NONE);
    c.ref_us = INT64_MIN;
    assert_int_equal(timex_parse("yesterday", 9, &c, &t), DM_OK);
    assert_int_equal(t.kind, TIMEX_NONE);
    c.ref_us = INT64_MAX;
    assert_int_equal(timex_parse("next year", 9, &c, &t), DM_OK);
    assert_int_equal(t.kind, TIMEX_NONE);
    /* Only len bytes are read: "yesterday" cut to "yester" is nothing. */
    c.ref_us = iso_us(R1);
    assert_int_equal(timex_parse("yesterday", 6, &c, &t), DM_OK);
    assert_int_equal(t.kind, TIMEX_NONE);
    /* Bytes after a NUL still count. */
    static const char nul[] = "abc\0 last week";
    assert_int_equal(timex_parse(nul, sizeof nul - 1, &c, &t), DM_OK);
    assert_int_equal(t.kind, TIMEX_WINDOW);
    assert_int_equal(t.span_off, 5);
}

/* ---- long queries are read in chunks ----------------------------------- */

static void test_long_query(void **state)
{
    static const char *const exprs[] = {"last week", "the day before yesterday",
                                        "in the week before 9 June 2023"};
    const char *want_from[] = {"2023-08-07T00:00:00", "2023-08-14T00:00:00",
                               "2023-06-02T00:00:00"};
    timex_ctx c = {.ref_us = iso_us(R1)};
    static char q[8192];
    size_t cap = sizeof q;
    for (size_t e = 0; e < 3; e++) {
        /* Put the expression after k filler words, for every k across the
         * first chunk boundaries, with filler after it too. */
        for (size_t k = 0; k < 600; k += (k < 200 ? 7 : 1)) {
            size_t len = 0;
            for (size_t w = 0; w < k; w++)
                len += (size_t)snprintf(q + len, cap - len, "word ");
            size_t off = len;
            len += (size_t)snprintf(q + len, cap - len, "%s", exprs[e]);
            for (size_t w = 0; w < 700 - k; w++)
                len += (size_t)snprintf(q + len, cap - len, " word");
            timex t;
            assert_int_equal(timex_parse(q, len, &c, &t), DM_OK);
            if (t.kind != TIMEX_WINDOW || t.from_us != iso_us(want_from[e]) ||
                t.span_off != off || t.span_len != strlen(exprs[e]))
                fail_msg("\"%s\" after %zu words: kind %d label %s span "
                         "%u+%u", exprs[e], k, (int)t.kind, t.label,
                         t.span_off, t.span_len);
        }
    }
}

/* ---- random input keeps the invariants --------------------------------- */

static void test_random(void **state)
{
    static const char *const vocab[] = {
        "last", "this", "next", "the", "in", "on", "of", "since", "from",
        "to", "ago", "a", "few", "couple", "two", "3", "2023", "7th", "May",
        "may", "week", "weeks", "month", "day", "year", "weekend", "summer",
        "winter", "Monday", "Friday", "before", "after", "early", "late",
        "mid", "-", ",", "'", "s", "/", "12", "31", "2024-02-29", "yesterday",
        "tonight", "morning", "night", "Christmas", "Eve", "my", "birthday",
        "recently", "between", "and", "end", "first", "half", "\xE2\x80\x99",
        "\xC3\xA9", "99999999999", "0", "past", "hours", "minutes", "Jan",
    };
    size_t nv = sizeof vocab / sizeof vocab[0];
    tu_rng r;
    tu_rng_seed(&r, 42);
    char q[512];
    size_t counts[3] = {0, 0, 0};
    for (int it = 0; it < 20000; it++) {
        size_t len = 0;
        if (it % 5 == 4) {
            /* raw bytes */
            len = (size_t)tu_randn(&r, 80);
            for (size_t i = 0; i < len; i++)
                q[i] = (char)tu_rand(&r);
        } else {
            size_t nw = 1 + (size_t)tu_randn(&r, 12);
            for (size_t w = 0; w < nw; w++) {
                const char *s = vocab[tu_randn(&r, nv)];
                size_t sl = strlen(s);
                if (len + sl + 1 >= sizeof q)
                    break;
                if (w && tu_randn(&r, 4))
                    q[len++] = ' ';
                memcpy(q + len, s, sl);
                len += sl;
            }
        }
        /* Reference times over the whole calendar and beyond it. */
        timex_ctx c;
        c.ref_us = (int64_t)tu_rand(&r);
        if (it % 2)
            c.ref_us = iso_us(R1) + (int64_t)tu_randn(&r, UINT64_C(1) << 52) -
                       (INT64_C(1) << 51);
        c.birthday_month = (int)tu_randn(&r, 14);
        c.birthday_day = (int)tu_randn(&r, 33);
        timex t;
        assert_int_equal(timex_parse(q, len, &c, &t), DM_OK);
        assert_true(t.kind == TIMEX_NONE || t.kind == TIMEX_WINDOW ||
                    t.kind == TIMEX_RECENT);
        counts[t.kind]++;
        assert_true(memchr(t.label, '\0', sizeof t.label) != NULL);
        assert_true((size_t)t.span_off + t.span_len <= len);
        if (t.kind == TIMEX_NONE) {
            assert_int_equal(t.span_len, 0);
        } else {
            assert_true(t.span_len > 0);
            assert_true(t.label[0] != '\0');
        }
        if (t.kind == TIMEX_WINDOW)
            assert_true(t.from_us < t.to_us);
    }
    print_message("random: %zu none, %zu window, %zu recent\n", counts[0],
                  counts[1], counts[2]);
    /* The generator must actually reach every outcome. */
    assert_true(counts[0] > 100 && counts[1] > 100 && counts[2] > 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),    cmocka_unit_test(test_spans),
        cmocka_unit_test(test_labels),   cmocka_unit_test(test_birthday),
        cmocka_unit_test(test_errors),   cmocka_unit_test(test_long_query),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
