/*
 * tokenize.c -- split UTF-8 text into normalized word tokens.
 *
 * What: the one tokenizer behind both retrieval legs (the embedding model
 * and the BM25 analyzer).  The rules are stated in tokenize.h; this file
 * adds the details below.
 *
 * Design.  Tokenizing happens in three steps over one pass of the input:
 *
 *   1. tok_utf8_valid checks the whole input first, so that an error can
 *      name the byte offset and the later steps can decode without checks.
 *   2. A lexer cuts the input into "chunks" (maximal stretches of word
 *      characters and joiners) and each chunk into items: RUN (a maximal
 *      run of letters, digits and combining marks, already normalized),
 *      APOS / HYPH / DOT / COMMA (a joiner character) and BREAK (two runs
 *      that touch but must not merge).  A run of pure ASCII is normalized
 *      by lower-casing it byte by byte, which is exactly what NFKC plus
 *      case folding does to ASCII letters and digits; only a run holding a
 *      non-ASCII code point goes through utf8proc (decompose with
 *      STABLE|COMPAT|CASEFOLD, compose, re-encode: the same transform as
 *      utf8proc_map with STABLE|COMPOSE|COMPAT|CASEFOLD, but into a buffer
 *      we own so that no allocation happens per run).
 *   3. A parser walks a chunk's items: runs joined by an apostrophe (any
 *      neighbours) or by '.' / ',' (digit on both sides) form a word; words
 *      joined by a hyphen form a compound; a final apostrophe + English
 *      clitic is split off.  A joiner that does not join separates.
 *
 * Details beyond the header:
 *   - Normalization is applied per run, never across a separator, so that
 *     every token keeps the input offset of its first code point.  If NFKC
 *     turns a run into text holding non-word characters (U+2474 "(1)" ->
 *     "(1)", U+00BD -> "1/2" with a fraction slash) the run is cut there;
 *     the pieces share the run's input offset.
 *   - Han ideographs and Hiragana are one token per character (with any
 *     combining marks that follow), as in the Unicode word-break rules used
 *     by search engines: Chinese and Japanese do not separate words with
 *     spaces, and a whole sentence as one token would never match a query.
 *     Katakana, Hangul and every other script keep whole runs.
 *   - Combining marks continue a run; a mark with no letter or digit before
 *     it is dropped as a separator, as are variation selectors, so emoji
 *     presentation sequences ("1" U+FE0F U+20E3, a heart + U+FE0F) leave no
 *     stray tokens.  Emoji and other symbols separate.
 *   - Apostrophes recognized: U+0027, U+2019, U+FF07; all become "'" in the
 *     output.  Hyphens: U+002D, U+2010, U+2011, U+FF0D, all become "-".
 *     Full-width '.' and ',' (U+FF0E, U+FF0C) join digits like ASCII ones.
 *   - "n't" is split only when letters remain before the 'n' in the same
 *     run ("don't" -> "do" "n't", "can't" -> "ca" "n't"); clitics are only
 *     recognized at the end of the last word of a compound.
 *
 * Invariants: every token's text is non-empty and NUL-terminated in
 * l->text; tokens appear in input order (a compound before its parts, a
 * clitic after its word); src_off is the input offset of the first code
 * point the token came from (for a clitic, its apostrophe, or the 'n' of
 * "n't").
 *
 * Locking: none.  All state lives in the caller's tok_list and in a
 * per-call scratch area on the stack (spilling to the heap for very long
 * chunks), so distinct lists may be used from many threads at once.
 *
 * Format owned: none.
 */
#include "embed/tokenize.h"

#include <string.h>
#include <utf8proc.h>

#include "base/alloc.h"
#include "base/err.h"

#define NORM_OPTS                                                              \
    (UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD)

/* ---------------------------------------------------------------- UTF-8 */

int tok_utf8_valid(const char *s, size_t len, size_t *bad_off)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        /* Skip ASCII eight bytes at a time: most text is mostly ASCII. */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & UINT64_C(0x8080808080808080))
                break;
            i += 8;
        }
        if (i >= len)
            break;
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t min, cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2; min = 0x80; cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3; min = 0x800; cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4; min = 0x10000; cp = c & 0x07;
        } else {
            goto bad; /* continuation byte, C0/C1 overlong lead, F5..FF */
        }
        if (len - i < n)
            goto bad;
        for (size_t k = 1; k < n; k++) {
            uint8_t cc = p[i + k];
            if ((cc & 0xC0) != 0x80)
                goto bad;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            goto bad;
        i += n;
    }
    if (bad_off)
        *bad_off = 0;
    return 1;
