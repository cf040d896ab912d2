/*
 * test_facts.c -- merging extracted facts (src/cognitive/facts.c): new
 * facts, duplicates and near duplicates, supersession with history,
 * multi-valued slots, negation, correction, prev_value, derived places
 * and industry, as_of, idempotent re-runs, and the F record round trip.
 * The extraction results are written by hand here: this tests the merge
 * rules, not the extractor.
 */
#include "testutil.h"

#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "cognitive/facts.h"

#define DAY (86400LL * 1000000LL)
#define T0 (1672531200LL * 1000000LL) /* 2023-01-01 */

static uint64_t next_id;

static void test_id(void *arg, uint8_t out[16])
{
    (void)arg;
    memset(out, 0, 16);
    next_id++;
    memcpy(out + 8, &next_id, 8);
}

static fact_ctx ctx_at(int64_t t, uint8_t src)
{
    fact_ctx c = { .mentioned_us = t, .recorded_us = t, .extractor = "builtin",
                   .new_id = test_id };
    memset(c.source, 0, 16);
    c.source[15] = src;
    return c;
}

static ex_fact F(const char *subject, const char *slot, const char *value, float conf)
{
    ex_fact f;
    memset(&f, 0, sizeof f);
    f.subject = (char *)subject;
    f.slot = (char *)slot;
    f.value = (char *)value;
    f.confidence = conf;
    return f;
}

/* Apply one fact at day d from source src; returns the plan's size. */
static size_t say(fact_set *s, ex_fact f, int d, uint8_t src)
{
    fact_ctx c = ctx_at(T0 + d * DAY, src);
    fact_plan p = { 0 };
    assert_int_equal(facts_add_one(s, &f, &c, &p), DM_OK);
    size_t n = p.n;
    fact_plan_fini(&p);
    return n;
}

static const fact *current(const fact_set *s, const char *subject, const char *slot, size_t k)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->f[i].state == FACT_CURRENT && !strcmp(s->f[i].subject, subject) &&
            !strcmp(s->f[i].slot, slot) && k-- == 0)
            return &s->f[i];
    return NULL;
}

static size_t count_current(const fact_set *s, const char *subject, const char *slot)
{
    size_t n = 0;
    while (current(s, subject, slot, n))
        n++;
    return n;
}

static const fact *find_value(const fact_set *s, const char *slot, const char *value)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->f[i].slot, slot) && !strcmp(s->f[i].value, value))
            return &s->f[i];
    return NULL;
}

static void test_supersede_and_history(void **state)
{
    fact_set s = { 0 };
    say(&s, F("", "location.city", "Austin", 0.9f), 0, 1);
    say(&s, F("", "location.city", "Denver", 0.9f), 150, 2);
    assert_int_equal(count_current(&s, "", "location.city"), 1);
    assert_string_equal(current(&s, "", "location.city", 0)->value, "Denver");
    const fact *austin = find_value(&s, "location.city", "Austin");
    assert_non_null(austin);
    assert_int_equal(austin->state, FACT_SUPERSEDED);
    assert_int_equal(austin->valid_to_us, T0 + 150 * DAY);
    assert_memory_equal(austin->other, find_value(&s, "location.city", "Denver")->id, 16);
    /* as_of: Austin before the move, Denver after, nothing before Austin
     * was said. */
    assert_true(facts_current_at(austin, T0 + 10 * DAY));
    assert_false(facts_current_at(austin, T0 + 200 * DAY));
    assert_true(facts_current_at(find_value(&s, "location.city", "Denver"), T0 + 200 * DAY));
    assert_false(facts_current_at(austin, T0 - DAY));
    /* As known now, valid time alone decides. */
    assert_true(facts_valid_at(austin, T0 + 149 * DAY));
    assert_false(facts_valid_at(austin, T0 + 150 * DAY));
    assert_false(facts_valid_at(austin, T0 - DAY));
    fact_set_fini(&s);
}

