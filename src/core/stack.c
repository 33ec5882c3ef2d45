#include "core/stack.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "link/ether.h"
#include "net/ipv4.h"
#include "sock/api_internal.h"
#include "transport/tcp/tcp_timewait.h"
#include "runtime/events.h"
#include "runtime/rt.h"

void tern_stack_config_default(struct tern_stack_config *cfg)
{
    *cfg = (struct tern_stack_config){
        .seed = 1,
        .max_sockets = 4096,
        .max_packets = 65536,
        .pkt_cache = 1024,
        .arp_cache_max = 1024,
        .arp_pending_bytes = 212992,
        .arp_reachable_ns = 60 * TERN_NS_PER_SEC,
        .arp_retry_ns = TERN_NS_PER_SEC,
        .arp_retries = 3,
        .reasm_max_bytes = 4u << 20,
        .reasm_timeout_ns = 30 * TERN_NS_PER_SEC,
        .icmp_rate_per_sec = 1000,
        .icmp_burst = 50,
        .ephemeral_lo = 49152,
        .ephemeral_hi = 65535,
        .ip_default_ttl = 64,
        .udp_rcvbuf = 212992,
        .udp_sndbuf = 212992,
        .tcp_rcvbuf = 262144,
        .tcp_sndbuf = 262144,
        .tcp_rcvbuf_max = 0, /* autotuning off: see stack.h */
        .tcp_sndbuf_max = 0,
        .tcp_timewait_ns = 60 * TERN_NS_PER_SEC,
        .tcp_timewait_max = 65536,
        .tcp_syncookies = 1,
        .tcp_event_ring = 8,
        .tcp_sack = true,
        .tcp_timestamps = true,
        .tcp_tlp = true,
        .tcp_congestion = TERN_TCP_CC_CUBIC,
    };
}

static int config_valid(const struct tern_stack_config *c)
{
    return c->max_sockets >= 1 && c->max_sockets <= (1u << 21) && c->max_packets >= 64 &&
           c->arp_cache_max >= 1 && c->arp_retries >= 1 && c->arp_retry_ns > 0 &&
           c->reasm_timeout_ns > 0 && c->ephemeral_lo >= 1 &&
           c->ephemeral_lo <= c->ephemeral_hi && c->ip_default_ttl >= 1 &&
           c->udp_rcvbuf >= 256 && c->udp_sndbuf >= 256 && c->tcp_rcvbuf >= 2048 &&
           c->tcp_sndbuf >= 2048 && c->tcp_rcvbuf_max <= (1u << 30) &&
           c->tcp_sndbuf_max <= (1u << 30) && c->tcp_timewait_ns >= TERN_NS_PER_MS &&
           c->tcp_timewait_ns <= 600 * TERN_NS_PER_SEC && c->tcp_syncookies <= 2 && c->tcp_event_ring <= 64 &&
           c->tcp_congestion <= TERN_TCP_CC_NEWRENO;
}

static void derive_key(struct tern_stack *s, struct tern_siphash_key *k)
{
    k->k0 = tern_rng_next(&s->rng);
    k->k1 = tern_rng_next(&s->rng);
}

