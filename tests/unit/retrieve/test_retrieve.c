/*
 * test_retrieve.c -- the retrieval pipeline end to end through dm_search,
 * on a small conversation written for the test (the tiny model's topic
 * words; tests/support/tinymodel.h).
 *
 * Covered: the explanation's arithmetic (RRF, relevance, the cognitive
 * score with the default weights); time expressions giving the temporal
 * leg its window, and "recently" its newest memories; explicit windows
 * overriding them; metadata filters, agent and session scopes applied
 * inside the legs; MMR dropping a near-duplicate; context neighbours;
 * archived memories leaving and re-entering recall (dm_set_state,
 * dm_decay); salience refresh written back after a search; the document
 * table's copy of the salience state following the records; parameter
 * errors.
 */
// ctest-timeout: 300
#include "testutil.h"
#include "tinymodel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY ((int64_t)86400000000)
/* 2023-08-16T15:30:00Z, a Wednesday: "now" for every query. */
#define NOW ((int64_t)1692199800000000)

typedef struct fx {
    char dir[512];
    dm_db *db;
    dm_id id[32];
} fx;

typedef struct turn {
    const char *text;
    int64_t ago_days;  /* event time = NOW - ago_days (plus the turn's place) */
    const char *session;
    const char *agent;
    const char *meta;
    dm_memory_kind kind;
} turn;

/* Sessions: s1 in early June (pets, food), s2 in July (travel, music),
 * s3 last week (work), s4 yesterday (garden).  Two near-duplicates (3, 4). */
static const turn conv[] = {
    /* 0 */ { "my dog and the puppy went to the vet", 70, "s1", "coach", "{\"topic\":\"pets\",\"n\":1}", DM_KIND_EPISODIC },
    /* 1 */ { "the kitten has a new leash and fur brush", 70, "s1", "coach", "{\"topic\":\"pets\",\"n\":2}", DM_KIND_EPISODIC },
    /* 2 */ { "we cooked pasta with cheese for dinner", 70, "s1", "chef", "{\"topic\":\"food\",\"n\":3}", DM_KIND_EPISODIC },
    /* 3 */ { "booked a flight and a hotel for the beach vacation", 40, "s2", "coach", "{\"topic\":\"travel\",\"n\":4}", DM_KIND_EPISODIC },
    /* 4 */ { "booked a flight and a hotel for the beach vacation trip", 40, "s2", "coach", "{\"topic\":\"travel\",\"n\":5}", DM_KIND_EPISODIC },
    /* 5 */ { "the band played jazz at the concert", 40, "s2", "chef", "{\"topic\":\"music\",\"n\":6}", DM_KIND_EPISODIC },
    /* 6 */ { "my boss moved the project deadline to friday", 8, "s3", "coach", "{\"topic\":\"work\",\"n\":7,\"tags\":[\"urgent\",\"q3\"]}", DM_KIND_EPISODIC },
    /* 7 */ { "the meeting with the client went well", 8, "s3", "coach", "{\"topic\":\"work\",\"n\":8}", DM_KIND_EPISODIC },
    /* 8 */ { "planted tomato seeds and roses in the garden", 1, "s4", "chef", "{\"topic\":\"garden\",\"n\":9}", DM_KIND_EPISODIC },
    /* 9 */ { "I am allergic to penicillin medicine", 200, NULL, NULL, "{\"topic\":\"health\",\"n\":10}", DM_KIND_FACT },
};
#define N_CONV (sizeof conv / sizeof conv[0])

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", tu_tmpdir("test_retrieve"));
    dm_options o;
    tm_options(&o);
    o.decay_interval_s = 0; /* dm_decay only, never behind the test's back */
    assert_rc(dm_open(f->dir, &o, &f->db), DM_OK);
    for (size_t i = 0; i < N_CONV; i++) {
        dm_add_params p;
        dm_add_params_init(&p);
        p.user_id = "ana";
        p.text = conv[i].text;
        p.event_time_us = NOW - conv[i].ago_days * DAY + (int64_t)i;
        p.session_id = conv[i].session;
        p.agent_id = conv[i].agent;
        p.metadata = conv[i].meta;
        p.kind = conv[i].kind;
        assert_rc(dm_add(f->db, &p, &f->id[i]), DM_OK);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    assert_rc(dm_close(f->db), DM_OK);
    tu_rmrf(f->dir);
    free(f);
    return 0;
}

