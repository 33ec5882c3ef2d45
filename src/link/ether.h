/* Ethernet input and output for a stack's interfaces. */
#ifndef TERN_LINK_ETHER_H
#define TERN_LINK_ETHER_H

#include <stdint.h>

struct tern_stack;
struct tern_iface;
struct tern_pkt;

extern const uint8_t tern_eth_bcast_addr[6];

void tern_ether_input_take(struct tern_stack *s, struct tern_iface *ifp, struct tern_pkt *p);
/* Prepend the Ethernet header and hand the frame to the link. */
void tern_ether_output_take(struct tern_stack *s, struct tern_iface *ifp, const uint8_t dst[6],
                            uint16_t type, struct tern_pkt *p);

#endif
