/* Event-loop integration (issue 4): Tern sockets waited on from a kernel
 * epoll set beside a kernel pipe, one thread serving many connections.
 *
 * Two started stacks on a tern_pipe. Client threads on the first open 50
 * connections to an echo server on the second; each connection carries a
 * 2-byte client id and then a pattern that depends on the id and the
 * offset. The server is this test's main thread: one kernel epoll set
 * holding a kernel pipe and either every Tern socket's own descriptor
 * (tern_socket_pollfd, asked for POLLIN or POLLIN|POLLOUT as the
 * connection needs) or a single tern_epoll set's descriptor
 * (tern_epoll_pollfd). It checks every byte it receives against the
 * pattern, echoes it (non-blocking, keeping what a send did not take),
 * and closes at the client's end of stream; the clients check every byte
 * of the echo and write one byte into the kernel pipe per finished
 * connection. The test ends when the server has closed all 50 and read 50
 * bytes from the pipe, or fails at a 60 s deadline. Runs under TSan. */
#include "testing.h"

#include <errno.h>
#include <fcntl.h>
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

#define PORT 7100
#define CLIENT_THREADS 5
#define CONNS_PER_THREAD 10
#define NCONN (CLIENT_THREADS * CONNS_PER_THREAD)
#define ROUNDS 20
#define CHUNK 1000
#define BYTES (ROUNDS * CHUNK) /* per connection, after the id */
#define DEADLINE_MS 20000

#define TAG_PIPE UINT32_MAX
#define TAG_LISTENER (UINT32_MAX - 1)
#define TAG_SET (UINT32_MAX - 2)

static uint8_t pat(unsigned id, size_t i)
{
    return (uint8_t)(i * 13 + id * 7 + (i >> 8));
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct net {
    struct tern_stack *st[2];
    struct tern_link *l[2];
};

static void net_up(struct net *n)
{
    assert_int_equal(tern_pipe_new(NULL, &n->l[0], &n->l[1]), 0);
    for (int i = 0; i < 2; i++) {
        struct tern_stack_config cfg;
        tern_stack_config_default(&cfg);
        cfg.seed = 300 + (uint64_t)i;
        n->st[i] = tern_stack_new(&cfg);
        assert_non_null(n->st[i]);
        int ifx = tern_if_add(n->st[i], n->l[i], NULL);
        assert_true(ifx > 0);
        struct in_addr a = {.s_addr = htonl(0xc0000201u + (uint32_t)i)};
        assert_int_equal(tern_if_addr_add(n->st[i], ifx, a, 24), 0);
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

/* ---- Clients: blocking calls on stack 0 ---- */

struct client {
    struct tern_stack *s;
    int first_id;
    int pipe_w;
    int failures; /* connections whose echo was wrong or short */
};

static void set_timeo(struct tern_stack *s, int fd, int name, long ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    tern_setsockopt(s, fd, SOL_SOCKET, name, &tv, sizeof(tv));
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    int fds[CONNS_PER_THREAD];
    bool ok[CONNS_PER_THREAD];
    uint8_t buf[CHUNK];
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(PORT),
                             .sin_addr.s_addr = htonl(0xc0000202u)};
    for (int k = 0; k < CONNS_PER_THREAD; k++) {
        unsigned id = (unsigned)(c->first_id + k);
        fds[k] = tern_socket(c->s, AF_INET, SOCK_STREAM, 0);
        set_timeo(c->s, fds[k], SO_SNDTIMEO, 20000);
        set_timeo(c->s, fds[k], SO_RCVTIMEO, 20000);
        uint8_t hdr[2] = {(uint8_t)id, (uint8_t)(id >> 8)};
        ok[k] = tern_connect(c->s, fds[k], (struct sockaddr *)&to, sizeof(to)) == 0 &&
                tern_send(c->s, fds[k], hdr, 2, 0) == 2;
    }
    /* Rounds: a chunk on every connection, then every echo back, so the
     * server must come back to each connection ROUNDS times. */
    for (int r = 0; r < ROUNDS; r++) {
        for (int k = 0; k < CONNS_PER_THREAD; k++) {
            unsigned id = (unsigned)(c->first_id + k);
            for (size_t i = 0; i < CHUNK; i++)
                buf[i] = pat(id, (size_t)r * CHUNK + i);
            ok[k] = ok[k] && tern_send(c->s, fds[k], buf, CHUNK, 0) == CHUNK;
        }
        for (int k = 0; k < CONNS_PER_THREAD; k++) {
            unsigned id = (unsigned)(c->first_id + k);
            size_t want = r == 0 ? 2 + CHUNK : CHUNK, off = r == 0 ? 2 : 0;
            uint8_t in[2 + CHUNK];
            ok[k] = ok[k] && tern_recv(c->s, fds[k], in, want, MSG_WAITALL) == (ssize_t)want;
            if (r == 0)
                ok[k] = ok[k] && in[0] == (uint8_t)id && in[1] == (uint8_t)(id >> 8);
            for (size_t i = 0; ok[k] && i < CHUNK; i++)
                ok[k] = in[off + i] == pat(id, (size_t)r * CHUNK + i);
        }
    }
    for (int k = 0; k < CONNS_PER_THREAD; k++) {
        uint8_t extra;
        ok[k] = ok[k] && tern_shutdown(c->s, fds[k], SHUT_WR) == 0 &&
                tern_recv(c->s, fds[k], &extra, 1, 0) == 0; /* then the server's FIN */
        if (!ok[k])
            c->failures++;
        tern_close(c->s, fds[k]);
        uint8_t one = 1;
        if (write(c->pipe_w, &one, 1) != 1)
            c->failures++;
    }
    return NULL;
}

/* ---- The server: one thread, one kernel epoll ---- */

struct conn {
    int fd, evfd;     /* Tern socket, its descriptor (per-socket mode) */
    size_t got;       /* stream bytes received (id included) */
    unsigned id;
    uint8_t out[8192];
    size_t out_len;
    bool eof;
    short asked;
};

struct server {
    struct tern_stack *s;
    bool nested;      /* one tern_epoll set instead of per-socket descriptors */
    int kep, tep;     /* kernel epoll; Tern epoll set (nested mode) */
    int listener;
    struct conn conns[NCONN];
    int nconns, closed;
    size_t bad_bytes;
    uint64_t echoed;
};

/* Watch c for `events` (POLLIN, maybe POLLOUT). */
static void watch(struct server *v, int slot, short events)
{
    struct conn *c = &v->conns[slot];
    if (c->asked == events)
        return;
    if (v->nested) {
        struct epoll_event ev = {.events = (uint32_t)events, .data.u32 = (uint32_t)slot};
        assert_int_equal(tern_epoll_ctl(v->s, v->tep, c->asked ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
                                        c->fd, &ev), 0);
    } else {
        int efd = tern_socket_pollfd(v->s, c->fd, events);
        assert_true(efd >= 0);
        if (!c->asked) {
            struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)slot};
            assert_int_equal(epoll_ctl(v->kep, EPOLL_CTL_ADD, efd, &ev), 0);
            c->evfd = efd;
        } else {
            assert_int_equal(efd, c->evfd); /* the same descriptor, new events */
        }
    }
    c->asked = events;
}