static void params(dm_search_params *p, const char *q, uint32_t k)
{
    memset(p, 0, sizeof *p);
    p->user_id = "ana";
    p->query = q;
    p->k = k;
    p->now_us = NOW;
    p->flags = DM_NO_REFRESH;
}

static long find(const fx *f, const dm_search_result *r, size_t turn_no)
{
    for (size_t i = 0; i < r->n; i++)
        if (!memcmp(r->hits[i].memory.id.bytes, f->id[turn_no].bytes, 16))
            return (long)i;
    return -1;
}

/* With DM_TEST_VERBOSE set, every result list is printed: turn numbers,
 * scores and leg ranks. */
static void dump(const fx *f, const dm_search_params *p, const dm_search_result *r)
{
    if (!getenv("DM_TEST_VERBOSE"))
        return;
    fprintf(stderr, "query \"%s\" [%s]:\n", p->query, r->time_label);
    for (size_t i = 0; i < r->n; i++) {
        long t = -1;
        for (size_t j = 0; j < N_CONV; j++)
            if (!memcmp(r->hits[i].memory.id.bytes, f->id[j].bytes, 16))
                t = (long)j;
        const dm_explain *e = r->hits[i].explain;
        fprintf(stderr, "  %zu: turn %ld score %.4f", i, t, (double)r->hits[i].score);
        if (e)
            fprintf(stderr, " ranks %u/%u/%u nb %u %s", e->leg_rank[0], e->leg_rank[1],
                    e->leg_rank[2], e->neighbour_of, e->reason);
        fprintf(stderr, "\n");
    }
}

static dm_search_result *run(fx *f, const dm_search_params *p)
{
    dm_search_result *r = NULL;
    assert_rc(dm_search(f->db, p, &r), DM_OK);
    assert_non_null(r);
    dump(f, p, r);
    return r;
}

static void test_explain(void **state)
{
    fx *f = *state;
    dm_search_params p;
    params(&p, "vet puppy", 5);
    p.flags |= DM_EXPLAIN;
    dm_search_result *r = run(f, &p);
    assert_true(r->n >= 1);
    assert_int_equal(find(f, r, 0), 0);
    double best = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->hits[i].explain->fused > best)
            best = r->hits[i].explain->fused;
    for (size_t i = 0; i < r->n; i++) {
        const dm_explain *e = r->hits[i].explain;
        assert_non_null(e);
        /* RRF with k 10 and the built-in model's leg weights: vector 0.3,
         * BM25 1, temporal 0.3. */
        static const double w[DM_N_LEGS] = { 0.3, 1, 0.3, 1 };
        double fused = 0;
        for (int l = 0; l < DM_N_LEGS; l++)
            if (e->leg_rank[l])
                fused += w[l] / (10.0 + e->leg_rank[l]);
        if (fabs(fused - e->fused) > 1e-6)
            fail_msg("hit %zu: fused %f, ranks give %f", i, (double)e->fused, fused);
        assert_true(e->relevance <= 1.0f + 1e-6f && e->relevance >= 0);
        double want = 0.8 * e->relevance + 0.1 * e->recency + 0.1 * e->salience;
        /* A session neighbour carries a share of its candidate's score. */
        if (!e->neighbour_of && fabs(want - e->score) > 1e-5)
            fail_msg("hit %zu: score %f, terms give %f", i, (double)e->score, want);
        if (e->neighbour_of)
            assert_true(e->score + 1e-6 >= want);
        assert_true(fabs(r->hits[i].score - e->score) < 1e-6);
        /* Recency of a 70-day-old memory at a 30-day half-life. */
        if (i == 0)
            assert_true(fabs(e->recency - pow(2, -70.0 / 30)) < 1e-3);
        assert_true(e->reason[0] != '\0');
    }
    assert_int_equal(r->hits[0].explain->leg_rank[0], 1); /* vector */
    assert_int_equal(r->hits[0].explain->leg_rank[1], 1); /* BM25 */
    assert_true(fabs(r->hits[0].explain->relevance - 1.0f) < 1e-6);
    assert_string_equal(r->time_label, "");
    dm_search_result_free(r);
}

