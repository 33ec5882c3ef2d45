/* The socket layer on one stack: handles and their generations, the
 * lifecycle invariants, and the errno of every misuse (as Linux). */
#include "testing.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include <tern/tern.h>

#include "core/stack.h"
#include "sock/socket.h"

struct fixture {
    struct tern_wire *wire;
    struct tern_link *link;
    struct tern_stack *s;
    int ifindex;
};

static struct sockaddr_in sin_of(const char *ip, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static void fixture_up(struct fixture *f, uint32_t max_sockets)
{
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    if (max_sockets)
        cfg.max_sockets = max_sockets;
    f->wire = tern_wire_new(NULL);
    f->link = tern_wire_port_new(f->wire);
    f->s = tern_stack_new(&cfg);
    assert_non_null(f->s);
    f->ifindex = tern_if_add(f->s, f->link, NULL);
    assert_true(f->ifindex > 0);
    struct sockaddr_in a = sin_of("192.0.2.1", 0), b = sin_of("192.0.2.9", 0);
    assert_int_equal(tern_if_addr_add(f->s, f->ifindex, a.sin_addr, 24), 0);
    assert_int_equal(tern_if_addr_add(f->s, f->ifindex, b.sin_addr, 24), 0);
}

static void fixture_down(struct fixture *f)
{
    struct tern_live live;
    tern_stack_live(f->s, &live);
    assert_int_equal(live.sockets, 0);
    tern_stack_free(f->s);
    tern_link_free(f->link);
    tern_wire_free(f->wire);
}

#define EXPECT_ERR(call, err)                                                  \
    do {                                                                       \
        errno = 0;                                                             \
        assert_int_equal((call), -1);                                          \
        assert_int_equal(errno, (err));                                        \
    } while (0)

static int udp(struct fixture *f)
{
    int fd = tern_socket(f->s, AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    return fd;
}

static int bind_to(struct fixture *f, int fd, const char *ip, uint16_t port)
{
    struct sockaddr_in a = sin_of(ip, port);
    return tern_bind(f->s, fd, (struct sockaddr *)&a, sizeof(a));
}

static void set_int(struct fixture *f, int fd, int level, int name, int v)
{
    assert_int_equal(tern_setsockopt(f->s, fd, level, name, &v, sizeof(v)), 0);
}

static void test_socket_arguments(void **state)
{
    (void)state;
    struct fixture f;
    fixture_up(&f, 0);
    EXPECT_ERR(tern_socket(f.s, AF_INET6, SOCK_DGRAM, 0), EAFNOSUPPORT);
    EXPECT_ERR(tern_socket(f.s, AF_INET, SOCK_STREAM, IPPROTO_UDP), EPROTONOSUPPORT);
    int tcp = tern_socket(f.s, AF_INET, SOCK_STREAM, 0);
    assert_true(tcp >= 0);
    assert_int_equal(tern_close(f.s, tcp), 0);
    EXPECT_ERR(tern_socket(f.s, AF_INET, SOCK_DGRAM, IPPROTO_TCP), EPROTONOSUPPORT);
    EXPECT_ERR(tern_socket(f.s, AF_INET, SOCK_RAW, 0), ESOCKTNOSUPPORT);
    int fd = tern_socket(f.s, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, IPPROTO_UDP);
    assert_true(fd >= (1 << 21)); /* never mistaken for a kernel descriptor */
    assert_int_equal(tern_fcntl(f.s, fd, F_GETFL, 0) & O_NONBLOCK, O_NONBLOCK);
    assert_int_equal(tern_fcntl(f.s, fd, F_SETFL, 0), 0);
    assert_int_equal(tern_fcntl(f.s, fd, F_GETFL, 0) & O_NONBLOCK, 0);
    EXPECT_ERR(tern_fcntl(f.s, fd, F_DUPFD, 0), EINVAL);
    int v = 0;
    socklen_t vl = sizeof(v);
    assert_int_equal(tern_getsockopt(f.s, fd, SOL_SOCKET, SO_TYPE, &v, &vl), 0);
    assert_int_equal(v, SOCK_DGRAM);
    assert_int_equal(tern_getsockopt(f.s, fd, SOL_SOCKET, SO_PROTOCOL, &v, &vl), 0);
    assert_int_equal(v, IPPROTO_UDP);
    assert_int_equal(tern_close(f.s, fd), 0);
    fixture_down(&f);
}

static void test_stale_handles_give_ebadf(void **state)
{
    (void)state;
    struct fixture f;
    fixture_up(&f, 1); /* one slot: the next socket reuses it */
    int a = udp(&f);
    assert_int_equal(tern_close(f.s, a), 0);
    int b = udp(&f);
    assert_int_not_equal(a, b); /* same slot, new generation */
    char buf[4];
    struct sockaddr_in to = sin_of("192.0.2.2", 9);
    EXPECT_ERR(tern_close(f.s, a), EBADF);
    EXPECT_ERR(bind_to(&f, a, "0.0.0.0", 0), EBADF);
    EXPECT_ERR(tern_sendto(f.s, a, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)), EBADF);
    EXPECT_ERR(tern_recv(f.s, a, buf, sizeof(buf), 0), EBADF);
    EXPECT_ERR(tern_close(f.s, -1), EBADF);
    EXPECT_ERR(tern_close(f.s, 0), EBADF);
    EXPECT_ERR(tern_close(f.s, 12345), EBADF);
    EXPECT_ERR(tern_socket(f.s, AF_INET, SOCK_DGRAM, 0), EMFILE);
    struct pollfd pfd[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLOUT}};
    assert_int_equal(tern_poll(f.s, pfd, 2, 0), 2);
    assert_int_equal(pfd[0].revents, POLLNVAL);
    assert_int_equal(pfd[1].revents, POLLOUT);
    /* The new socket still works: the stale handle touched nothing. */
    assert_int_equal(bind_to(&f, b, "0.0.0.0", 4000), 0);
    assert_int_equal(tern_close(f.s, b), 0);
    EXPECT_ERR(tern_close(f.s, b), EBADF);
    fixture_down(&f);
}

