/*
 * timex.c -- time expressions in a query ("yesterday", "two weeks ago",
 * "in May 2023", "last summer", "recently") turned into a window
 * [from_us, to_us) or a preference for recent memories.
 *
 * Design.  The query is cut into small tokens: runs of ASCII letters
 * (lowercased copies are kept, at most 15 letters), runs of digits (with an
 * ordinal suffix "7th" folded in), single punctuation marks (the typographic
 * apostrophe counts as "'") and runs of other bytes.  A set of recognizers
 * is tried at every token; each one knows one family of phrases and either
 * claims the tokens [start, end) with a window or declines.  At a position
 * the longest claim wins and the scan continues after it, so "the day
 * before yesterday" is not also read as "yesterday".  Some recognizers wrap
 * others ("since X", "early X", "from X to Y", "the week before X"); they
 * call the dispatcher again on the inner tokens with a small depth limit.
 * Of all claims in the query the narrowest window wins (ties: a form with
 * explicit calendar numbers, then the earlier one); any window beats
 * "recently".  No regular expressions, no allocation: tokens live in a
 * fixed stack array and long queries are read in overlapping chunks.
 *
 * Calendar.  Day numbers count days since 1970-01-01 on the proleptic
 * Gregorian calendar (UTC); weeks run Monday to Sunday; only years
 * 1..9999 are produced (a reference time outside them yields TIMEX_NONE).
 * No libc time functions are used, so the result does not depend on TZ or
 * locale and the code is thread-safe.
 *
 * Forms understood (case-insensitive; "ref" is c->ref_us, "today" its day):
 *   today, tonight, this morning/afternoon/evening, earlier today, later
 *     today, yesterday, last night, tomorrow, the day before yesterday, the
 *     day after tomorrow, the other day (= the 7 days before today).
 *     Parts of a day: morning 05-12h, afternoon 12-18h, evening 18-24h,
 *     night 18h to 06h the next day; they also follow a day ("yesterday
 *     morning", "on Friday night", "May 7 in the evening").
 *   N units ago / N units back, unit = hour, day, week, month, year; N =
 *     digits, one..twenty, a/an, a couple (of), few/a few/several.  The
 *     window is the calendar unit containing ref - N units (a day, a
 *     Monday-Sunday week, a month, a year, a clock hour).  "a few" and
 *     "several" mean 1..7 units back: [start of the unit containing
 *     ref - 7 units, start of ref's unit).  Seconds and minutes ago are
 *     TIMEX_RECENT.
 *   this/last/next week, month, year, weekend; the week/month/year/weekend
 *     before last; earlier this week/month/year (up to ref); later this ...
 *     (from ref).  "this weekend" is Saturday-Sunday of ref's week, "last
 *     weekend" the one of the week before, "next weekend" the one of the
 *     week after; "over/on/at the weekend" and "this past weekend" are the
 *     latest weekend that has started.  A week may be followed by a day
 *     name ("last week on Tuesday") and then means that day of it.
 *   the past N units, the last N units, last N units, past week, this past
 *     month: rolling windows [midnight of ref - N units, ref + 1us); with
 *     hours the start is exact.  "few"/"several" count as 7.  "last week"
 *     without "the" is the calendar week; "the last day" (usually the
 *     final day of something) is not read.
 *   Day names (full; abbreviations only after on/last/this/next/since/by/
 *     until/before/after): bare, "on X" and "last X" are the latest such
 *     day strictly before today; "this X" is X of ref's week (may be
 *     future); "next X" is X of the following week.  "Monday last week",
 *     "Friday of two weeks ago" pick the day in that week; a day name
 *     followed by an explicit date ("Monday, May 8, 2023") takes the date.
 *     "every Monday" and plurals are not read.
 *   Months: "May 7", "May 7th, 2023", "7 May 2023", "the 7th of May",
 *     "the seventh of May", "May 2023", "May of 2023", "December 1,2023",
 *     "in May", "last/this/next May", abbreviations Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov
 *     Dec (optional period).  Without a year, a month is the latest one
 *     that has started (ref in May: this May) and a day is the latest one
 *     on or before today (Feb 29 goes back to a leap year); "last May" is
 *     the latest May strictly before ref's month, "this May" the May of
 *     ref's year, "next May" the first May after ref's month.
 *     Conservative rule: May, March, April, June, August and all
 *     abbreviations count alone only after in/on/since/during/until/till/
 *     by/before/after/from/through/throughout/of/around/early/late/mid or
 *     last/this/next, or next to a day number or a year; other full names
 *     count alone.  "this may" in lowercase followed by a word is the
 *     verb.  A name-like month (May, June, April, August, March, Jan)
 *     written capitalized and followed by a capitalized word other than
 *     "I" or a time word is a person ("in August Wilson's play"; the cost:
 *     "in May Caroline ..." is not read).  A possessive month ("Jan's") is
 *     a name unless after last/this/next.
 *   Years: "in 2022", "the year 2022", "2022" alone only between the start
 *     or punctuation and the end or punctuation; bare years 1900..2100,
 *     years inside dates 1000..9999; never "$2022", "20221", "2022 people",
 *     "room 2023", "2020s".  Two-digit years are not read.
 *   Numeric dates: 2023-05-07, 2023/05/07, 2023-05 (a month), 5/7/2023
 *     (US order: month/day/year).
 *   Seasons (meteorological, northern): spring Mar-May, summer Jun-Aug,
 *     autumn/fall Sep-Nov, winter Dec-Feb.  "summer 2022", "the summer of
 *     2022"; "winter 2023" is the winter containing January 2023 (Dec 2022
 *     to Feb 2023).  "last summer" is the latest summer strictly before
 *     ref's season; "this summer" the current one if ref is in it, else
 *     the one starting in ref's year; "next summer" the first after ref's
 *     season; "in/during/over the summer", "this past summer" the latest
 *     that has started.  A bare season needs a preposition before it
 *     ("Summer is my sister" is not read).
 *   Holidays: Christmas (Eve/Day), Xmas, New Year's (Eve/Day), Halloween,
 *     Valentine's Day, Thanksgiving (US: fourth Thursday of November),
 *     Independence Day; with last/this/next or a year; a single day.
 *     Without a modifier: the latest on or before today.  A bare holiday
 *     word needs a preposition (on/at/for/over/...) unless it is spelled
 *     with Eve/Day or a year ("the Christmas tree" is not read).
 *   "my birthday", "my last birthday": the latest birthday on or before
 *     today (strictly before for "last"); only when c->birthday_month is
 *     1..12 and c->birthday_day 1..31 (clamped to the month; Feb 29 is
 *     Feb 28 in other years).  Nobody else's birthday is read.
 *   Wrappers: "since X" = [start of X, ref + 1us); "early/mid/late X",
 *     "the beginning/middle/end of X" for a week, month, season or year X
 *     (thirds by days; a year by four-month thirds; the adjectives
 *     early/mid/late do not narrow a relative week, so "I was late last
 *     week" is last week); "the first/second half of X" (month, season,
 *     year); "the first..fourth week of MONTH" (days 1-7, 8-14, ...) and
 *     "the last week of MONTH" (its last 7 days); "from X to Y",
 *     "between X and Y" = [start of X, end of Y).  For a day D: "the day/
 *     <day name> before/after D", "N days before/after D" (one day),
 *     "the week before D" = [D-7, D), "the week after D" = [D+1, D+8),
 *     "N weeks before D" = [D-7N, D-7N+7), "N weeks after D" =
 *     [D+7N-6, D+7N+1), "the week of D" (its Monday-Sunday week), "the
 *     weekend before D" (the Saturday-Sunday of the week before D's), "the
 *     weekend after D" (the first Saturday after D and the next Sunday),
 *     "the weekend of D"; "last" may replace "the" ("last weekend before
 *     April 10, 2023").
 *   TIMEX_RECENT: recently, lately, nowadays, currently, recent, latest,
 *     these days, of late, at the moment, right now, the last/past while.
 * Not read, by choice: "a while back/ago" (vague, not necessarily recent),
 * "in a minute", "in two weeks" and other future offsets from now,
 * "N days later/earlier/before" without an explicit anchor, "before X" /
 * "after X" / "until X" (unbounded), "on the 7th" without a month,
 * clock times ("at 3pm").
 *
 * Invariants: every window has from_us < to_us; a match never extends past
 * the tokens it claims; span_off/span_len cover the claimed bytes plus one
 * time preposition directly before ("in", "on", "at", "during", "over",
 * "throughout", "around", "sometime", and "back" before "in").
 *
 * Locking: none; no global mutable state.
 *
 * Format owned: the label.  "recent" for TIMEX_RECENT.  A window of whole
 * days is "YYYY-MM-DD" for one day, "YYYY-MM" for one calendar month,
 * "YYYY" for one calendar year, else "YYYY-MM-DD..YYYY-MM-DD"; a window
 * with a time of day is "YYYY-MM-DDTHH:MM..YYYY-MM-DDTHH:MM".  The second
 * date is exclusive (the window's to_us), truncated to the minute.
 */
#include "retrieve/timex.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "deltamemory.h"

#define DAY_US INT64_C(86400000000)
#define HOUR_US INT64_C(3600000000)

#define MAX_TOK 256   /* tokens per chunk */
#define LOOKAHEAD 24  /* tokens a match may need after its start */
#define LOOKBEHIND 6  /* tokens of context kept before a chunk's first */
#define MAX_DEPTH 4   /* nesting of wrappers ("since early last May") */
#define FEW_UNITS 7   /* what "a few" and "several" stand for */
#define MAX_COUNT 100000 /* larger counts are not time offsets */

/* ---- calendar ---------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    return a - floor_div(a, b) * b;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int mon)
{
    static const unsigned char n[12] = {31, 28, 31, 30, 31, 30,
                                        31, 31, 30, 31, 30, 31};
    return mon == 2 && is_leap(y) ? 29 : n[mon - 1];
}

/* Days before the first of each month in a common year. */
static const short CUM_DAYS[12] = {0,   31,  59,  90,  120, 151,
                                   181, 212, 243, 273, 304, 334};

/* leaps_before -- how many leap years lie in [1, y), extended to all y by
 * using floor division (so it is also right for y <= 0). */
static int64_t leaps_before(int64_t y)
{
    return floor_div(y - 1, 4) - floor_div(y - 1, 100) + floor_div(y - 1, 400);
}

/* days_from_civil -- day number (days since 1970-01-01) of y-mon-d.  The
 * year contributes 365 days plus one per leap year passed; 477 leap years
 * lie before 1970. */
