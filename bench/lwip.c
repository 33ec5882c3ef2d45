/*
 * lwIP, as Debian ships it (liblwip-dev 2.1.3: the unix port with its
 * tcpip thread, sys_arch on pthreads, LWIP_TCPIP_CORE_LOCKING, malloc for
 * every pool, TCP_MSS 1460 and TCP_WND 0xFFFF compiled in, a patched
 * socket table that grows without limit).
 *
 * Its own loopback: Debian builds it with LWIP_NETIF_LOOPBACK=1 but
 * LWIP_HAVE_LOOPIF=0 (no netif_loopif), so the bench adds a netif of its
 * own, 192.0.2.1/24, and connects to that address: IPv4 output then hands
 * every packet to netif_loop_output(), which queues it for netif_poll() in
 * the tcpip thread, the same path lwIP's loopif takes. Nothing reaches the
 * netif's output function.
 *
 * lwIP is a process-wide singleton whose thread never ends, so each
 * measurement runs in a process of its own: at start-up, before any
 * thread exists, the bench forks a small "zygote" that waits for commands
 * and forks a fresh worker per command. A worker of a single-threaded
 * parent has only the main malloc arena, so with M_ARENA_MAX 1 mallinfo2()
 * sees every byte lwIP's threads allocate (the memory benchmark).
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lwip/init.h>
#include <lwip/netif.h>
#include <lwip/sockets.h>
#include <lwip/tcpip.h>

#include "bench.h"

#define LW_PORT 5001
#define LW_ADDR 0xc0000201u /* 192.0.2.1 */
#define CHUNK (64u << 10)
/* lwIP finds a segment's connection by walking a list of every PCB, so
 * opening N connections costs O(N^2): the memory benchmark stops at this
 * many pairs (the bytes per connection do not depend on N). */
#define LW_MEM_PAIRS 2000
/* 16384 ephemeral ports and a 2-minute TIME_WAIT (2 * TCP_MSL): a run of
 * connections stops short of running out. */
#define LW_CONNS 16000

/* The zygote's pipes, seen from the main process. */
static struct {
    pid_t pid;
    int cmd_wr, res_rd;
} zyg = {.pid = -1, .cmd_wr = -1, .res_rd = -1};

const char *bench_lwip_what(void)
{
    return "lwIP " LWIP_VERSION_STRING " (Debian liblwip), sockets API, own loopback netif";
}

bool bench_lwip_available(void) { return true; }

/* ---- Inside a worker ---- */

static atomic_int lw_ready;

static void lw_init_done(void *arg)
{
    (void)arg;
    atomic_store(&lw_ready, 1);
}

static err_t lw_output(struct netif *n, struct pbuf *p, const ip4_addr_t *a)
{
    (void)n;
    (void)p;
    (void)a;
    return ERR_OK; /* only traffic to our own address, which loops back */
}

static err_t lw_netif_init(struct netif *n)
{
    n->name[0] = 'b';
    n->name[1] = 'n';
    n->mtu = 1500;
    n->output = lw_output;
    n->flags = NETIF_FLAG_UP | NETIF_FLAG_LINK_UP;
    return ERR_OK;
}

/* Room to spare: the netif is ours, its size the library's. */
static union {
    struct netif nif;
    char pad[4096];
} lw_nif;

static int lw_setup(void)
{
    tcpip_init(lw_init_done, NULL);
    for (int i = 0; i < 5000 && !atomic_load(&lw_ready); i++)
        usleep(1000);
    if (!atomic_load(&lw_ready))
        return -1;
    ip4_addr_t ip, mask, gw;
    IP4_ADDR(&ip, 192, 0, 2, 1);
    IP4_ADDR(&mask, 255, 255, 255, 0);
    IP4_ADDR(&gw, 0, 0, 0, 0);
    LOCK_TCPIP_CORE();
    struct netif *n = netif_add(&lw_nif.nif, &ip, &mask, &gw, NULL, lw_netif_init, tcpip_input);
    if (n) {
        netif_set_up(n);
        netif_set_link_up(n);
        netif_set_default(n);
    }
    UNLOCK_TCPIP_CORE();
    return n ? 0 : -1;
}

static struct sockaddr_in lw_addr(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(LW_PORT)};
    a.sin_addr.s_addr = htonl(LW_ADDR);
    return a;
}

