/*
 * tcp_ksock: the Linux kernel's side of the TCP tests against Tern
 * (tests/tap/tcp_kernel.sh runs it inside the test's network namespace).
 * Plain blocking kernel sockets; every wait is bounded by SO_RCVTIMEO /
 * SO_SNDTIMEO and the whole run by alarm(2).
 *
 *   tcp_ksock bulk --role server|client --addr A --port P --dir send|recv
 *             --bytes N --salt S [--timeout SEC]
 *     One connection (the server accepts one; the client connects to A:P).
 *     send: N pattern bytes (tcp_pattern.h), shutdown(SHUT_WR), then wait
 *           for the peer's FIN (any byte from the peer is an error).
 *     recv: read to EOF, checking every byte against the pattern, then
 *           close.
 *     Prints "ksock: RESULT dir=send|recv bytes=N crc=XXXXXXXX" and the
 *     rate; exit 0 only if the whole stream was sent / arrived intact.
 *
 *   tcp_ksock story --addr A --port P --requests N --seed S [--size B]
 *             [--timeout SEC]
 *     N back-to-back requests "GET i\n" to A:P; each answer is B bytes
 *     (default 200 KiB) of the pattern with salt STORY_SALT + i, then the
 *     server's FIN. Half the requests (chosen by the seeded generator) read
 *     the whole answer; the others are cut after a random number of bytes
 *     in [0, B) by one of: close() (a RST when unread data remains, as
 *     Linux does), SO_LINGER {1, 0} and close() (RST), shutdown(SHUT_WR)
 *     (then the whole answer must still arrive), shutdown(SHUT_RD) then
 *     close(). Every byte read is checked. Exit 0 only if every request
 *     went as planned.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tcp_pattern.h"

#define CHUNK (256 * 1024)
#define IO_TIMEOUT_S 30 /* no progress at all for this long is a stall */
#define STORY_SALT 0x570000ull

static struct crc32 crc_tab;
static uint8_t buf[CHUNK], expect[CHUNK];

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "ksock: FAIL overall timeout (alarm)\n";
    ssize_t w = write(STDOUT_FILENO, msg, sizeof(msg) - 1);
    (void)w;
    _exit(1);
}

static void set_timeouts(int fd)
{
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int connect_to(const struct sockaddr_in *a)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    set_timeouts(fd); /* SO_SNDTIMEO bounds connect() too */
    if (connect(fd, (const struct sockaddr *)a, sizeof(*a)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int accept_one(const struct sockaddr_in *a)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(l, (const struct sockaddr *)a, sizeof(*a)) < 0 || listen(l, 4) < 0) {
        printf("ksock: FAIL listen on port %u: %s\n", ntohs(a->sin_port), strerror(errno));
        return -1;
    }
    printf("ksock: listening on port %u\n", ntohs(a->sin_port));
    fflush(stdout);
    int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC); /* bounded by alarm() */
    int e = errno;
    close(l);
    if (fd < 0) {
        printf("ksock: FAIL accept: %s\n", strerror(e));
        return -1;
    }
    set_timeouts(fd);
    return fd;
}

static void print_tcp_info(int fd)
{
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0)
        printf("ksock: kernel tcp_info: rtt %u us, cwnd %u, retrans %u, reordering %u, "
               "rcv_space %u, snd_mss %u\n",
               ti.tcpi_rtt, ti.tcpi_snd_cwnd, ti.tcpi_total_retrans, ti.tcpi_reordering,
               ti.tcpi_rcv_space, ti.tcpi_snd_mss);
}

