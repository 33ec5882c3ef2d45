#include "buf/pkt.h"

#include <tern/link.h>

#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/stack.h"

#define PKT_MAGIC_LIVE 0x9e7b0a11u
#define PKT_MAGIC_FREE 0xdeadf7eeu
#define PKT_POISON 0xdb

static const uint32_t class_cap[TERN_PKT_CLASSES] = {TERN_PKT_TINY_CAP, TERN_PKT_SMALL_CAP,
                                                      TERN_PKT_JUMBO_CAP};
_Static_assert(TERN_PKT_JUMBO_CAP >= TERN_LINK_MAX_FRAME + 128,
               "a jumbo buffer holds the largest frame with headroom");

void tern_pkt_pool_init(struct tern_pkt_pool *pool, uint32_t free_max, uint64_t live_max)
{
    for (int c = 0; c < TERN_PKT_CLASSES; c++) {
        tern_list_init(&pool->free_list[c]);
        pool->free_count[c] = 0;
    }
    pool->free_max = free_max;
    pool->live = 0;
    pool->live_max = live_max;
    pool->live_bytes = 0;
}

void tern_pkt_pool_destroy(struct tern_pkt_pool *pool)
{
    for (int c = 0; c < TERN_PKT_CLASSES; c++) {
        struct tern_list *n;
        while ((n = tern_list_pop_front(&pool->free_list[c])) != NULL)
            free(tern_pkt_of(n));
        pool->free_count[c] = 0;
    }
}

/* The class whose buffers hold `need` bytes, or -1 for malloc's. A
 * jumbo buffer is given only to what needs more than half of one, so
 * that a 4 KiB datagram is not charged 64 KiB where queues count
 * capacity. */
static int class_of(size_t need)
{
    for (int c = 0; c < TERN_PKT_CLASSES; c++)
        if (need <= class_cap[c])
            return c == TERN_PKT_CLASSES - 1 && need <= class_cap[c] / 2 ? -1 : c;
    return -1;
}

struct tern_pkt *tern_pkt_alloc(struct tern_stack *s, size_t headroom, size_t len)
{
    struct tern_pkt_pool *pool = &s->pool;
    if (pool->live >= pool->live_max || headroom + len > UINT32_MAX / 2) {
        tern_count(s, TERN_C_DROP_PKT_POOL_EMPTY);
        return NULL;
    }
    size_t need = headroom + len;
    int c = class_of(need);
    size_t cap = c >= 0 ? class_cap[c] : need;
    struct tern_pkt *p = NULL;
    struct tern_list *n = c >= 0 ? tern_list_pop_front(&pool->free_list[c]) : NULL;
    if (n) {
        p = tern_pkt_of(n);
        pool->free_count[c]--;
    } else {
        p = malloc(sizeof(*p) + cap);
    }
    if (!p) {
        tern_count(s, TERN_C_DROP_PKT_POOL_EMPTY);
        return NULL;
    }
    memset(p, 0, sizeof(*p));
    p->cap = (uint32_t)cap;
    p->buf = (uint8_t *)(p + 1);
    tern_list_init(&p->node);
    p->off = (uint32_t)headroom;
    p->len = (uint32_t)len;
    p->magic = PKT_MAGIC_LIVE;
    p->refcnt = 1;
    pool->live++;
    pool->live_bytes += p->cap;
    return p;
}

struct tern_pkt *tern_pkt_copy(struct tern_stack *s, const struct tern_pkt *p, size_t headroom)
{
    struct tern_pkt *c = tern_pkt_alloc(s, headroom, p->len);
    if (!c)
        return NULL;
    memcpy(tern_pkt_data(c), tern_pkt_data(p), p->len);
    c->ifindex = p->ifindex;
    c->ip_src = p->ip_src;
    c->ip_dst = p->ip_dst;
    c->ip_proto = p->ip_proto;
    c->ip_ttl = p->ip_ttl;
    c->ip_tos = p->ip_tos;
    c->link_bcast = p->link_bcast;
    c->csum = p->csum;
    c->src_port = p->src_port;
    c->gso_size = p->gso_size;
    c->stamp = p->stamp;
    return c;
}

void tern_pkt_ref(struct tern_stack *s, struct tern_pkt *p)
{
    TERN_ASSERT(s, p->magic == PKT_MAGIC_LIVE && p->refcnt > 0 && p->refcnt < UINT16_MAX,
                "ref of a freed or corrupt packet %p (magic %#x, refcnt %u)", (void *)p,
                p->magic, p->refcnt);
    p->refcnt++;
}

void tern_pkt_free_take(struct tern_stack *s, struct tern_pkt *p)
{
    struct tern_pkt_pool *pool = &s->pool;
    TERN_ASSERT(s, p->magic == PKT_MAGIC_LIVE && p->refcnt > 0,
                "packet %p freed twice or corrupt (magic %#x, refcnt %u)", (void *)p, p->magic,
                p->refcnt);
    if (--p->refcnt > 0)
        return;
    TERN_ASSERT(s, !tern_list_linked(&p->node), "packet %p freed while still on a queue",
                (void *)p);
    pool->live--;
    pool->live_bytes -= p->cap;
    p->magic = PKT_MAGIC_FREE;
#ifdef TERN_DEBUG
    /* Poison: a reader of freed data sees 0xdb, not plausible bytes.
     * Only as far as data reached (headroom and data, with room for a
     * trimmed tail such as Ethernet padding): a 64 KiB receive buffer
     * that held an ACK costs the ACK's bytes, not 64 KiB. */
    size_t used = (size_t)p->off + p->len + 256;
    memset(p->buf, PKT_POISON, used < p->cap ? used : p->cap);
#endif
    int c = class_of(p->cap);
    uint32_t keep = pool->free_max;
    if (c == TERN_PKT_CLASSES - 1 && keep > TERN_PKT_JUMBO_KEEP)
        keep = TERN_PKT_JUMBO_KEEP;
    if (c >= 0 && class_cap[c] == p->cap && pool->free_count[c] < keep) {
        tern_list_push_front(&pool->free_list[c], &p->node);
        pool->free_count[c]++;
    } else {
        free(p);
    }
}

void tern_pkt_queue_purge_take(struct tern_stack *s, struct tern_list *q)
{
    struct tern_list *n;
    while ((n = tern_list_pop_front(q)) != NULL)
        tern_pkt_free_take(s, tern_pkt_of(n));
}
