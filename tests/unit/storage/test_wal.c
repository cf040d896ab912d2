/*
 * test_wal.c -- the write-ahead log: round trips, torn tails at every byte,
 * damage in the middle (bit flips, lengths, zero fill, garbage, sequence
 * order), file header damage, determinism, the writer's sticky errors and
 * size accounting, record size limits and allocation failure.
 *
 * Every payload is derived from its seq (tu_rng seeded with it), so a
 * delivered record can be checked without keeping a copy.
 */
// ctest-timeout: 300
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/crc.h"
#include "base/err.h"
#include "os/vfs.h"
#include "storage/wal.h"
#include "storage/wal_format.h"

#define HDR WAL_RECORD_HEADER_LEN
#define FHDR WAL_FILE_HEADER_LEN

static const char *g_dir;

static void fill_payload(uint8_t *p, size_t n, uint64_t seq)
{
    tu_rng r;
    tu_rng_seed(&r, seq);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)tu_rand(&r);
}

static char *path_of(const char *name)
{
    static char p[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", g_dir, name);
    return p[k];
}

/* ---- plain file helpers (tests may use stdio directly) ---- */

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)sz + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return p;
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static uint64_t file_size(const char *path)
{
    uint64_t s = 0;
    assert_int_equal(vfs_posix()->file_size(vfs_posix(), path, &s), DM_OK);
    return s;
}

/* ---- building logs ---- */

typedef struct spec {
    size_t n;
    uint64_t seq[64];
    size_t len[64];
    uint64_t off[64]; /* filled by build_log: offset of each record */
} spec;

/* build_log -- writes the records of sp to path with a writer, flushing
 * every few records, and returns the file size. */
static uint64_t build_log(const char *path, spec *sp, uint64_t log_number)
{
    wal_writer *w = NULL;
    uint64_t off = FHDR;
    assert_int_equal(wal_writer_open(vfs_posix(), path, log_number, &w), DM_OK);
    for (size_t i = 0; i < sp->n; i++) {
        uint8_t *p = malloc(sp->len[i] + 1);
        fill_payload(p, sp->len[i], sp->seq[i]);
        sp->off[i] = off;
        assert_int_equal(wal_add(w, sp->seq[i], WAL_REC_BATCH,
                                 buf_slice_of(p, sp->len[i])), DM_OK);
        off += HDR + sp->len[i];
        free(p);
        if (i % 3 == 2)
            assert_int_equal(wal_flush(w), DM_OK);
    }
    assert_int_equal(wal_size(w), off);
    assert_int_equal(wal_sync(w), DM_OK);
    assert_int_equal(wal_writer_close(w), DM_OK);
    assert_int_equal(file_size(path), off);
    return off;
}

static spec small_spec(void)
{
    spec sp = { .n = 6 };
    static const size_t lens[6] = { 0, 10, 37, 100, 3, 50 };
    for (size_t i = 0; i < sp.n; i++) {
        sp.seq[i] = 100 + 10 * i;
        sp.len[i] = lens[i];
    }
    return sp;
}

/* ---- capturing replay callbacks ---- */

typedef struct ev {
    int is_damage;
    uint64_t seq_or_off;
    uint64_t len;
    uint32_t crc; /* of the payload */
    char reason[64];
} ev;

typedef struct cap {
    ev *evs;
    size_t n, cap;
    int bad_payloads; /* payloads that do not match their seq */
    int stop_after;   /* on_record returns 42 after this many (0 = never) */
    size_t n_records;
} cap;

static ev *push(cap *c)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->evs = realloc(c->evs, c->cap * sizeof *c->evs);
        assert_non_null(c->evs);
    }
    memset(&c->evs[c->n], 0, sizeof c->evs[0]);
    return &c->evs[c->n++];
}

static int on_rec(void *arg, uint64_t seq, uint8_t type, buf_slice payload)
{
    cap *c = arg;
    ev *e = push(c);
    e->seq_or_off = seq;
    e->len = payload.len;
    e->crc = crc32c(payload.ptr, payload.len);
    if (type != WAL_REC_BATCH)
        c->bad_payloads++;
    uint8_t *want = malloc(payload.len + 1);
    fill_payload(want, payload.len, seq);
    if (payload.len && memcmp(want, payload.ptr, payload.len) != 0)
        c->bad_payloads++;
    free(want);
    c->n_records++;
    if (c->stop_after && (int)c->n_records == c->stop_after)
        return 42;
    return 0;
}

static void on_dmg(void *arg, const char *path, uint64_t off, uint64_t len,
                   const char *reason)
{
    cap *c = arg;
    ev *e = push(c);
    assert_non_null(path);
    assert_non_null(reason);
    e->is_damage = 1;
    e->seq_or_off = off;
    e->len = len;
    snprintf(e->reason, sizeof e->reason, "%s", reason);
}

static void cap_free(cap *c)
{
    free(c->evs);
    memset(c, 0, sizeof *c);
}

static int replay(const char *path, bool trunc, cap *c, wal_replay_stats *st)
{
    return wal_replay(vfs_posix(), path, trunc, on_rec, on_dmg, c, st);
}

static size_t count_damage(const cap *c)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        k += (size_t)c->evs[i].is_damage;
    return k;
}

static const ev *nth_damage(const cap *c, size_t k)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->evs[i].is_damage && k-- == 0)
            return &c->evs[i];
    return NULL;
}

