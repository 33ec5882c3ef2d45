/* Readiness delivery: see events.h. */
#include "runtime/events.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/stack.h"
#include "transport/tcp/tcp.h"

struct tern_sock_ext *tern_sock_ext(struct tern_socket *so)
{
    if (so->ext)
        return so->ext;
    struct tern_sock_ext *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    tern_list_init(&x->waiters);
    tern_list_init(&x->epitems);
    x->evfd = -1;
    so->ext = x;
    return x;
}

uint64_t tern_sock_rcvtimeo(const struct tern_socket *so)
{
    return so->ext ? so->ext->rcvtimeo_ns : 0;
}

uint64_t tern_sock_sndtimeo(const struct tern_socket *so)
{
    return so->ext ? so->ext->sndtimeo_ns : 0;
}

void tern_sock_ext_free(struct tern_stack *s, struct tern_socket *so)
{
    struct tern_sock_ext *x = so->ext;
    if (!x)
        return;
    TERN_ASSERT(s, tern_list_empty(&x->epitems),
                "socket #%llu freed while an epoll set still watches it",
                (unsigned long long)so->id);
    if (x->ep)
        tern_epoll_free(s, x->ep);
    if (x->evfd >= 0)
        close(x->evfd);
    free(x);
    so->ext = NULL;
}

void tern_sock_pollfd_close(struct tern_socket *so)
{
    struct tern_sock_ext *x = so->ext;
    if (!x || x->evfd < 0)
        return;
    close(x->evfd);
    x->evfd = -1;
    x->evfd_on = false;
}

void tern_sock_touch(struct tern_stack *s, struct tern_socket *so)
{
    if (!so->ext || so->dirty)
        return;
    if (s->dirty_n == s->dirty_cap) {
        uint32_t cap = s->dirty_cap ? s->dirty_cap * 2 : 64;
        struct tern_socket **d = realloc(s->dirty, cap * sizeof(*d));
        if (!d) {
            /* No room to remember it: look at every socket next time. */
            s->dirty_all = true;
            return;
        }
        s->dirty = d;
        s->dirty_cap = cap;
    }
    so->dirty = true;
    s->dirty[s->dirty_n++] = so;
}

static short dgram_mask(const struct tern_socket *so)
{
    short r = POLLOUT | POLLWRNORM; /* datagrams leave at once: always writable */
    if (!tern_list_empty(&tern_sock_dg_const(so)->rcvq) || so->shut_rd)
        r |= POLLIN | POLLRDNORM;
    if (so->so_error)
        r |= POLLERR;
    if (so->shut_rd && so->shut_wr)
        r |= POLLHUP;
    return r;
}

short tern_sock_mask(const struct tern_socket *so)
{
    switch (so->kind) {
    case SOCK_KIND_TCP:
        return tern_tcp_poll((struct tern_socket *)so);
    case SOCK_KIND_EPOLL:
        return so->ext && tern_epoll_has_ready(so->ext->ep) ? (POLLIN | POLLRDNORM) : 0;
    default:
        return dgram_mask(so);
    }
}

static void wake_waiters(struct tern_sock_ext *x)
{
    struct tern_list *it;
    tern_list_for_each(it, &x->waiters)
        pthread_cond_signal(tern_container_of(it, struct tern_waiter, node)->cond);
}

static void deliver(struct tern_stack *s, struct tern_socket *so)
{
    struct tern_sock_ext *x = so->ext;
    /* Waiters re-check for themselves: a change they do not care for
     * costs a wake-up, a missed one would cost a hang. */
    wake_waiters(x);
    if (so->life == SOCK_LIFE_DEAD || so->handle < 0)
        return;
    short mask = tern_sock_mask(so);
    if (x->evfd >= 0) {
        bool want = (mask & (x->evfd_events | POLLERR | POLLHUP)) != 0;
        if (want && !x->evfd_on) {
            uint64_t one = 1;
            x->evfd_on = write(x->evfd, &one, sizeof(one)) == sizeof(one);
        } else if (!want && x->evfd_on) {
            uint64_t n;
            x->evfd_on = read(x->evfd, &n, sizeof(n)) != sizeof(n);
        }
    }
    if (!tern_list_empty(&x->epitems))
        tern_epoll_socket_changed(s, so, mask);
}

void tern_events_run(struct tern_stack *s)
{
    if (s->dirty_all) {
        s->dirty_all = false;
        struct tern_list *it;
        tern_list_for_each(it, &s->socks.all) {
            struct tern_socket *so = tern_container_of(it, struct tern_socket, all_node);
            if (so->ext)
                tern_sock_touch(s, so);
        }
    }
    /* Delivering may touch more (an epoll set whose member became
     * ready): the list grows while it is walked. */
    for (uint32_t i = 0; i < s->dirty_n; i++) {
        struct tern_socket *so = s->dirty[i];
        so->dirty = false;
        deliver(s, so);
    }
    s->dirty_n = 0;
}

void tern_events_wake_all(struct tern_stack *s)
{
    struct tern_list *it;
    tern_list_for_each(it, &s->socks.all) {
        struct tern_socket *so = tern_container_of(it, struct tern_socket, all_node);
        if (so->ext)
            wake_waiters(so->ext);
    }
}

void tern_events_destroy(struct tern_stack *s)
{
    free(s->dirty);
    s->dirty = NULL;
    s->dirty_n = s->dirty_cap = 0;
}
