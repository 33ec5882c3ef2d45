/*
 * The HTTP server's loop (http_core.h).
 *
 * Why one thread on an epoll set, not a pool of threads with blocking
 * calls: a keep-alive client holds its connection between requests, so a
 * pool of N threads serves at most N clients and the N+1st waits however
 * idle the others are; `wrk -c 100` or a hundred browsers would need a
 * hundred threads. An epoll set costs a small struct per connection and
 * no thread, and with Tern's tern_epoll a wait costs O(ready sockets).
 * Tern's stack runs on its own runtime thread anyway, so this one thread
 * only parses and copies. Level triggered: a connection that stopped for
 * EAGAIN is simply asked again, with no state to lose.
 *
 * A connection is reading a request head (EPOLLIN) or writing an answer
 * (EPOLLOUT): the answer is a header and maybe a file range, sent from a
 * scratch buffer filled with pread each time (what a send did not take
 * is read again next time). Requests pipelined behind the current one
 * wait in the input buffer and are served in order.
 */
#include "http_core.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SCRATCH (64 * 1024)
#define HDR_MAX 1024
#define LISTENER_TAG UINT32_MAX
#define ACCEPTS_PER_TURN 64

struct conn {
    int fd;
    uint32_t events;     /* what the epoll set watches for it */
    bool writing;
    bool close_after;
    uint64_t last_ms;    /* last progress */
    char in[HTTP_IN_MAX];
    size_t in_len;
    char hdr[HDR_MAX];
    size_t hdr_len, hdr_off;
    int file;            /* -1: no body from a file */
    uint64_t file_off, file_end;
};

struct server {
    const struct http_io *io;
    const struct http_config *cfg;
    struct http_stats *st;
    int ep;
    struct conn **conns;  /* by slot; the slot is the epoll data */
    int max;
    char *scratch;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- Parsing ---- */

static bool is_tchar(char c)
{
    return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Whether a comma-separated header value holds `token`. */
static bool has_token(const char *v, size_t len, const char *token)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i < len;) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t j = i;
        while (j < len && v[j] != ',')
            j++;
        size_t e = j;
        while (e > i && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - i == tl && strncasecmp(v + i, token, tl) == 0)
            return true;
        i = j;
    }
    return false;
}

long http_parse_request(const char *buf, size_t len, struct http_request *r)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end)
        return len >= HTTP_IN_MAX ? -1 : 0;
    size_t head = (size_t)(end - buf) + 4;
    if (head > HTTP_IN_MAX)
        return -1;
    memset(r, 0, sizeof(*r));
    /* Request line: method SP target SP HTTP/1.x CRLF (RFC 9112 3). */
    const char *p = buf, *eol = memmem(buf, head, "\r\n", 2);
    size_t i = 0;
    while (p + i < eol && is_tchar(p[i]) && i < sizeof(r->method) - 1)
        i++;
    if (i == 0 || p[i] != ' ')
        return -1;
    memcpy(r->method, p, i);
    p += i + 1;
    const char *sp = memchr(p, ' ', (size_t)(eol - p));
    if (!sp || sp == p || *p != '/' || (size_t)(sp - p) >= sizeof(r->target))
        return -1;
    for (const char *q = p; q < sp; q++)
        if ((unsigned char)*q <= ' ' || *q == 0x7f)
            return -1;
    memcpy(r->target, p, (size_t)(sp - p));
    p = sp + 1;
    if (eol - p != 8 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1'))
        return -1;
    r->minor = p[7] - '0';
    /* Header fields: name ":" value CRLF, no folding (RFC 9112 5). */
    bool conn_close = false, conn_keep = false;
    for (p = eol + 2; p < end + 2;) {
        eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p)
            return -1;
        for (const char *q = p; q < colon; q++)
            if (!is_tchar(*q))
                return -1;
        size_t nl = (size_t)(colon - p);
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        size_t vl = (size_t)(eol - v);
        for (size_t k = 0; k < vl; k++)
            if (v[k] == 0 || v[k] == '\r' || v[k] == '\n')
                return -1;
        if (nl == 10 && strncasecmp(p, "connection", nl) == 0) {
            conn_close |= has_token(v, vl, "close");
            conn_keep |= has_token(v, vl, "keep-alive");
        } else if (nl == 14 && strncasecmp(p, "content-length", nl) == 0) {
            char num[24];
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (vl == 0 || vl >= sizeof(num))
                return -1;
            memcpy(num, v, vl);
            num[vl] = 0;
            for (size_t k = 0; k < vl; k++)
                if (!isdigit((unsigned char)num[k]))
                    return -1;
            if (strtoull(num, NULL, 10) > 0)
                r->has_body = true;
        } else if (nl == 17 && strncasecmp(p, "transfer-encoding", nl) == 0) {
            r->has_body = true;
        }
        p = eol + 2;
    }
    r->keep_alive = r->minor == 1 ? !conn_close : (conn_keep && !conn_close);
    return (long)head;
}

