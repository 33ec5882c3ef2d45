/* Readiness from several threads while sockets come and go (issue 4):
 * tern_socket_pollfd descriptors in kernel epoll sets, tern_epoll sets
 * shared by threads that wait on them while others add, modify, delete
 * and close members, and tern_poll, all at once on one stack fed from
 * another. What must hold whatever the interleaving:
 *
 * - no wake-up is lost: a socket that receives becomes readable through
 *   each of the three (a bounded wait fails the case);
 * - level triggering is exact: once its owner has read everything and
 *   nothing more is coming, a socket's descriptor is not readable and no
 *   set reports it;
 * - a set reports only members it has (never one closed or deleted
 *   before the wait began) and forgets a member that is closed;
 * - nothing is freed under a waiter (ASan, TSan).
 *
 * And the stack's observers (tern_stack_live, counters, the socket and
 * timer tables, next deadline) may be called from any thread while it
 * runs. */
#include "race.h"

#include <poll.h>
#include <sys/epoll.h>

#define WORKERS 3
#define ROUNDS 40
#define WAITERS 2
#define DGRAMS 4
#define PORT0 8000
#define WAIT_MS 8000

struct shared {
    struct race_net *net;
    int set;                 /* a tern_epoll set on stack 1, shared by everyone */
    int set_fd;              /* its pollable descriptor */
    _Atomic int stop;
    _Atomic int bad;
    _Atomic long reported, waits;
    /* Each (worker, round) socket: 0 not added yet, 1 a member (set
     * before it is added), 2 gone (set after its close returned). */
    _Atomic unsigned char member[WORKERS][ROUNDS];
    char why[200];
    pthread_mutex_t why_lock;
};

