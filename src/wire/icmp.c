#include "wire/icmp.h"

#include "wire/bytes.h"
#include "wire/checksum.h"

int tern_icmp_parse(const uint8_t *buf, size_t len, struct tern_icmp_hdr *h)
{
    if (len < TERN_ICMP_HLEN)
        return -1;
    if (tern_csum_fold(tern_csum_add(0, buf, len)) != 0)
        return -2;
    h->type = buf[0];
    h->code = buf[1];
    h->rest = tern_get32(buf + 4);
    h->id = tern_get16(buf + 4);
    h->seq = tern_get16(buf + 6);
    return 0;
}

void tern_icmp_emit(uint8_t *buf, size_t len, uint8_t type, uint8_t code, uint32_t rest)
{
    buf[0] = type;
    buf[1] = code;
    tern_put16(buf + 2, 0);
    tern_put32(buf + 4, rest);
    tern_put16(buf + 2, tern_csum_fold(tern_csum_add(0, buf, len)));
}
