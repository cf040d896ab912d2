/*
 * buf.c -- the growable byte buffer.  Growth doubles the capacity so that
 * appends are amortised O(1).
 */
#include "base/buf.h"

#include "base/alloc.h"
#include "deltamemory.h"

void buf_init(buf *b)
{
    b->ptr = NULL;
    b->len = b->cap = 0;
}

void buf_fini(buf *b)
{
    dm_free(b->ptr);
    buf_init(b);
}

int buf_reserve(buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return DM_OK;
    if (extra > SIZE_MAX / 2 - b->len)
        return DM_ENOMEM;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < extra)
        cap *= 2;
    uint8_t *p = dm_realloc(b->ptr, cap);
    if (!p)
        return DM_ENOMEM;
    b->ptr = p;
    b->cap = cap;
    return DM_OK;
}

int buf_append(buf *b, const void *p, size_t n)
{
    if (!n)
        return DM_OK;
    int rc = buf_reserve(b, n);
    if (rc)
        return rc;
    memcpy(b->ptr + b->len, p, n);
    b->len += n;
    return DM_OK;
}

int buf_put_u8(buf *b, uint8_t v)
{
    return buf_append(b, &v, 1);
}

int buf_put_u32(buf *b, uint32_t v)
{
    uint8_t t[4];
    enc_u32(t, v);
    return buf_append(b, t, 4);
}

int buf_put_u64(buf *b, uint64_t v)
{
    uint8_t t[8];
    enc_u64(t, v);
    return buf_append(b, t, 8);
}

int buf_put_varint(buf *b, uint64_t v)
{
    uint8_t t[BUF_VARINT64_MAX];
    return buf_append(b, t, enc_varint(t, v));
}

int buf_put_lenbytes(buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n + BUF_VARINT64_MAX);
    if (rc)
        return rc;
    b->len += enc_varint(b->ptr + b->len, n);
    memcpy(b->ptr + b->len, p, n);
    b->len += n;
    return DM_OK;
}
