/* Unit tests of the link layer: the generic calls, the in-memory wire, the
 * impairment wrapper and the pcap tee. (The TAP driver needs a namespace and
 * is exercised by tests/tap.) Run under ASan: several tests exist only to
 * let it see a leak, a double free or a use after free. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <tern/link.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wire/bytes.h"
#include "wire/eth.h"
#include "wire/ipv4.h"
#include "wire/tcp.h"
#include "wire/udp.h"

#define MS TERN_NS_PER_MS
#define SEC TERN_NS_PER_SEC
#define FRAME_CAP 2048

/* ---- helpers ---- */

/* A frame whose payload starts with a 32-bit sequence number at offset 14
 * and continues with a pattern derived from it. */
static void make_frame(uint8_t *buf, size_t len, uint32_t seq)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 7 + seq);
    if (len >= 18)
        memcpy(buf + 14, &seq, 4);
}

static uint32_t frame_seq(const uint8_t *buf)
{
    uint32_t seq;
    memcpy(&seq, buf + 14, 4);
    return seq;
}

static size_t send_one(struct tern_link *l, uint8_t *buf, size_t len, tern_time_t now)
{
    struct tern_frame f = { .data = buf, .len = len, .cap = len };
    return tern_link_send(l, &f, 1, now);
}

static size_t send_seq(struct tern_link *l, size_t len, uint32_t seq, tern_time_t now)
{
    uint8_t buf[FRAME_CAP];
    make_frame(buf, len, seq);
    return send_one(l, buf, len, now);
}

/* Receives one frame into buf (FRAME_CAP bytes); returns its length or -1. */
static long recv_one(struct tern_link *l, uint8_t *buf, tern_time_t now)
{
    struct tern_frame f = { .data = buf, .cap = FRAME_CAP };
    return tern_link_recv(l, &f, 1, now) == 1 ? (long)f.len : -1;
}

static size_t drain(struct tern_link *l, tern_time_t now)
{
    uint8_t buf[FRAME_CAP];
    size_t n = 0;
    while (recv_one(l, buf, now) >= 0)
        n++;
    return n;
}

/* Lets an impairment wrapper forward what is due without sending. */
static void pump(struct tern_link *l, tern_time_t now)
{
    tern_link_send(l, NULL, 0, now);
}

struct pair {
    struct tern_wire *wire;
    struct tern_link *a; /* the impaired side */
    struct tern_link *b;
};

static void pair_open(struct pair *p, const struct tern_impair_config *tx,
                      const struct tern_impair_config *rx, uint64_t seed)
{
    struct tern_wire_config cfg;
    tern_wire_config_default(&cfg);
    cfg.queue_limit = 4096;
    p->wire = tern_wire_new(&cfg);
    assert_non_null(p->wire);
    p->a = tern_impair_new(tern_wire_port_new(p->wire), tx, rx, seed);
    p->b = tern_wire_port_new(p->wire);
    assert_non_null(p->a);
    assert_non_null(p->b);
}

static void pair_close(struct pair *p)
{
    tern_link_free(p->a);
    tern_wire_free(p->wire);
}

/* ---- generic calls ---- */

static size_t null_send(struct tern_link *l, const struct tern_frame *f, size_t n,
                        tern_time_t now)
{
    (void)l, (void)f, (void)now;
    return n;
}

static size_t null_recv(struct tern_link *l, struct tern_frame *f, size_t n, tern_time_t now)
{
    (void)l, (void)f, (void)n, (void)now;
    return 0;
}

static void null_destroy(struct tern_link *l)
{
    free(l);
}

static void test_link_calls_default_missing_optional_ops(void **state)
{
    (void)state;
    struct tern_link *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    l->ops.send = null_send;
    l->ops.recv = null_recv;
    l->ops.destroy = null_destroy;
    assert_int_equal(tern_link_next_deadline(l, 5), TERN_TIME_NEVER);
    assert_int_equal(tern_link_pollfd(l), -1);
    assert_int_equal(tern_link_send(l, NULL, 3, 0), 3);
    tern_link_free(l);
    tern_link_free(NULL);
}

/* ---- wire ---- */

static void test_wire_delivers_copy_to_every_other_port_not_sender(void **state)
{
    (void)state;
    struct tern_wire *w = tern_wire_new(NULL);
    struct tern_link *a = tern_wire_port_new(w);
    struct tern_link *b = tern_wire_port_new(w);
    struct tern_link *c = tern_wire_port_new(w);
    uint8_t sent[100], got[FRAME_CAP];
    make_frame(sent, sizeof(sent), 42);
    assert_int_equal(send_one(a, sent, sizeof(sent), 0), 1);
    memset(sent, 0, sizeof(sent)); /* the wire must have copied it */
    assert_int_equal(tern_link_next_deadline(b, 7), 7); /* ready now */
    assert_int_equal(tern_link_next_deadline(a, 7), TERN_TIME_NEVER); /* not to the sender */

    uint8_t want[100];
    make_frame(want, sizeof(want), 42);
    assert_int_equal(recv_one(b, got, 0), 100);
    assert_memory_equal(got, want, 100);
    assert_int_equal(recv_one(c, got, 0), 100);
    assert_memory_equal(got, want, 100);
    assert_int_equal(recv_one(a, got, 0), -1);
    assert_int_equal(tern_link_next_deadline(b, 0), TERN_TIME_NEVER);
    assert_int_equal(recv_one(b, got, 0), -1);

    assert_int_equal(a->stats.tx_frames, 1);
    assert_int_equal(a->stats.tx_bytes, 100);
    assert_int_equal(b->stats.rx_frames, 1);
    assert_int_equal(b->stats.rx_bytes, 100);
    assert_int_equal(a->stats.rx_frames, 0);
    assert_int_equal(tern_link_pollfd(a), -1);
    assert_int_equal(tern_link_next_deadline(a, 0), TERN_TIME_NEVER);
    assert_int_equal(a->info.mtu, 1500);
    assert_string_not_equal(a->info.name, b->info.name);
    tern_wire_free(w);
}

static void test_wire_drops_frame_longer_than_mtu_plus_header(void **state)
{
    (void)state;
    struct tern_wire_config cfg = { .mtu = 100 };
    struct tern_wire *w = tern_wire_new(&cfg);
    struct tern_link *a = tern_wire_port_new(w);
    struct tern_link *b = tern_wire_port_new(w);
    uint8_t buf[2][115], got[FRAME_CAP];
    struct tern_frame frames[2] = {
        { .data = buf[0], .len = 115 }, /* one byte too many */
        { .data = buf[1], .len = 114 },
    };
    make_frame(buf[0], 115, 1);
    make_frame(buf[1], 114, 2);
    assert_int_equal(tern_link_send(a, frames, 2, 0), 1);
    assert_int_equal(a->stats.tx_dropped, 1);
    assert_int_equal(a->stats.tx_frames, 1);
    assert_int_equal(recv_one(b, got, 0), 114);
    assert_int_equal(frame_seq(got), 2);
    assert_int_equal(recv_one(b, got, 0), -1);
    tern_wire_free(w);
}

