#include "net/ipv4.h"

#include <errno.h>
#include <string.h>

#include "core/stack.h"
#include "link/arp.h"
#include "link/ether.h"
#include "net/icmp.h"
#include "net/reasm.h"
#include "transport/tcp/tcp.h"
#include "transport/udp.h"
#include "wire/eth.h"
#include "wire/ipv4.h"

static int route_cached(struct tern_stack *s, uint32_t dst,
                        const struct tern_route_cache_entry **out);

void tern_ipv4_init(struct tern_stack *s) { tern_list_init(&s->loopback_q); }

void tern_ipv4_destroy(struct tern_stack *s)
{
    tern_pkt_queue_purge_take(s, &s->loopback_q);
    s->loopback_bytes = 0;
}

static bool dst_accepted(struct tern_stack *s, struct tern_iface *ifp, uint32_t dst)
{
    /* The weak host model (RFC 1122 section 3.3.4.2), as Linux: any of our
     * addresses on any interface, plus broadcasts of the arrival one. */
    return tern_iface_is_local(s, dst) || tern_iface_is_bcast(ifp, dst);
}

static void deliver_take(struct tern_stack *s, struct tern_pkt *p)
{
    tern_count(s, TERN_C_IP_RX_DELIVERED);
    switch (p->ip_proto) {
    case TERN_IPPROTO_UDP:
        tern_udp_input_take(s, p);
        break;
    case TERN_IPPROTO_ICMP:
        tern_icmp_input_take(s, p);
        break;
    case TERN_IPPROTO_TCP:
        tern_tcp_input_take(s, p);
        break;
    default:
        /* RFC 1122 section 3.2.2.1: protocol unreachable. */
        tern_icmp_send_error(s, p, TERN_ICMP_UNREACH, TERN_ICMP_UNREACH_PROTO, 0);
        tern_drop_take(s, p, TERN_C_DROP_IP_UNKNOWN_PROTO);
        break;
    }
}

void tern_ipv4_input_take(struct tern_stack *s, struct tern_iface *ifp, struct tern_pkt *p)
{
    struct tern_ipv4_hdr h;
    tern_count(s, TERN_C_IP_RX);
    switch (tern_ipv4_parse(tern_pkt_data(p), p->len, &h)) {
    case TERN_IPV4_OK:
        break;
    case TERN_IPV4_TOO_SHORT:
        tern_drop_take(s, p, TERN_C_DROP_IP_TOO_SHORT);
        return;
    case TERN_IPV4_BAD_VERSION:
        tern_drop_take(s, p, TERN_C_DROP_IP_BAD_VERSION);
        return;
    case TERN_IPV4_BAD_HLEN:
        tern_drop_take(s, p, TERN_C_DROP_IP_BAD_HEADER_LEN);
        return;
    case TERN_IPV4_BAD_CHECKSUM:
        tern_drop_take(s, p, TERN_C_DROP_IP_BAD_CHECKSUM);
        return;
    }
    /* RFC 1122 section 3.2.1.3: a source that is a broadcast, multicast
     * or loopback address is bogus (0.0.0.0 is allowed, for DHCP-style
     * clients). */
    if (h.src == TERN_IPV4_BROADCAST || tern_ipv4_is_multicast(h.src) ||
        tern_ipv4_is_loopback(h.src) || tern_iface_is_bcast(ifp, h.src)) {
        tern_drop_take(s, p, TERN_C_DROP_IP_BAD_SOURCE);
        return;
    }
    if (!dst_accepted(s, ifp, h.dst)) {
        tern_drop_take(s, p, TERN_C_DROP_IP_NOT_FOR_US);
        return;
    }
    /* Trim Ethernet padding past the datagram, keep the header in the
     * buffer for ICMP quotes, and move data to the payload. */
    tern_pkt_trim(p, h.total_len);
    p->l3_off = p->off;
    tern_pkt_pull(p, h.hlen);
    p->ip_src.s_addr = h.src;
    p->ip_dst.s_addr = h.dst;
    p->ip_proto = h.proto;
    p->ip_ttl = h.ttl;
    p->ip_tos = h.tos;
    p->link_bcast = p->link_bcast || tern_iface_is_bcast(ifp, h.dst);
    if (h.mf || h.frag_off) {
        p = tern_reasm_input_take(s, p, h.id, h.frag_off, h.mf);
        if (!p)
            return;
    }
    deliver_take(s, p);
}