static void test_time_window(void **state)
{
    fx *f = *state;
    dm_search_params p;
    /* "last week" = Monday 2023-08-07 .. Monday 2023-08-14: turns 6, 7. */
    params(&p, "what happened last week", 3);
    /* Without MMR: the tiny model makes two work sentences near-duplicates. */
    p.flags |= DM_EXPLAIN | DM_NO_MMR;
    dm_search_result *r = run(f, &p);
    assert_int_equal(r->window_from_us, 1691366400000000); /* 2023-08-07 */
    assert_int_equal(r->window_to_us, 1691971200000000);   /* 2023-08-14 */
    assert_true(r->time_label[0] != '\0');
    assert_true(r->n >= 2);
    for (size_t i = 0; i < 2; i++) {
        long j = find(f, r, 6), k = find(f, r, 7);
        assert_true(j >= 0 && j < 2 && k >= 0 && k < 2);
        assert_true(r->hits[i].explain->leg_rank[2] > 0); /* temporal */
    }
    dm_search_result_free(r);
    /* An explicit window overrides the query's. */
    params(&p, "what happened last week", 3);
    p.from_us = NOW - 2 * DAY;
    p.to_us = NOW;
    r = run(f, &p);
    assert_int_equal(r->n, 1);
    assert_int_equal(find(f, r, 8), 0);
    assert_int_equal(r->window_from_us, p.from_us);
    dm_search_result_free(r);
    /* Without time parsing there is no window. */
    params(&p, "what happened last week", 3);
    p.flags |= DM_NO_TIME_PARSE;
    r = run(f, &p);
    assert_int_equal(r->window_from_us, 0);
    assert_string_equal(r->time_label, "");
    dm_search_result_free(r);
    /* "recently": the temporal leg ranks the other legs' candidates newest
     * first (BM25 finds 6, 7, 8 and 0; its weight is small here so that
     * the temporal order shows). */
    params(&p, "boss meeting tomato dog recently", 4);
    p.legs = DM_LEG_BM25 | DM_LEG_TEMPORAL;
    p.leg_weight[1] = 0.01f;
    p.leg_weight[2] = 1;
    p.flags |= DM_NO_MMR | DM_NO_NEIGHBOURS;
    r = run(f, &p);
    assert_string_equal(r->time_label, "recent");
    assert_int_equal(r->n, 4);
    assert_int_equal(find(f, r, 8), 0);
    assert_int_equal(find(f, r, 7), 1);
    assert_int_equal(find(f, r, 6), 2);
    assert_int_equal(find(f, r, 0), 3);
    dm_search_result_free(r);
    /* Nothing but the temporal leg: "recently" alone brings nothing. */
    params(&p, "anything recently", 2);
    p.legs = DM_LEG_TEMPORAL;
    r = run(f, &p);
    assert_int_equal(r->n, 0);
    dm_search_result_free(r);
}

static void test_filters(void **state)
{
    fx *f = *state;
    dm_search_params p;
    params(&p, "dog pasta flight jazz boss garden", 10);
    p.filter = "{\"topic\": {\"in\": [\"pets\", \"food\"]}}";
    dm_search_result *r = run(f, &p);
    assert_int_equal(r->n, 3);
    for (size_t i = 0; i < r->n; i++)
        assert_true(strstr(r->hits[i].memory.metadata, "pets") ||
                    strstr(r->hits[i].memory.metadata, "food"));
    dm_search_result_free(r);
    /* Operators and combinations; fields of the memory itself. */
    params(&p, "dog pasta flight jazz boss garden", 10);
    p.filter = "{\"OR\": [{\"n\": {\"gte\": 9}}, {\"tags\": {\"contains\": \"urgent\"}}]}";
    r = run(f, &p);
    assert_int_equal(r->n, 3); /* 6 (tags), 8 (n 9), 9 (n 10) */
    assert_true(find(f, r, 6) >= 0 && find(f, r, 8) >= 0 && find(f, r, 9) >= 0);
    dm_search_result_free(r);
    params(&p, "dog pasta flight jazz boss garden", 10);
    p.filter = "{\"agent_id\": \"chef\", \"NOT\": {\"topic\": \"garden\"}}";
    r = run(f, &p);
    assert_int_equal(r->n, 2); /* 2 and 5 */
    assert_true(find(f, r, 2) >= 0 && find(f, r, 5) >= 0);
    dm_search_result_free(r);
    /* Scopes. */
    params(&p, "dog pasta flight jazz boss garden", 10);
    p.session_id = "s2";
    r = run(f, &p);
    assert_true(r->n >= 2 && r->n <= 3);
    for (size_t i = 0; i < r->n; i++)
        assert_string_equal(r->hits[i].memory.session_id, "s2");
    dm_search_result_free(r);
    params(&p, "dog pasta", 10);
    p.agent_id = "nobody";
    r = run(f, &p);
    assert_int_equal(r->n, 0);
    dm_search_result_free(r);
    /* A bad filter names the place. */
    params(&p, "dog", 3);
    p.filter = "{\"AND\": [{\"n\": {\"gtx\": 1}}]}";
    r = (dm_search_result *)1;
    assert_rc(dm_search(f->db, &p, &r), DM_EINVAL);
    assert_null(r);
    assert_non_null(strstr(dm_errmsg(), "$.AND[0].n"));
}

