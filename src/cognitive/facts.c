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
 *   order       a turn's facts are taken in the order they became true
 *               (valid_from; the text's order for equal times), so that a
 *               career told newest first still ends each job with the next.
 *   duplicate   same subject and slot, and the values match: equal after
 *               facts_norm, the shorter's words all in the longer (not for
 *               descriptions: work.title, relationship, diet, age), the
 *               same place by the gazetteer, or (with an embedder)
 *               similarity >= FACT_SIM_DUP.  Slots of things and
 *               activities (hobby, preference.*, skill, allergy, health,
 *               pet, education, language, goal, plan) also match by word
 *               stems ("golf" / "golfing"); goals and plans, free
 *               phrases, when more than half of the shorter's content
 *               words, light verbs left out, are the other's ("go to
 *               Japan" / "the Japan trip").  One fact gets one more source
 *               and confidence 1 - (1 - a)(1 - b), capped at 0.99; in a
 *               single-valued slot a fuller name said later ("Acme Corp"
 *               after "Acme") replaces the shown value.  A liked activity
 *               that is a current hobby merges into the hobby.
 *   supersede   single-valued slot, different value, or a correction:
 *               every current value of the slot ends (valid_to = the new
 *               fact's valid_from, never before its own), state
 *               superseded, other = the new fact.
 *   add         multi-valued slot, different value: beside the others.
 *               prev_value ("moved from Austin to Denver") also ends the
 *               named value in a multi-valued slot; a prev_value the
 *               slot never held enters the history, superseded by the
 *               new value, valid from FACT_UNKNOWN_START (not when the
 *               subject holds it at another place level).  A place said
 *               to replace one the subject holds at another level ("I
 *               meant Utrecht, not Rotterdam", Rotterdam the city) goes to
 *               that level when the gazetteer knows it there.
 *   retract     a negation ends the matching current value; a negation
 *               that names the slot instead ("I hit my goal", "I quit my
 *               job") ends the slot's only current value; a negation that
 *               matches nothing changes nothing.
 *   done        a turn's event that has happened and that carries out a
 *               current plan or goal of its subject (event_does) ends it;
 *               so does a fact the turn asserts that the plan aimed at
 *               ("move to Portland", then the city Portland: state_does).
 *   derive      after the turn: a subject's current city gives its region
 *               and country when the gazetteer knows the city without
 *               ambiguity (or the subject's region or country picks one);
 *               the user's employer plus a known industry of that
 *               employer gives work.industry; a spouse named makes the
 *               user married, and the statuses and the spouse and partner
 *               follow one another (derive_relationship).  Derived facts
 *               carry the sources of what they came from, extractor
 *               "derived".  A derived value that differs from a current
 *               one wins when this turn brought its basis (the newer
 *               evidence); when this turn brought the other value (a
 *               region the city is not in), the city ends instead.
 *
 * Relations of an entity that say something about it (Acme Corp industry
 * healthcare, Acme Corp located_in Boston) are kept as facts of that
 * entity, slot = the relation type: that is what the derivations and the
 * graph walk read.
 */
#include "cognitive/facts.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <utf8proc.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cognitive/gazetteer.h"
#include "embed/tokenize.h"
#include "index/analyze.h"

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

/* ---------------------------------------------------------- word stems */

#define MAX_TERMS 24
#define TERM_MAX 24

/* The content words of a value, stemmed (the retrieval analyzer's terms:
 * stop words dropped, Snowball English stems), so that "golf" and
 * "golfing", "cat" and "cats" meet. */
typedef struct terms {
    char w[MAX_TERMS][TERM_MAX];
    size_t n;
} terms;

/* Verbs and nouns that say how a plan or goal is carried out, not what it
 * is about ("go to Japan" and "the Japan trip" are one plan; "finished
 * Boston" carries out "Boston Marathon"), in stemmed form.  They are left
 * out when plans and goals are compared. */
static bool light_term(const char *t)
{
    static const char *const light[] = { "go", "goe", "went", "gone", "get", "got",
                                         "make", "made", "take", "took", "do", "done",
                                         "start", "tri", "finish", "complet", "plan",
                                         "want", "need", "becom", "trip", "final",
                                         "realli", "actual", "will", "gonna" };
    for (size_t i = 0; i < sizeof light / sizeof *light; i++)
        if (!strcmp(t, light[i]))
            return true;
    return false;
}

/* The terms of value into *t; a value the analyzer rejects (invalid
 * UTF-8) or that cannot be analyzed for lack of memory has none, so it
 * matches nothing by its words. */
static void value_terms(const char *value, bool drop_light, terms *t)
{
    t->n = 0;
    tok_list l;
    tok_list_init(&l);
    if (value && !an_text(value, strlen(value), &l)) {
        for (uint32_t i = 0; i < l.n && t->n < MAX_TERMS; i++) {
            const char *w = tok_str(&l, i);
            if (strlen(w) >= TERM_MAX || (drop_light && light_term(w)))
                continue;
            bool dup = false;
            for (size_t k = 0; k < t->n && !dup; k++)
                dup = !strcmp(t->w[k], w);
            if (!dup)
                strcpy(t->w[t->n++], w);
        }
    }
    tok_list_fini(&l);
}

/* How many terms of a are terms of b. */
static size_t terms_shared(const terms *a, const terms *b)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n; i++)
        for (size_t k = 0; k < b->n; k++)
            if (!strcmp(a->w[i], b->w[k])) {
                n++;
                break;
            }
    return n;
}

/* Every stemmed content word of the value with fewer of them is one of
 * the other's, and it has a word of three letters or more. */
static bool stems_within(const char *a, const char *b)
{
    terms ta, tb;
    value_terms(a, false, &ta);
    value_terms(b, false, &tb);
    const terms *s = ta.n <= tb.n ? &ta : &tb, *l = s == &ta ? &tb : &ta;
    bool has_long = false;
    for (size_t i = 0; i < s->n; i++)
        has_long |= strlen(s->w[i]) >= 3;
    return s->n && has_long && terms_shared(s, l) == s->n;
}

/* Plans and goals are free phrases, said differently each time ("go to
 * Japan", "the Japan trip"): they are one when more than half of the
 * content words of the shorter, the light ones left out, are the
 * other's.  More than half, so that "visit mom" is not "visit Japan". */
static bool phrases_match(const char *a, const char *b)
{
    terms ta, tb;
    value_terms(a, true, &ta);
    value_terms(b, true, &tb);
    const terms *s = ta.n <= tb.n ? &ta : &tb, *l = s == &ta ? &tb : &ta;
    return s->n && 2 * terms_shared(s, l) > s->n;
}

static bool is_phrase_slot(const char *slot)
{
    return !strcmp(slot, "goal") || !strcmp(slot, "plan");
}

/* Multi-valued slots that hold things and activities, not names: their
 * values match by word stems.  Family slots hold names ("Ann" is not
 * "Anne"). */
static bool stems_slot(const char *slot)
{
    return !strncmp(slot, "preference.", 11) || !strcmp(slot, "hobby") ||
           !strcmp(slot, "skill") || !strcmp(slot, "allergy") || !strcmp(slot, "health") ||
           !strcmp(slot, "pet") || !strcmp(slot, "education") || !strcmp(slot, "language") ||
           is_phrase_slot(slot);
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
    if (stems_slot(slot) && stems_within(a, b))
        return true;
    if (is_phrase_slot(slot) && phrases_match(a, b))
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
    dm_free(s->heads);
    dm_free(s->links);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------- the index */

/*
 * A user may have tens of thousands of facts (its relatives' and friends'
 * included); each turn looks up a few slots of a few subjects.  The
 * lookups go through two chained hash indexes instead of a scan: by slot
 * and subject key, and by slot alone.  The subject key is the name
 * normalized with its company suffix dropped, so two subjects that
 * facts_entity_match calls the same always share a key; a chain may hold
 * other facts (another state, a colliding key), and every lookup checks
 * its candidates exactly as the scan did.
 */

static uint64_t hash_bytes(uint64_t h, const char *p)
{
    for (; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    return h;
}

static uint64_t subject_key_hash(const char *subject)
{
    char n[NORM_MAX];
    facts_norm(subject ? subject : "", n, sizeof n);
    char k[NORM_MAX];
    memcpy(k, n, sizeof k);
    strip_company(k);
    return hash_bytes(0xcbf29ce484222325ULL, k[0] ? k : n);
}

static uint64_t slot_hash(const char *slot) { return hash_bytes(0x84222325cbf29ceULL, slot); }

static uint64_t pair_hash(uint64_t subject_h, const char *slot)
{
    return hash_bytes(subject_h ^ 0x9e3779b97f4a7c15ULL, slot);
}

/* Bring the index up to s->n facts; false when memory ran out (the
 * lookups then scan what is not indexed).  Only the merge calls it (the
 * writer's lock): lookups read the index and scan the facts added since. */
static bool index_update(fact_set *s)
{
    if (s->n_indexed == s->n && s->heads)
        return true;
    if (s->n > UINT32_MAX - 1)
        return false;
    if (!s->heads || s->n > s->n_buckets) {
        size_t nb = 64;
        while (nb < s->n * 2)
            nb *= 2;
        uint32_t *h = dm_calloc(2 * nb, sizeof *h);
        if (!h)
            return false;
        dm_free(s->heads);
        s->heads = h;
        s->n_buckets = nb;
        s->n_indexed = 0;
    }
    if (s->links_cap < s->n) {
        size_t cap = s->cap > s->n ? s->cap : s->n;
        uint32_t *l = dm_realloc(s->links, 2 * cap * sizeof *l);
        if (!l)
            return false;
        s->links = l;
        s->links_cap = cap;
    }
    for (size_t i = s->n_indexed; i < s->n; i++) {
        const fact *f = &s->f[i];
        size_t a = pair_hash(subject_key_hash(f->subject), f->slot ? f->slot : "") &
                   (s->n_buckets - 1);
        size_t b = s->n_buckets + (slot_hash(f->slot ? f->slot : "") & (s->n_buckets - 1));
        s->links[2 * i] = s->heads[a];
        s->heads[a] = (uint32_t)i + 1;
        s->links[2 * i + 1] = s->heads[b];
        s->heads[b] = (uint32_t)i + 1;
    }
    s->n_indexed = s->n;
    return true;
}

/*
 * The facts of slot (of subject, unless subject is NULL: of anyone) that
 * keep(f, arg) accepts, in the set's order, into a dm_malloc'd *out;
 * returns how many.  Without memory for the index the set is scanned;
 * without memory for the answer it is empty (*out NULL).
 */
typedef bool (*keep_fn)(const fact *f, const void *arg);

typedef struct idx_list {
    size_t *v;
    size_t n, cap;
    bool oom;
} idx_list;

static void idx_push(idx_list *l, size_t i)
{
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        size_t *nv = dm_realloc(l->v, nc * sizeof *nv);
        if (!nv) {
            l->oom = true;
            return;
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = i;
}

static size_t lookup(const fact_set *s, const char *subject, const char *slot, keep_fn keep,
                     const void *arg, size_t **out)
{
    idx_list l = { 0 };
    size_t from = 0;
    if (s->heads) {
        int which = subject ? 0 : 1;
        size_t b = subject ? pair_hash(subject_key_hash(subject), slot) & (s->n_buckets - 1)
                           : s->n_buckets + (slot_hash(slot) & (s->n_buckets - 1));
        for (uint32_t i = s->heads[b]; i; i = s->links[2 * (i - 1) + which]) {
            const fact *f = &s->f[i - 1];
            if (f->slot && !strcmp(f->slot, slot) && keep(f, arg))
                idx_push(&l, i - 1);
        }
        /* Chains run newest first; the callers want the set's order. */
        for (size_t i = 0; i < l.n / 2 && !l.oom; i++) {
            size_t t = l.v[i];
            l.v[i] = l.v[l.n - 1 - i];
            l.v[l.n - 1 - i] = t;
        }
        from = s->n_indexed;
    }
    for (size_t i = from; i < s->n; i++)
        if (s->f[i].slot && !strcmp(s->f[i].slot, slot) && keep(&s->f[i], arg))
            idx_push(&l, i);
    if (l.oom) {
        dm_free(l.v);
        l.v = NULL;
        l.n = 0;
    }
    *out = l.v;
    return l.n;
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

/* f is about subject ("" = the user). */
static bool is_about(const fact *f, const char *subject)
{
    return f->subject[0] ? subject[0] && facts_entity_match(f->subject, subject) : !subject[0];
}

static bool keep_current_of(const fact *f, const void *subject)
{
    return f->state == FACT_CURRENT && is_about(f, subject);
}

static bool keep_current(const fact *f, const void *unused)
{
    (void)unused;
    return f->state == FACT_CURRENT;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* The current goals and plans of subject (NULL: of anyone), in the set's
 * order, into a dm_malloc'd *out; returns how many. */
static size_t current_phrases(const fact_set *s, const char *subject, size_t **out)
{
    size_t *g, *p;
    keep_fn keep = subject ? keep_current_of : keep_current;
    size_t ng = lookup(s, subject, "goal", keep, subject, &g);
    size_t np = lookup(s, subject, "plan", keep, subject, &p);
    *out = g;
    if (!np)
        return ng;
    size_t *all = dm_realloc(g, (ng + np) * sizeof *all);
    if (!all) {
        dm_free(p);
        return ng;
    }
    memcpy(all + ng, p, np * sizeof *p);
    dm_free(p);
    qsort(all, ng + np, sizeof *all, cmp_size);
    *out = all;
    return ng + np;
}

/* The current facts of (subject, slot), into idx (at most max). */
static size_t find_current(const fact_set *s, const char *subject, const char *slot,
                           size_t *idx, size_t max)
{
    size_t *v;
    size_t n = lookup(s, subject, slot, keep_current_of, subject, &v);
    if (n > max)
        n = max;
    if (n)
        memcpy(idx, v, n * sizeof *idx);
    dm_free(v);
    return n;
}

#define MAX_SAME 64

/* value names the slot rather than a value of it: "my goal", "the plan",
 * "my job" (the employer), "my major" (education). */
static bool names_slot(const char *slot, const char *value)
{
    char n[NORM_MAX];
    facts_norm(value, n, sizeof n);
    const char *dot = strrchr(slot, '.');
    const char *tail = dot ? dot + 1 : slot;
    if (!strcmp(n, tail))
        return true;
    if (!strcmp(slot, "work.employer"))
        return !strcmp(n, "job") || !strcmp(n, "company") || !strcmp(n, "employer");
    if (!strcmp(slot, "education"))
        return !strcmp(n, "major") || !strcmp(n, "degree") || !strcmp(n, "studies");
    return false;
}

/* Some fact of (subject, slot), in any state, has a value matching value. */
static bool keep_of(const fact *f, const void *subject) { return is_about(f, subject); }

static bool held_ever(const fact_set *s, const char *subject, const char *slot,
                      const char *value, const fact_ctx *c)
{
    size_t *v;
    size_t n = lookup(s, subject, slot, keep_of, subject, &v);
    bool held = false;
    for (size_t i = 0; i < n && !held; i++)
        held = values_match(c, slot, s->f[v[i]].value, value);
    dm_free(v);
    return held;
}

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
        bool any = false;
        for (size_t k = 0; k < n && !rc; k++)
            if (values_match(c, slot, s->f[idx[k]].value, value)) {
                any = true;
                rc = end_fact(s, idx[k], valid_from, NULL, NULL, c, p);
            }
        /* "I hit my goal", "I quit my job": the slot named instead of its
         * value means the one value it holds. */
        if (!rc && !any && n == 1 && names_slot(slot, value))
            rc = end_fact(s, idx[0], valid_from, NULL, NULL, c, p);
        return rc;
    }
    /* Said again (a correction to the value already held confirms it). */
    for (size_t k = 0; k < n; k++)
        if (values_match(c, slot, s->f[idx[k]].value, value)) {
            *out_f = idx[k];
            return merge_into(s, idx[k], value, conf, single, c, p);
        }
    /* Loving an activity the subject already has as a hobby is that
     * hobby said again, not a second fact. */
    if (!strcmp(slot, "preference.likes")) {
        size_t h[MAX_SAME];
        size_t nh = find_current(s, subject, "hobby", h, MAX_SAME);
        for (size_t k = 0; k < nh; k++)
            if (values_match(c, "hobby", s->f[h[k]].value, value)) {
                *out_f = h[k];
                return merge_into(s, h[k], s->f[h[k]].value, conf, false, c, p);
            }
    }
    /* The value the turn says was replaced, when the slot never held it
     * ("I used to live in Chicago, now I'm in Minneapolis" as the first
     * word on the city): it goes into the history. */
    /* "I switched my major to data science": the replaced value named
     * by the slot is the slot's only current value. */
    bool prev_slot = prev && prev[0] && n == 1 && names_slot(slot, prev);
    bool prev_unknown = prev && prev[0] && !names_slot(slot, prev) &&
                        !values_match(c, slot, prev, value) &&
                        !held_ever(s, subject, slot, prev, c);
    /* A place the subject holds at another level (the city, for a region
     * said to replace it) is not a past value of this slot. */
    static const char *const levels[] = { "location.city", "location.region",
                                          "location.country" };
    for (size_t w = 0; w < 3 && prev_unknown && !strncmp(slot, "location.", 9); w++)
        prev_unknown = !held_ever(s, subject, levels[w], prev, c);
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
        bool ends = single || prev_slot ||
                    (prev && prev[0] && values_match(c, slot, s->f[idx[k]].value, prev));
        if (ends)
            rc = end_fact(s, idx[k], valid_from, by, value, c, p);
    }
    if (!rc && prev_unknown) {
        /* When it began is not known: valid from FACT_UNKNOWN_START, so
         * that "as known now" it held at any time before it ended. */
        size_t pf;
        rc = new_fact(s, subject, slot, prev, conf, FACT_UNKNOWN_START, flags, extractor, c,
                      &pf);
        if (!rc)
            rc = plan_push(p, pf, FEV_ADD, NULL, prev, NULL, c);
        if (!rc)
            rc = end_fact(s, pf, valid_from, by, value, c, p);
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

/* The fact was said in this turn. */
static bool said_now(const fact *f, const fact_ctx *c)
{
    return id_zero(c->source) ? f->mentioned_us == c->mentioned_us : has_source(f, c->source);
}

/* Statuses that end a marriage. */
static bool ends_marriage(const char *status)
{
    char n[NORM_MAX];
    facts_norm(status, n, sizeof n);
    return !strcmp(n, "divorced") || !strcmp(n, "widowed") || !strcmp(n, "single");
}

/* A derived fact of the user, slot = the value (a name) of fact bi, or
 * its subject when bi is a fact of another person: "Chris" from Chris's
 * own status.  It carries bi's sources; *out its index. */
static int derive_person(fact_set *s, const char *slot, size_t bi, int64_t from,
                         const fact_ctx *c, fact_plan *p, size_t *out)
{
    const fact *b = &s->f[bi];
    char *name = dm_strdup(b->subject[0] ? b->subject : b->value);
    if (!name)
        return DM_ENOMEM;
    int rc = new_fact(s, "", slot, name, b->confidence * 0.9f, from, FACT_DERIVED, "derived",
                      c, out);
    /* new_fact may have moved the array: index, not pointer, from here. */
    if (!rc)
        rc = add_sources(&s->f[*out], &s->f[bi]);
    if (!rc)
        rc = plan_push(p, *out, FEV_ADD, NULL, name, NULL, c);
    dm_free(name);
    return rc;
}

/* The user's relationship status, spouse and partner after a turn that
 * spoke of them: a spouse named in the turn makes the user married
 * (derived, as a city gives its region), unless the status said is newer;
 * a status said in the turn that ends a marriage (divorced, widowed,
 * single) ends the current spouse, "single" the partner too; "married"
 * said with a partner and no spouse makes the partner the spouse; and a
 * person given the same status as the user in the same turn ("Chris and
 * I got engaged") is the user's partner, or spouse for "married". */
static int derive_relationship(fact_set *s, const fact_ctx *c, fact_plan *p)
{
    size_t si = 0, ri = 0;
    bool has_spouse = find_current(s, "", "family.spouse", &si, 1) == 1;
    bool has_rel = find_current(s, "", "relationship", &ri, 1) == 1;
    if (has_rel && said_now(&s->f[ri], c) && !(s->f[ri].flags & FACT_DERIVED)) {
        const fact *r = &s->f[ri];
        char n[NORM_MAX];
        facts_norm(r->value, n, sizeof n);
        size_t pi = 0;
        bool has_partner = find_current(s, "", "family.partner", &pi, 1) == 1 &&
                           !said_now(&s->f[pi], c);
        if (has_spouse && !said_now(&s->f[si], c) && ends_marriage(r->value))
            return end_fact(s, si, r->valid_from_us, NULL, NULL, c, p);
        if (has_partner && !strcmp(n, "single"))
            return end_fact(s, pi, r->valid_from_us, NULL, NULL, c, p);
        bool married = !strcmp(n, "married");
        if (has_partner && !has_spouse && married) {
            /* "We got married": the partner is now the spouse. */
            size_t nf;
            int rc = derive_person(s, "family.spouse", pi, r->valid_from_us, c, p, &nf);
            if (!rc)
                rc = end_fact(s, pi, r->valid_from_us, s->f[nf].id, s->f[nf].value, c, p);
            return rc;
        }
        bool couple = married || !strcmp(n, "engaged") || !strcmp(n, "in a relationship");
        if (!couple || has_spouse || (!married && find_current(s, "", "family.partner", &pi, 1)))
            return DM_OK;
        /* "Chris and I got engaged": the person given the same status in
         * the same turn is the partner (the spouse, for "married"). */
        size_t *v;
        size_t nv = lookup(s, NULL, "relationship", keep_current, NULL, &v);
        int rc = DM_OK;
        for (size_t k = 0; k < nv; k++) {
            const fact *o = &s->f[v[k]];
            char on[NORM_MAX];
            if (!o->subject[0] || !said_now(o, c))
                continue;
            facts_norm(o->value, on, sizeof on);
            if (strcmp(on, n))
                continue;
            size_t nf;
            rc = derive_person(s, married ? "family.spouse" : "family.partner", v[k],
                               r->valid_from_us, c, p, &nf);
            break;
        }
        dm_free(v);
        return rc;
    }
    if (!has_spouse || !said_now(&s->f[si], c))
        return DM_OK;
    if (has_rel && s->f[ri].valid_from_us > s->f[si].valid_from_us)
        return DM_OK; /* a status newer than the marriage stands */
    return derive(s, "", "relationship", "married", si, NULL, 0, c, p);
}

#define DAY_US (86400LL * 1000000LL)

/* Whose event it is: a person among its people whose name opens its
 * description ("Priya moved to Portland"), else NULL: the user's ("went
 * to Japan with Ann"). */
static const char *event_actor(const ex_event *e)
{
    for (size_t w = 0; w < e->n_who; w++) {
        size_t l = e->who[w] ? strlen(e->who[w]) : 0;
        if (l && !strncasecmp(e->what, e->who[w], l) && (e->what[l] == ' ' || !e->what[l] ||
                                                          e->what[l] == '\''))
            return e->who[w];
    }
    return NULL;
}

/* what says a death ("Salt passed away", "the cat died"). */
static bool says_death(const char *what)
{
    static const char *const phrases[] = { " passed away", " died", " passed on",
                                           " put down", " put to sleep", " crossed the rainbow" };
    for (size_t i = 0; i < sizeof phrases / sizeof *phrases; i++)
        if (strcasestr(what, phrases[i]))
            return true;
    return false;
}

/* name occurs in text as whole words, case aside. */
static bool names_in(const char *text, const char *name)
{
    size_t l = strlen(name);
    if (!l)
        return false;
    for (const char *q = text; (q = strcasestr(q, name)); q++) {
        bool start = q == text || !isalnum((unsigned char)q[-1]);
        bool end = !isalnum((unsigned char)q[l]);
        if (start && end)
            return true;
    }
    return false;
}

/* A pet that the turn says died ends ("Sadly Salt passed away last
 * week", the pet told of in an earlier turn).  People are not ended this
 * way: a late mother is still the mother. */
static int end_dead_pets(fact_set *s, const ex_result *ex, const fact_ctx *c, fact_plan *p)
{
    int rc = DM_OK;
    for (size_t k = 0; k < ex->n_events && !rc; k++) {
        const ex_event *e = &ex->events[k];
        if (e->type != EX_EV_MILESTONE || !e->what || !says_death(e->what))
            continue;
        size_t *v;
        size_t nv = lookup(s, "", "pet", keep_current_of, "", &v);
        for (size_t j = 0; j < nv && !rc; j++) {
            const fact *f = &s->f[v[j]];
            if (!said_now(f, c) && names_in(e->what, f->value))
                rc = end_fact(s, v[j], e->from_us, NULL, NULL, c, p);
        }
        dm_free(v);
    }
    return rc;
}

/* The stem of the first word of s, into out (TERM_MAX bytes); "" when
 * it has none (a stop word, nothing). */
static void first_stem(const char *s, char *out)
{
    out[0] = 0;
    while (*s == ' ')
        s++;
    size_t l = strcspn(s, " ");
    if (!l || l >= TERM_MAX)
        return;
    char w[TERM_MAX];
    memcpy(w, s, l);
    w[l] = 0;
    terms t;
    value_terms(w, false, &t);
    if (t.n)
        strcpy(out, t.w[0]);
}

/* The event carries out plan or goal f: most content words of each are
 * the other's (at least half of both sides, the light words left out),
 * so that "went to Japan" does "go to Japan" and "finished Boston" the
 * "Boston Marathon", while "went hiking" is not "hike the Appalachian
 * Trail". */
static bool event_does(const ex_event *e, const fact *f)
{
    terms te, tf;
    value_terms(e->what, true, &te);
    value_terms(f->value, true, &tf);
    size_t shared = terms_shared(&tf, &te);
    if (!shared || 2 * shared < tf.n || 2 * shared < te.n)
        return false;
    /* A plan that opens with its verb is done by a deed of that verb:
     * "show my paintings" by "showed my paintings", not by "made this
     * painting to show my path"; one that opens with a light verb ("go
     * to Japan") by a light one ("went to Japan").  A plan named by its
     * object ("Boston Marathon") has no verb to test. */
    if (f->value[0] >= 'A' && f->value[0] <= 'Z')
        return true;
    const char *actor = event_actor(e);
    char pv[TERM_MAX], ev[TERM_MAX];
    first_stem(f->value, pv);
    first_stem(e->what + (actor ? strlen(actor) : 0), ev);
    if (!pv[0])
        return true;
    return light_term(pv) ? light_term(ev) : !strcmp(pv, ev);
}

/* Plans and goals the turn's events carried out end: an event that has
 * happened by the turn (not a plan), that began no earlier than the day
 * the plan was first said, and that is the plan's subject's (the user's,
 * or a person's whose name opens the event: event_actor). */
static int fulfil_plans(fact_set *s, const ex_result *ex, const fact_ctx *c, fact_plan *p)
{
    int rc = DM_OK;
    for (size_t k = 0; k < ex->n_events && !rc; k++) {
        const ex_event *e = &ex->events[k];
        if (e->type == EX_EV_PLAN || !e->what || e->from_us > c->mentioned_us)
            continue;
        size_t *v;
        size_t nv = current_phrases(s, NULL, &v);
        for (size_t j = 0; j < nv && !rc; j++) {
            size_t i = v[j];
            const fact *f = &s->f[i];
            if (f->state != FACT_CURRENT || said_now(f, c) ||
                e->from_us < f->mentioned_us - f->mentioned_us % DAY_US)
                continue;
            const char *actor = event_actor(e);
            bool about = f->subject[0] ? actor && facts_entity_match(actor, f->subject) : !actor;
            if (about && event_does(e, f))
                rc = end_fact(s, i, e->from_us, NULL, NULL, c, p);
        }
        dm_free(v);
    }
    return rc;
}

/* The slot for a place said to replace another ("I meant Utrecht, not
 * Rotterdam"): the level at which the subject holds the replaced place,
 * when the gazetteer knows the new one as a place of that level (Utrecht
 * is a city as well as a province); else slot. */
static const char *place_slot(const fact_set *s, const char *subject, const char *slot,
                              const char *value, const char *prev, const fact_ctx *c)
{
    static const char *const levels[] = { "location.city", "location.region",
                                          "location.country" };
    static const int kinds[] = { GZ_CITY, GZ_REGION, GZ_COUNTRY };
    if (!prev || !prev[0] || !value || strncmp(slot, "location.", 9))
        return slot;
    for (size_t w = 0; w < 3; w++) {
        size_t i;
        if (!strcmp(levels[w], slot) || find_current(s, subject, levels[w], &i, 1) != 1 ||
            !values_match(c, levels[w], s->f[i].value, prev))
            continue;
        const gz_place *cand[16];
        size_t n = gz_lookup(value, strlen(value), cand, 16);
        for (size_t k = 0; k < n && k < 16; k++)
            if ((int)cand[k]->kind == kinds[w])
                return levels[w];
    }
    return slot;
}

/* Effective valid_from of a fact of the turn. */
static int64_t fact_from(const ex_fact *f, const fact_ctx *c)
{
    return f->valid_from_us ? f->valid_from_us : c->mentioned_us;
}

/* Verbs of a plan or goal that a new state carries out, stemmed:
 * "move to Portland" is done when the city is Portland, "join Acme" when
 * the employer is Acme, "get married" when the status is married. */
static bool change_term(const char *t)
{
    static const char *const verbs[] = { "move", "relocat", "join", "start", "switch",
                                         "transfer", "go", "get", "adopt", "marri",
                                         "becom", "enrol" };
    for (size_t i = 0; i < sizeof verbs / sizeof *verbs; i++)
        if (!strcmp(t, verbs[i]))
            return true;
    return light_term(t);
}

/* Holding value carries out the plan: its words are all the plan's, and
 * the plan's other words are verbs of change only ("visit Portland" is
 * not done by living there). */
static bool state_does(const char *plan, const char *value)
{
    terms tp, tv;
    value_terms(plan, false, &tp);
    value_terms(value, false, &tv);
    if (!tv.n || terms_shared(&tv, &tp) != tv.n)
        return false;
    for (size_t i = 0; i < tp.n; i++) {
        bool in_value = false;
        for (size_t k = 0; k < tv.n && !in_value; k++)
            in_value = !strcmp(tp.w[i], tv.w[k]);
        if (!in_value && !change_term(tp.w[i]))
            return false;
    }
    return true;
}

/* Plans and goals that a fact the turn asserts carries out end (the
 * subject's own facts; not the turn's own plans). */
static int fulfil_by_facts(fact_set *s, const ex_result *ex, const fact_ctx *c, fact_plan *p)
{
    int rc = DM_OK;
    for (size_t k = 0; k < ex->n_facts && !rc; k++) {
        const ex_fact *x = &ex->facts[k];
        const char *subject = x->subject ? x->subject : "";
        if (x->polarity == EX_NEGATED || !x->value || is_phrase_slot(x->slot))
            continue;
        size_t *v;
        size_t nv = current_phrases(s, subject, &v);
        for (size_t j = 0; j < nv && !rc; j++) {
            size_t i = v[j];
            const fact *f = &s->f[i];
            if (f->state != FACT_CURRENT || said_now(f, c))
                continue;
            if (state_does(f->value, x->value))
                rc = end_fact(s, i, fact_from(x, c), NULL, NULL, c, p);
        }
        dm_free(v);
    }
    return rc;
}


int facts_apply(fact_set *s, const ex_result *ex, const fact_ctx *c, fact_plan *p)
{
    touched t[32];
    size_t n_t = 0;
    int rc = DM_OK;
    const char *extractor = c->extractor ? c->extractor : "builtin";
    /* The turn's facts in the order they became true ("IBM in 2010,
     * Oracle in 2015, Salesforce since 2019", in any order of telling):
     * each value of a single slot then ends the one before it.  Equal
     * times keep the order of the text. */
    size_t *order = ex->n_facts ? dm_malloc(ex->n_facts * sizeof *order) : NULL;
    if (ex->n_facts && !order)
        return DM_ENOMEM;
    for (size_t i = 0; i < ex->n_facts; i++) {
        size_t j = i;
        int64_t vf = fact_from(&ex->facts[i], c);
        while (j > 0 && fact_from(&ex->facts[order[j - 1]], c) > vf) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    bool marriage = false;
    index_update(s); /* without memory for it, lookups scan */
    for (size_t i = 0; i < ex->n_facts && !rc; i++) {
        const ex_fact *f = &ex->facts[order[i]];
        const char *subject = f->subject ? f->subject : "";
        const char *slot = place_slot(s, subject, f->slot, f->value, f->prev_value, c);
        size_t nf;
        rc = apply_fact(s, subject, slot, f->value, f->prev_value, f->polarity, f->confidence,
                        fact_from(f, c), extractor, 0, c, p, &nf);
        touch(t, &n_t, 32, subject, slot);
        marriage |= !subject[0] &&
                    (!strcmp(f->slot, "family.spouse") || !strcmp(f->slot, "relationship"));
    }
    dm_free(order);
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
    if (!rc && marriage)
        rc = derive_relationship(s, c, p);
    if (!rc)
        rc = fulfil_plans(s, ex, c, p);
    if (!rc)
        rc = fulfil_by_facts(s, ex, c, p);
    if (!rc)
        rc = end_dead_pets(s, ex, c, p);
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


static int put_str(buf *b, const char *s)
{
    return buf_put_lenbytes(b, s ? s : "", s ? strlen(s) : 0);
}

int fact_encode(const fact *f, buf *out)
{
    int rc = buf_put_u8(out, REC_FACT_VERSION);
    rc |= buf_put_u8(out, f->state);
    rc |= buf_put_u8(out, f->flags);
    rc |= buf_put_u32(out, f32_bits(f->confidence));
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
    f->confidence = f32_of_bits(conf);
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
