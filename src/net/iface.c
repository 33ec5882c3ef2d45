#include "net/iface.h"

#include <errno.h>
#include <string.h>

#include "core/stack.h"
#include "link/arp.h"
#include "net/route.h"
#include "runtime/rt.h"
#include "sock/api_internal.h"
#include "wire/ipv4.h"

struct tern_iface *tern_iface_get(struct tern_stack *s, int ifindex)
{
    if (ifindex < 1 || ifindex > TERN_MAX_IFACES || !s->ifaces[ifindex - 1].used)
        return NULL;
    return &s->ifaces[ifindex - 1];
}

void tern_route_changed(struct tern_stack *s)
{
    if (++s->route_gen == 0) {
        /* Wrapped: an entry as old as 2^32 changes must not pass. */
        memset(&s->route_cache, 0, sizeof(s->route_cache));
        s->route_gen = 1;
    }
}

struct tern_iface *tern_iface_by_addr(struct tern_stack *s, uint32_t addr)
{
    for (int i = 0; i < s->nifaces; i++) {
        struct tern_iface *ifp = &s->ifaces[i];
        if (!ifp->used)
            continue;
        for (unsigned a = 0; a < ifp->naddrs; a++)
            if (ifp->addrs[a].addr == addr)
                return ifp;
    }
    return NULL;
}

bool tern_iface_is_bcast(const struct tern_iface *ifp, uint32_t addr)
{
    if (addr == TERN_IPV4_BROADCAST)
        return true;
    for (unsigned a = 0; a < ifp->naddrs; a++)
        if (ifp->addrs[a].prefixlen < 31 && ifp->addrs[a].bcast == addr)
            return true;
    return false;
}

bool tern_iface_is_local(struct tern_stack *s, uint32_t addr)
{
    return tern_iface_by_addr(s, addr) != NULL;
}

uint32_t tern_iface_src_for(const struct tern_iface *ifp, uint32_t dst)
{
    /* Prefer an address on the destination's subnet, else the first. */
    for (unsigned a = 0; a < ifp->naddrs; a++)
        if ((dst & ifp->addrs[a].mask) == (ifp->addrs[a].addr & ifp->addrs[a].mask))
            return ifp->addrs[a].addr;
    return ifp->naddrs ? ifp->addrs[0].addr : 0;
}

int tern_if_add(struct tern_stack *s, struct tern_link *link, const uint8_t *mac)
{
    struct tern_api_guard g = tern_api_enter(s);
    if (!link)
        return tern_api_fail(&g, EINVAL);
    for (int i = 0; i < TERN_MAX_IFACES; i++) {
        struct tern_iface *ifp = &s->ifaces[i];
        if (ifp->used) {
            if (ifp->link == link)
                return tern_api_fail(&g, EEXIST);
            continue;
        }
        memset(ifp, 0, sizeof(*ifp));
        ifp->used = true;
        ifp->index = i + 1;
        ifp->link = link;
        ifp->mtu = link->info.mtu ? link->info.mtu : 1500;
        if (ifp->mtu < 68 || ifp->mtu > 65535) {
            ifp->used = false;
            return tern_api_fail(&g, EINVAL);
        }
        if (mac) {
            memcpy(ifp->mac, mac, 6);
        } else {
            tern_rng_fill(&s->rng, ifp->mac, 6);
            ifp->mac[0] = (uint8_t)((ifp->mac[0] & 0xfc) | 0x02); /* local, unicast */
        }
        tern_rt_watch_link(s, tern_link_pollfd(link)); /* threaded mode: wake on frames */
        s->nifaces = i + 1;
        tern_route_changed(s);
        return tern_api_return(&g, ifp->index);
    }
    return tern_api_fail(&g, ENOSPC);
}

int tern_if_get_mac(struct tern_stack *s, int ifindex, uint8_t mac[6])
{
    struct tern_api_guard g = tern_api_enter(s);
    struct tern_iface *ifp = tern_iface_get(s, ifindex);
    if (!ifp)
        return tern_api_fail(&g, ENODEV);
    memcpy(mac, ifp->mac, 6);
    return tern_api_return(&g, 0);
}

