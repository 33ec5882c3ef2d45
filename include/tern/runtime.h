/*
 * Running a stack: owned or threaded, and waiting on Tern sockets from
 * any event loop.
 *
 * Owned mode (the default): the application's loop calls tern_stack_poll
 * with the time and waits until tern_stack_next_deadline or activity on
 * the links' descriptors (tern_link_pollfd). One thread at a time; no call
 * ever blocks, a call that would wait fails with EAGAIN.
 *
 * Threaded mode (tern_stack_start): a runtime thread drives the links and
 * the timers; any application thread may call into the stack, and calls
 * on blocking sockets wait (connect, accept, send, recv, close with
 * SO_LINGER) on a condition, not a spin, bounded by SO_RCVTIMEO and
 * SO_SNDTIMEO (EAGAIN when they expire, as on Linux). Every call holds the
 * stack's lock only while it runs in the stack; nothing of the caller's
 * runs under it. Links attached to a started stack must be safe to use
 * from its runtime thread: TAP devices, tern_pipe links; not tern_wire,
 * which belongs to one thread.
 *
 * Races have defined results: a close() of a socket another thread is
 * blocked on makes that call return EBADF at once (tern_poll reports
 * POLLNVAL for it; closing an epoll set fails its tern_epoll_wait with
 * EBADF); shutdown() makes a blocked recv return 0, a blocked send
 * EPIPE, a blocked accept EINVAL, a blocked connect ECONNRESET (as
 * Linux); freeing a started stack makes every blocked call return
 * ECANCELED and waits until they have all left before it frees
 * anything. A blocked send that had already taken some bytes returns
 * their count instead of the error, as after a signal, and a close
 * lingering (SO_LINGER) returns 0: the socket is closed. A call made
 * after tern_stack_free has returned is the caller's bug (the stack
 * pointer is gone), as with any freed object; so is a call that starts
 * while tern_stack_free or tern_stack_stop runs (the calls they cancel
 * are those already in the stack): a thread told ECANCELED must not
 * call again.
 *
 * Readiness (both modes): tern_socket_pollfd hands out an eventfd that is
 * readable exactly while the socket has one of the asked events (level
 * triggered), for a kernel epoll, libuv, libevent or tokio loop; the
 * tern_epoll_* calls keep a set of Tern sockets whose wait costs O(ready),
 * with a descriptor of its own for nesting into a kernel loop. Readiness is
 * computed after each step of the stack (a poll, a call), never inside
 * protocol code, and no user code ever runs inside the stack.
 */
#ifndef TERN_RUNTIME_H
#define TERN_RUNTIME_H

#include <sys/epoll.h>

#include <tern/common.h>
#include <tern/link.h>

struct tern_stack;

/* Start the runtime thread. 0, or -1 and errno (EALREADY, ENOMEM, or a
 * thread or descriptor error). */
TERN_API int tern_stack_start(struct tern_stack *s);
/* Stop the runtime thread and return to owned mode (blocked calls return
 * ECANCELED first). 0, or -1 and errno EINVAL if not started. Must not be
 * called from a call running in the stack, and no other thread may start
 * a call while it runs or after (owned mode is one thread at a time). */
TERN_API int tern_stack_stop(struct tern_stack *s);
/* Whether the stack has a runtime thread. */
TERN_API bool tern_stack_started(struct tern_stack *s);

/* Serve a control socket at `path` (a Unix stream socket, mode 0600) for
 * `ternstat`: the socket table, counters, gauges, timers, a connection's
 * events, and starting or stopping a capture, while traffic runs. The
 * runtime thread serves it, so the stack must be started; it is closed
 * and removed when the stack stops. 0, or -1 and errno (EINVAL, EALREADY,
 * or the socket's error). */
TERN_API int tern_stack_control(struct tern_stack *s, const char *path);

/* A descriptor readable while socket fd has any of `events` (POLLIN,
 * POLLOUT, POLLRDHUP; POLLERR and POLLHUP always count). The socket owns
 * it: it is closed with the socket; asking again returns the same
 * descriptor with the new events. -1 and errno (EBADF, or the eventfd's). */
TERN_API int tern_socket_pollfd(struct tern_stack *s, int fd, short events);

/* A set of Tern sockets to wait on, with epoll's ops and flags (EPOLLIN,
 * EPOLLOUT, EPOLLRDHUP, EPOLLERR, EPOLLHUP, EPOLLET, EPOLLONESHOT). The
 * set is a Tern handle: tern_close frees it. A socket closed while in a
 * set leaves it. Level triggered unless EPOLLET; with EPOLLET an event is
 * reported again only after the socket's readiness was touched anew. */
TERN_API int tern_epoll_create(struct tern_stack *s);
TERN_API int tern_epoll_ctl(struct tern_stack *s, int epfd, int op, int fd,
                            struct epoll_event *event);
/* Ready events, at most maxevents. timeout_ms: -1 waits forever, 0 not at
 * all; an owned stack cannot wait, so it treats any timeout as 0. */
TERN_API int tern_epoll_wait(struct tern_stack *s, int epfd, struct epoll_event *events,
                             int maxevents, int timeout_ms);
/* A descriptor readable while the set has a ready socket: the whole set
 * as one entry in a kernel loop. Closed with the set. */
TERN_API int tern_epoll_pollfd(struct tern_stack *s, int epfd);

/* ---- A thread-safe link pair ----
 * Two ends joined by bounded queues, safe for two threads (two started
 * stacks, or a started stack and a test): frames sent on one end are
 * received on the other, and each end's pollfd is readable while frames
 * wait for it. */
struct tern_pipe_config {
    uint32_t mtu;         /* default 1500 */
    uint32_t queue_limit; /* frames per direction, default 1024 */
};
TERN_API void tern_pipe_config_default(struct tern_pipe_config *cfg);
/* 0 and both ends, or -1 and errno. Each end is freed with
 * tern_link_free; the shared part goes with the second. */
TERN_API int tern_pipe_new(const struct tern_pipe_config *cfg, struct tern_link **a,
                           struct tern_link **b);

#endif
