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
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "kernel.h"

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

/* Poll both stacks until `fn` is done (returns > 0) or fails (< 0). */
static int step(struct tern_pair *p, int (*fn)(struct tern_pair *, void *), void *arg,
                uint64_t end)
{
    for (;;) {
        int r = fn(p, arg);
        if (r != 0)
            return r;
        uint64_t now = bench_now_ns();
        if (now >= end)
            return -1;
        tern_stack_poll(p->st[1], now);
        tern_stack_poll(p->st[0], now);
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
        if (bench_now_ns() >= end)
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
