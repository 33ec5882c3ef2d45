#include "sock/pcb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/stack.h"

#define CONN_INITIAL 256u
#define CONN_MAX (1u << 22)
#define PORT_INDEX_INITIAL 1024u
#define PORT_INDEX_MAX 65536u /* a bucket per port */

static struct tern_inpcb *pcb_of_hnode(struct tern_list *n)
{
    return tern_container_of(n, struct tern_inpcb, hnode);
}

static struct tern_inpcb *pcb_of_bnode(const struct tern_list *n)
{
    return tern_container_of(n, struct tern_inpcb, bnode);
}

static uint32_t port_of_bnode(void *ctx, struct tern_list *n)
{
    (void)ctx;
    return pcb_of_bnode(n)->lport;
}

static uint32_t port_of_hnode(void *ctx, struct tern_list *n)
{
    (void)ctx;
    return pcb_of_hnode(n)->lport;
}

/* n empty list heads, or NULL. */
static struct tern_list *heads_new(uint32_t n)
{
    struct tern_list *h = malloc(n * sizeof(*h));
    if (h)
        for (uint32_t i = 0; i < n; i++)
            tern_list_init(&h[i]);
    return h;
}

/* Twice the buckets, each node moved in order to the bucket its key
 * selects (so nodes of one key keep their order); unchanged, and still
 * correct with longer chains, if memory is short. */
static void heads_double(struct tern_list **heads, uint32_t *mask,
                         uint32_t (*key_of)(void *ctx, struct tern_list *n), void *ctx)
{
    uint32_t n = (*mask + 1) * 2;
    struct tern_list *nb = heads_new(n);
    if (!nb)
        return;
    for (uint32_t i = 0; i <= *mask; i++) {
        struct tern_list *it;
        while ((it = tern_list_pop_front(&(*heads)[i])) != NULL)
            tern_list_push_back(&nb[key_of(ctx, it) & (n - 1)], it);
    }
    free(*heads);
    *heads = nb;
    *mask = n - 1;
}

static int index_init(struct tern_port_index *ix)
{
    ix->heads = heads_new(PORT_INDEX_INITIAL);
    ix->mask = PORT_INDEX_INITIAL - 1;
    return ix->heads ? 0 : -1;
}

static struct tern_list *index_head(const struct tern_port_index *ix, uint16_t port)
{
    return &ix->heads[port & ix->mask];
}

/* About to hold `count` PCBs: twice the buckets if that is more than four
 * a bucket (chains stay short; the buckets cost a connection 4 bytes, not
 * 8). A port's PCBs keep their order: UDP broadcast delivers in it. */
static void index_reserve(struct tern_port_index *ix, uint32_t count,
                          uint32_t (*port_of)(void *ctx, struct tern_list *n))
{
    if (count > 4 * (ix->mask + 1) && ix->mask + 1 < PORT_INDEX_MAX)
        heads_double(&ix->heads, &ix->mask, port_of, NULL);
}

int tern_pcb_table_init(struct tern_pcb_table *t, const char *name, bool tcp_rules)
{
    t->name = name;
    t->tcp_rules = tcp_rules;
    t->conn = heads_new(CONN_INITIAL);
    if (!t->conn || index_init(&t->bind) < 0 || index_init(&t->listen) < 0) {
        tern_pcb_table_destroy(t);
        return -1;
    }
    t->listen_count = 0;
    t->conn_mask = CONN_INITIAL - 1;
    t->conn_count = 0;
    t->count = 0;
    t->bind_seq = 0;
    return 0;
}

void tern_pcb_table_destroy(struct tern_pcb_table *t)
{
    free(t->conn);
    t->conn = NULL;
    free(t->bind.heads);
    t->bind.heads = NULL;
    free(t->listen.heads);
    t->listen.heads = NULL;
}

void tern_pcb_init(struct tern_inpcb *pcb)
{
    *pcb = (struct tern_inpcb){0};
    tern_list_init(&pcb->bnode);
    tern_list_init(&pcb->hnode);
}

uint64_t tern_tuple_hash(struct tern_stack *s, uint32_t laddr, uint16_t lport, uint32_t faddr,
                         uint16_t fport)
{
    /* Keyed: a peer can aim its connections neither at one bucket nor
     * at a guessed ISN. */
    uint32_t key[3] = {laddr, faddr, ((uint32_t)lport << 16) | fport};
    return tern_siphash_memo(&s->tuple_memo, &s->key_flow, key, 3);
}