static void test_wire_queue_limit_counts_rx_drops_and_keeps_fifo(void **state)
{
    (void)state;
    struct tern_wire_config cfg = { .queue_limit = 4 };
    struct tern_wire *w = tern_wire_new(&cfg);
    struct tern_link *a = tern_wire_port_new(w);
    struct tern_link *b = tern_wire_port_new(w);
    uint8_t got[FRAME_CAP];
    for (uint32_t i = 0; i < 6; i++)
        assert_int_equal(send_seq(a, 60, i, 0), 1);
    assert_int_equal(a->stats.tx_frames, 6);
    assert_int_equal(b->stats.rx_dropped, 2);
    for (uint32_t i = 0; i < 4; i++) {
        assert_int_equal(recv_one(b, got, 0), 60);
        assert_int_equal(frame_seq(got), i);
    }
    assert_int_equal(recv_one(b, got, 0), -1);
    /* Room again once drained, and the ring wraps correctly. */
    for (uint32_t i = 10; i < 13; i++)
        send_seq(a, 60, i, 0);
    for (uint32_t i = 10; i < 13; i++) {
        assert_int_equal(recv_one(b, got, 0), 60);
        assert_int_equal(frame_seq(got), i);
    }
    assert_int_equal(b->stats.rx_dropped, 2);
    tern_wire_free(w);
}

static void test_wire_recv_drops_frame_longer_than_buffer(void **state)
{
    (void)state;
    struct tern_wire *w = tern_wire_new(NULL);
    struct tern_link *a = tern_wire_port_new(w);
    struct tern_link *b = tern_wire_port_new(w);
    send_seq(a, 200, 1, 0);
    send_seq(a, 50, 2, 0);
    uint8_t small[64];
    struct tern_frame f = { .data = small, .cap = sizeof(small) };
    assert_int_equal(tern_link_recv(b, &f, 1, 0), 1);
    assert_int_equal(f.len, 50);
    assert_int_equal(frame_seq(small), 2);
    assert_int_equal(b->stats.rx_dropped, 1);
    assert_int_equal(b->stats.rx_frames, 1);
    tern_wire_free(w);
}

static void test_wire_port_freed_before_wire_detaches(void **state)
{
    (void)state;
    struct tern_wire *w = tern_wire_new(NULL);
    struct tern_link *a = tern_wire_port_new(w);
    struct tern_link *b = tern_wire_port_new(w);
    struct tern_link *c = tern_wire_port_new(w);
    struct tern_link *d = tern_wire_port_new(w);
    send_seq(a, 60, 1, 0); /* b and c free with a frame queued */
    tern_link_free(c);     /* middle of the list */
    tern_link_free(d);     /* head of the list */
    send_seq(a, 60, 2, 0); /* must not touch c or d */
    assert_int_equal(drain(b, 0), 2);
    tern_link_free(a);
    send_seq(b, 60, 3, 0); /* nobody left to hear it */
    tern_link_free(b);     /* last one: the list is empty */
    struct tern_link *e = tern_wire_port_new(w);
    assert_non_null(e);
    tern_wire_free(w);
}

static void test_wire_free_frees_ports_with_queued_frames(void **state)
{
    (void)state;
    struct tern_wire *w = tern_wire_new(NULL);
    struct tern_link *a = tern_wire_port_new(w);
    tern_wire_port_new(w);
    tern_wire_port_new(w);
    for (uint32_t i = 0; i < 10; i++)
        send_seq(a, 100, i, 0);
    tern_wire_free(w); /* LeakSanitizer checks that all went */
    tern_wire_free(NULL);
}

static void test_wire_rejects_mtu_above_65535(void **state)
{
    (void)state;
    struct tern_wire_config cfg = { .mtu = 65536 };
    errno = 0;
    assert_null(tern_wire_new(&cfg));
    assert_int_equal(errno, EINVAL);
}

static void test_wire_offload_carries_super_frames_whole_and_only_those(void **state)
{
    (void)state;
    static uint8_t big[3][9000], got[TERN_LINK_MAX_FRAME];
    struct tern_wire_config cfg = {.mtu = 1500, .offload = true};
    struct tern_wire *w = tern_wire_new(&cfg);
    struct tern_link *a = tern_wire_port_new(w);
    struct tern_link *b = tern_wire_port_new(w);
    assert_true(a->info.caps & TERN_LINK_CAP_TSO);
    assert_true(a->info.caps & TERN_LINK_CAP_TX_CSUM);
    assert_int_equal(a->info.rx_frame_max, TERN_LINK_MAX_FRAME);
    for (int i = 0; i < 3; i++)
        make_frame(big[i], sizeof(big[i]), (uint32_t)i + 1);
    struct tern_frame frames[3] = {
        {.data = big[0], .len = 9000, .gso_size = 1448, .flags = TERN_FRAME_CSUM_PENDING},
        {.data = big[1], .len = 9000}, /* longer than the MTU, no gso_size: not a frame */
        {.data = big[2], .len = 1514}, /* an ordinary full frame */
    };
    assert_int_equal(tern_link_send(a, frames, 3, 0), 2);
    assert_int_equal(a->stats.tx_dropped, 1);
    struct tern_frame f = {.data = got, .cap = sizeof(got)};
    assert_int_equal(tern_link_recv(b, &f, 1, 0), 1);
    assert_int_equal(f.len, 9000);
    assert_int_equal(f.gso_size, 1448);
    assert_true(f.flags & TERN_FRAME_CSUM_PENDING);
    assert_memory_equal(got, big[0], 9000);
    f = (struct tern_frame){.data = got, .cap = sizeof(got)};
    assert_int_equal(tern_link_recv(b, &f, 1, 0), 1);
    assert_int_equal(f.len, 1514);
    assert_int_equal(f.gso_size, 0);
    assert_int_equal(frame_seq(got), 3);
    /* More super-frames than the wire keeps spare buffers for: half read
     * (their buffers go back to their own kind), half freed unread
     * (LeakSanitizer checks both). */
    for (int i = 0; i < 8; i++)
        assert_int_equal(tern_link_send(a, frames, 1, 0), 1);
    for (int i = 0; i < 4; i++) {
        f = (struct tern_frame){.data = got, .cap = sizeof(got)};
        assert_int_equal(tern_link_recv(b, &f, 1, 0), 1);
        assert_int_equal(f.len, 9000);
    }
    tern_wire_free(w);

    /* Without offload a super-frame is as long as any other frame. */
    cfg.offload = false;
    w = tern_wire_new(&cfg);
    a = tern_wire_port_new(w);
    b = tern_wire_port_new(w);
    assert_false(a->info.caps & TERN_LINK_CAP_TSO);
    assert_int_equal(tern_link_send(a, frames, 1, 0), 0);
    assert_int_equal(a->stats.tx_dropped, 1);
    assert_int_equal(tern_link_recv(b, &f, 1, 0), 0);
    tern_wire_free(w);
}

