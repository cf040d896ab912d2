/*
 * wal.c -- the write-ahead log: writer and replay.
 *
 * FORMAT (owned here; normative text in docs/format.md, section "WAL";
 * constants in wal_format.h).  All integers little-endian.
 *
 *   file   := file_header record*
 *   file_header (32 bytes) :=
 *       [0,8) magic WAL_MAGIC   [8,12) version   [12,16) reserved (0)
 *       [16,24) log_number      [24,28) crc      [28,32) pad (0)
 *       crc = crc_mask(crc32c(bytes [0,24)))
 *   record := header (24 bytes) payload (len bytes)
 *       [0,4)   crc   = crc_mask(crc32c(bytes [4, 24+len)))
 *       [4,8)   hcrc  = crc_mask(crc32c(bytes [8, 24)))
 *       [8,12)  len   payload bytes, <= WAL_MAX_RECORD_LEN
 *       [12]    type  (WAL_REC_BATCH)
 *       [13,16) reserved, zero
 *       [16,24) seq   first sequence number of the batch
 *
 * A record is valid iff its 24 header bytes are present, the type is known,
 * the reserved bytes are zero, len <= WAL_MAX_RECORD_LEN, hcrc matches, the
 * whole payload is present and crc matches (checked in that order; the
 * first failing check names the reason in damage reports).  hcrc exists so
 * that the scan for the next record after damage can reject almost every
 * offset from 16 bytes, without reading and checksumming a payload.
 *
 * WRITER.  Records are encoded straight into one growable buffer (no
 * allocation per record once the buffer has grown to the working size);
 * wal_flush hands the whole buffer to the VFS in one append, wal_sync adds
 * an fdatasync (skipped when nothing was appended since the last one).
 * wal_writer_open also fsyncs the directory so that the new file's name is
 * durable with its header.  wal_add refuses (DM_EINVAL) an unknown type or
 * a seq not above the previous record's, which replay would drop.  Any failed append or sync makes the writer "failed": the
 * error is remembered and returned by every later call, and nothing is
 * retried -- after a failed fsync the kernel may have dropped the dirty
 * pages and reported the error once, so a retry that "succeeds" would lie.
 *
 *     OPEN --wal_add/flush/sync ok--> OPEN
 *     OPEN --append or sync fails---> FAILED (w->err = first error)
 *     FAILED --any call-------------> returns w->err
 *
 * REPLAY.  The file is read through a sliding window of large preads
 * (WAL_READ_CHUNK, grown when one record is larger), so a 100 MB log costs
 * a few dozen syscalls and bounded memory.  On an invalid record at X the
 * reader scans forward byte by byte for the first offset Y > X where a
 * valid record starts.  Found: [X, Y) is damage in the middle -- counted,
 * reported through on_damage, and skipped.  Not found: [X, EOF) is a torn
 * tail, dropped quietly (and cut off with truncate_tail).  A valid record
 * whose seq is not greater than the previous delivered record's seq is
 * damage too ("sequence number goes backwards") and is skipped whole.
 * The walk depends only on the file's bytes, so it is deterministic.
 *
 * The file header must be good (magic, crc, version, zero reserved/pad):
 * otherwise DM_ECORRUPT, reported at offset 0 (DM_EVERSION for a header
 * that checks but names another version).  One exception: a file shorter
 * than or as long as the header (whatever its bytes), and a file that is
 * zero from end to end, are EMPTY logs (DM_OK, nothing delivered, all
 * bytes counted as tail).  The header is fsynced before any record is
 * appended, so such a file can only be a crash inside wal_writer_open and
 * cannot hold an acknowledged write.
 *
 * Cost: the scan after damage is linear with a cheap per-offset reject.
 * Only a hostile file with many header-valid candidates whose payloads do
 * not check can make it checksum large payloads repeatedly.
 *
 * Guarantees to on_record (kv.c relies on them): the payload slice is
 * borrowed from the read window and valid only until the callback
 * returns; *st is already updated for the record being delivered, so its
 * file offset is st->valid_end - WAL_RECORD_HEADER_LEN - payload.len
 * (useful for naming the record in an error).
 *
 * Limitation, stated plainly: damage to the LAST record is
 * indistinguishable from a torn tail and is dropped without a report; and
 * a payload that itself contains the bytes of a valid WAL record could, if
 * the record around it is damaged, be taken for a record (the seq check
 * makes this unlikely to deliver anything stale).
 *
 * LOCKING.  None inside.  A writer is used by one thread at a time (the
 * group-commit leader); wal_replay is self-contained.
 */
