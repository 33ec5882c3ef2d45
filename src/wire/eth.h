/* Ethernet II framing (no FCS, no VLAN tags yet). */
#ifndef TERN_WIRE_ETH_H
#define TERN_WIRE_ETH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TERN_ETH_HLEN 14
#define TERN_ETHERTYPE_IPV4 0x0800
#define TERN_ETHERTYPE_ARP 0x0806

struct tern_eth_hdr {
    uint8_t dst[6];
    uint8_t src[6];
    uint16_t type;
};

/* 0 and *h filled, -1 if shorter than a header. */
int tern_eth_parse(const uint8_t *buf, size_t len, struct tern_eth_hdr *h);
void tern_eth_emit(uint8_t *buf, const uint8_t dst[6], const uint8_t src[6], uint16_t type);

static inline bool tern_eth_is_group(const uint8_t mac[6]) { return mac[0] & 1; }
static inline bool tern_eth_is_bcast(const uint8_t mac[6])
{
    return (mac[0] & mac[1] & mac[2] & mac[3] & mac[4] & mac[5]) == 0xff;
}

#endif
