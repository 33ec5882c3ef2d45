/* The bench's thread-safe link: see qlink.h for the contract. */
#include "qlink.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define ETH_HDR 14
/* A slot's frame came with TERN_FRAME_CSUM_PENDING: the ring is memory,
 * like the wire, so checksums are left to the port (TX_CSUM). */
#define SLOT_CSUM_PENDING (1u << 31)
/* About this many bytes of frames per direction, in 64..1024 slots. */
#define RING_BYTES (8u << 20)
/* Sleep at most this long at once, so a lost wake-up costs little. */
#define MAX_SLEEP_NS (50 * TERN_NS_PER_MS)

/* One direction. The producer owns tail and head_cache, the consumer head
 * and tail_cache; each group sits on its own cache line. */
struct qring {
    _Alignas(64) _Atomic uint32_t tail;
    uint32_t head_cache;
    _Alignas(64) _Atomic uint32_t head;
    uint32_t tail_cache;
    _Alignas(64) uint32_t mask, slot_cap, mtu_frame;
    uint32_t *len;  /* frame length, SLOT_CSUM_PENDING or'ed in */
    uint16_t *gso;  /* a super-frame's gso_size (offload), else 0 */
    uint8_t *data;
};

/* A thread's sleep: `sleeping` says it may be in futex_wait on `seq`. */
struct qwait {
    _Alignas(64) _Atomic uint32_t sleeping;
    _Atomic uint32_t seq;
};

struct qport {
    struct tern_link link; /* first: the link pointer is the port pointer */
    struct qlink *q;
    int side;
};

struct qlink {
    struct qring ring[2]; /* ring[i] carries frames sent by port i */
    struct qwait wait[2]; /* wait[i]: the thread that owns port i */
    struct qport port[2];
    _Alignas(64) _Atomic uint64_t wakeups, refused;
};

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, 0);
}

static bool ring_nonempty(struct qring *r)
{
    return atomic_load_explicit(&r->tail, memory_order_acquire) !=
           atomic_load_explicit(&r->head, memory_order_relaxed);
}

