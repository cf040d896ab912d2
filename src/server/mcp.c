/*
 * mcp.c -- the Model Context Protocol server: JSON-RPC 2.0 over any
 * transport, ten tools over the dm_* API (docs/api-mcp.md), and the HTTP
 * route POST /mcp (the streamable HTTP transport, answered in JSON).
 *
 * Design.  A message goes through three steps: the JSON-RPC envelope is
 * checked (jsonrpc "2.0", a string or number id, a string method); the
 * method is dispatched (initialize, ping, tools/list, tools/call;
 * notifications and client responses get no answer); a tool call's
 * arguments are checked against the tool's parameter table before the
 * tool runs.  The same table produces the JSON Schema that tools/list
 * advertises, so what is advertised and what is accepted cannot drift
 * apart.  Schemas are strict (additionalProperties false): an unknown
 * argument is refused with "Unrecognized key(s) in object: ...", the
 * words clients written against other MCP servers already show.
 *
 * Errors follow the protocol's two levels.  A malformed message, an
 * unknown method or a tool that does not exist is a JSON-RPC error
 * (-32700, -32600, -32601, -32602).  Bad arguments and failures of the
 * engine are tool results with isError true and the message as text, so
 * that the model calling the tool reads why and can try again.
 *
 * Scope.  Every tool acts inside the connection's tenant, and for the
 * user named by its user_id argument or else the connection's default
 * user.  The tenant never comes from the arguments, so one connection
 * can never reach another tenant's memories.  An unknown user is not an
 * error for the reading tools: they answer with nothing found.
 *
 * State and locking: none.  The core keeps nothing between messages (no
 * sessions: the HTTP route sends no Mcp-Session-Id), so calls run
 * concurrently on the thread-safe dm_* API.
 */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "server/handlers.h"
#include "server/mcp.h"
#include "server/kjson.h"
#include "server/mjson.h"

/* JSON-RPC 2.0 error codes. */
#define RPC_PARSE_ERROR (-32700)
#define RPC_INVALID_REQUEST (-32600)
#define RPC_METHOD_NOT_FOUND (-32601)
#define RPC_INVALID_PARAMS (-32602)
#define RPC_INTERNAL_ERROR (-32603)

/* The protocol versions we speak, newest first.  They differ in features
 * we do not use (sessions, streaming, structured output), so the same
 * answers are right for all of them. */
static const char *const versions[] = { MCP_LATEST_VERSION, "2025-06-18", "2025-03-26",
                                        "2024-11-05" };
#define N_VERSIONS (sizeof versions / sizeof versions[0])

static const char instructions[] =
    "DeltaMemory is a long-term memory for the user you are talking to. "
    "Before you answer, call get_context with the user's message: it gives what is "
    "known about the user (profile facts) and the memories relevant to the message. "
    "Store what the user tells you with add_memory (one turn at a time; facts such as "
    "where they live or work are extracted from it). Look things up with "
    "search_memories, see the user's facts with get_profile and how a fact changed "
    "with memory_history. Every tool acts for its user_id argument, or for the "
    "connection's default user when user_id is left out.";

/* ------------------------------------------------------------ the tools */

typedef enum ptype { P_STR, P_INT, P_NUM, P_BOOL, P_OBJ, P_TIME } ptype;

/* One argument of a tool: how it is advertised and how it is checked.
 * Strings (and times, which are ISO 8601 strings) are never empty. */
typedef struct param {
    const char *name;
    ptype type;
    bool is_required;
    double min, max;      /* P_INT / P_NUM range (min == max: none) */
    double def;           /* advertised default; NAN = none */
    const char *choices;  /* P_STR: allowed values, '|'-separated; NULL = any */
    const char *desc;
} param;

typedef struct call call;
typedef int (*tool_fn)(call *c);

typedef struct tool {
    const char *name;
    const char *title;
    const char *desc;
    const param *params;
    size_t n_params;
    bool is_read_only;
    bool is_destructive;
    bool is_idempotent;
    tool_fn fn;
} tool;

/* One tool call in progress: its inputs and the result being built. */
struct call {
    dm_db *db;
    const char *tenant;
    const char *user;     /* the user it acts for */
    json_t *args;         /* the checked arguments; borrowed */
    char *text;           /* the result's text, dm_malloc'd */
    bool is_error;
};

#define NONE NAN
#define P_USER                                                                           \
    { "user_id", P_STR, false, 0, 0, NONE, NULL,                                         \
      "The user whose memories to use. Defaults to the connection's user." }

static const param p_add[] = {
    { "text", P_STR, true, 0, 0, NONE, NULL,
      "What was said or should be remembered, e.g. \"I moved to Austin last month.\"" },
    P_USER,
    { "role", P_STR, false, 0, 0, NONE, "user|assistant",
      "Who said it; default \"user\". Facts about the user come from the user's turns." },
    { "speaker", P_STR, false, 0, 0, NONE, NULL,
      "The speaker's name when known, so that a sentence naming them in the third "
      "person is understood as being about them." },
    { "agent_id", P_STR, false, 0, 0, NONE, NULL, "The agent the memory belongs to." },
    { "session_id", P_STR, false, 0, 0, NONE, NULL,
      "The conversation it comes from; get_context shows a session's recent turns." },
    { "time", P_TIME, false, 0, 0, NONE, NULL,
      "When it was said, ISO 8601 (\"2024-05-08T13:56:00Z\"); default now. Relative "
      "times in the text (\"last Saturday\") are resolved against it." },
    { "metadata", P_OBJ, false, 0, 0, NONE, NULL,
      "A JSON object stored with the memory and usable in search filters." },
    { "infer", P_BOOL, false, 0, 0, 1, NULL,
      "Extract facts, events and relations from the text (default true). With false "
      "the text is stored as it is." },
};

