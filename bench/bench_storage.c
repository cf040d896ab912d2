/*
 * bench_storage.c -- the storage engine (src/storage/kv.h) against RocksDB
 * and LevelDB on one workload, side by side in one process.
 *
 * DESIGN.  Every case is written once against a small engine table
 * (eng_ops: open/close/put/batch/get/reverse-iterate/flush/compact) with
 * three implementations: "deltamemory" (kv.h), "rocksdb" (rocksdb/c.h) and
 * "leveldb" (leveldb/c.h).  Cases run in a fixed order and, within a case,
 * engine after engine, so that all engines see the machine in the same
 * state.  Untimed, around every measurement: after a load or a full
 * compaction the bench waits until the engine has no background work
 * running or due (eng_ops.is_busy), so reads start from a steady tree and
 * no engine's compaction debt lands in another's run; the database is
 * closed; and sync() pushes the dirty page cache out so that one engine's
 * writeback does not land in the next one's timings.  The workload and
 * every engine setting are described in docs/benchmarks.md; keep the two
 * in step.
 *
 * The data.  Record number r (0, 1, 2, ...) determines everything about a
 * record, so nothing has to be kept in memory and any read can be checked:
 *   user      = mix64(r ^ SALT_USER) % users
 *   timestamp = TS0 + r * TS_STEP          (increases with r)
 *   id        = mix64(r ^ SALT_ID)
 *   key       = be64(user) be64(timestamp) be64(id)      (24 bytes)
 *   value     = 250..350 bytes of English words from a fixed vocabulary,
 *               drawn by a PRNG seeded from r (text, so it compresses like
 *               real memories do)
 * A key read back is mapped to r through its timestamp and checked field by
 * field; values read back are compared with the regenerated value.
 *
 * Timing.  Each operation is timed with CLOCK_MONOTONIC into an array;
 * percentiles are nearest-rank over the sorted array.  Throughput counts
 * the time spent in engine calls (including batch building), not the time
 * spent generating synthetic records: records are generated in chunks
 * outside the timed loops.
 *
 * The recovery case re-executes this program (/proc/self/exe) in a forked
 * child with the hidden first argument --recovery-child, so the child does
 * not inherit the parent's engine threads; the child writes and reports
 * through a pipe, the parent SIGKILLs it and times the reopen.
 *
 * Nothing here is part of the test run; a failure (engine error, wrong
 * value read back) aborts the benchmark with a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <leveldb/c.h>
#include <rocksdb/c.h>

#include "base/err.h"
#include "storage/kv.h"

#include "bench_util.h"

/* ------------------------------------------------------------ settings */

#define MB ((size_t)1 << 20)
#define WRITE_BUFFER (16 * MB)
#define RECOVERY_WRITE_BUFFER (256 * MB) /* so the child flushes nothing */
#define BLOCK_CACHE (64 * MB)
#define BLOCK_SIZE 4096
#define BLOOM_BITS 10

#define KEY_LEN 24
#define VALUE_MIN 250
#define VALUE_SPAN 101 /* values are VALUE_MIN .. VALUE_MIN+VALUE_SPAN-1 */
#define VALUE_CAP 512  /* generation may overshoot the target by a word */
#define TS0 UINT64_C(1700000000000000) /* µs since the epoch (Nov 2023) */
#define TS_STEP UINT64_C(1000)
#define SALT_USER UINT64_C(0x7573657273616c74)
#define SALT_ID UINT64_C(0x69646964646964ff)
#define SALT_VALUE UINT64_C(0x76616c756573616c)

#define BASE_USERS 10000.0
#define BASE_SEQ 1000000.0
#define BASE_BATCH 1000000.0
#define BATCH_LEN 100
#define BASE_SYNC 2000.0 /* puts per thread */
#define SYNC_THREADS 8
#define BASE_GETS 100000.0
#define BASE_SCANS 10000.0
#define SCAN_LEN 50
#define BASE_RECOVERY 200000.0
#define CHUNK 1024      /* records generated per untimed step */
#define VERIFY_SAMPLE 1000

static struct {
    double scale;
    bool is_json;
    const char *dir;
    uint64_t users;
    uint64_t n_seq, n_batch, n_sync, n_gets, n_scans, n_recovery;
} cfg = { .scale = 1.0, .dir = "./bench-data" };

/* --------------------------------------------------------- the records */

static const char *const vocab[] = {
    "the", "a", "and", "to", "of", "in", "is", "that", "it", "for", "on",
    "with", "as", "was", "at", "by", "be", "this", "from", "or", "an", "but",
    "not", "are", "his", "her", "they", "we", "you", "she", "he", "my",
    "their", "our", "your", "has", "have", "had", "will", "would", "can",
    "could", "should", "may", "might", "must", "do", "does", "did", "said",
    "says", "told", "asked", "wants", "likes", "loves", "hates", "prefers",
    "needs", "thinks", "knows", "remembers", "forgot", "mentioned",
    "decided", "plans", "started", "stopped", "moved", "bought", "sold",
    "visited", "called", "met", "works", "lives", "studies", "teaches",
    "travels", "cooks", "reads", "writes", "drives", "runs", "walks",
    "user", "assistant", "agent", "meeting", "project", "deadline",
    "birthday", "anniversary", "holiday", "vacation", "weekend", "morning",
    "evening", "night", "today", "yesterday", "tomorrow", "week", "month",
    "year", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
    "Saturday", "Sunday", "January", "February", "March", "April", "May",
    "June", "July", "August", "September", "October", "November",
    "December", "coffee", "tea", "breakfast", "lunch", "dinner", "pizza",
    "pasta", "salad", "vegetarian", "vegan", "allergic", "peanuts",
    "gluten", "dairy", "restaurant", "kitchen", "recipe", "garden", "house",
    "apartment", "office", "school", "university", "hospital", "doctor",
    "dentist", "appointment", "gym", "yoga", "running", "cycling",
    "swimming", "hiking", "football", "tennis", "music", "guitar", "piano",
    "concert", "movie", "book", "novel", "podcast", "series", "game",
    "language", "Spanish", "French", "German", "Japanese", "Python", "code",
    "software", "engineer", "manager", "designer", "teacher", "nurse",
    "lawyer", "company", "team", "colleague", "friend", "family", "mother",
    "father", "sister", "brother", "daughter", "son", "wife", "husband",
    "partner", "dog", "cat", "puppy", "kitten", "car", "bike", "train",
    "flight", "airport", "hotel", "city", "Paris", "Berlin", "Tokyo",
    "London", "Lisbon", "Madrid", "Rome", "beach", "mountain", "lake",
    "river", "park", "weather", "rain", "snow", "sunny", "cold", "warm",
    "budget", "salary", "money", "bank", "rent", "mortgage", "insurance",
    "tax", "invoice", "contract", "email", "phone", "message", "calendar",
    "reminder", "note", "list", "task", "goal", "habit", "routine", "sleep",
    "health", "diet", "medication", "headache", "stress", "happy", "tired",
    "excited", "worried", "busy", "new", "old", "favorite", "important",
    "usual", "early", "late", "always", "never", "often", "sometimes",
    "usually", "again", "still", "already", "soon", "because", "after",
    "before", "during", "about", "around", "every", "each", "some", "many",
    "few", "more", "less", "very", "really", "quite", "just", "only", "also",
    "then", "when", "where", "which", "who", "what", "how", "why", "there",
    "here", "into", "over", "under", "between", "near", "next", "last",
    "first", "second", "third", "two", "three", "ten", "hundred", "gift",
    "party", "wedding", "trip", "ticket", "reservation", "order",
    "delivery", "package", "store", "market", "groceries", "shopping",
    "clothes", "shoes", "jacket", "laptop", "keyboard", "screen", "printer",
    "password", "account", "update", "version", "release", "bug", "feature",
    "review", "report", "presentation", "interview", "promotion", "course",
    "exam", "lesson", "homework", "class",
};
#define N_VOCAB (sizeof vocab / sizeof vocab[0])
static uint8_t vocab_len[N_VOCAB];

