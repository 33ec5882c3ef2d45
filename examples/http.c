/*
 * tern_http: an HTTP/1.1 static file server on a Tern stack in threaded
 * mode: the stack's runtime thread drives the TAP link and the timers,
 * and one application thread serves every connection from a tern_epoll
 * set (why one thread and an epoll set rather than a pool of blocking
 * threads: see http_core.c, which holds the loop and the parser).
 *
 *   tern_http LINK [--port P] [--root DIR] [--max-conns N] [--idle-ms MS]
 *             [--owned] [--counters]
 *
 * --owned runs the stack in owned mode instead: the serving thread is the
 * only thread, and its wait polls the stack and sleeps in poll(2) on the
 * TAP descriptor until a frame or the stack's next deadline. No hand-over
 * between threads per request: on a machine whose cores are busy this
 * serves small pages faster (docs/bench.md).
 *
 * Serves the regular files under DIR (default: the current directory)
 * on port P (default 80): GET and HEAD, keep-alive, Content-Length, 404
 * for a missing file, 400 for a malformed request. Runs until SIGINT or
 * SIGTERM; SIGUSR1 prints the stack's socket table (tern_sockets_dump).
 * On exit: one summary line, then with --counters the stack's non-zero
 * counters.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "http_core.h"

#define PROG "tern_http"

struct server {
    struct tern_stack *s;
    int linkfd; /* owned mode: the TAP descriptor to sleep on; else -1 */
};

