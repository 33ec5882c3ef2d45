/*
 * A connection's recent history: the last events of each TCP connection
 * (segments in and out, state changes, retransmissions, timers, drops),
 * kept in a small ring in its connection block and printed with it
 * (tern_socket_events_dump, the socket table, ternstat, the gdb
 * extension). Each recording point is also a USDT probe (obs/probe.h),
 * so a tracer sees every event, not only the last few.
 *
 * The ring holds tern_stack_config.tcp_event_ring events (0 turns it off)
 * and is allocated with the connection block; recording costs a copy of
 * 18 bytes. Times are the stack's, in microseconds modulo 2^32 (about 71
 * minutes), printed relative to now.
 */
#ifndef TERN_TRANSPORT_TCP_TRACE_H
#define TERN_TRANSPORT_TCP_TRACE_H

#include <stdint.h>
#include <stdio.h>

struct tern_stack;
struct tern_tcpcb;

enum tern_tcp_ev {
    TERN_TCPE_RX,         /* a segment arrived: seq, ack, wnd, len, flags */
    TERN_TCPE_TX,         /* a segment left */
    TERN_TCPE_STATE,      /* state changed: extra = the old state */
    TERN_TCPE_RETRANSMIT, /* extra: 0 timeout, 1 fast/NewReno, 2 SACK, 3 probe; seq, len */
    TERN_TCPE_TIMER,      /* a timer fired: extra = enum tern_tcp_timer */
    TERN_TCPE_DROP,       /* a segment of this connection was refused: extra = counter id */
    TERN_TCPE__COUNT,
};

/* 18 bytes, packed: every connection carries tcp_event_ring of these.
 * A segment's window and the other events' detail share `aux`, as no
 * event has both worth keeping (a drop's window is in the probe). */
struct tern_tcp_event {
    uint32_t t_us;
    uint32_t seq, ack;
    uint16_t len;      /* payload bytes */
    uint16_t aux;      /* rx, tx: the window field as on the wire; the others:
                        * the detail enum tern_tcp_ev names */
    uint8_t flags;     /* TCP flags of the segment */
    uint8_t ev : 4;    /* enum tern_tcp_ev */
    uint8_t state : 4; /* the state after the event */
} __attribute__((packed, aligned(2)));

/* Recording is tern_tcp_trace(s, tp, ev, seq, ack, wnd, len, flags,
 * extra), inline in tcp.h. */
const char *tern_tcp_ev_name(unsigned ev);
/* The ring, oldest first, one line per event. */
void tern_tcp_events_print(const struct tern_stack *s, const struct tern_tcpcb *tp, FILE *f,
                           const char *indent);

#endif