/* ---- impairment ---- */

static void test_impair_zero_config_is_transparent(void **state)
{
    (void)state;
    struct tern_impair_config zero = { 0 };
    struct pair p;
    pair_open(&p, &zero, &zero, 1);
    uint8_t got[FRAME_CAP], want[FRAME_CAP];
    uint32_t seq = 0;
    for (tern_time_t now = 0; now < 50 * MS; now += 3 * MS + 17) {
        /* A batch each way; every frame must be there in the same call. */
        uint8_t bufs[5][300];
        struct tern_frame frames[5];
        for (int i = 0; i < 5; i++) {
            make_frame(bufs[i], 100 + 40 * (size_t)i, seq + (uint32_t)i);
            frames[i] = (struct tern_frame){ .data = bufs[i], .len = 100 + 40 * (size_t)i };
        }
        assert_int_equal(tern_link_send(p.a, frames, 5, now), 5);
        assert_int_equal(tern_link_send(p.b, frames, 5, now), 5);
        /* Nothing held back: the frames b sent wait at a right now. */
        assert_int_equal(tern_link_next_deadline(p.a, now), now);
        for (uint32_t i = 0; i < 5; i++) {
            size_t len = 100 + 40 * i;
            make_frame(want, len, seq + i);
            assert_int_equal(recv_one(p.b, got, now), (long)len);
            assert_memory_equal(got, want, len);
            assert_int_equal(recv_one(p.a, got, now), (long)len);
            assert_memory_equal(got, want, len);
        }
        assert_int_equal(recv_one(p.b, got, now), -1);
        assert_int_equal(recv_one(p.a, got, now), -1);
        seq += 5;
    }
    assert_int_equal(p.a->stats.tx_frames, seq);
    assert_int_equal(p.a->stats.rx_frames, seq);
    assert_int_equal(p.a->stats.tx_dropped + p.a->stats.rx_dropped, 0);
    assert_int_equal(p.a->info.mtu, 1500);
    pair_close(&p);
}

/* Sends `count` frames through a lossy tx and records which arrived. */
static size_t run_lossy(uint64_t seed, uint8_t *arrived, uint32_t count, uint64_t *tx_dropped)
{
    struct tern_impair_config tx = { .loss_ppm = 100000 };
    struct pair p;
    pair_open(&p, &tx, NULL, seed);
    uint8_t got[FRAME_CAP];
    size_t n = 0;
    memset(arrived, 0, count);
    for (uint32_t i = 0; i < count; i++) {
        assert_int_equal(send_seq(p.a, 64, i, i), 1); /* loss still counts as sent */
        while (recv_one(p.b, got, i) >= 0) {
            assert_int_equal(frame_seq(got), i);
            arrived[i] = 1;
            n++;
        }
    }
    *tx_dropped = p.a->stats.tx_dropped;
    pair_close(&p);
    return n;
}

static void test_impair_loss_10pct_in_tolerance_and_reproducible(void **state)
{
    (void)state;
    enum { COUNT = 20000 };
    uint8_t *first = malloc(COUNT), *second = malloc(COUNT), *other = malloc(COUNT);
    uint64_t dropped1, dropped2, dropped3;
    size_t n1 = run_lossy(7, first, COUNT, &dropped1);
    size_t n2 = run_lossy(7, second, COUNT, &dropped2);
    size_t n3 = run_lossy(8, other, COUNT, &dropped3);

    /* Expected loss 2000, sd sqrt(20000 * 0.1 * 0.9) = 42: allow 6 sd. */
    assert_in_range(COUNT - n1, 2000 - 250, 2000 + 250);
    assert_int_equal(dropped1, COUNT - n1);
    assert_int_equal(n1, n2);
    assert_int_equal(dropped1, dropped2);
    assert_memory_equal(first, second, COUNT);
    assert_in_range(COUNT - n3, 2000 - 250, 2000 + 250);
    assert_memory_not_equal(first, other, COUNT);
    free(first);
    free(second);
    free(other);
}

static void test_impair_delay_holds_frame_until_due_and_reports_deadline(void **state)
{
    (void)state;
    struct tern_impair_config tx = { .delay_ns = 5 * MS };
    struct pair p;
    pair_open(&p, &tx, NULL, 1);
    uint8_t got[FRAME_CAP];
    tern_time_t t0 = 1 * SEC + 123;
    assert_int_equal(tern_link_next_deadline(p.a, t0), TERN_TIME_NEVER);
    assert_int_equal(send_seq(p.a, 80, 9, t0), 1);
    assert_int_equal(tern_link_next_deadline(p.a, t0), t0 + 5 * MS);
    pump(p.a, t0 + 5 * MS - 1);
    assert_int_equal(recv_one(p.b, got, t0 + 5 * MS - 1), -1);
    pump(p.a, t0 + 5 * MS);
    assert_int_equal(recv_one(p.b, got, t0 + 5 * MS), 80);
    assert_int_equal(frame_seq(got), 9);
    assert_int_equal(tern_link_next_deadline(p.a, t0 + 5 * MS), TERN_TIME_NEVER);
    pair_close(&p);
}

static void test_impair_rx_delay_holds_received_frame(void **state)
{
    (void)state;
    struct tern_impair_config rx = { .delay_ns = 2 * MS };
    struct pair p;
    pair_open(&p, NULL, &rx, 1);
    uint8_t got[FRAME_CAP];
    send_seq(p.b, 70, 3, 10 * MS);
    assert_int_equal(recv_one(p.a, got, 10 * MS), -1); /* pulled, held */
    assert_int_equal(tern_link_next_deadline(p.a, 10 * MS), 12 * MS);
    assert_int_equal(recv_one(p.a, got, 12 * MS - 1), -1);
    assert_int_equal(recv_one(p.a, got, 12 * MS), 70);
    assert_int_equal(frame_seq(got), 3);
    assert_int_equal(p.a->stats.rx_frames, 1);
    assert_int_equal(p.a->stats.rx_bytes, 70);
    pair_close(&p);
}

static void test_impair_next_deadline_includes_inner_deadline(void **state)
{
    (void)state;
    struct tern_wire *w = tern_wire_new(NULL);
    struct tern_impair_config delayed = { .delay_ns = 7 * MS }, zero = { 0 };
    struct tern_link *inner = tern_impair_new(tern_wire_port_new(w), &delayed, NULL, 1);
    struct tern_link *outer = tern_impair_new(inner, &zero, &zero, 2);
    assert_non_null(outer);
    send_seq(outer, 60, 1, 100);
    assert_int_equal(tern_link_next_deadline(outer, 100), 100 + 7 * MS);
    tern_link_free(outer); /* frees inner and its port */
    tern_wire_free(w);
}

