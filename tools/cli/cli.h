/*
 * cli.h -- what the files of the deltamemory command share: the global
 * options, the command table, a small option parser, the one-line error
 * reports, opening the database, and turning memories into JSON.
 *
 * Conventions of every command:
 *   - Output goes to stdout (text, or one JSON document with --json);
 *     errors go to stderr as exactly one line:
 *         deltamemory CMD: what failed: DM_EXXX: detail
 *   - Exit status: CLI_OK (0) success, CLI_FAILED (1) an operation failed
 *     or the database is damaged, CLI_USAGE (2) bad arguments or no
 *     database at DIR.
 *   - JSON is built with jansson and printed with json_dumps(JSON_COMPACT);
 *     the strings json_dumps returns are released with free().
 */
#ifndef DM_CLI_H
#define DM_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "deltamemory.h"

enum {
    CLI_OK = 0,
    CLI_FAILED = 1,
    CLI_USAGE = 2,
};

/* The options given before the command. */
typedef struct cli_globals {
    const char *data_dir;      /* --data; "./data" when not given */
    bool has_data;             /* --data was given explicitly */
    const char *model_path;    /* --model; NULL = $DM_MODEL or the default */
    dm_embedder_kind embedder; /* --embedder */
    const char *http_url;      /* --http-url */
    const char *http_model;    /* --http-model */
    uint32_t http_dim;         /* --http-dim; 0 = ask the endpoint */
    int sync;                  /* --sync as dm_sync_mode; -1 = the default */
    bool is_json;              /* --json given before the command */
    const char *llm_url;       /* --llm-url: a chat model; NULL = none */
    const char *llm_model;     /* --llm-model */
    const char *url;           /* --url or $DELTAMEMORY_URL: a running server */
    const char *api_key;       /* --api-key */
    size_t max_text_bytes;     /* dm_options.max_text_bytes; 0 = its default
                                  (set by serve --max-text) */
    uint32_t user_idle_s;      /* dm_options.user_idle_s (serve --user-idle) */
    size_t index_memory_bytes; /* dm_options.index_memory_bytes (serve
                                  --index-memory) */
    size_t map_memory_bytes;   /* dm_options.map_memory_bytes (serve
                                  --map-memory) */
    bool pread_tables;         /* dm_options.pread_tables (serve
                                  --pread-tables) */
} cli_globals;

/* One command: its entry point and its help. */
typedef struct cli_cmd {
    const char *name;
    int (*run)(const cli_globals *g, int argc, char **argv);
    const char *synopsis; /* "add --user U --text T ..." for the overview */
    const char *summary;  /* one line for the overview */
    const char *help;     /* the full text of `deltamemory help CMD` */
} cli_cmd;

/* The command table (main.c) and lookup by name; NULL if unknown. */
extern const cli_cmd cli_commands[];
const cli_cmd *cli_find_command(const char *name);

/* Prints the help of cmd to stdout; returns CLI_OK. */
int cli_print_help(const cli_cmd *cmd);

/* ------------------------------------------------------------- options */

#define CLI_MAX_OPTS 24
#define CLI_MAX_POS 8

/* One option a command accepts.  --help/-h and --json are always accepted
 * and need not be listed. */
typedef struct cli_opt {
    const char *name; /* long name without the dashes, e.g. "user" */
    char short_name;  /* e.g. 'k' for -k; 0 = none */
    bool has_arg;     /* takes a value (--name V, --name=V, -k V) */
} cli_opt;

typedef struct cli_args {
    const cli_opt *opts;
    size_t n_opts;
    const char *val[CLI_MAX_OPTS]; /* value, "" for a flag; NULL if absent */
    char *pos[CLI_MAX_POS];        /* positional arguments, in order */
    int n_pos;
    bool is_help;                  /* --help or -h was given */
    bool is_json;                  /* --json given here or globally */
} cli_args;

/*
 * cli_parse -- parse argv[0..argc) of command cmd against opts (n_opts
 * entries, at most CLI_MAX_OPTS).  A later repeat of an option replaces
 * the earlier value; "--" ends the options.  Returns CLI_OK, or CLI_USAGE
 * after printing the one-line error (unknown option, missing value, too
 * many positional arguments).
 */
