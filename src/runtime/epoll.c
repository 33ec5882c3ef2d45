/*
 * tern_epoll_*: a set of Tern sockets whose wait costs O(ready).
 *
 * Each watched socket keeps the items that watch it (its extension's
 * epitems); when its readiness is delivered (events.c) an item that
 * became ready is filed on its set's ready list. A wait walks only that
 * list, checking each item again (level triggered: a ready item stays on
 * the list and moves to the back, so every ready socket gets its turn).
 * The set is itself a socket of kind SOCK_KIND_EPOLL, so its handle
 * behaves like any other and its own readiness (a non-empty ready list)
 * reaches its pollable descriptor and its waiters the same way.
 *
 * Ownership: items belong to their set and are freed when removed, when
 * their socket is closed by the user, or with the set.
 */
#include <tern/runtime.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "runtime/events.h"
#include "runtime/rt.h"
#include "sock/api_internal.h"

struct tern_epoll {
    struct tern_socket *self;
    struct tern_list items;  /* struct tern_epitem.set_node */
    struct tern_list ready;  /* struct tern_epitem.ready_node */
};

struct tern_epitem {
    struct tern_list set_node, ready_node, sock_node;
    struct tern_socket *so;
    struct tern_epoll *ep;
    uint32_t events;
    epoll_data_t data;
    bool disabled; /* EPOLLONESHOT fired: no report until EPOLL_CTL_MOD */
};

/* poll(2) and epoll(7) share the bit values of these events on Linux. */
#define EP_ALWAYS (EPOLLERR | EPOLLHUP)

bool tern_epoll_has_ready(const struct tern_epoll *ep)
{
    return ep && !tern_list_empty(&ep->ready);
}

static void item_unready(struct tern_epitem *it)
{
    if (tern_list_linked(&it->ready_node)) {
        tern_list_remove(&it->ready_node);
        tern_list_init(&it->ready_node);
    }
}

/* File or unfile an item by what its socket reports now. */
static void item_update(struct tern_stack *s, struct tern_epitem *it, short mask)
{
    bool ready = !it->disabled && (mask & (it->events | EP_ALWAYS));
    bool was = tern_list_linked(&it->ready_node);
    bool set_was_ready = tern_epoll_has_ready(it->ep);
    if (ready && !was)
        tern_list_push_back(&it->ep->ready, &it->ready_node);
    else if (!ready && was)
        item_unready(it);
    if (set_was_ready != tern_epoll_has_ready(it->ep) || (ready && (it->events & EPOLLET)))
        tern_sock_touch(s, it->ep->self);
}

void tern_epoll_socket_changed(struct tern_stack *s, struct tern_socket *so, short mask)
{
    struct tern_list *n;
    tern_list_for_each(n, &so->ext->epitems) {
        struct tern_epitem *it = tern_container_of(n, struct tern_epitem, sock_node);
        item_update(s, it, mask);
    }
}

static void item_free(struct tern_stack *s, struct tern_epitem *it)
{
    bool set_was_ready = tern_epoll_has_ready(it->ep);
    item_unready(it);
    tern_list_remove(&it->set_node);
    tern_list_remove(&it->sock_node);
    if (set_was_ready != tern_epoll_has_ready(it->ep))
        tern_sock_touch(s, it->ep->self);
    free(it);
}

void tern_epoll_forget_socket(struct tern_stack *s, struct tern_socket *so)
{
    if (!so->ext)
        return;
    struct tern_list *n;
    while ((n = so->ext->epitems.next) != &so->ext->epitems)
        item_free(s, tern_container_of(n, struct tern_epitem, sock_node));
}

void tern_epoll_free(struct tern_stack *s, struct tern_epoll *ep)
{
    struct tern_list *n;
    while ((n = ep->items.next) != &ep->items) {
        struct tern_epitem *it = tern_container_of(n, struct tern_epitem, set_node);
        item_unready(it);
        tern_list_remove(&it->set_node);
        tern_list_remove(&it->sock_node);
        free(it);
    }
    (void)s;
    free(ep);
}

int tern_epoll_create(struct tern_stack *s)
{
    struct tern_api_guard g = tern_api_enter(s);
    struct tern_socket *so = tern_sock_new(s, SOCK_KIND_EPOLL, 0, 0);
    if (!so)
        return tern_api_fail(&g, errno);
    struct tern_sock_ext *x = tern_sock_ext(so);
    struct tern_epoll *ep = x ? calloc(1, sizeof(*ep)) : NULL;
    if (!ep) {
        tern_sock_release_user(s, so);
        return tern_api_fail(&g, ENOMEM);
    }
    ep->self = so;
    tern_list_init(&ep->items);
    tern_list_init(&ep->ready);
    x->ep = ep;
    return tern_api_return(&g, so->handle);
}

static struct tern_epitem *find_item(struct tern_epoll *ep, const struct tern_socket *so)
{
    /* A socket's own list is short (the sets watching it). */
    struct tern_list *n;
    tern_list_for_each(n, &so->ext->epitems) {
        struct tern_epitem *it = tern_container_of(n, struct tern_epitem, sock_node);
        if (it->ep == ep)
            return it;
    }
    return NULL;
}

