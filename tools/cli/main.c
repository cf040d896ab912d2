/*
 * main.c -- the deltamemory command.
 *
 *   deltamemory serve [DIR]   open (creating) the database, report what
 *                             recovery found; the HTTP/MCP server comes in
 *                             a later version, so this exits after closing
 *   deltamemory check DIR     offline verification (kv_check), read-only
 *   deltamemory stats DIR     open the database and print kv_stats
 *   deltamemory version | help
 *
 * Exit status: 0 success (for check: the database is clean); 1 the
 * database is damaged or an operation failed; 2 usage error or no
 * database at DIR.  Reports go to stdout, errors and usage to stderr.
 *
 * Each subcommand is a small function taking the remaining arguments; all
 * engine calls go through src/storage/kv.h, so this file holds no format
 * knowledge of its own.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "deltamemory.h"
#include "storage/kv.h"

#define EXIT_CLEAN 0
#define EXIT_DAMAGED 1
#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: deltamemory <command> [arguments]\n"
    "\n"
    "commands:\n"
    "  serve [DIR]   open (creating if needed) the database in DIR (default\n"
    "                ./data), report what recovery found and the level\n"
    "                statistics, then close it (the HTTP server is not part\n"
    "                of this version yet)\n"
    "  check DIR     verify every file of the database in DIR without\n"
    "                opening it for writing; prints each problem as\n"
    "                DIR/FILE: offset N: reason\n"
    "  stats DIR     open the database in DIR and print its statistics\n"
    "  version       print the version\n"
    "  help          print this text\n"
    "\n"
    "exit status: 0 success (check: clean), 1 damaged or failed,\n"
    "             2 usage error or no database at DIR\n";

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "deltamemory: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n%s", usage_text);
    return EXIT_USAGE;
}

/* Prints "deltamemory CMD: DIR: what: DM_EXXX (detail)" and picks the exit
 * status: a missing database is a usage-level error. */
static int fail_with(const char *cmd, const char *dir, const char *what, int rc)
{
    const char *msg = err_last_msg();
    fprintf(stderr, "deltamemory %s: %s: %s: %s (%s)%s%s\n", cmd, dir, what,
            dm_errname(rc), dm_strerror(rc), *msg ? ": " : "", msg);
    return rc == DM_ENOTFOUND ? EXIT_USAGE : EXIT_DAMAGED;
}

/* ---------------------------------------------------------------- check */

typedef struct check_print {
    const char *dir;
} check_print;

static void print_problem(void *arg, const char *file, uint64_t off,
                          const char *reason)
{
    const check_print *cp = arg;
    printf("%s/%s: offset %" PRIu64 ": %s\n", cp->dir, file, off, reason);
}

static int cmd_check(int argc, char **argv)
{
    if (argc != 1)
        return usage_error("check takes exactly one argument: %s",
                           "the database directory");
    const char *dir = argv[0];
    check_print cp = { dir };
    kv_check_stats st;
    int rc = kv_check(dir, NULL, print_problem, &cp, &st);
    fflush(stdout);
    if (rc == DM_ENOTFOUND) {
        fprintf(stderr, "deltamemory check: %s\n", err_last_msg());
        return EXIT_USAGE;
    }
    printf("%s: %" PRIu64 " files checked, %" PRIu64 " SSTable entries, %"
           PRIu64 " WAL records, %" PRIu64 " problem%s\n", dir,
           st.files_checked, st.sst_entries, st.wal_records, st.problems,
           st.problems == 1 ? "" : "s");
    if (rc == DM_OK) {
        printf("%s: clean\n", dir);
        return EXIT_CLEAN;
    }
    if (rc == DM_ECORRUPT) {
        printf("%s: DAMAGED\n", dir);
        return EXIT_DAMAGED;
    }
    fflush(stdout);
    return fail_with("check", dir, "check failed", rc);
}

/* ---------------------------------------------------------------- stats */

static void print_levels(const kv_stats *s)
{
    uint64_t files = 0, bytes = 0;
    printf("%-5s %10s %16s\n", "level", "files", "bytes");
    for (int l = 0; l < KV_MAX_LEVELS; l++) {
        printf("L%-4d %10" PRIu64 " %16" PRIu64 "\n", l, s->levels[l].files,
               s->levels[l].bytes);
        files += s->levels[l].files;
        bytes += s->levels[l].bytes;
    }
    printf("%-5s %10" PRIu64 " %16" PRIu64 "\n", "total", files, bytes);
}

static void print_recovery(const kv_stats *s)
{
    printf("recovery: %" PRIu64 " records replayed from %" PRIu64
           " WAL file%s, %" PRIu64 " damaged region%s (%" PRIu64
           " bytes) skipped, %" PRIu64 " torn-tail bytes dropped, %.3f ms\n",
           s->recovered_records, s->recovered_wal_files,
           s->recovered_wal_files == 1 ? "" : "s", s->recovery_damaged,
           s->recovery_damaged == 1 ? "" : "s", s->recovery_damaged_bytes,
           s->recovery_tail_bytes, (double)s->recovery_us / 1000.0);
}

/* Opens dir, prints what recovery found and the levels, closes.  For
 * `stats` (is_create false) also the memtable and counters. */
static int open_and_report(const char *cmd, const char *dir, bool is_create)
{
    kv_options opt = kv_options_default();
    opt.create_if_missing = is_create;
    kv_db *db = NULL;
    kv_stats s;
    int rc = kv_open(dir, &opt, &db);
    if (rc)
        return fail_with(cmd, dir, "cannot open the database", rc);
    if ((rc = kv_stats_get(db, &s))) {
        int exit_code = fail_with(cmd, dir, "cannot read statistics", rc);
        kv_close(db);
        return exit_code;
    }
    printf("database: %s\n", dir);
    print_recovery(&s);
    print_levels(&s);
    if (!is_create) {
        printf("memtable bytes: %" PRIu64 " (%" PRIu64 " immutable "
               "memtable%s waiting for flush)\n", s.memtable_bytes,
               s.n_immutable, s.n_immutable == 1 ? "" : "s");
    }
    printf("last sequence number: %" PRIu64 "\n", s.last_seq);
    if (s.background_error)
        printf("background error: %s\n", dm_errname(s.background_error));
    if ((rc = kv_close(db)))
        return fail_with(cmd, dir, "close reported an error", rc);
    return EXIT_CLEAN;
}

static int cmd_stats(int argc, char **argv)
{
    if (argc != 1)
        return usage_error("stats takes exactly one argument: %s",
                           "the database directory");
    return open_and_report("stats", argv[0], false);
}

static int cmd_serve(int argc, char **argv)
{
    if (argc > 1)
        return usage_error("serve takes at most one argument: %s",
                           "the database directory");
    const char *dir = argc == 1 ? argv[0] : "./data";
    int rc = open_and_report("serve", dir, true);
    if (rc == EXIT_CLEAN)
        printf("deltamemory %s: storage engine ready at %s; the HTTP server "
               "is not part of this version yet\n", dm_version(), dir);
    return rc;
}

/* ----------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    int n = argc - 2;
    char **rest = argv + 2;
    if (!strcmp(cmd, "check"))
        return cmd_check(n, rest);
    if (!strcmp(cmd, "stats"))
        return cmd_stats(n, rest);
    if (!strcmp(cmd, "serve"))
        return cmd_serve(n, rest);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("deltamemory %s\n", dm_version());
        return EXIT_CLEAN;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        fputs(usage_text, stdout);
        return EXIT_CLEAN;
    }
    return usage_error("unknown command \"%s\"", cmd);
}
