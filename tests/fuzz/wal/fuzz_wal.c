/*
 * fuzz_wal.c -- fuzz target for WAL replay (src/storage/wal.c).
 *
 * The input is the whole log file.  It is written to a scratch file and
 * replayed several times; replay must never crash, and what it reports
 * must satisfy the contract in wal.h and docs/format.md "WAL":
 *
 *   - delivered records have strictly increasing seqs and a known type;
 *   - every byte is accounted for: for a log with a good header,
 *     32 + bytes + damaged_bytes + tail_bytes == file size (an empty log
 *     counts all of its bytes as tail);
 *   - damage reports name our path, lie inside the file, do not overlap,
 *     come in file order, and add up to the stats;
 *   - DM_ECORRUPT (bad file header) is reported once, at offset 0, with a
 *     message naming the file, and delivers nothing;
 *   - replay with truncate_tail delivers exactly what replay without it
 *     delivers, cuts exactly tail_bytes off the file, and a replay of the
 *     cut file delivers the same records and damage regions with no tail;
 *   - a non-zero return from on_record stops replay and is passed back;
 *   - no dm_malloc'd byte outlives a replay.
 *
 * Each input runs twice: as given, and with every checksum recomputed
 * along the chain of record lengths.  The second form gets the fuzzer
 * past the CRCs to the checks behind them (type, reserved bytes, seq
 * order, lengths), which random mutation would almost never reach.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/crc.h"
#include "base/err.h"
#include "fuzz_util.h"
#include "storage/wal.h"
#include "storage/wal_format.h"

/* What on_record returns to stop replay early; not a DM_* code, so it
 * can only come back from wal_replay by being passed through. */
#define STOP_CODE 4242

typedef struct pass {
    const char *path;
    uint64_t file_len;
    uint64_t stop_after; /* 0 = never stop */
    /* deliveries */
    uint64_t n_rec;
    uint64_t rec_hash;
    uint64_t last_seq;
    /* damage reports */
    uint64_t n_dmg;
    uint64_t dmg_bytes;
    uint64_t dmg_hash;     /* offsets, lengths and reasons */
    uint64_t dmg_pos_hash; /* offsets and lengths only */
    uint64_t dmg_end; /* end of the previous report */
    bool saw_header_damage;
    /* result */
    int rc;
    wal_replay_stats st;
} pass;

static int on_record(void *arg, uint64_t seq, uint8_t type, buf_slice payload)
{
    pass *p = arg;
    FUZZ_CHECKF(p->n_rec == 0 || seq > p->last_seq,
                "seq %llu after %llu", (unsigned long long)seq,
                (unsigned long long)p->last_seq);
    FUZZ_CHECK(type == WAL_REC_BATCH);
    FUZZ_CHECK(payload.len <= WAL_MAX_RECORD_LEN);
    FUZZ_CHECK(payload.len == 0 || payload.ptr != NULL);
    p->last_seq = seq;
    p->n_rec++;
    uint64_t h = fuzz_hash_u64(p->rec_hash, seq);
    h = fuzz_hash_u64(h, type);
    h = fuzz_hash_u64(h, payload.len);
    p->rec_hash = fuzz_hash(h, payload.ptr, payload.len);
    /* The stats are updated before the callback (wal.c relies on it to
     * name a record's offset). */
    FUZZ_CHECK(p->st.records == p->n_rec);
    if (p->stop_after && p->n_rec == p->stop_after)
        return STOP_CODE;
    return 0;
}

