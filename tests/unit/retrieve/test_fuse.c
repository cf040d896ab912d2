/*
 * test_fuse.c -- the arithmetic of retrieval against hand-computed values:
 * Reciprocal Rank Fusion, recency, salience decay and refresh, the
 * cognitive score, and the picks of Maximal Marginal Relevance.
 */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/engine_int.h" /* eng_salience */
#include "retrieve/fuse.h"

#define DAY ((int64_t)86400000000)

/* |a - b| <= eps, with both values in the message otherwise. */
#define assert_double_equal(a, b, eps) near_((double)(a), (double)(b), (eps), #a, __LINE__)
static void near_(double a, double b, double eps, const char *what, int line)
{
    if (!(fabs(a - b) <= eps))
        fail_msg("line %d: %s = %.17g, expected %.17g (within %g)", line, what, a, b, eps);
}

static void test_rrf(void **state)
{
    (void)state;
    const float w1[4] = { 1, 1, 1, 1 };
    /* rank 1 in the first leg, 3 in the second, absent from the others:
     * 1/61 + 1/63 = 0.0322664... */
    uint32_t r[4] = { 1, 3, 0, 0 };
    assert_double_equal(rt_rrf(r, w1, 4, 60), 1.0 / 61 + 1.0 / 63, 1e-12);
    /* Leg weights scale each term. */
    const float w2[4] = { 2, 0.5f, 1, 1 };
    assert_double_equal(rt_rrf(r, w2, 4, 60), 2.0 / 61 + 0.5 / 63, 1e-12);
    /* Absent from every leg: 0; k = 0 gives 1/rank. */
    uint32_t none[4] = { 0, 0, 0, 0 };
    assert_double_equal(rt_rrf(none, w1, 4, 60), 0, 0);
    uint32_t r2[4] = { 2, 4, 0, 5 };
    assert_double_equal(rt_rrf(r2, w1, 4, 0), 0.5 + 0.25 + 0.2, 1e-12);
    /* Agreement beats one leg's first place: ranks 2+2 > rank 1 alone. */
    uint32_t both[4] = { 2, 2, 0, 0 }, one[4] = { 1, 0, 0, 0 };
    assert_true(rt_rrf(both, w1, 4, 60) > rt_rrf(one, w1, 4, 60));
}

static void test_recency(void **state)
{
    (void)state;
    int64_t now = 1700000000000000;
    assert_double_equal(rt_recency(now, now, 30), 1.0, 0);
    /* One half-life old: 1/2; two: 1/4; 45 days at 30: 2^-1.5. */
    assert_double_equal(rt_recency(now - 30 * DAY, now, 30), 0.5, 1e-12);
    assert_double_equal(rt_recency(now - 60 * DAY, now, 30), 0.25, 1e-12);
    assert_double_equal(rt_recency(now - 45 * DAY, now, 30), 0.35355339059327373, 1e-12);
    /* The future of the reference time counts as new; no half-life, no
     * preference. */
    assert_double_equal(rt_recency(now + DAY, now, 30), 1.0, 0);
    assert_double_equal(rt_recency(now - 400 * DAY, now, 0), 1.0, 0);
}

