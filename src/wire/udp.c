#include "wire/udp.h"

#include "wire/bytes.h"
#include "wire/checksum.h"
#include "wire/ipv4.h"

enum tern_udp_parse_err tern_udp_parse(const uint8_t *buf, size_t len, uint32_t src,
                                       uint32_t dst, bool verify_csum, struct tern_udp_hdr *h)
{
    if (len < TERN_UDP_HLEN)
        return TERN_UDP_TOO_SHORT;
    h->sport = tern_get16(buf);
    h->dport = tern_get16(buf + 2);
    h->len = tern_get16(buf + 4);
    h->csum = tern_get16(buf + 6);
    if (h->len < TERN_UDP_HLEN || h->len > len)
        return TERN_UDP_TOO_SHORT;
    if (verify_csum && h->csum != 0) {
        uint32_t sum = tern_csum_pseudo4(src, dst, TERN_IPPROTO_UDP, h->len);
        if (tern_csum_fold(tern_csum_add(sum, buf, h->len)) != 0)
            return TERN_UDP_BAD_CHECKSUM;
    }
    return TERN_UDP_OK;
}

void tern_udp_emit_nocsum(uint8_t *buf, size_t len, uint16_t sport, uint16_t dport)
{
    tern_put16(buf, sport);
    tern_put16(buf + 2, dport);
    tern_put16(buf + 4, (uint16_t)len);
    tern_put16(buf + 6, 0);
}

void tern_udp_emit(uint8_t *buf, size_t len, uint32_t src, uint32_t dst, uint16_t sport,
                   uint16_t dport)
{
    tern_udp_emit_nocsum(buf, len, sport, dport);
    uint32_t sum = tern_csum_pseudo4(src, dst, TERN_IPPROTO_UDP, (uint16_t)len);
    uint16_t c = tern_csum_fold(tern_csum_add(sum, buf, len));
    tern_put16(buf + 6, c == 0 ? 0xffff : c);
}
