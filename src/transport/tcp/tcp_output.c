/* Building and sending segments: what the windows, Nagle and the state
 * allow (RFC 9293 3.8.6, RFC 896, RFC 5681). */
#include <errno.h>
#include <string.h>

#include "core/stack.h"
#include "obs/probe.h"
#include "net/ipv4.h"
#include "transport/tcp/tcp.h"
#include "wire/ipv4.h"

static uint16_t window_field(struct tern_tcpcb *tp, bool syn)
{
    uint32_t w = tern_tcp_rcv_window(tp);
    /* RFC 7323 2.2: the window of a SYN is never scaled. */
    if (!syn)
        w >>= tp->rcv_wscale;
    return w > 65535 ? 65535 : (uint16_t)w;
}

/* Send one segment: header, options for a SYN, `len` bytes of the send
 * ring from offset `off`. */
static void send_segment(struct tern_stack *s, struct tern_tcpcb *tp, uint32_t seq, uint8_t flags,
                         uint32_t off, uint32_t len)
{
    struct tern_socket *so = tp->so;
    struct tern_tcp_hdr h = {.sport = so->pcb.lport, .dport = so->pcb.fport, .seq = seq,
                             .flags = flags};
    bool syn = flags & TERN_TCP_SYN;
    if (syn) {
        h.opt.has_mss = true;
        h.opt.mss = tp->our_mss;
        /* Offer window scaling on an active SYN; answer it only if the
         * peer offered (RFC 7323 2.2). */
        if (tp->state == TCPS_SYN_SENT || tp->wscale_ok) {
            h.opt.has_wscale = true;
            h.opt.wscale = tp->rcv_wscale;
        }
        /* SACK-permitted and timestamps likewise (RFC 2018 2, 7323 3.2). */
        h.opt.sack_permitted = tp->state == TCPS_SYN_SENT ? s->cfg.tcp_sack : tp->sack_ok;
        h.opt.has_ts = tp->state == TCPS_SYN_SENT ? s->cfg.tcp_timestamps : tp->ts_ok;
    } else {
        h.opt.has_ts = tp->ts_ok;
    }
    if (h.opt.has_ts && !(flags & TERN_TCP_RST)) {
        h.opt.ts_val = tern_tcp_ts_now(tp, s->now);
        h.opt.ts_ecr = (flags & TERN_TCP_ACK) ? tp->ts_recent : 0;
    } else {
        h.opt.has_ts = false; /* RFC 7323 allows it on RST, Linux omits it */
    }
    bool dsack = !syn && (flags & TERN_TCP_ACK) && s->dsack_sock_id == so->id;
    if (!syn && tp->sack_ok && (flags & TERN_TCP_ACK) && (dsack || !tern_tcp_ooo_empty(tp))) {
        /* Tell the sender what arrived beyond the hole (RFC 2018 4), in
         * the room the segment leaves under the MTU and in the 40 bytes
         * of option space: a full data segment has none, a pure ACK room
         * for four blocks (three beside a timestamp). */
        uint32_t seg = tern_tcp_seg_size(tp);
        uint32_t room = seg > len ? seg - len : 0;
        /* ... and in the 40 bytes of option space the header has left
         * (RFC 9293 3.1: data offset counts 32-bit words up to 15). */
        uint32_t opt_room = TERN_TCP_MAX_OPTLEN - (uint32_t)tern_tcp_opts_len(&h.opt);
        if (room > opt_room)
            room = opt_room;
        size_t max = room >= 12 ? (room - 4) / 8 : 0;
        if (max > TERN_TCP_MAX_SACK)
            max = TERN_TCP_MAX_SACK;
        size_t first = 0;
        if (dsack && max > 0) {
            /* RFC 2883 section 4: the duplicate first, reported once. */
            h.opt.sack[first++] = (struct tern_tcp_sack_block){s->dsack_start, s->dsack_end};
            s->dsack_sock_id = 0;
            tern_count(s, TERN_C_TCP_TX_DSACK);
        }
        if (!tern_tcp_ooo_empty(tp))
            first += tern_tcp_reass_sack_blocks(tp->ooo, tp->rcv_nxt, h.opt.sack + first,
                                                max - first);
        h.opt.nsack = (uint8_t)first;
        if (h.opt.nsack)
            tern_count(s, TERN_C_TCP_TX_SACK);
    }
    if (flags & TERN_TCP_ACK)
        h.ack = tp->rcv_nxt;
    h.wnd = window_field(tp, syn);
    size_t optlen = tern_tcp_opts_len(&h.opt);
    h.hlen = (uint8_t)(TERN_TCP_HLEN + optlen);
    struct tern_pkt *p = tern_pkt_alloc(s, TERN_PKT_HEADROOM, h.hlen + (size_t)len);
    if (!p)
        return; /* counted by the pool; the retransmission timer recovers */
    if (len)
        tern_ring_peek_at(&tp->snd, off, tern_pkt_data(p) + h.hlen, len);
    tern_tcp_emit_nocsum(tern_pkt_data(p), &h);
    p->csum = TERN_PKT_CSUM_PENDING;
    uint32_t segs = 1;
    uint32_t seg_size = tern_tcp_seg_size(tp);
    if (len > seg_size) {
        p->gso_size = (uint16_t)seg_size; /* see burst_len() */
        segs = (len + seg_size - 1) / seg_size;
    }
    if (flags & TERN_TCP_ACK) {
        uint32_t edge = tp->rcv_nxt + ((uint32_t)h.wnd << (syn ? 0 : tp->rcv_wscale));
        if (tern_seq_gt(edge, tp->rcv_adv))
            tp->rcv_adv = edge;
        tp->ack_now = false;
        tp->segs_unacked = 0;
        tern_tcp_timer_stop(tp, TERN_TCPT_DELACK);
    }
    tern_count_n(s, TERN_C_TCP_TX, segs); /* segments, as on the wire */
    if (flags & TERN_TCP_RST)
        tern_count(s, TERN_C_TCP_TX_RST);
    /* Six arguments (what bpftrace reads): flags and window share one. */
    TERN_PROBE6(tcp_tx, s, so->id, seq, h.ack, (uint32_t)flags | ((uint32_t)h.wnd << 8), len);
    tern_tcp_trace(s, tp, TERN_TCPE_TX, seq, h.ack, h.wnd, (uint16_t)len, flags, 0);
    /* DF on: Tern sizes segments from the interface MTU (path MTU
     * discovery proper, RFC 1191, comes with ICMP handling for TCP). */
    struct tern_ipv4_out o = {.src = so->pcb.laddr, .dst = so->pcb.faddr,
                              .proto = TERN_IPPROTO_TCP, .ttl = so->ttl, .tos = so->tos,
                              .df = true};
    tern_ipv4_output_take(s, p, &o);
}