int tern_epoll_ctl(struct tern_stack *s, int epfd, int op, int fd, struct epoll_event *event)
{
    struct tern_api_guard g = tern_api_enter(s);
    struct tern_socket *eso = tern_sock_lookup(s, epfd);
    struct tern_socket *so = tern_sock_lookup(s, fd);
    if (!eso || !so)
        return tern_api_fail(&g, EBADF);
    if (eso->kind != SOCK_KIND_EPOLL || so == eso)
        return tern_api_fail(&g, EINVAL);
    if (so->kind == SOCK_KIND_EPOLL)
        return tern_api_fail(&g, EINVAL); /* no nesting (Linux allows it; Tern does not yet) */
    if (op != EPOLL_CTL_DEL && !event)
        return tern_api_fail(&g, EFAULT);
    struct tern_epoll *ep = eso->ext->ep;
    struct tern_sock_ext *x = tern_sock_ext(so);
    if (!x)
        return tern_api_fail(&g, ENOMEM);
    struct tern_epitem *it = find_item(ep, so);
    switch (op) {
    case EPOLL_CTL_ADD:
        if (it)
            return tern_api_fail(&g, EEXIST);
        it = calloc(1, sizeof(*it));
        if (!it)
            return tern_api_fail(&g, ENOMEM);
        it->so = so;
        it->ep = ep;
        tern_list_init(&it->ready_node);
        tern_list_push_back(&ep->items, &it->set_node);
        tern_list_push_back(&x->epitems, &it->sock_node);
        break;
    case EPOLL_CTL_MOD:
        if (!it)
            return tern_api_fail(&g, ENOENT);
        break;
    case EPOLL_CTL_DEL:
        if (!it)
            return tern_api_fail(&g, ENOENT);
        item_free(s, it);
        return tern_api_return(&g, 0);
    default:
        return tern_api_fail(&g, EINVAL);
    }
    it->events = event->events;
    it->data = event->data;
    it->disabled = false;
    item_unready(it);
    item_update(s, it, tern_sock_mask(so));
    return tern_api_return(&g, 0);
}

/* Report what is ready; 0 if nothing. */
static int collect(struct tern_stack *s, struct tern_epoll *ep, struct epoll_event *events,
                   int maxevents)
{
    int n = 0;
    struct tern_list keep;
    tern_list_init(&keep);
    while (n < maxevents && !tern_list_empty(&ep->ready)) {
        struct tern_epitem *it = tern_container_of(ep->ready.next, struct tern_epitem, ready_node);
        tern_list_remove(&it->ready_node);
        tern_list_init(&it->ready_node);
        uint32_t got = (uint32_t)tern_sock_mask(it->so) & (it->events | EP_ALWAYS);
        if (!got || it->disabled)
            continue;
        events[n].events = got;
        events[n].data = it->data;
        n++;
        if (it->events & EPOLLONESHOT)
            it->disabled = true;
        else if (!(it->events & EPOLLET))
            tern_list_push_back(&keep, &it->ready_node); /* level: still ready, to the back */
    }
    /* Behind the items not reached (more ready than maxevents): those
     * stay filed. */
    struct tern_list *k;
    while ((k = tern_list_pop_front(&keep)))
        tern_list_push_back(&ep->ready, k);
    if (!tern_epoll_has_ready(ep))
        tern_sock_touch(s, ep->self);
    return n;
}

int tern_epoll_wait(struct tern_stack *s, int epfd, struct epoll_event *events, int maxevents,
                    int timeout_ms)
{
    struct tern_api_guard g = tern_api_enter(s);
    if (!events)
        return tern_api_fail(&g, EFAULT);
    if (maxevents <= 0)
        return tern_api_fail(&g, EINVAL);
    uint64_t deadline = tern_rt_deadline_ms(timeout_ms);
    for (;;) {
        struct tern_socket *eso = tern_sock_lookup(s, epfd);
        if (!eso)
            return tern_api_fail(&g, EBADF);
        if (eso->kind != SOCK_KIND_EPOLL)
            return tern_api_fail(&g, EINVAL);
        int n = collect(s, eso->ext->ep, events, maxevents);
        if (n > 0 || timeout_ms == 0)
            return tern_api_return(&g, n);
        int err = tern_api_wait(&g, &eso, 1, deadline);
        if (err == ETIMEDOUT || err == EAGAIN)
            return tern_api_return(&g, 0);
        if (err)
            return tern_api_fail(&g, err);
    }
}

int tern_epoll_pollfd(struct tern_stack *s, int epfd)
{
    struct tern_api_guard g = tern_api_enter(s);
    struct tern_socket *eso = tern_sock_lookup(s, epfd);
    if (!eso)
        return tern_api_fail(&g, EBADF);
    if (eso->kind != SOCK_KIND_EPOLL)
        return tern_api_fail(&g, EINVAL);
    int fd = tern_sock_pollfd_make(s, eso, POLLIN);
    return fd < 0 ? tern_api_fail(&g, errno) : tern_api_return(&g, fd);
}
