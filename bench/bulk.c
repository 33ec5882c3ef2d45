/*
 * Bulk throughput: one connection carries bench_opts.bulk_bytes one way
 * (or as much as fits in bulk_seconds); the result is bytes received over
 * wall-clock time from the first send to the last byte read, in MB/s
 * (10^6 bytes). The data is not checked here: the test suite does that.
 *
 *   Tern, one thread: both stacks on the in-memory wire, one loop that
 *     sends, polls the receiver, reads, polls the sender, at the real
 *     monotonic clock.
 *   Tern, thread per stack: each stack, with its application side, owned
 *     by a thread of its own, on the bench's SPSC-ring link (qlink.h).
 *   Kernel: a sender and a receiver thread with default socket buffers
 *     over 127.0.0.1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "kernel.h"
#include "qlink.h"

#define CHUNK (256u << 10)
#define PORT 5001
/* A thread with nothing to do spins this long (yielding the CPU as it
 * goes) before it sleeps on a futex: about what a cross-core wake-up
 * costs on these VMs. Pure spinning was worse: with another tenant on the
 * second core, the spinner held the CPU its peer needed. */
#define SPIN_NS (100 * 1000)

static uint8_t *chunk_new(void)
{
    uint8_t *b = malloc(CHUNK);
    if (b)
        for (size_t i = 0; i < CHUNK; i++)
            b[i] = (uint8_t)(i * 7919u >> 3);
    return b;
}

static void close_conn(struct tern_pair *p, struct tern_conn *c)
{
    if (c->client >= 0)
        tern_close(p->st[0], c->client);
    if (c->server >= 0)
        tern_close(p->st[1], c->server);
    if (c->listener >= 0)
        tern_close(p->st[1], c->listener);
    pair_settle(p);
}

static void report(struct bench_val *out, uint64_t got, uint64_t want, uint64_t ns)
{
    if (got == 0 || ns == 0) {
        bval_fail(out, "no data moved");
        return;
    }
    bval_set(out, (double)got / ((double)ns / 1e9) / 1e6);
    if (got < want)
        snprintf(out->why, sizeof(out->why), "time cap, %.0f MB", (double)got / 1e6);
}

/* ---- Tern, one thread on the wire ---- */

void bench_bulk_tern_1t(const struct bench_opts *o, uint32_t mtu, bool offload,
                        struct bench_val *out)
{
    struct tern_pair p;
    struct tern_conn c = {.listener = -1, .client = -1, .server = -1};
    uint8_t *buf = chunk_new(), *rbuf = malloc(CHUNK);
    if (!buf || !rbuf || pair_new_wire(&p, mtu, offload, NULL, NULL) < 0) {
        bval_fail(out, "setup: %s", strerror(errno));
        free(buf);
        free(rbuf);
        return;
    }
    if (pair_connect(&p, PORT, &c) < 0) {
        bval_fail(out, "connect failed");
        goto done;
    }
    uint64_t total = o->bulk_bytes, sent = 0, got = 0;
    uint64_t t0 = bench_now_ns(), end = t0 + bench_ns(o->bulk_seconds), now = t0;
    while (got < total && now < end) {
        while (sent < total) {
            size_t n = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
            ssize_t w = tern_send(p.st[0], c.client, buf, n, 0);
            if (w <= 0)
                break;
            sent += (uint64_t)w;
        }
        tern_stack_poll(p.st[1], now);
        ssize_t r;
        while ((r = tern_recv(p.st[1], c.server, rbuf, CHUNK, 0)) > 0)
            got += (uint64_t)r;
        if (r < 0 && errno != EAGAIN) {
            bval_fail(out, "recv: %s", strerror(errno));
            goto done;
        }
        tern_stack_poll(p.st[0], now);
        now = bench_now_ns();
    }
    report(out, got, total, now - t0);
    if (getenv("BENCH_DEBUG")) {
        fprintf(stderr, "tern one thread, MTU %u: %.3f s\n", mtu, (double)(now - t0) / 1e9);
        pair_debug_counters(&p, "receiver", "sender");
    }
done:
    close_conn(&p, &c);
    pair_free(&p);
    free(buf);
    free(rbuf);
}

/* ---- Tern, one thread per stack on the qlink ---- */

struct bulk2 {
    struct tern_pair p;
    struct tern_conn c;
    uint64_t total, end;
    pthread_barrier_t start;
    _Atomic int done;
    uint64_t t0, t1, sent, got; /* each written by one thread, read after join */
    int err;
};