static int bulk(bool server, const struct sockaddr_in *a, bool send_dir, uint64_t total,
                uint64_t salt)
{
    int fd;
    if (server) {
        fd = accept_one(a);
    } else {
        fd = connect_to(a);
        if (fd < 0)
            printf("ksock: FAIL connect: %s\n", strerror(errno));
    }
    if (fd < 0)
        return 1;
    printf("ksock: connected, %s %llu bytes (salt %llu)\n", send_dir ? "sending" : "receiving",
           (unsigned long long)total, (unsigned long long)salt);
    uint64_t done = 0, t0 = mono_ns(), t_first = 0;
    uint32_t crc = 0;
    bool ok = true;
    if (send_dir) {
        while (done < total) {
            size_t n = total - done < CHUNK ? (size_t)(total - done) : CHUNK;
            pat_fill(buf, done, n, salt);
            crc = crc32_update(&crc_tab, crc, buf, n);
            size_t off = 0;
            while (off < n) {
                ssize_t w = send(fd, buf + off, n - off, MSG_NOSIGNAL);
                if (w < 0) {
                    if (errno == EINTR)
                        continue;
                    printf("ksock: FAIL send at byte %llu: %s\n",
                           (unsigned long long)(done + off), strerror(errno));
                    ok = false;
                    break;
                }
                off += (size_t)w;
            }
            if (!ok)
                break;
            done += n;
        }
        if (ok && shutdown(fd, SHUT_WR) < 0) {
            printf("ksock: FAIL shutdown(SHUT_WR): %s\n", strerror(errno));
            ok = false;
        }
        /* The receiver closes once it has read everything: its FIN is
         * the end of the transfer. */
        while (ok) {
            ssize_t r = recv(fd, buf, CHUNK, 0);
            if (r == 0)
                break;
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                printf("ksock: FAIL waiting for the receiver's FIN: %s\n", strerror(errno));
            else
                printf("ksock: FAIL the receiver sent %zd bytes\n", r);
            ok = false;
        }
    } else {
        for (;;) {
            ssize_t r = recv(fd, buf, CHUNK, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                printf("ksock: FAIL recv at byte %llu: %s\n", (unsigned long long)done,
                       strerror(errno));
                ok = false;
                break;
            }
            if (r == 0)
                break;
            if (!t_first)
                t_first = mono_ns();
            size_t bad = pat_check(buf, done, (size_t)r, salt, expect);
            if (bad != (size_t)r) {
                printf("ksock: FAIL byte %llu is 0x%02x, pattern says 0x%02x\n",
                       (unsigned long long)(done + bad), buf[bad], expect[bad]);
                ok = false;
                break;
            }
            crc = crc32_update(&crc_tab, crc, buf, (size_t)r);
            done += (uint64_t)r;
            if (done > total) {
                printf("ksock: FAIL more than %llu bytes arrived\n", (unsigned long long)total);
                ok = false;
                break;
            }
        }
        if (ok && done != total) {
            printf("ksock: FAIL EOF after %llu of %llu bytes\n", (unsigned long long)done,
                   (unsigned long long)total);
            ok = false;
        }
    }
    uint64_t t1 = mono_ns();
    if (!t_first)
        t_first = t0;
    print_tcp_info(fd);
    close(fd);
    double secs = (double)(t1 - t_first) / 1e9;
    printf("ksock: RESULT dir=%s bytes=%llu crc=%08x\n", send_dir ? "send" : "recv",
           (unsigned long long)done, crc);
    printf("ksock: %s %.1f MB in %.3f s: %.1f MB/s\n", send_dir ? "sent" : "received",
           (double)done / 1e6, secs, secs > 0 ? (double)done / 1e6 / secs : 0.0);
    printf("ksock: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}

/* ---- the story ---- */

enum cut { CUT_NONE, CUT_CLOSE, CUT_LINGER0, CUT_SHUT_WR, CUT_SHUT_RD, CUT_KINDS };
static const char *const cut_name[CUT_KINDS] = {"complete", "close", "linger0-rst", "shut-wr",
                                                "shut-rd+close"};

static uint64_t rng_state;
static uint64_t rng_next(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/* Read up to `want` more bytes of answer i (from offset *got), checking
 * them. Returns 1 at EOF, 0 when `want` bytes came, -1 on error (printed). */
static int read_answer(int fd, unsigned i, uint64_t salt, uint64_t *got, uint64_t want,
                       uint64_t size)
{
    uint64_t until = *got + want;
    while (*got < until) {
        size_t n = until - *got < CHUNK ? (size_t)(until - *got) : CHUNK;
        ssize_t r = recv(fd, buf, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            printf("ksock: FAIL request %u: recv at byte %llu: %s\n", i,
                   (unsigned long long)*got, strerror(errno));
            return -1;
        }
        if (r == 0)
            return 1;
        size_t bad = pat_check(buf, *got, (size_t)r, salt, expect);
        if (bad != (size_t)r) {
            printf("ksock: FAIL request %u: byte %llu is 0x%02x, pattern says 0x%02x\n", i,
                   (unsigned long long)(*got + bad), buf[bad], expect[bad]);
            return -1;
        }
        *got += (uint64_t)r;
        if (*got > size) {
            printf("ksock: FAIL request %u: answer longer than %llu bytes\n", i,
                   (unsigned long long)size);
            return -1;
        }
    }
    return 0;
}

static int story(const struct sockaddr_in *a, unsigned requests, uint64_t seed, uint64_t size)
{
    rng_state = seed ? seed : 1;
    unsigned planned[CUT_KINDS] = {0}, failed = 0;
    uint64_t bytes = 0, t0 = mono_ns();
    printf("ksock: story: %u requests of %llu bytes to port %u, seed %llu\n", requests,
           (unsigned long long)size, ntohs(a->sin_port), (unsigned long long)seed);
    for (unsigned i = 0; i < requests; i++) {
        enum cut cut = CUT_NONE;
        if (rng_next() % 2)
            cut = (enum cut)(1 + rng_next() % (CUT_KINDS - 1));
        uint64_t at = rng_next() % size; /* where the cut happens */
        planned[cut]++;
        uint64_t salt = STORY_SALT + i;
        int fd = connect_to(a);
        if (fd < 0) {
            printf("ksock: FAIL request %u: connect: %s\n", i, strerror(errno));
            failed++;
            break; /* the server stopped serving: no point going on */
        }
        char req[32];
        int rl = snprintf(req, sizeof(req), "GET %u\n", i);
        if (send(fd, req, (size_t)rl, MSG_NOSIGNAL) != rl) {
            printf("ksock: FAIL request %u: send: %s\n", i, strerror(errno));
            close(fd);
            failed++;
            continue;
        }
        uint64_t got = 0;
        bool ok = true;
        if (cut == CUT_NONE || cut == CUT_SHUT_WR) {
            if (cut == CUT_SHUT_WR) {
                int r = read_answer(fd, i, salt, &got, at, size);
                if (r != 0) {
                    if (r > 0)
                        printf("ksock: FAIL request %u: EOF after %llu bytes, before the "
                               "shutdown point\n", i, (unsigned long long)got);
                    ok = false;
                } else if (shutdown(fd, SHUT_WR) < 0) {
                    printf("ksock: FAIL request %u: shutdown(SHUT_WR): %s\n", i,
                           strerror(errno));
                    ok = false;
                }
            }
            if (ok) {
                int r = read_answer(fd, i, salt, &got, size + 1 - got, size);
                if (r < 0 || got != size) {
                    if (r >= 0)
                        printf("ksock: FAIL request %u (%s): answer of %llu bytes, want "
                               "%llu\n", i, cut_name[cut], (unsigned long long)got,
                               (unsigned long long)size);
                    ok = false;
                }
            }
        } else {
            int r = read_answer(fd, i, salt, &got, at, size);
            if (r != 0) {
                if (r > 0)
                    printf("ksock: FAIL request %u: EOF after %llu bytes, before the cut at "
                           "%llu\n", i, (unsigned long long)got, (unsigned long long)at);
                ok = false;
            } else if (cut == CUT_LINGER0) {
                struct linger lg = {.l_onoff = 1, .l_linger = 0};
                if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0) {
                    printf("ksock: FAIL request %u: SO_LINGER: %s\n", i, strerror(errno));
                    ok = false;
                }
            } else if (cut == CUT_SHUT_RD) {
                if (shutdown(fd, SHUT_RD) < 0) {
                    printf("ksock: FAIL request %u: shutdown(SHUT_RD): %s\n", i,
                           strerror(errno));
                    ok = false;
                }
            }
        }
        close(fd);
        bytes += got;
        if (!ok)
            failed++;
        if (failed >= 10) {
            printf("ksock: FAIL ten requests failed: stopping at request %u\n", i);
            break;
        }
        if ((i + 1) % 500 == 0)
            printf("ksock: %u requests done, %.1f MB read, %u failed\n", i + 1,
                   (double)bytes / 1e6, failed);
    }
    double secs = (double)(mono_ns() - t0) / 1e9;
    printf("ksock: story: planned");
    for (int k = 0; k < CUT_KINDS; k++)
        printf(" %s %u%s", cut_name[k], planned[k], k + 1 < CUT_KINDS ? "," : "");
    printf("\nksock: story: %.1f MB checked in %.2f s (%.1f MB/s, %.0f requests/s)\n",
           (double)bytes / 1e6, secs, secs > 0 ? (double)bytes / 1e6 / secs : 0.0,
           secs > 0 ? requests / secs : 0.0);
    printf("ksock: RESULT requests=%u failed=%u\n", requests, failed);
    printf("ksock: %s\n", failed == 0 ? "PASS" : "FAIL");
    return failed == 0 ? 0 : 1;
}

static uint64_t parse_u64(const char *what, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || end == s) {
        fprintf(stderr, "ksock: bad %s '%s'\n", what, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s bulk|story [options] (see the source)\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    const char *role = NULL, *addr = NULL, *dir = NULL;
    uint64_t port = 0, bytes = 0, salt = 1, requests = 0, seed = 1, size = 200 * 1024;
    uint64_t timeout = 120;
    static const struct option opts[] = {
        {"role", required_argument, NULL, 'r'},   {"addr", required_argument, NULL, 'a'},
        {"port", required_argument, NULL, 'p'},   {"dir", required_argument, NULL, 'd'},
        {"bytes", required_argument, NULL, 'b'},  {"salt", required_argument, NULL, 's'},
        {"requests", required_argument, NULL, 'n'}, {"seed", required_argument, NULL, 'S'},
        {"size", required_argument, NULL, 'z'},   {"timeout", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r': role = optarg; break;
        case 'a': addr = optarg; break;
        case 'd': dir = optarg; break;
        case 'p': port = parse_u64("--port", optarg); break;
        case 'b': bytes = parse_u64("--bytes", optarg); break;
        case 's': salt = parse_u64("--salt", optarg); break;
        case 'n': requests = parse_u64("--requests", optarg); break;
        case 'S': seed = parse_u64("--seed", optarg); break;
        case 'z': size = parse_u64("--size", optarg); break;
        case 't': timeout = parse_u64("--timeout", optarg); break;
        default: return 2;
        }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (optind != argc || !addr || inet_pton(AF_INET, addr, &a.sin_addr) != 1 || port == 0 ||
        port > 65535 || timeout == 0 || timeout > 3600) {
        fprintf(stderr, "ksock: need --addr A.B.C.D, --port 1..65535, --timeout 1..3600\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    crc32_init(&crc_tab);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)timeout);
    if (strcmp(mode, "bulk") == 0) {
        if (!role || !dir || (strcmp(role, "server") && strcmp(role, "client")) ||
            (strcmp(dir, "send") && strcmp(dir, "recv"))) {
            fprintf(stderr, "ksock: bulk needs --role server|client and --dir send|recv\n");
            return 2;
        }
        return bulk(strcmp(role, "server") == 0, &a, strcmp(dir, "send") == 0, bytes, salt);
    }
    if (strcmp(mode, "story") == 0) {
        if (requests == 0 || requests > 100000 || size == 0 || size > (1u << 30)) {
            fprintf(stderr, "ksock: story needs --requests 1..100000 and --size 1..1 GiB\n");
            return 2;
        }
        return story(&a, (unsigned)requests, seed, size);
    }
    fprintf(stderr, "ksock: unknown mode '%s'\n", mode);
    return 2;
}
