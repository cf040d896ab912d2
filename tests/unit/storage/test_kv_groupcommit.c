/*
 * test_kv_groupcommit.c -- group commit under concurrent writers: writers
 * asking for KV_SYNC_ALWAYS share fsyncs, KV_SYNC_BATCH writers share the
 * periodic sync, every acknowledged write is there after a reopen, and
 * after a simulated power cut in the middle of the run every write that
 * was acknowledged as synced (ALWAYS or BATCH) survives.  Meant to pass
 * under ASan+UBSan and under ThreadSanitizer.
 *
 * Determinism: what is asserted does not depend on the schedule.  "Fewer
 * syncs than writes" holds for any interleaving of eight writers once a
 * sync takes long enough for others to queue behind it, so the engine is
 * given a VFS whose sync sleeps first (slow_vfs below, a stand-in for a
 * real disk even when the scratch directory is on tmpfs); the bounds are
 * loose (ALWAYS: fewer syncs than writes; BATCH: at most half).
 *
 * Each writer t writes its own keys "gTT-NNNNNNNN"; the value is derived
 * from (t, i), so a key read back is either absent or exactly right.
 *
 * Scale: DM_KV_GC_WRITES (puts per writer) overrides the defaults.
 */
// ctest-labels: concurrency
#include "testutil.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "os/vfs_fault.h"
#include "storage/kv.h"

#define N_WRITERS 8
#define KEY_LEN 12
#define VALUE_MAX 300

static void sleep_us(long us)
{
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    nanosleep(&ts, NULL);
}

static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void make_key(uint8_t *k, unsigned t, uint64_t i)
{
    char tmp[KEY_LEN + 1];
    snprintf(tmp, sizeof tmp, "g%02u-%08" PRIu64, t % 100u, i % 100000000u);
    memcpy(k, tmp, KEY_LEN);
}

static size_t make_value(uint8_t *v, unsigned t, uint64_t i)
{
    uint64_t h = mix64(((uint64_t)t << 48) ^ i ^ 0x6c6f6cull);
    size_t n = 16 + (size_t)(h % (VALUE_MAX - 16));
    make_key(v, t, i);
    for (size_t j = KEY_LEN; j < n; j++)
        v[j] = (uint8_t)(h >> (j % 56) ^ j);
    return n;
}

/* ------------------------------------------- a VFS with a slow sync */

/*
 * slow_vfs forwards every call to `base`; sync and sync_dir sleep
 * sync_us first and count completed calls.  File handles are the base
 * table's own.
 */
typedef struct slow_vfs {
    vfs v;
    vfs *base;
    long sync_us;
    _Atomic uint64_t n_syncs; /* completed successful syncs (files + dirs) */
} slow_vfs;

#define BASE(v) (((slow_vfs *)(v)->ctx)->base)

static int sw_open(vfs *v, const char *path, int flags, vfs_file **out)
{
    return BASE(v)->open(BASE(v), path, flags, out);
}
static int sw_close(vfs *v, vfs_file *f) { return BASE(v)->close(BASE(v), f); }
static int sw_pread(vfs *v, vfs_file *f, void *dst, size_t n, uint64_t off, size_t *nread)
{
    return BASE(v)->pread(BASE(v), f, dst, n, off, nread);
}
static int sw_append(vfs *v, vfs_file *f, const void *src, size_t n)
{
    return BASE(v)->append(BASE(v), f, src, n);
}
static int sw_sync(vfs *v, vfs_file *f)
{
    slow_vfs *s = v->ctx;
    sleep_us(s->sync_us);
    int rc = s->base->sync(s->base, f);
    if (!rc)
        atomic_fetch_add(&s->n_syncs, 1);
    return rc;
}
static int sw_truncate(vfs *v, vfs_file *f, uint64_t size)
{
    return BASE(v)->truncate(BASE(v), f, size);
}
static int sw_size(vfs *v, vfs_file *f, uint64_t *size) { return BASE(v)->size(BASE(v), f, size); }
static int sw_mmap(vfs *v, vfs_file *f, uint64_t len, const void **out)
{
    return BASE(v)->mmap(BASE(v), f, len, out);
}
static int sw_munmap(vfs *v, const void *p, uint64_t len) { return BASE(v)->munmap(BASE(v), p, len); }
static int sw_rename(vfs *v, const char *from, const char *to)
{
    return BASE(v)->rename(BASE(v), from, to);
}
static int sw_unlink(vfs *v, const char *path) { return BASE(v)->unlink(BASE(v), path); }
static int sw_sync_dir(vfs *v, const char *dir)
{
    slow_vfs *s = v->ctx;
    sleep_us(s->sync_us);
    int rc = s->base->sync_dir(s->base, dir);
    if (!rc)
        atomic_fetch_add(&s->n_syncs, 1);
    return rc;
}
static int sw_mkdir(vfs *v, const char *path) { return BASE(v)->mkdir(BASE(v), path); }
static int sw_list(vfs *v, const char *dir, char ***names, size_t *n)
{
    return BASE(v)->list(BASE(v), dir, names, n);
}
static int sw_file_size(vfs *v, const char *path, uint64_t *size)
{
    return BASE(v)->file_size(BASE(v), path, size);
}
static int sw_lock(vfs *v, const char *path, vfs_file **out) { return BASE(v)->lock(BASE(v), path, out); }
static int sw_unlock(vfs *v, vfs_file *f) { return BASE(v)->unlock(BASE(v), f); }

