#include "sock/socket.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/plant.h"
#include "core/stack.h"
#include "core/zalloc.h"
#include "net/icmp.h"
#include "obs/probe.h"
#include "runtime/events.h"
#include "transport/tcp/tcp.h"

#define SOCK_MAGIC 0x50c4e7u
#define SOCK_MAGIC_FREED 0xf4eed50cu
#define HANDLE_INDEX_BITS 21
#define HANDLE_INDEX_MASK ((1u << HANDLE_INDEX_BITS) - 1)
#define HANDLE_GEN_MAX 1023u
#define SLOT_NONE UINT32_MAX

const char *tern_sock_life_name(enum tern_sock_life l)
{
    switch (l) {
    case SOCK_LIFE_BOTH: return "user+proto";
    case SOCK_LIFE_USER_ONLY: return "user";
    case SOCK_LIFE_PROTO_ONLY: return "proto";
    case SOCK_LIFE_DEAD: return "dead";
    }
    return "?";
}

/* ---- Handles ---- */

static void slot_push_free(struct tern_handle_table *h, uint32_t idx)
{
    h->slots[idx].next_free = SLOT_NONE;
    if (h->free_tail == SLOT_NONE)
        h->free_head = idx;
    else
        h->slots[h->free_tail].next_free = idx;
    h->free_tail = idx;
}

static int handles_grow(struct tern_handle_table *h)
{
    if (h->cap >= h->max)
        return -1;
    uint32_t cap = h->cap ? h->cap * 2 : 64;
    if (cap > h->max)
        cap = h->max;
    struct tern_handle_slot *n = realloc(h->slots, cap * sizeof(*n));
    if (!n)
        return -1;
    h->slots = n;
    for (uint32_t i = h->cap; i < cap; i++) {
        n[i].so = NULL;
        n[i].gen = 1;
        slot_push_free(h, i);
    }
    h->cap = cap;
    return 0;
}

int tern_handles_init(struct tern_handle_table *h, uint32_t max)
{
    *h = (struct tern_handle_table){.max = max, .free_head = SLOT_NONE, .free_tail = SLOT_NONE};
    return handles_grow(h);
}

void tern_handles_destroy(struct tern_handle_table *h)
{
    free(h->slots);
    h->slots = NULL;
}

static int handle_alloc(struct tern_handle_table *h, struct tern_socket *so)
{
    if (h->free_head == SLOT_NONE && handles_grow(h) < 0)
        return -1;
    uint32_t idx = h->free_head;
    h->free_head = h->slots[idx].next_free;
    if (h->free_head == SLOT_NONE)
        h->free_tail = SLOT_NONE;
    h->slots[idx].so = so;
    h->used++;
    return (int)((h->slots[idx].gen << HANDLE_INDEX_BITS) | idx);
}

static void handle_free(struct tern_handle_table *h, int handle)
{
    uint32_t idx = (uint32_t)handle & HANDLE_INDEX_MASK;
    struct tern_handle_slot *slot = &h->slots[idx];
    slot->so = NULL;
    /* A new generation: the old handle now names nothing. */
    slot->gen = slot->gen == HANDLE_GEN_MAX ? 1 : slot->gen + 1;
    h->used--;
    slot_push_free(h, idx);
}

struct tern_socket *tern_sock_lookup(struct tern_stack *s, int handle)
{
    struct tern_handle_table *h = &s->socks.handles;
    if (handle < 0)
        return NULL;
    uint32_t idx = (uint32_t)handle & HANDLE_INDEX_MASK;
    uint32_t gen = (uint32_t)handle >> HANDLE_INDEX_BITS;
    if (idx >= h->cap || h->slots[idx].gen != gen || h->slots[idx].so == NULL)
        return NULL;
    struct tern_socket *so = h->slots[idx].so;
    TERN_ASSERT(s, so->magic == SOCK_MAGIC && so->handle == handle &&
                       (so->life == SOCK_LIFE_BOTH || so->life == SOCK_LIFE_USER_ONLY),
                "handle %#x names socket #%llu in state %s (magic %#x)", (unsigned)handle,
                (unsigned long long)so->id, tern_sock_life_name(so->life), so->magic);
    return so;
}

