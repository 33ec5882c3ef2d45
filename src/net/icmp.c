#include "net/icmp.h"

#include <errno.h>
#include <string.h>

#include "core/stack.h"
#include "net/ipv4.h"
#include "transport/ping.h"
#include "transport/tcp/tcp.h"
#include "transport/udp.h"
#include "wire/bytes.h"
#include "wire/ipv4.h"
#include "wire/udp.h"

/* RFC 1812 section 4.3.2.3: quote as much of the original as fits in a
 * 576-byte error (RFC 792 asks for the header and 64 bits, at least). */
#define ICMP_ERROR_MAX 576

int tern_icmp_errno(uint8_t type, uint8_t code, bool *hard)
{
    /* Linux's icmp_err_convert table, codes 0..15 of destination
     * unreachable: the errno and whether it is fatal. Fragmentation needed
     * counts as hard for datagram sockets, as in __udp4_lib_err with path
     * MTU discovery on. */
    static const struct {
        uint8_t err;
        bool hard;
    } unreach[16] = {
        {ENETUNREACH, false}, {EHOSTUNREACH, false}, {ENOPROTOOPT, true},
        {ECONNREFUSED, true}, {EMSGSIZE, true},      {EOPNOTSUPP, false},
        {ENETUNREACH, true},  {EHOSTDOWN, true},     {ENONET, true},
        {ENETUNREACH, true},  {EHOSTUNREACH, true},  {ENETUNREACH, false},
        {EHOSTUNREACH, false}, {EHOSTUNREACH, true}, {EHOSTUNREACH, true},
        {EHOSTUNREACH, true},
    };
    *hard = false;
    switch (type) {
    case TERN_ICMP_UNREACH:
        if (code > 15)
            return EHOSTUNREACH;
        *hard = unreach[code].hard;
        return unreach[code].err;
    case TERN_ICMP_TIME_EXCEEDED:
        return EHOSTUNREACH;
    case TERN_ICMP_PARAM_PROBLEM:
        *hard = true;
        return EPROTO;
    default:
        return 0;
    }
}

static bool ratelimit_allows(struct tern_stack *s)
{
    /* Token bucket in units of ns-worth of rate: one error costs
     * 1e9 / rate, the bucket holds `burst` errors. */
    if (s->cfg.icmp_rate_per_sec == 0)
        return true;
    uint64_t cost = TERN_NS_PER_SEC;
    uint64_t cap = (uint64_t)s->cfg.icmp_burst * cost;
    /* Clamp the idle time first: a long quiet spell must not overflow. */
    uint64_t idle = s->now - s->icmp_last_ns;
    uint64_t full_after = cap / s->cfg.icmp_rate_per_sec + 1;
    uint64_t earned = (idle > full_after ? full_after : idle) * s->cfg.icmp_rate_per_sec;
    s->icmp_last_ns = s->now;
    s->icmp_tokens_ns = earned >= cap - s->icmp_tokens_ns ? cap : s->icmp_tokens_ns + earned;
    if (s->icmp_tokens_ns < cost)
        return false;
    s->icmp_tokens_ns -= cost;
    return true;
}

static void icmp_send(struct tern_stack *s, struct tern_pkt *p, uint32_t src, uint32_t dst,
                      uint8_t tos)
{
    struct tern_ipv4_out o = {.src = src, .dst = dst, .proto = TERN_IPPROTO_ICMP,
                              .ttl = s->cfg.ip_default_ttl, .tos = tos};
    tern_count(s, TERN_C_ICMP_TX);
    tern_ipv4_output_take(s, p, &o);
}

void tern_icmp_send_error(struct tern_stack *s, const struct tern_pkt *orig, uint8_t type,
                          uint8_t code, uint32_t rest)
{
    if (orig->l3_off == 0)
        return;
    const uint8_t *ip = orig->buf + orig->l3_off;
    struct tern_ipv4_hdr h;
    /* Layers above may have trimmed the packet (UDP to its own length),
     * but input checked the header's total length against the frame, so
     * the buffer still holds what the header says. */
    size_t have = orig->cap - orig->l3_off;
    if (tern_ipv4_parse(ip, have, &h) != TERN_IPV4_OK)
        return;
    /* RFC 1122 section 3.2.2: never about an ICMP error, a datagram sent
     * to a broadcast or multicast, a non-initial fragment, or from an
     * address that is not a single host. */
    if (h.proto == TERN_IPPROTO_ICMP && have > h.hlen) {
        uint8_t t = ip[h.hlen];
        if (t != TERN_ICMP_ECHO && t != TERN_ICMP_ECHO_REPLY && t != 13 && t != 14 &&
            t != 15 && t != 16 && t != 17 && t != 18)
            return;
    }
    if (orig->link_bcast || h.dst == TERN_IPV4_BROADCAST || tern_ipv4_is_multicast(h.dst) ||
        h.frag_off != 0 || h.src == 0 || h.src == TERN_IPV4_BROADCAST ||
        tern_ipv4_is_multicast(h.src))
        return;
    if (!ratelimit_allows(s)) {
        tern_count(s, TERN_C_DROP_ICMP_RATELIMIT);
        return;
    }
    size_t quote = h.total_len < have ? h.total_len : have;
    if (quote > ICMP_ERROR_MAX - TERN_IPV4_HLEN - TERN_ICMP_HLEN)
        quote = ICMP_ERROR_MAX - TERN_IPV4_HLEN - TERN_ICMP_HLEN;
    struct tern_pkt *p = tern_pkt_alloc(s, TERN_PKT_HEADROOM, TERN_ICMP_HLEN + quote);
    if (!p)
        return;
    memcpy(tern_pkt_data(p) + TERN_ICMP_HLEN, ip, quote);
    tern_icmp_emit(tern_pkt_data(p), p->len, type, code, rest);
    if (type == TERN_ICMP_UNREACH)
        tern_count(s, TERN_C_ICMP_TX_UNREACH);
    /* Answer from the address the offending datagram was sent to when it
     * is ours, so the sender can match the error to its socket. */
    uint32_t src = tern_iface_is_local(s, h.dst) ? h.dst : 0;
    icmp_send(s, p, src, h.src, 0);
}

