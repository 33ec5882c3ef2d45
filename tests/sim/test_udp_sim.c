/* Two and three stacks on the in-memory wire, in virtual time: ARP,
 * ping, UDP, fragmentation and reassembly (clean and impaired),
 * broadcast, reuseport, ICMP errors, bind/close/rebind, checksums left
 * to the wire (TERN_FRAME_CSUM_PENDING), and route changes against the
 * output decisions IPv4 caches. Every test
 * ends with zero live objects (sim_finish). */
#include "testing.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "pcapcheck.h"
#include "sim.h"
#include "wire/udp.h"

#define MS TERN_NS_PER_MS
#define SEC TERN_NS_PER_SEC

static void fill_pattern(uint8_t *buf, size_t len, uint32_t seed)
{
    /* Position-dependent: a byte out of place shows. */
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)((i * 131u + seed * 7u + (i >> 8)) & 0xff);
}

struct wait_recv {
    int stack, fd;
    uint8_t *buf;
    size_t cap;
    ssize_t got;
    struct sockaddr_in from;
};

static bool recv_ready(struct sim *sim, void *arg)
{
    struct wait_recv *w = arg;
    socklen_t fl = sizeof(w->from);
    w->got = tern_recvfrom(sim->st[w->stack], w->fd, w->buf, w->cap, 0,
                           (struct sockaddr *)&w->from, &fl);
    return w->got >= 0;
}

static ssize_t sim_recv(struct sim *sim, int stack, int fd, void *buf, size_t cap,
                        struct sockaddr_in *from, uint64_t max_ns)
{
    struct wait_recv w = {.stack = stack, .fd = fd, .buf = buf, .cap = cap, .got = -1};
    sim_run_until(sim, recv_ready, &w, max_ns);
    if (from)
        *from = w.from;
    return w.got;
}

static void test_arp_resolves_and_udp_round_trips(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    int srv = sim_udp(&sim, 1, 7);
    int cli = sim_udp(&sim, 0, 0);
    struct sockaddr_in to = sim_sin(1, 7);
    assert_int_equal(tern_sendto(sim.st[0], cli, "ping?", 5, 0, (struct sockaddr *)&to,
                                 sizeof(to)), 5);
    char buf[64];
    struct sockaddr_in from;
    assert_int_equal(sim_recv(&sim, 1, srv, buf, sizeof(buf), &from, SEC), 5);
    assert_memory_equal(buf, "ping?", 5);
    assert_int_equal(from.sin_addr.s_addr, sim_addr(0).s_addr);
    /* The answer needs no ARP: stack 1 learned stack 0 from its request. */
    uint64_t requests_before = sim_counter(&sim, 1, "arp.tx_request");
    assert_int_equal(tern_sendto(sim.st[1], srv, "pong!", 5, 0, (struct sockaddr *)&from,
                                 sizeof(from)), 5);
    assert_int_equal(sim_recv(&sim, 0, cli, buf, sizeof(buf), NULL, SEC), 5);
    assert_memory_equal(buf, "pong!", 5);
    assert_int_equal(sim_counter(&sim, 1, "arp.tx_request"), requests_before);
    assert_int_equal(sim_counter(&sim, 0, "arp.tx_reply"), 0);
    assert_int_equal(sim_counter(&sim, 1, "arp.tx_reply"), 1);
    tern_close(sim.st[0], cli);
    tern_close(sim.st[1], srv);
    sim_finish(&sim);
}

