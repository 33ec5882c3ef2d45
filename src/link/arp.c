#include "link/arp.h"

#include <stdlib.h>
#include <string.h>

#include "core/stack.h"
#include "link/ether.h"
#include "wire/arp.h"
#include "wire/eth.h"
#include "wire/ipv4.h"

static unsigned arp_bucket(uint32_t ip) { return (ip * 2654435761u) >> 24; }

void tern_arp_init(struct tern_stack *s)
{
    for (unsigned i = 0; i < TERN_ARP_BUCKETS; i++)
        tern_list_init(&s->arp.buckets[i]);
    s->arp.count = 0;
}

static struct tern_arp_entry *arp_find(struct tern_stack *s, int ifindex, uint32_t ip)
{
    struct tern_list *it;
    tern_list_for_each(it, &s->arp.buckets[arp_bucket(ip)]) {
        struct tern_arp_entry *e = tern_container_of(it, struct tern_arp_entry, hnode);
        if (e->ip == ip && e->ifindex == ifindex)
            return e;
    }
    return NULL;
}

static uint32_t pending_charge(const struct tern_pkt *p)
{
    return p->cap + (uint32_t)sizeof(*p);
}

static void arp_uncharge(struct tern_stack *s, struct tern_arp_entry *e, const struct tern_pkt *p)
{
    e->pending_bytes -= pending_charge(p);
    s->arp.pending_bytes -= pending_charge(p);
}

static void arp_entry_free(struct tern_stack *s, struct tern_arp_entry *e)
{
    tern_timer_cancel(s, &e->timer);
    struct tern_list *n;
    while ((n = tern_list_pop_front(&e->pending)) != NULL) {
        arp_uncharge(s, e, tern_pkt_of(n));
        tern_drop_take(s, tern_pkt_of(n), TERN_C_DROP_ARP_UNRESOLVED);
    }
    tern_list_remove(&e->hnode);
    s->arp.count--;
    tern_timer_retire(s, &e->timer, "ARP entry %u.%u.%u.%u", e->ip >> 24, (e->ip >> 16) & 255,
                      (e->ip >> 8) & 255, e->ip & 255);
    free(e);
}

static void arp_send(struct tern_stack *s, struct tern_iface *ifp, const struct tern_arp_msg *m,
                     const uint8_t dst[6])
{
    struct tern_pkt *p = tern_pkt_alloc(s, TERN_PKT_HEADROOM, TERN_ARP_LEN);
    if (!p)
        return;
    tern_arp_emit(tern_pkt_data(p), m);
    tern_count(s, m->op == TERN_ARP_REQUEST ? TERN_C_ARP_TX_REQUEST : TERN_C_ARP_TX_REPLY);
    tern_ether_output_take(s, ifp, dst, TERN_ETHERTYPE_ARP, p);
}

static void arp_request(struct tern_stack *s, struct tern_iface *ifp, uint32_t target)
{
    struct tern_arp_msg m = {.op = TERN_ARP_REQUEST, .spa = tern_iface_src_for(ifp, target),
                             .tpa = target};
    memcpy(m.sha, ifp->mac, 6);
    arp_send(s, ifp, &m, tern_eth_bcast_addr);
}

static void arp_timer(struct tern_stack *s, struct tern_timer *t)
{
    struct tern_arp_entry *e = tern_container_of(t, struct tern_arp_entry, timer);
    struct tern_iface *ifp = tern_iface_get(s, e->ifindex);
    if (e->state == ARP_REACHABLE || !ifp || e->requests_sent >= s->cfg.arp_retries) {
        /* Expired, or never answered: forget it (queued packets die
         * counted as unresolved). */
        arp_entry_free(s, e);
        return;
    }
    arp_request(s, ifp, e->ip);
    e->requests_sent++;
    tern_timer_arm(s, &e->timer, s->now + s->cfg.arp_retry_ns);
}

static struct tern_arp_entry *arp_entry_new(struct tern_stack *s, int ifindex, uint32_t ip)
{
    if (s->arp.count >= s->cfg.arp_cache_max)
        return NULL;
    struct tern_arp_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->ip = ip;
    e->ifindex = ifindex;
    e->state = ARP_INCOMPLETE;
    tern_list_init(&e->pending);
    tern_timer_init(&e->timer, arp_timer, "arp");
    tern_list_push_front(&s->arp.buckets[arp_bucket(ip)], &e->hnode);
    s->arp.count++;
    return e;
}

static void arp_resolved(struct tern_stack *s, struct tern_iface *ifp, struct tern_arp_entry *e,
                         const uint8_t mac[6])
{
    memcpy(e->mac, mac, 6);
    e->state = ARP_REACHABLE;
    e->requests_sent = 0;
    tern_timer_arm(s, &e->timer, s->now + s->cfg.arp_reachable_ns);
    struct tern_list *n;
    while ((n = tern_list_pop_front(&e->pending)) != NULL) {
        struct tern_pkt *p = tern_pkt_of(n);
        arp_uncharge(s, e, p);
        tern_ether_output_take(s, ifp, e->mac, TERN_ETHERTYPE_IPV4, p);
    }
}

