/*
 * tcp_peer: Tern's side of the TCP tests against the Linux kernel over a
 * TAP device (tests/tap/tcp_kernel.sh runs it in its network namespace,
 * tcp_ksock on the kernel's side).
 *
 *   tcp_peer bulk  COMMON --role client|server --port P --dir send|recv
 *                  --bytes N --salt S
 *   tcp_peer story COMMON --port P --requests N [--size B]
 *   COMMON: --tap NAME --addr A/LEN --peer KERNEL_ADDR [--pcap FILE]
 *           [--loss PPM] [--reorder PPM] [--reorder-us US] [--seed N]
 *           [--timewait-ms MS] [--duration SEC]
 *
 * Owned mode, one thread: the loop polls the stack at CLOCK_MONOTONIC time
 * and sleeps in poll(2) on the TAP descriptor until the stack's next
 * deadline; the application's work (accept, send, recv, close) runs
 * between polls and never blocks.
 *
 * The link, from the stack down: pcap tee (--pcap) -> impairment
 * (--loss/--reorder: the same loss and reordering on frames Tern sends and
 * frames it receives) -> TAP. The tee sits on the stack's side of the
 * impairment, so the capture is exactly what Tern sent and what Tern was
 * given: a hole in Tern's own sequence space there is Tern's fault, while
 * holes and reordering in the kernel's direction are the impairment's.
 *
 * bulk: one connection (Tern connects to PEER:P, or listens on P and
 *   accepts one). send: N pattern bytes (tcp_pattern.h), shutdown(SHUT_WR),
 *   then wait for the peer's FIN; recv: read to EOF checking every byte,
 *   then close. Prints "tcp_peer: RESULT dir=... bytes=N crc=XXXXXXXX".
 *
 * story: an HTTP-like server on port P. Each connection sends one request
 *   line "GET i\n"; the answer is B bytes (default 200 KiB) of the pattern
 *   with salt STORY_SALT + i, and then the server closes (so Tern, closing
 *   first, keeps the TIME_WAIT records). Every other connection gets a
 *   32 KiB send buffer, so its answer goes out in many writes that can see
 *   the client's RST (ECONNRESET/EPIPE: the client went away, counted,
 *   not an error); the others write the whole answer at once and close,
 *   and the protocol finishes on its own. After N connections have been
 *   served, the listener closes and the run ends with the checks below.
 *
 * End of every run: every socket closed, then
 *   1. within 10 s of stack time, nothing is alive but TIME_WAIT
 *      connections: no other socket, no packet, and no timer but one per
 *      TIME_WAIT connection and one per ARP entry. TIME_WAIT must have
 *      been seen if Tern closed first (the story's server, a bulk sender)
 *      and never if it only closed second (a bulk receiver);
 *   2. TIME_WAIT ends on schedule (--timewait-ms, set short here): the
 *      count reaches zero no earlier than the last entry's time plus the
 *      duration, and no later than that plus a tenth of it (the timer
 *      wheel is 1 ms; the slack leaves room for a TIME_WAIT structure that
 *      batches its expiry);
 *   3. then no socket, packet or timer but the ARP entries' is alive.
 * It prints the link stats and the non-zero counters, and exits 0 only if
 * the run and all the checks passed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* clock_gettime, sigaction, getopt_long under -std=c11 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tern/tern.h>

#include "tap_loop.h"
#include "tcp_pattern.h"

#define WAIT_CAP_MS 20
#define CHUNK (64 * 1024)
#define STORY_SALT 0x570000ull
#define STORY_SLOTS 64
#define STORY_SMALL_SNDBUF (32 * 1024)
#define REQ_MAX 32

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct peer {
    struct tern_stack *s;
    struct tern_link *link;
    int pollfd;
    uint64_t end; /* monotonic ns at which --duration ends */
    struct in_addr peer_addr;
    uint64_t timewait_ns;
    struct crc32 crc;
    /* TIME_WAIT bookkeeping: the latest increase of the count happened
     * in (tw_inc_lo, tw_inc_hi] of stack time. */
    uint64_t tw_seen, tw_inc_lo, tw_inc_hi, last_poll;
    uint64_t tw_max;
};

