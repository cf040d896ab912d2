/*
 * extract.h -- the built-in extractor: facts, events, entities and
 * relations from one conversation turn, deterministically.
 *
 * Input is one turn: its text, who said it, and when.  Output is what the
 * turn states, each item with a confidence in [0, 1] and the byte span of
 * the text that supports it:
 *
 *   facts      (subject, slot, value): "I just moved to Austin" ->
 *              (speaker, location.city, Austin).  Slots: the taxonomy
 *              below (docs/cognition.md).  A fact may be a negation ("I
 *              don't eat meat anymore": diet, meat, EX_NEGATED) or a
 *              correction ("actually my name is Ali": EX_CORRECTION), and
 *              may name the value it replaces ("moved from Austin to
 *              Denver": prev_value Austin).
 *   events     what happened or will happen, with its time resolved
 *              against the turn's time ("last Saturday", said on
 *              2023-05-08 -> [2023-05-06, 2023-05-07)).
 *   entities   people, organizations, places, products, concepts named.
 *   relations  typed edges between entities (the speaker is an entity):
 *              (speaker, works_at, Acme Corp), (Acme Corp, industry,
 *              healthcare).
 *
 * The speaker is the subject "" (empty string): the user whose memory
 * the turn is.  Other subjects are entity names as written ("Ann").
 *
 * Nothing here reads storage: the caller merges the result into the
 * user's facts and graph.  Same input, same output.  Thread safety: all
 * functions may be called from any number of threads at once.
 */
#ifndef DM_COGNITIVE_EXTRACT_H
#define DM_COGNITIVE_EXTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- slots */

/*
 * The slot taxonomy.  A slot name is a string; family relations are
 * "family.<relation>" with the relation from EX_FAMILY_RELATIONS.  Single-
 * valued slots hold one current value (a new one supersedes the old);
 * multi-valued slots collect values (a negation removes one).
 */
#define EX_SLOTS_SINGLE                                                        \
    "name", "age", "birthday", "gender", "location.city", "location.region",   \
        "location.country", "origin", "work.employer", "work.title",           \
        "work.industry", "education.school", "relationship", "diet"
#define EX_SLOTS_MULTI                                                          \
    "pet", "preference.likes", "preference.dislikes", "allergy", "health",      \
        "hobby", "goal", "plan", "education", "language", "skill"
/* family.<relation>: spouse and partner are single-valued, the rest multi. */
#define EX_FAMILY_RELATIONS                                                     \
    "spouse", "partner", "mother", "father", "parent", "son", "daughter",      \
        "child", "brother", "sister", "sibling", "grandmother", "grandfather",  \
        "grandparent", "grandchild", "aunt", "uncle", "cousin", "niece",        \
        "nephew", "friend"

/* ex_slot_known -- slot is in the taxonomy (including family.<relation>). */
bool ex_slot_known(const char *slot);
/* ex_slot_single -- slot holds one current value (see above). */
bool ex_slot_single(const char *slot);

/*
 * ex_name_key -- the key under which entity names that denote the same
 * thing meet: name (len bytes) lowercased, punctuation dropped, words one
 * space apart, a leading "the" and trailing legal forms (Corp, Inc, LLC,
 * Ltd, Co, Company, Group, ...) removed unless they are the only word
 * ("Acme Corp", "ACME", "The Acme Company, Inc." -> "acme").  Writes at
 * most cap - 1 bytes and a NUL to out; returns the key's length.  Pure.
 */
size_t ex_name_key(const char *name, size_t len, char *out, size_t cap);

/* ---------------------------------------------------------------- output */

typedef enum ex_polarity {
    EX_ASSERTED = 0,   /* "I live in Austin" */
    EX_NEGATED = 1,    /* "I don't eat meat anymore", "I quit Acme" */
    EX_CORRECTION = 2, /* "actually my name is Ali": asserted, and the
                          previous value of the slot was wrong */
} ex_polarity;

typedef struct ex_span {
    uint32_t off, len; /* bytes of the turn's text */
} ex_span;

