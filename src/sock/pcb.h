/*
 * Protocol control blocks and their tables (one table per protocol).
 *
 * Invariant 4 of DESIGN.md: a lookup reads only fields of the PCB and of
 * the table. The reuse flags, bound addresses and connected peer are copied
 * here at bind/connect/setsockopt time, so a lookup never dereferences a
 * socket. A PCB sits in a table exactly while its protocol holds its
 * socket (the protocol reference), so a PCB found by a lookup always has a
 * live socket behind it.
 *
 * Addresses and ports are in host byte order.
 */
#ifndef TERN_SOCK_PCB_H
#define TERN_SOCK_PCB_H

#include <stdint.h>
#include <stdbool.h>

#include "core/list.h"

struct tern_stack;

#define TERN_PCB_BUCKETS 1024

struct tern_reuseport_group;

struct tern_inpcb {
    struct tern_list hnode;       /* in its table's port bucket */
    struct tern_pcb_table *table; /* NULL while unbound */
    uint32_t laddr, faddr;
    uint16_t lport, fport;
    bool reuseaddr;
    bool reuseport;
    bool connected;
    bool bound_addr;              /* laddr set by bind(), not by connect() */
    bool bound_port;              /* lport set by bind(), not automatically */
    uint64_t bind_seq;            /* later binds win ties, as on Linux */
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
    struct tern_list buckets[TERN_PCB_BUCKETS];
    uint32_t count;
    uint64_t bind_seq;
};

void tern_pcb_table_init(struct tern_pcb_table *t, const char *name);
void tern_pcb_init(struct tern_inpcb *pcb);
/* Would binding (laddr, lport) with these flags conflict (Linux rules:
 * overlapping addresses conflict unless both set SO_REUSEADDR, or both
 * set SO_REUSEPORT)? `self` is skipped. */
bool tern_pcb_conflicts(const struct tern_pcb_table *t, const struct tern_inpcb *self,
                        uint32_t laddr, uint16_t lport, bool reuseaddr, bool reuseport);
/* Insert a PCB whose laddr/lport/flags are set; joins its reuseport group.
 * -1 and errno (ENOMEM) on failure. */
int tern_pcb_insert(struct tern_stack *s, struct tern_pcb_table *t, struct tern_inpcb *pcb);
void tern_pcb_remove(struct tern_stack *s, struct tern_inpcb *pcb);
/* Re-file a PCB whose connection state changed (leaves or rejoins the
 * group; connected PCBs are matched exactly, never by group). */
int tern_pcb_rehash(struct tern_stack *s, struct tern_inpcb *pcb);
/* Pick an ephemeral port for a PCB that will be bound to laddr (and, if
 * connecting, talk to faddr:fport), as RFC 6056 recommends. 0 = none free. */
uint16_t tern_pcb_ephemeral(struct tern_stack *s, const struct tern_pcb_table *t,
                            uint32_t laddr, uint32_t faddr, uint16_t fport);
/* Best match for an arriving packet: a connected PCB matching all four,
 * else the most specific bound PCB; a reuseport group answers with the
 * member the flow hash picks. NULL if none. */
struct tern_inpcb *tern_pcb_lookup(struct tern_stack *s, const struct tern_pcb_table *t,
                                   uint32_t laddr, uint16_t lport,
                                   uint32_t faddr, uint16_t fport);
/* Call fn for every PCB that would accept a broadcast to lport. */
void tern_pcb_for_each_bound(const struct tern_pcb_table *t, uint16_t lport,
                             void (*fn)(struct tern_inpcb *pcb, void *arg), void *arg);

#endif
