/*
 * filter.c -- metadata filters: the Mem0 operator grammar compiled into a
 * small tree and evaluated per memory.
 *
 * GRAMMAR (a filter is a JSON object; see also filter.h)
 *
 *   filter    := { key: part, ... }           sibling keys are ANDed;
 *                                             {} matches everything
 *   "AND": [filter, ...]                      all hold (non-empty array)
 *   "OR":  [filter, ...]                      any holds (non-empty array)
 *   "NOT": [filter, ...] | filter             none holds
 *   "metadata": filter                        the platform wrapper
 *                                             {"metadata": {"k": "v"}}; its
 *                                             keys are field names exactly
 *                                             as at top level (AND/OR/NOT
 *                                             work inside; a nested
 *                                             "metadata" is a plain field)
 *   field: cond
 *   cond      := "*"                          present and not null
 *              | [v, ...]                     same as {"in": [v, ...]}
 *              | { op: v, ... }               all operators hold
 *              | v                            same as {"eq": v}
 *   op        := eq ne in nin gt gte lt lte contains icontains
 *
 * "AND", "OR" and "NOT" are only operators in upper case; "and" is an
 * ordinary field name, as is any other key.  Operator names are lower case
 * and case-sensitive.  The wildcard is only the bare "*": {"eq": "*"}
 * compares with the one-character string, so a stored "*" stays findable.
 *
 * SEMANTICS
 *
 * Equality (eq, ne, in, nin, contains on arrays): numbers compare
 * numerically whether integer or real (two integers exactly, otherwise as
 * doubles); strings bytewise, except that two strings that both parse as
 * ISO 8601 instants are equal when the instants are; true, false and null
 * equal only themselves; arrays and objects compare as whole values, member
 * by member with these same rules.  Values of different JSON types are
 * never equal.  So eq on a field holding an array asks for that exact
 * array; to ask for one member, use contains or in.
 *
 * Order (gt gte lt lte): only number against number and string against
 * string; a string filter value that parses as an ISO 8601 date or
 * date-time compares as an instant with a field string that parses too,
 * and otherwise strings compare bytewise (shorter prefix first).  Booleans,
 * null, arrays and objects are never ordered, so such a comparison is
 * false.
 *
 * in: the field value equals any listed value or, when the field is an
 * array, any of its elements equals any listed value.  The second half
 * makes the platform's {"categories": {"in": ["a", "b"]}} ("has any of
 * these categories") work on a stored category array, which is what users
 * of that form expect.  A bare array is read as "in" because the platform
 * accepts {"memory_ids": ["id1", "id2"]} meaning "any of these ids"; exact
 * array equality remains available as {"eq": [...]}.
 *
 * contains: a string field holds the value as a substring; an array field
 * holds an element equal to the value.  icontains does the same ignoring
 * ASCII case (for array elements, only string elements ignore case).  A
 * field of any other type contains nothing.  Note that the platform's
 * "contains" on categories is case-insensitive; here that is icontains.
 *
 * A missing field (lookup returns NULL) satisfies ne and nin only; a field
 * present with the value null is a value like any other (eq null matches
 * it, "*" does not).
 *
 * Instants: "YYYY-MM-DD" (midnight UTC), or that followed by "T" (or "t"
 * or a space) and "hh:mm", "hh:mm:ss" or "hh:mm:ss.fff..." (a comma also
 * works as the decimal sign; digits past microseconds are dropped),
 * optionally followed by "Z", "+hh:mm", "-hh:mm", "+hhmm" or "+hh".  A
 * date-time without a zone is taken as UTC, the same convention as the
 * engine's stored event times.  Years 0001-9999, proleptic Gregorian; a
 * string that breaks any rule (month 13, 31 April, 29 February 2023, junk
 * after the time) is an ordinary string.
 *
 * DESIGN
 *
 * mf_compile parses the text once (duplicate keys rejected, since a
 * repeated key would silently lose a condition) and builds a tree of
 * nodes: TRUE, AND, OR, NOT (none of its children holds) and COND (one
 * field, an array of operators).  Operator names become an enum, string
 * values that parse as instants carry their microseconds, and every
 * mistake is reported with the JSON path where it happened, e.g.
 *   filter: $.AND[1].age: unknown operator "gtx"
 * so a user can fix a filter without guessing.  Values are not copied: the
 * filter keeps the parsed document, and nodes point into it (field names
 * are the document's object keys).  Nesting of filter objects is limited to
 * MF_MAX_DEPTH levels so that a hostile filter cannot exhaust the stack of
 * the compiler or the evaluator.  The set of field names (first-use order,
 * for mf_fields) is deduplicated through a hash table, so a filter with
 * many keys costs linear time to compile.
 *
 * mf_match walks the tree and calls the lookup once per COND node; a field
 * used in several places is looked up several times, which keeps the
 * evaluator stateless.  Field strings are parsed as instants only when the
 * filter value is one, and only at the moment they are compared.
 *
 * INVARIANTS AND LOCKING
 *
 * A compiled filter is never modified, and matching touches no reference
 * counts, so any number of threads may call mf_match and mf_fields on one
 * filter at once without locks.  Every node's children are non-NULL;
 * every COND has at least one operator; "in"/"nin" values are arrays.
 *
 * Allocation goes through dm_malloc; the parsed document is jansson's (it
 * uses the C heap), freed with the filter.  No file format is owned here.
 */