static int lw_listener(int backlog)
{
    int l = lwip_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = lw_addr();
    if (l < 0 || lwip_bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || lwip_listen(l, backlog) < 0)
        return -1;
    return l;
}

struct lw_bulk {
    uint64_t total, end, t0;
    int err;
};

static void *lw_sender(void *arg)
{
    struct lw_bulk *b = arg;
    static uint8_t buf[CHUNK];
    int c = lwip_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = lw_addr();
    if (c < 0 || lwip_connect(c, (struct sockaddr *)&a, sizeof(a)) < 0) {
        b->err = errno;
        return NULL;
    }
    b->t0 = bench_now_ns();
    uint64_t sent = 0;
    while (sent < b->total && bench_now_ns() < b->end) {
        size_t n = b->total - sent < CHUNK ? (size_t)(b->total - sent) : CHUNK;
        ssize_t w = lwip_send(c, buf, n, 0);
        if (w <= 0)
            break;
        sent += (uint64_t)w;
    }
    lwip_close(c);
    return NULL;
}

static void lw_bulk(const struct bench_opts *o, struct bench_val *out)
{
    struct lw_bulk b = {.total = o->bulk_bytes, .end = bench_now_ns() + bench_ns(o->bulk_seconds)};
    int l = lw_listener(4);
    if (l < 0) {
        bval_fail(out, "listen: %s", strerror(errno));
        return;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, lw_sender, &b) != 0) {
        bval_fail(out, "thread");
        return;
    }
    int s = lwip_accept(l, NULL, NULL);
    static uint8_t buf[CHUNK];
    uint64_t got = 0, now = bench_now_ns();
    if (s >= 0) {
        struct timeval tv = {.tv_sec = 1};
        lwip_setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        while (got < b.total && now < b.end) {
            ssize_t r = lwip_recv(s, buf, sizeof(buf), 0);
            now = bench_now_ns();
            if (r < 0 && errno == EAGAIN)
                continue;
            if (r <= 0)
                break;
            got += (uint64_t)r;
        }
        lwip_close(s);
    }
    pthread_join(th, NULL);
    if (b.err || s < 0 || got == 0) {
        bval_fail(out, "%s", strerror(b.err ? b.err : errno));
        return;
    }
    bval_set(out, (double)got / ((double)(now - b.t0) / 1e9) / 1e6);
    if (got < b.total)
        snprintf(out->why, sizeof(out->why), "time cap, %.0f MB", (double)got / 1e6);
}

/* connect, 1-byte request and answer, the client closes first. An
 * orderly close: lwIP 2.1.3 honours SO_LINGER 0 only while data is
 * unsent (api_msg.c), so an idle client ends in TIME_WAIT all the same. */
static void lw_conn(const struct bench_opts *o, struct bench_val *out)
{
    int l = lw_listener(16);
    if (l < 0) {
        bval_fail(out, "listen: %s", strerror(errno));
        return;
    }
    struct sockaddr_in a = lw_addr();
    uint32_t conns = o->conns < LW_CONNS ? o->conns : LW_CONNS;
    uint64_t t0 = bench_now_ns(), end = t0 + bench_ns(o->conn_seconds);
    uint32_t done = 0;
    const char *fail = NULL;
    int err = 0;
    while (done < conns && !fail) {
        char b;
        int c = lwip_socket(AF_INET, SOCK_STREAM, 0), s = -1;
        if (c < 0)
            fail = "socket";
        else if (lwip_connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
            fail = "connect";
        else if ((s = lwip_accept(l, NULL, NULL)) < 0)
            fail = "accept";
        else if (lwip_send(c, "q", 1, 0) != 1 || lwip_recv(s, &b, 1, 0) != 1)
            fail = "request";
        else if (lwip_send(s, "r", 1, 0) != 1 || lwip_recv(c, &b, 1, 0) != 1)
            fail = "response";
        else {
            lwip_close(c);
            c = -1;
            ssize_t r = lwip_recv(s, &b, 1, 0);
            if (r != 0 && !(r < 0 && errno == ECONNRESET))
                fail = "close";
        }
        err = errno;
        if (c >= 0)
            lwip_close(c);
        if (s >= 0)
            lwip_close(s);
        if (!fail)
            done++;
        if (bench_now_ns() >= end)
            break;
    }
    uint64_t ns = bench_now_ns() - t0;
    if (done == 0) {
        bval_fail(out, "%s: %s", fail ? fail : "none", strerror(err));
        return;
    }
    bval_set(out, done / ((double)ns / 1e9));
    if (fail)
        snprintf(out->why, sizeof(out->why), "stopped after %u: %s: %s", done, fail,
                 strerror(err));
    else if (done < conns)
        snprintf(out->why, sizeof(out->why), "time cap, %u", done);
    else if (done < o->conns)
        snprintf(out->why, sizeof(out->why), "%u connections", done);
}

static uint64_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
}

