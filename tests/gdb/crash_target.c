/* A program that dies on a failed invariant with a known set of sockets
 * open, for tests/gdb/core_check.py: the core it leaves is read with the
 * gdb commands of tools/gdb/tern.py.
 *
 * Two stacks on the in-memory wire (192.0.2.1 and .2) and the raw host
 * (192.0.2.100) leave stack 0 holding:
 *   - a UDP socket on 192.0.2.1:5353 with two datagrams unread;
 *   - a TCP listener on 192.0.2.1:80 with one connection accepted
 *     (ESTABLISHED, 1000 bytes unread), one waiting on its accept queue,
 *     one the peer half-closed (CLOSE_WAIT) and a handshake from the raw
 *     host that never completes (a request record, SYN_RECEIVED);
 *   - a TIME_WAIT record of a connection it closed first to 192.0.2.2:81.
 * A third stack runs threaded (its own runtime thread), on no link, with a
 * UDP socket bound to 0.0.0.0:7.
 * Then it gives a handle to the accepted socket a second time, which the
 * socket layer refuses with a failed invariant: tern_panic prints the
 * socket table and aborts.
 *
 * With `--no-crash` it prints the tables and exits 0 instead. Where the
 * core goes and how big it may be is the caller's business (the core
 * limit, the working directory). */
#include "testing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "core/stack.h"
#include "sock/socket.h"
#include "wire/tcp.h"

#define SEC TERN_NS_PER_SEC
#define MS TERN_NS_PER_MS

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "crash_target: setup failed: %s (errno %d)\n", what, errno);
        exit(2);
    }
}

static int tcp_listener(struct sim *sim, int i, uint16_t port)
{
    struct tern_stack *s = sim->st[i];
    int fd = tern_socket(s, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = sim_sin(i, port);
    check(fd >= 0 && tern_bind(s, fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
              tern_listen(s, fd, 8) == 0,
          "listen");
    return fd;
}

static int tcp_connect(struct sim *sim, int i, int to, uint16_t port)
{
    struct tern_stack *s = sim->st[i];
    int fd = tern_socket(s, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = sim_sin(to, port);
    check(fd >= 0, "socket");
    int rc = tern_connect(s, fd, (struct sockaddr *)&a, sizeof(a));
    check(rc == 0 || errno == EINPROGRESS, "connect");
    sim_run(sim, 100 * MS);
    return fd;
}

static int tcp_accept(struct sim *sim, int i, int lfd)
{
    int fd = tern_accept(sim->st[i], lfd, NULL, NULL);
    check(fd >= 0, "accept");
    return fd;
}

/* A SYN from the raw host to stack 0's port 80 that is never acked. */
static void raw_syn(struct sim *sim, uint16_t sport)
{
    struct tern_tcp_hdr h = {.sport = sport, .dport = 80, .seq = 4242, .flags = TERN_TCP_SYN,
                             .wnd = 65535};
    h.opt.has_mss = true;
    h.opt.mss = 1460;
    h.hlen = (uint8_t)(TERN_TCP_HLEN + tern_tcp_opts_len(&h.opt));
    uint8_t seg[64], frame[256];
    tern_tcp_emit(seg, h.hlen, SIM_RAW_IP, ntohl(sim_addr(0).s_addr), &h);
    size_t fl = sim_raw_ipv4(sim, 0, frame, 6, 1, 0, false, seg, h.hlen);
    sim_raw_send(sim, frame, fl);
}

int main(int argc, char **argv)
{
    bool crash = !(argc > 1 && strcmp(argv[1], "--no-crash") == 0);
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct tern_stack *s0 = sim.st[0], *s1 = sim.st[1];

    /* UDP with two datagrams waiting. */
    int u0 = sim_udp(&sim, 0, 5353), u1 = sim_udp(&sim, 1, 0);
    struct sockaddr_in to = sim_sin(0, 5353);
    for (int k = 0; k < 2; k++)
        check(tern_sendto(s1, u1, "hello", 5, 0, (struct sockaddr *)&to, sizeof(to)) == 5,
              "sendto");
    sim_run(&sim, 10 * MS);

    /* The listener and its connections. */
    int l0 = tcp_listener(&sim, 0, 80);
    int c1 = tcp_connect(&sim, 1, 0, 80);
    int a0 = tcp_accept(&sim, 0, l0);
    char buf[1000];
    memset(buf, 'x', sizeof(buf));
    check(tern_send(s1, c1, buf, sizeof(buf), 0) == (long)sizeof(buf), "send");
    int c2 = tcp_connect(&sim, 1, 0, 80);
    int a2 = tcp_accept(&sim, 0, l0);
    check(tern_shutdown(s1, c2, SHUT_WR) == 0, "shutdown");
    int c3 = tcp_connect(&sim, 1, 0, 80); /* stays on the accept queue */
    sim_raw_arp_hello(&sim, 0);
    raw_syn(&sim, 40000);
    sim_run(&sim, 100 * MS);

    /* TIME_WAIT on stack 0: it closes first, the peer closes after. */
    int l1 = tcp_listener(&sim, 1, 81);
    int t0 = tcp_connect(&sim, 0, 1, 81);
    int t1 = tcp_accept(&sim, 1, l1);
    check(tern_close(s0, t0) == 0, "close");
    sim_run(&sim, 100 * MS);
    check(tern_close(s1, t1) == 0, "close");
    sim_run(&sim, 100 * MS);

    struct tern_live live;
    tern_stack_live(s0, &live);
    check(live.tcp_timewait == 1 && live.tcp_requests == 1, "TIME_WAIT record and request");
    (void)u0; (void)a2; (void)c3;

    /* A threaded stack: found through its runtime thread or memory. */
    struct tern_stack *s2 = tern_stack_new(NULL);
    check(s2 != NULL && tern_stack_start(s2) == 0, "threaded stack");
    int e2 = tern_socket(s2, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(7)};
    check(e2 >= 0 && tern_bind(s2, e2, (struct sockaddr *)&any, sizeof(any)) == 0, "bind");

    if (!crash) {
        tern_sockets_dump(s0, stdout);
        tern_sockets_dump(s1, stdout);
        tern_sockets_dump(s2, stdout);
        return 0;
    }
    /* The bug: a second handle for a socket the user already holds. */
    struct tern_socket *so = tern_sock_lookup(s0, a0);
    check(so != NULL, "lookup");
    fprintf(stderr, "crash_target: giving socket #%llu a second handle\n",
            (unsigned long long)so->id);
    tern_sock_give_handle(s0, so);
    fprintf(stderr, "crash_target: the invariant did not fire\n");
    return 3;
}
