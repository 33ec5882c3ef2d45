/*
 * tern_nc: a netcat on a Tern stack (threaded mode, blocking calls):
 * standard input to the peer, the peer to standard output.
 *
 *   tern_nc LINK [-u] [-w SECS] HOST PORT     connect to HOST:PORT
 *   tern_nc LINK [-u] [-w SECS] -l PORT       wait for one peer on PORT
 *
 * TCP: the end of standard input shuts our side down (a FIN); the program
 * ends when the peer's side ends too. UDP: each read of standard input
 * is one datagram; listening, the first datagram's sender becomes the
 * peer; once standard input ends, the program waits -w seconds (default
 * 1) for more datagrams, then ends. SIGINT or SIGTERM end it at once.
 * The summary line goes to standard error (standard output is the data).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define PROG "tern_nc"
#define CHUNK 65536

struct nc {
    struct tern_stack *s;
    int fd;
    bool udp;
    _Atomic bool quit;        /* the peer's side ended: stop reading stdin */
    _Atomic bool input_done;  /* stdin ended */
    struct ex_summary sum;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Standard input to the socket. */
static void *stdin_loop(void *arg)
{
    struct nc *c = arg;
    uint8_t *buf = malloc(CHUNK);
    bool failed = !buf;
    while (!failed && !ex_stop && !atomic_load(&c->quit)) {
        struct pollfd pf = {.fd = STDIN_FILENO, .events = POLLIN};
        int r = poll(&pf, 1, EX_TICK_MS);
        if (r <= 0)
            continue;
        ssize_t n = read(STDIN_FILENO, buf, c->udp ? 65507 : CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        atomic_fetch_add(&c->sum.bytes_out, (uint64_t)n);
        for (ssize_t off = 0; off < n && !ex_stop;) {
            ssize_t k = tern_send(c->s, c->fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (k < 0 && errno == EAGAIN)
                continue;
            if (k < 0) {
                fprintf(stderr, PROG ": send: %s\n", strerror(errno));
                failed = true;
                break;
            }
            off += k;
        }
    }
    if (failed)
        atomic_fetch_add(&c->sum.errors, 1);
    if (!c->udp)
        tern_shutdown(c->s, c->fd, SHUT_WR);
    atomic_store(&c->input_done, true);
    free(buf);
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: " PROG " " EX_LINK_USAGE " [-u] [-w SECS] HOST PORT\n"
                    "       " PROG " " EX_LINK_USAGE " [-u] [-w SECS] -l PORT\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct ex_link_opts lo = {0};
    bool udp = false, listen_mode = false;
    long wait_s = 1;
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        int r = ex_link_opt(&lo, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "-u") == 0)
            udp = true;
        else if (strcmp(argv[i], "-l") == 0)
            listen_mode = true;
        else if (strcmp(argv[i], "-w") == 0 && i + 1 < argc) {
            unsigned long long v;
            if (ex_parse_num("-w", argv[++i], 0, 86400, &v) < 0)
                return 2;
            wait_s = (long)v;
        }
        else if (argv[i][0] != '-' && npos < 2)
            pos[npos++] = argv[i];
        else
            return usage();
    }
    if (npos != (listen_mode ? 1 : 2))
        return usage();
    struct sockaddr_in peer = {.sin_family = AF_INET};
    uint16_t port;
    if (ex_parse_port("port", pos[npos - 1], &port) < 0)
        return 2;
    if (!listen_mode && inet_pton(AF_INET, pos[0], &peer.sin_addr) != 1) {
        fprintf(stderr, PROG ": '%s' is not an IPv4 address\n", pos[0]);
        return 2;
    }
    peer.sin_port = htons(port);
    ex_signals();
    struct ex_net n;
    if (ex_net_up(&n, &lo) < 0)
        return 1;
    struct nc c = {.s = n.s, .fd = -1, .udp = udp};
    int rc = 1;
    uint8_t *buf = malloc(CHUNK);
    int sock = tern_socket(n.s, AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (!buf || sock < 0)
        goto out;
    if (listen_mode) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = peer.sin_port};
        int one = 1;
        tern_setsockopt(n.s, sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (tern_bind(n.s, sock, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            (!udp && tern_listen(n.s, sock, 1) < 0)) {
            perror(PROG ": bind");
            goto out;
        }
        ex_set_timeo(n.s, sock, SO_RCVTIMEO, EX_TICK_MS);
        fprintf(stderr, PROG ": listening on %s port %d\n", udp ? "UDP" : "TCP", port);
        while (!ex_stop && c.fd < 0) {
            if (!udp) {
                c.fd = tern_accept(n.s, sock, NULL, NULL);
                continue;
            }
            socklen_t fl = sizeof(peer);
            ssize_t k = tern_recvfrom(n.s, sock, buf, CHUNK, 0, (struct sockaddr *)&peer, &fl);
            if (k < 0)
                continue;
            /* The first datagram names the peer. */
            if (tern_connect(n.s, sock, (struct sockaddr *)&peer, sizeof(peer)) < 0)
                goto out;
            atomic_fetch_add(&c.sum.bytes_in, (uint64_t)k);
            if (write_all(STDOUT_FILENO, buf, (size_t)k) < 0)
                goto out;
            c.fd = sock;
        }
        if (c.fd < 0)
            goto out;
    } else {
        ex_set_timeo(n.s, sock, SO_SNDTIMEO, 10000);
        if (tern_connect(n.s, sock, (struct sockaddr *)&peer, sizeof(peer)) < 0) {
            perror(PROG ": connect");
            atomic_fetch_add(&c.sum.errors, 1);
            tern_close(n.s, sock);
            sock = -1;
            goto out;
        }
        c.fd = sock;
    }
    atomic_fetch_add(&c.sum.conns, 1);
    ex_set_timeo(n.s, c.fd, SO_RCVTIMEO, EX_TICK_MS);
    ex_set_timeo(n.s, c.fd, SO_SNDTIMEO, EX_TICK_MS);
    pthread_t t;
    if (pthread_create(&t, NULL, stdin_loop, &c) != 0)
        goto out;
    uint64_t last = mono_ms();
    rc = 0;
    while (!ex_stop) {
        ssize_t k = tern_recv(n.s, c.fd, buf, CHUNK, 0);
        if (k < 0 && errno == EAGAIN) {
            if (udp && atomic_load(&c.input_done) && mono_ms() - last >= (uint64_t)wait_s * 1000)
                break;
            continue;
        }
        if (k < 0) {
            /* UDP: an ICMP error (no one listening) is reported, not fatal. */
            fprintf(stderr, PROG ": recv: %s\n", strerror(errno));
            atomic_fetch_add(&c.sum.errors, 1);
            if (udp)
                continue;
            rc = 1;
            break;
        }
        if (k == 0 && !udp)
            break; /* the peer's FIN */
        last = mono_ms();
        atomic_fetch_add(&c.sum.bytes_in, (uint64_t)k);
        if (udp)
            atomic_fetch_add(&c.sum.served, 1);
        if (write_all(STDOUT_FILENO, buf, (size_t)k) < 0) {
            rc = 1;
            break;
        }
    }
    atomic_store(&c.quit, true);
    pthread_join(t, NULL);
    if (!udp && rc == 0)
        atomic_fetch_add(&c.sum.served, 1);
out:
    ex_summary_print(stderr, PROG, "completed", udp ? "datagrams" : "streams", &c.sum);
    if (c.fd >= 0 && c.fd != sock)
        tern_close(n.s, c.fd);
    if (sock >= 0)
        tern_close(n.s, sock);
    free(buf);
    ex_net_down(&n, true);
    return rc || atomic_load(&c.sum.errors) ? 1 : 0;
}
