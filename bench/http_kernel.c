/*
 * tern_http_kernel: the HTTP example's twin on kernel sockets, for the
 * HTTP benchmark (bench/http_bench.sh): the same loop, parser and file
 * reads (examples/http_core.c), one thread on a kernel epoll set, so
 * that the two differ only in the TCP/IP stack under them.
 *
 *   tern_http_kernel --addr A --port P --root DIR
 *
 * A must be a loopback address (the benchmark runs it inside its own
 * network namespace, on that namespace's 127.0.0.1). Runs until SIGINT
 * or SIGTERM and prints the same summary numbers as tern_http.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_core.h"

static atomic_int stop;

static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

static int k_accept(void *ctx, int l)
{
    (void)ctx;
    int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
        int one = 1; /* as tern_http does */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return fd;
}

static ssize_t k_recv(void *ctx, int fd, void *buf, size_t len)
{
    (void)ctx;
    return recv(fd, buf, len, 0);
}

static ssize_t k_send(void *ctx, int fd, const void *buf, size_t len)
{
    (void)ctx;
    return send(fd, buf, len, MSG_NOSIGNAL);
}

static int k_close(void *ctx, int fd)
{
    (void)ctx;
    return close(fd);
}

static int k_ep_create(void *ctx)
{
    (void)ctx;
    return epoll_create1(EPOLL_CLOEXEC);
}

static int k_ep_ctl(void *ctx, int ep, int op, int fd, struct epoll_event *ev)
{
    (void)ctx;
    return epoll_ctl(ep, op, fd, ev);
}

static int k_ep_wait(void *ctx, int ep, struct epoll_event *evs, int max, int timeout_ms)
{
    (void)ctx;
    return epoll_wait(ep, evs, max, timeout_ms);
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1", *root = ".";
    int port = 8080;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--addr") == 0 && i + 1 < argc)
            addr = argv[++i];
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
            root = argv[++i];
        else {
            fprintf(stderr, "usage: tern_http_kernel --addr A --port P --root DIR\n");
            return 2;
        }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &a.sin_addr) != 1 || (ntohl(a.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "tern_http_kernel: --addr must be a loopback address\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    struct http_config cfg = {.stop = &stop};
    cfg.rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cfg.rootfd < 0) {
        perror(root);
        return 1;
    }
    int one = 1;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1024) < 0) {
        perror("tern_http_kernel: listener");
        return 1;
    }
    printf("tern_http_kernel: serving %s on %s:%d\n", root, addr, port);
    fflush(stdout);
    struct http_io io = {.accept = k_accept, .recv = k_recv, .send = k_send, .close = k_close,
                         .ep_create = k_ep_create, .ep_ctl = k_ep_ctl, .ep_wait = k_ep_wait};
    struct http_stats st = {0};
    int rc = http_serve(&io, l, &cfg, &st);
    close(l);
    close(cfg.rootfd);
    if (rc < 0) {
        perror("tern_http_kernel: serve");
        return 1;
    }
    printf("tern_http_kernel: served %llu requests (%llu 2xx, %llu 404, %llu 400, %llu other; "
           "%llu aborted by the client), %llu bytes in, %llu bytes out, %llu connections, "
           "%llu errors\n",
           (unsigned long long)st.requests, (unsigned long long)st.status_2xx,
           (unsigned long long)st.status_404, (unsigned long long)st.status_400,
           (unsigned long long)st.status_other, (unsigned long long)st.aborted,
           (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out,
           (unsigned long long)st.conns, (unsigned long long)st.errors);
    return 0;
}
