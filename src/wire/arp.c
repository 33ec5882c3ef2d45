#include "wire/arp.h"

#include <string.h>

#include "wire/bytes.h"

int tern_arp_parse(const uint8_t *buf, size_t len, struct tern_arp_msg *m)
{
    if (len < TERN_ARP_LEN)
        return -1;
    /* hardware type Ethernet (1), protocol IPv4, address lengths 6 and 4 */
    if (tern_get16(buf) != 1 || tern_get16(buf + 2) != 0x0800 || buf[4] != 6 || buf[5] != 4)
        return -1;
    m->op = tern_get16(buf + 6);
    memcpy(m->sha, buf + 8, 6);
    m->spa = tern_get32(buf + 14);
    memcpy(m->tha, buf + 18, 6);
    m->tpa = tern_get32(buf + 24);
    return 0;
}

void tern_arp_emit(uint8_t *buf, const struct tern_arp_msg *m)
{
    tern_put16(buf, 1);
    tern_put16(buf + 2, 0x0800);
    buf[4] = 6;
    buf[5] = 4;
    tern_put16(buf + 6, m->op);
    memcpy(buf + 8, m->sha, 6);
    tern_put32(buf + 14, m->spa);
    memcpy(buf + 18, m->tha, 6);
    tern_put32(buf + 24, m->tpa);
}
