/*
 * test_corruption.c -- byte-level damage to a real database, file kind by
 * file kind (WAL, SSTable, MANIFEST, a missing table), through the real
 * engine (kv.h) and the offline checker (kv_check) on vfs_posix.
 *
 * The fixture.  One "golden" database is built once per run with a fixed
 * seed and closed: phase A (keys 0..2399) is flushed and compacted into
 * several bottom-level tables (target_file_size is small); phase B (new
 * keys 2400..3199, overwrites and deletions of phase-A keys) is flushed
 * into one more table; phase C (new keys 3200..3999, more overwrites and
 * deletions, then a second round of writes to some phase-C keys) is only
 * in the live WAL at close.  Every write goes into an in-memory model: per
 * key the list of writes (put or delete) and which phase made each.  Every
 * value names its key and write number and is otherwise pseudo-random, so
 * a returned value can be traced to exactly one write.
 *
 * Locating things.  Nothing is at a hard-coded offset.  The test parses
 * the golden files itself, independently of the engine's code, from the
 * formats (docs/parts/wal.md, sstable_format.h/block.c, manifest_format.h):
 * each WAL record's offset, length, sequence number and the keys its batch
 * writes; each SSTable's footer, index, filter, every data block's extent
 * and the keys it holds.  Damage is then aimed at a named structure.
 *
 * Each case copies the golden directory to a scratch one, damages it with
 * plain POSIX calls (pwrite, truncate, unlink), and checks:
 *   - kv_check reports it (DM_ECORRUPT, every problem naming the damaged
 *     file, one at the damaged offset) or, for a torn WAL tail, reports
 *     clean; and kv_check modifies nothing;
 *   - kv_open either fails with the documented code and an err_last_msg()
 *     naming the file and an offset inside the damaged structure, leaving
 *     every file byte-identical, or (WAL damage, a damaged SSTable data
 *     block) opens and reports through kv_stats, a log message naming the
 *     file and offset, or DM_ECORRUPT from the reads that need the damaged
 *     block; with paranoid_checks WAL damage in the middle fails the open;
 *   - a torn WAL tail (truncation, appended garbage or zeros) is dropped
 *     quietly: no damage counted, nothing logged, every record before the
 *     cut present;
 *   - nothing wrong is ever returned: a get or an iterator yields either
 *     the newest value written for the key, or -- only for a key whose
 *     newest write the damage could have destroyed -- an older write of
 *     that key or nothing; iterators never skip a key silently.
 * The expectation for every key is computed from the model and the parsed
 * layout (see the EXP_* kinds).
 *
 * Failures are soft within a case group: every failing check is printed
 * with its case label (the first six per case) and counted, and each
 * cmocka test fails at its end if any check failed, so one run lists
 * every broken case.  The expectations were validated by mutation: an
 * engine that skips the data-block CRC, that treats a table read error as
 * "not found", or that treats WAL damage in the middle as a torn tail
 * fails hundreds of checks.
 *
 * Cost: about 600 reopen/check cycles; ~15 s of CPU under ASan.
 */
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/crc.h"
#include "base/err.h"
#include "base/log.h"
#include "os/vfs.h"
#include "storage/filename.h"
#include "storage/kv.h"
#include "storage/manifest_format.h"
#include "storage/sstable_format.h"
#include "storage/wal_format.h"

#define N_KEYS 4000
#define A_END 2400 /* phase A writes keys [0, A_END) */
#define B_END 3200 /* phase B writes new keys [A_END, B_END) */
#define MAX_HIST 4
#define MAX_FILES 64
#define PATH_LEN 4096
#define DIR_LEN 1024 /* so that DIR_LEN + a file name fits PATH_LEN */
#define SEED 0xC0AA0E5EDull

enum { PH_A = 1, PH_B = 2, PH_C = 3 };

/* ------------------------------------------------------------ the model */

typedef struct kwrite {
    uint8_t phase;
    bool is_del;
} kwrite;

/* The writes of one key, oldest first; write k (0-based) is "gen" k+1. */
typedef struct kmodel {
    int n;
    kwrite w[MAX_HIST];
} kmodel;

typedef struct wrec {
    uint64_t off; /* file offset of the record header */
    uint64_t len; /* header + payload */
    uint64_t seq;
    uint32_t count;
} wrec;

typedef struct sblock {
    uint64_t off, len; /* stored bytes, without the 5-byte trailer */
    int first, last;   /* key numbers of its first and last entry */
    int n;
} sblock;

typedef struct sstf {
    char name[32];
    uint64_t size;
    int phase;
    uint64_t index_off, index_len, filter_off, filter_len, n_entries;
    int nb;
    sblock *blocks;
    int *blk_of; /* key -> block holding its newest entry here, or -1 */
} sstf;

static struct {
    char golden[DIR_LEN];
    char work[DIR_LEN];
    kmodel model[N_KEYS];
    int live[N_KEYS]; /* keys whose newest write is a put, ascending */
    int n_live;
    char wal_name[32];
    uint64_t wal_size;
    wrec *recs;
    int n_recs;
    int last_rec[N_KEYS]; /* record holding the key's newest WAL write */
    int first_rec[N_KEYS]; /* ... and its oldest */
    uint64_t man_size;
    sstf sst[MAX_FILES];
    int n_sst;
    kv_options opt;
} G;

/* ------------------------------------------------------ soft failures */

static char g_case[256];
static int g_case_no; /* cases so far: every third also scans backwards */
static int g_case_fails;
static int g_test_fails;

__attribute__((format(printf, 1, 2)))
static void set_case(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_case, sizeof g_case, fmt, ap);
    va_end(ap);
    g_case_fails = 0;
    g_case_no++;
}

__attribute__((format(printf, 3, 4)))
static void soft_fail(int line, const char *cond, const char *fmt, ...)
{
    g_test_fails++;
    if (g_case_fails++ >= 6)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_error("FAIL [%s] line %d: (%s) %s\n", g_case, line, cond, msg);
}

#define EXPECT(cond, ...)                                 \
    do {                                                  \
        if (!(cond))                                      \
            soft_fail(__LINE__, #cond, __VA_ARGS__);      \
    } while (0)

static void test_begin(void)
{
    g_test_fails = 0;
}

static void test_end(void)
{
    if (g_test_fails)
        fail_msg("%d failed check(s); see FAIL lines above", g_test_fails);
}

/* strlcpy: names longer than the field are cut (never the engine's). */
static void scopy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* --------------------------------------------------------- log capture */

#define LOG_KEEP 32
static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_log[LOG_KEEP][512];
static int g_log_n;

static void log_sink(enum log_level level, const char *msg, void *arg)
{
    (void)level;
    (void)arg;
    pthread_mutex_lock(&g_log_mu);
    if (g_log_n < LOG_KEEP)
        scopy(g_log[g_log_n], sizeof g_log[0], msg);
    g_log_n++;
    pthread_mutex_unlock(&g_log_mu);
}

static void log_clear(void)
{
    pthread_mutex_lock(&g_log_mu);
    g_log_n = 0;
    pthread_mutex_unlock(&g_log_mu);
}

/* ---------------------------------------------------- keys and values */

static void key_make(int i, char out[16])
{
    snprintf(out, 16, "key%06d", i);
}

static int key_parse(buf_slice k)
{
    if (k.len != 9 || memcmp(k.ptr, "key", 3) != 0)
        return -1;
    int v = 0;
    for (size_t j = 3; j < 9; j++) {
        if (k.ptr[j] < '0' || k.ptr[j] > '9')
            return -1;
        v = v * 10 + (k.ptr[j] - '0');
    }
    return v < N_KEYS ? v : -1;
}

/* The value of key i's write number gen (1-based): 16..111 bytes. */
static size_t value_make(int i, int gen, char out[128])
{
    int n = snprintf(out, 128, "v%06d.g%d.", i, gen);
    tu_rng r;
    tu_rng_seed(&r, (uint64_t)i * 16 + (uint64_t)gen);
    size_t len = 16 + tu_randn(&r, 96);
    for (size_t j = (size_t)n; j < len; j++)
        out[j] = (char)('a' + tu_randn(&r, 26));
    return len;
}

/* The write number whose value v is, or 0 when v is no value ever
 * written for key i.  Expected values are made once and cached. */
static int value_gen(int i, buf_slice v)
{
    static char cache[N_KEYS][MAX_HIST][128];
    static uint8_t cache_len[N_KEYS][MAX_HIST];
    const kmodel *m = &G.model[i];
    for (int g = 1; g <= m->n; g++) {
        if (m->w[g - 1].is_del)
            continue;
        if (!cache_len[i][g - 1])
            cache_len[i][g - 1] = (uint8_t)value_make(i, g, cache[i][g - 1]);
        size_t n = cache_len[i][g - 1];
        if (v.len == n && memcmp(v.ptr, cache[i][g - 1], n) == 0)
            return g;
    }
    return 0;
}

static const kwrite *latest(int i)
{
    return &G.model[i].w[G.model[i].n - 1];
}

/* ------------------------------------------------------ little helpers */


static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

/* LEB128 varint from [*p, end); false when malformed or past end. */
static bool rd_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

static const char *wpath(const char *name)
{
    static char p[PATH_LEN];
    snprintf(p, sizeof p, "%s/%s", G.work, name);
    return p;
}

static uint8_t *read_whole(const char *path, uint64_t *len)
{
    struct stat sb;
    *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return NULL;
    }
    uint8_t *p = malloc((size_t)sb.st_size + 1);
    assert_non_null(p);
    ssize_t got = pread(fd, p, (size_t)sb.st_size, 0);
    close(fd);
    assert_int_equal(got, sb.st_size);
    *len = (uint64_t)sb.st_size;
    return p;
}

