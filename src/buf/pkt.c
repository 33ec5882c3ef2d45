#include "buf/pkt.h"

#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/stack.h"

#define PKT_MAGIC_LIVE 0x9e7b0a11u
#define PKT_MAGIC_FREE 0xdeadf7eeu
#define PKT_POISON 0xdb

void tern_pkt_pool_init(struct tern_pkt_pool *pool, uint32_t free_max, uint64_t live_max)
{
    tern_list_init(&pool->free_small);
    pool->free_count = 0;
    pool->free_max = free_max;
    pool->live = 0;
    pool->live_max = live_max;
    pool->live_bytes = 0;
}

void tern_pkt_pool_destroy(struct tern_pkt_pool *pool)
{
    struct tern_list *n;
    while ((n = tern_list_pop_front(&pool->free_small)) != NULL)
        free(tern_pkt_of(n));
    pool->free_count = 0;
}

struct tern_pkt *tern_pkt_alloc(struct tern_stack *s, size_t headroom, size_t len)
{
    struct tern_pkt_pool *pool = &s->pool;
    if (pool->live >= pool->live_max || headroom + len > UINT32_MAX / 2) {
        tern_count(s, TERN_C_DROP_PKT_POOL_EMPTY);
        return NULL;
    }
    size_t need = headroom + len;
    struct tern_pkt *p = NULL;
    if (need <= TERN_PKT_SMALL_CAP) {
        struct tern_list *n = tern_list_pop_front(&pool->free_small);
        if (n) {
            p = tern_pkt_of(n);
            pool->free_count--;
        } else {
            p = malloc(sizeof(*p) + TERN_PKT_SMALL_CAP);
        }
        if (p)
            p->cap = TERN_PKT_SMALL_CAP;
    } else {
        p = malloc(sizeof(*p) + need);
        if (p)
            p->cap = (uint32_t)need;
    }
    if (!p) {
        tern_count(s, TERN_C_DROP_PKT_POOL_EMPTY);
        return NULL;
    }
    uint32_t cap = p->cap;
    memset(p, 0, sizeof(*p));
    p->cap = cap;
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
    c->src_port = p->src_port;
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
    /* Poison: a reader of freed data sees 0xdb, not plausible bytes. */
    memset(p->buf, PKT_POISON, p->cap);
#endif
    if (p->cap == TERN_PKT_SMALL_CAP && pool->free_count < pool->free_max) {
        tern_list_push_front(&pool->free_small, &p->node);
        pool->free_count++;
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