void tern_tcp_send_ctl(struct tern_stack *s, struct tern_tcpcb *tp, uint8_t flags, uint32_t seq)
{
    send_segment(s, tp, seq, flags, 0, 0);
}

void tern_tcp_emit_ctl(struct tern_stack *s, uint32_t laddr, uint32_t faddr,
                       struct tern_tcp_hdr *h, uint8_t ttl, uint8_t tos)
{
    h->hlen = (uint8_t)(TERN_TCP_HLEN + tern_tcp_opts_len(&h->opt));
    struct tern_pkt *p = tern_pkt_alloc(s, TERN_PKT_HEADROOM, h->hlen);
    if (!p)
        return; /* counted by the pool; the peer will retransmit */
    tern_tcp_emit_nocsum(tern_pkt_data(p), h);
    p->csum = TERN_PKT_CSUM_PENDING;
    tern_count(s, TERN_C_TCP_TX);
    if (h->flags & TERN_TCP_RST)
        tern_count(s, TERN_C_TCP_TX_RST);
    struct tern_ipv4_out o = {.src = laddr, .dst = faddr, .proto = TERN_IPPROTO_TCP,
                              .ttl = ttl, .tos = tos, .df = true};
    tern_ipv4_output_take(s, p, &o);
}

void tern_tcp_reset_for(struct tern_stack *s, uint32_t laddr, uint16_t lport, uint32_t faddr,
                        uint16_t fport, uint32_t seg_seq, uint32_t seg_ack, uint8_t seg_flags,
                        uint32_t seg_len)
{
    /* RFC 9293 3.10.7.1: never answer a RST; if the segment had an ACK
     * the reset takes its sequence number from it, else it acks it. */
    if (seg_flags & TERN_TCP_RST)
        return;
    struct tern_tcp_hdr h = {.sport = lport, .dport = fport};
    if (seg_flags & TERN_TCP_ACK) {
        h.seq = seg_ack;
        h.flags = TERN_TCP_RST;
    } else {
        h.ack = seg_seq + seg_len;
        h.flags = TERN_TCP_RST | TERN_TCP_ACK;
    }
    tern_tcp_emit_ctl(s, laddr, faddr, &h, s->cfg.ip_default_ttl, 0);
}

