/*
 * cmd_io.c -- deltamemory import and export: memories as JSON Lines.
 *
 * Format (one JSON object per line).  export writes every field a memory
 * has: id, tenant, user_id, agent_id, session_id, role, text, time,
 * record_time, salience, decay_rate, access_count, last_access, kind,
 * state, metadata (an object) and embedding (an array of numbers).  Times
 * are ISO 8601 strings in UTC with microseconds when nonzero; a memory
 * never accessed has "last_access": null.  import reads the same fields;
 * only text and user_id are required, so a hand-written file of
 * {"user_id": ..., "text": ..., "time": ...} lines works too.  Given the
 * export fields, import stores them as they are (dm_add_params' import
 * fields), so export -> import into an empty database -> export is
 * byte-for-byte the same file.  Unknown fields are ignored, which lets
 * search output be fed back.
 *
 * Import design.  Lines are read with getline (any length) and parsed with
 * json_loadb one at a time; parsed lines wait in a batch (each keeps its
 * JSON document alive because the dm_add_params point into it) and go to
 * dm_add_batch 256 at a time: one embedding call and one write per user.
 * dm_add_batch validates everything before storing anything, so when it
 * refuses a batch for a line-level reason (DM_EINVAL, DM_ETOOBIG,
 * DM_EEXISTS) nothing was stored and the batch is retried line by line
 * with dm_add, which stores the good lines and reports the bad ones.  A bad
 * line is reported as "line N: reason" on stderr and skipped; the import
 * goes on.  Lines the parser refuses wait in the batch with their reason,
 * so that the reports come out in line order.  Any other error (storage, out of memory, the embedding
 * endpoint) stops the import, since the following lines would fail the
 * same way, and the command exits nonzero after its summary.
 *
 * Progress.  When stderr is a terminal, a bar with the percentage of the
 * file's bytes read, the line rate and an estimate of the time left is
 * redrawn at most ten times a second; bad-line reports erase it first.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "server/mjson.h"

#define N_OPTS(a) (sizeof(a) / sizeof((a)[0]))
#define IMPORT_BATCH_DEFAULT 256u
#define PROGRESS_PERIOD_US 100000u
#define PROGRESS_BAR_WIDTH 30

/* One parsed line waiting in the batch; owns what its params point to. */
/* One line of the batch, good or bad; owns what its params point to. */
typedef struct pending {
    json_t *root;     /* the line's document: the strings live here */
    mjson_owned own;  /* metadata text, embedding and id the params use */
    char *why;        /* a line the parser refused: the reason (dm_malloc) */
    size_t param;     /* a good line: its index in importer.ps */
    uint64_t line_no;
} pending;

typedef struct importer {
    const char *cmd;
    dm_db *db;
    const char *tenant;   /* --tenant: for lines without one */
    dm_add_params *ps;    /* the good lines' params (n_good of them) */
    pending *pend;        /* every line of the batch, in file order */
    size_t n, n_good, cap;
    uint64_t n_imported, n_skipped, n_lines;
    int fatal_rc;         /* the error that stopped the import, or DM_OK */
    /* progress */
    bool is_progress;
    bool is_bar_drawn;
    uint64_t total_bytes; /* 0 when the size is unknown (a pipe) */
    uint64_t read_bytes;
    uint64_t start_us, last_draw_us;
} importer;

/* ------------------------------------------------------------ progress */

static void erase_bar(importer *im)
{
    if (im->is_bar_drawn) {
        fputs("\r\033[K", stderr);
        im->is_bar_drawn = false;
    }
}

static void format_eta(double secs, char *out, size_t cap)
{
    if (secs < 0 || secs > 359999)
        snprintf(out, cap, "--:--");
    else if (secs >= 3600)
        snprintf(out, cap, "%d:%02d:%02d", (int)secs / 3600,
                 (int)secs / 60 % 60, (int)secs % 60);
    else
        snprintf(out, cap, "%02d:%02d", (int)secs / 60, (int)secs % 60);
}

