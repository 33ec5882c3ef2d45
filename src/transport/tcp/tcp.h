/*
 * TCP (RFC 9293): the connection block and the calls the socket layer
 * makes. See docs/tcp-plan.md for the whole design.
 *
 * Ownership. A TCB belongs to exactly one socket, is allocated with it
 * (tern_tcp_attach) and freed by the reaper with it (tern_tcp_detach). The
 * protocol's reference on the socket is "the PCB is in the TCP table":
 * taken at connect, listen or passive open, released by tern_tcp_drop
 * when the connection reaches CLOSED. Every timer of a TCB is cancelled
 * before that release, so nothing can fire against a socket the protocol
 * let go. A listener holds its not-yet-accepted children through their
 * protocol reference; accept adds the user's.
 */
#ifndef TERN_TRANSPORT_TCP_H
#define TERN_TRANSPORT_TCP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "buf/ring.h"
#include "core/list.h"
#include "core/timer.h"
#include "wire/tcp.h"
#include "transport/tcp/tcp_cc.h"
#include "transport/tcp/tcp_listen.h"
#include "transport/tcp/tcp_reass.h"
#include "transport/tcp/tcp_sack.h"
#include "transport/tcp/tcp_timewait.h"
#include "transport/tcp/tcp_trace.h"

struct tern_stack;
struct tern_socket;
struct tern_pkt;

enum tern_tcp_state {
    TCPS_CLOSED,
    TCPS_LISTEN,
    TCPS_SYN_SENT,
    TCPS_SYN_RECEIVED,
    TCPS_ESTABLISHED,
    TCPS_FIN_WAIT_1,
    TCPS_FIN_WAIT_2,
    TCPS_CLOSE_WAIT,
    TCPS_CLOSING,
    TCPS_LAST_ACK,
    TCPS_TIME_WAIT,
};

const char *tern_tcp_state_name(enum tern_tcp_state st);
const char *tern_tcp_timer_name(unsigned k);

/* What a connection's timer can be waiting for. */
enum tern_tcp_timer {
    TERN_TCPT_DELACK,    /* RFC 1122 4.2.3.2 */
    TERN_TCPT_REXMT,     /* RFC 6298 */
    TERN_TCPT_PERSIST,   /* RFC 9293 3.8.6.1 zero-window probes */
    TERN_TCPT_KEEPALIVE, /* RFC 1122 4.2.3.6 */
    TERN_TCPT_FINWAIT2,  /* an orphan's wait for the peer's FIN */
    TERN_TCPT_RECLAIM,   /* give empty buffers back (tern_tcp_reclaim_later) */
    TERN_TCPT__COUNT,
};

struct tern_tcpcb {
    struct tern_socket *so;

    /* Send sequence space (RFC 9293 section 3.3.1). The send ring holds
     * the bytes from snd_una on: unacknowledged, then unsent. */
    uint32_t iss, snd_una, snd_nxt, snd_max;
    uint32_t snd_wnd, snd_wl1, snd_wl2;
    uint32_t snd_buf_seq; /* sequence number of the first byte of the send ring */

    /* Receive sequence space. */
    uint32_t irs, rcv_nxt, rcv_adv;
    union {
        uint32_t rcv_fin_seq; /* where the peer's FIN is, once seen out of order
                               * (rcv_fin_pending) */
        /* Otherwise, receive autotuning's round: the sequence number the
         * reader had reached when it began (tern_tcp_rcvbuf_autotune).
         * After the peer's FIN nothing more comes to tune for. */
        uint32_t drs_seq;
    };

    uint16_t mss;      /* what we send per segment (RFC 9293 3.7.1) */
    uint16_t our_mss;  /* what we announced */
    uint16_t user_mss; /* TCP_MAXSEG: a cap on both, 0 = none */
    /* The last events (tcp_trace.h): events_cap slots allocated with the
     * block, events_next counts every event recorded. */
    uint16_t events_cap;
    /* Keepalive (RFC 1122 4.2.3.6, Linux's knobs, defaults and bounds:
     * times 1..32767 s, 1..127 probes). */
    uint16_t keep_idle_s, keep_intvl_s;
    uint8_t keep_cnt;
    uint8_t keep_probes;   /* sent since the peer was last heard */
    enum tern_tcp_state state : 8;
    uint8_t snd_wscale, rcv_wscale;
    uint8_t backoff;
    uint8_t segs_unacked; /* ACK policy (RFC 1122 4.2.3.2, RFC 5681 4.2) */

