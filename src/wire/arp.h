/* ARP for IPv4 over Ethernet (RFC 826): the 28-byte message. */
#ifndef TERN_WIRE_ARP_H
#define TERN_WIRE_ARP_H

#include <stddef.h>
#include <stdint.h>

#define TERN_ARP_LEN 28
#define TERN_ARP_REQUEST 1
#define TERN_ARP_REPLY 2

struct tern_arp_msg {
    uint16_t op;
    uint8_t sha[6];
    uint32_t spa; /* host order */
    uint8_t tha[6];
    uint32_t tpa;
};

/* 0 if an Ethernet/IPv4 ARP message of at least 28 bytes, else -1. */
int tern_arp_parse(const uint8_t *buf, size_t len, struct tern_arp_msg *m);
void tern_arp_emit(uint8_t *buf, const struct tern_arp_msg *m);

#endif
