/*
 * facts.c -- merging extracted facts into a user's facts: duplicates,
 * supersession, retraction, derived facts; and the F / Y record formats.
 *
 * Design.  A user's facts are a flat array (a few hundred at most for a
 * person), searched linearly by (subject, slot).  facts_apply takes one
 * turn's extraction and changes the array in place, appending a
 * fact_change for every fact it adds or alters; the engine writes exactly
 * those facts and their history entries in one batch, so the stored state
 * and the array stay equal.  Nothing is ever deleted: a replaced fact is
 * kept with valid_to, ended and the id of its replacement, which is what
 * history and as_of queries read.
 *
 * Rules (docs/cognition.md explains why):
 *   duplicate   same subject and slot, and the values match: equal after
 *               facts_norm, the shorter's words all in the longer (not for
 *               descriptions: work.title, relationship, diet, age), the
 *               same place by the gazetteer, or (with an embedder)
 *               similarity >= FACT_SIM_DUP.  One fact gets one more source
 *               and confidence 1 - (1 - a)(1 - b), capped at 0.99; in a
 *               single-valued slot a fuller name said later ("Acme Corp"
 *               after "Acme") replaces the shown value.
 *   supersede   single-valued slot, different value, or a correction:
 *               every current value of the slot ends (valid_to = the new
 *               fact's valid_from, never before its own), state
 *               superseded, other = the new fact.
 *   add         multi-valued slot, different value: beside the others.
 *               prev_value ("moved from Austin to Denver") also ends the
 *               named value in a multi-valued slot.
 *   retract     a negation ends the matching current value; a negation
 *               that matches nothing changes nothing.
 *   derive      after the turn: a subject's current city gives its region
 *               and country when the gazetteer knows the city without
 *               ambiguity (or the subject's region or country picks one);
 *               the user's employer plus a known industry of that
 *               employer gives work.industry.  Derived facts carry the
 *               sources of what they came from, extractor "derived".  A
 *               derived value that differs from a current one wins when
 *               this turn brought its basis (the newer evidence); when
 *               this turn brought the other value (a region the city is
 *               not in), the city ends instead.
 *
 * Relations of an entity that say something about it (Acme Corp industry
 * healthcare, Acme Corp located_in Boston) are kept as facts of that
 * entity, slot = the relation type: that is what the derivations and the
 * graph walk read.
 */
#include "cognitive/facts.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cognitive/gazetteer.h"

#define REC_FACT_VERSION 1
#define REC_CHANGE_VERSION 1
#define NORM_MAX 256

/* ------------------------------------------------------------- helpers */

static bool id_zero(const uint8_t id[16])
{
    for (int i = 0; i < 16; i++)
        if (id[i])
            return false;
    return true;
}

void facts_norm(const char *value, char *out, size_t cap)
{
    if (!cap)
        return;
    out[0] = 0;
    if (!value)
        return;
    utf8proc_uint8_t *folded = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)value, 0, &folded,
                                      UTF8PROC_NULLTERM | UTF8PROC_STABLE |
                                          UTF8PROC_DECOMPOSE | UTF8PROC_CASEFOLD |
                                          UTF8PROC_STRIPMARK);
    const char *src = n >= 0 ? (const char *)folded : value;
    /* Words of letters and digits, one space between; "'" kept inside a
     * word ("o'brien"), everything else separates. */
    size_t o = 0;
    bool pending_space = false;
    for (const char *p = src; *p && o + 1 < cap; p++) {
        unsigned char ch = (unsigned char)*p;
        bool word = ch >= 0x80 || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || (ch == '\'' && o > 0 && p[1] && p[1] != ' ');
        if (!word) {
            pending_space = o > 0;
            continue;
        }
        if (pending_space && o + 2 < cap)
            out[o++] = ' ';
        pending_space = false;
        out[o++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    out[o] = 0;
    if (n >= 0)
        free(folded); /* utf8proc allocates with malloc */
    /* Leading articles. */
    static const char *const articles[] = { "the ", "a ", "an ", "my " };
    for (size_t i = 0; i < sizeof articles / sizeof *articles; i++) {
        size_t l = strlen(articles[i]);
        if (!strncmp(out, articles[i], l) && out[l]) {
            memmove(out, out + l, strlen(out + l) + 1);
            break;
        }
    }
}

/* The company suffixes dropped when matching entity names. */
static void strip_company(char *s)
{
    static const char *const suffixes[] = { " corp", " corporation", " inc", " incorporated",
                                            " llc", " ltd", " limited", " co", " company",
                                            " group", " plc", " gmbh", " ag", " sa" };
    size_t n = strlen(s);
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        size_t l = strlen(suffixes[i]);
        if (n > l && !strcmp(s + n - l, suffixes[i])) {
            s[n - l] = 0;
            return;
        }
    }
}

