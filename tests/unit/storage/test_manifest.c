/*
 * test_manifest.c -- the MANIFEST codec and its atomic commit.
 *
 * Round trips (empty, many files, maximum-size keys); every truncation and
 * every single-bit flip of an encoded image is DM_ECORRUPT (never a crash,
 * never a wrong successful decode); each semantic rule is enforced with a
 * message naming the offset; version handling; man_write/man_read through
 * vfs_posix including MANIFEST.tmp leftovers; allocation failure.
 */
#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/crc.h"
#include "base/err.h"
#include "os/vfs.h"
#include "os/vfs_fault.h"
#include "storage/ikey.h"
#include "storage/manifest.h"
#include "storage/manifest_format.h"

/* ------------------------------------------------------------- helpers */

static void add_file(man_state *s, uint32_t level, uint64_t number,
                     uint64_t size, uint64_t n_entries, const char *lo,
                     uint64_t lo_seq, const char *hi, uint64_t hi_seq)
{
    man_file *files = dm_realloc(s->files, (s->n_files + 1) * sizeof *files);
    assert_non_null(files);
    s->files = files;
    man_file *f = &files[s->n_files++];
    memset(f, 0, sizeof *f);
    f->level = level;
    f->number = number;
    f->size = size;
    f->n_entries = n_entries;
    assert_int_equal(ikey_build(&f->smallest, buf_slice_of(lo, strlen(lo)),
                                lo_seq, IKEY_PUT), DM_OK);
    assert_int_equal(ikey_build(&f->largest, buf_slice_of(hi, strlen(hi)),
                                hi_seq, IKEY_DEL), DM_OK);
}

static void assert_state_equal(const man_state *a, const man_state *b)
{
    assert_int_equal(a->next_file, b->next_file);
    assert_int_equal(a->last_seq, b->last_seq);
    assert_int_equal(a->log_number, b->log_number);
    assert_int_equal(a->n_files, b->n_files);
    for (uint32_t i = 0; i < a->n_files; i++) {
        const man_file *x = &a->files[i], *y = &b->files[i];
        assert_int_equal(x->level, y->level);
        assert_int_equal(x->number, y->number);
        assert_int_equal(x->size, y->size);
        assert_int_equal(x->n_entries, y->n_entries);
        assert_int_equal(x->smallest.len, y->smallest.len);
        assert_memory_equal(x->smallest.ptr, y->smallest.ptr, x->smallest.len);
        assert_int_equal(x->largest.len, y->largest.len);
        assert_memory_equal(x->largest.ptr, y->largest.ptr, x->largest.len);
    }
}

static void round_trip(const man_state *s)
{
    buf img = { 0 };
    man_state d;
    assert_int_equal(man_encode(s, &img), DM_OK);
    assert_int_equal(man_decode(buf_slice_of(img.ptr, img.len), "M", &d),
                     DM_OK);
    assert_state_equal(s, &d);
    /* Re-encoding the decoded state gives the same bytes. */
    buf img2 = { 0 };
    assert_int_equal(man_encode(&d, &img2), DM_OK);
    assert_int_equal(img.len, img2.len);
    assert_memory_equal(img.ptr, img2.ptr, img.len);
    man_state_fini(&d);
    buf_fini(&img);
    buf_fini(&img2);
}

/* A state with a handful of files in several levels. */
static void sample_state(man_state *s)
{
    memset(s, 0, sizeof *s);
    s->next_file = 42;
    s->last_seq = 123456789;
    s->log_number = 40;
    add_file(s, 0, 37, 4096, 10, "apple", 90, "pear", 80);
    add_file(s, 1, 12, 70000, 300, "a", 5, "m", 7);
    add_file(s, 1, 13, 80000, 301, "n", 5, "z", 7);
    add_file(s, 6, 3, 1u << 30, 1000000, "", 1, "\xff\xff", 2);
}

/* Encodes s, patches the version/reserved field and re-seals the CRC. */
static void reseal(buf *img)
{
    uint32_t crc = crc_mask(crc32c(img->ptr, img->len - MAN_TRAILER_OFF_CRC));
    enc_u32(img->ptr + img->len - MAN_TRAILER_OFF_CRC, crc);
}