static void echo_reply(struct tern_stack *s, struct tern_pkt *p)
{
    /* RFC 1122 section 3.2.2.6: the reply carries the request's data, from
     * the address the request was sent to. Requests to a broadcast are
     * ignored, as Linux does by default (icmp_echo_ignore_broadcasts). */
    if (p->link_bcast || p->ip_src.s_addr == 0) {
        tern_drop_take(s, p, TERN_C_DROP_ICMP_UNHANDLED);
        return;
    }
    struct tern_pkt *r = tern_pkt_copy(s, p, TERN_PKT_HEADROOM);
    if (r) {
        uint8_t *m = tern_pkt_data(r);
        tern_icmp_emit(m, r->len, TERN_ICMP_ECHO_REPLY, 0, tern_get32(m + 4));
        tern_count(s, TERN_C_ICMP_TX_ECHO_REPLY);
        icmp_send(s, r, p->ip_dst.s_addr, p->ip_src.s_addr, p->ip_tos);
    }
    tern_pkt_free_take(s, p);
}

/* An error quotes our datagram: find the socket that sent it. */
static void error_input(struct tern_stack *s, struct tern_pkt *p, const struct tern_icmp_hdr *ih)
{
    const uint8_t *q = tern_pkt_data(p) + TERN_ICMP_HLEN;
    size_t qlen = p->len - TERN_ICMP_HLEN;
    /* The quoted header's checksum may be legitimately off after a router
     * rewrote the TTL, so parse only the fields we need. */
    if (qlen < TERN_IPV4_HLEN || (q[0] >> 4) != 4 || (q[0] & 0xf) < 5 ||
        (size_t)(q[0] & 0xf) * 4 + 8 > qlen) {
        tern_drop_take(s, p, TERN_C_DROP_ICMP_TOO_SHORT);
        return;
    }
    size_t ihl = (size_t)(q[0] & 0xf) * 4;
    uint8_t proto = q[9];
    uint32_t src = tern_get32(q + 12), dst = tern_get32(q + 16);
    const uint8_t *l4 = q + ihl;
    bool hard;
    int err = tern_icmp_errno(ih->type, ih->code, &hard);
    enum tern_icmp_err_fate fate = TERN_ICMP_ERR_NO_SOCKET;
    if (err && tern_iface_is_local(s, src)) {
        if (proto == TERN_IPPROTO_UDP)
            fate = tern_udp_error(s, src, tern_get16(l4), dst, tern_get16(l4 + 2), err, hard);
        else if (proto == TERN_IPPROTO_TCP) {
            /* Fragmentation needed carries the next hop's MTU (RFC
             * 1191 section 4); 0 from a router too old to say. */
            struct tern_tcp_icmp e = {.err = err, .hard = hard, .seq = tern_get32(l4 + 4),
                                      .quoted_len = tern_get16(q + 2)};
            if (ih->type == TERN_ICMP_UNREACH && ih->code == 4) {
                e.frag_needed = true;
                e.mtu = (uint16_t)(ih->rest & 0xffff);
            }
            tern_tcp_error(s, src, tern_get16(l4), dst, tern_get16(l4 + 2), &e);
            fate = TERN_ICMP_ERR_DELIVERED;
        } else if (proto == TERN_IPPROTO_ICMP && l4[0] == TERN_ICMP_ECHO)
            fate = tern_ping_error(s, src, tern_get16(l4 + 4), dst, err, hard);
    }
    switch (fate) {
    case TERN_ICMP_ERR_DELIVERED:
        tern_count(s, TERN_C_ICMP_RX_ERROR_DELIVERED);
        tern_pkt_free_take(s, p);
        break;
    case TERN_ICMP_ERR_UNCONNECTED:
        tern_drop_take(s, p, TERN_C_DROP_ICMP_ERROR_UNCONNECTED);
        break;
    case TERN_ICMP_ERR_SOFT:
        tern_drop_take(s, p, TERN_C_DROP_ICMP_ERROR_SOFT);
        break;
    case TERN_ICMP_ERR_NO_SOCKET:
        tern_drop_take(s, p, TERN_C_DROP_ICMP_ERROR_NO_SOCKET);
        break;
    }
}

void tern_icmp_input_take(struct tern_stack *s, struct tern_pkt *p)
{
    struct tern_icmp_hdr ih;
    tern_count(s, TERN_C_ICMP_RX);
    int rc = tern_icmp_parse(tern_pkt_data(p), p->len, &ih);
    if (rc == -1) {
        tern_drop_take(s, p, TERN_C_DROP_ICMP_TOO_SHORT);
        return;
    }
    if (rc == -2) {
        tern_drop_take(s, p, TERN_C_DROP_ICMP_BAD_CHECKSUM);
        return;
    }
    switch (ih.type) {
    case TERN_ICMP_ECHO:
        echo_reply(s, p);
        break;
    case TERN_ICMP_ECHO_REPLY:
        tern_ping_input_take(s, p, ih.id);
        break;
    case TERN_ICMP_UNREACH:
    case TERN_ICMP_TIME_EXCEEDED:
    case TERN_ICMP_PARAM_PROBLEM:
        error_input(s, p, &ih);
        break;
    default:
        /* Source quench is deprecated (RFC 6633); the rest we don't use. */
        tern_drop_take(s, p, TERN_C_DROP_ICMP_UNHANDLED);
        break;
    }
}
