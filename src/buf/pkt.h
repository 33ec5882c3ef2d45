/*
 * Packets: one contiguous buffer with headroom, a reference count, and a
 * little metadata the layers fill in as the packet climbs or descends.
 *
 * Ownership (STYLE.md habit 6): a function whose name ends in _take
 * consumes the packet reference it is given, whether it succeeds or fails;
 * every other function borrows. tern_pkt_ref() adds a reference; the last
 * tern_pkt_free_take() returns the buffer to its stack's pool. A packet is
 * on at most one queue at a time (its `node`).
 *
 * Pools are per stack: small buffers are recycled from a free list, large
 * ones (reassembled datagrams, jumbo frames) come from malloc. The number
 * of live packets is bounded by the stack's config; the count is checked
 * to be zero when the stack is freed. Debug builds poison freed buffers.
 */
#ifndef TERN_BUF_PKT_H
#define TERN_BUF_PKT_H

#include <stdint.h>
#include <stddef.h>
#include <netinet/in.h>

#include "core/list.h"

struct tern_stack;

/* Room for Ethernet + IPv4 (with options) + transport headers. */
#define TERN_PKT_HEADROOM 128
/* Size classes recycled by the pool: tiny for ARP, ACKs and small
 * datagrams, small for a full 1500-byte frame, jumbo for the largest
 * frame (a 65535-byte MTU, a coalesced or TSO frame) with headroom. Other
 * sizes come from malloc and go back to it. Jumbo buffers are kept only
 * up to TERN_PKT_JUMBO_KEEP (a receive batch's worth): 64 KiB each. */
#define TERN_PKT_TINY_CAP 512
#define TERN_PKT_SMALL_CAP 2048
#define TERN_PKT_JUMBO_CAP (65536 + 256)
#define TERN_PKT_JUMBO_KEEP 32
#define TERN_PKT_CLASSES 3

struct tern_pkt {
    struct tern_list node;
    uint8_t *buf;
    uint32_t cap;
    uint32_t off;   /* data starts at buf + off */
    uint32_t len;   /* bytes of data */
    uint32_t magic;
    uint16_t refcnt;
    uint16_t ifindex; /* interface it arrived on or leaves by */
    /* Filled by IPv4 input for the layers above. */
    struct in_addr ip_src, ip_dst;
    uint8_t ip_proto;
    uint8_t ip_ttl;
    uint8_t ip_tos;
    uint8_t link_bcast; /* arrived as an Ethernet broadcast/multicast */
    uint8_t csum;       /* enum tern_pkt_csum */
    /* Transport bookkeeping (e.g. the sender of a queued datagram). */
    uint16_t src_port;
    /* Outbound TCP: a super-segment to be cut into segments of this many
     * payload bytes (by the link, TERN_LINK_CAP_TSO, or by
     * tern_ether_output_take). Inbound: the segment size of what a link
     * coalesced (or of a super-segment to ourselves). 0: an ordinary
     * packet. */
    uint16_t gso_size;
    uint32_t frag_off; /* reassembly: this fragment's offset in bytes */
    uint32_t l3_off;  /* offset in buf of the IPv4 header, for ICMP quotes; 0: none */
    uint64_t stamp; /* time of arrival or of the event it belongs to */
};

/* What the transport checksum of a packet's bytes is known to be. */
enum tern_pkt_csum {
    TERN_PKT_CSUM_NONE = 0, /* outbound: filled; inbound: to be verified */
    /* Outbound: the TCP/UDP header was written without its checksum;
     * the IPv4 output path fills it unless the packet stays in memory
     * (TERN_FRAME_CSUM_PENDING on a link with TERN_LINK_CAP_TX_CSUM, or
     * the stack's own loopback). Inbound: such a packet, or one whose
     * link verified it: nothing to verify. */
    TERN_PKT_CSUM_PENDING,
};

/* A packet with `len` bytes of data after `headroom` bytes; data is not
 * cleared. NULL (and counted) when the pool is exhausted. */
struct tern_pkt *tern_pkt_alloc(struct tern_stack *s, size_t headroom, size_t len);
/* A new packet holding a copy of p's data with `headroom` before it. */
struct tern_pkt *tern_pkt_copy(struct tern_stack *s, const struct tern_pkt *p, size_t headroom);
void tern_pkt_ref(struct tern_stack *s, struct tern_pkt *p);
void tern_pkt_free_take(struct tern_stack *s, struct tern_pkt *p);
/* Free every packet on a queue. */
void tern_pkt_queue_purge_take(struct tern_stack *s, struct tern_list *q);

static inline uint8_t *tern_pkt_data(const struct tern_pkt *p) { return p->buf + p->off; }
/* Grow the front by n bytes (prepend a header); NULL without headroom. */
static inline uint8_t *tern_pkt_push(struct tern_pkt *p, size_t n)
{
    if (p->off < n)
        return NULL;
    p->off -= (uint32_t)n;
    p->len += (uint32_t)n;
    return p->buf + p->off;
}
/* Drop n bytes from the front (strip a header). Caller checked len. */
static inline void tern_pkt_pull(struct tern_pkt *p, size_t n)
{
    p->off += (uint32_t)n;
    p->len -= (uint32_t)n;
}
static inline void tern_pkt_trim(struct tern_pkt *p, size_t len)
{
    if (len < p->len)
        p->len = (uint32_t)len;
}
static inline struct tern_pkt *tern_pkt_of(struct tern_list *n)
{
    return tern_container_of(n, struct tern_pkt, node);
}

/* Per-stack pool state. */
struct tern_pkt_pool {
    struct tern_list free_list[TERN_PKT_CLASSES];
    uint32_t free_count[TERN_PKT_CLASSES];
    uint32_t free_max;   /* buffers of each class kept for reuse */
    uint64_t live;       /* packets allocated and not yet freed */
    uint64_t live_max;   /* allocation limit */
    uint64_t live_bytes; /* their buffer capacity */
};

void tern_pkt_pool_init(struct tern_pkt_pool *pool, uint32_t free_max, uint64_t live_max);
void tern_pkt_pool_destroy(struct tern_pkt_pool *pool);

#endif
