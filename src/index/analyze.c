/*
 * analyze.c -- the BM25 analyzer: tokens -> index terms.
 *
 * What: an_text runs the shared tokenizer (embed/tokenize.h), drops whole
 * hyphenated compounds (their parts are indexed) and English stop words,
 * and stems the remaining words with the Snowball English stemmer
 * (libstemmer).  Clitics are never stemmed: "n't" stays "n't"; the others
 * ('s 're 've 'll 'd 'm) are stop words.
 *
 * Design.
 *   - Stop words: a fixed list of 150-odd function words, written out below
 *     and loaded once (pthread_once) into a small open-addressing hash set,
 *     so a lookup is one hash and usually one compare (an_text computes
 *     that hash once per word for both the stop set and the stem cache).
 *     "no", "nor" and "not" are deliberately absent: negation changes what
 *     a memory says, which is also why the "n't" clitic is kept.  "ca",
 *     "wo" and "sha" are present because the tokenizer splits "can't" into
 *     "ca" "n't".
 *   - Stemming: libstemmer's stemmer object is not thread-safe, so each
 *     thread creates its own on first use and a pthread key destructor
 *     frees it when the thread exits.  Its buffers come from malloc inside
 *     libstemmer, not dm_malloc, so they do not show in the engine's byte
 *     counters.
 *   - The terms are written back into the caller's tok_list in place: the
 *     list is compacted front to back and each term's bytes move to a write
 *     cursor that never passes the read position, because a stem is never
 *     longer than its word.  Should the stemmer ever return something
 *     longer, that term is appended past the end of the text instead, so
 *     correctness does not rest on that property.
 *
 * Invariants: every output term is non-empty, NUL-terminated, never a stop
 * word before stemming, and of kind TOK_WORD, TOK_PART or TOK_CLITIC.
 *
 * Locking: the stop set is immutable after pthread_once; stemmers are per
 * thread.  an_text is safe from any number of threads on distinct lists.
 *
 * Format owned: none, but the terms it produces are what the BM25
 * checkpoint stores, so changing the stop list or the stemmer changes which
 * documents match and requires re-indexing.
 */
#include "index/analyze.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <libstemmer.h>

#include "base/alloc.h"
#include "base/err.h"

/* ------------------------------------------------------------ stop words */

static const char *const stop_words[] = {
    "a", "about", "above", "after", "again", "against", "all", "also", "am",
    "among", "an", "and", "any", "are", "as", "at", "be", "because", "been",
    "before", "being", "below", "between", "both", "but", "by", "ca", "can",
    "could", "did", "do", "does", "doing", "down", "during", "each", "either",
    "else", "ever", "every", "few", "for", "from", "further", "had", "has",
    "have", "having", "he", "her", "here", "hers", "herself", "him",
    "himself", "his", "how", "however", "i", "if", "in", "into", "is", "it",
    "its", "itself", "just", "let", "may", "me", "might", "more", "most",
    "much", "must", "my", "myself", "neither", "now", "of", "off", "on",
    "once", "only", "or", "other", "ought", "our", "ours", "ourselves", "out",
    "over", "own", "per", "same", "sha", "shall", "she", "should", "so",
    "some", "such", "than", "that", "the", "their", "theirs", "them",
    "themselves", "then", "there", "these", "they", "this", "those",
    "though", "through", "thus", "to", "too", "under", "until", "up", "upon",
    "us", "very", "via", "was", "we", "were", "what", "whatever", "when",
    "where", "whether", "which", "while", "who", "whom", "whose", "why",
    "will", "with", "within", "without", "wo", "would", "yet", "you", "your",
    "yours", "yourself", "yourselves",
    /* Clitics as the tokenizer emits them, and the letters a clitic leaves
     * behind when its apostrophe was some other character. */
    "'s", "'re", "'ve", "'ll", "'d", "'m", "s", "t", "d", "ll", "m", "re",
    "ve",
};