bad:
    if (bad_off)
        *bad_off = i;
    return 0;
}

/* decode -- the code point at p (input already validated); *n gets its
 * byte length. */
static inline uint32_t decode(const uint8_t *p, size_t *n)
{
    uint8_t c = p[0];
    if (c < 0x80) {
        *n = 1;
        return c;
    }
    if (c < 0xE0) {
        *n = 2;
        return ((uint32_t)(c & 0x1F) << 6) | (p[1] & 0x3F);
    }
    if (c < 0xF0) {
        *n = 3;
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) |
               (p[2] & 0x3F);
    }
    *n = 4;
    return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
           ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

/* -------------------------------------------------------- classification */

enum cls {
    C_SEP = 0,  /* separates tokens */
    C_WORD,     /* letter or digit: starts or continues a run */
    C_MARK,     /* combining mark: continues a run, else separates */
    C_SINGLE,   /* Han / Hiragana: a one-character word */
    C_APOS,
    C_HYPH,
    C_DOT,
    C_COMMA,
};

/* ASCII classes, one table lookup per byte on the fast path. */
#define W_ C_WORD
static const uint8_t ascii_tab[128] = {
    ['\''] = C_APOS, ['-'] = C_HYPH, ['.'] = C_DOT, [','] = C_COMMA,
    ['0'] = W_, W_, W_, W_, W_, W_, W_, W_, W_, W_,
    ['A'] = W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_,
    W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_,
    ['a'] = W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_,
    W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_,
};
#undef W_

static inline uint8_t ascii_cls(uint32_t c)
{
    return ascii_tab[c];
}

static int is_single(uint32_t cp)
{
    return (cp >= 0x3040 && cp <= 0x309F) ||   /* Hiragana */
           (cp >= 0x3400 && cp <= 0x4DBF) ||   /* CJK extension A */
           (cp >= 0x4E00 && cp <= 0x9FFF) ||   /* CJK unified */
           (cp >= 0xF900 && cp <= 0xFAFF) ||   /* CJK compatibility */
           (cp >= 0x20000 && cp <= 0x3134F);   /* CJK extensions B.. */
}

static uint8_t uni_cls(uint32_t cp)
{
    if (cp < 0x80)
        return ascii_cls(cp);
    switch (cp) {
    case 0x2019: case 0xFF07: return C_APOS;
    case 0x2010: case 0x2011: case 0xFF0D: return C_HYPH;
    case 0xFF0E: return C_DOT;
    case 0xFF0C: return C_COMMA;
    default: break;
    }
    if ((cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xE0100 && cp <= 0xE01EF))
        return C_SEP; /* variation selectors */
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    if (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO)
        return is_single(cp) ? C_SINGLE : C_WORD;
    if (c >= UTF8PROC_CATEGORY_MN && c <= UTF8PROC_CATEGORY_ME)
        return C_MARK;
    if (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO)
        return C_WORD;
    return C_SEP;
}

/* Whether a normalized code point may stay inside a run. */
static int is_wordish(uint32_t cp)
{
    if (cp < 0x80)
        return ascii_cls(cp) == C_WORD;
    if ((cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xE0100 && cp <= 0xE01EF))
        return 0;
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_NO;
}

static int is_digit_cp(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= '0' && cp <= '9';
    return utf8proc_category((utf8proc_int32_t)cp) == UTF8PROC_CATEGORY_ND;
}

/* --------------------------------------------------------------- scratch */

enum item_kind { IT_RUN, IT_APOS, IT_HYPH, IT_DOT, IT_COMMA, IT_BREAK };

typedef struct item {
    uint8_t kind;
    uint8_t first_digit, last_digit; /* runs: normalized first/last is Nd */
    uint32_t off, len;               /* runs: normalized bytes in scratch */
    uint32_t src_off;                /* input offset of the first code point */
    uint32_t src_last;               /* runs: input offset of the last one */
} item;

