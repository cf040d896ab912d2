/*
 * cmd_eval_ext.c -- deltamemory eval extraction: measures the built-in
 * extractor and the fact merge on the labelled set in tests/data/cognition
 * (its README specifies both files).
 *
 * Statements.  Every statement goes through ex_extract alone (no
 * database).  A predicted fact counts as right when an expected fact of
 * the statement has the same subject, slot and polarity and the same value
 * after normalization (facts_norm: case, accents, leading articles,
 * punctuation and spacing do not count); each expected fact matches at most
 * one prediction.  Precision and recall are printed per slot (family.* is
 * one row per relation) and overall, micro-averaged.  Events count as
 * right when type, from and to (dates) all match; relations when source,
 * type and target match.
 *
 * Scenarios.  Each scenario gets a fresh database in a temporary directory
 * (removed afterwards); its turns go through dm_remember as user "u" in
 * session "s", at their times; then every check runs (profile,
 * profile_absent, profile_count, history, as_of, confidence_above,
 * search, event, graph, sources, superseded: tests/data/cognition/
 * README.md); a scenario passes only when every check passes.
 * --verbose prints every failed check.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "cli.h"
#include "cognitive/extract.h"
#include "cognitive/facts.h"

#define N_OPTS(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_SLOTS 96
#define MAX_TURNS 64
#define ACCEPT 0.5f /* a fact below this confidence is not counted */

typedef struct counts {
    char slot[48];
    uint64_t tp, fp, fn;
} counts;

typedef struct ev_ctx {
    const char *cmd;
    counts slots[MAX_SLOTS];
    size_t n_slots;
    counts all, events, relations;
    uint64_t n_statements;
    uint64_t n_scenarios, n_passed, n_checks, n_checks_passed;
    bool is_verbose;
    double extract_s;
} ev_ctx;

static counts *slot_counts(ev_ctx *x, const char *slot)
{
    for (size_t i = 0; i < x->n_slots; i++)
        if (!strcmp(x->slots[i].slot, slot))
            return &x->slots[i];
    if (x->n_slots == MAX_SLOTS)
        return &x->slots[MAX_SLOTS - 1];
    counts *c = &x->slots[x->n_slots++];
    memset(c, 0, sizeof *c);
    snprintf(c->slot, sizeof c->slot, "%s", slot);
    return c;
}

