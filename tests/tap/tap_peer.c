/*
 * tap_peer: a Tern stack on a Linux TAP device, for the real-peer test
 * against the kernel (tests/tap/kernel_peer.sh runs it in a network
 * namespace of its own).
 *
 *   tap_peer --tap NAME --addr A/LEN --peer KERNEL_ADDR --pcap FILE
 *            [--duration SECONDS]
 *
 * Owned mode, one thread: the loop polls the stack at CLOCK_MONOTONIC time
 * and sleeps in poll(2) on the TAP descriptor until the stack's next
 * deadline (at most 20 ms). All along it serves a UDP echo on port 7
 * (each datagram back to its sender) for the kernel's checks. At start it
 * runs its own checks against the kernel:
 *   1. three pings (ping socket), each answered within 2 s;
 *   2. five UDP datagrams to PEER:9000 (the script's kernel echo server),
 *      each echo identical;
 *   3. one 30000-byte datagram to PEER:9000 (Tern fragments it; the
 *      kernel's echo comes back in fragments that Tern reassembles);
 *   4. a datagram to PEER:9 (closed) from a connected UDP socket gives
 *      ECONNREFUSED (the kernel's ICMP port unreachable reached the socket).
 * It prints "tap_peer: ready" once the address is configured, one
 * "tap_peer: PASS|FAIL ..." line per check and "tap_peer: checks done ...",
 * then serves until SIGTERM/SIGINT or the end of --duration. On exit it
 * prints the non-zero counters; exit status 0 only if every check passed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* clock_gettime, sigaction, getopt_long under -std=c11 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tern/tern.h>

#include "tap_loop.h"

#define ECHO_PORT 7
#define PEER_ECHO_PORT 9000
#define PEER_CLOSED_PORT 9
#define MAX_UDP 65507
#define WAIT_CAP_MS 20

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

#define TCP_CONNS 8
#define TCP_BUF 65536

/* One TCP echo connection: what was read and not yet written back. */
struct tcp_conn {
    int fd; /* -1: free */
    uint8_t buf[TCP_BUF];
    size_t off, len;
    bool eof;
};

struct peer {
    struct tern_stack *s;
    int tcp_listener;          /* TCP echo server on port 7 */
    struct tcp_conn tcp[TCP_CONNS];
    uint64_t tcp_accepted, tcp_bytes, tcp_errors;
    struct tern_link *link;
    int pollfd;
    int echo_fd;               /* UDP echo server on port 7 */
    uint64_t end;              /* monotonic ns at which --duration ends */
    struct in_addr peer_addr;
    uint8_t echo_buf[MAX_UDP + 1];
    uint64_t echoed, echo_errors;
    int passed, failed;
};

static uint64_t mono_now(void) { return tap_mono_now(); }

static bool should_stop(const struct peer *p)
{
    return stop_requested || mono_now() >= p->end;
}

/* Answer every datagram waiting on the echo socket. */
static void serve_echo(struct peer *p)
{
    for (;;) {
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n = tern_recvfrom(p->s, p->echo_fd, p->echo_buf, sizeof(p->echo_buf), 0,
                                  (struct sockaddr *)&from, &fl);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                p->echo_errors++;
                printf("tap_peer: echo recvfrom: %s\n", strerror(errno));
            }
            return; /* drained, or an error: try again at the next tick */
        }
        if (n > MAX_UDP) {
            p->echo_errors++;
            printf("tap_peer: echo: datagram of %zd bytes is larger than any UDP payload\n", n);
            continue;
        }
        if (tern_sendto(p->s, p->echo_fd, p->echo_buf, (size_t)n, 0, (struct sockaddr *)&from,
                        fl) != n) {
            p->echo_errors++;
            char a[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &from.sin_addr, a, sizeof(a));
            printf("tap_peer: echo sendto %s:%u (%zd bytes): %s\n", a, ntohs(from.sin_port), n,
                   strerror(errno));
        } else {
            p->echoed++;
        }
    }
}

/* Accept, read, write back what was read, close after the peer's FIN:
 * a TCP echo that never blocks. */
