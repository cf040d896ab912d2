/*
 * buf.h -- byte slices, a growable byte buffer, and integer coding.
 *
 * All on-disk integers are little-endian.  Varints are LEB128: 7 bits per
 * byte, low groups first, high bit set on every byte but the last; a
 * uint64 takes at most 10 bytes, a uint32 at most 5.
 *
 * buf_slice is a borrowed {ptr,len} view; whoever hands one out says how
 * long it stays valid.  buf is an owned growable buffer (dm_malloc).
 */
#ifndef DM_BASE_BUF_H
#define DM_BASE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct buf_slice {
    const uint8_t *ptr;
    size_t len;
} buf_slice;

static inline buf_slice buf_slice_of(const void *p, size_t n)
{
    buf_slice s = { (const uint8_t *)p, n };
    return s;
}

/* buf_slice_cmp -- bytewise comparison (memcmp order, shorter first on a
 * common prefix). */
static inline int buf_slice_cmp(buf_slice a, buf_slice b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c)
        return c;
    return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}

/* Growable owned buffer.  Initialise with buf_init (or = {0}); release with
 * buf_fini.  Append functions return DM_OK or DM_ENOMEM; on failure the
 * buffer keeps its previous contents. */
typedef struct buf {
    uint8_t *ptr;
    size_t len;
    size_t cap;
} buf;

void buf_init(buf *b);
void buf_fini(buf *b);
static inline void buf_clear(buf *b) { b->len = 0; }
int buf_reserve(buf *b, size_t extra);
int buf_append(buf *b, const void *p, size_t n);
int buf_put_u8(buf *b, uint8_t v);
int buf_put_u32(buf *b, uint32_t v);
int buf_put_u64(buf *b, uint64_t v);
int buf_put_varint(buf *b, uint64_t v);
/* varint length followed by the bytes */
int buf_put_lenbytes(buf *b, const void *p, size_t n);

/* ---- fixed-width little-endian ---- */
static inline void enc_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8);
}
static inline void enc_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void enc_u64(uint8_t *p, uint64_t v)
{
    enc_u32(p, (uint32_t)v);
    enc_u32(p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t dec_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t dec_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static inline uint64_t dec_u64(const uint8_t *p)
{
    return (uint64_t)dec_u32(p) | ((uint64_t)dec_u32(p + 4) << 32);
}

/* ---- a float32's bits and back (IEEE-754 binary32) ---- */
static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float f32_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- big-endian (for key parts, so that byte order = numeric order) ---- */
static inline void enc_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}
static inline uint64_t dec_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

/* ---- varints ---- */
#define BUF_VARINT64_MAX 10
/* enc_varint -- writes v at p, returns bytes written (1..10). */
static inline size_t enc_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) { p[n++] = (uint8_t)(v | 0x80); v >>= 7; }
    p[n++] = (uint8_t)v;
    return n;
}
static inline size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) { v >>= 7; n++; }
    return n;
}
/*
 * dec_varint -- decodes a varint from [p, end).  Returns the pointer past it,
 * or NULL when the input ends early or the value overflows 64 bits.
 */
static inline const uint8_t *dec_varint(const uint8_t *p, const uint8_t *end,
                                        uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift <= 63 && p < end; shift += 7) {
        uint64_t b = *p++;
        if (shift == 63 && b > 1)
            return NULL;
        v |= (b & 0x7f) << shift;
        if (!(b & 0x80)) { *out = v; return p; }
    }
    return NULL;
}

/*
 * Cursor-style decoding over a slice: each get_* consumes from *s and
 * returns false (leaving *s unspecified) when the input is short or bad.
 */
static inline bool get_u8(buf_slice *s, uint8_t *v)
{
    if (s->len < 1) return false;
    *v = s->ptr[0]; s->ptr++; s->len--; return true;
}
static inline bool get_u32(buf_slice *s, uint32_t *v)
{
    if (s->len < 4) return false;
    *v = dec_u32(s->ptr); s->ptr += 4; s->len -= 4; return true;
}
static inline bool get_u64(buf_slice *s, uint64_t *v)
{
    if (s->len < 8) return false;
    *v = dec_u64(s->ptr); s->ptr += 8; s->len -= 8; return true;
}
static inline bool get_varint(buf_slice *s, uint64_t *v)
{
    const uint8_t *q = dec_varint(s->ptr, s->ptr + s->len, v);
    if (!q) return false;
    s->len -= (size_t)(q - s->ptr); s->ptr = q; return true;
}
static inline bool get_lenbytes(buf_slice *s, buf_slice *out)
{
    uint64_t n;
    if (!get_varint(s, &n) || n > s->len) return false;
    out->ptr = s->ptr; out->len = (size_t)n;
    s->ptr += n; s->len -= (size_t)n; return true;
}

#endif