/* Re-seals record at off in a byte image after its fields were edited. */
static void reseal(uint8_t *img, size_t off)
{
    uint8_t *h = img + off;
    uint32_t len = dec_u32(h + 8);
    enc_u32(h + 4, crc_mask(crc32c(h + 8, 16)));
    enc_u32(h, crc_mask(crc32c(h + 4, 20 + (size_t)len)));
}

/* ================================================================ tests */

static void test_roundtrip(void **state)
{
    (void)state;
    const char *path = path_of("rt.wal");
    tu_rng r;
    tu_rng_seed(&r, 7);
    wal_writer *w = NULL;
    uint8_t *p = malloc(1u << 20);
    size_t n = 300, total = FHDR;
    uint64_t seq = 1;
    uint64_t *seqs = malloc(n * sizeof *seqs);
    size_t *lens = malloc(n * sizeof *lens);

    assert_int_equal(wal_writer_open(vfs_posix(), path, 77, &w), DM_OK);
    assert_int_equal(wal_size(w), FHDR);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        if (i < 4)
            len = i; /* 0, 1, 2, 3 */
        else if (i % 50 == 0)
            len = (1u << 20) - tu_randn(&r, 3); /* about 1 MB */
        else if (i % 7 == 0)
            len = (size_t)tu_randn(&r, 70000);
        else
            len = (size_t)tu_randn(&r, 700);
        seq += 1 + tu_randn(&r, 5);
        seqs[i] = seq;
        lens[i] = len;
        fill_payload(p, len, seq);
        assert_int_equal(wal_add(w, seq, WAL_REC_BATCH, buf_slice_of(p, len)),
                         DM_OK);
        total += HDR + len;
        assert_int_equal(wal_size(w), total);
        if (tu_randn(&r, 4) == 0)
            assert_int_equal(wal_flush(w), DM_OK);
        else if (tu_randn(&r, 10) == 0)
            assert_int_equal(wal_sync(w), DM_OK);
    }
    assert_int_equal(wal_writer_close(w), DM_OK);
    assert_int_equal(file_size(path), total);

    cap c = { 0 };
    wal_replay_stats st;
    assert_int_equal(replay(path, false, &c, &st), DM_OK);
    assert_int_equal(c.bad_payloads, 0);
    assert_int_equal(c.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_false(c.evs[i].is_damage);
        assert_int_equal(c.evs[i].seq_or_off, seqs[i]);
        assert_int_equal(c.evs[i].len, lens[i]);
    }
    assert_int_equal(st.records, n);
    assert_int_equal(st.bytes, total - FHDR);
    assert_int_equal(st.damaged, 0);
    assert_int_equal(st.damaged_bytes, 0);
    assert_int_equal(st.tail_bytes, 0);
    assert_int_equal(st.valid_end, total);
    assert_int_equal(st.log_number, 77);
    cap_free(&c);
    free(p);
    free(seqs);
    free(lens);
}

/* Every prefix of a log replays to exactly the records wholly inside it. */
static void test_truncate_every_offset(void **state)
{
    (void)state;
    spec sp = small_spec();
    const char *full = path_of("full.wal");
    uint64_t size = build_log(full, &sp, 5);
    size_t n;
    uint8_t *img = read_file(full, &n);
    assert_int_equal(n, size);
    const char *cut = path_of("cut.wal");
    const char *cut2 = path_of("cut2.wal");

    for (size_t c = 0; c <= n; c++) {
        size_t want = 0;
        uint64_t end = c < FHDR ? 0 : FHDR;
        for (size_t i = 0; i < sp.n; i++)
            if (sp.off[i] + HDR + sp.len[i] <= c) {
                want = i + 1;
                end = sp.off[i] + HDR + sp.len[i];
            }
        write_file(cut, img, c);
        write_file(cut2, img, c);

        cap cp = { 0 };
        wal_replay_stats st;
        assert_int_equal(replay(cut, false, &cp, &st), DM_OK);
        assert_int_equal(cp.n, want);
        assert_int_equal(count_damage(&cp), 0);
        assert_int_equal(cp.bad_payloads, 0);
        for (size_t i = 0; i < want; i++)
            assert_int_equal(cp.evs[i].seq_or_off, sp.seq[i]);
        assert_int_equal(st.records, want);
        assert_int_equal(st.damaged, 0);
        assert_int_equal(st.valid_end, end);
        assert_int_equal(st.tail_bytes, c - end);
        assert_int_equal(file_size(cut), c); /* not truncated */
        cap_free(&cp);

        /* truncate_tail cuts exactly the tail and leaves a clean log. */
        assert_int_equal(replay(cut2, true, &cp, &st), DM_OK);
        assert_int_equal(cp.n, want);
        assert_int_equal(file_size(cut2), end);
        cap_free(&cp);
        assert_int_equal(replay(cut2, true, &cp, &st), DM_OK);
        assert_int_equal(cp.n, want);
        assert_int_equal(st.tail_bytes, 0);
        assert_int_equal(st.damaged, 0);
        assert_int_equal(file_size(cut2), end);
        cap_free(&cp);
    }
    free(img);
}

/* Expect: all records but `skip` delivered in order, one damage report at
 * the skipped record's offset covering it exactly. */
static void expect_one_skipped(const cap *c, const spec *sp, size_t skip,
                               const char *reason)
{
    size_t k = 0;
    assert_int_equal(count_damage(c), 1);
    const ev *d = nth_damage(c, 0);
    assert_int_equal(d->seq_or_off, sp->off[skip]);
    assert_int_equal(d->len, HDR + sp->len[skip]);
    if (reason)
        assert_string_equal(d->reason, reason);
    assert_int_equal(c->bad_payloads, 0);
    for (size_t i = 0; i < c->n; i++) {
        if (c->evs[i].is_damage)
            continue;
        if (k == skip)
            k++;
        assert_int_equal(c->evs[i].seq_or_off, sp->seq[k]);
        k++;
    }
    assert_int_equal(k, sp->n);
}

