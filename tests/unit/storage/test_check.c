/*
 * test_check.c -- kv_check, the offline verifier.
 *
 * A small database is built by hand (wal_writer + sst_builder +
 * man_write): two L0/L1 tables, one more at level 2, a live WAL, plus an
 * obsolete WAL and an orphan table full of garbage that must be ignored.
 * The clean database checks clean with exact counts; then each kind of
 * damage (an SSTable block, the middle of the WAL, the WAL header, the
 * MANIFEST, a deleted or resized live table, overlapping level-1 tables)
 * must be reported with the right file and offset and a non-zero result.
 * A torn WAL tail is not a problem.
 */
#include "testutil.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "os/vfs.h"
#include "os/vfs_fault.h"
#include "storage/filename.h"
#include "storage/ikey.h"
#include "storage/kv.h"
#include "storage/manifest.h"
#include "storage/manifest_format.h"
#include "storage/sstable.h"
#include "storage/sstable_format.h"
#include "storage/wal.h"
#include "storage/wal_format.h"

#define MAX_PROBLEMS 64
#define N_WAL_RECORDS 20
#define WAL_PAYLOAD_LEN 100

typedef struct problem {
    char file[64];
    uint64_t off;
    char reason[512];
} problem;

typedef struct seen {
    int n;
    problem p[MAX_PROBLEMS];
} seen;

static void on_problem(void *arg, const char *file, uint64_t off,
                       const char *reason)
{
    seen *s = arg;
    if (s->n < MAX_PROBLEMS) {
        snprintf(s->p[s->n].file, sizeof s->p[s->n].file, "%s", file);
        s->p[s->n].off = off;
        snprintf(s->p[s->n].reason, sizeof s->p[s->n].reason, "%s", reason);
    }
    s->n++;
}

/* The first problem reported for file, or NULL. */
static const problem *find(const seen *s, const char *file)
{
    for (int i = 0; i < s->n && i < MAX_PROBLEMS; i++)
        if (!strcmp(s->p[i].file, file))
            return &s->p[i];
    return NULL;
}

static void dump(const seen *s)
{
    for (int i = 0; i < s->n && i < MAX_PROBLEMS; i++)
        print_message("  problem: %s: offset %llu: %s\n", s->p[i].file,
                      (unsigned long long)s->p[i].off, s->p[i].reason);
}

/* What the builder produced, for the assertions. */
typedef struct db_layout {
    uint64_t sst_entries;
    uint64_t sst_size[3];     /* 000003.sst 000004.sst 000006.sst */
    uint64_t rec_off[N_WAL_RECORDS]; /* record offsets in 000007.wal */
    uint64_t wal_size;
} db_layout;

static const char junk[] = "this is not a log file nor a table at all";

/* Builds an SSTable of keys prefix%04d for i in [from, to). */
static void build_sst(vfs *v, const char *dir, uint64_t number,
                      const char *prefix, int from, int to, uint64_t seq,
                      man_file *mf, uint32_t level, uint64_t *size)
{
    char path[FN_PATH_MAX], key[64];
    fn_make(path, dir, number, FN_SST);
    sst_options opt = sst_options_default();
    opt.block_size = 256; /* several data blocks */
    sst_builder *b = NULL;
    assert_int_equal(sst_builder_open(v, path, &opt, &b), DM_OK);
    buf ik = { 0 };
    for (int i = from; i < to; i++) {
        snprintf(key, sizeof key, "%s%04d", prefix, i);
        assert_int_equal(ikey_build(&ik, buf_slice_of(key, strlen(key)),
                                    seq + (uint64_t)i, IKEY_PUT), DM_OK);
        assert_int_equal(sst_builder_add(b, buf_slice_of(ik.ptr, ik.len),
                                         buf_slice_of("value-value-value", 17)),
                         DM_OK);
    }
    buf_fini(&ik);
    sst_info info;
    memset(&info, 0, sizeof info);
    assert_int_equal(sst_builder_finish(b, &info), DM_OK);
    memset(mf, 0, sizeof *mf);
    mf->level = level;
    mf->number = number;
    mf->size = info.file_size;
    mf->n_entries = info.n_entries;
    assert_int_equal(info.n_entries, (uint64_t)(to - from));
    assert_int_equal(buf_append(&mf->smallest, info.smallest.ptr,
                                info.smallest.len), DM_OK);
    assert_int_equal(buf_append(&mf->largest, info.largest.ptr,
                                info.largest.len), DM_OK);
    *size = info.file_size;
    sst_info_fini(&info);
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    fclose(fp);
}

