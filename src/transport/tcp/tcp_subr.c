/* TCB lifecycle, states, the protocol's last word, RTT estimation. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/plant.h"
#include "core/stack.h"
#include "obs/probe.h"
#include "runtime/events.h"
#include "net/ipv4.h"
#include "transport/tcp/tcp.h"

const char *tern_tcp_state_name(enum tern_tcp_state st)
{
    switch (st) {
    case TCPS_CLOSED: return "CLOSED";
    case TCPS_LISTEN: return "LISTEN";
    case TCPS_SYN_SENT: return "SYN_SENT";
    case TCPS_SYN_RECEIVED: return "SYN_RECEIVED";
    case TCPS_ESTABLISHED: return "ESTABLISHED";
    case TCPS_FIN_WAIT_1: return "FIN_WAIT_1";
    case TCPS_FIN_WAIT_2: return "FIN_WAIT_2";
    case TCPS_CLOSE_WAIT: return "CLOSE_WAIT";
    case TCPS_CLOSING: return "CLOSING";
    case TCPS_LAST_ACK: return "LAST_ACK";
    case TCPS_TIME_WAIT: return "TIME_WAIT";
    }
    return "?";
}

struct tern_tcp_reass *tern_tcp_ooo_make(struct tern_tcpcb *tp)
{
    if (!tp->ooo && (tp->ooo = malloc(sizeof(*tp->ooo))) != NULL)
        tern_tcp_reass_init(tp->ooo, tern_tcp_ooo_limit(tp->so->rcvbuf));
    return tp->ooo;
}

void tern_tcp_ooo_free(struct tern_tcpcb *tp)
{
    if (!tp->ooo)
        return;
    tern_tcp_reass_destroy(tp->ooo);
    free(tp->ooo);
    tp->ooo = NULL;
}

size_t tern_tcp_block_size(const struct tern_stack *s)
{
    return sizeof(struct tern_tcpcb) + s->cfg.tcp_event_ring * sizeof(struct tern_tcp_event);
}

/* The block lives in the socket's allocation (tern_sock_tail): attaching
 * fills it in, detaching gives back what it points to, the reaper frees
 * it with the socket. */
_Static_assert(sizeof(struct tern_socket) % _Alignof(struct tern_tcpcb) == 0,
               "the connection block follows the socket, aligned");

int tern_tcp_attach(struct tern_stack *s, struct tern_socket *so)
{
    uint16_t nev = s->cfg.tcp_event_ring;
    struct tern_tcpcb *tp = tern_sock_tail(so);
    memset(tp, 0, tern_tcp_block_size(s));
    tp->events_cap = nev;
    tp->so = so;
    tp->state = TCPS_CLOSED;
    tp->rto = TERN_TCP_RTO_INIT_NS;
    tp->mss = 536; /* RFC 9293 3.7.1: until the peer says otherwise */
    tp->keep_idle_s = 7200; /* Linux's tcp_keepalive_time, _intvl, _probes */
    tp->keep_intvl_s = 75;
    tp->keep_cnt = 9;
    tp->reordering = TERN_TCP_DUPTHRESH;
    tern_ring_init(&tp->snd, so->sndbuf);
    tern_ring_init(&tp->rcv, so->rcvbuf);
    tern_tcp_sack_init(&tp->sackb);
    tp->cc = s->cfg.tcp_congestion;
    tern_list_init(&tp->child_node);
    tern_tcp_timers_init(tp);
    so->tcb = tp;
    return 0;
}

void tern_tcp_detach(struct tern_stack *s, struct tern_socket *so)
{
    struct tern_tcpcb *tp = so->tcb;
    if (!tp)
        return;
    TERN_ASSERT(s, !tern_timer_armed(&tp->timer),
                "socket #%llu freed with a TCP timer armed (state %s)",
                (unsigned long long)so->id, tern_tcp_state_name(tp->state));
    tern_timer_retire(s, &tp->timer, "socket #%llu", (unsigned long long)so->id);
    TERN_ASSERT(s, (!tp->lq || (tern_list_empty(&tp->lq->req_q) &&
                                tern_list_empty(&tp->lq->accept_q))) &&
                       !tern_list_linked(&tp->child_node),
                "socket #%llu freed while on a listener's queue or holding children",
                (unsigned long long)so->id);
    free(tp->lq);
    tern_ring_destroy(&tp->snd);
    tern_ring_destroy(&tp->rcv);
    tern_tcp_ooo_free(tp);
    tern_tcp_sack_clear(&tp->sackb);
    so->tcb = NULL;
}

static void cancel_timers(struct tern_stack *s, struct tern_tcpcb *tp)
{
    tern_tcp_timers_stop_all(s, tp);
}

