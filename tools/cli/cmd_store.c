/*
 * cmd_store.c -- the deltamemory commands about the database as a whole:
 *
 *   check [DIR]   offline verification (kv_check), read-only
 *   stats [DIR]   storage statistics (kv_stats) and the memory engine's
 *                 (dm_stats_get)
 *   serve [DIR]   open (creating) the database and report what recovery
 *                 found; the HTTP server comes in a later version
 *
 * DIR defaults to the global --data.  The storage figures come from
 * src/storage/kv.h directly, so that check and stats work on any database
 * directory, including one whose memory engine cannot be opened (no model
 * file) or one that holds no memories at all.  stats opens the storage
 * engine first, reads its figures and closes it, and only then opens the
 * memory engine: the two hold the same lock.  The memory engine is opened
 * only when the database has the engine's metadata record (keys.h,
 * KEY_META), because opening it on a bare storage database would write
 * that record.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "engine/keys.h"
#include "storage/iter.h"
#include "storage/kv.h"

/* ---------------------------------------------------------------- check */

typedef struct check_print {
    const char *dir;
    json_t *problems; /* --json: the array being filled; NULL otherwise */
    bool is_oom;
} check_print;

static void on_problem(void *arg, const char *file, uint64_t off,
                       const char *reason)
{
    check_print *cp = arg;
    if (!cp->problems) {
        printf("%s/%s: offset %" PRIu64 ": %s\n", cp->dir, file, off, reason);
        return;
    }
    json_t *o = json_pack("{s:s, s:I, s:s}", "file", file, "offset",
                          (json_int_t)off, "reason", reason);
    if (!o || json_array_append_new(cp->problems, o) != 0)
        cp->is_oom = true;
}

/* The directory a storage command works on: its argument, or --data. */
static int pick_dir(const char *cmd, const cli_globals *g, const cli_args *a,
                    bool is_data_default_ok, const char **out)
{
    if (a->n_pos > 1 || (a->n_pos == 0 && !g->has_data && !is_data_default_ok))
        return cli_usage(cmd, "%s takes exactly one argument: the database "
                         "directory (or give --data DIR)", cmd);
    *out = a->n_pos == 1 ? a->pos[0] : g->data_dir;
    return CLI_OK;
}

int cli_cmd_check(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "check";
    cli_args a;
    const char *dir = NULL;
    int st = cli_parse(cmd, g, NULL, 0, argc, argv, &a);
    if (st != CLI_OK)
        return st;
    if (a.is_help)
        return cli_print_help(cli_find_command(cmd));
    /* No silent default here: checking ./data by accident would report on
     * the wrong database. */
    if ((st = pick_dir(cmd, g, &a, false, &dir)) != CLI_OK)
        return st;

    check_print cp = { dir, NULL, false };
    if (a.is_json && !(cp.problems = json_array()))
        return cli_error(cmd, "out of memory");
    kv_check_stats cs;
    memset(&cs, 0, sizeof cs);
    int rc = kv_check(dir, NULL, on_problem, &cp, &cs);
    if (rc == DM_ENOTFOUND) {
        json_decref(cp.problems);
        cli_fail(cmd, rc, "%s", dir);
        return CLI_USAGE;
    }
    if (rc != DM_OK && rc != DM_ECORRUPT) {
        json_decref(cp.problems);
        fflush(stdout);
        return cli_fail(cmd, rc, "%s: check failed", dir);
    }
    if (a.is_json) {
        json_t *o = json_pack("{s:s, s:b, s:I, s:I, s:I, s:o}", "database", dir,
                              "clean", rc == DM_OK, "files_checked",
                              (json_int_t)cs.files_checked, "sst_entries",
                              (json_int_t)cs.sst_entries, "wal_records",
                              (json_int_t)cs.wal_records, "problems",
                              cp.problems);
        if (cp.is_oom) {
            json_decref(o);
            o = NULL;
        }
        st = cli_print_json(cmd, o);
    } else {
        printf("%s: %" PRIu64 " files checked, %" PRIu64 " SSTable entries, %"
               PRIu64 " WAL records, %" PRIu64 " problem%s\n", dir,
               cs.files_checked, cs.sst_entries, cs.wal_records, cs.problems,
               cs.problems == 1 ? "" : "s");
        printf("%s: %s\n", dir, rc == DM_OK ? "clean" : "DAMAGED");
    }
    st = cli_finish_output(cmd, st);
    if (st == CLI_OK && rc != DM_OK)
        st = CLI_FAILED;
    return st;
}

