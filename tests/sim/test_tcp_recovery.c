/* Loss recovery and congestion control: SACK recovery (RFC 6675) against
 * NewReno (RFC 6582) on the same chosen losses, early retransmit (RFC
 * 5827), lost retransmissions, limited transmit (RFC 3042), DupThresh
 * raised by reordering and reset by a timeout, and the shapes of the
 * NewReno and CUBIC (RFC 9438) windows. */
#include "testing.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stack.h"
#include "sim.h"
#include "transport/tcp/tcp.h"

#define MS TERN_NS_PER_MS
#define SEC TERN_NS_PER_SEC

/* ---- Links that filter one stack's sends ---- */

/* The first member of each filter: the link the stack sees, over the
 * simulator's port (inner), which receives as it is. */
struct filter {
    struct tern_link link;
    struct tern_link *inner;
};

static size_t filter_recv(struct tern_link *l, struct tern_frame *frames, size_t n,
                          tern_time_t now)
{
    return tern_link_recv(((struct filter *)l)->inner, frames, n, now);
}

static tern_time_t filter_deadline(struct tern_link *l, tern_time_t now)
{
    return tern_link_next_deadline(((struct filter *)l)->inner, now);
}

static void filter_destroy(struct tern_link *l)
{
    tern_link_free(((struct filter *)l)->inner);
    /* The struct is the test's; only the inner port is freed here. */
}

static struct tern_link *filter_wrap(struct filter *f, struct tern_link *inner,
                                     size_t (*send)(struct tern_link *, const struct tern_frame *,
                                                    size_t, tern_time_t))
{
    f->inner = inner;
    f->link.ops = (struct tern_link_ops){.send = send, .recv = filter_recv,
                                         .next_deadline = filter_deadline,
                                         .destroy = filter_destroy};
    f->link.info = inner->info;
    return &f->link;
}

/* ---- A link that loses chosen data segments, once each ---- */

#define DROP_MAX 8
struct dropper {
    struct filter f;
    int stack;             /* whose sends it filters */
    bool acks;             /* count (and drop) pure ACKs instead of data segments */
    uint32_t data_frames;  /* TCP segments with payload (or pure ACKs) seen so far */
    uint32_t drop[DROP_MAX]; /* 1-based indexes among them */
    int ndrop;
    uint32_t dropped;
    /* And this many copies more of the first dropped segment (its
     * retransmissions), found by its sequence number. */
    uint32_t again;
    /* With acks: drop every pure ACK while set, and the next this many. */
    bool all;
    uint32_t next;
    bool seq_known;
    uint32_t seq;
};

static uint32_t tcp_seq_of(const struct tern_frame *f)
{
    const uint8_t *p = f->data;
    size_t ihl = (size_t)(p[14] & 0xf) * 4;
    const uint8_t *t = p + 14 + ihl + 4;
    return (uint32_t)t[0] << 24 | (uint32_t)t[1] << 16 | (uint32_t)t[2] << 8 | t[3];
}

static bool is_tcp_data(const struct tern_frame *f)
{
    const uint8_t *p = f->data;
    if (f->len < 14 + 20 + 20 || p[12] != 0x08 || p[13] != 0x00 || p[14 + 9] != 6)
        return false;
    size_t ihl = (size_t)(p[14] & 0xf) * 4;
    size_t tot = ((size_t)p[16] << 8) | p[17];
    size_t thl = (size_t)(p[14 + ihl + 12] >> 4) * 4;
    return tot > ihl + thl;
}

/* A TCP segment with no payload and only ACK among SYN, FIN, RST. */
static bool is_pure_ack(const struct tern_frame *f)
{
    const uint8_t *p = f->data;
    if (f->len < 14 + 20 + 20 || p[12] != 0x08 || p[13] != 0x00 || p[14 + 9] != 6)
        return false;
    size_t ihl = (size_t)(p[14] & 0xf) * 4;
    uint8_t flags = p[14 + ihl + 13];
    return !is_tcp_data(f) && (flags & 0x17) == 0x10;
}

static size_t dropper_send(struct tern_link *l, const struct tern_frame *frames, size_t n,
                           tern_time_t now)
{
    struct dropper *d = (struct dropper *)l;
    for (size_t i = 0; i < n; i++) {
        bool drop = false;
        if (d->acks && is_pure_ack(&frames[i]) && (d->all || d->next > 0)) {
            if (!d->all)
                d->next--;
            drop = true;
        } else if (d->acks ? is_pure_ack(&frames[i]) : is_tcp_data(&frames[i])) {
            d->data_frames++;
            for (int k = 0; k < d->ndrop; k++)
                drop |= d->drop[k] == d->data_frames;
            if (!d->acks && d->ndrop > 0 && d->drop[0] == d->data_frames) {
                d->seq = tcp_seq_of(&frames[i]);
                d->seq_known = true;
            } else if (!drop && d->again > 0 && d->seq_known &&
                       tcp_seq_of(&frames[i]) == d->seq) {
                d->again--;
                drop = true;
            }
        }
        if (drop)
            d->dropped++;
        else
            tern_link_send(d->f.inner, &frames[i], 1, now);
    }
    return n;
}

static struct tern_link *wrap_dropper(struct tern_link *inner, int i, void *arg)
{
    struct dropper *d = arg;
    return i == d->stack ? filter_wrap(&d->f, inner, dropper_send) : inner;
}

/* ---- A link that holds chosen data segments back behind later ones ---- */

#define HELD_MAX 4
struct reorderer {
    struct filter f;
    uint32_t every;      /* hold back every this-many-th data segment ... */
    uint32_t behind;     /* ... until this many more have gone */
    uint32_t until;      /* only among the first this many (0: all) */
    uint32_t drop;       /* then lose this data segment (1-based, 0: none) ... */
    uint32_t drop_again; /* ... and this many of its retransmissions */
    uint32_t dup;        /* and send this data segment twice (1-based, 0: none) */
    uint32_t data_frames, held_count, dropped;
    bool drop_seq_known;
    uint32_t drop_seq;
    struct {
        uint8_t buf[TERN_LINK_MAX_FRAME];
        struct tern_frame f;
        uint32_t release_at; /* data_frames count at which it goes */
        bool used;
    } held[HELD_MAX];
};

