/*
 * extract.c -- the built-in extractor: facts, events, entities and
 * relations from one conversation turn (see extract.h).
 *
 * Approach.  No regular expressions and no model: the turn is cut into
 * tokens once (words, numbers, punctuation; contractions are split and
 * expanded, so "I'm" is "I" "am" and "don't" is "do" "not"), every word is
 * looked up once in a sorted lexicon (lexicon.c) that gives its word classes
 * and, for verbs, lemma and form.  Sentences end at . ! ? ; and line breaks.
 * In each sentence:
 *   1. marks: a question (ends with '?', or opens with an auxiliary or a
 *      question word followed by a subject) yields no facts and no events;
 *      tokens after "if"/"unless"/"suppose" are hypothetical; tokens after a
 *      verb of saying or thinking whose subject is not the speaker ("my mom
 *      thinks ...", "she said ...") are reported speech; after the speaker's
 *      own "I think"/"I guess" they are hedged (lower confidence), after "I
 *      wish"/"I hope I"/"I don't think" they are not facts; a "when/while/
 *      before/after/until ..." clause up to its comma describes an event's
 *      circumstances and gives events but no facts ("When I turned ten,
 *      ..." is no age).  A sentence opening with "Actually", "Correction",
 *      "Sorry, I meant" or "I mean" makes its asserted facts corrections
 *      (an apology alone corrects nothing).
 *   2. noun-phrase patterns anchored on a possessive: "my name is X", "my
 *      birthday is X", "my sister Ann", "my dad (Luc)", "my dog Max", "my
 *      favorite food is X", "X is my favorite", "my hobby is X", "my goal is
 *      to X", "my
 *      hometown is X", "call me X", the fragments "Name's X", "Born and
 *      raised in X", "Not Austin, Dallas" (after a location in the turn),
 *      "As a trans woman, I ..."; and organisation patterns: "Acme is a
 *      healthcare company", "Acme Corp is in the healthcare space", "Acme's
 *      office is in Boston", "Initech, a software company".  Set phrases
 *      outside the frames: verdicts on a bare noun that opens the sentence
 *      ("Coffee is life", "Olives are gross", "Knitting keeps me sane";
 *      an activity is a hobby), conditions ("Peanut allergy here", "I had
 *      an allergic reaction to X", "I'm on medication for X", "I get
 *      migraines") and a business of one's own ("I run a bakery called
 *      X" -> title "bakery owner", employer X; "I founded a startup" ->
 *      "founder").
 *   3. frames: a subject (I, we, a named person, the speaker's own name, a
 *      resolved he/she; for assistant turns "you") followed by a verb group
 *      parsed by hand (adverbs, negation, auxiliaries, modals, "going to",
 *      "used to", tense and aspect), dispatched on the main verb's lemma to a
 *      matcher that reads the complement ("live" + "in" + place, "work" +
 *      "at" + organisation / "as" + title / "in" + industry, ...).  A frame
 *      is refused when its subject lies in a hypothetical or reported
 *      stretch or its verb group has a modal (would, could, might, should,
 *      may, must, 'd).  Coordinated verb groups reuse the subject, after
 *      "and" or a comma ("I live in Austin and work at Acme", "I'm 35, live
 *      in Chennai, work as ..."), and so do further complements of "be"
 *      ("I'm 41, divorced, a nurse at ...").  Chat leaves the subject out:
 *      a sentence opening with a past or -ing verb or "been" is the
 *      speaker's ("Moved to Denver last year", "Living in Leeds", "Been at
 *      Acme for years") unless the -ing phrase is itself the subject of a
 *      verb ("Moving to Denver was ..."), and verbless fragments about
 *      oneself are read as after "I'm" ("Single and not looking", "Male,
 *      45", "Big fan of X", "Not into sports", "Allergic to soy").
 *   3b. reading across the turn: a relative mentioned without a name
 *      ("my mom's 70th birthday") is named by a later "Her name's Linda",
 *      and a pet got by its species ("we adopted a cat") takes the name
 *      of "her name's Miso"; "my daughter is called Ann", "Beth's husband
 *      Carl" (another person's relative, any capitalised name); a name
 *      used as a subject ("Ben moved out, he's in Columbus") is the
 *      referent of a later he/she when no relative fits; "Tom and Priya
 *      moved" says it of both; ", where he lives" after a place; "I meant
 *      Square, not Stripe" and "Portland, Oregon actually" correct the
 *      employer or home by the kind of name; "I start there" is the
 *      organisation of a job, offer or internship named earlier.  A
 *      sentence naming several years gives each clause its own year
 *      ("started at IBM in 2010, moved to Oracle in 2015").  Chat
 *      phrasings: "I'm on keto", "Six weeks vegetarian", "I quit keto",
 *      "gave up golf", "getting into running", "going to a spin class",
 *      "learning to surf", "joined the climbing club", "an avid cyclist",
 *      "a decent cook" (skill), "As a male nurse, ...", "here in Austin",
 *      ", now living in Bristol", "switched to OHSU", "switched my major
 *      to X", "first week at Airbus", "I do accounting at PwC", "booked
 *      flights to Reykjavik" (plan "trip to Reykjavik"), "cancelled the
 *      Japan trip" (that plan negated), "Next goal: ...", "we had to put
 *      Bram down" (the pet negated), "My birthday was yesterday, 29 now".
 *      The slot named instead of a value: "I hit my goal", "gave up on
 *      my goal", "dropped my plan", "quit my job" (no employer named) give
 *      a negated fact whose value is the slot's name ("my goal", "my
 *      plan", "my job"), and "switched my major to X" / "switched jobs to
 *      Acme" give the new value with that name as prev_value ("my major",
 *      "my job"); the fact set reads such a name as the slot's one current
 *      value.
 *   4. events from frames whose verb is an activity, milestone or social
 *      verb in the past or present perfect, and plans from future frames;
 *      the type is refined by the particle or object ("passed away",
 *      "started running", "visited the Louvre", "had lunch with Ann"), the
 *      present perfect progressive is an ongoing state (no event), another
 *      person's coming wedding is a milestone and a relative's coming visit
 *      social.  The dates follow the labelled set's conventions
 *      (tests/data/cognition/README.md): own_window reads "N days/weeks/
 *      months/years ago" (one day, months clamped to the month's end),
 *      "tonight", "last night", "tomorrow", "the week after next", "on the
 *      15th", "the 1st of next month", "at the end of the year", "between
 *      the 3rd and the 10th of August" and "the weekend"; anything else is
 *      timex_parse (src/retrieve/timex.h) over the sentence, widened to
 *      whole days, with a plan's bare weekday, month or season moved ahead.
 *      Events named by a noun with a time ("Big party this weekend", "The
 *      party on Saturday was perfect", "I have a dentist appointment next
 *      Tuesday") are plans ahead of the turn and social or activity events
 *      behind it; "Salt passed away" names a death of any capitalised name;
 *      what someone else did carries their name ("Ben moved out").  A
 *      time said after "and"/"but" + a new subject, or after ";", belongs
 *      to that clause ("Got an offer from Airbus and I start on the 1st":
 *      the offer is the turn's day).
 *   5. entities: those named by facts and relations, then capitalised
 *      spans typed by the gazetteer, organisation suffixes, well-known
 *      organisation and first-name lists and the preposition before them.
 *   6. context (ex_input.context): the turn's first sentence, when it is
 *      a verbless fragment, is read as the continuation of the turns just
 *      before it: "Also shellfish, forgot to mention." after the user's
 *      "I'm allergic to peanuts." adds to that list, and "March 4th."
 *      after the assistant's "When is the birthday?" answers it for the
 *      person whose birthday the user spoke of.  Both restate the
 *      fragment as a full sentence and extract that (see in_context);
 *      the facts carry the fragment's span and at most 0.8.
 *
 * Confidence scale (after it, assistant turns multiply by 0.45, so what
 * an assistant says about the user stays below 0.5; hedged statements lose
 * 0.2; "we" and a person resolved from "he"/"she" multiply by 0.9):
 *   0.9  explicit first-person statement, present or present perfect, with
 *        a value the lexicon or the gazetteer confirms ("I live in Austin",
 *        "my name is Ali", "I work at Acme Corp", "I'm a nurse").
 *   0.8  explicit, but an open value (a free noun phrase: "I love sushi"),
 *        a statement about a named third person ("my sister Ann lives in
 *        Boston"), a subject "we", or a weaker pattern ("I joined Acme").
 *   0.7  indirect: "used to" as a negation, a state implied by an event
 *        ("I got a dog"), an ambiguous place name, a likely-creative title.
 *   0.6  inferred or unsure: an unknown capitalised place after "live in" /
 *        "moved to" (location.city), "I'm X" for a name not in the list.
 *   0.4  (0.9 x 0.45) an assistant restating the user.
 *
 * Value conventions.  Values are trimmed text of the turn, without leading
 * articles, possessives or determiners; proper nouns keep their spelling,
 * common nouns stay as the user wrote them (normally lowercase).
 *   name          the capitalised name ("Ali", "Ali Khan").
 *   age           decimal digits ("34"); only 1..120.
 *   birthday      "March 3" (month name, day); "March 3, 1990" with a year;
 *                 "May" when only the month is given.
 *   gender        "female", "male", "non-binary" ("a trans woman" is
 *                 female, "a trans man" male), "transgender" alone, and
 *                 other stated identities as written; only when stated.
 *   location.*    the place as written; the slot from the gazetteer reading
 *                 people mean (pick_place: a country or region unless a
 *                 city of that name is far bigger, "Portland" the city;
 *                 "Portland, Maine" the one in Maine; England, Scotland,
 *                 Wales, Northern Ireland are countries; Singapore a city).
 *                 "Austin, Texas" and "New Zealand, Wellington" give both.
 *   origin        the place, or the country of a nationality ("Brazilian"
 *                 -> Brazil) when no place of origin follows.
 *   pet           the pet's name when given ("Max"), else the animal as
 *                 written ("golden retriever", "chickens"; a puppy is a
 *                 dog, a kitten a cat).
 *   diet          "vegan", "vegetarian", "keto", ...; "I don't eat meat
 *                 (anymore)" is diet "meat" NEGATED, as extract.h shows --
 *                 no vegetarian is inferred.
 *   hobby         the activity: the object of "play" ("guitar", "tennis"),
 *                 of "do" ("yoga"), of "into" ("rock climbing"), of "go"
 *                 ("hiking"), or the gerund of an activity verb ("I paint"
 *                 -> "painting"); "I love hiking" (an activity's -ing form)
 *                 is a hobby, "I love sushi" a like.
 *   goal, plan    the verb phrase in base form, without the time ("run a
 *                 marathon", "visit Japan", "move to Denver").
 *   education     the field of study ("nursing", "computer science"), or
 *                 the degree when no field is given ("PhD").
 *   allergy       the allergen as written ("peanuts", "peanut").
 *   health        the condition ("asthma", "broken leg", "sprained ankle").
 *   family.<rel>  the relative's name; only named relatives give a fact.
 *   relationship  "married", "single", "engaged", "divorced", "widowed",
 *                 "separated", "in a relationship".
 *   skill         the ability, its verb as a gerund ("swimming", "playing
 *                 the piano", "driving stick").
 *   work.title    also "retired" ("I'm retired"), "piano teacher" from
 *                 "I teach piano".
 * Dislikes: "I don't like X", "I'm not a fan of X" give preference.dislikes
 * X (asserted); "I no longer like X" gives preference.likes X NEGATED.
 * Relations use the fact's subject and value: location.* -> lives_in (only
 * the most specific place of a turn; the wider one gets located_in),
 * origin -> from, work.employer -> works_at, education.school ->
 * studied_at, family.spouse -> married_to, family.partner -> partner_of,
 * family.friend -> friend_of, other family -> family.<rel>, pet ->
 * has_pet (the pet fact's value), likes/dislikes; negated facts give
 * none.  Plans and goals of other people are theirs ("my son Kenji is
 * moving to Vancouver" -> (Kenji, plan, move to Vancouver)).  Pets' names are CONCEPT entities.  Entity names are as
 * written; ex_name_key (an addition to extract.h) gives the key under which
 * "Acme" and "Acme Corp" are one organisation, and within a turn a short
 * form is replaced by the longer one already seen.  Events: "what" is the
 * verb phrase as written ("went to a support group"), plans in base form;
 * "who" are the named people of the clause; a plan said with a bare
 * weekday or month that timex reads as past ("on Saturday", "in July") is
 * moved to the next one.
 *
 * Limits.  English only; no parser, so long-distance structure, nested
 * clauses and coreference beyond one he/she are missed; values are cut at
 * the first preposition or conjunction; an unknown capitalised word is an
 * entity only when a pattern types it.  Past states ("I lived in Paris")
 * give no fact; "used to" gives a negated one.  "I'm learning Japanese" is
 * not a language fact; unnamed relatives ("my mom lives in Florida") give
 * no fact, having no name to be the subject; nothing is inferred across
 * slots (no region from a city, no "married" from "my wife").  Opinions
 * about a particular thing ("I love the yellow leaves") are likes at 0.6.
 *
 * Invariants: output strings are NUL-terminated copies owned by the
 * result; spans lie inside the input; confidences are in (0, 1); the same
 * input always gives the same output.  Locking: none; no global mutable
 * state (the lexicon is constant, the gazetteer initialises itself once).
 */
#include "cognitive/extract.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cognitive/gazetteer.h"
#include "cognitive/lexicon.h"
#include "deltamemory.h"
#include "retrieve/timex.h"

#define DAY_US INT64_C(86400000000)
#define ASSIST_MUL 0.45f
#define MAX_VALUE_TOKS 8 /* an open noun phrase longer than this is prose */
#define MAX_PEOPLE 16
#define MAX_ORGS 8

/* ---- slots ------------------------------------------------------------ */

static const char *const SLOTS_SINGLE[] = {EX_SLOTS_SINGLE};
static const char *const SLOTS_MULTI[] = {EX_SLOTS_MULTI};
static const char *const FAMILY_REL[] = {EX_FAMILY_RELATIONS};
#define N_FAMILY (sizeof FAMILY_REL / sizeof FAMILY_REL[0])

static int family_index(const char *rel)
{
    for (size_t i = 0; i < N_FAMILY; i++)
        if (strcmp(FAMILY_REL[i], rel) == 0)
            return (int)i;
    return -1;
}

bool ex_slot_known(const char *slot)
{
    if (!slot)
        return false;
    for (size_t i = 0; i < sizeof SLOTS_SINGLE / sizeof *SLOTS_SINGLE; i++)
        if (strcmp(slot, SLOTS_SINGLE[i]) == 0)
            return true;
    for (size_t i = 0; i < sizeof SLOTS_MULTI / sizeof *SLOTS_MULTI; i++)
        if (strcmp(slot, SLOTS_MULTI[i]) == 0)
            return true;
    return strncmp(slot, "family.", 7) == 0 && family_index(slot + 7) >= 0;
}

bool ex_slot_single(const char *slot)
{
    if (!slot)
        return false;
    for (size_t i = 0; i < sizeof SLOTS_SINGLE / sizeof *SLOTS_SINGLE; i++)
        if (strcmp(slot, SLOTS_SINGLE[i]) == 0)
            return true;
    return strcmp(slot, "family.spouse") == 0 ||
           strcmp(slot, "family.partner") == 0;
}

/* ---- name keys --------------------------------------------------------- */

static bool is_corp_suffix(const char *w, size_t n)
{
    static const char *const SUF[] = {
        "corp", "corporation", "inc", "incorporated", "llc", "ltd",
        "limited", "co", "company", "plc", "gmbh", "group", "holdings"};
    for (size_t i = 0; i < sizeof SUF / sizeof *SUF; i++)
        if (strlen(SUF[i]) == n && memcmp(SUF[i], w, n) == 0)
            return true;
    return false;
}

size_t ex_name_key(const char *name, size_t len, char *out, size_t cap)
{
    if (!out || cap == 0)
        return 0;
    out[0] = 0;
    if (!name)
        return 0;
    /* Words of letters and digits, lowercased, one space apart. */
    size_t k = 0;
    size_t word_start[32];
    size_t n_words = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9') || c >= 0x80;
        if (!alnum) {
            i++;
            continue;
        }
        if (k > 0 && k + 1 < cap)
            out[k++] = ' ';
        if (n_words < 32)
            word_start[n_words++] = k;
        while (i < len) {
            c = (unsigned char)name[i];
            alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c >= 0x80;
            if (!alnum && !(c == '\'' && i + 1 < len && name[i + 1] != ' '))
                break;
            if (c != '\'' && k + 1 < cap)
                out[k++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            i++;
        }
    }
    out[k] = 0;
    /* Drop a leading "the" and trailing legal-form words, but never the
     * last word: "The Company" stays "company". */
    if (n_words > 1 && k >= 4 && memcmp(out, "the ", 4) == 0) {
        memmove(out, out + 4, k - 4 + 1);
        k -= 4;
        for (size_t w = 1; w < n_words; w++)
            word_start[w - 1] = word_start[w] - 4;
        n_words--;
    }
    while (n_words > 1) {
        size_t ws = word_start[n_words - 1];
        if (!is_corp_suffix(out + ws, k - ws))
            break;
        k = ws - 1;
        out[k] = 0;
        n_words--;
    }
    return k;
}

/* ---- tokens ------------------------------------------------------------ */

enum { T_WORD = 1, T_NUM, T_PUNCT };

#define TF_CAP 0x01   /* Titlecase ("Austin", "I") */
#define TF_UPPER 0x02 /* two or more letters, all capitals ("NYC") */
#define TF_FIRST 0x04 /* first word of its sentence */
#define TF_NL 0x08    /* a line break precedes it */
#define TF_ORD 0x10   /* a number with an ordinal suffix ("3rd") */
#define TF_SYN 0x20   /* half of a split contraction */

/* Marks set per sentence. */
#define TM_HYPO 0x01     /* inside a conditional */
#define TM_REPORTED 0x02 /* inside someone else's words or thoughts */
#define TM_HEDGE 0x04    /* after the speaker's "I think" */
#define TM_WISH 0x10     /* after "I wish" / "I hope": not a fact */
#define TM_SUBCL 0x20    /* in a "when/while/before ..." clause: an event's
                            circumstances, not a current fact */

typedef struct tok {
    uint32_t off, len;   /* bytes of the text */
    const lx_entry *lx;  /* lexicon entry of w, or NULL */
    int32_t num;         /* T_NUM: the value (-1 when too large) */
    uint8_t type, flags, mark;
    char p;              /* T_PUNCT: the character, ASCII-folded */
    char w[24];          /* T_WORD: lowercase (ASCII folding only) */
} tok;

typedef struct tokbuf {
    tok *t;
    size_t n, cap;
    tok local[192];
    int err;
} tokbuf;

static tok *tb_push(tokbuf *b)
{
    if (b->err)
        return NULL;
    if (b->n == b->cap) {
        size_t ncap = b->cap * 2;
        tok *nt;
        if (b->t == b->local) {
            nt = dm_malloc(ncap * sizeof *nt);
            if (nt)
                memcpy(nt, b->t, b->n * sizeof *nt);
        } else {
            nt = dm_realloc(b->t, ncap * sizeof *nt);
        }
        if (!nt) {
            b->err = DM_ENOMEM;
            return NULL;
        }
        b->t = nt;
        b->cap = ncap;
    }
    tok *t = &b->t[b->n++];
    memset(t, 0, sizeof *t);
    return t;
}

/* utf8_cp -- the code point at s[i] (the text is valid UTF-8) and its
 * length in *n. */
static uint32_t utf8_cp(const unsigned char *s, size_t i, size_t len, int *n)
{
    unsigned char c = s[i];
    if (c < 0x80) {
        *n = 1;
        return c;
    }
    if ((c & 0xE0) == 0xC0 && i + 1 < len) {
        *n = 2;
        return ((uint32_t)(c & 0x1F) << 6) | (s[i + 1] & 0x3F);
    }
    if ((c & 0xF0) == 0xE0 && i + 2 < len) {
        *n = 3;
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) |
               (s[i + 2] & 0x3F);
    }
    if (i + 3 < len) {
        *n = 4;
        return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
               ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
    }
    *n = 1;
    return 0xFFFD;
}

/* Letters of other scripts and accented Latin count as word characters;
 * general punctuation, symbols and emoji separate words. */
static bool cp_letter(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    if (cp == 0xD7 || cp == 0xF7)
        return false;
    return (cp >= 0xC0 && cp <= 0x24F) || (cp >= 0x370 && cp <= 0x6FF) ||
           (cp >= 0x900 && cp <= 0xEFF) || (cp >= 0x1E00 && cp <= 0x1FFF) ||
           (cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x4E00 && cp <= 0x9FFF) ||
           (cp >= 0xAC00 && cp <= 0xD7AF);
}

static bool is_apos(const unsigned char *s, size_t i, size_t len, int *n)
{
    if (s[i] == '\'') {
        *n = 1;
        return true;
    }
    if (i + 2 < len && s[i] == 0xE2 && s[i + 1] == 0x80 && s[i + 2] == 0x99) {
        *n = 3;
        return true;
    }
    return false;
}

static bool ascii_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static void set_word(tok *t, const char *text, uint32_t off, uint32_t len,
                     const char *norm)
{
    t->type = T_WORD;
    t->off = off;
    t->len = len;
    size_t k = 0;
    if (norm) {
        k = strlen(norm);
        memcpy(t->w, norm, k + 1);
    } else {
        bool upper = len >= 2, lower_seen = false;
        for (uint32_t i = 0; i < len && k + 1 < sizeof t->w; i++) {
            unsigned char c = (unsigned char)text[off + i];
            if (c >= 'A' && c <= 'Z')
                c = (unsigned char)(c + 32);
            else if (c >= 'a' && c <= 'z')
                lower_seen = true;
            t->w[k++] = (char)c;
        }
        t->w[k] = 0;
        if (len >= sizeof t->w)
            t->w[0] = 0; /* too long to be a lexicon word: never matches */
        unsigned char c0 = (unsigned char)text[off];
        bool cap0 = (c0 >= 'A' && c0 <= 'Z') ||
                    (c0 == 0xC3 && len > 1 &&
                     (unsigned char)text[off + 1] >= 0x80 &&
                     (unsigned char)text[off + 1] <= 0x9E &&
                     (unsigned char)text[off + 1] != 0x97);
        if (cap0)
            t->flags |= TF_CAP;
        if (upper && !lower_seen && cap0) {
            size_t letters = 0;
            for (uint32_t i = 0; i < len; i++)
                letters += ascii_alpha((unsigned char)text[off + i]);
            if (letters >= 2)
                t->flags |= TF_UPPER;
        }
    }
    t->lx = t->w[0] ? lx_find(t->w, strlen(t->w)) : NULL;
}

/* Fused informal forms ("dont", "im", "gonna") split like contractions:
 * the first part keeps the leading bytes. */
static const struct fused {
    const char *w;
    uint8_t cut; /* bytes of the first part */
    const char *a, *b;
} FUSED[] = {
    {"arent", 3, "are", "not"},     {"cannot", 3, "can", "not"},
    {"cant", 2, "can", "not"},      {"couldnt", 5, "could", "not"},
    {"didnt", 3, "did", "not"},     {"doesnt", 4, "does", "not"},
    {"dont", 2, "do", "not"},       {"gonna", 3, "going", "to"},
    {"hadnt", 3, "had", "not"},     {"hasnt", 3, "has", "not"},
    {"havent", 4, "have", "not"},   {"im", 1, "i", "am"},
    {"isnt", 2, "is", "not"},       {"ive", 1, "i", "have"},
    {"shouldnt", 6, "should", "not"}, {"wanna", 3, "want", "to"},
    {"wasnt", 3, "was", "not"},     {"werent", 4, "were", "not"},
    {"wouldnt", 5, "would", "not"}, {"youre", 3, "you", "are"},
};

static void push_word(tokbuf *b, const char *text, uint32_t off, uint32_t len,
                      uint8_t pre_flags)
{
    tok *t = tb_push(b);
    if (!t)
        return;
    t->flags = pre_flags;
    set_word(t, text, off, len, NULL);
    if (len > 8 || t->lx)
        return; /* the fused forms are short and not lexicon words */
    for (size_t i = 0; i < sizeof FUSED / sizeof *FUSED; i++) {
        if (strcmp(t->w, FUSED[i].w) != 0)
            continue;
        uint8_t cap = t->flags & TF_CAP;
        set_word(t, text, off, FUSED[i].cut, FUSED[i].a);
        t->flags = (uint8_t)(pre_flags | cap | TF_SYN);
        tok *u = tb_push(b);
        if (!u)
            return;
        set_word(u, text, off + FUSED[i].cut, len - FUSED[i].cut, FUSED[i].b);
        u->flags = TF_SYN;
        return;
    }
}

/* tokenize -- the whole text into b. */
static void tokenize(tokbuf *b, const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    uint8_t pre = 0; /* flags for the next token */
    while (i < len && !b->err) {
        unsigned char c = s[i];
        int n = 1;
        uint32_t cp = utf8_cp(s, i, len, &n);
        if (c == '\n' || c == '\r') {
            pre |= TF_NL;
            i++;
            continue;
        }
        if (c == ' ' || c == '\t' || c < 0x20 || cp == 0xA0) {
            i += (size_t)n;
            continue;
        }
        if (cp_letter(cp) || (c >= '0' && c <= '9')) {
            size_t j = i;
            bool digits = c >= '0' && c <= '9';
            bool all_digits = digits;
            while (j < len) {
                int m = 1;
                uint32_t q = utf8_cp(s, j, len, &m);
                if (cp_letter(q) || (q >= '0' && q <= '9')) {
                    if (!(q >= '0' && q <= '9')) {
                        /* "3rd": the number stops before its suffix. */
                        if (all_digits && j + 1 < len && ascii_alpha(s[j + 1]) &&
                            (j + 2 >= len || !ascii_alpha(s[j + 2]))) {
                            char a0 = (char)(s[j] | 0x20);
                            char a1 = (char)(s[j + 1] | 0x20);
                            if ((a0 == 's' && a1 == 't') || (a0 == 'n' && a1 == 'd') ||
                                (a0 == 'r' && a1 == 'd') || (a0 == 't' && a1 == 'h'))
                                break;
                        }
                        all_digits = false;
                    }
                    j += (size_t)m;
                    continue;
                }
                /* Hyphens and dots inside a word ("gluten-free", "U.S.",
                 * "3.5"), commas inside a number ("1,000"). */
                if ((q == '-' || q == '.') && j + 1 < len &&
                    (ascii_alpha(s[j + 1]) || (s[j + 1] >= '0' && s[j + 1] <= '9') ||
                     s[j + 1] >= 0xC0)) {
                    if (q == '.' && !all_digits) {
                        /* "U.S." and "e.g": a dot after a single letter. */
                        size_t seg = j;
                        while (seg > i && s[seg - 1] != '.')
                            seg--;
                        if (j - seg != 1)
                            break;
                    }
                    j++;
                    continue;
                }
                if (q == ',' && all_digits && j + 1 < len &&
                    s[j + 1] >= '0' && s[j + 1] <= '9') {
                    j++;
                    continue;
                }
                int an = 0;
                if (is_apos(s, j, len, &an) && j + (size_t)an < len &&
                    ascii_alpha(s[j + (size_t)an]) && !all_digits) {
                    /* A contraction suffix splits the word; any other
                     * apostrophe ("O'Brien") stays inside it. */
                    size_t k = j + (size_t)an, e = k;
                    while (e < len && ascii_alpha(s[e]))
                        e++;
                    char suf[4] = {0};
                    size_t sl = e - k;
                    if (sl <= 2)
                        for (size_t q2 = 0; q2 < sl; q2++)
                            suf[q2] = (char)(s[k + q2] | 0x20);
                    bool nt = sl == 1 && suf[0] == 't' && j > i &&
                              (s[j - 1] | 0x20) == 'n';
                    bool other = sl >= 1 && sl <= 2 &&
                                 (!strcmp(suf, "m") || !strcmp(suf, "re") ||
                                  !strcmp(suf, "ve") || !strcmp(suf, "ll") ||
                                  !strcmp(suf, "d") || !strcmp(suf, "s"));
                    if (nt) {
                        /* "don't" = "do" + "n't" ("can't", "won't"). */
                        size_t stem = j - 1 - i;
                        char w0[8] = {0};
                        for (size_t q2 = 0; q2 < stem && q2 < 7; q2++)
                            w0[q2] = (char)(s[i + q2] | 0x20);
                        const char *fix = !strcmp(w0, "ca")    ? "can"
                                          : !strcmp(w0, "wo")  ? "will"
                                          : !strcmp(w0, "ai")  ? "is"
                                          : !strcmp(w0, "sha") ? "shall"
                                                               : NULL;
                        if (stem > 0) {
                            tok *t = tb_push(b);
                            if (!t)
                                return;
                            t->flags = pre;
                            set_word(t, text, (uint32_t)i, (uint32_t)stem, NULL);
                            if (fix) {
                                uint8_t fl = t->flags;
                                set_word(t, text, (uint32_t)i, (uint32_t)stem, fix);
                                t->flags = fl;
                            }
                            pre = 0;
                        }
                        tok *u = tb_push(b);
                        if (!u)
                            return;
                        set_word(u, text, (uint32_t)(j - 1), (uint32_t)(e - j + 1), "not");
                        u->flags = TF_SYN;
                        i = e;
                        goto next;
                    }
                    if (other) {
                        push_word(b, text, (uint32_t)i, (uint32_t)(j - i), pre);
                        pre = 0;
                        tok *u = tb_push(b);
                        if (!u)
                            return;
                        const char *nw = !strcmp(suf, "m")    ? "am"
                                         : !strcmp(suf, "re") ? "are"
                                         : !strcmp(suf, "ve") ? "have"
                                         : !strcmp(suf, "ll") ? "will"
                                         : !strcmp(suf, "d")  ? "'d"
                                                              : "'s";
                        set_word(u, text, (uint32_t)j, (uint32_t)(e - j), nw);
                        u->flags = TF_SYN;
                        i = e;
                        goto next;
                    }
                    j = e;
                    continue;
                }
                break;
            }
            if (all_digits) {
                tok *t = tb_push(b);
                if (!t)
                    return;
                t->type = T_NUM;
                t->flags = pre;
                t->off = (uint32_t)i;
                t->len = (uint32_t)(j - i);
                int64_t v = 0;
                bool dot = false;
                for (size_t q = i; q < j; q++) {
                    if (s[q] == '.')
                        dot = true;
                    if (s[q] < '0' || s[q] > '9' || dot)
                        continue;
                    if (v < 100000000)
                        v = v * 10 + (s[q] - '0');
                    else
                        v = -1;
                }
                t->num = dot ? -1 : (int32_t)v;
                /* "3rd", "21st": the ordinal suffix joins the number. */
                if (j + 1 < len && ascii_alpha(s[j]) && ascii_alpha(s[j + 1]) &&
                    (j + 2 >= len || !ascii_alpha(s[j + 2]))) {
                    char a0 = (char)(s[j] | 0x20), a1 = (char)(s[j + 1] | 0x20);
                    if ((a0 == 's' && a1 == 't') || (a0 == 'n' && a1 == 'd') ||
                        (a0 == 'r' && a1 == 'd') || (a0 == 't' && a1 == 'h')) {
                        t->flags |= TF_ORD;
                        t->len += 2;
                        j += 2;
                    }
                }
                snprintf(t->w, sizeof t->w, "%.*s", (int)(j - i < 23 ? j - i : 23),
                         text + i);
            } else {
                push_word(b, text, (uint32_t)i, (uint32_t)(j - i), pre);
            }
            pre = 0;
            i = j;
            continue;
        }
        /* Punctuation, folded to ASCII; other symbols separate words. */
        char p = 0;
        if (c < 0x80 && c > 0x20 && !(c >= '0' && c <= '9'))
            p = (char)c;
        else if (cp == 0x2018 || cp == 0x2019)
            p = '\'';
        else if (cp == 0x201C || cp == 0x201D)
            p = '"';
        else if (cp == 0x2013 || cp == 0x2014)
            p = '-';
        else if (cp == 0x2026)
            p = '.';
        if (p) {
            tok *t = tb_push(b);
            if (!t)
                return;
            t->type = T_PUNCT;
            t->flags = pre;
            t->p = p;
            t->off = (uint32_t)i;
            t->len = (uint32_t)n;
            t->w[0] = p;
            pre = 0;
        }
        i += (size_t)n;
    next:;
    }
}

static bool utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t min;
        if ((c & 0xE0) == 0xC0) {
            n = 2;
            min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3;
            min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4;
            min = 0x10000;
        } else {
            return false;
        }
        if (i + n > len)
            return false;
        uint32_t cp = c & (0x7F >> n);
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n;
    }
    return true;
}

/* ---- context ----------------------------------------------------------- */

typedef struct person {
    uint32_t off, len; /* the name in the text */
    int rel;           /* family index or -1 */
    int gender;        /* 1 female, 2 male, 0 unknown */
    bool subject_only; /* named only as the subject of a verb */
} person;

typedef struct sent {
    tok *t;          /* its tokens */
    int n;
    uint32_t off, end; /* bytes of the text */
    bool question, correction;
    bool tx_done;
    timex tx;        /* the sentence's time expression, parsed lazily */
    int consumed;    /* tokens before this were read as a value */
} sent;

typedef struct xctx {
    const ex_input *in;
    const char *text;
    size_t len;
    bool assistant;
    const char *spk; /* the speaker's first name, or NULL */
    size_t spk_len;
    ex_result *out;
    size_t cap_f, cap_ev, cap_en, cap_rel;
    int err;
    person people[MAX_PEOPLE];
    int n_people;
    char *orgs[MAX_ORGS]; /* organisation names seen (borrowed from out) */
    int n_orgs;
    int64_t day_from;     /* the turn's day */
    bool joint;           /* reading "Ann and I ..." for Ann */
    bool ev_future;       /* the event being added lies ahead even when its
                             type is not a plan ("my cousin is getting
                             married in June") */
    bool no_lives_in;     /* the location fact being added is the wider of
                             two places: no lives_in relation for it */
    int pending_rel;      /* family index of the speaker's last unnamed
                             relative ("my mom's birthday"), or -1 */
    int pending_gender;   /* its gender (see person) */
    bool prefer_city;     /* read an ambiguous place name as its city */
} xctx;

enum { SJ_SPEAKER = 1, SJ_WE, SJ_OTHER };

typedef struct subj {
    int kind;
    uint32_t off, len; /* SJ_OTHER: the name in the text */
    int pos;           /* token index of the subject */
    float mul;         /* confidence factor */
} subj;

/* ---- small token helpers ------------------------------------------------ */

static inline uint64_t tcls(const tok *t)
{
    return t->lx ? t->lx->cls : 0;
}
static inline int tverb(const tok *t)
{
    return t->lx ? t->lx->verb : LV_NONE;
}
static inline int tform(const tok *t)
{
    return t->lx ? t->lx->form : 0;
}
static inline bool tis(const tok *t, const char *w)
{
    /* The first byte decides most comparisons without a call. */
    return t->w[0] == w[0] && t->type == T_WORD && strcmp(t->w, w) == 0;
}
static inline bool tpunct(const tok *t, char p)
{
    return t->type == T_PUNCT && t->p == p;
}
static bool S_is(const sent *S, int i, const char *w)
{
    return i >= 0 && i < S->n && tis(&S->t[i], w);
}
static bool S_cls(const sent *S, int i, uint64_t c)
{
    return i >= 0 && i < S->n && (tcls(&S->t[i]) & c);
}
static bool S_punct(const sent *S, int i, char p)
{
    return i >= 0 && i < S->n && tpunct(&S->t[i], p);
}
static bool S_word(const sent *S, int i)
{
    return i >= 0 && i < S->n && S->t[i].type == T_WORD;
}
/* A capitalised word that is not the sentence's first (unless its lexicon
 * says it can only be a name) and not the pronoun I. */
static bool S_cap(const sent *S, int i)
{
    if (i < 0 || i >= S->n)
        return false;
    const tok *t = &S->t[i];
    if (t->type != T_WORD || !(t->flags & (TF_CAP | TF_UPPER)))
        return false;
    if (tis(t, "i"))
        return false;
    return true;
}

static bool clause_end_tok(const sent *S, int i)
{
    if (i >= S->n)
        return true;
    const tok *t = &S->t[i];
    return t->type == T_PUNCT && t->p && strchr(".,!?;:()\"-", t->p);
}

/* ly_adverb -- a lowercase word the lexicon does not know that ends in
 * "-ly" ("genuinely", or misspelt: "definately"): an adverb. */
static bool ly_adverb(const tok *t)
{
    size_t n = strlen(t->w);
    return !t->lx && n > 4 && t->w[n - 1] == 'y' && t->w[n - 2] == 'l' &&
           !(t->flags & (TF_CAP | TF_UPPER));
}

/* skip_adv -- the first index at or after i that is not a skippable
 * adverb. */
static int skip_adv(const sent *S, int i)
{
    while (i < S->n && S->t[i].type == T_WORD &&
           (((tcls(&S->t[i]) & LX_ADV) && !tverb(&S->t[i])) || ly_adverb(&S->t[i])))
        i++;
    return i;
}

/* may_have_time -- S has a word a time window needs: a time unit or word
 * ("week", "yesterday"), a day or month name, a number, a season or a
 * holiday.  Without one, timex_parse could only find "recently", which
 * the extractor does not use, so it is not called. */
static bool may_have_time(const sent *S)
{
    static const char *const W[] = {"summer", "winter", "spring", "fall",
                                    "autumn", "christmas", "xmas", "halloween",
                                    "thanksgiving", "valentine", "eve",
                                    "independence", "easter", "mon", "tue",
                                    "tues", "wed", "thu", "thur", "thurs",
                                    "fri", "sat", "sun"};
    for (int i = 0; i < S->n; i++) {
        const tok *t = &S->t[i];
        if (t->type == T_NUM || (tcls(t) & (LX_TIME | LX_DAY | LX_MONTH)))
            return true;
        if (t->type == T_WORD)
            for (size_t k = 0; k < sizeof W / sizeof *W; k++)
                if (tis(t, W[k]))
                    return true;
    }
    return false;
}

static const timex *sent_time(xctx *x, sent *S)
{
    if (!S->tx_done && !may_have_time(S)) {
        memset(&S->tx, 0, sizeof S->tx);
        S->tx.kind = TIMEX_NONE;
        S->tx_done = true;
    }
    if (!S->tx_done) {
        timex_ctx c;
        memset(&c, 0, sizeof c);
        c.ref_us = x->in->time_us;
        timex_parse(x->text + S->off, S->end - S->off, &c, &S->tx);
        S->tx_done = true;
    }
    return &S->tx;
}

/* in_time -- token i lies in the sentence's time expression. */
static bool in_time(xctx *x, sent *S, int i)
{
    const timex *tx = sent_time(x, S);
    if (tx->kind != TIMEX_WINDOW)
        return false;
    uint32_t a = S->off + tx->span_off, b = a + tx->span_len;
    return S->t[i].off >= a && S->t[i].off < b;
}

/* ---- output ------------------------------------------------------------ */

static void *grow(xctx *x, void *arr, size_t n, size_t *cap, size_t elem)
{
    if (x->err)
        return NULL;
    if (n < *cap)
        return arr;
    size_t ncap = *cap ? *cap * 2 : 4;
    void *p = dm_realloc(arr, ncap * elem);
    if (!p) {
        x->err = DM_ENOMEM;
        return NULL;
    }
    *cap = ncap;
    return p;
}

static char *xstrdup(xctx *x, const char *s)
{
    if (x->err)
        return NULL;
    char *p = dm_strdup(s);
    if (!p)
        x->err = DM_ENOMEM;
    return p;
}

/* span_str -- text[a, b) with whitespace runs made one space, trimmed,
 * and trailing punctuation other than a closing ')' or '.' of an
 * abbreviation removed. */
static char *span_str(xctx *x, uint32_t a, uint32_t b)
{
    if (x->err)
        return NULL;
    if (b > x->len)
        b = (uint32_t)x->len;
    char *p = dm_malloc((size_t)(b > a ? b - a : 0) + 1);
    if (!p) {
        x->err = DM_ENOMEM;
        return NULL;
    }
    size_t k = 0;
    bool sp = false;
    for (uint32_t i = a; i < b; i++) {
        char c = x->text[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            sp = k > 0;
            continue;
        }
        if (sp)
            p[k++] = ' ';
        sp = false;
        p[k++] = c;
    }
    while (k > 0 && (p[k - 1] == ',' || p[k - 1] == ';' || p[k - 1] == ':' ||
                     p[k - 1] == '-' || p[k - 1] == '"' || p[k - 1] == '\'' ||
                     p[k - 1] == ' '))
        k--;
    p[k] = 0;
    return p;
}

/* toks_str -- the text of tokens [a, b) of S. */
static char *toks_str(xctx *x, const sent *S, int a, int b)
{
    if (a >= b)
        return xstrdup(x, "");
    return span_str(x, S->t[a].off, S->t[b - 1].off + S->t[b - 1].len);
}

static ex_span tspan(const sent *S, int a, int b)
{
    ex_span sp = {0, 0};
    if (a < 0)
        a = 0;
    if (b > S->n)
        b = S->n;
    if (a >= b)
        return sp;
    sp.off = S->t[a].off;
    sp.len = S->t[b - 1].off + S->t[b - 1].len - sp.off;
    return sp;
}

static float clampf(float c)
{
    if (c > 0.99f)
        return 0.99f;
    if (c < 0.05f)
        return 0.05f;
    return c;
}

static char *subj_str(xctx *x, const subj *sj)
{
    if (sj->kind != SJ_OTHER)
        return xstrdup(x, "");
    return span_str(x, sj->off, sj->off + sj->len);
}

static void add_entity(xctx *x, const char *name, ex_entity_type type,
                       float conf, ex_span sp)
{
    if (x->err || !name || !name[0])
        return;
    ex_result *r = x->out;
    for (size_t i = 0; i < r->n_entities; i++) {
        if (strcasecmp(r->entities[i].name, name) == 0) {
            if (conf > r->entities[i].confidence + 0.15f)
                r->entities[i].type = type;
            if (conf > r->entities[i].confidence)
                r->entities[i].confidence = conf;
            return;
        }
    }
    ex_entity *e = grow(x, r->entities, r->n_entities, &x->cap_en, sizeof *e);
    if (!e)
        return;
    r->entities = e;
    char *nm = xstrdup(x, name);
    if (!nm)
        return;
    ex_entity *n = &r->entities[r->n_entities++];
    n->name = nm;
    n->type = type;
    n->confidence = clampf(conf);
    n->span = sp;
    if (type == EX_ENT_ORG && x->n_orgs < MAX_ORGS)
        x->orgs[x->n_orgs++] = nm;
}

/* org_name -- the fuller name of an organisation already seen in this turn
 * with the same key ("Acme" after "Acme Corp"), or name itself. */
static const char *org_name(xctx *x, const char *name)
{
    char k1[96], k2[96];
    ex_name_key(name, strlen(name), k1, sizeof k1);
    const char *best = name;
    for (int i = 0; i < x->n_orgs; i++) {
        ex_name_key(x->orgs[i], strlen(x->orgs[i]), k2, sizeof k2);
        if (k1[0] && strcmp(k1, k2) == 0 && strlen(x->orgs[i]) > strlen(best))
            best = x->orgs[i];
    }
    return best;
}

static void add_relation(xctx *x, const char *src, const char *rel,
                         const char *dst, float conf, ex_span sp)
{
    if (x->err || !dst || !dst[0])
        return;
    ex_result *r = x->out;
    for (size_t i = 0; i < r->n_relations; i++) {
        ex_relation *q = &r->relations[i];
        if (!strcmp(q->src, src) && !strcmp(q->rel, rel) &&
            !strcasecmp(q->dst, dst)) {
            if (conf > q->confidence)
                q->confidence = clampf(conf);
            return;
        }
    }
    ex_relation *e =
        grow(x, r->relations, r->n_relations, &x->cap_rel, sizeof *e);
    if (!e)
        return;
    r->relations = e;
    char *a = xstrdup(x, src), *b = xstrdup(x, rel), *c = xstrdup(x, dst);
    if (!a || !b || !c) {
        dm_free(a);
        dm_free(b);
        dm_free(c);
        return;
    }
    ex_relation *n = &r->relations[r->n_relations++];
    n->src = a;
    n->rel = b;
    n->dst = c;
    n->confidence = clampf(conf);
    n->span = sp;
}

/* Effective confidence of a statement in S at token i by subject sj. */
static float eff_conf(const sent *S, const subj *sj, int i, float base)
{
    float c = base * (sj ? sj->mul : 1.0f);
    if (i >= 0 && i < S->n && (S->t[i].mark & TM_HEDGE))
        c -= 0.2f;
    return clampf(c);
}

/*
 * add_fact -- records (subject, slot, value) with its side effects: the
 * relation and the entities it implies.  value and prev are owned (freed
 * here on any failure or duplicate).  a..b are the supporting tokens.
 */
static int64_t days_civil(int64_t y, int m, int d);

/* clause_year -- in a sentence that names more than one year ("I started
 * at IBM in 2010, moved to Oracle in 2015"), the year of the clause
 * around token a: "in/since/from YYYY" before the next comma or "and";
 * 0 when the sentence has one time or the clause none. */
static int clause_year(const sent *S, int a)
{
    int n_years = 0, year = 0;
    for (int q = 0; q < S->n; q++)
        if (S->t[q].type == T_NUM && S->t[q].len == 4 && S->t[q].num >= 1900 &&
            S->t[q].num <= 2100)
            n_years++;
    if (n_years < 2)
        return 0;
    for (int q = a; q < S->n && !S_punct(S, q, ',') && !S_punct(S, q, ';') &&
                    !S_is(S, q, "and");
         q++)
        if (S->t[q].type == T_NUM && S->t[q].len == 4 && S->t[q].num >= 1900 &&
            S->t[q].num <= 2100 &&
            (S_is(S, q - 1, "in") || S_is(S, q - 1, "since") || S_is(S, q - 1, "from")))
            year = S->t[q].num;
    return year;
}

static void add_fact(xctx *x, sent *S, const subj *sj, const char *slot,
                     char *value, char *prev, ex_polarity pol, float base,
                     int a, int b, ex_entity_type vtype)
{
    char *subject = NULL;
    if (x->err || !value || !value[0])
        goto drop;
    /* "we" speaks for the speaker only about a shared home, pets,
     * relationship and plans; other people get no name or gender here. */
    if (sj->kind == SJ_WE &&
        strncmp(slot, "location.", 9) != 0 && strcmp(slot, "pet") != 0 &&
        strcmp(slot, "relationship") != 0 && strcmp(slot, "plan") != 0 &&
        strcmp(slot, "language") != 0)
        goto drop;
    if (sj->kind == SJ_OTHER && !strcmp(slot, "name"))
        goto drop;
    /* "Ann and I": a shared pet or trip is the speaker's, told for both. */
    if (x->joint && (!strcmp(slot, "pet") || !strcmp(slot, "plan") || !strcmp(slot, "goal")))
        goto drop;
    if (S->correction && pol == EX_ASSERTED)
        pol = EX_CORRECTION;
    if (sj->pos >= 0 && sj->pos < S->n && (S->t[sj->pos].mark & TM_SUBCL))
        goto drop;
    float conf = eff_conf(S, sj, sj->pos, base);
    subject = subj_str(x, sj);
    if (!subject)
        goto drop;
    ex_result *r = x->out;
    for (size_t i = 0; i < r->n_facts; i++) {
        ex_fact *f = &r->facts[i];
        if (!strcmp(f->subject, subject) && !strcmp(f->slot, slot) &&
            !strcasecmp(f->value, value) &&
            (f->polarity == pol ||
             (pol == EX_CORRECTION && f->polarity == EX_ASSERTED))) {
            /* "I moved to Dallas. Not Austin, Dallas.": the same fact,
             * now a correction of Austin. */
            if (pol == EX_CORRECTION && f->polarity == EX_ASSERTED) {
                f->polarity = EX_CORRECTION;
                if (!f->prev_value) {
                    f->prev_value = prev;
                    prev = NULL;
                }
            }
            if (conf > f->confidence)
                f->confidence = conf;
            goto drop;
        }
    }
    /* "I left Acme and joined Initech", "I don't live in Boston anymore,
     * I'm in Providence now": the home or employer given up earlier in
     * the same sentence is the one this replaces, so it becomes the
     * prev_value instead of a fact of its own (as "moved from Austin to
     * Denver" does).  Its string moves, so names borrowed from it stay
     * valid. */
    if (pol != EX_NEGATED && !prev &&
        (!strncmp(slot, "location.", 9) || !strcmp(slot, "work.employer"))) {
        for (size_t i = r->n_facts; i-- > 0;) {
            ex_fact *o = &r->facts[i];
            if (o->span.off < S->off)
                break;
            if (o->polarity != EX_NEGATED || strcmp(o->slot, slot) ||
                strcmp(o->subject, subject))
                continue;
            prev = o->value;
            dm_free(o->subject);
            dm_free(o->slot);
            memmove(o, o + 1, (r->n_facts - i - 1) * sizeof *o);
            r->n_facts--;
            break;
        }
    }
    ex_fact *e = grow(x, r->facts, r->n_facts, &x->cap_f, sizeof *e);
    if (!e)
        goto drop;
    r->facts = e;
    char *sl = xstrdup(x, slot);
    if (!sl)
        goto drop;
    ex_fact *f = &r->facts[r->n_facts++];
    memset(f, 0, sizeof *f);
    f->subject = subject;
    f->slot = sl;
    f->value = value;
    f->prev_value = prev;
    f->polarity = pol;
    f->confidence = conf;
    f->valid_from_us = x->in->time_us;
    /* A plan or goal holds from when it is said; the sentence's time is
     * when it is to happen. */
    const timex *tx = sent_time(x, S);
    if (tx->kind == TIMEX_WINDOW && tx->from_us <= x->in->time_us &&
        strcmp(slot, "plan") && strcmp(slot, "goal"))
        f->valid_from_us = tx->from_us;
    int cy = clause_year(S, a);
    if (cy > 0 && days_civil(cy, 1, 1) * DAY_US <= x->in->time_us)
        f->valid_from_us = days_civil(cy, 1, 1) * DAY_US;
    int lo = sj->kind != SJ_WE && sj->pos >= 0 && sj->pos < a ? sj->pos : a;
    f->span = tspan(S, lo, b);

    /* Side effects: entities and relations. */
    ex_span vsp = tspan(S, a, b);
    if ((int)vtype >= 0)
        add_entity(x, value, vtype, conf, vsp);
    if (pol == EX_NEGATED)
        return;
    const char *rel = NULL;
    char relbuf[40];
    const char *dst = value;
    if (!strncmp(slot, "location.", 9) && !x->no_lives_in)
        rel = "lives_in";
    else if (!strcmp(slot, "origin"))
        rel = "from";
    else if (!strcmp(slot, "work.employer"))
        rel = "works_at";
    else if (!strcmp(slot, "education.school"))
        rel = "studied_at";
    else if (!strcmp(slot, "preference.likes"))
        rel = "likes";
    else if (!strcmp(slot, "preference.dislikes"))
        rel = "dislikes";
    else if (!strcmp(slot, "family.spouse"))
        rel = "married_to";
    else if (!strcmp(slot, "family.partner"))
        rel = "partner_of";
    else if (!strcmp(slot, "family.friend"))
        rel = "friend_of";
    else if (!strncmp(slot, "family.", 7)) {
        snprintf(relbuf, sizeof relbuf, "%s", slot);
        rel = relbuf;
    } else if (!strcmp(slot, "pet")) {
        rel = "has_pet";
    }
    if (!rel)
        return;
    if (!strcmp(rel, "works_at"))
        dst = org_name(x, value);
    add_relation(x, subject, rel, dst, conf, f->span);
    return;
drop:
    dm_free(subject);
    dm_free(value);
    dm_free(prev);
}

/* add_event -- an event of S; what is owned; who are the people found in
 * tokens [wa, wb). */
static void add_event(xctx *x, sent *S, ex_event_type type, char *what,
                      float conf, int a, int b, const subj *sj);

/* ---- calendar (for moving a plan's window into the future) -------------- */

static int64_t fdiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* days_civil -- days since 1970-01-01 of y-m-d (proleptic Gregorian):
 * count from March so that the leap day falls at the end of a year. */
static int64_t days_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = fdiv(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = fdiv(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static const char *const MONTH_NAMES[12] = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December"};

/* plan_window -- a plan said with a bare weekday, month or season that
 * timex read as the past one ("on Saturday", "in June", "in the fall")
 * means the next one. */
static void plan_window(xctx *x, sent *S, int64_t *from, int64_t *to)
{
    if (*to > x->day_from)
        return;
    bool weekday = false, month = false;
    for (int i = 0; i < S->n; i++) {
        if (!in_time(x, S, i))
            continue;
        if (tcls(&S->t[i]) & LX_DAY)
            weekday = true;
        /* A season moves by a year like a month does. */
        if ((tcls(&S->t[i]) & LX_MONTH) || tis(&S->t[i], "summer") ||
            tis(&S->t[i], "fall") || tis(&S->t[i], "autumn") || tis(&S->t[i], "winter") ||
            tis(&S->t[i], "spring"))
            month = true;
        if (tis(&S->t[i], "last") || tis(&S->t[i], "ago"))
            return;
    }
    if (weekday && *to - *from <= DAY_US * 2) {
        while (*to <= x->day_from) {
            *from += 7 * DAY_US;
            *to += 7 * DAY_US;
        }
    } else if (month) {
        int64_t y1, y2;
        int m1, d1, m2, d2;
        civil_days(fdiv(*from, DAY_US), &y1, &m1, &d1);
        civil_days(fdiv(*to, DAY_US), &y2, &m2, &d2);
        int64_t nf = days_civil(y1 + 1, m1, d1 > 28 ? 28 : d1) * DAY_US;
        int64_t nt = days_civil(y2 + 1, m2, d2 > 28 ? 28 : d2) * DAY_US;
        if (nt > nf) {
            *from = nf;
            *to = nt;
        }
    }
}

/* ---- event dates the extractor computes itself -------------------------- */

/* The windows below follow the date conventions of the labelled set
 * (tests/data/cognition/README.md): "N weeks ago" is one day, not a week;
 * "on the 15th" is the nearest such day in the event's direction; "the
 * week after next" is a Monday-to-Sunday week.  timex reads a query's time
 * as a search range, which is wider on purpose, so these phrases are read
 * here first and timex is the fallback. */

/* week_monday -- the Monday (days since the epoch) of the week of day z;
 * 1970-01-01 was a Thursday. */
static int64_t week_monday(int64_t z)
{
    int64_t wd = z + 3 - fdiv(z + 3, 7) * 7; /* 0 = Monday */
    return z - wd;
}

static int month_len(int64_t y, int m)
{
    return (int)(days_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) -
                 days_civil(y, m, 1));
}

/* shift_months -- day z moved by n calendar months, the day of the month
 * clamped to the target month's length ("a month ago" said on March 31 is
 * February 28 or 29). */
static int64_t shift_months(int64_t z, int64_t n)
{
    int64_t y;
    int m, d;
    civil_days(z, &y, &m, &d);
    int64_t mi = y * 12 + (m - 1) + n;
    y = fdiv(mi, 12);
    m = (int)(mi - y * 12) + 1;
    int ml = month_len(y, m);
    return days_civil(y, m, d > ml ? ml : d);
}

/* count_before -- the count of a "<count> <unit> ago" phrase whose unit is
 * token u: digits, a number word, "a"/"an", "a couple of", "a few". */
static int count_before(const sent *S, int u)
{
    int c = u - 1;
    if (S_is(S, c, "of") && S_is(S, c - 1, "couple"))
        return 2;
    if (S_is(S, c, "few"))
        return 3;
    if (S_is(S, c, "a") || S_is(S, c, "an") || S_is(S, c, "one"))
        return 1;
    if (c >= 0 && S->t[c].type == T_NUM && S->t[c].num > 0 && S->t[c].num < 1000)
        return S->t[c].num;
    if (S_cls(S, c, LX_NUM) && S->t[c].lx->data > 0)
        return S->t[c].lx->data;
    return 0;
}

/* day_of_month -- the day n (1..31) nearest to day z in the given
 * direction: the latest on or before z (past) or the earliest after z
 * (future); months too short for n are skipped. */
static int64_t day_of_month(int64_t z, int n, bool future)
{
    int64_t y;
    int m, d;
    civil_days(z, &y, &m, &d);
    for (int k = 0; k < 14; k++) {
        int64_t mi = y * 12 + (m - 1) + (future ? k : -k);
        int64_t yy = fdiv(mi, 12);
        int mm = (int)(mi - yy * 12) + 1;
        if (n > month_len(yy, mm))
            continue;
        int64_t c = days_civil(yy, mm, n);
        if (future ? c > z : c <= z)
            return c;
    }
    return z;
}

/* own_window -- a time phrase of S read by the conventions above; future
 * says which way a bare day points (plans look ahead).  Returns false when
 * S has none of these phrases. */
static bool own_window(xctx *x, const sent *S, bool future, int64_t *from, int64_t *to)
{
    int64_t z = fdiv(x->day_from, DAY_US);
    for (int i = 0; i < S->n; i++) {
        const tok *t = &S->t[i];
        if (t->type != T_WORD && t->type != T_NUM)
            continue;
        /* "three weeks ago", "a couple of months ago" */
        if (tis(t, "ago") && i > 0) {
            const char *u = S->t[i - 1].w;
            int n = count_before(S, i - 1);
            if (n <= 0)
                continue;
            int64_t d;
            if (!strcmp(u, "day") || !strcmp(u, "days"))
                d = z - n;
            else if (!strcmp(u, "week") || !strcmp(u, "weeks"))
                d = z - 7 * (int64_t)n;
            else if (!strcmp(u, "month") || !strcmp(u, "months"))
                d = shift_months(z, -n);
            else if (!strcmp(u, "year") || !strcmp(u, "years"))
                d = shift_months(z, -12 * (int64_t)n);
            else
                continue;
            *from = d * DAY_US;
            *to = *from + DAY_US;
            return true;
        }
        /* parts of today and of yesterday: timex reads "tonight" as the
         * hours to the next morning, the event is of the turn's day */
        if (tis(t, "tonight") || tis(t, "today") ||
            (tis(t, "this") && (S_is(S, i + 1, "morning") || S_is(S, i + 1, "afternoon") ||
                                S_is(S, i + 1, "evening")))) {
            *from = z * DAY_US;
            *to = *from + DAY_US;
            return true;
        }
        if ((tis(t, "last") && S_is(S, i + 1, "night")) || tis(t, "yesterday")) {
            bool before = S_is(S, i - 1, "before") && S_is(S, i - 2, "day");
            *from = (z - (before ? 2 : 1)) * DAY_US;
            *to = *from + DAY_US;
            return true;
        }
        /* "tomorrow" (and its common misspelling) */
        if (tis(t, "tomorrow") || tis(t, "tomorow") || tis(t, "tmrw")) {
            *from = (z + 1) * DAY_US;
            *to = *from + DAY_US;
            return true;
        }
        /* "the week after next" */
        if (tis(t, "week") && S_is(S, i + 1, "after") && S_is(S, i + 2, "next")) {
            *from = (week_monday(z) + 14) * DAY_US;
            *to = *from + 7 * DAY_US;
            return true;
        }
        /* "at the end of the year" / "by the end of this year" */
        if (tis(t, "end") && S_is(S, i + 1, "of") &&
            (S_is(S, i + 2, "the") || S_is(S, i + 2, "this")) && S_is(S, i + 3, "year")) {
            int64_t y;
            int m, d;
            civil_days(z, &y, &m, &d);
            *from = days_civil(y, 12, 1) * DAY_US;
            *to = days_civil(y + 1, 1, 1) * DAY_US;
            return true;
        }
        /* "between the 3rd and the 10th of August" */
        if (tis(t, "between")) {
            int j = i + 1, a = 0, b = 0, mon = 0;
            if (S_is(S, j, "the"))
                j++;
            if (j < S->n && S->t[j].type == T_NUM && (S->t[j].flags & TF_ORD))
                a = S->t[j++].num;
            if (!a || !S_is(S, j, "and"))
                continue;
            j++;
            if (S_is(S, j, "the"))
                j++;
            if (j < S->n && S->t[j].type == T_NUM && (S->t[j].flags & TF_ORD))
                b = S->t[j++].num;
            if (S_is(S, j, "of"))
                j++;
            if (S_cls(S, j, LX_MONTH))
                mon = S->t[j].lx->data;
            if (!mon || a < 1 || b < a || b > 31)
                continue;
            int64_t y;
            int m, d;
            civil_days(z, &y, &m, &d);
            if (future && days_civil(y, mon, a) <= z)
                y++;
            else if (!future && days_civil(y, mon, a) > z)
                y--;
            if (b > month_len(y, mon))
                continue;
            *from = days_civil(y, mon, a) * DAY_US;
            *to = (days_civil(y, mon, b) + 1) * DAY_US;
            return true;
        }
        /* "the 1st of next month", "on the 15th" (no month named) */
        if (t->type == T_NUM && (t->flags & TF_ORD) && t->num >= 1 && t->num <= 31 &&
            S_is(S, i - 1, "the") && !S_cls(S, i + 1, LX_MONTH) &&
            !(S_is(S, i + 1, "of") && S_cls(S, i + 2, LX_MONTH)) &&
            !S_cls(S, i - 2, LX_MONTH)) {
            if (S_is(S, i + 1, "of") && S_is(S, i + 3, "month") &&
                (S_is(S, i + 2, "next") || S_is(S, i + 2, "this"))) {
                int64_t base = S_is(S, i + 2, "next") ? shift_months(z, 1) : z;
                int64_t y;
                int m, d;
                civil_days(base, &y, &m, &d);
                if (t->num > month_len(y, m))
                    continue;
                *from = days_civil(y, m, t->num) * DAY_US;
            } else if (S_is(S, i - 2, "on")) {
                *from = day_of_month(z, t->num, future) * DAY_US;
            } else {
                continue;
            }
            *to = *from + DAY_US;
            return true;
        }
        /* "the weekend" without "this"/"next"/"last": the one just past,
         * or for a plan the coming one. */
        if (tis(t, "weekend") && S_is(S, i - 1, "the") && !S_is(S, i + 1, "of")) {
            int64_t mon = week_monday(z);
            *from = (future ? mon + 5 : mon - 2) * DAY_US;
            *to = *from + 2 * DAY_US;
            return true;
        }
    }
    return false;
}

/* whole_days -- a window widened to whole days: "this morning" ends at the
 * turn's time, but an event of this morning is the whole day. */
static void whole_days(int64_t *from, int64_t *to)
{
    *from = fdiv(*from, DAY_US) * DAY_US;
    *to = fdiv(*to + DAY_US - 1, DAY_US) * DAY_US;
    if (*to <= *from)
        *to = *from + DAY_US;
}

/* speaker_tok -- token i is the speaker's own name. */
static bool speaker_tok(xctx *x, const sent *S, int i)
{
    if (!x->spk || x->assistant || !S_word(S, i) || !(S->t[i].flags & TF_CAP))
        return false;
    return S->t[i].len == x->spk_len &&
           strncasecmp(x->text + S->t[i].off, x->spk, x->spk_len) == 0;
}

static int find_person(xctx *x, uint32_t off, uint32_t len)
{
    for (int i = 0; i < x->n_people; i++)
        if (x->people[i].len == len &&
            memcmp(x->text + x->people[i].off, x->text + off, len) == 0)
            return i;
    return -1;
}

static int rel_gender(const tok *t)
{
    static const char *const F[] = {
        "wife", "girlfriend", "fiancee", "fiancée", "mother", "mom", "mum",
        "mommy", "mama", "momma", "sister", "sisters", "daughter", "daughters",
        "grandmother", "grandma", "granny", "nana", "aunt", "auntie", "aunty",
        "niece", "granddaughter", "gf"};
    static const char *const M[] = {
        "husband", "hubby", "boyfriend", "fiance", "fiancé", "father", "dad",
        "daddy", "papa", "brother", "brothers", "son", "sons", "grandfather",
        "grandpa", "granddad", "grandad", "uncle", "nephew", "grandson", "bf"};
    for (size_t i = 0; i < sizeof F / sizeof *F; i++)
        if (tis(t, F[i]))
            return 1;
    for (size_t i = 0; i < sizeof M / sizeof *M; i++)
        if (tis(t, M[i]))
            return 2;
    return 0;
}

static void add_person(xctx *x, uint32_t off, uint32_t len, int rel, int gender)
{
    int p = find_person(x, off, len);
    if (p >= 0) {
        if (gender)
            x->people[p].gender = gender;
        return;
    }
    if (x->n_people >= MAX_PEOPLE)
        return;
    person *q = &x->people[x->n_people++];
    q->off = off;
    q->len = len;
    q->rel = rel;
    q->gender = gender;
    q->subject_only = false;
}

/* name_run -- a person's name at i: one capitalised word, and a second
 * when it is capitalised and not a lexicon word ("Ali Khan"); returns the
 * end, or i when there is no name. */
static int name_run(const sent *S, int i)
{
    if (!S_cap(S, i))
        return i;
    uint64_t c = tcls(&S->t[i]);
    if (c & ~(LX_FIRSTNAME | LX_ORGNAME | LX_BRAND | LX_ANIMAL | LX_CLUB |
              LX_OCC | LX_CREATIVE | LX_SKILLV | LX_HOBBYV | LX_POSSESSION |
              LX_MONTH | LX_VAGUE | LX_TIME | LX_INDUSTRY | LX_DEGREE))
        return i;
    if ((c & LX_MONTH) && !(c & LX_FIRSTNAME))
        return i;
    if (S->t[i].flags & TF_UPPER)
        return i;
    int e = i + 1;
    if (S_cap(S, e) && !S->t[e].lx && !(S->t[e].flags & TF_UPPER))
        e++;
    return e;
}

/* clause_break -- token q ends a clause that has a subject of its own
 * after it: ";", or "and" / "but" before I, we, he, she or they. */
static bool clause_break(const sent *S, int q)
{
    if (S_punct(S, q, ';'))
        return true;
    /* a bare comma does not part the times: "Settled in Brussels at
     * last, we moved in on the 3rd" is one event told twice */
    if (!(S_is(S, q, "and") || S_is(S, q, "but")))
        return false;
    int k = q + 1;
    return S_is(S, k, "i") || S_is(S, k, "we") || S_is(S, k, "he") || S_is(S, k, "she") ||
           S_is(S, k, "they");
}

static void add_event(xctx *x, sent *S, ex_event_type type, char *what,
                      float conf, int a, int b, const subj *sj)
{
    char **who = NULL;
    size_t n_who = 0;
    int b0 = b;
    if (x->err || !what || !what[0])
        goto drop;
    ex_result *r = x->out;
    for (size_t i = 0; i < r->n_events; i++)
        if (!strcasecmp(r->events[i].what, what) && r->events[i].type == type)
            goto drop;
    int64_t from = x->day_from, to = x->day_from + DAY_US;
    bool has = false;
    const timex *tx = sent_time(x, S);
    bool fut = type == EX_EV_PLAN || x->ev_future;
    /* The clause of the event: a time said in another clause with its
     * own subject ("Got an offer from Airbus and I start on the 1st") is
     * that clause's. */
    int cs = 0, ce = S->n;
    for (int q = a - 1; q > 0; q--)
        if (clause_break(S, q)) {
            cs = q + 1;
            break;
        }
    for (int q = b0 > a ? b0 : a + 1; q < S->n; q++)
        if (clause_break(S, q)) {
            ce = q;
            break;
        }
    sent sub = *S;
    if (cs > 0 || ce < S->n) {
        sub.t = S->t + cs;
        sub.n = ce - cs;
    }
    bool tx_here = tx->kind == TIMEX_WINDOW &&
                   (sub.n == S->n ||
                    (S->off + tx->span_off >= S->t[cs].off &&
                     S->off + tx->span_off < S->t[ce - 1].off + S->t[ce - 1].len));
    if (own_window(x, &sub, fut, &from, &to)) {
        has = true;
    } else if (tx_here) {
        from = tx->from_us;
        to = tx->to_us;
        has = true;
        if (fut)
            plan_window(x, S, &from, &to);
        whole_days(&from, &to);
    }
    int cy = clause_year(S, a);
    if (cy > 0) {
        from = days_civil(cy, 1, 1) * DAY_US;
        to = days_civil(cy + 1, 1, 1) * DAY_US;
        has = true;
    }
    /* Who: the subject when it is someone else, and the people named in
     * the clause. */
    uint32_t offs[8], lens[8];
    size_t k = 0;
    if (sj && sj->kind == SJ_OTHER) {
        offs[k] = sj->off;
        lens[k++] = sj->len;
    }
    /* the rest of the clause: "went hiking yesterday with Sarah" */
    while (b < S->n && !(tcls(&S->t[b]) & (LX_SUB | LX_SUBJ)) &&
           !tpunct(&S->t[b], ';') && !tpunct(&S->t[b], '.'))
        b++;
    for (int i = a; i < b && i < S->n && k < 8; i++) {
        if (!S_cap(S, i) || (S->t[i].flags & TF_FIRST) || speaker_tok(x, S, i))
            continue;
        bool known = find_person(x, S->t[i].off, S->t[i].len) >= 0;
        if (!known && !(tcls(&S->t[i]) & LX_FIRSTNAME))
            continue;
        const gz_place *g[1];
        if (!known && !(i > 0 && (S_is(S, i - 1, "with") || S_is(S, i - 1, "and"))) &&
            gz_lookup(x->text + S->t[i].off, S->t[i].len, g, 1) > 0)
            continue;
        if (!known && (tcls(&S->t[i]) & LX_MONTH))
            continue;
        int e = known ? i + 1 : name_run(S, i);
        if (e <= i)
            continue;
        uint32_t off = S->t[i].off, len = S->t[e - 1].off + S->t[e - 1].len - off;
        bool dup = false;
        for (size_t q = 0; q < k; q++)
            dup |= lens[q] == len && !memcmp(x->text + offs[q], x->text + off, len);
        if (!dup) {
            offs[k] = off;
            lens[k++] = len;
        }
        i = e - 1;
    }
    if (k > 0) {
        who = dm_calloc(k, sizeof *who);
        if (!who) {
            x->err = DM_ENOMEM;
            goto drop;
        }
        for (size_t q = 0; q < k; q++) {
            who[q] = span_str(x, offs[q], offs[q] + lens[q]);
            if (!who[q])
                goto drop_who;
            n_who++;
        }
    }
    ex_event *e = grow(x, r->events, r->n_events, &x->cap_ev, sizeof *e);
    if (!e)
        goto drop_who;
    r->events = e;
    ex_event *v = &r->events[r->n_events++];
    memset(v, 0, sizeof *v);
    v->type = type;
    v->what = what;
    v->who = who;
    v->n_who = n_who;
    v->from_us = from;
    v->to_us = to;
    v->has_time = has;
    v->confidence = eff_conf(S, sj, sj ? sj->pos : -1, conf);
    v->span = tspan(S, sj && sj->pos >= 0 && sj->pos < a ? sj->pos : a, b0);
    return;
drop_who:
    for (size_t q = 0; q < n_who; q++)
        dm_free(who[q]);
    dm_free(who);
drop:
    dm_free(what);
}

/* ---- phrases ----------------------------------------------------------- */

#define NP_OF 0x01   /* "of" may continue the phrase */
#define NP_LIST 0x02 /* stop at "and"/"or"/"," (a list follows) */

/* np_end -- the end of the noun phrase starting at a (at most max
 * tokens). */
static int np_end(xctx *x, sent *S, int a, int max, unsigned fl)
{
    int i = a;
    while (i < S->n && i - a < max) {
        const tok *t = &S->t[i];
        if (t->type == T_PUNCT) {
            if (t->p == '&' && i > a && i + 1 < S->n &&
                S->t[i + 1].type != T_PUNCT) {
                i++;
                continue;
            }
            break;
        }
        if (tis(t, "'s") && i > a) {
            i++;
            continue;
        }
        uint64_t c = tcls(t);
        if (c & (LX_CONJ | LX_SUB | LX_NEG | LX_BE | LX_WILL | LX_MODAL |
                 LX_CAN | LX_NPSTOP | LX_FREQ | LX_ADV | LX_TIME))
            break;
        if ((c & LX_INTERJ) && i > a && !(t->flags & TF_CAP))
            break;
        if ((c & (LX_HAVE | LX_DO)) && !(t->flags & TF_CAP))
            break;
        if ((c & LX_PREP) && !((fl & NP_OF) && tis(t, "of")))
            break;
        if ((c & LX_SUBJ) && !tis(t, "it") && i > a)
            break;
        if (tis(t, "that") || tis(t, "'d") || tis(t, "'s") || tis(t, "called") ||
            tis(t, "named"))
            break;
        if (in_time(x, S, i))
            break;
        i++;
    }
    return i;
}

/* skip_det -- past articles, determiners and possessives at i. */
static int skip_det(const sent *S, int i)
{
    while (i < S->n && (tcls(&S->t[i]) & (LX_ART | LX_POSS | LX_DET)) &&
           !(S->t[i].flags & TF_CAP && i > 0 && !(tcls(&S->t[i]) & LX_ART)))
        i++;
    return i;
}

/* vp_end -- the end of a verb phrase starting at a ("run a marathon"). */
static int vp_end(xctx *x, sent *S, int a, int max)
{
    int i = a;
    while (i < S->n && i - a < max) {
        const tok *t = &S->t[i];
        if (t->type == T_PUNCT) {
            if (t->p == '&' && i > a && i + 1 < S->n &&
                S->t[i + 1].type != T_PUNCT) {
                i++;
                continue;
            }
            break;
        }
        uint64_t c = tcls(t);
        if (i > a && (c & (LX_SUB | LX_FREQ)))
            break;
        if (i > a && tis(t, "that"))
            break;
        if (i > a && (c & LX_CONJ)) {
            /* "a safe and loving home" goes on; "and write a book" is
             * another verb phrase. */
            int q = skip_adv(S, i + 1);
            if (q >= S->n || S->t[q].type != T_WORD ||
                (tcls(&S->t[q]) & (LX_SUBJ | LX_POSS | LX_ART | LX_DET)) ||
                (tverb(&S->t[q]) && (tform(&S->t[q]) & (LXF_BASE | LXF_PAST))))
                break;
        }
        if (i > a && (c & LX_ADV) && !(c & LX_PREP))
            break;
        if (i > a && (tis(t, "someday") || tis(t, "eventually") ||
                      tis(t, "too") || tis(t, "anymore") || tis(t, "though")))
            break;
        if (i > a && in_time(x, S, i))
            break;
        i++;
    }
    /* Do not end on a preposition or article ("visit Japan in"). */
    while (i > a && (tcls(&S->t[i - 1]) & (LX_PREP | LX_ART | LX_POSS)) &&
           !tis(&S->t[i - 1], "it"))
        i--;
    return i;
}

/* gerund -- the -ing form of a base verb (paint -> painting, run ->
 * running, dance -> dancing) into out. */
static void gerund(const char *base, char *out, size_t cap)
{
    size_t n = strlen(base);
    if (n + 5 > cap) {
        snprintf(out, cap, "%s", base);
        return;
    }
    memcpy(out, base, n + 1);
    if (n >= 2 && base[n - 1] == 'e' && base[n - 2] != 'e' &&
        base[n - 2] != 'y' && base[n - 2] != 'o' && n > 2) {
        out[n - 1] = 0;
    } else if (n >= 3 && n <= 4 && !strchr("aeiouwxy", base[n - 1]) &&
               strchr("aeiou", base[n - 2]) && !strchr("aeiou", base[n - 3])) {
        out[n] = base[n - 1];
        out[n + 1] = 0;
    }
    strcat(out, "ing");
}

/* vague_np -- a phrase that names nothing ("it", "that", "the idea",
 * "what you said", "my kids"). */
static bool vague_np(const sent *S, int a, int b)
{
    if (a >= b)
        return true;
    const tok *t = &S->t[a];
    uint64_t c = tcls(t);
    if (c & (LX_PRONOBJ | LX_POSS | LX_QWORD | LX_SUBJ))
        return true;
    if (tis(t, "this") || tis(t, "that") || tis(t, "these") || tis(t, "those"))
        return true;
    int h = b - 1;
    if (tcls(&S->t[h]) & (LX_VAGUE | LX_PRONOBJ | LX_PERSONWORD))
        return true;
    for (int q = a; q < b; q++)
        if (tis(&S->t[q], "it") || tis(&S->t[q], "them") ||
            tis(&S->t[q], "him") || tis(&S->t[q], "me") || tis(&S->t[q], "us") ||
            tis(&S->t[q], "you"))
            return true;
    if (tcls(&S->t[h]) & LX_FAMILY)
        return true;
    return false;
}

/* ---- places ------------------------------------------------------------ */

typedef struct place {
    const char *slot; /* "location.city" / ".region" / ".country" */
    float conf;
    const gz_place *gp; /* the reading chosen; NULL when unknown */
    const gz_place *cand[8]; /* every place of that name, best first */
    int n_cand;
} place;

/* slot_of -- the location slot of a gazetteer place.  Scotland, England,
 * Wales and Northern Ireland are first-level regions of the United Kingdom
 * in the data but countries in ordinary speech, and a city-state that the
 * data holds only as a country ("Singapore") is where a person lives as in
 * a city. */
static const char *slot_of(const gz_place *g)
{
    static const char *const HOME_NATIONS[] = {"Scotland", "England", "Wales",
                                               "Northern Ireland"};
    static const char *const CITY_STATES[] = {"Singapore", "Monaco",
                                              "Vatican City", "Macau", "Macao"};
    if (g->kind == GZ_REGION)
        for (size_t k = 0; k < sizeof HOME_NATIONS / sizeof *HOME_NATIONS; k++)
            if (!strcmp(g->name, HOME_NATIONS[k]))
                return "location.country";
    if (g->kind == GZ_COUNTRY)
        for (size_t k = 0; k < sizeof CITY_STATES / sizeof *CITY_STATES; k++)
            if (!strcmp(g->name, CITY_STATES[k]))
                return "location.city";
    return g->kind == GZ_COUNTRY  ? "location.country"
           : g->kind == GZ_REGION ? "location.region"
                                  : "location.city";
}

/* pick_place -- the reading of a name that people most likely mean, among
 * the gazetteer's candidates (countries, then regions, then cities by
 * population).  A country or region keeps its name unless a city of that
 * name is far better known: one of a million people ("New York", "Hong
 * Kong", "Lagos"), or one of 300,000 whose namesake region lies in another
 * country (Portland, Oregon over the parish of Portland in Jamaica; but
 * Washington the state over Washington, D.C.) or that is named after it
 * (Oslo the city over the county of Oslo). */
static const gz_place *pick_place(const gz_place *const *g, size_t m)
{
    const gz_place *best = g[0];
    if (best->kind == GZ_CITY)
        return best;
    const gz_place *city = NULL;
    for (size_t k = 1; k < m; k++)
        if (g[k]->kind == GZ_CITY && (!city || g[k]->population > city->population))
            city = g[k];
    if (!city)
        return best;
    if (city->population >= 1000000)
        return city;
    if (best->kind == GZ_REGION && city->population >= 300000 &&
        (strcmp(city->country, best->country) != 0 ||
         (city->region && !strcmp(city->region, best->name))))
        return city;
    return best;
}

/* classify -- what the gazetteer says of name.  An unknown capitalised
 * name is a city at low confidence; an unknown lowercase one is nothing,
 * and a lowercase one must be a country, a region or a city of 100,000. */
static bool classify(const char *name, size_t len, bool cap, place *out)
{
    const gz_place *g[8];
    size_t n = gz_lookup(name, len, g, 8);
    size_t m = n < 8 ? n : 8;
    memset(out, 0, sizeof *out);
    if (m == 0) {
        if (!cap)
            return false;
        out->slot = "location.city";
        out->conf = 0.6f;
        return true;
    }
    const gz_place *best = pick_place(g, m);
    if (!cap && best->kind == GZ_CITY && best->population < 100000)
        return false;
    bool mixed = false;
    for (size_t k = 0; k < m; k++) {
        mixed |= g[k]->kind != best->kind;
        out->cand[k] = g[k];
    }
    out->n_cand = (int)m;
    out->gp = best;
    out->slot = slot_of(best);
    /* A reading chosen for its size ("Lagos" the city) is as sure as an
     * unambiguous name. */
    out->conf = mixed && best == g[0] ? 0.8f : 0.9f;
    if (!cap)
        out->conf -= 0.1f;
    return true;
}

/* within_pair -- readings of p and q with p's inside q ("Portland, Maine":
 * the Portland in Maine); fills *pi, *qi.  p's chosen reading is tried
 * first unless city_first, when p's cities are: after a country, "New
 * Zealand, Wellington" names the city rather than the region. */
static bool within_pair(const place *p, const place *q, bool city_first,
                        const gz_place **pi, const gz_place **qi)
{
    if (!p->gp || !q->gp)
        return false;
    if (!city_first && gz_within(p->gp, q->gp)) {
        *pi = p->gp;
        *qi = q->gp;
        return true;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int a = 0; a < p->n_cand; a++) {
            if ((p->cand[a]->kind == GZ_CITY) != (pass == 0))
                continue;
            for (int b = 0; b < q->n_cand; b++)
                if (gz_within(p->cand[a], q->cand[b])) {
                    *pi = p->cand[a];
                    *qi = q->cand[b];
                    return true;
                }
        }
    return false;
}

/* place_at -- a place name at i: a capitalised run ("New York", "St.
 * Louis", "the UK") or, lowercase, up to three words the gazetteer knows.
 * Sets [*a, *b) to its tokens and fills p; false when there is none. */
static bool place_at0(xctx *x, sent *S, int i, int *a, int *b, place *p)
{
    if (S_is(S, i, "the"))
        i++;
    if (i >= S->n || S->t[i].type != T_WORD)
        return false;
    if (S_cap(S, i)) {
        int e = i;
        while (e < S->n && e - i < 5) {
            if (S_cap(S, e) && !(tcls(&S->t[e]) & (LX_DAY | LX_SUBJ)) &&
                !(tcls(&S->t[e]) & LX_MONTH && e == i)) {
                e++;
                continue;
            }
            /* "St. Louis", "Isle of Man" */
            if (e > i && S_punct(S, e, '.') && S->t[e - 1].len <= 3 &&
                S_cap(S, e + 1) && (tis(&S->t[e - 1], "st") ||
                                    tis(&S->t[e - 1], "ft") ||
                                    tis(&S->t[e - 1], "mt"))) {
                e++;
                continue;
            }
            if (e > i && S_is(S, e, "of") && S_cap(S, e + 1)) {
                e++;
                continue;
            }
            break;
        }
        if (e == i)
            return false;
        /* "Quebec City", "Guatemala City": the gazetteer may know the
         * city by its bare name. */
        if (e - i >= 2 && tis(&S->t[e - 1], "city")) {
            uint32_t off = S->t[i].off;
            uint32_t end = S->t[e - 1].off + S->t[e - 1].len;
            uint32_t bare = S->t[e - 2].off + S->t[e - 2].len;
            const gz_place *g[8];
            size_t n = gz_lookup(x->text + off, end - off, g, 8);
            if (n == 0) {
                n = gz_lookup(x->text + off, bare - off, g, 8);
                for (size_t k = 0; k < n && k < 8; k++)
                    if (g[k]->kind == GZ_CITY) {
                        *a = i;
                        *b = e;
                        memset(p, 0, sizeof *p);
                        p->gp = p->cand[0] = g[k];
                        p->n_cand = 1;
                        p->slot = "location.city";
                        p->conf = 0.9f;
                        return true;
                    }
            }
        }
        /* The longest prefix the gazetteer knows, else the whole run. */
        for (int k = e; k > i; k--) {
            uint32_t off = S->t[i].off;
            uint32_t end = S->t[k - 1].off + S->t[k - 1].len;
            const gz_place *g[1];
            if (gz_lookup(x->text + off, end - off, g, 1) > 0) {
                *a = i;
                *b = k;
                return classify(x->text + off, end - off, true, p);
            }
        }
        /* A lone capitalised lexicon word ("Home", "Work") is not a place. */
        if (e == i + 1 && S->t[i].lx &&
            !(tcls(&S->t[i]) & (LX_FIRSTNAME | LX_ORGNAME)))
            return false;
        *a = i;
        *b = e;
        uint32_t off = S->t[i].off, end = S->t[e - 1].off + S->t[e - 1].len;
        return classify(x->text + off, end - off, true, p);
    }
    /* Lowercase text ("i moved to austin"): words not in the lexicon. */
    for (int k = i + 3 < S->n ? i + 3 : S->n; k > i; k--) {
        bool ok = true;
        for (int q = i; q < k; q++)
            ok &= S->t[q].type == T_WORD &&
                  (!S->t[q].lx || S->t[q].lx->cls == LX_FIRSTNAME);
        if (!ok)
            continue;
        uint32_t off = S->t[i].off, end = S->t[k - 1].off + S->t[k - 1].len;
        if (classify(x->text + off, end - off, false, p) && p->gp) {
            *a = i;
            *b = k;
            return true;
        }
    }
    return false;
}

/* place_at -- place_at0, with the city reading of an ambiguous name
 * when the context has asked for one (x->prefer_city: "I meant Utrecht,
 * not Rotterdam" corrects a city with a city). */
static bool place_at(xctx *x, sent *S, int i, int *a, int *b, place *p)
{
    if (!place_at0(x, S, i, a, b, p))
        return false;
    if (x->prefer_city && p->gp && p->gp->kind != GZ_CITY)
        for (int k = 0; k < p->n_cand && k < 8; k++)
            if (p->cand[k] && p->cand[k]->kind == GZ_CITY) {
                p->gp = p->cand[k];
                p->slot = "location.city";
                break;
            }
    return true;
}

/*
 * emit_place -- a place complement at i ("in Austin", "to Denver from
 * Austin", "Austin, Texas", "Dallas, not Austin", "not Austin, Dallas")
 * as a location or origin fact.  origin: the slot is "origin" whatever the
 * place's kind.  Returns the index after what was read, or i when nothing.
 */
static int emit_place(xctx *x, sent *S, const subj *sj, int i, bool origin,
                      ex_polarity pol, float base, char *prev)
{
    /* "rural Vermont", "upstate New York": a lowercase word that says
     * which part is no part of the name. */
    if (S_is(S, i, "rural") || S_is(S, i, "suburban") || S_is(S, i, "downtown") ||
        S_is(S, i, "upstate") || S_is(S, i, "coastal") || S_is(S, i, "central") ||
        S_is(S, i, "northern") || S_is(S, i, "southern") || S_is(S, i, "eastern") ||
        S_is(S, i, "western")) {
        if (!(S->t[i].flags & TF_CAP) && S_cap(S, i + 1))
            i++;
    }
    int a, b;
    place p;
    bool negfirst = false;
    int a0 = 0, b0 = 0;
    if (S_is(S, i, "not") && place_at(x, S, i + 1, &a0, &b0, &p)) {
        /* "not Austin, Dallas" */
        int j = b0;
        if (S_punct(S, j, ','))
            j++;
        if (S_is(S, j, "but"))
            j++;
        if (place_at(x, S, j, &a, &b, &p)) {
            negfirst = true;
        } else {
            dm_free(prev);
            return i;
        }
    } else if (!place_at(x, S, i, &a, &b, &p)) {
        dm_free(prev);
        return i;
    }
    char *val = toks_str(x, S, a, b);
    int end = b;
    if (negfirst) {
        dm_free(prev);
        prev = toks_str(x, S, a0, b0);
        if (pol == EX_ASSERTED)
            pol = EX_CORRECTION;
    } else if (S_punct(S, b, ',') && S_is(S, b + 1, "not")) {
        /* "Dallas, not Austin" */
        int c, d;
        place q;
        if (place_at(x, S, b + 2, &c, &d, &q)) {
            dm_free(prev);
            prev = toks_str(x, S, c, d);
            if (pol == EX_ASSERTED)
                pol = EX_CORRECTION;
            end = d;
        }
    }
    /* A second place after a comma: wider ("Austin, Texas", "Portland,
     * Maine": the Portland in Maine) or narrower ("New Zealand,
     * Wellington", "Kenya, in Mombasa").  The most specific one is where
     * the person lives; the other is only where that place is. */
    int c = 0, d = 0;
    place q;
    const gz_place *pi = NULL, *qi = NULL;
    int wide = 0; /* 1: q is wider, -1: q is narrower */
    if (!negfirst && end == b && p.gp) {
        int j = S_punct(S, b, ',') ? b + 1 : b;
        if (j > b && S_is(S, j, "in"))
            j++;
        if (place_at(x, S, j, &c, &d, &q) && q.gp) {
            if (within_pair(&p, &q, false, &pi, &qi))
                wide = 1;
            else if (j > b && within_pair(&q, &p, true, &qi, &pi))
                wide = -1;
        }
    }
    const char *pslot = pi ? slot_of(pi) : p.slot;
    float conf = base < p.conf ? base : p.conf;
    if (!p.gp && base >= 0.9f)
        conf = 0.6f;
    if (wide)
        conf = base;
    x->no_lives_in = wide < 0;
    add_fact(x, S, sj, origin ? "origin" : pslot, val, prev, pol, conf, a, b,
             EX_ENT_PLACE);
    x->no_lives_in = false;
    if (wide) {
        char *pv = toks_str(x, S, a, b);
        char *qv = toks_str(x, S, c, d);
        if (pv && qv) {
            add_relation(x, wide > 0 ? pv : qv, "located_in", wide > 0 ? qv : pv,
                         0.9f, tspan(S, a, d));
            if (!origin || wide < 0) {
                x->no_lives_in = wide > 0;
                add_fact(x, S, sj, origin ? "origin" : slot_of(qi), xstrdup(x, qv),
                         NULL, pol, base, c, d, EX_ENT_PLACE);
                x->no_lives_in = false;
            } else {
                add_entity(x, qv, EX_ENT_PLACE, q.conf, tspan(S, c, d));
            }
        }
        dm_free(pv);
        dm_free(qv);
        end = d;
    }
    return end;
}

/* ---- verb groups -------------------------------------------------------- */

typedef struct vg {
    int main;  /* token of the main verb (for a copula: the form of "be") */
    int next;  /* first token after it: the complement */
    int verb;  /* LV_* */
    uint8_t form;
    bool neg, anymore, past, perfect, future, modal, can, used_to;
    bool progressive, copula, corr;
} vg;

/*
 * parse_vg -- the verb group starting at token i, after a subject:
 * adverbs, negation, auxiliaries and modals, then the main verb.  "be"
 * followed by anything but an -ing form is a copula whose complement
 * starts there ("I'm married", "I'm from Ohio", "I was born in Lagos").
 * Fails when no verb follows or the first verb is a bare participle.
 */
static bool parse_vg(const sent *S, int i, bool third, vg *v)
{
    memset(v, 0, sizeof *v);
    v->main = -1;
    bool be = false, be_past = false, aux = false;
    int last_be = -1, j = i;
    for (; j < S->n; j++) {
        const tok *t = &S->t[j];
        if (t->type != T_WORD)
            break;
        uint64_t c = tcls(t);
        int vb = tverb(t);
        if (tis(t, "not") || tis(t, "never")) {
            v->neg = true;
            continue;
        }
        if (tis(t, "no") && S_is(S, j + 1, "longer")) {
            v->neg = v->anymore = true;
            j++;
            continue;
        }
        if ((tis(t, "kind") || tis(t, "sort")) && S_is(S, j + 1, "of")) {
            j++;
            continue;
        }
        if (tis(t, "used") && S_is(S, j + 1, "to")) {
            v->used_to = true;
            j++;
            continue;
        }
        /* "..., but I actually live in X" contrasts, it corrects nothing */
        if (tis(t, "actually") && !S_is(S, i - 2, "but"))
            v->corr = true;
        if ((c & LX_ADV) && !vb)
            continue;
        if (tis(t, "'d")) {
            int k = skip_adv(S, j + 1);
            while (S_is(S, k, "not") || S_is(S, k, "never"))
                k = skip_adv(S, k + 1);
            if (k < S->n && tverb(&S->t[k]) && (tform(&S->t[k]) & LXF_PP) &&
                !(tform(&S->t[k]) & LXF_BASE)) {
                v->past = v->perfect = aux = true; /* "I'd moved": had */
                continue;
            }
            v->modal = true;
            continue;
        }
        if (tis(t, "'s")) {
            be = true;
            last_be = j;
            continue;
        }
        if (c & LX_WILL) {
            v->future = aux = true;
            continue;
        }
        if (c & LX_MODAL) {
            v->modal = aux = true;
            continue;
        }
        if (c & LX_CAN) {
            v->can = aux = true;
            continue;
        }
        if (vb == LV_BE) {
            be = true;
            last_be = j;
            if (tform(t) & LXF_PAST)
                be_past = true;
            continue;
        }
        if (vb == LV_HAVE && !be) {
            int k = skip_adv(S, j + 1);
            while (S_is(S, k, "not") || S_is(S, k, "never"))
                k = skip_adv(S, k + 1);
            if (k < S->n && tverb(&S->t[k]) && (tform(&S->t[k]) & LXF_PP)) {
                v->perfect = aux = true;
                if (tis(t, "had"))
                    v->past = true;
                continue;
            }
        }
        if (vb == LV_DO && !be && !aux) {
            int k = skip_adv(S, j + 1);
            if (k < S->n &&
                (tis(&S->t[k], "not") || tis(&S->t[k], "never") ||
                 (tverb(&S->t[k]) && (tform(&S->t[k]) & LXF_BASE)))) {
                if (tis(t, "did"))
                    v->past = true;
                aux = true;
                continue;
            }
        }
        if (be && tis(t, "going") && S_is(S, j + 1, "to")) {
            int k = skip_adv(S, j + 2);
            if (k < S->n && tverb(&S->t[k]) && (tform(&S->t[k]) & LXF_BASE) &&
                !(S->t[k].flags & TF_CAP)) {
                v->future = aux = true;
                be = false;
                j = k - 1;
                continue;
            }
            /* "going to show": a verb the lexicon does not know. */
            if (k < S->n && S->t[k].type == T_WORD && !S->t[k].lx &&
                !(S->t[k].flags & (TF_CAP | TF_UPPER))) {
                v->future = true;
                v->main = k;
                v->verb = LV_NONE;
                v->form = LXF_BASE;
                v->next = k + 1;
                goto tense;
            }
        }
        if (be && tis(t, "about") && S_is(S, j + 1, "to")) {
            v->future = aux = true;
            be = false;
            j++;
            continue;
        }
        /* "I can code", "I code in Go": a skill word the lexicon keeps as
         * a noun is the verb here; the frame reads it as an ability. */
        if (vb == LV_NONE && (c & LX_SKILLV) && !(t->flags & (TF_CAP | TF_UPPER)) &&
            !be && (v->can || (!aux && S_is(S, j + 1, "in") && S_cap(S, j + 2)))) {
            v->can = true;
            v->main = j;
            v->verb = LV_NONE;
            v->form = LXF_BASE;
            v->next = j + 1;
            goto tense;
        }
        if (vb != LV_NONE) {
            uint8_t fm = tform(t);
            if (be) {
                if (!(fm & LXF_ING)) {
                    v->main = last_be;
                    v->verb = LV_BE;
                    v->copula = true;
                    v->next = j;
                    goto tense;
                }
                v->progressive = true;
            } else {
                /* A bare -ing or participle is no finite verb ("I, having
                 * ..."); an -s form needs a third-person subject. */
                if (!(fm & (LXF_BASE | LXF_S3 | LXF_PAST)) && !aux)
                    return false;
                if ((fm & LXF_S3) && !(fm & (LXF_BASE | LXF_PAST)) && !third &&
                    !aux)
                    return false;
                if ((fm & LXF_ING) && !(fm & (LXF_BASE | LXF_PAST)))
                    return false;
            }
            v->main = j;
            v->verb = vb;
            v->form = fm;
            v->next = j + 1;
            goto tense;
        }
        break;
    }
    if (!be)
        return false;
    v->main = last_be;
    v->verb = LV_BE;
    v->copula = true;
    v->next = j;
tense:
    if (be_past)
        v->past = true;
    if (!aux && !be && !v->copula && (v->form & LXF_PAST) &&
        !(v->form & (LXF_BASE | LXF_S3)))
        v->past = true;
    for (int k = v->next; k < S->n && k < v->next + 12; k++)
        if (S_is(S, k, "anymore") ||
            (S_is(S, k, "any") && S_is(S, k + 1, "more")))
            v->anymore = true;
    return true;
}

/* ---- sentence marks ----------------------------------------------------- */

/* first_content -- the first token of S that is not an interjection,
 * a discourse word or punctuation ("Oh, and by the way, ..."). */
static int first_content(const sent *S)
{
    int i = 0;
    while (i < S->n) {
        const tok *t = &S->t[i];
        if (t->type == T_PUNCT || tis(t, "and") || tis(t, "but") ||
            tis(t, "also") || tis(t, "btw") || tis(t, "anyway") ||
            tis(t, "well") || tis(t, "oh") || tis(t, "hey") || tis(t, "so") ||
            tis(t, "ok") || tis(t, "okay") || tis(t, "yeah") || tis(t, "hi")) {
            i++;
            continue;
        }
        break;
    }
    return i;
}

static void mark_from(sent *S, int k, uint8_t m)
{
    for (int i = k; i < S->n; i++)
        S->t[i].mark |= m;
}

static void sentence_marks(xctx *x, sent *S)
{
    /* A question: '?' at the end, or an inverted auxiliary / question word
     * at the start ("where do you work", "do you live in Austin"). */
    for (int i = S->n - 1; i >= 0 && S->t[i].type == T_PUNCT; i--)
        if (S->t[i].p == '?')
            S->question = true;
    int f = first_content(S);
    if (f < S->n && !S->question) {
        uint64_t c0 = tcls(&S->t[f]);
        uint64_t c1 = f + 1 < S->n ? tcls(&S->t[f + 1]) : 0;
        uint64_t auxes = LX_BE | LX_DO | LX_HAVE | LX_MODAL | LX_WILL | LX_CAN;
        if ((c0 & LX_QWORD) && (c1 & auxes) && !tis(&S->t[f], "when"))
            S->question = true;
        if ((c0 & auxes) && (c1 & (LX_SUBJ | LX_POSS)) &&
            !(S->t[f + 1].flags & TF_SYN)) {
            /* "Did my sister call?" asks; "Did my last 20-miler on
             * Saturday" tells: after "did" + a possessive, a question has
             * its verb before the clause ends. */
            bool q = true;
            if ((c0 & LX_DO) && !(c1 & LX_SUBJ) && (c1 & LX_POSS)) {
                q = false;
                for (int k = f + 2; k < S->n && k < f + 8 && S_word(S, k) && !q; k++)
                    q = tverb(&S->t[k]) && (tform(&S->t[k]) & LXF_BASE);
            }
            S->question = q;
        }
    }
    /* A correction: "Actually, ...", "Sorry, ...", "I mean ...". */
    if (f < S->n) {
        const tok *t = &S->t[f];
        /* An apology corrects only when a correction follows ("Sorry, I
         * meant Leeds", "sorry, not Leeds"); "Sorry, I should have said
         * hello" corrects nothing. */
        bool apology_corrects = !tis(t, "sorry");
        for (int q = f + 2; q < S->n && q < f + 10 && !apology_corrects; q++)
            apology_corrects = S_is(S, q, "meant") || S_is(S, q, "mean") ||
                               S_is(S, q, "actually") || S_is(S, q, "not") ||
                               S_is(S, q, "typo");
        if (tis(t, "actually") || tis(t, "correction") ||
            ((tcls(t) & LX_CORR) && S_punct(S, f + 1, ',') && apology_corrects) ||
            (tis(t, "i") && (S_is(S, f + 1, "mean") || S_is(S, f + 1, "meant"))))
            S->correction = true;
    }
    const char *me = x->assistant ? "you" : "i";
    for (int k = 0; k < S->n; k++) {
        const tok *t = &S->t[k];
        if (t->type != T_WORD)
            continue;
        if (tis(t, "if") || tis(t, "unless") || tis(t, "whether") ||
            tis(t, "supposing") || tis(t, "assuming") ||
            ((tis(t, "suppose") || tis(t, "imagine") || tis(t, "pretend")) &&
             k == f)) {
            mark_from(S, k == f ? 0 : k, TM_HYPO);
            continue;
        }
        if (tis(t, "when") || tis(t, "whenever") || tis(t, "while") ||
            tis(t, "before") || tis(t, "after") || tis(t, "until") ||
            tis(t, "till") || tis(t, "once") ||
            (tis(t, "so") && (S_is(S, k + 1, "i") || S_is(S, k + 1, "that")))) {
            if (tis(t, "so") && !S_is(S, k + 1, "that")) {
                /* "so I can write": purpose, only with a modal */
                int q = k + 2;
                if (!(S_cls(S, q, LX_CAN | LX_MODAL | LX_WILL) || S_is(S, q, "'d")))
                    continue;
            }
            /* "After years of classes I'm fluent": with no subject of its
             * own the clause is a prepositional phrase, over at the next
             * subject pronoun. */
            bool pp = (tis(t, "after") || tis(t, "before") || tis(t, "until") ||
                       tis(t, "till")) &&
                      !S_cls(S, k + 1, LX_SUBJ) && !S_cap(S, k + 1) &&
                      !(tverb(&S->t[k + 1 < S->n ? k + 1 : k]) && k + 1 < S->n);
            for (int q = k; q < S->n && !S_punct(S, q, ','); q++) {
                if (pp && q > k + 1 &&
                    (S_is(S, q, "i") || S_is(S, q, "we") || S_is(S, q, "he") ||
                     S_is(S, q, "she")))
                    break;
                S->t[q].mark |= TM_SUBCL;
            }
            continue;
        }
        if (tis(t, "according") && S_is(S, k + 1, "to")) {
            mark_from(S, 0, TM_REPORTED);
            continue;
        }
        if (!(tcls(t) & LX_SPEECH) || S_cls(S, k - 1, LX_ART | LX_POSS))
            continue;
        /* Who thinks or says it? */
        int j = k - 1;
        bool neg = false;
        while (j >= 0 && j > k - 6 && S->t[j].type == T_WORD &&
               ((tcls(&S->t[j]) & (LX_ADV | LX_NEG | LX_DO | LX_MODAL |
                                   LX_WILL | LX_CAN | LX_BE | LX_HAVE)) ||
                tis(&S->t[j], "'d"))) {
            neg |= tis(&S->t[j], "not") || tis(&S->t[j], "never");
            j--;
        }
        if (j < 0 || S->t[j].type != T_WORD)
            continue;
        int vb = tverb(t);
        if (tis(&S->t[j], me)) {
            if (vb == LV_WISH || vb == LV_HOPE)
                mark_from(S, k + 1, TM_WISH);
            else if (vb == LV_THINK || vb == LV_GUESS || vb == LV_FEEL ||
                     vb == LV_BELIEVE || vb == LV_RECKON || vb == LV_ASSUME ||
                     vb == LV_EXPECT)
                mark_from(S, k + 1, neg ? TM_WISH : TM_HEDGE);
            else if (vb == LV_WONDER || vb == LV_ASK)
                mark_from(S, k + 1, TM_HYPO);
            /* "I never said I was moving": words denied are no statement */
            else if (neg && (vb == LV_SAY || vb == LV_TELL))
                mark_from(S, k + 1, TM_HYPO);
        } else if (!tis(&S->t[j], "we")) {
            /* "my mom thinks I ...", "she said ...", "people say ..." */
            if (vb != LV_WANT && vb != LV_FEEL)
                mark_from(S, k + 1, TM_REPORTED);
            else if (vb == LV_WANT && (S_is(S, k + 1, "me") || S_is(S, k + 1, "us")))
                mark_from(S, k + 1, TM_REPORTED);
        }
    }
}

/* ---- frames ------------------------------------------------------------- */

typedef struct fr {
    xctx *x;
    sent *S;
    const subj *sj;
    const vg *v;
    int k;           /* complement start, past adverbs */
    bool event_done; /* a matcher emitted this frame's event */
} fr;

static int degree_at(fr *f, int k, ex_polarity pol, float base);
static bool habitual(const fr *f);
static bool class_hobby(fr *f, int i);

static float fbase(const fr *f, float c)
{
    return f->sj->kind == SJ_OTHER && c > 0.8f ? 0.8f : c;
}

/* state -- may the frame state a value that holds now?  "I live", "I've
 * lived", "I'm living" yes; "I lived", "I will live" no; "I used to live"
 * as a negation at 0.7.  *base comes in as the explicit confidence. */
static bool state(const fr *f, ex_polarity *pol, float *base)
{
    const vg *v = f->v;
    if (v->future || v->modal)
        return false;
    if (v->used_to) {
        if (v->neg)
            return false;
        *pol = EX_NEGATED;
        *base = fbase(f, 0.7f);
        return true;
    }
    if (v->past)
        return false;
    *pol = v->neg ? EX_NEGATED : v->corr ? EX_CORRECTION : EX_ASSERTED;
    *base = fbase(f, *base);
    return true;
}

/* change -- a completed change ("I moved", "I've joined", "I just got"):
 * it makes the new value current. */
static bool change(const fr *f, ex_polarity *pol, float *base)
{
    const vg *v = f->v;
    if (v->future || v->modal || v->neg || v->used_to || v->progressive)
        return false;
    *pol = v->corr ? EX_CORRECTION : EX_ASSERTED;
    *base = fbase(f, *base);
    return true;
}

static bool is_future(fr *f)
{
    if (f->v->neg || f->v->modal)
        return false;
    if (f->v->future)
        return true;
    if (f->v->progressive && !f->v->past) {
        /* "Tomorrow I'm running a half marathon", "I'm babysitting
         * tonight": a day read here that lies ahead. */
        int64_t a, b;
        if (own_window(f->x, f->S, true, &a, &b)) {
            if (a > f->x->day_from)
                return true;
            for (int q = 0; q < f->S->n; q++)
                if (S_is(f->S, q, "tonight"))
                    return a == f->x->day_from;
            return false;
        }
        const timex *tx = sent_time(f->x, f->S);
        if (tx->kind != TIMEX_WINDOW)
            return false;
        /* "We're going to Hawaii in July" (said in May): the coming July. */
        int64_t from = tx->from_us, to = tx->to_us;
        plan_window(f->x, f->S, &from, &to);
        return from > f->x->in->time_us;
    }
    return false;
}

/* org_at -- an organisation name at i: a capitalised run with "&", "of",
 * "and" between capitals ("Procter & Gamble", "Bank of America"), or a
 * known name in any case ("google").  Sets [*a, *b). */
static bool org_at(const sent *S, int i, int *a, int *b)
{
    if (S_is(S, i, "the") && S_cap(S, i + 1))
        i++;
    if (i >= S->n || S->t[i].type != T_WORD)
        return false;
    if (!S_cap(S, i) && !(tcls(&S->t[i]) & LX_ORGNAME))
        return false;
    uint64_t bad = LX_FAMILY | LX_DAY | LX_SUBJ | LX_PRONOBJ | LX_DEMONYM |
                   LX_LANG | LX_TIME | LX_INTERJ | LX_POSS | LX_ART;
    if ((tcls(&S->t[i]) & bad) && !(tcls(&S->t[i]) & LX_ORGNAME)) {
        /* "Swedish Medical Center", "English National Opera": a
         * nationality that opens a name ending in an organisation word. */
        bool named = false;
        if ((tcls(&S->t[i]) & (LX_DEMONYM | LX_LANG)) && !(tcls(&S->t[i]) & (bad & ~(LX_DEMONYM | LX_LANG))))
            for (int q = i + 1; q < S->n && q < i + 5 && S_cap(S, q) && !named; q++)
                named = S_cls(S, q, LX_ORGSUF | LX_SCHOOL);
        if (!named)
            return false;
    }
    if (!S_cap(S, i)) {
        *a = i;
        *b = i + 1;
        return true;
    }
    int e = i + 1;
    while (e < S->n && e - i < 6) {
        if (S_cap(S, e) || (S->t[e].type == T_NUM && S->t[e].flags & TF_CAP)) {
            e++;
            continue;
        }
        if ((S_punct(S, e, '&') || S_is(S, e, "of") || S_is(S, e, "and")) &&
            S_cap(S, e + 1) && !(tcls(&S->t[e + 1]) & LX_SUBJ)) {
            e += 2;
            continue;
        }
        /* "St. Mary's Hospital", "Guy's Hospital" */
        if (S_punct(S, e, '.') && e == i + 1 && S_cap(S, e + 1) &&
            (tis(&S->t[i], "st") || tis(&S->t[i], "mt") || tis(&S->t[i], "ft"))) {
            e++;
            continue;
        }
        if (S_is(S, e, "'s") && S_cap(S, e + 1) &&
            (S_cls(S, e + 1, LX_ORGSUF | LX_SCHOOL) || S_cap(S, e + 2))) {
            e++;
            continue;
        }
        if (S_is(S, e, "'s") && (e + 1 >= S->n || S->t[e + 1].type == T_PUNCT ||
                                 (tcls(&S->t[e + 1]) & (LX_PREP | LX_CONJ |
                                                        LX_SUB)))) {
            e++;
            continue;
        }
        break;
    }
    *a = i;
    *b = e;
    return true;
}

/* emit_org -- an employer (or school) at i; returns the end or i. */
static int emit_org(fr *f, int i, const char *slot, ex_polarity pol, float base)
{
    int a, b;
    if (!org_at(f->S, i, &a, &b))
        return i;
    xctx *x = f->x;
    char *v = toks_str(x, f->S, a, b);
    if (!v)
        return i;
    /* A place is not an employer ("I work for Boston" is rare). */
    place p;
    const gz_place *g[1];
    if (b - a == 1 && gz_lookup(v, strlen(v), g, 1) > 0 &&
        !(tcls(&f->S->t[a]) & (LX_ORGNAME)) && strcmp(slot, "education.school") &&
        !S_is(f->S, i - 1, "for")) {
        dm_free(v);
        return i;
    }
    const char *full = org_name(x, v);
    if (full != v) {
        char *c = xstrdup(x, full);
        dm_free(v);
        v = c;
    }
    add_fact(x, f->S, f->sj, slot, v, NULL, pol, base, a, b, EX_ENT_ORG);
    /* "at Acme in Boston": where the organisation is. */
    int c, d;
    if (S_is(f->S, b, "in") && place_at(x, f->S, b + 1, &c, &d, &p) && p.gp) {
        char *o = toks_str(x, f->S, a, b), *pl = toks_str(x, f->S, c, d);
        if (o && pl) {
            add_relation(x, org_name(x, o), "located_in", pl, 0.7f,
                         tspan(f->S, a, d));
            add_entity(x, pl, EX_ENT_PLACE, p.conf, tspan(f->S, c, d));
        }
        dm_free(o);
        dm_free(pl);
        return d;
    }
    return b;
}

/* title_at -- a job title at i ("a senior software engineer", "an RN",
 * "the CEO").  free_ok: any noun phrase will do ("I work as a X"); else
 * its last word must be an occupation.  Sets [*a, *b) and *conf. */
static bool title_at(const sent *S, int i, bool free_ok, int *a, int *b,
                     float *conf)
{
    if (S_cls(S, i, LX_ART))
        i++;
    /* "an avid photographer", "a decent cook": a pastime or a knack
     * (agent_hobby), not a job. */
    if (S_is(S, i, "avid") || S_is(S, i, "keen") || S_is(S, i, "amateur") ||
        S_is(S, i, "huge") || S_is(S, i, "passionate") || S_is(S, i, "hobby") ||
        S_is(S, i, "enthusiastic") || S_is(S, i, "die-hard") || S_is(S, i, "weekend") ||
        S_is(S, i, "decent") || S_is(S, i, "terrible") || S_is(S, i, "lousy") ||
        S_is(S, i, "mediocre") || S_is(S, i, "competent") || S_is(S, i, "casual"))
        return false;
    /* "a London-based designer": where the job is done is no part of its
     * name (hired_by / based_title read the place). */
    if (i < S->n && S_word(S, i) && (S->t[i].flags & TF_CAP) && strlen(S->t[i].w) > 6 &&
        !strcmp(S->t[i].w + strlen(S->t[i].w) - 6, "-based"))
        i++;
    int s = i, e = i, head = -1;
    while (e < S->n && e - s < 6) {
        const tok *t = &S->t[e];
        if (t->type != T_WORD) {
            if (tpunct(t, '-') && e > s && S_word(S, e + 1)) {
                e++;
                continue;
            }
            break;
        }
        uint64_t c = tcls(t);
        if (c & (LX_PREP | LX_CONJ | LX_SUB | LX_BE | LX_HAVE | LX_WILL |
                 LX_MODAL | LX_NPSTOP | LX_POSS | LX_ART | LX_SUBJ | LX_TIME))
            break;
        if (tis(t, "'s") || tis(t, "that"))
            break;
        if (c & LX_OCC)
            head = e;
        e++;
    }
    if (head < 0 && !free_ok)
        return false;
    if (head >= 0)
        e = head + 1;
    /* Drop opinion adjectives; refuse a title that is not held now. */
    while (s < e && (tcls(&S->t[s]) & LX_MODADJ)) {
        const tok *t = &S->t[s];
        if (tis(t, "former") || tis(t, "aspiring") ||
            tis(t, "future") || tis(t, "wannabe") || tis(t, "budding"))
            return false;
        /* "a good cook", "a terrible driver": a judgement, not a job */
        if (tis(t, "good") || tis(t, "great") || tis(t, "bad") ||
            tis(t, "terrible") || tis(t, "amazing") || tis(t, "awesome"))
            return false;
        if (tis(t, "freelance") || tis(t, "self-taught") || tis(t, "retired") ||
            tis(t, "professional") || tis(t, "licensed") ||
            tis(t, "certified") || tis(t, "full-time") || tis(t, "part-time"))
            break;
        s++;
    }
    if (s >= e || e - s > 5)
        return false;
    *a = s;
    *b = e;
    *conf = head >= 0 ? ((tcls(&S->t[head]) & LX_CREATIVE) ? 0.7f : 0.9f)
                      : 0.75f;
    return true;
}

static int industry_at(xctx *x, sent *S, int i, int *a, int *b, float *conf);

static void emit_title(fr *f, int a, int b, ex_polarity pol, float base)
{
    add_fact(f->x, f->S, f->sj, "work.title", toks_str(f->x, f->S, a, b), NULL,
             pol, base, a, b, (ex_entity_type)-1);
    /* "a dentist in Tulsa", "teaches piano in Tulsa": a job said with a
     * place is done where the person lives (the labelled set's reading);
     * only a place the gazetteer knows, so "a nurse in the ICU" gives
     * nothing. */
    int c, d;
    place p;
    if (pol != EX_NEGATED && S_is(f->S, b, "in") && S_cap(f->S, b + 1) &&
        place_at(f->x, f->S, b + 1, &c, &d, &p) && p.gp && !f->v->past && !f->v->used_to)
        emit_place(f->x, f->S, f->sj, b + 1, false, pol, fbase(f, 0.75f), NULL);
    /* "a lawyer in the entertainment industry", "an engineer in fintech":
     * the industry the job is in. */
    else if (pol != EX_NEGATED && S_is(f->S, b, "in") && !S_cap(f->S, b + 1) &&
             !f->v->past && !f->v->used_to) {
        float ic;
        int e = industry_at(f->x, f->S, b + 1, &c, &d, &ic);
        /* "in the energy division" is a part of a company, not a sector */
        if (e > b + 1 && (e > d || S_cls(f->S, d - 1, LX_INDUSTRY)))
            add_fact(f->x, f->S, f->sj, "work.industry", toks_str(f->x, f->S, c, d), NULL,
                     pol, fbase(f, ic < 0.85f ? ic : 0.85f), c, d, EX_ENT_CONCEPT);
    }
}

/* industry_at -- an industry at i ("healthcare", "the tech industry",
 * "the healthcare space", "real estate"); sets [*a, *b) to the industry
 * words and returns the end of what was read, or i. */
static int industry_at(xctx *x, sent *S, int i, int *a, int *b, float *conf)
{
    int s = i;
    if (S_is(S, s, "the"))
        s++;
    int e = np_end(x, S, s, 4, 0);
    if (e <= s)
        return i;
    /* "the oil and gas industry", "food and beverage": two sectors named
     * as one, with the sector word after them or both known. */
    if (S_is(S, e, "and") && e - s == 1) {
        int e2 = np_end(x, S, e + 1, 2, 0);
        if (e2 == e + 2 || e2 == e + 3) {
            const tok *l2 = &S->t[e2 - 1];
            bool tail2 = tis(l2, "industry") || tis(l2, "sector") || tis(l2, "business");
            if ((tail2 && e2 == e + 3) ||
                (e2 == e + 2 && (tcls(&S->t[s]) & LX_INDUSTRY) &&
                 (tcls(&S->t[e + 1]) & LX_INDUSTRY)))
                e = e2;
        }
    }
    int end = e;
    const tok *last = &S->t[e - 1];
    bool tail = tis(last, "industry") || tis(last, "field") ||
                tis(last, "sector") || tis(last, "space") ||
                tis(last, "business") || tis(last, "world") ||
                tis(last, "market");
    if (tail)
        e--;
    if (e <= s)
        return i;
    bool known = false;
    for (int q = s; q < e; q++)
        if (tcls(&S->t[q]) & LX_INDUSTRY)
            known = true;
    if (e - s == 2) {
        char two[48];
        snprintf(two, sizeof two, "%s %s", S->t[s].w, S->t[s + 1].w);
        const lx_entry *le = lx_find(two, strlen(two));
        if (le && (le->cls & LX_INDUSTRY))
            known = true;
    }
    if (tis(&S->t[s], "it") && (S->t[s].flags & TF_UPPER))
        known = true; /* "IT" */
    if (!known && !tail)
        return i;
    if (e - s > 3)
        return i;
    *a = s;
    *b = e;
    *conf = known ? 0.9f : 0.75f;
    return end;
}

/* age_at -- an age at i ("34", "thirty-four", "34 years old") that ends
 * the clause; returns the value or 0, and the end in *b. */
static int age_at(const sent *S, int i, int *b)
{
    int v = 0, e = i + 1;
    if (i >= S->n)
        return 0;
    const tok *t = &S->t[i];
    if (t->type == T_NUM && !(t->flags & TF_ORD))
        v = t->num;
    else if (tcls(t) & LX_NUM) {
        v = t->lx->data;
        if (v >= 20 && S_cls(S, e, LX_NUM) && S->t[e].lx->data < 10) {
            v += S->t[e].lx->data;
            e++;
        }
    } else if (t->type == T_WORD && t->w[0] >= '1' && t->w[0] <= '9' &&
               strstr(t->w, "-year-old")) {
        /* "28-year-old" */
        v = atoi(t->w);
        if (v < 1 || v > 120)
            return 0;
        *b = e;
        return v;
    } else if (t->type == T_WORD && strchr(t->w, '-')) {
        char w1[24];
        snprintf(w1, sizeof w1, "%s", t->w);
        char *h = strchr(w1, '-');
        *h = 0;
        const lx_entry *p = lx_find(w1, strlen(w1));
        const lx_entry *q = lx_find(h + 1, strlen(h + 1));
        if (p && q && (p->cls & LX_NUM) && (q->cls & LX_NUM) && p->data >= 20 &&
            q->data < 10)
            v = p->data + q->data;
    }
    if (v < 1 || v > 120)
        return 0;
    if (S_is(S, e, "years") || S_is(S, e, "yrs") || S_is(S, e, "year")) {
        if (S_is(S, e + 1, "old") || S_is(S, e + 1, "young")) {
            e += 2;
        } else if (!clause_end_tok(S, e + 1)) {
            return 0;
        } else {
            e++;
        }
    } else if (S_is(S, e, "yo")) {
        e++;
    }
    if (!(clause_end_tok(S, e) || S_cls(S, e, LX_CONJ) || S_is(S, e, "now") ||
          S_is(S, e, "last") || S_is(S, e, "on") || S_is(S, e, "in") ||
          S_is(S, e, "yesterday") ||
          S_is(S, e, "today") || S_is(S, e, "already") || S_is(S, e, "too") ||
          S_is(S, e, "this") || S_is(S, e, "next") || S_is(S, e, "btw") ||
          S_is(S, e, "lol") || S_is(S, e, "so")))
        return 0;
    *b = e;
    return v;
}

/* relday_word -- "today", "tomorrow" or "yesterday" at i. */
static bool relday_word(const sent *S, int i)
{
    return S_is(S, i, "today") || S_is(S, i, "tomorrow") || S_is(S, i, "yesterday");
}

/* holiday_date -- a holiday on a fixed day at i ("on Christmas Eve",
 * "Valentine's Day", "New Year's Day") as "December 24"; NULL when none.
 * Holidays that move with the calendar (Easter, Thanksgiving) give none:
 * they are no birthday. */
static char *holiday_date(xctx *x, const sent *S, int i, int *b)
{
    static const struct {
        const char *w1, *w2; /* w2 NULL: one word; "-" any or none */
        const char *date;
    } H[] = {{"christmas", "eve", "December 24"},    {"christmas", "-", "December 25"},
             {"xmas", "eve", "December 24"},         {"xmas", "-", "December 25"},
             {"halloween", "-", "October 31"},       {"valentine", "day", "February 14"},
             {"valentines", "day", "February 14"},   {"new", "year", "January 1"},
             {"independence", "day", "July 4"},      {"boxing", "day", "December 26"}};
    if (S_is(S, i, "on"))
        i++;
    if (S_is(S, i, "the"))
        i++;
    for (size_t k = 0; k < sizeof H / sizeof *H; k++) {
        if (!S_is(S, i, H[k].w1))
            continue;
        int e = i + 1;
        if (!strcmp(H[k].w2, "-")) {
            if (S_is(S, e, "day"))
                e++;
            if (S_is(S, e, "eve"))
                continue;
        } else {
            if (S_is(S, e, "'s"))
                e++;
            if (!S_is(S, e, H[k].w2))
                continue;
            e++;
            if (S_is(S, e, "'s")) /* "New Year's ..." */
                e++;
        }
        if (!strcmp(H[k].w1, "new")) {
            if (S_is(S, e, "eve")) {
                *b = e + 1;
                return xstrdup(x, "December 31");
            }
            if (S_is(S, e, "day"))
                e++;
        }
        *b = e;
        return xstrdup(x, H[k].date);
    }
    return NULL;
}

/* date_value -- a calendar date at i ("March 3rd", "the 3rd of March",
 * "March 3, 1990", "May") as "March 3" / "March 3, 1990" / "May". */
static char *date_value(xctx *x, const sent *S, int i, int *b)
{
    int mon = 0, day = 0, year = 0, e = i;
    if (S_is(S, e, "on") || S_is(S, e, "in"))
        e++;
    if (S_is(S, e, "the"))
        e++;
    if (S_cls(S, e, LX_MONTH)) {
        mon = S->t[e].lx->data;
        e++;
        if (S_punct(S, e, '.'))
            e++;
        if (e < S->n && S->t[e].type == T_NUM && S->t[e].num >= 1 &&
            S->t[e].num <= 31) {
            day = S->t[e].num;
            e++;
        }
    } else if (e < S->n && S->t[e].type == T_NUM && S->t[e].num >= 1 &&
               S->t[e].num <= 31) {
        day = S->t[e].num;
        e++;
        if (S_is(S, e, "of"))
            e++;
        if (!S_cls(S, e, LX_MONTH))
            return NULL;
        mon = S->t[e].lx->data;
        e++;
    } else {
        return NULL;
    }
    if (day > 0) {
        int c = e;
        if (S_punct(S, c, ','))
            c++;
        if (c < S->n && S->t[c].type == T_NUM && S->t[c].num >= 1900 &&
            S->t[c].num <= 2100 && S->t[c].len == 4) {
            year = S->t[c].num;
            e = c + 1;
        }
    }
    *b = e;
    char buf[40];
    if (day && year)
        snprintf(buf, sizeof buf, "%s %d, %d", MONTH_NAMES[mon - 1], day, year);
    else if (day)
        snprintf(buf, sizeof buf, "%s %d", MONTH_NAMES[mon - 1], day);
    else
        snprintf(buf, sizeof buf, "%s", MONTH_NAMES[mon - 1]);
    return xstrdup(x, buf);
}

/* activity_gerund -- tokens [a, b) are an activity named by its -ing
 * form ("hiking", "rock climbing", "playing the piano"). */
static bool activity_gerund(const sent *S, int a, int b)
{
    if (b - a < 1 || b - a > 2)
        return false;
    const tok *h = &S->t[b - 1];
    if (!(tform(h) & LXF_ING) || !(tcls(h) & (LX_ACTIVITY | LX_HOBBYV)))
        return false;
    return b - a == 1 || !S_cls(S, a, LX_ART | LX_POSS | LX_DET);
}

/* emit_list -- a list of noun phrases at i ("sushi, ramen and tacos") as
 * facts of slot; returns the end. */
static int emit_list(fr *f, int i, const char *slot, ex_polarity pol,
                     float base, ex_entity_type vt, uint64_t need)
{
    xctx *x = f->x;
    sent *S = f->S;
    int j = i, end = i;
    for (int guard = 0; guard < 6 && j < S->n; guard++) {
        int a = skip_det(S, j);
        /* "a lot of", "a little" */
        if (S_is(S, a, "lot") && S_is(S, a + 1, "of"))
            a = skip_det(S, a + 2);
        if (S_is(S, a, "little") && S_cls(S, a + 1, LX_LANG))
            a++;
        /* "a bit of Rust", "a little Go": the amount is no part of it */
        if ((S_is(S, a, "bit") && S_is(S, a + 1, "of")) ||
            (S_is(S, a, "little") && S_cap(S, a + 1)))
            a += S_is(S, a, "bit") ? 2 : 1;
        /* "the smell of durian", "the novels of Murakami", "a bowl of
         * pho": what is liked is the thing itself. */
        int a2 = a;
        bool stripped = false;
        while (S_word(S, a2) && !S_is(S, a2 + 1, "of") && a2 - a < 2 &&
               !(tcls(&S->t[a2]) & (LX_PREP | LX_CONJ | LX_SUB)))
            a2++;
        if (a2 > a && S_is(S, a2 + 1, "of") &&
            (S_is(S, a2, "bowl") || S_is(S, a2, "cup") || S_is(S, a2, "plate") ||
             S_is(S, a2, "slice") || S_is(S, a2, "glass")))
            a = a2;
        if (!strncmp(slot, "preference.", 11) && S_is(S, a + 1, "of") &&
            (S_is(S, a, "smell") || S_is(S, a, "taste") || S_is(S, a, "sound") ||
             S_is(S, a, "texture") || S_is(S, a, "novels") || S_is(S, a, "books") ||
             S_is(S, a, "music") || S_is(S, a, "films") || S_is(S, a, "movies") ||
             S_is(S, a, "songs") || S_is(S, a, "work") || S_is(S, a, "works") ||
             S_is(S, a, "bowl") || S_is(S, a, "cup") || S_is(S, a, "plate") ||
             S_is(S, a, "slice") || S_is(S, a, "glass") || S_is(S, a, "pint"))) {
            a = skip_det(S, a + 2);
            stripped = true;
        }
        int b = np_end(x, S, a, MAX_VALUE_TOKS + 1, NP_OF);
        /* "the hotter the better" is no item */
        if (b > a && S_cls(S, b - 1, LX_ART))
            break;
        /* "going on road trips", "hiking in the mountains": a gerund
         * takes its prepositional phrase along. */
        if (b > a && (tform(&S->t[a]) & LXF_ING) &&
            (b - a == 1 ||
             (b - a == 2 && ((tform(&S->t[a + 1]) & LXF_PP) ||
                             S_is(S, a + 1, "up") || S_is(S, a + 1, "out")))) &&
            S_cls(S, b, LX_PREP) && !S_is(S, b, "like") &&
            !strncmp(slot, "preference.", 11)) {
            int q = skip_det(S, b + 1);
            int e2 = np_end(x, S, q, 4, 0);
            if (e2 > q && e2 - a <= MAX_VALUE_TOKS && !vague_np(S, q, e2))
                b = e2;
        }
        if (b <= a || b - a > MAX_VALUE_TOKS || vague_np(S, a, b))
            break;
        /* "sushi and the weather is nice": a later item followed by a
         * verb is the subject of a new clause. */
        if (j > i && b < S->n &&
            ((tcls(&S->t[b]) & (LX_BE | LX_HAVE | LX_MODAL | LX_WILL)) ||
             tis(&S->t[b], "'s") ||
             (tverb(&S->t[b]) && (tform(&S->t[b]) & (LXF_S3 | LXF_PAST)))))
            break;
        if (need) {
            /* "French fluently": the value ends at the last needed word */
            int q = b;
            while (q > a && !(tcls(&S->t[q - 1]) & need))
                q--;
            if (q > a)
                b = q;
        }
        bool ok = true;
        float conf = base;
        /* "the yellow leaves": a particular thing more than a taste */
        if (!strncmp(slot, "preference.", 11) && !stripped &&
            (S_is(S, j, "the") || S_is(S, a - 1, "the")) && !S_cap(S, a))
            conf = base < 0.6f ? base : 0.6f;
        if (need) {
            ok = false;
            for (int q = a; q < b; q++)
                ok |= (tcls(&S->t[q]) & need) != 0;
        }
        /* "I love the thought Nate!": a vocative is no part of it. */
        if (b - a > 1 && S_cap(S, b - 1) && (tcls(&S->t[b - 1]) & LX_FIRSTNAME) &&
            !S_cap(S, b - 2))
            b--;
        /* A single known first name is a person, not a taste. */
        if (b - a == 1 && (tcls(&S->t[a]) & LX_FIRSTNAME) && S_cap(S, a))
            ok = false;
        /* "I love hiking": an activity loved as a habit is a hobby. */
        const char *islot = slot;
        if (!strcmp(slot, "preference.likes") && pol != EX_NEGATED &&
            activity_gerund(S, a, b))
            islot = "hobby";
        if (!ok && need && j > i)
            break; /* "Mandarin, conversational in Japanese": a new clause */
        if (ok)
            add_fact(x, S, f->sj, islot, toks_str(x, S, a, b), NULL, pol, conf,
                     a, b, vt);
        end = b;
        if (b > S->consumed)
            S->consumed = b;
        j = b;
        if (S_punct(S, j, ',') && (S_cls(S, j + 1, LX_CONJ) || S_word(S, j + 1)))
            j++;
        if (S_is(S, j, "and") || S_is(S, j, "or"))
            j++;
        else if (!strncmp(slot, "preference.", 11) &&
                 (S_is(S, j, "especially") || S_is(S, j, "particularly") ||
                  S_is(S, j, "mostly")))
            j++; /* "jazz, especially Coltrane" */
        else if (j == b)
            break;
        /* "and I ..." starts a clause, not a list item. */
        if (S_cls(S, j, LX_SUBJ) && !S_is(S, j, "it"))
            break;
    }
    return end;
}

/* vp_value -- the verb phrase at i as a goal or plan value, the main verb
 * in base form ("moving to Denver" -> "move to Denver").  Returns the value
 * (owned, NULL when there is none) and its end in *b. */
static char *vp_value(xctx *x, sent *S, int i, int *b)
{
    i = skip_adv(S, i);
    if (i >= S->n || S->t[i].type != T_WORD)
        return NULL;
    int e = vp_end(x, S, i, 10);
    if (e <= i)
        return NULL;
    *b = e;
    const tok *h = &S->t[i];
    if (tverb(h) && !(tform(h) & LXF_BASE)) {
        char *rest;
        if (e > i + 2 && (S->t[i + 1].flags & TF_SYN) && tis(&S->t[i + 1], "to")) {
            /* "gonna go" written fused: rebuild "to" */
            char *r2 = toks_str(x, S, i + 2, e);
            rest = NULL;
            if (r2) {
                size_t n2 = strlen(r2) + 4;
                rest = dm_malloc(n2);
                if (rest)
                    snprintf(rest, n2, "to %s", r2);
                else
                    x->err = DM_ENOMEM;
                dm_free(r2);
            }
        } else {
            rest = e > i + 1 ? toks_str(x, S, i + 1, e) : xstrdup(x, "");
        }
        if (!rest)
            return NULL;
        size_t n = strlen(lx_verb_name(tverb(h))) + strlen(rest) + 2;
        char *v = dm_malloc(n);
        if (!v) {
            x->err = DM_ENOMEM;
            dm_free(rest);
            return NULL;
        }
        snprintf(v, n, "%s%s%s", lx_verb_name(tverb(h)), rest[0] ? " " : "", rest);
        dm_free(rest);
        return v;
    }
    return toks_str(x, S, i, e);
}

static bool weak_verb(int vb)
{
    return vb == LV_BE || vb == LV_HAVE || vb == LV_DO || vb == LV_SAY ||
           vb == LV_TELL || vb == LV_THINK || vb == LV_KNOW || vb == LV_SEE ||
           vb == LV_TRY || vb == LV_NEED || vb == LV_HELP || vb == LV_ASK ||
           vb == LV_MEAN || vb == LV_GUESS || vb == LV_FEEL ||
           vb == LV_REMEMBER || vb == LV_BELIEVE || vb == LV_WANT ||
           vb == LV_USE || vb == LV_MAKE || vb == LV_GET || vb == LV_FIND ||
           vb == LV_WONDER || vb == LV_CALL || vb == LV_SEND;
}

/* emit_goal -- "to VP" at i as a goal (or plan). */
static void emit_goal(fr *f, int i, const char *slot, float base)
{
    sent *S = f->S;
    if (!S_is(S, i, "to"))
        return;
    int j = skip_adv(S, i + 1);
    /* A word the lexicon lacks right after "to" is a verb too ("want to
     * save for a house"), when it is no other form. */
    bool unknown = j < S->n && S_word(S, j) && !S->t[j].lx && !S_cap(S, j) &&
                   !ly_adverb(&S->t[j]) && S->t[j].len > 2;
    if (unknown) {
        size_t wl = strlen(S->t[j].w);
        unknown = strcmp(S->t[j].w + wl - 3, "ing") && strcmp(S->t[j].w + wl - 2, "ed");
    }
    if (j >= S->n || (!unknown && (!tverb(&S->t[j]) || !(tform(&S->t[j]) & LXF_BASE))))
        return;
    int vb = tverb(&S->t[j]);
    if (vb == LV_SAY || vb == LV_TELL || vb == LV_THINK || vb == LV_KNOW ||
        vb == LV_SEE || vb == LV_ASK || vb == LV_HELP || vb == LV_MEAN)
        return;
    int b;
    char *v = vp_value(f->x, S, j, &b);
    if (!v)
        return;
    if (b - j < 2 && vb != LV_RETIRE && vb != LV_GRADUATE && vb != LV_SWIM &&
        vb != LV_MEDITATE) {
        dm_free(v);
        return;
    }
    add_fact(f->x, S, f->sj, slot, v, NULL, EX_ASSERTED, fbase(f, base), j, b,
             (ex_entity_type)-1);
    if (!strcmp(slot, "plan")) {
        char *w = vp_value(f->x, S, j, &b);
        add_event(f->x, S, EX_EV_PLAN, w, 0.7f, j, b, f->sj);
        f->event_done = true;
    }
}

/* frame_event -- the frame's event: the words from token s (the main verb
 * by default) to e (the end of the verb phrase by default). */
/* A thing whose getting is a life change, not an outing ("got my
 * license", "got the keys"). */
static bool milestone_thing(const tok *t)
{
    static const char *const W[] = {"license", "licence", "keys", "diploma", "degree",
                                    "citizenship", "visa", "tattoo", "tattoos",
                                    "permit", "passport", "certification", "offer",
                                    "promotion", "raise", "scholarship", "internship",
                                    "twins", "triplets", "mortgage", "green card"};
    for (size_t k = 0; k < sizeof W / sizeof *W; k++)
        if (tis(t, W[k]))
            return true;
    return false;
}

/* student_year -- a year in school at i ("sophomore", "second-year"). */
static bool student_year(const sent *S, int i)
{
    static const char *const W[] = {"freshman", "sophomore", "first-year", "second-year",
                                    "third-year", "fourth-year", "final-year", "1st-year",
                                    "2nd-year", "3rd-year"};
    for (size_t k = 0; k < sizeof W / sizeof *W; k++)
        if (S_is(S, i, W[k]))
            return true;
    return false;
}

/* ing_form -- an -ing form, also of a verb the lexicon does not know
 * ("journaling"). */
static bool ing_form(const sent *S, int i)
{
    if (!S_word(S, i))
        return false;
    const tok *t = &S->t[i];
    if (tverb(t) && (tform(t) & LXF_ING))
        return true;
    size_t n = strlen(t->w);
    return (!t->lx || (tcls(t) & LX_ACTIVITY)) && n > 5 && !strcmp(t->w + n - 3, "ing");
}

/* event_type_of -- the type of an event whose verb is at s, refined by
 * the particle or object that changes what the verb means: "passed away"
 * and "broke up" are life changes, "found out" is learning something new
 * about oneself, "started running" and "gave up coffee" are changes of
 * habit, "visited the Louvre" (a place, not a person) is an outing, "got
 * my license" / "got my first tattoo" a life change. */
static ex_event_type event_type_of(const fr *f, ex_event_type type, int s)
{
    const sent *S = f->S;
    int vb = tverb(&S->t[s]);
    if (type == EX_EV_PLAN)
        return type;
    if ((vb == LV_PASS && (S_is(S, s + 1, "away") || clause_end_tok(S, s + 1) ||
                           S_cls(S, s + 1, LX_TIME) || S_is(S, s + 1, "last") ||
                           S_is(S, s + 1, "on") || S_is(S, s + 1, "in"))) ||
        (vb == LV_BREAK && S_is(S, s + 1, "up")) || (vb == LV_FIND && S_is(S, s + 1, "out")))
        return EX_EV_MILESTONE;
    if ((vb == LV_START || vb == LV_BEGIN) && ing_form(S, s + 1))
        return EX_EV_PREFERENCE;
    if ((vb == LV_START || vb == LV_BEGIN) && S_cls(S, s + 1, LX_ART) &&
        S_is(S, s + 2, "new") && (S_is(S, s + 3, "diet") || S_is(S, s + 3, "routine") ||
                                  S_is(S, s + 3, "habit")))
        return EX_EV_PREFERENCE;
    if (vb == LV_GIVE && S_is(S, s + 1, "up"))
        return EX_EV_PREFERENCE;
    /* "signed a lease", "signed the papers": a commitment made;
     * "learned to swim": a skill gained. */
    if (vb == LV_SIGN) {
        for (int j = s + 1; j < s + 4 && j < S->n; j++)
            if (S_is(S, j, "lease") || S_is(S, j, "contract") || S_is(S, j, "papers") ||
                S_is(S, j, "mortgage") || S_is(S, j, "deal"))
                return EX_EV_MILESTONE;
    }
    if (vb == LV_LEARN && S_is(S, s + 1, "to") && (tform(&S->t[s]) & LXF_PAST))
        return EX_EV_MILESTONE;
    if ((vb == LV_FINISH || vb == LV_COMPLETE) && ing_form(S, s + 1))
        return EX_EV_ACTIVITY;
    /* "Finished Boston in 3:41", "completed my first marathon": a race
     * run is an outing, not a life change. */
    if (vb == LV_FINISH || vb == LV_COMPLETE) {
        int j = s + 1;
        if (S_cls(S, j, LX_ART | LX_POSS))
            j++;
        while (j < s + 4 && (S_is(S, j, "first") || S_is(S, j, "last") ||
                             S_is(S, j, "half") || S_is(S, j, "full")))
            j++;
        static const char *const R[] = {"marathon", "race", "triathlon", "5k", "10k",
                                        "half-marathon", "ultra", "ironman"};
        for (size_t q = 0; q < sizeof R / sizeof *R; q++)
            if (S_is(S, j, R[q]))
                return EX_EV_ACTIVITY;
        const gz_place *g[1];
        if (j == s + 1 && S_cap(S, j) && !S_cap(S, j + 1) &&
            gz_lookup(f->x->text + S->t[j].off, S->t[j].len, g, 1) > 0)
            return EX_EV_ACTIVITY;
    }
    if (vb == LV_VISIT && type == EX_EV_SOCIAL && S_is(S, s + 1, "the") &&
        !S_cls(S, s + 2, LX_FAMILY))
        return EX_EV_ACTIVITY;
    if (vb == LV_GET && (S_is(S, s + 1, "promoted") || S_is(S, s + 1, "hired") ||
                         S_is(S, s + 1, "engaged") || S_is(S, s + 1, "married") ||
                         S_is(S, s + 1, "divorced")))
        return EX_EV_MILESTONE;
    if (vb == LV_GET && type == EX_EV_ACTIVITY) {
        int j = s + 1;
        if (S_cls(S, j, LX_POSS | LX_ART))
            j++;
        bool first = S_is(S, j, "first");
        while (j < s + 5 && j < S->n && S_word(S, j) && !milestone_thing(&S->t[j]))
            j++;
        if (first || (j < S->n && milestone_thing(&S->t[j])))
            return EX_EV_MILESTONE;
    }
    return type;
}

static void frame_event(fr *f, ex_event_type type, int s, int e)
{
    if (f->event_done || f->x->err)
        return;
    sent *S = f->S;
    if (s < 0)
        s = f->v->main;
    /* "I've been teaching for years": an ongoing state, not an event. */
    if (type != EX_EV_PLAN && f->v->perfect && f->v->progressive) {
        f->event_done = true;
        return;
    }
    type = event_type_of(f, type, s);
    if (e <= s)
        e = vp_end(f->x, S, s, 12);
    if (e <= s)
        return;
    float conf = f->sj->kind == SJ_OTHER ? 0.7f : 0.8f;
    char *what = toks_str(f->x, S, s, e);
    /* What someone else did names them ("Ben moved out", "Salt passed
     * away"): the verb phrase alone reads as the speaker's own event.
     * Plans keep their base-form verb phrase. */
    if (what && type != EX_EV_PLAN && f->sj->kind == SJ_OTHER && !f->x->joint &&
        !f->x->err) {
        /* One event for what several people did together: the same verb
         * phrase said of someone else already in the turn is that event. */
        const ex_result *r = f->x->out;
        size_t wl0 = strlen(what);
        for (size_t i = 0; i < r->n_events; i++) {
            size_t el = strlen(r->events[i].what);
            if (r->events[i].type == type && el >= wl0 &&
                !strcasecmp(r->events[i].what + el - wl0, what)) {
                dm_free(what);
                f->event_done = true;
                return;
            }
        }
        size_t nl = f->sj->len, wl = strlen(what);
        char *w2 = dm_malloc(nl + 1 + wl + 1);
        if (!w2) {
            f->x->err = DM_ENOMEM;
            dm_free(what);
            return;
        }
        memcpy(w2, f->x->text + f->sj->off, nl);
        w2[nl] = ' ';
        memcpy(w2 + nl + 1, what, wl + 1);
        dm_free(what);
        what = w2;
    }
    add_event(f->x, S, type, what, conf, s, e, f->sj);
    f->event_done = true;
}

/* gender_value -- a stated gender at i ("a woman", "a trans man",
 * "non-binary", "female") that ends its phrase; NULL when none. */
static const char *gender_value(const sent *S, int i, int *b, bool bare_ok)
{
    bool art = S_cls(S, i, LX_ART) || bare_ok;
    if (S_cls(S, i, LX_ART))
        i++;
    while (S_is(S, i, "proud") || S_is(S, i, "young") || S_is(S, i, "cis"))
        i++;
    if (!S_cls(S, i, LX_GENDER))
        return NULL;
    const char *w = S->t[i].w;
    const char *v = NULL;
    int e = i + 1;
    if (!strcmp(w, "trans") || !strcmp(w, "transgender")) {
        if (S_is(S, e, "woman") || S_is(S, e, "girl") || S_is(S, e, "female")) {
            v = "female";
            e++;
        } else if (S_is(S, e, "man") || S_is(S, e, "guy") ||
                   S_is(S, e, "male")) {
            v = "male";
            e++;
        } else {
            v = "transgender";
        }
    } else if (!strcmp(w, "woman") || !strcmp(w, "girl") ||
               !strcmp(w, "lady") || !strcmp(w, "gal") || !strcmp(w, "female")) {
        v = "female";
    } else if (!strcmp(w, "man") || !strcmp(w, "guy") || !strcmp(w, "dude") ||
               !strcmp(w, "male")) {
        v = "male";
    } else if (!strcmp(w, "nonbinary") || !strcmp(w, "non-binary")) {
        v = "non-binary";
    } else {
        v = w; /* genderqueer, genderfluid, agender */
    }
    /* "a man of my word", "a girl scout": not a statement of gender. */
    if (!(clause_end_tok(S, e) || S_cls(S, e, LX_CONJ | LX_SUB) ||
          (S_cls(S, e, LX_PREP) && !S_is(S, e, "of")) || S_is(S, e, "myself") ||
          S_is(S, e, "who")))
        return NULL;
    if (!art && (!strcmp(v, "female") || !strcmp(v, "male")) &&
        !S_is(S, i, "female") && !S_is(S, i, "male"))
        return NULL;
    *b = e;
    return v;
}

/* Nationalities and the countries they name ("I'm Brazilian" -> origin
 * Brazil), including common informal ones ("Kiwi", "Aussie", "Brit"). */
static const char *const DEMONYMS[][2] = {
    {"afghan", "Afghanistan"}, {"albanian", "Albania"}, {"algerian", "Algeria"},
    {"american", "United States"}, {"argentine", "Argentina"},
    {"argentinian", "Argentina"}, {"armenian", "Armenia"}, {"aussie", "Australia"},
    {"australian", "Australia"}, {"austrian", "Austria"},
    {"bangladeshi", "Bangladesh"}, {"belgian", "Belgium"}, {"bolivian", "Bolivia"},
    {"bosnian", "Bosnia and Herzegovina"}, {"brazilian", "Brazil"},
    {"brit", "United Kingdom"}, {"british", "United Kingdom"},
    {"bulgarian", "Bulgaria"}, {"cambodian", "Cambodia"},
    {"cameroonian", "Cameroon"}, {"canadian", "Canada"}, {"chilean", "Chile"},
    {"chinese", "China"}, {"colombian", "Colombia"}, {"congolese", "DR Congo"},
    {"croatian", "Croatia"}, {"cuban", "Cuba"}, {"czech", "Czechia"},
    {"danish", "Denmark"}, {"dominican", "Dominican Republic"},
    {"dutch", "Netherlands"}, {"ecuadorian", "Ecuador"}, {"egyptian", "Egypt"},
    {"english", "England"}, {"estonian", "Estonia"}, {"ethiopian", "Ethiopia"},
    {"filipina", "Philippines"}, {"filipino", "Philippines"},
    {"finnish", "Finland"}, {"french", "France"}, {"georgian", "Georgia"},
    {"german", "Germany"}, {"ghanaian", "Ghana"}, {"greek", "Greece"},
    {"guatemalan", "Guatemala"}, {"haitian", "Haiti"},
    {"honduran", "Honduras"}, {"hungarian", "Hungary"}, {"icelandic", "Iceland"},
    {"indian", "India"}, {"indonesian", "Indonesia"}, {"iranian", "Iran"},
    {"iraqi", "Iraq"}, {"irish", "Ireland"}, {"israeli", "Israel"},
    {"italian", "Italy"}, {"jamaican", "Jamaica"}, {"japanese", "Japan"},
    {"jordanian", "Jordan"}, {"kenyan", "Kenya"}, {"kiwi", "New Zealand"},
    {"korean", "South Korea"}, {"latvian", "Latvia"}, {"lebanese", "Lebanon"},
    {"lithuanian", "Lithuania"}, {"malaysian", "Malaysia"},
    {"mexican", "Mexico"}, {"moroccan", "Morocco"}, {"nepali", "Nepal"},
    {"nepalese", "Nepal"}, {"nigerian", "Nigeria"}, {"norwegian", "Norway"},
    {"pakistani", "Pakistan"}, {"palestinian", "Palestine"},
    {"peruvian", "Peru"}, {"polish", "Poland"}, {"portuguese", "Portugal"},
    {"romanian", "Romania"}, {"russian", "Russia"}, {"rwandan", "Rwanda"},
    {"salvadoran", "El Salvador"}, {"saudi", "Saudi Arabia"},
    {"scottish", "Scotland"}, {"senegalese", "Senegal"}, {"serbian", "Serbia"},
    {"singaporean", "Singapore"}, {"slovak", "Slovakia"},
    {"slovenian", "Slovenia"}, {"somali", "Somalia"},
    {"south african", "South Africa"}, {"spanish", "Spain"},
    {"sri lankan", "Sri Lanka"}, {"sudanese", "Sudan"}, {"swedish", "Sweden"},
    {"swiss", "Switzerland"}, {"syrian", "Syria"}, {"taiwanese", "Taiwan"},
    {"tanzanian", "Tanzania"}, {"thai", "Thailand"}, {"tunisian", "Tunisia"},
    {"turkish", "Turkey"}, {"ugandan", "Uganda"}, {"ukrainian", "Ukraine"},
    {"uruguayan", "Uruguay"}, {"venezuelan", "Venezuela"},
    {"vietnamese", "Vietnam"}, {"welsh", "Wales"}, {"zimbabwean", "Zimbabwe"},
};

/* demonym_country -- the country of the nationality word at i ("Dutch",
 * "South African": *b is the end), or NULL. */
static const char *demonym_country(const sent *S, int i, int *b)
{
    if (!S_word(S, i))
        return NULL;
    char two[48];
    const char *w = S->t[i].w;
    if (S_word(S, i + 1)) {
        snprintf(two, sizeof two, "%s %s", w, S->t[i + 1].w);
        for (size_t k = 0; k < sizeof DEMONYMS / sizeof *DEMONYMS; k++)
            if (!strcmp(two, DEMONYMS[k][0])) {
                *b = i + 2;
                return DEMONYMS[k][1];
            }
    }
    for (size_t k = 0; k < sizeof DEMONYMS / sizeof *DEMONYMS; k++)
        if (!strcmp(w, DEMONYMS[k][0])) {
            *b = i + 1;
            return DEMONYMS[k][1];
        }
    return NULL;
}

/* has_word_after -- word w occurs in S after token i. */
static bool has_word_after(const sent *S, int i, const char *w)
{
    for (int q = i + 1; q < S->n; q++)
        if (tis(&S->t[q], w))
            return true;
    return false;
}

/* home_word -- token i names a dwelling ("house", "apartment", "place"). */
static bool home_word(const sent *S, int i)
{
    return S_is(S, i, "house") || S_is(S, i, "home") || S_is(S, i, "apartment") ||
           S_is(S, i, "flat") || S_is(S, i, "condo") || S_is(S, i, "place") ||
           S_is(S, i, "apt");
}

static void m_be(fr *f)
{
    xctx *x = f->x;
    sent *S = f->S;
    const vg *v = f->v;
    const subj *sj = f->sj;
    int k = f->k;
    if (k >= S->n)
        return;
    const tok *t = &S->t[k];
    ex_polarity pol = EX_ASSERTED;
    float base = 0.9f;
    int a, b;
    float c;

    /* Past events told with "be": born, raised, promoted, diagnosed,
     * hired, laid off. */
    if (tis(t, "born") || tis(t, "raised")) {
        if (v->neg || v->future)
            return;
        int j = k + 1;
        if (S_is(S, j, "and") && (S_is(S, j + 1, "raised") ||
                                  S_is(S, j + 1, "bred") ||
                                  S_is(S, j + 1, "born")))
            j += 2;
        char *d = tis(t, "born") ? date_value(x, S, j, &b) : NULL;
        if (d) {
            add_fact(x, S, sj, "birthday", d, NULL, EX_ASSERTED,
                     fbase(f, 0.9f), j, b, (ex_entity_type)-1);
            return;
        }
        if (S_is(S, j, "in") || S_is(S, j, "and"))
            emit_place(x, S, sj, j + 1, true, EX_ASSERTED, fbase(f, 0.9f), NULL);
        /* "my niece was born last week": a birth in the family, told with
         * its time, is a milestone (the speaker's own birth is a fact). */
        if (tis(t, "born") && sj->kind == SJ_OTHER && v->past &&
            sent_time(x, S)->kind == TIMEX_WINDOW)
            frame_event(f, EX_EV_MILESTONE, k, k + 1);
        return;
    }
    if (tis(t, "promoted") && S_is(S, k + 1, "to")) {
        if (!change(f, &pol, &base))
            return;
        if (title_at(S, k + 2, true, &a, &b, &c)) {
            emit_title(f, a, b, pol, fbase(f, c));
            frame_event(f, EX_EV_MILESTONE, k, b);
        }
        return;
    }
    if (tis(t, "diagnosed") && S_is(S, k + 1, "with")) {
        if (v->neg || v->future)
            return;
        emit_list(f, k + 2, "health", EX_ASSERTED, fbase(f, 0.9f),
                  EX_ENT_CONCEPT, 0);
        frame_event(f, EX_EV_MILESTONE, k, -1);
        return;
    }
    /* "I've been with Accenture for 5 years", "I'm with Deloitte now": an
     * employer when the name is an organisation's. */
    if (tis(t, "with") && !v->neg && !v->future && !v->modal && (!v->past || v->perfect) &&
        sj->kind != SJ_WE && org_at(S, k + 1, &a, &b) &&
        (S_cls(S, a, LX_ORGNAME) || S_cls(S, b - 1, LX_ORGSUF)) && !S_cls(S, a, LX_FIRSTNAME) &&
        (clause_end_tok(S, b) || in_time(x, S, b) || S_is(S, b, "for") || S_is(S, b, "since") ||
         S_is(S, b, "now") || S_is(S, b, "as") || S_cls(S, b, LX_CONJ))) {
        emit_org(f, k + 1, "work.employer", v->corr ? EX_CORRECTION : EX_ASSERTED,
                 fbase(f, 0.8f));
        return;
    }
    if (tis(t, "hired") || tis(t, "employed")) {
        bool hired = tis(t, "hired");
        if (hired ? !change(f, &pol, &base) : !state(f, &pol, &base))
            return;
        for (int j = k + 1, g = 0; g < 3 && j < S->n; g++) {
            if (S_is(S, j, "as") && title_at(S, j + 1, true, &a, &b, &c)) {
                emit_title(f, a, b, pol, fbase(f, c));
                j = b;
            } else if (S_is(S, j, "at") || S_is(S, j, "by") ||
                       S_is(S, j, "with")) {
                int e = emit_org(f, j + 1, "work.employer", pol, base);
                if (e == j + 1)
                    break;
                j = e;
            } else {
                break;
            }
        }
        if (hired)
            frame_event(f, EX_EV_MILESTONE, k, -1);
        return;
    }
    if ((tis(t, "laid") && S_is(S, k + 1, "off")) || tis(t, "fired")) {
        if (v->neg || v->future)
            return;
        int j = k + (tis(t, "laid") ? 2 : 1);
        if (S_is(S, j, "from") || S_is(S, j, "at") || S_is(S, j, "by"))
            emit_org(f, j + 1, "work.employer", EX_NEGATED, fbase(f, 0.8f));
        frame_event(f, EX_EV_MILESTONE, k, -1);
        return;
    }
    if (tis(t, "self-employed")) {
        if (state(f, &pol, &base))
            add_fact(x, S, sj, "work.employer", xstrdup(x, "self-employed"),
                     NULL, pol, fbase(f, 0.8f), k, k + 1, (ex_entity_type)-1);
        return;
    }
    base = 0.9f;
    if (!state(f, &pol, &base))
        return;

    /* "a 28-year-old teacher", "a 35 year old woman from Ohio" */
    if (S_cls(S, k, LX_ART) && k + 1 < S->n) {
        int q = k + 1, e2 = 0, av = 0;
        const tok *u = &S->t[q];
        if (u->type == T_WORD && strstr(u->w, "-year-old")) {
            av = age_at(S, q, &e2);
            e2 = q + 1;
        } else if ((u->type == T_NUM || (tcls(u) & LX_NUM)) &&
                   S_is(S, q + 1, "year") && S_is(S, q + 2, "old")) {
            av = u->type == T_NUM ? u->num : u->lx->data;
            e2 = q + 3;
        }
        if (av >= 1 && av <= 120) {
            char buf[16];
            snprintf(buf, sizeof buf, "%d", av);
            add_fact(x, S, sj, "age", xstrdup(x, buf), NULL, pol, base, q, e2,
                     (ex_entity_type)-1);
            const char *g = gender_value(S, e2, &b, true);
            if (g && sj->kind == SJ_SPEAKER)
                add_fact(x, S, sj, "gender", xstrdup(x, g), NULL, pol, base, e2,
                         b, (ex_entity_type)-1);
            else if (title_at(S, e2, false, &a, &b, &c))
                emit_title(f, a, b, pol, fbase(f, c < base ? c : base));
            else
                b = e2;
            if (S_is(S, b, "from"))
                emit_place(x, S, sj, b + 1, true, pol, base, NULL);
            return;
        }
    }
    /* age */
    int age = age_at(S, k, &b);
    if (age > 0) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", age);
        add_fact(x, S, sj, "age", xstrdup(x, buf), NULL, pol, base, k, b,
                 (ex_entity_type)-1);
        return;
    }
    if (tis(t, "from")) {
        emit_place(x, S, sj, k + 1, true, pol, base, NULL);
        return;
    }
    if ((tis(t, "based") || tis(t, "located") || tis(t, "settled") ||
         tis(t, "stationed")) && S_is(S, k + 1, "in")) {
        emit_place(x, S, sj, k + 2, false, pol, base, NULL);
        return;
    }
    /* "based out of Nairobi" */
    if (tis(t, "based") && S_is(S, k + 1, "out") && S_is(S, k + 2, "of")) {
        emit_place(x, S, sj, k + 3, false, pol, base, NULL);
        return;
    }
    /* "I'm in Toronto now", "I've been in LA for a decade" (with a time
     * span: "I've been in Paris" alone is a visit). */
    if (tis(t, "in") && !S_cls(S, k + 1, LX_ART | LX_POSS)) {
        int a2, b2;
        place p;
        bool span = !v->perfect || has_word_after(S, k, "for") ||
                    has_word_after(S, k, "since");
        /* "I'm in Chicago this week for a conference" is a stay, not where
         * one lives: a bounded time or a purpose says so. */
        const timex *tx = sent_time(x, S);
        bool visit = !v->perfect &&
                     ((tx->kind == TIMEX_WINDOW && !has_word_after(S, k, "now")) ||
                      has_word_after(S, k, "visiting") || has_word_after(S, k, "trip") ||
                      has_word_after(S, k, "vacation") || has_word_after(S, k, "holiday") ||
                      has_word_after(S, k, "conference") || has_word_after(S, k, "business"));
        if (span && !visit && !v->future && place_at(x, S, k + 1, &a2, &b2, &p) &&
            p.gp) {
            emit_place(x, S, sj, k + 1, false, pol, base, NULL);
            return;
        }
    }
    /* "been at Siemens for 8 years": where one works */
    if (tis(t, "at") && v->perfect &&
        (has_word_after(S, k, "for") || has_word_after(S, k, "since"))) {
        emit_org(f, k + 1, "work.employer", pol, fbase(f, 0.8f));
        return;
    }
    /* "I'm Brazilian", "she's Dutch", "I'm a Kiwi" (unless a place of
     * origin follows: "I'm Irish, from Cork" is from Cork). */
    {
        int j = S_cls(S, k, LX_ART) ? k + 1 : k, e2 = 0;
        const char *country = demonym_country(S, j, &e2);
        if (country && (clause_end_tok(S, e2) || S_cls(S, e2, LX_CONJ)) &&
            !has_word_after(S, e2 - 1, "from") && pol != EX_NEGATED) {
            add_fact(x, S, sj, "origin", xstrdup(x, country), NULL, pol,
                     fbase(f, 0.8f), j, e2, EX_ENT_PLACE);
            return;
        }
        /* "I'm a Kiwi living in London" */
        if (country && S_cls(S, k, LX_ART) && !has_word_after(S, e2 - 1, "from") &&
            (tform(&S->t[e2]) & LXF_ING) && pol != EX_NEGATED) {
            add_fact(x, S, sj, "origin", xstrdup(x, country), NULL, pol,
                     fbase(f, 0.8f), j, e2, EX_ENT_PLACE);
            return;
        }
    }
    /* "I'm a Florida resident" */
    if (S_cls(S, k, LX_ART) && (S_is(S, k + 2, "resident") || S_is(S, k + 3, "resident"))) {
        int a2, b2;
        place p;
        if (place_at(x, S, k + 1, &a2, &b2, &p) && p.gp && S_is(S, b2, "resident")) {
            emit_place(x, S, sj, k + 1, false, pol, base, NULL);
            return;
        }
    }
    /* "I'm retired", "I'm 67 and retired": retired is what one does now */
    if (tis(t, "retired") && (clause_end_tok(S, k + 1) || S_cls(S, k + 1, LX_CONJ) ||
                              S_is(S, k + 1, "now"))) {
        add_fact(x, S, sj, "work.title", xstrdup(x, "retired"), NULL, pol,
                 fbase(f, 0.85f), k, k + 1, (ex_entity_type)-1);
        return;
    }
    /* "I'm CPR certified", "I'm first aid certified": the skill */
    {
        int e = k;
        while (e < S->n && e - k < 3 && S_word(S, e) && !S_is(S, e, "certified") &&
               !S_cls(S, e, LX_ART | LX_PREP | LX_CONJ | LX_ADV))
            e++;
        if (e > k && S_is(S, e, "certified") && clause_end_tok(S, e + 1)) {
            add_fact(x, S, sj, "skill", toks_str(x, S, k, e), NULL, pol, fbase(f, 0.8f), k,
                     e, EX_ENT_CONCEPT);
            return;
        }
    }
    if (tis(t, "in") && S_is(S, k + 1, "a") && S_is(S, k + 2, "relationship")) {
        add_fact(x, S, sj, "relationship", xstrdup(x, "in a relationship"),
                 NULL, pol, base, k, k + 3, (ex_entity_type)-1);
        /* "... with Jess": the partner's name */
        int e = S_is(S, k + 3, "with") ? name_run(S, k + 4) : k + 4;
        if (e > k + 4 && pol == EX_ASSERTED && !speaker_tok(x, S, k + 4) &&
            !S_cls(S, k + 4, LX_MONTH | LX_DAY))
            add_fact(x, S, sj, "family.partner", toks_str(x, S, k + 4, e), NULL, pol,
                     fbase(f, 0.85f), k + 4, e, EX_ENT_PERSON);
        return;
    }
    if (tis(t, "in")) {
        int e = industry_at(x, S, k + 1, &a, &b, &c);
        if (e > k + 1)
            add_fact(x, S, sj, "work.industry", toks_str(x, S, a, b), NULL, pol,
                     fbase(f, c < base ? c : base), a, b, EX_ENT_CONCEPT);
        return;
    }
    if (S_cls(S, k, LX_ART) && (S_is(S, k + 1, "widow") || S_is(S, k + 1, "widower"))) {
        add_fact(x, S, sj, "relationship", xstrdup(x, "widowed"), NULL, pol, base,
                 k, k + 2, (ex_entity_type)-1);
        return;
    }
    if ((tis(t, "obsessed") || tis(t, "passionate") || tis(t, "crazy")) &&
        (S_is(S, k + 1, "with") || S_is(S, k + 1, "about"))) {
        emit_list(f, k + 2, "preference.likes", pol, fbase(f, 0.8f),
                  EX_ENT_CONCEPT, 0);
        return;
    }
    if (tcls(t) & LX_RELSTAT) {
        add_fact(x, S, sj, "relationship", xstrdup(x, t->w), NULL, pol, base, k,
                 k + 1, (ex_entity_type)-1);
        if ((tis(t, "married") || tis(t, "engaged")) && S_is(S, k + 1, "to") &&
            pol != EX_NEGATED) {
            /* "married to Priya", "married to a woman named Priya" */
            int n = k + 2;
            if (S_cls(S, n, LX_ART) && S_word(S, n + 1) &&
                (S_is(S, n + 2, "named") || S_is(S, n + 2, "called")))
                n += 3;
            int e = name_run(S, n);
            if (e > n)
                add_fact(x, S, sj,
                         tis(t, "married") ? "family.spouse" : "family.partner",
                         toks_str(x, S, n, e), NULL, pol, base, n, e, EX_ENT_PERSON);
        }
        return;
    }
    /* diet: "vegan", "a vegetarian", "on a keto diet", "gluten-free" */
    {
        int j = k;
        if (S_is(S, j, "on") && S_cls(S, j + 1, LX_ART))
            j += 2;
        else if (S_is(S, j, "on") && S_cls(S, j + 1, LX_DIET)) /* "I'm on keto" */
            j++;
        else if (S_cls(S, j, LX_ART))
            j++;
        while (S_is(S, j, "strict") || S_is(S, j, "full") ||
               S_is(S, j, "proud") || S_is(S, j, "committed"))
            j++;
        if (S_cls(S, j, LX_DIET) && !S_cls(S, j + 1, LX_OCC)) {
            int e = j + 1;
            if (S_is(S, e, "diet"))
                e++;
            if (clause_end_tok(S, e) || S_cls(S, e, LX_CONJ | LX_SUB | LX_NPSTOP |
                                                    LX_PREP | LX_ADV | LX_TIME) ||
                in_time(x, S, e) || (S_is(S, e, "these") && S_is(S, e + 1, "days"))) {
                add_fact(x, S, sj, "diet", xstrdup(x, S->t[j].w), NULL, pol,
                         base, j, e, EX_ENT_CONCEPT);
                return;
            }
        }
    }
    if (tis(t, "allergic") && S_is(S, k + 1, "to")) {
        emit_list(f, k + 2, "allergy", pol, base, EX_ENT_CONCEPT, 0);
        return;
    }
    if (tis(t, "lactose") && S_is(S, k + 1, "intolerant")) {
        add_fact(x, S, sj, "health", xstrdup(x, "lactose intolerance"), NULL,
                 pol, base, k, k + 2, EX_ENT_CONCEPT);
        return;
    }
    if (tcls(t) & LX_HEALTHADJ) {
        static const char *const MAP[][2] = {
            {"diabetic", "diabetes"}, {"asthmatic", "asthma"},
            {"epileptic", "epilepsy"}, {"anemic", "anemia"},
            {"autistic", "autism"}};
        const char *val = t->w;
        for (size_t q = 0; q < sizeof MAP / sizeof *MAP; q++)
            if (!strcmp(t->w, MAP[q][0]))
                val = MAP[q][1];
        add_fact(x, S, sj, "health", xstrdup(x, val), NULL, pol, base, k, k + 1,
                 EX_ENT_CONCEPT);
        return;
    }
    /* "a native Spanish speaker", "a fluent French speaker" */
    {
        int j = S_cls(S, k, LX_ART) ? k + 1 : k;
        while (S_is(S, j, "native") || S_is(S, j, "fluent") || S_is(S, j, "heritage"))
            j++;
        if (S_cls(S, j, LX_LANG) && S_is(S, j + 1, "speaker") && j > k) {
            add_fact(x, S, sj, "language", toks_str(x, S, j, j + 1), NULL, pol,
                     fbase(f, 0.9f), j, j + 1, EX_ENT_CONCEPT);
            return;
        }
    }
    /* "a (big) fan of X" */
    {
        int j = k;
        if (S_cls(S, j, LX_ART))
            j++;
        while (S_is(S, j, "big") || S_is(S, j, "huge") || S_is(S, j, "massive") ||
               S_is(S, j, "great") || S_is(S, j, "real") ||
               S_is(S, j, "die-hard") || S_is(S, j, "total"))
            j++;
        if (S_is(S, j, "fan") && S_is(S, j + 1, "of")) {
            if (pol == EX_NEGATED && v->anymore)
                emit_list(f, j + 2, "preference.likes", EX_NEGATED,
                          fbase(f, 0.8f), EX_ENT_CONCEPT, 0);
            else if (pol == EX_NEGATED)
                emit_list(f, j + 2, "preference.dislikes", EX_ASSERTED,
                          fbase(f, 0.8f), EX_ENT_CONCEPT, 0);
            else
                emit_list(f, j + 2, "preference.likes", pol, fbase(f, 0.85f),
                          EX_ENT_CONCEPT, 0);
            return;
        }
    }
    /* "a huge Arsenal supporter", "a big Yankees fan", "a cat person",
     * "more of a tea person", "a sucker for X" */
    {
        int j = k;
        if (S_is(S, j, "more") && S_is(S, j + 1, "of"))
            j += 2;
        if (S_cls(S, j, LX_ART)) {
            j++;
            while (S_is(S, j, "big") || S_is(S, j, "huge") || S_is(S, j, "massive") ||
                   S_is(S, j, "great") || S_is(S, j, "real") || S_is(S, j, "total") ||
                   S_is(S, j, "die-hard") || S_is(S, j, "lifelong") ||
                   S_is(S, j, "true") || S_is(S, j, "devoted"))
                j++;
            int e = j;
            while (e < S->n && e - j < 3 && S_word(S, e) && !S_is(S, e, "fan") &&
                   !S_is(S, e, "supporter") && !S_is(S, e, "person") &&
                   !S_is(S, e, "lover") && !S_is(S, e, "fanatic") &&
                   !(tcls(&S->t[e]) & (LX_PREP | LX_CONJ | LX_SUB)))
                e++;
            bool fan = S_is(S, e, "fan") || S_is(S, e, "supporter") ||
                       S_is(S, e, "fanatic") || S_is(S, e, "lover");
            if (e > j && (fan || (S_is(S, e, "person") && e == j + 1)) &&
                (clause_end_tok(S, e + 1) || S_cls(S, e + 1, LX_CONJ | LX_ADV) ||
                 S_is(S, e + 1, "through"))) {
                char *val = NULL;
                int sp = -1;
                if (S_cls(S, j, LX_ANIMAL) && e == j + 1 &&
                    (sp = S->t[j].lx->data) >= 0 && lx_species(sp)) {
                    char buf[40];
                    snprintf(buf, sizeof buf, "%ss", lx_species(sp));
                    val = xstrdup(x, buf);
                } else {
                    val = toks_str(x, S, j, e);
                }
                if (pol == EX_NEGATED && !v->anymore)
                    add_fact(x, S, sj, "preference.dislikes", val, NULL, EX_ASSERTED,
                             fbase(f, 0.75f), j, e, EX_ENT_CONCEPT);
                else
                    add_fact(x, S, sj, "preference.likes", val, NULL, pol,
                             fbase(f, 0.8f), j, e, EX_ENT_CONCEPT);
                return;
            }
            if (S_is(S, j, "sucker") && S_is(S, j + 1, "for")) {
                emit_list(f, j + 2, "preference.likes", pol, fbase(f, 0.8f),
                          EX_ENT_CONCEPT, 0);
                return;
            }
        }
    }
    if (tis(t, "into") || (tis(t, "really") && S_is(S, k + 1, "into"))) {
        int j = tis(t, "into") ? k + 1 : k + 2;
        if (S_cls(S, j, LX_ART | LX_POSS | LX_DET))
            return; /* "into a bad spot", "into my work" */
        int s2 = j;
        int e = np_end(x, S, s2, MAX_VALUE_TOKS, 0);
        if (e <= s2 || vague_np(S, s2, e))
            return;
        const tok *h = &S->t[e - 1];
        size_t hl = strlen(h->w);
        bool act = (tcls(h) & LX_ACTIVITY) ||
                   (hl > 4 && !strcmp(h->w + hl - 3, "ing"));
        if (pol == EX_NEGATED && !v->anymore)
            add_fact(x, S, sj, "preference.dislikes", toks_str(x, S, s2, e), NULL,
                     EX_ASSERTED, fbase(f, 0.75f), s2, e, EX_ENT_CONCEPT);
        else
            add_fact(x, S, sj, act ? "hobby" : "preference.likes",
                     toks_str(x, S, s2, e), NULL, pol, fbase(f, 0.85f), s2, e,
                     EX_ENT_CONCEPT);
        return;
    }
    if ((tis(t, "good") || tis(t, "great") || tis(t, "skilled") ||
         tis(t, "talented") || tis(t, "experienced") || tis(t, "proficient") ||
         tis(t, "fluent") || tis(t, "conversational") || tis(t, "handy") ||
         tis(t, "decent")) &&
        (S_is(S, k + 1, "at") || S_is(S, k + 1, "in") || S_is(S, k + 1, "with"))) {
        int s2 = skip_det(S, k + 2);
        if (tis(t, "fluent") || S_cls(S, s2, LX_LANG)) {
            emit_list(f, k + 2, S_cls(S, s2, LX_LANG) ? "language" : "skill", pol,
                      base, EX_ENT_CONCEPT, S_cls(S, s2, LX_LANG) ? LX_LANG : 0);
            return;
        }
        int e = np_end(x, S, s2, MAX_VALUE_TOKS, NP_OF);
        if (e > s2 && !vague_np(S, s2, e))
            add_fact(x, S, sj, "skill", toks_str(x, S, s2, e), NULL, pol,
                     fbase(f, 0.8f), s2, e, EX_ENT_CONCEPT);
        return;
    }
    /* "a member of X" */
    if (S_cls(S, k, LX_ART) && S_is(S, k + 1, "member") && S_is(S, k + 2, "of")) {
        if (pol == EX_NEGATED)
            return;
        int s2 = k + 3, e;
        if (!org_at(S, s2, &a, &e)) {
            a = skip_det(S, s2);
            e = np_end(x, S, a, MAX_VALUE_TOKS, NP_OF);
        }
        if (e > a && !vague_np(S, a, e)) {
            char *o = toks_str(x, S, a, e), *su = subj_str(x, sj);
            if (o && su) {
                add_relation(x, su, "member_of", o, eff_conf(S, sj, sj->pos, 0.8f),
                             tspan(S, sj->pos, e));
                add_entity(x, o, S_cap(S, a) ? EX_ENT_ORG : EX_ENT_CONCEPT, 0.8f,
                           tspan(S, a, e));
            }
            dm_free(o);
            dm_free(su);
        }
        return;
    }
    /* students: "a student at X", "a nursing student", "a biology major" */
    {
        int j = S_cls(S, k, LX_ART) ? k + 1 : k;
        int e = j;
        while (e < S->n && e - j < 4 && S_word(S, e) && !S_is(S, e, "student") &&
               !S_is(S, e, "major") && !(student_year(S, e) && S_is(S, e + 1, "at")) &&
               !(tcls(&S->t[e]) & (LX_PREP | LX_CONJ | LX_SUB | LX_NPSTOP)))
            e++;
        /* "a sophomore at NYU": the year in school stands for "student" */
        if (S_is(S, e, "student") || S_is(S, e, "major") ||
            (student_year(S, e) && S_is(S, e + 1, "at"))) {
            int s2 = j;
            /* "a second-year law student": the year is no field */
            while (s2 < e && ((tcls(&S->t[s2]) & LX_MODADJ) || student_year(S, s2)))
                s2++;
            if (S_is(S, s2, "college") || S_is(S, s2, "university") ||
                S_is(S, s2, "grad") || S_is(S, s2, "graduate") ||
                S_is(S, s2, "high") || S_is(S, s2, "full-time") ||
                S_is(S, s2, "part-time") || S_is(S, s2, "exchange"))
                s2 = e;
            if (s2 < e)
                add_fact(x, S, sj, "education", toks_str(x, S, s2, e), NULL, pol,
                         fbase(f, 0.85f), s2, e, EX_ENT_CONCEPT);
            if (S_is(S, e + 1, "at")) {
                int oe = emit_org(f, e + 2, "education.school", pol, fbase(f, 0.85f));
                /* "... at NYU studying film" */
                if (oe > e + 2 && S_is(S, oe, "studying") && s2 >= e) {
                    int fa = skip_det(S, oe + 1), fe = np_end(x, S, fa, 3, 0);
                    if (fe > fa && !S_cap(S, fa))
                        add_fact(x, S, sj, "education", toks_str(x, S, fa, fe), NULL,
                                 pol, fbase(f, 0.8f), fa, fe, EX_ENT_CONCEPT);
                }
            }
            return;
        }
    }
    /* gender */
    {
        const char *g = gender_value(S, k, &b, false);
        if (g && sj->kind == SJ_SPEAKER) {
            add_fact(x, S, sj, "gender", xstrdup(x, g), NULL, pol, base, k, b,
                     (ex_entity_type)-1);
            return;
        }
    }
    /* "the CEO of X", "the founder of X" */
    if (S_is(S, k, "the") && S_cls(S, k + 1, LX_OCC) && S_is(S, k + 2, "of")) {
        emit_title(f, k + 1, k + 2, pol, fbase(f, 0.85f));
        emit_org(f, k + 3, "work.employer", pol, fbase(f, 0.85f));
        return;
    }
    /* a job title, and where */
    if (S_cls(S, k, LX_ART) && title_at(S, k, false, &a, &b, &c)) {
        emit_title(f, a, b, pol, fbase(f, c < base ? c : base));
        if (S_is(S, b, "at") || S_is(S, b, "for") || S_is(S, b, "with"))
            emit_org(f, b + 1, "work.employer", pol, fbase(f, 0.85f));
        return;
    }
    /* "I'm Ali", "I'm called Ali" */
    if (sj->kind == SJ_SPEAKER && !x->assistant) {
        int j = k;
        bool called = false;
        if ((tis(t, "called") || tis(t, "named")) && S_cap(S, k + 1)) {
            j = k + 1;
            called = true;
        }
        /* "I'm Dr. Aisha Bello": the title is no part of the name */
        if ((S_is(S, j, "dr") || S_is(S, j, "mr") || S_is(S, j, "mrs") ||
             S_is(S, j, "ms") || S_is(S, j, "prof")) &&
            S_punct(S, j + 1, '.') && S_cap(S, j + 2)) {
            j += 2;
            called = true;
        }
        if (!S_cap(S, j) || (S->t[j].flags & TF_UPPER))
            return;
        int e = j + 1;
        while (e < S->n && e - j < 3 && S_cap(S, e) &&
               (!S->t[e].lx || S->t[e].lx->cls == LX_FIRSTNAME))
            e++;
        for (int q = j; q < e; q++)
            if (S->t[q].lx && (tcls(&S->t[q]) & ~(uint64_t)LX_FIRSTNAME))
                return;
        if (!(clause_end_tok(S, e) || S_cls(S, e, LX_CONJ) || S_is(S, e, "from") ||
              S_is(S, e, "btw") || S_is(S, e, "by") || S_is(S, e, "here")))
            return;
        const gz_place *g[1];
        bool first = (tcls(&S->t[j]) & LX_FIRSTNAME) != 0;
        if (!first && gz_lookup(x->text + S->t[j].off, S->t[j].len, g, 1) > 0)
            return;
        float nc = first ? 0.9f : called ? 0.8f : 0.6f;
        add_fact(x, S, sj, "name", toks_str(x, S, j, e), NULL, pol,
                 nc < base ? nc : base, j, e, EX_ENT_PERSON);
    }
}

static void m_live(fr *f)
{
    ex_polarity pol;
    float base = 0.9f;
    if (!state(f, &pol, &base))
        return;
    int k = f->k;
    /* "Currently in Mexico City for work, I live here now", "Moving to
     * Denver was the best decision; I've lived here two years": "here" is
     * the place the turn named last. */
    if (S_is(f->S, k, "here") && !S_is(f->S, k + 1, "in") && f->sj->kind != SJ_OTHER &&
        !f->v->past && !f->v->used_to) {
        sent *S0 = f->S;
        xctx *x0 = f->x;
        int pa = -1;
        for (int q = 0; q < f->sj->pos && q < S0->n; q++) {
            int a, b;
            place pl;
            if (S_cap(S0, q) && (q == 0 || !S_cap(S0, q - 1)) &&
                place_at(x0, S0, q, &a, &b, &pl) && pl.gp)
                pa = a;
        }
        if (pa >= 0) {
            emit_place(x0, S0, f->sj, pa, false, pol, fbase(f, 0.75f), NULL);
            return;
        }
        for (size_t q = x0->out->n_entities; q-- > 0;) {
            const ex_entity *en = &x0->out->entities[q];
            place pc;
            if (en->type != EX_ENT_PLACE || en->span.off >= S0->off)
                continue;
            if (classify(en->name, strlen(en->name), true, &pc) && pc.gp && pc.slot)
                add_fact(x0, S0, f->sj, pc.slot, xstrdup(x0, en->name), NULL, pol,
                         fbase(f, 0.7f), k, k + 1, EX_ENT_PLACE);
            return;
        }
        return;
    }
    if (S_is(f->S, k, "here") || S_is(f->S, k, "there") ||
        S_is(f->S, k, "now") || S_is(f->S, k, "currently"))
        k++;
    /* "lives in a care home in Brighton", "live in a small flat in
     * Leeds": the dwelling, then the place. */
    sent *S = f->S;
    if (S_is(S, k, "in") && S_cls(S, k + 1, LX_ART | LX_POSS) && !S_cap(S, k + 2)) {
        int q = k + 2;
        while (q < S->n && q < k + 6 && S_word(S, q) && !S_cap(S, q) && !S_is(S, q, "in") &&
               !S_cls(S, q, LX_PREP | LX_CONJ | LX_SUB))
            q++;
        if (q > k + 2 && S_is(S, q, "in") && S_cap(S, q + 1)) {
            emit_place(f->x, S, f->sj, q + 1, false, pol, fbase(f, 0.8f), NULL);
            return;
        }
    }
    if (S_is(S, k, "in") || (f->v->verb == LV_RESIDE && S_is(S, k, "at")))
        emit_place(f->x, S, f->sj, k + 1, false, pol, base, NULL);
}

/* m_move -- "moved to X", "moved from X to Y", "relocated to X",
 * "settled in X"; the progressive and future are plans (frame()). */
static void m_move(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    int k = f->k;
    ex_polarity pol;
    float base = 0.9f;
    if (f->v->progressive && !f->v->past)
        return;
    if (!change(f, &pol, &base))
        return;
    if (S_is(S, k, "back") || S_is(S, k, "away") || S_is(S, k, "over"))
        k++;
    if (S_is(S, k, "here") || S_is(S, k, "there") || S_is(S, k, "out") ||
        (S_is(S, k, "in") && S_is(S, k + 1, "with")))
        return;
    int a, b, c = -1, d = -1, to = -1;
    place p;
    if (f->v->verb == LV_SETTLE && S_is(S, k, "in"))
        to = k + 1;
    else if (S_is(S, k, "to"))
        to = k + 1;
    else if (S_is(S, k, "from") && place_at(x, S, k + 1, &c, &d, &p) &&
             S_is(S, d, "to"))
        to = d + 1;
    if (to < 0)
        return;
    /* "moved to Oracle in 2015": a known organisation that is no place is
     * a new employer. */
    if (S_cls(S, to, LX_ORGNAME) && S_cap(S, to) && c < 0 && f->sj->kind != SJ_WE) {
        const gz_place *g[1];
        if (gz_lookup(x->text + S->t[to].off, S->t[to].len, g, 1) == 0) {
            int e = emit_org(f, to, "work.employer", pol, fbase(f, 0.8f));
            if (e > to)
                frame_event(f, EX_EV_MILESTONE, f->v->main, e);
            return;
        }
    }
    if (c < 0 && place_at(x, S, to, &a, &b, &p) && S_is(S, b, "from")) {
        int e;
        if (place_at(x, S, b + 1, &c, &e, &p))
            d = e;
    }
    char *prev = c >= 0 ? toks_str(x, S, c, d) : NULL;
    int e = emit_place(x, S, f->sj, to, false, pol, base, prev);
    if (e > to)
        frame_event(f, EX_EV_MILESTONE, f->v->main, e > d ? e : d);
}

static void m_work(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    ex_polarity pol;
    float base = 0.9f;
    if (!state(f, &pol, &base))
        return;
    int k = f->k, a, b;
    float c;
    /* "I teach 4th grade", "she teaches yoga", "I've been teaching high
     * school chemistry for 12 years": a teacher of that subject */
    if (f->v->verb == LV_TEACH && (habitual(f) || f->v->perfect) && k < S->n &&
        S->t[k].type != T_PUNCT && !S_cls(S, k, LX_PREP | LX_PRONOBJ | LX_POSS | LX_ART)) {
        int e = np_end(x, S, k, 4, 0);
        if (e > k && !vague_np(S, k, e)) {
            char *subjn = toks_str(x, S, k, e);
            if (subjn) {
                bool grade = strstr(subjn, "grade") != NULL;
                size_t n = strlen(subjn) + 10;
                char *val = dm_malloc(n);
                if (val)
                    snprintf(val, n, "%s teacher", grade ? "" : subjn);
                else
                    x->err = DM_ENOMEM;
                if (val && grade)
                    memmove(val, val + 1, strlen(val));
                add_fact(x, S, f->sj, "work.title", val, NULL, pol, fbase(f, 0.8f), k,
                         e, (ex_entity_type)-1);
                dm_free(subjn);
            }
            k = e;
        }
    }
    for (int guard = 0; guard < 4 && k < S->n; guard++) {
        k = skip_adv(S, k);
        if ((S_is(S, k, "at") || S_is(S, k, "for")) && S_is(S, k + 1, "myself")) {
            add_fact(x, S, f->sj, "work.employer", xstrdup(x, "self-employed"),
                     NULL, pol, fbase(f, 0.8f), k, k + 2, (ex_entity_type)-1);
            k += 2;
        } else if (S_is(S, k, "at") || S_is(S, k, "for")) {
            int e = emit_org(f, k + 1, "work.employer", pol, base);
            if (e == k + 1) {
                e = np_end(x, S, skip_det(S, k + 1), MAX_VALUE_TOKS, NP_OF);
                /* "a small startup called Fluxify" */
                if (e > k + 1 && (S_is(S, e, "called") || S_is(S, e, "named")) &&
                    S_cap(S, e + 1))
                    e = emit_org(f, e + 1, "work.employer", pol, fbase(f, 0.85f));
            }
            if (e <= k + 1)
                break;
            k = e;
        } else if (S_is(S, k, "as") && f->v->verb != LV_TEACH &&
                   title_at(S, k + 1, true, &a, &b, &c)) {
            emit_title(f, a, b, pol, fbase(f, c < base ? c : base));
            k = b;
        } else if (S_is(S, k, "in")) {
            int e = industry_at(x, S, k + 1, &a, &b, &c);
            if (e > k + 1 && f->v->verb != LV_TEACH) {
                add_fact(x, S, f->sj, "work.industry", toks_str(x, S, a, b), NULL,
                         pol, fbase(f, c < base ? c : base), a, b, EX_ENT_CONCEPT);
                k = e;
            } else {
                int e2 = np_end(x, S, skip_det(S, k + 1), MAX_VALUE_TOKS, NP_OF);
                if (e2 <= k + 1)
                    break;
                k = e2;
            }
        } else if (S_is(S, k, "from") || S_is(S, k, "with") || S_is(S, k, "on") ||
                   S_is(S, k, "as")) {
            int e = np_end(x, S, skip_det(S, k + 1), MAX_VALUE_TOKS, NP_OF);
            if (e <= k + 1)
                break;
            k = e;
        } else {
            break;
        }
    }
}

/* job_before -- the turn's text before byte end speaks of a job ("an
 * offer from Airbus", "an internship at Ford"), so a later "I start
 * there" starts that job. */
static bool job_before(const xctx *x, uint32_t end)
{
    static const char *const W[] = {"job", "offer", "internship", "position", "role",
                                    "contract", "hired", "gig"};
    for (uint32_t i = 0; i < end; i++) {
        if (i > 0 && ((x->text[i - 1] >= 'a' && x->text[i - 1] <= 'z') ||
                      (x->text[i - 1] >= 'A' && x->text[i - 1] <= 'Z')))
            continue;
        for (size_t k = 0; k < sizeof W / sizeof *W; k++) {
            size_t n = strlen(W[k]);
            if (i + n <= end && !strncasecmp(x->text + i, W[k], n))
                return true;
        }
    }
    return false;
}

static void m_start(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    ex_polarity pol;
    float base = 0.9f;
    /* "I start there on the 1st of next month", "I start at Google next
     * week": a present tense with a day ahead is a plan ("start at X"),
     * "there" the organisation the turn named last. */
    bool bare = clause_end_tok(S, f->k) || S_cls(S, f->k, LX_MONTH | LX_DAY) ||
                S_is(S, f->k, "on") || S_is(S, f->k, "next") || S_is(S, f->k, "tomorrow");
    if (f->v->verb == LV_START && !f->v->past && !f->v->perfect &&
        !f->v->neg && !f->v->modal && f->sj->kind == SJ_SPEAKER &&
        (S_is(S, f->k, "there") || S_is(S, f->k, "at") ||
         (bare && ((S->t[f->v->main].flags & TF_FIRST) || job_before(x, S->t[f->v->main].off))))) {
        int64_t wf, wt;
        bool ahead = own_window(x, S, true, &wf, &wt) && wf > x->day_from;
        if (!ahead) {
            /* "on Monday" said of a present-tense start is the next one */
            const timex *tx = sent_time(x, S);
            if (tx->kind == TIMEX_WINDOW) {
                wf = tx->from_us;
                wt = tx->to_us;
                plan_window(x, S, &wf, &wt);
                ahead = wf > x->in->time_us;
            }
        }
        if (ahead) {
            char *org = NULL;
            int oa = f->k, ob = f->k + 1;
            if (S_is(S, f->k, "at") && org_at(S, f->k + 1, &oa, &ob)) {
                org = toks_str(x, S, oa, ob);
            } else if (!S_is(S, f->k, "at") && job_before(x, S->t[f->v->main].off)) {
                /* an organisation named earlier in this sentence: "Got an
                 * offer from Airbus and I start on the 1st" */
                for (int q = 0; q < f->sj->pos && !org; q++) {
                    int a2, b2;
                    if ((S_is(S, q, "from") || S_is(S, q, "at") || S_is(S, q, "with")) &&
                        S_cap(S, q + 1) && org_at(S, q + 1, &a2, &b2) &&
                        !S_cls(S, a2, LX_FIRSTNAME | LX_MONTH | LX_DAY)) {
                        const gz_place *gq[1];
                        if (gz_lookup(x->text + S->t[a2].off,
                                      S->t[b2 - 1].off + S->t[b2 - 1].len - S->t[a2].off, gq,
                                      1) == 0)
                            org = toks_str(x, S, a2, b2);
                    }
                }
                /* "there", or nothing: "Got an internship at Ford!
                 * Starting June 5." */
                for (size_t q = x->out->n_entities; q-- > 0 && !org;) {
                    const ex_entity *en = &x->out->entities[q];
                    const gz_place *gp[1];
                    /* "an offer from Philips": typed a place only by its
                     * preposition when the gazetteer does not know it */
                    if (en->type == EX_ENT_ORG ||
                        (en->type == EX_ENT_PLACE &&
                         gz_lookup(en->name, strlen(en->name), gp, 1) == 0))
                        org = xstrdup(x, en->name);
                }
            }
            if (org) {
                size_t n = strlen(org) + 10;
                char *val = dm_malloc(n);
                if (!val) {
                    x->err = DM_ENOMEM;
                    dm_free(org);
                    return;
                }
                snprintf(val, n, "start at %s", org);
                dm_free(org);
                char *what = xstrdup(x, val);
                add_fact(x, S, f->sj, "plan", val, NULL, EX_ASSERTED, fbase(f, 0.75f), oa, ob,
                         (ex_entity_type)-1);
                add_event(x, S, EX_EV_PLAN, what, 0.75f, f->v->main, ob, f->sj);
                f->event_done = true;
                return;
            }
        }
    }
    if (is_future(f) || !change(f, &pol, &base))
        return;
    int k = f->k, a, b;
    float c;
    int j = k;
    bool job = false;
    /* "I started going to a spin class": a new habit. */
    if (S_is(S, k, "going") && class_hobby(f, k + 1)) {
        frame_event(f, EX_EV_PREFERENCE, f->v->main, -1);
        return;
    }
    /* "started kindergarten at Elm Street Elementary", "started grad
     * school at Duke": a school, not a job. */
    {
        int q = S_cls(S, k, LX_POSS) ? k + 1 : k;
        if (S_is(S, q, "grad") || S_is(S, q, "graduate") || S_is(S, q, "high") ||
            S_is(S, q, "middle") || S_is(S, q, "law") || S_is(S, q, "medical"))
            q++;
        if ((S_is(S, q, "kindergarten") || S_is(S, q, "preschool") ||
             S_is(S, q, "school") || S_is(S, q, "college") || S_is(S, q, "university") ||
             S_is(S, q, "uni")) &&
            S_is(S, q + 1, "at")) {
            int e = emit_org(f, q + 2, "education.school", pol, fbase(f, 0.85f));
            frame_event(f, EX_EV_MILESTONE, f->v->main, e > q + 2 ? e : q + 1);
            return;
        }
    }
    if (S_cls(S, j, LX_ART | LX_POSS)) {
        int q = j + 1;
        while (S_is(S, q, "new") || S_is(S, q, "first") || S_is(S, q, "full-time") ||
               S_is(S, q, "part-time") || S_is(S, q, "dream"))
            q++;
        if (S_is(S, q, "job") || S_is(S, q, "position") || S_is(S, q, "role") ||
            S_is(S, q, "gig")) {
            job = true;
            j = q + 1;
        }
    } else if (S_is(S, j, "working") || S_is(S, j, "teaching")) {
        job = true;
        j++;
    } else if (S_is(S, j, "at")) {
        job = true;
    }
    if (job) {
        int end = j;
        for (int g = 0; g < 3 && j < S->n; g++) {
            if (S_is(S, j, "at") || S_is(S, j, "for") || S_is(S, j, "with")) {
                int e = emit_org(f, j + 1, "work.employer", pol, base);
                if (e == j + 1)
                    break;
                j = end = e;
            } else if (S_is(S, j, "as") && title_at(S, j + 1, true, &a, &b, &c)) {
                emit_title(f, a, b, pol, fbase(f, c));
                j = end = b;
            } else {
                break;
            }
        }
        frame_event(f, EX_EV_MILESTONE, f->v->main, end);
        return;
    }
    /* "I started learning the cello", "started going to judo classes":
     * the activity is the object. */
    if ((S_is(S, k, "learning") || S_is(S, k, "playing") || S_is(S, k, "doing") ||
         (S_is(S, k, "going") && S_is(S, k + 1, "to"))) &&
        !f->v->neg) {
        int a0 = skip_det(S, S_is(S, k, "going") ? k + 2 : k + 1);
        int e0 = np_end(x, S, a0, 3, 0);
        int h = e0;
        if (e0 > a0 + 1 && (S_is(S, e0 - 1, "classes") || S_is(S, e0 - 1, "lessons") ||
                            S_is(S, e0 - 1, "class")))
            h = e0 - 1;
        bool tail = clause_end_tok(S, e0) || S_cls(S, e0, LX_CONJ | LX_SUB | LX_TIME | LX_FREQ) ||
                    in_time(x, S, e0);
        if (h > a0 && tail && !S_cls(S, a0, LX_PRONOBJ | LX_LANG) && S_word(S, a0) &&
            !(S->t[a0].flags & TF_CAP) && (h < e0 || !S_is(S, k, "going"))) {
            add_fact(x, S, f->sj, "hobby", toks_str(x, S, a0, h), NULL, pol,
                     fbase(f, 0.7f), a0, h, EX_ENT_CONCEPT);
            frame_event(f, EX_EV_PREFERENCE, f->v->main, e0);
            return;
        }
    }
    /* "I started running": a new hobby. */
    const tok *t = k < S->n ? &S->t[k] : NULL;
    if (t && ((tform(t) & LXF_ING) || ing_form(S, k)) &&
        ((tcls(t) & (LX_ACTIVITY | LX_HOBBYV)) || !t->lx)) {
        int e = k + 1;
        if (clause_end_tok(S, e) ||
            S_cls(S, e, LX_CONJ | LX_SUB | LX_ADV | LX_TIME | LX_FREQ) ||
            S_is(S, e, "every") || in_time(x, S, e)) {
            add_fact(x, S, f->sj, "hobby", toks_str(x, S, k, e), NULL, pol,
                     fbase(f, 0.7f), k, e, EX_ENT_CONCEPT);
            frame_event(f, EX_EV_PREFERENCE, f->v->main, e);
        }
    }
}

static void m_join(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    ex_polarity pol;
    float base = 0.8f;
    if (is_future(f) || !change(f, &pol, &base))
        return;
    int k = f->k, a, b;
    if (org_at(S, k, &a, &b)) {
        const tok *h = &S->t[b - 1];
        if (tcls(h) & LX_CLUB) {
            char *o = toks_str(x, S, a, b), *su = subj_str(x, f->sj);
            if (o && su) {
                add_relation(x, su, "member_of", o,
                             eff_conf(S, f->sj, f->sj->pos, base), tspan(S, a, b));
                add_entity(x, o, EX_ENT_ORG, 0.8f, tspan(S, a, b));
            }
            dm_free(o);
            dm_free(su);
            frame_event(f, EX_EV_ACTIVITY, f->v->main, b);
        } else {
            int e = emit_org(f, k, "work.employer", pol, base);
            float c;
            int ta, tb;
            /* "joined Shopify as a staff engineer" */
            if (e > k && S_is(S, e, "as") && title_at(S, e + 1, true, &ta, &tb, &c)) {
                emit_title(f, ta, tb, pol, fbase(f, c));
                b = tb;
            }
            frame_event(f, EX_EV_MILESTONE, f->v->main, b);
        }
        return;
    }
    a = skip_det(S, k);
    b = np_end(x, S, a, 5, NP_OF);
    if (b > a && (tcls(&S->t[b - 1]) & LX_CLUB) && !vague_np(S, a, b)) {
        char *o = toks_str(x, S, a, b), *su = subj_str(x, f->sj);
        if (o && su) {
            add_relation(x, su, "member_of", o,
                         eff_conf(S, f->sj, f->sj->pos, 0.7f), tspan(S, a, b));
            add_entity(x, o, EX_ENT_CONCEPT, 0.7f, tspan(S, a, b));
        }
        dm_free(o);
        dm_free(su);
        /* "joined the climbing club", "joined a chess club": the activity
         * the club is for is a hobby. */
        if (b - 1 > a && S_cls(S, b - 2, LX_ACTIVITY) && pol != EX_NEGATED)
            add_fact(x, S, f->sj, "hobby", toks_str(x, S, b - 2, b - 1), NULL, pol,
                     fbase(f, 0.75f), b - 2, b - 1, EX_ENT_CONCEPT);
        frame_event(f, EX_EV_ACTIVITY, f->v->main, b);
    }
}

/* quit_food -- "(eating) meat" at i as a negated diet; true if read. */
static bool quit_food(fr *f, int i, ex_event_type ev)
{
    sent *S = f->S;
    if (S_is(S, i, "eating") || S_is(S, i, "consuming"))
        i++;
    int a = skip_det(S, i);
    int b = np_end(f->x, S, a, 4, 0);
    if (b <= a || !(tcls(&S->t[b - 1]) & LX_FOOD))
        return false;
    add_fact(f->x, S, f->sj, "diet", toks_str(f->x, S, a, b), NULL, EX_NEGATED,
             fbase(f, 0.85f), a, b, EX_ENT_CONCEPT);
    frame_event(f, ev, f->v->main, b);
    return true;
}

/* slot_named -- "my goal", "our plan", "my fitness goal" at k: the slot a
 * possessive phrase names instead of a value of it ("goal" or "plan"),
 * with *end after the head; NULL when the phrase names none.  Up to two
 * modifiers may stand before the head ("my weight loss goal"); "goal
 * weight" is the goal too ("I reached my goal weight"). */
static const char *slot_named(xctx *x, sent *S, int k, bool plan_too, int *end)
{
    if (!S_cls(S, k, LX_POSS) || S_is(S, k, "your"))
        return NULL;
    int h = k + 1;
    while (h < k + 3 && S_word(S, h) && !S_cap(S, h) &&
           !S_is(S, h, "goal") && !S_is(S, h, "plan") &&
           !S_cls(S, h, LX_POSS | LX_ART | LX_PREP | LX_CONJ | LX_PRONOBJ) &&
           !tverb(&S->t[h]))
        h++;
    const char *slot = S_is(S, h, "goal") ? "goal" : plan_too && S_is(S, h, "plan") ? "plan"
                                                                                     : NULL;
    if (!slot)
        return NULL;
    int e = h + 1;
    if (!strcmp(slot, "goal") && S_is(S, e, "weight"))
        e++;
    /* "my goal of ...", "my plan to ..." name the goal as well; what
     * follows is its value, which the slot name stands for here.  A noun
     * after the head makes another thing ("my goal post"). */
    if (!clause_end_tok(S, e) && !S_is(S, e, "to") &&
        !S_cls(S, e, LX_PREP | LX_SUB | LX_CONJ | LX_TIME | LX_ADV) && !in_time(x, S, e))
        return NULL;
    *end = e;
    return slot;
}

/* slot_ended -- the slot named at k (slot_named) given up or carried
 * out: a negated fact whose value is the slot's name ("my goal"), which
 * the fact set reads as the end of the slot's one current value. */
static bool slot_ended(fr *f, int k, bool plan_too)
{
    sent *S = f->S;
    xctx *x = f->x;
    int e;
    const char *slot = slot_named(x, S, k, plan_too, &e);
    if (!slot)
        return false;
    /* The fact set reads "my" and "the" before a slot's name alone. */
    char val[16];
    snprintf(val, sizeof val, "%s %s", S_is(S, k, "my") ? "my" : "the", slot);
    add_fact(x, S, f->sj, slot, xstrdup(x, val), NULL, EX_NEGATED, fbase(f, 0.8f), k, e,
             (ex_entity_type)-1);
    return true;
}

/* job_named -- "quit my job" with no organisation named: the employer
 * slot named by the job ("my job", negated), for the speaker only (a
 * household's "our jobs" are two). */
static void job_named(fr *f, int k)
{
    sent *S = f->S;
    if (f->sj->kind != SJ_SPEAKER || !S_is(S, k, "my"))
        return;
    add_fact(f->x, S, f->sj, "work.employer", xstrdup(f->x, "my job"), NULL, EX_NEGATED,
             fbase(f, 0.8f), k, k + 2, (ex_entity_type)-1);
}

/* m_attain -- "I hit my goal", "finally reached my goal weight", "we
 * met our goal": a goal carried out is no longer a goal.  Only a done
 * deed counts: "almost hit my goal" and "I'll reach my goal" do not. */
static void m_attain(fr *f)
{
    sent *S = f->S;
    const vg *v = f->v;
    if (v->neg || v->future || v->modal || v->used_to || v->progressive)
        return;
    if (!(v->past || v->perfect || (v->form & LXF_PAST)))
        return;
    for (int q = f->sj->pos + 1; q < f->k && q < S->n; q++)
        if (S_is(S, q, "almost") || S_is(S, q, "nearly") || S_is(S, q, "never") ||
            S_is(S, q, "hardly"))
            return;
    if (slot_ended(f, f->k, false))
        frame_event(f, EX_EV_MILESTONE, v->main, -1);
}

/* m_drop -- "I dropped my plan", "we scrapped our plan", "abandoned my
 * goal": the plan or goal named is off. */
static void m_drop(fr *f)
{
    const vg *v = f->v;
    if (v->neg || v->future || v->modal || v->used_to)
        return;
    if (slot_ended(f, f->k, true))
        frame_event(f, EX_EV_MILESTONE, v->main, -1);
}

static void m_quit(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    const vg *v = f->v;
    if (v->neg || v->future || v->modal)
        return;
    int k = f->k, a, b;
    int vb = v->verb;
    if (vb == LV_LOSE) {
        if (!(v->past || v->perfect) || !S_cls(S, k, LX_POSS) ||
            !S_is(S, k + 1, "job"))
            return;
        int e = k + 2;
        if (S_is(S, e, "at") || S_is(S, e, "with"))
            e = emit_org(f, e + 1, "work.employer", EX_NEGATED, fbase(f, 0.85f));
        else
            job_named(f, k);
        frame_event(f, EX_EV_MILESTONE, v->main, e);
        return;
    }
    /* "I quit smoking 6 months ago": a habit of health given up. */
    if (!v->progressive && (vb == LV_QUIT || vb == LV_GIVE || vb == LV_STOP)) {
        int d = vb == LV_GIVE && S_is(S, k, "up") ? k + 1 : k;
        if ((S_is(S, d, "smoking") || S_is(S, d, "vaping") || S_is(S, d, "drinking")) &&
            (clause_end_tok(S, d + 1) || in_time(x, S, d + 1) ||
             S_cls(S, d + 1, LX_TIME | LX_CONJ | LX_SUB | LX_NUM) ||
             (d + 1 < S->n && S->t[d + 1].type == T_NUM))) {
            add_fact(x, S, f->sj, "health", toks_str(x, S, d, d + 1), NULL, EX_NEGATED,
                     fbase(f, 0.8f), d, d + 1, EX_ENT_CONCEPT);
            frame_event(f, EX_EV_MILESTONE, v->main, d + 1);
            return;
        }
    }
    /* "I quit keto", "gave up veganism": a diet dropped; "I gave up golf":
     * a pastime dropped. */
    if (!v->progressive && (vb == LV_QUIT || vb == LV_GIVE || vb == LV_STOP)) {
        int k2 = vb == LV_GIVE && S_is(S, k, "up") ? k + 1 : k;
        int d = skip_det(S, S_is(S, k2, "being") ? k2 + 1 : k2);
        int e = d + (S_is(S, d + 1, "diet") ? 2 : 1);
        if (S_cls(S, d, LX_DIET) && !S_cap(S, d) &&
            (clause_end_tok(S, e) || in_time(x, S, e) ||
             S_cls(S, e, LX_TIME | LX_CONJ | LX_ADV | LX_PREP))) {
            add_fact(x, S, f->sj, "diet", xstrdup(x, S->t[d].w), NULL, EX_NEGATED,
                     fbase(f, 0.85f), d, d + 1, EX_ENT_CONCEPT);
            frame_event(f, EX_EV_PREFERENCE, v->main, e);
            return;
        }
        /* "I quit playing tennis", "stopped doing yoga" */
        if ((S_is(S, d, "playing") || S_is(S, d, "doing")) && d == k2 &&
            S_cls(S, d + 1, LX_ACTIVITY) && !S_cap(S, d + 1))
            d = k2 = d + 1;
        if (S_cls(S, d, LX_ACTIVITY) && d == k2 && !S_cap(S, d) &&
            (clause_end_tok(S, d + 1) || in_time(x, S, d + 1) ||
             S_cls(S, d + 1, LX_TIME | LX_CONJ | LX_SUB))) {
            add_fact(x, S, f->sj, "hobby", toks_str(x, S, d, d + 1), NULL, EX_NEGATED,
                     fbase(f, 0.8f), d, d + 1, EX_ENT_CONCEPT);
            frame_event(f, EX_EV_PREFERENCE, v->main, d + 1);
            return;
        }
    }
    /* "gave up soda": a change of habit even when the thing is no food
     * the lexicon knows. */
    if (vb == LV_GIVE) {
        if (!S_is(S, k, "up"))
            return;
        k++;
        /* "I gave up on my goal", "gave up my plan": the slot named. */
        if (slot_ended(f, S_is(S, k, "on") ? k + 1 : k, true)) {
            frame_event(f, EX_EV_MILESTONE, v->main, -1);
            return;
        }
    }
    if (vb == LV_STOP) {
        if (!S_is(S, k, "eating") && !S_is(S, k, "consuming"))
            return;
    }
    if (quit_food(f, k, EX_EV_PREFERENCE))
        return;
    if (vb == LV_GIVE && (v->past || v->perfect) && S_word(S, k) &&
        !S_cls(S, k, LX_PRONOBJ) && !S_is(S, k, "on"))
        frame_event(f, EX_EV_PREFERENCE, v->main, -1);
    if (vb == LV_STOP || vb == LV_GIVE)
        return;
    /* "quit my job (at Acme)"; without the organisation, the job named
     * instead ("my job"), which ends the one employer held. */
    if (S_cls(S, k, LX_POSS) && (S_is(S, k + 1, "job") || S_is(S, k + 1, "position"))) {
        int e = k + 2;
        if (S_is(S, e, "at") || S_is(S, e, "with"))
            e = emit_org(f, e + 1, "work.employer", EX_NEGATED, fbase(f, 0.85f));
        else
            job_named(f, k);
        frame_event(f, EX_EV_MILESTONE, v->main, e);
        return;
    }
    if (!org_at(S, k, &a, &b))
        return;
    /* "left" needs an organisation-looking name; "quit" any name. */
    if (vb == LV_LEAVE) {
        bool orgish = (tcls(&S->t[b - 1]) & LX_ORGSUF) ||
                      (tcls(&S->t[a]) & LX_ORGNAME);
        char *o = toks_str(x, S, a, b);
        if (o && org_name(x, o) != o)
            orgish = true;
        dm_free(o);
        if (!orgish)
            return;
    } else {
        place p;
        int c, d;
        if (place_at(x, S, a, &c, &d, &p) && p.gp)
            return;
    }
    if (S_is(S, b, "for") && org_at(S, b + 1, &a, &b)) {
        /* "I left Acme for Initech" */
        char *prev = toks_str(x, S, k, b);
        int c2, d2;
        org_at(S, k, &c2, &d2);
        dm_free(prev);
        prev = toks_str(x, S, c2, d2);
        add_fact(x, S, f->sj, "work.employer", toks_str(x, S, a, b), prev,
                 EX_ASSERTED, fbase(f, 0.8f), a, b, EX_ENT_ORG);
    } else {
        emit_org(f, k, "work.employer", EX_NEGATED, fbase(f, 0.85f));
    }
    frame_event(f, EX_EV_MILESTONE, v->main, b);
}

/* pet_named -- the pet named by tokens [a, b): its name is the value. */
static int pet_named(fr *f, int a, int b, ex_polarity pol, float base)
{
    char *nm = toks_str(f->x, f->S, a, b);
    if (!nm)
        return 0;
    add_entity(f->x, nm, EX_ENT_CONCEPT, base, tspan(f->S, a, b));
    add_fact(f->x, f->S, f->sj, "pet", nm, NULL, pol, base, a, b,
             (ex_entity_type)-1);
    return 1;
}

/* pet_at -- "a dog (named Max)", "two cats named X and Y" at i; emits the
 * pet facts and returns the end, or i. */
static int pet_at(fr *f, int i, ex_polarity pol, float base)
{
    sent *S = f->S;
    xctx *x = f->x;
    int j = i;
    if (S_cls(S, j, LX_ART | LX_NUM) || (j < S->n && S->t[j].type == T_NUM))
        j++;
    else
        return i;
    while (S_cls(S, j, LX_KINADJ | LX_MODADJ) && !S_cls(S, j, LX_ANIMAL))
        j++;
    int s = j;
    while (j < S->n && j - s < 3 && S_word(S, j) && !S_cls(S, j, LX_ANIMAL) &&
           !(tcls(&S->t[j]) & (LX_PREP | LX_CONJ | LX_SUB)))
        j++;
    if (!S_cls(S, j, LX_ANIMAL))
        return i;
    /* "a guinea pig" */
    int h = j;
    if (S_is(S, h, "guinea") && S_is(S, h + 1, "pig"))
        h++;
    const char *species = lx_species(S->t[h].lx->data);
    if (!species)
        return i;
    int e = h + 1;
    /* The kind as written when no name is given ("golden retriever",
     * "chickens"); a young animal's word ("puppy", "kitten") gives its
     * species, which is what a profile would show. */
    char animal[64];
    {
        bool young = tis(&S->t[h], "puppy") || tis(&S->t[h], "puppies") ||
                     tis(&S->t[h], "kitten") || tis(&S->t[h], "kittens") ||
                     tis(&S->t[h], "pup") || tis(&S->t[h], "kitty");
        char *kind = young ? NULL : toks_str(x, S, s, h + 1);
        if (young)
            snprintf(animal, sizeof animal, "%s", species);
        else if (kind)
            snprintf(animal, sizeof animal, "%s", kind);
        else
            return i;
        dm_free(kind);
        for (char *p = animal; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p + 32);
    }
    int n_named = 0;
    if (S_is(S, e, "named") || S_is(S, e, "called") ||
        (S_punct(S, e, ',') && S_cap(S, e + 1) &&
         (tcls(&S->t[e + 1]) & ~(uint64_t)LX_FIRSTNAME) == 0)) {
        int q = e + 1;
        for (int g = 0; g < 4; g++) {
            /* Pets are named Buddy, Pepper, Bear: any capitalised word. */
            int ne = q;
            while (ne < S->n && ne - q < 2 && S_cap(S, ne) &&
                   !(tcls(&S->t[ne]) & (LX_SUBJ | LX_PRONOBJ | LX_DAY)))
                ne++;
            if (ne <= q)
                break;
            n_named += pet_named(f, q, ne, pol, base);
            e = ne;
            q = ne;
            if (S_punct(S, q, ','))
                q++;
            if (S_is(S, q, "and"))
                q++;
            else if (q == ne)
                break;
        }
    }
    if (n_named == 0) {
        /* "We got a cat, her name's Miso": the name in the next clause. */
        int q = e;
        if (S_punct(S, q, ','))
            q++;
        if ((S_is(S, q, "her") || S_is(S, q, "his") || S_is(S, q, "its") ||
             S_is(S, q, "their")) && S_is(S, q + 1, "name") &&
            (S_is(S, q + 2, "is") || S_is(S, q + 2, "'s"))) {
            int ne = name_run(S, q + 3);
            if (ne > q + 3) {
                n_named += pet_named(f, q + 3, ne, pol, base);
                e = ne;
            }
        }
    }
    if (n_named == 0)
        add_fact(x, S, f->sj, "pet", xstrdup(x, animal), NULL, pol, base, s, e,
                 (ex_entity_type)-1);
    /* "a pup and a kitty" */
    if (S_is(S, e, "and") && S_cls(S, e + 1, LX_ART | LX_NUM)) {
        int e2 = pet_at(f, e + 1, pol, base);
        if (e2 > e + 1)
            e = e2;
    }
    return e;
}

static void family_names(xctx *x, sent *S, const subj *own, int r, bool ok,
                         int rel_of);

static void m_have(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    const vg *v = f->v;
    int k = f->k, a, b;
    float c;
    if (v->past && !v->perfect) {
        /* "we had a baby" */
        int j = skip_det(S, k);
        if (S_is(S, j, "baby") && !v->neg && !v->modal) {
            /* "had a baby girl named Hana": the child's name */
            int q = j + 1;
            const char *rel = "family.child";
            if (S_is(S, q, "girl") || S_is(S, q, "boy")) {
                rel = S_is(S, q, "girl") ? "family.daughter" : "family.son";
                q++;
            }
            if (S_is(S, q, "named") || S_is(S, q, "called")) {
                int ne = name_run(S, q + 1);
                if (ne > q + 1 && f->sj->kind != SJ_WE) {
                    add_fact(x, S, f->sj, rel, toks_str(x, S, q + 1, ne), NULL,
                             EX_ASSERTED, fbase(f, 0.85f), q + 1, ne, EX_ENT_PERSON);
                    add_person(x, S->t[q + 1].off,
                               S->t[ne - 1].off + S->t[ne - 1].len - S->t[q + 1].off,
                               -1, 0);
                }
            }
            frame_event(f, EX_EV_MILESTONE, v->main, j + 1);
        } else if ((S_is(S, k, "twins") || S_is(S, k, "triplets")) && !v->neg &&
                   !v->modal) {
            frame_event(f, EX_EV_MILESTONE, v->main, k + 1); /* "had twins" */
        }
        return;
    }
    ex_polarity pol;
    float base = 0.9f;
    if (!state(f, &pol, &base))
        return;
    if (S_is(S, k, "got"))
        k++;
    if (pet_at(f, k, pol, base) > k)
        return;
    int j = k;
    if (S_cls(S, j, LX_ART | LX_NUM) || (j < S->n && S->t[j].type == T_NUM)) {
        int q = j + 1;
        while (S_cls(S, q, LX_KINADJ) && !S_cls(S, q, LX_FAMILY))
            q++;
        if (S_cls(S, q, LX_FAMILY)) {
            int rel = S->t[q].lx->data;
            bool partner = tis(&S->t[q], "boyfriend") || tis(&S->t[q], "girlfriend") ||
                           tis(&S->t[q], "partner");
            bool spouse = rel == 0;
            if ((partner || spouse) && S_cls(S, j, LX_ART) && pol != EX_NEGATED)
                add_fact(x, S, f->sj, "relationship",
                         xstrdup(x, spouse ? "married" : "in a relationship"), NULL,
                         pol, fbase(f, spouse ? 0.8f : 0.7f), q, q + 1,
                         (ex_entity_type)-1);
            /* "I have two brothers, Marco and Luca" */
            if (S_punct(S, q + 1, ',') && S_cap(S, q + 2) && pol == EX_ASSERTED &&
                !S_cls(S, q + 2, LX_MONTH | LX_DAY)) {
                family_names(x, S, f->sj, q, true, -1);
                return;
            }
            int e = q + 1;
            if (S_punct(S, e, ','))
                e++;
            if (S_is(S, e, "named") || S_is(S, e, "called")) {
                int ne = name_run(S, e + 1);
                if (ne > e + 1 && rel >= 0 && rel < (int)N_FAMILY) {
                    char slot[40];
                    snprintf(slot, sizeof slot, "family.%s", FAMILY_REL[rel]);
                    add_fact(x, S, f->sj, slot, toks_str(x, S, e + 1, ne), NULL, pol,
                             base, e + 1, ne, EX_ENT_PERSON);
                    add_person(x, S->t[e + 1].off,
                               S->t[ne - 1].off + S->t[ne - 1].len - S->t[e + 1].off,
                               rel, rel_gender(&S->t[q]));
                    /* "a sister named Ann and a brother named Tom" */
                    if (S_is(S, ne, "and") && S_cls(S, ne + 1, LX_ART | LX_NUM)) {
                        fr g = *f;
                        g.k = ne + 1;
                        m_have(&g);
                    }
                }
            }
            return;
        }
    }
    /* degrees: "a degree in nursing", "a master's in biology from LSE" */
    j = skip_det(S, k);
    if (degree_at(f, k, pol, base) > k)
        return;
    /* "a job at X" */
    if (S_is(S, j, "job") || (S_is(S, j, "new") && S_is(S, j + 1, "job"))) {
        int q = S_is(S, j, "new") ? j + 2 : j + 1;
        if (S_is(S, q, "at") || S_is(S, q, "with"))
            emit_org(f, q + 1, "work.employer", pol, fbase(f, 0.8f));
        else if (S_is(S, q, "as") && title_at(S, q + 1, true, &a, &b, &c))
            emit_title(f, a, b, pol, fbase(f, 0.8f));
        return;
    }
    /* health: "asthma", "a peanut allergy", "type 2 diabetes" */
    b = np_end(x, S, j, 5, 0);
    if (b > j) {
        const tok *h = &S->t[b - 1];
        if ((tis(h, "allergy") || tis(h, "allergies")) && b - 1 > j) {
            add_fact(x, S, f->sj, "allergy", toks_str(x, S, j, b - 1), NULL, pol,
                     base, j, b - 1, EX_ENT_CONCEPT);
            return;
        }
        if (tcls(h) & LX_HEALTH) {
            add_fact(x, S, f->sj, "health", toks_str(x, S, j, b), NULL, pol, base,
                     j, b, EX_ENT_CONCEPT);
            return;
        }
    }
}

static void m_own(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    ex_polarity pol;
    float base = 0.85f;
    int vb = f->v->verb;
    bool buy = vb == LV_BUY || vb == LV_ADOPT || vb == LV_RESCUE;
    if (buy ? !change(f, &pol, &base) : !state(f, &pol, &base))
        return;
    int k = f->k;
    int e = pet_at(f, k, pol, vb == LV_OWN ? base : fbase(f, 0.8f));
    if (e > k) {
        if (buy)
            frame_event(f, EX_EV_MILESTONE, f->v->main, e);
        return;
    }
    if (vb == LV_ADOPT || vb == LV_RESCUE || pol == EX_NEGATED)
        return;
    int a = skip_det(S, k);
    while (S_is(S, a, "new") || S_is(S, a, "used") || S_is(S, a, "first"))
        a++;
    int b = np_end(x, S, a, 4, 0);
    if (b <= a || vague_np(S, a, b))
        return;
    const tok *h = &S->t[b - 1];
    bool product = (tcls(h) & LX_BRAND) || (S_cap(S, a) && !(tcls(h) & LX_PERSONWORD));
    if (!(tcls(h) & LX_POSSESSION) && !product)
        return;
    char *o = toks_str(x, S, a, b), *su = subj_str(x, f->sj);
    if (o && su) {
        add_relation(x, su, "owns", o, eff_conf(S, f->sj, f->sj->pos, base),
                     tspan(S, f->sj->pos, b));
        add_entity(x, o, product ? EX_ENT_PRODUCT : EX_ENT_CONCEPT, base,
                   tspan(S, a, b));
    }
    dm_free(o);
    dm_free(su);
    if (buy)
        frame_event(f, (tis(h, "house") || tis(h, "home") || tis(h, "apartment") ||
                        tis(h, "condo"))
                           ? EX_EV_MILESTONE
                           : EX_EV_ACTIVITY,
                    f->v->main, b);
}

/* to_gerund -- "to paint landscapes" at i as "painting landscapes". */
static char *to_gerund(xctx *x, sent *S, int i, int *b)
{
    int j = skip_adv(S, i + 1);
    if (j >= S->n || !tverb(&S->t[j]) || !(tform(&S->t[j]) & LXF_BASE) ||
        weak_verb(tverb(&S->t[j])))
        return NULL;
    int e = vp_end(x, S, j, 6);
    if (e <= j)
        return NULL;
    char g[40];
    gerund(lx_verb_name(tverb(&S->t[j])), g, sizeof g);
    char *rest = e > j + 1 ? toks_str(x, S, j + 1, e) : xstrdup(x, "");
    if (!rest)
        return NULL;
    size_t n = strlen(g) + strlen(rest) + 2;
    char *v = dm_malloc(n);
    if (!v) {
        x->err = DM_ENOMEM;
        dm_free(rest);
        return NULL;
    }
    snprintf(v, n, "%s%s%s", g, rest[0] ? " " : "", rest);
    dm_free(rest);
    *b = e;
    return v;
}

static void m_like(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    const vg *v = f->v;
    int vb = v->verb;
    bool hate = vb == LV_HATE || vb == LV_DISLIKE || vb == LV_DETEST ||
                vb == LV_LOATHE || vb == LV_STAND;
    if (vb == LV_STAND && !(v->can && v->neg))
        return; /* only "can't stand" */
    ex_polarity pol;
    float base = 0.8f;
    if (!state(f, &pol, &base))
        return;
    const char *slot = hate ? "preference.dislikes" : "preference.likes";
    /* "In my free time I like to knit": a hobby. */
    if (!hate && !v->neg)
        for (int q = 0; q + 1 < S->n; q++)
            if ((S_is(S, q, "free") || S_is(S, q, "spare")) && S_is(S, q + 1, "time"))
                slot = "hobby";
    if (vb == LV_STAND) {
        pol = EX_ASSERTED;
    } else if (pol == EX_NEGATED) {
        if (hate)
            return; /* "I don't hate it" says little */
        if (!v->anymore && !v->used_to) {
            if (vb != LV_LIKE && vb != LV_ENJOY)
                return; /* "I don't love it" is not dislike */
            slot = "preference.dislikes";
            pol = EX_ASSERTED;
            base = fbase(f, 0.75f);
        }
    }
    int k = f->k;
    if (S_is(S, k, "to")) {
        int b;
        char *g = to_gerund(x, S, k, &b);
        if (g)
            add_fact(x, S, f->sj, slot, g, NULL, pol, base, k + 1, b,
                     EX_ENT_CONCEPT);
        return;
    }
    /* "I love it when ...", "I like that ..." */
    if (S_cls(S, k, LX_PRONOBJ | LX_POSS | LX_SUBJ) || S_cls(S, k, LX_QWORD))
        return;
    emit_list(f, k, slot, pol, base, EX_ENT_CONCEPT, 0);
    if (v->anymore && pol == EX_NEGATED)
        frame_event(f, EX_EV_PREFERENCE, v->main, -1);
}

static void m_eat(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    const vg *v = f->v;
    if (v->future || v->modal || v->past)
        return;
    int k = f->k;
    if (v->neg) {
        if (v->used_to)
            return;
        /* "I don't eat meat (anymore)": a state, no change is told, so
         * no event. */
        f->event_done = true;
        quit_food(f, k, EX_EV_PREFERENCE);
        return;
    }
    /* "I eat vegan", "I only eat plant-based", "I only eat halal meat"
     * (a diet that names the food it allows) */
    bool only = false;
    for (int q = f->sj->pos; q < v->main; q++)
        only |= S_is(S, q, "only") || S_is(S, q, "strictly") || S_is(S, q, "always");
    bool food_after = (S_cls(S, k + 1, LX_FOOD) || S_is(S, k + 1, "food")) && only &&
                      !S_cls(S, k + 2, LX_FOOD) &&
                      (clause_end_tok(S, k + 2) || S_cls(S, k + 2, LX_CONJ | LX_ADV | LX_PREP));
    if (S_cls(S, k, LX_DIET) && (clause_end_tok(S, k + 1) || food_after ||
                                 S_cls(S, k + 1, LX_CONJ | LX_NPSTOP | LX_ADV)))
        add_fact(x, S, f->sj, "diet", xstrdup(x, S->t[k].w), NULL,
                 v->corr ? EX_CORRECTION : EX_ASSERTED, fbase(f, 0.85f), k, k + 1,
                 EX_ENT_CONCEPT);
}

static void m_speak(fr *f)
{
    ex_polarity pol;
    float base = 0.9f;
    if (!state(f, &pol, &base))
        return;
    if (f->v->progressive)
        return;
    sent *S = f->S;
    int k = f->k;
    while (S_is(S, k, "a") || S_is(S, k, "little") || S_is(S, k, "some") ||
           S_is(S, k, "any") || S_is(S, k, "only") || S_is(S, k, "mostly") ||
           S_is(S, k, "fluent") || S_is(S, k, "basic") || S_is(S, k, "bit") ||
           S_is(S, k, "of") || S_is(S, k, "conversational") ||
           S_is(S, k, "decent") || S_is(S, k, "broken"))
        k++;
    if (!S_cls(S, k, LX_LANG) && !(S_is(S, k, "sign") && S_is(S, k + 1, "language")))
        return;
    emit_list(f, k, "language", pol, base, EX_ENT_CONCEPT, LX_LANG | LX_DEGREE);
}

/* skill_value -- the verb phrase at j as a skill, its verb as a gerund
 * ("drive stick" -> "driving stick", "swim" -> "swimming"); "code in
 * Python" gives the language, handled by the caller. */
static char *skill_value(xctx *x, sent *S, int j, int *b)
{
    char *vp = vp_value(x, S, j, b);
    if (!vp || !tverb(&S->t[j]))
        return vp;
    const char *lemma = lx_verb_name(tverb(&S->t[j]));
    size_t ln = strlen(lemma);
    if (strncmp(vp, lemma, ln) != 0 || (vp[ln] != 0 && vp[ln] != ' '))
        return vp;
    char g[40];
    gerund(lemma, g, sizeof g);
    size_t n = strlen(g) + strlen(vp + ln) + 1;
    char *out = dm_malloc(n);
    if (!out) {
        x->err = DM_ENOMEM;
        dm_free(vp);
        return NULL;
    }
    snprintf(out, n, "%s%s", g, vp + ln);
    dm_free(vp);
    return out;
}

/* m_can -- "I can swim", "I can't cook", "I know how to knit". */
static void m_can(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    const vg *v = f->v;
    if (v->past || v->future || v->used_to)
        return;
    /* "I can get by in Greek": some command of the language */
    if (v->verb == LV_GET && S_is(S, v->main + 1, "by") && S_is(S, v->main + 2, "in") &&
        S_cls(S, v->main + 3, LX_LANG)) {
        emit_list(f, v->main + 3, "language", v->neg ? EX_NEGATED : EX_ASSERTED,
                  fbase(f, 0.8f), EX_ENT_CONCEPT, LX_LANG);
        return;
    }
    if (!(tcls(&S->t[v->main]) & LX_SKILLV) || (tform(&S->t[v->main]) & LXF_ING))
        return;
    if (v->verb == LV_SPEAK) {
        m_speak(f);
        return;
    }
    int b;
    /* "I can code in Python and a bit of Rust" */
    if (S_is(S, v->main + 1, "in") && (S_cap(S, v->main + 2) || S_cls(S, v->main + 2, LX_LANG))) {
        emit_list(f, v->main + 2, "skill", v->neg ? EX_NEGATED : EX_ASSERTED,
                  fbase(f, 0.8f), EX_ENT_CONCEPT, 0);
        return;
    }
    char *val = skill_value(x, S, v->main, &b);
    if (!val)
        return;
    /* "I can drive you there": an offer, not a skill. */
    for (int q = v->main + 1; q < b; q++)
        if (S_cls(S, q, LX_PRONOBJ | LX_SUBJ) && !S_is(S, q, "it")) {
            dm_free(val);
            return;
        }
    add_fact(x, S, f->sj, "skill", val, NULL, v->neg ? EX_NEGATED : EX_ASSERTED,
             fbase(f, 0.8f), v->main, b, (ex_entity_type)-1);
}

static void m_know(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    ex_polarity pol;
    float base = 0.85f;
    if (!state(f, &pol, &base))
        return;
    int k = f->k;
    if (S_is(S, k, "how") && S_is(S, k + 1, "to")) {
        int j = skip_adv(S, k + 2), b;
        if (j < S->n && S->t[j].type == T_WORD &&
            ((tverb(&S->t[j]) && (tform(&S->t[j]) & LXF_BASE)) ||
             (tcls(&S->t[j]) & LX_SKILLV) || !S->t[j].lx)) {
            char *val = vp_value(x, S, j, &b);
            if (val)
                add_fact(x, S, f->sj, "skill", val, NULL, pol, base, j, b,
                         (ex_entity_type)-1);
        }
        return;
    }
    if (S_cls(S, k, LX_LANG))
        emit_list(f, k, "language", pol, fbase(f, 0.8f), EX_ENT_CONCEPT, LX_LANG);
}

/* habitual -- the present simple, used for hobbies ("I paint", "I play
 * guitar"), not "I'm playing" or "I played". */
static bool habitual(const fr *f)
{
    const vg *v = f->v;
    /* "I've been playing chess since ...": a habit that goes on. */
    if (v->perfect && v->progressive && !v->past && !v->neg && !v->modal)
        return true;
    return !v->past && !v->future && !v->modal && !v->progressive &&
           !v->used_to && !v->perfect;
}

/* hobby_tail -- after an activity verb: the clause ends, or says how often
 * or when ("I paint on weekends", "I run every morning", "a lot"). */
static bool hobby_tail(xctx *x, sent *S, int k)
{
    k = skip_adv(S, k);
    if (clause_end_tok(S, k) || S_cls(S, k, LX_CONJ | LX_FREQ | LX_SUB))
        return true;
    if (S_is(S, k, "a") && S_is(S, k + 1, "lot"))
        return true;
    /* "three times a week", "4 days a week" */
    if ((S_cls(S, k, LX_NUM) || (k < S->n && S->t[k].type == T_NUM)) &&
        (S_is(S, k + 1, "times") || S_is(S, k + 1, "days") || S_is(S, k + 1, "nights") ||
         S_is(S, k + 1, "mornings")))
        return true;
    if (S_is(S, k, "for") && (S_is(S, k + 1, "fun") || S_is(S, k + 1, "a")))
        return true;
    if ((S_is(S, k, "in") || S_is(S, k, "during")) && S_is(S, k + 1, "my"))
        return true;
    if (S_is(S, k, "on") && (S_is(S, k + 1, "weekends") || S_is(S, k + 1, "the") ||
                             S_cls(S, k + 1, LX_DAY)))
        return true;
    if ((S_is(S, k, "most") || S_is(S, k, "every") || S_is(S, k, "each")) &&
        S_word(S, k + 1))
        return true;
    if (S_is(S, k, "with") || S_is(S, k, "professionally") ||
        S_is(S, k, "competitively") || S_is(S, k, "twice") ||
        S_is(S, k, "once"))
        return true;
    return in_time(x, S, k);
}

static void m_play(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    if (!habitual(f))
        return;
    int k = f->k;
    if (S_is(S, k, "with") || S_is(S, k, "it") || S_is(S, k, "around") ||
        S_is(S, k, "along"))
        return;
    int a = skip_det(S, k);
    if (S_is(S, a, "lot") && S_is(S, a + 1, "of"))
        a = skip_det(S, a + 2);
    int b = np_end(x, S, a, 4, 0);
    if (b <= a || vague_np(S, a, b) || S_cap(S, a))
        return;
    bool act = false;
    for (int q = a; q < b; q++)
        act |= (tcls(&S->t[q]) & LX_ACTIVITY) != 0;
    ex_polarity pol = f->v->neg ? EX_NEGATED : f->v->corr ? EX_CORRECTION : EX_ASSERTED;
    add_fact(x, S, f->sj, "hobby", toks_str(x, S, a, b), NULL, pol,
             fbase(f, act ? 0.9f : 0.75f), a, b, EX_ENT_CONCEPT);
    /* "I play tennis and golf": a second game, not a verb of its own. */
    for (int q = b; q + 1 < S->n && (S_is(S, q, "and") || S_punct(S, q, ',')) &&
                    S_cls(S, q + 1, LX_ACTIVITY) && !S_cap(S, q + 1) &&
                    !S_cls(S, q + 2, LX_ART | LX_POSS | LX_DET);
         q += 2) {
        add_fact(x, S, f->sj, "hobby", toks_str(x, S, q + 1, q + 2), NULL, pol,
                 fbase(f, 0.9f), q + 1, q + 2, EX_ENT_CONCEPT);
        if (q + 2 > S->consumed)
            S->consumed = q + 2;
    }
}

static void m_do(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    if (!f->v->future && !f->v->modal && !f->v->neg && degree_at(f, f->k,
        EX_ASSERTED, fbase(f, 0.85f)) > f->k)
        return;
    /* "I do intermittent fasting", "I've been doing keto" */
    if (!f->v->past && !f->v->future && !f->v->modal && !f->v->used_to) {
        int a = skip_det(S, f->k);
        int b = np_end(x, S, a, 3, 0);
        if (b > a && b - a <= 2 && S_cls(S, b - 1, LX_DIET)) {
            add_fact(x, S, f->sj, "diet", toks_str(x, S, a, b), NULL,
                     f->v->neg ? EX_NEGATED : EX_ASSERTED, fbase(f, 0.85f), a, b,
                     EX_ENT_CONCEPT);
            return;
        }
    }
    if (!habitual(f))
        return;
    int a = skip_det(S, f->k);
    int b = np_end(x, S, a, 3, 0);
    if (b <= a || !(tcls(&S->t[b - 1]) & LX_ACTIVITY))
        return;
    add_fact(x, S, f->sj, "hobby", toks_str(x, S, a, b), NULL,
             f->v->neg ? EX_NEGATED : EX_ASSERTED, fbase(f, 0.85f), a, b,
             EX_ENT_CONCEPT);
}

/* m_hobby_verb -- "I paint", "I knit on weekends": a hobby, as a gerund. */
static void m_hobby_verb(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    bool ongoing = f->v->perfect && f->v->progressive && !f->v->past;
    if ((!habitual(f) && !ongoing) || f->v->neg)
        return;
    int nx = f->v->next;
    /* "I run 5k", "I swim 20 laps": a measure of the activity */
    if (nx < S->n && (S->t[nx].type == T_NUM || (S_word(S, nx) && S->t[nx].w[0] >= '0' &&
                                                 S->t[nx].w[0] <= '9'))) {
        nx++;
        /* "40 laps" */
        if (S_word(S, nx) && !S->t[nx].lx && !(S->t[nx].flags & TF_CAP))
            nx++;
    }
    if (!hobby_tail(x, S, nx))
        return;
    char g[40];
    gerund(lx_verb_name(f->v->verb), g, sizeof g);
    add_fact(x, S, f->sj, "hobby", xstrdup(x, g), NULL,
             f->v->corr ? EX_CORRECTION : EX_ASSERTED, fbase(f, 0.75f), f->v->main,
             f->v->main + 1, EX_ENT_CONCEPT);
}

static void m_want(fr *f)
{
    const vg *v = f->v;
    if (v->past || v->future || v->neg || v->used_to)
        return;
    int vb = v->verb;
    if (vb == LV_PLAN) {
        if (S_cls(f->S, f->k, LX_ART) && (f->v->progressive || !f->v->past)) {
            /* "I'm planning a trip to Italy in June" */
            int a = f->k + 1;
            int b = vp_end(f->x, f->S, a, 8);
            if (b > a && !vague_np(f->S, a, b) &&
                !S_cls(f->S, b - 1, LX_DET | LX_NUM)) {
                add_fact(f->x, f->S, f->sj, "plan", toks_str(f->x, f->S, a, b),
                         NULL, EX_ASSERTED, 0.8f, a, b, (ex_entity_type)-1);
                add_event(f->x, f->S, EX_EV_PLAN, toks_str(f->x, f->S, a, b), 0.7f,
                          a, b, f->sj);
                f->event_done = true;
            }
            return;
        }
        if (S_is(f->S, f->k, "on")) {
            int j = f->k + 1;
            if (S_word(f->S, j) && (tform(&f->S->t[j]) & LXF_ING)) {
                int b;
                char *val = vp_value(f->x, f->S, j, &b);
                if (val && b - j >= 2) {
                    add_fact(f->x, f->S, f->sj, "plan", val, NULL, EX_ASSERTED,
                             0.85f, j, b, (ex_entity_type)-1);
                    add_event(f->x, f->S, EX_EV_PLAN, vp_value(f->x, f->S, j, &b),
                              0.7f, j, b, f->sj);
                    f->event_done = true;
                } else {
                    dm_free(val);
                }
            }
            return;
        }
        emit_goal(f, f->k, "plan", 0.85f);
        return;
    }
    if (vb == LV_TRY && !v->progressive)
        return;
    if (S_is(f->S, f->k, "to") && S_is(f->S, f->k + 1, "be") &&
        S_cls(f->S, f->k + 2, LX_ART) && vb == LV_WANT) {
        emit_goal(f, f->k, "goal", 0.85f);
        return;
    }
    emit_goal(f, f->k, "goal",
              vb == LV_WANT ? 0.85f : vb == LV_HOPE ? 0.6f : 0.75f);
}

static void m_turn(fr *f)
{
    ex_polarity pol;
    float base = 0.9f;
    const vg *v = f->v;
    if (!v->past && !v->perfect && !v->neg && !v->modal) {
        /* "Grandpa turns 90 on Sunday", "I'm turning 25 tomorrow": a
         * birthday to come is a milestone, not yet the age; "turning 31
         * today" is the age now. */
        int b0;
        if (age_at(f->S, f->k, &b0) <= 0)
            return;
        const timex *tx = sent_time(f->x, f->S);
        bool today = tx->kind != TIMEX_WINDOW ||
                     (tx->from_us <= f->x->day_from + DAY_US / 2 &&
                      tx->to_us <= f->x->day_from + DAY_US + DAY_US / 2 &&
                      tx->to_us > f->x->day_from);
        if (!today || v->future) {
            if (tx->kind == TIMEX_WINDOW) {
                add_event(f->x, f->S, EX_EV_MILESTONE,
                          toks_str(f->x, f->S, v->main, b0), 0.7f, v->main, b0, f->sj);
                if (f->x->out->n_events > 0) {
                    ex_event *e = &f->x->out->events[f->x->out->n_events - 1];
                    plan_window(f->x, f->S, &e->from_us, &e->to_us);
                }
            }
            f->event_done = true;
            return;
        }
        if (!v->progressive && tx->kind != TIMEX_WINDOW)
            return; /* "he turns 90" with no time: nothing to say */
        char buf[16];
        snprintf(buf, sizeof buf, "%d", age_at(f->S, f->k, &b0));
        add_fact(f->x, f->S, f->sj, "age", xstrdup(f->x, buf), NULL, EX_ASSERTED,
                 fbase(f, 0.85f), f->k, b0, (ex_entity_type)-1);
        frame_event(f, EX_EV_MILESTONE, v->main, f->k + 1);
        return;
    }
    if (is_future(f) || !change(f, &pol, &base))
        return;
    int b;
    int age = age_at(f->S, f->k, &b);
    if (age <= 0)
        return;
    char buf[16];
    snprintf(buf, sizeof buf, "%d", age);
    add_fact(f->x, f->S, f->sj, "age", xstrdup(f->x, buf), NULL, pol, base, f->k,
             b, (ex_entity_type)-1);
    frame_event(f, EX_EV_MILESTONE, f->v->main, f->k + 1);
}

static void m_marry(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    ex_polarity pol;
    float base = 0.9f;
    int vb = f->v->verb;
    if (vb == LV_DATE) {
        if (!f->v->progressive || !state(f, &pol, &base) || pol == EX_NEGATED)
            return;
        add_fact(x, S, f->sj, "relationship", xstrdup(x, "in a relationship"),
                 NULL, pol, fbase(f, 0.8f), f->v->main, f->v->main + 1,
                 (ex_entity_type)-1);
        int e = name_run(S, f->k);
        if (e > f->k)
            add_fact(x, S, f->sj, "family.partner", toks_str(x, S, f->k, e), NULL,
                     pol, fbase(f, 0.8f), f->k, e, EX_ENT_PERSON);
        return;
    }
    if (is_future(f) || !change(f, &pol, &base))
        return;
    add_fact(x, S, f->sj, "relationship",
             xstrdup(x, vb == LV_DIVORCE ? "divorced" : "married"), NULL, pol,
             base, f->v->main, f->v->main + 1, (ex_entity_type)-1);
    int e = name_run(S, f->k);
    if (e > f->k && vb == LV_MARRY)
        add_fact(x, S, f->sj, "family.spouse", toks_str(x, S, f->k, e), NULL, pol,
                 base, f->k, e, EX_ENT_PERSON);
    frame_event(f, EX_EV_MILESTONE, f->v->main, e > f->k ? e : f->k);
}

static void m_injury(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    ex_polarity pol;
    float base = 0.85f;
    if (!change(f, &pol, &base) || !(f->v->past || f->v->perfect))
        return;
    int k = f->k;
    if (f->v->verb == LV_BREAK && S_is(S, k, "up") && f->sj->kind == SJ_SPEAKER) {
        /* "Matt and I broke up", "I broke up with Matt": no longer a
         * partner. */
        int n = -1, p = f->sj->pos;
        if (S_is(S, k + 1, "with") && S_cap(S, k + 2))
            n = k + 2;
        else if (p >= 2 && S_is(S, p - 1, "and") && S_cap(S, p - 2) &&
                 !S_is(S, p - 3, "'s"))
            n = p - 2;
        int e = n >= 0 ? name_run(S, n) : n;
        if (n >= 0 && e > n && !speaker_tok(x, S, n) && !S_cls(S, n, LX_MONTH | LX_DAY))
            add_fact(x, S, f->sj, "family.partner", toks_str(x, S, n, e), NULL,
                     EX_NEGATED, fbase(f, 0.8f), n, e, EX_ENT_PERSON);
        return;
    }
    if (!S_cls(S, k, LX_POSS) || !S_cls(S, k + 1, LX_BODY))
        return;
    const char *adj = f->v->verb == LV_BREAK    ? "broken"
                      : f->v->verb == LV_SPRAIN ? "sprained"
                      : f->v->verb == LV_TEAR   ? "torn"
                                                : "injured";
    char buf[64];
    snprintf(buf, sizeof buf, "%s %s", adj, S->t[k + 1].w);
    if (S->t[k + 1].flags & TF_UPPER)
        snprintf(buf, sizeof buf, "%s %.*s", adj, (int)S->t[k + 1].len,
                 x->text + S->t[k + 1].off);
    add_fact(x, S, f->sj, "health", xstrdup(x, buf), NULL, pol, base, k, k + 2,
             EX_ENT_CONCEPT);
    frame_event(f, EX_EV_ACTIVITY, f->v->main, k + 2);
}

static void m_misc_state(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    ex_polarity pol;
    float base = 0.85f;
    int k = f->k, vb = f->v->verb;
    if (!state(f, &pol, &base))
        return;
    if (vb == LV_SUFFER && (S_is(S, k, "from") ||
                            (S_is(S, k, "with") && S_cls(S, np_end(x, S, k + 1, 4, 0) - 1,
                                                         LX_HEALTH)))) {
        emit_list(f, k + 1, "health", pol, base, EX_ENT_CONCEPT, 0);
    } else if (vb == LV_RECOVER && S_is(S, k, "from") && !f->v->past) {
        /* "recovering from knee surgery" */
        int a = skip_det(S, k + 1), b = np_end(x, S, a, 4, 0);
        if (b > a && !vague_np(S, a, b))
            add_fact(x, S, f->sj, "health", toks_str(x, S, a, b), NULL, pol, 0.8f,
                     a, b, EX_ENT_CONCEPT);
    } else if (vb == LV_IDENTIFY && S_is(S, k, "as") && f->sj->kind == SJ_SPEAKER) {
        int b;
        const char *g = gender_value(S, k + 1, &b, false);
        if (g)
            add_fact(x, S, f->sj, "gender", xstrdup(x, g), NULL, pol, 0.9f, k + 1,
                     b, (ex_entity_type)-1);
    } else if (vb == LV_FOLLOW && S_cls(S, k, LX_ART) && S_cls(S, k + 1, LX_DIET)) {
        add_fact(x, S, f->sj, "diet", xstrdup(x, S->t[k + 1].w), NULL, pol, base,
                 k + 1, k + 2, EX_ENT_CONCEPT);
    } else if (vb == LV_VOLUNTEER && habitual(f) && !f->v->neg) {
        add_fact(x, S, f->sj, "hobby", xstrdup(x, "volunteering"), NULL, pol,
                 fbase(f, 0.7f), f->v->main, f->v->main + 1, EX_ENT_CONCEPT);
    } else if (vb == LV_RESIDE && S_is(S, k, "in")) {
        emit_place(x, S, f->sj, k + 1, false, pol, 0.9f, NULL);
    }
}

/* m_pickup -- "I took up knitting", "I picked up the guitar": a new
 * hobby. */
static void m_pickup(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    ex_polarity pol;
    float base = 0.8f;
    if (!S_is(S, f->k, "up") || !change(f, &pol, &base))
        return;
    int a = skip_det(S, f->k + 1);
    int b = np_end(x, S, a, 3, 0);
    if (b <= a || !(tcls(&S->t[b - 1]) & LX_ACTIVITY))
        return;
    add_fact(x, S, f->sj, "hobby", toks_str(x, S, a, b), NULL, pol, base, a, b,
             EX_ENT_CONCEPT);
    frame_event(f, EX_EV_PREFERENCE, f->v->main, b);
}

static void m_learn(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    ex_polarity pol;
    float base = 0.7f;
    /* "I'm learning to surf", "learning to knit this winter": a pastime
     * taken up; the activity as a gerund is a hobby. */
    if (f->v->progressive && !f->v->past && !f->v->neg && !f->v->modal &&
        S_is(S, f->k, "to") && f->k + 1 < S->n &&
        (tcls(&S->t[f->k + 1]) & LX_HOBBYV) && (tform(&S->t[f->k + 1]) & LXF_BASE) &&
        (clause_end_tok(S, f->k + 2) || in_time(x, S, f->k + 2) ||
         S_cls(S, f->k + 2, LX_CONJ | LX_PREP))) {
        char g[48];
        gerund(lx_verb_name(tverb(&S->t[f->k + 1])), g, sizeof g);
        add_fact(x, S, f->sj, "hobby", xstrdup(x, g), NULL,
                 f->v->corr ? EX_CORRECTION : EX_ASSERTED, fbase(f, 0.7f), f->k + 1,
                 f->k + 2, EX_ENT_CONCEPT);
        return;
    }
    if (!change(f, &pol, &base) || !(f->v->past || f->v->perfect))
        return;
    int k = f->k;
    if (S_is(S, k, "how"))
        k++;
    if (!S_is(S, k, "to"))
        return;
    int j = skip_adv(S, k + 1), b;
    if (j >= S->n || !tverb(&S->t[j]) || weak_verb(tverb(&S->t[j])))
        return;
    char *val = skill_value(x, S, j, &b);
    if (val)
        add_fact(x, S, f->sj, "skill", val, NULL, pol, base, j, b,
                 (ex_entity_type)-1);
}

static int severity(const sent *S, int i);

static void m_get(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    const vg *v = f->v;
    int k = f->k, a, b;
    float c;
    if (v->perfect && !v->past && !S_is(S, k, "promoted") &&
        !S_is(S, k, "married") && !S_is(S, k, "engaged") &&
        !S_is(S, k, "divorced") && !S_is(S, k, "into")) {
        m_have(f); /* "I've got a dog" */
        return;
    }
    ex_polarity pol;
    float base = 0.9f;
    /* "I get migraines", "I get really bad hay fever": a recurring
     * condition, said in the present. */
    if (!v->past && !v->perfect && !v->progressive) {
        int h = severity(S, skip_det(S, k));
        int e = np_end(x, S, h, 3, NP_LIST);
        if (e > h && S_cls(S, e - 1, LX_HEALTH) && state(f, &pol, &base)) {
            /* hay fever is an allergy (to pollen) by its name's usage */
            bool hay = S_is(S, e - 1, "hay fever") ||
                       (S_is(S, e - 2, "hay") && S_is(S, e - 1, "fever"));
            add_fact(x, S, f->sj, hay ? "allergy" : "health", toks_str(x, S, h, e), NULL,
                     pol, fbase(f, 0.8f), h, e, EX_ENT_CONCEPT);
            return;
        }
        base = 0.9f;
    }
    /* "I'm getting into running": a taste forming now. */
    if (S_is(S, k, "into") && v->progressive && !v->past && !v->neg && !v->modal &&
        !v->future && !S_cls(S, k + 1, LX_ART | LX_POSS | LX_DET)) {
        int e = np_end(x, S, k + 1, MAX_VALUE_TOKS, 0);
        if (e > k + 1 && !vague_np(S, k + 1, e)) {
            const tok *h = &S->t[e - 1];
            size_t hl = strlen(h->w);
            bool act = (tcls(h) & LX_ACTIVITY) || (hl > 4 && !strcmp(h->w + hl - 3, "ing"));
            add_fact(x, S, f->sj, act ? "hobby" : "preference.likes",
                     toks_str(x, S, k + 1, e), NULL, v->corr ? EX_CORRECTION : EX_ASSERTED,
                     fbase(f, 0.75f), k + 1, e, EX_ENT_CONCEPT);
        }
        return;
    }
    if (is_future(f) || !change(f, &pol, &base))
        return;
    if (S_is(S, k, "promoted") && S_is(S, k + 1, "to")) {
        if (title_at(S, k + 2, true, &a, &b, &c)) {
            emit_title(f, a, b, pol, fbase(f, c));
            frame_event(f, EX_EV_MILESTONE, v->main, b);
        }
        return;
    }
    if (S_is(S, k, "married") || S_is(S, k, "engaged") || S_is(S, k, "divorced")) {
        add_fact(x, S, f->sj, "relationship", xstrdup(x, S->t[k].w), NULL, pol,
                 base, k, k + 1, (ex_entity_type)-1);
        int e = k + 1;
        if (S_is(S, e, "to")) {
            int ne = name_run(S, e + 1);
            if (ne > e + 1 && !S_is(S, k, "divorced"))
                add_fact(x, S, f->sj,
                         S_is(S, k, "married") ? "family.spouse" : "family.partner",
                         toks_str(x, S, e + 1, ne), NULL, pol, base, e + 1, ne,
                         EX_ENT_PERSON);
            if (ne > e + 1)
                e = ne;
        }
        frame_event(f, EX_EV_MILESTONE, v->main, e);
        return;
    }
    if ((S_is(S, k, "laid") && S_is(S, k + 1, "off")) || S_is(S, k, "fired")) {
        int j = k + (S_is(S, k, "laid") ? 2 : 1);
        if (S_is(S, j, "from") || S_is(S, j, "at") || S_is(S, j, "by"))
            emit_org(f, j + 1, "work.employer", EX_NEGATED, fbase(f, 0.8f));
        frame_event(f, EX_EV_MILESTONE, v->main, -1);
        return;
    }
    if (S_is(S, k, "hired")) {
        int j = k + 1;
        if (S_is(S, j, "at") || S_is(S, j, "by"))
            emit_org(f, j + 1, "work.employer", pol, fbase(f, 0.85f));
        frame_event(f, EX_EV_MILESTONE, v->main, -1);
        return;
    }
    if (S_is(S, k, "diagnosed") && S_is(S, k + 1, "with")) {
        emit_list(f, k + 2, "health", pol, base, EX_ENT_CONCEPT, 0);
        frame_event(f, EX_EV_MILESTONE, v->main, -1);
        return;
    }
    if (S_is(S, k, "into")) {
        if (S_cls(S, k + 1, LX_ART | LX_POSS | LX_DET))
            return;
        /* "got into Berkeley": admitted (no school fact yet, no taste) */
        if (S_cap(S, k + 1) && (v->past || v->perfect)) {
            int a2, b2;
            if (org_at(S, k + 1, &a2, &b2)) {
                frame_event(f, EX_EV_MILESTONE, v->main, b2);
                return;
            }
        }
        int s2 = k + 1;
        int e = np_end(x, S, s2, MAX_VALUE_TOKS, 0);
        if (e <= s2 || vague_np(S, s2, e))
            return;
        const tok *h = &S->t[e - 1];
        size_t hl = strlen(h->w);
        bool act = (tcls(h) & LX_ACTIVITY) || (hl > 4 && !strcmp(h->w + hl - 3, "ing"));
        add_fact(x, S, f->sj, act ? "hobby" : "preference.likes",
                 toks_str(x, S, s2, e), NULL, pol, fbase(f, 0.8f), s2, e,
                 EX_ENT_CONCEPT);
        frame_event(f, EX_EV_PREFERENCE, v->main, e);
        return;
    }
    int e = pet_at(f, k, pol, fbase(f, 0.8f));
    if (e > k) {
        frame_event(f, EX_EV_MILESTONE, v->main, e);
        return;
    }
    /* "got a (new) job at X", "got my degree in X" */
    int j = k;
    if (S_cls(S, j, LX_ART | LX_POSS))
        j++;
    while (S_is(S, j, "new") || S_is(S, j, "first"))
        j++;
    if (S_is(S, j, "job") || S_is(S, j, "position")) {
        int q = j + 1, end = q;
        for (int g = 0; g < 2; g++) {
            if (S_is(S, q, "at") || S_is(S, q, "with")) {
                end = emit_org(f, q + 1, "work.employer", pol, fbase(f, 0.85f));
                if (end == q + 1)
                    break;
                q = end;
            } else if (S_is(S, q, "as") && title_at(S, q + 1, true, &a, &b, &c)) {
                emit_title(f, a, b, pol, fbase(f, c));
                q = end = b;
            } else {
                break;
            }
        }
        frame_event(f, EX_EV_MILESTONE, v->main, end);
        return;
    }
    if (S_cls(S, j, LX_DEGREE)) {
        int q = degree_at(f, k, pol, fbase(f, 0.85f));
        frame_event(f, EX_EV_MILESTONE, v->main, q > k ? q : j + 1);
    }
}

static void m_become(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    ex_polarity pol;
    float base = 0.85f;
    int a, b;
    float c;
    if (is_future(f) || !change(f, &pol, &base))
        return;
    int k = f->k;
    if (S_cls(S, k, LX_DIET) || (S_cls(S, k, LX_ART) && S_cls(S, k + 1, LX_DIET))) {
        int j = S_cls(S, k, LX_ART) ? k + 1 : k;
        add_fact(x, S, f->sj, "diet", xstrdup(x, S->t[j].w), NULL, pol, base, j,
                 j + 1, EX_ENT_CONCEPT);
        frame_event(f, EX_EV_PREFERENCE, f->v->main, j + 1);
        return;
    }
    if (S_cls(S, k, LX_ART) && title_at(S, k, false, &a, &b, &c)) {
        emit_title(f, a, b, pol, fbase(f, c < base ? c : base));
        frame_event(f, EX_EV_MILESTONE, f->v->main, b);
        return;
    }
    if (S_cls(S, k, LX_ART) && S_cls(S, k + 1, LX_FAMILY))
        frame_event(f, EX_EV_MILESTONE, f->v->main, k + 2);
}

static void m_school(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    const vg *v = f->v;
    int vb = v->verb, k = f->k;
    if (v->future || v->modal || v->used_to)
        return;
    ex_polarity pol = v->neg ? EX_NEGATED : v->corr ? EX_CORRECTION : EX_ASSERTED;
    float base = fbase(f, v->past ? 0.85f : 0.9f);
    if (vb == LV_GRADUATE) {
        if (v->neg || v->progressive)
            return;
        int end = k;
        if (S_is(S, k, "from")) {
            end = emit_org(f, k + 1, "education.school", pol, base);
            if (end == k + 1)
                end = np_end(x, S, skip_det(S, k + 1), 4, 0);
        }
        int q = end;
        if (S_is(S, q, "with") && S_cls(S, q + 1, LX_ART | LX_POSS))
            q += 2;
        while (q < S->n && q - end < 4 && S_word(S, q) && !S_cls(S, q, LX_DEGREE) &&
               !S_cls(S, q, LX_PREP | LX_CONJ))
            q++;
        if (S_cls(S, q, LX_DEGREE)) {
            q++;
            if (S_is(S, q, "degree"))
                q++;
            if (S_is(S, q, "in")) {
                int s2 = skip_det(S, q + 1);
                int e2 = np_end(x, S, s2, 5, NP_OF);
                if (e2 > s2)
                    add_fact(x, S, f->sj, "education", toks_str(x, S, s2, e2), NULL,
                             pol, base, s2, e2, EX_ENT_CONCEPT);
                end = e2;
            }
        }
        frame_event(f, EX_EV_MILESTONE, v->main, end > k ? end : -1);
        return;
    }
    if (vb == LV_MAJOR) {
        if (S_is(S, k, "in"))
            emit_list(f, k + 1, "education", pol, base, EX_ENT_CONCEPT, 0);
        return;
    }
    if (vb == LV_STUDY) {
        if (v->neg && !v->anymore)
            return;
        if (S_is(S, k, "at")) {
            emit_org(f, k + 1, "education.school", pol, base);
            return;
        }
        if (S_is(S, k, "for") || S_is(S, k, "hard") || S_is(S, k, "abroad") ||
            S_is(S, k, "up") || S_is(S, k, "with") || S_is(S, k, "to") ||
            S_cls(S, k, LX_PRONOBJ | LX_POSS))
            return;
        int a = skip_det(S, k);
        int b = np_end(x, S, a, 4, NP_OF);
        if (b > a && !vague_np(S, a, b)) {
            add_fact(x, S, f->sj, "education", toks_str(x, S, a, b), NULL, pol,
                     fbase(f, 0.85f), a, b, EX_ENT_CONCEPT);
            if (S_is(S, b, "at"))
                emit_org(f, b + 1, "education.school", pol, base);
        }
        return;
    }
    /* attend / go to a school by name */
    int j = k;
    if (vb == LV_GO) {
        if (!S_is(S, k, "to"))
            return;
        j = k + 1;
    }
    int a, b;
    if (!org_at(S, j, &a, &b))
        return;
    bool school = false;
    for (int q = a; q < b; q++)
        school |= (tcls(&S->t[q]) & LX_SCHOOL) != 0;
    if (!school)
        return;
    /* "I went to Stanford for a conference": a visit */
    if (vb == LV_GO && S_is(S, b, "for") && S_cls(S, b + 1, LX_ART | LX_POSS))
        return;
    int e = emit_org(f, j, "education.school", pol, fbase(f, v->past ? 0.8f : 0.85f));
    /* "I went to Georgia Tech for computer science" */
    if (e > j && S_is(S, e, "for") && !S_cls(S, e + 1, LX_ART | LX_POSS | LX_NUM) &&
        !(e + 1 < S->n && S->t[e + 1].type == T_NUM)) {
        int s2 = e + 1, e2 = np_end(x, S, s2, 4, NP_OF);
        if (e2 > s2 && !vague_np(S, s2, e2) && !in_time(x, S, s2))
            add_fact(x, S, f->sj, "education", toks_str(x, S, s2, e2), NULL, pol,
                     fbase(f, 0.8f), s2, e2, EX_ENT_CONCEPT);
    }
}

/* degree_word -- token q names a qualification ("PhD", "master's",
 * "associate's", "bootcamp"). */
static bool degree_word(const sent *S, int q)
{
    if (S_cls(S, q, LX_DEGREE) || S_is(S, q, "bootcamp") || S_is(S, q, "undergrad"))
        return true;
    if (S_word(S, q) && S_is(S, q + 1, "'s")) {
        char w[32];
        snprintf(w, sizeof w, "%s's", S->t[q].w);
        const lx_entry *e = lx_find(w, strlen(w));
        return e && (e->cls & LX_DEGREE);
    }
    return false;
}

/* degree_at -- a qualification at k ("my PhD in neuroscience", "a master's
 * in economics", "my MBA", "a coding bootcamp", "my undergrad") and where
 * it was earned ("at McGill", "from Wharton"): the education is the field
 * when one is given, else the qualification.  Returns the end, or k. */
static int degree_at(fr *f, int k, ex_polarity pol, float base)
{
    sent *S = f->S;
    xctx *x = f->x;
    int j = skip_det(S, k);
    int s0 = j;
    while (S_cls(S, j, LX_MODADJ) || S_is(S, j, "private") || S_is(S, j, "first"))
        j++;
    int q = j;
    while (q < S->n && q - j < 2 && S_word(S, q) && !degree_word(S, q) &&
           !(tcls(&S->t[q]) & (LX_PREP | LX_CONJ | LX_SUB | LX_ART | LX_POSS)))
        q++;
    if (!degree_word(S, q))
        return k;
    if (tis(&S->t[q], "certification") || tis(&S->t[q], "certificate"))
        return k;
    int e = q + 1;
    if (S_is(S, e, "'s"))
        e++;
    if (S_is(S, e, "degree"))
        e++;
    int end = e;
    if (S_is(S, e, "in")) {
        int s2 = skip_det(S, e + 1);
        int e2 = np_end(x, S, s2, 5, NP_OF);
        if (e2 > s2 && !vague_np(S, s2, e2)) {
            add_fact(x, S, f->sj, "education", toks_str(x, S, s2, e2), NULL, pol,
                     base, s2, e2, EX_ENT_CONCEPT);
            end = e2;
        }
    } else if (!S_is(S, q, "degree") && !S_is(S, q, "degrees") &&
               !S_is(S, q, "undergrad")) {
        add_fact(x, S, f->sj, "education", toks_str(x, S, s0 < j ? j : s0, e), NULL,
                 pol, fbase(f, 0.8f), j, e, (ex_entity_type)-1);
    }
    if (S_is(S, end, "at") || S_is(S, end, "from"))
        end = emit_org(f, end + 1, "education.school", pol, fbase(f, 0.85f));
    return end;
}

/* m_finish -- "I finished my PhD at Imperial", "did my undergrad at Seoul
 * National University", "I'm doing my master's in law". */
static void m_finish(fr *f)
{
    const vg *v = f->v;
    if (v->future || v->modal || v->neg || v->used_to)
        return;
    if (f->v->verb != LV_DO && !(v->past || v->perfect))
        return;
    int e = degree_at(f, f->k, v->corr ? EX_CORRECTION : EX_ASSERTED,
                      fbase(f, 0.85f));
    if (e > f->k && f->v->verb != LV_DO)
        frame_event(f, EX_EV_MILESTONE, v->main, e);
}

static void m_origin(fr *f)
{
    sent *S = f->S;
    const vg *v = f->v;
    int k = f->k;
    if (v->future || v->modal || v->neg)
        return;
    if (v->verb == LV_GROW) {
        if (S_is(S, k, "up") && S_is(S, k + 1, "in"))
            emit_place(f->x, S, f->sj, k + 2, true, EX_ASSERTED, fbase(f, 0.9f),
                       NULL);
        /* "I grew up speaking Tagalog": a language of the home */
        if (S_is(S, k, "up") && S_is(S, k + 1, "speaking") && S_cls(S, k + 2, LX_LANG))
            emit_list(f, k + 2, "language", EX_ASSERTED, fbase(f, 0.85f), EX_ENT_CONCEPT,
                      LX_LANG);
        return;
    }
    /* "I come from Ohio" (present only: "I came from work" is not origin) */
    if (v->past || v->progressive)
        return;
    if (S_is(S, k, "from"))
        emit_place(f->x, S, f->sj, k + 1, true, EX_ASSERTED, fbase(f, 0.85f), NULL);
}

/* m_go -- "I go hiking on weekends" (a hobby), "I go to Ohio State
 * University" (a school); the past is an event (generic_event). */
/* class_hobby -- "to a spin class", "to pottery classes" at i (the
 * "to"): the activity of a class attended as a habit is a hobby
 * ("spin", "pottery"). */
static bool class_hobby(fr *f, int i)
{
    sent *S = f->S;
    if (!S_is(S, i, "to"))
        return false;
    int a = i + 1;
    if (S_cls(S, a, LX_ART | LX_POSS))
        a++;
    int h = a;
    while (h < S->n && h < a + 3 && S_word(S, h) && !S_cap(S, h) &&
           !S_is(S, h, "class") && !S_is(S, h, "classes") && !S_is(S, h, "lessons"))
        h++;
    if (h == a || !(S_is(S, h, "class") || S_is(S, h, "classes") || S_is(S, h, "lessons")) ||
        S_cls(S, a, LX_ADV | LX_DET | LX_NUM) || S_is(S, h - 1, "first") ||
        S_is(S, h - 1, "last") || S_is(S, h - 1, "next"))
        return false;
    add_fact(f->x, S, f->sj, "hobby", toks_str(f->x, S, a, h), NULL,
             f->v->corr ? EX_CORRECTION : EX_ASSERTED, fbase(f, 0.75f), a, h,
             EX_ENT_CONCEPT);
    return true;
}

static void m_go(fr *f)
{
    sent *S = f->S;
    int k = f->k;
    /* "I went vegan in January": a change of diet */
    if (S_cls(S, k, LX_DIET) && (f->v->past || f->v->perfect) && !f->v->neg &&
        (clause_end_tok(S, k + 1) || S_cls(S, k + 1, LX_CONJ | LX_PREP | LX_ADV) ||
         in_time(f->x, S, k + 1))) {
        add_fact(f->x, S, f->sj, "diet", xstrdup(f->x, S->t[k].w), NULL,
                 EX_ASSERTED, fbase(f, 0.85f), k, k + 1, EX_ENT_CONCEPT);
        frame_event(f, EX_EV_PREFERENCE, f->v->main, k + 1);
        return;
    }
    /* "I go to a spin class twice a week" */
    if (habitual(f) && !f->v->neg && class_hobby(f, k))
        return;
    /* "I go to the gym every day", "I've been going to the gym since
     * January": the gym as a habit. */
    if (habitual(f) && !f->v->neg && S_is(S, k, "to") && S_is(S, k + 1, "the") &&
        S_is(S, k + 2, "gym") && f->sj->kind != SJ_WE) {
        add_fact(f->x, S, f->sj, "hobby", toks_str(f->x, S, k + 2, k + 3), NULL,
                 f->v->corr ? EX_CORRECTION : EX_ASSERTED, fbase(f, 0.75f), k + 2, k + 3,
                 EX_ENT_CONCEPT);
        return;
    }
    /* "I go rock climbing": a word before the activity */
    if (S_word(S, k) && !(tform(&S->t[k]) & LXF_ING) && S_word(S, k + 1) &&
        (tform(&S->t[k + 1]) & LXF_ING) &&
        (tcls(&S->t[k + 1]) & (LX_ACTIVITY | LX_HOBBYV)) &&
        !S_cls(S, k, LX_PREP | LX_ART | LX_POSS | LX_ADV) && habitual(f) &&
        !f->v->neg && hobby_tail(f->x, S, k + 2)) {
        add_fact(f->x, S, f->sj, "hobby", toks_str(f->x, S, k, k + 2), NULL,
                 EX_ASSERTED, fbase(f, 0.85f), k, k + 2, EX_ENT_CONCEPT);
        return;
    }
    const tok *t = k < S->n ? &S->t[k] : NULL;
    if (t && habitual(f) && !f->v->neg && (tform(t) & LXF_ING) &&
        (tcls(t) & (LX_ACTIVITY | LX_HOBBYV)) && hobby_tail(f->x, S, k + 1)) {
        add_fact(f->x, S, f->sj, "hobby", toks_str(f->x, S, k, k + 1), NULL,
                 f->v->corr ? EX_CORRECTION : EX_ASSERTED, fbase(f, 0.85f), k,
                 k + 1, EX_ENT_CONCEPT);
        return;
    }
    m_school(f);
}

/* ---- events and plans ---------------------------------------------------- */

static int ev_class(int vb)
{
    switch (vb) {
    case LV_MOVE: case LV_RELOCATE: case LV_SETTLE: case LV_GRADUATE:
    case LV_MARRY: case LV_DIVORCE: case LV_ENGAGE: case LV_RETIRE:
    case LV_PROMOTE: case LV_HIRE: case LV_ADOPT: case LV_RESCUE:
    case LV_TURN: case LV_QUIT: case LV_START: case LV_BEGIN: case LV_JOIN:
    case LV_OPEN: case LV_LAUNCH: case LV_PUBLISH: case LV_WIN:
    case LV_FINISH: case LV_COMPLETE: case LV_BECOME: case LV_PROPOSE:
    case LV_LEAVE:
        return EX_EV_MILESTONE;
    case LV_MEET: case LV_VISIT: case LV_CELEBRATE: case LV_HOST:
    case LV_HANG: case LV_CATCH: case LV_DATE: case LV_WELCOME:
    case LV_THROW:
        return EX_EV_SOCIAL;
    case LV_GO: case LV_PLAY: case LV_PAINT: case LV_KNIT: case LV_DRAW:
    case LV_RUN: case LV_SWIM: case LV_BIKE: case LV_CYCLE: case LV_COOK:
    case LV_BAKE: case LV_GARDEN: case LV_HIKE: case LV_SURF: case LV_SKI:
    case LV_DANCE: case LV_SING: case LV_WRITE: case LV_READ:
    case LV_CROCHET: case LV_SEW: case LV_JOG: case LV_FISH: case LV_CAMP:
    case LV_CLIMB: case LV_SKATE: case LV_SNOWBOARD: case LV_GOLF:
    case LV_MEDITATE: case LV_WATCH: case LV_SEE: case LV_TAKE:
    case LV_MAKE: case LV_LEARN: case LV_PRACTICE: case LV_TRY:
    case LV_TRAVEL: case LV_FLY: case LV_DRIVE: case LV_TOUR:
    case LV_EXPLORE: case LV_WALK: case LV_ATTEND: case LV_PARTICIPATE:
    case LV_COMPETE: case LV_PERFORM: case LV_VOLUNTEER: case LV_SIGN:
    case LV_ENROLL: case LV_REGISTER: case LV_BUILD: case LV_CREATE:
    case LV_SHOP: case LV_KAYAK: case LV_SAIL: case LV_BOWL: case LV_BUY:
    case LV_SELL: case LV_PASS: case LV_FAIL: case LV_RECEIVE: case LV_EARN:
    case LV_APPLY: case LV_TRAIN: case LV_COACH: case LV_TEACH:
    case LV_RELAX: case LV_SPEND: case LV_ORGANIZE: case LV_RETURN:
    case LV_PICK: case LV_GET: case LV_BREAK: case LV_HURT: case LV_INJURE:
    case LV_SPRAIN: case LV_TEAR: case LV_LOSE: case LV_FIND:
    case LV_BRING: case LV_EAT: case LV_DRINK: case LV_STUDY:
    case LV_RECOVER: case LV_ADORE: case LV_HEAD:
        return EX_EV_ACTIVITY;
    default:
        return -1;
    }
}

/* plan_verb -- the progressive of these is a plan even without a time
 * ("I'm moving to Denver"). */
static bool plan_verb(int vb)
{
    return vb == LV_MOVE || vb == LV_RELOCATE || vb == LV_TRAVEL ||
           vb == LV_FLY || vb == LV_VISIT || vb == LV_GRADUATE ||
           vb == LV_RETIRE || vb == LV_MARRY || vb == LV_START || vb == LV_JOIN ||
           vb == LV_HOST || vb == LV_THROW || vb == LV_ADOPT || vb == LV_TOUR;
}

/* gathering_at -- a meal or a get-together at i ("dinner", "a picnic"),
 * shared with someone when "with" follows in the clause or the subject is
 * "we". */
static bool gathering_at(const sent *S, int i)
{
    static const char *const W[] = {"dinner", "lunch", "breakfast", "brunch", "drinks",
                                    "coffee", "barbecue", "bbq", "party", "picnic",
                                    "cookout", "potluck", "sleepover", "playdate"};
    int j = i;
    if (S_cls(S, j, LX_ART | LX_POSS))
        j++;
    if (S_is(S, j, "big") || S_is(S, j, "little") || S_is(S, j, "birthday") ||
        S_is(S, j, "family"))
        j++;
    bool g = false;
    for (size_t k = 0; k < sizeof W / sizeof *W && !g; k++)
        g = S_is(S, j, W[k]);
    if (!g)
        return false;
    if (S_is(S, i - 2, "we") || S_is(S, i - 1, "we"))
        return true;
    for (int q = j + 1; q < S->n && q < j + 8 && !clause_end_tok(S, q); q++)
        if (S_is(S, q, "with"))
            return true;
    return false;
}

/* school_fact_in -- the turn has an education fact read from S. */
static bool school_fact_in(const xctx *x, const sent *S)
{
    const ex_result *r = x->out;
    for (size_t i = 0; i < r->n_facts; i++)
        if (!strncmp(r->facts[i].slot, "education", 9) && r->facts[i].span.off >= S->off &&
            r->facts[i].span.off < S->end)
            return true;
    return false;
}

static void generic_event(fr *f)
{
    xctx *x = f->x;
    sent *S = f->S;
    const vg *v = f->v;
    int vb = v->verb;
    if (f->event_done || v->neg || v->used_to)
        return;
    if (vb == LV_BE) {
        /* "I'll be in London next week" */
        const timex *tx = sent_time(x, S);
        int k = f->k;
        int64_t oa, ob;
        bool ahead = (tx->kind == TIMEX_WINDOW && tx->to_us > x->day_from) ||
                     (own_window(x, S, true, &oa, &ob) && ob > x->day_from);
        if (v->future && ahead &&
            S_is(S, k, "in") && S_cap(S, k + 1) && f->sj->kind != SJ_OTHER) {
            int a, b;
            place p;
            if (place_at(x, S, k + 1, &a, &b, &p)) {
                char *pl = toks_str(x, S, a, b);
                if (pl) {
                    size_t n = strlen(pl) + 8;
                    char *val = dm_malloc(n);
                    if (val) {
                        snprintf(val, n, "be in %s", pl);
                        add_fact(x, S, f->sj, "plan", xstrdup(x, val), NULL,
                                 EX_ASSERTED, fbase(f, 0.8f), v->main, b,
                                 (ex_entity_type)-1);
                        add_event(x, S, EX_EV_PLAN, val, 0.7f, v->main, b, f->sj);
                    } else {
                        x->err = DM_ENOMEM;
                    }
                    dm_free(pl);
                }
            }
        }
        return;
    }
    bool fut = is_future(f) ||
               (v->progressive && !v->past && plan_verb(vb));
    if (fut) {
        if (weak_verb(vb) && vb != LV_GET && vb != LV_SEE)
            return;
        /* "I'm gonna make it", "I'll do it": no plan to remember. */
        if (S_cls(S, v->next, LX_PRONOBJ) && !S_is(S, v->next, "some"))
            return;
        /* "I'm starting to realize ...": not a plan. */
        if (S_is(S, v->next, "to") && !v->future && S_word(S, v->next + 1) &&
            ((tverb(&S->t[v->next + 1]) && (tform(&S->t[v->next + 1]) & LXF_BASE)) ||
             vb == LV_START || vb == LV_BEGIN))
            return;
        if (vb == LV_LIKE || vb == LV_LOVE || vb == LV_LIVE || vb == LV_WORK ||
            vb == LV_STAND || vb == LV_WANT || vb == LV_HOPE)
            return;
        /* "I'm training for a marathon in May": the preparation goes on
         * now; the thing prepared for is an aim, not this verb's plan. */
        if (v->progressive && !v->future && S_is(S, v->next, "for") &&
            (vb == LV_TRAIN || vb == LV_STUDY || vb == LV_PRACTICE)) {
            int a = skip_det(S, v->next + 1);
            int b = np_end(x, S, a, 5, 0);
            if (b > a && !S_cls(S, a, LX_PRONOBJ)) {
                add_fact(x, S, f->sj, "goal", toks_str(x, S, a, b), NULL, EX_ASSERTED,
                         fbase(f, 0.75f), a, b, (ex_entity_type)-1);
                const timex *tx2 = sent_time(x, S);
                if (tx2->kind == TIMEX_WINDOW) /* moved ahead by plan_window */
                    add_event(x, S, EX_EV_PLAN, toks_str(x, S, a, b), 0.7f, a, b, f->sj);
            }
            f->event_done = true;
            return;
        }
        /* "I'll try", "I'll check": a plan needs an object or a time. */
        const timex *tx = sent_time(x, S);
        bool timed = tx->kind == TIMEX_WINDOW && tx->to_us > x->day_from;
        if (v->future && !timed && !v->progressive && !S_is(S, v->main - 1, "to") &&
            !S_is(S, v->main - 2, "going"))
            return;
        int b;
        char *val = vp_value(x, S, v->main, &b);
        if (!val)
            return;
        /* A relative's coming visit is the speaker's social event, not
         * that person's plan ("my aunt is visiting next week"). */
        bool guest = f->sj->kind == SJ_OTHER && vb == LV_VISIT &&
                     (timed || S_is(S, v->main + 1, "from"));
        if ((b - v->main < 2 && !guest) || (vb == LV_NONE && !timed)) {
            dm_free(val);
            return;
        }
        if (!guest) {
            char *val2 = xstrdup(x, val);
            add_fact(x, S, f->sj, "plan", val2, NULL, EX_ASSERTED,
                     fbase(f, timed || v->future ? 0.85f : 0.7f), v->main, b,
                     (ex_entity_type)-1);
        }
        /* Someone else's coming life change is a milestone and a
         * relative's coming visit a social event, not the speaker's
         * plan. */
        ex_event_type et = EX_EV_PLAN;
        bool moves_out = (vb == LV_MOVE || vb == LV_RELOCATE) &&
                         !(S_is(S, v->next, "in") && S_is(S, v->next + 1, "with"));
        bool wedding = vb == LV_GET && (S_is(S, v->next, "married") ||
                                        S_is(S, v->next, "engaged") ||
                                        S_is(S, v->next, "divorced"));
        if (f->sj->kind == SJ_OTHER && (vb == LV_VISIT))
            et = EX_EV_SOCIAL;
        else if (f->sj->kind == SJ_OTHER && wedding)
            et = EX_EV_MILESTONE;
        else if (f->sj->kind == SJ_OTHER && ev_class(vb) == EX_EV_MILESTONE && !moves_out)
            et = EX_EV_MILESTONE; /* "is moving to Oslo" stays that person's plan */
        x->ev_future = true;
        add_event(x, S, et, val, f->sj->kind == SJ_OTHER ? 0.6f : 0.75f, v->main, b,
                  f->sj);
        x->ev_future = false;
        f->event_done = true;
        return;
    }
    if (v->future || v->modal || !(v->past || v->perfect))
        return;
    int type = ev_class(vb);
    if (vb == LV_HAVE && v->past && !v->perfect && gathering_at(S, f->k))
        type = EX_EV_SOCIAL; /* "had lunch with Ann", "we had a picnic" */
    /* "called my sister", "phoned Grandpa Joe" */
    if (vb == LV_CALL && S_cls(S, f->k, LX_POSS) &&
        (S_cls(S, f->k + 1, LX_FAMILY) || S_cls(S, f->k + 2, LX_FAMILY)))
        type = EX_EV_SOCIAL;
    if (type < 0)
        return;
    /* Studies without a time are a state of the past ("I studied law at
     * Yale"), told for the school and the field, not an event. */
    if ((vb == LV_STUDY || vb == LV_ATTEND || vb == LV_GO) && type == EX_EV_ACTIVITY &&
        sent_time(x, S)->kind != TIMEX_WINDOW && school_fact_in(x, S))
        return;
    int e = vp_end(x, S, v->main, 12);
    if (e <= v->main)
        return;
    if (e == v->main + 2 && S_cls(S, v->main + 1, LX_PRONOBJ))
        return; /* "got this", "did it" */
    if (type == EX_EV_ACTIVITY) {
        /* With someone: a social event. */
        for (int q = v->main; q < S->n && !(tcls(&S->t[q]) & (LX_SUB | LX_SUBJ));
             q++) {
            if (!S_is(S, q, "with"))
                continue;
            int r = q + 1;
            if (S_cls(S, r, LX_POSS) && (S_cls(S, r + 1, LX_FAMILY) ||
                                         S_cls(S, r + 2, LX_FAMILY)))
                type = EX_EV_SOCIAL;
            if (S_cap(S, r) && ((tcls(&S->t[r]) & LX_FIRSTNAME) ||
                                find_person(x, S->t[r].off, S->t[r].len) >= 0))
                type = EX_EV_SOCIAL;
        }
        /* A relative as the object: "took my dad to the game" */
        int o = v->main + 1;
        if (S_cls(S, o, LX_POSS) && (S_cls(S, o + 1, LX_FAMILY) || S_cls(S, o + 2, LX_FAMILY)))
            type = EX_EV_SOCIAL;
    }
    frame_event(f, (ex_event_type)type, v->main, e);
}

/* m_switch -- "switched to OHSU", "switched jobs to Acme": a new
 * employer; "switched my major to data science", "changed majors to
 * X": a new field of study, replacing the one held. */
static void m_switch(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    ex_polarity pol;
    float base = 0.8f;
    if (is_future(f) || !change(f, &pol, &base) || pol == EX_NEGATED)
        return;
    int k = f->k;
    /* "switched my major to X", "changed majors to X", "switched my major
     * from X to Y": the field replaced is the one named after "from", or
     * else the slot itself ("my major"), which the fact set reads as the
     * one field of study held. */
    int m = -1;
    if ((S_is(S, k, "my") || S_is(S, k, "his") || S_is(S, k, "her")) &&
        (S_is(S, k + 1, "major") || S_is(S, k + 1, "degree")))
        m = k + 2;
    else if (S_is(S, k, "majors"))
        m = k + 1;
    if (m >= 0) {
        char *prev = NULL;
        if (S_is(S, m, "from")) {
            int pa = skip_det(S, m + 1), pb = np_end(x, S, pa, 4, NP_OF);
            if (pb <= pa || !S_is(S, pb, "to") || S_cap(S, pa))
                return;
            prev = toks_str(x, S, pa, pb);
            m = pb;
        } else if (f->sj->kind == SJ_SPEAKER) {
            prev = xstrdup(x, "my major");
        }
        int a = skip_det(S, m + 1), b = np_end(x, S, a, 4, NP_OF);
        if (S_is(S, m, "to") && b > a && !vague_np(S, a, b) && !S_cap(S, a))
            add_fact(x, S, f->sj, "education", toks_str(x, S, a, b), prev, pol,
                     fbase(f, 0.85f), a, b, EX_ENT_CONCEPT);
        else
            dm_free(prev);
        return;
    }
    /* "changed jobs to Acme" reads as "switched jobs"; "changed to X"
     * alone says too little. */
    bool jobs = S_is(S, k, "jobs") || S_is(S, k, "companies") || S_is(S, k, "employers");
    if (f->v->verb == LV_CHANGE && !jobs)
        return;
    if (jobs || S_is(S, k, "over"))
        k++;
    /* "We switched to Verizon": a household changes providers, not jobs. */
    if (!S_is(S, k, "to") || f->sj->kind == SJ_WE)
        return;
    int a, b;
    place p;
    /* "switched to Austin" is no employer; an unknown capitalised name is. */
    if (!org_at(S, k + 1, &a, &b) ||
        (place_at(x, S, k + 1, &a, &b, &p) && p.gp && !S_cls(S, k + 1, LX_ORGNAME)))
        return;
    int e = emit_org(f, k + 1, "work.employer", pol, base);
    /* "switched jobs to Acme": the job left is the one held, named by
     * the slot ("my job") when the sentence names no employer left. */
    for (size_t i = x->out->n_facts; jobs && e > k + 1 && f->sj->kind == SJ_SPEAKER && i-- > 0;) {
        ex_fact *o = &x->out->facts[i];
        if (o->span.off < S->off)
            break;
        if (strcmp(o->slot, "work.employer") || o->polarity == EX_NEGATED)
            continue;
        if (!o->prev_value)
            o->prev_value = xstrdup(x, "my job");
        break;
    }
    if (e > k + 1)
        frame_event(f, EX_EV_MILESTONE, f->v->main, e);
}

/* m_book -- "I booked flights to Reykjavik for March", "Booked a week in
 * Bali for August": a trip booked is a plan ("trip to Reykjavik"). */
static void m_book(fr *f)
{
    static const char *const W[] = {"flight", "flights", "ticket", "tickets", "trip",
                                    "hotel", "week", "weekend", "vacation", "holiday",
                                    "cabin", "cruise", "room", "airbnb", "stay",
                                    "days", "nights", "getaway"};
    sent *S = f->S;
    xctx *x = f->x;
    const vg *v = f->v;
    if (v->neg || v->modal || v->future || v->used_to)
        return;
    int q = f->k, h = -1;
    for (int n = 0; n < 4 && q < S->n && S_word(S, q) && h < 0; n++, q++)
        for (size_t k = 0; k < sizeof W / sizeof *W && h < 0; k++)
            if (S_is(S, q, W[k]))
                h = q;
    if (h < 0)
        return;
    int p = h + 1;
    if (S_is(S, p, "there"))
        return;
    if (!(S_is(S, p, "to") || S_is(S, p, "in") || S_is(S, p, "for")) || !S_cap(S, p + 1))
        return;
    int a, b;
    place pl;
    if (!place_at(x, S, p + 1, &a, &b, &pl) || (S->t[a].flags & TF_FIRST))
        return;
    char *dst = toks_str(x, S, a, b);
    if (!dst)
        return;
    size_t n = strlen(dst) + 9;
    char *val = dm_malloc(n);
    if (!val) {
        dm_free(dst);
        x->err = DM_ENOMEM;
        return;
    }
    snprintf(val, n, "trip to %s", dst);
    dm_free(dst);
    char *what = xstrdup(x, val);
    add_fact(x, S, f->sj, "plan", val, NULL, v->corr ? EX_CORRECTION : EX_ASSERTED,
             fbase(f, 0.8f), a, b, (ex_entity_type)-1);
    size_t ne = x->out->n_events;
    add_event(x, S, EX_EV_PLAN, what, 0.8f, v->main, b, f->sj);
    f->event_done = true;
    /* "for March": the next March, which the time parser leaves alone
     * after "for". */
    if (x->out->n_events > ne && !x->out->events[ne].has_time) {
        for (int q2 = b; q2 + 1 < S->n && q2 < b + 4; q2++) {
            if (!S_is(S, q2, "for") || !S_cls(S, q2 + 1, LX_MONTH) || !S->t[q2 + 1].lx)
                continue;
            int m = S->t[q2 + 1].lx->data;
            int64_t z = fdiv(x->day_from, DAY_US), y;
            int cm, cd;
            civil_days(z, &y, &cm, &cd);
            if (m < 1 || m > 12)
                break;
            if (m <= cm)
                y++;
            ex_event *e = &x->out->events[ne];
            e->from_us = days_civil(y, m, 1) * DAY_US;
            e->to_us = days_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * DAY_US;
            e->has_time = true;
            break;
        }
    }
}

/* m_cancel -- "We cancelled the Japan trip", "I cancelled my trip to
 * Lisbon": the plan of that trip is off ("trip to Japan", negated). */
static void m_cancel(fr *f)
{
    sent *S = f->S;
    xctx *x = f->x;
    const vg *v = f->v;
    if (v->neg || v->modal || v->future || !(v->past || v->perfect))
        return;
    int q = f->k;
    /* "I cancelled my plan": the plan named, not one trip. */
    if (slot_ended(f, q, true)) {
        f->event_done = true;
        return;
    }
    if (!S_cls(S, q, LX_ART | LX_POSS))
        return;
    q++;
    int a = -1, b = -1;
    bool trip = false;
    if (S_cap(S, q)) {
        /* "the Japan trip" */
        place pl;
        if (place_at(x, S, q, &a, &b, &pl) && pl.gp)
            trip = S_is(S, b, "trip") || S_is(S, b, "vacation") || S_is(S, b, "holiday");
    } else if (S_is(S, q, "trip") || S_is(S, q, "vacation") || S_is(S, q, "holiday") ||
               S_is(S, q, "flight") || S_is(S, q, "flights")) {
        /* "our trip to Lisbon" */
        place pl;
        if (S_is(S, q + 1, "to") && place_at(x, S, q + 2, &a, &b, &pl) && pl.gp)
            trip = true;
    }
    if (!trip)
        return;
    char *dst = toks_str(x, S, a, b);
    if (!dst)
        return;
    size_t n = strlen(dst) + 9;
    char *val = dm_malloc(n);
    if (!val) {
        x->err = DM_ENOMEM;
        dm_free(dst);
        return;
    }
    snprintf(val, n, "trip to %s", dst);
    dm_free(dst);
    add_fact(x, S, f->sj, "plan", val, NULL, EX_NEGATED, fbase(f, 0.8f), a, b,
             (ex_entity_type)-1);
    f->event_done = true;
}

static void frame(xctx *x, sent *S, const subj *sj, const vg *v)
{
    if (S->question || x->err)
        return;
    if (S->t[sj->pos].mark & (TM_HYPO | TM_REPORTED | TM_WISH))
        return;
    if (v->modal)
        return;
    fr f = {x, S, sj, v, skip_adv(S, v->next), false};
    if (v->can && v->verb != LV_STAND) {
        m_can(&f);
        return;
    }
    switch (v->verb) {
    case LV_BE: m_be(&f); break;
    case LV_LIVE: m_live(&f); break;
    case LV_MOVE: case LV_RELOCATE: case LV_SETTLE: m_move(&f); break;
    case LV_WORK: case LV_TEACH: m_work(&f); break;
    case LV_START: case LV_BEGIN: m_start(&f); break;
    case LV_JOIN: m_join(&f); break;
    case LV_SWITCH: case LV_CHANGE: m_switch(&f); break;
    case LV_BOOK: m_book(&f); break;
    case LV_CANCEL: m_cancel(&f); break;
    case LV_HIT: case LV_REACH: case LV_ACHIEVE: case LV_ACCOMPLISH: case LV_MEET:
        m_attain(&f);
        break;
    case LV_DROP: case LV_ABANDON: case LV_SCRAP: m_drop(&f); break;
    case LV_QUIT: case LV_LEAVE: case LV_STOP: case LV_GIVE: case LV_LOSE:
        m_quit(&f);
        break;
    case LV_HAVE: m_have(&f); break;
    case LV_OWN: case LV_BUY: case LV_ADOPT: case LV_RESCUE: m_own(&f); break;
    case LV_LOVE: case LV_LIKE: case LV_ENJOY: case LV_ADORE: case LV_PREFER:
    case LV_HATE: case LV_DISLIKE: case LV_DETEST: case LV_LOATHE:
    case LV_STAND:
        m_like(&f);
        break;
    case LV_EAT: m_eat(&f); break;
    case LV_SPEAK: m_speak(&f); break;
    case LV_KNOW: m_know(&f); break;
    case LV_PLAY: m_play(&f); break;
    case LV_DO: m_do(&f); break;
    case LV_PAINT: case LV_KNIT: case LV_DRAW: case LV_RUN: case LV_SWIM:
    case LV_BIKE: case LV_CYCLE: case LV_COOK: case LV_BAKE: case LV_GARDEN:
    case LV_HIKE: case LV_SURF: case LV_SKI: case LV_DANCE: case LV_SING:
    case LV_WRITE: case LV_CROCHET: case LV_SEW: case LV_JOG: case LV_FISH:
    case LV_CAMP: case LV_CLIMB: case LV_SKATE: case LV_SNOWBOARD:
    case LV_GOLF: case LV_MEDITATE: case LV_KAYAK: case LV_SAIL: case LV_BOWL:
        m_hobby_verb(&f);
        break;
    case LV_WANT: case LV_HOPE: case LV_PLAN: case LV_TRY: m_want(&f); break;
    case LV_TURN: m_turn(&f); break;
    case LV_MARRY: case LV_DIVORCE: case LV_DATE: m_marry(&f); break;
    case LV_BREAK: case LV_HURT: case LV_INJURE: case LV_SPRAIN: case LV_TEAR:
        m_injury(&f);
        break;
    case LV_SUFFER: case LV_IDENTIFY: case LV_FOLLOW: case LV_VOLUNTEER:
    case LV_RESIDE: case LV_RECOVER:
        m_misc_state(&f);
        break;
    case LV_TAKE: case LV_PICK: m_pickup(&f); break;
    case LV_LEARN: m_learn(&f); break;
    case LV_GET: m_get(&f); break;
    case LV_BECOME: m_become(&f); break;
    case LV_GRADUATE: case LV_MAJOR: case LV_STUDY: case LV_ATTEND:
        m_school(&f);
        break;
    case LV_GO: m_go(&f); break;
    case LV_FINISH: case LV_COMPLETE: m_finish(&f); break;
    case LV_GROW: case LV_COME: m_origin(&f); break;
    default: break;
    }
    /* "I'm training for a triathlon": the event prepared for is a goal
     * (with a time, generic_event reads it together with its plan). */
    if (v->verb == LV_TRAIN && v->progressive && !v->past && !v->future && !v->neg &&
        !v->modal && S_is(S, f.k, "for") && sj->kind != SJ_WE && !x->err) {
        int a = skip_det(S, f.k + 1), b = np_end(x, S, a, 5, 0);
        if (b > a && !S_cls(S, a, LX_PRONOBJ) && !vague_np(S, a, b))
            add_fact(x, S, sj, "goal", toks_str(x, S, a, b), NULL, EX_ASSERTED,
                     fbase(&f, 0.75f), a, b, (ex_entity_type)-1);
    }
    /* "I do accounting at PwC", "I drive for Uber on weekends", "she
     * writes for The Guardian": work done as a habit for a named
     * organisation is work there. */
    if ((v->verb == LV_DO || v->verb == LV_DRIVE || v->verb == LV_WRITE) && habitual(&f) &&
        !v->neg && sj->kind != SJ_WE && !x->err) {
        int q = f.k;
        if (v->verb == LV_DO) {
            int e = np_end(x, S, q, 3, 0);
            q = e > q && !S_cls(S, q, LX_ART | LX_POSS | LX_PRONOBJ) ? e : -1;
        }
        int a, b;
        if (q >= 0 && (S_is(S, q, "at") || S_is(S, q, "for")) && org_at(S, q + 1, &a, &b) &&
            (S_cls(S, a, LX_ORGNAME) || S_cls(S, b - 1, LX_ORGSUF)) &&
            !S_cls(S, a, LX_FIRSTNAME))
            emit_org(&f, q + 1, "work.employer", v->corr ? EX_CORRECTION : EX_ASSERTED,
                     fbase(&f, 0.75f));
    }
    /* "My aunt is visiting from Delhi", "Tom is flying in from Seattle":
     * where a visitor comes from is their home. */
    if ((v->verb == LV_VISIT || v->verb == LV_FLY || v->verb == LV_DRIVE ||
         v->verb == LV_COME || v->verb == LV_TRAVEL) &&
        !v->neg && !v->modal && sj->kind != SJ_WE && !x->err) {
        int q = f.k;
        while (q < S->n && q < f.k + 2 &&
               (S_is(S, q, "in") || S_is(S, q, "over") || S_is(S, q, "up") ||
                S_is(S, q, "down") || S_is(S, q, "all") || S_is(S, q, "the") ||
                S_is(S, q, "way")))
            q++;
        int a, b;
        place pl;
        if (S_is(S, q, "from") && !(v->verb == LV_COME && !v->progressive && !v->future) &&
            place_at(x, S, q + 1, &a, &b, &pl) && pl.gp)
            emit_place(x, S, sj, q + 1, false, EX_ASSERTED, fbase(&f, 0.7f), NULL);
    }
    /* "I'm an expat living in Japan", "I'm a Kiwi living in London": a
     * participle after the complement tells where the subject lives. */
    if (v->verb == LV_BE && v->copula && !v->neg && !v->past && !v->future && !x->err) {
        for (int q = f.k; q < S->n && q < f.k + 6 && !clause_end_tok(S, q); q++) {
            if (tverb(&S->t[q]) && !S_is(S, q, "living"))
                break;
            if (S_is(S, q, "living") && S_is(S, q + 1, "in") && q > f.k) {
                emit_place(x, S, sj, q + 2, false, EX_ASSERTED, fbase(&f, 0.85f), NULL);
                break;
            }
        }
    }
    generic_event(&f);
}

/* ---- possessives and other sentence patterns ----------------------------- */

static void subject_frames(xctx *x, sent *S, const subj *sj, int vstart);
static void subject_frames_vg(xctx *x, sent *S, const subj *sj, const vg *v0,
                              bool third);

/* family_names -- after "my sister" at relation token r: "Ann", ", Ann,",
 * "named Ann", "'s name is Ann", "s, Emma and Jake"; emits the facts and
 * starts a frame for a single name that is followed by a verb. */
static void poss_at(xctx *x, sent *S, const subj *own, int p, int j, bool ok);

static void family_names(xctx *x, sent *S, const subj *own, int r, bool ok,
                         int rel_of)
{
    int rel = rel_of >= 0 ? rel_of : S->t[r].lx->data;
    if (rel < 0 || rel >= (int)N_FAMILY)
        return;
    int gender = rel_gender(&S->t[r]);
    char slot[40];
    snprintf(slot, sizeof slot, "family.%s", FAMILY_REL[rel]);
    int j = r + 1;
    bool comma = false;
    if (S_is(S, j, "'s") && S_is(S, j + 1, "name") &&
        (S_is(S, j + 2, "is") || S_is(S, j + 2, "'s")))
        j += 3;
    else if (S_punct(S, j, ',')) {
        j++;
        comma = true;
    }
    /* "my dad (Jean-Luc) ...": the name in brackets, closed at once */
    bool paren = false;
    if (S_punct(S, j, '(') && S_cap(S, j + 1) && !comma) {
        int pe = name_run(S, j + 1);
        if (pe > j + 1 && S_punct(S, pe, ')')) {
            j++;
            paren = true;
        }
    }
    if (S_is(S, j, "named") || S_is(S, j, "called"))
        j++;
    /* "my daughter is called Ann", "Beth's husband is named Carl", "my
     * brother is Tom": the name as the complement.  A bare "is" takes only
     * a known first name ("my sister is Canadian" names nobody). */
    else if ((S_is(S, j, "is") || S_is(S, j, "'s")) &&
             (S_is(S, j + 1, "called") || S_is(S, j + 1, "named")) && S_cap(S, j + 2))
        j += 2;
    else if (S_is(S, j, "is") && S_cls(S, j + 1, LX_FIRSTNAME) && S_cap(S, j + 1) &&
             name_run(S, j + 1) > j + 1 &&
             (clause_end_tok(S, name_run(S, j + 1)) || S_is(S, name_run(S, j + 1), "and")))
        j++;
    int n_names = 0, first_a = -1, first_b = -1, end = j;
    int all_a[4] = {0}, all_b[4] = {0};
    for (int g = 0; g < 4; g++) {
        int e = name_run(S, j);
        /* "my daughter sofia": written lowercase, a known first name */
        if (e <= j && g == 0 && j == r + 1 && S_word(S, j) && S->t[j].lx &&
            S->t[j].lx->cls == LX_FIRSTNAME)
            e = j + 1;
        if (e <= j || speaker_tok(x, S, j))
            break;
        if (tcls(&S->t[j]) & (LX_DAY | LX_MONTH)) {
            if (!(tcls(&S->t[j]) & LX_FIRSTNAME))
                break;
        }
        /* "my friend Google" is not a person, "my sister Austin" may be. */
        if ((tcls(&S->t[j]) & LX_ORGNAME) && !(tcls(&S->t[j]) & LX_FIRSTNAME))
            break;
        if (ok)
            add_fact(x, S, own, slot, toks_str(x, S, j, e), NULL, EX_ASSERTED,
                     0.9f, j, e, EX_ENT_PERSON);
        add_person(x, S->t[j].off, S->t[e - 1].off + S->t[e - 1].len - S->t[j].off,
                   rel, gender);
        if (n_names == 0) {
            first_a = j;
            first_b = e;
        }
        if (n_names < 4) {
            all_a[n_names] = j;
            all_b[n_names] = e;
        }
        n_names++;
        end = e;
        j = e;
        if (paren) {
            end = e + 1; /* past the ')' */
            break;
        }
        if (S_punct(S, j, ',') && S_cap(S, j + 1) && !comma)
            j++;
        else if (S_punct(S, j, ',') && S_is(S, j + 1, "and"))
            j += 2;
        /* "my daughter Grace and her husband Tom": the second relative is
         * the first one's, and what follows is said of both. */
        if (g == 0 && S_is(S, j, "and") &&
            (S_is(S, j + 1, "her") || S_is(S, j + 1, "his") || S_is(S, j + 1, "their")) &&
            S_cls(S, j + 2, LX_FAMILY) && S->t[j + 2].lx) {
            int r2 = j + 2, e2 = name_run(S, r2 + 1);
            int rel2 = S->t[r2].lx->data;
            if (e2 > r2 + 1 && rel2 >= 0 && rel2 < (int)N_FAMILY && !speaker_tok(x, S, r2 + 1)) {
                char slot2[40];
                snprintf(slot2, sizeof slot2, "family.%s", FAMILY_REL[rel2]);
                const tok *ta = &S->t[first_a], *tb = &S->t[first_b - 1];
                subj kin = {SJ_OTHER, ta->off, tb->off + tb->len - ta->off, first_a,
                            x->assistant ? ASSIST_MUL : 1.0f};
                if (ok)
                    add_fact(x, S, &kin, slot2, toks_str(x, S, r2 + 1, e2), NULL,
                             EX_ASSERTED, 0.85f, r2 + 1, e2, EX_ENT_PERSON);
                add_person(x, S->t[r2 + 1].off,
                           S->t[e2 - 1].off + S->t[e2 - 1].len - S->t[r2 + 1].off, rel2,
                           rel_gender(&S->t[r2]));
                all_a[1] = r2 + 1;
                all_b[1] = e2;
                n_names = 2;
                end = e2;
                break;
            }
        }
        if (S_is(S, j, "and") && S_cap(S, j + 1))
            j++;
        else if (j == e)
            break;
    }
    /* "my husband passed away in 2020": the death of an unnamed relative
     * is an event all the same. */
    if (n_names == 0 && ok && !x->assistant) {
        int d = skip_adv(S, r + 1);
        if (S_is(S, d, "died") || (S_is(S, d, "passed") && S_is(S, d + 1, "away"))) {
            int e = d + (S_is(S, d, "passed") ? 2 : 1);
            char *w = toks_str(x, S, r, e);
            if (w)
                add_event(x, S, EX_EV_MILESTONE, w, 0.7f, r, e, NULL);
        } else if (d < S->n && (tform(&S->t[d]) & LXF_PAST) &&
                   (tverb(&S->t[d]) == LV_RETIRE || tverb(&S->t[d]) == LV_GRADUATE ||
                    tverb(&S->t[d]) == LV_TURN || tverb(&S->t[d]) == LV_MARRY ||
                    tverb(&S->t[d]) == LV_MOVE) &&
                   !(S->t[r].mark & TM_SUBCL)) {
            /* "my dad retired last year", "my son turned 5 yesterday":
             * a relative's milestone, told with the relation. */
            int e = vp_end(x, S, d, 8);
            char *w = e > d ? toks_str(x, S, r, e) : NULL;
            if (w)
                add_event(x, S, EX_EV_MILESTONE, w, 0.7f, r, e, NULL);
        }
    }
    if (n_names == 0 && own->kind == SJ_SPEAKER && ok) {
        /* "my mom's 70th birthday.  Her name's Linda": a relative named by
         * a later sentence of the turn (name_later). */
        x->pending_rel = rel;
        x->pending_gender = gender;
    }
    if (n_names == 0) {
        /* "Ann, my sister, ..." / "Ann is my sister" */
        int q = r - 1;
        while (q >= 0 && !S_cls(S, q, LX_POSS))
            q--;
        if (q >= 2 && (S_punct(S, q - 1, ',') || S_is(S, q - 1, "is") ||
                       S_is(S, q - 1, "'s"))) {
            int ne = q - 1, na = ne - 1;
            while (na > 0 && S_cap(S, na - 1) && na - 1 >= ne - 2)
                na--;
            if (S_cap(S, na) && name_run(S, na) == ne && ok &&
                !speaker_tok(x, S, na)) {
                add_fact(x, S, own, slot, toks_str(x, S, na, ne), NULL,
                         EX_ASSERTED, 0.85f, na, ne, EX_ENT_PERSON);
                add_person(x, S->t[na].off,
                           S->t[ne - 1].off + S->t[ne - 1].len - S->t[na].off, rel,
                           gender);
            }
        }
        return;
    }
    if (n_names > 1 && n_names <= 4 && ok && !comma && !x->joint) {
        /* "my kids Ava and Ben both have the flu": the verb that follows
         * the names says it of each. */
        for (int q = 0; q < n_names && !x->err; q++) {
            const tok *ta = &S->t[all_a[q]], *tb = &S->t[all_b[q] - 1];
            subj each = {SJ_OTHER, ta->off, tb->off + tb->len - ta->off, all_a[q],
                         x->assistant ? ASSIST_MUL : 1.0f};
            x->joint = true;
            subject_frames(x, S, &each, end);
            x->joint = false;
        }
        return;
    }
    if (n_names != 1 || !ok)
        return;
    /* "my daughter Mia's birthday is April 3rd": what is said of the
     * relative's birthday, hometown, favourite ... is theirs. */
    if (S_is(S, end, "'s") && S_word(S, end + 1) && !comma) {
        subj kin = {SJ_OTHER, S->t[first_a].off,
                    S->t[first_b - 1].off + S->t[first_b - 1].len - S->t[first_a].off,
                    first_a, x->assistant ? ASSIST_MUL : 1.0f};
        if (S_is(S, end + 1, "birthday") || S_is(S, end + 1, "bday"))
            poss_at(x, S, &kin, end, end + 1, ok);
        return;
    }
    /* "my sister Ann lives in Boston", "my wife, Sara, is a nurse" */
    int v = end;
    if (comma && S_punct(S, v, ','))
        v++;
    subj sj = {SJ_OTHER, S->t[first_a].off,
               S->t[first_b - 1].off + S->t[first_b - 1].len - S->t[first_a].off,
               first_a, 1.0f};
    if (x->assistant)
        sj.mul = ASSIST_MUL;
    /* "visiting my dad Tony in Sacramento", "staying with my aunt Jo in
     * Leeds": the place of a visit to someone is where that person lives. */
    int o = own->pos;
    if (own->kind == SJ_SPEAKER && S_is(S, v, "in") && S_cap(S, v + 1) &&
        ((o >= 1 && tverb(&S->t[o - 1]) == LV_VISIT) ||
         (o >= 2 && S_is(S, o - 1, "with") &&
          (S_is(S, o - 2, "staying") || S_is(S, o - 2, "stayed") || S_is(S, o - 2, "stay"))))) {
        int c, d;
        place pl;
        if (place_at(x, S, v + 1, &c, &d, &pl) && pl.gp)
            emit_place(x, S, &sj, v + 1, false, EX_ASSERTED, 0.75f, NULL);
    }
    subject_frames(x, S, &sj, v);
}

/* has_lang_before -- a language word precedes token p in S. */
static bool has_lang_before(const sent *S, int p)
{
    for (int q = 0; q < p; q++)
        if (S_cls(S, q, LX_LANG) && (S_is(S, q + 1, "language") || S_is(S, q + 1, "is")))
            return true;
    return false;
}

/* poss_at -- what follows a possessive of the speaker at j ("my" at p). */
static void poss_at(xctx *x, sent *S, const subj *own, int p, int j, bool ok)
{
    fr f;
    vg none;
    memset(&none, 0, sizeof none);
    none.main = p;
    f.x = x;
    f.S = S;
    f.sj = own;
    f.v = &none;
    f.event_done = true;
    f.k = j;
    int q = j;
    while ((S_cls(S, q, LX_KINADJ | LX_NUM) ||
            (q < S->n && S->t[q].type == T_NUM)) &&
           !S_cls(S, q, LX_FAMILY | LX_ANIMAL) && q - j < 3)
        q++;
    if (S_cls(S, q, LX_FAMILY)) {
        family_names(x, S, own, q, ok, -1);
        return;
    }
    /* "my coworker Jess just had a baby", "my neighbour, Frank, is a
     * retired cop": a person the taxonomy has no relation for is still
     * the subject of what follows. */
    {
        static const char *const ACQ[] = {
            "coworker", "co-worker", "colleague", "roommate", "flatmate", "housemate",
            "neighbor", "neighbour", "boss", "classmate", "teammate", "mentor",
            "landlord", "landlady", "ex", "sister-in-law", "brother-in-law",
            "mother-in-law", "father-in-law", "daughter-in-law", "son-in-law",
            "stepdad", "stepmom", "stepmum", "stepson", "stepdaughter", "godson",
            "goddaughter", "godmother", "godfather", "therapist", "doctor", "coach"};
        int w = j;
        if (S_is(S, w, "old") || S_is(S, w, "new") || S_is(S, w, "former"))
            w++;
        bool acq = false;
        for (size_t k = 0; k < sizeof ACQ / sizeof *ACQ && !acq; k++)
            acq = S_is(S, w, ACQ[k]);
        int n = S_punct(S, w + 1, ',') ? w + 2 : w + 1;
        int e = acq ? name_run(S, n) : n;
        if (acq && ok && e > n && !speaker_tok(x, S, n) &&
            !S_cls(S, n, LX_MONTH | LX_DAY | LX_ORGNAME)) {
            const tok *ta = &S->t[n], *tb = &S->t[e - 1];
            add_person(x, ta->off, tb->off + tb->len - ta->off, -1, 0);
            subj them = {SJ_OTHER, ta->off, tb->off + tb->len - ta->off, n,
                         x->assistant ? ASSIST_MUL : 1.0f};
            int vs = e;
            if (n == w + 2 && S_punct(S, vs, ','))
                vs++;
            else if (n == w + 2)
                return;
            subject_frames(x, S, &them, vs);
            return;
        }
    }
    /* "my baby Aria", "my toddler, Sam", "my 3-year-old, Remy": a child
     * named by what they are; the age comes with it. */
    {
        size_t wl = S_word(S, j) ? strlen(S->t[j].w) : 0;
        bool yo = wl > 9 && !strcmp(S->t[j].w + wl - 9, "-year-old") &&
                  S->t[j].w[0] >= '1' && S->t[j].w[0] <= '9';
        if ((yo || S_is(S, j, "baby") || S_is(S, j, "toddler") || S_is(S, j, "newborn")) &&
            (S_cap(S, j + 1) || (S_punct(S, j + 1, ',') && S_cap(S, j + 2))) &&
            !S_cls(S, j + (S_punct(S, j + 1, ',') ? 2 : 1), LX_MONTH | LX_DAY | LX_ORGNAME)) {
            size_t before = x->out->n_facts;
            family_names(x, S, own, j, ok, 7);
            if (yo && ok && x->out->n_facts > before) {
                int n = S_punct(S, j + 1, ',') ? j + 2 : j + 1, e = name_run(S, n);
                int years = atoi(S->t[j].w);
                if (e > n && years > 0 && years <= 25) {
                    char num[12];
                    snprintf(num, sizeof num, "%d", years);
                    const tok *ta = &S->t[n], *tb = &S->t[e - 1];
                    subj kid = {SJ_OTHER, ta->off, tb->off + tb->len - ta->off, n,
                                x->assistant ? ASSIST_MUL : 1.0f};
                    add_fact(x, S, &kid, "age", xstrdup(x, num), NULL, EX_ASSERTED, 0.8f, j,
                             j + 1, (ex_entity_type)-1);
                }
            }
            return;
        }
    }
    /* "my oldest, Noah", "my youngest Charlie": a child */
    if ((S_is(S, j, "oldest") || S_is(S, j, "youngest") || S_is(S, j, "eldest") ||
         S_is(S, j, "firstborn")) &&
        (S_cap(S, j + 1) || (S_punct(S, j + 1, ',') && S_cap(S, j + 2)))) {
        family_names(x, S, own, j, ok, 7);
        return;
    }
    if (!ok)
        return;
    if (S_cls(S, q, LX_ANIMAL)) {
        /* "my dog Max", "my cat, Luna,", "my dog's name is Max", "my two
         * cats, Salt and Pepper" */
        int e = q + 1;
        if (S_is(S, e, "'s") && S_is(S, e + 1, "name") &&
            (S_is(S, e + 2, "is") || S_is(S, e + 2, "'s")))
            e += 3;
        else if (S_punct(S, e, ','))
            e++;
        int first = e, last = e;
        for (int g = 0; g < 4; g++) {
            int ne = name_run(S, e);
            if (ne <= e || (tcls(&S->t[e]) & (LX_DAY | LX_MONTH | LX_ORGNAME)))
                break;
            /* "my dog Max died": no longer a pet */
            int d = skip_adv(S, S_punct(S, ne, ',') ? ne + 1 : ne);
            bool died = S_is(S, d, "died") ||
                        (S_is(S, d, "passed") && (S_is(S, d + 1, "away") ||
                                                  !S_word(S, d + 1) ||
                                                  in_time(x, S, d + 1)));
            f.v = &none;
            fr g2 = f;
            g2.sj = own;
            pet_named(&g2, e, ne, died ? EX_NEGATED : EX_ASSERTED,
                      died ? 0.85f : 0.9f);
            if (died) {
                int we = d + (S_is(S, d, "passed") && S_is(S, d + 1, "away") ? 2 : 1);
                char *w = toks_str(x, S, p + 1, we);
                add_event(x, S, EX_EV_MILESTONE, w, 0.8f, p + 1, we, own);
            }
            last = ne;
            e = ne;
            if (S_punct(S, e, ',') && S_is(S, e + 1, "and"))
                e += 2;
            else if (S_is(S, e, "and") && S_cap(S, e + 1))
                e++;
            else
                break;
        }
        (void)first;
        (void)last;
        return;
    }
    /* "our house is in Ontario", "our new apartment in Lyon": where the
     * speaker lives (not "my apartment's kitchen"). */
    {
        int h = j;
        while (S_is(S, h, "new") || S_is(S, h, "current") || S_is(S, h, "own") ||
               S_is(S, h, "little") || S_is(S, h, "tiny"))
            h++;
        if (home_word(S, h) && !S_is(S, h, "home") && own->kind == SJ_SPEAKER) {
            int w = h + 1;
            if (S_is(S, w, "is") || S_is(S, w, "'s"))
                w++;
            if (S_is(S, w, "in") && !S_cls(S, w + 1, LX_ART | LX_POSS)) {
                emit_place(x, S, own, w + 1, false, EX_ASSERTED,
                           w > h + 1 ? 0.85f : 0.8f, NULL);
                return;
            }
        }
    }
    const tok *t = j < S->n ? &S->t[j] : NULL;
    if (!t)
        return;
    int k = j + 1;
    if ((tis(t, "full") || tis(t, "real") || tis(t, "first") || tis(t, "last")) &&
        S_is(S, k, "name")) {
        t = &S->t[k];
        k++;
    }
    bool is = S_is(S, k, "is") || S_is(S, k, "'s") || S_is(S, k, "are");
    int v = is ? k + 1 : k;
    bool neg = false;
    if (S_is(S, v, "not")) {
        neg = true;
        v++;
    }
    v = skip_adv(S, v);
    ex_polarity pol = neg ? EX_NEGATED : EX_ASSERTED;
    if (tis(t, "name") && is) {
        int e = v;
        while (e < S->n && e - v < 3 && S_cap(S, e) &&
               !(S->t[e].lx && (tcls(&S->t[e]) & ~(uint64_t)LX_FIRSTNAME)))
            e++;
        if (e > v)
            add_fact(x, S, own, "name", toks_str(x, S, v, e), NULL, pol, 0.9f, v, e,
                     EX_ENT_PERSON);
        return;
    }
    if ((tis(t, "birthday") || tis(t, "bday") || tis(t, "birthdate")) &&
        !S_is(S, k, "party") && !S_is(S, k, "present") && !S_is(S, k, "gift")) {
        /* "my birthday falls on ..." reads like "is on". */
        if (!is && S_is(S, k, "falls") && S_is(S, k + 1, "on")) {
            is = true;
            v = k + 1;
        }
        /* "my birthday is today", "it's my birthday today", "tomorrow's my
         * birthday": the day relative to the turn. */
        int rd = -1;
        if (relday_word(S, v))
            rd = v;
        else if (!is && S_is(S, k, "was") && relday_word(S, k + 1)) /* "was yesterday" */
            rd = k + 1;
        else if (!is && relday_word(S, k) &&
                 (S_is(S, p - 1, "'s") || S_is(S, p - 1, "is") || S_is(S, p - 1, "was")))
            rd = k;
        else if (!is && (S_is(S, p - 1, "'s") || S_is(S, p - 1, "is")) &&
                 relday_word(S, p - 2) && clause_end_tok(S, k))
            rd = p - 2;
        if (!is && rd < 0)
            return;
        int e = v;
        char *d = rd < 0 ? date_value(x, S, v, &e) : NULL;
        if (!d && rd < 0)
            d = holiday_date(x, S, v, &e);
        if (!d && rd >= 0) {
            int64_t day = fdiv(x->in->time_us, DAY_US) +
                          (S_is(S, rd, "tomorrow") ? 1 : S_is(S, rd, "today") ? 0 : -1);
            int64_t y;
            int m, dd;
            civil_days(day, &y, &m, &dd);
            char buf[32];
            snprintf(buf, sizeof buf, "%s %d", MONTH_NAMES[m - 1], dd);
            d = xstrdup(x, buf);
            v = rd;
            e = rd + 1;
        }
        if (d)
            add_fact(x, S, own, "birthday", d, NULL, pol, 0.9f, v, e,
                     (ex_entity_type)-1);
        /* "It's my birthday today!": the day itself is a milestone. */
        if (d && rd >= 0 && (S_is(S, rd, "today") || S_is(S, rd, "yesterday")) &&
            pol != EX_NEGATED)
            add_event(x, S, EX_EV_MILESTONE, xstrdup(x, "birthday"), 0.7f, p, e, own);
        /* "My birthday was yesterday, 29 now!": the age it brought. */
        for (int c = e; d && rd >= 0 && c + 1 < S->n; c++) {
            if (!S_punct(S, c, ',') || S->t[c + 1].type != T_NUM || !S_is(S, c + 2, "now"))
                continue;
            int ab, years = age_at(S, c + 1, &ab);
            if (years > 0) {
                char num[12];
                snprintf(num, sizeof num, "%d", years);
                add_fact(x, S, own, "age", xstrdup(x, num), NULL, EX_ASSERTED, 0.85f, c + 1,
                         ab, (ex_entity_type)-1);
            }
            break;
        }
        return;
    }
    if ((tis(t, "absolute") || tis(t, "all-time") || tis(t, "total") ||
         tis(t, "very")) &&
        (S_is(S, j + 1, "favorite") || S_is(S, j + 1, "favourite"))) {
        t = &S->t[j + 1];
        j++;
        k = j + 1;
    }
    /* "Sushi is honestly my favorite food": adverbs after the verb. */
    int pv = p - 1;
    while (pv > 1 && S_cls(S, pv, LX_ADV) && !S_cls(S, pv, LX_NEG) && p - pv < 3)
        pv--;
    if ((tis(t, "favorite") || tis(t, "favourite") || tis(t, "fave")) &&
        (S_is(S, pv, "is") || S_is(S, pv, "'s") || S_is(S, pv, "are"))) {
        /* "Pizza is my favorite food." */
        int e = pv, a = e;
        while (a > 0 && S_word(S, a - 1) &&
               !(tcls(&S->t[a - 1]) & (LX_CONJ | LX_SUB | LX_PREP | LX_SUBJ |
                                       LX_INTERJ | LX_ADV)) &&
               e - a < MAX_VALUE_TOKS)
            a--;
        a = skip_det(S, a);
        if (a < e && !vague_np(S, a, e)) {
            char *val = toks_str(x, S, a, e);
            /* "Pizza is ...": capitalised only because it starts the
             * sentence. */
            const gz_place *g[1];
            if (val && (S->t[a].flags & TF_FIRST) && !(S->t[a].flags & TF_UPPER) &&
                !(tcls(&S->t[a]) & (LX_FIRSTNAME | LX_ORGNAME | LX_BRAND |
                                    LX_LANG | LX_DEMONYM)) &&
                gz_lookup(x->text + S->t[a].off, S->t[a].len, g, 1) == 0 &&
                val[0] >= 'A' && val[0] <= 'Z')
                val[0] = (char)(val[0] + 32);
            add_fact(x, S, own, "preference.likes", val, NULL, EX_ASSERTED, 0.85f, a,
                     e, EX_ENT_CONCEPT);
        }
        return;
    }
    if ((tis(t, "favorite") || tis(t, "favourite") || tis(t, "fave"))) {
        int w = j + 1;
        while (w < S->n && w - j < 4 && !S_is(S, w, "is") && !S_is(S, w, "'s") &&
               !S_is(S, w, "are") && S_word(S, w))
            w++;
        if ((S_is(S, w, "is") || S_is(S, w, "'s") || S_is(S, w, "are")) &&
            !S_is(S, w + 1, "to"))
            emit_list(&f, w + 1, "preference.likes",
                      S_is(S, w + 1, "not") ? EX_NEGATED : EX_ASSERTED, 0.85f,
                      EX_ENT_CONCEPT, 0);
        return;
    }
    if ((tis(t, "field") || tis(t, "industry") || tis(t, "sector")) && is && !neg &&
        own->kind == SJ_SPEAKER) {
        int ia, ib;
        float ic;
        if (industry_at(x, S, v, &ia, &ib, &ic) > v)
            add_fact(x, S, own, "work.industry", toks_str(x, S, ia, ib), NULL, pol,
                     ic < 0.85f ? ic : 0.85f, ia, ib, EX_ENT_CONCEPT);
        return;
    }
    if ((tis(t, "hobby") || tis(t, "hobbies") || tis(t, "passion")) &&
        (is || S_is(S, k, "include"))) {
        emit_list(&f, k + 1, "hobby", pol, 0.85f, EX_ENT_CONCEPT, 0);
        return;
    }
    /* "my New Year's resolution is to ...", "one of my goals this year is
     * to ...": the heading may carry a time before its verb. */
    if (tis(t, "new") && S_is(S, j + 1, "year") && S_is(S, j + 2, "'s") &&
        S_is(S, j + 3, "resolution")) {
        t = &S->t[j + 3];
        k = j + 4;
        if (S_is(S, k, "is")) {
            is = true;
            v = skip_adv(S, k + 1);
        }
    }
    if ((tis(t, "goal") || tis(t, "goals") || tis(t, "resolution") || tis(t, "aim")) && !is) {
        int w = k;
        while (w < S->n && w < k + 3 && (in_time(x, S, w) || S_is(S, w, "this") ||
                                         S_is(S, w, "for") || S_is(S, w, "year")))
            w++;
        if (w > k && S_is(S, w, "is")) {
            is = true;
            v = skip_adv(S, w + 1);
        }
    }
    if ((tis(t, "goal") || tis(t, "goals") || tis(t, "dream") || tis(t, "plan") ||
         tis(t, "ambition") || tis(t, "aim") || tis(t, "resolution")) && is && !neg) {
        emit_goal(&f, v, tis(t, "plan") ? "plan" : "goal",
                  tis(t, "dream") ? 0.7f : 0.85f);
        return;
    }
    if ((tis(t, "hometown") || (tis(t, "home") && S_is(S, k, "town"))) ) {
        int w = tis(t, "home") ? k + 1 : k;
        if (S_is(S, w, "is") || S_is(S, w, "'s"))
            emit_place(x, S, own, w + 1, true, pol, 0.85f, NULL);
        return;
    }
    bool ordl = tis(t, "native") || tis(t, "first") || tis(t, "mother") ||
                tis(t, "second") || tis(t, "third");
    if (ordl && (S_is(S, j + 1, "language") || S_is(S, j + 1, "tongue")) &&
        (S_is(S, j + 2, "is") || S_is(S, j + 2, "'s")))
        emit_list(&f, j + 3, "language", pol, 0.9f, EX_ENT_CONCEPT, LX_LANG);
    /* "English is my second language" */
    else if (ordl && (S_is(S, j + 1, "language") || S_is(S, j + 1, "tongue")) &&
             (S_is(S, p - 1, "is") || S_is(S, p - 1, "'s")) && S_cls(S, p - 2, LX_LANG))
        add_fact(x, S, own, "language", toks_str(x, S, p - 2, p - 1), NULL,
                 EX_ASSERTED, 0.9f, p - 2, p - 1, EX_ENT_CONCEPT);
    /* "... my first is Tagalog" after a language was named */
    else if (ordl && (S_is(S, j + 1, "is") || S_is(S, j + 1, "'s")) &&
             S_cls(S, j + 2, LX_LANG) && has_lang_before(S, p))
        add_fact(x, S, own, "language", toks_str(x, S, j + 2, j + 3), NULL,
                 EX_ASSERTED, 0.85f, j + 2, j + 3, EX_ENT_CONCEPT);
}

/* org_sentence -- "Acme is a healthcare company", "Acme Corp is in the
 * healthcare space", "Acme's office is in Boston", "Acme is based in
 * Boston", "Acme, a fintech startup, ..." */
static void org_sentence(xctx *x, sent *S)
{
    for (int i = 0; i < S->n; i++) {
        int a, b;
        bool pron = false;
        if ((S_is(S, i, "the") || S_cls(S, i, LX_POSS)) &&
            (S_is(S, i + 1, "company") || S_is(S, i + 1, "firm") ||
             S_is(S, i + 1, "startup") || S_is(S, i + 1, "employer")) &&
            x->n_orgs > 0) {
            a = i;
            b = i + 2;
            pron = true;
        } else if (!S_cap(S, i) || (i > 0 && S_cap(S, i - 1)) ||
                   !org_at(S, i, &a, &b)) {
            continue;
        }
        char *name = pron ? xstrdup(x, x->orgs[x->n_orgs - 1])
                          : toks_str(x, S, a, b);
        if (!name)
            return;
        bool orgish = pron || (tcls(&S->t[b - 1]) & LX_ORGSUF) ||
                      (tcls(&S->t[a]) & LX_ORGNAME) || org_name(x, name) != name;
        bool personish = !pron && ((tcls(&S->t[a]) & LX_FIRSTNAME) ||
                                   find_person(x, S->t[a].off, S->t[a].len) >= 0 ||
                                   speaker_tok(x, S, a));
        const gz_place *g[1];
        bool placeish = !pron && gz_lookup(name, strlen(name), g, 1) > 0;
        int j = b;
        bool office = false;
        if (S_is(S, j, "'s") && (S_is(S, j + 1, "office") ||
                                 S_is(S, j + 1, "offices") ||
                                 S_is(S, j + 1, "headquarters") ||
                                 S_is(S, j + 1, "hq") || S_is(S, j + 1, "campus"))) {
            office = true;
            j += 2;
        }
        bool appos = false;
        if (S_punct(S, j, ',') && S_cls(S, j + 1, LX_ART)) {
            appos = true;
            j++;
        } else if (S_is(S, j, "is") || S_is(S, j, "'s") || S_is(S, j, "are")) {
            j++;
        } else {
            dm_free(name);
            continue;
        }
        j = skip_adv(S, j);
        const char *src = pron ? name : org_name(x, name);
        place p;
        int c, d;
        float conf = pron ? 0.7f : 0.85f;
        if (!appos && (office || S_is(S, j, "based") || S_is(S, j, "headquartered") ||
                       S_is(S, j, "located"))) {
            int q = office ? j : j + 1;
            if (S_is(S, q, "located") || S_is(S, q, "based"))
                q++;
            if (S_is(S, q, "in") && place_at(x, S, q + 1, &c, &d, &p) &&
                !personish && !placeish) {
                char *pl = toks_str(x, S, c, d);
                if (pl) {
                    add_relation(x, src, "located_in", pl, conf, tspan(S, a, d));
                    add_entity(x, src, EX_ENT_ORG, conf, tspan(S, a, b));
                    add_entity(x, pl, EX_ENT_PLACE, p.conf, tspan(S, c, d));
                }
                dm_free(pl);
            }
        } else if (!appos && S_is(S, j, "in") && !personish &&
                   (orgish || (b - a >= 2 && !placeish && S_cls(S, j + 1, LX_INDUSTRY)))) {
            /* "Mercy Health is in healthcare": a name of two words said to
             * be in an industry is an organisation. */
            int ia, ib;
            float ic;
            if (industry_at(x, S, j + 1, &ia, &ib, &ic) > j + 1) {
                char *ind = toks_str(x, S, ia, ib);
                if (ind) {
                    add_relation(x, src, "industry", ind, conf < ic ? conf : ic,
                                 tspan(S, a, ib));
                    add_entity(x, src, EX_ENT_ORG, conf, tspan(S, a, b));
                    add_entity(x, ind, EX_ENT_CONCEPT, ic, tspan(S, ia, ib));
                }
                dm_free(ind);
            }
        } else if (S_cls(S, j, LX_ART) && !personish && !placeish) {
            int q = j + 1;
            while (S_cls(S, q, LX_MODADJ) || S_is(S, q, "large") ||
                   S_is(S, q, "global") || S_is(S, q, "leading") ||
                   S_is(S, q, "major") || S_is(S, q, "tiny") ||
                   S_is(S, q, "growing") || S_is(S, q, "private") ||
                   S_is(S, q, "public") || S_is(S, q, "mid-size") ||
                   S_is(S, q, "multinational"))
                q++;
            int e = q;
            while (e < S->n && e - q < 4 && S_word(S, e) && !S_cls(S, e, LX_ORGKIND) &&
                   !(tcls(&S->t[e]) & (LX_PREP | LX_CONJ | LX_SUB)))
                e++;
            if (e > q && e - q <= 3 && S_cls(S, e, LX_ORGKIND)) {
                bool known = false;
                for (int r = q; r < e; r++)
                    known |= (tcls(&S->t[r]) & LX_INDUSTRY) != 0;
                char *ind = toks_str(x, S, q, e);
                if (ind) {
                    add_entity(x, src, EX_ENT_ORG, conf, tspan(S, a, b));
                    add_relation(x, src, "industry", ind,
                                 known ? conf : conf - 0.15f, tspan(S, a, e + 1));
                    add_entity(x, ind, EX_ENT_CONCEPT, known ? 0.85f : 0.7f,
                               tspan(S, q, e));
                }
                dm_free(ind);
                /* "... a fintech startup based in London" */
                int r = e + 1;
                if (S_is(S, r, "based") || S_is(S, r, "headquartered") ||
                    S_is(S, r, "located"))
                    r++;
                if (r > e + 1 && S_is(S, r, "in") && place_at(x, S, r + 1, &c, &d, &p)) {
                    char *pl = toks_str(x, S, c, d);
                    if (pl) {
                        add_relation(x, src, "located_in", pl, conf, tspan(S, a, d));
                        add_entity(x, pl, EX_ENT_PLACE, p.conf, tspan(S, c, d));
                    }
                    dm_free(pl);
                }
            }
        }
        dm_free(name);
        i = b - 1;
    }
}

/* severity -- skips words of degree or frequency before a condition
 * ("really bad migraines", "a severe nut allergy"): they are no part of
 * it. */
static int severity(const sent *S, int i)
{
    static const char *const w[] = {"really", "very", "pretty", "quite", "bad",
                                    "terrible", "awful", "severe", "mild", "serious",
                                    "deadly", "frequent", "occasional", "major",
                                    "minor", "slight", "massive", "horrible", "super"};
    for (;;) {
        bool hit = false;
        for (size_t q = 0; q < sizeof w / sizeof *w && !hit; q++)
            hit = S_is(S, i, w[q]);
        if (!hit)
            return i;
        i++;
    }
}

/* first_word -- the first token of S after interjections, sentence
 * adverbs and their commas ("Well, ...", "Also ..."). */
static int first_word(const sent *S)
{
    int i = 0;
    while (i < S->n && i < 4 &&
           ((tcls(&S->t[i]) & LX_INTERJ) || S_punct(S, i, ',') || S_is(S, i, "also") ||
            S_is(S, i, "honestly") || S_is(S, i, "oh") || S_is(S, i, "so")))
        i++;
    return i;
}

/* health_phrases -- conditions told in set phrases rather than frames:
 * the fragment "Shellfish allergy here", "I had an allergic reaction to
 * X", "I'm on medication for X", "I take meds for X", "I live with X"
 * (X a condition).  Only the speaker's
 * own: the clause must open with "I" (or be the fragment). */
static void health_phrases(xctx *x, sent *S, subj *me)
{
    int i0 = first_word(S);
    if (i0 >= S->n)
        return;
    /* "Severe nut allergy, so ...", "Peanut allergy here." */
    {
        int a = severity(S, i0);
        int h = a;
        while (h < S->n && h < a + 3 && S_word(S, h) && !S_is(S, h, "allergy") &&
               !S_is(S, h, "allergies") &&
               !(tcls(&S->t[h]) & (LX_ART | LX_POSS | LX_DET | LX_SUBJ | LX_PRONOBJ |
                                   LX_BE | LX_HAVE | LX_PREP | LX_CONJ | LX_FAMILY)))
            h++;
        if (h > a && (S_is(S, h, "allergy") || S_is(S, h, "allergies")) &&
            (h + 1 == S->n || S_punct(S, h + 1, ',') || S_punct(S, h + 1, '.') ||
             S_punct(S, h + 1, '!') || S_is(S, h + 1, "here"))) {
            char *v = toks_str(x, S, a, h);
            /* the capital of the sentence's first word is no name's */
            if (v && a == i0 && !(S->t[a].flags & TF_UPPER) && v[0] >= 'A' && v[0] <= 'Z')
                v[0] = (char)(v[0] - 'A' + 'a');
            me->pos = a;
            add_fact(x, S, me, "allergy", v, NULL, EX_ASSERTED, 0.8f, a, h + 1,
                     EX_ENT_CONCEPT);
            return;
        }
    }
    if (!S_is(S, i0, "i"))
        return;
    for (int i = i0 + 1; i + 2 < S->n; i++) {
        if (S->t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH | TM_SUBCL))
            return;
        if (S_cls(S, i, LX_SUBJ) || S_cls(S, i, LX_MODAL) || S_cls(S, i, LX_NEG) ||
            (S_cls(S, i, LX_SUB) && !S_is(S, i, "once")) || S_punct(S, i, ','))
            return;
        /* "I had an allergic reaction to amoxicillin" */
        if (S_is(S, i, "allergic") && (S_is(S, i + 1, "reaction") ||
                                       S_is(S, i + 1, "reactions")) &&
            S_is(S, i + 2, "to")) {
            int a = skip_det(S, i + 3), b = np_end(x, S, a, 4, NP_LIST);
            if (b > a && !vague_np(S, a, b)) {
                me->pos = i;
                add_fact(x, S, me, "allergy", toks_str(x, S, a, b), NULL, EX_ASSERTED,
                         0.8f, i, b, EX_ENT_CONCEPT);
            }
            return;
        }
        /* "I live with Crohn's", "I've been living with MS for years" */
        if (S_is(S, i, "with") && (S_is(S, i - 1, "live") || S_is(S, i - 1, "living"))) {
            int a = skip_det(S, i + 1), b = np_end(x, S, a, 3, NP_LIST);
            if (b > a && S_cls(S, b - 1, LX_HEALTH)) {
                me->pos = i;
                add_fact(x, S, me, "health", toks_str(x, S, a, b), NULL, EX_ASSERTED,
                         0.8f, i - 1, b, EX_ENT_CONCEPT);
            }
            return;
        }
        /* "I'm on medication for my anxiety", "I take pills for migraines" */
        if ((S_is(S, i, "medication") || S_is(S, i, "meds") || S_is(S, i, "medicine") ||
             S_is(S, i, "pills") || S_is(S, i, "insulin") || S_is(S, i, "treatment")) &&
            S_is(S, i + 1, "for") &&
            (S_is(S, i - 1, "on") || S_is(S, i - 1, "take") || S_is(S, i - 1, "takes") ||
             S_is(S, i - 1, "taking") || S_is(S, i - 1, "some") ||
             S_is(S, i - 1, "daily") || S_is(S, i - 1, "getting"))) {
            int a = skip_det(S, i + 2), b = np_end(x, S, a, 4, NP_LIST);
            if (b > a && (S_cls(S, b - 1, LX_HEALTH) ||
                          (S_is(S, b - 1, "pressure") && S_is(S, b - 2, "blood")))) {
                me->pos = i;
                add_fact(x, S, me, "health", toks_str(x, S, a, b), NULL, EX_ASSERTED,
                         0.8f, i, b, EX_ENT_CONCEPT);
            }
            return;
        }
    }
}

static bool S_phrase(const sent *S, int i, const char *phrase);

/* owned_business -- "I run a bakery (called X)", "I own a small
 * landscaping business", "I opened a cafe", "I founded a startup": the
 * speaker's title is its owner (or founder) and its name, when given, the
 * employer. */
static void owned_business(xctx *x, sent *S, subj *me)
{
    static const char *const concrete[] = {
        "bakery", "cafe", "café", "restaurant", "bar", "pub", "shop", "store",
        "bookstore", "bookshop", "salon", "barbershop", "gym", "studio", "farm",
        "brewery", "winery", "boutique", "clinic", "practice", "daycare", "food truck",
        "gallery", "hotel", "inn", "diner", "pizzeria", "kennel", "nursery", "garage",
        "florist", "pharmacy", "dealership", "franchise", "hostel", "vineyard"};
    static const char *const generic[] = {"business", "company", "firm", "startup",
                                          "agency", "consultancy", "nonprofit"};
    int i = first_word(S);
    if (!S_is(S, i, "i"))
        return;
    int v = i + 1;
    while (S_is(S, v, "also") || S_is(S, v, "just") || S_is(S, v, "actually") ||
           S_is(S, v, "now") || S_is(S, v, "still") || S_is(S, v, "recently"))
        v++;
    if (v >= S->n || (S->t[v].mark & (TM_HYPO | TM_REPORTED | TM_WISH | TM_SUBCL)))
        return;
    bool found = false, past = false;
    if (S_is(S, v, "run") || S_is(S, v, "own") || S_is(S, v, "co-own") ||
        S_is(S, v, "manage"))
        found = true;
    else if (S_is(S, v, "opened") || S_is(S, v, "started") || S_is(S, v, "founded") ||
             S_is(S, v, "launched") || S_is(S, v, "co-founded") || S_is(S, v, "cofounded"))
        found = past = true;
    else if (S_is(S, v, "have") && S_is(S, v + 1, "my") && S_is(S, v + 2, "own"))
        found = true;
    if (!found)
        return;
    int h = v + 1;
    if (S_is(S, h, "my") && S_is(S, h + 1, "own"))
        h += 2;
    else if (S_is(S, h, "a") || S_is(S, h, "an") || S_is(S, h, "my") || S_is(S, h, "our"))
        h++;
    else
        return;
    const char *head = NULL;
    bool gen = false;
    int e = -1;
    for (int q = h; q < S->n && q < h + 4 && !head; q++) {
        if (!S_word(S, q) || (tcls(&S->t[q]) & (LX_PREP | LX_CONJ | LX_SUB)))
            break;
        for (size_t c = 0; c < sizeof concrete / sizeof *concrete && !head; c++)
            if (S_phrase(S, q, concrete[c])) {
                head = concrete[c];
                e = q + (strchr(concrete[c], ' ') ? 2 : 1);
            }
        for (size_t c = 0; c < sizeof generic / sizeof *generic && !head; c++)
            if (S_is(S, q, generic[c])) {
                head = generic[c];
                gen = true;
                e = q + 1;
            }
    }
    /* "I run a shop class", "I manage a store" (a manager is no owner) */
    if (!head || (e < S->n && S_word(S, e) && !(tcls(&S->t[e]) & (LX_PREP | LX_CONJ |
                                                                 LX_TIME | LX_ADV)) &&
                  !S_is(S, e, "called") && !S_is(S, e, "named") && !S_is(S, e, "last") &&
                  !S_is(S, e, "this") && !S_is(S, e, "back") && !S_is(S, e, "with")))
        return;
    if (S_is(S, v, "manage"))
        return;
    char title[48];
    if (past && gen && !S_is(S, v, "opened"))
        snprintf(title, sizeof title, "founder");
    else if (gen)
        snprintf(title, sizeof title, "business owner");
    else
        snprintf(title, sizeof title, "%s owner", head);
    float base = past ? 0.75f : 0.85f;
    me->pos = v;
    add_fact(x, S, me, "work.title", xstrdup(x, title), NULL, EX_ASSERTED, base, v, e,
             (ex_entity_type)-1);
    /* its name: "called Crumb & Co", "named Blue Door" */
    for (int q = e; q < S->n && q < e + 6; q++) {
        if (S_punct(S, q, '.') || S_punct(S, q, '!') || S_punct(S, q, ';'))
            break;
        if (!S_is(S, q, "called") && !S_is(S, q, "named"))
            continue;
        int a = q + 1, b = a;
        while (b < S->n && b < a + 5 &&
               ((S_word(S, b) && (S->t[b].flags & (TF_CAP | TF_UPPER))) ||
                (b > a && (S_punct(S, b, '&') || S_is(S, b, "'s") || S_is(S, b, "of") ||
                           S_is(S, b, "and")) &&
                 S_word(S, b + 1) && (S->t[b + 1].flags & (TF_CAP | TF_UPPER)))))
            b++;
        if (b > a)
            add_fact(x, S, me, "work.employer", toks_str(x, S, a, b), NULL, EX_ASSERTED,
                     base, q, b, EX_ENT_ORG);
        break;
    }
}

/* S_phrase -- the words of phrase (separated by single spaces) stand at
 * i of S. */
static bool S_phrase(const sent *S, int i, const char *phrase)
{
    char w[32];
    while (*phrase) {
        size_t n = strcspn(phrase, " ");
        if (n >= sizeof w)
            return false;
        memcpy(w, phrase, n);
        w[n] = 0;
        if (!S_is(S, i, w))
            return false;
        i++;
        phrase += n;
        while (*phrase == ' ')
            phrase++;
    }
    return true;
}

/* taste_verdict -- "X is life", "X are disgusting", "X keeps me sane" at
 * the start of S: a like or dislike of X (an activity's -ing form is a
 * hobby). */
static void taste_verdict(xctx *x, sent *S, subj *me)
{
    static const char *const good[] = {"life", "amazing", "awesome", "delicious",
                                       "heaven", "everything", "the best", "my jam",
                                       "my thing", "my weakness", "my guilty pleasure",
                                       "my happy place", "so good"};
    static const char *const bad[] = {"disgusting", "gross", "revolting",
                                      "the worst", "awful", "vile", "nasty",
                                      "terrible", "horrible", "inedible"};
    int a = first_word(S);
    int b = a;
    while (b < S->n && b < a + 4 && S_word(S, b) &&
           !(tcls(&S->t[b]) & (LX_BE | LX_PREP | LX_CONJ | LX_SUB | LX_ART |
                               LX_POSS | LX_DET | LX_SUBJ | LX_PRONOBJ | LX_MODAL | LX_NEG |
                               LX_QWORD | LX_INTERJ)) &&
           !tis(&S->t[b], "keeps") && !tis(&S->t[b], "keep") &&
           (b == a || !(S->t[b].flags & (TF_CAP | TF_UPPER))))
        b++;
    if (b == a || b >= S->n || ((S->t[a].flags & TF_UPPER) && S->t[a].len > 1))
        return;
    /* a known place or name is no taste ("Denver is amazing") */
    for (int q = a; q < b; q++)
        if (tis(&S->t[q], "it") || tis(&S->t[q], "this") || tis(&S->t[q], "that") ||
            tis(&S->t[q], "life") || tis(&S->t[q], "work") || tis(&S->t[q], "today") ||
            tis(&S->t[q], "everything") || tis(&S->t[q], "everyone") ||
            tis(&S->t[q], "people") || tis(&S->t[q], "weather") ||
            (tcls(&S->t[q]) & (LX_FIRSTNAME | LX_DEMONYM | LX_DAY | LX_MONTH | LX_TIME |
                                LX_VAGUE | LX_FAMILY | LX_OCC | LX_ORGSUF)))
            return;
    int k = b;
    const char *slot = NULL;
    if (S_is(S, k, "is") || S_is(S, k, "are") || S_is(S, k, "'s") ||
        S_is(S, k, "'re")) {
        k++;
        while (k < S->n && (S_is(S, k, "just") || S_is(S, k, "so") || S_is(S, k, "really") ||
                            S_is(S, k, "absolutely") || S_is(S, k, "honestly") ||
                            S_is(S, k, "literally") || S_is(S, k, "seriously")))
            k++;
        for (size_t g = 0; g < sizeof good / sizeof *good && !slot; g++)
            if (S_phrase(S, k, good[g]))
                slot = "preference.likes";
        for (size_t g = 0; g < sizeof bad / sizeof *bad && !slot; g++)
            if (S_phrase(S, k, bad[g]))
                slot = "preference.dislikes";
    } else if ((S_is(S, k, "keeps") || S_is(S, k, "keep")) && S_is(S, k + 1, "me") &&
               (S_is(S, k + 2, "sane") || S_is(S, k + 2, "going") ||
                S_is(S, k + 2, "grounded") || S_is(S, k + 2, "happy") ||
                S_is(S, k + 2, "calm"))) {
        slot = "preference.likes";
    }
    if (!slot)
        return;
    {
        /* "... is the worst part of the job": the verdict must end the
         * clause. */
        int e = k;
        const char *const *list = !strcmp(slot, "preference.dislikes") ? bad : good;
        size_t nl = !strcmp(slot, "preference.dislikes") ? sizeof bad / sizeof *bad
                                                          : sizeof good / sizeof *good;
        if (S_is(S, k, "keeps") || S_is(S, k, "keep"))
            e = k + 3;
        else
            for (size_t g = 0; g < nl; g++)
                if (S_phrase(S, k, list[g])) {
                    e = k + 1 + (strchr(list[g], ' ') ? 1 : 0) + (strchr(list[g], ' ') && strchr(strchr(list[g], ' ') + 1, ' ') ? 1 : 0);
                    break;
                }
        if (e < S->n && S_word(S, e) && !(tcls(&S->t[e]) & (LX_ADV | LX_CONJ | LX_TIME)) &&
            !S_is(S, e, "these") && !S_is(S, e, "every") && !S_is(S, e, "to"))
            return;
        int pa, pb;
        place pl;
        if (place_at(x, S, a, &pa, &pb, &pl) && pl.gp)
            return;
    }
    /* An activity liked this way is a pastime: "Gardening keeps me sane",
     * "Chess is my thing". */
    if (!strcmp(slot, "preference.likes") &&
        (activity_gerund(S, a, b) || (b == a + 1 && S_cls(S, a, LX_ACTIVITY)) ||
         (b == a + 1 && S_is(S, k, "keeps") && strlen(S->t[a].w) > 5 &&
          !strcmp(S->t[a].w + strlen(S->t[a].w) - 3, "ing"))))
        slot = "hobby";
    char *v = toks_str(x, S, a, b);
    if (!v)
        return;
    if (v[0] >= 'A' && v[0] <= 'Z' && !(S->t[a].flags & TF_UPPER))
        v[0] = (char)(v[0] - 'A' + 'a');
    me->pos = a;
    add_fact(x, S, me, slot, v, NULL, EX_ASSERTED, 0.75f, a, k, EX_ENT_CONCEPT);
}

/* specials -- "call me X", "as a trans woman, I ...", "not Austin, Dallas". */
/* here_in -- "I'm dreading July here in Austin", "the weather here in
 * Leeds": the speaker speaks from the place, so lives there (at lower
 * confidence; a visit says so and is left out). */
static void here_in(xctx *x, sent *S)
{
    if (x->assistant)
        return;
    for (int i = 0; i + 2 < S->n; i++) {
        if (!S_is(S, i, "here") || !S_is(S, i + 1, "in") || !S_cap(S, i + 2))
            continue;
        if (S->t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH | TM_SUBCL))
            return;
        for (int q = 0; q < S->n; q++)
            if (S_is(S, q, "visiting") || S_is(S, q, "visit") || S_is(S, q, "trip") ||
                S_is(S, q, "vacation") || S_is(S, q, "holiday") || S_is(S, q, "week") ||
                S_is(S, q, "weekend") || S_is(S, q, "conference") || S_is(S, q, "you"))
                return;
        int a, b;
        place pl;
        if (!place_at(x, S, i + 2, &a, &b, &pl) || !pl.gp || strcmp(pl.slot, "location.city"))
            return;
        subj me = {SJ_SPEAKER, 0, 0, i, 1.0f};
        emit_place(x, S, &me, i + 2, false, EX_ASSERTED, 0.7f, NULL);
        return;
    }
}

/* noun_events -- events named by a noun, not a verb, when the sentence
 * gives their time: "Big party this weekend", "The party on Saturday was
 * perfect", "I have a dentist appointment next Tuesday".  One ahead of
 * the turn is a plan; one behind it social (a gathering) or an activity.
 * Only for sentences whose frames gave no event. */
static bool event_noun(const tok *t, bool *social)
{
    static const char *const G[] = {"party", "wedding", "barbecue", "bbq", "reunion",
                                    "dinner", "brunch", "picnic", "cookout", "potluck",
                                    "celebration", "shower", "sleepover"};
    static const char *const A[] = {"appointment", "interview", "meeting", "concert",
                                    "recital", "exam", "surgery", "checkup",
                                    "check-up", "tournament", "race", "marathon",
                                    "game", "match", "audition", "presentation",
                                    "graduation", "ceremony", "trip", "flight"};
    for (size_t k = 0; k < sizeof G / sizeof *G; k++)
        if (tis(t, G[k])) {
            *social = true;
            return true;
        }
    for (size_t k = 0; k < sizeof A / sizeof *A; k++)
        if (tis(t, A[k])) {
            *social = false;
            return true;
        }
    return false;
}

static void noun_events(xctx *x, sent *S, size_t ev0)
{
    ex_result *r = x->out;
    if (x->assistant || r->n_events > ev0 || !may_have_time(S))
        return;
    int f = first_content(S);
    if (f >= S->n || (S->t[f].mark & (TM_HYPO | TM_REPORTED | TM_WISH)))
        return;
    int a = f, h = -1;
    bool social = false, have = false;
    if ((S_is(S, f, "i") || S_is(S, f, "we")) &&
        (S_is(S, f + 1, "have") || S_is(S, f + 1, "got") ||
         (S_is(S, f + 1, "'ve") && S_is(S, f + 2, "got")))) {
        /* "I have a dentist appointment next Tuesday" */
        a = f + (S_is(S, f + 1, "'ve") ? 3 : 2);
        if (!S_cls(S, a, LX_ART | LX_POSS))
            return;
        have = true;
    }
    int q = a;
    if (S_cls(S, q, LX_ART | LX_POSS))
        q++;
    for (int n = 0; n < 3 && q < S->n && S_word(S, q) &&
                    (!S_cap(S, q) || (S->t[q].flags & TF_FIRST));
         n++, q++)
        if (event_noun(&S->t[q], &social)) {
            h = q;
            break;
        }
    if (h < 0 || S_cls(S, h + 1, LX_FAMILY))
        return;
    /* After the noun: a time, a verb of how it went, or the end
     * ("The party on Saturday was perfect", "Big party this weekend."). */
    int e = h + 1;
    if (!have) {
        bool ok = clause_end_tok(S, e) || in_time(x, S, e) || S_is(S, e, "on") ||
                  S_is(S, e, "was") || S_is(S, e, "is") || S_is(S, e, "went") ||
                  S_is(S, e, "'s");
        if (!ok)
            return;
    }
    int64_t from, to;
    bool fut = false;
    if (own_window(x, S, true, &from, &to)) {
        fut = from > x->day_from;
    } else {
        const timex *tx = sent_time(x, S);
        if (tx->kind != TIMEX_WINDOW)
            return;
        from = tx->from_us;
        to = tx->to_us;
        /* "The party on Saturday was perfect": the verb says it is past;
         * a bare fragment or "I have ..." looks ahead. */
        bool past = S_is(S, e, "was") || S_is(S, e, "went");
        for (int k = e; k < S->n && !past; k++)
            past = S_is(S, k, "was") || S_is(S, k, "went") || S_is(S, k, "were");
        if (!past) {
            plan_window(x, S, &from, &to);
            fut = from > x->in->time_us;
        }
    }
    int b = h + 1;
    while (b < S->n && (S_is(S, b, "on") || in_time(x, S, b)) && b < h + 4)
        b++;
    ex_event_type ty = fut ? EX_EV_PLAN : social ? EX_EV_SOCIAL : EX_EV_ACTIVITY;
    if (fut)
        x->ev_future = true;
    int wa = a;
    if (S_cls(S, wa, LX_ART | LX_POSS) && !have)
        wa++;
    add_event(x, S, ty, toks_str(x, S, wa, h + 1), 0.7f, wa, b, NULL);
    x->ev_future = false;
}

/* goal_heading -- "Next goal: a 50k trail race in the fall", "Goal for
 * 2024: finally finish my novel", "New Year's resolution: quit sugar": a
 * goal named after a heading and a colon. */
static void goal_heading(xctx *x, sent *S)
{
    if (x->assistant)
        return;
    int i = first_content(S);
    while (i < S->n && (S_is(S, i, "next") || S_is(S, i, "new") || S_is(S, i, "my") ||
                        S_is(S, i, "big") || S_is(S, i, "main") || S_is(S, i, "the") ||
                        S_is(S, i, "year") || S_is(S, i, "'s")))
        i++;
    if (!(S_is(S, i, "goal") || S_is(S, i, "resolution")))
        return;
    int c = i + 1;
    if (S_is(S, c, "for") || S_is(S, c, "this"))
        while (c < S->n && c < i + 5 && !S_punct(S, c, ':'))
            c++;
    if (!S_punct(S, c, ':') || (S->t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH)))
        return;
    int a = skip_adv(S, c + 1);
    if (a >= S->n)
        return;
    subj me = {SJ_SPEAKER, 0, 0, i, 1.0f};
    int b;
    if (tverb(&S->t[a]) && (tform(&S->t[a]) & LXF_BASE) && !S_cls(S, a, LX_ART)) {
        char *v = vp_value(x, S, a, &b);
        if (v && b - a >= 2)
            add_fact(x, S, &me, "goal", v, NULL, EX_ASSERTED, 0.8f, a, b,
                     (ex_entity_type)-1);
        else
            dm_free(v);
        return;
    }
    a = skip_det(S, a);
    b = np_end(x, S, a, MAX_VALUE_TOKS, 0);
    if (b > a && !vague_np(S, a, b) && !S_cls(S, a, LX_SUBJ | LX_PRONOBJ))
        add_fact(x, S, &me, "goal", toks_str(x, S, a, b), NULL, EX_ASSERTED, 0.8f, a, b,
                 EX_ENT_CONCEPT);
}

/* deaths -- "Sadly Salt passed away last week", "Biscuit died on
 * Sunday": the death of a named being the lexicon does not know (a known
 * first name is a subject of the frames); "we had to put Bram down", "put
 * our dog to sleep": a pet no longer had, and the day it happened. */
static void deaths(xctx *x, sent *S)
{
    if (x->assistant || S->question)
        return;
    for (int i = 0; i < S->n && !x->err; i++) {
        if (S->t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH | TM_SUBCL))
            continue;
        /* "put Bram down", "put Bram to sleep", "put down our cat" */
        if (S_is(S, i, "put") && i + 2 < S->n) {
            int a = i + 1, b;
            bool down_first = S_is(S, a, "down");
            if (down_first)
                a++;
            bool poss = S_cls(S, a, LX_POSS);
            if (poss)
                a++;
            if (poss && S_cls(S, a, LX_ANIMAL))
                b = a + 1;
            else if (!poss && S_cap(S, a) && !S_cls(S, a, LX_SUBJ | LX_DAY | LX_MONTH))
                b = name_run(S, a);
            else
                continue;
            if (b <= a)
                continue;
            int e = b;
            if (!down_first) {
                if (S_is(S, e, "down"))
                    e++;
                else if (S_is(S, e, "to") && S_is(S, e + 1, "sleep"))
                    e += 2;
                else
                    continue;
            }
            subj me = {SJ_SPEAKER, 0, 0, i, 1.0f};
            add_fact(x, S, &me, "pet", toks_str(x, S, a, b), NULL, EX_NEGATED, 0.8f, a, b,
                     EX_ENT_CONCEPT);
            add_event(x, S, EX_EV_MILESTONE, toks_str(x, S, i, e), 0.75f, i, e, NULL);
            return;
        }
        /* "Salt passed away" */
        /* An adverb that opens the sentence is capitalised too ("Sadly"). */
        size_t wl = strlen(S->t[i].w);
        bool ly = (S->t[i].flags & TF_FIRST) && wl > 4 && !strcmp(S->t[i].w + wl - 2, "ly");
        bool prev_ly = i > 0 && (S->t[i - 1].flags & TF_FIRST) &&
                       strlen(S->t[i - 1].w) > 4 &&
                       !strcmp(S->t[i - 1].w + strlen(S->t[i - 1].w) - 2, "ly");
        if (!S_cap(S, i) || (S->t[i].lx && !(tcls(&S->t[i]) & LX_ANIMAL)) || ly ||
            (i > 0 && ((S_cap(S, i - 1) && !prev_ly &&
                        !((S->t[i - 1].flags & TF_FIRST) && S_cls(S, i - 1, LX_ADV | LX_INTERJ))) ||
                       S_cls(S, i - 1, LX_POSS | LX_ART | LX_PREP | LX_ANIMAL | LX_FAMILY))))
            continue;
        int b = name_run(S, i);
        if (b <= i || speaker_tok(x, S, i))
            continue;
        int d = skip_adv(S, b);
        bool died = S_is(S, d, "died") || (S_is(S, d, "passed") && S_is(S, d + 1, "away"));
        if (!died)
            continue;
        const gz_place *g[1];
        if (gz_lookup(x->text + S->t[i].off, S->t[i].len, g, 1) > 0)
            continue;
        int e = d + (S_is(S, d, "passed") ? 2 : 1);
        char *w = toks_str(x, S, i, e);
        if (!w)
            return;
        char *nm = toks_str(x, S, i, b);
        bool told = !nm;
        for (size_t q = 0; q < x->out->n_events && !told; q++)
            told = strstr(x->out->events[q].what, nm) != NULL;
        dm_free(nm);
        if (told) {
            dm_free(w);
            return;
        }
        add_event(x, S, EX_EV_MILESTONE, w, 0.7f, i, e, NULL);
        return;
    }
}

/* first_day_at -- "First week at Airbus done", "my first day at Acme
 * went well": the speaker works there now. */
static void first_day_at(xctx *x, sent *S)
{
    if (x->assistant)
        return;
    int f = first_content(S);
    int i = f;
    if (S_is(S, i, "my"))
        i++;
    if (!S_is(S, i, "first") ||
        !(S_is(S, i + 1, "day") || S_is(S, i + 1, "week") || S_is(S, i + 1, "month")) ||
        !S_is(S, i + 2, "at") || (S->t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH)))
        return;
    int a, b;
    place pl;
    if (!org_at(S, i + 3, &a, &b) || S_cls(S, a, LX_FIRSTNAME) ||
        (place_at(x, S, i + 3, &a, &b, &pl) && pl.gp && !S_cls(S, a, LX_ORGNAME)))
        return;
    /* school is a different story: "first day at Lincoln High" */
    if (S_cls(S, b - 1, LX_SCHOOL))
        return;
    subj me = {SJ_SPEAKER, 0, 0, i, 1.0f};
    add_fact(x, S, &me, "work.employer", toks_str(x, S, a, b), NULL, EX_ASSERTED, 0.8f, a, b,
             EX_ENT_ORG);
}

static int resolve(xctx *x, bool female);

/* where_lives -- "Tom is flying in from Seattle, where he lives", "I
 * grew up in Ohio but now work in Austin, where I live": a place followed
 * by ", where <subject> live(s)" is that subject's home. */
static void where_lives(xctx *x, sent *S)
{
    for (int i = 2; i + 2 < S->n && !x->err; i++) {
        if (!S_punct(S, i - 1, ',') || !S_is(S, i, "where"))
            continue;
        int w = i + 1, l = skip_adv(S, i + 2);
        if (!(S_is(S, l, "lives") || S_is(S, l, "live")) || !clause_end_tok(S, l + 1))
            continue;
        /* the place that ends before the comma */
        int p0 = -1;
        for (int q = i - 2; q >= 0 && q >= i - 5; q--) {
            int a, b;
            place pl;
            if (S_cap(S, q) && (q == 0 || !S_cap(S, q - 1)) && place_at(x, S, q, &a, &b, &pl) &&
                b == i - 1) {
                p0 = q;
                break;
            }
        }
        if (p0 < 0 || (S->t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH)))
            continue;
        subj sj = {0, 0, 0, w, x->assistant ? ASSIST_MUL : 1.0f};
        if (S_is(S, w, "i") && !x->assistant) {
            sj.kind = SJ_SPEAKER;
        } else if (S_is(S, w, "he") || S_is(S, w, "she")) {
            int r = resolve(x, S_is(S, w, "she"));
            if (r < 0)
                continue;
            sj.kind = SJ_OTHER;
            sj.off = x->people[r].off;
            sj.len = x->people[r].len;
            sj.mul *= 0.9f;
        } else {
            continue;
        }
        emit_place(x, S, &sj, p0, false, EX_ASSERTED, 0.8f, NULL);
    }
}

/* now_living -- "Born and raised in Glasgow, now living in Bristol",
 * "Grew up in Ohio; currently based in Austin": a clause after a comma
 * that leaves out "I'm" says where the speaker lives, when the sentence
 * speaks of nobody else. */
static void now_living(xctx *x, sent *S)
{
    if (x->assistant)
        return;
    for (int q = 0; q < S->n; q++)
        if (S_cls(S, q, LX_SUBJ) && !S_is(S, q, "i"))
            return;
        else if (S_cap(S, q) && S_cls(S, q, LX_FIRSTNAME) && !speaker_tok(x, S, q) &&
                 !S_cls(S, q - 1, LX_PREP))
            return;
    for (int p = 1; p + 3 < S->n; p++) {
        if (!S_punct(S, p, ',') && !S_punct(S, p, ';'))
            continue;
        int k = p + 1;
        if (!(S_is(S, k, "now") || S_is(S, k, "currently") || S_is(S, k, "still")))
            continue;
        k++;
        if (S->t[k].mark & (TM_HYPO | TM_REPORTED | TM_WISH | TM_SUBCL))
            return;
        if ((S_is(S, k, "living") || S_is(S, k, "based")) && S_is(S, k + 1, "in")) {
            subj me = {SJ_SPEAKER, 0, 0, k, 1.0f};
            emit_place(x, S, &me, k + 2, false, EX_ASSERTED, 0.85f, NULL);
            return;
        }
    }
}

/* agent_hobby -- "I'm a huge gamer", "I'm an avid cyclist", "keen
 * gardener here": a person named by a pastime has it as a hobby.  Words
 * that are also trades (gardener, baker, photographer) count only with a
 * word of enthusiasm before them. */
static void agent_hobby(xctx *x, sent *S)
{
    static const char *const AG[][2] = {
        {"runner", "running"},       {"cyclist", "cycling"},   {"climber", "climbing"},
        {"hiker", "hiking"},         {"swimmer", "swimming"},  {"surfer", "surfing"},
        {"skier", "skiing"},         {"snowboarder", "snowboarding"},
        {"gamer", "gaming"},         {"knitter", "knitting"},  {"golfer", "golf"},
        {"birder", "birding"},       {"skater", "skating"},    {"bookworm", "reading"},
        {"reader", "reading"},       {"gardener", "gardening"}, {"baker", "baking"},
        {"photographer", "photography"}, {"painter", "painting"},
        {"dancer", "dancing"},       {"cook", "cooking"},      {"fisherman", "fishing"},
        {"angler", "fishing"},       {"kayaker", "kayaking"},  {"sailor", "sailing"},
        {"triathlete", "triathlon"}, {"yogi", "yoga"},
    };
    if (x->assistant)
        return;
    for (int i = 0; i + 3 < S->n; i++) {
        if (!S_is(S, i, "i") || !(S_is(S, i + 1, "am") || S_is(S, i + 1, "'m")))
            continue;
        if (S->t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH | TM_SUBCL))
            return;
        int q = skip_adv(S, i + 2);
        if (!(S_is(S, q, "a") || S_is(S, q, "an")))
            return;
        q++;
        bool keen = false, knack = false;
        /* "a decent cook", "a strong swimmer": a skill ("a good cook" is
         * praise rather than a statement of ability) */
        if (S_is(S, q, "decent") || S_is(S, q, "strong") || S_is(S, q, "competent") ||
            S_is(S, q, "skilled") || S_is(S, q, "certified")) {
            knack = true;
            q++;
        }
        while (q < S->n && (S_is(S, q, "huge") || S_is(S, q, "big") || S_is(S, q, "avid") ||
                            S_is(S, q, "keen") || S_is(S, q, "passionate") ||
                            S_is(S, q, "amateur") || S_is(S, q, "casual") ||
                            S_is(S, q, "serious") || S_is(S, q, "die-hard") ||
                            S_is(S, q, "hardcore") || S_is(S, q, "enthusiastic") ||
                            S_is(S, q, "total") || S_is(S, q, "weekend") ||
                            S_is(S, q, "hobby") || S_is(S, q, "lifelong"))) {
            keen = true;
            q++;
        }
        if (!(clause_end_tok(S, q + 1) || S_cls(S, q + 1, LX_CONJ | LX_PREP | LX_ADV)))
            return;
        for (size_t k = 0; k < sizeof AG / sizeof *AG; k++) {
            if (!S_is(S, q, AG[k][0]))
                continue;
            if (k >= 16 && !keen && !knack) /* a trade as well */
                return;
            subj me = {SJ_SPEAKER, 0, 0, i, 1.0f};
            add_fact(x, S, &me, knack ? "skill" : "hobby", xstrdup(x, AG[k][1]), NULL,
                     S->correction ? EX_CORRECTION : EX_ASSERTED, 0.8f, q, q + 1,
                     EX_ENT_CONCEPT);
            return;
        }
        return;
    }
}

/* as_a -- "As a 29-year-old guy, is it too late ...", "As a male nurse I
 * get ...", "As a teacher, I ...": the speaker describes themself before
 * the clause, even when the clause asks something. */
static void as_a(xctx *x, sent *S)
{
    if (x->assistant)
        return;
    int i = first_content(S);
    if (!S_is(S, i, "as") || !(S_is(S, i + 1, "a") || S_is(S, i + 1, "an")))
        return;
    if (S->t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH))
        return;
    int q = i + 2, e = q;
    /* the description runs to the comma or to "I" */
    while (e < S->n && e < q + 6 && !S_punct(S, e, ',') && !S_is(S, e, "i"))
        e++;
    if (e >= S->n || e == q)
        return;
    subj me = {SJ_SPEAKER, 0, 0, i, 1.0f};
    size_t wl = S_word(S, q) ? strlen(S->t[q].w) : 0;
    if (wl > 9 && !strcmp(S->t[q].w + wl - 9, "-year-old")) {
        int years = atoi(S->t[q].w);
        if (years >= 10 && years <= 110) {
            char num[12];
            snprintf(num, sizeof num, "%d", years);
            add_fact(x, S, &me, "age", xstrdup(x, num), NULL, EX_ASSERTED, 0.8f, q, q + 1,
                     (ex_entity_type)-1);
        }
        q++;
    }
    const char *g = NULL;
    if (q < e && (S_is(S, q, "male") || S_is(S, q, "man") || S_is(S, q, "guy") ||
                  S_is(S, q, "dude")))
        g = "male";
    else if (q < e && (S_is(S, q, "female") || S_is(S, q, "woman") || S_is(S, q, "gal") ||
                       S_is(S, q, "lady")))
        g = "female";
    if (g && (q + 1 == e || S_cls(S, q + 1, LX_OCC))) {
        add_fact(x, S, &me, "gender", xstrdup(x, g), NULL, EX_ASSERTED, 0.8f, q, q + 1,
                 (ex_entity_type)-1);
        q++;
    }
    int a, b;
    float c;
    if (q < e && S_cls(S, e - 1, LX_OCC) && title_at(S, q, false, &a, &b, &c) && b == e) {
        fr f;
        vg none;
        memset(&none, 0, sizeof none);
        none.main = i;
        f.x = x;
        f.S = S;
        f.sj = &me;
        f.v = &none;
        f.k = q;
        f.event_done = true;
        emit_title(&f, a, b, EX_ASSERTED, c < 0.8f ? c : 0.8f);
    }
}

/* outgrown -- "I outgrew my milk allergy", "she's outgrown her allergy to
 * eggs": an allergy no longer had. */
static void outgrown(xctx *x, sent *S)
{
    for (int i = 1; i + 2 < S->n; i++) {
        if (!(S_is(S, i, "outgrew") || S_is(S, i, "outgrown")) || !S_cls(S, i + 1, LX_POSS))
            continue;
        if (S->t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH))
            return;
        int a = i + 2, b = a;
        while (b < S->n && b < a + 3 && S_word(S, b) && !S_is(S, b, "allergy") &&
               !S_is(S, b, "allergies"))
            b++;
        int va = a, vb = b;
        if (S_is(S, b, "allergy") && b == a && S_is(S, b + 1, "to")) {
            va = b + 2;
            vb = np_end(x, S, va, 3, 0);
        } else if (!S_is(S, b, "allergy") || b == a) {
            return;
        }
        if (vb <= va)
            return;
        /* the subject: "I" or a named person before the verb */
        subj sj = {SJ_SPEAKER, 0, 0, i - 1, x->assistant ? ASSIST_MUL : 1.0f};
        int s0 = i - 1;
        if (S_is(S, s0, "'ve") || S_is(S, s0, "has") || S_is(S, s0, "have") ||
            S_is(S, s0, "finally") || S_is(S, s0, "just"))
            s0--;
        if (!(S_is(S, s0, "i") && !x->assistant))
            return;
        sj.pos = s0;
        add_fact(x, S, &sj, "allergy", toks_str(x, S, va, vb), NULL, EX_NEGATED, 0.8f, va,
                 vb, EX_ENT_CONCEPT);
        return;
    }
}

/* hired_by -- "Deloitte hired me last year": an organisation taking the
 * speaker on; and "a London-based
 * designer": the place the speaker works from. */
static void hired_by(xctx *x, sent *S)
{
    if (x->assistant)
        return;
    for (int i = 0; i + 2 < S->n; i++) {
        if (S->t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH | TM_SUBCL))
            continue;
        size_t wl = S_word(S, i) ? strlen(S->t[i].w) : 0;
        if (wl > 6 && (S->t[i].flags & TF_CAP) && !strcmp(S->t[i].w + wl - 6, "-based") &&
            S_cls(S, i - 1, LX_ART) && (S_is(S, i - 2, "am") || S_is(S, i - 2, "'m")) &&
            S_is(S, i - 3, "i") && S_cls(S, i + 1, LX_OCC)) {
            const gz_place *g[1];
            if (gz_lookup(x->text + S->t[i].off, S->t[i].len - 6, g, 1) > 0) {
                subj me = {SJ_SPEAKER, 0, 0, i - 3, 1.0f};
                char *pl = dm_malloc(S->t[i].len - 5);
                if (!pl) {
                    x->err = DM_ENOMEM;
                    return;
                }
                memcpy(pl, x->text + S->t[i].off, S->t[i].len - 6);
                pl[S->t[i].len - 6] = 0;
                place pc;
                const char *slot = classify(pl, strlen(pl), true, &pc) && pc.slot
                                       ? pc.slot : "location.city";
                add_fact(x, S, &me, slot, pl, NULL, EX_ASSERTED, 0.8f, i, i + 1,
                         EX_ENT_PLACE);
            }
            continue;
        }
        if (!S_cap(S, i) || (i > 0 && S_cap(S, i - 1)))
            continue;
        int a, b;
        if (!org_at(S, i, &a, &b) || S_cls(S, a, LX_FIRSTNAME | LX_SUBJ))
            continue;
        int h = skip_adv(S, b);
        /* an offer is not a job yet: only "hired" */
        if (!S_is(S, h, "hired") || !S_is(S, h + 1, "me"))
            continue;
        const gz_place *g[1];
        if (gz_lookup(x->text + S->t[a].off, S->t[b - 1].off + S->t[b - 1].len - S->t[a].off,
                      g, 1) > 0)
            continue;
        subj me = {SJ_SPEAKER, 0, 0, h + 1, 1.0f};
        add_fact(x, S, &me, "work.employer", toks_str(x, S, a, b), NULL, EX_ASSERTED, 0.8f, a,
                 b, EX_ENT_ORG);
        add_event(x, S, EX_EV_MILESTONE, toks_str(x, S, a, h + 2), 0.75f, a, h + 2, &me);
        return;
    }
}

/* own_work -- "I freelance as a translator" (title "freelance
 * translator"), "I'm a stay-at-home dad" (that title as written). */
static void own_work(xctx *x, sent *S)
{
    if (x->assistant)
        return;
    for (int i = 0; i + 3 < S->n; i++) {
        if (!S_is(S, i, "i") || (S->t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH | TM_SUBCL)))
            continue;
        int k = skip_adv(S, i + 1);
        subj me = {SJ_SPEAKER, 0, 0, i, 1.0f};
        if (S_is(S, k, "freelance") && S_is(S, k + 1, "as")) {
            int a, b;
            float c;
            if (title_at(S, k + 2, true, &a, &b, &c)) {
                char *t = toks_str(x, S, a, b);
                if (!t)
                    return;
                size_t n = strlen(t) + 11;
                char *v = dm_malloc(n);
                if (!v) {
                    dm_free(t);
                    x->err = DM_ENOMEM;
                    return;
                }
                snprintf(v, n, "freelance %s", t);
                dm_free(t);
                add_fact(x, S, &me, "work.title", v, NULL, S->correction ? EX_CORRECTION
                                                                         : EX_ASSERTED,
                         0.85f, a, b, (ex_entity_type)-1);
            }
            return;
        }
        if ((S_is(S, k, "am") || S_is(S, k, "'m")) && S_cls(S, k + 1, LX_ART) &&
            S_is(S, k + 2, "stay-at-home") &&
            (S_is(S, k + 3, "dad") || S_is(S, k + 3, "mom") || S_is(S, k + 3, "mum") ||
             S_is(S, k + 3, "parent") || S_is(S, k + 3, "mother") ||
             S_is(S, k + 3, "father"))) {
            add_fact(x, S, &me, "work.title", toks_str(x, S, k + 2, k + 4), NULL,
                     S->correction ? EX_CORRECTION : EX_ASSERTED, 0.85f, k + 2, k + 4,
                     (ex_entity_type)-1);
            return;
        }
    }
}

static void specials(xctx *x, sent *S)
{
    subj me = {SJ_SPEAKER, 0, 0, 0, x->assistant ? ASSIST_MUL : 1.0f};
    for (int i = 0; i < S->n; i++) {
        if (S->t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH))
            break;
        if ((S_is(S, i, "call") || S_is(S, i, "calls")) && S_is(S, i + 1, "me") &&
            !x->assistant) {
            if (i > 0 && (S_is(S, i - 1, "not") || S_is(S, i - 1, "to") ||
                          S_is(S, i - 1, "'d") || S_cls(S, i - 1, LX_MODAL)))
                continue;
            /* "everyone calls me Bubba", "nobody calls me Elizabeth": what
             * others say, not the name asked for ("call me Liz", "you can
             * call me Liz"). */
            if (S_is(S, i, "calls") ||
                (i > 0 && S_word(S, i - 1) && !S_cls(S, i - 1, LX_CAN | LX_ADV) &&
                 !(tcls(&S->t[i - 1]) & LX_INTERJ)))
                continue;
            int e = name_run(S, i + 2);
            if (e > i + 2) {
                me.pos = i;
                add_fact(x, S, &me, "name", toks_str(x, S, i + 2, e), NULL,
                         EX_ASSERTED, 0.85f, i + 2, e, EX_ENT_PERSON);
            }
        }
        /* "At 58, I ran my first marathon": the speaker's age now (only
         * with a present or recent event after it, and not "at 5 pm"). */
        if (i == 0 && S->n > 3 && S_is(S, 0, "at") && S->t[1].type == T_NUM &&
            S->t[1].num >= 10 && S->t[1].num <= 110 && !(S->t[1].flags & TF_ORD) &&
            S_punct(S, 2, ',') && S_is(S, 3, "i") && !x->assistant) {
            char buf[8];
            snprintf(buf, sizeof buf, "%d", (int)S->t[1].num);
            me.pos = 0;
            add_fact(x, S, &me, "age", xstrdup(x, buf), NULL, EX_ASSERTED, 0.8f, 1, 2,
                     (ex_entity_type)-1);
        }
        if (S_is(S, i, "as") && !x->assistant) {
            int b;
            const char *g = gender_value(S, i + 1, &b, false);
            bool me_later = false;
            for (int q = b; g && q < S->n && q < b + 4; q++)
                me_later |= S_is(S, q, "i");
            if (g && me_later) {
                me.pos = i;
                add_fact(x, S, &me, "gender", xstrdup(x, g), NULL, EX_ASSERTED,
                         0.85f, i + 1, b, (ex_entity_type)-1);
            }
        }
    }
    /* Idioms of taste: "nothing beats X", "can't get enough of X". */
    for (int i = 0; i + 2 < S->n && !x->assistant; i++) {
        if (S->t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH))
            break;
        int at = -1;
        if (S_is(S, i, "nothing") && (S_is(S, i + 1, "beats") ||
                                      (S_is(S, i + 1, "compares") && S_is(S, i + 2, "to"))))
            at = S_is(S, i + 1, "beats") ? i + 2 : i + 3;
        else if (S_is(S, i, "get") && S_is(S, i + 1, "enough") && S_is(S, i + 2, "of") &&
                 i >= 2 && S_is(S, i - 1, "not") && S_is(S, i - 2, "can"))
            at = i + 3;
        if (at < 0)
            continue;
        fr g;
        vg none;
        memset(&none, 0, sizeof none);
        none.main = i;
        me.pos = i;
        g.x = x;
        g.S = S;
        g.sj = &me;
        g.v = &none;
        g.k = at;
        g.event_done = true;
        emit_list(&g, at, "preference.likes", EX_ASSERTED, 0.75f, EX_ENT_CONCEPT, 0);
        break;
    }
    /* Verdicts on a bare noun that opens the sentence are the speaker's
     * taste: "Coffee is life", "Olives are disgusting", "Jazz is my jam",
     * "Knitting keeps me sane".  The subject must carry no article,
     * possessive or pronoun and no capital past its first letter, so "The
     * weather is awful", "My boss is the worst" and "Paris is amazing"
     * say nothing about the speaker's tastes. */
    if (!x->assistant && S->n >= 3 && !(S->t[0].mark & (TM_HYPO | TM_REPORTED | TM_WISH)))
        taste_verdict(x, S, &me);
    if (!x->assistant && S->n >= 2 && !(S->t[0].mark & (TM_HYPO | TM_REPORTED | TM_WISH)))
        health_phrases(x, S, &me);
    if (!x->assistant && S->n >= 3 && !(S->t[0].mark & (TM_HYPO | TM_REPORTED | TM_WISH)))
        owned_business(x, S, &me);
    /* "Lisbon is home (now)", "home is Lisbon": where the speaker lives. */
    for (int i = 0; i + 2 < S->n && !x->assistant; i++) {
        if (S->t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH | TM_SUBCL))
            break;
        int a, b;
        place p;
        if (S_is(S, i, "home") && (S_is(S, i + 1, "is") || S_is(S, i + 1, "'s")) &&
            (i == 0 || !S_cls(S, i - 1, LX_POSS | LX_ART)) &&
            place_at(x, S, i + 2, &a, &b, &p) && p.gp) {
            me.pos = i;
            emit_place(x, S, &me, i + 2, false, EX_ASSERTED, 0.85f, NULL);
            break;
        }
        if (S_cap(S, i) && (i == 0 || !S_cap(S, i - 1)) &&
            place_at(x, S, i, &a, &b, &p) && p.gp &&
            (S_is(S, b, "is") || S_is(S, b, "'s")) && S_is(S, b + 1, "home") &&
            (clause_end_tok(S, b + 2) || S_is(S, b + 2, "now"))) {
            me.pos = i;
            emit_place(x, S, &me, i, false, EX_ASSERTED, 0.85f, NULL);
            break;
        }
    }
    int f = first_content(S);
    /* Fragments: "Born and raised in Texas.", "Name's Jake." */
    if (!x->assistant && f < S->n && (S->t[f].flags & TF_CAP)) {
        me.pos = f;
        if (S_is(S, f, "born") || S_is(S, f, "raised")) {
            int j = f + 1;
            if (S_is(S, j, "and") && (S_is(S, j + 1, "raised") ||
                                      S_is(S, j + 1, "bred") ||
                                      S_is(S, j + 1, "born")))
                j += 2;
            if (S_is(S, j, "in"))
                emit_place(x, S, &me, j + 1, true, EX_ASSERTED, 0.85f, NULL);
        }
        /* "Jon's the name" */
        if (S_cap(S, f) && S_is(S, f + 1, "'s") && S_is(S, f + 2, "the") &&
            S_is(S, f + 3, "name")) {
            int e = name_run(S, f);
            if (e == f + 1)
                add_fact(x, S, &me, "name", toks_str(x, S, f, e), NULL, EX_ASSERTED,
                         0.85f, f, e, EX_ENT_PERSON);
        }
        /* "This is Keiko," / "It's Tomás, by the way" opening a turn */
        if (S->off == 0 && ((S_is(S, f, "this") && S_is(S, f + 1, "is")) ||
                            (S_is(S, f, "it") && S_is(S, f + 1, "'s")))) {
            int e = name_run(S, f + 2);
            bool intro = S_is(S, f, "this") ||
                         (S_punct(S, e, ',') && (S_is(S, e + 1, "by") ||
                                                 S_is(S, e + 1, "btw")));
            if (e > f + 2 && intro && (clause_end_tok(S, e) || S_is(S, e, "here")) &&
                (tcls(&S->t[f + 2]) & ~(uint64_t)LX_FIRSTNAME) == 0)
                add_fact(x, S, &me, "name", toks_str(x, S, f + 2, e), NULL,
                         EX_ASSERTED, S->t[f + 2].lx ? 0.85f : 0.7f, f + 2, e,
                         EX_ENT_PERSON);
        }
        if ((S_is(S, f, "name") && S_is(S, f + 1, "'s")) ||
            (S_is(S, f, "the") && S_is(S, f + 1, "name") && S_is(S, f + 2, "'s"))) {
            int j = S_is(S, f, "the") ? f + 3 : f + 2;
            int e = name_run(S, j);
            if (e > j)
                add_fact(x, S, &me, "name", toks_str(x, S, j, e), NULL, EX_ASSERTED,
                         0.85f, j, e, EX_ENT_PERSON);
        }
    }
    /* "Not Austin, Dallas." after a location in this turn. */
    if (S_is(S, f, "not") && !x->assistant) {
        const char *slot = NULL;
        for (size_t q = 0; q < x->out->n_facts; q++)
            if (!strncmp(x->out->facts[q].slot, "location.", 9) &&
                !x->out->facts[q].subject[0])
                slot = x->out->facts[q].slot;
        if (slot) {
            me.pos = f;
            emit_place(x, S, &me, f, false, EX_CORRECTION, 0.8f, NULL);
        }
    }
    if (x->assistant || (S->t[f].mark & (TM_HYPO | TM_REPORTED | TM_WISH)))
        return;
    /* "I meant Square, not Stripe", "sorry, I meant Utrecht": the value
     * the speaker corrects, of the slot its kind of name belongs to (a
     * place is where they live, an organisation where they work). */
    for (int i = f; i + 2 < S->n && i < f + 4; i++) {
        if (!S_is(S, i, "i") || !(S_is(S, i + 1, "meant") || S_is(S, i + 1, "mean")))
            continue;
        int j = i + 2, a, b, c = -1, d = -1;
        place pl;
        if (!S_cap(S, j))
            break;
        bool is_place = place_at(x, S, j, &a, &b, &pl) && pl.gp &&
                        !S_cls(S, j, LX_ORGNAME);
        if (!is_place && !org_at(S, j, &a, &b))
            break;
        if (!is_place && (S_cls(S, a, LX_FIRSTNAME | LX_MONTH | LX_DAY | LX_LANG) ||
                          S_cls(S, a, LX_DEMONYM)))
            break;
        int n = b;
        if (S_punct(S, n, ','))
            n++;
        if (S_is(S, n, "not") && S_cap(S, n + 1)) {
            place q;
            if (!(is_place ? place_at(x, S, n + 1, &c, &d, &q) : org_at(S, n + 1, &c, &d)))
                c = d = -1;
        }
        if (!clause_end_tok(S, c >= 0 ? d : b) && !S_punct(S, c >= 0 ? d : b, ','))
            break;
        me.pos = i;
        char *prev = c >= 0 ? toks_str(x, S, c, d) : NULL;
        /* the value replaced is a city: so is the one meant */
        place pq;
        int c2, d2;
        x->prefer_city = is_place && c >= 0 && place_at(x, S, c, &c2, &d2, &pq) && pq.gp &&
                         pq.gp->kind == GZ_CITY;
        if (is_place)
            emit_place(x, S, &me, j, false, EX_CORRECTION, 0.85f, prev);
        else
            add_fact(x, S, &me, "work.employer", toks_str(x, S, a, b), prev,
                     EX_CORRECTION, 0.8f, a, b, EX_ENT_ORG);
        x->prefer_city = false;
        break;
    }
    /* "Portland, Oregon actually.": the place itself, corrected. */
    if (S_cap(S, f) && !S_cls(S, f, LX_FIRSTNAME)) {
        int a, b;
        place pl;
        int q = f;
        if (place_at(x, S, q, &a, &b, &pl) && pl.gp && a == f) {
            int e = b;
            int c2, d2;
            place p2;
            if (S_punct(S, e, ',') && place_at(x, S, e + 1, &c2, &d2, &p2) && p2.gp)
                e = d2;
            if (S_is(S, e, "actually") && clause_end_tok(S, e + 1)) {
                me.pos = f;
                emit_place(x, S, &me, f, false, EX_CORRECTION, 0.8f, NULL);
            }
        }
    }
}

/* ---- subjects ----------------------------------------------------------- */

/* implied_vg -- a verb group whose subject and auxiliary are left out, as
 * people write in chat: "Moved to Denver last year" (I moved), "Living in
 * Leeds" (I'm living), "Been at Acme for years" (I've been), "Been knitting
 * a lot" (I've been knitting), and after a comma in a list of what the
 * speaker does: "I'm 35, live in Chennai, work as ...".  base_ok admits a
 * base form ("live"), which at the start of a sentence would be an
 * imperative.  Fails on anything else. */
static bool gathering_at(const sent *S, int i);

static bool implied_vg(const sent *S, int k, bool base_ok, vg *v)
{
    memset(v, 0, sizeof *v);
    if (k >= S->n || S->t[k].type != T_WORD || tis(&S->t[k], "i"))
        return false;
    const tok *t = &S->t[k];
    int vb = tverb(t);
    uint8_t fm = tform(t);
    if (vb == LV_NONE || (tcls(t) & (LX_MODAL | LX_WILL | LX_CAN | LX_DO)))
        return false;
    if (tis(t, "been")) {
        /* "Been knitting a lot" / "Been a nurse for years" */
        int q = skip_adv(S, k + 1);
        v->perfect = true;
        if (q < S->n && tverb(&S->t[q]) && (tform(&S->t[q]) & LXF_ING) &&
            !(S->t[q].flags & TF_CAP)) {
            v->progressive = true;
            v->main = q;
            v->verb = tverb(&S->t[q]);
            v->form = tform(&S->t[q]);
            v->next = q + 1;
        } else {
            v->copula = true;
            v->main = k;
            v->verb = LV_BE;
            v->next = k + 1;
        }
        return true;
    }
    /* "Had lunch with Ann yesterday": a meal or get-together with
     * someone is the speaker's own. */
    if (tis(t, "had") && gathering_at(S, k + 1)) {
        v->main = k;
        v->verb = LV_HAVE;
        v->form = fm;
        v->past = true;
        v->next = k + 1;
        return true;
    }
    if (vb == LV_BE || vb == LV_HAVE)
        return false; /* "is", "was", "has": another subject's verb */
    if ((fm & LXF_ING) && !(fm & (LXF_BASE | LXF_PAST))) {
        v->progressive = true;
    } else if ((fm & LXF_PAST) && !(fm & LXF_BASE)) {
        v->past = true;
    } else if ((fm & LXF_BASE) && base_ok) {
        ;
    } else {
        return false;
    }
    v->main = k;
    v->verb = vb;
    v->form = fm;
    v->next = k + 1;
    for (int q = v->next; q < S->n && q < v->next + 12; q++)
        if (S_is(S, q, "anymore") || (S_is(S, q, "any") && S_is(S, q + 1, "more")))
            v->anymore = true;
    return true;
}

/* copula_start -- token i can open another complement of "be" in a list
 * ("I'm 35, divorced, a nurse at ..., from Ohio"). */
static bool copula_start(const sent *S, int i)
{
    if (i >= S->n)
        return false;
    const tok *t = &S->t[i];
    if (t->type == T_NUM)
        return !(t->flags & TF_ORD);
    if (t->type != T_WORD || (tcls(t) & (LX_SUBJ | LX_POSS)))
        return false;
    if (tcls(t) & (LX_ART | LX_RELSTAT | LX_DIET | LX_NUM | LX_HEALTHADJ))
        return !(tcls(t) & LX_SUBJ);
    return tis(t, "from") || tis(t, "allergic") || tis(t, "obsessed") ||
           tis(t, "retired") || tis(t, "fluent") || tis(t, "based") ||
           tis(t, "conversational") ||
           tis(t, "originally");
}

/* subject_frames -- the verb group at vstart for subject sj, and the verb
 * groups coordinated with it ("I live in Austin and work at Acme", "I'm 35,
 * live in Chennai, work as ..."), and the further complements of a copula
 * ("I'm 41, divorced, a nurse"). */
static void subject_frames(xctx *x, sent *S, const subj *sj, int vstart)
{
    vg v;
    const tok *st = &S->t[sj->pos];
    bool third = sj->kind == SJ_OTHER ||
                 (sj->kind == SJ_SPEAKER && !tis(st, "i") && !tis(st, "you") &&
                  !tis(st, "my") && !tis(st, "your"));
    if (!parse_vg(S, vstart, third, &v))
        return;
    subject_frames_vg(x, S, sj, &v, third);
}

static void subject_frames_vg(xctx *x, sent *S, const subj *sj, const vg *v0,
                              bool third)
{
    vg v = *v0;
    S->consumed = 0;
    frame(x, S, sj, &v);
    bool copula = v.copula;
    vg cop = v;
    int i = v.next > S->consumed ? v.next : S->consumed;
    for (int guard = 0; guard < 6 && i < S->n; i++) {
        const tok *t = &S->t[i];
        if ((tcls(t) & LX_SUB) || (tcls(t) & LX_SUBJ) || tis(t, "that"))
            return;
        if (t->type == T_PUNCT && t->p != ',')
            return;
        bool comma = tpunct(t, ',');
        if (!(tis(t, "and") || tis(t, "but") || comma))
            continue;
        int k = skip_adv(S, i + 1);
        if (comma && S_is(S, k, "and"))
            k = skip_adv(S, k + 1);
        if (k >= S->n || S->t[k].type == T_PUNCT || (tcls(&S->t[k]) & LX_SUBJ))
            return;
        const tok *u = &S->t[k];
        vg w;
        bool ok = false;
        if (copula && copula_start(S, k) && !(tcls(u) & LX_NEG)) {
            ;
        } else if (tverb(u) ||
                   (tcls(u) & (LX_NEG | LX_DO | LX_WILL | LX_CAN | LX_HAVE))) {
            ok = parse_vg(S, skip_adv(S, i + 1) == k ? i + 1 : k, third, &w) &&
                 !w.copula;
            /* "..., living in Oslo", "..., studied chemistry at ..." */
            if (!ok && sj->kind == SJ_SPEAKER)
                ok = implied_vg(S, k, true, &w) && !w.copula;
        }
        if (ok) {
            S->consumed = 0;
            frame(x, S, sj, &w);
            i = (w.next > S->consumed ? w.next : S->consumed) - 1;
            guard++;
            continue;
        }
        if (copula && copula_start(S, k)) {
            cop.next = k;
            S->consumed = 0;
            frame(x, S, sj, &cop);
            guard++;
            i = (S->consumed > k ? S->consumed : k + 1) - 1;
        }
    }
}

/* resolve -- he/she: the only person of that gender named in this turn. */
static int resolve(xctx *x, bool female)
{
    /* The people the turn introduced ("my sister Ann") come first; a name
     * seen only as a subject ("Ben moved out, he's in Columbus") is the
     * referent only when no such person fits. */
    int found = -1, n = 0, found_subj = -1, n_subj = 0;
    for (int i = 0; i < x->n_people; i++) {
        int g = x->people[i].gender;
        if (g != (female ? 1 : 2) && g != 0)
            continue;
        if (x->people[i].subject_only) {
            found_subj = i;
            n_subj++;
        } else {
            found = i;
            n++;
        }
    }
    if (n > 0)
        return n == 1 ? found : -1;
    return n_subj == 1 ? found_subj : -1;
}

/* gerund_subject -- the -ing phrase at k is the subject of a verb that
 * follows ("Moving to Denver was the best decision", "Gardening keeps me
 * sane"), not a clause whose "I'm" was left out. */
static bool gerund_subject(const sent *S, int k)
{
    for (int q = k + 1; q < S->n && q < k + 10; q++) {
        const tok *t = &S->t[q];
        if (t->type == T_PUNCT || (tcls(t) & (LX_CONJ | LX_SUB)))
            return false;
        if (t->flags & (TF_CAP | TF_UPPER))
            continue; /* "in May" is no modal */
        if ((tcls(t) & (LX_BE | LX_MODAL | LX_WILL)) ||
            (tis(t, "'s") && S_cls(S, q + 1, LX_ART | LX_DET | LX_ADV | LX_NEG)) ||
            tis(t, "has") || tis(t, "'d"))
            return true;
        if (tverb(t) && (tform(t) & LXF_S3) && !(tform(t) & (LXF_BASE | LXF_PAST)))
            return true;
    }
    return false;
}

/* dropped_subject -- a sentence that leaves out its "I" ("Moved to Denver
 * last year", "Living in Leeds these days", "Just started a new job at
 * Stripe", "Been at Acme for 8 years", "Can't stand country music"):
 * the speaker's frames from its first verb. */
static void dropped_subject(xctx *x, sent *S)
{
    if (x->assistant)
        return;
    int k = skip_adv(S, first_content(S));
    if (k >= S->n || S->t[k].type != T_WORD ||
        (S->t[k].mark & (TM_HYPO | TM_REPORTED | TM_WISH)))
        return;
    vg v;
    int vb = tverb(&S->t[k]);
    bool like = vb == LV_LOVE || vb == LV_LIKE || vb == LV_ENJOY ||
                vb == LV_ADORE || vb == LV_HATE || vb == LV_DETEST ||
                vb == LV_LOATHE || vb == LV_PREFER || vb == LV_DISLIKE;
    if (S_is(S, k, "did") && S_cls(S, k + 1, LX_POSS | LX_ART) && !S->question &&
        !S_is(S, k + 1, "you") && may_have_time(S)) {
        /* "Did my last 20-miler on Saturday": "did" as the main verb of
         * something the speaker did. */
        int e = vp_end(x, S, k, 12);
        subj sj = {SJ_SPEAKER, 0, 0, k, 1.0f};
        if (e > k + 2)
            add_event(x, S, EX_EV_ACTIVITY, toks_str(x, S, k, e), 0.7f, k, e, &sj);
        return;
    }
    if (tcls(&S->t[k]) & (LX_CAN | LX_DO)) {
        /* "Can't stand X", "Don't eat meat anymore" is an order; only the
         * idioms of taste are read. */
        if (!parse_vg(S, k, false, &v) || !v.neg ||
            (v.verb != LV_STAND && v.verb != LV_GET))
            return;
    } else if (!implied_vg(S, k, like, &v)) {
        /* Verbless fragments about oneself: "Single and not looking",
         * "Male, 45", "Vegan for 6 years", "Big fan of Radiohead", "Not
         * into sports", "Allergic to sulfa drugs", "Fluent in Mandarin". */
        int c = k;
        bool neg = false;
        /* "Six weeks vegetarian and counting": how long, then what. */
        if ((S_cls(S, c, LX_NUM) || (c < S->n && S->t[c].type == T_NUM)) &&
            (S_is(S, c + 1, "weeks") || S_is(S, c + 1, "months") ||
             S_is(S, c + 1, "years") || S_is(S, c + 1, "days")) &&
            S_cls(S, c + 2, LX_DIET))
            c += 2;
        if (S_is(S, c, "not") || S_is(S, c, "never")) {
            neg = true;
            c = skip_adv(S, c + 1);
        }
        const tok *t = c < S->n ? &S->t[c] : NULL;
        if (!t || t->type != T_WORD)
            return;
        bool frag = tis(t, "into") || tis(t, "allergic") || tis(t, "fluent") ||
                    (tis(t, "based") && (S_is(S, c + 1, "in") || S_is(S, c + 1, "out"))) ||
                    tis(t, "conversational") ||
                    ((tis(t, "big") || tis(t, "huge") || tis(t, "fan")) &&
                     (S_is(S, c + 1, "fan") || S_is(S, c + 1, "of"))) ||
                    (!neg && (tcls(t) & (LX_RELSTAT | LX_DIET)) &&
                     !S_cls(S, c + 1, LX_FOOD | LX_OCC) &&
                     (clause_end_tok(S, c + 1) || S_cls(S, c + 1, LX_CONJ | LX_PREP) ||
                      S_is(S, c + 1, "since"))) ||
                    (!neg && (tis(t, "male") || tis(t, "female")) &&
                     clause_end_tok(S, c + 1));
        if (!frag)
            return;
        memset(&v, 0, sizeof v);
        v.copula = true;
        v.verb = LV_BE;
        v.main = k;
        v.next = c;
        v.neg = neg;
        for (int q = c; q < S->n && q < c + 12; q++)
            if (S_is(S, q, "anymore") || S_is(S, q, "longer"))
                v.anymore = true;
    }
    if (v.progressive && !v.perfect && gerund_subject(S, k))
        return;
    subj sj = {SJ_SPEAKER, 0, 0, k, 1.0f};
    subject_frames_vg(x, S, &sj, &v, false);
}

static void subjects(xctx *x, sent *S)
{
    dropped_subject(x, S);
    for (int i = 0; i < S->n; i++) {
        const tok *t = &S->t[i];
        if (t->type != T_WORD)
            continue;
        subj sj = {0, 0, 0, i, x->assistant ? ASSIST_MUL : 1.0f};
        int vstart = i + 1;
        /* Only a pronoun or a capitalised word can be a subject ... */
        if (!(tcls(t) & LX_SUBJ) && !(t->flags & TF_CAP))
            continue;
        /* ... and only at a clause start: after nothing, punctuation, a
         * conjunction, a subordinator, an adverb or a time. */
        bool nominative = tis(t, "i") || tis(t, "we") || tis(t, "he") ||
                          tis(t, "she");
        if (i > 0 && !nominative) {
            const tok *p = &S->t[i - 1];
            bool start = p->type == T_PUNCT ||
                         (tcls(p) & (LX_CONJ | LX_SUB | LX_ADV | LX_INTERJ)) ||
                         (tcls(p) & LX_SPEECH) || tis(p, "then") ||
                         tis(p, "that");
            if (!start && !in_time(x, S, i - 1))
                continue;
        }
        if (nominative && i > 0 && S_cls(S, i - 1, LX_PREP) &&
            !S_is(S, i - 1, "like"))
            continue; /* "between you and I" */
        if (tis(t, "i")) {
            if (x->assistant)
                continue;
            sj.kind = SJ_SPEAKER;
        } else if (tis(t, "we")) {
            if (x->assistant)
                continue;
            sj.kind = SJ_WE;
            sj.mul *= 0.9f;
        } else if (tis(t, "you")) {
            if (!x->assistant)
                continue;
            sj.kind = SJ_SPEAKER;
        } else if (tis(t, "he") || tis(t, "she")) {
            int p = resolve(x, tis(t, "she"));
            if (p < 0)
                continue;
            sj.kind = SJ_OTHER;
            sj.off = x->people[p].off;
            sj.len = x->people[p].len;
            sj.mul *= 0.9f;
        } else if (speaker_tok(x, S, i) && !S_is(S, i + 1, "'s")) {
            sj.kind = SJ_SPEAKER;
        } else if (S_cap(S, i) && !S_is(S, i + 1, "'s")) {
            int e = name_run(S, i);
            if (e <= i)
                continue;
            bool known = find_person(x, t->off,
                                     S->t[e - 1].off + S->t[e - 1].len - t->off) >= 0 ||
                         find_person(x, t->off, t->len) >= 0;
            /* "Ivan and Mira moved": a name the lists lack, joined to one
             * they have. */
            bool joined = !t->lx && i >= 2 && S_is(S, i - 1, "and") && e == i + 1 &&
                          S_cap(S, i - 2) &&
                          (S_cls(S, i - 2, LX_FIRSTNAME) ||
                           find_person(x, S->t[i - 2].off, S->t[i - 2].len) >= 0);
            if (!known && !(tcls(t) & LX_FIRSTNAME) && !joined)
                continue;
            if (!known && (tcls(t) & LX_MONTH))
                continue;
            sj.kind = SJ_OTHER;
            sj.off = t->off;
            sj.len = S->t[e - 1].off + S->t[e - 1].len - t->off;
            vstart = e;
            if (!known && x->n_people < MAX_PEOPLE) {
                add_person(x, sj.off, sj.len, -1, 0);
                x->people[x->n_people - 1].subject_only = true;
            }
            /* "Ann, my sister, works at ..." */
            if (S_punct(S, vstart, ',')) {
                int q = vstart + 1;
                while (q < S->n && q - vstart < 6 && !S_punct(S, q, ','))
                    q++;
                if (S_punct(S, q, ','))
                    vstart = q + 1;
                /* "Dev's wife, Lena, is a nurse": the name is the
                 * appositive, its verb follows the comma. */
                else if (i > 0 && S_punct(S, i - 1, ',') &&
                         S_cls(S, vstart + 1, LX_BE | LX_HAVE) && S_word(S, vstart + 2))
                    vstart++;
            }
        } else {
            continue;
        }
        subject_frames(x, S, &sj, vstart);
        /* "Tom and Priya moved to Portland": the verb says it of both. */
        if (sj.kind == SJ_OTHER && i >= 2 && S_is(S, i - 1, "and") && S_cap(S, i - 2) &&
            !x->err) {
            const tok *n = &S->t[i - 2];
            bool known = find_person(x, n->off, n->len) >= 0;
            bool start = i == 2 || S_punct(S, i - 3, ',') || S_cls(S, i - 3, LX_CONJ | LX_SUB);
            if ((known || (tcls(n) & LX_FIRSTNAME)) && start && !speaker_tok(x, S, i - 2) &&
                !(tcls(n) & LX_MONTH) && name_run(S, i - 2) == i - 1) {
                subj o = {SJ_OTHER, n->off, n->len, i - 2, sj.mul};
                subject_frames(x, S, &o, vstart);
            }
        }
        /* "my wife Anika and I live in Leeds", "Sam and I both hate
         * olives": what the verb says holds for the named person too. */
        if (tis(t, "i") && !x->assistant && S_is(S, i - 1, "and") && S_cap(S, i - 2) &&
            !S_is(S, i - 3, "'s") && !x->err) {
            const tok *n = &S->t[i - 2];
            bool known = find_person(x, n->off, n->len) >= 0;
            if ((known || (tcls(n) & LX_FIRSTNAME)) && !speaker_tok(x, S, i - 2) &&
                !(tcls(n) & LX_MONTH)) {
                subj o = {SJ_OTHER, n->off, n->len, i - 2, sj.mul};
                x->joint = true;
                subject_frames(x, S, &o, vstart);
                x->joint = false;
            }
        }
    }
}

/* ---- entities ----------------------------------------------------------- */

static void scan_entities(xctx *x, sent *S)
{
    for (int i = 0; i < S->n; i++) {
        if (!S_cap(S, i) || (i > 0 && S_cap(S, i - 1)))
            continue;
        int s = i, e = i;
        while (e < S->n && e - s < 5 &&
               (S_cap(S, e) || (e > s && (S_is(S, e, "of") || S_punct(S, e, '&')) &&
                                S_cap(S, e + 1))))
            e++;
        int next = e;
        /* Leading lexicon words ("The", "My", "Hey") are not names. */
        while (s < e && S->t[s].lx &&
               !(tcls(&S->t[s]) & (LX_FIRSTNAME | LX_ORGNAME | LX_BRAND)))
            s++;
        while (e > s && S_is(S, e - 1, "of"))
            e--;
        i = next - 1;
        if (s >= e)
            continue;
        const tok *t = &S->t[s];
        uint64_t c = tcls(t);
        if (e - s == 1 && (t->flags & TF_UPPER) && !(c & LX_ORGNAME))
            continue;
        char *name = toks_str(x, S, s, e);
        if (!name)
            return;
        const tok *prev = s > 0 ? &S->t[s - 1] : NULL;
        bool locprep = prev && (tis(prev, "in") || tis(prev, "to") ||
                                tis(prev, "from") || tis(prev, "near") ||
                                tis(prev, "around") || tis(prev, "visit") ||
                                tis(prev, "visited") || tis(prev, "visiting"));
        bool withp = prev && (tis(prev, "with") || tis(prev, "met") ||
                              tis(prev, "and") || (tcls(prev) & LX_INTERJ) ||
                              (tpunct(prev, ',') && s >= 2 &&
                               (tcls(&S->t[s - 2]) & LX_INTERJ)));
        bool first_word = (t->flags & TF_FIRST) != 0;
        const gz_place *g[1];
        bool is_place = gz_lookup(name, strlen(name), g, 1) > 0;
        bool known_person = find_person(x, t->off, t->len) >= 0 ||
                            speaker_tok(x, S, s);
        ex_entity_type type = EX_ENT_CONCEPT;
        float conf = 0;
        if (tcls(&S->t[e - 1]) & LX_ORGSUF && e - s > 1) {
            type = EX_ENT_ORG;
            conf = 0.85f;
        } else if (c & LX_ORGNAME) {
            type = EX_ENT_ORG;
            conf = 0.75f;
        } else if (c & LX_BRAND) {
            type = EX_ENT_PRODUCT;
            conf = 0.7f;
        } else if (known_person) {
            type = EX_ENT_PERSON;
            conf = 0.85f;
        } else if (is_place && !(withp && (c & LX_FIRSTNAME))) {
            type = EX_ENT_PLACE;
            conf = locprep ? 0.85f : 0.7f;
        } else if (c & LX_FIRSTNAME) {
            type = EX_ENT_PERSON;
            conf = 0.75f;
        } else if (!t->lx && withp && !first_word) {
            type = EX_ENT_PERSON;
            conf = 0.55f;
        } else if (!t->lx && locprep && !first_word) {
            type = EX_ENT_PLACE;
            conf = 0.5f;
        }
        if (conf > 0) {
            char key[96];
            ex_name_key(name, strlen(name), key, sizeof key);
            bool seen = false;
            for (size_t q = 0; q < x->out->n_entities; q++) {
                char k2[96];
                const char *nm = x->out->entities[q].name;
                ex_name_key(nm, strlen(nm), k2, sizeof k2);
                seen |= strcmp(key, k2) == 0;
            }
            if (!seen)
                add_entity(x, name, type, conf, tspan(S, s, e));
        }
        dm_free(name);
    }
}

/* ---- entry points --------------------------------------------------------- */

void ex_result_free(ex_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_facts; i++) {
        dm_free(r->facts[i].subject);
        dm_free(r->facts[i].slot);
        dm_free(r->facts[i].value);
        dm_free(r->facts[i].prev_value);
    }
    for (size_t i = 0; i < r->n_events; i++) {
        dm_free(r->events[i].what);
        for (size_t k = 0; k < r->events[i].n_who; k++)
            dm_free(r->events[i].who[k]);
        dm_free(r->events[i].who);
    }
    for (size_t i = 0; i < r->n_entities; i++)
        dm_free(r->entities[i].name);
    for (size_t i = 0; i < r->n_relations; i++) {
        dm_free(r->relations[i].src);
        dm_free(r->relations[i].rel);
        dm_free(r->relations[i].dst);
    }
    dm_free(r->facts);
    dm_free(r->events);
    dm_free(r->entities);
    dm_free(r->relations);
    memset(r, 0, sizeof *r);
}

/* abbreviation -- a '.' after these does not end the sentence. */
static bool abbreviation(const tok *t, const tok *next)
{
    /* Titles never end a sentence ("Dr. Smith", "St. Louis"); a company
     * suffix or a month does unless a lowercase word follows. */
    static const char *const TITLE[] = {"mr", "mrs", "ms", "dr", "st", "jr",
                                        "sr", "prof", "mt", "ft", "vs",
                                        "approx"};
    static const char *const OTHER[] = {"inc", "corp", "co", "ltd", "jan",
                                        "feb", "aug", "sept", "oct", "nov",
                                        "dec", "etc"};
    if (t->type != T_WORD)
        return false;
    if (t->len == 1 && (t->flags & TF_CAP))
        return true; /* an initial: "J. K." */
    for (size_t i = 0; i < sizeof TITLE / sizeof *TITLE; i++)
        if (tis(t, TITLE[i]))
            return true;
    for (size_t i = 0; i < sizeof OTHER / sizeof *OTHER; i++)
        if (tis(t, OTHER[i]))
            return next->type != T_WORD || !(next->flags & (TF_CAP | TF_UPPER));
    return false;
}

/* name_later -- "Her name's Linda", "his name is Max" after the turn
 * mentioned an unnamed relative ("my mom's 70th birthday") or got a pet
 * ("We adopted a cat last Saturday, her name's Miso"): the name belongs
 * to that relative, or replaces the pet's species as the pet's value. */
static void name_later(xctx *x, sent *S, bool pets)
{
    if (x->assistant)
        return;
    for (int i = 0; i + 3 < S->n && !x->err; i++) {
        if (!(S_is(S, i, "her") || S_is(S, i, "his")) || !S_is(S, i + 1, "name") ||
            !(S_is(S, i + 2, "is") || S_is(S, i + 2, "'s")))
            continue;
        if (i > 0 && !S_punct(S, i - 1, ',') && !S_cls(S, i - 1, LX_CONJ | LX_INTERJ))
            continue;
        if (S->t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH))
            return;
        int a = i + 3, b = name_run(S, a);
        if (b <= a || speaker_tok(x, S, a) ||
            (tcls(&S->t[a]) & (LX_DAY | LX_MONTH | LX_ORGNAME)))
            return;
        int gender = S_is(S, i, "her") ? 1 : 2;
        uint32_t off = S->t[a].off, len = S->t[b - 1].off + S->t[b - 1].len - off;
        ex_result *r = x->out;
        /* The pet got earlier in the turn, known only by its species. */
        for (size_t q = r->n_facts; pets && q-- > 0;) {
            ex_fact *f = &r->facts[q];
            if (strcmp(f->slot, "pet") || f->subject[0] || f->polarity == EX_NEGATED ||
                !(f->value[0] >= 'a' && f->value[0] <= 'z'))
                continue;
            char *nm = span_str(x, off, off + len);
            if (!nm)
                return;
            for (size_t k = 0; k < r->n_relations; k++)
                if (!strcmp(r->relations[k].rel, "has_pet") &&
                    !strcmp(r->relations[k].dst, f->value) && !r->relations[k].src[0]) {
                    char *d = xstrdup(x, nm);
                    if (!d) {
                        dm_free(nm);
                        return;
                    }
                    dm_free(r->relations[k].dst);
                    r->relations[k].dst = d;
                }
            dm_free(f->value);
            f->value = nm;
            add_entity(x, nm, EX_ENT_CONCEPT, f->confidence, tspan(S, a, b));
            return;
        }
        if (pets || x->pending_rel < 0)
            return;
        int rel = x->pending_rel;
        if (x->pending_gender && x->pending_gender != gender)
            return;
        char slot[40];
        snprintf(slot, sizeof slot, "family.%s", FAMILY_REL[rel]);
        subj me = {SJ_SPEAKER, 0, 0, i, 1.0f};
        add_fact(x, S, &me, slot, toks_str(x, S, a, b), NULL, EX_ASSERTED, 0.85f, a, b,
                 EX_ENT_PERSON);
        add_person(x, off, len, rel, gender);
        x->pending_rel = -1;
        return;
    }
}

/* ---- reading a turn in its context --------------------------------------
 *
 * Chat leaves out what the turns before made plain.  Two elliptical
 * shapes are read as continuations of the context (ex_input.context):
 *   - a fragment that adds a value to the previous user turn's list:
 *     "I'm allergic to peanuts." then "Also shellfish, forgot to
 *     mention." (allergy shellfish), "And cats.", "Spanish too";
 *   - a short answer to the assistant's question: "When is the
 *     birthday?" then "March 4th." (birthday March 4 of the person whose
 *     birthday the conversation is about), "Where do you work?" then "At
 *     Acme.", "How old are you?" then "34".
 * Both work by restating: the earlier statement with the new value put
 * in place of the old one, or the question turned into a first-person
 * statement around the answer, is run through ex_extract (without
 * context, so there is no recursion), and what it gives is taken over
 * with the fragment's span and a confidence below a stated fact's.  The
 * restated text is never stored; only values from the current turn's
 * own words enter the result.
 */

#define CTX_CONF 0.8f
#define CTX_TEXT_MAX 480

/* Classes that make a stretch a clause rather than a bare noun phrase. */
#define CLAUSE_CLS                                                             \
    (LX_SUBJ | LX_BE | LX_HAVE | LX_DO | LX_MODAL | LX_WILL | LX_CAN |        \
     LX_NEG | LX_QWORD | LX_SUB | LX_PRONOBJ | LX_HYPO | LX_SPEECH)

/* first_sentence -- the number of tokens of the first sentence of t[0..n),
 * its closing punctuation included. */
static size_t first_sentence(const tok *t, size_t n)
{
    for (size_t e = 0; e < n; e++) {
        if (e > 0 && (t[e].flags & TF_NL))
            return e;
        if (t[e].type == T_PUNCT && strchr(".!?;", t[e].p)) {
            while (e + 1 < n && t[e + 1].type == T_PUNCT && strchr(".!?;", t[e + 1].p))
                e++;
            return e + 1;
        }
    }
    return n;
}

/* vague_word -- a word that names no value: an indefinite or negative
 * pronoun ("nothing", "nowhere", "stuff"), or an unknown lowercase word
 * shaped like a participle or an adverb ("tired", "honestly"). */
static bool vague_word(const tok *t)
{
    static const char *const VAGUE[] = {
        "nowhere", "nothing", "none", "nobody", "noone", "anywhere", "anything",
        "anyone", "anybody", "everywhere", "everything", "everyone", "everybody",
        "somewhere", "something", "someone", "somebody", "whatever", "stuff",
        "things", "etc", "same", "lots", "all", "both", "else", "thanks",
        "please", "lol", "haha", "yes", "no", "yeah", "ok", "okay"};
    if (t->type != T_WORD)
        return false;
    for (size_t i = 0; i < sizeof VAGUE / sizeof *VAGUE; i++)
        if (tis(t, VAGUE[i]))
            return true;
    size_t n = strlen(t->w);
    return !t->lx && !(t->flags & (TF_CAP | TF_UPPER)) && n > 4 &&
           (!strcmp(t->w + n - 2, "ed") || !strcmp(t->w + n - 2, "ly"));
}

/* bare_np -- t[a..b) is one short noun phrase: words and numbers with no
 * verb, subject, auxiliary, negation or question word. */
static bool bare_np(const tok *t, size_t a, size_t b, size_t max_words,
                    bool preps)
{
    if (b <= a || b - a > max_words)
        return false;
    bool content = false;
    for (size_t i = a; i < b; i++) {
        if (t[i].type == T_PUNCT) {
            /* "Austin, Texas" answers as a whole; a list is split first. */
            if (t[i].p == '-' || t[i].p == '\'' || (preps && t[i].p == ','))
                continue;
            return false;
        }
        uint64_t c = tcls(&t[i]);
        if ((c & (CLAUSE_CLS | LX_MODADJ)) || (!preps && (c & LX_PREP)) || vague_word(&t[i]) ||
            (tverb(&t[i]) != LV_NONE && !(tform(&t[i]) & LXF_ING) &&
             !(c & (LX_FOOD | LX_ACTIVITY | LX_ANIMAL | LX_LANG))))
            return false;
        if (!(c & (LX_ART | LX_PREP | LX_INTERJ)))
            content = true;
    }
    return content;
}

/* ctx_extract -- ex_extract of text (len bytes) as said by the speaker at
 * the current turn's time, without context. */
static int ctx_extract(xctx *x, const char *text, size_t len, ex_result *r)
{
    ex_input in = {text, len, x->in->speaker, "user", x->in->time_us, NULL, 0};
    int rc = ex_extract(&in, r);
    if (rc == DM_ENOMEM)
        x->err = DM_ENOMEM;
    return rc;
}

/* take_over -- copies the facts of r (a restated text) of slot (NULL:
 * any) said of from (NULL: anyone) into the result, with subject (NULL:
 * the same), the span sp of the current turn's words and a confidence of
 * at most CTX_CONF, and the relations and entities that name their
 * values.  A value the turn already has is not repeated.  Returns the
 * number of facts added. */
static int take_over(xctx *x, const ex_result *r, const char *slot,
                     const char *skip_value, const char *from, const char *subject,
                     ex_span sp)
{
    ex_result *o = x->out;
    int added = 0;
    for (size_t i = 0; i < r->n_facts && !x->err; i++) {
        const ex_fact *f = &r->facts[i];
        const char *sub = subject ? subject : f->subject;
        if ((slot && strcmp(f->slot, slot)) || (from && strcmp(f->subject, from)) ||
            (skip_value && !strcasecmp(f->value, skip_value)) ||
            (sub[0] && !strcmp(f->slot, "name")))
            continue;
        bool dup = false;
        for (size_t k = 0; k < o->n_facts && !dup; k++)
            dup = !strcmp(o->facts[k].subject, sub) && !strcmp(o->facts[k].slot, f->slot) &&
                  !strcasecmp(o->facts[k].value, f->value);
        if (dup)
            continue;
        ex_fact *e = grow(x, o->facts, o->n_facts, &x->cap_f, sizeof *e);
        if (!e)
            return added;
        o->facts = e;
        char *s1 = xstrdup(x, sub), *s2 = xstrdup(x, f->slot),
             *s3 = xstrdup(x, f->value),
             *s4 = f->prev_value ? xstrdup(x, f->prev_value) : NULL;
        if (x->err) {
            dm_free(s1);
            dm_free(s2);
            dm_free(s3);
            dm_free(s4);
            return added;
        }
        ex_fact *n = &o->facts[o->n_facts++];
        *n = *f;
        n->subject = s1;
        n->slot = s2;
        n->value = s3;
        n->prev_value = s4;
        n->confidence = f->confidence < CTX_CONF ? f->confidence : CTX_CONF;
        n->span = sp;
        added++;
        /* The restatement knows what the value is ("Max" after "your
         * dog's name" is a pet, not a person). */
        for (size_t k = 0; k < r->n_entities; k++) {
            if (strcasecmp(r->entities[k].name, f->value))
                continue;
            add_entity(x, r->entities[k].name, r->entities[k].type, n->confidence, sp);
            for (size_t q = 0; q < o->n_entities; q++)
                if (!strcasecmp(o->entities[q].name, f->value))
                    o->entities[q].type = r->entities[k].type;
        }
        for (size_t k = 0; k < r->n_relations; k++) {
            const ex_relation *q = &r->relations[k];
            if (strcasecmp(q->dst, f->value) || strcmp(q->src, f->subject))
                continue;
            add_relation(x, sub, q->rel, q->dst, n->confidence, sp);
        }
    }
    return added;
}

static bool word_byte(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (unsigned char)c >= 0x80;
}

/* ci_find -- the last case-insensitive occurrence of needle in
 * hay[0..n) that stands as whole words, or -1. */
static long ci_find(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = n >= m ? n - m + 1 : 0; m && i-- > 0;) {
        if (strncasecmp(hay + i, needle, m))
            continue;
        bool lb = i == 0 || !word_byte(hay[i - 1]);
        bool rb = i + m == n || !word_byte(hay[i + m]);
        if (lb && rb)
            return (long)i;
    }
    return -1;
}

/* more_of -- "Also shellfish, forgot to mention." after "I'm allergic to
 * peanuts.": the first sentence of the turn (toks t[0..n)) names more
 * values of the list the previous user turn stated. */
static void more_of(xctx *x, const tok *t, size_t n)
{
    const ex_turn *pv = &x->in->context[x->in->n_context - 1];
    if (!pv->text || !pv->role || strcmp(pv->role, "user"))
        return;
    size_t a = 0, b = n;
    while (b > a && t[b - 1].type == T_PUNCT && strchr(".!?", t[b - 1].p))
        b--;
    /* The continuation marker: "also", "and", "plus", "oh and" before,
     * "too", "as well", "also" after; "or"/"nor" continue a negation. */
    bool marked = false, alt = false;
    while (a < b) {
        if (tis(&t[a], "also") || tis(&t[a], "and") || tis(&t[a], "plus"))
            marked = true;
        else if (tis(&t[a], "or") || tis(&t[a], "nor"))
            alt = true;
        else if (!(tis(&t[a], "oh") || tis(&t[a], "ah") || tis(&t[a], "oops") ||
                   tpunct(&t[a], ',') || tpunct(&t[a], '-')))
            break;
        a++;
    }
    /* An aside after a comma: "forgot to mention", "I should add". */
    size_t end = b;
    for (size_t i = a; i < b; i++) {
        if (!tpunct(&t[i], ',') && !tpunct(&t[i], '-') && !tpunct(&t[i], '('))
            continue;
        bool aside = false;
        for (size_t k = i + 1; k < b; k++)
            if (tis(&t[k], "forgot") || tis(&t[k], "forget") || tis(&t[k], "mention") ||
                tis(&t[k], "mentioned") || tis(&t[k], "add") || tis(&t[k], "btw") ||
                tis(&t[k], "lol") || tis(&t[k], "haha"))
                aside = true;
        if (aside) {
            end = i;
            break;
        }
    }
    b = end;
    if (b >= a + 2 && tis(&t[b - 2], "as") && tis(&t[b - 1], "well")) {
        marked = true;
        b -= 2;
    } else if (b > a && (tis(&t[b - 1], "too") || tis(&t[b - 1], "also"))) {
        marked = true;
        b--;
    }
    while (b > a && (tpunct(&t[b - 1], ',') || tpunct(&t[b - 1], '-')))
        b--;
    if ((!marked && !alt) || b <= a)
        return;

    ex_result prev;
    if (ctx_extract(x, pv->text, strlen(pv->text), &prev) != DM_OK)
        return;
    /* The list: the last fact of a multi-valued slot, whose value is
     * written in the turn as such. */
    const ex_fact *lf = NULL;
    long vat = -1;
    for (size_t i = 0; i < prev.n_facts; i++) {
        const ex_fact *f = &prev.facts[i];
        if (ex_slot_single(f->slot) || f->polarity == EX_CORRECTION ||
            (lf && f->span.off < lf->span.off))
            continue;
        long at = ci_find(pv->text + f->span.off, f->span.len, f->value);
        if (at < 0)
            continue;
        lf = f;
        vat = (long)f->span.off + at;
    }
    if (!lf || (alt && lf->polarity != EX_NEGATED))
        goto out;
    bool cap_old = lf->value[0] >= 'A' && lf->value[0] <= 'Z';
    /* Each item of "shellfish and tree nuts" / "dogs, cats". */
    for (size_t i = a; i < b && !x->err;) {
        size_t j = i;
        while (j < b && !tpunct(&t[j], ',') && !tis(&t[j], "and") && !tis(&t[j], "&"))
            j++;
        size_t ia = i, ib = j;
        i = j + 1;
        /* A proper name continues a list of names and a common noun one
         * of common nouns; the sentence's first word says nothing. */
        bool first = ia == 0 || (t[ia].flags & TF_FIRST);
        if (!bare_np(t, ia, ib, 4, false) ||
            (!first && (bool)(t[ia].flags & (TF_CAP | TF_UPPER)) != cap_old))
            continue;
        uint32_t so = t[ia].off, se = t[ib - 1].off + t[ib - 1].len;
        char item[96];
        if (se - so >= sizeof item)
            continue;
        memcpy(item, x->text + so, se - so);
        item[se - so] = 0;
        if (first && !cap_old && (t[ia].flags & TF_CAP) && item[0] >= 'A' && item[0] <= 'Z')
            item[0] = (char)(item[0] + 32);
        /* The turn's own reading of the item wins. */
        bool own = false;
        for (size_t k = 0; k < x->out->n_facts; k++)
            own |= ci_find(x->out->facts[k].value, strlen(x->out->facts[k].value), item) >= 0;
        if (own)
            continue;
        char buf[CTX_TEXT_MAX];
        size_t vlen = strlen(lf->value), pre = (size_t)vat - lf->span.off,
               post = lf->span.len - pre - vlen;
        if (lf->span.len - vlen + strlen(item) + 2 > sizeof buf)
            continue;
        int k = snprintf(buf, sizeof buf, "%.*s%s%.*s.", (int)pre, pv->text + lf->span.off,
                         item, (int)post, pv->text + vat + vlen);
        ex_result r;
        if (k <= 0 || ctx_extract(x, buf, (size_t)k, &r) != DM_OK)
            continue;
        bool ok = false;
        for (size_t q = 0; q < r.n_facts; q++)
            ok |= !strcmp(r.facts[q].slot, lf->slot) && !strcmp(r.facts[q].subject, lf->subject) &&
                  r.facts[q].polarity == lf->polarity && strcasecmp(r.facts[q].value, lf->value);
        if (ok) {
            ex_span sp = {t[0].off, t[n - 1].off + t[n - 1].len - t[0].off};
            take_over(x, &r, lf->slot, lf->value, lf->subject, NULL, sp);
        }
        ex_result_free(&r);
    }
out:
    ex_result_free(&prev);
}

static void tb_init(tokbuf *b)
{
    b->t = b->local;
    b->n = 0;
    b->cap = sizeof b->local / sizeof b->local[0];
    b->err = 0;
}

static void tb_free(tokbuf *b)
{
    if (b->t != b->local)
        dm_free(b->t);
}

static bool copy_str(char *out, size_t cap, const char *s, size_t len)
{
    if (len + 1 > cap)
        return false;
    memcpy(out, s, len);
    out[len] = 0;
    return true;
}

/* latest_person -- the person the user turns of the context named last
 * (a relative's name, or the subject of a statement about someone). */
static bool latest_person(xctx *x, char *out, size_t cap)
{
    for (size_t c = x->in->n_context; c-- > 0 && !x->err;) {
        const ex_turn *u = &x->in->context[c];
        if (!u->text || !u->role || strcmp(u->role, "user"))
            continue;
        ex_result r;
        if (ctx_extract(x, u->text, strlen(u->text), &r) != DM_OK)
            return false;
        const char *who = NULL;
        uint32_t at = 0;
        for (size_t i = 0; i < r.n_facts; i++) {
            const ex_fact *f = &r.facts[i];
            const char *p = NULL;
            if (f->subject[0])
                p = f->subject;
            else if (!strncmp(f->slot, "family.", 7) && f->polarity != EX_NEGATED &&
                     f->value[0] >= 'A' && f->value[0] <= 'Z')
                p = f->value;
            if (p && (!who || f->span.off >= at)) {
                who = p;
                at = f->span.off;
            }
        }
        bool ok = who && copy_str(out, cap, who, strlen(who));
        ex_result_free(&r);
        if (who)
            return ok;
    }
    return false;
}

/* whose -- the person whose <head> ("birthday") the user turns of the
 * context speak of: "my mom's 70th birthday" with "Her name's Linda" is
 * Linda's, "my birthday" the speaker's (""), "Ann's birthday" Ann's.
 * False when no turn says, or the owner has no name. */
static bool whose(xctx *x, const char *head, char *out, size_t cap)
{
    for (size_t c = x->in->n_context; c-- > 0 && !x->err;) {
        const ex_turn *u = &x->in->context[c];
        if (!u->text || !u->role || strcmp(u->role, "user"))
            continue;
        tokbuf b;
        tb_init(&b);
        tokenize(&b, u->text, strlen(u->text));
        int res = 0; /* 1 found, -1 give up */
        for (size_t i = b.n; i-- > 0 && !res && !b.err;) {
            if (!tis(&b.t[i], head))
                continue;
            /* Over the words between owner and head ("70th", "big"). */
            size_t p = i;
            while (p > 0 && i - p < 3 && b.t[p - 1].type != T_PUNCT &&
                   !tis(&b.t[p - 1], "'s") && !(tcls(&b.t[p - 1]) & (LX_POSS | LX_ART)))
                p--;
            if (p == 0)
                continue;
            const tok *q = &b.t[p - 1];
            if (tis(q, "my") || tis(q, "our")) {
                out[0] = 0;
                res = 1;
            } else if (tis(q, "'s") && p >= 2 && (tcls(&b.t[p - 2]) & LX_FAMILY) && p >= 3 &&
                       (tis(&b.t[p - 3], "my") || tis(&b.t[p - 3], "our")) &&
                       b.t[p - 2].lx->data < sizeof FAMILY_REL / sizeof *FAMILY_REL) {
                /* The relative's name, from that turn's own facts. */
                char slot[48];
                snprintf(slot, sizeof slot, "family.%s", FAMILY_REL[b.t[p - 2].lx->data]);
                ex_result r;
                res = -1;
                if (ctx_extract(x, u->text, strlen(u->text), &r) == DM_OK) {
                    for (size_t k = 0; k < r.n_facts; k++)
                        if (!r.facts[k].subject[0] && !strcmp(r.facts[k].slot, slot) &&
                            r.facts[k].polarity != EX_NEGATED &&
                            copy_str(out, cap, r.facts[k].value, strlen(r.facts[k].value)))
                            res = 1;
                    ex_result_free(&r);
                }
            } else if (tis(q, "'s") && p >= 2 && (b.t[p - 2].flags & TF_CAP) &&
                       b.t[p - 2].type == T_WORD &&
                       !(tcls(&b.t[p - 2]) & (LX_FAMILY | LX_MONTH | LX_DAY))) {
                res = copy_str(out, cap, u->text + b.t[p - 2].off, b.t[p - 2].len) ? 1 : -1;
            }
        }
        if (b.err)
            x->err = b.err;
        tb_free(&b);
        if (res)
            return res > 0;
    }
    return false;
}

/* answer -- the first sentence of the turn (toks t[0..n)) is a short
 * answer to the question the assistant just asked: restated as the
 * first-person statement the question asks for. */
static void answer(xctx *x, const tok *t, size_t n)
{
    const ex_turn *qt = &x->in->context[x->in->n_context - 1];
    if (!qt->text || !qt->role || strcmp(qt->role, "assistant"))
        return;
    size_t a = 0, b = n;
    while (b > a && t[b - 1].type == T_PUNCT && strchr(".!", t[b - 1].p))
        b--;
    while (a < b && (tis(&t[a], "oh") || tis(&t[a], "um") || tis(&t[a], "uh") ||
                     tpunct(&t[a], ',')))
        a++;
    static const char *const NOT_ANSWER[] = {"yes", "no", "yeah", "yep", "nope", "not",
                                             "maybe", "sure", "idk", "dunno", "probably",
                                             "ok", "okay", "thanks", "thank", "same"};
    if (a >= b || t[a].type == T_PUNCT)
        return;
    for (size_t i = 0; i < sizeof NOT_ANSWER / sizeof *NOT_ANSWER; i++)
        if (tis(&t[a], NOT_ANSWER[i]))
            return;
    if (!bare_np(t, a, b, 6, true))
        return;
    uint32_t fo = t[a].off, fe = t[b - 1].off + t[b - 1].len;
    for (size_t k = 0; k < x->out->n_facts; k++)
        if (x->out->facts[k].span.off < fe &&
            x->out->facts[k].span.off + x->out->facts[k].span.len > fo)
            return;
    /* The question: the last sentence of the assistant's turn, if it
     * ends with '?'. */
    const char *q = qt->text;
    size_t qe = strlen(q);
    while (qe > 0 && (q[qe - 1] == ' ' || q[qe - 1] == '\n'))
        qe--;
    if (qe == 0 || q[qe - 1] != '?')
        return;
    qe--;
    size_t qs = qe;
    while (qs > 0 && !strchr(".!?\n", q[qs - 1]))
        qs--;
    tokbuf qb;
    tb_init(&qb);
    tokenize(&qb, q + qs, qe - qs);
    if (qb.err) {
        x->err = qb.err;
        goto out;
    }
    const tok *w = qb.t;
    size_t m = qb.n, k = 0;
    while (k < m && (tcls(&w[k]) & (LX_INTERJ | LX_CONJ) || w[k].type == T_PUNCT ||
                     tis(&w[k], "so")))
        k++;
    char buf[CTX_TEXT_MAX], who[96];
    const char *subject = NULL; /* NULL: as the restatement says */
    int len = -1;
    int flen = (int)(fe - fo);
    const char *frag = x->text + fo;
    bool fprep = (tcls(&t[a]) & LX_PREP) != 0;
#define QW(i, s) ((i) < m && tis(&w[i], s))
    if (k + 3 < m + 1 && (QW(k, "what") || QW(k, "when") || QW(k, "where") || QW(k, "who")) &&
        (QW(k + 1, "is") || QW(k + 1, "'s") || QW(k + 1, "was") || QW(k + 1, "are")) &&
        !QW(k + 2, "you")) {
        /* "What's your dog's name?" -> "My dog's name is Max." */
        size_t p = k + 2, np = p + 1;
        if (QW(p, "your")) {
            subject = "";
        } else if (QW(p, "her") || QW(p, "his") || QW(p, "the")) {
            const char *head = m > np ? w[m - 1].w : "";
            bool ok = whose(x, head, who, sizeof who);
            if (!QW(p, "the") && (!ok || !who[0]))
                ok = latest_person(x, who, sizeof who);
            if (!ok)
                goto out;
            subject = who;
        } else if (p + 1 < m && (w[p].flags & TF_CAP) && tis(&w[p + 1], "'s") &&
                   !(tcls(&w[p]) & (LX_FAMILY | LX_MONTH | LX_DAY))) {
            if (!copy_str(who, sizeof who, q + qs + w[p].off, w[p].len))
                goto out;
            subject = who;
            np = p + 2;
        } else {
            goto out;
        }
        if (np >= m || m - np > 4)
            goto out;
        for (size_t i = np; i < m; i++)
            if (w[i].type != T_WORD || (tcls(&w[i]) & CLAUSE_CLS))
                goto out;
        uint32_t no = w[np].off, ne = w[m - 1].off + w[m - 1].len;
        len = snprintf(buf, sizeof buf, "My %.*s %s %.*s.", (int)(ne - no), q + qs + no,
                       QW(k + 1, "are") ? "are" : "is", flen, frag);
    } else if (QW(k, "where") && k + 2 < m) {
        /* "Where do you work?" -> "I work at Acme." */
        static const struct {
            const char *q1, *q2, *q3, *say, *prep;
        } WHERE[] = {
            {"do", "you", "work", "I work", "at"},
            {"did", "you", "work", "I worked", "at"},
            {"are", "you", "working", "I work", "at"},
            {"do", "you", "live", "I live", "in"},
            {"are", "you", "living", "I live", "in"},
            {"are", "you", "based", "I am based", "in"},
            {"are", "you", "from", "I am from", ""},
            {"are", "you", "originally", "I am originally from", ""},
            {"did", "you", "grow", "I grew up", "in"},
            {"do", "you", "study", "I study", "at"},
            {"did", "you", "study", "I studied", "at"},
            {"did", "you", "go", "I went", "to"},
        };
        for (size_t i = 0; i < sizeof WHERE / sizeof *WHERE && len < 0; i++) {
            if (!QW(k + 1, WHERE[i].q1) || !QW(k + 2, WHERE[i].q2) || !QW(k + 3, WHERE[i].q3))
                continue;
            /* "Where did you go?" asks for a trip, not a school. */
            if (!strcmp(WHERE[i].q3, "go") &&
                !(QW(k + 4, "to") && (QW(k + 5, "school") || QW(k + 5, "college") ||
                                      QW(k + 5, "university") || QW(k + 5, "uni"))))
                continue;
            bool bare = fprep || !WHERE[i].prep[0];
            len = snprintf(buf, sizeof buf, "%s%s%s %.*s.", WHERE[i].say, bare ? "" : " ",
                           bare ? "" : WHERE[i].prep, flen, frag);
        }
    } else if (QW(k, "how") && QW(k + 1, "old") && QW(k + 2, "are") && QW(k + 3, "you") &&
               k + 4 == m) {
        /* "How old are you?" -> "I'm 34." */
        bool num = false;
        for (size_t i = a; i < b; i++)
            num |= t[i].type == T_NUM || (tcls(&t[i]) & LX_NUM);
        if (num && !fprep)
            len = snprintf(buf, sizeof buf, "I am %.*s.", flen, frag);
    } else if (QW(k, "what") && m >= k + 4 && m <= k + 7 && QW(m - 2, "you") &&
               (QW(m - 3, "do") || QW(m - 3, "did")) && tverb(&w[m - 1]) != LV_NONE &&
               tverb(&w[m - 1]) != LV_DO && (tform(&w[m - 1]) & LXF_BASE) && !fprep) {
        /* "What languages do you speak?" -> "I speak Spanish." */
        len = snprintf(buf, sizeof buf, "I %s %.*s.", w[m - 1].w, flen, frag);
    }
#undef QW
    if (len > 0 && (size_t)len < sizeof buf) {
        ex_result r;
        if (ctx_extract(x, buf, (size_t)len, &r) == DM_OK) {
            ex_span sp = {fo, fe - fo};
            take_over(x, &r, NULL, NULL, "", subject, sp);
            ex_result_free(&r);
        }
    }
out:
    tb_free(&qb);
}

/* in_context -- the elliptical readings of the turn's first sentence. */
static void in_context(xctx *x, const tokbuf *tb)
{
    if (x->assistant || !x->in->context || x->in->n_context == 0 || tb->n == 0)
        return;
    size_t n = first_sentence(tb->t, tb->n);
    more_of(x, tb->t, n);
    if (!x->err)
        answer(x, tb->t, n);
}

int ex_extract(const ex_input *in, ex_result *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!in || !out)
        return err_set_msg(DM_EINVAL, "ex_extract: %s is NULL",
                           !in ? "input" : "out");
    if (!in->text && in->len > 0)
        return err_set_msg(DM_EINVAL, "ex_extract: text is NULL");
    if (in->len > UINT32_MAX)
        return err_set_msg(DM_EINVAL, "ex_extract: text of %zu bytes is too "
                                      "long (spans are 32-bit)",
                           in->len);
    if (in->len == 0 || !utf8_valid((const unsigned char *)in->text, in->len))
        return DM_OK;

    xctx x;
    memset(&x, 0, sizeof x);
    x.in = in;
    x.text = in->text;
    x.len = in->len;
    x.out = out;
    x.assistant = in->role && strcmp(in->role, "assistant") == 0;
    if (in->speaker && in->speaker[0]) {
        x.spk = in->speaker;
        while (x.spk[x.spk_len] && x.spk[x.spk_len] != ' ')
            x.spk_len++;
    }
    x.day_from = fdiv(in->time_us, DAY_US) * DAY_US;
    x.pending_rel = -1;

    tokbuf tb;
    tb.t = tb.local;
    tb.n = 0;
    tb.cap = sizeof tb.local / sizeof tb.local[0];
    tb.err = 0;
    tokenize(&tb, in->text, in->len);
    if (tb.err) {
        x.err = tb.err;
        goto done;
    }

    size_t s0 = 0;
    while (s0 < tb.n && !x.err) {
        /* The sentence runs to a . ! ? ; (and any that follow, and a
         * closing quote or bracket), or to a line break. */
        size_t e = s0;
        while (e < tb.n) {
            const tok *t = &tb.t[e];
            if (e > s0 && (t->flags & TF_NL))
                break;
            if (t->type == T_PUNCT &&
                (t->p == '!' || t->p == '?' || t->p == ';' ||
                 (t->p == '.' &&
                  !(e > s0 && e + 1 < tb.n && !(tb.t[e + 1].flags & TF_NL) &&
                    abbreviation(&tb.t[e - 1], &tb.t[e + 1]))))) {
                e++;
                while (e < tb.n && tb.t[e].type == T_PUNCT &&
                       !(tb.t[e].flags & TF_NL) &&
                       strchr(".!?;\"')", tb.t[e].p))
                    e++;
                break;
            }
            e++;
        }
        sent S;
        memset(&S, 0, sizeof S);
        S.t = tb.t + s0;
        S.n = (int)(e - s0);
        S.off = S.t[0].off;
        S.end = S.t[S.n - 1].off + S.t[S.n - 1].len;
        for (int i = 0; i < S.n; i++)
            if (S.t[i].type == T_WORD) {
                S.t[i].flags |= TF_FIRST;
                break;
            }
        sentence_marks(&x, &S);
        /* Possessives of the speaker: "my ...", "your ..." for an
         * assistant, "Caroline's ..." by Caroline. */
        const char *mine = x.assistant ? "your" : "my";
        for (int i = 0; i < S.n && !x.err; i++) {
            bool own = tis(&S.t[i], mine) || (!x.assistant && tis(&S.t[i], "our"));
            bool named = speaker_tok(&x, &S, i) && S_is(&S, i + 1, "'s");
            if (!own && !named)
                continue;
            subj sj = {SJ_SPEAKER, 0, 0, i, x.assistant ? ASSIST_MUL : 1.0f};
            if (tis(&S.t[i], "our"))
                sj.mul *= 0.9f;
            bool ok = !S.question &&
                      !(S.t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH));
            poss_at(&x, &S, &sj, i, named ? i + 2 : i + 1, ok);
        }
        /* A relative's relative: "my sister Beth's husband Carl" (Beth is
         * already known from this turn). */
        for (int i = 0; i < S.n && !x.err && !x.assistant; i++) {
            if (!S_cap(&S, i) || !S_is(&S, i + 1, "'s") || !S_cls(&S, i + 2, LX_FAMILY) ||
                speaker_tok(&x, &S, i) ||
                (find_person(&x, S.t[i].off, S.t[i].len) < 0 &&
                 !((S_cls(&S, i, LX_FIRSTNAME) || !S.t[i].lx) && name_run(&S, i) == i + 1 &&
                   (i == 0 || !S_cap(&S, i - 1)))))
                continue;
            /* "Dev's wife": an unknown word is a name only if no place */
            const gz_place *gp[1];
            if (!S.t[i].lx && gz_lookup(x.text + S.t[i].off, S.t[i].len, gp, 1) > 0)
                continue;
            subj sj = {SJ_OTHER, S.t[i].off, S.t[i].len, i, 0.9f};
            bool ok = !S.question && !(S.t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH));
            family_names(&x, &S, &sj, i + 2, ok, -1);
        }
        /* "Grandma Betty", "Uncle Bob": a relation used as a title */
        for (int i = 0; i < S.n && !x.err && !x.assistant; i++) {
            if (!S_cls(&S, i, LX_FAMILY) || !(S.t[i].flags & TF_CAP) ||
                !S_cap(&S, i + 1) || S_cls(&S, i + 1, LX_FAMILY) ||
                (i > 0 && (S_cls(&S, i - 1, LX_POSS | LX_ART) || S_cap(&S, i - 1))))
                continue;
            int rel = S.t[i].lx->data;
            if (!(rel == 11 || rel == 12 || rel == 15 || rel == 16 || rel == 17))
                continue;
            subj sj = {SJ_SPEAKER, 0, 0, i, 1.0f};
            bool ok = !S.question && !(S.t[i].mark & (TM_HYPO | TM_REPORTED | TM_WISH));
            family_names(&x, &S, &sj, i, ok, -1);
        }
        as_a(&x, &S);
        if (!S.question) {
            /* Relatives named here are subjects of what follows; pets got
             * in this sentence are named after its frames. */
            size_t ev0 = x.out->n_events;
            name_later(&x, &S, false);
            specials(&x, &S);
            here_in(&x, &S);
            now_living(&x, &S);
            agent_hobby(&x, &S);
            outgrown(&x, &S);
            hired_by(&x, &S);
            own_work(&x, &S);
            goal_heading(&x, &S);
            first_day_at(&x, &S);
            subjects(&x, &S);
            org_sentence(&x, &S);
            deaths(&x, &S);
            where_lives(&x, &S);
            noun_events(&x, &S, ev0);
            name_later(&x, &S, true);
        }
        scan_entities(&x, &S);
        s0 = e;
    }
    if (!x.err)
        in_context(&x, &tb);
done:
    if (tb.t != tb.local)
        dm_free(tb.t);
    if (x.err) {
        ex_result_free(out);
        return err_set_msg(x.err, "ex_extract: out of memory");
    }
    return DM_OK;
}
