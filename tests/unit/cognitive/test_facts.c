/*
 * test_facts.c -- merging extracted facts (src/cognitive/facts.c): new
 * facts, duplicates and near duplicates, supersession with history,
 * multi-valued slots, negation, correction, prev_value, derived places
 * and industry, as_of, idempotent re-runs, and the F record round trip;
 * the replaced value of a slot that never held it, matching by word stems
 * and by the words of plans and goals, a liked activity that is a hobby,
 * a turn's facts taken in time order, spouse, partner and relationship
 * status, and plans and goals carried out by events and by new facts.
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
    /* "I hit my goal": the slot named, its only value ends; with two
     * goals it is not known which. */
    say(&s, F("", "goal", "lose 20 pounds", 0.9f), 3, 10);
    ex_fact hit = F("", "goal", "my goal", 0.9f);
    hit.polarity = EX_NEGATED;
    say(&s, hit, 4, 11);
    assert_int_equal(count_current(&s, "", "goal"), 0);
    assert_int_equal(find_value(&s, "goal", "lose 20 pounds")->state, FACT_RETRACTED);
    say(&s, F("", "goal", "learn Spanish", 0.9f), 4, 12);
    say(&s, F("", "goal", "buy a house", 0.9f), 4, 13);
    assert_int_equal(say(&s, hit, 4, 14), 0);
    assert_int_equal(count_current(&s, "", "goal"), 2);
    /* "I quit my job" ends the employer. */
    say(&s, F("", "work.employer", "Acme", 0.9f), 4, 15);
    ex_fact quit = F("", "work.employer", "my job", 0.9f);
    quit.polarity = EX_NEGATED;
    say(&s, quit, 4, 16);
    assert_int_equal(count_current(&s, "", "work.employer"), 0);
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
    /* "I switched my major to data science": prev_value names the slot. */
    say(&s, F("", "education", "computer science", 0.9f), 9, 17);
    ex_fact sw = F("", "education", "data science", 0.9f);
    sw.prev_value = "my major";
    say(&s, sw, 10, 18);
    assert_int_equal(count_current(&s, "", "education"), 1);
    assert_string_equal(current(&s, "", "education", 0)->value, "data science");
    assert_int_equal(find_value(&s, "education", "computer science")->state, FACT_SUPERSEDED);
    assert_null(find_value(&s, "education", "my major"));
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

/* Apply a whole extraction at day d from source src. */
static void apply_at(fact_set *s, const ex_result *ex, int d, uint8_t src)
{
    fact_ctx c = ctx_at(T0 + d * DAY, src);
    fact_plan p = { 0 };
    assert_int_equal(facts_apply(s, ex, &c, &p), DM_OK);
    fact_plan_fini(&p);
}

static void test_prev_value_unknown(void **state)
{
    fact_set s = { 0 };
    /* "I used to live in Chicago, now I'm in Minneapolis", the first word
     * on the city: Chicago goes into the history, ended by the new city. */
    ex_fact f = F("", "location.city", "Minneapolis", 0.9f);
    f.prev_value = "Chicago";
    say(&s, f, 10, 1);
    assert_int_equal(count_current(&s, "", "location.city"), 1);
    assert_string_equal(current(&s, "", "location.city", 0)->value, "Minneapolis");
    const fact *chi = find_value(&s, "location.city", "Chicago");
    assert_non_null(chi);
    assert_int_equal(chi->state, FACT_SUPERSEDED);
    assert_int_equal(chi->valid_from_us, FACT_UNKNOWN_START);
    assert_int_equal(chi->valid_to_us, T0 + 10 * DAY);
    assert_memory_equal(chi->other, find_value(&s, "location.city", "Minneapolis")->id, 16);
    /* As known now it held before the move, not after. */
    assert_true(facts_valid_at(chi, T0 - 100 * DAY));
    assert_false(facts_valid_at(chi, T0 + 10 * DAY));
    assert_int_equal(chi->n_sources, 1);
    /* A value the history already holds is not added twice. */
    ex_fact g = F("", "location.city", "Denver", 0.9f);
    g.prev_value = "Chicago";
    say(&s, g, 20, 2);
    size_t n_chicago = 0;
    for (size_t i = 0; i < s.n; i++)
        n_chicago += !strcmp(s.f[i].slot, "location.city") && !strcmp(s.f[i].value, "Chicago");
    assert_int_equal(n_chicago, 1);
    assert_string_equal(current(&s, "", "location.city", 0)->value, "Denver");
    fact_set_fini(&s);
}