    /* Flags: one bit each, together so they pack. */
    bool fin_queued : 1;   /* the user shut down writing: FIN follows the data,
                            * at sequence snd_buf_seq + bytes in the send ring */
    bool fin_received : 1;
    bool rcv_fin_pending : 1;
    bool wscale_ok : 1;
    bool sack_ok : 1;      /* both sides sent SACK-permitted (RFC 2018 2) */
    bool ts_ok : 1;        /* both sides sent timestamps (RFC 7323 3.2) */
    bool rtt_timing : 1;
    bool in_recovery : 1;
    bool sack_recovery : 1;    /* this recovery is RFC 6675's */
    bool rto_recovery : 1;     /* resending after a timeout until `recover` is acked:
                                * no fast retransmit meanwhile (RFC 6582 section 4,
                                * Linux's CA_Loss) */
    bool ack_now : 1;
    bool nodelay : 1;      /* TCP_NODELAY: Nagle off */
    bool linger_zero : 1;  /* SO_LINGER with 0: close sends RST */
    bool keepalive_on : 1;
    bool opened : 1;       /* a SYN was sent or received: it has been a connection */
    bool connect_reported : 1; /* connect() has returned 0 after EINPROGRESS */
    /* Tail loss probe (RFC 8985 section 7): the REXMT deadline is the
     * probe timeout (PTO), not the RTO; a probe is out (tlp_end_seq
     * holds); it resent the last segment rather than sending new data. */
    bool tlp_armed : 1;
    bool tlp_out : 1;
    bool tlp_retrans : 1;
    /* A short segment of new data went out since the connection was
     * last idle (all sent data acked): Nagle holds the next short one
     * (Minshall's variant, conservatively: until idle). */
    bool short_sent : 1;
    /* A fast retransmit went out (not after a loss probe that resent the
     * tail), nothing else has been resent since and nothing has shown it
     * needless yet: the first sign that does (an echoed timestamp, RFC
     * 3522; a D-SACK, RFC 3708) proves reordering (tcp_input.c).
     * Cleared, the question closed, by any other retransmission, a loss
     * probe, an ACK ending inside what was resent, or SND.UNA a window
     * past RecoveryPoint. */
    bool rxt_unproven : 1;
    uint8_t cc : 3;    /* enum tern_tcp_cc: an index into the stack's tables */

    uint8_t retransmits;   /* consecutive timeouts (at most TERN_TCP_MAX_RETRIES + 1) */
    uint8_t soft_error;    /* the last soft ICMP error, an errno (all are below 256):
                            * reported if the connection times out (Linux's sk_err_soft) */

    /* RFC 6298 estimator, in ns. */
    uint64_t srtt, rttvar, rto;
    uint32_t rtt_start_us; /* when the timed segment left: the stack's clock in us,
                            * modulo 2^32 (a round trip is far shorter) */
    uint32_t drs_time_ms;  /* when receive autotuning's round began, in ms, modulo
                            * 2^32 */

    uint32_t ts_recent;     /* the peer's TSval to echo (RFC 7323 4.3) */
    uint32_t ts_offset;     /* per address pair TSval offset: no uptime leak */
    uint32_t events_next;   /* events recorded, ever (the ring: events_cap) */
    uint32_t ts_recent_at_s; /* when ts_recent was taken, in whole seconds of the
                              * stack's clock: PAWS's 24-day rule needs no more */
    /* When we last answered an unacceptable bare segment: the stack's
     * clock in ms plus one (0 = never), modulo 2^32; only differences
     * under a second matter. */
    uint32_t last_oow_ack_ms;
    /* TCP_USER_TIMEOUT (RFC 5482), in ms as the option gives it: how long
     * sent data may stay unacknowledged, 0 = no limit beyond the retry
     * count. */
    uint32_t user_timeout_ms;
    uint32_t unacked_since_ms; /* when the oldest unacknowledged data left: the
                                * stack's clock in ms, modulo 2^32 */

    uint32_t rtt_seq;  /* the segment being timed (Karn: none if 0 timing) */
    uint32_t total_retransmits;

