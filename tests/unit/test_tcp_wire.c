/* TCP header and options: the bytes Linux puts on the wire, malformed
 * options refused, and sequence arithmetic across the wrap. */
#include "testing.h"

#include <string.h>

#include "wire/bytes.h"
#include "wire/tcp.h"

#define SRC 0xc0000201u
#define DST 0xc0000202u

static void test_syn_options_match_linux_layout(void **state)
{
    (void)state;
    uint8_t buf[60];
    struct tern_tcp_hdr h = {.sport = 40000, .dport = 80, .seq = 0x01020304, .flags = TERN_TCP_SYN,
                             .wnd = 64240};
    h.opt = (struct tern_tcp_opts){.has_mss = true, .mss = 1460, .sack_permitted = true,
                                   .has_ts = true, .ts_val = 0x11223344, .has_wscale = true,
                                   .wscale = 7};
    size_t ol = tern_tcp_opts_len(&h.opt);
    assert_int_equal(ol, 20);
    h.hlen = (uint8_t)(TERN_TCP_HLEN + ol);
    tern_tcp_emit(buf, h.hlen, SRC, DST, &h);
    /* A Linux SYN: MSS, SACK-permitted + timestamps, NOP + window scale. */
    const uint8_t want[20] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0x11, 0x22, 0x33, 0x44,
                              0, 0, 0, 0, 1, 3, 3, 7};
    assert_memory_equal(buf + 20, want, 20);
    assert_int_equal(buf[12], 10 << 4);
    struct tern_tcp_hdr p;
    assert_int_equal(tern_tcp_parse(buf, h.hlen, SRC, DST, true, &p), TERN_TCP_OK);
    assert_int_equal(p.sport, 40000);
    assert_int_equal(p.dport, 80);
    assert_int_equal(p.seq, 0x01020304);
    assert_int_equal(p.flags, TERN_TCP_SYN);
    assert_int_equal(p.wnd, 64240);
    assert_true(p.opt.has_mss && p.opt.mss == 1460);
    assert_true(p.opt.sack_permitted);
    assert_true(p.opt.has_ts && p.opt.ts_val == 0x11223344 && p.opt.ts_ecr == 0);
    assert_true(p.opt.has_wscale && p.opt.wscale == 7);
    /* Checksum covers the pseudo header. */
    assert_int_equal(tern_tcp_parse(buf, h.hlen, SRC, DST + 1, true, &p), TERN_TCP_BAD_CHECKSUM);
}

static void test_data_segment_with_sack_blocks(void **state)
{
    (void)state;
    uint8_t buf[20 + 40 + 5];
    struct tern_tcp_hdr h = {.sport = 1, .dport = 2, .seq = 0xfffffffe, .ack = 7,
                             .flags = TERN_TCP_ACK | TERN_TCP_PSH, .wnd = 100};
    h.opt.has_ts = true;
    h.opt.ts_val = 5;
    h.opt.ts_ecr = 6;
    h.opt.nsack = 2;
    h.opt.sack[0] = (struct tern_tcp_sack_block){100, 200};
    h.opt.sack[1] = (struct tern_tcp_sack_block){300, 400};
    size_t ol = tern_tcp_opts_len(&h.opt);
    assert_int_equal(ol, 12 + 4 + 16);
    h.hlen = (uint8_t)(20 + ol);
    memcpy(buf + h.hlen, "hello", 5);
    tern_tcp_emit(buf, h.hlen + 5u, SRC, DST, &h);
    struct tern_tcp_hdr p;
    assert_int_equal(tern_tcp_parse(buf, h.hlen + 5u, SRC, DST, true, &p), TERN_TCP_OK);
    assert_int_equal(p.hlen, h.hlen);
    assert_int_equal(p.opt.nsack, 2);
    assert_int_equal(p.opt.sack[1].start, 300);
    assert_int_equal(p.opt.sack[1].end, 400);
    assert_int_equal(p.opt.ts_ecr, 6);
    assert_false(p.opt.has_mss);
    buf[h.hlen + 2] ^= 1; /* payload is checksummed too */
    assert_int_equal(tern_tcp_parse(buf, h.hlen + 5u, SRC, DST, true, &p), TERN_TCP_BAD_CHECKSUM);
}

/* Build a header with raw option bytes and a right checksum. */
static size_t with_options(uint8_t *buf, const uint8_t *opts, size_t olen)
{
    memset(buf, 0, 60);
    buf[12] = (uint8_t)(((20 + olen) / 4) << 4);
    memcpy(buf + 20, opts, olen);
    size_t len = 20 + olen;
    uint8_t pseudo[12] = {0xc0, 0, 2, 1, 0xc0, 0, 2, 2, 0, 6, 0, (uint8_t)len};
    uint32_t acc = 0;
    for (size_t i = 0; i < 12; i += 2)
        acc += (uint32_t)(pseudo[i] << 8 | pseudo[i + 1]);
    for (size_t i = 0; i < len; i += 2)
        acc += (uint32_t)(buf[i] << 8 | buf[i + 1]);
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    tern_put16(buf + 16, (uint16_t)~acc);
    return len;
}