static void *bulk2_sender(void *arg)
{
    struct bulk2 *b = arg;
    struct tern_stack *s = b->p.st[0];
    uint8_t *buf = chunk_new();
    pthread_barrier_wait(&b->start);
    b->t0 = bench_now_ns();
    uint64_t now = b->t0;
    while (buf && !atomic_load_explicit(&b->done, memory_order_relaxed) && now < b->end) {
        int frames = tern_stack_poll(s, now);
        uint64_t moved = 0;
        while (b->sent < b->total) {
            size_t n = b->total - b->sent < CHUNK ? (size_t)(b->total - b->sent) : CHUNK;
            ssize_t w = tern_send(s, b->c.client, buf, n, 0);
            if (w <= 0)
                break;
            b->sent += (uint64_t)w;
            moved += (uint64_t)w;
        }
        if (frames == 0 && moved == 0) {
            tern_time_t d = tern_stack_next_deadline(s);
            uint64_t cap = now + 10 * TERN_NS_PER_MS;
            qlink_wait(b->p.qlink, 0, d < cap ? d : cap, SPIN_NS);
        }
        now = bench_now_ns();
    }
    free(buf);
    return NULL;
}

static void *bulk2_receiver(void *arg)
{
    struct bulk2 *b = arg;
    struct tern_stack *s = b->p.st[1];
    uint8_t *buf = malloc(CHUNK);
    pthread_barrier_wait(&b->start);
    uint64_t now = bench_now_ns();
    while (buf && b->got < b->total && now < b->end) {
        int frames = tern_stack_poll(s, now);
        uint64_t moved = 0;
        ssize_t r;
        while ((r = tern_recv(s, b->c.server, buf, CHUNK, 0)) > 0)
            moved += (uint64_t)r;
        if (r < 0 && errno != EAGAIN) {
            b->err = errno;
            break;
        }
        b->got += moved;
        if (frames == 0 && moved == 0) {
            tern_time_t d = tern_stack_next_deadline(s);
            uint64_t cap = now + 10 * TERN_NS_PER_MS;
            qlink_wait(b->p.qlink, 1, d < cap ? d : cap, SPIN_NS);
        }
        now = bench_now_ns();
    }
    b->t1 = now;
    atomic_store(&b->done, 1);
    qlink_kick(b->p.qlink, 0);
    free(buf);
    return NULL;
}

void bench_bulk_tern_2t(const struct bench_opts *o, uint32_t mtu, bool offload,
                        struct bench_val *out)
{
    struct bulk2 *b = calloc(1, sizeof(*b));
    if (!b || pair_new_qlink(&b->p, mtu, offload, NULL, NULL) < 0) {
        bval_fail(out, "setup: %s", strerror(errno));
        free(b);
        return;
    }
    b->c = (struct tern_conn){.listener = -1, .client = -1, .server = -1};
    if (pair_connect(&b->p, PORT, &b->c) < 0) {
        bval_fail(out, "connect failed");
        goto done;
    }
    b->total = o->bulk_bytes;
    b->end = bench_now_ns() + bench_ns(o->bulk_seconds);
    pthread_barrier_init(&b->start, NULL, 2);
    pthread_t ts, tr;
    if (pthread_create(&tr, NULL, bulk2_receiver, b) != 0) {
        bval_fail(out, "thread");
        goto done;
    }
    if (pthread_create(&ts, NULL, bulk2_sender, b) != 0) {
        /* The receiver waits at the barrier: meet it with nothing to send. */
        b->total = 0;
        bulk2_sender(b);
    } else {
        pthread_join(ts, NULL);
    }
    pthread_join(tr, NULL);
    pthread_barrier_destroy(&b->start);
    if (getenv("BENCH_DEBUG")) {
        fprintf(stderr, "tern thread per stack, MTU %u: %.3f s, %llu futex wake-ups, "
                "%llu frames refused\n", mtu, (double)(b->t1 - b->t0) / 1e9,
                (unsigned long long)qlink_wakeups(b->p.qlink),
                (unsigned long long)qlink_refused(b->p.qlink));
        pair_debug_counters(&b->p, "receiver", "sender");
    }
    if (b->err)
        bval_fail(out, "recv: %s", strerror(b->err));
    else
        report(out, b->got, b->total, b->t1 - b->t0);
    if (out->ok && qlink_refused(b->p.qlink))
        snprintf(out->why + strlen(out->why), sizeof(out->why) - strlen(out->why),
                 "%s%llu frames refused by a full ring", out->why[0] ? ", " : "",
                 (unsigned long long)qlink_refused(b->p.qlink));
done:
    close_conn(&b->p, &b->c);
    pair_free(&b->p);
    free(b);
}

