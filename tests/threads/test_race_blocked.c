/* Close or shutdown from one thread while others are blocked in recv,
 * send, accept, connect, tern_poll or tern_epoll_wait on the same socket,
 * over and over, with seeded random delays between the call and the
 * action (sometimes none, so the action also lands before the call has
 * gone to sleep, or before it has entered at all). Each blocked call
 * must come back, promptly (it is woken, not timed out: its own timeout
 * is long and a timeout fails the case), with the result runtime.h
 * promises, which is what Linux gives:
 *
 *   close      recv, accept, connect: EBADF; send: EBADF or the bytes it
 *              had taken; tern_poll: POLLNVAL; tern_epoll_wait on a set
 *              that is closed: EBADF; on a set whose member is closed:
 *              that member is gone (nothing reported).
 *   shutdown   recv: 0 (end of stream); send: EPIPE or the bytes it had
 *              taken; accept: EINVAL; connect: ECONNRESET (Linux's
 *              tcp_disconnect in SYN_SENT); tern_poll and
 *              tern_epoll_wait: readable.
 *
 * Under ASan and TSan nothing may be freed under a sleeping call. */
#include "race.h"

#include <poll.h>
#include <sys/epoll.h>

#define LPORT 7100      /* the listener that makes connected pairs */
#define APORT 7101      /* a fresh listener per accept case */
#define CALL_TIMEO_MS 8000 /* far longer than any case: a timeout is a missed wake-up */
#define ROUNDS 208 /* 16 of each call x action */
#define MAX_THREADS 3
#define SEND_LEN (1u << 20)  /* more than both buffers: a send that must block */

enum op { OP_RECV, OP_SEND, OP_ACCEPT, OP_CONNECT, OP_POLL, OP_EPOLL, OP__N };
enum act { ACT_CLOSE, ACT_SHUT, ACT_CLOSE_MEMBER };

static const char *op_name[] = {"recv", "send", "accept", "connect", "poll", "epoll_wait"};

struct call {
    struct tern_stack *s;
    enum op op;
    int fd;      /* the socket, or the set for OP_EPOLL */
    int timeout; /* poll / epoll_wait, ms */
    _Atomic int entered;
    ssize_t ret;
    int err;
    short revents;
    uint32_t events;
};

static uint8_t send_buf[SEND_LEN];

static void *call_main(void *arg)
{
    struct call *c = arg;
    char b[64];
    atomic_store(&c->entered, 1);
    switch (c->op) {
    case OP_RECV:
        c->ret = tern_recv(c->s, c->fd, b, sizeof(b), 0);
        break;
    case OP_SEND:
        c->ret = tern_send(c->s, c->fd, send_buf, SEND_LEN, 0);
        break;
    case OP_ACCEPT:
        c->ret = tern_accept(c->s, c->fd, NULL, NULL);
        break;
    case OP_CONNECT: {
        struct sockaddr_in a = race_sin_nobody(80);
        c->ret = tern_connect(c->s, c->fd, (struct sockaddr *)&a, sizeof(a));
        break;
    }
    case OP_POLL: {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        c->ret = tern_poll(c->s, &p, 1, c->timeout);
        c->revents = p.revents;
        break;
    }
    default: {
        struct epoll_event ev[4];
        c->ret = tern_epoll_wait(c->s, c->fd, ev, 4, c->timeout);
        c->events = c->ret > 0 ? ev[0].events : 0;
        break;
    }
    }
    c->err = c->ret < 0 ? errno : 0;
    return NULL;
}

struct round {
    struct race_net *net;
    struct race_rng *rng;
    int listener; /* on stack 1, LPORT */
    int pair[2];  /* a connected pair: [0] on stack 0, [1] on stack 1 */
    int extra;    /* the accept listener, the connecting socket */
    int set;      /* the epoll set */
    int side;     /* which stack the target is on */
};

