/*
 * mjson.c -- memories as JSON, shared by the deltamemory command and the
 * HTTP server so that both print a memory the same way (the fields of
 * `deltamemory export`), and the number formatting that lets a float32
 * field or a metadata double survive a round trip through text; and the
 * reverse for import: an export object back into dm_add_params.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "server/jw.h"
#include "server/mjson.h"

static const char *const kind_names[] = { "episodic", "fact", "summary" };
static const char *const state_names[] = { "active", "archived" };

const char *mjson_kind_name(dm_memory_kind k)
{
    return (unsigned)k < 3 ? kind_names[k] : "unknown";
}

const char *mjson_state_name(dm_memory_state s)
{
    return (unsigned)s < 2 ? state_names[s] : "unknown";
}

int mjson_kind_parse(const char *s, dm_memory_kind *out)
{
    for (unsigned i = 0; i < 3; i++) {
        if (!strcmp(s, kind_names[i])) {
            *out = (dm_memory_kind)i;
            return 0;
        }
    }
    return -1;
}

int mjson_state_parse(const char *s, dm_memory_state *out)
{
    for (unsigned i = 0; i < 2; i++) {
        if (!strcmp(s, state_names[i])) {
            *out = (dm_memory_state)i;
            return 0;
        }
    }
    return -1;
}


json_t *mjson_float(float f)
{
    return isfinite(f) ? json_real(jw_float_shortest(f)) : NULL;
}

void mjson_memory_write(jw *w, const dm_memory *m)
{
    char id[DM_ID_STRLEN + 1];
    dm_id_format(&m->id, id);
    jw_key(w, "id");
    jw_str(w, id, strlen(id));
    jw_key(w, "tenant");
    jw_cstr(w, m->tenant);
    jw_key(w, "user_id");
    jw_cstr(w, m->user_id);
    jw_key(w, "agent_id");
    jw_cstr(w, m->agent_id);
    jw_key(w, "session_id");
    jw_cstr(w, m->session_id);
    jw_key(w, "role");
    jw_cstr(w, m->role);
    jw_key(w, "text");
    jw_str(w, m->text, m->text_len);
    jw_key(w, "time");
    jw_time(w, m->event_time_us);
    jw_key(w, "record_time");
    jw_time(w, m->record_time_us);
    jw_key(w, "salience");
    jw_float(w, m->salience);
    jw_key(w, "decay_rate");
    jw_float(w, m->decay_rate);
    jw_key(w, "access_count");
    jw_int(w, m->access_count);
    jw_key(w, "last_access");
    if (m->last_access_us)
        jw_time(w, m->last_access_us);
    else
        jw_null(w);
    jw_key(w, "kind");
    jw_cstr(w, mjson_kind_name(m->kind));
    jw_key(w, "state");
    jw_cstr(w, mjson_state_name(m->state));
    /* Stored as validated compact JSON (eng_validate_metadata). */
    const char *meta = m->metadata ? m->metadata : "{}";
    size_t ml = strlen(meta);
    if (ml < 2 || meta[0] != '{' || meta[ml - 1] != '}')
        jw_fail(w, "stored metadata is not a JSON object");
    jw_key(w, "metadata");
    jw_raw(w, meta, ml);
    if (m->embedding) {
        jw_key(w, "embedding");
        jw_open(w, '[');
        for (uint32_t i = 0; i < m->dim; i++)
            jw_float(w, m->embedding[i]);
        jw_close(w, ']');
    }
}

char *mjson_memory_text(const dm_memory *m, size_t *len, char *err, size_t err_cap)
{
    jw w;
    jw_init(&w);
    jw_open(&w, '{');
    mjson_memory_write(&w, m);
    jw_close(&w, '}');
    char *txt = jw_take(&w, len);
    if (!txt)
        snprintf(err, err_cap, "%s", w.why);
    return txt;
}