static const param p_search[] = {
    { "query", P_STR, true, 0, 0, NONE, NULL,
      "What to look for, in natural language. Time expressions (\"last week\", \"in "
      "May 2023\") narrow the search to that time." },
    P_USER,
    { "limit", P_INT, false, 1, 100, 10, NULL, "How many memories at most (1-100)." },
    { "agent_id", P_STR, false, 0, 0, NONE, NULL, "Only memories of this agent." },
    { "session_id", P_STR, false, 0, 0, NONE, NULL, "Only memories of this conversation." },
    { "filter", P_OBJ, false, 0, 0, NONE, NULL,
      "A metadata filter, e.g. {\"topic\": \"travel\"} or {\"AND\": [{\"score\": "
      "{\"gte\": 3}}, {\"tag\": {\"in\": [\"a\", \"b\"]}}]} (operators eq ne in nin gt "
      "gte lt lte contains icontains; AND OR NOT)." },
    { "from", P_TIME, false, 0, 0, NONE, NULL,
      "Only memories that happened at or after this time (ISO 8601)." },
    { "to", P_TIME, false, 0, 0, NONE, NULL,
      "Only memories that happened before this time (ISO 8601)." },
};

static const param p_context[] = {
    { "query", P_STR, false, 0, 0, NONE, NULL,
      "The user's latest message: the memories relevant to it are included." },
    P_USER,
    { "session_id", P_STR, false, 0, 0, NONE, NULL,
      "The current conversation: its recent turns are included." },
    { "max_tokens", P_INT, false, 50, 32000, 2000, NULL,
      "Budget of the context block, in tokens (about 4 bytes each)." },
    { "limit", P_INT, false, 1, 100, 10, NULL, "Relevant memories at most." },
};

static const param p_profile[] = {
    P_USER,
    { "subject", P_STR, false, 0, 0, NONE, NULL,
      "An entity the user spoke of (\"Ann\", \"Acme\") instead of the user." },
    { "slot", P_STR, false, 0, 0, NONE, NULL,
      "Only this slot, e.g. \"location.city\" or \"work.employer\"." },
    { "as_of", P_TIME, false, 0, 0, NONE, NULL,
      "The facts that were true at this time, as known then (ISO 8601)." },
    { "history", P_BOOL, false, 0, 0, 0, NULL,
      "Every fact in every state (current, superseded, retracted) instead of the "
      "current ones." },
};

static const param p_list[] = {
    P_USER,
    { "limit", P_INT, false, 1, 1000, 50, NULL, "Memories per page (1-1000)." },
    { "cursor", P_STR, false, 0, 0, NONE, NULL, "next_cursor of the previous page." },
    { "from", P_TIME, false, 0, 0, NONE, NULL, "Only memories at or after this time." },
    { "to", P_TIME, false, 0, 0, NONE, NULL, "Only memories before this time." },
    { "include_archived", P_BOOL, false, 0, 0, 0, NULL,
      "Also list memories archived after fading (default false)." },
};

static const param p_id[] = {
    { "id", P_STR, true, 0, 0, NONE, NULL, "The memory's id (a UUID)." },
    P_USER,
};

static const param p_update[] = {
    { "id", P_STR, true, 0, 0, NONE, NULL, "The memory's id (a UUID)." },
    P_USER,
    { "text", P_STR, false, 0, 0, NONE, NULL, "The new text (re-indexed)." },
    { "metadata", P_OBJ, false, 0, 0, NONE, NULL,
      "A JSON object that replaces the memory's metadata." },
};

static const param p_history[] = {
    { "id", P_STR, true, 0, 0, NONE, NULL,
      "A fact's id (from get_profile), or a memory's id: the changes of the facts "
      "drawn from it." },
    P_USER,
};

static const param p_graph[] = {
    P_USER,
    { "entity", P_STR, false, 0, 0, NONE, NULL,
      "Where to start: an entity's name (\"Ann\"); default the user." },
    { "query", P_STR, false, 0, 0, NONE, NULL,
      "Instead of entity: a text whose entity names are looked up (\"Ann and Acme\")." },
    { "depth", P_INT, false, 1, 5, 2, NULL, "Hops from the start (1-5)." },
};

static int tool_add(call *c);
static int tool_search(call *c);
static int tool_context(call *c);
static int tool_profile(call *c);
static int tool_list(call *c);
static int tool_get(call *c);
static int tool_update(call *c);
static int tool_delete(call *c);
static int tool_history(call *c);
static int tool_graph(call *c);

#define PARAMS(p) p, sizeof p / sizeof p[0]
static const tool tools[] = {
    { "add_memory", "Add Memory",
      "Store one thing the user said (or that should be remembered) in long-term memory. "
      "Facts in it (where the user lives or works, family, preferences, plans) are "
      "extracted and merged into the user's profile; a newer value replaces an older "
      "one, which stays in its history. Returns the new memory's id.",
      PARAMS(p_add), false, false, false, tool_add },
    { "search_memories", "Search Memories",
      "Find the user's memories that best match a query (meaning, words, time "
      "expressions and the knowledge graph combined), best first, with their scores.",
      PARAMS(p_search), true, false, true, tool_search },
    { "get_context", "Get Context",
      "What to know before answering the user: their profile, the memories relevant "
      "to their latest message and the conversation's recent turns, as one text block "
      "within a token budget. Call it at the start of each turn.",
      PARAMS(p_context), true, false, true, tool_context },
    { "get_profile", "Get Profile",
      "The facts known about the user (or about an entity they spoke of): slot, "
      "value, confidence, since when, and the memories they came from.",
      PARAMS(p_profile), true, false, true, tool_profile },
    { "list_memories", "List Memories",
      "The user's memories, newest first, one page at a time.",
      PARAMS(p_list), true, false, true, tool_list },
    { "get_memory", "Get Memory", "One memory by its id, with all its fields.",
      PARAMS(p_id), true, false, true, tool_get },
    { "update_memory", "Update Memory",
      "Replace the text and/or the metadata of a memory. The old text is not kept.",
      PARAMS(p_update), false, true, true, tool_update },
    { "delete_memory", "Delete Memory",
      "Delete a memory for good, from storage and every index.",
      PARAMS(p_id), false, true, true, tool_delete },
    { "memory_history", "Memory History",
      "How a fact changed over time (added, said again, given a fuller value, "
      "superseded, retracted), each change with when and the memory that caused it. "
      "Given a memory's id: the changes of every fact drawn from that memory.",
      PARAMS(p_history), true, false, true, tool_history },
    { "search_graph", "Search Knowledge Graph",
      "The user's knowledge graph around an entity (people, places, organizations "
      "and how they relate), or the entities named in a text and the relations "
      "between them.",
      PARAMS(p_graph), true, false, true, tool_graph },
};
#define N_TOOLS (sizeof tools / sizeof tools[0])

