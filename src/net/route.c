#include "net/route.h"

#include <errno.h>
#include <string.h>

uint32_t tern_prefix_mask(unsigned prefixlen)
{
    return prefixlen == 0 ? 0 : 0xffffffffu << (32 - prefixlen);
}

int tern_route_insert(struct tern_route_table *t, uint32_t dst, unsigned prefixlen, uint32_t gw,
                      int ifindex)
{
    if (prefixlen > 32)
        return -EINVAL;
    uint32_t mask = tern_prefix_mask(prefixlen);
    dst &= mask;
    for (unsigned i = 0; i < t->n; i++)
        if (t->r[i].dst == dst && t->r[i].prefixlen == prefixlen)
            return -EEXIST;
    if (t->n == TERN_MAX_ROUTES)
        return -ENOSPC;
    /* Keep the table sorted by prefix length, longest first, so the first
     * match of a lookup is the longest prefix. */
    unsigned pos = 0;
    while (pos < t->n && t->r[pos].prefixlen >= prefixlen)
        pos++;
    memmove(&t->r[pos + 1], &t->r[pos], (t->n - pos) * sizeof(t->r[0]));
    t->r[pos] = (struct tern_route){
        .dst = dst, .mask = mask, .prefixlen = (uint8_t)prefixlen, .gw = gw, .ifindex = ifindex};
    t->n++;
    return 0;
}

static void remove_at(struct tern_route_table *t, unsigned i)
{
    memmove(&t->r[i], &t->r[i + 1], (t->n - i - 1) * sizeof(t->r[0]));
    t->n--;
}

int tern_route_remove(struct tern_route_table *t, uint32_t dst, unsigned prefixlen)
{
    if (prefixlen > 32)
        return -EINVAL;
    dst &= tern_prefix_mask(prefixlen);
    for (unsigned i = 0; i < t->n; i++) {
        if (t->r[i].dst == dst && t->r[i].prefixlen == prefixlen) {
            remove_at(t, i);
            return 0;
        }
    }
    return -ESRCH;
}

void tern_route_remove_ifaddr(struct tern_route_table *t, uint32_t dst, unsigned prefixlen,
                              int ifindex)
{
    dst &= tern_prefix_mask(prefixlen);
    for (unsigned i = 0; i < t->n; i++) {
        if (t->r[i].dst == dst && t->r[i].prefixlen == prefixlen && t->r[i].gw == 0 &&
            t->r[i].ifindex == ifindex) {
            remove_at(t, i);
            return;
        }
    }
}

int tern_route_lookup(const struct tern_route_table *t, uint32_t dst, struct tern_nexthop *nh)
{
    for (unsigned i = 0; i < t->n; i++) {
        const struct tern_route *r = &t->r[i];
        if ((dst & r->mask) == r->dst) {
            nh->ifindex = r->ifindex;
            nh->hop = r->gw ? r->gw : dst;
            return 0;
        }
    }
    return -1;
}