/* ---- Lifecycle ---- */

static struct tern_socket *sock_alloc(struct tern_stack *s, enum tern_sock_kind kind, int type,
                                      int protocol, bool user)
{
    if (s->socks.live >= s->socks.handles.max * 2ull) {
        errno = ENOBUFS; /* children waiting for accept count too */
        return NULL;
    }
    size_t tail = kind == SOCK_KIND_TCP ? tern_tcp_block_size(s)
                  : kind == SOCK_KIND_UDP || kind == SOCK_KIND_PING ? sizeof(struct tern_sock_dgram)
                                                                    : 0;
    struct tern_socket *so = tern_zalloc(sizeof(*so) + tail);
    if (!so) {
        errno = ENOMEM;
        return NULL;
    }
    so->handle = user ? handle_alloc(&s->socks.handles, so) : -1;
    if (user && so->handle < 0) {
        free(so);
        errno = EMFILE;
        return NULL;
    }
    so->magic = SOCK_MAGIC;
    /* A user's socket: the protocol takes its reference at bind/connect.
     * A protocol's (a passive open): the user's comes at accept. */
    so->life = user ? SOCK_LIFE_USER_ONLY : SOCK_LIFE_PROTO_ONLY;
    so->kind = kind;
    so->id = ++s->socks.next_id;
    TERN_PROBE3(sock_create, s, so->id, kind);
    so->type = type;
    so->protocol = protocol;
    so->ttl = s->cfg.ip_default_ttl;
    /* Stored as Linux does: twice the requested size, as its accounting
     * includes overhead. */
    so->rcvbuf = kind == SOCK_KIND_TCP ? s->cfg.tcp_rcvbuf : s->cfg.udp_rcvbuf;
    so->sndbuf = kind == SOCK_KIND_TCP ? s->cfg.tcp_sndbuf : s->cfg.udp_sndbuf;
    if (tern_sock_is_dgram(so))
        tern_list_init(&tern_sock_dg(so)->rcvq);
    tern_pcb_init(&so->pcb);
    tern_list_push_back(&s->socks.all, &so->all_node);
    s->socks.live++;
    return so;
}

struct tern_socket *tern_sock_new(struct tern_stack *s, enum tern_sock_kind kind, int type,
                                  int protocol)
{
    return sock_alloc(s, kind, type, protocol, true);
}

struct tern_socket *tern_sock_new_proto(struct tern_stack *s, enum tern_sock_kind kind, int type,
                                        int protocol)
{
    return sock_alloc(s, kind, type, protocol, false);
}

int tern_sock_give_handle(struct tern_stack *s, struct tern_socket *so)
{
    TERN_ASSERT(s, so->magic == SOCK_MAGIC && so->life == SOCK_LIFE_PROTO_ONLY && so->handle < 0,
                "socket #%llu: handle given in state %s", (unsigned long long)so->id,
                tern_sock_life_name(so->life));
    int h = handle_alloc(&s->socks.handles, so);
    if (h < 0) {
        errno = EMFILE;
        return -1;
    }
    so->handle = h;
    so->life = SOCK_LIFE_BOTH;
    return 0;
}

static void sock_dead(struct tern_stack *s, struct tern_socket *so)
{
    so->life = SOCK_LIFE_DEAD;
    /* Both references are gone, so the PCB is in no table and its bind
     * node is free to carry the socket on the reap list. */
    TERN_ASSERT(s, so->pcb.table == NULL && !tern_list_linked(&so->pcb.bnode),
                "socket #%llu: last reference dropped while its PCB is still in the %s table "
                "(a lookup would find freed memory)",
                (unsigned long long)so->id, so->pcb.table ? so->pcb.table->name : "?");
    tern_list_push_back(&s->socks.reap, &so->pcb.bnode);
}

