/*
 * mjson.c -- memories as JSON, shared by the deltamemory command and the
 * HTTP server so that both print a memory the same way (the fields of
 * `deltamemory export`), and the number formatting that lets a float32
 * field or a metadata double survive a round trip through text.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *mjson_float(float f)
{
    char b[32];
    for (int digits = 1; digits < 9; digits++) {
        snprintf(b, sizeof b, "%.*g", digits, (double)f);
        double d = strtod(b, NULL);
        if ((float)d == f)
            return json_real(d);
    }
    return json_real(f);
}

static json_t *time_json(int64_t us)
{
    char t[40];
    dm_time_format(us, t);
    return json_string(t);
}

json_t *mjson_memory(const dm_memory *m, char *err, size_t err_cap)
{
    char id[DM_ID_STRLEN + 1];
    json_t *o = json_object();
    json_t *meta = NULL;
    if (!o) {
        snprintf(err, err_cap, "out of memory");
        goto fail;
    }
    json_error_t je;
    meta = json_loads(m->metadata ? m->metadata : "{}", 0, &je);
    if (!meta || !json_is_object(meta)) {
        snprintf(err, err_cap, "stored metadata is not a JSON object%s%s",
                 meta ? "" : ": ", meta ? "" : je.text);
        goto fail;
    }
    json_t *text = json_stringn(m->text, m->text_len);
    if (!text) {
        snprintf(err, err_cap, "stored text is not valid UTF-8");
        goto fail;
    }
    dm_id_format(&m->id, id);
    int bad = 0;
    bad |= json_object_set_new(o, "id", json_string(id));
    bad |= json_object_set_new(o, "tenant", str_or_null(m->tenant));
    bad |= json_object_set_new(o, "user_id", str_or_null(m->user_id));
    bad |= json_object_set_new(o, "agent_id", str_or_null(m->agent_id));
    bad |= json_object_set_new(o, "session_id", str_or_null(m->session_id));
    bad |= json_object_set_new(o, "role", str_or_null(m->role));
    bad |= json_object_set_new(o, "text", text);
    bad |= json_object_set_new(o, "time", time_json(m->event_time_us));
    bad |= json_object_set_new(o, "record_time", time_json(m->record_time_us));
    bad |= json_object_set_new(o, "salience", mjson_float(m->salience));
    bad |= json_object_set_new(o, "decay_rate",
                               mjson_float(m->decay_rate));
    bad |= json_object_set_new(o, "access_count",
                               json_integer(m->access_count));
    bad |= json_object_set_new(o, "last_access",
                               m->last_access_us ? time_json(m->last_access_us)
                                                 : json_null());
    bad |= json_object_set_new(o, "kind", json_string(mjson_kind_name(m->kind)));
    bad |= json_object_set_new(o, "state",
                               json_string(mjson_state_name(m->state)));
    bad |= json_object_set_new(o, "metadata", meta);
    meta = NULL;
    if (m->embedding) {
        json_t *arr = json_array();
        for (uint32_t i = 0; arr && i < m->dim; i++)
            bad |= json_array_append_new(arr, json_real(m->embedding[i]));
        bad |= json_object_set_new(o, "embedding", arr);
    }
    if (bad) {
        snprintf(err, err_cap, "a field cannot be represented in JSON "
                 "(invalid UTF-8, a non-finite number, or out of memory)");
        goto fail;
    }
    return o;

fail:
    json_decref(meta);
    json_decref(o);
    return NULL;
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

