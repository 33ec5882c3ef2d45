/* Views of a stack for people and programs: the socket table (text like
 * `ss -tanei`, and JSON), a connection's recent events, per-state gauges,
 * the timers. The public calls take the stack's lock in threaded mode;
 * the _locked ones are for callers already inside (a panic). */
#include <arpa/inet.h>
#include <inttypes.h>
#include <string.h>

#include "core/stack.h"
#include "runtime/rt.h"
#include "sock/api_internal.h"
#include "transport/tcp/tcp.h"

static void fmt_ep(char *buf, size_t n, uint32_t addr, uint16_t port)
{
    struct in_addr a = {.s_addr = htonl(addr)};
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, ip, sizeof(ip));
    if (port)
        snprintf(buf, n, "%s:%u", ip, port);
    else
        snprintf(buf, n, "%s:*", ip);
}

static const char *proto_name(const struct tern_socket *so)
{
    switch (so->kind) {
    case SOCK_KIND_PING: return "icmp";
    case SOCK_KIND_TCP: return "tcp";
    case SOCK_KIND_EPOLL: return "epoll";
    default: return "udp";
    }
}

/* Milliseconds until a TCP deadline, or -1 if it is off. */
static long long ms_left(const struct tern_stack *s, uint64_t deadline)
{
    if (!deadline)
        return -1;
    return deadline > s->now ? (long long)((deadline - s->now) / TERN_NS_PER_MS) : 0;
}

/* A timer kind's name; the retransmission deadline says "probe" while
 * it is a tail loss probe's timeout rather than the RTO. */
static const char *timer_label(const struct tern_tcpcb *tp, unsigned k)
{
    return k == TERN_TCPT_REXMT && tp->tlp_armed ? "probe" : tern_tcp_timer_name(k);
}

static void tcp_details(const struct tern_stack *s, const struct tern_socket *so, FILE *f)
{
    const struct tern_tcpcb *tp = so->tcb;
    if (tp->state == TCPS_LISTEN) {
        fprintf(f, "\tbacklog:%u synq:%u acceptq:%u cc:%s\n", tp->lq->backlog, tp->lq->req_q_len,
                tp->lq->accept_q_len, s->tcp_cc[tp->cc].name);
        return;
    }
    if (!tp->opened)
        return;
    uint32_t mss = tp->mss ? tp->mss : 1;
    fprintf(f, "\tcc:%s wscale:%u,%u%s%s rto:%.1fms rtt:%.3f/%.3fms mss:%u cwnd:%u", 
            s->tcp_cc[tp->cc].name, tp->snd_wscale, tp->rcv_wscale, tp->sack_ok ? " sack" : "",
            tp->ts_ok ? " ts" : "", (double)tp->rto / 1e6, (double)tp->srtt / 1e6,
            (double)tp->rttvar / 1e6, tp->mss, tp->cwnd / mss);
    if (tp->ssthresh != UINT32_MAX)
        fprintf(f, " ssthresh:%u", tp->ssthresh / mss);
    /* The buffers' limits (what SO_SNDBUF/SO_RCVBUF read, autotuning
     * included), as ss -m shows tb and rb. */
    fprintf(f, " unacked:%u retrans:%u/%u sndq:%u/%u rcvq:%u/%u ooo:%u snd_wnd:%u",
            tp->snd_max - tp->snd_una, tp->retransmits, tp->total_retransmits,
            tern_ring_len(&tp->snd), so->sndbuf, tern_ring_len(&tp->rcv), so->rcvbuf,
            tern_tcp_ooo_held(tp), tp->snd_wnd);
    if (tp->reordering != TERN_TCP_DUPTHRESH)
        fprintf(f, " reordering:%u", tp->reordering); /* as ss, when not the default */
    if (tp->in_recovery)
        fprintf(f, " recovery:%s", tp->sack_recovery ? "sack" : "newreno");
    if (tern_tcp_sack_bytes(&tp->sackb))
        fprintf(f, " sacked:%u", tern_tcp_sack_bytes(&tp->sackb));
    fprintf(f, " timers:");
    bool any = false;
    for (unsigned k = 0; k < TERN_TCPT__COUNT; k++) {
        if (!tp->deadline[k])
            continue;
        fprintf(f, "%s%s(%lldms)", any ? "," : "", timer_label(tp, k), ms_left(s, tp->deadline[k]));
        any = true;
    }
    if (!any)
        fprintf(f, "-");
    fprintf(f, " events:%u\n", tp->events_next);
}

struct pmtu_dump {
    FILE *f;
    bool json, any;
};

