/* The listener's queues: handshakes as request records, SYN,ACK
 * retransmission, SYN cookies (RFC 4987), the backlog, and SO_REUSEPORT
 * listeners handing their pending connections over when one closes. The
 * test plays the client on the raw port where it needs exact segments. */
#include "testing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stack.h"
#include "sim.h"
#include "transport/tcp/tcp.h"

#define MS TERN_NS_PER_MS
#define SEC TERN_NS_PER_SEC
#define PORT 8080

static int listener(struct sim *sim, int i, int backlog, bool reuseport)
{
    int fd = tern_socket(sim->st[i], AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    if (reuseport)
        assert_int_equal(tern_setsockopt(sim->st[i], fd, SOL_SOCKET, SO_REUSEPORT, &one,
                                         sizeof(one)),
                         0);
    struct sockaddr_in a = sim_sin(i, PORT);
    assert_int_equal(tern_bind(sim->st[i], fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(sim->st[i], fd, backlog), 0);
    return fd;
}

/* A segment from the raw host (192.0.2.100:sport) to stack 0's PORT. */
static void raw_tcp(struct sim *sim, uint16_t sport, const struct tern_tcp_hdr *hin,
                    const void *data, size_t len)
{
    struct tern_tcp_hdr h = *hin;
    h.sport = sport;
    h.dport = PORT;
    h.hlen = (uint8_t)(TERN_TCP_HLEN + tern_tcp_opts_len(&h.opt));
    uint8_t seg[256], frame[512];
    assert_true(h.hlen + len <= sizeof(seg));
    if (len)
        memcpy(seg + h.hlen, data, len);
    tern_tcp_emit(seg, h.hlen + len, SIM_RAW_IP, ntohl(sim_addr(0).s_addr), &h);
    size_t fl = sim_raw_ipv4(sim, 0, frame, 6, 1, 0, false, seg, h.hlen + len);
    sim_raw_send(sim, frame, fl);
}

static void raw_syn(struct sim *sim, uint16_t sport, uint32_t iss)
{
    struct tern_tcp_hdr h = {.seq = iss, .flags = TERN_TCP_SYN, .wnd = 65535};
    h.opt.has_mss = true;
    h.opt.mss = 1460;
    h.opt.has_wscale = true;
    h.opt.wscale = 7;
    h.opt.sack_permitted = true;
    h.opt.has_ts = true;
    h.opt.ts_val = 1000;
    raw_tcp(sim, sport, &h, NULL, 0);
}

/* The next segment stack 0 sent to the raw host's port dport. */
static bool raw_next(struct sim *sim, uint16_t dport, struct tern_tcp_hdr *h)
{
    uint8_t f[2048];
    size_t n;
    while ((n = sim_raw_recv(sim, 6, f, sizeof(f))) > 0) {
        size_t ihl = (size_t)(f[14] & 0xf) * 4;
        uint32_t dst;
        memcpy(&dst, f + 30, 4);
        if (ntohl(dst) != SIM_RAW_IP)
            continue;
        assert_int_equal(tern_tcp_parse(f + 14 + ihl, n - 14 - ihl, ntohl(sim_addr(0).s_addr),
                                        SIM_RAW_IP, true, h),
                         TERN_TCP_OK);
        if (h->dport == dport)
            return true;
    }
    return false;
}

/* Complete the handshake a SYN,ACK started: ACK it, echoing its TSval. */
static void raw_ack(struct sim *sim, uint16_t sport, uint32_t iss, const struct tern_tcp_hdr *synack,
                    const void *data, size_t len)
{
    struct tern_tcp_hdr h = {.seq = iss + 1, .ack = synack->seq + 1, .flags = TERN_TCP_ACK,
                             .wnd = 512};
    h.opt.has_ts = true;
    h.opt.ts_val = 1001;
    h.opt.ts_ecr = synack->opt.ts_val;
    raw_tcp(sim, sport, &h, data, len);
}

/* The raw host never answers a FIN: end its connections with a reset. */
static void close_abortive(struct sim *sim, int i, int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(tern_setsockopt(sim->st[i], fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    assert_int_equal(tern_close(sim->st[i], fd), 0);
}

static struct tern_live live_of(struct sim *sim, int i)
{
    struct tern_live l;
    tern_stack_live(sim->st[i], &l);
    return l;
}

static void test_a_syn_makes_a_request_and_its_ack_a_socket(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 1, NULL);
    sim_raw_arp_hello(&sim, 0);
    int l = listener(&sim, 0, 8, false);
    raw_syn(&sim, 40000, 5000);
    sim_run(&sim, MS);
    struct tern_live lv = live_of(&sim, 0);
    assert_int_equal(lv.sockets, 1);      /* the listener: no socket per SYN */
    assert_int_equal(lv.tcp_requests, 1);
    struct tern_tcp_hdr sa;
    assert_true(raw_next(&sim, 40000, &sa));
    assert_int_equal(sa.flags, TERN_TCP_SYN | TERN_TCP_ACK);
    assert_int_equal(sa.ack, 5001);
    assert_true(sa.opt.has_mss && sa.opt.has_wscale && sa.opt.sack_permitted && sa.opt.has_ts);
    assert_int_equal(sa.opt.ts_ecr, 1000);
    char *dump = NULL;
    size_t dl = 0;
    FILE *f = open_memstream(&dump, &dl);
    tern_sockets_dump(sim.st[0], f);
    fclose(f);
    assert_non_null(strstr(dump, "SYN_RECEIVED"));
    free(dump);
    assert_int_equal(tern_accept(sim.st[0], l, NULL, NULL), -1);
    assert_int_equal(errno, EAGAIN);
    /* The ACK brings data along: the child takes it. */
    raw_ack(&sim, 40000, 5000, &sa, "hello", 5);
    sim_run(&sim, MS);
    lv = live_of(&sim, 0);
    assert_int_equal(lv.tcp_requests, 0);
    assert_int_equal(lv.sockets, 2);
    int c = tern_accept(sim.st[0], l, NULL, NULL);
    assert_true(c >= 0);
    char buf[8];
    assert_int_equal(tern_recv(sim.st[0], c, buf, sizeof(buf), 0), 5);
    assert_memory_equal(buf, "hello", 5);
    struct tern_socket *so = tern_sock_lookup(sim.st[0], c);
    assert_true(so->tcb->sack_ok && so->tcb->ts_ok && so->tcb->wscale_ok);
    assert_int_equal(so->tcb->snd_wscale, 7);
    assert_int_equal(so->tcb->snd_wnd, 512u << 7);
    assert_int_equal(so->tcb->mss, 1460);
    close_abortive(&sim, 0, c);
    tern_close(sim.st[0], l);
    sim_finish(&sim);
}

static void test_synack_is_resent_then_the_request_given_up(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 1, NULL);
    sim_raw_arp_hello(&sim, 0);
    int l = listener(&sim, 0, 8, false);
    raw_syn(&sim, 40001, 7000);
    struct tern_tcp_hdr h;
    uint64_t t0 = sim.now;
    int synacks = 0;
    uint64_t last = 0;
    for (int step = 0; step < 70; step++) {
        sim_run(&sim, SEC);
        while (raw_next(&sim, 40001, &h)) {
            assert_int_equal(h.flags, TERN_TCP_SYN | TERN_TCP_ACK);
            synacks++;
            last = sim.now - t0;
        }
    }
    /* The first and five more, 1 + 2 + 4 + 8 + 16 s apart. */
    assert_int_equal(synacks, 1 + TERN_TCP_SYNACK_RETRIES);
    assert_in_range(last, 31 * SEC, 32 * SEC);
    assert_int_equal(live_of(&sim, 0).tcp_requests, 0);
    assert_int_equal(sim_counter(&sim, 0, "tcp.syn_recv_timeout"), 1);
    tern_close(sim.st[0], l);
    sim_finish(&sim);
}

static void test_syn_flood_is_answered_with_cookies(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 1, NULL);
    sim_raw_arp_hello(&sim, 0);
    int l = listener(&sim, 0, 2, false);
    for (uint16_t i = 0; i < 10; i++)
        raw_syn(&sim, (uint16_t)(41000 + i), 9000u * i);
    sim_run(&sim, MS);
    /* Two requests fill the queue; eight more SYNs get cookies and leave
     * nothing behind. */
    assert_int_equal(live_of(&sim, 0).tcp_requests, 2);
    assert_int_equal(sim_counter(&sim, 0, "tcp.syncookie_sent"), 8);
    struct tern_tcp_hdr sa[10];
    for (uint16_t i = 0; i < 10; i++)
        assert_true(raw_next(&sim, (uint16_t)(41000 + i), &sa[i]));
    /* A forged ACK (wrong cookie) for a cookie'd SYN meets a reset. */
    struct tern_tcp_hdr bad = sa[9];
    bad.seq += 12345;
    raw_ack(&sim, 41009, 9000u * 9, &bad, NULL, 0);
    sim_run(&sim, MS);
    struct tern_tcp_hdr r;
    assert_true(raw_next(&sim, 41009, &r));
    assert_true(r.flags & TERN_TCP_RST);
    assert_int_equal(sim_counter(&sim, 0, "tcp.syncookie_ok"), 0);
    /* The real cookie completes the handshake, with data. */
    raw_ack(&sim, 41009, 9000u * 9, &sa[9], "cookie", 6);
    sim_run(&sim, MS);
    assert_int_equal(sim_counter(&sim, 0, "tcp.syncookie_ok"), 1);
    int c = tern_accept(sim.st[0], l, NULL, NULL);
    assert_true(c >= 0);
    char buf[8];
    assert_int_equal(tern_recv(sim.st[0], c, buf, sizeof(buf), 0), 6);
    assert_memory_equal(buf, "cookie", 6);
    /* What the cookie carried in the timestamp came back. */
    struct tern_socket *so = tern_sock_lookup(sim.st[0], c);
    assert_true(so->tcb->sack_ok && so->tcb->wscale_ok);
    assert_int_equal(so->tcb->snd_wscale, 7);
    assert_int_equal(so->tcb->mss, 1460);
    assert_int_equal(so->tcb->iss, sa[9].seq);
    /* Our answer acknowledges the 6 bytes. */
    struct tern_tcp_hdr ack;
    bool acked = false;
    sim_run(&sim, 100 * MS);
    while (raw_next(&sim, 41009, &ack))
        acked |= ack.ack == 9000u * 9 + 1 + 6;
    assert_true(acked);
    close_abortive(&sim, 0, c);
    tern_close(sim.st[0], l);
    sim_finish(&sim);
}

static void test_without_cookies_a_full_queue_drops_syns(void **state)
{
    (void)state;
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.tcp_syncookies = 0;
    struct sim_opts o = {.cfg = &cfg};
    struct sim sim;
    sim_init(&sim, 1, &o);
    sim_raw_arp_hello(&sim, 0);
    int l = listener(&sim, 0, 3, false);
    for (uint16_t i = 0; i < 5; i++)
        raw_syn(&sim, (uint16_t)(42000 + i), 100);
    sim_run(&sim, MS);
    assert_int_equal(live_of(&sim, 0).tcp_requests, 3);
    assert_int_equal(sim_counter(&sim, 0, "drop.tcp.syn_queue_full"), 2);
    assert_int_equal(sim_counter(&sim, 0, "tcp.syncookie_sent"), 0);
    tern_close(sim.st[0], l); /* requests go with their listener */
    assert_int_equal(live_of(&sim, 0).tcp_requests, 0);
    sim_finish(&sim);
}

struct accepted {
    int fd[32];
    int n;
};

/* Stack 1 connects n clients to stack 0's group; nobody accepts yet. */
static void connect_clients(struct sim *sim, int *client, int n)
{
    struct sockaddr_in a = sim_sin(0, PORT);
    for (int i = 0; i < n; i++) {
        client[i] = tern_socket(sim->st[1], AF_INET, SOCK_STREAM, 0);
        assert_int_equal(tern_connect(sim->st[1], client[i], (struct sockaddr *)&a, sizeof(a)), -1);
    }
    sim_run(sim, 100 * MS);
}

static int drain_accept(struct sim *sim, int l, struct accepted *acc)
{
    int got = 0, c;
    while ((c = tern_accept(sim->st[0], l, NULL, NULL)) >= 0) {
        assert_true(acc->n < 32);
        acc->fd[acc->n++] = c;
        got++;
    }
    return got;
}

static void test_closing_a_reuseport_listener_hands_its_connections_over(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    int la = listener(&sim, 0, 16, true);
    int lb = listener(&sim, 0, 16, true);
    int client[12];
    connect_clients(&sim, client, 12);
    struct tern_socket *sa = tern_sock_lookup(sim.st[0], la);
    struct tern_socket *sb = tern_sock_lookup(sim.st[0], lb);
    uint32_t on_a = sa->tcb->lq->accept_q_len, on_b = sb->tcb->lq->accept_q_len;
    assert_int_equal(on_a + on_b, 12);
    assert_true(on_a > 0 && on_b > 0); /* the flow hash spread them */
    /* Half-open ones too: a SYN from the raw host waits on one of them. */
    sim_raw_arp_hello(&sim, 0);
    raw_syn(&sim, 43000, 777);
    sim_run(&sim, MS);
    struct tern_tcp_hdr syn_ack;
    assert_true(raw_next(&sim, 43000, &syn_ack));
    assert_int_equal(sa->tcb->lq->req_q_len + sb->tcb->lq->req_q_len, 1);
    uint32_t req_on_a = sa->tcb->lq->req_q_len;

    assert_int_equal(tern_close(sim.st[0], la), 0);
    sim_run(&sim, 10 * MS);
    /* Nothing was reset; B holds everything A had. */
    assert_int_equal(sim_counter(&sim, 0, "tcp.tx_rst"), 0);
    assert_int_equal(sim_counter(&sim, 0, "tcp.listen_migrated"), on_a + req_on_a);
    assert_int_equal(sb->tcb->lq->accept_q_len, 12);
    assert_int_equal(sb->tcb->lq->req_q_len, 1);
    /* The half-open one completes on B. */
    raw_ack(&sim, 43000, 777, &syn_ack, "x", 1);
    sim_run(&sim, MS);
    struct accepted acc = {.n = 0};
    assert_int_equal(drain_accept(&sim, lb, &acc), 13);
    /* Every client's connection works: one byte each way. */
    for (int i = 0; i < 12; i++)
        assert_int_equal(tern_send(sim.st[1], client[i], "p", 1, 0), 1);
    sim_run(&sim, 100 * MS);
    int answered = 0;
    for (int i = 0; i < acc.n; i++) {
        char b;
        if (tern_recv(sim.st[0], acc.fd[i], &b, 1, 0) == 1)
            answered++;
        close_abortive(&sim, 0, acc.fd[i]);
    }
    assert_int_equal(answered, 13);
    for (int i = 0; i < 12; i++)
        tern_close(sim.st[1], client[i]);
    tern_close(sim.st[0], lb);
    sim_finish(&sim);
}

/* The last member of a group has no heir: its pending connections are
 * reset, as a plain listener's are. */
static void test_the_last_reuseport_listener_resets_what_it_holds(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    int la = listener(&sim, 0, 16, true);
    int client[3];
    connect_clients(&sim, client, 3);
    assert_int_equal(tern_close(sim.st[0], la), 0);
    sim_run(&sim, 10 * MS);
    assert_int_equal(sim_counter(&sim, 0, "tcp.listen_migrated"), 0);
    assert_int_equal(sim_counter(&sim, 0, "tcp.tx_rst"), 3);
    for (int i = 0; i < 3; i++) {
        char b;
        errno = 0;
        assert_int_equal(tern_recv(sim.st[1], client[i], &b, 1, 0), -1);
        assert_int_equal(errno, ECONNRESET);
        tern_close(sim.st[1], client[i]);
    }
    sim_finish(&sim);
}

/* Backlog 1 and two clients connecting at once: the second SYN finds the
 * SYN queue full and gets a cookie, but its ACK finds the accept queue
 * full and is dropped (as on Linux). The client believes it is connected
 * and sends; once the application accepts the first, the retransmission
 * of that data carries the cookie again and the second gets in. */
static void test_a_full_accept_queue_holds_back_handshakes_until_accept(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    int l = listener(&sim, 0, 1, false);
    int client[2];
    connect_clients(&sim, client, 2);
    for (int i = 0; i < 2; i++)
        assert_int_equal(tern_send(sim.st[1], client[i], "q", 1, 0), 1);
    sim_run(&sim, 100 * MS);
    assert_int_equal(sim_counter(&sim, 0, "tcp.syncookie_sent"), 1);
    assert_true(sim_counter(&sim, 0, "drop.tcp.accept_overflow") >= 1);
    struct accepted acc = {.n = 0};
    assert_int_equal(drain_accept(&sim, l, &acc), 1);
    sim_run(&sim, 3 * SEC); /* the client's retransmission */
    assert_int_equal(drain_accept(&sim, l, &acc), 1);
    assert_int_equal(sim_counter(&sim, 0, "tcp.syncookie_ok"), 1);
    for (int i = 0; i < 2; i++) {
        char b;
        assert_int_equal(tern_recv(sim.st[0], acc.fd[i], &b, 1, 0), 1);
        assert_int_equal(b, 'q');
        tern_close(sim.st[0], acc.fd[i]);
        tern_close(sim.st[1], client[i]);
    }
    tern_close(sim.st[0], l);
    sim_finish(&sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_syn_makes_a_request_and_its_ack_a_socket),
        cmocka_unit_test(test_synack_is_resent_then_the_request_given_up),
        cmocka_unit_test(test_syn_flood_is_answered_with_cookies),
        cmocka_unit_test(test_without_cookies_a_full_queue_drops_syns),
        cmocka_unit_test(test_closing_a_reuseport_listener_hands_its_connections_over),
        cmocka_unit_test(test_the_last_reuseport_listener_resets_what_it_holds),
        cmocka_unit_test(test_a_full_accept_queue_holds_back_handshakes_until_accept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