int tern_ipv4_route_src(struct tern_stack *s, uint32_t dst, uint32_t *src, int *ifindex)
{
    struct tern_nexthop nh;
    struct tern_iface *ifp = NULL;
    /* RFC 1122 section 3.2.1.3: 0.0.0.0 is never a destination on the
     * wire and 127/8 never leaves the host. There is no loopback
     * interface yet, so 127/8 is unreachable. */
    if (dst == 0 || tern_ipv4_is_loopback(dst))
        return -ENETUNREACH;
    if (dst == TERN_IPV4_BROADCAST) {
        /* Limited broadcast leaves by the interface of the source address
         * if one is bound, else by the default route's, else the first. */
        ifp = *src ? tern_iface_by_addr(s, *src) : NULL;
        if (!ifp && tern_route_lookup(&s->routes, 0, &nh) == 0)
            ifp = tern_iface_get(s, nh.ifindex);
        for (int i = 0; !ifp && i < TERN_MAX_IFACES; i++)
            if (s->ifaces[i].used && s->ifaces[i].naddrs)
                ifp = &s->ifaces[i];
    } else if (tern_iface_is_local(s, dst)) {
        ifp = tern_iface_by_addr(s, dst);
    } else if (tern_route_lookup(&s->routes, dst, &nh) == 0) {
        ifp = tern_iface_get(s, nh.ifindex);
    }
    if (!ifp)
        return -ENETUNREACH;
    if (*src == 0)
        *src = tern_iface_src_for(ifp, dst);
    if (*src == 0)
        return -EADDRNOTAVAIL;
    if (ifindex)
        *ifindex = ifp->index;
    return 0;
}

uint32_t tern_ipv4_this_host(struct tern_stack *s)
{
    for (int i = 0; i < TERN_MAX_IFACES; i++)
        if (s->ifaces[i].used && s->ifaces[i].naddrs)
            return s->ifaces[i].addrs[0].addr;
    return 0;
}

bool tern_ipv4_tso_to(struct tern_stack *s, uint32_t dst)
{
    const struct tern_route_cache_entry *e;
    if (dst == TERN_IPV4_BROADCAST || route_cached(s, dst, &e) < 0)
        return false;
    if (e->local)
        return true; /* the loopback queue has no MTU */
    const struct tern_iface *ifp = tern_iface_get(s, e->ifindex);
    return (ifp->link->info.caps & TERN_LINK_CAP_TSO) && !s->capture;
}

uint32_t tern_ipv4_mtu_to(struct tern_stack *s, uint32_t dst)
{
    uint32_t src = 0;
    int ifindex = 0;
    const struct tern_route_cache_entry *e;
    if (dst == TERN_IPV4_BROADCAST) {
        if (tern_ipv4_route_src(s, dst, &src, &ifindex) < 0)
            return 0;
    } else {
        if (route_cached(s, dst, &e) < 0)
            return 0;
        ifindex = e->ifindex;
    }
    return tern_iface_get(s, ifindex)->mtu;
}

static uint16_t next_ip_id(struct tern_stack *s, uint32_t dst)
{
    if (!s->ipid_last_valid || s->ipid_last_dst != dst) {
        uint32_t key[1] = {dst};
        s->ipid_last_slot = (uint8_t)tern_siphash(&s->key_ipid, key, sizeof(key));
        s->ipid_last_dst = dst;
        s->ipid_last_valid = true;
    }
    return s->ipid_table[s->ipid_last_slot]++;
}

/* Where a datagram leaving by ifp for dst goes on the link. */
struct link_dst {
    uint32_t hop; /* the neighbour to resolve */
    bool bcast;   /* to the link's broadcast address instead */
};

static struct link_dst link_dst_for(struct tern_stack *s, struct tern_iface *ifp, uint32_t dst)
{
    struct link_dst ld = {.hop = dst, .bcast = tern_iface_is_bcast(ifp, dst)};
    struct tern_nexthop nh;
    if (!ld.bcast && tern_route_lookup(&s->routes, dst, &nh) == 0 && nh.ifindex == ifp->index)
        ld.hop = nh.hop;
    return ld;
}

