/*
 * The byte pattern and checksum shared by the two sides of the TCP tests
 * against the kernel (tcp_peer.c on Tern, tcp_ksock.c on kernel sockets).
 *
 * Byte i of a stream with salt S is byte (i mod 8) of mix(i / 8, S), where
 * mix is the splitmix64 finaliser: every 8-byte word is different, so a
 * dropped, duplicated or reordered run of bytes of any length shows at the
 * first byte that moved (a run whose length is a multiple of some period
 * cannot hide, because there is no period). The salt differs per transfer,
 * so bytes from another connection do not match either.
 *
 * The checksum is CRC-32 (the zlib/IEEE polynomial, so `zlib.crc32` in
 * Python gives the same number) over the bytes as they were sent or
 * received, so the log can compare the two ends' numbers directly.
 */
#ifndef TERN_TESTS_TCP_PATTERN_H
#define TERN_TESTS_TCP_PATTERN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t pat_word(uint64_t k, uint64_t salt)
{
    uint64_t z = k + salt * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The `len` pattern bytes of stream `salt` starting at offset `off`. */
static inline void pat_fill(uint8_t *buf, uint64_t off, size_t len, uint64_t salt)
{
    size_t i = 0;
    while (i < len) {
        uint64_t pos = off + i;
        uint64_t w = pat_word(pos >> 3, salt);
        unsigned b = (unsigned)(pos & 7);
        for (; b < 8 && i < len; b++, i++)
            buf[i] = (uint8_t)(w >> (8 * b));
    }
}

/* Offset (from 0) of the first byte of buf that is not the pattern at
 * `off`, or len when all match. scratch holds len bytes. */
static inline size_t pat_check(const uint8_t *buf, uint64_t off, size_t len, uint64_t salt,
                               uint8_t *scratch)
{
    pat_fill(scratch, off, len, salt);
    if (memcmp(buf, scratch, len) == 0)
        return len;
    size_t i = 0;
    while (buf[i] == scratch[i])
        i++;
    return i;
}

struct crc32 {
    uint32_t table[256];
};

static inline void crc32_init(struct crc32 *c)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t v = n;
        for (int k = 0; k < 8; k++)
            v = (v & 1) ? 0xedb88320u ^ (v >> 1) : v >> 1;
        c->table[n] = v;
    }
}

/* crc starts at 0; feed the stream in pieces of any size. */
static inline uint32_t crc32_update(const struct crc32 *c, uint32_t crc, const uint8_t *p,
                                    size_t len)
{
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = c->table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#endif