static void on_damage(void *arg, const char *path, uint64_t off, uint64_t len,
                      const char *reason)
{
    pass *p = arg;
    FUZZ_CHECK(path && strcmp(path, p->path) == 0);
    FUZZ_CHECK(reason && reason[0]);
    FUZZ_CHECKF(len > 0 && off <= p->file_len && len <= p->file_len - off,
                "damage [%llu, +%llu) in a file of %llu bytes",
                (unsigned long long)off, (unsigned long long)len,
                (unsigned long long)p->file_len);
    FUZZ_CHECKF(off >= p->dmg_end, "damage at %llu overlaps/precedes %llu",
                (unsigned long long)off, (unsigned long long)p->dmg_end);
    if (off == 0)
        p->saw_header_damage = true;
    p->dmg_end = off + len;
    p->n_dmg++;
    p->dmg_bytes += len;
    uint64_t h = fuzz_hash_u64(p->dmg_pos_hash, off);
    p->dmg_pos_hash = fuzz_hash_u64(h, len);
    h = fuzz_hash_u64(p->dmg_hash, off);
    h = fuzz_hash_u64(h, len);
    p->dmg_hash = fuzz_hash(h, reason, strlen(reason));
}

static void replay(const char *path, bool truncate_tail, uint64_t stop_after,
                   pass *p)
{
    memset(p, 0, sizeof *p);
    p->path = path;
    p->file_len = fuzz_file_size(path);
    p->stop_after = stop_after;
    p->rec_hash = p->dmg_hash = p->dmg_pos_hash = FUZZ_HASH_INIT;
    /* on_record checks p->st while replay fills it: hand replay the same
     * struct. */
    p->rc = wal_replay(vfs_posix(), path, truncate_tail, on_record, on_damage,
                       p, &p->st);
}

/* The per-pass contract (not comparing passes). */
static void check_pass(const pass *p)
{
    const wal_replay_stats *st = &p->st;
    uint64_t size = p->file_len;
    FUZZ_CHECKF(p->rc == DM_OK || p->rc == DM_ECORRUPT ||
                p->rc == DM_EVERSION || p->rc == STOP_CODE,
                "wal_replay returned %d (%s)", p->rc, err_last_msg());
    FUZZ_CHECK(st->records == p->n_rec);
    FUZZ_CHECK(st->damaged == p->n_dmg);
    FUZZ_CHECK(st->damaged_bytes == p->dmg_bytes);
    if (p->rc == DM_ECORRUPT) {
        FUZZ_CHECK(p->n_rec == 0);
        FUZZ_CHECK(p->n_dmg == 1 && p->saw_header_damage);
        FUZZ_CHECK(strstr(err_last_msg(), p->path) != NULL);
        return;
    }
    if (p->rc == DM_EVERSION) {
        FUZZ_CHECK(p->n_rec == 0 && p->n_dmg == 0);
        FUZZ_CHECK(strstr(err_last_msg(), p->path) != NULL);
        return;
    }
    if (p->rc == STOP_CODE) {
        FUZZ_CHECK(p->stop_after && p->n_rec == p->stop_after);
        return;
    }
    FUZZ_CHECK(!p->stop_after || p->n_rec < p->stop_after);
    if (st->valid_end == 0) {
        /* Empty log: nothing delivered, every byte is tail. */
        FUZZ_CHECK(p->n_rec == 0 && p->n_dmg == 0);
        FUZZ_CHECK(st->tail_bytes == size);
        return;
    }
    FUZZ_CHECK(size >= WAL_FILE_HEADER_LEN);
    FUZZ_CHECKF(WAL_FILE_HEADER_LEN + st->bytes + st->damaged_bytes +
                        st->tail_bytes == size,
                "bytes %llu + damaged %llu + tail %llu + header != size %llu",
                (unsigned long long)st->bytes,
                (unsigned long long)st->damaged_bytes,
                (unsigned long long)st->tail_bytes, (unsigned long long)size);
    FUZZ_CHECK(st->valid_end >= WAL_FILE_HEADER_LEN);
    FUZZ_CHECK(st->valid_end <= size - st->tail_bytes);
    FUZZ_CHECK(st->bytes >= st->records * WAL_RECORD_HEADER_LEN);
    FUZZ_CHECK(p->n_rec > 0 || st->valid_end == WAL_FILE_HEADER_LEN);
    /* Damage reports lie before the tail. */
    FUZZ_CHECK(p->dmg_end <= size - st->tail_bytes);
}

