/* IPv4 input against crafted frames from a raw port on the wire:
 * reassembly in any order, duplicates, overlaps, timeouts and memory
 * limits; header validation; ARP's bounded queues. */
#include "testing.h"

#include <errno.h>
#include <string.h>

#include "sim.h"

#define MS TERN_NS_PER_MS
#define SEC TERN_NS_PER_SEC
#define UDP_PORT 4242

static uint8_t frame[70000];

/* A UDP datagram (checksum 0: none) of `len` payload bytes to UDP_PORT. */
static size_t make_udp(uint8_t *buf, size_t len)
{
    size_t total = 8 + len;
    buf[0] = 0x30;
    buf[1] = 0x39; /* sport 12345 */
    buf[2] = UDP_PORT >> 8;
    buf[3] = UDP_PORT & 0xff;
    buf[4] = (uint8_t)(total >> 8);
    buf[5] = (uint8_t)total;
    buf[6] = buf[7] = 0;
    for (size_t i = 0; i < len; i++)
        buf[8 + i] = (uint8_t)(i * 13 + 5);
    return total;
}

static void send_frag(struct sim *sim, const uint8_t *dgram, uint16_t id, size_t off, size_t n,
                      bool mf)
{
    size_t fl = sim_raw_ipv4(sim, 0, frame, 17, id, (uint16_t)off, mf, dgram + off, n);
    sim_raw_send(sim, frame, fl);
}

static ssize_t recv_udp(struct sim *sim, int fd, uint8_t *buf, size_t cap)
{
    sim_run(sim, 10 * MS);
    return tern_recv(sim->st[0], fd, buf, cap, 0);
}

static void test_fragments_in_any_order(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 1, NULL);
    int fd = sim_udp(&sim, 0, UDP_PORT);
    static uint8_t dgram[8 + 4000], got[8000];
    size_t total = make_udp(dgram, 4000);
    /* Six fragments of 672 bytes (a multiple of 8) and the tail. */
    size_t cuts[] = {0, 672, 1344, 2016, 2688, 3360, total};
    int orders[3][7] = {{0, 1, 2, 3, 4, 5}, {5, 4, 3, 2, 1, 0}, {3, 0, 5, 1, 4, 2}};
    for (int o = 0; o < 3; o++) {
        for (int k = 0; k < 6; k++) {
            int i = orders[o][k];
            send_frag(&sim, dgram, (uint16_t)(100 + o), cuts[i], cuts[i + 1] - cuts[i], i < 5);
        }
        assert_int_equal(recv_udp(&sim, fd, got, sizeof(got)), 4000);
        assert_memory_equal(got, dgram + 8, 4000);
    }
    assert_int_equal(sim_counter(&sim, 0, "ip.reasm_ok"), 3);
    /* An exact duplicate is ignored; the datagram still arrives once. */
    send_frag(&sim, dgram, 200, 0, 1344, true);
    send_frag(&sim, dgram, 200, 0, 1344, true);
    send_frag(&sim, dgram, 200, 1344, 1344, true);
    send_frag(&sim, dgram, 200, 2688, total - 2688, false);
    assert_int_equal(recv_udp(&sim, fd, got, sizeof(got)), 4000);
    assert_int_equal(tern_recv(sim.st[0], fd, got, sizeof(got), 0), -1);
    assert_int_equal(sim_counter(&sim, 0, "drop.ip.reasm_duplicate"), 1);
    tern_close(sim.st[0], fd);
    sim_finish(&sim);
}