#define N_STOP (sizeof stop_words / sizeof *stop_words)
#define STOP_SLOTS 512 /* power of two, more than twice N_STOP */

static const char *stop_set[STOP_SLOTS];
static uint8_t stop_len[STOP_SLOTS];
static pthread_once_t stop_once = PTHREAD_ONCE_INIT;

/* FNV-1a: short keys, no need for anything stronger. */
static uint32_t hash_str(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static void stop_build(void)
{
    _Static_assert(STOP_SLOTS >= 2 * N_STOP, "stop set too full");
    for (size_t i = 0; i < N_STOP; i++) {
        size_t n = strlen(stop_words[i]);
        uint32_t h = hash_str(stop_words[i], n) & (STOP_SLOTS - 1);
        while (stop_set[h])
            h = (h + 1) & (STOP_SLOTS - 1);
        stop_set[h] = stop_words[i];
        stop_len[h] = (uint8_t)n;
    }
}

/* same_bytes -- memcmp(a, b, n) == 0 for short words, without a library
 * call. */
static inline int same_bytes(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

/* is_stop -- an_is_stopword for a word whose hash_str is h, once the set
 * is built. */
static inline int is_stop(const char *tok, size_t len, uint32_t h)
{
    if (len == 0 || len > 16)
        return 0;
    h &= STOP_SLOTS - 1;
    while (stop_set[h]) {
        if (stop_len[h] == len && same_bytes(stop_set[h], tok, len))
            return 1;
        h = (h + 1) & (STOP_SLOTS - 1);
    }
    return 0;
}

int an_is_stopword(const char *tok, size_t len)
{
    if (len == 0 || len > 16)
        return 0;
    pthread_once(&stop_once, stop_build);
    return is_stop(tok, len, hash_str(tok, len));
}

/* ------------------------------------------------------------- stemmers */

static pthread_key_t stem_key;
static pthread_once_t stem_once = PTHREAD_ONCE_INIT;
static int stem_key_ok;
static _Thread_local struct sb_stemmer *tls_stemmer;

static void stem_destroy(void *p)
{
    sb_stemmer_delete(p);
}

/* Thread-specific destructors do not run for the thread that calls exit()
 * (the main thread, usually): free its stemmer at exit, so that leak
 * checkers see every stemmer freed. */
static void stem_free_at_exit(void)
{
    if (tls_stemmer && stem_key_ok) {
        pthread_setspecific(stem_key, NULL);
        sb_stemmer_delete(tls_stemmer);
        tls_stemmer = NULL;
    }
}

static void stem_key_make(void)
{
    stem_key_ok = pthread_key_create(&stem_key, stem_destroy) == 0;
    if (stem_key_ok)
        atexit(stem_free_at_exit);
}

/* thread_stemmer -- the calling thread's stemmer, created on first use;
 * NULL when out of memory. */
static struct sb_stemmer *thread_stemmer(void)
{
    if (tls_stemmer)
        return tls_stemmer;
    pthread_once(&stem_once, stem_key_make);
    if (!stem_key_ok)
        return NULL;
    struct sb_stemmer *st = sb_stemmer_new("english", "UTF_8");
    if (!st)
        return NULL;
    if (pthread_setspecific(stem_key, st) != 0) {
        sb_stemmer_delete(st);
        return NULL;
    }
    tls_stemmer = st;
    return st;
}

/*
 * A per-thread direct-mapped cache of recent stems.  Conversation text
 * repeats its words, and the Snowball stemmer costs far more than a hash
 * and a compare: with the cache most words are stemmed once per thread.
 * Words longer than STEM_WORD_MAX bytes bypass it.
 */
#define STEM_SLOTS 2048
#define STEM_WORD_MAX 23
typedef struct stem_slot {
    uint8_t wlen, slen; /* wlen 0 = empty */
    char word[STEM_WORD_MAX];
    char stem[STEM_WORD_MAX + 8];
} stem_slot;
static _Thread_local stem_slot stem_cache[STEM_SLOTS];

/* stem -- the stem of s[0..n), whose hash_str is h, into *out (borrowed
 * until the next call on this thread); NULL on allocation failure inside
 * the stemmer. */
static const char *stem(struct sb_stemmer *st, const char *s, size_t n,
                        uint32_t h, size_t *out_len)
{
    stem_slot *c = NULL;
    if (n <= STEM_WORD_MAX) {
        c = &stem_cache[h & (STEM_SLOTS - 1)];
        if (c->wlen == n && same_bytes(c->word, s, n)) {
            *out_len = c->slen;
            return c->stem;
        }
    }
    const sb_symbol *o = sb_stemmer_stem(st, (const sb_symbol *)s, (int)n);
    if (!o)
        return NULL;
    size_t sl = (size_t)sb_stemmer_length(st);
    if (c && sl <= sizeof c->stem) {
        memcpy(c->word, s, n);
        memcpy(c->stem, o, sl);
        c->wlen = (uint8_t)n;
        c->slen = (uint8_t)sl;
    }
    *out_len = sl;
    return (const char *)o;
}

/* ------------------------------------------------------------------ API */

int an_text(const char *text, size_t len, tok_list *l)
{
    int rc = tok_text(text, len, l);
    if (rc)
        return rc;
    struct sb_stemmer *st = NULL;
    size_t w = 0;             /* write cursor in l->text */
    size_t tail = l->text_len; /* end of the text, past any appended term */
    uint32_t n_out = 0;

    pthread_once(&stop_once, stop_build);
    for (uint32_t i = 0; i < l->n; i++) {
        tok_token t = l->toks[i];
        const char *s = l->text + t.off;
        if (t.kind == TOK_COMPOUND)
            continue;
        /* One hash serves the stop set (words up to 16 bytes) and the stem
         * cache (up to STEM_WORD_MAX). */
        _Static_assert(STEM_WORD_MAX >= 16, "stop words must be hashed");
        uint32_t h = t.len <= STEM_WORD_MAX ? hash_str(s, t.len) : 0;
        if (is_stop(s, t.len, h))
            continue;
        const char *term = s;
        size_t term_len = t.len;
        if (t.kind != TOK_CLITIC) {
            if (!st && !(st = thread_stemmer())) {
                rc = err_set_msg(DM_ENOMEM, "analyze: cannot create the "
                                 "English stemmer");
                goto fail;
            }
            term = stem(st, s, t.len, h, &term_len);
            if (!term) {
                rc = err_set_msg(DM_ENOMEM, "analyze: stemmer out of memory");
                goto fail;
            }
            if (term_len == 0) { /* keep the word rather than an empty term */
                term = s;
                term_len = t.len;
            }
        }
        size_t at;
        if (term_len <= t.len) {
            at = w;
            memmove(l->text + at, term, term_len);
            w += term_len + 1;
        } else {
            /* Longer than its slot: append past everything else. */
            if (tail + term_len + 1 > l->text_cap) {
                size_t nc = l->text_cap * 2;
                while (nc < tail + term_len + 1)
                    nc *= 2;
                char *nt = dm_realloc(l->text, nc);
                if (!nt) {
                    rc = err_set_msg(DM_ENOMEM, "analyze: out of memory");
                    goto fail;
                }
                l->text = nt;
                l->text_cap = nc;
            }
            at = tail;
            memcpy(l->text + at, term, term_len);
            tail += term_len + 1;
        }
        l->text[at + term_len] = '\0';
        t.off = (uint32_t)at;
        t.len = (uint32_t)term_len;
        l->toks[n_out++] = t;
    }
    l->n = n_out;
    l->text_len = tail > l->text_len ? tail : w;
    return DM_OK;

fail:
    l->n = 0;
    l->text_len = 0;
    return rc;
}