static uint64_t mono_now(void) { return tap_mono_now(); }

static bool should_stop(const struct peer *p)
{
    return stop_requested || mono_now() >= p->end;
}

static void poll_stack(struct peer *p)
{
    uint64_t now = mono_now();
    tern_stack_poll(p->s, now);
    struct tern_live live;
    tern_stack_live(p->s, &live);
    if (live.tcp_timewait > p->tw_seen) {
        /* TIME_WAIT is entered only by segments, which arrive in polls. */
        p->tw_inc_lo = p->last_poll;
        p->tw_inc_hi = tern_stack_now(p->s);
    }
    if (live.tcp_timewait > p->tw_max)
        p->tw_max = live.tcp_timewait;
    p->tw_seen = live.tcp_timewait;
    p->last_poll = tern_stack_now(p->s);
}

/* Sleep until the TAP has a frame or the stack's next deadline (at most
 * WAIT_CAP_MS; not at all if `busy`), then poll the stack. */
static void step(struct peer *p, bool busy)
{
    if (tap_wait(p->s, p->pollfd, busy ? 0 : WAIT_CAP_MS) < 0) {
        perror("tcp_peer: poll");
        stop_requested = 1;
    }
    poll_stack(p);
}

static void print_info(struct peer *p, int fd, const char *who)
{
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    if (tern_getsockopt(p->s, fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0)
        printf("tcp_peer: %s tcp_info: srtt %u us, rttvar %u us, rto %u us, cwnd %u, "
               "ssthresh %u, mss %u, total retransmits %u, snd_wscale %u, rcv_wscale %u\n",
               who, ti.tcpi_rtt, ti.tcpi_rttvar, ti.tcpi_rto, ti.tcpi_snd_cwnd,
               ti.tcpi_snd_ssthresh, ti.tcpi_snd_mss, ti.tcpi_total_retrans,
               ti.tcpi_snd_wscale, ti.tcpi_rcv_wscale);
}

/* A listener on `port` (any address), or -1 (printed). */
static int listen_on(struct peer *p, uint16_t port, int backlog)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int l = tern_socket(p->s, AF_INET, SOCK_STREAM, 0);
    if (l < 0 || tern_bind(p->s, l, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        tern_listen(p->s, l, backlog) < 0) {
        printf("tcp_peer: FAIL listen on port %u: %s\n", port, strerror(errno));
        if (l >= 0)
            tern_close(p->s, l);
        return -1;
    }
    return l;
}

/* ---- bulk ---- */

struct bulk {
    bool server, send_dir;
    uint16_t port;
    uint64_t total, salt;
};

/* Wait for the connection: a client's connect to finish, a server's
 * accept. Returns the connected handle or -1 (printed). */
static int bulk_connect(struct peer *p, const struct bulk *b)
{
    if (b->server) {
        int l = listen_on(p, b->port, 4);
        if (l < 0)
            return -1;
        printf("tcp_peer: ready, listening on port %u\n", b->port);
        int fd = -1;
        while (fd < 0 && !should_stop(p)) {
            step(p, false);
            fd = tern_accept(p->s, l, NULL, NULL);
            if (fd < 0 && errno != EAGAIN) {
                printf("tcp_peer: FAIL accept: %s\n", strerror(errno));
                break;
            }
        }
        tern_close(p->s, l);
        if (fd < 0 && should_stop(p))
            printf("tcp_peer: FAIL no connection before the end of --duration\n");
        return fd;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(b->port),
                            .sin_addr = p->peer_addr};
    printf("tcp_peer: ready, connecting to port %u\n", b->port);
    int fd = tern_socket(p->s, AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || (tern_connect(p->s, fd, (struct sockaddr *)&a, sizeof(a)) < 0 &&
                   errno != EINPROGRESS)) {
        printf("tcp_peer: FAIL connect: %s\n", strerror(errno));
        return -1;
    }
    while (!should_stop(p)) {
        step(p, false);
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        if (tern_poll(p->s, &pfd, 1, 0) > 0) {
            int err = 0;
            socklen_t el = sizeof(err);
            tern_getsockopt(p->s, fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err == 0 && (pfd.revents & POLLOUT))
                return fd;
            printf("tcp_peer: FAIL connect: %s\n", strerror(err ? err : ECONNABORTED));
            tern_close(p->s, fd);
            return -1;
        }
    }
    printf("tcp_peer: FAIL connect did not finish before the end of --duration\n");
    tern_close(p->s, fd);
    return -1;
}

static bool bulk_run(struct peer *p, const struct bulk *b)
{
    static uint8_t buf[CHUNK], expect[CHUNK];
    int fd = bulk_connect(p, b);
    if (fd < 0)
        return false;
    printf("tcp_peer: connected, %s %llu bytes (salt %llu)\n",
           b->send_dir ? "sending" : "receiving", (unsigned long long)b->total,
           (unsigned long long)b->salt);
    uint64_t done = 0, t0 = mono_now(), t_first = 0, t_end = 0;
    uint64_t gen_off = 0;
    size_t gen_len = 0; /* buf holds pattern bytes [gen_off, gen_off + gen_len) */
    uint32_t crc = 0;
    bool ok = true, shut = false, eof = false;
    while (ok && !eof) {
        if (should_stop(p)) {
            printf("tcp_peer: FAIL stopped (%s) after %llu bytes\n",
                   stop_requested ? "signal" : "--duration over", (unsigned long long)done);
            ok = false;
            break;
        }
        bool progress = false;
        if (b->send_dir && !shut) {
            while (done < b->total) {
                if (done >= gen_off + gen_len) {
                    gen_off = done;
                    gen_len = b->total - done < CHUNK ? (size_t)(b->total - done) : CHUNK;
                    pat_fill(buf, gen_off, gen_len, b->salt);
                }
                size_t at = (size_t)(done - gen_off);
                ssize_t w = tern_send(p->s, fd, buf + at, gen_len - at, 0);
                if (w < 0) {
                    if (errno != EAGAIN && errno != ENOBUFS) {
                        printf("tcp_peer: FAIL send at byte %llu: %s\n",
                               (unsigned long long)done, strerror(errno));
                        ok = false;
                    }
                    break;
                }
                crc = crc32_update(&p->crc, crc, buf + at, (size_t)w);
                done += (uint64_t)w;
                progress = true;
            }
            if (ok && done == b->total) {
                if (tern_shutdown(p->s, fd, SHUT_WR) < 0) {
                    printf("tcp_peer: FAIL shutdown(SHUT_WR): %s\n", strerror(errno));
                    ok = false;
                }
                shut = true;
                t_end = mono_now();
            }
        }
        while (ok) {
            ssize_t r = tern_recv(p->s, fd, buf, CHUNK, 0);
            if (r < 0) {
                if (errno != EAGAIN) {
                    printf("tcp_peer: FAIL recv at byte %llu: %s\n", (unsigned long long)done,
                           strerror(errno));
                    ok = false;
                }
                break;
            }
            if (r == 0) {
                eof = true;
                break;
            }
            progress = true;
            if (b->send_dir) {
                printf("tcp_peer: FAIL the receiver sent %zd bytes\n", r);
                ok = false;
                break;
            }
            if (!t_first)
                t_first = mono_now();
            size_t bad = pat_check(buf, done, (size_t)r, b->salt, expect);
            if (bad != (size_t)r) {
                printf("tcp_peer: FAIL byte %llu is 0x%02x, pattern says 0x%02x\n",
                       (unsigned long long)(done + bad), buf[bad], expect[bad]);
                ok = false;
                break;
            }
            crc = crc32_update(&p->crc, crc, buf, (size_t)r);
            done += (uint64_t)r;
            if (done > b->total) {
                printf("tcp_peer: FAIL more than %llu bytes arrived\n",
                       (unsigned long long)b->total);
                ok = false;
            }
        }
        if (ok && !eof)
            step(p, progress);
    }
    if (!b->send_dir) {
        t_end = mono_now();
        if (ok && done != b->total) {
            printf("tcp_peer: FAIL EOF after %llu of %llu bytes\n", (unsigned long long)done,
                   (unsigned long long)b->total);
            ok = false;
        }
    }
    if (!t_first)
        t_first = t0;
    print_info(p, fd, "connection");
    tern_close(p->s, fd);
    double secs = (double)(t_end - t_first) / 1e9;
    printf("tcp_peer: RESULT dir=%s bytes=%llu crc=%08x\n", b->send_dir ? "send" : "recv",
           (unsigned long long)done, crc);
    printf("tcp_peer: %s %.1f MB in %.3f s: %.1f MB/s%s\n", b->send_dir ? "sent" : "received",
           (double)done / 1e6, secs, secs > 0 ? (double)done / 1e6 / secs : 0.0,
           b->send_dir ? " (into the send buffer; the receiver's rate is the real one)" : "");
    return ok;
}

/* ---- story ---- */

struct story_conn {
    int fd; /* -1: free */
    char req[REQ_MAX];
    size_t req_len;
    bool answering;
    unsigned index;
    uint64_t sent;
};

struct story {
    uint16_t port;
    unsigned requests;
    uint64_t size;
    unsigned accepted, answered, cut_by_peer, closed, errors;
    struct story_conn c[STORY_SLOTS];
};

static void story_close(struct peer *p, struct story *st, struct story_conn *c)
{
    if (tern_close(p->s, c->fd) < 0) {
        printf("tcp_peer: FAIL close: %s\n", strerror(errno));
        st->errors++;
    }
    c->fd = -1;
    st->closed++;
}

/* Read the request line, then answer; returns whether anything moved. */
static bool story_serve(struct peer *p, struct story *st, struct story_conn *c, uint8_t *buf)
{
    bool moved = false;
    while (!c->answering) {
        char ch;
        ssize_t r = tern_recv(p->s, c->fd, &ch, 1, 0);
        if (r < 0 && errno == EAGAIN)
            return moved;
        if (r <= 0) {
            /* The story's clients always send the request first; the
             * data is ours to read even if a RST or FIN followed it. */
            printf("tcp_peer: FAIL connection #%u: %s before a whole request\n", st->accepted,
                   r == 0 ? "EOF" : strerror(errno));
            st->errors++;
            story_close(p, st, c);
            return true;
        }
        moved = true;
        if (ch != '\n') {
            if (c->req_len + 1 >= REQ_MAX) {
                printf("tcp_peer: FAIL request line too long\n");
                st->errors++;
                story_close(p, st, c);
                return true;
            }
            c->req[c->req_len++] = ch;
            continue;
        }
        c->req[c->req_len] = 0;
        char *end;
        unsigned long idx = strtoul(c->req + 4, &end, 10);
        if (strncmp(c->req, "GET ", 4) != 0 || *end || end == c->req + 4) {
            printf("tcp_peer: FAIL bad request line '%s'\n", c->req);
            st->errors++;
            story_close(p, st, c);
            return true;
        }
        c->index = (unsigned)idx;
        c->answering = true;
    }
    while (c->sent < st->size) {
        /* Pattern bytes generated per write: the buffer is the size of
         * what the send buffer can take at most. */
        size_t n = st->size - c->sent < CHUNK ? (size_t)(st->size - c->sent) : CHUNK;
        pat_fill(buf, c->sent, n, STORY_SALT + c->index);
        ssize_t w = tern_send(p->s, c->fd, buf, n, 0);
        if (w < 0) {
            if (errno == EAGAIN || errno == ENOBUFS)
                return moved;
            if (errno == ECONNRESET || errno == EPIPE) {
                st->cut_by_peer++; /* the client went away mid-answer */
                story_close(p, st, c);
                return true;
            }
            printf("tcp_peer: FAIL send of answer %u at byte %llu: %s\n", c->index,
                   (unsigned long long)c->sent, strerror(errno));
            st->errors++;
            story_close(p, st, c);
            return true;
        }
        c->sent += (uint64_t)w;
        moved = true;
    }
    st->answered++;
    story_close(p, st, c);
    return true;
}

static bool story_run(struct peer *p, struct story *st)
{
    static uint8_t buf[CHUNK];
    for (int i = 0; i < STORY_SLOTS; i++)
        st->c[i].fd = -1;
    int l = listen_on(p, st->port, 64);
    if (l < 0)
        return false;
    printf("tcp_peer: ready, story server on port %u for %u requests of %llu bytes\n", st->port,
           st->requests, (unsigned long long)st->size);
    uint64_t t0 = mono_now();
    unsigned open = 0;
    while (!should_stop(p) && (st->accepted < st->requests || open > 0)) {
        bool moved = false;
        for (int i = 0; i < STORY_SLOTS && st->accepted < st->requests; i++) {
            if (st->c[i].fd >= 0)
                continue;
            int fd = tern_accept(p->s, l, NULL, NULL);
            if (fd < 0) {
                if (errno != EAGAIN) {
                    printf("tcp_peer: FAIL accept: %s\n", strerror(errno));
                    st->errors++;
                }
                break;
            }
            if (st->accepted % 2) {
                int sb = STORY_SMALL_SNDBUF;
                if (tern_setsockopt(p->s, fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb)) < 0) {
                    printf("tcp_peer: FAIL SO_SNDBUF: %s\n", strerror(errno));
                    st->errors++;
                }
            }
            st->c[i] = (struct story_conn){.fd = fd};
            st->accepted++;
            open++;
            moved = true;
        }
        for (int i = 0; i < STORY_SLOTS; i++) {
            if (st->c[i].fd < 0)
                continue;
            if (story_serve(p, st, &st->c[i], buf))
                moved = true;
            if (st->c[i].fd < 0)
                open--;
        }
        if (st->errors >= 10) {
            printf("tcp_peer: FAIL ten errors: giving up\n");
            break;
        }
        step(p, moved);
    }
    double secs = (double)(mono_now() - t0) / 1e9;
    bool ok = st->accepted == st->requests && open == 0 && st->errors == 0;
    if (!ok && should_stop(p))
        printf("tcp_peer: FAIL stopped (%s) with %u of %u connections accepted, %u open\n",
               stop_requested ? "signal" : "--duration over", st->accepted, st->requests, open);
    for (int i = 0; i < STORY_SLOTS; i++)
        if (st->c[i].fd >= 0)
            story_close(p, st, &st->c[i]);
    tern_close(p->s, l);
    printf("tcp_peer: story: %u connections accepted, %u answers written whole, %u cut short "
           "by the client (ECONNRESET/EPIPE on send), %u errors, in %.2f s\n",
           st->accepted, st->answered, st->cut_by_peer, st->errors, secs);
    return ok;
}

