/*
 * gen_corpus.c -- writes seed inputs for the fuzz targets.
 *
 *   gen_corpus OUT_DIR      creates OUT_DIR/wal, OUT_DIR/manifest and
 *                           OUT_DIR/sstable and fills them
 *
 * The seeds are real files made by the engine's own writers (wal_writer,
 * man_encode, sst_builder) plus near-valid variants: truncated at
 * interesting offsets, single bits flipped, zero-filled tails, records
 * spliced out of order, and -- because the encoders do not validate --
 * states the decoders must refuse but whose checksums are right.  All of
 * it is deterministic (a fixed-seed PRNG), and every file is small (a few
 * KB at most), so that fuzzing starts from the formats' interesting
 * corners instead of from random bytes.
 *
 * The committed corpora (tests/fuzz/<t>/corpus/) are these seeds plus what
 * fuzzing found, minimized with -merge=1; see tests/fuzz/README.md.  This
 * program is built with the tests so that it keeps compiling as the
 * writers' interfaces change.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/crc.h"
#include "base/err.h"
#include "os/vfs.h"
#include "storage/ikey.h"
#include "storage/manifest.h"
#include "storage/manifest_format.h"
#include "storage/sstable.h"
#include "storage/wal.h"
#include "storage/wal_format.h"

static const char *out_root;
static char scratch[4096];
static int n_written;

static void die(const char *what, int rc)
{
    fprintf(stderr, "gen_corpus: %s: %s (%s)\n", what, dm_strerror(rc),
            err_last_msg());
    exit(1);
}

#define TRY(what, expr)                                                     \
    do {                                                                    \
        int rc_ = (expr);                                                   \
        if (rc_)                                                            \
            die(what, rc_);                                                 \
    } while (0)

/* ------------------------------------------------------------ helpers */

static uint64_t rng_state = 0x5eed5eed;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static size_t rndn(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static void make_dir(const char *p)
{
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        perror(p);
        exit(1);
    }
}

static void emit(const char *target, const char *name, const uint8_t *p,
                 size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", out_root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    n_written++;
}

/* emit_variants -- the file itself, then truncations at each offset in
 * cuts[] (those below its size), then n_flips copies with one random bit
 * flipped, then a copy with a zero-filled tail. */
static void emit_variants(const char *target, const char *name,
                          const uint8_t *p, size_t n, const size_t *cuts,
                          size_t n_cuts, int n_flips)
{
    char nm[256];
    emit(target, name, p, n);
    for (size_t i = 0; i < n_cuts; i++) {
        if (cuts[i] >= n)
            continue;
        snprintf(nm, sizeof nm, "%s-cut%zu", name, cuts[i]);
        emit(target, nm, p, cuts[i]);
    }
    uint8_t *q = malloc(n + 64);
    if (!q)
        exit(1);
    for (int i = 0; i < n_flips && n > 0; i++) {
        memcpy(q, p, n);
        size_t bit = rndn(n * 8);
        q[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        snprintf(nm, sizeof nm, "%s-flip%zu", name, bit);
        emit(target, nm, q, n);
    }
    memcpy(q, p, n);
    memset(q + n, 0, 64);
    snprintf(nm, sizeof nm, "%s-zerotail", name);
    emit(target, nm, q, n + 64);
    free(q);
}

static void read_back(const char *path, buf *out)
{
    uint8_t *p;
    size_t n;
    TRY(path, vfs_read_all(vfs_posix(), path, &p, &n));
    buf_clear(out);
    TRY("append", buf_append(out, p, n));
    dm_free(p);
}

/* ---------------------------------------------------------------- WAL */

/* A write batch payload (docs/format.md "Write batch"): count u32, then
 * per entry: type u8, varint key_len, key, and for a put varint val_len,
 * value. */
static void make_batch(buf *b, int n_entries, size_t vlen)
{
    buf_clear(b);
    TRY("batch", buf_put_u32(b, (uint32_t)n_entries));
    for (int i = 0; i < n_entries; i++) {
        char key[32];
        int klen = snprintf(key, sizeof key, "user:%d/k%04d", i % 3, i);
        bool is_put = i % 4 != 3;
        TRY("batch", buf_put_u8(b, is_put ? 1 : 0));
        TRY("batch", buf_put_lenbytes(b, key, (size_t)klen));
        if (is_put) {
            TRY("batch", buf_put_varint(b, vlen));
            for (size_t j = 0; j < vlen; j++)
                TRY("batch", buf_put_u8(b, (uint8_t)('a' + (i + j) % 26)));
        }
    }
}

typedef struct wal_spec {
    const char *name;
    uint64_t log_number;
    int n_records;
    uint64_t first_seq;
    uint64_t seq_step;
    size_t vlen;
} wal_spec;

/* write_wal -- a real log; *rec_off receives each record's offset
 * (rec_off[n_records] = file size). */
static void write_wal(const wal_spec *s, buf *file, size_t *rec_off)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/w.log", scratch);
    wal_writer *w;
    buf payload;
    buf_init(&payload);
    TRY("wal_writer_open", wal_writer_open(vfs_posix(), path, s->log_number, &w));
    uint64_t seq = s->first_seq;
    for (int i = 0; i < s->n_records; i++) {
        rec_off[i] = (size_t)wal_size(w);
        make_batch(&payload, 1 + i % 4, s->vlen + (size_t)i * 7 % 23);
        TRY("wal_add", wal_add(w, seq, WAL_REC_BATCH,
                               buf_slice_of(payload.ptr, payload.len)));
        seq += s->seq_step + (uint64_t)(1 + i % 4);
    }
    rec_off[s->n_records] = (size_t)wal_size(w);
    TRY("wal_sync", wal_sync(w));
    TRY("wal_writer_close", wal_writer_close(w));
    read_back(path, file);
    buf_fini(&payload);
}