static void test_bit_flips_middle(void **state)
{
    (void)state;
    spec sp = small_spec();
    const char *path = path_of("flip.wal");
    const char *bad = path_of("flip-bad.wal");
    uint64_t size = build_log(path, &sp, 1);
    size_t n;
    uint8_t *img = read_file(path, &n);
    size_t victim = 2; /* 37-byte payload, followed by three records */
    size_t r0 = (size_t)sp.off[victim], rl = HDR + sp.len[victim];

    for (size_t bit = 0; bit < rl * 8; bit++) {
        size_t at = r0 + bit / 8;
        img[at] ^= (uint8_t)(1u << (bit % 8));
        write_file(bad, img, n);
        img[at] ^= (uint8_t)(1u << (bit % 8));

        const char *reason = NULL;
        size_t f = bit / 8;
        if (f < 4 || f >= HDR)
            reason = "checksum mismatch";
        else if (f < 8)
            reason = "header checksum mismatch";
        else if (f == 12)
            reason = "unknown type";
        else if (f >= 13 && f < 16)
            reason = "reserved bytes not zero";
        else if (f == 11 && bit % 8 >= 2)
            reason = "bad length"; /* len > 64 MiB */
        else /* other len bits, seq */
            reason = "header checksum mismatch";

        cap c = { 0 };
        wal_replay_stats st;
        assert_int_equal(replay(bad, false, &c, &st), DM_OK);
        expect_one_skipped(&c, &sp, victim, reason);
        assert_int_equal(st.records, sp.n - 1);
        assert_int_equal(st.damaged, 1);
        assert_int_equal(st.damaged_bytes, rl);
        assert_int_equal(st.tail_bytes, 0);
        assert_int_equal(st.valid_end, size);
        cap_free(&c);
    }

    /* The first record, too. */
    img[sp.off[0] + HDR - 1] ^= 0x10;
    write_file(bad, img, n);
    cap c = { 0 };
    wal_replay_stats st;
    assert_int_equal(replay(bad, false, &c, &st), DM_OK);
    expect_one_skipped(&c, &sp, 0, "header checksum mismatch");
    cap_free(&c);
    free(img);
}

static void test_bad_length(void **state)
{
    (void)state;
    spec sp = small_spec();
    const char *path = path_of("len.wal");
    const char *bad = path_of("len-bad.wal");
    build_log(path, &sp, 1);
    size_t n;
    uint8_t *img = read_file(path, &n);
    uint8_t *copy = malloc(n);
    size_t v = 3;
    cap c = { 0 };
    wal_replay_stats st;

    /* Huge length. */
    memcpy(copy, img, n);
    enc_u32(copy + sp.off[v] + 8, 0xFFFFFFF0u);
    write_file(bad, copy, n);
    assert_int_equal(replay(bad, false, &c, &st), DM_OK);
    expect_one_skipped(&c, &sp, v, "bad length");
    cap_free(&c);

    /* Plausible length, header sealed: the payload crc catches it. */
    memcpy(copy, img, n);
    enc_u32(copy + sp.off[v] + 8, (uint32_t)sp.len[v] + 1);
    enc_u32(copy + sp.off[v] + 4,
            crc_mask(crc32c(copy + sp.off[v] + 8, 16)));
    write_file(bad, copy, n);
    assert_int_equal(replay(bad, false, &c, &st), DM_OK);
    expect_one_skipped(&c, &sp, v, "checksum mismatch");
    cap_free(&c);

    /* A smaller length, header sealed. */
    memcpy(copy, img, n);
    enc_u32(copy + sp.off[v] + 8, 5);
    enc_u32(copy + sp.off[v] + 4,
            crc_mask(crc32c(copy + sp.off[v] + 8, 16)));
    write_file(bad, copy, n);
    assert_int_equal(replay(bad, false, &c, &st), DM_OK);
    expect_one_skipped(&c, &sp, v, "checksum mismatch");
    cap_free(&c);

    /* Last record's length points past the end (sealed): a torn tail. */
    size_t last = sp.n - 1;
    memcpy(copy, img, n);
    enc_u32(copy + sp.off[last] + 8, 1000);
    enc_u32(copy + sp.off[last] + 4,
            crc_mask(crc32c(copy + sp.off[last] + 8, 16)));
    write_file(bad, copy, n);
    assert_int_equal(replay(bad, false, &c, &st), DM_OK);
    assert_int_equal(c.n, sp.n - 1);
    assert_int_equal(count_damage(&c), 0);
    assert_int_equal(st.tail_bytes, HDR + sp.len[last]);
    assert_int_equal(st.valid_end, sp.off[last]);
    cap_free(&c);
    free(copy);
    free(img);
}