static int64_t days_from_civil(int64_t y, int mon, int d)
{
    int64_t z = 365 * (y - 1970) + leaps_before(y) - 477;
    z += CUM_DAYS[mon - 1] + (mon > 2 && is_leap(y)) + d - 1;
    return z;
}

/* civil_from_days -- the inverse: estimate the year from the mean year
 * length, correct it by whole years, then find the month by table. */
static void civil_from_days(int64_t z, int64_t *y, int *mon, int *d)
{
    int64_t yy = 1970 + floor_div(z * 400, 146097);
    while (days_from_civil(yy, 1, 1) > z)
        yy--;
    while (days_from_civil(yy + 1, 1, 1) <= z)
        yy++;
    int64_t doy = z - days_from_civil(yy, 1, 1);
    int mm = 12;
    while (mm > 1 && CUM_DAYS[mm - 1] + (mm > 2 && is_leap(yy)) > doy)
        mm--;
    *y = yy;
    *mon = mm;
    *d = (int)(doy - CUM_DAYS[mm - 1] - (mm > 2 && is_leap(yy))) + 1;
}

/* weekday -- 0 = Monday .. 6 = Sunday; 1970-01-01 was a Thursday. */
static int weekday(int64_t z)
{
    return (int)floor_mod(z + 3, 7);
}

static int64_t monday_of(int64_t z)
{
    return z - weekday(z);
}

/* Months are also counted as y * 12 + (mon - 1) ("absolute months"). */
static int64_t month_first_day(int64_t am)
{
    return days_from_civil(floor_div(am, 12), (int)floor_mod(am, 12) + 1, 1);
}

/* ---- tokens ------------------------------------------------------------ */

enum { T_WORD = 1, T_NUM, T_PUNCT, T_OTHER };

#define F_CAP 0x01   /* word written Titlecase ("May", "I"), not ALLCAPS */
#define F_SPACE 0x02 /* whitespace (or the query start) precedes it */
#define F_ORD 0x04   /* number with an ordinal suffix: 7th, 1st */
#define F_DEAD 0x08  /* word too long or glued to non-ASCII: never matches */

typedef struct tok {
    uint32_t off;  /* byte offset in the query */
    uint32_t len;  /* bytes */
    uint8_t type;  /* T_* */
    uint8_t flags; /* F_* */
    uint8_t ndig;  /* T_NUM: digit count (capped at 255) */
    char p;        /* T_PUNCT: the character */
    int32_t num;   /* T_NUM: value, or -1 when over 9 digits */
    char w[16];    /* T_WORD: lowercased letters, NUL-terminated */
} tok;

static int is_space(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' ||
           ch == '\f' || ch == '\v';
}