/* The table slot takes the tuple hash's low half; the ISN its high half. */
static uint32_t conn_hash(struct tern_stack *s, uint32_t laddr, uint16_t lport, uint32_t faddr,
                          uint16_t fport)
{
    return (uint32_t)tern_tuple_hash(s, laddr, lport, faddr, fport);
}

static uint32_t conn_hash_of_hnode(void *stack, struct tern_list *n)
{
    (void)stack;
    return pcb_of_hnode(n)->conn_hash;
}

bool tern_pcb_conflicts(const struct tern_pcb_table *t, const struct tern_inpcb *self,
                        uint32_t laddr, uint16_t lport, bool reuseaddr, bool reuseport)
{
    const struct tern_list *it;
    tern_list_for_each(it, index_head(&t->bind, lport)) {
        const struct tern_inpcb *o = pcb_of_bnode(it);
        if (o == self || o->lport != lport)
            continue;
        if (o->laddr != 0 && laddr != 0 && o->laddr != laddr)
            continue; /* disjoint addresses never conflict */
        if (reuseport && o->reuseport)
            continue;
        /* TCP (Linux's inet_csk_bind_conflict): SO_REUSEADDR shares a
         * port with connections and TIME_WAIT records, a new listener
         * included (a server restarting over its old connections), but
         * never with a listener already there. */
        if (reuseaddr && o->reuseaddr && !(t->tcp_rules && o->listening))
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

/* A reuseport PCB without a peer joins the group of its (laddr, lport),
 * made on demand; for TCP only once it listens (a bound socket takes no
 * segments, and a group must not hash a SYN to it). PCBs with a peer are
 * matched by their 4-tuple. */
static int group_join(struct tern_pcb_table *t, struct tern_inpcb *pcb)
{
    if (!pcb->reuseport || pcb->connected || (t->tcp_rules && !pcb->listening))
        return 0;
    struct tern_list *it;
    tern_list_for_each(it, index_head(&t->listen, pcb->lport)) {
        struct tern_inpcb *o = pcb_of_hnode(it);
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

/* Put the PCB on the lookup index its peer state selects. */
static int file_for_lookup(struct tern_stack *s, struct tern_pcb_table *t, struct tern_inpcb *pcb)
{
    if (pcb->connected) {
        if (t->conn_count + 1 > 2 * (t->conn_mask + 1) && t->conn_mask + 1 < CONN_MAX)
            heads_double(&t->conn, &t->conn_mask, conn_hash_of_hnode, s);
        uint32_t h = conn_hash(s, pcb->laddr, pcb->lport, pcb->faddr, pcb->fport);
        pcb->conn_hash = h;
        tern_list_push_front(&t->conn[h & t->conn_mask], &pcb->hnode);
        t->conn_count++;
        pcb->in_conn_hash = true;
        return 0;
    }
    index_reserve(&t->listen, t->listen_count + 1, port_of_hnode);
    tern_list_push_front(index_head(&t->listen, pcb->lport), &pcb->hnode);
    if (group_join(t, pcb) < 0) {
        tern_list_remove(&pcb->hnode);
        return -1;
    }
    t->listen_count++;
    return 0;
}

static void unfile_for_lookup(struct tern_pcb_table *t, struct tern_inpcb *pcb)
{
    if (pcb->in_conn_hash)
        t->conn_count--;
    else if (tern_list_linked(&pcb->hnode))
        t->listen_count--;
    pcb->in_conn_hash = false;
    group_leave(pcb);
    tern_list_remove(&pcb->hnode);
}

int tern_pcb_insert(struct tern_stack *s, struct tern_pcb_table *t, struct tern_inpcb *pcb)
{
    TERN_ASSERT(s, pcb->table == NULL && !tern_list_linked(&pcb->hnode) &&
                       !tern_list_linked(&pcb->bnode),
                "PCB %p inserted into %s while already in a table", (void *)pcb, t->name);
    if (file_for_lookup(s, t, pcb) < 0) {
        errno = ENOMEM;
        return -1;
    }
    pcb->table = t;
    pcb->bind_seq = (uint32_t)++t->bind_seq;
    index_reserve(&t->bind, t->count + 1, port_of_bnode);
    tern_list_push_front(index_head(&t->bind, pcb->lport), &pcb->bnode);
    t->count++;
    return 0;
}

void tern_pcb_remove(struct tern_stack *s, struct tern_inpcb *pcb)
{
    TERN_ASSERT(s, pcb->table != NULL, "PCB %p removed from no table", (void *)pcb);
    unfile_for_lookup(pcb->table, pcb);
    tern_list_remove(&pcb->bnode);
    pcb->table->count--;
    pcb->table = NULL;
}

int tern_pcb_rehash(struct tern_stack *s, struct tern_inpcb *pcb)
{
    TERN_ASSERT(s, pcb->table != NULL, "rehash of an unbound PCB %p", (void *)pcb);
    unfile_for_lookup(pcb->table, pcb);
    if (file_for_lookup(s, pcb->table, pcb) < 0) {
        /* Still in the bind index (the port stays held), found by no
         * lookup until it is refiled or removed. */
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* May a TCP connect() to (faddr, fport) take `port`? RFC 6056 asks only
 * that the four-tuple be unique (check_suitable_port, section 3.3.3), and
 * Linux (__inet_hash_connect) shares a port among connections that
 * connect() gave it, each to another peer: a client then has the whole
 * range for every peer, not for all of them together. A port someone
 * bound or listens on is never taken; nor is one whose four-tuple a
 * connection or TIME_WAIT record already has. */
static bool connect_port_free(const struct tern_pcb_table *t, uint32_t laddr, uint16_t port,
                              uint32_t faddr, uint16_t fport)
{
    const struct tern_list *it;
    tern_list_for_each(it, index_head(&t->bind, port)) {
        const struct tern_inpcb *o = pcb_of_bnode(it);
        if (o->lport != port || (o->laddr != 0 && laddr != 0 && o->laddr != laddr))
            continue;
        if (!o->connect_port || (o->faddr == faddr && o->fport == fport))
            return false;
    }
    return true;
}

uint16_t tern_pcb_ephemeral(struct tern_stack *s, const struct tern_pcb_table *t, uint32_t laddr,
                            uint32_t faddr, uint16_t fport)
{
    /* Ports held by an overlapping binding are skipped whatever their
     * reuse flags: an automatic port is never shared, but for TCP
     * connections to different peers (connect_port_free). */
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
    uint64_t h = tern_siphash_memo(&s->port_memo, &s->key_port, key, 3);
    uint32_t offset = (uint32_t)h;
    unsigned index = (unsigned)(h >> 56);
    for (uint32_t tries = 0; tries < num; tries++) {
        uint16_t port = (uint16_t)(lo + (offset + s->port_table[index]) % num);
        s->port_table[index]++;
        if (t->tcp_rules ? connect_port_free(t, laddr, port, faddr, fport)
                         : !tern_pcb_conflicts(t, NULL, laddr, port, false, false))
            return port;
    }
    return 0;
}

struct tern_inpcb *tern_pcb_lookup_conn(struct tern_stack *s, const struct tern_pcb_table *t,
                                        uint32_t laddr, uint16_t lport, uint32_t faddr,
                                        uint16_t fport)
{
    uint32_t h = conn_hash(s, laddr, lport, faddr, fport);
    struct tern_list *it;
    tern_list_for_each(it, &t->conn[h & t->conn_mask]) {
        struct tern_inpcb *o = pcb_of_hnode(it);
        if (o->lport == lport && o->fport == fport && o->faddr == faddr && o->laddr == laddr)
            return o;
    }
    return NULL;
}

struct tern_inpcb *tern_pcb_lookup(struct tern_stack *s, const struct tern_pcb_table *t,
                                   uint32_t laddr, uint16_t lport, uint32_t faddr, uint16_t fport)
{
    struct tern_inpcb *exact = tern_pcb_lookup_conn(s, t, laddr, lport, faddr, fport);
    if (exact)
        return exact;
    struct tern_inpcb *best = NULL;
    int best_score = -1;
    struct tern_list *it;
    tern_list_for_each(it, index_head(&t->listen, lport)) {
        struct tern_inpcb *o = pcb_of_hnode(it);
        if (o->lport != lport || (o->laddr != 0 && o->laddr != laddr))
            continue;
        if (t->tcp_rules && !o->listening)
            continue; /* TCP bound, not listening: no segment is for it (Linux) */
        int score = o->laddr != 0 ? 1 : 0;
        /* Equal scores: the later bind wins, as on Linux. */
        if (score > best_score ||
            (score == best_score && (int32_t)(o->bind_seq - best->bind_seq) > 0)) {
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
    const struct tern_list *it;
    tern_list_for_each(it, index_head(&t->bind, lport)) {
        struct tern_inpcb *o = (struct tern_inpcb *)pcb_of_bnode(it);
        if (o->lport == lport && o->kind == TERN_PCB_SOCKET)
            fn(o, arg);
    }
}