static void test_zero_fill(void **state)
{
    (void)state;
    spec sp = small_spec();
    const char *path = path_of("zero.wal");
    const char *bad = path_of("zero-bad.wal");
    uint64_t size = build_log(path, &sp, 1);
    size_t n;
    uint8_t *img = read_file(path, &n);
    uint8_t *big = calloc(n + 8192, 1);
    memcpy(big, img, n);
    cap c = { 0 };
    wal_replay_stats st;

    /* Zero-filled tail (file size grew, data never landed). */
    write_file(bad, big, n + 8192);
    assert_int_equal(replay(bad, false, &c, &st), DM_OK);
    assert_int_equal(c.n, sp.n);
    assert_int_equal(count_damage(&c), 0);
    assert_int_equal(st.tail_bytes, 8192);
    assert_int_equal(st.valid_end, size);
    cap_free(&c);
    assert_int_equal(replay(bad, true, &c, &st), DM_OK);
    assert_int_equal(file_size(bad), size);
    cap_free(&c);

    /* Last record zeroed: tail. */
    memset(big + sp.off[sp.n - 1], 0, HDR + sp.len[sp.n - 1]);
    write_file(bad, big, n);
    assert_int_equal(replay(bad, false, &c, &st), DM_OK);
    assert_int_equal(c.n, sp.n - 1);
    assert_int_equal(count_damage(&c), 0);
    cap_free(&c);

    /* A record zeroed in the middle: damage. */
    memcpy(big, img, n);
    memset(big + sp.off[1], 0, HDR + sp.len[1]);
    write_file(bad, big, n);
    assert_int_equal(replay(bad, false, &c, &st), DM_OK);
    expect_one_skipped(&c, &sp, 1, "unknown type");
    cap_free(&c);
    free(big);
    free(img);
}

static void test_garbage_appended(void **state)
{
    (void)state;
    spec sp = small_spec();
    const char *path = path_of("garb.wal");
    const char *bad = path_of("garb-bad.wal");
    uint64_t size = build_log(path, &sp, 1);
    size_t n;
    uint8_t *img = read_file(path, &n);
    tu_rng r;
    tu_rng_seed(&r, 99);

    for (int round = 0; round < 20; round++) {
        size_t extra = 1 + (size_t)tu_randn(&r, 3000);
        uint8_t *big = malloc(n + extra);
        memcpy(big, img, n);
        for (size_t i = 0; i < extra; i++)
            big[n + i] = (uint8_t)tu_rand(&r);
        /* Garbage that looks like a header start must not matter. */
        if (round % 2 && extra > 16) {
            big[n + 12] = WAL_REC_BATCH;
            big[n + 13] = big[n + 14] = big[n + 15] = 0;
        }
        write_file(bad, big, n + extra);
        cap c = { 0 };
        wal_replay_stats st;
        assert_int_equal(replay(bad, round % 3 == 0, &c, &st), DM_OK);
        assert_int_equal(c.n, sp.n);
        assert_int_equal(count_damage(&c), 0);
        assert_int_equal(c.bad_payloads, 0);
        assert_int_equal(st.tail_bytes, extra);
        assert_int_equal(st.valid_end, size);
        if (round % 3 == 0)
            assert_int_equal(file_size(bad), size);
        cap_free(&c);
        free(big);
    }

    /* Garbage between records (down to a single byte): one damage region
     * exactly as long as the garbage, every record kept. */
    static const size_t gls[] = { 1, 2, 23, 24, 25, 777 };
    for (size_t g = 0; g < sizeof gls / sizeof gls[0]; g++) {
        size_t gl = gls[g];
        uint8_t *mid = malloc(n + gl);
        memcpy(mid, img, sp.off[3]);
        for (size_t i = 0; i < gl; i++)
            mid[sp.off[3] + i] = (uint8_t)tu_rand(&r);
        mid[sp.off[3]] = 0xEE; /* never a known type */
        memcpy(mid + sp.off[3] + gl, img + sp.off[3], n - sp.off[3]);
        write_file(bad, mid, n + gl);
        cap c = { 0 };
        wal_replay_stats st;
        assert_int_equal(replay(bad, false, &c, &st), DM_OK);
        assert_int_equal(st.records, sp.n);
        assert_int_equal(c.bad_payloads, 0);
        assert_int_equal(st.damaged, 1);
        assert_int_equal(st.damaged_bytes, gl);
        assert_int_equal(nth_damage(&c, 0)->seq_or_off, sp.off[3]);
        assert_int_equal(nth_damage(&c, 0)->len, gl);
        assert_int_equal(st.valid_end, n + gl);
        cap_free(&c);
        free(mid);
    }
    free(img);
}

static void test_seq_backwards(void **state)
{
    (void)state;
    spec sp = small_spec();
    const char *path = path_of("seq.wal");
    const char *bad = path_of("seq-bad.wal");
    build_log(path, &sp, 1);
    size_t n;
    uint8_t *img = read_file(path, &n);
    cap c = { 0 };
    wal_replay_stats st;

    /* Record 3 repeats the seq of record 2 (payload to match), sealed:
     * skipped as damage. */
    enc_u64(img + sp.off[3] + 16, sp.seq[2]);
    fill_payload(img + sp.off[3] + HDR, sp.len[3], sp.seq[2]);
    reseal(img, (size_t)sp.off[3]);
    write_file(bad, img, n);
    assert_int_equal(replay(bad, false, &c, &st), DM_OK);
    expect_one_skipped(&c, &sp, 3, "sequence number goes backwards");
    assert_int_equal(st.valid_end, n);
    cap_free(&c);

    /* A backwards record at the very end is reported, not a tail; the
     * file is not truncated. */
    enc_u64(img + sp.off[5] + 16, sp.seq[0]);
    fill_payload(img + sp.off[5] + HDR, sp.len[5], sp.seq[0]);
    reseal(img, (size_t)sp.off[5]);
    write_file(bad, img, n);
    assert_int_equal(replay(bad, true, &c, &st), DM_OK);
    assert_int_equal(st.records, sp.n - 2);
    assert_int_equal(st.damaged, 2);
    assert_int_equal(st.tail_bytes, 0);
    assert_int_equal(st.valid_end, sp.off[5]);
    assert_int_equal(file_size(bad), n);
    cap_free(&c);
    free(img);
}

