/*
 * fuse.c -- the arithmetic of retrieval (fuse.h).
 *
 * RRF (Cormack et al., 2009) fuses ranked lists by rank alone, which is
 * what lists with incomparable scores (cosine similarity, BM25) need; the
 * constant k (60 by default) flattens the head so that one leg's first
 * place does not drown agreement between legs.  MMR (Carbonell and
 * Goldstein, 1998) is greedy: O(n * k) similarity calls, each candidate
 * keeping the highest similarity to the picks so far.
 */
#include "retrieve/fuse.h"

#include <math.h>

double rt_rrf(const uint32_t *rank, const float *w, uint32_t n, double k)
{
    double s = 0;
    for (uint32_t i = 0; i < n; i++)
        if (rank[i])
            s += (double)w[i] / (k + (double)rank[i]);
    return s;
}

double rt_recency(int64_t t_us, int64_t now_us, double half_life_days)
{
    if (half_life_days <= 0 || t_us >= now_us)
        return 1.0;
    double age_days = (double)(now_us - t_us) / RT_US_PER_DAY;
    return exp2(-age_days / half_life_days);
}

double rt_score(double w_sim, double w_rec, double w_sal, double relevance, double recency,
                double salience)
{
    return w_sim * relevance + w_rec * recency + w_sal * salience;
}

uint32_t rt_mmr(const float *score, uint32_t n, uint32_t k, double lambda, rt_sim_fn sim,
                void *arg, float *work, uint32_t *order, float *mmr, float *max_sim)
{
    /* work[i]: highest similarity of candidate i to the picks so far, or
     * NAN once i is picked. */
    for (uint32_t i = 0; i < n; i++)
        work[i] = 0.0f;
    uint32_t picked = 0;
    bool diversify = lambda < 1.0;
    while (picked < k && picked < n) {
        uint32_t best = UINT32_MAX;
        double best_v = -INFINITY;
        for (uint32_t i = 0; i < n; i++) {
            if (isnan(work[i]))
                continue;
            double v = diversify ? lambda * score[i] - (1.0 - lambda) * work[i] : score[i];
            if (v > best_v) {
                best_v = v;
                best = i;
            }
        }
        if (best == UINT32_MAX)
            break;
        order[picked++] = best;
        if (mmr)
            mmr[best] = (float)best_v;
        if (max_sim)
            max_sim[best] = work[best];
        work[best] = NAN;
        if (!diversify)
            continue;
        for (uint32_t i = 0; i < n; i++) {
            if (isnan(work[i]))
                continue;
            float s = sim(arg, best, i);
            if (s > work[i])
                work[i] = s;
        }
    }
    return picked;
}