#include "storage/wal.h"

#include <string.h>

#include "base/alloc.h"
#include "base/crc.h"
#include "base/err.h"
#include "storage/wal_format.h"

/* Replay reads the file in windows of this many bytes (more when a single
 * record is larger).  Overridable at build time so that tests can run the
 * window logic with tiny windows. */
#ifndef WAL_READ_CHUNK
#define WAL_READ_CHUNK ((size_t)4 << 20)
#endif

/* After a flush the writer gives back a buffer that grew past this, so one
 * huge batch does not pin its memory for the life of the log. */
#define WAL_BUF_KEEP ((size_t)8 << 20)

struct wal_writer {
    vfs *v;
    vfs_file *f;
    char *path;           /* for error messages */
    buf pending;          /* encoded records not yet handed to the OS */
    uint64_t file_len;    /* bytes handed to the OS (appended) */
    uint64_t synced_len;  /* file_len at the last successful sync */
    uint64_t last_seq;    /* seq of the last record added */
    bool has_seq;         /* last_seq is meaningful */
    int err;              /* sticky: first failed append/sync, else DM_OK */
};

static bool type_known(uint8_t t)
{
    return t == WAL_REC_BATCH;
}

/* The directory part of path ("." when there is none), into dst. */
static int dir_of(const char *path, char *dst, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t n;
    if (!slash) {
        dst[0] = '.';
        dst[1] = '\0';
        return DM_OK;
    }
    n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= cap)
        return DM_EINVAL;
    memcpy(dst, path, n);
    dst[n] = '\0';
    return DM_OK;
}

static void encode_file_header(uint8_t h[WAL_FILE_HEADER_LEN],
                               uint64_t log_number)
{
    memset(h, 0, WAL_FILE_HEADER_LEN);
    enc_u64(h, WAL_MAGIC);
    enc_u32(h + 8, WAL_VERSION);
    enc_u64(h + 16, log_number);
    enc_u32(h + 24, crc_mask(crc32c(h, 24)));
}

/* ------------------------------------------------------------------ writer */

int wal_writer_open(vfs *v, const char *path, uint64_t log_number,
                    wal_writer **out)
{
    wal_writer *w = NULL;
    uint8_t h[WAL_FILE_HEADER_LEN];
    char dir[4096];
    int rc;

    *out = NULL;
    if ((rc = dir_of(path, dir, sizeof dir)))
        return err_set_msg(rc, "%s: path too long", path);
    if (!(w = dm_calloc(1, sizeof *w))) {
        rc = DM_ENOMEM;
        goto fail;
    }
    w->v = v;
    buf_init(&w->pending);
    if (!(w->path = dm_strdup(path))) {
        rc = DM_ENOMEM;
        goto fail;
    }
    rc = v->open(v, path, VFS_RDWR | VFS_CREATE | VFS_TRUNC, &w->f);
    if (rc) {
        err_set_msg(rc, "%s: cannot create WAL (%s)", path, dm_strerror(rc));
        goto fail;
    }
    encode_file_header(h, log_number);
    if ((rc = v->append(v, w->f, h, sizeof h)) || (rc = v->sync(v, w->f))) {
        err_set_msg(rc, "%s: cannot write WAL header (%s)", path,
                    dm_strerror(rc));
        goto fail;
    }
    /* The header is durable only once the file's name is: without this a
     * crash could lose the whole (synced) log with its directory entry. */
    if ((rc = v->sync_dir(v, dir))) {
        err_set_msg(rc, "%s: cannot sync directory %s (%s)", path, dir,
                    dm_strerror(rc));
        goto fail;
    }
    w->file_len = w->synced_len = WAL_FILE_HEADER_LEN;
    *out = w;
    return DM_OK;
fail:
    if (w) {
        v->close(v, w->f);
        dm_free(w->path);
        dm_free(w);
    }
    return rc;
}