static void test_corrected_place_level(void **state)
{
    fact_set s = { 0 };
    say(&s, F("", "location.city", "Rotterdam", 0.9f), 0, 1);
    assert_string_equal(current(&s, "", "location.region", 0)->value, "South Holland");
    /* "I meant Utrecht, not Rotterdam", read as the province: Utrecht is
     * a city too, and Rotterdam was the city, so the city is corrected. */
    ex_fact f = F("", "location.region", "Utrecht", 0.8f);
    f.prev_value = "Rotterdam";
    f.polarity = EX_CORRECTION;
    say(&s, f, 0, 2);
    assert_int_equal(count_current(&s, "", "location.city"), 1);
    assert_string_equal(current(&s, "", "location.city", 0)->value, "Utrecht");
    assert_int_equal(find_value(&s, "location.city", "Rotterdam")->state, FACT_SUPERSEDED);
    assert_string_equal(current(&s, "", "location.region", 0)->value, "Utrecht");
    /* Rotterdam was never a region: no such history. */
    for (size_t i = 0; i < s.n; i++)
        assert_false(!strcmp(s.f[i].slot, "location.region") &&
                     !strcmp(s.f[i].value, "Rotterdam"));
    fact_set_fini(&s);
}

static void test_stems_match(void **state)
{
    fact_set s = { 0 };
    /* "I play golf" read as golfing; "I gave up golf" ends it. */
    say(&s, F("", "hobby", "golfing", 0.8f), 0, 1);
    say(&s, F("", "hobby", "tennis", 0.8f), 0, 1);
    ex_fact neg = F("", "hobby", "golf", 0.9f);
    neg.polarity = EX_NEGATED;
    say(&s, neg, 5, 2);
    assert_int_equal(count_current(&s, "", "hobby"), 1);
    assert_string_equal(current(&s, "", "hobby", 0)->value, "tennis");
    assert_int_equal(find_value(&s, "hobby", "golfing")->state, FACT_RETRACTED);
    /* Plurals of things meet too... */
    say(&s, F("", "allergy", "peanuts", 0.9f), 6, 3);
    say(&s, F("", "allergy", "peanut", 0.9f), 7, 4);
    assert_int_equal(count_current(&s, "", "allergy"), 1);
    assert_int_equal(current(&s, "", "allergy", 0)->n_sources, 2);
    /* ...but names do not: two friends. */
    say(&s, F("", "family.friend", "Ann", 0.9f), 8, 5);
    say(&s, F("", "family.friend", "Anne", 0.9f), 9, 6);
    assert_int_equal(count_current(&s, "", "family.friend"), 2);
    fact_set_fini(&s);
}

static void test_plan_goal_phrases(void **state)
{
    fact_set s = { 0 };
    say(&s, F("", "plan", "go to Japan", 0.7f), 0, 1);
    say(&s, F("", "plan", "go to Paris", 0.7f), 1, 2);
    say(&s, F("", "plan", "visit mom", 0.7f), 2, 3);
    say(&s, F("", "plan", "visit Rome", 0.7f), 2, 4);
    assert_int_equal(count_current(&s, "", "plan"), 4);
    /* Visiting Paris is going there: the same plan. */
    say(&s, F("", "plan", "visit Paris", 0.7f), 3, 5);
    assert_int_equal(count_current(&s, "", "plan"), 4);
    /* "We cancelled the Japan trip." */
    ex_fact neg = F("", "plan", "Japan trip", 0.8f);
    neg.polarity = EX_NEGATED;
    say(&s, neg, 30, 6);
    assert_int_equal(find_value(&s, "plan", "go to Japan")->state, FACT_RETRACTED);
    assert_int_equal(count_current(&s, "", "plan"), 3);
    /* The same goal in other words is one goal. */
    say(&s, F("", "goal", "run a marathon", 0.8f), 31, 7);
    say(&s, F("", "goal", "finally run a marathon", 0.8f), 32, 8);
    say(&s, F("", "goal", "run a 50k", 0.8f), 33, 9);
    assert_int_equal(count_current(&s, "", "goal"), 2);
    fact_set_fini(&s);
}