static void pmtu_line(uint32_t dst, uint32_t mtu, uint64_t left_ns, void *arg)
{
    struct pmtu_dump *d = arg;
    char a[INET_ADDRSTRLEN];
    struct in_addr in = {.s_addr = htonl(dst)};
    inet_ntop(AF_INET, &in, a, sizeof(a));
    if (d->json) {
        fprintf(d->f, "%s{\"dst\":\"%s\",\"mtu\":%u,\"ms_left\":%" PRIu64 "}",
                d->any ? "," : "", a, mtu, left_ns / 1000000);
    } else {
        if (!d->any)
            fprintf(d->f, "path MTUs learned (RFC 1191):\n");
        fprintf(d->f, "  %-15s mtu %u, %" PRIu64 " s left\n", a, mtu, left_ns / 1000000000);
    }
    d->any = true;
}

static void json_str(FILE *f, const char *key, const char *v, bool comma);

/* What a link does beside moving frames, as `ethtool -k` names it. */
static void fmt_offloads(char *buf, size_t n, const struct tern_link *l)
{
    uint32_t caps = l->info.caps;
    snprintf(buf, n, "%s%s%s%s", (caps & TERN_LINK_CAP_TX_CSUM) ? "tx-csum," : "",
             (caps & TERN_LINK_CAP_TSO) ? "tso," : "",
             l->info.rx_frame_max > l->info.mtu + 14u ? "gro," : "",
             (caps & TERN_LINK_CAP_RX_CSUM_OK) ? "rx-csum," : "");
    size_t len = strlen(buf);
    if (len)
        buf[len - 1] = 0;
    else
        snprintf(buf, n, "none");
}

/* The interfaces, as `ip -s link` shows them: link, MTU, offloads,
 * addresses and the link's own frame counts. */
static void ifaces_dump(const struct tern_stack *s, FILE *f, bool json)
{
    bool any = false;
    for (int i = 0; i < TERN_MAX_IFACES; i++) {
        const struct tern_iface *ifp = &s->ifaces[i];
        if (!ifp->used)
            continue;
        const struct tern_link *l = ifp->link;
        char off[48], addrs[TERN_MAX_IF_ADDRS * 24] = "", a[INET_ADDRSTRLEN];
        fmt_offloads(off, sizeof(off), l);
        size_t used = 0;
        for (unsigned k = 0; k < ifp->naddrs && used < sizeof(addrs); k++) {
            struct in_addr in = {.s_addr = htonl(ifp->addrs[k].addr)};
            inet_ntop(AF_INET, &in, a, sizeof(a));
            int w = snprintf(addrs + used, sizeof(addrs) - used,
                             json ? "%s\"%s/%u\"" : "%s%s/%u", k ? (json ? "," : " ") : "", a,
                             ifp->addrs[k].prefixlen);
            used += w > 0 ? (size_t)w : 0;
        }
        tern_rt_tx_stats_begin(s); /* a sender outside the lock updates them */
        const struct tern_link_stats st_now = l->stats;
        tern_rt_tx_stats_end(s);
        const struct tern_link_stats *st = &st_now;
        if (json) {
            fprintf(f, "%s{\"index\":%d,", any ? "," : "", ifp->index);
            json_str(f, "link", l->info.name, false);
            fprintf(f, ",\"mtu\":%u,\"offloads\":\"%s\",\"addrs\":[%s],"
                       "\"rx_frames\":%" PRIu64 ",\"rx_dropped\":%" PRIu64
                       ",\"tx_frames\":%" PRIu64 ",\"tx_dropped\":%" PRIu64 "}",
                    ifp->mtu, off, addrs, st->rx_frames, st->rx_dropped, st->tx_frames,
                    st->tx_dropped);
        } else {
            if (!any)
                fprintf(f, "interfaces:\n");
            fprintf(f, "  %d %s mtu %u offloads:%s %s; rx %" PRIu64 " frames (%" PRIu64
                       " dropped), tx %" PRIu64 " frames (%" PRIu64 " dropped)\n",
                    ifp->index, l->info.name[0] ? l->info.name : "-", ifp->mtu, off,
                    addrs[0] ? addrs : "-", st->rx_frames, st->rx_dropped, st->tx_frames,
                    st->tx_dropped);
        }
        any = true;
    }
}