    /* Congestion control: the algorithm's window (tcp_cc.h) and the loss
     * recovery every algorithm shares: fast retransmit on DupThresh
     * duplicate ACKs, then RFC 6675 SACK recovery when the peer SACKs,
     * else RFC 6582 NewReno; limited transmit (RFC 3042) before it. */
    uint32_t cwnd, ssthresh;
    uint16_t dupacks;      /* saturates */
    /* DupThresh in segments (RFC 6675 leaves it open to the literature):
     * TERN_TCP_DUPTHRESH, raised to the reordering this connection has
     * seen, as Linux's tp->reordering (tcp_input.c reordering_seen); in
     * force as tern_tcp_dupthresh says. */
    uint8_t reordering;
    union {
        /* In recovery (in_recovery or rto_recovery), and after it while
         * rxt_unproven: RecoveryPoint, SND.MAX when it began. */
        uint32_t recover;
        /* Out of recovery, while tlp_out: SND.MAX after the loss probe
         * (RFC 8985's TLP.end_seq). Recovery ends any probe and a probe
         * clears rxt_unproven, so the two are never wanted at once. */
        uint32_t tlp_end_seq;
    };
    uint32_t high_rxt;     /* RFC 6675 HighRxt, in SACK recovery */
    union tern_tcp_cc_state cc_state;
    struct tern_tcp_sackboard sackb;

    struct tern_ring snd, rcv;
    /* The out-of-order queue: made for the first segment that needs it,
     * given back with the buffers when the connection goes idle, so an
     * in-order connection carries only this pointer. */
    struct tern_tcp_reass *ooo;

    /* One wheel timer; a deadline per kind (0 = off). See tcp_timer.c. */
    struct tern_timer timer;
    uint64_t deadline[TERN_TCPT__COUNT];

    uint64_t last_rx;      /* when a segment last arrived */

    /* Listener: its queues (tcp_listen.h), allocated by listen. */
    struct tern_tcp_lq *lq;
    /* Child: its place on its listener's accept queue, and the listener. */
    struct tern_list child_node;
    struct tern_socket *listener;

    struct tern_tcp_event events[]; /* events_cap of them */
};

/* Record an event in the connection's ring (tcp_trace.h), at the
 * stack's clock: tern_tcp_trace(s, tp, ev, ...). Inline, as it runs for
 * every segment in and out. */
static inline void tern_tcp_trace_at(uint64_t now, struct tern_tcpcb *tp, enum tern_tcp_ev ev,
                                     uint32_t seq, uint32_t ack, uint16_t wnd, uint16_t len,
                                     uint8_t flags, uint16_t extra)
{
    uint32_t cap = tp->events_cap;
    if (!cap)
        return;
    /* A division per segment shows in a bulk profile: the default ring
     * (8) and any power of two take a mask instead. */
    uint32_t slot = (cap & (cap - 1)) == 0 ? tp->events_next & (cap - 1) : tp->events_next % cap;
    tp->events_next++;
    bool segment = ev == TERN_TCPE_RX || ev == TERN_TCPE_TX;
    tp->events[slot] = (struct tern_tcp_event){
        .t_us = (uint32_t)(now / 1000), .seq = seq, .ack = ack, .len = len,
        .aux = segment ? wnd : extra, .flags = flags, .ev = (uint8_t)ev & 0xf,
        .state = (uint8_t)tp->state & 0xf};
}
#define tern_tcp_trace(s, tp, ...) tern_tcp_trace_at((s)->now, (tp), __VA_ARGS__)

/* ---- Called by the socket layer (src/sock/api.c). ---- */
/* Bytes a TCP socket's block needs behind it: the connection block and
 * its event ring. */
size_t tern_tcp_block_size(const struct tern_stack *s);
int tern_tcp_attach(struct tern_stack *s, struct tern_socket *so);
void tern_tcp_detach(struct tern_stack *s, struct tern_socket *so);
/* Stack teardown: cancel timers, leave listener queues, send nothing. */
void tern_tcp_teardown(struct tern_stack *s, struct tern_socket *so);
/* Each returns 0 or an errno. */
/* The PCB's addresses are set and it is in the table: send the SYN. */
int tern_tcp_connect(struct tern_stack *s, struct tern_socket *so);
int tern_tcp_listen(struct tern_stack *s, struct tern_socket *so, int backlog);
/* The next established child, with the user's reference taken; NULL
 * (errno EAGAIN or EINVAL) if none. */
struct tern_socket *tern_tcp_accept(struct tern_stack *s, struct tern_socket *so);
/* Bytes accepted into the send buffer, or -errno. */
long tern_tcp_send(struct tern_stack *s, struct tern_socket *so, const struct iovec *iov,
                   size_t iovcnt, size_t len);