static int lw_open(int l, uint32_t n, uint64_t end)
{
    struct sockaddr_in a = lw_addr();
    char b;
    for (uint32_t i = 0; i < n; i++) {
        if (bench_now_ns() >= end)
            return -1;
        int c = lwip_socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0 || lwip_connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
            return -1;
        int s = lwip_accept(l, NULL, NULL);
        if (s < 0 || lwip_send(c, "q", 1, 0) != 1 || lwip_recv(s, &b, 1, 0) != 1 ||
            lwip_send(s, "r", 1, 0) != 1 || lwip_recv(c, &b, 1, 0) != 1)
            return -1;
    }
    return 0;
}

static void lw_mem(const struct bench_opts *o, struct mem_result *out)
{
    uint32_t n = o->idle < LW_MEM_PAIRS ? o->idle : LW_MEM_PAIRS;
    uint64_t end = bench_now_ns() + bench_ns(o->idle_seconds);
    int l = lw_listener(16);
    if (l < 0 || lw_open(l, 1, end) < 0) {
        bval_fail(&out->avg, "first connection: %s", strerror(errno));
        out->marginal = out->avg;
        return;
    }
    usleep(300 * 1000); /* delayed ACKs (lwIP's fast timer) have gone out */
    double m0 = (double)heap_bytes();
    if (lw_open(l, n / 2, end) < 0)
        goto fail;
    usleep(300 * 1000);
    double m1 = (double)heap_bytes();
    if (lw_open(l, n - n / 2, end) < 0)
        goto fail;
    usleep(300 * 1000);
    double m2 = (double)heap_bytes();
    if (m2 <= 0) {
        bval_fail(&out->avg, "mallinfo2 counts nothing here");
        out->marginal = out->avg;
        return;
    }
    bval_set(&out->avg, (m2 - m0) / (2.0 * n));
    if (n - n / 2)
        bval_set(&out->marginal, (m2 - m1) / (2.0 * (n - n / 2)));
    else
        bval_fail(&out->marginal, "N too small");
    if (n < o->idle) {
        snprintf(out->avg.why, sizeof(out->avg.why), "%u pairs", n);
        snprintf(out->marginal.why, sizeof(out->marginal.why), "%u pairs", n);
    }
    return;
fail:
    bval_fail(&out->avg, "opening: %s", bench_now_ns() >= end ? "time cap" : strerror(errno));
    out->marginal = out->avg;
}

/* ---- The zygote and its workers ---- */

struct lw_cmd {
    char what; /* 'b' bulk, 'c' conn/s, 'm' memory, 'q' quit */
    struct bench_opts o;
};

union lw_res {
    struct bench_val val;
    struct mem_result mem;
};

static void worker(const struct lw_cmd *cmd, int res_wr)
{
    union lw_res r;
    memset(&r, 0, sizeof(r));
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* a hung worker goes with its zygote */
    if (cmd->what == 'm')
        mallopt(M_ARENA_MAX, 1); /* every thread in the main arena */
    if (lw_setup() < 0) {
        bval_fail(&r.val, "lwIP did not start");
        r.mem.marginal = r.mem.avg;
    } else if (cmd->what == 'b') {
        lw_bulk(&cmd->o, &r.val);
    } else if (cmd->what == 'c') {
        lw_conn(&cmd->o, &r.val);
    } else {
        lw_mem(&cmd->o, &r.mem);
    }
    char ok = 'K';
    if (write(res_wr, &ok, 1) != 1 || write(res_wr, &r, sizeof(r)) != (ssize_t)sizeof(r))
        _exit(1);
    _exit(0); /* lwIP's thread ends with the process */
}