void tern_sockets_dump_locked(const struct tern_stack *s, FILE *f, bool events)
{
    fprintf(f, "%-6s %-10s %-5s %-12s %-10s %-21s %-21s %6s %8s %6s %s\n", "id", "handle",
            "proto", "state", "refs", "local", "peer", "rx-q", "rx-bytes", "drops", "flags");
    const struct tern_list *it;
    tern_list_for_each(it, &s->socks.all) {
        const struct tern_socket *so = tern_container_of(it, struct tern_socket, all_node);
        char local[32], peer[32], handle[16];
        fmt_ep(local, sizeof(local), so->pcb.laddr, so->pcb.lport);
        if (so->pcb.connected)
            fmt_ep(peer, sizeof(peer), so->pcb.faddr, so->pcb.fport);
        else
            snprintf(peer, sizeof(peer), "*:*");
        if (so->handle >= 0)
            snprintf(handle, sizeof(handle), "%#x", (unsigned)so->handle);
        else
            snprintf(handle, sizeof(handle), "-");
        const char *state = so->tcb ? tern_tcp_state_name(so->tcb->state) : "-";
        const struct tern_sock_dgram *dg = tern_sock_is_dgram(so) ? tern_sock_dg_const(so) : NULL;
        uint32_t rxq = dg ? dg->rcvq_count : 0;
        uint32_t rxb = so->tcb ? tern_ring_len(&so->tcb->rcv) : dg ? dg->rcvq_bytes : 0;
        fprintf(f, "%-6" PRIu64 " %-10s %-5s %-12s %-10s %-21s %-21s %6u %8u %6" PRIu64
                   " %s%s%s%s%s\n",
                so->id, handle, proto_name(so), state,
                tern_sock_life_name(so->life), local, peer, rxq, rxb,
                dg ? dg->rx_dropped : 0, so->pcb.table ? "bound " : "", so->pcb.reuseaddr ? "reuseaddr " : "",
                so->pcb.reuseport ? "reuseport " : "", so->nonblock ? "nonblock " : "",
                so->so_error ? "error " : "");
        if (so->tcb) {
            tcp_details(s, so, f);
            if (events && so->tcb->events_next)
                tern_tcp_events_print(s, so->tcb, f, "\t  ");
            if (so->tcb->state == TCPS_LISTEN)
                tern_tcp_req_dump(s, so->tcb, f);
        }
    }
    tern_tcp_tw_dump(s, f);
    struct pmtu_dump pd = {.f = f};
    tern_pmtu_each(s, pmtu_line, &pd);
    ifaces_dump(s, f, false);
}

static const struct tern_socket *sock_by_id(const struct tern_stack *s, uint64_t id)
{
    const struct tern_list *it;
    tern_list_for_each(it, &s->socks.all) {
        const struct tern_socket *so = tern_container_of(it, struct tern_socket, all_node);
        if (so->id == id)
            return so;
    }
    return NULL;
}

int tern_socket_events_dump(struct tern_stack *s, uint64_t sock_id, FILE *f)
{
    struct tern_api_guard g = tern_api_enter(s);
    const struct tern_socket *so = sock_by_id(s, sock_id);
    if (!so)
        return tern_api_fail_why(&g, ENOENT, "no socket #%" PRIu64, sock_id);
    if (!so->tcb)
        return tern_api_fail_why(&g, EOPNOTSUPP, "socket #%" PRIu64 " is not TCP", sock_id);
    fprintf(f, "socket #%" PRIu64 " %s, %u events recorded, the last %u:\n", sock_id,
            tern_tcp_state_name(so->tcb->state), so->tcb->events_next,
            so->tcb->events_next < so->tcb->events_cap ? so->tcb->events_next
                                                       : so->tcb->events_cap);
    tern_tcp_events_print(s, so->tcb, f, "  ");
    return tern_api_return(&g, 0);
}

/* ---- Gauges ---- */

static void count_states(const struct tern_stack *s, uint64_t n[TCPS_TIME_WAIT + 1])
{
    memset(n, 0, sizeof(uint64_t) * (TCPS_TIME_WAIT + 1));
    const struct tern_list *it;
    tern_list_for_each(it, &s->socks.all) {
        const struct tern_socket *so = tern_container_of(it, struct tern_socket, all_node);
        if (so->tcb && so->life != SOCK_LIFE_DEAD && (so->tcb->opened || so->tcb->state == TCPS_LISTEN))
            n[so->tcb->state]++;
    }
    n[TCPS_SYN_RECEIVED] += s->tcp_req_count;
    n[TCPS_TIME_WAIT] += s->tcp_timewait_count;
}

