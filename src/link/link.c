/* The generic link calls: dispatch to the driver's ops. Drivers keep their
 * own stats; these wrappers only supply the defaults for optional ops. */
#include <tern/link.h>

#include <string.h>

#include "wire/bytes.h"
#include "wire/checksum.h"
#include "wire/eth.h"
#include "wire/ipv4.h"

size_t tern_link_send(struct tern_link *l, const struct tern_frame *frames, size_t n,
                      tern_time_t now)
{
    return l->ops.send(l, frames, n, now);
}

size_t tern_link_recv(struct tern_link *l, struct tern_frame *frames, size_t n,
                      tern_time_t now)
{
    return l->ops.recv(l, frames, n, now);
}

tern_time_t tern_link_next_deadline(struct tern_link *l, tern_time_t now)
{
    if (!l->ops.next_deadline)
        return TERN_TIME_NEVER;
    return l->ops.next_deadline(l, now);
}

int tern_link_pollfd(struct tern_link *l)
{
    if (!l->ops.pollfd)
        return -1;
    return l->ops.pollfd(l);
}

/* Like free(), NULL is allowed so that error paths can free unconditionally. */
void tern_link_free(struct tern_link *l)
{
    if (l)
        l->ops.destroy(l);
}

void tern_frame_csum_fill(struct tern_frame *f)
{
    if (!(f->flags & TERN_FRAME_CSUM_PENDING))
        return;
    /* Only IPv4 frames are ever sent pending; anything else has nothing
     * to fill, and the flag goes either way. */
    if (f->len > TERN_ETH_HLEN && tern_get16(f->data + 12) == TERN_ETHERTYPE_IPV4)
        tern_ipv4_fill_l4_csum(f->data + TERN_ETH_HLEN, f->len - TERN_ETH_HLEN);
    f->flags &= ~(uint32_t)TERN_FRAME_CSUM_PENDING;
}

size_t tern_frame_gso_split(const struct tern_frame *f, uint8_t *buf, size_t buf_size,
                            bool keep_pending, bool (*emit)(void *arg, const struct tern_frame *seg), void *arg)
{
    const uint8_t *d = f->data;
    size_t ihl = f->len > TERN_ETH_HLEN ? (size_t)(d[TERN_ETH_HLEN] & 0xf) * 4 : 0;
    size_t l3 = TERN_ETH_HLEN, l4 = l3 + ihl;
    size_t thl = f->len >= l4 + 20 ? (size_t)(d[l4 + 12] >> 4) * 4 : 0;
    size_t hdrs = l4 + thl;
    bool tcp4 = f->gso_size && ihl >= 20 && thl >= 20 && f->len >= hdrs &&
                tern_get16(d + 12) == TERN_ETHERTYPE_IPV4 && (d[l3] >> 4) == 4 &&
                d[l3 + 9] == TERN_IPPROTO_TCP && l3 + tern_get16(d + l3 + 2) == f->len &&
                !(tern_get16(d + l3 + 6) & 0x3fff);
    if (!tcp4 || f->len - hdrs <= f->gso_size) {
        struct tern_frame one = *f;
        one.gso_size = 0;
        if (!keep_pending)
            tern_frame_csum_fill(&one);
        return emit(arg, &one) ? 1 : 0;
    }
    if (hdrs + f->gso_size > buf_size)
        return 0;
    const uint8_t tcp_fin = 0x01, tcp_psh = 0x08, tcp_cwr = 0x80;
    uint32_t seq = tern_get32(d + l4 + 4);
    uint16_t id = tern_get16(d + l3 + 4);
    uint8_t flags = d[l4 + 13];
    size_t n = 0;
    for (size_t off = hdrs; off < f->len; off += f->gso_size) {
        size_t chunk = f->len - off < f->gso_size ? f->len - off : f->gso_size;
        bool first = off == hdrs, last = off + chunk == f->len;
        memcpy(buf, d, hdrs);
        memcpy(buf + hdrs, d + off, chunk);
        uint8_t *ip = buf + l3, *th = buf + l4;
        tern_put16(ip + 2, (uint16_t)(ihl + thl + chunk));
        tern_put16(ip + 4, id++);
        tern_put16(ip + 10, 0);
        tern_put16(ip + 10, tern_csum_fold(tern_csum_add(0, ip, ihl)));
        tern_put32(th + 4, seq + (uint32_t)(off - hdrs));
        th[13] = (uint8_t)(flags & ~((last ? 0 : tcp_fin | tcp_psh) | (first ? 0 : tcp_cwr)));
        struct tern_frame seg = {.data = buf, .len = hdrs + chunk,       .cap = hdrs + chunk,
                                 .flags = TERN_FRAME_CSUM_PENDING};
        if (!keep_pending)
            tern_frame_csum_fill(&seg);
        n++;
        if (!emit(arg, &seg))
            break;
    }
    return n;
}