static void serve_tcp(struct peer *p)
{
    for (int i = 0; i < TCP_CONNS; i++) {
        if (p->tcp[i].fd >= 0)
            continue;
        int fd = tern_accept(p->s, p->tcp_listener, NULL, NULL);
        if (fd < 0)
            break;
        p->tcp[i] = (struct tcp_conn){.fd = fd};
        p->tcp_accepted++;
    }
    for (int i = 0; i < TCP_CONNS; i++) {
        struct tcp_conn *c = &p->tcp[i];
        if (c->fd < 0)
            continue;
        for (;;) {
            if (c->len > 0) {
                ssize_t w = tern_send(p->s, c->fd, c->buf + c->off, c->len, 0);
                if (w < 0) {
                    if (errno != EAGAIN) {
                        p->tcp_errors++;
                        printf("tap_peer: tcp send: %s\n", strerror(errno));
                        c->eof = true;
                        c->len = 0;
                    }
                    break;
                }
                c->off += (size_t)w;
                c->len -= (size_t)w;
                p->tcp_bytes += (uint64_t)w;
                if (c->len > 0)
                    break;
            }
            if (c->eof)
                break;
            ssize_t r = tern_recv(p->s, c->fd, c->buf, sizeof(c->buf), 0);
            if (r > 0) {
                c->off = 0;
                c->len = (size_t)r;
                continue;
            }
            if (r == 0)
                c->eof = true;
            else if (errno != EAGAIN) {
                p->tcp_errors++;
                printf("tap_peer: tcp recv: %s\n", strerror(errno));
                c->eof = true;
            }
            break;
        }
        if (c->eof && c->len == 0) {
            tern_close(p->s, c->fd);
            c->fd = -1;
        }
    }
}

/* Move the stack to the present and serve the echoes. */
static void tick(struct peer *p)
{
    tern_stack_poll(p->s, mono_now());
    serve_echo(p);
    serve_tcp(p);
}

/* Sleep until the TAP has a frame or the stack's next deadline (at most
 * WAIT_CAP_MS), then tick. */
static void step(struct peer *p)
{
    if (tap_wait(p->s, p->pollfd, WAIT_CAP_MS) < 0) {
        perror("tap_peer: poll");
        stop_requested = 1;
    }
    tick(p);
}

