#include "transport/ping.h"

#include <errno.h>

#include "buf/iov.h"
#include "core/stack.h"
#include "net/ipv4.h"
#include "wire/bytes.h"
#include "wire/icmp.h"
#include "wire/ipv4.h"

void tern_ping_input_take(struct tern_stack *s, struct tern_pkt *p, uint16_t ident)
{
    struct tern_inpcb *pcb =
        tern_pcb_lookup(s, &s->ping_pcbs, p->ip_dst.s_addr, ident, p->ip_src.s_addr, 0);
    if (!pcb) {
        tern_drop_take(s, p, TERN_C_DROP_ICMP_NO_PING_SOCKET);
        return;
    }
    p->src_port = 0;
    tern_sock_rcvq_append_take(s, tern_sock_of_pcb(pcb), p);
}

enum tern_icmp_err_fate tern_ping_error(struct tern_stack *s, uint32_t laddr, uint16_t ident,
                                        uint32_t faddr, int err, bool hard)
{
    /* Linux's ping_err follows the same rule as UDP. */
    return tern_sock_icmp_error(s, tern_pcb_lookup(s, &s->ping_pcbs, laddr, ident, faddr, 0), err,
                                hard);
}

int tern_ping_output(struct tern_stack *s, struct tern_socket *so, const struct iovec *iov,
                     size_t iovcnt, size_t len, uint32_t src, uint32_t dst, int ifindex)
{
    struct tern_pkt *p = tern_pkt_alloc(s, TERN_PKT_HEADROOM, len);
    if (!p)
        return -ENOBUFS;
    uint8_t *m = tern_pkt_data(p);
    tern_iov_gather(m, iov, iovcnt, len);
    /* The identifier is the socket's; the user's sequence number stays. */
    tern_icmp_emit(m, len, TERN_ICMP_ECHO, 0,
                   ((uint32_t)so->pcb.lport << 16) | tern_get16(m + 6));
    tern_count(s, TERN_C_ICMP_TX);
    struct tern_ipv4_out o = {.src = src, .dst = dst, .proto = TERN_IPPROTO_ICMP,
                              .ttl = so->ttl, .tos = so->tos, .ifindex = ifindex};
    return tern_ipv4_output_take(s, p, &o);
}
