/*
 * The threaded runtime (tern/runtime.h): a lock per stack, a thread that
 * drives links and timers, and blocking calls that wait on a condition.
 *
 * Locking contract. In threaded mode every public call runs under the
 * stack's lock (taken by tern_api_enter, dropped by tern_api_return and
 * tern_api_fail) and the core never sees another thread. `inside` counts
 * the calls in the stack, running or waiting; a waiting call sleeps on a
 * condition of its own with the lock released, listed on the sockets it
 * waits for (runtime/events.h), and re-reads its handles when woken. The
 * runtime thread holds the lock only while it polls. Nothing but the
 * stack's own code ever runs under the lock. Frames for links that allow
 * it (TERN_LINK_CAP_TX_UNLOCKED) are written after it, by the thread
 * leaving the stack (tx.c); a call about to sleep writes its own first. The observers
 * (tern_stack_live, tern_stack_now, the counters and the dumps) read a
 * started stack under the lock too, without entering it (nothing is
 * delivered or reaped); code already in the stack uses the _locked
 * views instead (the lock is not recursive).
 *
 * Lifetime. tern_stack_start makes the runtime; tern_stack_stop and
 * tern_stack_free take it down: they set `stopping` (every waiting call
 * returns ECANCELED, none may start), wait until `inside` is zero, then
 * stop and join the thread. Only then is anything freed.
 */
#ifndef TERN_RUNTIME_RT_H
#define TERN_RUNTIME_RT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"

struct tern_stack;
struct tern_socket;
struct tern_link;
struct tern_api_guard;

/* Frames for links that take send() beside recv() in another thread
 * (TERN_LINK_CAP_TX_UNLOCKED): left by the core on s->tx_pending, moved
 * here as the call leaves, written by the thread that leaves the stack
 * after it dropped the lock (tx.c), so
 * a system call per frame (a TAP write, which runs the kernel's receive
 * path) does not hold every other call out of the stack. */
struct tern_tx_defer {
    pthread_mutex_t lock;      /* q, done, busy, the results */
    pthread_cond_t idle;       /* busy fell to false */
    struct tern_list q;        /* packets to send, in order */
    struct tern_list done;     /* sent: freed under the stack's lock */
    bool busy;                 /* a thread is sending q */
    uint64_t sent, refused;    /* results not yet in the counters */
    atomic_bool has_done;      /* done or the results hold something */
    pthread_mutex_t send_lock; /* held while frames go to links */
};

struct tern_runtime {
    pthread_mutex_t lock;
    pthread_cond_t idle;  /* `inside` fell to zero while stopping */
    pthread_t thread;
    int epfd;             /* the links' descriptors and wakefd */
    int wakefd;           /* an eventfd: poll now */
    bool stop;            /* the runtime thread leaves */
    bool stopping;        /* calls return ECANCELED; none may wait */
    uint64_t planned;     /* when the runtime thread will poll next by itself */
    unsigned inside;
    struct tern_tx_defer tx;
};

#define TERN_RT_FOREVER UINT64_MAX

/* The monotonic clock, in ns: threaded mode's time (the core itself still
 * never reads a clock: its time is what the runtime passes in). */
uint64_t tern_rt_now(void);
/* An absolute deadline `timeout_ms` from now: TERN_RT_FOREVER for a
 * negative timeout, 0 for none (do not wait). */
uint64_t tern_rt_deadline_ms(int timeout_ms);
/* A socket timeout (SO_RCVTIMEO/SO_SNDTIMEO, 0 = none) as a deadline. */
uint64_t tern_rt_deadline_ns(uint64_t timeout_ns);

__attribute__((noinline)) void tern_rt_enter(struct tern_stack *s);
void tern_rt_leave(struct tern_stack *s);
/* An observer's read of a stack: under its lock if it is started. */
void tern_rt_observe_begin(const struct tern_stack *s);
void tern_rt_observe_end(const struct tern_stack *s);
/* Take the runtime down (see above); s->rt is NULL afterwards. */
void tern_rt_shutdown(struct tern_stack *s);
/* A link was attached to a started stack: watch its descriptor. */
void tern_rt_watch_link(struct tern_stack *s, int fd);

/* Wait, inside a call, until one of the n sockets is touched, the
 * deadline passes or the stack stops. 0 (look again), ETIMEDOUT,
 * ECANCELED (stopping), EAGAIN (owned mode: nobody could wake us), ENOMEM. */
int tern_api_wait(struct tern_api_guard *g, struct tern_socket **socks, size_t n,
                  uint64_t deadline);

/* tx.c. Whether a frame for this link is deferred (threaded, and the
 * link allows it: the core then leaves the packet, holding the frame's
 * data, csum, gso_size and ifindex, on s->tx_pending); before leaving the
 * stack (lock held), hand s->tx_pending to the sender's queue and claim
 * the sending: true if this thread must call tern_rt_tx_send after
 * dropping the lock; send it; fold the results in and free what was sent
 * (lock held); wait for a sender and send what is left (lock held: the
 * shutdown). */
bool tern_rt_tx_deferred(const struct tern_stack *s, const struct tern_link *l);
bool tern_rt_tx_claim(struct tern_stack *s);
void tern_rt_tx_send(struct tern_stack *s);
void tern_rt_tx_reap(struct tern_stack *s);
void tern_rt_tx_drain(struct tern_stack *s);
void tern_rt_tx_init(struct tern_tx_defer *tx);
void tern_rt_tx_destroy(struct tern_tx_defer *tx);
/* Read a link's stats while no frame is being sent to it. */
void tern_rt_tx_stats_begin(const struct tern_stack *s);
void tern_rt_tx_stats_end(const struct tern_stack *s);

/* The control socket (control.c): serve the clients waiting on it
 * (runtime thread, lock not held); close it (lock held or stopped). */
void tern_control_serve(struct tern_stack *s, int listen_fd);
void tern_control_close(struct tern_stack *s);

/* The socket's pollable descriptor for `events` (made on first use). */
int tern_sock_pollfd_make(struct tern_stack *s, struct tern_socket *so, short events);

#endif
