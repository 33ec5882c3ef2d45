/* The IPv4 header (RFC 791 section 3.1). */
#ifndef TERN_WIRE_IPV4_H
#define TERN_WIRE_IPV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TERN_IPV4_HLEN 20
#define TERN_IPPROTO_ICMP 1
#define TERN_IPPROTO_TCP 6
#define TERN_IPPROTO_UDP 17

struct tern_ipv4_hdr {
    uint8_t hlen;       /* bytes, options included */
    uint8_t tos;
    uint16_t total_len;
    uint16_t id;
    bool df, mf;
    uint16_t frag_off;  /* bytes */
    uint8_t ttl;
    uint8_t proto;
    uint32_t src, dst;  /* host order */
};

enum tern_ipv4_parse_err {
    TERN_IPV4_OK = 0,
    TERN_IPV4_TOO_SHORT,
    TERN_IPV4_BAD_VERSION,
    TERN_IPV4_BAD_HLEN,
    TERN_IPV4_BAD_CHECKSUM,
};

/* Validates version, header length, total length against len, and the
 * header checksum; options are skipped, not interpreted. */
enum tern_ipv4_parse_err tern_ipv4_parse(const uint8_t *buf, size_t len,
                                         struct tern_ipv4_hdr *h);
/* Write a 20-byte header (no options) with its checksum. */
void tern_ipv4_emit(uint8_t *buf, const struct tern_ipv4_hdr *h);
/* Fill the TCP or UDP checksum of the whole (unfragmented) datagram at
 * buf, whose transport header was written without one. False, and buf
 * untouched, for anything else or a datagram longer than len. */
bool tern_ipv4_fill_l4_csum(uint8_t *buf, size_t len);
/* Where that checksum is: the IPv4 header's length and the field's
 * offset past it. False for anything tern_ipv4_fill_l4_csum refuses. */
bool tern_ipv4_l4_csum_at(const uint8_t *buf, size_t len, size_t *hlen, size_t *field);

static inline bool tern_ipv4_is_multicast(uint32_t a) { return (a >> 28) == 0xe; }
static inline bool tern_ipv4_is_loopback(uint32_t a) { return (a >> 24) == 127; }
#define TERN_IPV4_BROADCAST 0xffffffffu

#endif