int wal_add(wal_writer *w, uint64_t seq, uint8_t type, buf_slice payload)
{
    uint8_t *h;
    size_t n;
    uint32_t c;
    int rc;

    if (w->err)
        return w->err;
    if (payload.len > WAL_MAX_RECORD_LEN)
        return err_set_msg(DM_ETOOBIG, "%s: WAL record of %zu bytes exceeds "
                           "the limit of %u", w->path, payload.len,
                           (unsigned)WAL_MAX_RECORD_LEN);
    if (!type_known(type))
        return err_set_msg(DM_EINVAL, "%s: unknown WAL record type %u",
                           w->path, (unsigned)type);
    /* Replay drops a record whose seq does not increase; refusing it here
     * turns a silent loss at recovery into an error at the caller. */
    if (w->has_seq && seq <= w->last_seq)
        return err_set_msg(DM_EINVAL, "%s: WAL seq %llu not above %llu",
                           w->path, (unsigned long long)seq,
                           (unsigned long long)w->last_seq);
    n = WAL_RECORD_HEADER_LEN + payload.len;
    if ((rc = buf_reserve(&w->pending, n)))
        return rc;
    h = w->pending.ptr + w->pending.len;
    enc_u32(h + 8, (uint32_t)payload.len);
    h[12] = type;
    h[13] = h[14] = h[15] = 0;
    enc_u64(h + 16, seq);
    enc_u32(h + 4, crc_mask(crc32c(h + 8, 16)));
    /* crc covers [4,24) and the payload; chain the two ranges so the
     * checksum is taken from the caller's bytes while they are hot. */
    c = crc32c_extend(crc32c(h + 4, 20), payload.ptr, payload.len);
    enc_u32(h, crc_mask(c));
    if (payload.len)
        memcpy(h + WAL_RECORD_HEADER_LEN, payload.ptr, payload.len);
    w->pending.len += n;
    w->last_seq = seq;
    w->has_seq = true;
    return DM_OK;
}

int wal_flush(wal_writer *w)
{
    int rc;

    if (w->err)
        return w->err;
    if (!w->pending.len)
        return DM_OK;
    rc = w->v->append(w->v, w->f, w->pending.ptr, w->pending.len);
    if (rc) {
        /* An unknown prefix may be in the file now; replay will see it as
         * a torn tail.  Never append again after this. */
        w->err = rc;
        return err_set_msg(rc, "%s: WAL append of %zu bytes at offset %llu "
                           "failed (%s)", w->path, w->pending.len,
                           (unsigned long long)w->file_len, dm_strerror(rc));
    }
    w->file_len += w->pending.len;
    buf_clear(&w->pending);
    if (w->pending.cap > WAL_BUF_KEEP)
        buf_fini(&w->pending);
    return DM_OK;
}

int wal_sync(wal_writer *w)
{
    int rc;

    if ((rc = wal_flush(w)))
        return rc;
    /* Nothing appended since the last sync: a leader whose followers were
     * all covered by an earlier sync need not pay for another. */
    if (w->synced_len == w->file_len)
        return DM_OK;
    rc = w->v->sync(w->v, w->f);
    if (rc) {
        w->err = rc;
        return err_set_msg(rc, "%s: WAL sync failed (%s)", w->path,
                           dm_strerror(rc));
    }
    w->synced_len = w->file_len;
    return DM_OK;
}

uint64_t wal_size(const wal_writer *w)
{
    return w->file_len + w->pending.len;
}

int wal_writer_close(wal_writer *w)
{
    int rc, crc;

    if (!w)
        return DM_OK;
    rc = wal_flush(w);
    crc = w->v->close(w->v, w->f);
    if (!rc && crc)
        rc = err_set_msg(crc, "%s: close failed (%s)", w->path,
                         dm_strerror(crc));
    buf_fini(&w->pending);
    dm_free(w->path);
    dm_free(w);
    return rc;
}

/* ------------------------------------------------------------------ replay */

/* A window over the file: buf[0, win_len) holds file bytes
 * [win_off, win_off + win_len). */
typedef struct reader {
    vfs *v;
    vfs_file *f;
    uint64_t file_len;
    uint8_t *buf;
    size_t cap;
    uint64_t win_off;
    size_t win_len;
} reader;

