/* The threaded runtime: see rt.h. */
#include "runtime/rt.h"

#include <tern/runtime.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "runtime/events.h"
#include "sock/api_internal.h"

uint64_t tern_rt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * TERN_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t tern_rt_deadline_ms(int timeout_ms)
{
    if (timeout_ms < 0)
        return TERN_RT_FOREVER;
    if (timeout_ms == 0)
        return 0;
    return tern_rt_now() + (uint64_t)timeout_ms * TERN_NS_PER_MS;
}

uint64_t tern_rt_deadline_ns(uint64_t timeout_ns)
{
    return timeout_ns ? tern_rt_now() + timeout_ns : TERN_RT_FOREVER;
}

/* The runtime thread must poll sooner than it planned: wake it. */
static void kick(struct tern_stack *s)
{
    struct tern_runtime *rt = s->rt;
    if (pthread_equal(pthread_self(), rt->thread))
        return;
    uint64_t d = tern_stack_next_deadline_locked(s);
    if (d < rt->planned) {
        rt->planned = d;
        uint64_t one = 1;
        if (write(rt->wakefd, &one, sizeof(one)) < 0) {
            /* The counter is full: the thread is awake already. */
        }
    }
}

__attribute__((noinline)) void tern_rt_enter(struct tern_stack *s)
{
    struct tern_runtime *rt = s->rt;
    pthread_mutex_lock(&rt->lock);
    rt->inside++;
    /* API calls act at the current time, not the last poll's. */
    uint64_t now = tern_rt_now();
    if (now > s->now)
        s->now = now;
}

void tern_rt_observe_begin(const struct tern_stack *s)
{
    if (s->rt)
        pthread_mutex_lock(&s->rt->lock);
}

void tern_rt_observe_end(const struct tern_stack *s)
{
    if (s->rt)
        pthread_mutex_unlock(&s->rt->lock);
}

void tern_rt_leave(struct tern_stack *s)
{
    struct tern_runtime *rt = s->rt;
    kick(s);
    /* Claimed while still inside: a shutdown waits for the sending too. */
    bool send = tern_rt_tx_claim(s);
    if (--rt->inside == 0 && rt->stopping)
        pthread_cond_broadcast(&rt->idle);
    pthread_mutex_unlock(&rt->lock);
    if (send)
        tern_rt_tx_send(s);
}

int tern_api_wait(struct tern_api_guard *g, struct tern_socket **socks, size_t n,
                  uint64_t deadline)
{
    struct tern_stack *s = g->s;
    struct tern_runtime *rt = s->rt;
    if (!rt)
        return EAGAIN;
    if (rt->stopping)
        return ECANCELED;
    if (deadline == 0)
        return ETIMEDOUT;
    struct tern_waiter one, *w = n == 1 ? &one : calloc(n, sizeof(*w));
    if (!w)
        return ENOMEM;
    pthread_condattr_t ca;
    pthread_cond_t cond;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cond, &ca);
    pthread_condattr_destroy(&ca);
    size_t linked = 0;
    int err = 0;
    for (; linked < n; linked++) {
        struct tern_sock_ext *x = tern_sock_ext(socks[linked]);
        if (!x) {
            err = ENOMEM;
            break;
        }
        w[linked].cond = &cond;
        tern_list_push_back(&x->waiters, &w[linked].node);
    }
    if (!err) {
        /* What this call changed reaches others before it sleeps, and
         * the runtime thread learns of any sooner deadline. */
        tern_events_run(s);
        kick(s);
        /* What the call queued for the links goes before it sleeps (the
         * lock held: waiting calls are not the hot path). */
        if (tern_rt_tx_claim(s))
            tern_rt_tx_send(s);
        int rc;
        if (deadline == TERN_RT_FOREVER) {
            rc = pthread_cond_wait(&cond, &rt->lock);
        } else {
            struct timespec ts = {.tv_sec = (time_t)(deadline / TERN_NS_PER_SEC),
                                  .tv_nsec = (long)(deadline % TERN_NS_PER_SEC)};
            rc = pthread_cond_timedwait(&cond, &rt->lock, &ts);
        }
        /* Asleep, the stack moved on: act at the current time. */
        uint64_t now = tern_rt_now();
        if (now > s->now)
            s->now = now;
        if (rt->stopping)
            err = ECANCELED;
        else if (rc == ETIMEDOUT)
            err = ETIMEDOUT;
    }
    for (size_t i = 0; i < linked; i++) {
        tern_list_remove(&w[i].node);
        /* The delivery above used up the call's own touch (GET_SOCK's);
         * what the call does now that it is awake (a read that empties
         * the socket) must be delivered again when it leaves. */
        tern_sock_touch(s, socks[i]);
    }
    pthread_cond_destroy(&cond);
    if (w != &one)
        free(w);
    return err;
}

int tern_sock_pollfd_make(struct tern_stack *s, struct tern_socket *so, short events)
{
    struct tern_sock_ext *x = tern_sock_ext(so);
    if (!x) {
        errno = ENOMEM;
        return -1;
    }
    if (x->evfd < 0) {
        x->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (x->evfd < 0)
            return -1;
        x->evfd_on = false;
    }
    x->evfd_events = events;
    tern_sock_touch(s, so); /* set or clear it for the events asked now */
    return x->evfd;
}