/* Sends 1000 frames 1 ms apart, pumping as time goes, and returns the
 * arrival order in `order`. */
static size_t run_ordered(const struct tern_impair_config *tx, uint32_t *order)
{
    struct pair p;
    pair_open(&p, tx, NULL, 99);
    uint8_t got[FRAME_CAP];
    size_t n = 0;
    tern_time_t now = 0;
    for (uint32_t i = 0; i < 1000; i++, now += MS) {
        send_seq(p.a, 64, i, now);
        while (recv_one(p.b, got, now) >= 0)
            order[n++] = frame_seq(got);
    }
    tern_time_t t;
    while ((t = tern_link_next_deadline(p.a, now)) != TERN_TIME_NEVER) {
        assert_true(t >= now);
        now = t;
        pump(p.a, now);
        while (recv_one(p.b, got, now) >= 0)
            order[n++] = frame_seq(got);
    }
    pair_close(&p);
    return n;
}

static void test_impair_reorder_overtakes_some_frames_and_keeps_all(void **state)
{
    (void)state;
    uint32_t order[1000];
    struct tern_impair_config tx = { .delay_ns = 1 * MS, .reorder_ppm = 100000,
                                     .reorder_ns = 3 * MS + 500 };
    assert_int_equal(run_ordered(&tx, order), 1000);
    size_t inversions = 0;
    uint8_t seen[1000] = { 0 };
    for (size_t i = 0; i < 1000; i++) {
        assert_true(order[i] < 1000);
        assert_false(seen[order[i]]);
        seen[order[i]] = 1;
        if (i > 0 && order[i] < order[i - 1])
            inversions++;
    }
    assert_in_range(inversions, 50, 150); /* ~10% of frames held back */

    /* The same delay without reordering keeps the order. */
    tx.reorder_ppm = 0;
    assert_int_equal(run_ordered(&tx, order), 1000);
    for (uint32_t i = 0; i < 1000; i++)
        assert_int_equal(order[i], i);
}

static void test_impair_equal_due_times_keep_send_order(void **state)
{
    (void)state;
    /* All frames share one due time; the heap must not shuffle them. */
    struct tern_impair_config tx = { .delay_ns = 1 * MS };
    struct pair p;
    pair_open(&p, &tx, NULL, 1);
    uint8_t got[FRAME_CAP];
    for (uint32_t i = 0; i < 500; i++)
        send_seq(p.a, 64, i, 0);
    pump(p.a, MS);
    for (uint32_t i = 0; i < 500; i++) {
        assert_int_equal(recv_one(p.b, got, MS), 64);
        assert_int_equal(frame_seq(got), i);
    }
    pair_close(&p);
}

static void test_impair_jitter_stays_within_delay_plus_jitter(void **state)
{
    (void)state;
    struct tern_impair_config tx = { .delay_ns = 1 * MS, .jitter_ns = 2 * MS };
    struct pair p;
    pair_open(&p, &tx, NULL, 5);
    tern_time_t lo = TERN_TIME_NEVER, hi = 0;
    for (uint32_t i = 0; i < 1000; i++) {
        tern_time_t now = (tern_time_t)i * 10 * MS;
        send_seq(p.a, 64, i, now);
        tern_time_t extra = tern_link_next_deadline(p.a, now) - now;
        assert_in_range(extra, 1 * MS, 3 * MS);
        lo = extra < lo ? extra : lo;
        hi = extra > hi ? extra : hi;
        pump(p.a, now + extra);
        assert_int_equal(drain(p.b, now + extra), 1);
    }
    assert_true(hi - lo > 19 * MS / 10); /* the whole range gets used */
    pair_close(&p);
}

static void test_impair_duplicate_delivers_two_identical_copies(void **state)
{
    (void)state;
    struct tern_impair_config tx = { .duplicate_ppm = 1000000 };
    struct pair p;
    pair_open(&p, &tx, NULL, 1);
    uint8_t got[FRAME_CAP], want[FRAME_CAP];
    for (uint32_t i = 0; i < 100; i++) {
        assert_int_equal(send_seq(p.a, 90, i, i), 1);
        make_frame(want, 90, i);
        for (int copy = 0; copy < 2; copy++) {
            assert_int_equal(recv_one(p.b, got, i), 90);
            assert_memory_equal(got, want, 90);
        }
        assert_int_equal(recv_one(p.b, got, i), -1);
    }
    assert_int_equal(p.a->stats.tx_frames, 100);
    assert_int_equal(p.b->stats.rx_frames, 200);
    pair_close(&p);
}

static int bits_set(uint8_t x)
{
    return __builtin_popcount(x);
}

static void test_impair_corrupt_flips_one_bit_past_ethernet_header(void **state)
{
    (void)state;
    struct tern_impair_config tx = { .corrupt_ppm = 1000000 };
    struct pair p;
    pair_open(&p, &tx, NULL, 3);
    uint8_t sent[FRAME_CAP], want[FRAME_CAP], got[FRAME_CAP];
    size_t hits[64] = { 0 };
    for (uint32_t i = 0; i < 2000; i++) {
        size_t len = 64;
        make_frame(sent, len, i);
        memcpy(want, sent, len);
        assert_int_equal(send_one(p.a, sent, len, i), 1);
        assert_memory_equal(sent, want, len); /* the caller's frame is borrowed */
        assert_int_equal(recv_one(p.b, got, i), (long)len);
        int flipped = 0;
        for (size_t k = 0; k < len; k++) {
            flipped += bits_set(got[k] ^ want[k]);
            if (got[k] != want[k])
                hits[k]++;
        }
        assert_int_equal(flipped, 1);
        assert_memory_equal(got, want, 14);
    }
    /* Every payload byte gets hit sometimes (2000 draws over 50 bytes). */
    for (size_t k = 14; k < 64; k++)
        assert_true(hits[k] > 0);

    /* A bare header has nothing past it to corrupt. */
    make_frame(sent, 14, 5);
    send_one(p.a, sent, 14, 5000);
    assert_int_equal(recv_one(p.b, got, 5000), 14);
    assert_memory_equal(got, sent, 14);
    pair_close(&p);
}

