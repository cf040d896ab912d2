/*
 * record.c -- encoding and validation of the engine's record values.
 *
 * All integers are little-endian; strings are varint-length-prefixed
 * (buf_put_lenbytes); floats are IEEE-754 binary32 stored as their bit
 * patterns, except an embedding, which may be binary16 (flag bit 2).  Every value starts with a version byte so that a later format
 * can be told apart; an unknown version is DM_EVERSION.  Decoding checks
 * each length against the remaining bytes and fails with DM_ECORRUPT and
 * the offset; it never reads past the value.  The layouts are specified in
 * docs/format.md, "Memory engine records".
 */
#include "engine/record.h"

#include <string.h>

#include "base/err.h"
#include "engine/record_format.h"
#include "index/distance.h"


static int corrupt(const char *kind, buf_slice start, buf_slice at)
{
    return err_set_msg(DM_ECORRUPT, "%s record damaged at value offset %zu",
                       kind, (size_t)(at.ptr - start.ptr));
}

int rec_memory_encode(const rec_memory *m, const float *embedding, buf *out)
{
    uint8_t flags = (m->agent_id.ptr ? REC_MEMORY_HAS_AGENT : 0) |
                    (m->session_id.ptr ? REC_MEMORY_HAS_SESSION : 0) |
                    (m->emb_f16 ? REC_MEMORY_EMB_F16 : 0);
    int rc = 0;
    rc |= buf_put_u8(out, REC_MEMORY_VERSION);
    rc |= buf_put_u8(out, m->kind);
    rc |= buf_put_u8(out, m->state);
    rc |= buf_put_u8(out, flags);
    rc |= buf_put_u64(out, (uint64_t)m->record_time_us);
    rc |= buf_put_u32(out, f32_bits(m->salience));
    rc |= buf_put_u32(out, f32_bits(m->decay_rate));
    rc |= buf_put_u32(out, m->access_count);
    rc |= buf_put_u64(out, (uint64_t)m->last_access_us);
    rc |= buf_put_lenbytes(out, m->role.ptr, m->role.len);
    if (m->agent_id.ptr)
        rc |= buf_put_lenbytes(out, m->agent_id.ptr, m->agent_id.len);
    if (m->session_id.ptr)
        rc |= buf_put_lenbytes(out, m->session_id.ptr, m->session_id.len);
    rc |= buf_put_lenbytes(out, m->text.ptr, m->text.len);
    rc |= buf_put_lenbytes(out, m->metadata.ptr, m->metadata.len);
    rc |= buf_put_varint(out, m->dim);
    if (m->emb_f16) {
        /* Converted a block at a time through a small stack buffer. */
        uint16_t h[256];
        for (uint32_t at = 0; at < m->dim && rc == 0; at += 256) {
            uint32_t n = m->dim - at < 256 ? m->dim - at : 256;
            uint8_t le[512];
            dist_f16_kernels_active()->encode(h, embedding + at, n);
            for (uint32_t i = 0; i < n; i++)
                enc_u16(le + 2 * i, h[i]);
            rc |= buf_append(out, le, 2 * (size_t)n);
        }
    } else {
        for (uint32_t i = 0; i < m->dim && rc == 0; i++)
            rc |= buf_put_u32(out, f32_bits(embedding[i]));
    }
    return rc ? err_set_msg(DM_ENOMEM, "out of memory encoding a memory") : DM_OK;
}

int rec_memory_decode(buf_slice v, rec_memory *m)
{
    buf_slice s = v;
    uint8_t ver = 0, flags = 0;
    uint32_t u32;
    uint64_t u64;
    memset(m, 0, sizeof *m);
    if (!get_u8(&s, &ver))
        return corrupt("memory", v, s);
    if (ver != REC_MEMORY_VERSION)
        return err_set_msg(DM_EVERSION, "memory record version %u is not supported", ver);
    if (!get_u8(&s, &m->kind) || !get_u8(&s, &m->state) || !get_u8(&s, &flags))
        return corrupt("memory", v, s);
    if (m->kind > 2 || m->state > 1 || (flags & ~7u))
        return corrupt("memory", v, s);
    m->emb_f16 = (flags & REC_MEMORY_EMB_F16) != 0;
    if (!get_u64(&s, &u64))
        return corrupt("memory", v, s);
    m->record_time_us = (int64_t)u64;
    if (!get_u32(&s, &u32))
        return corrupt("memory", v, s);
    m->salience = f32_of_bits(u32);
    if (!get_u32(&s, &u32))
        return corrupt("memory", v, s);
    m->decay_rate = f32_of_bits(u32);
    if (!get_u32(&s, &m->access_count) || !get_u64(&s, &u64))
        return corrupt("memory", v, s);
    m->last_access_us = (int64_t)u64;
    if (!get_lenbytes(&s, &m->role))
        return corrupt("memory", v, s);
    if ((flags & REC_MEMORY_HAS_AGENT) && !get_lenbytes(&s, &m->agent_id))
        return corrupt("memory", v, s);
    if ((flags & REC_MEMORY_HAS_SESSION) && !get_lenbytes(&s, &m->session_id))
        return corrupt("memory", v, s);
    if (!get_lenbytes(&s, &m->text) || !get_lenbytes(&s, &m->metadata))
        return corrupt("memory", v, s);
    if (!get_varint(&s, &u64) || u64 > 65536 || s.len != u64 * (m->emb_f16 ? 2 : 4))
        return corrupt("memory", v, s);
    m->dim = (uint32_t)u64;
    m->embedding = (const uint8_t *)s.ptr;
    /* A present-but-empty name decodes to a non-NULL empty slice. */
    if ((flags & REC_MEMORY_HAS_AGENT) && !m->agent_id.ptr)
        m->agent_id.ptr = v.ptr;
    if ((flags & REC_MEMORY_HAS_SESSION) && !m->session_id.ptr)
        m->session_id.ptr = v.ptr;
    return DM_OK;
}

