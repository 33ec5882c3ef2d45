/* A stack taken down under its users (issue 4):
 *
 * - tern_stack_free while threads are blocked in every kind of call on
 *   it, while its peer keeps sending to it (frames queued in the pipe),
 *   and while it has timers armed (persist and retransmission timers,
 *   SYN,ACK retransmissions for pending handshakes, TIME_WAIT records,
 *   ARP retries, keepalives) and datagrams to itself queued. Every
 *   blocked call returns ECANCELED (a lingering close returns 0: the
 *   socket is closed either way), nothing runs against the freed stack
 *   (ASan, TSan), and the other stack goes on and is freed the same way.
 *   Repeated, freeing either stack first, at seeded random moments.
 * - tern_stack_stop under blocked calls (ECANCELED), then the same stack
 *   used in owned mode by one thread (calls never block, the application
 *   polls), then started again; several times over. */
#include "race.h"

#include <poll.h>
#include <sys/epoll.h>

#include "wire/eth.h"
#include "wire/ipv4.h"
#include "wire/tcp.h"

#define LPORT 7300   /* the listener pairs are made on */
#define IDLE_PORT 7301 /* a listener nobody connects to */
#define FULL_PORT 7302 /* a listener with a full queue nobody accepts from */
#define UPORT 7303 /* and 7304 */
#define TIMEO_MS 15000 /* calls must be cancelled long before */

enum kind { K_RECV, K_SEND, K_ACCEPT, K_CONNECT, K_POLL, K_EPOLL, K_UDP_RECV, K_LINGER, K__N };
static const char *kind_name[] = {"recv", "send", "accept", "connect", "poll", "epoll_wait",
                                  "udp recv", "lingering close"};

struct blocked {
    struct tern_stack *s;
    enum kind k;
    int fd;
    _Atomic int entered;
    ssize_t ret;
    int err;
};

static uint8_t big[1 << 20];

static void *blocked_main(void *arg)
{
    struct blocked *b = arg;
    char buf[256];
    atomic_store(&b->entered, 1);
    switch (b->k) {
    case K_RECV:
    case K_UDP_RECV:
        b->ret = tern_recv(b->s, b->fd, buf, sizeof(buf), 0);
        break;
    case K_SEND:
        b->ret = tern_send(b->s, b->fd, big, sizeof(big), 0);
        break;
    case K_ACCEPT:
        b->ret = tern_accept(b->s, b->fd, NULL, NULL);
        break;
    case K_CONNECT: {
        struct sockaddr_in a = race_sin_nobody(80);
        b->ret = tern_connect(b->s, b->fd, (struct sockaddr *)&a, sizeof(a));
        break;
    }
    case K_POLL: {
        struct pollfd p = {.fd = b->fd, .events = POLLIN};
        b->ret = tern_poll(b->s, &p, 1, TIMEO_MS);
        break;
    }
    case K_EPOLL: {
        struct epoll_event ev[2];
        b->ret = tern_epoll_wait(b->s, b->fd, ev, 2, TIMEO_MS);
        break;
    }
    default:
        b->ret = tern_close(b->s, b->fd);
        break;
    }
    b->err = b->ret < 0 ? errno : 0;
    return NULL;
}

/* ---- The peer's traffic, from threads that use only the peer ---- */

struct peer_load {
    struct tern_stack *s; /* the surviving stack */
    int victim;           /* index of the stack being freed */
    int stream;           /* a connection to the victim that the victim never reads */
    int udp;
    _Atomic int stop;
    uint64_t sent, connects;
};

static void *peer_load_main(void *arg)
{
    struct peer_load *p = arg;
    struct sockaddr_in to = race_sin(p->victim, UPORT), full = race_sin(p->victim, FULL_PORT);
    char chunk[1400];
    memset(chunk, 'z', sizeof(chunk));
    int pending[8];
    int npending = 0;
    while (!atomic_load(&p->stop)) {
        /* Data the victim does not read: its window closes, ours probes. */
        if (tern_send(p->s, p->stream, chunk, sizeof(chunk), MSG_DONTWAIT) > 0)
            p->sent++;
        /* Datagrams it drops once its buffer is full. */
        tern_sendto(p->s, p->udp, chunk, 200, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to));
        /* Handshakes towards a queue nobody drains: requests and
         * SYN,ACK timers on the victim. */
        if (npending == 8) {
            tern_close(p->s, pending[0]);
            memmove(pending, pending + 1, 7 * sizeof(int));
            npending--;
        }
        int c = tern_socket(p->s, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (c >= 0) {
            tern_connect(p->s, c, (struct sockaddr *)&full, sizeof(full));
            pending[npending++] = c;
            p->connects++;
        }
        usleep(300);
    }
    for (int i = 0; i < npending; i++)
        tern_close(p->s, pending[i]);
    return NULL;
}