bool facts_entity_match(const char *a, const char *b)
{
    char na[NORM_MAX], nb[NORM_MAX];
    facts_norm(a, na, sizeof na);
    facts_norm(b, nb, sizeof nb);
    if (!strcmp(na, nb))
        return true;
    strip_company(na);
    strip_company(nb);
    return na[0] && !strcmp(na, nb);
}

/* Every word of the shorter normalized value is a word of the longer
 * (and the shorter has a word of three letters or more). */
static bool words_within(const char *a, const char *b)
{
    const char *s = strlen(a) <= strlen(b) ? a : b, *l = s == a ? b : a;
    bool has_long = false;
    for (const char *p = s; *p;) {
        const char *e = strchr(p, ' ');
        size_t wl = e ? (size_t)(e - p) : strlen(p);
        has_long |= wl >= 3;
        bool found = false;
        for (const char *q = l; *q;) {
            const char *qe = strchr(q, ' ');
            size_t ql = qe ? (size_t)(qe - q) : strlen(q);
            if (ql == wl && !memcmp(p, q, wl)) {
                found = true;
                break;
            }
            q = qe ? qe + 1 : q + ql;
        }
        if (!found)
            return false;
        p = e ? e + 1 : p + wl;
    }
    return has_long;
}

static bool is_place_slot(const char *slot)
{
    return !strncmp(slot, "location.", 9) || !strcmp(slot, "origin") ||
           !strcmp(slot, "located_in") || !strcmp(slot, "lives_in");
}

/* Both values name the same place (the gazetteer's best reading). */
static bool same_place(const char *a, const char *b)
{
    const gz_place *pa = NULL, *pb = NULL;
    if (!gz_lookup(a, strlen(a), &pa, 1) || !gz_lookup(b, strlen(b), &pb, 1))
        return false;
    return pa == pb;
}

/* Single-valued slots whose values are descriptions, not names: a fuller
 * description is a new value ("software engineer", then "senior software
 * engineer": a promotion, with history), where a fuller name is the same
 * one ("Acme", then "Acme Corp"). */
static bool describes(const char *slot)
{
    return !strcmp(slot, "work.title") || !strcmp(slot, "relationship") ||
           !strcmp(slot, "diet") || !strcmp(slot, "age") || !strcmp(slot, "gender");
}

static bool values_match(const fact_ctx *c, const char *slot, const char *a, const char *b)
{
    char na[NORM_MAX], nb[NORM_MAX];
    facts_norm(a, na, sizeof na);
    facts_norm(b, nb, sizeof nb);
    if (!strcmp(na, nb))
        return true;
    if (is_place_slot(slot))
        return same_place(a, b); /* "Austin" is not "Austin Street" */
    if (describes(slot))
        return false;
    if (words_within(na, nb))
        return true;
    return c->similar && c->similar(c->sim_arg, a, b) >= FACT_SIM_DUP;
}