/* Timestamps alone, in RFC 7323 appendix A's layout (NOP NOP TS, read
 * without walking the options) or in any other order and padding, parse
 * alike; the layout's first word alone with a longer header is walked. */
static void test_timestamp_layouts_parse_alike(void **state)
{
    (void)state;
    uint8_t buf[60];
    struct tern_tcp_hdr p;
    static const uint8_t layouts[][12] = {
        {1, 1, 8, 10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88},
        {8, 10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 1, 1},
        {1, 8, 10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0},
    };
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
        size_t len = with_options(buf, layouts[i], sizeof(layouts[i]));
        assert_int_equal(tern_tcp_parse(buf, len, 0xc0000201, 0xc0000202, true, &p), TERN_TCP_OK);
        assert_true(p.opt.has_ts);
        assert_int_equal(p.opt.ts_val, 0x11223344);
        assert_int_equal(p.opt.ts_ecr, 0x55667788);
        assert_false(p.opt.has_mss || p.opt.has_wscale || p.opt.sack_permitted || p.opt.nsack);
    }
    /* NOP NOP TS followed by an MSS option: 16 bytes, both found. */
    static const uint8_t more[16] = {1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9, 2, 4, 5, 0xb4};
    size_t len = with_options(buf, more, sizeof(more));
    assert_int_equal(tern_tcp_parse(buf, len, 0xc0000201, 0xc0000202, true, &p), TERN_TCP_OK);
    assert_true(p.opt.has_ts && p.opt.ts_val == 7 && p.opt.ts_ecr == 9);
    assert_true(p.opt.has_mss && p.opt.mss == 1460);
    /* The layout's bytes but a timestamp of the wrong length: refused. */
    static const uint8_t bad[12] = {1, 1, 8, 9, 0, 0, 0, 7, 0, 0, 0, 9};
    len = with_options(buf, bad, sizeof(bad));
    assert_int_equal(tern_tcp_parse(buf, len, 0xc0000201, 0xc0000202, true, &p),
                     TERN_TCP_BAD_OPTION);
}

static void test_malformed_options_are_refused(void **state)
{
    (void)state;
    uint8_t buf[60];
    struct tern_tcp_hdr p;
    static const struct {
        uint8_t opts[8];
        enum tern_tcp_parse_err want;
    } cases[] = {
        {{2, 4, 5, 0xb4, 1, 1, 1, 0}, TERN_TCP_OK},          /* MSS, NOPs, EOL */
        {{2, 3, 5, 0, 0, 0, 0, 0}, TERN_TCP_BAD_OPTION},     /* MSS of length 3 */
        {{1, 1, 1, 1, 1, 1, 3, 4}, TERN_TCP_BAD_OPTION},     /* wscale of length 4 */
        {{1, 1, 1, 1, 8, 10, 0, 0}, TERN_TCP_BAD_OPTION},    /* timestamps run past the end */
        {{1, 1, 1, 1, 1, 1, 1, 99}, TERN_TCP_BAD_OPTION},    /* a kind with no length byte... */
        {{99, 0, 0, 0, 0, 0, 0, 0}, TERN_TCP_BAD_OPTION},    /* length 0: would loop forever */
        {{99, 2, 1, 1, 0, 0, 0, 0}, TERN_TCP_OK},            /* unknown kind, skipped */
        {{5, 6, 0, 0, 0, 0, 0, 0}, TERN_TCP_BAD_OPTION},     /* SACK with a partial block */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = with_options(buf, cases[i].opts, 8);
        assert_int_equal(tern_tcp_parse(buf, len, SRC, DST, true, &p), cases[i].want);
    }
    /* Data offset below 5 words or past the segment. */
    size_t len = with_options(buf, cases[0].opts, 8);
    buf[12] = 4 << 4;
    assert_int_equal(tern_tcp_parse(buf, len, SRC, DST, true, &p), TERN_TCP_BAD_HLEN);
    buf[12] = 15 << 4;
    assert_int_equal(tern_tcp_parse(buf, len, SRC, DST, true, &p), TERN_TCP_BAD_HLEN);
    assert_int_equal(tern_tcp_parse(buf, 19, SRC, DST, true, &p), TERN_TCP_TOO_SHORT);
}

static void test_sequence_arithmetic_wraps(void **state)
{
    (void)state;
    assert_true(tern_seq_lt(0xfffffff0u, 0x10));
    assert_true(tern_seq_gt(0x10, 0xfffffff0u));
    assert_true(tern_seq_le(5, 5) && tern_seq_ge(5, 5));
    assert_false(tern_seq_lt(5, 5));
    assert_true(tern_seq_between(0, 0xffffffffu, 1));
    assert_false(tern_seq_between(1, 0xffffffffu, 1));
    assert_int_equal(tern_seq_max(0xfffffff0u, 0x10), 0x10);
    assert_int_equal(tern_seq_min(0xfffffff0u, 0x10), 0xfffffff0u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syn_options_match_linux_layout),
        cmocka_unit_test(test_data_segment_with_sack_blocks),
        cmocka_unit_test(test_timestamp_layouts_parse_alike),
        cmocka_unit_test(test_malformed_options_are_refused),
        cmocka_unit_test(test_sequence_arithmetic_wraps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