static void bad(struct shared *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(struct shared *sh, const char *fmt, ...)
{
    pthread_mutex_lock(&sh->why_lock);
    if (!atomic_fetch_add(&sh->bad, 1)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sh->why, sizeof(sh->why), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&sh->why_lock);
}

static uint64_t tag(int w, int r) { return ((uint64_t)w << 32) | (uint32_t)r; }

/* Threads waiting on the shared set. A member may be closed by its owner
 * while a wait runs, so a report may name a member gone since; but never
 * one gone before the wait began, nor one never added. */
static void *waiter_main(void *arg)
{
    struct shared *sh = arg;
    struct tern_stack *s = sh->net->st[1];
    while (!atomic_load(&sh->stop)) {
        unsigned char before[WORKERS][ROUNDS];
        for (int w = 0; w < WORKERS; w++)
            for (int r = 0; r < ROUNDS; r++)
                before[w][r] = atomic_load(&sh->member[w][r]);
        struct epoll_event ev[8];
        int n = tern_epoll_wait(s, sh->set, ev, 8, 20);
        atomic_fetch_add(&sh->waits, 1);
        if (n < 0) {
            bad(sh, "tern_epoll_wait on the shared set: %s", strerror(errno));
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            int w = (int)(ev[i].data.u64 >> 32), r = (int)(uint32_t)ev[i].data.u64;
            if (w >= WORKERS || r >= ROUNDS || !(ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                bad(sh, "the shared set reported %#llx events %#x",
                    (unsigned long long)ev[i].data.u64, ev[i].events);
            else if (before[w][r] == 2 || atomic_load(&sh->member[w][r]) == 0)
                bad(sh, "the shared set reported worker %d round %d, %s", w, r,
                    before[w][r] == 2 ? "closed before the wait" : "never added");
            atomic_fetch_add(&sh->reported, 1);
        }
        if (n > 0)
            usleep(200); /* level: the owner has not read yet; let it */
    }
    return NULL;
}

/* A thread that waits on the set's own descriptor, in a kernel poll. */
static void *set_fd_main(void *arg)
{
    struct shared *sh = arg;
    while (!atomic_load(&sh->stop)) {
        struct pollfd p = {.fd = sh->set_fd, .events = POLLIN};
        if (poll(&p, 1, 20) < 0)
            bad(sh, "poll on the set's descriptor: %s", strerror(errno));
    }
    return NULL;
}

struct worker {
    struct shared *sh;
    int id;
    uint64_t seed;
};

/* Wait until fd's socket is readable, by the means this round uses. */
static bool wait_readable(struct shared *sh, int how, int fd, int pfd, int kep, int priv)
{
    struct tern_stack *s = sh->net->st[1];
    switch (how) {
    case 0: { /* its pollable descriptor in a kernel epoll set */
        struct epoll_event ev;
        return epoll_wait(kep, &ev, 1, WAIT_MS) == 1 && ev.data.fd == pfd;
    }
    case 1: { /* a private tern_epoll set */
        struct epoll_event ev;
        return tern_epoll_wait(s, priv, &ev, 1, WAIT_MS) == 1 && (ev.events & EPOLLIN);
    }
    default: { /* tern_poll */
        struct pollfd p = {.fd = fd, .events = POLLIN};
        return tern_poll(s, &p, 1, WAIT_MS) == 1 && (p.revents & POLLIN);
    }
    }
}

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    struct shared *sh = wk->sh;
    struct tern_stack *s = sh->net->st[1], *src = sh->net->st[0];
    struct race_rng rng = race_rng_for(wk->seed, 300 + (uint64_t)wk->id);
    int tx = tern_socket(src, AF_INET, SOCK_DGRAM, 0);
    int kep = epoll_create1(EPOLL_CLOEXEC);
    for (int r = 0; r < ROUNDS && !atomic_load(&sh->bad); r++) {
        uint16_t port = (uint16_t)(PORT0 + wk->id * ROUNDS + r);
        int fd = tern_socket(s, AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = race_sin(1, port);
        if (fd < 0 || tern_bind(s, fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
            bad(sh, "worker %d: socket or bind: %s", wk->id, strerror(errno));
            break;
        }
        /* Its pollable descriptor, asked twice (the same one comes back). */
        int pfd = tern_socket_pollfd(s, fd, POLLIN);
        if (pfd < 0 || tern_socket_pollfd(s, fd, POLLIN) != pfd) {
            bad(sh, "worker %d: tern_socket_pollfd: %s", wk->id, strerror(errno));
            break;
        }
        struct epoll_event kev = {.events = EPOLLIN, .data.fd = pfd};
        epoll_ctl(kep, EPOLL_CTL_ADD, pfd, &kev);
        /* Into the shared set, level or edge triggered or one-shot. */
        uint32_t flags[3] = {0, EPOLLET, EPOLLONESHOT};
        struct epoll_event sev = {.events = EPOLLIN | flags[race_rng_below(&rng, 3)],
                                  .data.u64 = tag(wk->id, r)};
        atomic_store(&sh->member[wk->id][r], 1);
        if (tern_epoll_ctl(s, sh->set, EPOLL_CTL_ADD, fd, &sev) != 0)
            bad(sh, "worker %d: adding to the shared set: %s", wk->id, strerror(errno));
        int priv = tern_epoll_create(s);
        struct epoll_event pev = {.events = EPOLLIN};
        tern_epoll_ctl(s, priv, EPOLL_CTL_ADD, fd, &pev);
        /* Nothing yet: not readable. */
        struct pollfd pp = {.fd = pfd, .events = POLLIN};
        if (poll(&pp, 1, 0) != 0)
            bad(sh, "worker %d round %d: a new socket's descriptor is readable", wk->id, r);
        int how = (int)race_rng_below(&rng, 3);
        for (int k = 0; k < DGRAMS; k++) {
            char d[16];
            int len = snprintf(d, sizeof(d), "%d.%d.%d", wk->id, r, k);
            tern_sendto(src, tx, d, (size_t)len, 0, (struct sockaddr *)&a, sizeof(a));
        }
        int got = 0;
        for (int tries = 0; got < DGRAMS && tries < 4 * DGRAMS; tries++) {
            if (!wait_readable(sh, how, fd, pfd, kep, priv)) {
                bad(sh, "worker %d round %d: readable not seen after %d of %d datagrams (by %s)",
                    wk->id, r, got, DGRAMS, how == 0 ? "pollfd" : how == 1 ? "tern_epoll" : "tern_poll");
                break;
            }
            char b[32];
            while (tern_recv(s, fd, b, sizeof(b), MSG_DONTWAIT) > 0)
                got++;
            if (how == 1 && got < DGRAMS && race_rng_below(&rng, 2)) {
                /* Re-arm with MOD, as a one-shot user would. */
                tern_epoll_ctl(s, priv, EPOLL_CTL_MOD, fd, &pev);
            }
        }
        if (got != DGRAMS && !atomic_load(&sh->bad))
            bad(sh, "worker %d round %d: %d of %d datagrams", wk->id, r, got, DGRAMS);
        /* All read, nothing more coming: quiet everywhere (level). */
        if (poll(&pp, 1, 0) != 0)
            bad(sh, "worker %d round %d: descriptor readable with nothing to read", wk->id, r);
        struct epoll_event e;
        if (tern_epoll_wait(s, priv, &e, 1, 0) != 0)
            bad(sh, "worker %d round %d: private set reports a drained socket", wk->id, r);
        /* Leave the shared set by DEL, or by close (sometimes with a
         * datagram unread, so a waiter may be reporting it right now). */
        switch (race_rng_below(&rng, 3)) {
        case 0:
            tern_epoll_ctl(s, sh->set, EPOLL_CTL_DEL, fd, NULL);
            break;
        case 1: {
            tern_sendto(src, tx, "late", 4, 0, (struct sockaddr *)&a, sizeof(a));
            struct pollfd lp = {.fd = fd, .events = POLLIN};
            tern_poll(s, &lp, 1, WAIT_MS);
            break;
        }
        default:
            break;
        }
        epoll_ctl(kep, EPOLL_CTL_DEL, pfd, NULL);
        if (race_rng_below(&rng, 2))
            tern_close(s, priv); /* the set first, or the socket first */
        if (tern_close(s, fd) != 0)
            bad(sh, "worker %d: close: %s", wk->id, strerror(errno));
        tern_close(s, priv); /* EBADF if it went first */
        atomic_store(&sh->member[wk->id][r], 2);
        usleep(race_rng_below(&rng, 2000));
    }
    close(kep);
    tern_close(src, tx);
    return NULL;
}

static void test_pollfds_and_epoll_sets_while_sockets_come_and_go(void **state)
{
    (void)state;
    uint64_t seed = race_seed(4004);
    struct race_net net;
    race_net_up(&net, 2, seed);
    static struct shared sh;
    memset(&sh, 0, sizeof(sh));
    pthread_mutex_init(&sh.why_lock, NULL);
    sh.net = &net;
    sh.set = tern_epoll_create(net.st[1]);
    assert_true(sh.set >= 0);
    sh.set_fd = tern_epoll_pollfd(net.st[1], sh.set);
    assert_true(sh.set_fd >= 0);
    race_wd_arm(60, "pollfds and epoll sets while sockets come and go");
    pthread_t wt[WAITERS + 1], kt[WORKERS];
    for (int i = 0; i < WAITERS; i++)
        assert_int_equal(pthread_create(&wt[i], NULL, waiter_main, &sh), 0);
    assert_int_equal(pthread_create(&wt[WAITERS], NULL, set_fd_main, &sh), 0);
    struct worker wk[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        wk[i] = (struct worker){.sh = &sh, .id = i, .seed = seed};
        assert_int_equal(pthread_create(&kt[i], NULL, worker_main, &wk[i]), 0);
    }
    for (int i = 0; i < WORKERS; i++)
        pthread_join(kt[i], NULL);
    atomic_store(&sh.stop, 1);
    for (int i = 0; i <= WAITERS; i++)
        pthread_join(wt[i], NULL);
    race_wd_disarm();
    fprintf(stderr, "readiness: %ld events reported over %ld waits on the shared set\n",
            atomic_load(&sh.reported), atomic_load(&sh.waits));
    if (atomic_load(&sh.bad))
        fail_msg("%d wrong results; the first: %s", atomic_load(&sh.bad), sh.why);
    assert_true(atomic_load(&sh.reported) > 0);
    /* Every member is gone: the set is empty and quiet. */
    struct epoll_event e;
    assert_int_equal(tern_epoll_wait(net.st[1], sh.set, &e, 1, 0), 0);
    struct pollfd p = {.fd = sh.set_fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 0);
    assert_int_equal(tern_close(net.st[1], sh.set), 0);
    race_net_down(&net);
    pthread_mutex_destroy(&sh.why_lock);
}

/* ---- A call woken by data leaves nothing readable behind ---- */

struct reader {
    struct tern_stack *s;
    int fd;
    _Atomic int entered;
    ssize_t ret;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    char b[64];
    atomic_store(&r->entered, 1);
    r->ret = tern_recv(r->s, r->fd, b, sizeof(b), 0);
    return NULL;
}

static void test_a_woken_reader_leaves_its_descriptors_quiet(void **state)
{
    (void)state;
    uint64_t seed = race_seed(4004);
    struct race_rng rng = race_rng_for(seed, 5);
    struct race_net net;
    race_net_up(&net, 2, seed);
    struct tern_stack *s = net.st[1];
    int fd = tern_socket(s, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = race_sin(1, PORT0);
    assert_int_equal(tern_bind(s, fd, (struct sockaddr *)&a, sizeof(a)), 0);
    race_timeo(s, fd, SO_RCVTIMEO, WAIT_MS);
    int pfd = tern_socket_pollfd(s, fd, POLLIN);
    int set = tern_epoll_create(s);
    struct epoll_event ev = {.events = EPOLLIN};
    assert_int_equal(tern_epoll_ctl(s, set, EPOLL_CTL_ADD, fd, &ev), 0);
    int set_fd = tern_epoll_pollfd(s, set);
    int tx = tern_socket(net.st[0], AF_INET, SOCK_DGRAM, 0);
    race_wd_arm(30 * (unsigned)race_scale(), "woken readers and their descriptors");
    for (int i = 0; i < 20 * race_scale(); i++) {
        struct reader r = {.s = s, .fd = fd};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, reader_main, &r), 0);
        while (!atomic_load(&r.entered))
            usleep(50);
        usleep(race_rng_below(&rng, 5000)); /* mostly asleep by now */
        assert_int_equal(tern_sendto(net.st[0], tx, "d", 1, 0, (struct sockaddr *)&a, sizeof(a)), 1);
        pthread_join(t, NULL);
        assert_int_equal(r.ret, 1);
        /* The reader took the only datagram: nothing may say readable. */
        struct pollfd p[2] = {{.fd = pfd, .events = POLLIN}, {.fd = set_fd, .events = POLLIN}};
        if (poll(p, 2, 0) != 0)
            fail_msg("round %d: readable after the woken reader emptied the socket "
                     "(pollfd %#x, set %#x)", i, (unsigned)p[0].revents, (unsigned)p[1].revents);
        struct epoll_event got;
        assert_int_equal(tern_epoll_wait(s, set, &got, 1, 0), 0);
    }
    race_wd_disarm();
    tern_close(net.st[0], tx);
    tern_close(s, set);
    tern_close(s, fd);
    race_net_down(&net);
}

/* ---- A closed socket's descriptor leaves the kernel's sets at once ---- */

/* An event loop registers a socket's pollfd with a pointer to its own
 * connection object, closes the socket and frees the object, as it does
 * with kernel sockets, whose close takes them out of every epoll set. A
 * TCP socket lives on after close (its FIN to be acknowledged); its
 * pollfd must not, or the loop gets events for the freed object. */
static void test_a_closed_sockets_pollfd_leaves_kernel_epoll_sets(void **state)
{
    (void)state;
    uint64_t seed = race_seed(4004);
    struct race_net net;
    race_net_up(&net, 2, seed);
    race_wd_arm(30, "a closed socket's pollfd in a kernel epoll set");
    struct tern_stack *c = net.st[0], *sv = net.st[1];
    int l = race_listener(sv, 1, 8600, false, 4);
    race_timeo(sv, l, SO_RCVTIMEO, 5000);
    int cl = tern_socket(c, AF_INET, SOCK_STREAM, 0);
    race_timeo(c, cl, SO_SNDTIMEO, 5000);
    race_timeo(c, cl, SO_RCVTIMEO, 5000);
    struct sockaddr_in a = race_sin(1, 8600);
    assert_int_equal(tern_connect(c, cl, (struct sockaddr *)&a, sizeof(a)), 0);
    int srv = tern_accept(sv, l, NULL, NULL);
    assert_true(srv >= 0);
    int pfd = tern_socket_pollfd(c, cl, POLLIN);
    assert_true(pfd >= 0);
    int kep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0xfeed};
    assert_int_equal(epoll_ctl(kep, EPOLL_CTL_ADD, pfd, &ev), 0);
    /* The server says goodbye, then its stack stops answering (owned,
     * nobody polls): the client's FIN will wait for an ACK. */
    assert_int_equal(tern_shutdown(sv, srv, SHUT_WR), 0);
    struct epoll_event got;
    assert_int_equal(epoll_wait(kep, &got, 1, 5000), 1); /* readable: EOF */
    assert_int_equal(tern_stack_stop(sv), 0);
    assert_int_equal(tern_close(c, cl), 0);
    /* The connection goes on (LAST_ACK); its descriptor is gone. */
    if (epoll_wait(kep, &got, 1, 0) != 0)
        fail_msg("the pollfd of a closed socket still reports events (%#llx)",
                 (unsigned long long)got.data.u64);
    close(kep);
    race_wd_disarm();
    race_net_down(&net);
}

/* ---- Observers on a running stack ---- */

struct observer {
    struct tern_stack *s;
    _Atomic int *stop;
    _Atomic long looks;
    bool went_back;
};

static void *observer_main(void *arg)
{
    struct observer *o = arg;
    FILE *null = fopen("/dev/null", "w");
    long c_rx = tern_counter_find("link.rx_frames");
    uint64_t last_rx = 0;
    while (!atomic_load(o->stop)) {
        struct tern_live live;
        tern_stack_live(o->s, &live);
        uint64_t rx = tern_counter_get(o->s, (size_t)c_rx);
        if (rx < last_rx)
            o->went_back = true; /* a counter never goes back */
        last_rx = rx;
        tern_counter_by_name(o->s, "drop.udp.no_port");
        tern_stack_next_deadline(o->s);
        tern_stack_now(o->s);
        tern_sockets_dump(o->s, null);
        tern_timers_dump(o->s, null);
        tern_counters_dump(o->s, null, true);
        o->looks++;
        usleep(500);
    }
    fclose(null);
    return NULL;
}

static void test_observing_a_running_stack(void **state)
{
    (void)state;
    uint64_t seed = race_seed(4004);
    struct race_net net;
    race_net_up(&net, 2, seed);
    race_wd_arm(60, "observing a running stack");
    _Atomic int stop = 0;
    struct observer o[2] = {{.s = net.st[0], .stop = &stop}, {.s = net.st[1], .stop = &stop}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, observer_main, &o[i]), 0);
    /* Both observers look before the traffic starts (on a loaded machine
     * a new thread may not run before the traffic is over, and then it
     * would have observed nothing), and go on looking during it. */
    for (int i = 0; i < 2; i++)
        while (atomic_load(&o[i].looks) == 0)
            usleep(100); /* bounded by the watchdog */
    int l = race_listener(net.st[1], 1, 8500, false, 16);
    race_timeo(net.st[1], l, SO_RCVTIMEO, 5000);
    static uint8_t buf[20000];
    for (int i = 0; i < 30; i++) {
        int c = tern_socket(net.st[0], AF_INET, SOCK_STREAM, 0);
        race_timeo(net.st[0], c, SO_SNDTIMEO, 5000);
        struct sockaddr_in a = race_sin(1, 8500);
        assert_int_equal(tern_connect(net.st[0], c, (struct sockaddr *)&a, sizeof(a)), 0);
        int sv = tern_accept(net.st[1], l, NULL, NULL);
        assert_true(sv >= 0);
        race_timeo(net.st[1], sv, SO_RCVTIMEO, 5000);
        assert_int_equal(tern_send(net.st[0], c, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
        assert_int_equal(tern_recv(net.st[1], sv, buf, sizeof(buf), MSG_WAITALL),
                         (ssize_t)sizeof(buf));
        tern_close(net.st[0], c);
        tern_close(net.st[1], sv);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_true(o[i].looks > 0);
        assert_false(o[i].went_back);
    }
    race_wd_disarm();
    tern_close(net.st[1], l);
    race_net_down(&net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pollfds_and_epoll_sets_while_sockets_come_and_go),
        cmocka_unit_test(test_a_woken_reader_leaves_its_descriptors_quiet),
        cmocka_unit_test(test_a_closed_sockets_pollfd_leaves_kernel_epoll_sets),
        cmocka_unit_test(test_observing_a_running_stack),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    race_wd_end();
    return rc;
}
