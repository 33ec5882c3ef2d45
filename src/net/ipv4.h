/* IPv4 input and output (RFC 791, RFC 1122 section 3.3). A host, not a
 * router: packets for other hosts are counted and dropped. */
#ifndef TERN_NET_IPV4_H
#define TERN_NET_IPV4_H

#include <stdbool.h>
#include <stdint.h>

struct tern_stack;
struct tern_iface;
struct tern_pkt;

void tern_ipv4_init(struct tern_stack *s);
void tern_ipv4_destroy(struct tern_stack *s);
/* p starts at the IP header. */
void tern_ipv4_input_take(struct tern_stack *s, struct tern_iface *ifp, struct tern_pkt *p);

struct tern_ipv4_out {
    uint32_t src;      /* 0: chosen from the route */
    uint32_t dst;
    uint8_t proto;
    uint8_t ttl;
    uint8_t tos;
    bool df;
    int ifindex;       /* 0: by route */
};

/* Where a datagram to dst would leave and from which source address
 * (*src kept if non-zero and local). 0, or -errno (ENETUNREACH,
 * EADDRNOTAVAIL). */
int tern_ipv4_route_src(struct tern_stack *s, uint32_t dst, uint32_t *src, int *ifindex);
/* Send p (data = transport header and payload): prepend the header,
 * fragment if needed, resolve the next hop. Returns 0 or -errno
 * (ENETUNREACH, EMSGSIZE for DF over MTU, ENOBUFS). */
int tern_ipv4_output_take(struct tern_stack *s, struct tern_pkt *p, const struct tern_ipv4_out *o);
/* The address that stands for "this host" when a caller names 0.0.0.0 as
 * a destination (Linux delivers such datagrams locally); 0 if none. */
uint32_t tern_ipv4_this_host(struct tern_stack *s);
/* The MTU of the path's first hop towards dst (0 if unroutable). */
uint32_t tern_ipv4_mtu_to(struct tern_stack *s, uint32_t dst);
/* Whether a TCP super-segment to dst leaves whole (a link with
 * TERN_LINK_CAP_TSO and no capture reading its bytes, or ourselves);
 * where not, tern_ether_output_take cuts it up. */
bool tern_ipv4_tso_to(struct tern_stack *s, uint32_t dst);

void tern_ipv4_loopback_run(struct tern_stack *s);
bool tern_ipv4_loopback_pending(const struct tern_stack *s);

#endif