static void test_file_header(void **state)
{
    (void)state;
    spec sp = small_spec();
    const char *path = path_of("hdr.wal");
    const char *bad = path_of("hdr-bad.wal");
    build_log(path, &sp, 0x1122334455667788ull);
    size_t n;
    uint8_t *img = read_file(path, &n);
    cap c = { 0 };
    wal_replay_stats st;

    /* Any single bit flip in the header: DM_ECORRUPT (DM_EVERSION only when
     * the result still checks), reported at offset 0, nothing delivered. */
    for (size_t bit = 0; bit < FHDR * 8; bit++) {
        img[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        write_file(bad, img, n);
        img[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int rc = replay(bad, true, &c, &st);
        assert_int_equal(rc, DM_ECORRUPT);
        assert_int_equal(c.n, 1);
        assert_true(c.evs[0].is_damage);
        assert_int_equal(c.evs[0].seq_or_off, 0);
        assert_int_equal(st.records, 0);
        assert_int_equal(st.damaged, 1);
        assert_non_null(strstr(err_last_msg(), "offset 0"));
        assert_int_equal(file_size(bad), n); /* never truncated */
        cap_free(&c);
    }

    /* A sealed header of another version. */
    uint8_t *copy = malloc(n);
    memcpy(copy, img, n);
    enc_u32(copy + 8, WAL_VERSION + 1);
    enc_u32(copy + 24, crc_mask(crc32c(copy, 24)));
    write_file(bad, copy, n);
    assert_int_equal(replay(bad, false, &c, &st), DM_EVERSION);
    assert_int_equal(c.n, 0);
    cap_free(&c);

    /* A zeroed header in front of records is damage, not an empty log. */
    memcpy(copy, img, n);
    memset(copy, 0, FHDR);
    write_file(bad, copy, n);
    assert_int_equal(replay(bad, false, &c, &st), DM_ECORRUPT);
    assert_int_equal(c.n, 1);
    cap_free(&c);

    /* Empty logs: zero length, short zero file, torn header prefixes, a
     * file that is zero from end to end. */
    uint8_t zeros[4096] = { 0 };
    size_t empties[] = { 0, 1, 31, 4096 };
    for (size_t i = 0; i < 4; i++) {
        write_file(bad, zeros, empties[i]);
        assert_int_equal(replay(bad, false, &c, &st), DM_OK);
        assert_int_equal(c.n, 0);
        assert_int_equal(st.tail_bytes, empties[i]);
        assert_int_equal(st.valid_end, 0);
        cap_free(&c);
    }
    for (size_t k = 1; k < FHDR; k++) {
        write_file(bad, img, k);
        assert_int_equal(replay(bad, false, &c, &st), DM_OK);
        assert_int_equal(c.n, 0);
        cap_free(&c);
    }
    /* truncate_tail cuts an empty log down to nothing. */
    write_file(bad, img, 20);
    assert_int_equal(replay(bad, true, &c, &st), DM_OK);
    assert_int_equal(file_size(bad), 0);
    cap_free(&c);

    /* Files no longer than the header whose bytes are not a good header
     * (a torn, garbage-filled creation) are empty logs too: records are
     * only appended after the header is synced. */
    static const size_t short_lens[] = { 10, 30, FHDR };
    static const size_t flip_at[] = { 3, 26, 20 };
    for (size_t t = 0; t < 3; t++) {
        memcpy(copy, img, FHDR);
        copy[flip_at[t]] ^= 1;
        write_file(bad, copy, short_lens[t]);
        assert_int_equal(replay(bad, false, &c, &st), DM_OK);
        assert_int_equal(c.n, 0);
        assert_int_equal(st.damaged, 0);
        assert_int_equal(st.tail_bytes, short_lens[t]);
        cap_free(&c);
    }
    /* One byte more than the header and it is damage. */
    memcpy(copy, img, FHDR + 1);
    copy[20] ^= 1;
    write_file(bad, copy, FHDR + 1);
    assert_int_equal(replay(bad, false, &c, &st), DM_ECORRUPT);
    cap_free(&c);

    /* Missing file; NULL on_damage is allowed. */
    assert_int_equal(wal_replay(vfs_posix(), path_of("nope.wal"), false,
                                on_rec, NULL, &c, &st), DM_ENOTFOUND);
    memcpy(copy, img, n);
    copy[0] ^= 1;
    write_file(bad, copy, n);
    assert_int_equal(wal_replay(vfs_posix(), bad, false, on_rec, NULL, &c, &st),
                     DM_ECORRUPT);
    assert_int_equal(st.damaged, 1);
    cap_free(&c);

    /* The good header's log number comes back. */
    assert_int_equal(replay(path, false, &c, &st), DM_OK);
    assert_int_equal(st.log_number, 0x1122334455667788ull);
    cap_free(&c);
    free(copy);
    free(img);
}

/* Same bytes, same callbacks, including with several kinds of damage. */
static void test_determinism(void **state)
{
    (void)state;
    spec sp = { .n = 40 };
    tu_rng r;
    tu_rng_seed(&r, 1234);
    for (size_t i = 0; i < sp.n; i++) {
        sp.seq[i] = 1 + 3 * i;
        sp.len[i] = (size_t)tu_randn(&r, 400);
    }
    const char *path = path_of("det.wal");
    const char *bad = path_of("det-bad.wal");
    build_log(path, &sp, 3);
    size_t n;
    uint8_t *img = read_file(path, &n);

    for (int round = 0; round < 30; round++) {
        uint8_t *copy = malloc(n);
        memcpy(copy, img, n);
        for (int k = 0; k < 4; k++) {
            size_t at = FHDR + (size_t)tu_randn(&r, n - FHDR);
            switch (tu_randn(&r, 3)) {
            case 0: copy[at] ^= (uint8_t)(1 + tu_randn(&r, 255)); break;
            case 1: memset(copy + at, 0, (n - at) < 64 ? n - at : 64); break;
            default:
                for (size_t i = at; i < n && i < at + 40; i++)
                    copy[i] = (uint8_t)tu_rand(&r);
            }
        }
        write_file(bad, copy, n);
        cap a = { 0 }, b = { 0 };
        wal_replay_stats sa, sb;
        assert_int_equal(replay(bad, false, &a, &sa), DM_OK);
        assert_int_equal(replay(bad, false, &b, &sb), DM_OK);
        assert_int_equal(a.n, b.n);
        assert_memory_equal(a.evs, b.evs, a.n * sizeof *a.evs);
        assert_memory_equal(&sa, &sb, sizeof sa);
        /* Whatever survived is genuine and in order. */
        assert_int_equal(a.bad_payloads, 0);
        uint64_t prev = 0;
        for (size_t i = 0; i < a.n; i++) {
            if (a.evs[i].is_damage)
                continue;
            assert_true(a.evs[i].seq_or_off > prev);
            prev = a.evs[i].seq_or_off;
        }
        assert_int_equal(sa.records + sa.damaged, a.n);
        cap_free(&a);
        cap_free(&b);
        free(copy);
    }
    free(img);
}

/* A log larger than the replay window, damaged across window boundaries. */
static void test_large_log_damage(void **state)
{
    (void)state;
    const char *path = path_of("large.wal");
    const char *bad = path_of("large-bad.wal");
    wal_writer *w = NULL;
    size_t nrec = 400, len = 30000;
    uint8_t *p = malloc(len);
    uint64_t *offs = malloc(nrec * sizeof *offs);
    assert_int_equal(wal_writer_open(vfs_posix(), path, 9, &w), DM_OK);
    for (size_t i = 0; i < nrec; i++) {
        offs[i] = wal_size(w);
        fill_payload(p, len, i + 1);
        assert_int_equal(wal_add(w, i + 1, WAL_REC_BATCH, buf_slice_of(p, len)),
                         DM_OK);
    }
    assert_int_equal(wal_writer_close(w), DM_OK);
    size_t n;
    uint8_t *img = read_file(path, &n);
    /* Damage the record holding the byte at 4 MiB and the one at 8 MiB. */
    size_t hit[2];
    for (int k = 0; k < 2; k++) {
        uint64_t target = (uint64_t)(k + 1) << 22;
        size_t i = 0;
        while (i + 1 < nrec && offs[i + 1] <= target)
            i++;
        hit[k] = i;
        img[target] ^= 0x40;
    }
    write_file(bad, img, n);
    cap c = { 0 };
    wal_replay_stats st;
    assert_int_equal(replay(bad, false, &c, &st), DM_OK);
    assert_int_equal(c.bad_payloads, 0);
    assert_int_equal(st.records, nrec - 2);
    assert_int_equal(st.damaged, 2);
    assert_int_equal(nth_damage(&c, 0)->seq_or_off, offs[hit[0]]);
    assert_int_equal(nth_damage(&c, 1)->seq_or_off, offs[hit[1]]);
    assert_int_equal(st.damaged_bytes, 2 * (HDR + len));
    assert_int_equal(st.valid_end, n);
    cap_free(&c);
    free(img);
    free(offs);
    free(p);
}

static void test_callback_stops(void **state)
{
    (void)state;
    spec sp = small_spec();
    const char *path = path_of("stop.wal");
    uint64_t size = build_log(path, &sp, 1);
    uint8_t junk[100];
    memset(junk, 0xAB, sizeof junk);
    FILE *f = fopen(path, "ab");
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);

    cap c = { .stop_after = 3 };
    wal_replay_stats st;
    assert_int_equal(replay(path, true, &c, &st), 42);
    assert_int_equal(c.n, 3);
    assert_int_equal(st.records, 3);
    assert_int_equal(file_size(path), size + sizeof junk); /* not truncated */
    cap_free(&c);

    /* Without callbacks: statistics only. */
    assert_int_equal(wal_replay(vfs_posix(), path, false, NULL, NULL, NULL,
                                &st), DM_OK);
    assert_int_equal(st.records, sp.n);
    assert_int_equal(st.tail_bytes, sizeof junk);
    assert_int_equal(st.valid_end, size);
}

/* ---- a tiny fault-injecting VFS: the POSIX table with append/sync
 * wrapped.  A failing append first writes a third of its bytes. ---- */

static vfs g_fvfs;
static int g_n_append, g_n_sync, g_fail_append_at, g_fail_sync_at;
static int g_fail_rc;

static int f_append(vfs *v, vfs_file *f, const void *src, size_t n)
{
    vfs *p = vfs_posix();
    (void)v;
    if (++g_n_append == g_fail_append_at) {
        p->append(p, f, src, n / 3);
        return g_fail_rc;
    }
    return p->append(p, f, src, n);
}

static int f_sync(vfs *v, vfs_file *f)
{
    vfs *p = vfs_posix();
    (void)v;
    if (++g_n_sync == g_fail_sync_at)
        return g_fail_rc;
    return p->sync(p, f);
}

static vfs *fault_vfs(int fail_append_at, int fail_sync_at, int rc)
{
    g_fvfs = *vfs_posix();
    g_fvfs.name = "test-fault";
    g_fvfs.append = f_append;
    g_fvfs.sync = f_sync;
    g_n_append = g_n_sync = 0;
    g_fail_append_at = fail_append_at;
    g_fail_sync_at = fail_sync_at;
    g_fail_rc = rc;
    return &g_fvfs;
}

static void test_sticky_append_error(void **state)
{
    (void)state;
    const char *path = path_of("sticky-a.wal");
    uint8_t p[300];
    wal_writer *w = NULL;
    /* append #1 is the file header; #2 the first flush; #3 fails. */
    vfs *v = fault_vfs(3, 0, DM_ENOSPC);
    assert_int_equal(wal_writer_open(v, path, 1, &w), DM_OK);
    fill_payload(p, sizeof p, 1);
    assert_int_equal(wal_add(w, 1, WAL_REC_BATCH, buf_slice_of(p, sizeof p)),
                     DM_OK);
    assert_int_equal(wal_sync(w), DM_OK);
    fill_payload(p, sizeof p, 2);
    assert_int_equal(wal_add(w, 2, WAL_REC_BATCH, buf_slice_of(p, sizeof p)),
                     DM_OK);
    fill_payload(p, sizeof p, 3);
    assert_int_equal(wal_add(w, 3, WAL_REC_BATCH, buf_slice_of(p, sizeof p)),
                     DM_OK);
    assert_int_equal(wal_flush(w), DM_ENOSPC);
    assert_non_null(strstr(err_last_msg(), path));
    int appends = g_n_append, syncs = g_n_sync;
    assert_int_equal(wal_add(w, 4, WAL_REC_BATCH, buf_slice_of(p, 1)),
                     DM_ENOSPC);
    assert_int_equal(wal_flush(w), DM_ENOSPC);
    assert_int_equal(wal_sync(w), DM_ENOSPC);
    assert_int_equal(wal_writer_close(w), DM_ENOSPC);
    assert_int_equal(g_n_append, appends); /* nothing retried */
    assert_int_equal(g_n_sync, syncs);

    /* The partly written append is a torn tail; record 1 survives. */
    cap c = { 0 };
    wal_replay_stats st;
    assert_int_equal(replay(path, false, &c, &st), DM_OK);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.evs[0].seq_or_off, 1);
    assert_int_equal(st.tail_bytes, 2 * (HDR + sizeof p) / 3);
    cap_free(&c);
}

