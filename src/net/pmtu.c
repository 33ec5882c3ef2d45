/* Path MTUs per destination: see pmtu.h. */
#include "net/pmtu.h"

#include "core/stack.h"

static bool live(const struct tern_stack *s, const struct tern_pmtu_entry *e)
{
    return e->dst != 0 && e->expires > s->now;
}

void tern_pmtu_learn(struct tern_stack *s, uint32_t dst, uint32_t mtu)
{
    struct tern_pmtu_cache *c = &s->pmtu;
    struct tern_pmtu_entry *slot = NULL;
    for (unsigned i = 0; i < TERN_PMTU_ENTRIES; i++) {
        struct tern_pmtu_entry *e = &c->e[i];
        if (e->dst == dst) {
            slot = e;
            break;
        }
        /* Else the first free or aged-out entry, else the nearest its end. */
        if (!slot || (live(s, slot) && (!live(s, e) || e->expires < slot->expires)))
            slot = e;
    }
    if (slot->dst == dst && live(s, slot) && slot->mtu < mtu)
        mtu = slot->mtu; /* a larger report does not widen a known path */
    if (slot->dst != dst || !live(s, slot))
        tern_count(s, TERN_C_IP_PMTU_LEARNED);
    if (slot->dst == 0)
        c->filled++;
    *slot = (struct tern_pmtu_entry){.dst = dst, .mtu = mtu, .expires = s->now + TERN_PMTU_AGE_NS};
}

void tern_pmtu_each(const struct tern_stack *s,
                    void (*fn)(uint32_t dst, uint32_t mtu, uint64_t left_ns, void *arg), void *arg)
{
    for (unsigned i = 0; i < s->pmtu.filled; i++) {
        const struct tern_pmtu_entry *e = &s->pmtu.e[i];
        if (live(s, e))
            fn(e->dst, e->mtu, e->expires - s->now, arg);
    }
}

uint32_t tern_pmtu_get(const struct tern_stack *s, uint32_t dst)
{
    /* Entries fill from the front and are reused, never freed. */
    for (unsigned i = 0; i < s->pmtu.filled; i++) {
        const struct tern_pmtu_entry *e = &s->pmtu.e[i];
        if (e->dst == dst)
            return live(s, e) ? e->mtu : 0;
    }
    return 0;
}