/*
 * rd_get -- makes file bytes [off, off + want) (clipped at end of file)
 * addressable and returns them in *p / *got.  The pointer is valid until
 * the next rd_get.  *got < want only at end of file.
 */
static int rd_get(reader *r, uint64_t off, size_t want, const uint8_t **p,
                  size_t *got)
{
    uint64_t left;
    size_t n, keep = 0, target, nread = 0, to_read;
    int rc;

    *p = NULL;
    *got = 0;
    if (off >= r->file_len)
        return DM_OK;
    left = r->file_len - off;
    n = (uint64_t)want < left ? want : (size_t)left;
    if (off >= r->win_off && off - r->win_off <= r->win_len &&
        n <= r->win_len - (size_t)(off - r->win_off)) {
        *p = r->buf + (off - r->win_off);
        *got = n;
        return DM_OK;
    }
    /* Slide: keep the part of the window at and after off, read the rest. */
    if (off >= r->win_off && off - r->win_off < r->win_len) {
        keep = r->win_len - (size_t)(off - r->win_off);
        memmove(r->buf, r->buf + (off - r->win_off), keep);
    }
    r->win_off = off;
    r->win_len = keep;
    target = (uint64_t)WAL_READ_CHUNK < left ? WAL_READ_CHUNK : (size_t)left;
    if (target < n)
        target = n;
    if (r->cap < target) {
        uint8_t *nb = dm_realloc(r->buf, target);
        if (!nb)
            return DM_ENOMEM;
        r->buf = nb;
        r->cap = target;
    }
    to_read = r->cap - keep;
    if ((uint64_t)to_read > left - keep)
        to_read = (size_t)(left - keep);
    if (to_read) {
        rc = r->v->pread(r->v, r->f, r->buf + keep, to_read, off + keep,
                         &nread);
        if (rc)
            return rc;
        if (nread < to_read) /* the file shrank under us: that is its end */
            r->file_len = off + keep + nread;
    }
    r->win_len = keep + nread;
    *p = r->buf;
    *got = n < r->win_len ? n : r->win_len;
    return DM_OK;
}

typedef struct wal_rec {
    uint32_t len;
    uint8_t type;
    uint64_t seq;
    const uint8_t *payload; /* borrowed from the reader's window */
} wal_rec;

/*
 * check_at -- is there a valid record at off?  DM_OK with *why == NULL and
 * *rec filled when there is; DM_OK with *why naming the first failed check
 * when not; a negative code on a read error.
 */
static int check_at(reader *r, uint64_t off, wal_rec *rec, const char **why)
{
    const uint8_t *h;
    size_t got;
    uint32_t len;
    int rc;

    *why = NULL;
    if ((rc = rd_get(r, off, WAL_RECORD_HEADER_LEN, &h, &got)))
        return rc;
    if (got < WAL_RECORD_HEADER_LEN) {
        *why = "truncated record header";
        return DM_OK;
    }
    len = dec_u32(h + 8);
    if (!type_known(h[12]))
        *why = "unknown type";
    else if (h[13] | h[14] | h[15])
        *why = "reserved bytes not zero";
    else if (len > WAL_MAX_RECORD_LEN)
        *why = "bad length";
    else if (crc_mask(crc32c(h + 8, 16)) != dec_u32(h + 4))
        *why = "header checksum mismatch";
    else if ((uint64_t)len > r->file_len - off - WAL_RECORD_HEADER_LEN)
        *why = "record extends past end of file";
    if (*why)
        return DM_OK;
    if ((rc = rd_get(r, off, WAL_RECORD_HEADER_LEN + (size_t)len, &h, &got)))
        return rc;
    if (got < WAL_RECORD_HEADER_LEN + (size_t)len) {
        *why = "record extends past end of file";
        return DM_OK;
    }
    if (crc_mask(crc32c(h + 4, 20 + (size_t)len)) != dec_u32(h)) {
        *why = "checksum mismatch";
        return DM_OK;
    }
    rec->len = len;
    rec->type = h[12];
    rec->seq = dec_u64(h + 16);
    rec->payload = h + WAL_RECORD_HEADER_LEN;
    return DM_OK;
}

/* find_next -- the first offset >= from where a valid record starts;
 * *found false when there is none before end of file. */