#define N_ITEMS_STACK 64
#define TEXT_STACK 1024
#define CPS_STACK 256

/* Per-call scratch: stack arrays, moved to the heap only when a chunk or a
 * run is longer than they hold. */
typedef struct scratch {
    item *items;
    uint32_t n_items, items_cap;
    char *text;
    size_t text_len, text_cap;
    int32_t *cps;
    size_t cps_cap;
    item items_stack[N_ITEMS_STACK];
    char text_stack[TEXT_STACK];
    int32_t cps_stack[CPS_STACK];
} scratch;

static void scratch_init(scratch *s)
{
    s->items = s->items_stack;
    s->n_items = 0;
    s->items_cap = N_ITEMS_STACK;
    s->text = s->text_stack;
    s->text_len = 0;
    s->text_cap = TEXT_STACK;
    s->cps = s->cps_stack;
    s->cps_cap = CPS_STACK;
}

static void scratch_fini(scratch *s)
{
    if (s->items != s->items_stack)
        dm_free(s->items);
    if (s->text != s->text_stack)
        dm_free(s->text);
    if (s->cps != s->cps_stack)
        dm_free(s->cps);
}

/* grow -- make room for at least need elements of size sz in *p (cap *cap),
 * moving off the stack array stack_p on first growth. */
static int grow(void **p, size_t *cap, size_t need, size_t sz,
                const void *stack_p)
{
    if (need <= *cap)
        return DM_OK;
    size_t nc = *cap * 2;
    while (nc < need)
        nc *= 2;
    void *q;
    if (*p == stack_p) {
        q = dm_malloc(nc * sz);
        if (q)
            memcpy(q, *p, *cap * sz);
    } else {
        q = dm_realloc(*p, nc * sz);
    }
    if (!q)
        return DM_ENOMEM;
    *p = q;
    *cap = nc;
    return DM_OK;
}

/* new_item -- append an item of the given kind and source offset; the
 * caller fills in the rest.  Written in place rather than copied from a
 * local so that the stores are not re-read through a wider load (a
 * store-forwarding stall that cost a quarter of the run time). */
static item *new_item(scratch *s, uint8_t kind, uint32_t src_off)
{
    if (s->n_items == s->items_cap) {
        void *p = s->items;
        size_t cap = s->items_cap;
        if (grow(&p, &cap, (size_t)s->n_items + 1, sizeof(item),
                 s->items_stack))
            return NULL;
        s->items = p;
        s->items_cap = (uint32_t)cap;
    }
    item *it = &s->items[s->n_items++];
    it->kind = kind;
    it->first_digit = it->last_digit = 0;
    it->off = it->len = 0;
    it->src_off = src_off;
    it->src_last = src_off;
    return it;
}

static int text_reserve(scratch *s, size_t extra)
{
    void *p = s->text;
    int rc = grow(&p, &s->text_cap, s->text_len + extra, 1, s->text_stack);
    s->text = p;
    return rc;
}

/* ----------------------------------------------------------------- lexer */

static int push_joiner(scratch *s, uint8_t cls, uint32_t src_off)
{
    uint8_t kind = cls == C_APOS ? IT_APOS
                 : cls == C_HYPH ? IT_HYPH
                 : cls == C_DOT ? IT_DOT : IT_COMMA;
    return new_item(s, kind, src_off) ? DM_OK : DM_ENOMEM;
}

/* push_run -- record normalized bytes [off, off+len) of the scratch
 * text as one RUN item (the caller has already written them). */
static int push_run(scratch *s, size_t off, size_t len, uint32_t src_off,
                    uint32_t src_last, int first_digit, int last_digit)
{
    item *it = new_item(s, IT_RUN, src_off);
    if (!it)
        return DM_ENOMEM;
    it->off = (uint32_t)off;
    it->len = (uint32_t)len;
    it->src_last = src_last;
    it->first_digit = (uint8_t)first_digit;
    it->last_digit = (uint8_t)last_digit;
    return DM_OK;
}

