/* Pure wire code: checksums and the parsers/emitters of each header. */
#include "testing.h"

#include <string.h>

#include "wire/arp.h"
#include "wire/bytes.h"
#include "wire/checksum.h"
#include "wire/eth.h"
#include "wire/icmp.h"
#include "wire/ipv4.h"
#include "wire/udp.h"

static void test_checksum_rfc1071_example(void **state)
{
    (void)state;
    /* RFC 1071 section 3's worked example: the sum is ddf2, so the
     * checksum is its complement. */
    const uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    assert_int_equal(tern_csum_fold(tern_csum_add(0, data, sizeof(data))), (uint16_t)~0xddf2);
}

static void test_checksum_in_pieces_equals_whole(void **state)
{
    (void)state;
    uint8_t buf[1001];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    uint16_t whole = tern_csum_fold(tern_csum_add(0, buf, sizeof(buf)));
    uint32_t sum = tern_csum_add(0, buf, 100);
    sum = tern_csum_add(sum, buf + 100, 500);
    sum = tern_csum_add(sum, buf + 600, 401); /* odd tail last */
    assert_int_equal(tern_csum_fold(sum), whole);
}

static void test_ipv4_emit_parse_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[60] = {0};
    struct tern_ipv4_hdr h = {.tos = 0x10, .total_len = 48, .id = 0x1234, .df = true,
                              .ttl = 64, .proto = TERN_IPPROTO_UDP,
                              .src = 0xc0000201, .dst = 0xc0000202};
    tern_ipv4_emit(buf, &h);
    /* A real header for the same fields, as a kernel would emit it. */
    const uint8_t want[20] = {0x45, 0x10, 0x00, 0x30, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11,
                              0x00, 0x00, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02};
    assert_memory_equal(buf, want, 10);
    assert_memory_equal(buf + 12, want + 12, 8);
    assert_int_equal(tern_csum_fold(tern_csum_add(0, buf, 20)), 0);
    struct tern_ipv4_hdr p;
    assert_int_equal(tern_ipv4_parse(buf, 48, &p), TERN_IPV4_OK);
    assert_int_equal(p.hlen, 20);
    assert_int_equal(p.total_len, 48);
    assert_int_equal(p.id, 0x1234);
    assert_true(p.df);
    assert_false(p.mf);
    assert_int_equal(p.frag_off, 0);
    assert_int_equal(p.ttl, 64);
    assert_int_equal(p.proto, TERN_IPPROTO_UDP);
    assert_int_equal(p.src, 0xc0000201);
    assert_int_equal(p.dst, 0xc0000202);
}

static void test_ipv4_fragment_fields(void **state)
{
    (void)state;
    uint8_t buf[40] = {0};
    struct tern_ipv4_hdr h = {.total_len = 40, .mf = true, .frag_off = 1480, .ttl = 1,
                              .proto = 17, .src = 1, .dst = 2};
    tern_ipv4_emit(buf, &h);
    assert_int_equal(tern_get16(buf + 6), 0x2000 | (1480 / 8));
    struct tern_ipv4_hdr p;
    assert_int_equal(tern_ipv4_parse(buf, sizeof(buf), &p), TERN_IPV4_OK);
    assert_true(p.mf);
    assert_int_equal(p.frag_off, 1480);
}

static void test_ipv4_rejects_bad_headers(void **state)
{
    (void)state;
    uint8_t buf[64] = {0};
    struct tern_ipv4_hdr h = {.total_len = 40, .ttl = 9, .proto = 17, .src = 1, .dst = 2};
    struct tern_ipv4_hdr p;
    tern_ipv4_emit(buf, &h);
    assert_int_equal(tern_ipv4_parse(buf, 19, &p), TERN_IPV4_TOO_SHORT);
    assert_int_equal(tern_ipv4_parse(buf, 39, &p), TERN_IPV4_TOO_SHORT); /* total > buffer */
    uint8_t v6[64];
    memcpy(v6, buf, 64);
    v6[0] = 0x65;
    assert_int_equal(tern_ipv4_parse(v6, 40, &p), TERN_IPV4_BAD_VERSION);
    uint8_t ihl[64];
    memcpy(ihl, buf, 64);
    ihl[0] = 0x44; /* IHL 4 words: below the minimum */
    assert_int_equal(tern_ipv4_parse(ihl, 40, &p), TERN_IPV4_BAD_HLEN);
    ihl[0] = 0x4f; /* 60-byte header in a 40-byte buffer */
    assert_int_equal(tern_ipv4_parse(ihl, 40, &p), TERN_IPV4_BAD_HLEN);
    buf[8] ^= 1; /* TTL changed, checksum not */
    assert_int_equal(tern_ipv4_parse(buf, 40, &p), TERN_IPV4_BAD_CHECKSUM);
}

static void test_ipv4_options_skipped(void **state)
{
    (void)state;
    /* A header with 4 bytes of options (NOP NOP NOP EOL). */
    uint8_t buf[32] = {0x46, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
                       1, 1, 1, 0};
    tern_put16(buf + 10, tern_csum_fold(tern_csum_add(0, buf, 24)));
    struct tern_ipv4_hdr p;
    assert_int_equal(tern_ipv4_parse(buf, sizeof(buf), &p), TERN_IPV4_OK);
    assert_int_equal(p.hlen, 24);
}