int tern_if_addr_add(struct tern_stack *s, int ifindex, struct in_addr in, unsigned prefixlen)
{
    struct tern_api_guard g = tern_api_enter(s);
    struct tern_iface *ifp = tern_iface_get(s, ifindex);
    uint32_t addr = ntohl(in.s_addr);
    if (!ifp)
        return tern_api_fail(&g, ENODEV);
    if (prefixlen > 32 || addr == 0 || addr == TERN_IPV4_BROADCAST ||
        tern_ipv4_is_multicast(addr) || tern_ipv4_is_loopback(addr))
        return tern_api_fail(&g, EINVAL);
    for (unsigned a = 0; a < ifp->naddrs; a++)
        if (ifp->addrs[a].addr == addr)
            return tern_api_fail(&g, EEXIST);
    if (ifp->naddrs == TERN_MAX_IF_ADDRS)
        return tern_api_fail(&g, ENOSPC);
    uint32_t mask = tern_prefix_mask(prefixlen);
    if (prefixlen < 32) {
        int rc = tern_route_insert(&s->routes, addr, prefixlen, 0, ifindex);
        if (rc < 0 && rc != -EEXIST)
            return tern_api_fail(&g, -rc);
    }
    ifp->addrs[ifp->naddrs++] = (struct tern_ifaddr){
        .addr = addr, .mask = mask, .bcast = addr | ~mask, .prefixlen = (uint8_t)prefixlen};
    tern_route_changed(s);
    tern_arp_announce(s, ifp, addr);
    return tern_api_return(&g, 0);
}

int tern_if_addr_del(struct tern_stack *s, int ifindex, struct in_addr in)
{
    struct tern_api_guard g = tern_api_enter(s);
    struct tern_iface *ifp = tern_iface_get(s, ifindex);
    uint32_t addr = ntohl(in.s_addr);
    if (!ifp)
        return tern_api_fail(&g, ENODEV);
    for (unsigned a = 0; a < ifp->naddrs; a++) {
        if (ifp->addrs[a].addr != addr)
            continue;
        struct tern_ifaddr gone = ifp->addrs[a];
        ifp->addrs[a] = ifp->addrs[--ifp->naddrs];
        /* The connected route goes only with the last address on it. */
        bool shared = false;
        for (unsigned o = 0; o < ifp->naddrs; o++)
            shared |= ifp->addrs[o].prefixlen == gone.prefixlen &&
                      (ifp->addrs[o].addr & gone.mask) == (gone.addr & gone.mask);
        if (!shared)
            tern_route_remove_ifaddr(&s->routes, gone.addr, gone.prefixlen, ifindex);
        tern_route_changed(s);
        return tern_api_return(&g, 0);
    }
    return tern_api_fail(&g, EADDRNOTAVAIL);
}

int tern_route_add(struct tern_stack *s, struct in_addr dst, unsigned prefixlen,
                   struct in_addr gw, int ifindex)
{
    struct tern_api_guard g = tern_api_enter(s);
    if (!tern_iface_get(s, ifindex))
        return tern_api_fail(&g, ENODEV);
    int rc = tern_route_insert(&s->routes, ntohl(dst.s_addr), prefixlen, ntohl(gw.s_addr),
                               ifindex);
    if (rc < 0)
        return tern_api_fail(&g, -rc);
    tern_route_changed(s);
    return tern_api_return(&g, 0);
}

int tern_route_del(struct tern_stack *s, struct in_addr dst, unsigned prefixlen)
{
    struct tern_api_guard g = tern_api_enter(s);
    int rc = tern_route_remove(&s->routes, ntohl(dst.s_addr), prefixlen);
    if (rc < 0)
        return tern_api_fail(&g, -rc);
    tern_route_changed(s);
    return tern_api_return(&g, 0);
}
