/* A listener's queues and SYN cookies: see tcp_listen.h. */
#include "transport/tcp/tcp_listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "core/assert.h"
#include "core/stack.h"
#include "core/zalloc.h"
#include "runtime/events.h"
#include "transport/tcp/tcp.h"

void tern_tcp_syn_params(struct tern_stack *s, const struct tern_tcpcb *ltp,
                         struct tern_tcp_synparams *p, uint32_t laddr, uint16_t lport,
                         uint32_t faddr, uint16_t fport, uint32_t seq, uint32_t wnd,
                         const struct tern_tcp_opts *opt)
{
    *p = (struct tern_tcp_synparams){.laddr = laddr, .faddr = faddr, .lport = lport,
                                     .fport = fport, .irs = seq, .peer_wnd = wnd};
    p->iss = tern_tcp_isn(s, laddr, lport, faddr, fport);
    p->our_mss = tern_tcp_our_mss(s, faddr, ltp->user_mss);
    p->peer_mss = opt->has_mss ? opt->mss : 0;
    p->sack_ok = opt->sack_permitted && s->cfg.tcp_sack;
    p->ts_ok = opt->has_ts && s->cfg.tcp_timestamps;
    p->ts_recent = opt->ts_val;
    p->ts_offset = tern_tcp_ts_offset(s, laddr, faddr);
    p->wscale_ok = opt->has_wscale;
    p->snd_wscale = opt->has_wscale ? (opt->wscale > 14 ? 14 : opt->wscale) : 0;
    p->rcv_wscale = opt->has_wscale ? tern_tcp_wscale_for(tern_tcp_rcvbuf_ceiling(s, ltp->so)) : 0;
}

static void send_synack(struct tern_stack *s, const struct tern_tcp_synparams *p,
                        uint32_t rcvbuf, uint32_t tsval, uint8_t ttl, uint8_t tos)
{
    struct tern_tcp_hdr h = {.sport = p->lport, .dport = p->fport, .seq = p->iss,
                             .ack = p->irs + 1, .flags = TERN_TCP_SYN | TERN_TCP_ACK};
    /* RFC 7323 2.2: the window of a SYN is never scaled. */
    h.wnd = rcvbuf > 65535 ? 65535 : (uint16_t)rcvbuf;
    h.opt.has_mss = true;
    h.opt.mss = p->our_mss;
    /* Answer only what the peer offered (RFC 7323 2.2, 3.2, RFC 2018 2). */
    h.opt.has_wscale = p->wscale_ok;
    h.opt.wscale = p->rcv_wscale;
    h.opt.sack_permitted = p->sack_ok;
    if (p->ts_ok) {
        h.opt.has_ts = true;
        h.opt.ts_val = tsval;
        h.opt.ts_ecr = p->ts_recent;
    }
    tern_tcp_emit_ctl(s, p->laddr, p->faddr, &h, ttl, tos);
}

void tern_tcp_req_send_synack(struct tern_stack *s, const struct tern_tcp_req *req)
{
    const struct tern_socket *lso = req->listener->so;
    send_synack(s, &req->p, lso->rcvbuf, (uint32_t)(s->now / TERN_NS_PER_MS) + req->p.ts_offset,
                lso->ttl, lso->tos);
}

static void req_timeout(struct tern_stack *s, struct tern_timer *t)
{
    struct tern_tcp_req *req = tern_container_of(t, struct tern_tcp_req, timer);
    if (req->retries >= TERN_TCP_SYNACK_RETRIES) {
        tern_count(s, TERN_C_TCP_SYN_RECV_TIMEOUT);
        tern_tcp_req_free(s, req);
        return;
    }
    /* RFC 6298 5.5: back off, from the 1 s initial RTO. */
    req->retries++;
    tern_count(s, TERN_C_TCP_RETRANSMIT);
    tern_tcp_req_send_synack(s, req);
    tern_timer_arm(s, &req->timer, s->now + (TERN_TCP_RTO_INIT_NS << req->retries));
}