static size_t reorderer_send(struct tern_link *l, const struct tern_frame *frames, size_t n,
                             tern_time_t now)
{
    struct reorderer *r = (struct reorderer *)l;
    for (size_t i = 0; i < n; i++) {
        if (!is_tcp_data(&frames[i])) {
            tern_link_send(r->f.inner, &frames[i], 1, now);
            continue;
        }
        r->data_frames++;
        uint32_t seq = tcp_seq_of(&frames[i]);
        bool lose = false;
        if (r->drop && r->data_frames == r->drop) {
            r->drop_seq = seq;
            r->drop_seq_known = lose = true;
        } else if (r->drop_again > 0 && r->drop_seq_known && seq == r->drop_seq) {
            r->drop_again--;
            lose = true;
        }
        bool hold = !lose && r->every && r->data_frames % r->every == 0 &&
                    (!r->until || r->data_frames <= r->until);
        int slot = -1;
        for (int k = 0; hold && k < HELD_MAX && slot < 0; k++)
            if (!r->held[k].used)
                slot = k;
        if (lose) {
            r->dropped++;
        } else if (slot >= 0) {
            memcpy(r->held[slot].buf, frames[i].data, frames[i].len);
            r->held[slot].f = frames[i];
            r->held[slot].f.data = r->held[slot].buf;
            r->held[slot].release_at = r->data_frames + r->behind;
            r->held[slot].used = true;
            r->held_count++;
        } else {
            tern_link_send(r->f.inner, &frames[i], 1, now);
            if (r->dup && r->data_frames == r->dup)
                tern_link_send(r->f.inner, &frames[i], 1, now); /* the network's copy */
        }
        for (int k = 0; k < HELD_MAX; k++)
            if (r->held[k].used && r->data_frames >= r->held[k].release_at) {
                tern_link_send(r->f.inner, &r->held[k].f, 1, now);
                r->held[k].used = false;
            }
    }
    return n;
}

/* Wraps stack 0's sends only. */
static struct tern_link *wrap_reorderer(struct tern_link *inner, int i, void *arg)
{
    return i == 0 ? filter_wrap(&((struct reorderer *)arg)->f, inner, reorderer_send) : inner;
}

/* ---- A one-way transfer with a position-dependent pattern ---- */

static uint8_t pattern_byte(uint64_t pos) { return (uint8_t)((pos * 131u + (pos >> 11)) & 0xff); }

struct xfer {
    struct sim sim;
    int listener, server, client;
    uint64_t total, sent, received;
    int error;
    uint64_t recovery_start, recovery_end; /* the sender's first recovery */
};

static bool accepted(struct sim *sim, void *arg)
{
    struct xfer *x = arg;
    x->server = tern_accept(sim->st[1], x->listener, NULL, NULL);
    return x->server >= 0;
}