static void slow_vfs_init(slow_vfs *s, vfs *base, long sync_us)
{
    memset(s, 0, sizeof *s);
    s->base = base;
    s->sync_us = sync_us;
    atomic_store(&s->n_syncs, 0);
    s->v.name = "slow-sync";
    s->v.open = sw_open;
    s->v.close = sw_close;
    s->v.pread = sw_pread;
    s->v.append = sw_append;
    s->v.sync = sw_sync;
    s->v.truncate = sw_truncate;
    s->v.size = sw_size;
    s->v.mmap = sw_mmap;
    s->v.munmap = sw_munmap;
    s->v.rename = sw_rename;
    s->v.unlink = sw_unlink;
    s->v.sync_dir = sw_sync_dir;
    s->v.mkdir = sw_mkdir;
    s->v.list = sw_list;
    s->v.file_size = sw_file_size;
    s->v.lock = sw_lock;
    s->v.unlock = sw_unlock;
    s->v.ctx = s;
}

/* ---------------------------------------------------------- writers */

typedef struct run {
    kv_db *db;
    slow_vfs *sv;
    uint64_t n_writes;        /* per writer */
    int policy;               /* KV_SYNC_*, or -1: mixed per write */
    _Atomic uint64_t n_acked; /* over all writers */
    _Atomic int failed;
    char err[256];
    pthread_mutex_t err_mu;
} run;

typedef struct writer {
    run *r;
    unsigned t;
    uint64_t n_attempted;  /* writes started (the last may have failed) */
    uint8_t *acked;        /* acked[i]: write i returned DM_OK */
    bool stop_on_error;    /* power-cut runs: errors are expected */
    int first_error;
} writer;

static void run_fail(run *r, const char *msg, unsigned t, uint64_t i, int rc)
{
    pthread_mutex_lock(&r->err_mu);
    if (!atomic_load(&r->failed)) {
        snprintf(r->err, sizeof r->err, "writer %u, write %" PRIu64 ": %s (rc %d)", t, i,
                 msg, rc);
        atomic_store(&r->failed, 1);
    }
    pthread_mutex_unlock(&r->err_mu);
}

static int write_policy(const run *r, unsigned t, uint64_t i)
{
    if (r->policy >= 0)
        return r->policy;
    switch (mix64(((uint64_t)t << 40) ^ i ^ 0xabcdull) % 4) {
    case 0: return KV_SYNC_NONE;
    case 1: return KV_SYNC_BATCH;
    default: return KV_SYNC_ALWAYS;
    }
}