static void test_impair_rate_limit_1000x1250B_at_10Mbps_takes_1s(void **state)
{
    (void)state;
    struct tern_impair_config tx = { .rate_bps = 10000000 };
    struct pair p;
    pair_open(&p, &tx, NULL, 1);
    uint8_t bufs[10][1250];
    struct tern_frame frames[10];
    for (int i = 0; i < 10; i++)
        frames[i] = (struct tern_frame){ .data = bufs[i], .len = 1250 };
    for (int i = 0; i < 100; i++)
        assert_int_equal(tern_link_send(p.a, frames, 10, 0), 10);

    /* 10000 bits at 10 Mbit/s: one frame per millisecond. */
    assert_int_equal(tern_link_next_deadline(p.a, 0), 1 * MS);
    pump(p.a, 1 * MS - 1);
    assert_int_equal(drain(p.b, 1 * MS - 1), 0);
    pump(p.a, 1 * MS);
    assert_int_equal(drain(p.b, 1 * MS), 1);
    pump(p.a, 500 * MS);
    assert_int_equal(drain(p.b, 500 * MS), 499);
    pump(p.a, 1 * SEC - 1);
    assert_int_equal(drain(p.b, 1 * SEC - 1), 499);
    assert_int_equal(tern_link_next_deadline(p.a, 1 * SEC - 1), 1 * SEC);
    pump(p.a, 1 * SEC);
    assert_int_equal(drain(p.b, 1 * SEC), 1);

    /* An idle link starts the next frame at once, not after a backlog. */
    send_one(p.a, bufs[0], 1250, 5 * SEC);
    assert_int_equal(tern_link_next_deadline(p.a, 5 * SEC), 5 * SEC + MS);
    pair_close(&p);
}

static void test_impair_mtu_drops_oversized_frames(void **state)
{
    (void)state;
    struct tern_impair_config tx = { .mtu = 100 };
    struct pair p;
    pair_open(&p, &tx, NULL, 1);
    uint8_t got[FRAME_CAP];
    assert_int_equal(send_seq(p.a, 115, 1, 0), 0);
    assert_int_equal(send_seq(p.a, 114, 2, 0), 1);
    assert_int_equal(p.a->stats.tx_dropped, 1);
    assert_int_equal(p.a->stats.tx_frames, 1);
    assert_int_equal(recv_one(p.b, got, 0), 114);
    assert_int_equal(recv_one(p.b, got, 0), -1);
    /* The stack still sees the wire's MTU: a hidden narrower path. */
    assert_int_equal(p.a->info.mtu, 1500);
    pair_close(&p);
}

static void test_impair_queue_limit_refuses_and_counts(void **state)
{
    (void)state;
    struct tern_impair_config tx = { .delay_ns = MS, .queue_limit = 2 };
    struct pair p;
    pair_open(&p, &tx, NULL, 1);
    uint8_t buf[5][60];
    struct tern_frame frames[5];
    for (int i = 0; i < 5; i++)
        frames[i] = (struct tern_frame){ .data = buf[i], .len = 60 };
    assert_int_equal(tern_link_send(p.a, frames, 5, 0), 2);
    assert_int_equal(p.a->stats.tx_dropped, 3);
    pump(p.a, MS);
    assert_int_equal(drain(p.b, MS), 2);
    assert_int_equal(tern_link_send(p.a, frames, 1, MS), 1); /* room again */
    pair_close(&p);
}

static void test_impair_bad_config_fails_and_frees_inner(void **state)
{
    (void)state;
    struct tern_wire *w = tern_wire_new(NULL);
    struct tern_impair_config bad = { .mtu = 70000 };
    errno = 0;
    assert_null(tern_impair_new(tern_wire_port_new(w), NULL, &bad, 1));
    assert_int_equal(errno, EINVAL);
    /* The port is gone from the wire: a frame from a new port reaches only
     * the other new port, and LeakSanitizer sees nothing left over. */
    struct tern_link *a = tern_wire_port_new(w);
    struct tern_link *b = tern_wire_port_new(w);
    send_seq(a, 60, 1, 0);
    assert_int_equal(drain(b, 0), 1);
    tern_wire_free(w);
}

static void test_impair_holding_queues_freed_with_frames_inside(void **state)
{
    (void)state;
    struct tern_impair_config dir = { .delay_ns = SEC };
    struct pair p;
    pair_open(&p, &dir, &dir, 1);
    uint8_t got[FRAME_CAP];
    for (uint32_t i = 0; i < 10; i++) {
        send_seq(p.a, 100, i, 0);
        send_seq(p.b, 100, i, 0);
    }
    assert_int_equal(recv_one(p.a, got, 0), -1);
    pair_close(&p); /* LeakSanitizer checks both queues were emptied */
}

/* ---- pcap tee ---- */

static void tmp_path(char *buf, size_t cap, const char *what)
{
    const char *dir = getenv("TERN_TEST_TMP");
    snprintf(buf, cap, "%s/test_links_%s_%d.pcap", dir ? dir : "/tmp", what, (int)getpid());
}

static uint32_t u32_at(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint16_t u16_at(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static void check_record(const uint8_t **pos, tern_time_t ts, const uint8_t *data, size_t len)
{
    const uint8_t *r = *pos;
    assert_int_equal(u32_at(r), ts / SEC);
    assert_int_equal(u32_at(r + 4), ts % SEC);
    assert_int_equal(u32_at(r + 8), len);
    assert_int_equal(u32_at(r + 12), len);
    assert_memory_equal(r + 16, data, len);
    *pos = r + 16 + len;
}

static void test_pcap_records_tx_and_rx_with_now_as_timestamp(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof(path), "tee");
    struct tern_wire *w = tern_wire_new(NULL);
    struct tern_link *a = tern_pcap_tee_new(tern_wire_port_new(w), path);
    struct tern_link *b = tern_wire_port_new(w);
    assert_non_null(a);

    uint8_t f1[60], f2[1514], f3[100], f4[2000], got[FRAME_CAP];
    make_frame(f1, sizeof(f1), 1);
    make_frame(f2, sizeof(f2), 2);
    make_frame(f3, sizeof(f3), 3);
    make_frame(f4, sizeof(f4), 4);
    tern_time_t t_tx = 1 * SEC + 500 * MS + 7, t_rx = 3 * SEC + 999999999;
    struct tern_frame out[3] = {
        { .data = f1, .len = sizeof(f1) },
        { .data = f2, .len = sizeof(f2) },
        { .data = f4, .len = sizeof(f4) }, /* too big: refused, still recorded */
    };
    assert_int_equal(tern_link_send(a, out, 3, t_tx), 2);
    assert_int_equal(a->stats.tx_frames, 2);
    assert_int_equal(a->stats.tx_dropped, 1);
    assert_int_equal(drain(b, t_tx), 2);
    send_one(b, f3, sizeof(f3), t_rx);
    assert_int_equal(recv_one(a, got, t_rx), 100);
    assert_int_equal(a->stats.rx_frames, 1);
    assert_int_equal(tern_link_pollfd(a), -1);
    tern_link_free(a);
    tern_wire_free(w);

    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static const size_t want_size = 24 + 4 * 16 + 60 + 1514 + 2000 + 100;
    uint8_t *file = malloc(want_size + 1);
    size_t size = fread(file, 1, want_size + 1, f);
    fclose(f);
    unlink(path);
    assert_int_equal(size, want_size);

    assert_int_equal(u32_at(file), 0xa1b23c4d);
    assert_int_equal(u16_at(file + 4), 2);
    assert_int_equal(u16_at(file + 6), 4);
    assert_int_equal(u32_at(file + 8), 0);  /* thiszone */
    assert_int_equal(u32_at(file + 12), 0); /* sigfigs */
    assert_int_equal(u32_at(file + 16), 262144);
    assert_int_equal(u32_at(file + 20), 1); /* LINKTYPE_ETHERNET */
    const uint8_t *pos = file + 24;
    check_record(&pos, t_tx, f1, sizeof(f1));
    check_record(&pos, t_tx, f2, sizeof(f2));
    check_record(&pos, t_tx, f4, sizeof(f4));
    check_record(&pos, t_rx, f3, sizeof(f3));
    free(file);
}

static void test_pcap_unwritable_path_fails_and_frees_inner(void **state)
{
    (void)state;
    struct tern_wire *w = tern_wire_new(NULL);
    errno = 0;
    assert_null(tern_pcap_tee_new(tern_wire_port_new(w), "/nonexistent-dir/x.pcap"));
    assert_int_equal(errno, ENOENT);
    tern_wire_free(w); /* LeakSanitizer: the port went with the tee */
}

static void test_pcap_unwritable_file_fails_at_open(void **state)
{
    (void)state;
    /* The constructor flushes the header, so a full disk shows at once. */
    if (access("/dev/full", W_OK) != 0)
        skip();
    struct tern_wire *w = tern_wire_new(NULL);
    errno = 0;
    assert_null(tern_pcap_tee_new(tern_wire_port_new(w), "/dev/full"));
    assert_int_equal(errno, ENOSPC);
    tern_wire_free(w);
}

static void test_pcap_write_error_later_keeps_traffic_flowing(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof(path), "efbig");
    struct tern_wire *w = tern_wire_new(NULL);
    struct tern_link *a = tern_pcap_tee_new(tern_wire_port_new(w), path);
    struct tern_link *b = tern_wire_port_new(w);
    assert_non_null(a);

    /* A file size limit makes the writes fail with EFBIG part way. */
    struct rlimit old, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = 8192;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    for (uint32_t i = 0; i < 100; i++)
        assert_int_equal(send_seq(a, 1000, i, i), 1);
    tern_link_free(a); /* the final flush fails too */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);

    assert_int_equal(drain(b, 100), 100);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size <= 8192);
    unlink(path);
    tern_wire_free(w);
}