static void test_mmr_and_neighbours(void **state)
{
    fx *f = *state;
    dm_search_params p;
    /* 3 and 4 are near-duplicates: without MMR both come first. */
    params(&p, "flight hotel beach", 2);
    p.flags |= DM_NO_MMR | DM_NO_NEIGHBOURS;
    dm_search_result *r = run(f, &p);
    assert_int_equal(r->n, 2);
    assert_true(find(f, r, 3) >= 0 && find(f, r, 4) >= 0);
    dm_search_result_free(r);
    /* With MMR the second is something else. */
    params(&p, "flight hotel beach", 2);
    p.flags |= DM_NO_NEIGHBOURS | DM_EXPLAIN;
    p.mmr_lambda = 0.5f;
    r = run(f, &p);
    assert_int_equal(r->n, 2);
    assert_true((find(f, r, 3) >= 0) != (find(f, r, 4) >= 0));
    assert_true(r->hits[1].explain->max_sim < 0.9f);
    dm_search_result_free(r);
    /* Neighbours: the BM25 leg 1 deep finds turn 1 ("kitten leash"); its
     * session neighbours 0 and 2 come along when they share a query term. */
    params(&p, "kitten leash dog dinner", 5);
    p.legs = DM_LEG_BM25;
    p.depth = 1;
    p.k = 1;
    p.flags |= DM_NO_MMR;
    r = run(f, &p);
    assert_int_equal(r->n, 1); /* k bounds the neighbours too */
    dm_search_result_free(r);
    params(&p, "kitten leash dog dinner", 5);
    p.legs = DM_LEG_BM25;
    p.depth = 1;
    p.flags |= DM_NO_MMR | DM_EXPLAIN;
    r = run(f, &p);
    assert_int_equal(r->n, 3);
    assert_int_equal(find(f, r, 1), 0);
    assert_true(find(f, r, 0) > 0 && find(f, r, 2) > 0);
    for (size_t i = 1; i < 3; i++)
        assert_int_equal(r->hits[i].explain->neighbour_of, 1);
    dm_search_result_free(r);
    params(&p, "kitten leash dog dinner", 5);
    p.legs = DM_LEG_BM25;
    p.depth = 1;
    p.flags |= DM_NO_MMR | DM_NO_NEIGHBOURS;
    r = run(f, &p);
    assert_int_equal(r->n, 1);
    dm_search_result_free(r);
}