static uint64_t file_len(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return (uint64_t)sb.st_size;
}

/* Damage primitives: plain POSIX calls on a file of the work copy. */
static void dmg_write(const char *name, uint64_t off, const void *p, size_t n)
{
    int fd = open(wpath(name), O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, p, n, (off_t)off), (ssize_t)n);
    close(fd);
}

static void dmg_flip(const char *name, uint64_t off, int bit)
{
    uint8_t b;
    int fd = open(wpath(name), O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= (uint8_t)(1u << bit);
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

static void dmg_truncate(const char *name, uint64_t len)
{
    assert_int_equal(truncate(wpath(name), (off_t)len), 0);
}

static void dmg_zero(const char *name, uint64_t off, size_t n)
{
    uint8_t *z = calloc(1, n ? n : 1);
    assert_non_null(z);
    dmg_write(name, off, z, n);
    free(z);
}

static void dmg_append(const char *name, const void *p, size_t n)
{
    dmg_write(name, file_len(wpath(name)), p, n);
}

/* ------------------------------------------------ directory snapshots */

typedef struct fsnap {
    int n;
    struct {
        char name[64];
        uint64_t size;
        uint32_t crc;
    } f[MAX_FILES];
} fsnap;

static int cmp_name(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Names, sizes and content checksums of every file in dir, by name. */
static void snap_dir(const char *dir, fsnap *s)
{
    memset(s, 0, sizeof *s);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        assert_true(s->n < MAX_FILES);
        scopy(s->f[s->n].name, sizeof s->f[0].name, e->d_name);
        s->n++;
    }
    closedir(d);
    qsort(s->f, (size_t)s->n, sizeof s->f[0], cmp_name);
    for (int k = 0; k < s->n; k++) {
        char p[PATH_LEN];
        snprintf(p, sizeof p, "%s/%s", dir, s->f[k].name);
        uint64_t len;
        uint8_t *img = read_whole(p, &len);
        s->f[k].size = len;
        s->f[k].crc = img ? crc32c(img, (size_t)len) : 0;
        free(img);
    }
}

/* The work directory must hold exactly the files of *a, unmodified. */
static void expect_same_dir(const fsnap *a, const char *when)
{
    fsnap b;
    snap_dir(G.work, &b);
    int i = 0, j = 0;
    while (i < a->n || j < b.n) {
        int c = i == a->n ? 1 : j == b.n ? -1 : strcmp(a->f[i].name, b.f[j].name);
        if (c < 0) {
            EXPECT(0, "%s deleted %s", when, a->f[i].name);
            i++;
        } else if (c > 0) {
            EXPECT(0, "%s created %s", when, b.f[j].name);
            j++;
        } else {
            EXPECT(a->f[i].size == b.f[j].size && a->f[i].crc == b.f[j].crc,
                   "%s modified %s (size %" PRIu64 " -> %" PRIu64 ")", when,
                   a->f[i].name, a->f[i].size, b.f[j].size);
            i++;
            j++;
        }
    }
}

static void copy_dir(const char *src, const char *dst)
{
    tu_rmrf(dst);
    assert_int_equal(mkdir(dst, 0755), 0);
    DIR *d = opendir(src);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sp[PATH_LEN], dp[PATH_LEN];
        snprintf(sp, sizeof sp, "%s/%s", src, e->d_name);
        snprintf(dp, sizeof dp, "%s/%s", dst, e->d_name);
        uint64_t len;
        uint8_t *img = read_whole(sp, &len);
        assert_non_null(img);
        int fd = open(dp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, img, (size_t)len), (ssize_t)len);
        close(fd);
        free(img);
    }
    closedir(d);
}

static void restore(void)
{
    copy_dir(G.golden, G.work);
}

/* --------------------------------------------------- error messages */

/* True when msg names file and an offset in [lo, hi]. */
static bool msg_names(const char *msg, const char *file, uint64_t lo,
                      uint64_t hi)
{
    if (!strstr(msg, file))
        return false;
    for (const char *p = msg; (p = strstr(p, "offset ")); p += 7) {
        char *end;
        unsigned long long v = strtoull(p + 7, &end, 10);
        if (end != p + 7 && v >= lo && v <= hi)
            return true;
    }
    return false;
}

static int log_count(void)
{
    pthread_mutex_lock(&g_log_mu);
    int n = g_log_n;
    pthread_mutex_unlock(&g_log_mu);
    return n;
}

/* The first captured message (a copy), or "". */
static const char *log_first(void)
{
    static char first[512];
    pthread_mutex_lock(&g_log_mu);
    scopy(first, sizeof first, g_log_n ? g_log[0] : "");
    pthread_mutex_unlock(&g_log_mu);
    return first;
}

static bool log_names(const char *file, uint64_t lo, uint64_t hi)
{
    bool found = false;
    pthread_mutex_lock(&g_log_mu);
    for (int k = 0; k < g_log_n && k < LOG_KEEP && !found; k++)
        found = msg_names(g_log[k], file, lo, hi);
    pthread_mutex_unlock(&g_log_mu);
    return found;
}

/* ------------------------------------------------------------ kv_check */

typedef struct probs {
    int n;
    struct {
        char file[64];
        uint64_t off;
        char reason[256];
    } p[32];
} probs;

static void on_problem(void *arg, const char *file, uint64_t off,
                       const char *reason)
{
    probs *ps = arg;
    if (ps->n < 32) {
        scopy(ps->p[ps->n].file, sizeof ps->p[0].file, file);
        ps->p[ps->n].off = off;
        scopy(ps->p[ps->n].reason, sizeof ps->p[0].reason, reason);
    }
    ps->n++;
}

/* kv_check on the work copy must find nothing and change nothing. */
static void expect_check_clean(void)
{
    fsnap before;
    snap_dir(G.work, &before);
    probs ps;
    memset(&ps, 0, sizeof ps);
    kv_check_stats st;
    int rc = kv_check(G.work, vfs_posix(), on_problem, &ps, &st);
    EXPECT(rc == DM_OK && ps.n == 0 && st.problems == 0,
           "kv_check: %s, %d problem(s), first: %s: offset %" PRIu64 ": %s",
           dm_errname(rc), ps.n, ps.n ? ps.p[0].file : "-",
           ps.n ? ps.p[0].off : 0, ps.n ? ps.p[0].reason : "-");
    expect_same_dir(&before, "kv_check");
}

/* kv_check must return DM_ECORRUPT, every problem must name file, and one
 * must carry an offset in [lo, hi]; nothing may change. */
static void expect_check_reports(const char *file, uint64_t lo, uint64_t hi)
{
    fsnap before;
    snap_dir(G.work, &before);
    probs ps;
    memset(&ps, 0, sizeof ps);
    kv_check_stats st;
    int rc = kv_check(G.work, vfs_posix(), on_problem, &ps, &st);
    EXPECT(rc == DM_ECORRUPT, "kv_check returned %s, want DM_ECORRUPT",
           dm_errname(rc));
    EXPECT(ps.n > 0 && (uint64_t)ps.n == st.problems,
           "%d problems reported, stats say %" PRIu64, ps.n, st.problems);
    bool at = false;
    for (int k = 0; k < ps.n && k < 32; k++) {
        EXPECT(!strcmp(ps.p[k].file, file),
               "problem names %s (offset %" PRIu64 ": %s), damage is in %s",
               ps.p[k].file, ps.p[k].off, ps.p[k].reason, file);
        at |= ps.p[k].off >= lo && ps.p[k].off <= hi;
    }
    EXPECT(at, "no problem for %s at an offset in [%" PRIu64 ", %" PRIu64
           "]; first: offset %" PRIu64 ": %s", file, lo, hi,
           ps.n ? ps.p[0].off : 0, ps.n ? ps.p[0].reason : "-");
    expect_same_dir(&before, "kv_check");
}

/* --------------------------------------------------- key expectations */

enum exp {
    EXP_EXACT,            /* the newest write: its value, or ENOTFOUND */
    EXP_ANY,              /* newest write maybe destroyed: ENOTFOUND or
                             the value of any write of this key */
    EXP_CORRUPT,          /* must be DM_ECORRUPT naming the damage */
    EXP_CORRUPT_OR_EXACT, /* may touch the damaged block */
};

typedef struct damage_loc {
    const char *file;
    uint64_t lo, hi;
} damage_loc;

/* Checks one value returned for key i (by a get or an iterator). */
static bool value_acceptable(int i, buf_slice v, enum exp e)
{
    int g = value_gen(i, v);
    if (e == EXP_ANY)
        return g != 0;
    return g == G.model[i].n && !latest(i)->is_del;
}

/* One kv_get, checked against its expectation.  Returns the write number
 * returned (0 = not found, -1 = error). */
