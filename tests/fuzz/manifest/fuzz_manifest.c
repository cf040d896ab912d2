/*
 * fuzz_manifest.c -- fuzz target for the MANIFEST decoder
 * (man_decode, src/storage/manifest.c).
 *
 * The input is a whole MANIFEST image.  man_decode must never crash and
 * must either reject it (DM_ECORRUPT / DM_EVERSION with a zeroed state and
 * a message "[path: ]offset N: ...") or return a state that obeys every
 * rule the decoder promises (manifest.c, "Validation order").  A decoded
 * state must survive the round trip: decode(encode(x)) == x, and encode is
 * a fixed point (encoding the re-decoded state gives the same bytes).
 * Because varints are minimal when we write them and the decoder allows no
 * trailing bytes, the re-encoding is never longer than the input, and is
 * the input exactly when it is as long.
 *
 * Each input runs twice: as given, and with the trailer's body_len and
 * CRC recomputed, so that mutations reach the body parser instead of
 * dying on the checksum.  No files are touched.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/crc.h"
#include "base/err.h"
#include "fuzz_util.h"
#include "storage/ikey.h"
#include "storage/manifest.h"
#include "storage/manifest_format.h"

#define FAKE_PATH "fuzzdb/MANIFEST"

static bool state_is_zero(const man_state *s)
{
    return s->next_file == 0 && s->last_seq == 0 && s->log_number == 0 &&
           s->n_files == 0 && s->files == NULL;
}

static bool buf_eq(const buf *a, const buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->ptr, b->ptr, a->len) == 0);
}

static bool state_eq(const man_state *a, const man_state *b)
{
    if (a->next_file != b->next_file || a->last_seq != b->last_seq ||
        a->log_number != b->log_number || a->n_files != b->n_files)
        return false;
    for (uint32_t i = 0; i < a->n_files; i++) {
        const man_file *x = &a->files[i], *y = &b->files[i];
        if (x->level != y->level || x->number != y->number ||
            x->size != y->size || x->n_entries != y->n_entries ||
            !buf_eq(&x->smallest, &y->smallest) ||
            !buf_eq(&x->largest, &y->largest))
            return false;
    }
    return true;
}

/* The rules a successfully decoded state obeys (manifest.c, step 5). */
static void check_rules(const man_state *s)
{
    FUZZ_CHECK(s->last_seq <= IKEY_MAX_SEQ);
    FUZZ_CHECK(s->n_files == 0 || s->files != NULL);
    for (uint32_t i = 0; i < s->n_files; i++) {
        const man_file *f = &s->files[i];
        FUZZ_CHECK(f->level < MAN_MAX_LEVELS);
        FUZZ_CHECK(f->number < s->next_file);
        FUZZ_CHECK(f->smallest.len >= MAN_MIN_KEY_LEN &&
                   f->smallest.len <= MAN_MAX_KEY_LEN);
        FUZZ_CHECK(f->largest.len >= MAN_MIN_KEY_LEN &&
                   f->largest.len <= MAN_MAX_KEY_LEN);
        buf_slice lo = buf_slice_of(f->smallest.ptr, f->smallest.len);
        buf_slice hi = buf_slice_of(f->largest.ptr, f->largest.len);
        FUZZ_CHECK(ikey_cmp(lo, hi) <= 0);
        /* Quadratic, but n_files is bounded by the input size over the
         * smallest entry (18 bytes), so tiny for fuzz inputs. */
        for (uint32_t j = 0; j < i; j++)
            FUZZ_CHECKF(s->files[j].number != f->number,
                        "file number %llu listed twice",
                        (unsigned long long)f->number);
    }
}

/* "[path: ]offset N: reason" */
static void check_message(const char *path)
{
    const char *m = err_last_msg();
    if (path) {
        size_t n = strlen(path);
        FUZZ_CHECKF(strncmp(m, path, n) == 0 && strncmp(m + n, ": offset ", 9) == 0,
                    "message \"%s\"", m);
    } else {
        FUZZ_CHECKF(strncmp(m, "offset ", 7) == 0, "message \"%s\"", m);
    }
}