#include "retrieve/filter.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

/* How deep filter objects may nest ($ is level 1; every AND/OR/NOT element
 * and every "metadata" wrapper adds one).  Real filters use a handful. */
#define MF_MAX_DEPTH 32

/* A key longer than this is shortened in error paths, which also bounds
 * the path buffer: MF_MAX_DEPTH levels of at most one key and one index. */
#define KEY_SHOW_MAX 64
#define PATH_CAP 4096
/* An error shows at most the last PATH_SHOW_MAX bytes of the path, so the
 * message (truncated at 255 bytes by err_set_msg) keeps its end. */
#define PATH_SHOW_MAX 120

typedef enum opkind {
    OP_EXISTS, /* the bare "*" */
    OP_EQ,
    OP_NE,
    OP_IN,
    OP_NIN,
    OP_GT,
    OP_GTE,
    OP_LT,
    OP_LTE,
    OP_CONTAINS,
    OP_ICONTAINS,
} opkind;

static const struct {
    const char *name;
    opkind kind;
} op_names[] = {
    {"eq", OP_EQ},   {"ne", OP_NE},   {"in", OP_IN},
    {"nin", OP_NIN}, {"gt", OP_GT},   {"gte", OP_GTE},
    {"lt", OP_LT},   {"lte", OP_LTE}, {"contains", OP_CONTAINS},
    {"icontains", OP_ICONTAINS},
};

/* A filter value with its instant, when it is a string that parses. */
typedef struct mval {
    const json_t *j; /* borrowed from the filter's document */
    bool has_time;
    int64_t t_us;
} mval;

typedef struct op {
    opkind kind;
    mval v;      /* all operators except in / nin */
    mval *list;  /* in / nin: one per array element */
    size_t n_list;
} op;

typedef enum nkind { N_TRUE, N_AND, N_OR, N_NOT, N_COND } nkind;

typedef struct node {
    nkind kind;
    size_t n;           /* children (AND/OR/NOT) or operators (COND) */
    struct node **kids; /* AND/OR/NOT */
    const char *field;  /* COND: a key of the filter's document */
    op *ops;            /* COND */
} node;

struct mf_filter {
    json_t *doc;        /* the parsed filter; values and names point here */
    node *top;
    const char **names; /* distinct field names, first-use order */
    size_t n_names;
    size_t names_cap;
};

/* Compile-time state: the filter being built, the name hash set and the
 * JSON path of the element being compiled. */
typedef struct cctx {
    mf_filter *f;
    size_t *slots; /* open addressing: index into f->names + 1; 0 = empty */
    size_t slot_cap;
    size_t path_len;
    char path[PATH_CAP];
} cctx;