json_t *mjson_tree(char *txt, size_t len, char *err, size_t err_cap)
{
    if (!txt)
        return NULL;
    json_error_t je;
    json_t *o = json_loadb(txt, len, JSON_ALLOW_NUL, &je);
    dm_free(txt);
    if (!o) /* the writer's own text is JSON: only stored metadata can fail */
        snprintf(err, err_cap, "stored metadata is not valid JSON: %s", je.text);
    return o;
}

json_t *mjson_memory(const dm_memory *m, char *err, size_t err_cap)
{
    size_t n;
    char *txt = mjson_memory_text(m, &n, err, err_cap);
    return mjson_tree(txt, n, err, err_cap);
}

/* True when the double does not come back from its 9-digit form. */
static bool real_needs_17(double d)
{
    char b[40];
    snprintf(b, sizeof b, "%.9g", d);
    return strtod(b, NULL) != d;
}

/* Any real in the subtree that needs 17 digits? */
static bool subtree_needs_17(const json_t *v)
{
    if (json_is_real(v))
        return real_needs_17(json_real_value(v));
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (subtree_needs_17(json_array_get(v, i)))
                return true;
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            if (subtree_needs_17(x))
                return true;
        }
    }
    return false;
}

/* Walks the document looking only inside "metadata" members, which are the
 * only places that hold doubles. */
static bool doc_needs_17(const json_t *v)
{
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (doc_needs_17(json_array_get(v, i)))
                return true;
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            if (!strcmp(k, "metadata") ? subtree_needs_17(x) : doc_needs_17(x))
                return true;
        }
    }
    return false;
}

char *mjson_dumps(const json_t *v)
{
    int prec = doc_needs_17(v) ? 17 : 9;
    return json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(prec));
}

char *mjson_metadata_dumps(const json_t *obj)
{
    int prec = subtree_needs_17(obj) ? 17 : 9;
    return json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(prec));
}


/* ------------------------------------------------------------- import */

void mjson_owned_fini(mjson_owned *own)
{
    free(own->metadata);
    dm_free(own->embedding);
    memset(own, 0, sizeof *own);
}

/* Optional string member: absent or null leaves *out NULL. */
static int opt_string(const json_t *root, const char *key, const char **out, char *why,
                      size_t cap)
{
    json_t *v = json_object_get(root, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        snprintf(why, cap, "field \"%s\" must be a string", key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int opt_time(const json_t *root, const char *key, int64_t *out, char *why, size_t cap)
{
    const char *s;
    if (opt_string(root, key, &s, why, cap) != 0)
        return -1;
    if (s && dm_time_parse(s, out) != DM_OK) {
        snprintf(why, cap, "field \"%s\": \"%.40s\" is not an ISO 8601 time: %s", key, s,
                 dm_errmsg());
        return -1;
    }
    return 0;
}

static int opt_float(const json_t *root, const char *key, float *out, char *why, size_t cap)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v)) {
        snprintf(why, cap, "field \"%s\" must be a number", key);
        return -1;
    }
    *out = (float)json_number_value(v);
    return 0;
}

/* The members are checked in a fixed order (the messages of `deltamemory
 * import` depend on it); *field follows the member being checked so that a
 * failure names it. */
