/*
 * TIME_WAIT as a compact record (RFC 9293 section 3.6: the connection's
 * 4-tuple is held for 2 MSL so old duplicates die out), not a connection.
 *
 * Ownership. When a connection enters TIME_WAIT its socket is let go at
 * once (the user sees CLOSED, as on Linux after tcp_time_wait) and what
 * TIME_WAIT needs is copied into a record: the 4-tuple in a PCB of kind
 * TERN_PCB_TIMEWAIT, the sequence numbers to answer with, the peer's last
 * timestamp, one timer. The stack owns every record (on its list, in the
 * TCP table's connection hash and bind bucket) from tern_tcp_tw_enter to
 * tern_tcp_tw_free, which the 2MSL timer, a reopening SYN (RFC 6191) and
 * stack teardown call: the only places a record is freed. A record never
 * points at a socket, so nothing can follow it to freed memory.
 *
 * Bounded (DESIGN.md rule 7): at most tern_stack_config.tcp_timewait_max
 * records; past it a connection closes without TIME_WAIT, counted.
 */
#ifndef TERN_TRANSPORT_TCP_TIMEWAIT_H
#define TERN_TRANSPORT_TCP_TIMEWAIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/list.h"
#include "core/timer.h"
#include "sock/pcb.h"

struct tern_stack;
struct tern_tcpcb;

struct tern_tcp_tw {
    struct tern_inpcb pcb;   /* kind TERN_PCB_TIMEWAIT: first, see tern_tcp_tw_of */
    struct tern_list node;   /* the stack's list of records */
    struct tern_timer timer; /* 2MSL */
    uint64_t id;             /* the socket it came from, for dumps */
    uint32_t snd_nxt, rcv_nxt;
    uint32_t ts_recent, ts_offset;
    uint32_t rcv_wnd;        /* bytes: the window last advertised */
    uint16_t wnd;            /* ... as the window field carried it */
    uint8_t snd_wscale;      /* the peer's window scale */
    bool ts_ok;
    uint8_t ttl, tos;
};

static inline struct tern_tcp_tw *tern_tcp_tw_of(struct tern_inpcb *pcb)
{
    return tern_container_of(pcb, struct tern_tcp_tw, pcb);
}

void tern_tcp_tw_init(struct tern_stack *s);
/* The connection tp enters TIME_WAIT: a record takes its place and tp is
 * dropped (CLOSED, out of the table, the protocol's reference released).
 * If no record can be made (limit, memory) the connection just closes,
 * counted. Either way tp is CLOSED on return. */
void tern_tcp_tw_enter(struct tern_stack *s, struct tern_tcpcb *tp);
void tern_tcp_tw_free(struct tern_stack *s, struct tern_tcp_tw *tw);
/* Restart the 2MSL wait (a retransmitted FIN arrived). */
void tern_tcp_tw_restart(struct tern_stack *s, struct tern_tcp_tw *tw);
/* Acknowledge what the record holds: SND.NXT, RCV.NXT, the timestamp. */
void tern_tcp_tw_send_ack(struct tern_stack *s, struct tern_tcp_tw *tw);
/* Stack teardown: free every record. */
void tern_tcp_tw_destroy_all(struct tern_stack *s);
void tern_tcp_tw_dump(const struct tern_stack *s, FILE *f);

#endif
