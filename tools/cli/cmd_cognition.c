/*
 * cmd_cognition.c -- the commands of the cognitive layer: remember (store
 * a turn and extract its facts), profile (a user's facts, current, as of a
 * time, or with their history) and history (the changes of one fact).
 *
 * JSON shapes (stable; tests outside the project rely on them):
 *   remember --json  {"id", "facts": {"added", "merged", "updated",
 *                    "superseded", "retracted"}}
 *   profile --json   {"facts": [{"id", "subject", "slot", "value",
 *                    "confidence", "valid_from", "valid_to", "state",
 *                    "derived", "sources": [id, ...], "superseded_by"}]}
 *                    valid_to is null while the fact holds.
 *   history --json   {"changes": [{"event", "slot", "old_value",
 *                    "new_value", "time", "recorded", "source", "by",
 *                    "extractor"}]}
 *   context --json   {"profile": [fact, ...], "memories": [{"id", "text",
 *                    "time", "score", "role"}], "recent": [{...}],
 *                    "context": "<text block>", "tokens"}
 *   graph --json     {"entity", "depth", "nodes": [{"name", "type", "depth",
 *                    "score"}], "edges": [{"src", "rel", "dst", "weight",
 *                    "time", "sources": [...]}]}
 *   events --json    {"events": [{"id", "type", "what", "who": [...],
 *                    "from", "to", "has_time", "mentioned", "confidence",
 *                    "source"}]}
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "server/kjson.h"

#define N_OPTS(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------ remember */

static const cli_opt remember_opts[] = {
    { "user", 'u', true },   { "text", 't', true },    { "time", 0, true },
    { "session", 0, true },  { "role", 0, true },      { "speaker", 0, true },
    { "tenant", 0, true },   { "agent", 0, true },     { "meta", 'm', true },
    { "async", 0, false },
};

