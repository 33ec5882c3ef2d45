/* ICMP for IPv4 (RFC 792, RFC 1122 section 3.2.2). */
#ifndef TERN_NET_ICMP_H
#define TERN_NET_ICMP_H

#include <stdbool.h>
#include <stdint.h>

#include "wire/icmp.h"

struct tern_stack;
struct tern_pkt;

/* p: data = the ICMP message, IP metadata filled in. */
void tern_icmp_input_take(struct tern_stack *s, struct tern_pkt *p);
/* Send an error about packet `orig` (borrowed; its IPv4 header must be at
 * orig->l3_off). Follows RFC 1122 section 3.2.2's rules on when not to
 * send, and the stack's rate limit. */
void tern_icmp_send_error(struct tern_stack *s, const struct tern_pkt *orig, uint8_t type,
                          uint8_t code, uint32_t rest);
/* What became of an ICMP error addressed to one of our sockets. */
enum tern_icmp_err_fate {
    TERN_ICMP_ERR_DELIVERED,
    TERN_ICMP_ERR_NO_SOCKET,
    TERN_ICMP_ERR_UNCONNECTED, /* a socket exists but only a connected one is told */
    TERN_ICMP_ERR_SOFT,        /* a soft error: sockets are not told (as Linux) */
};

/* The errno an ICMP error stands for (Linux's mapping), 0 if none, and
 * whether it is hard (fatal: the peer says it will never work) or soft
 * (it may pass, as a route may come back). */
int tern_icmp_errno(uint8_t type, uint8_t code, bool *hard);

#endif
