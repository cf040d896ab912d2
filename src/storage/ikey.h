/*
 * ikey.h -- internal keys: a user key followed by an 8-byte trailer.
 *
 *   ikey    := user_key  trailer
 *   trailer := u64 little-endian, (seq << 8) | type     (seq < 2^56)
 *
 * Order (ikey_cmp): user keys bytewise ascending; for equal user keys the
 * larger trailer (newer sequence number) first.  So a seek to
 * (user_key, snapshot_seq, IKEY_SEEK_TYPE) lands on the newest version
 * visible in that snapshot.  Described in docs/format.md ("Internal keys").
 */
#ifndef DM_STORAGE_IKEY_H
#define DM_STORAGE_IKEY_H

#include <stdint.h>

#include "base/buf.h"

enum ikey_type {
    IKEY_DEL = 0, /* tombstone: the user key is deleted from seq on */
    IKEY_PUT = 1, /* value */
};
#define IKEY_SEEK_TYPE IKEY_PUT /* highest type: sorts first among equal seqs */
#define IKEY_TRAILER_LEN 8
#define IKEY_MAX_SEQ ((UINT64_C(1) << 56) - 1)

static inline uint64_t ikey_pack(uint64_t seq, int type)
{
    return (seq << 8) | (uint64_t)type;
}

/* REQUIRES for the accessors: k.len >= IKEY_TRAILER_LEN (callers validate
 * keys read from disk before using these). */
static inline buf_slice ikey_user(buf_slice k)
{
    return buf_slice_of(k.ptr, k.len - IKEY_TRAILER_LEN);
}
static inline uint64_t ikey_trailer(buf_slice k)
{
    return dec_u64(k.ptr + k.len - IKEY_TRAILER_LEN);
}
static inline uint64_t ikey_seq(buf_slice k) { return ikey_trailer(k) >> 8; }
static inline int ikey_type(buf_slice k) { return (int)(ikey_trailer(k) & 0xff); }

static inline int ikey_cmp(buf_slice a, buf_slice b)
{
    int c = buf_slice_cmp(ikey_user(a), ikey_user(b));
    if (c)
        return c;
    uint64_t ta = ikey_trailer(a), tb = ikey_trailer(b);
    return ta > tb ? -1 : ta < tb ? 1 : 0;
}

/* ikey_encode -- writes user_key ‖ trailer at dst (needs klen + 8 bytes). */
static inline void ikey_encode(uint8_t *dst, buf_slice user, uint64_t seq,
                               int type)
{
    if (user.len)
        memcpy(dst, user.ptr, user.len);
    enc_u64(dst + user.len, ikey_pack(seq, type));
}

/* ikey_build -- sets b to the internal key (DM_OK or DM_ENOMEM). */
static inline int ikey_build(buf *b, buf_slice user, uint64_t seq, int type)
{
    buf_clear(b);
    int rc = buf_reserve(b, user.len + IKEY_TRAILER_LEN);
    if (rc)
        return rc;
    ikey_encode(b->ptr, user, seq, type);
    b->len = user.len + IKEY_TRAILER_LEN;
    return 0;
}

#endif