static void *writer_main(void *argp)
{
    writer *w = argp;
    run *r = w->r;
    uint8_t key[KEY_LEN], val[VALUE_MAX];
    for (uint64_t i = 0; i < r->n_writes && !atomic_load(&r->failed); i++) {
        int pol = write_policy(r, w->t, i);
        kv_write_options wo = { pol };
        make_key(key, w->t, i);
        size_t n = make_value(val, w->t, i);
        uint64_t syncs_before = atomic_load(&r->sv->n_syncs);
        w->n_attempted = i + 1;
        int rc = kv_put(r->db, &wo, buf_slice_of(key, KEY_LEN), buf_slice_of(val, n));
        if (rc) {
            w->first_error = rc;
            if (!w->stop_on_error)
                run_fail(r, "kv_put failed", w->t, i, rc);
            break;
        }
        /* acknowledgement rule: a synced write returns only after a sync
         * that began after the write was queued has completed */
        if (pol != KV_SYNC_NONE && atomic_load(&r->sv->n_syncs) == syncs_before) {
            run_fail(r, "synced write acknowledged without a sync", w->t, i, rc);
            break;
        }
        w->acked[i] = 1;
        atomic_fetch_add(&r->n_acked, 1);
    }
    return NULL;
}

static void start_writers(run *r, writer *ws, pthread_t *th, bool stop_on_error)
{
    for (unsigned t = 0; t < N_WRITERS; t++) {
        ws[t].r = r;
        ws[t].t = t;
        ws[t].n_attempted = 0;
        ws[t].first_error = DM_OK;
        ws[t].stop_on_error = stop_on_error;
        ws[t].acked = dm_calloc(r->n_writes, 1);
        assert_non_null(ws[t].acked);
        assert_int_equal(pthread_create(&th[t], NULL, writer_main, &ws[t]), 0);
    }
}

static void join_writers(writer *ws, pthread_t *th)
{
    for (unsigned t = 0; t < N_WRITERS; t++)
        pthread_join(th[t], NULL);
}

static void free_writers(writer *ws)
{
    for (unsigned t = 0; t < N_WRITERS; t++) {
        dm_free(ws[t].acked);
        ws[t].acked = NULL;
    }
}

/*
 * verify -- reads every key any writer may have written.  A key is either
 * absent or holds exactly its value; keys never attempted are absent;
 * keys whose write was acknowledged must be present when `must` says so
 * for that write's policy.
 */
static void verify(kv_db *db, const run *r, const writer *ws, bool (*must)(int policy))
{
    buf v;
    buf_init(&v);
    uint8_t key[KEY_LEN], want[VALUE_MAX];
    for (unsigned t = 0; t < N_WRITERS; t++) {
        for (uint64_t i = 0; i < r->n_writes; i++) {
            make_key(key, t, i);
            int rc = kv_get(db, NULL, buf_slice_of(key, KEY_LEN), &v);
            if (rc == DM_OK) {
                size_t n = make_value(want, t, i);
                if (i >= ws[t].n_attempted)
                    fail_msg("writer %u key %" PRIu64 " present but never written", t, i);
                if (v.len != n || memcmp(v.ptr, want, n) != 0)
                    fail_msg("writer %u key %" PRIu64 " has a wrong value", t, i);
            } else if (rc == DM_ENOTFOUND) {
                if (ws[t].acked[i] && must(write_policy(r, t, i)))
                    fail_msg("writer %u key %" PRIu64 " acknowledged (policy %d) but lost",
                             t, i, write_policy(r, t, i));
            } else {
                fail_msg("writer %u key %" PRIu64 ": kv_get failed with %d", t, i, rc);
            }
        }
    }
    buf_fini(&v);
}

static bool must_all(int policy) { (void)policy; return true; }
static bool must_synced(int policy) { return policy != KV_SYNC_NONE; }

static kv_options gc_opts(vfs *v)
{
    kv_options o = kv_options_default();
    o.vfs = v;
    o.write_buffer_size = 256 << 10;
    o.l0_compaction_trigger = 2;
    o.level1_max_bytes = 512 << 10;
    o.target_file_size = 128 << 10;
    return o;
}

static void run_init(run *r, uint64_t n_writes, int policy, slow_vfs *sv)
{
    memset(r, 0, sizeof *r);
    r->n_writes = n_writes;
    r->policy = policy;
    r->sv = sv;
    atomic_store(&r->n_acked, 0);
    atomic_store(&r->failed, 0);
    pthread_mutex_init(&r->err_mu, NULL);
}

/*
 * One clean run: 8 writers with `policy`, then stats, close, reopen and
 * check that every write is there.  Returns the stats taken before close.
 */