int cli_parse(const char *cmd, const cli_globals *g, const cli_opt *opts,
              size_t n_opts, int argc, char **argv, cli_args *out);

/*
 * cli_begin -- what most commands do first: cli_parse, answer --help,
 * refuse positional arguments.  Returns CLI_PROCEED to go on; anything
 * else is the exit status to return.
 */
#define CLI_PROCEED (-1)
int cli_begin(const char *cmd, const cli_globals *g, const cli_opt *opts, size_t n_opts,
              int argc, char **argv, cli_args *a);
/* cli_require -- the value of a required option (present, not empty), or
 * CLI_USAGE after the one-line error. */
int cli_require(const char *cmd, const cli_args *a, const char *name, const char **out);

/* cli_get -- the value of option name, or NULL when it was not given. */
const char *cli_get(const cli_args *a, const char *name);

/* The value parsers print the one-line usage error themselves and return
 * CLI_USAGE on bad input; CLI_OK otherwise. */
int cli_parse_u32(const char *cmd, const char *opt, const char *s,
                  uint32_t min, uint32_t max, uint32_t *out);
int cli_parse_float(const char *cmd, const char *opt, const char *s,
                    float *out);
int cli_parse_time(const char *cmd, const char *opt, const char *s,
                   int64_t *out_us);
int cli_parse_id(const char *cmd, const char *opt, const char *s, dm_id *out);
/* --meta / --filter: the text must be a JSON object. */
int cli_check_object(const char *cmd, const char *opt, const char *s);

/* ------------------------------------------------------------- errors */

/* cli_usage -- print "deltamemory CMD: MESSAGE (see 'deltamemory help
 * CMD')" as one line to stderr; returns CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * cli_fail -- print "deltamemory CMD: WHAT: DM_EXXX: DETAIL" as one line
 * (DETAIL is dm_errmsg(), or dm_strerror(rc) when there is none) and
 * return CLI_FAILED.
 */
