/*
 * Sockets and their lifecycle.
 *
 * Ownership contract. A socket is held by at most two owners, each with
 * exactly one reference, recorded in one lifecycle enum (not flag pairs):
 *
 *   - the user, through its handle, from tern_socket() (or accept) until
 *     tern_close();
 *   - the protocol, while its PCB sits in a protocol table (bound, or
 *     for TCP later: connected, in a queue, closing).
 *
 *   BOTH --user closes--> PROTO_ONLY --protocol lets go--> DEAD
 *   BOTH --protocol lets go--> USER_ONLY --user closes--> DEAD
 *   (NONE) --protocol creates--> PROTO_ONLY --accept--> BOTH   (TCP)
 *
 * Each transition is one call (tern_sock_release_user / _proto) that
 * asserts the state it leaves; a second release of the same reference
 * aborts with the socket named instead of freeing twice. DEAD sockets go on
 * the reap list, and only the reaper (tern_sock_reap, run at the end of
 * every poll and API call) frees memory. The handle dies at the user's
 * close (its generation moves on), so a stale handle gives EBADF, never
 * the memory.
 */
#ifndef TERN_SOCK_SOCKET_H
#define TERN_SOCK_SOCKET_H

#include <stdint.h>
#include <stdbool.h>
#include <netinet/in.h>

#include "core/list.h"
#include "sock/pcb.h"

struct tern_stack;
struct tern_pkt;

enum tern_sock_life {
    SOCK_LIFE_BOTH,
    SOCK_LIFE_USER_ONLY,
    SOCK_LIFE_PROTO_ONLY,
    SOCK_LIFE_DEAD,
};

enum tern_sock_kind { SOCK_KIND_UDP, SOCK_KIND_PING, SOCK_KIND_TCP, SOCK_KIND_EPOLL };

struct tern_tcpcb;
struct tern_sock_ext;

struct tern_socket {
    struct tern_list all_node;  /* the stack's list of sockets */
    uint32_t magic;
    int handle;                 /* -1 once the user closed it */
    uint64_t id;                /* never reused, for dumps */
    enum tern_sock_life life : 8;
    enum tern_sock_kind kind : 8;
    uint8_t ttl, tos;
    uint8_t type, protocol;     /* socket()'s (SOCK_STREAM..., IPPROTO_...), for SO_TYPE
                                 * and SO_PROTOCOL */
    bool nonblock : 1;
    bool broadcast : 1;
    bool dirty : 1;             /* on the stack's list of sockets to deliver (events.h) */
    bool shut_rd : 1, shut_wr : 1;
    bool linger_on : 1;
    bool rcvbuf_set : 1, sndbuf_set : 1; /* by SO_RCVBUF/SO_SNDBUF: no autotuning */
    /* IP_BIND_ADDRESS_NO_PORT: bind(addr, 0) keeps the address and leaves
     * the port to connect(), which may share it among peers. */
    bool bind_no_port : 1;
    int so_error;               /* pending asynchronous error */
    uint32_t rcvbuf, sndbuf;
    uint32_t linger_s;          /* SO_LINGER's time when on (threaded close waits) */
    struct tern_inpcb pcb;      /* protocol reference = PCB in a table; once DEAD (in
                                 * no table), pcb.bnode links it on the reap list */
    struct tern_tcpcb *tcb;     /* TCP only: in the socket's block (tern_sock_tail), or
                                 * NULL between two connection attempts */
    /* Waiting threads, a pollable descriptor, epoll sets: made when first
     * needed, freed by the reaper (runtime/events.h). */
    struct tern_sock_ext *ext;
};

/* What only datagram sockets (UDP, ping) keep: received datagrams. */
struct tern_sock_dgram {
    struct tern_list rcvq;      /* tern_pkt, data = payload */
    uint32_t rcvq_bytes;
    uint32_t rcvq_count;
    uint64_t rx_dropped;        /* datagrams lost to a full buffer */
};