static void test_duplicates_merge(void **state)
{
    fact_set s = { 0 };
    say(&s, F("", "hobby", "hiking", 0.8f), 0, 1);
    say(&s, F("", "hobby", "Hiking", 0.7f), 1, 2);
    say(&s, F("", "hobby", "going hiking", 0.6f), 2, 3);
    assert_int_equal(count_current(&s, "", "hobby"), 1);
    const fact *h = current(&s, "", "hobby", 0);
    assert_int_equal(h->n_sources, 3);
    assert_true(h->confidence > 0.8f && h->confidence <= 0.99f);
    /* The same turn again changes nothing (re-running extraction). */
    float c = h->confidence;
    assert_int_equal(say(&s, F("", "hobby", "hiking", 0.8f), 2, 3), 0);
    assert_true(current(&s, "", "hobby", 0)->confidence == c);
    /* A different hobby is a second value of a multi-valued slot. */
    say(&s, F("", "hobby", "chess", 0.8f), 3, 4);
    assert_int_equal(count_current(&s, "", "hobby"), 2);
    /* A fuller name in a single slot updates the shown one... */
    say(&s, F("", "work.employer", "Acme", 0.8f), 4, 5);
    say(&s, F("", "work.employer", "Acme Corp", 0.8f), 5, 6);
    assert_int_equal(count_current(&s, "", "work.employer"), 1);
    assert_string_equal(current(&s, "", "work.employer", 0)->value, "Acme Corp");
    assert_null(find_value(&s, "work.employer", "Acme"));
    /* ...but a fuller description is a change, with history. */
    say(&s, F("", "work.title", "engineer", 0.8f), 6, 7);
    say(&s, F("", "work.title", "senior engineer", 0.8f), 7, 8);
    assert_int_equal(count_current(&s, "", "work.title"), 1);
    assert_string_equal(current(&s, "", "work.title", 0)->value, "senior engineer");
    assert_int_equal(find_value(&s, "work.title", "engineer")->state, FACT_SUPERSEDED);
    fact_set_fini(&s);
}

static void test_negation_correction_prev(void **state)
{
    fact_set s = { 0 };
    say(&s, F("", "pet", "dog Max", 0.9f), 0, 1);
    say(&s, F("", "pet", "cat Luna", 0.9f), 1, 2);
    ex_fact neg = F("", "pet", "dog Max", 0.9f);
    neg.polarity = EX_NEGATED;
    say(&s, neg, 2, 3);
    assert_int_equal(count_current(&s, "", "pet"), 1);
    assert_string_equal(current(&s, "", "pet", 0)->value, "cat Luna");
    assert_int_equal(find_value(&s, "pet", "dog Max")->state, FACT_RETRACTED);
    /* A negation that matches nothing changes nothing. */
    ex_fact none = F("", "pet", "parrot", 0.9f);
    none.polarity = EX_NEGATED;
    assert_int_equal(say(&s, none, 3, 4), 0);
    /* Correction of a single slot. */
    say(&s, F("", "name", "Ally", 0.9f), 4, 5);
    ex_fact cor = F("", "name", "Ali", 0.9f);
    cor.polarity = EX_CORRECTION;
    say(&s, cor, 5, 6);
    assert_string_equal(current(&s, "", "name", 0)->value, "Ali");
    assert_int_equal(find_value(&s, "name", "Ally")->state, FACT_SUPERSEDED);
    /* prev_value ends the named value of a multi-valued slot only. */
    say(&s, F("", "language", "Spanish", 0.9f), 6, 7);
    say(&s, F("", "language", "French", 0.9f), 7, 8);
    ex_fact pv = F("", "language", "German", 0.9f);
    pv.prev_value = "French";
    say(&s, pv, 8, 9);
    assert_int_equal(count_current(&s, "", "language"), 2);
    assert_int_equal(find_value(&s, "language", "French")->state, FACT_SUPERSEDED);
    fact_set_fini(&s);
}

static void test_derived_places(void **state)
{
    fact_set s = { 0 };
    say(&s, F("", "location.city", "Austin", 0.9f), 0, 1);
    const fact *r = current(&s, "", "location.region", 0);
    const fact *c = current(&s, "", "location.country", 0);
    assert_non_null(r);
    assert_non_null(c);
    assert_string_equal(r->value, "Texas");
    assert_true(r->flags & FACT_DERIVED);
    assert_int_equal(r->n_sources, 1);
    /* "I'm in Texas" refines: one region, the said one, more confidence;
     * the city stays. */
    float before = r->confidence;
    say(&s, F("", "location.region", "Texas", 0.9f), 1, 2);
    assert_int_equal(count_current(&s, "", "location.region"), 1);
    r = current(&s, "", "location.region", 0);
    assert_false(r->flags & FACT_DERIVED);
    assert_true(r->confidence > before);
    assert_string_equal(current(&s, "", "location.city", 0)->value, "Austin");
    /* A region the city is not in, said later: the city ends. */
    say(&s, F("", "location.region", "California", 0.9f), 30, 3);
    assert_int_equal(count_current(&s, "", "location.city"), 0);
    assert_string_equal(current(&s, "", "location.region", 0)->value, "California");
    /* A new city brings its own region: the newer evidence wins. */
    say(&s, F("", "location.city", "Denver", 0.9f), 60, 4);
    assert_string_equal(current(&s, "", "location.region", 0)->value, "Colorado");
    assert_int_equal(count_current(&s, "", "location.region"), 1);
    fact_set_fini(&s);
}

