/*
 * cli_util.c -- the pieces every deltamemory command uses: the option
 * parser, the one-line error reports, opening and closing the database,
 * and the JSON form of a memory.
 *
 * Design.  Each command declares the options it accepts in a small table
 * and gets back the values by name; the parser is written here rather than
 * taken from getopt_long so that every mistake yields exactly one line on
 * stderr that names the command and the option, and so that --help and
 * --json work the same on every command.
 *
 * Errors are reported once, at the point where the command gives up, as
 * "deltamemory CMD: what: DM_EXXX: detail".  Messages that come from
 * elsewhere (the engine, jansson) are flattened to one line first.
 *
 * JSON numbers.  The float32 fields of a memory (embedding, salience,
 * decay_rate, score) survive a text round trip with 9 significant digits,
 * which keeps an export about half the size of the 17 digits a double
 * needs.  The few scalar floats are stored as the double of their shortest
 * decimal form that still converts back to the same float (0.01, not
 * 0.00999999978), so they print readably; the embedding keeps the plain 9
 * digits, since its components rarely have a shorter form and searching
 * for one would slow an export down.  Metadata, however, is arbitrary user JSON whose numbers are
 * doubles; jansson has a single precision per document, so a document is
 * printed with 17 digits exactly when some metadata number would not
 * survive 9.  The choice depends only on the document's contents, so the
 * same memory always prints the same bytes, which is what makes export ->
 * import -> export byte-identical.
 */
#include "cli.h"
#include "server/mjson.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"

/* ------------------------------------------------------------- errors */

/* Formats into buf and replaces every control character by a space so the
 * report stays on one line whatever the detail contains. */
static void format_line(char *buf, size_t cap, const char *fmt, va_list ap)
{
    vsnprintf(buf, cap, fmt, ap);
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    format_line(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "deltamemory %s: %s (see 'deltamemory help %s')\n",
                cmd, msg, cmd);
    else
        fprintf(stderr, "deltamemory: %s (see 'deltamemory help')\n", msg);
    return CLI_USAGE;
}

int cli_fail(const char *cmd, int rc, const char *fmt, ...)
{
    char what[1024], detail[1024];
    /* Read the engine's message before anything here can replace it. */
    const char *m = dm_errmsg();
    snprintf(detail, sizeof detail, "%s", *m ? m : dm_strerror(rc));
    for (char *p = detail; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    va_list ap;
    va_start(ap, fmt);
    format_line(what, sizeof what, fmt, ap);
    va_end(ap);
    fprintf(stderr, "deltamemory %s: %s: %s: %s\n", cmd, what,
            dm_errname(rc), detail);
    return CLI_FAILED;
}

int cli_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    format_line(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "deltamemory %s: %s\n", cmd, msg);
    return CLI_FAILED;
}

/* ------------------------------------------------------------- options */

static int find_long(const cli_opt *opts, size_t n, const char *name,
                     size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && !memcmp(opts[i].name, name, len))
            return (int)i;
    return -1;
}

static int find_short(const cli_opt *opts, size_t n, char c)
{
    for (size_t i = 0; i < n; i++)
        if (opts[i].short_name && opts[i].short_name == c)
            return (int)i;
    return -1;
}