/* lex_ascii_run -- a run of ASCII letters and digits: lower-case it. */
static int lex_ascii_run(scratch *s, const uint8_t *p, size_t n,
                         uint32_t src_off)
{
    int rc = text_reserve(s, n);
    if (rc)
        return rc;
    char *d = s->text + s->text_len;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        d[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    size_t off = s->text_len;
    s->text_len += n;
    return push_run(s, off, n, src_off, src_off + (uint32_t)n - 1,
                    p[0] <= '9', p[n - 1] <= '9');
}

/*
 * lex_uni_run -- a run holding non-ASCII code points: NFKC + case fold it
 * through utf8proc, then cut it wherever the result holds a character that
 * is not a letter, digit or mark.
 */
static int lex_uni_run(scratch *s, const uint8_t *p, size_t n,
                       uint32_t src_off, uint32_t src_last)
{
    utf8proc_ssize_t ncp;
    for (;;) {
        ncp = utf8proc_decompose(p, (utf8proc_ssize_t)n, s->cps,
                                 (utf8proc_ssize_t)s->cps_cap - 1,
                                 NORM_OPTS);
        if (ncp < 0)
            return err_set_msg(DM_EINVAL, "tokenize: cannot normalize text "
                               "at byte %u: %s", src_off,
                               utf8proc_errmsg(ncp));
        if ((size_t)ncp < s->cps_cap)
            break;
        /* +1: utf8proc_reencode needs one spare byte past the input. */
        void *q = s->cps;
        int rc = grow(&q, &s->cps_cap, (size_t)ncp + 1, sizeof(int32_t),
                      s->cps_stack);
        s->cps = q;
        if (rc)
            return rc;
    }
    ncp = utf8proc_normalize_utf32(s->cps, ncp, NORM_OPTS);
    if (ncp < 0)
        return err_set_msg(DM_EINVAL, "tokenize: cannot normalize text at "
                           "byte %u: %s", src_off, utf8proc_errmsg(ncp));
    int rc = text_reserve(s, (size_t)ncp * 4 + 1);
    if (rc)
        return rc;
    /* Encode piece by piece, cutting at non-word characters. */
    utf8proc_ssize_t i = 0;
    int pushed = 0;
    while (i < ncp) {
        while (i < ncp && !is_wordish((uint32_t)s->cps[i]))
            i++;
        if (i >= ncp)
            break;
        if (pushed && !new_item(s, IT_BREAK, src_off))
            return DM_ENOMEM;
        size_t off = s->text_len;
        uint32_t first = (uint32_t)s->cps[i], last = first;
        while (i < ncp && is_wordish((uint32_t)s->cps[i])) {
            last = (uint32_t)s->cps[i];
            s->text_len += (size_t)utf8proc_encode_char(
                s->cps[i], (utf8proc_uint8_t *)s->text + s->text_len);
            i++;
        }
        if ((rc = push_run(s, off, s->text_len - off, src_off, src_last,
                           is_digit_cp(first), is_digit_cp(last))))
            return rc;
        pushed = 1;
    }
    return DM_OK;
}

/* ---------------------------------------------------------------- output */

static int out_reserve(tok_list *l, size_t text_extra)
{
    if (l->n == l->cap) {
        uint32_t nc = l->cap ? l->cap * 2 : 16;
        tok_token *t = dm_realloc(l->toks, (size_t)nc * sizeof *t);
        if (!t)
            return DM_ENOMEM;
        l->toks = t;
        l->cap = nc;
    }
    if (l->text_len + text_extra > l->text_cap) {
        size_t nc = l->text_cap ? l->text_cap * 2 : 256;
        while (nc < l->text_len + text_extra)
            nc *= 2;
        char *t = dm_realloc(l->text, nc);
        if (!t)
            return DM_ENOMEM;
        l->text = t;
        l->text_cap = nc;
    }
    return DM_OK;
}

static const char joiner_char[] = { [IT_APOS] = '\'', [IT_HYPH] = '-',
                                    [IT_DOT] = '.', [IT_COMMA] = ',' };

/*
 * emit -- append one token made of items [from, to) (runs and the joiners
 * between them), dropping trim bytes from the end of the last item.
 */
static int emit(tok_list *l, const scratch *s, uint32_t from, uint32_t to,
                uint32_t trim, uint16_t kind, uint32_t src_off)
{
    size_t need = 1;
    for (uint32_t i = from; i < to; i++)
        need += s->items[i].kind == IT_RUN ? s->items[i].len : 1;
    int rc = out_reserve(l, need);
    if (rc)
        return rc;
    size_t start = l->text_len;
    char *d = l->text + start;
    for (uint32_t i = from; i < to; i++) {
        const item *it = &s->items[i];
        if (it->kind == IT_RUN) {
            memcpy(d, s->text + it->off, it->len);
            d += it->len;
        } else {
            *d++ = joiner_char[it->kind];
        }
    }
    d -= trim;
    *d = '\0';
    tok_token *t = &l->toks[l->n++];
    t->off = (uint32_t)start;
    t->len = (uint32_t)(d - (l->text + start));
    t->src_off = src_off;
    t->kind = kind;
    t->_pad = 0;
    l->text_len = start + t->len + 1;
    return DM_OK;
}

static int emit_str(tok_list *l, const char *str, size_t n, uint16_t kind,
                    uint32_t src_off)
{
    int rc = out_reserve(l, n + 1);
    if (rc)
        return rc;
    tok_token *t = &l->toks[l->n++];
    t->off = (uint32_t)l->text_len;
    t->len = (uint32_t)n;
    t->src_off = src_off;
    t->kind = kind;
    t->_pad = 0;
    memcpy(l->text + l->text_len, str, n);
    l->text[l->text_len + n] = '\0';
    l->text_len += n + 1;
    return DM_OK;
}

/* ---------------------------------------------------------------- parser */

static int run_is(const scratch *s, const item *it, const char *w)
{
    size_t n = strlen(w);
    return it->len == n && memcmp(s->text + it->off, w, n) == 0;
}

/* word_joins -- whether joiner item j (between runs j-1 and j+1) joins
 * them into one word. */
static int word_joins(const scratch *s, uint32_t j)
{
    const item *a = &s->items[j - 1], *b = &s->items[j + 1];
    if (a->kind != IT_RUN || b->kind != IT_RUN)
        return 0;
    switch (s->items[j].kind) {
    case IT_APOS: return 1;
    case IT_DOT:
    case IT_COMMA: return a->last_digit && b->first_digit;
    default: return 0;
    }
}

/* parse_chunk -- emit the tokens of the scratch items. */
static int parse_chunk(tok_list *l, const scratch *s)
{
    static const char *const clitics[] = { "s", "re", "ve", "ll", "d", "m" };
    uint32_t n = s->n_items, i = 0;
    int rc;
    while (i < n) {
        if (s->items[i].kind != IT_RUN) {
            i++;
            continue;
        }
        /* Find the compound's extent [i, j) and its last word's start. */
        uint32_t j = i, last_word = i, n_words = 1;
        for (;;) {
            j++;
            while (j + 1 < n && word_joins(s, j))
                j += 2;
            if (j + 1 < n && s->items[j].kind == IT_HYPH &&
                s->items[j + 1].kind == IT_RUN) {
                j++;
                last_word = j;
                n_words++;
                continue;
            }
            break;
        }
        /* A final apostrophe + clitic splits off the last word. */
        uint32_t end = j, trim = 0;
        char clitic[4] = { 0 };
        uint32_t clitic_src = 0;
        if (j - last_word >= 3 && s->items[j - 2].kind == IT_APOS) {
            const item *suf = &s->items[j - 1], *pre = &s->items[j - 3];
            for (size_t c = 0; c < sizeof clitics / sizeof *clitics; c++) {
                if (run_is(s, suf, clitics[c])) {
                    clitic[0] = '\'';
                    memcpy(clitic + 1, clitics[c], strlen(clitics[c]));
                    clitic_src = s->items[j - 2].src_off;
                    end = j - 2;
                    break;
                }
            }
            if (!clitic[0] && run_is(s, suf, "t") && pre->len > 1 &&
                s->text[pre->off + pre->len - 1] == 'n') {
                memcpy(clitic, "n't", 3);
                end = j - 2;
                trim = 1;
                /* The 'n' is the run's last input code point. */
                clitic_src = pre->src_last;
            }
        }
        uint32_t src = s->items[i].src_off;
        if (n_words == 1) {
            if ((rc = emit(l, s, i, end, trim, TOK_WORD, src)))
                return rc;
        } else {
            if ((rc = emit(l, s, i, end, trim, TOK_COMPOUND, src)))
                return rc;
            uint32_t w = i;
            while (w < end) {
                uint32_t we = w + 1;
                while (we < end && s->items[we].kind != IT_HYPH)
                    we++;
                if ((rc = emit(l, s, w, we, we == end ? trim : 0, TOK_PART,
                               s->items[w].src_off)))
                    return rc;
                w = we + 1;
            }
        }
        if (clitic[0] &&
            (rc = emit_str(l, clitic, strlen(clitic), TOK_CLITIC, clitic_src)))
            return rc;
        i = j;
    }
    return DM_OK;
}

/* ------------------------------------------------------------------- API */

void tok_list_init(tok_list *l)
{
    memset(l, 0, sizeof *l);
}

void tok_list_fini(tok_list *l)
{
    dm_free(l->text);
    dm_free(l->toks);
    memset(l, 0, sizeof *l);
}

int tok_text(const char *text, size_t len, tok_list *l)
{
    const uint8_t *in = (const uint8_t *)text;
    scratch s;
    size_t bad;
    int rc = DM_OK;

    l->n = 0;
    l->text_len = 0;
    scratch_init(&s);
    if (len > UINT32_MAX - 1) {
        rc = err_set_msg(DM_EINVAL, "tokenize: text of %zu bytes is longer "
                         "than 4 GiB", len);
        goto fail;
    }
    if (len && !text) {
        rc = err_set_msg(DM_EINVAL, "tokenize: NULL text");
        goto fail;
    }
    if (!tok_utf8_valid(text, len, &bad)) {
        rc = err_set_msg(DM_EINVAL, "tokenize: invalid UTF-8 at byte %zu "
                         "(0x%02x)", bad, in[bad]);
        goto fail;
    }

    size_t pos = 0;
    while (pos < len) {
        /* Skip separators up to the start of a chunk. */
        size_t cn;
        uint32_t cp;
        uint8_t c;
        if (in[pos] < 0x80) {
            cp = in[pos];
            cn = 1;
            c = ascii_tab[cp];
        } else {
            cp = decode(in + pos, &cn);
            c = uni_cls(cp);
        }
        if (c == C_SEP || c == C_MARK) {
            pos += cn;
            continue;
        }
        /* Lex one chunk: runs and joiners until a separator. */
        s.n_items = 0;
        s.text_len = 0;
        int prev_run = 0; /* last item was a run (two runs need a BREAK) */
        while (pos < len) {
            if (in[pos] < 0x80) {
                cp = in[pos];
                cn = 1;
                c = ascii_tab[cp];
            } else {
                cp = decode(in + pos, &cn);
                c = uni_cls(cp);
            }
            if (c == C_SEP || c == C_MARK)
                break; /* a mark here follows a joiner: it separates */
            if (c >= C_APOS) {
                if ((rc = push_joiner(&s, c, (uint32_t)pos)))
                    goto fail;
                pos += cn;
                prev_run = 0;
                continue;
            }
            if (prev_run && !new_item(&s, IT_BREAK, (uint32_t)pos)) {
                rc = DM_ENOMEM;
                goto fail;
            }
            size_t start = pos, last = pos;
            int ascii = cp < 0x80;
            pos += cn;
            /* A single-character word takes only its trailing marks. */
            int single = c == C_SINGLE;
            while (pos < len) {
                if (in[pos] < 0x80) {
                    if (single || ascii_tab[in[pos]] != C_WORD)
                        break;
                    last = pos++;
                    continue;
                }
                uint32_t cp2 = decode(in + pos, &cn);
                uint8_t c2 = uni_cls(cp2);
                if (c2 == C_MARK || (!single && c2 == C_WORD)) {
                    last = pos;
                    pos += cn;
                    ascii = 0;
                    continue;
                }
                break;
            }
            if (ascii)
                rc = lex_ascii_run(&s, in + start, pos - start,
                                   (uint32_t)start);
            else
                rc = lex_uni_run(&s, in + start, pos - start,
                                 (uint32_t)start, (uint32_t)last);
            if (rc)
                goto fail;
            prev_run = 1;
        }
        if ((rc = parse_chunk(l, &s)))
            goto fail;
    }
    scratch_fini(&s);
    return DM_OK;

fail:
    scratch_fini(&s);
    l->n = 0;
    l->text_len = 0;
    return rc;
}