/* Slots whose entity relations hold one value. */
static bool slot_single(const char *slot)
{
    if (ex_slot_known(slot))
        return ex_slot_single(slot);
    static const char *const single[] = { "industry", "located_in", "lives_in", "works_at",
                                          "married_to", "partner_of", "from" };
    for (size_t i = 0; i < sizeof single / sizeof *single; i++)
        if (!strcmp(slot, single[i]))
            return true;
    return false;
}

/* ---------------------------------------------------------------- sets */

fact *fact_set_push(fact_set *s)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        fact *f = dm_realloc(s->f, cap * sizeof *f);
        if (!f)
            return NULL;
        s->f = f;
        s->cap = cap;
    }
    fact *f = &s->f[s->n++];
    memset(f, 0, sizeof *f);
    return f;
}

void fact_fini(fact *f)
{
    dm_free(f->subject);
    dm_free(f->slot);
    dm_free(f->value);
    dm_free(f->extractor);
    dm_free(f->sources);
    memset(f, 0, sizeof *f);
}

void fact_set_fini(fact_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        fact_fini(&s->f[i]);
    dm_free(s->f);
    memset(s, 0, sizeof *s);
}

void fact_plan_fini(fact_plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        dm_free(p->c[i].old_value);
        dm_free(p->c[i].new_value);
    }
    dm_free(p->c);
    memset(p, 0, sizeof *p);
}

bool facts_current_at(const fact *f, int64_t t)
{
    if (f->mentioned_us > t || f->valid_from_us > t)
        return false;
    if (f->state == FACT_CURRENT)
        return true;
    /* Ended: by a change said after t, it was still current at t. */
    return f->ended_us > t && f->valid_to_us > t;
}

bool facts_valid_at(const fact *f, int64_t t)
{
    return f->valid_from_us <= t && (f->valid_to_us == FACT_OPEN || f->valid_to_us > t);
}

/* ------------------------------------------------------------ planning */

static int plan_push(fact_plan *p, size_t f, int event, const char *old_value,
                     const char *new_value, const uint8_t other[16], const fact_ctx *c)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        fact_change *n = dm_realloc(p->c, cap * sizeof *n);
        if (!n)
            return DM_ENOMEM;
        p->c = n;
        p->cap = cap;
    }
    fact_change *ch = &p->c[p->n];
    memset(ch, 0, sizeof *ch);
    ch->f = f;
    ch->event = (uint8_t)event;
    ch->at_us = c->mentioned_us;
    memcpy(ch->source, c->source, 16);
    if (other)
        memcpy(ch->other, other, 16);
    if ((old_value && !(ch->old_value = dm_strdup(old_value))) ||
        !(ch->new_value = dm_strdup(new_value ? new_value : ""))) {
        dm_free(ch->old_value);
        return DM_ENOMEM;
    }
    p->n++;
    return DM_OK;
}

static bool has_source(const fact *f, const uint8_t src[16])
{
    for (uint32_t i = 0; i < f->n_sources; i++)
        if (!memcmp(f->sources[i], src, 16))
            return true;
    return false;
}

static int add_source(fact *f, const uint8_t src[16])
{
    if (id_zero(src) || has_source(f, src))
        return DM_OK;
    uint8_t(*s)[16] = dm_realloc(f->sources, (f->n_sources + 1) * sizeof *s);
    if (!s)
        return DM_ENOMEM;
    memcpy(s[f->n_sources], src, 16);
    f->sources = s;
    f->n_sources++;
    return DM_OK;
}

static float noisy_or(float a, float b)
{
    float c = 1.0f - (1.0f - a) * (1.0f - b);
    return c > 0.99f ? 0.99f : c;
}

