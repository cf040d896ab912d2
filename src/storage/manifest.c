/*
 * manifest.c -- encoding, decoding and the atomic commit of the MANIFEST.
 *
 * Design.  The MANIFEST is a snapshot, not a log: every change to the live
 * file set rewrites the whole state (counters and the list of live
 * SSTables) and commits it with vfs_write_atomic (write MANIFEST.tmp, sync
 * it, rename it over MANIFEST, sync the directory).  The rename is the
 * commit point: a crash before it leaves the old MANIFEST in place (plus a
 * MANIFEST.tmp leftover that readers ignore and the next write truncates),
 * a crash after it leaves the new one.  There is therefore never a
 * partially written MANIFEST to repair, and any damage found at read time
 * is real corruption, never a torn write.  The state is small (one entry
 * per live SSTable), so rewriting it costs little next to the SSTable
 * write that caused the change.
 *
 * Format owned: docs/format.md "MANIFEST"; constants in manifest_format.h.
 * The file is a fixed 16-byte header, a varint body, and a fixed 16-byte
 * trailer whose masked CRC32C covers every byte before the CRC itself.
 *
 * Validation order in man_decode (each step assumes the previous ones):
 *   1. size >= header + trailer;
 *   2. header magic, trailer magic, body_len == size - 32 (the envelope,
 *      identical in every version);
 *   3. the CRC -- so that a flipped bit anywhere is DM_ECORRUPT and never
 *      mistaken for a newer version;
 *   4. version (DM_EVERSION) and reserved == 0;
 *   5. the body, field by field, within bounds; then the semantic rules
 *      (level < 7, keys of 8..64K+8 bytes, smallest <= largest, number <
 *      next_file, last_seq < 2^56, no file number twice, no trailing
 *      bytes).
 * Every rejection is DM_ECORRUPT (or DM_EVERSION) with err_set_msg text
 * "PATH: offset N: reason" ("offset N: reason" when no path is given);
 * `deltamemory check` parses the offset back out of that second form.
 *
 * man_write validates the state with the same decoder before committing
 * it, so the engine can never make its own database unreadable by writing
 * a MANIFEST that the next open would refuse.
 *
 * Locking: none; these functions touch only their arguments.  Callers
 * (kv.c) serialise MANIFEST writes themselves (man_mu).
 */
#include "storage/manifest.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/crc.h"
#include "base/err.h"
#include "storage/filename.h"
#include "storage/ikey.h"
#include "storage/kv.h"
#include "storage/manifest_format.h"

_Static_assert(MAN_MAX_LEVELS == KV_MAX_LEVELS,
               "MANIFEST level limit must match the engine's");
_Static_assert(MAN_MAX_KEY_LEN == KV_MAX_KEY_LEN + IKEY_TRAILER_LEN,
               "MANIFEST key limit must match the engine's");

void man_state_fini(man_state *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->n_files; i++) {
        buf_fini(&s->files[i].smallest);
        buf_fini(&s->files[i].largest);
    }
    dm_free(s->files);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------- encoding */

int man_encode(const man_state *s, buf *out)
{
    size_t start = out->len;
    int rc = DM_OK;
    uint8_t hdr[MAN_HEADER_LEN];
    enc_u64(hdr + MAN_OFF_MAGIC, MAN_MAGIC);
    enc_u32(hdr + MAN_OFF_VERSION, MAN_VERSION);
    enc_u32(hdr + MAN_OFF_RESERVED, 0);
    if ((rc = buf_append(out, hdr, sizeof hdr)) ||
        (rc = buf_put_varint(out, s->next_file)) ||
        (rc = buf_put_varint(out, s->last_seq)) ||
        (rc = buf_put_varint(out, s->log_number)) ||
        (rc = buf_put_varint(out, s->n_files)))
        goto fail;
    for (uint32_t i = 0; i < s->n_files; i++) {
        const man_file *f = &s->files[i];
        if ((rc = buf_put_varint(out, f->level)) ||
            (rc = buf_put_varint(out, f->number)) ||
            (rc = buf_put_varint(out, f->size)) ||
            (rc = buf_put_varint(out, f->n_entries)) ||
            (rc = buf_put_lenbytes(out, f->smallest.ptr, f->smallest.len)) ||
            (rc = buf_put_lenbytes(out, f->largest.ptr, f->largest.len)))
            goto fail;
    }
    size_t body_len = out->len - start - MAN_HEADER_LEN;
    if (body_len > UINT32_MAX) {
        rc = err_set_msg(DM_ETOOBIG, "MANIFEST body of %zu bytes exceeds 4 GiB",
                         body_len);
        goto fail;
    }
    if ((rc = buf_put_u32(out, (uint32_t)body_len)))
        goto fail;
    uint32_t crc = crc_mask(crc32c(out->ptr + start, out->len - start));
    if ((rc = buf_put_u32(out, crc)) || (rc = buf_put_u64(out, MAN_MAGIC)))
        goto fail;
    return DM_OK;
fail:
    out->len = start;
    return rc;
}

