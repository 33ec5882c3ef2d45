/* UDP (RFC 768) over IPv4. */
#ifndef TERN_TRANSPORT_UDP_H
#define TERN_TRANSPORT_UDP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "net/icmp.h"

struct tern_stack;
struct tern_pkt;
struct tern_socket;

/* The largest UDP payload in one IPv4 datagram. */
#define TERN_UDP_MAX_PAYLOAD (65535 - 20 - 8)

/* p: data = UDP header and payload, IP metadata filled in. */
void tern_udp_input_take(struct tern_stack *s, struct tern_pkt *p);
/* An ICMP error about a datagram we sent from lport to faddr:fport.
 * Only hard errors reach a socket, and only a connected one, as on Linux
 * without IP_RECVERR. */
enum tern_icmp_err_fate tern_udp_error(struct tern_stack *s, uint32_t laddr, uint16_t lport,
                                       uint32_t faddr, uint16_t fport, int err, bool hard);
/* Send one datagram from a bound socket; 0 or -errno. */
int tern_udp_output(struct tern_stack *s, struct tern_socket *so, const struct iovec *iov,
                    size_t iovcnt, size_t len, uint32_t src, uint32_t dst, uint16_t dport,
                    int ifindex);

#endif
