/*
 * bloom.c -- the SSTable bloom filter over user keys and its key hash.
 *
 * Format owned (docs/format.md "SSTable", "Filter block"):
 *
 *   filter := bits[n_bytes] | k u8
 *
 * One filter covers every distinct user key of a table.  With
 * b = bits_per_key and n keys, the bit array has
 * max(n*b, 64) bits rounded up to whole bytes (m = 8*n_bytes), and each key
 * sets k = clamp((b*69 + 50) / 100, 1, 30) bits -- round(b * ln 2), the
 * count that minimises the false-positive rate, about 1% at b = 10.
 *
 * Probes use double hashing (Kirsch & Mitzenmacher): from h = sst_hash64(
 * user key), a = h mod 2^32 and d = h >> 32, probe i (0 <= i < k) is bit
 * (a + i*d) mod m; bit j is bit (j mod 8) of byte j / 8.  Only two
 * divisions per key: the sequence is walked incrementally mod m.
 *
 * sst_hash64 is written out in the format document because it is part of
 * the file format: changing it changes which bits are set.  It reads the
 * key as little-endian 64-bit words, so it is the same on every host.
 *
 * No locking: filters are immutable once built.
 */
#include "storage/sstable_int.h"

#include "base/err.h"

#define P1 UINT64_C(0x9E3779B185EBCA87)
#define P2 UINT64_C(0xC2B2AE3D27D4EB4F)
#define P3 UINT64_C(0x165667B19E3779F9)
#define SEED UINT64_C(0x2545F4914F6CDD1D)

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t mix_word(uint64_t w)
{
    w *= P2;
    w = rotl64(w, 31);
    return w * P1;
}

uint64_t sst_hash64(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = SEED ^ ((uint64_t)n * P1);
    while (n >= 8) {
        h ^= mix_word(dec_u64(s));
        h = rotl64(h, 27) * P1 + P3;
        s += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        for (size_t i = 0; i < n; i++)
            w |= (uint64_t)s[i] << (8 * i);
        h ^= mix_word(w);
    }
    /* Final avalanche so that every input bit affects both halves. */
    h ^= h >> 33;
    h *= UINT64_C(0xFF51AFD7ED558CCD);
    h ^= h >> 33;
    h *= UINT64_C(0xC4CEB9FE1A85EC53);
    h ^= h >> 33;
    return h;
}

int sst_bloom_k(int bits_per_key)
{
    int k = (bits_per_key * 69 + 50) / 100;
    if (k < SST_BLOOM_MIN_K)
        k = SST_BLOOM_MIN_K;
    if (k > SST_BLOOM_MAX_K)
        k = SST_BLOOM_MAX_K;
    return k;
}

size_t sst_bloom_len(size_t n_keys, int bits_per_key)
{
    uint64_t bits = (uint64_t)n_keys * (uint64_t)bits_per_key;
    if (bits < SST_BLOOM_MIN_BITS)
        bits = SST_BLOOM_MIN_BITS;
    return (size_t)((bits + 7) / 8) + 1;
}

void sst_bloom_build(const uint64_t *hashes, size_t n, int bits_per_key,
                     uint8_t *out)
{
    size_t n_bytes = sst_bloom_len(n, bits_per_key) - 1;
    uint64_t m = (uint64_t)n_bytes * 8;
    int k = sst_bloom_k(bits_per_key);
    memset(out, 0, n_bytes);
    for (size_t i = 0; i < n; i++) {
        uint64_t h = hashes[i];
        uint64_t x = (h & 0xffffffffu) % m, d = (h >> 32) % m;
        for (int j = 0; j < k; j++) {
            out[x >> 3] |= (uint8_t)(1u << (x & 7));
            x += d;
            if (x >= m)
                x -= m;
        }
    }
    out[n_bytes] = (uint8_t)k;
}

int sst_bloom_check(const uint8_t *f, size_t len, const char **why)
{
    if (len < 2) {
        *why = "filter shorter than 2 bytes";
        return DM_ECORRUPT;
    }
    uint8_t k = f[len - 1];
    if (k < SST_BLOOM_MIN_K || k > SST_BLOOM_MAX_K) {
        *why = "filter probe count out of range";
        return DM_ECORRUPT;
    }
    return DM_OK;
}

bool sst_bloom_may_contain(const uint8_t *f, size_t len, uint64_t h)
{
    uint64_t m = (uint64_t)(len - 1) * 8;
    int k = f[len - 1];
    uint64_t x = (h & 0xffffffffu) % m, d = (h >> 32) % m;
    for (int j = 0; j < k; j++) {
        if (!(f[x >> 3] & (1u << (x & 7))))
            return false;
        x += d;
        if (x >= m)
            x -= m;
    }
    return true;
}