static void conn_close(struct server *v, int slot)
{
    struct conn *c = &v->conns[slot];
    if (!v->nested && c->asked) /* a connection served at once was never watched */
        assert_int_equal(epoll_ctl(v->kep, EPOLL_CTL_DEL, c->evfd, NULL), 0);
    /* Closing leaves the tern_epoll set and closes the descriptor. */
    assert_int_equal(tern_close(v->s, c->fd), 0);
    c->fd = -1;
    v->closed++;
}

static void conn_work(struct server *v, int slot)
{
    struct conn *c = &v->conns[slot];
    if (c->fd < 0)
        return;
    for (;;) {
        if (c->out_len) {
            ssize_t n = tern_send(v->s, c->fd, c->out, c->out_len, MSG_DONTWAIT);
            if (n < 0) {
                assert_int_equal(errno, EAGAIN);
                watch(v, slot, POLLIN | POLLOUT);
                return;
            }
            memmove(c->out, c->out + n, c->out_len - (size_t)n);
            c->out_len -= (size_t)n;
            v->echoed += (uint64_t)n;
            continue;
        }
        if (c->eof) {
            conn_close(v, slot);
            return;
        }
        ssize_t n = tern_recv(v->s, c->fd, c->out, sizeof(c->out), MSG_DONTWAIT);
        if (n < 0) {
            assert_int_equal(errno, EAGAIN);
            watch(v, slot, POLLIN);
            return;
        }
        if (n == 0) {
            c->eof = true;
            continue;
        }
        for (ssize_t i = 0; i < n; i++, c->got++) {
            if (c->got < 2) {
                c->id |= (unsigned)c->out[i] << (8 * c->got);
                continue;
            }
            if (c->out[i] != pat(c->id, c->got - 2))
                v->bad_bytes++;
        }
        c->out_len = (size_t)n;
    }
}

