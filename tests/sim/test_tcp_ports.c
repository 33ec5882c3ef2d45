/* Ephemeral ports for TCP connect(): RFC 6056 asks only that the
 * four-tuple be unique, and Linux shares a port among connections that
 * connect() gave it, each to another peer. A port someone bound, or a
 * four-tuple a connection or TIME_WAIT record holds, is never taken; a
 * datagram socket's automatic port is never shared. Running out says
 * what Linux says. IP_BIND_ADDRESS_NO_PORT lets a client choose its
 * source address and still leave the port to connect(). */
#include "testing.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "sim.h"

#define SEC TERN_NS_PER_SEC
#define LO 50000
#define PORTS 4

struct conn {
    int stack; /* the server's */
    int listener, client, server;
};

static bool accepted(struct sim *sim, void *arg)
{
    struct conn *c = arg;
    c->server = tern_accept(sim->st[c->stack], c->listener, NULL, NULL);
    return c->server >= 0;
}

static int listen_on(struct sim *sim, int stack)
{
    int l = tern_socket(sim->st[stack], AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sim_sin(stack, 80);
    assert_int_equal(tern_bind(sim->st[stack], l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(sim->st[stack], l, 16), 0);
    return l;
}

/* Connect from stack 0 to `stack`:80; 0 and the local port if the
 * handshake completed, else -1 with connect's errno. */
static int try_connect(struct sim *sim, struct conn *c, int stack, int listener, uint16_t *port)
{
    *c = (struct conn){.stack = stack, .listener = listener, .client = -1, .server = -1};
    c->client = tern_socket(sim->st[0], AF_INET, SOCK_STREAM, 0);
    assert_true(c->client >= 0);
    struct sockaddr_in a = sim_sin(stack, 80);
    errno = 0;
    assert_int_equal(tern_connect(sim->st[0], c->client, (struct sockaddr *)&a, sizeof(a)), -1);
    if (errno != EINPROGRESS) {
        int err = errno;
        tern_close(sim->st[0], c->client);
        c->client = -1;
        errno = err;
        return -1;
    }
    assert_true(sim_run_until(sim, accepted, c, 5 * SEC));
    struct sockaddr_in me;
    socklen_t ml = sizeof(me);
    assert_int_equal(tern_getsockname(sim->st[0], c->client, (struct sockaddr *)&me, &ml), 0);
    *port = ntohs(me.sin_port);
    return 0;
}

static void open_sim(struct sim *sim, int n, uint16_t lo, uint16_t hi)
{
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.ephemeral_lo = lo;
    cfg.ephemeral_hi = hi;
    struct sim_opts o = {.seed = 5, .cfg = &cfg};
    sim_init(sim, n, &o);
}

static uint64_t timewaits(struct sim *sim)
{
    struct tern_live live;
    tern_stack_live(sim->st[0], &live);
    return live.tcp_timewait;
}

static void close_conn(struct sim *sim, struct conn *c)
{
    assert_int_equal(tern_close(sim->st[0], c->client), 0);
    sim_run(sim, 10 * TERN_NS_PER_MS);
    assert_int_equal(tern_close(sim->st[c->stack], c->server), 0);
    sim_run(sim, 10 * TERN_NS_PER_MS);
}

static void test_connect_shares_a_port_among_peers(void **state)
{
    (void)state;
    struct sim sim;
    open_sim(&sim, 3, LO, LO + PORTS - 1);
    int l1 = listen_on(&sim, 1), l2 = listen_on(&sim, 2);
    struct conn to1[PORTS], to2[PORTS], extra;
    uint16_t p1[PORTS], p2[PORTS], p;
    for (int i = 0; i < PORTS; i++) {
        assert_int_equal(try_connect(&sim, &to1[i], 1, l1, &p1[i]), 0);
        assert_in_range(p1[i], LO, LO + PORTS - 1);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(p1[i], p1[j]);
    }
    /* Every port has a connection to stack 1: none left for it. */
    assert_int_equal(try_connect(&sim, &extra, 1, l1, &p), -1);
    assert_int_equal(errno, EADDRNOTAVAIL);
    /* To another peer the same ports serve again. */
    unsigned seen = 0;
    for (int i = 0; i < PORTS; i++) {
        assert_int_equal(try_connect(&sim, &to2[i], 2, l2, &p2[i]), 0);
        assert_in_range(p2[i], LO, LO + PORTS - 1);
        seen |= 1u << (p2[i] - LO);
    }
    assert_int_equal(seen, (1u << PORTS) - 1);
    assert_int_equal(try_connect(&sim, &extra, 2, l2, &p), -1);
    assert_int_equal(errno, EADDRNOTAVAIL);
    /* A port connect() shares is still not free for bind(). */
    int b = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in at = sim_sin(0, LO + 1);
    errno = 0;
    assert_int_equal(tern_bind(sim.st[0], b, (struct sockaddr *)&at, sizeof(at)), -1);
    assert_int_equal(errno, EADDRINUSE);
    assert_int_equal(tern_close(sim.st[0], b), 0);
    /* Both sets carry data on their shared ports, each to its peer. */
    for (int i = 0; i < PORTS; i++) {
        char m = (char)('a' + i), got = 0;
        assert_int_equal(tern_send(sim.st[0], to2[i].client, &m, 1, 0), 1);
        sim_run(&sim, 10 * TERN_NS_PER_MS);
        assert_int_equal(tern_recv(sim.st[2], to2[i].server, &got, 1, MSG_DONTWAIT), 1);
        assert_int_equal(got, m);
        assert_int_equal(tern_recv(sim.st[1], to1[i].server, &got, 1, MSG_DONTWAIT), -1);
    }
    /* The client closes first: TIME_WAIT records hold every four-tuple,
     * so stack 1 still gets no new connection from these ports. */
    for (int i = 0; i < PORTS; i++) {
        close_conn(&sim, &to1[i]);
        close_conn(&sim, &to2[i]);
    }
    assert_int_equal(timewaits(&sim), 2 * PORTS);
    assert_int_equal(try_connect(&sim, &extra, 1, l1, &p), -1);
    assert_int_equal(errno, EADDRNOTAVAIL);
    tern_close(sim.st[1], l1);
    tern_close(sim.st[2], l2);
    sim_finish(&sim);
}

static void test_bound_ports_and_datagram_ports_are_not_shared(void **state)
{
    (void)state;
    struct sim sim;
    open_sim(&sim, 3, LO, LO + 1);
    int l1 = listen_on(&sim, 1), l2 = listen_on(&sim, 2);
    /* LO is bound by hand, not connected: connect() never takes it. */
    int held = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in at = sim_sin(0, LO);
    assert_int_equal(tern_bind(sim.st[0], held, (struct sockaddr *)&at, sizeof(at)), 0);
    struct conn a, b, extra;
    uint16_t pa, pb, p;
    assert_int_equal(try_connect(&sim, &a, 1, l1, &pa), 0);
    assert_int_equal(pa, LO + 1);
    assert_int_equal(try_connect(&sim, &extra, 1, l1, &p), -1);
    assert_int_equal(errno, EADDRNOTAVAIL);
    assert_int_equal(try_connect(&sim, &b, 2, l2, &pb), 0);
    assert_int_equal(pb, LO + 1);
    close_conn(&sim, &a);
    close_conn(&sim, &b);
    assert_int_equal(tern_close(sim.st[0], held), 0);
    tern_close(sim.st[1], l1);
    tern_close(sim.st[2], l2);
    sim_run(&sim, 130 * SEC); /* the TIME_WAIT records end */
    assert_int_equal(timewaits(&sim), 0);

    /* UDP: an automatic port is one socket's, whatever the peer. */
    int u[3];
    for (int i = 0; i < 3; i++) {
        u[i] = tern_socket(sim.st[0], AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in to = sim_sin(1 + (i % 2), 53);
        errno = 0;
        int rc = tern_connect(sim.st[0], u[i], (struct sockaddr *)&to, sizeof(to));
        if (i < 2) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_int_equal(errno, EAGAIN);
        }
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(tern_close(sim.st[0], u[i]), 0);
    sim_finish(&sim);
}

/* A client with a second address, 192.0.2.50, binds to it before each
 * connect. */
static int bind_second_address(struct sim *sim, bool no_port)
{
    int fd = tern_socket(sim->st[0], AF_INET, SOCK_STREAM, 0);
    int v = no_port;
    assert_int_equal(tern_setsockopt(sim->st[0], fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &v,
                                     sizeof(v)), 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.0.2.50", &a.sin_addr);
    if (tern_bind(sim->st[0], fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int err = errno;
        tern_close(sim->st[0], fd);
        errno = err;
        return -1;
    }
    return fd;
}

static void test_bind_address_no_port_leaves_the_port_to_connect(void **state)
{
    (void)state;
    struct sim sim;
    open_sim(&sim, 3, LO, LO + 1);
    struct in_addr second;
    inet_pton(AF_INET, "192.0.2.50", &second);
    assert_int_equal(tern_if_addr_add(sim.st[0], sim.ifindex[0], second, 24), 0);
    int l1 = listen_on(&sim, 1), l2 = listen_on(&sim, 2);

    /* Without the option bind(addr, 0) takes a port of its own: two
     * sockets use up the two ports. */
    int plain[2];
    for (int i = 0; i < 2; i++)
        assert_true((plain[i] = bind_second_address(&sim, false)) >= 0);
    assert_int_equal(bind_second_address(&sim, false), -1);
    assert_int_equal(errno, EADDRINUSE);
    for (int i = 0; i < 2; i++)
        assert_int_equal(tern_close(sim.st[0], plain[i]), 0);

    /* A listener bound that way gets its port at listen(). */
    int lfd = bind_second_address(&sim, true);
    struct sockaddr_in lme;
    socklen_t lml = sizeof(lme);
    assert_int_equal(tern_listen(sim.st[0], lfd, 4), 0);
    assert_int_equal(tern_getsockname(sim.st[0], lfd, (struct sockaddr *)&lme, &lml), 0);
    assert_int_equal(lme.sin_addr.s_addr, second.s_addr);
    assert_in_range(ntohs(lme.sin_port), LO, LO + 1);
    assert_int_equal(tern_close(sim.st[0], lfd), 0);

    /* So does a datagram socket at its first send. */
    int u = tern_socket(sim.st[0], AF_INET, SOCK_DGRAM, 0);
    int one = 1;
    assert_int_equal(tern_setsockopt(sim.st[0], u, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                                     sizeof(one)), 0);
    struct sockaddr_in ua = {.sin_family = AF_INET, .sin_addr = second};
    assert_int_equal(tern_bind(sim.st[0], u, (struct sockaddr *)&ua, sizeof(ua)), 0);
    struct sockaddr_in dns = sim_sin(1, 53);
    assert_int_equal(tern_sendto(sim.st[0], u, "x", 1, 0, (struct sockaddr *)&dns, sizeof(dns)),
                     1);
    lml = sizeof(lme);
    assert_int_equal(tern_getsockname(sim.st[0], u, (struct sockaddr *)&lme, &lml), 0);
    assert_int_equal(lme.sin_addr.s_addr, second.s_addr);
    assert_in_range(ntohs(lme.sin_port), LO, LO + 1);
    assert_int_equal(tern_close(sim.st[0], u), 0);
    sim_run(&sim, 10 * TERN_NS_PER_MS);

    /* With it, the address is kept and the port waits: two connections to
     * each of two peers from 192.0.2.50, on the same two ports. */
    struct conn c[4];
    for (int i = 0; i < 4; i++) {
        int peer = 1 + i / 2;
        int fd = bind_second_address(&sim, true);
        assert_true(fd >= 0);
        int v = -1;
        socklen_t vl = sizeof(v);
        assert_int_equal(tern_getsockopt(sim.st[0], fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &v,
                                         &vl), 0);
        assert_int_equal(v, 1);
        struct sockaddr_in me;
        socklen_t ml = sizeof(me);
        assert_int_equal(tern_getsockname(sim.st[0], fd, (struct sockaddr *)&me, &ml), 0);
        assert_int_equal(me.sin_addr.s_addr, second.s_addr);
        assert_int_equal(me.sin_port, 0);
        /* Bound already: a second bind is refused, as POSIX says. */
        struct sockaddr_in again = me;
        errno = 0;
        assert_int_equal(tern_bind(sim.st[0], fd, (struct sockaddr *)&again, sizeof(again)), -1);
        assert_int_equal(errno, EINVAL);
        c[i] = (struct conn){.stack = peer, .listener = peer == 1 ? l1 : l2, .client = fd,
                             .server = -1};
        struct sockaddr_in to = sim_sin(peer, 80);
        errno = 0;
        assert_int_equal(tern_connect(sim.st[0], fd, (struct sockaddr *)&to, sizeof(to)), -1);
        assert_int_equal(errno, EINPROGRESS);
        assert_true(sim_run_until(&sim, accepted, &c[i], 5 * SEC));
        ml = sizeof(me);
        assert_int_equal(tern_getsockname(sim.st[0], fd, (struct sockaddr *)&me, &ml), 0);
        assert_int_equal(me.sin_addr.s_addr, second.s_addr);
        assert_in_range(ntohs(me.sin_port), LO, LO + 1);
        /* The server sees the connection come from the chosen address. */
        struct sockaddr_in peer_addr;
        socklen_t pl = sizeof(peer_addr);
        assert_int_equal(tern_getpeername(sim.st[peer], c[i].server,
                                          (struct sockaddr *)&peer_addr, &pl), 0);
        assert_int_equal(peer_addr.sin_addr.s_addr, second.s_addr);
    }
    for (int i = 0; i < 4; i++)
        close_conn(&sim, &c[i]);
    tern_close(sim.st[1], l1);
    tern_close(sim.st[2], l2);
    sim_finish(&sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_shares_a_port_among_peers),
        cmocka_unit_test(test_bound_ports_and_datagram_ports_are_not_shared),
        cmocka_unit_test(test_bind_address_no_port_leaves_the_port_to_connect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
