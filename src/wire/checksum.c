#include "wire/checksum.h"

#include <string.h>

/* a + b with the carry out of bit 63 added back in (end-around carry). */
static uint64_t add_carry(uint64_t a, uint64_t b)
{
    a += b;
    return a + (a < b);
}

/* The one's complement sum of whole 8-byte words, folded to 16 bits, in
 * network byte order. RFC 1071 section 2: the sum does not depend on the
 * byte order but for a final swap, and 2^64 = 1 modulo 2^16 - 1, so native
 * 64-bit words with end-around carry give the same checksum as 16-bit
 * big-endian ones, four to eight times fewer additions. A nonzero sum
 * stays nonzero through every fold, as the 16-bit loop's would. */
static uint32_t sum_words(const uint8_t *p, size_t words)
{
    uint64_t a = 0, b = 0;
    for (; words >= 2; words -= 2, p += 16) {
        uint64_t x, y;
        memcpy(&x, p, 8);
        memcpy(&y, p + 8, 8);
        a = add_carry(a, x);
        b = add_carry(b, y);
    }
    if (words) {
        uint64_t x;
        memcpy(&x, p, 8);
        a = add_carry(a, x);
    }
    a = add_carry(a, b);
    a = (a & 0xffffffffu) + (a >> 32);
    a = (a & 0xffffffffu) + (a >> 32);
    a = (a & 0xffff) + (a >> 16);
    a = (a & 0xffff) + (a >> 16);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    a = ((a & 0xff) << 8) | (a >> 8);
#endif
    return (uint32_t)a;
}

uint32_t tern_csum_add(uint32_t sum, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t acc = sum;
    if (len >= 8) {
        acc += sum_words(p, len / 8);
        p += len / 8 * 8;
        len %= 8;
    }
    while (len >= 2) {
        acc += (uint32_t)((p[0] << 8) | p[1]);
        p += 2;
        len -= 2;
    }
    if (len)
        acc += (uint32_t)p[0] << 8;
    while (acc >> 32)
        acc = (acc & 0xffffffffu) + (acc >> 32);
    return (uint32_t)acc;
}

uint16_t tern_csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

uint32_t tern_csum_pseudo4(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len)
{
    uint64_t acc = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + len;
    while (acc >> 32)
        acc = (acc & 0xffffffffu) + (acc >> 32);
    return (uint32_t)acc;
}