static int find_next(reader *r, uint64_t from, uint64_t *next, bool *found)
{
    wal_rec rec;
    const char *why;
    int rc;

    *found = false;
    for (uint64_t y = from; y + WAL_RECORD_HEADER_LEN <= r->file_len; y++) {
        const uint8_t *h;
        size_t got;
        if ((rc = rd_get(r, y, WAL_RECORD_HEADER_LEN, &h, &got)))
            return rc;
        if (got < WAL_RECORD_HEADER_LEN)
            break;
        /* Cheap reject before any checksum: most garbage and all zero fill
         * fails on the type byte. */
        if (!type_known(h[12]) || (h[13] | h[14] | h[15]))
            continue;
        if ((rc = check_at(r, y, &rec, &why)))
            return rc;
        if (!why) {
            *next = y;
            *found = true;
            return DM_OK;
        }
    }
    return DM_OK;
}

static void report(wal_damage_fn on_damage, void *arg, const char *path,
                   wal_replay_stats *st, uint64_t off, uint64_t len,
                   const char *why)
{
    st->damaged++;
    st->damaged_bytes += len;
    if (on_damage)
        on_damage(arg, path, off, len, why);
}

/*
 * short_file_is_empty -- a file shorter than its header can only come from
 * a crash inside wal_writer_open (records are appended only after the
 * header is synced), so it holds no records.  It counts as an empty log
 * when its bytes are all zero (size extended, data never written) or are
 * a prefix of a well-formed header (as much of it as is present checks).
 */