/* ------------------------------------------------------------- schemas */

static json_t *param_schema(const param *p)
{
    static const char *const type_names[] = {
        [P_STR] = "string", [P_INT] = "integer", [P_NUM] = "number",
        [P_BOOL] = "boolean", [P_OBJ] = "object", [P_TIME] = "string",
    };
    json_t *s = json_object();
    if (!s)
        return NULL;
    json_object_set_new(s, "type", json_string(type_names[p->type]));
    if (p->type == P_STR || p->type == P_TIME)
        json_object_set_new(s, "minLength", json_integer(1));
    if (p->type == P_INT && p->min < p->max) {
        json_object_set_new(s, "minimum", json_integer((json_int_t)p->min));
        json_object_set_new(s, "maximum", json_integer((json_int_t)p->max));
    } else if (p->type == P_NUM && p->min < p->max) {
        json_object_set_new(s, "minimum", json_real(p->min));
        json_object_set_new(s, "maximum", json_real(p->max));
    }
    if (p->choices) {
        json_t *e = json_array();
        const char *a = p->choices;
        while (e && *a) {
            const char *b = strchr(a, '|');
            size_t n = b ? (size_t)(b - a) : strlen(a);
            json_array_append_new(e, json_stringn(a, n));
            a += n + (b != NULL);
        }
        json_object_set_new(s, "enum", e);
    }
    if (!isnan(p->def)) {
        if (p->type == P_BOOL)
            json_object_set_new(s, "default", json_boolean(p->def != 0));
        else if (p->type == P_INT)
            json_object_set_new(s, "default", json_integer((json_int_t)p->def));
        else
            json_object_set_new(s, "default", json_real(p->def));
    }
    json_object_set_new(s, "description", json_string(p->desc));
    return s;
}

static json_t *tool_json(const tool *t)
{
    json_t *props = json_object(), *req = json_array();
    for (size_t i = 0; props && req && i < t->n_params; i++) {
        json_object_set_new(props, t->params[i].name, param_schema(&t->params[i]));
        if (t->params[i].is_required)
            json_array_append_new(req, json_string(t->params[i].name));
    }
    json_t *schema = json_pack("{s:s, s:o, s:o, s:b, s:s}", "type", "object", "properties",
                               props, "required", req, "additionalProperties", 0, "$schema",
                               "http://json-schema.org/draft-07/schema#");
    return json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:b, s:b, s:b, s:b}}", "name", t->name,
                     "title", t->title, "description", t->desc, "inputSchema", schema,
                     "annotations", "title", t->title, "readOnlyHint", t->is_read_only,
                     "destructiveHint", t->is_destructive, "idempotentHint",
                     t->is_idempotent, "openWorldHint", 0);
}

/* ----------------------------------------------------- argument checks */

/* The first thing wrong with args for t, in err; true when they pass.
 * A null value counts as absent, as in the HTTP API. */
static bool check_args(const tool *t, json_t *args, char *err, size_t cap)
{
    size_t n = 0;
    const char *k;
    json_t *v;
    /* Every unknown key is named at once, so that one retry fixes all. */
    json_object_foreach(args, k, v) {
        bool is_known = false;
        for (size_t i = 0; i < t->n_params && !is_known; i++)
            is_known = !strcmp(t->params[i].name, k);
        if (is_known)
            continue;
        int w = snprintf(err + n, cap - n, "%s'%s'",
                         n ? ", " : "Unrecognized key(s) in object: ", k);
        if (w < 0 || (size_t)w >= cap - n)
            return false;
        n += (size_t)w;
    }
    if (n)
        return false;
    for (size_t i = 0; i < t->n_params; i++) {
        const param *p = &t->params[i];
        v = json_object_get(args, p->name);
        if (!v || json_is_null(v)) {
            if (p->is_required) {
                snprintf(err, cap, "\"%s\" is required", p->name);
                return false;
            }
            continue;
        }
        switch (p->type) {
        case P_STR:
        case P_TIME:
            if (!json_is_string(v)) {
                snprintf(err, cap, "\"%s\" must be a string", p->name);
                return false;
            }
            if (!json_string_length(v)) {
                snprintf(err, cap, "\"%s\" must not be empty", p->name);
                return false;
            }
            if (p->type == P_TIME) {
                int64_t us;
                if (dm_time_parse(json_string_value(v), &us) != DM_OK) {
                    snprintf(err, cap, "\"%s\" is not an ISO 8601 time: %s", p->name,
                             dm_errmsg());
                    return false;
                }
            }
            if (p->choices) {
                const char *s = json_string_value(v), *a = p->choices;
                size_t sl = strlen(s);
                bool is_ok = false;
                while (*a && !is_ok) {
                    const char *b = strchr(a, '|');
                    size_t al = b ? (size_t)(b - a) : strlen(a);
                    is_ok = al == sl && !memcmp(a, s, sl);
                    a += al + (b != NULL);
                }
                if (!is_ok) {
                    snprintf(err, cap, "\"%s\" must be one of %s", p->name, p->choices);
                    return false;
                }
            }
            break;
        case P_INT:
        case P_NUM: {
            bool is_int = json_is_integer(v) ||
                          (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)));
            if (!json_is_number(v) || (p->type == P_INT && !is_int)) {
                snprintf(err, cap, "\"%s\" must be %s", p->name,
                         p->type == P_INT ? "an integer" : "a number");
                return false;
            }
            double x = json_number_value(v);
            if (p->min < p->max && (x < p->min || x > p->max)) {
                snprintf(err, cap, "\"%s\" must be between %g and %g", p->name, p->min,
                         p->max);
                return false;
            }
            break;
        }
        case P_BOOL:
            if (!json_is_boolean(v)) {
                snprintf(err, cap, "\"%s\" must be true or false", p->name);
                return false;
            }
            break;
        case P_OBJ:
            if (!json_is_object(v)) {
                snprintf(err, cap, "\"%s\" must be a JSON object", p->name);
                return false;
            }
            break;
        }
    }
    return true;
}

