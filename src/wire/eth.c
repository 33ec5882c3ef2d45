#include "wire/eth.h"

#include "wire/bytes.h"

int tern_eth_parse(const uint8_t *buf, size_t len, struct tern_eth_hdr *h)
{
    if (len < TERN_ETH_HLEN)
        return -1;
    memcpy(h->dst, buf, 6);
    memcpy(h->src, buf + 6, 6);
    h->type = tern_get16(buf + 12);
    return 0;
}

void tern_eth_emit(uint8_t *buf, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
    memcpy(buf, dst, 6);
    memcpy(buf + 6, src, 6);
    tern_put16(buf + 12, type);
}