/* A new current fact; *out its index. */
static int new_fact(fact_set *s, const char *subject, const char *slot, const char *value,
                    float conf, int64_t valid_from, uint8_t flags, const char *extractor,
                    const fact_ctx *c, size_t *out)
{
    fact *f = fact_set_push(s);
    if (!f)
        return DM_ENOMEM;
    c->new_id(c->id_arg, f->id);
    f->confidence = conf;
    f->valid_from_us = valid_from;
    f->valid_to_us = FACT_OPEN;
    f->mentioned_us = c->mentioned_us;
    f->recorded_us = c->recorded_us;
    f->ended_us = FACT_OPEN;
    f->state = FACT_CURRENT;
    f->flags = flags;
    if (!(f->subject = dm_strdup(subject)) || !(f->slot = dm_strdup(slot)) ||
        !(f->value = dm_strdup(value)) || !(f->extractor = dm_strdup(extractor)) ||
        add_source(f, c->source)) {
        fact_fini(f);
        s->n--;
        return DM_ENOMEM;
    }
    *out = s->n - 1;
    return DM_OK;
}

/* End fact i: superseded by `by` (NULL: retracted), as of valid_from. */
static int end_fact(fact_set *s, size_t i, int64_t valid_from, const uint8_t *by,
                    const char *new_value, const fact_ctx *c, fact_plan *p)
{
    fact *f = &s->f[i];
    f->state = by ? FACT_SUPERSEDED : FACT_RETRACTED;
    f->valid_to_us = valid_from > f->valid_from_us ? valid_from : f->valid_from_us;
    f->ended_us = c->mentioned_us;
    if (by)
        memcpy(f->other, by, 16);
    return plan_push(p, i, by ? FEV_SUPERSEDE : FEV_RETRACT, f->value,
                     new_value ? new_value : "", by, c);
}

/* Merge the turn's evidence into fact i. */
static int merge_into(fact_set *s, size_t i, const char *value, float conf, bool single,
                      const fact_ctx *c, fact_plan *p)
{
    fact *f = &s->f[i];
    if (has_source(f, c->source) && !id_zero(c->source))
        return DM_OK; /* the same turn again: re-running extraction */
    char *old = dm_strdup(f->value);
    if (!old)
        return DM_ENOMEM;
    int ev = FEV_MERGE;
    /* A fuller value said later replaces the shown one in a single slot. */
    if (single && strlen(value) > strlen(f->value)) {
        char *nv = dm_strdup(value);
        if (!nv) {
            dm_free(old);
            return DM_ENOMEM;
        }
        dm_free(f->value);
        f->value = nv;
        ev = FEV_UPDATE;
    }
    f->confidence = noisy_or(f->confidence, conf);
    f->flags &= (uint8_t)~FACT_DERIVED; /* said, not only derived */
    int rc = add_source(f, c->source);
    if (!rc)
        rc = plan_push(p, i, ev, old, f->value, NULL, c);
    dm_free(old);
    return rc;
}

/* The current facts of (subject, slot), into idx (at most max). */
static size_t find_current(const fact_set *s, const char *subject, const char *slot,
                           size_t *idx, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n && n < max; i++) {
        const fact *f = &s->f[i];
        if (f->state == FACT_CURRENT && !strcmp(f->slot, slot) &&
            (f->subject[0] ? subject[0] && facts_entity_match(f->subject, subject)
                           : !subject[0]))
            idx[n++] = i;
    }
    return n;
}

#define MAX_SAME 64