/* ---- checksums left pending (TERN_FRAME_CSUM_PENDING) ---- */

#define CSUM_SRC 0xc0000201u
#define CSUM_DST 0xc0000202u

/* An Ethernet + IPv4 + TCP (proto 6) or UDP (17) frame with `payload`
 * pattern bytes: with its transport checksum when `filled`, else with a
 * zero field as a stack leaves it for the link. Returns the length. */
static size_t make_l4_frame(uint8_t *buf, uint8_t proto, size_t payload, bool filled)
{
    size_t l4h = proto == TERN_IPPROTO_TCP ? 32 : 8, l4len = l4h + payload;
    memset(buf, 0, 14);
    buf[0] = 2;
    buf[6] = 4;
    tern_put16(buf + 12, TERN_ETHERTYPE_IPV4);
    struct tern_ipv4_hdr ih = {.hlen = 20, .total_len = (uint16_t)(20 + l4len), .id = 7,
                               .ttl = 64, .proto = proto, .src = CSUM_SRC, .dst = CSUM_DST};
    tern_ipv4_emit(buf + 14, &ih);
    uint8_t *l4 = buf + 34;
    for (size_t i = 0; i < payload; i++)
        l4[l4h + i] = (uint8_t)(i * 31 + proto);
    if (proto == TERN_IPPROTO_TCP) {
        struct tern_tcp_hdr th = {.sport = 1, .dport = 2, .seq = 1000, .ack = 5, .hlen = 32,
                                  .flags = TERN_TCP_ACK, .wnd = 100};
        th.opt.has_ts = true;
        th.opt.ts_val = 77;
        if (filled)
            tern_tcp_emit(l4, l4len, CSUM_SRC, CSUM_DST, &th);
        else
            tern_tcp_emit_nocsum(l4, &th);
    } else if (filled) {
        tern_udp_emit(l4, l4len, CSUM_SRC, CSUM_DST, 1, 2);
    } else {
        tern_udp_emit_nocsum(l4, l4len, 1, 2);
    }
    return 34 + l4len;
}

static void test_frame_csum_fill_gives_the_checksum_emit_gives(void **state)
{
    (void)state;
    const uint8_t protos[] = {TERN_IPPROTO_TCP, TERN_IPPROTO_UDP};
    const size_t sizes[] = {0, 1, 7, 8, 63, 64, 1001, 1460};
    for (size_t i = 0; i < 2; i++) {
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
            uint8_t want[FRAME_CAP], got[FRAME_CAP];
            size_t len = make_l4_frame(want, protos[i], sizes[k], true);
            assert_int_equal(make_l4_frame(got, protos[i], sizes[k], false), len);
            assert_memory_not_equal(got, want, len);
            struct tern_frame f = {.data = got, .len = len, .cap = sizeof(got),
                                   .flags = TERN_FRAME_CSUM_PENDING};
            tern_frame_csum_fill(&f);
            assert_int_equal(f.flags, 0);
            assert_memory_equal(got, want, len);
            /* Filled, it is left alone: the flag is what asks. */
            got[34 + (protos[i] == TERN_IPPROTO_TCP ? 16 : 6)] ^= 0xff;
            uint8_t before[FRAME_CAP];
            memcpy(before, got, len);
            tern_frame_csum_fill(&f);
            assert_memory_equal(got, before, len);
        }
    }
}

static void test_frame_csum_fill_leaves_what_it_cannot_sum(void **state)
{
    (void)state;
    uint8_t buf[FRAME_CAP], before[FRAME_CAP];
    size_t len = make_l4_frame(buf, TERN_IPPROTO_UDP, 100, false);
    struct {
        const char *what;
        size_t off;
        uint8_t val;
        size_t len;
    } cases[] = {
        {"ARP, not IPv4", 13, 0x06, len},
        {"a fragment", 14 + 6, 0x20, len},
        {"IPv4 total length past the frame", 14 + 3, (uint8_t)(len - 14 + 1), len},
        {"ICMP", 14 + 9, 1, len},
        {"IPv6 version nibble", 14, 0x65, len},
        {"frame shorter than an IPv4 header", 0, 2, 20},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        make_l4_frame(buf, TERN_IPPROTO_UDP, 100, false);
        buf[cases[i].off] = cases[i].val;
        memcpy(before, buf, len);
        struct tern_frame f = {.data = buf, .len = cases[i].len, .cap = sizeof(buf),
                               .flags = TERN_FRAME_CSUM_PENDING};
        tern_frame_csum_fill(&f);
        if (f.flags != 0 || memcmp(buf, before, len) != 0)
            fail_msg("%s: flags %#x, bytes %s", cases[i].what, f.flags,
                     memcmp(buf, before, len) ? "changed" : "kept");
    }
}