static void test_salience(void **state)
{
    (void)state;
    int64_t t = 1700000000000000;
    /* 0.8 * e^(-0.01 * 10) = 0.723869... */
    assert_double_equal(eng_salience(0.8, 0.01, t, t + 10 * DAY), 0.8 * exp(-0.1), 1e-12);
    assert_double_equal(eng_salience(0.8, 0.01, t, t + 10 * DAY), 0.72386993, 1e-7);
    /* e^(-0.1 * 30) * 1 = 0.049787... below a 0.05 prune threshold. */
    assert_true(eng_salience(1.0, 0.1, t, t + 30 * DAY) < 0.05);
    assert_true(eng_salience(1.0, 0.1, t, t + 29 * DAY) > 0.05);
    /* No time passed, negative age, zero rate: unchanged; clamped. */
    assert_double_equal(eng_salience(0.6, 0.5, t, t), 0.6, 0);
    assert_double_equal(eng_salience(0.6, 0.5, t, t - DAY), 0.6, 0);
    assert_double_equal(eng_salience(0.6, 0, t, t + 1000 * DAY), 0.6, 0);
    assert_double_equal(eng_salience(1.7, 0, t, t), 1.0, 0);
    /* Refresh lifts toward 1. */
    assert_double_equal(eng_salience_refreshed(0.4, 0.5), 0.7, 1e-12);
    assert_double_equal(eng_salience_refreshed(1.0, 0.5), 1.0, 0);
    assert_double_equal(eng_salience_refreshed(0.4, 0), 0.4, 0);
}

static void test_score(void **state)
{
    (void)state;
    assert_double_equal(rt_score(0.8, 0.1, 0.1, 0.5, 1.0, 0.2), 0.4 + 0.1 + 0.02, 1e-12);
    assert_double_equal(rt_score(1, 0, 0, 0.37, 0.9, 0.9), 0.37, 1e-12);
}

/* Four unit vectors: 0 and 1 nearly the same, 2 orthogonal, 3 between. */
static const float vecs[4][2] = { { 1, 0 }, { 0.9998f, 0.02f }, { 0, 1 }, { 0.7071f, 0.7071f } };

static float sim2(void *arg, uint32_t i, uint32_t j)
{
    (void)arg;
    return vecs[i][0] * vecs[j][0] + vecs[i][1] * vecs[j][1];
}

static void test_mmr(void **state)
{
    (void)state;
    const float score[4] = { 1.0f, 0.95f, 0.6f, 0.7f };
    float work[4], mmr[4], maxs[4];
    uint32_t order[4];
    /* lambda 1: by score alone. */
    uint32_t n = rt_mmr(score, 4, 4, 1.0, sim2, NULL, work, order, mmr, maxs);
    assert_int_equal(n, 4);
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 1);
    assert_int_equal(order[2], 3);
    assert_int_equal(order[3], 2);
    /* lambda 0.7: after 0, candidate 1 (sim ~1) scores 0.7*0.95 - 0.3*1.0
     * = 0.365; 2 (sim 0) scores 0.42; 3 (sim 0.7071) 0.49 - 0.2121 =
     * 0.2779.  So 2 comes second; then 3 (max sim 0.7071 to both): 0.2779;
     * 1 (max sim ~1): 0.365 - ... = 0.365 > 0.2779, so 1 third. */
    n = rt_mmr(score, 4, 3, 0.7, sim2, NULL, work, order, mmr, maxs);
    assert_int_equal(n, 3);
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 1);
    assert_double_equal(mmr[0], 0.7f, 1e-6);
    assert_double_equal(maxs[0], 0.0f, 0);
    assert_double_equal(mmr[2], 0.42f, 1e-6);
    assert_double_equal(maxs[1], 0.9998f, 1e-6);
    assert_double_equal(mmr[1], 0.7f * 0.95f - 0.3f * 0.9998f, 1e-6);
    /* Strong diversity: lambda 0.3 takes 2 before 1 and 3 before 1. */
    n = rt_mmr(score, 4, 4, 0.3, sim2, NULL, work, order, NULL, NULL);
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 3);
    assert_int_equal(order[3], 1);
    /* k larger than n, and n == 0. */
    assert_int_equal(rt_mmr(score, 2, 10, 0.7, sim2, NULL, work, order, NULL, NULL), 2);
    assert_int_equal(rt_mmr(score, 0, 10, 0.7, sim2, NULL, work, order, NULL, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rrf),      cmocka_unit_test(test_recency),
        cmocka_unit_test(test_salience), cmocka_unit_test(test_score),
        cmocka_unit_test(test_mmr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
