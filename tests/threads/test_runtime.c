/* The threaded runtime: two started stacks joined by a tern_pipe, real
 * threads making blocking calls, and the races that must stay safe
 * (issue 4): close or shutdown under a blocked call, a stack freed under
 * blocked calls. Run under ThreadSanitizer in CI. Every wait is bounded
 * (SO_RCVTIMEO, or a watchdog that fails the test). */
#include "testing.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <tern/tern.h>

#define PORT 7000

struct net {
    struct tern_stack *st[2];
    struct tern_link *l[2];
};

static struct in_addr addr_of(int i)
{
    struct in_addr a = {.s_addr = htonl(0xc0000201u + (uint32_t)i)}; /* 192.0.2.1, .2 */
    return a;
}

static struct sockaddr_in sin_of(int i, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = addr_of(i)};
    return a;
}

static void net_up(struct net *n)
{
    assert_int_equal(tern_pipe_new(NULL, &n->l[0], &n->l[1]), 0);
    for (int i = 0; i < 2; i++) {
        struct tern_stack_config cfg;
        tern_stack_config_default(&cfg);
        cfg.seed = 100 + (uint64_t)i;
        n->st[i] = tern_stack_new(&cfg);
        assert_non_null(n->st[i]);
        int ifx = tern_if_add(n->st[i], n->l[i], NULL);
        assert_true(ifx > 0);
        assert_int_equal(tern_if_addr_add(n->st[i], ifx, addr_of(i), 24), 0);
        assert_int_equal(tern_stack_start(n->st[i]), 0);
    }
}

static void net_down(struct net *n)
{
    for (int i = 0; i < 2; i++) {
        tern_stack_free(n->st[i]);
        tern_link_free(n->l[i]);
    }
}

static void set_timeo(struct tern_stack *s, int fd, int name, long ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    assert_int_equal(tern_setsockopt(s, fd, SOL_SOCKET, name, &tv, sizeof(tv)), 0);
}

