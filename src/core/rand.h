/* Seeded pseudo-random numbers (xoshiro256**) and a keyed hash
 * (SipHash-2-4). Neither touches global state: each user owns its
 * generator, so a given seed replays byte for byte. Not for secrets that
 * must resist prediction from outputs; ISNs and ports mix SipHash over a
 * per-stack key, which is what RFC 6056 and RFC 6528 ask for. */
#ifndef TERN_CORE_RAND_H
#define TERN_CORE_RAND_H

#include <stdint.h>
#include <stddef.h>

struct tern_rng {
    uint64_t s[4];
};

void tern_rng_seed(struct tern_rng *r, uint64_t seed);
uint64_t tern_rng_next(struct tern_rng *r);
/* Uniform in [0, bound), bound > 0, without modulo bias. */
uint64_t tern_rng_below(struct tern_rng *r, uint64_t bound);
/* True with probability ppm / 1e6. */
int tern_rng_chance_ppm(struct tern_rng *r, uint32_t ppm);
void tern_rng_fill(struct tern_rng *r, void *buf, size_t len);

struct tern_siphash_key {
    uint64_t k0, k1;
};
uint64_t tern_siphash(const struct tern_siphash_key *key, const void *data, size_t len);

/* The last hash of up to three words taken under one key, and its input:
 * a value that depends only on the endpoints (a timestamp offset, a port
 * offset) is asked for again and again while connections to one peer
 * come and go. Values only; `words` 0 means empty. */
struct tern_siphash_memo {
    uint32_t in[3];
    uint32_t words;
    uint64_t out;
};
uint64_t tern_siphash_memo(struct tern_siphash_memo *m, const struct tern_siphash_key *key,
                           const uint32_t *in, uint32_t words);

#endif