static int check_get(kv_db *db, int i, enum exp e, const damage_loc *dl)
{
    char k[16];
    key_make(i, k);
    buf v;
    buf_init(&v);
    int rc = kv_get(db, NULL, buf_slice_of(k, 9), &v);
    int got = -1;
    if (rc == DM_ECORRUPT) {
        EXPECT(e == EXP_CORRUPT || e == EXP_CORRUPT_OR_EXACT,
               "get %s: DM_ECORRUPT (%s), expected data", k, err_last_msg());
        if (dl)
            EXPECT(msg_names(err_last_msg(), dl->file, dl->lo, dl->hi),
                   "get %s: message \"%s\" does not name %s at [%" PRIu64
                   ", %" PRIu64 "]", k, err_last_msg(), dl->file, dl->lo,
                   dl->hi);
    } else if (rc == DM_ENOTFOUND) {
        got = 0;
        EXPECT(e == EXP_ANY || ((e == EXP_EXACT || e == EXP_CORRUPT_OR_EXACT) &&
                                latest(i)->is_del),
               "get %s: not found; newest write %d is a %s (expect %d)", k,
               G.model[i].n, latest(i)->is_del ? "delete" : "put", (int)e);
    } else if (rc == DM_OK) {
        got = value_gen(i, buf_slice_of(v.ptr, v.len));
        EXPECT(e != EXP_CORRUPT, "get %s: returned data from a damaged block", k);
        EXPECT(value_acceptable(i, buf_slice_of(v.ptr, v.len),
                                e == EXP_ANY ? EXP_ANY : EXP_EXACT),
               "get %s: WRONG value (write %d of %d, newest is a %s): %.*s", k,
               got, G.model[i].n, latest(i)->is_del ? "delete" : "put",
               (int)(v.len > 40 ? 40 : v.len), (const char *)v.ptr);
    } else {
        EXPECT(0, "get %s: unexpected %s (%s)", k, dm_errname(rc), err_last_msg());
    }
    buf_fini(&v);
    return got;
}

/*
 * verify_all -- every key by kv_get, then a full forward scan (and in
 * every third case a reverse one) that must end cleanly, agree with the
 * gets, never yield an unacceptable value and never miss a key whose
 * newest write must be there.
 */
static void verify_all(kv_db *db, const enum exp *ex)
{
    static int got[N_KEYS];
    static bool seen[N_KEYS];
    for (int i = 0; i < N_KEYS; i++)
        got[i] = check_get(db, i, ex[i], NULL);
    for (int dir = 0; dir < (g_case_no % 3 == 0 ? 2 : 1); dir++) {
        memset(seen, 0, sizeof seen);
        iter *it = NULL;
        int rc = kv_iter_new(db, NULL, &it);
        EXPECT(rc == DM_OK, "kv_iter_new: %s", dm_errname(rc));
        if (rc)
            return;
        if (dir == 0)
            iter_seek_first(it);
        else
            iter_seek_last(it);
        int prev = dir == 0 ? -1 : N_KEYS;
        while (iter_valid(it)) {
            int i = key_parse(iter_key(it));
            EXPECT(i >= 0, "iterator yields a foreign key");
            if (i < 0)
                break;
            EXPECT(dir == 0 ? i > prev : i < prev, "iterator out of order");
            prev = i;
            seen[i] = true;
            buf_slice v = iter_value(it);
            EXPECT(value_acceptable(i, v, ex[i] == EXP_ANY ? EXP_ANY : EXP_EXACT),
                   "%s scan: key %d WRONG value", dir ? "reverse" : "forward", i);
            EXPECT(value_gen(i, v) == got[i],
                   "%s scan: key %d gives write %d, get gave %d",
                   dir ? "reverse" : "forward", i, value_gen(i, v), got[i]);
            if (dir == 0)
                iter_next(it);
            else
                iter_prev(it);
        }
        rc = iter_status(it);
        EXPECT(rc == DM_OK, "%s scan ends with %s (%s)",
               dir ? "reverse" : "forward", dm_errname(rc), err_last_msg());
        iter_free(it);
        for (int i = 0; i < N_KEYS; i++)
            if (!seen[i])
                EXPECT(got[i] <= 0, "%s scan misses key %d (get found it)",
                       dir ? "reverse" : "forward", i);
    }
}

/* --------------------------------------------------------- the golden db */

typedef struct op {
    int i;
    bool is_del;
} op;

/* Applies ops in batches of 1..12 entries (a batch of one through
 * kv_put/kv_delete), recording each write in the model. */
static void apply_ops(kv_db *db, const op *ops, int n, int phase, tu_rng *r)
{
    kv_batch *b = kv_batch_new();
    assert_non_null(b);
    for (int k = 0; k < n;) {
        int m = 1 + (int)tu_randn(r, 12);
        if (m > n - k)
            m = n - k;
        kv_batch_clear(b);
        for (int j = k; j < k + m; j++) {
            kmodel *km = &G.model[ops[j].i];
            assert_true(km->n < MAX_HIST);
            char key[16], val[128];
            key_make(ops[j].i, key);
            size_t vl = value_make(ops[j].i, km->n + 1, val);
            buf_slice ks = buf_slice_of(key, 9), vs = buf_slice_of(val, vl);
            if (m == 1)
                assert_int_equal(ops[j].is_del ? kv_delete(db, NULL, ks)
                                               : kv_put(db, NULL, ks, vs),
                                 DM_OK);
            else
                assert_int_equal(ops[j].is_del ? kv_batch_delete(b, ks)
                                               : kv_batch_put(b, ks, vs),
                                 DM_OK);
            km->w[km->n].phase = (uint8_t)phase;
            km->w[km->n].is_del = ops[j].is_del;
            km->n++;
        }
        if (m > 1)
            assert_int_equal(kv_write(db, NULL, b), DM_OK);
        k += m;
    }
    kv_batch_free(b);
}

static int list_ssts(const char *dir, char names[][32])
{
    int n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t num;
        if (fn_parse(e->d_name, &num) == FN_SST) {
            assert_true(n < MAX_FILES);
            scopy(names[n++], 32, e->d_name);
        }
    }
    closedir(d);
    qsort(names, (size_t)n, 32, cmp_name);
    return n;
}

/* Parses one WAL batch payload (docs/parts/wal.md "Write batch"), noting
 * for each key the record of its newest write. */
static void parse_batch(const uint8_t *p, uint64_t len, int rec)
{
    const uint8_t *end = p + len;
    assert_true(len >= 4);
    uint32_t count = rd32(p);
    p += 4;
    for (uint32_t k = 0; k < count; k++) {
        assert_true(p < end);
        uint8_t type = *p++;
        uint64_t kl = 0, vl = 0;
        assert_true(rd_varint(&p, end, &kl) && kl <= (uint64_t)(end - p));
        int i = key_parse(buf_slice_of(p, (size_t)kl));
        assert_true(i >= 0);
        p += kl;
        if (type == 1) {
            assert_true(rd_varint(&p, end, &vl) && vl <= (uint64_t)(end - p));
            assert_true(value_gen(i, buf_slice_of(p, (size_t)vl)) > 0);
            p += vl;
        } else {
            assert_int_equal(type, 0);
        }
        G.last_rec[i] = rec;
        if (G.first_rec[i] < 0)
            G.first_rec[i] = rec;
    }
    assert_true(p == end);
}

/* The live WAL: the one holding records.  Records are walked by their
 * header lengths; the golden file must end exactly after the last. */
static void parse_wal(void)
{
    DIR *d = opendir(G.golden);
    assert_non_null(d);
    struct dirent *e;
    uint64_t best = 0;
    while ((e = readdir(d))) {
        uint64_t num;
        if (fn_parse(e->d_name, &num) != FN_WAL)
            continue;
        char p[PATH_LEN];
        snprintf(p, sizeof p, "%s/%s", G.golden, e->d_name);
        if (file_len(p) > WAL_FILE_HEADER_LEN && num >= best) {
            best = num;
            scopy(G.wal_name, sizeof G.wal_name, e->d_name);
        }
    }
    closedir(d);
    assert_true(G.wal_name[0]);
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/%s", G.golden, G.wal_name);
    uint64_t len;
    uint8_t *img = read_whole(path, &len);
    assert_non_null(img);
    G.wal_size = len;
    assert_true(rd64(img) == WAL_MAGIC);
    for (int i = 0; i < N_KEYS; i++)
        G.last_rec[i] = G.first_rec[i] = -1;
    G.recs = calloc(len / WAL_RECORD_HEADER_LEN + 1, sizeof *G.recs);
    assert_non_null(G.recs);
    uint64_t pos = WAL_FILE_HEADER_LEN;
    while (pos + WAL_RECORD_HEADER_LEN <= len) {
        uint32_t plen = rd32(img + pos + 8);
        assert_true(pos + WAL_RECORD_HEADER_LEN + plen <= len);
        assert_int_equal(img[pos + 12], WAL_REC_BATCH);
        wrec *r = &G.recs[G.n_recs];
        r->off = pos;
        r->len = WAL_RECORD_HEADER_LEN + plen;
        r->seq = rd64(img + pos + 16);
        r->count = rd32(img + pos + WAL_RECORD_HEADER_LEN);
        parse_batch(img + pos + WAL_RECORD_HEADER_LEN, plen, G.n_recs);
        G.n_recs++;
        pos += r->len;
    }
    assert_true(pos == len);
    free(img);
}

/* Walks the entries of an uncompressed block (block.c: entries, u32
 * restarts, u32 count), calling fn with each whole key and value. */
typedef void (*entry_fn)(void *arg, buf_slice key, buf_slice val);
static void parse_block(const uint8_t *p, uint64_t len, entry_fn fn, void *arg)
{
    assert_true(len >= 4);
    uint32_t nr = rd32(p + len - 4);
    assert_true((uint64_t)nr * 4 + 4 <= len);
    const uint8_t *q = p, *end = p + len - 4 - (uint64_t)nr * 4;
    uint8_t key[512];
    size_t klen = 0;
    while (q < end) {
        uint64_t shared = 0, ns = 0, vl = 0;
        assert_true(rd_varint(&q, end, &shared) && rd_varint(&q, end, &ns) &&
                    rd_varint(&q, end, &vl));
        assert_true(shared <= klen && shared + ns <= sizeof key &&
                    ns + vl <= (uint64_t)(end - q));
        memcpy(key + shared, q, (size_t)ns);
        klen = (size_t)(shared + ns);
        q += ns;
        fn(arg, buf_slice_of(key, klen), buf_slice_of(q, (size_t)vl));
        q += vl;
    }
}