/* ---- super-frames (gso_size) cut into segments ---- */

#define CUT_CAP (4 * FRAME_CAP)

struct cut {
    size_t n, stop_after;
    uint8_t frames[8][CUT_CAP];
    size_t len[8];
    uint32_t flags[8];
};

static bool keep_cut(void *arg, const struct tern_frame *seg)
{
    struct cut *c = arg;
    assert_true(c->n < 8 && seg->len <= CUT_CAP);
    assert_int_equal(seg->gso_size, 0);
    memcpy(c->frames[c->n], seg->data, seg->len);
    c->len[c->n] = seg->len;
    c->flags[c->n] = seg->flags;
    c->n++;
    return c->n != c->stop_after;
}

static void test_gso_split_cuts_a_super_frame_as_tso_would(void **state)
{
    (void)state;
    static uint8_t big[CUT_CAP], buf[FRAME_CAP];
    const size_t mss = 1000, payload = 3 * mss + 123;
    const uint8_t fin = 0x01, psh = 0x08, ack = 0x10, cwr = 0x80;
    for (int pending = 0; pending < 2; pending++) {
        size_t len = make_l4_frame(big, TERN_IPPROTO_TCP, payload, false);
        big[34 + 13] = fin | psh | ack | cwr;
        struct tern_frame f = {.data = big, .len = len, .flags = TERN_FRAME_CSUM_PENDING,
                               .gso_size = (uint16_t)mss};
        static struct cut c;
        memset(&c, 0, sizeof(c));
        assert_int_equal(tern_frame_gso_split(&f, buf, sizeof(buf), pending, keep_cut, &c), 4);
        assert_int_equal(c.n, 4);
        for (size_t i = 0; i < 4; i++) {
            const uint8_t *g = c.frames[i];
            size_t seg = i < 3 ? mss : 123;
            assert_int_equal(c.len[i], 66 + seg);
            assert_memory_equal(g, big, 14); /* the Ethernet header */
            struct tern_ipv4_hdr ih;
            assert_int_equal(tern_ipv4_parse(g + 14, c.len[i] - 14, &ih), TERN_IPV4_OK);
            assert_int_equal(ih.total_len, 20 + 32 + seg);
            assert_int_equal(ih.id, 7 + i);
            assert_int_equal(tern_get32(g + 38), 1000 + i * mss);
            uint8_t want = ack | (i == 0 ? cwr : 0) | (i == 3 ? fin | psh : 0);
            assert_int_equal(g[47], want);
            /* Options (the timestamp) on every segment; the payload the
             * right slice. */
            assert_memory_equal(g + 54, big + 54, 12);
            assert_memory_equal(g + 66, big + 66 + i * mss, seg);
            uint8_t copy[FRAME_CAP];
            memcpy(copy, g, c.len[i]);
            assert_true(tern_ipv4_fill_l4_csum(copy + 14, c.len[i] - 14));
            assert_int_equal(c.flags[i], pending ? TERN_FRAME_CSUM_PENDING : 0);
            if (!pending)
                assert_memory_equal(copy, g, c.len[i]);
        }
        /* emit() saying stop stops. */
        memset(&c, 0, sizeof(c));
        c.stop_after = 2;
        assert_int_equal(tern_frame_gso_split(&f, buf, sizeof(buf), true, keep_cut, &c), 2);
        /* A buffer too small for one segment: nothing emitted. */
        memset(&c, 0, sizeof(c));
        assert_int_equal(tern_frame_gso_split(&f, buf, 66 + mss - 1, true, keep_cut, &c), 0);
        assert_int_equal(c.n, 0);
    }
    /* What it cannot cut goes through as it is, checksum filled on
     * request: a UDP frame, a TCP frame within one segment. */
    const uint8_t protos[] = {TERN_IPPROTO_UDP, TERN_IPPROTO_TCP};
    const size_t sizes[] = {payload, mss};
    for (int k = 0; k < 2; k++) {
        size_t len = make_l4_frame(big, protos[k], sizes[k], false);
        static uint8_t want[CUT_CAP];
        make_l4_frame(want, protos[k], sizes[k], true);
        struct tern_frame f = {.data = big, .len = len, .flags = TERN_FRAME_CSUM_PENDING,
                               .gso_size = (uint16_t)mss};
        static struct cut c;
        memset(&c, 0, sizeof(c));
        assert_int_equal(tern_frame_gso_split(&f, buf, sizeof(buf), false, keep_cut, &c), 1);
        assert_int_equal(c.len[0], len);
        assert_int_equal(c.flags[0], 0);
        assert_memory_equal(c.frames[0], want, len);
    }
}

static void test_wire_ports_offer_tx_csum_and_carry_the_flag(void **state)
{
    (void)state;
    struct tern_wire *w = tern_wire_new(NULL);
    struct tern_link *a = tern_wire_port_new(w);
    struct tern_link *b = tern_wire_port_new(w);
    assert_true(a->info.caps & TERN_LINK_CAP_TX_CSUM);
    uint8_t buf[FRAME_CAP], got[FRAME_CAP];
    size_t len = make_l4_frame(buf, TERN_IPPROTO_TCP, 500, false);
    struct tern_frame out[2] = {
        {.data = buf, .len = len, .flags = TERN_FRAME_CSUM_PENDING},
        {.data = buf, .len = len},
    };
    assert_int_equal(tern_link_send(a, out, 2, 0), 2);
    for (int i = 0; i < 2; i++) {
        struct tern_frame in = {.data = got, .cap = sizeof(got), .flags = 0xdead0000u};
        assert_int_equal(tern_link_recv(b, &in, 1, 0), 1);
        assert_int_equal(in.len, len);
        assert_int_equal(in.flags, i == 0 ? TERN_FRAME_CSUM_PENDING : 0);
        assert_memory_equal(got, buf, len);
    }
    tern_wire_free(w);
}