static void gen_wal(void)
{
    static const wal_spec specs[] = {
        { "wal-empty", 1, 0, 1, 0, 0 },
        { "wal-1rec", 7, 1, 42, 0, 2 },
        { "wal-3rec", 3, 3, 1, 0, 5 },
        { "wal-8rec", 12, 8, 100, 3, 40 },
        { "wal-bigseq", UINT64_MAX, 4, IKEY_MAX_SEQ - 100, 10, 1 },
        { "wal-bigval", 2, 2, 5, 0, 1500 },
    };
    buf f, g;
    buf_init(&f);
    buf_init(&g);
    size_t off[16];
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        const wal_spec *s = &specs[i];
        write_wal(s, &f, off);
        /* Cut inside the file header, inside each record's header, and
         * inside the last payload. */
        size_t cuts[8], nc = 0;
        cuts[nc++] = 10;
        cuts[nc++] = WAL_FILE_HEADER_LEN - 1;
        for (int r = 0; r < s->n_records && nc < 6; r++)
            cuts[nc++] = off[r] + 13;
        if (s->n_records)
            cuts[nc++] = off[s->n_records] - 1;
        emit_variants("wal", s->name, f.ptr, f.len, cuts, nc,
                      s->n_records ? 4 : 2);
    }

    /* Splices out of a 3-record log A (seqs 1..) and a 2-record log B
     * (seqs 1000..): damage in the middle, seq going backwards. */
    static const wal_spec a_spec = { "a", 1, 3, 1, 0, 5 };
    static const wal_spec b_spec = { "b", 1, 2, 1000, 0, 9 };
    size_t aoff[4], boff[3];
    write_wal(&a_spec, &f, aoff);
    write_wal(&b_spec, &g, boff);
    buf x;
    buf_init(&x);
    /* A's records, then A's first record again, then B's: backwards. */
    TRY("x", buf_append(&x, f.ptr, f.len));
    TRY("x", buf_append(&x, f.ptr + aoff[0], aoff[1] - aoff[0]));
    TRY("x", buf_append(&x, g.ptr + boff[0], boff[2] - boff[0]));
    emit("wal", "wal-splice-backwards", x.ptr, x.len);
    /* Garbage between A's second and third record, then B. */
    buf_clear(&x);
    TRY("x", buf_append(&x, f.ptr, aoff[2]));
    for (int i = 0; i < 37; i++)
        TRY("x", buf_put_u8(&x, (uint8_t)rnd()));
    TRY("x", buf_append(&x, f.ptr + aoff[2], aoff[3] - aoff[2]));
    TRY("x", buf_append(&x, g.ptr + boff[0], boff[2] - boff[0]));
    emit("wal", "wal-splice-garbage", x.ptr, x.len);
    /* A record with its length field damaged in the middle of the log. */
    buf_clear(&x);
    TRY("x", buf_append(&x, f.ptr, f.len));
    x.ptr[aoff[1] + 8] ^= 0x40;
    TRY("x", buf_append(&x, g.ptr + boff[0], boff[2] - boff[0]));
    emit("wal", "wal-middle-badlen", x.ptr, x.len);
    /* Zeros in the middle (a hole). */
    buf_clear(&x);
    TRY("x", buf_append(&x, f.ptr, aoff[1]));
    for (int i = 0; i < 48; i++)
        TRY("x", buf_put_u8(&x, 0));
    TRY("x", buf_append(&x, g.ptr + boff[0], boff[2] - boff[0]));
    emit("wal", "wal-middle-zeros", x.ptr, x.len);
    /* Version 2 with a good header checksum: DM_EVERSION. */
    buf_clear(&x);
    TRY("x", buf_append(&x, f.ptr, f.len));
    enc_u32(x.ptr + 8, 2);
    enc_u32(x.ptr + 24, crc_mask(crc32c(x.ptr, 24)));
    emit("wal", "wal-version2", x.ptr, x.len);
    /* Unknown record type and nonzero reserved bytes, checksums right. */
    for (int k = 0; k < 2; k++) {
        buf_clear(&x);
        TRY("x", buf_append(&x, f.ptr, f.len));
        uint8_t *h = x.ptr + aoff[1];
        if (k == 0)
            h[12] = 2;
        else
            h[14] = 1;
        enc_u32(h + 4, crc_mask(crc32c(h + 8, 16)));
        uint32_t len = dec_u32(h + 8);
        enc_u32(h, crc_mask(crc32c(h + 4, 20 + (size_t)len)));
        emit("wal", k == 0 ? "wal-type2" : "wal-reserved", x.ptr, x.len);
    }
    /* All-zero files: an empty log of any length. */
    memset(x.ptr, 0, x.len);
    emit("wal", "wal-zeros-short", x.ptr, 20);
    emit("wal", "wal-zeros-long", x.ptr, x.len);
    buf_fini(&x);
    buf_fini(&f);
    buf_fini(&g);
}

