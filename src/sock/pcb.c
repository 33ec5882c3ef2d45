#include "sock/pcb.h"

#include <errno.h>
#include <stdlib.h>

#include "core/assert.h"
#include "core/stack.h"

static unsigned port_bucket(uint16_t port) { return port % TERN_PCB_BUCKETS; }

void tern_pcb_table_init(struct tern_pcb_table *t, const char *name)
{
    t->name = name;
    for (unsigned i = 0; i < TERN_PCB_BUCKETS; i++)
        tern_list_init(&t->buckets[i]);
    t->count = 0;
    t->bind_seq = 0;
}

void tern_pcb_init(struct tern_inpcb *pcb)
{
    *pcb = (struct tern_inpcb){0};
    tern_list_init(&pcb->hnode);
}

static struct tern_inpcb *pcb_of(struct tern_list *n)
{
    return tern_container_of(n, struct tern_inpcb, hnode);
}

bool tern_pcb_conflicts(const struct tern_pcb_table *t, const struct tern_inpcb *self,
                        uint32_t laddr, uint16_t lport, bool reuseaddr, bool reuseport)
{
    const struct tern_list *it;
    tern_list_for_each(it, &t->buckets[port_bucket(lport)]) {
        const struct tern_inpcb *o = tern_container_of(it, struct tern_inpcb, hnode);
        if (o == self || o->lport != lport)
            continue;
        if (o->laddr != 0 && laddr != 0 && o->laddr != laddr)
            continue; /* disjoint addresses never conflict */
        if (reuseaddr && o->reuseaddr)
            continue;
        if (reuseport && o->reuseport)
            continue;
        return true;
    }
    return false;
}

static int group_add(struct tern_reuseport_group *g, struct tern_inpcb *pcb)
{
    if (g->n == g->cap) {
        uint32_t cap = g->cap ? g->cap * 2 : 4;
        struct tern_inpcb **m = realloc(g->members, cap * sizeof(*m));
        if (!m)
            return -1;
        g->members = m;
        g->cap = cap;
    }
    g->members[g->n++] = pcb;
    pcb->group = g;
    return 0;
}

static void group_leave(struct tern_inpcb *pcb)
{
    struct tern_reuseport_group *g = pcb->group;
    if (!g)
        return;
    for (uint32_t i = 0; i < g->n; i++) {
        if (g->members[i] == pcb) {
            g->members[i] = g->members[--g->n];
            break;
        }
    }
    pcb->group = NULL;
    if (g->n == 0) {
        free(g->members);
        free(g);
    }
}

/* A reuseport PCB joins the group of its (laddr, lport), made on demand.
 * Connected PCBs stay out: they are matched by their 4-tuple. */
static int group_join(struct tern_pcb_table *t, struct tern_inpcb *pcb)
{
    if (!pcb->reuseport || pcb->connected)
        return 0;
    struct tern_list *it;
    tern_list_for_each(it, &t->buckets[port_bucket(pcb->lport)]) {
        struct tern_inpcb *o = pcb_of(it);
        if (o != pcb && o->group && o->group->lport == pcb->lport &&
            o->group->laddr == pcb->laddr)
            return group_add(o->group, pcb);
    }
    struct tern_reuseport_group *g = calloc(1, sizeof(*g));
    if (!g)
        return -1;
    g->laddr = pcb->laddr;
    g->lport = pcb->lport;
    if (group_add(g, pcb) < 0) {
        free(g);
        return -1;
    }
    return 0;
}

int tern_pcb_insert(struct tern_stack *s, struct tern_pcb_table *t, struct tern_inpcb *pcb)
{
    TERN_ASSERT(s, pcb->table == NULL && !tern_list_linked(&pcb->hnode),
                "PCB %p inserted into %s while already in a table", (void *)pcb, t->name);
    pcb->table = t;
    pcb->bind_seq = ++t->bind_seq;
    tern_list_push_front(&t->buckets[port_bucket(pcb->lport)], &pcb->hnode);
    if (group_join(t, pcb) < 0) {
        tern_list_remove(&pcb->hnode);
        pcb->table = NULL;
        errno = ENOMEM;
        return -1;
    }
    t->count++;
    return 0;
}

