#include "wire/checksum.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TERN_CSUM_AVX2 1
#endif

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
static uint32_t fold_words_sum(uint64_t a);

static uint32_t sum_words_scalar(const uint8_t *p, size_t words)
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
    return fold_words_sum(add_carry(a, b));
}

/* A 64-bit one's complement sum of native words, folded to 16 bits in
 * network byte order. */
static uint32_t fold_words_sum(uint64_t a)
{
    a = (a & 0xffffffffu) + (a >> 32);
    a = (a & 0xffffffffu) + (a >> 32);
    a = (a & 0xffff) + (a >> 16);
    a = (a & 0xffff) + (a >> 16);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    a = ((a & 0xff) << 8) | (a >> 8);
#endif
    return (uint32_t)a;
}

#ifdef TERN_CSUM_AVX2
/* The same sum, 64 bytes a step: each 32-bit word is widened into a
 * 64-bit lane, where no carry can be lost before 2^32 words (the sum is
 * exact, so it equals the end-around-carry sum modulo 2^16 - 1 and is
 * nonzero when that one is). About 2.5 times the scalar loop on data in
 * cache, which is where a segment's bytes are when they are summed. */
__attribute__((target("avx2"))) static uint32_t sum_words_avx2(const uint8_t *p, size_t words)
{
    const __m256i zero = _mm256_setzero_si256();
    __m256i s0 = zero, s1 = zero;
    size_t n = words * 8, i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(p + i));
        __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 32));
        s0 = _mm256_add_epi64(s0, _mm256_unpacklo_epi32(v, zero));
        s1 = _mm256_add_epi64(s1, _mm256_unpackhi_epi32(v, zero));
        s0 = _mm256_add_epi64(s0, _mm256_unpacklo_epi32(w, zero));
        s1 = _mm256_add_epi64(s1, _mm256_unpackhi_epi32(w, zero));
    }
    uint64_t lane[4];
    _mm256_storeu_si256((__m256i *)(void *)lane, _mm256_add_epi64(s0, s1));
    uint64_t a = add_carry(add_carry(lane[0], lane[1]), add_carry(lane[2], lane[3]));
    for (; i < n; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        a = add_carry(a, x);
    }
    return fold_words_sum(a);
}
#endif

static uint32_t sum_words(const uint8_t *p, size_t words)
{
#ifdef TERN_CSUM_AVX2
    /* The CPU is asked each time: a flag libgcc set at start-up, no state
     * of ours to initialise or race on. */
    if (words >= 8 && __builtin_cpu_supports("avx2"))
        return sum_words_avx2(p, words);
#endif
    return sum_words_scalar(p, words);
}

/* The bytes after the whole words (fewer than 8): each pair summed as a
 * big-endian 16-bit value, the odd last byte as its high half (RFC 1071);
 * then the 32-bit running sum the callers keep. */
static inline uint32_t add_tail(uint64_t acc, const uint8_t *p, size_t len)
{
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

static inline uint32_t csum_add_with(uint32_t sum, const void *data, size_t len,
                                     uint32_t (*words_sum)(const uint8_t *, size_t))
{
    const uint8_t *p = data;
    uint64_t acc = sum;
    if (len >= 8) {
        acc += words_sum(p, len / 8);
        p += len / 8 * 8;
        len %= 8;
    }
    return add_tail(acc, p, len);
}

/* Headers (an IPv4 header, a pure ACK's TCP header): 32-bit native words
 * into a 64-bit sum, which cannot overflow below 2^32 words, folded as
 * sum_words_scalar's; no call, no CPU check. */
static inline uint32_t csum_add_short(uint32_t sum, const uint8_t *p, size_t len)
{
    uint64_t words = 0;
    for (; len >= 4; len -= 4, p += 4) {
        uint32_t x;
        memcpy(&x, p, 4);
        words += x;
    }
    return add_tail((uint64_t)sum + fold_words_sum(words), p, len);
}

uint32_t tern_csum_add(uint32_t sum, const void *data, size_t len)
{
    if (len < 64)
        return csum_add_short(sum, data, len);
    return csum_add_with(sum, data, len, sum_words);
}

uint32_t tern_csum_add_scalar(uint32_t sum, const void *data, size_t len)
{
    return csum_add_with(sum, data, len, sum_words_scalar);
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