static void test_sticky_sync_error(void **state)
{
    (void)state;
    const char *path = path_of("sticky-s.wal");
    uint8_t p[50];
    wal_writer *w = NULL;
    /* sync #1 is the file header's; #2 fails. */
    vfs *v = fault_vfs(0, 2, DM_EIO);
    assert_int_equal(wal_writer_open(v, path, 1, &w), DM_OK);
    assert_int_equal(wal_sync(w), DM_OK); /* nothing new: no sync call */
    assert_int_equal(g_n_sync, 1);
    fill_payload(p, sizeof p, 5);
    assert_int_equal(wal_add(w, 5, WAL_REC_BATCH, buf_slice_of(p, sizeof p)),
                     DM_OK);
    assert_int_equal(wal_sync(w), DM_EIO);
    assert_int_equal(g_n_sync, 2);
    uint64_t size = wal_size(w);
    assert_int_equal(wal_sync(w), DM_EIO);
    assert_int_equal(wal_flush(w), DM_EIO);
    assert_int_equal(wal_add(w, 6, WAL_REC_BATCH, buf_slice_of(p, 1)), DM_EIO);
    assert_int_equal(wal_size(w), size);
    assert_int_equal(g_n_sync, 2); /* never retried */
    assert_int_equal(wal_writer_close(w), DM_EIO);

    /* A failed header write fails the open and returns no writer. */
    v = fault_vfs(1, 0, DM_EIO);
    w = (wal_writer *)&w;
    assert_int_equal(wal_writer_open(v, path, 1, &w), DM_EIO);
    assert_null(w);
    v = fault_vfs(0, 1, DM_EIO);
    assert_int_equal(wal_writer_open(v, path, 1, &w), DM_EIO);
    assert_null(w);
}