static void vocab_init(void)
{
    for (size_t i = 0; i < N_VOCAB; i++)
        vocab_len[i] = (uint8_t)strlen(vocab[i]);
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t rec_user(uint64_t r)
{
    return bench_mix64(r ^ SALT_USER) % cfg.users;
}
static uint64_t rec_ts(uint64_t r) { return TS0 + r * TS_STEP; }
static uint64_t rec_id(uint64_t r) { return bench_mix64(r ^ SALT_ID); }

static void rec_key(uint64_t r, uint8_t k[KEY_LEN])
{
    put_be64(k, rec_user(r));
    put_be64(k + 8, rec_ts(r));
    put_be64(k + 16, rec_id(r));
}

/* key_rec -- the record number of a key read back, after checking that
 * every field of the key is the one record r would have; false if the key
 * could not have been written by this benchmark. */
static bool key_rec(const uint8_t *k, size_t len, uint64_t n_records,
                    uint64_t *r)
{
    if (len != KEY_LEN)
        return false;
    uint64_t ts = get_be64(k + 8);
    if (ts < TS0 || (ts - TS0) % TS_STEP)
        return false;
    uint64_t rr = (ts - TS0) / TS_STEP;
    if (rr >= n_records || get_be64(k) != rec_user(rr) ||
        get_be64(k + 16) != rec_id(rr))
        return false;
    *r = rr;
    return true;
}

/* rec_value -- writes record r's value to out (VALUE_CAP bytes) and
 * returns its length: words from the vocabulary separated by spaces, a
 * sentence ending every 6..13 words, cut at a target length. */
static size_t rec_value(uint64_t r, uint8_t *out)
{
    bench_rng rng = { bench_mix64(r ^ SALT_VALUE) };
    size_t target = VALUE_MIN + (size_t)bench_rng_below(&rng, VALUE_SPAN);
    size_t n = 0;
    unsigned words_left = 6 + (unsigned)bench_rng_below(&rng, 8);
    bool is_start = true;
    while (n < target) {
        size_t w = (size_t)bench_rng_below(&rng, N_VOCAB);
        if (n)
            out[n++] = ' ';
        memcpy(out + n, vocab[w], vocab_len[w]);
        if (is_start && out[n] >= 'a' && out[n] <= 'z')
            out[n] = (uint8_t)(out[n] - 'a' + 'A');
        n += vocab_len[w];
        is_start = false;
        if (--words_left == 0) {
            out[n++] = '.';
            is_start = true;
            words_left = 6 + (unsigned)bench_rng_below(&rng, 8);
        }
    }
    return target;
}

/* A chunk of generated records: keys and values laid out for the timed
 * loops. */
typedef struct recs {
    size_t n;
    uint8_t (*key)[KEY_LEN];
    uint8_t *val; /* n * VALUE_CAP */
    size_t *val_len;
} recs;

static void recs_init(recs *c, size_t cap)
{
    c->n = 0;
    c->key = bench_xmalloc(cap * KEY_LEN);
    c->val = bench_xmalloc(cap * VALUE_CAP);
    c->val_len = bench_xmalloc(cap * sizeof *c->val_len);
}

static void recs_fini(recs *c)
{
    free(c->key);
    free(c->val);
    free(c->val_len);
}

/* records r0, r0+1, ..., r0+n-1 */
static void recs_fill(recs *c, uint64_t r0, size_t n)
{
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        rec_key(r0 + i, c->key[i]);
        c->val_len[i] = rec_value(r0 + i, c->val + i * VALUE_CAP);
    }
}

/* ------------------------------------------------------- engine table */

/*
 * One storage engine.  Handles are opaque.  A failing call prints the
 * engine's message and aborts the benchmark (bench_die), so the functions
 * have no error returns except get's "absent".  get's value is borrowed
 * from the handle until the next get on it, so gets on one handle are
 * single-threaded; put and write may be called from many threads.
 */
typedef struct eng_ops {
    const char *name;
    const char *(*compression)(void); /* static string */
    void *(*open)(const char *dir, size_t write_buffer);
    void (*close)(void *h);
    void (*put)(void *h, const uint8_t *k, size_t kl, const uint8_t *v,
                size_t vl, bool is_sync);
    void *(*batch_new)(void);
    void (*batch_put)(void *b, const uint8_t *k, size_t kl, const uint8_t *v,
                      size_t vl);
    void (*batch_clear)(void *b);
    void (*batch_free)(void *b);
    void (*write)(void *h, void *b, bool is_sync);
    /* true and the value in *v,*vl when present; false when absent */
    bool (*get)(void *h, const uint8_t *k, size_t kl, const uint8_t **v,
                size_t *vl);
    void *(*it_new)(void *h);
    /* it_seek_before -- positions at the last key < t (t is never a stored
     * key in this benchmark, so "<= t" engines do the same thing) */
    void (*it_seek_before)(void *it, const uint8_t *t, size_t tl);
    bool (*it_valid)(void *it);
    void (*it_prev)(void *it);
    const uint8_t *(*it_key)(void *it, size_t *len);
    const uint8_t *(*it_value)(void *it, size_t *len);
    void (*it_check)(void *it); /* dies if the iterator hit an error */
    void (*it_free)(void *it);
    void (*flush)(void *h);   /* memtable -> table file, waits */
    void (*compact)(void *h); /* everything, whole key range, waits */
    /* shape -- "L0:a L1:b ..." table files per level, for the notes */
    void (*shape)(void *h, char *out, size_t cap);
    /* is_busy -- true while background flushes or compactions are running
     * or due (some level over its size target) */
    bool (*is_busy)(void *h);
} eng_ops;

/* Appends " Ln:files" for each level with files. */
static void shape_add(char *out, size_t cap, int level, uint64_t files)
{
    size_t len = strlen(out);
    if (files && len < cap)
        snprintf(out + len, cap - len, "%sL%d:%" PRIu64, len ? " " : "",
                 level, files);
}

/* ---- deltamemory (src/storage/kv.h) */

typedef struct dmk_h {
    kv_db *db;
    buf val;
} dmk_h;

static void dmk_check(int rc, const char *what)
{
    if (rc != DM_OK)
        bench_die("deltamemory: %s: %s (%s)", what, dm_errname(rc),
                  err_last_msg());
}

static const char *dmk_compression(void)
{
    kv_options o = kv_options_default();
    static char s[32];
    switch (o.table.compression) {
    case SST_COMP_NONE: return "none";
    case SST_COMP_LZ4: return "lz4";
    case SST_COMP_ZSTD:
        snprintf(s, sizeof s, "zstd(%d)", o.table.zstd_level);
        return s;
    default:
        snprintf(s, sizeof s, "code %d", o.table.compression);
        return s;
    }
}

static void *dmk_open(const char *dir, size_t write_buffer)
{
    dmk_h *h = bench_xmalloc(sizeof *h);
    kv_options o = kv_options_default();
    o.create_if_missing = true;
    o.write_buffer_size = write_buffer;
    o.block_cache_size = BLOCK_CACHE;
    o.table.block_size = BLOCK_SIZE;
    o.table.bloom_bits_per_key = BLOOM_BITS;
    buf_init(&h->val);
    dmk_check(kv_open(dir, &o, &h->db), dir);
    return h;
}

static void dmk_close(void *hp)
{
    dmk_h *h = hp;
    dmk_check(kv_close(h->db), "close");
    buf_fini(&h->val);
    free(h);
}

static kv_write_options dmk_wo(bool is_sync)
{
    kv_write_options wo = { is_sync ? KV_SYNC_ALWAYS : KV_SYNC_NONE };
    return wo;
}

static void dmk_put(void *hp, const uint8_t *k, size_t kl, const uint8_t *v,
                   size_t vl, bool is_sync)
{
    kv_write_options wo = dmk_wo(is_sync);
    dmk_check(kv_put(((dmk_h *)hp)->db, &wo, buf_slice_of(k, kl),
                    buf_slice_of(v, vl)),
             "put");
}

