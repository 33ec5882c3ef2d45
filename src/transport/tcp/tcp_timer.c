/* TCP's timers: retransmission (RFC 6298), delayed ACK (RFC 1122
 * 4.2.3.2), persist (RFC 9293 3.8.6.1), keepalive and the orphaned
 * FIN_WAIT_2 timeout. TIME_WAIT's timer is its record's (tcp_timewait.c).
 *
 * One wheel timer per connection serves all five: each kind keeps its
 * own deadline and the wheel timer is armed for the earliest. Moving a
 * deadline later (the retransmission timer on every ACK, the delayed ACK
 * on every other segment) touches no wheel slot: the timer fires at the
 * old time, finds nothing due and re-arms for the next. That costs one
 * wheel timer per connection instead of five (memory per idle
 * connection) and little work per segment. */
#include <errno.h>

#include "core/stack.h"
#include "obs/probe.h"
#include "runtime/events.h"
#include "transport/tcp/tcp.h"

/* RFC 8985 section 7.2: a probe may be scheduled with SACK on, data in
 * flight, no recovery going and no probe already out (one per tail). */
static bool probe_allowed(const struct tern_stack *s, const struct tern_tcpcb *tp)
{
    return s->cfg.tcp_tlp && tp->sack_ok && tp->srtt != 0 && !tp->in_recovery &&
           !tp->rto_recovery && !tp->tlp_out && tp->snd_una != tp->snd_max &&
           tp->state != TCPS_SYN_SENT && tp->state != TCPS_SYN_RECEIVED;
}

/* RFC 8985 section 7.3: the PTO fired. Send one segment of new data if
 * the window takes it, else the last segment again, so that the peer's
 * ACK (with SACK) says what the tail lost: a loss of the last segments
 * then costs a probe timeout instead of an RTO. Then the RTO. */
static void probe_fire(struct tern_stack *s, struct tern_tcpcb *tp)
{
    tp->tlp_armed = false;
    if (!probe_allowed(s, tp)) {
        /* Recovery began since: its own timer is the RTO. */
        tern_tcp_rexmt_arm(s, tp);
        return;
    }
    uint32_t seg = tern_tcp_seg_size(tp);
    uint32_t data_end = tern_tcp_fin_seq(tp);
    uint32_t avail = tern_seq_lt(tp->snd_nxt, data_end) ? data_end - tp->snd_nxt : 0;
    uint32_t right = tp->snd_una + tp->snd_wnd;
    uint32_t usable = tern_seq_gt(right, tp->snd_nxt) ? right - tp->snd_nxt : 0;
    uint32_t len = avail < usable ? avail : usable;
    if (len > seg)
        len = seg;
    tp->tlp_out = true; /* before sending: what goes now arms the RTO, not a PTO */
    tern_count(s, TERN_C_TCP_TLP_PROBE);
    if (len > 0 && tp->snd_nxt == tp->snd_max) {
        tp->tlp_retrans = false;
        tp->snd_nxt += tern_tcp_send_data(s, tp, tp->snd_nxt, len);
    } else {
        /* The last segment sent, with the FIN if it went. */
        uint32_t top = tern_seq_lt(data_end, tp->snd_max) ? data_end : tp->snd_max;
        uint32_t start = top - tp->snd_una > seg ? top - seg : tp->snd_una;
        tp->tlp_retrans = true;
        tern_tcp_send_data(s, tp, start, top - start);
    }
    tp->tlp_end_seq = tp->snd_max; /* in place of RecoveryPoint: */
    tp->rxt_unproven = false;      /* a later D-SACK may answer the probe */
    tern_tcp_rexmt_arm(s, tp);
}

