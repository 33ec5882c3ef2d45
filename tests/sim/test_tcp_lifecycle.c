/* The lifecycle matrix of issue 3. Two Tern stacks on the wire, one
 * connection; the side under test is the client or the server. Every
 * ordering of the events
 *
 *   peer FIN (the peer's shutdown(SHUT_WR)), peer RST (the peer's close
 *   with SO_LINGER 0), close, shutdown(SHUT_WR), accept (server only),
 *   timer expiry (70 s: TIME_WAIT and the orphaned FIN_WAIT_2 timeout),
 *   SO_LINGER 0
 *
 * is generated (every subset in every order, less the orders that cannot
 * happen: the peer sending a FIN after its RST, calls on a handle before
 * accept gave it or after close took it, accept after the listener
 * closed), with and without a 10-byte request from the peer first.
 *
 * The expected outcome comes from a model of both endpoints written once
 * below (RFC 9293 transitions, and Linux's choices where Tern follows
 * them): after each step it says what every call returns, what a reader
 * of each open handle gets (data, EOF, which errno), what a writer gets
 * once its side is shut, each handle's TCP_INFO state, and how many
 * sockets and TIME_WAIT connections each stack holds. At the end every
 * handle is closed and time runs out: no socket, packet or timer may be
 * left (sim_finish), and the lifecycle asserts abort on a double free.
 *
 * The regression tests after it replay the story of issue 3: the peer's
 * FIN arrives before the server closes, and before it accepts. */
#include "testing.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define MS TERN_NS_PER_MS
#define SEC TERN_NS_PER_SEC
#define PORT 4242
#define TIMEWAIT_NS (5 * SEC)
#define WAIT_NS (70 * SEC) /* past TIME_WAIT and the 60 s orphan FIN_WAIT_2 timeout */

enum ev { EV_PEER_FIN, EV_PEER_RST, EV_CLOSE, EV_SHUTDOWN, EV_ACCEPT, EV_WAIT, EV_LINGER0,
          EV_COUNT };

static const char *const EV_NAMES[EV_COUNT] = {
    [EV_PEER_FIN] = "peer-FIN", [EV_PEER_RST] = "peer-RST", [EV_CLOSE] = "close",
    [EV_SHUTDOWN] = "shutdown", [EV_ACCEPT] = "accept", [EV_WAIT] = "wait",
    [EV_LINGER0] = "linger0",
};

/* ---- The model ---- */

/* Where an endpoint rests once the wire is quiet (a step always lets it
 * go quiet: FIN_WAIT_1, CLOSING and LAST_ACK never last between steps,
 * the other end being alive to answer). */
enum mst { M_EST, M_FW2, M_CW, M_TW, M_CLOSED };

struct end {
    int stack;      /* the sim stack it lives in */
    int fd;         /* its handle, when it has one */
    enum mst st;
    bool handle;    /* the application holds it */
    bool queued;    /* on the listener's accept queue */
    bool fin_rcvd;  /* the other's FIN was taken: readers get EOF */
    bool linger0;
    bool tw_unsure; /* aborted in TIME_WAIT: RFC 9293 ABORT deletes it, a
                     * TIME_WAIT record without a socket (as Linux) lives on;
                     * both are right, so the count is not checked */
    int so_error;   /* pending error */
    uint32_t unread;
};

#define LOC 0 /* the side under test */
#define PEER 1

struct model {
    struct end e[2];
    bool server;    /* the side under test is the server */
    bool listener;  /* its listener is open */
};

static bool alive(enum mst st) { return st == M_EST || st == M_FW2 || st == M_CW; }

/* End x sends its FIN (RFC 9293 3.10.4 CLOSE; 3.10.7.4 eighth check at
 * the other end). */