typedef struct idx_ctx {
    sstf *f;
    uint64_t expect_off;
} idx_ctx;

static void on_index_entry(void *arg, buf_slice key, buf_slice val)
{
    idx_ctx *c = arg;
    sstf *f = c->f;
    const uint8_t *q = val.ptr, *end = val.ptr + val.len;
    uint64_t off = 0, len = 0;
    assert_true(rd_varint(&q, end, &off) && rd_varint(&q, end, &len) && q == end);
    assert_true(off == c->expect_off);
    assert_true(key.len > 8);
    sblock *b = &f->blocks[f->nb++];
    b->off = off;
    b->len = len;
    b->first = b->last = -1;
    c->expect_off = off + len + SST_BLOCK_TRAILER_LEN;
}

typedef struct data_ctx {
    sstf *f;
    int b;
} data_ctx;

static void on_data_entry(void *arg, buf_slice key, buf_slice val)
{
    data_ctx *c = arg;
    sblock *b = &c->f->blocks[c->b];
    assert_true(key.len >= 8);
    int i = key_parse(buf_slice_of(key.ptr, key.len - 8));
    assert_true(i >= 0);
    if (b->first < 0)
        b->first = i;
    assert_true(i >= b->last);
    b->last = i;
    b->n++;
    if (c->f->blk_of[i] < 0)
        c->f->blk_of[i] = c->b; /* the newest entry comes first */
    (void)val;
}

/* Footer (sstable_format.h offsets), index block, every data block. */
static void parse_sst(sstf *f)
{
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/%s", G.golden, f->name);
    uint64_t len;
    uint8_t *img = read_whole(path, &len);
    assert_non_null(img);
    assert_true(len >= SST_HEADER_LEN + SST_FOOTER_LEN);
    f->size = len;
    const uint8_t *ft = img + len - SST_FOOTER_LEN;
    assert_true(rd64(ft + SST_FOOTER_MAGIC) == SST_MAGIC);
    assert_true(rd64(img) == SST_MAGIC);
    f->index_off = rd64(ft + SST_FOOTER_INDEX_OFF);
    f->index_len = rd64(ft + SST_FOOTER_INDEX_LEN);
    f->filter_off = rd64(ft + SST_FOOTER_FILTER_OFF);
    f->filter_len = rd64(ft + SST_FOOTER_FILTER_LEN);
    f->n_entries = rd64(ft + SST_FOOTER_ENTRIES);
    uint64_t n_blocks = rd64(ft + SST_FOOTER_BLOCKS);
    assert_true(f->index_off + f->index_len + SST_BLOCK_TRAILER_LEN ==
                len - SST_FOOTER_LEN);
    assert_true(f->filter_len > 0); /* bloom_bits_per_key is 10 */
    assert_int_equal(img[f->index_off + f->index_len], SST_COMP_NONE);
    f->blocks = calloc(n_blocks + 1, sizeof *f->blocks);
    f->blk_of = malloc(N_KEYS * sizeof *f->blk_of);
    assert_true(f->blocks && f->blk_of);
    for (int i = 0; i < N_KEYS; i++)
        f->blk_of[i] = -1;
    idx_ctx ic = { f, SST_HEADER_LEN };
    parse_block(img + f->index_off, f->index_len, on_index_entry, &ic);
    assert_true((uint64_t)f->nb == n_blocks && ic.expect_off == f->filter_off);
    uint64_t entries = 0;
    for (int b = 0; b < f->nb; b++) {
        assert_int_equal(img[f->blocks[b].off + f->blocks[b].len], SST_COMP_NONE);
        data_ctx dc = { f, b };
        parse_block(img + f->blocks[b].off, f->blocks[b].len, on_data_entry, &dc);
        assert_true(f->blocks[b].n > 0);
        entries += (uint64_t)f->blocks[b].n;
    }
    assert_true(entries == f->n_entries);
    free(img);
}

static int home_phase(int i)
{
    return latest(i)->phase;
}

static int group_setup(void **state)
{
    (void)state;
    log_set_sink(log_sink, NULL);
    const char *base = tu_tmpdir("corr");
    assert_true(strlen(base) < DIR_LEN - 16);
    snprintf(G.golden, sizeof G.golden, "%.1000s/golden", base);
    snprintf(G.work, sizeof G.work, "%.1000s/work", base);

    kv_options o = kv_options_default();
    o.write_buffer_size = 8u << 20; /* only the explicit flushes */
    o.sync = KV_SYNC_NONE;
    o.disable_auto_compaction = true;
    o.target_file_size = 32u << 10; /* several phase-A tables */
    o.table.compression = SST_COMP_NONE;
    o.table.bloom_bits_per_key = 10;
    G.opt = o;

    tu_rng r;
    tu_rng_seed(&r, SEED);
    op *ops = calloc(2 * N_KEYS, sizeof *ops);
    assert_non_null(ops);
    kv_db *db = NULL;
    assert_int_equal(kv_open(G.golden, &o, &db), DM_OK);

    /* Phase A: keys [0, A_END), flushed and compacted to the bottom. */
    int n = 0;
    for (int i = 0; i < A_END; i++)
        ops[n++] = (op){ i, false };
    apply_ops(db, ops, n, PH_A, &r);
    assert_int_equal(kv_flush(db), DM_OK);
    assert_int_equal(kv_compact_range(db, NULL, NULL), DM_OK);
    char a_names[MAX_FILES][32];
    int n_a = list_ssts(G.golden, a_names);

    /* Phase B: new keys, overwrites and deletions; one flush. */
    n = 0;
    for (int i = A_END; i < B_END; i++)
        ops[n++] = (op){ i, false };
    for (int i = 0; i < A_END; i++)
        if (i % 7 == 0)
            ops[n++] = (op){ i, false };
        else if (i % 11 == 3)
            ops[n++] = (op){ i, true };
    apply_ops(db, ops, n, PH_B, &r);
    assert_int_equal(kv_flush(db), DM_OK);

    /* Phase C: WAL only.  Shuffled so records mix key ranges; then a
     * second write to keys [B_END, B_END+110) so that some keys have two
     * writes in the log. */
    n = 0;
    for (int i = B_END; i < N_KEYS; i++)
        ops[n++] = (op){ i, false };
    for (int i = 0; i < B_END; i++)
        if (i % 5 == 1)
            ops[n++] = (op){ i, false };
        else if (i % 13 == 2)
            ops[n++] = (op){ i, true };
    for (int k = n - 1; k > 0; k--) {
        int j = (int)tu_randn(&r, (uint64_t)k + 1);
        op t = ops[k];
        ops[k] = ops[j];
        ops[j] = t;
    }
    for (int i = B_END; i < B_END + 110; i++)
        ops[n++] = (op){ i, i >= B_END + 100 };
    apply_ops(db, ops, n, PH_C, &r);
    free(ops);

    kv_stats st;
    assert_int_equal(kv_stats_get(db, &st), DM_OK);
    assert_int_equal(st.n_immutable, 0);
    assert_int_equal(kv_close(db), DM_OK);

    /* The layout, parsed from the files. */
    char names[MAX_FILES][32];
    G.n_sst = list_ssts(G.golden, names);
    assert_true(n_a >= 3 && G.n_sst > n_a);
    for (int k = 0; k < G.n_sst; k++) {
        sstf *f = &G.sst[k];
        scopy(f->name, sizeof f->name, names[k]);
        f->phase = PH_B;
        for (int j = 0; j < n_a; j++)
            if (!strcmp(a_names[j], names[k]))
                f->phase = PH_A;
        parse_sst(f);
    }
    parse_wal();
    char mp[PATH_LEN];
    snprintf(mp, sizeof mp, "%s/%s", G.golden, FN_MANIFEST);
    G.man_size = file_len(mp);
    for (int i = 0; i < N_KEYS; i++)
        if (!latest(i)->is_del)
            G.live[G.n_live++] = i;
    /* Every key whose newest write is in phase C is in the parsed WAL. */
    for (int i = 0; i < N_KEYS; i++)
        assert_true((home_phase(i) == PH_C) == (G.last_rec[i] >= 0));
    print_message("golden: %d tables (%d from phase A), %s with %d records "
                  "(%" PRIu64 " bytes), MANIFEST %" PRIu64 " bytes, %d live keys\n",
                  G.n_sst, n_a, G.wal_name, G.n_recs, G.wal_size, G.man_size,
                  G.n_live);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int k = 0; k < G.n_sst; k++) {
        free(G.sst[k].blocks);
        free(G.sst[k].blk_of);
    }
    free(G.recs);
    log_set_sink(NULL, NULL);
    char base[DIR_LEN];
    scopy(base, sizeof base, G.golden);
    char *slash = strrchr(base, '/');
    if (slash)
        *slash = '\0';
    tu_rmrf(base);
    return 0;
}

/* ------------------------------------------------------ open helpers */

static int open_work(bool paranoid, kv_db **db)
{
    kv_options o = G.opt;
    o.paranoid_checks = paranoid;
    log_clear();
    return kv_open(G.work, &o, db);
}

/* An open that must fail with want (or want2) and an err_last_msg naming
 * file at an offset in [lo, hi], leaving every file as it was. */
