/*
 * tern_echo: an echo server and client on a Tern stack (threaded mode,
 * blocking calls: a thread per connection).
 *
 *   tern_echo server LINK [--port P]
 *       TCP echo (every byte back, until the client closes) and UDP echo
 *       (every datagram back to its sender) on port P (default 7), until
 *       SIGINT or SIGTERM. SIGUSR1 prints the socket table.
 *   tern_echo client LINK --to A[:P] [--bytes N] [--udp]
 *       TCP: sends N bytes (default 1000000) of the pattern of common.h
 *       while reading the echo, shuts down its side, checks every byte
 *       and the end of stream. --udp: datagrams of 1, 100, 1000, 1472
 *       and 8000 bytes (fragmented), each echo checked.
 *   tern_echo pipe [--bytes N]
 *       Both in one process: a server stack and a client stack on the
 *       two ends of a tern_pipe, no TAP device needed.
 *
 * LINK is --tap NAME --addr A/LEN [--gw G] [--pcap FILE] (common.h).
 * Exit status 0 when everything echoed matched (client, pipe) or the
 * server stopped cleanly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

#define PROG "tern_echo"
#define IO_CHUNK 16384

/* ---- Server ---- */

struct server {
    struct tern_stack *s;
    uint16_t port;
    int listener, udp;
    _Atomic bool quit;     /* pipe mode: the client is done */
    pthread_t acceptor, udp_thread;
    struct ex_workers workers;
    struct ex_summary sum;
};

struct conn {
    struct server *srv;
    int fd;
};

static bool stopping(struct server *v)
{
    return ex_stop || atomic_load(&v->quit);
}

/* Send it all, blocking in ticks so that a stop is seen. */
static int send_all(struct server *v, int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = tern_send(v->s, fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            atomic_fetch_add(&v->sum.bytes_out, (uint64_t)n);
        } else if (n < 0 && errno != EAGAIN) {
            return -1;
        } else if (stopping(v)) {
            return -1;
        }
    }
    return 0;
}

static void *serve_conn(void *arg)
{
    struct conn *c = arg;
    struct server *v = c->srv;
    uint8_t *buf = malloc(IO_CHUNK);
    ex_set_timeo(v->s, c->fd, SO_RCVTIMEO, EX_TICK_MS);
    ex_set_timeo(v->s, c->fd, SO_SNDTIMEO, EX_TICK_MS);
    bool failed = !buf;
    while (!failed && !stopping(v)) {
        ssize_t n = tern_recv(v->s, c->fd, buf, IO_CHUNK, 0);
        if (n == 0)
            break;
        if (n < 0) {
            failed = errno != EAGAIN;
            continue;
        }
        atomic_fetch_add(&v->sum.bytes_in, (uint64_t)n);
        failed = send_all(v, c->fd, buf, (size_t)n) < 0 && !stopping(v);
    }
    if (failed)
        atomic_fetch_add(&v->sum.errors, 1);
    else
        atomic_fetch_add(&v->sum.served, 1);
    tern_close(v->s, c->fd);
    free(buf);
    free(c);
    return NULL;
}

static void *accept_loop(void *arg)
{
    struct server *v = arg;
    while (!stopping(v)) {
        int fd = tern_accept(v->s, v->listener, NULL, NULL);
        if (fd < 0) {
            if (errno != EAGAIN)
                atomic_fetch_add(&v->sum.errors, 1);
            continue;
        }
        atomic_fetch_add(&v->sum.conns, 1);
        struct conn *c = malloc(sizeof(*c));
        if (!c || (c->srv = v, c->fd = fd, ex_workers_spawn(&v->workers, serve_conn, c) < 0)) {
            atomic_fetch_add(&v->sum.errors, 1);
            tern_close(v->s, fd);
            free(c);
        }
    }
    ex_workers_join_all(&v->workers);
    return NULL;
}