/* Hand one finished datagram (data = IP header) to the neighbour layer. */
static void send_datagram_take(struct tern_stack *s, struct tern_iface *ifp, struct link_dst ld,
                               struct tern_pkt *p)
{
    tern_count(s, TERN_C_IP_TX);
    if (ld.bcast) {
        tern_ether_output_take(s, ifp, tern_eth_bcast_addr, TERN_ETHERTYPE_IPV4, p);
        return;
    }
    tern_arp_output_take(s, ifp, ld.hop, p);
}

/* The output decision for a unicast dst with no interface asked for:
 * from the cache when the routes have not changed since, else made and
 * remembered. A negative errno when there is no route (nothing is cached
 * then, so a route added later is found). */
static int route_cached(struct tern_stack *s, uint32_t dst,
                        const struct tern_route_cache_entry **out)
{
    struct tern_route_cache_entry *e =
        &s->route_cache.e[(dst * 0x9e3779b1u) >> (32 - 6)]; /* 64 slots */
    _Static_assert(TERN_ROUTE_CACHE_SLOTS == 64, "the slot hash takes 6 bits");
    *out = e;
    if (e->gen == s->route_gen && e->dst == dst)
        return 0;
    uint32_t src = 0;
    int ifindex = 0;
    int rc = tern_ipv4_route_src(s, dst, &src, &ifindex);
    if (rc < 0)
        return rc;
    struct tern_iface *ifp = tern_iface_get(s, ifindex);
    struct link_dst ld = link_dst_for(s, ifp, dst);
    *e = (struct tern_route_cache_entry){.dst = dst, .gen = s->route_gen, .src = src,
                                         .hop = ld.hop, .ifindex = (uint16_t)ifindex,
                                         .local = tern_iface_is_local(s, dst), .bcast = ld.bcast};
    return 0;
}

/* RFC 791 section 3.2 "Fragmentation": every fragment but the last
 * carries a multiple of 8 data bytes. Options are never sent, so every
 * fragment has the same 20-byte header. */
static int fragment_take(struct tern_stack *s, struct tern_iface *ifp, struct link_dst ld,
                         struct tern_pkt *p, struct tern_ipv4_hdr *h)
{
    size_t chunk = ((ifp->mtu - TERN_IPV4_HLEN) / 8) * 8;
    size_t total = p->len;
    if (p->csum == TERN_PKT_CSUM_PENDING) {
        /* The fragments carry pieces of the datagram's checksum, so it
         * is filled now, against the header it will have whole. */
        h->total_len = (uint16_t)(TERN_IPV4_HLEN + total);
        uint8_t *hdr = tern_pkt_push(p, TERN_IPV4_HLEN);
        tern_ipv4_emit(hdr, h);
        tern_ipv4_fill_l4_csum(hdr, p->len);
        tern_pkt_pull(p, TERN_IPV4_HLEN);
    }
    for (size_t off = 0; off < total; off += chunk) {
        size_t n = total - off < chunk ? total - off : chunk;
        struct tern_pkt *f = tern_pkt_alloc(s, TERN_PKT_HEADROOM, TERN_IPV4_HLEN + n);
        if (!f) {
            tern_pkt_free_take(s, p);
            return -ENOBUFS;
        }
        h->total_len = (uint16_t)(TERN_IPV4_HLEN + n);
        h->frag_off = (uint16_t)off;
        h->mf = off + n < total;
        tern_ipv4_emit(tern_pkt_data(f), h);
        memcpy(tern_pkt_data(f) + TERN_IPV4_HLEN, tern_pkt_data(p) + off, n);
        tern_count(s, TERN_C_IP_FRAG_CREATED);
        send_datagram_take(s, ifp, ld, f);
    }
    tern_pkt_free_take(s, p);
    return 0;
}