/* Checked arguments, absent (or null) ones as NULL / the default. */
static const char *arg_str(const call *c, const char *k)
{
    return json_string_value(json_object_get(c->args, k));
}

static int64_t arg_int(const call *c, const char *k, int64_t def)
{
    json_t *v = json_object_get(c->args, k);
    return json_is_number(v) ? (int64_t)json_number_value(v) : def;
}

static bool arg_bool(const call *c, const char *k, bool def)
{
    json_t *v = json_object_get(c->args, k);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

static int64_t arg_time(const call *c, const char *k)
{
    int64_t us = 0;
    const char *s = arg_str(c, k);
    if (s && dm_time_parse(s, &us) != DM_OK)
        us = 0; /* cannot happen: check_args parsed it */
    return us;
}

/* ------------------------------------------------------------- results */

static int set_text(call *c, bool is_error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_text(call *c, bool is_error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    dm_free(c->text);
    c->text = n >= 0 ? dm_malloc((size_t)n + 1) : NULL;
    if (!c->text)
        return DM_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(c->text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    c->is_error = is_error;
    return DM_OK;
}

/* The result as pretty JSON; v is stolen. */
static int set_json(call *c, json_t *v)
{
    char *s = v ? json_dumps(v, JSON_INDENT(2) | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(v);
    if (!s)
        return DM_ENOMEM;
    int rc = set_text(c, false, "%s", s);
    free(s);
    return rc;
}

/* A failed dm_* call as a tool error with the engine's message. */
static int set_dm_error(call *c, int rc, const char *what)
{
    if (rc == DM_ENOMEM)
        return DM_ENOMEM;
    const char *msg = dm_errmsg();
    return set_text(c, true, "%s failed: %s: %s", what, dm_errname(rc),
                    msg && *msg ? msg : dm_strerror(rc));
}

static json_t *opt_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* A memory in a list or search result: the fields a reader needs. */
static json_t *memory_brief(const dm_memory *m)
{
    json_t *meta = json_loads(m->metadata ? m->metadata : "{}", 0, NULL);
    json_t *o = json_pack("{s:o, s:s%, s:s, s:o, s:s, s:s}", "id", kjson_id(&m->id), "text",
                          m->text, m->text_len, "role", m->role ? m->role : "user", "time",
                          kjson_time(m->event_time_us), "kind", mjson_kind_name(m->kind),
                          "state", mjson_state_name(m->state));
    if (o && m->agent_id)
        json_object_set_new(o, "agent_id", json_string(m->agent_id));
    if (o && m->session_id)
        json_object_set_new(o, "session_id", json_string(m->session_id));
    if (o && meta && json_object_size(meta))
        json_object_set(o, "metadata", meta);
    json_decref(meta);
    return o;
}

static json_t *facts_json(const dm_fact *f, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *src = json_array();
        for (size_t j = 0; src && j < f[i].n_sources; j++)
            json_array_append_new(src, kjson_id(&f[i].sources[j]));
        json_t *o = json_pack(
            "{s:o, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:b, s:o}", "id", kjson_id(&f[i].id),
            "subject", f[i].subject && *f[i].subject ? f[i].subject : "user", "slot",
            f[i].slot, "value", f[i].value, "confidence", mjson_float(f[i].confidence),
            "valid_from", kjson_time(f[i].valid_from_us), "valid_to",
            kjson_time(f[i].valid_to_us), "state",
            kjson_fact_state_name(f[i].state), "derived",
            f[i].derived != 0, "sources", src);
        if (!o || json_array_append_new(a, o)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *changes_json(const dm_change *ch, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "kind",
                              kjson_change_name(ch[i].kind),
                              "slot", ch[i].slot, "old_value", opt_str(ch[i].old_value),
                              "new_value", opt_str(ch[i].new_value), "at",
                              kjson_time(ch[i].at_us), "recorded", kjson_time(ch[i].recorded_us),
                              "source", kjson_id(&ch[i].source), "superseded_by",
                              kjson_id(&ch[i].other), "extractor", opt_str(ch[i].extractor));
        if (!o || json_array_append_new(a, o)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* A metadata argument as the text the engine stores; NULL when absent.
 * *out is freed with free(). */
static int meta_text(const call *c, const char *k, char **out)
{
    json_t *v = json_object_get(c->args, k);
    *out = NULL;
    if (!json_is_object(v))
        return DM_OK;
    *out = mjson_metadata_dumps(v);
    return *out ? DM_OK : DM_ENOMEM;
}

/* The id argument; false after setting the tool error. */
static bool parse_id(call *c, dm_id *id, int *rc)
{
    const char *s = arg_str(c, "id");
    if (dm_id_parse(s, id) == DM_OK)
        return true;
    *rc = set_text(c, true, "\"%s\" is not a memory id: ids are UUIDs such as "
                   "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", s);
    return false;
}

/* --------------------------------------------------------- tool bodies */

static int tool_add(call *c)
{
    char *meta = NULL;
    char idbuf[DM_ID_STRLEN + 1];
    int rc = meta_text(c, "metadata", &meta);
    if (rc)
        return rc;
    const char *text = arg_str(c, "text"), *speaker = arg_str(c, "speaker");
    if (arg_bool(c, "infer", true)) {
        dm_remember_params p;
        dm_remember_result r;
        dm_remember_params_init(&p);
        p.tenant = c->tenant;
        p.user_id = c->user;
        p.agent_id = arg_str(c, "agent_id");
        p.session_id = arg_str(c, "session_id");
        p.role = arg_str(c, "role");
        p.speaker = speaker;
        p.text = text;
        p.time_us = arg_time(c, "time");
        p.metadata = meta;
        rc = dm_remember(c->db, &p, &r);
        if (rc) {
            rc = set_dm_error(c, rc, "add_memory");
            goto done;
        }
        dm_id_format(&r.id, idbuf);
        rc = set_text(c, false,
                      "Stored memory %s. Facts: %u added, %u merged, %u updated, "
                      "%u superseded, %u retracted.",
                      idbuf, r.n_added, r.n_merged, r.n_updated, r.n_superseded,
                      r.n_retracted);
    } else {
        /* Without extraction the speaker would be lost; it is kept in the
         * metadata, where dm_remember would have put it. */
        if (speaker) {
            json_t *m = meta ? json_loads(meta, 0, NULL) : json_object();
            if (!m || json_object_set_new(m, "speaker", json_string(speaker))) {
                json_decref(m);
                rc = DM_ENOMEM;
                goto done;
            }
            free(meta);
            meta = mjson_metadata_dumps(m);
            json_decref(m);
            if (!meta) {
                rc = DM_ENOMEM;
                goto done;
            }
        }
        dm_add_params p;
        dm_id id;
        dm_add_params_init(&p);
        p.tenant = c->tenant;
        p.user_id = c->user;
        p.agent_id = arg_str(c, "agent_id");
        p.session_id = arg_str(c, "session_id");
        p.role = arg_str(c, "role");
        p.text = text;
        p.event_time_us = arg_time(c, "time");
        p.metadata = meta;
        p.no_extract = 1;
        rc = dm_add(c->db, &p, &id);
        if (rc) {
            rc = set_dm_error(c, rc, "add_memory");
            goto done;
        }
        dm_id_format(&id, idbuf);
        rc = set_text(c, false, "Stored memory %s (no extraction).", idbuf);
    }
done:
    free(meta);
    return rc;
}

static int tool_search(call *c)
{
    dm_search_params p;
    dm_search_result *r = NULL;
    char *filter = NULL;
    json_t *f = json_object_get(c->args, "filter");
    if (json_is_object(f) && !(filter = json_dumps(f, JSON_COMPACT)))
        return DM_ENOMEM;
    memset(&p, 0, sizeof p);
    p.tenant = c->tenant;
    p.user_id = c->user;
    p.query = arg_str(c, "query");
    p.k = (uint32_t)arg_int(c, "limit", 10);
    p.agent_id = arg_str(c, "agent_id");
    p.session_id = arg_str(c, "session_id");
    p.filter = filter;
    p.from_us = arg_time(c, "from");
    p.to_us = arg_time(c, "to");
    int rc = dm_search(c->db, &p, &r);
    free(filter);
    if (rc == DM_ENOTFOUND) /* a user with no memories yet */
        return set_json(c, json_pack("{s:[]}", "results"));
    if (rc)
        return set_dm_error(c, rc, "search_memories");
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n; i++) {
        json_t *o = memory_brief(&r->hits[i].memory);
        if (!o || json_object_set_new(o, "score", mjson_float(r->hits[i].score)) ||
            json_array_append_new(a, o)) {
            json_decref(a);
            a = NULL;
        }
    }
    json_t *out = a ? json_pack("{s:o}", "results", a) : NULL;
    if (out && r->time_label[0])
        json_object_set_new(out, "time_window", json_string(r->time_label));
    dm_search_result_free(r);
    return out ? set_json(c, out) : DM_ENOMEM;
}

static int tool_context(call *c)
{
    dm_perceive_params p;
    dm_context *ctx = NULL;
    memset(&p, 0, sizeof p);
    p.tenant = c->tenant;
    p.user_id = c->user;
    p.session_id = arg_str(c, "session_id");
    p.query = arg_str(c, "query");
    p.max_tokens = (uint32_t)arg_int(c, "max_tokens", 2000);
    p.k = (uint32_t)arg_int(c, "limit", 10);
    int rc = dm_perceive(c->db, &p, &ctx);
    if (rc == DM_ENOTFOUND)
        return set_text(c, false, "Nothing is known about user \"%s\" yet.", c->user);
    if (rc)
        return set_dm_error(c, rc, "get_context");
    if (ctx->text && *ctx->text)
        rc = set_text(c, false, "%s", ctx->text);
    else
        rc = set_text(c, false, "Nothing relevant is known about user \"%s\" yet.", c->user);
    dm_context_free(ctx);
    return rc;
}

static int tool_profile(call *c)
{
    dm_profile_params p;
    dm_fact *f = NULL;
    size_t n = 0;
    memset(&p, 0, sizeof p);
    p.tenant = c->tenant;
    p.user_id = c->user;
    p.subject = arg_str(c, "subject");
    p.slot = arg_str(c, "slot");
    p.as_of_us = arg_time(c, "as_of");
    p.history = arg_bool(c, "history", false);
    int rc = dm_profile(c->db, &p, &f, &n);
    if (rc && rc != DM_ENOTFOUND)
        return set_dm_error(c, rc, "get_profile");
    json_t *facts = facts_json(f, n);
    dm_facts_free(f, n);
    json_t *out = facts ? json_pack("{s:s, s:s, s:o}", "user_id", c->user, "subject",
                                    p.subject ? p.subject : "user", "facts", facts)
                        : NULL;
    return out ? set_json(c, out) : DM_ENOMEM;
}

static int tool_list(call *c)
{
    dm_list_params p;
    dm_list_result *r = NULL;
    memset(&p, 0, sizeof p);
    p.tenant = c->tenant;
    p.user_id = c->user;
    p.limit = (uint32_t)arg_int(c, "limit", 50);
    p.cursor = arg_str(c, "cursor");
    p.from_us = arg_time(c, "from");
    p.to_us = arg_time(c, "to");
    p.flags = arg_bool(c, "include_archived", false) ? DM_WITH_ARCHIVED : 0;
    int rc = dm_list(c->db, &p, &r);
    if (rc == DM_ENOTFOUND)
        return set_json(c, json_pack("{s:[], s:n}", "results", "next_cursor"));
    if (rc)
        return set_dm_error(c, rc, "list_memories");
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n; i++) {
        if (json_array_append_new(a, memory_brief(&r->items[i]))) {
            json_decref(a);
            a = NULL;
        }
    }
    json_t *out = a ? json_pack("{s:o, s:o}", "results", a, "next_cursor",
                                opt_str(r->next_cursor))
                    : NULL;
    dm_list_result_free(r);
    return out ? set_json(c, out) : DM_ENOMEM;
}

static int tool_get(call *c)
{
    dm_id id;
    dm_memory *m = NULL;
    dm_scope sc = { c->tenant, c->user };
    int rc = DM_OK;
    char err[256];
    if (!parse_id(c, &id, &rc))
        return rc;
    rc = dm_get(c->db, &sc, &id, 0, &m);
    if (rc == DM_ENOTFOUND)
        return set_text(c, true, "Memory %s not found for user \"%s\".", arg_str(c, "id"),
                        c->user);
    if (rc)
        return set_dm_error(c, rc, "get_memory");
    json_t *o = mjson_memory(m, err, sizeof err);
    dm_memory_free(m);
    if (!o)
        return set_text(c, true, "get_memory failed: %s", err);
    return set_json(c, o);
}

static int tool_update(call *c)
{
    dm_id id;
    dm_scope sc = { c->tenant, c->user };
    char *meta = NULL;
    int rc = DM_OK;
    if (!parse_id(c, &id, &rc))
        return rc;
    const char *text = arg_str(c, "text");
    if ((rc = meta_text(c, "metadata", &meta)))
        return rc;
    if (!text && !meta) {
        rc = set_text(c, true, "Give \"text\", \"metadata\" or both: there is nothing "
                      "to update.");
        goto done;
    }
    rc = dm_update(c->db, &sc, &id, text, meta);
    if (rc == DM_ENOTFOUND)
        rc = set_text(c, true, "Memory %s not found for user \"%s\".", arg_str(c, "id"),
                      c->user);
    else if (rc)
        rc = set_dm_error(c, rc, "update_memory");
    else
        rc = set_text(c, false, "Updated memory %s.", arg_str(c, "id"));
done:
    free(meta);
    return rc;
}

static int tool_delete(call *c)
{
    dm_id id;
    dm_scope sc = { c->tenant, c->user };
    int rc = DM_OK;
    if (!parse_id(c, &id, &rc))
        return rc;
    rc = dm_delete(c->db, &sc, &id);
    if (rc == DM_ENOTFOUND)
        return set_text(c, true, "Memory %s not found for user \"%s\".", arg_str(c, "id"),
                        c->user);
    if (rc)
        return set_dm_error(c, rc, "delete_memory");
    return set_text(c, false, "Deleted memory %s.", arg_str(c, "id"));
}

/* The changes of every fact of the user drawn from memory id, as
 * {"memory_id", "facts": [{fact..., "changes": [...]}]}. */
static int history_of_memory(call *c, const dm_id *id)
{
    dm_profile_params p;
    dm_fact *f = NULL;
    size_t n = 0;
    json_t *facts = json_array(), *out = NULL;
    memset(&p, 0, sizeof p);
    p.tenant = c->tenant;
    p.user_id = c->user;
    p.history = 1;
    int rc = dm_profile(c->db, &p, &f, &n);
    if (rc && rc != DM_ENOTFOUND) {
        rc = set_dm_error(c, rc, "memory_history");
        goto done;
    }
    rc = DM_OK;
    for (size_t i = 0; facts && i < n; i++) {
        bool is_from = false;
        for (size_t j = 0; j < f[i].n_sources && !is_from; j++)
            is_from = !memcmp(&f[i].sources[j], id, sizeof *id);
        if (!is_from)
            continue;
        dm_change *ch = NULL;
        size_t n_ch = 0;
        rc = dm_history(c->db, c->tenant, c->user, &f[i].id, &ch, &n_ch);
        if (rc) {
            rc = set_dm_error(c, rc, "memory_history");
            goto done;
        }
        json_t *one = facts_json(&f[i], 1), *o = json_array_get(one, 0);
        json_t *chj = changes_json(ch, n_ch);
        dm_changes_free(ch, n_ch);
        if (!o || !chj || json_object_set_new(o, "changes", chj) ||
            json_array_append(facts, o)) {
            json_decref(one);
            rc = DM_ENOMEM;
            goto done;
        }
        json_decref(one);
    }
    out = facts ? json_pack("{s:s, s:O}", "memory_id", arg_str(c, "id"), "facts", facts)
                : NULL;
    rc = out ? set_json(c, out) : DM_ENOMEM;
done:
    json_decref(facts);
    dm_facts_free(f, n);
    return rc;
}

static int tool_history(call *c)
{
    dm_id id;
    dm_change *ch = NULL;
    size_t n = 0;
    int rc = DM_OK;
    if (!parse_id(c, &id, &rc))
        return rc;
    rc = dm_history(c->db, c->tenant, c->user, &id, &ch, &n);
    if (rc == DM_ENOTFOUND) {
        /* Not a fact: a memory's id gives the facts drawn from it. */
        dm_scope sc = { c->tenant, c->user };
        dm_memory *m = NULL;
        int grc = dm_get(c->db, &sc, &id, 0, &m);
        dm_memory_free(m);
        if (grc == DM_OK)
            return history_of_memory(c, &id);
        if (grc != DM_ENOTFOUND)
            return set_dm_error(c, grc, "memory_history");
        return set_text(c, true, "No fact or memory %s for user \"%s\".", arg_str(c, "id"),
                        c->user);
    }
    if (rc)
        return set_dm_error(c, rc, "memory_history");
    json_t *a = changes_json(ch, n);
    dm_changes_free(ch, n);
    json_t *out = a ? json_pack("{s:s, s:o}", "fact_id", arg_str(c, "id"), "changes", a)
                    : NULL;
    return out ? set_json(c, out) : DM_ENOMEM;
}

static int tool_graph(call *c)
{
    dm_graph_result *g = NULL;
    const char *entity = arg_str(c, "entity"), *query = arg_str(c, "query");
    int rc;
    if (entity && query)
        return set_text(c, true, "Give \"entity\" or \"query\", not both.");
    if (query)
        rc = dm_graph_search(c->db, c->tenant, c->user, query, &g);
    else
        rc = dm_graph_neighbours(c->db, c->tenant, c->user, entity,
                                 (uint32_t)arg_int(c, "depth", 2), &g);
    if (rc == DM_ENOTFOUND)
        return set_json(c, json_pack("{s:[], s:[]}", "nodes", "edges"));
    if (rc)
        return set_dm_error(c, rc, "search_graph");
    json_t *nodes = json_array(), *edges = json_array(), *out = NULL;
    for (size_t i = 0; nodes && i < g->n_nodes; i++) {
        const dm_graph_node *nd = &g->nodes[i];
        if (json_array_append_new(nodes, json_pack("{s:s, s:s, s:i, s:o}", "name", nd->name,
                                                   "type", nd->type, "depth", (int)nd->depth,
                                                   "score", mjson_float(nd->score))))
            goto done;
    }
    for (size_t i = 0; edges && i < g->n_edges; i++) {
        const dm_graph_edge *e = &g->edges[i];
        json_t *src = json_array();
        for (size_t j = 0; src && j < e->n_sources; j++)
            json_array_append_new(src, kjson_id(&e->sources[j]));
        if (json_array_append_new(edges, json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "src",
                                                   e->src, "rel", e->rel, "dst", e->dst,
                                                   "weight", mjson_float(e->weight), "time",
                                                   kjson_time(e->time_us), "sources", src)))
            goto done;
    }
    out = nodes && edges ? json_pack("{s:O, s:O}", "nodes", nodes, "edges", edges) : NULL;
done:
    json_decref(nodes);
    json_decref(edges);
    dm_graph_result_free(g);
    return out ? set_json(c, out) : DM_ENOMEM;
}

/* ------------------------------------------------------------ JSON-RPC */

static json_t *rpc_error(json_t *id, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* An error response; id borrowed (NULL = null). */
static json_t *rpc_error(json_t *id, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id",
                     id ? id : json_null(), "error", "code", code, "message", msg);
}

/* A result response; result stolen. */
static json_t *rpc_result(json_t *id, json_t *result)
{
    return result ? json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result)
                  : NULL;
}

static json_t *do_initialize(json_t *id, json_t *params)
{
    const char *want = json_string_value(json_object_get(params, "protocolVersion"));
    const char *ver = MCP_LATEST_VERSION;
    for (size_t i = 0; want && i < N_VERSIONS; i++)
        if (!strcmp(want, versions[i]))
            ver = versions[i];
    return rpc_result(id, json_pack("{s:s, s:{s:{s:b}}, s:{s:s, s:s, s:s}, s:s}",
                                    "protocolVersion", ver, "capabilities", "tools",
                                    "listChanged", 0, "serverInfo", "name", "deltamemory",
                                    "title", "DeltaMemory", "version", dm_version(),
                                    "instructions", instructions));
}

static json_t *do_tools_list(json_t *id)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < N_TOOLS; i++) {
        if (json_array_append_new(a, tool_json(&tools[i]))) {
            json_decref(a);
            a = NULL;
        }
    }
    return a ? rpc_result(id, json_pack("{s:o}", "tools", a)) : NULL;
}

static json_t *tool_result(json_t *id, const char *text, bool is_error)
{
    return rpc_result(id, json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text",
                                    "text", text, "isError", is_error));
}