static void *udp_loop(void *arg)
{
    struct server *v = arg;
    static uint8_t buf[65536]; /* this thread's alone */
    while (!stopping(v)) {
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n = tern_recvfrom(v->s, v->udp, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
        if (n < 0) {
            if (errno != EAGAIN)
                atomic_fetch_add(&v->sum.errors, 1);
            continue;
        }
        atomic_fetch_add(&v->sum.bytes_in, (uint64_t)n);
        if (tern_sendto(v->s, v->udp, buf, (size_t)n, 0, (struct sockaddr *)&from, fl) == n) {
            atomic_fetch_add(&v->sum.bytes_out, (uint64_t)n);
            atomic_fetch_add(&v->sum.served, 1);
        } else {
            atomic_fetch_add(&v->sum.errors, 1);
        }
    }
    return NULL;
}

static int server_start(struct server *v, struct tern_stack *s, uint16_t port)
{
    memset(v, 0, sizeof(*v));
    v->s = s;
    v->port = port;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int one = 1;
    v->listener = tern_socket(s, AF_INET, SOCK_STREAM, 0);
    v->udp = tern_socket(s, AF_INET, SOCK_DGRAM, 0);
    if (v->listener < 0 || v->udp < 0 ||
        tern_setsockopt(s, v->listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        tern_bind(s, v->listener, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        tern_listen(s, v->listener, 128) < 0 ||
        tern_bind(s, v->udp, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        ex_set_timeo(s, v->listener, SO_RCVTIMEO, EX_TICK_MS) < 0 ||
        ex_set_timeo(s, v->udp, SO_RCVTIMEO, EX_TICK_MS) < 0) {
        perror(PROG ": server sockets");
        return -1;
    }
    if (pthread_create(&v->acceptor, NULL, accept_loop, v) != 0)
        return -1;
    if (pthread_create(&v->udp_thread, NULL, udp_loop, v) != 0) {
        atomic_store(&v->quit, true);
        pthread_join(v->acceptor, NULL);
        return -1;
    }
    return 0;
}

static void server_stop(struct server *v)
{
    atomic_store(&v->quit, true);
    pthread_join(v->acceptor, NULL);
    pthread_join(v->udp_thread, NULL);
    tern_close(v->s, v->listener);
    tern_close(v->s, v->udp);
}

/* ---- Client ---- */

struct sender {
    struct tern_stack *s;
    int fd;
    uint64_t bytes;
    int err;
};

static void *send_pattern(void *arg)
{
    struct sender *sd = arg;
    uint8_t buf[IO_CHUNK];
    uint64_t off = 0;
    while (off < sd->bytes && !ex_stop) {
        size_t n = sd->bytes - off < sizeof(buf) ? (size_t)(sd->bytes - off) : sizeof(buf);
        ex_pattern_fill(buf, n, off);
        ssize_t r = tern_send(sd->s, sd->fd, buf, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EAGAIN)
            continue;
        if (r < 0) {
            sd->err = errno;
            return NULL;
        }
        off += (uint64_t)r;
    }
    if (tern_shutdown(sd->s, sd->fd, SHUT_WR) < 0)
        sd->err = errno;
    return NULL;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* TCP: N bytes there and back, every byte checked. 0 or -1. */
static int client_tcp(struct tern_stack *s, const struct sockaddr_in *to, uint64_t bytes,
                      struct ex_summary *sum)
{
    int fd = tern_socket(s, AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || ex_set_timeo(s, fd, SO_SNDTIMEO, 5000) < 0 ||
        tern_connect(s, fd, (const struct sockaddr *)to, sizeof(*to)) < 0) {
        perror(PROG ": connect");
        if (fd >= 0)
            tern_close(s, fd);
        atomic_fetch_add(&sum->errors, 1);
        return -1;
    }
    atomic_fetch_add(&sum->conns, 1);
    ex_set_timeo(s, fd, SO_SNDTIMEO, EX_TICK_MS);
    ex_set_timeo(s, fd, SO_RCVTIMEO, EX_TICK_MS);
    struct sender sd = {.s = s, .fd = fd, .bytes = bytes};
    pthread_t t;
    if (pthread_create(&t, NULL, send_pattern, &sd) != 0) {
        tern_close(s, fd);
        return -1;
    }
    uint8_t buf[IO_CHUNK];
    uint64_t got = 0, last = mono_ms();
    int rc = 0;
    for (;;) {
        if (ex_stop || mono_ms() - last > 10000) {
            fprintf(stderr, PROG ": %s after %llu bytes\n",
                    ex_stop ? "stopped" : "no data for 10 s", (unsigned long long)got);
            rc = -1;
            break;
        }
        ssize_t n = tern_recv(s, fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EAGAIN)
            continue;
        if (n < 0) {
            perror(PROG ": recv");
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        last = mono_ms();
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != ex_pattern_byte(got + (uint64_t)i)) {
                fprintf(stderr, PROG ": byte %llu differs\n",
                        (unsigned long long)(got + (uint64_t)i));
                rc = -1;
                break;
            }
        }
        got += (uint64_t)n;
        atomic_fetch_add(&sum->bytes_in, (uint64_t)n);
        if (rc)
            break;
    }
    if (rc) /* the sender may be blocked on a full window: unblock it */
        tern_shutdown(s, fd, SHUT_RDWR);
    pthread_join(t, NULL);
    atomic_fetch_add(&sum->bytes_out, bytes);
    if (sd.err) {
        fprintf(stderr, PROG ": send: %s\n", strerror(sd.err));
        rc = -1;
    }
    if (!rc && got != bytes) {
        fprintf(stderr, PROG ": echo ended after %llu of %llu bytes\n",
                (unsigned long long)got, (unsigned long long)bytes);
        rc = -1;
    }
    tern_close(s, fd);
    if (rc) {
        atomic_fetch_add(&sum->errors, 1);
        return -1;
    }
    atomic_fetch_add(&sum->served, 1);
    printf(PROG ": TCP echo of %llu bytes matches\n", (unsigned long long)bytes);
    return 0;
}

/* UDP: a few datagram sizes, each echo checked (three tries each). */
static int client_udp(struct tern_stack *s, const struct sockaddr_in *to, struct ex_summary *sum)
{
    static const size_t sizes[] = {1, 100, 1000, 1472, 8000};
    int fd = tern_socket(s, AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || tern_connect(s, fd, (const struct sockaddr *)to, sizeof(*to)) < 0 ||
        ex_set_timeo(s, fd, SO_RCVTIMEO, 1000) < 0) {
        perror(PROG ": udp socket");
        return -1;
    }
    static uint8_t out[8000], in[8001];
    int bad = 0;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]) && !ex_stop; k++) {
        ex_pattern_fill(out, sizes[k], k * 1000);
        bool ok = false;
        for (int attempt = 0; attempt < 3 && !ok && !ex_stop; attempt++) {
            if (tern_send(s, fd, out, sizes[k], 0) < 0)
                continue;
            atomic_fetch_add(&sum->bytes_out, sizes[k]);
            ssize_t n = tern_recv(s, fd, in, sizeof(in), 0);
            if (n < 0)
                continue;
            atomic_fetch_add(&sum->bytes_in, (uint64_t)n);
            ok = (size_t)n == sizes[k] && memcmp(in, out, sizes[k]) == 0;
            if (!ok)
                break; /* a wrong echo is not a loss: do not retry */
        }
        printf(PROG ": UDP echo of %zu bytes %s\n", sizes[k], ok ? "matches" : "FAILED");
        if (ok)
            atomic_fetch_add(&sum->served, 1);
        else
            atomic_fetch_add(&sum->errors, 1), bad++;
    }
    tern_close(s, fd);
    return bad || ex_stop ? -1 : 0;
}

/* ---- Modes ---- */

static int usage(void)
{
    fprintf(stderr,
            "usage: " PROG " server " EX_LINK_USAGE " [--port P]\n"
            "       " PROG " client " EX_LINK_USAGE " --to A[:P] [--bytes N] [--udp]\n"
            "       " PROG " pipe [--bytes N]\n");
    return 2;
}

static int run_server(struct ex_net *n, uint16_t port)
{
    struct server *v = calloc(1, sizeof(*v));
    if (!v || server_start(v, n->s, port) < 0) {
        free(v);
        return 1;
    }
    printf(PROG ": serving TCP and UDP echo on port %u\n", port);
    fflush(stdout);
    while (!ex_stop) {
        struct timespec tick = {.tv_nsec = 50 * 1000000L};
        nanosleep(&tick, NULL);
        if (ex_dump) {
            ex_dump = 0;
            tern_sockets_dump(n->s, stdout);
            fflush(stdout);
        }
    }
    server_stop(v);
    ex_summary_print(stdout, PROG, "served", "connections and datagrams", &v->sum);
    free(v);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    const char *mode = argv[1];
    struct ex_link_opts lo = {0};
    uint16_t port = 7;
    const char *to_str = NULL;
    uint64_t bytes = 1000000;
    bool udp = false;
    for (int i = 2; i < argc; i++) {
        int r = ex_link_opt(&lo, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        unsigned long long v;
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            if (ex_parse_port("--port", argv[++i], &port) < 0)
                return 2;
        } else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) {
            to_str = argv[++i];
        } else if (strcmp(argv[i], "--bytes") == 0 && i + 1 < argc) {
            if (ex_parse_num("--bytes", argv[++i], 0, UINT64_MAX, &v) < 0)
                return 2;
            bytes = v;
        } else if (strcmp(argv[i], "--udp") == 0) {
            udp = true;
        } else {
            return usage();
        }
    }
    ex_signals();

    if (strcmp(mode, "server") == 0) {
        struct ex_net n;
        if (ex_net_up(&n, &lo) < 0)
            return 1;
        int rc = run_server(&n, port);
        ex_net_down(&n, true);
        return rc;
    }
    if (strcmp(mode, "client") == 0) {
        struct sockaddr_in to;
        if (!to_str || ex_parse_addr_port(to_str, 7, &to) < 0)
            return usage();
        struct ex_net n;
        if (ex_net_up(&n, &lo) < 0)
            return 1;
        struct ex_summary sum = {0};
        int rc = udp ? client_udp(n.s, &to, &sum) : client_tcp(n.s, &to, bytes, &sum);
        ex_summary_print(stdout, PROG, "completed", udp ? "datagram echoes" : "TCP echoes", &sum);
        ex_net_down(&n, true);
        return rc ? 1 : 0;
    }
    if (strcmp(mode, "pipe") == 0) {
        struct tern_link *la, *lb;
        if (tern_pipe_new(NULL, &la, &lb) < 0) {
            perror(PROG ": tern_pipe_new");
            return 1;
        }
        struct in_addr ca = {.s_addr = htonl(0xc0000201)}, sa = {.s_addr = htonl(0xc0000202)};
        struct ex_net cn = {0}, sn = {0};
        int rc = 1;
        struct server *v = calloc(1, sizeof(*v));
        if (v && ex_net_up_link(&cn, la, ca, 24, 1) == 0 && ex_net_up_link(&sn, lb, sa, 24, 2) == 0 &&
            server_start(v, sn.s, port) == 0) {
            struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = sa};
            struct ex_summary sum = {0};
            printf(PROG ": client 192.0.2.1 and server 192.0.2.2 on a tern_pipe\n");
            rc = client_tcp(cn.s, &to, bytes, &sum) | client_udp(cn.s, &to, &sum) ? 1 : 0;
            server_stop(v);
            ex_summary_print(stdout, PROG " client", "completed", "echoes", &sum);
            ex_summary_print(stdout, PROG " server", "served", "connections and datagrams", &v->sum);
        }
        free(v);
        ex_net_down(&cn, false);
        ex_net_down(&sn, false);
        tern_link_free(la);
        tern_link_free(lb);
        return rc;
    }
    return usage();
}
