/*
 * llm.c -- an OpenAI-compatible chat-completion client through libcurl,
 * and the LLM extractor built on it (see llm.h).
 *
 * PROTOCOL.  POST {base_url}/chat/completions with the JSON body
 *     {"model": M, "messages": [{"role": R, "content": C}, ...],
 *      "temperature": T, "max_tokens": N, "stream": false}
 * plus, for structured output,
 *     "response_format": {"type": "json_schema", "json_schema":
 *         {"name": "deltamemory", "schema": S, "strict": true}}
 * and "Authorization: Bearer KEY" when the key's environment variable is
 * set (read once, at open).  The reply must carry a string in
 * choices[0].message.content; usage.prompt_tokens and
 * usage.completion_tokens are added to the totals when present.
 *
 * DESIGN (client).  The same as the HTTP embedding provider
 * (src/embed/http.c): each request gets up to 1 + retries attempts; an
 * attempt that fails with a connection error, a timeout, HTTP 429 or HTTP
 * 5xx is retried after 100 ms * 2^attempt (capped at 5 s), or after the
 * server's Retry-After when that is longer (at most 30 s).  Other HTTP
 * errors and malformed replies are not retried: the same request would
 * get the same answer.  Errors name the URL, the HTTP status or curl
 * error, and an excerpt of the reply body.  Every llm_chat that gets past
 * argument checks counts once, in `calls` (an answer with content) or in
 * `failures` (anything else).
 *
 * DESIGN (extractor).  The system prompt is a fixed text (the task, the
 * taxonomy of extract.h, the output rules), built once at open so that
 * servers with prefix caching reuse it across turns, followed by the
 * turn's time (ISO 8601 and weekday, for resolving "last Saturday") and
 * who said it; the user message is the turn's text.  The answer must be
 * one JSON object {"facts": [...], "events": [...], "relations": [...]}
 * (the JSON Schema below is sent as response_format; servers that ignore
 * it still get the same rules in the prompt).  Every item is validated --
 * known slot, relation and event type, non-empty value, polarity, a
 * confidence in [0, 1] (out of range is invalid, not clamped), ISO 8601
 * dates with from < to -- and one bad item makes the whole answer
 * invalid: the model is then shown its answer and told what was wrong, up
 * to max_calls calls in all.  When no valid answer comes (or the server
 * fails), a copy of the built-in result is returned and a warning logged,
 * so that no fact is silently dropped.
 *
 * Conversion of a valid answer.  Subjects naming the user ("I", "me",
 * "user", the speaker's own name) become "" as extract.h requires.
 * Assistant turns have their confidences multiplied by 0.45, the built-in
 * extractor's factor for reported speech, so both extractors' numbers
 * stay on one scale.  A fact without valid_from takes the turn's time; an
 * event without a time takes the turn's UTC day; an event with `from` but
 * no `to` lasts the period `from` names (a year, a month, a day; an hour
 * for a time of day).  Spans: the first case-insensitive occurrence of
 * the value (of the relation's dst) in the text, else the whole turn.
 * Entities, which the answer does not list, are the built-in result's
 * plus the names the answer types: relation endpoints, event
 * participants, other subjects, and fact values of place, organisation,
 * person and concept slots.
 *
 * LOCKING.  The POSTs, their retries and the pool of libcurl handles are
 * the shared client's (src/os/httpc.c), which is safe from many threads.
 * The totals are atomics.  Everything else is immutable after open, so
 * every function may be called from many threads at once.
 *
 * Memory: our allocations go through dm_malloc; jansson and libcurl
 * allocate internally with malloc (json_dumps output is released with
 * free).  Every string and array of an ex_result filled here is
 * dm_malloc'd, as ex_result_free expects.
 */
#include "cognitive/llm.h"

#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "os/httpc.h"

#define LLM_DEFAULT_TIMEOUT_MS 30000
#define LLM_DEFAULT_RETRIES 2
#define LLM_DEFAULT_MAX_TOKENS 1024
#define LLM_DEFAULT_MAX_CALLS 2
#define LLM_MAX_REPLY_LEN ((size_t)64 << 20)
#define LLM_DEFAULT_KEY_ENV "DM_LLM_API_KEY"
#define LLM_SCHEMA_NAME "deltamemory"
/* Limits on one answer: more items or longer strings than a single turn
 * can state mean the model is rambling, and the answer is invalid. */
#define LLM_MAX_ITEMS 64
#define LLM_MAX_STR_LEN 512
#define LLM_MAX_WHO 16
/* The built-in extractor's factor for what an assistant says (extract.c). */
#define LLM_ASSISTANT_CONF 0.45f
#define LLM_PROBLEMS_MAX 4
#define US_PER_S INT64_C(1000000)
#define US_PER_DAY (INT64_C(86400) * US_PER_S)

struct llm {
    char *url;          /* base_url + "/chat/completions" */
    char *model;
    char *auth_header;  /* "Authorization: Bearer ..." or NULL */
    uint32_t timeout_ms, retries, max_tokens;
    double temperature;
    char *schema;       /* the extraction schema, JSON text */
    char *sys_prompt;   /* the fixed part of the extraction prompt */
    httpc hc;           /* the pooled client (src/os/httpc.c) */
    _Atomic uint64_t calls, failures, invalid, prompt_tokens, completion_tokens;
};


/* ------------------------------------------------------------- taxonomy */

static const char *const SLOTS_SINGLE[] = { EX_SLOTS_SINGLE };
static const char *const SLOTS_MULTI[] = { EX_SLOTS_MULTI };
static const char *const FAMILY[] = { EX_FAMILY_RELATIONS };
#define N_SINGLE (sizeof SLOTS_SINGLE / sizeof *SLOTS_SINGLE)
#define N_MULTI (sizeof SLOTS_MULTI / sizeof *SLOTS_MULTI)
#define N_FAMILY (sizeof FAMILY / sizeof *FAMILY)

/* The relation types of extract.h, besides family.<relation>. */
static const char *const REL_TYPES[] = {
    "works_at", "industry", "lives_in", "located_in", "from", "studied_at",
    "member_of", "owns", "has_pet", "likes", "dislikes", "married_to",
    "partner_of", "friend_of",
};
#define N_REL_TYPES (sizeof REL_TYPES / sizeof *REL_TYPES)

/* Indexed by ex_polarity and ex_event_type. */
static const char *const POLARITIES[] = { "asserted", "negated", "correction" };
static const char *const EVENT_TYPES[] = { "activity", "plan", "milestone",
                                           "preference", "social" };

static bool rel_known(const char *rel)
{
    for (size_t i = 0; i < N_REL_TYPES; i++)
        if (strcmp(rel, REL_TYPES[i]) == 0)
            return true;
    return strncmp(rel, "family.", 7) == 0 && ex_slot_known(rel);
}