static void m_fin(struct model *m, int x)
{
    struct end *a = &m->e[x], *b = &m->e[!x];
    if (a->st == M_EST) {
        /* The other end is ESTABLISHED: it goes to CLOSE_WAIT and acks,
         * we wait in FIN_WAIT_2. */
        b->st = M_CW;
        b->fin_rcvd = true;
        a->st = M_FW2;
    } else if (a->st == M_CW) {
        /* LAST_ACK: the other end in FIN_WAIT_2 enters TIME_WAIT and
         * acks; if it is gone, its stack answers with a RST, which ends
         * LAST_ACK without an error either (3.10.7.4 second check). */
        if (b->st == M_FW2) {
            b->st = M_TW;
            b->fin_rcvd = true;
        }
        a->st = M_CLOSED;
    }
}

/* End x aborts: a RST if its connection is synchronized and not in
 * TIME_WAIT (3.10.7.4 second check at the other end, with Linux's EPIPE
 * in CLOSE_WAIT; RFC 1337 in TIME_WAIT). */
static void m_rst(struct model *m, int x)
{
    struct end *a = &m->e[x], *b = &m->e[!x];
    if (alive(a->st)) {
        if (b->st == M_EST || b->st == M_FW2) {
            b->st = M_CLOSED;
            b->so_error = ECONNRESET;
        } else if (b->st == M_CW) {
            b->st = M_CLOSED;
            b->so_error = EPIPE;
        }
    }
    if (a->st == M_TW)
        a->tw_unsure = true;
    a->st = M_CLOSED;
}

/* close(): with SO_LINGER 0 or unread data, abort (RFC 9293 3.10.4,
 * RFC 2525 2.17); otherwise our FIN if not sent yet. The connection goes
 * on without the user. */
static void m_close(struct model *m, int x)
{
    struct end *a = &m->e[x];
    if (a->linger0 || a->unread)
        m_rst(m, x);
    else if (a->st == M_EST || a->st == M_CW)
        m_fin(m, x);
    a->handle = false;
    a->unread = 0;
}

/* shutdown(SHUT_WR): ENOTCONN once the connection is closed (Linux). */
static int m_shutdown(struct model *m, int x)
{
    if (m->e[x].st == M_CLOSED)
        return ENOTCONN;
    m_fin(m, x);
    return 0;
}

/* The listener closes before accepting: its child is reset and let go. */
static void m_listener_close(struct model *m)
{
    struct end *a = &m->e[LOC];
    if (a->queued) {
        m_rst(m, LOC);
        a->queued = false;
    }
    m->listener = false;
}

/* Time passes: TIME_WAIT ends (2MSL), and so does an orphaned
 * FIN_WAIT_2 (Linux's tcp_fin_timeout, quietly). */
static void m_wait(struct model *m)
{
    for (int x = 0; x < 2; x++) {
        struct end *a = &m->e[x];
        if (a->st == M_TW || (a->st == M_FW2 && !a->handle))
            a->st = M_CLOSED;
        a->tw_unsure = false;
    }
}

/* ---- Running a scenario against Tern ---- */

struct scenario {
    bool server;
    bool request;
    int n;
    enum ev ev[EV_COUNT];
};

struct run {
    const struct scenario *sc;
    int index, step;
    struct sim sim;
    struct model m;
    int listener;
};

static void describe(const struct run *r)
{
    fprintf(stderr, "scenario %d (%s side%s):", r->index, r->sc->server ? "server" : "client",
            r->sc->request ? ", request first" : "");
    for (int i = 0; i < r->sc->n; i++)
        fprintf(stderr, "%s%s", i == r->step ? " [" : " ", EV_NAMES[r->sc->ev[i]]);
    fprintf(stderr, "%s\n", r->step < r->sc->n ? "]" : "");
}

#define CHECK(r, cond, ...)                                                                \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            describe(r);                                                                   \
            fprintf(stderr, "  " __VA_ARGS__);                                             \
            fprintf(stderr, "\n");                                                         \
            tern_sockets_dump((r)->sim.st[0], stderr);                                     \
            tern_sockets_dump((r)->sim.st[1], stderr);                                     \
            fail();                                                                        \
        }                                                                                  \
    } while (0)

static const char *const SIDE[2] = {"tested side", "peer"};

