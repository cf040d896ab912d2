/*
 * mjson.h -- memories as JSON (the fields of `deltamemory export`), shared
 * by the deltamemory command and the HTTP server.  All functions are
 * thread-safe; returned JSON values are new references.
 */
#ifndef DM_SERVER_MJSON_H
#define DM_SERVER_MJSON_H

#include <stddef.h>

#include <jansson.h>

#include "deltamemory.h"

/* Names of the enums in JSON; the parsers return 0 and set *out, or -1 for
 * an unknown name. */
const char *mjson_kind_name(dm_memory_kind k);
const char *mjson_state_name(dm_memory_state s);
int mjson_kind_parse(const char *s, dm_memory_kind *out);
int mjson_state_parse(const char *s, dm_memory_state *out);

/*
 * mjson_memory -- the memory as a JSON object: id, tenant, user_id,
 * agent_id, session_id, role, text, time, record_time, salience,
 * decay_rate, access_count, last_access, kind, state, metadata, and
 * embedding when m->embedding is set.  NULL with the reason in err (for
 * example stored metadata that is not valid JSON).
 */
json_t *mjson_memory(const dm_memory *m, char *err, size_t err_cap);

/* mjson_float -- a JSON real for a float32: the shortest decimal (at most
 * 9 digits) that reads back to f.  NULL for a non-finite f. */
json_t *mjson_float(float f);

/* mjson_dumps -- compact JSON with 9 significant digits, or 17 when a
 * number inside a "metadata" member needs them.  free() the result; NULL
 * when out of memory. */
char *mjson_dumps(const json_t *v);

/* mjson_metadata_dumps -- a metadata object as the text the engine
 * stores (9 or 17 digits as needed).  free() the result. */
char *mjson_metadata_dumps(const json_t *obj);

#endif