static void test_ping_socket_gets_replies(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    int ping = tern_socket(sim.st[0], AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    assert_true(ping >= 0);
    struct sockaddr_in to = sim_sin(1, 0);
    uint8_t echo[8 + 56];
    memset(echo, 0, sizeof(echo));
    echo[0] = 8;
    fill_pattern(echo + 8, 56, 3);
    for (int seq = 1; seq <= 3; seq++) {
        echo[7] = (uint8_t)seq;
        assert_int_equal(tern_sendto(sim.st[0], ping, echo, sizeof(echo), 0,
                                     (struct sockaddr *)&to, sizeof(to)), sizeof(echo));
        uint8_t reply[128];
        struct sockaddr_in from;
        assert_int_equal(sim_recv(&sim, 0, ping, reply, sizeof(reply), &from, SEC),
                         sizeof(echo));
        assert_int_equal(reply[0], 0); /* echo reply */
        assert_int_equal(reply[7], seq);
        assert_memory_equal(reply + 8, echo + 8, 56);
        assert_int_equal(from.sin_addr.s_addr, sim_addr(1).s_addr);
    }
    assert_int_equal(sim_counter(&sim, 1, "icmp.tx_echo_reply"), 3);
    /* Not an echo request: refused as Linux does. */
    uint8_t bad[8] = {13};
    errno = 0;
    assert_int_equal(tern_sendto(sim.st[0], ping, bad, sizeof(bad), 0, (struct sockaddr *)&to,
                                 sizeof(to)), -1);
    assert_int_equal(errno, EINVAL);
    tern_close(sim.st[0], ping);
    sim_finish(&sim);
}

static void big_datagram_roundtrip(const struct sim_opts *o, size_t len, int tries,
                                   int *delivered)
{
    struct sim sim;
    sim_init(&sim, 2, o);
    int srv = sim_udp(&sim, 1, 9);
    int cli = sim_udp(&sim, 0, 0);
    static uint8_t out[65507], in[65507];
    struct sockaddr_in to = sim_sin(1, 9);
    *delivered = 0;
    /* Resolve ARP first (with retries if the link loses the exchange):
     * what is measured is fragmentation, not the neighbour queue. */
    for (int warm = 0; warm < 20; warm++) {
        tern_sendto(sim.st[0], cli, "w", 1, 0, (struct sockaddr *)&to, sizeof(to));
        if (sim_recv(&sim, 1, srv, in, sizeof(in), NULL, SEC) == 1)
            break;
    }
    while (tern_recv(sim.st[1], srv, in, sizeof(in), 0) >= 0) {
    }
    for (int t = 0; t < tries; t++) {
        fill_pattern(out, len, (uint32_t)t);
        assert_int_equal(tern_sendto(sim.st[0], cli, out, len, 0, (struct sockaddr *)&to,
                                     sizeof(to)), (ssize_t)len);
        ssize_t n = sim_recv(&sim, 1, srv, in, sizeof(in), NULL, 2 * SEC);
        if (n < 0)
            continue;
        /* Whatever arrives is whole and exact. */
        assert_int_equal(n, (ssize_t)len);
        assert_memory_equal(in, out, len);
        (*delivered)++;
    }
    tern_close(sim.st[0], cli);
    tern_close(sim.st[1], srv);
    sim_finish(&sim);
}

static void test_60k_datagram_fragmented_and_reassembled(void **state)
{
    (void)state;
    int delivered;
    char pcap[256];
    sim_tmp_path(pcap, sizeof(pcap), "udp-frag.pcap");
    struct sim_opts o = {.pcap = pcap};
    big_datagram_roundtrip(&o, 60000, 3, &delivered);
    assert_int_equal(delivered, 3);
    assert_int_equal(pcap_check(pcap), 0);
    remove(pcap);
}

static void test_largest_datagram_over_jumbo_and_small_mtu(void **state)
{
    (void)state;
    int delivered;
    struct sim_opts jumbo = {.mtu = 9000};
    big_datagram_roundtrip(&jumbo, 65507, 2, &delivered);
    assert_int_equal(delivered, 2);
    struct sim_opts tiny = {.mtu = 576};
    big_datagram_roundtrip(&tiny, 65507, 1, &delivered);
    assert_int_equal(delivered, 1);
}

static void test_60k_datagram_under_loss_and_reordering(void **state)
{
    (void)state;
    /* 10% loss with reordering and jitter: a 41-fragment datagram mostly
     * dies, smaller ones mostly live; every arrival is exact, and every
     * incomplete reassembly times out and frees its fragments (checked by
     * sim_finish's zero live counts). */
    struct tern_impair_config imp = {.loss_ppm = 100000, .reorder_ppm = 200000,
                                     .reorder_ns = 3 * MS, .delay_ns = 1 * MS,
                                     .jitter_ns = 2 * MS};
    struct sim_opts o = {.tx = &imp, .seed = 7};
    int delivered;
    big_datagram_roundtrip(&o, 60000, 40, &delivered);
    /* P(all 41 fragments and the reply path) ~ 0.9^41 ~ 1.3%: a few at most. */
    assert_in_range(delivered, 0, 6);
    big_datagram_roundtrip(&o, 4000, 40, &delivered); /* 3 fragments: ~73% */
    assert_in_range(delivered, 20, 38);
}

static void test_three_stacks_broadcast_reaches_both_others(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 3, NULL);
    int r1 = tern_socket(sim.st[1], AF_INET, SOCK_DGRAM, 0);
    int r2 = tern_socket(sim.st[2], AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(5353)};
    assert_int_equal(tern_bind(sim.st[1], r1, (struct sockaddr *)&any, sizeof(any)), 0);
    assert_int_equal(tern_bind(sim.st[2], r2, (struct sockaddr *)&any, sizeof(any)), 0);
    /* Bound to its unicast address: no broadcasts for it (as Linux). */
    int unicast_only = sim_udp(&sim, 1, 5354);
    /* A second socket on stack 2, bound to the wildcard too: gets a copy. */
    int r2b = tern_socket(sim.st[2], AF_INET, SOCK_DGRAM, 0);
    int one = 1;
    tern_setsockopt(sim.st[2], r2, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    tern_setsockopt(sim.st[2], r2b, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(tern_bind(sim.st[2], r2b, (struct sockaddr *)&any, sizeof(any)), 0);
    int tx = sim_udp(&sim, 0, 0);
    assert_int_equal(tern_setsockopt(sim.st[0], tx, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)),
                     0);
    struct sockaddr_in bcast = {.sin_family = AF_INET, .sin_port = htons(5353),
                                .sin_addr.s_addr = htonl(0xffffffffu)};
    struct sockaddr_in subnet = bcast;
    subnet.sin_addr.s_addr = htonl(0xc00002ffu); /* 192.0.2.255 */
    assert_int_equal(tern_sendto(sim.st[0], tx, "hi all", 6, 0, (struct sockaddr *)&bcast,
                                 sizeof(bcast)), 6);
    assert_int_equal(tern_sendto(sim.st[0], tx, "hi net", 6, 0, (struct sockaddr *)&subnet,
                                 sizeof(subnet)), 6);
    bcast.sin_port = htons(5354);
    assert_int_equal(tern_sendto(sim.st[0], tx, "nobody", 6, 0, (struct sockaddr *)&bcast,
                                 sizeof(bcast)), 6);
    sim_run(&sim, 100 * MS);
    char none[8];
    errno = 0;
    assert_int_equal(tern_recv(sim.st[1], unicast_only, none, sizeof(none), 0), -1);
    assert_int_equal(errno, EAGAIN);
    tern_close(sim.st[1], unicast_only);
    char buf[16];
    const int socks[3][2] = {{1, 0}, {2, 0}, {2, 1}};
    for (int i = 0; i < 3; i++) {
        int st = socks[i][0];
        int fd = i == 0 ? r1 : i == 1 ? r2 : r2b;
        assert_int_equal(tern_recv(sim.st[st], fd, buf, sizeof(buf), 0), 6);
        assert_memory_equal(buf, "hi all", 6);
        assert_int_equal(tern_recv(sim.st[st], fd, buf, sizeof(buf), 0), 6);
        assert_memory_equal(buf, "hi net", 6);
    }
    /* No ARP was needed for a broadcast, and no ICMP error answers one. */
    assert_int_equal(sim_counter(&sim, 0, "arp.tx_request"), 1); /* the announcement */
    assert_int_equal(sim_counter(&sim, 1, "icmp.tx"), 0);
    tern_close(sim.st[1], r1);
    tern_close(sim.st[2], r2);
    tern_close(sim.st[2], r2b);
    tern_close(sim.st[0], tx);
    sim_finish(&sim);
}

static void test_reuseport_group_spreads_flows_and_keeps_each_flow(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    enum { MEMBERS = 4, FLOWS = 64 };
    int members[MEMBERS];
    int one = 1;
    for (int i = 0; i < MEMBERS; i++) {
        members[i] = tern_socket(sim.st[1], AF_INET, SOCK_DGRAM, 0);
        tern_setsockopt(sim.st[1], members[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        struct sockaddr_in a = sim_sin(1, 8080);
        assert_int_equal(tern_bind(sim.st[1], members[i], (struct sockaddr *)&a, sizeof(a)), 0);
    }
    int clients[FLOWS];
    struct sockaddr_in to = sim_sin(1, 8080);
    for (int f = 0; f < FLOWS; f++) {
        clients[f] = sim_udp(&sim, 0, 0);
        for (int k = 0; k < 3; k++) /* three datagrams per flow */
            assert_int_equal(tern_sendto(sim.st[0], clients[f], &f, sizeof(f), 0,
                                         (struct sockaddr *)&to, sizeof(to)), sizeof(f));
    }
    sim_run(&sim, 100 * MS);
    int per_member[MEMBERS] = {0};
    int flow_owner[FLOWS];
    memset(flow_owner, -1, sizeof(flow_owner));
    for (int m = 0; m < MEMBERS; m++) {
        int f;
        while (tern_recv(sim.st[1], members[m], &f, sizeof(f), 0) == sizeof(f)) {
            assert_in_range(f, 0, FLOWS - 1);
            /* One flow, one member: all three of its datagrams. */
            assert_true(flow_owner[f] == -1 || flow_owner[f] == m);
            flow_owner[f] = m;
            per_member[m]++;
        }
    }
    int total = 0;
    for (int m = 0; m < MEMBERS; m++) {
        assert_true(per_member[m] >= 3 * 4); /* every member got a share */
        total += per_member[m];
    }
    assert_int_equal(total, 3 * FLOWS);
    /* Close one member: its flows move to the others, none is lost. */
    tern_close(sim.st[1], members[0]);
    for (int f = 0; f < FLOWS; f++)
        tern_sendto(sim.st[0], clients[f], &f, sizeof(f), 0, (struct sockaddr *)&to, sizeof(to));
    sim_run(&sim, 100 * MS);
    total = 0;
    for (int m = 1; m < MEMBERS; m++) {
        int f;
        while (tern_recv(sim.st[1], members[m], &f, sizeof(f), 0) == sizeof(f))
            total++;
    }
    assert_int_equal(total, FLOWS);
    for (int m = 1; m < MEMBERS; m++)
        tern_close(sim.st[1], members[m]);
    for (int f = 0; f < FLOWS; f++)
        tern_close(sim.st[0], clients[f]);
    sim_finish(&sim);
}

static void test_port_unreachable_refuses_connected_socket(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    int c = tern_socket(sim.st[0], AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in closed = sim_sin(1, 9999);
    assert_int_equal(tern_connect(sim.st[0], c, (struct sockaddr *)&closed, sizeof(closed)), 0);
    assert_int_equal(tern_send(sim.st[0], c, "anyone?", 7, 0), 7);
    sim_run(&sim, 100 * MS);
    assert_int_equal(sim_counter(&sim, 1, "drop.udp.no_port"), 1);
    assert_int_equal(sim_counter(&sim, 1, "icmp.tx_unreach"), 1);
    assert_int_equal(sim_counter(&sim, 0, "icmp.rx_error_delivered"), 1);
    struct pollfd pfd = {.fd = c, .events = POLLIN};
    assert_int_equal(tern_poll(sim.st[0], &pfd, 1, 0), 1);
    assert_true(pfd.revents & POLLERR);
    char buf[8];
    errno = 0;
    assert_int_equal(tern_recv(sim.st[0], c, buf, sizeof(buf), 0), -1);
    assert_int_equal(errno, ECONNREFUSED);
    /* Reported once, then cleared. */
    errno = 0;
    assert_int_equal(tern_recv(sim.st[0], c, buf, sizeof(buf), 0), -1);
    assert_int_equal(errno, EAGAIN);
    /* An unconnected socket is not told (Linux without IP_RECVERR). */
    int u = sim_udp(&sim, 0, 0);
    tern_sendto(sim.st[0], u, "x", 1, 0, (struct sockaddr *)&closed, sizeof(closed));
    sim_run(&sim, 100 * MS);
    errno = 0;
    assert_int_equal(tern_recv(sim.st[0], u, buf, sizeof(buf), 0), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(sim_counter(&sim, 0, "drop.icmp.error_unconnected"), 1);
    tern_close(sim.st[0], c);
    tern_close(sim.st[0], u);
    sim_finish(&sim);
}

static void test_icmp_errors_are_rate_limited(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    int u = sim_udp(&sim, 0, 0);
    struct sockaddr_in closed = sim_sin(1, 9999);
    for (int i = 0; i < 200; i++)
        tern_sendto(sim.st[0], u, "x", 1, 0, (struct sockaddr *)&closed, sizeof(closed));
    sim_run(&sim, 10 * MS);
    /* A burst of 50, then 1000/s: about 60 in the first 10 ms. */
    uint64_t sent = sim_counter(&sim, 1, "icmp.tx_unreach");
    uint64_t limited = sim_counter(&sim, 1, "drop.icmp.ratelimit");
    assert_in_range(sent, 50, 62);
    assert_int_equal(sent + limited, 200);
    tern_close(sim.st[0], u);
    sim_finish(&sim);
}

static void test_peek_trunc_and_zero_length(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    int srv = sim_udp(&sim, 1, 7), cli = sim_udp(&sim, 0, 0);
    struct sockaddr_in to = sim_sin(1, 7);
    tern_sendto(sim.st[0], cli, "0123456789", 10, 0, (struct sockaddr *)&to, sizeof(to));
    tern_sendto(sim.st[0], cli, NULL, 0, 0, (struct sockaddr *)&to, sizeof(to));
    tern_sendto(sim.st[0], cli, "abc", 3, 0, (struct sockaddr *)&to, sizeof(to));
    sim_run(&sim, 100 * MS);
    char buf[16];
    /* MSG_PEEK leaves it; MSG_TRUNC reports the real length. */
    assert_int_equal(tern_recv(sim.st[1], srv, buf, 4, MSG_PEEK), 4);
    assert_memory_equal(buf, "0123", 4);
    assert_int_equal(tern_recv(sim.st[1], srv, buf, 4, MSG_PEEK | MSG_TRUNC), 10);
    struct iovec iov = {.iov_base = buf, .iov_len = 4};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    assert_int_equal(tern_recvmsg(sim.st[1], srv, &msg, 0), 4);
    assert_true(msg.msg_flags & MSG_TRUNC); /* the rest is gone */
    /* The zero-length datagram is a datagram: 0, not EAGAIN. */
    struct sockaddr_in from;
    socklen_t fl = sizeof(from);
    assert_int_equal(tern_recvfrom(sim.st[1], srv, buf, sizeof(buf), 0, (struct sockaddr *)&from,
                                   &fl), 0);
    assert_int_equal(from.sin_addr.s_addr, sim_addr(0).s_addr);
    /* Scatter over two iovecs. */
    char a[2], b[2];
    struct iovec two[2] = {{a, 2}, {b, 2}};
    struct msghdr m2 = {.msg_iov = two, .msg_iovlen = 2};
    assert_int_equal(tern_recvmsg(sim.st[1], srv, &m2, 0), 3);
    assert_memory_equal(a, "ab", 2);
    assert_int_equal(b[0], 'c');
    assert_false(m2.msg_flags & MSG_TRUNC);
    errno = 0;
    assert_int_equal(tern_recv(sim.st[1], srv, buf, sizeof(buf), 0), -1);
    assert_int_equal(errno, EAGAIN);
    tern_close(sim.st[0], cli);
    tern_close(sim.st[1], srv);
    sim_finish(&sim);
}

static void test_receive_buffer_bounds_the_queue(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    int srv = sim_udp(&sim, 1, 7), cli = sim_udp(&sim, 0, 0);
    int small = 4096; /* doubled to 8192: a few datagrams */
    tern_setsockopt(sim.st[1], srv, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in to = sim_sin(1, 7);
    for (int i = 0; i < 100; i++)
        tern_sendto(sim.st[0], cli, &i, sizeof(i), 0, (struct sockaddr *)&to, sizeof(to));
    sim_run(&sim, 100 * MS);
    int got = 0, v;
    while (tern_recv(sim.st[1], srv, &v, sizeof(v), 0) == sizeof(v)) {
        assert_int_equal(v, got); /* the first ones, in order */
        got++;
    }
    assert_in_range(got, 2, 8);
    assert_int_equal(sim_counter(&sim, 1, "drop.sock.rcvbuf_full"), (uint64_t)(100 - got));
    tern_close(sim.st[0], cli);
    tern_close(sim.st[1], srv);
    sim_finish(&sim);
}

static void test_bind_close_rebind_sequences(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sockaddr_in to = sim_sin(1, 6000);
    int cli = sim_udp(&sim, 0, 0);
    for (int round = 0; round < 50; round++) {
        int a = sim_udp(&sim, 1, 6000);
        tern_sendto(sim.st[0], cli, &round, sizeof(round), 0, (struct sockaddr *)&to,
                    sizeof(to));
        /* Close before the datagram arrives on odd rounds: no one gets it,
         * and the next socket on the port must not see it either. */
        if (round % 2) {
            tern_close(sim.st[1], a);
            sim_run(&sim, 10 * MS);
            continue;
        }
        int v = -1;
        assert_int_equal(sim_recv(&sim, 1, a, &v, sizeof(v), NULL, SEC), sizeof(v));
        assert_int_equal(v, round);
        tern_close(sim.st[1], a);
    }
    assert_int_equal(sim_counter(&sim, 1, "drop.udp.no_port"), 25);
    struct tern_live live;
    tern_stack_live(sim.st[1], &live);
    assert_int_equal(live.sockets, 0);
    tern_close(sim.st[0], cli);
    sim_finish(&sim);
}

/* The next frame on the raw port as the wire delivers it (no checksum
 * filled by the test), or 0. */
static size_t raw_recv_as_is(struct sim *sim, uint8_t *buf, size_t cap, uint32_t *flags)
{
    struct tern_frame f = {.data = buf, .cap = cap};
    if (tern_link_recv(sim->raw, &f, 1, sim->now) != 1)
        return 0;
    *flags = f.flags;
    return f.len;
}

/* A UDP datagram from stack 0 as the raw port reads it: its flags, and
 * whether its checksum verifies once filled. */
static uint32_t udp_from_stack0(struct sim *sim, int fd, uint8_t *udp_csum, bool *verifies)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9),
                             .sin_addr.s_addr = htonl(SIM_RAW_IP)};
    assert_int_equal(tern_sendto(sim->st[0], fd, "odd!!", 5, 0, (struct sockaddr *)&to,
                                 sizeof(to)), 5);
    sim_run(sim, 10 * MS);
    static uint8_t buf[2048];
    uint32_t flags = 0;
    size_t len;
    while ((len = raw_recv_as_is(sim, buf, sizeof(buf), &flags)) > 0)
        if (len >= 14 + 28 && buf[12] == 0x08 && buf[14 + 9] == 17)
            break;
    assert_true(len > 0);
    memcpy(udp_csum, buf + 14 + 20 + 6, 2);
    struct tern_frame f = {.data = buf, .len = len, .cap = sizeof(buf), .flags = flags};
    tern_frame_csum_fill(&f);
    assert_int_equal(f.flags, 0);
    uint32_t src = ntohl(sim_addr(0).s_addr);
    struct tern_udp_hdr h;
    *verifies = tern_udp_parse(buf + 34, len - 34, src, SIM_RAW_IP, true, &h) == TERN_UDP_OK &&
                h.csum != 0;
    return flags;
}

static void test_checksums_left_to_the_wire_only_while_in_memory(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    sim_raw_arp_hello(&sim, 0);
    sim_run(&sim, 10 * MS);
    uint8_t skip[2048];
    while (sim_raw_recv(&sim, -1, skip, sizeof(skip)) > 0)
        ;
    int fd = sim_udp(&sim, 0, 4000);

    /* Wire ports offer the offload: the datagram leaves unsummed and
     * flagged, and a reader filling it gets a checksum that verifies. */
    assert_true(sim.link[0]->info.caps & TERN_LINK_CAP_TX_CSUM);
    uint8_t field[2];
    bool verifies;
    assert_int_equal(udp_from_stack0(&sim, fd, field, &verifies), TERN_FRAME_CSUM_PENDING);
    assert_int_equal(field[0] | field[1], 0);
    assert_true(verifies);

    /* A capture reads the bytes on the way: then the stack fills them. */
    char pcap[256];
    sim_tmp_path(pcap, sizeof(pcap), "csum-capture.pcap");
    assert_int_equal(tern_capture_start(sim.st[0], pcap), 0);
    assert_int_equal(udp_from_stack0(&sim, fd, field, &verifies), 0);
    assert_int_not_equal(field[0] | field[1], 0);
    assert_true(verifies);
    assert_int_equal(tern_capture_stop(sim.st[0]), 0);
    unlink(pcap);

    /* Receiving: a frame flagged pending is taken on trust, even with a
     * wrong checksum; the same frame unflagged is dropped for it. */
    int srv = sim_udp(&sim, 0, 5000);
    /* To port 5000, with a checksum (0x1234) that is wrong. */
    uint8_t udp[8 + 4] = {0x30, 0x39, 5000 >> 8, 5000 & 0xff, 0, 12, 0x12, 0x34,
                          'd',  'a',  't',       'a'};
    uint8_t frame[128];
    size_t fl = sim_raw_ipv4(&sim, 0, frame, 17, 1, 0, false, udp, sizeof(udp));
    struct tern_frame trusted = {.data = frame, .len = fl, .cap = fl,
                                 .flags = TERN_FRAME_CSUM_PENDING};
    assert_int_equal(tern_link_send(sim.raw, &trusted, 1, sim.now), 1);
    char got[16];
    assert_int_equal(sim_recv(&sim, 0, srv, got, sizeof(got), NULL, SEC), 4);
    assert_memory_equal(got, "data", 4);
    assert_int_equal(sim_counter(&sim, 0, "drop.udp.bad_checksum"), 0);
    sim_raw_send(&sim, frame, fl);
    sim_run(&sim, 10 * MS);
    assert_int_equal(sim_counter(&sim, 0, "drop.udp.bad_checksum"), 1);
    assert_int_equal(tern_recv(sim.st[0], srv, got, sizeof(got), MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);

    tern_close(sim.st[0], fd);
    tern_close(sim.st[0], srv);
    sim_finish(&sim);
}

static void test_checksums_filled_behind_a_pcap_tee(void **state)
{
    (void)state;
    char pcap[256];
    sim_tmp_path(pcap, sizeof(pcap), "csum-tee.pcap");
    struct sim_opts o = {.pcap = pcap};
    struct sim sim;
    sim_init(&sim, 2, &o);
    assert_false(sim.link[0]->info.caps & TERN_LINK_CAP_TX_CSUM);
    sim_raw_arp_hello(&sim, 0);
    sim_run(&sim, 10 * MS);
    uint8_t skip[2048];
    while (sim_raw_recv(&sim, -1, skip, sizeof(skip)) > 0)
        ;
    int fd = sim_udp(&sim, 0, 4000);
    uint8_t field[2];
    bool verifies;
    assert_int_equal(udp_from_stack0(&sim, fd, field, &verifies), 0);
    assert_int_not_equal(field[0] | field[1], 0);
    assert_true(verifies);
    tern_close(sim.st[0], fd);
    sim_finish(&sim);
    unlink(pcap);
}

/* The Ethernet destination of the next TCP segment the raw port sees
 * for dst; false when none came. */
static bool next_segment_mac(struct sim *sim, uint32_t dst, uint8_t mac[6])
{
    uint8_t buf[2048];
    uint32_t want = htonl(dst);
    size_t len;
    while ((len = sim_raw_recv(sim, 6, buf, sizeof(buf))) > 0)
        if (len >= 34 && memcmp(buf + 30, &want, 4) == 0) {
            memcpy(mac, buf, 6);
            return true;
        }
    return false;
}

static void test_route_changes_reach_the_next_segment(void **state)
{
    (void)state;
    /* Output decisions are cached per destination: every change to the
     * routes or addresses must show in the very next segment, here the
     * SYN's retransmissions (1 s, then 2 s, 4 s). */
    struct sim sim;
    sim_init(&sim, 2, NULL);
    sim_raw_arp_hello(&sim, 0);
    sim_run(&sim, 10 * MS);
    uint8_t mac[6], mac1[6];
    assert_int_equal(tern_if_get_mac(sim.st[1], sim.ifindex[1], mac1), 0);
    struct in_addr net = {htonl(0xcb007100u)}, raw = {htonl(SIM_RAW_IP)};
    const uint32_t far = 0xcb007105u; /* 203.0.113.5 */
    assert_int_equal(tern_route_add(sim.st[0], net, 24, raw, sim.ifindex[0]), 0);
    int fd = tern_socket(sim.st[0], AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(80),
                             .sin_addr.s_addr = htonl(far)};
    assert_int_equal(tern_connect(sim.st[0], fd, (struct sockaddr *)&to, sizeof(to)), -1);
    assert_int_equal(errno, EINPROGRESS);
    sim_run(&sim, 10 * MS);
    assert_true(next_segment_mac(&sim, far, mac));
    assert_memory_equal(mac, SIM_RAW_MAC, 6);

    /* The gateway changes: the retransmission goes to the new one. */
    assert_int_equal(tern_route_del(sim.st[0], net, 24), 0);
    assert_int_equal(tern_route_add(sim.st[0], net, 24, sim_addr(1), sim.ifindex[0]), 0);
    sim_run(&sim, 1500 * MS);
    assert_true(next_segment_mac(&sim, far, mac));
    assert_memory_equal(mac, mac1, 6);

    /* A more specific route beside it wins at once. */
    struct in_addr host = {htonl(far)};
    assert_int_equal(tern_route_add(sim.st[0], host, 32, raw, sim.ifindex[0]), 0);
    sim_run(&sim, 2500 * MS);
    assert_true(next_segment_mac(&sim, far, mac));
    assert_memory_equal(mac, SIM_RAW_MAC, 6);

    /* No route at all: the next one is dropped for it, not sent. */
    uint64_t no_route = sim_counter(&sim, 0, "drop.ip.no_route");
    assert_int_equal(tern_route_del(sim.st[0], host, 32), 0);
    assert_int_equal(tern_route_del(sim.st[0], net, 24), 0);
    sim_run(&sim, 4500 * MS);
    assert_false(next_segment_mac(&sim, far, mac));
    assert_int_equal(sim_counter(&sim, 0, "drop.ip.no_route"), no_route + 1);
    tern_close(sim.st[0], fd);
    sim_finish(&sim);
}

static void test_same_seed_same_bytes(void **state)
{
    (void)state;
    /* Determinism (DESIGN.md rule 2): two runs with one seed write the
     * same capture, byte for byte, impairments included. */
    struct tern_impair_config imp = {.loss_ppm = 50000, .jitter_ns = MS, .reorder_ppm = 100000,
                                     .reorder_ns = MS, .duplicate_ppm = 20000};
    char path[2][256];
    for (int run = 0; run < 2; run++) {
        sim_tmp_path(path[run], sizeof(path[run]), run ? "det-b.pcap" : "det-a.pcap");
        struct sim_opts o = {.seed = 3, .tx = &imp, .pcap = path[run]};
        int delivered;
        big_datagram_roundtrip(&o, 5000, 10, &delivered);
    }
    FILE *fa = fopen(path[0], "rb"), *fb = fopen(path[1], "rb");
    assert_non_null(fa);
    assert_non_null(fb);
    size_t total = 0;
    for (;;) {
        int ca = fgetc(fa), cb = fgetc(fb);
        assert_int_equal(ca, cb);
        if (ca == EOF)
            break;
        total++;
    }
    assert_true(total > 10000);
    fclose(fa);
    fclose(fb);
    remove(path[0]);
    remove(path[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arp_resolves_and_udp_round_trips),
        cmocka_unit_test(test_ping_socket_gets_replies),
        cmocka_unit_test(test_60k_datagram_fragmented_and_reassembled),
        cmocka_unit_test(test_largest_datagram_over_jumbo_and_small_mtu),
        cmocka_unit_test(test_60k_datagram_under_loss_and_reordering),
        cmocka_unit_test(test_three_stacks_broadcast_reaches_both_others),
        cmocka_unit_test(test_reuseport_group_spreads_flows_and_keeps_each_flow),
        cmocka_unit_test(test_port_unreachable_refuses_connected_socket),
        cmocka_unit_test(test_icmp_errors_are_rate_limited),
        cmocka_unit_test(test_peek_trunc_and_zero_length),
        cmocka_unit_test(test_receive_buffer_bounds_the_queue),
        cmocka_unit_test(test_bind_close_rebind_sequences),
        cmocka_unit_test(test_checksums_left_to_the_wire_only_while_in_memory),
        cmocka_unit_test(test_checksums_filled_behind_a_pcap_tee),
        cmocka_unit_test(test_route_changes_reach_the_next_segment),
        cmocka_unit_test(test_same_seed_same_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