struct tern_stack *tern_stack_new(const struct tern_stack_config *cfg)
{
    struct tern_stack_config def;
    if (!cfg) {
        tern_stack_config_default(&def);
        cfg = &def;
    }
    if (!config_valid(cfg)) {
        errno = EINVAL;
        return NULL;
    }
    struct tern_stack *s = calloc(1, sizeof(*s));
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    s->magic = TERN_STACK_MAGIC;
    s->control_fd = -1;
    s->route_gen = 1; /* the route cache's empty slots have generation 0 */
    s->cfg = *cfg;
    tern_rng_seed(&s->rng, cfg->seed);
    derive_key(s, &s->key_port);
    derive_key(s, &s->key_ipid);
    derive_key(s, &s->key_flow);
    derive_key(s, &s->key_tsoff);
    tern_rng_fill(&s->rng, s->ipid_table, sizeof(s->ipid_table));
    tern_rng_fill(&s->rng, s->port_table, sizeof(s->port_table));
    derive_key(s, &s->key_cookie); /* last: the others stay as they were */
    s->icmp_tokens_ns = (uint64_t)cfg->icmp_burst * TERN_NS_PER_SEC;
    tern_pkt_pool_init(&s->pool, cfg->pkt_cache, cfg->max_packets);
    tern_wheel_init(&s->wheel, 0);
    tern_arp_init(s);
    tern_reasm_init(s);
    tern_ipv4_init(s);
    tern_tcp_cc_setup(s->tcp_cc);
    for (size_t i = 0; i < TERN_COUNTER__COUNT; i++)
        if (strncmp(tern_counter_name(i), "drop.", 5) == 0)
            s->drop_bits[i >> 6] |= 1ull << (i & 63);
    tern_tcp_tw_init(s);
    tern_list_init(&s->socks.all);
    tern_list_init(&s->socks.reap);
    tern_list_init(&s->tx_pending);
    if (tern_pcb_table_init(&s->udp_pcbs, "udp", false) < 0 ||
        tern_pcb_table_init(&s->ping_pcbs, "icmp", false) < 0 ||
        tern_pcb_table_init(&s->tcp_pcbs, "tcp", true) < 0 ||
        tern_handles_init(&s->socks.handles, cfg->max_sockets) < 0) {
        tern_pcb_table_destroy(&s->udp_pcbs);
        tern_pcb_table_destroy(&s->ping_pcbs);
        tern_pcb_table_destroy(&s->tcp_pcbs);
        tern_handles_destroy(&s->socks.handles);
        free(s);
        errno = ENOMEM;
        return NULL;
    }
    return s;
}

void tern_stack_free(struct tern_stack *s)
{
    if (!s)
        return;
    TERN_ASSERT(s, s->magic == TERN_STACK_MAGIC, "freeing a stack twice or a corrupt one");
    /* Threaded: every blocked call returns ECANCELED and leaves, and the
     * runtime thread stops, before anything is freed. */
    if (s->rt)
        tern_rt_shutdown(s);
    TERN_ASSERT(s, tern_list_empty(&s->tx_pending),
                "frames left for a sender after the runtime stopped");
    s->in_teardown = true;
    s->dirty_n = 0; /* nobody is left to tell */
    /* Sockets first (they hold PCBs and queued packets), then the state
     * that holds timers and packets, so that nothing can fire or be
     * queued against what is about to go. */
    tern_sock_destroy_all(s);
    tern_tcp_tw_destroy_all(s);
    tern_reasm_destroy(s);
    tern_arp_destroy(s);
    tern_ipv4_destroy(s);
    struct tern_live live;
    tern_stack_live(s, &live);
    TERN_ASSERT(s, live.packets == 0 && live.sockets == 0 && live.timers == 0 &&
                       live.arp_entries == 0 && live.reasm_datagrams == 0 &&
                       live.tcp_timewait == 0 && live.tcp_requests == 0,
                "stack teardown leaked objects: %llu packets, %llu sockets, %llu timers, "
                "%llu arp entries, %llu reassembly queues",
                (unsigned long long)live.packets, (unsigned long long)live.sockets,
                (unsigned long long)live.timers, (unsigned long long)live.arp_entries,
                (unsigned long long)live.reasm_datagrams);
    tern_handles_destroy(&s->socks.handles);
    tern_pcb_table_destroy(&s->udp_pcbs);
    tern_pcb_table_destroy(&s->ping_pcbs);
    tern_pcb_table_destroy(&s->tcp_pcbs);
    tern_pkt_pool_destroy(&s->pool);
    tern_events_destroy(s);
    tern_capture_close(s);
    s->magic = 0;
    free(s);
}

tern_time_t tern_stack_now(const struct tern_stack *s)
{
    tern_rt_observe_begin(s);
    tern_time_t now = s->now;
    tern_rt_observe_end(s);
    return now;
}

