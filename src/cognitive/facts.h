/*
 * facts.h -- a user's facts: one current truth per slot, with history.
 *
 * A fact is (subject, slot, value) with a confidence, the time it became
 * true (valid_from) and stopped being true (valid_to), when it was said
 * (mentioned) and stored (recorded), the memories it came from, and its
 * state: current, superseded (a newer value replaced it) or retracted (the
 * user took it back).  Subject "" is the user; other subjects are entities
 * the user spoke of ("Ann", "Acme Corp").
 *
 * facts_apply merges what the extractor found in one turn into the set
 * (docs/cognition.md has the rules):
 *   - same subject and slot, same value (after normalization, or a near
 *     duplicate: one value's words contain the other's, the same place by
 *     the gazetteer, or embeddings more similar than FACT_SIM_DUP): merged
 *     -- one fact, one more source, confidence 1 - (1 - a)(1 - b);
 *   - a single-valued slot with a new value: the current fact is
 *     superseded (valid_to = the new valid_from) and kept for history;
 *   - a multi-valued slot with a new value: added beside the others;
 *   - a negation retracts the matching value; a correction supersedes
 *     whatever the slot held;
 *   - derived facts follow: a city gives its region and country (the
 *     gazetteer), an employer with a known industry gives work.industry;
 *     a place that contradicts the user's city (a region the city is not
 *     in) ends the city; the newer evidence wins.
 * Every change is returned as a fact_change, for the caller to write (the
 * fact records and their history entries) in one batch.
 *
 * Thread safety: a fact_set belongs to one user and is guarded by that
 * user's lock in the engine; the functions here take no locks.
 */
#ifndef DM_COGNITIVE_FACTS_H
#define DM_COGNITIVE_FACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "cognitive/extract.h"

#define FACT_OPEN INT64_MAX /* valid_to / ended of a fact still true */
#define FACT_SIM_DUP 0.92f  /* embedding similarity that makes a duplicate */
/* valid_from of a value known only to have held before a change ("I used
 * to live in Chicago, now I'm in Minneapolis"): the start is not known. */
#define FACT_UNKNOWN_START 0

enum fact_state { FACT_CURRENT = 0, FACT_SUPERSEDED = 1, FACT_RETRACTED = 2 };
enum { FACT_DERIVED = 1 }; /* fact.flags */

/* History events (the dm_change_kind values of include/deltamemory.h). */
enum fact_event {
    FEV_ADD = 1,       /* a new fact */
    FEV_UPDATE = 2,    /* the same fact, a better value ("engineer" ->
                          "senior engineer" said later) */
    FEV_SUPERSEDE = 4, /* replaced by a newer value (other = the new fact) */
    FEV_MERGE = 5,     /* said again: one more source, more confidence */
    FEV_RETRACT = 6,   /* taken back ("I don't live there anymore") */
};

typedef struct fact {
    uint8_t id[16];
    char *subject, *slot, *value; /* NUL-terminated, owned */
    float confidence;
    int64_t valid_from_us, valid_to_us; /* valid_to FACT_OPEN = still true */
    int64_t mentioned_us;               /* when it was first said */
    int64_t recorded_us;                /* when it was first stored */
    int64_t ended_us;     /* when the change that ended it was said;
                             FACT_OPEN while current */
    uint8_t state;        /* enum fact_state */
    uint8_t flags;        /* FACT_DERIVED */
    uint8_t other[16];    /* the fact that superseded it; zeros = none */
    uint8_t (*sources)[16];
    uint32_t n_sources;
    char *extractor;      /* "builtin", "llm", "derived", "api" */
} fact;

typedef struct fact_set {
    fact *f;
    size_t n, cap;
    /* The lookup index (facts.c), built lazily from f[0..n_indexed):
     * bucket heads of chains by (slot, subject) in [0, n_buckets) and by
     * slot in [n_buckets, 2 n_buckets), fact index + 1 (0 = end); links
     * holds two next links per fact.  Subject and slot of a fact never
     * change once set, so the index only grows (and is rebuilt when the
     * buckets fill). */
    uint32_t *heads, *links;
    size_t n_buckets, n_indexed, links_cap;
} fact_set;

/* One change for the caller to write: fact f (an index into the set) was
 * added or changed, with the history event it makes. */
typedef struct fact_change {
    size_t f;
    uint8_t event;        /* enum fact_event */
    char *old_value;      /* owned; NULL for an add */
    char *new_value;      /* owned */
    uint8_t other[16];    /* the other fact of a supersede; else zeros */
    uint8_t source[16];   /* the memory that caused it; zeros = none */
    int64_t at_us;        /* when it was said */
} fact_change;

typedef struct fact_plan {
    fact_change *c;
    size_t n, cap;
} fact_plan;

/* What facts_apply needs to know about the turn. */
typedef struct fact_ctx {
    int64_t mentioned_us;   /* the turn's time */
    int64_t recorded_us;    /* now */
    uint8_t source[16];     /* the turn's memory id (zeros = none) */
    const char *extractor;  /* "builtin", "llm", "api" */
    /* a fresh, time-ordered id */
    void (*new_id)(void *arg, uint8_t out[16]);
    void *id_arg;
    /* embedding similarity of two short values in [-1, 1], or NULL for
     * none: then duplicates are found by words and places only */
    float (*similar)(void *arg, const char *a, const char *b);
    void *sim_arg;
} fact_ctx;

/* facts_apply -- merge the facts (and the entity relations that carry
 * facts) of one extraction into s; the changes are appended to plan.
 * Errors: DM_ENOMEM (s and plan are then as consistent as before the
 * failing step: the caller should discard the plan and reload). */
int facts_apply(fact_set *s, const ex_result *ex, const fact_ctx *c, fact_plan *plan);

/* facts_add_one -- the same for one fact given directly (dm_fact_set). */
int facts_add_one(fact_set *s, const ex_fact *in, const fact_ctx *c, fact_plan *plan);

/* facts_norm -- the matching form of a value: case-folded, accents
 * stripped, leading articles and trailing punctuation dropped, spaces
 * collapsed; into out (cap bytes, NUL-terminated, truncated). */
void facts_norm(const char *value, char *out, size_t cap);

/* facts_entity_match -- a and b name the same entity: equal normalized
 * names, or equal once a company suffix is dropped ("Acme" = "Acme Corp"
 * = "ACME Inc."). */
bool facts_entity_match(const char *a, const char *b);

/* facts_current_at -- f was true at t as far as was known at t: said by t,
 * valid from before t, and not ended by a change said by t. */
bool facts_current_at(const fact *f, int64_t t_us);

/* facts_valid_at -- f was true at t as known now: valid from before t and
 * not ended by then (valid time only; when it was said does not matter). */
bool facts_valid_at(const fact *f, int64_t t_us);

/* Records (docs/format.md, "F" and "Y").  encode appends to out; decode
 * fills *f with owned copies (free with fact_fini).  Errors: DM_ECORRUPT
 * with the offset, DM_EVERSION, DM_ENOMEM. */
int fact_encode(const fact *f, buf *out);
int fact_decode(buf_slice v, fact *f);
int fact_change_encode(const fact_change *c, const fact *f, const char *extractor,
                       int64_t recorded_us, buf *out);

void fact_fini(fact *f);
void fact_set_fini(fact_set *s);
void fact_plan_fini(fact_plan *p);
/* fact_set_push -- append a copy of nothing: a zeroed fact at the end,
 * returned (NULL on DM_ENOMEM). */
fact *fact_set_push(fact_set *s);

#endif
