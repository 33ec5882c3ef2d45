/*
 * Memory per idle established connection. N pairs are opened, each
 * carries a 1-byte request and a 1-byte answer (so whatever a connection
 * allocates for data has been allocated, and given back if it is given
 * back when idle), then they sit idle. Two numbers per stack, in bytes
 * per endpoint (a pair is two endpoints):
 *   average  = (memory with N pairs - memory before the first) / 2N
 *   marginal = (memory with N pairs - memory with N/2 pairs) / N
 * The marginal one leaves out per-stack costs that do not grow with the
 * connections (caches, a first table).
 *
 * Tern: heap bytes in use (mallinfo2: uordblks + hblkhd), both stacks in
 * this thread. Kernel: /proc/meminfo Slab over 127.0.0.1; Slab is the
 * whole machine's, so anything else running moves it too.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "kernel.h"

#define PORT 7000
#define BATCH 256

static uint64_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
}

static void set_result(struct mem_result *out, double base, double half, double full,
                       uint32_t n)
{
    bval_set(&out->avg, (full - base) / (2.0 * n));
    uint32_t upper = n - n / 2;
    if (upper)
        bval_set(&out->marginal, (full - half) / (2.0 * upper));
    else
        bval_fail(&out->marginal, "N too small");
}

/* ---- Tern ---- */

static void tweak(struct tern_stack_config *cfg, void *arg)
{
    uint32_t n = *(const uint32_t *)arg;
    cfg->max_sockets = n + 64;
    cfg->ephemeral_lo = 1024;
    cfg->ephemeral_hi = 65535;
}

/* Poll at the real clock for `ns` so that delayed ACKs and the like have
 * gone out and every connection is idle (Tern gives a drained buffer back
 * TERN_TCP_RECLAIM_NS, 100 ms, after it drains). */
static void quiesce(struct tern_pair *p, uint64_t ns)
{
    uint64_t end = bench_now_ns() + ns;
    while (bench_now_ns() < end) {
        uint64_t now = bench_now_ns();
        tern_stack_poll(p->st[1], now);
        tern_stack_poll(p->st[0], now);
    }
}