static void result(struct peer *p, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void result(struct peer *p, bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("tap_peer: %s ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (ok)
        p->passed++;
    else
        p->failed++;
}

/* Receive one datagram on fd within timeout_ns, serving the echo while
 * waiting. Returns its length, or -1 with errno (ETIMEDOUT when nothing
 * came, EINTR when asked to stop, or the socket's own error). */
static ssize_t wait_recv(struct peer *p, int fd, void *buf, size_t len,
                         struct sockaddr_in *from, uint64_t timeout_ns)
{
    uint64_t until = mono_now() + timeout_ns;
    for (;;) {
        socklen_t fl = sizeof(*from);
        ssize_t n = tern_recvfrom(p->s, fd, buf, len, 0, (struct sockaddr *)from,
                                  from ? &fl : NULL);
        if (n >= 0)
            return n;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (should_stop(p)) {
            errno = EINTR;
            return -1;
        }
        if (mono_now() >= until) {
            errno = ETIMEDOUT;
            return -1;
        }
        step(p);
    }
}

static const char *why(int err)
{
    if (err == ETIMEDOUT)
        return "no answer in time";
    if (err == EINTR)
        return "stopped (signal or --duration over) before an answer";
    return strerror(err);
}

/* ---- Check 1: ping ---- */
static void check_ping(struct peer *p)
{
    char peer_str[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &p->peer_addr, peer_str, sizeof(peer_str));
    int fd = tern_socket(p->s, AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    if (fd < 0) {
        result(p, false, "ping %s: socket: %s", peer_str, strerror(errno));
        return;
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = p->peer_addr};
    const uint16_t id = 0x7e55;
    int replies = 0;
    char detail[256] = "";
    for (uint16_t seq = 1; seq <= 3 && !should_stop(p); seq++) {
        uint8_t req[8 + 56] = {8, 0, 0, 0, id >> 8, id & 0xff, seq >> 8, seq & 0xff};
        for (size_t i = 8; i < sizeof(req); i++)
            req[i] = (uint8_t)(i * 3 + seq);
        tick(p);
        uint64_t t0 = mono_now();
        if (tern_sendto(p->s, fd, req, sizeof(req), 0, (struct sockaddr *)&to, sizeof(to)) !=
            (ssize_t)sizeof(req)) {
            snprintf(detail, sizeof(detail), "; seq %u: sendto: %s", seq, strerror(errno));
            continue;
        }
        uint64_t until = t0 + 2 * TERN_NS_PER_SEC;
        for (;;) {
            uint8_t rep[256];
            struct sockaddr_in from;
            uint64_t now = mono_now();
            ssize_t n = wait_recv(p, fd, rep, sizeof(rep), &from, now < until ? until - now : 0);
            if (n < 0) {
                snprintf(detail, sizeof(detail), "; seq %u: %s", seq, why(errno));
                break;
            }
            /* Reply: type 0, our sequence, our data (the kernel's id is the
             * socket's, so it is not compared). */
            if (n == (ssize_t)sizeof(req) && rep[0] == 0 && rep[1] == 0 &&
                rep[6] == (seq >> 8) && rep[7] == (seq & 0xff) &&
                from.sin_addr.s_addr == p->peer_addr.s_addr &&
                memcmp(rep + 8, req + 8, sizeof(req) - 8) == 0) {
                replies++;
                printf("tap_peer:   ping %s seq=%u: %zd bytes, %.3f ms\n", peer_str, seq, n,
                       (double)(mono_now() - t0) / 1e6);
                break;
            }
            printf("tap_peer:   ping %s seq=%u: unexpected %zd-byte message type %u code %u\n",
                   peer_str, seq, n, n > 0 ? rep[0] : 0, n > 1 ? rep[1] : 0);
        }
    }
    tern_close(p->s, fd);
    result(p, replies == 3, "ping %s: %d/3 replies%s", peer_str, replies, detail);
}

/* ---- Checks 2 and 3: UDP echo through the kernel ---- */
static void fill_pattern(uint8_t *buf, size_t len, uint32_t salt)
{
    /* Position-dependent, so a misplaced fragment or a shifted byte shows. */
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)((i * 31u) ^ (i >> 8) ^ (i >> 16) ^ salt);
}

/* Send len pattern bytes to PEER:9000 and compare the echo. Returns true on
 * a match; *why_out says what went wrong otherwise. */
static bool udp_roundtrip(struct peer *p, int fd, size_t len, uint32_t salt, uint64_t timeout_ns,
                          char *why_out, size_t why_len)
{
    uint8_t *out = malloc(len ? len : 1), *in = malloc(MAX_UDP + 1);
    bool ok = false;
    if (!out || !in) {
        snprintf(why_out, why_len, "out of memory");
        goto done;
    }
    fill_pattern(out, len, salt);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(PEER_ECHO_PORT),
                             .sin_addr = p->peer_addr};
    tick(p);
    if (tern_sendto(p->s, fd, out, len, 0, (struct sockaddr *)&to, sizeof(to)) != (ssize_t)len) {
        snprintf(why_out, why_len, "sendto: %s", strerror(errno));
        goto done;
    }
    struct sockaddr_in from;
    ssize_t n = wait_recv(p, fd, in, MAX_UDP + 1, &from, timeout_ns);
    if (n < 0) {
        snprintf(why_out, why_len, "%s", why(errno));
        goto done;
    }
    if (from.sin_addr.s_addr != p->peer_addr.s_addr || from.sin_port != htons(PEER_ECHO_PORT)) {
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &from.sin_addr, a, sizeof(a));
        snprintf(why_out, why_len, "answer from %s:%u", a, ntohs(from.sin_port));
        goto done;
    }
    if ((size_t)n != len) {
        snprintf(why_out, why_len, "echo has %zd bytes, sent %zu", n, len);
        goto done;
    }
    for (size_t i = 0; i < len; i++) {
        if (in[i] != out[i]) {
            snprintf(why_out, why_len, "echo differs at byte %zu (0x%02x, sent 0x%02x)", i,
                     in[i], out[i]);
            goto done;
        }
    }
    ok = true;
done:
    free(out);
    free(in);
    return ok;
}

static void check_udp_echo(struct peer *p)
{
    static const size_t sizes[] = {0, 1, 100, 1472, 4000};
    int fd = tern_socket(p->s, AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        result(p, false, "udp echo via kernel: socket: %s", strerror(errno));
        return;
    }
    int good = 0;
    char detail[256] = "";
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && !should_stop(p); i++) {
        char w[160];
        if (udp_roundtrip(p, fd, sizes[i], (uint32_t)i + 1, 2 * TERN_NS_PER_SEC, w, sizeof(w))) {
            good++;
            printf("tap_peer:   udp %zu bytes: echo matches\n", sizes[i]);
        } else {
            printf("tap_peer:   udp %zu bytes: %s\n", sizes[i], w);
            snprintf(detail, sizeof(detail), "; %zu bytes: %s", sizes[i], w);
        }
    }
    tern_close(p->s, fd);
    result(p, good == 5, "udp echo via kernel: %d/5 datagrams (0, 1, 100, 1472, 4000 bytes)%s",
           good, detail);
}

