/* The Internet checksum (RFC 1071): a one's-complement sum, computed in
 * pieces and folded at the end. */
#ifndef TERN_WIRE_CHECKSUM_H
#define TERN_WIRE_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* Add len bytes to a running 32-bit sum. Pieces must start at even offsets
 * of the summed region, except the last. */
uint32_t tern_csum_add(uint32_t sum, const void *data, size_t len);
/* The same without the vector path the CPU may offer (for tests). */
uint32_t tern_csum_add_scalar(uint32_t sum, const void *data, size_t len);
/* Fold a running sum into the 16-bit one's complement checksum. */
uint16_t tern_csum_fold(uint32_t sum);
/* The checksum of a 20-byte header (an IPv4 header without options) as
 * tern_csum_fold(tern_csum_add(0, p, 20)) gives it: five 32-bit words
 * added in a 64-bit sum, then folded (RFC 1071 section 2: the order of
 * the bytes only swaps the result). Every segment is summed so twice. */
static inline uint16_t tern_csum_hdr20(const uint8_t *p)
{
    uint64_t sum = 0;
    for (int i = 0; i < 5; i++) {
        uint32_t w;
        __builtin_memcpy(&w, p + 4 * i, 4);
        sum += w;
    }
    sum = (sum & 0xffffffffu) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    sum = ((sum & 0xff) << 8) | (sum >> 8);
#endif
    return (uint16_t)~sum;
}
/* The IPv4 pseudo header of RFC 768/793 (addresses in host order). */
uint32_t tern_csum_pseudo4(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len);

#endif