struct tern_tcp_req *tern_tcp_req_new(struct tern_stack *s, struct tern_tcpcb *ltp,
                                      const struct tern_tcp_synparams *p)
{
    struct tern_tcp_req *req = tern_zalloc(sizeof(*req));
    if (!req) {
        tern_count(s, TERN_C_DROP_TCP_LISTEN_OVERFLOW);
        return NULL;
    }
    tern_pcb_init(&req->pcb);
    req->pcb.kind = TERN_PCB_REQUEST;
    req->pcb.laddr = p->laddr;
    req->pcb.lport = p->lport;
    req->pcb.faddr = p->faddr;
    req->pcb.fport = p->fport;
    req->pcb.connected = true;
    req->pcb.reuseaddr = ltp->so->pcb.reuseaddr;
    req->pcb.reuseport = ltp->so->pcb.reuseport; /* the group's port stays bindable */
    if (tern_pcb_insert(s, ltp->so->pcb.table, &req->pcb) < 0) {
        free(req);
        tern_count(s, TERN_C_DROP_TCP_LISTEN_OVERFLOW);
        return NULL;
    }
    req->p = *p;
    req->listener = ltp;
    tern_list_push_back(&ltp->lq->req_q, &req->node);
    ltp->lq->req_q_len++;
    s->tcp_req_count++;
    tern_timer_init(&req->timer, req_timeout, "tcp-synack");
    req->sent_at = s->now;
    tern_tcp_req_send_synack(s, req);
    tern_timer_arm(s, &req->timer, s->now + TERN_TCP_RTO_INIT_NS);
    return req;
}

void tern_tcp_req_free(struct tern_stack *s, struct tern_tcp_req *req)
{
    tern_timer_cancel(s, &req->timer);
    if (req->pcb.table)
        tern_pcb_remove(s, &req->pcb);
    tern_list_remove(&req->node);
    req->listener->lq->req_q_len--;
    s->tcp_req_count--;
    tern_timer_retire(s, &req->timer, "request from port %u on listener #%llu", req->p.fport,
                      (unsigned long long)req->listener->so->id);
    free(req);
}

/* ---- SYN cookies (RFC 4987 section 3.6) ----
 *
 * The ISS is the cookie: 5 bits of a 64-second clock, 3 bits naming the
 * peer's MSS in a table, and a 24-bit keyed hash of the 4-tuple, the
 * peer's ISN and the clock. With timestamps the low 5 bits of our TSval
 * carry the peer's window scale and SACK-permitted, which the echo
 * brings back; without timestamps a cookie connection goes without
 * window scaling and SACK, so the SYN,ACK does not offer them. */

static const uint16_t cookie_mss[8] = {536, 1200, 1360, 1440, 1460, 4312, 8960, 65495};

static uint32_t cookie_hash(struct tern_stack *s, uint32_t laddr, uint16_t lport, uint32_t faddr,
                            uint16_t fport, uint32_t irs, uint32_t period)
{
    uint32_t key[5] = {laddr, faddr, ((uint32_t)lport << 16) | fport, irs, period};
    return (uint32_t)tern_siphash(&s->key_cookie, key, sizeof(key)) & 0xffffffu;
}

static uint32_t cookie_period(const struct tern_stack *s)
{
    return (uint32_t)(s->now / TERN_TCP_COOKIE_PERIOD_NS);
}

#define TS_OPT_BITS 5
#define TS_OPT_MASK ((1u << TS_OPT_BITS) - 1)
#define TS_NO_WSCALE 0xfu

void tern_tcp_cookie_synack(struct tern_stack *s, const struct tern_tcpcb *ltp,
                            struct tern_tcp_synparams *p)
{
    uint16_t peer = p->peer_mss ? p->peer_mss : 536;
    unsigned idx = 0;
    for (unsigned i = 0; i < 8; i++)
        if (cookie_mss[i] <= peer)
            idx = i;
    uint32_t period = cookie_period(s);
    p->iss = ((period & 31u) << 27) | ((uint32_t)idx << 24) |
             cookie_hash(s, p->laddr, p->lport, p->faddr, p->fport, p->irs, period);
    uint32_t tsval = 0;
    if (p->ts_ok) {
        p->ts_offset = tern_tcp_ts_offset(s, p->laddr, p->faddr);
        uint32_t now_ts = (uint32_t)(s->now / TERN_NS_PER_MS) + p->ts_offset;
        uint32_t opts = (p->sack_ok ? 0x10u : 0) | (p->wscale_ok ? p->snd_wscale : TS_NO_WSCALE);
        tsval = (now_ts & ~TS_OPT_MASK) | opts;
        /* Never ahead of the clock the connection will go on with, or
         * the peer's PAWS would refuse what follows (Linux does this). */
        if ((int32_t)(tsval - now_ts) > 0)
            tsval = ((now_ts & ~TS_OPT_MASK) - (1u << TS_OPT_BITS)) | opts;
    } else {
        p->wscale_ok = false;
        p->sack_ok = false;
        p->rcv_wscale = p->snd_wscale = 0;
    }
    tern_count(s, TERN_C_TCP_SYNCOOKIE_SENT);
    send_synack(s, p, ltp->so->rcvbuf, tsval, ltp->so->ttl, ltp->so->tos);
}

