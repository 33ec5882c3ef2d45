/* Ping sockets (SOCK_DGRAM + IPPROTO_ICMP, as on Linux): the user sends
 * an echo request (ICMP header and data) and receives echo replies whose
 * identifier is the socket's bound "port". */
#ifndef TERN_TRANSPORT_PING_H
#define TERN_TRANSPORT_PING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "net/icmp.h"

struct tern_stack;
struct tern_pkt;
struct tern_socket;

void tern_ping_input_take(struct tern_stack *s, struct tern_pkt *p, uint16_t ident);
enum tern_icmp_err_fate tern_ping_error(struct tern_stack *s, uint32_t laddr, uint16_t ident,
                                        uint32_t faddr, int err, bool hard);
int tern_ping_output(struct tern_stack *s, struct tern_socket *so, const struct iovec *iov,
                     size_t iovcnt, size_t len, uint32_t src, uint32_t dst, int ifindex);

#endif