static bool short_file_is_empty(const uint8_t *p, size_t n)
{
    uint8_t ref[16];
    size_t i, m;
    bool zero = true;

    for (i = 0; i < n; i++)
        zero = zero && p[i] == 0;
    if (zero)
        return true;
    enc_u64(ref, WAL_MAGIC);
    enc_u32(ref + 8, WAL_VERSION);
    enc_u32(ref + 12, 0);
    m = n < 16 ? n : 16;
    if (memcmp(p, ref, m) != 0)
        return false;
    if (n >= 28 && crc_mask(crc32c(p, 24)) != dec_u32(p + 24))
        return false;
    for (i = 28; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* all_zero_from -- are the file's bytes from off to its end all zero? */
static int all_zero_from(reader *r, uint64_t off, bool *zero)
{
    *zero = true;
    while (off < r->file_len) {
        const uint8_t *p;
        size_t got;
        int rc = rd_get(r, off, WAL_READ_CHUNK, &p, &got);
        if (rc)
            return rc;
        if (!got)
            break;
        for (size_t i = 0; i < got; i++)
            if (p[i]) {
                *zero = false;
                return DM_OK;
            }
        off += got;
    }
    return DM_OK;
}

/*
 * check_file_header -- DM_OK with *is_empty when the file is an empty log
 * (see short_file_is_empty; also a file that is zero from end to end);
 * DM_OK with *why == NULL for a good header; otherwise *why / the code.
 */
static int check_file_header(reader *r, wal_replay_stats *st, bool *is_empty,
                             const char **why)
{
    const uint8_t *h;
    size_t got;
    int rc;

    *is_empty = false;
    *why = NULL;
    if ((rc = rd_get(r, 0, WAL_FILE_HEADER_LEN, &h, &got)))
        return rc;
    if (got < WAL_FILE_HEADER_LEN) {
        if (short_file_is_empty(h, got))
            *is_empty = true;
        else
            *why = "file header truncated";
        return DM_OK;
    }
    if (dec_u64(h) != WAL_MAGIC) {
        bool zero;
        if ((rc = all_zero_from(r, 0, &zero)))
            return rc;
        if (zero)
            *is_empty = true;
        else
            *why = "bad magic";
        return DM_OK;
    }
    if (crc_mask(crc32c(h, 24)) != dec_u32(h + 24)) {
        *why = "file header checksum mismatch";
        return DM_OK;
    }
    if (dec_u32(h + 8) != WAL_VERSION) {
        *why = "unsupported version";
        return DM_EVERSION;
    }
    if (dec_u32(h + 12) != 0 || dec_u32(h + 28) != 0) {
        *why = "file header reserved bytes not zero";
        return DM_OK;
    }
    st->log_number = dec_u64(h + 16);
    return DM_OK;
}

int wal_replay(vfs *v, const char *path, bool truncate_tail,
               wal_record_fn on_record, wal_damage_fn on_damage, void *arg,
               wal_replay_stats *st)
{
    reader r = { .v = v };
    uint64_t pos, tail_off = 0, prev_seq = 0;
    bool has_prev = false, has_tail = false, is_empty;
    const char *why;
    int rc;

    memset(st, 0, sizeof *st);
    rc = v->open(v, path, truncate_tail ? VFS_RDWR : VFS_RDONLY, &r.f);
    if (rc) {
        err_set_msg(rc, "%s: cannot open WAL (%s)", path, dm_strerror(rc));
        goto fail;
    }
    if ((rc = v->size(v, r.f, &r.file_len))) {
        err_set_msg(rc, "%s: cannot stat WAL (%s)", path, dm_strerror(rc));
        goto fail;
    }

    rc = check_file_header(&r, st, &is_empty, &why);
    /* A file no longer than its header holds no record whatever its bytes
     * say: records are appended only after the header and the directory
     * entry are synced, so it is a creation cut short by a crash (a torn
     * header, possibly garbage-filled), never acknowledged data. */
    if (rc == DM_OK && why && r.file_len <= WAL_FILE_HEADER_LEN) {
        why = NULL;
        is_empty = true;
    }
    if (rc == DM_EVERSION) {
        err_set_msg(rc, "%s: offset 0: WAL version is not %u", path,
                    (unsigned)WAL_VERSION);
        goto fail;
    }
    if (rc)
        goto read_fail;
    if (why) {
        uint64_t n = r.file_len < WAL_FILE_HEADER_LEN ? r.file_len
                                                      : WAL_FILE_HEADER_LEN;
        report(on_damage, arg, path, st, 0, n, why);
        rc = err_set_msg(DM_ECORRUPT, "%s: offset 0: bad WAL file header: %s",
                         path, why);
        goto fail;
    }
    if (is_empty) {
        st->tail_bytes = r.file_len;
        has_tail = r.file_len > 0;
        tail_off = 0;
        goto done;
    }

    pos = st->valid_end = WAL_FILE_HEADER_LEN;
    while (pos < r.file_len) {
        wal_rec rec;
        uint64_t next;
        bool found;

        if ((rc = check_at(&r, pos, &rec, &why)))
            goto read_fail;
        if (!why) {
            uint64_t rl = WAL_RECORD_HEADER_LEN + (uint64_t)rec.len;
            if (has_prev && rec.seq <= prev_seq) {
                report(on_damage, arg, path, st, pos, rl,
                       "sequence number goes backwards");
                pos += rl;
                continue;
            }
            st->records++;
            st->bytes += rl;
            st->valid_end = pos + rl;
            prev_seq = rec.seq;
            has_prev = true;
            /* on_record may be NULL for callers that only want the
             * statistics (a consistency check). */
            if (on_record)
                rc = on_record(arg, rec.seq, rec.type,
                               buf_slice_of(rec.payload, rec.len));
            if (rc)
                goto fail; /* the caller's code, passed through */
            pos += rl;
            continue;
        }
        if ((rc = find_next(&r, pos + 1, &next, &found)))
            goto read_fail;
        if (!found) {
            tail_off = pos;
            has_tail = true;
            st->tail_bytes = r.file_len - pos;
            break;
        }
        report(on_damage, arg, path, st, pos, next - pos, why);
        pos = next;
    }

done:
    if (truncate_tail && has_tail) {
        if ((rc = v->truncate(v, r.f, tail_off)) || (rc = v->sync(v, r.f))) {
            err_set_msg(rc, "%s: cannot cut torn WAL tail at offset %llu (%s)",
                        path, (unsigned long long)tail_off, dm_strerror(rc));
            goto fail;
        }
    }
    dm_free(r.buf);
    if ((rc = v->close(v, r.f)))
        err_set_msg(rc, "%s: close failed (%s)", path, dm_strerror(rc));
    return rc;

read_fail:
    if (rc != DM_ENOMEM)
        err_set_msg(rc, "%s: cannot read WAL (%s)", path, dm_strerror(rc));
    else
        err_set_msg(rc, "%s: out of memory reading WAL", path);
fail:
    dm_free(r.buf);
    v->close(v, r.f);
    return rc;
}
