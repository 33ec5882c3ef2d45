/*
 * Congestion control behind an ops table: the sender's loss response and
 * window growth, chosen per connection (tern_stack_config.tcp_congestion,
 * TCP_CONGESTION). Loss detection and recovery themselves (duplicate ACKs,
 * RFC 6675 SACK recovery, NewReno partial ACKs, the retransmission timer)
 * are the same for every algorithm and live in tcp_input.c / tcp_sack.c;
 * an algorithm only answers "how big is cwnd now" at the events below.
 *
 * Each stack holds the tables by value (tern_stack.tcp_cc[], filled by
 * tern_tcp_cc_setup when the stack is made), so the library needs no
 * relocated table of pointers; a connection names its algorithm by index
 * and keeps the algorithm's state in its union tern_tcp_cc_state.
 */
#ifndef TERN_TRANSPORT_TCP_CC_H
#define TERN_TRANSPORT_TCP_CC_H

#include <stdint.h>

struct tern_tcpcb;

struct tern_tcp_cc_ops {
    const char *name; /* as Linux names it for TCP_CONGESTION */
    /* A connection begins (or switches to this algorithm). */
    void (*init)(struct tern_tcpcb *tp, uint64_t now);
    /* `acked` new bytes were cumulatively acknowledged outside recovery:
     * grow cwnd (slow start below ssthresh, then the algorithm's curve). */
    void (*ack)(struct tern_tcpcb *tp, uint32_t acked, uint64_t now);
    /* A loss was found by duplicate ACKs or SACK (fast retransmit): set
     * ssthresh; the recovery code then sets cwnd from it. */
    void (*congestion)(struct tern_tcpcb *tp, uint64_t now);
    /* Recovery ended (an ACK covered the recovery point). */
    void (*recovered)(struct tern_tcpcb *tp, uint64_t now);
    /* A retransmission timeout: set ssthresh and cwnd (one segment). */
    void (*timeout)(struct tern_tcpcb *tp, uint64_t now);
};

/* Per-connection state of the algorithm in use. */
struct tern_tcp_cubic {
    double w_max;       /* segments, window before the last reduction */
    double k;           /* seconds from the epoch to reach w_max again */
    double w_est;       /* segments, the Reno-friendly estimate (RFC 9438 4.3) */
    double carry;       /* fraction of a byte of growth not yet applied */
    uint64_t epoch;     /* ns; 0 = no epoch (slow start, or one to begin) */
};

union tern_tcp_cc_state {
    struct tern_tcp_cubic cubic;
    uint32_t reno_bytes_acked; /* RFC 5681 3.1 appropriate byte counting */
};

/* One entry per enum tern_tcp_cc (include/tern/stack.h). */
#define TERN_TCP_CC_COUNT 2
_Static_assert(TERN_TCP_CC_COUNT <= 8, "tern_tcpcb.cc has 3 bits");
void tern_tcp_cc_newreno_ops(struct tern_tcp_cc_ops *ops);
void tern_tcp_cc_cubic_ops(struct tern_tcp_cc_ops *ops);
/* Fill a stack's tables, indexed by enum tern_tcp_cc. */
void tern_tcp_cc_setup(struct tern_tcp_cc_ops ops[TERN_TCP_CC_COUNT]);
/* The enum tern_tcp_cc of a name ("reno", "newreno", "cubic"), or -1. */
int tern_tcp_cc_by_name(const char *name);

/* Shared pieces. */
/* RFC 5681 eq. (4): max(FlightSize / 2, 2 * SMSS). */
uint32_t tern_tcp_cc_half_flight(const struct tern_tcpcb *tp);
/* Slow start by RFC 3465 with L = 2 SMSS (Linux's limit too); returns the
 * acknowledged bytes left over once cwnd reaches ssthresh. */
uint32_t tern_tcp_cc_slow_start(struct tern_tcpcb *tp, uint32_t acked);

#endif