static void test_size_accounting(void **state)
{
    (void)state;
    const char *path = path_of("size.wal");
    wal_writer *w = NULL;
    uint8_t p[1000];
    memset(p, 7, sizeof p);
    assert_int_equal(wal_writer_open(vfs_posix(), path, 1, &w), DM_OK);
    assert_int_equal(wal_size(w), FHDR);
    assert_int_equal(file_size(path), FHDR);
    assert_int_equal(wal_add(w, 1, WAL_REC_BATCH, buf_slice_of(p, 0)), DM_OK);
    assert_int_equal(wal_size(w), FHDR + HDR);
    assert_int_equal(file_size(path), FHDR); /* buffered */
    assert_int_equal(wal_add(w, 2, WAL_REC_BATCH, buf_slice_of(p, 1000)), DM_OK);
    assert_int_equal(wal_size(w), FHDR + 2 * HDR + 1000);
    assert_int_equal(wal_flush(w), DM_OK);
    assert_int_equal(wal_size(w), FHDR + 2 * HDR + 1000);
    assert_int_equal(file_size(path), FHDR + 2 * HDR + 1000);
    assert_int_equal(wal_flush(w), DM_OK); /* empty flush is a no-op */
    assert_int_equal(wal_add(w, 3, WAL_REC_BATCH, buf_slice_of(p, 10)), DM_OK);
    assert_int_equal(wal_sync(w), DM_OK);
    assert_int_equal(wal_size(w), FHDR + 3 * HDR + 1010);
    assert_int_equal(file_size(path), wal_size(w));

    /* Rejected adds change nothing. */
    assert_int_equal(wal_add(w, 3, WAL_REC_BATCH, buf_slice_of(p, 10)),
                     DM_EINVAL); /* seq not increasing */
    assert_int_equal(wal_add(w, 9, 0, buf_slice_of(p, 10)), DM_EINVAL);
    assert_int_equal(wal_add(w, 9, 200, buf_slice_of(p, 10)), DM_EINVAL);
    assert_int_equal(wal_size(w), FHDR + 3 * HDR + 1010);
    assert_int_equal(wal_add(w, 4, WAL_REC_BATCH, buf_slice_of(p, 10)), DM_OK);
    assert_int_equal(wal_writer_close(w), DM_OK);
    assert_int_equal(file_size(path), FHDR + 4 * HDR + 1020); /* close flushes */
    assert_int_equal(wal_writer_close(NULL), DM_OK);

    /* Reopening truncates. */
    assert_int_equal(wal_writer_open(vfs_posix(), path, 2, &w), DM_OK);
    assert_int_equal(file_size(path), FHDR);
    assert_int_equal(wal_writer_close(w), DM_OK);
}

