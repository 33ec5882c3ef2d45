/* In-memory wire: a hub joining any number of ports.
 *
 * Ownership: the wire keeps a list of its ports; each port points back at
 * its wire. A port freed first unlinks itself; tern_wire_free() frees the
 * ports still on the list, so neither pointer can dangle. Every port owns
 * a ring of frame copies bounded by queue_limit.
 *
 * Buffers come in the MTU's frame size (and, on a wire with offload, a
 * second size for super-frames) and go back to a free list on the wire
 * when delivered: a frame costs two copies and no malloc once the wire is
 * warm (glibc's fast per-thread caches stop below a full frame). Frames
 * keep their flags, TERN_FRAME_CSUM_PENDING among them: the bytes never
 * leave memory between two ports.
 *
 * Offload: the ports offer TERN_LINK_CAP_TSO and deliver a super-frame as
 * it was sent, gso_size and all, as a veth pair with GSO and GRO on (or
 * the kernel's lo) passes one along: the receiving stack takes it as the
 * segments it stands for. Off by default, so that the wire carries what a
 * real one would. */
#include <tern/link.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIRE_DEFAULT_MTU 1500
#define WIRE_DEFAULT_QUEUE_LIMIT 1024
#define ETH_HEADER_LEN 14
#define MAX_MTU 65535

struct wire_frame {
    uint8_t *data;
    uint32_t len;
    uint32_t flags;
    uint16_t gso_size; /* a super-frame stays one, as veth passes GSO on */
};

/* A free buffer: its first bytes link the list. */
struct wire_buf {
    struct wire_buf *next;
};
/* Free buffers kept, in bytes: about a 128 KiB window's worth of full
 * frames (86 at MTU 1500, 1 at 65535), so a warm wire holds little more
 * than its queues. */
#define WIRE_FREE_BYTES (128u << 10)

struct wire_port {
    struct tern_link link; /* first: the link pointer is the port pointer */
    struct tern_wire *wire;
    struct wire_port *prev, *next;
    struct wire_frame *ring; /* queue_limit slots */
    uint32_t head, count;
};

/* Free buffers of one size. */
struct wire_pool {
    size_t size;
    struct wire_buf *free;
    uint32_t count, max;
};

struct tern_wire {
    struct tern_wire_config cfg;
    struct wire_pool frames; /* the largest frame the MTU allows */
    struct wire_pool supers; /* super-frames, with offload */
    struct wire_port *ports;
    uint32_t ports_made; /* names ports wire0, wire1, ... */
};

void tern_wire_config_default(struct tern_wire_config *cfg)
{
    cfg->mtu = WIRE_DEFAULT_MTU;
    cfg->queue_limit = WIRE_DEFAULT_QUEUE_LIMIT;
    cfg->offload = false;
}

struct tern_wire *tern_wire_new(const struct tern_wire_config *cfg)
{
    struct tern_wire_config c;
    tern_wire_config_default(&c);
    if (cfg) {
        if (cfg->mtu)
            c.mtu = cfg->mtu;
        if (cfg->queue_limit)
            c.queue_limit = cfg->queue_limit;
        c.offload = cfg->offload;
    }
    if (c.mtu > MAX_MTU) {
        errno = EINVAL;
        return NULL;
    }
    struct tern_wire *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->cfg = c;
    w->frames.size = (size_t)c.mtu + ETH_HEADER_LEN;
    w->frames.max = (uint32_t)(WIRE_FREE_BYTES / w->frames.size);
    if (c.offload) {
        /* A few super-frames in flight are a whole window's worth. */
        w->supers.size = TERN_LINK_MAX_FRAME;
        w->supers.max = 4;
    }
    return w;
}

static struct wire_pool *pool_for(struct tern_wire *w, size_t len)
{
    return len <= w->frames.size ? &w->frames : &w->supers;
}

static uint8_t *buf_get(struct wire_pool *pool)
{
    struct wire_buf *b = pool->free;
    if (!b)
        return malloc(pool->size);
    pool->free = b->next;
    pool->count--;
    return (uint8_t *)b;
}

static void buf_put(struct wire_pool *pool, uint8_t *data)
{
    if (pool->count >= pool->max) {
        free(data);
        return;
    }
    struct wire_buf *b = (struct wire_buf *)(void *)data;
    b->next = pool->free;
    pool->free = b;
    pool->count++;
}

static void pool_free(struct wire_pool *pool)
{
    while (pool->free) {
        struct wire_buf *b = pool->free;
        pool->free = b->next;
        free(b);
    }
    pool->count = 0;
}

