/* TCP's timers: retransmission (RFC 6298), delayed ACK (RFC 1122
 * 4.2.3.2), persist (RFC 9293 3.8.6.1), keepalive and the orphaned
 * FIN_WAIT_2 timeout. TIME_WAIT's timer is its record's (tcp_timewait.c). */
#include <errno.h>

#include "core/stack.h"
#include "transport/tcp/tcp.h"

static struct tern_tcpcb *tcb_of(struct tern_timer *t, size_t off)
{
    return (struct tern_tcpcb *)(void *)((char *)t - off);
}

static void rexmt_fire(struct tern_stack *s, struct tern_timer *t)
{
    struct tern_tcpcb *tp = tcb_of(t, offsetof(struct tern_tcpcb, rexmt));
    bool handshake = tp->state == TCPS_SYN_SENT || tp->state == TCPS_SYN_RECEIVED;
    bool user_timeout = tp->user_timeout_ns && !handshake &&
                        s->now - tp->unacked_since >= tp->user_timeout_ns;
    if (++tp->retransmits > (handshake ? TERN_TCP_SYN_RETRIES : TERN_TCP_MAX_RETRIES) ||
        user_timeout) {
        tern_count(s, TERN_C_TCP_TIMEOUT_DROP);
        /* Linux resets a synchronized connection it gives up on; a
         * handshake that never finished just ends. */
        if (tp->state == TCPS_ESTABLISHED || tp->state == TCPS_CLOSE_WAIT ||
            tp->state == TCPS_FIN_WAIT_1 || tp->state == TCPS_CLOSING ||
            tp->state == TCPS_LAST_ACK)
            tern_tcp_send_ctl(s, tp, TERN_TCP_RST | TERN_TCP_ACK, tp->snd_max);
        /* Linux reports what an ICMP error said, if one came. */
        tern_tcp_drop(s, tp, tp->soft_error ? tp->soft_error : ETIMEDOUT);
        return;
    }
    tern_count(s, TERN_C_TCP_RETRANSMIT_TIMEOUT);
    tp->total_retransmits++;
    /* RFC 6298 5.5-5.7: back off, go back to snd_una; Karn: the sample
     * in flight is void. RFC 5681 (4): after a loss, one segment. */
    tp->rto = tp->rto * 2 > TERN_TCP_RTO_MAX_NS ? TERN_TCP_RTO_MAX_NS : tp->rto * 2;
    tp->rtt_timing = false;
    if (!handshake) {
        /* The window falls to one segment; ssthresh is set once per run
         * of timeouts, from the flight before the first (RFC 5681 eq. 4
         * is for a segment "not yet resent"), as Linux does. */
        if (tp->retransmits == 1)
            TERN_TCP_CC(s, tp)->timeout(tp, s->now);
        else
            tp->cwnd = tp->mss;
        tp->in_recovery = false;
        tp->sack_recovery = false;
        tp->dupacks = 0;
        /* Everything sent so far is resent from SND.UNA; duplicate ACKs
         * for it must not start a fast retransmit of their own. */
        tp->rto_recovery = true;
        tp->recover = tp->snd_max;
        /* What was SACKed may be reneged (RFC 2018 section 8): start
         * over from SND.UNA with a clean scoreboard, as FreeBSD does. */
        tern_tcp_sack_clear(&tp->sackb);
    }
    tp->snd_nxt = tp->snd_una; /* the FIN, if sent, goes again after the data */
    tern_tcp_output(s, tp);
}

static void delack_fire(struct tern_stack *s, struct tern_timer *t)
{
    struct tern_tcpcb *tp = tcb_of(t, offsetof(struct tern_tcpcb, delack));
    tp->ack_now = true;
    tern_tcp_output(s, tp);
}

static void persist_fire(struct tern_stack *s, struct tern_timer *t)
{
    struct tern_tcpcb *tp = tcb_of(t, offsetof(struct tern_tcpcb, persist));
    /* The probe Linux sends: an ACK for an old sequence number (snd_una
     * - 1) carries no data, so a receiver with no room cannot reject it
     * and answers with its window. Any answer keeps the connection: a
     * live peer with a closed window is not a dead one. */
    tern_count(s, TERN_C_TCP_WINDOW_PROBE);
    tern_tcp_send_ctl(s, tp, TERN_TCP_ACK, tp->snd_una - 1);
    if (tp->snd_wnd == 0 && tern_ring_len(&tp->snd) > 0 && tp->state != TCPS_CLOSED) {
        uint64_t wait = tp->rto << (tp->backoff < 6 ? tp->backoff : 6);
        if (tp->backoff < 6)
            tp->backoff++;
        tern_timer_arm(s, &tp->persist, s->now + (wait > TERN_TCP_RTO_MAX_NS ? TERN_TCP_RTO_MAX_NS : wait));
    }
}