static void rexmt_fire(struct tern_stack *s, struct tern_tcpcb *tp)
{
    if (tp->tlp_armed) {
        probe_fire(s, tp);
        return;
    }
    tp->tlp_out = false; /* the RTO takes over */
    bool handshake = tp->state == TCPS_SYN_SENT || tp->state == TCPS_SYN_RECEIVED;
    bool user_timeout = tp->user_timeout_ms && !handshake &&
                        (uint32_t)(s->now / TERN_NS_PER_MS) - tp->unacked_since_ms >=
                            tp->user_timeout_ms;
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
        tp->recover = tp->snd_max; /* (tlp_out is off: the union's other half is free) */
        /* A timeout with the standard DupThresh's worth SACKed above
         * the hole: the losses are real, and a DupThresh raised by
         * reordering would only delay the next repairs: back to the
         * standard one (as Linux's tcp_enter_loss). */
        if (tp->reordering > TERN_TCP_DUPTHRESH &&
            tern_tcp_sack_is_lost(&tp->sackb, tp->snd_una, tern_tcp_seg_size(tp),
                                  TERN_TCP_DUPTHRESH)) {
            tern_count(s, TERN_C_TCP_REORDERING_RESET);
            tp->reordering = TERN_TCP_DUPTHRESH;
        }
        tp->rxt_unproven = false; /* a D-SACK now may answer the timeout's resending */
        /* What was SACKed may be reneged (RFC 2018 section 8): start
         * over from SND.UNA with a clean scoreboard, as FreeBSD does. */
        tern_tcp_sack_clear(&tp->sackb);
    }
    tp->snd_nxt = tp->snd_una; /* the FIN, if sent, goes again after the data */
    tern_tcp_output(s, tp);
}

static void delack_fire(struct tern_stack *s, struct tern_tcpcb *tp)
{
    tp->ack_now = true;
    tern_tcp_output(s, tp);
}

static void persist_fire(struct tern_stack *s, struct tern_tcpcb *tp)
{
    /* The probe Linux sends: an ACK for an old sequence number (snd_una
     * - 1) carries no data, so a receiver with no room cannot reject it
     * and answers with its window. Any answer keeps the connection: a
     * live peer with a closed window is not a dead one. */
    tern_count(s, TERN_C_TCP_WINDOW_PROBE);
    if (tp->so->life == SOCK_LIFE_PROTO_ONLY &&
        tp->backoff >= TERN_TCP_PERSIST_MAX_BACKOFF + TERN_TCP_ORPHAN_PROBES) {
        /* Nobody will read what waits: a peer that keeps its window shut
         * must not keep a closed connection for ever. Linux gives an
         * orphan tcp_orphan_retries (8) probes once they are at its
         * RTO_MAX apart; here 8 at the longest interval (64 RTOs), about
         * two minutes at the 200 ms floor. */
        tern_count(s, TERN_C_TCP_ORPHAN_TIMEOUT);
        tern_tcp_send_ctl(s, tp, TERN_TCP_RST | TERN_TCP_ACK, tp->snd_max);
        tern_tcp_drop(s, tp, ETIMEDOUT);
        return;
    }
    tern_tcp_send_ctl(s, tp, TERN_TCP_ACK, tp->snd_una - 1);
    if (tp->snd_wnd == 0 && (tern_ring_len(&tp->snd) > 0 || tern_tcp_fin_unsent(tp)) &&
        tp->state != TCPS_CLOSED) {
        uint64_t wait = tp->rto << (tp->backoff < TERN_TCP_PERSIST_MAX_BACKOFF
                                        ? tp->backoff : TERN_TCP_PERSIST_MAX_BACKOFF);
        if (tp->backoff < UINT8_MAX)
            tp->backoff++; /* past the cap it counts the probes at it */
        tern_tcp_timer_set(s, tp, TERN_TCPT_PERSIST,
                           s->now + (wait > TERN_TCP_RTO_MAX_NS ? TERN_TCP_RTO_MAX_NS : wait));
    }
}

/* An orphaned connection (the user closed it) waits in FIN_WAIT_2 for the
 * peer's FIN only so long (Linux's tcp_fin_timeout). */