void tern_pcb_remove(struct tern_stack *s, struct tern_inpcb *pcb)
{
    TERN_ASSERT(s, pcb->table != NULL, "PCB %p removed from no table", (void *)pcb);
    group_leave(pcb);
    tern_list_remove(&pcb->hnode);
    pcb->table->count--;
    pcb->table = NULL;
}

int tern_pcb_rehash(struct tern_stack *s, struct tern_inpcb *pcb)
{
    TERN_ASSERT(s, pcb->table != NULL, "rehash of an unbound PCB %p", (void *)pcb);
    group_leave(pcb);
    if (group_join(pcb->table, pcb) < 0) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

uint16_t tern_pcb_ephemeral(struct tern_stack *s, const struct tern_pcb_table *t, uint32_t laddr,
                            uint32_t faddr, uint16_t fport)
{
    /* Ports taken by an overlapping binding are skipped whatever their
     * reuse flags: an automatic port is never shared. */
    uint32_t lo = s->cfg.ephemeral_lo, num = (uint32_t)s->cfg.ephemeral_hi - lo + 1;
    if (faddr == 0) {
        /* bind() to port 0 has no peer to hash: RFC 6056 section 3.3.1,
         * algorithm 1 (random), with a walk from a random start once a
         * few random draws collide. */
        for (int tries = 0; tries < 8; tries++) {
            uint16_t port = (uint16_t)(lo + tern_rng_below(&s->rng, num));
            if (!tern_pcb_conflicts(t, NULL, laddr, port, false, false))
                return port;
        }
        uint32_t start = (uint32_t)tern_rng_below(&s->rng, num);
        for (uint32_t i = 0; i < num; i++) {
            uint16_t port = (uint16_t)(lo + (start + i) % num);
            if (!tern_pcb_conflicts(t, NULL, laddr, port, false, false))
                return port;
        }
        return 0;
    }
    /* Towards a peer: RFC 6056 section 3.3.4, algorithm 4 (double-hash).
     * The offset depends on the endpoints under a secret, and a small
     * table of counters, indexed by a second hash, moves on at each try,
     * so ports are hard to guess from another flow yet not reused at once
     * for the same peer. */
    uint32_t key[3] = {laddr, faddr, fport};
    uint64_t h = tern_siphash(&s->key_port, key, sizeof(key));
    uint32_t offset = (uint32_t)h;
    unsigned index = (unsigned)(h >> 56);
    for (uint32_t tries = 0; tries < num; tries++) {
        uint16_t port = (uint16_t)(lo + (offset + s->port_table[index]) % num);
        s->port_table[index]++;
        if (!tern_pcb_conflicts(t, NULL, laddr, port, false, false))
            return port;
    }
    return 0;
}

struct tern_inpcb *tern_pcb_lookup(struct tern_stack *s, const struct tern_pcb_table *t,
                                   uint32_t laddr, uint16_t lport, uint32_t faddr, uint16_t fport)
{
    struct tern_inpcb *best = NULL;
    int best_score = -1;
    const struct tern_list *it;
    tern_list_for_each(it, &t->buckets[port_bucket(lport)]) {
        struct tern_inpcb *o = tern_container_of(it, struct tern_inpcb, hnode);
        if (o->lport != lport || (o->laddr != 0 && o->laddr != laddr))
            continue;
        int score = o->laddr != 0 ? 2 : 0;
        if (o->connected) {
            if (o->faddr != faddr || o->fport != fport)
                continue;
            score += 4;
        }
        /* Equal scores: the later bind wins, as on Linux. */
        if (score > best_score || (score == best_score && o->bind_seq > best->bind_seq)) {
            best = o;
            best_score = score;
        }
    }
    if (best && best->group && best->group->n > 1) {
        uint32_t key[4] = {laddr, faddr, lport, fport};
        uint64_t h = tern_siphash(&s->key_flow, key, sizeof(key));
        best = best->group->members[h % best->group->n];
    }
    return best;
}

void tern_pcb_for_each_bound(const struct tern_pcb_table *t, uint16_t lport,
                             void (*fn)(struct tern_inpcb *pcb, void *arg), void *arg)
{
    struct tern_list *it, *tmp;
    tern_list_for_each_safe(it, tmp, (struct tern_list *)&t->buckets[port_bucket(lport)]) {
        struct tern_inpcb *o = pcb_of(it);
        if (o->lport == lport)
            fn(o, arg);
    }
}
