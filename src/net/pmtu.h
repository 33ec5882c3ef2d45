/*
 * Path MTUs learned from ICMP "fragmentation needed" (RFC 1191).
 *
 * RFC 1191 section 5 asks that a learned PMTU be kept with the route to
 * its destination, not only in the connection that learned it: the next
 * connection to the same host then starts at the size that fits instead
 * of losing its first full segment again. Section 6.3: an estimate ages
 * out (10 minutes suggested), after which the interface MTU is tried
 * again, so a path that widened is found.
 *
 * A fixed table per stack: no allocation, a linear look at connection
 * setup only. When it is full the entry nearest its end goes. Entries are
 * values (an address and a size); nothing points into them.
 */
#ifndef TERN_NET_PMTU_H
#define TERN_NET_PMTU_H

#include <stdint.h>

struct tern_stack;

#define TERN_PMTU_ENTRIES 32
#define TERN_PMTU_AGE_NS (600ull * 1000000000ull) /* RFC 1191 6.3: 10 minutes */

struct tern_pmtu_entry {
    uint32_t dst;     /* host order, as PCBs keep addresses; 0 = free */
    uint32_t mtu;
    uint64_t expires; /* stack time */
};

struct tern_pmtu_cache {
    uint32_t filled; /* entries ever used (never free again): none, no look */
    struct tern_pmtu_entry e[TERN_PMTU_ENTRIES];
};

/* The path to dst takes at most mtu bytes: keep the smaller of that and
 * what is known, for TERN_PMTU_AGE_NS from now. */
void tern_pmtu_learn(struct tern_stack *s, uint32_t dst, uint32_t mtu);
/* The path MTU learned for dst and not yet aged out, or 0. */
uint32_t tern_pmtu_get(const struct tern_stack *s, uint32_t dst);
/* Each entry still in force, oldest slot first: fn(dst, mtu, ns left). */
void tern_pmtu_each(const struct tern_stack *s,
                    void (*fn)(uint32_t dst, uint32_t mtu, uint64_t left_ns, void *arg), void *arg);

#endif