/* One fact of the turn. */
static int apply_fact(fact_set *s, const char *subject, const char *slot, const char *value,
                      const char *prev, ex_polarity pol, float conf, int64_t valid_from,
                      const char *extractor, uint8_t flags, const fact_ctx *c,
                      fact_plan *p, size_t *out_f)
{
    size_t idx[MAX_SAME];
    size_t n = find_current(s, subject, slot, idx, MAX_SAME);
    bool single = slot_single(slot);
    int rc = DM_OK;
    *out_f = SIZE_MAX;
    if (!value || !value[0])
        return DM_OK;
    if (pol == EX_NEGATED) {
        for (size_t k = 0; k < n && !rc; k++)
            if (values_match(c, slot, s->f[idx[k]].value, value))
                rc = end_fact(s, idx[k], valid_from, NULL, NULL, c, p);
        return rc;
    }
    /* Said again (a correction to the value already held confirms it). */
    for (size_t k = 0; k < n; k++)
        if (values_match(c, slot, s->f[idx[k]].value, value)) {
            *out_f = idx[k];
            return merge_into(s, idx[k], value, conf, single, c, p);
        }
    size_t nf;
    if ((rc = new_fact(s, subject, slot, value, conf, valid_from, flags, extractor, c, &nf)))
        return rc;
    if ((rc = plan_push(p, nf, FEV_ADD, NULL, value, NULL, c)))
        return rc;
    uint8_t by[16];
    memcpy(by, s->f[nf].id, 16);
    for (size_t k = 0; k < n && !rc; k++) {
        /* A single slot holds one value; in a multi-valued one only the
         * value the turn names as replaced ends. */
        bool ends = single || (prev && prev[0] && values_match(c, slot, s->f[idx[k]].value, prev));
        if (ends)
            rc = end_fact(s, idx[k], valid_from, by, value, c, p);
    }
    *out_f = nf;
    return rc;
}

/* ---------------------------------------------------------- derivations */

/* The region and country of subject's current city, when the gazetteer
 * reads it one way (or the subject's current region or country decides
 * between readings). */
static const gz_place *city_place(const fact_set *s, const char *subject, const char *city)
{
    const gz_place *cand[16];
    size_t n = gz_lookup(city, strlen(city), cand, 16);
    if (n > 16)
        n = 16;
    const gz_place *only = NULL;
    size_t n_cities = 0;
    for (size_t i = 0; i < n; i++)
        if (cand[i]->kind == GZ_CITY) {
            n_cities++;
            if (!only)
                only = cand[i];
        }
    if (n_cities <= 1)
        return only;
    /* Several cities: one inside the subject's known region or country. */
    static const char *const within_slots[] = { "location.region", "location.country" };
    for (size_t w = 0; w < 2; w++) {
        size_t idx[4];
        size_t m = find_current(s, subject, within_slots[w], idx, 4);
        for (size_t k = 0; k < m; k++) {
            const gz_place *outer = NULL;
            const char *v = s->f[idx[k]].value;
            if (!gz_lookup(v, strlen(v), &outer, 1))
                continue;
            for (size_t i = 0; i < n; i++)
                if (cand[i]->kind == GZ_CITY && gz_within(cand[i], outer))
                    return cand[i];
        }
    }
    return NULL;
}

/* Copy every source of from into to. */
static int add_sources(fact *to, const fact *from)
{
    for (uint32_t i = 0; i < from->n_sources; i++) {
        int rc = add_source(to, from->sources[i]);
        if (rc)
            return rc;
    }
    return DM_OK;
}

/* Make (subject, slot) = value derived from basis fact b (index bi). */
static int derive(fact_set *s, const char *subject, const char *slot, const char *value,
                  size_t bi, const size_t *extra, size_t n_extra, const fact_ctx *c,
                  fact_plan *p)
{
    size_t idx[MAX_SAME];
    size_t n = find_current(s, subject, slot, idx, MAX_SAME);
    int rc = DM_OK;
    for (size_t k = 0; k < n; k++) {
        fact *f = &s->f[idx[k]];
        if (!values_match(c, slot, f->value, value))
            continue;
        /* Already there: the basis's sources back it too. */
        uint32_t before = f->n_sources;
        if ((rc = add_sources(f, &s->f[bi])))
            return rc;
        for (size_t e = 0; e < n_extra && !rc; e++)
            rc = add_sources(f, &s->f[extra[e]]);
        if (!rc && f->n_sources != before) {
            f->confidence = noisy_or(f->confidence, s->f[bi].confidence * 0.5f);
            rc = plan_push(p, idx[k], FEV_MERGE, f->value, f->value, NULL, c);
        }
        return rc;
    }
    float conf = s->f[bi].confidence * 0.9f;
    int64_t from = s->f[bi].valid_from_us;
    size_t nf;
    if ((rc = new_fact(s, subject, slot, value, conf, from, FACT_DERIVED, "derived", c, &nf)))
        return rc;
    /* new_fact may have moved the array: re-take the pointers. */
    if ((rc = add_sources(&s->f[nf], &s->f[bi])))
        return rc;
    for (size_t e = 0; e < n_extra && !rc; e++)
        rc = add_sources(&s->f[nf], &s->f[extra[e]]);
    if (!rc)
        rc = plan_push(p, nf, FEV_ADD, NULL, value, NULL, c);
    uint8_t by[16];
    memcpy(by, s->f[nf].id, 16);
    for (size_t k = 0; k < n && !rc; k++)
        rc = end_fact(s, idx[k], from, by, value, c, p);
    return rc;
}

