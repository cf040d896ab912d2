/*
 * test_kill9.c -- real process crashes.
 *
 * A child process writes with KV_SYNC_ALWAYS (single puts and atomic
 * batches, with small memtables so that flushes and compactions are running
 * when it dies) and appends the index of every acknowledged write to a side
 * file outside the database.  The parent SIGKILLs it at a random moment,
 * reopens the database and checks:
 *   - every acknowledged write is present with its exact value;
 *   - nothing appears that was never written (no key past the last write
 *     the child had started);
 *   - every batch is all-or-nothing;
 *   - `kv_check` finds nothing damaged.
 * Then the next child continues from there.  DM_KILL9_ROUNDS sets the
 * number of kills (default 60).
 */
// ctest-labels: crash
// ctest-timeout: 900
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storage/kv.h"

#define BATCH 5

static kv_options opts(void)
{
    kv_options o = kv_options_default();
    o.sync = KV_SYNC_ALWAYS;
    o.write_buffer_size = 32 << 10;
    o.level1_max_bytes = 128 << 10;
    o.target_file_size = 32 << 10;
    o.l0_compaction_trigger = 2;
    return o;
}

static void key_of(char *k, uint64_t i)
{
    snprintf(k, 32, "key%012llu", (unsigned long long)i);
}

/* Write i's value: deterministic from i, 60..260 bytes. */
static size_t value_of(char *v, uint64_t i)
{
    size_t n = 60 + (size_t)((i * 2654435761u) % 200);
    for (size_t j = 0; j < n; j++)
        v[j] = (char)('a' + (i + j * 7) % 26);
    return n;
}

/* Child: writes from index `start` on until killed.  Every 4th step is a
 * batch of BATCH consecutive indexes; the side file gets the highest index
 * of each acknowledged write, as a fixed 8-byte record. */
static void child(const char *dir, const char *side, uint64_t start)
{
    kv_options o = opts();
    kv_db *db;
    if (kv_open(dir, &o, &db) != DM_OK)
        _exit(3);
    int fd = open(side, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0)
        _exit(4);
    kv_batch *b = kv_batch_new();
    char k[32], v[300];
    for (uint64_t i = start;;) {
        uint64_t last;
        if (i % 4 == 0) {
            kv_batch_clear(b);
            for (int j = 0; j < BATCH; j++) {
                key_of(k, i + (uint64_t)j);
                size_t n = value_of(v, i + (uint64_t)j);
                kv_batch_put(b, buf_slice_of(k, strlen(k)), buf_slice_of(v, n));
            }
            if (kv_write(db, NULL, b) != DM_OK)
                _exit(5);
            last = i + BATCH - 1;
        } else {
            key_of(k, i);
            size_t n = value_of(v, i);
            if (kv_put(db, NULL, buf_slice_of(k, strlen(k)), buf_slice_of(v, n)) != DM_OK)
                _exit(5);
            last = i;
        }
        if (write(fd, &last, sizeof last) != (ssize_t)sizeof last)
            _exit(6);
        i = last + 1;
    }
}

static uint64_t read_acked(const char *side, bool *has_any)
{
    int fd = open(side, O_RDONLY);
    *has_any = false;
    if (fd < 0)
        return 0;
    uint64_t last = 0, x;
    while (read(fd, &x, sizeof x) == (ssize_t)sizeof x) {
        last = x;
        *has_any = true;
    }
    close(fd);
    return last;
}

static void on_problem(void *arg, const char *file, uint64_t off, const char *reason)
{
    (void)arg;
    fprintf(stderr, "check: %s: offset %llu: %s\n", file, (unsigned long long)off, reason);
}

/* verify -- returns the index the next child starts from. */
static uint64_t verify(const char *dir, const char *side, int round)
{
    bool has_any;
    uint64_t acked = read_acked(side, &has_any);
    kv_options o = opts();
    kv_db *db;
    int rc = kv_open(dir, &o, &db);
    if (rc)
        fail_msg("round %d: reopen failed: %s", round, dm_errname(rc));
    iter *it;
    assert_int_equal(kv_iter_new(db, NULL, &it), DM_OK);
    uint64_t expect = 0, n = 0;
    char k[32], v[300];
    for (iter_seek_first(it); iter_valid(it); iter_next(it)) {
        key_of(k, expect);
        buf_slice key = iter_key(it);
        if (key.len != strlen(k) || memcmp(key.ptr, k, key.len))
            fail_msg("round %d: key %llu missing or out of order (found %.*s)", round,
                     (unsigned long long)expect, (int)key.len, (const char *)key.ptr);
        size_t vn = value_of(v, expect);
        if (iter_value(it).len != vn || memcmp(iter_value(it).ptr, v, vn))
            fail_msg("round %d: key %llu has a wrong value", round,
                     (unsigned long long)expect);
        expect++;
        n++;
    }
    assert_int_equal(iter_status(it), DM_OK);
    iter_free(it);
    /* everything acknowledged is there; keys form a prefix 0..n-1 */
    if (has_any && n < acked + 1)
        fail_msg("round %d: %llu keys present but %llu acknowledged", round,
                 (unsigned long long)n, (unsigned long long)acked + 1);
    /* nothing beyond the one write in flight (a batch at most) */
    if (n > (has_any ? acked + 1 : 0) + BATCH)
        fail_msg("round %d: %llu keys present, only %llu acknowledged", round,
                 (unsigned long long)n, (unsigned long long)acked + 1);
    /* batches are atomic: replay the child's step sequence from 0 */
    for (uint64_t i = 0; i < n;) {
        uint64_t end = i % 4 == 0 ? i + BATCH : i + 1;
        if (end > n)
            fail_msg("round %d: batch %llu..%llu is partial (%llu keys)", round,
                     (unsigned long long)i, (unsigned long long)end - 1,
                     (unsigned long long)n);
        i = end;
    }
    assert_int_equal(kv_close(db), DM_OK);
    kv_check_stats cs;
    rc = kv_check(dir, NULL, on_problem, NULL, &cs);
    if (rc)
        fail_msg("round %d: check found damage: %s", round, dm_errname(rc));
    /* the side file may trail the database by the write in flight; the
     * next child continues after what is present */
    int fd = open(side, O_WRONLY | O_TRUNC | O_CREAT, 0644);
    assert_true(fd >= 0);
    if (n) {
        uint64_t last = n - 1;
        assert_int_equal(write(fd, &last, sizeof last), (ssize_t)sizeof last);
    }
    close(fd);
    return n;
}

static void test_kill9(void **state)
{
    (void)state;
    const char *tmp = tu_tmpdir("kill9");
    char dir[4096], side[4096];
    snprintf(dir, sizeof dir, "%s/db", tmp);
    snprintf(side, sizeof side, "%s/acked", tmp);
    long rounds = tu_env_int("DM_KILL9_ROUNDS", 60);
    tu_rng r;
    tu_rng_seed(&r, (uint64_t)tu_env_int("DM_KILL9_SEED", 9));
    uint64_t next = 0;
    for (long round = 0; round < rounds; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            child(dir, side, next);
        /* let it run 5..80 ms, then pull the plug */
        struct timespec ts = { 0, (long)(5 + tu_randn(&r, 75)) * 1000000L };
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status))
            fail_msg("round %ld: child exited early with status %d", round,
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        next = verify(dir, side, (int)round);
    }
    assert_true(next > 0);
    tu_rmrf(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_kill9) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