static void expect_open_fails(int want, int want2, const char *file,
                              uint64_t lo, uint64_t hi)
{
    fsnap before;
    snap_dir(G.work, &before);
    kv_db *db = NULL;
    int rc = open_work(false, &db);
    EXPECT(rc == want || rc == want2, "kv_open returned %s, want %s",
           dm_errname(rc), dm_errname(want));
    EXPECT(db == NULL, "kv_open failed but *out is not NULL");
    if (rc != DM_OK)
        EXPECT(msg_names(err_last_msg(), file, lo, hi),
               "kv_open message \"%s\" does not name %s at an offset in [%"
               PRIu64 ", %" PRIu64 "]", err_last_msg(), file, lo, hi);
    if (rc == DM_OK) {
        kv_close(db);
        return;
    }
    expect_same_dir(&before, "failed kv_open");
}

/* ================================================================ tests */

static void test_clean(void **state)
{
    (void)state;
    test_begin();
    set_case("clean database");
    restore();
    probs ps;
    memset(&ps, 0, sizeof ps);
    kv_check_stats st;
    int rc = kv_check(G.work, vfs_posix(), on_problem, &ps, &st);
    EXPECT(rc == DM_OK && ps.n == 0, "kv_check: %s, %d problems", dm_errname(rc),
           ps.n);
    EXPECT(st.wal_records == (uint64_t)G.n_recs, "kv_check saw %" PRIu64
           " WAL records, want %d", st.wal_records, G.n_recs);
    uint64_t entries = 0;
    for (int k = 0; k < G.n_sst; k++)
        entries += G.sst[k].n_entries;
    EXPECT(st.sst_entries == entries, "kv_check saw %" PRIu64 " entries, want %"
           PRIu64, st.sst_entries, entries);
    for (int paranoid = 0; paranoid < 2; paranoid++) {
        kv_db *db = NULL;
        rc = open_work(paranoid, &db);
        EXPECT(rc == DM_OK, "kv_open: %s (%s)", dm_errname(rc), err_last_msg());
        if (rc)
            break;
        kv_stats ks;
        kv_stats_get(db, &ks);
        EXPECT(ks.recovery_damaged == 0 && ks.recovery_tail_bytes == 0,
               "clean recovery counts damage");
        if (!paranoid)
            EXPECT(ks.recovered_records == (uint64_t)G.n_recs,
                   "recovered %" PRIu64 " records, want %d",
                   ks.recovered_records, G.n_recs);
        static enum exp ex[N_KEYS]; /* all EXP_EXACT */
        verify_all(db, ex);
        EXPECT(kv_close(db) == DM_OK, "kv_close");
    }
    test_end();
}

/* ------------------------------------------------------------- the WAL */

/* Keys whose newest write is in a record marked in lost may be anything
 * that was written for them; every other key must be exact. */
static void exp_from_lost(const bool *lost, enum exp *ex)
{
    for (int i = 0; i < N_KEYS; i++)
        ex[i] = (G.last_rec[i] >= 0 && lost[G.last_rec[i]]) ? EXP_ANY : EXP_EXACT;
}

/*
 * Damage in the middle of the WAL: records [r0, r1] may be lost, the
 * skipped region starts at the record r0 and spans dmg_bytes (0 = do not
 * check the length).  kv_check and a paranoid open must name the log at
 * the region's offset; a normal open skips it, counts it, logs it, and
 * keeps every other record.
 */
static void wal_middle_case(int r0, int r1, uint64_t dmg_bytes)
{
    uint64_t at = G.recs[r0].off;
    expect_check_reports(G.wal_name, at, at);

    kv_db *db = NULL;
    int rc = open_work(true, &db);
    EXPECT(rc == DM_ECORRUPT, "paranoid kv_open returned %s", dm_errname(rc));
    EXPECT(db == NULL, "paranoid kv_open: *out not NULL");
    if (rc == DM_ECORRUPT)
        EXPECT(msg_names(err_last_msg(), G.wal_name, at, at),
               "paranoid kv_open message \"%s\" does not name %s at offset %"
               PRIu64, err_last_msg(), G.wal_name, at);
    if (rc == DM_OK)
        kv_close(db);

    db = NULL;
    rc = open_work(false, &db);
    EXPECT(rc == DM_OK, "kv_open: %s (%s)", dm_errname(rc), err_last_msg());
    if (rc)
        return;
    kv_stats ks;
    kv_stats_get(db, &ks);
    EXPECT(ks.recovery_damaged == 1, "recovery_damaged = %" PRIu64,
           ks.recovery_damaged);
    if (dmg_bytes)
        EXPECT(ks.recovery_damaged_bytes == dmg_bytes,
               "recovery_damaged_bytes = %" PRIu64 ", want %" PRIu64,
               ks.recovery_damaged_bytes, dmg_bytes);
    EXPECT(ks.recovery_tail_bytes == 0, "tail bytes %" PRIu64,
           ks.recovery_tail_bytes);
    EXPECT(log_names(G.wal_name, at, at), "no log message names %s at offset %"
           PRIu64, G.wal_name, at);
    bool *lost = calloc((size_t)G.n_recs, sizeof *lost);
    for (int r = r0; r <= r1; r++)
        lost[r] = true;
    static enum exp ex[N_KEYS];
    exp_from_lost(lost, ex);
    free(lost);
    verify_all(db, ex);
    EXPECT(kv_close(db) == DM_OK, "kv_close");
}

/* A middle record with at least four entries, and one with one entry. */
static int pick_record(int from, bool single)
{
    for (int r = from; r < G.n_recs - 2; r++)
        if (single ? G.recs[r].count == 1 : G.recs[r].count >= 4)
            return r;
    fail_msg("no suitable WAL record");
    return -1;
}

static void test_wal_bitflip(void **state)
{
    (void)state;
    test_begin();
    int picks[2] = { pick_record(G.n_recs / 2, false),
                     pick_record(G.n_recs / 3, true) };
    for (int pi = 0; pi < 2; pi++) {
        const wrec *m = &G.recs[picks[pi]];
        /* Header bytes (all of them for the first record, every third
         * for the second), the batch count, a stride through the payload,
         * and its last byte. */
        uint64_t offs[64];
        int n = 0;
        for (uint64_t o = 0; o < WAL_RECORD_HEADER_LEN + 4; o += pi ? 3 : 1)
            offs[n++] = o;
        uint64_t stride = (m->len - WAL_RECORD_HEADER_LEN) / (pi ? 3 : 8) + 1;
        for (uint64_t o = WAL_RECORD_HEADER_LEN + 5; o < m->len - 1 && n < 63; o += stride)
            offs[n++] = o;
        offs[n++] = m->len - 1;
        for (int k = 0; k < n; k++) {
            int bit = (int)((offs[k] * 5 + 3) % 8);
            set_case("WAL %s: record %d (offset %" PRIu64 ", %" PRIu32
                     " entries): flip bit %d at +%" PRIu64, G.wal_name,
                     picks[pi], m->off, m->count, bit, offs[k]);
            restore();
            dmg_flip(G.wal_name, m->off + offs[k], bit);
            wal_middle_case(picks[pi], picks[pi], m->len);
        }
    }
    test_end();
}

/* A cut at c: records ending at or before c survive, quietly. */
static void wal_cut_case(uint64_t c, bool paranoid)
{
    restore();
    dmg_truncate(G.wal_name, c);
    expect_check_clean();
    kv_db *db = NULL;
    int rc = open_work(paranoid, &db);
    EXPECT(rc == DM_OK, "kv_open%s: %s (%s)", paranoid ? " (paranoid)" : "",
           dm_errname(rc), err_last_msg());
    if (rc)
        return;
    uint64_t valid_end = c == 0 ? 0 : WAL_FILE_HEADER_LEN;
    bool *lost = calloc((size_t)G.n_recs, sizeof *lost);
    for (int r = 0; r < G.n_recs; r++) {
        if (G.recs[r].off + G.recs[r].len <= c)
            valid_end = G.recs[r].off + G.recs[r].len;
        else
            lost[r] = true;
    }
    uint64_t tail = c < WAL_FILE_HEADER_LEN ? c : c - valid_end;
    kv_stats ks;
    kv_stats_get(db, &ks);
    EXPECT(ks.recovery_damaged == 0, "a torn tail counted as damage (%" PRIu64
           " regions, %" PRIu64 " bytes)", ks.recovery_damaged,
           ks.recovery_damaged_bytes);
    EXPECT(ks.recovery_tail_bytes == tail, "tail bytes %" PRIu64 ", want %"
           PRIu64, ks.recovery_tail_bytes, tail);
    EXPECT(log_count() == 0, "a torn tail logged %d warning(s): %s", log_count(),
           log_first());
    static enum exp ex[N_KEYS];
    exp_from_lost(lost, ex);
    free(lost);
    verify_all(db, ex);
    EXPECT(kv_close(db) == DM_OK, "kv_close");
}

static void test_wal_truncate(void **state)
{
    (void)state;
    test_begin();
    int n = 0;
    /* Inside the file header: an empty log. */
    static const uint64_t hcuts[] = { 0, 1, 7, 8, 12, 16, 23, 24, 28, 31, 32 };
    for (size_t k = 0; k < sizeof hcuts / sizeof hcuts[0]; k++, n++) {
        set_case("WAL %s: truncated to %" PRIu64 " bytes (file header)",
                 G.wal_name, hcuts[k]);
        wal_cut_case(hcuts[k], n % 2);
    }
    /* Around and inside every 25th record, and the last one. */
    for (int r = 0; r < G.n_recs; r++) {
        if (r % 25 != 1 && r != G.n_recs - 1)
            continue;
        const wrec *w = &G.recs[r];
        uint64_t cuts[] = { w->off + 1, w->off + 7, w->off + WAL_RECORD_HEADER_LEN - 1,
                            w->off + WAL_RECORD_HEADER_LEN,
                            w->off + WAL_RECORD_HEADER_LEN + 1,
                            w->off + (w->len + WAL_RECORD_HEADER_LEN) / 2,
                            w->off + w->len - 1, w->off + w->len };
        for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++, n++) {
            set_case("WAL %s: truncated to %" PRIu64 " bytes (record %d at %"
                     PRIu64 ", +%" PRIu64 ")", G.wal_name, cuts[k], r, w->off,
                     cuts[k] - w->off);
            wal_cut_case(cuts[k], n % 2);
        }
    }
    test_end();
}

