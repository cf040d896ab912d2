/*
 * test_cli.c -- the deltamemory command, run as a real process.
 *
 * The binary is $DM_BIN_DIR/tools/cli/deltamemory (CTest sets DM_BIN_DIR
 * to the build directory).  Each run has its stdout and stderr captured
 * into files and its exit status checked: check on a clean and on a
 * damaged database (built with the engine), stats, version, help
 * and the usage errors.
 */
#include "testutil.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "os/vfs.h"
#include "storage/filename.h"
#include "storage/kv.h"
#include "storage/sstable_format.h"

extern char **environ;

static char bin[FN_PATH_MAX];
static char scratch[1024];

typedef struct run_result {
    int status;     /* exit code, or -1 if killed by a signal */
    char *out;      /* captured stdout (dm_malloc, NUL-terminated) */
    char *err;      /* captured stderr */
} run_result;

static char *slurp(const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(vfs_read_all(vfs_posix(), path, &data, &len), DM_OK);
    char *s = dm_malloc(len + 1);
    assert_non_null(s);
    memcpy(s, data, len);
    s[len] = 0;
    dm_free(data);
    return s;
}

/* Runs the CLI with up to three arguments (NULL-terminated list). */
static run_result run(const char *a1, const char *a2, const char *a3)
{
    char out_path[FN_PATH_MAX], err_path[FN_PATH_MAX];
    snprintf(out_path, sizeof out_path, "%s/stdout", scratch);
    snprintf(err_path, sizeof err_path, "%s/stderr", scratch);
    char *argv[] = { bin, (char *)a1, (char *)a2, (char *)a3, NULL };

    posix_spawn_file_actions_t fa;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(
                         &fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644),
                     0);
    assert_int_equal(posix_spawn_file_actions_addopen(
                         &fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644),
                     0);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        fail_msg("cannot run %s: %s", bin, strerror(rc));
    int wst = 0;
    assert_int_equal(waitpid(pid, &wst, 0), pid);

    run_result r;
    r.status = WIFEXITED(wst) ? WEXITSTATUS(wst) : -1;
    r.out = slurp(out_path);
    r.err = slurp(err_path);
    return r;
}

static void run_free(run_result *r)
{
    dm_free(r->out);
    dm_free(r->err);
}

static void expect(const run_result *r, int status, const char *in_out,
                   const char *in_err)
{
    if (r->status != status || (in_out && !strstr(r->out, in_out)) ||
        (in_err && !strstr(r->err, in_err)))
        fail_msg("expected exit %d, stdout containing \"%s\", stderr "
                 "containing \"%s\"; got exit %d\n--- stdout:\n%s--- "
                 "stderr:\n%s", status, in_out ? in_out : "",
                 in_err ? in_err : "", r->status, r->out, r->err);
}

/* A database with two flushed tables and some unflushed writes. */
static void make_db(const char *dir)
{
    kv_db *db = NULL;
    kv_options opt = kv_options_default();
    opt.table.block_size = 512;
    /* Durability of each put does not matter here; kv_close keeps what
     * the WAL holds.  Without this every put would wait for a batch sync. */
    kv_write_options wo = { .sync = KV_SYNC_NONE };
    int rc = kv_open(dir, &opt, &db);
    if (rc)
        fail_msg("kv_open %s: %s: %s", dir, dm_errname(rc), err_last_msg());
    char key[32], val[64];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 200; i++) {
            snprintf(key, sizeof key, "key%05d", i * 3 + round);
            snprintf(val, sizeof val, "value %d of round %d", i, round);
            assert_int_equal(kv_put(db, &wo, buf_slice_of(key, strlen(key)),
                                    buf_slice_of(val, strlen(val))), DM_OK);
        }
        if (round < 2)
            assert_int_equal(kv_flush(db), DM_OK);
    }
    assert_int_equal(kv_close(db), DM_OK);
}

/* Number of the first live SSTable in dir (any .sst file). */
static uint64_t some_sst(const char *dir)
{
    char **names = NULL;
    size_t n = 0;
    uint64_t found = 0, num;
    assert_int_equal(vfs_posix()->list(vfs_posix(), dir, &names, &n), DM_OK);
    for (size_t i = 0; i < n; i++)
        if (fn_parse(names[i], &num) == FN_SST && (!found || num < found))
            found = num;
    vfs_list_free(names, n);
    assert_true(found > 0);
    return found;
}