/* Bytes read, 0 at end of stream, or -errno. */
long tern_tcp_recv(struct tern_stack *s, struct tern_socket *so, const struct iovec *iov,
                   size_t iovcnt, size_t len, int flags);
int tern_tcp_shutdown(struct tern_stack *s, struct tern_socket *so, bool rd, bool wr);
/* The user closes: the connection goes on (or is reset) on its own. */
void tern_tcp_close(struct tern_stack *s, struct tern_socket *so);
short tern_tcp_poll(struct tern_socket *so);
struct tcp_info;
/* Fill Linux's struct tcp_info (the fields Tern keeps; others zero). */
void tern_tcp_get_info(const struct tern_tcpcb *tp, struct tcp_info *ti);

/* ---- The protocol. ---- */
void tern_tcp_input_take(struct tern_stack *s, struct tern_pkt *p);
/* An ICMP error about a segment we sent (the quoted header's fields). */
struct tern_tcp_icmp {
    int err;
    bool hard;
    bool frag_needed;    /* destination unreachable, fragmentation needed */
    uint16_t mtu;        /* ... the next hop's MTU, 0 if not given */
    uint16_t quoted_len; /* the quoted datagram's total length */
    uint32_t seq;        /* the quoted segment's sequence number */
};
void tern_tcp_error(struct tern_stack *s, uint32_t laddr, uint16_t lport, uint32_t faddr,
                    uint16_t fport, const struct tern_tcp_icmp *e);
/* Send what the state and windows allow (data, FIN, a pending ACK). */
void tern_tcp_output(struct tern_stack *s, struct tern_tcpcb *tp);
/* Send `len` bytes of the send buffer from `seq` (already sent once if
 * seq is below SND.MAX: counted as a retransmission), with the FIN if they
 * end where the FIN goes and the user has shut down writing. Returns the
 * sequence space used (len, plus one for a FIN). Moves no pointer but
 * SND.MAX. */
uint32_t tern_tcp_send_data(struct tern_stack *s, struct tern_tcpcb *tp, uint32_t seq,
                            uint32_t len);
/* Send a segment with no data: flags, at seq, acking ack (if ACK set). */
void tern_tcp_send_ctl(struct tern_stack *s, struct tern_tcpcb *tp, uint8_t flags, uint32_t seq);
/* Send a segment without data and without a connection block: h's ports,
 * numbers, flags, window and options are the caller's (hlen is set here). */
void tern_tcp_emit_ctl(struct tern_stack *s, uint32_t laddr, uint32_t faddr,
                       struct tern_tcp_hdr *h, uint8_t ttl, uint8_t tos);
/* A reset for a segment that has no connection (RFC 9293 3.10.7.1). */
void tern_tcp_reset_for(struct tern_stack *s, uint32_t laddr, uint16_t lport, uint32_t faddr,
                        uint16_t fport, uint32_t seg_seq, uint32_t seg_ack, uint8_t seg_flags,
                        uint32_t seg_len);
/* Our timestamp clock: 1 ms ticks (RFC 7323 5.4 asks 1 ms..1 s). */
static inline uint32_t tern_tcp_ts_now(const struct tern_tcpcb *tp, uint64_t now)
{
    return (uint32_t)(now / 1000000u) + tp->ts_offset;
}
/* Payload bytes per segment once the options every segment carries are
 * paid for (the timestamp option, 12 bytes, as Linux). */
static inline uint32_t tern_tcp_seg_size(const struct tern_tcpcb *tp)
{
    return tp->mss - (tp->ts_ok ? 12u : 0u);
}
/* DupThresh in force: the reordering seen, but not more than half the
 * segments in flight (nor less than the standard 3). A hole behind fewer
 * segments than DupThresh can never collect enough SACKs to be judged
 * lost and would wait for the retransmission timer; on a path whose
 * reordering spans more than the window (a 2 ms delay at a 0.3 ms round
 * trip: tap.tcp_impaired) every loss after a timeout became another
 * timeout (Linux's old tcp_time_to_recover capped it by the flight
 * likewise). Falling back to 3 instead of the cap was tried: on the
 * matrix's jitter and reorder rows the small windows of slow start then
 * kept DupThresh at 3, and their gains were gone. */