int cli_parse(const char *cmd, const cli_globals *g, const cli_opt *opts,
              size_t n_opts, int argc, char **argv, cli_args *out)
{
    memset(out, 0, sizeof *out);
    out->opts = opts;
    out->n_opts = n_opts < CLI_MAX_OPTS ? n_opts : CLI_MAX_OPTS;
    out->is_json = g->is_json;

    /* --help wins over every other mistake on the line, so that a user who
     * got the options wrong can always ask.  The values of known options
     * are skipped: `--text -h` is a text, not a request for help. */
    for (int i = 0; i < argc && strcmp(argv[i], "--"); i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            out->is_help = true;
            return CLI_OK;
        }
        int idx = -1;
        if (a[0] == '-' && a[1] == '-' && !strchr(a, '='))
            idx = find_long(out->opts, out->n_opts, a + 2, strlen(a + 2));
        else if (a[0] == '-' && a[1] && a[1] != '-' && !a[2])
            idx = find_short(out->opts, out->n_opts, a[1]);
        if (idx >= 0 && out->opts[idx].has_arg)
            i++;
    }

    bool is_end = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (is_end || a[0] != '-' || a[1] == 0) {
            if (out->n_pos == CLI_MAX_POS)
                return cli_usage(cmd, "too many arguments");
            out->pos[out->n_pos++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--")) {
            is_end = true;
            continue;
        }
        int idx;
        const char *inline_val = NULL;
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            if (len == 4 && !memcmp(name, "json", 4) && !eq) {
                out->is_json = true;
                continue;
            }
            idx = find_long(out->opts, out->n_opts, name, len);
            if (idx < 0)
                return cli_usage(cmd, "unknown option --%.*s", (int)len, name);
            if (eq) {
                if (!out->opts[idx].has_arg)
                    return cli_usage(cmd, "option --%s takes no value",
                                     out->opts[idx].name);
                inline_val = eq + 1;
            }
        } else {
            idx = find_short(out->opts, out->n_opts, a[1]);
            if (idx < 0)
                return cli_usage(cmd, "unknown option -%c", a[1]);
            if (a[2]) {
                if (!out->opts[idx].has_arg)
                    return cli_usage(cmd, "option -%c takes no value", a[1]);
                inline_val = a + 2;
            }
        }
        if (!out->opts[idx].has_arg) {
            out->val[idx] = "";
        } else if (inline_val) {
            out->val[idx] = inline_val;
        } else if (i + 1 < argc) {
            out->val[idx] = argv[++i];
        } else {
            return cli_usage(cmd, "option --%s needs a value",
                             out->opts[idx].name);
        }
    }
    return CLI_OK;
}

const char *cli_get(const cli_args *a, const char *name)
{
    int idx = find_long(a->opts, a->n_opts, name, strlen(name));
    return idx < 0 ? NULL : a->val[idx];
}

int cli_parse_u32(const char *cmd, const char *opt, const char *s,
                  uint32_t min, uint32_t max, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = 0;
    if (s[0] >= '0' && s[0] <= '9')
        v = strtoull(s, &end, 10);
    if (!end || *end || errno || v < min || v > max)
        return cli_usage(cmd, "%s: \"%s\" is not a whole number from %u to %u",
                         opt, s, (unsigned)min, (unsigned)max);
    *out = (uint32_t)v;
    return CLI_OK;
}

int cli_parse_float(const char *cmd, const char *opt, const char *s,
                    float *out)
{
    char *end = NULL;
    errno = 0;
    float v = strtof(s, &end);
    if (end == s || *end || errno || !isfinite(v))
        return cli_usage(cmd, "%s: \"%s\" is not a number", opt, s);
    *out = v;
    return CLI_OK;
}

int cli_parse_time(const char *cmd, const char *opt, const char *s,
                   int64_t *out_us)
{
    int rc = dm_time_parse(s, out_us);
    if (rc != DM_OK)
        return cli_usage(cmd, "%s: \"%s\" is not an ISO 8601 date or time: %s",
                         opt, s, dm_errmsg());
    return CLI_OK;
}

int cli_parse_id(const char *cmd, const char *opt, const char *s, dm_id *out)
{
    int rc = dm_id_parse(s, out);
    if (rc != DM_OK)
        return cli_usage(cmd, "%s: \"%s\" is not a memory id: %s", opt, s,
                         dm_errmsg());
    return CLI_OK;
}

int cli_check_object(const char *cmd, const char *opt, const char *s)
{
    json_error_t e;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &e);
    if (!v)
        return cli_usage(cmd, "%s: not valid JSON at character %d: %s", opt,
                         e.position, e.text);
    bool is_object = json_is_object(v);
    json_decref(v);
    if (!is_object)
        return cli_usage(cmd, "%s: must be a JSON object ({...})", opt);
    return CLI_OK;
}

/* ------------------------------------------------------------ database */

int cli_open(const cli_globals *g, const char *cmd, bool is_create,
             bool is_reembed, dm_db **out)
{
    *out = NULL;
    dm_options o;
    dm_options_init(&o);
    o.create_if_missing = is_create;
    if (g->sync >= 0)
        o.sync = (dm_sync_mode)g->sync;
    o.model_path = g->model_path;
    o.embedder = g->embedder;
    o.http_base_url = g->http_url;
    o.http_model = g->http_model;
    o.llm_base_url = g->llm_url;
    o.llm_model = g->llm_model;
    o.http_dim = g->http_dim;
    o.reembed = is_reembed;
    if (g->max_text_bytes)
        o.max_text_bytes = g->max_text_bytes;
    o.user_idle_s = g->user_idle_s;
    o.index_memory_bytes = g->index_memory_bytes;
    o.map_memory_bytes = g->map_memory_bytes;
    o.pread_tables = g->pread_tables;
    int rc = dm_open(g->data_dir, &o, out);
    if (rc == DM_OK)
        return CLI_OK;
    *out = NULL;
    cli_fail(cmd, rc, "cannot open the database at %s", g->data_dir);
    /* A missing database (or model file) is a matter of arguments, not of
     * damage: the same split `check` and `stats` make. */
    return rc == DM_ENOTFOUND ? CLI_USAGE : CLI_FAILED;
}