static void *dmk_batch_new(void)
{
    kv_batch *b = kv_batch_new();
    if (!b)
        bench_die("deltamemory: kv_batch_new: out of memory");
    return b;
}

static void dmk_batch_put(void *b, const uint8_t *k, size_t kl,
                         const uint8_t *v, size_t vl)
{
    dmk_check(kv_batch_put(b, buf_slice_of(k, kl), buf_slice_of(v, vl)),
             "batch_put");
}

static void dmk_batch_clear(void *b) { kv_batch_clear(b); }
static void dmk_batch_free(void *b) { kv_batch_free(b); }

static void dmk_write(void *hp, void *b, bool is_sync)
{
    kv_write_options wo = dmk_wo(is_sync);
    dmk_check(kv_write(((dmk_h *)hp)->db, &wo, b), "write");
}

static bool dmk_get(void *hp, const uint8_t *k, size_t kl, const uint8_t **v,
                   size_t *vl)
{
    dmk_h *h = hp;
    int rc = kv_get(h->db, NULL, buf_slice_of(k, kl), &h->val);
    if (rc == DM_ENOTFOUND)
        return false;
    dmk_check(rc, "get");
    *v = h->val.ptr;
    *vl = h->val.len;
    return true;
}

static void *dm_it_new(void *hp)
{
    iter *it = NULL;
    dmk_check(kv_iter_new(((dmk_h *)hp)->db, NULL, &it), "iter_new");
    return it;
}

static void dm_it_seek_before(void *it, const uint8_t *t, size_t tl)
{
    iter_seek(it, buf_slice_of(t, tl));
    if (iter_valid(it))
        iter_prev(it);
    else
        iter_seek_last(it);
}

static bool dm_it_valid(void *it) { return iter_valid(it); }
static void dm_it_prev(void *it) { iter_prev(it); }

static const uint8_t *dm_it_key(void *it, size_t *len)
{
    buf_slice s = iter_key(it);
    *len = s.len;
    return s.ptr;
}

static const uint8_t *dm_it_value(void *it, size_t *len)
{
    buf_slice s = iter_value(it);
    *len = s.len;
    return s.ptr;
}

static void dm_it_check(void *it) { dmk_check(iter_status(it), "iterator"); }
static void dm_it_free(void *it) { iter_free(it); }
static void dm_flush(void *hp)
{
    dmk_check(kv_flush(((dmk_h *)hp)->db), "flush");
}

static void dm_compact(void *hp)
{
    dmk_check(kv_compact_range(((dmk_h *)hp)->db, NULL, NULL), "compact");
}

static void dm_shape(void *hp, char *out, size_t cap)
{
    kv_stats st;
    dmk_check(kv_stats_get(((dmk_h *)hp)->db, &st), "stats");
    out[0] = 0;
    for (int l = 0; l < KV_MAX_LEVELS; l++)
        shape_add(out, cap, l, st.levels[l].files);
}

/* Busy while the engine says a flush or compaction is running or due. */
static bool dm_is_busy(void *hp)
{
    kv_stats st;
    dmk_check(kv_stats_get(((dmk_h *)hp)->db, &st), "stats");
    return st.is_background_busy;
}

static const eng_ops eng_deltamemory = {
    "deltamemory", dmk_compression, dmk_open, dmk_close, dmk_put,
    dmk_batch_new, dmk_batch_put, dmk_batch_clear, dmk_batch_free, dmk_write,
    dmk_get, dm_it_new, dm_it_seek_before, dm_it_valid, dm_it_prev,
    dm_it_key, dm_it_value, dm_it_check, dm_it_free, dm_flush, dm_compact,
    dm_shape, dm_is_busy,
};

/* ---- RocksDB (rocksdb/c.h) */

typedef struct rdb_h {
    rocksdb_t *db;
    rocksdb_options_t *opt;
    rocksdb_cache_t *cache;
    rocksdb_writeoptions_t *wo[2]; /* [is_sync] */
    rocksdb_readoptions_t *ro;
    char *val; /* the last get's value (rocksdb_free) */
} rdb_h;

static void rdb_check(char *err, const char *what)
{
    if (err)
        bench_die("rocksdb: %s: %s", what, err);
}

static const char *rdb_compression(void)
{
    rocksdb_options_t *o = rocksdb_options_create();
    int c = rocksdb_options_get_compression(o);
    rocksdb_options_destroy(o);
    switch (c) {
    case rocksdb_no_compression: return "none";
    case rocksdb_snappy_compression: return "snappy";
    case rocksdb_zlib_compression: return "zlib";
    case rocksdb_lz4_compression: return "lz4";
    case rocksdb_zstd_compression: return "zstd";
    default: return "other";
    }
}

static void *rdb_open(const char *dir, size_t write_buffer)
{
    rdb_h *h = calloc(1, sizeof *h);
    if (!h)
        bench_die("out of memory");
    h->opt = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(h->opt, 1);
    rocksdb_options_set_write_buffer_size(h->opt, write_buffer);
    rocksdb_block_based_table_options_t *t =
        rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_size(t, BLOCK_SIZE);
    /* the table options take ownership of the filter policy */
    rocksdb_block_based_options_set_filter_policy(
        t, rocksdb_filterpolicy_create_bloom_full(BLOOM_BITS));
    h->cache = rocksdb_cache_create_lru(BLOCK_CACHE);
    rocksdb_block_based_options_set_block_cache(t, h->cache);
    /* the options keep their own copy of the table options */
    rocksdb_options_set_block_based_table_factory(h->opt, t);
    rocksdb_block_based_options_destroy(t);
    for (int s = 0; s < 2; s++) {
        h->wo[s] = rocksdb_writeoptions_create();
        rocksdb_writeoptions_set_sync(h->wo[s], (unsigned char)s);
    }
    h->ro = rocksdb_readoptions_create();
    char *err = NULL;
    h->db = rocksdb_open(h->opt, dir, &err);
    rdb_check(err, dir);
    return h;
}

static void rdb_close(void *hp)
{
    rdb_h *h = hp;
    rocksdb_close(h->db);
    rocksdb_free(h->val);
    rocksdb_readoptions_destroy(h->ro);
    for (int s = 0; s < 2; s++)
        rocksdb_writeoptions_destroy(h->wo[s]);
    rocksdb_options_destroy(h->opt);
    rocksdb_cache_destroy(h->cache);
    free(h);
}

static void rdb_put(void *hp, const uint8_t *k, size_t kl, const uint8_t *v,
                    size_t vl, bool is_sync)
{
    rdb_h *h = hp;
    char *err = NULL;
    rocksdb_put(h->db, h->wo[is_sync], (const char *)k, kl, (const char *)v,
                vl, &err);
    rdb_check(err, "put");
}

static void *rdb_batch_new(void) { return rocksdb_writebatch_create(); }

static void rdb_batch_put(void *b, const uint8_t *k, size_t kl,
                          const uint8_t *v, size_t vl)
{
    rocksdb_writebatch_put(b, (const char *)k, kl, (const char *)v, vl);
}

static void rdb_batch_clear(void *b) { rocksdb_writebatch_clear(b); }
static void rdb_batch_free(void *b) { rocksdb_writebatch_destroy(b); }

static void rdb_write(void *hp, void *b, bool is_sync)
{
    rdb_h *h = hp;
    char *err = NULL;
    rocksdb_write(h->db, h->wo[is_sync], b, &err);
    rdb_check(err, "write");
}

static bool rdb_get(void *hp, const uint8_t *k, size_t kl, const uint8_t **v,
                    size_t *vl)
{
    rdb_h *h = hp;
    char *err = NULL;
    rocksdb_free(h->val);
    h->val = rocksdb_get(h->db, h->ro, (const char *)k, kl, vl, &err);
    rdb_check(err, "get");
    *v = (const uint8_t *)h->val;
    return h->val != NULL;
}

static void *rdb_it_new(void *hp)
{
    rdb_h *h = hp;
    return rocksdb_create_iterator(h->db, h->ro);
}

