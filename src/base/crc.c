/*
 * crc.c -- CRC32C.  A slicing-by-8 table implementation, and on x86-64 the
 * SSE4.2 crc32 instruction chosen once at first use through a CPU check.
 */
#include "base/crc.h"

#include <string.h>

static uint32_t table[8][256];
static int hw_state; /* 0 = unknown, 1 = software, 2 = hardware */

static void init_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

static uint32_t sw_crc(uint32_t c, const unsigned char *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= c;
        c = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^
            table[5][(w >> 16) & 0xff] ^ table[4][(w >> 24) & 0xff] ^
            table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
            table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t hw_crc(uint32_t c,
                                                         const unsigned char *p,
                                                         size_t n)
{
    uint64_t c64 = c;
    while (n && ((uintptr_t)p & 7)) {
        c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = __builtin_ia32_crc32di(c64, w);
        p += 8;
        n -= 8;
    }
    while (n--)
        c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
    return (uint32_t)c64;
}
#endif

static void choose(void)
{
    init_table();
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) {
        __atomic_store_n(&hw_state, 2, __ATOMIC_RELEASE);
        return;
    }
#endif
    __atomic_store_n(&hw_state, 1, __ATOMIC_RELEASE);
}

uint32_t crc32c_extend(uint32_t crc, const void *p, size_t n)
{
    int s = __atomic_load_n(&hw_state, __ATOMIC_ACQUIRE);
    if (s == 0) {
        /* Idempotent: two threads racing here compute the same table. */
        choose();
        s = __atomic_load_n(&hw_state, __ATOMIC_ACQUIRE);
    }
    uint32_t c = ~crc;
#if defined(__x86_64__)
    if (s == 2)
        return ~hw_crc(c, p, n);
#endif
    return ~sw_crc(c, p, n);
}