static void test_wal_zero(void **state)
{
    (void)state;
    test_begin();
    int m = pick_record(G.n_recs / 2, false);
    set_case("WAL %s: record %d zeroed whole", G.wal_name, m);
    restore();
    dmg_zero(G.wal_name, G.recs[m].off, (size_t)G.recs[m].len);
    wal_middle_case(m, m, G.recs[m].len);

    /* Ranges starting inside a record: everything they touch may be lost;
     * the skipped region runs from the first touched record to the first
     * record after the range. */
    struct { uint64_t from, len; } zr[] = {
        { G.recs[m].off + 10, 3000 },
        { G.recs[G.n_recs / 3].off + 30, 4096 },
        { G.recs[G.n_recs / 4].off + WAL_RECORD_HEADER_LEN, 1 },
        { G.recs[2].off + 3, 8 },
    };
    for (size_t k = 0; k < sizeof zr / sizeof zr[0]; k++) {
        uint64_t z0 = zr[k].from, z1 = z0 + zr[k].len;
        int r0 = -1, r1 = -1;
        for (int r = 0; r < G.n_recs; r++) {
            if (G.recs[r].off < z1 && G.recs[r].off + G.recs[r].len > z0) {
                if (r0 < 0)
                    r0 = r;
                r1 = r;
            }
        }
        assert_true(r0 >= 0 && r1 + 1 < G.n_recs);
        set_case("WAL %s: zero [%" PRIu64 ", %" PRIu64 ") (records %d..%d)",
                 G.wal_name, z0, z1, r0, r1);
        restore();
        dmg_zero(G.wal_name, z0, (size_t)zr[k].len);
        wal_middle_case(r0, r1, G.recs[r1 + 1].off - G.recs[r0].off);
    }

    /* Zeros up to the end of the file are a torn tail. */
    int t = G.n_recs - 3;
    set_case("WAL %s: zero from record %d to the end", G.wal_name, t);
    restore();
    dmg_zero(G.wal_name, G.recs[t].off + 5, (size_t)(G.wal_size - G.recs[t].off - 5));
    expect_check_clean();
    kv_db *db = NULL;
    int rc = open_work(true, &db);
    EXPECT(rc == DM_OK, "paranoid kv_open: %s (%s)", dm_errname(rc), err_last_msg());
    if (rc == DM_OK) {
        kv_stats ks;
        kv_stats_get(db, &ks);
        EXPECT(ks.recovery_damaged == 0 &&
               ks.recovery_tail_bytes == G.wal_size - G.recs[t].off,
               "zero tail: %" PRIu64 " damaged, %" PRIu64 " tail bytes",
               ks.recovery_damaged, ks.recovery_tail_bytes);
        EXPECT(log_count() == 0, "a torn tail logged %d warning(s): %s",
               log_count(), log_first());
        bool *lost = calloc((size_t)G.n_recs, sizeof *lost);
        for (int r = t; r < G.n_recs; r++)
            lost[r] = true;
        static enum exp ex[N_KEYS];
        exp_from_lost(lost, ex);
        free(lost);
        verify_all(db, ex);
        EXPECT(kv_close(db) == DM_OK, "kv_close");
    }
    test_end();
}

static void test_wal_append(void **state)
{
    (void)state;
    test_begin();
    static enum exp ex[N_KEYS]; /* all exact: nothing was lost */
    tu_rng r;
    tu_rng_seed(&r, SEED + 1);
    size_t lens[] = { 1, 7, 23, 24, 25, 100, 5000 };
    for (size_t k = 0; k < sizeof lens / sizeof lens[0] * 2; k++) {
        size_t n = lens[k / 2];
        bool zeros = k % 2;
        uint8_t *g = malloc(n);
        for (size_t j = 0; j < n; j++)
            g[j] = zeros ? 0 : (uint8_t)tu_rand(&r);
        if (!zeros && n >= WAL_RECORD_HEADER_LEN)
            g[12] = WAL_REC_BATCH; /* a plausible header, wrong checksums */
        set_case("WAL %s: %zu %s bytes appended", G.wal_name, n,
                 zeros ? "zero" : "random");
        restore();
        dmg_append(G.wal_name, g, n);
        free(g);
        expect_check_clean();
        kv_db *db = NULL;
        int rc = open_work(k % 4 == 1, &db);
        EXPECT(rc == DM_OK, "kv_open: %s (%s)", dm_errname(rc), err_last_msg());
        if (rc)
            continue;
        kv_stats ks;
        kv_stats_get(db, &ks);
        EXPECT(ks.recovery_damaged == 0 && ks.recovery_tail_bytes == n,
               "%" PRIu64 " damaged, %" PRIu64 " tail bytes, want 0, %zu",
               ks.recovery_damaged, ks.recovery_tail_bytes, n);
        EXPECT(ks.recovered_records == (uint64_t)G.n_recs, "recovered %" PRIu64
               " records", ks.recovered_records);
        EXPECT(log_count() == 0, "a torn tail logged %d warning(s): %s",
               log_count(), log_first());
        verify_all(db, ex);
        EXPECT(kv_close(db) == DM_OK, "kv_close");
    }

    /* A valid copy of an old record appended: its sequence number goes
     * backwards, so it is damage (docs/parts/wal.md) and must not undo
     * the newer writes of its keys. */
    int old = G.first_rec[B_END];
    assert_true(old >= 0 && old < G.last_rec[B_END]);
    assert_true(old >= 0);
    set_case("WAL %s: copy of record %d appended", G.wal_name, old);
    restore();
    {
        char path[PATH_LEN];
        snprintf(path, sizeof path, "%s/%s", G.golden, G.wal_name);
        uint64_t len;
        uint8_t *img = read_whole(path, &len);
        dmg_append(G.wal_name, img + G.recs[old].off, (size_t)G.recs[old].len);
        free(img);
    }
    expect_check_reports(G.wal_name, G.wal_size, G.wal_size);
    kv_db *db = NULL;
    int rc = open_work(false, &db);
    EXPECT(rc == DM_OK, "kv_open: %s (%s)", dm_errname(rc), err_last_msg());
    if (rc == DM_OK) {
        kv_stats ks;
        kv_stats_get(db, &ks);
        EXPECT(ks.recovery_damaged == 1 &&
               ks.recovery_damaged_bytes == G.recs[old].len,
               "%" PRIu64 " damaged regions, %" PRIu64 " bytes",
               ks.recovery_damaged, ks.recovery_damaged_bytes);
        verify_all(db, ex);
        EXPECT(kv_close(db) == DM_OK, "kv_close");
    }
    test_end();
}

static void test_wal_header(void **state)
{
    (void)state;
    test_begin();
    bool *lost = calloc((size_t)G.n_recs, sizeof *lost);
    for (int r = 0; r < G.n_recs; r++)
        lost[r] = true;
    static enum exp ex[N_KEYS];
    exp_from_lost(lost, ex);
    free(lost);
    for (int o = 0; o <= WAL_FILE_HEADER_LEN; o++) {
        restore();
        if (o < WAL_FILE_HEADER_LEN) {
            set_case("WAL %s: header byte %d flipped", G.wal_name, o);
            dmg_flip(G.wal_name, (uint64_t)o, o % 8);
        } else {
            set_case("WAL %s: header zeroed", G.wal_name);
            dmg_zero(G.wal_name, 0, WAL_FILE_HEADER_LEN);
        }
        expect_check_reports(G.wal_name, 0, 0);
        kv_db *db = NULL;
        int rc = open_work(true, &db);
        EXPECT(rc == DM_ECORRUPT, "paranoid kv_open returned %s", dm_errname(rc));
        if (rc == DM_ECORRUPT)
            EXPECT(msg_names(err_last_msg(), G.wal_name, 0, 0),
                   "paranoid kv_open message \"%s\" does not name %s at offset 0",
                   err_last_msg(), G.wal_name);
        if (rc == DM_OK)
            kv_close(db);
        db = NULL;
        rc = open_work(false, &db);
        EXPECT(rc == DM_OK, "kv_open: %s (%s)", dm_errname(rc), err_last_msg());
        if (rc)
            continue;
        kv_stats ks;
        kv_stats_get(db, &ks);
        EXPECT(ks.recovery_damaged >= 1, "header damage not counted");
        EXPECT(log_names(G.wal_name, 0, 0), "no log message names %s at offset 0",
               G.wal_name);
        verify_all(db, ex);
        EXPECT(kv_close(db) == DM_OK, "kv_close");
    }
    test_end();
}

/*
 * A record whose checksums match but whose batch is malformed (a writer
 * bug or a foreign file, docs/parts/wal.md "Write batch").  Recovery may
 * refuse the log or skip the record, but either way it must say which
 * file and record; kv_check must report it; a paranoid open must fail.
 */
