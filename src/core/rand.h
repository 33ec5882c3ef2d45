/* Seeded pseudo-random numbers (xoshiro256**) and a keyed hash
 * (SipHash-2-4). Neither touches global state: each user owns its
 * generator, so a given seed replays byte for byte. Not for secrets that
 * must resist prediction from outputs; ISNs and ports mix SipHash over a
 * per-stack key, which is what RFC 6056 and RFC 6528 ask for. */
#ifndef TERN_CORE_RAND_H
#define TERN_CORE_RAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* The last two hashes of up to three words taken under one key, and
 * their inputs, the latest first: a value that depends only on the
 * endpoints (a timestamp offset, a port offset) or on a connection (its
 * 4-tuple) is asked for again and again while its segments and
 * connections come and go, and a connection's last segments may
 * interleave with the next one's. Values only; `words` 0 means empty. */
struct tern_siphash_memo {
    struct tern_siphash_memo_entry {
        uint32_t in[3];
        uint32_t words;
        uint64_t out;
    } e[2];
};
static inline bool tern_siphash_memo_holds(const struct tern_siphash_memo_entry *e,
                                           const uint32_t *in, uint32_t words)
{
    if (e->words != words)
        return false;
    for (uint32_t i = 0; i < words; i++)
        if (e->in[i] != in[i])
            return false;
    return true;
}

/* Inline: the callers' word counts are constants. */
static inline uint64_t tern_siphash_memo(struct tern_siphash_memo *m,
                                         const struct tern_siphash_key *key, const uint32_t *in,
                                         uint32_t words)
{
    if (tern_siphash_memo_holds(&m->e[0], in, words))
        return m->e[0].out;
    struct tern_siphash_memo_entry n;
    if (tern_siphash_memo_holds(&m->e[1], in, words)) {
        n = m->e[1];
    } else {
        n = (struct tern_siphash_memo_entry){.words = words};
        memcpy(n.in, in, words * sizeof(*in));
        n.out = tern_siphash(key, in, words * sizeof(*in));
    }
    m->e[1] = m->e[0];
    m->e[0] = n;
    return n.out;
}

#endif