static void accept_all(struct server *v)
{
    for (;;) {
        int fd = tern_accept4(v->s, v->listener, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0) {
            assert_int_equal(errno, EAGAIN);
            return;
        }
        assert_true(v->nconns < NCONN);
        int slot = v->nconns++;
        v->conns[slot] = (struct conn){.fd = fd, .evfd = -1};
        conn_work(v, slot);
    }
}

static void run_server(bool nested)
{
    struct net n;
    net_up(&n);
    struct server *v = calloc(1, sizeof(*v));
    assert_non_null(v);
    v->s = n.st[1];
    v->nested = nested;
    v->kep = epoll_create1(EPOLL_CLOEXEC);
    assert_true(v->kep >= 0);
    int pfd[2];
    assert_int_equal(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = TAG_PIPE};
    assert_int_equal(epoll_ctl(v->kep, EPOLL_CTL_ADD, pfd[0], &ev), 0);

    v->listener = tern_socket(v->s, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    assert_int_equal(tern_bind(v->s, v->listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(v->s, v->listener, NCONN), 0);
    if (nested) {
        v->tep = tern_epoll_create(v->s);
        assert_true(v->tep >= 0);
        struct epoll_event lev = {.events = EPOLLIN, .data.u32 = TAG_LISTENER};
        assert_int_equal(tern_epoll_ctl(v->s, v->tep, EPOLL_CTL_ADD, v->listener, &lev), 0);
        int sfd = tern_epoll_pollfd(v->s, v->tep);
        assert_true(sfd >= 0);
        ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = TAG_SET};
        assert_int_equal(epoll_ctl(v->kep, EPOLL_CTL_ADD, sfd, &ev), 0);
    } else {
        int lfd = tern_socket_pollfd(v->s, v->listener, POLLIN);
        assert_true(lfd >= 0);
        ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = TAG_LISTENER};
        assert_int_equal(epoll_ctl(v->kep, EPOLL_CTL_ADD, lfd, &ev), 0);
    }

    struct client cl[CLIENT_THREADS];
    pthread_t th[CLIENT_THREADS];
    for (int t = 0; t < CLIENT_THREADS; t++) {
        cl[t] = (struct client){.s = n.st[0], .first_id = 1 + t * CONNS_PER_THREAD,
                                .pipe_w = pfd[1]};
        assert_int_equal(pthread_create(&th[t], NULL, client_main, &cl[t]), 0);
    }

    int pipe_bytes = 0;
    uint64_t end = mono_ms() + DEADLINE_MS, wakeups = 0;
    while ((v->closed < NCONN || pipe_bytes < NCONN) && mono_ms() < end) {
        struct epoll_event evs[32];
        int k = epoll_wait(v->kep, evs, 32, 1000);
        assert_true(k >= 0 || errno == EINTR);
        for (int i = 0; i < k; i++) {
            wakeups++;
            uint32_t tag = evs[i].data.u32;
            if (tag == TAG_PIPE) {
                uint8_t b[64];
                ssize_t r;
                while ((r = read(pfd[0], b, sizeof(b))) > 0)
                    pipe_bytes += (int)r;
            } else if (tag == TAG_LISTENER) {
                accept_all(v);
            } else if (tag == TAG_SET) {
                /* The set is ready: take what is ready now, no waiting. */
                struct epoll_event te[32];
                int m = tern_epoll_wait(v->s, v->tep, te, 32, 0);
                assert_true(m >= 0);
                for (int j = 0; j < m; j++) {
                    if (te[j].data.u32 == TAG_LISTENER)
                        accept_all(v);
                    else
                        conn_work(v, (int)te[j].data.u32);
                }
            } else {
                conn_work(v, (int)tag);
            }
        }
    }
    if (v->closed < NCONN) {
        /* What is stuck, for whoever reads the failure. */
        for (int i = 0; i < v->nconns; i++) {
            struct conn *c = &v->conns[i];
            if (c->fd < 0)
                continue;
            struct pollfd pf = {.fd = c->fd, .events = POLLIN | POLLOUT};
            tern_poll(v->s, &pf, 1, 0);
            print_message("stuck: slot %d id %u got %zu out %zu eof %d asked %#x revents %#x\n", i,
                          c->id, c->got, c->out_len, c->eof, (unsigned)c->asked,
                          (unsigned)pf.revents);
        }
        if (nested) {
            struct epoll_event te[64];
            print_message("the set reports %d ready now\n", tern_epoll_wait(v->s, v->tep, te, 64, 0));
        }
        tern_sockets_dump(v->s, stderr);
    }
    for (int t = 0; t < CLIENT_THREADS; t++)
        pthread_join(th[t], NULL);
    print_message("%s: %d connections served, %llu bytes echoed, %llu wake-ups of one thread\n",
                  nested ? "tern_epoll set in a kernel epoll" : "socket descriptors in a kernel epoll",
                  v->closed, (unsigned long long)v->echoed, (unsigned long long)wakeups);
    assert_int_equal(v->nconns, NCONN);
    assert_int_equal(v->closed, NCONN);
    assert_int_equal(pipe_bytes, NCONN);
    assert_int_equal(v->bad_bytes, 0);
    assert_int_equal(v->echoed, (uint64_t)NCONN * (2 + BYTES));
    for (int t = 0; t < CLIENT_THREADS; t++)
        assert_int_equal(cl[t].failures, 0);
    for (int i = 0; i < NCONN; i++)
        assert_int_equal(v->conns[i].got, 2 + BYTES);

    if (nested)
        tern_close(v->s, v->tep);
    tern_close(v->s, v->listener);
    close(pfd[0]);
    close(pfd[1]);
    close(v->kep);
    free(v);
    net_down(&n);
}