/* ----------------------------------------------------------- MANIFEST */

static void set_key(buf *b, const char *user, uint64_t seq, int type)
{
    buf_init(b);
    TRY("ikey", ikey_build(b, buf_slice_of(user, strlen(user)), seq, type));
}

/* A state with n files; keys "f<i>a" .. "f<i>z". */
static void make_state(man_state *s, uint32_t n, uint64_t next_file)
{
    memset(s, 0, sizeof *s);
    s->next_file = next_file;
    s->last_seq = 1000 + n;
    s->log_number = next_file > 2 ? next_file - 2 : 0;
    s->n_files = n;
    s->files = dm_calloc(n ? n : 1, sizeof *s->files);
    if (!s->files)
        exit(1);
    for (uint32_t i = 0; i < n; i++) {
        man_file *f = &s->files[i];
        char lo[32], hi[32];
        snprintf(lo, sizeof lo, "f%ua", i);
        snprintf(hi, sizeof hi, "f%uz", i);
        f->level = i % MAN_MAX_LEVELS;
        f->number = i + 1;
        f->size = 4096u * (i + 1);
        f->n_entries = 10u * (i + 1);
        set_key(&f->smallest, lo, 100 + i, IKEY_PUT);
        set_key(&f->largest, hi, 50 + i, i % 2 ? IKEY_DEL : IKEY_PUT);
    }
}

static void emit_state(const char *name, const man_state *s, bool variants)
{
    buf b;
    buf_init(&b);
    TRY("man_encode", man_encode(s, &b));
    if (variants) {
        size_t cuts[] = { 0, 8, 16, 17, b.len / 2, b.len - 16, b.len - 1 };
        emit_variants("manifest", name, b.ptr, b.len, cuts,
                      sizeof cuts / sizeof cuts[0], 4);
    } else {
        emit("manifest", name, b.ptr, b.len);
    }
    buf_fini(&b);
}

/* Re-seals an image after editing: body_len and CRC. */
static void reseal(buf *b)
{
    enc_u32(b->ptr + b->len - MAN_TRAILER_OFF_BODY_LEN,
            (uint32_t)(b->len - MAN_HEADER_LEN - MAN_TRAILER_LEN));
    enc_u32(b->ptr + b->len - MAN_TRAILER_OFF_CRC,
            crc_mask(crc32c(b->ptr, b->len - MAN_TRAILER_OFF_CRC)));
}