int cli_fail(const char *cmd, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* cli_error -- print "deltamemory CMD: MESSAGE" as one line; returns
 * CLI_FAILED. */
int cli_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------ database */

/*
 * cli_open -- open the database named by the global options.  is_create:
 * create it when missing (add, import); otherwise a missing database is a
 * CLI_USAGE error.  is_reembed sets dm_options.reembed.  Returns CLI_OK
 * with *out set, or the exit status after printing the error.
 */
int cli_open(const cli_globals *g, const char *cmd, bool is_create,
             bool is_reembed, dm_db **out);

/* cli_close -- close db; on a close error print it and return CLI_FAILED,
 * otherwise return status unchanged. */
int cli_close(const char *cmd, dm_db *db, int status);

/* cli_finish_output -- flush stdout; CLI_FAILED with a message if any
 * write to it failed (a full disk, a closed pipe), otherwise status. */
int cli_finish_output(const char *cmd, int status);

/* ---------------------------------------------------------------- JSON */

/* Names of the enums as they appear in JSON and in text output; the parsers
 * return 0 and set *out, or -1 for an unknown name. */
const char *cli_kind_name(dm_memory_kind k);
const char *cli_state_name(dm_memory_state s);
int cli_kind_parse(const char *s, dm_memory_kind *out);
int cli_state_parse(const char *s, dm_memory_state *out);

/*
 * cli_memory_json -- the memory as a JSON object with the export fields
 * (id, tenant, user_id, agent_id, session_id, role, text, time,
 * record_time, salience, decay_rate, access_count, last_access, kind,
 * state, metadata, and embedding when m->embedding is set).  Returns a
 * new reference, or NULL with the reason in err (for example, stored
 * metadata that is not valid JSON).
 */
json_t *cli_memory_json(const dm_memory *m, char *err, size_t err_cap);

/*
 * cli_float_json -- a JSON real for a float32 value: the double of the
 * shortest decimal (at most 9 digits) that converts back to f through
 * strtod and a cast to float, so that it prints short and reads back
 * exactly.  New reference; NULL for a non-finite f or out of memory.
 */
json_t *cli_float_json(float f);

/*
 * cli_json_dumps -- json_dumps(v, JSON_COMPACT) with the real-number
 * precision chosen so that every number survives a round trip: 9
 * significant digits (exact for the float32 fields) unless some number in
 * a "metadata" member needs the 17 of a double.  Caller frees with free().
 * NULL when out of memory.
 */
char *cli_json_dumps(const json_t *v);

/*
 * cli_metadata_dumps -- a metadata object as the compact text the engine
 * stores: 9 significant digits unless some number in it needs 17.
 * Caller frees with free().  NULL when out of memory.
 */
char *cli_metadata_dumps(const json_t *obj);

/* cli_print_json -- cli_json_dumps + a newline to stdout, then decref v.
 * Returns CLI_OK, or CLI_FAILED with a message when v is NULL or cannot
 * be printed. */
int cli_print_json(const char *cmd, json_t *v);

/* cli_print_oneline -- write s (len bytes) to fp with newlines, tabs
 * and other control characters shown as spaces, so that one memory stays
 * on one line of text output. */
void cli_print_oneline(FILE *fp, const char *s, size_t len);

/* --------------------------------------------------------- the commands */

int cli_cmd_add(const cli_globals *g, int argc, char **argv);
int cli_cmd_search(const cli_globals *g, int argc, char **argv);
int cli_cmd_get(const cli_globals *g, int argc, char **argv);
int cli_cmd_list(const cli_globals *g, int argc, char **argv);
int cli_cmd_update(const cli_globals *g, int argc, char **argv);
int cli_cmd_delete(const cli_globals *g, int argc, char **argv);
int cli_cmd_archive(const cli_globals *g, int argc, char **argv);
int cli_cmd_restore(const cli_globals *g, int argc, char **argv);
int cli_cmd_decay(const cli_globals *g, int argc, char **argv);
int cli_cmd_erase_user(const cli_globals *g, int argc, char **argv);
int cli_cmd_reembed(const cli_globals *g, int argc, char **argv);
int cli_cmd_import(const cli_globals *g, int argc, char **argv);
int cli_cmd_export(const cli_globals *g, int argc, char **argv);
int cli_cmd_check(const cli_globals *g, int argc, char **argv);
int cli_cmd_stats(const cli_globals *g, int argc, char **argv);
int cli_cmd_serve(const cli_globals *g, int argc, char **argv);
/* The server's companions: API keys (cmd_keys.c), the MCP server on stdio
 * (cmd_mcp.c) and the demo (cmd_demo.c); each file defines its help. */
int cli_cmd_keys(const cli_globals *g, int argc, char **argv);
int cli_cmd_mcp(const cli_globals *g, int argc, char **argv);
int cli_cmd_demo(const cli_globals *g, int argc, char **argv);
extern const char cli_help_keys[];
/* remote.c: the memory commands against a server (--url); cli_remote_has
 * says which commands can. */
bool cli_remote_has(const char *cmd);
int cli_remote(const cli_globals *g, const char *cmd, int argc, char **argv);
extern const char cli_help_mcp[];
extern const char cli_help_demo[];
int cli_cmd_eval(const cli_globals *g, int argc, char **argv);
int cli_cmd_remember(const cli_globals *g, int argc, char **argv);
/* eval extraction (cmd_eval_ext.c), reached through eval. */
int cli_eval_extraction(const cli_globals *g, int argc, char **argv);
/* A fresh directory under $TMPDIR (or /tmp), dm_malloc'd path; NULL after
 * printing the error.  cli_remove_tree removes it and everything in it
 * (0, or -1 with errno). */
char *cli_make_tmpdir(const char *cmd);
int cli_remove_tree(const char *path);
int cli_cmd_profile(const cli_globals *g, int argc, char **argv);
int cli_cmd_history(const cli_globals *g, int argc, char **argv);
int cli_cmd_events(const cli_globals *g, int argc, char **argv);
int cli_cmd_context(const cli_globals *g, int argc, char **argv);
int cli_cmd_graph(const cli_globals *g, int argc, char **argv);
int cli_cmd_chat(const cli_globals *g, int argc, char **argv);

#endif
