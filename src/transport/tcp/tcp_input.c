/*
 * The segment arrival procedure (RFC 9293 section 3.10.7), in one place:
 * every state change caused by a segment happens in this file. Each step
 * names the RFC paragraph it follows; RFC 5961 hardens RST, SYN and ACK
 * handling against blind injection.
 */
#include <errno.h>
#include <string.h>

#include "core/stack.h"
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
    struct tern_tcp_opts opt;
};

static uint32_t seg_len(const struct seg *sg)
{
    return sg->len + !!(sg->flags & TERN_TCP_SYN) + !!(sg->flags & TERN_TCP_FIN);
}

static uint32_t isn(struct tern_stack *s, uint32_t laddr, uint16_t lport, uint32_t faddr,
                    uint16_t fport)
{
    /* RFC 6528: a 4 us clock plus a keyed hash of the connection. */
    uint32_t key[3] = {laddr, faddr, ((uint32_t)lport << 16) | fport};
    return (uint32_t)(s->now / 4000) + (uint32_t)tern_siphash(&s->key_isn, key, sizeof(key));
}

static uint8_t wscale_for(uint32_t rcvbuf)
{
    uint8_t ws = 0;
    while (ws < 14 && (rcvbuf >> ws) > 65535)
        ws++;
    return ws;
}

/* Options of a SYN (RFC 9293 3.7.1 MSS, RFC 7323 2.2 window scale). */
static void take_syn_options(struct tern_tcpcb *tp, const struct seg *sg)
{
    uint16_t peer_mss = sg->opt.has_mss ? sg->opt.mss : 536;
    if (peer_mss < 64)
        peer_mss = 64; /* a peer asking for less is not believed (Linux: 48+) */
    tp->mss = peer_mss < tp->our_mss ? peer_mss : tp->our_mss;
    tp->sack_ok = sg->opt.sack_permitted;
    tp->ts_ok = sg->opt.has_ts;
    if (tp->ts_ok) {
        tp->ts_recent = sg->opt.ts_val;
    }
    if (sg->opt.has_wscale) {
        tp->wscale_ok = true;
        tp->snd_wscale = sg->opt.wscale > 14 ? 14 : sg->opt.wscale; /* RFC 7323 2.3 */
    } else {
        tp->wscale_ok = false;
        tp->snd_wscale = 0;
        tp->rcv_wscale = 0;
    }
}

void tern_tcp_prepare(struct tern_stack *s, struct tern_tcpcb *tp)
{
    uint32_t mtu = tern_ipv4_mtu_to(s, tp->so->pcb.faddr);
    tp->our_mss = (uint16_t)((mtu ? mtu : 576) - 40);
    tp->rcv_wscale = wscale_for(tern_ring_limit(&tp->rcv));
    tp->iss = isn(s, tp->so->pcb.laddr, tp->so->pcb.lport, tp->so->pcb.faddr, tp->so->pcb.fport);
    tp->snd_una = tp->snd_nxt = tp->snd_max = tp->iss;
    tp->snd_buf_seq = tp->iss + 1;
    /* The TSval offset is secret but the same for every connection
     * between two addresses (as Linux's): a new connection on a 4-tuple
     * whose old one the peer keeps in TIME_WAIT must carry newer
     * timestamps, or the peer's PAWS refuses its SYN (RFC 6191); a
     * per-connection offset cost such a connect a reset and a
     * retransmitted SYN a second later. */
    uint32_t key[2] = {tp->so->pcb.laddr, tp->so->pcb.faddr};
    tp->ts_offset = (uint32_t)tern_siphash(&s->key_isn, key, sizeof(key));
    /* RFC 6928: an initial window of 10 segments, set once MSS is known. */
    tp->ssthresh = UINT32_MAX;
}

static void init_cwnd(struct tern_tcpcb *tp)
{
    tp->cwnd = 10u * tp->mss;
}

/* ---- LISTEN (RFC 9293 3.10.7.2) ---- */