/* ---- ISO 8601 instants ------------------------------------------------ */

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Days from 0001-01-01 to y-m-d (y >= 1): whole years, their leap days,
 * whole months of this year, then the day. */
static int64_t days_from_0001(int64_t y, int m, int d)
{
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t py = y - 1;
    int64_t days = 365 * py + py / 4 - py / 100 + py / 400;
    days += before[m - 1] + (m > 2 && is_leap(y));
    return days + d - 1;
}

/* Reads exactly n decimal digits at s[*i]. */
static bool digits(const char *s, size_t len, size_t *i, int n, int *out)
{
    int v = 0;
    if (*i + (size_t)n > len)
        return false;
    for (int k = 0; k < n; k++) {
        char ch = s[*i + (size_t)k];
        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + (ch - '0');
    }
    *i += (size_t)n;
    *out = v;
    return true;
}

/* parse_instant -- s (len bytes) as an ISO 8601 date or date-time (the
 * forms in the top comment), in microseconds since the Unix epoch. */
static bool parse_instant(const char *s, size_t len, int64_t *out_us)
{
    size_t i = 0;
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, frac_us = 0, off_s = 0;
    /* The cheapest rejection first: most strings are not dates. */
    if (len < 10 || len > 64 || s[4] != '-' || s[7] != '-')
        return false;
    if (!digits(s, len, &i, 4, &y) || y < 1)
        return false;
    i++;
    if (!digits(s, len, &i, 2, &mo) || mo < 1 || mo > 12)
        return false;
    i++;
    if (!digits(s, len, &i, 2, &d) || d < 1 || d > days_in_month(y, mo))
        return false;
    if (i < len) {
        if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
            return false;
        i++;
        if (!digits(s, len, &i, 2, &h) || h > 23)
            return false;
        if (i >= len || s[i] != ':')
            return false;
        i++;
        if (!digits(s, len, &i, 2, &mi) || mi > 59)
            return false;
        if (i < len && s[i] == ':') {
            i++;
            /* 60 is a leap second; it counts as the next minute's 0. */
            if (!digits(s, len, &i, 2, &sec) || sec > 60)
                return false;
            if (i < len && (s[i] == '.' || s[i] == ',')) {
                i++;
                int n_dig = 0, scale = 100000;
                while (i < len && s[i] >= '0' && s[i] <= '9') {
                    frac_us += (s[i] - '0') * scale;
                    scale /= 10;
                    n_dig++;
                    i++;
                }
                if (n_dig == 0)
                    return false;
            }
        }
        if (i < len) {
            if (s[i] == 'Z' || s[i] == 'z') {
                i++;
            } else if (s[i] == '+' || s[i] == '-') {
                int sign = s[i] == '-' ? -1 : 1, oh, om = 0;
                i++;
                if (!digits(s, len, &i, 2, &oh) || oh > 23)
                    return false;
                /* Minutes follow a colon, or directly, or not at all. */
                if (i < len && s[i] == ':') {
                    i++;
                    if (!digits(s, len, &i, 2, &om))
                        return false;
                } else if (i < len && !digits(s, len, &i, 2, &om)) {
                    return false;
                }
                if (om > 59)
                    return false;
                off_s = sign * (oh * 3600 + om * 60);
            } else {
                return false;
            }
        }
        if (i != len)
            return false;
    }
    int64_t days = days_from_0001(y, mo, d) - days_from_0001(1970, 1, 1);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - off_s;
    *out_us = secs * 1000000 + frac_us;
    return true;
}

static bool json_instant(const json_t *j, int64_t *out_us)
{
    return json_is_string(j) &&
           parse_instant(json_string_value(j), json_string_length(j), out_us);
}

/* ---- errors and paths ------------------------------------------------- */

/* Appends one byte; the caps above make overflow impossible, and a full
 * buffer would only shorten the message. */