/* Decoding must fail with rc and a message containing `needle`. */
static void expect_reject(const buf *img, int rc, const char *needle)
{
    man_state d;
    int got = man_decode(buf_slice_of(img->ptr, img->len), "dir/MANIFEST", &d);
    if (got != rc || !strstr(err_last_msg(), needle))
        fail_msg("expected %s containing \"%s\", got %s: %s", dm_errname(rc),
                 needle, dm_errname(got), err_last_msg());
    assert_int_equal(d.n_files, 0);
    assert_null(d.files);
    assert_true(!strncmp(err_last_msg(), "dir/MANIFEST: offset ", 21));
}

/* Encodes s (no validation in man_encode) and expects a rejection. */
static void expect_state_reject(const man_state *s, const char *needle)
{
    buf img = { 0 };
    assert_int_equal(man_encode(s, &img), DM_OK);
    expect_reject(&img, DM_ECORRUPT, needle);
    buf_fini(&img);
}

/* --------------------------------------------------------------- tests */

static void test_round_trip_empty(void **state)
{
    (void)state;
    man_state s = { 0 };
    round_trip(&s);
    s.next_file = 2;
    s.last_seq = IKEY_MAX_SEQ;
    s.log_number = 1;
    round_trip(&s);

    buf img = { 0 };
    assert_int_equal(man_encode(&s, &img), DM_OK);
    /* 16 header + 1 + 8 + 1 + 1 varints + 16 trailer */
    assert_int_equal(img.len, 16 + 11 + 16);
    assert_int_equal(dec_u64(img.ptr), MAN_MAGIC);
    assert_memory_equal(img.ptr, "DMDDMAN1", 8);
    assert_int_equal(dec_u32(img.ptr + img.len - 16), 11);
    assert_memory_equal(img.ptr + img.len - 8, "DMDDMAN1", 8);
    buf_fini(&img);
}

static void test_round_trip_many(void **state)
{
    (void)state;
    tu_rng rng;
    tu_rng_seed(&rng, 7);
    man_state s = { 0 };
    s.next_file = 5000;
    s.last_seq = 1u << 20;
    s.log_number = 4999;
    char lo[40], hi[40];
    for (uint64_t i = 0; i < 2000; i++) {
        snprintf(lo, sizeof lo, "key%010llu", (unsigned long long)i * 2);
        snprintf(hi, sizeof hi, "key%010llu", (unsigned long long)i * 2 + 1);
        add_file(&s, (uint32_t)tu_randn(&rng, MAN_MAX_LEVELS), i * 2 + 1,
                 tu_rand(&rng), tu_rand(&rng) >> tu_randn(&rng, 64),
                 lo, tu_randn(&rng, IKEY_MAX_SEQ), hi, tu_randn(&rng, 100));
    }
    round_trip(&s);
    man_state_fini(&s);
    assert_int_equal(s.n_files, 0);
    assert_null(s.files);
}

static void test_round_trip_large_keys(void **state)
{
    (void)state;
    man_state s = { 0 };
    s.next_file = 10;
    char *big = dm_malloc(MAN_MAX_KEY_LEN - 8 + 1);
    assert_non_null(big);
    memset(big, 'k', MAN_MAX_KEY_LEN - 8);
    big[MAN_MAX_KEY_LEN - 8] = 0;
    add_file(&s, 2, 9, 1, 1, big, 3, big, 3);
    big[100] = 0;
    add_file(&s, 3, 8, 1, 1, big, 3, big, 2);
    round_trip(&s);

    /* One byte more than the largest internal key is rejected. */
    assert_int_equal(buf_append(&s.files[0].largest, "x", 1), DM_OK);
    expect_state_reject(&s, "outside 8..65544");
    dm_free(big);
    man_state_fini(&s);
}

static void test_truncation(void **state)
{
    (void)state;
    man_state s;
    sample_state(&s);
    buf img = { 0 };
    assert_int_equal(man_encode(&s, &img), DM_OK);
    for (size_t n = 0; n < img.len; n++) {
        man_state d;
        int rc = man_decode(buf_slice_of(img.ptr, n), NULL, &d);
        if (rc != DM_ECORRUPT)
            fail_msg("truncation to %zu of %zu bytes: %s", n, img.len,
                     dm_errname(rc));
        assert_null(d.files);
        assert_true(!strncmp(err_last_msg(), "offset ", 7));
    }
    /* Trailing garbage after a valid image is damage too. */
    assert_int_equal(buf_append(&img, "\0", 1), DM_OK);
    expect_reject(&img, DM_ECORRUPT, "trailer magic");
    buf_fini(&img);
    man_state_fini(&s);
}