static void wake(struct qlink *q, int side)
{
    struct qwait *w = &q->wait[side];
    /* Pairs with the fence in qlink_wait: either the sleeper sees our
     * frames, or we see it asleep. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&w->sleeping, memory_order_relaxed) &&
        atomic_exchange(&w->sleeping, 0)) {
        atomic_fetch_add(&w->seq, 1);
        futex(&w->seq, FUTEX_WAKE_PRIVATE, 1, NULL);
        atomic_fetch_add_explicit(&q->wakeups, 1, memory_order_relaxed);
    }
}

static size_t q_send(struct tern_link *l, const struct tern_frame *frames, size_t n,
                     tern_time_t now)
{
    struct qport *p = (struct qport *)l;
    struct qring *r = &p->q->ring[p->side];
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t size = r->mask + 1;
    size_t accepted = 0;
    (void)now;
    for (size_t i = 0; i < n; i++) {
        if (frames[i].len > (frames[i].gso_size ? r->slot_cap : r->mtu_frame)) {
            l->stats.tx_dropped++;
            continue;
        }
        if (tail - r->head_cache == size) {
            r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
            if (tail - r->head_cache == size) {
                l->stats.tx_dropped++;
                atomic_fetch_add_explicit(&p->q->refused, 1, memory_order_relaxed);
                continue;
            }
        }
        uint32_t slot = tail & r->mask;
        memcpy(r->data + (size_t)slot * r->slot_cap, frames[i].data, frames[i].len);
        r->len[slot] = (uint32_t)frames[i].len |
                       (frames[i].flags & TERN_FRAME_CSUM_PENDING ? SLOT_CSUM_PENDING : 0);
        r->gso[slot] = frames[i].gso_size;
        tail++;
        l->stats.tx_frames++;
        l->stats.tx_bytes += frames[i].len;
        accepted++;
    }
    if (accepted) {
        atomic_store_explicit(&r->tail, tail, memory_order_release);
        wake(p->q, 1 - p->side);
    }
    return accepted;
}

static size_t q_recv(struct tern_link *l, struct tern_frame *frames, size_t n, tern_time_t now)
{
    struct qport *p = (struct qport *)l;
    struct qring *r = &p->q->ring[1 - p->side];
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t filled = 0;
    (void)now;
    while (filled < n) {
        if (head == r->tail_cache) {
            r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
            if (head == r->tail_cache)
                break;
        }
        uint32_t slot = head & r->mask;
        uint32_t len = r->len[slot] & ~SLOT_CSUM_PENDING;
        struct tern_frame *out = &frames[filled];
        if (len > out->cap) {
            l->stats.rx_dropped++;
        } else {
            memcpy(out->data, r->data + (size_t)slot * r->slot_cap, len);
            out->len = len;
            out->flags = r->len[slot] & SLOT_CSUM_PENDING ? TERN_FRAME_CSUM_PENDING : 0;
            out->gso_size = r->gso[slot];
            l->stats.rx_frames++;
            l->stats.rx_bytes += len;
            filled++;
        }
        head++;
    }
    atomic_store_explicit(&r->head, head, memory_order_release);
    return filled;
}

static tern_time_t q_next_deadline(struct tern_link *l, tern_time_t now)
{
    struct qport *p = (struct qport *)l;
    return ring_nonempty(&p->q->ring[1 - p->side]) ? now : TERN_TIME_NEVER;
}

/* Ports live inside the qlink and go with qlink_free(). */
static void q_destroy(struct tern_link *l) { (void)l; }

struct qlink *qlink_new(uint32_t mtu, bool offload)
{
    size_t sz = (sizeof(struct qlink) + 63) / 64 * 64;
    struct qlink *q = aligned_alloc(64, sz);
    if (!q)
        return NULL;
    memset(q, 0, sz);
    /* With offload every slot takes a super-frame: a few MB a ring. */
    uint32_t cap = offload ? TERN_LINK_MAX_FRAME : mtu + ETH_HDR;
    uint32_t slots = 64;
    while (slots < 1024 && (uint64_t)slots * 2 * cap <= RING_BYTES)
        slots *= 2;
    for (int i = 0; i < 2; i++) {
        struct qring *r = &q->ring[i];
        r->mask = slots - 1;
        r->slot_cap = cap;
        r->mtu_frame = mtu + ETH_HDR;
        r->len = calloc(slots, sizeof(*r->len));
        r->gso = calloc(slots, sizeof(*r->gso));
        r->data = malloc((size_t)slots * cap);
        if (!r->len || !r->gso || !r->data) {
            qlink_free(q);
            return NULL;
        }
        struct qport *p = &q->port[i];
        p->q = q;
        p->side = i;
        p->link.ops.send = q_send;
        p->link.ops.recv = q_recv;
        p->link.ops.next_deadline = q_next_deadline;
        p->link.ops.destroy = q_destroy;
        snprintf(p->link.info.name, sizeof(p->link.info.name), "qlink%d", i);
        p->link.info.mtu = mtu;
        p->link.info.caps = TERN_LINK_CAP_TX_CSUM;
        if (offload) {
            p->link.info.caps |= TERN_LINK_CAP_TSO;
            p->link.info.rx_frame_max = cap;
        }
    }
    return q;
}

struct tern_link *qlink_port(struct qlink *q, int side) { return &q->port[side].link; }

void qlink_wait(struct qlink *q, int side, tern_time_t deadline, uint64_t spin_ns)
{
    struct qring *r = &q->ring[1 - side];
    struct qwait *w = &q->wait[side];
    uint64_t now = bench_now_ns();
    uint64_t spin_end = now + spin_ns;
    uint32_t seq = atomic_load(&w->seq);
    while (now < spin_end) {
        if (ring_nonempty(r) || now >= deadline || atomic_load_explicit(&w->seq,
                                                                       memory_order_relaxed) != seq)
            return;
        for (int i = 0; i < 32; i++)
            cpu_relax();
        /* On a shared VM the peer may be waiting for this very CPU. */
        sched_yield();
        now = bench_now_ns();
    }
    atomic_store(&w->sleeping, 1);
    atomic_thread_fence(memory_order_seq_cst);
    if (ring_nonempty(r) || now >= deadline) {
        atomic_store(&w->sleeping, 0);
        return;
    }
    uint64_t left = deadline - now;
    if (left > MAX_SLEEP_NS)
        left = MAX_SLEEP_NS;
    struct timespec ts = {.tv_sec = (time_t)(left / TERN_NS_PER_SEC),
                          .tv_nsec = (long)(left % TERN_NS_PER_SEC)};
    futex(&w->seq, FUTEX_WAIT_PRIVATE, seq, &ts);
    atomic_store(&w->sleeping, 0);
}

void qlink_kick(struct qlink *q, int side)
{
    struct qwait *w = &q->wait[side];
    atomic_fetch_add(&w->seq, 1);
    futex(&w->seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}

uint64_t qlink_wakeups(const struct qlink *q) { return atomic_load(&q->wakeups); }
uint64_t qlink_refused(const struct qlink *q) { return atomic_load(&q->refused); }

void qlink_free(struct qlink *q)
{
    if (!q)
        return;
    for (int i = 0; i < 2; i++) {
        free(q->ring[i].len);
        free(q->ring[i].gso);
        free(q->ring[i].data);
    }
    free(q);
}