/* Open `n` pairs onto cli[]/srv[]; 0 or -1 with a reason in *why. */
static int tern_open(struct tern_pair *p, int listener, int *cli, int *srv, uint32_t n,
                     uint64_t end, const char **why)
{
    struct sockaddr_in a = pair_addr(1, PORT);
    char b;
    for (uint32_t i = 0; i < n;) {
        uint32_t k = n - i < BATCH ? n - i : BATCH;
        for (uint32_t j = 0; j < k; j++) {
            int fd = tern_socket(p->st[0], AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (fd < 0 || (tern_connect(p->st[0], fd, (struct sockaddr *)&a, sizeof(a)) < 0 &&
                           errno != EINPROGRESS)) {
                *why = "connect";
                return -1;
            }
            cli[i + j] = fd;
        }
        for (uint32_t j = 0; j < k;) {
            int fd = tern_accept4(p->st[1], listener, NULL, NULL, SOCK_NONBLOCK);
            if (fd >= 0) {
                srv[i + j++] = fd;
                continue;
            }
            if (errno != EAGAIN || bench_now_ns() >= end) {
                *why = "accept";
                return -1;
            }
            uint64_t now = bench_now_ns();
            tern_stack_poll(p->st[1], now);
            tern_stack_poll(p->st[0], now);
        }
        /* The request and the answer. Accept order need not be connect
         * order, so each side reads its own socket of the pair. */
        for (uint32_t j = 0; j < k; j++)
            if (tern_send(p->st[0], cli[i + j], "q", 1, 0) != 1) {
                *why = "request";
                return -1;
            }
        pair_settle(p);
        for (uint32_t j = 0; j < k; j++)
            if (tern_recv(p->st[1], srv[i + j], &b, 1, 0) != 1 ||
                tern_send(p->st[1], srv[i + j], "r", 1, 0) != 1) {
                *why = "answer";
                return -1;
            }
        pair_settle(p);
        for (uint32_t j = 0; j < k; j++)
            if (tern_recv(p->st[0], cli[i + j], &b, 1, 0) != 1) {
                *why = "answer read";
                return -1;
            }
        i += k;
    }
    return 0;
}

void bench_mem_tern(const struct bench_opts *o, struct mem_result *out)
{
    uint32_t n = o->idle;
    struct tern_pair p;
    int *cli = calloc(n + 1, sizeof(int)), *srv = calloc(n + 1, sizeof(int));
    if (!cli || !srv || pair_new_wire(&p, 1500, false, tweak, &n) < 0) {
        bval_fail(&out->avg, "setup: %s", strerror(errno));
        out->marginal = out->avg;
        free(cli);
        free(srv);
        return;
    }
    const char *why = NULL;
    uint64_t end = bench_now_ns() + bench_ns(o->idle_seconds);
    int l = tern_socket(p.st[1], AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = pair_addr(1, PORT);
    if (l < 0 || tern_bind(p.st[1], l, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        tern_listen(p.st[1], l, 4096) < 0) {
        why = "listen";
        goto fail;
    }
    /* One pair first, so that ARP and the first allocations of everything
     * are in the baseline. */
    if (tern_open(&p, l, cli + n, srv + n, 1, end, &why) < 0)
        goto fail;
    quiesce(&p, 300 * TERN_NS_PER_MS);
    double base = (double)heap_bytes();
    if (tern_open(&p, l, cli, srv, n / 2, end, &why) < 0)
        goto fail;
    quiesce(&p, 300 * TERN_NS_PER_MS);
    double half = (double)heap_bytes();
    if (tern_open(&p, l, cli + n / 2, srv + n / 2, n - n / 2, end, &why) < 0)
        goto fail;
    quiesce(&p, 300 * TERN_NS_PER_MS);
    double full = (double)heap_bytes();
    struct tern_live la, lb;
    tern_stack_live(p.st[0], &la);
    tern_stack_live(p.st[1], &lb);
    if (la.sockets < n + 1 || lb.sockets < n + 2) {
        why = "connections missing";
        goto fail;
    }
    if (full <= 0) {
        /* A sanitizer's allocator keeps mallinfo2 at zero. */
        bval_fail(&out->avg, "mallinfo2 counts nothing here");
        out->marginal = out->avg;
    } else {
        set_result(out, base, half, full, n);
    }
    pair_free(&p); /* frees every socket */
    free(cli);
    free(srv);
    return;
fail:
    bval_fail(&out->avg, "%s failed: %s", why, strerror(errno));
    out->marginal = out->avg;
    pair_free(&p);
    free(cli);
    free(srv);
}

/* ---- Kernel ---- */

static long slab_kb(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Slab: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* The client side runs in a child process, so that each process holds
 * only N descriptors (RLIMIT_NOFILE may not be raised here). The two talk
 * over pipes, one byte a step: the child says 'R' (ready), 'H' (first
 * half open and answered), 'F' (all), or 'E' (failed); the parent says
 * 'G' (go on) or 'X' (close and exit). */
static void kernel_child(const struct sockaddr_in *a, uint32_t n, int rd, int wr)
{
    int *cli = malloc(n * sizeof(int));
    char b, step = 'R';
    uint32_t i = 0;
    if (!cli || write(wr, &step, 1) != 1)
        _exit(1);
    for (uint32_t part = 0; part < 2; part++) {
        if (read(rd, &b, 1) != 1 || b != 'G')
            _exit(1);
        for (uint32_t upto = part ? n : n / 2; i < upto; i++) {
            int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (c < 0 || connect(c, (const struct sockaddr *)a, sizeof(*a)) < 0 ||
                send(c, "q", 1, 0) != 1 || recv(c, &b, 1, 0) != 1) {
                step = 'E';
                if (write(wr, &step, 1) != 1)
                    _exit(1);
                _exit(1);
            }
            cli[i] = c;
        }
        step = part ? 'F' : 'H';
        if (write(wr, &step, 1) != 1)
            _exit(1);
    }
    if (read(rd, &b, 1) != 1) /* 'X', or the parent is gone */
        b = 'X';
    for (i = 0; i < n; i++) {
        kernel_linger0(cli[i]); /* leave no TIME_WAIT behind */
        close(cli[i]);
    }
    _exit(0);
}

void bench_mem_kernel(const struct bench_opts *o, struct mem_result *out)
{
    uint32_t n = o->idle;
    uint64_t have = bench_raise_nofile((uint64_t)n + 64);
    int *srv = calloc(n ? n : 1, sizeof(int));
    struct sockaddr_in a;
    int l = kernel_listener(&a, 4096), p2c[2] = {-1, -1}, c2p[2] = {-1, -1};
    uint32_t got = 0;
    const char *why = NULL;
    char b;
    pid_t pid = -1;
    if (have < (uint64_t)n + 64) {
        why = "RLIMIT_NOFILE too low";
        goto fail;
    }
    if (!srv || l < 0 || pipe2(p2c, O_CLOEXEC) < 0 || pipe2(c2p, O_CLOEXEC) < 0) {
        why = "setup";
        goto fail;
    }
    /* A dead child must not leave accept() waiting for ever. */
    struct timeval tv = {.tv_sec = 10};
    setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        why = "fork";
        goto fail;
    }
    if (pid == 0) {
        close(l);
        kernel_child(&a, n, p2c[0], c2p[1]);
    }
    double mark[3];
    if (read(c2p[0], &b, 1) != 1 || b != 'R') {
        why = "child";
        goto fail;
    }
    usleep(100 * 1000);
    mark[0] = (double)slab_kb() * 1024;
    for (uint32_t part = 0; part < 2; part++) {
        if (write(p2c[1], "G", 1) != 1) {
            why = "pipe";
            goto fail;
        }
        for (uint32_t upto = part ? n : n / 2; got < upto; got++) {
            int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
            if (s < 0) {
                why = "accept";
                goto fail;
            }
            srv[got] = s;
            if (recv(s, &b, 1, 0) != 1 || send(s, "r", 1, 0) != 1) {
                why = "exchange";
                goto fail;
            }
        }
        if (read(c2p[0], &b, 1) != 1 || b != (part ? 'F' : 'H')) {
            why = "child";
            goto fail;
        }
        usleep(300 * 1000); /* delayed ACKs out, per-CPU counters folded */
        mark[part + 1] = (double)slab_kb() * 1024;
    }
    if (mark[0] <= 0) {
        why = "no Slab in /proc/meminfo";
        goto fail;
    }
    set_result(out, mark[0], mark[1], mark[2], n);
    goto out;
fail:
    bval_fail(&out->avg, "%s: %s", why, strerror(errno));
    out->marginal = out->avg;
out:
    if (pid > 0 && !out->avg.ok)
        kill(pid, SIGKILL); /* it may wait in connect or recv */
    for (uint32_t i = 0; i < got; i++)
        close(srv[i]);
    if (p2c[1] >= 0 && write(p2c[1], "X", 1) != 1)
        (void)0; /* the child then sees EOF, which means the same */
    if (pid > 0)
        waitpid(pid, NULL, 0);
    for (int i = 0; i < 2; i++) {
        if (p2c[i] >= 0)
            close(p2c[i]);
        if (c2p[i] >= 0)
            close(c2p[i]);
    }
    if (l >= 0)
        close(l);
    free(srv);
}
