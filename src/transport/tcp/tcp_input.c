/*
 * The segment arrival procedure (RFC 9293 section 3.10.7), in one place:
 * every state change caused by a segment happens in this file. Each step
 * names the RFC paragraph it follows; RFC 5961 hardens RST, SYN and ACK
 * handling against blind injection.
 */
#include <errno.h>
#include <string.h>

#include "core/assert.h"
#include "core/stack.h"
#include "obs/probe.h"
#include "runtime/events.h"
#include "net/icmp.h"
#include "transport/tcp/tcp.h"
#include "net/ipv4.h"
#include "wire/ipv4.h"

/* One arriving segment, as the procedure sees it. */
struct seg {
    uint32_t laddr, faddr;
    uint16_t lport, fport;
    uint32_t seq, ack;
    uint8_t flags;
    uint32_t wnd;        /* unscaled */
    const uint8_t *data;
    uint32_t len;        /* payload bytes */
    const struct tern_tcp_opts *opt; /* in the parsed header */
    uint32_t segs;       /* segments it stands for (more when a link coalesced them) */
    bool reopens;        /* it ended a TIME_WAIT whose SND.NXT was old_snd_nxt */
    uint32_t old_snd_nxt;
};

static uint32_t seg_len(const struct seg *sg)
{
    return sg->len + !!(sg->flags & TERN_TCP_SYN) + !!(sg->flags & TERN_TCP_FIN);
}

/* A segment of a connection (or part of it) refused: counted with its
 * reason, and remembered in the connection's history. */
static void drop_seg(struct tern_stack *s, struct tern_tcpcb *tp, const struct seg *sg,
                     enum tern_counter_id why)
{
    tern_count(s, why);
    tern_tcp_trace(s, tp, TERN_TCPE_DROP, sg->seq, sg->ack, (uint16_t)sg->wnd,
                   (uint16_t)sg->len, sg->flags, (uint16_t)why);
}

/* Options of a SYN (RFC 9293 3.7.1 MSS, RFC 7323 2.2 window scale). */
static void take_syn_options(struct tern_stack *s, struct tern_tcpcb *tp, const struct seg *sg)
{
    tp->mss = tern_tcp_send_mss(s, tp, sg->opt->has_mss ? sg->opt->mss : 0);
    tp->sack_ok = sg->opt->sack_permitted && s->cfg.tcp_sack;
    tp->ts_ok = sg->opt->has_ts && s->cfg.tcp_timestamps;
    if (tp->ts_ok) {
        tp->ts_recent = sg->opt->ts_val;
    }
    if (sg->opt->has_wscale) {
        tp->wscale_ok = true;
        tp->snd_wscale = sg->opt->wscale > 14 ? 14 : sg->opt->wscale; /* RFC 7323 2.3 */
    } else {
        tp->wscale_ok = false;
        tp->snd_wscale = 0;
        tp->rcv_wscale = 0;
    }
}

void tern_tcp_prepare(struct tern_stack *s, struct tern_tcpcb *tp)
{
    const struct tern_inpcb *pcb = &tp->so->pcb;
    tp->our_mss = tern_tcp_our_mss(s, pcb->faddr, tp->user_mss);
    tp->rcv_wscale = tern_tcp_wscale_for(tern_tcp_rcvbuf_ceiling(s, tp->so));
    tp->iss = tern_tcp_isn(s, pcb->laddr, pcb->lport, pcb->faddr, pcb->fport);
    tp->snd_una = tp->snd_nxt = tp->snd_max = tp->high_rxt = tp->iss;
    tp->snd_buf_seq = tp->iss + 1;
    tp->ts_offset = tern_tcp_ts_offset(s, pcb->laddr, pcb->faddr);
    /* RFC 6928: an initial window of 10 segments, set once MSS is known. */
    tp->ssthresh = UINT32_MAX;
}

static void init_cwnd(struct tern_stack *s, struct tern_tcpcb *tp)
{
    tp->cwnd = 10u * tp->mss;
    TERN_TCP_CC(s, tp)->init(tp, s->now);
}

/* ---- LISTEN (RFC 9293 3.10.7.2) and the SYN queue's requests ---- */

static void synced_input(struct tern_stack *s, struct tern_tcpcb *tp, struct seg *sg);
static bool challenge_ack_allowed(struct tern_stack *s);

/* The handshake is complete: the established child (on the accept queue)
 * takes the segment on, for its data and FIN. */
static void child_input(struct tern_stack *s, struct tern_tcpcb *tp, struct seg *sg)
{
    synced_input(s, tp, sg);
    if (tp->keepalive_on)
        tern_tcp_keepalive_arm(s, tp);
}

static void listen_input(struct tern_stack *s, struct tern_tcpcb *ltp, struct seg *sg)
{
    if (sg->flags & TERN_TCP_RST)
        return;
    if (sg->flags & TERN_TCP_ACK) {
        /* No request holds this 4-tuple: the ACK may finish a handshake a
         * SYN cookie answered (RFC 4987 3.6); else it is reset. */
        struct tern_tcp_synparams p;
        if (!(sg->flags & TERN_TCP_SYN) && s->cfg.tcp_syncookies &&
            tern_tcp_cookie_check(s, ltp, &p, sg->laddr, sg->lport, sg->faddr, sg->fport,
                                  sg->seq, sg->ack, sg->opt)) {
            struct tern_tcpcb *tp = tern_tcp_child_new(s, ltp, &p);
            if (tp) {
                tern_count(s, TERN_C_TCP_SYNCOOKIE_OK);
                child_input(s, tp, sg);
            }
            return; /* no room (counted): the peer sends again */
        }
        tern_tcp_reset_for(s, sg->laddr, sg->lport, sg->faddr, sg->fport, sg->seq, sg->ack,
                           sg->flags, seg_len(sg));
        return;
    }
    if (!(sg->flags & TERN_TCP_SYN))
        return;
    if (ltp->lq->accept_q_len >= ltp->lq->backlog) {
        /* Nobody is accepting: a handshake could not finish (Linux drops
         * the SYN too, and the peer retries). */
        tern_count(s, TERN_C_DROP_TCP_LISTEN_OVERFLOW);
        return;
    }
    struct tern_tcp_synparams p;
    tern_tcp_syn_params(s, ltp, &p, sg->laddr, sg->lport, sg->faddr, sg->fport, sg->seq, sg->wnd,
                        sg->opt);
    if (sg->reopens) {
        /* RFC 1122 4.2.2.13 (1): the new incarnation starts above every
         * sequence number the old one used, whatever the ISN clock says
         * (Linux: the old SND.NXT + 65535 + 2). */
        p.iss = sg->old_snd_nxt + 65535u + 2u;
    }
    bool full = ltp->lq->req_q_len >= ltp->lq->backlog;
    if (s->cfg.tcp_syncookies == 2 || (full && s->cfg.tcp_syncookies == 1)) {
        tern_tcp_cookie_synack(s, ltp, &p);
        return;
    }
    if (full) {
        tern_count(s, TERN_C_DROP_TCP_SYN_QUEUE_FULL);
        return;
    }
    tern_tcp_req_new(s, ltp, &p);
}

/* An ACK from a request: <SEQ=ISS+1><ACK=IRS+1>, the window of its SYN,ACK. */
static void request_ack(struct tern_stack *s, const struct tern_tcp_req *req)
{
    const struct tern_socket *lso = req->listener->so;
    struct tern_tcp_hdr h = {.sport = req->p.lport, .dport = req->p.fport, .seq = req->p.iss + 1,
                             .ack = req->p.irs + 1, .flags = TERN_TCP_ACK,
                             .wnd = lso->rcvbuf > 65535 ? 65535 : (uint16_t)lso->rcvbuf};
    tern_tcp_emit_ctl(s, req->p.laddr, req->p.faddr, &h, lso->ttl, lso->tos);
}

/* A segment for a request: SYN-RECEIVED without a connection block, in
 * RFC 9293 3.10.7.4's order. */