static void check_udp_big(struct peer *p)
{
    int fd = tern_socket(p->s, AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        result(p, false, "udp 30000 bytes via kernel: socket: %s", strerror(errno));
        return;
    }
    char w[160] = "";
    bool ok = udp_roundtrip(p, fd, 30000, 0xa5, 3 * TERN_NS_PER_SEC, w, sizeof(w));
    tern_close(p->s, fd);
    result(p, ok, "udp 30000 bytes via kernel (fragmented both ways)%s%s", ok ? "" : ": ", w);
}

/* ---- Check 4: ICMP port unreachable reaches a connected socket ---- */
static void check_refused(struct peer *p)
{
    int fd = tern_socket(p->s, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(PEER_CLOSED_PORT),
                             .sin_addr = p->peer_addr};
    if (fd < 0 || tern_connect(p->s, fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
        result(p, false, "closed port %u gives ECONNREFUSED: socket/connect: %s",
               PEER_CLOSED_PORT, strerror(errno));
        if (fd >= 0)
            tern_close(p->s, fd);
        return;
    }
    tick(p);
    const char msg[] = "anyone on port 9?";
    bool ok = false;
    char detail[160] = "";
    if (tern_send(p->s, fd, msg, sizeof(msg) - 1, 0) != (ssize_t)(sizeof(msg) - 1)) {
        snprintf(detail, sizeof(detail), ": send: %s", strerror(errno));
    } else {
        uint8_t buf[64];
        ssize_t n = wait_recv(p, fd, buf, sizeof(buf), NULL, 2 * TERN_NS_PER_SEC);
        if (n < 0 && errno == ECONNREFUSED)
            ok = true;
        else if (n >= 0)
            snprintf(detail, sizeof(detail), ": recv returned %zd bytes", n);
        else
            snprintf(detail, sizeof(detail), ": recv: %s", why(errno));
    }
    tern_close(p->s, fd);
    result(p, ok, "closed port %u gives ECONNREFUSED%s", PEER_CLOSED_PORT, detail);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --tap NAME --addr A/LEN --peer KERNEL_ADDR --pcap FILE "
            "[--duration SECONDS]\n",
            argv0);
}

