/* Stack-level lifecycle: a stack torn down in the middle of everything
 * frees it all; several stacks in one process never see each other;
 * routing through a gateway. */
#include "testing.h"

#include <errno.h>
#include <string.h>

#include "sim.h"

#define MS TERN_NS_PER_MS
#define SEC TERN_NS_PER_SEC

static void test_teardown_mid_flight_frees_everything(void **state)
{
    (void)state;
    /* Sockets with queued datagrams, ARP entries with packets waiting,
     * reassembly in progress, armed timers, packets in loopback: then
     * tern_stack_free. It must free all of it (LeakSanitizer checks under
     * ASan) and must not abort on its own live-count check. */
    struct sim sim;
    sim_init(&sim, 2, NULL);
    (void)sim_udp(&sim, 1, 7); /* left open on purpose */
    int cli = sim_udp(&sim, 0, 0);
    struct sockaddr_in to = sim_sin(1, 7), nobody = sim_sin(40, 7), self = sim_sin(0, 7);
    for (int i = 0; i < 5; i++)
        tern_sendto(sim.st[0], cli, "queued", 6, 0, (struct sockaddr *)&to, sizeof(to));
    static char big[20000];
    tern_sendto(sim.st[0], cli, big, sizeof(big), 0, (struct sockaddr *)&nobody, sizeof(nobody));
    tern_sendto(sim.st[0], cli, "loop", 4, 0, (struct sockaddr *)&self, sizeof(self));
    static uint8_t frag[2048], payload[1000];
    size_t fl = sim_raw_ipv4(&sim, 1, frag, 17, 5, 0, true, payload, sizeof(payload));
    sim_raw_send(&sim, frag, fl); /* a first fragment whose rest never comes */
    sim_run(&sim, 10 * MS);
    struct tern_live live;
    tern_stack_live(sim.st[0], &live);
    assert_true(live.arp_entries >= 1 && live.timers >= 1 && live.packets >= 1);
    tern_stack_live(sim.st[1], &live);
    assert_true(live.sockets == 1 && live.packets >= 6 && live.reasm_datagrams == 1);
    for (int i = 0; i < 2; i++) {
        tern_stack_free(sim.st[i]);
        tern_link_free(sim.link[i]);
    }
    tern_link_free(sim.raw);
    tern_wire_free(sim.wire);
}

static void test_stacks_are_independent(void **state)
{
    (void)state;
    /* Two pairs of stacks with the same addresses on two wires in one
     * process: each pair only ever sees its own traffic. */
    struct sim a, b;
    sim_init(&a, 2, NULL);
    struct sim_opts o = {.seed = 9};
    sim_init(&b, 2, &o);
    int sa = sim_udp(&a, 1, 7), sb = sim_udp(&b, 1, 7);
    int ca = sim_udp(&a, 0, 0), cb = sim_udp(&b, 0, 0);
    struct sockaddr_in to = sim_sin(1, 7);
    tern_sendto(a.st[0], ca, "AAAA", 4, 0, (struct sockaddr *)&to, sizeof(to));
    tern_sendto(b.st[0], cb, "BB", 2, 0, (struct sockaddr *)&to, sizeof(to));
    sim_run(&a, 10 * MS);
    sim_run(&b, 10 * MS);
    char buf[8];
    assert_int_equal(tern_recv(a.st[1], sa, buf, sizeof(buf), 0), 4);
    assert_memory_equal(buf, "AAAA", 4);
    assert_int_equal(tern_recv(b.st[1], sb, buf, sizeof(buf), 0), 2);
    assert_memory_equal(buf, "BB", 2);
    assert_int_equal(tern_recv(a.st[1], sa, buf, sizeof(buf), 0), -1);
    assert_int_equal(sim_counter(&a, 1, "udp.rx"), 1);
    assert_int_equal(sim_counter(&b, 1, "udp.rx"), 1);
    /* Handles are per stack: one stack's handle means nothing to another. */
    int only_in_a = tern_socket(a.st[0], AF_INET, SOCK_DGRAM, 0);
    int c2 = tern_socket(b.st[0], AF_INET, SOCK_DGRAM, 0);
    assert_int_equal(tern_close(b.st[0], c2), 0);
    errno = 0;
    assert_int_equal(tern_close(b.st[0], c2), -1);
    assert_int_equal(errno, EBADF);
    assert_int_equal(tern_close(a.st[0], only_in_a), 0);
    tern_close(a.st[1], sa);
    tern_close(b.st[1], sb);
    tern_close(a.st[0], ca);
    tern_close(b.st[0], cb);
    sim_finish(&a);
    sim_finish(&b);
}