void rec_memory_embedding(const rec_memory *m, float *out)
{
    if (m->emb_f16) {
        for (uint32_t i = 0; i < m->dim; i++)
            out[i] = dist_f16_to_f32(dec_u16(m->embedding + 2 * (size_t)i));
        return;
    }
    for (uint32_t i = 0; i < m->dim; i++)
        out[i] = f32_of_bits(dec_u32(m->embedding + 4 * (size_t)i));
}

int rec_user_encode(const rec_user *u, buf *out)
{
    int rc = buf_put_u8(out, REC_USER_VERSION) | buf_put_u8(out, u->state) |
             buf_put_u64(out, (uint64_t)u->created_us) |
             buf_put_varint(out, u->n_memories) | buf_put_varint(out, u->next_useq);
    return rc ? err_set_msg(DM_ENOMEM, "out of memory encoding a user") : DM_OK;
}

int rec_user_decode(buf_slice v, rec_user *u)
{
    buf_slice s = v;
    uint8_t ver = 0;
    uint64_t t = 0;
    memset(u, 0, sizeof *u);
    if (!get_u8(&s, &ver))
        return corrupt("user", v, s);
    if (ver != REC_USER_VERSION)
        return err_set_msg(DM_EVERSION, "user record version %u is not supported", ver);
    if (!get_u8(&s, &u->state) || u->state > USER_ERASING || !get_u64(&s, &t) ||
        !get_varint(&s, &u->n_memories) || !get_varint(&s, &u->next_useq) || s.len)
        return corrupt("user", v, s);
    u->created_us = (int64_t)t;
    return DM_OK;
}

int rec_log_encode(const rec_log *l, buf *out)
{
    int rc = buf_put_u8(out, REC_LOG_VERSION) | buf_put_u8(out, l->op) |
             buf_append(out, l->id, 16) | buf_put_u64(out, (uint64_t)l->ts) |
             buf_put_lenbytes(out, l->old_text.ptr, l->old_text.len);
    return rc ? err_set_msg(DM_ENOMEM, "out of memory encoding a log entry") : DM_OK;
}

int rec_log_decode(buf_slice v, rec_log *l)
{
    buf_slice s = v;
    uint8_t ver = 0;
    uint64_t t = 0;
    memset(l, 0, sizeof *l);
    if (!get_u8(&s, &ver))
        return corrupt("index log", v, s);
    if (ver != REC_LOG_VERSION)
        return err_set_msg(DM_EVERSION, "index log version %u is not supported", ver);
    if (!get_u8(&s, &l->op) || l->op < LOG_ADD || l->op > LOG_DELETE || s.len < 16)
        return corrupt("index log", v, s);
    memcpy(l->id, s.ptr, 16);
    s.ptr += 16;
    s.len -= 16;
    if (!get_u64(&s, &t) || !get_lenbytes(&s, &l->old_text) || s.len)
        return corrupt("index log", v, s);
    l->ts = (int64_t)t;
    return DM_OK;
}

int rec_head_encode(const rec_head *h, buf *out)
{
    int rc = buf_put_u8(out, REC_HEAD_VERSION) | buf_put_u64(out, h->gen) |
             buf_put_u64(out, h->covered_useq) | buf_put_u32(out, h->n_parts) |
             buf_put_u64(out, h->total_len) | buf_put_u32(out, h->crc);
    return rc ? err_set_msg(DM_ENOMEM, "out of memory encoding a checkpoint head") : DM_OK;
}

int rec_head_decode(buf_slice v, rec_head *h)
{
    buf_slice s = v;
    uint8_t ver = 0;
    memset(h, 0, sizeof *h);
    if (!get_u8(&s, &ver))
        return corrupt("checkpoint head", v, s);
    if (ver != REC_HEAD_VERSION)
        return err_set_msg(DM_EVERSION, "checkpoint head version %u is not supported", ver);
    if (!get_u64(&s, &h->gen) || !get_u64(&s, &h->covered_useq) ||
        !get_u32(&s, &h->n_parts) || !get_u64(&s, &h->total_len) ||
        !get_u32(&s, &h->crc) || s.len)
        return corrupt("checkpoint head", v, s);
    if (h->n_parts == 0 || h->total_len > (uint64_t)h->n_parts * (4u << 20))
        return corrupt("checkpoint head", v, s);
    return DM_OK;
}