/* A subject's place facts after a turn that touched them. */
static int derive_location(fact_set *s, const char *subject, bool city_new, const fact_ctx *c,
                           fact_plan *p)
{
    size_t ci;
    if (find_current(s, subject, "location.city", &ci, 1) != 1)
        return DM_OK;
    const gz_place *city = city_place(s, subject, s->f[ci].value);
    if (!city)
        return DM_OK;
    if (!city_new) {
        /* A region or country was said: if the city is not in it, the
         * newer word wins and the city ends. */
        static const char *const slots[] = { "location.region", "location.country" };
        for (size_t w = 0; w < 2; w++) {
            size_t ri;
            if (find_current(s, subject, slots[w], &ri, 1) != 1)
                continue;
            const fact *r = &s->f[ri];
            if (r->mentioned_us < s->f[ci].mentioned_us || (r->flags & FACT_DERIVED))
                continue;
            const gz_place *outer = NULL;
            if (!gz_lookup(r->value, strlen(r->value), &outer, 1))
                continue;
            if (outer->kind != GZ_CITY && !gz_within(city, outer)) {
                uint8_t by[16];
                memcpy(by, r->id, 16);
                return end_fact(s, ci, r->valid_from_us, by, r->value, c, p);
            }
        }
    }
    int rc = DM_OK;
    if (city->region)
        rc = derive(s, subject, "location.region", city->region, ci, NULL, 0, c, p);
    if (!rc && city->country) {
        if (find_current(s, subject, "location.city", &ci, 1) != 1)
            return DM_OK;
        rc = derive(s, subject, "location.country", city->country, ci, NULL, 0, c, p);
    }
    return rc;
}

/* work.industry of the user from the employer's industry. */
static int derive_industry(fact_set *s, const fact_ctx *c, fact_plan *p)
{
    size_t ei;
    if (find_current(s, "", "work.employer", &ei, 1) != 1)
        return DM_OK;
    size_t ii;
    if (find_current(s, s->f[ei].value, "industry", &ii, 1) != 1) {
        /* The employer's industry is not known: an industry derived from
         * an earlier employer no longer holds. */
        size_t di;
        if (find_current(s, "", "work.industry", &di, 1) == 1 &&
            (s->f[di].flags & FACT_DERIVED))
            return end_fact(s, di, s->f[ei].valid_from_us, NULL, NULL, c, p);
        return DM_OK;
    }
    char *value = dm_strdup(s->f[ii].value);
    if (!value)
        return DM_ENOMEM;
    int rc = derive(s, "", "work.industry", value, ei, &ii, 1, c, p);
    dm_free(value);
    return rc;
}

/* Relation types that carry a fact of their source entity. */
static bool entity_fact_rel(const char *rel)
{
    static const char *const rels[] = { "industry", "located_in", "lives_in", "works_at",
                                        "from", "studied_at", "married_to", "partner_of",
                                        "member_of", "owns", "has_pet", "likes", "dislikes",
                                        "friend_of" };
    if (!strncmp(rel, "family.", 7))
        return true;
    for (size_t i = 0; i < sizeof rels / sizeof *rels; i++)
        if (!strcmp(rel, rels[i]))
            return true;
    return false;
}