static kv_stats clean_run(const char *tag, int policy, int sync_interval_ms, uint64_t n_writes)
{
    const char *d = tu_tmpdir(tag);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", d);
    int64_t base = alloc_bytes_in_use();
    slow_vfs sv;
    slow_vfs_init(&sv, vfs_posix(), 500);
    kv_options o = gc_opts(&sv.v);
    o.sync_interval_ms = sync_interval_ms;
    run r;
    run_init(&r, n_writes, policy, &sv);
    assert_int_equal(kv_open(dir, &o, &r.db), DM_OK);
    kv_stats before;
    assert_int_equal(kv_stats_get(r.db, &before), DM_OK);

    writer ws[N_WRITERS];
    pthread_t th[N_WRITERS];
    start_writers(&r, ws, th, false);
    join_writers(ws, th);
    if (atomic_load(&r.failed))
        fail_msg("%s", r.err);

    kv_stats st;
    assert_int_equal(kv_stats_get(r.db, &st), DM_OK);
    st.n_syncs -= before.n_syncs;
    st.sync_us -= before.sync_us;
    for (int k = 0; k < KV_SYNC_BUCKETS; k++)
        st.sync_buckets[k] -= before.sync_buckets[k];
    st.n_writes -= before.n_writes;
    st.n_group_commits -= before.n_group_commits;
    print_message("%s: %" PRIu64 " writes, %" PRIu64 " group commits, %" PRIu64
                  " WAL syncs, %" PRIu64 " flushes\n", tag, st.n_writes,
                  st.n_group_commits, st.n_syncs, st.n_flushes);
    assert_int_equal(st.n_writes, N_WRITERS * n_writes);
    assert_int_equal(st.background_error, DM_OK);
    assert_int_equal(kv_close(r.db), DM_OK);

    /* reopen through the plain POSIX table */
    o.vfs = NULL;
    kv_db *db;
    assert_int_equal(kv_open(dir, &o, &db), DM_OK);
    verify(db, &r, ws, must_all);
    assert_int_equal(kv_close(db), DM_OK);
    free_writers(ws);
    pthread_mutex_destroy(&r.err_mu);
    assert_int_equal(alloc_bytes_in_use(), base);
    tu_rmrf(dir);
    return st;
}

static void test_always_shares_syncs(void **state)
{
    (void)state;
    uint64_t n = (uint64_t)tu_env_int("DM_KV_GC_WRITES", 250);
    kv_stats st = clean_run("kv_gc_always", KV_SYNC_ALWAYS, 10, n);
    /* every write needed a sync, yet writers shared them */
    assert_true(st.n_syncs >= 1);
    assert_true(st.n_syncs < st.n_writes);
    assert_true(st.n_syncs <= st.n_group_commits);
    assert_true(st.n_group_commits < st.n_writes);
    /* Each sync took over the 500 us the VFS sleeps: counted by duration
     * in the buckets above that bound, and in the total. */
    uint64_t counted = 0;
    for (int k = 0; k < KV_SYNC_BUCKETS; k++) {
        if (k < KV_SYNC_BUCKETS - 1 && kv_sync_bucket_us[k] <= 500)
            assert_int_equal(st.sync_buckets[k], 0);
        counted += st.sync_buckets[k];
    }
    assert_int_equal(counted, st.n_syncs);
    assert_true(st.sync_us >= 500 * st.n_syncs);
}

static void test_batch_interval(void **state)
{
    (void)state;
    uint64_t n = (uint64_t)tu_env_int("DM_KV_GC_WRITES", 250);
    kv_stats st = clean_run("kv_gc_batch", KV_SYNC_BATCH, 5, n);
    assert_true(st.n_syncs >= 1);
    assert_true(st.n_syncs * 2 <= st.n_writes);
}

static void test_mixed_policies(void **state)
{
    (void)state;
    uint64_t n = (uint64_t)tu_env_int("DM_KV_GC_WRITES", 250);
    kv_stats st = clean_run("kv_gc_mixed", -1, 3, n);
    assert_true(st.n_syncs < st.n_writes);
}

/*
 * Power cut in the middle: writers with mixed policies run until the
 * power goes; a separate thread cuts it once a share of the writes has
 * been acknowledged.  Then the engine is closed (it must not hang, and
 * must free everything even though every call fails), the crash is
 * applied (unsynced bytes dropped or torn, unsynced directory changes
 * undone), and the database reopened: every ALWAYS/BATCH write that was
 * acknowledged is there, nothing is there that was never written, and no
 * value is damaged.
 */
