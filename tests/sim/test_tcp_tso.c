/* TCP segmentation offload: a stack whose link offers TERN_LINK_CAP_TSO
 * sends super-frames of whole segments; the link (here the test's) cuts
 * them up, or carries them whole to a stack that takes coalesced frames
 * (as a TAP device's GRO hands them over). Every byte must arrive once
 * and in order either way, with losses too, and a capture must see
 * frames cut to the MTU (the stack cuts them itself then). */
#include "testing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf/pkt.h"
#include "net/ipv4.h"
#include "pcapcheck.h"
#include "sim.h"
#include "wire/bytes.h"
#include "wire/ipv4.h"
#include "wire/tcp.h"

#define MS TERN_NS_PER_MS
#define SEC TERN_NS_PER_SEC
#define MTU 1500

/* ---- A link of the test's own that offers TSO ---- */

struct tso_link {
    struct tern_link link;
    struct tern_link *inner;
    bool whole;             /* super-frames go on the wire as they are */
    uint64_t super_frames;  /* sent to us with gso_size */
    uint64_t segments;      /* the frames they stood for */
    uint64_t coalesced_rx;  /* longer than the MTU, handed to the stack */
    uint64_t bad;           /* super-frames that broke the contract */
    uint8_t seg[TERN_LINK_MAX_FRAME];
};

struct tso_ctx {
    struct tso_link *t;
    tern_time_t now;
};

static bool tso_emit(void *arg, const struct tern_frame *seg)
{
    struct tso_ctx *c = arg;
    c->t->segments++;
    if (seg->len > MTU + 14)
        c->t->bad++;
    tern_link_send(c->t->inner, seg, 1, c->now);
    return true;
}

static size_t tso_send(struct tern_link *l, const struct tern_frame *frames, size_t n,
                       tern_time_t now)
{
    struct tso_link *t = (struct tso_link *)l;
    for (size_t i = 0; i < n; i++) {
        const struct tern_frame *f = &frames[i];
        if (!f->gso_size) {
            if (f->len > MTU + 14)
                t->bad++;
            tern_link_send(t->inner, f, 1, now);
            continue;
        }
        t->super_frames++;
        /* The contract: checksum left to us, more than one segment, and
         * each segment (headers: Ethernet, IPv4, TCP with a timestamp)
         * within the MTU. */
        if (!(f->flags & TERN_FRAME_CSUM_PENDING) || f->len <= MTU + 14 ||
            f->gso_size + 20 + 32 > MTU)
            t->bad++;
        if (t->whole) {
            t->segments += (f->len - 66 + f->gso_size - 1) / f->gso_size;
            tern_link_send(t->inner, f, 1, now);
            continue;
        }
        struct tso_ctx c = {t, now};
        if (tern_frame_gso_split(f, t->seg, sizeof(t->seg), true, tso_emit, &c) < 2)
            t->bad++;
    }
    return n;
}

static size_t tso_recv(struct tern_link *l, struct tern_frame *frames, size_t n,
                       tern_time_t now)
{
    struct tso_link *t = (struct tso_link *)l;
    size_t got = tern_link_recv(t->inner, frames, n, now);
    for (size_t i = 0; i < got; i++)
        t->coalesced_rx += frames[i].len > MTU + 14;
    return got;
}

static tern_time_t tso_deadline(struct tern_link *l, tern_time_t now)
{
    return tern_link_next_deadline(((struct tso_link *)l)->inner, now);
}

static void tso_destroy(struct tern_link *l)
{
    tern_link_free(((struct tso_link *)l)->inner);
    /* The struct is the test's. */
}

static struct tso_link tso[2];

static struct tern_link *wrap_tso(struct tern_link *inner, int i, void *arg)
{
    bool whole = *(bool *)arg;
    struct tso_link *t = &tso[i];
    memset(t, 0, sizeof(*t) - sizeof(t->seg));
    t->inner = inner;
    t->whole = whole;
    t->link.ops = (struct tern_link_ops){.send = tso_send, .recv = tso_recv,
                                         .next_deadline = tso_deadline, .destroy = tso_destroy};
    t->link.info = inner->info;
    /* The stack sees a 1500-byte MTU; when super-frames go whole, the
     * wire under us carries 64 KiB frames. */
    t->link.info.mtu = MTU;
    t->link.info.caps = TERN_LINK_CAP_TX_CSUM | TERN_LINK_CAP_TSO;
    t->link.info.rx_frame_max = whole ? TERN_LINK_MAX_FRAME : 0;
    return &t->link;
}

static void open_sim(struct sim *sim, bool *whole, const struct tern_impair_config *tx)
{
    struct sim_opts o = {.seed = 7, .mtu = *whole ? 65535 : MTU, .tx = tx, .wrap = wrap_tso,
                         .wrap_arg = whole};
    sim_init(sim, 2, &o);
    assert_int_equal(sim->link[0]->info.mtu, MTU);
}