/* ----------------------------------------------------- storage figures */

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

static void print_storage_text(const char *dir, const kv_stats *s,
                               bool is_full)
{
    printf("database: %s\n", dir);
    print_recovery(s);
    print_levels(s);
    if (is_full) {
        printf("memtable bytes: %" PRIu64 " (%" PRIu64 " immutable "
               "memtable%s waiting for flush)\n", s->memtable_bytes,
               s->n_immutable, s->n_immutable == 1 ? "" : "s");
    }
    printf("last sequence number: %" PRIu64 "\n", s->last_seq);
    if (s->background_error)
        printf("background error: %s\n", dm_errname(s->background_error));
}

static json_t *storage_json(const kv_stats *s)
{
    json_t *levels = json_array();
    for (int l = 0; levels && l < KV_MAX_LEVELS; l++) {
        json_t *o = json_pack("{s:i, s:I, s:I}", "level", l, "files",
                              (json_int_t)s->levels[l].files, "bytes",
                              (json_int_t)s->levels[l].bytes);
        if (!o || json_array_append_new(levels, o) != 0) {
            json_decref(levels);
            return NULL;
        }
    }
    json_t *rec = json_pack("{s:I, s:I, s:I, s:I, s:I, s:f}", "records",
                            (json_int_t)s->recovered_records, "wal_files",
                            (json_int_t)s->recovered_wal_files,
                            "damaged_regions", (json_int_t)s->recovery_damaged,
                            "damaged_bytes",
                            (json_int_t)s->recovery_damaged_bytes,
                            "torn_tail_bytes",
                            (json_int_t)s->recovery_tail_bytes, "ms",
                            (double)s->recovery_us / 1000.0);
    return json_pack("{s:o, s:o, s:I, s:I, s:I, s:f, s:s?}", "recovery", rec,
                     "levels", levels, "memtable_bytes",
                     (json_int_t)s->memtable_bytes, "immutable_memtables",
                     (json_int_t)s->n_immutable, "last_seq",
                     (json_int_t)s->last_seq, "write_amplification",
                     s->write_amplification, "background_error",
                     s->background_error ? dm_errname(s->background_error)
                                         : NULL);
}

/* True when the database holds the memory engine's metadata record. */
static int has_memory_engine(kv_db *db, bool *out)
{
    iter *it = NULL;
    *out = false;
    int rc = kv_iter_new(db, NULL, &it);
    if (rc != DM_OK)
        return rc;
    uint8_t k = KEY_META;
    iter_seek(it, buf_slice_of(&k, 1));
    if (iter_valid(it)) {
        buf_slice key = iter_key(it);
        *out = key.len > 0 && key.ptr[0] == KEY_META;
    }
    rc = iter_status(it);
    iter_free(it);
    return rc;
}

/* Opens the storage engine at dir, reads its figures and whether the
 * memory engine has been there, closes it.  Returns the exit status. */
static int read_storage(const char *cmd, const char *dir, bool is_create,
                        kv_stats *s, bool *has_memory)
{
    kv_options opt = kv_options_default();
    opt.create_if_missing = is_create;
    kv_db *db = NULL;
    int rc = kv_open(dir, &opt, &db);
    if (rc != DM_OK) {
        cli_fail(cmd, rc, "cannot open the database at %s", dir);
        return rc == DM_ENOTFOUND ? CLI_USAGE : CLI_FAILED;
    }
    if ((rc = kv_stats_get(db, s)) != DM_OK) {
        cli_fail(cmd, rc, "%s: cannot read the statistics", dir);
        kv_close(db);
        return CLI_FAILED;
    }
    if (has_memory && (rc = has_memory_engine(db, has_memory)) != DM_OK) {
        cli_fail(cmd, rc, "%s: cannot read the database", dir);
        kv_close(db);
        return CLI_FAILED;
    }
    if ((rc = kv_close(db)) != DM_OK)
        return cli_fail(cmd, rc, "%s: close reported an error", dir);
    return CLI_OK;
}