static void test_socket_pollfds_beside_a_kernel_pipe(void **state)
{
    (void)state;
    run_server(false);
}

static void test_tern_epoll_set_beside_a_kernel_pipe(void **state)
{
    (void)state;
    run_server(true);
}

/* More ready sockets than a wait takes: the rest stay ready for the next
 * wait (a wait that reported maxevents once dropped the ones it had not
 * reached, and they were never reported again). */
static void test_more_ready_than_maxevents(void **state)
{
    (void)state;
    struct net n;
    net_up(&n);
    enum { NS = 10 };
    int ep = tern_epoll_create(n.st[1]);
    assert_true(ep >= 0);
    int u[NS];
    for (int i = 0; i < NS; i++) {
        u[i] = tern_socket(n.st[1], AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(9000 + i)),
                                .sin_addr.s_addr = htonl(0xc0000202u)};
        assert_int_equal(tern_bind(n.st[1], u[i], (struct sockaddr *)&a, sizeof(a)), 0);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        assert_int_equal(tern_epoll_ctl(n.st[1], ep, EPOLL_CTL_ADD, u[i], &ev), 0);
    }
    int tx = tern_socket(n.st[0], AF_INET, SOCK_DGRAM, 0);
    for (int i = 0; i < NS; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(9000 + i)),
                                .sin_addr.s_addr = htonl(0xc0000202u)};
        assert_int_equal(tern_sendto(n.st[0], tx, "x", 1, 0, (struct sockaddr *)&a, sizeof(a)), 1);
    }
    /* Wait (bounded) until all ten are readable, as one set. */
    struct epoll_event got[NS];
    uint64_t end = mono_ms() + 10000;
    int ready = 0;
    while (ready < NS && mono_ms() < end) {
        ready = 0;
        for (int i = 0; i < NS; i++) {
            struct pollfd pf = {.fd = u[i], .events = POLLIN};
            ready += tern_poll(n.st[1], &pf, 1, 0) == 1;
        }
    }
    assert_int_equal(ready, NS);
    /* Three at a time, reading what is reported: every socket comes up. */
    bool seen[NS] = {false};
    int reported = 0;
    for (int round = 0; round < 20 && reported < NS; round++) {
        int k = tern_epoll_wait(n.st[1], ep, got, 3, 1000);
        assert_true(k > 0 && k <= 3);
        for (int j = 0; j < k; j++) {
            int i = (int)got[j].data.u32;
            char b;
            assert_false(seen[i]);
            assert_int_equal(tern_recv(n.st[1], u[i], &b, 1, 0), 1);
            seen[i] = true;
            reported++;
        }
    }
    assert_int_equal(reported, NS);
    assert_int_equal(tern_epoll_wait(n.st[1], ep, got, 3, 0), 0);
    for (int i = 0; i < NS; i++)
        tern_close(n.st[1], u[i]);
    tern_close(n.st[0], tx);
    tern_close(n.st[1], ep);
    net_down(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socket_pollfds_beside_a_kernel_pipe),
        cmocka_unit_test(test_tern_epoll_set_beside_a_kernel_pipe),
        cmocka_unit_test(test_more_ready_than_maxevents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
