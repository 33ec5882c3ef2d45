#include "link/ether.h"

#include <string.h>

#include "core/assert.h"
#include "core/stack.h"
#include "link/arp.h"
#include "net/ipv4.h"
#include "runtime/rt.h"
#include "wire/eth.h"
#include "wire/ipv4.h"

const uint8_t tern_eth_bcast_addr[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

void tern_ether_input_take(struct tern_stack *s, struct tern_iface *ifp, struct tern_pkt *p)
{
    struct tern_eth_hdr eh;
    if (tern_eth_parse(tern_pkt_data(p), p->len, &eh) < 0) {
        tern_drop_take(s, p, TERN_C_DROP_ETH_TOO_SHORT);
        return;
    }
    bool group = tern_eth_is_group(eh.dst);
    /* No multicast groups are joined yet: take broadcast, not multicast. */
    if (group ? !tern_eth_is_bcast(eh.dst) : memcmp(eh.dst, ifp->mac, 6) != 0) {
        tern_drop_take(s, p, TERN_C_DROP_ETH_NOT_FOR_US);
        return;
    }
    p->ifindex = (uint16_t)ifp->index;
    p->link_bcast = group;
    p->stamp = s->now;
    tern_pkt_pull(p, TERN_ETH_HLEN);
    switch (eh.type) {
    case TERN_ETHERTYPE_IPV4:
        tern_ipv4_input_take(s, ifp, p);
        break;
    case TERN_ETHERTYPE_ARP:
        tern_arp_input_take(s, ifp, p);
        break;
    default:
        tern_drop_take(s, p, TERN_C_DROP_ETH_UNKNOWN_TYPE);
        break;
    }
}

static void send_one(struct tern_stack *s, struct tern_iface *ifp, const struct tern_frame *f)
{
    if (s->capture)
        tern_capture_frame(s, f->data, f->len);
    if (tern_link_send(ifp->link, f, 1, s->now) == 1)
        tern_count(s, TERN_C_LINK_TX_FRAMES);
    else
        tern_count(s, TERN_C_DROP_LINK_TX_REFUSED);
}

/* The frame a packet holds (f: its data, flags and gso_size), to the
 * link now, or queued to be written once the stack's lock is dropped
 * (runtime/tx.c); counted either way once the link has answered. */
static void transmit_take(struct tern_stack *s, struct tern_iface *ifp, struct tern_pkt *p,
                          const struct tern_frame *f)
{
    if (!tern_rt_tx_deferred(s, ifp->link)) {
        send_one(s, ifp, f);
        tern_pkt_free_take(s, p);
        return;
    }
    if (s->capture)
        tern_capture_frame(s, f->data, f->len);
    p->csum = (f->flags & TERN_FRAME_CSUM_PENDING) ? TERN_PKT_CSUM_PENDING : TERN_PKT_CSUM_NONE;
    p->gso_size = f->gso_size;
    p->ifindex = (uint16_t)ifp->index;
    tern_list_push_back(&s->tx_pending, &p->node);
}

struct split_ctx {
    struct tern_stack *s;
    struct tern_iface *ifp;
};

static bool send_split(void *arg, const struct tern_frame *seg)
{
    struct split_ctx *c = arg;
    tern_count(c->s, TERN_C_LINK_TX_GSO_SPLIT);
    if (!tern_rt_tx_deferred(c->s, c->ifp->link)) {
        send_one(c->s, c->ifp, seg);
        return true;
    }
    /* Queued: the segment needs a packet of its own. */
    struct tern_pkt *p = tern_pkt_alloc(c->s, 0, seg->len);
    if (!p)
        return false; /* counted by the pool; TCP retransmits */
    memcpy(tern_pkt_data(p), seg->data, seg->len);
    transmit_take(c->s, c->ifp, p, &(struct tern_frame){.data = tern_pkt_data(p), .len = seg->len,
                                                         .cap = seg->len, .flags = seg->flags});
    return true;
}

/* A TCP super-segment (pkt->gso_size): whole to a link that cuts it up
 * itself, cut up here for any other or when a capture must see the
 * frames as they go (as Linux's GSO does for a device without TSO). */
static void send_super_take(struct tern_stack *s, struct tern_iface *ifp, struct tern_pkt *p,
                            struct tern_frame *f)
{
    uint32_t caps = ifp->link->info.caps;
    f->gso_size = p->gso_size;
    f->flags = TERN_FRAME_CSUM_PENDING;
    if ((caps & TERN_LINK_CAP_TSO) && !s->capture) {
        tern_count(s, TERN_C_LINK_TX_GSO);
        transmit_take(s, ifp, p, f);
        return;
    }
    bool keep_pending = (caps & TERN_LINK_CAP_TX_CSUM) && !s->capture;
    struct tern_pkt *scratch = tern_pkt_alloc(s, 0, (size_t)ifp->mtu + TERN_ETH_HLEN);
    if (!scratch) {
        tern_drop_take(s, p, TERN_C_DROP_LINK_TX_REFUSED);
        return;
    }
    struct split_ctx c = {s, ifp};
    size_t room = (size_t)ifp->mtu + TERN_ETH_HLEN;
    size_t n = tern_frame_gso_split(f, tern_pkt_data(scratch), room, keep_pending, send_split, &c);
    tern_pkt_free_take(s, scratch);
    if (n == 0) {
        /* Segments the MTU cannot hold: a bug in whoever sized them. */
        tern_drop_take(s, p, TERN_C_DROP_LINK_GSO_TOO_BIG);
        return;
    }
    tern_pkt_free_take(s, p);
}

void tern_ether_output_take(struct tern_stack *s, struct tern_iface *ifp, const uint8_t dst[6],
                            uint16_t type, struct tern_pkt *p)
{
    uint8_t *h = tern_pkt_push(p, TERN_ETH_HLEN);
    if (!h) {
        /* Every packet is built with TERN_PKT_HEADROOM; running out of it
         * is a bug in the layer that built it. */
        TERN_ASSERT(s, h != NULL, "no headroom for the Ethernet header (off %u)", p->off);
    }
    tern_eth_emit(h, dst, ifp->mac, type);
    struct tern_frame f = {.data = tern_pkt_data(p), .len = p->len, .cap = p->len};
    if (p->gso_size) {
        send_super_take(s, ifp, p, &f);
        return;
    }
    if (p->csum == TERN_PKT_CSUM_PENDING) {
        /* The checksum is left to the link only where it can be (its
         * caps) and nobody reads these bytes on the way (a capture). */
        if ((ifp->link->info.caps & TERN_LINK_CAP_TX_CSUM) && !s->capture)
            f.flags = TERN_FRAME_CSUM_PENDING;
        else
            tern_ipv4_fill_l4_csum(f.data + TERN_ETH_HLEN, f.len - TERN_ETH_HLEN);
    }
    transmit_take(s, ifp, p, &f);
}
