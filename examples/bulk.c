/*
 * tern_bulk: a bulk-data server with a tiny line protocol, on a Tern
 * stack (threaded mode, blocking calls, a thread per connection).
 *
 *   tern_bulk LINK [--port P]        (port 7777 by default)
 *
 * Commands, one per line (LF or CRLF):
 *   lots N   answers exactly N bytes (N decimal, up to 2^40): byte i of
 *            the answer is (i + (i >> 8) + (i >> 16) + (i >> 24)) mod 256,
 *            i counted from 0 at the start of each answer, so a lost,
 *            repeated or reordered block of any length shows
 *   stat     answers "OK\n"
 *   q        the server closes the connection
 * Anything else answers "ERR ...\n"; a line longer than 255 bytes closes
 * the connection. The server runs until SIGINT or SIGTERM (SIGUSR1
 * prints the socket table) and prints a summary line on exit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

#define PROG "tern_bulk"
#define LINE_MAX_LEN 256
#define CHUNK 65536
#define LOTS_MAX (1ull << 40)

struct server {
    struct tern_stack *s;
    int listener;
    struct ex_workers workers;
    struct ex_summary sum;
};

struct conn {
    struct server *srv;
    int fd;
    char line[LINE_MAX_LEN];
    size_t len;
};

/* Send it all in ticks; -1 on an error or a stop. */
static int send_all(struct server *v, int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = tern_send(v->s, fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            atomic_fetch_add(&v->sum.bytes_out, (uint64_t)n);
        } else if ((n < 0 && errno != EAGAIN) || ex_stop) {
            return -1;
        }
    }
    return 0;
}

static int send_lots(struct server *v, int fd, uint64_t n, uint8_t *buf)
{
    for (uint64_t off = 0; off < n;) {
        size_t k = n - off < CHUNK ? (size_t)(n - off) : CHUNK;
        ex_pattern_fill(buf, k, off);
        if (send_all(v, fd, buf, k) < 0)
            return -1;
        off += k;
    }
    return 0;
}

/* One command. 1: go on, 0: close (q), -1: error. */
static int command(struct server *v, struct conn *c, char *line, uint8_t *buf)
{
    size_t len = strlen(line);
    if (len && line[len - 1] == '\r')
        line[--len] = 0;
    atomic_fetch_add(&v->sum.served, 1);
    if (strcmp(line, "q") == 0)
        return 0;
    if (strcmp(line, "stat") == 0)
        return send_all(v, c->fd, "OK\n", 3) < 0 ? -1 : 1;
    if (strncmp(line, "lots ", 5) == 0) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(line + 5, &end, 10);
        if (line[5] >= '0' && line[5] <= '9' && !*end && !errno && n <= LOTS_MAX)
            return send_lots(v, c->fd, n, buf) < 0 ? -1 : 1;
        const char *e = "ERR lots takes a byte count up to 2^40\n";
        return send_all(v, c->fd, e, strlen(e)) < 0 ? -1 : 1;
    }
    const char *e = "ERR unknown command (lots N, stat, q)\n";
    return send_all(v, c->fd, e, strlen(e)) < 0 ? -1 : 1;
}

static void *serve_conn(void *arg)
{
    struct conn *c = arg;
    struct server *v = c->srv;
    uint8_t *buf = malloc(CHUNK);
    char in[1024];
    ex_set_timeo(v->s, c->fd, SO_RCVTIMEO, EX_TICK_MS);
    ex_set_timeo(v->s, c->fd, SO_SNDTIMEO, EX_TICK_MS);
    int state = buf ? 1 : -1;
    while (state > 0 && !ex_stop) {
        ssize_t n = tern_recv(v->s, c->fd, in, sizeof(in), 0);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno != EAGAIN)
                state = -1;
            continue;
        }
        atomic_fetch_add(&v->sum.bytes_in, (uint64_t)n);
        for (ssize_t i = 0; i < n && state > 0; i++) {
            if (in[i] != '\n') {
                if (c->len == LINE_MAX_LEN - 1) {
                    const char *e = "ERR line too long\n";
                    send_all(v, c->fd, e, strlen(e));
                    state = -1;
                    break;
                }
                c->line[c->len++] = in[i];
                continue;
            }
            c->line[c->len] = 0;
            c->len = 0;
            state = command(v, c, c->line, buf);
        }
    }
    /* A peer that went away mid-answer is its own business; count it. */
    if (state < 0 && !ex_stop)
        atomic_fetch_add(&v->sum.errors, 1);
    tern_close(v->s, c->fd);
    free(buf);
    free(c);
    return NULL;
}

int main(int argc, char **argv)
{
    struct ex_link_opts lo = {0};
    uint16_t port = 7777;
    for (int i = 1; i < argc; i++) {
        int r = ex_link_opt(&lo, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            if (ex_parse_port("--port", argv[++i], &port) < 0)
                return 2;
        } else {
            fprintf(stderr, "usage: " PROG " " EX_LINK_USAGE " [--port P]\n");
            return 2;
        }
    }
    ex_signals();
    struct ex_net n;
    if (ex_net_up(&n, &lo) < 0)
        return 1;
    struct server *v = calloc(1, sizeof(*v));
    int rc = 1;
    if (!v)
        goto out;
    v->s = n.s;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int one = 1;
    v->listener = tern_socket(n.s, AF_INET, SOCK_STREAM, 0);
    if (v->listener < 0 ||
        tern_setsockopt(n.s, v->listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        tern_bind(n.s, v->listener, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        tern_listen(n.s, v->listener, 128) < 0 ||
        ex_set_timeo(n.s, v->listener, SO_RCVTIMEO, EX_TICK_MS) < 0) {
        perror(PROG ": listener");
        goto out;
    }
    printf(PROG ": serving lots/stat/q on port %u\n", port);
    fflush(stdout);
    while (!ex_stop) {
        if (ex_dump) {
            ex_dump = 0;
            tern_sockets_dump(n.s, stdout);
            fflush(stdout);
        }
        int fd = tern_accept(n.s, v->listener, NULL, NULL);
        if (fd < 0) {
            if (errno != EAGAIN)
                atomic_fetch_add(&v->sum.errors, 1);
            continue;
        }
        atomic_fetch_add(&v->sum.conns, 1);
        struct conn *c = calloc(1, sizeof(*c));
        if (!c || (c->srv = v, c->fd = fd, ex_workers_spawn(&v->workers, serve_conn, c) < 0)) {
            atomic_fetch_add(&v->sum.errors, 1);
            tern_close(n.s, fd);
            free(c);
        }
    }
    ex_workers_join_all(&v->workers);
    tern_close(n.s, v->listener);
    ex_summary_print(stdout, PROG, "answered", "commands", &v->sum);
    rc = 0;
out:
    free(v);
    ex_net_down(&n, true);
    return rc;
}