static void test_overlaps_discard_the_datagram(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 1, NULL);
    int fd = sim_udp(&sim, 0, UDP_PORT);
    static uint8_t dgram[8 + 2000], got[4000];
    size_t total = make_udp(dgram, 2000);
    /* A fragment that overlaps another's tail (RFC 1858's attack shape). */
    send_frag(&sim, dgram, 1, 0, 1000, true);
    send_frag(&sim, dgram, 1, 992, total - 992, false);
    /* A last fragment whose end disagrees with an earlier last one. */
    send_frag(&sim, dgram, 2, 1000, 8, false);
    send_frag(&sim, dgram, 2, 1000, 16, false);
    /* A fragment reaching past a known end. */
    send_frag(&sim, dgram, 3, 1000, 8, false);
    send_frag(&sim, dgram, 3, 1000, 16, true);
    sim_run(&sim, 10 * MS);
    assert_int_equal(sim_counter(&sim, 0, "drop.ip.reasm_overlap"), 3);
    errno = 0;
    assert_int_equal(tern_recv(sim.st[0], fd, got, sizeof(got), 0), -1);
    assert_int_equal(errno, EAGAIN);
    struct tern_live live;
    tern_stack_live(sim.st[0], &live);
    assert_int_equal(live.reasm_datagrams, 0); /* all three queues gone */
    /* Bad lengths: a non-final fragment not a multiple of 8; past 65535. */
    send_frag(&sim, dgram, 4, 0, 999, true);
    static uint8_t zeros[1000];
    size_t fl = sim_raw_ipv4(&sim, 0, frame, 17, 5, 65000, false, zeros, 1000);
    sim_raw_send(&sim, frame, fl);
    sim_run(&sim, 10 * MS);
    assert_int_equal(sim_counter(&sim, 0, "drop.ip.reasm_bad_len"), 1);
    assert_int_equal(sim_counter(&sim, 0, "drop.ip.reasm_too_big"), 1);
    tern_close(sim.st[0], fd);
    sim_finish(&sim);
}

static void test_timeout_frees_and_sends_time_exceeded(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 1, NULL);
    sim_raw_arp_hello(&sim, 0);
    static uint8_t dgram[8 + 2000], out[2000];
    size_t total = make_udp(dgram, 2000);
    send_frag(&sim, dgram, 77, 0, 1000, true); /* the first fragment only */
    send_frag(&sim, dgram, 78, 1000, total - 1000, false); /* a tail only */
    sim_run(&sim, 29 * SEC);
    struct tern_live live;
    tern_stack_live(sim.st[0], &live);
    assert_int_equal(live.reasm_datagrams, 2);
    while (sim_raw_recv(&sim, 1, out, sizeof(out)) > 0) {
    }
    sim_run(&sim, 2 * SEC);
    tern_stack_live(sim.st[0], &live);
    assert_int_equal(live.reasm_datagrams, 0);
    assert_int_equal(sim_counter(&sim, 0, "drop.ip.reasm_timeout"), 2);
    /* RFC 792: time exceeded, code 1, only for the one whose first
     * fragment came, quoting its header (id 77). */
    size_t n = sim_raw_recv(&sim, 1, out, sizeof(out));
    assert_true(n >= 14 + 20 + 8 + 28);
    const uint8_t *icmp = out + 14 + 20;
    assert_int_equal(icmp[0], 11);
    assert_int_equal(icmp[1], 1);
    assert_int_equal((icmp[8 + 4] << 8) | icmp[8 + 5], 77);
    assert_int_equal(sim_raw_recv(&sim, 1, out, sizeof(out)), 0);
    sim_finish(&sim);
}

static void test_reassembly_memory_is_bounded(void **state)
{
    (void)state;
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.reasm_max_bytes = 64 * 1024;
    struct sim_opts o = {.cfg = &cfg};
    struct sim sim;
    sim_init(&sim, 1, &o);
    int fd = sim_udp(&sim, 0, UDP_PORT);
    static uint8_t dgram[8 + 2000], got[4000];
    size_t total = make_udp(dgram, 2000);
    /* A flood of first fragments that never complete... */
    for (uint16_t id = 0; id < 200; id++)
        send_frag(&sim, dgram, id, 0, 1000, true);
    sim_run(&sim, 10 * MS);
    struct tern_live live;
    tern_stack_live(sim.st[0], &live);
    /* ...holds at most the budget: each fragment holds a 2 KiB buffer. */
    assert_in_range(live.reasm_datagrams, 20, 32);
    assert_int_equal(sim_counter(&sim, 0, "drop.ip.reasm_evicted"), 200 - live.reasm_datagrams);
    /* A datagram arriving now still completes: the oldest make room. */
    send_frag(&sim, dgram, 999, 0, 1000, true);
    send_frag(&sim, dgram, 999, 1000, total - 1000, false);
    sim_run(&sim, 10 * MS);
    assert_int_equal(tern_recv(sim.st[0], fd, got, sizeof(got), 0), 2000);
    assert_memory_equal(got, dgram + 8, 2000);
    tern_close(sim.st[0], fd);
    sim_finish(&sim); /* the rest time out and free everything */
}