/* ---- The kernel over 127.0.0.1 ---- */

struct kbulk {
    int listener, client;
    struct sockaddr_in addr;
    uint64_t total, end;
    uint64_t t0, t1, got;
    int err;
};

static void *kbulk_sender(void *arg)
{
    struct kbulk *k = arg;
    uint8_t *buf = chunk_new();
    if (!buf || connect(k->client, (struct sockaddr *)&k->addr, sizeof(k->addr)) < 0) {
        k->err = errno ? errno : ENOMEM;
        free(buf);
        close(k->client);
        return NULL;
    }
    k->t0 = bench_now_ns();
    uint64_t sent = 0;
    while (sent < k->total && bench_now_ns() < k->end) {
        size_t n = k->total - sent < CHUNK ? (size_t)(k->total - sent) : CHUNK;
        ssize_t w = send(k->client, buf, n, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        sent += (uint64_t)w;
    }
    close(k->client);
    free(buf);
    return NULL;
}

static void *kbulk_receiver(void *arg)
{
    struct kbulk *k = arg;
    int s = accept(k->listener, NULL, NULL);
    uint8_t *buf = malloc(CHUNK);
    if (s < 0 || !buf) {
        k->err = errno ? errno : ENOMEM;
        free(buf);
        if (s >= 0)
            close(s);
        return NULL;
    }
    uint64_t now = bench_now_ns();
    while (k->got < k->total && now < k->end) {
        ssize_t r = recv(s, buf, CHUNK, 0);
        if (r <= 0)
            break;
        k->got += (uint64_t)r;
        now = bench_now_ns();
    }
    k->t1 = now;
    close(s); /* a sender stopped by the time cap sees EPIPE, not a hang */
    free(buf);
    return NULL;
}

void bench_bulk_kernel(const struct bench_opts *o, uint32_t mtu, bool offload,
                       struct bench_val *out, char *how, size_t howlen)
{
    struct kbulk k = {.listener = -1, .client = -1};
    if (mtu >= 65535) {
        snprintf(how, howlen, "kernel: lo MTU 65536 (its default), 127.0.0.1");
        k.listener = kernel_listener(&k.addr, 16);
        k.client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    } else if (kernel_netns_sockets(mtu, offload, &k.listener, &k.addr, &k.client) == 0) {
        snprintf(how, howlen,
                 "kernel: 127.0.0.1 in a private network namespace whose lo has MTU %u%s", mtu,
                 offload ? " (TSO and GSO on, lo's default)" : " and TSO and GSO off");
    } else {
        /* No namespace (not root): clamp the MSS to what the MTU gives. */
        int err = errno;
        k.listener = kernel_listener(&k.addr, 16);
        k.client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int mss = (int)mtu - 40;
        if (k.client >= 0)
            setsockopt(k.client, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss));
        if (k.listener >= 0)
            setsockopt(k.listener, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss));
        snprintf(how, howlen,
                 "kernel: 127.0.0.1 with TCP_MAXSEG %d, lo's offloads on (no namespace: %s)",
                 mss, strerror(err));
    }
    if (k.listener < 0 || k.client < 0) {
        bval_fail(out, "sockets: %s", strerror(errno));
        if (k.listener >= 0)
            close(k.listener);
        if (k.client >= 0)
            close(k.client);
        return;
    }
    k.total = o->bulk_bytes;
    k.end = bench_now_ns() + bench_ns(o->bulk_seconds);
    pthread_t ts, tr;
    if (pthread_create(&tr, NULL, kbulk_receiver, &k) != 0) {
        bval_fail(out, "thread");
        close(k.listener);
        close(k.client);
        return;
    }
    if (pthread_create(&ts, NULL, kbulk_sender, &k) != 0)
        kbulk_sender(&k); /* in this thread, then */
    else
        pthread_join(ts, NULL);
    pthread_join(tr, NULL);
    close(k.listener);
    if (k.err)
        bval_fail(out, "%s", strerror(k.err));
    else
        report(out, k.got, k.total, k.t1 - k.t0);
}