static void zygote(int cmd_rd, int res_wr)
{
    struct lw_cmd cmd;
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* and the zygote with the bench */
    while (read(cmd_rd, &cmd, sizeof(cmd)) == (ssize_t)sizeof(cmd) && cmd.what != 'q') {
        pid_t pid = fork();
        if (pid == 0)
            worker(&cmd, res_wr);
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            /* The worker died before answering: say how. */
            char dead = 'D';
            int why = pid < 0 ? -1 : WIFSIGNALED(st) ? WTERMSIG(st) : 0;
            if (write(res_wr, &dead, 1) != 1 || write(res_wr, &why, sizeof(why)) != sizeof(why))
                _exit(1);
        }
    }
    _exit(0);
}

void bench_lwip_start(void)
{
    int c[2], r[2];
    if (pipe2(c, O_CLOEXEC) < 0)
        return;
    if (pipe2(r, O_CLOEXEC) < 0) {
        close(c[0]);
        close(c[1]);
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(c[1]);
        close(r[0]);
        zygote(c[0], r[1]);
    }
    close(c[0]);
    close(r[1]);
    if (pid < 0) {
        close(c[1]);
        close(r[0]);
        return;
    }
    zyg.pid = pid;
    zyg.cmd_wr = c[1];
    zyg.res_rd = r[0];
}

static int read_full(int fd, void *buf, size_t len, uint64_t end)
{
    size_t have = 0;
    while (have < len) {
        uint64_t now = bench_now_ns();
        if (now >= end)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)((end - now) / TERN_NS_PER_MS) + 1) <= 0)
            continue;
        ssize_t n = read(fd, (char *)buf + have, len - have);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    return 0;
}

/* Run one command in a fresh worker; false (and *why) when it gave no
 * answer. */
static bool run(char what, const struct bench_opts *o, double seconds, union lw_res *r,
                char *why, size_t whylen)
{
    if (zyg.pid < 0) {
        snprintf(why, whylen, "no helper process");
        return false;
    }
    struct lw_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.what = what;
    cmd.o = *o;
    char tag;
    uint64_t end = bench_now_ns() + bench_ns(seconds + 10);
    if (write(zyg.cmd_wr, &cmd, sizeof(cmd)) != (ssize_t)sizeof(cmd) ||
        read_full(zyg.res_rd, &tag, 1, end) < 0) {
        snprintf(why, whylen, "no answer in time");
        bench_lwip_stop(); /* a hung worker must not hold the run */
        return false;
    }
    if (tag == 'K') {
        if (read_full(zyg.res_rd, r, sizeof(*r), end) == 0)
            return true;
        snprintf(why, whylen, "short answer");
        return false;
    }
    int sig = 0;
    read_full(zyg.res_rd, &sig, sizeof(sig), end);
    snprintf(why, whylen, sig > 0 ? "worker died: signal %d" : "worker failed (%d)", sig);
    return false;
}

void bench_lwip_bulk(const struct bench_opts *o, struct bench_val *out)
{
    union lw_res r;
    char why[96];
    if (run('b', o, o->bulk_seconds, &r, why, sizeof(why)))
        *out = r.val;
    else
        bval_fail(out, "%s", why);
}

void bench_lwip_conn(const struct bench_opts *o, struct bench_val *out)
{
    union lw_res r;
    char why[96];
    if (run('c', o, o->conn_seconds, &r, why, sizeof(why)))
        *out = r.val;
    else
        bval_fail(out, "%s", why);
}

void bench_lwip_mem(const struct bench_opts *o, struct mem_result *out)
{
    union lw_res r;
    char why[96];
    if (run('m', o, o->idle_seconds + 2, &r, why, sizeof(why))) {
        *out = r.mem;
    } else {
        bval_fail(&out->avg, "%s", why);
        out->marginal = out->avg;
    }
}

void bench_lwip_stop(void)
{
    if (zyg.pid < 0)
        return;
    struct lw_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.what = 'q';
    if (write(zyg.cmd_wr, &cmd, sizeof(cmd)) != (ssize_t)sizeof(cmd))
        kill(zyg.pid, SIGKILL);
    /* A hung worker dies with the zygote (PR_SET_PDEATHSIG). */
    struct pollfd p = {.fd = zyg.res_rd, .events = POLLIN};
    int st;
    for (int i = 0; i < 50 && waitpid(zyg.pid, &st, WNOHANG) == 0; i++)
        poll(&p, 0, 20);
    if (waitpid(zyg.pid, &st, WNOHANG) == 0) {
        kill(zyg.pid, SIGKILL);
        waitpid(zyg.pid, &st, 0);
    }
    close(zyg.cmd_wr);
    close(zyg.res_rd);
    zyg.pid = -1;
}