typedef struct touched {
    const char *subject;
    bool city, place, work;
} touched;

static void touch(touched *t, size_t *n, size_t max, const char *subject, const char *slot)
{
    size_t i = 0;
    while (i < *n && strcmp(t[i].subject, subject))
        i++;
    if (i == *n) {
        if (*n == max)
            return;
        t[(*n)++] = (touched){ subject, false, false, false };
    }
    if (!strcmp(slot, "location.city"))
        t[i].city = true;
    else if (!strcmp(slot, "location.region") || !strcmp(slot, "location.country"))
        t[i].place = true;
    else if (!strcmp(slot, "work.employer") || !strcmp(slot, "industry"))
        t[i].work = true;
}

int facts_apply(fact_set *s, const ex_result *ex, const fact_ctx *c, fact_plan *p)
{
    touched t[32];
    size_t n_t = 0;
    int rc = DM_OK;
    const char *extractor = c->extractor ? c->extractor : "builtin";
    for (size_t i = 0; i < ex->n_facts && !rc; i++) {
        const ex_fact *f = &ex->facts[i];
        size_t nf;
        rc = apply_fact(s, f->subject ? f->subject : "", f->slot, f->value, f->prev_value,
                        f->polarity, f->confidence, f->valid_from_us ? f->valid_from_us
                                                                     : c->mentioned_us,
                        extractor, 0, c, p, &nf);
        touch(t, &n_t, 32, f->subject ? f->subject : "", f->slot);
    }
    for (size_t i = 0; i < ex->n_relations && !rc; i++) {
        const ex_relation *r = &ex->relations[i];
        if (!r->src || !r->src[0] || !r->dst || !r->dst[0] || !entity_fact_rel(r->rel))
            continue; /* the speaker's relations repeat the speaker's facts */
        size_t nf;
        rc = apply_fact(s, r->src, r->rel, r->dst, NULL, EX_ASSERTED, r->confidence,
                        c->mentioned_us, extractor, 0, c, p, &nf);
        touch(t, &n_t, 32, r->src, r->rel);
    }
    bool work = false;
    for (size_t i = 0; i < n_t && !rc; i++) {
        if (t[i].city || t[i].place)
            rc = derive_location(s, t[i].subject, t[i].city, c, p);
        work |= t[i].work;
    }
    if (!rc && work)
        rc = derive_industry(s, c, p);
    return rc;
}

int facts_add_one(fact_set *s, const ex_fact *in, const fact_ctx *c, fact_plan *p)
{
    ex_result r = { 0 };
    r.facts = (ex_fact *)in;
    r.n_facts = 1;
    return facts_apply(s, &r, c, p);
}

/* ------------------------------------------------------------- records */

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int put_str(buf *b, const char *s)
{
    return buf_put_lenbytes(b, s ? s : "", s ? strlen(s) : 0);
}

int fact_encode(const fact *f, buf *out)
{
    int rc = buf_put_u8(out, REC_FACT_VERSION);
    rc |= buf_put_u8(out, f->state);
    rc |= buf_put_u8(out, f->flags);
    rc |= buf_put_u32(out, f2u(f->confidence));
    rc |= buf_put_u64(out, (uint64_t)f->valid_from_us);
    rc |= buf_put_u64(out, (uint64_t)f->valid_to_us);
    rc |= buf_put_u64(out, (uint64_t)f->mentioned_us);
    rc |= buf_put_u64(out, (uint64_t)f->recorded_us);
    rc |= buf_put_u64(out, (uint64_t)f->ended_us);
    rc |= buf_append(out, f->other, 16);
    rc |= put_str(out, f->subject);
    rc |= put_str(out, f->slot);
    rc |= put_str(out, f->value);
    rc |= put_str(out, f->extractor);
    rc |= buf_put_varint(out, f->n_sources);
    for (uint32_t i = 0; i < f->n_sources; i++)
        rc |= buf_append(out, f->sources[i], 16);
    return rc ? err_set_msg(DM_ENOMEM, "out of memory encoding a fact") : DM_OK;
}