static void gen_manifest(void)
{
    man_state s;
    make_state(&s, 0, 1);
    emit_state("man-empty", &s, true);
    man_state_fini(&s);
    make_state(&s, 1, 5);
    emit_state("man-1file", &s, true);
    man_state_fini(&s);
    make_state(&s, 9, 40);
    emit_state("man-9files", &s, true);
    man_state_fini(&s);
    /* Extremes of the varints. */
    make_state(&s, 2, UINT64_MAX);
    s.last_seq = IKEY_MAX_SEQ;
    s.log_number = UINT64_MAX - 1;
    s.files[0].number = UINT64_MAX - 1;
    s.files[0].size = UINT64_MAX;
    s.files[1].n_entries = UINT64_MAX;
    emit_state("man-extremes", &s, false);
    /* Invalid states with correct checksums: each rule once. */
    s.last_seq = IKEY_MAX_SEQ + 1;
    emit_state("man-bad-lastseq", &s, false);
    s.last_seq = 5;
    s.files[1].level = MAN_MAX_LEVELS;
    emit_state("man-bad-level", &s, false);
    s.files[1].level = 1;
    s.files[1].number = s.files[0].number;
    emit_state("man-bad-dupnumber", &s, false);
    man_state_fini(&s);
    make_state(&s, 3, 10);
    s.files[2].number = 10;
    emit_state("man-bad-number", &s, false);
    s.files[2].number = 3;
    buf_fini(&s.files[2].smallest);
    set_key(&s.files[2].smallest, "zzz", 1, IKEY_PUT);
    emit_state("man-bad-order", &s, false);
    buf_clear(&s.files[2].smallest);
    TRY("k", buf_append(&s.files[2].smallest, "1234567", 7));
    emit_state("man-bad-shortkey", &s, false);
    man_state_fini(&s);

    /* Envelope edits, resealed: version 2, nonzero reserved, trailing
     * body bytes, n_files too large. */
    make_state(&s, 2, 9);
    buf b;
    buf_init(&b);
    TRY("man_encode", man_encode(&s, &b));
    buf x;
    buf_init(&x);
    TRY("x", buf_append(&x, b.ptr, b.len));
    enc_u32(x.ptr + MAN_OFF_VERSION, 2);
    reseal(&x);
    emit("manifest", "man-version2", x.ptr, x.len);
    enc_u32(x.ptr + MAN_OFF_VERSION, MAN_VERSION);
    enc_u32(x.ptr + MAN_OFF_RESERVED, 1);
    reseal(&x);
    emit("manifest", "man-reserved", x.ptr, x.len);
    /* Trailing byte: insert before the trailer. */
    buf_clear(&x);
    TRY("x", buf_append(&x, b.ptr, b.len - MAN_TRAILER_LEN));
    TRY("x", buf_put_u8(&x, 0));
    TRY("x", buf_append(&x, b.ptr + b.len - MAN_TRAILER_LEN, MAN_TRAILER_LEN));
    reseal(&x);
    emit("manifest", "man-trailing", x.ptr, x.len);
    /* n_files (the 4th varint of the body; all are 1 byte here) = 100. */
    buf_clear(&x);
    TRY("x", buf_append(&x, b.ptr, b.len));
    x.ptr[MAN_HEADER_LEN + 3] = 100;
    reseal(&x);
    emit("manifest", "man-nfiles-big", x.ptr, x.len);
    /* Body cut short inside the second file's key, resealed. */
    buf_clear(&x);
    TRY("x", buf_append(&x, b.ptr, b.len - MAN_TRAILER_LEN - 5));
    TRY("x", buf_append(&x, b.ptr + b.len - MAN_TRAILER_LEN, MAN_TRAILER_LEN));
    reseal(&x);
    emit("manifest", "man-shortbody", x.ptr, x.len);
    buf_fini(&x);
    buf_fini(&b);
    man_state_fini(&s);
}

/* ------------------------------------------------------------ SSTable */

typedef struct sst_spec {
    const char *name;
    int n_entries;
    size_t block_size;
    int restart_interval;
    int compression;
    int bloom;
    int versions;  /* versions per user key (newest first) */
    size_t vlen;
    int flips;
} sst_spec;

