/* TCP between two stacks on the wire, in virtual time: the handshake,
 * data both ways checked with a position-dependent pattern, every way of
 * closing, resets, and the lifecycle stories of issue 3. Each test ends
 * with zero live objects (sim_finish). */
#include "testing.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stack.h"
#include "pcapcheck.h"
#include "transport/tcp/tcp.h"
#include "sim.h"

#define MS TERN_NS_PER_MS
#define SEC TERN_NS_PER_SEC

static uint8_t pattern_byte(uint64_t pos) { return sim_pattern(pos, 0); }

/* Stack 1 listens on port 4242, stack 0 connects: returns both ends,
 * with the client writable and no error pending. */
static struct sim_tcp open_conn(struct sim *sim)
{
    struct sim_tcp c;
    sim_tcp_open(sim, &c, 0, 1, 4242);
    struct pollfd pfd = {.fd = c.client, .events = POLLOUT};
    assert_int_equal(tern_poll(sim->st[0], &pfd, 1, 0), 1);
    int err = -1;
    socklen_t el = sizeof(err);
    assert_int_equal(tern_getsockopt(sim->st[0], c.client, SOL_SOCKET, SO_ERROR, &err, &el), 0);
    assert_int_equal(err, 0);
    return c;
}

/* Close whatever of the connection is still open, then check that time
 * leaves nothing alive. */
static void close_conn_and_finish(struct sim *sim, struct sim_tcp *c)
{
    sim_tcp_close(sim, c);
    sim_finish(sim);
}

/* A segment that claims to come from stack `from` to stack `to`, crafted
 * on the raw port: what a blind attacker or an old duplicate would put on
 * the wire, or a peer whose stack has gone quiet. */
static void inject_from(struct sim *sim, int from, int to, const struct tern_tcp_hdr *h,
                        const void *payload, size_t len)
{
    static uint8_t seg[128], frame[256];
    assert_true(h->hlen + len <= sizeof(seg));
    if (len)
        memcpy(seg + h->hlen, payload, len);
    tern_tcp_emit(seg, h->hlen + len, ntohl(sim_addr(from).s_addr), ntohl(sim_addr(to).s_addr),
                  h);
    size_t fl = sim_raw_ipv4(sim, to, frame, 6, 1, 0, false, seg, h->hlen + len);
    struct in_addr from_ip = sim_addr(from);
    memcpy(frame + 14 + 12, &from_ip.s_addr, 4);
    sim_ip_fix_checksum(frame + 14);
    sim_raw_send(sim, frame, fl);
}

static void inject_as_client(struct sim *sim, const struct tern_tcp_hdr *h, const void *payload,
                             size_t len)
{
    inject_from(sim, 0, 1, h, payload, len);
}

/* The next TCP segment that stack `from` sent, as the raw port saw it:
 * -1 when there is none left, else tern_tcp_parse's verdict on it (and
 * the header in *h). */
static int raw_next_tcp(struct sim *sim, int from, struct tern_tcp_hdr *h)
{
    static uint8_t frame[2048];
    size_t len;
    while ((len = sim_raw_recv(sim, 6, frame, sizeof(frame))) > 0) {
        const uint8_t *ip = frame + 14;
        size_t ihl = (size_t)(ip[0] & 0xf) * 4;
        uint32_t src = (uint32_t)ip[12] << 24 | (uint32_t)ip[13] << 16 | (uint32_t)ip[14] << 8 |
                       ip[15];
        uint32_t dst = (uint32_t)ip[16] << 24 | (uint32_t)ip[17] << 16 | (uint32_t)ip[18] << 8 |
                       ip[19];
        if (src == ntohl(sim_addr(from).s_addr))
            return (int)tern_tcp_parse(ip + ihl, len - 14 - ihl, src, dst, true, h);
    }
    return -1;
}


