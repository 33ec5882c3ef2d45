/* The generic link calls: dispatch to the driver's ops. Drivers keep their
 * own stats; these wrappers only supply the defaults for optional ops. */
#include <tern/link.h>

#include "wire/bytes.h"
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