static void test_archive(void **state)
{
    fx *f = *state;
    dm_search_params p;
    params(&p, "tomato roses garden", 3);
    dm_search_result *r = run(f, &p);
    assert_int_equal(find(f, r, 8), 0);
    dm_search_result_free(r);
    dm_scope sc = { NULL, "ana" };
    assert_rc(dm_set_state(f->db, &sc, &f->id[8], DM_STATE_ARCHIVED), DM_OK);
    r = run(f, &p);
    assert_int_equal(find(f, r, 8), -1);
    dm_search_result_free(r);
    p.flags |= DM_WITH_ARCHIVED;
    r = run(f, &p);
    assert_int_equal(find(f, r, 8), 0);
    assert_int_equal(r->hits[0].memory.state, DM_STATE_ARCHIVED);
    dm_search_result_free(r);
    assert_rc(dm_set_state(f->db, &sc, &f->id[8], DM_STATE_ACTIVE), DM_OK);
    p.flags &= ~(unsigned)DM_WITH_ARCHIVED;
    r = run(f, &p);
    assert_int_equal(find(f, r, 8), 0);
    dm_search_result_free(r);
    assert_rc(dm_set_state(f->db, &sc, &f->id[8], (dm_memory_state)7), DM_EINVAL);

    /* Decay: a year after they were stored every episodic memory (rate
     * 0.01 a day: e^-3.65 = 0.026) is under 0.05; the fact stays. */
    dm_memory *m;
    assert_rc(dm_get(f->db, NULL, &f->id[N_CONV - 1], 0, &m), DM_OK);
    int64_t year_on = m->record_time_us + 365 * DAY;
    dm_memory_free(m);
    uint64_t n = 0;
    assert_rc(dm_decay(f->db, NULL, "ana", year_on - 300 * DAY, 0, &n), DM_OK);
    assert_int_equal(n, 0); /* e^-0.65 = 0.52: nothing yet */
    assert_rc(dm_decay(f->db, NULL, "ana", year_on, 0, &n), DM_OK);
    assert_int_equal(n, N_CONV - 1);
    params(&p, "allergic medicine dog", 10);
    r = run(f, &p);
    assert_int_equal(r->n, 1);
    assert_int_equal(find(f, r, 9), 0);
    dm_search_result_free(r);
    /* Survives a reopen: the state is in the records and the index log. */
    assert_rc(dm_close(f->db), DM_OK);
    dm_options o;
    tm_options(&o);
    o.decay_interval_s = 0;
    assert_rc(dm_open(f->dir, &o, &f->db), DM_OK);
    r = run(f, &p);
    assert_int_equal(r->n, 1);
    dm_search_result_free(r);
    /* Nothing more to archive; restoring brings a memory back. */
    assert_rc(dm_decay(f->db, NULL, NULL, year_on, 0, &n), DM_OK);
    assert_int_equal(n, 0);
    assert_rc(dm_set_state(f->db, &sc, &f->id[0], DM_STATE_ACTIVE), DM_OK);
    r = run(f, &p);
    assert_int_equal(r->n, 2);
    dm_search_result_free(r);
    assert_rc(dm_decay(f->db, NULL, "nobody", 0, 0, &n), DM_ENOTFOUND);
    assert_rc(dm_decay(f->db, NULL, "ana", 0, 1.5f, &n), DM_EINVAL);
}