static void test_liked_activity_is_hobby(void **state)
{
    fact_set s = { 0 };
    say(&s, F("", "hobby", "hiking", 0.8f), 0, 1);
    /* "Hiking is my favorite thing to do": the hobby again. */
    say(&s, F("", "preference.likes", "hiking", 0.85f), 1, 2);
    assert_int_equal(count_current(&s, "", "preference.likes"), 0);
    assert_int_equal(count_current(&s, "", "hobby"), 1);
    assert_int_equal(current(&s, "", "hobby", 0)->n_sources, 2);
    /* A like that is no hobby stays a like. */
    say(&s, F("", "preference.likes", "sushi", 0.8f), 2, 3);
    assert_int_equal(count_current(&s, "", "preference.likes"), 1);
    fact_set_fini(&s);
}

static void test_turn_in_time_order(void **state)
{
    fact_set s = { 0 };
    /* A career told in one turn, newest first. */
    ex_fact f[3] = { F("", "work.employer", "Salesforce", 0.8f),
                     F("", "work.employer", "IBM", 0.9f),
                     F("", "work.employer", "Oracle", 0.9f) };
    const int64_t y2010 = 1262304000LL * 1000000LL, y2015 = 1420070400LL * 1000000LL,
                  y2019 = 1546300800LL * 1000000LL;
    f[0].valid_from_us = y2019;
    f[1].valid_from_us = y2010;
    f[2].valid_from_us = y2015;
    ex_result ex = { 0 };
    ex.facts = f;
    ex.n_facts = 3;
    apply_at(&s, &ex, 100, 1);
    assert_int_equal(count_current(&s, "", "work.employer"), 1);
    assert_string_equal(current(&s, "", "work.employer", 0)->value, "Salesforce");
    const fact *ibm = find_value(&s, "work.employer", "IBM");
    const fact *oracle = find_value(&s, "work.employer", "Oracle");
    assert_int_equal(ibm->valid_to_us, y2015);
    assert_int_equal(oracle->valid_from_us, y2015);
    assert_int_equal(oracle->valid_to_us, y2019);
    assert_true(facts_valid_at(ibm, y2010 + 100 * DAY));
    assert_true(facts_valid_at(oracle, y2015 + 100 * DAY));
    fact_set_fini(&s);
}

static void test_marriage(void **state)
{
    fact_set s = { 0 };
    /* "My wife Karen": married, derived. */
    say(&s, F("", "family.spouse", "Karen", 0.9f), 0, 1);
    const fact *r = current(&s, "", "relationship", 0);
    assert_non_null(r);
    assert_string_equal(r->value, "married");
    assert_true(r->flags & FACT_DERIVED);
    /* "Karen and I divorced": the spouse ends. */
    say(&s, F("", "relationship", "divorced", 0.9f), 100, 2);
    assert_int_equal(count_current(&s, "", "family.spouse"), 0);
    assert_int_equal(find_value(&s, "family.spouse", "Karen")->state, FACT_RETRACTED);
    assert_string_equal(current(&s, "", "relationship", 0)->value, "divorced");
    /* "I remarried, my wife's name is Joanna": married again. */
    say(&s, F("", "family.spouse", "Joanna", 0.9f), 200, 3);
    assert_int_equal(count_current(&s, "", "relationship"), 1);
    assert_string_equal(current(&s, "", "relationship", 0)->value, "married");
    assert_int_equal(find_value(&s, "relationship", "divorced")->state, FACT_SUPERSEDED);
    fact_set_fini(&s);

    fact_set t = { 0 };
    /* Dating Chris, then "we got married": Chris is the spouse. */
    say(&t, F("", "family.partner", "Chris", 0.9f), 0, 1);
    say(&t, F("", "relationship", "engaged", 0.9f), 50, 2);
    assert_string_equal(current(&t, "", "family.partner", 0)->value, "Chris");
    say(&t, F("", "relationship", "married", 0.9f), 100, 3);
    assert_int_equal(count_current(&t, "", "family.partner"), 0);
    const fact *sp = current(&t, "", "family.spouse", 0);
    assert_non_null(sp);
    assert_string_equal(sp->value, "Chris");
    assert_int_equal(sp->n_sources, 2);
    assert_string_equal(current(&t, "", "relationship", 0)->value, "married");
    fact_set_fini(&t);

    fact_set v = { 0 };
    /* "Chris and I got engaged": the user's and Chris's status in one
     * turn make Chris the partner; "we got married" later, the spouse. */
    ex_fact both[2] = { F("", "relationship", "engaged", 0.9f),
                        F("Chris", "relationship", "engaged", 0.8f) };
    ex_result ex = { 0 };
    ex.facts = both;
    ex.n_facts = 2;
    apply_at(&v, &ex, 0, 1);
    assert_string_equal(current(&v, "", "family.partner", 0)->value, "Chris");
    assert_true(current(&v, "", "family.partner", 0)->flags & FACT_DERIVED);
    say(&v, F("", "relationship", "married", 0.9f), 100, 2);
    assert_string_equal(current(&v, "", "family.spouse", 0)->value, "Chris");
    assert_int_equal(count_current(&v, "", "family.partner"), 0);
    fact_set_fini(&v);

    fact_set u = { 0 };
    /* A breakup: "I'm single again" ends the partner. */
    say(&u, F("", "family.partner", "Matt", 0.9f), 0, 1);
    say(&u, F("", "relationship", "single", 0.9f), 30, 2);
    assert_int_equal(count_current(&u, "", "family.partner"), 0);
    fact_set_fini(&u);
}