/* The protocol holds its reference exactly while the socket's PCB is in a
 * table, or (TCP) while the socket waits on a listener's accept queue. A
 * reference held for neither is one whose drop was skipped: nothing would
 * ever release it and the socket would never be freed. */
static void assert_proto_ref_has_a_holder(struct tern_stack *s, const struct tern_socket *so)
{
    bool queued = so->tcb && tern_list_linked(&so->tcb->child_node);
    TERN_ASSERT(s, so->pcb.table != NULL || queued,
                "socket #%llu: the protocol's reference was never released (state %s, "
                "PCB in no table, on no accept queue): the socket would never be freed",
                (unsigned long long)so->id, tern_sock_life_name(so->life));
}

void tern_sock_release_user(struct tern_stack *s, struct tern_socket *so)
{
    TERN_ASSERT(s, so->magic == SOCK_MAGIC, "user release of a freed socket %p", (void *)so);
    TERN_ASSERT(s, so->life == SOCK_LIFE_BOTH || so->life == SOCK_LIFE_USER_ONLY,
                "socket #%llu: user reference released twice (state %s)",
                (unsigned long long)so->id, tern_sock_life_name(so->life));
    if (so->life == SOCK_LIFE_BOTH)
        assert_proto_ref_has_a_holder(s, so);
    handle_free(&s->socks.handles, so->handle);
    so->handle = -1;
    if (so->life == SOCK_LIFE_BOTH && !TERN_PLANTED(close_frees_early))
        so->life = SOCK_LIFE_PROTO_ONLY;
    else
        sock_dead(s, so);
}

void tern_sock_take_proto(struct tern_stack *s, struct tern_socket *so)
{
    TERN_ASSERT(s, so->magic == SOCK_MAGIC && so->life == SOCK_LIFE_USER_ONLY,
                "socket #%llu: protocol reference taken in state %s",
                (unsigned long long)so->id, tern_sock_life_name(so->life));
    so->life = SOCK_LIFE_BOTH;
}

void tern_sock_release_proto(struct tern_stack *s, struct tern_socket *so)
{
    TERN_ASSERT(s, so->magic == SOCK_MAGIC, "protocol release of a freed socket %p",
                (void *)so);
    TERN_ASSERT(s, so->life == SOCK_LIFE_BOTH || so->life == SOCK_LIFE_PROTO_ONLY,
                "socket #%llu: protocol reference released twice (state %s)",
                (unsigned long long)so->id, tern_sock_life_name(so->life));
    TERN_ASSERT(s, so->pcb.table == NULL, "socket #%llu: protocol let go while its PCB is "
                "still in the %s table", (unsigned long long)so->id, so->pcb.table->name);
    if (so->life == SOCK_LIFE_BOTH)
        so->life = SOCK_LIFE_USER_ONLY;
    else
        sock_dead(s, so);
}

void tern_sock_reap(struct tern_stack *s)
{
    struct tern_list *n, later;
    tern_list_init(&later);
    while ((n = tern_list_pop_front(&s->socks.reap)) != NULL) {
        struct tern_socket *so = tern_container_of(n, struct tern_socket, pcb.bnode);
        if (so->ext && !tern_list_empty(&so->ext->waiters)) {
            /* A thread still sleeps on it: it goes when that one leaves. */
            tern_list_push_back(&later, n);
            continue;
        }
        TERN_ASSERT(s, so->magic == SOCK_MAGIC && so->life == SOCK_LIFE_DEAD &&
                           so->handle == -1 && so->pcb.table == NULL,
                    "reaping socket #%llu that is still referenced (state %s, handle %d)",
                    (unsigned long long)so->id, tern_sock_life_name(so->life), so->handle);
        if (tern_sock_is_dgram(so))
            tern_pkt_queue_purge_take(s, &tern_sock_dg(so)->rcvq);
        if (so->kind == SOCK_KIND_TCP)
            tern_tcp_detach(s, so);
        tern_sock_ext_free(s, so);
        TERN_PROBE2(sock_free, s, so->id);
        tern_list_remove(&so->all_node);
        so->magic = SOCK_MAGIC_FREED;
        s->socks.live--;
        free(so);
    }
    tern_list_splice_init(&s->socks.reap, &later);
}