static void test_refresh(void **state)
{
    fx *f = *state;
    dm_add_params ap;
    dm_add_params_init(&ap);
    ap.user_id = "ana";
    ap.text = "violin orchestra melody";
    ap.salience = 0.5f;
    dm_id id;
    assert_rc(dm_add(f->db, &ap, &id), DM_OK);
    dm_memory *before;
    assert_rc(dm_get(f->db, NULL, &id, 0, &before), DM_OK);
    int64_t later = before->record_time_us + 10 * DAY;
    dm_search_params p;
    params(&p, "violin orchestra melody", 1);
    p.flags = 0; /* refresh on */
    p.now_us = later;
    dm_search_result *r = run(f, &p);
    assert_int_equal(r->n, 1);
    assert_true(!memcmp(r->hits[0].memory.id.bytes, id.bytes, 16));
    dm_search_result_free(r);
    assert_rc(dm_sync_indexes(f->db), DM_OK);
    dm_stats st;
    assert_rc(dm_stats_get(f->db, &st), DM_OK);
    assert_int_equal(st.refreshes, 1);
    assert_int_equal(st.refresh_queued, 0);
    dm_memory *after;
    assert_rc(dm_get(f->db, NULL, &id, 0, &after), DM_OK);
    assert_int_equal(after->access_count, before->access_count + 1);
    assert_true(after->last_access_us == later);
    /* current = 0.5 * e^(-0.01 * 10) = 0.45242; refreshed = current +
     * 0.2 * (1 - current) = 0.56193. */
    if (fabs(after->salience - 0.561935) > 1e-4)
        fail_msg("salience %f, want 0.561935", (double)after->salience);
    dm_memory_free(before);
    dm_memory_free(after);
    /* DM_NO_REFRESH leaves it alone; so does a reference time before the
     * last refresh. */
    p.flags = DM_NO_REFRESH;
    p.now_us = later + DAY;
    r = run(f, &p);
    dm_search_result_free(r);
    p.flags = 0;
    p.now_us = later - DAY;
    r = run(f, &p);
    dm_search_result_free(r);
    assert_rc(dm_sync_indexes(f->db), DM_OK);
    assert_rc(dm_get(f->db, NULL, &id, 0, &after), DM_OK);
    assert_true(after->last_access_us == later);
    assert_int_equal(after->access_count, 1);
    dm_memory_free(after);
    /* Recalled again 10 minutes later: inside refresh_interval_s (an hour
     * by default), so not refreshed; two hours later it is. */
    p.now_us = later + 600 * (int64_t)1000000;
    r = run(f, &p);
    assert_int_equal(r->n, 1);
    dm_search_result_free(r);
    assert_rc(dm_sync_indexes(f->db), DM_OK);
    assert_rc(dm_get(f->db, NULL, &id, 0, &after), DM_OK);
    assert_int_equal(after->access_count, 1);
    assert_true(after->last_access_us == later);
    dm_memory_free(after);
    p.now_us = later + 7200 * (int64_t)1000000;
    r = run(f, &p);
    dm_search_result_free(r);
    assert_rc(dm_sync_indexes(f->db), DM_OK);
    assert_rc(dm_get(f->db, NULL, &id, 0, &after), DM_OK);
    assert_int_equal(after->access_count, 2);
    assert_true(after->last_access_us == later + 7200 * (int64_t)1000000);
    dm_memory_free(after);
    /* Counted: the two written, none dropped. */
    assert_rc(dm_stats_get(f->db, &st), DM_OK);
    assert_int_equal(st.refreshes, 2);
    assert_int_equal(st.refreshes_dropped, 0);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Refreshes are written at most refresh_rate a second (a second's worth at
 * once), the rest wait in the queue; dm_sync_indexes writes them all
 * without waiting for the rate. */
static void test_refresh_rate(void **state)
{
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("test_refresh_rate"));
    dm_options o;
    tm_options(&o);
    o.decay_interval_s = 0;
    o.refresh_rate = 20;
    o.refresh_interval_s = 0;
    dm_db *db;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    for (int i = 0; i < 200; i++) {
        char text[64];
        snprintf(text, sizeof text, "note %d about the apple orchard", i);
        dm_add_params ap;
        dm_add_params_init(&ap);
        ap.user_id = "rate";
        ap.text = text;
        assert_rc(dm_add(db, &ap, NULL), DM_OK);
    }
    dm_search_params p;
    memset(&p, 0, sizeof p);
    p.user_id = "rate";
    p.query = "apple orchard";
    p.k = 200;
    double t0 = mono_s();
    dm_search_result *r = NULL;
    assert_rc(dm_search(db, &p, &r), DM_OK);
    size_t n = r->n;
    dm_search_result_free(r);
    if (n < 40)
        fail_msg("the search returned %zu memories", n);
    struct timespec nap = { 0, 300 * 1000000L };
    nanosleep(&nap, NULL);
    dm_stats st;
    assert_rc(dm_stats_get(db, &st), DM_OK);
    double bound = 20 * (1 + (mono_s() - t0)) + 1;
    if ((double)st.refreshes > bound)
        fail_msg("%llu refreshes written, over the rate's %.0f", (unsigned long long)st.refreshes,
                 bound);
    assert_true(st.refreshes + st.refresh_queued <= n);
    /* The rest, at once: without lifting the rate this would take 5 s. */
    t0 = mono_s();
    assert_rc(dm_sync_indexes(db), DM_OK);
    assert_true(mono_s() - t0 < 3);
    assert_rc(dm_stats_get(db, &st), DM_OK);
    assert_int_equal(st.refreshes, n);
    assert_int_equal(st.refresh_queued, 0);
    assert_int_equal(st.refreshes_dropped, 0);
    assert_rc(dm_close(db), DM_OK);
    tu_rmrf(dir);
}

/* Every hit's explained salience is what its record gives at the reference
 * time, whether the search scored it from the document table's copy of
 * the salience state or from the record. */