static int setup(void **state)
{
    (void)state;
    const char *d = getenv("DM_BIN_DIR");
    if (!d || !*d) {
        print_error("DM_BIN_DIR is not set (run through ctest)\n");
        return -1;
    }
    snprintf(bin, sizeof bin, "%s/tools/cli/deltamemory", d);
    if (access(bin, X_OK) != 0) {
        print_error("%s: not built\n", bin);
        return -1;
    }
    snprintf(scratch, sizeof scratch, "%s", tu_tmpdir("cli"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmrf(scratch);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_version_help_usage(void **state)
{
    (void)state;
    run_result r = run("version", NULL, NULL);
    expect(&r, 0, "deltamemory " DM_VERSION_STRING "\n", NULL);
    run_free(&r);

    r = run("help", NULL, NULL);
    expect(&r, 0, "usage: deltamemory", NULL);
    assert_non_null(strstr(r.out, "check DIR"));
    assert_non_null(strstr(r.out, "stats DIR"));
    assert_non_null(strstr(r.out, "serve [DIR]"));
    run_free(&r);

    r = run(NULL, NULL, NULL);
    expect(&r, 2, NULL, "usage: deltamemory");
    assert_string_equal(r.out, "");
    run_free(&r);

    r = run("frobnicate", NULL, NULL);
    expect(&r, 2, NULL, "unknown command \"frobnicate\"");
    assert_non_null(strstr(r.err, "usage: deltamemory"));
    run_free(&r);

    r = run("check", NULL, NULL);
    expect(&r, 2, NULL, "check takes exactly one argument");
    run_free(&r);

    r = run("stats", "a", "b");
    expect(&r, 2, NULL, "stats takes exactly one argument");
    run_free(&r);
}

static void test_check_clean_and_damaged(void **state)
{
    (void)state;
    char dir[2048], line[FN_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/db1", scratch);
    make_db(dir);

    run_result r = run("check", dir, NULL);
    expect(&r, 0, " 0 problems\n", NULL);
    snprintf(line, sizeof line, "%s: clean\n", dir);
    assert_non_null(strstr(r.out, line));
    assert_non_null(strstr(r.out, " WAL records"));
    assert_null(strstr(r.out, " 0 SSTable entries"));
    run_free(&r);

    /* Damage a data block of one table. */
    uint64_t num = some_sst(dir);
    char path[FN_PATH_MAX];
    fn_make(path, dir, num, FN_SST);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, SST_HEADER_LEN + 20, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, SST_HEADER_LEN + 20, SEEK_SET);
    fputc(c ^ 0xff, fp);
    fclose(fp);

    r = run("check", dir, NULL);
    snprintf(line, sizeof line, "%s/%06llu.sst: offset ", dir,
             (unsigned long long)num);
    expect(&r, 1, line, NULL);
    snprintf(line, sizeof line, "%s: DAMAGED\n", dir);
    assert_non_null(strstr(r.out, line));
    assert_null(strstr(r.out, " 0 problems"));
    run_free(&r);
}

static void test_check_missing(void **state)
{
    (void)state;
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/does-not-exist", scratch);
    run_result r = run("check", dir, NULL);
    expect(&r, 2, NULL, "no database");
    run_free(&r);

    snprintf(dir, sizeof dir, "%s/empty", scratch);
    assert_int_equal(mkdir(dir, 0755), 0);
    r = run("check", dir, NULL);
    expect(&r, 2, NULL, "no database");
    run_free(&r);
}

static void test_stats(void **state)
{
    (void)state;
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/db2", scratch);
    make_db(dir);
    run_result r = run("stats", dir, NULL);
    expect(&r, 0, "last sequence number: 600\n", NULL);
    assert_non_null(strstr(r.out, "L0 "));
    assert_non_null(strstr(r.out, "L6 "));
    assert_non_null(strstr(r.out, "memtable bytes: "));
    /* The third round was never flushed: recovery replays it. */
    assert_non_null(strstr(r.out, "recovery: 200 records replayed"));
    run_free(&r);

    snprintf(dir, sizeof dir, "%s/db-missing", scratch);
    r = run("stats", dir, NULL);
    expect(&r, 2, NULL, "DM_ENOTFOUND");
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_help_usage),
        cmocka_unit_test(test_check_clean_and_damaged),
        cmocka_unit_test(test_check_missing),
        cmocka_unit_test(test_stats),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