void tern_gauges_dump(const struct tern_stack *s, FILE *f)
{
    tern_rt_observe_begin(s);
    uint64_t n[TCPS_TIME_WAIT + 1];
    count_states(s, n);
    for (int st = TCPS_LISTEN; st <= TCPS_TIME_WAIT; st++) {
        char name[48];
        snprintf(name, sizeof(name), "gauge.tcp.%s", tern_tcp_state_name(st));
        for (char *c = name; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        fprintf(f, "%-32s %12" PRIu64 "  TCP connections in this state now\n", name, n[st]);
    }
    fprintf(f, "%-32s %12" PRIu64 "  sockets alive\n", "gauge.sockets", s->socks.live);
    fprintf(f, "%-32s %12" PRIu64 "  packet buffers alive\n", "gauge.packets", s->pool.live);
    fprintf(f, "%-32s %12" PRIu64 "  timers armed\n", "gauge.timers", s->wheel.armed);
    tern_rt_observe_end(s);
}

/* ---- JSON ---- */

static void json_str(FILE *f, const char *key, const char *v, bool comma)
{
    fprintf(f, "\"%s\":\"", key);
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            fputc('\\', f);
        if ((unsigned char)*v < 0x20)
            fprintf(f, "\\u%04x", (unsigned char)*v);
        else
            fputc(*v, f);
    }
    fprintf(f, "\"%s", comma ? "," : "");
}

static void json_tcp(const struct tern_stack *s, const struct tern_tcpcb *tp, FILE *f)
{
    fprintf(f, ",\"tcp\":{");
    json_str(f, "cc", s->tcp_cc[tp->cc].name, true);
    fprintf(f, "\"mss\":%u,\"snd_wscale\":%u,\"rcv_wscale\":%u,\"sack\":%s,\"timestamps\":%s,",
            tp->mss, tp->snd_wscale, tp->rcv_wscale, tp->sack_ok ? "true" : "false",
            tp->ts_ok ? "true" : "false");
    fprintf(f, "\"srtt_us\":%" PRIu64 ",\"rttvar_us\":%" PRIu64 ",\"rto_us\":%" PRIu64 ",",
            tp->srtt / 1000, tp->rttvar / 1000, tp->rto / 1000);
    fprintf(f, "\"cwnd\":%u,\"ssthresh\":%u,\"snd_wnd\":%u,\"unacked\":%u,", tp->cwnd,
            tp->ssthresh == UINT32_MAX ? 0 : tp->ssthresh, tp->snd_wnd, tp->snd_max - tp->snd_una);
    fprintf(f, "\"retransmits\":%u,\"total_retransmits\":%u,\"reordering\":%u,",
            tp->retransmits, tp->total_retransmits, tp->reordering);
    fprintf(f, "\"sndq\":%u,\"rcvq\":%u,\"ooo\":%u,\"sacked\":%u,\"recovery\":\"%s\",",
            tern_ring_len(&tp->snd), tern_ring_len(&tp->rcv), tern_tcp_ooo_held(tp),
            tern_tcp_sack_bytes(&tp->sackb),
            tp->in_recovery ? (tp->sack_recovery ? "sack" : "newreno") : "none");
    if (tp->state == TCPS_LISTEN)
        fprintf(f, "\"backlog\":%u,\"synq\":%u,\"acceptq\":%u,", tp->lq->backlog, tp->lq->req_q_len,
                tp->lq->accept_q_len);
    fprintf(f, "\"timers_ms\":{");
    bool any = false;
    for (unsigned k = 0; k < TERN_TCPT__COUNT; k++) {
        if (!tp->deadline[k])
            continue;
        fprintf(f, "%s\"%s\":%lld", any ? "," : "", timer_label(tp, k), ms_left(s, tp->deadline[k]));
        any = true;
    }
    fprintf(f, "},\"events\":[");
    uint32_t cap = tp->events_cap, n = tp->events_next < cap ? tp->events_next : cap;
    for (uint32_t i = 0; i < n; i++) {
        const struct tern_tcp_event *e = &tp->events[(tp->events_next - n + i) % cap];
        bool segment = e->ev == TERN_TCPE_RX || e->ev == TERN_TCPE_TX;
        fprintf(f, "%s{\"t_us\":%u,\"ev\":\"%s\",\"state\":\"%s\",\"seq\":%u,\"ack\":%u,"
                   "\"wnd\":%u,\"len\":%u,\"flags\":%u,\"extra\":%u}",
                i ? "," : "", (unsigned)e->t_us, tern_tcp_ev_name(e->ev),
                tern_tcp_state_name(e->state), (unsigned)e->seq, (unsigned)e->ack,
                segment ? (unsigned)e->aux : 0u, (unsigned)e->len, (unsigned)e->flags,
                segment ? 0u : (unsigned)e->aux);
    }
    fprintf(f, "]}");
}