/* A socket is one allocation: the common part above, then its kind's own
 * part right behind it (a datagram queue; a TCP connection block with its
 * event ring), so that an idle connection costs one block and pays for
 * nothing the other kinds use. */
static inline void *tern_sock_tail(struct tern_socket *so)
{
    return so + 1;
}
static inline bool tern_sock_is_dgram(const struct tern_socket *so)
{
    return so->kind == SOCK_KIND_UDP || so->kind == SOCK_KIND_PING;
}
/* The datagram part: only for tern_sock_is_dgram() sockets. */
static inline struct tern_sock_dgram *tern_sock_dg(struct tern_socket *so)
{
    return (struct tern_sock_dgram *)tern_sock_tail(so);
}
static inline const struct tern_sock_dgram *tern_sock_dg_const(const struct tern_socket *so)
{
    return (const struct tern_sock_dgram *)(so + 1);
}

/* SO_RCVTIMEO and SO_SNDTIMEO in ns, 0 = none (kept in the extension:
 * most sockets never set them). */
uint64_t tern_sock_rcvtimeo(const struct tern_socket *so);
uint64_t tern_sock_sndtimeo(const struct tern_socket *so);

static inline struct tern_socket *tern_sock_of_pcb(struct tern_inpcb *pcb)
{
    return tern_container_of(pcb, struct tern_socket, pcb);
}

/* The handle table: slots with a generation each. */
struct tern_handle_slot {
    struct tern_socket *so;
    uint32_t gen;
    uint32_t next_free;
};

struct tern_handle_table {
    struct tern_handle_slot *slots;
    uint32_t cap;      /* slots allocated */
    uint32_t max;      /* config max_sockets */
    uint32_t used;
    uint32_t free_head, free_tail; /* FIFO: a slot is reused as late as possible */
};

struct tern_sock_state {
    struct tern_handle_table handles;
    struct tern_list all;
    struct tern_list reap;
    uint64_t live;
    uint64_t next_id;
};

int tern_handles_init(struct tern_handle_table *h, uint32_t max);
void tern_handles_destroy(struct tern_handle_table *h);

struct tern_socket *tern_sock_new(struct tern_stack *s, enum tern_sock_kind kind, int type,
                                  int protocol);
/* A socket the protocol makes for a connection nobody has accepted yet:
 * only the protocol's reference, no handle. */
struct tern_socket *tern_sock_new_proto(struct tern_stack *s, enum tern_sock_kind kind, int type,
                                        int protocol);
/* accept: give it a handle and the user's reference. -1 (EMFILE). */
int tern_sock_give_handle(struct tern_stack *s, struct tern_socket *so);
/* The live socket a handle names, or NULL (errno EBADF). */
struct tern_socket *tern_sock_lookup(struct tern_stack *s, int handle);
void tern_sock_release_user(struct tern_stack *s, struct tern_socket *so);
void tern_sock_release_proto(struct tern_stack *s, struct tern_socket *so);
void tern_sock_take_proto(struct tern_stack *s, struct tern_socket *so);
/* Free DEAD sockets: the only place socket memory is returned. */
void tern_sock_reap(struct tern_stack *s);
void tern_sock_destroy_all(struct tern_stack *s);
const char *tern_sock_life_name(enum tern_sock_life l);

/* Queue a datagram for the user; takes p. False (and p freed, counted)
 * when the receive buffer is full. */
bool tern_sock_rcvq_append_take(struct tern_stack *s, struct tern_socket *so,
                                struct tern_pkt *p);
struct tern_pkt *tern_sock_rcvq_pop(struct tern_socket *so);
/* Report an asynchronous error (ICMP) to the socket. */
void tern_sock_set_error(struct tern_stack *s, struct tern_socket *so, int err);
/* Linux's rule without IP_RECVERR for an ICMP error about a datagram
 * socket's traffic: only hard errors, only to a connected socket. Returns
 * an enum tern_icmp_err_fate. */
int tern_sock_icmp_error(struct tern_stack *s, struct tern_inpcb *pcb, int err, bool hard);

#endif