static void build_sst(const sst_spec *s, buf *out)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/t.sst", scratch);
    sst_options o = sst_options_default();
    o.block_size = s->block_size;
    o.restart_interval = s->restart_interval;
    o.compression = s->compression;
    o.bloom_bits_per_key = s->bloom;
    sst_builder *b;
    TRY("sst_builder_open", sst_builder_open(vfs_posix(), path, &o, &b));
    buf k, v;
    buf_init(&k);
    buf_init(&v);
    int n_users = (s->n_entries + s->versions - 1) / s->versions;
    int added = 0;
    for (int u = 0; u < n_users && added < s->n_entries; u++) {
        char user[48];
        /* Shared prefixes, so prefix compression and restarts matter; one
         * empty user key at the very start. */
        int ulen = u == 0 && s->versions > 1
                       ? 0
                       : snprintf(user, sizeof user, "mem/%03d/%s", u,
                                  u % 3 ? "fact" : "episode");
        for (int ver = 0; ver < s->versions && added < s->n_entries; ver++) {
            uint64_t seq = 1000 - (uint64_t)ver * 7 + (uint64_t)u;
            int type = (u + ver) % 5 == 4 ? IKEY_DEL : IKEY_PUT;
            TRY("ikey", ikey_build(&k, buf_slice_of(user, (size_t)ulen), seq,
                                   type));
            buf_clear(&v);
            if (type == IKEY_PUT)
                for (size_t j = 0; j < s->vlen + (size_t)(u % 4); j++)
                    TRY("v", buf_put_u8(&v, (uint8_t)("abcab"[j % 5])));
            TRY("sst_builder_add",
                sst_builder_add(b, buf_slice_of(k.ptr, k.len),
                                buf_slice_of(v.ptr, v.len)));
            added++;
        }
    }
    sst_info info;
    TRY("sst_builder_finish", sst_builder_finish(b, &info));
    sst_info_fini(&info);
    buf_fini(&k);
    buf_fini(&v);
    read_back(path, out);
}

static void gen_sstable(void)
{
    static const sst_spec specs[] = {
        { "sst-empty", 0, 4096, 16, SST_COMP_NONE, 10, 1, 0, 2 },
        { "sst-1", 1, 4096, 16, SST_COMP_NONE, 10, 1, 3, 3 },
        { "sst-10", 10, 4096, 4, SST_COMP_NONE, 10, 1, 8, 4 },
        { "sst-multiblock", 40, 128, 2, SST_COMP_NONE, 10, 2, 6, 6 },
        { "sst-nofilter", 24, 96, 1, SST_COMP_NONE, 0, 3, 4, 4 },
        { "sst-restart1", 12, 4096, 1, SST_COMP_NONE, 4, 1, 2, 2 },
        { "sst-versions", 30, 256, 3, SST_COMP_NONE, 10, 5, 5, 4 },
        { "sst-lz4", 30, 512, 16, SST_COMP_LZ4, 10, 1, 60, 4 },
        { "sst-lz4-multi", 60, 256, 8, SST_COMP_LZ4, 10, 2, 40, 4 },
        { "sst-zstd", 30, 512, 16, SST_COMP_ZSTD, 10, 1, 60, 4 },
        { "sst-zstd-multi", 60, 256, 8, SST_COMP_ZSTD, 0, 2, 40, 4 },
        { "sst-bigvals", 6, 1024, 16, SST_COMP_NONE, 10, 1, 700, 2 },
    };
    buf f;
    buf_init(&f);
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        const sst_spec *s = &specs[i];
        build_sst(s, &f);
        size_t cuts[] = { 15, 16, 17, f.len / 2, f.len - SST_FOOTER_LEN,
                          f.len - 1 };
        emit_variants("sstable", s->name, f.ptr, f.len, cuts,
                      sizeof cuts / sizeof cuts[0], s->flips);
    }
    buf_fini(&f);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    out_root = argv[1];
    char p[4200];
    make_dir(out_root);
    static const char *targets[] = { "wal", "manifest", "sstable" };
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", out_root, targets[i]);
        make_dir(p);
    }
    snprintf(scratch, sizeof scratch, "%s/.scratch.%d", out_root, (int)getpid());
    make_dir(scratch);
    gen_wal();
    gen_manifest();
    gen_sstable();
    snprintf(p, sizeof p, "%s/w.log", scratch);
    unlink(p);
    snprintf(p, sizeof p, "%s/t.sst", scratch);
    unlink(p);
    rmdir(scratch);
    printf("gen_corpus: %d files under %s\n", n_written, out_root);
    return 0;
}