static void request_input(struct tern_stack *s, struct tern_tcp_req *req, struct seg *sg)
{
    struct tern_tcpcb *ltp = req->listener;
    uint32_t rcv_nxt = req->p.irs + 1;
    /* The SYN,ACK's window, never scaled (RFC 7323 2.2): all the peer
     * may use until the handshake completes. */
    uint32_t rcv_wnd = ltp->so->rcvbuf > 65535 ? 65535 : ltp->so->rcvbuf;
    uint32_t len = seg_len(sg);
    bool acceptable = len == 0 ? tern_seq_between(sg->seq, rcv_nxt, rcv_nxt + rcv_wnd + 1)
                               : tern_seq_between(sg->seq, rcv_nxt, rcv_nxt + rcv_wnd) ||
                                     tern_seq_between(sg->seq + len - 1, rcv_nxt, rcv_nxt + rcv_wnd);
    /* First: the sequence number. The peer's own SYN again means it did
     * not hear our SYN,ACK: say it again now, as Linux does. Anything
     * else unacceptable gets an ACK, a RST nothing. */
    if (!acceptable) {
        if (sg->flags & TERN_TCP_RST)
            return;
        if (sg->flags == TERN_TCP_SYN && sg->seq == req->p.irs) {
            tern_tcp_req_send_synack(s, req);
            return;
        }
        tern_count(s, TERN_C_DROP_TCP_OUT_OF_WINDOW);
        request_ack(s, req);
        return;
    }
    /* Second: RST (RFC 5961 3.2): the exact sequence number ends the
     * attempt, quietly (the listener stays); in window, a challenge ACK. */
    if (sg->flags & TERN_TCP_RST) {
        if (sg->seq == rcv_nxt) {
            tern_count(s, TERN_C_TCP_RX_RST);
            tern_tcp_req_free(s, req);
        } else if (challenge_ack_allowed(s)) {
            request_ack(s, req);
        }
        return;
    }
    /* Fourth: a SYN in window (RFC 5961 4.2). RFC 9293 would return a
     * passive open to LISTEN, which lets a blind SYN kill it; a challenge
     * ACK lets a peer that really restarted answer with an exact RST. */
    if (sg->flags & TERN_TCP_SYN) {
        if (challenge_ack_allowed(s))
            request_ack(s, req);
        return;
    }
    /* Fifth: no ACK, no processing; an unacceptable ACK is reset. */
    if (!(sg->flags & TERN_TCP_ACK))
        return;
    if (sg->ack != req->p.iss + 1) {
        tern_count(s, TERN_C_DROP_TCP_BAD_ACK);
        tern_tcp_reset_for(s, sg->laddr, sg->lport, sg->faddr, sg->fport, sg->seq, sg->ack,
                           sg->flags, seg_len(sg));
        return;
    }
    if (ltp->lq->accept_q_len >= ltp->lq->backlog) {
        /* No room to accept: keep the request and drop the ACK; the
         * SYN,ACK timer asks again (Linux without tcp_abort_on_overflow). */
        tern_count(s, TERN_C_DROP_TCP_ACCEPT_OVERFLOW);
        return;
    }
    struct tern_tcp_synparams p = req->p;
    if (p.ts_ok && sg->opt->has_ts)
        p.ts_recent = sg->opt->ts_val;
    /* RFC 6298 (Karn): the handshake times the path unless the SYN,ACK
     * was sent again. */
    p.rtt_ns = req->retries == 0 ? s->now - req->sent_at : 0;
    tern_tcp_req_free(s, req); /* the 4-tuple passes to the child */
    struct tern_tcpcb *tp = tern_tcp_child_new(s, ltp, &p);
    if (!tp) {
        tern_tcp_reset_for(s, sg->laddr, sg->lport, sg->faddr, sg->fport, sg->seq, sg->ack,
                           sg->flags, seg_len(sg));
        return;
    }
    child_input(s, tp, sg);
}

/* ---- SYN_SENT (RFC 9293 3.10.7.3) ---- */

static void syn_sent_input(struct tern_stack *s, struct tern_tcpcb *tp, const struct seg *sg)
{
    bool ack_ok = false;
    if (sg->flags & TERN_TCP_ACK) {
        if (tern_seq_le(sg->ack, tp->iss) || tern_seq_gt(sg->ack, tp->snd_max)) {
            if (!(sg->flags & TERN_TCP_RST))
                tern_tcp_reset_for(s, sg->laddr, sg->lport, sg->faddr, sg->fport, sg->seq,
                                   sg->ack, sg->flags, seg_len(sg));
            tern_count(s, TERN_C_DROP_TCP_BAD_ACK);
            return;
        }
        ack_ok = true;
    }
    if (sg->flags & TERN_TCP_RST) {
        /* RFC 5961 3.2 does not apply here: an acceptable ACK suffices. */
        if (ack_ok) {
            tern_count(s, TERN_C_TCP_RX_RST);
            tern_tcp_drop(s, tp, ECONNREFUSED);
        }
        return;
    }
    if (!(sg->flags & TERN_TCP_SYN))
        return;
    take_syn_options(s, tp, sg);
    tp->ts_recent_at_s = (uint32_t)(s->now / TERN_NS_PER_SEC);
    init_cwnd(s, tp);
    tp->irs = sg->seq;
    tp->rcv_nxt = sg->seq + 1;
    tp->rcv_adv = tp->rcv_nxt;
    if (ack_ok) {
        tp->snd_una = sg->ack;
        tp->snd_wnd = sg->wnd; /* unscaled in a SYN */
        tp->snd_wl1 = sg->seq;
        tp->snd_wl2 = sg->ack;
        tern_tcp_timer_stop(tp, TERN_TCPT_REXMT);
        tp->retransmits = 0;
        if (tp->rtt_timing)
            tp->rtt_timing = false;
        if (tp->total_retransmits == 0)
            tern_tcp_rtt_sample(s, tp, tern_tcp_rtt_since(s, tp));
        tern_tcp_set_state(s, tp, TCPS_ESTABLISHED);
        tern_count(s, TERN_C_TCP_CONN_ESTABLISHED);
        tp->last_rx = s->now;
        tp->ack_now = true;
        tern_tcp_output(s, tp);
        return;
    }
    /* Simultaneous open: answer with SYN,ACK from the same ISS. */
    tp->snd_wnd = sg->wnd;
    tp->snd_wl1 = sg->seq;
    tp->snd_wl2 = tp->iss;
    tern_tcp_set_state(s, tp, TCPS_SYN_RECEIVED);
    tp->snd_nxt = tp->iss;
    tern_tcp_output(s, tp);
}

/* ---- Synchronized states (RFC 9293 3.10.7.4) ---- */

static bool seq_acceptable(const struct tern_tcpcb *tp, const struct seg *sg, uint32_t rcv_wnd)
{
    uint32_t len = seg_len(sg);
    if (len == 0) {
        if (rcv_wnd == 0)
            return sg->seq == tp->rcv_nxt;
        /* RFC 9293's test is RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND; a
         * bare ACK sitting exactly on the right edge (its sender filled
         * our window) is taken too, as BSD and Linux do, or its ACK field
         * would be lost and two such ends would answer each other's
         * "unacceptable" ACKs forever. */
        return tern_seq_between(sg->seq, tp->rcv_nxt, tp->rcv_nxt + rcv_wnd + 1);
    }
    if (rcv_wnd == 0)
        return false;
    return tern_seq_between(sg->seq, tp->rcv_nxt, tp->rcv_nxt + rcv_wnd) ||
           tern_seq_between(sg->seq + len - 1, tp->rcv_nxt, tp->rcv_nxt + rcv_wnd);
}

/* RFC 2883: the next ACK of this connection reports [start, end) as
 * received twice. Only to a peer that allowed SACK (section 4), and only
 * the latest duplicate: one D-SACK block per ACK. The ACK goes at once,
 * as for any segment out of order (RFC 5681 4.2). */
static void dsack_note(struct tern_stack *s, struct tern_tcpcb *tp, uint32_t start, uint32_t end)
{
    if (!tp->sack_ok || !tern_seq_lt(start, end))
        return;
    s->dsack_sock_id = tp->so->id;
    s->dsack_start = start;
    s->dsack_end = end;
    tp->ack_now = true;
}

/* The ACK owed to an unacceptable segment (RFC 9293 3.10.7.4, RFC 7323
 * 5.3). For a segment without data or SYN, at most one per 500 ms per
 * connection, as Linux's tcp_invalid_ratelimit: such ACKs are how two
 * confused ends feed an ACK loop, while a segment with data is a
 * retransmission that must learn where we are at once. */
