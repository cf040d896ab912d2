/*
 * kjson.c -- a user's knowledge as JSON (facts, changes, events, graph,
 * context, search results), shared by the deltamemory command and the
 * HTTP server's native routes so that both speak the same shapes.
 *
 * Design: each builder maps one engine structure to one JSON value with
 * its members in a fixed order (jansson keeps insertion order), so that
 * the command's output is stable byte for byte.  Floats go through
 * mjson_float (the shortest decimal that reads back to the float32).
 * The shapes are a public contract: tools/cli/cmd_cognition.c lists them
 * and docs/api.md documents them; change them only by adding members.
 */
#include <stdio.h>
#include <string.h>

#include "server/jw.h"
#include "server/kjson.h"
#include "server/mjson.h"

json_t *kjson_time(int64_t us)
{
    if (us == DM_TIME_OPEN)
        return json_null();
    char t[40];
    dm_time_format(us, t);
    return json_string(t);
}

json_t *kjson_id(const dm_id *id)
{
    static const dm_id zero;
    if (!memcmp(id, &zero, sizeof zero))
        return json_null();
    char s[DM_ID_STRLEN + 1];
    dm_id_format(id, s);
    return json_string(s);
}

const char *kjson_fact_state_name(dm_fact_state s)
{
    return s == DM_FACT_CURRENT ? "current" : s == DM_FACT_SUPERSEDED ? "superseded" : "retracted";
}

const char *kjson_change_name(dm_change_kind k)
{
    switch (k) {
    case DM_CHANGE_ADD: return "add";
    case DM_CHANGE_UPDATE: return "update";
    case DM_CHANGE_SUPERSEDE: return "supersede";
    case DM_CHANGE_MERGE: return "merge";
    case DM_CHANGE_RETRACT: return "retract";
    }
    return "?";
}

const char *kjson_event_type_name(dm_event_type t)
{
    static const char *const n[] = { "activity", "plan", "milestone", "preference", "social" };
    return (unsigned)t < 5 ? n[t] : "?";
}

json_t *kjson_fact(const dm_fact *f)
{
    json_t *src = json_array();
    for (size_t i = 0; i < f->n_sources; i++)
        json_array_append_new(src, kjson_id(&f->sources[i]));
    return json_pack("{s:o, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:b, s:o, s:o, s:s}", "id",
                     kjson_id(&f->id), "subject", f->subject, "slot", f->slot, "value", f->value,
                     "confidence", mjson_float(f->confidence), "valid_from",
                     kjson_time(f->valid_from_us), "valid_to", kjson_time(f->valid_to_us),
                     "mentioned", kjson_time(f->mentioned_us), "state",
                     kjson_fact_state_name(f->state), "derived", f->derived, "sources", src,
                     "superseded_by", kjson_id(&f->superseded_by), "extractor", f->extractor);
}

json_t *kjson_facts(const dm_fact *f, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, kjson_fact(&f[i]));
    return arr;
}

json_t *kjson_change(const dm_change *c)
{
    return json_pack("{s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:s}", "event",
                     kjson_change_name(c->kind), "slot", c->slot, "old_value",
                     c->old_value ? json_string(c->old_value) : json_null(), "new_value",
                     c->new_value, "time", kjson_time(c->at_us), "recorded",
                     kjson_time(c->recorded_us), "source", kjson_id(&c->source), "by",
                     kjson_id(&c->other), "extractor", c->extractor);
}

json_t *kjson_changes(const dm_change *c, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, kjson_change(&c[i]));
    return json_pack("{s:o}", "changes", arr);
}

json_t *kjson_events(const dm_event *e, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *who = json_array();
        for (size_t j = 0; j < e[i].n_who; j++)
            json_array_append_new(who, json_string(e[i].who[j]));
        json_array_append_new(
            arr, json_pack("{s:o, s:s, s:s, s:o, s:o, s:o, s:b, s:o, s:o, s:o}", "id",
                           kjson_id(&e[i].id), "type", kjson_event_type_name(e[i].type), "what",
                           e[i].what, "who", who, "from", kjson_time(e[i].from_us), "to",
                           kjson_time(e[i].to_us), "has_time", e[i].has_time, "mentioned",
                           kjson_time(e[i].mentioned_us), "confidence",
                           mjson_float(e[i].confidence), "source", kjson_id(&e[i].source)));
    }
    return json_pack("{s:o}", "events", arr);
}

