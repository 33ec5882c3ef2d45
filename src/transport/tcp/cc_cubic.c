/*
 * CUBIC (RFC 9438): after a loss the window follows a cubic curve in the
 * time since the loss, W(t) = C (t - K)^3 + W_max, flat near the old
 * maximum and probing faster away from it, so growth does not depend on
 * the RTT; below the Reno-friendly estimate it grows as Reno would.
 *
 * Arithmetic is in double (segments and seconds, as the RFC writes it):
 * only + - * / and a Newton cube root, so no libm, and the same inputs
 * give the same bits on every build (ISO C mode: no contraction to FMA).
 */
#include "transport/tcp/tcp.h"

#define CUBIC_C 0.4     /* RFC 9438 4.1 */
#define CUBIC_BETA 0.7  /* RFC 9438 4.6 */

static double cube_root(double x)
{
    if (x <= 0)
        return 0;
    /* Newton's method from above falls monotonically to the root; stop
     * when it no longer falls (about 30 steps from 1e6). */
    double r = x > 1 ? x : 1;
    for (int i = 0; i < 200; i++) {
        double next = (2 * r + x / (r * r)) / 3;
        if (next >= r)
            break;
        r = next;
    }
    return r;
}

static double segs(const struct tern_tcpcb *tp, uint32_t bytes)
{
    return (double)bytes / tp->mss;
}

static void cubic_init(struct tern_tcpcb *tp, uint64_t now)
{
    (void)now;
    tp->cc_state.cubic = (struct tern_tcp_cubic){0};
}

/* RFC 9438 4.2: W_cubic(t) in segments, t in seconds since the epoch. */
static double w_cubic(const struct tern_tcp_cubic *c, double t)
{
    double d = t - c->k;
    return CUBIC_C * d * d * d + c->w_max;
}

static void cubic_ack(struct tern_tcpcb *tp, uint32_t acked, uint64_t now)
{
    struct tern_tcp_cubic *c = &tp->cc_state.cubic;
    if (tp->cwnd < tp->ssthresh) {
        acked = tern_tcp_cc_slow_start(tp, acked);
        if (acked == 0)
            return;
    }
    double cwnd = segs(tp, tp->cwnd);
    if (c->epoch == 0) {
        /* A new congestion avoidance epoch (RFC 9438 4.2, 4.3). */
        c->epoch = now ? now : 1;
        c->w_est = cwnd;
        if (c->w_max < cwnd) {
            c->w_max = cwnd; /* no loss yet: start on the convex side */
            c->k = 0;
        } else {
            c->k = cube_root((c->w_max - cwnd) / CUBIC_C);
        }
    }
    double acked_segs = segs(tp, acked);
    double t = (double)(now - c->epoch) / 1e9;
    double rtt = tp->srtt ? (double)tp->srtt / 1e9 : 0.1;
    /* RFC 9438 4.3: the Reno-friendly window, alpha per ACKed segment;
     * alpha turns 1 once it passes W_max. */
    double alpha = c->w_est >= c->w_max ? 1.0
                                        : 3.0 * (1 - CUBIC_BETA) / (1 + CUBIC_BETA);
    c->w_est += alpha * acked_segs / cwnd;
    double grow; /* segments to add for this ACK */
    if (w_cubic(c, t) < c->w_est) {
        grow = c->w_est - cwnd; /* Reno-friendly region: follow the estimate */
        if (grow < 0)
            grow = 0;
    } else {
        /* RFC 9438 4.4, 4.5: aim at W_cubic one RTT ahead, bounded to
         * [cwnd, 1.5 cwnd], and close (target - cwnd) / cwnd per segment. */
        double target = w_cubic(c, t + rtt);
        if (target < cwnd)
            target = cwnd;
        if (target > 1.5 * cwnd)
            target = 1.5 * cwnd;
        grow = (target - cwnd) / cwnd * acked_segs;
    }
    double bytes = grow * tp->mss + c->carry;
    uint32_t whole = bytes >= (double)UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)bytes;
    c->carry = bytes - whole;
    if (tp->cwnd + whole < tp->cwnd)
        whole = UINT32_MAX - tp->cwnd;
    tp->cwnd += whole;
}

/* RFC 9438 4.6 and 4.7: remember the window, with fast convergence, and
 * cut to beta of it. */
static void cubic_reduce(struct tern_tcpcb *tp)
{
    struct tern_tcp_cubic *c = &tp->cc_state.cubic;
    double cwnd = segs(tp, tp->cwnd);
    if (cwnd < c->w_max)
        c->w_max = cwnd * (1 + CUBIC_BETA) / 2; /* yield to newer flows */
    else
        c->w_max = cwnd;
    /* The RFC multiplies cwnd; multiplying what is in flight, as it
     * allows (4.6), does not reward an application-limited sender. */
    uint32_t flight = tp->snd_max - tp->snd_una;
    uint32_t base = flight < tp->cwnd ? flight : tp->cwnd;
    uint32_t th = (uint32_t)(base * CUBIC_BETA);
    tp->ssthresh = th > 2u * tp->mss ? th : 2u * tp->mss;
    c->epoch = 0;
    c->carry = 0;
}

static void cubic_congestion(struct tern_tcpcb *tp, uint64_t now)
{
    (void)now;
    cubic_reduce(tp);
}

static void cubic_recovered(struct tern_tcpcb *tp, uint64_t now)
{
    (void)now;
    tp->cwnd = tp->ssthresh;
}

static void cubic_timeout(struct tern_tcpcb *tp, uint64_t now)
{
    (void)now;
    /* RFC 9438 4.8: ssthresh as after a loss, then Reno's one segment. */
    cubic_reduce(tp);
    tp->cwnd = tp->mss;
}

void tern_tcp_cc_cubic_ops(struct tern_tcp_cc_ops *ops)
{
    *ops = (struct tern_tcp_cc_ops){
        .name = "cubic",
        .init = cubic_init,
        .ack = cubic_ack,
        .congestion = cubic_congestion,
        .recovered = cubic_recovered,
        .timeout = cubic_timeout,
    };
}
