/* NewReno's window (RFC 5681 section 3.1, RFC 6582): additive increase of
 * one segment per window of acknowledged bytes, halving on loss. The
 * partial-ACK logic of RFC 6582 is the recovery code's, not this file's. */
#include "transport/tcp/tcp.h"

static void newreno_init(struct tern_tcpcb *tp, uint64_t now)
{
    (void)now;
    tp->cc_state.reno_bytes_acked = 0;
}

static void newreno_ack(struct tern_tcpcb *tp, uint32_t acked, uint64_t now)
{
    (void)now;
    if (tp->cwnd < tp->ssthresh) {
        acked = tern_tcp_cc_slow_start(tp, acked);
        if (acked == 0)
            return;
    }
    /* Congestion avoidance with appropriate byte counting (RFC 5681 3.1,
     * RFC 3465 2.1): one SMSS once a whole cwnd has been acknowledged. */
    uint32_t *ba = &tp->cc_state.reno_bytes_acked;
    *ba += acked;
    if (*ba >= tp->cwnd) {
        *ba -= tp->cwnd;
        tp->cwnd += tp->mss;
    }
}

static void newreno_congestion(struct tern_tcpcb *tp, uint64_t now)
{
    (void)now;
    tp->ssthresh = tern_tcp_cc_half_flight(tp);
    tp->cc_state.reno_bytes_acked = 0;
}

static void newreno_recovered(struct tern_tcpcb *tp, uint64_t now)
{
    (void)now;
    /* RFC 6582 3.2 step 3 option (1): deflate to ssthresh. */
    tp->cwnd = tp->ssthresh;
}

static void newreno_timeout(struct tern_tcpcb *tp, uint64_t now)
{
    (void)now;
    tp->ssthresh = tern_tcp_cc_half_flight(tp); /* RFC 5681 eq. (4) */
    tp->cwnd = tp->mss;                         /* ... and (5): one segment */
    tp->cc_state.reno_bytes_acked = 0;
}

void tern_tcp_cc_newreno_ops(struct tern_tcp_cc_ops *ops)
{
    *ops = (struct tern_tcp_cc_ops){
        .name = "reno",
        .init = newreno_init,
        .ack = newreno_ack,
        .congestion = newreno_congestion,
        .recovered = newreno_recovered,
        .timeout = newreno_timeout,
    };
}
