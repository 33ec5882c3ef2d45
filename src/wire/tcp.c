#include "wire/tcp.h"

#include <string.h>

#include "wire/bytes.h"
#include "wire/checksum.h"
#include "wire/ipv4.h"

#define OPT_EOL 0
#define OPT_NOP 1
#define OPT_MSS 2
#define OPT_WSCALE 3
#define OPT_SACK_PERMITTED 4
#define OPT_SACK 5
#define OPT_TIMESTAMP 8

static bool parse_options(const uint8_t *p, size_t len, struct tern_tcp_opts *o)
{
    size_t i = 0;
    while (i < len) {
        uint8_t kind = p[i];
        if (kind == OPT_EOL)
            return true;
        if (kind == OPT_NOP) {
            i++;
            continue;
        }
        if (i + 1 >= len)
            return false;
        uint8_t olen = p[i + 1];
        if (olen < 2 || i + olen > len)
            return false;
        const uint8_t *v = p + i + 2;
        switch (kind) {
        case OPT_MSS:
            if (olen != 4)
                return false;
            o->has_mss = true;
            o->mss = tern_get16(v);
            break;
        case OPT_WSCALE:
            if (olen != 3)
                return false;
            o->has_wscale = true;
            o->wscale = v[0];
            break;
        case OPT_SACK_PERMITTED:
            if (olen != 2)
                return false;
            o->sack_permitted = true;
            break;
        case OPT_SACK:
            if (olen < 10 || (olen - 2) % 8 != 0)
                return false;
            o->nsack = 0;
            for (size_t b = 0; b < (size_t)(olen - 2) / 8 && b < TERN_TCP_MAX_SACK; b++) {
                o->sack[b].start = tern_get32(v + 8 * b);
                o->sack[b].end = tern_get32(v + 8 * b + 4);
                o->nsack++;
            }
            break;
        case OPT_TIMESTAMP:
            if (olen != 10)
                return false;
            o->has_ts = true;
            o->ts_val = tern_get32(v);
            o->ts_ecr = tern_get32(v + 4);
            break;
        default:
            break; /* unknown options are skipped by their length */
        }
        i += olen;
    }
    return true;
}

enum tern_tcp_parse_err tern_tcp_parse(const uint8_t *buf, size_t len, uint32_t src, uint32_t dst,
                                       bool verify_csum, struct tern_tcp_hdr *h)
{
    if (len < TERN_TCP_HLEN)
        return TERN_TCP_TOO_SHORT;
    h->hlen = (uint8_t)((buf[12] >> 4) * 4);
    if (h->hlen < TERN_TCP_HLEN || h->hlen > len)
        return TERN_TCP_BAD_HLEN;
    if (len > 0xffff)
        return TERN_TCP_TOO_SHORT;
    if (verify_csum) {
        uint32_t sum = tern_csum_pseudo4(src, dst, TERN_IPPROTO_TCP, (uint16_t)len);
        if (tern_csum_fold(tern_csum_add(sum, buf, len)) != 0)
            return TERN_TCP_BAD_CHECKSUM;
    }
    h->sport = tern_get16(buf);
    h->dport = tern_get16(buf + 2);
    h->seq = tern_get32(buf + 4);
    h->ack = tern_get32(buf + 8);
    h->flags = buf[13];
    h->wnd = tern_get16(buf + 14);
    h->urp = tern_get16(buf + 18);
    memset(&h->opt, 0, sizeof(h->opt));
    /* RFC 7323 appendix A's layout, NOP NOP TS, is what nearly every
     * segment after the handshake carries: taken without the walk. */
    if (h->hlen == TERN_TCP_HLEN + 12 && tern_get32(buf + TERN_TCP_HLEN) == 0x0101080au) {
        h->opt.has_ts = true;
        h->opt.ts_val = tern_get32(buf + TERN_TCP_HLEN + 4);
        h->opt.ts_ecr = tern_get32(buf + TERN_TCP_HLEN + 8);
        return TERN_TCP_OK;
    }
    if (!parse_options(buf + TERN_TCP_HLEN, h->hlen - TERN_TCP_HLEN, &h->opt))
        return TERN_TCP_BAD_OPTION;
    return TERN_TCP_OK;
}

size_t tern_tcp_opts_len(const struct tern_tcp_opts *o)
{
    size_t n = 0;
    if (o->has_mss)
        n += 4;
    if (o->has_wscale)
        n += 4;                      /* NOP + 3 */
    if (o->has_ts)
        n += 12;                     /* NOP NOP + 10, or SACK-permitted + 10 */
    else if (o->sack_permitted)
        n += 4;                      /* NOP NOP + 2 */
    if (o->nsack)
        n += 4 + 8 * (size_t)o->nsack; /* NOP NOP + 2 + 8n */
    return n;
}

void tern_tcp_emit(uint8_t *buf, size_t len, uint32_t src, uint32_t dst,
                   const struct tern_tcp_hdr *h)
{
    tern_tcp_emit_nocsum(buf, h);
    uint32_t sum = tern_csum_pseudo4(src, dst, TERN_IPPROTO_TCP, (uint16_t)len);
    tern_put16(buf + 16, tern_csum_fold(tern_csum_add(sum, buf, len)));
}

void tern_tcp_emit_nocsum(uint8_t *buf, const struct tern_tcp_hdr *h)
{
    const struct tern_tcp_opts *o = &h->opt;
    tern_put16(buf, h->sport);
    tern_put16(buf + 2, h->dport);
    tern_put32(buf + 4, h->seq);
    tern_put32(buf + 8, h->ack);
    buf[12] = (uint8_t)((h->hlen / 4) << 4);
    buf[13] = h->flags;
    tern_put16(buf + 14, h->wnd);
    tern_put16(buf + 16, 0);
    tern_put16(buf + 18, h->urp);
    /* The layouts Linux and FreeBSD use, so each option stays aligned. */
    uint8_t *p = buf + TERN_TCP_HLEN;
    if (o->has_mss) {
        p[0] = OPT_MSS;
        p[1] = 4;
        tern_put16(p + 2, o->mss);
        p += 4;
    }
    if (o->has_ts) {
        if (o->sack_permitted) {
            p[0] = OPT_SACK_PERMITTED;
            p[1] = 2;
        } else {
            p[0] = p[1] = OPT_NOP;
        }
        p[2] = OPT_TIMESTAMP;
        p[3] = 10;
        tern_put32(p + 4, o->ts_val);
        tern_put32(p + 8, o->ts_ecr);
        p += 12;
    } else if (o->sack_permitted) {
        p[0] = p[1] = OPT_NOP;
        p[2] = OPT_SACK_PERMITTED;
        p[3] = 2;
        p += 4;
    }
    if (o->has_wscale) {
        p[0] = OPT_NOP;
        p[1] = OPT_WSCALE;
        p[2] = 3;
        p[3] = o->wscale;
        p += 4;
    }
    if (o->nsack) {
        p[0] = p[1] = OPT_NOP;
        p[2] = OPT_SACK;
        p[3] = (uint8_t)(2 + 8 * o->nsack);
        p += 4;
        for (unsigned b = 0; b < o->nsack; b++) {
            tern_put32(p, o->sack[b].start);
            tern_put32(p + 4, o->sack[b].end);
            p += 8;
        }
    }
}