void tern_sockets_dump_json(const struct tern_stack *s, FILE *f)
{
    tern_rt_observe_begin(s);
    fprintf(f, "{\"now_ns\":%" PRIu64 ",\"sockets\":[", s->now);
    bool first = true;
    const struct tern_list *it;
    tern_list_for_each(it, &s->socks.all) {
        const struct tern_socket *so = tern_container_of(it, struct tern_socket, all_node);
        char local[32], peer[32];
        fmt_ep(local, sizeof(local), so->pcb.laddr, so->pcb.lport);
        if (so->pcb.connected)
            fmt_ep(peer, sizeof(peer), so->pcb.faddr, so->pcb.fport);
        else
            snprintf(peer, sizeof(peer), "*:*");
        fprintf(f, "%s{\"id\":%" PRIu64 ",\"handle\":%d,", first ? "" : ",", so->id, so->handle);
        first = false;
        json_str(f, "proto", proto_name(so), true);
        json_str(f, "state", so->tcb ? tern_tcp_state_name(so->tcb->state) : "-", true);
        json_str(f, "refs", tern_sock_life_name(so->life), true);
        json_str(f, "local", local, true);
        json_str(f, "peer", peer, false);
        fprintf(f, ",\"rcvbuf\":%u,\"sndbuf\":%u,\"so_error\":%d", so->rcvbuf, so->sndbuf,
                so->so_error);
        if (so->tcb)
            json_tcp(s, so->tcb, f);
        else if (tern_sock_is_dgram(so))
            fprintf(f, ",\"rcvq_datagrams\":%u,\"rcvq_bytes\":%u,\"rx_dropped\":%" PRIu64,
                    tern_sock_dg_const(so)->rcvq_count, tern_sock_dg_const(so)->rcvq_bytes,
                    tern_sock_dg_const(so)->rx_dropped);
        fputc('}', f);
    }
    fprintf(f, "],\"timewait\":[");
    first = true;
    tern_list_for_each(it, &s->tcp_tw) {
        const struct tern_tcp_tw *tw = tern_container_of(it, struct tern_tcp_tw, node);
        char local[32], peer[32];
        fmt_ep(local, sizeof(local), tw->pcb.laddr, tw->pcb.lport);
        fmt_ep(peer, sizeof(peer), tw->pcb.faddr, tw->pcb.fport);
        fprintf(f, "%s{\"from_socket\":%" PRIu64 ",", first ? "" : ",", tw->id);
        first = false;
        json_str(f, "local", local, true);
        json_str(f, "peer", peer, false);
        fputc('}', f);
    }
    fprintf(f, "],\"pmtu\":[");
    struct pmtu_dump pd = {.f = f, .json = true};
    tern_pmtu_each(s, pmtu_line, &pd);
    uint64_t n[TCPS_TIME_WAIT + 1];
    count_states(s, n);
    fprintf(f, "],\"interfaces\":[");
    ifaces_dump(s, f, true);
    fprintf(f, "],\"tcp_states\":{");
    for (int st = TCPS_LISTEN; st <= TCPS_TIME_WAIT; st++)
        fprintf(f, "%s\"%s\":%" PRIu64, st == TCPS_LISTEN ? "" : ",", tern_tcp_state_name(st), n[st]);
    fprintf(f, "}}\n");
    tern_rt_observe_end(s);
}

struct timer_dump_ctx {
    FILE *f;
    uint64_t now_tick;
};

static void dump_timer(const struct tern_timer *t, void *arg)
{
    struct timer_dump_ctx *c = arg;
    fprintf(c->f, "  %-12s due in %lld ms\n", t->name ? t->name : "?",
            (long long)t->expires_tick - (long long)c->now_tick);
}

void tern_timers_dump_locked(const struct tern_stack *s, FILE *f)
{
    struct timer_dump_ctx c = {.f = f, .now_tick = s->wheel.now_tick};
    fprintf(f, "%llu timers armed (now %llu ns)\n", (unsigned long long)s->wheel.armed,
            (unsigned long long)s->now);
    tern_wheel_for_each(&s->wheel, dump_timer, &c);
}

/* From any thread: under the lock of a started stack (runtime/rt.h). */
void tern_sockets_dump(const struct tern_stack *s, FILE *f)
{
    tern_rt_observe_begin(s);
    tern_sockets_dump_locked(s, f, false);
    tern_rt_observe_end(s);
}

void tern_timers_dump(const struct tern_stack *s, FILE *f)
{
    tern_rt_observe_begin(s);
    tern_timers_dump_locked(s, f);
    tern_rt_observe_end(s);
}