/* ---- the end: nothing left but TIME_WAIT, and TIME_WAIT on schedule ---- */

static void print_live(const char *when, const struct tern_live *l)
{
    printf("tcp_peer: live %s: %llu sockets, %llu TIME_WAIT, %llu packets, %llu timers, "
           "%llu arp entries, %llu reassembly queues\n",
           when, (unsigned long long)l->sockets, (unsigned long long)l->tcp_timewait,
           (unsigned long long)l->packets, (unsigned long long)l->timers,
           (unsigned long long)l->arp_entries, (unsigned long long)l->reasm_datagrams);
}

/* Only TIME_WAIT and ARP left. A TIME_WAIT connection holds its socket
 * today and will not once it is a compact record: sockets beyond the
 * TIME_WAIT count are what must be zero in both worlds (the strict check
 * comes once TIME_WAIT is over). */
static bool only_timewait(const struct tern_live *l)
{
    uint64_t other_sockets = l->sockets > l->tcp_timewait ? l->sockets - l->tcp_timewait : 0;
    return other_sockets == 0 && l->packets == 0 && l->reasm_datagrams == 0 &&
           l->timers == l->tcp_timewait + l->arp_entries;
}

static bool nothing_left(const struct tern_live *l)
{
    return l->sockets == 0 && l->tcp_timewait == 0 && l->packets == 0 &&
           l->reasm_datagrams == 0 && l->timers == l->arp_entries;
}

