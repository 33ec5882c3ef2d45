#include "net/reasm.h"

#include <stdlib.h>
#include <string.h>

#include "core/stack.h"
#include "net/icmp.h"
#include "wire/icmp.h"
#include "wire/ipv4.h"

/* The largest payload a datagram can carry behind a minimal header. */
#define REASM_MAX_PAYLOAD (65535 - TERN_IPV4_HLEN)

void tern_reasm_init(struct tern_stack *s)
{
    for (unsigned i = 0; i < TERN_REASM_BUCKETS; i++)
        tern_list_init(&s->reasm.buckets[i]);
    tern_list_init(&s->reasm.lru);
    s->reasm.count = 0;
    s->reasm.mem = 0;
}

static unsigned reasm_bucket(struct tern_stack *s, uint32_t src, uint32_t dst, uint16_t id,
                             uint8_t proto)
{
    uint32_t key[3] = {src, dst, ((uint32_t)id << 8) | proto};
    return (unsigned)tern_siphash(&s->key_flow, key, sizeof(key)) % TERN_REASM_BUCKETS;
}

static void queue_free(struct tern_stack *s, struct tern_reasm_queue *q)
{
    tern_timer_cancel(s, &q->timer);
    tern_pkt_queue_purge_take(s, &q->frags);
    s->reasm.mem -= q->mem;
    s->reasm.count--;
    tern_list_remove(&q->hnode);
    tern_list_remove(&q->lru_node);
    tern_timer_retire(s, &q->timer, "reassembly queue of IP ID %u", q->id);
    free(q);
}

static void reasm_timeout(struct tern_stack *s, struct tern_timer *t)
{
    struct tern_reasm_queue *q = tern_container_of(t, struct tern_reasm_queue, timer);
    tern_count(s, TERN_C_DROP_IP_REASM_TIMEOUT);
    /* RFC 792/1122 section 3.2.2.4: time exceeded (code 1), only if the
     * first fragment came, since its header is what the error quotes. */
    if (!tern_list_empty(&q->frags)) {
        struct tern_pkt *first = tern_pkt_of(q->frags.next);
        if (first->frag_off == 0)
            tern_icmp_send_error(s, first, TERN_ICMP_TIME_EXCEEDED, 1, 0);
    }
    queue_free(s, q);
}

static struct tern_reasm_queue *queue_find(struct tern_stack *s, const struct tern_pkt *p,
                                           uint16_t id, bool create)
{
    unsigned b = reasm_bucket(s, p->ip_src.s_addr, p->ip_dst.s_addr, id, p->ip_proto);
    struct tern_list *it;
    tern_list_for_each(it, &s->reasm.buckets[b]) {
        struct tern_reasm_queue *q = tern_container_of(it, struct tern_reasm_queue, hnode);
        if (q->src == p->ip_src.s_addr && q->dst == p->ip_dst.s_addr && q->id == id &&
            q->proto == p->ip_proto)
            return q;
    }
    if (!create)
        return NULL;
    struct tern_reasm_queue *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->src = p->ip_src.s_addr;
    q->dst = p->ip_dst.s_addr;
    q->id = id;
    q->proto = p->ip_proto;
    tern_list_init(&q->frags);
    tern_timer_init(&q->timer, reasm_timeout, "ip-reasm");
    tern_timer_arm(s, &q->timer, s->now + s->cfg.reasm_timeout_ns);
    tern_list_push_back(&s->reasm.buckets[b], &q->hnode);
    tern_list_push_back(&s->reasm.lru, &q->lru_node);
    s->reasm.count++;
    return q;
}

/* Discard a datagram whose fragments contradict each other. */
static struct tern_pkt *reject(struct tern_stack *s, struct tern_reasm_queue *q,
                               struct tern_pkt *p, enum tern_counter_id why)
{
    tern_drop_take(s, p, why);
    if (q)
        queue_free(s, q);
    return NULL;
}