static void test_bind_conflicts_follow_linux(void **state)
{
    (void)state;
    struct fixture f;
    fixture_up(&f, 0);
    int a = udp(&f), b = udp(&f), c = udp(&f), d = udp(&f);
    struct sockaddr_in short_addr = sin_of("192.0.2.1", 1);
    EXPECT_ERR(tern_bind(f.s, a, (struct sockaddr *)&short_addr, sizeof(short_addr) - 1), EINVAL);
    struct sockaddr_in6 six = {.sin6_family = AF_INET6};
    EXPECT_ERR(tern_bind(f.s, a, (struct sockaddr *)&six, sizeof(six)), EAFNOSUPPORT);
    EXPECT_ERR(bind_to(&f, a, "198.51.100.1", 5000), EADDRNOTAVAIL);
    /* Wildcard then specific overlap: in use without reuse flags. */
    assert_int_equal(bind_to(&f, a, "0.0.0.0", 5000), 0);
    EXPECT_ERR(bind_to(&f, a, "0.0.0.0", 5001), EINVAL); /* already bound */
    EXPECT_ERR(bind_to(&f, b, "192.0.2.1", 5000), EADDRINUSE);
    /* Disjoint specific addresses never conflict. */
    assert_int_equal(bind_to(&f, b, "192.0.2.1", 6000), 0);
    assert_int_equal(bind_to(&f, c, "192.0.2.9", 6000), 0);
    assert_int_equal(tern_close(f.s, a), 0);
    assert_int_equal(tern_close(f.s, b), 0);
    assert_int_equal(tern_close(f.s, c), 0);
    /* SO_REUSEADDR on both: shared. On one only: refused. */
    a = udp(&f);
    b = udp(&f);
    c = udp(&f);
    set_int(&f, a, SOL_SOCKET, SO_REUSEADDR, 1);
    set_int(&f, b, SOL_SOCKET, SO_REUSEADDR, 1);
    assert_int_equal(bind_to(&f, a, "0.0.0.0", 7000), 0);
    assert_int_equal(bind_to(&f, b, "192.0.2.1", 7000), 0);
    EXPECT_ERR(bind_to(&f, c, "192.0.2.1", 7000), EADDRINUSE);
    /* SO_REUSEPORT on both: shared; on one only: refused. */
    set_int(&f, c, SOL_SOCKET, SO_REUSEPORT, 1);
    set_int(&f, d, SOL_SOCKET, SO_REUSEPORT, 1);
    assert_int_equal(bind_to(&f, c, "192.0.2.1", 8000), 0);
    assert_int_equal(bind_to(&f, d, "192.0.2.1", 8000), 0);
    int e = udp(&f);
    EXPECT_ERR(bind_to(&f, e, "192.0.2.1", 8000), EADDRINUSE);
    /* A port freed by close is free again at once (UDP has no TIME_WAIT). */
    assert_int_equal(tern_close(f.s, c), 0);
    assert_int_equal(tern_close(f.s, d), 0);
    assert_int_equal(bind_to(&f, e, "192.0.2.1", 8000), 0);
    int sockets[] = {a, b, e};
    for (size_t i = 0; i < sizeof(sockets) / sizeof(sockets[0]); i++)
        assert_int_equal(tern_close(f.s, sockets[i]), 0);
    fixture_down(&f);
}