static bool same(const char *a, const char *b)
{
    char na[256], nb[256];
    facts_norm(a ? a : "", na, sizeof na);
    facts_norm(b ? b : "", nb, sizeof nb);
    return !strcmp(na, nb);
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Free phrases (goal, plan) match when at least half of the shorter's
 * words are in the other (normalized, "my" ignored). */
static bool overlap(const char *a, const char *b)
{
    char na[256], nb[256];
    facts_norm(a, na, sizeof na);
    facts_norm(b, nb, sizeof nb);
    const char *sh = strlen(na) <= strlen(nb) ? na : nb, *lo = sh == na ? nb : na;
    size_t n = 0, in = 0;
    char w[64];
    for (const char *p = sh; *p;) {
        size_t l = strcspn(p, " ");
        if (l && l < sizeof w && !(l == 2 && !strncmp(p, "my", 2))) {
            memcpy(w, p, l);
            w[l] = 0;
            n++;
            for (const char *q = lo; *q;) {
                size_t ql = strcspn(q, " ");
                if (ql == l && !memcmp(q, w, l)) {
                    in++;
                    break;
                }
                q += ql + (q[ql] == ' ');
            }
        }
        p += l + (p[l] == ' ');
    }
    return n && 2 * in >= n;
}

/* value v matches the labelled value of w (its "value" or an "alt"). */
static bool value_ok(json_t *w, const char *key, const char *slot, const char *v)
{
    bool phrase = slot && (!strcmp(slot, "goal") || !strcmp(slot, "plan"));
    const char *x = jstr(w, key);
    if (x && (phrase ? overlap(x, v) : same(x, v)))
        return true;
    json_t *alt = json_object_get(w, "alt");
    for (size_t i = 0; json_is_array(alt) && i < json_array_size(alt); i++) {
        const char *y = json_string_value(json_array_get(alt, i));
        if (y && (phrase ? overlap(y, v) : same(y, v)))
            return true;
    }
    return false;
}

static const char *polarity_name(ex_polarity p)
{
    return p == EX_NEGATED ? "negated" : p == EX_CORRECTION ? "correction" : "asserted";
}

static const char *event_name(ex_event_type t)
{
    static const char *const n[] = { "activity", "plan", "milestone", "preference", "social" };
    return (unsigned)t < 5 ? n[t] : "?";
}

/* "YYYY-MM-DD" of t. */
static void day_of(int64_t t, char out[11])
{
    char s[40];
    dm_time_format(t, s);
    memcpy(out, s, 10);
    out[10] = 0;
}

/* ----------------------------------------------------------- statements */

static int statement(ev_ctx *x, json_t *st, const char *where)
{
    const char *text = jstr(st, "text"), *time = jstr(st, "time");
    int64_t t = 0;
    if (!text || !time || dm_time_parse(time, &t))
        return cli_error(x->cmd, "%s: text and time are required", where);
    ex_input in = { .text = text, .len = strlen(text), .speaker = jstr(st, "speaker"),
                    .role = jstr(st, "role"), .time_us = t };
    ex_result r;
    uint64_t t0 = (uint64_t)clock();
    int rc = ex_extract(&in, &r);
    x->extract_s += (double)((uint64_t)clock() - t0) / CLOCKS_PER_SEC;
    if (rc)
        return cli_fail(x->cmd, rc, "%s: extraction failed", where);
    x->n_statements++;

    /* Facts. */
    json_t *want = json_object_get(st, "facts");
    size_t n_want = json_is_array(want) ? json_array_size(want) : 0;
    bool used[64] = { false };
    for (size_t i = 0; i < r.n_facts; i++) {
        const ex_fact *f = &r.facts[i];
        if (f->confidence < ACCEPT)
            continue; /* below the acceptance threshold: not a claim */
        bool hit = false;
        for (size_t j = 0; j < n_want && j < 64 && !hit; j++) {
            json_t *w = json_array_get(want, j);
            const char *pol = jstr(w, "polarity");
            if (used[j] || strcmp(jstr(w, "slot") ? jstr(w, "slot") : "", f->slot) ||
                !same(jstr(w, "subject"), f->subject) || !value_ok(w, "value", f->slot, f->value) ||
                strcmp(pol ? pol : "asserted", polarity_name(f->polarity)))
                continue;
            used[j] = hit = true;
        }
        counts *c = slot_counts(x, f->slot);
        if (hit) {
            c->tp++;
            x->all.tp++;
        } else {
            c->fp++;
            x->all.fp++;
            if (x->is_verbose)
                printf("  FP %s: %s %s = \"%s\" (%s) in \"%s\"\n", where,
                       f->subject[0] ? f->subject : "(speaker)", f->slot, f->value,
                       polarity_name(f->polarity), text);
        }
    }
    for (size_t j = 0; j < n_want && j < 64; j++) {
        if (used[j])
            continue;
        json_t *w = json_array_get(want, j);
        counts *c = slot_counts(x, jstr(w, "slot") ? jstr(w, "slot") : "?");
        c->fn++;
        x->all.fn++;
        if (x->is_verbose)
            printf("  FN %s: %s %s = \"%s\" in \"%s\"\n", where,
                   jstr(w, "subject") && jstr(w, "subject")[0] ? jstr(w, "subject")
                                                                : "(speaker)",
                   jstr(w, "slot"), jstr(w, "value"), text);
    }

    /* Events: type and dates. */
    json_t *wev = json_object_get(st, "events");
    size_t n_wev = json_is_array(wev) ? json_array_size(wev) : 0;
    bool evused[32] = { false };
    for (size_t i = 0; i < r.n_events; i++) {
        char from[11], to[11];
        day_of(r.events[i].from_us, from);
        day_of(r.events[i].to_us, to);
        bool hit = false;
        for (size_t j = 0; j < n_wev && j < 32 && !hit; j++) {
            json_t *w = json_array_get(wev, j);
            const char *ty = jstr(w, "type"), *wf = jstr(w, "from"), *wt = jstr(w, "to");
            if (!evused[j] && ty && wf && wt && !strcmp(ty, event_name(r.events[i].type)) &&
                !strcmp(wf, from) && !strcmp(wt, to))
                evused[j] = hit = true;
        }
        hit ? x->events.tp++ : x->events.fp++;
    }
    for (size_t j = 0; j < n_wev && j < 32; j++)
        x->events.fn += !evused[j];

    /* Relations. */
    json_t *wrel = json_object_get(st, "relations");
    size_t n_wrel = json_is_array(wrel) ? json_array_size(wrel) : 0;
    bool relused[32] = { false };
    for (size_t i = 0; i < r.n_relations; i++) {
        const ex_relation *e = &r.relations[i];
        bool hit = false;
        for (size_t j = 0; j < n_wrel && j < 32 && !hit; j++) {
            json_t *w = json_array_get(wrel, j);
            if (!relused[j] && jstr(w, "rel") && !strcmp(jstr(w, "rel"), e->rel) &&
                same(jstr(w, "src"), e->src) && same(jstr(w, "dst"), e->dst))
                relused[j] = hit = true;
        }
        hit ? x->relations.tp++ : x->relations.fp++;
    }
    for (size_t j = 0; j < n_wrel && j < 32; j++)
        x->relations.fn += !relused[j];
    ex_result_free(&r);
    return CLI_OK;
}

/* ------------------------------------------------------------ scenarios */

/* The subject's facts of slot: current (as_of 0), as of a time, or all. */
static int facts_of(dm_db *db, json_t *c, const char *slot, int64_t as_of, int history,
                    dm_fact **f, size_t *n)
{
    /* The set's as_of is valid time as known after the last turn
     * (tests/data/cognition/README.md). */
    dm_profile_params p = { .user_id = "u", .slot = slot, .as_of_us = as_of,
                            .as_known_now = 1, .history = history,
                            .subject = jstr(c, "subject") };
    int rc = dm_profile(db, &p, f, n);
    if (rc == DM_ENOTFOUND) {
        *f = NULL;
        *n = 0;
        return DM_OK;
    }
    return rc;
}

/* The fact of c's value among f (matching "value" or an "alt"), or NULL. */
static const dm_fact *fact_with(json_t *c, const dm_fact *f, size_t n, bool current_only)
{
    for (size_t i = 0; i < n; i++)
        if ((!current_only || f[i].state == DM_FACT_CURRENT) &&
            value_ok(c, "value", f[i].slot, f[i].value))
            return &f[i];
    return NULL;
}

static int cmp_mentioned(const void *a, const void *b)
{
    const dm_fact *x = a, *y = b;
    if (x->mentioned_us != y->mentioned_us)
        return x->mentioned_us < y->mentioned_us ? -1 : 1;
    return x->valid_from_us < y->valid_from_us ? -1 : x->valid_from_us > y->valid_from_us;
}

/* What the profile held, for a failure message. */
static void held(char *why, size_t cap, size_t o, const dm_fact *f, size_t n)
{
    for (size_t i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(why + o, cap - o, " \"%s\"%s (%.2f)", f[i].value,
                              f[i].state == DM_FACT_CURRENT ? "" : "[ended]", f[i].confidence);
    if (!n && o < cap)
        snprintf(why + o, cap - o, " nothing");
}

/* One check; turn_ids are the scenario's turns' memories.  *why receives
 * the reason of a failure. */
static bool check(dm_db *db, json_t *c, const dm_id *turn_ids, size_t n_turns, char *why,
                  size_t cap)
{
    const char *type = jstr(c, "type"), *slot = jstr(c, "slot");
    dm_fact *f = NULL;
    size_t n = 0;
    bool ok = false;
    if (!type) {
        snprintf(why, cap, "no type");
        return false;
    }
    bool is_fact_check = !strcmp(type, "profile") || !strcmp(type, "profile_absent") ||
                         !strcmp(type, "profile_count") || !strcmp(type, "confidence_above") ||
                         !strcmp(type, "sources") || !strcmp(type, "superseded") ||
                         !strcmp(type, "history") || !strcmp(type, "as_of");
    if (is_fact_check) {
        int64_t t = 0;
        const char *ts = jstr(c, "time");
        bool is_as_of = !strcmp(type, "as_of");
        bool is_hist = !strcmp(type, "history") || !strcmp(type, "superseded");
        if (!slot || (is_as_of && (!ts || dm_time_parse(ts, &t))) ||
            facts_of(db, c, slot, t, is_hist, &f, &n)) {
            snprintf(why, cap, "%s: bad check or the profile failed", type);
            return false;
        }
        json_t *num = json_object_get(c, !strcmp(type, "profile_count") ? "count" : "min");
        const dm_fact *m = fact_with(c, f, n, !is_hist && !is_as_of);
        if (!strcmp(type, "profile")) {
            ok = m != NULL;
        } else if (!strcmp(type, "profile_absent")) {
            ok = m == NULL;
        } else if (!strcmp(type, "profile_count")) {
            ok = json_is_integer(num) && (json_int_t)n == json_integer_value(num);
        } else if (!strcmp(type, "confidence_above")) {
            ok = m && json_is_number(num) && m->confidence >= json_number_value(num);
        } else if (!strcmp(type, "sources")) {
            ok = m && json_is_number(num) && (double)m->n_sources >= json_number_value(num);
        } else if (is_as_of) {
            ok = json_is_null(json_object_get(c, "value")) ? n == 0 : m != NULL;
        } else if (!strcmp(type, "superseded")) {
            json_t *bt = json_object_get(c, "by_turn");
            size_t turn = json_is_integer(bt) ? (size_t)json_integer_value(bt) : SIZE_MAX;
            if (m && m->state != DM_FACT_CURRENT && turn < n_turns) {
                /* The fact that replaced it came from that turn. */
                for (size_t i = 0; i < n && !ok; i++)
                    if (!memcmp(&f[i].id, &m->superseded_by, sizeof(dm_id)))
                        for (size_t k = 0; k < f[i].n_sources && !ok; k++)
                            ok = !memcmp(&f[i].sources[k], &turn_ids[turn], sizeof(dm_id));
            }
        } else { /* history: the distinct values held, oldest first */
            json_t *vals = json_object_get(c, "values");
            qsort(f, n, sizeof *f, cmp_mentioned);
            const char *seq[64];
            size_t ns = 0;
            for (size_t i = 0; i < n && ns < 64; i++) {
                bool seen = false;
                for (size_t k = 0; k < ns && !seen; k++)
                    seen = same(seq[k], f[i].value);
                if (!seen)
                    seq[ns++] = f[i].value;
            }
            ok = json_is_array(vals) && json_array_size(vals) == ns;
            for (size_t k = 0; ok && k < ns; k++)
                ok = same(json_string_value(json_array_get(vals, k)), seq[k]);
        }
        if (!ok) {
            size_t o = (size_t)snprintf(why, cap, "%s %s %s: the profile holds", type, slot,
                                        jstr(c, "value") ? jstr(c, "value") : "");
            held(why, cap, o, f, n);
        }
    } else if (!strcmp(type, "search")) {
        const char *q = jstr(c, "query");
        json_t *exp = json_object_get(c, "expect"), *kk = json_object_get(c, "k");
        dm_search_params sp = { .user_id = "u", .query = q,
                                .k = json_is_integer(kk) ? (uint32_t)json_integer_value(kk) : 5,
                                .flags = DM_NO_REFRESH };
        dm_search_result *res = NULL;
        if (!q || !json_is_array(exp) || dm_search(db, &sp, &res)) {
            snprintf(why, cap, "search: bad check or the search failed");
            return false;
        }
        size_t found = 0;
        for (size_t j = 0; j < json_array_size(exp); j++) {
            const char *e = json_string_value(json_array_get(exp, j));
            for (size_t i = 0; e && i < res->n; i++)
                if (!strcmp(res->hits[i].memory.text, e)) {
                    found++;
                    break;
                }
        }
        ok = found == json_array_size(exp);
        if (!ok)
            snprintf(why, cap, "search \"%s\": %zu of %zu expected memories in the top %u", q,
                     found, json_array_size(exp), sp.k);
        dm_search_result_free(res);
    } else if (!strcmp(type, "event")) {
        const char *word = jstr(c, "contains"), *wf = jstr(c, "from"), *wt = jstr(c, "to");
        const char *ety = jstr(c, "event_type");
        dm_events_params ep = { .user_id = "u" };
        dm_event *e = NULL;
        size_t ne = 0;
        if (!word || !wf || !wt || dm_events(db, &ep, &e, &ne)) {
            snprintf(why, cap, "event: bad check or the events failed");
            return false;
        }
        static const char *const tn[] = { "activity", "plan", "milestone", "preference",
                                          "social" };
        for (size_t i = 0; i < ne && !ok; i++) {
            char from[11], to[11];
            day_of(e[i].from_us, from);
            day_of(e[i].to_us, to);
            ok = strcasestr(e[i].what, word) && !strcmp(from, wf) && !strcmp(to, wt) &&
                 (!ety || ((unsigned)e[i].type < 5 && !strcmp(tn[e[i].type], ety)));
        }
        if (!ok) {
            size_t o = (size_t)snprintf(why, cap, "event \"%s\" %s..%s: the events are", word,
                                        wf, wt);
            for (size_t i = 0; i < ne && o < cap; i++) {
                char from[11], to[11];
                day_of(e[i].from_us, from);
                day_of(e[i].to_us, to);
                o += (size_t)snprintf(why + o, cap - o, " [%s..%s %s]", from, to, e[i].what);
            }
        }
        dm_events_free(e, ne);
    } else if (!strcmp(type, "graph")) {
        json_t *exp = json_object_get(c, "expect"), *dj = json_object_get(c, "depth");
        dm_graph_result *gr = NULL;
        uint32_t depth = json_is_integer(dj) ? (uint32_t)json_integer_value(dj) : 2;
        if (!json_is_array(exp) ||
            dm_graph_neighbours(db, NULL, "u", jstr(c, "entity"), depth, &gr)) {
            snprintf(why, cap, "graph: bad check or the graph failed");
            return false;
        }
        size_t found = 0;
        for (size_t j = 0; j < json_array_size(exp); j++) {
            const char *e = json_string_value(json_array_get(exp, j));
            for (size_t i = 0; e && i < gr->n_nodes; i++)
                if (same(gr->nodes[i].name, e)) {
                    found++;
                    break;
                }
        }
        ok = found == json_array_size(exp);
        if (!ok) {
            size_t o = (size_t)snprintf(why, cap, "graph from \"%s\": %zu of %zu reached; nodes",
                                        jstr(c, "entity") ? jstr(c, "entity") : "", found,
                                        json_array_size(exp));
            for (size_t i = 0; i < gr->n_nodes && o < cap; i++)
                o += (size_t)snprintf(why + o, cap - o, " \"%s\"", gr->nodes[i].name);
        }
        dm_graph_result_free(gr);
    } else {
        snprintf(why, cap, "check type \"%s\" is unknown", type);
    }
    dm_facts_free(f, n);
    return ok;
}

static int scenario(ev_ctx *x, const cli_globals *g, json_t *sc, const char *where)
{
    json_t *turns = json_object_get(sc, "turns"), *checks = json_object_get(sc, "checks");
    if (!json_is_array(turns) || !json_is_array(checks))
        return cli_error(x->cmd, "%s: turns and checks are required", where);
    char *dir = cli_make_tmpdir(x->cmd);
    if (!dir)
        return CLI_FAILED;
    dm_id ids[MAX_TURNS];
    memset(ids, 0, sizeof ids);
    cli_globals g2 = *g;
    g2.data_dir = dir;
    g2.has_data = true;
    g2.sync = DM_SYNC_NONE;
    dm_db *db = NULL;
    int st = cli_open(&g2, x->cmd, true, false, &db);
    for (size_t i = 0; st == CLI_OK && i < json_array_size(turns); i++) {
        json_t *t = json_array_get(turns, i);
        dm_remember_params p;
        dm_remember_params_init(&p);
        p.user_id = "u";
        p.session_id = "s";
        p.text = jstr(t, "text");
        p.role = jstr(t, "role");
        /* The scenario's speaker speaks every user turn (README). */
        p.speaker = jstr(t, "speaker");
        if (!p.speaker && (!p.role || !strcmp(p.role, "user")))
            p.speaker = jstr(sc, "speaker");
        const char *ts = jstr(t, "time");
        if (!p.text || !ts || dm_time_parse(ts, &p.time_us)) {
            st = cli_error(x->cmd, "%s: turn %zu needs text and time", where, i + 1);
            break;
        }
        dm_remember_result rr;
        int rc = dm_remember(db, &p, &rr);
        if (rc)
            st = cli_fail(x->cmd, rc, "%s: turn %zu", where, i + 1);
        else if (i < MAX_TURNS)
            ids[i] = rr.id;
    }
    bool pass = st == CLI_OK;
    for (size_t i = 0; st == CLI_OK && i < json_array_size(checks); i++) {
        char why[512] = "";
        size_t nt = json_array_size(turns) < MAX_TURNS ? json_array_size(turns) : MAX_TURNS;
        bool ok = check(db, json_array_get(checks, i), ids, nt, why, sizeof why);
        x->n_checks++;
        x->n_checks_passed += ok;
        pass &= ok;
        if (!ok && x->is_verbose)
            printf("  FAIL %s check %zu: %s\n", where, i + 1, why);
    }
    x->n_scenarios++;
    x->n_passed += pass && st == CLI_OK;
    if (db)
        st = cli_close(x->cmd, db, st);
    cli_remove_tree(dir);
    dm_free(dir);
    return st;
}

/* ---------------------------------------------------------------- run */

static int each_line(ev_ctx *x, const cli_globals *g, const char *path,
                     int (*fn)(ev_ctx *, const cli_globals *, json_t *, const char *))
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return cli_error(x->cmd, "cannot open %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint64_t no = 0;
    int st = CLI_OK;
    while (st == CLI_OK && (len = getline(&line, &cap, fp)) >= 0) {
        no++;
        if (len <= 1)
            continue;
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)len, 0, &je);
        char where[600];
        snprintf(where, sizeof where, "%s:%" PRIu64, path, no);
        if (!json_is_object(o))
            st = cli_error(x->cmd, "%s: not a JSON object: %s", where, je.text);
        else
            st = fn(x, g, o, where);
        json_decref(o);
    }
    free(line);
    fclose(fp);
    return st;
}