int tern_socket_pollfd(struct tern_stack *s, int fd, short events)
{
    struct tern_api_guard g = tern_api_enter(s);
    struct tern_socket *so = tern_sock_lookup(s, fd);
    if (!so)
        return tern_api_fail(&g, EBADF);
    int efd = tern_sock_pollfd_make(s, so, events);
    return efd < 0 ? tern_api_fail(&g, errno) : tern_api_return(&g, efd);
}

/* ---- The runtime thread ---- */

static void *rt_main(void *arg)
{
    struct tern_stack *s = arg;
    struct tern_runtime *rt = s->rt;
    for (;;) {
        tern_stack_poll(s, tern_rt_now());
        pthread_mutex_lock(&rt->lock);
        if (rt->stop) {
            pthread_mutex_unlock(&rt->lock);
            break;
        }
        uint64_t d = tern_stack_next_deadline_locked(s);
        rt->planned = d;
        pthread_mutex_unlock(&rt->lock);
        int timeout = -1;
        if (d != TERN_TIME_NEVER) {
            uint64_t now = tern_rt_now();
            /* Round up: waking early only polls for nothing. */
            timeout = d <= now ? 0 : (int)((d - now + TERN_NS_PER_MS - 1) / TERN_NS_PER_MS);
        }
        struct epoll_event evs[16];
        int n = epoll_wait(rt->epfd, evs, 16, timeout);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == rt->wakefd) {
                uint64_t v;
                if (read(rt->wakefd, &v, sizeof(v)) < 0) {
                    /* Nothing to drain: another read got it. */
                }
                continue;
            }
            pthread_mutex_lock(&rt->lock);
            bool control = fd == s->control_fd;
            pthread_mutex_unlock(&rt->lock);
            if (control)
                tern_control_serve(s, fd);
        }
    }
    return NULL;
}

void tern_rt_watch_link(struct tern_stack *s, int fd)
{
    if (!s->rt || fd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(s->rt->epfd, EPOLL_CTL_ADD, fd, &ev);
}

int tern_stack_start(struct tern_stack *s)
{
    TERN_ASSERT(s, s && s->magic == TERN_STACK_MAGIC, "starting a freed stack");
    if (s->rt) {
        errno = EALREADY;
        return -1;
    }
    struct tern_runtime *rt = calloc(1, sizeof(*rt));
    if (!rt) {
        errno = ENOMEM;
        return -1;
    }
    rt->epfd = epoll_create1(EPOLL_CLOEXEC);
    rt->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (rt->epfd < 0 || rt->wakefd < 0) {
        int e = errno;
        if (rt->epfd >= 0)
            close(rt->epfd);
        if (rt->wakefd >= 0)
            close(rt->wakefd);
        free(rt);
        errno = e;
        return -1;
    }
    pthread_mutex_init(&rt->lock, NULL);
    tern_rt_tx_init(&rt->tx);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rt->idle, &ca);
    pthread_condattr_destroy(&ca);
    rt->planned = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = rt->wakefd};
    epoll_ctl(rt->epfd, EPOLL_CTL_ADD, rt->wakefd, &ev);
    s->rt = rt;
    for (int i = 0; i < TERN_MAX_IFACES; i++)
        if (s->ifaces[i].used)
            tern_rt_watch_link(s, tern_link_pollfd(s->ifaces[i].link));
    /* Hold the lock while the thread starts, so rt->thread is set before
     * it (or anyone) compares against it. */
    pthread_mutex_lock(&rt->lock);
    int rc = pthread_create(&rt->thread, NULL, rt_main, s);
    pthread_mutex_unlock(&rt->lock);
    if (rc != 0) {
        s->rt = NULL;
        tern_rt_tx_destroy(&rt->tx);
        pthread_mutex_destroy(&rt->lock);
        pthread_cond_destroy(&rt->idle);
        close(rt->epfd);
        close(rt->wakefd);
        free(rt);
        errno = rc;
        return -1;
    }
    return 0;
}

void tern_rt_shutdown(struct tern_stack *s)
{
    struct tern_runtime *rt = s->rt;
    pthread_mutex_lock(&rt->lock);
    rt->stopping = true;
    tern_events_wake_all(s);
    while (rt->inside > 0)
        pthread_cond_wait(&rt->idle, &rt->lock);
    tern_rt_tx_drain(s);
    rt->stop = true;
    uint64_t one = 1;
    if (write(rt->wakefd, &one, sizeof(one)) < 0) {
        /* Full: it is awake anyway. */
    }
    pthread_mutex_unlock(&rt->lock);
    pthread_join(rt->thread, NULL);
    tern_control_close(s); /* nobody serves it any more */
    tern_rt_tx_drain(s); /* what the thread's last poll queued */
    tern_rt_tx_destroy(&rt->tx);
    s->rt = NULL;
    pthread_mutex_destroy(&rt->lock);
    pthread_cond_destroy(&rt->idle);
    close(rt->epfd);
    close(rt->wakefd);
    free(rt);
}

int tern_stack_stop(struct tern_stack *s)
{
    TERN_ASSERT(s, s && s->magic == TERN_STACK_MAGIC, "stopping a freed stack");
    if (!s->rt) {
        errno = EINVAL;
        return -1;
    }
    tern_rt_shutdown(s);
    return 0;
}

bool tern_stack_started(struct tern_stack *s)
{
    return s->rt != NULL;
}
