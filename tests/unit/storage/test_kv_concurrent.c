/*
 * test_kv_concurrent.c -- the storage engine under concurrent use: writers,
 * point readers, snapshot readers, iterators, and manual flushes and
 * compactions all at once, with a memtable small enough that flushes and
 * compactions run continuously in the background.  Meant to pass under
 * ASan+UBSan and under ThreadSanitizer.
 *
 * WHAT IS ASSERTED IS DETERMINISTIC, THE SCHEDULE IS NOT.  Every writer t
 * owns the keys "wTT-NNNNNNNN" and walks a schedule fixed by a seed: at
 * step i it writes key i (generations 0..g, the last one stays), and may
 * delete or rewrite key i-BACK_DIST.  After step i returns it publishes
 * progress[t] = i+1 with release order.  So for a key j < p (p read
 * before the read started) the set of allowed answers is known exactly:
 *   - the state after step j ("s1"), or
 *   - the state after step j+BACK_DIST ("s2"), which is the only allowed
 *     answer once j+BACK_DIST < p.
 * A write may become visible before its kv_write returns, hence "either"
 * in the window.  Keys at or beyond p may hold anything well-formed.  A
 * value encodes its key and generation and a filler derived from both, so
 * any entry a reader meets can be checked on its own.
 *
 * Threads never call cmocka: they record the first failure in g_err and
 * stop; the main thread asserts after joining.
 *
 * Scale: DM_KV_CONC_STEPS (steps per writer) overrides the default, which
 * is chosen to finish well inside a minute under TSan on two cores.
 */
// ctest-labels: concurrency
#include "testutil.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "storage/kv.h"

#define N_WRITERS 8
#define N_READERS 3
#define BACK_DIST 37   /* step i also touches key i - BACK_DIST */
#define KEY_LEN 12     /* "wTT-NNNNNNNN" */
#define GEN_REWRITE 7  /* generation written by a back rewrite */
#define FILLER_MAX 160
#define VALUE_MAX (KEY_LEN + 4 + FILLER_MAX)
#define ABSENT (-1)

enum { BACK_NONE, BACK_DELETE, BACK_REWRITE };

static const uint64_t g_seed = 0x5eedc0ffee0ddull;
static uint64_t g_steps;  /* steps per writer */
static kv_db *g_db;
static _Atomic uint64_t g_progress[N_WRITERS];
static _Atomic int g_writers_left;
static _Atomic int g_failed;
static pthread_mutex_t g_err_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_err[1024];

/* counters for the report (relaxed; only read after joining) */
static _Atomic uint64_t n_gets, n_iter_entries, n_snap_rounds, n_maint_ops;

static void failf(const char *fmt, ...)
{
    pthread_mutex_lock(&g_err_mu);
    if (!atomic_load(&g_failed)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g_err, sizeof g_err, fmt, ap);
        va_end(ap);
        atomic_store(&g_failed, 1);
    }
    pthread_mutex_unlock(&g_err_mu);
}

static bool failed(void) { return atomic_load_explicit(&g_failed, memory_order_relaxed); }