static int is_alpha(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static int is_upper(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z';
}

static int is_digit(unsigned char ch)
{
    return ch >= '0' && ch <= '9';
}

static char lower(unsigned char ch)
{
    return (char)(is_upper(ch) ? ch - 'A' + 'a' : ch);
}

/* ord_suffix -- "st", "nd", "rd" or "th" (any case) at q[pos], followed by
 * a non-letter. */
static int ord_suffix(const char *q, size_t len, size_t pos)
{
    if (pos + 2 > len)
        return 0;
    char a = lower((unsigned char)q[pos]), b = lower((unsigned char)q[pos + 1]);
    if (!((a == 's' && b == 't') || (a == 'n' && b == 'd') ||
          (a == 'r' && b == 'd') || (a == 't' && b == 'h')))
        return 0;
    return pos + 2 == len || !is_alpha((unsigned char)q[pos + 2]);
}

/*
 * tokenize -- up to cap tokens of q[pos, len).  Returns the count; *stop is
 * where reading stopped, after any trailing whitespace (len at the end).
 */
static size_t tokenize(const char *q, size_t len, size_t pos, tok *t,
                       size_t cap, size_t *stop)
{
    size_t n = 0;
    for (;;) {
        while (pos < len && is_space((unsigned char)q[pos]))
            pos++;
        if (pos >= len || n == cap)
            break;
        tok *k = &t[n];
        memset(k, 0, sizeof *k);
        k->off = (uint32_t)pos;
        if (pos == 0 || is_space((unsigned char)q[pos - 1]))
            k->flags |= F_SPACE;
        size_t s = pos;
        unsigned char ch = (unsigned char)q[pos];
        if (is_alpha(ch)) {
            int has_lower = 0;
            while (pos < len && is_alpha((unsigned char)q[pos])) {
                if (pos > s && !is_upper((unsigned char)q[pos]))
                    has_lower = 1;
                pos++;
            }
            k->type = T_WORD;
            if (pos - s < sizeof k->w) {
                for (size_t j = s; j < pos; j++)
                    k->w[j - s] = lower((unsigned char)q[j]);
            } else {
                k->flags |= F_DEAD;
            }
            if (is_upper(ch) && (pos - s == 1 || has_lower))
                k->flags |= F_CAP;
        } else if (is_digit(ch)) {
            int64_t v = 0;
            while (pos < len && is_digit((unsigned char)q[pos])) {
                if (pos - s < 9)
                    v = v * 10 + (q[pos] - '0');
                pos++;
            }
            k->type = T_NUM;
            k->ndig = (uint8_t)(pos - s > 255 ? 255 : pos - s);
            k->num = pos - s <= 9 ? (int32_t)v : -1;
            if (ord_suffix(q, len, pos)) {
                pos += 2;
                k->flags |= F_ORD;
            }
        } else if (ch == 0xE2 && pos + 2 < len &&
                   (unsigned char)q[pos + 1] == 0x80 &&
                   ((unsigned char)q[pos + 2] == 0x98 ||
                    (unsigned char)q[pos + 2] == 0x99)) {
            /* U+2018 / U+2019: typographic apostrophes read as "'". */
            k->type = T_PUNCT;
            k->p = '\'';
            pos += 3;
        } else if (ch >= 0x80) {
            k->type = T_OTHER;
            while (pos < len && (unsigned char)q[pos] >= 0x80 &&
                   !((unsigned char)q[pos] == 0xE2 && pos + 2 < len &&
                     (unsigned char)q[pos + 1] == 0x80 &&
                     ((unsigned char)q[pos + 2] == 0x98 ||
                      (unsigned char)q[pos + 2] == 0x99)))
                pos++;
            if (pos == s)
                pos++;
        } else {
            k->type = T_PUNCT;
            k->p = (char)ch;
            pos++;
        }
        k->len = (uint32_t)(pos - s);
        n++;
    }
    /* A word glued to non-ASCII letters ("Maÿ", "mayó") is some other
     * word; it must not match an English time word. */
    for (size_t i = 0; i < n; i++) {
        if (t[i].type != T_WORD)
            continue;
        if ((i + 1 < n && t[i + 1].type == T_OTHER &&
             !(t[i + 1].flags & F_SPACE)) ||
            (i > 0 && t[i - 1].type == T_OTHER && !(t[i].flags & F_SPACE)))
            t[i].flags |= F_DEAD;
    }
    *stop = pos;
    return n;
}

/* ---- matching context -------------------------------------------------- */

enum { G_NONE = 0, G_HOUR, G_PART, G_DAY, G_WEEK, G_MONTH, G_SEASON,
       G_YEAR, G_SPAN };

typedef struct cand {
    size_t start, end; /* claimed tokens [start, end) */
    timex_kind kind;
    int64_t from_us, to_us;
    int grain;  /* G_*: what kind of calendar unit the window is */
    int is_abs; /* spelled with explicit calendar names or numbers */
} cand;

typedef struct mctx {
    const tok *t;
    size_t n;
    const timex_ctx *c;
    int64_t ref_us, ref_day;
    int64_t ry; /* reference year, month, day, weekday (0 = Monday) */
    int rm, rd, rwd;
    int64_t min_day, max_day; /* 0001-01-01 and 10000-01-01 */
} mctx;

/* The word of token i, or NULL when it is not a live word.  Every
 * recognizer asks word_is / word_in about most tokens of a query and
 * nearly every answer is no: the first letter settles most of them
 * without a call to strcmp. */
static const char *live_word(const mctx *m, size_t i)
{
    return i < m->n && m->t[i].type == T_WORD && !(m->t[i].flags & F_DEAD) ? m->t[i].w
                                                                            : NULL;
}

static int word_is(const mctx *m, size_t i, const char *s)
{
    const char *w = live_word(m, i);
    return w && w[0] == s[0] && strcmp(w, s) == 0;
}

static int word_in(const mctx *m, size_t i, const char *const *list)
{
    const char *w = live_word(m, i);
    if (!w)
        return 0;
    for (; *list; list++)
        if (w[0] == (*list)[0] && strcmp(w, *list) == 0)
            return 1;
    return 0;
}

static int punct_is(const mctx *m, size_t i, char ch)
{
    return i < m->n && m->t[i].type == T_PUNCT && m->t[i].p == ch;
}

/* glued -- token i touches token i - 1 (no whitespace between). */
static int glued(const mctx *m, size_t i)
{
    return i < m->n && !(m->t[i].flags & F_SPACE);
}

static int prev_in(const mctx *m, size_t i, const char *const *list)
{
    return i > 0 && word_in(m, i - 1, list);
}

/* possessive -- tokens i, i+1 are "'s" glued to what precedes. */
static int possessive(const mctx *m, size_t i)
{
    return punct_is(m, i, '\'') && glued(m, i) && word_is(m, i + 1, "s") &&
           glued(m, i + 1);
}

static size_t skip_possessive(const mctx *m, size_t i)
{
    return possessive(m, i) ? i + 2 : i;
}

static int punct_in(const tok *k, const char *set)
{
    return k->type == T_PUNCT && k->p != '\0' && strchr(set, k->p) != NULL;
}

/*
 * num_clean -- token i is a free-standing number: not glued to letters,
 * digits, currency or decimal marks, and not a time of day, percentage or
 * part of a larger number ("2.5", "1,000", "$20", "5pm", "10:30").
 */
static int num_clean(const mctx *m, size_t i, int allow_ord)
{
    if (i >= m->n || m->t[i].type != T_NUM || m->t[i].num < 0)
        return 0;
    if ((m->t[i].flags & F_ORD) && !allow_ord)
        return 0;
    if (i > 0 && glued(m, i)) {
        const tok *p = &m->t[i - 1];
        /* A hyphen after a word is a prefix ("mid-2023"), not a minus or
         * a range. */
        int word_hyphen = p->type == T_PUNCT && p->p == '-' && i > 1 &&
                          m->t[i - 2].type == T_WORD && glued(m, i - 1);
        int comma_year = p->type == T_PUNCT && p->p == ',' &&
                         m->t[i].ndig != 3;
        if (!word_hyphen && !comma_year &&
            (p->type != T_PUNCT || punct_in(p, "$#.,-/+:'")))
            return 0;
    }
    if (i + 1 < m->n && glued(m, i + 1)) {
        const tok *q = &m->t[i + 1];
        if (q->type != T_PUNCT || punct_in(q, "%:"))
            return 0;
        /* "1,000" groups thousands, but "December 1,2023" is a day and a
         * year written without a space. */
        if (punct_in(q, ".,/-") && i + 2 < m->n &&
            m->t[i + 2].type == T_NUM && glued(m, i + 2) &&
            !(q->p == ',' && m->t[i + 2].ndig != 3))
            return 0;
    }
    return 1;
}

/* ---- windows ----------------------------------------------------------- */

static int win_us(const mctx *m, cand *o, int64_t from_us, int64_t to_us,
                  int grain)
{
    if (from_us >= to_us || from_us < m->min_day * DAY_US ||
        to_us > m->max_day * DAY_US)
        return 0;
    o->kind = TIMEX_WINDOW;
    o->from_us = from_us;
    o->to_us = to_us;
    o->grain = grain;
    return 1;
}

static int win_days(const mctx *m, cand *o, int64_t d0, int64_t d1, int grain)
{
    if (d0 < m->min_day || d1 > m->max_day || d0 >= d1)
        return 0;
    return win_us(m, o, d0 * DAY_US, d1 * DAY_US, grain);
}

static int win_months(const mctx *m, cand *o, int64_t am0, int64_t am1,
                      int grain)
{
    /* Keep the year inside the supported range before converting. */
    if (am0 < 12 || am1 > 10000 * INT64_C(12))
        return 0;
    return win_days(m, o, month_first_day(am0), month_first_day(am1), grain);
}

static int win_year(const mctx *m, cand *o, int64_t y)
{
    if (y < 1 || y > 9999)
        return 0;
    return win_months(m, o, y * 12, (y + 1) * 12, G_YEAR);
}

enum { PD_MORNING, PD_AFTERNOON, PD_EVENING, PD_NIGHT };

static int part_word(const mctx *m, size_t i)
{
    static const char *const w[] = {"morning", "afternoon", "evening", "night"};
    for (int k = 0; k < 4; k++)
        if (word_is(m, i, w[k]))
            return k;
    return -1;
}

static int win_part(const mctx *m, cand *o, int64_t day, int part)
{
    static const int from_h[4] = {5, 12, 18, 18}, to_h[4] = {12, 18, 24, 30};
    if (day < m->min_day || day + 2 > m->max_day)
        return 0;
    return win_us(m, o, day * DAY_US + from_h[part] * HOUR_US,
                  day * DAY_US + to_h[part] * HOUR_US, G_PART);
}

static int is_whole_day(const cand *c)
{
    return c->kind == TIMEX_WINDOW && c->to_us - c->from_us == DAY_US &&
           floor_mod(c->from_us, DAY_US) == 0;
}

static int is_whole_week(const cand *c)
{
    return c->kind == TIMEX_WINDOW && c->to_us - c->from_us == 7 * DAY_US &&
           floor_mod(c->from_us, DAY_US) == 0 &&
           weekday(c->from_us / DAY_US) == 0;
}

/* ---- vocabulary -------------------------------------------------------- */

/* Time prepositions that make an ambiguous month or a bare year a date. */
static const char *const PREP_MONTH[] = {
    "in",   "on",      "since",      "during", "until", "till",
    "by",   "before",  "after",      "from",   "through", "throughout",
    "of",   "around",  "early",      "late",   "mid",   NULL};
static const char *const PREP_YEAR[] = {
    "in",   "since",   "during", "until",      "till",   "by",
    "before", "after", "from",   "through",    "throughout", "of",
    "around", "early", "late",   "mid",        "year",   NULL};
static const char *const PREP_SEASON[] = {
    "in",   "during", "over",  "through", "throughout", "since", "until",
    "till", "by",     "before", "after",  "of",         "from",  "around",
    "early", "late",  "mid",   NULL};
static const char *const PREP_HOLIDAY[] = {
    "on",   "at",     "for",    "over",   "since", "during", "until",
    "till", "by",     "before", "after",  "around", "of",    "from",
    "through", "throughout", "in", NULL};
static const char *const PREP_WEEKDAY_ABBR[] = {
    "on", "since", "by", "until", "till", "before", "after", NULL};

enum { MF_AMBIG = 1, MF_ABBR = 2, MF_NAME = 4 };

static const struct {
    const char *w;
    unsigned char mon, flags;
} MONTHS[] = {
    {"january", 1, 0},           {"jan", 1, MF_ABBR | MF_NAME},
    {"february", 2, 0},          {"feb", 2, MF_ABBR},
    {"march", 3, MF_AMBIG | MF_NAME}, {"mar", 3, MF_ABBR},
    {"april", 4, MF_AMBIG | MF_NAME}, {"apr", 4, MF_ABBR},
    {"may", 5, MF_AMBIG | MF_NAME},   {"june", 6, MF_AMBIG | MF_NAME},
    {"jun", 6, MF_ABBR},         {"july", 7, 0},
    {"jul", 7, MF_ABBR},         {"august", 8, MF_AMBIG | MF_NAME},
    {"aug", 8, MF_ABBR},         {"september", 9, 0},
    {"sep", 9, MF_ABBR},         {"sept", 9, MF_ABBR},
    {"october", 10, 0},          {"oct", 10, MF_ABBR},
    {"november", 11, 0},         {"nov", 11, MF_ABBR},
    {"december", 12, 0},         {"dec", 12, MF_ABBR},
};

/* month_at -- the month named at token i (1..12, 0 if none); *flags gets
 * MF_*, *end the token after it (an abbreviation may carry a period). */
static int month_at(const mctx *m, size_t i, int *flags, size_t *end)
{
    for (size_t k = 0; k < sizeof MONTHS / sizeof MONTHS[0]; k++) {
        if (!word_is(m, i, MONTHS[k].w))
            continue;
        *flags = MONTHS[k].flags;
        *end = i + 1;
        if ((MONTHS[k].flags & MF_ABBR) && punct_is(m, i + 1, '.') &&
            glued(m, i + 1))
            *end = i + 2;
        return MONTHS[k].mon;
    }
    return 0;
}

static int weekday_at(const mctx *m, size_t i, int allow_abbr, int *is_abbr)
{
    static const char *const full[7] = {"monday",   "tuesday", "wednesday",
                                        "thursday", "friday",  "saturday",
                                        "sunday"};
    static const struct {
        const char *w;
        int wd;
    } abbr[] = {{"mon", 0},  {"tue", 1},   {"tues", 1}, {"wed", 2},
                {"thu", 3},  {"thur", 3},  {"thurs", 3}, {"fri", 4},
                {"sat", 5},  {"sun", 6}};
    *is_abbr = 0;
    for (int k = 0; k < 7; k++)
        if (word_is(m, i, full[k]))
            return k;
    if (!allow_abbr)
        return -1;
    for (size_t k = 0; k < sizeof abbr / sizeof abbr[0]; k++)
        if (word_is(m, i, abbr[k].w)) {
            *is_abbr = 1;
            return abbr[k].wd;
        }
    return -1;
}

/* Words that may follow a capitalized name-like month without making it a
 * person's name. */
static int is_time_word(const mctx *m, size_t i)
{
    int f, a;
    size_t e;
    static const char *const w[] = {"i", "spring", "summer", "autumn", "fall",
                                    "winter", "christmas", NULL};
    return month_at(m, i, &f, &e) || weekday_at(m, i, 0, &a) >= 0 ||
           word_in(m, i, w);
}

/* name_follows -- token i (a Titlecase month or season) is followed by a
 * Titlecase word that is not a time word: "August Wilson", "May Smith". */
static int name_follows(const mctx *m, size_t i, size_t next)
{
    if (!(m->t[i].flags & F_CAP) || next >= m->n)
        return 0;
    const tok *k = &m->t[next];
    return k->type == T_WORD && (k->flags & F_CAP) && !is_time_word(m, next);
}

enum { U_SECOND, U_MINUTE, U_HOUR, U_DAY, U_WEEK, U_MONTH, U_YEAR,
       U_WEEKEND };

static int unit_at(const mctx *m, size_t i)
{
    static const struct {
        const char *w;
        int u;
    } units[] = {{"second", U_SECOND}, {"seconds", U_SECOND},
                 {"minute", U_MINUTE}, {"minutes", U_MINUTE},
                 {"mins", U_MINUTE},   {"hour", U_HOUR},
                 {"hours", U_HOUR},    {"hrs", U_HOUR},
                 {"day", U_DAY},       {"days", U_DAY},
                 {"week", U_WEEK},     {"weeks", U_WEEK},
                 {"month", U_MONTH},   {"months", U_MONTH},
                 {"year", U_YEAR},     {"years", U_YEAR},
                 {"yrs", U_YEAR},      {"weekend", U_WEEKEND}};
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
        if (word_is(m, i, units[k].w))
            return units[k].u;
    return -1;
}

#define COUNT_FEW (-1)

/*
 * count_at -- a count at token i: digits, "one".."twenty", "a"/"an",
 * "a couple (of)", "couple of", "a few", "few", "several" (COUNT_FEW).
 * Returns 1 and the count and the next token, or 0.
 */
static int count_at(const mctx *m, size_t i, int *count, size_t *next)
{
    static const char *const words[] = {
        "one",     "two",     "three",    "four",     "five",
        "six",     "seven",   "eight",    "nine",     "ten",
        "eleven",  "twelve",  "thirteen", "fourteen", "fifteen",
        "sixteen", "seventeen", "eighteen", "nineteen", "twenty"};
    if (num_clean(m, i, 0)) {
        int32_t v = m->t[i].num;
        if (v < 1 || v > MAX_COUNT)
            return 0;
        *count = v;
        *next = i + 1;
        return 1;
    }
    for (int k = 0; k < 20; k++)
        if (word_is(m, i, words[k])) {
            *count = k + 1;
            *next = i + 1;
            return 1;
        }
    size_t j = i;
    int had_a = 0;
    if (word_is(m, j, "a")) {
        j++;
        had_a = 1;
    }
    if (word_is(m, j, "couple")) {
        *count = 2;
        *next = word_is(m, j + 1, "of") ? j + 2 : j + 1;
        return 1;
    }
    if (word_is(m, j, "few")) {
        *count = COUNT_FEW;
        *next = j + 1;
        return 1;
    }
    if (had_a) {
        *count = 1;
        *next = j;
        return 1;
    }
    if (word_is(m, i, "an")) {
        *count = 1;
        *next = i + 1;
        return 1;
    }
    if (word_is(m, i, "several")) {
        *count = COUNT_FEW;
        *next = i + 1;
        return 1;
    }
    return 0;
}

/* day_num_at -- a day of the month as digits (1..31, "7" or "7th"). */
static int day_num_at(const mctx *m, size_t i, int *is_ord)
{
    if (!num_clean(m, i, 1) || m->t[i].ndig > 2)
        return 0;
    int32_t v = m->t[i].num;
    if (v < 1 || v > 31)
        return 0;
    *is_ord = (m->t[i].flags & F_ORD) != 0;
    return v;
}

/* ord_word_at -- "first".."thirty-first" spelled out; returns the day and
 * sets *end, or 0. */
static int ord_word_at(const mctx *m, size_t i, size_t *end)
{
    static const char *const w[] = {
        "first",      "second",     "third",       "fourth",
        "fifth",      "sixth",      "seventh",     "eighth",
        "ninth",      "tenth",      "eleventh",    "twelfth",
        "thirteenth", "fourteenth", "fifteenth",   "sixteenth",
        "seventeenth", "eighteenth", "nineteenth", "twentieth"};
    int base = 0;
    size_t j = i;
    if (word_is(m, j, "twenty") || word_is(m, j, "thirty")) {
        base = word_is(m, j, "twenty") ? 20 : 30;
        j++;
        if (punct_is(m, j, '-') && glued(m, j))
            j++;
        else
            return 0;
    }
    if (word_is(m, i, "thirtieth")) {
        *end = i + 1;
        return 30;
    }
    for (int k = 0; k < 20; k++)
        if (word_is(m, j, w[k])) {
            int v = base + k + 1;
            if ((base && k >= 9) || v > 31)
                return 0;
            *end = j + 1;
            return v;
        }
    return 0;
}

/* year_num_at -- a clean four-digit year 1000..9999, or 0. */
static int year_num_at(const mctx *m, size_t i)
{
    if (!num_clean(m, i, 0) || m->t[i].ndig != 4)
        return 0;
    int32_t v = m->t[i].num;
    return v >= 1000 && v <= 9999 ? v : 0;
}

/* ---- resolution helpers ------------------------------------------------ */

/* date_window -- the day y-mon-d; y < 0 means "the latest one on or before
 * today" (a Feb 29 walks back to a leap year). */
static int date_window(const mctx *m, cand *o, int64_t y, int mon, int d)
{
    if (y < 0) {
        y = m->ry;
        if (mon > m->rm || (mon == m->rm && d > m->rd))
            y--;
        for (int k = 0; k < 8 && d > days_in_month(y, mon); k++)
            y--;
    }
    if (y < 1 || y > 9999 || d > days_in_month(y, mon))
        return 0;
    int64_t z = days_from_civil(y, mon, d);
    o->is_abs = 1;
    return win_days(m, o, z, z + 1, G_DAY);
}

enum { MODE_NONE, MODE_LAST, MODE_THIS, MODE_NEXT, MODE_LATEST };

/* modifier_at -- last / this / next / this past at token i. */
static int modifier_at(const mctx *m, size_t i, size_t *next)
{
    if (word_is(m, i, "this") && word_is(m, i + 1, "past")) {
        *next = i + 2;
        return MODE_LATEST;
    }
    *next = i + 1;
    if (word_is(m, i, "last"))
        return MODE_LAST;
    if (word_is(m, i, "this"))
        return MODE_THIS;
    if (word_is(m, i, "next"))
        return MODE_NEXT;
    *next = i;
    return MODE_NONE;
}

/* ---- recognizers ------------------------------------------------------- */

typedef int (*rx_fn)(const mctx *m, size_t i, int depth, int ctx_ok,
                     cand *o);

static int match_at(const mctx *m, size_t i, int depth, int ctx_ok, cand *best);

/* recently, lately, these days, of late, at the moment, the last while */
static int rx_recent(const mctx *m, size_t i, int depth, int ctx_ok, cand *o)
{
    static const char *const one[] = {"recently", "lately", "nowadays",
                                      "currently", "recent", "latest", NULL};
    (void)depth;
    (void)ctx_ok;
    size_t e = 0;
    if (word_in(m, i, one))
        e = i + 1;
    else if (word_is(m, i, "these") && word_is(m, i + 1, "days"))
        e = i + 2;
    else if (word_is(m, i, "of") && word_is(m, i + 1, "late"))
        e = i + 2;
    else if (word_is(m, i, "at") && word_is(m, i + 1, "the") &&
             word_is(m, i + 2, "moment"))
        e = i + 3;
    else if (word_is(m, i, "right") && word_is(m, i + 1, "now"))
        e = i + 2;
    else if (word_is(m, i, "the") &&
             (word_is(m, i + 1, "last") || word_is(m, i + 1, "past")) &&
             word_is(m, i + 2, "while"))
        e = i + 3;
    if (!e)
        return 0;
    o->kind = TIMEX_RECENT;
    o->end = e;
    return 1;
}

/* today, tonight, yesterday, tomorrow, this morning, last night, ... */
static int rx_dayword(const mctx *m, size_t i, int depth, int ctx_ok, cand *o)
{
    (void)depth;
    (void)ctx_ok;
    int64_t d = m->ref_day;
    size_t j = word_is(m, i, "the") ? i + 1 : i;
    if (word_is(m, j, "day") && word_is(m, j + 2, "yesterday") &&
        word_is(m, j + 1, "before")) {
        o->end = skip_possessive(m, j + 3);
        return win_days(m, o, d - 2, d - 1, G_DAY);
    }
    if (word_is(m, j, "day") && word_is(m, j + 1, "after") &&
        word_is(m, j + 2, "tomorrow")) {
        o->end = skip_possessive(m, j + 3);
        return win_days(m, o, d + 2, d + 3, G_DAY);
    }
    if (j > i) {
        if (word_is(m, j, "other") && word_is(m, j + 1, "day")) {
            o->end = j + 2;
            return win_days(m, o, d - 7, d, G_SPAN);
        }
        return 0;
    }
    if (word_is(m, i, "today")) {
        o->end = skip_possessive(m, i + 1);
        return win_days(m, o, d, d + 1, G_DAY);
    }
    if (word_is(m, i, "yesterday")) {
        o->end = skip_possessive(m, i + 1);
        return win_days(m, o, d - 1, d, G_DAY);
    }
    if (word_is(m, i, "tomorrow")) {
        o->end = skip_possessive(m, i + 1);
        return win_days(m, o, d + 1, d + 2, G_DAY);
    }
    if (word_is(m, i, "tonight")) {
        o->end = skip_possessive(m, i + 1);
        return win_part(m, o, d, PD_NIGHT);
    }
    int pd = part_word(m, i + 1);
    if (word_is(m, i, "this") && pd >= 0 && pd != PD_NIGHT) {
        o->end = i + 2;
        return win_part(m, o, d, pd);
    }
    if (word_is(m, i, "last") && pd == PD_NIGHT) {
        o->end = skip_possessive(m, i + 2);
        return win_part(m, o, d - 1, PD_NIGHT);
    }
    if (word_is(m, i, "earlier") && word_is(m, i + 1, "today")) {
        o->end = i + 2;
        return win_us(m, o, d * DAY_US, m->ref_us + 1, G_SPAN);
    }
    if (word_is(m, i, "later") && word_is(m, i + 1, "today")) {
        o->end = i + 2;
        return win_us(m, o, m->ref_us, (d + 1) * DAY_US, G_SPAN);
    }
    return 0;
}

/* unit_ago -- the window of "count units ago" (see the header comment). */
static int unit_ago(const mctx *m, cand *o, int unit, int64_t count)
{
    int64_t d = m->ref_day;
    int64_t am = m->ry * 12 + m->rm - 1;
    int few = count == COUNT_FEW;
    int64_t n = few ? FEW_UNITS : count;
    switch (unit) {
    case U_SECOND:
    case U_MINUTE:
        o->kind = TIMEX_RECENT;
        return 1;
    case U_HOUR: {
        int64_t h = floor_div(m->ref_us, HOUR_US);
        if (few)
            return win_us(m, o, (h - n) * HOUR_US, h * HOUR_US, G_SPAN);
        return win_us(m, o, (h - n) * HOUR_US, (h - n + 1) * HOUR_US, G_HOUR);
    }
    case U_DAY:
        if (few)
            return win_days(m, o, d - n, d, G_SPAN);
        return win_days(m, o, d - n, d - n + 1, G_DAY);
    case U_WEEK: {
        int64_t mon = monday_of(d);
        if (few)
            return win_days(m, o, mon - 7 * n, mon, G_SPAN);
        return win_days(m, o, mon - 7 * n, mon - 7 * n + 7, G_WEEK);
    }
    case U_MONTH:
        if (few)
            return win_months(m, o, am - n, am, G_SPAN);
        return win_months(m, o, am - n, am - n + 1, G_MONTH);
    case U_YEAR:
        if (few)
            return win_months(m, o, (m->ry - n) * 12, m->ry * 12, G_SPAN);
        return win_year(m, o, m->ry - n);
    default:
        return 0;
    }
}

/* N units ago / N units back */
static int rx_ago(const mctx *m, size_t i, int depth, int ctx_ok, cand *o)
{
    (void)depth;
    (void)ctx_ok;
    int count;
    size_t j;
    if (!count_at(m, i, &count, &j))
        return 0;
    int unit = unit_at(m, j);
    if (unit < 0 || unit == U_WEEKEND)
        return 0;
    if (!word_is(m, j + 1, "ago") && !word_is(m, j + 1, "back"))
        return 0;
    o->end = j + 2;
    return unit_ago(m, o, unit, count);
}

/* rolling -- [midnight of ref - n units, ref + 1us); exact for hours. */
static int rolling(const mctx *m, cand *o, int unit, int64_t n)
{
    int64_t d = m->ref_day;
    int64_t from;
    switch (unit) {
    case U_SECOND:
    case U_MINUTE:
        o->kind = TIMEX_RECENT;
        return 1;
    case U_HOUR:
        return win_us(m, o, m->ref_us - n * HOUR_US, m->ref_us + 1, G_SPAN);
    case U_DAY:
        from = d - n;
        break;
    case U_WEEK:
        from = d - 7 * n;
        break;
    case U_MONTH:
    case U_YEAR: {
        int64_t am = m->ry * 12 + m->rm - 1 - (unit == U_MONTH ? n : 12 * n);
        if (am < 12)
            return 0;
        int64_t y = floor_div(am, 12);
        int mon = (int)floor_mod(am, 12) + 1;
        int dd = m->rd > days_in_month(y, mon) ? days_in_month(y, mon) : m->rd;
        from = days_from_civil(y, mon, dd);
        break;
    }
    default:
        return 0;
    }
    if (from < m->min_day)
        return 0;
    return win_us(m, o, from * DAY_US, m->ref_us + 1, G_SPAN);
}

/* the latest weekend that has started (ref's, if ref is on a weekend) */
static int latest_weekend(const mctx *m, cand *o)
{
    int64_t sat = monday_of(m->ref_day) + 5;
    if (m->ref_day < sat)
        sat -= 7;
    return win_days(m, o, sat, sat + 2, G_SPAN);
}

/* the past N units, the last N units, last N units, this past week */
static int rx_rolling(const mctx *m, size_t i, int depth, int ctx_ok, cand *o)
{
    (void)depth;
    (void)ctx_ok;
    size_t j = i;
    int has_the = 0, this_past = 0;
    if (word_is(m, j, "the")) {
        has_the = 1;
        j++;
    } else if (word_is(m, j, "this") && word_is(m, j + 1, "past")) {
        this_past = 1;
        j++;
    }
    int is_last = word_is(m, j, "last");
    if (!word_is(m, j, "past") && !is_last)
        return 0;
    if (is_last && this_past)
        return 0;
    j++;
    int count = 1;
    size_t k = j;
    int has_count = count_at(m, j, &count, &k);
    if (!has_count)
        k = j;
    /* "last week" alone is the calendar week (rx_calrel). */
    if (is_last && !has_the && !has_count)
        return 0;
    int unit = unit_at(m, k);
    if (unit < 0)
        return 0;
    /* "the last day" is usually the final day of something. */
    if (is_last && !has_count && unit == U_DAY)
        return 0;
    /* "the last week of May" is about May; "the last two days ago" is
     * garbled; neither is a rolling window. */
    if (word_is(m, k + 1, "of") || word_is(m, k + 1, "ago"))
        return 0;
    o->end = skip_possessive(m, k + 1);
    if (unit == U_WEEKEND) {
        if (has_count)
            return 0;
        return latest_weekend(m, o);
    }
    return rolling(m, o, unit, count == COUNT_FEW ? FEW_UNITS : count);
}

/* unit_window -- calendar unit ("week", "month", "year", "weekend")
 * shifted by delta units from ref's. */
static int unit_window(const mctx *m, cand *o, int unit, int64_t delta)
{
    int64_t mon = monday_of(m->ref_day);
    int64_t am = m->ry * 12 + m->rm - 1;
    switch (unit) {
    case U_WEEK:
        return win_days(m, o, mon + 7 * delta, mon + 7 * delta + 7, G_WEEK);
    case U_WEEKEND:
        return win_days(m, o, mon + 7 * delta + 5, mon + 7 * delta + 7, G_SPAN);
    case U_MONTH:
        return win_months(m, o, am + delta, am + delta + 1, G_MONTH);
    case U_YEAR:
        return win_year(m, o, m->ry + delta);
    default:
        return 0;
    }
}

/* this/last/next week|month|year|weekend, the week before last, earlier
 * this month, over the weekend */
static int rx_calrel(const mctx *m, size_t i, int depth, int ctx_ok, cand *o)
{
    (void)depth;
    size_t j = i;
    int part = 0; /* 1 earlier, 2 later */
    if (word_is(m, j, "earlier")) {
        part = 1;
        j++;
    } else if (word_is(m, j, "later")) {
        part = 2;
        j++;
    }
    if (!part && word_is(m, j, "the")) {
        int u = unit_at(m, j + 1);
        if (u >= U_WEEK && word_is(m, j + 2, "before") &&
            word_is(m, j + 3, "last")) {
            o->end = j + 4;
            return unit_window(m, o, u, -2);
        }
        /* over the weekend, on the weekend, at the weekend */
        static const char *const wk[] = {"over", "on", "at", "during", NULL};
        if (u == U_WEEKEND && (ctx_ok || prev_in(m, j, wk))) {
            o->end = skip_possessive(m, j + 2);
            return latest_weekend(m, o);
        }
        return 0;
    }
    int delta;
    if (word_is(m, j, "this"))
        delta = 0;
    else if (word_is(m, j, "last"))
        delta = -1;
    else if (word_is(m, j, "next"))
        delta = 1;
    else
        return 0;
    if (part && delta != 0)
        return 0;
    /* "the last year of college", "the next week" are not calendar units. */
    if (!part && delta != 0 && prev_in(m, i, (const char *const[]){"the", NULL}))
        return 0;
    int unit = unit_at(m, j + 1);
    if (unit < U_WEEK)
        return 0;
    o->end = skip_possessive(m, j + 2);
    if (!unit_window(m, o, unit, delta))
        return 0;
    if (part == 1)
        return o->from_us <= m->ref_us &&
               win_us(m, o, o->from_us, m->ref_us + 1, G_SPAN);
    if (part == 2)
        return o->to_us > m->ref_us && win_us(m, o, m->ref_us, o->to_us, G_SPAN);
    return 1;
}

/* Monday, on Friday, last Friday, this Monday, next Tuesday, Monday last
 * week, Monday, May 8, 2023 */
static int rx_weekday(const mctx *m, size_t i, int depth, int ctx_ok, cand *o)
{
    size_t j;
    int mode = modifier_at(m, i, &j);
    int is_abbr;
    int wd = weekday_at(m, j, 1, &is_abbr);
    if (wd < 0)
        return 0;
    if (mode == MODE_NONE) {
        if (is_abbr && !ctx_ok && !prev_in(m, i, PREP_WEEKDAY_ABBR))
            return 0;
        if (prev_in(m, i, (const char *const[]){"every", "each", NULL}))
            return 0;
    }
    size_t e = j + 1;
    if (is_abbr && punct_is(m, e, '.') && glued(m, e))
        e++;
    e = skip_possessive(m, e);
    int64_t mon = monday_of(m->ref_day);
    int64_t day;
    if (mode == MODE_THIS)
        day = mon + wd;
    else if (mode == MODE_NEXT)
        day = mon + 7 + wd;
    else {
        int back = (m->rwd - wd + 7) % 7;
        day = m->ref_day - (back ? back : 7);
    }
    if (mode == MODE_NONE && depth < MAX_DEPTH) {
        cand x;
        int comma = punct_is(m, e, ',');
        size_t k = comma || word_is(m, e, "of") ? e + 1 : e;
        memset(&x, 0, sizeof x);
        if (match_at(m, k, depth + 1, 1, &x)) {
            /* "Monday, May 8, 2023": the date says which Monday. */
            if (x.is_abs && x.grain == G_DAY && (comma || k == e)) {
                x.start = o->start;
                *o = x;
                return 1;
            }
            /* "Monday last week", "Friday of two weeks ago" */
            if (is_whole_week(&x) && !comma) {
                o->end = x.end;
                return win_days(m, o, x.from_us / DAY_US + wd,
                                x.from_us / DAY_US + wd + 1, G_DAY);
            }
        }
    }
    o->end = e;
    return win_days(m, o, day, day + 1, G_DAY);
}

/* month_year_tail -- an optional year after a month or a date: "2023",
 * ", 2023", "of 2023".  Returns the year (0 if none) and moves *e. */
static int month_year_tail(const mctx *m, size_t *e, int allow_of)
{
    size_t k = *e;
    if (punct_is(m, k, ','))
        k++;
    else if (allow_of && word_is(m, k, "of"))
        k++;
    int y = year_num_at(m, k);
    if (y)
        *e = k + 1;
    return y;
}

/* month_alone -- the month mon resolved by mode (see the header). */
static int month_alone(const mctx *m, cand *o, int mon, int mode)
{
    int64_t y = m->ry;
    switch (mode) {
    case MODE_LAST:
        if (mon >= m->rm)
            y--;
        break;
    case MODE_THIS:
        break;
    case MODE_NEXT:
        if (mon <= m->rm)
            y++;
        break;
    default:
        if (mon > m->rm)
            y--;
        break;
    }
    o->is_abs = 1;
    return win_months(m, o, y * 12 + mon - 1, y * 12 + mon, G_MONTH);
}

/* May 7, May 7th 2023, 7 May 2023, the 7th of May, May 2023, in May,
 * last May */
static int rx_month(const mctx *m, size_t i, int depth, int ctx_ok, cand *o)
{
    (void)depth;
    int mf = 0, is_ord = 0;
    size_t j = i, e;
    int has_the = 0;
    if (word_is(m, j, "the")) {
        has_the = 1;
        j++;
    }
    /* Day first: [the] D [of] MONTH [,] [YEAR] */
    size_t dend = j + 1;
    int d = day_num_at(m, j, &is_ord);
    int spelled = 0;
    if (!d) {
        d = ord_word_at(m, j, &dend);
        spelled = d != 0;
    }
    if (d) {
        size_t k = dend;
        int has_of = 0;
        if (word_is(m, k, "of")) {
            has_of = 1;
            k++;
        }
        int mon = month_at(m, k, &mf, &e);
        if (!mon)
            return 0;
        if ((spelled && !has_of) || (has_the && !has_of && !is_ord))
            return 0;
        int cap = (m->t[k].flags & F_CAP) != 0;
        int y = month_year_tail(m, &e, 0);
        if ((mf & (MF_AMBIG | MF_ABBR)) && !cap && !is_ord && !has_of && !y &&
            !spelled)
            return 0;
        o->end = e;
        return date_window(m, o, y ? y : -1, mon, d);
    }
    if (has_the)
        return 0;
    int mode = modifier_at(m, i, &j);
    if (mode == MODE_LATEST)
        return 0;
    int mon = month_at(m, j, &mf, &e);
    if (!mon)
        return 0;
    int cap = (m->t[j].flags & F_CAP) != 0;
    if (mode == MODE_NONE) {
        /* Month first: MONTH D[,] [YEAR] */
        d = day_num_at(m, e, &is_ord);
        if (d) {
            size_t k = e + 1;
            int y = month_year_tail(m, &k, 0);
            o->end = k;
            return date_window(m, o, y ? y : -1, mon, d);
        }
        size_t k = e;
        int y = month_year_tail(m, &k, 1);
        if (y) {
            o->end = k;
            o->is_abs = 1;
            return win_months(m, o, (int64_t)y * 12 + mon - 1,
                              (int64_t)y * 12 + mon, G_MONTH);
        }
        if ((mf & (MF_AMBIG | MF_ABBR)) && !ctx_ok &&
            !prev_in(m, i, PREP_MONTH))
            return 0;
        if (possessive(m, e))
            return 0;
    }
    /* "this may be": lowercase "may" followed by a word is the verb. */
    if (mon == 5 && !cap && e < m->n && m->t[e].type == T_WORD &&
        mode == MODE_THIS &&
        !is_time_word(m, e) && !word_is(m, e, "and") && !word_is(m, e, "or"))
        return 0;
    if (mode == MODE_NONE && (mf & MF_NAME) && name_follows(m, j, e))
        return 0;
    o->end = skip_possessive(m, e);
    return month_alone(m, o, mon, mode);
}

/* in 2022, the year 2022, "2022?" */
static int rx_year(const mctx *m, size_t i, int depth, int ctx_ok, cand *o)
{
    (void)depth;
    size_t j = i;
    int has_word = 0;
    if (word_is(m, j, "the") && word_is(m, j + 1, "year")) {
        j += 2;
        has_word = 1;
    } else if (word_is(m, j, "year")) {
        j++;
        has_word = 1;
    }
    int y = year_num_at(m, j);
    if (!y)
        return 0;
    if (!has_word && !ctx_ok) {
        if (y < 1900 || y > 2100)
            return 0;
        if (!prev_in(m, i, PREP_YEAR)) {
            /* Alone only between the start or punctuation and the end or
             * punctuation: "Trips, 2022?" but not "room 2023". */
            int before_ok = i == 0 || punct_in(&m->t[i - 1], ",.;:!?(\"");
            int after_ok = j + 1 >= m->n ||
                           punct_in(&m->t[j + 1], ",.;:!?)\"");
            if (!before_ok || !after_ok)
                return 0;
        }
    }
    o->end = skip_possessive(m, j + 1);
    o->is_abs = 1;
    return win_year(m, o, y);
}

/* 2023-05-07, 2023/05/07, 2023-05, 5/7/2023 */
static int rx_iso(const mctx *m, size_t i, int depth, int ctx_ok, cand *o)
{
    (void)depth;
    (void)ctx_ok;
    const tok *t = m->t;
    if (i >= m->n || t[i].type != T_NUM || (t[i].flags & F_ORD))
        return 0;
    /* Not the tail of something longer: "1/5/7/2023", "x2023-05". */
    if (i > 0 && glued(m, i) &&
        (t[i - 1].type != T_PUNCT || punct_in(&t[i - 1], "-/.$#:")))
        return 0;
#define NUM_AT(k, maxdig)                                                      \
    ((k) < m->n && t[k].type == T_NUM && !(t[k].flags & F_ORD) &&           \
     glued(m, k) && t[k].ndig <= (maxdig))
    int64_t y = 0;
    int mon = 0, d = 0, has_day = 0;
    size_t e;
    if (t[i].ndig == 4 && t[i].num >= 1000 &&
        (punct_is(m, i + 1, '-') || punct_is(m, i + 1, '/')) &&
        glued(m, i + 1) && NUM_AT(i + 2, 2)) {
        char sep = t[i + 1].p;
        y = t[i].num;
        mon = t[i + 2].num;
        if (punct_is(m, i + 3, sep) && glued(m, i + 3)) {
            if (!NUM_AT(i + 4, 2))
                return 0;
            d = t[i + 4].num;
            has_day = 1;
            e = i + 5;
        } else {
            e = i + 3;
        }
    } else if (t[i].ndig <= 2 && punct_is(m, i + 1, '/') && glued(m, i + 1) &&
               NUM_AT(i + 2, 2) && punct_is(m, i + 3, '/') &&
               glued(m, i + 3) && NUM_AT(i + 4, 4) && t[i + 4].ndig == 4) {
        mon = t[i].num;
        d = t[i + 2].num;
        y = t[i + 4].num;
        has_day = 1;
        e = i + 5;
    } else {
        return 0;
    }
#undef NUM_AT
    /* Nothing number-like may follow glued on ("2023-05-07-1", "2023-05x"),
     * except an ISO time ("T10:00"). */
    if (e < m->n && glued(m, e) &&
        (t[e].type == T_NUM || t[e].type == T_OTHER ||
         (t[e].type == T_WORD && !word_is(m, e, "t")) ||
         (punct_in(&t[e], "-/.,:") && e + 1 < m->n &&
          t[e + 1].type == T_NUM && glued(m, e + 1))))
        return 0;
    if (y < 1000 || mon < 1 || mon > 12)
        return 0;
    o->end = e;
    o->is_abs = 1;
    if (!has_day)
        return win_months(m, o, y * 12 + mon - 1, y * 12 + mon, G_MONTH);
    if (d < 1)
        return 0;
    return date_window(m, o, y, mon, d);
}

static int season_at(const mctx *m, size_t i)
{
    if (word_is(m, i, "spring"))
        return 0;
    if (word_is(m, i, "summer"))
        return 1;
    if (word_is(m, i, "autumn") || word_is(m, i, "fall"))
        return 2;
    if (word_is(m, i, "winter"))
        return 3;
    return -1;
}

/* last summer, this winter, in the spring, summer 2022, the fall of 2021 */
static int rx_season(const mctx *m, size_t i, int depth, int ctx_ok, cand *o)
{
    (void)depth;
    size_t j;
    int mode = modifier_at(m, i, &j);
    if (mode == MODE_NONE && word_is(m, i, "past")) {
        mode = MODE_LATEST;
        j = i + 1;
    }
    if (mode == MODE_NONE && word_is(m, j, "the")) {
        j++;
        if (word_is(m, j, "past")) {
            mode = MODE_LATEST;
            j++;
        }
    }
    int s = season_at(m, j);
    if (s < 0)
        return 0;
    size_t e = j + 1;
    /* A season starts in month 3 * s + 3 (winter: December). */
    int start_mon = 3 * s + 3;
    int64_t am;
    if (mode == MODE_NONE) {
        size_t k = word_is(m, e, "of") ? e + 1 : e;
        int y = year_num_at(m, k);
        if (y) {
            /* "winter 2023" is the winter holding January 2023. */
            am = (int64_t)(s == 3 ? y - 1 : y) * 12 + start_mon - 1;
            o->end = skip_possessive(m, k + 1);
            o->is_abs = 1;
            return win_months(m, o, am, am + 3, G_SEASON);
        }
        if (!ctx_ok && !prev_in(m, i, PREP_SEASON))
            return 0;
        if (possessive(m, e) || word_is(m, e, "of"))
            return 0;
        if (name_follows(m, j, e))
            return 0;
        mode = MODE_LATEST;
    }
    o->end = skip_possessive(m, e);
    /* The season holding ref starts cur; seasons are indexed from spring. */
    int64_t ref_am = m->ry * 12 + m->rm - 1;
    int cur_idx = ((m->rm + 9) % 12) / 3;
    int64_t cur = ref_am - ((m->rm + 9) % 12) % 3;
    int back = (cur_idx - s + 4) % 4;
    switch (mode) {
    case MODE_LAST:
        am = cur - 3 * (back ? back : 4);
        break;
    case MODE_THIS:
        am = back == 0 ? cur : m->ry * 12 + start_mon - 1;
        break;
    case MODE_NEXT: {
        int fwd = (s - cur_idx + 4) % 4;
        am = cur + 3 * (fwd ? fwd : 4);
        break;
    }
    default:
        am = cur - 3 * back;
        break;
    }
    return win_months(m, o, am, am + 3, G_SEASON);
}

/* my birthday, my last birthday */
static int rx_birthday(const mctx *m, size_t i, int depth, int ctx_ok, cand *o)
{
    (void)depth;
    (void)ctx_ok;
    if (!word_is(m, i, "my"))
        return 0;
    size_t j = i + 1;
    int strict = 0;
    if (word_is(m, j, "last")) {
        strict = 1;
        j++;
    }
    if (!word_is(m, j, "birthday") && !word_is(m, j, "bday"))
        return 0;
    int bm = m->c->birthday_month, bd = m->c->birthday_day;
    if (bm < 1 || bm > 12 || bd < 1 || bd > 31)
        return 0;
    int64_t y = m->ry;
    int64_t z = 0;
    for (int k = 0; k < 3; k++, y--) {
        int dd = bd > days_in_month(y, bm) ? days_in_month(y, bm) : bd;
        z = days_from_civil(y, bm, dd);
        if (z < m->ref_day || (!strict && z == m->ref_day))
            break;
    }
    o->end = skip_possessive(m, j + 1);
    return win_days(m, o, z, z + 1, G_DAY);
}

enum { H_XMAS_EVE, H_XMAS, H_NYE, H_NYD, H_HALLOWEEN, H_VALENTINE,
       H_THANKSGIVING, H_JULY4 };

/* holiday_day -- the day number of holiday h in year y. */
static int64_t holiday_day(int h, int64_t y)
{
    static const unsigned char md[][2] = {
        {12, 24}, {12, 25}, {12, 31}, {1, 1}, {10, 31}, {2, 14}, {11, 0},
        {7, 4}};
    if (h == H_THANKSGIVING) {
        int64_t nov1 = days_from_civil(y, 11, 1);
        int first_thu = (3 - weekday(nov1) + 7) % 7;
        return nov1 + first_thu + 21;
    }
    return days_from_civil(y, md[h][0], md[h][1]);
}

/* holiday_at -- a holiday name at token i; *strong is set when the
 * spelling cannot be anything else ("Christmas Eve", "Valentine's Day"). */
static int holiday_at(const mctx *m, size_t i, int *strong, size_t *end)
{
    static const struct {
        const char *seq[6]; /* "'" stands for an apostrophe token */
        int h, strong;
    } pat[] = {
        {{"christmas", "eve"}, H_XMAS_EVE, 1},
        {{"christmas", "day"}, H_XMAS, 1},
        {{"christmas"}, H_XMAS, 0},
        {{"xmas"}, H_XMAS, 0},
        {{"new", "year", "'", "s", "eve"}, H_NYE, 1},
        {{"new", "years", "eve"}, H_NYE, 1},
        {{"new", "year", "'", "s", "day"}, H_NYD, 1},
        {{"new", "years", "day"}, H_NYD, 1},
        {{"new", "year", "'", "s"}, H_NYD, 0},
        {{"new", "years"}, H_NYD, 0},
        {{"new", "year"}, H_NYD, 0},
        {{"halloween"}, H_HALLOWEEN, 0},
        {{"valentine", "'", "s", "day"}, H_VALENTINE, 1},
        {{"valentines", "day"}, H_VALENTINE, 1},
        {{"thanksgiving", "day"}, H_THANKSGIVING, 1},
        {{"thanksgiving"}, H_THANKSGIVING, 0},
        {{"independence", "day"}, H_JULY4, 0},
    };
    for (size_t p = 0; p < sizeof pat / sizeof pat[0]; p++) {
        size_t k = i;
        int ok = 1;
        for (int s = 0; s < 6 && pat[p].seq[s]; s++, k++) {
            const char *w = pat[p].seq[s];
            if (w[0] == '\'' ? !(punct_is(m, k, '\'') && glued(m, k))
                             : !word_is(m, k, w)) {
                ok = 0;
                break;
            }
        }
        if (ok) {
            *strong = pat[p].strong;
            *end = k;
            return pat[p].h;
        }
    }
    return -1;
}

/* on Christmas, last Christmas, New Year's Eve 2022, during Thanksgiving */
static int rx_holiday(const mctx *m, size_t i, int depth, int ctx_ok, cand *o)
{
    (void)depth;
    size_t j;
    int mode = modifier_at(m, i, &j);
    if (mode == MODE_LATEST)
        return 0;
    int strong;
    size_t e;
    int h = holiday_at(m, j, &strong, &e);
    if (h < 0)
        return 0;
    e = skip_possessive(m, e);
    if (mode == MODE_NONE) {
        size_t k = e;
        int y = month_year_tail(m, &k, 1);
        if (y) {
            o->end = k;
            o->is_abs = 1;
            int64_t z = holiday_day(h, y);
            return win_days(m, o, z, z + 1, G_DAY);
        }
        if (!strong && !ctx_ok && !prev_in(m, i, PREP_HOLIDAY))
            return 0;
    }
    int64_t y = m->ry, z;
    switch (mode) {
    case MODE_THIS:
        z = holiday_day(h, y);
        break;
    case MODE_NEXT:
        z = holiday_day(h, y);
        if (z <= m->ref_day)
            z = holiday_day(h, y + 1);
        break;
    case MODE_LAST:
        z = holiday_day(h, y);
        if (z >= m->ref_day)
            z = holiday_day(h, y - 1);
        break;
    default:
        z = holiday_day(h, y);
        if (z > m->ref_day)
            z = holiday_day(h, y - 1);
        break;
    }
    o->end = e;
    return win_days(m, o, z, z + 1, G_DAY);
}

/* early May, mid-2023, late last year, the end of last month */
static int rx_part(const mctx *m, size_t i, int depth, int ctx_ok, cand *o)
{
    (void)ctx_ok;
    if (depth >= MAX_DEPTH)
        return 0;
    size_t j = i;
    int which; /* 0 early, 1 middle, 2 late */
    int adjective = 1;
    if (word_is(m, j, "early"))
        which = 0;
    else if (word_is(m, j, "mid"))
        which = 1;
    else if (word_is(m, j, "late"))
        which = 2;
    else {
        adjective = 0;
        if (word_is(m, j, "the"))
            j++;
        if (word_is(m, j, "beginning") || word_is(m, j, "start"))
            which = 0;
        else if (word_is(m, j, "middle"))
            which = 1;
        else if (word_is(m, j, "end"))
            which = 2;
        else
            return 0;
        if (!word_is(m, j + 1, "of"))
            return 0;
        j++;
    }
    j++;
    if (punct_is(m, j, '-') && glued(m, j))
        j++;
    cand x;
    memset(&x, 0, sizeof x);
    if (!match_at(m, j, depth + 1, 1, &x) || x.kind != TIMEX_WINDOW)
        return 0;
    if (x.grain != G_WEEK && x.grain != G_MONTH && x.grain != G_SEASON &&
        x.grain != G_YEAR)
        return 0;
    /* "I was late last week" is about being late: the adjectives do not
     * narrow a relative week (they do narrow "late May", "early 2023",
     * "late last year", "early last summer"). */
    if (adjective && !x.is_abs && x.grain == G_WEEK)
        return 0;
    int64_t d0 = x.from_us / DAY_US, d1 = x.to_us / DAY_US;
    int64_t a, b;
    if (x.grain == G_YEAR) {
        int64_t y, am0;
        int mon, dd;
        civil_from_days(d0, &y, &mon, &dd);
        am0 = y * 12;
        a = month_first_day(am0 + 4) - d0;
        b = month_first_day(am0 + 8) - d0;
    } else {
        a = (d1 - d0) / 3;
        b = 2 * (d1 - d0) / 3;
    }
    o->end = x.end;
    o->is_abs = x.is_abs;
    if (which == 0)
        return win_days(m, o, d0, d0 + a, G_SPAN);
    if (which == 1)
        return win_days(m, o, d0 + a, d0 + b, G_SPAN);
    return win_days(m, o, d0 + b, d1, G_SPAN);
}

/* the first half of 2023, the second week of May, the last week of May */
static int rx_sub(const mctx *m, size_t i, int depth, int ctx_ok, cand *o)
{
    (void)ctx_ok;
    if (depth >= MAX_DEPTH)
        return 0;
    static const char *const nth_w[] = {"first", "second", "third", "fourth",
                                        "last"};
    size_t j = word_is(m, i, "the") ? i + 1 : i;
    int nth = 0;
    for (int k = 0; k < 5; k++)
        if (word_is(m, j, nth_w[k]))
            nth = k + 1;
    int half = word_is(m, j + 1, "half");
    if (!nth || (!half && !word_is(m, j + 1, "week")) ||
        !word_is(m, j + 2, "of"))
        return 0;
    if (half && nth > 2 && nth != 5)
        return 0;
    cand x;
    memset(&x, 0, sizeof x);
    if (!match_at(m, j + 3, depth + 1, 1, &x) || x.kind != TIMEX_WINDOW)
        return 0;
    int64_t d0 = x.from_us / DAY_US, d1 = x.to_us / DAY_US;
    o->end = x.end;
    o->is_abs = x.is_abs;
    if (half) {
        if (x.grain != G_MONTH && x.grain != G_SEASON && x.grain != G_YEAR)
            return 0;
        int64_t mid = d0 + (d1 - d0) / 2;
        if (x.grain == G_YEAR) {
            int64_t y;
            int mon, dd;
            civil_from_days(d0, &y, &mon, &dd);
            mid = month_first_day(y * 12 + 6);
        }
        return nth == 1 ? win_days(m, o, d0, mid, G_SPAN)
                        : win_days(m, o, mid, d1, G_SPAN);
    }
    /* Weeks of a month count from its first day: days 1-7, 8-14, ...;
     * the last week is its last seven days. */
    if (x.grain != G_MONTH)
        return 0;
    if (nth == 5)
        return win_days(m, o, d1 - 7, d1, G_SPAN);
    return win_days(m, o, d0 + 7 * (nth - 1), d0 + 7 * nth, G_SPAN);
}

/* since May, since last week */
static int rx_since(const mctx *m, size_t i, int depth, int ctx_ok, cand *o)
{
    (void)ctx_ok;
    if (depth >= MAX_DEPTH || !word_is(m, i, "since"))
        return 0;
    cand x;
    memset(&x, 0, sizeof x);
    if (!match_at(m, i + 1, depth + 1, 1, &x) || x.kind != TIMEX_WINDOW ||
        x.from_us > m->ref_us)
        return 0;
    o->end = x.end;
    o->is_abs = x.is_abs;
    return win_us(m, o, x.from_us, m->ref_us + 1, G_SPAN);
}

/* from May to July, between 2021 and 2023 */
static int rx_range(const mctx *m, size_t i, int depth, int ctx_ok, cand *o)
{
    (void)ctx_ok;
    if (depth >= MAX_DEPTH)
        return 0;
    int between = word_is(m, i, "between");
    if (!between && !word_is(m, i, "from"))
        return 0;
    cand x, y;
    memset(&x, 0, sizeof x);
    memset(&y, 0, sizeof y);
    if (!match_at(m, i + 1, depth + 1, 1, &x) || x.kind != TIMEX_WINDOW)
        return 0;
    size_t k = x.end;
    static const char *const from_to[] = {"to", "until", "till", "through",
                                          NULL};
    if (between ? !word_is(m, k, "and")
                : !(word_in(m, k, from_to) || punct_is(m, k, '-')))
        return 0;
    if (!match_at(m, k + 1, depth + 1, 1, &y) || y.kind != TIMEX_WINDOW ||
        y.to_us <= x.from_us)
        return 0;
    o->end = y.end;
    o->is_abs = x.is_abs && y.is_abs;
    return win_us(m, o, x.from_us, y.to_us, G_SPAN);
}

/* the week before 9 June 2023, the weekend of May 7, last Friday before
 * July 15 */
static int rx_anchor(const mctx *m, size_t i, int depth, int ctx_ok, cand *o)
{
    (void)ctx_ok;
    if (depth >= MAX_DEPTH)
        return 0;
    size_t j = i;
    int count = 0; /* 0: "the day/week before", else "N days before" */
    if (word_is(m, j, "the") || word_is(m, j, "last")) {
        j++;
    } else {
        size_t k;
        if (count_at(m, j, &count, &k) && count != COUNT_FEW)
            j = k;
        else
            count = 0;
    }
    int is_abbr;
    int wd = count ? -1 : weekday_at(m, j, 0, &is_abbr);
    int unit = wd >= 0 ? -1 : unit_at(m, j);
    if (wd < 0 && unit != U_DAY && unit != U_WEEK && unit != U_WEEKEND)
        return 0;
    if (count && unit == U_WEEKEND)
        return 0;
    /* A plural unit needs a count: "weeks before May 7" says too little. */
    if (!count && (word_is(m, j, "days") || word_is(m, j, "weeks")))
        return 0;
    int rel; /* -1 before, 0 of, +1 after */
    if (word_is(m, j + 1, "before"))
        rel = -1;
    else if (word_is(m, j + 1, "after"))
        rel = 1;
    else if (word_is(m, j + 1, "of") && (unit == U_WEEK || unit == U_WEEKEND))
        rel = 0;
    else
        return 0;
    if (count && rel == 0)
        return 0;
    cand x;
    memset(&x, 0, sizeof x);
    if (!match_at(m, j + 2, depth + 1, 1, &x) || !is_whole_day(&x))
        return 0;
    int64_t d = x.from_us / DAY_US, mon = monday_of(d);
    o->end = x.end;
    o->is_abs = x.is_abs;
    if (wd >= 0) {
        int64_t z;
        if (rel < 0) {
            int back = (weekday(d) - wd + 7) % 7;
            z = d - (back ? back : 7);
        } else {
            int fwd = (wd - weekday(d) + 7) % 7;
            z = d + (fwd ? fwd : 7);
        }
        return win_days(m, o, z, z + 1, G_DAY);
    }
    int64_t n = count ? count : 1;
    switch (unit) {
    case U_DAY:
        return win_days(m, o, d + rel * n, d + rel * n + 1, G_DAY);
    case U_WEEK:
        /* The 7 days ending just before D - 7(n-1), or starting just
         * after D + 7(n-1). */
        if (rel < 0)
            return win_days(m, o, d - 7 * n, d - 7 * n + 7, G_SPAN);
        if (rel > 0)
            return win_days(m, o, d + 7 * n - 6, d + 7 * n + 1, G_SPAN);
        return win_days(m, o, mon, mon + 7, G_WEEK);
    default: /* weekend */
        if (rel < 0)
            return win_days(m, o, mon - 2, mon, G_SPAN);
        if (rel > 0) {
            int64_t sat = d < mon + 5 ? mon + 5 : mon + 12;
            return win_days(m, o, sat, sat + 2, G_SPAN);
        }
        return win_days(m, o, mon + 5, mon + 7, G_SPAN);
    }
}

static const rx_fn RECOGNIZERS[] = {
    rx_recent, rx_dayword, rx_ago,     rx_rolling, rx_calrel, rx_weekday,
    rx_month,  rx_year,    rx_iso,     rx_season,  rx_birthday, rx_holiday,
    rx_part,   rx_sub,     rx_since,   rx_range,   rx_anchor,
};

/* refine -- a day followed by a part of it ("yesterday morning", "Friday
 * at night"), a week followed by a day name ("last week on Tuesday"). */
static void refine(const mctx *m, cand *c)
{
    size_t k = c->end;
    if (is_whole_day(c)) {
        if (word_is(m, k, "in") && word_is(m, k + 1, "the"))
            k += 2;
        else if (word_is(m, k, "at") && word_is(m, k + 1, "night"))
            k += 1;
        int pd = part_word(m, k);
        cand r = *c;
        if (pd >= 0 && win_part(m, &r, c->from_us / DAY_US, pd)) {
            r.end = k + 1;
            *c = r;
        }
        return;
    }
    if (is_whole_week(c)) {
        if (word_is(m, k, "on") || punct_is(m, k, ','))
            k++;
        int is_abbr;
        int wd = weekday_at(m, k, 0, &is_abbr);
        cand r = *c;
        int64_t d = c->from_us / DAY_US + wd;
        if (wd >= 0 && win_days(m, &r, d, d + 1, G_DAY)) {
            r.end = skip_possessive(m, k + 1);
            *c = r;
        }
    }
}

/*
 * match_at -- the longest claim of any recognizer starting at token i.
 * ctx_ok says a wrapper already supplied the context a bare month, season
 * or year needs.  Returns 1 with *best filled, or 0.
 */
static int match_at(const mctx *m, size_t i, int depth, int ctx_ok, cand *best)
{
    if (i >= m->n || depth > MAX_DEPTH)
        return 0;
    int found = 0;
    for (size_t r = 0; r < sizeof RECOGNIZERS / sizeof RECOGNIZERS[0]; r++) {
        cand c;
        memset(&c, 0, sizeof c);
        c.start = i;
        if (!RECOGNIZERS[r](m, i, depth, ctx_ok, &c) || c.end <= i ||
            c.end > m->n)
            continue;
        if (!found || c.end > best->end) {
            *best = c;
            found = 1;
        }
    }
    if (found)
        refine(m, best);
    return found;
}

/* ---- selection and output ---------------------------------------------- */

/* better -- a beats b: any window beats "recent"; then the narrower
 * window; then the one spelled with calendar names or numbers. */
static int better(const cand *a, const cand *b)
{
    if (a->kind != b->kind)
        return a->kind == TIMEX_WINDOW;
    if (a->kind != TIMEX_WINDOW)
        return 0;
    int64_t wa = a->to_us - a->from_us, wb = b->to_us - b->from_us;
    if (wa != wb)
        return wa < wb;
    return a->is_abs > b->is_abs;
}

static int put_stamp(char *buf, size_t cap, int64_t us, int with_time)
{
    int64_t z = floor_div(us, DAY_US), y;
    int mon, d;
    civil_from_days(z, &y, &mon, &d);
    int64_t min = floor_div(floor_mod(us, DAY_US), INT64_C(60000000));
    int n = with_time ? snprintf(buf, cap, "%04lld-%02d-%02dT%02d:%02d",
                                 (long long)y, mon, d, (int)(min / 60),
                                 (int)(min % 60))
                      : snprintf(buf, cap, "%04lld-%02d-%02d", (long long)y,
                                 mon, d);
    return n > 0 && (size_t)n < cap;
}

/* make_label -- see "Format owned" at the top of this file. */
static void make_label(timex *out)
{
    char a[32], b[32];
    out->label[0] = '\0';
    if (out->kind == TIMEX_RECENT) {
        memcpy(out->label, "recent", 7);
        return;
    }
    if (out->kind != TIMEX_WINDOW)
        return;
    int whole = floor_mod(out->from_us, DAY_US) == 0 &&
                floor_mod(out->to_us, DAY_US) == 0;
    if (!put_stamp(a, sizeof a, out->from_us, !whole) ||
        !put_stamp(b, sizeof b, out->to_us, !whole))
        return;
    if (whole) {
        int64_t d0 = out->from_us / DAY_US, d1 = out->to_us / DAY_US, y;
        int mon, d;
        civil_from_days(d0, &y, &mon, &d);
        if (d1 - d0 == 1) {
            memcpy(out->label, a, strlen(a) + 1);
            return;
        }
        int64_t am = y * 12 + mon - 1;
        if (d == 1 && d1 == month_first_day(am + 1)) {
            a[7] = '\0';
            memcpy(out->label, a, strlen(a) + 1);
            return;
        }
        if (d == 1 && mon == 1 && d1 == month_first_day(am + 12)) {
            a[4] = '\0';
            memcpy(out->label, a, strlen(a) + 1);
            return;
        }
    }
    int n = snprintf(out->label, sizeof out->label, "%s..%s", a, b);
    if (n < 0 || (size_t)n >= sizeof out->label)
        out->label[sizeof out->label - 1] = '\0';
}

/* Time prepositions directly before a claim that belong to its span. */
static const char *const SPAN_PREP[] = {"in",         "on",     "at",
                                        "during",     "over",   "throughout",
                                        "around",     "sometime", NULL};

int timex_parse(const char *query, size_t len, const timex_ctx *c, timex *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!query || !c || !out)
        return err_set_msg(DM_EINVAL, "timex_parse: %s is NULL",
                           !query ? "query" : !c ? "ctx" : "out");
    mctx m;
    memset(&m, 0, sizeof m);
    m.c = c;
    m.ref_us = c->ref_us;
    m.min_day = days_from_civil(1, 1, 1);
    m.max_day = days_from_civil(10000, 1, 1);
    m.ref_day = floor_div(c->ref_us, DAY_US);
    /* Outside years 1..9999 (with a year of slack for "next year") there
     * is no calendar to speak of: nothing parses. */
    if (m.ref_day < m.min_day + 366 || m.ref_day >= m.max_day - 366)
        return DM_OK;
    civil_from_days(m.ref_day, &m.ry, &m.rm, &m.rd);
    m.rwd = weekday(m.ref_day);
    /* Spans are 32-bit offsets; longer text is read up to 4 GiB. */
    if (len > UINT32_MAX)
        len = UINT32_MAX;

    tok t[MAX_TOK];
    /* resume: tokens before this byte were examined already; claimed: the
     * end of the last claim, which a span may not reach back over. */
    size_t pos = 0, resume = 0, claimed = 0;
    cand best;
    uint32_t best_off = 0, best_len = 0;
    int have = 0;
    memset(&best, 0, sizeof best);
    for (;;) {
        size_t stop;
        size_t n = tokenize(query, len, pos, t, MAX_TOK, &stop);
        int at_end = stop >= len;
        m.t = t;
        m.n = n;
        size_t limit = at_end ? n : n - LOOKAHEAD;
        for (size_t i = 0; i < limit; i++) {
            if (t[i].off < resume)
                continue;
            cand cd;
            memset(&cd, 0, sizeof cd);
            if (!match_at(&m, i, 0, 0, &cd))
                continue;
            size_t s = cd.start;
            if (s > 0 && word_in(&m, s - 1, SPAN_PREP) &&
                t[s - 1].off >= claimed) {
                s--;
                if (word_is(&m, s, "in") && s > 0 &&
                    word_is(&m, s - 1, "back") && t[s - 1].off >= claimed)
                    s--;
            }
            const tok *last = &t[cd.end - 1];
            uint32_t off = t[s].off;
            uint32_t end_off = last->off + last->len;
            if (!have || better(&cd, &best)) {
                best = cd;
                best_off = off;
                best_len = end_off - off;
                have = 1;
            }
            resume = claimed = end_off;
            i = cd.end - 1;
        }
        if (at_end)
            break;
        /* Continue with the next chunk, keeping a little context before
         * the first token not examined yet. */
        size_t u = limit;
        while (u < n && t[u].off < resume)
            u++;
        size_t back = u > LOOKBEHIND ? u - LOOKBEHIND : 0;
        if (u < n && resume < t[u].off)
            resume = t[u].off;
        pos = u < n ? t[back].off : stop;
    }
    if (!have)
        return DM_OK;
    out->kind = best.kind;
    if (best.kind == TIMEX_WINDOW) {
        out->from_us = best.from_us;
        out->to_us = best.to_us;
    }
    out->span_off = best_off;
    out->span_len = best_len;
    make_label(out);
    return DM_OK;
}