static void test_ephemeral_ports_are_in_range_and_distinct(void **state)
{
    (void)state;
    struct fixture f;
    fixture_up(&f, 0);
    enum { N = 300 };
    int fds[N];
    uint16_t ports[N];
    for (int i = 0; i < N; i++) {
        fds[i] = udp(&f);
        assert_int_equal(bind_to(&f, fds[i], "0.0.0.0", 0), 0);
        struct sockaddr_in a;
        socklen_t al = sizeof(a);
        assert_int_equal(tern_getsockname(f.s, fds[i], (struct sockaddr *)&a, &al), 0);
        ports[i] = ntohs(a.sin_port);
        assert_in_range(ports[i], 49152, 65535);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(ports[i], ports[j]);
    }
    /* Not simply sequential (RFC 6056: hard to guess). */
    int sequential = 0;
    for (int i = 1; i < N; i++)
        sequential += ports[i] == ports[i - 1] + 1;
    assert_true(sequential < N / 2);
    for (int i = 0; i < N; i++)
        assert_int_equal(tern_close(f.s, fds[i]), 0);
    fixture_down(&f);
}

/* Thousands of bound ports grow the port indexes several times; every
 * port stays held (a second bind fails) and reachable, a freed one is
 * free again, and automatic ports never land on a held one. */
static void test_port_indexes_grow_and_still_find_every_port(void **state)
{
    (void)state;
    enum { N = 10000, BASE = 49152 }; /* the ephemeral range's start */
    struct fixture f;
    fixture_up(&f, N + 600);
    int *fds = calloc(N, sizeof(*fds));
    assert_non_null(fds);
    for (int i = 0; i < N; i++) {
        fds[i] = udp(&f);
        assert_int_equal(bind_to(&f, fds[i], "0.0.0.0", (uint16_t)(BASE + i)), 0);
    }
    int other = udp(&f);
    for (int i = 0; i < N; i += 7)
        EXPECT_ERR(bind_to(&f, other, "192.0.2.1", (uint16_t)(BASE + i)), EADDRINUSE);
    /* Unconnected, they sit in the listen index, grown as well: a
     * datagram to each of a sample reaches that socket and no other. */
    for (int i = 3; i < N; i += 997) {
        struct sockaddr_in to = sin_of("192.0.2.1", (uint16_t)(BASE + i));
        assert_int_equal(tern_sendto(f.s, other, &i, sizeof(i), 0, (struct sockaddr *)&to,
                                     sizeof(to)), sizeof(i));
        tern_stack_poll(f.s, 1);
        int got = -1;
        assert_int_equal(tern_recv(f.s, fds[i], &got, sizeof(got), MSG_DONTWAIT), sizeof(got));
        assert_int_equal(got, i);
        EXPECT_ERR(tern_recv(f.s, fds[i - 1], &got, sizeof(got), MSG_DONTWAIT), EAGAIN);
    }
    for (int i = 0; i < N; i += 2)
        assert_int_equal(tern_close(f.s, fds[i]), 0);
    int again = udp(&f); /* `other` has a port now: sending bound it */
    assert_int_equal(bind_to(&f, again, "192.0.2.1", BASE + 2), 0);
    int late = udp(&f);
    EXPECT_ERR(bind_to(&f, late, "0.0.0.0", BASE + 3), EADDRINUSE);
    /* Automatic ports with thousands held around them. */
    int autos[500];
    for (int i = 0; i < 500; i++) {
        autos[i] = udp(&f);
        assert_int_equal(bind_to(&f, autos[i], "0.0.0.0", 0), 0);
        struct sockaddr_in a;
        socklen_t al = sizeof(a);
        assert_int_equal(tern_getsockname(f.s, autos[i], (struct sockaddr *)&a, &al), 0);
        uint16_t port = ntohs(a.sin_port);
        if (port >= BASE && port < BASE + N)
            assert_true((port - BASE) % 2 == 0);
    }
    for (int i = 1; i < N; i += 2)
        assert_int_equal(tern_close(f.s, fds[i]), 0);
    for (int i = 0; i < 500; i++)
        assert_int_equal(tern_close(f.s, autos[i]), 0);
    assert_int_equal(tern_close(f.s, other), 0);
    assert_int_equal(tern_close(f.s, late), 0);
    assert_int_equal(tern_close(f.s, again), 0);
    free(fds);
    fixture_down(&f);
}

