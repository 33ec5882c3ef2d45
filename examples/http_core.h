/*
 * The HTTP/1.1 static file server's loop, written against a table of
 * socket calls so that the same code (same loop, same parsing, same file
 * reads) runs on Tern sockets (examples/http.c) and on kernel sockets
 * (bench/http_kernel.c, the benchmark's twin).
 *
 * One thread, one epoll set of non-blocking sockets, level triggered
 * (see http_core.c for why). Serves GET and HEAD of regular files under
 * a directory, keep-alive, Content-Length; 404 for a missing file, 400
 * for a malformed request (and a request with a body), 501 for other
 * methods.
 */
#ifndef TERN_EXAMPLES_HTTP_CORE_H
#define TERN_EXAMPLES_HTTP_CORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/types.h>

/* The socket calls, Tern's or the kernel's; each returns what the
 * POSIX call does (-1 and errno). */
struct http_io {
    void *ctx;
    /* A non-blocking connection from the listener; EAGAIN when none. */
    int (*accept)(void *ctx, int listener);
    ssize_t (*recv)(void *ctx, int fd, void *buf, size_t len);
    ssize_t (*send)(void *ctx, int fd, const void *buf, size_t len);
    int (*close)(void *ctx, int fd);
    int (*ep_create)(void *ctx);
    int (*ep_ctl)(void *ctx, int ep, int op, int fd, struct epoll_event *ev);
    int (*ep_wait)(void *ctx, int ep, struct epoll_event *evs, int max, int timeout_ms);
    /* Called once per turn of the loop (at least every 200 ms); may be
     * NULL. */
    void (*tick)(void *ctx);
};

struct http_config {
    int rootfd;                   /* the served directory, open */
    int max_conns;                /* connections at once (default 1024); more are closed */
    int idle_timeout_ms;          /* a connection with no progress this long is closed
                                   * (default 30000) */
    atomic_int *stop;             /* the loop ends when *stop is set (by a signal
                                   * handler: a lock-free atomic) */
};

/* Counted by the loop's thread only. */
struct http_stats {
    uint64_t requests;
    uint64_t status_2xx, status_404, status_400, status_other;
    uint64_t bytes_in, bytes_out;
    uint64_t conns, conns_refused;
    uint64_t aborted;   /* the client went away mid-response */
    uint64_t errors;    /* unexpected failures of calls */
};

/* Serve `listener` (listening, non-blocking) until *cfg->stop. 0, or -1
 * with errno when the loop could not start. */
int http_serve(const struct http_io *io, int listener, const struct http_config *cfg,
               struct http_stats *st);

/* ---- The parts, for tests ---- */

#define HTTP_IN_MAX 8192      /* request head limit */
#define HTTP_TARGET_MAX 2048

struct http_request {
    char method[16];
    char target[HTTP_TARGET_MAX];
    int minor;          /* HTTP/1.minor */
    bool keep_alive;    /* after this answer */
    bool has_body;      /* Content-Length > 0 or Transfer-Encoding */
};

/* One request head from buf: its length (through the empty line), 0 if
 * incomplete, -1 if malformed (or longer than HTTP_IN_MAX). */
long http_parse_request(const char *buf, size_t len, struct http_request *r);

#endif