static void run(const uint8_t *data, size_t size)
{
    man_state s, t;
    buf enc, enc2;
    buf_init(&enc);
    buf_init(&enc2);

    /* Poison the out-parameter: man_decode must zero it first. */
    memset(&s, 0xa5, sizeof s);
    int rc = man_decode(buf_slice_of(data, size), FAKE_PATH, &s);
    FUZZ_CHECKF(rc == DM_OK || rc == DM_ECORRUPT || rc == DM_EVERSION ||
                rc == DM_ENOMEM, "man_decode returned %d", rc);
    if (rc != DM_ENOMEM) {
        /* Same verdict without a path, and the message drops the path. */
        memset(&t, 0x5a, sizeof t);
        int rc2 = man_decode(buf_slice_of(data, size), NULL, &t);
        FUZZ_CHECK(rc2 == rc);
        if (rc2 != DM_OK) {
            check_message(NULL);
            FUZZ_CHECK(state_is_zero(&t));
        } else {
            FUZZ_CHECK(state_eq(&s, &t));
        }
        man_state_fini(&t);
    }
    if (rc != DM_OK) {
        FUZZ_CHECK(state_is_zero(&s));
        if (rc != DM_ENOMEM) {
            /* Re-decode to get the message with the path back. */
            man_state u;
            FUZZ_CHECK(man_decode(buf_slice_of(data, size), FAKE_PATH, &u) == rc);
            check_message(FAKE_PATH);
            man_state_fini(&u);
        }
        goto out;
    }

    check_rules(&s);
    FUZZ_CHECK(man_encode(&s, &enc) == DM_OK);
    FUZZ_CHECKF(enc.len <= size, "re-encoding is %zu bytes, input %zu",
                enc.len, size);
    if (enc.len == size)
        FUZZ_CHECK(memcmp(enc.ptr, data, size) == 0);

    FUZZ_CHECK(man_decode(buf_slice_of(enc.ptr, enc.len), FAKE_PATH, &t) == DM_OK);
    FUZZ_CHECK(state_eq(&s, &t));
    FUZZ_CHECK(man_encode(&t, &enc2) == DM_OK);
    FUZZ_CHECK(buf_eq(&enc, &enc2));
    man_state_fini(&t);

    /* man_encode appends: a prefix already in the buffer is kept. */
    buf_clear(&enc2);
    FUZZ_CHECK(buf_put_u8(&enc2, 0x77) == DM_OK);
    FUZZ_CHECK(man_encode(&s, &enc2) == DM_OK);
    FUZZ_CHECK(enc2.len == enc.len + 1 && enc2.ptr[0] == 0x77 &&
               memcmp(enc2.ptr + 1, enc.ptr, enc.len) == 0);
out:
    man_state_fini(&s);
    FUZZ_CHECK(state_is_zero(&s));
    buf_fini(&enc);
    buf_fini(&enc2);
}

/* fix_envelope -- sets body_len and the CRC in the trailer to what they
 * must be for this size and these bytes; magic and version stay the
 * fuzzer's. */
static void fix_envelope(uint8_t *p, size_t size)
{
    if (size < MAN_HEADER_LEN + MAN_TRAILER_LEN ||
        size - MAN_HEADER_LEN - MAN_TRAILER_LEN > UINT32_MAX)
        return;
    enc_u32(p + size - MAN_TRAILER_OFF_BODY_LEN,
            (uint32_t)(size - MAN_HEADER_LEN - MAN_TRAILER_LEN));
    enc_u32(p + size - MAN_TRAILER_OFF_CRC,
            crc_mask(crc32c(p, size - MAN_TRAILER_OFF_CRC)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_drive(data, size, run, fix_envelope);
}
