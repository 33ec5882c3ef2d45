/* The TCP simulation matrix (issue 3): bulk transfers between two stacks
 * on the in-memory wire, in virtual time, under one impairment per row
 * (loss, delay and jitter, reordering, duplication, corruption, a rate
 * limit with a small queue, tiny buffers, MTU 1500 and jumbo, CUBIC and
 * NewReno). Every byte must arrive exactly once and in order, checked
 * against a position-dependent pattern, followed by the end of the stream;
 * or the connection reports an error, which only rows marked for it may
 * do.
 *
 * The numbers of each row (virtual time, goodput, segments,
 * retransmissions, drops) form a table kept in tcp_matrix.expected, a
 * reviewed snapshot: the test fails with a diff when a row changes.
 * TERN_UPDATE_SNAPSHOT=1 rewrites it. The stack is deterministic, so the
 * table is the same in every build (normal, ASan) and on every machine.
 *
 * Debugging one row: TERN_MATRIX_ROW=name runs only that row and prints
 * it (no snapshot check); TERN_MATRIX_PCAP=1 with it also writes a
 * capture of stack 0's link, and TERN_MATRIX_SEED=N runs it with seed N
 * (one seed's luck is not a change's effect: compare several). */
#include "testing.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define MS TERN_NS_PER_MS
#define SEC TERN_NS_PER_SEC
#define KiB 1024u
#define MiB (1024u * 1024u)

#ifndef TERN_TEST_SOURCE_DIR
#error "TERN_TEST_SOURCE_DIR names tests/ in the source tree (tests/CMakeLists.txt)"
#endif
#define SNAPSHOT_PATH TERN_TEST_SOURCE_DIR "/sim/tcp_matrix.expected"

/* Long enough for 20% loss to end one way or the other: 15 backed-off
 * retransmissions capped at 120 s each take about 15 minutes. */
#define ROW_LIMIT_NS (3600 * SEC)

/* ---- the rows ---- */

struct row {
    const char *name;
    const char *what; /* one line for the table's legend */
    uint64_t seed;
    uint32_t mtu;                  /* 0: the wire's 1500 */
    struct tern_impair_config imp; /* on every port's sends, so both ways */
    uint8_t cc;                    /* enum tern_tcp_cc */
    int buf;                       /* SO_RCVBUF and SO_SNDBUF asked for, 0 = default */
    uint64_t up, down;             /* bytes client -> server, server -> client */
    bool may_fail;                 /* an error (ETIMEDOUT...) is a legitimate outcome */
};

#define CUBIC TERN_TCP_CC_CUBIC
#define RENO TERN_TCP_CC_NEWRENO