static void draw_bar(importer *im, bool is_forced)
{
    if (!im->is_progress)
        return;
    uint64_t now = clock_mono_us();
    if (!is_forced && now - im->last_draw_us < PROGRESS_PERIOD_US)
        return;
    im->last_draw_us = now;
    double secs = (double)(now - im->start_us) / 1e6;
    double rate = secs > 0 ? (double)im->n_lines / secs : 0;
    if (im->total_bytes > 0) {
        double frac = (double)im->read_bytes / (double)im->total_bytes;
        if (frac > 1)
            frac = 1;
        char bar[PROGRESS_BAR_WIDTH + 1], eta[32];
        int fill = (int)(frac * PROGRESS_BAR_WIDTH);
        for (int i = 0; i < PROGRESS_BAR_WIDTH; i++)
            bar[i] = i < fill ? '#' : '-';
        bar[PROGRESS_BAR_WIDTH] = 0;
        format_eta(frac > 0 ? secs * (1 - frac) / frac : -1, eta, sizeof eta);
        fprintf(stderr, "\r%3d%% [%s] %" PRIu64 " lines, %.0f/s, ETA %s\033[K",
                (int)(frac * 100), bar, im->n_lines, rate, eta);
    } else {
        fprintf(stderr, "\r%" PRIu64 " lines, %.0f/s\033[K", im->n_lines,
                rate);
    }
    fflush(stderr);
    im->is_bar_drawn = true;
}

__attribute__((format(printf, 3, 4)))
static void report_line(importer *im, uint64_t line_no, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    erase_bar(im);
    fprintf(stderr, "line %" PRIu64 ": %s\n", line_no, msg);
}

/* ------------------------------------------------------- parsing a line */

static void pending_fini(pending *pe)
{
    json_decref(pe->root);
    mjson_owned_fini(&pe->own);
    dm_free(pe->why);
    memset(pe, 0, sizeof *pe);
}

/* Fills p and pe from one line; 0, or -1 with the reason in why.  On
 * failure pe owns whatever was taken (pending_fini releases it). */
static int parse_line(importer *im, const char *line, size_t len,
                      dm_add_params *p, pending *pe, char *why, size_t cap)
{
    json_error_t je;
    pe->root = json_loadb(line, len, 0, &je);
    if (!pe->root) {
        snprintf(why, cap, "not valid JSON at column %d: %s", je.column,
                 je.text);
        return -1;
    }
    json_t *root = pe->root;
    if (!json_is_object(root)) {
        snprintf(why, cap, "not a JSON object");
        return -1;
    }
    const char *field;
    if (mjson_add_params(root, true, p, &pe->own, why, cap, &field) != 0)
        return -1;
    if (!p->tenant)
        p->tenant = im->tenant;
    return 0;
}

/* ------------------------------------------------------------- batches */

/* Errors that belong to one line: the rest of the file can still go in. */
static bool is_line_error(int rc)
{
    return rc == DM_EINVAL || rc == DM_ETOOBIG || rc == DM_EEXISTS;
}

static void report_fatal(importer *im, uint64_t line_no, int rc)
{
    const char *m = dm_errmsg();
    report_line(im, line_no, "%s: %s; import stopped", dm_errname(rc),
                *m ? m : dm_strerror(rc));
    im->fatal_rc = rc;
}

/* Reports a line the parser refused and counts it as skipped. */
static void skip_refused(importer *im, const pending *pe)
{
    report_line(im, pe->line_no, "%s", pe->why);
    im->n_skipped++;
}

/*
 * Stores the good lines of the batch and reports the bad ones, in file
 * order; on return the batch is empty.  Lines the parser refused wait in
 * the batch too, so that the reports come out in line order even though
 * the engine judges the good lines only now.
 */
static void flush_batch(importer *im)
{
    int rc = im->n_good ? dm_add_batch(im->db, im->ps, im->n_good, NULL)
                        : DM_OK;
    if (rc == DM_OK) {
        im->n_imported += im->n_good;
        for (size_t i = 0; i < im->n; i++)
            if (im->pend[i].why)
                skip_refused(im, &im->pend[i]);
    } else if (is_line_error(rc)) {
        /* Nothing was stored: find the bad lines one by one. */
        for (size_t i = 0; i < im->n; i++) {
            pending *pe = &im->pend[i];
            if (pe->why) {
                skip_refused(im, pe);
                continue;
            }
            rc = dm_add(im->db, &im->ps[pe->param], NULL);
            if (rc == DM_OK) {
                im->n_imported++;
            } else if (is_line_error(rc)) {
                const char *m = dm_errmsg();
                report_line(im, pe->line_no, "%s: %s", dm_errname(rc),
                            *m ? m : dm_strerror(rc));
                im->n_skipped++;
            } else {
                report_fatal(im, pe->line_no, rc);
                break;
            }
        }
    } else {
        size_t first_good = 0;
        while (im->pend[first_good].why)
            first_good++;
        report_fatal(im, im->pend[first_good].line_no, rc);
    }
    for (size_t i = 0; i < im->n; i++)
        pending_fini(&im->pend[i]);
    im->n = 0;
    im->n_good = 0;
}