static void test_names_and_options(void **state)
{
    (void)state;
    struct fixture f;
    fixture_up(&f, 0);
    int a = udp(&f);
    struct sockaddr_in name;
    socklen_t nl = sizeof(name);
    assert_int_equal(tern_getsockname(f.s, a, (struct sockaddr *)&name, &nl), 0);
    assert_int_equal(name.sin_port, 0); /* unbound */
    EXPECT_ERR(tern_getpeername(f.s, a, (struct sockaddr *)&name, &nl), ENOTCONN);
    struct sockaddr_in peer = sin_of("192.0.2.2", 53);
    assert_int_equal(tern_connect(f.s, a, (struct sockaddr *)&peer, sizeof(peer)), 0);
    nl = sizeof(name);
    assert_int_equal(tern_getpeername(f.s, a, (struct sockaddr *)&name, &nl), 0);
    assert_int_equal(nl, sizeof(name));
    assert_int_equal(ntohs(name.sin_port), 53);
    /* connect chose the source address and an ephemeral port. */
    nl = sizeof(name);
    assert_int_equal(tern_getsockname(f.s, a, (struct sockaddr *)&name, &nl), 0);
    assert_int_equal(ntohl(name.sin_addr.s_addr), 0xc0000201);
    assert_in_range(ntohs(name.sin_port), 49152, 65535);
    /* A short buffer is truncated, the full length reported. */
    char tiny[4];
    socklen_t tl = sizeof(tiny);
    assert_int_equal(tern_getsockname(f.s, a, (struct sockaddr *)tiny, &tl), 0);
    assert_int_equal(tl, sizeof(struct sockaddr_in));
    /* Disconnect (AF_UNSPEC) forgets the implicit address and port. */
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    assert_int_equal(tern_connect(f.s, a, &unspec, sizeof(unspec)), 0);
    EXPECT_ERR(tern_getpeername(f.s, a, (struct sockaddr *)&name, &nl), ENOTCONN);
    nl = sizeof(name);
    assert_int_equal(tern_getsockname(f.s, a, (struct sockaddr *)&name, &nl), 0);
    assert_int_equal(name.sin_port, 0);
    assert_int_equal(name.sin_addr.s_addr, 0);
    /* Buffer sizes are doubled and clamped as on Linux. */
    int v;
    socklen_t vl = sizeof(v);
    set_int(&f, a, SOL_SOCKET, SO_RCVBUF, 10000);
    assert_int_equal(tern_getsockopt(f.s, a, SOL_SOCKET, SO_RCVBUF, &v, &vl), 0);
    assert_int_equal(v, 20000);
    set_int(&f, a, SOL_SOCKET, SO_RCVBUF, 1);
    assert_int_equal(tern_getsockopt(f.s, a, SOL_SOCKET, SO_RCVBUF, &v, &vl), 0);
    assert_int_equal(v, 2304);
    set_int(&f, a, SOL_SOCKET, SO_RCVBUF, -1); /* unsigned to Linux: the maximum */
    assert_int_equal(tern_getsockopt(f.s, a, SOL_SOCKET, SO_RCVBUF, &v, &vl), 0);
    assert_int_equal(v, 2 * 212992);
    set_int(&f, a, SOL_SOCKET, SO_SNDBUF, 1 << 30);
    assert_int_equal(tern_getsockopt(f.s, a, SOL_SOCKET, SO_SNDBUF, &v, &vl), 0);
    assert_int_equal(v, 2 * 212992);
    set_int(&f, a, IPPROTO_IP, IP_TTL, 7);
    assert_int_equal(tern_getsockopt(f.s, a, IPPROTO_IP, IP_TTL, &v, &vl), 0);
    assert_int_equal(v, 7);
    v = 0;
    EXPECT_ERR(tern_setsockopt(f.s, a, IPPROTO_IP, IP_TTL, &v, sizeof(v)), EINVAL);
    EXPECT_ERR(tern_setsockopt(f.s, a, SOL_SOCKET, SO_RCVBUF, &v, 2), EINVAL);
    EXPECT_ERR(tern_setsockopt(f.s, a, SOL_SOCKET, SO_TYPE, &v, sizeof(v)), ENOPROTOOPT);
    EXPECT_ERR(tern_setsockopt(f.s, a, IPPROTO_TCP, 1, &v, sizeof(v)), ENOPROTOOPT);
    /* SO_LINGER reads on any socket, as on Linux: off on a datagram one. */
    struct linger lg = {.l_onoff = 9, .l_linger = 9};
    socklen_t ll = sizeof(lg);
    assert_int_equal(tern_getsockopt(f.s, a, SOL_SOCKET, SO_LINGER, &lg, &ll), 0);
    assert_int_equal(ll, sizeof(lg));
    assert_int_equal(lg.l_onoff, 0);
    assert_int_equal(lg.l_linger, 0);
    assert_int_equal(tern_close(f.s, a), 0);
    fixture_down(&f);
}