static struct tern_stack *stk(struct run *r, int x) { return r->sim.st[r->m.e[x].stack]; }

/* A call that should return 0, or -1 with errno `err`. */
static void check_ret(struct run *r, const char *what, int ret, int err)
{
    int e = errno;
    if (err)
        CHECK(r, ret == -1 && e == err, "%s: %d (%s), wanted -1 (%s)", what, ret, strerror(e),
              strerror(err));
    else
        CHECK(r, ret == 0, "%s: %d (%s), wanted 0", what, ret, strerror(e));
}

static void do_close(struct run *r, int x)
{
    struct end *a = &r->m.e[x];
    check_ret(r, "close", tern_close(stk(r, x), a->fd), 0);
    errno = 0;
    check_ret(r, "second close", tern_close(stk(r, x), a->fd), EBADF); /* never twice */
    m_close(&r->m, x);
}

static void set_linger0(struct run *r, int x)
{
    struct linger l0 = {.l_onoff = 1, .l_linger = 0};
    check_ret(r, "SO_LINGER",
              tern_setsockopt(stk(r, x), r->m.e[x].fd, SOL_SOCKET, SO_LINGER, &l0, sizeof(l0)),
              0);
    r->m.e[x].linger0 = true;
}

static void apply(struct run *r, enum ev ev)
{
    struct model *m = &r->m;
    struct end *loc = &m->e[LOC];
    switch (ev) {
    case EV_PEER_FIN: {
        errno = 0;
        int ret = tern_shutdown(stk(r, PEER), m->e[PEER].fd, SHUT_WR);
        check_ret(r, "peer shutdown", ret, m_shutdown(m, PEER));
        break;
    }
    case EV_PEER_RST:
        set_linger0(r, PEER);
        do_close(r, PEER);
        break;
    case EV_CLOSE:
        if (loc->handle) {
            do_close(r, LOC);
        } else {
            /* No handle yet: closing the listener is the server's end. */
            check_ret(r, "listener close", tern_close(r->sim.st[loc->stack], r->listener), 0);
            r->listener = -1;
            m_listener_close(m);
        }
        break;
    case EV_SHUTDOWN: {
        errno = 0;
        int ret = tern_shutdown(stk(r, LOC), loc->fd, SHUT_WR);
        check_ret(r, "shutdown", ret, m_shutdown(m, LOC));
        break;
    }
    case EV_ACCEPT:
        /* Whatever happened to it meanwhile, a queued connection is
         * there to accept (Linux: reset ones too). */
        loc->fd = tern_accept(stk(r, LOC), r->listener, NULL, NULL);
        CHECK(r, loc->fd >= 0, "accept: %s", strerror(errno));
        loc->handle = true;
        loc->queued = false;
        break;
    case EV_LINGER0:
        set_linger0(r, LOC);
        break;
    case EV_WAIT:
        sim_run(&r->sim, WAIT_NS);
        m_wait(m);
        break;
    case EV_COUNT:
        break;
    }
}

static int linux_state(enum mst st)
{
    switch (st) {
    case M_EST: return 1;
    case M_FW2: return 5;
    case M_CW: return 8;
    case M_TW: return 6;
    case M_CLOSED: return 7;
    }
    return -1;
}

