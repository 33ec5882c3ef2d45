/* TIME_WAIT records: see tcp_timewait.h. */
#include "transport/tcp/tcp_timewait.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdlib.h>

#include "core/plant.h"
#include "core/stack.h"
#include "core/zalloc.h"
#include "transport/tcp/tcp.h"

void tern_tcp_tw_init(struct tern_stack *s)
{
    tern_list_init(&s->tcp_tw);
}

static void tw_expire(struct tern_stack *s, struct tern_timer *t)
{
    struct tern_tcp_tw *tw = tern_container_of(t, struct tern_tcp_tw, timer);
    tern_tcp_tw_free(s, tw);
}

void tern_tcp_tw_enter(struct tern_stack *s, struct tern_tcpcb *tp)
{
    struct tern_socket *so = tp->so;
    struct tern_tcp_tw *tw = NULL;
    if (s->tcp_timewait_count < s->cfg.tcp_timewait_max)
        tw = tern_zalloc(sizeof(*tw));
    if (tw) {
        tern_pcb_init(&tw->pcb);
        tw->pcb.kind = TERN_PCB_TIMEWAIT;
        tw->pcb.laddr = so->pcb.laddr;
        tw->pcb.lport = so->pcb.lport;
        tw->pcb.faddr = so->pcb.faddr;
        tw->pcb.fport = so->pcb.fport;
        tw->pcb.connected = true;
        /* A bind to the port still meets the record, with the socket's
         * own reuse flags (Linux keeps sk_reuse in its buckets too). */
        tw->pcb.reuseaddr = so->pcb.reuseaddr;
        tw->pcb.reuseport = so->pcb.reuseport;
        tw->pcb.bound_addr = so->pcb.bound_addr;
        tw->pcb.bound_port = so->pcb.bound_port;
        tw->pcb.connect_port = so->pcb.connect_port;
        tw->id = so->id;
        tw->snd_nxt = tp->snd_nxt;
        tw->rcv_nxt = tp->rcv_nxt;
        tw->ts_ok = tp->ts_ok;
        tw->ts_recent = tp->ts_recent;
        tw->ts_offset = tp->ts_offset;
        uint32_t w = tern_tcp_rcv_window(tp) >> tp->rcv_wscale;
        tw->wnd = w > 65535 ? 65535 : (uint16_t)w;
        tw->rcv_wnd = (uint32_t)tw->wnd << tp->rcv_wscale;
        tw->snd_wscale = tp->snd_wscale;
        tw->ttl = so->ttl;
        tw->tos = so->tos;
        tern_timer_init(&tw->timer, tw_expire, "tcp-timewait");
    }
    struct tern_pcb_table *table = so->pcb.table;
    tern_tcp_drop(s, tp, 0); /* the 4-tuple leaves the table with the socket */
    if (!tw) {
        tern_count(s, TERN_C_DROP_TCP_TIME_WAIT_OVERFLOW);
        return;
    }
    if (tern_pcb_insert(s, table, &tw->pcb) < 0) {
        free(tw);
        tern_count(s, TERN_C_DROP_TCP_TIME_WAIT_OVERFLOW);
        return;
    }
    tern_list_push_back(&s->tcp_tw, &tw->node);
    s->tcp_timewait_count++;
    tern_count(s, TERN_C_TCP_TIME_WAIT);
    tern_timer_arm(s, &tw->timer, s->now + s->cfg.tcp_timewait_ns);
}

void tern_tcp_tw_free(struct tern_stack *s, struct tern_tcp_tw *tw)
{
    if (!TERN_PLANTED(tw_timer_left_armed))
        tern_timer_cancel(s, &tw->timer);
    tern_pcb_remove(s, &tw->pcb);
    tern_list_remove(&tw->node);
    s->tcp_timewait_count--;
    tern_timer_retire(s, &tw->timer, "TIME_WAIT record of socket #%llu",
                      (unsigned long long)tw->id);
    free(tw);
}

void tern_tcp_tw_restart(struct tern_stack *s, struct tern_tcp_tw *tw)
{
    tern_count(s, TERN_C_TCP_TIME_WAIT_RESTART);
    tern_timer_arm(s, &tw->timer, s->now + s->cfg.tcp_timewait_ns);
}

void tern_tcp_tw_send_ack(struct tern_stack *s, struct tern_tcp_tw *tw)
{
    struct tern_tcp_hdr h = {.sport = tw->pcb.lport, .dport = tw->pcb.fport,
                             .seq = tw->snd_nxt, .ack = tw->rcv_nxt, .flags = TERN_TCP_ACK,
                             .wnd = tw->wnd};
    if (tw->ts_ok) {
        h.opt.has_ts = true;
        h.opt.ts_val = (uint32_t)(s->now / TERN_NS_PER_MS) + tw->ts_offset;
        h.opt.ts_ecr = tw->ts_recent;
    }
    tern_tcp_emit_ctl(s, tw->pcb.laddr, tw->pcb.faddr, &h, tw->ttl, tw->tos);
}

void tern_tcp_tw_destroy_all(struct tern_stack *s)
{
    struct tern_list *it;
    while ((it = s->tcp_tw.next) != &s->tcp_tw)
        tern_tcp_tw_free(s, tern_container_of(it, struct tern_tcp_tw, node));
}

void tern_tcp_tw_dump(const struct tern_stack *s, FILE *f)
{
    const struct tern_list *it;
    uint64_t tick_ns = TERN_TIMER_TICK_NS;
    tern_list_for_each(it, &s->tcp_tw) {
        const struct tern_tcp_tw *tw = tern_container_of(it, struct tern_tcp_tw, node);
        char local[32], peer[32], ip[INET_ADDRSTRLEN];
        struct in_addr a = {.s_addr = htonl(tw->pcb.laddr)};
        snprintf(local, sizeof(local), "%s:%u", inet_ntop(AF_INET, &a, ip, sizeof(ip)),
                 tw->pcb.lport);
        a.s_addr = htonl(tw->pcb.faddr);
        snprintf(peer, sizeof(peer), "%s:%u", inet_ntop(AF_INET, &a, ip, sizeof(ip)),
                 tw->pcb.fport);
        long long left_ms = ((long long)tw->timer.expires_tick - (long long)s->wheel.now_tick) *
                            (long long)tick_ns / (long long)TERN_NS_PER_MS;
        fprintf(f, "%-6" PRIu64 " %-10s %-5s %-12s %-10s %-21s %-21s %6u %8u %6u expires in %lld ms\n",
                tw->id, "-", "tcp", "TIME_WAIT", "record", local, peer, 0u, 0u, 0u, left_ms);
    }
}
