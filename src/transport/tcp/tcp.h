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
#include "transport/tcp/tcp_reass.h"

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

struct tern_tcpcb {
    struct tern_socket *so;
    enum tern_tcp_state state;

    /* Send sequence space (RFC 9293 section 3.3.1). The send ring holds
     * the bytes from snd_una on: unacknowledged, then unsent. */
    uint32_t iss, snd_una, snd_nxt, snd_max;
    uint32_t snd_wnd, snd_wl1, snd_wl2;
    uint8_t snd_wscale, rcv_wscale;
    bool fin_queued;   /* the user shut down writing: FIN follows the data,
                        * at sequence snd_buf_seq + bytes in the send ring */

    /* Receive sequence space. */
    uint32_t irs, rcv_nxt, rcv_adv;
    bool fin_received;

    uint16_t mss;      /* what we send per segment (RFC 9293 3.7.1) */
    uint16_t our_mss;  /* what we announced */
    bool wscale_ok;
    bool sack_ok;      /* both sides sent SACK-permitted (RFC 2018 2) */
    bool ts_ok;        /* both sides sent timestamps (RFC 7323 3.2) */
    uint32_t ts_recent;     /* the peer's TSval to echo (RFC 7323 4.3) */
    uint64_t ts_recent_at;  /* when it was taken, for PAWS's 24-day rule */
    uint32_t ts_offset;     /* per address pair TSval offset: no uptime leak */

    /* RFC 6298 estimator, in ns. */
    uint64_t srtt, rttvar, rto;
    uint32_t rtt_seq;  /* the segment being timed (Karn: none if 0 timing) */
    uint64_t rtt_start;
    bool rtt_timing;
    uint8_t backoff;
    uint32_t retransmits;    /* consecutive timeouts */
    uint64_t total_retransmits;

    /* Congestion control (RFC 5681, RFC 6582 NewReno). */
    uint32_t cwnd, ssthresh;
    uint32_t dupacks;
    uint32_t recover;
    bool in_recovery;

    /* ACK policy (RFC 1122 4.2.3.2, RFC 5681 4.2). */
    uint8_t segs_unacked;
    bool ack_now;

    bool nodelay;      /* TCP_NODELAY: Nagle off */
    bool linger_zero;  /* SO_LINGER with 0: close sends RST */

    struct tern_ring snd, rcv;
    struct tern_tcp_reass ooo;

    struct tern_timer rexmt, delack, persist, twtimer, keepalive;

    /* Keepalive (RFC 1122 4.2.3.6, Linux's knobs and defaults). */
    bool keepalive_on;
    uint32_t keep_idle_s, keep_intvl_s, keep_cnt;
    uint32_t keep_probes;  /* sent since the peer was last heard */
    uint64_t last_rx;      /* when a segment last arrived */
    /* TCP_USER_TIMEOUT (RFC 5482): how long sent data may stay
     * unacknowledged, 0 = no limit beyond the retry count. */
    uint64_t user_timeout_ns;
    uint64_t unacked_since; /* when the oldest unacknowledged data left */

    /* Listener: children in SYN_RECEIVED and children ready to accept. */
    struct tern_list syn_q, accept_q;
    uint32_t syn_q_len, accept_q_len, backlog;
    /* Child: its place on its listener's queues, and the listener. */
    struct tern_list child_node;
    struct tern_socket *listener;
    bool in_syn_q;     /* on syn_q (not yet established) rather than accept_q */
    bool orphan_timer; /* twtimer runs as the orphaned FIN_WAIT_2 timeout */
    bool opened;       /* a SYN was sent or received: it has been a connection */
    bool connect_reported; /* connect() has returned 0 after EINPROGRESS */
    uint32_t snd_buf_seq; /* sequence number of the first byte of the send ring */
    uint32_t rcv_fin_seq; /* where the peer's FIN is, once seen out of order */
    bool rcv_fin_pending;
};

/* ---- Called by the socket layer (src/sock/api.c). ---- */
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
void tern_tcp_error(struct tern_stack *s, uint32_t laddr, uint16_t lport, uint32_t faddr,
                    uint16_t fport, int err, bool hard);
/* Send what the state and windows allow (data, FIN, a pending ACK). */
void tern_tcp_output(struct tern_stack *s, struct tern_tcpcb *tp);
/* Send a segment with no data: flags, at seq, acking ack (if ACK set). */
void tern_tcp_send_ctl(struct tern_stack *s, struct tern_tcpcb *tp, uint8_t flags, uint32_t seq);
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
/* The sequence number of our FIN (valid once fin_queued). */
static inline uint32_t tern_tcp_fin_seq(const struct tern_tcpcb *tp)
{
    return tp->snd_buf_seq + tern_ring_len(&tp->snd);
}
/* Move to CLOSED with an error for the user (0: none), cancel timers,
 * leave the table: the protocol's last word. */
void tern_tcp_drop(struct tern_stack *s, struct tern_tcpcb *tp, int err);
void tern_tcp_unqueue_child(struct tern_stack *s, struct tern_tcpcb *tp);
void tern_tcp_set_state(struct tern_stack *s, struct tern_tcpcb *tp, enum tern_tcp_state st);
void tern_tcp_timers_init(struct tern_tcpcb *tp);
/* Choose ISS, MSS to announce and window scale for a new connection
 * whose PCB addresses are set. */
void tern_tcp_prepare(struct tern_stack *s, struct tern_tcpcb *tp);
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
#define TERN_TCP_MAX_RETRIES 15
#define TERN_TCP_SYN_RETRIES 6
#define TERN_TCP_CHALLENGE_ACKS_PER_SEC 1000

#endif
