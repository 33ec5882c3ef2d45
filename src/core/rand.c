#include "core/rand.h"

#include <string.h>

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void tern_rng_seed(struct tern_rng *r, uint64_t seed)
{
    /* splitmix64 spreads any seed (0 included) over the whole state, as
     * the xoshiro authors recommend. */
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

uint64_t tern_rng_next(struct tern_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

uint64_t tern_rng_below(struct tern_rng *r, uint64_t bound)
{
    /* Rejection sampling: draw again when x falls in the short last bucket. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do {
        x = tern_rng_next(r);
    } while (x >= limit);
    return x % bound;
}

int tern_rng_chance_ppm(struct tern_rng *r, uint32_t ppm)
{
    if (ppm == 0)
        return 0;
    return tern_rng_below(r, 1000000) < ppm;
}

void tern_rng_fill(struct tern_rng *r, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        uint64_t x = tern_rng_next(r);
        size_t n = len < 8 ? len : 8;
        memcpy(p, &x, n);
        p += n;
        len -= n;
    }
}

#define SIPROUND                                                               \
    do {                                                                       \
        v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0; v0 = rotl64(v0, 32);          \
        v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2;                               \
        v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0;                               \
        v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2; v2 = rotl64(v2, 32);          \
    } while (0)

/* Little-endian loads of whole and partial words: one move on the hosts
 * Tern runs on (a byte loop cost SipHash a third of its instructions in
 * the connections-per-second profile). */
static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static uint64_t load_le_tail(const uint8_t *p, size_t n) /* n < 8 */
{
    uint8_t b[8] = {0};
    memcpy(b, p, n);
    return load_le64(b);
}

/* SipHash-2-4 (Aumasson and Bernstein, 2012). */
uint64_t tern_siphash(const struct tern_siphash_key *key, const void *data, size_t len)
{
    const uint8_t *in = data;
    uint64_t v0 = 0x736f6d6570736575ull ^ key->k0;
    uint64_t v1 = 0x646f72616e646f6dull ^ key->k1;
    uint64_t v2 = 0x6c7967656e657261ull ^ key->k0;
    uint64_t v3 = 0x7465646279746573ull ^ key->k1;
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load_le64(in + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = ((uint64_t)len << 56) | load_le_tail(in + whole, len & 7);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

