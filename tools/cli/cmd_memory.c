/*
 * cmd_memory.c -- the deltamemory commands that act on memories one at a
 * time: add, search, get, list, update, delete, erase-user, and reembed.
 *
 * Design.  Each command parses and validates all of its arguments before
 * it opens the database, so that a usage mistake never creates a database
 * or waits for a lock.  Then it makes one public API call
 * (include/deltamemory.h), prints the result as text or, with --json, as
 * one JSON document, closes the database and checks that stdout took the
 * output.  Text output keeps one memory per line (control characters in
 * the text are shown as spaces); JSON output carries everything.
 *
 * A user with no memories is not an error for search and list: they print
 * an empty result, as a user who erased everything would see.  The engine
 * reports such a user as DM_ENOTFOUND, which these commands translate.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "server/kjson.h"

#define N_OPTS(a) (sizeof(a) / sizeof((a)[0]))

/* ----------------------------------------------------------------- add */

static const cli_opt add_opts[] = {
    { "user", 'u', true },  { "text", 't', true },   { "time", 0, true },
    { "meta", 'm', true },  { "tenant", 0, true },   { "agent", 0, true },
    { "session", 0, true }, { "role", 0, true },     { "kind", 0, true },
    { "salience", 0, true }, { "decay-rate", 0, true }, { "no-extract", 0, false },
};