void tern_tcp_teardown(struct tern_stack *s, struct tern_socket *so)
{
    struct tern_tcpcb *tp = so->tcb;
    cancel_timers(s, tp);
    if (tern_list_linked(&tp->child_node))
        tern_list_remove(&tp->child_node);
    if (tp->lq)
        tern_tcp_listener_teardown(s, tp);
    tern_tcp_set_state(s, tp, TCPS_CLOSED);
}

void tern_tcp_set_state(struct tern_stack *s, struct tern_tcpcb *tp, enum tern_tcp_state st)
{
    enum tern_tcp_state old = tp->state;
    if (old == st)
        return;
    tp->state = st;
    if (st == TCPS_ESTABLISHED && !tp->rcv_fin_pending) {
        /* Receive autotuning's first round starts with the data. */
        tp->drs_seq = tp->rcv_nxt;
        tp->drs_time_ms = (uint32_t)(s->now / TERN_NS_PER_MS);
    }
    TERN_PROBE4(tcp_state, s, tp->so->id, old, st);
    tern_tcp_trace(s, tp, TERN_TCPE_STATE, tp->snd_una, tp->rcv_nxt, 0, 0, 0, (uint16_t)old);
}

const char *tern_tcp_timer_name(unsigned k)
{
    switch (k) {
    case TERN_TCPT_DELACK: return "delack";
    case TERN_TCPT_REXMT: return "rexmt";
    case TERN_TCPT_PERSIST: return "persist";
    case TERN_TCPT_KEEPALIVE: return "keepalive";
    case TERN_TCPT_FINWAIT2: return "finwait2";
    case TERN_TCPT_RECLAIM: return "reclaim";
    }
    return "?";
}

/* The protocol holds the socket while its PCB is in the table or while it
 * waits on a listener's accept queue (where accept will find it even if
 * it was reset meanwhile, as on Linux). Let go when neither holds. */
static void maybe_release(struct tern_stack *s, struct tern_tcpcb *tp)
{
    struct tern_socket *so = tp->so;
    if (so->pcb.table || tern_list_linked(&tp->child_node))
        return;
    if (TERN_PLANTED(skip_proto_release))
        return;
    if (so->life == SOCK_LIFE_BOTH || so->life == SOCK_LIFE_PROTO_ONLY ||
        TERN_PLANTED(double_proto_release))
        tern_sock_release_proto(s, so);
}

void tern_tcp_drop(struct tern_stack *s, struct tern_tcpcb *tp, int err)
{
    struct tern_socket *so = tp->so;
    if (err)
        so->so_error = err;
    tern_sock_touch(s, so);
    if (tp->state != TCPS_CLOSED)
        tern_count(s, TERN_C_TCP_CONN_CLOSED);
    tern_tcp_set_state(s, tp, TCPS_CLOSED);
    if (!TERN_PLANTED(tcp_timer_left_armed))
        cancel_timers(s, tp);
    tern_tcp_ooo_free(tp);
    tern_tcp_sack_clear(&tp->sackb);
    /* A child on the accept queue stays there for accept to find. */
    if (so->pcb.table)
        tern_pcb_remove(s, &so->pcb);
    maybe_release(s, tp);
}

/* Accept hands a queued child to the user (the user's reference is
 * already taken); a child reset while it waited is let go now. */
void tern_tcp_unqueue_child(struct tern_stack *s, struct tern_tcpcb *tp)
{
    struct tern_tcpcb *ltp = tp->listener->tcb;
    tern_list_remove(&tp->child_node);
    ltp->lq->accept_q_len--;
    tp->listener = NULL;
    maybe_release(s, tp);
}

uint32_t tern_tcp_isn(struct tern_stack *s, uint32_t laddr, uint16_t lport, uint32_t faddr,
                      uint16_t fport)
{
    /* RFC 6528: a 4 us clock plus a keyed hash of the connection, the
     * half of the tuple hash its table slot does not use: the lookup
     * that found no connection for a SYN, or the insertion of a new
     * one, hashed the same tuple, so this costs no second SipHash. */
    return (uint32_t)(s->now / 4000) +
           (uint32_t)(tern_tuple_hash(s, laddr, lport, faddr, fport) >> 32);
}

uint16_t tern_tcp_send_mss(struct tern_stack *s, const struct tern_tcpcb *tp, uint16_t peer_mss)
{
    if (!peer_mss)
        peer_mss = 536; /* RFC 9293 3.7.1: no option, the default */
    if (peer_mss < 64)
        peer_mss = 64; /* a peer asking for less is not believed (Linux: 48+) */
    uint16_t mss = peer_mss < tp->our_mss ? peer_mss : tp->our_mss;
    /* RFC 1191 section 5: a path MTU learned for this destination by an
     * earlier connection holds for this one too. */
    uint32_t pmtu = tern_pmtu_get(s, tp->so->pcb.faddr);
    if (pmtu && pmtu - 40 < mss) {
        mss = (uint16_t)(pmtu - 40);
        tern_count(s, TERN_C_TCP_PMTU_CACHED_MSS);
    }
    return mss;
}