static void test_header_validation_counts_each_reason(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 1, NULL);
    sim_raw_arp_hello(&sim, 0);
    int fd = sim_udp(&sim, 0, UDP_PORT);
    static uint8_t dgram[64], got[64], out[2048];
    size_t ulen = make_udp(dgram, 10);
    size_t fl;
    /* Bad header checksum. */
    fl = sim_raw_ipv4(&sim, 0, frame, 17, 1, 0, false, dgram, ulen);
    frame[14 + 10] ^= 0xff;
    sim_raw_send(&sim, frame, fl);
    /* Total length beyond the frame. */
    fl = sim_raw_ipv4(&sim, 0, frame, 17, 2, 0, false, dgram, ulen);
    sim_raw_send(&sim, frame, fl - 4);
    /* Not version 4. */
    fl = sim_raw_ipv4(&sim, 0, frame, 17, 3, 0, false, dgram, ulen);
    frame[14] = 0x65;
    sim_raw_send(&sim, frame, fl);
    /* To another host's address (no forwarding). */
    fl = sim_raw_ipv4(&sim, 0, frame, 17, 4, 0, false, dgram, ulen);
    frame[14 + 19] = 77; /* 192.0.2.77 */
    sim_ip_fix_checksum(frame + 14);
    sim_raw_send(&sim, frame, fl);
    sim_run(&sim, 10 * MS);
    assert_int_equal(sim_counter(&sim, 0, "drop.ip.bad_checksum"), 1);
    assert_int_equal(sim_counter(&sim, 0, "drop.ip.too_short"), 1);
    assert_int_equal(sim_counter(&sim, 0, "drop.ip.bad_version"), 1);
    assert_int_equal(sim_counter(&sim, 0, "drop.ip.not_for_us"), 1);
    assert_int_equal(tern_recv(sim.st[0], fd, got, sizeof(got), 0), -1);
    /* A good one, padded by Ethernet to 60 bytes past a short datagram:
     * the padding is not data. */
    static uint8_t tiny[8];
    size_t tl = make_udp(tiny, 0);
    fl = sim_raw_ipv4(&sim, 0, frame, 17, 5, 0, false, tiny, tl);
    memset(frame + fl, 0xee, 60 - fl);
    sim_raw_send(&sim, frame, 60);
    sim_run(&sim, 10 * MS);
    assert_int_equal(tern_recv(sim.st[0], fd, got, sizeof(got), 0), 0);
    /* An unknown protocol gets protocol unreachable (RFC 1122 3.2.2.1). */
    while (sim_raw_recv(&sim, -1, out, sizeof(out)) > 0) {
    }
    fl = sim_raw_ipv4(&sim, 0, frame, 253, 6, 0, false, dgram, ulen);
    sim_raw_send(&sim, frame, fl);
    sim_run(&sim, 10 * MS);
    assert_int_equal(sim_counter(&sim, 0, "drop.ip.unknown_proto"), 1);
    size_t n = sim_raw_recv(&sim, 1, out, sizeof(out));
    assert_true(n > 14 + 20 + 8);
    assert_int_equal(out[14 + 20], 3);
    assert_int_equal(out[14 + 20 + 1], 2);
    tern_close(sim.st[0], fd);
    sim_finish(&sim);
}

static void test_ip_options_are_tolerated(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 1, NULL);
    int fd = sim_udp(&sim, 0, UDP_PORT);
    static uint8_t dgram[64], got[64];
    size_t ulen = make_udp(dgram, 12);
    size_t fl = sim_raw_ipv4(&sim, 0, frame, 17, 9, 0, false, dgram, ulen);
    /* Insert 4 option bytes (NOP NOP NOP EOL): IHL 6, total + 4. */
    memmove(frame + 14 + 24, frame + 14 + 20, ulen);
    memcpy(frame + 14 + 20, "\x01\x01\x01\x00", 4);
    frame[14] = 0x46;
    frame[14 + 3] = (uint8_t)(frame[14 + 3] + 4);
    sim_ip_fix_checksum(frame + 14);
    sim_raw_send(&sim, frame, fl + 4);
    sim_run(&sim, 10 * MS);
    assert_int_equal(tern_recv(sim.st[0], fd, got, sizeof(got), 0), 12);
    assert_memory_equal(got, dgram + 8, 12);
    tern_close(sim.st[0], fd);
    sim_finish(&sim);
}