static void test_derived_industry(void **state)
{
    fact_set s = { 0 };
    say(&s, F("", "work.employer", "Acme Corp", 0.9f), 0, 1);
    assert_int_equal(count_current(&s, "", "work.industry"), 0);
    /* An entity relation: Acme's industry, said later, as "Acme". */
    ex_relation rel = { .src = "Acme", .rel = "industry", .dst = "healthcare",
                        .confidence = 0.8f };
    ex_result ex = { 0 };
    ex.relations = &rel;
    ex.n_relations = 1;
    fact_ctx c = ctx_at(T0 + DAY, 2);
    fact_plan p = { 0 };
    assert_int_equal(facts_apply(&s, &ex, &c, &p), DM_OK);
    fact_plan_fini(&p);
    const fact *ind = current(&s, "", "work.industry", 0);
    assert_non_null(ind);
    assert_string_equal(ind->value, "healthcare");
    assert_true(ind->flags & FACT_DERIVED);
    assert_int_equal(ind->n_sources, 2); /* both turns */
    assert_non_null(current(&s, "Acme", "industry", 0));
    /* A new employer: the derived industry does not follow it blindly. */
    say(&s, F("", "work.employer", "Globex", 0.9f), 2, 3);
    assert_string_equal(current(&s, "", "work.employer", 0)->value, "Globex");
    assert_int_equal(count_current(&s, "", "work.industry"), 0);
    fact_set_fini(&s);
}

static void test_entity_match_and_norm(void **state)
{
    char out[64];
    facts_norm("  The São  Paulo!! ", out, sizeof out);
    assert_string_equal(out, "sao paulo");
    facts_norm("O'Brien", out, sizeof out);
    assert_string_equal(out, "o'brien");
    facts_norm(NULL, out, sizeof out);
    assert_string_equal(out, "");
    assert_true(facts_entity_match("Acme", "ACME Corp."));
    assert_true(facts_entity_match("Acme Inc", "acme corporation"));
    assert_false(facts_entity_match("Acme", "Acme Health"));
    assert_false(facts_entity_match("Corp", ""));
}

static void test_record_round_trip(void **state)
{
    fact_set s = { 0 };
    say(&s, F("Ann", "location.city", "Boston", 0.75f), 0, 1);
    say(&s, F("Ann", "location.city", "boston", 0.5f), 1, 2);
    const fact *f = current(&s, "Ann", "location.city", 0);
    buf b;
    buf_init(&b);
    assert_int_equal(fact_encode(f, &b), DM_OK);
    fact g;
    assert_int_equal(fact_decode(buf_slice_of(b.ptr, b.len), &g), DM_OK);
    assert_string_equal(g.subject, "Ann");
    assert_string_equal(g.slot, "location.city");
    assert_string_equal(g.value, "Boston");
    assert_int_equal(g.n_sources, 2);
    assert_true(g.confidence == f->confidence);
    assert_int_equal(g.valid_to_us, FACT_OPEN);
    fact_fini(&g);
    /* Every truncation is damage, never a crash. */
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(fact_decode(buf_slice_of(b.ptr, n), &g), DM_ECORRUPT);
    b.ptr[0] = 9;
    assert_int_equal(fact_decode(buf_slice_of(b.ptr, b.len), &g), DM_EVERSION);
    buf_fini(&b);
    fact_set_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_supersede_and_history),
        cmocka_unit_test(test_duplicates_merge),
        cmocka_unit_test(test_negation_correction_prev),
        cmocka_unit_test(test_derived_places),
        cmocka_unit_test(test_derived_industry),
        cmocka_unit_test(test_entity_match_and_norm),
        cmocka_unit_test(test_record_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