static int t_accept(void *ctx, int l)
{
    struct tern_stack *s = ((struct server *)ctx)->s;
    int fd = tern_accept4(s, l, NULL, NULL, SOCK_NONBLOCK);
    if (fd >= 0) {
        int one = 1; /* an answer is one send: no reason to hold its tail */
        tern_setsockopt(s, fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return fd;
}

static ssize_t t_recv(void *ctx, int fd, void *buf, size_t len)
{
    return tern_recv(((struct server *)ctx)->s, fd, buf, len, 0);
}

static ssize_t t_send(void *ctx, int fd, const void *buf, size_t len)
{
    return tern_send(((struct server *)ctx)->s, fd, buf, len, MSG_NOSIGNAL);
}

static int t_close(void *ctx, int fd)
{
    return tern_close(((struct server *)ctx)->s, fd);
}

static int t_ep_create(void *ctx)
{
    return tern_epoll_create(((struct server *)ctx)->s);
}

static int t_ep_ctl(void *ctx, int ep, int op, int fd, struct epoll_event *ev)
{
    return tern_epoll_ctl(((struct server *)ctx)->s, ep, op, fd, ev);
}

static int t_ep_wait(void *ctx, int ep, struct epoll_event *evs, int max, int timeout_ms)
{
    return tern_epoll_wait(((struct server *)ctx)->s, ep, evs, max, timeout_ms);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * TERN_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Owned mode: the loop's wait is where the stack runs. It is polled on
 * every turn, not only when no socket is ready, so that a socket that
 * stays ready (a long answer waiting for room) cannot starve the link;
 * a poll with nothing to read costs one read(2) that fails. */
static int t_ep_wait_owned(void *ctx, int ep, struct epoll_event *evs, int max, int timeout_ms)
{
    struct server *sv = ctx;
    for (bool slept = false;; slept = true) {
        tern_stack_poll(sv->s, mono_ns());
        int n = tern_epoll_wait(sv->s, ep, evs, max, 0);
        if (n != 0 || slept)
            return n;
        uint64_t now = mono_ns(), deadline = tern_stack_next_deadline(sv->s);
        int ms = timeout_ms; /* < 0: no cap but the deadline */
        if (deadline <= now)
            ms = 0;
        else if (deadline != TERN_TIME_NEVER) {
            uint64_t until = (deadline - now + TERN_NS_PER_MS - 1) / TERN_NS_PER_MS;
            if (timeout_ms < 0 || until < (uint64_t)timeout_ms)
                ms = until < INT_MAX ? (int)until : INT_MAX;
        }
        struct pollfd pfd = {.fd = sv->linkfd, .events = POLLIN};
        if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
            return -1;
    }
}

static void t_tick(void *ctx)
{
    if (ex_dump) {
        ex_dump = 0;
        printf(PROG ": socket table\n");
        tern_sockets_dump(((struct server *)ctx)->s, stdout);
        fflush(stdout);
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: " PROG " " EX_LINK_USAGE
                    " [--port P] [--root DIR] [--max-conns N] [--idle-ms MS] [--owned]"
                    " [--counters]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct ex_link_opts lo = {0};
    uint16_t port = 80;
    const char *root = ".";
    struct http_config cfg = {.stop = &ex_stop};
    bool counters = false;
    for (int i = 1; i < argc; i++) {
        int r = ex_link_opt(&lo, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        unsigned long long v;
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            if (ex_parse_port("--port", argv[++i], &port) < 0)
                return 2;
        } else if (strcmp(argv[i], "--root") == 0 && i + 1 < argc) {
            root = argv[++i];
        } else if (strcmp(argv[i], "--max-conns") == 0 && i + 1 < argc) {
            if (ex_parse_num("--max-conns", argv[++i], 1, 1 << 20, &v) < 0)
                return 2;
            cfg.max_conns = (int)v;
        } else if (strcmp(argv[i], "--idle-ms") == 0 && i + 1 < argc) {
            if (ex_parse_num("--idle-ms", argv[++i], 1, 86400000, &v) < 0)
                return 2;
            cfg.idle_timeout_ms = (int)v;
        } else if (strcmp(argv[i], "--counters") == 0) {
            counters = true;
        } else if (strcmp(argv[i], "--owned") == 0) {
            lo.owned = true;
        } else {
            return usage();
        }
    }
    cfg.rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cfg.rootfd < 0) {
        fprintf(stderr, PROG ": %s: %s\n", root, strerror(errno));
        return 1;
    }
    ex_signals();
    struct ex_net n;
    if (ex_net_up(&n, &lo) < 0) {
        close(cfg.rootfd);
        return 1;
    }
    int rc = 1;
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int l = tern_socket(n.s, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (l < 0 || tern_setsockopt(n.s, l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        tern_bind(n.s, l, (struct sockaddr *)&a, sizeof(a)) < 0 || tern_listen(n.s, l, 1024) < 0) {
        perror(PROG ": listener");
        goto out;
    }
    printf(PROG ": serving %s on port %u (%s mode)\n", root, port, lo.owned ? "owned" : "threaded");
    fflush(stdout);
    struct server sv = {.s = n.s, .linkfd = lo.owned ? tern_link_pollfd(n.link) : -1};
    struct http_io io = {.ctx = &sv, .accept = t_accept, .recv = t_recv, .send = t_send,
                         .close = t_close, .ep_create = t_ep_create, .ep_ctl = t_ep_ctl,
                         .ep_wait = lo.owned ? t_ep_wait_owned : t_ep_wait, .tick = t_tick};
    struct http_stats st = {0};
    if (http_serve(&io, l, &cfg, &st) < 0) {
        perror(PROG ": serve");
        goto out;
    }
    struct ex_summary sum = {0};
    atomic_store(&sum.served, st.requests);
    atomic_store(&sum.bytes_in, st.bytes_in);
    atomic_store(&sum.bytes_out, st.bytes_out);
    atomic_store(&sum.conns, st.conns);
    atomic_store(&sum.errors, st.errors);
    char what[160];
    snprintf(what, sizeof(what),
             "requests (%llu 2xx, %llu 404, %llu 400, %llu other; %llu aborted by the client, "
             "%llu connections refused)",
             (unsigned long long)st.status_2xx, (unsigned long long)st.status_404,
             (unsigned long long)st.status_400, (unsigned long long)st.status_other,
             (unsigned long long)st.aborted, (unsigned long long)st.conns_refused);
    ex_summary_print(stdout, PROG, "served", what, &sum);
    if (counters) {
        printf(PROG ": counters\n");
        tern_counters_dump(n.s, stdout, true);
    }
    rc = 0;
out:
    if (l >= 0)
        tern_close(n.s, l);
    ex_net_down(&n, true);
    close(cfg.rootfd);
    return rc;
}