static void test_handshake_data_and_orderly_close(void **state)
{
    (void)state;
    char pcap[256];
    sim_tmp_path(pcap, sizeof(pcap), "tcp-clean.pcap");
    struct sim_opts o = {.pcap = pcap};
    struct sim sim;
    sim_init(&sim, 2, &o);
    struct sim_tcp c = open_conn(&sim);
    struct sockaddr_in peer;
    socklen_t pl = sizeof(peer);
    assert_int_equal(tern_getpeername(sim.st[1], c.server, (struct sockaddr *)&peer, &pl), 0);
    assert_int_equal(peer.sin_addr.s_addr, sim_addr(0).s_addr);
    /* Data both ways. */
    struct sim_flow up = {.from_stack = 0, .from_fd = c.client, .to_stack = 1, .to_fd = c.server,
                          .total = 300000};
    assert_true(sim_run_until(&sim, sim_flow_pump, &up, 30 * SEC));
    assert_int_equal(up.received, 300000);
    /* A TCP_INFO snapshot, in Linux's struct and units. */
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    assert_int_equal(tern_getsockopt(sim.st[0], c.client, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
    assert_int_equal(tl, sizeof(ti));
    assert_int_equal(ti.tcpi_state, 1); /* TCP_ESTABLISHED */
    assert_int_equal(ti.tcpi_snd_mss, 1460);
    assert_true(ti.tcpi_rtt < 1000); /* microseconds: this wire has no delay */
    assert_true(ti.tcpi_rto >= 200000);                   /* at least the 200 ms floor */
    assert_true(ti.tcpi_snd_cwnd >= 10);                  /* segments, RFC 6928 start */
    assert_int_equal(ti.tcpi_total_retrans, 0);
    struct sim_flow down = {.from_stack = 1, .from_fd = c.server, .to_stack = 0,
                            .to_fd = c.client, .total = 100000};
    assert_true(sim_run_until(&sim, sim_flow_pump, &down, 30 * SEC));
    /* Drained both ways and all acked: an idle connection holds no
     * buffer memory (the plan's 1 KB per idle connection) once the
     * reclaim delay has passed; until then the blocks stay, so a
     * transfer does not free and regrow them on every drain. */
    struct tern_socket *cso = tern_sock_lookup(sim.st[0], c.client);
    assert_true(tern_ring_alloc_bytes(&cso->tcb->rcv) > 0);
    sim_run(&sim, TERN_TCP_RECLAIM_NS + 10 * MS);
    for (int side = 0; side < 2; side++) {
        struct tern_socket *so = tern_sock_lookup(sim.st[side], side ? c.server : c.client);
        assert_non_null(so);
        assert_int_equal(tern_ring_alloc_bytes(&so->tcb->snd), 0);
        assert_int_equal(tern_ring_alloc_bytes(&so->tcb->rcv), 0);
        assert_true(tern_tcp_ooo_empty(so->tcb));
    }
    /* The client closes first: the server reads EOF, then closes too. */
    assert_int_equal(tern_close(sim.st[0], c.client), 0);
    sim_run(&sim, 100 * MS);
    char b;
    assert_int_equal(tern_recv(sim.st[1], c.server, &b, 1, 0), 0);
    assert_int_equal(tern_close(sim.st[1], c.server), 0);
    assert_int_equal(tern_close(sim.st[1], c.listener), 0);
    sim_run(&sim, 100 * MS);
    assert_int_equal(sim_counter(&sim, 0, "tcp.tx_rst") + sim_counter(&sim, 1, "tcp.tx_rst"), 0);
    sim_finish(&sim); /* TIME_WAIT ends after 60 s; then nothing is left */
    /* Handshake, 400 KB, both FINs: tshark finds nothing to complain of. */
    assert_int_equal(pcap_check(pcap), 0);
    remove(pcap);
}

static void bulk_under(const struct tern_impair_config *imp, uint64_t seed, uint64_t total)
{
    struct sim_opts o = {.tx = imp, .seed = seed};
    struct sim sim;
    sim_init(&sim, 2, &o);
    struct sim_tcp c = open_conn(&sim);
    struct sim_flow t = {.from_stack = 0, .from_fd = c.client, .to_stack = 1, .to_fd = c.server,
                         .total = total};
    assert_true(sim_run_until(&sim, sim_flow_pump, &t, 600 * SEC));
    assert_int_equal(t.error, 0);
    assert_int_equal(t.received, total); /* every byte once, in order (checked in pump) */
    if (imp->loss_ppm) {
        /* The receiver told the sender about data past each hole. */
        assert_true(sim_counter(&sim, 1, "tcp.tx_sack") > 0);
        /* It held that data in an out-of-order queue made for the
         * purpose, which goes back once the connection is idle. */
        assert_true(sim_counter(&sim, 1, "tcp.rx_out_of_order") > 0);
        sim_run(&sim, TERN_TCP_RECLAIM_NS + 10 * MS);
        struct tern_socket *so = tern_sock_lookup(sim.st[1], c.server);
        assert_non_null(so);
        assert_null(so->tcb->ooo);
    } else {
        /* 1 ms each way plus queueing: the estimator should say so. */
        struct tcp_info ti;
        socklen_t tl = sizeof(ti);
        assert_int_equal(tern_getsockopt(sim.st[0], c.client, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
        assert_in_range(ti.tcpi_rtt, 2000, 20000);
    }
    if (getenv("TCP_VERBOSE")) {
        fprintf(stderr, "seed %llu: %llu bytes in %.3f s virtual\n", (unsigned long long)seed,
                (unsigned long long)total, (double)sim.now / 1e9);
        tern_counters_dump(sim.st[0], stderr, true);
    }
    close_conn_and_finish(&sim, &c);
}

static void test_bulk_clean_and_impaired(void **state)
{
    (void)state;
    struct tern_impair_config clean = {.delay_ns = MS};
    bulk_under(&clean, 1, 2u << 20);
    struct tern_impair_config lossy = {.delay_ns = 5 * MS, .loss_ppm = 20000,
                                       .reorder_ppm = 20000, .reorder_ns = 2 * MS,
                                       .duplicate_ppm = 10000};
    bulk_under(&lossy, 2, 1u << 20);
    struct tern_impair_config bad = {.delay_ns = 2 * MS, .loss_ppm = 100000,
                                     .jitter_ns = 3 * MS};
    bulk_under(&bad, 3, 256u << 10);
}

static void test_connect_to_closed_port_is_refused(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    int c = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sim_sin(1, 81);
    assert_int_equal(tern_connect(sim.st[0], c, (struct sockaddr *)&a, sizeof(a)), -1);
    sim_run(&sim, 100 * MS);
    struct pollfd pfd = {.fd = c, .events = POLLOUT};
    assert_int_equal(tern_poll(sim.st[0], &pfd, 1, 0), 1);
    assert_true(pfd.revents & POLLERR);
    int err = 0;
    socklen_t el = sizeof(err);
    tern_getsockopt(sim.st[0], c, SOL_SOCKET, SO_ERROR, &err, &el);
    assert_int_equal(err, ECONNREFUSED);
    assert_int_equal(sim_counter(&sim, 1, "drop.tcp.no_socket"), 1);
    tern_close(sim.st[0], c);
    sim_finish(&sim);
}

static void test_peer_fin_and_rst_before_accept(void **state)
{
    (void)state;
    /* The story of issue 3: the peer's FIN (or RST) is processed before
     * the server accepts and before it closes. */
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sim_tcp c = open_conn(&sim); /* accepts one; two more come next */
    struct sockaddr_in a = sim_sin(1, 4242);
    int fin_client = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
    int rst_client = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
    tern_connect(sim.st[0], fin_client, (struct sockaddr *)&a, sizeof(a));
    tern_connect(sim.st[0], rst_client, (struct sockaddr *)&a, sizeof(a));
    sim_run(&sim, 100 * MS);
    assert_int_equal(tern_send(sim.st[0], fin_client, "bye", 3, 0), 3);
    tern_close(sim.st[0], fin_client); /* FIN after data */
    struct linger l0 = {.l_onoff = 1, .l_linger = 0};
    tern_setsockopt(sim.st[0], rst_client, SOL_SOCKET, SO_LINGER, &l0, sizeof(l0));
    tern_close(sim.st[0], rst_client); /* RST */
    sim_run(&sim, 100 * MS);
    /* Both are still there to accept, as on Linux. */
    int s1 = tern_accept(sim.st[1], c.listener, NULL, NULL);
    int s2 = tern_accept(sim.st[1], c.listener, NULL, NULL);
    assert_true(s1 >= 0 && s2 >= 0);
    char buf[8];
    assert_int_equal(tern_recv(sim.st[1], s1, buf, sizeof(buf), 0), 3);
    assert_int_equal(tern_recv(sim.st[1], s1, buf, sizeof(buf), 0), 0); /* then EOF */
    errno = 0;
    assert_int_equal(tern_recv(sim.st[1], s2, buf, sizeof(buf), 0), -1);
    assert_int_equal(errno, ECONNRESET);
    /* Closing after the protocol is done frees once, in either order. */
    assert_int_equal(tern_close(sim.st[1], s1), 0);
    assert_int_equal(tern_close(sim.st[1], s2), 0);
    errno = 0;
    assert_int_equal(tern_close(sim.st[1], s2), -1);
    assert_int_equal(errno, EBADF);
    close_conn_and_finish(&sim, &c);
}

static void test_close_with_unread_data_resets(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sim_tcp c = open_conn(&sim);
    tern_send(sim.st[0], c.client, "unread", 6, 0);
    sim_run(&sim, 100 * MS);
    assert_int_equal(tern_close(sim.st[1], c.server), 0); /* 6 bytes never read */
    sim_run(&sim, 100 * MS);
    assert_int_equal(sim_counter(&sim, 1, "tcp.tx_rst"), 1);
    char b;
    errno = 0;
    assert_int_equal(tern_recv(sim.st[0], c.client, &b, 1, 0), -1);
    assert_int_equal(errno, ECONNRESET);
    tern_close(sim.st[0], c.client);
    tern_close(sim.st[1], c.listener);
    sim_finish(&sim);
}

static void test_listener_close_resets_pending_connections(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sim_tcp c = open_conn(&sim);
    struct sockaddr_in a = sim_sin(1, 4242);
    int pending[3];
    for (int i = 0; i < 3; i++) {
        pending[i] = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
        tern_connect(sim.st[0], pending[i], (struct sockaddr *)&a, sizeof(a));
    }
    sim_run(&sim, 100 * MS);
    assert_int_equal(tern_close(sim.st[1], c.listener), 0);
    sim_run(&sim, 100 * MS);
    for (int i = 0; i < 3; i++) {
        char b;
        errno = 0;
        assert_int_equal(tern_recv(sim.st[0], pending[i], &b, 1, 0), -1);
        assert_int_equal(errno, ECONNRESET);
        tern_close(sim.st[0], pending[i]);
    }
    /* The accepted connection lives on. */
    assert_int_equal(tern_send(sim.st[0], c.client, "ok", 2, 0), 2);
    sim_run(&sim, 100 * MS);
    char buf[4];
    assert_int_equal(tern_recv(sim.st[1], c.server, buf, sizeof(buf), 0), 2);
    tern_close(sim.st[0], c.client);
    tern_close(sim.st[1], c.server);
    sim_finish(&sim);
}

static void test_half_close_and_simultaneous_close(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sim_tcp c = open_conn(&sim);
    /* Half close: the client stops writing but still reads. */
    assert_int_equal(tern_shutdown(sim.st[0], c.client, SHUT_WR), 0);
    sim_run(&sim, 100 * MS);
    char buf[8];
    assert_int_equal(tern_recv(sim.st[1], c.server, buf, sizeof(buf), 0), 0);
    errno = 0;
    assert_int_equal(tern_send(sim.st[0], c.client, "x", 1, 0), -1);
    assert_int_equal(errno, EPIPE);
    assert_int_equal(tern_send(sim.st[1], c.server, "late", 4, 0), 4);
    sim_run(&sim, 100 * MS);
    assert_int_equal(tern_recv(sim.st[0], c.client, buf, sizeof(buf), 0), 4);
    tern_close(sim.st[1], c.server);
    tern_close(sim.st[0], c.client);
    /* Simultaneous close on a second connection: both FINs cross. */
    struct sockaddr_in a = sim_sin(1, 4242);
    int x = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
    tern_connect(sim.st[0], x, (struct sockaddr *)&a, sizeof(a));
    sim_run(&sim, 100 * MS);
    int y = tern_accept(sim.st[1], c.listener, NULL, NULL);
    assert_true(y >= 0);
    tern_close(sim.st[0], x);
    tern_close(sim.st[1], y); /* before either FIN arrived */
    sim_run(&sim, 100 * MS);
    assert_int_equal(sim_counter(&sim, 0, "tcp.tx_rst") + sim_counter(&sim, 1, "tcp.tx_rst"), 0);
    tern_close(sim.st[1], c.listener);
    sim_finish(&sim);
}

static void test_blind_resets_get_rate_limited_challenge_acks(void **state)
{
    (void)state;
    /* RFC 5961 3.2: a RST inside the window but not exactly at RCV.NXT
     * only earns a challenge ACK, and those are rate limited (section 7).
     * The connection survives them all. */
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sim_tcp c = open_conn(&sim);
    struct tern_socket *so = tern_sock_lookup(sim.st[1], c.server);
    assert_non_null(so);
    uint32_t rcv_nxt = so->tcb->rcv_nxt;
    for (int i = 0; i < 1510; i++) {
        if (i % 500 == 0)
            sim_run(&sim, MS); /* in batches the wire's queue can hold */
        if (i == 1500)
            sim_run(&sim, TERN_NS_PER_SEC); /* a new second, a new budget */
        struct tern_tcp_hdr h = {.sport = so->pcb.fport, .dport = so->pcb.lport,
                                 .seq = rcv_nxt + 100 + (uint32_t)i, .flags = TERN_TCP_RST,
                                 .hlen = 20};
        inject_as_client(&sim, &h, NULL, 0);
    }
    sim_run(&sim, 10 * MS);
    if (getenv("TCP_VERBOSE"))
        tern_counters_dump(sim.st[1], stderr, true);
    assert_int_equal(sim_counter(&sim, 1, "tcp.challenge_ack"), 1010);
    assert_int_equal(sim_counter(&sim, 1, "drop.tcp.challenge_ack_limit"), 500);
    assert_int_equal(sim_counter(&sim, 1, "tcp.rx_rst"), 0);
    assert_int_equal(tern_send(sim.st[0], c.client, "alive", 5, 0), 5);
    sim_run(&sim, 100 * MS);
    char buf[8];
    assert_int_equal(tern_recv(sim.st[1], c.server, buf, sizeof(buf), 0), 5);
    close_conn_and_finish(&sim, &c);
}

static void test_zero_window_survives_a_slow_reader(void **state)
{
    (void)state;
    /* A live peer that does not read for half an hour keeps the
     * connection: window probes are answered, nothing times out, and the
     * data arrives intact when it reads again. */
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sim_tcp c = open_conn(&sim);
    struct sim_flow t = {.from_stack = 0, .from_fd = c.client, .to_stack = 1, .to_fd = -1,
                         .total = 600000};
    static uint8_t buf[65536];
    for (int i = 0; i < 50 && t.sent < t.total; i++) {
        size_t n = t.total - t.sent < sizeof(buf) ? (size_t)(t.total - t.sent) : sizeof(buf);
        for (size_t k = 0; k < n; k++)
            buf[k] = pattern_byte(t.sent + k);
        ssize_t w = tern_send(sim.st[0], c.client, buf, n, 0);
        if (w > 0)
            t.sent += (uint64_t)w;
        sim_run(&sim, 50 * MS);
    }
    sim_run(&sim, 1800 * SEC);
    assert_true(sim_counter(&sim, 0, "tcp.window_probe") > 5);
    assert_int_equal(sim_counter(&sim, 0, "tcp.timeout_drop"), 0);
    t.to_fd = c.server;
    assert_true(sim_run_until(&sim, sim_flow_pump, &t, 60 * SEC));
    assert_int_equal(t.error, 0);
    assert_int_equal(t.received, t.total);
    close_conn_and_finish(&sim, &c);
}

static void test_window_updates_go_when_reading_opens_the_window(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sim_tcp c = open_conn(&sim);
    sim_run(&sim, 100 * MS);
    char b[1];

    /* A request read at once: the window its SYN could not offer is no
     * reason for an ACK of its own; the delayed ACK or the reply tells. */
    assert_int_equal(tern_send(sim.st[0], c.client, "q", 1, 0), 1);
    sim_run(&sim, 1 * MS);
    uint64_t tx = sim_counter(&sim, 1, "tcp.tx");
    assert_int_equal(tern_recv(sim.st[1], c.server, b, 1, 0), 1);
    sim_run(&sim, 1 * MS);
    assert_int_equal(sim_counter(&sim, 1, "tcp.tx"), tx);
    assert_int_equal(tern_send(sim.st[1], c.server, "r", 1, 0), 1);
    sim_run(&sim, 1 * MS);
    assert_int_equal(sim_counter(&sim, 1, "tcp.tx"), tx + 1);
    assert_int_equal(tern_recv(sim.st[0], c.client, b, 1, 0), 1);
    /* Unanswered, the delayed ACK carries the window in its time. */
    assert_int_equal(tern_send(sim.st[0], c.client, "q", 1, 0), 1);
    sim_run(&sim, 1 * MS);
    assert_int_equal(tern_recv(sim.st[1], c.server, b, 1, 0), 1);
    sim_run(&sim, 100 * MS);
    assert_int_equal(sim_counter(&sim, 1, "tcp.tx"), tx + 2);

    /* A full buffer: the read that opens it is told at once, before any
     * delayed ACK could, and the sender goes on. */
    static uint8_t buf[65536];
    memset(buf, 'x', sizeof(buf));
    for (int i = 0; i < 100; i++) {
        tern_send(sim.st[0], c.client, buf, sizeof(buf), 0);
        sim_run(&sim, 10 * MS);
    }
    assert_true(sim_counter(&sim, 0, "tcp.window_probe") > 0); /* the window is shut */
    uint64_t before = sim_counter(&sim, 1, "tcp.tx");
    size_t got = 0;
    ssize_t r;
    while (got < 128 * 1024 && (r = tern_recv(sim.st[1], c.server, buf, sizeof(buf), 0)) > 0)
        got += (size_t)r;
    assert_true(sim_counter(&sim, 1, "tcp.tx") > before);
    uint64_t rx = sim_counter(&sim, 1, "tcp.rx");
    sim_run(&sim, 1 * MS);
    assert_true(sim_counter(&sim, 1, "tcp.rx") > rx); /* data flows again */
    close_conn_and_finish(&sim, &c);
}

/* Bytes the server has read by now (reading all there is). */
static size_t server_read_all(struct sim *sim, struct sim_tcp *c, size_t *got)
{
    uint8_t buf[8192];
    ssize_t r;
    while ((r = tern_recv(sim->st[1], c->server, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        *got += (size_t)r;
    return *got;
}

static void test_nagle_lets_a_writes_tail_follow_full_segments(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sim_tcp c = open_conn(&sim);
    sim_run(&sim, 100 * MS);
    static uint8_t buf[4 * 1460];
    memset(buf, 'n', sizeof(buf));
    size_t got = 0;
    /* One full segment and a tail: the tail does not wait for the
     * delayed ACK of one segment (40 ms) behind Nagle (Minshall). */
    uint64_t t0 = sim.now;
    assert_int_equal(tern_send(sim.st[0], c.client, buf, 1448 + 100, 0), 1548);
    while (server_read_all(&sim, &c, &got) < 1548 && sim.now - t0 < 100 * MS)
        sim_run(&sim, MS);
    assert_int_equal(got, 1548);
    assert_true(sim.now - t0 <= 5 * MS);
    sim_run(&sim, 100 * MS);

    /* Two short writes: the second still waits for the first's ACK,
     * which the receiver delays. */
    got = 0;
    t0 = sim.now;
    assert_int_equal(tern_send(sim.st[0], c.client, buf, 100, 0), 100);
    sim_run(&sim, MS);
    assert_int_equal(tern_send(sim.st[0], c.client, buf, 100, 0), 100);
    sim_run(&sim, 10 * MS);
    assert_int_equal(server_read_all(&sim, &c, &got), 100);
    sim_run(&sim, 60 * MS);
    assert_int_equal(server_read_all(&sim, &c, &got), 200);

    /* TCP_NODELAY sends both at once. */
    int one = 1;
    assert_int_equal(tern_setsockopt(sim.st[0], c.client, IPPROTO_TCP, TCP_NODELAY, &one,
                                     sizeof(one)), 0);
    got = 0;
    assert_int_equal(tern_send(sim.st[0], c.client, buf, 100, 0), 100);
    sim_run(&sim, MS);
    assert_int_equal(tern_send(sim.st[0], c.client, buf, 100, 0), 100);
    sim_run(&sim, 10 * MS);
    assert_int_equal(server_read_all(&sim, &c, &got), 200);
    close_conn_and_finish(&sim, &c);
}

static void test_a_bare_fin_waits_for_window_room(void **state)
{
    (void)state;
    /* The server's 4 KiB window fills; the client's FIN then has no room
     * for its sequence number: it waits (a probe asks for the window)
     * instead of being sent to be refused and resent after an RTO. */
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.tcp_rcvbuf = 4096;
    struct sim_opts o = {.cfg = &cfg};
    struct sim sim;
    sim_init(&sim, 2, &o);
    struct sim_tcp c = open_conn(&sim);
    sim_run(&sim, 100 * MS);
    static uint8_t buf[4096];
    memset(buf, 'f', sizeof(buf));
    assert_int_equal(tern_send(sim.st[0], c.client, buf, sizeof(buf), 0), 4096);
    sim_run(&sim, 50 * MS);
    assert_int_equal(tern_shutdown(sim.st[0], c.client, SHUT_WR), 0);
    sim_run(&sim, 2 * SEC); /* nobody reads: the window stays shut */
    assert_int_equal(sim_counter(&sim, 0, "tcp.retransmit_timeout"), 0);
    assert_true(sim_counter(&sim, 0, "tcp.window_probe") > 0);
    /* Reading opens it; the FIN follows within a round trip or two. */
    size_t got = 0;
    assert_int_equal(server_read_all(&sim, &c, &got), 4096);
    sim_run(&sim, 10 * MS);
    assert_int_equal(tern_recv(sim.st[1], c.server, buf, sizeof(buf), MSG_DONTWAIT), 0);
    assert_int_equal(sim_counter(&sim, 0, "tcp.retransmit_timeout"), 0);
    close_conn_and_finish(&sim, &c);
}

/* A 16 MB transfer over a 100 ms round trip; returns its virtual time
 * and what the two ends' buffers came to. `rcvbuf` > 0: the server's
 * listener sets SO_RCVBUF to it; `slow`: the reader takes 64 KiB every
 * 100 ms instead of all there is. */
struct long_path {
    uint64_t ns;
    uint32_t server_rcvbuf, client_sndbuf;
    uint8_t rcv_wscale;
    uint64_t rcv_grown, snd_grown;
};

static struct long_path long_path_transfer(bool autotune, int rcvbuf, bool slow)
{
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    if (autotune) {
        cfg.tcp_rcvbuf_max = 4u << 20;
        cfg.tcp_sndbuf_max = 4u << 20;
    }
    struct tern_impair_config delay = {.delay_ns = 50 * MS};
    struct sim_opts o = {.cfg = &cfg, .tx = &delay};
    struct sim sim;
    sim_init(&sim, 2, &o);
    struct sim_tcp c;
    sim_tcp_open_rcvbuf(&sim, &c, 0, 1, 4242, rcvbuf);
    struct long_path r = {0};
    struct sim_flow t = {.from_stack = 0, .from_fd = c.client, .to_stack = 1, .to_fd = c.server,
                         .total = 16u << 20};
    uint64_t t0 = sim.now;
    if (slow) {
        /* The reader's pace, not the window, sets the speed: 640 KB/s. */
        static uint8_t buf[65536];
        for (int i = 0; i < 20; i++) {
            sim_flow_pump(&sim, &(struct sim_flow){.from_stack = 0, .from_fd = c.client,
                                                    .to_stack = 1, .to_fd = -1, .total = 1u << 30});
            tern_recv(sim.st[1], c.server, buf, sizeof(buf), MSG_DONTWAIT);
            sim_run(&sim, 100 * MS);
        }
    } else {
        assert_true(sim_run_until(&sim, sim_flow_pump, &t, 120 * SEC));
        assert_int_equal(t.error, 0);
        assert_int_equal(t.received, t.total);
    }
    r.ns = sim.now - t0;
    struct tern_socket *srv = tern_sock_lookup(sim.st[1], c.server);
    struct tern_socket *cli = tern_sock_lookup(sim.st[0], c.client);
    r.server_rcvbuf = srv->rcvbuf;
    r.client_sndbuf = cli->sndbuf;
    r.rcv_wscale = srv->tcb->rcv_wscale;
    r.rcv_grown = sim_counter(&sim, 1, "tcp.rcvbuf_grown");
    r.snd_grown = sim_counter(&sim, 0, "tcp.sndbuf_grown");
    close_conn_and_finish(&sim, &c);
    return r;
}

static void test_autotuning_opens_the_window_on_a_long_path(void **state)
{
    (void)state;
    /* Off (the default): 256 KiB a round trip, about 6.5 s. */
    struct long_path fixed = long_path_transfer(false, 0, false);
    assert_int_equal(fixed.rcv_grown + fixed.snd_grown, 0);
    assert_int_equal(fixed.server_rcvbuf, 262144);
    assert_int_equal(fixed.rcv_wscale, 3);
    /* On: both buffers grow as the round trips show the window is the
     * limit, the window scale was chosen for the ceiling, and the same
     * transfer takes well under half the time. */
    struct long_path tuned = long_path_transfer(true, 0, false);
    assert_true(tuned.rcv_grown > 0);
    assert_true(tuned.snd_grown > 0);
    assert_true(tuned.server_rcvbuf > 262144 && tuned.server_rcvbuf <= (4u << 20));
    assert_true(tuned.client_sndbuf > 262144 && tuned.client_sndbuf <= (4u << 20));
    assert_int_equal(tuned.rcv_wscale, 7);
    assert_true(tuned.ns * 2 < fixed.ns);
    /* SO_RCVBUF fixes the receive side, as Linux's lock does. */
    struct long_path locked = long_path_transfer(true, 131072, false);
    assert_int_equal(locked.rcv_grown, 0);
    assert_int_equal(locked.server_rcvbuf, 262144); /* doubled, as Linux */
    assert_int_equal(locked.rcv_wscale, 3);
    /* A slow reader: the window was never the limit. */
    struct long_path slow = long_path_transfer(true, 0, true);
    assert_int_equal(slow.rcv_grown, 0);
    assert_int_equal(slow.server_rcvbuf, 262144);
}

static void test_connect_and_send_errno_as_linux(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sockaddr_in a = sim_sin(1, 4242), closed = sim_sin(1, 4243);
    /* Refused, reported once by connect; then a new attempt may start. */
    int c = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
    errno = 0;
    assert_int_equal(tern_connect(sim.st[0], c, (struct sockaddr *)&closed, sizeof(closed)), -1);
    assert_int_equal(errno, EINPROGRESS);
    errno = 0;
    assert_int_equal(tern_connect(sim.st[0], c, (struct sockaddr *)&closed, sizeof(closed)), -1);
    assert_int_equal(errno, EALREADY);
    sim_run(&sim, 100 * MS);
    errno = 0;
    assert_int_equal(tern_connect(sim.st[0], c, (struct sockaddr *)&closed, sizeof(closed)), -1);
    assert_int_equal(errno, ECONNREFUSED);
    int l = tern_socket(sim.st[1], AF_INET, SOCK_STREAM, 0);
    assert_int_equal(tern_bind(sim.st[1], l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(sim.st[1], l, 4), 0);
    /* shutdown(SHUT_WR) on a listener succeeds and changes nothing. */
    assert_int_equal(tern_shutdown(sim.st[1], l, SHUT_WR), 0);
    errno = 0;
    assert_int_equal(tern_connect(sim.st[0], c, (struct sockaddr *)&a, sizeof(a)), -1);
    assert_int_equal(errno, EINPROGRESS);
    sim_run(&sim, 100 * MS);
    /* Completed: 0 once, then EISCONN. */
    assert_int_equal(tern_connect(sim.st[0], c, (struct sockaddr *)&a, sizeof(a)), 0);
    errno = 0;
    assert_int_equal(tern_connect(sim.st[0], c, (struct sockaddr *)&a, sizeof(a)), -1);
    assert_int_equal(errno, EISCONN);
    int srv = tern_accept(sim.st[1], l, NULL, NULL);
    assert_true(srv >= 0);
    /* Reset by the peer: ECONNRESET once, then EPIPE. */
    struct linger l0 = {.l_onoff = 1, .l_linger = 0};
    tern_setsockopt(sim.st[1], srv, SOL_SOCKET, SO_LINGER, &l0, sizeof(l0));
    tern_close(sim.st[1], srv);
    sim_run(&sim, 100 * MS);
    errno = 0;
    assert_int_equal(tern_send(sim.st[0], c, "x", 1, 0), -1);
    assert_int_equal(errno, ECONNRESET);
    errno = 0;
    assert_int_equal(tern_send(sim.st[0], c, "x", 1, 0), -1);
    assert_int_equal(errno, EPIPE);
    tern_close(sim.st[0], c);
    /* shutdown during the handshake aborts it, as Linux. */
    int d = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
    tern_connect(sim.st[0], d, (struct sockaddr *)&a, sizeof(a));
    assert_int_equal(tern_shutdown(sim.st[0], d, SHUT_RDWR), 0);
    tern_close(sim.st[0], d);
    tern_close(sim.st[1], l);
    sim_finish(&sim);
}

static void test_new_syn_ends_time_wait(void **state)
{
    (void)state;
    /* The server closes first and keeps TIME_WAIT; the client comes back
     * from the same port at once and is accepted, not refused for 60 s. */
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sim_tcp c = open_conn(&sim);
    struct sockaddr_in mine;
    socklen_t ml = sizeof(mine);
    tern_getsockname(sim.st[0], c.client, (struct sockaddr *)&mine, &ml);
    tern_close(sim.st[1], c.server);
    sim_run(&sim, 100 * MS);
    tern_close(sim.st[0], c.client);
    sim_run(&sim, 100 * MS);
    int again = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
    int one = 1;
    tern_setsockopt(sim.st[0], again, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(tern_bind(sim.st[0], again, (struct sockaddr *)&mine, sizeof(mine)), 0);
    struct sockaddr_in a = sim_sin(1, 4242);
    tern_connect(sim.st[0], again, (struct sockaddr *)&a, sizeof(a));
    sim_run(&sim, 100 * MS);
    assert_int_equal(sim_counter(&sim, 1, "tcp.time_wait_reused"), 1);
    int srv = tern_accept(sim.st[1], c.listener, NULL, NULL);
    assert_true(srv >= 0);
    assert_int_equal(tern_connect(sim.st[0], again, (struct sockaddr *)&a, sizeof(a)), 0);
    tern_close(sim.st[0], again);
    tern_close(sim.st[1], srv);
    tern_close(sim.st[1], c.listener);
    sim_finish(&sim);
}

static void test_paws_refuses_old_timestamps(void **state)
{
    (void)state;
    /* RFC 7323 5: a segment at RCV.NXT whose timestamp is older than the
     * last one echoed is an old duplicate: refused, not delivered. */
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sim_tcp c = open_conn(&sim);
    struct tern_socket *so = tern_sock_lookup(sim.st[1], c.server);
    assert_true(so->tcb->ts_ok && so->tcb->sack_ok && so->tcb->wscale_ok);
    struct tern_tcp_hdr h = {.sport = so->pcb.fport, .dport = so->pcb.lport,
                             .seq = so->tcb->rcv_nxt, .ack = so->tcb->snd_nxt,
                             .flags = TERN_TCP_ACK | TERN_TCP_PSH, .wnd = 1000, .hlen = 32};
    h.opt.has_ts = true;
    h.opt.ts_val = so->tcb->ts_recent - 1000;
    inject_as_client(&sim, &h, "stale", 5);
    sim_run(&sim, 10 * MS);
    assert_int_equal(sim_counter(&sim, 1, "drop.tcp.paws"), 1);
    char buf[8];
    errno = 0;
    assert_int_equal(tern_recv(sim.st[1], c.server, buf, sizeof(buf), 0), -1);
    assert_int_equal(errno, EAGAIN);
    /* The real peer's data, with a fresh timestamp, still flows. */
    assert_int_equal(tern_send(sim.st[0], c.client, "fresh", 5, 0), 5);
    sim_run(&sim, 10 * MS);
    assert_int_equal(tern_recv(sim.st[1], c.server, buf, sizeof(buf), 0), 5);
    assert_memory_equal(buf, "fresh", 5);
    close_conn_and_finish(&sim, &c);
}

static void test_sack_blocks_fit_beside_timestamps(void **state)
{
    (void)state;
    /* Found against Linux over TAP: with four holes and timestamps on,
     * ACKs carried four SACK blocks beside the timestamp, 48 option
     * bytes: a header length the data offset field cannot hold. Linux
     * dropped them as malformed and its sender stalled. Only three
     * blocks fit beside a timestamp (RFC 2018 3). */
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sim_tcp c = open_conn(&sim);
    struct tern_socket *so = tern_sock_lookup(sim.st[1], c.server);
    assert_true(so->tcb->ts_ok && so->tcb->sack_ok);
    struct tern_tcp_hdr h;
    while (raw_next_tcp(&sim, 1, &h) >= 0) {
    }
    for (uint32_t i = 1; i <= 5; i++) {
        /* Five islands of 10 bytes with a hole before each. */
        struct tern_tcp_hdr in = {.sport = so->pcb.fport, .dport = so->pcb.lport,
                                  .seq = so->tcb->rcv_nxt + 20 * i, .ack = so->tcb->snd_nxt,
                                  .flags = TERN_TCP_ACK | TERN_TCP_PSH, .wnd = 1000, .hlen = 32};
        in.opt.has_ts = true;
        in.opt.ts_val = so->tcb->ts_recent + i;
        inject_as_client(&sim, &in, "0123456789", 10);
        sim_run(&sim, 1 * MS);
    }
    size_t acks = 0, most = 0;
    int r;
    while ((r = raw_next_tcp(&sim, 1, &h)) >= 0) {
        assert_int_equal(r, TERN_TCP_OK);
        assert_true(h.hlen <= TERN_TCP_HLEN + TERN_TCP_MAX_OPTLEN);
        acks++;
        if (h.opt.nsack > most)
            most = h.opt.nsack;
    }
    assert_int_equal(acks, 5);       /* one duplicate ACK per island */
    assert_int_equal(most, 3);       /* as many blocks as fit */
    assert_int_equal(sim_counter(&sim, 0, "drop.tcp.too_short"), 0); /* the client took them all */
    close_conn_and_finish(&sim, &c);
}

/* Send the server `len` bytes at seq from the client's side, with the
 * next timestamp, and return the server's answer: its first ACK, delayed
 * or not. (The real client, which never sent those bytes, answers that
 * ACK with one of its own, which the server answers again: later ACKs
 * are that exchange's and are left out.) */
static struct tern_tcp_hdr data_and_its_ack(struct sim *sim, struct tern_socket *so, uint32_t seq,
                                            const char *data, size_t len, uint32_t *ts)
{
    struct tern_tcp_hdr in = {.sport = so->pcb.fport, .dport = so->pcb.lport, .seq = seq,
                              .ack = so->tcb->snd_nxt, .flags = TERN_TCP_ACK | TERN_TCP_PSH,
                              .wnd = 1000, .hlen = 32};
    in.opt.has_ts = true;
    in.opt.ts_val = ++*ts;
    inject_as_client(sim, &in, data, len);
    sim_run(sim, 500 * MS); /* past any delayed ACK */
    struct tern_tcp_hdr h, first = {0};
    size_t acks = 0;
    int r;
    while ((r = raw_next_tcp(sim, 1, &h)) >= 0) {
        assert_int_equal(r, TERN_TCP_OK);
        if (acks++ == 0)
            first = h;
    }
    assert_true(acks >= 1);
    return first;
}

static void test_duplicates_are_reported_with_dsack(void **state)
{
    (void)state;
    /* RFC 2883: a receiver that gets data twice says so in the first
     * SACK block of its next ACK, once, so that the sender can tell a
     * needless retransmission (Linux then undoes the window cut). */
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sim_tcp c = open_conn(&sim);
    struct tern_socket *so = tern_sock_lookup(sim.st[1], c.server);
    assert_true(so->tcb->sack_ok);
    struct tern_tcp_hdr h;
    while (raw_next_tcp(&sim, 1, &h) >= 0) {
    }
    uint32_t ts = so->tcb->ts_recent;
    uint32_t base = so->tcb->rcv_nxt;
    /* In order, then the same again: entirely old. */
    h = data_and_its_ack(&sim, so, base, "0123456789", 10, &ts);
    assert_int_equal(h.ack, base + 10);
    h = data_and_its_ack(&sim, so, base, "0123456789", 10, &ts);
    assert_int_equal(h.ack, base + 10);
    assert_int_equal(h.opt.nsack, 1);
    assert_int_equal(h.opt.sack[0].start, base);
    assert_int_equal(h.opt.sack[0].end, base + 10);
    /* Half old, half new: the old half is reported, the new half taken. */
    h = data_and_its_ack(&sim, so, base + 5, "56789abcde", 10, &ts);
    assert_int_equal(h.ack, base + 15);
    assert_int_equal(h.opt.nsack, 1);
    assert_int_equal(h.opt.sack[0].start, base + 5);
    assert_int_equal(h.opt.sack[0].end, base + 10);
    /* Beyond a hole, twice: the second is the D-SACK block, then the
     * block that holds it (RFC 2883 section 4, its second example). */
    h = data_and_its_ack(&sim, so, base + 25, "pqrst", 5, &ts);
    assert_int_equal(h.opt.nsack, 1);
    assert_int_equal(h.opt.sack[0].start, base + 25);
    h = data_and_its_ack(&sim, so, base + 25, "pqrst", 5, &ts);
    assert_int_equal(h.ack, base + 15);
    assert_int_equal(h.opt.nsack, 2);
    assert_int_equal(h.opt.sack[0].start, base + 25);
    assert_int_equal(h.opt.sack[0].end, base + 30);
    assert_int_equal(h.opt.sack[1].start, base + 25);
    assert_int_equal(h.opt.sack[1].end, base + 30);
    /* Reported once: the next ACK (the hole filled) has no D-SACK. */
    h = data_and_its_ack(&sim, so, base + 15, "fghijklmno", 10, &ts);
    assert_int_equal(h.ack, base + 30);
    assert_int_equal(h.opt.nsack, 0);
    assert_int_equal(sim_counter(&sim, 1, "tcp.tx_dsack"), 3);
    close_conn_and_finish(&sim, &c);
}

/* The client's RTO once one segment, lost twice to timeouts (the RTO
 * doubled to *backed_off), is acked: the server hears again before the
 * third timeout, which doubles the RTO once more and sends it a fourth
 * time. */
static uint64_t rto_once_the_retransmission_is_acked(bool timestamps, uint64_t *backed_off)
{
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.tcp_timestamps = timestamps;
    struct tern_impair_config imp = {.delay_ns = MS};
    struct sim_opts o = {.tx = &imp, .cfg = &cfg};
    struct sim sim;
    sim_init(&sim, 2, &o);
    struct sim_tcp c = open_conn(&sim);
    struct tern_tcpcb *tp = tern_sock_lookup(sim.st[0], c.client)->tcb;
    assert_int_equal(tp->ts_ok, timestamps);
    assert_int_equal(tp->rto, TERN_TCP_RTO_MIN_NS);
    /* The server goes deaf (its address taken away): two timeouts. */
    assert_int_equal(tern_if_addr_del(sim.st[1], sim.ifindex[1], sim_addr(1)), 0);
    assert_int_equal(tern_send(sim.st[0], c.client, "x", 1, 0), 1);
    sim_run(&sim, 3 * TERN_TCP_RTO_MIN_NS + 50 * MS);
    assert_int_equal(tp->retransmits, 2);
    *backed_off = tp->rto;
    /* It hears again; the fourth sending is acked. */
    assert_int_equal(tern_if_addr_add(sim.st[1], sim.ifindex[1], sim_addr(1), 24), 0);
    sim_run(&sim, tp->rto + 50 * MS);
    assert_true(tp->snd_una == tp->snd_max);
    uint64_t rto = tp->rto;
    close_conn_and_finish(&sim, &c);
    return rto;
}

static void test_an_acked_retransmission_brings_the_rto_down_with_timestamps(void **state)
{
    (void)state;
    /* RFC 6298 5.5-5.7 double the RTO per timeout and Karn's rule keeps
     * it so until new data is timed. The timestamp the peer echoes says
     * the ACK answers the fourth sending, a real round trip (RFC 7323
     * 4.1): with timestamps the RTO comes back at once, without them it
     * stays at eight times. */
    uint64_t backed_off;
    assert_int_equal(rto_once_the_retransmission_is_acked(true, &backed_off),
                     TERN_TCP_RTO_MIN_NS);
    assert_int_equal(backed_off, 4 * TERN_TCP_RTO_MIN_NS);
    assert_int_equal(rto_once_the_retransmission_is_acked(false, &backed_off),
                     8 * TERN_TCP_RTO_MIN_NS);
}

/* The socket table line of the client's connection. */
static bool client_line_has(struct sim *sim, const char *what)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    tern_sockets_dump(sim->st[0], f);
    fclose(f);
    bool has = strstr(text, what) != NULL;
    free(text);
    return has;
}

static void test_the_probe_timeout_comes_before_the_rto_and_shows(void **state)
{
    (void)state;
    /* RFC 8985 7.2: with two segments out and nothing back, the
     * retransmission deadline is a probe timeout of two round trips
     * (the socket table says "probe"); after the probe, the RTO. */
    struct tern_impair_config imp = {.delay_ns = 5 * MS};
    struct sim_opts o = {.tx = &imp};
    struct sim sim;
    sim_init(&sim, 2, &o);
    struct sim_tcp c = open_conn(&sim);
    struct tern_tcpcb *tp = tern_sock_lookup(sim.st[0], c.client)->tcb;
    assert_int_equal(tern_if_addr_del(sim.st[1], sim.ifindex[1], sim_addr(1)), 0);
    static char data[2 * 1448];
    assert_int_equal(tern_send(sim.st[0], c.client, data, sizeof(data), 0), (ssize_t)sizeof(data));
    sim_run(&sim, MS);
    assert_true(tp->tlp_armed);
    assert_true(tp->deadline[TERN_TCPT_REXMT] - sim.now < 2 * tp->srtt + MS);
    assert_true(client_line_has(&sim, "timers:probe("));
    sim_run(&sim, 2 * tp->srtt + MS);
    assert_int_equal(sim_counter(&sim, 0, "tcp.tlp_probe"), 1);
    assert_false(tp->tlp_armed);
    assert_true(tp->tlp_out);
    assert_true(client_line_has(&sim, "timers:rexmt("));
    /* The probe is answered by nobody: the RTO follows, and no second
     * probe before it. */
    sim_run(&sim, tp->rto + MS);
    assert_int_equal(sim_counter(&sim, 0, "tcp.tlp_probe"), 1);
    assert_int_equal(sim_counter(&sim, 0, "tcp.retransmit_timeout"), 1);
    assert_int_equal(tern_if_addr_add(sim.st[1], sim.ifindex[1], sim_addr(1), 24), 0);
    close_conn_and_finish(&sim, &c);
}

static void test_dupacks_with_sack_count_when_the_window_moves(void **state)
{
    (void)state;
    /* Found against Linux over TAP: a receiver holding data past a hole
     * (Linux growing its buffer, Tern shrinking its window by what it
     * holds) changes the window in the duplicate ACKs themselves. With
     * SACK on they must still count, or every loss waits for the
     * retransmission timer. */
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sim_tcp c = open_conn(&sim);
    struct tern_socket *so = tern_sock_lookup(sim.st[0], c.client);
    assert_true(so->tcb->sack_ok && so->tcb->ts_ok);
    /* The server goes quiet (its address goes); the test answers for it. */
    assert_int_equal(tern_if_addr_del(sim.st[1], sim.ifindex[1], sim_addr(1)), 0);
    static uint8_t data[10 * 1448];
    assert_int_equal(tern_send(sim.st[0], c.client, data, sizeof(data), 0), (ssize_t)sizeof(data));
    sim_run(&sim, 1 * MS);
    uint32_t una = so->tcb->snd_una, seg = tern_tcp_seg_size(so->tcb);
    assert_true(so->tcb->snd_max - una >= 5 * seg); /* the first window left */
    for (uint32_t i = 1; i <= 3; i++) {
        /* Segment 0 lost, segments 1..i arrived; the window changes each time. */
        struct tern_tcp_hdr h = {.sport = so->pcb.fport, .dport = so->pcb.lport,
                                 .seq = so->tcb->rcv_nxt, .ack = una, .flags = TERN_TCP_ACK,
                                 .wnd = (uint16_t)(1000 + 100 * i), .hlen = 44};
        h.opt.has_ts = true;
        h.opt.ts_val = so->tcb->ts_recent + i;
        h.opt.nsack = 1;
        h.opt.sack[0] = (struct tern_tcp_sack_block){una + seg, una + seg + i * seg};
        inject_from(&sim, 1, 0, &h, NULL, 0);
        sim_run(&sim, 1 * MS);
    }
    assert_int_equal(sim_counter(&sim, 0, "tcp.rx_dupack"), 3);
    assert_int_equal(sim_counter(&sim, 0, "tcp.fast_retransmit"), 1);
    assert_int_equal(sim_counter(&sim, 0, "tcp.retransmit_timeout"), 0);
    assert_int_equal(tern_if_addr_add(sim.st[1], sim.ifindex[1], sim_addr(1), 24), 0);
    close_conn_and_finish(&sim, &c);
}

static void test_timestamps_grow_across_connections(void **state)
{
    (void)state;
    /* Found against Linux over TAP: Linux, holding the old connection of
     * a 4-tuple in TIME_WAIT, takes a new SYN only if its timestamp is
     * newer (RFC 6191, PAWS); Tern's random offset per connection made it
     * older half the time, and the connect cost a reset and a second.
     * Between two addresses the SYNs' timestamps must never go back. */
    struct sim sim;
    sim_init(&sim, 2, NULL);
    int l = tern_socket(sim.st[1], AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sim_sin(1, 4242);
    assert_int_equal(tern_bind(sim.st[1], l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(sim.st[1], l, 16), 0);
    uint32_t last = 0;
    int syns = 0;
    for (int i = 0; i < 20; i++) {
        int c = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
        tern_connect(sim.st[0], c, (struct sockaddr *)&a, sizeof(a));
        sim_run(&sim, 5 * MS);
        struct tern_tcp_hdr h;
        int r;
        while ((r = raw_next_tcp(&sim, 0, &h)) >= 0) {
            assert_int_equal(r, TERN_TCP_OK);
            if (h.flags != TERN_TCP_SYN)
                continue;
            assert_true(h.opt.has_ts);
            if (syns++)
                assert_true((int32_t)(h.opt.ts_val - last) >= 0);
            last = h.opt.ts_val;
        }
        int srv = tern_accept(sim.st[1], l, NULL, NULL);
        assert_true(srv >= 0);
        tern_close(sim.st[0], c);
        tern_close(sim.st[1], srv);
        sim_run(&sim, 5 * MS);
    }
    assert_int_equal(syns, 20);
    tern_close(sim.st[1], l);
    sim_finish(&sim);
}

static void set_opt(struct sim *sim, int st, int fd, int level, int name, int v)
{
    assert_int_equal(tern_setsockopt(sim->st[st], fd, level, name, &v, sizeof(v)), 0);
}

static void test_keepalive_keeps_live_peers_and_drops_dead_ones(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sim_tcp c = open_conn(&sim);
    set_opt(&sim, 0, c.client, SOL_SOCKET, SO_KEEPALIVE, 1);
    set_opt(&sim, 0, c.client, IPPROTO_TCP, TCP_KEEPIDLE, 10);
    set_opt(&sim, 0, c.client, IPPROTO_TCP, TCP_KEEPINTVL, 2);
    set_opt(&sim, 0, c.client, IPPROTO_TCP, TCP_KEEPCNT, 3);
    int v = 0;
    socklen_t vl = sizeof(v);
    errno = 0;
    assert_int_equal(tern_setsockopt(sim.st[0], c.client, IPPROTO_TCP, TCP_KEEPIDLE, &v,
                                     sizeof(v)), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(tern_getsockopt(sim.st[0], c.client, IPPROTO_TCP, TCP_KEEPCNT, &v, &vl), 0);
    assert_int_equal(v, 3);
    /* A live, silent peer answers every probe: a minute later all is well. */
    sim_run(&sim, 60 * SEC);
    uint64_t probes = sim_counter(&sim, 0, "tcp.keepalive_probe");
    assert_in_range(probes, 4, 7); /* one per idle period of 10 s */
    assert_int_equal(sim_counter(&sim, 0, "tcp.keepalive_drop"), 0);
    /* The peer vanishes (its address goes): 10 s idle + 3 probes 2 s
     * apart, then ETIMEDOUT. */
    assert_int_equal(tern_if_addr_del(sim.st[1], sim.ifindex[1], sim_addr(1)), 0);
    sim_run(&sim, 30 * SEC);
    assert_int_equal(sim_counter(&sim, 0, "tcp.keepalive_drop"), 1);
    char b;
    errno = 0;
    assert_int_equal(tern_recv(sim.st[0], c.client, &b, 1, 0), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(tern_if_addr_add(sim.st[1], sim.ifindex[1], sim_addr(1), 24), 0);
    close_conn_and_finish(&sim, &c);
}

static void test_user_timeout_bounds_unacknowledged_data(void **state)
{
    (void)state;
    /* RFC 5482: with TCP_USER_TIMEOUT at 5 s, data the vanished peer
     * never acknowledges ends the connection after about 5 s, not after
     * fifteen backed-off retransmissions (many minutes). */
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sim_tcp c = open_conn(&sim);
    set_opt(&sim, 0, c.client, IPPROTO_TCP, TCP_USER_TIMEOUT, 5000);
    assert_int_equal(tern_if_addr_del(sim.st[1], sim.ifindex[1], sim_addr(1)), 0);
    uint64_t t0 = sim.now;
    assert_int_equal(tern_send(sim.st[0], c.client, "lost", 4, 0), 4);
    sim_run(&sim, 4 * SEC);
    assert_int_equal(sim_counter(&sim, 0, "tcp.timeout_drop"), 0);
    sim_run(&sim, 6 * SEC);
    assert_int_equal(sim_counter(&sim, 0, "tcp.timeout_drop"), 1);
    assert_true(sim.now - t0 <= 11 * SEC);
    char b;
    errno = 0;
    assert_int_equal(tern_recv(sim.st[0], c.client, &b, 1, 0), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(tern_if_addr_add(sim.st[1], sim.ifindex[1], sim_addr(1), 24), 0);
    close_conn_and_finish(&sim, &c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_data_and_orderly_close),
        cmocka_unit_test(test_bulk_clean_and_impaired),
        cmocka_unit_test(test_connect_to_closed_port_is_refused),
        cmocka_unit_test(test_peer_fin_and_rst_before_accept),
        cmocka_unit_test(test_close_with_unread_data_resets),
        cmocka_unit_test(test_listener_close_resets_pending_connections),
        cmocka_unit_test(test_half_close_and_simultaneous_close),
        cmocka_unit_test(test_blind_resets_get_rate_limited_challenge_acks),
        cmocka_unit_test(test_zero_window_survives_a_slow_reader),
        cmocka_unit_test(test_window_updates_go_when_reading_opens_the_window),
        cmocka_unit_test(test_autotuning_opens_the_window_on_a_long_path),
        cmocka_unit_test(test_nagle_lets_a_writes_tail_follow_full_segments),
        cmocka_unit_test(test_a_bare_fin_waits_for_window_room),
        cmocka_unit_test(test_connect_and_send_errno_as_linux),
        cmocka_unit_test(test_new_syn_ends_time_wait),
        cmocka_unit_test(test_keepalive_keeps_live_peers_and_drops_dead_ones),
        cmocka_unit_test(test_user_timeout_bounds_unacknowledged_data),
        cmocka_unit_test(test_paws_refuses_old_timestamps),
        cmocka_unit_test(test_sack_blocks_fit_beside_timestamps),
        cmocka_unit_test(test_duplicates_are_reported_with_dsack),
        cmocka_unit_test(test_an_acked_retransmission_brings_the_rto_down_with_timestamps),
        cmocka_unit_test(test_the_probe_timeout_comes_before_the_rto_and_shows),
        cmocka_unit_test(test_dupacks_with_sack_count_when_the_window_moves),
        cmocka_unit_test(test_timestamps_grow_across_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