bool tern_tcp_cookie_check(struct tern_stack *s, const struct tern_tcpcb *ltp,
                           struct tern_tcp_synparams *p, uint32_t laddr, uint16_t lport,
                           uint32_t faddr, uint16_t fport, uint32_t seq, uint32_t ack,
                           const struct tern_tcp_opts *opt)
{
    uint32_t iss = ack - 1, irs = seq - 1;
    uint32_t now = cookie_period(s);
    uint32_t age = (now - (iss >> 27)) & 31u;
    if (age > 1)
        return false;
    uint32_t period = now - age;
    if ((iss & 0xffffffu) != cookie_hash(s, laddr, lport, faddr, fport, irs, period))
        return false;
    *p = (struct tern_tcp_synparams){.laddr = laddr, .faddr = faddr, .lport = lport,
                                     .fport = fport, .iss = iss, .irs = irs};
    uint16_t mss = cookie_mss[(iss >> 24) & 7u];
    p->our_mss = tern_tcp_our_mss(s, faddr, ltp->user_mss);
    p->peer_mss = mss;
    if (opt->has_ts && s->cfg.tcp_timestamps) {
        p->ts_ok = true;
        p->ts_recent = opt->ts_val;
        p->ts_offset = tern_tcp_ts_offset(s, laddr, faddr);
        uint32_t bits = opt->ts_ecr & TS_OPT_MASK;
        p->sack_ok = (bits & 0x10u) && s->cfg.tcp_sack;
        if ((bits & 0xfu) != TS_NO_WSCALE) {
            p->wscale_ok = true;
            p->snd_wscale = (uint8_t)((bits & 0xfu) > 14 ? 14 : (bits & 0xfu));
            p->rcv_wscale = tern_tcp_wscale_for(tern_tcp_rcvbuf_ceiling(s, ltp->so));
        }
    }
    /* The SYN's window is lost; the ACK's own window, scaled, replaces
     * it when the child processes the segment. */
    p->peer_wnd = 0;
    return true;
}

/* ---- Children ---- */

struct tern_tcpcb *tern_tcp_child_new(struct tern_stack *s, struct tern_tcpcb *ltp,
                                      const struct tern_tcp_synparams *p)
{
    if (ltp->lq->accept_q_len >= ltp->lq->backlog) {
        tern_count(s, TERN_C_DROP_TCP_ACCEPT_OVERFLOW);
        return NULL;
    }
    struct tern_socket *lso = ltp->so;
    struct tern_socket *so = tern_sock_new_proto(s, SOCK_KIND_TCP, SOCK_STREAM, IPPROTO_TCP);
    if (!so) {
        tern_count(s, TERN_C_DROP_TCP_ACCEPT_OVERFLOW);
        return NULL;
    }
    so->rcvbuf = lso->rcvbuf;
    so->sndbuf = lso->sndbuf;
    so->rcvbuf_set = lso->rcvbuf_set; /* as Linux's sk_userlocks */
    so->sndbuf_set = lso->sndbuf_set;
    so->ttl = lso->ttl;
    so->tos = lso->tos;
    if (tern_tcp_attach(s, so) != 0) {
        tern_sock_release_proto(s, so);
        tern_count(s, TERN_C_DROP_TCP_ACCEPT_OVERFLOW);
        return NULL;
    }
    struct tern_tcpcb *tp = so->tcb;
    struct tern_inpcb *pcb = &so->pcb;
    pcb->laddr = p->laddr;
    pcb->lport = p->lport;
    pcb->faddr = p->faddr;
    pcb->fport = p->fport;
    pcb->connected = true;
    pcb->reuseaddr = lso->pcb.reuseaddr;
    pcb->reuseport = lso->pcb.reuseport; /* as Linux's clone: new members may still bind */
    if (tern_pcb_insert(s, lso->pcb.table, pcb) < 0) {
        tern_tcp_detach(s, so);
        tern_sock_release_proto(s, so);
        tern_count(s, TERN_C_DROP_TCP_ACCEPT_OVERFLOW);
        return NULL;
    }
    /* Inherited from the listener, as on Linux. */
    tp->nodelay = ltp->nodelay;
    tp->user_mss = ltp->user_mss;
    tp->cc = ltp->cc;
    tp->keepalive_on = ltp->keepalive_on;
    tp->keep_idle_s = ltp->keep_idle_s;
    tp->keep_intvl_s = ltp->keep_intvl_s;
    tp->keep_cnt = ltp->keep_cnt;
    tp->user_timeout_ms = ltp->user_timeout_ms;
    tern_tcp_establish_passive(s, tp, p);
    tp->listener = ltp->so;
    tern_list_push_back(&ltp->lq->accept_q, &tp->child_node);
    ltp->lq->accept_q_len++;
    tern_sock_touch(s, ltp->so); /* acceptable now */
    return tp;
}