int tern_ipv4_output_take(struct tern_stack *s, struct tern_pkt *p, const struct tern_ipv4_out *o)
{
    uint32_t src = o->src;
    int ifindex = o->ifindex;
    int rc = 0;
    struct tern_iface *ifp;
    struct link_dst ld;
    bool local;
    if (ifindex == 0 && o->dst != TERN_IPV4_BROADCAST) {
        const struct tern_route_cache_entry *e;
        rc = route_cached(s, o->dst, &e);
        if (rc < 0) {
            tern_drop_take(s, p, TERN_C_DROP_IP_NO_ROUTE);
            return rc;
        }
        ifp = tern_iface_get(s, e->ifindex);
        if (src == 0)
            src = e->src;
        ld = (struct link_dst){.hop = e->hop, .bcast = e->bcast};
        local = e->local;
    } else {
        if (ifindex == 0)
            rc = tern_ipv4_route_src(s, o->dst, &src, &ifindex);
        ifp = tern_iface_get(s, ifindex);
        if (rc == 0 && (o->dst == 0 || tern_ipv4_is_loopback(o->dst)))
            rc = -ENETUNREACH; /* an explicit ifindex does not make them sendable */
        if (rc < 0 || !ifp) {
            tern_drop_take(s, p, TERN_C_DROP_IP_NO_ROUTE);
            return rc < 0 ? rc : -ENETUNREACH;
        }
        if (src == 0)
            src = tern_iface_src_for(ifp, o->dst);
        ld = link_dst_for(s, ifp, o->dst);
        local = tern_iface_is_local(s, o->dst);
    }
    if (p->len + TERN_IPV4_HLEN > 65535) {
        tern_pkt_free_take(s, p);
        return -EMSGSIZE;
    }
    struct tern_ipv4_hdr h = {
        .hlen = TERN_IPV4_HLEN, .tos = o->tos, .total_len = (uint16_t)(p->len + TERN_IPV4_HLEN),
        .id = next_ip_id(s, o->dst), .df = o->df, .ttl = o->ttl, .proto = o->proto,
        .src = src, .dst = o->dst};
    if (local) {
        /* To ourselves: no link involved, no MTU; queued for the next
         * poll so that input never runs inside the sender's call. */
        uint32_t charge = p->cap + (uint32_t)sizeof(*p);
        if (s->loopback_bytes + charge > TERN_LOOPBACK_MAX_BYTES) {
            /* Bounded like any queue; the sender sees a full buffer. */
            tern_drop_take(s, p, TERN_C_DROP_IP_LOOPBACK_FULL);
            return -ENOBUFS;
        }
        uint8_t *hdr = tern_pkt_push(p, TERN_IPV4_HLEN);
        tern_ipv4_emit(hdr, &h);
        p->ifindex = (uint16_t)ifp->index; /* gso_size stays: TCP input counts segments */
        tern_count(s, TERN_C_IP_TX);
        s->loopback_bytes += charge;
        tern_list_push_back(&s->loopback_q, &p->node);
        return 0;
    }
    if (p->gso_size) {
        /* A TCP super-segment: each of its segments fits the MTU (TCP
         * sized them so) and takes an identification of its own, as
         * Linux's segmentation numbers them. */
        uint32_t thl = (tern_pkt_data(p)[12] >> 4) * 4u;
        uint32_t payload = p->len > thl ? p->len - thl : 1;
        s->ipid_table[s->ipid_last_slot] += (uint16_t)((payload - 1) / p->gso_size);
    }
    if (p->len + TERN_IPV4_HLEN <= ifp->mtu || p->gso_size) {
        uint8_t *hdr = tern_pkt_push(p, TERN_IPV4_HLEN);
        tern_ipv4_emit(hdr, &h);
        send_datagram_take(s, ifp, ld, p);
        return 0;
    }
    if (o->df) {
        tern_drop_take(s, p, TERN_C_DROP_IP_DF_TOO_BIG);
        return -EMSGSIZE;
    }
    return fragment_take(s, ifp, ld, p, &h);
}

bool tern_ipv4_loopback_pending(const struct tern_stack *s) { return !tern_list_empty(&s->loopback_q); }

void tern_ipv4_loopback_run(struct tern_stack *s)
{
    /* Only what is queued now: anything the deliveries send back to us
     * waits for the next poll, so a ping-pong with ourselves cannot spin. */
    struct tern_list batch;
    tern_list_splice_init(&batch, &s->loopback_q);
    struct tern_list *n;
    while ((n = tern_list_pop_front(&batch)) != NULL) {
        struct tern_pkt *p = tern_pkt_of(n);
        s->loopback_bytes -= p->cap + (uint32_t)sizeof(*p);
        tern_ipv4_input_take(s, tern_iface_get(s, p->ifindex), p);
    }
}
