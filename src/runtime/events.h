/*
 * Readiness: telling whoever waits on a socket that it may have changed.
 *
 * Protocol code never wakes anyone. Whatever may change a socket's
 * readiness (a segment for it, one of its timers, a call on it) marks it
 * with tern_sock_touch; at the end of each step of the stack (a poll, a
 * call) tern_events_run computes the readiness of the marked sockets and
 * delivers it: it signals the threads waiting on them, sets or clears
 * their pollable descriptors and files them on the ready lists of the
 * epoll sets that watch them. No user code runs there, and only sockets
 * someone listens to (those with an extension) are ever marked, so a
 * stack nobody waits on pays one test per touch.
 *
 * Ownership. The extension belongs to its socket and is freed by the
 * reaper with it; the reaper keeps a socket that still has waiting threads
 * until they have left (they hold no reference, only a place on the
 * waiter list, and each re-reads its handle when woken). A waiter lives on
 * its thread's own stack for the length of one wait.
 */
#ifndef TERN_RUNTIME_EVENTS_H
#define TERN_RUNTIME_EVENTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"

struct tern_stack;
struct tern_socket;
struct tern_epoll;

struct tern_sock_ext {
    struct tern_list waiters;  /* struct tern_waiter.node */
    struct tern_list epitems;  /* struct tern_epitem.sock_node: sets watching it */
    int evfd;                  /* tern_socket_pollfd, -1 if none */
    short evfd_events;
    bool evfd_on;              /* the eventfd holds a count (is readable) */
    struct tern_epoll *ep;     /* an epoll set's own state (SOCK_KIND_EPOLL) */
    uint64_t rcvtimeo_ns, sndtimeo_ns; /* SO_RCVTIMEO, SO_SNDTIMEO; 0 = none */
};

struct tern_waiter {
    struct tern_list node;
    pthread_cond_t *cond;
};

/* The socket's extension, made on first use; NULL (ENOMEM) if memory is
 * short. */
struct tern_sock_ext *tern_sock_ext(struct tern_socket *so);
/* Free what an extension holds (its eventfd, its epoll set); the socket
 * is going. */
void tern_sock_ext_free(struct tern_stack *s, struct tern_socket *so);
/* The user closed the socket: its pollable descriptor goes now, as a
 * kernel socket leaves every epoll set when it is closed, even if the
 * protocol keeps the socket a while (a TCP connection closing). */
void tern_sock_pollfd_close(struct tern_socket *so);
/* Its readiness may have changed (cheap; see above). */
void tern_sock_touch(struct tern_stack *s, struct tern_socket *so);
/* Deliver readiness for every touched socket. */
void tern_events_run(struct tern_stack *s);
/* poll(2) events of a socket now. */
short tern_sock_mask(const struct tern_socket *so);
/* Wake every thread waiting on any socket of the stack (teardown). */
void tern_events_wake_all(struct tern_stack *s);
void tern_events_destroy(struct tern_stack *s);

/* The user closed a socket: it leaves every epoll set watching it. */
void tern_epoll_forget_socket(struct tern_stack *s, struct tern_socket *so);
/* An epoll set's readiness (its ready list is not empty). */
bool tern_epoll_has_ready(const struct tern_epoll *ep);
/* A watched socket is ready for what item `it` asks: file it. */
void tern_epoll_socket_changed(struct tern_stack *s, struct tern_socket *so, short mask);
void tern_epoll_free(struct tern_stack *s, struct tern_epoll *ep);

#endif