static void make_pair(struct round *r)
{
    struct tern_stack *c = r->net->st[0], *sv = r->net->st[1];
    r->pair[0] = tern_socket(c, AF_INET, SOCK_STREAM, 0);
    assert_true(r->pair[0] >= 0);
    race_timeo(c, r->pair[0], SO_SNDTIMEO, CALL_TIMEO_MS);
    struct sockaddr_in a = race_sin(1, LPORT);
    assert_int_equal(tern_connect(c, r->pair[0], (struct sockaddr *)&a, sizeof(a)), 0);
    r->pair[1] = tern_accept(sv, r->listener, NULL, NULL);
    assert_true(r->pair[1] >= 0);
    for (int i = 0; i < 2; i++) {
        race_timeo(r->net->st[i], r->pair[i], SO_RCVTIMEO, CALL_TIMEO_MS);
        race_timeo(r->net->st[i], r->pair[i], SO_SNDTIMEO, CALL_TIMEO_MS);
    }
}

/* The action, from the main thread. A shutdown of a socket whose
 * connect has not started yet is ENOTCONN: try again until the connect
 * is under way (bounded). */
static int act_on(struct tern_stack *s, enum op op, enum act a, int target, int set, int how)
{
    if (a == ACT_CLOSE)
        return tern_close(s, op == OP_EPOLL ? set : target);
    if (a == ACT_CLOSE_MEMBER)
        return tern_close(s, target);
    for (int tries = 0; tries < 5000; tries++) {
        int rc = tern_shutdown(s, target, how);
        if (rc == 0 || errno != ENOTCONN || op != OP_CONNECT)
            return rc;
        usleep(200);
    }
    return -1;
}

static unsigned pick_delay_us(struct race_rng *rng)
{
    switch (race_rng_below(rng, 4)) {
    case 0: return 0;                               /* at once: often before it sleeps */
    case 1: return race_rng_below(rng, 50);         /* around the moment it goes to sleep */
    case 2: return race_rng_below(rng, 2000);
    default: return 2000 + race_rng_below(rng, 8000); /* surely asleep */
    }
}

static void check_result(const struct call *c, enum act a, int how, int round)
{
    char what[96];
    snprintf(what, sizeof(what), "round %d: %s under %s%s", round,
             a == ACT_CLOSE_MEMBER ? "close(member)" : a == ACT_CLOSE ? "close" : "shutdown",
             op_name[c->op], a == ACT_SHUT && how == SHUT_RDWR ? " (RDWR)" : "");
    bool ok;
    if (a == ACT_CLOSE) {
        switch (c->op) {
        case OP_SEND:
            ok = (c->ret == -1 && c->err == EBADF) || (c->ret > 0 && c->ret < (ssize_t)SEND_LEN);
            break;
        case OP_POLL:
            ok = c->ret == 1 && c->revents == POLLNVAL;
            break;
        default:
            ok = c->ret == -1 && c->err == EBADF;
            break;
        }
    } else if (a == ACT_CLOSE_MEMBER) {
        ok = c->ret == 0; /* the set forgot it: its timeout ends the wait */
    } else {
        switch (c->op) {
        case OP_RECV: ok = c->ret == 0; break;
        case OP_SEND:
            ok = (c->ret == -1 && c->err == EPIPE) || (c->ret > 0 && c->ret < (ssize_t)SEND_LEN);
            break;
        case OP_ACCEPT: ok = c->ret == -1 && c->err == EINVAL; break;
        case OP_CONNECT: ok = c->ret == -1 && c->err == ECONNRESET; break;
        case OP_POLL: ok = c->ret == 1 && (c->revents & POLLIN); break;
        default: ok = c->ret == 1 && (c->events & EPOLLIN); break;
        }
    }
    if (!ok)
        fail_msg("%s: returned %zd, errno %d (%s), revents %#x, events %#x", what, c->ret,
                 c->err, strerror(c->err), (unsigned)c->revents, (unsigned)c->events);
}

