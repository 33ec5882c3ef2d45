/* The IPv4 routing table: longest-prefix match, kept sorted by prefix
 * length so the first match is the longest (a linear walk: tables here are
 * a few routes; a trie is the upgrade when that stops being true). */
#ifndef TERN_NET_ROUTE_H
#define TERN_NET_ROUTE_H

#include <stdint.h>

#define TERN_MAX_ROUTES 256

struct tern_route {
    uint32_t dst;  /* host order, masked */
    uint32_t mask;
    uint8_t prefixlen;
    uint32_t gw;   /* 0: on link */
    int ifindex;
};

struct tern_route_table {
    unsigned n;
    struct tern_route r[TERN_MAX_ROUTES];
};

/* Where a packet to dst goes. */
struct tern_nexthop {
    int ifindex;
    uint32_t hop;  /* the neighbour to resolve: gw or dst itself */
};

/* What IPv4 output decided for a destination, remembered until the
 * routes or addresses change (the stack's route_gen): a connection sends
 * to one destination over and over. Values only, like the IP ID cache: no
 * pointer that could outlive what it names. Direct-mapped by destination;
 * a collision only costs the full decision again. */
#define TERN_ROUTE_CACHE_SLOTS 64
struct tern_route_cache_entry {
    uint32_t dst, gen; /* gen 0 is never current: an empty slot */
    uint32_t src;      /* the source address chosen for it */
    uint32_t hop;      /* the neighbour to resolve */
    uint16_t ifindex;
    uint8_t local;     /* one of our addresses: the stack's own loopback */
    uint8_t bcast;     /* a broadcast address of the interface */
};
struct tern_route_cache {
    struct tern_route_cache_entry e[TERN_ROUTE_CACHE_SLOTS];
};

int tern_route_insert(struct tern_route_table *t, uint32_t dst, unsigned prefixlen,
                      uint32_t gw, int ifindex);
int tern_route_remove(struct tern_route_table *t, uint32_t dst, unsigned prefixlen);
/* Remove every route through ifindex that a now-deleted address made. */
void tern_route_remove_ifaddr(struct tern_route_table *t, uint32_t dst, unsigned prefixlen,
                              int ifindex);
/* 0 and *nh filled, or -1 when nothing matches. */
int tern_route_lookup(const struct tern_route_table *t, uint32_t dst, struct tern_nexthop *nh);
uint32_t tern_prefix_mask(unsigned prefixlen);

#endif