static void test_send_errors(void **state)
{
    (void)state;
    struct fixture f;
    fixture_up(&f, 0);
    int a = udp(&f);
    static char big[65508];
    struct sockaddr_in to = sin_of("192.0.2.2", 9), port0 = sin_of("192.0.2.2", 0);
    struct sockaddr_in far = sin_of("203.0.113.1", 9), bcast = sin_of("255.255.255.255", 9);
    struct sockaddr_in subnet_bcast = sin_of("192.0.2.255", 9);
    EXPECT_ERR(tern_send(f.s, a, "x", 1, 0), EDESTADDRREQ);
    EXPECT_ERR(tern_sendto(f.s, a, "x", 1, 0, (struct sockaddr *)&port0, sizeof(port0)), EINVAL);
    EXPECT_ERR(tern_sendto(f.s, a, big, sizeof(big), 0, (struct sockaddr *)&to, sizeof(to)),
               EMSGSIZE);
    EXPECT_ERR(tern_sendto(f.s, a, "x", 1, 0, (struct sockaddr *)&far, sizeof(far)), ENETUNREACH);
    EXPECT_ERR(tern_sendto(f.s, a, "x", 1, 0, (struct sockaddr *)&bcast, sizeof(bcast)), EACCES);
    EXPECT_ERR(tern_sendto(f.s, a, "x", 1, 0, (struct sockaddr *)&subnet_bcast,
                           sizeof(subnet_bcast)), EACCES);
    EXPECT_ERR(tern_sendto(f.s, a, "x", 1, MSG_OOB, (struct sockaddr *)&to, sizeof(to)),
               EOPNOTSUPP);
    set_int(&f, a, SOL_SOCKET, SO_BROADCAST, 1);
    assert_int_equal(tern_sendto(f.s, a, "x", 1, 0, (struct sockaddr *)&bcast, sizeof(bcast)), 1);
    /* The largest datagram goes (fragmented); a zero-length one too. */
    assert_int_equal(tern_sendto(f.s, a, big, sizeof(big) - 1, 0, (struct sockaddr *)&to,
                                 sizeof(to)), (ssize_t)sizeof(big) - 1);
    assert_int_equal(tern_sendto(f.s, a, NULL, 0, 0, (struct sockaddr *)&to, sizeof(to)), 0);
    char buf[8];
    EXPECT_ERR(tern_recv(f.s, a, buf, sizeof(buf), 0), EAGAIN);
    /* Unconnected: ENOTCONN, yet the read side is shut (Linux). */
    int u = udp(&f);
    EXPECT_ERR(tern_shutdown(f.s, u, SHUT_RD), ENOTCONN);
    assert_int_equal(tern_recv(f.s, u, buf, sizeof(buf), 0), 0);
    assert_int_equal(tern_close(f.s, u), 0);
    assert_int_equal(tern_connect(f.s, a, (struct sockaddr *)&to, sizeof(to)), 0);
    EXPECT_ERR(tern_shutdown(f.s, a, 7), EINVAL);
    assert_int_equal(tern_shutdown(f.s, a, SHUT_WR), 0);
    EXPECT_ERR(tern_send(f.s, a, "x", 1, 0), EPIPE);
    assert_int_equal(tern_shutdown(f.s, a, SHUT_RD), 0);
    assert_int_equal(tern_recv(f.s, a, buf, sizeof(buf), 0), 0); /* EOF after SHUT_RD */
    struct pollfd pfd = {.fd = a, .events = POLLIN};
    assert_int_equal(tern_poll(f.s, &pfd, 1, 0), 1);
    assert_true(pfd.revents & POLLHUP);
    assert_int_equal(tern_close(f.s, a), 0);
    fixture_down(&f);
}