static void finwait2_fire(struct tern_stack *s, struct tern_tcpcb *tp)
{
    tern_count(s, TERN_C_TCP_ORPHAN_TIMEOUT);
    tern_tcp_drop(s, tp, 0);
}

static bool keepalive_state(enum tern_tcp_state st)
{
    return st == TCPS_ESTABLISHED || st == TCPS_CLOSE_WAIT || st == TCPS_FIN_WAIT_2;
}

static void keepalive_fire(struct tern_stack *s, struct tern_tcpcb *tp)
{
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
        tern_tcp_timer_set(s, tp, TERN_TCPT_KEEPALIVE, next > s->now ? next : s->now + idle);
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
    tern_tcp_timer_set(s, tp, TERN_TCPT_KEEPALIVE, s->now + intvl);
}

void tern_tcp_keepalive_arm(struct tern_stack *s, struct tern_tcpcb *tp)
{
    if (!tp->keepalive_on || !keepalive_state(tp->state)) {
        tern_tcp_timer_stop(tp, TERN_TCPT_KEEPALIVE);
        return;
    }
    if (!tern_tcp_timer_on(tp, TERN_TCPT_KEEPALIVE))
        tern_tcp_timer_set(s, tp, TERN_TCPT_KEEPALIVE,
                           tp->last_rx + (uint64_t)tp->keep_idle_s * TERN_NS_PER_SEC);
}

static void reclaim_fire(struct tern_stack *s, struct tern_tcpcb *tp)
{
    (void)s;
    tern_ring_shrink_idle(&tp->snd); /* each does nothing unless empty */
    tern_ring_shrink_idle(&tp->rcv);
    if (tp->ooo && tern_tcp_reass_empty(tp->ooo))
        tern_tcp_ooo_free(tp);
}

void tern_tcp_reclaim_later(struct tern_stack *s, struct tern_tcpcb *tp)
{
    if (!tern_tcp_timer_on(tp, TERN_TCPT_RECLAIM))
        tern_tcp_timer_set(s, tp, TERN_TCPT_RECLAIM, s->now + TERN_TCP_RECLAIM_NS);
}

/* The connection's one wheel timer: run every kind that is due, in a
 * fixed order, then wait for the earliest left. A handler may end the
 * connection (which stops everything); the block stays valid until the
 * reaper runs after this poll. */
static void tcp_timer_fire(struct tern_stack *s, struct tern_timer *t)
{
    struct tern_tcpcb *tp = tern_container_of(t, struct tern_tcpcb, timer);
    tern_sock_touch(s, tp->so);
    for (int k = 0; k < TERN_TCPT__COUNT; k++) {
        if (!tp->deadline[k] || tp->deadline[k] > s->now)
            continue;
        tp->deadline[k] = 0;
        TERN_PROBE4(tcp_timer, s, tp->so->id, k, tern_tcp_timer_name((unsigned)k));
        if (k != TERN_TCPT_RECLAIM)
            tern_tcp_trace(s, tp, TERN_TCPE_TIMER, tp->snd_una, tp->snd_nxt, 0, 0, 0,
                           (uint16_t)k);
        switch ((enum tern_tcp_timer)k) {
        case TERN_TCPT_DELACK: delack_fire(s, tp); break;
        case TERN_TCPT_REXMT: rexmt_fire(s, tp); break;
        case TERN_TCPT_PERSIST: persist_fire(s, tp); break;
        case TERN_TCPT_KEEPALIVE: keepalive_fire(s, tp); break;
        case TERN_TCPT_FINWAIT2: finwait2_fire(s, tp); break;
        case TERN_TCPT_RECLAIM: reclaim_fire(s, tp); break;
        case TERN_TCPT__COUNT: break;
        }
    }
    uint64_t next = 0;
    for (int k = 0; k < TERN_TCPT__COUNT; k++)
        if (tp->deadline[k] && (!next || tp->deadline[k] < next))
            next = tp->deadline[k];
    if (next && !tern_timer_armed(&tp->timer))
        tern_timer_arm(s, &tp->timer, next);
}