static int receive_from(struct tern_stack *s, struct tern_iface *ifp)
{
    /* A link nothing outside the process can feed (no descriptor) knows
     * when it will have a frame: asked first, it saves allocating packets
     * for a poll or a batch it has nothing for. */
    bool link_knows = ifp->link->ops.next_deadline && tern_link_pollfd(ifp->link) < 0;
    int total = 0;
    /* Receive straight into packets sized for the link's MTU. Batches
     * start at one and double while the link keeps filling them, so an
     * idle poll costs one packet, not a whole batch. */
    size_t want = 1;
    for (;;) {
        if (link_knows && tern_link_next_deadline(ifp->link, s->now) > s->now)
            return total;
        struct tern_frame frames[TERN_RX_BATCH];
        struct tern_pkt *pkts[TERN_RX_BATCH];
        size_t have = 0;
        size_t frame_cap = (size_t)ifp->mtu + 14;
        size_t coalesced_max = ifp->link->info.rx_frame_max;
        if (coalesced_max > frame_cap)
            frame_cap = coalesced_max < TERN_LINK_MAX_FRAME ? coalesced_max : TERN_LINK_MAX_FRAME;
        for (; have < want; have++) {
            pkts[have] = tern_pkt_alloc(s, 0, frame_cap);
            if (!pkts[have])
                break;
            frames[have] = (struct tern_frame){
                .data = tern_pkt_data(pkts[have]), .len = 0, .cap = frame_cap};
        }
        size_t n = have ? tern_link_recv(ifp->link, frames, have, s->now) : 0;
        for (size_t i = n; i < have; i++)
            tern_pkt_free_take(s, pkts[i]);
        for (size_t i = 0; i < n; i++) {
            pkts[i]->len = (uint32_t)frames[i].len;
            pkts[i]->gso_size = frames[i].gso_size; /* a coalesced frame's segment size */
            if (frames[i].len > (size_t)ifp->mtu + 14)
                tern_count(s, TERN_C_LINK_RX_COALESCED);
            if (frame_cap > TERN_PKT_SMALL_CAP && frames[i].len <= TERN_PKT_SMALL_CAP) {
                /* A buffer for a coalesced frame holding an ordinary one
                 * (an ACK, a request): moved into a pool buffer, so that
                 * a queue charged by capacity is not charged 64 KiB. */
                struct tern_pkt *small = tern_pkt_copy(s, pkts[i], 0);
                if (small) {
                    tern_pkt_free_take(s, pkts[i]);
                    pkts[i] = small;
                    frames[i].data = tern_pkt_data(small);
                }
            }
            if (s->capture)
                tern_frame_csum_fill(&frames[i]); /* a pcap shows real checksums */
            if ((frames[i].flags & TERN_FRAME_CSUM_PENDING) ||
                (ifp->link->info.caps & TERN_LINK_CAP_RX_CSUM_OK))
                pkts[i]->csum = TERN_PKT_CSUM_PENDING;
            if (s->capture)
                tern_capture_frame(s, frames[i].data, frames[i].len);
            tern_count(s, TERN_C_LINK_RX_FRAMES);
            tern_ether_input_take(s, ifp, pkts[i]);
        }
        total += (int)n;
        if (n < have || have == 0)
            return total;
        if (want < TERN_RX_BATCH)
            want *= 2;
    }
}

int tern_stack_poll(struct tern_stack *s, tern_time_t now)
{
    struct tern_api_guard g = tern_api_enter(s);
    /* Time never goes back: a caller's clock hiccup is clamped. */
    if (now > s->now)
        s->now = now;
    int frames = 0;
    for (int i = 0; i < s->nifaces; i++)
        if (s->ifaces[i].used)
            frames += receive_from(s, &s->ifaces[i]);
    tern_ipv4_loopback_run(s);
    tern_wheel_advance(s, s->now);
    return tern_api_return(&g, frames);
}

tern_time_t tern_stack_next_deadline_locked(struct tern_stack *s)
{
    tern_time_t t = tern_wheel_next_deadline(&s->wheel);
    if (tern_ipv4_loopback_pending(s))
        t = s->now;
    for (int i = 0; i < s->nifaces; i++) {
        if (!s->ifaces[i].used)
            continue;
        tern_time_t lt = tern_link_next_deadline(s->ifaces[i].link, s->now);
        if (lt < t)
            t = lt;
    }
    return t;
}

