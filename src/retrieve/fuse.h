/*
 * fuse.h -- the arithmetic of retrieval: Reciprocal Rank Fusion, recency,
 * the cognitive score and Maximal Marginal Relevance (salience decay is the
 * engine's: eng_salience, src/engine/salience.c).
 *
 * Pure functions over plain arrays, so that every stage can be checked
 * against hand-computed values; the pipeline (search.c) gathers the
 * candidates and calls them.  Thread safety: none needed.
 */
#ifndef DM_RETRIEVE_FUSE_H
#define DM_RETRIEVE_FUSE_H

#include <stdbool.h>
#include <stdint.h>

#define RT_US_PER_DAY 86400000000.0

/*
 * rt_rrf -- sum over the n legs of w[i] / (k + rank[i]) for the legs where
 * rank[i] (1-based) is non-zero.
 */
double rt_rrf(const uint32_t *rank, const float *w, uint32_t n, double k);

/*
 * rt_recency -- 2^(-age / half_life) with age = now - t in days; a memory
 * from the future of the reference time counts as new (1).  half_life_days
 * <= 0 gives 1 (no preference).
 */
double rt_recency(int64_t t_us, int64_t now_us, double half_life_days);

/* rt_score -- w_sim * relevance + w_rec * recency + w_sal * salience. */
double rt_score(double w_sim, double w_rec, double w_sal, double relevance,
                double recency, double salience);

/* Similarity of candidates i and j (cosine, in [-1, 1]). */
typedef float (*rt_sim_fn)(void *arg, uint32_t i, uint32_t j);

/*
 * rt_mmr -- Maximal Marginal Relevance: pick up to k of the n candidates
 * (score[i] in [0, 1], best first or not), each time the one maximizing
 * lambda * score - (1 - lambda) * (highest similarity to one already
 * picked); ties go to the lower index.  order[] receives the picks (at
 * most k), mmr[] and max_sim[] (may be NULL; indexed by candidate) their
 * values at the moment they were picked.  lambda >= 1 picks by score
 * alone.  work must hold n floats.  Returns the number picked.
 */
uint32_t rt_mmr(const float *score, uint32_t n, uint32_t k, double lambda, rt_sim_fn sim,
                void *arg, float *work, uint32_t *order, float *mmr, float *max_sim);

#endif