static bool port_enqueue(struct wire_port *p, const struct tern_frame *f)
{
    uint32_t limit = p->wire->cfg.queue_limit;
    if (p->count == limit)
        return false;
    uint8_t *copy = buf_get(pool_for(p->wire, f->len));
    if (!copy)
        return false;
    memcpy(copy, f->data, f->len);
    uint32_t at = p->head + p->count; /* both < limit: no division needed */
    struct wire_frame *slot = &p->ring[at >= limit ? at - limit : at];
    slot->data = copy;
    slot->len = (uint32_t)f->len;
    slot->flags = f->flags;
    slot->gso_size = f->gso_size;
    p->count++;
    return true;
}

static size_t port_send(struct tern_link *l, const struct tern_frame *frames, size_t n,
                        tern_time_t now)
{
    struct wire_port *self = (struct wire_port *)l;
    const struct tern_wire_config *cfg = &self->wire->cfg;
    size_t max_len = (size_t)cfg->mtu + ETH_HEADER_LEN;
    size_t accepted = 0;
    (void)now;

    for (size_t i = 0; i < n; i++) {
        /* Longer than the MTU allows only as a super-frame, and only
         * where the ports offered to carry those. */
        bool super = cfg->offload && frames[i].gso_size;
        if (frames[i].len > (super ? TERN_LINK_MAX_FRAME : max_len)) {
            l->stats.tx_dropped++;
            continue;
        }
        for (struct wire_port *p = self->wire->ports; p; p = p->next) {
            if (p != self && !port_enqueue(p, &frames[i]))
                p->link.stats.rx_dropped++;
        }
        l->stats.tx_frames++;
        l->stats.tx_bytes += frames[i].len;
        accepted++;
    }
    return accepted;
}

static struct wire_frame port_dequeue(struct wire_port *p)
{
    struct wire_frame f = p->ring[p->head];
    if (++p->head == p->wire->cfg.queue_limit)
        p->head = 0;
    p->count--;
    return f;
}

static size_t port_recv(struct tern_link *l, struct tern_frame *frames, size_t n,
                        tern_time_t now)
{
    struct wire_port *p = (struct wire_port *)l;
    size_t filled = 0;
    (void)now;

    while (filled < n && p->count > 0) {
        struct wire_frame f = port_dequeue(p);
        struct tern_frame *out = &frames[filled];
        if (f.len > out->cap) {
            l->stats.rx_dropped++;
        } else {
            memcpy(out->data, f.data, f.len);
            out->len = f.len;
            out->flags = f.flags;
            out->gso_size = f.gso_size;
            l->stats.rx_frames++;
            l->stats.rx_bytes += f.len;
            filled++;
        }
        buf_put(pool_for(p->wire, f.len), f.data);
    }
    return filled;
}

static void port_destroy(struct tern_link *l)
{
    struct wire_port *p = (struct wire_port *)l;
    if (p->prev)
        p->prev->next = p->next;
    else
        p->wire->ports = p->next;
    if (p->next)
        p->next->prev = p->prev;
    while (p->count > 0) {
        struct wire_frame f = port_dequeue(p);
        buf_put(pool_for(p->wire, f.len), f.data);
    }
    free(p->ring);
    free(p);
}

static tern_time_t port_next_deadline(struct tern_link *l, tern_time_t now)
{
    return ((struct wire_port *)l)->count > 0 ? now : TERN_TIME_NEVER;
}

struct tern_link *tern_wire_port_new(struct tern_wire *w)
{
    struct wire_port *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->ring = calloc(w->cfg.queue_limit, sizeof(*p->ring));
    if (!p->ring) {
        free(p);
        return NULL;
    }
    /* Frames are delivered on send: a port's only deadline is "now",
     * while frames wait in its ring. No descriptor: pollfd stays NULL. */
    p->link.ops.send = port_send;
    p->link.ops.next_deadline = port_next_deadline;
    p->link.ops.recv = port_recv;
    p->link.ops.destroy = port_destroy;
    snprintf(p->link.info.name, sizeof(p->link.info.name), "wire%u", w->ports_made++);
    p->link.info.mtu = w->cfg.mtu;
    p->link.info.caps = TERN_LINK_CAP_TX_CSUM;
    if (w->cfg.offload) {
        p->link.info.caps |= TERN_LINK_CAP_TSO;
        p->link.info.rx_frame_max = TERN_LINK_MAX_FRAME;
    }
    p->wire = w;
    p->next = w->ports;
    if (w->ports)
        w->ports->prev = p;
    w->ports = p;
    return &p->link;
}

void tern_wire_free(struct tern_wire *w)
{
    if (!w)
        return;
    while (w->ports)
        port_destroy(&w->ports->link);
    pool_free(&w->frames);
    pool_free(&w->supers);
    free(w);
}