static void dupack_for_unacceptable(struct tern_stack *s, struct tern_tcpcb *tp,
                                    const struct seg *sg)
{
    /* Data we had already (a retransmission that was not needed, or one
     * the network duplicated): say so, up to RCV.NXT (as Linux's
     * tcp_send_dupack). */
    if (sg->len && tern_seq_lt(sg->seq, tp->rcv_nxt)) {
        uint32_t end = sg->seq + sg->len;
        dsack_note(s, tp, sg->seq, tern_seq_lt(end, tp->rcv_nxt) ? end : tp->rcv_nxt);
    }
    if (sg->len == 0 && !(sg->flags & TERN_TCP_SYN)) {
        uint32_t now_ms = (uint32_t)(s->now / TERN_NS_PER_MS) + 1;
        if (tp->last_oow_ack_ms &&
            now_ms - tp->last_oow_ack_ms < TERN_TCP_OOW_ACK_INTERVAL_NS / TERN_NS_PER_MS) {
            tern_count(s, TERN_C_DROP_TCP_OOW_ACK_RATELIMIT);
            return;
        }
        tp->last_oow_ack_ms = now_ms;
    }
    tern_tcp_send_ctl(s, tp, TERN_TCP_ACK, tp->snd_max);
}

/* RFC 7323 5.3 PAWS, with Linux's two allowances: a timestamp one tick
 * old passes (TCP_PAWS_WINDOW), and so does a reordered pure duplicate
 * ACK that changes nothing (tcp_disordered_ack): dropping it only costs
 * its ACK and starts an exchange of ACKs. */
static bool paws_rejects(const struct tern_stack *s, const struct tern_tcpcb *tp,
                         const struct seg *sg)
{
    if (!tp->ts_ok || !sg->opt->has_ts || (sg->flags & TERN_TCP_RST))
        return false;
    int32_t behind = (int32_t)(tp->ts_recent - sg->opt->ts_val);
    if (behind <= 1)
        return false;
    if ((uint32_t)(s->now / TERN_NS_PER_SEC) - tp->ts_recent_at_s >= 24u * 86400)
        return false; /* ts_recent too old to judge by (RFC 7323 5.5) */
    bool pure_dupack = sg->len == 0 && (sg->flags & TERN_TCP_ACK) &&
                       !(sg->flags & (TERN_TCP_SYN | TERN_TCP_FIN)) && sg->seq == tp->rcv_nxt &&
                       sg->ack == tp->snd_una && (sg->wnd << tp->snd_wscale) == tp->snd_wnd;
    return !(pure_dupack && (uint64_t)behind * TERN_NS_PER_MS <= tp->rto);
}

/* RFC 5961 sections 3.2, 4.2, 5.2: a challenge ACK, rate limited per stack
 * as its section 7 asks (a 1000/s budget, like Linux's old default,
 * renewed each second). */
static void challenge_ack(struct tern_stack *s, struct tern_tcpcb *tp)
{
    if (challenge_ack_allowed(s))
        tern_tcp_send_ctl(s, tp, TERN_TCP_ACK, tp->snd_max);
}

/* RFC 9293: TIME_WAIT holds the 4-tuple for 2MSL. The connection lives on
 * as a compact record and the socket is let go now (tcp_timewait.h);
 * `tp` is CLOSED on return. An ACK the caller owes the peer (for its FIN)
 * is sent from the record. */
static void enter_time_wait(struct tern_stack *s, struct tern_tcpcb *tp, bool ack_fin)
{
    uint32_t laddr = tp->so->pcb.laddr, faddr = tp->so->pcb.faddr;
    uint16_t lport = tp->so->pcb.lport, fport = tp->so->pcb.fport;
    tern_tcp_tw_enter(s, tp);
    if (!ack_fin)
        return;
    struct tern_inpcb *pcb = tern_pcb_lookup_conn(s, &s->tcp_pcbs, laddr, lport, faddr, fport);
    if (pcb && pcb->kind == TERN_PCB_TIMEWAIT)
        tern_tcp_tw_send_ack(s, tern_tcp_tw_of(pcb));
}

static size_t rcv_sink(void *arg, const void *p, size_t n)
{
    return tern_ring_write(arg, p, n);
}

/* Apply an ACK's SACK blocks to the scoreboard (RFC 2018, RFC 2883). */
static struct tern_tcp_sack_news sack_input(struct tern_stack *s, struct tern_tcpcb *tp,
                                            const struct seg *sg)
{
    struct tern_tcp_sack_news news = {0};
    if (!tp->sack_ok || sg->opt->nsack == 0)
        return news;
    tern_count(s, TERN_C_TCP_RX_SACK);
    news = tern_tcp_sack_update(&tp->sackb, tp->snd_una, tp->snd_max, sg->opt->sack,
                                sg->opt->nsack);
    tern_count_n(s, TERN_C_TCP_RX_DSACK, news.dsack);
    tern_count_n(s, TERN_C_DROP_TCP_SACK_INVALID, news.invalid);
    tern_count_n(s, TERN_C_DROP_TCP_SACK_BOARD_FULL, news.dropped);
    return news;
}

/* Data at low_seq was acknowledged or SACKed after data up to fack had
 * been SACKed, and it was never sent twice: it was not lost but
 * overtaken, by (fack - low_seq) bytes. DupThresh grows to that many
 * segments, so that as many SACKed segments above a hole no longer start
 * a needless fast retransmit (Linux's tcp_check_sack_reordering; RFC 6675
 * section 2 leaves DupThresh to such adaptation, as RFC 4653 does). It
 * never shrinks but after a timeout the waiting caused (tcp_timer.c). */
static void reordering_seen(struct tern_stack *s, struct tern_tcpcb *tp, uint32_t low_seq,
                            uint32_t fack)
{
    if (!tern_seq_lt(low_seq, fack))
        return;
    tern_count(s, TERN_C_TCP_REORDERING_SEEN);
    uint32_t seg = tern_tcp_seg_size(tp);
    uint32_t degree = (fack - low_seq + seg - 1) / seg;
    if (degree <= tp->reordering)
        return;
    tp->reordering = (uint8_t)(degree < TERN_TCP_REORDERING_MAX ? degree : TERN_TCP_REORDERING_MAX);
}

/* The recovery resent one segment, and its original came after all:
 * there was no loss, so the window cut is undone and the recovery ends
 * (RFC 9438 section 4.9: CUBIC's state as it was, and the window and
 * ssthresh each the larger of now and then, as Linux's
 * tcp_undo_cwnd_reduction does; RFC 4015's response to a spurious
 * timeout would regrow the window from the flight instead, which avoids
 * the burst a restored window may release at once, unpaced here). Holes
 * still open are judged again by the SACKs to come, with the DupThresh
 * just raised. */
static void undo_recovery(struct tern_stack *s, struct tern_tcpcb *tp,
                          const struct tern_tcp_sack_rxt1 *before)
{
    tern_count(s, TERN_C_TCP_RECOVERY_UNDONE);
    tp->cc_state = before->cc;
    if (tp->cwnd < before->cwnd)
        tp->cwnd = before->cwnd;
    if (tp->ssthresh < before->ssthresh)
        tp->ssthresh = before->ssthresh;
    tp->in_recovery = false;
    tp->sack_recovery = false;
    tern_tcp_sack_rxt_forget(&tp->sackb);
}

/* A D-SACK after a fast retransmit says the peer got some data twice: the
 * retransmission was needless (RFC 3708 section 3), the original having
 * come late. Only a recovery that resent one segment is judged (any
 * further retransmission clears rxt_unproven: the D-SACK could be for
 * that one, or for a copy whose ACK was lost; so does a loss probe),
 * and only a D-SACK of data sent before the recovery began, below
 * RecoveryPoint, as the retransmission was. A duplicate the network made
 * of such data can still pass for one, so a recovery so proven raises
 * DupThresh by one segment; by how much the original was late the D-SACK
 * does not say (the scoreboard that knew is gone by the time it comes). */
static void dsack_input(struct tern_stack *s, struct tern_tcpcb *tp,
                        const struct tern_tcp_sack_news *news)
{
    /* A D-SACK answering a loss probe says only that the probe was
     * needless (RFC 8985 7.4), handled with the probe. */
    if (news->dsack == 0 || !tp->rxt_unproven || tp->rto_recovery || tp->tlp_out)
        return;
    if (tern_seq_gt(news->dsack_end, tp->recover))
        return; /* a copy of later data: the network's, not ours */
    tp->rxt_unproven = false;
    tern_count(s, TERN_C_TCP_SPURIOUS_RETRANSMIT);
    if (tp->reordering < TERN_TCP_REORDERING_MAX)
        tp->reordering++;
}

/* The tail loss probe arrived (its last byte is SACKed) while what was
 * sent before it is still missing: those segments left at least a probe
 * timeout (two round trips) before the probe and did not arrive, so they
 * are lost (RFC 8985 section 7.4 leaves this to RACK's time-based rule,
 * of which this is the part a probe needs). Without it, a tail that lost
 * two segments would have one SACKed above the hole, short of
 * DupThresh, and wait for the RTO all the same. */