static json_t *do_tools_call(dm_db *db, const mcp_scope *scope, json_t *id, json_t *params)
{
    const char *name = json_string_value(json_object_get(params, "name"));
    json_t *args = json_object_get(params, "arguments");
    const tool *t = NULL;
    if (!name)
        return rpc_error(id, RPC_INVALID_PARAMS, "tools/call needs params.name, a string");
    for (size_t i = 0; i < N_TOOLS && !t; i++)
        if (!strcmp(tools[i].name, name))
            t = &tools[i];
    if (!t)
        return rpc_error(id, RPC_INVALID_PARAMS, "Unknown tool: %s", name);
    if (args && !json_is_null(args) && !json_is_object(args))
        return rpc_error(id, RPC_INVALID_PARAMS,
                         "params.arguments of tools/call must be an object");

    json_t *empty = NULL, *resp = NULL;
    if (!json_is_object(args) && !(args = empty = json_object()))
        return NULL;
    char err[512];
    if (!check_args(t, args, err, sizeof err)) {
        char msg[600];
        snprintf(msg, sizeof msg, "Invalid arguments for tool %s: %s", t->name, err);
        resp = tool_result(id, msg, true);
        goto done;
    }
    json_t *limit = json_object_get(args, "limit");
    if (scope->max_limit && json_is_integer(limit) &&
        json_integer_value(limit) > (json_int_t)scope->max_limit) {
        snprintf(err, sizeof err,
                 "Invalid arguments for tool %s: \"limit\" %" JSON_INTEGER_FORMAT
                 " is over this server's bound of %u",
                 t->name, json_integer_value(limit), scope->max_limit);
        resp = tool_result(id, err, true);
        goto done;
    }
    call c = { db, scope->tenant ? scope->tenant : DM_DEFAULT_TENANT, NULL, args, NULL, false };
    c.user = json_string_value(json_object_get(args, "user_id"));
    if (!c.user)
        c.user = scope->user_id;
    if (!c.user) {
        snprintf(err, sizeof err,
                 "%s needs \"user_id\": this connection has no default user", t->name);
        resp = tool_result(id, err, true);
        goto done;
    }
    if (t->fn(&c) == DM_OK && c.text)
        resp = tool_result(id, c.text, c.is_error);
    dm_free(c.text);
done:
    json_decref(empty);
    return resp;
}