static void sleep_us(long us)
{
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------- the schedule */

static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t step_hash(unsigned t, uint64_t i)
{
    return mix64(g_seed ^ ((uint64_t)t << 48) ^ i);
}

/* the generation key i keeps after step i (generations 0..g written) */
static int step_gen(unsigned t, uint64_t i) { return (int)(step_hash(t, i) % 3); }

/* what step i does to key i - BACK_DIST */
static int step_back(unsigned t, uint64_t i)
{
    if (i < BACK_DIST || i >= g_steps)
        return BACK_NONE;
    switch ((step_hash(t, i) >> 8) % 4) {
    case 1: return BACK_DELETE;
    case 2: return BACK_REWRITE;
    default: return BACK_NONE;
    }
}

static bool step_is_batch(unsigned t, uint64_t i) { return (step_hash(t, i) >> 16) % 3 == 0; }

/* sync policy of step i: mostly none, some batch, a few always, a few
 * "database default" (-1, which is none in these options) */
static int step_sync(unsigned t, uint64_t i)
{
    unsigned r = (unsigned)((step_hash(t, i) >> 24) % 64);
    if (r == 0)
        return KV_SYNC_ALWAYS;
    if (r <= 4)
        return KV_SYNC_BATCH;
    if (r == 5)
        return -1;
    return KV_SYNC_NONE;
}

static int state_s1(unsigned t, uint64_t j) { return step_gen(t, j); }

static int state_s2(unsigned t, uint64_t j)
{
    switch (step_back(t, j + BACK_DIST)) {
    case BACK_DELETE: return ABSENT;
    case BACK_REWRITE: return GEN_REWRITE;
    default: return state_s1(t, j);
    }
}

/* state_ok -- may key j of writer t be in state `got` for a reader that
 * read progress p before it started? */
static bool state_ok(unsigned t, uint64_t j, uint64_t p, int got)
{
    if (j >= p)
        return true;
    if (j + BACK_DIST < p)
        return got == state_s2(t, j);
    return got == state_s1(t, j) || got == state_s2(t, j);
}

static void make_key(uint8_t *k, unsigned t, uint64_t j)
{
    char tmp[KEY_LEN + 1];
    snprintf(tmp, sizeof tmp, "w%02u-%08" PRIu64, t % 100u, j % 100000000u);
    memcpy(k, tmp, KEY_LEN);
}

static bool parse_key(buf_slice k, unsigned *t, uint64_t *j)
{
    if (k.len != KEY_LEN || k.ptr[0] != 'w' || k.ptr[3] != '-')
        return false;
    unsigned tt = 0;
    uint64_t jj = 0;
    for (int i = 1; i < 3; i++) {
        if (k.ptr[i] < '0' || k.ptr[i] > '9')
            return false;
        tt = tt * 10 + (unsigned)(k.ptr[i] - '0');
    }
    for (int i = 4; i < KEY_LEN; i++) {
        if (k.ptr[i] < '0' || k.ptr[i] > '9')
            return false;
        jj = jj * 10 + (uint64_t)(k.ptr[i] - '0');
    }
    if (tt >= N_WRITERS || jj >= g_steps)
        return false;
    *t = tt;
    *j = jj;
    return true;
}

/* value = key "|g" digit "|" filler; the filler's length and bytes come
 * from (t, j, gen) */
static size_t make_value(uint8_t *v, unsigned t, uint64_t j, int gen)
{
    make_key(v, t, j);
    v[KEY_LEN] = '|';
    v[KEY_LEN + 1] = 'g';
    v[KEY_LEN + 2] = (uint8_t)('0' + gen);
    v[KEY_LEN + 3] = '|';
    uint64_t h = mix64(g_seed * 3 ^ ((uint64_t)t << 48) ^ (j << 4) ^ (uint64_t)gen);
    size_t n = (size_t)(h % (FILLER_MAX + 1));
    for (size_t i = 0; i < n; i++)
        v[KEY_LEN + 4 + i] = (uint8_t)('a' + (h >> 8 ^ i) % 26);
    return KEY_LEN + 4 + n;
}

/* value_gen -- the generation a value of key (t, j) carries, or -2 when it
 * is not exactly a value this test writes for that key. */
static int value_gen(unsigned t, uint64_t j, buf_slice v)
{
    if (v.len < KEY_LEN + 4)
        return -2;
    int gen = v.ptr[KEY_LEN + 2] - '0';
    if (gen != 0 && gen != 1 && gen != 2 && gen != GEN_REWRITE)
        return -2;
    uint8_t want[VALUE_MAX];
    size_t n = make_value(want, t, j, gen);
    if (n != v.len || memcmp(want, v.ptr, n) != 0)
        return -2;
    return gen;
}

/* ------------------------------------------------------------- writers */

typedef struct writer_arg {
    unsigned t;
} writer_arg;

/* check_latest -- a read by the thread that just wrote must see exactly
 * `want` (read-your-writes). */
static bool check_latest(unsigned t, uint64_t j, int want, buf *v)
{
    uint8_t key[KEY_LEN];
    make_key(key, t, j);
    int rc = kv_get(g_db, NULL, buf_slice_of(key, KEY_LEN), v);
    int got = rc == DM_OK ? value_gen(t, j, buf_slice_of(v->ptr, v->len))
              : rc == DM_ENOTFOUND ? ABSENT : -3;
    if (got != want) {
        failf("writer %u: own read of key %" PRIu64 " gave %d (rc %d), want %d",
              t, j, got, rc, want);
        return false;
    }
    return true;
}

static void *writer_main(void *argp)
{
    writer_arg *a = argp;
    unsigned t = a->t;
    kv_batch *b = kv_batch_new();
    uint8_t key[KEY_LEN], bkey[KEY_LEN], val[VALUE_MAX];
    buf v;
    buf_init(&v);
    if (!b) {
        failf("writer %u: kv_batch_new failed", t);
        goto out;
    }
    for (uint64_t i = 0; i < g_steps && !failed(); i++) {
        kv_write_options wo = { step_sync(t, i) };
        int gen = step_gen(t, i), back = step_back(t, i);
        int rc = DM_OK;
        make_key(key, t, i);
        if (back != BACK_NONE)
            make_key(bkey, t, i - BACK_DIST);
        if (step_is_batch(t, i)) {
            kv_batch_clear(b);
            for (int g = 0; g <= gen && !rc; g++) {
                size_t n = make_value(val, t, i, g);
                rc = kv_batch_put(b, buf_slice_of(key, KEY_LEN), buf_slice_of(val, n));
            }
            if (!rc && back == BACK_DELETE)
                rc = kv_batch_delete(b, buf_slice_of(bkey, KEY_LEN));
            if (!rc && back == BACK_REWRITE) {
                size_t n = make_value(val, t, i - BACK_DIST, GEN_REWRITE);
                rc = kv_batch_put(b, buf_slice_of(bkey, KEY_LEN), buf_slice_of(val, n));
            }
            if (!rc)
                rc = kv_write(g_db, &wo, b);
        } else {
            for (int g = 0; g <= gen && !rc; g++) {
                size_t n = make_value(val, t, i, g);
                rc = kv_put(g_db, &wo, buf_slice_of(key, KEY_LEN), buf_slice_of(val, n));
            }
            if (!rc && back == BACK_DELETE)
                rc = kv_delete(g_db, &wo, buf_slice_of(bkey, KEY_LEN));
            if (!rc && back == BACK_REWRITE) {
                size_t n = make_value(val, t, i - BACK_DIST, GEN_REWRITE);
                rc = kv_put(g_db, &wo, buf_slice_of(bkey, KEY_LEN), buf_slice_of(val, n));
            }
        }
        if (rc) {
            failf("writer %u: step %" PRIu64 " failed with %d", t, i, rc);
            break;
        }
        atomic_store_explicit(&g_progress[t], i + 1, memory_order_release);
        if (!check_latest(t, i, state_s1(t, i), &v))
            break;
        if (i >= BACK_DIST && !check_latest(t, i - BACK_DIST, state_s2(t, i - BACK_DIST), &v))
            break;
    }
out:
    buf_fini(&v);
    kv_batch_free(b);
    atomic_fetch_sub(&g_writers_left, 1);
    return NULL;
}

/* ------------------------------------------------------------- readers */

typedef struct reader_arg {
    int id;
    tu_rng rng;
} reader_arg;

static bool writers_running(void)
{
    return atomic_load(&g_writers_left) > 0 && !failed();
}

static uint64_t progress_of(unsigned t)
{
    return atomic_load_explicit(&g_progress[t], memory_order_acquire);
}

/* pick_key -- half the time a key just below the writer's progress (the
 * freshest, most likely still in a memtable), otherwise anywhere up to a
 * little past it. */
static uint64_t pick_key(tu_rng *r, uint64_t p)
{
    if (p > 0 && tu_randn(r, 2) == 0) {
        uint64_t w = p < 64 ? p : 64;
        return p - 1 - tu_randn(r, w);
    }
    uint64_t j = tu_randn(r, p + 8);
    return j < g_steps ? j : g_steps - 1;
}

/* get_state -- reads key (t, j) at snap; the state, or -2 (malformed) /
 * -3 (error), with the value left in *v. */
static int get_state(const kv_snapshot *snap, unsigned t, uint64_t j, buf *v, int *rc_out)
{
    uint8_t key[KEY_LEN];
    make_key(key, t, j);
    int rc = kv_get(g_db, snap, buf_slice_of(key, KEY_LEN), v);
    atomic_fetch_add_explicit(&n_gets, 1, memory_order_relaxed);
    *rc_out = rc;
    if (rc == DM_ENOTFOUND)
        return ABSENT;
    if (rc != DM_OK)
        return -3;
    return value_gen(t, j, buf_slice_of(v->ptr, v->len));
}

static bool random_get(reader_arg *ra, buf *v)
{
    unsigned t = (unsigned)tu_randn(&ra->rng, N_WRITERS);
    uint64_t p = progress_of(t);
    uint64_t j = pick_key(&ra->rng, p);
    int rc;
    int got = get_state(NULL, t, j, v, &rc);
    if (got < ABSENT || !state_ok(t, j, p, got)) {
        /* read again at once: tells a transient wrong answer (a read
         * racing with a flush or compaction install) from lost data */
        int rc2;
        int again = get_state(NULL, t, j, v, &rc2);
        failf("reader %d: get w%02u-%08" PRIu64 " (progress %" PRIu64
              ") gave state %d rc %d; allowed s1=%d s2=%d; read again: %d",
              ra->id, t, j, p, got, rc, state_s1(t, j), state_s2(t, j), again);
        return false;
    }
    return true;
}

/*
 * Iterator checks.  walk_check verifies one entry met while walking the
 * keys of writer t in [a, b) at progress p: every key skipped since the
 * previous one (lo..j-1 going forward) must be allowed to be absent, and
 * the entry's own state must be allowed.
 */
static bool check_absent_range(int id, unsigned t, uint64_t lo, uint64_t hi,
                               uint64_t p, const char *dir)
{
    for (uint64_t m = lo; m < hi; m++) {
        if (!state_ok(t, m, p, ABSENT)) {
            failf("reader %d: %s iterator skipped w%02u-%08" PRIu64
                  " (progress %" PRIu64 ", s1=%d s2=%d)",
                  id, dir, t, m, p, state_s1(t, m), state_s2(t, m));
            return false;
        }
    }
    return true;
}

/* check_entry -- the iterator's current entry is well-formed; its writer,
 * index and generation go to *t, *j, *gen. */
static bool check_entry(int id, iter *it, unsigned *t, uint64_t *j, int *gen)
{
    buf_slice k = iter_key(it), v = iter_value(it);
    if (!parse_key(k, t, j)) {
        failf("reader %d: iterator yielded a malformed key (len %zu)", id, k.len);
        return false;
    }
    *gen = value_gen(*t, *j, v);
    if (*gen < 0) {
        failf("reader %d: iterator yielded a malformed value for w%02u-%08" PRIu64,
              id, *t, *j);
        return false;
    }
    atomic_fetch_add_explicit(&n_iter_entries, 1, memory_order_relaxed);
    return true;
}

/* bounce -- moves the iterator back one and forward again (and the other
 * way for reverse walks): it must come back to the same entry, and the
 * neighbour it passes must be `prev` when there was one. */
static bool bounce(int id, iter *it, bool forward, const buf *prev)
{
    uint8_t cur[KEY_LEN];
    buf_slice k = iter_key(it);
    if (k.len != KEY_LEN)
        return false;
    memcpy(cur, k.ptr, KEY_LEN);
    if (forward)
        iter_prev(it);
    else
        iter_next(it);
    if (prev->len) {
        if (!iter_valid(it) ||
            buf_slice_cmp(iter_key(it), buf_slice_of(prev->ptr, prev->len)) != 0) {
            failf("reader %d: direction change did not return the previous entry", id);
            return false;
        }
    } else if (iter_valid(it)) {
        int c = buf_slice_cmp(iter_key(it), buf_slice_of(cur, KEY_LEN));
        if (forward ? c >= 0 : c <= 0) {
            failf("reader %d: direction change went the wrong way", id);
            return false;
        }
    }
    if (iter_valid(it)) {
        if (forward)
            iter_next(it);
        else
            iter_prev(it);
    } else if (forward) {
        iter_seek_first(it);
    } else {
        iter_seek_last(it);
    }
    if (!iter_valid(it) || buf_slice_cmp(iter_key(it), buf_slice_of(cur, KEY_LEN)) != 0) {
        failf("reader %d: direction change did not come back to the same entry", id);
        return false;
    }
    return true;
}

/* range_walk -- forward and backward over keys [a, b) of writer t on one
 * iterator over the live database. */
static bool range_walk(reader_arg *ra)
{
    int id = ra->id;
    unsigned t = (unsigned)tu_randn(&ra->rng, N_WRITERS);
    uint64_t p = progress_of(t);
    uint64_t a = tu_randn(&ra->rng, p + 16);
    uint64_t b = a + 1 + tu_randn(&ra->rng, 300);
    if (a >= g_steps)
        a = g_steps - 1;
    if (b > g_steps)
        b = g_steps;
    iter *it = NULL;
    buf prev;
    buf_init(&prev);
    bool ok = false;
    int rc = kv_iter_new(g_db, NULL, &it);
    if (rc) {
        failf("reader %d: kv_iter_new failed with %d", id, rc);
        goto done;
    }
    uint8_t key[KEY_LEN];

    /* forward */
    make_key(key, t, a);
    iter_seek(it, buf_slice_of(key, KEY_LEN));
    uint64_t next = a;
    for (int n = 0; iter_valid(it); n++) {
        unsigned kt;
        uint64_t kj;
        int gen;
        if (!check_entry(id, it, &kt, &kj, &gen))
            goto done;
        if (prev.len && buf_slice_cmp(buf_slice_of(prev.ptr, prev.len), iter_key(it)) >= 0) {
            failf("reader %d: forward iterator out of order", id);
            goto done;
        }
        if (kt != t || kj >= b)
            break;
        if (!check_absent_range(id, t, next, kj, p, "forward"))
            goto done;
        if (!state_ok(t, kj, p, gen)) {
            failf("reader %d: forward iterator: w%02u-%08" PRIu64 " gen %d at progress %"
                  PRIu64 " (s1=%d s2=%d)", id, t, kj, gen, p, state_s1(t, kj), state_s2(t, kj));
            goto done;
        }
        next = kj + 1;
        if (n % 13 == 5 && !bounce(id, it, true, &prev))
            goto done;
        buf_clear(&prev);
        if (buf_append(&prev, iter_key(it).ptr, iter_key(it).len))
            goto done;
        iter_next(it);
    }
    if (!check_absent_range(id, t, next, b, p, "forward"))
        goto done;

    /* backward: start at the last key below key(t, b) */
    buf_clear(&prev);
    make_key(key, t, b);
    iter_seek(it, buf_slice_of(key, KEY_LEN));
    if (iter_valid(it))
        iter_prev(it);
    else
        iter_seek_last(it);
    uint64_t hi = b;
    for (int n = 0; iter_valid(it); n++) {
        unsigned kt;
        uint64_t kj;
        int gen;
        if (!check_entry(id, it, &kt, &kj, &gen))
            goto done;
        if (prev.len && buf_slice_cmp(buf_slice_of(prev.ptr, prev.len), iter_key(it)) <= 0) {
            failf("reader %d: backward iterator out of order", id);
            goto done;
        }
        if (!prev.len && buf_slice_cmp(iter_key(it), buf_slice_of(key, KEY_LEN)) >= 0) {
            failf("reader %d: seek + prev did not land below the target", id);
            goto done;
        }
        if (kt != t || kj < a)
            break;
        if (!check_absent_range(id, t, kj + 1, hi, p, "backward"))
            goto done;
        if (!state_ok(t, kj, p, gen)) {
            failf("reader %d: backward iterator: w%02u-%08" PRIu64 " gen %d at progress %"
                  PRIu64, id, t, kj, gen, p);
            goto done;
        }
        hi = kj;
        if (n % 11 == 3 && !bounce(id, it, false, &prev))
            goto done;
        buf_clear(&prev);
        if (buf_append(&prev, iter_key(it).ptr, iter_key(it).len))
            goto done;
        iter_prev(it);
    }
    if (!check_absent_range(id, t, a, hi, p, "backward"))
        goto done;
    if ((rc = iter_status(it)) != DM_OK) {
        failf("reader %d: iterator status %d", id, rc);
        goto done;
    }
    ok = true;
done:
    iter_free(it);
    buf_fini(&prev);
    return ok;
}

/* full_scan -- the whole database forward, then backward on the same
 * iterator (same snapshot): strictly ordered, well-formed, and the two
 * directions see the same entries. */
static bool full_scan(int id, const kv_snapshot *snap, uint64_t *count_out, uint64_t *hash_out)
{
    iter *it = NULL;
    bool ok = false;
    uint8_t prev[KEY_LEN];
    bool has_prev = false;
    uint64_t nf = 0, hf = 0, nb = 0, hb = 0;
    int rc = kv_iter_new(g_db, snap, &it);
    if (rc) {
        failf("reader %d: kv_iter_new failed with %d", id, rc);
        goto done;
    }
    for (iter_seek_first(it); iter_valid(it); iter_next(it)) {
        unsigned t;
        uint64_t j;
        int gen;
        if (!check_entry(id, it, &t, &j, &gen))
            goto done;
        if (has_prev && memcmp(prev, iter_key(it).ptr, KEY_LEN) >= 0) {
            failf("reader %d: full forward scan out of order", id);
            goto done;
        }
        memcpy(prev, iter_key(it).ptr, KEY_LEN);
        has_prev = true;
        nf++;
        hf += mix64(((uint64_t)t << 48) ^ (j << 4) ^ (uint64_t)gen);
    }
    has_prev = false;
    for (iter_seek_last(it); iter_valid(it); iter_prev(it)) {
        unsigned t;
        uint64_t j;
        int gen;
        if (!check_entry(id, it, &t, &j, &gen))
            goto done;
        if (has_prev && memcmp(prev, iter_key(it).ptr, KEY_LEN) <= 0) {
            failf("reader %d: full backward scan out of order", id);
            goto done;
        }
        memcpy(prev, iter_key(it).ptr, KEY_LEN);
        has_prev = true;
        nb++;
        hb += mix64(((uint64_t)t << 48) ^ (j << 4) ^ (uint64_t)gen);
    }
    if ((rc = iter_status(it)) != DM_OK) {
        failf("reader %d: iterator status %d", id, rc);
        goto done;
    }
    if (nf != nb || hf != hb) {
        failf("reader %d: forward scan saw %" PRIu64 " entries, backward %" PRIu64
              " (same snapshot)", id, nf, nb);
        goto done;
    }
    if (count_out)
        *count_out = nf;
    if (hash_out)
        *hash_out = hf;
    ok = true;
done:
    iter_free(it);
    return ok;
}

/*
 * Snapshot rounds: take a snapshot, read a set of keys and a stretch of
 * the keyspace through it, make the engine move data (flush, compact a
 * range, or wait for background work while reading), read the same things
 * again through the snapshot: identical answers.
 */
#define SNAP_KEYS 48
#define SNAP_SCAN 200

static bool snap_scan(int id, const kv_snapshot *snap, buf_slice from,
                      uint64_t *n_out, uint64_t *h_out)
{
    iter *it = NULL;
    int rc = kv_iter_new(g_db, snap, &it);
    if (rc) {
        failf("reader %d: kv_iter_new(snapshot) failed with %d", id, rc);
        return false;
    }
    uint64_t n = 0, h = 0;
    bool ok = true;
    for (iter_seek(it, from); iter_valid(it) && n < SNAP_SCAN; iter_next(it)) {
        unsigned t;
        uint64_t j;
        int gen;
        if (!check_entry(id, it, &t, &j, &gen)) {
            ok = false;
            break;
        }
        n++;
        h = mix64(h ^ ((uint64_t)t << 48) ^ (j << 4) ^ (uint64_t)gen);
    }
    if (ok && (rc = iter_status(it)) != DM_OK) {
        failf("reader %d: snapshot iterator status %d", id, rc);
        ok = false;
    }
    iter_free(it);
    *n_out = n;
    *h_out = h;
    return ok;
}

static uint64_t bg_work_done(void)
{
    kv_stats st;
    if (kv_stats_get(g_db, &st))
        return 0;
    return st.n_flushes + st.n_compactions;
}

static bool snapshot_round(reader_arg *ra, uint64_t round, uint64_t *last_seq, buf *v)
{
    int id = ra->id;
    uint64_t p[N_WRITERS];
    unsigned kt[SNAP_KEYS];
    uint64_t kj[SNAP_KEYS];
    int st1[SNAP_KEYS];
    bool ok = false;
    for (unsigned t = 0; t < N_WRITERS; t++)
        p[t] = progress_of(t);
    const kv_snapshot *snap = kv_snapshot_new(g_db);
    if (!snap) {
        failf("reader %d: kv_snapshot_new failed", id);
        return false;
    }
    uint64_t seq = kv_snapshot_seq(snap);
    if (seq < *last_seq) {
        failf("reader %d: snapshot sequence went back from %" PRIu64 " to %" PRIu64,
              id, *last_seq, seq);
        goto done;
    }
    *last_seq = seq;

    for (int k = 0; k < SNAP_KEYS; k++) {
        int rc;
        kt[k] = (unsigned)tu_randn(&ra->rng, N_WRITERS);
        kj[k] = pick_key(&ra->rng, p[kt[k]]);
        st1[k] = get_state(snap, kt[k], kj[k], v, &rc);
        if (st1[k] < ABSENT || !state_ok(kt[k], kj[k], p[kt[k]], st1[k])) {
            failf("reader %d: snapshot get w%02u-%08" PRIu64 " gave %d rc %d", id,
                  kt[k], kj[k], st1[k], rc);
            goto done;
        }
    }
    uint8_t from[KEY_LEN];
    unsigned st = (unsigned)tu_randn(&ra->rng, N_WRITERS);
    make_key(from, st, tu_randn(&ra->rng, p[st] + 1 < g_steps ? p[st] + 1 : g_steps));
    uint64_t n1, h1, n2, h2;
    if (!snap_scan(id, snap, buf_slice_of(from, KEY_LEN), &n1, &h1))
        goto done;

    /* make the data move under the snapshot */
    int rc = DM_OK;
    switch (round % 3) {
    case 0:
        rc = kv_flush(g_db);
        break;
    case 1: {
        uint8_t lo[KEY_LEN], hi[KEY_LEN];
        make_key(lo, st, 0);
        make_key(hi, st, g_steps - 1);
        buf_slice blo = buf_slice_of(lo, KEY_LEN), bhi = buf_slice_of(hi, KEY_LEN);
        rc = kv_compact_range(g_db, &blo, &bhi);
        break;
    }
    default: {
        uint64_t before = bg_work_done();
        for (int w = 0; w < 200 && bg_work_done() == before && writers_running(); w++) {
            if (!random_get(ra, v))
                goto done;
            sleep_us(1000);
        }
        break;
    }
    }
    if (rc) {
        failf("reader %d: flush/compaction under a snapshot failed with %d", id, rc);
        goto done;
    }

    for (int k = 0; k < SNAP_KEYS; k++) {
        int rc2;
        int s2 = get_state(snap, kt[k], kj[k], v, &rc2);
        /* a state names one exact value (value_gen checked every byte) */
        if (s2 != st1[k]) {
            failf("reader %d: snapshot seq %" PRIu64 " changed its view of w%02u-%08" PRIu64
                  ": state %d then %d (rc %d)", id, seq, kt[k], kj[k], st1[k], s2, rc2);
            goto done;
        }
    }
    if (!snap_scan(id, snap, buf_slice_of(from, KEY_LEN), &n2, &h2))
        goto done;
    if (n1 != n2 || h1 != h2) {
        failf("reader %d: snapshot seq %" PRIu64 " iterator changed: %" PRIu64
              " entries then %" PRIu64, id, seq, n1, n2);
        goto done;
    }
    atomic_fetch_add_explicit(&n_snap_rounds, 1, memory_order_relaxed);
    ok = true;
done:
    kv_snapshot_release(g_db, snap);
    return ok;
}

static void *reader_main(void *argp)
{
    reader_arg *ra = argp;
    buf v;
    buf_init(&v);
    uint64_t round = 0, last_seq = 0;
    while (writers_running()) {
        round++;
        bool ok = true;
        switch (ra->id) {
        case 0:
            ok = snapshot_round(ra, round, &last_seq, &v);
            for (int i = 0; ok && i < 20; i++)
                ok = random_get(ra, &v);
            break;
        case 1:
            ok = range_walk(ra);
            if (ok && round % 16 == 0)
                ok = full_scan(ra->id, NULL, NULL, NULL);
            break;
        default:
            for (int i = 0; ok && i < 50; i++)
                ok = random_get(ra, &v);
            break;
        }
        if (!ok)
            break;
    }
    buf_fini(&v);
    return NULL;
}

/* maint_main -- kv_flush and kv_compact_range now and then, and a look at
 * the stats: no background error, last_seq never goes back. */
static void *maint_main(void *argp)
{
    tu_rng *r = argp;
    uint64_t last_seq = 0;
    while (writers_running()) {
        sleep_us(10000 + (long)tu_randn(r, 30000));
        int rc = DM_OK;
        unsigned t = (unsigned)tu_randn(r, N_WRITERS);
        uint8_t lo[KEY_LEN], hi[KEY_LEN];
        uint64_t a = tu_randn(r, g_steps);
        make_key(lo, t, a);
        make_key(hi, t, a + tu_randn(r, g_steps - a));
        buf_slice blo = buf_slice_of(lo, KEY_LEN), bhi = buf_slice_of(hi, KEY_LEN);
        switch (tu_randn(r, 6)) {
        case 0:
        case 1:
            rc = kv_flush(g_db);
            break;
        case 2:
            rc = kv_compact_range(g_db, &blo, &bhi);
            break;
        case 3: {
            /* a narrow range at a writer's frontier, often the last
             * writer's: it overlaps only the newest level-0 files, which
             * catches a compaction that moves some level-0 files below
             * older ones left behind */
            if (tu_randn(r, 2))
                t = N_WRITERS - 1;
            uint64_t p = progress_of(t);
            make_key(lo, t, p > 20 ? p - 20 : 0);
            make_key(hi, t, p + 20 < g_steps ? p + 20 : g_steps - 1);
            rc = kv_compact_range(g_db, &blo, &bhi);
            break;
        }
        case 4:
            rc = kv_compact_range(g_db, NULL, &bhi);
            break;
        default: {
            kv_stats st;
            rc = kv_stats_get(g_db, &st);
            if (!rc && st.background_error)
                rc = st.background_error;
            if (!rc && st.last_seq < last_seq) {
                failf("maint: last_seq went back");
                return NULL;
            }
            last_seq = st.last_seq;
            break;
        }
        }
        if (rc) {
            failf("maint: flush/compact/stats failed with %d", rc);
            break;
        }
        atomic_fetch_add_explicit(&n_maint_ops, 1, memory_order_relaxed);
    }
    return NULL;
}

/* ------------------------------------------------------------ checking */

static kv_options conc_opts(void)
{
    kv_options o = kv_options_default();
    o.write_buffer_size = 64 << 10;
    o.max_immutable = 2;
    o.sync = KV_SYNC_NONE;
    o.sync_interval_ms = 2;
    o.block_cache_size = 256 << 10; /* small: evictions under concurrency */
    o.table.block_size = 1024;
    o.l0_compaction_trigger = 2;
    o.l0_stop_trigger = 8;
    o.level1_max_bytes = 128 << 10;
    o.target_file_size = 32 << 10;
    return o;
}

/* verify_final -- every key holds exactly its final state (s2), by point
 * reads and by a full scan. */
static void verify_final(kv_db *db)
{
    buf v;
    buf_init(&v);
    uint64_t present = 0, hash = 0;
    for (unsigned t = 0; t < N_WRITERS; t++) {
        for (uint64_t j = 0; j < g_steps; j++) {
            uint8_t key[KEY_LEN];
            make_key(key, t, j);
            int rc = kv_get(db, NULL, buf_slice_of(key, KEY_LEN), &v);
            int got = rc == DM_ENOTFOUND ? ABSENT
                      : rc == DM_OK ? value_gen(t, j, buf_slice_of(v.ptr, v.len)) : -3;
            if (got != state_s2(t, j))
                fail_msg("final w%02u-%08" PRIu64 ": state %d (rc %d), want %d", t, j,
                         got, rc, state_s2(t, j));
            if (got != ABSENT) {
                present++;
                hash += mix64(((uint64_t)t << 48) ^ (j << 4) ^ (uint64_t)got);
            }
        }
    }
    buf_fini(&v);
    kv_db *saved = g_db;
    g_db = db;
    uint64_t n = 0, h = 0;
    bool ok = full_scan(-1, NULL, &n, &h);
    g_db = saved;
    if (!ok)
        fail_msg("%s", g_err);
    assert_int_equal(n, present);
    assert_true(h == hash);
}

/* ---------------------------------------------------------------- tests */

static void reset_globals(uint64_t steps)
{
    g_steps = steps;
    for (unsigned t = 0; t < N_WRITERS; t++)
        atomic_store(&g_progress[t], 0);
    atomic_store(&g_failed, 0);
    g_err[0] = 0;
}

static void test_writers_readers_snapshots(void **state)
{
    (void)state;
    reset_globals((uint64_t)tu_env_int("DM_KV_CONC_STEPS", 1200));
    const char *dir = tu_tmpdir("kv_concurrent");
    int64_t base = alloc_bytes_in_use();
    kv_options o = conc_opts();
    assert_int_equal(kv_open(dir, &o, &g_db), DM_OK);

    pthread_t wt[N_WRITERS], rt[N_READERS], mt;
    writer_arg wa[N_WRITERS];
    reader_arg ra[N_READERS];
    tu_rng maint_rng;
    tu_rng_seed(&maint_rng, 99);
    atomic_store(&g_writers_left, N_WRITERS);
    for (unsigned t = 0; t < N_WRITERS; t++) {
        wa[t].t = t;
        assert_int_equal(pthread_create(&wt[t], NULL, writer_main, &wa[t]), 0);
    }
    for (int r = 0; r < N_READERS; r++) {
        ra[r].id = r;
        tu_rng_seed(&ra[r].rng, 1000 + (uint64_t)r);
        assert_int_equal(pthread_create(&rt[r], NULL, reader_main, &ra[r]), 0);
    }
    assert_int_equal(pthread_create(&mt, NULL, maint_main, &maint_rng), 0);
    for (unsigned t = 0; t < N_WRITERS; t++)
        pthread_join(wt[t], NULL);
    for (int r = 0; r < N_READERS; r++)
        pthread_join(rt[r], NULL);
    pthread_join(mt, NULL);
    if (atomic_load(&g_failed)) {
        /* close first so that the next test starts from a clean heap; the
         * directory is left behind for inspection */
        kv_close(g_db);
        g_db = NULL;
        fail_msg("%s", g_err);
    }

    kv_stats st;
    assert_int_equal(kv_stats_get(g_db, &st), DM_OK);
    print_message("steps/writer %" PRIu64 ": writes %" PRIu64 ", group commits %" PRIu64
                  ", syncs %" PRIu64 ", flushes %" PRIu64 ", compactions %" PRIu64
                  "; reader gets %" PRIu64 ", iterator entries %" PRIu64
                  ", snapshot rounds %" PRIu64 ", maint ops %" PRIu64 "\n",
                  g_steps, st.n_writes, st.n_group_commits, st.n_syncs, st.n_flushes,
                  st.n_compactions, atomic_load(&n_gets), atomic_load(&n_iter_entries),
                  atomic_load(&n_snap_rounds), atomic_load(&n_maint_ops));
    assert_int_equal(st.background_error, DM_OK);
    assert_true(st.n_flushes > 0);
    verify_final(g_db);

    assert_int_equal(kv_close(g_db), DM_OK);
    g_db = NULL;
    assert_int_equal(alloc_bytes_in_use(), base);

    /* everything acknowledged survives a reopen, then a full compaction */
    assert_int_equal(kv_open(dir, &o, &g_db), DM_OK);
    assert_int_equal(kv_stats_get(g_db, &st), DM_OK);
    assert_int_equal(st.recovery_damaged, 0);
    verify_final(g_db);
    assert_int_equal(kv_compact_range(g_db, NULL, NULL), DM_OK);
    verify_final(g_db);
    assert_int_equal(kv_close(g_db), DM_OK);
    g_db = NULL;
    assert_int_equal(alloc_bytes_in_use(), base);
    tu_rmrf(dir);
}

/*
 * kv_close right after concurrent work, with flushes and compactions
 * probably still running: it must wait for them, release every byte
 * (alloc_bytes_in_use back to where it was; LeakSanitizer checks the rest
 * at exit), and leave a database that reopens with everything in it.
 * Several rounds, writing on top of the previous rounds' data.
 */
static void *close_writer_main(void *argp)
{
    writer_arg *a = argp;
    unsigned t = a->t;
    uint8_t key[KEY_LEN], val[VALUE_MAX];
    kv_write_options wo = { KV_SYNC_NONE };
    for (uint64_t i = 0; i < g_steps && !failed(); i++) {
        make_key(key, t, i);
        size_t n = make_value(val, t, i, step_gen(t, i));
        int rc = kv_put(g_db, &wo, buf_slice_of(key, KEY_LEN), buf_slice_of(val, n));
        if (rc) {
            failf("close writer %u: put %" PRIu64 " failed with %d", t, i, rc);
            break;
        }
        atomic_store_explicit(&g_progress[t], i + 1, memory_order_release);
    }
    atomic_fetch_sub(&g_writers_left, 1);
    return NULL;
}

static void *close_reader_main(void *argp)
{
    reader_arg *ra = argp;
    /* an iterator held open across flushes and compactions, then freed */
    while (writers_running()) {
        iter *it = NULL;
        int rc = kv_iter_new(g_db, NULL, &it);
        if (rc) {
            failf("close reader: kv_iter_new failed with %d", rc);
            break;
        }
        const kv_snapshot *snap = kv_snapshot_new(g_db);
        int n = 0;
        for (iter_seek_first(it); iter_valid(it) && n < 500; iter_next(it))
            n++;
        sleep_us((long)tu_randn(&ra->rng, 5000));
        for (; iter_valid(it) && n < 1000; iter_next(it))
            n++;
        rc = iter_status(it);
        iter_free(it);
        if (snap)
            kv_snapshot_release(g_db, snap);
        if (rc) {
            failf("close reader: iterator status %d", rc);
            break;
        }
    }
    return NULL;
}

static void test_close_after_concurrent_work(void **state)
{
    (void)state;
    reset_globals((uint64_t)tu_env_int("DM_KV_CONC_CLOSE_STEPS", 600));
    const char *dir = tu_tmpdir("kv_conc_close");
    int64_t base = alloc_bytes_in_use();
    kv_options o = conc_opts();
    for (int round = 0; round < 3; round++) {
        assert_int_equal(kv_open(dir, &o, &g_db), DM_OK);
        pthread_t wt[4], rt[2];
        writer_arg wa[4];
        reader_arg ra[2];
        for (unsigned t = 0; t < 4; t++)
            atomic_store(&g_progress[t], 0);
        atomic_store(&g_writers_left, 4);
        for (unsigned t = 0; t < 4; t++) {
            wa[t].t = t;
            assert_int_equal(pthread_create(&wt[t], NULL, close_writer_main, &wa[t]), 0);
        }
        for (int r = 0; r < 2; r++) {
            ra[r].id = r;
            tu_rng_seed(&ra[r].rng, 77 + (uint64_t)(round * 2 + r));
            assert_int_equal(pthread_create(&rt[r], NULL, close_reader_main, &ra[r]), 0);
        }
        for (unsigned t = 0; t < 4; t++)
            pthread_join(wt[t], NULL);
        for (int r = 0; r < 2; r++)
            pthread_join(rt[r], NULL);
        if (atomic_load(&g_failed)) {
            kv_close(g_db);
            g_db = NULL;
            fail_msg("%s", g_err);
        }
        /* no kv_flush: background work is likely still in flight */
        assert_int_equal(kv_close(g_db), DM_OK);
        g_db = NULL;
        assert_int_equal(alloc_bytes_in_use(), base);
    }
    /* every key of the last round is there with its value */
    assert_int_equal(kv_open(dir, &o, &g_db), DM_OK);
    buf v;
    buf_init(&v);
    for (unsigned t = 0; t < 4; t++) {
        for (uint64_t j = 0; j < g_steps; j++) {
            uint8_t key[KEY_LEN];
            make_key(key, t, j);
            assert_int_equal(kv_get(g_db, NULL, buf_slice_of(key, KEY_LEN), &v), DM_OK);
            assert_int_equal(value_gen(t, j, buf_slice_of(v.ptr, v.len)), step_gen(t, j));
        }
    }
    buf_fini(&v);
    assert_int_equal(kv_close(g_db), DM_OK);
    g_db = NULL;
    assert_int_equal(alloc_bytes_in_use(), base);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writers_readers_snapshots),
        cmocka_unit_test(test_close_after_concurrent_work),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