/* Handles one line (without its newline). */
static void import_line(importer *im, const char *line, size_t len,
                        uint64_t line_no)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len)
        return; /* blank lines separate nothing and are not memories */
    im->n_lines++;
    char why[512];
    pending *pe = &im->pend[im->n++];
    memset(pe, 0, sizeof *pe);
    pe->line_no = line_no;
    pe->param = im->n_good;
    if (parse_line(im, line, len, &im->ps[im->n_good], pe, why,
                   sizeof why) == 0) {
        im->n_good++;
    } else {
        /* The line's resources are not needed to report it. */
        json_decref(pe->root);
        mjson_owned_fini(&pe->own);
        pe->root = NULL;
        pe->why = dm_strdup(why);
        if (!pe->why) {
            /* Without memory for the reason, report it now, out of order. */
            report_line(im, line_no, "%s", why);
            im->n_skipped++;
            im->n--;
        }
    }
    if (im->n == im->cap)
        flush_batch(im);
}

/* -------------------------------------------------------------- import */

static const cli_opt import_opts[] = {
    { "tenant", 0, true },
    { "batch", 0, true },
    { "no-progress", 0, false },
};

static int print_summary(const char *cmd, const importer *im, double secs,
                         bool is_json)
{
    double rate = secs > 0 ? (double)im->n_imported / secs : 0;
    if (is_json) {
        json_t *o = json_pack("{s:I, s:I, s:f, s:f}", "imported",
                              (json_int_t)im->n_imported, "skipped",
                              (json_int_t)im->n_skipped, "seconds", secs,
                              "per_second", rate);
        return cli_print_json(cmd, o);
    }
    printf("imported %" PRIu64 ", skipped %" PRIu64 " in %.2f s (%.0f/s)\n",
           im->n_imported, im->n_skipped, secs, rate);
    return CLI_OK;
}

int cli_cmd_import(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "import";
    cli_args a;
    int st = cli_parse(cmd, g, import_opts, N_OPTS(import_opts), argc, argv,
                       &a);
    if (st != CLI_OK)
        return st;
    if (a.is_help)
        return cli_print_help(cli_find_command(cmd));
    if (a.n_pos == 0)
        return cli_usage(cmd, "the file to import is missing");
    if (a.n_pos > 1)
        return cli_usage(cmd, "takes one file, got %d arguments", a.n_pos);
    uint32_t batch = IMPORT_BATCH_DEFAULT;
    const char *s;
    if ((s = cli_get(&a, "batch")) &&
        (st = cli_parse_u32(cmd, "--batch", s, 1, 10000, &batch)) != CLI_OK)
        return st;

    const char *path = a.pos[0];
    bool is_stdin = !strcmp(path, "-");
    FILE *fp = is_stdin ? stdin : fopen(path, "rb");
    if (!fp)
        return cli_error(cmd, "cannot open %s: %s", path, strerror(errno));

    importer im;
    struct stat sb;
    uint64_t line_no = 0;
    ssize_t n;
    double secs;
    int sum_st;
    memset(&im, 0, sizeof im);
    im.cmd = cmd;
    im.tenant = cli_get(&a, "tenant");
    im.cap = batch;
    im.fatal_rc = DM_OK;
    char *line = NULL;
    size_t line_cap = 0;
    dm_db *db = NULL;
    im.ps = dm_calloc(batch, sizeof *im.ps);
    im.pend = dm_calloc(batch, sizeof *im.pend);
    if (!im.ps || !im.pend) {
        st = cli_error(cmd, "out of memory");
        goto done;
    }
    if (fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode))
        im.total_bytes = (uint64_t)sb.st_size;
    im.is_progress = !cli_get(&a, "no-progress") && isatty(STDERR_FILENO);

    if ((st = cli_open(g, cmd, true, false, &db)) != CLI_OK)
        goto done;
    im.db = db;
    im.start_us = clock_mono_us();
    while (im.fatal_rc == DM_OK && (n = getline(&line, &line_cap, fp)) >= 0) {
        line_no++;
        im.read_bytes += (uint64_t)n;
        size_t len = (size_t)n;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        import_line(&im, line, len, line_no);
        draw_bar(&im, false);
    }
    if (im.fatal_rc == DM_OK && ferror(fp)) {
        erase_bar(&im);
        st = cli_error(cmd, "cannot read %s after line %" PRIu64 ": %s", path,
                       line_no, strerror(errno));
    }
    if (im.fatal_rc == DM_OK)
        flush_batch(&im);
    for (size_t i = 0; i < im.n; i++)
        pending_fini(&im.pend[i]);
    im.n = 0;
    im.n_good = 0;
    draw_bar(&im, true);
    erase_bar(&im);
    secs = (double)(clock_mono_us() - im.start_us) / 1e6;
    sum_st = print_summary(cmd, &im, secs, a.is_json);
    if (st == CLI_OK)
        st = sum_st;
    if (im.fatal_rc != DM_OK && st == CLI_OK)
        st = CLI_FAILED;
    st = cli_close(cmd, db, st);