static void rdb_it_seek_before(void *it, const uint8_t *t, size_t tl)
{
    rocksdb_iter_seek_for_prev(it, (const char *)t, tl);
}

static bool rdb_it_valid(void *it) { return rocksdb_iter_valid(it) != 0; }
static void rdb_it_prev(void *it) { rocksdb_iter_prev(it); }

static const uint8_t *rdb_it_key(void *it, size_t *len)
{
    return (const uint8_t *)rocksdb_iter_key(it, len);
}

static const uint8_t *rdb_it_value(void *it, size_t *len)
{
    return (const uint8_t *)rocksdb_iter_value(it, len);
}

static void rdb_it_check(void *it)
{
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rdb_check(err, "iterator");
}

static void rdb_it_free(void *it) { rocksdb_iter_destroy(it); }

static void rdb_flush(void *hp)
{
    rdb_h *h = hp;
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    char *err = NULL;
    rocksdb_flush(h->db, fo, &err);
    rocksdb_flushoptions_destroy(fo);
    rdb_check(err, "flush");
}

static void rdb_compact(void *hp)
{
    rocksdb_compact_range(((rdb_h *)hp)->db, NULL, 0, NULL, 0);
}

/* Busy while a flush or compaction is running or wanted.  (A manual
 * compaction can leave level 1 above its size target, which RocksDB then
 * fixes in the background.) */
static bool rdb_is_busy(void *hp)
{
    static const char *const props[] = {
        "rocksdb.mem-table-flush-pending", "rocksdb.compaction-pending",
        "rocksdb.num-running-flushes", "rocksdb.num-running-compactions",
    };
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++) {
        uint64_t v = 0;
        if (rocksdb_property_int(((rdb_h *)hp)->db, props[i], &v) == 0 && v)
            return true;
    }
    return false;
}

static void rdb_shape(void *hp, char *out, size_t cap)
{
    out[0] = 0;
    for (int l = 0; l < 7; l++) {
        char name[64];
        snprintf(name, sizeof name, "rocksdb.num-files-at-level%d", l);
        char *v = rocksdb_property_value(((rdb_h *)hp)->db, name);
        if (v)
            shape_add(out, cap, l, strtoull(v, NULL, 10));
        rocksdb_free(v);
    }
}

static const eng_ops eng_rocksdb = {
    "rocksdb", rdb_compression, rdb_open, rdb_close, rdb_put,
    rdb_batch_new, rdb_batch_put, rdb_batch_clear, rdb_batch_free, rdb_write,
    rdb_get, rdb_it_new, rdb_it_seek_before, rdb_it_valid, rdb_it_prev,
    rdb_it_key, rdb_it_value, rdb_it_check, rdb_it_free, rdb_flush,
    rdb_compact, rdb_shape, rdb_is_busy,
};

/* ---- LevelDB (leveldb/c.h) */

typedef struct ldb_h {
    leveldb_t *db;
    leveldb_options_t *opt;
    leveldb_cache_t *cache;         /* must outlive db */
    leveldb_filterpolicy_t *filter; /* must outlive db */
    leveldb_writeoptions_t *wo[2];  /* [is_sync] */
    leveldb_readoptions_t *ro;
    char *val; /* the last get's value (leveldb_free) */
} ldb_h;

static void ldb_check(char *err, const char *what)
{
    if (err)
        bench_die("leveldb: %s: %s", what, err);
}

/* LevelDB has no getter; leveldb::Options() defaults to snappy, and the
 * Debian library is linked with libsnappy (else it would store blocks
 * uncompressed). */
static const char *ldb_compression(void) { return "snappy"; }

static void *ldb_open(const char *dir, size_t write_buffer)
{
    ldb_h *h = calloc(1, sizeof *h);
    if (!h)
        bench_die("out of memory");
    h->opt = leveldb_options_create();
    leveldb_options_set_create_if_missing(h->opt, 1);
    leveldb_options_set_write_buffer_size(h->opt, write_buffer);
    leveldb_options_set_block_size(h->opt, BLOCK_SIZE);
    h->cache = leveldb_cache_create_lru(BLOCK_CACHE);
    leveldb_options_set_cache(h->opt, h->cache);
    h->filter = leveldb_filterpolicy_create_bloom(BLOOM_BITS);
    leveldb_options_set_filter_policy(h->opt, h->filter);
    for (int s = 0; s < 2; s++) {
        h->wo[s] = leveldb_writeoptions_create();
        leveldb_writeoptions_set_sync(h->wo[s], (unsigned char)s);
    }
    /* RocksDB verifies block checksums on reads by default and our engine
     * always does; LevelDB's default is off, so turn it on to compare the
     * same work. */
    h->ro = leveldb_readoptions_create();
    leveldb_readoptions_set_verify_checksums(h->ro, 1);
    char *err = NULL;
    h->db = leveldb_open(h->opt, dir, &err);
    ldb_check(err, dir);
    return h;
}

static void ldb_close(void *hp)
{
    ldb_h *h = hp;
    leveldb_close(h->db);
    leveldb_free(h->val);
    leveldb_readoptions_destroy(h->ro);
    for (int s = 0; s < 2; s++)
        leveldb_writeoptions_destroy(h->wo[s]);
    leveldb_options_destroy(h->opt);
    leveldb_filterpolicy_destroy(h->filter);
    leveldb_cache_destroy(h->cache);
    free(h);
}

static void ldb_put(void *hp, const uint8_t *k, size_t kl, const uint8_t *v,
                    size_t vl, bool is_sync)
{
    ldb_h *h = hp;
    char *err = NULL;
    leveldb_put(h->db, h->wo[is_sync], (const char *)k, kl, (const char *)v,
                vl, &err);
    ldb_check(err, "put");
}

static void *ldb_batch_new(void) { return leveldb_writebatch_create(); }

static void ldb_batch_put(void *b, const uint8_t *k, size_t kl,
                          const uint8_t *v, size_t vl)
{
    leveldb_writebatch_put(b, (const char *)k, kl, (const char *)v, vl);
}

static void ldb_batch_clear(void *b) { leveldb_writebatch_clear(b); }
static void ldb_batch_free(void *b) { leveldb_writebatch_destroy(b); }

static void ldb_write(void *hp, void *b, bool is_sync)
{
    ldb_h *h = hp;
    char *err = NULL;
    leveldb_write(h->db, h->wo[is_sync], b, &err);
    ldb_check(err, "write");
}

static bool ldb_get(void *hp, const uint8_t *k, size_t kl, const uint8_t **v,
                    size_t *vl)
{
    ldb_h *h = hp;
    char *err = NULL;
    leveldb_free(h->val);
    h->val = leveldb_get(h->db, h->ro, (const char *)k, kl, vl, &err);
    ldb_check(err, "get");
    *v = (const uint8_t *)h->val;
    return h->val != NULL;
}

static void *ldb_it_new(void *hp)
{
    ldb_h *h = hp;
    return leveldb_create_iterator(h->db, h->ro);
}

static void ldb_it_seek_before(void *it, const uint8_t *t, size_t tl)
{
    leveldb_iter_seek(it, (const char *)t, tl);
    if (leveldb_iter_valid(it))
        leveldb_iter_prev(it);
    else
        leveldb_iter_seek_to_last(it);
}

static bool ldb_it_valid(void *it) { return leveldb_iter_valid(it) != 0; }
static void ldb_it_prev(void *it) { leveldb_iter_prev(it); }

static const uint8_t *ldb_it_key(void *it, size_t *len)
{
    return (const uint8_t *)leveldb_iter_key(it, len);
}

static const uint8_t *ldb_it_value(void *it, size_t *len)
{
    return (const uint8_t *)leveldb_iter_value(it, len);
}

static void ldb_it_check(void *it)
{
    char *err = NULL;
    leveldb_iter_get_error(it, &err);
    ldb_check(err, "iterator");
}

static void ldb_it_free(void *it) { leveldb_iter_destroy(it); }