static void test_wal_bad_batch(void **state)
{
    (void)state;
    test_begin();
    int m = pick_record(G.n_recs / 2 + 7, false);
    const wrec *w = &G.recs[m];
    for (int kind = 0; kind < 2; kind++) {
        set_case("WAL %s: record %d at %" PRIu64 ": %s, checksums valid",
                 G.wal_name, m, w->off,
                 kind ? "entry type 7" : "count one too large");
        restore();
        uint64_t len;
        uint8_t *img = read_whole(wpath(G.wal_name), &len);
        uint8_t *rec = img + w->off;
        uint8_t *pl = rec + WAL_RECORD_HEADER_LEN;
        if (kind)
            pl[4] = 7; /* the first entry's type */
        else
            wr32(pl, rd32(pl) + 1);
        wr32(rec, crc_mask(crc32c(rec + 4, (size_t)w->len - 4)));
        dmg_write(G.wal_name, w->off, rec, (size_t)w->len);
        free(img);

        expect_check_reports(G.wal_name, w->off, w->off);
        kv_db *db = NULL;
        int rc = open_work(true, &db);
        EXPECT(rc == DM_ECORRUPT, "paranoid kv_open returned %s", dm_errname(rc));
        if (rc == DM_ECORRUPT)
            EXPECT(msg_names(err_last_msg(), G.wal_name, w->off, w->off),
                   "paranoid kv_open message \"%s\" does not name %s at offset %"
                   PRIu64, err_last_msg(), G.wal_name, w->off);
        if (rc == DM_OK)
            kv_close(db);
        db = NULL;
        rc = open_work(false, &db);
        EXPECT(rc == DM_OK || rc == DM_ECORRUPT, "kv_open returned %s",
               dm_errname(rc));
        if (rc == DM_ECORRUPT) {
            EXPECT(msg_names(err_last_msg(), G.wal_name, w->off, w->off),
                   "kv_open message \"%s\" does not name %s at offset %" PRIu64,
                   err_last_msg(), G.wal_name, w->off);
            continue;
        }
        if (rc)
            continue;
        kv_stats ks;
        kv_stats_get(db, &ks);
        EXPECT(ks.recovery_damaged == 1, "recovery_damaged = %" PRIu64,
               ks.recovery_damaged);
        EXPECT(log_names(G.wal_name, w->off, w->off),
               "no log message names %s at offset %" PRIu64, G.wal_name, w->off);
        bool *lost = calloc((size_t)G.n_recs, sizeof *lost);
        lost[m] = true;
        static enum exp ex[N_KEYS];
        exp_from_lost(lost, ex);
        free(lost);
        verify_all(db, ex);
        EXPECT(kv_close(db) == DM_OK, "kv_close");
    }
    test_end();
}

/* ------------------------------------------------------------ SSTables */

static const sstf *pick_sst(int phase, int nth)
{
    int seen = 0;
    for (int k = 0; k < G.n_sst; k++)
        if (G.sst[k].phase == phase && seen++ == nth)
            return &G.sst[k];
    return NULL;
}

/*
 * A damaged data block B of table F.  Expectations per key:
 *   newest write newer than F's phase    never reaches F: exact;
 *   newest write is F's entry in B        DM_ECORRUPT (an older version
 *                                         from a deeper table would be
 *                                         wrong data);
 *   key in the range that leads into B    DM_ECORRUPT (a bloom false
 *                                         positive) or exact;
 *   anything else                         exact.
 * Scans: forward and reverse must yield consecutive live keys with exact
 * values up to the damaged block and then fail with DM_ECORRUPT naming
 * it; a scan sought past the block must run clean to the end.
 */
static void verify_block_damage(kv_db *db, const sstf *f, int b)
{
    const sblock *blk = &f->blocks[b];
    damage_loc dl = { f->name, blk->off, blk->off + blk->len + SST_BLOCK_TRAILER_LEN };
    int lo = b == 0 ? blk->first : f->blocks[b - 1].last;
    int hi = blk->last;
    int must = 0;
    for (int i = 0; i < N_KEYS; i++) {
        enum exp e = EXP_EXACT;
        int hp = home_phase(i);
        if (hp <= f->phase) {
            if (f->blk_of[i] == b && hp == f->phase)
                e = EXP_CORRUPT;
            else if (i >= lo && i <= hi)
                e = EXP_CORRUPT_OR_EXACT;
        }
        must += e == EXP_CORRUPT;
        check_get(db, i, e, &dl);
    }
    EXPECT(must > 0, "test bug: no key lives only in the damaged block");

    for (int dir = 0; dir < 2; dir++) {
        iter *it = NULL;
        int rc = kv_iter_new(db, NULL, &it);
        EXPECT(rc == DM_OK, "kv_iter_new: %s", dm_errname(rc));
        if (rc)
            return;
        int pos = dir == 0 ? 0 : G.n_live - 1;
        if (dir == 0)
            iter_seek_first(it);
        else
            iter_seek_last(it);
        while (iter_valid(it)) {
            int i = key_parse(iter_key(it));
            bool in_order = pos >= 0 && pos < G.n_live && i == G.live[pos];
            EXPECT(in_order, "%s scan yields key %d, expected key %d",
                   dir ? "reverse" : "forward", i,
                   pos >= 0 && pos < G.n_live ? G.live[pos] : -1);
            if (!in_order)
                break;
            EXPECT(value_acceptable(i, iter_value(it), EXP_EXACT),
                   "%s scan: key %d WRONG value", dir ? "reverse" : "forward", i);
            pos += dir == 0 ? 1 : -1;
            if (dir == 0)
                iter_next(it);
            else
                iter_prev(it);
        }
        rc = iter_status(it);
        EXPECT(rc == DM_ECORRUPT, "%s scan over the damaged block ends with %s",
               dir ? "reverse" : "forward", dm_errname(rc));
        if (rc == DM_ECORRUPT)
            EXPECT(msg_names(err_last_msg(), dl.file, dl.lo, dl.hi),
                   "scan message \"%s\" does not name %s at [%" PRIu64 ", %"
                   PRIu64 "]", err_last_msg(), dl.file, dl.lo, dl.hi);
        if (dir == 0 && b > 0)
            EXPECT(pos >= G.n_live || G.live[pos] >= f->blocks[b - 1].last,
                   "forward scan stopped at key %d, before the damaged block",
                   G.live[pos]);
        if (dir == 1 && b + 1 < f->nb)
            EXPECT(pos < 0 || G.live[pos] <= f->blocks[b + 1].first,
                   "reverse scan stopped at key %d, after the damaged block",
                   G.live[pos]);
        iter_free(it);
    }

    /* Past the block: clean to the end. */
    if (hi + 1 < N_KEYS) {
        iter *it = NULL;
        int rc = kv_iter_new(db, NULL, &it);
        EXPECT(rc == DM_OK, "kv_iter_new: %s", dm_errname(rc));
        if (rc)
            return;
        char k[16];
        key_make(hi + 1, k);
        iter_seek(it, buf_slice_of(k, 9));
        int pos = 0;
        while (pos < G.n_live && G.live[pos] <= hi)
            pos++;
        for (; iter_valid(it); iter_next(it), pos++) {
            int i = key_parse(iter_key(it));
            bool in_order = pos < G.n_live && i == G.live[pos];
            EXPECT(in_order, "scan after the block yields key %d, expected %d",
                   i, pos < G.n_live ? G.live[pos] : -1);
            if (!in_order)
                break;
            EXPECT(value_acceptable(i, iter_value(it), EXP_EXACT),
                   "scan after the block: key %d WRONG value", i);
        }
        rc = iter_status(it);
        EXPECT(rc == DM_OK && pos == G.n_live, "scan after the block: %s at "
               "position %d of %d (%s)", dm_errname(rc), pos, G.n_live,
               rc ? err_last_msg() : "");
        iter_free(it);
    }
}

static void test_sst_data_block(void **state)
{
    (void)state;
    test_begin();
    const sstf *files[2] = { pick_sst(PH_A, 1), pick_sst(PH_B, 0) };
    for (int fi = 0; fi < 2; fi++) {
        const sstf *f = files[fi];
        assert_non_null(f);
        int bs[3] = { 0, f->nb / 2, f->nb - 1 };
        for (int bi = 0; bi < 3; bi++) {
            const sblock *blk = &f->blocks[bs[bi]];
            /* first entry, middle, restart count, trailer type, crc */
            uint64_t offs[] = { 0, 3, blk->len / 2, blk->len - 1, blk->len,
                                blk->len + 2 };
            for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
                int bit = (int)((offs[k] + (uint64_t)bi) % 8);
                set_case("%s (phase %c): data block %d of %d at %" PRIu64
                         ": flip bit %d at +%" PRIu64, f->name,
                         'A' + f->phase - 1, bs[bi], f->nb, blk->off, bit,
                         offs[k]);
                restore();
                dmg_flip(f->name, blk->off + offs[k], bit);
                expect_check_reports(f->name, blk->off,
                                     blk->off + blk->len + SST_BLOCK_TRAILER_LEN);
                fsnap before;
                snap_dir(G.work, &before);
                kv_db *db = NULL;
                int rc = open_work(false, &db);
                if (rc == DM_ECORRUPT) {
                    /* Allowed, if it names the damage and changes nothing. */
                    EXPECT(msg_names(err_last_msg(), f->name, blk->off,
                                     blk->off + blk->len + SST_BLOCK_TRAILER_LEN),
                           "kv_open message \"%s\"", err_last_msg());
                    expect_same_dir(&before, "failed kv_open");
                    continue;
                }
                EXPECT(rc == DM_OK, "kv_open: %s (%s)", dm_errname(rc),
                       err_last_msg());
                if (rc)
                    continue;
                verify_block_damage(db, f, bs[bi]);
                EXPECT(kv_close(db) == DM_OK, "kv_close");
            }
        }
    }
    test_end();
}

/* Damage to a table's metadata: check and open must fail naming it. */
static void sst_meta_case(const sstf *f, int want, uint64_t lo, uint64_t hi)
{
    expect_check_reports(f->name, lo, hi);
    expect_open_fails(want, want, f->name, lo, hi);
}