/* ---- The lifecycle invariants (death tests). ---- */

static void release_user_twice(void *arg)
{
    (void)arg;
    struct tern_stack *s = tern_stack_new(NULL);
    int fd = tern_socket(s, AF_INET, SOCK_DGRAM, 0);
    struct tern_socket *so = tern_sock_lookup(s, fd);
    tern_sock_release_user(s, so);
    tern_sock_release_user(s, so); /* the double free of the story */
}

static void release_proto_while_in_table(void *arg)
{
    (void)arg;
    struct tern_stack *s = tern_stack_new(NULL);
    int fd = tern_socket(s, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(99)};
    tern_bind(s, fd, (struct sockaddr *)&any, sizeof(any));
    tern_sock_release_proto(s, tern_sock_lookup(s, fd));
}

static void release_proto_never_taken(void *arg)
{
    (void)arg;
    struct tern_stack *s = tern_stack_new(NULL);
    int fd = tern_socket(s, AF_INET, SOCK_DGRAM, 0);
    tern_sock_release_proto(s, tern_sock_lookup(s, fd));
}

static void test_lifecycle_violations_abort_with_the_socket_named(void **state)
{
    (void)state;
    expect_abort(release_user_twice, NULL, "socket #1: user reference released twice");
    expect_abort(release_proto_while_in_table, NULL, "still in the udp table");
    expect_abort(release_proto_never_taken, NULL, "protocol reference released twice");
}

static void test_either_release_order_frees_once(void **state)
{
    (void)state;
    struct fixture f;
    fixture_up(&f, 0);
    struct tern_live live;
    /* Protocol first, then user (UDP close order)... */
    int a = udp(&f);
    assert_int_equal(bind_to(&f, a, "0.0.0.0", 9000), 0);
    struct tern_socket *so = tern_sock_lookup(f.s, a);
    assert_int_equal(so->life, SOCK_LIFE_BOTH);
    tern_pcb_remove(f.s, &so->pcb);
    tern_sock_release_proto(f.s, so);
    assert_int_equal(so->life, SOCK_LIFE_USER_ONLY);
    tern_sock_release_user(f.s, so);
    tern_sock_reap(f.s);
    tern_stack_live(f.s, &live);
    assert_int_equal(live.sockets, 0);
    /* ...and user first, then protocol (a protocol that lingers). */
    int b = udp(&f);
    assert_int_equal(bind_to(&f, b, "0.0.0.0", 9000), 0);
    so = tern_sock_lookup(f.s, b);
    tern_sock_release_user(f.s, so);
    assert_int_equal(so->life, SOCK_LIFE_PROTO_ONLY);
    EXPECT_ERR(tern_close(f.s, b), EBADF); /* the handle died with the user's reference */
    tern_sock_reap(f.s);
    tern_stack_live(f.s, &live);
    assert_int_equal(live.sockets, 1); /* the protocol still holds it */
    tern_pcb_remove(f.s, &so->pcb);
    tern_sock_release_proto(f.s, so);
    tern_sock_reap(f.s);
    tern_stack_live(f.s, &live);
    assert_int_equal(live.sockets, 0);
    fixture_down(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socket_arguments),
        cmocka_unit_test(test_stale_handles_give_ebadf),
        cmocka_unit_test(test_bind_conflicts_follow_linux),
        cmocka_unit_test(test_ephemeral_ports_are_in_range_and_distinct),
        cmocka_unit_test(test_port_indexes_grow_and_still_find_every_port),
        cmocka_unit_test(test_names_and_options),
        cmocka_unit_test(test_send_errors),
        cmocka_unit_test(test_lifecycle_violations_abort_with_the_socket_named),
        cmocka_unit_test(test_either_release_order_frees_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