/* The C API has no flush; CompactRange always flushes the memtable first
 * and then compacts only files overlapping the range, so a range above
 * every key of this benchmark (keys start with a user number < 2^56) is a
 * pure flush. */
static void ldb_flush(void *hp)
{
    static const char lo[] = "\xff", hi[] = "\xff\xff";
    leveldb_compact_range(((ldb_h *)hp)->db, lo, 1, hi, 2);
}

static void ldb_compact(void *hp)
{
    leveldb_compact_range(((ldb_h *)hp)->db, NULL, 0, NULL, 0);
}

static void ldb_shape(void *hp, char *out, size_t cap)
{
    out[0] = 0;
    for (int l = 0; l < 7; l++) {
        char name[64];
        snprintf(name, sizeof name, "leveldb.num-files-at-level%d", l);
        char *v = leveldb_property_value(((ldb_h *)hp)->db, name);
        if (v)
            shape_add(out, cap, l, strtoull(v, NULL, 10));
        leveldb_free(v);
    }
}

/* LevelDB has no "compaction running" property, so apply its own rule
 * (version_set.cc, Finalize): a compaction is due when level 0 holds 4
 * files or a level 1..5 holds at least 10 MB * 10^(level-1); the bytes per
 * level come from "leveldb.sstables" (lines " number:size[...]" under
 * "--- level N ---").  Seek-triggered compactions cannot be seen. */
static bool ldb_is_busy(void *hp)
{
    char *v = leveldb_property_value(((ldb_h *)hp)->db, "leveldb.sstables");
    uint64_t files[7] = { 0 }, bytes[7] = { 0 };
    int level = -1;
    for (char *line = v; line && *line;) {
        char *nl = strchr(line, '\n');
        int l;
        unsigned long long number, size;
        if (sscanf(line, "--- level %d ---", &l) == 1)
            level = l;
        else if (level >= 0 && level < 7 &&
                 sscanf(line, " %llu:%llu", &number, &size) == 2) {
            files[level]++;
            bytes[level] += size;
        }
        line = nl ? nl + 1 : NULL;
    }
    leveldb_free(v);
    if (files[0] >= 4)
        return true;
    double max = 10.0 * 1048576.0;
    for (int l = 1; l < 6; l++, max *= 10)
        if ((double)bytes[l] >= max)
            return true;
    return false;
}

static const eng_ops eng_leveldb = {
    "leveldb", ldb_compression, ldb_open, ldb_close, ldb_put,
    ldb_batch_new, ldb_batch_put, ldb_batch_clear, ldb_batch_free, ldb_write,
    ldb_get, ldb_it_new, ldb_it_seek_before, ldb_it_valid, ldb_it_prev,
    ldb_it_key, ldb_it_value, ldb_it_check, ldb_it_free, ldb_flush,
    ldb_compact, ldb_shape, ldb_is_busy,
};

static const eng_ops *const all_engines[] = {
    &eng_deltamemory, &eng_rocksdb, &eng_leveldb,
};
#define N_ALL_ENGINES (sizeof all_engines / sizeof all_engines[0])

static const eng_ops *engine_by_name(const char *name, size_t len)
{
    for (size_t i = 0; i < N_ALL_ENGINES; i++)
        if (strlen(all_engines[i]->name) == len &&
            !memcmp(all_engines[i]->name, name, len))
            return all_engines[i];
    return NULL;
}

/* ------------------------------------------------------- run state */

/* One engine's state across cases.  The main database receives the
 * put_seq records [0, n_seq) and the put_batch100 records
 * [n_seq, n_seq + n_batch), and serves get_random, scan_newest50 and
 * disk_bytes. */
typedef struct eng_run {
    const eng_ops *ops;
    char root[4096];
    char main_dir[4200];
    bool has_seq, has_batch, is_prepared;
} eng_run;

typedef struct result {
    double ops_per_s;
    double p50_us;
    double p99_us;
    uint64_t bytes;
} result;

static void path_join(char *out, size_t cap, const char *a, const char *b)
{
    if ((size_t)snprintf(out, cap, "%s/%s", a, b) >= cap)
        bench_die("path too long: %s/%s", a, b);
}

static void make_dir(const char *p)
{
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        bench_die("mkdir %s: %s", p, strerror(errno));
}

/* Between runs: push dirty pages to disk so that the next run does not pay
 * for this one's writeback. */
static void settle(void) { sync(); }

/* wait_quiet -- waits (untimed) until the engine has no background work
 * running or due, so the next measurement starts from a steady tree;
 * gives up after 10 minutes with a note.  Prints how long it waited. */
#define QUIET_POLL_NS (100u * 1000u * 1000u)
#define QUIET_MAX_NS (600ull * 1000u * 1000u * 1000u)
static void wait_quiet(const eng_ops *e, void *h, const char *after)
{
    uint64_t t0 = bench_now_ns();
    while (e->is_busy(h)) {
        if (bench_now_ns() - t0 > QUIET_MAX_NS) {
            fprintf(stderr, "#   (%s: still busy after %s; going on)\n",
                    e->name, after);
            return;
        }
        struct timespec ts = { 0, QUIET_POLL_NS };
        nanosleep(&ts, NULL);
    }
    char shape[128];
    e->shape(h, shape, sizeof shape);
    fprintf(stderr, "#   (%s: background work after %s took %.2f s; files "
                    "per level [%s])\n",
            e->name, after, (double)(bench_now_ns() - t0) / 1e9, shape);
}

static void result_from(result *res, bench_lat *lat, uint64_t ops,
                        uint64_t elapsed_ns)
{
    res->ops_per_s = elapsed_ns ? (double)ops * 1e9 / (double)elapsed_ns : 0;
    res->p50_us = bench_lat_pct_us(lat, 0.50);
    res->p99_us = bench_lat_pct_us(lat, 0.99);
    res->bytes = 0;
}

/* verify_sample -- n random records of [lo, hi) must read back with their
 * exact values. */
static void verify_sample(const eng_ops *e, void *h, uint64_t lo, uint64_t hi,
                          size_t n, uint64_t seed)
{
    bench_rng rng = { seed };
    uint8_t key[KEY_LEN], want[VALUE_CAP];
    for (size_t i = 0; i < n && hi > lo; i++) {
        /* always include the last record written */
        uint64_t r = i == 0 ? hi - 1 : lo + bench_rng_below(&rng, hi - lo);
        rec_key(r, key);
        size_t want_len = rec_value(r, want);
        const uint8_t *v;
        size_t vl;
        if (!e->get(h, key, KEY_LEN, &v, &vl))
            bench_die("%s: record %" PRIu64 " missing", e->name, r);
        if (vl != want_len || memcmp(v, want, vl))
            bench_die("%s: record %" PRIu64 " has a wrong value (%zu bytes)",
                      e->name, r, vl);
    }
}

/* --------------------------------------------------------------- cases */

/* put_seq: n_seq single puts, timestamps increasing, sync none. */
static void case_put_seq(eng_run *er, result *res)
{
    const eng_ops *e = er->ops;
    void *h = e->open(er->main_dir, WRITE_BUFFER);
    recs c;
    bench_lat lat;
    recs_init(&c, CHUNK);
    bench_lat_init(&lat, cfg.n_seq);
    uint64_t elapsed = 0;
    for (uint64_t r0 = 0; r0 < cfg.n_seq; r0 += CHUNK) {
        size_t n = (size_t)(cfg.n_seq - r0 < CHUNK ? cfg.n_seq - r0 : CHUNK);
        recs_fill(&c, r0, n);
        uint64_t start = bench_now_ns();
        for (size_t i = 0; i < n; i++) {
            uint64_t t0 = bench_now_ns();
            e->put(h, c.key[i], KEY_LEN, c.val + i * VALUE_CAP, c.val_len[i],
                   false);
            bench_lat_add(&lat, bench_now_ns() - t0);
        }
        elapsed += bench_now_ns() - start;
    }
    result_from(res, &lat, cfg.n_seq, elapsed);
    verify_sample(e, h, 0, cfg.n_seq, VERIFY_SAMPLE, 11);
    wait_quiet(e, h, "put_seq");
    e->close(h);
    er->has_seq = true;
    bench_lat_fini(&lat);
    recs_fini(&c);
}