json_t *kjson_graph(const dm_graph_result *r, const char *entity, uint32_t depth)
{
    json_t *nodes = json_array(), *edges = json_array();
    for (size_t i = 0; nodes && i < r->n_nodes; i++)
        json_array_append_new(nodes, json_pack("{s:s, s:s, s:i, s:o}", "name", r->nodes[i].name,
                                               "type", r->nodes[i].type, "depth",
                                               (int)r->nodes[i].depth, "score",
                                               mjson_float(r->nodes[i].score)));
    for (size_t i = 0; edges && i < r->n_edges; i++) {
        json_t *src = json_array();
        for (size_t k = 0; k < r->edges[i].n_sources; k++)
            json_array_append_new(src, kjson_id(&r->edges[i].sources[k]));
        json_array_append_new(
            edges, json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "src", r->edges[i].src, "rel",
                             r->edges[i].rel, "dst", r->edges[i].dst, "weight",
                             mjson_float(r->edges[i].weight), "time",
                             kjson_time(r->edges[i].time_us), "sources", src));
    }
    return json_pack("{s:s, s:i, s:o, s:o}", "entity", entity ? entity : "", "depth", (int)depth,
                     "nodes", nodes, "edges", edges);
}

static json_t *items_json(const dm_context_item *it, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_pack("{s:o, s:s, s:s, s:o, s:o}", "id",
                                             kjson_id(&it[i].id), "role", it[i].role, "text",
                                             it[i].text, "time", kjson_time(it[i].time_us),
                                             "score", mjson_float(it[i].score)));
    return arr;
}

json_t *kjson_context(const dm_context *c)
{
    return json_pack("{s:o, s:o, s:o, s:s, s:i}", "profile", kjson_facts(c->profile, c->n_profile),
                     "memories", items_json(c->memories, c->n_memories), "recent",
                     items_json(c->recent, c->n_recent), "context", c->text ? c->text : "",
                     "tokens", (int)c->tokens);
}

static const char *const leg_names[DM_N_LEGS] = { "vector", "bm25", "temporal", "graph" };

static void explain_write(jw *w, const dm_explain *e)
{
    jw_open(w, '{');
    jw_key(w, "legs");
    jw_open(w, '{');
    for (int i = 0; i < DM_N_LEGS; i++) {
        if (!e->leg_rank[i])
            continue;
        jw_key(w, leg_names[i]);
        jw_open(w, '{');
        jw_key(w, "rank");
        jw_int(w, e->leg_rank[i]);
        jw_key(w, "score");
        jw_float(w, e->leg_score[i]);
        jw_close(w, '}');
    }
    jw_close(w, '}');
    static const char *const names[] = { "fused",    "relevance", "recency",      "salience",
                                         "score",    "mmr_score", "max_sim_above" };
    const float v[] = { e->fused, e->relevance, e->recency, e->salience,
                        e->score, e->mmr_score, e->max_sim };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        jw_key(w, names[i]);
        jw_float(w, v[i]);
    }
    jw_key(w, "neighbour_of");
    jw_int(w, e->neighbour_of);
    jw_key(w, "graph_answer");
    jw_bool(w, e->graph_answer);
    jw_key(w, "reason");
    jw_cstr(w, e->reason);
    jw_close(w, '}');
}

static void hit_write(jw *w, const dm_search_hit *h)
{
    jw_open(w, '{');
    mjson_memory_write(w, &h->memory);
    jw_key(w, "score");
    jw_float(w, h->score);
    jw_key(w, "vector_sim");
    jw_float(w, h->vector_sim);
    jw_key(w, "bm25");
    jw_float(w, h->bm25);
    jw_key(w, "vector_rank");
    jw_int(w, h->vector_rank);
    jw_key(w, "bm25_rank");
    jw_int(w, h->bm25_rank);
    if (h->explain) {
        jw_key(w, "explain");
        explain_write(w, h->explain);
    }
    jw_close(w, '}');
}

char *kjson_search_text(const dm_search_result *r, size_t *len, char *err, size_t err_cap)
{
    jw w;
    jw_init(&w);
    jw_open(&w, '{');
    jw_key(&w, "results");
    jw_open(&w, '[');
    for (size_t i = 0; r && i < r->n; i++) {
        hit_write(&w, &r->hits[i]);
        if (w.why) {
            char id[DM_ID_STRLEN + 1];
            dm_id_format(&r->hits[i].memory.id, id);
            snprintf(err, err_cap, "memory %s: %s", id, w.why);
            jw_fini(&w);
            return NULL;
        }
    }
    jw_close(&w, ']');
    if (r && (r->time_label[0] || r->window_from_us || r->window_to_us)) {
        jw_key(&w, "time");
        jw_open(&w, '{');
        jw_key(&w, "label");
        jw_cstr(&w, r->time_label);
        if (r->window_from_us) {
            jw_key(&w, "from");
            jw_time(&w, r->window_from_us);
        }
        if (r->window_to_us) {
            jw_key(&w, "to");
            jw_time(&w, r->window_to_us);
        }
        jw_close(&w, '}');
    }
    jw_close(&w, '}');
    char *txt = jw_take(&w, len);
    if (!txt)
        snprintf(err, err_cap, "%s", w.why);
    return txt;
}

json_t *kjson_search(const dm_search_result *r, char *err, size_t err_cap)
{
    size_t n;
    char *txt = kjson_search_text(r, &n, err, err_cap);
    return mjson_tree(txt, n, err, err_cap);
}