/* One message (not a batch); *out NULL when it needs no answer. */
static int handle_one(dm_db *db, const mcp_scope *scope, json_t *msg, json_t **out)
{
    *out = NULL;
    if (!json_is_object(msg)) {
        *out = rpc_error(NULL, RPC_INVALID_REQUEST, "a JSON-RPC message is a JSON object");
        return *out ? DM_OK : DM_ENOMEM;
    }
    json_t *id = json_object_get(msg, "id");
    json_t *method = json_object_get(msg, "method");
    json_t *params = json_object_get(msg, "params");
    /* An id that is not a string or a number cannot be echoed back. */
    json_t *echo = id && (json_is_string(id) || json_is_number(id)) ? id : NULL;
    if (!method && (json_object_get(msg, "result") || json_object_get(msg, "error")))
        return DM_OK; /* a response from the client: we send no requests */
    const char *jv = json_string_value(json_object_get(msg, "jsonrpc"));
    if (!jv || strcmp(jv, "2.0")) {
        *out = rpc_error(echo, RPC_INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\"");
    } else if (!json_is_string(method)) {
        *out = rpc_error(echo, RPC_INVALID_REQUEST, "\"method\" must be a string");
    } else if (id && !echo) {
        *out = rpc_error(NULL, RPC_INVALID_REQUEST, "\"id\" must be a string or a number");
    } else if (!id) {
        return DM_OK; /* a notification: never answered, whatever it is */
    } else if (params && !json_is_object(params)) {
        *out = rpc_error(id, RPC_INVALID_PARAMS, "\"params\" must be an object");
    } else {
        const char *m = json_string_value(method);
        if (!strcmp(m, "initialize"))
            *out = do_initialize(id, params);
        else if (!strcmp(m, "ping"))
            *out = rpc_result(id, json_object());
        else if (!strcmp(m, "tools/list"))
            *out = do_tools_list(id);
        else if (!strcmp(m, "tools/call"))
            *out = do_tools_call(db, scope, id, params);
        else
            *out = rpc_error(id, RPC_METHOD_NOT_FOUND, "Method not found: %s", m);
    }
    return *out ? DM_OK : DM_ENOMEM;
}

