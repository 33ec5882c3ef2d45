#include "transport/udp.h"

#include <errno.h>

#include "buf/iov.h"
#include "core/stack.h"
#include "net/icmp.h"
#include "net/ipv4.h"
#include "wire/ipv4.h"
#include "wire/udp.h"

struct bcast_ctx {
    struct tern_stack *s;
    struct tern_pkt *p;
    struct tern_socket *last;
};

static bool pcb_takes_bcast(const struct tern_inpcb *pcb, const struct tern_pkt *p)
{
    /* As Linux's __udp_is_mcast_sock: a socket bound to another unicast
     * address, or connected to another peer, does not get it. */
    if (pcb->laddr != 0 && pcb->laddr != p->ip_dst.s_addr)
        return false;
    if (pcb->connected && (pcb->faddr != p->ip_src.s_addr || pcb->fport != p->src_port))
        return false;
    return true;
}

static void bcast_one(struct tern_inpcb *pcb, void *arg)
{
    struct bcast_ctx *c = arg;
    if (!pcb_takes_bcast(pcb, c->p))
        return;
    /* Each earlier match gets a copy; the last gets the original. */
    if (c->last) {
        struct tern_pkt *copy = tern_pkt_copy(c->s, c->p, 0);
        if (copy)
            tern_sock_rcvq_append_take(c->s, c->last, copy);
    }
    c->last = tern_sock_of_pcb(pcb);
}

void tern_udp_input_take(struct tern_stack *s, struct tern_pkt *p)
{
    struct tern_udp_hdr uh;
    tern_count(s, TERN_C_UDP_RX);
    uint32_t src = p->ip_src.s_addr, dst = p->ip_dst.s_addr;
    switch (tern_udp_parse(tern_pkt_data(p), p->len, src, dst,
                           p->csum != TERN_PKT_CSUM_PENDING, &uh)) {
    case TERN_UDP_OK:
        break;
    case TERN_UDP_TOO_SHORT:
        tern_drop_take(s, p, TERN_C_DROP_UDP_TOO_SHORT);
        return;
    case TERN_UDP_BAD_CHECKSUM:
        tern_drop_take(s, p, TERN_C_DROP_UDP_BAD_CHECKSUM);
        return;
    }
    tern_pkt_trim(p, uh.len);
    tern_pkt_pull(p, TERN_UDP_HLEN);
    p->src_port = uh.sport;
    if (p->link_bcast) {
        struct bcast_ctx c = {.s = s, .p = p};
        tern_pcb_for_each_bound(&s->udp_pcbs, uh.dport, bcast_one, &c);
        if (c.last)
            tern_sock_rcvq_append_take(s, c.last, p);
        else
            tern_drop_take(s, p, TERN_C_DROP_UDP_NO_PORT); /* no ICMP for broadcasts */
        return;
    }
    struct tern_inpcb *pcb = tern_pcb_lookup(s, &s->udp_pcbs, dst, uh.dport, src, uh.sport);
    if (!pcb) {
        /* RFC 1122 section 4.1.3.1: port unreachable. */
        tern_icmp_send_error(s, p, TERN_ICMP_UNREACH, TERN_ICMP_UNREACH_PORT, 0);
        tern_drop_take(s, p, TERN_C_DROP_UDP_NO_PORT);
        return;
    }
    tern_sock_rcvq_append_take(s, tern_sock_of_pcb(pcb), p);
}

enum tern_icmp_err_fate tern_udp_error(struct tern_stack *s, uint32_t laddr, uint16_t lport,
                                       uint32_t faddr, uint16_t fport, int err, bool hard)
{
    return tern_sock_icmp_error(s, tern_pcb_lookup(s, &s->udp_pcbs, laddr, lport, faddr, fport),
                                err, hard);
}

int tern_udp_output(struct tern_stack *s, struct tern_socket *so, const struct iovec *iov,
                    size_t iovcnt, size_t len, uint32_t src, uint32_t dst, uint16_t dport,
                    int ifindex)
{
    struct tern_pkt *p = tern_pkt_alloc(s, TERN_PKT_HEADROOM, TERN_UDP_HLEN + len);
    if (!p)
        return -ENOBUFS;
    uint8_t *d = tern_pkt_data(p);
    tern_iov_gather(d + TERN_UDP_HLEN, iov, iovcnt, len);
    tern_udp_emit_nocsum(d, TERN_UDP_HLEN + len, so->pcb.lport, dport);
    p->csum = TERN_PKT_CSUM_PENDING;
    tern_count(s, TERN_C_UDP_TX);
    struct tern_ipv4_out o = {.src = src, .dst = dst, .proto = TERN_IPPROTO_UDP,
                              .ttl = so->ttl, .tos = so->tos, .ifindex = ifindex};
    return tern_ipv4_output_take(s, p, &o);
}