static int corrupt(const char *what, buf_slice v, buf_slice at)
{
    return err_set_msg(DM_ECORRUPT, "%s record: damaged at offset %zu of %zu", what,
                       (size_t)(at.ptr - v.ptr), v.len);
}

int fact_decode(buf_slice v, fact *f)
{
    buf_slice s = v, subj, slot, value, ex;
    uint8_t ver = 0;
    uint32_t conf;
    uint64_t t[5], n_src;
    memset(f, 0, sizeof *f);
    if (!get_u8(&s, &ver))
        return corrupt("fact", v, s);
    if (ver != REC_FACT_VERSION)
        return err_set_msg(DM_EVERSION, "fact record version %u is not supported", ver);
    if (!get_u8(&s, &f->state) || !get_u8(&s, &f->flags) || f->state > FACT_RETRACTED ||
        (f->flags & ~FACT_DERIVED) || !get_u32(&s, &conf))
        return corrupt("fact", v, s);
    for (int i = 0; i < 5; i++)
        if (!get_u64(&s, &t[i]))
            return corrupt("fact", v, s);
    if (s.len < 16)
        return corrupt("fact", v, s);
    memcpy(f->other, s.ptr, 16);
    s.ptr += 16;
    s.len -= 16;
    if (!get_lenbytes(&s, &subj) || !get_lenbytes(&s, &slot) || !get_lenbytes(&s, &value) ||
        !get_lenbytes(&s, &ex) || !get_varint(&s, &n_src) || n_src > s.len / 16 ||
        s.len != n_src * 16)
        return corrupt("fact", v, s);
    f->confidence = u2f(conf);
    f->valid_from_us = (int64_t)t[0];
    f->valid_to_us = (int64_t)t[1];
    f->mentioned_us = (int64_t)t[2];
    f->recorded_us = (int64_t)t[3];
    f->ended_us = (int64_t)t[4];
    f->subject = dm_strndup(subj.ptr, subj.len);
    f->slot = dm_strndup(slot.ptr, slot.len);
    f->value = dm_strndup(value.ptr, value.len);
    f->extractor = dm_strndup(ex.ptr, ex.len);
    f->n_sources = (uint32_t)n_src;
    if (n_src && (f->sources = dm_malloc(n_src * 16)))
        memcpy(f->sources, s.ptr, n_src * 16);
    if (!f->subject || !f->slot || !f->value || !f->extractor || (n_src && !f->sources)) {
        fact_fini(f);
        return err_set_msg(DM_ENOMEM, "out of memory decoding a fact");
    }
    return DM_OK;
}

int fact_change_encode(const fact_change *c, const fact *f, const char *extractor,
                       int64_t recorded_us, buf *out)
{
    int rc = buf_put_u8(out, REC_CHANGE_VERSION);
    rc |= buf_put_u8(out, c->event);
    rc |= buf_put_u64(out, (uint64_t)c->at_us);
    rc |= buf_put_u64(out, (uint64_t)recorded_us);
    rc |= buf_append(out, c->source, 16);
    rc |= buf_append(out, c->other, 16);
    rc |= put_str(out, f ? f->subject : "");
    rc |= put_str(out, f ? f->slot : "");
    rc |= buf_put_u8(out, c->old_value != NULL);
    if (c->old_value)
        rc |= put_str(out, c->old_value);
    rc |= put_str(out, c->new_value);
    rc |= put_str(out, extractor);
    return rc ? err_set_msg(DM_ENOMEM, "out of memory encoding a change") : DM_OK;
}