/* 4 MB one way, 1 MB back, checked byte by byte. */
static void transfer_both_ways(struct sim *sim, struct sim_tcp *c)
{
    struct sim_flow up = {.from_stack = 0, .from_fd = c->client, .to_stack = 1,
                          .to_fd = c->server, .total = 4u << 20, .salt = 3};
    assert_true(sim_run_until(sim, sim_flow_pump, &up, 120 * SEC));
    assert_int_equal(up.error, 0);
    assert_int_equal(up.received, up.total);
    struct sim_flow down = {.from_stack = 1, .from_fd = c->server, .to_stack = 0,
                            .to_fd = c->client, .total = 1u << 20, .salt = 4};
    assert_true(sim_run_until(sim, sim_flow_pump, &down, 120 * SEC));
    assert_int_equal(down.error, 0);
    assert_int_equal(down.received, down.total);
}

static void run_clean(bool whole)
{
    struct sim sim;
    open_sim(&sim, &whole, NULL);
    struct sim_tcp c;
    sim_tcp_open(&sim, &c, 0, 1, 80);
    transfer_both_ways(&sim, &c);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(tso[i].bad, 0);
        /* Both directions went as super-frames, many segments each. */
        assert_true(tso[i].super_frames > 10);
        assert_true(tso[i].segments > 4 * tso[i].super_frames);
        assert_int_equal(sim_counter(&sim, i, "link.tx_gso"), tso[i].super_frames);
        assert_int_equal(sim_counter(&sim, i, "link.tx_gso_split"), 0);
        assert_int_equal(sim_counter(&sim, i, "tcp.retransmit"), 0);
    }
    /* Both ends count segments as they would cross a wire: the sender
     * each segment of a super-frame, the receiver each one a coalesced
     * frame holds. */
    for (int i = 0; i < 2; i++) {
        assert_true(sim_counter(&sim, i, "tcp.tx") >= tso[i].segments);
        assert_true(sim_counter(&sim, 1 - i, "tcp.rx") >= tso[i].segments);
    }
    /* Whole, the receiver took them as they came (a GRO'd frame); cut,
     * it never saw one longer than the MTU. */
    assert_int_equal(sim_counter(&sim, 1, "link.rx_coalesced"), whole ? tso[1].coalesced_rx : 0);
    assert_true(whole ? tso[1].coalesced_rx > 10 : tso[1].coalesced_rx == 0);
    sim_tcp_close(&sim, &c);
    sim_finish(&sim);
}

static void test_super_frames_cut_by_the_link_carry_every_byte(void **state)
{
    (void)state;
    run_clean(false);
}

static void test_super_frames_taken_whole_by_the_receiver_carry_every_byte(void **state)
{
    (void)state;
    run_clean(true);
}

static void test_super_frames_over_a_lossy_link_recover(void **state)
{
    (void)state;
    /* The impairment sits under our link: it loses segments, not
     * super-frames, as a wire beyond a TSO device would. */
    struct tern_impair_config loss = {.loss_ppm = 20000, .delay_ns = 2 * MS};
    bool whole = false;
    struct sim sim;
    open_sim(&sim, &whole, &loss);
    struct sim_tcp c;
    sim_tcp_open(&sim, &c, 0, 1, 80);
    transfer_both_ways(&sim, &c);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(tso[i].bad, 0);
        assert_true(tso[i].super_frames > 0);
        assert_true(sim_counter(&sim, i, "tcp.retransmit") > 0);
    }
    sim_tcp_close(&sim, &c);
    sim_finish(&sim);
}

/* tern_wire's own offload: no link of the test's, the wire carries what
 * the stacks send whole and each takes what it gets as segments. */
static void test_a_wire_with_offload_carries_super_frames_both_ways(void **state)
{
    (void)state;
    struct sim sim;
    struct sim_opts o = {.seed = 9, .offload = true};
    sim_init(&sim, 2, &o);
    assert_true(sim.link[0]->info.caps & TERN_LINK_CAP_TSO);
    struct sim_tcp c;
    sim_tcp_open(&sim, &c, 0, 1, 80);
    transfer_both_ways(&sim, &c);
    for (int i = 0; i < 2; i++) {
        assert_true(sim_counter(&sim, i, "link.tx_gso") > 10);
        assert_int_equal(sim_counter(&sim, i, "link.tx_gso_split"), 0);
        assert_true(sim_counter(&sim, i, "link.rx_coalesced") > 10);
        assert_int_equal(sim_counter(&sim, i, "tcp.retransmit"), 0);
        /* What went whole was counted as the segments it held. */
        assert_true(sim_counter(&sim, i, "tcp.tx") > 4 * sim_counter(&sim, i, "link.tx_gso"));
        assert_int_equal(sim.link[i]->stats.tx_dropped, 0);
    }
    sim_tcp_close(&sim, &c);
    sim_finish(&sim);
}

/* The capture of one cut super-segment: segments of 1448 bytes and a
 * last of the rest, consecutive sequence numbers, PSH only on the last,
 * each with its right checksum. */