static void test_bit_flips(void **state)
{
    (void)state;
    man_state s;
    sample_state(&s);
    buf img = { 0 };
    assert_int_equal(man_encode(&s, &img), DM_OK);
    for (size_t i = 0; i < img.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            img.ptr[i] ^= (uint8_t)(1u << bit);
            man_state d;
            int rc = man_decode(buf_slice_of(img.ptr, img.len), NULL, &d);
            if (rc != DM_ECORRUPT)
                fail_msg("flip of bit %d in byte %zu: %s", bit, i,
                         dm_errname(rc));
            img.ptr[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* The unflipped image still decodes. */
    man_state d;
    assert_int_equal(man_decode(buf_slice_of(img.ptr, img.len), NULL, &d),
                     DM_OK);
    assert_state_equal(&s, &d);
    man_state_fini(&d);
    buf_fini(&img);
    man_state_fini(&s);
}

static void test_envelope_messages(void **state)
{
    (void)state;
    man_state s;
    sample_state(&s);
    buf img = { 0 };
    assert_int_equal(man_encode(&s, &img), DM_OK);
    size_t n = img.len;

    img.ptr[0] ^= 1;
    expect_reject(&img, DM_ECORRUPT, "offset 0: bad magic");
    img.ptr[0] ^= 1;

    img.ptr[20] ^= 0x40;
    char want[64];
    snprintf(want, sizeof want, "offset %zu: checksum mismatch", n - 12);
    expect_reject(&img, DM_ECORRUPT, want);
    img.ptr[20] ^= 0x40;

    img.ptr[n - 16] ^= 1;
    expect_reject(&img, DM_ECORRUPT, "does not match the file size");
    img.ptr[n - 16] ^= 1;

    /* A newer version with a valid checksum is DM_EVERSION ... */
    enc_u32(img.ptr + MAN_OFF_VERSION, 2);
    reseal(&img);
    expect_reject(&img, DM_EVERSION, "offset 8: unsupported MANIFEST version 2");
    enc_u32(img.ptr + MAN_OFF_VERSION, MAN_VERSION);
    /* ... but a reserved field set by a writer is damage. */
    enc_u32(img.ptr + MAN_OFF_RESERVED, 1);
    reseal(&img);
    expect_reject(&img, DM_ECORRUPT, "offset 12: reserved field");
    enc_u32(img.ptr + MAN_OFF_RESERVED, 0);
    reseal(&img);

    man_state d;
    assert_int_equal(man_decode(buf_slice_of(img.ptr, n), NULL, &d), DM_OK);
    man_state_fini(&d);
    buf_fini(&img);
    man_state_fini(&s);
}

static void test_semantic_rules(void **state)
{
    (void)state;
    man_state s;

    sample_state(&s);
    s.files[2].level = MAN_MAX_LEVELS;
    expect_state_reject(&s, "level 7 >= 7");
    man_state_fini(&s);

    sample_state(&s);
    s.files[1].number = s.next_file;
    expect_state_reject(&s, "is not below next_file 42");
    man_state_fini(&s);

    sample_state(&s);
    s.files[3].number = s.files[0].number;
    expect_state_reject(&s, "file number 37 listed twice");
    man_state_fini(&s);

    sample_state(&s);
    s.files[0].smallest.len = 7;
    expect_state_reject(&s, "smallest key: length 7 outside");
    man_state_fini(&s);

    sample_state(&s);
    buf tmp = s.files[1].smallest;
    s.files[1].smallest = s.files[1].largest;
    s.files[1].largest = tmp;
    expect_state_reject(&s, "smallest key sorts after largest key");
    man_state_fini(&s);

    sample_state(&s);
    s.last_seq = IKEY_MAX_SEQ + 1;
    expect_state_reject(&s, "last_seq");
    man_state_fini(&s);

    /* n_files larger than the body can hold, with a valid checksum: built
     * by hand because man_encode follows n_files. */
    buf img = { 0 };
    uint8_t hdr[16];
    enc_u64(hdr, MAN_MAGIC);
    enc_u32(hdr + 8, MAN_VERSION);
    enc_u32(hdr + 12, 0);
    assert_int_equal(buf_append(&img, hdr, 16), DM_OK);
    buf_put_varint(&img, 10);          /* next_file */
    buf_put_varint(&img, 0);           /* last_seq */
    buf_put_varint(&img, 0);           /* log_number */
    buf_put_varint(&img, 1000000000);  /* n_files */
    size_t body = img.len - 16;
    buf_put_u32(&img, (uint32_t)body);
    buf_put_u32(&img, 0);
    buf_put_u64(&img, MAN_MAGIC);
    reseal(&img);
    expect_reject(&img, DM_ECORRUPT, "offset 19: n_files 1000000000 cannot fit");

    /* Bytes after the last entry. */
    img.len = 16 + 3;
    buf_put_varint(&img, 0);           /* n_files */
    buf_put_u8(&img, 0xAA);
    buf_put_u32(&img, 5);
    buf_put_u32(&img, 0);
    buf_put_u64(&img, MAN_MAGIC);
    reseal(&img);
    expect_reject(&img, DM_ECORRUPT, "offset 20: 1 unexpected bytes");

    /* A varint that runs off the end of the body. */
    img.len = 16 + 3;
    buf_put_u8(&img, 0x80);
    buf_put_u32(&img, 4);
    buf_put_u32(&img, 0);
    buf_put_u64(&img, MAN_MAGIC);
    reseal(&img);
    expect_reject(&img, DM_ECORRUPT, "offset 19: n_files: varint runs past");
    buf_fini(&img);
}

static void test_write_read(void **state)
{
    (void)state;
    vfs *v = vfs_posix();
    const char *dir = tu_tmpdir("man_rw");
    man_state s, d;

    assert_int_equal(man_read(v, dir, &d), DM_ENOTFOUND);
    assert_null(d.files);

    sample_state(&s);
    assert_int_equal(man_write(v, dir, &s), DM_OK);
    assert_int_equal(man_read(v, dir, &d), DM_OK);
    assert_state_equal(&s, &d);
    man_state_fini(&d);
    struct stat sb;
    assert_int_not_equal(stat(tu_file_path(dir, "MANIFEST.tmp"), &sb), 0);

    /* A leftover MANIFEST.tmp (a crash before the rename) is ignored by
     * readers and overwritten by the next write. */
    FILE *fp = fopen(tu_file_path(dir, "MANIFEST.tmp"), "wb");
    assert_non_null(fp);
    fputs("half-written garbage that is longer than any header", fp);
    fclose(fp);
    assert_int_equal(man_read(v, dir, &d), DM_OK);
    assert_state_equal(&s, &d);
    man_state_fini(&d);

    s.next_file = 100;
    s.files[0].level = 5;
    assert_int_equal(man_write(v, dir, &s), DM_OK);
    assert_int_equal(man_read(v, dir, &d), DM_OK);
    assert_state_equal(&s, &d);
    man_state_fini(&d);
    assert_int_not_equal(stat(tu_file_path(dir, "MANIFEST.tmp"), &sb), 0);

    /* man_write refuses a state the reader would reject, and the committed
     * MANIFEST stays as it was. */
    s.files[1].number = s.files[2].number;
    assert_int_equal(man_write(v, dir, &s), DM_EINVAL);
    assert_non_null(strstr(err_last_msg(), "listed twice"));
    s.files[1].number = 12;
    assert_int_equal(man_read(v, dir, &d), DM_OK);
    assert_state_equal(&s, &d);
    man_state_fini(&d);

    /* Damage on disk is reported with the path. */
    fp = fopen(tu_file_path(dir, "MANIFEST"), "r+b");
    assert_non_null(fp);
    fseek(fp, 30, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, 30, SEEK_SET);
    fputc(c ^ 0xff, fp);
    fclose(fp);
    assert_int_equal(man_read(v, dir, &d), DM_ECORRUPT);
    assert_non_null(strstr(err_last_msg(), "/MANIFEST: offset "));
    assert_non_null(strstr(err_last_msg(), "checksum mismatch"));
    assert_null(d.files);

    man_state_fini(&s);
    tu_rmrf(dir);
}

/* A failure at each step of the commit leaves a readable MANIFEST holding
 * the old or the new state; a power cut before the directory sync leaves
 * the old one. */
static void test_write_faults(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("man_fault");
    vfs_fault *vf = NULL;
    assert_int_equal(vfs_fault_new(vfs_posix(), 11, &vf), DM_OK);
    vfs *v = vfs_fault_vfs(vf);
    man_state old_s, new_s, d;
    sample_state(&old_s);
    sample_state(&new_s);
    new_s.next_file = 77;
    new_s.files[0].level = 3;

    static const enum vfs_fault_op ops[] = { VFS_OP_OPEN, VFS_OP_APPEND,
                                             VFS_OP_SYNC, VFS_OP_RENAME,
                                             VFS_OP_SYNC_DIR };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        vfs_fault_reset(vf);
        assert_int_equal(man_write(v, dir, &old_s), DM_OK);
        vfs_fault_fail_nth(vf, ops[i], 1, DM_EIO, false);
        int rc = man_write(v, dir, &new_s);
        assert_int_equal(rc, DM_EIO);
        assert_non_null(strstr(err_last_msg(), "MANIFEST: commit failed"));
        vfs_fault_fail_nth(vf, ops[i], 0, DM_EIO, false);
        assert_int_equal(man_read(v, dir, &d), DM_OK);
        /* Only a failed directory sync comes after the rename. */
        assert_state_equal(ops[i] == VFS_OP_SYNC_DIR ? &new_s : &old_s, &d);
        man_state_fini(&d);
    }

    /* Power cut at the file sync (1) or the directory sync (2): the
     * rename is not durable, the old MANIFEST survives. */
    for (uint64_t n = 1; n <= 2; n++) {
        vfs_fault_reset(vf);
        assert_int_equal(man_write(v, dir, &old_s), DM_OK);
        vfs_fault_reset(vf);
        vfs_fault_crash_at_sync(vf, n);
        assert_int_equal(man_write(v, dir, &new_s), DM_EIO);
        assert_int_equal(vfs_fault_apply_crash(vf, VFS_TEAR_GARBAGE), DM_OK);
        assert_int_equal(man_read(v, dir, &d), DM_OK);
        assert_state_equal(&old_s, &d);
        man_state_fini(&d);
    }
    /* After a completed commit a power cut keeps the new state. */
    vfs_fault_reset(vf);
    assert_int_equal(man_write(v, dir, &new_s), DM_OK);
    vfs_fault_crash_now(vf);
    assert_int_equal(vfs_fault_apply_crash(vf, VFS_TEAR_GARBAGE), DM_OK);
    assert_int_equal(man_read(v, dir, &d), DM_OK);
    assert_state_equal(&new_s, &d);
    man_state_fini(&d);

    vfs_fault_free(vf);
    man_state_fini(&old_s);
    man_state_fini(&new_s);
    tu_rmrf(dir);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    man_state s, d;
    sample_state(&s);
    buf img = { 0 };
    assert_int_equal(man_encode(&s, &img), DM_OK);
    int64_t base = alloc_bytes_in_use();
    int rc = DM_ENOMEM;
    for (int64_t k = 1; rc == DM_ENOMEM && k < 1000; k++) {
        alloc_fail_after(k, false);
        rc = man_decode(buf_slice_of(img.ptr, img.len), NULL, &d);
        alloc_fail_after(0, false);
        if (rc == DM_ENOMEM) {
            assert_null(d.files);
            assert_int_equal(alloc_bytes_in_use(), base);
        }
    }
    assert_int_equal(rc, DM_OK);
    assert_state_equal(&s, &d);
    man_state_fini(&d);

    rc = DM_ENOMEM;
    for (int64_t k = 1; rc == DM_ENOMEM && k < 1000; k++) {
        buf out = { 0 };
        alloc_fail_after(k, false);
        rc = man_encode(&s, &out);
        alloc_fail_after(0, false);
        if (rc == DM_OK) {
            assert_int_equal(out.len, img.len);
            assert_memory_equal(out.ptr, img.ptr, img.len);
        } else {
            assert_int_equal(rc, DM_ENOMEM);
            assert_int_equal(out.len, 0);
        }
        buf_fini(&out);
    }
    assert_int_equal(rc, DM_OK);
    buf_fini(&img);
    man_state_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_empty),
        cmocka_unit_test(test_round_trip_many),
        cmocka_unit_test(test_round_trip_large_keys),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_envelope_messages),
        cmocka_unit_test(test_semantic_rules),
        cmocka_unit_test(test_write_read),
        cmocka_unit_test(test_write_faults),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