static bool pump(struct sim *sim, void *arg)
{
    struct xfer *x = arg;
    uint8_t buf[16384];
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    assert_int_equal(tern_getsockopt(sim->st[0], x->client, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
    if (ti.tcpi_ca_state == 3 /* TCP_CA_Recovery */ && !x->recovery_start)
        x->recovery_start = sim->now;
    if (ti.tcpi_ca_state != 3 && x->recovery_start && !x->recovery_end)
        x->recovery_end = sim->now;
    while (x->sent < x->total) {
        size_t n = x->total - x->sent < sizeof(buf) ? (size_t)(x->total - x->sent) : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern_byte(x->sent + i);
        ssize_t w = tern_send(sim->st[0], x->client, buf, n, 0);
        if (w <= 0)
            break;
        x->sent += (uint64_t)w;
    }
    for (;;) {
        ssize_t r = tern_recv(sim->st[1], x->server, buf, sizeof(buf), 0);
        if (r <= 0) {
            if (r < 0 && errno != EAGAIN)
                x->error = errno;
            break;
        }
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != pattern_byte(x->received + (uint64_t)i))
                fail_msg("byte %llu wrong", (unsigned long long)(x->received + (uint64_t)i));
        x->received += (uint64_t)r;
    }
    return x->received == x->total || x->error;
}

/* The sender has nothing in flight. */
static bool all_acked(struct sim *sim, void *arg)
{
    struct xfer *x = arg;
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    assert_int_equal(tern_getsockopt(sim->st[0], x->client, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
    return ti.tcpi_unacked == 0;
}

struct run {
    uint64_t tlp_probe, tlp_recovered;
    uint64_t acked; /* from the start until the sender holds nothing unacknowledged */
    uint64_t retransmit, timeouts, fast, early, lost_rxt, sack_rec, newreno_rec, limited;
    uint64_t duration;
    uint64_t recovery; /* how long the first recovery lasted */
    uint64_t reordering_seen, spurious, reordering_reset, undone;
    uint64_t dsack_sent; /* by the receiver */
    uint32_t reordering; /* the sender's DupThresh at the end (tcpi_reordering) */
};

/* Stack 0 sends `total` bytes to stack 1 over a link with `delay` each
 * way, both stacks configured as cfg; the dropper (if any) filters stack
 * 0's sends. */
static struct run transfer_wrapped(const struct tern_stack_config *cfg, uint64_t total,
                                   uint64_t delay,
                                   struct tern_link *(*wrap)(struct tern_link *, int, void *),
                                   void *wrap_arg)
{
    struct tern_impair_config imp = {.delay_ns = delay};
    struct sim_opts o = {.cfg = cfg, .tx = &imp, .wrap = wrap, .wrap_arg = wrap_arg,
                         .pcap = getenv("TCP_PCAP")};
    struct xfer *x = calloc(1, sizeof(*x));
    assert_non_null(x);
    sim_init(&x->sim, 2, &o);
    struct sim *sim = &x->sim;
    x->total = total;
    x->server = -1;
    x->listener = tern_socket(sim->st[1], AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sim_sin(1, 80);
    assert_int_equal(tern_bind(sim->st[1], x->listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(sim->st[1], x->listener, 4), 0);
    x->client = tern_socket(sim->st[0], AF_INET, SOCK_STREAM, 0);
    assert_int_equal(tern_connect(sim->st[0], x->client, (struct sockaddr *)&a, sizeof(a)), -1);
    assert_true(sim_run_until(sim, accepted, x, 5 * SEC));
    uint64_t start = sim->now;
    assert_true(sim_run_until(sim, pump, x, 300 * SEC));
    assert_int_equal(x->error, 0);
    assert_int_equal(x->received, total);
    uint64_t delivered = sim->now;
    assert_true(sim_run_until(sim, all_acked, x, 5 * SEC));
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    assert_int_equal(tern_getsockopt(sim->st[0], x->client, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
    struct run r = {
        .tlp_probe = sim_counter(sim, 0, "tcp.tlp_probe"),
        .tlp_recovered = sim_counter(sim, 0, "tcp.tlp_recovered"),
        .retransmit = sim_counter(sim, 0, "tcp.retransmit"),
        .timeouts = sim_counter(sim, 0, "tcp.retransmit_timeout"),
        .fast = sim_counter(sim, 0, "tcp.fast_retransmit"),
        .early = sim_counter(sim, 0, "tcp.early_retransmit"),
        .lost_rxt = sim_counter(sim, 0, "tcp.lost_retransmit"),
        .sack_rec = sim_counter(sim, 0, "tcp.sack_recovery"),
        .newreno_rec = sim_counter(sim, 0, "tcp.newreno_recovery"),
        .limited = sim_counter(sim, 0, "tcp.limited_transmit"),
        .duration = delivered - start,
        .acked = sim->now - start,
        .recovery = x->recovery_end - x->recovery_start,
        .reordering_seen = sim_counter(sim, 0, "tcp.reordering_seen"),
        .spurious = sim_counter(sim, 0, "tcp.spurious_retransmit"),
        .reordering_reset = sim_counter(sim, 0, "tcp.reordering_reset"),
        .undone = sim_counter(sim, 0, "tcp.recovery_undone"),
        .dsack_sent = sim_counter(sim, 1, "tcp.tx_dsack"),
        .reordering = ti.tcpi_reordering,
    };
    if (getenv("TCP_VERBOSE"))
        fprintf(stderr,
                "sack %d cc %u: %.3f s, recovery %.3f s, rexmit %llu, rto %llu, fast %llu, "
                "limited %llu\n",
                cfg->tcp_sack, cfg->tcp_congestion, (double)r.duration / 1e9,
                (double)r.recovery / 1e9,
                (unsigned long long)r.retransmit,
                (unsigned long long)r.timeouts, (unsigned long long)r.fast,
                (unsigned long long)r.limited);
    tern_close(sim->st[0], x->client);
    tern_close(sim->st[1], x->server);
    tern_close(sim->st[1], x->listener);
    sim_finish(sim);
    free(x);
    return r;
}

static struct run transfer_with(const struct tern_stack_config *cfg, uint64_t total,
                                uint64_t delay, struct dropper *d)
{
    return transfer_wrapped(cfg, total, delay, d ? wrap_dropper : NULL, d);
}

static struct run transfer(uint64_t total, bool sack, uint8_t cc, uint64_t delay,
                           struct dropper *d)
{
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.tcp_sack = sack;
    cfg.tcp_congestion = cc;
    return transfer_with(&cfg, total, delay, d);
}

/* Three segments of one window lost: SACK repairs all three in one round
 * trip, NewReno needs a partial ACK for each; neither times out, and each
 * sends exactly the three lost segments again. */
static void test_sack_repairs_many_losses_in_one_round_trip(void **state)
{
    (void)state;
    struct dropper ds = {.stack = 0, .drop = {30, 33, 36}, .ndrop = 3};
    struct run sack = transfer(400000, true, TERN_TCP_CC_NEWRENO, 20 * MS, &ds);
    assert_int_equal(ds.dropped, 3);
    struct dropper dn = {.stack = 0, .drop = {30, 33, 36}, .ndrop = 3};
    struct run reno = transfer(400000, false, TERN_TCP_CC_NEWRENO, 20 * MS, &dn);
    assert_int_equal(dn.dropped, 3);

    assert_int_equal(sack.timeouts, 0);
    assert_int_equal(sack.fast, 1);
    assert_int_equal(sack.sack_rec, 1);
    assert_int_equal(sack.newreno_rec, 0);
    assert_int_equal(sack.retransmit, 3);

    assert_int_equal(reno.timeouts, 0);
    assert_int_equal(reno.fast, 1);
    assert_int_equal(reno.newreno_rec, 1);
    assert_int_equal(reno.sack_rec, 0);
    assert_int_equal(reno.retransmit, 3);
    /* The round trip is 40 ms. SACK learns of all three holes within one
     * and repairs them at once; NewReno learns of each from the partial
     * ACK of the one before: three round trips. */
    assert_in_range(sack.recovery, 40 * MS, 60 * MS);
    assert_in_range(reno.recovery, 120 * MS, 140 * MS);
}

/* The second segment of the first window is lost. Without SACK the first
 * two duplicate ACKs each let one new segment out beyond cwnd (RFC 3042)
 * and the third starts fast retransmit. With SACK the receiver's first
 * answer is the delayed ACK of segment 1, already carrying a SACK block
 * for segment 3; by the second duplicate ACK three segments are SACKed
 * above the hole, so IsLost (RFC 6675 section 4) starts recovery there,
 * after a single limited transmit. */
/* Three segments in all, the first lost: two duplicate ACKs are all the
 * receiver can send, and nothing new is left to make more. With SACK the
 * sender retransmits on those two (RFC 5827 early retransmit) within a
 * round trip, neither probing nor waiting for its timer; without SACK
 * (left to the standard threshold) a timer has to find the loss. */
static void test_early_retransmit_when_three_segments_are_all(void **state)
{
    (void)state;
    struct dropper ds = {.stack = 0, .drop = {1}, .ndrop = 1};
    struct run sack = transfer(3 * 1448, true, TERN_TCP_CC_CUBIC, 20 * MS, &ds);
    assert_int_equal(ds.dropped, 1);
    assert_int_equal(sack.early, 1);
    assert_int_equal(sack.fast, 1);
    assert_int_equal(sack.timeouts, 0);
    assert_int_equal(sack.tlp_probe, 0);
    assert_int_equal(sack.retransmit, 1);
    assert_true(sack.duration < 100 * MS); /* two round trips and a bit */

    struct dropper dn = {.stack = 0, .drop = {1}, .ndrop = 1};
    struct run plain = transfer(3 * 1448, false, TERN_TCP_CC_CUBIC, 20 * MS, &dn);
    assert_int_equal(plain.early, 0);
    assert_int_equal(plain.fast, 0);
    assert_true(plain.duration > sack.duration);

    /* Four segments or more out: the standard three duplicate ACKs. */
    struct dropper d4 = {.stack = 0, .drop = {1}, .ndrop = 1};
    struct run four = transfer(5 * 1448, true, TERN_TCP_CC_CUBIC, 20 * MS, &d4);
    assert_int_equal(four.early, 0);
    assert_int_equal(four.fast, 1);
    assert_int_equal(four.timeouts, 0);
}

/* A segment lost, then its retransmission too: the SACKs for what was
 * sent after the retransmission show it lost, and it goes a third time
 * within the recovery, without the RTO that alone found it before. */
static void test_a_lost_retransmission_is_resent_without_a_timeout(void **state)
{
    (void)state;
    struct dropper d = {.stack = 0, .drop = {30}, .ndrop = 1, .again = 1};
    struct run r = transfer(400000, true, TERN_TCP_CC_CUBIC, 20 * MS, &d);
    assert_int_equal(d.dropped, 2);
    assert_int_equal(d.again, 0);
    assert_int_equal(r.lost_rxt, 1);
    assert_int_equal(r.timeouts, 0);
    assert_int_equal(r.fast, 1);
    assert_int_equal(r.retransmit, 2);

    /* Its copy lost twice more: found and sent again each time. */
    struct dropper d3 = {.stack = 0, .drop = {30}, .ndrop = 1, .again = 3};
    struct run r3 = transfer(400000, true, TERN_TCP_CC_CUBIC, 20 * MS, &d3);
    assert_int_equal(d3.again, 0);
    assert_int_equal(r3.timeouts, 0);
    assert_int_equal(r3.lost_rxt, 3);
}

/* A connection whose client wrote 4096 bytes into a server's 4 KiB
 * window and shut down writing; the server does not read yet. The
 * dropper (if any) filters the server's pure ACKs. */
struct shut_window {
    struct sim sim;
    struct sim_tcp c;
};

static void shut_window_open(struct shut_window *w, struct dropper *d, bool close_client)
{
    struct tern_impair_config imp = {.delay_ns = 10 * MS};
    struct sim_opts o = {.tx = &imp, .wrap = d ? wrap_dropper : NULL, .wrap_arg = d};
    sim_init(&w->sim, 2, &o);
    struct sim *sim = &w->sim;
    sim_tcp_open_rcvbuf(sim, &w->c, 0, 1, 80, 2048 /* 4096 once doubled */);
    sim_run(sim, 100 * MS);
    if (d)
        d->all = true; /* the server's ACKs of the data are lost */
    static uint8_t buf[4096];
    assert_int_equal(tern_send(sim->st[0], w->c.client, buf, sizeof(buf), 0), 4096);
    if (close_client) {
        tern_close(sim->st[0], w->c.client); /* an orphan: nobody reads what waits */
        w->c.client = -1;
    } else {
        assert_int_equal(tern_shutdown(sim->st[0], w->c.client, SHUT_WR), 0);
    }
}

/* Closes what is still open, checks nothing is left, frees. */
static void shut_window_close(struct shut_window *w)
{
    sim_tcp_close(&w->sim, &w->c);
    sim_finish(&w->sim);
    free(w);
}

/* The tail probe resent the data with the FIN into the shut window; the
 * server refused the FIN. Then its one window update, after it read, is
 * lost: the FIN must still get through, by the retransmission timer,
 * not wait for ever for an update that will not come. */
static void test_a_fin_refused_by_a_shut_window_still_gets_through(void **state)
{
    (void)state;
    struct dropper d = {.stack = 1, .acks = true};
    struct shut_window *w = calloc(1, sizeof(*w));
    shut_window_open(w, &d, false);
    struct sim *sim = &w->sim;
    sim_run(sim, 300 * MS); /* the probe goes; its answers are lost too */
    assert_true(sim_counter(sim, 0, "tcp.tlp_probe") >= 1);
    d.all = false;
    sim_run(sim, 60 * SEC); /* the window stays shut: nobody reads */
    d.next = 1;             /* the update the read sends is lost */
    uint8_t buf[8192];
    ssize_t r, got = 0;
    while ((r = tern_recv(sim->st[1], w->c.server, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        got += r;
    assert_int_equal(got, 4096);
    sim_run(sim, 200 * SEC);
    assert_int_equal(tern_recv(sim->st[1], w->c.server, buf, sizeof(buf), MSG_DONTWAIT), 0);
    shut_window_close(w);
}

/* The client closed (an orphan) with its FIN waiting for a window the
 * server never opens: probed, then given up, not kept for ever. */
static void test_an_orphan_behind_a_shut_window_is_given_up(void **state)
{
    (void)state;
    struct shut_window *w = calloc(1, sizeof(*w));
    shut_window_open(w, NULL, true);
    struct sim *sim = &w->sim;
    struct tern_live live;
    sim_run(sim, 60 * SEC);
    tern_stack_live(sim->st[0], &live);
    assert_int_equal(live.sockets, 1); /* still probing at a minute */
    assert_true(sim_counter(sim, 0, "tcp.window_probe") > 0);
    sim_run(sim, 3600 * SEC);
    tern_stack_live(sim->st[0], &live);
    assert_int_equal(live.sockets, 0);
    assert_int_equal(sim_counter(sim, 0, "tcp.orphan_timeout"), 1);
    /* Six probes backing off to 64 RTOs, then eight at that interval. */
    assert_int_equal(sim_counter(sim, 0, "tcp.window_probe"), 6 + 8 + 1);
    shut_window_close(w);
}

static void test_limited_transmit_sends_on_the_first_dupacks(void **state)
{
    (void)state;
    for (int sack = 0; sack <= 1; sack++) {
        struct dropper d = {.stack = 0, .drop = {2}, .ndrop = 1};
        struct run r = transfer(100000, sack, TERN_TCP_CC_CUBIC, 10 * MS, &d);
        assert_int_equal(r.limited, sack ? 1 : 2);
        assert_int_equal(r.fast, 1);
        assert_int_equal(r.timeouts, 0);
        assert_int_equal(r.retransmit, 1);
    }
}

/* Every 40th segment of the first 1000 comes 8 segments late (a link that
 * reorders, not one that loses). The first time, SACKs of 8 segments
 * above it start a fast retransmit, which the timestamp the ACK echoes
 * shows needless (RFC 3522): the window cut is undone, DupThresh grows
 * to the distance seen, and the next late segments start none (or one
 * more, itself found needless). Without
 * SACK nothing can be told and DupThresh stays 3: every late segment
 * costs a retransmission. */
static void test_reordering_raises_dupthresh(void **state)
{
    (void)state;
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    struct reorderer *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    *r = (struct reorderer){.every = 40, .behind = 8, .until = 1000};
    struct run sack = transfer_wrapped(&cfg, 2000000, 5 * MS, wrap_reorderer, r);
    assert_int_equal(r->dropped, 0);
    assert_true(r->held_count >= 20);
    assert_true(sack.reordering >= 8);
    assert_true(sack.reordering_seen >= 1);
    assert_int_equal(sack.timeouts, 0);
    /* One or two needless recoveries (a held segment may trail by a
     * segment more than the first showed), each one found out. */
    assert_true(sack.fast >= 1 && sack.fast <= 2);
    assert_int_equal(sack.spurious, sack.fast);
    assert_true(sack.undone >= 1);
    assert_int_equal(sack.retransmit, sack.fast);

    cfg.tcp_sack = false;
    *r = (struct reorderer){.every = 40, .behind = 8, .until = 1000};
    struct run plain = transfer_wrapped(&cfg, 2000000, 5 * MS, wrap_reorderer, r);
    assert_int_equal(plain.reordering, TERN_TCP_DUPTHRESH);
    assert_int_equal(plain.undone, 0);
    assert_true(plain.fast >= 10);
    free(r);
}

/* A real loss (data segment 50), repaired by one fast retransmission;
 * then the network sends one later segment twice, and the receiver
 * D-SACKs the copy. The copy is of data sent after the recovery began
 * (segment 150, above RecoveryPoint; or 800, a whole window past it): it
 * says nothing of the retransmission, which stays needed, and DupThresh
 * stays where it was (RFC 3708 counts only a D-SACK of what was resent).
 * A copy of data sent before the recovery began can still pass for one
 * (tcp-plan.md). */
static void test_a_network_duplicate_is_not_taken_for_a_needless_retransmission(void **state)
{
    (void)state;
    static const uint32_t copies[] = {150, 800};
    for (size_t k = 0; k < sizeof(copies) / sizeof(copies[0]); k++) {
        struct tern_stack_config cfg;
        tern_stack_config_default(&cfg);
        struct reorderer *r = calloc(1, sizeof(*r));
        assert_non_null(r);
        *r = (struct reorderer){.drop = 50, .dup = copies[k]};
        struct run run = transfer_wrapped(&cfg, 2000000, 5 * MS, wrap_reorderer, r);
        assert_int_equal(r->dropped, 1);
        assert_int_equal(run.fast, 1);
        assert_int_equal(run.retransmit, 1);
        assert_true(run.dsack_sent >= 1); /* the copy was seen and reported */
        assert_int_equal(run.spurious, 0);
        assert_int_equal(run.undone, 0);
        assert_int_equal(run.reordering, TERN_TCP_DUPTHRESH);
        free(r);
    }
}

/* A four-segment answer: the third is lost, the fourth held past the
 * probe timeout. The loss probe resends the fourth, its SACK shows the
 * hole, and recovery resends the third. The fourth's original then
 * arrives and is D-SACKed: that copy answers the probe, not the
 * recovery, whose retransmission was needed. */
static void test_a_dsack_of_the_probe_does_not_prove_the_recovery_needless(void **state)
{
    (void)state;
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    struct reorderer *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    /* The 4th data frame waits for a 5th: the probe. */
    *r = (struct reorderer){.drop = 3, .every = 4, .until = 4, .behind = 1};
    struct run run = transfer_wrapped(&cfg, 4 * 1448, 5 * MS, wrap_reorderer, r);
    assert_int_equal(r->dropped, 1);
    assert_int_equal(r->held_count, 1);
    assert_true(run.tlp_probe >= 1);
    assert_true(run.dsack_sent >= 1);
    assert_int_equal(run.spurious, 0);
    assert_int_equal(run.undone, 0);
    assert_int_equal(run.reordering, TERN_TCP_DUPTHRESH);
    free(r);
}

/* Small writes with TCP_NODELAY make small segments, and the fast
 * retransmission sends a full one: the first original (A) and some or
 * all of the next (B) in one. A comes late, B is lost. The first ACK to
 * move SND.UNA answers A's late original and echoes A's older timestamp,
 * but it does not cover the retransmission, which is what repairs B:
 * the recovery was needed. Eifel must not undo it, and the D-SACK of A's
 * part of the retransmission, when that arrives, proves nothing either:
 * no spurious retransmission counted, DupThresh unmoved. */
struct small_writes {
    struct xfer x;
    int writes;
    size_t size;
};

static bool small_writes_pump(struct sim *sim, void *arg)
{
    struct small_writes *w = arg;
    struct xfer *x = &w->x;
    uint8_t buf[1000];
    for (; w->writes < 5; w->writes++) { /* five small segments, then pump's */
        for (size_t i = 0; i < w->size; i++)
            buf[i] = pattern_byte(x->sent + i);
        assert_int_equal(tern_send(sim->st[0], x->client, buf, w->size, 0), (ssize_t)w->size);
        x->sent += w->size;
    }
    return pump(sim, x);
}

static void no_undo_with_writes_of(size_t size)
{
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    struct reorderer *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    /* Data segment 1 (A) held behind four more; segment 2 (B) lost. */
    *r = (struct reorderer){.every = 1, .until = 1, .behind = 4, .drop = 2};
    struct tern_impair_config imp = {.delay_ns = 5 * MS};
    struct sim_opts o = {.cfg = &cfg, .tx = &imp, .wrap = wrap_reorderer, .wrap_arg = r};
    struct small_writes *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->size = size;
    struct xfer *x = &w->x;
    sim_init(&x->sim, 2, &o);
    struct sim *sim = &x->sim;
    x->total = 25000;
    x->listener = tern_socket(sim->st[1], AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sim_sin(1, 80);
    assert_int_equal(tern_bind(sim->st[1], x->listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(sim->st[1], x->listener, 4), 0);
    x->client = tern_socket(sim->st[0], AF_INET, SOCK_STREAM, 0);
    int one = 1;
    assert_int_equal(tern_setsockopt(sim->st[0], x->client, IPPROTO_TCP, TCP_NODELAY, &one,
                                     sizeof(one)),
                     0);
    assert_int_equal(tern_connect(sim->st[0], x->client, (struct sockaddr *)&a, sizeof(a)), -1);
    assert_true(sim_run_until(sim, accepted, x, 5 * SEC));
    assert_true(sim_run_until(sim, small_writes_pump, w, 30 * SEC));
    assert_true(sim_run_until(sim, all_acked, x, 5 * SEC));
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    assert_int_equal(tern_getsockopt(sim->st[0], x->client, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
    assert_int_equal(r->dropped, 1);
    assert_int_equal(r->held_count, 1);
    assert_int_equal(sim_counter(sim, 0, "tcp.fast_retransmit"), 1);
    assert_int_equal(sim_counter(sim, 0, "tcp.recovery_undone"), 0);
    assert_int_equal(sim_counter(sim, 0, "tcp.spurious_retransmit"), 0);
    assert_int_equal(sim_counter(sim, 0, "tcp.retransmit_timeout"), 0);
    assert_int_equal(ti.tcpi_reordering, TERN_TCP_DUPTHRESH);
    tern_close(sim->st[0], x->client);
    tern_close(sim->st[1], x->server);
    tern_close(sim->st[1], x->listener);
    sim_finish(sim);
    free(w);
    free(r);
}

static void test_no_undo_when_the_retransmission_covered_a_lost_segment_too(void **state)
{
    (void)state;
    no_undo_with_writes_of(1000); /* the retransmission holds A and part of B */
    no_undo_with_writes_of(700);  /* ... A and all of B: B's gap is filled by it alone */
}

/* DupThresh raised by reordering, then a real loss whose retransmission
 * is lost too: the timer fires with more than three segments SACKed above
 * the hole. The losses are real, and a raised DupThresh would only delay
 * the next repairs: back to 3 (as Linux's tcp_enter_loss). */
static void test_a_timeout_behind_a_raised_dupthresh_resets_it(void **state)
{
    (void)state;
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.tcp_tlp = false; /* leave the repair to recovery and the timer */
    struct reorderer *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    /* The loss near the end (about 1382 data segments in all): no new
     * data after the retransmission can show it lost, so the timer does. */
    *r = (struct reorderer){.every = 40, .behind = 8, .until = 400, .drop = 1370,
                            .drop_again = 1};
    struct run run = transfer_wrapped(&cfg, 2000000, 5 * MS, wrap_reorderer, r);
    assert_int_equal(r->dropped, 2);
    assert_true(run.reordering_seen >= 1);
    assert_true(run.timeouts >= 1);
    assert_int_equal(run.reordering_reset, 1);
    assert_int_equal(run.reordering, TERN_TCP_DUPTHRESH);
    free(r);
}

/* RFC 8985 section 7: the last two segments of a four-segment answer are
 * lost. The first two are acked; nothing else comes back, so without a
 * probe only the RTO (200 ms at least) resends them. The probe timeout
 * (two round trips) resends the last one instead; its SACK shows the
 * hole below it, which recovery fills: two retransmissions, no timeout,
 * well under the RTO. */
static void test_a_lost_tail_costs_a_probe_timeout_not_an_rto(void **state)
{
    (void)state;
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    const uint64_t four = 4 * 1448; /* four full segments beside a timestamp */
    struct dropper d = {.stack = 0, .drop = {3, 4}, .ndrop = 2};
    struct run tlp = transfer_with(&cfg, four, 5 * MS, &d);
    assert_int_equal(d.dropped, 2);
    assert_int_equal(tlp.tlp_probe, 1);
    assert_int_equal(tlp.fast, 1);
    assert_int_equal(tlp.timeouts, 0);
    assert_int_equal(tlp.retransmit, 2);
    assert_true(tlp.acked < 100 * MS);

    cfg.tcp_tlp = false;
    struct dropper d2 = {.stack = 0, .drop = {3, 4}, .ndrop = 2};
    struct run rto = transfer_with(&cfg, four, 5 * MS, &d2);
    assert_int_equal(rto.tlp_probe, 0);
    assert_int_equal(rto.timeouts, 1);
    assert_true(rto.acked >= TERN_TCP_RTO_MIN_NS);
}

/* The ACKs of a two-segment answer are lost: the data arrived, but
 * nothing says so. The probe resends the last segment; the peer had it
 * and says so (D-SACK) in an ACK that covers both: no timeout, and no
 * window cut, since nothing was lost. */
static void test_a_probe_answered_with_dsack_cuts_nothing(void **state)
{
    (void)state;
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    /* The server's two pure ACKs after the handshake's: its first data
     * ACK (for both segments) is the one lost. */
    struct dropper d = {.stack = 1, .acks = true, .drop = {1}, .ndrop = 1};
    struct run r = transfer_with(&cfg, 2 * 1448, 5 * MS, &d);
    assert_int_equal(d.dropped, 1);
    assert_int_equal(r.tlp_probe, 1);
    assert_int_equal(r.tlp_recovered, 0);
    assert_int_equal(r.timeouts, 0);
    assert_true(r.acked < 100 * MS);
}

/* Random loss, 1 MB over a 20 ms round trip losing 3% each way: SACK
 * recovery and NewReno both deliver every byte. A single seed says little
 * (the two runs lose different segments), so over six seeds, with SACK
 * the transfers take less time in all and time out less often. */
static struct run random_loss_run(uint8_t cc, bool sack, uint64_t seed)
{
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.tcp_sack = sack;
    cfg.tcp_congestion = cc;
    struct tern_impair_config imp = {.delay_ns = 10 * MS, .loss_ppm = 30000};
    struct sim_opts o = {.cfg = &cfg, .tx = &imp, .seed = seed, .pcap = getenv("TCP_PCAP")};
    struct xfer *x = calloc(1, sizeof(*x));
    assert_non_null(x);
    sim_init(&x->sim, 2, &o);
    struct sim *sim = &x->sim;
    x->total = 1u << 20;
    x->listener = tern_socket(sim->st[1], AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sim_sin(1, 80);
    assert_int_equal(tern_bind(sim->st[1], x->listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(sim->st[1], x->listener, 4), 0);
    x->client = tern_socket(sim->st[0], AF_INET, SOCK_STREAM, 0);
    tern_connect(sim->st[0], x->client, (struct sockaddr *)&a, sizeof(a));
    assert_true(sim_run_until(sim, accepted, x, 30 * SEC));
    uint64_t start = sim->now;
    assert_true(sim_run_until(sim, pump, x, 600 * SEC));
    assert_int_equal(x->error, 0);
    assert_int_equal(x->received, x->total);
    struct run r = {.timeouts = sim_counter(sim, 0, "tcp.retransmit_timeout"),
                    .sack_rec = sim_counter(sim, 0, "tcp.sack_recovery"),
                    .newreno_rec = sim_counter(sim, 0, "tcp.newreno_recovery"),
                    .duration = sim->now - start};
    assert_true(sack ? r.sack_rec > 0 && r.newreno_rec == 0 : r.newreno_rec > 0 && r.sack_rec == 0);
    if (getenv("TCP_VERBOSE"))
        fprintf(stderr, "random loss, cc %u sack %d seed %llu: %.3f s, rto %llu\n", cc, sack,
                (unsigned long long)seed, (double)r.duration / 1e9,
                (unsigned long long)r.timeouts);
    tern_close(sim->st[0], x->client);
    tern_close(sim->st[1], x->server);
    tern_close(sim->st[1], x->listener);
    sim_finish(sim);
    free(x);
    return r;
}

static void test_random_loss_with_and_without_sack(void **state)
{
    (void)state;
    for (uint8_t cc = 0; cc < TERN_TCP_CC_COUNT; cc++) {
        uint64_t time[2] = {0}, timeouts[2] = {0};
        for (uint64_t seed = 1; seed <= 6; seed++) {
            for (int sack = 0; sack <= 1; sack++) {
                struct run r = random_loss_run(cc, sack, seed);
                time[sack] += r.duration;
                timeouts[sack] += r.timeouts;
            }
        }
        assert_true(time[1] < time[0]);
        assert_true(timeouts[1] <= timeouts[0]);
    }
}

/* ---- The windows themselves, driven directly ---- */

static struct tern_tcpcb cc_conn(uint8_t cc, uint32_t cwnd_segs)
{
    struct tern_tcpcb tp = {.mss = 1000, .cc = cc, .srtt = 100 * MS};
    tp.cwnd = cwnd_segs * 1000u;
    tp.ssthresh = UINT32_MAX;
    tp.snd_una = 1;
    tp.snd_max = 1 + tp.cwnd; /* a full window in flight */
    return tp;
}

/* One ACK per segment for a window's worth, one RTT of virtual time. */
static void ack_one_rtt(const struct tern_tcp_cc_ops *ops, struct tern_tcpcb *tp, uint64_t *now)
{
    uint32_t segs = tp->cwnd / tp->mss;
    for (uint32_t i = 0; i < segs; i++) {
        *now += tp->srtt / segs;
        ops->ack(tp, tp->mss, *now);
    }
}

static void test_newreno_halves_then_adds_a_segment_per_rtt(void **state)
{
    (void)state;
    struct tern_tcp_cc_ops ops;
    tern_tcp_cc_newreno_ops(&ops);
    assert_string_equal(ops.name, "reno");
    struct tern_tcpcb tp = cc_conn(TERN_TCP_CC_NEWRENO, 100);
    uint64_t now = SEC;
    ops.init(&tp, now);
    ops.congestion(&tp, now);
    assert_int_equal(tp.ssthresh, 50000); /* RFC 5681 eq. (4): half the flight */
    ops.recovered(&tp, now);
    assert_int_equal(tp.cwnd, 50000);
    for (int rtt = 1; rtt <= 5; rtt++) {
        ack_one_rtt(&ops, &tp, &now);
        assert_int_equal(tp.cwnd, 50000u + (uint32_t)rtt * 1000u);
    }
    ops.timeout(&tp, now);
    assert_int_equal(tp.cwnd, 1000);
    assert_int_equal(tp.ssthresh, 50000); /* the flight is still 100 segments */
}

static void test_cubic_returns_to_w_max_at_k_concave_then_convex(void **state)
{
    (void)state;
    struct tern_tcp_cc_ops ops;
    tern_tcp_cc_cubic_ops(&ops);
    assert_string_equal(ops.name, "cubic");
    struct tern_tcpcb tp = cc_conn(TERN_TCP_CC_CUBIC, 100);
    uint64_t now = SEC;
    ops.init(&tp, now);
    ops.congestion(&tp, now);
    assert_int_equal(tp.ssthresh, 70000); /* beta 0.7 (RFC 9438 4.6) */
    ops.recovered(&tp, now);
    assert_int_equal(tp.cwnd, 70000);
    /* K = cbrt(W_max (1 - beta) / C) = cbrt(100 * 0.3 / 0.4) = 4.217 s:
     * the window follows W(t) = 0.4 (t - K)^3 + 100 segments, flat near
     * K, then grows faster and faster (or as Reno would, if faster). */
    const double k = 4.217;
    uint64_t epoch = now;
    double prev_grow = 1e9;
    for (int rtt = 0; rtt < 80; rtt++) {
        tp.snd_max = tp.snd_una + tp.cwnd;
        uint32_t before = tp.cwnd;
        ack_one_rtt(&ops, &tp, &now);
        double t = (double)(now - epoch) / 1e9;
        double grow = (double)(tp.cwnd - before);
        double w = 0.4 * (t - k) * (t - k) * (t - k) + 100.0;
        if (t < k) {
            /* Concave: each round trip adds no more than the one before. */
            assert_true(grow <= prev_grow + 1.0);
            prev_grow = grow;
            assert_true(tp.cwnd < 100000);
        }
        if (t >= 0.3 && t <= 5.0) {
            /* On the curve, within 2 segments (the target looks one RTT
             * ahead and the window lags it by one). */
            double segs = tp.cwnd / 1000.0;
            assert_true(segs > w - 2.0 && segs < w + 2.0);
        }
    }
    /* 8 s after the loss: convex (or Reno-friendly) growth well past the
     * old maximum: W(8 s) = 0.4 (8 - 4.2)^3 + 100 = 122. */
    assert_true(tp.cwnd > 115000);
    /* Fast convergence (RFC 9438 4.7): a loss below the last W_max
     * remembers less than the window. */
    tp.snd_max = tp.snd_una + 90000;
    tp.cwnd = 90000;
    ops.congestion(&tp, now); /* at 90 segments, below W_max = 100 */
    assert_true(tp.cc_state.cubic.w_max > 76.4 && tp.cc_state.cubic.w_max < 76.6);
    assert_in_range(tp.ssthresh, 62999, 63000);
}

static void test_congestion_control_by_name(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 1, NULL);
    int fd = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
    char name[16] = {0};
    socklen_t len = sizeof(name);
    assert_int_equal(tern_getsockopt(sim.st[0], fd, IPPROTO_TCP, TCP_CONGESTION, name, &len), 0);
    assert_string_equal(name, "cubic"); /* the default, as Linux */
    assert_int_equal(tern_setsockopt(sim.st[0], fd, IPPROTO_TCP, TCP_CONGESTION, "reno", 4), 0);
    len = sizeof(name);
    assert_int_equal(tern_getsockopt(sim.st[0], fd, IPPROTO_TCP, TCP_CONGESTION, name, &len), 0);
    assert_string_equal(name, "reno");
    errno = 0;
    assert_int_equal(tern_setsockopt(sim.st[0], fd, IPPROTO_TCP, TCP_CONGESTION, "bbr", 3), -1);
    assert_int_equal(errno, ENOENT);
    tern_close(sim.st[0], fd);
    sim_finish(&sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sack_repairs_many_losses_in_one_round_trip),
        cmocka_unit_test(test_early_retransmit_when_three_segments_are_all),
        cmocka_unit_test(test_a_lost_retransmission_is_resent_without_a_timeout),
        cmocka_unit_test(test_a_fin_refused_by_a_shut_window_still_gets_through),
        cmocka_unit_test(test_an_orphan_behind_a_shut_window_is_given_up),
        cmocka_unit_test(test_limited_transmit_sends_on_the_first_dupacks),
        cmocka_unit_test(test_reordering_raises_dupthresh),
        cmocka_unit_test(test_a_timeout_behind_a_raised_dupthresh_resets_it),
        cmocka_unit_test(test_a_network_duplicate_is_not_taken_for_a_needless_retransmission),
        cmocka_unit_test(test_a_dsack_of_the_probe_does_not_prove_the_recovery_needless),
        cmocka_unit_test(test_no_undo_when_the_retransmission_covered_a_lost_segment_too),
        cmocka_unit_test(test_a_lost_tail_costs_a_probe_timeout_not_an_rto),
        cmocka_unit_test(test_a_probe_answered_with_dsack_cuts_nothing),
        cmocka_unit_test(test_random_loss_with_and_without_sack),
        cmocka_unit_test(test_newreno_halves_then_adds_a_segment_per_rtt),
        cmocka_unit_test(test_cubic_returns_to_w_max_at_k_concave_then_convex),
        cmocka_unit_test(test_congestion_control_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