static void check_cut_capture(const char *path, size_t payload)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t gh[24], rh[16], frame[TERN_LINK_MAX_FRAME], copy[TERN_LINK_MAX_FRAME];
    assert_int_equal(fread(gh, 1, sizeof(gh), f), sizeof(gh));
    size_t n = 0, bytes = 0;
    uint32_t next_seq = 1;
    while (fread(rh, 1, sizeof(rh), f) == sizeof(rh)) {
        uint32_t len;
        memcpy(&len, rh + 8, 4); /* incl_len, in the writer's byte order */
        assert_true(len <= sizeof(frame));
        assert_int_equal(fread(frame, 1, len, f), len);
        if (len < 54 || frame[23] != TERN_IPPROTO_TCP || tern_get16(frame + 36) != 9)
            continue;
        assert_true(len <= MTU + 14);
        size_t seg = len - 66;
        assert_int_equal(tern_get32(frame + 38), next_seq);
        next_seq += (uint32_t)seg;
        bytes += seg;
        bool last = bytes == payload;
        assert_int_equal(seg, last ? 100 : 1448);
        assert_int_equal(frame[47] & TERN_TCP_PSH, last ? TERN_TCP_PSH : 0);
        memcpy(copy, frame, len);
        assert_true(tern_ipv4_fill_l4_csum(copy + 14, len - 14));
        assert_memory_equal(copy, frame, len);
        n++;
    }
    fclose(f);
    assert_int_equal(n, 4);
    assert_int_equal(bytes, payload);
}

static void test_a_capture_sees_frames_cut_by_the_stack(void **state)
{
    (void)state;
    bool whole = false;
    struct sim sim;
    open_sim(&sim, &whole, NULL);
    struct sim_tcp c;
    sim_tcp_open(&sim, &c, 0, 1, 80);
    char path[256];
    sim_tmp_path(path, sizeof(path), "tcp-tso-capture.pcap");
    assert_int_equal(tern_capture_start(sim.st[0], path), 0);
    struct sim_flow up = {.from_stack = 0, .from_fd = c.client, .to_stack = 1,
                          .to_fd = c.server, .total = 1u << 20, .salt = 5};
    assert_true(sim_run_until(&sim, sim_flow_pump, &up, 60 * SEC));
    assert_int_equal(up.received, up.total);
    /* While the capture reads the bytes, TCP sends one segment at a
     * time and the link sees no super-frame. */
    assert_int_equal(tso[0].super_frames, 0);
    assert_int_equal(sim_counter(&sim, 0, "link.tx_gso"), 0);
    assert_int_equal(sim_counter(&sim, 0, "link.tx_gso_split"), 0);
    assert_int_equal(tern_capture_stop(sim.st[0]), 0);
    /* The file holds MTU-sized frames with real checksums. */
    assert_int_equal(pcap_check(path), 0);
    unlink(path);

    /* A super-segment built before a capture began (one held for ARP,
     * say) is cut by the stack: four segments, each captured whole. */
    assert_int_equal(tern_capture_start(sim.st[0], path), 0);
    struct tern_stack *s = sim.st[0];
    size_t payload = 3 * 1448 + 100;
    struct tern_pkt *p = tern_pkt_alloc(s, TERN_PKT_HEADROOM, 32 + payload);
    assert_non_null(p);
    struct tern_tcp_hdr h = {.sport = 9, .dport = 9, .seq = 1, .ack = 1, .hlen = 32,
                             .flags = TERN_TCP_ACK | TERN_TCP_PSH, .wnd = 100};
    h.opt.has_ts = true;
    tern_tcp_emit_nocsum(tern_pkt_data(p), &h);
    memset(tern_pkt_data(p) + 32, 0x5a, payload);
    p->csum = TERN_PKT_CSUM_PENDING;
    p->gso_size = 1448;
    struct tern_ipv4_out o = {.dst = ntohl(sim_addr(1).s_addr), .proto = TERN_IPPROTO_TCP,
                              .ttl = 64, .df = true};
    assert_int_equal(tern_ipv4_output_take(s, p, &o), 0);
    assert_int_equal(sim_counter(&sim, 0, "link.tx_gso_split"), 4);
    assert_int_equal(tso[0].super_frames, 0);
    assert_int_equal(tern_capture_stop(sim.st[0]), 0);
    check_cut_capture(path, payload);
    unlink(path);
    sim_run(&sim, 10 * MS); /* stack 1 resets the stray segments */

    /* Without the capture, super-frames again. */
    struct sim_flow more = {.from_stack = 0, .from_fd = c.client, .to_stack = 1,
                            .to_fd = c.server, .total = 1u << 20, .salt = 6};
    assert_true(sim_run_until(&sim, sim_flow_pump, &more, 60 * SEC));
    assert_int_equal(more.received, more.total);
    assert_true(tso[0].super_frames > 0);
    assert_int_equal(tso[0].bad, 0);
    sim_tcp_close(&sim, &c);
    sim_finish(&sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_super_frames_cut_by_the_link_carry_every_byte),
        cmocka_unit_test(test_super_frames_taken_whole_by_the_receiver_carry_every_byte),
        cmocka_unit_test(test_super_frames_over_a_lossy_link_recover),
        cmocka_unit_test(test_a_wire_with_offload_carries_super_frames_both_ways),
        cmocka_unit_test(test_a_capture_sees_frames_cut_by_the_stack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