/* SYNs to the victim's idle listener from an address nobody has, sent
 * into the pipe beside the peer's own frames (the pipe takes senders
 * from any thread): the victim keeps a request for each, and its
 * SYN,ACKs wait on an ARP that nobody answers, with their timers. */
static void spoofed_syns(struct race_net *net, int victim, int n)
{
    uint8_t vmac[6], smac[6] = {0x02, 0, 0, 0, 0, 0x99};
    assert_int_equal(tern_if_get_mac(net->st[victim], 1, vmac), 0);
    struct sockaddr_in nobody = race_sin_nobody(0);
    uint32_t src = ntohl(nobody.sin_addr.s_addr), dst = ntohl(race_addr(victim).s_addr);
    for (int i = 0; i < n; i++) {
        uint8_t f[14 + 20 + 20];
        tern_eth_emit(f, vmac, smac, TERN_ETHERTYPE_IPV4);
        struct tern_ipv4_hdr ip = {.hlen = 20, .total_len = 40, .id = (uint16_t)i, .ttl = 64,
                                   .proto = IPPROTO_TCP, .src = src, .dst = dst};
        tern_ipv4_emit(f + 14, &ip);
        struct tern_tcp_hdr th = {.sport = (uint16_t)(40000 + i), .dport = IDLE_PORT,
                                  .seq = 1000u * (uint32_t)i, .hlen = 20, .flags = TERN_TCP_SYN,
                                  .wnd = 65535};
        tern_tcp_emit(f + 34, 20, src, dst, &th);
        struct tern_frame fr = {.data = f, .len = sizeof(f), .cap = sizeof(f)};
        tern_link_send(net->l[1 - victim], &fr, 1, 0);
    }
}

/* A connected pair between the stacks: *a on stack `ai`, *b on the other. */
static void pair(struct race_net *net, int ai, int listener_stack, int listener, int *a, int *b)
{
    int ci = 1 - listener_stack;
    int c = tern_socket(net->st[ci], AF_INET, SOCK_STREAM, 0);
    assert_true(c >= 0);
    race_timeo(net->st[ci], c, SO_SNDTIMEO, 5000);
    struct sockaddr_in la = race_sin(listener_stack, LPORT);
    assert_int_equal(tern_connect(net->st[ci], c, (struct sockaddr *)&la, sizeof(la)), 0);
    int sv = tern_accept(net->st[listener_stack], listener, NULL, NULL);
    assert_true(sv >= 0);
    *a = ai == ci ? c : sv;
    *b = ai == ci ? sv : c;
}

static void start_blocked(struct blocked *b, pthread_t *t)
{
    assert_int_equal(pthread_create(t, NULL, blocked_main, b), 0);
    while (!atomic_load(&b->entered))
        usleep(50);
}