static struct tern_pkt *assemble(struct tern_stack *s, struct tern_reasm_queue *q)
{
    struct tern_pkt *first = tern_pkt_of(q->frags.next);
    struct tern_pkt *whole = tern_pkt_alloc(s, TERN_PKT_HEADROOM, q->total_len);
    if (!whole) {
        queue_free(s, q);
        return NULL;
    }
    whole->ifindex = first->ifindex;
    whole->ip_src = first->ip_src;
    whole->ip_dst = first->ip_dst;
    whole->ip_proto = first->ip_proto;
    whole->ip_ttl = first->ip_ttl;
    whole->ip_tos = first->ip_tos;
    whole->link_bcast = first->link_bcast;
    whole->stamp = s->now;
    struct tern_list *it;
    tern_list_for_each(it, &q->frags) {
        struct tern_pkt *f = tern_pkt_of(it);
        memcpy(tern_pkt_data(whole) + f->frag_off, tern_pkt_data(f), f->len);
    }
    /* A header for the whole datagram, in the headroom, so that an ICMP
     * error about it can quote it like any other. */
    struct tern_ipv4_hdr h = {.hlen = TERN_IPV4_HLEN, .tos = whole->ip_tos,
                              .total_len = (uint16_t)(q->total_len + TERN_IPV4_HLEN),
                              .id = q->id, .ttl = whole->ip_ttl, .proto = q->proto,
                              .src = q->src, .dst = q->dst};
    whole->l3_off = whole->off - TERN_IPV4_HLEN;
    tern_ipv4_emit(whole->buf + whole->l3_off, &h);
    tern_count(s, TERN_C_IP_REASM_OK);
    queue_free(s, q);
    return whole;
}

struct tern_pkt *tern_reasm_input_take(struct tern_stack *s, struct tern_pkt *p, uint16_t id,
                                       uint32_t offset, int more)
{
    uint32_t end = offset + p->len;
    if (more && (p->len == 0 || p->len % 8 != 0))
        return reject(s, NULL, p, TERN_C_DROP_IP_REASM_BAD_LEN);
    if (end > REASM_MAX_PAYLOAD)
        return reject(s, queue_find(s, p, id, false), p, TERN_C_DROP_IP_REASM_TOO_BIG);
    struct tern_reasm_queue *q = queue_find(s, p, id, true);
    if (!q) {
        tern_drop_take(s, p, TERN_C_DROP_IP_REASM_MEMORY);
        return NULL;
    }
    /* Bounded memory (DESIGN.md rule 7): evict the datagrams touched
     * longest ago, never the one this fragment belongs to. */
    while (s->reasm.mem + p->cap > s->cfg.reasm_max_bytes) {
        struct tern_reasm_queue *old =
            tern_container_of(s->reasm.lru.next, struct tern_reasm_queue, lru_node);
        if (old == q)
            break;
        tern_count(s, TERN_C_DROP_IP_REASM_EVICTED);
        queue_free(s, old);
    }
    if (s->reasm.mem + p->cap > s->cfg.reasm_max_bytes) {
        /* This datagram alone needs more than the whole budget. */
        return reject(s, q, p, TERN_C_DROP_IP_REASM_MEMORY);
    }
    tern_list_remove(&q->lru_node);
    tern_list_push_back(&s->reasm.lru, &q->lru_node);
    if (!more) {
        if (q->total_len && q->total_len != end)
            return reject(s, q, p, TERN_C_DROP_IP_REASM_OVERLAP);
        if (!tern_list_empty(&q->frags)) {
            struct tern_pkt *last = tern_pkt_of(q->frags.prev);
            if (last->frag_off + last->len > end)
                return reject(s, q, p, TERN_C_DROP_IP_REASM_OVERLAP);
        }
        q->total_len = end;
    } else if (q->total_len && end > q->total_len) {
        return reject(s, q, p, TERN_C_DROP_IP_REASM_OVERLAP);
    }
    /* Find the place in offset order; any overlap but an exact duplicate
     * ends the datagram (RFC 5722's rule, applied to IPv4). */
    struct tern_list *pos = &q->frags, *it;
    tern_list_for_each(it, &q->frags) {
        struct tern_pkt *f = tern_pkt_of(it);
        uint32_t fend = f->frag_off + f->len;
        if (f->frag_off == offset && fend == end) {
            tern_drop_take(s, p, TERN_C_DROP_IP_REASM_DUPLICATE);
            return NULL;
        }
        if (offset < fend && f->frag_off < end)
            return reject(s, q, p, TERN_C_DROP_IP_REASM_OVERLAP);
        if (f->frag_off > offset) {
            pos = it;
            break;
        }
    }
    p->frag_off = offset;
    tern_list_insert_before(pos, &p->node);
    q->mem += p->cap;
    s->reasm.mem += p->cap;
    if (q->total_len == 0)
        return NULL;
    uint32_t expect = 0;
    tern_list_for_each(it, &q->frags) {
        struct tern_pkt *f = tern_pkt_of(it);
        if (f->frag_off != expect)
            return NULL;
        expect += f->len;
    }
    return expect == q->total_len ? assemble(s, q) : NULL;
}

void tern_reasm_destroy(struct tern_stack *s)
{
    for (unsigned b = 0; b < TERN_REASM_BUCKETS; b++) {
        struct tern_list *it, *tmp;
        tern_list_for_each_safe(it, tmp, &s->reasm.buckets[b])
            queue_free(s, tern_container_of(it, struct tern_reasm_queue, hnode));
    }
}