static void path_putc(cctx *c, char ch)
{
    if (c->path_len + 1 < sizeof c->path) {
        c->path[c->path_len++] = ch;
        c->path[c->path_len] = '\0';
    }
}

/* show -- key made printable (control bytes become '?') and shortened to
 * KEY_SHOW_MAX bytes on a UTF-8 boundary, into buf (>= KEY_SHOW_MAX + 4). */
static const char *show(const char *key, char *buf)
{
    size_t n = strlen(key), lim = n, o = 0;
    if (lim > KEY_SHOW_MAX) {
        lim = KEY_SHOW_MAX;
        while (lim > 0 && ((unsigned char)key[lim] & 0xC0) == 0x80)
            lim--;
    }
    for (size_t i = 0; i < lim; i++) {
        unsigned char ch = (unsigned char)key[i];
        buf[o++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    if (lim < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static size_t path_push_key(cctx *c, const char *key)
{
    char buf[KEY_SHOW_MAX + 4];
    size_t old = c->path_len;
    /* An empty key is shown quoted so that the path does not end in a
     * bare dot. */
    const char *p = *key ? show(key, buf) : "\"\"";
    path_putc(c, '.');
    for (; *p; p++)
        path_putc(c, *p);
    return old;
}

static size_t path_push_index(cctx *c, size_t i)
{
    char buf[32];
    size_t old = c->path_len;
    snprintf(buf, sizeof buf, "[%zu]", i);
    for (const char *p = buf; *p; p++)
        path_putc(c, *p);
    return old;
}

static void path_pop(cctx *c, size_t old)
{
    c->path_len = old;
    c->path[old] = '\0';
}

/* fail -- DM_EINVAL with "filter: <path>: <message>". */
__attribute__((format(printf, 2, 3))) static int fail(cctx *c, const char *fmt, ...)
{
    char msg[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *p = c->path, *lead = "";
    if (c->path_len > PATH_SHOW_MAX) {
        /* Keep the tail, starting at a step of the path when there is one
         * and never inside a UTF-8 sequence. */
        const char *end = c->path + c->path_len;
        p = end - PATH_SHOW_MAX;
        const char *q = p;
        while (q < end && *q != '.' && *q != '[')
            q++;
        if (q < end)
            p = q;
        while (((unsigned char)*p & 0xC0) == 0x80)
            p++;
        lead = "$...";
    }
    return err_set_msg(DM_EINVAL, "filter: %s%s: %s", lead, p, msg);
}

static int oom(void)
{
    return err_set_msg(DM_ENOMEM, "filter: out of memory");
}

/* ---- the tree ----------------------------------------------------------- */

static void node_free(node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n && n->kids; i++)
        node_free(n->kids[i]);
    dm_free(n->kids);
    if (n->ops) {
        for (size_t i = 0; i < n->n; i++)
            dm_free(n->ops[i].list);
        dm_free(n->ops);
    }
    dm_free(n);
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* add_name -- records name in f->names unless it is there already. */
static int add_name(cctx *c, const char *name)
{
    mf_filter *f = c->f;
    if (2 * (f->n_names + 1) > c->slot_cap) {
        /* Grow the set first so that a probe always finds an empty slot. */
        size_t cap = c->slot_cap ? 2 * c->slot_cap : 16;
        size_t *slots = dm_calloc(cap, sizeof *slots);
        if (!slots)
            return oom();
        for (size_t i = 0; i < f->n_names; i++) {
            size_t s = (size_t)hash_name(f->names[i]) & (cap - 1);
            while (slots[s])
                s = (s + 1) & (cap - 1);
            slots[s] = i + 1;
        }
        dm_free(c->slots);
        c->slots = slots;
        c->slot_cap = cap;
    }
    size_t s = (size_t)hash_name(name) & (c->slot_cap - 1);
    for (; c->slots[s]; s = (s + 1) & (c->slot_cap - 1))
        if (!strcmp(f->names[c->slots[s] - 1], name))
            return DM_OK;
    if (f->n_names == f->names_cap) {
        size_t cap = f->names_cap ? 2 * f->names_cap : 8;
        const char **names = dm_realloc(f->names, cap * sizeof *names);
        if (!names)
            return oom();
        f->names = names;
        f->names_cap = cap;
    }
    f->names[f->n_names++] = name;
    c->slots[s] = f->n_names;
    return DM_OK;
}

static mval make_mval(const json_t *j)
{
    mval v = {.j = j, .has_time = false, .t_us = 0};
    v.has_time = json_instant(j, &v.t_us);
    return v;
}

static int new_node(nkind kind, size_t n_kids, node **out)
{
    node *n = dm_calloc(1, sizeof *n);
    *out = NULL;
    if (!n)
        goto fail;
    n->kind = kind;
    if (n_kids) {
        n->kids = dm_calloc(n_kids, sizeof *n->kids);
        if (!n->kids)
            goto fail;
    }
    *out = n;
    return DM_OK;
fail:
    dm_free(n);
    return oom();
}

static int compile_object(cctx *c, json_t *obj, bool in_meta, int depth, node **out);

/* fill_op -- checks operator value v and records it in o; the path ends
 * at the operator. */
static int fill_op(cctx *c, op *o, opkind kind, const json_t *v)
{
    o->kind = kind;
    switch (kind) {
    case OP_IN:
    case OP_NIN:
        if (!json_is_array(v))
            return fail(c, "must be an array");
        o->n_list = json_array_size(v);
        if (o->n_list) {
            o->list = dm_calloc(o->n_list, sizeof *o->list);
            if (!o->list)
                return oom();
        }
        for (size_t i = 0; i < o->n_list; i++)
            o->list[i] = make_mval(json_array_get(v, i));
        return DM_OK;
    case OP_GT:
    case OP_GTE:
    case OP_LT:
    case OP_LTE:
        if (!json_is_number(v) && !json_is_string(v))
            return fail(c, "must be a number or a string");
        break;
    case OP_ICONTAINS:
        if (!json_is_string(v))
            return fail(c, "must be a string");
        break;
    default:
        break;
    }
    o->v = make_mval(v);
    return DM_OK;
}

/* compile_cond -- field: cond, with the path ending at the field. */
static int compile_cond(cctx *c, const char *field, json_t *cond, node **out)
{
    node *n = NULL;
    int rc;
    *out = NULL;
    if (!*field) {
        rc = fail(c, "a field name must not be empty");
        goto fail;
    }
    size_t n_ops = json_is_object(cond) ? json_object_size(cond) : 1;
    if (n_ops == 0) {
        rc = fail(c, "an operator object needs at least one of eq, ne, in, nin, gt, gte, "
                     "lt, lte, contains, icontains");
        goto fail;
    }
    rc = new_node(N_COND, 0, &n);
    if (rc)
        goto fail;
    n->field = field;
    n->ops = dm_calloc(n_ops, sizeof *n->ops);
    if (!n->ops) {
        rc = oom();
        goto fail;
    }
    if (json_is_string(cond) && json_string_length(cond) == 1 &&
        json_string_value(cond)[0] == '*') {
        n->n = 1;
        n->ops[0].kind = OP_EXISTS;
    } else if (json_is_array(cond)) {
        /* The platform's list form ({"memory_ids": [...]}) means "any of". */
        n->n = 1;
        rc = fill_op(c, &n->ops[0], OP_IN, cond);
    } else if (!json_is_object(cond)) {
        n->n = 1;
        rc = fill_op(c, &n->ops[0], OP_EQ, cond);
    } else {
        const char *name;
        json_t *v;
        json_object_foreach(cond, name, v) {
            size_t k = 0, n_names = sizeof op_names / sizeof op_names[0];
            while (k < n_names && strcmp(op_names[k].name, name))
                k++;
            if (k == n_names) {
                char buf[KEY_SHOW_MAX + 4];
                rc = fail(c, "unknown operator \"%s\"", show(name, buf));
                goto fail;
            }
            size_t old = path_push_key(c, name);
            rc = fill_op(c, &n->ops[n->n++], op_names[k].kind, v);
            if (rc)
                goto fail;
            path_pop(c, old);
        }
    }
    if (rc)
        goto fail;
    rc = add_name(c, field);
    if (rc)
        goto fail;
    *out = n;
    return DM_OK;
fail:
    node_free(n);
    return rc;
}

/* compile_list -- "AND"/"OR"/"NOT" given as an array of filter objects. */
static int compile_list(cctx *c, nkind kind, const char *key, json_t *arr, bool in_meta,
                        int depth, node **out)
{
    node *n = NULL;
    int rc;
    *out = NULL;
    size_t len = json_is_array(arr) ? json_array_size(arr) : 0;
    if (len == 0) {
        if (kind == N_NOT)
            rc = fail(c, "must be an object or a non-empty array of objects");
        else
            rc = fail(c, "must be a non-empty array of objects");
        goto fail;
    }
    rc = new_node(kind, len, &n);
    if (rc)
        goto fail;
    for (size_t i = 0; i < len; i++) {
        json_t *e = json_array_get(arr, i);
        size_t old = path_push_index(c, i);
        if (!json_is_object(e)) {
            rc = fail(c, "each element of %s must be an object", key);
            goto fail;
        }
        rc = compile_object(c, e, in_meta, depth + 1, &n->kids[i]);
        if (rc)
            goto fail;
        n->n = i + 1;
        path_pop(c, old);
    }
    *out = n;
    return DM_OK;
fail:
    node_free(n);
    return rc;
}

/* compile_object -- one filter object at nesting level depth: its keys
 * become children of an AND (or the single child itself). */
static int compile_object(cctx *c, json_t *obj, bool in_meta, int depth, node **out)
{
    node *n = NULL, *one = NULL;
    int rc;
    *out = NULL;
    if (depth > MF_MAX_DEPTH) {
        rc = fail(c, "filter nesting is deeper than %d levels", MF_MAX_DEPTH);
        goto fail;
    }
    size_t n_keys = json_object_size(obj);
    rc = new_node(n_keys > 1 ? N_AND : N_TRUE, n_keys > 1 ? n_keys : 0, &n);
    if (rc)
        goto fail;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        size_t old = path_push_key(c, key);
        if (!strcmp(key, "AND")) {
            rc = compile_list(c, N_AND, key, v, in_meta, depth, &one);
        } else if (!strcmp(key, "OR")) {
            rc = compile_list(c, N_OR, key, v, in_meta, depth, &one);
        } else if (!strcmp(key, "NOT") && json_is_object(v)) {
            rc = new_node(N_NOT, 1, &one);
            if (!rc) {
                rc = compile_object(c, v, in_meta, depth + 1, &one->kids[0]);
                if (!rc)
                    one->n = 1;
            }
        } else if (!strcmp(key, "NOT")) {
            rc = compile_list(c, N_NOT, key, v, in_meta, depth, &one);
        } else if (!strcmp(key, "metadata") && !in_meta) {
            if (!json_is_object(v))
                rc = fail(c, "must be an object of conditions on metadata keys");
            else
                rc = compile_object(c, v, true, depth + 1, &one);
        } else {
            rc = compile_cond(c, key, v, &one);
        }
        if (rc)
            goto fail;
        path_pop(c, old);
        if (n_keys == 1) {
            node_free(n);
            n = one;
        } else {
            n->kids[n->n++] = one;
        }
        one = NULL;
    }
    *out = n;
    return DM_OK;
fail:
    node_free(one);
    node_free(n);
    return rc;
}

int mf_compile(const char *json, size_t len, mf_filter **out)
{
    cctx *c = NULL;
    mf_filter *f = NULL;
    json_t *doc = NULL;
    int rc;
    if (out)
        *out = NULL;
    if (!json || !out) {
        rc = err_set_msg(DM_EINVAL, "filter: no filter text");
        goto fail;
    }
    if (len == 0)
        len = strlen(json);
    json_error_t je;
    doc = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!doc) {
        rc = err_set_msg(DM_EINVAL, "filter: not valid JSON: %s at line %d column %d", je.text,
                         je.line, je.column);
        goto fail;
    }
    c = dm_calloc(1, sizeof *c);
    f = dm_calloc(1, sizeof *f);
    if (!c || !f) {
        rc = oom();
        goto fail;
    }
    f->doc = doc;
    doc = NULL;
    c->f = f;
    c->path[0] = '$';
    c->path_len = 1;
    if (!json_is_object(f->doc)) {
        rc = fail(c, "a filter must be a JSON object");
        goto fail;
    }
    rc = compile_object(c, f->doc, false, 1, &f->top);
    if (rc)
        goto fail;
    dm_free(c->slots);
    dm_free(c);
    *out = f;
    return DM_OK;
fail:
    if (c)
        dm_free(c->slots);
    dm_free(c);
    mf_free(f);
    json_decref(doc);
    return rc;
}

void mf_free(mf_filter *f)
{
    if (!f)
        return;
    node_free(f->top);
    dm_free(f->names);
    json_decref(f->doc);
    dm_free(f);
}

void mf_fields(const mf_filter *f, const char *const **names, size_t *n)
{
    *names = f && f->n_names ? (const char *const *)f->names : NULL;
    *n = f ? f->n_names : 0;
}

/* ---- evaluation ------------------------------------------------------- */

static int lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch;
}

static bool bytes_equal(const char *a, size_t a_len, const char *b, size_t b_len, bool icase)
{
    if (a_len != b_len)
        return false;
    if (!icase)
        return memcmp(a, b, a_len) == 0;
    for (size_t i = 0; i < a_len; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

/* num_cmp -- -1, 0, 1: two integers exactly, otherwise as doubles. */
static int num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return (x > y) - (x < y);
    }
    double x = json_number_value(a), y = json_number_value(b);
    return (x > y) - (x < y);
}

/* deep_equal -- equality of two arbitrary values, by the rules at the top
 * (used for arrays and objects, and for their members). */
static bool deep_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return num_cmp(a, b) == 0;
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING: {
        int64_t ta, tb;
        if (bytes_equal(json_string_value(a), json_string_length(a), json_string_value(b),
                        json_string_length(b), false))
            return true;
        return json_instant(a, &ta) && json_instant(b, &tb) && ta == tb;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!deep_equal(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        /* Iteration does not modify the object; jansson's iterator API
         * just is not const-qualified. */
        json_t *am = (json_t *)a;
        for (void *it = json_object_iter(am); it; it = json_object_iter_next(am, it)) {
            const json_t *bv = json_object_get(b, json_object_iter_key(it));
            if (!bv || !deep_equal(json_object_iter_value(it), bv))
                return false;
        }
        return true;
    }
    default:
        return true; /* true, false, null: the type is the value */
    }
}

/* val_equal -- field value x against filter value v. */
static bool val_equal(const json_t *x, const mval *v, bool icase)
{
    const json_t *y = v->j;
    if (json_is_number(x) && json_is_number(y))
        return num_cmp(x, y) == 0;
    if (json_is_string(x) && json_is_string(y)) {
        int64_t t;
        if (bytes_equal(json_string_value(x), json_string_length(x), json_string_value(y),
                        json_string_length(y), icase))
            return true;
        return v->has_time && json_instant(x, &t) && t == v->t_us;
    }
    return deep_equal(x, y);
}

/* val_order -- *cmp = sign of (x - v); false when they are not ordered. */
static bool val_order(const json_t *x, const mval *v, int *cmp)
{
    const json_t *y = v->j;
    if (json_is_number(x) && json_is_number(y)) {
        *cmp = num_cmp(x, y);
        return true;
    }
    if (!json_is_string(x) || !json_is_string(y))
        return false;
    int64_t t;
    if (v->has_time && json_instant(x, &t)) {
        *cmp = (t > v->t_us) - (t < v->t_us);
        return true;
    }
    size_t xl = json_string_length(x), yl = json_string_length(y);
    int r = memcmp(json_string_value(x), json_string_value(y), xl < yl ? xl : yl);
    *cmp = r ? (r > 0) - (r < 0) : (xl > yl) - (xl < yl);
    return true;
}

/* has_substring -- needle in hay; the naive scan is fine for metadata
 * sized strings and needs no allocation (matching cannot fail). */
static bool has_substring(const char *hay, size_t hay_len, const char *nee, size_t nee_len,
                          bool icase)
{
    if (nee_len == 0)
        return true;
    if (!icase)
        return memmem(hay, hay_len, nee, nee_len) != NULL;
    int first = lower((unsigned char)nee[0]);
    for (size_t i = 0; i + nee_len <= hay_len; i++)
        if (lower((unsigned char)hay[i]) == first &&
            bytes_equal(hay + i, nee_len, nee, nee_len, true))
            return true;
    return false;
}

static bool in_list(const json_t *x, const op *o)
{
    for (size_t i = 0; i < o->n_list; i++)
        if (val_equal(x, &o->list[i], false))
            return true;
    if (json_is_array(x)) {
        size_t n = json_array_size(x);
        for (size_t e = 0; e < n; e++)
            for (size_t i = 0; i < o->n_list; i++)
                if (val_equal(json_array_get(x, e), &o->list[i], false))
                    return true;
    }
    return false;
}

static bool contains(const json_t *x, const mval *v, bool icase)
{
    if (json_is_string(x)) {
        return json_is_string(v->j) &&
               has_substring(json_string_value(x), json_string_length(x),
                             json_string_value(v->j), json_string_length(v->j), icase);
    }
    if (json_is_array(x)) {
        size_t n = json_array_size(x);
        for (size_t i = 0; i < n; i++)
            if (val_equal(json_array_get(x, i), v, icase))
                return true;
    }
    return false;
}

/* op_holds -- x is the field's value, NULL when missing. */
static bool op_holds(const op *o, const json_t *x)
{
    int cmp;
    switch (o->kind) {
    case OP_EXISTS:
        return x && !json_is_null(x);
    case OP_EQ:
        return x && val_equal(x, &o->v, false);
    case OP_NE:
        return !x || !val_equal(x, &o->v, false);
    case OP_IN:
        return x && in_list(x, o);
    case OP_NIN:
        return !x || !in_list(x, o);
    case OP_GT:
        return x && val_order(x, &o->v, &cmp) && cmp > 0;
    case OP_GTE:
        return x && val_order(x, &o->v, &cmp) && cmp >= 0;
    case OP_LT:
        return x && val_order(x, &o->v, &cmp) && cmp < 0;
    case OP_LTE:
        return x && val_order(x, &o->v, &cmp) && cmp <= 0;
    case OP_CONTAINS:
        return x && contains(x, &o->v, false);
    case OP_ICONTAINS:
        return x && contains(x, &o->v, true);
    }
    return false;
}

static bool eval(const node *n, mf_lookup_fn fn, void *arg)
{
    switch (n->kind) {
    case N_TRUE:
        return true;
    case N_AND:
        for (size_t i = 0; i < n->n; i++)
            if (!eval(n->kids[i], fn, arg))
                return false;
        return true;
    case N_OR:
        for (size_t i = 0; i < n->n; i++)
            if (eval(n->kids[i], fn, arg))
                return true;
        return false;
    case N_NOT:
        for (size_t i = 0; i < n->n; i++)
            if (eval(n->kids[i], fn, arg))
                return false;
        return true;
    case N_COND: {
        const json_t *x = fn(arg, n->field);
        for (size_t i = 0; i < n->n; i++)
            if (!op_holds(&n->ops[i], x))
                return false;
        return true;
    }
    }
    return false;
}

bool mf_match(const mf_filter *f, mf_lookup_fn fn, void *arg)
{
    /* No filter is no restriction, which spares callers a branch. */
    if (!f)
        return true;
    return eval(f->top, fn, arg);
}