static void test_impair_fills_a_pending_checksum_before_damaging(void **state)
{
    (void)state;
    struct tern_impair_config corrupt = {.corrupt_ppm = 1000000};
    struct tern_impair_config delay = {.delay_ns = 5 * MS};
    for (int rx = 0; rx < 2; rx++) {
        struct pair p;
        /* Corruption on a's sends, or on what a receives. */
        pair_open(&p, rx ? &delay : &corrupt, rx ? &corrupt : NULL, 11);
        struct tern_link *from = rx ? p.b : p.a, *to = rx ? p.a : p.b;
        assert_true(p.a->info.caps & TERN_LINK_CAP_TX_CSUM);
        for (uint32_t i = 0; i < 200; i++) {
            uint8_t buf[FRAME_CAP], want[FRAME_CAP], got[FRAME_CAP];
            size_t len = make_l4_frame(buf, TERN_IPPROTO_TCP, 100 + i, false);
            make_l4_frame(want, TERN_IPPROTO_TCP, 100 + i, true);
            struct tern_frame f = {.data = buf, .len = len, .flags = TERN_FRAME_CSUM_PENDING};
            assert_int_equal(tern_link_send(from, &f, 1, i * SEC), 1);
            struct tern_frame in = {.data = got, .cap = sizeof(got)};
            pump(from, i * SEC + 10 * MS);
            assert_int_equal(tern_link_recv(to, &in, 1, i * SEC + 10 * MS), 1);
            /* Damaged frames carry a real checksum for the receiver to
             * find the damage with. */
            assert_int_equal(in.flags, 0);
            int flipped = 0;
            for (size_t k = 0; k < len; k++)
                flipped += bits_set(got[k] ^ want[k]);
            assert_int_equal(flipped, 1);
        }
        pair_close(&p);
    }
    /* Undamaged frames keep the flag through the holding queue. */
    struct pair p;
    pair_open(&p, &delay, &delay, 12);
    uint8_t buf[FRAME_CAP], got[FRAME_CAP];
    size_t len = make_l4_frame(buf, TERN_IPPROTO_UDP, 99, false);
    struct tern_frame f = {.data = buf, .len = len, .flags = TERN_FRAME_CSUM_PENDING};
    assert_int_equal(tern_link_send(p.a, &f, 1, 0), 1);
    pump(p.a, 5 * MS);
    struct tern_frame in = {.data = got, .cap = sizeof(got)};
    assert_int_equal(tern_link_recv(p.b, &in, 1, 5 * MS), 1);
    assert_int_equal(in.flags, TERN_FRAME_CSUM_PENDING);
    assert_int_equal(tern_link_send(p.b, &f, 1, 5 * MS), 1);
    in.flags = 0;
    /* Pulled from the wire at 5 ms, due 5 ms later. */
    assert_int_equal(tern_link_recv(p.a, &in, 1, 5 * MS), 0);
    assert_int_equal(tern_link_recv(p.a, &in, 1, 10 * MS), 1);
    assert_int_equal(in.flags, TERN_FRAME_CSUM_PENDING);
    assert_memory_equal(got, buf, len);
    pair_close(&p);
}

static void test_pcap_tee_records_and_hands_over_filled_checksums(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof(path), "tee-csum");
    struct tern_wire *w = tern_wire_new(NULL);
    struct tern_link *a = tern_pcap_tee_new(tern_wire_port_new(w), path);
    struct tern_link *b = tern_wire_port_new(w);
    assert_non_null(a);
    /* What a stack sends through the tee is recorded as sent: filled. */
    assert_false(a->info.caps & TERN_LINK_CAP_TX_CSUM);
    uint8_t buf[FRAME_CAP], want[FRAME_CAP], got[FRAME_CAP];
    size_t len = make_l4_frame(buf, TERN_IPPROTO_UDP, 333, false);
    make_l4_frame(want, TERN_IPPROTO_UDP, 333, true);
    struct tern_frame f = {.data = buf, .len = len, .flags = TERN_FRAME_CSUM_PENDING};
    assert_int_equal(tern_link_send(b, &f, 1, 0), 1);
    struct tern_frame in = {.data = got, .cap = sizeof(got)};
    assert_int_equal(tern_link_recv(a, &in, 1, 0), 1);
    assert_int_equal(in.flags, 0);
    assert_memory_equal(got, want, len);
    tern_link_free(a);
    tern_wire_free(w);

    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    uint8_t file[24 + 16 + FRAME_CAP];
    size_t size = fread(file, 1, sizeof(file), fp);
    fclose(fp);
    unlink(path);
    assert_int_equal(size, 24 + 16 + len);
    const uint8_t *pos = file + 24;
    check_record(&pos, 0, want, len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_calls_default_missing_optional_ops),
        cmocka_unit_test(test_wire_delivers_copy_to_every_other_port_not_sender),
        cmocka_unit_test(test_wire_drops_frame_longer_than_mtu_plus_header),
        cmocka_unit_test(test_wire_queue_limit_counts_rx_drops_and_keeps_fifo),
        cmocka_unit_test(test_wire_recv_drops_frame_longer_than_buffer),
        cmocka_unit_test(test_wire_port_freed_before_wire_detaches),
        cmocka_unit_test(test_wire_free_frees_ports_with_queued_frames),
        cmocka_unit_test(test_wire_rejects_mtu_above_65535),
        cmocka_unit_test(test_wire_offload_carries_super_frames_whole_and_only_those),
        cmocka_unit_test(test_impair_zero_config_is_transparent),
        cmocka_unit_test(test_impair_loss_10pct_in_tolerance_and_reproducible),
        cmocka_unit_test(test_impair_delay_holds_frame_until_due_and_reports_deadline),
        cmocka_unit_test(test_impair_rx_delay_holds_received_frame),
        cmocka_unit_test(test_impair_next_deadline_includes_inner_deadline),
        cmocka_unit_test(test_impair_reorder_overtakes_some_frames_and_keeps_all),
        cmocka_unit_test(test_impair_equal_due_times_keep_send_order),
        cmocka_unit_test(test_impair_jitter_stays_within_delay_plus_jitter),
        cmocka_unit_test(test_impair_duplicate_delivers_two_identical_copies),
        cmocka_unit_test(test_impair_corrupt_flips_one_bit_past_ethernet_header),
        cmocka_unit_test(test_impair_rate_limit_1000x1250B_at_10Mbps_takes_1s),
        cmocka_unit_test(test_impair_mtu_drops_oversized_frames),
        cmocka_unit_test(test_impair_queue_limit_refuses_and_counts),
        cmocka_unit_test(test_impair_bad_config_fails_and_frees_inner),
        cmocka_unit_test(test_impair_holding_queues_freed_with_frames_inside),
        cmocka_unit_test(test_pcap_records_tx_and_rx_with_now_as_timestamp),
        cmocka_unit_test(test_pcap_unwritable_path_fails_and_frees_inner),
        cmocka_unit_test(test_pcap_unwritable_file_fails_at_open),
        cmocka_unit_test(test_pcap_write_error_later_keeps_traffic_flowing),
        cmocka_unit_test(test_frame_csum_fill_gives_the_checksum_emit_gives),
        cmocka_unit_test(test_frame_csum_fill_leaves_what_it_cannot_sum),
        cmocka_unit_test(test_gso_split_cuts_a_super_frame_as_tso_would),
        cmocka_unit_test(test_wire_ports_offer_tx_csum_and_carry_the_flag),
        cmocka_unit_test(test_impair_fills_a_pending_checksum_before_damaging),
        cmocka_unit_test(test_pcap_tee_records_and_hands_over_filled_checksums),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