int cli_cmd_add(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "add";
    cli_args a;
    int st = cli_begin(cmd, g, add_opts, N_OPTS(add_opts), argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;

    dm_add_params p;
    dm_add_params_init(&p);
    p.no_extract = cli_get(&a, "no-extract") != NULL;
    const char *s;
    if ((st = cli_require(cmd, &a, "user", &p.user_id)) != CLI_OK ||
        (st = cli_require(cmd, &a, "text", &p.text)) != CLI_OK)
        return st;
    p.tenant = cli_get(&a, "tenant");
    p.agent_id = cli_get(&a, "agent");
    p.session_id = cli_get(&a, "session");
    p.role = cli_get(&a, "role");
    if ((s = cli_get(&a, "time")) &&
        (st = cli_parse_time(cmd, "--time", s, &p.event_time_us)) != CLI_OK)
        return st;
    if ((s = cli_get(&a, "meta"))) {
        if ((st = cli_check_object(cmd, "--meta", s)) != CLI_OK)
            return st;
        p.metadata = s;
    }
    if ((s = cli_get(&a, "kind")) && cli_kind_parse(s, &p.kind) != 0)
        return cli_usage(cmd, "--kind: \"%s\" is not one of episodic, fact, "
                         "summary", s);
    if ((s = cli_get(&a, "salience")) &&
        (st = cli_parse_float(cmd, "--salience", s, &p.salience)) != CLI_OK)
        return st;
    if ((s = cli_get(&a, "decay-rate")) &&
        (st = cli_parse_float(cmd, "--decay-rate", s, &p.decay_rate)) != CLI_OK)
        return st;

    dm_db *db = NULL;
    if ((st = cli_open(g, cmd, true, false, &db)) != CLI_OK)
        return st;
    dm_id id;
    char ids[DM_ID_STRLEN + 1];
    int rc = dm_add(db, &p, &id);
    if (rc != DM_OK) {
        st = cli_fail(cmd, rc, "cannot add the memory");
    } else {
        dm_id_format(&id, ids);
        if (a.is_json) {
            json_t *o = json_object();
            if (o && json_object_set_new(o, "id", json_string(ids)) != 0) {
                json_decref(o);
                o = NULL;
            }
            st = cli_print_json(cmd, o);
        } else {
            printf("%s\n", ids);
        }
    }
    st = cli_close(cmd, db, st);
    return cli_finish_output(cmd, st);
}

/* -------------------------------------------------------------- search */

static const cli_opt search_opts[] = {
    { "user", 'u', true },  { "query", 'q', true }, { "k", 'k', true },
    { "tenant", 0, true },  { "from", 0, true },    { "to", 0, true },
    { "filter", 0, true },  { "archived", 0, false }, { "time", 0, true },
    { "explain", 0, false }, { "agent", 0, true },   { "session", 0, true },
};

static int print_search(const char *cmd, const dm_search_result *r,
                        bool is_json)
{
    if (!is_json && r->time_label[0])
        printf("time: %s\n", r->time_label);
    char err[512];
    char t[40], id[DM_ID_STRLEN + 1];
    if (!is_json) {
        for (size_t i = 0; i < r->n; i++) {
            const dm_search_hit *h = &r->hits[i];
            dm_time_format(h->memory.event_time_us, t);
            dm_id_format(&h->memory.id, id);
            printf("%.4f  %s  %s  ", (double)h->score, t, id);
            cli_print_oneline(stdout, h->memory.text, h->memory.text_len);
            fputc('\n', stdout);
        }
        return CLI_OK;
    }
    json_t *doc = kjson_search(r, err, sizeof err);
    if (!doc)
        return cli_error(cmd, "%s", err);
    return cli_print_json(cmd, doc);
}

int cli_cmd_search(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "search";
    cli_args a;
    int st = cli_begin(cmd, g, search_opts, N_OPTS(search_opts), argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;

    dm_search_params p;
    memset(&p, 0, sizeof p);
    const char *s;
    if ((st = cli_require(cmd, &a, "user", &p.user_id)) != CLI_OK ||
        (st = cli_require(cmd, &a, "query", &p.query)) != CLI_OK)
        return st;
    p.tenant = cli_get(&a, "tenant");
    p.k = 10;
    if ((s = cli_get(&a, "k")) &&
        (st = cli_parse_u32(cmd, "-k", s, 1, 1000, &p.k)) != CLI_OK)
        return st;
    if ((s = cli_get(&a, "from")) &&
        (st = cli_parse_time(cmd, "--from", s, &p.from_us)) != CLI_OK)
        return st;
    if ((s = cli_get(&a, "to")) &&
        (st = cli_parse_time(cmd, "--to", s, &p.to_us)) != CLI_OK)
        return st;
    if ((s = cli_get(&a, "filter"))) {
        if ((st = cli_check_object(cmd, "--filter", s)) != CLI_OK)
            return st;
        p.filter = s;
    }
    if (cli_get(&a, "archived"))
        p.flags |= DM_WITH_ARCHIVED;
    if (cli_get(&a, "explain"))
        p.flags |= DM_EXPLAIN;
    if ((s = cli_get(&a, "time")) &&
        (st = cli_parse_time(cmd, "--time", s, &p.now_us)) != CLI_OK)
        return st;
    p.agent_id = cli_get(&a, "agent");
    p.session_id = cli_get(&a, "session");

    dm_db *db = NULL;
    if ((st = cli_open(g, cmd, false, false, &db)) != CLI_OK)
        return st;
    dm_search_result *r = NULL;
    dm_search_result empty;
    memset(&empty, 0, sizeof empty);
    int rc = dm_search(db, &p, &r);
    if (rc == DM_OK || rc == DM_ENOTFOUND)
        st = print_search(cmd, r ? r : &empty, a.is_json);
    else
        st = cli_fail(cmd, rc, "search failed");
    dm_search_result_free(r);
    st = cli_close(cmd, db, st);
    return cli_finish_output(cmd, st);
}

/* ----------------------------------------------------------------- get */

static const cli_opt get_opts[] = {
    { "id", 0, true },
    { "user", 'u', true },
    { "tenant", 0, true },
    { "embedding", 0, false },
};

static void print_field(const char *name, const char *value)
{
    printf("%-13s %s\n", name, value ? value : "-");
}

static void print_memory_text(const dm_memory *m)
{
    char buf[64];
    dm_id_format(&m->id, buf);
    print_field("id:", buf);
    print_field("tenant:", m->tenant);
    print_field("user:", m->user_id);
    print_field("agent:", m->agent_id);
    print_field("session:", m->session_id);
    print_field("role:", m->role);
    dm_time_format(m->event_time_us, buf);
    print_field("time:", buf);
    dm_time_format(m->record_time_us, buf);
    print_field("recorded:", buf);
    print_field("kind:", cli_kind_name(m->kind));
    print_field("state:", cli_state_name(m->state));
    snprintf(buf, sizeof buf, "%.4f (decay %.4f per day)", (double)m->salience,
             (double)m->decay_rate);
    print_field("salience:", buf);
    snprintf(buf, sizeof buf, "%" PRIu32, m->access_count);
    if (m->last_access_us) {
        char t[40];
        dm_time_format(m->last_access_us, t);
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof buf - n, " (last %s)", t);
    }
    print_field("accesses:", buf);
    print_field("metadata:", m->metadata ? m->metadata : "{}");
    printf("%-13s ", "text:");
    cli_print_oneline(stdout, m->text, m->text_len);
    fputc('\n', stdout);
    if (m->embedding) {
        printf("%-13s", "embedding:");
        for (uint32_t i = 0; i < m->dim; i++)
            printf(" %.9g", (double)m->embedding[i]);
        fputc('\n', stdout);
    }
}

int cli_cmd_get(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "get";
    cli_args a;
    int st = cli_begin(cmd, g, get_opts, N_OPTS(get_opts), argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    const char *ids;
    dm_id id;
    if ((st = cli_require(cmd, &a, "id", &ids)) != CLI_OK ||
        (st = cli_parse_id(cmd, "--id", ids, &id)) != CLI_OK)
        return st;
    dm_scope scope = { cli_get(&a, "tenant"), cli_get(&a, "user") };
    unsigned flags = DM_WITH_ARCHIVED;
    if (cli_get(&a, "embedding"))
        flags |= DM_WITH_EMBEDDING;

    dm_db *db = NULL;
    if ((st = cli_open(g, cmd, false, false, &db)) != CLI_OK)
        return st;
    dm_memory *m = NULL;
    int rc = dm_get(db, scope.user_id ? &scope : NULL, &id, flags, &m);
    if (rc != DM_OK) {
        st = cli_fail(cmd, rc, "memory %s", ids);
    } else if (a.is_json) {
        char err[256];
        json_t *o = cli_memory_json(m, err, sizeof err);
        st = o ? cli_print_json(cmd, o) : cli_error(cmd, "memory %s: %s", ids, err);
    } else {
        print_memory_text(m);
    }
    dm_memory_free(m);
    st = cli_close(cmd, db, st);
    return cli_finish_output(cmd, st);
}

/* ---------------------------------------------------------------- list */

static const cli_opt list_opts[] = {
    { "user", 'u', true }, { "tenant", 0, true }, { "from", 0, true },
    { "to", 0, true },     { "limit", 'n', true }, { "cursor", 0, true },
    { "archived", 0, false },
};

static int print_list(const char *cmd, const dm_list_result *r, bool is_json)
{
    char t[40], id[DM_ID_STRLEN + 1], err[256];
    if (!is_json) {
        for (size_t i = 0; i < r->n; i++) {
            const dm_memory *m = &r->items[i];
            dm_time_format(m->event_time_us, t);
            dm_id_format(&m->id, id);
            printf("%s  %s  ", t, id);
            cli_print_oneline(stdout, m->text, m->text_len);
            fputc('\n', stdout);
        }
        if (r->next_cursor)
            printf("next cursor: %s\n", r->next_cursor);
        return CLI_OK;
    }
    json_t *doc = json_object();
    json_t *arr = json_array();
    if (!doc || !arr || json_object_set(doc, "items", arr) != 0 ||
        json_object_set_new(doc, "next_cursor",
                            r->next_cursor ? json_string(r->next_cursor)
                                           : json_null()) != 0) {
        json_decref(arr);
        json_decref(doc);
        return cli_error(cmd, "out of memory");
    }
    for (size_t i = 0; i < r->n; i++) {
        json_t *o = cli_memory_json(&r->items[i], err, sizeof err);
        if (!o || json_array_append_new(arr, o) != 0) {
            dm_id_format(&r->items[i].id, id);
            json_decref(arr);
            json_decref(doc);
            return cli_error(cmd, "memory %s: %s", id, o ? "out of memory" : err);
        }
    }
    json_decref(arr);
    return cli_print_json(cmd, doc);
}

int cli_cmd_list(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "list";
    cli_args a;
    int st = cli_begin(cmd, g, list_opts, N_OPTS(list_opts), argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    dm_list_params p;
    memset(&p, 0, sizeof p);
    const char *s;
    if ((st = cli_require(cmd, &a, "user", &p.user_id)) != CLI_OK)
        return st;
    p.tenant = cli_get(&a, "tenant");
    if ((s = cli_get(&a, "from")) &&
        (st = cli_parse_time(cmd, "--from", s, &p.from_us)) != CLI_OK)
        return st;
    if ((s = cli_get(&a, "to")) &&
        (st = cli_parse_time(cmd, "--to", s, &p.to_us)) != CLI_OK)
        return st;
    if ((s = cli_get(&a, "limit")) &&
        (st = cli_parse_u32(cmd, "--limit", s, 1, 10000, &p.limit)) != CLI_OK)
        return st;
    p.cursor = cli_get(&a, "cursor");
    if (cli_get(&a, "archived"))
        p.flags |= DM_WITH_ARCHIVED;

    dm_db *db = NULL;
    if ((st = cli_open(g, cmd, false, false, &db)) != CLI_OK)
        return st;
    dm_list_result *r = NULL;
    dm_list_result empty = { NULL, 0, NULL };
    int rc = dm_list(db, &p, &r);
    /* An unknown user has nothing to list, but a cursor naming one is a
     * mistake worth reporting. */
    if (rc == DM_OK || (rc == DM_ENOTFOUND && !p.cursor))
        st = print_list(cmd, r ? r : &empty, a.is_json);
    else
        st = cli_fail(cmd, rc, "cannot list the memories of %s", p.user_id);
    dm_list_result_free(r);
    st = cli_close(cmd, db, st);
    return cli_finish_output(cmd, st);
}

/* -------------------------------------------------------------- update */

static const cli_opt update_opts[] = {
    { "id", 0, true },     { "text", 't', true },  { "meta", 'm', true },
    { "user", 'u', true }, { "tenant", 0, true },
};

/* Prints {"id": ID, key: true} or "KEY ID" for update and delete. */
static int print_done(const char *cmd, const char *ids, const char *key,
                      bool is_json)
{
    if (!is_json) {
        printf("%s %s\n", key, ids);
        return CLI_OK;
    }
    json_t *o = json_object();
    if (o && (json_object_set_new(o, "id", json_string(ids)) != 0 ||
              json_object_set_new(o, key, json_true()) != 0)) {
        json_decref(o);
        o = NULL;
    }
    return cli_print_json(cmd, o);
}

int cli_cmd_update(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "update";
    cli_args a;
    int st = cli_begin(cmd, g, update_opts, N_OPTS(update_opts), argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    const char *ids;
    dm_id id;
    if ((st = cli_require(cmd, &a, "id", &ids)) != CLI_OK ||
        (st = cli_parse_id(cmd, "--id", ids, &id)) != CLI_OK)
        return st;
    const char *text = cli_get(&a, "text");
    const char *meta = cli_get(&a, "meta");
    if (!text && !meta)
        return cli_usage(cmd, "give --text, --meta or both");
    if (text && !*text)
        return cli_usage(cmd, "--text must not be empty");
    if (meta && (st = cli_check_object(cmd, "--meta", meta)) != CLI_OK)
        return st;
    dm_scope scope = { cli_get(&a, "tenant"), cli_get(&a, "user") };

    dm_db *db = NULL;
    if ((st = cli_open(g, cmd, false, false, &db)) != CLI_OK)
        return st;
    int rc = dm_update(db, scope.user_id ? &scope : NULL, &id, text, meta);
    if (rc != DM_OK)
        st = cli_fail(cmd, rc, "cannot update memory %s", ids);
    else
        st = print_done(cmd, ids, "updated", a.is_json);
    st = cli_close(cmd, db, st);
    return cli_finish_output(cmd, st);
}

/* -------------------------------------------------------------- delete */

static const cli_opt delete_opts[] = {
    { "id", 0, true },
    { "user", 'u', true },
    { "tenant", 0, true },
};

/* delete, archive and restore: one memory of a user, by id. */
typedef enum one_op { ONE_DELETE, ONE_ARCHIVE, ONE_RESTORE } one_op;

static int one_memory(const cli_globals *g, int argc, char **argv, const char *cmd, one_op op)
{
    static const char *const done[] = { "deleted", "archived", "restored" };
    cli_args a;
    int st = cli_begin(cmd, g, delete_opts, N_OPTS(delete_opts), argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    const char *ids;
    dm_id id;
    dm_scope scope = { cli_get(&a, "tenant"), NULL };
    if ((st = cli_require(cmd, &a, "user", &scope.user_id)) != CLI_OK ||
        (st = cli_require(cmd, &a, "id", &ids)) != CLI_OK ||
        (st = cli_parse_id(cmd, "--id", ids, &id)) != CLI_OK)
        return st;

    dm_db *db = NULL;
    if ((st = cli_open(g, cmd, false, false, &db)) != CLI_OK)
        return st;
    int rc = op == ONE_DELETE ? dm_delete(db, &scope, &id)
             : dm_set_state(db, &scope, &id,
                            op == ONE_ARCHIVE ? DM_STATE_ARCHIVED : DM_STATE_ACTIVE);
    if (rc != DM_OK)
        st = cli_fail(cmd, rc, "cannot %s memory %s of user %s", cmd, ids, scope.user_id);
    else
        st = print_done(cmd, ids, done[op], a.is_json);
    st = cli_close(cmd, db, st);
    return cli_finish_output(cmd, st);
}

int cli_cmd_delete(const cli_globals *g, int argc, char **argv)
{
    return one_memory(g, argc, argv, "delete", ONE_DELETE);
}

int cli_cmd_archive(const cli_globals *g, int argc, char **argv)
{
    return one_memory(g, argc, argv, "archive", ONE_ARCHIVE);
}

int cli_cmd_restore(const cli_globals *g, int argc, char **argv)
{
    return one_memory(g, argc, argv, "restore", ONE_RESTORE);
}

/* --------------------------------------------------------------- decay */

static const cli_opt decay_opts[] = {
    { "user", 'u', true },
    { "tenant", 0, true },
    { "time", 0, true },
    { "threshold", 0, true },
};

int cli_cmd_decay(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "decay";
    cli_args a;
    int st = cli_begin(cmd, g, decay_opts, N_OPTS(decay_opts), argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    const char *s;
    int64_t now = 0;
    float thr = 0;
    if ((s = cli_get(&a, "time")) && (st = cli_parse_time(cmd, "--time", s, &now)) != CLI_OK)
        return st;
    if ((s = cli_get(&a, "threshold")) &&
        (st = cli_parse_float(cmd, "--threshold", s, &thr)) != CLI_OK)
        return st;
    if (thr < 0 || thr >= 1)
        return cli_usage(cmd, "--threshold must be in [0, 1)");
    dm_db *db = NULL;
    if ((st = cli_open(g, cmd, false, false, &db)) != CLI_OK)
        return st;
    uint64_t n = 0;
    const char *user = cli_get(&a, "user");
    int rc = dm_decay(db, cli_get(&a, "tenant"), user, now, thr, &n);
    if (rc != DM_OK) {
        st = user ? cli_fail(cmd, rc, "cannot decay the memories of user %s", user)
                  : cli_fail(cmd, rc, "cannot decay the memories of the tenant");
    } else if (!a.is_json) {
        printf("archived %" PRIu64 "\n", n);
    } else {
        json_t *o = json_pack("{s:I}", "archived", (json_int_t)n);
        st = cli_print_json(cmd, o);
    }
    st = cli_close(cmd, db, st);
    return cli_finish_output(cmd, st);
}

/* ---------------------------------------------------------- erase-user */

static const cli_opt erase_opts[] = {
    { "user", 'u', true },
    { "tenant", 0, true },
};

int cli_cmd_erase_user(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "erase-user";
    cli_args a;
    int st = cli_begin(cmd, g, erase_opts, N_OPTS(erase_opts), argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    const char *user;
    const char *tenant = cli_get(&a, "tenant");
    if ((st = cli_require(cmd, &a, "user", &user)) != CLI_OK)
        return st;

    dm_db *db = NULL;
    if ((st = cli_open(g, cmd, false, false, &db)) != CLI_OK)
        return st;
    uint64_t n = 0;
    int rc = dm_erase_user(db, tenant, user, &n);
    /* Erasing is idempotent: a user who has nothing left is already in the
     * state the command asks for. */
    if (rc == DM_ENOTFOUND) {
        rc = DM_OK;
        n = 0;
    }
    if (rc != DM_OK) {
        st = cli_fail(cmd, rc, "cannot erase user %s", user);
    } else if (a.is_json) {
        json_t *o = json_object();
        if (o && (json_object_set_new(o, "tenant",
                                      json_string(tenant ? tenant
                                                         : DM_DEFAULT_TENANT)) ||
                  json_object_set_new(o, "user_id", json_string(user)) ||
                  json_object_set_new(o, "erased", json_integer((json_int_t)n)))) {
            json_decref(o);
            o = NULL;
        }
        st = cli_print_json(cmd, o);
    } else {
        printf("erased %" PRIu64 " memor%s of user %s\n", n,
               n == 1 ? "y" : "ies", user);
    }
    st = cli_close(cmd, db, st);
    return cli_finish_output(cmd, st);
}

/* ------------------------------------------------------------- reembed */

int cli_cmd_reembed(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "reembed";
    cli_args a;
    int st = cli_begin(cmd, g, NULL, 0, argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;

    /* Open normally first: when the database already uses this model there
     * is nothing to do, and the report can say so.  Only a refusal (the
     * model differs) leads to the re-embedding open. */
    dm_options o;
    dm_options_init(&o);
    o.create_if_missing = 0;
    if (g->sync >= 0)
        o.sync = (dm_sync_mode)g->sync;
    o.model_path = g->model_path;
    o.embedder = g->embedder;
    o.http_base_url = g->http_url;
    o.http_model = g->http_model;
    o.http_dim = g->http_dim;
    dm_db *db = NULL;
    bool is_reembedded = false;
    uint64_t t0 = clock_mono_us();
    int rc = dm_open(g->data_dir, &o, &db);
    if (rc == DM_EINVAL) {
        t0 = clock_mono_us();
        if ((st = cli_open(g, cmd, false, true, &db)) != CLI_OK)
            return st;
        is_reembedded = true;
    } else if (rc != DM_OK) {
        cli_fail(cmd, rc, "cannot open the database at %s", g->data_dir);
        return rc == DM_ENOTFOUND ? CLI_USAGE : CLI_FAILED;
    }
    double secs = (double)(clock_mono_us() - t0) / 1e6;
    dm_stats s;
    rc = dm_stats_get(db, &s);
    if (rc != DM_OK) {
        st = cli_fail(cmd, rc, "cannot read the statistics");
    } else if (a.is_json) {
        json_t *j = json_pack("{s:s, s:s, s:i, s:I, s:b, s:f}", "database",
                              g->data_dir, "model", s.model, "dim", (int)s.dim,
                              "memories", (json_int_t)s.n_memories,
                              "reembedded", is_reembedded, "seconds", secs);
        st = cli_print_json(cmd, j);
    } else if (is_reembedded) {
        printf("re-embedded %" PRIu64 " memor%s with %s (dim %u) in %.2f s\n",
               s.n_memories, s.n_memories == 1 ? "y" : "ies", s.model,
               (unsigned)s.dim, secs);
    } else {
        printf("the database is already embedded with %s (dim %u); nothing "
               "to re-embed\n", s.model, (unsigned)s.dim);
    }
    st = cli_close(cmd, db, st);
    return cli_finish_output(cmd, st);
}