/* What the application of end x sees now. */
static void check_end(struct run *r, int x)
{
    struct end *a = &r->m.e[x];
    if (!a->handle)
        return;
    struct tern_stack *s = stk(r, x);
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    check_ret(r, "TCP_INFO", tern_getsockopt(s, a->fd, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
    /* A handle whose connection went to TIME_WAIT may show TIME_WAIT or
     * (once TIME_WAIT keeps no socket, as Linux) CLOSED. */
    CHECK(r, ti.tcpi_state == linux_state(a->st) || (a->st == M_TW && ti.tcpi_state == 7),
          "%s: tcpi_state %u, wanted %d", SIDE[x], ti.tcpi_state, linux_state(a->st));
    /* A reader: the data, then EOF before any error (Linux's
     * tcp_recvmsg), then the error, then EOF on a closed connection. */
    char buf[64];
    if (a->unread) {
        ssize_t got = tern_recv(s, a->fd, buf, sizeof(buf), 0);
        CHECK(r, got == (ssize_t)a->unread, "%s: recv %zd, wanted %u bytes", SIDE[x], got,
              a->unread);
        a->unread = 0;
    }
    errno = 0;
    ssize_t got = tern_recv(s, a->fd, buf, sizeof(buf), 0);
    int e = errno;
    if (a->fin_rcvd || (a->st == M_CLOSED && !a->so_error)) {
        CHECK(r, got == 0, "%s: recv %zd (%s), wanted EOF", SIDE[x], got, strerror(e));
    } else {
        int want = a->so_error ? a->so_error : EAGAIN;
        CHECK(r, got == -1 && e == want, "%s: recv %zd (%s), wanted -1 (%s)", SIDE[x], got,
              strerror(e), strerror(want));
        a->so_error = 0;
    }
    /* A writer, once its side is shut: the pending error once, then
     * EPIPE (no SIGPIPE from a library). Nothing goes on the wire. */
    if (a->st != M_EST && a->st != M_CW) {
        errno = 0;
        ssize_t w = tern_send(s, a->fd, "x", 1, 0);
        e = errno;
        int want = a->so_error ? a->so_error : EPIPE;
        CHECK(r, w == -1 && e == want, "%s: send %zd (%s), wanted -1 (%s)", SIDE[x], w,
              strerror(e), strerror(want));
        a->so_error = 0;
    }
}

/* What each stack holds. */
static void check_stacks(struct run *r)
{
    for (int s = 0; s < 2; s++) {
        uint64_t sockets = 0, tw = 0;
        bool unsure = false, tw_unsure = false;
        if (r->m.server && r->m.listener && r->m.e[LOC].stack == s)
            sockets++;
        for (int x = 0; x < 2; x++) {
            const struct end *a = &r->m.e[x];
            if (a->stack != s)
                continue;
            sockets += a->handle || a->queued || alive(a->st);
            tw += a->st == M_TW;
            unsure |= a->st == M_TW || a->tw_unsure; /* a socket or not, by design */
            tw_unsure |= a->tw_unsure;
        }
        struct tern_live live;
        tern_stack_live(r->sim.st[s], &live);
        if (!tw_unsure)
            CHECK(r, live.tcp_timewait == tw, "stack %d: %llu in TIME_WAIT, wanted %llu", s,
                  (unsigned long long)live.tcp_timewait, (unsigned long long)tw);
        if (!unsure)
            CHECK(r, live.sockets == sockets, "stack %d: %llu sockets, wanted %llu", s,
                  (unsigned long long)live.sockets, (unsigned long long)sockets);
    }
}

static void run_scenario(const struct scenario *sc, int index)
{
    struct run r = {.sc = sc, .index = index, .step = -1};
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.tcp_timewait_ns = TIMEWAIT_NS;
    struct sim_opts o = {.seed = (uint64_t)index + 1, .cfg = &cfg};
    sim_init(&r.sim, 2, &o);
    /* Stack 1 serves, stack 0 connects. */
    r.listener = tern_socket(r.sim.st[1], AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sim_sin(1, PORT);
    assert_int_equal(tern_bind(r.sim.st[1], r.listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(r.sim.st[1], r.listener, 4), 0);
    int client = tern_socket(r.sim.st[0], AF_INET, SOCK_STREAM, 0);
    errno = 0;
    assert_int_equal(tern_connect(r.sim.st[0], client, (struct sockaddr *)&a, sizeof(a)), -1);
    assert_int_equal(errno, EINPROGRESS);
    sim_run(&r.sim, 100 * MS);
    struct model *m = &r.m;
    m->server = sc->server;
    struct end *loc = &m->e[LOC], *peer = &m->e[PEER];
    loc->st = peer->st = M_EST;
    if (sc->server) {
        loc->stack = 1;
        loc->queued = true;
        loc->fd = -1;
        peer->stack = 0;
        peer->fd = client;
        peer->handle = true;
        m->listener = true;
    } else {
        loc->stack = 0;
        loc->fd = client;
        loc->handle = true;
        peer->stack = 1;
        peer->fd = tern_accept(r.sim.st[1], r.listener, NULL, NULL);
        assert_true(peer->fd >= 0);
        peer->handle = true;
        assert_int_equal(tern_close(r.sim.st[1], r.listener), 0);
        r.listener = -1;
    }
    if (sc->request) {
        assert_int_equal(tern_send(stk(&r, PEER), peer->fd, "0123456789", 10, 0), 10);
        sim_run(&r.sim, 100 * MS);
        loc->unread = 10;
    }
    check_stacks(&r);
    for (r.step = 0; r.step < sc->n; r.step++) {
        apply(&r, sc->ev[r.step]);
        sim_run(&r.sim, 200 * MS);
        for (int x = 0; x < 2; x++)
            check_end(&r, x);
        check_stacks(&r);
    }
    /* The rest of both applications' lives: close what is open. */
    for (int x = 0; x < 2; x++)
        if (m->e[x].handle)
            do_close(&r, x);
    if (r.listener >= 0)
        assert_int_equal(tern_close(r.sim.st[1], r.listener), 0);
    sim_finish(&r.sim); /* nothing left: sockets, packets, timers */
}

/* Orders that cannot happen. */
static bool possible(const struct scenario *sc)
{
    int pos[EV_COUNT];
    for (int i = 0; i < EV_COUNT; i++)
        pos[i] = -1;
    for (int i = 0; i < sc->n; i++)
        pos[sc->ev[i]] = i;
#define BEFORE(a, b) (pos[a] >= 0 && pos[b] >= 0 && pos[a] < pos[b])
    if (BEFORE(EV_PEER_RST, EV_PEER_FIN))
        return false; /* the peer's handle is gone with its RST */
    if (pos[EV_ACCEPT] >= 0 && !sc->server)
        return false; /* a client does not accept */
    if (BEFORE(EV_CLOSE, EV_ACCEPT))
        return false; /* the listener is gone */
    static const enum ev on_handle[] = {EV_SHUTDOWN, EV_LINGER0};
    for (size_t i = 0; i < sizeof(on_handle) / sizeof(on_handle[0]); i++) {
        enum ev e = on_handle[i];
        if (BEFORE(EV_CLOSE, e))
            return false; /* the handle is gone */
        if (sc->server && pos[e] >= 0 && !BEFORE(EV_ACCEPT, e))
            return false; /* no handle yet */
    }
#undef BEFORE
    return true;
}

struct gen {
    struct scenario sc;
    bool used[EV_COUNT];
    int count, index;
};

/* Every subset of the events in every order: each prefix is itself a
 * scenario. */
static void generate(struct gen *g)
{
    if (possible(&g->sc)) {
        g->count++;
        for (int req = 0; req < 2; req++) {
            g->sc.request = req;
            run_scenario(&g->sc, g->index++);
        }
    }
    for (int e = 0; e < EV_COUNT; e++) {
        if (g->used[e])
            continue;
        g->used[e] = true;
        g->sc.ev[g->sc.n++] = (enum ev)e;
        generate(g);
        g->sc.n--;
        g->used[e] = false;
    }
}

static void test_every_order_client_side(void **state)
{
    (void)state;
    struct gen g = {.sc = {.server = false}};
    generate(&g);
    /* 6 events (no accept): the 1957 arrangements of their subsets, less
     * the impossible ones. */
    assert_int_equal(g.count, 640);
}

static void test_every_order_server_side(void **state)
{
    (void)state;
    struct gen g = {.sc = {.server = true}, .index = 100000};
    generate(&g);
    /* 7 events: the 13700 arrangements of their subsets, less the
     * impossible ones. */
    assert_int_equal(g.count, 1174);
}

/* ---- The story of issue 3, replayed ---- */

struct story {
    struct sim sim;
    int listener;
};

static void story_init(struct story *st, uint64_t seed)
{
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.tcp_timewait_ns = TIMEWAIT_NS;
    struct sim_opts o = {.seed = seed, .cfg = &cfg};
    sim_init(&st->sim, 2, &o);
    st->listener = tern_socket(st->sim.st[1], AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sim_sin(1, PORT);
    assert_int_equal(tern_bind(st->sim.st[1], st->listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(st->sim.st[1], st->listener, 16), 0);
}

static int story_connect(struct story *st)
{
    int c = tern_socket(st->sim.st[0], AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sim_sin(1, PORT);
    tern_connect(st->sim.st[0], c, (struct sockaddr *)&a, sizeof(a));
    return c;
}

static int tcp_state(struct tern_stack *s, int fd)
{
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    assert_int_equal(tern_getsockopt(s, fd, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
    return ti.tcpi_state;
}

/* The server writes its 200 KB answer for as long as it can; returns
 * the errno that stopped it (0 if all went out). */
static int serve_200k(struct story *st, int srv, uint64_t *sent)
{
    static char chunk[16384];
    memset(chunk, 'z', sizeof(chunk));
    *sent = 0;
    for (int round = 0; round < 400 && *sent < 200000; round++) {
        size_t n = 200000 - *sent < sizeof(chunk) ? (size_t)(200000 - *sent) : sizeof(chunk);
        ssize_t w = tern_send(st->sim.st[1], srv, chunk, n, 0);
        if (w < 0 && errno != EAGAIN)
            return errno;
        if (w > 0)
            *sent += (uint64_t)w;
        sim_run(&st->sim, 5 * MS);
    }
    return 0;
}

static void test_story_peer_fin_before_server_close(void **state)
{
    (void)state;
    /* A stream of clients; each reads the head of its 200 KB answer and
     * goes away (Ctrl-C): by close after reading all that came (a FIN;
     * then a RST for the data that follows it), by close with data
     * unread (a RST), or by shutting down its writing (a FIN) while it
     * goes on reading. Each time the server's TCP takes the FIN (or RST)
     * before the server closes. The server goes on serving, every call
     * returns what Linux's would, each socket is closed once, and in the
     * end nothing is left alive. */
    enum { FIN_AFTER_READING, RST_UNREAD, HALF_CLOSE };
    struct story st;
    story_init(&st, 7);
    for (int i = 0; i < 24; i++) {
        int how = i % 3;
        int c = story_connect(&st);
        sim_run(&st.sim, 20 * MS);
        int srv = tern_accept(st.sim.st[1], st.listener, NULL, NULL);
        assert_true(srv >= 0);
        assert_int_equal(tern_send(st.sim.st[1], srv, "head", 4, 0), 4);
        sim_run(&st.sim, 20 * MS);
        char buf[4096];
        size_t want = how == RST_UNREAD ? 1 : 4;
        assert_int_equal(tern_recv(st.sim.st[0], c, buf, want, 0), (ssize_t)want);
        if (how == HALF_CLOSE)
            assert_int_equal(tern_shutdown(st.sim.st[0], c, SHUT_WR), 0);
        else
            assert_int_equal(tern_close(st.sim.st[0], c), 0);
        sim_run(&st.sim, 20 * MS);
        /* The server has not closed; its TCP has taken the FIN (CLOSE_WAIT:
         * a reader gets EOF) or the RST (CLOSED: ECONNRESET). */
        errno = 0;
        ssize_t r = tern_recv(st.sim.st[1], srv, buf, sizeof(buf), 0);
        if (how == RST_UNREAD) {
            assert_int_equal(tcp_state(st.sim.st[1], srv), 7);
            assert_int_equal(r, -1);
            assert_int_equal(errno, ECONNRESET);
        } else {
            assert_int_equal(tcp_state(st.sim.st[1], srv), 8);
            assert_int_equal(r, 0);
        }
        uint64_t sent;
        int err = serve_200k(&st, srv, &sent);
        if (how == HALF_CLOSE) {
            /* The half-closed client still reads: all of it arrives. */
            assert_int_equal(err, 0);
            uint64_t got = 0;
            for (int k = 0; k < 1000 && got < sent; k++) {
                ssize_t n = tern_recv(st.sim.st[0], c, buf, sizeof(buf), 0);
                if (n > 0)
                    got += (uint64_t)n;
                else
                    sim_run(&st.sim, 5 * MS);
            }
            assert_int_equal(got, 200000);
            assert_int_equal(tern_close(st.sim.st[0], c), 0);
        } else {
            /* Writing to a client that is gone: EPIPE (the FIN was read,
             * then the client's TCP reset the data that followed it). */
            assert_int_equal(err, EPIPE);
            errno = 0;
            assert_int_equal(tern_recv(st.sim.st[1], srv, buf, sizeof(buf), 0), 0);
        }
        /* The server closes last: once, then EBADF. */
        assert_int_equal(tern_close(st.sim.st[1], srv), 0);
        errno = 0;
        assert_int_equal(tern_close(st.sim.st[1], srv), -1);
        assert_int_equal(errno, EBADF);
        sim_run(&st.sim, 50 * MS);
    }
    assert_int_equal(tern_close(st.sim.st[1], st.listener), 0);
    sim_finish(&st.sim);
}

static void test_story_peer_fin_before_accept(void **state)
{
    (void)state;
    /* Clients send their request and close before the server accepts
     * them: each waits on the accept queue in CLOSE_WAIT (or reset), is
     * accepted, read to its end, answered, and closed, once. */
    struct story st;
    story_init(&st, 8);
    int clients[8];
    for (int i = 0; i < 8; i++) {
        clients[i] = story_connect(&st);
        sim_run(&st.sim, 20 * MS);
        assert_int_equal(tern_send(st.sim.st[0], clients[i], "GET", 3, 0), 3);
        if (i % 2) {
            struct linger l0 = {.l_onoff = 1, .l_linger = 0};
            assert_int_equal(tern_setsockopt(st.sim.st[0], clients[i], SOL_SOCKET, SO_LINGER,
                                             &l0, sizeof(l0)), 0);
        }
        sim_run(&st.sim, 20 * MS);
        assert_int_equal(tern_close(st.sim.st[0], clients[i]), 0); /* FIN, or RST if odd */
    }
    sim_run(&st.sim, 100 * MS);
    struct pollfd pfd = {.fd = st.listener, .events = POLLIN};
    assert_int_equal(tern_poll(st.sim.st[1], &pfd, 1, 0), 1);
    for (int i = 0; i < 8; i++) {
        int srv = tern_accept(st.sim.st[1], st.listener, NULL, NULL);
        assert_true(srv >= 0);
        char buf[16];
        assert_int_equal(tern_recv(st.sim.st[1], srv, buf, sizeof(buf), 0), 3);
        errno = 0;
        ssize_t r = tern_recv(st.sim.st[1], srv, buf, sizeof(buf), 0);
        if (i % 2) {
            assert_int_equal(r, -1); /* the RST */
            assert_int_equal(errno, ECONNRESET);
        } else {
            assert_int_equal(r, 0); /* the FIN */
            assert_int_equal(tcp_state(st.sim.st[1], srv), 8);
            uint64_t sent;
            assert_int_equal(serve_200k(&st, srv, &sent), EPIPE); /* the client is gone */
        }
        assert_int_equal(tern_close(st.sim.st[1], srv), 0);
        errno = 0;
        assert_int_equal(tern_close(st.sim.st[1], srv), -1);
        assert_int_equal(errno, EBADF);
    }
    errno = 0;
    assert_int_equal(tern_accept(st.sim.st[1], st.listener, NULL, NULL), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(tern_close(st.sim.st[1], st.listener), 0);
    sim_finish(&st.sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_order_client_side),
        cmocka_unit_test(test_every_order_server_side),
        cmocka_unit_test(test_story_peer_fin_before_server_close),
        cmocka_unit_test(test_story_peer_fin_before_accept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