/* expect_tw: whether Tern closed first somewhere (and so must have kept
 * TIME_WAIT) or only ever closed second (and must not have). */
static bool final_checks(struct peer *p, bool expect_tw)
{
    bool ok = true;
    struct tern_live l;
    uint64_t until = tern_stack_now(p->s) + 10 * TERN_NS_PER_SEC;
    for (;;) {
        tern_stack_live(p->s, &l);
        if (only_timewait(&l) || tern_stack_now(p->s) >= until || stop_requested)
            break;
        step(p, false);
    }
    print_live("after the last close", &l);
    if (!only_timewait(&l)) {
        printf("tcp_peer: FAIL something besides TIME_WAIT is alive 10 s after the last "
               "close\n");
        tern_sockets_dump(p->s, stdout);
        tern_timers_dump(p->s, stdout);
        return false;
    }
    printf("tcp_peer: PASS nothing but %llu TIME_WAIT connections (at most %llu at once) "
           "and %llu arp entries alive\n",
           (unsigned long long)l.tcp_timewait, (unsigned long long)p->tw_max,
           (unsigned long long)l.arp_entries);
    if (expect_tw != (p->tw_max > 0)) {
        printf("tcp_peer: FAIL %s\n", expect_tw ? "Tern closed first, yet no TIME_WAIT was seen"
                                                : "Tern closed second, yet kept TIME_WAIT");
        ok = false;
    } else if (expect_tw && l.tcp_timewait == 0) {
        printf("tcp_peer: FAIL TIME_WAIT was over before the last close settled (10 s)\n");
        ok = false;
    }
    if (l.tcp_timewait > 0) {
        uint64_t slack = p->timewait_ns / 10;
        uint64_t earliest = p->tw_inc_lo + p->timewait_ns;
        uint64_t latest = p->tw_inc_hi + p->timewait_ns + slack;
        uint64_t prev = tern_stack_now(p->s);
        while (l.tcp_timewait > 0 && prev < latest + TERN_NS_PER_SEC && !stop_requested) {
            prev = tern_stack_now(p->s);
            step(p, false);
            tern_stack_live(p->s, &l);
        }
        uint64_t at = tern_stack_now(p->s);
        /* It ended in the poll at `at`, after the one at `prev`. */
        if (l.tcp_timewait > 0) {
            printf("tcp_peer: FAIL %llu TIME_WAIT connections still there %.3f s after the "
                   "last one began (TIME_WAIT is %.3f s)\n",
                   (unsigned long long)l.tcp_timewait, (double)(at - p->tw_inc_hi) / 1e9,
                   (double)p->timewait_ns / 1e9);
            ok = false;
        } else if (at < earliest) {
            printf("tcp_peer: FAIL TIME_WAIT was over %.3f s early\n",
                   (double)(earliest - at) / 1e9);
            ok = false;
        } else if (prev >= latest && tern_counter_by_name(p->s, "tcp.time_wait_restart") > 0) {
            /* The peer sent its FIN again (our ACK was lost): the wait
             * started over, as RFC 9293 asks, so it ends later. */
            printf("tcp_peer: PASS TIME_WAIT ended %.3f s after the last record began, later "
                   "than 2MSL because the peer's FIN came again and restarted it\n",
                   (double)(at - p->tw_inc_hi) / 1e9);
        } else if (prev >= latest) {
            printf("tcp_peer: FAIL TIME_WAIT was over %.3f s late (allowed %.3f s)\n",
                   (double)(prev - (latest - slack)) / 1e9, (double)slack / 1e9);
            ok = false;
        } else {
            printf("tcp_peer: PASS TIME_WAIT over on schedule: the last record began in "
                   "(%.3f, %.3f] s and ended in (%.3f, %.3f] s (duration %.3f s)\n",
                   (double)p->tw_inc_lo / 1e9, (double)p->tw_inc_hi / 1e9,
                   (double)prev / 1e9, (double)at / 1e9, (double)p->timewait_ns / 1e9);
        }
    }
    tern_stack_live(p->s, &l);
    print_live("at the end", &l);
    if (!nothing_left(&l)) {
        printf("tcp_peer: FAIL objects left alive after TIME_WAIT\n");
        tern_sockets_dump(p->s, stdout);
        tern_timers_dump(p->s, stdout);
        ok = false;
    } else {
        printf("tcp_peer: PASS no socket, packet or timer left (but the ARP entries')\n");
    }
    return ok;
}