static inline unsigned tern_tcp_dupthresh(const struct tern_tcpcb *tp)
{
    uint32_t half = (tp->snd_max - tp->snd_una) / tern_tcp_seg_size(tp) / 2;
    uint32_t cap = half > TERN_TCP_DUPTHRESH ? half : TERN_TCP_DUPTHRESH;
    return tp->reordering < cap ? tp->reordering : cap;
}
/* The sequence number of our FIN (valid once fin_queued). */
static inline uint32_t tern_tcp_fin_seq(const struct tern_tcpcb *tp)
{
    return tp->snd_buf_seq + tern_ring_len(&tp->snd);
}
/* The round trip of the timed segment, from rtt_start_us to now, in ns. */
uint64_t tern_tcp_rtt_since(const struct tern_stack *s, const struct tern_tcpcb *tp);
/* The user shut down writing and the FIN has not been sent yet. */
bool tern_tcp_fin_unsent(const struct tern_tcpcb *tp);
/* Move to CLOSED with an error for the user (0: none), cancel timers,
 * leave the table: the protocol's last word. */
void tern_tcp_drop(struct tern_stack *s, struct tern_tcpcb *tp, int err);
void tern_tcp_unqueue_child(struct tern_stack *s, struct tern_tcpcb *tp);
void tern_tcp_set_state(struct tern_stack *s, struct tern_tcpcb *tp, enum tern_tcp_state st);
void tern_tcp_timers_init(struct tern_tcpcb *tp);
/* Set kind k's deadline (absolute ns); stop it (lazily: the wheel timer
 * may still fire and find nothing); stop everything (at once). */
void tern_tcp_timer_set(struct tern_stack *s, struct tern_tcpcb *tp, enum tern_tcp_timer k,
                        uint64_t when);
static inline void tern_tcp_timer_stop(struct tern_tcpcb *tp, enum tern_tcp_timer k)
{
    tp->deadline[k] = 0;
}
static inline bool tern_tcp_timer_on(const struct tern_tcpcb *tp, enum tern_tcp_timer k)
{
    return tp->deadline[k] != 0;
}
void tern_tcp_timers_stop_all(struct tern_stack *s, struct tern_tcpcb *tp);
/* The out-of-order queue's bytes, and whether it holds none. */
static inline uint32_t tern_tcp_ooo_held(const struct tern_tcpcb *tp)
{
    return tp->ooo ? tern_tcp_reass_bytes_held(tp->ooo) : 0;
}
static inline bool tern_tcp_ooo_empty(const struct tern_tcpcb *tp)
{
    return !tp->ooo || tern_tcp_reass_empty(tp->ooo);
}
/* The queue, made if need be; NULL when memory is short. */
struct tern_tcp_reass *tern_tcp_ooo_make(struct tern_tcpcb *tp);
/* Give the queue back (with whatever it holds). */
void tern_tcp_ooo_free(struct tern_tcpcb *tp);
/* A buffer has drained: give empty buffers back a little later, so an
 * idle connection holds none while one that drains and refills all the
 * time (a bulk transfer) does not free and regrow its blocks each time. */
void tern_tcp_reclaim_later(struct tern_stack *s, struct tern_tcpcb *tp);
/* Choose ISS, MSS to announce and window scale for a new connection
 * whose PCB addresses are set. */
void tern_tcp_prepare(struct tern_stack *s, struct tern_tcpcb *tp);
/* RFC 6528's initial sequence number for a 4-tuple, now. */
uint32_t tern_tcp_isn(struct tern_stack *s, uint32_t laddr, uint16_t lport, uint32_t faddr,
                      uint16_t fport);
/* The MSS we announce towards faddr: the route's MTU, capped by TCP_MAXSEG. */
uint16_t tern_tcp_our_mss(struct tern_stack *s, uint32_t faddr, uint16_t user_mss);
/* What we send per segment, once the peer's SYN told its MSS (0: none
 * given): the smaller of that, our_mss and a path MTU learned for the
 * peer's address (net/pmtu.h), less the headers. */
uint16_t tern_tcp_send_mss(struct tern_stack *s, const struct tern_tcpcb *tp, uint16_t peer_mss);
/* The window scale a receive buffer needs (RFC 7323 2.2). */
uint8_t tern_tcp_wscale_for(uint32_t rcvbuf);
/* The largest receive buffer the socket may come to: its own, or
 * autotuning's ceiling (tcp_rcvbuf_max) unless SO_RCVBUF fixed it. The
 * window scale is chosen for it, once, in the SYN (RFC 7323 2.2). */