void tern_tcp_timer_set(struct tern_stack *s, struct tern_tcpcb *tp, enum tern_tcp_timer k,
                        uint64_t when)
{
    if (when == 0)
        when = 1; /* 0 means "off" */
    tp->deadline[k] = when;
    /* Already due no later: it will find this deadline when it fires. */
    if (tern_timer_armed(&tp->timer) && tp->timer.expires_tick * TERN_TIMER_TICK_NS <= when)
        return;
    tern_timer_arm(s, &tp->timer, when);
}

void tern_tcp_timers_stop_all(struct tern_stack *s, struct tern_tcpcb *tp)
{
    for (int k = 0; k < TERN_TCPT__COUNT; k++)
        tp->deadline[k] = 0;
    tern_timer_cancel(s, &tp->timer);
}

void tern_tcp_timers_init(struct tern_tcpcb *tp)
{
    tern_timer_init(&tp->timer, tcp_timer_fire, "tcp");
}

void tern_tcp_rexmt_arm(struct tern_stack *s, struct tern_tcpcb *tp)
{
    tp->tlp_armed = false;
    tern_tcp_timer_set(s, tp, TERN_TCPT_REXMT, s->now + tp->rto);
}

/* RFC 8985 7.2: PTO = 2 SRTT, plus the peer's delayed-ACK time when a
 * lone segment is out (its ACK may be held that long); 0 when a probe
 * may not go or the RTO would come first anyway. */
static uint64_t probe_timeout(const struct tern_stack *s, const struct tern_tcpcb *tp)
{
    if (!probe_allowed(s, tp))
        return 0;
    uint64_t pto = 2 * tp->srtt;
    if (pto < TERN_TCP_PTO_MIN_NS)
        pto = TERN_TCP_PTO_MIN_NS;
    if (tp->snd_max - tp->snd_una <= tern_tcp_seg_size(tp) + 1)
        pto += TERN_TCP_PTO_DELACK_NS;
    return pto < tp->rto ? pto : 0;
}

void tern_tcp_rexmt_or_probe_arm(struct tern_stack *s, struct tern_tcpcb *tp)
{
    uint64_t pto = probe_timeout(s, tp);

    if (!pto) {
        tern_tcp_rexmt_arm(s, tp);
        return;
    }
    tern_tcp_timer_set(s, tp, TERN_TCPT_REXMT, s->now + pto);
    tp->tlp_armed = true;
}

void tern_tcp_rexmt_after_send(struct tern_stack *s, struct tern_tcpcb *tp, bool new_data)
{
    if (!tern_tcp_timer_on(tp, TERN_TCPT_REXMT)) {
        tern_tcp_rexmt_or_probe_arm(s, tp);
        return;
    }
    if (!new_data)
        return; /* RFC 6298 5.1: a running RTO is left alone */
    /* A probe timeout is pushed back by new data (RFC 8985 7.2, as
     * Linux's tcp_schedule_loss_probe); an RTO armed while a lone
     * segment was out gives way to a probe timeout once more are. */
    uint64_t pto = probe_timeout(s, tp);
    if (tp->tlp_armed)
        tern_tcp_rexmt_or_probe_arm(s, tp);
    else if (pto && s->now + pto < tp->deadline[TERN_TCPT_REXMT])
        tern_tcp_rexmt_or_probe_arm(s, tp);
}

void tern_tcp_delack_arm(struct tern_stack *s, struct tern_tcpcb *tp)
{
    if (!tern_tcp_timer_on(tp, TERN_TCPT_DELACK))
        tern_tcp_timer_set(s, tp, TERN_TCPT_DELACK, s->now + TERN_TCP_DELACK_NS);
}