static void free_under_load(int round, int victim, struct race_rng *rng, uint64_t seed)
{
    int peer = 1 - victim;
    struct race_net net;
    race_net_up(&net, 2, seed + (uint64_t)round);
    struct tern_stack *vs = net.st[victim], *ps = net.st[peer];
    race_wd_arm(30, "teardown round %d: setting up (victim stack %d)", round, victim);
    int lis[2];
    for (int i = 0; i < 2; i++) {
        lis[i] = race_listener(net.st[i], i, LPORT, false, 64);
        race_timeo(net.st[i], lis[i], SO_RCVTIMEO, 5000);
    }
    int idle_l = race_listener(vs, victim, IDLE_PORT, false, 4);
    race_listener(vs, victim, FULL_PORT, false, 1); /* closed with the stack */
    int vu = tern_socket(vs, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ua = race_sin(victim, UPORT);
    assert_int_equal(tern_bind(vs, vu, (struct sockaddr *)&ua, sizeof(ua)), 0);
    int small = 4096;
    assert_int_equal(tern_setsockopt(vs, vu, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    int vu_idle = tern_socket(vs, AF_INET, SOCK_DGRAM, 0); /* nobody sends to it */
    struct sockaddr_in ua2 = race_sin(victim, UPORT + 1);
    assert_int_equal(tern_bind(vs, vu_idle, (struct sockaddr *)&ua2, sizeof(ua2)), 0);

    /* Connections: an idle one (blocked readers), one the victim sends
     * on and the peer never reads (a blocked send, persist timer), one
     * the peer streams on and the victim never reads, one to close
     * lingering, one whose peer end waits on the victim. */
    int idle_v, idle_p, push_v, push_p, stream_v, stream_p, ling_v, ling_p, wait_v, wait_p;
    pair(&net, victim, peer, lis[peer], &idle_v, &idle_p);
    pair(&net, victim, victim, lis[victim], &push_v, &push_p);
    pair(&net, victim, peer, lis[peer], &stream_v, &stream_p);
    pair(&net, victim, victim, lis[victim], &ling_v, &ling_p);
    pair(&net, victim, peer, lis[peer], &wait_v, &wait_p);
    int one = 1;
    assert_int_equal(tern_setsockopt(vs, idle_v, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)), 0);
    /* Fill the lingering connection's way out so its FIN cannot go. */
    tern_send(vs, ling_v, big, sizeof(big), MSG_DONTWAIT);
    struct linger lg = {.l_onoff = 1, .l_linger = TIMEO_MS / 1000};
    assert_int_equal(tern_setsockopt(vs, ling_v, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    /* TIME_WAIT records and a closing connection on the victim. */
    for (int i = 0; i < 3; i++) {
        int a, b;
        pair(&net, victim, peer, lis[peer], &a, &b);
        tern_close(vs, a);
        tern_close(ps, b);
    }
    int set = tern_epoll_create(vs);
    struct epoll_event ev = {.events = EPOLLIN};
    assert_int_equal(tern_epoll_ctl(vs, set, EPOLL_CTL_ADD, idle_v, &ev), 0);
    int conn = tern_socket(vs, AF_INET, SOCK_STREAM, 0);
    int vfds[K__N] = {[K_RECV] = idle_v, [K_SEND] = push_v, [K_ACCEPT] = idle_l,
                      [K_CONNECT] = conn, [K_POLL] = idle_v, [K_EPOLL] = set,
                      [K_UDP_RECV] = vu_idle, [K_LINGER] = ling_v};
    for (int k = 0; k < K__N; k++) {
        race_timeo(vs, vfds[k], SO_RCVTIMEO, TIMEO_MS);
        race_timeo(vs, vfds[k], SO_SNDTIMEO, TIMEO_MS);
    }
    struct blocked b[K__N];
    pthread_t t[K__N];
    for (int k = 0; k < K__N; k++) {
        b[k] = (struct blocked){.s = vs, .k = (enum kind)k, .fd = vfds[k]};
        start_blocked(&b[k], &t[k]);
    }
    /* On the survivor: a reader waiting for the victim, who will never
     * send (cancelled when the survivor goes too). */
    race_timeo(ps, wait_p, SO_RCVTIMEO, TIMEO_MS);
    struct blocked pb = {.s = ps, .k = K_RECV, .fd = wait_p};
    pthread_t pt;
    start_blocked(&pb, &pt);

    struct peer_load load = {.s = ps, .victim = victim, .stream = stream_p};
    load.udp = tern_socket(ps, AF_INET, SOCK_DGRAM, 0);
    pthread_t lt;
    assert_int_equal(pthread_create(&lt, NULL, peer_load_main, &load), 0);
    spoofed_syns(&net, victim, 3);
    /* Datagrams to itself, waiting for its next poll. */
    int self = tern_socket(vs, AF_INET, SOCK_DGRAM, 0);
    for (int i = 0; i < 8; i++)
        tern_sendto(vs, self, "me", 2, MSG_DONTWAIT, (struct sockaddr *)&ua, sizeof(ua));
    usleep(2000 + race_rng_below(rng, 30000));
    /* What the free has to cancel (read while it runs). */
    struct tern_live live;
    tern_stack_live(vs, &live);
    if (round == 0)
        fprintf(stderr, "teardown: freeing a stack with %llu sockets, %llu timers, %llu packets, "
                "%llu pending handshakes, %llu TIME_WAIT records\n",
                (unsigned long long)live.sockets, (unsigned long long)live.timers,
                (unsigned long long)live.packets, (unsigned long long)live.tcp_requests,
                (unsigned long long)live.tcp_timewait);
    assert_true(live.timers > 0 && live.sockets > (uint64_t)K__N);

    race_wd_arm(30, "teardown round %d: freeing stack %d under %d blocked calls", round, victim,
                K__N);
    tern_stack_free(vs);
    net.st[victim] = NULL;
    for (int k = 0; k < K__N; k++) {
        pthread_join(t[k], NULL);
        /* A send that had taken bytes reports them, as after a signal. */
        bool ok = b[k].k == K_LINGER ? b[k].ret == 0
                  : b[k].k == K_SEND && b[k].ret > 0 ? b[k].ret < (ssize_t)sizeof(big)
                                                      : b[k].ret == -1 && b[k].err == ECANCELED;
        if (!ok)
            fail_msg("round %d: %s blocked on the freed stack returned %zd (%s)", round,
                     kind_name[k], b[k].ret, strerror(b[k].err));
    }
    /* The survivor keeps sending into the dead end for a while. */
    usleep(20000);
    atomic_store(&load.stop, 1);
    pthread_join(lt, NULL);
    assert_true(load.connects > 0);
    race_wd_arm(30, "teardown round %d: freeing the surviving stack %d", round, peer);
    tern_stack_free(ps);
    net.st[peer] = NULL;
    pthread_join(pt, NULL);
    if (!(pb.ret == -1 && pb.err == ECANCELED))
        fail_msg("round %d: recv blocked on the survivor returned %zd (%s)", round, pb.ret,
                 strerror(pb.err));
    race_net_down(&net);
    race_wd_disarm();
}

static void test_free_a_stack_under_blocked_calls_and_queued_work(void **state)
{
    (void)state;
    uint64_t seed = race_seed(4003);
    struct race_rng rng = race_rng_for(seed, 1);
    for (int round = 0; round < 10 * race_scale(); round++)
        free_under_load(round, round % 2, &rng, seed);
}

/* ---- Stop, owned mode, start again ---- */

static void owned_poll_until(struct tern_stack *s, bool (*done)(void *), void *arg,
                             const char *what)
{
    uint64_t end = race_now_ms() + 10000;
    while (!done(arg)) {
        if (race_now_ms() > end)
            fail_msg("owned mode: %s did not happen within 10 s of polling", what);
        tern_stack_poll(s, race_now_ns());
        usleep(200);
    }
}

struct recv_want {
    struct tern_stack *s;
    int fd;
    char buf[64];
    ssize_t got;
};

static bool recv_done(void *arg)
{
    struct recv_want *w = arg;
    ssize_t r = tern_recv(w->s, w->fd, w->buf + w->got, sizeof(w->buf) - (size_t)w->got, 0);
    if (r > 0)
        w->got += r;
    else if (r < 0 && errno != EAGAIN)
        fail_msg("owned recv: %s", strerror(errno));
    return w->got > 0;
}

struct accept_want {
    struct tern_stack *s;
    int fd, got;
};

static bool accept_done(void *arg)
{
    struct accept_want *w = arg;
    w->got = tern_accept(w->s, w->fd, NULL, NULL);
    if (w->got < 0 && errno != EAGAIN)
        fail_msg("owned accept: %s", strerror(errno));
    return w->got >= 0;
}

struct connector {
    struct tern_stack *s;
    int fd, rc, err;
};

static void *connect_main(void *arg)
{
    struct connector *c = arg;
    struct sockaddr_in a = race_sin(1, LPORT);
    c->rc = tern_connect(c->s, c->fd, (struct sockaddr *)&a, sizeof(a));
    c->err = c->rc < 0 ? errno : 0;
    return NULL;
}

static void test_stop_then_owned_mode_then_start_again(void **state)
{
    (void)state;
    uint64_t seed = race_seed(4003);
    struct race_rng rng = race_rng_for(seed, 2);
    struct race_net net;
    race_net_up(&net, 2, seed);
    struct tern_stack *c = net.st[0], *sv = net.st[1];
    int l = race_listener(sv, 1, LPORT, false, 16);
    race_timeo(sv, l, SO_RCVTIMEO, 5000);
    int cl, srv;
    pair(&net, 0, 1, l, &cl, &srv);
    race_timeo(c, cl, SO_RCVTIMEO, 5000);
    int set = tern_epoll_create(sv);
    struct epoll_event ev = {.events = EPOLLIN};
    assert_int_equal(tern_epoll_ctl(sv, set, EPOLL_CTL_ADD, srv, &ev), 0);
    int efd = tern_socket_pollfd(sv, srv, POLLIN);
    assert_true(efd >= 0);
    for (int cycle = 0; cycle < 4 * race_scale(); cycle++) {
        race_wd_arm(30, "stop cycle %d", cycle);
        /* Blocked calls on the server stack, cancelled by the stop. */
        enum kind ks[4] = {K_RECV, K_ACCEPT, K_POLL, K_EPOLL};
        int fds[4] = {srv, l, srv, set};
        struct blocked b[4];
        pthread_t t[4];
        race_timeo(sv, srv, SO_RCVTIMEO, TIMEO_MS);
        race_timeo(sv, l, SO_RCVTIMEO, TIMEO_MS);
        for (int i = 0; i < 4; i++) {
            b[i] = (struct blocked){.s = sv, .k = ks[i], .fd = fds[i]};
            start_blocked(&b[i], &t[i]);
        }
        usleep(race_rng_below(&rng, 20000));
        assert_int_equal(tern_stack_stop(sv), 0);
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            if (!(b[i].ret == -1 && b[i].err == ECANCELED))
                fail_msg("cycle %d: %s under stop returned %zd (%s)", cycle, kind_name[ks[i]],
                         b[i].ret, strerror(b[i].err));
        }
        assert_false(tern_stack_started(sv));
        errno = 0;
        assert_int_equal(tern_stack_stop(sv), -1);
        assert_int_equal(errno, EINVAL);

        /* Owned: this thread alone drives the server stack. A blocking
         * socket does not block. */
        char ch;
        errno = 0;
        assert_int_equal(tern_recv(sv, srv, &ch, 1, 0), -1);
        assert_int_equal(errno, EAGAIN);
        struct epoll_event got[2];
        assert_int_equal(tern_epoll_wait(sv, set, got, 2, -1), 0);
        struct pollfd pf = {.fd = efd, .events = POLLIN};
        assert_int_equal(poll(&pf, 1, 0), 0);
        char msg[32];
        int len = snprintf(msg, sizeof(msg), "ping %d", cycle);
        assert_int_equal(tern_send(c, cl, msg, (size_t)len, 0), len);
        struct recv_want w = {.s = sv, .fd = srv};
        owned_poll_until(sv, recv_done, &w, "the ping");
        /* Level: the data is read, the descriptor is quiet again. */
        assert_int_equal(poll(&pf, 1, 0), 0);
        while (w.got < len)
            owned_poll_until(sv, recv_done, &w, "the rest of the ping");
        assert_memory_equal(w.buf, msg, (size_t)len);
        assert_int_equal(tern_send(sv, srv, "pong", 4, 0), 4);
        char in[4];
        assert_int_equal(tern_recv(c, cl, in, 4, MSG_WAITALL), 4); /* stack 0 still threaded */
        assert_memory_equal(in, "pong", 4);
        /* A new connection, accepted by polling. */
        struct connector co = {.s = c, .fd = tern_socket(c, AF_INET, SOCK_STREAM, 0)};
        race_timeo(c, co.fd, SO_SNDTIMEO, 10000);
        pthread_t ct;
        assert_int_equal(pthread_create(&ct, NULL, connect_main, &co), 0);
        struct accept_want aw = {.s = sv, .fd = l};
        owned_poll_until(sv, accept_done, &aw, "an accept");
        pthread_join(ct, NULL);
        assert_int_equal(co.rc, 0);
        tern_close(c, co.fd);
        tern_close(sv, aw.got);

        /* Threaded again: a blocking recv waits and is woken. */
        assert_int_equal(tern_stack_start(sv), 0);
        assert_true(tern_stack_started(sv));
        struct blocked r = {.s = sv, .k = K_RECV, .fd = srv};
        pthread_t rt;
        start_blocked(&r, &rt);
        usleep(race_rng_below(&rng, 5000));
        assert_int_equal(tern_send(c, cl, "x", 1, 0), 1);
        pthread_join(rt, NULL);
        assert_int_equal(r.ret, 1);
        assert_int_equal(poll(&pf, 1, 0), 0);
        race_wd_disarm();
    }
    tern_close(sv, set);
    tern_close(c, cl);
    tern_close(sv, srv);
    tern_close(sv, l);
    race_net_down(&net);
}

int main(void)
{
    race_fill(big, sizeof(big), 3);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_free_a_stack_under_blocked_calls_and_queued_work),
        cmocka_unit_test(test_stop_then_owned_mode_then_start_again),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    race_wd_end();
    return rc;
}
