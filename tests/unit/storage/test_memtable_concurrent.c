// ctest-labels: concurrency
/* test_memtable_concurrent.c -- one writer inserts while two readers
 * iterate and look up without locks.  Readers must only ever see
 * well-formed entries in strictly increasing order, every entry they see
 * must be found again by mt_get, and every entry the writer has
 * acknowledged must be visible.  Meant to run under TSan as well as ASan.
 *
 * The workload is fixed in advance (key id and type of each sequence
 * number), so a reader can check any entry it meets against it.  A value
 * carries its own seq and key id followed by a pattern derived from seq. */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "storage/ikey.h"
#include "storage/memtable.h"

#define KEY_LEN 11 /* "key" + 8 digits */
#define N_KEYS 20000

static mt_table *table;
static size_t n_ops;
static uint32_t *op_key; /* op_key[seq]: key id written at seq (1-based) */
static uint8_t *op_type; /* op_type[seq] */
static _Atomic uint64_t acked_seq; /* last seq whose mt_add returned */
static _Atomic int writer_done;

static void make_key(uint8_t *k, uint32_t id)
{
    char tmp[KEY_LEN + 1];
    snprintf(tmp, sizeof tmp, "key%08u", (unsigned)id);
    memcpy(k, tmp, KEY_LEN);
}

static size_t value_len(uint64_t seq) { return 12 + (size_t)(seq % 97); }

static void make_value(uint8_t *v, uint64_t seq, uint32_t id)
{
    enc_u64(v, seq);
    enc_u32(v + 8, id);
    for (size_t j = 12; j < value_len(seq); j++)
        v[j] = (uint8_t)(seq + j);
}

static void *writer(void *arg)
{
    uint8_t key[KEY_LEN], val[12 + 97];
    for (uint64_t seq = 1; seq <= n_ops; seq++) {
        make_key(key, op_key[seq]);
        buf_slice v = buf_slice_of(NULL, 0);
        if (op_type[seq] == IKEY_PUT) {
            make_value(val, seq, op_key[seq]);
            v = buf_slice_of(val, value_len(seq));
        }
        int rc = mt_add(table, seq, op_type[seq], buf_slice_of(key, KEY_LEN), v);
        if (rc != 0)
            abort();
        atomic_store_explicit(&acked_seq, seq, memory_order_release);
    }
    atomic_store(&writer_done, 1);
    return NULL;
}

typedef struct reader_stats {
    int id;
    uint64_t n_seen, n_gets, n_scans;
    char err[200];
} reader_stats;

#define CHECK(st, cond, ...)                                                   \
    do {                                                                       \
        if (!(cond)) {                                                         \
            snprintf((st)->err, sizeof (st)->err, __VA_ARGS__);                \
            return false;                                                      \
        }                                                                      \
    } while (0)

/* check_entry -- the iterator's entry is one the writer wrote, intact. */
static bool check_entry(reader_stats *st, buf_slice k, buf_slice v,
                        uint64_t *seq_out)
{
    CHECK(st, k.len == KEY_LEN + IKEY_TRAILER_LEN, "bad key length %zu", k.len);
    uint64_t seq = ikey_seq(k);
    int type = ikey_type(k);
    CHECK(st, seq >= 1 && seq <= n_ops, "bad seq %llu", (unsigned long long)seq);
    CHECK(st, type == op_type[seq], "bad type at seq %llu", (unsigned long long)seq);
    uint8_t want[KEY_LEN];
    make_key(want, op_key[seq]);
    CHECK(st, memcmp(k.ptr, want, KEY_LEN) == 0, "bad key at seq %llu",
          (unsigned long long)seq);
    if (type == IKEY_PUT) {
        uint8_t wv[12 + 97];
        make_value(wv, seq, op_key[seq]);
        CHECK(st, v.len == value_len(seq) && memcmp(v.ptr, wv, v.len) == 0,
              "bad value at seq %llu", (unsigned long long)seq);
    } else {
        CHECK(st, v.len == 0, "tombstone with a value");
    }
    *seq_out = seq;
    return true;
}

/* check_get -- entry seq is found exactly by a get at snapshot seq. */
static bool check_get(reader_stats *st, uint64_t seq)
{
    uint8_t key[KEY_LEN];
    make_key(key, op_key[seq]);
    buf_slice v = buf_slice_of(NULL, 0);
    enum mt_get_result r = mt_get(table, buf_slice_of(key, KEY_LEN), seq, &v);
    st->n_gets++;
    if (op_type[seq] == IKEY_DEL) {
        CHECK(st, r == MT_DELETED, "get(seq %llu) = %d, want deleted",
              (unsigned long long)seq, (int)r);
        return true;
    }
    CHECK(st, r == MT_FOUND, "get(seq %llu) = %d, want found",
          (unsigned long long)seq, (int)r);
    CHECK(st, v.len == value_len(seq) && dec_u64(v.ptr) == seq,
          "get(seq %llu) returned another version", (unsigned long long)seq);
    return true;
}

/* scan -- from a seek, up to max_steps in one direction; checks order,
 * form, and that each entry is found by mt_get. */