/* The target as a path under the root: percent-decoded, query dropped,
 * no "." or ".." segment, "/" ending in index.html. 0, or -1 (bad). */
static int target_path(const char *target, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = target + 1; *p && *p != '?' && *p != '#'; p++) {
        char c = *p;
        if (c == '%') {
            if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
                return -1;
            char hex[3] = {p[1], p[2], 0};
            c = (char)strtol(hex, NULL, 16);
            if (c == 0)
                return -1;
            p += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = 0;
    /* Each segment: not empty in the middle, not "." or "..". */
    for (char *seg = out; *seg;) {
        char *slash = strchr(seg, '/');
        size_t sl = slash ? (size_t)(slash - seg) : strlen(seg);
        if ((sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.'))
            return -1;
        if (sl == 0 && slash)
            return -1;
        seg += sl + (slash ? 1 : 0);
    }
    if (o == 0 || out[o - 1] == '/') {
        const char *idx = "index.html";
        if (o + strlen(idx) + 1 > cap)
            return -1;
        strcpy(out + o, idx);
    }
    return 0;
}

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
        {".txt", "text/plain; charset=utf-8"}, {".css", "text/css"},
        {".js", "text/javascript"},            {".json", "application/json"},
        {".png", "image/png"},                 {".jpg", "image/jpeg"},
        {".svg", "image/svg+xml"},
    };
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (strcasecmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* ---- Answers ---- */

static void answer_status(struct server *v, struct conn *c, int code, const char *reason,
                          bool head_only, bool keep_alive, int minor)
{
    char body[64];
    int bl = snprintf(body, sizeof(body), "%d %s\n", code, reason);
    c->hdr_len = (size_t)snprintf(
        c->hdr, sizeof(c->hdr),
        "HTTP/1.1 %d %s\r\nServer: tern-http\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: %d\r\n%s%s\r\n%s",
        code, reason, bl, code == 501 ? "Allow: GET, HEAD\r\n" : "",
        !keep_alive ? "Connection: close\r\n" : minor == 0 ? "Connection: keep-alive\r\n" : "",
        head_only ? "" : body);
    c->hdr_off = 0;
    c->file = -1;
    c->close_after = !keep_alive;
    if (code == 404)
        v->st->status_404++;
    else if (code == 400)
        v->st->status_400++;
    else
        v->st->status_other++;
}

/* Turn one parsed request (or a malformed one: r NULL) into an answer. */
static void answer(struct server *v, struct conn *c, const struct http_request *r)
{
    v->st->requests++;
    if (!r) {
        answer_status(v, c, 400, "Bad Request", false, false, 1);
        return;
    }
    bool get = strcmp(r->method, "GET") == 0, head = strcmp(r->method, "HEAD") == 0;
    if (!get && !head) {
        answer_status(v, c, 501, "Not Implemented", false, false, r->minor);
        return;
    }
    if (r->has_body) { /* we read no request bodies: the framing is lost */
        answer_status(v, c, 400, "Bad Request", head, false, r->minor);
        return;
    }
    char path[HTTP_TARGET_MAX + 16];
    if (target_path(r->target, path, sizeof(path)) < 0) {
        answer_status(v, c, 400, "Bad Request", head, r->keep_alive, r->minor);
        return;
    }
    int fd = openat(v->cfg->rootfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat sb;
    if (fd >= 0 && (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))) {
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        answer_status(v, c, 404, "Not Found", head, r->keep_alive, r->minor);
        return;
    }
    c->hdr_len = (size_t)snprintf(
        c->hdr, sizeof(c->hdr),
        "HTTP/1.1 200 OK\r\nServer: tern-http\r\nContent-Type: %s\r\nContent-Length: %" PRIu64
        "\r\n%s\r\n",
        content_type(path), (uint64_t)sb.st_size,
        !r->keep_alive ? "Connection: close\r\n" : r->minor == 0 ? "Connection: keep-alive\r\n" : "");
    c->hdr_off = 0;
    c->close_after = !r->keep_alive;
    v->st->status_2xx++;
    if (head || sb.st_size == 0) {
        close(fd);
        c->file = -1;
        return;
    }
    c->file = fd;
    c->file_off = 0;
    c->file_end = (uint64_t)sb.st_size;
}

/* ---- Connections ---- */

static void conn_close(struct server *v, int slot)
{
    struct conn *c = v->conns[slot];
    if (c->file >= 0)
        close(c->file);
    v->io->ep_ctl(v->io->ctx, v->ep, EPOLL_CTL_DEL, c->fd, NULL);
    v->io->close(v->io->ctx, c->fd);
    free(c);
    v->conns[slot] = NULL;
}

static int watch(struct server *v, int slot, uint32_t events)
{
    struct conn *c = v->conns[slot];
    if (c->events == events)
        return 0;
    struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)slot};
    if (v->io->ep_ctl(v->io->ctx, v->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        return -1;
    c->events = events;
    return 0;
}

enum step { STEP_WAIT, STEP_DONE, STEP_CLOSE };

/* Send what the answer has left. */
static enum step flush_answer(struct server *v, struct conn *c)
{
    for (;;) {
        size_t n = 0;
        if (c->hdr_off < c->hdr_len) {
            n = c->hdr_len - c->hdr_off;
            memcpy(v->scratch, c->hdr + c->hdr_off, n);
        }
        if (c->file >= 0 && c->file_off < c->file_end) {
            uint64_t want = c->file_end - c->file_off;
            if (want > SCRATCH - n)
                want = SCRATCH - n;
            ssize_t r = pread(c->file, v->scratch + n, (size_t)want, (off_t)c->file_off);
            if (r <= 0) { /* the file shrank or broke: the framing cannot be kept */
                v->st->errors++;
                return STEP_CLOSE;
            }
            n += (size_t)r;
        }
        if (n == 0)
            return STEP_DONE;
        ssize_t s = v->io->send(v->io->ctx, c->fd, v->scratch, n);
        if (s < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return STEP_WAIT;
            /* The client went away mid-answer (EPIPE, ECONNRESET). */
            v->st->aborted++;
            return STEP_CLOSE;
        }
        v->st->bytes_out += (uint64_t)s;
        c->last_ms = mono_ms();
        size_t from_hdr = c->hdr_len - c->hdr_off;
        if ((size_t)s < from_hdr) {
            c->hdr_off += (size_t)s;
        } else {
            c->hdr_off = c->hdr_len;
            c->file_off += (uint64_t)s - from_hdr;
        }
    }
}

/* Move a connection as far as it goes without waiting. */
static enum step conn_step(struct server *v, struct conn *c)
{
    for (;;) {
        if (c->writing) {
            enum step st = flush_answer(v, c);
            if (st != STEP_DONE)
                return st;
            if (c->file >= 0)
                close(c->file);
            c->file = -1;
            c->writing = false;
            if (c->close_after)
                return STEP_CLOSE;
        }
        struct http_request r;
        long used = http_parse_request(c->in, c->in_len, &r);
        if (used != 0) {
            answer(v, c, used > 0 ? &r : NULL);
            if (used < 0) {
                c->in_len = 0;
            } else {
                memmove(c->in, c->in + used, c->in_len - (size_t)used);
                c->in_len -= (size_t)used;
            }
            c->writing = true;
            continue;
        }
        ssize_t n = v->io->recv(v->io->ctx, c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
        if (n > 0) {
            c->in_len += (size_t)n;
            v->st->bytes_in += (uint64_t)n;
            c->last_ms = mono_ms();
            continue;
        }
        if (n == 0)
            return STEP_CLOSE; /* the client closed between requests (or mid-head) */
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return STEP_WAIT;
        if (errno != ECONNRESET)
            v->st->errors++;
        return STEP_CLOSE;
    }
}

static void on_conn(struct server *v, int slot, uint32_t events)
{
    struct conn *c = v->conns[slot];
    if (!c)
        return; /* closed earlier in this batch */
    enum step st = conn_step(v, c);
    if (st == STEP_WAIT && (events & (EPOLLERR | EPOLLHUP)) && !c->writing) {
        /* Hung up with nothing more to read: nothing will come. */
        st = STEP_CLOSE;
    }
    if (st == STEP_WAIT && watch(v, slot, c->writing ? EPOLLOUT : EPOLLIN) < 0) {
        v->st->errors++;
        st = STEP_CLOSE;
    }
    if (st == STEP_CLOSE)
        conn_close(v, slot);
}

static void on_listener(struct server *v, int listener)
{
    for (int k = 0; k < ACCEPTS_PER_TURN; k++) {
        int fd = v->io->accept(v->io->ctx, listener);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
                v->st->errors++;
            return;
        }
        int slot = -1;
        for (int i = 0; i < v->max && slot < 0; i++)
            if (!v->conns[i])
                slot = i;
        struct conn *c = slot >= 0 ? malloc(sizeof(*c)) : NULL;
        if (!c) {
            v->st->conns_refused++;
            v->io->close(v->io->ctx, fd);
            continue;
        }
        c->fd = fd;
        c->events = EPOLLIN;
        c->writing = c->close_after = false;
        c->in_len = c->hdr_len = c->hdr_off = 0;
        c->file = -1;
        c->last_ms = mono_ms();
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)slot};
        if (v->io->ep_ctl(v->io->ctx, v->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            v->st->errors++;
            v->io->close(v->io->ctx, fd);
            free(c);
            continue;
        }
        v->conns[slot] = c;
        v->st->conns++;
        /* The request may be there already. */
        on_conn(v, slot, 0);
    }
}

int http_serve(const struct http_io *io, int listener, const struct http_config *cfg,
               struct http_stats *st)
{
    struct server v = {.io = io, .cfg = cfg, .st = st};
    v.max = cfg->max_conns > 0 ? cfg->max_conns : 1024;
    int idle = cfg->idle_timeout_ms > 0 ? cfg->idle_timeout_ms : 30000;
    v.conns = calloc((size_t)v.max, sizeof(*v.conns));
    v.scratch = malloc(SCRATCH);
    v.ep = io->ep_create(io->ctx);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = LISTENER_TAG};
    if (!v.conns || !v.scratch || v.ep < 0 ||
        io->ep_ctl(io->ctx, v.ep, EPOLL_CTL_ADD, listener, &ev) < 0) {
        int e = errno;
        if (v.ep >= 0)
            io->close(io->ctx, v.ep);
        free(v.conns);
        free(v.scratch);
        errno = e;
        return -1;
    }
    uint64_t next_sweep = mono_ms() + 1000;
    struct epoll_event evs[64];
    while (!*cfg->stop) {
        if (io->tick)
            io->tick(io->ctx);
        int n = io->ep_wait(io->ctx, v.ep, evs, 64, 200);
        if (n < 0 && errno != EINTR)
            st->errors++;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u32 == LISTENER_TAG)
                on_listener(&v, listener);
            else
                on_conn(&v, (int)evs[i].data.u32, evs[i].events);
        }
        uint64_t now = mono_ms();
        if (now >= next_sweep) {
            next_sweep = now + 1000;
            for (int i = 0; i < v.max; i++)
                if (v.conns[i] && now - v.conns[i]->last_ms > (uint64_t)idle)
                    conn_close(&v, i);
        }
    }
    for (int i = 0; i < v.max; i++)
        if (v.conns[i])
            conn_close(&v, i);
    io->close(io->ctx, v.ep);
    free(v.conns);
    free(v.scratch);
    return 0;
}