/* ---- The listener goes ---- */

/* Another listening member of ltp's reuseport group, or NULL. */
static struct tern_tcpcb *group_heir(struct tern_tcpcb *ltp)
{
    struct tern_reuseport_group *g = ltp->so->pcb.group;
    if (!g)
        return NULL;
    for (uint32_t i = 0; i < g->n; i++) {
        struct tern_inpcb *m = g->members[i];
        if (m == &ltp->so->pcb || m->kind != TERN_PCB_SOCKET || !m->listening)
            continue;
        struct tern_tcpcb *heir = tern_sock_of_pcb(m)->tcb;
        if (heir->state == TCPS_LISTEN)
            return heir;
    }
    return NULL;
}

void tern_tcp_listener_close(struct tern_stack *s, struct tern_tcpcb *ltp)
{
    struct tern_tcpcb *heir = group_heir(ltp);
    struct tern_list *it, *tmp;
    tern_list_for_each_safe(it, tmp, &ltp->lq->req_q) {
        struct tern_tcp_req *req = tern_container_of(it, struct tern_tcp_req, node);
        if (heir) {
            tern_list_remove(&req->node);
            ltp->lq->req_q_len--;
            req->listener = heir;
            tern_list_push_back(&heir->lq->req_q, &req->node);
            heir->lq->req_q_len++;
            tern_count(s, TERN_C_TCP_LISTEN_MIGRATED);
        } else {
            /* The peer believes in the connection: tell it (as for the
             * children below) rather than let its ACK meet a reset. */
            struct tern_tcp_hdr h = {.sport = req->p.lport, .dport = req->p.fport,
                                     .seq = req->p.iss + 1, .ack = req->p.irs + 1,
                                     .flags = TERN_TCP_RST | TERN_TCP_ACK};
            tern_tcp_emit_ctl(s, req->p.laddr, req->p.faddr, &h, ltp->so->ttl, ltp->so->tos);
            tern_tcp_req_free(s, req);
        }
    }
    tern_list_for_each_safe(it, tmp, &ltp->lq->accept_q) {
        struct tern_tcpcb *tp = tern_container_of(it, struct tern_tcpcb, child_node);
        if (heir) {
            tern_list_remove(&tp->child_node);
            ltp->lq->accept_q_len--;
            tp->listener = heir->so;
            tern_list_push_back(&heir->lq->accept_q, &tp->child_node);
            heir->lq->accept_q_len++;
            tern_count(s, TERN_C_TCP_LISTEN_MIGRATED);
            tern_sock_touch(s, heir->so); /* acceptable now: wake its acceptors */
            continue;
        }
        if (tp->state != TCPS_CLOSED)
            tern_tcp_send_ctl(s, tp, TERN_TCP_RST | TERN_TCP_ACK, tp->snd_max);
        tern_tcp_drop(s, tp, ECONNABORTED);
        tern_tcp_unqueue_child(s, tp);
    }
}

void tern_tcp_listener_teardown(struct tern_stack *s, struct tern_tcpcb *ltp)
{
    struct tern_list *it;
    while ((it = ltp->lq->req_q.next) != &ltp->lq->req_q)
        tern_tcp_req_free(s, tern_container_of(it, struct tern_tcp_req, node));
    /* Unlink each child, so that its own teardown finds itself on no
     * list whatever the order sockets are visited in. */
    while (tern_list_pop_front(&ltp->lq->accept_q) != NULL) {
    }
    ltp->lq->accept_q_len = 0;
}

void tern_tcp_req_dump(const struct tern_stack *s, const struct tern_tcpcb *ltp, FILE *f)
{
    const struct tern_list *it;
    tern_list_for_each(it, &ltp->lq->req_q) {
        const struct tern_tcp_req *req = tern_container_of(it, struct tern_tcp_req, node);
        char local[32], peer[32], ip[INET_ADDRSTRLEN];
        struct in_addr a = {.s_addr = htonl(req->p.laddr)};
        snprintf(local, sizeof(local), "%s:%u", inet_ntop(AF_INET, &a, ip, sizeof(ip)),
                 req->p.lport);
        a.s_addr = htonl(req->p.faddr);
        snprintf(peer, sizeof(peer), "%s:%u", inet_ntop(AF_INET, &a, ip, sizeof(ip)),
                 req->p.fport);
        fprintf(f, "%-6s %-10s %-5s %-12s %-10s %-21s %-21s %6u %8u %6u synack-retries %u\n",
                "-", "-", "tcp", "SYN_RECEIVED", "request", local, peer, 0u, 0u, 0u,
                req->retries);
    }
    (void)s;
}
