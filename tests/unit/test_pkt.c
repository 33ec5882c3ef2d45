/* Packet buffers: headroom, references, pool limits, poison, and the
 * invariants that catch a double free or a free while queued. */
#include "testing.h"

#include <string.h>

#include "buf/pkt.h"
#include "core/stack.h"

static struct tern_stack *small_stack(uint64_t max_packets)
{
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.max_packets = max_packets;
    struct tern_stack *s = tern_stack_new(&cfg);
    assert_non_null(s);
    return s;
}

static void test_headroom_push_pull(void **state)
{
    (void)state;
    struct tern_stack *s = small_stack(64);
    struct tern_pkt *p = tern_pkt_alloc(s, 16, 100);
    assert_non_null(p);
    assert_int_equal(p->len, 100);
    uint8_t *h = tern_pkt_push(p, 16);
    assert_non_null(h);
    assert_int_equal(p->len, 116);
    assert_null(tern_pkt_push(p, 1)); /* no headroom left */
    tern_pkt_pull(p, 16);
    assert_int_equal(p->len, 100);
    tern_pkt_trim(p, 10);
    assert_int_equal(p->len, 10);
    tern_pkt_trim(p, 50); /* never grows */
    assert_int_equal(p->len, 10);
    tern_pkt_free_take(s, p);
    tern_stack_free(s);
}

static void test_refcount_and_live_count(void **state)
{
    (void)state;
    struct tern_stack *s = small_stack(64);
    struct tern_live live;
    struct tern_pkt *p = tern_pkt_alloc(s, 0, 10);
    struct tern_pkt *big = tern_pkt_alloc(s, 128, 60000); /* past the small size */
    assert_non_null(big);
    assert_true(big->cap >= 60128);
    tern_pkt_ref(s, p);
    tern_stack_live(s, &live);
    assert_int_equal(live.packets, 2);
    tern_pkt_free_take(s, p);
    tern_stack_live(s, &live);
    assert_int_equal(live.packets, 2); /* one reference left */
    tern_pkt_free_take(s, p);
    tern_pkt_free_take(s, big);
    tern_stack_live(s, &live);
    assert_int_equal(live.packets, 0);
    tern_stack_free(s);
}

static void test_pool_limit_is_counted_not_fatal(void **state)
{
    (void)state;
    struct tern_stack *s = small_stack(64);
    struct tern_pkt *held[64];
    for (int i = 0; i < 64; i++)
        assert_non_null(held[i] = tern_pkt_alloc(s, 0, 1));
    assert_null(tern_pkt_alloc(s, 0, 1));
    assert_int_equal(tern_counter_by_name(s, "drop.pkt.pool_empty"), 1);
    for (int i = 0; i < 64; i++)
        tern_pkt_free_take(s, held[i]);
    assert_non_null(held[0] = tern_pkt_alloc(s, 0, 1));
    tern_pkt_free_take(s, held[0]);
    tern_stack_free(s);
}

static void test_freed_buffer_is_poisoned_and_recycled(void **state)
{
    (void)state;
#ifdef TERN_DEBUG
    struct tern_stack *s = small_stack(64);
    struct tern_pkt *p = tern_pkt_alloc(s, 0, 100);
    memset(tern_pkt_data(p), 0x11, 100);
    uint8_t *data = tern_pkt_data(p);
    tern_pkt_free_take(s, p);
    /* The pool keeps the buffer: what a stale reader would see is poison. */
    for (int i = 0; i < 100; i++)
        assert_int_equal(data[i], 0xdb);
    struct tern_pkt *q = tern_pkt_alloc(s, 0, 100);
    assert_ptr_equal(q, p); /* recycled from the pool */
    tern_pkt_free_take(s, q);
    tern_stack_free(s);
#else
    skip();
#endif
}

static void double_free(void *arg)
{
    (void)arg;
    struct tern_stack *s = tern_stack_new(NULL);
    struct tern_pkt *p = tern_pkt_alloc(s, 0, 10);
    tern_pkt_free_take(s, p);
    tern_pkt_free_take(s, p);
}

static void free_while_queued(void *arg)
{
    (void)arg;
    struct tern_stack *s = tern_stack_new(NULL);
    struct tern_list q;
    tern_list_init(&q);
    struct tern_pkt *p = tern_pkt_alloc(s, 0, 10);
    tern_list_push_back(&q, &p->node);
    tern_pkt_free_take(s, p);
}

static void leak_packet(void *arg)
{
    (void)arg;
    struct tern_stack *s = tern_stack_new(NULL);
    (void)tern_pkt_alloc(s, 0, 10);
    tern_stack_free(s);
}

static void test_misuse_is_caught_with_a_reason(void **state)
{
    (void)state;
    expect_abort(double_free, NULL, "freed twice");
    expect_abort(free_while_queued, NULL, "still on a queue");
    expect_abort(leak_packet, NULL, "leaked objects: 1 packets");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headroom_push_pull),
        cmocka_unit_test(test_refcount_and_live_count),
        cmocka_unit_test(test_pool_limit_is_counted_not_fatal),
        cmocka_unit_test(test_freed_buffer_is_poisoned_and_recycled),
        cmocka_unit_test(test_misuse_is_caught_with_a_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