typedef struct ex_fact {
    char *subject;      /* "" = the speaker; otherwise an entity name */
    char *slot;         /* a slot of the taxonomy */
    char *value;        /* as it should be shown ("Austin", "vegetarian") */
    char *prev_value;   /* the value it replaces when the turn says so
                           ("moved from Austin to Denver"), or NULL */
    ex_polarity polarity;
    float confidence;   /* 0..1 */
    int64_t valid_from_us; /* when it became true if the turn says
                              ("since 2019", "last month"); else the
                              turn's time */
    ex_span span;
} ex_fact;

typedef enum ex_event_type {
    EX_EV_ACTIVITY = 0,   /* went hiking, read a book */
    EX_EV_PLAN = 1,       /* will travel, is going to apply */
    EX_EV_MILESTONE = 2,  /* graduated, moved, married, started a job */
    EX_EV_PREFERENCE = 3, /* a change of taste: started/stopped liking */
    EX_EV_SOCIAL = 4,     /* met, visited, celebrated with someone */
} ex_event_type;

typedef struct ex_event {
    ex_event_type type;
    char *what;          /* a short description, from the text */
    char **who;          /* people involved besides the speaker */
    size_t n_who;
    int64_t from_us, to_us; /* [from, to): when it happened or will; the
                               turn's day when the text gives no time */
    bool has_time;       /* the text gave the time ("yesterday") */
    float confidence;
    ex_span span;
} ex_event;

typedef enum ex_entity_type {
    EX_ENT_PERSON = 0,
    EX_ENT_ORG = 1,
    EX_ENT_PLACE = 2,
    EX_ENT_PRODUCT = 3,
    EX_ENT_CONCEPT = 4, /* an activity, an industry, a food, a topic */
} ex_entity_type;

typedef struct ex_entity {
    char *name; /* as written, trimmed ("Acme Corp") */
    ex_entity_type type;
    float confidence;
    ex_span span;
} ex_entity;

/*
 * Relation types: works_at, industry, lives_in, located_in, from (origin),
 * studied_at, member_of, owns, has_pet, likes, dislikes, married_to,
 * partner_of, friend_of, and family.<relation> read as "dst is src's
 * <relation>" ((speaker, family.daughter, Ann): Ann is the speaker's
 * daughter).  src/dst "" = the speaker.
 */
typedef struct ex_relation {
    char *src, *rel, *dst;
    float confidence;
    ex_span span;
} ex_relation;

typedef struct ex_result {
    ex_fact *facts;
    size_t n_facts;
    ex_event *events;
    size_t n_events;
    ex_entity *entities;
    size_t n_entities;
    ex_relation *relations;
    size_t n_relations;
} ex_result;

/* ----------------------------------------------------------------- input */

/* One earlier turn of the same conversation (ex_input.context). */
typedef struct ex_turn {
    const char *text; /* UTF-8, NUL-terminated */
    const char *role; /* "user" or "assistant" */
    int64_t time_us;
} ex_turn;

typedef struct ex_input {
    const char *text; /* UTF-8, len bytes, need not be NUL-terminated */
    size_t len;
    const char *speaker; /* the speaker's name if known ("Caroline"), or
                            NULL; a sentence naming the speaker in the
                            third person is about the speaker */
    const char *role;    /* "user" or "assistant" (NULL = "user"): what an
                            assistant says about the user is reported
                            speech, at lower confidence */
    int64_t time_us;     /* when the turn was said (UTC microseconds) */
    const ex_turn *context; /* the turns said just before this one in the
                               same session, oldest first (at most
                               EX_CONTEXT_MAX; NULL = none): an elliptical
                               turn ("Also shellfish.", "March 4th." after
                               "When is the birthday?") is read as their
                               continuation */
    size_t n_context;
} ex_input;

#define EX_CONTEXT_MAX 4

/*
 * ex_extract -- everything the built-in extractor finds in in.  *out is
 * filled (zeroed first; empty arrays are NULL with count 0); free it with
 * ex_result_free.  Errors: DM_EINVAL (NULL arguments), DM_ENOMEM (then
 * *out is empty).
 */
int ex_extract(const ex_input *in, ex_result *out);

/* ex_result_free -- frees what ex_extract filled; *r becomes empty. */
void ex_result_free(ex_result *r);

#endif