static bool probe_sacked_above_a_hole(const struct tern_tcpcb *tp)
{
    if (!tp->tlp_out || !tp->sack_ok)
        return false;
    uint32_t data_end = tern_tcp_fin_seq(tp);
    uint32_t last = (tern_seq_lt(tp->tlp_end_seq, data_end) ? tp->tlp_end_seq : data_end) - 1;
    return tern_seq_lt(tp->snd_una, last) && tern_tcp_sack_holds(&tp->sackb, last);
}

/* RFC 5827 early retransmit, byte-based as section 3.2 has it for SACK:
 * with less than four segments' worth out and no new data the receiver's
 * window lets go (which limited transmit would use to make more ACKs),
 * a fast retransmit needs only all but one segment's worth SACKed, not
 * DupThresh duplicate ACKs. A small window or the end of a write then
 * recovers without a timer. With segments smaller than SMSS (TCP_NODELAY)
 * that rule would fire on the first SACK, so at least half of what is
 * out must be SACKed too: the segment-based rule's "all but one" when
 * the segments are alike. */
static bool early_retransmit_due(const struct tern_tcpcb *tp)
{
    uint32_t seg = tern_tcp_seg_size(tp);
    uint32_t out = tp->snd_max - tp->snd_una;
    if (!tp->sack_ok || out >= 4 * seg)
        return false;
    uint32_t unsent = tern_seq_lt(tp->snd_nxt, tern_tcp_fin_seq(tp))
                          ? tern_tcp_fin_seq(tp) - tp->snd_nxt : 0;
    uint32_t inflight = tp->snd_nxt - tp->snd_una;
    if (unsent > 0 && tp->snd_wnd > inflight)
        return false;
    uint32_t sacked = tern_tcp_sack_bytes(&tp->sackb);
    uint32_t need = out > seg ? out - seg : 0;
    if (need < out / 2)
        need = out / 2;
    return sacked > 0 && sacked >= need;
}

/* Fast retransmit, and loss recovery until RecoveryPoint is acknowledged:
 * RFC 6675 section 5 step (4) with SACK, RFC 6582 section 3.2 without. */
static void enter_recovery(struct tern_stack *s, struct tern_tcpcb *tp)
{
    struct tern_tcp_sack_rxt1 first = {.seq = tp->snd_una, .cwnd = tp->cwnd,
                                       .ssthresh = tp->ssthresh, .cc = tp->cc_state};
    tern_count(s, TERN_C_TCP_FAST_RETRANSMIT);
    TERN_TCP_CC(s, tp)->congestion(tp, s->now);
    bool probe_resent = tp->tlp_out && tp->tlp_retrans;
    /* After a probe that resent the tail, a D-SACK may answer the probe
     * (whose wait this recovery ends): it could prove nothing here. */
    tp->rxt_unproven = tp->sack_ok && !probe_resent;
    tp->tlp_out = false; /* recovery answers for the tail now; recover replaces tlp_end_seq */
    tp->recover = tp->snd_max;
    tp->in_recovery = true;
    uint32_t seg = tern_tcp_seg_size(tp);
    uint32_t len = tern_tcp_fin_seq(tp) - tp->snd_una;
    if (len > seg)
        len = seg;
    if (tp->sack_ok) {
        /* NextSeg's rule 2 sends new data from SND.NXT: nothing below
         * SND.MAX may be waiting there (only a timeout rewinds it, and no
         * fast retransmit starts until that is over). */
        TERN_ASSERT(s, tp->snd_nxt == tp->snd_max,
                    "socket #%llu enters SACK recovery with snd_nxt %u below snd_max %u",
                    (unsigned long long)tp->so->id, tp->snd_nxt, tp->snd_max);
        tern_count(s, TERN_C_TCP_SACK_RECOVERY);
        tp->sack_recovery = true;
        tp->cwnd = tp->ssthresh;
        /* Step (4.3): the first unacknowledged segment goes at once,
         * whatever pipe says; then NextSeg fills cwnd. */
        tern_tcp_sack_rxt_forget(&tp->sackb);
        tern_tcp_sack_rxt_note(&tp->sackb, tp->snd_una, tp->snd_una + len, tp->snd_max);
        /* Eifel's test needs this to be the segment's first resending:
         * not if a loss probe or an earlier recovery resent it. */
        first.end = tp->snd_una + len;
        first.eifel = tp->ts_ok && !probe_resent && tern_seq_le(tp->high_rxt, tp->snd_una);
        if (first.eifel)
            first.tsval = tern_tcp_ts_now(tp, s->now);
        tern_tcp_sack_rxt1_note(&tp->sackb, &first);
        tern_tcp_send_data(s, tp, tp->snd_una, len);
        tp->high_rxt = tp->snd_una + len;
        tern_tcp_output(s, tp);
    } else {
        tern_count(s, TERN_C_TCP_NEWRENO_RECOVERY);
        tern_tcp_send_data(s, tp, tp->snd_una, len);
        tp->cwnd = tp->ssthresh + TERN_TCP_DUPTHRESH * tp->mss;
    }
}

/* In SACK recovery, after an ACK: a retransmission the SACKs show lost
 * goes again at once (tcp_sack.h), as the first copy went when recovery
 * began; the pipe still counts it below HighRxt, so nothing else is sent
 * for it. Without this only the RTO would find it. */
static void resend_lost_retransmission(struct tern_stack *s, struct tern_tcpcb *tp)
{
    uint32_t seq, len;
    if (!tp->sack_recovery || !tern_tcp_sack_rxt_lost(&tp->sackb, tp->snd_una, tern_tcp_seg_size(tp),
                                                      tern_tcp_dupthresh(tp), &seq, &len))
        return;
    tern_count(s, TERN_C_TCP_LOST_RETRANSMIT);
    tp->rxt_unproven = false; /* a D-SACK could answer either copy now */
    tern_tcp_sack_rxt_note(&tp->sackb, seq, seq + len, tp->snd_max);
    tern_tcp_send_data(s, tp, seq, len);
}

/* RFC 9293 3.10.7.4, fifth check: the ACK field. Returns false if the
 * segment is to be dropped. */