static void test_too_big(void **state)
{
    (void)state;
    const char *path = path_of("big.wal");
    wal_writer *w = NULL;
    size_t max = WAL_MAX_RECORD_LEN;
    uint8_t *p = malloc(max);
    fill_payload(p, 4096, 2);
    memset(p + 4096, 0x5A, max - 4096);
    assert_int_equal(wal_writer_open(vfs_posix(), path, 1, &w), DM_OK);
    assert_int_equal(wal_add(w, 1, WAL_REC_BATCH, buf_slice_of(p, max + 1)),
                     DM_ETOOBIG);
    assert_int_equal(wal_add(w, 1, WAL_REC_BATCH,
                             buf_slice_of(p, SIZE_MAX)), DM_ETOOBIG);
    assert_int_equal(wal_size(w), FHDR);
    /* Exactly the limit is accepted and replays. */
    assert_int_equal(wal_add(w, 2, WAL_REC_BATCH, buf_slice_of(p, max)), DM_OK);
    assert_int_equal(wal_add(w, 3, WAL_REC_BATCH, buf_slice_of(p, 5)), DM_OK);
    assert_int_equal(wal_writer_close(w), DM_OK);

    wal_replay_stats st;
    cap c = { 0 };
    assert_int_equal(wal_replay(vfs_posix(), path, false, on_rec, on_dmg, &c,
                                &st), DM_OK);
    assert_int_equal(st.records, 2);
    assert_int_equal(c.evs[0].len, max);
    assert_int_equal(c.evs[0].crc, crc32c(p, max));
    assert_int_equal(c.evs[1].len, 5);
    cap_free(&c);
    free(p);
}

/* Allocation failure anywhere: a clean DM_ENOMEM, no leak, no crash. */
static void test_oom(void **state)
{
    (void)state;
    spec sp = small_spec();
    const char *path = path_of("oom.wal");
    const char *path2 = path_of("oom2.wal");
    build_log(path, &sp, 1);
    int64_t base = alloc_bytes_in_use();
    uint8_t p[100];
    memset(p, 1, sizeof p);

    for (int64_t k = 1; k < 50; k++) {
        wal_writer *w = NULL;
        alloc_fail_after(k, 0);
        int rc = wal_writer_open(vfs_posix(), path2, 1, &w);
        if (rc == DM_OK) {
            rc = wal_add(w, 1, WAL_REC_BATCH, buf_slice_of(p, sizeof p));
            if (rc == DM_OK)
                rc = wal_sync(w);
            int rc2 = wal_writer_close(w);
            if (rc == DM_OK)
                rc = rc2;
        }
        assert_true(rc == DM_OK || rc == DM_ENOMEM);

        cap c = { 0 };
        wal_replay_stats st;
        alloc_fail_after(k, 0);
        rc = replay(path, false, &c, &st);
        assert_true(rc == DM_OK || rc == DM_ENOMEM);
        if (rc == DM_OK)
            assert_int_equal(c.n, sp.n);
        alloc_fail_after(0, 0);
        cap_free(&c);
        assert_int_equal(alloc_bytes_in_use(), base);
    }
    alloc_fail_after(0, 0);
}

int main(void)
{
    g_dir = tu_tmpdir("test_wal");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_truncate_every_offset),
        cmocka_unit_test(test_bit_flips_middle),
        cmocka_unit_test(test_bad_length),
        cmocka_unit_test(test_zero_fill),
        cmocka_unit_test(test_garbage_appended),
        cmocka_unit_test(test_seq_backwards),
        cmocka_unit_test(test_file_header),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_large_log_damage),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_sticky_append_error),
        cmocka_unit_test(test_sticky_sync_error),
        cmocka_unit_test(test_size_accounting),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_oom),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (rc == 0)
        tu_rmrf(g_dir);
    return rc;
}
