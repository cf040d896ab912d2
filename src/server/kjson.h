/*
 * kjson.h -- what the engine knows about a user, as JSON: facts, fact
 * changes, events, the knowledge graph, a perceived context and search
 * results.  Shared by the deltamemory command (profile, history, events,
 * graph, context, search with --json) and the HTTP server's native routes,
 * so that both print the same shapes (documented in
 * tools/cli/cmd_cognition.c and docs/api.md).  Every function returns a
 * new reference, NULL when out of memory (or, where an err buffer is
 * taken, with the reason there); all are thread-safe.
 */
#ifndef DM_SERVER_KJSON_H
#define DM_SERVER_KJSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "deltamemory.h"

/* An ISO 8601 UTC string; null for DM_TIME_OPEN (a fact still true). */
json_t *kjson_time(int64_t us);
/* The id's text form; null for the all-zero id (none). */
json_t *kjson_id(const dm_id *id);

const char *kjson_fact_state_name(dm_fact_state s);
const char *kjson_change_name(dm_change_kind k);
const char *kjson_event_type_name(dm_event_type t);

/* One fact: {id, subject, slot, value, confidence, valid_from, valid_to,
 * mentioned, state, derived, sources, superseded_by, extractor}. */
json_t *kjson_fact(const dm_fact *f);
/* An array of facts. */
json_t *kjson_facts(const dm_fact *f, size_t n);
/* {"changes": [{event, slot, old_value, new_value, time, recorded,
 * source, by, extractor}]} */
json_t *kjson_changes(const dm_change *c, size_t n);
/* One change (an element of kjson_changes). */
json_t *kjson_change(const dm_change *c);
/* {"events": [{id, type, what, who, from, to, has_time, mentioned,
 * confidence, source}]} */
json_t *kjson_events(const dm_event *e, size_t n);
/* {entity, depth, nodes: [{name, type, depth, score}], edges: [{src, rel,
 * dst, weight, time, sources}]}; entity NULL = "". */
json_t *kjson_graph(const dm_graph_result *r, const char *entity, uint32_t depth);
/* {profile: [fact], memories: [item], recent: [item], context, tokens};
 * an item is {id, role, text, time, score}. */
json_t *kjson_context(const dm_context *c);

/* {"results": [hit], "time"?: {label, from?, to?}}, where a hit is the
 * memory (mjson_memory) with score, vector_sim, bm25, vector_rank,
 * bm25_rank and, with DM_EXPLAIN, explain; r NULL = no results.  The
 * text form is written directly (jw.h): dm_malloc'd, *len its length.
 * On failure err names the memory that could not be represented. */
char *kjson_search_text(const dm_search_result *r, size_t *len, char *err, size_t err_cap);
json_t *kjson_search(const dm_search_result *r, char *err, size_t err_cap);

#endif