static int listen_on(struct tern_stack *s, int i)
{
    int l = tern_socket(s, AF_INET, SOCK_STREAM, 0);
    int one = 1; /* the port may hold TIME_WAIT records of earlier cases */
    assert_int_equal(tern_setsockopt(s, l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    struct sockaddr_in a = sin_of(i, PORT);
    assert_int_equal(tern_bind(s, l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(s, l, 16), 0);
    return l;
}

struct echo_arg {
    struct tern_stack *s;
    int listener;
    size_t bytes;
    int err;
};

/* Accept one connection and echo until EOF, all blocking. */
static void *echo_server(void *arg)
{
    struct echo_arg *e = arg;
    int c = tern_accept(e->s, e->listener, NULL, NULL);
    if (c < 0) {
        e->err = errno;
        return NULL;
    }
    set_timeo(e->s, c, SO_RCVTIMEO, 10000);
    char buf[4096];
    for (;;) {
        ssize_t r = tern_recv(e->s, c, buf, sizeof(buf), 0);
        if (r <= 0) {
            if (r < 0)
                e->err = errno;
            break;
        }
        if (tern_send(e->s, c, buf, (size_t)r, 0) != r) {
            e->err = errno;
            break;
        }
        e->bytes += (size_t)r;
    }
    tern_close(e->s, c);
    return NULL;
}

static void test_blocking_echo_between_two_started_stacks(void **state)
{
    (void)state;
    struct net n;
    net_up(&n);
    int l = listen_on(n.st[1], 1);
    set_timeo(n.st[1], l, SO_RCVTIMEO, 10000);
    struct echo_arg e = {.s = n.st[1], .listener = l};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, echo_server, &e), 0);
    int c = tern_socket(n.st[0], AF_INET, SOCK_STREAM, 0);
    set_timeo(n.st[0], c, SO_SNDTIMEO, 10000);
    set_timeo(n.st[0], c, SO_RCVTIMEO, 10000);
    struct sockaddr_in a = sin_of(1, PORT);
    /* A blocking connect returns once the handshake is done. */
    assert_int_equal(tern_connect(n.st[0], c, (struct sockaddr *)&a, sizeof(a)), 0);
    static char out[300000], in[300000];
    for (size_t i = 0; i < sizeof(out); i++)
        out[i] = (char)(i * 7 + (i >> 10));
    /* A blocking send takes everything (more than the send buffer). */
    assert_int_equal(tern_send(n.st[0], c, out, sizeof(out), 0), (ssize_t)sizeof(out));
    /* MSG_WAITALL: the whole answer in one call. */
    assert_int_equal(tern_recv(n.st[0], c, in, sizeof(in), MSG_WAITALL), (ssize_t)sizeof(in));
    assert_memory_equal(in, out, sizeof(out));
    assert_int_equal(tern_shutdown(n.st[0], c, SHUT_WR), 0);
    char b;
    assert_int_equal(tern_recv(n.st[0], c, &b, 1, 0), 0); /* the server's FIN */
    pthread_join(t, NULL);
    assert_int_equal(e.err, 0);
    assert_int_equal(e.bytes, sizeof(out));
    tern_close(n.st[0], c);
    tern_close(n.st[1], l);
    /* The pipe takes frames from a thread that left the stack's lock
     * (runtime/tx.c): once stopped, every frame queued so was written,
     * counted and freed. */
    for (int i = 0; i < 2; i++) {
        assert_true(n.l[i]->info.caps & TERN_LINK_CAP_TX_UNLOCKED);
        assert_int_equal(tern_stack_stop(n.st[i]), 0);
        assert_true(n.l[i]->stats.tx_frames > 200);
        assert_int_equal(tern_counter_by_name(n.st[i], "link.tx_frames"),
                         n.l[i]->stats.tx_frames);
        struct tern_live live;
        tern_stack_live(n.st[i], &live);
        assert_int_equal(live.packets, 0);
    }
    net_down(&n);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_timeouts_and_nonblocking(void **state)
{
    (void)state;
    struct net n;
    net_up(&n);
    int u = tern_socket(n.st[0], AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = sin_of(0, 9999);
    assert_int_equal(tern_bind(n.st[0], u, (struct sockaddr *)&a, sizeof(a)), 0);
    set_timeo(n.st[0], u, SO_RCVTIMEO, 150);
    char b;
    uint64_t t0 = mono_ms();
    errno = 0;
    assert_int_equal(tern_recv(n.st[0], u, &b, 1, 0), -1);
    assert_int_equal(errno, EAGAIN);
    assert_true(mono_ms() - t0 >= 150); /* it did wait (a lower bound only) */
    errno = 0;
    assert_int_equal(tern_recv(n.st[0], u, &b, 1, MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
    struct timeval tv;
    socklen_t tl = sizeof(tv);
    assert_int_equal(tern_getsockopt(n.st[0], u, SOL_SOCKET, SO_RCVTIMEO, &tv, &tl), 0);
    assert_int_equal(tv.tv_sec, 0);
    assert_int_equal(tv.tv_usec, 150000);
    /* A datagram from the other stack wakes a blocked receiver. */
    set_timeo(n.st[0], u, SO_RCVTIMEO, 10000);
    int v = tern_socket(n.st[1], AF_INET, SOCK_DGRAM, 0);
    assert_int_equal(tern_sendto(n.st[1], v, "x", 1, 0, (struct sockaddr *)&a, sizeof(a)), 1);
    assert_int_equal(tern_recv(n.st[0], u, &b, 1, 0), 1);
    assert_int_equal(b, 'x');
    tern_close(n.st[0], u);
    tern_close(n.st[1], v);
    net_down(&n);
}

/* ---- Races ---- */

struct blocked {
    struct tern_stack *s;
    int fd;
    int op; /* 0 recv, 1 accept, 2 send */
    _Atomic int started;
    ssize_t ret;
    int err;
};

static void *block_in(void *arg)
{
    struct blocked *b = arg;
    static char big[1 << 20];
    atomic_store(&b->started, 1);
    char c;
    switch (b->op) {
    case 0: b->ret = tern_recv(b->s, b->fd, &c, 1, 0); break;
    case 1: b->ret = tern_accept(b->s, b->fd, NULL, NULL); break;
    default: b->ret = tern_send(b->s, b->fd, big, sizeof(big), 0); break;
    }
    b->err = b->ret < 0 ? errno : 0;
    return NULL;
}

/* Start a thread blocked in op on fd; wait until it is asleep in the
 * stack (a little after it started: enough, and bounded). */
static pthread_t start_blocked(struct blocked *b)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, block_in, b), 0);
    while (!atomic_load(&b->started))
        usleep(1000);
    usleep(50000);
    return t;
}

/* A connected pair: client on stack 0, server on stack 1. */
static void connect_pair(struct net *n, int l, int *cli, int *srv)
{
    *cli = tern_socket(n->st[0], AF_INET, SOCK_STREAM, 0);
    set_timeo(n->st[0], *cli, SO_SNDTIMEO, 10000);
    struct sockaddr_in a = sin_of(1, PORT);
    assert_int_equal(tern_connect(n->st[0], *cli, (struct sockaddr *)&a, sizeof(a)), 0);
    set_timeo(n->st[1], l, SO_RCVTIMEO, 10000);
    *srv = tern_accept(n->st[1], l, NULL, NULL);
    assert_true(*srv >= 0);
}

static void test_close_or_shutdown_under_a_blocked_call(void **state)
{
    (void)state;
    struct net n;
    net_up(&n);
    int l = listen_on(n.st[1], 1);
    int cli, srv;
    /* close() under a blocked recv: EBADF at once. */
    connect_pair(&n, l, &cli, &srv);
    set_timeo(n.st[1], srv, SO_RCVTIMEO, 20000);
    struct blocked b = {.s = n.st[1], .fd = srv, .op = 0};
    pthread_t t = start_blocked(&b);
    uint64_t t0 = mono_ms();
    assert_int_equal(tern_close(n.st[1], srv), 0);
    pthread_join(t, NULL);
    assert_true(mono_ms() - t0 < 10000); /* not the 20 s timeout */
    assert_int_equal(b.ret, -1);
    assert_int_equal(b.err, EBADF);
    tern_close(n.st[0], cli);
    /* shutdown(SHUT_RD) under a blocked recv: 0, end of stream. */
    connect_pair(&n, l, &cli, &srv);
    set_timeo(n.st[1], srv, SO_RCVTIMEO, 20000);
    struct blocked b2 = {.s = n.st[1], .fd = srv, .op = 0};
    t = start_blocked(&b2);
    assert_int_equal(tern_shutdown(n.st[1], srv, SHUT_RD), 0);
    pthread_join(t, NULL);
    assert_int_equal(b2.ret, 0);
    tern_close(n.st[1], srv);
    tern_close(n.st[0], cli);
    /* shutdown(SHUT_WR) under a send blocked on a full window: EPIPE
     * (the peer does not read, so the send cannot finish). */
    connect_pair(&n, l, &cli, &srv);
    set_timeo(n.st[0], cli, SO_SNDTIMEO, 20000);
    struct blocked b3 = {.s = n.st[0], .fd = cli, .op = 2};
    t = start_blocked(&b3);
    assert_int_equal(tern_shutdown(n.st[0], cli, SHUT_WR), 0);
    pthread_join(t, NULL);
    /* Linux reports the bytes already taken, or EPIPE if none were. */
    assert_true(b3.ret > 0 || b3.err == EPIPE);
    tern_close(n.st[0], cli);
    tern_close(n.st[1], srv);
    /* Under a blocked accept: shutdown gives EINVAL, close EBADF. */
    struct blocked b4 = {.s = n.st[1], .fd = l, .op = 1};
    set_timeo(n.st[1], l, SO_RCVTIMEO, 20000);
    t = start_blocked(&b4);
    assert_int_equal(tern_shutdown(n.st[1], l, SHUT_RD), 0);
    pthread_join(t, NULL);
    assert_int_equal(b4.ret, -1);
    assert_int_equal(b4.err, EINVAL);
    tern_close(n.st[1], l);
    l = listen_on(n.st[1], 1);
    set_timeo(n.st[1], l, SO_RCVTIMEO, 20000);
    struct blocked b5 = {.s = n.st[1], .fd = l, .op = 1};
    t = start_blocked(&b5);
    assert_int_equal(tern_close(n.st[1], l), 0);
    pthread_join(t, NULL);
    assert_int_equal(b5.ret, -1);
    assert_int_equal(b5.err, EBADF);
    net_down(&n);
}

static void test_freeing_a_stack_under_blocked_calls(void **state)
{
    (void)state;
    struct net n;
    net_up(&n);
    int l = listen_on(n.st[1], 1);
    int cli, srv;
    connect_pair(&n, l, &cli, &srv);
    struct blocked b[3] = {{.s = n.st[1], .fd = srv, .op = 0},
                           {.s = n.st[1], .fd = l, .op = 1},
                           {.s = n.st[1], .fd = srv, .op = 0}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        t[i] = start_blocked(&b[i]);
    /* Frames and timers for stack 1 are in flight: data from the client. */
    assert_int_equal(tern_send(n.st[0], cli, "abc", 3, MSG_DONTWAIT), 3);
    tern_stack_free(n.st[1]);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        /* Each either got the data (one recv may) or was cancelled. */
        assert_true(b[i].ret >= 0 || b[i].err == ECANCELED);
    }
    assert_true(b[1].ret == -1 && b[1].err == ECANCELED);
    tern_link_free(n.l[1]);
    tern_close(n.st[0], cli);
    tern_stack_free(n.st[0]);
    tern_link_free(n.l[0]);
}

/* ---- Pollable descriptors and tern_epoll ---- */

static void test_socket_pollfd_in_a_kernel_epoll(void **state)
{
    (void)state;
    struct net n;
    net_up(&n);
    int l = listen_on(n.st[1], 1);
    int lfd = tern_socket_pollfd(n.st[1], l, POLLIN);
    assert_true(lfd >= 0);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
    assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev), 0);
    ev.data.u32 = 2;
    assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, pipefd[0], &ev), 0);
    struct epoll_event got[4];
    assert_int_equal(epoll_wait(ep, got, 4, 0), 0); /* nothing yet */
    int cli = tern_socket(n.st[0], AF_INET, SOCK_STREAM, 0);
    set_timeo(n.st[0], cli, SO_SNDTIMEO, 10000);
    struct sockaddr_in a = sin_of(1, PORT);
    assert_int_equal(tern_connect(n.st[0], cli, (struct sockaddr *)&a, sizeof(a)), 0);
    /* The listener's descriptor becomes readable (bounded wait). */
    assert_int_equal(epoll_wait(ep, got, 4, 5000), 1);
    assert_int_equal(got[0].data.u32, 1);
    int srv = tern_accept(n.st[1], l, NULL, NULL);
    assert_true(srv >= 0);
    /* ... and not readable once accepted (level: it follows the socket). */
    assert_int_equal(epoll_wait(ep, got, 4, 0), 0);
    assert_int_equal(write(pipefd[1], "k", 1), 1);
    assert_int_equal(epoll_wait(ep, got, 4, 5000), 1);
    assert_int_equal(got[0].data.u32, 2);
    close(ep);
    close(pipefd[0]);
    close(pipefd[1]);
    tern_close(n.st[0], cli);
    tern_close(n.st[1], srv);
    tern_close(n.st[1], l);
    net_down(&n);
}

