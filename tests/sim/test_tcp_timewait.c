/* TIME_WAIT as a record without a socket (RFC 9293 3.6, RFC 1337, RFC
 * 6191): what it costs, what it answers, when it ends, its limit. */
#include "testing.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stack.h"
#include "sim.h"
#include "transport/tcp/tcp.h"

#define MS TERN_NS_PER_MS
#define SEC TERN_NS_PER_SEC

struct pair {
    int listener, server, client;
};

static bool accepted(struct sim *sim, void *arg)
{
    struct pair *c = arg;
    c->server = tern_accept(sim->st[1], c->listener, NULL, NULL);
    return c->server >= 0;
}

static void listen_on(struct sim *sim, struct pair *c)
{
    c->listener = tern_socket(sim->st[1], AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sim_sin(1, 4242);
    assert_int_equal(tern_bind(sim->st[1], c->listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(sim->st[1], c->listener, 16), 0);
}

/* Client on stack 0 (from `lport`, 0 = ephemeral) to the listener. */
static void connect_pair(struct sim *sim, struct pair *c, uint16_t lport, bool reuseaddr)
{
    c->server = -1;
    c->client = tern_socket(sim->st[0], AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (reuseaddr)
        assert_int_equal(tern_setsockopt(sim->st[0], c->client, SOL_SOCKET, SO_REUSEADDR, &one,
                                         sizeof(one)),
                         0);
    if (lport) {
        struct sockaddr_in b = sim_sin(0, lport);
        assert_int_equal(tern_bind(sim->st[0], c->client, (struct sockaddr *)&b, sizeof(b)), 0);
    }
    struct sockaddr_in a = sim_sin(1, 4242);
    assert_int_equal(tern_connect(sim->st[0], c->client, (struct sockaddr *)&a, sizeof(a)), -1);
    assert_int_equal(errno, EINPROGRESS);
    assert_true(sim_run_until(sim, accepted, c, 5 * SEC));
}

/* The client closes first, then the server: the client ends in TIME_WAIT. */
static void close_client_first(struct sim *sim, struct pair *c)
{
    assert_int_equal(tern_close(sim->st[0], c->client), 0);
    sim_run(sim, 10 * MS);
    assert_int_equal(tern_close(sim->st[1], c->server), 0);
    sim_run(sim, 10 * MS);
}

static struct tern_tcp_tw *only_record(struct sim *sim)
{
    struct tern_stack *s = sim->st[0];
    assert_int_equal(s->tcp_timewait_count, 1);
    return tern_container_of(s->tcp_tw.next, struct tern_tcp_tw, node);
}

/* A segment from stack 1's address and port 4242 to the record's port,
 * crafted on the raw port. */
static void inject_as_server(struct sim *sim, uint16_t dport, uint32_t seq, uint32_t ack,
                             uint8_t flags)
{
    struct tern_tcp_hdr h = {.sport = 4242, .dport = dport, .seq = seq, .ack = ack,
                             .flags = flags, .wnd = 65535, .hlen = TERN_TCP_HLEN};
    uint8_t seg[TERN_TCP_HLEN], frame[128];
    tern_tcp_emit(seg, sizeof(seg), ntohl(sim_addr(1).s_addr), ntohl(sim_addr(0).s_addr), &h);
    size_t fl = sim_raw_ipv4(sim, 0, frame, 6, 1, 0, false, seg, sizeof(seg));
    struct in_addr server_ip = sim_addr(1);
    memcpy(frame + 14 + 12, &server_ip.s_addr, 4);
    sim_ip_fix_checksum(frame + 14);
    sim_raw_send(sim, frame, fl);
}

/* The next TCP segment stack 0 put on the wire, parsed; false if none. */
static bool next_from_client(struct sim *sim, struct tern_tcp_hdr *h)
{
    uint8_t f[2048];
    size_t n;
    while ((n = sim_raw_recv(sim, 6, f, sizeof(f))) > 0) {
        struct in_addr src;
        memcpy(&src.s_addr, f + 26, 4);
        if (src.s_addr != sim_addr(0).s_addr)
            continue;
        size_t ihl = (size_t)(f[14] & 0xf) * 4;
        assert_int_equal(tern_tcp_parse(f + 14 + ihl, n - 14 - ihl, ntohl(sim_addr(0).s_addr),
                                        ntohl(sim_addr(1).s_addr), true, h),
                         TERN_TCP_OK);
        return true;
    }
    return false;
}

static void drain_raw(struct sim *sim)
{
    uint8_t f[2048];
    while (sim_raw_recv(sim, -1, f, sizeof(f)) > 0) {
    }
}

static void test_time_wait_is_a_record_not_a_socket(void **state)
{
    (void)state;
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.tcp_timewait_ns = 10 * SEC;
    struct sim_opts o = {.cfg = &cfg};
    struct sim sim;
    sim_init(&sim, 2, &o);
    sim_raw_arp_hello(&sim, 0);
    struct pair c;
    listen_on(&sim, &c);
    connect_pair(&sim, &c, 0, false);
    struct sockaddr_in me;
    socklen_t ml = sizeof(me);
    assert_int_equal(tern_getsockname(sim.st[0], c.client, (struct sockaddr *)&me, &ml), 0);
    uint16_t cport = ntohs(me.sin_port);
    close_client_first(&sim, &c);

    /* No socket is left on the client's stack; one record is. */
    struct tern_live live;
    tern_stack_live(sim.st[0], &live);
    assert_int_equal(live.sockets, 0);
    assert_int_equal(live.tcp_timewait, 1);
    assert_int_equal(sim_counter(&sim, 0, "tcp.time_wait"), 1);
    struct tern_tcp_tw *tw = only_record(&sim);
    assert_int_equal(tw->pcb.lport, cport);
    assert_true(sizeof(*tw) <= 192); /* compact: a record, not a connection */
    char *dump = NULL;
    size_t dl = 0;
    FILE *f = open_memstream(&dump, &dl);
    tern_sockets_dump(sim.st[0], f);
    fclose(f);
    assert_non_null(strstr(dump, "TIME_WAIT"));
    free(dump);

    /* RFC 1337: a reset, even exactly in sequence, is ignored. */
    drain_raw(&sim);
    inject_as_server(&sim, cport, tw->rcv_nxt, tw->snd_nxt, TERN_TCP_RST | TERN_TCP_ACK);
    sim_run(&sim, MS);
    assert_int_equal(sim_counter(&sim, 0, "drop.tcp.time_wait_rst"), 1);
    assert_int_equal(sim.st[0]->tcp_timewait_count, 1);
    struct tern_tcp_hdr h;
    assert_false(next_from_client(&sim, &h)); /* and not answered */

    /* 8 s in, the server's FIN again: acknowledged, and the wait starts
     * over (RFC 9293 3.10.7.4, TIME-WAIT). */
    sim_run(&sim, 8 * SEC);
    drain_raw(&sim);
    inject_as_server(&sim, cport, tw->rcv_nxt - 1, tw->snd_nxt, TERN_TCP_FIN | TERN_TCP_ACK);
    sim_run(&sim, MS);
    assert_true(next_from_client(&sim, &h));
    assert_int_equal(h.flags, TERN_TCP_ACK);
    assert_int_equal(h.ack, tw->rcv_nxt);
    assert_int_equal(h.seq, tw->snd_nxt);
    sim_run(&sim, 8 * SEC); /* 16 s after the close: alive thanks to the restart */
    assert_int_equal(sim.st[0]->tcp_timewait_count, 1);
    /* An old SYN (not past the old sequence space) gets a challenge ACK. */
    drain_raw(&sim);
    inject_as_server(&sim, cport, tw->rcv_nxt - 10, 0, TERN_TCP_SYN);
    sim_run(&sim, MS);
    assert_true(next_from_client(&sim, &h));
    assert_int_equal(h.flags, TERN_TCP_ACK);
    assert_int_equal(h.ack, tw->rcv_nxt);
    sim_run(&sim, 3 * SEC); /* 10 s after the restart: gone */
    tern_stack_live(sim.st[0], &live);
    assert_int_equal(live.tcp_timewait, 0);
    assert_int_equal(live.sockets, 0);
    /* Now the 4-tuple is free: a segment for it gets a reset. */
    drain_raw(&sim);
    inject_as_server(&sim, cport, 12345, 0, TERN_TCP_ACK);
    sim_run(&sim, MS);
    assert_true(next_from_client(&sim, &h));
    assert_true(h.flags & TERN_TCP_RST);
    tern_close(sim.st[1], c.listener);
    sim_finish(&sim);
}

/* RFC 6191 / RFC 9293 3.10.7.4 note: a SYN past the old sequence space
 * ends the wait, if a listener takes it; without one, the record answers
 * with an ACK and stays (a blind SYN must not end TIME_WAIT: RFC 1337). */
static void test_a_new_syn_ends_the_wait_only_for_a_listener(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    sim_raw_arp_hello(&sim, 0);
    struct pair c;
    listen_on(&sim, &c);
    connect_pair(&sim, &c, 5000, true);
    close_client_first(&sim, &c);
    struct tern_tcp_tw *tw = only_record(&sim);
    uint32_t old_snd_nxt = tw->snd_nxt, rcv_nxt = tw->rcv_nxt;
    drain_raw(&sim);
    inject_as_server(&sim, 5000, rcv_nxt + 100000, 0, TERN_TCP_SYN);
    sim_run(&sim, MS);
    assert_int_equal(sim.st[0]->tcp_timewait_count, 1);
    struct tern_tcp_hdr h;
    assert_true(next_from_client(&sim, &h));
    assert_int_equal(h.flags, TERN_TCP_ACK);
    assert_int_equal(h.ack, rcv_nxt);

    /* A server on the same port (SO_REUSEADDR shares it with the
     * record, as on Linux): now the SYN reopens the 4-tuple, from an ISS
     * above everything the old connection used (RFC 1122 4.2.2.13). */
    int l = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
    int one = 1;
    assert_int_equal(tern_setsockopt(sim.st[0], l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    struct sockaddr_in b = sim_sin(0, 5000);
    assert_int_equal(tern_bind(sim.st[0], l, (struct sockaddr *)&b, sizeof(b)), 0);
    assert_int_equal(tern_listen(sim.st[0], l, 4), 0);
    drain_raw(&sim);
    inject_as_server(&sim, 5000, rcv_nxt + 100000, 0, TERN_TCP_SYN);
    sim_run(&sim, MS);
    assert_int_equal(sim_counter(&sim, 0, "tcp.time_wait_reused"), 1);
    assert_int_equal(sim.st[0]->tcp_timewait_count, 0);
    assert_true(next_from_client(&sim, &h));
    assert_int_equal(h.flags, TERN_TCP_SYN | TERN_TCP_ACK);
    assert_int_equal(h.ack, rcv_nxt + 100001);
    assert_int_equal(h.seq, old_snd_nxt + 65537u);
    tern_close(sim.st[0], l); /* resets the half-open one */
    tern_close(sim.st[1], c.listener);
    sim_finish(&sim);
}

/* The record keeps the port: a bind meets it as it would the socket. */
static void test_bind_meets_the_record(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct pair c;
    listen_on(&sim, &c);
    connect_pair(&sim, &c, 5000, true);
    close_client_first(&sim, &c);
    assert_int_equal(sim.st[0]->tcp_timewait_count, 1);
    struct sockaddr_in b = sim_sin(0, 5000);
    int fd = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
    errno = 0;
    assert_int_equal(tern_bind(sim.st[0], fd, (struct sockaddr *)&b, sizeof(b)), -1);
    assert_int_equal(errno, EADDRINUSE);
    int one = 1;
    assert_int_equal(tern_setsockopt(sim.st[0], fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    assert_int_equal(tern_bind(sim.st[0], fd, (struct sockaddr *)&b, sizeof(b)), 0);
    /* ... but the 4-tuple itself stays taken. */
    struct sockaddr_in a = sim_sin(1, 4242);
    errno = 0;
    assert_int_equal(tern_connect(sim.st[0], fd, (struct sockaddr *)&a, sizeof(a)), -1);
    assert_int_equal(errno, EADDRNOTAVAIL);
    tern_close(sim.st[0], fd);
    tern_close(sim.st[1], c.listener);
    sim_finish(&sim);
}

/* Past tcp_timewait_max, connections close without TIME_WAIT, counted. */
static void test_the_number_of_records_is_bounded(void **state)
{
    (void)state;
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.tcp_timewait_max = 2;
    struct sim_opts o = {.cfg = &cfg};
    struct sim sim;
    sim_init(&sim, 2, &o);
    struct pair c;
    listen_on(&sim, &c);
    for (int i = 0; i < 3; i++) {
        connect_pair(&sim, &c, 0, false);
        close_client_first(&sim, &c);
    }
    struct tern_live live;
    tern_stack_live(sim.st[0], &live);
    assert_int_equal(live.tcp_timewait, 2);
    assert_int_equal(live.sockets, 0);
    assert_int_equal(sim_counter(&sim, 0, "drop.tcp.time_wait_overflow"), 1);
    tern_close(sim.st[1], c.listener);
    sim_finish(&sim);
}

/* The connection table grows (doubling its buckets past two records a
 * bucket, from 256) without hashing anything again: every record is
 * still found by its own four-tuple afterwards. */
static void test_records_stay_found_as_the_table_grows(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct pair c;
    listen_on(&sim, &c);
    enum { N = 1200 }; /* two doublings: at 513 and 1025 connections */
    static uint16_t ports[N];
    struct tern_stack *s = sim.st[0];
    uint32_t buckets_before = s->tcp_pcbs.conn_mask + 1;
    for (int i = 0; i < N; i++) {
        connect_pair(&sim, &c, 0, false);
        struct sockaddr_in a;
        socklen_t al = sizeof(a);
        assert_int_equal(tern_getsockname(s, c.client, (struct sockaddr *)&a, &al), 0);
        ports[i] = ntohs(a.sin_port);
        close_client_first(&sim, &c);
    }
    assert_int_equal(s->tcp_timewait_count, N);
    assert_int_equal(s->tcp_pcbs.conn_mask + 1, 4 * buckets_before);
    uint32_t la = ntohl(sim_addr(0).s_addr), fa = ntohl(sim_addr(1).s_addr);
    for (int i = 0; i < N; i++) {
        struct tern_inpcb *pcb = tern_pcb_lookup_conn(s, &s->tcp_pcbs, la, ports[i], fa, 4242);
        assert_non_null(pcb);
        assert_int_equal(pcb->kind, TERN_PCB_TIMEWAIT);
    }
    tern_close(sim.st[1], c.listener);
    sim_finish(&sim);
}

/* A stack freed with records alive frees them (no leak, no timer). */
static void test_stack_teardown_frees_records(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct pair c;
    listen_on(&sim, &c);
    connect_pair(&sim, &c, 0, false);
    close_client_first(&sim, &c);
    assert_int_equal(sim.st[0]->tcp_timewait_count, 1);
    tern_close(sim.st[1], c.listener);
    /* sim_finish waits 120 s first; free stack 0 now instead. */
    tern_stack_free(sim.st[0]);
    sim.st[0] = tern_stack_new(NULL);
    assert_non_null(sim.st[0]);
    sim_finish(&sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_wait_is_a_record_not_a_socket),
        cmocka_unit_test(test_a_new_syn_ends_the_wait_only_for_a_listener),
        cmocka_unit_test(test_bind_meets_the_record),
        cmocka_unit_test(test_the_number_of_records_is_bounded),
        cmocka_unit_test(test_records_stay_found_as_the_table_grows),
        cmocka_unit_test(test_stack_teardown_frees_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
