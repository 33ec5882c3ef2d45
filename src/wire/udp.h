/* The UDP header (RFC 768). */
#ifndef TERN_WIRE_UDP_H
#define TERN_WIRE_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TERN_UDP_HLEN 8

struct tern_udp_hdr {
    uint16_t sport, dport;
    uint16_t len;  /* header + data, from the header */
    uint16_t csum;
};

enum tern_udp_parse_err { TERN_UDP_OK = 0, TERN_UDP_TOO_SHORT, TERN_UDP_BAD_CHECKSUM };

/* buf/len is the IP payload; src/dst (host order) feed the pseudo header.
 * A zero checksum means none was sent (RFC 768) and is accepted; with
 * verify_csum false (the bytes never left memory) none is checked. */
enum tern_udp_parse_err tern_udp_parse(const uint8_t *buf, size_t len, uint32_t src,
                                       uint32_t dst, bool verify_csum, struct tern_udp_hdr *h);
/* Write the header before `len - 8` payload bytes already in buf, with
 * the checksum (0 computed becomes 0xffff, RFC 768). */
void tern_udp_emit(uint8_t *buf, size_t len, uint32_t src, uint32_t dst, uint16_t sport,
                   uint16_t dport);
/* The same with the checksum field zero, for the IPv4 output path to fill
 * (TERN_PKT_CSUM_PENDING). */
void tern_udp_emit_nocsum(uint8_t *buf, size_t len, uint16_t sport, uint16_t dport);

#endif
