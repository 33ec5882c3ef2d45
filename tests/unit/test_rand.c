/* The seeded generator and SipHash: reproducible, unbiased enough, and
 * SipHash-2-4 exactly as its reference vectors say. */
#include "testing.h"

#include "core/rand.h"

static uint64_t sip_msg_prefix(size_t len)
{
    struct tern_siphash_key k;
    uint8_t key[16], msg[64] = {0};
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (size_t i = 0; i < len; i++)
        msg[i] = (uint8_t)i;
    k.k0 = k.k1 = 0;
    for (int i = 7; i >= 0; i--) {
        k.k0 = (k.k0 << 8) | key[i];
        k.k1 = (k.k1 << 8) | key[8 + i];
    }
    return tern_siphash(&k, msg, len);
}

static void test_siphash_reference_vectors(void **state)
{
    (void)state;
    /* From the SipHash paper's appendix and reference implementation:
     * key 00..0f, message 00..(len-1). */
    assert_int_equal(sip_msg_prefix(0), 0x726fdb47dd0e0e31ull);
    assert_int_equal(sip_msg_prefix(1), 0x74f839c593dc67fdull);
    assert_int_equal(sip_msg_prefix(8), 0x93f5f5799a932462ull);
    assert_int_equal(sip_msg_prefix(15), 0xa129ca6149be45e5ull);
}

static void test_rng_is_reproducible_and_seed_sensitive(void **state)
{
    (void)state;
    struct tern_rng a, b, c;
    tern_rng_seed(&a, 7);
    tern_rng_seed(&b, 7);
    tern_rng_seed(&c, 8);
    int same_as_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = tern_rng_next(&a);
        assert_int_equal(x, tern_rng_next(&b));
        same_as_c += x == tern_rng_next(&c);
    }
    assert_true(same_as_c < 2);
}

static void test_rng_below_stays_in_range_and_covers_it(void **state)
{
    (void)state;
    struct tern_rng r;
    tern_rng_seed(&r, 0);
    int seen[10] = {0};
    for (int i = 0; i < 100000; i++) {
        uint64_t x = tern_rng_below(&r, 10);
        assert_true(x < 10);
        seen[x]++;
    }
    for (int i = 0; i < 10; i++)
        assert_in_range(seen[i], 9000, 11000);
    int hits = 0;
    for (int i = 0; i < 100000; i++)
        hits += tern_rng_chance_ppm(&r, 250000);
    assert_in_range(hits, 24000, 26000);
    assert_false(tern_rng_chance_ppm(&r, 0));
}

static void test_siphash_memo_answers_as_siphash_for_any_sequence(void **state)
{
    (void)state;
    struct tern_siphash_key k = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
    struct tern_siphash_memo m = {0};
    /* Repeats, changes in any word, two inputs in alternation (the
     * memo's two entries trading places), a cycle of three (each answer
     * evicting the next one asked), and a shorter key with the same
     * leading words: every answer is the plain hash's. */
    const uint32_t inputs[][3] = {{1, 2, 3}, {1, 2, 3}, {1, 2, 4}, {1, 2, 4}, {9, 2, 4},
                                  {1, 2, 3}, {9, 2, 4}, {1, 2, 3}, {9, 2, 4}, {0, 0, 0},
                                  {1, 2, 3}, {9, 2, 4}, {0, 0, 0}, {1, 2, 3}, {0, 0, 0}};
    for (unsigned words = 1; words <= 3; words++)
        for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
            unsigned w = (i % 2) ? words : 4 - words;
            assert_int_equal(tern_siphash_memo(&m, &k, inputs[i], w),
                             tern_siphash(&k, inputs[i], w * sizeof(uint32_t)));
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_siphash_reference_vectors),
        cmocka_unit_test(test_siphash_memo_answers_as_siphash_for_any_sequence),
        cmocka_unit_test(test_rng_is_reproducible_and_seed_sensitive),
        cmocka_unit_test(test_rng_below_stays_in_range_and_covers_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