/* put_batch100: n_batch puts in batches of BATCH_LEN, sync none; latency
 * per batch write, throughput in puts (batch building included). */
static void case_put_batch(eng_run *er, result *res)
{
    const eng_ops *e = er->ops;
    void *h = e->open(er->main_dir, WRITE_BUFFER);
    void *b = e->batch_new();
    recs c;
    bench_lat lat;
    recs_init(&c, CHUNK);
    bench_lat_init(&lat, cfg.n_batch / BATCH_LEN + 1);
    uint64_t elapsed = 0;
    const uint64_t base = cfg.n_seq;
    const size_t chunk = (CHUNK / BATCH_LEN) * BATCH_LEN;
    for (uint64_t r0 = 0; r0 < cfg.n_batch; r0 += chunk) {
        size_t n =
            (size_t)(cfg.n_batch - r0 < chunk ? cfg.n_batch - r0 : chunk);
        recs_fill(&c, base + r0, n);
        uint64_t start = bench_now_ns();
        for (size_t i = 0; i < n; i += BATCH_LEN) {
            size_t m = n - i < BATCH_LEN ? n - i : BATCH_LEN;
            e->batch_clear(b);
            for (size_t j = i; j < i + m; j++)
                e->batch_put(b, c.key[j], KEY_LEN, c.val + j * VALUE_CAP,
                             c.val_len[j]);
            uint64_t t0 = bench_now_ns();
            e->write(h, b, false);
            bench_lat_add(&lat, bench_now_ns() - t0);
        }
        elapsed += bench_now_ns() - start;
    }
    result_from(res, &lat, cfg.n_batch, elapsed);
    verify_sample(e, h, base, base + cfg.n_batch, VERIFY_SAMPLE, 12);
    wait_quiet(e, h, "put_batch100");
    e->batch_free(b);
    e->close(h);
    er->has_batch = true;
    bench_lat_fini(&lat);
    recs_fini(&c);
}

/* put_sync_1t / put_sync_8t: each thread does n_sync single puts with
 * sync always into a fresh database; the threads start together. */
typedef struct sync_arg {
    const eng_ops *e;
    void *h;
    recs c;
    uint64_t *lat_ns; /* n_sync slots of the shared latency array */
    pthread_barrier_t *start;
} sync_arg;

static void *sync_worker(void *p)
{
    sync_arg *a = p;
    pthread_barrier_wait(a->start);
    for (size_t i = 0; i < a->c.n; i++) {
        uint64_t t0 = bench_now_ns();
        a->e->put(a->h, a->c.key[i], KEY_LEN, a->c.val + i * VALUE_CAP,
                  a->c.val_len[i], true);
        a->lat_ns[i] = bench_now_ns() - t0;
    }
    return NULL;
}

static void case_put_sync(eng_run *er, int n_threads, result *res)
{
    const eng_ops *e = er->ops;
    char dir[4200];
    path_join(dir, sizeof dir, er->root, n_threads == 1 ? "sync1" : "sync8");
    void *h = e->open(dir, WRITE_BUFFER);
    sync_arg args[SYNC_THREADS];
    pthread_t tid[SYNC_THREADS];
    pthread_barrier_t start;
    bench_lat lat;
    const uint64_t per = cfg.n_sync;
    bench_lat_init(&lat, per * (uint64_t)n_threads);
    lat.n = lat.cap;
    pthread_barrier_init(&start, NULL, (unsigned)n_threads + 1);
    for (int t = 0; t < n_threads; t++) {
        args[t].e = e;
        args[t].h = h;
        recs_init(&args[t].c, per);
        recs_fill(&args[t].c, (uint64_t)t * per, per);
        args[t].lat_ns = lat.ns + (uint64_t)t * per;
        args[t].start = &start;
        if (pthread_create(&tid[t], NULL, sync_worker, &args[t]) != 0)
            bench_die("pthread_create failed");
    }
    pthread_barrier_wait(&start);
    uint64_t t0 = bench_now_ns();
    for (int t = 0; t < n_threads; t++)
        pthread_join(tid[t], NULL);
    uint64_t elapsed = bench_now_ns() - t0;
    result_from(res, &lat, per * (uint64_t)n_threads, elapsed);
    verify_sample(e, h, 0, per * (uint64_t)n_threads, VERIFY_SAMPLE, 13);
    e->close(h);
    for (int t = 0; t < n_threads; t++)
        recs_fini(&args[t].c);
    pthread_barrier_destroy(&start);
    bench_lat_fini(&lat);
    bench_rm_rf(dir);
}

/* The main database must hold both loads before the read cases; a load
 * that was not selected as a case runs unreported. */
static void ensure_loaded(eng_run *er)
{
    result ignored;
    if (!er->has_seq) {
        fprintf(stderr, "#   (loading put_seq records into %s)\n",
                er->ops->name);
        case_put_seq(er, &ignored);
        settle();
    }
    if (!er->has_batch) {
        fprintf(stderr, "#   (loading put_batch100 records into %s)\n",
                er->ops->name);
        case_put_batch(er, &ignored);
        settle();
    }
}

/* Steady state before reads, the same for every engine: flush the
 * memtable, then compact the whole key range (waits until done). */
static void ensure_prepared(eng_run *er)
{
    ensure_loaded(er);
    if (er->is_prepared)
        return;
    void *h = er->ops->open(er->main_dir, WRITE_BUFFER);
    char before[128];
    er->ops->shape(h, before, sizeof before);
    uint64_t t0 = bench_now_ns();
    er->ops->flush(h);
    uint64_t t1 = bench_now_ns();
    er->ops->compact(h);
    uint64_t t2 = bench_now_ns();
    fprintf(stderr, "#   (%s: files per level [%s]; flush %.2f s, full "
                    "compaction %.2f s)\n",
            er->ops->name, before, (double)(t1 - t0) / 1e9,
            (double)(t2 - t1) / 1e9);
    wait_quiet(er->ops, h, "the full compaction");
    er->ops->close(h);
    er->is_prepared = true;
    settle();
}

static uint64_t n_loaded(void) { return cfg.n_seq + cfg.n_batch; }

/* Per-user facts of the loaded records, for checking scans. */
static uint32_t *user_count;  /* records per user */
static uint64_t *user_newest; /* highest record number per user */

static void user_facts(void)
{
    if (user_count)
        return;
    user_count = calloc(cfg.users, sizeof *user_count);
    user_newest = calloc(cfg.users, sizeof *user_newest);
    if (!user_count || !user_newest)
        bench_die("out of memory");
    for (uint64_t r = 0; r < n_loaded(); r++) {
        uint64_t u = rec_user(r);
        user_count[u]++;
        user_newest[u] = r;
    }
}

/* get_random: point gets of random loaded records, every value checked. */
static void case_get_random(eng_run *er, result *res)
{
    const eng_ops *e = er->ops;
    ensure_prepared(er);
    void *h = e->open(er->main_dir, WRITE_BUFFER);
    bench_rng rng = { 4 };
    bench_lat lat;
    bench_lat_init(&lat, cfg.n_gets);
    uint8_t key[KEY_LEN], want[VALUE_CAP];
    uint64_t elapsed = 0;
    for (uint64_t i = 0; i < cfg.n_gets; i++) {
        uint64_t r = bench_rng_below(&rng, n_loaded());
        rec_key(r, key);
        const uint8_t *v;
        size_t vl;
        uint64_t t0 = bench_now_ns();
        bool is_found = e->get(h, key, KEY_LEN, &v, &vl);
        uint64_t dt = bench_now_ns() - t0;
        bench_lat_add(&lat, dt);
        elapsed += dt;
        size_t want_len = rec_value(r, want);
        if (!is_found)
            bench_die("%s: get: record %" PRIu64 " missing", e->name, r);
        if (vl != want_len || memcmp(v, want, vl))
            bench_die("%s: get: record %" PRIu64 " has a wrong value",
                      e->name, r);
    }
    result_from(res, &lat, cfg.n_gets, elapsed);
    char shape[128];
    e->shape(h, shape, sizeof shape);
    fprintf(stderr, "#   (%s: files per level after the gets [%s])\n", e->name,
            shape);
    e->close(h);
    bench_lat_fini(&lat);
}

