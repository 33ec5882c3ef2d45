/* The TCP header and its options (RFC 9293 section 3.1, RFC 7323 window
 * scale and timestamps, RFC 2018 SACK), and sequence-space arithmetic. */
#ifndef TERN_WIRE_TCP_H
#define TERN_WIRE_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TERN_TCP_HLEN 20
#define TERN_TCP_MAX_OPTLEN 40

#define TERN_TCP_FIN 0x01
#define TERN_TCP_SYN 0x02
#define TERN_TCP_RST 0x04
#define TERN_TCP_PSH 0x08
#define TERN_TCP_ACK 0x10
#define TERN_TCP_URG 0x20
#define TERN_TCP_ECE 0x40
#define TERN_TCP_CWR 0x80

#define TERN_TCP_MAX_SACK 4

struct tern_tcp_sack_block {
    uint32_t start, end;
};

/* Options as parsed or to emit; a `has_` flag per option. */
struct tern_tcp_opts {
    bool has_mss, has_wscale, sack_permitted, has_ts;
    uint16_t mss;
    uint8_t wscale;
    uint32_t ts_val, ts_ecr;
    uint8_t nsack;
    struct tern_tcp_sack_block sack[TERN_TCP_MAX_SACK];
};

struct tern_tcp_hdr {
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t hlen;   /* bytes, options included */
    uint8_t flags;
    uint16_t wnd;   /* unscaled, as on the wire */
    uint16_t urp;
    struct tern_tcp_opts opt;
};

enum tern_tcp_parse_err {
    TERN_TCP_OK = 0,
    TERN_TCP_TOO_SHORT,
    TERN_TCP_BAD_HLEN,
    TERN_TCP_BAD_CHECKSUM,
    TERN_TCP_BAD_OPTION,
};

/* buf/len is the whole segment (IP payload); src/dst in host order for
 * the pseudo header, whose checksum is verified when verify_csum (false:
 * the bytes never left memory). Malformed options (a length running past the header,
 * a wrong fixed length) are refused: RFC 9293 section 3.1 lets a receiver
 * treat them as it likes, and Linux drops the segment too. */
enum tern_tcp_parse_err tern_tcp_parse(const uint8_t *buf, size_t len, uint32_t src, uint32_t dst,
                                       bool verify_csum, struct tern_tcp_hdr *h);
/* Bytes the options in `o` take on the wire, padded to 4. The caller keeps
 * it within 40: with timestamps, at most 3 SACK blocks fit. */
size_t tern_tcp_opts_len(const struct tern_tcp_opts *o);
/* Write header and options before `len - hlen` payload bytes already in
 * buf, with the checksum. h->hlen must be 20 + tern_tcp_opts_len(). */
void tern_tcp_emit(uint8_t *buf, size_t len, uint32_t src, uint32_t dst,
                   const struct tern_tcp_hdr *h);
/* The same with the checksum field zero, for the IPv4 output path to fill
 * (TERN_PKT_CSUM_PENDING). */
void tern_tcp_emit_nocsum(uint8_t *buf, const struct tern_tcp_hdr *h);

/* Sequence numbers compare modulo 2^32 (RFC 9293 section 3.4). */
static inline bool tern_seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool tern_seq_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
static inline bool tern_seq_gt(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }
static inline bool tern_seq_ge(uint32_t a, uint32_t b) { return (int32_t)(a - b) >= 0; }
static inline uint32_t tern_seq_max(uint32_t a, uint32_t b) { return tern_seq_gt(a, b) ? a : b; }
static inline uint32_t tern_seq_min(uint32_t a, uint32_t b) { return tern_seq_lt(a, b) ? a : b; }
/* lo <= x < hi in sequence space. */
static inline bool tern_seq_between(uint32_t x, uint32_t lo, uint32_t hi)
{
    return tern_seq_ge(x, lo) && tern_seq_lt(x, hi);
}

#endif