static void one_round(struct round *r, int round)
{
    struct race_rng *rng = r->rng;
    /* Every call meets every action in turn (the member's close only
     * every other turn: it ends on its short timeout); the rest is
     * drawn. */
    int combo = round % (2 * OP__N + 1);
    enum op op = combo == 2 * OP__N ? OP_EPOLL : (enum op)(combo / 2);
    enum act a = combo == 2 * OP__N ? ACT_CLOSE_MEMBER : combo % 2 ? ACT_SHUT : ACT_CLOSE;
    if (a == ACT_CLOSE_MEMBER && (round / (2 * OP__N + 1)) % 2)
        a = race_rng_below(rng, 2) ? ACT_SHUT : ACT_CLOSE;
    int how = race_rng_below(rng, 2) ? SHUT_RDWR : (op == OP_SEND ? SHUT_WR : SHUT_RD);
    r->side = (int)race_rng_below(rng, 2);
    r->pair[0] = r->pair[1] = r->extra = r->set = -1;
    struct tern_stack *s;
    int target;
    switch (op) {
    case OP_ACCEPT:
        s = r->net->st[1];
        r->extra = race_listener(s, 1, APORT, false, 8);
        race_timeo(s, r->extra, SO_RCVTIMEO, CALL_TIMEO_MS);
        target = r->extra;
        break;
    case OP_CONNECT:
        s = r->net->st[r->side];
        r->extra = tern_socket(s, AF_INET, SOCK_STREAM, 0);
        race_timeo(s, r->extra, SO_SNDTIMEO, CALL_TIMEO_MS);
        target = r->extra;
        break;
    default:
        make_pair(r);
        s = r->net->st[r->side];
        target = r->pair[r->side];
        if (op == OP_SEND) {
            int small = 8192;
            assert_int_equal(tern_setsockopt(s, target, SOL_SOCKET, SO_SNDBUF, &small,
                                             sizeof(small)), 0);
        }
        break;
    }
    if (op == OP_EPOLL) {
        r->set = tern_epoll_create(s);
        assert_true(r->set >= 0);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7};
        assert_int_equal(tern_epoll_ctl(s, r->set, EPOLL_CTL_ADD, target, &ev), 0);
    }
    int nthreads = (op == OP_SEND || op == OP_CONNECT) ? 1 : 1 + (int)race_rng_below(rng, MAX_THREADS);
    unsigned delay = pick_delay_us(rng);
    race_wd_arm(20, "round %d: %s by %d thread(s) on stack %d, %s after %u us", round,
                op_name[op], nthreads,
                op == OP_ACCEPT ? 1 : r->side,
                a == ACT_CLOSE ? "close" : a == ACT_SHUT ? "shutdown" : "close(member)", delay);
    struct call calls[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    for (int i = 0; i < nthreads; i++) {
        calls[i] = (struct call){.s = s, .op = op, .fd = op == OP_EPOLL ? r->set : target,
                                 .timeout = a == ACT_CLOSE_MEMBER ? 300 : CALL_TIMEO_MS};
        assert_int_equal(pthread_create(&th[i], NULL, call_main, &calls[i]), 0);
    }
    for (int i = 0; i < nthreads; i++)
        while (!atomic_load(&calls[i].entered))
            usleep(50);
    race_sleep_us(delay);
    int rc = act_on(s, op, a, target, r->set, how);
    if (rc != 0)
        fail_msg("round %d: the action on %s failed: %s", round, op_name[op], strerror(errno));
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        check_result(&calls[i], a, how, round);
    }
    race_wd_disarm();
    /* Whatever is still open goes (EBADF for what the action closed). */
    tern_close(s, target);
    if (r->set >= 0)
        tern_close(s, r->set);
    for (int i = 0; i < 2; i++)
        if (r->pair[i] >= 0)
            tern_close(r->net->st[i], r->pair[i]);
}