done:
    free(line);
    dm_free(im.pend);
    dm_free(im.ps);
    if (!is_stdin)
        fclose(fp);
    return cli_finish_output(cmd, st);
}

/* -------------------------------------------------------------- export */

static const cli_opt export_opts[] = {
    { "user", 'u', true },
    { "tenant", 0, true },
    { "output", 'o', true },
};

typedef struct export_ctx {
    FILE *out;
    uint64_t n;
    char err[512]; /* why the export stopped, "" if it did not */
} export_ctx;

static int export_one(void *arg, const dm_memory *m)
{
    export_ctx *x = arg;
    char why[256], id[DM_ID_STRLEN + 1];
    json_t *o = cli_memory_json(m, why, sizeof why);
    if (!o) {
        dm_id_format(&m->id, id);
        snprintf(x->err, sizeof x->err, "memory %s: %s", id, why);
        return 1;
    }
    char *s = cli_json_dumps(o);
    json_decref(o);
    if (!s) {
        snprintf(x->err, sizeof x->err, "out of memory");
        return 1;
    }
    fputs(s, x->out);
    free(s);
    if (fputc('\n', x->out) == EOF) {
        snprintf(x->err, sizeof x->err, "cannot write the output: %s",
                 strerror(errno));
        return 1;
    }
    x->n++;
    return 0;
}

int cli_cmd_export(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "export";
    cli_args a;
    int st = cli_parse(cmd, g, export_opts, N_OPTS(export_opts), argc, argv,
                       &a);
    if (st != CLI_OK)
        return st;
    if (a.is_help)
        return cli_print_help(cli_find_command(cmd));
    if (a.n_pos > 0)
        return cli_usage(cmd, "unexpected argument \"%s\"", a.pos[0]);
    const char *user = cli_get(&a, "user");
    const char *tenant = cli_get(&a, "tenant");
    const char *path = cli_get(&a, "output");
    if (user && !*user)
        return cli_usage(cmd, "--user must not be empty");

    dm_db *db = NULL;
    export_ctx x;
    memset(&x, 0, sizeof x);
    x.out = stdout;
    if ((st = cli_open(g, cmd, false, false, &db)) != CLI_OK)
        return st;
    if (path && !(x.out = fopen(path, "w"))) {
        st = cli_error(cmd, "cannot create %s: %s", path, strerror(errno));
        return cli_close(cmd, db, st);
    }
    int rc = dm_export(db, tenant, user, export_one, &x);
    if (rc == DM_ECANCELED && x.err[0])
        st = cli_error(cmd, "%s", x.err);
    else if (rc != DM_OK && rc != DM_ENOTFOUND)
        st = cli_fail(cmd, rc, "export failed after %" PRIu64 " memories", x.n);
    if (path) {
        if (fclose(x.out) != 0 && st == CLI_OK)
            st = cli_error(cmd, "cannot write %s: %s", path, strerror(errno));
        if (st == CLI_OK) {
            if (a.is_json) {
                st = cli_print_json(cmd, json_pack("{s:s, s:I}", "output",
                                                   path, "exported",
                                                   (json_int_t)x.n));
            } else {
                printf("exported %" PRIu64 " memor%s to %s\n", x.n,
                       x.n == 1 ? "y" : "ies", path);
            }
        }
    }
    st = cli_close(cmd, db, st);
    return cli_finish_output(cmd, st);
}