static bool iface_has(const struct tern_iface *ifp, uint32_t addr)
{
    for (unsigned a = 0; a < ifp->naddrs; a++)
        if (ifp->addrs[a].addr == addr)
            return true;
    return false;
}

/* RFC 826's packet reception algorithm, with RFC 5227's probes. */
void tern_arp_input_take(struct tern_stack *s, struct tern_iface *ifp, struct tern_pkt *p)
{
    struct tern_arp_msg m;
    tern_count(s, TERN_C_ARP_RX);
    if (tern_arp_parse(tern_pkt_data(p), p->len, &m) < 0 ||
        (m.op != TERN_ARP_REQUEST && m.op != TERN_ARP_REPLY)) {
        tern_drop_take(s, p, TERN_C_DROP_ARP_MALFORMED);
        return;
    }
    if (tern_eth_is_group(m.sha) || m.spa == 0xffffffffu || tern_ipv4_is_multicast(m.spa)) {
        tern_drop_take(s, p, TERN_C_DROP_ARP_BAD_SENDER);
        return;
    }
    if (memcmp(m.sha, ifp->mac, 6) == 0) {
        tern_drop_take(s, p, TERN_C_DROP_ARP_OWN_MAC);
        return;
    }
    if (m.spa != 0 && iface_has(ifp, m.spa)) {
        /* Someone else uses one of our addresses. Counted so that it is
         * visible; defending the address (RFC 5227 section 2.4) is not
         * done yet. */
        tern_drop_take(s, p, TERN_C_ARP_CONFLICT);
        return;
    }
    bool for_us = iface_has(ifp, m.tpa);
    /* Merge: refresh what we know of the sender (a probe, spa 0, teaches
     * nothing). */
    struct tern_arp_entry *e = m.spa ? arp_find(s, ifp->index, m.spa) : NULL;
    if (e)
        arp_resolved(s, ifp, e, m.sha);
    else if (for_us && m.spa != 0 && (e = arp_entry_new(s, ifp->index, m.spa)) != NULL)
        arp_resolved(s, ifp, e, m.sha);
    if (!for_us) {
        if (!e)
            tern_count(s, TERN_C_DROP_ARP_NOT_FOR_US);
        tern_pkt_free_take(s, p);
        return;
    }
    if (m.op == TERN_ARP_REQUEST) {
        struct tern_arp_msg r = {.op = TERN_ARP_REPLY, .spa = m.tpa, .tpa = m.spa};
        memcpy(r.sha, ifp->mac, 6);
        memcpy(r.tha, m.sha, 6);
        arp_send(s, ifp, &r, m.sha);
    }
    tern_pkt_free_take(s, p);
}

void tern_arp_output_take(struct tern_stack *s, struct tern_iface *ifp, uint32_t hop,
                          struct tern_pkt *p)
{
    struct tern_arp_entry *e = arp_find(s, ifp->index, hop);
    if (e && e->state == ARP_REACHABLE) {
        tern_ether_output_take(s, ifp, e->mac, TERN_ETHERTYPE_IPV4, p);
        return;
    }
    if (!e) {
        e = arp_entry_new(s, ifp->index, hop);
        if (!e) {
            tern_drop_take(s, p, TERN_C_DROP_ARP_CACHE_FULL);
            return;
        }
        arp_request(s, ifp, hop);
        e->requests_sent = 1;
        tern_timer_arm(s, &e->timer, s->now + s->cfg.arp_retry_ns);
    }
    /* Charged by buffer, not by data: a queue of tiny packets must not pin
     * the pool. Bounded per neighbour and, across all of them, at
     * TERN_ARP_PENDING_TOTAL_FACTOR times that. */
    uint32_t charge = pending_charge(p);
    if (e->pending_bytes + charge > s->cfg.arp_pending_bytes ||
        s->arp.pending_bytes + charge >
            (uint64_t)s->cfg.arp_pending_bytes * TERN_ARP_PENDING_TOTAL_FACTOR) {
        tern_drop_take(s, p, TERN_C_DROP_ARP_PENDING_FULL);
        return;
    }
    e->pending_bytes += charge;
    s->arp.pending_bytes += charge;
    tern_list_push_back(&e->pending, &p->node);
}

void tern_arp_announce(struct tern_stack *s, struct tern_iface *ifp, uint32_t addr)
{
    struct tern_arp_msg m = {.op = TERN_ARP_REQUEST, .spa = addr, .tpa = addr};
    memcpy(m.sha, ifp->mac, 6);
    arp_send(s, ifp, &m, tern_eth_bcast_addr);
}

void tern_arp_flush_iface(struct tern_stack *s, int ifindex)
{
    for (unsigned b = 0; b < TERN_ARP_BUCKETS; b++) {
        struct tern_list *it, *tmp;
        tern_list_for_each_safe(it, tmp, &s->arp.buckets[b]) {
            struct tern_arp_entry *e = tern_container_of(it, struct tern_arp_entry, hnode);
            if (ifindex == 0 || e->ifindex == ifindex)
                arp_entry_free(s, e);
        }
    }
}

void tern_arp_destroy(struct tern_stack *s) { tern_arp_flush_iface(s, 0); }