uint16_t tern_tcp_our_mss(struct tern_stack *s, uint32_t faddr, uint16_t user_mss)
{
    uint32_t mtu = tern_ipv4_mtu_to(s, faddr);
    uint16_t mss = (uint16_t)((mtu ? mtu : 576) - 40);
    return user_mss && user_mss < mss ? user_mss : mss;
}

uint8_t tern_tcp_wscale_for(uint32_t rcvbuf)
{
    uint8_t ws = 0;
    while (ws < 14 && (rcvbuf >> ws) > 65535)
        ws++;
    return ws;
}

uint32_t tern_tcp_ts_offset(struct tern_stack *s, uint32_t laddr, uint32_t faddr)
{
    /* Secret, but the same for every connection between two addresses
     * (as Linux's): a new connection on a 4-tuple whose old one the peer
     * keeps in TIME_WAIT must carry newer timestamps, or the peer's PAWS
     * refuses its SYN (RFC 6191). */
    uint32_t key[2] = {laddr, faddr};
    return (uint32_t)tern_siphash_memo(&s->ts_off_memo, &s->key_tsoff, key, 2);
}

void tern_tcp_establish_passive(struct tern_stack *s, struct tern_tcpcb *tp,
                                const struct tern_tcp_synparams *p)
{
    tp->iss = p->iss;
    tp->irs = p->irs;
    tp->snd_una = tp->snd_nxt = tp->snd_max = tp->high_rxt = p->iss + 1;
    tp->snd_buf_seq = p->iss + 1;
    tp->rcv_nxt = p->irs + 1;
    /* The SYN,ACK promised a window: never take it back (RFC 9293
     * 3.8.6.2.2). */
    uint32_t promised = tp->so->rcvbuf > 65535 ? 65535 : tp->so->rcvbuf;
    tp->rcv_adv = tp->rcv_nxt + promised;
    tp->our_mss = p->our_mss;
    tp->mss = tern_tcp_send_mss(s, tp, p->peer_mss);
    tp->wscale_ok = p->wscale_ok;
    tp->snd_wscale = p->snd_wscale;
    tp->rcv_wscale = p->rcv_wscale;
    tp->sack_ok = p->sack_ok;
    tp->ts_ok = p->ts_ok;
    tp->ts_recent = p->ts_recent;
    tp->ts_recent_at_s = (uint32_t)(s->now / TERN_NS_PER_SEC);
    tp->ts_offset = p->ts_offset;
    tp->snd_wnd = p->peer_wnd;
    tp->snd_wl1 = p->irs;
    tp->snd_wl2 = p->iss;
    tp->ssthresh = UINT32_MAX;
    tp->cwnd = 10u * tp->mss; /* RFC 6928 */
    TERN_TCP_CC(s, tp)->init(tp, s->now);
    if (p->rtt_ns)
        tern_tcp_rtt_sample(s, tp, p->rtt_ns);
    tp->opened = true;
    tp->last_rx = s->now;
    tern_tcp_set_state(s, tp, TCPS_ESTABLISHED);
    tern_count(s, TERN_C_TCP_CONN_ESTABLISHED);
}

/* RFC 6298 section 2: the first sample sets SRTT and RTTVAR, later ones
 * smooth with alpha 1/8 and beta 1/4; RTO = SRTT + max(G, 4 RTTVAR),
 * bounded below (Linux's 200 ms rather than 1 s, as every stack does
 * today) and above. */
void tern_tcp_rtt_sample(struct tern_stack *s, struct tern_tcpcb *tp, uint64_t rtt)
{
    (void)s;
    if (tp->srtt == 0) {
        tp->srtt = rtt;
        tp->rttvar = rtt / 2;
    } else {
        uint64_t diff = tp->srtt > rtt ? tp->srtt - rtt : rtt - tp->srtt;
        tp->rttvar = (3 * tp->rttvar + diff) / 4;
        tp->srtt = (7 * tp->srtt + rtt) / 8;
    }
    uint64_t var = 4 * tp->rttvar;
    if (var < TERN_TIMER_TICK_NS)
        var = TERN_TIMER_TICK_NS;
    tp->rto = tp->srtt + var;
    if (tp->rto < TERN_TCP_RTO_MIN_NS)
        tp->rto = TERN_TCP_RTO_MIN_NS;
    if (tp->rto > TERN_TCP_RTO_MAX_NS)
        tp->rto = TERN_TCP_RTO_MAX_NS;
}