/* scan_newest50: the newest SCAN_LEN records of a random user, read in
 * reverse from the end of the user's key range.  The timed part creates
 * the iterator, positions it, reads keys and values, and frees it; the
 * keys are then checked (order, owner, count, newest first) and every 8th
 * scan is repeated untimed to compare the values too. */
static int scan_user(const eng_ops *e, void *h, uint64_t u,
                     uint8_t keys[][KEY_LEN], uint64_t *sink)
{
    uint8_t target[8];
    put_be64(target, u + 1);
    void *it = e->it_new(h);
    e->it_seek_before(it, target, sizeof target);
    int n = 0;
    while (n < SCAN_LEN && e->it_valid(it)) {
        size_t kl, vl;
        const uint8_t *k = e->it_key(it, &kl);
        if (kl != KEY_LEN || get_be64(k) != u)
            break;
        const uint8_t *v = e->it_value(it, &vl);
        memcpy(keys[n++], k, KEY_LEN);
        *sink += vl + (vl ? v[vl - 1] : 0);
        e->it_prev(it);
    }
    e->it_check(it);
    e->it_free(it);
    return n;
}

static void scan_verify_values(const eng_ops *e, void *h, uint64_t u, int n)
{
    uint8_t target[8], want[VALUE_CAP];
    put_be64(target, u + 1);
    void *it = e->it_new(h);
    e->it_seek_before(it, target, sizeof target);
    for (int i = 0; i < n; i++) {
        size_t kl, vl;
        uint64_t r;
        if (!e->it_valid(it))
            bench_die("%s: scan: iterator ended early", e->name);
        const uint8_t *k = e->it_key(it, &kl);
        const uint8_t *v = e->it_value(it, &vl);
        if (!key_rec(k, kl, n_loaded(), &r))
            bench_die("%s: scan: foreign key", e->name);
        size_t want_len = rec_value(r, want);
        if (vl != want_len || memcmp(v, want, vl))
            bench_die("%s: scan: record %" PRIu64 " has a wrong value",
                      e->name, r);
        e->it_prev(it);
    }
    e->it_check(it);
    e->it_free(it);
}

static void case_scan(eng_run *er, result *res)
{
    const eng_ops *e = er->ops;
    ensure_prepared(er);
    user_facts();
    void *h = e->open(er->main_dir, WRITE_BUFFER);
    bench_rng rng = { 5 };
    bench_lat lat;
    bench_lat_init(&lat, cfg.n_scans);
    uint8_t keys[SCAN_LEN][KEY_LEN];
    uint64_t elapsed = 0, sink = 0;
    for (uint64_t i = 0; i < cfg.n_scans; i++) {
        uint64_t u = bench_rng_below(&rng, cfg.users);
        uint64_t t0 = bench_now_ns();
        int n = scan_user(e, h, u, keys, &sink);
        uint64_t dt = bench_now_ns() - t0;
        bench_lat_add(&lat, dt);
        elapsed += dt;
        int want_n = user_count[u] < SCAN_LEN ? (int)user_count[u] : SCAN_LEN;
        if (n != want_n)
            bench_die("%s: scan of user %" PRIu64 ": %d entries, want %d",
                      e->name, u, n, want_n);
        uint64_t prev_r = 0;
        for (int j = 0; j < n; j++) {
            uint64_t r;
            if (!key_rec(keys[j], KEY_LEN, n_loaded(), &r) || rec_user(r) != u)
                bench_die("%s: scan of user %" PRIu64 ": foreign key",
                          e->name, u);
            if (j == 0 && r != user_newest[u])
                bench_die("%s: scan of user %" PRIu64 ": newest is %" PRIu64
                          ", want %" PRIu64, e->name, u, r, user_newest[u]);
            if (j > 0 && r >= prev_r)
                bench_die("%s: scan of user %" PRIu64 ": not in reverse order",
                          e->name, u);
            prev_r = r;
        }
        if (i % 8 == 0)
            scan_verify_values(e, h, u, n);
    }
    if (sink == 0 && cfg.n_scans > 0)
        bench_die("%s: scans read nothing", e->name);
    result_from(res, &lat, cfg.n_scans, elapsed);
    e->close(h);
    bench_lat_fini(&lat);
}

/* recovery: the child (this program, --recovery-child) writes n_recovery
 * records with sync none into a fresh database whose memtable never fills,
 * reports through the pipe and waits to be SIGKILLed; the parent then times
 * the reopen, which must replay the whole WAL, and checks the records. */
static int recovery_child(int argc, char **argv)
{
    if (argc != 7)
        return 2;
    const eng_ops *e = engine_by_name(argv[2], strlen(argv[2]));
    const char *dir = argv[3];
    uint64_t n = strtoull(argv[4], NULL, 10);
    cfg.users = strtoull(argv[5], NULL, 10);
    int fd = atoi(argv[6]);
    if (!e || !cfg.users)
        return 2;
    void *h = e->open(dir, RECOVERY_WRITE_BUFFER);
    recs c;
    recs_init(&c, CHUNK);
    for (uint64_t r0 = 0; r0 < n; r0 += CHUNK) {
        size_t m = (size_t)(n - r0 < CHUNK ? n - r0 : CHUNK);
        recs_fill(&c, r0, m);
        for (size_t i = 0; i < m; i++)
            e->put(h, c.key[i], KEY_LEN, c.val + i * VALUE_CAP, c.val_len[i],
                   false);
    }
    /* Every put returned, so every record is in the OS (each engine writes
     * its WAL record to the kernel before acknowledging a sync-none put). */
    if (write(fd, "D", 1) != 1)
        return 3;
    for (;;)
        pause();
}

static void case_recovery(eng_run *er, result *res)
{
    const eng_ops *e = er->ops;
    char dir[4200], s_n[32], s_users[32], s_fd[16];
    path_join(dir, sizeof dir, er->root, "recovery");
    int pfd[2];
    if (pipe(pfd) != 0)
        bench_die("pipe: %s", strerror(errno));
    fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
    snprintf(s_n, sizeof s_n, "%" PRIu64, cfg.n_recovery);
    snprintf(s_users, sizeof s_users, "%" PRIu64, cfg.users);
    snprintf(s_fd, sizeof s_fd, "%d", pfd[1]);
    char *argv[] = { "bench_storage", "--recovery-child", (char *)e->name,
                     dir, s_n, s_users, s_fd, NULL };
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(pfd[1]);
    struct pollfd p = { pfd[0], POLLIN, 0 };
    char ch = 0;
    if (poll(&p, 1, 3600 * 1000) != 1 || read(pfd[0], &ch, 1) != 1 ||
        ch != 'D') {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        bench_die("%s: recovery child failed before writing everything",
                  e->name);
    }
    close(pfd[0]);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
        bench_die("%s: recovery child was not killed by SIGKILL", e->name);
    settle();

    uint64_t t0 = bench_now_ns();
    void *h = e->open(dir, RECOVERY_WRITE_BUFFER);
    uint64_t dt = bench_now_ns() - t0;
    verify_sample(e, h, 0, cfg.n_recovery, VERIFY_SAMPLE, 16);
    e->close(h);
    res->p50_us = res->p99_us = (double)dt / 1000.0;
    res->ops_per_s = dt ? (double)cfg.n_recovery * 1e9 / (double)dt : 0;
    res->bytes = 0;
    bench_rm_rf(dir);
}

/* disk_bytes: full compaction of the main database, then the apparent
 * size of every file in its directory (tables, WAL, MANIFEST, info logs). */