static void test_plan_done_by_event(void **state)
{
    fact_set s = { 0 };
    say(&s, F("", "plan", "go to Japan", 0.7f), 0, 1);
    say(&s, F("", "goal", "hike the Appalachian Trail", 0.8f), 0, 1);
    say(&s, F("", "goal", "Boston Marathon", 0.8f), 0, 1);
    ex_event e = { 0 };
    ex_result ex = { 0 };
    ex.events = &e;
    ex.n_events = 1;
    /* A trip to Japan before the plan was made does not carry it out. */
    e.type = EX_EV_ACTIVITY;
    e.what = "went to Japan";
    e.from_us = T0 - 300 * DAY;
    e.to_us = e.from_us + DAY;
    apply_at(&s, &ex, 10, 2);
    assert_int_equal(count_current(&s, "", "plan"), 1);
    /* Neither does a planned one. */
    e.type = EX_EV_PLAN;
    e.from_us = T0 + 20 * DAY;
    apply_at(&s, &ex, 11, 3);
    assert_int_equal(count_current(&s, "", "plan"), 1);
    /* Making a painting is not showing one's paintings. */
    say(&s, F("", "plan", "show my paintings", 0.7f), 0, 1);
    e.type = EX_EV_ACTIVITY;
    e.what = "made this painting";
    e.from_us = T0 + 11 * DAY;
    apply_at(&s, &ex, 12, 4);
    assert_int_equal(count_current(&s, "", "plan"), 2);
    e.what = "showed my paintings at the gallery";
    apply_at(&s, &ex, 12, 4);
    assert_int_equal(count_current(&s, "", "plan"), 1);
    /* A short hike is not the whole trail. */
    e.type = EX_EV_ACTIVITY;
    e.what = "went hiking";
    e.from_us = T0 + 11 * DAY;
    apply_at(&s, &ex, 12, 4);
    assert_int_equal(count_current(&s, "", "goal"), 2);
    /* The trip made, the race run: they leave the plans and goals. */
    e.what = "went to Japan with my sister";
    e.from_us = T0 + 40 * DAY;
    apply_at(&s, &ex, 45, 5);
    assert_int_equal(count_current(&s, "", "plan"), 0);
    assert_int_equal(find_value(&s, "plan", "go to Japan")->valid_to_us, T0 + 40 * DAY);
    e.type = EX_EV_MILESTONE;
    e.what = "Finished Boston";
    e.from_us = T0 + 59 * DAY;
    apply_at(&s, &ex, 60, 6);
    assert_int_equal(count_current(&s, "", "goal"), 1);
    assert_string_equal(current(&s, "", "goal", 0)->value, "hike the Appalachian Trail");
    /* Someone else's move carries out their plan, not the user's. */
    say(&s, F("", "plan", "move to Portland", 0.7f), 61, 7);
    say(&s, F("Priya", "plan", "move to Portland", 0.7f), 61, 8);
    char *who[1] = { "Priya" };
    e.what = "Priya moved to Portland";
    e.who = who;
    e.n_who = 1;
    e.from_us = T0 + 90 * DAY;
    apply_at(&s, &ex, 100, 9);
    assert_int_equal(count_current(&s, "Priya", "plan"), 0);
    assert_int_equal(count_current(&s, "", "plan"), 1);
    /* The user's own move, with Priya along, is the user's. */
    e.what = "moved to Portland with Priya";
    apply_at(&s, &ex, 101, 10);
    assert_int_equal(count_current(&s, "", "plan"), 0);
    fact_set_fini(&s);
}