int mjson_add_params(const json_t *root, bool need_user, dm_add_params *p, mjson_owned *own,
                     char *why, size_t cap, const char **field)
{
    static const char *const strs[] = { "tenant", "agent_id", "session_id", "role" };
    static const char *const times[] = { "time", "record_time", "last_access" };
    static const char *const floats[] = { "salience", "decay_rate" };
    const char **str_out[] = { &p->tenant, &p->agent_id, &p->session_id, &p->role };
    dm_add_params_init(p);
    int64_t *time_out[] = { &p->event_time_us, &p->record_time_us, &p->last_access_us };
    float *float_out[] = { &p->salience, &p->decay_rate };
    memset(own, 0, sizeof *own);
    *field = "text";
    json_t *v = json_object_get(root, "text");
    if (!v || !json_is_string(v)) {
        snprintf(why, cap, v ? "field \"text\" must be a string" : "field \"text\" is missing");
        return -1;
    }
    p->text = json_string_value(v);
    p->text_len = json_string_length(v);
    if (p->text_len == 0) {
        snprintf(why, cap, "field \"text\" is empty");
        return -1;
    }
    *field = "user_id";
    v = json_object_get(root, "user_id");
    if (need_user || (v && !json_is_null(v))) {
        if (!v || !json_is_string(v) || json_string_length(v) == 0) {
            snprintf(why, cap, !v ? "field \"user_id\" is missing"
                               : json_is_string(v) ? "field \"user_id\" is empty"
                                                   : "field \"user_id\" must be a string");
            return -1;
        }
        p->user_id = json_string_value(v);
    }
    for (size_t i = 0; i < 4; i++) {
        *field = strs[i];
        if (opt_string(root, strs[i], str_out[i], why, cap) != 0)
            return -1;
    }
    for (size_t i = 0; i < 3; i++) {
        *field = times[i];
        if (opt_time(root, times[i], time_out[i], why, cap) != 0)
            return -1;
    }
    for (size_t i = 0; i < 2; i++) {
        *field = floats[i];
        if (opt_float(root, floats[i], float_out[i], why, cap) != 0)
            return -1;
    }

    const char *s;
    *field = "id";
    if (opt_string(root, "id", &s, why, cap) != 0)
        return -1;
    if (s) {
        if (dm_id_parse(s, &own->id) != DM_OK) {
            snprintf(why, cap, "field \"id\": %s", dm_errmsg());
            return -1;
        }
        p->id = &own->id;
    }
    *field = "kind";
    if (opt_string(root, "kind", &s, why, cap) != 0)
        return -1;
    if (s && mjson_kind_parse(s, &p->kind) != 0) {
        snprintf(why, cap, "field \"kind\": \"%.40s\" is not one of episodic, fact, summary",
                 s);
        return -1;
    }
    *field = "state";
    if (opt_string(root, "state", &s, why, cap) != 0)
        return -1;
    if (s && mjson_state_parse(s, &p->state) != 0) {
        snprintf(why, cap, "field \"state\": \"%.40s\" is not one of active, archived", s);
        return -1;
    }
    *field = "access_count";
    v = json_object_get(root, "access_count");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > UINT32_MAX) {
            snprintf(why, cap, "field \"access_count\" must be a whole number from 0 to %" PRIu32,
                     UINT32_MAX);
            return -1;
        }
        p->access_count = (uint32_t)json_integer_value(v);
    }
    *field = "metadata";
    v = json_object_get(root, "metadata");
    if (v && !json_is_null(v)) {
        if (!json_is_object(v)) {
            snprintf(why, cap, "field \"metadata\" must be a JSON object");
            return -1;
        }
        own->metadata = mjson_metadata_dumps(v);
        if (!own->metadata) {
            snprintf(why, cap, "out of memory");
            return -1;
        }
        p->metadata = own->metadata;
    }
    *field = "embedding";
    v = json_object_get(root, "embedding");
    if (v && !json_is_null(v) && json_array_size(v) > 0) {
        size_t dim = json_array_size(v);
        if (dim > UINT32_MAX) {
            snprintf(why, cap, "field \"embedding\" must be an array of numbers");
            return -1;
        }
        own->embedding = dm_malloc(dim * sizeof(float));
        if (!own->embedding) {
            snprintf(why, cap, "out of memory");
            return -1;
        }
        for (size_t i = 0; i < dim; i++) {
            json_t *x = json_array_get(v, i);
            if (!json_is_number(x)) {
                snprintf(why, cap, "field \"embedding\": element %zu is not a number", i);
                return -1;
            }
            own->embedding[i] = (float)json_number_value(x);
        }
        p->embedding = own->embedding;
        p->dim = (uint32_t)dim;
    } else if (v && !json_is_null(v) && !json_is_array(v)) {
        snprintf(why, cap, "field \"embedding\" must be an array of numbers");
        return -1;
    }
    *field = NULL;
    return 0;
}