static bool scan(reader_stats *st, iter *it, tu_rng *r, size_t max_steps,
                 bool is_forward)
{
    uint8_t prev_key[KEY_LEN + IKEY_TRAILER_LEN];
    bool has_prev = false;
    for (size_t step = 0; step < max_steps && iter_valid(it); step++) {
        buf_slice k = iter_key(it), v = iter_value(it);
        uint64_t seq;
        if (!check_entry(st, k, v, &seq))
            return false;
        if (has_prev) {
            int c = ikey_cmp(buf_slice_of(prev_key, sizeof prev_key), k);
            CHECK(st, is_forward ? c < 0 : c > 0, "order violated at seq %llu",
                  (unsigned long long)seq);
        }
        memcpy(prev_key, k.ptr, sizeof prev_key);
        has_prev = true;
        st->n_seen++;
        if (tu_randn(r, 4) == 0 && !check_get(st, seq))
            return false;
        if (is_forward)
            iter_next(it);
        else
            iter_prev(it);
    }
    CHECK(st, iter_status(it) == 0, "iterator status %d", iter_status(it));
    return true;
}

static bool reader_round(reader_stats *st, iter *it, tu_rng *r)
{
    /* Everything acknowledged before now must be visible. */
    uint64_t acked = atomic_load_explicit(&acked_seq, memory_order_acquire);
    for (int i = 0; i < 20 && acked > 0; i++)
        if (!check_get(st, 1 + tu_randn(r, acked)))
            return false;
    CHECK(st, mt_count(table) >= acked, "count below acknowledged inserts");
    CHECK(st, acked == 0 || mt_last_seq(table) >= acked, "last_seq behind");

    uint64_t kind = tu_randn(r, 4);
    st->n_scans++;
    if (kind == 0) {
        iter_seek_first(it);
        return scan(st, it, r, 3000, true);
    }
    if (kind == 1) {
        iter_seek_last(it);
        return scan(st, it, r, 300, false);
    }
    uint8_t target[KEY_LEN + IKEY_TRAILER_LEN];
    make_key(target, (uint32_t)tu_randn(r, N_KEYS));
    enc_u64(target + KEY_LEN, ikey_pack(tu_randn(r, n_ops + 1), IKEY_PUT));
    iter_seek(it, buf_slice_of(target, sizeof target));
    return scan(st, it, r, 500, kind == 2);
}

static void *reader(void *arg)
{
    reader_stats *st = arg;
    tu_rng r;
    tu_rng_seed(&r, 1000 + (uint64_t)st->id);
    iter *it = mt_iter_new(table);
    if (!it) {
        snprintf(st->err, sizeof st->err, "mt_iter_new failed");
        return NULL;
    }
    while (!atomic_load(&writer_done))
        if (!reader_round(st, it, &r))
            break;
    if (!st->err[0]) {
        /* Final full pass: everything is there, in order. */
        iter_seek_first(it);
        uint64_t before = st->n_seen;
        if (scan(st, it, &r, SIZE_MAX, true) && st->n_seen - before != n_ops)
            snprintf(st->err, sizeof st->err, "final scan saw %llu of %zu",
                     (unsigned long long)(st->n_seen - before), n_ops);
    }
    iter_free(it);
    return NULL;
}

static void test_one_writer_two_readers(void **state)
{
    (void)state;
    n_ops = (size_t)tu_env_int("DM_MT_CONCURRENT_OPS", 200000);
    op_key = calloc(n_ops + 1, sizeof *op_key);
    op_type = calloc(n_ops + 1, sizeof *op_type);
    assert_non_null(op_key);
    assert_non_null(op_type);
    tu_rng r;
    tu_rng_seed(&r, 2024);
    for (size_t s = 1; s <= n_ops; s++) {
        /* Mostly random keys, with runs of ascending ones (the writer's
         * fast path) mixed in. */
        op_key[s] = s % 1000 < 200 ? (uint32_t)(s % N_KEYS)
                                   : (uint32_t)tu_randn(&r, N_KEYS);
        op_type[s] = tu_randn(&r, 10) == 0 ? IKEY_DEL : IKEY_PUT;
    }
    assert_int_equal(mt_new(&table), 0);
    atomic_store(&acked_seq, 0);
    atomic_store(&writer_done, 0);

    reader_stats st[2];
    memset(st, 0, sizeof st);
    pthread_t w, rd[2];
    for (int i = 0; i < 2; i++) {
        st[i].id = i;
        assert_int_equal(pthread_create(&rd[i], NULL, reader, &st[i]), 0);
    }
    assert_int_equal(pthread_create(&w, NULL, writer, NULL), 0);
    pthread_join(w, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(rd[i], NULL);
    for (int i = 0; i < 2; i++) {
        if (st[i].err[0])
            fail_msg("reader %d: %s", i, st[i].err);
        print_message("reader %d: %llu entries seen, %llu gets, %llu scans\n",
                      i, (unsigned long long)st[i].n_seen,
                      (unsigned long long)st[i].n_gets,
                      (unsigned long long)st[i].n_scans);
        assert_true(st[i].n_scans > 1);
    }
    assert_int_equal(mt_count(table), n_ops);
    assert_int_equal(mt_first_seq(table), 1);
    assert_int_equal(mt_last_seq(table), n_ops);
    mt_unref(table);
    free(op_key);
    free(op_type);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_writer_two_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