static void case_disk_bytes(eng_run *er, result *res)
{
    const eng_ops *e = er->ops;
    ensure_loaded(er);
    void *h = e->open(er->main_dir, WRITE_BUFFER);
    e->compact(h);
    wait_quiet(e, h, "the full compaction");
    e->close(h);
    memset(res, 0, sizeof *res);
    res->bytes = bench_dir_bytes(er->main_dir);
}

/* ----------------------------------------------------------- the driver */

enum case_id {
    C_PUT_SEQ, C_PUT_SYNC_1T, C_PUT_SYNC_8T, C_PUT_BATCH, C_GET_RANDOM,
    C_SCAN, C_RECOVERY, C_DISK_BYTES, N_CASES
};

static const char *const case_names[N_CASES] = {
    "put_seq", "put_sync_1t", "put_sync_8t", "put_batch100", "get_random",
    "scan_newest50", "recovery", "disk_bytes",
};

static void run_case(int c, eng_run *er, result *res)
{
    switch (c) {
    case C_PUT_SEQ: case_put_seq(er, res); break;
    case C_PUT_SYNC_1T: case_put_sync(er, 1, res); break;
    case C_PUT_SYNC_8T: case_put_sync(er, SYNC_THREADS, res); break;
    case C_PUT_BATCH: case_put_batch(er, res); break;
    case C_GET_RANDOM: case_get_random(er, res); break;
    case C_SCAN: case_scan(er, res); break;
    case C_RECOVERY: case_recovery(er, res); break;
    case C_DISK_BYTES: case_disk_bytes(er, res); break;
    }
}

static void print_result(int c, const eng_ops *e, const result *r)
{
    if (cfg.is_json)
        printf("{\"suite\":\"storage\",\"case\":\"%s\",\"engine\":\"%s\","
               "\"ops_per_s\":%.1f,\"p50_us\":%.2f,\"p99_us\":%.2f,"
               "\"bytes\":%" PRIu64 "}\n",
               case_names[c], e->name, r->ops_per_s, r->p50_us, r->p99_us,
               r->bytes);
    else
        printf("%-14s %-12s %12.0f %10.2f %10.2f %14" PRIu64 "\n",
               case_names[c], e->name, r->ops_per_s, r->p50_us, r->p99_us,
               r->bytes);
    fflush(stdout);
}

static void print_header(const eng_ops *const *engines, size_t n_engines)
{
    /* With --json stdout carries only the result lines. */
    FILE *f = cfg.is_json ? stderr : stdout;
    fprintf(f, "storage benchmark: scale %g, %" PRIu64 " users, keys %d B, "
               "values %d-%d B of text\n",
            cfg.scale, cfg.users, KEY_LEN, VALUE_MIN,
            VALUE_MIN + VALUE_SPAN - 1);
    fprintf(f, "settings (all engines): WAL on, write buffer %zu MB, block "
               "cache %zu MB LRU, block %d B, bloom %d bits/key\n",
            WRITE_BUFFER / MB, BLOCK_CACHE / MB, BLOCK_SIZE, BLOOM_BITS);
    for (size_t i = 0; i < n_engines; i++)
        fprintf(f, "  %-12s compression %s\n", engines[i]->name,
                engines[i]->compression());
    if (!cfg.is_json)
        fprintf(f, "\n%-14s %-12s %12s %10s %10s %14s\n", "case", "engine",
                "ops/s", "p50 us", "p99 us", "bytes");
    fflush(f);
}

static uint64_t scaled(double base)
{
    double v = base * cfg.scale;
    return v < 1.0 ? 1 : (uint64_t)(v + 0.5);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_storage [--json] [--scale F] [--engines a,b,c]\n"
            "                     [--cases x,y] [--dir D]\n"
            "engines: deltamemory rocksdb leveldb\n"
            "cases:   put_seq put_sync_1t put_sync_8t put_batch100 "
            "get_random scan_newest50 recovery disk_bytes\n");
    exit(2);
}

int main(int argc, char **argv)
{
    vocab_init();
    if (argc > 1 && !strcmp(argv[1], "--recovery-child"))
        return recovery_child(argc, argv);

    const char *engines_arg = "deltamemory,rocksdb,leveldb";
    const char *cases_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json"))
            cfg.is_json = true;
        else if (!strcmp(a, "--scale") && i + 1 < argc)
            cfg.scale = strtod(argv[++i], NULL);
        else if (!strcmp(a, "--engines") && i + 1 < argc)
            engines_arg = argv[++i];
        else if (!strcmp(a, "--cases") && i + 1 < argc)
            cases_arg = argv[++i];
        else if (!strcmp(a, "--dir") && i + 1 < argc)
            cfg.dir = argv[++i];
        else
            usage();
    }
    if (!(cfg.scale > 0))
        usage();

    const eng_ops *engines[N_ALL_ENGINES];
    size_t n_engines = 0;
    for (const char *p = engines_arg; *p;) {
        size_t len = strcspn(p, ",");
        const eng_ops *e = engine_by_name(p, len);
        if (!e) {
            fprintf(stderr, "unknown engine '%.*s'\n", (int)len, p);
            usage();
        }
        bool is_dup = false;
        for (size_t j = 0; j < n_engines; j++)
            is_dup |= engines[j] == e;
        if (!is_dup)
            engines[n_engines++] = e;
        p += len + (p[len] == ',');
    }
    bool want_case[N_CASES];
    for (int c = 0; c < N_CASES; c++)
        want_case[c] = cases_arg == NULL;
    for (const char *p = cases_arg; p && *p;) {
        size_t len = strcspn(p, ",");
        int found = -1;
        for (int c = 0; c < N_CASES; c++)
            if (strlen(case_names[c]) == len && !memcmp(case_names[c], p, len))
                found = c;
        if (found < 0) {
            fprintf(stderr, "unknown case '%.*s'\n", (int)len, p);
            usage();
        }
        want_case[found] = true;
        p += len + (p[len] == ',');
    }

    cfg.users = scaled(BASE_USERS);
    cfg.n_seq = scaled(BASE_SEQ);
    cfg.n_batch =
        ((scaled(BASE_BATCH) + BATCH_LEN - 1) / BATCH_LEN) * BATCH_LEN;
    cfg.n_sync = scaled(BASE_SYNC);
    cfg.n_gets = scaled(BASE_GETS);
    cfg.n_scans = scaled(BASE_SCANS);
    cfg.n_recovery = scaled(BASE_RECOVERY);

    /* Everything goes under a fresh run directory inside --dir, removed at
     * the end, so nothing that was in --dir before is touched. */
    bool is_dir_new = mkdir(cfg.dir, 0755) == 0;
    if (!is_dir_new && errno != EEXIST)
        bench_die("mkdir %s: %s", cfg.dir, strerror(errno));
    char run_dir[4096];
    if ((size_t)snprintf(run_dir, sizeof run_dir, "%s/run-XXXXXX", cfg.dir) >=
        sizeof run_dir)
        bench_die("--dir too long");
    if (!mkdtemp(run_dir))
        bench_die("mkdtemp %s: %s", run_dir, strerror(errno));

    eng_run *runs = calloc(n_engines, sizeof *runs);
    if (!runs)
        bench_die("out of memory");
    for (size_t i = 0; i < n_engines; i++) {
        runs[i].ops = engines[i];
        path_join(runs[i].root, sizeof runs[i].root, run_dir, engines[i]->name);
        path_join(runs[i].main_dir, sizeof runs[i].main_dir, runs[i].root,
                  "main");
        make_dir(runs[i].root);
    }

    print_header(engines, n_engines);
    for (int c = 0; c < N_CASES; c++) {
        if (!want_case[c])
            continue;
        for (size_t i = 0; i < n_engines; i++) {
            result res;
            fprintf(stderr, "# %s / %s\n", case_names[c], engines[i]->name);
            run_case(c, &runs[i], &res);
            print_result(c, engines[i], &res);
            settle();
        }
    }

    bench_rm_rf(run_dir);
    if (is_dir_new)
        rmdir(cfg.dir);
    free(runs);
    free(user_count);
    free(user_newest);
    return 0;
}
