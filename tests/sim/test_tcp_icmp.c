/* ICMP errors for TCP: path MTU discovery (RFC 1191) lowers the MSS and
 * resends at once, errors must quote a segment in flight (RFC 5927), and
 * a soft error is what a timed-out connection reports (as Linux). The
 * raw host plays a router on the path, quoting what stack 0 sent. */
#include "testing.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stack.h"
#include "sim.h"
#include "transport/tcp/tcp.h"
#include "wire/icmp.h"

#define MS TERN_NS_PER_MS
#define SEC TERN_NS_PER_SEC

/* Stack 1 listens on port 80, stack 0 connects. */
static struct sim_tcp open_conn(struct sim *sim)
{
    struct sim_tcp c;
    sim_tcp_open(sim, &c, 0, 1, 80);
    return c;
}

/* Two stacks 5 ms apart, the raw host known to stack 0 (it plays the
 * router that sends the ICMP errors), and a connection from stack 0. */
static struct sim_tcp start(struct sim *sim)
{
    static const struct tern_impair_config imp = {.delay_ns = 5 * MS};
    struct sim_opts o = {.tx = &imp};
    sim_init(sim, 2, &o);
    sim_raw_arp_hello(sim, 0);
    return open_conn(sim);
}

/* The last data segment stack 0 put on the wire: its IP datagram. */
static size_t last_data_from_client(struct sim *sim, uint8_t *ip, size_t cap)
{
    uint8_t f[2048];
    size_t n, got = 0;
    while ((n = sim_raw_recv(sim, 6, f, sizeof(f))) > 0) {
        struct in_addr src;
        memcpy(&src.s_addr, f + 26, 4);
        size_t tot = ((size_t)f[16] << 8) | f[17];
        size_t ihl = (size_t)(f[14] & 0xf) * 4;
        size_t thl = (size_t)(f[14 + ihl + 12] >> 4) * 4;
        if (src.s_addr != sim_addr(0).s_addr || tot <= ihl + thl)
            continue;
        assert_true(tot <= cap);
        memcpy(ip, f + 14, tot);
        got = tot;
    }
    return got;
}

/* An ICMP error from the raw host to stack 0 quoting `ip` (header + 8). */
static void icmp_error(struct sim *sim, uint8_t type, uint8_t code, uint32_t rest,
                       const uint8_t *ip)
{
    uint8_t msg[8 + 60 + 8], frame[256];
    size_t q = (size_t)(ip[0] & 0xf) * 4 + 8;
    memcpy(msg + 8, ip, q);
    tern_icmp_emit(msg, 8 + q, type, code, rest);
    size_t fl = sim_raw_ipv4(sim, 0, frame, 1, 7, 0, false, msg, 8 + q);
    sim_raw_send(sim, frame, fl);
}

static uint32_t quoted_seq(const uint8_t *ip)
{
    const uint8_t *t = ip + (size_t)(ip[0] & 0xf) * 4;
    return ((uint32_t)t[4] << 24) | ((uint32_t)t[5] << 16) | ((uint32_t)t[6] << 8) | t[7];
}

static void put_seq(uint8_t *ip, uint32_t seq)
{
    uint8_t *t = ip + (size_t)(ip[0] & 0xf) * 4;
    t[4] = (uint8_t)(seq >> 24);
    t[5] = (uint8_t)(seq >> 16);
    t[6] = (uint8_t)(seq >> 8);
    t[7] = (uint8_t)seq;
}

static uint8_t pattern(uint64_t i) { return (uint8_t)(i * 29 + (i >> 8)); }