/* A pet told of earlier that the turn says died leaves the pets; a
 * relative who died is still the relative. */
static void test_dead_pet(void **state)
{
    fact_set s = { 0 };
    say(&s, F("", "pet", "Salt", 0.9f), 0, 1);
    say(&s, F("", "pet", "Pepper", 0.9f), 0, 1);
    say(&s, F("", "family.grandfather", "Joe", 0.9f), 0, 1);
    ex_event e = { 0 };
    ex_result ex = { 0 };
    ex.events = &e;
    ex.n_events = 1;
    e.type = EX_EV_MILESTONE;
    e.what = "Saltine the neighbour's dog died"; /* another name */
    e.from_us = T0 + 500 * DAY;
    e.to_us = e.from_us + DAY;
    apply_at(&s, &ex, 501, 2);
    assert_int_equal(count_current(&s, "", "pet"), 2);
    e.what = "Salt passed away";
    apply_at(&s, &ex, 502, 3);
    assert_int_equal(count_current(&s, "", "pet"), 1);
    assert_string_equal(current(&s, "", "pet", 0)->value, "Pepper");
    assert_int_equal(find_value(&s, "pet", "Salt")->valid_to_us, T0 + 500 * DAY);
    e.what = "Joe passed away";
    apply_at(&s, &ex, 503, 4);
    assert_int_equal(count_current(&s, "", "family.grandfather"), 1);
    fact_set_fini(&s);
}

static void test_plan_done_by_fact(void **state)
{
    fact_set s = { 0 };
    say(&s, F("", "plan", "move to Portland", 0.7f), 0, 1);
    say(&s, F("", "plan", "visit Seattle", 0.7f), 0, 1);
    say(&s, F("", "plan", "get married", 0.7f), 0, 1);
    say(&s, F("Tom", "plan", "move to Portland", 0.7f), 0, 1);
    /* Living in Seattle is not visiting it. */
    say(&s, F("", "location.city", "Seattle", 0.9f), 10, 2);
    assert_int_equal(count_current(&s, "", "plan"), 3);
    /* The user's move is not Tom's. */
    say(&s, F("", "location.city", "Portland", 0.9f), 20, 3);
    assert_int_equal(count_current(&s, "", "plan"), 2);
    assert_int_equal(find_value(&s, "plan", "move to Portland")->state, FACT_RETRACTED);
    assert_int_equal(count_current(&s, "Tom", "plan"), 1);
    say(&s, F("Tom", "location.city", "Portland", 0.9f), 21, 4);
    assert_int_equal(count_current(&s, "Tom", "plan"), 0);
    say(&s, F("", "relationship", "married", 0.9f), 30, 5);
    assert_int_equal(count_current(&s, "", "plan"), 1);
    assert_string_equal(current(&s, "", "plan", 0)->value, "visit Seattle");
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
        cmocka_unit_test(test_prev_value_unknown),
        cmocka_unit_test(test_corrected_place_level),
        cmocka_unit_test(test_stems_match),
        cmocka_unit_test(test_plan_goal_phrases),
        cmocka_unit_test(test_liked_activity_is_hobby),
        cmocka_unit_test(test_turn_in_time_order),
        cmocka_unit_test(test_marriage),
        cmocka_unit_test(test_plan_done_by_event),
        cmocka_unit_test(test_plan_done_by_fact),
        cmocka_unit_test(test_dead_pet),
        cmocka_unit_test(test_entity_match_and_norm),
        cmocka_unit_test(test_record_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
