#include "wire/ipv4.h"

#include "wire/bytes.h"
#include "wire/checksum.h"

enum tern_ipv4_parse_err tern_ipv4_parse(const uint8_t *buf, size_t len, struct tern_ipv4_hdr *h)
{
    if (len < TERN_IPV4_HLEN)
        return TERN_IPV4_TOO_SHORT;
    if ((buf[0] >> 4) != 4)
        return TERN_IPV4_BAD_VERSION;
    h->hlen = (uint8_t)((buf[0] & 0xf) * 4);
    if (h->hlen < TERN_IPV4_HLEN || h->hlen > len)
        return TERN_IPV4_BAD_HLEN;
    h->total_len = tern_get16(buf + 2);
    if (h->total_len < h->hlen || h->total_len > len)
        return TERN_IPV4_TOO_SHORT;
    uint16_t sum = h->hlen == TERN_IPV4_HLEN ? tern_csum_hdr20(buf)
                                             : tern_csum_fold(tern_csum_add(0, buf, h->hlen));
    if (sum != 0)
        return TERN_IPV4_BAD_CHECKSUM;
    h->tos = buf[1];
    h->id = tern_get16(buf + 4);
    uint16_t ff = tern_get16(buf + 6);
    h->df = (ff & 0x4000) != 0;
    h->mf = (ff & 0x2000) != 0;
    h->frag_off = (uint16_t)((ff & 0x1fff) * 8);
    h->ttl = buf[8];
    h->proto = buf[9];
    h->src = tern_get32(buf + 12);
    h->dst = tern_get32(buf + 16);
    return TERN_IPV4_OK;
}

void tern_ipv4_emit(uint8_t *buf, const struct tern_ipv4_hdr *h)
{
    uint16_t ff = (uint16_t)((h->df ? 0x4000 : 0) | (h->mf ? 0x2000 : 0) |
                             ((h->frag_off / 8) & 0x1fff));
    /* The checksum is summed from the fields, as 16-bit words in host
     * order (RFC 1071), not read back from the bytes just stored: a
     * load spanning several smaller stores waits for them to retire. */
    uint32_t sum = (0x45u << 8 | h->tos) + h->total_len + h->id + ff +
                   ((uint32_t)h->ttl << 8 | h->proto) + (h->src >> 16) + (h->src & 0xffff) +
                   (h->dst >> 16) + (h->dst & 0xffff);
    buf[0] = 0x45;
    buf[1] = h->tos;
    tern_put16(buf + 2, h->total_len);
    tern_put16(buf + 4, h->id);
    tern_put16(buf + 6, ff);
    buf[8] = h->ttl;
    buf[9] = h->proto;
    tern_put16(buf + 10, tern_csum_fold(sum));
    tern_put32(buf + 12, h->src);
    tern_put32(buf + 16, h->dst);
}

bool tern_ipv4_l4_csum_at(const uint8_t *buf, size_t len, size_t *hlen_out, size_t *field)
{
    if (len < TERN_IPV4_HLEN || (buf[0] >> 4) != 4)
        return false;
    size_t hlen = (size_t)(buf[0] & 0xf) * 4;
    size_t total = tern_get16(buf + 2);
    if (hlen < TERN_IPV4_HLEN || total < hlen || total > len)
        return false;
    if (tern_get16(buf + 6) & 0x3fff)
        return false; /* a fragment: its datagram was summed whole */
    uint8_t proto = buf[9];
    size_t l4len = total - hlen;
    if (proto == TERN_IPPROTO_TCP && l4len >= 20)
        *field = 16;
    else if (proto == TERN_IPPROTO_UDP && l4len >= 8)
        *field = 6;
    else
        return false;
    *hlen_out = hlen;
    return true;
}

bool tern_ipv4_fill_l4_csum(uint8_t *buf, size_t len)
{
    size_t hlen, field;
    if (!tern_ipv4_l4_csum_at(buf, len, &hlen, &field))
        return false;
    uint8_t proto = buf[9];
    size_t l4len = (size_t)tern_get16(buf + 2) - hlen;
    uint8_t *l4 = buf + hlen;
    tern_put16(l4 + field, 0);
    uint32_t sum = tern_csum_pseudo4(tern_get32(buf + 12), tern_get32(buf + 16), proto,
                                     (uint16_t)l4len);
    uint16_t c = tern_csum_fold(tern_csum_add(sum, l4, l4len));
    /* RFC 768: a UDP checksum that computes to zero is sent as all ones,
     * zero meaning none was computed. */
    tern_put16(l4 + field, proto == TERN_IPPROTO_UDP && c == 0 ? 0xffff : c);
    return true;
}
