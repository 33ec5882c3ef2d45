/* Many threads binding, connecting, accepting and closing at once, on one
 * started stack and across two joined by a tern_pipe (issue 4):
 *
 * - SO_REUSEPORT groups, TCP and UDP at the same time, where one thread
 *   keeps binding new members and closing old ones while clients on
 *   both stacks connect and send: a lookup never reaches a member that
 *   is going away or not listening yet, so every connection completes
 *   with its bytes echoed intact, and no datagram arrives twice or
 *   damaged. Two deterministic cases pin the moments the churn only
 *   hits now and then: a member bound but not yet listening takes no
 *   connection, and a closing member's queue wakes the thread blocked
 *   in accept on the member that inherits it.
 * - A free-for-all: threads sharing tables of handles create, bind,
 *   listen, connect, accept, send, receive, shut down and close each
 *   other's sockets at random; every call returns success or one of the
 *   POSIX errors its situation allows, nothing hangs, and the stacks are
 *   freed clean afterwards (tern_stack_free checks nothing leaked). */
#include "race.h"

#include <poll.h>

#define TPORT 7400
#define UPORT 7401
#define TIMEO_MS 10000

static struct sockaddr_in any_port(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    return a;
}

static int rp_member(struct tern_stack *s, int type, uint16_t port, bool listen_too)
{
    int fd = tern_socket(s, AF_INET, type, 0);
    assert_true(fd >= 0);
    int one = 1;
    assert_int_equal(tern_setsockopt(s, fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
    struct sockaddr_in a = any_port(port);
    assert_int_equal(tern_bind(s, fd, (struct sockaddr *)&a, sizeof(a)), 0);
    if (listen_too)
        assert_int_equal(tern_listen(s, fd, 64), 0);
    race_timeo(s, fd, SO_RCVTIMEO, TIMEO_MS);
    return fd;
}

/* ---- Deterministic: the moments the churn below only hits by chance ---- */

static void test_a_member_not_listening_yet_takes_no_connection(void **state)
{
    (void)state;
    uint64_t seed = race_seed(4002);
    struct race_net net;
    race_net_up(&net, 2, seed);
    race_wd_arm(30, "connections to a group with a member not listening yet");
    struct tern_stack *sv = net.st[1], *c = net.st[0];
    /* A listens; B has joined the port (SO_REUSEPORT) but not listened:
     * what a thread adding a member looks like between bind and listen. */
    int a = rp_member(sv, SOCK_STREAM, TPORT, true);
    int b = rp_member(sv, SOCK_STREAM, TPORT, false);
    enum { N = 24 };
    int cl[N];
    for (int i = 0; i < N; i++) {
        cl[i] = tern_socket(c, AF_INET, SOCK_STREAM, 0);
        race_timeo(c, cl[i], SO_SNDTIMEO, TIMEO_MS);
        struct sockaddr_in to = race_sin(1, TPORT);
        if (tern_connect(c, cl[i], (struct sockaddr *)&to, sizeof(to)) != 0)
            fail_msg("connection %d (of %d) to a group whose other member is only bound: %s",
                     i, N, strerror(errno));
    }
    for (int i = 0; i < N; i++) {
        int x = tern_accept(sv, a, NULL, NULL);
        assert_true(x >= 0);
        tern_close(sv, x);
    }
    /* The same with SO_REUSEADDR alone: the later bind must not hide
     * the listener (Linux hands SYNs to listeners only). */
    int p = tern_socket(sv, AF_INET, SOCK_STREAM, 0), q = tern_socket(sv, AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in pa = any_port(TPORT + 10);
    for (int k = 0; k < 2; k++) {
        int fd = k ? q : p;
        assert_int_equal(tern_setsockopt(sv, fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
        assert_int_equal(tern_bind(sv, fd, (struct sockaddr *)&pa, sizeof(pa)), 0);
    }
    assert_int_equal(tern_listen(sv, p, 8), 0);
    int d = tern_socket(c, AF_INET, SOCK_STREAM, 0);
    race_timeo(c, d, SO_SNDTIMEO, TIMEO_MS);
    struct sockaddr_in to = race_sin(1, TPORT + 10);
    if (tern_connect(c, d, (struct sockaddr *)&to, sizeof(to)) != 0)
        fail_msg("connection to a listener beside a later bound socket: %s", strerror(errno));
    race_wd_disarm();
    for (int i = 0; i < N; i++)
        tern_close(c, cl[i]);
    tern_close(c, d);
    tern_close(sv, p);
    tern_close(sv, q);
    tern_close(sv, a);
    tern_close(sv, b);
    race_net_down(&net);
}

struct acceptor {
    struct tern_stack *s;
    int fd;
    _Atomic int entered;
    int got[16];
    int n, want, err;
};

static void *accept_some(void *arg)
{
    struct acceptor *x = arg;
    atomic_store(&x->entered, 1);
    while (x->n < x->want) {
        int c = tern_accept(x->s, x->fd, NULL, NULL);
        if (c < 0) {
            x->err = errno;
            return NULL;
        }
        x->got[x->n++] = c;
    }
    return NULL;
}

static void test_a_closing_member_wakes_the_acceptor_of_its_heir(void **state)
{
    (void)state;
    uint64_t seed = race_seed(4002);
    struct race_net net;
    race_net_up(&net, 2, seed);
    race_wd_arm(40, "a closing member's queue and its heir's blocked acceptor");
    struct tern_stack *sv = net.st[1], *c = net.st[0];
    int a = rp_member(sv, SOCK_STREAM, TPORT, true);
    enum { N = 6 };
    int cl[N];
    for (int i = 0; i < N; i++) {
        cl[i] = tern_socket(c, AF_INET, SOCK_STREAM, 0);
        race_timeo(c, cl[i], SO_SNDTIMEO, TIMEO_MS);
        struct sockaddr_in to = race_sin(1, TPORT);
        assert_int_equal(tern_connect(c, cl[i], (struct sockaddr *)&to, sizeof(to)), 0);
    }
    /* All N wait on A's queue. B joins; a thread waits in accept on B. */
    int b = rp_member(sv, SOCK_STREAM, TPORT, true);
    struct acceptor x = {.s = sv, .fd = b, .want = N};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, accept_some, &x), 0);
    while (!atomic_load(&x.entered))
        usleep(100);
    usleep(20000);
    /* A goes: its queue moves to B, and B's acceptor must hear of it
     * (its own timeout is 10 s: a missed wake-up fails with EAGAIN). */
    assert_int_equal(tern_close(sv, a), 0);
    pthread_join(t, NULL);
    if (x.n != N)
        fail_msg("B's acceptor took %d of the %d connections A handed over, then: %s", x.n, N,
                 strerror(x.err));
    race_wd_disarm();
    for (int i = 0; i < N; i++) {
        tern_close(sv, x.got[i]);
        tern_close(c, cl[i]);
    }
    tern_close(sv, b);
    race_net_down(&net);
}

/* ---- Churn: members come and go under load ---- */

#define MAX_MEMBERS 6
#define CHURNS 40
#define CLIENTS 4       /* two on each stack */
#define CONNS_PER_CLIENT 25
#define DGRAM_SENDERS 2
#define DGRAMS_PER_SENDER 400

struct churn;

struct member {
    struct churn *ch;
    int fd;
    int type;
    pthread_t t;
    bool used;
};

struct churn {
    struct race_net *net;
    struct tern_stack *sv;
    struct member tcp[MAX_MEMBERS], udp[MAX_MEMBERS];
    _Atomic int served, accept_errors, serve_errors, bad_dgrams, dup_dgrams, dgrams;
    _Atomic int recv_errors;
    _Atomic int client_fail, client_ok;
    _Atomic int last_client_errno;
    _Atomic unsigned char seen[DGRAM_SENDERS][DGRAMS_PER_SENDER];
    _Atomic int clients_done;
};

/* Serve one echo: an 8-byte header (stream id, length), the bytes, back. */
static bool serve(struct tern_stack *s, int c)
{
    race_timeo(s, c, SO_RCVTIMEO, TIMEO_MS);
    race_timeo(s, c, SO_SNDTIMEO, TIMEO_MS);
    uint32_t hdr[2];
    static _Thread_local uint8_t buf[8192];
    if (tern_recv(s, c, hdr, sizeof(hdr), MSG_WAITALL) != (ssize_t)sizeof(hdr))
        return false;
    if (hdr[1] > sizeof(buf))
        return false;
    if (tern_recv(s, c, buf, hdr[1], MSG_WAITALL) != (ssize_t)hdr[1])
        return false;
    if (!race_check(buf, hdr[1], hdr[0]))
        return false;
    return tern_send(s, c, buf, hdr[1], 0) == (ssize_t)hdr[1];
}

static void *tcp_member_main(void *arg)
{
    struct member *m = arg;
    struct churn *ch = m->ch;
    for (;;) {
        int c = tern_accept(ch->sv, m->fd, NULL, NULL);
        if (c < 0 && errno == EAGAIN)
            continue; /* a quiet spell (SO_RCVTIMEO): wait again */
        if (c < 0) {
            /* The member was closed (EBADF) or shut (EINVAL) under us. */
            if (errno != EBADF && errno != EINVAL)
                atomic_fetch_add(&ch->accept_errors, 1);
            return NULL;
        }
        if (serve(ch->sv, c))
            atomic_fetch_add(&ch->served, 1);
        else
            atomic_fetch_add(&ch->serve_errors, 1);
        tern_close(ch->sv, c);
    }
}

static void *udp_member_main(void *arg)
{
    struct member *m = arg;
    struct churn *ch = m->ch;
    uint8_t buf[600];
    for (;;) {
        ssize_t r = tern_recv(ch->sv, m->fd, buf, sizeof(buf), 0);
        if (r < 0 && errno == EAGAIN)
            continue; /* a quiet spell: wait again */
        if (r < 0) {
            if (errno != EBADF)
                atomic_fetch_add(&ch->recv_errors, 1);
            return NULL;
        }
        uint32_t sender, seq;
        if (r < 8) {
            atomic_fetch_add(&ch->bad_dgrams, 1);
            continue;
        }
        memcpy(&sender, buf, 4);
        memcpy(&seq, buf + 4, 4);
        if (sender >= DGRAM_SENDERS || seq >= DGRAMS_PER_SENDER ||
            !race_check(buf + 8, (size_t)r - 8, sender * 100000 + seq)) {
            atomic_fetch_add(&ch->bad_dgrams, 1);
            continue;
        }
        if (atomic_exchange(&ch->seen[sender][seq], 1))
            atomic_fetch_add(&ch->dup_dgrams, 1);
        atomic_fetch_add(&ch->dgrams, 1);
    }
}

static void member_add(struct churn *ch, struct member *set, int type)
{
    for (int i = 0; i < MAX_MEMBERS; i++) {
        if (set[i].used)
            continue;
        set[i] = (struct member){.ch = ch, .type = type, .used = true};
        set[i].fd = rp_member(ch->sv, type, type == SOCK_STREAM ? TPORT : UPORT,
                                 type == SOCK_STREAM);
        assert_int_equal(pthread_create(&set[i].t, NULL,
                                        type == SOCK_STREAM ? tcp_member_main : udp_member_main,
                                        &set[i]), 0);
        return;
    }
}

static int member_count(const struct member *set)
{
    int n = 0;
    for (int i = 0; i < MAX_MEMBERS; i++)
        n += set[i].used;
    return n;
}

/* Close a member (never the last one), under its blocked thread. */
static void member_drop(struct churn *ch, struct member *set, struct race_rng *rng)
{
    if (member_count(set) < 2)
        return;
    int k;
    do
        k = (int)race_rng_below(rng, MAX_MEMBERS);
    while (!set[k].used);
    assert_int_equal(tern_close(ch->sv, set[k].fd), 0);
    pthread_join(set[k].t, NULL);
    set[k].used = false;
}

struct client {
    struct churn *ch;
    int stack, id;
    uint64_t seed;
};

static void *client_main(void *arg)
{
    struct client *cl = arg;
    struct churn *ch = cl->ch;
    struct tern_stack *s = ch->net->st[cl->stack];
    struct race_rng rng = race_rng_for(cl->seed, 100 + (uint64_t)cl->id);
    uint8_t out[8 + 6000], in[6000];
    for (int i = 0; i < CONNS_PER_CLIENT * race_scale(); i++) {
        uint32_t id = (uint32_t)(cl->id * 1000 + i);
        uint32_t len = 1 + race_rng_below(&rng, 6000);
        uint32_t hdr[2] = {id, len};
        memcpy(out, hdr, sizeof(hdr));
        race_fill(out + 8, len, id);
        int fd = tern_socket(s, AF_INET, SOCK_STREAM, 0);
        race_timeo(s, fd, SO_SNDTIMEO, TIMEO_MS);
        race_timeo(s, fd, SO_RCVTIMEO, TIMEO_MS);
        struct sockaddr_in to = race_sin(1, TPORT);
        bool ok = tern_connect(s, fd, (struct sockaddr *)&to, sizeof(to)) == 0 &&
                  tern_send(s, fd, out, 8 + len, 0) == (ssize_t)(8 + len) &&
                  tern_recv(s, fd, in, len, MSG_WAITALL) == (ssize_t)len &&
                  memcmp(in, out + 8, len) == 0 && tern_recv(s, fd, in, 1, 0) == 0;
        if (ok) {
            atomic_fetch_add(&ch->client_ok, 1);
        } else {
            atomic_fetch_add(&ch->client_fail, 1);
            atomic_store(&ch->last_client_errno, errno);
        }
        tern_close(s, fd);
        usleep(race_rng_below(&rng, 1500));
    }
    atomic_fetch_add(&ch->clients_done, 1);
    return NULL;
}

struct dgram_sender {
    struct churn *ch;
    int stack, id;
};

static void *dgram_main(void *arg)
{
    struct dgram_sender *d = arg;
    struct tern_stack *s = d->ch->net->st[d->stack];
    int fd = tern_socket(s, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = race_sin(1, UPORT);
    uint8_t buf[8 + 300];
    for (uint32_t seq = 0; seq < DGRAMS_PER_SENDER; seq++) {
        uint32_t sender = (uint32_t)d->id;
        size_t len = 1 + seq % 300;
        memcpy(buf, &sender, 4);
        memcpy(buf + 4, &seq, 4);
        race_fill(buf + 8, len, sender * 100000 + seq);
        tern_sendto(s, fd, buf, 8 + len, 0, (struct sockaddr *)&to, sizeof(to));
        usleep(300);
    }
    tern_close(s, fd);
    return NULL;
}

static void test_reuseport_members_come_and_go_under_load(void **state)
{
    (void)state;
    uint64_t seed = race_seed(4002);
    struct race_rng rng = race_rng_for(seed, 3);
    struct race_net net;
    race_net_up(&net, 2, seed);
    static struct churn ch;
    memset(&ch, 0, sizeof(ch));
    ch.net = &net;
    ch.sv = net.st[1];
    race_wd_arm(60 * (unsigned)race_scale(), "reuseport churn under TCP and UDP load");
    member_add(&ch, ch.tcp, SOCK_STREAM);
    member_add(&ch, ch.udp, SOCK_DGRAM);
    struct client cl[CLIENTS];
    pthread_t ct[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        cl[i] = (struct client){.ch = &ch, .stack = i % 2, .id = i, .seed = seed};
        assert_int_equal(pthread_create(&ct[i], NULL, client_main, &cl[i]), 0);
    }
    struct dgram_sender ds[DGRAM_SENDERS];
    pthread_t dt[DGRAM_SENDERS];
    for (int i = 0; i < DGRAM_SENDERS; i++) {
        ds[i] = (struct dgram_sender){.ch = &ch, .stack = i % 2, .id = i};
        assert_int_equal(pthread_create(&dt[i], NULL, dgram_main, &ds[i]), 0);
    }
    /* This thread churns: a new member joins, then an old one goes
     * (never the last), at seeded moments, until the clients are done. */
    int churns = 0;
    while (churns < CHURNS || atomic_load(&ch.clients_done) < CLIENTS) {
        struct member *set = race_rng_below(&rng, 2) ? ch.tcp : ch.udp;
        int type = set == ch.tcp ? SOCK_STREAM : SOCK_DGRAM;
        if (member_count(set) < MAX_MEMBERS)
            member_add(&ch, set, type);
        usleep(race_rng_below(&rng, 3000));
        member_drop(&ch, set, &rng);
        usleep(race_rng_below(&rng, 3000));
        churns++;
        if (churns > 20 * CHURNS)
            break; /* the watchdog would say more */
    }
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(ct[i], NULL);
    for (int i = 0; i < DGRAM_SENDERS; i++)
        pthread_join(dt[i], NULL);
    usleep(50000); /* the last datagrams land */
    for (int i = 0; i < MAX_MEMBERS; i++) {
        struct member *ms[2] = {&ch.tcp[i], &ch.udp[i]};
        for (int k = 0; k < 2; k++) {
            if (!ms[k]->used)
                continue;
            assert_int_equal(tern_close(ch.sv, ms[k]->fd), 0);
            pthread_join(ms[k]->t, NULL);
        }
    }
    race_wd_disarm();
    fprintf(stderr, "churn: %d member changes, %d connections echoed, %d datagrams received\n",
            churns, atomic_load(&ch.client_ok), atomic_load(&ch.dgrams));
    /* Every connection found a listening member and came back intact. */
    if (atomic_load(&ch.client_fail))
        fail_msg("%d of %d connections failed (last: %s)", atomic_load(&ch.client_fail),
                 CLIENTS * CONNS_PER_CLIENT * race_scale(),
                 strerror(atomic_load(&ch.last_client_errno)));
    assert_int_equal(atomic_load(&ch.served), CLIENTS * CONNS_PER_CLIENT * race_scale());
    assert_int_equal(atomic_load(&ch.serve_errors), 0);
    assert_int_equal(atomic_load(&ch.accept_errors), 0);
    /* Datagrams: some may die in the queue of a member that is closed,
     * none may be damaged, duplicated or meet an empty port. */
    assert_int_equal(atomic_load(&ch.recv_errors), 0);
    assert_int_equal(atomic_load(&ch.bad_dgrams), 0);
    assert_int_equal(atomic_load(&ch.dup_dgrams), 0);
    assert_true(atomic_load(&ch.dgrams) > 0);
    assert_int_equal(tern_stack_stop(ch.sv), 0); /* counters are read by one thread */
    assert_int_equal(tern_counter_by_name(ch.sv, "drop.udp.no_port"), 0);
    race_net_down(&net);
}

/* ---- A free-for-all over shared handles ---- */

#define FFA_THREADS 4
#define FFA_OPS 700
#define FFA_SLOTS 24
#define FFA_PORTS 6
#define FFA_PORT0 7500

enum ffa_op { F_LISTENER, F_UDP, F_CONNECT, F_ACCEPT, F_SEND, F_RECV, F_SENDTO, F_SHUTDOWN,
              F_CLOSE, F_POLL, F__N };
static const char *ffa_name[] = {"listener", "udp", "connect", "accept", "send", "recv",
                                 "sendto", "shutdown", "close", "poll"};

struct ffa {
    struct race_net *net;
    _Atomic int slot[RACE_MAX_STACKS][FFA_SLOTS];
    _Atomic int bad;
    _Atomic int calls[F__N], errs[F__N];
    char bad_what[160];
    pthread_mutex_t bad_lock;
};

struct ffa_thread {
    struct ffa *f;
    int id;
    uint64_t seed;
};

static bool allowed(enum ffa_op op, int err)
{
    /* EBADF: another thread closed the handle first; the rest is what
     * each call may meet in a socket's life on Linux. */
    switch (op) {
    case F_LISTENER:
    case F_UDP:
        return err == EADDRINUSE || err == EBADF || err == EINVAL;
    case F_CONNECT:
        return err == ECONNREFUSED || err == EINPROGRESS || err == EBADF || err == ECONNRESET ||
               err == ETIMEDOUT || err == EALREADY || err == EISCONN || err == EADDRNOTAVAIL ||
               err == ECONNABORTED || err == EPIPE;
    case F_ACCEPT:
        return err == EAGAIN || err == EBADF || err == EINVAL || err == EOPNOTSUPP;
    case F_SEND:
        return err == EAGAIN || err == EBADF || err == ENOTCONN || err == EPIPE ||
               err == ECONNRESET || err == EDESTADDRREQ || err == ECONNREFUSED ||
               err == ETIMEDOUT || err == ECONNABORTED;
    case F_RECV:
        return err == EAGAIN || err == EBADF || err == ENOTCONN || err == ECONNRESET ||
               err == ECONNREFUSED || err == ETIMEDOUT || err == ECONNABORTED || err == EPIPE;
    case F_SENDTO:
        return err == EBADF || err == EPIPE || err == ECONNREFUSED || err == EAGAIN ||
               err == ECONNRESET || err == ENOTCONN || err == ETIMEDOUT || err == EISCONN ||
               err == ECONNABORTED;
    case F_SHUTDOWN:
        return err == EBADF || err == ENOTCONN;
    case F_CLOSE:
        return false; /* the closer owns the handle it took out of the table */
    default:
        return false;
    }
}

static void ffa_bad(struct ffa *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ffa_bad(struct ffa *f, const char *fmt, ...)
{
    pthread_mutex_lock(&f->bad_lock);
    if (!atomic_fetch_add(&f->bad, 1)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->bad_what, sizeof(f->bad_what), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&f->bad_lock);
}

static void ffa_result(struct ffa *f, enum ffa_op op, long rc, int err)
{
    atomic_fetch_add(&f->calls[op], 1);
    if (rc >= 0)
        return;
    atomic_fetch_add(&f->errs[op], 1);
    if (!allowed(op, err))
        ffa_bad(f, "%s failed with %s", ffa_name[op], strerror(err));
}

/* Put a new handle in a slot; whatever was there is closed (ours now). */
static void ffa_put(struct ffa *f, int st, int slot, int fd)
{
    int old = atomic_exchange(&f->slot[st][slot], fd);
    if (old >= 0 && tern_close(f->net->st[st], old) != 0)
        ffa_bad(f, "close of a replaced handle: %s", strerror(errno));
}

static int ffa_new(struct ffa *f, int st, int type, int slot)
{
    struct tern_stack *s = f->net->st[st];
    int fd = tern_socket(s, AF_INET, type, 0);
    if (fd < 0) {
        ffa_bad(f, "socket: %s", strerror(errno));
        return -1;
    }
    /* Blocking, but never for long. */
    race_timeo(s, fd, SO_RCVTIMEO, 30);
    race_timeo(s, fd, SO_SNDTIMEO, 30);
    ffa_put(f, st, slot, fd);
    return fd;
}

static void *ffa_main(void *arg)
{
    struct ffa_thread *t = arg;
    struct ffa *f = t->f;
    struct race_rng rng = race_rng_for(t->seed, 200 + (uint64_t)t->id);
    char buf[512];
    memset(buf, 'f', sizeof(buf));
    for (int i = 0; i < FFA_OPS * race_scale() && !atomic_load(&f->bad); i++) {
        int st = (int)race_rng_below(&rng, 2);
        struct tern_stack *s = f->net->st[st];
        int slot = (int)race_rng_below(&rng, FFA_SLOTS);
        int to_stack = (int)race_rng_below(&rng, 2);
        uint16_t port = (uint16_t)(FFA_PORT0 + race_rng_below(&rng, FFA_PORTS));
        struct sockaddr_in to = race_sin(to_stack, port), here = race_sin(st, port);
        if (race_rng_below(&rng, 3) == 0)
            here = any_port(port);
        enum ffa_op op = (enum ffa_op)race_rng_below(&rng, F__N);
        int fd = atomic_load(&f->slot[st][slot]);
        long rc = 0;
        int one = 1;
        switch (op) {
        case F_LISTENER:
        case F_UDP:
            fd = ffa_new(f, st, op == F_LISTENER ? SOCK_STREAM : SOCK_DGRAM, slot);
            if (fd < 0)
                break;
            if (race_rng_below(&rng, 2))
                tern_setsockopt(s, fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (race_rng_below(&rng, 2))
                tern_setsockopt(s, fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
            rc = tern_bind(s, fd, (struct sockaddr *)&here, sizeof(here));
            if (rc == 0 && op == F_LISTENER)
                rc = tern_listen(s, fd, 8);
            break;
        case F_CONNECT:
            fd = ffa_new(f, st, SOCK_STREAM, slot);
            if (fd < 0)
                break;
            rc = tern_connect(s, fd, (struct sockaddr *)&to, sizeof(to));
            break;
        case F_ACCEPT: {
            /* The first listener from a random slot on (any handle if
             * none: then EBADF, EINVAL or EOPNOTSUPP). */
            for (int k = 0; k < FFA_SLOTS; k++) {
                int cand = atomic_load(&f->slot[st][(slot + k) % FFA_SLOTS]);
                int acc = 0;
                socklen_t al = sizeof(acc);
                if (tern_getsockopt(s, cand, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 && acc) {
                    fd = cand;
                    break;
                }
            }
            rc = tern_accept(s, fd, NULL, NULL);
            if (rc >= 0) {
                race_timeo(s, (int)rc, SO_RCVTIMEO, 30);
                race_timeo(s, (int)rc, SO_SNDTIMEO, 30);
                ffa_put(f, st, (int)race_rng_below(&rng, FFA_SLOTS), (int)rc);
            }
            break;
        }
        case F_SEND:
            rc = tern_send(s, fd, buf, 1 + race_rng_below(&rng, sizeof(buf)), 0);
            break;
        case F_RECV:
            rc = tern_recv(s, fd, buf, sizeof(buf), 0);
            break;
        case F_SENDTO:
            rc = tern_sendto(s, fd, buf, 64, 0, (struct sockaddr *)&to, sizeof(to));
            break;
        case F_SHUTDOWN: {
            int hows[3] = {SHUT_RD, SHUT_WR, SHUT_RDWR};
            rc = tern_shutdown(s, fd, hows[race_rng_below(&rng, 3)]);
            break;
        }
        case F_CLOSE:
            fd = atomic_exchange(&f->slot[st][slot], -1);
            rc = fd >= 0 ? tern_close(s, fd) : 0;
            break;
        default: {
            struct pollfd p[3];
            for (int k = 0; k < 3; k++)
                p[k] = (struct pollfd){
                    .fd = atomic_load(&f->slot[st][race_rng_below(&rng, FFA_SLOTS)]),
                    .events = POLLIN | POLLOUT};
            rc = tern_poll(s, p, 3, 10);
            int reported = 0;
            for (int k = 0; k < 3; k++)
                reported += p[k].revents != 0;
            if (rc >= 0 && reported != rc)
                ffa_bad(f, "poll returned %ld with %d entries reported", rc, reported);
            break;
        }
        }
        /* An empty slot (-1) is a caller's EBADF, as with any handle. */
        ffa_result(f, op, rc, rc < 0 ? errno : 0);
    }
    return NULL;
}

static void test_free_for_all_on_shared_handles(void **state)
{
    (void)state;
    uint64_t seed = race_seed(4002);
    struct race_net net;
    race_net_up(&net, 2, seed);
    static struct ffa f;
    memset(&f, 0, sizeof(f));
    pthread_mutex_init(&f.bad_lock, NULL);
    f.net = &net;
    for (int st = 0; st < 2; st++)
        for (int i = 0; i < FFA_SLOTS; i++)
            atomic_store(&f.slot[st][i], -1);
    race_wd_arm(60 * (unsigned)race_scale(), "free-for-all on shared handles");
    struct ffa_thread th[FFA_THREADS];
    pthread_t t[FFA_THREADS];
    for (int i = 0; i < FFA_THREADS; i++) {
        th[i] = (struct ffa_thread){.f = &f, .id = i, .seed = seed};
        assert_int_equal(pthread_create(&t[i], NULL, ffa_main, &th[i]), 0);
    }
    for (int i = 0; i < FFA_THREADS; i++)
        pthread_join(t[i], NULL);
    for (int st = 0; st < 2; st++)
        for (int i = 0; i < FFA_SLOTS; i++) {
            int fd = atomic_exchange(&f.slot[st][i], -1);
            if (fd >= 0 && tern_close(net.st[st], fd) != 0)
                ffa_bad(&f, "final close: %s", strerror(errno));
        }
    race_wd_disarm();
    fprintf(stderr, "free-for-all:");
    for (int op = 0; op < F__N; op++)
        fprintf(stderr, " %s %d/%d", ffa_name[op], atomic_load(&f.calls[op]) - atomic_load(&f.errs[op]),
                atomic_load(&f.calls[op]));
    fprintf(stderr, " (succeeded/made)\n");
    if (atomic_load(&f.bad))
        fail_msg("%d unexpected results; the first: %s", atomic_load(&f.bad), f.bad_what);
    /* Every kind of call got through at least sometimes. */
    for (int op = 0; op < F__N; op++)
        if (atomic_load(&f.calls[op]) == atomic_load(&f.errs[op]))
            fail_msg("no %s ever succeeded", ffa_name[op]);
    race_wd_arm(30, "freeing the stacks after the free-for-all");
    race_net_down(&net);
    race_wd_disarm();
    pthread_mutex_destroy(&f.bad_lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_member_not_listening_yet_takes_no_connection),
        cmocka_unit_test(test_a_closing_member_wakes_the_acceptor_of_its_heir),
        cmocka_unit_test(test_reuseport_members_come_and_go_under_load),
        cmocka_unit_test(test_free_for_all_on_shared_handles),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    race_wd_end();
    return rc;
}