/* ---------------------------------------------------------------- stats */

static void print_memory_text(const dm_stats *m)
{
    printf("memories: %" PRIu64 " of %" PRIu64 " user%s\n", m->n_memories,
           m->n_users, m->n_users == 1 ? "" : "s");
    printf("embedding model: %s (dim %u)\n", m->model, (unsigned)m->dim);
    printf("loaded users: %" PRIu64 " (%" PRIu64 " with a graph index), "
           "index bytes: %" PRIu64 "\n", m->n_loaded_users, m->n_graph_users,
           m->index_bytes);
    printf("disk bytes: %" PRIu64 ", memtable bytes: %" PRIu64
           ", WAL bytes: %" PRIu64 "\n", m->disk_bytes, m->memtable_bytes,
           m->wal_bytes);
    printf("index checkpoints written: %" PRIu64 ", index log entries "
           "replayed: %" PRIu64 "\n", m->n_checkpoints, m->n_replayed);
    printf("turns waiting for extraction: %" PRIu64 "\n", m->extract_queued);
}

static json_t *memory_json(const dm_stats *m)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
                     "s:I, s:s, s:i}",
                     "users", (json_int_t)m->n_users,
                     "memories", (json_int_t)m->n_memories,
                     "loaded_users", (json_int_t)m->n_loaded_users,
                     "graph_users", (json_int_t)m->n_graph_users,
                     "index_bytes", (json_int_t)m->index_bytes,
                     "disk_bytes", (json_int_t)m->disk_bytes,
                     "memtable_bytes", (json_int_t)m->memtable_bytes,
                     "wal_bytes", (json_int_t)m->wal_bytes,
                     "checkpoints", (json_int_t)m->n_checkpoints,
                     "replayed", (json_int_t)m->n_replayed,
                     "extract_queued", (json_int_t)m->extract_queued,
                     "model", m->model, "dim", (int)m->dim);
}

int cli_cmd_stats(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "stats";
    cli_args a;
    const char *dir = NULL;
    int st = cli_parse(cmd, g, NULL, 0, argc, argv, &a);
    if (st != CLI_OK)
        return st;
    if (a.is_help)
        return cli_print_help(cli_find_command(cmd));
    if ((st = pick_dir(cmd, g, &a, true, &dir)) != CLI_OK)
        return st;

    kv_stats ks;
    bool has_memory = false;
    if ((st = read_storage(cmd, dir, false, &ks, &has_memory)) != CLI_OK)
        return st;
    dm_stats ms;
    if (has_memory) {
        cli_globals g2 = *g;
        g2.data_dir = dir;
        dm_db *db = NULL;
        if ((st = cli_open(&g2, cmd, false, false, &db)) != CLI_OK)
            return st;
        int rc = dm_stats_get(db, &ms);
        if (rc != DM_OK)
            st = cli_fail(cmd, rc, "%s: cannot read the memory statistics",
                          dir);
        if ((st = cli_close(cmd, db, st)) != CLI_OK)
            return st;
    }
    if (a.is_json) {
        st = cli_print_json(cmd, json_pack("{s:s, s:o, s:o?}", "database", dir,
                                           "storage", storage_json(&ks),
                                           "memory", has_memory
                                               ? memory_json(&ms) : NULL));
    } else {
        print_storage_text(dir, &ks, true);
        if (has_memory)
            print_memory_text(&ms);
        else
            printf("memories: none (no memory engine records in this "
                   "database)\n");
    }
    return cli_finish_output(cmd, st);
}

/* ---------------------------------------------------------------- serve */
