/* Text views of a stack for people: the socket table and the timers. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <pthread.h>

#include "core/stack.h"
#include "runtime/rt.h"
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

void tern_sockets_dump_nolock(const struct tern_stack *s, FILE *f)
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
        const char *proto = so->kind == SOCK_KIND_PING    ? "icmp"
                            : so->kind == SOCK_KIND_TCP   ? "tcp"
                            : so->kind == SOCK_KIND_EPOLL ? "epoll"
                                                          : "udp";
        const char *state = so->tcb ? tern_tcp_state_name(so->tcb->state) : "-";
        uint32_t rxq = so->tcb ? 0 : so->rcvq_count;
        uint32_t rxb = so->tcb ? tern_ring_len(&so->tcb->rcv) : so->rcvq_bytes;
        fprintf(f, "%-6" PRIu64 " %-10s %-5s %-12s %-10s %-21s %-21s %6u %8u %6" PRIu64
                   " %s%s%s%s%s\n",
                so->id, handle, proto, state,
                tern_sock_life_name(so->life), local, peer, rxq, rxb,
                so->rx_dropped, so->pcb.table ? "bound " : "", so->pcb.reuseaddr ? "reuseaddr " : "",
                so->pcb.reuseport ? "reuseport " : "", so->nonblock ? "nonblock " : "",
                so->so_error ? "error " : "");
        if (so->tcb && so->tcb->state == TCPS_LISTEN)
            tern_tcp_req_dump(s, so->tcb, f);
    }
    tern_tcp_tw_dump(s, f);
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

void tern_timers_dump_nolock(const struct tern_stack *s, FILE *f)
{
    struct timer_dump_ctx c = {.f = f, .now_tick = s->wheel.now_tick};
    fprintf(f, "%llu timers armed (now %llu ns)\n", (unsigned long long)s->wheel.armed,
            (unsigned long long)s->now);
    tern_wheel_for_each(&s->wheel, dump_timer, &c);
}

/* A started stack changes under its runtime thread: the public dumps read
 * it under the stack's lock (the panic path, already inside, does not). */
void tern_sockets_dump(const struct tern_stack *s, FILE *f)
{
    struct tern_runtime *rt = s->rt;
    if (rt)
        pthread_mutex_lock(&rt->lock);
    tern_sockets_dump_nolock(s, f);
    if (rt)
        pthread_mutex_unlock(&rt->lock);
}

void tern_timers_dump(const struct tern_stack *s, FILE *f)
{
    struct tern_runtime *rt = s->rt;
    if (rt)
        pthread_mutex_lock(&rt->lock);
    tern_timers_dump_nolock(s, f);
    if (rt)
        pthread_mutex_unlock(&rt->lock);
}
