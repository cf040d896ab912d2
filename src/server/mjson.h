/*
 * mjson.h -- memories as JSON (the fields of `deltamemory export`), shared
 * by the deltamemory command and the HTTP server.  All functions are
 * thread-safe; returned JSON values are new references.
 */
#ifndef DM_SERVER_MJSON_H
#define DM_SERVER_MJSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "deltamemory.h"

struct jw;

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
/* The same object as JSON text (dm_malloc'd, *len its length), written
 * directly; NULL with the reason in err. */
char *mjson_memory_text(const dm_memory *m, size_t *len, char *err, size_t err_cap);
/* Its fields, written into w's open object (jw.h); a failure is w->why. */
void mjson_memory_write(struct jw *w, const dm_memory *m);
/* The tree of a writer's text (taken and freed; NULL passes through, err
 * then already set by the writer's caller); NULL with the reason in err. */
json_t *mjson_tree(char *txt, size_t len, char *err, size_t err_cap);

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

/* What the params of mjson_add_params point to besides the JSON object
 * itself: released with mjson_owned_fini. */
typedef struct mjson_owned {
    char *metadata;   /* compact metadata text (free()), or NULL */
    float *embedding; /* dm_malloc'd, or NULL */
    dm_id id;         /* storage for p->id */
} mjson_owned;

/*
 * mjson_add_params -- an export object (one line of `deltamemory export`)
 * as the dm_add_params that store it again exactly: text and user_id
 * (required unless !need_user), tenant, agent_id, session_id, role, time,
 * record_time, last_access, salience, decay_rate, id, kind, state,
 * access_count, metadata and embedding.  Unknown members are ignored.
 * The strings of *p point into obj (which must outlive *p) and into *own.
 * Returns 0, or -1 with the reason in why and the member it concerns in
 * *field (static storage); on failure *own may hold memory to release
 * with mjson_owned_fini all the same.
 */
int mjson_add_params(const json_t *obj, bool need_user, dm_add_params *p, mjson_owned *own,
                     char *why, size_t why_cap, const char **field);

/* mjson_owned_fini -- release what mjson_add_params took; zeroes *own. */
void mjson_owned_fini(mjson_owned *own);

#endif