uint32_t tern_tcp_rcv_window(const struct tern_tcpcb *tp)
{
    uint32_t space = tern_ring_space(&tp->rcv);
    uint32_t held = tern_tcp_ooo_held(tp);
    space = space > held ? space - held : 0;
    /* RCV.WND is what the window field can offer (RFC 7323 2.3): without
     * scaling, a larger buffer still takes only 65535 bytes past RCV.NXT
     * (RFC 9293 3.10.7.4 tests segments against the window offered). */
    uint32_t offerable = 65535u << tp->rcv_wscale;
    if (space > offerable)
        space = offerable;
    /* Never move the right edge left (RFC 9293 3.8.6.2.2 "shrinking"). */
    uint32_t promised = tern_seq_gt(tp->rcv_adv, tp->rcv_nxt) ? tp->rcv_adv - tp->rcv_nxt : 0;
    return space > promised ? space : promised;
}

uint64_t tern_tcp_rtt_since(const struct tern_stack *s, const struct tern_tcpcb *tp)
{
    /* At least 1 us: a zero sample would read as "no sample yet". */
    uint32_t us = (uint32_t)(s->now / 1000) - tp->rtt_start_us;
    return (uint64_t)(us ? us : 1) * 1000;
}

uint32_t tern_tcp_rcvbuf_ceiling(const struct tern_stack *s, const struct tern_socket *so)
{
    if (so->rcvbuf_set || s->cfg.tcp_rcvbuf_max <= so->rcvbuf)
        return so->rcvbuf;
    return s->cfg.tcp_rcvbuf_max;
}

/* Linux's dynamic right-sizing (tcp_rcv_space_adjust), in its simplest
 * form: once a round trip (srtt, at least 1 ms), see how much the reader
 * took. Half the buffer or more in one round trip means the window, not
 * the reader, set the pace (a sender held to the window sends about one
 * window per round trip): the buffer grows to twice that, up to the
 * ceiling. A slow reader, or a sender with less to say, never gets there.
 * The buffer's memory still comes as data waits in it and goes back when
 * the connection is idle; only the limit and the window grow. */
void tern_tcp_rcvbuf_autotune(struct tern_stack *s, struct tern_tcpcb *tp)
{
    struct tern_socket *so = tp->so;
    uint32_t ceiling = tern_tcp_rcvbuf_ceiling(s, so);
    if (so->rcvbuf >= ceiling || tp->rcv_fin_pending || tp->fin_received || tp->srtt == 0 ||
        tp->state != TCPS_ESTABLISHED)
        return;
    uint32_t now_ms = (uint32_t)(s->now / TERN_NS_PER_MS);
    uint64_t rtt_ms = tp->srtt / TERN_NS_PER_MS;
    if (now_ms - tp->drs_time_ms < (rtt_ms ? rtt_ms : 1))
        return;
    uint32_t read_seq = tp->rcv_nxt - tern_ring_len(&tp->rcv);
    uint32_t copied = read_seq - tp->drs_seq;
    tp->drs_seq = read_seq;
    tp->drs_time_ms = now_ms;
    if (copied < so->rcvbuf / 2)
        return;
    uint64_t want = 2 * (uint64_t)copied;
    if (want < 2 * (uint64_t)so->rcvbuf)
        want = 2 * (uint64_t)so->rcvbuf;
    so->rcvbuf = want > ceiling ? ceiling : (uint32_t)want;
    tern_ring_set_limit(&tp->rcv, so->rcvbuf);
    if (tp->ooo)
        tern_tcp_reass_set_limit(tp->ooo, tern_tcp_ooo_limit(so->rcvbuf));
    tern_count(s, TERN_C_TCP_RCVBUF_GROWN);
}

/* Linux's tcp_sndbuf_expand: room for twice the congestion window (what
 * is in flight and as much again to send), bounded by what the peer's
 * window lets out and by the ceiling. */
void tern_tcp_sndbuf_autotune(struct tern_stack *s, struct tern_tcpcb *tp)
{
    struct tern_socket *so = tp->so;
    uint32_t ceiling = s->cfg.tcp_sndbuf_max;
    if (so->sndbuf_set || so->sndbuf >= ceiling)
        return;
    uint32_t flight = tp->cwnd < tp->snd_wnd ? tp->cwnd : tp->snd_wnd;
    uint64_t want = 2 * (uint64_t)flight;
    if (want <= so->sndbuf)
        return;
    so->sndbuf = want > ceiling ? ceiling : (uint32_t)want;
    tern_ring_set_limit(&tp->snd, so->sndbuf);
    tern_count(s, TERN_C_TCP_SNDBUF_GROWN);
}