/* ------------------------------------------------------------- decoding */

/* Sets the calling thread's message to "[path: ]offset N: reason" and
 * returns rc. */
__attribute__((format(printf, 4, 5)))
static int bad(int rc, const char *path, uint64_t off, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return err_set_msg(rc, "%s%soffset %llu: %s", path ? path : "",
                       path ? ": " : "", (unsigned long long)off, why);
}

typedef struct entry_pos {
    uint64_t number;
    uint64_t off; /* where the entry starts in the file */
} entry_pos;

static int cmp_pos(const void *a, const void *b)
{
    const entry_pos *x = a, *y = b;
    if (x->number != y->number)
        return x->number < y->number ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Reads one varint field; on failure leaves a message naming it. */
static int get_field(buf_slice *cur, const uint8_t *base, const char *path,
                     const char *what, uint64_t *v)
{
    uint64_t off = (uint64_t)(cur->ptr - base);
    if (!get_varint(cur, v))
        return bad(DM_ECORRUPT, path, off,
                   "%s: varint runs past the end of the body or overflows",
                   what);
    return DM_OK;
}

/* Reads one key (varint length + bytes) and checks its length. */
static int get_key(buf_slice *cur, const uint8_t *base, const char *path,
                   const char *what, buf_slice *k)
{
    uint64_t off = (uint64_t)(cur->ptr - base);
    buf_slice probe = *cur;
    uint64_t n;
    if (!get_varint(&probe, &n))
        return bad(DM_ECORRUPT, path, off,
                   "%s key: length varint runs past the end of the body", what);
    if (n > probe.len)
        return bad(DM_ECORRUPT, path, off,
                   "%s key: length %llu runs past the end of the body "
                   "(%zu bytes left)", what, (unsigned long long)n, probe.len);
    if (n < MAN_MIN_KEY_LEN || n > MAN_MAX_KEY_LEN)
        return bad(DM_ECORRUPT, path, off,
                   "%s key: length %llu outside %u..%u", what,
                   (unsigned long long)n, MAN_MIN_KEY_LEN, MAN_MAX_KEY_LEN);
    get_lenbytes(cur, k);
    return DM_OK;
}

/*
 * The decoder proper.  With out == NULL it only validates (no key copies);
 * man_write uses that to refuse an invalid state.
 */
static int decode(buf_slice data, const char *path, man_state *out)
{
    const uint8_t *p = data.ptr;
    size_t len = data.len;
    entry_pos *pos = NULL;
    man_state s = { 0 };
    int rc = DM_OK;

    /* 1-3: the envelope and the checksum. */
    if (len < MAN_HEADER_LEN + MAN_TRAILER_LEN) {
        rc = bad(DM_ECORRUPT, path, len,
                 "file too short: %zu bytes, a MANIFEST has at least %d", len,
                 MAN_HEADER_LEN + MAN_TRAILER_LEN);
        goto fail;
    }
    uint64_t magic = dec_u64(p + MAN_OFF_MAGIC);
    if (magic != MAN_MAGIC) {
        rc = bad(DM_ECORRUPT, path, MAN_OFF_MAGIC,
                 "bad magic 0x%016" PRIx64 " (expected 0x%016" PRIx64 ")",
                 magic, MAN_MAGIC);
        goto fail;
    }
    uint64_t tmagic = dec_u64(p + len - MAN_TRAILER_OFF_MAGIC);
    if (tmagic != MAN_MAGIC) {
        rc = bad(DM_ECORRUPT, path, len - MAN_TRAILER_OFF_MAGIC,
                 "bad trailer magic 0x%016" PRIx64 " (file truncated or "
                 "damaged)", tmagic);
        goto fail;
    }
    uint32_t body_len = dec_u32(p + len - MAN_TRAILER_OFF_BODY_LEN);
    if ((uint64_t)body_len != len - MAN_HEADER_LEN - MAN_TRAILER_LEN) {
        rc = bad(DM_ECORRUPT, path, len - MAN_TRAILER_OFF_BODY_LEN,
                 "body length %" PRIu32 " does not match the file size %zu "
                 "(expected %zu)", body_len, len,
                 len - MAN_HEADER_LEN - MAN_TRAILER_LEN);
        goto fail;
    }
    uint32_t stored = dec_u32(p + len - MAN_TRAILER_OFF_CRC);
    uint32_t computed = crc_mask(crc32c(p, len - MAN_TRAILER_OFF_CRC));
    if (stored != computed) {
        rc = bad(DM_ECORRUPT, path, len - MAN_TRAILER_OFF_CRC,
                 "checksum mismatch: stored 0x%08" PRIx32 ", computed 0x%08"
                 PRIx32, stored, computed);
        goto fail;
    }

    /* 4: version and reserved, now known to be what the writer wrote. */
    uint32_t version = dec_u32(p + MAN_OFF_VERSION);
    if (version != MAN_VERSION) {
        rc = bad(DM_EVERSION, path, MAN_OFF_VERSION,
                 "unsupported MANIFEST version %" PRIu32 " (this build reads "
                 "version %u)", version, MAN_VERSION);
        goto fail;
    }
    uint32_t reserved = dec_u32(p + MAN_OFF_RESERVED);
    if (reserved != 0) {
        rc = bad(DM_ECORRUPT, path, MAN_OFF_RESERVED,
                 "reserved field is 0x%08" PRIx32 ", must be 0", reserved);
        goto fail;
    }

    /* 5: the body. */
    buf_slice cur = buf_slice_of(p + MAN_HEADER_LEN, body_len);
    uint64_t n_files = 0;
    if ((rc = get_field(&cur, p, path, "next_file", &s.next_file)))
        goto fail;
    uint64_t off = (uint64_t)(cur.ptr - p);
    if ((rc = get_field(&cur, p, path, "last_seq", &s.last_seq)))
        goto fail;
    if (s.last_seq > IKEY_MAX_SEQ) {
        rc = bad(DM_ECORRUPT, path, off,
                 "last_seq %" PRIu64 " exceeds the largest sequence number "
                 "2^56-1", s.last_seq);
        goto fail;
    }
    if ((rc = get_field(&cur, p, path, "log_number", &s.log_number)))
        goto fail;
    off = (uint64_t)(cur.ptr - p);
    if ((rc = get_field(&cur, p, path, "n_files", &n_files)))
        goto fail;
    if (n_files > cur.len / MAN_MIN_ENTRY_LEN) {
        rc = bad(DM_ECORRUPT, path, off,
                 "n_files %" PRIu64 " cannot fit in the %zu bytes left "
                 "(an entry takes at least %d)", n_files, cur.len,
                 MAN_MIN_ENTRY_LEN);
        goto fail;
    }
    if (n_files) {
        pos = dm_malloc((size_t)n_files * sizeof *pos);
        if (!pos) {
            rc = DM_ENOMEM;
            goto fail;
        }
        if (out) {
            s.files = dm_calloc((size_t)n_files, sizeof *s.files);
            if (!s.files) {
                rc = DM_ENOMEM;
                goto fail;
            }
        }
    }
    for (uint64_t i = 0; i < n_files; i++) {
        uint64_t entry_off = (uint64_t)(cur.ptr - p);
        uint64_t level, number, size, n_entries;
        buf_slice smallest, largest;
        if ((rc = get_field(&cur, p, path, "file level", &level)))
            goto fail;
        if (level >= MAN_MAX_LEVELS) {
            rc = bad(DM_ECORRUPT, path, entry_off,
                     "file entry %" PRIu64 ": level %" PRIu64 " >= %d", i,
                     level, MAN_MAX_LEVELS);
            goto fail;
        }
        uint64_t num_off = (uint64_t)(cur.ptr - p);
        if ((rc = get_field(&cur, p, path, "file number", &number)))
            goto fail;
        if (number >= s.next_file) {
            rc = bad(DM_ECORRUPT, path, num_off,
                     "file entry %" PRIu64 ": file number %" PRIu64
                     " is not below next_file %" PRIu64, i, number,
                     s.next_file);
            goto fail;
        }
        if ((rc = get_field(&cur, p, path, "file size", &size)) ||
            (rc = get_field(&cur, p, path, "file n_entries", &n_entries)) ||
            (rc = get_key(&cur, p, path, "smallest", &smallest)) ||
            (rc = get_key(&cur, p, path, "largest", &largest)))
            goto fail;
        if (ikey_cmp(smallest, largest) > 0) {
            rc = bad(DM_ECORRUPT, path, entry_off,
                     "file entry %" PRIu64 " (%06" PRIu64 ".sst): smallest "
                     "key sorts after largest key", i, number);
            goto fail;
        }
        pos[i].number = number;
        pos[i].off = entry_off;
        if (out) {
            man_file *f = &s.files[i];
            /* Counted before the copies so that man_state_fini frees a
             * half-filled entry on failure. */
            s.n_files = (uint32_t)i + 1;
            f->level = (uint32_t)level;
            f->number = number;
            f->size = size;
            f->n_entries = n_entries;
            if ((rc = buf_append(&f->smallest, smallest.ptr, smallest.len)) ||
                (rc = buf_append(&f->largest, largest.ptr, largest.len)))
                goto fail;
        }
    }
    if (cur.len) {
        rc = bad(DM_ECORRUPT, path, (uint64_t)(cur.ptr - p),
                 "%zu unexpected bytes after the last file entry", cur.len);
        goto fail;
    }
    if (n_files > 1) {
        qsort(pos, (size_t)n_files, sizeof *pos, cmp_pos);
        for (uint64_t i = 1; i < n_files; i++) {
            if (pos[i].number == pos[i - 1].number) {
                rc = bad(DM_ECORRUPT, path, pos[i].off,
                         "file number %" PRIu64 " listed twice (first entry "
                         "at offset %" PRIu64 ")", pos[i].number,
                         pos[i - 1].off);
                goto fail;
            }
        }
    }
    dm_free(pos);
    if (out)
        *out = s;
    return DM_OK;
fail:
    dm_free(pos);
    man_state_fini(&s);
    return rc;
}

int man_decode(buf_slice data, const char *path, man_state *s)
{
    memset(s, 0, sizeof *s);
    return decode(data, path, s);
}

/* ---------------------------------------------------------------- files */

int man_write(vfs *v, const char *dir, const man_state *s)
{
    buf img = { 0 };
    int rc;
    if (!v)
        v = vfs_posix();
    if ((rc = man_encode(s, &img)))
        goto fail;
    /* Refuse to commit what the next open would reject. */
    rc = decode(buf_slice_of(img.ptr, img.len), NULL, NULL);
    if (rc == DM_ECORRUPT || rc == DM_EVERSION) {
        char why[256];
        snprintf(why, sizeof why, "%s", err_last_msg());
        rc = err_set_msg(DM_EINVAL, "%s/%s: refusing to write an invalid "
                         "state: %s", dir, FN_MANIFEST, why);
        goto fail;
    }
    if (rc)
        goto fail;
    if ((rc = vfs_write_atomic(v, dir, FN_MANIFEST, img.ptr, img.len))) {
        err_set_msg(rc, "%s/%s: commit failed in %s: %s", dir, FN_MANIFEST,
                    v->last_op ? v->last_op : "?", dm_errname(rc));
        goto fail;
    }
    buf_fini(&img);
    return DM_OK;
fail:
    buf_fini(&img);
    return rc;
}

int man_read(vfs *v, const char *dir, man_state *s)
{
    char path[FN_PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;
    memset(s, 0, sizeof *s);
    if (!v)
        v = vfs_posix();
    if (snprintf(path, sizeof path, "%s/%s", dir, FN_MANIFEST) >=
        (int)sizeof path) {
        rc = err_set_msg(DM_EINVAL, "%s: directory path too long", dir);
        goto fail;
    }
    rc = vfs_read_all(v, path, &data, &len);
    if (rc == DM_ENOTFOUND) {
        err_set_msg(rc, "%s: no MANIFEST", dir);
        goto fail;
    }
    if (rc) {
        err_set_msg(rc, "%s: read failed in %s: %s", path,
                    v->last_op ? v->last_op : "?", dm_errname(rc));
        goto fail;
    }
    if ((rc = man_decode(buf_slice_of(data, len), path, s)))
        goto fail;
    dm_free(data);
    return DM_OK;
fail:
    dm_free(data);
    return rc;
}