static bool ack_input(struct tern_stack *s, struct tern_tcpcb *tp, const struct seg *sg)
{
    if (tp->state == TCPS_SYN_RECEIVED) {
        if (!tern_seq_gt(sg->ack, tp->snd_una) || tern_seq_gt(sg->ack, tp->snd_max)) {
            tern_tcp_reset_for(s, sg->laddr, sg->lport, sg->faddr, sg->fport, sg->seq, sg->ack,
                               sg->flags, seg_len(sg));
            return false;
        }
        tern_tcp_set_state(s, tp, TCPS_ESTABLISHED);
        tern_count(s, TERN_C_TCP_CONN_ESTABLISHED);
        tp->snd_wnd = sg->wnd << tp->snd_wscale;
        tp->snd_wl1 = sg->seq;
        tp->snd_wl2 = sg->ack;
        if (tp->fin_queued)
            tern_tcp_set_state(s, tp, TCPS_FIN_WAIT_1); /* the user shut down meanwhile */
    }
    if (tern_seq_gt(sg->ack, tp->snd_max)) {
        /* Acks what we never sent: ACK and drop. */
        drop_seg(s, tp, sg, TERN_C_DROP_TCP_BAD_ACK);
        tp->ack_now = true;
        return false;
    }
    if (tern_seq_lt(sg->ack, tp->snd_una - 65535u * (1u << tp->snd_wscale))) {
        /* RFC 5961 5.2: too old to be real. */
        challenge_ack(s, tp);
        return false;
    }
    uint32_t wnd = sg->wnd << tp->snd_wscale;
    bool dup_candidate = sg->ack == tp->snd_una && sg->len == 0 &&
                         !(sg->flags & (TERN_TCP_SYN | TERN_TCP_FIN)) &&
                         tp->snd_max != tp->snd_una;
    if (tern_seq_gt(sg->ack, tp->snd_una)) {
        uint32_t acked = sg->ack - tp->snd_una;
        /* Data leaves the send ring; the SYN and FIN have no bytes there. */
        uint32_t data_end = tern_tcp_fin_seq(tp);
        uint32_t upto = tern_seq_lt(sg->ack, data_end) ? sg->ack : data_end;
        if (tern_seq_gt(upto, tp->snd_buf_seq)) {
            tern_ring_discard(&tp->snd, upto - tp->snd_buf_seq);
            tp->snd_buf_seq = upto;
            tern_tcp_reclaim_later(s, tp); /* all acked: give the block back soon */
        }
        if (tp->rtt_timing && tern_seq_gt(sg->ack, tp->rtt_seq)) {
            tp->rtt_timing = false;
            tern_tcp_rtt_sample(s, tp, tern_tcp_rtt_since(s, tp));
        } else if (!tp->rtt_timing && (tp->retransmits || tp->rto_recovery || tp->in_recovery) &&
                   tp->ts_ok && sg->opt->has_ts && sg->opt->ts_ecr) {
            /* Karn's rule leaves nothing timed while what this ACK covers
             * may have gone twice, and after a timeout the doubled RTO
             * would stay until new data is timed and acked. The echoed
             * timestamp says which sending the ACK answers (RFC 7323
             * section 4.1; Linux's tcp_ack_update_rtt falls back on it
             * the same way). Not every echo times a retransmission: a
             * peer that had the data already (our ACKs were lost) echoes
             * the newest segment it took in order, sent before the
             * timeout, and that "sample" is the timeout itself; taking it
             * blew the RTO up and doubled the matrix's median time at 20%
             * loss. A retransmission went out when the RTO in force, half
             * of today's doubled one, expired, so its round trip is
             * shorter than that: anything longer is not ours to take.
             * Ticks are 1 ms: 0 counts as 1, as Linux. */
            uint32_t ms = tern_tcp_ts_now(tp, s->now) - sg->opt->ts_ecr;
            if ((uint64_t)ms * TERN_NS_PER_MS < tp->rto / 2) {
                tern_tcp_rtt_sample(s, tp, (uint64_t)(ms ? ms : 1) * TERN_NS_PER_MS);
                tern_count(s, TERN_C_TCP_RTT_FROM_TS);
            }
        }
        uint32_t old_una = tp->snd_una, old_high_rxt = tp->high_rxt, fack = 0;
        bool had_sacks = tern_tcp_sack_fack(&tp->sackb, &fack);
        /* RFC 3522 (Eifel detection): the ACK that fills the hole the
         * recovery resent first echoes the TSval of the copy that filled
         * it; one older than the retransmission's is the original's,
         * which was late, not lost. The board still says by how much.
         * The ACK must cover all that was resent: the originals may have
         * been smaller segments, and an ACK for the first of them alone
         * says nothing of the others, which the retransmission may be
         * what repaired (Linux undoes only with nothing retransmitted
         * still out). */
        struct tern_tcp_sack_rxt1 first = {0};
        bool first_answered = tern_tcp_sack_rxt1_take(&tp->sackb, &first) &&
                              first.seq == old_una;
        bool original_came = first_answered && first.eifel &&
                             tern_seq_ge(sg->ack, first.end) && sg->opt->has_ts &&
                             sg->opt->ts_ecr && tern_seq_lt(sg->opt->ts_ecr, first.tsval);
        /* An ACK that ends inside what was resent answers an original
         * that held only its first part; the rest was still missing, and
         * a D-SACK to come could report only the part that came twice:
         * whether the retransmission was needed can no longer be told. */
        if (first_answered && tern_seq_lt(sg->ack, first.end))
            tp->rxt_unproven = false;
        tp->snd_una = sg->ack;
        tp->unacked_since_ms = (uint32_t)(s->now / TERN_NS_PER_MS); /* progress: what is left is younger */
        if (tern_seq_lt(tp->snd_nxt, tp->snd_una))
            tp->snd_nxt = tp->snd_una;
        if (tern_seq_lt(tp->high_rxt, tp->snd_una))
            tp->high_rxt = tp->snd_una;
        /* The copy a needless retransmission made reaches the peer before
         * what was sent after it, so its D-SACK comes with an ACK no
         * further than RecoveryPoint plus what reordering let overtake
         * it. A whole window beyond, none is coming (and later, sequence
         * comparisons with RecoveryPoint would wrap). */
        if (tp->rxt_unproven && !tp->in_recovery &&
            tern_seq_gt(tp->snd_una, tp->recover + tp->snd_wnd))
            tp->rxt_unproven = false;
        tern_tcp_sack_advance(&tp->sackb, tp->snd_una);
        struct tern_tcp_sack_news news = sack_input(s, tp, sg);
        if (had_sacks && !tp->rto_recovery) {
            /* The hole at the old SND.UNA is filled; it was never resent
             * if it lies at or above HighRxt. So for what this ACK SACKs
             * for the first time. */
            if (tern_seq_ge(old_una, old_high_rxt) || original_came)
                reordering_seen(s, tp, old_una, fack);
            if (news.has_low_new && tern_seq_ge(news.low_new, old_high_rxt))
                reordering_seen(s, tp, news.low_new, fack);
        }
        if (original_came && !tp->rto_recovery && tp->rxt_unproven) {
            tern_count(s, TERN_C_TCP_SPURIOUS_RETRANSMIT);
            tp->rxt_unproven = false; /* proven: its D-SACK will add nothing */
            if (tp->sack_recovery)
                undo_recovery(s, tp, &first);
        }
        dsack_input(s, tp, &news);
        if (tp->tlp_out && tern_seq_ge(sg->ack, tp->tlp_end_seq)) {
            /* RFC 8985 7.4: the probe is answered. If it resent the last
             * segment and the peer does not say it got that twice
             * (D-SACK), the probe repaired a loss that no recovery saw:
             * the window is cut once, as fast recovery would have. */
            tp->tlp_out = false;
            if (tp->tlp_retrans && news.dsack == 0) {
                tern_count(s, TERN_C_TCP_TLP_RECOVERED);
                TERN_TCP_CC(s, tp)->congestion(tp, s->now);
            }
        }
        tp->retransmits = 0;
        tp->backoff = 0;
        tp->dupacks = 0;
        if (tp->rto_recovery && tern_seq_ge(sg->ack, tp->recover))
            tp->rto_recovery = false;
        if (tp->in_recovery && tern_seq_ge(sg->ack, tp->recover)) {
            /* Recovery is over (RFC 6675 section 5, RFC 6582 3.2 step 3). */
            tp->in_recovery = false;
            tp->sack_recovery = false;
            TERN_TCP_CC(s, tp)->recovered(tp, s->now);
        } else if (tp->in_recovery && !tp->sack_recovery) {
            /* RFC 6582 3.2 step 3, a partial ACK: retransmit the next
             * hole at once and deflate by what was acknowledged. */
            tp->cwnd = tp->cwnd > acked ? tp->cwnd - acked + tp->mss : tp->mss;
            uint32_t seg = tern_tcp_seg_size(tp);
            uint32_t len = tern_tcp_fin_seq(tp) - tp->snd_una;
            tern_tcp_send_data(s, tp, tp->snd_una, len < seg ? len : seg);
        } else if (!tp->in_recovery) {
            TERN_TCP_CC(s, tp)->ack(tp, acked, s->now);
            tern_tcp_sndbuf_autotune(s, tp);
        }
        /* In SACK recovery a partial ACK needs nothing special: the
         * scoreboard and pipe decide what goes next (RFC 6675), but for
         * a retransmission lost again. */
        resend_lost_retransmission(s, tp);
        if (tp->snd_una == tp->snd_max) {
            tern_tcp_timer_stop(tp, TERN_TCPT_REXMT);
            tp->tlp_armed = false;
        } else {
            tern_tcp_rexmt_or_probe_arm(s, tp);
        }
    } else if (dup_candidate) {
        uint32_t fack = 0;
        bool had_sacks = tern_tcp_sack_fack(&tp->sackb, &fack);
        struct tern_tcp_sack_news news = sack_input(s, tp, sg);
        if (had_sacks && !tp->rto_recovery && news.has_low_new &&
            tern_seq_ge(news.low_new, tp->high_rxt))
            reordering_seen(s, tp, news.low_new, fack);
        dsack_input(s, tp, &news);
        /* A probe the peer got twice (the original was not lost): no
         * loss to answer for (RFC 8985 7.4). */
        if (tp->tlp_out && news.dsack)
            tp->tlp_out = false;
        /* A duplicate ACK (RFC 5681 section 2); with SACK, one that
         * reports new SACKed data (RFC 6675 section 2) even if the
         * window moved. */
        bool dup = (tp->sack_ok && sg->opt->nsack) ? news.new_sacked : wnd == tp->snd_wnd;
        if (dup) {
            if (tp->dupacks < UINT16_MAX)
                tp->dupacks++;
            tern_count(s, TERN_C_TCP_RX_DUPACK);
            if (!tp->in_recovery && !tp->rto_recovery &&
                (tp->dupacks >= tern_tcp_dupthresh(tp) ||
                 (tp->sack_ok && tern_tcp_sack_is_lost(&tp->sackb, tp->snd_una, tern_tcp_seg_size(tp),
                                                       tern_tcp_dupthresh(tp))) ||
                 probe_sacked_above_a_hole(tp))) {
                enter_recovery(s, tp);
            } else if (!tp->in_recovery && !tp->rto_recovery && early_retransmit_due(tp)) {
                tern_count(s, TERN_C_TCP_EARLY_RETRANSMIT);
                enter_recovery(s, tp);
            } else if (tp->in_recovery && !tp->sack_recovery) {
                tp->cwnd += tp->mss; /* RFC 6582: each dupack, a segment left */
            } else {
                resend_lost_retransmission(s, tp);
            }
        }
    }
    /* Window update (RFC 9293 3.10.7.4, SND.WL1/WL2 rule). */
    if (tern_seq_lt(tp->snd_wl1, sg->seq) ||
        (tp->snd_wl1 == sg->seq && tern_seq_le(tp->snd_wl2, sg->ack))) {
        tp->snd_wnd = wnd;
        tp->snd_wl1 = sg->seq;
        tp->snd_wl2 = sg->ack;
        if (wnd > 0)
            tern_tcp_timer_stop(tp, TERN_TCPT_PERSIST);
    }
    bool fin_acked = tp->fin_queued && tern_seq_gt(tp->snd_una, tern_tcp_fin_seq(tp));
    switch (tp->state) {
    case TCPS_FIN_WAIT_1:
        if (fin_acked) {
            tern_tcp_set_state(s, tp, TCPS_FIN_WAIT_2);
            if (tp->so->life == SOCK_LIFE_PROTO_ONLY) {
                /* Orphaned: do not wait forever for the peer's FIN
                 * (Linux's tcp_fin_timeout, 60 s). */
                tern_tcp_timer_set(s, tp, TERN_TCPT_FINWAIT2, s->now + TERN_TCP_FIN_TIMEOUT_NS);
            }
        }
        break;
    case TCPS_CLOSING:
        if (fin_acked) {
            enter_time_wait(s, tp, false); /* their FIN was acked already */
            return false;
        }
        break;
    case TCPS_LAST_ACK:
        if (fin_acked) {
            tern_tcp_drop(s, tp, 0);
            return false;
        }
        break;
    default:
        break;
    }
    return true;
}

