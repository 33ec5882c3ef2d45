/*
 * Connections per second, one after another in one thread: connect,
 * accept, a 1-byte request, a 1-byte response, the client closes first,
 * the server reads the end and closes. Tern: two stacks on the in-memory
 * wire, polled at the real clock. Kernel: the same sequence with blocking
 * sockets on 127.0.0.1 (loopback completes each step within the call).
 *
 * The client's TIME_WAIT, two ways, the same for both stacks:
 *   CLOSE_ABORT   SO_LINGER {1, 0} on the client: close sends RST, no
 *                 TIME_WAIT anywhere.
 *   CLOSE_ORDERLY FIN both ways, TIME_WAIT 60 s (both stacks' default).
 *                 Tern's ephemeral range is widened to 1024-65535 and its
 *                 socket limit raised so that every TIME_WAIT of the run
 *                 fits; the kernel keeps its own range and tcp_tw_reuse.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "kernel.h"
#include "qlink.h"

#define PORT 80

struct conn_cfg {
    uint32_t conns;
};

static void tweak(struct tern_stack_config *cfg, void *arg)
{
    const struct conn_cfg *cc = arg;
    cfg->ephemeral_lo = 1024;
    cfg->ephemeral_hi = 65535;
    cfg->max_sockets = cc->conns + 1024;
}

/* Poll both stacks until `fn` is done (returns > 0) or fails (< 0).
 * Every step waits for a frame still on the wire, so the stacks are
 * polled before `fn` is tried: an event loop, too, calls recv or accept
 * once it is told the socket is ready, not before (and the kernel's
 * blocking calls never fail with EAGAIN either). */
static int step(struct tern_pair *p, int (*fn)(struct tern_pair *, void *), void *arg,
                uint64_t end)
{
    for (;;) {
        uint64_t now = bench_now_ns();
        if (now >= end)
            return -1;
        tern_stack_poll(p->st[1], now);
        tern_stack_poll(p->st[0], now);
        int r = fn(p, arg);
        if (r != 0)
            return r;
    }
}

struct one {
    int listener, client, server;
};

static int do_accept(struct tern_pair *p, void *arg)
{
    struct one *c = arg;
    c->server = tern_accept4(p->st[1], c->listener, NULL, NULL, SOCK_NONBLOCK);
    if (c->server >= 0)
        return 1;
    return errno == EAGAIN ? 0 : -1;
}

static int read1(struct tern_stack *s, int fd)
{
    char b;
    ssize_t r = tern_recv(s, fd, &b, 1, 0);
    if (r == 1)
        return 1;
    return r < 0 && errno == EAGAIN ? 0 : -1;
}

static int srv_read(struct tern_pair *p, void *arg)
{
    return read1(p->st[1], ((struct one *)arg)->server);
}

static int cli_read(struct tern_pair *p, void *arg)
{
    return read1(p->st[0], ((struct one *)arg)->client);
}

/* The client's end reached the server: EOF, or RST after linger 0. */
static int srv_end(struct tern_pair *p, void *arg)
{
    char b;
    ssize_t r = tern_recv(p->st[1], ((struct one *)arg)->server, &b, 1, 0);
    if (r == 0 || (r < 0 && errno == ECONNRESET))
        return 1;
    return r < 0 && errno == EAGAIN ? 0 : -1;
}