static void test_tern_epoll_reports_only_ready_sockets(void **state)
{
    (void)state;
    struct net n;
    net_up(&n);
    enum { N = 40 };
    int u[N];
    int ep = tern_epoll_create(n.st[0]);
    assert_true(ep >= 0);
    for (int i = 0; i < N; i++) {
        u[i] = tern_socket(n.st[0], AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = sin_of(0, (uint16_t)(9000 + i));
        assert_int_equal(tern_bind(n.st[0], u[i], (struct sockaddr *)&a, sizeof(a)), 0);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        assert_int_equal(tern_epoll_ctl(n.st[0], ep, EPOLL_CTL_ADD, u[i], &ev), 0);
    }
    struct epoll_event ev = {.events = EPOLLIN};
    errno = 0;
    assert_int_equal(tern_epoll_ctl(n.st[0], ep, EPOLL_CTL_ADD, u[0], &ev), -1);
    assert_int_equal(errno, EEXIST);
    struct epoll_event got[N];
    assert_int_equal(tern_epoll_wait(n.st[0], ep, got, N, 0), 0);
    int v = tern_socket(n.st[1], AF_INET, SOCK_DGRAM, 0);
    int pick[3] = {3, 17, 33};
    for (int k = 0; k < 3; k++) {
        struct sockaddr_in a = sin_of(0, (uint16_t)(9000 + pick[k]));
        assert_int_equal(tern_sendto(n.st[1], v, "d", 1, 0, (struct sockaddr *)&a, sizeof(a)), 1);
    }
    /* Blocking wait until all three have arrived (bounded). */
    int seen = 0, rounds = 0;
    bool hit[N] = {false};
    while (seen < 3 && rounds++ < 100) {
        int r = tern_epoll_wait(n.st[0], ep, got, N, 1000);
        assert_true(r >= 0 && r <= 3);
        for (int i = 0; i < r; i++) {
            uint32_t idx = got[i].data.u32;
            assert_true(idx == 3 || idx == 17 || idx == 33);
            char c;
            assert_int_equal(tern_recv(n.st[0], u[idx], &c, 1, MSG_DONTWAIT), 1);
            if (!hit[idx])
                seen++;
            hit[idx] = true;
        }
    }
    assert_int_equal(seen, 3);
    assert_int_equal(tern_epoll_wait(n.st[0], ep, got, N, 0), 0);
    /* The set as one descriptor, for a kernel loop. */
    int efd = tern_epoll_pollfd(n.st[0], ep);
    assert_true(efd >= 0);
    struct pollfd pf = {.fd = efd, .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 0), 0);
    struct sockaddr_in a = sin_of(0, 9005);
    assert_int_equal(tern_sendto(n.st[1], v, "e", 1, 0, (struct sockaddr *)&a, sizeof(a)), 1);
    assert_int_equal(poll(&pf, 1, 5000), 1);
    assert_int_equal(tern_epoll_wait(n.st[0], ep, got, N, 0), 1);
    assert_int_equal(got[0].data.u32, 5);
    /* A socket closed while in the set leaves it. */
    tern_close(n.st[0], u[5]);
    assert_int_equal(tern_epoll_wait(n.st[0], ep, got, N, 0), 0);
    for (int i = 0; i < N; i++)
        if (i != 5)
            tern_close(n.st[0], u[i]);
    tern_close(n.st[0], ep);
    tern_close(n.st[1], v);
    net_down(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocking_echo_between_two_started_stacks),
        cmocka_unit_test(test_timeouts_and_nonblocking),
        cmocka_unit_test(test_close_or_shutdown_under_a_blocked_call),
        cmocka_unit_test(test_freeing_a_stack_under_blocked_calls),
        cmocka_unit_test(test_socket_pollfd_in_a_kernel_epoll),
        cmocka_unit_test(test_tern_epoll_reports_only_ready_sockets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
