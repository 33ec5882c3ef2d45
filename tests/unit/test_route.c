/* The routing table: longest prefix wins whatever the insertion order. */
#include "testing.h"

#include <errno.h>

#include "net/route.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((b) << 16) | ((c) << 8) | (d))

static void test_longest_prefix_wins(void **state)
{
    (void)state;
    struct tern_route_table t = {0};
    assert_int_equal(tern_route_insert(&t, 0, 0, IP(192, 0, 2, 254), 1), 0);
    assert_int_equal(tern_route_insert(&t, IP(198, 51, 100, 0), 24, 0, 2), 0);
    assert_int_equal(tern_route_insert(&t, IP(198, 51, 100, 128), 25, IP(198, 51, 100, 1), 2), 0);
    assert_int_equal(tern_route_insert(&t, IP(192, 0, 2, 0), 24, 0, 1), 0);
    struct tern_nexthop nh;
    assert_int_equal(tern_route_lookup(&t, IP(198, 51, 100, 200), &nh), 0);
    assert_int_equal(nh.hop, IP(198, 51, 100, 1));
    assert_int_equal(nh.ifindex, 2);
    assert_int_equal(tern_route_lookup(&t, IP(198, 51, 100, 7), &nh), 0);
    assert_int_equal(nh.hop, IP(198, 51, 100, 7)); /* on link */
    assert_int_equal(tern_route_lookup(&t, IP(203, 0, 113, 9), &nh), 0);
    assert_int_equal(nh.hop, IP(192, 0, 2, 254)); /* default */
    assert_int_equal(nh.ifindex, 1);
    assert_int_equal(tern_route_remove(&t, 0, 0), 0);
    assert_int_equal(tern_route_lookup(&t, IP(203, 0, 113, 9), &nh), -1);
}

static void test_insert_errors(void **state)
{
    (void)state;
    struct tern_route_table t = {0};
    assert_int_equal(tern_route_insert(&t, IP(10, 1, 2, 3), 8, 0, 1), 0);
    /* Host bits are masked off: the same prefix again is a duplicate. */
    assert_int_equal(tern_route_insert(&t, IP(10, 9, 9, 9), 8, 0, 1), -EEXIST);
    assert_int_equal(tern_route_insert(&t, 0, 33, 0, 1), -EINVAL);
    assert_int_equal(tern_route_remove(&t, IP(11, 0, 0, 0), 8), -ESRCH);
    for (unsigned i = 1; i < TERN_MAX_ROUTES; i++)
        assert_int_equal(tern_route_insert(&t, i << 8, 24, 0, 1), 0);
    assert_int_equal(tern_route_insert(&t, IP(99, 0, 0, 0), 8, 0, 1), -ENOSPC);
    assert_int_equal(tern_prefix_mask(0), 0);
    assert_int_equal(tern_prefix_mask(32), 0xffffffffu);
    assert_int_equal(tern_prefix_mask(24), 0xffffff00u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_longest_prefix_wins),
        cmocka_unit_test(test_insert_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