uint32_t tern_tcp_rcvbuf_ceiling(const struct tern_stack *s, const struct tern_socket *so);
/* Autotuning (tcp_rcvbuf_max, tcp_sndbuf_max): after a read, and after
 * an ACK that grew the congestion window. */
void tern_tcp_rcvbuf_autotune(struct tern_stack *s, struct tern_tcpcb *tp);
void tern_tcp_sndbuf_autotune(struct tern_stack *s, struct tern_tcpcb *tp);
/* The timestamp offset between two addresses, so TSvals do not leak
 * uptime yet grow across connections. */
uint32_t tern_tcp_ts_offset(struct tern_stack *s, uint32_t laddr, uint32_t faddr);
/* A passive open completed (a request's ACK or a SYN cookie): fill a new
 * connection block and enter ESTABLISHED. */
void tern_tcp_establish_passive(struct tern_stack *s, struct tern_tcpcb *tp,
                                const struct tern_tcp_synparams *p);
/* The REXMT deadline after sending or an ACK that moved SND.UNA: the
 * probe timeout where a tail loss probe may go (RFC 8985 7.2), else the
 * RTO. */
void tern_tcp_rexmt_or_probe_arm(struct tern_stack *s, struct tern_tcpcb *tp);
/* After a segment went: arm the REXMT deadline if it is off, and let new
 * data push a probe timeout back or bring one forward of the RTO. */
void tern_tcp_rexmt_after_send(struct tern_stack *s, struct tern_tcpcb *tp, bool new_data);
void tern_tcp_rexmt_arm(struct tern_stack *s, struct tern_tcpcb *tp);
void tern_tcp_delack_arm(struct tern_stack *s, struct tern_tcpcb *tp);
/* (Re)start keepalive timing if it is on and the connection synchronized. */
void tern_tcp_keepalive_arm(struct tern_stack *s, struct tern_tcpcb *tp);
uint32_t tern_tcp_rcv_window(const struct tern_tcpcb *tp);
/* The out-of-order queue's memory budget for a receive buffer: the window
 * plus its per-piece bookkeeping, so a whole window can be held. */
static inline uint32_t tern_tcp_ooo_limit(uint32_t rcvbuf)
{
    return rcvbuf + rcvbuf / 16 + 64u * TERN_TCP_REASS_BLOCK_COST;
}
void tern_tcp_rtt_sample(struct tern_stack *s, struct tern_tcpcb *tp, uint64_t rtt);

#define TERN_TCP_FIN_TIMEOUT_NS (60 * 1000000000ull) /* orphaned FIN_WAIT_2, Linux's tcp_fin_timeout */
#define TERN_TCP_RTO_MIN_NS (200 * 1000000ull) /* Linux's; RFC 6298 says 1 s */
#define TERN_TCP_RTO_MAX_NS (120 * 1000000000ull)
#define TERN_TCP_RTO_INIT_NS (1000000000ull)   /* RFC 6298 2.1 */
#define TERN_TCP_DELACK_NS (40 * 1000000ull)
/* Zero-window probes back off to 64 RTOs apart (2^6), as Linux's reach
 * its RTO_MAX; an orphan gives up there. */
#define TERN_TCP_PERSIST_MAX_BACKOFF 6
#define TERN_TCP_ORPHAN_PROBES 8
/* RFC 8985 7.2: the floor of the probe timeout (Linux's 2 jiffies, at
 * least), and what a lone segment's PTO adds for the peer's delayed ACK
 * (WCDelAckT, RFC 8985's 200 ms). */
#define TERN_TCP_PTO_MIN_NS (10 * 1000000ull)
#define TERN_TCP_PTO_DELACK_NS (200 * 1000000ull)
#define TERN_TCP_RECLAIM_NS (100 * 1000000ull)
#define TERN_TCP_MAX_RETRIES 15
#define TERN_TCP_SYN_RETRIES 6
#define TERN_TCP_CHALLENGE_ACKS_PER_SEC 1000
#define TERN_TCP_MIN_PMTU 552 /* Linux's ip_rt_min_pmtu: no smaller MTU is believed */
#define TERN_TCP_OOW_ACK_INTERVAL_NS (500 * 1000000ull) /* Linux's tcp_invalid_ratelimit */

#endif