/* An orphaned connection (the user closed it) waits in FIN_WAIT_2 for the
 * peer's FIN only so long (Linux's tcp_fin_timeout). */
static void finwait2_fire(struct tern_stack *s, struct tern_timer *t)
{
    struct tern_tcpcb *tp = tcb_of(t, offsetof(struct tern_tcpcb, finwait2));
    tern_count(s, TERN_C_TCP_ORPHAN_TIMEOUT);
    tern_tcp_drop(s, tp, 0);
}

static bool keepalive_state(enum tern_tcp_state st)
{
    return st == TCPS_ESTABLISHED || st == TCPS_CLOSE_WAIT || st == TCPS_FIN_WAIT_2;
}

static void keepalive_fire(struct tern_stack *s, struct tern_timer *t)
{
    struct tern_tcpcb *tp = tcb_of(t, offsetof(struct tern_tcpcb, keepalive));
    if (!tp->keepalive_on || !keepalive_state(tp->state))
        return;
    uint64_t idle = (uint64_t)tp->keep_idle_s * TERN_NS_PER_SEC;
    uint64_t intvl = (uint64_t)tp->keep_intvl_s * TERN_NS_PER_SEC;
    /* Only an idle connection is probed: with data in flight the
     * retransmission timer is the judge. */
    if (tp->snd_una != tp->snd_max || s->now - tp->last_rx < idle) {
        tp->keep_probes = 0;
        uint64_t base = tp->last_rx > s->now ? s->now : tp->last_rx;
        uint64_t next = base + idle;
        tern_timer_arm(s, t, next > s->now ? next : s->now + idle);
        return;
    }
    if (tp->keep_probes >= tp->keep_cnt) {
        tern_count(s, TERN_C_TCP_KEEPALIVE_DROP);
        tern_tcp_send_ctl(s, tp, TERN_TCP_RST | TERN_TCP_ACK, tp->snd_max);
        tern_tcp_drop(s, tp, ETIMEDOUT);
        return;
    }
    /* RFC 1122 4.2.3.6: a segment the peer must acknowledge, with no
     * data: an ACK for snd_una - 1, as BSD and Linux send. */
    tp->keep_probes++;
    tern_count(s, TERN_C_TCP_KEEPALIVE_PROBE);
    tern_tcp_send_ctl(s, tp, TERN_TCP_ACK, tp->snd_una - 1);
    tern_timer_arm(s, t, s->now + intvl);
}

void tern_tcp_keepalive_arm(struct tern_stack *s, struct tern_tcpcb *tp)
{
    if (!tp->keepalive_on || !keepalive_state(tp->state)) {
        tern_timer_cancel(s, &tp->keepalive);
        return;
    }
    if (!tern_timer_armed(&tp->keepalive))
        tern_timer_arm(s, &tp->keepalive,
                       tp->last_rx + (uint64_t)tp->keep_idle_s * TERN_NS_PER_SEC);
}

void tern_tcp_timers_init(struct tern_tcpcb *tp)
{
    tern_timer_init(&tp->keepalive, keepalive_fire, "tcp-keepalive");
    tern_timer_init(&tp->rexmt, rexmt_fire, "tcp-rexmt");
    tern_timer_init(&tp->delack, delack_fire, "tcp-delack");
    tern_timer_init(&tp->persist, persist_fire, "tcp-persist");
    tern_timer_init(&tp->finwait2, finwait2_fire, "tcp-finwait2");
}

void tern_tcp_rexmt_arm(struct tern_stack *s, struct tern_tcpcb *tp)
{
    tern_timer_arm(s, &tp->rexmt, s->now + tp->rto);
}

void tern_tcp_delack_arm(struct tern_stack *s, struct tern_tcpcb *tp)
{
    if (!tern_timer_armed(&tp->delack))
        tern_timer_arm(s, &tp->delack, s->now + TERN_TCP_DELACK_NS);
}
