/*
 * Protocol control blocks and their tables (one table per protocol).
 *
 * Invariant 4 of DESIGN.md: a lookup reads only fields of the PCB and of
 * the table. The reuse flags, bound addresses, listening state and
 * connected peer are copied here when they change, so a lookup never
 * dereferences a socket. A socket's PCB sits in a table exactly while its
 * protocol holds the socket (the protocol reference), so a PCB a lookup
 * finds always has a live socket behind it. A TIME_WAIT record and a
 * listener's pending handshake are PCBs with no socket at all (kinds
 * TERN_PCB_TIMEWAIT, TERN_PCB_REQUEST): check the kind before reaching
 * for a socket.
 *
 * A table indexes its PCBs three ways, each O(1) or O(owners of a port):
 *   - bind buckets, by local port: every PCB holding a port, for bind
 *     conflicts and port choice;
 *   - listen buckets, by local port: PCBs with no peer (bound UDP,
 *     bound or listening TCP), for wildcard matching; a TCP lookup
 *     matches only listening PCBs there, and a TCP PCB joins its
 *     reuseport group when it listens (tern_listen re-files it);
 *   - the connection hash, by 4-tuple: PCBs with a peer (connected UDP,
 *     TCP connections, TIME_WAIT), resized as it grows.
 *
 * Addresses and ports are in host byte order.
 */
#ifndef TERN_SOCK_PCB_H
#define TERN_SOCK_PCB_H

#include <stdint.h>
#include <stdbool.h>

#include "core/list.h"

struct tern_stack;

struct tern_reuseport_group;

/* PCBs hashed by local port alone, mask + 1 buckets, grown (doubling)
 * while it holds more than four PCBs a bucket, up to a bucket per port, so
 * that tens of thousands of bound ports (TIME_WAIT records, a media
 * server's UDP sockets) never make long chains. */
struct tern_port_index {
    struct tern_list *heads;
    uint32_t mask;
};

enum tern_pcb_kind {
    TERN_PCB_SOCKET,   /* embedded in a struct tern_socket */
    TERN_PCB_TIMEWAIT, /* embedded in a TCP TIME_WAIT record */
    TERN_PCB_REQUEST,  /* embedded in a TCP SYN queue entry (tcp_listen.h) */
};

struct tern_inpcb {
    struct tern_list bnode;       /* bind index */
    struct tern_list hnode;       /* listen index or connection hash */
    struct tern_pcb_table *table; /* NULL while unbound */
    uint32_t laddr, faddr;
    uint16_t lport, fport;
    uint8_t kind;                 /* enum tern_pcb_kind */
    bool reuseaddr : 1;
    bool reuseport : 1;
    bool connected : 1;           /* has a peer: lives in the connection hash */
    bool listening : 1;           /* TCP LISTEN: SO_REUSEADDR does not share it */
    bool bound_addr : 1;          /* laddr set by bind(), not by connect() */
    bool bound_port : 1;          /* lport set by bind(), not automatically */
    bool in_conn_hash : 1;        /* where it is filed now (the table's business) */
    /* TCP: lport was chosen by connect() for this peer, so other such
     * connections to other peers may share it (see tern_pcb_ephemeral). */
    bool connect_port : 1;
    uint32_t bind_seq;            /* later binds win ties, as on Linux (modulo 2^32) */
    uint32_t conn_hash;           /* in the connection hash: its tuple hash's low half,
                                   * kept so that growing the table hashes nothing */
    struct tern_reuseport_group *group;
};

struct tern_reuseport_group {
    uint32_t laddr;
    uint16_t lport;
    uint32_t n, cap;
    struct tern_inpcb **members;
};

struct tern_pcb_table {
    const char *name;
    bool tcp_rules;  /* SO_REUSEADDR never shares a port with a listener (Linux TCP) */
    struct tern_port_index bind;   /* every PCB holding a port (bnode) */
    struct tern_port_index listen; /* PCBs without a peer (hnode) */
    struct tern_list *conn;  /* connection hash, conn_mask + 1 buckets */
    uint32_t conn_mask;
    uint32_t conn_count;
    uint32_t listen_count; /* PCBs in the listen index */
    uint32_t count;        /* PCBs in the table (and the bind index) */
    uint64_t bind_seq;
};

/* A keyed hash (SipHash-2-4) of a connection's 4-tuple, memoised for
 * the last two tuples asked: its low 32 bits place the connection in its
 * table, its high 32 bits are TCP's ISN function (RFC 6528). One 64-bit
 * output of a pseudo-random function, so what a peer learns from one
 * half (an ISN) tells it nothing about the other. */
uint64_t tern_tuple_hash(struct tern_stack *s, uint32_t laddr, uint16_t lport, uint32_t faddr,
                         uint16_t fport);
int tern_pcb_table_init(struct tern_pcb_table *t, const char *name, bool tcp_rules);
void tern_pcb_table_destroy(struct tern_pcb_table *t);
void tern_pcb_init(struct tern_inpcb *pcb);
/* Would binding (laddr, lport) with these flags conflict? Linux's rules:
 * overlapping addresses conflict unless both set SO_REUSEPORT, or both
 * set SO_REUSEADDR (and, for TCP, the one already there is not
 * listening). `self` is skipped. */
bool tern_pcb_conflicts(const struct tern_pcb_table *t, const struct tern_inpcb *self,
                        uint32_t laddr, uint16_t lport, bool reuseaddr, bool reuseport);
/* Insert a PCB whose addresses and flags are set; joins its reuseport
 * group. -1 and errno (ENOMEM) on failure. */
int tern_pcb_insert(struct tern_stack *s, struct tern_pcb_table *t, struct tern_inpcb *pcb);
void tern_pcb_remove(struct tern_stack *s, struct tern_inpcb *pcb);
/* Re-file a PCB whose peer or listening state changed. -1/ENOMEM. */
int tern_pcb_rehash(struct tern_stack *s, struct tern_inpcb *pcb);
/* Pick an ephemeral port for a PCB that will be bound to laddr (and, if
 * connecting, talk to faddr:fport), as RFC 6056 recommends. For a TCP
 * connect the port may be one other connections to other peers have (as
 * Linux's); the caller marks the PCB connect_port. 0 = none free. */
uint16_t tern_pcb_ephemeral(struct tern_stack *s, const struct tern_pcb_table *t,
                            uint32_t laddr, uint32_t faddr, uint16_t fport);
/* The PCB with exactly this 4-tuple (connected or TIME_WAIT), or NULL. */
struct tern_inpcb *tern_pcb_lookup_conn(struct tern_stack *s, const struct tern_pcb_table *t,
                                        uint32_t laddr, uint16_t lport, uint32_t faddr,
                                        uint16_t fport);
/* Best match for an arriving packet: the exact 4-tuple, else the most
 * specific PCB without a peer; a reuseport group answers with the member
 * the flow hash picks. NULL if none. */
struct tern_inpcb *tern_pcb_lookup(struct tern_stack *s, const struct tern_pcb_table *t,
                                   uint32_t laddr, uint16_t lport,
                                   uint32_t faddr, uint16_t fport);
/* Call fn for every PCB bound to lport (broadcast delivery). fn must not
 * remove PCBs. */
void tern_pcb_for_each_bound(const struct tern_pcb_table *t, uint16_t lport,
                             void (*fn)(struct tern_inpcb *pcb, void *arg), void *arg);

#endif