static void test_udp_checksum_and_zero_checksum(void **state)
{
    (void)state;
    uint8_t buf[8 + 5];
    memcpy(buf + 8, "hello", 5);
    tern_udp_emit(buf, sizeof(buf), 0xc0000201, 0xc0000202, 1234, 7);
    struct tern_udp_hdr h;
    assert_int_equal(tern_udp_parse(buf, sizeof(buf), 0xc0000201, 0xc0000202, true, &h), TERN_UDP_OK);
    assert_int_equal(h.sport, 1234);
    assert_int_equal(h.dport, 7);
    assert_int_equal(h.len, 13);
    /* The pseudo header counts: another destination fails. */
    assert_int_equal(tern_udp_parse(buf, sizeof(buf), 0xc0000201, 0xc0000203, true, &h),
                     TERN_UDP_BAD_CHECKSUM);
    buf[9] ^= 0x40;
    assert_int_equal(tern_udp_parse(buf, sizeof(buf), 0xc0000201, 0xc0000202, true, &h),
                     TERN_UDP_BAD_CHECKSUM);
    /* RFC 768: zero means no checksum, and is accepted. */
    buf[6] = buf[7] = 0;
    assert_int_equal(tern_udp_parse(buf, sizeof(buf), 0xc0000201, 0xc0000202, true, &h), TERN_UDP_OK);
    /* Length field beyond the payload, or below the header. */
    tern_put16(buf + 4, 14);
    assert_int_equal(tern_udp_parse(buf, sizeof(buf), 1, 2, true, &h), TERN_UDP_TOO_SHORT);
    tern_put16(buf + 4, 7);
    assert_int_equal(tern_udp_parse(buf, sizeof(buf), 1, 2, true, &h), TERN_UDP_TOO_SHORT);
    assert_int_equal(tern_udp_parse(buf, 7, 1, 2, true, &h), TERN_UDP_TOO_SHORT);
}

static void test_udp_checksum_never_zero_on_wire(void **state)
{
    (void)state;
    /* Find a payload whose computed checksum is 0: it must go out as
     * 0xffff (RFC 768), since 0 means "none". */
    uint8_t buf[10];
    for (unsigned x = 0; x < 65536; x++) {
        tern_put16(buf + 8, (uint16_t)x);
        tern_udp_emit(buf, sizeof(buf), 0x01020304, 0x05060708, 1, 2);
        uint16_t c = tern_get16(buf + 6);
        assert_int_not_equal(c, 0);
        if (c == 0xffff) {
            struct tern_udp_hdr h;
            assert_int_equal(tern_udp_parse(buf, sizeof(buf), 0x01020304, 0x05060708, true, &h),
                             TERN_UDP_OK);
            return;
        }
    }
    fail_msg("no payload gave a zero checksum");
}

static void test_icmp_echo_roundtrip(void **state)
{
    (void)state;
    uint8_t m[8 + 4] = {0, 0, 0, 0, 0, 0, 0, 0, 'p', 'i', 'n', 'g'};
    tern_icmp_emit(m, sizeof(m), TERN_ICMP_ECHO, 0, (0xbeefu << 16) | 7);
    struct tern_icmp_hdr h;
    assert_int_equal(tern_icmp_parse(m, sizeof(m), &h), 0);
    assert_int_equal(h.type, TERN_ICMP_ECHO);
    assert_int_equal(h.id, 0xbeef);
    assert_int_equal(h.seq, 7);
    m[10] ^= 1;
    assert_int_equal(tern_icmp_parse(m, sizeof(m), &h), -2);
    assert_int_equal(tern_icmp_parse(m, 7, &h), -1);
}

static void test_arp_roundtrip_and_validation(void **state)
{
    (void)state;
    struct tern_arp_msg m = {.op = TERN_ARP_REQUEST, .sha = {2, 0, 0, 0, 0, 1},
                             .spa = 0xc0000201, .tpa = 0xc0000202};
    uint8_t buf[TERN_ARP_LEN];
    tern_arp_emit(buf, &m);
    const uint8_t head[8] = {0, 1, 8, 0, 6, 4, 0, 1};
    assert_memory_equal(buf, head, 8);
    struct tern_arp_msg p;
    assert_int_equal(tern_arp_parse(buf, sizeof(buf), &p), 0);
    assert_int_equal(p.op, TERN_ARP_REQUEST);
    assert_memory_equal(p.sha, m.sha, 6);
    assert_int_equal(p.spa, m.spa);
    assert_int_equal(p.tpa, m.tpa);
    assert_int_equal(tern_arp_parse(buf, 27, &p), -1);
    buf[5] = 16; /* IPv6-sized protocol addresses: not ours */
    assert_int_equal(tern_arp_parse(buf, sizeof(buf), &p), -1);
}

static void test_eth_roundtrip(void **state)
{
    (void)state;
    uint8_t dst[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, src[6] = {2, 1, 2, 3, 4, 5};
    uint8_t buf[14];
    tern_eth_emit(buf, dst, src, TERN_ETHERTYPE_ARP);
    struct tern_eth_hdr h;
    assert_int_equal(tern_eth_parse(buf, 14, &h), 0);
    assert_true(tern_eth_is_bcast(h.dst));
    assert_true(tern_eth_is_group(h.dst));
    assert_false(tern_eth_is_group(h.src));
    assert_int_equal(h.type, TERN_ETHERTYPE_ARP);
    assert_int_equal(tern_eth_parse(buf, 13, &h), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checksum_rfc1071_example),
        cmocka_unit_test(test_checksum_in_pieces_equals_whole),
        cmocka_unit_test(test_ipv4_emit_parse_roundtrip),
        cmocka_unit_test(test_ipv4_fragment_fields),
        cmocka_unit_test(test_ipv4_rejects_bad_headers),
        cmocka_unit_test(test_ipv4_options_skipped),
        cmocka_unit_test(test_udp_checksum_and_zero_checksum),
        cmocka_unit_test(test_udp_checksum_never_zero_on_wire),
        cmocka_unit_test(test_icmp_echo_roundtrip),
        cmocka_unit_test(test_arp_roundtrip_and_validation),
        cmocka_unit_test(test_eth_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