static void data_input(struct tern_stack *s, struct tern_tcpcb *tp, struct seg *sg)
{
    if (sg->len == 0)
        return;
    if (tp->state != TCPS_ESTABLISHED && tp->state != TCPS_FIN_WAIT_1 &&
        tp->state != TCPS_FIN_WAIT_2)
        return; /* after the peer's FIN, more data is ignored (RFC 9293) */
    if (sg->seq == tp->rcv_nxt) {
        uint32_t space = tern_ring_space(&tp->rcv);
        uint32_t took = tern_ring_write(&tp->rcv, sg->data, sg->len);
        tp->rcv_nxt += took;
        if (took < sg->len)
            drop_seg(s, tp, sg,
                     took < space ? TERN_C_DROP_TCP_NOMEM : TERN_C_DROP_TCP_RCVBUF_FULL);
        if (!tern_tcp_ooo_empty(tp)) {
            tp->rcv_nxt += (uint32_t)tern_tcp_reass_take_in_order(tp->ooo, tp->rcv_nxt, rcv_sink,
                                                                 &tp->rcv);
            if (tern_tcp_ooo_empty(tp))
                tern_tcp_reclaim_later(s, tp);
            tp->ack_now = true; /* RFC 5681 4.2: filling a hole is acked at once */
        }
        /* RFC 1122 4.2.3.2 / RFC 5681 4.2: ack every second full segment,
         * else within the delayed-ACK time; a coalesced one is several. */
        tp->segs_unacked += sg->segs > 1 ? 2 : 1;
        if (tp->segs_unacked >= 2)
            tp->ack_now = true;
        else
            tern_tcp_delack_arm(s, tp);
    } else {
        /* Out of order: hold it, and send a duplicate ACK at once
         * (RFC 5681 4.2). */
        struct tern_tcp_reass *q = tern_tcp_ooo_make(tp);
        enum tern_tcp_reass_result r =
            q ? tern_tcp_reass_insert(q, tp->rcv_nxt, sg->seq, sg->data, sg->len)
              : TERN_TCP_REASS_NO_MEMORY;
        if (r == TERN_TCP_REASS_NO_MEMORY || r == TERN_TCP_REASS_TOO_MANY_BLOCKS)
            drop_seg(s, tp, sg, TERN_C_DROP_TCP_OOO_FULL);
        else
            tern_count(s, TERN_C_TCP_RX_OUT_OF_ORDER);
        /* Held already, whole: the D-SACK block, then the block holding
         * it, which the queue now names first (RFC 2883 section 4). A
         * segment only partly held is not reported: which bytes were new
         * the queue does not say, and D-SACK is advice. */
        if (r == TERN_TCP_REASS_DUPLICATE)
            dsack_note(s, tp, sg->seq, sg->seq + sg->len);
        tp->ack_now = true;
    }
}

static void fin_input(struct tern_stack *s, struct tern_tcpcb *tp)
{
    /* RFC 9293 3.10.7.4, eighth check: the FIN, once in order. */
    tp->rcv_nxt++;
    tp->fin_received = true;
    tp->ack_now = true;
    switch (tp->state) {
    case TCPS_SYN_RECEIVED:
    case TCPS_ESTABLISHED:
        tern_tcp_set_state(s, tp, TCPS_CLOSE_WAIT);
        break;
    case TCPS_FIN_WAIT_1:
        if (tp->fin_queued && tern_seq_gt(tp->snd_una, tern_tcp_fin_seq(tp)))
            enter_time_wait(s, tp, true);
        else
            tern_tcp_set_state(s, tp, TCPS_CLOSING);
        break;
    case TCPS_FIN_WAIT_2:
        enter_time_wait(s, tp, true);
        break;
    default:
        break;
    }
}