static void check_salience(fx *f, int64_t now, size_t min_hits)
{
    dm_search_params p;
    params(&p, "flight hotel beach vacation dog puppy garden", 10);
    p.flags = DM_NO_REFRESH | DM_EXPLAIN;
    p.now_us = now;
    dm_search_result *r = run(f, &p);
    assert_true(r->n >= min_hits);
    for (size_t i = 0; i < r->n; i++) {
        const dm_memory *m = &r->hits[i].memory;
        int64_t at = m->last_access_us > m->record_time_us ? m->last_access_us
                                                           : m->record_time_us;
        double days = now > at ? (double)(now - at) / (double)DAY : 0;
        double want = m->salience * exp(-(double)m->decay_rate * days);
        if (fabs(r->hits[i].explain->salience - want) > 1e-5)
            fail_msg("hit %zu: salience %f, its record gives %f", i,
                     (double)r->hits[i].explain->salience, want);
    }
    dm_search_result_free(r);
}

/* The copy of each memory's salience state in the document table
 * (retrieval.md) follows its record: after the adds, a refresh, an archive
 * and a restore, and a reopen that loads the user from its checkpoint. */
static void test_salience_copy(void **state)
{
    fx *f = *state;
    dm_memory *m;
    assert_rc(dm_get(f->db, NULL, &f->id[3], 0, &m), DM_OK);
    int64_t t = m->record_time_us + 10 * DAY;
    dm_memory_free(m);
    check_salience(f, t, 5);
    /* Refreshed by a search: stored salience and refresh time change. */
    dm_search_params p;
    params(&p, "flight hotel beach vacation", 3);
    p.flags = 0;
    p.now_us = t;
    dm_search_result_free(run(f, &p));
    assert_rc(dm_sync_indexes(f->db), DM_OK);
    assert_rc(dm_get(f->db, NULL, &f->id[3], 0, &m), DM_OK);
    assert_true(m->last_access_us == t);
    dm_memory_free(m);
    check_salience(f, t + 5 * DAY, 5);
    /* Archived and restored: the restore restarts the fading. */
    dm_scope sc = { NULL, "ana" };
    assert_rc(dm_set_state(f->db, &sc, &f->id[0], DM_STATE_ARCHIVED), DM_OK);
    assert_rc(dm_set_state(f->db, &sc, &f->id[0], DM_STATE_ACTIVE), DM_OK);
    assert_rc(dm_get(f->db, NULL, &f->id[0], 0, &m), DM_OK);
    int64_t t2 = m->last_access_us + 3 * DAY;
    dm_memory_free(m);
    check_salience(f, t2, 5);
    /* Reopened: the user comes back from its checkpoint, nothing known. */
    assert_rc(dm_sync_indexes(f->db), DM_OK);
    assert_rc(dm_close(f->db), DM_OK);
    dm_options o;
    tm_options(&o);
    o.decay_interval_s = 0;
    assert_rc(dm_open(f->dir, &o, &f->db), DM_OK);
    check_salience(f, t2, 5);
    check_salience(f, t2 + 30 * DAY, 5);
}

static float added_rate(fx *f, const char *tenant, const char *user, dm_memory_kind kind,
                        float explicit_rate)
{
    dm_add_params p;
    dm_add_params_init(&p);
    p.tenant = tenant;
    p.user_id = user;
    p.text = "a pizza with cheese";
    p.kind = kind;
    if (explicit_rate >= 0)
        p.decay_rate = explicit_rate;
    dm_id id;
    assert_rc(dm_add(f->db, &p, &id), DM_OK);
    dm_memory *m;
    assert_rc(dm_get(f->db, NULL, &id, 0, &m), DM_OK);
    float r = m->decay_rate;
    dm_memory_free(m);
    return r;
}

/* Default decay rates: per kind (options), per tenant, per user, removed,
 * kept across a reopen, gone with the user. */