int cli_close(const char *cmd, dm_db *db, int status)
{
    int rc = dm_close(db);
    if (rc != DM_OK) {
        cli_fail(cmd, rc, "closing the database");
        return status == CLI_OK ? CLI_FAILED : status;
    }
    return status;
}

int cli_finish_output(const char *cmd, int status)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error(cmd, "cannot write the output: %s", strerror(errno));
        return status == CLI_OK ? CLI_FAILED : status;
    }
    return status;
}

/* ---------------------------------------------------------------- JSON */

/* The JSON helpers are shared with the server (src/server/mjson.c). */
const char *cli_kind_name(dm_memory_kind k)
{
    return mjson_kind_name(k);
}

const char *cli_state_name(dm_memory_state s)
{
    return mjson_state_name(s);
}

int cli_kind_parse(const char *s, dm_memory_kind *out)
{
    return mjson_kind_parse(s, out);
}

int cli_state_parse(const char *s, dm_memory_state *out)
{
    return mjson_state_parse(s, out);
}

json_t *cli_float_json(float f)
{
    return mjson_float(f);
}

json_t *cli_memory_json(const dm_memory *m, char *err, size_t err_cap)
{
    return mjson_memory(m, err, err_cap);
}

char *cli_json_dumps(const json_t *v)
{
    return mjson_dumps(v);
}

char *cli_metadata_dumps(const json_t *obj)
{
    return mjson_metadata_dumps(obj);
}

int cli_print_json(const char *cmd, json_t *v)
{
    if (!v)
        return cli_error(cmd, "cannot build the JSON output (out of memory)");
    char *s = cli_json_dumps(v);
    json_decref(v);
    if (!s)
        return cli_error(cmd, "cannot print the JSON output (out of memory)");
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
    return CLI_OK;
}

void cli_print_oneline(FILE *fp, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        fputc(c < 0x20 || c == 0x7f ? ' ' : c, fp);
    }
}

int cli_begin(const char *cmd, const cli_globals *g, const cli_opt *opts, size_t n_opts,
              int argc, char **argv, cli_args *a)
{
    int st = cli_parse(cmd, g, opts, n_opts, argc, argv, a);
    if (st != CLI_OK)
        return st;
    if (a->is_help)
        return cli_print_help(cli_find_command(cmd));
    if (a->n_pos > 0)
        return cli_usage(cmd, "unexpected argument \"%s\"", a->pos[0]);
    return CLI_PROCEED;
}

int cli_require(const char *cmd, const cli_args *a, const char *name, const char **out)
{
    *out = cli_get(a, name);
    if (!*out || !**out)
        return cli_usage(cmd, "--%s is required", name);
    return CLI_OK;
}

/* ------------------------------------------------------- temporary dirs */

char *cli_make_tmpdir(const char *cmd)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    size_t n = strlen(base) + sizeof "/deltamemory-eval.XXXXXX";
    char *path = dm_malloc(n);
    if (path)
        snprintf(path, n, "%s/deltamemory-eval.XXXXXX", base);
    if (!path) {
        cli_error(cmd, "out of memory");
        return NULL;
    }
    if (!mkdtemp(path)) {
        cli_error(cmd, "cannot create a temporary directory in %s: %s", base,
                  strerror(errno));
        dm_free(path);
        return NULL;
    }
    return path;
}

/* Removes the tree at path (files and directories, no symlinks followed).
 * 0, or -1 with errno of the first failure. */
int cli_remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(sb.st_mode))
        return unlink(path);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int rc = 0, first_errno = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char child[PATH_MAX];
        int n = snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        if (n < 0 || (size_t)n >= sizeof child) {
            rc = -1;
            first_errno = first_errno ? first_errno : ENAMETOOLONG;
            continue;
        }
        if (cli_remove_tree(child) != 0) {
            rc = -1;
            first_errno = first_errno ? first_errno : errno;
        }
    }
    closedir(d);
    if (rmdir(path) != 0 && rc == 0)
        return -1;
    if (rc != 0)
        errno = first_errno;
    return rc;
}