/* same_deliveries -- the same records and damage regions; with
 * same_reasons also the same damage reasons (only for the same bytes: once
 * the tail is cut, a damaged record whose length ran into the tail fails
 * an earlier check, "record extends past end of file", instead of its
 * checksum). */
static void same_deliveries(const pass *a, const pass *b, bool same_reasons)
{
    FUZZ_CHECK(a->n_rec == b->n_rec);
    FUZZ_CHECK(a->rec_hash == b->rec_hash);
    FUZZ_CHECK(a->n_dmg == b->n_dmg);
    FUZZ_CHECK(a->dmg_pos_hash == b->dmg_pos_hash);
    if (same_reasons)
        FUZZ_CHECK(a->dmg_hash == b->dmg_hash);
    FUZZ_CHECK(a->st.records == b->st.records);
    FUZZ_CHECK(a->st.bytes == b->st.bytes);
    FUZZ_CHECK(a->st.damaged == b->st.damaged);
    FUZZ_CHECK(a->st.damaged_bytes == b->st.damaged_bytes);
    FUZZ_CHECK(a->st.log_number == b->st.log_number);
}

static void run(const uint8_t *data, size_t size)
{
    const char *path = fuzz_tmp_path("000001.log");
    pass ro, cut, again, stop;

    fuzz_write_file(path, data, size);
    replay(path, false, 0, &ro);
    check_pass(&ro);
    FUZZ_CHECK(fuzz_file_size(path) == size); /* read-only replay */

    /* The same bytes replayed with truncate_tail. */
    replay(path, true, 0, &cut);
    check_pass(&cut);
    FUZZ_CHECK(cut.rc == ro.rc);
    same_deliveries(&ro, &cut, true);
    FUZZ_CHECK(cut.st.tail_bytes == ro.st.tail_bytes);
    FUZZ_CHECK(cut.st.valid_end == ro.st.valid_end);

    uint64_t new_size = fuzz_file_size(path);
    if (ro.rc != DM_OK) {
        FUZZ_CHECK(new_size == size); /* a bad header is never cut */
    } else {
        FUZZ_CHECKF(new_size == size - ro.st.tail_bytes,
                    "size %llu after cutting %llu of %llu",
                    (unsigned long long)new_size,
                    (unsigned long long)ro.st.tail_bytes,
                    (unsigned long long)size);
        /* The cut file replays to the same records, with no tail. */
        replay(path, false, 0, &again);
        check_pass(&again);
        FUZZ_CHECK(again.rc == DM_OK);
        same_deliveries(&ro, &again, false);
        FUZZ_CHECK(again.st.tail_bytes == 0);
        if (ro.st.valid_end != 0)
            FUZZ_CHECK(again.st.valid_end == ro.st.valid_end);
    }

    /* Stopping early passes the callback's code through. */
    if (ro.rc == DM_OK && ro.n_rec > 0) {
        fuzz_write_file(path, data, size);
        replay(path, true, 1, &stop);
        check_pass(&stop);
        FUZZ_CHECK(stop.rc == STOP_CODE && stop.n_rec == 1);
    }
}

/*
 * fix_checksums -- recomputes the file header CRC and, following the
 * chain of record lengths from offset 32, each record's hcrc and crc,
 * stopping at the first length that runs past the end.  Only checksums
 * change; every other byte is the fuzzer's.
 */
static void fix_checksums(uint8_t *p, size_t size)
{
    if (size < WAL_FILE_HEADER_LEN)
        return;
    enc_u32(p + 24, crc_mask(crc32c(p, 24)));
    size_t off = WAL_FILE_HEADER_LEN;
    while (size - off >= WAL_RECORD_HEADER_LEN) {
        uint8_t *h = p + off;
        uint32_t len = dec_u32(h + 8);
        if (len > size - off - WAL_RECORD_HEADER_LEN)
            break;
        enc_u32(h + 4, crc_mask(crc32c(h + 8, 16)));
        enc_u32(h, crc_mask(crc32c(h + 4, 20 + (size_t)len)));
        off += WAL_RECORD_HEADER_LEN + (size_t)len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_drive(data, size, run, fix_checksums);
}