static void listen_input(struct tern_stack *s, struct tern_tcpcb *ltp, const struct seg *sg)
{
    if (sg->flags & TERN_TCP_RST)
        return;
    if (sg->flags & TERN_TCP_ACK) {
        tern_tcp_reset_for(s, sg->laddr, sg->lport, sg->faddr, sg->fport, sg->seq, sg->ack,
                           sg->flags, seg_len(sg));
        return;
    }
    if (!(sg->flags & TERN_TCP_SYN))
        return;
    if (ltp->syn_q_len >= ltp->backlog || ltp->accept_q_len >= ltp->backlog) {
        /* Full: drop the SYN; the peer retries (SYN cookies come later). */
        tern_count(s, TERN_C_DROP_TCP_LISTEN_OVERFLOW);
        return;
    }
    struct tern_socket *lso = ltp->so;
    struct tern_socket *so = tern_sock_new_proto(s, SOCK_KIND_TCP, SOCK_STREAM, IPPROTO_TCP);
    if (!so) {
        tern_count(s, TERN_C_DROP_TCP_LISTEN_OVERFLOW);
        return;
    }
    so->rcvbuf = lso->rcvbuf;
    so->sndbuf = lso->sndbuf;
    so->ttl = lso->ttl;
    so->tos = lso->tos;
    if (tern_tcp_attach(s, so) != 0) {
        tern_sock_release_proto(s, so);
        return;
    }
    struct tern_tcpcb *tp = so->tcb;
    tp->nodelay = ltp->nodelay;
    struct tern_inpcb *pcb = &so->pcb;
    pcb->laddr = sg->laddr;
    pcb->lport = sg->lport;
    pcb->faddr = sg->faddr;
    pcb->fport = sg->fport;
    pcb->connected = true;
    pcb->reuseaddr = lso->pcb.reuseaddr;
    if (tern_pcb_insert(s, lso->pcb.table, pcb) < 0) {
        tern_tcp_detach(s, so);
        tern_sock_release_proto(s, so);
        return;
    }
    tern_tcp_prepare(s, tp);
    take_syn_options(tp, sg);
    tp->ts_recent_at = s->now;
    tp->irs = sg->seq;
    tp->rcv_nxt = sg->seq + 1;
    tp->rcv_adv = tp->rcv_nxt;
    tp->snd_wnd = sg->wnd; /* a SYN's window is never scaled */
    tp->snd_wl1 = sg->seq;
    tp->snd_wl2 = tp->iss;
    init_cwnd(tp);
    tp->listener = lso;
    tp->opened = true;
    tp->keepalive_on = ltp->keepalive_on; /* inherited, as on Linux */
    tp->keep_idle_s = ltp->keep_idle_s;
    tp->keep_intvl_s = ltp->keep_intvl_s;
    tp->keep_cnt = ltp->keep_cnt;
    tp->in_syn_q = true;
    tern_list_push_back(&ltp->syn_q, &tp->child_node);
    ltp->syn_q_len++;
    tern_tcp_set_state(s, tp, TCPS_SYN_RECEIVED);
    tern_tcp_output(s, tp); /* the SYN,ACK */
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
    take_syn_options(tp, sg);
    tp->ts_recent_at = s->now;
    init_cwnd(tp);
    tp->irs = sg->seq;
    tp->rcv_nxt = sg->seq + 1;
    tp->rcv_adv = tp->rcv_nxt;
    if (ack_ok) {
        tp->snd_una = sg->ack;
        tp->snd_wnd = sg->wnd; /* unscaled in a SYN */
        tp->snd_wl1 = sg->seq;
        tp->snd_wl2 = sg->ack;
        tern_timer_cancel(s, &tp->rexmt);
        tp->retransmits = 0;
        if (tp->rtt_timing)
            tp->rtt_timing = false;
        if (tp->total_retransmits == 0)
            tern_tcp_rtt_sample(s, tp, s->now - tp->rtt_start);
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
        return tern_seq_between(sg->seq, tp->rcv_nxt, tp->rcv_nxt + rcv_wnd);
    }
    if (rcv_wnd == 0)
        return false;
    return tern_seq_between(sg->seq, tp->rcv_nxt, tp->rcv_nxt + rcv_wnd) ||
           tern_seq_between(sg->seq + len - 1, tp->rcv_nxt, tp->rcv_nxt + rcv_wnd);
}

static void challenge_ack(struct tern_stack *s, struct tern_tcpcb *tp)
{
    /* RFC 5961 sections 3.2, 4.2, 5.2, rate limited per stack as its
     * section 7 asks (a 1000/s budget, like Linux's old default, renewed
     * each second). */
    uint64_t second = s->now / TERN_NS_PER_SEC;
    if (second != s->chack_second) {
        s->chack_second = second;
        s->chack_sent = 0;
    }
    if (s->chack_sent >= TERN_TCP_CHALLENGE_ACKS_PER_SEC) {
        tern_count(s, TERN_C_DROP_TCP_CHALLENGE_ACK_LIMIT);
        return;
    }
    s->chack_sent++;
    tern_count(s, TERN_C_TCP_CHALLENGE_ACK);
    tern_tcp_send_ctl(s, tp, TERN_TCP_ACK, tp->snd_nxt);
}