typedef struct cutter {
    run *r;
    vfs_fault *vf;
    uint64_t after_acked;
} cutter;

static void *cutter_main(void *argp)
{
    cutter *c = argp;
    while (atomic_load(&c->r->n_acked) < c->after_acked && !atomic_load(&c->r->failed))
        sleep_us(200);
    vfs_fault_crash_now(c->vf);
    return NULL;
}

static void power_cut_round(uint64_t seed, enum vfs_tear tear, uint64_t n_writes,
                            uint64_t cut_after)
{
    const char *d = tu_tmpdir("kv_gc_powercut");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", d);
    int64_t base = alloc_bytes_in_use();
    vfs_fault *vf;
    assert_int_equal(vfs_fault_new(vfs_posix(), seed, &vf), DM_OK);
    slow_vfs sv;
    slow_vfs_init(&sv, vfs_fault_vfs(vf), 300);
    kv_options o = gc_opts(&sv.v);
    o.write_buffer_size = 64 << 10; /* WAL switches and flushes mid-run */
    o.sync_interval_ms = 3;
    run r;
    run_init(&r, n_writes, -1, &sv);
    assert_int_equal(kv_open(dir, &o, &r.db), DM_OK);

    writer ws[N_WRITERS];
    pthread_t th[N_WRITERS], ct;
    cutter c = { &r, vf, cut_after };
    start_writers(&r, ws, th, true);
    assert_int_equal(pthread_create(&ct, NULL, cutter_main, &c), 0);
    join_writers(ws, th);
    pthread_join(ct, NULL);
    if (atomic_load(&r.failed))
        fail_msg("%s", r.err);
    assert_true(vfs_fault_crashed(vf));
    for (unsigned t = 0; t < N_WRITERS; t++) {
        if (ws[t].first_error != DM_OK && ws[t].first_error != DM_EIO)
            fail_msg("writer %u failed with %d after the power cut, want DM_EIO", t,
                     ws[t].first_error);
    }
    int rc = kv_close(r.db);
    assert_true(rc == DM_OK || rc == DM_EIO);
    assert_int_equal(vfs_fault_apply_crash(vf, tear), DM_OK);

    kv_db *db;
    rc = kv_open(dir, &o, &db);
    if (rc)
        fail_msg("reopen after power cut (seed %" PRIu64 ") failed with %d: %s", seed, rc,
                 err_last_msg());
    verify(db, &r, ws, must_synced);
    uint64_t acked = atomic_load(&r.n_acked);
    print_message("power cut seed %" PRIu64 ": %" PRIu64 " of %" PRIu64
                  " writes acknowledged before the cut\n",
                  seed, acked, (uint64_t)N_WRITERS * n_writes);
    /* the reopened database takes writes again */
    uint8_t key[KEY_LEN], val[VALUE_MAX];
    make_key(key, 0, 0);
    size_t n = make_value(val, 0, 0);
    kv_write_options wo = { KV_SYNC_ALWAYS };
    assert_int_equal(kv_put(db, &wo, buf_slice_of(key, KEY_LEN), buf_slice_of(val, n)), DM_OK);
    assert_int_equal(kv_close(db), DM_OK);
    free_writers(ws);
    pthread_mutex_destroy(&r.err_mu);
    vfs_fault_free(vf);
    assert_int_equal(alloc_bytes_in_use(), base);
    tu_rmrf(dir);
}

static void test_power_cut(void **state)
{
    (void)state;
    uint64_t n = (uint64_t)tu_env_int("DM_KV_GC_WRITES", 250) * 2;
    long rounds = tu_env_int("DM_KV_GC_CUTS", 3);
    for (long i = 0; i < rounds; i++) {
        enum vfs_tear tear = i % 3 == 0 ? VFS_TEAR_NONE
                             : i % 3 == 1 ? VFS_TEAR_PREFIX : VFS_TEAR_GARBAGE;
        /* cut after 1/4, 2/4, 3/4 of the writes were acknowledged */
        uint64_t cut = N_WRITERS * n * (uint64_t)(i % 3 + 1) / 4;
        power_cut_round(1000 + (uint64_t)i, tear, n, cut);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_always_shares_syncs),
        cmocka_unit_test(test_batch_interval),
        cmocka_unit_test(test_mixed_policies),
        cmocka_unit_test(test_power_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