static void test_close_and_shutdown_under_blocked_calls(void **state)
{
    (void)state;
    uint64_t seed = race_seed(4001);
    struct race_rng rng = race_rng_for(seed, 0);
    struct race_net net;
    race_net_up(&net, 2, seed);
    race_fill(send_buf, sizeof(send_buf), 1);
    struct round r = {.net = &net, .rng = &rng};
    r.listener = race_listener(net.st[1], 1, LPORT, false, 64);
    race_timeo(net.st[1], r.listener, SO_RCVTIMEO, CALL_TIMEO_MS);
    for (int i = 0; i < ROUNDS * race_scale(); i++)
        one_round(&r, i);
    tern_close(net.st[1], r.listener);
    race_wd_arm(20, "freeing the stacks");
    race_net_down(&net);
    race_wd_disarm();
}

/* Four kinds of call blocked on one connected socket at once (recv,
 * send, tern_poll, and tern_epoll_wait on a set holding it), then one
 * close or shutdown(SHUT_RDWR): each gets its own answer (after a close,
 * the set's waiter is still asleep, with nothing to report, when its
 * set is closed in turn: EBADF). */
static void test_close_and_shutdown_under_mixed_calls_on_one_socket(void **state)
{
    (void)state;
    uint64_t seed = race_seed(4001);
    struct race_rng rng = race_rng_for(seed, 1);
    struct race_net net;
    race_net_up(&net, 2, seed);
    struct round r = {.net = &net, .rng = &rng};
    r.listener = race_listener(net.st[1], 1, LPORT, false, 64);
    race_timeo(net.st[1], r.listener, SO_RCVTIMEO, CALL_TIMEO_MS);
    for (int round = 0; round < 40 * race_scale(); round++) {
        make_pair(&r);
        int side = (int)race_rng_below(&rng, 2);
        struct tern_stack *s = net.st[side];
        int target = r.pair[side];
        int small = 8192;
        assert_int_equal(tern_setsockopt(s, target, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)),
                         0);
        int set = tern_epoll_create(s);
        struct epoll_event ev = {.events = EPOLLIN};
        assert_int_equal(tern_epoll_ctl(s, set, EPOLL_CTL_ADD, target, &ev), 0);
        bool shut = race_rng_below(&rng, 2);
        unsigned delay = pick_delay_us(&rng);
        race_wd_arm(20, "mixed round %d: %s on stack %d after %u us", round,
                    shut ? "shutdown" : "close", side, delay);
        enum op ops[4] = {OP_RECV, OP_SEND, OP_POLL, OP_EPOLL};
        struct call calls[4];
        pthread_t th[4];
        for (int i = 0; i < 4; i++) {
            calls[i] = (struct call){.s = s, .op = ops[i], .fd = ops[i] == OP_EPOLL ? set : target,
                                     .timeout = CALL_TIMEO_MS};
            assert_int_equal(pthread_create(&th[i], NULL, call_main, &calls[i]), 0);
        }
        for (int i = 0; i < 4; i++)
            while (!atomic_load(&calls[i].entered))
                usleep(50);
        race_sleep_us(delay);
        if ((shut ? tern_shutdown(s, target, SHUT_RDWR) : tern_close(s, target)) != 0)
            fail_msg("mixed round %d: the action failed: %s", round, strerror(errno));
        for (int i = 0; i < 4; i++) {
            if (ops[i] == OP_EPOLL && !shut) {
                /* The set outlives its closed member and has nothing to
                 * report: its waiter sleeps on until the set is closed. */
                assert_int_equal(tern_close(s, set), 0);
            }
            pthread_join(th[i], NULL);
            check_result(&calls[i], shut ? ACT_SHUT : ACT_CLOSE, SHUT_RDWR, round);
        }
        race_wd_disarm();
        tern_close(s, set);
        tern_close(net.st[0], r.pair[0]);
        tern_close(net.st[1], r.pair[1]);
    }
    tern_close(net.st[1], r.listener);
    race_net_down(&net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_and_shutdown_under_blocked_calls),
        cmocka_unit_test(test_close_and_shutdown_under_mixed_calls_on_one_socket),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    race_wd_end();
    return rc;
}