static bool fin_state(enum tern_tcp_state st)
{
    return st == TCPS_FIN_WAIT_1 || st == TCPS_CLOSING || st == TCPS_LAST_ACK;
}

bool tern_tcp_fin_unsent(const struct tern_tcpcb *tp)
{
    return tp->fin_queued && fin_state(tp->state) && tp->snd_max == tern_tcp_fin_seq(tp);
}

uint32_t tern_tcp_send_data(struct tern_stack *s, struct tern_tcpcb *tp, uint32_t seq,
                            uint32_t len)
{
    uint32_t data_end = tern_tcp_fin_seq(tp);
    bool fin = tp->fin_queued && fin_state(tp->state) && seq + len == data_end;
    /* A resend of the last data (a probe, a recovery) takes the FIN along
     * only if it went already or has room in the window. */
    if (fin && tern_tcp_fin_unsent(tp) && !tern_seq_lt(seq + len, tp->snd_una + tp->snd_wnd))
        fin = false;
    uint8_t flags = TERN_TCP_ACK;
    if (len && seq + len == data_end)
        flags |= TERN_TCP_PSH;
    if (fin)
        flags |= TERN_TCP_FIN;
    bool retransmission = tern_seq_lt(seq, tp->snd_max);
    if (retransmission) {
        tern_count(s, TERN_C_TCP_RETRANSMIT);
        uint16_t why = tp->sack_recovery ? 2 : tp->in_recovery ? 1 : tp->tlp_out ? 3 : 0;
        TERN_PROBE5(tcp_retransmit, s, tp->so->id, seq, len, why);
        tern_tcp_trace(s, tp, TERN_TCPE_RETRANSMIT, seq, tp->snd_una, 0, (uint16_t)len, 0, why);
        tp->rtt_timing = false; /* Karn: a retransmission voids the sample */
    } else if (!tp->rtt_timing && len) {
        tp->rtt_timing = true;
        tp->rtt_seq = seq;
        tp->rtt_start_us = (uint32_t)(s->now / 1000);
    }
    if (tp->snd_una == tp->snd_max)
        tp->unacked_since_ms = (uint32_t)(s->now / TERN_NS_PER_MS);
    send_segment(s, tp, seq, flags, seq - tp->snd_buf_seq, len);
    uint32_t used = len + (fin ? 1 : 0);
    tp->snd_max = tern_seq_max(tp->snd_max, seq + used);
    tern_tcp_rexmt_after_send(s, tp, !retransmission);
    return used;
}

/* RFC 6675 section 5, step (C): while cwnd - pipe >= 1 SMSS, send what
 * NextSeg picks: a lost hole (rule 1), new data (rule 2), any other hole
 * (rule 3). The rescue retransmission of rule 4 is left out (a MAY); the
 * retransmission timer covers that case. */