static const struct row ROWS[] = {
    {"clean", "delay 1 ms", 1, 0, {.delay_ns = MS}, CUBIC, 0, 4 * MiB, 0, false},
    {"clean-both", "delay 1 ms, both ways at once", 2, 0, {.delay_ns = MS}, CUBIC, 0, 4 * MiB,
     4 * MiB, false},
    {"clean-jumbo", "MTU 9000, delay 1 ms", 3, 9000, {.delay_ns = MS}, CUBIC, 0, 4 * MiB, 0,
     false},
    {"clean-64k", "MTU 65535, delay 1 ms", 4, 65535, {.delay_ns = MS}, CUBIC, 0, 4 * MiB, 0,
     false},
    {"loss1-cubic", "loss 1%, delay 5 ms", 10, 0, {.delay_ns = 5 * MS, .loss_ppm = 10000},
     CUBIC, 0, 4 * MiB, 0, false},
    {"loss1-reno", "loss 1%, delay 5 ms", 10, 0, {.delay_ns = 5 * MS, .loss_ppm = 10000}, RENO,
     0, 4 * MiB, 0, false},
    {"loss1-both", "loss 1%, delay 5 ms, both ways at once", 11, 0,
     {.delay_ns = 5 * MS, .loss_ppm = 10000}, CUBIC, 0, 4 * MiB, 4 * MiB, false},
    {"loss1-jumbo", "MTU 9000, loss 1%, delay 5 ms", 12, 9000,
     {.delay_ns = 5 * MS, .loss_ppm = 10000}, CUBIC, 0, 4 * MiB, 0, false},
    {"loss5-cubic", "loss 5%, delay 5 ms", 13, 0, {.delay_ns = 5 * MS, .loss_ppm = 50000},
     CUBIC, 0, 4 * MiB, 0, false},
    {"loss5-reno", "loss 5%, delay 5 ms", 13, 0, {.delay_ns = 5 * MS, .loss_ppm = 50000}, RENO,
     0, 4 * MiB, 0, false},
    {"loss5-both", "loss 5%, delay 5 ms, both ways at once", 14, 0,
     {.delay_ns = 5 * MS, .loss_ppm = 50000}, CUBIC, 0, 4 * MiB, 4 * MiB, false},
    {"loss5-jumbo", "MTU 9000, loss 5%, delay 5 ms", 15, 9000,
     {.delay_ns = 5 * MS, .loss_ppm = 50000}, CUBIC, 0, 4 * MiB, 0, false},
    /* 4 MiB at 20% would take over 20 virtual minutes: trimmed. */
    {"loss20-cubic", "loss 20%, delay 5 ms; trimmed to 1 MiB; may time out", 16, 0,
     {.delay_ns = 5 * MS, .loss_ppm = 200000}, CUBIC, 0, 1 * MiB, 0, true},
    {"loss20-reno", "loss 20%, delay 5 ms; trimmed to 1 MiB; may time out", 16, 0,
     {.delay_ns = 5 * MS, .loss_ppm = 200000}, RENO, 0, 1 * MiB, 0, true},
    {"jitter", "delay 20 ms +- 10 ms (reorders)", 20, 0,
     {.delay_ns = 10 * MS, .jitter_ns = 20 * MS}, CUBIC, 0, 4 * MiB, 0, false},
    {"jitter-both", "delay 20 ms +- 10 ms, both ways at once", 21, 0,
     {.delay_ns = 10 * MS, .jitter_ns = 20 * MS}, CUBIC, 0, 4 * MiB, 4 * MiB, false},
    {"reorder", "delay 2 ms, 5% of frames held back 3 ms more", 22, 0,
     {.delay_ns = 2 * MS, .reorder_ppm = 50000, .reorder_ns = 3 * MS}, CUBIC, 0, 4 * MiB, 0,
     false},
    /* The TAP test's impairment (tap.tcp_impaired): frames held back
     * far longer than a round trip, beside real losses. */
    {"reorder-far", "delay 0.2 ms, loss 1%, 1% of frames held back 2 ms more", 27, 0,
     {.delay_ns = MS / 5, .loss_ppm = 10000, .reorder_ppm = 10000, .reorder_ns = 2 * MS},
     CUBIC, 0, 4 * MiB, 0, false},
    {"duplicate", "delay 2 ms, 5% of frames delivered twice", 23, 0,
     {.delay_ns = 2 * MS, .duplicate_ppm = 50000}, CUBIC, 0, 4 * MiB, 0, false},
    {"corrupt", "delay 2 ms, 2% of frames with one bit flipped, both ways at once", 24, 0,
     {.delay_ns = 2 * MS, .corrupt_ppm = 20000}, CUBIC, 0, 4 * MiB, 4 * MiB, false},
    {"rate-cubic", "20 Mbit/s, delay 5 ms, 16 frames held at most (tail drop)", 25, 0,
     {.delay_ns = 5 * MS, .rate_bps = 20000000, .queue_limit = 16}, CUBIC, 0, 4 * MiB, 0,
     false},
    {"rate-reno", "20 Mbit/s, delay 5 ms, 16 frames held at most (tail drop)", 25, 0,
     {.delay_ns = 5 * MS, .rate_bps = 20000000, .queue_limit = 16}, RENO, 0, 4 * MiB, 0,
     false},
    {"rate-both", "20 Mbit/s, delay 5 ms, 16 frames held, both ways at once", 26, 0,
     {.delay_ns = 5 * MS, .rate_bps = 20000000, .queue_limit = 16}, CUBIC, 0, 4 * MiB,
     4 * MiB, false},
    {"tinybuf", "SO_RCVBUF/SO_SNDBUF 2048 (4 KiB once doubled, as Linux), delay 1 ms", 30, 0,
     {.delay_ns = MS}, CUBIC, 2048, 4 * MiB, 0, false},
    {"tinybuf-both", "SO_RCVBUF/SO_SNDBUF 2048, delay 1 ms, both ways at once", 31, 0,
     {.delay_ns = MS}, CUBIC, 2048, 4 * MiB, 4 * MiB, false},
    {"tinybuf-jumbo", "MTU 9000, SO_RCVBUF/SO_SNDBUF 1024 (2304, the floor): under one MSS",
     32, 9000, {.delay_ns = MS}, CUBIC, 1024, 4 * MiB, 0, false},
    {"tinybuf-loss1", "SO_RCVBUF/SO_SNDBUF 2048, loss 1%, delay 1 ms", 33, 0,
     {.delay_ns = MS, .loss_ppm = 10000}, CUBIC, 2048, 4 * MiB, 0, false},
    {"mixed", "loss 2%, dup 1%, corrupt 1%, reorder 2%, delay 5 ms +- 1 ms, both ways", 40, 0,
     {.delay_ns = 4 * MS, .jitter_ns = 2 * MS, .loss_ppm = 20000, .duplicate_ppm = 10000,
      .corrupt_ppm = 10000, .reorder_ppm = 20000, .reorder_ns = 5 * MS},
     CUBIC, 0, 4 * MiB, 4 * MiB, false},
};
#define NROWS (sizeof(ROWS) / sizeof(ROWS[0]))