int mcp_handle_json(dm_db *db, const mcp_scope *scope, json_t *msg, json_t **out)
{
    static const mcp_scope none = { NULL, NULL, 0 };
    if (!scope)
        scope = &none;
    *out = NULL;
    if (!json_is_array(msg))
        return handle_one(db, scope, msg, out);
    /* A batch: the answers of its requests, in order; nothing when it held
     * only notifications. */
    if (!json_array_size(msg)) {
        *out = rpc_error(NULL, RPC_INVALID_REQUEST, "an empty batch");
        return *out ? DM_OK : DM_ENOMEM;
    }
    json_t *all = json_array();
    size_t i;
    json_t *m;
    if (!all)
        return DM_ENOMEM;
    json_array_foreach(msg, i, m) {
        json_t *one;
        int rc = handle_one(db, scope, m, &one);
        if (rc || (one && json_array_append_new(all, one))) {
            json_decref(all);
            return DM_ENOMEM;
        }
    }
    if (json_array_size(all))
        *out = all;
    else
        json_decref(all);
    return DM_OK;
}

int mcp_handle(dm_db *db, const mcp_scope *scope, const char *request_json, size_t len,
               char **response_json)
{
    json_error_t je;
    json_t *msg = json_loadb(request_json, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    json_t *resp = NULL;
    char *s = NULL;
    int rc = DM_OK;
    *response_json = NULL;
    if (!msg)
        resp = rpc_error(NULL, RPC_PARSE_ERROR, "Parse error: line %d column %d: %s", je.line,
                         je.column, je.text);
    else
        rc = mcp_handle_json(db, scope, msg, &resp);
    json_decref(msg);
    if (rc || (!resp && !msg))
        goto fail;
    if (!resp)
        return DM_OK;
    if (!(s = mjson_dumps(resp)) || !(*response_json = dm_strdup(s)))
        goto fail;
    free(s);
    json_decref(resp);
    return DM_OK;
fail:
    free(s);
    json_decref(resp);
    return DM_ENOMEM;
}

/* ---------------------------------------------------------- HTTP route */

/* Whether an Origin header names this machine.  Browsers send one; a
 * page elsewhere that reaches a loopback server through a rebound DNS
 * name shows its own origin and is refused. */
static bool origin_is_local(const char *o)
{
    const char *h = strstr(o, "://");
    h = h ? h + 3 : o;
    static const char *const local[] = { "localhost", "127.0.0.1", "[::1]" };
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(local[i]);
        if (!strncmp(h, local[i], n) && (h[n] == 0 || h[n] == ':' || h[n] == '/'))
            return true;
    }
    return false;
}