tern_time_t tern_stack_next_deadline(struct tern_stack *s)
{
    struct tern_api_guard g = tern_api_enter(s);
    tern_time_t t = tern_stack_next_deadline_locked(s);
    tern_api_leave(g.s);
    return t;
}

void tern_why(struct tern_stack *s, const char *fmt, ...)
{
    if (s->why_set)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
    s->why_set = true;
}

int tern_api_fail_why(struct tern_api_guard *g, int err, const char *fmt, ...)
{
    struct tern_stack *s = g->s;
    pthread_t self = pthread_self();
    /* The thread that failed last is the likeliest to fail again. */
    struct tern_err_detail *d = &s->err_detail[s->err_last % TERN_ERR_SLOTS];
    if (!d->used || !pthread_equal(d->tid, self)) {
        d = NULL;
        for (int i = 0; i < TERN_ERR_SLOTS && !d; i++)
            if (s->err_detail[i].used && pthread_equal(s->err_detail[i].tid, self))
                d = &s->err_detail[i];
        if (!d) {
            /* A thread not seen before takes the next slot round the table. */
            d = &s->err_detail[s->err_next++ % TERN_ERR_SLOTS];
            d->tid = self;
            d->used = true;
        }
        s->err_last = (uint32_t)(d - s->err_detail);
    }
    d->err = err;
    d->fn = g->fn;
    d->msg[0] = 0;
    /* A reason is worded now (it may not survive the call); a plain
     * failure only when someone asks: EAGAIN in a busy loop costs no
     * formatting. */
    if (fmt || s->why_set) {
        const char *name = strerrorname_np(err);
        int n = snprintf(d->msg, sizeof(d->msg), "%s: %s: ", g->fn, name ? name : "?");
        if (n > 0 && (size_t)n < sizeof(d->msg)) {
            if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(d->msg + n, sizeof(d->msg) - (size_t)n, fmt, ap);
                va_end(ap);
            } else {
                snprintf(d->msg + n, sizeof(d->msg) - (size_t)n, "%s", s->why);
            }
        }
    }
    s->why_set = false;
    TERN_PROBE4(api_error, s, g->fn, err, d->msg);
    tern_api_leave(s);
    errno = err;
    return -1;
}

int tern_error_detail(struct tern_stack *s, char *buf, size_t len)
{
    struct tern_api_guard g = tern_api_enter(s);
    pthread_t self = pthread_self();
    int err = 0;
    if (buf && len)
        buf[0] = 0;
    for (int i = 0; i < TERN_ERR_SLOTS; i++) {
        const struct tern_err_detail *d = &s->err_detail[i];
        if (d->used && pthread_equal(d->tid, self)) {
            err = d->err;
            if (buf && len && d->msg[0]) {
                snprintf(buf, len, "%s", d->msg);
            } else if (buf && len) {
                const char *name = strerrorname_np(err);
                snprintf(buf, len, "%s: %s (%s)", d->fn, name ? name : "?", strerror(err));
            }
            break;
        }
    }
    tern_api_leave(g.s);
    return err;
}

void tern_api_leave(struct tern_stack *s)
{
    /* Every call and poll comes here; most leave nothing to deliver or
     * free, and the two checks are all they pay. */
    if (s->dirty_n || s->dirty_all)
        tern_events_run(s);
    if (!tern_list_empty(&s->socks.reap))
        tern_sock_reap(s);
    if (s->rt) {
        if (atomic_load_explicit(&s->rt->tx.has_done, memory_order_relaxed))
            tern_rt_tx_reap(s);
        tern_rt_leave(s);
    }
}

void tern_stack_live(const struct tern_stack *s, struct tern_live *out)
{
    tern_rt_observe_begin(s);
    out->packets = s->pool.live;
    out->sockets = s->socks.live;
    out->timers = s->wheel.armed;
    out->arp_entries = s->arp.count;
    out->reasm_datagrams = s->reasm.count;
    out->tcp_timewait = s->tcp_timewait_count;
    out->tcp_requests = s->tcp_req_count;
    tern_rt_observe_end(s);
}

void tern_drop_take(struct tern_stack *s, struct tern_pkt *p, enum tern_counter_id why)
{
    tern_count(s, why);
    tern_pkt_free_take(s, p);
}