int main(int argc, char **argv)
{
    const char *tap = NULL, *addr_arg = NULL, *peer_arg = NULL, *pcap = NULL;
    long duration = 60;
    static const struct option opts[] = {
        {"tap", required_argument, NULL, 't'},
        {"addr", required_argument, NULL, 'a'},
        {"peer", required_argument, NULL, 'p'},
        {"pcap", required_argument, NULL, 'w'},
        {"duration", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': tap = optarg; break;
        case 'a': addr_arg = optarg; break;
        case 'p': peer_arg = optarg; break;
        case 'w': pcap = optarg; break;
        case 'd': {
            char *end;
            duration = strtol(optarg, &end, 10);
            if (*end || end == optarg || duration <= 0 || duration > 86400) {
                fprintf(stderr, "tap_peer: bad --duration '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'h': usage(argv[0]); return 0;
        default: usage(argv[0]); return 2;
        }
    }
    struct in_addr addr;
    unsigned prefixlen;
    static struct peer p; /* large (echo buffer): not on the stack */
    if (optind != argc || !tap || !addr_arg || !peer_arg || !pcap) {
        usage(argv[0]);
        return 2;
    }
    if (tap_parse_prefix(addr_arg, &addr, &prefixlen) < 0) {
        fprintf(stderr, "tap_peer: bad --addr '%s' (want A.B.C.D/LEN)\n", addr_arg);
        return 2;
    }
    if (inet_pton(AF_INET, peer_arg, &p.peer_addr) != 1) {
        fprintf(stderr, "tap_peer: bad --peer '%s'\n", peer_arg);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    tap_on_signals(on_signal);

    struct tern_link *tap_link = tern_tap_open(tap);
    if (!tap_link) {
        fprintf(stderr, "tap_peer: cannot open TAP '%s': %s\n", tap, strerror(errno));
        return 1;
    }
    p.link = tern_pcap_tee_new(tap_link, pcap); /* owns tap_link from here */
    if (!p.link) {
        fprintf(stderr, "tap_peer: cannot record to '%s': %s\n", pcap, strerror(errno));
        return 1;
    }
    p.pollfd = tern_link_pollfd(p.link);
    p.s = tern_stack_new(NULL);
    if (!p.s) {
        fprintf(stderr, "tap_peer: tern_stack_new: %s\n", strerror(errno));
        tern_link_free(p.link);
        return 1;
    }
    int rc = 1;
    p.echo_fd = -1;
    p.tcp_listener = -1;
    for (int i = 0; i < TCP_CONNS; i++)
        p.tcp[i].fd = -1;
    tern_stack_poll(p.s, mono_now());
    int ifindex = tern_if_add(p.s, p.link, NULL);
    if (ifindex < 0 || tern_if_addr_add(p.s, ifindex, addr, prefixlen) < 0) {
        fprintf(stderr, "tap_peer: interface/address: %s\n", strerror(errno));
        goto out_stack;
    }
    p.echo_fd = tern_socket(p.s, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(ECHO_PORT)};
    if (p.echo_fd < 0 || tern_bind(p.s, p.echo_fd, (struct sockaddr *)&any, sizeof(any)) < 0) {
        fprintf(stderr, "tap_peer: echo socket on port %d: %s\n", ECHO_PORT, strerror(errno));
        goto out_stack;
    }
    p.tcp_listener = tern_socket(p.s, AF_INET, SOCK_STREAM, 0);
    if (p.tcp_listener < 0 ||
        tern_bind(p.s, p.tcp_listener, (struct sockaddr *)&any, sizeof(any)) < 0 ||
        tern_listen(p.s, p.tcp_listener, 16) < 0) {
        fprintf(stderr, "tap_peer: tcp listener on port %d: %s\n", ECHO_PORT, strerror(errno));
        goto out_stack;
    }
    uint8_t mac[6];
    tern_if_get_mac(p.s, ifindex, mac);
    printf("tap_peer: %s (mtu %u, mac %02x:%02x:%02x:%02x:%02x:%02x) has %s, peer %s, "
           "udp echo on port %d\n",
           tap_link->info.name, tap_link->info.mtu, mac[0], mac[1], mac[2], mac[3], mac[4],
           mac[5], addr_arg, peer_arg, ECHO_PORT);
    printf("tap_peer: ready\n");
    fflush(stdout);

    p.end = mono_now() + (uint64_t)duration * TERN_NS_PER_SEC;
    check_ping(&p);
    check_udp_echo(&p);
    check_udp_big(&p);
    check_refused(&p);
    bool all_ran = p.passed + p.failed == 4;
    if (!all_ran)
        printf("tap_peer: FAIL checks interrupted before they all ran\n");
    printf("tap_peer: checks done: %d passed, %d failed\n", p.passed, p.failed);

    while (!should_stop(&p))
        step(&p);
    printf("tap_peer: stopping (%s); echoed %llu datagrams, %llu echo errors; "
           "tcp: %llu connections, %llu bytes echoed, %llu errors\n",
           stop_requested ? "signal" : "duration over", (unsigned long long)p.echoed,
           (unsigned long long)p.echo_errors, (unsigned long long)p.tcp_accepted,
           (unsigned long long)p.tcp_bytes, (unsigned long long)p.tcp_errors);
    rc = p.failed == 0 && all_ran && p.tcp_errors == 0 ? 0 : 1;

out_stack:
    if (p.echo_fd >= 0)
        tern_close(p.s, p.echo_fd);
    for (int i = 0; i < TCP_CONNS; i++)
        if (p.tcp[i].fd >= 0)
            tern_close(p.s, p.tcp[i].fd);
    if (p.tcp_listener >= 0)
        tern_close(p.s, p.tcp_listener);
    tap_print_link_stats("tap_peer", p.link);
    printf("tap_peer: counters (non-zero):\n");
    tern_counters_dump(p.s, stdout, true);
    tern_stack_free(p.s);
    tern_link_free(p.link);
    printf("tap_peer: exit %d\n", rc);
    return rc;
}