static void test_decay_rates(void **state)
{
    fx *f = *state;
    assert_float_equal(added_rate(f, NULL, "ana", DM_KIND_EPISODIC, -1), 0.01f, 1e-7);
    assert_float_equal(added_rate(f, NULL, "ana", DM_KIND_FACT, -1), 0.0f, 0);
    assert_float_equal(added_rate(f, NULL, "ana", DM_KIND_SUMMARY, -1), 0.005f, 1e-7);
    assert_rc(dm_set_decay_rate(f->db, NULL, NULL, DM_KIND_EPISODIC, 0.05f), DM_OK);
    assert_rc(dm_set_decay_rate(f->db, NULL, "ana", DM_KIND_EPISODIC, 0.2f), DM_OK);
    assert_rc(dm_set_decay_rate(f->db, "acme", NULL, DM_KIND_FACT, 0.001f), DM_OK);
    assert_float_equal(added_rate(f, NULL, "ana", DM_KIND_EPISODIC, -1), 0.2f, 1e-7);
    assert_float_equal(added_rate(f, NULL, "bo", DM_KIND_EPISODIC, -1), 0.05f, 1e-7);
    assert_float_equal(added_rate(f, "acme", "ana", DM_KIND_EPISODIC, -1), 0.01f, 1e-7);
    assert_float_equal(added_rate(f, "acme", "ana", DM_KIND_FACT, -1), 0.001f, 1e-7);
    assert_float_equal(added_rate(f, NULL, "ana", DM_KIND_EPISODIC, 0.3f), 0.3f, 1e-7);
    /* Kept across a reopen. */
    assert_rc(dm_close(f->db), DM_OK);
    dm_options o;
    tm_options(&o);
    o.decay_interval_s = 0;
    assert_rc(dm_open(f->dir, &o, &f->db), DM_OK);
    assert_float_equal(added_rate(f, NULL, "ana", DM_KIND_EPISODIC, -1), 0.2f, 1e-7);
    /* Removing the user's rate falls back to the tenant's. */
    assert_rc(dm_set_decay_rate(f->db, NULL, "ana", DM_KIND_EPISODIC, -1), DM_OK);
    assert_float_equal(added_rate(f, NULL, "ana", DM_KIND_EPISODIC, -1), 0.05f, 1e-7);
    /* Erasing a user removes its rates. */
    assert_rc(dm_set_decay_rate(f->db, NULL, "bo", DM_KIND_EPISODIC, 0.4f), DM_OK);
    assert_float_equal(added_rate(f, NULL, "bo", DM_KIND_EPISODIC, -1), 0.4f, 1e-7);
    assert_rc(dm_erase_user(f->db, NULL, "bo", NULL), DM_OK);
    assert_float_equal(added_rate(f, NULL, "bo", DM_KIND_EPISODIC, -1), 0.05f, 1e-7);
    /* Errors. */
    assert_rc(dm_set_decay_rate(f->db, NULL, "ana", (dm_memory_kind)9, 0.1f), DM_EINVAL);
    assert_rc(dm_set_decay_rate(f->db, NULL, "ana", DM_KIND_FACT, NAN), DM_EINVAL);
    assert_rc(dm_set_decay_rate(f->db, "", NULL, DM_KIND_FACT, 0.1f), DM_EINVAL);
}

static void test_param_errors(void **state)
{
    fx *f = *state;
    dm_search_params p;
    dm_search_result *r = NULL;
    params(&p, "dog", 3);
    p.mmr_lambda = 2;
    assert_rc(dm_search(f->db, &p, &r), DM_EINVAL);
    params(&p, "dog", 3);
    p.weights.recency = -1;
    assert_rc(dm_search(f->db, &p, &r), DM_EINVAL);
    params(&p, "dog", 3);
    p.depth = 1001;
    assert_rc(dm_search(f->db, &p, &r), DM_EINVAL);
    params(&p, "dog", 3);
    p.legs = 0x100;
    assert_rc(dm_search(f->db, &p, &r), DM_EINVAL);
    params(&p, "dog", 3);
    p.leg_weight[1] = NAN;
    assert_rc(dm_search(f->db, &p, &r), DM_EINVAL);
    assert_null(r);
    /* Leg weights: BM25 alone by weight gives BM25's order. */
    params(&p, "kitten dog", 3);
    p.leg_weight[1] = 1;
    p.flags |= DM_NO_MMR | DM_NO_NEIGHBOURS | DM_EXPLAIN;
    r = run(f, &p);
    for (size_t i = 0; i < r->n; i++)
        assert_true(r->hits[i].explain->fused == 0 || r->hits[i].explain->leg_rank[1] > 0);
    dm_search_result_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_explain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mmr_and_neighbours, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh, setup, teardown),
        cmocka_unit_test(test_refresh_rate),
        cmocka_unit_test_setup_teardown(test_salience_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decay_rates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_param_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