void bench_conn_tern(const struct bench_opts *o, enum conn_close how, struct bench_val *out)
{
    struct conn_cfg cc = {.conns = o->conns};
    struct tern_pair p;
    if (pair_new_wire(&p, 1500, false, tweak, &cc) < 0) {
        bval_fail(out, "setup: %s", strerror(errno));
        return;
    }
    struct one c = {.listener = tern_socket(p.st[1], AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)};
    struct sockaddr_in a = pair_addr(1, PORT);
    if (c.listener < 0 || tern_bind(p.st[1], c.listener, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        tern_listen(p.st[1], c.listener, 128) < 0) {
        bval_fail(out, "listen: %s", strerror(errno));
        pair_free(&p);
        return;
    }
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    uint64_t t0 = bench_now_ns(), end = t0 + bench_ns(o->conn_seconds);
    uint32_t done = 0;
    const char *fail = NULL;
    while (done < o->conns && !fail) {
        c.client = tern_socket(p.st[0], AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (c.client < 0) {
            fail = "socket";
            break;
        }
        if (how == CLOSE_ABORT &&
            tern_setsockopt(p.st[0], c.client, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0) {
            fail = "SO_LINGER";
            break;
        }
        if (tern_connect(p.st[0], c.client, (struct sockaddr *)&a, sizeof(a)) < 0 &&
            errno != EINPROGRESS) {
            fail = "connect";
            break;
        }
        if (step(&p, do_accept, &c, end) < 0) {
            fail = "accept";
            break;
        }
        if (tern_send(p.st[0], c.client, "q", 1, 0) != 1 || step(&p, srv_read, &c, end) < 0) {
            fail = "request";
            break;
        }
        if (tern_send(p.st[1], c.server, "r", 1, 0) != 1 || step(&p, cli_read, &c, end) < 0) {
            fail = "response";
            break;
        }
        tern_close(p.st[0], c.client);
        if (step(&p, srv_end, &c, end) < 0) {
            fail = "close";
            break;
        }
        tern_close(p.st[1], c.server);
        done++;
        /* The steps watch the clock too; this is for a run that never
         * waits (a clock read per connection shows in the figure). */
        if ((done & 63) == 0 && bench_now_ns() >= end)
            break;
    }
    uint64_t ns = bench_now_ns() - t0;
    pair_settle(&p);
    if (getenv("BENCH_DEBUG")) {
        fprintf(stderr, "tern conn/s, %u connections:\n", done);
        pair_debug_counters(&p, "server", "client");
    }
    if (fail && done == 0) {
        bval_fail(out, "%s: %s", fail, strerror(errno));
    } else {
        bval_set(out, done / ((double)ns / 1e9));
        if (fail)
            snprintf(out->why, sizeof(out->why), "stopped after %u: %s", done, fail);
        else if (done < o->conns)
            snprintf(out->why, sizeof(out->why), "time cap, %u", done);
    }
    tern_close(p.st[1], c.listener);
    pair_free(&p); /* frees what is still in TIME_WAIT */
}

void bench_conn_kernel(const struct bench_opts *o, enum conn_close how, struct bench_val *out)
{
    struct sockaddr_in a;
    int l = kernel_listener(&a, 128);
    if (l < 0) {
        bval_fail(out, "listen: %s", strerror(errno));
        return;
    }
    uint64_t t0 = bench_now_ns(), end = t0 + bench_ns(o->conn_seconds);
    uint32_t done = 0;
    const char *fail = NULL;
    int err = 0;
    while (done < o->conns) {
        char b;
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), s = -1;
        if (c < 0) {
            fail = "socket";
        } else if (how == CLOSE_ABORT && kernel_linger0(c) < 0) {
            fail = "SO_LINGER";
        } else if (connect(c, (struct sockaddr *)&a, sizeof(a)) < 0) {
            fail = "connect";
        } else if ((s = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0) {
            fail = "accept";
        } else if (send(c, "q", 1, MSG_NOSIGNAL) != 1 || recv(s, &b, 1, 0) != 1) {
            fail = "request";
        } else if (send(s, "r", 1, MSG_NOSIGNAL) != 1 || recv(c, &b, 1, 0) != 1) {
            fail = "response";
        } else {
            close(c);
            c = -1;
            ssize_t r = recv(s, &b, 1, 0);
            if (r != 0 && !(r < 0 && errno == ECONNRESET))
                fail = "close";
        }
        err = errno;
        if (c >= 0)
            close(c);
        if (s >= 0)
            close(s);
        if (fail)
            break;
        done++;
        if (bench_now_ns() >= end)
            break;
    }
    uint64_t ns = bench_now_ns() - t0;
    close(l);
    if (fail && done == 0) {
        bval_fail(out, "%s: %s", fail, strerror(err));
    } else {
        bval_set(out, done / ((double)ns / 1e9));
        if (fail)
            snprintf(out->why, sizeof(out->why), "stopped after %u: %s: %s", done, fail,
                     strerror(err));
        else if (done < o->conns)
            snprintf(out->why, sizeof(out->why), "time cap, %u", done);
    }
}

/* ---- One thread per stack (Tern) or per side (kernel) ----
 *
 * The client's thread owns the client stack and makes the connections
 * one after another; the server's thread owns the server stack, accepts
 * each, answers and closes. Every step crosses from one thread to the
 * other, so this measures the hand-over as much as the stacks: on these
 * VMs a sleeping thread takes tens of microseconds to wake, so a thread
 * with nothing to do spins a while first (qlink_wait), as in bulk. */

#define SPIN_NS (100 * 1000)

struct conn2 {
    struct tern_pair p;
    enum conn_close how;
    struct sockaddr_in addr;
    int listener;
    uint32_t target;
    uint64_t end;
    _Atomic int stop;
    pthread_barrier_t start;
    /* Written by one thread each, read after both are joined. */
    uint32_t done;
    uint64_t t0, t1;
    const char *fail;
    int err;
};

/* Polls `side`'s stack until fn() is done (> 0) or fails (< 0), waiting
 * on the qlink when a poll had nothing to do. */
static int pump2(struct conn2 *c, int side, int (*fn)(struct conn2 *, void *), void *arg)
{
    struct tern_stack *s = c->p.st[side];
    for (;;) {
        int r = fn(c, arg);
        if (r != 0)
            return r;
        uint64_t now = bench_now_ns();
        if (now >= c->end || atomic_load_explicit(&c->stop, memory_order_relaxed))
            return -1;
        if (tern_stack_poll(s, now) == 0) {
            tern_time_t d = tern_stack_next_deadline(s);
            uint64_t cap = now + 10 * TERN_NS_PER_MS;
            qlink_wait(c->p.qlink, side, d < cap ? d : cap, SPIN_NS);
        }
    }
}

/* A step's call: done (the whole of it), not yet (EAGAIN) or failed. */
static int step_result(ssize_t r, ssize_t want)
{
    if (r == want)
        return 1;
    return r < 0 && errno == EAGAIN ? 0 : -1;
}

static int c2_send_q(struct conn2 *c, void *fd)
{
    return step_result(tern_send(c->p.st[0], *(int *)fd, "q", 1, 0), 1);
}

static int c2_read_r(struct conn2 *c, void *fd)
{
    char b;
    return step_result(tern_recv(c->p.st[0], *(int *)fd, &b, 1, 0), 1);
}

static int c2_accept(struct conn2 *c, void *fd)
{
    *(int *)fd = tern_accept4(c->p.st[1], c->listener, NULL, NULL, SOCK_NONBLOCK);
    return *(int *)fd >= 0 ? 1 : errno == EAGAIN ? 0 : -1;
}

static int c2_read_q(struct conn2 *c, void *fd)
{
    char b;
    return step_result(tern_recv(c->p.st[1], *(int *)fd, &b, 1, 0), 1);
}

static int c2_read_end(struct conn2 *c, void *fd)
{
    char b;
    ssize_t r = tern_recv(c->p.st[1], *(int *)fd, &b, 1, 0);
    if (r == 0 || (r < 0 && errno == ECONNRESET))
        return 1;
    return r < 0 && errno == EAGAIN ? 0 : -1;
}

static void *conn2_client(void *arg)
{
    struct conn2 *c = arg;
    struct tern_stack *s = c->p.st[0];
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    pthread_barrier_wait(&c->start);
    c->t0 = bench_now_ns();
    while (c->done < c->target && !c->fail) {
        int fd = tern_socket(s, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            c->fail = "socket";
        } else if (c->how == CLOSE_ABORT &&
                   tern_setsockopt(s, fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0) {
            c->fail = "SO_LINGER";
        } else if (tern_connect(s, fd, (struct sockaddr *)&c->addr, sizeof(c->addr)) < 0 &&
                   errno != EINPROGRESS) {
            c->fail = "connect";
        } else if (pump2(c, 0, c2_send_q, &fd) < 0) {
            c->fail = "request";
        } else if (pump2(c, 0, c2_read_r, &fd) < 0) {
            c->fail = "response";
        }
        if (c->fail)
            c->err = errno;
        if (fd >= 0)
            tern_close(s, fd);
        if (!c->fail)
            c->done++;
        if (bench_now_ns() >= c->end)
            break;
    }
    c->t1 = bench_now_ns();
    /* The server stops too; what the last close sent is settled by the
     * main thread once both are joined (pair_settle). */
    atomic_store(&c->stop, 1);
    qlink_kick(c->p.qlink, 1);
    return NULL;
}

static void *conn2_server(void *arg)
{
    struct conn2 *c = arg;
    struct tern_stack *s = c->p.st[1];
    pthread_barrier_wait(&c->start);
    for (;;) {
        int fd = -1;
        if (pump2(c, 1, c2_accept, &fd) < 0)
            break; /* stopped, or the listener failed */
        /* A step that fails means the client stopped or failed (it
         * tells why): close and see whether there is more. */
        if (pump2(c, 1, c2_read_q, &fd) > 0 && tern_send(s, fd, "r", 1, 0) == 1)
            pump2(c, 1, c2_read_end, &fd);
        tern_close(s, fd);
    }
    return NULL;
}

void bench_conn_tern_2t(const struct bench_opts *o, enum conn_close how, struct bench_val *out)
{
    struct conn_cfg cc = {.conns = o->conns};
    struct conn2 *c = calloc(1, sizeof(*c));
    if (!c || pair_new_qlink(&c->p, 1500, false, tweak, &cc) < 0) {
        bval_fail(out, "setup: %s", strerror(errno));
        free(c);
        return;
    }
    c->how = how;
    c->target = o->conns;
    c->addr = pair_addr(1, PORT);
    c->listener = tern_socket(c->p.st[1], AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->listener < 0 ||
        tern_bind(c->p.st[1], c->listener, (struct sockaddr *)&c->addr, sizeof(c->addr)) < 0 ||
        tern_listen(c->p.st[1], c->listener, 128) < 0) {
        bval_fail(out, "listen: %s", strerror(errno));
        pair_free(&c->p);
        free(c);
        return;
    }
    c->end = bench_now_ns() + bench_ns(o->conn_seconds);
    pthread_barrier_init(&c->start, NULL, 2);
    pthread_t tc, ts;
    bool server = pthread_create(&ts, NULL, conn2_server, c) == 0;
    if (!server) {
        bval_fail(out, "thread");
        pthread_barrier_destroy(&c->start);
        pair_free(&c->p);
        free(c);
        return;
    }
    if (pthread_create(&tc, NULL, conn2_client, c) != 0) {
        c->fail = "thread";
        c->target = 0;
        conn2_client(c); /* meets the server at the barrier and stops it */
    } else {
        pthread_join(tc, NULL);
    }
    pthread_join(ts, NULL);
    pthread_barrier_destroy(&c->start);
    /* Both stacks are this thread's again. */
    pair_settle(&c->p);
    if (getenv("BENCH_DEBUG")) {
        fprintf(stderr, "tern conn/s thread per stack, %u connections, %llu futex wake-ups:\n",
                c->done, (unsigned long long)qlink_wakeups(c->p.qlink));
        pair_debug_counters(&c->p, "server", "client");
    }
    if (c->fail && c->done == 0) {
        bval_fail(out, "%s: %s", c->fail, strerror(c->err));
    } else {
        bval_set(out, c->done / ((double)(c->t1 - c->t0) / 1e9));
        if (c->fail)
            snprintf(out->why, sizeof(out->why), "stopped after %u: %s", c->done, c->fail);
        else if (c->done < c->target)
            snprintf(out->why, sizeof(out->why), "time cap, %u", c->done);
    }
    tern_close(c->p.st[1], c->listener);
    pair_free(&c->p);
    free(c);
}

struct kconn2 {
    struct sockaddr_in addr;
    int listener;
    enum conn_close how;
    uint32_t target, done;
    uint64_t end, t0, t1;
    const char *fail;
    int err;
};

static void *kconn2_server(void *arg)
{
    struct kconn2 *k = arg;
    for (;;) {
        int s = accept4(k->listener, NULL, NULL, SOCK_CLOEXEC);
        if (s < 0)
            break; /* the client shut the listener down: done */
        char b;
        if (recv(s, &b, 1, 0) == 1 && send(s, "r", 1, MSG_NOSIGNAL) == 1) {
            while (recv(s, &b, 1, 0) > 0) {
                /* until the client's FIN or RST */
            }
        }
        close(s);
    }
    return NULL;
}

void bench_conn_kernel_2t(const struct bench_opts *o, enum conn_close how, struct bench_val *out)
{
    struct kconn2 k = {.how = how, .target = o->conns};
    k.listener = kernel_listener(&k.addr, 128);
    if (k.listener < 0) {
        bval_fail(out, "listen: %s", strerror(errno));
        return;
    }
    pthread_t ts;
    if (pthread_create(&ts, NULL, kconn2_server, &k) != 0) {
        bval_fail(out, "thread");
        close(k.listener);
        return;
    }
    k.t0 = bench_now_ns();
    k.end = k.t0 + bench_ns(o->conn_seconds);
    while (k.done < k.target) {
        char b;
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0)
            k.fail = "socket";
        else if (how == CLOSE_ABORT && kernel_linger0(c) < 0)
            k.fail = "SO_LINGER";
        else if (connect(c, (struct sockaddr *)&k.addr, sizeof(k.addr)) < 0)
            k.fail = "connect";
        else if (send(c, "q", 1, MSG_NOSIGNAL) != 1)
            k.fail = "request";
        else if (recv(c, &b, 1, 0) != 1)
            k.fail = "response";
        k.err = errno;
        if (c >= 0)
            close(c);
        if (k.fail)
            break;
        k.done++;
        if (bench_now_ns() >= k.end)
            break;
    }
    k.t1 = bench_now_ns();
    shutdown(k.listener, SHUT_RDWR); /* wakes the server's accept */
    pthread_join(ts, NULL);
    close(k.listener);
    if (k.fail && k.done == 0) {
        bval_fail(out, "%s: %s", k.fail, strerror(k.err));
    } else {
        bval_set(out, k.done / ((double)(k.t1 - k.t0) / 1e9));
        if (k.fail)
            snprintf(out->why, sizeof(out->why), "stopped after %u: %s: %s", k.done, k.fail,
                     strerror(k.err));
        else if (k.done < k.target)
            snprintf(out->why, sizeof(out->why), "time cap, %u", k.done);
    }
}