/* ---- the pattern: byte i of a stream is a function of i and a salt ---- */

static uint64_t mix64(uint64_t x)
{
    /* splitmix64's finaliser: every input bit moves every output bit. */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint8_t pattern_byte(uint64_t salt, uint64_t pos)
{
    return (uint8_t)(mix64(salt ^ (pos >> 3)) >> ((pos & 7) * 8));
}

static void pattern_fill(uint64_t salt, uint64_t pos, uint8_t *buf, size_t n)
{
    size_t i = 0;
    while (i < n && ((pos + i) & 7)) {
        buf[i] = pattern_byte(salt, pos + i);
        i++;
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t w = mix64(salt ^ ((pos + i) >> 3));
        for (int k = 0; k < 8; k++)
            buf[i + (size_t)k] = (uint8_t)(w >> (k * 8));
    }
    for (; i < n; i++)
        buf[i] = pattern_byte(salt, pos + i);
}

/* ---- one direction of a transfer ---- */

struct stream {
    const char *row, *dir;
    int from, to;       /* stack index */
    int from_fd, to_fd;
    uint64_t salt, total, sent, received;
    bool shut, eof;
    int error;          /* errno the connection reported, 0 if none */
    /* The sender's pattern, made in chunks: bytes [gen_pos, gen_pos + gen_len). */
    uint8_t gen[16384];
    uint64_t gen_pos;
    size_t gen_len;
};

static uint8_t scratch[65536];

static void stream_send(struct sim *sim, struct stream *st)
{
    while (st->sent < st->total && !st->error) {
        /* Offer at least half a chunk in every call, as an application
         * writing from a big buffer would, so that no write is cut short
         * by where a chunk happens to end. */
        if (st->sent + sizeof(st->gen) / 2 > st->gen_pos + st->gen_len &&
            st->gen_pos + st->gen_len < st->total) {
            uint64_t left = st->total - st->sent;
            st->gen_pos = st->sent;
            st->gen_len = left < sizeof(st->gen) ? (size_t)left : sizeof(st->gen);
            pattern_fill(st->salt, st->gen_pos, st->gen, st->gen_len);
        }
        size_t off = (size_t)(st->sent - st->gen_pos);
        ssize_t w = tern_send(sim->st[st->from], st->from_fd, st->gen + off, st->gen_len - off,
                              0);
        if (w < 0) {
            if (errno != EAGAIN && errno != ENOBUFS)
                st->error = errno;
            return;
        }
        if (w == 0)
            return;
        st->sent += (uint64_t)w;
    }
    if (st->sent == st->total && !st->shut && !st->error) {
        /* The end of the stream: the receiver must see it right after the
         * last byte, which proves nothing arrived twice or extra. */
        if (tern_shutdown(sim->st[st->from], st->from_fd, SHUT_WR) != 0)
            st->error = errno;
        st->shut = true;
    }
}

static void stream_recv(struct sim *sim, struct stream *st)
{
    while (!st->eof && !st->error) {
        ssize_t r = tern_recv(sim->st[st->to], st->to_fd, scratch, sizeof(scratch), 0);
        if (r < 0) {
            if (errno != EAGAIN)
                st->error = errno;
            return;
        }
        if (r == 0) {
            if (st->received != st->total)
                fail_msg("%s %s: end of stream after %" PRIu64 " of %" PRIu64 " bytes", st->row,
                         st->dir, st->received, st->total);
            st->eof = true;
            return;
        }
        if (st->received + (uint64_t)r > st->total)
            fail_msg("%s %s: %" PRIu64 " bytes past the %" PRIu64 " sent", st->row, st->dir,
                     st->received + (uint64_t)r - st->total, st->total);
        for (ssize_t i = 0; i < r; i++)
            if (scratch[i] != pattern_byte(st->salt, st->received + (uint64_t)i))
                fail_msg("%s %s: byte %" PRIu64 " is %#x, expected %#x", st->row, st->dir,
                         st->received + (uint64_t)i, scratch[i],
                         pattern_byte(st->salt, st->received + (uint64_t)i));
        st->received += (uint64_t)r;
    }
}

struct transfer {
    struct stream s[2]; /* up, down */
};

static bool transfer_step(struct sim *sim, void *arg)
{
    struct transfer *t = arg;
    /* The two streams share their sockets, and a socket reports an error
     * once: stop at the first, before a read of the other stream could
     * take the closed connection's end for the end of its data. */
    for (int i = 0; i < 2; i++) {
        stream_send(sim, &t->s[i]);
        if (t->s[i].error)
            return true;
    }
    for (int i = 0; i < 2; i++) {
        stream_recv(sim, &t->s[i]);
        if (t->s[i].error)
            return true;
    }
    return t->s[0].eof && t->s[1].eof;
}

/* ---- one run ---- */

#define MAX_COUNTERS 256

struct result {
    char outcome[48];
    uint64_t elapsed_ns; /* connect to the last end of stream (or the error) */
    uint64_t delivered;  /* bytes, both ways */
    uint64_t counters[2][MAX_COUNTERS];
    struct tern_link_stats link[2];
};

struct opening {
    int listener, server, client;
};

/* The server has accepted, or the client's connect failed. */
static bool opened(struct sim *sim, void *arg)
{
    struct opening *op = arg;
    op->server = tern_accept(sim->st[1], op->listener, NULL, NULL);
    if (op->server >= 0)
        return true;
    struct pollfd pfd = {.fd = op->client, .events = POLLOUT};
    return tern_poll(sim->st[0], &pfd, 1, 0) == 1 && (pfd.revents & (POLLERR | POLLHUP));
}

static bool all_closed(struct sim *sim, void *arg)
{
    (void)arg;
    for (int i = 0; i < sim->n; i++) {
        struct tern_live live;
        tern_stack_live(sim->st[i], &live);
        /* Sockets still held by the protocol, TIME_WAIT aside (it ends
         * on its own; whether it holds a socket is the core's choice). */
        if (live.sockets > live.tcp_timewait)
            return false;
    }
    return true;
}

static void set_bufs(struct sim *sim, int i, int fd, int buf)
{
    if (!buf)
        return;
    assert_int_equal(tern_setsockopt(sim->st[i], fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf)), 0);
    assert_int_equal(tern_setsockopt(sim->st[i], fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf)), 0);
}