static void test_arp_queue_is_bounded_and_unanswered_requests_give_up(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 1, NULL);
    int fd = sim_udp(&sim, 0, 0);
    struct sockaddr_in silent = sim_sin(50, 9); /* 192.0.2.51: nobody */
    static uint8_t big[8000];
    /* 40 x 8 KB = 320 KB: more than the 208 KB that may wait. */
    for (int i = 0; i < 40; i++)
        assert_int_equal(tern_sendto(sim.st[0], fd, big, sizeof(big), 0,
                                     (struct sockaddr *)&silent, sizeof(silent)),
                         (ssize_t)sizeof(big));
    uint64_t full = sim_counter(&sim, 0, "drop.arp.pending_full");
    assert_true(full > 0);
    struct tern_live live;
    tern_stack_live(sim.st[0], &live);
    assert_int_equal(live.arp_entries, 1);
    sim_run(&sim, 5 * SEC);
    /* Three requests (the first and two retries), then it gives up. */
    assert_int_equal(sim_counter(&sim, 0, "arp.tx_request"), 1 + 3);
    assert_true(sim_counter(&sim, 0, "drop.arp.unresolved") > 0);
    tern_stack_live(sim.st[0], &live);
    assert_int_equal(live.arp_entries, 0);
    assert_int_equal(live.packets, 0);
    tern_close(sim.st[0], fd);
    sim_finish(&sim);
}

static void test_arp_cache_is_bounded(void **state)
{
    (void)state;
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.arp_cache_max = 2;
    struct sim_opts o = {.cfg = &cfg};
    struct sim sim;
    sim_init(&sim, 1, &o);
    int fd = sim_udp(&sim, 0, 0);
    for (int h = 60; h < 63; h++) {
        struct sockaddr_in to = sim_sin(h, 9);
        tern_sendto(sim.st[0], fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to));
    }
    assert_int_equal(sim_counter(&sim, 0, "drop.arp.cache_full"), 1);
    tern_close(sim.st[0], fd);
    sim_finish(&sim);
}

static void test_gratuitous_arp_on_address_add(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 1, NULL);
    uint8_t out[128];
    size_t n = sim_raw_recv(&sim, -1, out, sizeof(out));
    assert_int_equal(n, 42);
    assert_int_equal(out[12], 0x08);
    assert_int_equal(out[13], 0x06);
    assert_int_equal(out[21], 1); /* a request... */
    assert_memory_equal(out + 28, out + 38, 4); /* ...with sender = target: RFC 5227 */
    struct in_addr a = sim_addr(0);
    assert_memory_equal(out + 28, &a.s_addr, 4);
    sim_finish(&sim);
}


/* An ICMP error from the raw host quoting `quote` (an IPv4 datagram). */
static void send_icmp_error(struct sim *sim, uint8_t type, uint8_t code, const uint8_t *quote,
                            size_t qlen)
{
    uint8_t msg[8 + 600] = {type, code};
    memcpy(msg + 8, quote, qlen);
    uint32_t sum = 0;
    for (size_t i = 0; i < 8 + qlen; i += 2)
        sum += (uint32_t)(msg[i] << 8 | (i + 1 < 8 + qlen ? msg[i + 1] : 0));
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    msg[2] = (uint8_t)(~sum >> 8);
    msg[3] = (uint8_t)~sum;
    size_t fl = sim_raw_ipv4(sim, 0, frame, 1, 77, 0, false, msg, 8 + qlen);
    sim_raw_send(sim, frame, fl);
}