static void flip_byte(const char *path, uint64_t off)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, (long)off, SEEK_SET), 0);
    int c = fgetc(fp);
    assert_int_not_equal(c, EOF);
    assert_int_equal(fseek(fp, (long)off, SEEK_SET), 0);
    fputc(c ^ 0x55, fp);
    fclose(fp);
}

static uint64_t file_size(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return (uint64_t)sb.st_size;
}

/* Writes a WAL with N_WAL_RECORDS records, recording their offsets. */
static void build_wal(vfs *v, const char *dir, uint64_t number,
                      uint64_t first_seq, uint64_t *rec_off, uint64_t *size)
{
    char path[FN_PATH_MAX];
    uint8_t payload[WAL_PAYLOAD_LEN];
    fn_make(path, dir, number, FN_WAL);
    wal_writer *w = NULL;
    assert_int_equal(wal_writer_open(v, path, number, &w), DM_OK);
    for (int i = 0; i < N_WAL_RECORDS; i++) {
        /* a well-formed one-put write batch (docs/format.md "Write batch")
         * filling the payload: count, type, key, value */
        size_t vlen = sizeof payload - 4 - 1 - 1 - 4 - 1; /* < 128: 1-byte varint */
        enc_u32(payload, 1);
        payload[4] = 1;
        payload[5] = 4;
        memcpy(payload + 6, "k000", 4);
        payload[9] = (uint8_t)('0' + i % 10);
        enc_varint(payload + 10, vlen);
        memset(payload + 11, 'a' + i, vlen);
        if (rec_off)
            rec_off[i] = wal_size(w);
        assert_int_equal(wal_add(w, first_seq + (uint64_t)i, WAL_REC_BATCH,
                                 buf_slice_of(payload, sizeof payload)),
                         DM_OK);
    }
    assert_int_equal(wal_sync(w), DM_OK);
    if (size)
        *size = wal_size(w);
    assert_int_equal(wal_writer_close(w), DM_OK);
}

/*
 * The database:
 *   000003.sst  level 0   k0000..k0099
 *   000004.sst  level 1   k0000..k0049
 *   000006.sst  level 1   k0050..k0149 (disjoint from 000004)
 *   000007.wal  live (log_number 7), 20 records
 *   000002.wal  obsolete (below log_number): garbage, ignored
 *   000005.sst  orphan (not in the MANIFEST): garbage, ignored
 *   MANIFEST    next_file 8
 */