static void test_default_gateway_carries_off_link_traffic(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    /* Stack 0 reaches 203.0.113.0/24 through stack 1 (192.0.2.2). */
    struct in_addr any = {0};
    assert_int_equal(tern_route_add(sim.st[0], any, 0, sim_addr(1), sim.ifindex[0]), 0);
    errno = 0;
    assert_int_equal(tern_route_add(sim.st[0], any, 0, sim_addr(1), sim.ifindex[0]), -1);
    assert_int_equal(errno, EEXIST);
    int c = sim_udp(&sim, 0, 0);
    struct sockaddr_in far = {.sin_family = AF_INET, .sin_port = htons(9),
                              .sin_addr.s_addr = htonl(0xcb007105)}; /* 203.0.113.5 */
    uint8_t out[2048];
    while (sim_raw_recv(&sim, -1, out, sizeof(out)) > 0) {
    }
    assert_int_equal(tern_sendto(sim.st[0], c, "via gw", 6, 0, (struct sockaddr *)&far,
                                 sizeof(far)), 6);
    sim_run(&sim, 10 * MS);
    /* The frame went to the gateway's MAC with the far address inside. */
    uint8_t gw_mac[6];
    tern_if_get_mac(sim.st[1], sim.ifindex[1], gw_mac);
    size_t n = sim_raw_recv(&sim, 17, out, sizeof(out));
    assert_true(n > 0);
    assert_memory_equal(out, gw_mac, 6);
    assert_int_equal(out[14 + 16], 203);
    assert_int_equal(out[14 + 19], 5);
    /* The gateway is a host, not a router: it counts and drops it. */
    assert_int_equal(sim_counter(&sim, 1, "drop.ip.not_for_us"), 1);
    /* More specific beats default: a /24 on-link route wins for 192.0.2.x. */
    assert_int_equal(tern_route_del(sim.st[0], any, 0), 0);
    errno = 0;
    assert_int_equal(tern_sendto(sim.st[0], c, "x", 1, 0, (struct sockaddr *)&far, sizeof(far)),
                     -1);
    assert_int_equal(errno, ENETUNREACH);
    tern_close(sim.st[0], c);
    sim_finish(&sim);
}

static void test_address_removal_and_interface_errors(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct in_addr extra = {.s_addr = htonl(0xc6336401)}; /* 198.51.100.1 */
    errno = 0;
    assert_int_equal(tern_if_addr_add(sim.st[0], 99, extra, 24), -1);
    assert_int_equal(errno, ENODEV);
    struct in_addr bad = {.s_addr = htonl(0xe0000001)}; /* multicast */
    assert_int_equal(tern_if_addr_add(sim.st[0], sim.ifindex[0], bad, 24), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(tern_if_addr_add(sim.st[0], sim.ifindex[0], extra, 24), 0);
    assert_int_equal(tern_if_addr_add(sim.st[0], sim.ifindex[0], extra, 24), -1);
    assert_int_equal(errno, EEXIST);
    int fd = tern_socket(sim.st[0], AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in b = {.sin_family = AF_INET, .sin_addr = extra};
    assert_int_equal(tern_bind(sim.st[0], fd, (struct sockaddr *)&b, sizeof(b)), 0);
    assert_int_equal(tern_if_addr_del(sim.st[0], sim.ifindex[0], extra), 0);
    assert_int_equal(tern_if_addr_del(sim.st[0], sim.ifindex[0], extra), -1);
    assert_int_equal(errno, EADDRNOTAVAIL);
    /* The connected route went with the address. */
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9),
                             .sin_addr.s_addr = htonl(0xc6336402)};
    assert_int_equal(tern_sendto(sim.st[0], fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)),
                     -1);
    assert_int_equal(errno, ENETUNREACH);
    tern_close(sim.st[0], fd);
    assert_int_equal(tern_if_add(sim.st[0], sim.link[0], NULL), -1);
    assert_int_equal(errno, EEXIST);
    sim_finish(&sim);
}


