/* The Internet checksum against the plainest reading of RFC 1071: 16-bit
 * big-endian words added one at a time. Every length, alignment and
 * starting sum the word-at-a-time code distinguishes. */
#include "testing.h"

#include <string.h>

#include "wire/checksum.h"

static uint16_t reference(uint32_t sum, const uint8_t *p, size_t len)
{
    uint64_t acc = sum;
    for (size_t i = 0; i + 1 < len; i += 2)
        acc += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len % 2)
        acc += (uint32_t)p[len - 1] << 8;
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)~acc;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint8_t next_byte(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint8_t)rng;
}

static void test_matches_reference(void **state)
{
    (void)state;
    static uint8_t buf[2048 + 8];
    static const uint32_t sums[] = {0, 1, 0xffff, 0x1fffe, 0x12345, 0xfffffffe};
    for (int fill = 0; fill < 3; fill++) {
        for (size_t i = 0; i < sizeof(buf); i++)
            buf[i] = fill == 0 ? next_byte() : fill == 1 ? 0xff : 0;
        for (size_t off = 0; off < 8; off++)
            for (size_t len = 0; len <= 300; len++)
                for (size_t s = 0; s < sizeof(sums) / sizeof(sums[0]); s++) {
                    uint16_t want = reference(sums[s], buf + off, len);
                    /* The path this CPU takes (a vector one where it has
                     * one) and the portable one. */
                    assert_int_equal(tern_csum_fold(tern_csum_add(sums[s], buf + off, len)),
                                     want);
                    assert_int_equal(
                        tern_csum_fold(tern_csum_add_scalar(sums[s], buf + off, len)), want);
                }
        /* Long ones too, as a 64 KiB frame's. */
        for (size_t len = 1500; len <= 2048; len += 137) {
            assert_int_equal(tern_csum_fold(tern_csum_add(0, buf + 3, len)),
                             reference(0, buf + 3, len));
            assert_int_equal(tern_csum_fold(tern_csum_add_scalar(0, buf + 3, len)),
                             reference(0, buf + 3, len));
        }
    }
}

static void test_zero_and_all_ones_stay_apart(void **state)
{
    (void)state;
    /* Data of all zeros sums to 0 (checksum 0xffff); data of 0xffff words
     * sums to 0xffff (checksum 0): the same value modulo 2^16 - 1, but a
     * receiver that verifies tells them apart, so the sum must too. */
    uint8_t zeros[64] = {0}, ones[64];
    memset(ones, 0xff, sizeof(ones));
    assert_int_equal(tern_csum_fold(tern_csum_add(0, zeros, sizeof(zeros))), 0xffff);
    assert_int_equal(tern_csum_fold(tern_csum_add(0, ones, sizeof(ones))), 0);
}

static void test_pieces_at_even_offsets_equal_whole(void **state)
{
    (void)state;
    uint8_t buf[1500];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = next_byte();
    uint16_t whole = tern_csum_fold(tern_csum_add(0, buf, sizeof(buf)));
    for (size_t cut = 0; cut <= 64; cut += 2) {
        uint32_t sum = tern_csum_add(0, buf, cut);
        sum = tern_csum_add(sum, buf + cut, sizeof(buf) - cut);
        assert_int_equal(tern_csum_fold(sum), whole);
    }
}

static void test_hdr20_matches_the_general_sum(void **state)
{
    (void)state;
    uint8_t h[20];
    for (int round = 0; round < 20000; round++) {
        for (int i = 0; i < 20; i++)
            h[i] = round < 3 ? (uint8_t)(round == 1 ? 0xff : 0) : next_byte();
        uint16_t want = tern_csum_fold(tern_csum_add(0, h, 20));
        assert_int_equal(tern_csum_hdr20(h), want);
        assert_int_equal(reference(0, h, 20), want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_hdr20_matches_the_general_sum),
        cmocka_unit_test(test_zero_and_all_ones_stay_apart),
        cmocka_unit_test(test_pieces_at_even_offsets_equal_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