static void synced_input(struct tern_stack *s, struct tern_tcpcb *tp, struct seg *sg)
{
    tp->last_rx = s->now; /* the peer is alive: keepalive starts over */
    tp->keep_probes = 0;
    uint32_t rcv_wnd = tern_tcp_rcv_window(tp);
    /* RFC 7323 5.3, PAWS: a timestamp older than the last one echoed
     * marks an old duplicate. */
    if (paws_rejects(s, tp, sg)) {
        drop_seg(s, tp, sg, TERN_C_DROP_TCP_PAWS);
        dupack_for_unacceptable(s, tp, sg);
        return;
    }
    /* RFC 7323 4.3: take the peer's TSval from a segment covering the
     * left edge of the window. */
    if (tp->ts_ok && sg->opt->has_ts && tern_seq_le(sg->seq, tp->rcv_nxt) &&
        tern_seq_le(tp->rcv_nxt, sg->seq + seg_len(sg))) {
        tp->ts_recent = sg->opt->ts_val;
        tp->ts_recent_at_s = (uint32_t)(s->now / TERN_NS_PER_SEC);
    }
    if (tp->state == TCPS_SYN_RECEIVED && (sg->flags & TERN_TCP_SYN) &&
        !(sg->flags & (TERN_TCP_ACK | TERN_TCP_RST)) && sg->seq == tp->irs) {
        /* (Simultaneous open.) The peer did not hear our SYN,ACK: say it
         * again now, as Linux does, rather than at our timeout. */
        tp->snd_nxt = tp->iss;
        tern_tcp_output(s, tp);
        return;
    }
    /* First: is the sequence number acceptable? */
    if (!seq_acceptable(tp, sg, rcv_wnd)) {
        drop_seg(s, tp, sg, TERN_C_DROP_TCP_OUT_OF_WINDOW);
        if (!(sg->flags & TERN_TCP_RST))
            dupack_for_unacceptable(s, tp, sg); /* RFC 9293: answered with an ACK */
        return;
    }
    /* Trim to the window: what is below RCV.NXT is old, what is past the
     * right edge is not ours to take yet. */
    if (tern_seq_lt(sg->seq, tp->rcv_nxt)) {
        uint32_t skip = tp->rcv_nxt - sg->seq;
        if (sg->flags & TERN_TCP_SYN) {
            sg->flags &= (uint8_t)~TERN_TCP_SYN;
            sg->seq++;
            skip--;
        }
        if (skip > sg->len)
            skip = sg->len;
        dsack_note(s, tp, sg->seq, sg->seq + skip); /* a partial duplicate */
        sg->data += skip;
        sg->len -= skip;
        sg->seq += skip;
    }
    uint32_t edge = tp->rcv_nxt + rcv_wnd;
    if (tern_seq_gt(sg->seq + sg->len, edge)) {
        sg->len = tern_seq_gt(edge, sg->seq) ? edge - sg->seq : 0;
        sg->flags &= (uint8_t)~TERN_TCP_FIN;
    }
    /* Second: RST (RFC 5961 3.2: exact match resets, in window challenges). */
    if (sg->flags & TERN_TCP_RST) {
        if (sg->seq != tp->rcv_nxt) {
            challenge_ack(s, tp);
            return;
        }
        tern_count(s, TERN_C_TCP_RX_RST);
        switch (tp->state) {
        case TCPS_SYN_RECEIVED:
            /* Only a simultaneous open has a connection block here
             * (passive opens are requests): RFC 9293 says connection
             * refused. */
            tern_tcp_drop(s, tp, ECONNREFUSED);
            break;
        case TCPS_ESTABLISHED:
        case TCPS_FIN_WAIT_1:
        case TCPS_FIN_WAIT_2:
            tern_tcp_drop(s, tp, ECONNRESET);
            break;
        case TCPS_CLOSE_WAIT:
            tern_tcp_drop(s, tp, EPIPE); /* as Linux: the reader saw EOF already */
            break;
        default:
            tern_tcp_drop(s, tp, 0);
            break;
        }
        return;
    }
    /* Fourth: a SYN in a synchronized state (RFC 5961 4.2). */
    if (sg->flags & TERN_TCP_SYN) {
        challenge_ack(s, tp);
        return;
    }
    /* Fifth: no ACK, no processing. */
    if (!(sg->flags & TERN_TCP_ACK))
        return;
    if (!ack_input(s, tp, sg)) {
        if (tp->state != TCPS_CLOSED)
            tern_tcp_output(s, tp);
        return;
    }
    /* Data after the user closed cannot be delivered: reset (RFC 9293
     * 3.10.4 and Linux's TCPAbortOnData). */
    if (sg->len && tp->so->life == SOCK_LIFE_PROTO_ONLY && !tp->listener &&
        (tp->state == TCPS_FIN_WAIT_1 || tp->state == TCPS_FIN_WAIT_2)) {
        tern_tcp_send_ctl(s, tp, TERN_TCP_RST | TERN_TCP_ACK, tp->snd_max);
        tern_tcp_drop(s, tp, 0);
        return;
    }
    /* Seventh: the text. */
    data_input(s, tp, sg);
    /* Eighth: the FIN, in order now or remembered for when it is. */
    if (sg->flags & TERN_TCP_FIN) {
        uint32_t fin_seq = sg->seq + sg->len;
        if (fin_seq == tp->rcv_nxt && tp->state != TCPS_CLOSE_WAIT && tp->state != TCPS_CLOSING &&
            tp->state != TCPS_LAST_ACK)
            fin_input(s, tp);
        else if (tern_seq_gt(fin_seq, tp->rcv_nxt)) {
            tp->rcv_fin_pending = true;
            tp->rcv_fin_seq = fin_seq;
            tp->ack_now = true; /* out of order: a duplicate ACK at once (RFC 5681 4.2) */
        } else {
            tp->ack_now = true;
        }
    }
    if (tp->rcv_fin_pending && tp->rcv_fin_seq == tp->rcv_nxt && !tp->fin_received) {
        tp->rcv_fin_pending = false;
        fin_input(s, tp);
    }
    tern_tcp_output(s, tp);
}

/* Would a listener take a new connection to laddr:lport? (Given no
 * peer, the lookup can only find a PCB without one.) */
static bool listener_for(struct tern_stack *s, uint32_t laddr, uint16_t lport)
{
    struct tern_inpcb *pcb = tern_pcb_lookup(s, &s->tcp_pcbs, laddr, lport, 0, 0);
    return pcb && pcb->listening;
}

/* ---- TIME_WAIT (RFC 9293 3.10.7.4), on the record alone ---- */

/* The per-stack budget of RFC 5961 section 7 for challenge ACKs. */
static bool challenge_ack_allowed(struct tern_stack *s)
{
    uint64_t second = s->now / TERN_NS_PER_SEC;
    if (second != s->chack_second) {
        s->chack_second = second;
        s->chack_sent = 0;
    }
    if (s->chack_sent >= TERN_TCP_CHALLENGE_ACKS_PER_SEC) {
        tern_count(s, TERN_C_DROP_TCP_CHALLENGE_ACK_LIMIT);
        return false;
    }
    s->chack_sent++;
    tern_count(s, TERN_C_TCP_CHALLENGE_ACK);
    return true;
}

/* Returns true when the record made way for a new incarnation of the
 * 4-tuple: the caller looks the segment up again (a listener takes it).
 * Otherwise RFC 9293 3.10.7.4's checks, in order, as TIME-WAIT has them. */
static bool timewait_input(struct tern_stack *s, struct tern_tcp_tw *tw, struct seg *sg)
{
    if (sg->flags & TERN_TCP_RST) {
        /* RFC 1337 (TIME-WAIT assassination): a reset must not cut the
         * wait short, whatever its sequence number. */
        tern_count(s, TERN_C_DROP_TCP_TIME_WAIT_RST);
        return false;
    }
    bool has_ts = tw->ts_ok && sg->opt->has_ts;
    if ((sg->flags & TERN_TCP_SYN) && !(sg->flags & TERN_TCP_ACK)) {
        /* A new connection may reuse the 4-tuple if it cannot be taken
         * for the old one: its sequence number is past the old sequence
         * space (RFC 9293 3.10.7.4 note, BSD's rule) or, with
         * timestamps, its timestamp is newer (RFC 6191); and only if a
         * listener will take it, or a blind SYN could end the wait (the
         * RFC 1337 hazard; Linux answers it from TIME_WAIT too). */
        if ((tern_seq_gt(sg->seq, tw->rcv_nxt) ||
             (has_ts && (int32_t)(sg->opt->ts_val - tw->ts_recent) > 0)) &&
            listener_for(s, sg->laddr, sg->lport)) {
            tern_count(s, TERN_C_TCP_TIME_WAIT_REUSED);
            sg->reopens = true;
            sg->old_snd_nxt = tw->snd_nxt;
            tern_tcp_tw_free(s, tw);
            return true;
        }
    }
    if (has_ts && (int32_t)(tw->ts_recent - sg->opt->ts_val) > 1) {
        /* RFC 7323 5.3, PAWS: an old duplicate; say where we are. */
        tern_count(s, TERN_C_DROP_TCP_PAWS);
        tern_tcp_tw_send_ack(s, tw);
        return false;
    }
    /* First: an unacceptable segment is answered with an ACK. The
     * peer's FIN again is one: acknowledge it and restart the 2 MSL
     * wait, which is what TIME-WAIT is for. */
    uint32_t len = seg_len(sg);
    bool acceptable =
        len == 0 ? tern_seq_between(sg->seq, tw->rcv_nxt, tw->rcv_nxt + tw->rcv_wnd + 1)
                 : tern_seq_between(sg->seq, tw->rcv_nxt, tw->rcv_nxt + tw->rcv_wnd) ||
                       tern_seq_between(sg->seq + len - 1, tw->rcv_nxt, tw->rcv_nxt + tw->rcv_wnd);
    if (!acceptable) {
        tern_count(s, TERN_C_DROP_TCP_OUT_OF_WINDOW);
        if (sg->flags & TERN_TCP_FIN)
            tern_tcp_tw_restart(s, tw);
        tern_tcp_tw_send_ack(s, tw);
        return false;
    }
    /* Fourth: a SYN in window (RFC 5961 4.2): a challenge ACK. */
    if (sg->flags & TERN_TCP_SYN) {
        if (challenge_ack_allowed(s))
            tern_tcp_tw_send_ack(s, tw);
        return false;
    }
    /* Fifth: the ACK field (RFC 9293, RFC 5961 5.2). */
    if (!(sg->flags & TERN_TCP_ACK))
        return false;
    if (tern_seq_gt(sg->ack, tw->snd_nxt)) {
        tern_count(s, TERN_C_DROP_TCP_BAD_ACK);
        tern_tcp_tw_send_ack(s, tw);
        return false;
    }
    if (tern_seq_lt(sg->ack, tw->snd_nxt - 65535u * (1u << tw->snd_wscale))) {
        if (challenge_ack_allowed(s))
            tern_tcp_tw_send_ack(s, tw);
        return false;
    }
    if (has_ts)
        tw->ts_recent = sg->opt->ts_val;
    /* Seventh: text after the peer's FIN is ignored. Eighth: a FIN
     * (in window, so not the one we had): acknowledge, restart 2MSL. */
    if (sg->flags & TERN_TCP_FIN) {
        tern_tcp_tw_restart(s, tw);
        tern_tcp_tw_send_ack(s, tw);
    }
    return false;
}