static int name_index(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* ---------------------------------------------------- the schema, prompt */

static json_t *jstr_enum(const char *const *names, size_t n, const char *prefix)
{
    json_t *a = json_array();
    char tmp[64];
    for (size_t i = 0; a && i < n; i++) {
        snprintf(tmp, sizeof tmp, "%s%s", prefix, names[i]);
        if (json_array_append_new(a, json_string(tmp)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/*
 * build_schema -- the JSON Schema of an answer, in the form strict
 * structured output accepts: every property required, no additional
 * properties, optional values as ["string", "null"].  Slots, relation
 * types, polarities and event types are enums, so servers that constrain
 * decoding cannot produce an unknown one.
 */
static char *build_schema(void)
{
    char *text = NULL, *out = NULL;
    json_t *slots = jstr_enum(SLOTS_SINGLE, N_SINGLE, "");
    json_t *multi = jstr_enum(SLOTS_MULTI, N_MULTI, "");
    json_t *fam = jstr_enum(FAMILY, N_FAMILY, "family.");
    json_t *rels = jstr_enum(REL_TYPES, N_REL_TYPES, "");
    json_t *rfam = jstr_enum(FAMILY, N_FAMILY, "family.");
    json_t *root = NULL;
    if (!slots || !multi || !fam || !rels || !rfam ||
        json_array_extend(slots, multi) != 0 || json_array_extend(slots, fam) != 0 ||
        json_array_extend(rels, rfam) != 0)
        goto out;
    /* json_pack's "o" steals the references, "O" would add one. */
    root = json_pack(
        "{s:s, s:b, s:[s,s,s], s:{"
        "s:{s:s, s:{s:s, s:b, s:[s,s,s,s,s,s,s], s:{"
        "s:{s:s}, s:{s:s, s:O}, s:{s:s}, s:{s:[s,s]}, s:{s:s, s:[s,s,s]},"
        "s:{s:s}, s:{s:[s,s]}}}},"
        "s:{s:s, s:{s:s, s:b, s:[s,s,s,s,s,s,s], s:{"
        "s:{s:s, s:[s,s,s,s,s]}, s:{s:s}, s:{s:s, s:{s:s}}, s:{s:[s,s]},"
        "s:{s:[s,s]}, s:{s:s}, s:{s:s}}}},"
        "s:{s:s, s:{s:s, s:b, s:[s,s,s,s], s:{"
        "s:{s:s}, s:{s:s, s:O}, s:{s:s}, s:{s:s}}}}}}",
        "type", "object", "additionalProperties", 0,
        "required", "facts", "events", "relations",
        "properties",
        "facts", "type", "array", "items", "type", "object",
        "additionalProperties", 0, "required", "subject", "slot", "value",
        "prev_value", "polarity", "confidence", "valid_from",
        "properties",
        "subject", "type", "string",
        "slot", "type", "string", "enum", slots,
        "value", "type", "string",
        "prev_value", "type", "string", "null",
        "polarity", "type", "string", "enum", "asserted", "negated", "correction",
        "confidence", "type", "number",
        "valid_from", "type", "string", "null",
        "events", "type", "array", "items", "type", "object",
        "additionalProperties", 0, "required", "type", "what", "who", "from",
        "to", "has_time", "confidence",
        "properties",
        "type", "type", "string", "enum", "activity", "plan", "milestone",
        "preference", "social",
        "what", "type", "string",
        "who", "type", "array", "items", "type", "string",
        "from", "type", "string", "null",
        "to", "type", "string", "null",
        "has_time", "type", "boolean",
        "confidence", "type", "number",
        "relations", "type", "array", "items", "type", "object",
        "additionalProperties", 0, "required", "src", "rel", "dst", "confidence",
        "properties",
        "src", "type", "string",
        "rel", "type", "string", "enum", rels,
        "dst", "type", "string",
        "confidence", "type", "number");
    if (!root)
        goto out;
    text = json_dumps(root, JSON_COMPACT);
    if (text)
        out = dm_strdup(text);
out:
    free(text);
    json_decref(root);
    json_decref(slots);
    json_decref(multi);
    json_decref(fam);
    json_decref(rels);
    json_decref(rfam);
    return out;
}

/* A text builder over buf whose first failure sticks, so that a long run
 * of appends is checked once at the end. */
typedef struct sb {
    buf b;
    int rc;
} sb;

static void sb_put(sb *s, const char *t)
{
    if (s->rc == DM_OK)
        s->rc = buf_append(&s->b, t, strlen(t));
}

static void sb_printf(sb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb *s, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(s, tmp);
}

static void sb_list(sb *s, const char *const *names, size_t n, size_t from, size_t to)
{
    for (size_t i = from; i < to && i < n; i++) {
        sb_put(s, i > from ? ", " : "");
        sb_put(s, names[i]);
    }
}

/* sb_take -- the NUL-terminated text (dm_malloc'd), or NULL on failure. */
static char *sb_take(sb *s)
{
    if (s->rc == DM_OK)
        s->rc = buf_append(&s->b, "", 1);
    if (s->rc != DM_OK) {
        buf_fini(&s->b);
        return NULL;
    }
    char *t = (char *)s->b.ptr;
    s->b.ptr = NULL;
    s->b.len = s->b.cap = 0;
    return t;
}

/* build_prompt -- the fixed part of the system prompt. */
static char *build_prompt(void)
{
    sb s = { { NULL, 0, 0 }, DM_OK };
    sb_put(&s,
           "You extract long-term memory from one turn of a conversation. "
           "Read the turn and answer with one JSON object {\"facts\": [...], "
           "\"events\": [...], \"relations\": [...]}. Report only what the "
           "turn itself states; do not guess. Questions, hypotheticals "
           "(\"if I ...\"), wishes and other people's opinions are not facts. "
           "Use empty arrays when the turn states nothing lasting.\n\n"
           "SUBJECTS. The subject \"\" (empty string) is the user whose memory "
           "this is: in a user turn, the speaker; in an assistant turn, the "
           "person the assistant talks to. Any other subject is a name as "
           "written (\"Ann\", \"Acme Corp\").\n\n"
           "FACTS: {\"subject\", \"slot\", \"value\", \"prev_value\", "
           "\"polarity\", \"confidence\", \"valid_from\"}.\n"
           "- slot: one of the single-valued slots (one current value; a new "
           "value replaces the old): ");
    sb_list(&s, SLOTS_SINGLE, N_SINGLE, 0, N_SINGLE);
    sb_put(&s, ";\n  or one of the multi-valued slots (values accumulate): ");
    sb_list(&s, SLOTS_MULTI, N_MULTI, 0, N_MULTI);
    sb_put(&s, ";\n  or \"family.<relation>\" for a relative or friend of the "
               "subject, the value being the person's name (the relation word "
               "when no name is given), with <relation> one of ");
    sb_list(&s, FAMILY, N_FAMILY, 0, 2);
    sb_put(&s, " (single-valued), ");
    sb_list(&s, FAMILY, N_FAMILY, 2, N_FAMILY);
    sb_put(&s,
           " (multi-valued).\n"
           "- value: short, as it should be shown (\"Austin\", \"vegetarian\", "
           "\"Max (dog)\", \"run a marathon\"); age as digits; never empty.\n"
           "- polarity: \"asserted\"; \"negated\" when the turn says it is not "
           "or no longer true (\"I don't eat meat anymore\": slot diet, value "
           "\"meat\", negated; \"I quit Acme\": work.employer, \"Acme\", "
           "negated); \"correction\" when the turn corrects an earlier value "
           "(\"actually my name is Ali\").\n"
           "- prev_value: the value this one replaces when the turn names it "
           "(\"I moved from Austin to Denver\": value \"Denver\", prev_value "
           "\"Austin\"), else null.\n"
           "- valid_from: when it became true if the turn says so (\"since "
           "2019\": \"2019\"; \"last month\": that month's first day), else "
           "null.\n\n"
           "EVENTS: {\"type\", \"what\", \"who\", \"from\", \"to\", "
           "\"has_time\", \"confidence\"}.\n"
           "- type: \"activity\" (went hiking, read a book), \"plan\" (will "
           "travel, is going to apply), \"milestone\" (graduated, moved, "
           "married, started a job), \"preference\" (started or stopped "
           "liking something), \"social\" (met, visited, celebrated with "
           "someone).\n"
           "- what: a short description in the turn's words. who: the names "
           "of the people involved besides the user ([] when none).\n"
           "- from, to: when it happened or will happen, the half-open "
           "interval [from, to) resolved against the turn's time (\"last "
           "Saturday\" said on Monday 2023-05-08: from \"2023-05-06\", to "
           "\"2023-05-07\"), with has_time true. When the turn gives no time: "
           "from null, to null, has_time false.\n\n"
           "RELATIONS: {\"src\", \"rel\", \"dst\", \"confidence\"}: typed "
           "edges between named entities, \"\" being the user.\n"
           "- rel: one of ");
    sb_list(&s, REL_TYPES, N_REL_TYPES, 0, N_REL_TYPES);
    sb_put(&s,
           ", or family.<relation> meaning that dst is src's <relation> "
           "((\"\", \"family.daughter\", \"Ann\"): Ann is the user's daughter). "
           "\"from\" is a person's origin; \"industry\" links an organisation "
           "to its field; \"located_in\" a place or organisation to a "
           "place.\n\n"
           "CONFIDENCE: a number from 0 to 1: 0.9 for an explicit statement "
           "(\"I live in Austin\"), 0.8 for an explicit statement with a vague "
           "value or about another person, 0.7 for something implied (\"I got "
           "a dog\" implies a pet), 0.6 or less when unsure.\n"
           "DATES: ISO 8601, \"YYYY-MM-DD\" or \"YYYY-MM-DDTHH:MM:SSZ\" "
           "(\"YYYY\" or \"YYYY-MM\" for a whole year or month).\n"
           "Answer with the JSON object only.\n");
    return sb_take(&s);
}

static void add_tokens(_Atomic uint64_t *total, json_t *v)
{
    if (json_is_integer(v) && json_integer_value(v) > 0)
        atomic_fetch_add_explicit(total, (uint64_t)json_integer_value(v),
                                  memory_order_relaxed);
}

/* parse_reply -- choices[0].message.content of a 2xx reply, and the usage
 * counts. */
static int parse_reply(llm *l, const httpc_reply *r, char **out)
{
    json_error_t jerr;
    int rc = DM_OK;
    char ex[HTTPC_EXCERPT_LEN + 1];
    const char *body = r->data ? r->data : "";
    json_t *root = json_loadb(body, r->len, 0, &jerr);
    if (!root) {
        httpc_excerpt(body, r->len, ex, sizeof ex);
        return err_set_msg(DM_EIO, "POST %s: reply is not JSON (%s at %d): %s",
                           l->url, jerr.text, jerr.position, ex);
    }
    json_t *usage = json_object_get(root, "usage");
    add_tokens(&l->prompt_tokens, json_object_get(usage, "prompt_tokens"));
    add_tokens(&l->completion_tokens, json_object_get(usage, "completion_tokens"));
    json_t *msg = json_object_get(json_array_get(json_object_get(root, "choices"), 0),
                                  "message");
    json_t *content = json_object_get(msg, "content");
    if (!json_is_string(content)) {
        httpc_excerpt(body, r->len, ex, sizeof ex);
        rc = err_set_msg(DM_EIO, "POST %s: reply has no "
                         "choices[0].message.content: %s", l->url, ex);
        goto out;
    }
    *out = dm_memdup(json_string_value(content), json_string_length(content) + 1);
    if (!*out)
        rc = DM_ENOMEM;
out:
    json_decref(root);
    return rc;
}

/* build_body -- the request body (malloc'd by jansson; free with free). */
static int build_body(const llm *l, const llm_msg *msgs, size_t n,
                      const char *json_schema, char **body)
{
    int rc = DM_OK;
    json_error_t jerr;
    json_t *schema = NULL;
    json_t *obj = json_object();
    json_t *arr = json_array();
    *body = NULL;
    if (!obj || !arr || json_object_set_new(obj, "model", json_string(l->model)) != 0 ||
        json_object_set(obj, "messages", arr) != 0 ||
        json_object_set_new(obj, "temperature", json_real(l->temperature)) != 0 ||
        json_object_set_new(obj, "max_tokens", json_integer(l->max_tokens)) != 0 ||
        json_object_set_new(obj, "stream", json_false()) != 0) {
        rc = DM_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role || !msgs[i].content) {
            rc = err_set_msg(DM_EINVAL, "llm_chat: message %zu has no %s", i,
                             msgs[i].role ? "content" : "role");
            goto out;
        }
        json_t *m = json_pack("{s:s, s:s}", "role", msgs[i].role, "content",
                              msgs[i].content);
        if (!m) {
            /* json_pack fails on invalid UTF-8 as well as on memory; the
             * first is the likely cause and the caller's to fix. */
            rc = err_set_msg(DM_EINVAL, "llm_chat: message %zu is not valid "
                             "UTF-8", i);
            goto out;
        }
        if (json_array_append_new(arr, m) != 0) {
            rc = DM_ENOMEM;
            goto out;
        }
    }
    if (json_schema) {
        schema = json_loads(json_schema, 0, &jerr);
        if (!schema || !json_is_object(schema)) {
            rc = err_set_msg(DM_EINVAL, "llm_chat: the schema is not a JSON "
                             "object (%s)", schema ? "another JSON value" : jerr.text);
            goto out;
        }
        json_t *rf = json_pack("{s:s, s:{s:s, s:O, s:b}}", "type", "json_schema",
                               "json_schema", "name", LLM_SCHEMA_NAME, "schema",
                               schema, "strict", 1);
        if (!rf || json_object_set_new(obj, "response_format", rf) != 0) {
            rc = DM_ENOMEM;
            goto out;
        }
    }
    /* Seven digits keep a float temperature such as 0.2 from printing as
     * 0.20000000298023224. */
    *body = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(7));
    if (!*body)
        rc = DM_ENOMEM;
out:
    json_decref(schema);
    json_decref(arr);
    json_decref(obj);
    return rc;
}

int llm_chat(llm *l, const llm_msg *msgs, size_t n, const char *json_schema, char **out)
{
    int rc = DM_OK;
    char *body = NULL;
    httpc_reply r = { 0 };
    if (out)
        *out = NULL;
    if (!l || !out)
        return err_set_msg(DM_EINVAL, "llm_chat: NULL argument");
    if (!msgs || n == 0)
        return err_set_msg(DM_EINVAL, "llm_chat: no messages");
    if ((rc = build_body(l, msgs, n, json_schema, &body)) != DM_OK)
        return rc;
    if ((rc = httpc_post(&l->hc, body, strlen(body), &r)) == DM_OK)
        rc = parse_reply(l, &r, out);
    atomic_fetch_add_explicit(rc == DM_OK ? &l->calls : &l->failures, 1,
                              memory_order_relaxed);
    dm_free(r.data);
    free(body); /* json_dumps allocates with malloc */
    return rc;
}

/* ---------------------------------------------------------------- dates */

static bool digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*p)[i];
        if (ch < '0' || ch > '9')
            return false;
        x = x * 10 + (ch - '0');
    }
    *p += n;
    *v = x;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int D[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : D[m - 1];
}

/* civil_us -- UTC microseconds of a calendar time; fields may overflow
 * (month 13 is January of the next year), timegm normalizes them. */
static int64_t civil_us(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return (int64_t)timegm(&tm) * US_PER_S;
}

/*
 * parse_iso -- an ISO 8601 date or date-time: YYYY, YYYY-MM, YYYY-MM-DD,
 * then optionally T (or a space) HH:MM[:SS[.fraction]] and a zone (Z,
 * +HH, +HH:MM, +HHMM).  A time without a zone is taken as UTC, as the
 * engine stores event times.  *from_us is the instant named; *end_us the
 * end of the period it names (the year, month or day; an hour after a
 * time of day).  Returns false for anything else, including impossible
 * dates (2023-02-30) and trailing text.
 */
static bool parse_iso(const char *s, int64_t *from_us, int64_t *end_us)
{
    const char *p = s;
    int y, mo = 1, d = 1, h = 0, mi = 0, sec = 0, prec = 0;
    int64_t frac_us = 0, zone_s = 0;
    if (!digits(&p, 4, &y) || y < 1)
        return false;
    if (*p == '-') {
        p++;
        if (!digits(&p, 2, &mo) || mo < 1 || mo > 12)
            return false;
        prec = 1;
        if (*p == '-') {
            p++;
            if (!digits(&p, 2, &d) || d < 1 || d > days_in_month(y, mo))
                return false;
            prec = 2;
            if (*p == 'T' || *p == 't' || *p == ' ') {
                p++;
                if (!digits(&p, 2, &h) || h > 23 || *p++ != ':' ||
                    !digits(&p, 2, &mi) || mi > 59)
                    return false;
                prec = 3;
                if (*p == ':') {
                    p++;
                    /* 60 is a leap second; timegm carries it over. */
                    if (!digits(&p, 2, &sec) || sec > 60)
                        return false;
                    if (*p == '.' || *p == ',') {
                        p++;
                        int64_t scale = 100000;
                        if (*p < '0' || *p > '9')
                            return false;
                        for (; *p >= '0' && *p <= '9'; p++) {
                            frac_us += (*p - '0') * scale;
                            scale /= 10;
                        }
                    }
                }
                if (*p == 'Z' || *p == 'z') {
                    p++;
                } else if (*p == '+' || *p == '-') {
                    int sign = *p++ == '-' ? -1 : 1, zh, zm = 0;
                    if (!digits(&p, 2, &zh) || zh > 23)
                        return false;
                    if (*p == ':')
                        p++;
                    if (*p >= '0' && *p <= '9' && (!digits(&p, 2, &zm) || zm > 59))
                        return false;
                    zone_s = sign * (zh * 3600 + zm * 60);
                }
            }
        }
    }
    if (*p != '\0')
        return false;
    int64_t t = civil_us(y, mo, d, h, mi, sec) + frac_us - zone_s * US_PER_S;
    *from_us = t;
    switch (prec) {
    case 0:
        *end_us = civil_us(y + 1, 1, 1, 0, 0, 0);
        break;
    case 1:
        *end_us = civil_us(y, mo + 1, 1, 0, 0, 0);
        break;
    case 2:
        *end_us = civil_us(y, mo, d + 1, 0, 0, 0);
        break;
    default:
        *end_us = t + 3600 * US_PER_S;
        break;
    }
    return true;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ----------------------------------------------------------- validation */

/* The problems found in one answer, as a sentence for the model. */
typedef struct problems {
    char text[768];
    size_t len;
    unsigned n;
} problems;

static void problem(problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(problems *p, const char *fmt, ...)
{
    if (p->n++ >= LLM_PROBLEMS_MAX || p->len + 4 >= sizeof p->text)
        return;
    if (p->len > 0)
        p->len += (size_t)snprintf(p->text + p->len, sizeof p->text - p->len, "; ");
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(p->text + p->len, sizeof p->text - p->len, fmt, ap);
    va_end(ap);
    if (k > 0)
        p->len += (size_t)k;
    if (p->len >= sizeof p->text)
        p->len = sizeof p->text - 1;
}

static const char *trunc_s(const char *s, char *tmp, size_t cap)
{
    httpc_excerpt(s, strlen(s), tmp, cap);
    return tmp;
}

/* check_str -- item.key is a string (non-empty when must_fill), within
 * the length limit. */
static const char *check_str(problems *p, const char *what, size_t i,
                             json_t *item, const char *key, bool must_fill)
{
    json_t *v = json_object_get(item, key);
    if (!json_is_string(v)) {
        problem(p, "%s[%zu].%s must be a string", what, i, key);
        return NULL;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    const char *q = s;
    while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
        q++;
    if (must_fill && *q == '\0') {
        problem(p, "%s[%zu].%s is empty", what, i, key);
        return NULL;
    }
    if (n > LLM_MAX_STR_LEN) {
        problem(p, "%s[%zu].%s is longer than %d bytes", what, i, key,
                LLM_MAX_STR_LEN);
        return NULL;
    }
    return s;
}

/* opt_str -- an optional string: NULL for null, missing or "". */
static bool check_opt_str(problems *p, const char *what, size_t i, json_t *item,
                          const char *key)
{
    json_t *v = json_object_get(item, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v)) {
        problem(p, "%s[%zu].%s must be a string or null", what, i, key);
        return false;
    }
    if (json_string_length(v) > LLM_MAX_STR_LEN) {
        problem(p, "%s[%zu].%s is longer than %d bytes", what, i, key,
                LLM_MAX_STR_LEN);
        return false;
    }
    return true;
}

static const char *opt_str(json_t *item, const char *key)
{
    const char *s = json_string_value(json_object_get(item, key));
    return s && s[0] ? s : NULL;
}

static void check_conf(problems *p, const char *what, size_t i, json_t *item)
{
    json_t *v = json_object_get(item, "confidence");
    double c = json_number_value(v);
    if (!json_is_number(v) || !(c >= 0.0 && c <= 1.0))
        problem(p, "%s[%zu].confidence must be a number from 0 to 1", what, i);
}

/* check_date -- an optional ISO 8601 date; true when absent or valid. */
static bool check_date(problems *p, const char *what, size_t i, json_t *item,
                       const char *key, int64_t *from_us, int64_t *end_us)
{
    char tmp[48];
    if (!check_opt_str(p, what, i, item, key))
        return false;
    const char *s = opt_str(item, key);
    if (s && !parse_iso(s, from_us, end_us)) {
        problem(p, "%s[%zu].%s \"%s\" is not an ISO 8601 date (YYYY-MM-DD or "
                "YYYY-MM-DDTHH:MM:SSZ)", what, i, key, trunc_s(s, tmp, sizeof tmp));
        return false;
    }
    return true;
}

static json_t *check_array(problems *p, json_t *root, const char *key)
{
    json_t *a = json_object_get(root, key);
    if (!json_is_array(a)) {
        problem(p, "\"%s\" must be an array", key);
        return NULL;
    }
    if (json_array_size(a) > LLM_MAX_ITEMS) {
        problem(p, "\"%s\" has more than %d items", key, LLM_MAX_ITEMS);
        return NULL;
    }
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!json_is_object(json_array_get(a, i))) {
            problem(p, "%s[%zu] must be an object", key, i);
            return NULL;
        }
    return a;
}

/* validate -- every problem of an answer, into p (p->n == 0: valid). */
static void validate(json_t *root, problems *p)
{
    char tmp[48];
    int64_t f = 0, e = 0, f2 = 0, e2 = 0;
    if (!json_is_object(root)) {
        problem(p, "the answer must be a JSON object");
        return;
    }
    json_t *facts = check_array(p, root, "facts");
    json_t *events = check_array(p, root, "events");
    json_t *rels = check_array(p, root, "relations");
    for (size_t i = 0; i < json_array_size(facts); i++) {
        json_t *it = json_array_get(facts, i);
        const char *slot = check_str(p, "facts", i, it, "slot", true);
        if (slot && !ex_slot_known(slot))
            problem(p, "facts[%zu].slot \"%s\" is not one of the listed slots",
                    i, trunc_s(slot, tmp, sizeof tmp));
        check_str(p, "facts", i, it, "subject", false);
        check_str(p, "facts", i, it, "value", true);
        check_opt_str(p, "facts", i, it, "prev_value");
        const char *pol = json_string_value(json_object_get(it, "polarity"));
        if (!pol || name_index(pol, POLARITIES, 3) < 0)
            problem(p, "facts[%zu].polarity must be \"asserted\", \"negated\" "
                    "or \"correction\"", i);
        check_conf(p, "facts", i, it);
        check_date(p, "facts", i, it, "valid_from", &f, &e);
    }
    for (size_t i = 0; i < json_array_size(events); i++) {
        json_t *it = json_array_get(events, i);
        const char *type = json_string_value(json_object_get(it, "type"));
        if (!type || name_index(type, EVENT_TYPES, 5) < 0)
            problem(p, "events[%zu].type must be one of activity, plan, "
                    "milestone, preference, social", i);
        check_str(p, "events", i, it, "what", true);
        json_t *who = json_object_get(it, "who");
        if (who && !json_is_null(who)) {
            if (!json_is_array(who) || json_array_size(who) > LLM_MAX_WHO) {
                problem(p, "events[%zu].who must be an array of at most %d "
                        "names", i, LLM_MAX_WHO);
            } else {
                for (size_t k = 0; k < json_array_size(who); k++) {
                    json_t *w = json_array_get(who, k);
                    if (!json_is_string(w) || json_string_length(w) == 0 ||
                        json_string_length(w) > LLM_MAX_STR_LEN) {
                        problem(p, "events[%zu].who[%zu] must be a name", i, k);
                        break;
                    }
                }
            }
        }
        json_t *ht = json_object_get(it, "has_time");
        if (!json_is_boolean(ht))
            problem(p, "events[%zu].has_time must be true or false", i);
        check_conf(p, "events", i, it);
        bool ok_from = check_date(p, "events", i, it, "from", &f, &e);
        bool ok_to = check_date(p, "events", i, it, "to", &f2, &e2);
        const char *from = opt_str(it, "from"), *to = opt_str(it, "to");
        if (ok_from && ok_to && to && !from)
            problem(p, "events[%zu] has \"to\" without \"from\"", i);
        else if (ok_from && ok_to && from && to && !(f < f2))
            problem(p, "events[%zu].from must be before its \"to\"", i);
        if (json_is_true(ht) && !from && ok_from)
            problem(p, "events[%zu].has_time is true but \"from\" is null", i);
    }
    for (size_t i = 0; i < json_array_size(rels); i++) {
        json_t *it = json_array_get(rels, i);
        const char *src = check_str(p, "relations", i, it, "src", false);
        const char *rel = check_str(p, "relations", i, it, "rel", true);
        if (rel && !rel_known(rel))
            problem(p, "relations[%zu].rel \"%s\" is not one of the listed "
                    "relation types", i, trunc_s(rel, tmp, sizeof tmp));
        const char *dst = check_str(p, "relations", i, it, "dst", false);
        if (src && dst && strcmp(src, dst) == 0)
            problem(p, "relations[%zu] links \"%s\" to itself", i,
                    trunc_s(src, tmp, sizeof tmp));
        check_conf(p, "relations", i, it);
    }
}

/* ----------------------------------------------------------- conversion */

typedef struct conv {
    const ex_input *in;
    float conf_mul;
    ex_result *r;
    size_t cap_ent;
} conv;

/* is_user -- a subject that names the user: "" and the words a model
 * uses for the speaker, and the speaker's own name. */
static bool is_user(const conv *cv, const char *s)
{
    static const char *const SELF[] = { "", "i", "me", "user", "the user",
                                        "speaker", "the speaker", "myself" };
    for (size_t i = 0; i < sizeof SELF / sizeof *SELF; i++)
        if (strcasecmp(s, SELF[i]) == 0)
            return true;
    return cv->in->speaker && cv->in->speaker[0] && strcasecmp(s, cv->in->speaker) == 0;
}

/* trimmed copy of s, dm_malloc'd */
static char *dup_trim(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' ||
                     s[n - 1] == '\r'))
        n--;
    char *d = dm_malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static char *dup_subject(const conv *cv, const char *s)
{
    return is_user(cv, s) ? dm_strdup("") : dup_trim(s);
}

/* find_span -- the first ASCII-case-insensitive occurrence of s in the
 * turn, else the whole turn. */
static ex_span find_span(const conv *cv, const char *s)
{
    const char *t = cv->in->text;
    size_t tl = cv->in->len, n = s ? strlen(s) : 0;
    ex_span whole = { 0, (uint32_t)(tl > UINT32_MAX ? UINT32_MAX : tl) };
    if (n == 0 || n > tl || tl > UINT32_MAX)
        return whole;
    for (size_t i = 0; i + n <= tl; i++)
        if (strncasecmp(t + i, s, n) == 0) {
            ex_span sp = { (uint32_t)i, (uint32_t)n };
            return sp;
        }
    return whole;
}

static float conf_of(const conv *cv, json_t *item)
{
    return (float)json_number_value(json_object_get(item, "confidence")) * cv->conf_mul;
}

/* add_entity -- name as an entity of type t unless one of that name is
 * already there (ASCII case-insensitively). */
static int add_entity(conv *cv, const char *name, ex_entity_type t, float conf)
{
    ex_result *r = cv->r;
    if (!name || !name[0])
        return DM_OK;
    for (size_t i = 0; i < r->n_entities; i++)
        if (strcasecmp(r->entities[i].name, name) == 0)
            return DM_OK;
    if (r->n_entities == cv->cap_ent) {
        size_t cap = cv->cap_ent ? cv->cap_ent * 2 : 8;
        ex_entity *e = dm_realloc(r->entities, cap * sizeof *e);
        if (!e)
            return DM_ENOMEM;
        r->entities = e;
        cv->cap_ent = cap;
    }
    char *d = dm_strdup(name);
    if (!d)
        return DM_ENOMEM;
    ex_entity *e = &r->entities[r->n_entities++];
    e->name = d;
    e->type = t;
    e->confidence = conf;
    e->span = find_span(cv, name);
    return DM_OK;
}

/* The entity type of a fact's value by slot; -1 for none. */
static int slot_entity_type(const char *slot, const char *value)
{
    static const char *const CONCEPT[] = {
        "work.industry", "pet", "hobby", "preference.likes", "preference.dislikes",
        "diet", "allergy", "language", "skill", "education",
    };
    if (strncmp(slot, "location.", 9) == 0 || strcmp(slot, "origin") == 0)
        return EX_ENT_PLACE;
    if (strcmp(slot, "work.employer") == 0 || strcmp(slot, "education.school") == 0)
        return EX_ENT_ORG;
    /* A relative is an entity when named; "my mom" gives the value "mom". */
    if (strncmp(slot, "family.", 7) == 0)
        return value[0] >= 'A' && value[0] <= 'Z' ? EX_ENT_PERSON : -1;
    for (size_t i = 0; i < sizeof CONCEPT / sizeof *CONCEPT; i++)
        if (strcmp(slot, CONCEPT[i]) == 0)
            return EX_ENT_CONCEPT;
    return -1;
}

/* The entity types of a relation's endpoints. */
static void rel_entity_types(const char *rel, ex_entity_type *src, ex_entity_type *dst)
{
    *src = EX_ENT_PERSON;
    *dst = EX_ENT_CONCEPT;
    if (!strcmp(rel, "works_at") || !strcmp(rel, "studied_at") ||
        !strcmp(rel, "member_of"))
        *dst = EX_ENT_ORG;
    else if (!strcmp(rel, "lives_in") || !strcmp(rel, "from"))
        *dst = EX_ENT_PLACE;
    else if (!strcmp(rel, "located_in")) {
        *src = EX_ENT_ORG;
        *dst = EX_ENT_PLACE;
    } else if (!strcmp(rel, "industry"))
        *src = EX_ENT_ORG;
    else if (!strcmp(rel, "owns"))
        *dst = EX_ENT_PRODUCT;
    else if (!strcmp(rel, "married_to") || !strcmp(rel, "partner_of") ||
             !strcmp(rel, "friend_of") || !strncmp(rel, "family.", 7))
        *dst = EX_ENT_PERSON;
}

static int conv_fact(conv *cv, json_t *it, ex_fact *f)
{
    int64_t end;
    memset(f, 0, sizeof *f);
    const char *pol = json_string_value(json_object_get(it, "polarity"));
    const char *prev = opt_str(it, "prev_value");
    const char *vf = opt_str(it, "valid_from");
    f->subject = dup_subject(cv, json_string_value(json_object_get(it, "subject")));
    f->slot = dm_strdup(json_string_value(json_object_get(it, "slot")));
    f->value = dup_trim(json_string_value(json_object_get(it, "value")));
    f->prev_value = prev ? dup_trim(prev) : NULL;
    if (!f->subject || !f->slot || !f->value || (prev && !f->prev_value))
        return DM_ENOMEM;
    f->polarity = (ex_polarity)name_index(pol, POLARITIES, 3);
    f->confidence = conf_of(cv, it);
    f->valid_from_us = cv->in->time_us;
    if (vf)
        parse_iso(vf, &f->valid_from_us, &end);
    f->span = find_span(cv, f->value);
    return DM_OK;
}

static int conv_event(conv *cv, json_t *it, ex_event *v)
{
    memset(v, 0, sizeof *v);
    const char *from = opt_str(it, "from"), *to = opt_str(it, "to");
    v->type = (ex_event_type)name_index(json_string_value(json_object_get(it, "type")),
                                        EVENT_TYPES, 5);
    v->what = dup_trim(json_string_value(json_object_get(it, "what")));
    if (!v->what)
        return DM_ENOMEM;
    v->has_time = json_is_true(json_object_get(it, "has_time"));
    v->confidence = conf_of(cv, it);
    v->span = find_span(cv, NULL);
    if (from) {
        int64_t f = 0, e = 0, f2 = 0, e2 = 0;
        parse_iso(from, &f, &e);
        if (to)
            parse_iso(to, &f2, &e2);
        v->from_us = f;
        v->to_us = to ? f2 : e;
    } else {
        int64_t day = floor_div(cv->in->time_us, US_PER_DAY) * US_PER_DAY;
        v->from_us = day;
        v->to_us = day + US_PER_DAY;
        v->has_time = false;
    }
    json_t *who = json_object_get(it, "who");
    size_t n = json_array_size(who);
    if (n > 0) {
        v->who = dm_calloc(n, sizeof *v->who);
        if (!v->who)
            return DM_ENOMEM;
        for (size_t k = 0; k < n; k++) {
            const char *w = json_string_value(json_array_get(who, k));
            /* The user is implied; only other people are listed. */
            if (is_user(cv, w))
                continue;
            if (!(v->who[v->n_who] = dup_trim(w)))
                return DM_ENOMEM;
            v->n_who++;
        }
        if (v->n_who == 0) {
            dm_free(v->who);
            v->who = NULL;
        }
    }
    return DM_OK;
}

static int conv_relation(conv *cv, json_t *it, ex_relation *x)
{
    memset(x, 0, sizeof *x);
    x->src = dup_subject(cv, json_string_value(json_object_get(it, "src")));
    x->rel = dm_strdup(json_string_value(json_object_get(it, "rel")));
    x->dst = dup_subject(cv, json_string_value(json_object_get(it, "dst")));
    if (!x->src || !x->rel || !x->dst)
        return DM_ENOMEM;
    x->confidence = conf_of(cv, it);
    x->span = find_span(cv, x->dst);
    return DM_OK;
}

/* ex_result deep copy, every string and array dm_malloc'd.  On DM_ENOMEM
 * dst holds what was copied so far (ex_result_free releases it). */
static int copy_result(const ex_result *src, ex_result *dst, size_t *cap_ent)
{
    memset(dst, 0, sizeof *dst);
    *cap_ent = 0;
    if (!src)
        return DM_OK;
    if (src->n_facts) {
        if (!(dst->facts = dm_calloc(src->n_facts, sizeof *dst->facts)))
            return DM_ENOMEM;
        for (size_t i = 0; i < src->n_facts; i++, dst->n_facts++) {
            const ex_fact *a = &src->facts[i];
            ex_fact *b = &dst->facts[i];
            *b = *a;
            b->subject = dm_strdup(a->subject ? a->subject : "");
            b->slot = a->slot ? dm_strdup(a->slot) : NULL;
            b->value = a->value ? dm_strdup(a->value) : NULL;
            b->prev_value = a->prev_value ? dm_strdup(a->prev_value) : NULL;
            if (!b->subject || (a->slot && !b->slot) || (a->value && !b->value) ||
                (a->prev_value && !b->prev_value)) {
                dst->n_facts++;
                return DM_ENOMEM;
            }
        }
    }
    if (src->n_events) {
        if (!(dst->events = dm_calloc(src->n_events, sizeof *dst->events)))
            return DM_ENOMEM;
        for (size_t i = 0; i < src->n_events; i++) {
            const ex_event *a = &src->events[i];
            ex_event *b = &dst->events[i];
            *b = *a;
            b->who = NULL;
            b->n_who = 0;
            b->what = a->what ? dm_strdup(a->what) : NULL;
            dst->n_events++;
            if (a->what && !b->what)
                return DM_ENOMEM;
            if (a->n_who) {
                if (!(b->who = dm_calloc(a->n_who, sizeof *b->who)))
                    return DM_ENOMEM;
                for (size_t k = 0; k < a->n_who; k++, b->n_who++)
                    if (!(b->who[k] = dm_strdup(a->who[k] ? a->who[k] : "")))
                        return DM_ENOMEM;
            }
        }
    }
    if (src->n_entities) {
        if (!(dst->entities = dm_calloc(src->n_entities, sizeof *dst->entities)))
            return DM_ENOMEM;
        *cap_ent = src->n_entities;
        for (size_t i = 0; i < src->n_entities; i++) {
            dst->entities[i] = src->entities[i];
            dst->entities[i].name = dm_strdup(src->entities[i].name ? src->entities[i].name : "");
            dst->n_entities++;
            if (!dst->entities[i].name)
                return DM_ENOMEM;
        }
    }
    if (src->n_relations) {
        if (!(dst->relations = dm_calloc(src->n_relations, sizeof *dst->relations)))
            return DM_ENOMEM;
        for (size_t i = 0; i < src->n_relations; i++) {
            const ex_relation *a = &src->relations[i];
            ex_relation *b = &dst->relations[i];
            *b = *a;
            b->src = dm_strdup(a->src ? a->src : "");
            b->rel = dm_strdup(a->rel ? a->rel : "");
            b->dst = dm_strdup(a->dst ? a->dst : "");
            dst->n_relations++;
            if (!b->src || !b->rel || !b->dst)
                return DM_ENOMEM;
        }
    }
    return DM_OK;
}

/*
 * convert -- a validated answer into *r: the built-in result's entities,
 * then the answer's facts, events and relations and the entities they
 * name.  On DM_ENOMEM *r holds a partial result for ex_result_free.
 */
static int convert(conv *cv, json_t *root, const ex_result *builtin)
{
    ex_result *r = cv->r;
    ex_result ents = { 0 };
    int rc;
    json_t *facts = json_object_get(root, "facts");
    json_t *events = json_object_get(root, "events");
    json_t *rels = json_object_get(root, "relations");
    size_t nf = json_array_size(facts), ne = json_array_size(events),
           nr = json_array_size(rels);
    memset(r, 0, sizeof *r);
    cv->cap_ent = 0;
    if (builtin && builtin->n_entities) {
        ents.entities = builtin->entities;
        ents.n_entities = builtin->n_entities;
        if ((rc = copy_result(&ents, r, &cv->cap_ent)) != DM_OK)
            return rc;
    }
    if (nf && !(r->facts = dm_calloc(nf, sizeof *r->facts)))
        return DM_ENOMEM;
    for (size_t i = 0; i < nf; i++) {
        r->n_facts++;
        if ((rc = conv_fact(cv, json_array_get(facts, i), &r->facts[i])) != DM_OK)
            return rc;
    }
    if (ne && !(r->events = dm_calloc(ne, sizeof *r->events)))
        return DM_ENOMEM;
    for (size_t i = 0; i < ne; i++) {
        r->n_events++;
        if ((rc = conv_event(cv, json_array_get(events, i), &r->events[i])) != DM_OK)
            return rc;
    }
    if (nr && !(r->relations = dm_calloc(nr, sizeof *r->relations)))
        return DM_ENOMEM;
    for (size_t i = 0; i < nr; i++) {
        r->n_relations++;
        if ((rc = conv_relation(cv, json_array_get(rels, i), &r->relations[i])) != DM_OK)
            return rc;
    }
    /* Entities named by the answer.  Pointers into r's arrays are stable:
     * only r->entities grows below. */
    for (size_t i = 0; i < r->n_relations; i++) {
        const ex_relation *x = &r->relations[i];
        ex_entity_type ts, td;
        rel_entity_types(x->rel, &ts, &td);
        if ((rc = add_entity(cv, x->src, ts, x->confidence)) != DM_OK ||
            (rc = add_entity(cv, x->dst, td, x->confidence)) != DM_OK)
            return rc;
    }
    for (size_t i = 0; i < r->n_events; i++)
        for (size_t k = 0; k < r->events[i].n_who; k++)
            if ((rc = add_entity(cv, r->events[i].who[k], EX_ENT_PERSON,
                                 r->events[i].confidence)) != DM_OK)
                return rc;
    for (size_t i = 0; i < r->n_facts; i++) {
        const ex_fact *f = &r->facts[i];
        if ((rc = add_entity(cv, f->subject, EX_ENT_PERSON, f->confidence)) != DM_OK)
            return rc;
        int t = slot_entity_type(f->slot, f->value);
        if (t >= 0 && f->polarity != EX_NEGATED &&
            (rc = add_entity(cv, f->value, (ex_entity_type)t, f->confidence)) != DM_OK)
            return rc;
    }
    if (r->n_entities == 0) {
        dm_free(r->entities);
        r->entities = NULL;
    }
    return DM_OK;
}

/* ------------------------------------------------------------ extractor */

/* turn_prompt -- the system prompt for one turn: the fixed text, then the
 * turn's time and speaker, then the turns said before it (ex_input.context). */
static char *turn_prompt(const llm *l, const ex_input *in)
{
    sb s = { { NULL, 0, 0 }, DM_OK };
    char iso[40] = "", wday[16] = "";
    time_t secs = (time_t)floor_div(in->time_us, US_PER_S);
    struct tm tm;
    if (gmtime_r(&secs, &tm)) {
        strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
        strftime(wday, sizeof wday, "%A", &tm);
    }
    bool assistant = in->role && strcmp(in->role, "assistant") == 0;
    sb_put(&s, l->sys_prompt);
    sb_printf(&s, "\nTHE TURN was said at %s (a %s).\n", iso, wday);
    if (assistant) {
        sb_put(&s, "It was said by the assistant, to the user");
        if (in->speaker && in->speaker[0]) {
            sb_put(&s, " (named ");
            sb_put(&s, in->speaker);
            sb_put(&s, ")");
        }
        sb_put(&s, ": \"you\" is the user (subject \"\"). Report what it says "
                   "about the user as if the user had said it.\n");
    } else {
        sb_put(&s, "It was said by the user");
        if (in->speaker && in->speaker[0]) {
            sb_put(&s, ", named ");
            sb_put(&s, in->speaker);
            sb_put(&s, "; a sentence naming ");
            sb_put(&s, in->speaker);
            sb_put(&s, " in the third person is about the user (subject \"\")");
        }
        sb_put(&s, ".\n");
    }
    if (in->n_context) {
        /* The turns before it, so that "Also shellfish." or "March 4th."
         * can be read; their own facts were reported already. */
        sb_put(&s, "It continues this conversation (earlier turns, oldest first; "
                   "report only what THE TURN says, read in their light):\n");
        for (size_t i = 0; i < in->n_context; i++) {
            const ex_turn *t = &in->context[i];
            sb_printf(&s, "- %s: ", t->role && !strcmp(t->role, "assistant") ? "assistant"
                                                                              : "user");
            sb_put(&s, t->text ? t->text : "");
            sb_put(&s, "\n");
        }
    }
    return sb_take(&s);
}

/* answer_json -- the JSON object in an answer: from the first '{' to the
 * last '}', which also unwraps a Markdown code fence around it.  Without
 * a closing brace the rest of the answer is parsed, so that the model is
 * told where its JSON broke off. */
static json_t *answer_json(const char *content, problems *p)
{
    json_error_t jerr;
    const char *a = strchr(content, '{');
    if (!a) {
        problem(p, "the answer is not a JSON object");
        return NULL;
    }
    const char *b = strrchr(a, '}');
    const char *end = b ? b + 1 : a + strlen(a);
    json_t *root = json_loadb(a, (size_t)(end - a), 0, &jerr);
    if (!root)
        problem(p, "the answer is not valid JSON (%s, at character %d)", jerr.text,
                jerr.position);
    return root;
}

int llm_extract(llm *l, const ex_input *in, const ex_result *builtin, uint32_t max_calls,
                ex_result *out, bool *used_llm)
{
    int rc = DM_OK;
    char *sys = NULL, *text = NULL, *answer = NULL, *prev = NULL, *feedback = NULL;
    problems last = { "", 0, 0 };
    uint32_t n_calls = 0;
    size_t cap_ent;
    if (out)
        memset(out, 0, sizeof *out);
    if (used_llm)
        *used_llm = false;
    if (!l || !in || !out || !used_llm || (!in->text && in->len))
        return err_set_msg(DM_EINVAL, "llm_extract: NULL argument");
    if (max_calls == 0)
        max_calls = LLM_DEFAULT_MAX_CALLS;
    sys = turn_prompt(l, in);
    text = dm_malloc(in->len + 1);
    if (!sys || !text) {
        snprintf(last.text, sizeof last.text, "out of memory");
        goto fallback;
    }
    if (in->len)
        memcpy(text, in->text, in->len);
    text[in->len] = '\0';
    conv cv = { in, in->role && strcmp(in->role, "assistant") == 0 ? LLM_ASSISTANT_CONF : 1.0f,
                out, 0 };
    for (; n_calls < max_calls; n_calls++) {
        llm_msg msgs[4] = { { "system", sys }, { "user", text },
                            { "assistant", prev }, { "user", feedback } };
        size_t n_msgs = prev ? 4 : 2;
        rc = llm_chat(l, msgs, n_msgs, l->schema, &answer);
        if (rc != DM_OK) {
            /* The server failed after its own retries; asking again at
             * once would most likely fail the same way. */
            snprintf(last.text, sizeof last.text, "%s", err_last_msg());
            n_calls++;
            goto fallback;
        }
        problems p = { "", 0, 0 };
        json_t *root = answer_json(answer, &p);
        if (root)
            validate(root, &p);
        if (p.n == 0) {
            rc = convert(&cv, root, builtin);
            json_decref(root);
            if (rc == DM_OK) {
                *used_llm = true;
                goto done;
            }
            ex_result_free(out);
            memset(out, 0, sizeof *out);
            snprintf(last.text, sizeof last.text, "out of memory");
            n_calls++;
            goto fallback;
        }
        json_decref(root);
        atomic_fetch_add_explicit(&l->invalid, 1, memory_order_relaxed);
        last = p;
        if (p.n > LLM_PROBLEMS_MAX) {
            size_t k = strlen(last.text);
            snprintf(last.text + k, sizeof last.text - k, "; and %u more problems",
                     p.n - LLM_PROBLEMS_MAX);
        }
        /* Keep only the latest answer and what was wrong with it, so the
         * conversation stays small however many calls are allowed. */
        dm_free(prev);
        dm_free(feedback);
        prev = answer;
        answer = NULL;
        sb s = { { NULL, 0, 0 }, DM_OK };
        sb_put(&s, "Your answer was not valid: ");
        sb_put(&s, last.text);
        sb_put(&s, ". Answer again with the complete JSON object for the same "
                   "turn, following the rules and using only the listed slots, "
                   "relation types, polarities and event types.");
        feedback = sb_take(&s);
        if (!feedback) {
            snprintf(last.text, sizeof last.text, "out of memory");
            n_calls++;
            goto fallback;
        }
    }
fallback:
    LOG_W("llm_extract: %s: no valid answer after %u call(s) (%s); keeping the "
          "built-in result", l->url, n_calls, last.text);
    rc = copy_result(builtin, out, &cap_ent);
    if (rc != DM_OK) {
        ex_result_free(out);
        memset(out, 0, sizeof *out);
        rc = err_set_msg(DM_ENOMEM, "llm_extract: out of memory");
    }
done:
    dm_free(answer);
    dm_free(prev);
    dm_free(feedback);
    dm_free(text);
    dm_free(sys);
    return rc;
}

/* ------------------------------------------------------------ lifecycle */

void llm_close(llm *l)
{
    if (!l)
        return;
    httpc_fini(&l->hc);
    if (l->auth_header) {
        /* The key does not outlive the client in our memory. */
        explicit_bzero(l->auth_header, strlen(l->auth_header));
        dm_free(l->auth_header);
    }
    dm_free(l->sys_prompt);
    dm_free(l->schema);
    dm_free(l->model);
    dm_free(l->url);
    dm_free(l);
}

int llm_open(const llm_config *c, llm **out)
{
    llm *l = NULL;
    int rc;
    static const char auth[] = "Authorization: Bearer ";
    if (out)
        *out = NULL;
    if (!c || !out)
        return err_set_msg(DM_EINVAL, "llm_open: NULL argument");
    if (!c->base_url || !c->base_url[0])
        return err_set_msg(DM_EINVAL, "llm_open: base_url is required");
    if (!c->model || !c->model[0])
        return err_set_msg(DM_EINVAL, "llm_open: model is required");
    if (strncmp(c->base_url, "http://", 7) != 0 && strncmp(c->base_url, "https://", 8) != 0)
        return err_set_msg(DM_EINVAL, "llm_open: base_url must start with http:// "
                           "or https://");
    if (!isfinite(c->temperature) || c->temperature < 0.0f || c->temperature > 2.0f)
        return err_set_msg(DM_EINVAL, "llm_open: temperature must be in [0, 2]");
    l = dm_calloc(1, sizeof *l);
    if (!l)
        return DM_ENOMEM;
    if ((rc = httpc_init(&l->hc)) != DM_OK) {
        dm_free(l);
        return rc;
    }
    l->timeout_ms = c->timeout_ms ? c->timeout_ms : LLM_DEFAULT_TIMEOUT_MS;
    l->retries = c->retries ? c->retries : LLM_DEFAULT_RETRIES;
    l->max_tokens = c->max_tokens ? c->max_tokens : LLM_DEFAULT_MAX_TOKENS;
    l->temperature = c->temperature;
    l->hc.timeout_ms = l->timeout_ms;
    l->hc.retries = l->retries;
    l->hc.max_reply_len = LLM_MAX_REPLY_LEN;
    size_t ul = strlen(c->base_url);
    while (ul > 0 && c->base_url[ul - 1] == '/')
        ul--;
    l->url = dm_malloc(ul + sizeof "/chat/completions");
    l->model = dm_strdup(c->model);
    l->schema = build_schema();
    l->sys_prompt = build_prompt();
    if (!l->url || !l->model || !l->schema || !l->sys_prompt) {
        rc = DM_ENOMEM;
        goto fail;
    }
    memcpy(l->url, c->base_url, ul);
    memcpy(l->url + ul, "/chat/completions", sizeof "/chat/completions");
    l->hc.url = l->url;
    const char *key = getenv(c->api_key_env ? c->api_key_env : LLM_DEFAULT_KEY_ENV);
    if (key && key[0]) {
        size_t kl = strlen(key);
        l->auth_header = dm_malloc(sizeof auth + kl);
        if (!l->auth_header) {
            rc = DM_ENOMEM;
            goto fail;
        }
        memcpy(l->auth_header, auth, sizeof auth - 1);
        memcpy(l->auth_header + sizeof auth - 1, key, kl + 1);
        l->hc.auth_header = l->auth_header;
    }
    *out = l;
    return DM_OK;
fail:
    llm_close(l);
    return rc;
}

void llm_usage_get(const llm *l, llm_usage *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!l)
        return;
    /* The totals are atomics only so that concurrent calls may add to
     * them; reading through a non-const pointer is what C11 requires. */
    llm *m = (llm *)l;
    out->calls = atomic_load_explicit(&m->calls, memory_order_relaxed);
    out->failures = atomic_load_explicit(&m->failures, memory_order_relaxed);
    out->invalid = atomic_load_explicit(&m->invalid, memory_order_relaxed);
    out->prompt_tokens = atomic_load_explicit(&m->prompt_tokens, memory_order_relaxed);
    out->completion_tokens =
        atomic_load_explicit(&m->completion_tokens, memory_order_relaxed);
}
