/*
 * bm25.h -- per-user inverted index with BM25 ranking.
 *
 * Documents are numbered by the caller (the engine's per-user document
 * number).  Text is analyzed with analyze.h.  Scoring is Okapi BM25 with
 * configurable k1 and b and idf = ln(1 + (N - df + 0.5) / (df + 0.5)).
 * Top-k retrieval uses MaxScore (or WAND) early termination: terms whose
 * upper bound cannot lift a document into the top k are only probed, never
 * scanned; where nearly every posting must be visited anyway (common terms
 * of similar weight), windows of documents are scored term at a time
 * instead (bm25_strategy).  Query terms are OR-ed.  Deleting a document
 * needs its text (the engine has it) so that postings are removed exactly.
 *
 * Thread safety: concurrent bm25_search / bm25_explain calls are safe
 * (each search allocates its scratch, at most ~64 KiB plus ~2 KiB per
 * query term, and frees it before returning; no thread-local state);
 * bm25_add / bm25_delete / bm25_serialize / bm25_set_strategy need
 * exclusive access.
 * File format: "BM25 index checkpoint" in docs/format.md.
 */
#ifndef DM_INDEX_BM25_H
#define DM_INDEX_BM25_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "index/ix_filter.h"

typedef struct bm25 bm25;

typedef struct bm25_params {
    float k1; /* default 1.2 */
    float b;  /* default 0.75 */
} bm25_params;

bm25_params bm25_params_default(void);

typedef struct bm25_hit {
    uint32_t doc;
    float score;
} bm25_hit;

typedef struct bm25_term_explain {
    char term[64];    /* the analyzed (stemmed) term, truncated if longer */
    uint32_t tf;      /* occurrences in the document */
    uint32_t df;      /* documents containing the term */
    float idf;
    float score;      /* this term's contribution */
} bm25_term_explain;

/* Errors: DM_EINVAL (k1 < 0, b outside [0,1]), DM_ENOMEM. */
int bm25_new(const bm25_params *p, bm25 **out);
void bm25_free(bm25 *ix); /* NULL does nothing */

/*
 * bm25_add -- index doc's text.  Errors: DM_EEXISTS (doc already indexed),
 * DM_EINVAL (invalid UTF-8), DM_ENOMEM (index unchanged).  A text with no
 * terms is counted as a document of length 0.
 */
int bm25_add(bm25 *ix, uint32_t doc, const char *text, size_t len);

/* bm25_delete -- remove doc, whose indexed text was text.
 * Errors: DM_ENOTFOUND (doc not indexed), DM_ENOMEM, DM_EINVAL (invalid
 * UTF-8, or text is not the text doc was indexed with: nothing removed). */
int bm25_delete(bm25 *ix, uint32_t doc, const char *text, size_t len);

/*
 * bm25_search -- top k documents for the query passing filter (NULL = all),
 * best first, ties by smaller doc.  *n_out receives how many.
 * Errors: DM_EINVAL (invalid UTF-8), DM_ENOMEM.
 */
int bm25_search(const bm25 *ix, const char *query, size_t len, uint32_t k,
                ix_filter_fn filter, void *arg, bm25_hit *out, uint32_t *n_out);

/*
 * bm25_strategy -- how bm25_search finds the top k.  AUTO (the default)
 * decides per window of document numbers between MaxScore (document at a
 * time, skipping what the bounds rule out) and term-at-a-time
 * accumulation (every posting visited, cheaply); the others force one of
 * them, for tests and benchmarks.  Every strategy returns the same hits
 * with bit-identical scores.
 */
typedef enum bm25_strategy {
    BM25_STRATEGY_AUTO = 0,
    BM25_STRATEGY_MAXSCORE,
    BM25_STRATEGY_WINDOW,
} bm25_strategy;

/* bm25_set_strategy -- set ix's strategy.  Needs exclusive access (like
 * bm25_add). */
void bm25_set_strategy(bm25 *ix, bm25_strategy s);

/* bm25_score -- the BM25 score of one document for a query (0 if no term
 * matches or doc is not indexed). */
int bm25_score(const bm25 *ix, const char *query, size_t len, uint32_t doc,
               float *score);

/* bm25_score_many -- bm25_score for n_docs documents at once (the query is
 * analyzed once); scores[i] receives docs[i]'s score.  Errors: as
 * bm25_search. */
int bm25_score_many(const bm25 *ix, const char *query, size_t len,
                    const uint32_t *docs, uint32_t n_docs, float *scores);

/*
 * bm25_explain -- each query term's contribution to doc's score (terms in
 * query order, repeated terms once); at most cap entries, *n_out written.
 */
int bm25_explain(const bm25 *ix, const char *query, size_t len, uint32_t doc,
                 bm25_term_explain *out, uint32_t cap, uint32_t *n_out);

uint32_t bm25_doc_count(const bm25 *ix);
uint32_t bm25_term_count(const bm25 *ix);
size_t bm25_memsize(const bm25 *ix);

/* Checkpoint: append / rebuild (every field validated: DM_ECORRUPT with
 * the offset, DM_EVERSION, DM_ENOMEM). */
int bm25_serialize(const bm25 *ix, buf *out);
int bm25_deserialize(const bm25_params *p, buf_slice in, bm25 **out);

/* bm25_check -- verify every structural invariant (postings sorted and
 * consistent with df, document lengths and totals, block descriptors, the
 * term table).  For tests and `deltamemory check`; O(index size).
 * Errors: DM_ECORRUPT naming the broken rule, DM_ENOMEM.  Needs the same
 * access as bm25_search. */
int bm25_check(const bm25 *ix);

#endif