static void run_row(const struct row *r, struct result *res, const char *pcap, uint64_t seed)
{
    assert_true(tern_counter_count() <= MAX_COUNTERS);
    memset(res, 0, sizeof(*res));
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.tcp_congestion = r->cc;
    cfg.tcp_timewait_ns = SEC; /* the matrix measures transfers, not 2MSL */
    struct sim_opts o = {.seed = seed, .mtu = r->mtu, .tx = &r->imp, .cfg = &cfg,
                         .pcap = pcap};
    struct sim sim;
    sim_init(&sim, 2, &o);

    struct opening op = {.server = -1};
    op.listener = tern_socket(sim.st[1], AF_INET, SOCK_STREAM, 0);
    assert_true(op.listener >= 0);
    set_bufs(&sim, 1, op.listener, r->buf); /* inherited by the accepted socket */
    struct sockaddr_in a = sim_sin(1, 4242);
    assert_int_equal(tern_bind(sim.st[1], op.listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(sim.st[1], op.listener, 4), 0);
    op.client = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
    assert_true(op.client >= 0);
    set_bufs(&sim, 0, op.client, r->buf); /* before the SYN: it fixes the window scale */
    uint64_t start = sim.now;
    errno = 0;
    assert_int_equal(tern_connect(sim.st[0], op.client, (struct sockaddr *)&a, sizeof(a)), -1);
    assert_int_equal(errno, EINPROGRESS);

    /* The handshake is timed with the transfer, so even a SYN lost at
     * 20% counts; a handshake that never ends is an outcome too. */
    struct transfer *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    bool done = false;
    if (!sim_run_until(&sim, opened, &op, ROW_LIMIT_NS) || op.server < 0) {
        int err = 0;
        socklen_t el = sizeof(err);
        tern_getsockopt(sim.st[0], op.client, SOL_SOCKET, SO_ERROR, &err, &el);
        snprintf(res->outcome, sizeof(res->outcome), "%s(connect)",
                 err ? strerrorname_np(err) : "unfinished");
    } else {
        uint64_t salt = mix64(r->seed * 0x100000001b3ull);
        t->s[0] = (struct stream){.row = r->name, .dir = "up", .from = 0, .to = 1,
                                  .from_fd = op.client, .to_fd = op.server, .salt = salt,
                                  .total = r->up};
        t->s[1] = (struct stream){.row = r->name, .dir = "down", .from = 1, .to = 0,
                                  .from_fd = op.server, .to_fd = op.client, .salt = ~salt,
                                  .total = r->down};
        done = sim_run_until(&sim, transfer_step, t, ROW_LIMIT_NS - (sim.now - start));
        int err = t->s[0].error ? t->s[0].error : t->s[1].error;
        if (err)
            snprintf(res->outcome, sizeof(res->outcome), "%s(%s)", strerrorname_np(err),
                     t->s[0].error ? "up" : "down");
        else if (!done)
            snprintf(res->outcome, sizeof(res->outcome), "unfinished");
        else
            snprintf(res->outcome, sizeof(res->outcome), "ok");
    }
    res->elapsed_ns = sim.now - start;
    res->delivered = t->s[0].received + t->s[1].received;
    if (strcmp(res->outcome, "ok") != 0) {
        /* How far it got: bytes delivered both ways, in KiB. */
        size_t used = strlen(res->outcome);
        snprintf(res->outcome + used, sizeof(res->outcome) - used, "@%" PRIu64 "K",
                 res->delivered / KiB);
    }
    for (int i = 0; i < 2; i++) {
        for (size_t c = 0; c < tern_counter_count(); c++)
            res->counters[i][c] = tern_counter_get(sim.st[i], c);
        res->link[i] = sim.link[i]->stats;
    }
    if (!done || t->s[0].error || t->s[1].error)
        for (int i = 0; i < 2; i++) {
            fprintf(stderr, "%s: stack %d at t=%.3f s\n", r->name, i, (double)sim.now / 1e9);
            tern_sockets_dump(sim.st[i], stderr);
        }
    free(t);

    /* Whatever happened, closing lets everything go in bounded time. */
    tern_close(sim.st[0], op.client);
    if (op.server >= 0)
        tern_close(sim.st[1], op.server);
    tern_close(sim.st[1], op.listener);
    if (!sim_run_until(&sim, all_closed, NULL, ROW_LIMIT_NS)) {
        for (int i = 0; i < 2; i++)
            tern_sockets_dump(sim.st[i], stderr);
        fail_msg("%s: connections still open an hour after close", r->name);
    }
    sim_finish(&sim);
}

/* ---- the table ---- */

static uint64_t sum(const struct result *res, const char *name)
{
    long id = tern_counter_find(name);
    assert_true(id >= 0);
    return res->counters[0][id] + res->counters[1][id];
}

static void size_str(char *buf, size_t n, uint64_t bytes)
{
    if (bytes == 0)
        snprintf(buf, n, "0");
    else if (bytes % MiB == 0)
        snprintf(buf, n, "%" PRIu64 "M", bytes / MiB);
    else
        snprintf(buf, n, "%" PRIu64 "K", bytes / KiB);
}

#define HEADER_FMT "%-14s %-7s %5s %-7s %-24s %10s %8s %7s %6s %5s %4s %6s  %s"

static void format_row(const struct row *r, const struct result *res, char *line, size_t n)
{
    char bytes[64], up[24], down[24], secs[24], rate[24], drops[512];
    size_str(up, sizeof(up), r->up);
    size_str(down, sizeof(down), r->down);
    snprintf(bytes, sizeof(bytes), "%s+%s", up, down);
    /* Integer arithmetic only: the same digits whatever the compiler. */
    snprintf(secs, sizeof(secs), "%" PRIu64 ".%03" PRIu64, (uint64_t)(res->elapsed_ns / SEC),
             (uint64_t)(res->elapsed_ns % SEC / MS));
    uint64_t kbps = res->elapsed_ns ? res->delivered * 8 * 1000000 / res->elapsed_ns : 0;
    snprintf(rate, sizeof(rate), "%" PRIu64 ".%02" PRIu64, kbps / 1000, kbps % 1000 / 10);
    /* Drops: frames the links lost (impairment loss, a full queue) and
     * every drop counter of either stack that moved. */
    size_t used = 0;
    drops[0] = '\0';
    uint64_t refused = sum(res, "drop.link.tx_refused");
    uint64_t link_lost = res->link[0].tx_dropped + res->link[1].tx_dropped - refused;
    if (link_lost)
        used += (size_t)snprintf(drops + used, sizeof(drops) - used, "link.lost=%" PRIu64 " ",
                                 link_lost);
    for (size_t c = 0; c < tern_counter_count() && used < sizeof(drops); c++) {
        const char *name = tern_counter_name(c);
        uint64_t v = res->counters[0][c] + res->counters[1][c];
        if (v && strncmp(name, "drop.", 5) == 0)
            used += (size_t)snprintf(drops + used, sizeof(drops) - used, "%s=%" PRIu64 " ",
                                     name + 5, v);
    }
    if (used && used < sizeof(drops))
        drops[used - 1] = '\0';
    if (!used)
        snprintf(drops, sizeof(drops), "-");
    snprintf(line, n,
             "%-14s %-7s %5u %-7s %-24s %10s %8s %7" PRIu64 " %6" PRIu64 " %5" PRIu64
             " %4" PRIu64 " %6" PRIu64 "  %s",
             r->name, r->cc == RENO ? "newreno" : "cubic", r->mtu ? r->mtu : 1500, bytes,
             res->outcome, secs, rate, sum(res, "tcp.tx"), sum(res, "tcp.retransmit"),
             sum(res, "tcp.fast_retransmit"), sum(res, "tcp.retransmit_timeout"),
             sum(res, "tcp.rx_dupack"), drops);
}

static void format_header(char *out, size_t n)
{
    size_t used = (size_t)snprintf(
        out, n,
        "# TCP simulation matrix: a reviewed snapshot, written by tests/sim/test_tcp_matrix.c.\n"
        "# Two Tern stacks on the in-memory wire in virtual time, one bulk transfer per row,\n"
        "# each byte checked against a position-dependent pattern, every run seeded: the\n"
        "# numbers are the same in every build. When a change moves them on purpose,\n"
        "# regenerate and review the diff:\n"
        "#     TERN_UPDATE_SNAPSHOT=1 build/tests/test_tcp_matrix\n"
        "# Columns: bytes client->server + server->client; time from connect to the last\n"
        "# end of stream (virtual s); goodput over it, both ways (Mbit/s); counters summed\n"
        "# over both stacks: segments sent (tcp.tx), retransmitted segments, fast\n"
        "# retransmits, retransmission timeouts, duplicate ACKs received; then drops:\n"
        "# frames the links lost (link.lost: impairment loss and full queues) and every\n"
        "# drop.* counter that moved. Impairments apply to both stacks' sends; rows that\n"
        "# differ only in congestion control start from the same seed.\n"
        "#\n");
    for (size_t i = 0; i < NROWS && used < n; i++)
        used += (size_t)snprintf(out + used, n - used, "#   %-14s %s\n", ROWS[i].name,
                                 ROWS[i].what);
    if (used < n)
        used += (size_t)snprintf(out + used, n - used, "#\n");
    if (used < n)
        snprintf(out + used, n - used, HEADER_FMT "\n", "row", "cc", "mtu", "bytes", "outcome",
                 "time_s", "Mbit/s", "segs", "rexmit", "fast", "rto", "dupack", "drops");
}

/* ---- the snapshot ---- */

#define TABLE_MAX 65536

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, TABLE_MAX);
    assert_non_null(buf);
    size_t n = fread(buf, 1, TABLE_MAX - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Splits text into at most max lines, in place (newlines become NULs);
 * returns how many. */
static size_t split_lines(char *text, char **lines, size_t max)
{
    size_t n = 0;
    while (*text && n < max) {
        lines[n++] = text;
        char *nl = strchr(text, '\n');
        if (!nl)
            break;
        *nl = '\0';
        text = nl + 1;
    }
    return n;
}

#define DIFF_MAX_LINES 256

/* Prints the lines that differ between expected and actual as diff does
 * (a longest common subsequence, no context: each table line stands
 * alone); returns how many lines were removed or added. */
static int diff_tables(const char *expected, const char *actual)
{
    char *e = strdup(expected), *a = strdup(actual);
    char **el = calloc(DIFF_MAX_LINES, sizeof(*el)), **al = calloc(DIFF_MAX_LINES, sizeof(*al));
    assert_true(e && a && el && al);
    size_t n = split_lines(e, el, DIFF_MAX_LINES), m = split_lines(a, al, DIFF_MAX_LINES);
    assert_true(n < DIFF_MAX_LINES && m < DIFF_MAX_LINES);
    /* lcs[i][j]: common lines of el[i..] and al[j..]. */
    uint16_t *lcs = calloc((n + 1) * (m + 1), sizeof(*lcs));
    assert_non_null(lcs);
#define LCS(i, j) lcs[(i) * (m + 1) + (j)]
    for (size_t i = n; i-- > 0;)
        for (size_t j = m; j-- > 0;)
            LCS(i, j) = strcmp(el[i], al[j]) == 0 ? (uint16_t)(LCS(i + 1, j + 1) + 1)
                        : LCS(i + 1, j) >= LCS(i, j + 1) ? LCS(i + 1, j)
                                                         : LCS(i, j + 1);
    int differ = 0;
    size_t i = 0, j = 0;
    while (i < n || j < m) {
        if (i < n && j < m && strcmp(el[i], al[j]) == 0) {
            i++, j++;
            continue;
        }
        if (differ++ == 0)
            fprintf(stderr, "--- %s (expected)\n+++ computed now\n", SNAPSHOT_PATH);
        if (j == m || (i < n && LCS(i + 1, j) >= LCS(i, j + 1)))
            fprintf(stderr, "-%s\n", el[i++]);
        else
            fprintf(stderr, "+%s\n", al[j++]);
    }
#undef LCS
    free(lcs);
    free(el);
    free(al);
    free(e);
    free(a);
    return differ;
}

/* ---- tests ---- */

static const struct row *find_row(const char *name)
{
    for (size_t i = 0; i < NROWS; i++)
        if (strcmp(ROWS[i].name, name) == 0)
            return &ROWS[i];
    return NULL;
}

static void test_matrix_matches_snapshot(void **state)
{
    (void)state;
    struct result *res = malloc(sizeof(*res));
    assert_non_null(res);
    char line[1024];
    const char *only = getenv("TERN_MATRIX_ROW");
    if (only && *only) {
        const struct row *r = find_row(only);
        if (!r)
            fail_msg("no row %s", only);
        char pcap[256] = "";
        if (getenv("TERN_MATRIX_PCAP")) {
            sim_tmp_path(pcap, sizeof(pcap), r->name);
            fprintf(stderr, "pcap: %s\n", pcap);
        }
        /* Another draw of the same row, to tell a change's effect from
         * the luck of one seed: TERN_MATRIX_SEED=N runs it with seed N. */
        const char *seed = getenv("TERN_MATRIX_SEED");
        run_row(r, res, *pcap ? pcap : NULL,
                seed && *seed ? strtoull(seed, NULL, 0) : r->seed);
        format_row(r, res, line, sizeof(line));
        printf("%s\n", line);
        for (int i = 0; i < 2; i++) {
            fprintf(stderr, "stack %d:\n", i);
            for (size_t c = 0; c < tern_counter_count(); c++)
                if (res->counters[i][c])
                    fprintf(stderr, "  %-32s %" PRIu64 "\n", tern_counter_name(c),
                            res->counters[i][c]);
        }
        free(res);
        return;
    }
    char *table = calloc(1, TABLE_MAX);
    assert_non_null(table);
    format_header(table, TABLE_MAX);
    int failed_rows = 0;
    for (size_t i = 0; i < NROWS; i++) {
        run_row(&ROWS[i], res, NULL, ROWS[i].seed);
        format_row(&ROWS[i], res, line, sizeof(line));
        size_t used = strlen(table);
        snprintf(table + used, TABLE_MAX - used, "%s\n", line);
        /* Mild impairment must not beat TCP: those rows complete. */
        if (!ROWS[i].may_fail && strcmp(res->outcome, "ok") != 0) {
            fprintf(stderr, "row %s did not complete: %s\n", ROWS[i].name, res->outcome);
            failed_rows++;
        }
        /* Without bit flips, neither stack ever sends a segment the
         * other finds malformed. */
        static const char *const malformed[] = {
            "drop.ip.too_short", "drop.ip.bad_header_len", "drop.ip.bad_checksum",
            "drop.tcp.too_short", "drop.tcp.bad_checksum", "drop.tcp.bad_option"};
        for (size_t k = 0; k < sizeof(malformed) / sizeof(malformed[0]); k++)
            if (!ROWS[i].imp.corrupt_ppm && sum(res, malformed[k])) {
                fprintf(stderr, "row %s: %s without corruption\n", ROWS[i].name, malformed[k]);
                failed_rows++;
            }
        /* Even where failing is allowed, the connection finishes or says
         * why within the row's hour. */
        if (strncmp(res->outcome, "unfinished", 10) == 0 && ROWS[i].may_fail) {
            fprintf(stderr, "row %s neither finished nor failed\n", ROWS[i].name);
            failed_rows++;
        }
    }
    assert_true(strlen(table) < TABLE_MAX - 1);
    free(res);
    const char *update = getenv("TERN_UPDATE_SNAPSHOT");
    int differ = 0;
    if (update && strcmp(update, "1") == 0) {
        FILE *f = fopen(SNAPSHOT_PATH, "w");
        assert_non_null(f);
        assert_int_equal(fputs(table, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
        fprintf(stderr, "wrote %s\n", SNAPSHOT_PATH);
    } else {
        char *expected = read_file(SNAPSHOT_PATH);
        if (!expected) {
            fprintf(stderr, "%s", table);
            free(table);
            fail_msg("no snapshot at %s: run with TERN_UPDATE_SNAPSHOT=1 and review it",
                     SNAPSHOT_PATH);
        }
        differ = diff_tables(expected, table);
        free(expected);
        if (differ)
            fprintf(stderr, "%d line(s) differ from the snapshot; if the change is meant, "
                            "rerun with TERN_UPDATE_SNAPSHOT=1 and review the diff\n",
                    differ);
    }
    free(table); /* before the checks: a failed one leaves the test at once */
    assert_int_equal(differ, 0);
    assert_int_equal(failed_rows, 0);
}

/* Whether two files hold the same bytes; says where they part if not. */
static bool same_file(const char *p1, const char *p2)
{
    FILE *f1 = fopen(p1, "rb"), *f2 = fopen(p2, "rb");
    assert_non_null(f1);
    assert_non_null(f2);
    static uint8_t b1[65536], b2[65536];
    uint64_t off = 0;
    bool same = true;
    for (;;) {
        size_t n1 = fread(b1, 1, sizeof(b1), f1), n2 = fread(b2, 1, sizeof(b2), f2);
        if (n1 != n2 || memcmp(b1, b2, n1) != 0) {
            size_t i = 0;
            while (i < n1 && i < n2 && b1[i] == b2[i])
                i++;
            fprintf(stderr, "%s and %s differ at byte %" PRIu64 "\n", p1, p2, off + i);
            same = false;
            break;
        }
        if (n1 == 0)
            break;
        off += n1;
    }
    fclose(f1);
    fclose(f2);
    return same;
}

static void test_impaired_row_replays_exactly(void **state)
{
    (void)state;
    /* Same seed, same run: every frame on stack 0's link with its
     * timestamp, every counter of both stacks, both links' stats and the
     * virtual time agree, not only the table's columns. */
    const struct row *r = find_row("mixed");
    assert_non_null(r);
    struct result *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    assert_non_null(a);
    assert_non_null(b);
    char pa[256], pb[256];
    sim_tmp_path(pa, sizeof(pa), "tcp-matrix-replay-a.pcap");
    sim_tmp_path(pb, sizeof(pb), "tcp-matrix-replay-b.pcap");
    run_row(r, a, pa, r->seed);
    run_row(r, b, pb, r->seed);
    assert_true(same_file(pa, pb));
    remove(pa);
    remove(pb);
    assert_string_equal(a->outcome, b->outcome);
    assert_int_equal(a->elapsed_ns, b->elapsed_ns);
    assert_int_equal(a->delivered, b->delivered);
    for (int i = 0; i < 2; i++) {
        for (size_t c = 0; c < tern_counter_count(); c++)
            if (a->counters[i][c] != b->counters[i][c])
                fail_msg("stack %d: %s is %" PRIu64 " then %" PRIu64, i, tern_counter_name(c),
                         a->counters[i][c], b->counters[i][c]);
        assert_memory_equal(&a->link[i], &b->link[i], sizeof(a->link[i]));
    }
    /* And the run is not trivially empty: the impairment did bite. */
    assert_true(a->counters[0][tern_counter_find("tcp.retransmit")] +
                    a->counters[1][tern_counter_find("tcp.retransmit")] >
                0);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_impaired_row_replays_exactly),
        cmocka_unit_test(test_matrix_matches_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
