/*
 * tokenize.h -- split text into normalized word tokens.
 *
 * One tokenizer serves the embedding model and the BM25 analyzer, so that
 * both legs of retrieval see the same words.  Normalization is Unicode NFKC
 * followed by case folding (utf8proc); accents are kept.  Splitting rules:
 *
 *   - a word is a run of letters, digits and combining marks;
 *   - digits joined by '.' or ',' stay one token ("3.5", "1,000");
 *   - an apostrophe (' or U+2019) inside a word splits off an English
 *     clitic as its own token of kind TOK_CLITIC: "don't" -> "do" "n't",
 *     "john's" -> "john" "'s", "we're" -> "we" "'re" ('s 're 've 'll 'd 'm
 *     n't); other inner apostrophes ("o'neil") keep the word whole;
 *   - words joined by '-' (or U+2010/U+2011) produce the whole compound as
 *     one TOK_COMPOUND token ("well-known") followed by each piece as a
 *     TOK_PART token ("well", "known");
 *   - everything else (punctuation, symbols, white space) separates tokens.
 *
 * Invalid UTF-8 is an error (DM_EINVAL), never guessed at.
 */
#ifndef DM_EMBED_TOKENIZE_H
#define DM_EMBED_TOKENIZE_H

#include <stddef.h>
#include <stdint.h>

typedef enum tok_kind {
    TOK_WORD = 0,     /* a plain word or number */
    TOK_COMPOUND = 1, /* a whole hyphenated compound; its pieces follow */
    TOK_PART = 2,     /* one piece of the preceding compound */
    TOK_CLITIC = 3,   /* 's n't 're 've 'll 'd 'm (apostrophe normalized to ') */
} tok_kind;

typedef struct tok_token {
    uint32_t off;      /* offset of the normalized text in tok_list.text */
    uint32_t len;      /* its length in bytes */
    uint32_t src_off;  /* byte offset of the token's start in the input */
    uint16_t kind;     /* tok_kind */
    uint16_t _pad;
} tok_token;

/* Initialize with tok_list_init; reuse across calls; release with
 * tok_list_fini.  text holds every token's normalized bytes, each followed
 * by a NUL so that text + off is a C string. */
typedef struct tok_list {
    char *text;
    size_t text_len, text_cap;
    tok_token *toks;
    uint32_t n, cap;
} tok_list;

void tok_list_init(tok_list *l);
void tok_list_fini(tok_list *l);

/*
 * tok_text -- tokenize len bytes of UTF-8 text into l (cleared first).
 * Errors: DM_EINVAL (invalid UTF-8; the message names the byte offset),
 * DM_ENOMEM.  On error l is left empty (n == 0).  Thread-safe for distinct
 * lists.
 */
int tok_text(const char *text, size_t len, tok_list *l);

/* The normalized bytes of token i (NUL-terminated). */
static inline const char *tok_str(const tok_list *l, uint32_t i)
{
    return l->text + l->toks[i].off;
}

/*
 * tok_utf8_valid -- 1 if len bytes are valid UTF-8 (no overlongs, no
 * surrogates, no code point above U+10FFFF), else 0; *bad_off (if non-NULL)
 * receives the offset of the first invalid byte.
 */
int tok_utf8_valid(const char *s, size_t len, size_t *bad_off);

#endif