int cli_cmd_remember(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "remember";
    cli_args a;
    int st = cli_begin(cmd, g, remember_opts, N_OPTS(remember_opts), argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    dm_remember_params p;
    dm_remember_params_init(&p);
    if ((st = cli_require(cmd, &a, "user", &p.user_id)) != CLI_OK ||
        (st = cli_require(cmd, &a, "text", &p.text)) != CLI_OK)
        return st;
    const char *s;
    if ((s = cli_get(&a, "time")) && (st = cli_parse_time(cmd, "--time", s, &p.time_us)) != CLI_OK)
        return st;
    if ((s = cli_get(&a, "meta")) && (st = cli_check_object(cmd, "--meta", s)) != CLI_OK)
        return st;
    p.metadata = s;
    p.role = cli_get(&a, "role");
    if (p.role && strcmp(p.role, "user") && strcmp(p.role, "assistant"))
        return cli_usage(cmd, "--role must be user or assistant, not \"%s\"", p.role);
    p.session_id = cli_get(&a, "session");
    p.speaker = cli_get(&a, "speaker");
    p.tenant = cli_get(&a, "tenant");
    p.agent_id = cli_get(&a, "agent");
    p.async = cli_get(&a, "async") != NULL;
    dm_db *db = NULL;
    if ((st = cli_open(g, cmd, true, false, &db)) != CLI_OK)
        return st;
    dm_remember_result r;
    int rc = dm_remember(db, &p, &r);
    if (rc != DM_OK) {
        st = cli_fail(cmd, rc, "cannot remember the turn of user %s", p.user_id);
    } else {
        char id[DM_ID_STRLEN + 1];
        dm_id_format(&r.id, id);
        if (!a.is_json) {
            printf("%s added %u merged %u updated %u superseded %u retracted %u\n", id,
                   r.n_added, r.n_merged, r.n_updated, r.n_superseded, r.n_retracted);
        } else {
            json_t *o = json_pack("{s:s, s:{s:i, s:i, s:i, s:i, s:i}}", "id", id, "facts",
                                  "added", (int)r.n_added, "merged", (int)r.n_merged,
                                  "updated", (int)r.n_updated, "superseded",
                                  (int)r.n_superseded, "retracted", (int)r.n_retracted);
            st = cli_print_json(cmd, o);
        }
    }
    st = cli_close(cmd, db, st);
    return cli_finish_output(cmd, st);
}

/* ------------------------------------------------------------- profile */

static const cli_opt profile_opts[] = {
    { "user", 'u', true }, { "as-of", 0, true },  { "history", 0, false },
    { "slot", 0, true },   { "entity", 0, true }, { "tenant", 0, true },
    { "known-now", 0, false },
};

int cli_cmd_profile(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "profile";
    cli_args a;
    int st = cli_begin(cmd, g, profile_opts, N_OPTS(profile_opts), argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    dm_profile_params p;
    memset(&p, 0, sizeof p);
    if ((st = cli_require(cmd, &a, "user", &p.user_id)) != CLI_OK)
        return st;
    const char *s;
    if ((s = cli_get(&a, "as-of")) && (st = cli_parse_time(cmd, "--as-of", s, &p.as_of_us)) != CLI_OK)
        return st;
    p.history = cli_get(&a, "history") != NULL;
    p.as_known_now = cli_get(&a, "known-now") != NULL;
    p.slot = cli_get(&a, "slot");
    p.subject = cli_get(&a, "entity");
    p.tenant = cli_get(&a, "tenant");
    dm_db *db = NULL;
    if ((st = cli_open(g, cmd, false, false, &db)) != CLI_OK)
        return st;
    dm_fact *f = NULL;
    size_t n = 0;
    int rc = dm_profile(db, &p, &f, &n);
    if (rc != DM_OK) {
        st = cli_fail(cmd, rc, "cannot read the profile of user %s", p.user_id);
    } else if (!a.is_json) {
        for (size_t i = 0; i < n; i++) {
            char from[40];
            dm_time_format(f[i].valid_from_us, from);
            printf("%-22s %-30s %.2f  from %s%s%s\n", f[i].slot, f[i].value, f[i].confidence,
                   from, f[i].derived ? "  (derived)" : "",
                   f[i].state == DM_FACT_CURRENT ? ""
                   : f[i].state == DM_FACT_SUPERSEDED ? "  (superseded)"
                                                      : "  (retracted)");
        }
    } else {
        st = cli_print_json(cmd, json_pack("{s:o}", "facts", kjson_facts(f, n)));
    }
    dm_facts_free(f, n);
    st = cli_close(cmd, db, st);
    return cli_finish_output(cmd, st);
}

/* ------------------------------------------------------------- history */

static const cli_opt history_opts[] = {
    { "user", 'u', true },
    { "id", 0, true },
    { "tenant", 0, true },
};

int cli_cmd_history(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "history";
    cli_args a;
    int st = cli_begin(cmd, g, history_opts, N_OPTS(history_opts), argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    const char *user, *ids;
    dm_id id;
    if ((st = cli_require(cmd, &a, "user", &user)) != CLI_OK ||
        (st = cli_require(cmd, &a, "id", &ids)) != CLI_OK ||
        (st = cli_parse_id(cmd, "--id", ids, &id)) != CLI_OK)
        return st;
    dm_db *db = NULL;
    if ((st = cli_open(g, cmd, false, false, &db)) != CLI_OK)
        return st;
    dm_change *c = NULL;
    size_t n = 0;
    int rc = dm_history(db, cli_get(&a, "tenant"), user, &id, &c, &n);
    if (rc != DM_OK) {
        st = cli_fail(cmd, rc, "cannot read the history of fact %s", ids);
    } else if (!a.is_json) {
        for (size_t i = 0; i < n; i++) {
            char t[40];
            dm_time_format(c[i].at_us, t);
            printf("%s %-9s %s: %s -> %s\n", t, kjson_change_name(c[i].kind), c[i].slot,
                   c[i].old_value ? c[i].old_value : "", c[i].new_value);
        }
    } else {
        st = cli_print_json(cmd, kjson_changes(c, n));
    }
    dm_changes_free(c, n);
    st = cli_close(cmd, db, st);
    return cli_finish_output(cmd, st);
}

/* -------------------------------------------------------------- events */

static const cli_opt events_opts[] = {
    { "user", 'u', true }, { "from", 0, true }, { "to", 0, true },
    { "limit", 0, true },  { "tenant", 0, true },
};

int cli_cmd_events(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "events";
    cli_args a;
    int st = cli_begin(cmd, g, events_opts, N_OPTS(events_opts), argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    dm_events_params p;
    memset(&p, 0, sizeof p);
    if ((st = cli_require(cmd, &a, "user", &p.user_id)) != CLI_OK)
        return st;
    const char *s;
    if ((s = cli_get(&a, "from")) && (st = cli_parse_time(cmd, "--from", s, &p.from_us)) != CLI_OK)
        return st;
    if ((s = cli_get(&a, "to")) && (st = cli_parse_time(cmd, "--to", s, &p.to_us)) != CLI_OK)
        return st;
    if ((s = cli_get(&a, "limit")) &&
        (st = cli_parse_u32(cmd, "--limit", s, 1, 100000, &p.limit)) != CLI_OK)
        return st;
    if (p.from_us && p.to_us && p.from_us > p.to_us)
        return cli_usage(cmd, "--from is after --to");
    p.tenant = cli_get(&a, "tenant");
    dm_db *db = NULL;
    if ((st = cli_open(g, cmd, false, false, &db)) != CLI_OK)
        return st;
    dm_event *e = NULL;
    size_t n = 0;
    int rc = dm_events(db, &p, &e, &n);
    if (rc != DM_OK) {
        st = cli_fail(cmd, rc, "cannot read the events of user %s", p.user_id);
    } else if (!a.is_json) {
        for (size_t i = 0; i < n; i++) {
            char from[40], to[40];
            dm_time_format(e[i].from_us, from);
            dm_time_format(e[i].to_us, to);
            printf("%.10s..%.10s %-10s %s%s\n", from, to, kjson_event_type_name(e[i].type), e[i].what,
                   e[i].has_time ? "" : "  (day it was said)");
        }
    } else {
        st = cli_print_json(cmd, kjson_events(e, n));
    }
    dm_events_free(e, n);
    st = cli_close(cmd, db, st);
    return cli_finish_output(cmd, st);
}

/* ------------------------------------------------------------- context */

static const cli_opt context_opts[] = {
    { "user", 'u', true },   { "session", 0, true }, { "query", 'q', true },
    { "max-tokens", 0, true }, { "time", 0, true },  { "k", 'k', true },
    { "recent", 0, true },   { "tenant", 0, true },
};

int cli_cmd_context(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "context";
    cli_args a;
    int st = cli_begin(cmd, g, context_opts, N_OPTS(context_opts), argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    dm_perceive_params p;
    memset(&p, 0, sizeof p);
    if ((st = cli_require(cmd, &a, "user", &p.user_id)) != CLI_OK)
        return st;
    const char *s;
    if ((s = cli_get(&a, "max-tokens")) &&
        (st = cli_parse_u32(cmd, "--max-tokens", s, 50, 1000000, &p.max_tokens)) != CLI_OK)
        return st;
    if ((s = cli_get(&a, "k")) && (st = cli_parse_u32(cmd, "-k", s, 1, 1000, &p.k)) != CLI_OK)
        return st;
    if ((s = cli_get(&a, "recent")) &&
        (st = cli_parse_u32(cmd, "--recent", s, 1, 1000, &p.recent_turns)) != CLI_OK)
        return st;
    if ((s = cli_get(&a, "time")) && (st = cli_parse_time(cmd, "--time", s, &p.now_us)) != CLI_OK)
        return st;
    p.session_id = cli_get(&a, "session");
    p.query = cli_get(&a, "query");
    p.tenant = cli_get(&a, "tenant");
    dm_db *db = NULL;
    if ((st = cli_open(g, cmd, false, false, &db)) != CLI_OK)
        return st;
    dm_context *c = NULL;
    int rc = dm_perceive(db, &p, &c);
    if (rc != DM_OK) {
        st = cli_fail(cmd, rc, "cannot build the context of user %s", p.user_id);
    } else if (!a.is_json) {
        fputs(c->text, stdout);
    } else {
        st = cli_print_json(cmd, kjson_context(c));
    }
    dm_context_free(c);
    st = cli_close(cmd, db, st);
    return cli_finish_output(cmd, st);
}

/* --------------------------------------------------------------- graph */

static const cli_opt graph_opts[] = {
    { "user", 'u', true }, { "entity", 'e', true }, { "depth", 'd', true },
    { "search", 0, true }, { "tenant", 0, true },
};

int cli_cmd_graph(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "graph";
    cli_args a;
    int st = cli_begin(cmd, g, graph_opts, N_OPTS(graph_opts), argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    const char *user, *s;
    if ((st = cli_require(cmd, &a, "user", &user)) != CLI_OK)
        return st;
    uint32_t depth = 2;
    if ((s = cli_get(&a, "depth")) && (st = cli_parse_u32(cmd, "--depth", s, 1, 5, &depth)) != CLI_OK)
        return st;
    const char *entity = cli_get(&a, "entity"), *text = cli_get(&a, "search");
    if (entity && text)
        return cli_usage(cmd, "--entity and --search exclude each other");
    dm_db *db = NULL;
    if ((st = cli_open(g, cmd, false, false, &db)) != CLI_OK)
        return st;
    dm_graph_result *r = NULL;
    const char *tenant = cli_get(&a, "tenant");
    int rc = text ? dm_graph_search(db, tenant, user, text, &r)
                  : dm_graph_neighbours(db, tenant, user, entity, depth, &r);
    if (rc != DM_OK) {
        st = cli_fail(cmd, rc, "cannot read the graph of user %s", user);
    } else if (!a.is_json) {
        for (size_t i = 0; i < r->n_nodes; i++)
            printf("node %-30s %-8s depth %u score %.3f\n", r->nodes[i].name, r->nodes[i].type,
                   r->nodes[i].depth, r->nodes[i].score);
        for (size_t i = 0; i < r->n_edges; i++)
            printf("edge %s -%s-> %s (%.2f)\n", r->edges[i].src, r->edges[i].rel,
                   r->edges[i].dst, r->edges[i].weight);
    } else {
        st = cli_print_json(cmd, kjson_graph(r, entity ? entity : text, depth));
    }
    dm_graph_result_free(r);
    st = cli_close(cmd, db, st);
    return cli_finish_output(cmd, st);
}

/* ---------------------------------------------------------------- chat */

static const cli_opt chat_opts[] = {
    { "user", 'u', true }, { "session", 0, true }, { "text", 't', true },
    { "speaker", 0, true }, { "max-tokens", 0, true }, { "tenant", 0, true },
};

/* One message: the reply (or, without a model, the context it would get). */
static int chat_once(const char *cmd, dm_db *db, dm_chat_params *p, bool is_json)
{
    dm_chat_result *r = NULL;
    int rc = dm_chat(db, p, &r);
    if (rc != DM_OK)
        return cli_fail(cmd, rc, "cannot answer user %s", p->user_id);
    int st = CLI_OK;
    if (is_json) {
        json_t *o = json_pack("{s:o, s:s, s:o, s:o}", "reply",
                              r->reply ? json_string(r->reply) : json_null(), "context",
                              r->context ? r->context->text : "", "user_turn",
                              kjson_id(&r->user_turn), "reply_turn", kjson_id(&r->reply_turn));
        st = cli_print_json(cmd, o);
    } else if (r->reply) {
        printf("%s\n", r->reply);
    } else {
        printf("(no chat model: --llm-url and --llm-model; the context it would get)\n%s",
               r->context ? r->context->text : "");
    }
    dm_chat_result_free(r);
    return st;
}

int cli_cmd_chat(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "chat";
    cli_args a;
    int st = cli_begin(cmd, g, chat_opts, N_OPTS(chat_opts), argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    dm_chat_params p;
    memset(&p, 0, sizeof p);
    const char *s;
    if ((st = cli_require(cmd, &a, "user", &p.user_id)) != CLI_OK ||
        (st = cli_require(cmd, &a, "session", &p.session_id)) != CLI_OK)
        return st;
    if ((s = cli_get(&a, "max-tokens")) &&
        (st = cli_parse_u32(cmd, "--max-tokens", s, 50, 1000000, &p.max_tokens)) != CLI_OK)
        return st;
    p.speaker = cli_get(&a, "speaker");
    p.tenant = cli_get(&a, "tenant");
    dm_db *db = NULL;
    if ((st = cli_open(g, cmd, true, false, &db)) != CLI_OK)
        return st;
    if ((p.text = cli_get(&a, "text"))) {
        st = chat_once(cmd, db, &p, a.is_json);
    } else {
        /* A loop: one message a line until end of input. */
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (st == CLI_OK && (n = getline(&line, &cap, stdin)) >= 0) {
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = 0;
            if (!n)
                continue;
            p.text = line;
            p.time_us = 0;
            st = chat_once(cmd, db, &p, a.is_json);
            fflush(stdout);
        }
        free(line);
    }
    st = cli_close(cmd, db, st);
    return cli_finish_output(cmd, st);
}