static void enter_time_wait(struct tern_stack *s, struct tern_tcpcb *tp)
{
    tern_tcp_set_state(s, tp, TCPS_TIME_WAIT);
    tern_timer_cancel(s, &tp->rexmt);
    tern_timer_cancel(s, &tp->persist);
    tp->orphan_timer = false;
    tern_timer_arm(s, &tp->twtimer, s->now + s->cfg.tcp_timewait_ns);
}

/* The child finished its handshake: from the SYN queue to the accept
 * queue, where accept (or poll) will find it. */
static void child_established(struct tern_stack *s, struct tern_tcpcb *tp)
{
    if (!tp->listener || !tp->in_syn_q)
        return;
    struct tern_tcpcb *ltp = tp->listener->tcb;
    tern_list_remove(&tp->child_node);
    ltp->syn_q_len--;
    tp->in_syn_q = false;
    tern_list_push_back(&ltp->accept_q, &tp->child_node);
    ltp->accept_q_len++;
}

static size_t rcv_sink(void *arg, const void *p, size_t n)
{
    return tern_ring_write(arg, p, n);
}

/* The segment's SACK blocks report data above snd_una (not a D-SACK). */
static bool sacks_above(const struct tern_tcpcb *tp, const struct seg *sg)
{
    if (!tp->sack_ok)
        return false;
    for (uint8_t i = 0; i < sg->opt.nsack; i++)
        if (tern_seq_gt(sg->opt.sack[i].end, tp->snd_una))
            return true;
    return false;
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
        child_established(s, tp);
        if (tp->fin_queued)
            tern_tcp_set_state(s, tp, TCPS_FIN_WAIT_1); /* the user shut down meanwhile */
    }
    if (tern_seq_gt(sg->ack, tp->snd_max)) {
        /* Acks what we never sent: ACK and drop. */
        tern_count(s, TERN_C_DROP_TCP_BAD_ACK);
        tp->ack_now = true;
        return false;
    }
    if (tern_seq_lt(sg->ack, tp->snd_una - 65535u * (1u << tp->snd_wscale))) {
        /* RFC 5961 5.2: too old to be real. */
        challenge_ack(s, tp);
        return false;
    }
    uint32_t wnd = sg->wnd << tp->snd_wscale;
    if (tern_seq_gt(sg->ack, tp->snd_una)) {
        uint32_t acked = sg->ack - tp->snd_una;
        /* Data leaves the send ring; the SYN and FIN have no bytes there. */
        uint32_t data_end = tern_tcp_fin_seq(tp);
        uint32_t upto = tern_seq_lt(sg->ack, data_end) ? sg->ack : data_end;
        if (tern_seq_gt(upto, tp->snd_buf_seq)) {
            tern_ring_discard(&tp->snd, upto - tp->snd_buf_seq);
            tp->snd_buf_seq = upto;
            tern_ring_shrink_idle(&tp->snd); /* all acked: give the block back */
        }
        if (tp->rtt_timing && tern_seq_gt(sg->ack, tp->rtt_seq)) {
            tp->rtt_timing = false;
            tern_tcp_rtt_sample(s, tp, s->now - tp->rtt_start);
        }
        tp->snd_una = sg->ack;
        tp->unacked_since = s->now; /* progress: what is left is younger */
        if (tern_seq_lt(tp->snd_nxt, tp->snd_una))
            tp->snd_nxt = tp->snd_una;
        tp->retransmits = 0;
        tp->backoff = 0;
        /* RFC 5681 3.1 and RFC 6582: grow the window, or leave recovery. */
        if (tp->in_recovery) {
            if (tern_seq_ge(sg->ack, tp->recover)) {
                tp->in_recovery = false;
                tp->cwnd = tp->ssthresh;
            } else {
                /* Partial ACK: retransmit the next hole at once. */
                tp->cwnd = tp->cwnd > acked ? tp->cwnd - acked + tp->mss : tp->mss;
                uint32_t keep = tp->snd_nxt;
                tp->snd_nxt = tp->snd_una;
                uint32_t cw = tp->cwnd;
                tp->cwnd = tp->mss;
                tern_tcp_output(s, tp);
                tp->cwnd = cw;
                tp->snd_nxt = tern_seq_max(keep, tp->snd_nxt);
            }
        } else if (tp->cwnd < tp->ssthresh) {
            tp->cwnd += acked < tp->mss ? acked : tp->mss; /* slow start (RFC 3465 L=1) */
        } else {
            uint32_t inc = (uint32_t)((uint64_t)tp->mss * tp->mss / (tp->cwnd ? tp->cwnd : 1));
            tp->cwnd += inc ? inc : 1; /* congestion avoidance */
        }
        tp->dupacks = 0;
        if (tp->snd_una == tp->snd_max)
            tern_timer_cancel(s, &tp->rexmt);
        else
            tern_tcp_rexmt_arm(s, tp);
    } else if (sg->ack == tp->snd_una && sg->len == 0 && !(sg->flags & (TERN_TCP_SYN | TERN_TCP_FIN)) &&
               (wnd == tp->snd_wnd || sacks_above(tp, sg)) && tp->snd_max != tp->snd_una) {
        /* A duplicate ACK (RFC 5681 2). The third starts fast
         * retransmit and NewReno recovery (RFC 6582 3.2). One that
         * reports data past snd_una in a SACK block counts even if the
         * window moved (RFC 6675 2, as FreeBSD): a receiver holding data
         * past a hole (Linux growing its buffer, Tern shrinking its
         * window by what it holds) moves its window in the very ACKs
         * that report the hole, and the strict rule turned every loss
         * into a timeout. A pure window update still does not count. */
        tp->dupacks++;
        tern_count(s, TERN_C_TCP_RX_DUPACK);
        if (tp->dupacks == 3 && !tp->in_recovery) {
            uint32_t flight = tp->snd_max - tp->snd_una;
            tp->ssthresh = flight / 2 > 2u * tp->mss ? flight / 2 : 2u * tp->mss;
            tp->recover = tp->snd_max;
            tp->in_recovery = true;
            uint32_t keep = tp->snd_nxt;
            tp->snd_nxt = tp->snd_una;
            tp->cwnd = tp->mss;
            tern_count(s, TERN_C_TCP_FAST_RETRANSMIT);
            tern_tcp_output(s, tp);
            tp->snd_nxt = tern_seq_max(keep, tp->snd_nxt);
            tp->cwnd = tp->ssthresh + 3u * tp->mss;
        } else if (tp->in_recovery) {
            tp->cwnd += tp->mss; /* each dupack: a segment left the network */
        }
    }
    /* Window update (RFC 9293 3.10.7.4, SND.WL1/WL2 rule). */
    if (tern_seq_lt(tp->snd_wl1, sg->seq) ||
        (tp->snd_wl1 == sg->seq && tern_seq_le(tp->snd_wl2, sg->ack))) {
        tp->snd_wnd = wnd;
        tp->snd_wl1 = sg->seq;
        tp->snd_wl2 = sg->ack;
        if (wnd > 0)
            tern_timer_cancel(s, &tp->persist);
    }
    bool fin_acked = tp->fin_queued && tern_seq_gt(tp->snd_una, tern_tcp_fin_seq(tp));
    switch (tp->state) {
    case TCPS_FIN_WAIT_1:
        if (fin_acked) {
            tern_tcp_set_state(s, tp, TCPS_FIN_WAIT_2);
            if (tp->so->life == SOCK_LIFE_PROTO_ONLY) {
                /* Orphaned: do not wait forever for the peer's FIN
                 * (Linux's tcp_fin_timeout, 60 s). */
                tp->orphan_timer = true;
                tern_timer_arm(s, &tp->twtimer, s->now + TERN_TCP_FIN_TIMEOUT_NS);
            }
        }
        break;
    case TCPS_CLOSING:
        if (fin_acked)
            enter_time_wait(s, tp);
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
        uint32_t nomem = tp->rcv.nomem;
        uint32_t took = tern_ring_write(&tp->rcv, sg->data, sg->len);
        tp->rcv_nxt += took;
        if (took < sg->len)
            tern_count(s, tp->rcv.nomem != nomem ? TERN_C_DROP_TCP_NOMEM
                                                 : TERN_C_DROP_TCP_RCVBUF_FULL);
        if (!tern_tcp_reass_empty(&tp->ooo)) {
            tp->rcv_nxt += (uint32_t)tern_tcp_reass_take_in_order(&tp->ooo, tp->rcv_nxt, rcv_sink,
                                                                 &tp->rcv);
            tp->ack_now = true; /* RFC 5681 4.2: filling a hole is acked at once */
        }
        /* RFC 1122 4.2.3.2 / RFC 5681 4.2: ack every second full segment,
         * else within the delayed-ACK time. */
        if (++tp->segs_unacked >= 2)
            tp->ack_now = true;
        else
            tern_tcp_delack_arm(s, tp);
    } else {
        /* Out of order: hold it, and send a duplicate ACK at once
         * (RFC 5681 4.2). */
        enum tern_tcp_reass_result r =
            tern_tcp_reass_insert(&tp->ooo, tp->rcv_nxt, sg->seq, sg->data, sg->len);
        if (r == TERN_TCP_REASS_NO_MEMORY || r == TERN_TCP_REASS_TOO_MANY_BLOCKS)
            tern_count(s, TERN_C_DROP_TCP_OOO_FULL);
        else
            tern_count(s, TERN_C_TCP_RX_OUT_OF_ORDER);
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
            enter_time_wait(s, tp);
        else
            tern_tcp_set_state(s, tp, TCPS_CLOSING);
        break;
    case TCPS_FIN_WAIT_2:
        tern_timer_cancel(s, &tp->twtimer);
        enter_time_wait(s, tp);
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
     * marks an old duplicate (unless the last is over 24 days old). */
    if (tp->ts_ok && sg->opt.has_ts && !(sg->flags & TERN_TCP_RST) &&
        (int32_t)(sg->opt.ts_val - tp->ts_recent) < 0 &&
        s->now - tp->ts_recent_at < 24ull * 86400 * TERN_NS_PER_SEC) {
        tern_count(s, TERN_C_DROP_TCP_PAWS);
        tern_tcp_send_ctl(s, tp, TERN_TCP_ACK, tp->snd_nxt);
        return;
    }
    /* RFC 7323 4.3: take the peer's TSval from a segment covering the
     * left edge of the window. */
    if (tp->ts_ok && sg->opt.has_ts && tern_seq_le(sg->seq, tp->rcv_nxt) &&
        tern_seq_le(tp->rcv_nxt, sg->seq + seg_len(sg))) {
        tp->ts_recent = sg->opt.ts_val;
        tp->ts_recent_at = s->now;
    }
    if (tp->state == TCPS_SYN_RECEIVED && (sg->flags & TERN_TCP_SYN) &&
        !(sg->flags & (TERN_TCP_ACK | TERN_TCP_RST)) && sg->seq == tp->irs) {
        /* The peer did not hear our SYN,ACK: say it again now, as Linux
         * does, rather than at our retransmission timeout. */
        tp->snd_nxt = tp->iss;
        tern_tcp_output(s, tp);
        return;
    }
    /* First: is the sequence number acceptable? */
    if (!seq_acceptable(tp, sg, rcv_wnd)) {
        tern_count(s, TERN_C_DROP_TCP_OUT_OF_WINDOW);
        if (!(sg->flags & TERN_TCP_RST)) {
            /* RFC 9293: an unacceptable segment is answered with an ACK. */
            if (tp->state == TCPS_TIME_WAIT && (sg->flags & TERN_TCP_FIN))
                tern_timer_arm(s, &tp->twtimer, s->now + s->cfg.tcp_timewait_ns);
            tern_tcp_send_ctl(s, tp, TERN_TCP_ACK, tp->snd_nxt);
        }
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
        if (tp->state == TCPS_TIME_WAIT) {
            /* RFC 1337: a RST must not cut TIME_WAIT short. */
            tern_count(s, TERN_C_DROP_TCP_TIME_WAIT_RST);
            return;
        }
        if (sg->seq != tp->rcv_nxt) {
            challenge_ack(s, tp);
            return;
        }
        tern_count(s, TERN_C_TCP_RX_RST);
        switch (tp->state) {
        case TCPS_SYN_RECEIVED:
            /* A passive open goes away quietly (the listener stays). */
            tern_tcp_drop(s, tp, tp->listener ? 0 : ECONNREFUSED);
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
        tern_tcp_send_ctl(s, tp, TERN_TCP_RST | TERN_TCP_ACK, tp->snd_nxt);
        tern_tcp_drop(s, tp, 0);
        return;
    }
    /* Seventh: the text. */
    data_input(s, tp, sg);
    /* Eighth: the FIN, in order now or remembered for when it is. */
    if (sg->flags & TERN_TCP_FIN) {
        uint32_t fin_seq = sg->seq + sg->len;
        if (fin_seq == tp->rcv_nxt && tp->state != TCPS_CLOSE_WAIT && tp->state != TCPS_CLOSING &&
            tp->state != TCPS_LAST_ACK && tp->state != TCPS_TIME_WAIT)
            fin_input(s, tp);
        else if (tp->state == TCPS_TIME_WAIT) {
            tp->ack_now = true; /* a retransmitted FIN: ack it, restart 2MSL */
            tern_timer_arm(s, &tp->twtimer, s->now + s->cfg.tcp_timewait_ns);
        } else if (tern_seq_gt(fin_seq, tp->rcv_nxt)) {
            tp->rcv_fin_pending = true;
            tp->rcv_fin_seq = fin_seq;
        } else {
            tp->ack_now = true;
        }
    }
    if (tp->rcv_fin_pending && tp->rcv_fin_seq == tp->rcv_nxt && !tp->fin_received) {
        tp->rcv_fin_pending = false;
        fin_input(s, tp);
    }
    if (tp->state == TCPS_TIME_WAIT && tp->ack_now) {
        tern_tcp_send_ctl(s, tp, TERN_TCP_ACK, tp->snd_nxt);
        return;
    }
    tern_tcp_output(s, tp);
}

void tern_tcp_input_take(struct tern_stack *s, struct tern_pkt *p)
{
    struct tern_tcp_hdr h;
    tern_count(s, TERN_C_TCP_RX);
    uint32_t src = p->ip_src.s_addr, dst = p->ip_dst.s_addr;
    switch (tern_tcp_parse(tern_pkt_data(p), p->len, src, dst, &h)) {
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
                     .data = tern_pkt_data(p) + h.hlen, .len = p->len - h.hlen, .opt = h.opt};
    struct tern_inpcb *pcb = tern_pcb_lookup(s, &s->tcp_pcbs, dst, h.dport, src, h.sport);
    if (!pcb) {
        tern_count(s, TERN_C_DROP_TCP_NO_SOCKET);
        tern_tcp_reset_for(s, dst, h.dport, src, h.sport, sg.seq, sg.ack, sg.flags, seg_len(&sg));
        tern_pkt_free_take(s, p);
        return;
    }
    struct tern_tcpcb *tp = tern_sock_of_pcb(pcb)->tcb;
    if (tp->state == TCPS_TIME_WAIT && (sg.flags & TERN_TCP_SYN) &&
        !(sg.flags & (TERN_TCP_ACK | TERN_TCP_RST)) && tern_seq_gt(sg.seq, tp->rcv_nxt)) {
        /* A new incarnation of the same 4-tuple, beyond the old one's
         * sequence space (RFC 9293 3.10.7.4 note, as Linux and BSD): end
         * TIME_WAIT and let a listener take the SYN. */
        tern_count(s, TERN_C_TCP_TIME_WAIT_REUSED);
        tern_tcp_drop(s, tp, 0);
        pcb = tern_pcb_lookup(s, &s->tcp_pcbs, dst, h.dport, src, h.sport);
        if (!pcb) {
            tern_count(s, TERN_C_DROP_TCP_NO_SOCKET);
            tern_tcp_reset_for(s, dst, h.dport, src, h.sport, sg.seq, sg.ack, sg.flags,
                               seg_len(&sg));
            tern_pkt_free_take(s, p);
            return;
        }
        tp = tern_sock_of_pcb(pcb)->tcb;
    }
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
    tern_pkt_free_take(s, p);
}

void tern_tcp_error(struct tern_stack *s, uint32_t laddr, uint16_t lport, uint32_t faddr,
                    uint16_t fport, int err, bool hard)
{
    struct tern_inpcb *pcb = tern_pcb_lookup_conn(s, &s->tcp_pcbs, laddr, lport, faddr, fport);
    if (!pcb || pcb->kind != TERN_PCB_SOCKET)
        return;
    struct tern_tcpcb *tp = tern_sock_of_pcb(pcb)->tcb;
    /* RFC 1122 4.2.3.9: hard errors abort a connection being opened; on
     * an established one they are only reported (soft, as Linux's
     * sk_err_soft) and the retransmission timer decides. */
    if (hard && (tp->state == TCPS_SYN_SENT || tp->state == TCPS_SYN_RECEIVED))
        tern_tcp_drop(s, tp, err);
}
