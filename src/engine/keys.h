/*
 * keys.h -- the engine's keys in the storage engine's single keyspace.
 *
 * Every key starts with a one-byte kind.  Per-user kinds continue with the
 * user prefix `tu` = u8 tenant_len, tenant, u8 user_len, user; the length
 * bytes make the prefix free (no user's prefix is a prefix of another's),
 * so one user's records of a kind are one contiguous key range.  Times in
 * keys are "ordered int64": the value with its sign bit flipped, stored
 * big-endian, so byte order is time order.  The layouts are specified in
 * docs/format.md, "Memory engine records".
 *
 *   'D' name                      database metadata (model, format)
 *   'U' tu                        the user record
 *   'M' tu ts:8 id:16             a memory (ts = event time)
 *   'I' id:16                     id index: -> tu ts:8
 *   'L' tu useq:8                 index log entry after a checkpoint
 *   'H' tu                        index checkpoint head
 *   'C' tu gen:8 part:4           index checkpoint chunk
 *   'F' tu id:16                  a fact (src/cognitive/facts.c)
 *   'Y' tu target:16 cid:16       a change of a fact: its history
 *   'E' tu from:8 id:16           an event, by when it happened
 *   'P' tu id:16                  a turn whose extraction is still to run
 */
#ifndef DM_ENGINE_KEYS_H
#define DM_ENGINE_KEYS_H

#include <stdint.h>
#include <string.h>

#include "base/buf.h"

enum {
    KEY_META = 'D',
    KEY_USER = 'U',
    KEY_MEMORY = 'M',
    KEY_ID = 'I',
    KEY_LOG = 'L',
    KEY_CKPT_HEAD = 'H',
    KEY_CKPT_CHUNK = 'C',
    KEY_FACT = 'F',
    KEY_CHANGE = 'Y',
    KEY_EVENT = 'E',
    KEY_PENDING = 'P',
};

/* Longest user prefix: two length bytes and two 255-byte names. */
#define KEY_TU_MAX (2 + 255 + 255)
#define KEY_MAX (1 + KEY_TU_MAX + 8 + 16)

/* A user prefix, built once per call. */
typedef struct key_tu {
    uint8_t b[KEY_TU_MAX];
    uint32_t len;
} key_tu;

static inline void key_tu_make(key_tu *tu, const char *tenant, size_t tlen,
                               const char *user, size_t ulen)
{
    tu->b[0] = (uint8_t)tlen;
    memcpy(tu->b + 1, tenant, tlen);
    tu->b[1 + tlen] = (uint8_t)ulen;
    memcpy(tu->b + 2 + tlen, user, ulen);
    tu->len = (uint32_t)(2 + tlen + ulen);
}

/* Split a stored prefix; 0 if malformed.  The slices borrow from p. */
static inline int key_tu_split(const uint8_t *p, size_t n, buf_slice *tenant,
                               buf_slice *user, size_t *tu_len)
{
    if (n < 2 || (size_t)p[0] + 2 > n)
        return 0;
    size_t tl = p[0];
    size_t ul = p[1 + tl];
    if (2 + tl + ul > n)
        return 0;
    *tenant = buf_slice_of(p + 1, tl);
    *user = buf_slice_of(p + 2 + tl, ul);
    *tu_len = 2 + tl + ul;
    return 1;
}

static inline uint64_t key_ts_encode(int64_t ts) { return (uint64_t)ts ^ (UINT64_C(1) << 63); }
static inline int64_t key_ts_decode(uint64_t v) { return (int64_t)(v ^ (UINT64_C(1) << 63)); }

/* kind tu [tail] into out (KEY_MAX bytes); returns the length. */
static inline size_t key_user_kind(uint8_t *out, int kind, const key_tu *tu)
{
    out[0] = (uint8_t)kind;
    memcpy(out + 1, tu->b, tu->len);
    return 1 + tu->len;
}

static inline size_t key_memory(uint8_t *out, const key_tu *tu, int64_t ts,
                                const uint8_t id[16])
{
    size_t n = key_user_kind(out, KEY_MEMORY, tu);
    enc_be64(out + n, key_ts_encode(ts));
    memcpy(out + n + 8, id, 16);
    return n + 24;
}

static inline size_t key_id(uint8_t *out, const uint8_t id[16])
{
    out[0] = KEY_ID;
    memcpy(out + 1, id, 16);
    return 17;
}

static inline size_t key_log(uint8_t *out, const key_tu *tu, uint64_t useq)
{
    size_t n = key_user_kind(out, KEY_LOG, tu);
    enc_be64(out + n, useq);
    return n + 8;
}

static inline size_t key_fact(uint8_t *out, const key_tu *tu, const uint8_t id[16])
{
    size_t n = key_user_kind(out, KEY_FACT, tu);
    memcpy(out + n, id, 16);
    return n + 16;
}

static inline size_t key_change(uint8_t *out, const key_tu *tu, const uint8_t target[16],
                                const uint8_t cid[16])
{
    size_t n = key_user_kind(out, KEY_CHANGE, tu);
    memcpy(out + n, target, 16);
    memcpy(out + n + 16, cid, 16);
    return n + 32;
}

static inline size_t key_pending(uint8_t *out, const key_tu *tu, const uint8_t id[16])
{
    size_t n = key_user_kind(out, KEY_PENDING, tu);
    memcpy(out + n, id, 16);
    return n + 16;
}
static inline size_t key_event(uint8_t *out, const key_tu *tu, int64_t from_us,
                               const uint8_t id[16])
{
    size_t n = key_user_kind(out, KEY_EVENT, tu);
    enc_be64(out + n, key_ts_encode(from_us));
    memcpy(out + n + 8, id, 16);
    return n + 24;
}

static inline size_t key_chunk(uint8_t *out, const key_tu *tu, uint64_t gen,
                               uint32_t part)
{
    size_t n = key_user_kind(out, KEY_CKPT_CHUNK, tu);
    enc_be64(out + n, gen);
    out[n + 8] = (uint8_t)(part >> 24);
    out[n + 9] = (uint8_t)(part >> 16);
    out[n + 10] = (uint8_t)(part >> 8);
    out[n + 11] = (uint8_t)part;
    return n + 12;
}

#endif
