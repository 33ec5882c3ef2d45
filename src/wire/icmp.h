/* ICMP for IPv4 (RFC 792). */
#ifndef TERN_WIRE_ICMP_H
#define TERN_WIRE_ICMP_H

#include <stddef.h>
#include <stdint.h>

#define TERN_ICMP_HLEN 8
#define TERN_ICMP_ECHO_REPLY 0
#define TERN_ICMP_UNREACH 3
#define TERN_ICMP_SOURCE_QUENCH 4
#define TERN_ICMP_ECHO 8
#define TERN_ICMP_TIME_EXCEEDED 11
#define TERN_ICMP_PARAM_PROBLEM 12

#define TERN_ICMP_UNREACH_NET 0
#define TERN_ICMP_UNREACH_HOST 1
#define TERN_ICMP_UNREACH_PROTO 2
#define TERN_ICMP_UNREACH_PORT 3
#define TERN_ICMP_UNREACH_NEEDFRAG 4

struct tern_icmp_hdr {
    uint8_t type, code;
    uint16_t id, seq;  /* echo; for errors the rest-of-header word's halves */
    uint32_t rest;     /* the whole second word */
};

/* 0 if at least a header and the checksum over all len bytes is right;
 * -1 too short, -2 bad checksum. */
int tern_icmp_parse(const uint8_t *buf, size_t len, struct tern_icmp_hdr *h);
/* Write the 8-byte header and the checksum over it and the len - 8 bytes
 * that already follow it in buf. */
void tern_icmp_emit(uint8_t *buf, size_t len, uint8_t type, uint8_t code, uint32_t rest);

#endif