static int statement_fn(ev_ctx *x, const cli_globals *g, json_t *o, const char *where)
{
    (void)g;
    return statement(x, o, where);
}

static double ratio(uint64_t a, uint64_t b) { return b ? (double)a / (double)b : 0; }

static json_t *counts_json(const counts *c)
{
    return json_pack("{s:I, s:I, s:I, s:f, s:f}", "tp", (json_int_t)c->tp, "fp",
                     (json_int_t)c->fp, "fn", (json_int_t)c->fn, "precision",
                     ratio(c->tp, c->tp + c->fp), "recall", ratio(c->tp, c->tp + c->fn));
}

static int cmp_counts(const void *a, const void *b)
{
    return strcmp(((const counts *)a)->slot, ((const counts *)b)->slot);
}

static const cli_opt ext_opts[] = {
    { "statements", 0, true },
    { "scenarios", 0, true },
    { "verbose", 'v', false },
};

int cli_eval_extraction(const cli_globals *g, int argc, char **argv)
{
    ev_ctx *x = dm_calloc(1, sizeof *x);
    if (!x)
        return cli_error("eval", "out of memory");
    x->cmd = "eval";
    cli_args a;
    int st = cli_parse(x->cmd, g, ext_opts, N_OPTS(ext_opts), argc, argv, &a);
    if (st == CLI_OK && a.is_help)
        st = cli_print_help(cli_find_command("eval"));
    else if (st == CLI_OK && a.n_pos)
        st = cli_usage(x->cmd, "unexpected argument \"%s\"", a.pos[0]);
    if (st != CLI_OK || a.is_help) {
        dm_free(x);
        return st;
    }
    const char *sp = cli_get(&a, "statements"), *scp = cli_get(&a, "scenarios");
    if (!sp)
        sp = "tests/data/cognition/statements.jsonl";
    if (!scp)
        scp = "tests/data/cognition/scenarios.jsonl";
    x->is_verbose = cli_get(&a, "verbose") != NULL;
    if (*sp)
        st = each_line(x, g, sp, statement_fn);
    if (st == CLI_OK && *scp)
        st = each_line(x, g, scp, scenario);
    if (st == CLI_OK) {
        qsort(x->slots, x->n_slots, sizeof x->slots[0], cmp_counts);
        if (!a.is_json) {
            printf("%-24s %6s %6s %6s %9s %7s\n", "slot", "tp", "fp", "fn", "precision",
                   "recall");
            for (size_t i = 0; i < x->n_slots; i++) {
                const counts *c = &x->slots[i];
                printf("%-24s %6" PRIu64 " %6" PRIu64 " %6" PRIu64 " %9.3f %7.3f\n", c->slot,
                       c->tp, c->fp, c->fn, ratio(c->tp, c->tp + c->fp),
                       ratio(c->tp, c->tp + c->fn));
            }
            const counts *rows[3] = { &x->all, &x->events, &x->relations };
            const char *names[3] = { "facts overall", "events (type+dates)", "relations" };
            for (int i = 0; i < 3; i++)
                printf("%-24s %6" PRIu64 " %6" PRIu64 " %6" PRIu64 " %9.3f %7.3f\n", names[i],
                       rows[i]->tp, rows[i]->fp, rows[i]->fn,
                       ratio(rows[i]->tp, rows[i]->tp + rows[i]->fp),
                       ratio(rows[i]->tp, rows[i]->tp + rows[i]->fn));
            printf("statements %" PRIu64 " (%.0f per second through the extractor)\n",
                   x->n_statements, x->extract_s > 0 ? x->n_statements / x->extract_s : 0);
            printf("scenarios passed %" PRIu64 " of %" PRIu64 " (checks %" PRIu64 " of %" PRIu64
                   ")\n",
                   x->n_passed, x->n_scenarios, x->n_checks_passed, x->n_checks);
        } else {
            json_t *slots = json_object();
            for (size_t i = 0; i < x->n_slots; i++)
                json_object_set_new(slots, x->slots[i].slot, counts_json(&x->slots[i]));
            st = cli_print_json(
                x->cmd,
                json_pack("{s:o, s:o, s:o, s:o, s:I, s:{s:I, s:I, s:I, s:I}}", "facts",
                          counts_json(&x->all), "slots", slots, "events",
                          counts_json(&x->events), "relations", counts_json(&x->relations),
                          "statements", (json_int_t)x->n_statements, "scenarios", "n",
                          (json_int_t)x->n_scenarios, "passed", (json_int_t)x->n_passed,
                          "checks", (json_int_t)x->n_checks, "checks_passed",
                          (json_int_t)x->n_checks_passed));
        }
    }
    dm_free(x);
    return cli_finish_output("eval", st);
}