static void test_fragmentation_needed_lowers_the_mss(void **state)
{
    (void)state;
    struct sim sim;
    struct sim_tcp c = start(&sim);
    struct tern_socket *so = tern_sock_lookup(sim.st[0], c.client);
    assert_int_equal(so->tcb->mss, 1460);
    static uint8_t data[200000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = pattern(i);
    assert_int_equal(tern_send(sim.st[0], c.client, data, 100000, 0), 100000);
    sim_run(&sim, 6 * MS); /* the first window is on the wire, not yet acked */
    uint8_t ip[1600];
    size_t n = last_data_from_client(&sim, ip, sizeof(ip));
    assert_true(n > 1000);

    /* A forged error quoting a sequence number outside the flight is
     * not believed (RFC 5927 4.1). */
    uint8_t forged[1600];
    memcpy(forged, ip, n);
    put_seq(forged, quoted_seq(ip) + 50000000);
    icmp_error(&sim, TERN_ICMP_UNREACH, 4, 1000, forged);
    sim_run(&sim, MS);
    assert_int_equal(sim_counter(&sim, 0, "drop.tcp.icmp_out_of_window"), 1);
    assert_int_equal(so->tcb->mss, 1460);

    /* The real one: next hop MTU 1000. */
    uint64_t rexmit = sim_counter(&sim, 0, "tcp.retransmit");
    icmp_error(&sim, TERN_ICMP_UNREACH, 4, 1000, ip);
    sim_run(&sim, 6 * MS);
    assert_int_equal(sim_counter(&sim, 0, "tcp.pmtu_reduced"), 1);
    assert_int_equal(so->tcb->mss, 960);
    /* What was in flight went again at once, in smaller segments, without
     * waiting for a timeout and without calling it congestion. */
    assert_true(sim_counter(&sim, 0, "tcp.retransmit") > rexmit);
    assert_int_equal(sim_counter(&sim, 0, "tcp.retransmit_timeout"), 0);
    assert_true(so->tcb->ssthresh == UINT32_MAX);
    /* A larger MTU does not raise it again; a tiny one is floored. */
    n = last_data_from_client(&sim, ip, sizeof(ip));
    assert_true(n > 0 && n <= 1000);
    /* (Quoting the oldest segment in flight, whatever the wire shows.) */
    assert_true(so->tcb->snd_una != so->tcb->snd_max);
    put_seq(ip, so->tcb->snd_una);
    icmp_error(&sim, TERN_ICMP_UNREACH, 4, 1400, ip);
    sim_run(&sim, MS);
    assert_int_equal(sim_counter(&sim, 0, "drop.tcp.icmp_mtu_ignored"), 1);
    assert_int_equal(so->tcb->mss, 960);
    assert_true(so->tcb->snd_una != so->tcb->snd_max);
    put_seq(ip, so->tcb->snd_una);
    icmp_error(&sim, TERN_ICMP_UNREACH, 4, 100, ip);
    sim_run(&sim, MS);
    assert_int_equal(so->tcb->mss, TERN_TCP_MIN_PMTU - 40);
    /* The rest of the transfer arrives whole, in segments that fit. */
    assert_int_equal(tern_send(sim.st[0], c.client, data + 100000, 100000, 0), 100000);
    uint8_t buf[4096];
    size_t got = 0;
    for (int round = 0; round < 2000 && got < sizeof(data); round++) {
        sim_run(&sim, 5 * MS);
        ssize_t r;
        while ((r = tern_recv(sim.st[1], c.server, buf, sizeof(buf), 0)) > 0) {
            for (ssize_t i = 0; i < r; i++)
                assert_int_equal(buf[i], pattern(got + (size_t)i));
            got += (size_t)r;
        }
        size_t m = last_data_from_client(&sim, ip, sizeof(ip));
        assert_true(m <= TERN_TCP_MIN_PMTU);
    }
    assert_int_equal(got, sizeof(data));
    sim_tcp_close(&sim, &c);
    sim_finish(&sim);
}

/* RFC 1191 section 5: what one connection learned about the path, the
 * next one to the same host starts with (both ends of it: stack 0
 * connects, and stack 0 accepts); section 6.3: after 10 minutes the
 * estimate ages out and the full size is tried again. */
static void test_the_next_connection_starts_at_the_learned_path_mtu(void **state)
{
    (void)state;
    struct sim sim;
    struct sim_tcp c = start(&sim);
    static uint8_t data[20000];
    assert_int_equal(tern_send(sim.st[0], c.client, data, sizeof(data), 0), (ssize_t)sizeof(data));
    sim_run(&sim, 6 * MS);
    uint8_t ip[1600];
    assert_true(last_data_from_client(&sim, ip, sizeof(ip)) > 1000);
    icmp_error(&sim, TERN_ICMP_UNREACH, 4, 1200, ip);
    sim_run(&sim, 100 * MS);
    assert_int_equal(tern_sock_lookup(sim.st[0], c.client)->tcb->mss, 1160);
    assert_int_equal(sim_counter(&sim, 0, "ip.pmtu_learned"), 1);
    /* The socket table shows it, as text and as JSON. */
    char peer[INET_ADDRSTRLEN], want[128];
    struct in_addr pa = sim_addr(1);
    inet_ntop(AF_INET, &pa, peer, sizeof(peer));
    char *text = NULL;
    size_t tlen = 0;
    FILE *mf = open_memstream(&text, &tlen);
    tern_sockets_dump(sim.st[0], mf);
    fclose(mf);
    snprintf(want, sizeof(want), "  %-15s mtu 1200, 599 s left", peer);
    assert_non_null(strstr(text, want));
    free(text);
    mf = open_memstream(&text, &tlen);
    tern_sockets_dump_json(sim.st[0], mf);
    fclose(mf);
    snprintf(want, sizeof(want), "\"pmtu\":[{\"dst\":\"%s\",\"mtu\":1200,", peer);
    assert_non_null(strstr(text, want));
    free(text);
    sim_tcp_close(&sim, &c);

    /* Stack 0 connects again: no ICMP this time, and 1160 from the start. */
    struct sim_tcp c2 = open_conn(&sim);
    assert_int_equal(tern_sock_lookup(sim.st[0], c2.client)->tcb->mss, 1160);
    /* The other end knows nothing of it: its own path is another. */
    assert_int_equal(tern_sock_lookup(sim.st[1], c2.server)->tcb->mss, 1460);
    sim_tcp_close(&sim, &c2);
    /* Stack 0 accepts from the same host: the same path, the same size. */
    struct sim_tcp c3;
    sim_tcp_open(&sim, &c3, 1, 0, 81);
    assert_int_equal(tern_sock_lookup(sim.st[0], c3.server)->tcb->mss, 1160);
    sim_tcp_close(&sim, &c3);
    assert_int_equal(sim_counter(&sim, 0, "tcp.pmtu_cached_mss"), 2);

    /* Ten minutes on, the estimate is gone. */
    sim_run(&sim, 601 * SEC);
    struct sim_tcp c4 = open_conn(&sim);
    assert_int_equal(tern_sock_lookup(sim.st[0], c4.client)->tcb->mss, 1460);
    sim_tcp_close(&sim, &c4);
    assert_int_equal(sim_counter(&sim, 0, "tcp.pmtu_cached_mss"), 2);
    sim_finish(&sim);
}

/* A soft error (host unreachable) on an established connection changes
 * nothing at once; when the connection then times out, it is what the
 * application is told instead of ETIMEDOUT. */
static void test_a_soft_error_is_reported_when_the_connection_times_out(void **state)
{
    (void)state;
    struct sim sim;
    struct sim_tcp c = start(&sim);
    unsigned ut = 3000;
    assert_int_equal(tern_setsockopt(sim.st[0], c.client, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut,
                                     sizeof(ut)),
                     0);
    /* The server's stack goes away: nothing answers any more. */
    tern_close(sim.st[1], c.server);
    tern_close(sim.st[1], c.listener);
    sim_run(&sim, 10 * MS);
    uint8_t buf[1000] = {0};
    char b;
    while (tern_recv(sim.st[0], c.client, &b, 1, 0) > 0) {
    }
    /* Unplug stack 1 by taking its address away. */
    assert_int_equal(tern_if_addr_del(sim.st[1], sim.ifindex[1], sim_addr(1)), 0);
    assert_int_equal(tern_send(sim.st[0], c.client, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
    sim_run(&sim, 6 * MS);
    uint8_t ip[1600];
    size_t n = last_data_from_client(&sim, ip, sizeof(ip));
    assert_true(n > 0);
    icmp_error(&sim, TERN_ICMP_UNREACH, 1 /* host unreachable: soft */, 0, ip);
    sim_run(&sim, MS);
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    assert_int_equal(tern_getsockopt(sim.st[0], c.client, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
    assert_int_equal(ti.tcpi_state, 8 /* CLOSE_WAIT: still open */);
    sim_run(&sim, 10 * SEC);
    errno = 0;
    assert_int_equal(tern_send(sim.st[0], c.client, buf, 1, 0), -1);
    assert_int_equal(errno, EHOSTUNREACH);
    tern_close(sim.st[0], c.client);
    assert_int_equal(tern_if_addr_add(sim.st[1], sim.ifindex[1], sim_addr(1), 24), 0);
    sim_finish(&sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fragmentation_needed_lowers_the_mss),
        cmocka_unit_test(test_the_next_connection_starts_at_the_learned_path_mtu),
        cmocka_unit_test(test_a_soft_error_is_reported_when_the_connection_times_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