static void mcp_post(http_req *rq, http_resp *rs)
{
    const char *origin = http_header(rq, "Origin");
    const char *ver = http_header(rq, "MCP-Protocol-Version");
    /* Without API keys the server only listens on loopback, and only the
     * Origin check keeps a web page from driving it through the browser. */
    if (!rq->key_id && origin && !origin_is_local(origin)) {
        http_fail(rs, HTTP_E_FORBIDDEN, NULL, "origin %s may not use this server", origin);
        return;
    }
    if (ver) {
        bool is_known = false;
        for (size_t i = 0; i < N_VERSIONS && !is_known; i++)
            is_known = !strcmp(ver, versions[i]);
        if (!is_known) {
            http_fail(rs, HTTP_E_BAD_REQUEST, NULL,
                      "MCP-Protocol-Version %s is not supported; the latest is %s", ver,
                      MCP_LATEST_VERSION);
            return;
        }
    }
    mcp_scope sc = { rq->tenant, http_header(rq, "X-DeltaMemory-User"), rq->cfg->max_top_k };
    if (!sc.user_id)
        sc.user_id = http_query(rq, "user_id");
    if (sc.user_id && !*sc.user_id)
        sc.user_id = NULL;
    if (!rq->body) {
        http_fail(rs, HTTP_E_BAD_REQUEST, NULL,
                  "POST one JSON-RPC message (a JSON object) as the body");
        return;
    }
    json_t *out = NULL;
    int rc = mcp_handle_json(rq->db, &sc, rq->body, &out);
    if (rc) {
        http_fail_dm(rs, rc, "mcp");
        return;
    }
    if (!out) {
        /* Notifications are acknowledged with 202 and no body at all. */
        rs->raw = dm_malloc(1);
        if (!rs->raw) {
            http_fail(rs, HTTP_E_INTERNAL, NULL, "out of memory");
            return;
        }
        rs->raw_len = 0;
        rs->status = 202;
        rs->content_type = "text/plain; charset=utf-8";
        return;
    }
    http_reply(rs, 200, out);
}

/* The streamable HTTP transport's GET (a stream of server messages) and
 * DELETE (end of a session): we send no messages of our own and keep no
 * sessions, so both are refused the way the protocol allows. */
static void mcp_not_allowed(http_req *rq, http_resp *rs)
{
    http_header_add(rs, "Allow", "POST");
    http_fail(rs, HTTP_E_METHOD, NULL,
              "%s /mcp is not supported: this server answers POST only and keeps no sessions",
              rq->method);
}

const http_route http_routes_mcp[] = {
    { "POST", "/mcp", HTTP_NATIVE, mcp_post, "mcp", false, false },
    { "GET", "/mcp", HTTP_NATIVE, mcp_not_allowed, "mcp", false, false },
    { "DELETE", "/mcp", HTTP_NATIVE, mcp_not_allowed, "mcp", false, false },
    { 0 },
};