/* ---- main ---- */

static uint64_t parse_u64(const char *what, const char *s, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || end == s || v > max) {
        fprintf(stderr, "tcp_peer: bad %s '%s'\n", what, s);
        exit(2);
    }
    return v;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s bulk|story --tap NAME --addr A/LEN --peer KERNEL_ADDR [--pcap FILE]\n"
            "         [--loss PPM] [--reorder PPM] [--reorder-us US] [--seed N]\n"
            "         [--timewait-ms MS] [--duration SEC] [--no-offload] --port P\n"
            "  bulk:  --role client|server --dir send|recv --bytes N --salt S\n"
            "  story: --requests N [--size BYTES]\n",
            argv0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    const char *tap = NULL, *addr_arg = NULL, *peer_arg = NULL, *pcap = NULL, *role = NULL,
               *dir = NULL;
    uint64_t loss = 0, reorder = 0, reorder_us = 2000, seed = 1, timewait_ms = 1000,
             duration = 60, port = 0, bytes = 0, salt = 1, requests = 0, size = 200 * 1024;
    unsigned tap_flags = 0;
    static const struct option opts[] = {
        {"tap", required_argument, NULL, 't'},      {"addr", required_argument, NULL, 'a'},
        {"peer", required_argument, NULL, 'p'},     {"pcap", required_argument, NULL, 'w'},
        {"loss", required_argument, NULL, 'l'},     {"reorder", required_argument, NULL, 'r'},
        {"reorder-us", required_argument, NULL, 'u'}, {"seed", required_argument, NULL, 'S'},
        {"timewait-ms", required_argument, NULL, 'T'}, {"duration", required_argument, NULL, 'd'},
        {"port", required_argument, NULL, 'P'},     {"role", required_argument, NULL, 'R'},
        {"dir", required_argument, NULL, 'D'},      {"bytes", required_argument, NULL, 'b'},
        {"salt", required_argument, NULL, 's'},     {"requests", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 'z'},     {"no-offload", no_argument, NULL, 'O'},
        {NULL, 0, NULL, 0},
    };
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': tap = optarg; break;
        case 'a': addr_arg = optarg; break;
        case 'p': peer_arg = optarg; break;
        case 'w': pcap = optarg; break;
        case 'O': tap_flags |= TERN_TAP_NO_OFFLOAD; break;
        case 'l': loss = parse_u64("--loss", optarg, 1000000); break;
        case 'r': reorder = parse_u64("--reorder", optarg, 1000000); break;
        case 'u': reorder_us = parse_u64("--reorder-us", optarg, 10000000); break;
        case 'S': seed = parse_u64("--seed", optarg, UINT64_MAX); break;
        case 'T': timewait_ms = parse_u64("--timewait-ms", optarg, 600000); break;
        case 'd': duration = parse_u64("--duration", optarg, 86400); break;
        case 'P': port = parse_u64("--port", optarg, 65535); break;
        case 'R': role = optarg; break;
        case 'D': dir = optarg; break;
        case 'b': bytes = parse_u64("--bytes", optarg, UINT64_MAX / 2); break;
        case 's': salt = parse_u64("--salt", optarg, UINT64_MAX); break;
        case 'n': requests = parse_u64("--requests", optarg, 1000000); break;
        case 'z': size = parse_u64("--size", optarg, 1u << 30); break;
        default: usage(argv[0]); return 2;
        }
    }
    bool is_bulk = strcmp(mode, "bulk") == 0, is_story = strcmp(mode, "story") == 0;
    struct in_addr addr;
    unsigned prefixlen;
    static struct peer p;
    if (optind != argc || (!is_bulk && !is_story) || !tap || !addr_arg || !peer_arg ||
        port == 0 || duration == 0 || timewait_ms == 0 ||
        tap_parse_prefix(addr_arg, &addr, &prefixlen) < 0 ||
        inet_pton(AF_INET, peer_arg, &p.peer_addr) != 1 ||
        (is_bulk && (!role || !dir || (strcmp(role, "client") && strcmp(role, "server")) ||
                     (strcmp(dir, "send") && strcmp(dir, "recv")))) ||
        (is_story && (requests == 0 || size == 0))) {
        usage(argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    crc32_init(&p.crc);

    tap_on_signals(on_signal);

    struct tern_link *link = tern_tap_open_flags(tap, tap_flags);
    if (!link) {
        fprintf(stderr, "tcp_peer: cannot open TAP '%s': %s\n", tap, strerror(errno));
        return 1;
    }
    if (loss || reorder) {
        struct tern_impair_config ic = {.loss_ppm = (uint32_t)loss,
                                        .reorder_ppm = (uint32_t)reorder,
                                        .reorder_ns = reorder_us * 1000};
        link = tern_impair_new(link, &ic, &ic, seed); /* owns the TAP from here */
        if (!link) {
            fprintf(stderr, "tcp_peer: tern_impair_new: %s\n", strerror(errno));
            return 1;
        }
        printf("tcp_peer: impairment both ways: loss %llu ppm, reorder %llu ppm by %llu us, "
               "seed %llu\n",
               (unsigned long long)loss, (unsigned long long)reorder,
               (unsigned long long)reorder_us, (unsigned long long)seed);
    }
    if (pcap) {
        link = tern_pcap_tee_new(link, pcap); /* the stack's side of the impairment */
        if (!link) {
            fprintf(stderr, "tcp_peer: cannot record to '%s': %s\n", pcap, strerror(errno));
            return 1;
        }
    }
    p.link = link;
    p.pollfd = tern_link_pollfd(link);
    p.timewait_ns = timewait_ms * TERN_NS_PER_MS;
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.seed = seed;
    cfg.tcp_timewait_ns = p.timewait_ns;
    p.s = tern_stack_new(&cfg);
    if (!p.s) {
        fprintf(stderr, "tcp_peer: tern_stack_new: %s\n", strerror(errno));
        tern_link_free(link);
        return 1;
    }
    poll_stack(&p);
    p.tw_inc_lo = p.tw_inc_hi = p.last_poll;
    int ifindex = tern_if_add(p.s, link, NULL);
    if (ifindex < 0 || tern_if_addr_add(p.s, ifindex, addr, prefixlen) < 0) {
        fprintf(stderr, "tcp_peer: interface/address: %s\n", strerror(errno));
        tern_stack_free(p.s);
        tern_link_free(link);
        return 1;
    }
    printf("tcp_peer: %s on %s (mtu %u, %s) as %s, peer %s, TIME_WAIT %llu ms\n", mode,
           link->info.name, link->info.mtu,
           (link->info.caps & TERN_LINK_CAP_TSO) ? "TSO" : "no TSO", addr_arg, peer_arg,
           (unsigned long long)timewait_ms);
    p.end = mono_now() + duration * TERN_NS_PER_SEC;

    bool ok, expect_tw = true;
    if (is_bulk) {
        struct bulk b = {.server = strcmp(role, "server") == 0,
                         .send_dir = strcmp(dir, "send") == 0,
                         .port = (uint16_t)port,
                         .total = bytes,
                         .salt = salt};
        ok = bulk_run(&p, &b);
        expect_tw = b.send_dir; /* the sender's FIN goes first */
    } else {
        static struct story st;
        st.port = (uint16_t)port;
        st.requests = (unsigned)requests;
        st.size = size;
        ok = story_run(&p, &st);
    }
    /* The end-of-run checks are worth their time after a failure too. */
    if (!final_checks(&p, expect_tw))
        ok = false;
    /* A sender on a link that takes super-frames must have used them:
     * else the offload silently fell back to one write per segment. */
    bool sent_much = is_bulk && strcmp(dir, "send") == 0 && bytes >= (1u << 20);
    if (sent_much && (link->info.caps & TERN_LINK_CAP_TSO) &&
        tern_counter_by_name(p.s, "link.tx_gso") == 0) {
        printf("tcp_peer: FAIL: the link offers TSO, no super-frame was sent\n");
        ok = false;
    }

    tap_print_link_stats("tcp_peer", p.link);
    printf("tcp_peer: counters (non-zero):\n");
    tern_counters_dump(p.s, stdout, true);
    tern_stack_free(p.s);
    tern_link_free(link);
    printf("tcp_peer: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