static void test_sst_meta(void **state)
{
    (void)state;
    test_begin();
    const sstf *files[2] = { pick_sst(PH_A, 0), pick_sst(PH_B, 0) };
    for (int fi = 0; fi < 2; fi++) {
        const sstf *f = files[fi];
        struct { const char *what; uint64_t off, len; } parts[] = {
            { "index block", f->index_off, f->index_len },
            { "filter block", f->filter_off, f->filter_len },
        };
        for (int p = 0; p < 2; p++) {
            uint64_t o0 = parts[p].off, len = parts[p].len;
            uint64_t offs[] = { 0, 1, len / 2, len - 4, len - 1, len, len + 1,
                                len + 4 };
            for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
                int bit = (int)(k % 8);
                set_case("%s: %s at %" PRIu64 ": flip bit %d at +%" PRIu64,
                         f->name, parts[p].what, o0, bit, offs[k]);
                restore();
                dmg_flip(f->name, o0 + offs[k], bit);
                sst_meta_case(f, DM_ECORRUPT, o0, o0 + len + SST_BLOCK_TRAILER_LEN);
            }
        }
        /* One bit of every footer field. */
        uint64_t foot = f->size - SST_FOOTER_LEN;
        int fields[] = { SST_FOOTER_INDEX_OFF, SST_FOOTER_INDEX_LEN,
                         SST_FOOTER_FILTER_OFF, SST_FOOTER_FILTER_LEN,
                         SST_FOOTER_ENTRIES, SST_FOOTER_BLOCKS,
                         SST_FOOTER_VERSION, SST_FOOTER_CRC, SST_FOOTER_MAGIC,
                         SST_FOOTER_MAGIC + 7 };
        for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
            set_case("%s: footer byte %d flipped", f->name, fields[k]);
            restore();
            dmg_flip(f->name, foot + (uint64_t)fields[k], (int)(k % 8));
            sst_meta_case(f, DM_ECORRUPT, foot, f->size);
        }
        /* A genuine version change: the footer checksum recomputed. */
        set_case("%s: footer version 2 with a valid checksum", f->name);
        restore();
        {
            uint8_t ft[SST_FOOTER_LEN];
            int fd = open(wpath(f->name), O_RDONLY);
            assert_int_equal(pread(fd, ft, sizeof ft, (off_t)foot), SST_FOOTER_LEN);
            close(fd);
            wr32(ft + SST_FOOTER_VERSION, SST_VERSION + 1);
            uint32_t c = crc32c(ft, SST_FOOTER_CRC);
            c = crc32c_extend(c, ft + SST_FOOTER_MAGIC, 8);
            wr32(ft + SST_FOOTER_CRC, crc_mask(c));
            dmg_write(f->name, foot, ft, sizeof ft);
        }
        expect_check_reports(f->name, foot, f->size);
        expect_open_fails(DM_EVERSION, DM_EVERSION, f->name, foot, f->size);
        /* The file header. */
        for (int o = 0; o < SST_HEADER_LEN; o += 5) {
            set_case("%s: header byte %d flipped", f->name, o);
            restore();
            dmg_flip(f->name, (uint64_t)o, o % 8);
            sst_meta_case(f, DM_ECORRUPT, 0, SST_HEADER_LEN);
        }
    }
    test_end();
}

static void test_sst_truncate(void **state)
{
    (void)state;
    test_begin();
    const sstf *files[2] = { pick_sst(PH_A, 2), pick_sst(PH_B, 0) };
    for (int fi = 0; fi < 2; fi++) {
        const sstf *f = files[fi];
        uint64_t cuts[] = { f->size - 1, f->size - SST_FOOTER_LEN,
                            f->size - SST_FOOTER_LEN - 1, f->index_off + 3,
                            f->filter_off, f->blocks[f->nb / 2].off + 7,
                            SST_HEADER_LEN + SST_FOOTER_LEN - 1, SST_HEADER_LEN,
                            1, 0 };
        for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
            set_case("%s: truncated from %" PRIu64 " to %" PRIu64 " bytes",
                     f->name, f->size, cuts[k]);
            restore();
            dmg_truncate(f->name, cuts[k]);
            sst_meta_case(f, DM_ECORRUPT, 0, f->size);
        }
        /* Grown: garbage, then a second copy of the footer. */
        for (int g = 0; g < 2; g++) {
            set_case("%s: %s appended", f->name,
                     g ? "a copy of the footer" : "100 garbage bytes");
            restore();
            uint8_t extra[100];
            if (g) {
                int fd = open(wpath(f->name), O_RDONLY);
                assert_int_equal(pread(fd, extra, SST_FOOTER_LEN,
                                       (off_t)(f->size - SST_FOOTER_LEN)),
                                 SST_FOOTER_LEN);
                close(fd);
            } else {
                for (int j = 0; j < 100; j++)
                    extra[j] = (uint8_t)(j * 37 + 11);
            }
            dmg_append(f->name, extra, g ? SST_FOOTER_LEN : sizeof extra);
            sst_meta_case(f, DM_ECORRUPT, 0, f->size + sizeof extra);
        }
    }
    test_end();
}

static void test_sst_missing(void **state)
{
    (void)state;
    test_begin();
    for (int k = 0; k < G.n_sst; k++) {
        set_case("%s deleted", G.sst[k].name);
        restore();
        assert_int_equal(unlink(wpath(G.sst[k].name)), 0);
        expect_check_reports(G.sst[k].name, 0, UINT64_MAX);
        fsnap before;
        snap_dir(G.work, &before);
        kv_db *db = NULL;
        int rc = open_work(false, &db);
        EXPECT(rc == DM_ENOTFOUND || rc == DM_ECORRUPT, "kv_open returned %s",
               dm_errname(rc));
        EXPECT(db == NULL, "*out not NULL");
        if (rc != DM_OK)
            EXPECT(strstr(err_last_msg(), G.sst[k].name) != NULL,
                   "kv_open message \"%s\" does not name %s", err_last_msg(),
                   G.sst[k].name);
        else
            kv_close(db);
        expect_same_dir(&before, "failed kv_open");
    }
    test_end();
}

/* ------------------------------------------------------------ MANIFEST */

static void man_case(int want)
{
    expect_check_reports(FN_MANIFEST, 0, G.man_size);
    expect_open_fails(want, DM_ECORRUPT, FN_MANIFEST, 0, G.man_size);
}

static void test_manifest(void **state)
{
    (void)state;
    test_begin();
    /* Every byte, one bit each. */
    for (uint64_t o = 0; o < G.man_size; o++) {
        set_case("MANIFEST: bit %d flipped at %" PRIu64 " of %" PRIu64,
                 (int)(o % 8), o, G.man_size);
        restore();
        dmg_flip(FN_MANIFEST, o, (int)(o % 8));
        man_case(DM_ECORRUPT);
    }
    /* Truncated: short prefixes, a stride, the trailer. */
    for (uint64_t c = 0; c < G.man_size; c++) {
        if (!(c <= MAN_HEADER_LEN + 4 || c % 11 == 0 ||
              c + MAN_TRAILER_LEN + 2 >= G.man_size))
            continue;
        set_case("MANIFEST: truncated to %" PRIu64 " of %" PRIu64, c, G.man_size);
        restore();
        dmg_truncate(FN_MANIFEST, c);
        man_case(DM_ECORRUPT);
    }
    /* Zeroed ranges. */
    struct { uint64_t off, len; } zr[] = {
        { 0, MAN_HEADER_LEN }, { MAN_HEADER_LEN, 16 },
        { G.man_size / 2, 8 }, { G.man_size - MAN_TRAILER_LEN, MAN_TRAILER_LEN },
        { 0, G.man_size },
    };
    for (size_t k = 0; k < sizeof zr / sizeof zr[0]; k++) {
        set_case("MANIFEST: zero [%" PRIu64 ", %" PRIu64 ")", zr[k].off,
                 zr[k].off + zr[k].len);
        restore();
        dmg_zero(FN_MANIFEST, zr[k].off, (size_t)zr[k].len);
        man_case(DM_ECORRUPT);
    }
    /* Garbage appended. */
    set_case("MANIFEST: 5 bytes appended");
    restore();
    dmg_append(FN_MANIFEST, "xxxxx", 5);
    man_case(DM_ECORRUPT);
    /* A version this code does not know, checksum intact: DM_EVERSION. */
    set_case("MANIFEST: version 2 with a valid checksum");
    restore();
    {
        uint64_t len;
        uint8_t *img = read_whole(wpath(FN_MANIFEST), &len);
        wr32(img + MAN_OFF_VERSION, MAN_VERSION + 1);
        uint64_t crc_at = len - MAN_TRAILER_OFF_CRC;
        wr32(img + crc_at, crc_mask(crc32c(img, (size_t)crc_at)));
        dmg_write(FN_MANIFEST, 0, img, (size_t)len);
        free(img);
    }
    expect_check_reports(FN_MANIFEST, 0, G.man_size);
    expect_open_fails(DM_EVERSION, DM_EVERSION, FN_MANIFEST, 0, G.man_size);
    test_end();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean),
        cmocka_unit_test(test_wal_bitflip),
        cmocka_unit_test(test_wal_truncate),
        cmocka_unit_test(test_wal_zero),
        cmocka_unit_test(test_wal_append),
        cmocka_unit_test(test_wal_header),
        cmocka_unit_test(test_wal_bad_batch),
        cmocka_unit_test(test_sst_data_block),
        cmocka_unit_test(test_sst_meta),
        cmocka_unit_test(test_sst_truncate),
        cmocka_unit_test(test_sst_missing),
        cmocka_unit_test(test_manifest),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
