/*
 * analyze.h -- the BM25 analyzer: tokens (embed/tokenize.h) -> index terms.
 *
 * Terms are the tokenizer's TOK_WORD, TOK_PART and TOK_CLITIC tokens (the
 * compound as a whole is not indexed: its parts are), minus English stop
 * words, stemmed with the Snowball English stemmer (libstemmer).  Clitics
 * are kept as terms ("n't" carries negation) unless they are stop words.
 * The same analyzer runs on documents and queries.
 * Thread safety: an_text may run concurrently from many threads (stemmers
 * are per thread).
 */
#ifndef DM_INDEX_ANALYZE_H
#define DM_INDEX_ANALYZE_H

#include <stddef.h>
#include <stdint.h>

#include "embed/tokenize.h"

/*
 * an_text -- analyze len bytes of UTF-8 into terms (l is cleared first; its
 * tokens are the terms, kind kept, text NUL-terminated).
 * Errors: DM_EINVAL (invalid UTF-8), DM_ENOMEM.
 */
int an_text(const char *text, size_t len, tok_list *l);

/* 1 if the normalized token is an English stop word. */
int an_is_stopword(const char *tok, size_t len);

#endif