static const char *build_db(const char *tag, db_layout *lay)
{
    vfs *v = vfs_posix();
    const char *tmp = tu_tmpdir(tag);
    static char dir[FN_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", tmp);
    memset(lay, 0, sizeof *lay);

    man_state ms = { 0 };
    ms.next_file = 8;
    ms.last_seq = 1000;
    ms.log_number = 7;
    ms.n_files = 3;
    ms.files = dm_calloc(3, sizeof *ms.files);
    assert_non_null(ms.files);
    build_sst(v, dir, 3, "k", 0, 100, 500, &ms.files[0], 0, &lay->sst_size[0]);
    build_sst(v, dir, 4, "k", 0, 50, 1, &ms.files[1], 1, &lay->sst_size[1]);
    build_sst(v, dir, 6, "k", 50, 150, 1, &ms.files[2], 1, &lay->sst_size[2]);
    lay->sst_entries = 100 + 50 + 100;
    build_wal(v, dir, 7, 1001, lay->rec_off, &lay->wal_size);
    assert_int_equal(man_write(v, dir, &ms), DM_OK);
    man_state_fini(&ms);

    write_file(tu_file_path(dir, "000002.wal"), junk, sizeof junk);
    write_file(tu_file_path(dir, "000005.sst"), junk, sizeof junk);
    write_file(tu_file_path(dir, "MANIFEST.tmp"), junk, sizeof junk);
    return dir;
}

static int run_check(const char *dir, seen *s, kv_check_stats *st)
{
    memset(s, 0, sizeof *s);
    int rc = kv_check(dir, NULL, on_problem, s, st);
    assert_int_equal(st->problems, (uint64_t)s->n);
    if (rc == DM_OK)
        assert_int_equal(s->n, 0);
    return rc;
}

/* ---------------------------------------------------------------- tests */

static void test_clean(void **state)
{
    (void)state;
    db_layout lay;
    const char *dir = build_db("chk_clean", &lay);
    seen s;
    kv_check_stats st;
    int rc = run_check(dir, &s, &st);
    if (rc != DM_OK) {
        dump(&s);
        fail_msg("clean database: %s: %s", dm_errname(rc), err_last_msg());
    }
    assert_int_equal(st.files_checked, 1 + 3 + 1);
    assert_int_equal(st.sst_entries, lay.sst_entries);
    assert_int_equal(st.wal_records, N_WAL_RECORDS);
    assert_int_equal(st.problems, 0);

    /* Nothing was modified or created (read-only, no lock file). */
    struct stat sb;
    assert_int_not_equal(stat(tu_file_path(dir, "LOCK"), &sb), 0);
    assert_int_equal(file_size(tu_file_path(dir, "000002.wal")), sizeof junk);
    /* st may be NULL and the callback too. */
    assert_int_equal(kv_check(dir, vfs_posix(), NULL, NULL, NULL), DM_OK);
    tu_rmrf(dir);
}

static void test_sst_block_damage(void **state)
{
    (void)state;
    db_layout lay;
    const char *dir = build_db("chk_sst", &lay);
    char path[FN_PATH_MAX];
    fn_make(path, dir, 4, FN_SST);
    uint64_t at = SST_HEADER_LEN + 40; /* inside the first data block */
    flip_byte(path, at);
    seen s;
    kv_check_stats st;
    assert_int_equal(run_check(dir, &s, &st), DM_ECORRUPT);
    const problem *p = find(&s, "000004.sst");
    if (!p || p->off < SST_HEADER_LEN || p->off > at) {
        dump(&s);
        fail_msg("no problem for 000004.sst at [%d, %llu]", SST_HEADER_LEN,
                 (unsigned long long)at);
    }
    /* Only that table is damaged. */
    for (int i = 0; i < s.n; i++)
        assert_string_equal(s.p[i].file, "000004.sst");
    assert_int_equal(st.wal_records, N_WAL_RECORDS);
    tu_rmrf(dir);
}

static void test_wal_middle_damage(void **state)
{
    (void)state;
    db_layout lay;
    const char *dir = build_db("chk_walmid", &lay);
    char path[FN_PATH_MAX];
    fn_make(path, dir, 7, FN_WAL);
    uint64_t rec = lay.rec_off[10];
    flip_byte(path, rec + WAL_RECORD_HEADER_LEN + 50); /* payload byte */
    seen s;
    kv_check_stats st;
    assert_int_equal(run_check(dir, &s, &st), DM_ECORRUPT);
    const problem *p = find(&s, "000007.wal");
    if (!p || p->off != rec) {
        dump(&s);
        fail_msg("no problem for 000007.wal at offset %llu",
                 (unsigned long long)rec);
    }
    assert_int_equal(s.n, 1);
    assert_int_equal(st.wal_records, N_WAL_RECORDS - 1);
    assert_int_equal(st.sst_entries, lay.sst_entries);
    tu_rmrf(dir);
}

static void test_wal_torn_tail_is_clean(void **state)
{
    (void)state;
    db_layout lay;
    const char *dir = build_db("chk_waltail", &lay);
    char path[FN_PATH_MAX];
    fn_make(path, dir, 7, FN_WAL);
    /* Cut the last record in half, as a crash during its write would. */
    assert_int_equal(truncate(path, (off_t)(lay.rec_off[N_WAL_RECORDS - 1] +
                                            30)), 0);
    seen s;
    kv_check_stats st;
    int rc = run_check(dir, &s, &st);
    if (rc != DM_OK) {
        dump(&s);
        fail_msg("torn tail reported as damage: %s", dm_errname(rc));
    }
    assert_int_equal(st.wal_records, N_WAL_RECORDS - 1);
    /* Nothing was truncated: check is read-only. */
    assert_int_equal(file_size(path), lay.rec_off[N_WAL_RECORDS - 1] + 30);
    tu_rmrf(dir);
}

static void test_wal_header_damage(void **state)
{
    (void)state;
    db_layout lay;
    const char *dir = build_db("chk_walhdr", &lay);
    char path[FN_PATH_MAX];
    fn_make(path, dir, 7, FN_WAL);
    flip_byte(path, 17); /* inside log_number */
    seen s;
    kv_check_stats st;
    assert_int_equal(run_check(dir, &s, &st), DM_ECORRUPT);
    const problem *p = find(&s, "000007.wal");
    if (!p || p->off >= WAL_FILE_HEADER_LEN) {
        dump(&s);
        fail_msg("no header problem for 000007.wal");
    }
    tu_rmrf(dir);
}

static void test_manifest_damage(void **state)
{
    (void)state;
    db_layout lay;
    const char *dir = build_db("chk_man", &lay);
    const char *mpath = tu_file_path(dir, "MANIFEST");
    uint64_t size = file_size(mpath);
    flip_byte(mpath, 20);
    seen s;
    kv_check_stats st;
    assert_int_equal(run_check(dir, &s, &st), DM_ECORRUPT);
    const problem *p = find(&s, "MANIFEST");
    if (!p || p->off != size - MAN_TRAILER_OFF_CRC ||
        !strstr(p->reason, "checksum mismatch")) {
        dump(&s);
        fail_msg("no checksum problem for MANIFEST at %llu",
                 (unsigned long long)(size - MAN_TRAILER_OFF_CRC));
    }
    /* The reason carries no "offset" prefix: it was parsed out. */
    assert_null(strstr(p->reason, "offset"));
    /* Best effort without a live set: every table and log is checked,
     * including the orphan garbage table, which is reported. */
    assert_non_null(find(&s, "000005.sst"));
    assert_null(find(&s, "000003.sst"));
    tu_rmrf(dir);
}

static void test_missing_and_resized_sst(void **state)
{
    (void)state;
    db_layout lay;
    const char *dir = build_db("chk_missing", &lay);
    char path[FN_PATH_MAX];
    fn_make(path, dir, 3, FN_SST);
    assert_int_equal(unlink(path), 0);
    fn_make(path, dir, 6, FN_SST);
    assert_int_equal(truncate(path, (off_t)(lay.sst_size[2] - 10)), 0);
    seen s;
    kv_check_stats st;
    assert_int_equal(run_check(dir, &s, &st), DM_ECORRUPT);
    const problem *p = find(&s, "000003.sst");
    if (!p || p->off != 0 || !strstr(p->reason, "missing")) {
        dump(&s);
        fail_msg("missing table not reported");
    }
    p = find(&s, "000006.sst");
    if (!p || p->off != lay.sst_size[2] - 10 || !strstr(p->reason, "size")) {
        dump(&s);
        fail_msg("resized table not reported at its end");
    }
    assert_null(find(&s, "000004.sst"));
    assert_int_equal(st.wal_records, N_WAL_RECORDS);
    tu_rmrf(dir);
}

static void test_overlap_and_bounds(void **state)
{
    (void)state;
    vfs *v = vfs_posix();
    const char *dir = tu_tmpdir("chk_overlap");
    man_state ms = { 0 };
    uint64_t size;
    ms.next_file = 20;
    ms.log_number = 20;
    ms.n_files = 3;
    ms.files = dm_calloc(3, sizeof *ms.files);
    assert_non_null(ms.files);
    build_sst(v, dir, 10, "k", 0, 60, 1, &ms.files[0], 2, &size);
    build_sst(v, dir, 11, "k", 100, 200, 1, &ms.files[1], 2, &size);
    build_sst(v, dir, 12, "k", 50, 70, 1, &ms.files[2], 2, &size);
    assert_int_equal(man_write(v, dir, &ms), DM_OK);

    seen s;
    kv_check_stats st;
    assert_int_equal(run_check(dir, &s, &st), DM_ECORRUPT);
    const problem *p = find(&s, "MANIFEST");
    if (!p || !strstr(p->reason, "level 2") ||
        !strstr(p->reason, "000012.sst overlaps 000010.sst")) {
        dump(&s);
        fail_msg("overlap not reported");
    }
    /* The offset is where 000012's entry starts in the MANIFEST: check it
     * by decoding the prefix up to there. */
    uint8_t *img = NULL;
    size_t len = 0;
    assert_int_equal(vfs_read_all(v, tu_file_path(dir, "MANIFEST"), &img,
                                  &len), DM_OK);
    assert_true(p->off > MAN_HEADER_LEN && p->off < len);
    uint64_t level = 99, number = 0;
    const uint8_t *q = dec_varint(img + p->off, img + len, &level);
    assert_non_null(q);
    assert_non_null(dec_varint(q, img + len, &number));
    assert_int_equal(level, 2);
    assert_int_equal(number, 12);
    dm_free(img);
    assert_int_equal(s.n, 1);
    assert_int_equal(st.files_checked, 4);

    /* A MANIFEST whose key range does not match the table. */
    ms.files[1].level = 3;
    ms.files[2].level = 4;
    ms.files[1].largest.ptr[4] = '8'; /* "k0199" -> "k0198" */
    assert_int_equal(man_write(v, dir, &ms), DM_OK);
    assert_int_equal(run_check(dir, &s, &st), DM_ECORRUPT);
    p = find(&s, "000011.sst");
    if (!p || !strstr(p->reason, "largest")) {
        dump(&s);
        fail_msg("key range mismatch not reported");
    }
    ms.files[1].largest.ptr[4] = '9';
    ms.files[1].n_entries++;
    assert_int_equal(man_write(v, dir, &ms), DM_OK);
    assert_int_equal(run_check(dir, &s, &st), DM_ECORRUPT);
    p = find(&s, "000011.sst");
    if (!p || !strstr(p->reason, "entries")) {
        dump(&s);
        fail_msg("entry count mismatch not reported");
    }
    ms.files[1].n_entries--;
    assert_int_equal(man_write(v, dir, &ms), DM_OK);
    assert_int_equal(run_check(dir, &s, &st), DM_OK);
    man_state_fini(&ms);
    tu_rmrf(dir);
}

static void test_no_database(void **state)
{
    (void)state;
    vfs *v = vfs_posix();
    const char *dir = tu_tmpdir("chk_none");
    seen s;
    kv_check_stats st;
    char missing[FN_PATH_MAX];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    assert_int_equal(run_check(missing, &s, &st), DM_ENOTFOUND);
    assert_non_null(strstr(err_last_msg(), "no database"));
    assert_int_equal(run_check(dir, &s, &st), DM_ENOTFOUND);
    assert_non_null(strstr(err_last_msg(), "no database"));

    /* A database that never flushed: no MANIFEST, only a WAL.  A table
     * left by a crashed first flush is not a problem. */
    build_wal(v, dir, 1, 1, NULL, NULL);
    write_file(tu_file_path(dir, "000002.sst"), junk, sizeof junk);
    int rc = run_check(dir, &s, &st);
    if (rc != DM_OK) {
        dump(&s);
        fail_msg("WAL-only database: %s", dm_errname(rc));
    }
    assert_int_equal(st.files_checked, 1);
    assert_int_equal(st.wal_records, N_WAL_RECORDS);
    tu_rmrf(dir);
}

/* An I/O error on any read is never taken for a clean database. */
static void test_read_errors(void **state)
{
    (void)state;
    db_layout lay;
    const char *dir = build_db("chk_eio", &lay);
    vfs_fault *vf = NULL;
    assert_int_equal(vfs_fault_new(vfs_posix(), 5, &vf), DM_OK);
    vfs *v = vfs_fault_vfs(vf);
    static const enum vfs_fault_op ops[] = { VFS_OP_OPEN, VFS_OP_PREAD };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        for (uint64_t n = 1;; n++) {
            assert_true(n < 1000);
            vfs_fault_reset(vf);
            vfs_fault_fail_nth(vf, ops[i], n, DM_EIO, false);
            seen s;
            kv_check_stats st;
            memset(&s, 0, sizeof s);
            int rc = kv_check(dir, v, on_problem, &s, &st);
            bool has_fired = vfs_fault_calls(vf, ops[i]) >= n;
            if (!has_fired) {
                assert_int_equal(rc, DM_OK);
                break;
            }
            if (rc == DM_OK)
                fail_msg("op %zu call %llu failed with EIO but the check "
                         "came out clean", i, (unsigned long long)n);
            assert_true(rc == DM_ECORRUPT || rc == DM_EIO);
            if (rc == DM_ECORRUPT)
                assert_true(s.n > 0);
        }
    }
    vfs_fault_free(vf);
    tu_rmrf(dir);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    db_layout lay;
    const char *dir = build_db("chk_oom", &lay);
    int rc = DM_ENOMEM;
    int64_t base = alloc_bytes_in_use();
    for (int64_t k = 1; rc != DM_OK && k < 5000; k++) {
        seen s;
        kv_check_stats st;
        memset(&s, 0, sizeof s);
        alloc_fail_after(k, false);
        rc = kv_check(dir, NULL, on_problem, &s, &st);
        alloc_fail_after(0, false);
        /* An allocation failure may surface as ENOMEM or, inside a reader,
         * as a reported read error, but never as a crash or leak. */
        assert_true(rc == DM_OK || rc == DM_ENOMEM || rc == DM_ECORRUPT);
        assert_int_equal(alloc_bytes_in_use(), base);
    }
    assert_int_equal(rc, DM_OK);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean),
        cmocka_unit_test(test_sst_block_damage),
        cmocka_unit_test(test_wal_middle_damage),
        cmocka_unit_test(test_wal_torn_tail_is_clean),
        cmocka_unit_test(test_wal_header_damage),
        cmocka_unit_test(test_manifest_damage),
        cmocka_unit_test(test_missing_and_resized_sst),
        cmocka_unit_test(test_overlap_and_bounds),
        cmocka_unit_test(test_no_database),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
