/*
 * IPv4 reassembly (RFC 791 section 3.2, RFC 815).
 *
 * A datagram in reassembly is a queue of its fragments sorted by offset,
 * keyed by (src, dst, protocol, id) per RFC 791. Memory is bounded by the
 * stack's reasm_max_bytes across all queues and time by reasm_timeout_ns
 * per queue (the timer starts at the first fragment, as RFC 791's timer
 * does). When memory runs out, the datagram touched longest ago is
 * evicted to make room, as Linux does, so that a flood of fragments that
 * never complete cannot starve datagrams in progress for a whole timeout.
 * Each fragment is charged its whole buffer, not its data. In RFC 5722's spirit, an exact duplicate fragment is ignored and
 * any other overlap discards the whole datagram: overlaps only come from
 * broken or hostile senders, and honouring them lets an attacker rewrite
 * transport headers past a filter (RFC 1858).
 */
#ifndef TERN_NET_REASM_H
#define TERN_NET_REASM_H

#include <stdint.h>

#include "core/list.h"
#include "core/timer.h"

struct tern_stack;
struct tern_pkt;

#define TERN_REASM_BUCKETS 64

struct tern_reasm_queue {
    struct tern_list hnode;
    struct tern_list lru_node; /* oldest-touched first */
    uint32_t src, dst; /* host order */
    uint16_t id;
    uint8_t proto;
    uint32_t total_len;  /* payload bytes, known once the last fragment came */
    uint32_t mem;        /* buffer bytes held */
    struct tern_list frags;
    struct tern_timer timer;
};

struct tern_reasm {
    struct tern_list buckets[TERN_REASM_BUCKETS];
    struct tern_list lru;
    uint32_t count;
    uint64_t mem;
};

void tern_reasm_init(struct tern_stack *s);
void tern_reasm_destroy(struct tern_stack *s);
/* Takes a fragment whose IP header is parsed into p's metadata and whose
 * data starts at the payload; `offset` in bytes, `more` the MF bit.
 * Returns the whole datagram's payload (as a packet with the same
 * metadata) once complete, NULL otherwise. */
struct tern_pkt *tern_reasm_input_take(struct tern_stack *s, struct tern_pkt *p,
                                       uint16_t id, uint32_t offset, int more);

#endif