static void test_loopback_and_this_host_destinations(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 1, NULL);
    int fd = sim_udp(&sim, 0, 7);
    uint8_t out[2048];
    while (sim_raw_recv(&sim, -1, out, sizeof(out)) > 0) {
    }
    /* 127/8 never leaves the host, and there is no loopback interface. */
    struct sockaddr_in lo = {.sin_family = AF_INET, .sin_port = htons(7),
                             .sin_addr.s_addr = htonl(0x7f000001)};
    errno = 0;
    assert_int_equal(tern_sendto(sim.st[0], fd, "x", 1, 0, (struct sockaddr *)&lo, sizeof(lo)),
                     -1);
    assert_int_equal(errno, ENETUNREACH);
    /* 0.0.0.0 means this host, as on Linux: delivered locally. */
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(7)};
    assert_int_equal(tern_sendto(sim.st[0], fd, "me", 2, 0, (struct sockaddr *)&any, sizeof(any)),
                     2);
    sim_run(&sim, MS);
    char buf[8];
    assert_int_equal(tern_recv(sim.st[0], fd, buf, sizeof(buf), 0), 2);
    assert_int_equal(sim_raw_recv(&sim, -1, out, sizeof(out)), 0); /* nothing on the wire */
    /* Datagrams to ourselves queue until a poll, within a bound. */
    static char big[65507];
    struct sockaddr_in self = sim_sin(0, 9);
    int sent = 0, refused = 0;
    for (int i = 0; i < 200; i++) {
        if (tern_sendto(sim.st[0], fd, big, sizeof(big), 0, (struct sockaddr *)&self,
                        sizeof(self)) < 0) {
            assert_int_equal(errno, ENOBUFS);
            refused++;
        } else {
            sent++;
        }
    }
    assert_true(sent > 10 && refused > 0);
    assert_int_equal(sim_counter(&sim, 0, "drop.ip.loopback_full"), (uint64_t)refused);
    tern_close(sim.st[0], fd);
    sim_finish(&sim);
}

static void test_removing_one_address_keeps_a_shared_subnet_route(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct in_addr second = {.s_addr = htonl(0xc0000232)}; /* 192.0.2.50/24 */
    assert_int_equal(tern_if_addr_add(sim.st[0], sim.ifindex[0], second, 24), 0);
    assert_int_equal(tern_if_addr_del(sim.st[0], sim.ifindex[0], sim_addr(0)), 0);
    int srv = sim_udp(&sim, 1, 7), cli = tern_socket(sim.st[0], AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = sim_sin(1, 7);
    assert_int_equal(tern_sendto(sim.st[0], cli, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)),
                     1);
    sim_run(&sim, 10 * MS);
    struct sockaddr_in from;
    socklen_t fl = sizeof(from);
    char buf[4];
    assert_int_equal(tern_recvfrom(sim.st[1], srv, buf, sizeof(buf), 0, (struct sockaddr *)&from,
                                   &fl), 1);
    assert_int_equal(from.sin_addr.s_addr, second.s_addr); /* from the address that is left */
    tern_close(sim.st[0], cli);
    tern_close(sim.st[1], srv);
    sim_finish(&sim);
}

static void test_arp_queue_charges_buffers_not_bytes(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 1, NULL);
    int fd = sim_udp(&sim, 0, 0);
    /* Empty datagrams to ten silent neighbours: tiny data, real buffers. */
    for (int h = 60; h < 70; h++) {
        struct sockaddr_in to = sim_sin(h, 9);
        for (int i = 0; i < 2000; i++)
            tern_sendto(sim.st[0], fd, NULL, 0, 0, (struct sockaddr *)&to, sizeof(to));
    }
    struct tern_live live;
    tern_stack_live(sim.st[0], &live);
    /* 8 x 212992 bytes of buffers at ~600 bytes each: a few thousand, far
     * from the 65536-packet pool. */
    assert_true(live.packets < 3500);
    assert_int_equal(sim_counter(&sim, 0, "drop.pkt.pool_empty"), 0);
    assert_true(sim_counter(&sim, 0, "drop.arp.pending_full") > 15000);
    tern_close(sim.st[0], fd);
    sim_finish(&sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_teardown_mid_flight_frees_everything),
        cmocka_unit_test(test_stacks_are_independent),
        cmocka_unit_test(test_default_gateway_carries_off_link_traffic),
        cmocka_unit_test(test_address_removal_and_interface_errors),
        cmocka_unit_test(test_loopback_and_this_host_destinations),
        cmocka_unit_test(test_removing_one_address_keeps_a_shared_subnet_route),
        cmocka_unit_test(test_arp_queue_charges_buffers_not_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
