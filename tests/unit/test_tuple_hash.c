/* The connection tuple hash (sock/pcb.h): memoised for the last two
 * tuples, yet every answer is the keyed hash of the tuple asked; and the
 * TCP ISN built on it keeps RFC 6528's shape, a 4 us clock plus a
 * per-tuple secret that another stack's key changes. */
#include "testing.h"

#include "core/stack.h"
#include "sock/pcb.h"
#include "transport/tcp/tcp.h"

static uint64_t fresh(struct tern_stack *s, uint32_t la, uint16_t lp, uint32_t fa, uint16_t fp)
{
    uint32_t key[3] = {la, fa, ((uint32_t)lp << 16) | fp};
    return tern_siphash(&s->key_flow, key, sizeof(key));
}

static void test_tuple_hash_answers_as_siphash_in_any_order(void **state)
{
    (void)state;
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.seed = 11;
    struct tern_stack *s = tern_stack_new(&cfg);
    assert_non_null(s);
    /* Four tuples that differ in one field each, asked in runs, in
     * alternation (the memo's two entries swapping), and in a cycle of
     * three (each answer evicts the one asked next). */
    const struct {
        uint32_t la, fa;
        uint16_t lp, fp;
    } t[4] = {{0xc0000201, 0xc0000202, 80, 50000},
              {0xc0000201, 0xc0000202, 80, 50001},
              {0xc0000201, 0xc0000203, 80, 50000},
              {0xc0000202, 0xc0000201, 50000, 80}};
    const int order[] = {0, 0, 0, 1, 0, 1, 0, 1, 1, 2, 3, 2, 0, 1, 2, 0, 1, 2, 3, 3, 0};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        int k = order[i];
        assert_int_equal(tern_tuple_hash(s, t[k].la, t[k].lp, t[k].fa, t[k].fp),
                         fresh(s, t[k].la, t[k].lp, t[k].fa, t[k].fp));
    }
    /* A tuple is not its mirror: the two ends of one connection file it
     * under their own views. */
    assert_true(fresh(s, t[0].la, t[0].lp, t[0].fa, t[0].fp) !=
                fresh(s, t[0].fa, t[0].fp, t[0].la, t[0].lp));
    tern_stack_free(s);
}

static void test_isn_is_a_4us_clock_plus_a_keyed_hash(void **state)
{
    (void)state;
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.seed = 12;
    struct tern_stack *a = tern_stack_new(&cfg);
    cfg.seed = 13;
    struct tern_stack *b = tern_stack_new(&cfg);
    assert_non_null(a);
    assert_non_null(b);
    const uint32_t la = 0xc0000201, fa = 0xc0000202;
    a->now = b->now = 10 * TERN_NS_PER_SEC;
    uint32_t isn0 = tern_tcp_isn(a, la, 80, fa, 40000);
    /* The hash is the high half of the tuple hash, the half that does
     * not pick the table slot. */
    assert_int_equal(isn0 - (uint32_t)(a->now / 4000),
                     (uint32_t)(fresh(a, la, 80, fa, 40000) >> 32));
    /* The same tuple 4 ms later: 1000 ticks of the clock further on,
     * whatever was hashed in between. */
    assert_int_equal(tern_tuple_hash(a, la, 80, fa, 40001), fresh(a, la, 80, fa, 40001));
    assert_int_equal(tern_tuple_hash(a, la, 80, fa, 40002), fresh(a, la, 80, fa, 40002));
    a->now += 4 * 1000000;
    assert_int_equal(tern_tcp_isn(a, la, 80, fa, 40000) - isn0, 1000);
    /* Another port, or another stack's key: another sequence space. */
    uint32_t next_port = tern_tcp_isn(a, la, 80, fa, 40001);
    assert_true(next_port - isn0 != 1000);
    b->now = a->now;
    assert_true(tern_tcp_isn(b, la, 80, fa, 40000) != isn0 + 1000);
    tern_stack_free(a);
    tern_stack_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tuple_hash_answers_as_siphash_in_any_order),
        cmocka_unit_test(test_isn_is_a_4us_clock_plus_a_keyed_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
