/* Interfaces: a link, its MAC address and its IPv4 addresses. */
#ifndef TERN_NET_IFACE_H
#define TERN_NET_IFACE_H

#include <stdint.h>
#include <stdbool.h>

#include <tern/link.h>

#define TERN_MAX_IFACES 16
#define TERN_MAX_IF_ADDRS 8

/* Addresses are kept in host byte order inside the stack; the wire code
 * converts at the edge. */
struct tern_ifaddr {
    uint32_t addr;
    uint32_t mask;
    uint32_t bcast;
    uint8_t prefixlen;
};

struct tern_iface {
    bool used;
    int index;
    struct tern_link *link; /* borrowed */
    uint8_t mac[6];
    uint32_t mtu;
    unsigned naddrs;
    struct tern_ifaddr addrs[TERN_MAX_IF_ADDRS];
};

struct tern_stack;
struct tern_iface *tern_iface_get(struct tern_stack *s, int ifindex);
/* The interface that owns addr (host order), or NULL. */
struct tern_iface *tern_iface_by_addr(struct tern_stack *s, uint32_t addr);
/* Is addr (host order) one of ours, or a broadcast we accept on ifp? */
bool tern_iface_is_local(struct tern_stack *s, uint32_t addr);
/* Interfaces, addresses or routes changed: cached output decisions are
 * stale (s->route_gen). */
void tern_route_changed(struct tern_stack *s);
bool tern_iface_is_bcast(const struct tern_iface *ifp, uint32_t addr);
/* The address to send from on ifp towards dst (host order), 0 if none. */
uint32_t tern_iface_src_for(const struct tern_iface *ifp, uint32_t dst);

#endif