static void test_only_hard_errors_reach_connected_sockets(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 1, NULL);
    sim_raw_arp_hello(&sim, 0);
    sim_run(&sim, MS);
    int c = tern_socket(sim.st[0], AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in raw = {.sin_family = AF_INET, .sin_port = htons(53),
                              .sin_addr.s_addr = htonl(SIM_RAW_IP)};
    assert_int_equal(tern_connect(sim.st[0], c, (struct sockaddr *)&raw, sizeof(raw)), 0);
    assert_int_equal(tern_send(sim.st[0], c, "q", 1, 0), 1);
    sim_run(&sim, MS);
    uint8_t out[2048];
    size_t n = sim_raw_recv(&sim, 17, out, sizeof(out));
    assert_true(n >= 14 + 28);
    /* Soft: time exceeded and host unreachable are not told (Linux). */
    send_icmp_error(&sim, 11, 0, out + 14, 28);
    send_icmp_error(&sim, 3, 1, out + 14, 28);
    sim_run(&sim, MS);
    assert_int_equal(sim_counter(&sim, 0, "drop.icmp.error_soft"), 2);
    char buf[8];
    errno = 0;
    assert_int_equal(tern_recv(sim.st[0], c, buf, sizeof(buf), 0), -1);
    assert_int_equal(errno, EAGAIN);
    /* Hard: port unreachable is. A quote with IHL below 5 is refused. */
    uint8_t bad[28];
    memcpy(bad, out + 14, 28);
    bad[0] = 0x44;
    send_icmp_error(&sim, 3, 3, bad, 28);
    sim_run(&sim, MS);
    assert_int_equal(sim_counter(&sim, 0, "drop.icmp.too_short"), 1);
    send_icmp_error(&sim, 3, 3, out + 14, 28);
    sim_run(&sim, MS);
    errno = 0;
    assert_int_equal(tern_recv(sim.st[0], c, buf, sizeof(buf), 0), -1);
    assert_int_equal(errno, ECONNREFUSED);
    /* An unconnected ping socket is not told, even of a hard error. */
    int ping = tern_socket(sim.st[0], AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    uint8_t echo[16] = {8};
    assert_int_equal(tern_sendto(sim.st[0], ping, echo, sizeof(echo), 0, (struct sockaddr *)&raw,
                                 sizeof(raw)), 16);
    sim_run(&sim, MS);
    n = sim_raw_recv(&sim, 1, out, sizeof(out));
    assert_true(n >= 14 + 28);
    send_icmp_error(&sim, 3, 3, out + 14, 28);
    sim_run(&sim, MS);
    assert_int_equal(sim_counter(&sim, 0, "drop.icmp.error_unconnected"), 1);
    errno = 0;
    assert_int_equal(tern_recv(sim.st[0], ping, buf, sizeof(buf), 0), -1);
    assert_int_equal(errno, EAGAIN);
    tern_close(sim.st[0], c);
    tern_close(sim.st[0], ping);
    sim_finish(&sim);
}

static void test_padded_datagram_to_closed_port_gets_unreachable(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 1, NULL);
    sim_raw_arp_hello(&sim, 0);
    static uint8_t dgram[64], out[2048];
    size_t ulen = make_udp(dgram, 2); /* UDP says 10 bytes... */
    size_t fl = sim_raw_ipv4(&sim, 0, frame, 17, 8, 0, false, dgram, ulen + 8); /* ...IP 18 */
    sim_raw_send(&sim, frame, fl);
    sim_run(&sim, MS);
    assert_int_equal(sim_counter(&sim, 0, "drop.udp.no_port"), 1);
    assert_int_equal(sim_counter(&sim, 0, "icmp.tx_unreach"), 1);
    size_t n;
    while ((n = sim_raw_recv(&sim, 1, out, sizeof(out))) > 0 && out[14 + 20] != 3) {
    }
    assert_true(n > 0);
    assert_int_equal(out[14 + 20 + 1], 3);
    sim_finish(&sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fragments_in_any_order),
        cmocka_unit_test(test_overlaps_discard_the_datagram),
        cmocka_unit_test(test_timeout_frees_and_sends_time_exceeded),
        cmocka_unit_test(test_reassembly_memory_is_bounded),
        cmocka_unit_test(test_header_validation_counts_each_reason),
        cmocka_unit_test(test_ip_options_are_tolerated),
        cmocka_unit_test(test_arp_queue_is_bounded_and_unanswered_requests_give_up),
        cmocka_unit_test(test_arp_cache_is_bounded),
        cmocka_unit_test(test_gratuitous_arp_on_address_add),
        cmocka_unit_test(test_only_hard_errors_reach_connected_sockets),
        cmocka_unit_test(test_padded_datagram_to_closed_port_gets_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
