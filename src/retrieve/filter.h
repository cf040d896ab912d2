/*
 * filter.h -- metadata filters in the grammar Mem0 users know, compiled
 * once per request and evaluated per memory inside every retrieval leg.
 *
 * A filter is a JSON object.  Sibling keys are ANDed.  Keys:
 *   "AND": [f, ...]   all hold          "OR": [f, ...]   any holds
 *   "NOT": [f, ...] or "NOT": f          none holds
 *   "metadata": {k: cond, ...}           conditions on metadata keys (the
 *                                        platform form; same as top level)
 *   any other key: a field name with a condition.
 * A condition is a bare value (equality; a bare array means "in", as the
 * platform's {"memory_ids": [...]}), "*" (the field is present and not
 * null), or an object of operators, all of which must hold:
 *   eq ne in nin gt gte lt lte contains icontains
 * Comparisons: numbers numerically; two strings that both parse as ISO
 * 8601 dates or date-times compare as instants (a date alone is its
 * midnight UTC); other strings bytewise; true/false/null only by eq, ne,
 * in, nin.  contains: a string holds the substring (icontains: ASCII
 * case-insensitively), or an array holds an element equal to the value
 * (icontains: case-insensitively for strings).  A missing field satisfies
 * only ne and nin.  Values of different JSON types are never equal and
 * never ordered.
 *
 * Field names are resolved by the caller (mf_lookup_fn): the engine maps
 * its own fields (agent_id, session_id / run_id, role, created_at, ...)
 * and otherwise the memory's metadata.
 * Thread safety: a compiled filter is immutable; mf_match may run on many
 * threads at once.
 */
#ifndef DM_RETRIEVE_FILTER_H
#define DM_RETRIEVE_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef struct mf_filter mf_filter;

/* The value of field name for one memory, borrowed for the duration of the
 * call, or NULL when the memory has no such field. */
typedef const json_t *(*mf_lookup_fn)(void *arg, const char *name);

/*
 * mf_compile -- parse and check a filter (len bytes of JSON text; len 0 =
 * strlen).  *out is freed with mf_free.  An empty object compiles to a
 * filter that matches everything.
 * Errors: DM_EINVAL with a message naming the place, e.g.
 *   filter: $.AND[1].age: unknown operator "gtx"
 *   filter: $.OR: must be a non-empty array of objects
 *   filter: not valid JSON: ... at line 1 column 9
 * DM_ENOMEM.
 */
int mf_compile(const char *json, size_t len, mf_filter **out);

/* mf_free -- NULL does nothing. */
void mf_free(mf_filter *f);

/* mf_match -- whether the memory whose fields fn resolves satisfies f. */
bool mf_match(const mf_filter *f, mf_lookup_fn fn, void *arg);

/*
 * mf_fields -- the distinct field names f reads, in first-use order, for
 * a caller that loads fields lazily: *names[i] are borrowed from f.
 */
void mf_fields(const mf_filter *f, const char *const **names, size_t *n);

#endif
