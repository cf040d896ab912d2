/*
 * crc.h -- CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the one
 * checksum of every on-disk format.
 *
 * crc32c_extend(0, p, n) is the standard CRC32C of p[0..n) (init ~0,
 * final xor ~0); "123456789" gives 0xE3069283.  Stored checksums are
 * masked (crc_mask) so that a CRC of data that itself contains CRCs does
 * not degenerate; docs/format.md gives the exact formula.  Uses the SSE4.2
 * crc32 instruction when the CPU has it, a slicing-by-8 table otherwise.
 */
#ifndef DM_BASE_CRC_H
#define DM_BASE_CRC_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c_extend(uint32_t crc, const void *p, size_t n);

static inline uint32_t crc32c(const void *p, size_t n)
{
    return crc32c_extend(0, p, n);
}

#define CRC_MASK_DELTA 0xa282ead8u
/* crc_mask -- rotate right by 15 bits and add a constant. */
static inline uint32_t crc_mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + CRC_MASK_DELTA;
}
static inline uint32_t crc_unmask(uint32_t m)
{
    uint32_t rot = m - CRC_MASK_DELTA;
    return (rot >> 17) | (rot << 15);
}

#endif