static void sack_output(struct tern_stack *s, struct tern_tcpcb *tp)
{
    uint32_t smss = tern_tcp_seg_size(tp);
    /* Each pass sends at least a byte or stops; the bound only guards
     * against a bug turning into a hang. */
    for (unsigned guard = 0; guard < 65536; guard++) {
        uint32_t pipe = tern_tcp_sack_pipe(&tp->sackb, tp->snd_una, tp->snd_max, tp->high_rxt,
                                           smss, tern_tcp_dupthresh(tp));
        if (pipe >= tp->cwnd || tp->cwnd - pipe < smss)
            return;
        uint32_t seq, len;
        if (tern_tcp_sack_next_hole(&tp->sackb, tp->snd_una, tp->high_rxt, smss,
                                    tern_tcp_dupthresh(tp), true, &seq, &len)) {
            tern_tcp_sack_rxt_note(&tp->sackb, seq, seq + len, tp->snd_max);
            tern_tcp_send_data(s, tp, seq, len);
            tp->high_rxt = seq + len;
            tp->rxt_unproven = false; /* more than one resent (tcp_input.c dsack_input) */
            continue;
        }
        uint32_t data_end = tern_tcp_fin_seq(tp);
        uint32_t avail = tern_seq_lt(tp->snd_nxt, data_end) ? data_end - tp->snd_nxt : 0;
        uint32_t right = tp->snd_una + tp->snd_wnd;
        uint32_t usable = tern_seq_gt(right, tp->snd_nxt) ? right - tp->snd_nxt : 0;
        len = avail < usable ? avail : usable;
        if (len > smss)
            len = smss;
        /* A bare FIN needs room for its sequence number, as data does. */
        bool fin_due = tern_tcp_fin_unsent(tp) && tp->snd_nxt == data_end && usable > 0;
        if (len > 0 || fin_due) {
            tp->snd_nxt += tern_tcp_send_data(s, tp, tp->snd_nxt, len);
            continue;
        }
        if (tern_tcp_sack_next_hole(&tp->sackb, tp->snd_una, tp->high_rxt, smss,
                                    tern_tcp_dupthresh(tp), false, &seq, &len)) {
            tern_tcp_sack_rxt_note(&tp->sackb, seq, seq + len, tp->snd_max);
            tern_tcp_send_data(s, tp, seq, len);
            tp->high_rxt = seq + len;
            tp->rxt_unproven = false; /* more than one resent (tcp_input.c dsack_input) */
            continue;
        }
        return;
    }
}

/* How much of `len` (more than one segment's worth) goes in one packet:
 * one segment, or where the route takes super-segments (TSO) as many
 * whole segments as an IPv4 datagram holds. Only whole segments are
 * joined, so what goes out is what the segment-at-a-time loop would send
 * (a short tail still meets Nagle on its own). */
static uint32_t burst_len(struct tern_stack *s, struct tern_tcpcb *tp, uint32_t len,
                          uint32_t seg_size, int *tso)
{
    if (*tso < 0)
        *tso = tern_ipv4_tso_to(s, tp->so->pcb.faddr); /* once per output call */
    if (!*tso)
        return seg_size;
    uint32_t hdrs = TERN_IPV4_HLEN + TERN_TCP_HLEN + (tp->ts_ok ? 12u : 0u);
    uint32_t max = ((65535u - hdrs) / seg_size) * seg_size;
    if (len > max)
        len = max;
    return len - len % seg_size;
}