void tern_tcp_input_take(struct tern_stack *s, struct tern_pkt *p)
{
    struct tern_tcp_hdr h;
    tern_count(s, TERN_C_TCP_RX);
    uint32_t src = p->ip_src.s_addr, dst = p->ip_dst.s_addr;
    switch (tern_tcp_parse(tern_pkt_data(p), p->len, src, dst,
                           p->csum != TERN_PKT_CSUM_PENDING, &h)) {
    case TERN_TCP_OK:
        break;
    case TERN_TCP_TOO_SHORT:
    case TERN_TCP_BAD_HLEN:
        tern_drop_take(s, p, TERN_C_DROP_TCP_TOO_SHORT);
        return;
    case TERN_TCP_BAD_CHECKSUM:
        tern_drop_take(s, p, TERN_C_DROP_TCP_BAD_CHECKSUM);
        return;
    case TERN_TCP_BAD_OPTION:
        tern_drop_take(s, p, TERN_C_DROP_TCP_BAD_OPTION);
        return;
    }
    if (p->link_bcast) {
        /* RFC 1122 4.2.3.10: TCP has nothing to do with broadcasts. */
        tern_drop_take(s, p, TERN_C_DROP_TCP_BROADCAST);
        return;
    }
    struct seg sg = {.laddr = dst, .faddr = src, .lport = h.dport, .fport = h.sport,
                     .seq = h.seq, .ack = h.ack, .flags = h.flags, .wnd = h.wnd,
                     .data = tern_pkt_data(p) + h.hlen, .len = p->len - h.hlen, .opt = &h.opt,
                     .segs = 1};
    if (p->gso_size && sg.len > p->gso_size) {
        /* Coalesced by the link (GRO) or sent to ourselves as one: counted
         * as the segments it holds, as they crossed the wire. */
        sg.segs = (sg.len + p->gso_size - 1) / p->gso_size;
        tern_count_n(s, TERN_C_TCP_RX, sg.segs - 1);
    }
    struct tern_inpcb *pcb = tern_pcb_lookup(s, &s->tcp_pcbs, dst, h.dport, src, h.sport);
    if (pcb && pcb->kind == TERN_PCB_REQUEST) {
        request_input(s, tern_tcp_req_of(pcb), &sg);
        tern_pkt_free_take(s, p);
        return;
    }
    if (pcb && pcb->kind == TERN_PCB_TIMEWAIT) {
        if (!timewait_input(s, tern_tcp_tw_of(pcb), &sg)) {
            tern_pkt_free_take(s, p);
            return;
        }
        pcb = tern_pcb_lookup(s, &s->tcp_pcbs, dst, h.dport, src, h.sport);
    }
    if (!pcb) {
        tern_count(s, TERN_C_DROP_TCP_NO_SOCKET);
        tern_tcp_reset_for(s, dst, h.dport, src, h.sport, sg.seq, sg.ack, sg.flags, seg_len(&sg));
        tern_pkt_free_take(s, p);
        return;
    }
    struct tern_tcpcb *tp = tern_sock_of_pcb(pcb)->tcb;
    TERN_PROBE6(tcp_rx, s, tp->so->id, sg.seq, sg.ack, (uint32_t)sg.flags | (sg.wnd << 8), sg.len);
    tern_tcp_trace(s, tp, TERN_TCPE_RX, sg.seq, sg.ack, (uint16_t)sg.wnd, (uint16_t)sg.len,
                   sg.flags, 0);
    switch (tp->state) {
    case TCPS_LISTEN:
        listen_input(s, tp, &sg);
        break;
    case TCPS_SYN_SENT:
        syn_sent_input(s, tp, &sg);
        break;
    case TCPS_CLOSED:
        tern_tcp_reset_for(s, dst, h.dport, src, h.sport, sg.seq, sg.ack, sg.flags, seg_len(&sg));
        break;
    default:
        synced_input(s, tp, &sg);
        break;
    }
    if (tp->keepalive_on)
        tern_tcp_keepalive_arm(s, tp);
    s->dsack_sock_id = 0; /* reported by now, or not to be */
    tern_sock_touch(s, tp->so);
    tern_pkt_free_take(s, p);
}

/* RFC 1191 section 7: without the next hop's MTU, guess the plateau
 * below the datagram that did not fit. */
static uint16_t mtu_plateau_below(uint16_t len)
{
    static const uint16_t plateau[] = {32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68};
    for (size_t i = 0; i < sizeof(plateau) / sizeof(plateau[0]); i++)
        if (plateau[i] < len)
            return plateau[i];
    return 68;
}

/* Path MTU discovery (RFC 1191): the path is narrower than our segments.
 * Take the MSS down to fit and resend what is outstanding at the new size
 * at once; a smaller path is not congestion, so cwnd stays (as Linux's
 * tcp_simple_retransmit). No MTU below TERN_TCP_MIN_PMTU is believed
 * (RFC 5927 section 7.3 on forged MTUs). */
static void pmtu_reduce(struct tern_stack *s, struct tern_tcpcb *tp, const struct tern_tcp_icmp *e)
{
    uint32_t mtu = e->mtu ? e->mtu : mtu_plateau_below(e->quoted_len);
    if (mtu < TERN_TCP_MIN_PMTU)
        mtu = TERN_TCP_MIN_PMTU;
    if (mtu - 40 >= tp->mss) {
        tern_count(s, TERN_C_DROP_TCP_ICMP_MTU_IGNORED);
        return;
    }
    tp->mss = (uint16_t)(mtu - 40);
    tern_count(s, TERN_C_TCP_PMTU_REDUCED);
    tern_pmtu_learn(s, tp->so->pcb.faddr, mtu); /* for the next connection there too */
    if (tp->cwnd < tp->mss)
        tp->cwnd = tp->mss;
    if (tp->state == TCPS_SYN_SENT || tp->state == TCPS_SYN_RECEIVED)
        return; /* the SYN fitted; the smaller MSS applies from the first data */
    if (tp->snd_una != tp->snd_max) {
        tp->snd_nxt = tp->snd_una;
        tp->rtt_timing = false; /* Karn: what goes now is sent again */
        tern_tcp_output(s, tp);
    }
}

void tern_tcp_error(struct tern_stack *s, uint32_t laddr, uint16_t lport, uint32_t faddr,
                    uint16_t fport, const struct tern_tcp_icmp *e)
{
    struct tern_inpcb *pcb = tern_pcb_lookup_conn(s, &s->tcp_pcbs, laddr, lport, faddr, fport);
    if (pcb && pcb->kind == TERN_PCB_REQUEST && e->hard && !e->frag_needed) {
        /* The SYN,ACK cannot reach the peer: give the attempt up, if the
         * error quotes this request's SYN,ACK. */
        struct tern_tcp_req *req = tern_tcp_req_of(pcb);
        if (e->seq == req->p.iss)
            tern_tcp_req_free(s, req);
        return;
    }
    if (!pcb || pcb->kind != TERN_PCB_SOCKET)
        return;
    struct tern_tcpcb *tp = tern_sock_of_pcb(pcb)->tcb;
    /* RFC 5927 section 4.1: believe an error only if it quotes a
     * segment that is in flight, so a blind attacker must guess the
     * sequence space as well as the 4-tuple. */
    if (tern_seq_lt(e->seq, tp->snd_una) || tern_seq_gt(e->seq, tp->snd_max) ||
        (e->seq == tp->snd_max && tp->snd_max != tp->snd_una)) {
        tern_count(s, TERN_C_DROP_TCP_ICMP_OUT_OF_WINDOW);
        return;
    }
    if (e->frag_needed) {
        pmtu_reduce(s, tp, e);
        return;
    }
    /* RFC 1122 4.2.3.9: hard errors abort a connection being opened; on
     * an established one they are only noted (soft, as Linux's
     * sk_err_soft) and reported if the retransmission timer gives up. */
    if (e->hard && (tp->state == TCPS_SYN_SENT || tp->state == TCPS_SYN_RECEIVED))
        tern_tcp_drop(s, tp, e->err);
    else
        tp->soft_error = (uint8_t)e->err;
}