void tern_sock_destroy_all(struct tern_stack *s)
{
    struct tern_list *it, *tmp;
    /* TCP first lets go of its timers and of every listener queue, so
     * that the references below are the only ones left. */
    tern_list_for_each(it, &s->socks.all) {
        struct tern_socket *so = tern_container_of(it, struct tern_socket, all_node);
        if (so->life == SOCK_LIFE_BOTH || so->life == SOCK_LIFE_PROTO_ONLY)
            assert_proto_ref_has_a_holder(s, so);
        if (so->kind == SOCK_KIND_TCP)
            tern_tcp_teardown(s, so);
    }
    tern_list_for_each_safe(it, tmp, &s->socks.all) {
        struct tern_socket *so = tern_container_of(it, struct tern_socket, all_node);
        /* Out of the epoll sets watching it, as tern_close does: the
         * reaper frees sockets and sets in any order. */
        tern_epoll_forget_socket(s, so);
        if (so->pcb.table)
            tern_pcb_remove(s, &so->pcb);
        if (so->life == SOCK_LIFE_BOTH || so->life == SOCK_LIFE_PROTO_ONLY)
            tern_sock_release_proto(s, so);
        if (so->handle >= 0)
            tern_sock_release_user(s, so);
    }
    tern_sock_reap(s);
}

bool tern_sock_rcvq_append_take(struct tern_stack *s, struct tern_socket *so, struct tern_pkt *p)
{
    /* Charge what the datagram really holds (its buffer and descriptor),
     * so that many tiny datagrams cannot pin unbounded memory. One
     * datagram is always let into an empty queue, as on Linux, so a
     * datagram larger than the buffer can still be read. */
    struct tern_sock_dgram *dg = tern_sock_dg(so);
    uint32_t charge = p->cap + (uint32_t)sizeof(*p);
    if (dg->rcvq_count > 0 && dg->rcvq_bytes + charge > so->rcvbuf) {
        dg->rx_dropped++;
        tern_drop_take(s, p, TERN_C_DROP_SOCK_RCVBUF_FULL);
        return false;
    }
    dg->rcvq_bytes += charge;
    dg->rcvq_count++;
    tern_list_push_back(&dg->rcvq, &p->node);
    tern_sock_touch(s, so);
    return true;
}

struct tern_pkt *tern_sock_rcvq_pop(struct tern_socket *so)
{
    struct tern_sock_dgram *dg = tern_sock_dg(so);
    struct tern_list *n = tern_list_pop_front(&dg->rcvq);
    if (!n)
        return NULL;
    struct tern_pkt *p = tern_pkt_of(n);
    dg->rcvq_bytes -= p->cap + (uint32_t)sizeof(*p);
    dg->rcvq_count--;
    return p;
}

void tern_sock_set_error(struct tern_stack *s, struct tern_socket *so, int err)
{
    so->so_error = err;
    tern_sock_touch(s, so);
}

int tern_sock_icmp_error(struct tern_stack *s, struct tern_inpcb *pcb, int err, bool hard)
{
    if (!pcb)
        return TERN_ICMP_ERR_NO_SOCKET;
    if (!pcb->connected)
        return TERN_ICMP_ERR_UNCONNECTED;
    if (!hard)
        return TERN_ICMP_ERR_SOFT;
    tern_sock_set_error(s, tern_sock_of_pcb(pcb), err);
    return TERN_ICMP_ERR_DELIVERED;
}