void tern_tcp_output(struct tern_stack *s, struct tern_tcpcb *tp)
{
    if (tp->state == TCPS_CLOSED || tp->state == TCPS_LISTEN)
        return;
    if (tp->state == TCPS_SYN_SENT || tp->state == TCPS_SYN_RECEIVED || tp->snd_una == tp->iss) {
        if (tp->snd_nxt == tp->iss) {
            uint8_t flags = TERN_TCP_SYN | (tp->state == TCPS_SYN_RECEIVED ? TERN_TCP_ACK : 0);
            if (tern_seq_lt(tp->iss, tp->snd_max))
                tern_count(s, TERN_C_TCP_RETRANSMIT);
            send_segment(s, tp, tp->iss, flags, 0, 0);
            tp->snd_nxt = tp->iss + 1;
            tp->snd_max = tern_seq_max(tp->snd_max, tp->snd_nxt);
            if (!tern_tcp_timer_on(tp, TERN_TCPT_REXMT))
                tern_tcp_rexmt_arm(s, tp);
        } else if (tp->ack_now && tp->state == TCPS_SYN_RECEIVED) {
            send_segment(s, tp, tp->snd_nxt, TERN_TCP_ACK, 0, 0);
        }
        return;
    }
    if (tp->sack_recovery) {
        sack_output(s, tp);
    } else {
        /* RFC 3042 limited transmit: each of the first two duplicate ACKs
         * lets one new segment out beyond cwnd; with DupThresh raised by
         * reordering, each duplicate ACK before it (RFC 4653's extended
         * limited transmit, in its simple form: the ACK clock keeps
         * going while the sender waits to tell loss from reordering). */
        uint32_t cwnd = tp->cwnd;
        int tso = -1; /* not asked yet */
        if (!tp->in_recovery && tp->dupacks > 0 && tp->dupacks < tern_tcp_dupthresh(tp))
            cwnd += tp->dupacks * tp->mss;
        for (;;) {
            uint32_t data_end = tern_tcp_fin_seq(tp);
            uint32_t avail = tern_seq_lt(tp->snd_nxt, data_end) ? data_end - tp->snd_nxt : 0;
            uint32_t wnd = tp->snd_wnd < cwnd ? tp->snd_wnd : cwnd;
            uint32_t inflight = tp->snd_nxt - tp->snd_una;
            uint32_t usable = wnd > inflight ? wnd - inflight : 0;
            uint32_t len = avail < usable ? avail : usable;
            uint32_t seg_size = tern_tcp_seg_size(tp);
            if (len > seg_size)
                len = burst_len(s, tp, len, seg_size, &tso);
            bool fin = tp->fin_queued && fin_state(tp->state) && tp->snd_nxt + len == data_end &&
                       tern_seq_le(tp->snd_nxt, data_end);
            /* A bare FIN never sent, beyond the window, would be refused
             * (RFC 9293 3.10.7.4 counts it in SEG.LEN): it waits for
             * room, as Linux's does, and the persist timer below asks
             * for it. One already sent goes again from SND.UNA after a
             * timeout like any data, so the timer keeps it alive. */
            if (fin && len == 0 && usable == 0 && tern_tcp_fin_unsent(tp))
                fin = false;
            bool idle = tp->snd_nxt == tp->snd_una;
            if (len > 0 && len < seg_size && !fin) {
                /* Nagle (RFC 896) and silly window avoidance (RFC 9293
                 * 3.8.6.2.1): a short segment goes only when it is all we
                 * have and nothing is in flight (or TCP_NODELAY), or when
                 * the window alone holds us to it and nothing is in
                 * flight. As Linux, with Minshall's change: all we have
                 * goes also when only full segments are in flight, so
                 * the tail of a write does not wait for the delayed ACK
                 * of the segments before it (a 40 ms stall when their
                 * number is odd); the next short one then waits. */
                bool all_we_have = len == avail;
                bool short_in_flight = tp->short_sent && !idle;
                if (!((all_we_have && (tp->nodelay || idle || !short_in_flight)) ||
                      (!all_we_have && idle)))
                    len = 0;
            }
            if (len == 0 && !fin)
                break;
            if (cwnd > tp->cwnd && tern_seq_ge(tp->snd_nxt, tp->snd_max) &&
                inflight + len > tp->cwnd)
                tern_count(s, TERN_C_TCP_LIMITED_TRANSMIT);
            if (idle)
                tp->short_sent = false;
            if (len < seg_size && tern_seq_ge(tp->snd_nxt, tp->snd_max))
                tp->short_sent = true;
            tp->snd_nxt += tern_tcp_send_data(s, tp, tp->snd_nxt, len);
            if (fin)
                break;
        }
    }
    /* A pure ACK carries SND.MAX, not a SND.NXT that a timeout moved back
     * (as BSD): the peer's RCV.NXT may be past SND.NXT then, and it drops
     * a segment starting below its window unread (RFC 9293 3.10.7.4), ACK
     * field and all, and answers with its own ACK. Two such ends refuse
     * each other's ACKs forever. */
    if (tp->ack_now)
        send_segment(s, tp, tp->snd_max, TERN_TCP_ACK, 0, 0);
    /* A zero window with data waiting and nothing in flight: probe it
     * (RFC 9293 3.8.6.1) instead of waiting for an update that may be
     * lost. */
    bool waiting = tern_seq_lt(tp->snd_nxt, tern_tcp_fin_seq(tp)) || tern_tcp_fin_unsent(tp);
    if (tp->snd_wnd == 0 && waiting && tp->snd_nxt == tp->snd_una && !tern_tcp_timer_on(tp, TERN_TCPT_PERSIST)) {
        tern_tcp_timer_stop(tp, TERN_TCPT_REXMT);
        tern_tcp_timer_set(s, tp, TERN_TCPT_PERSIST, s->now + tp->rto);
    }
}
