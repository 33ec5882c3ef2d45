/* In-memory wire: a hub joining any number of ports.
 *
 * Ownership: the wire keeps a list of its ports; each port points back at
 * its wire. A port freed first unlinks itself; tern_wire_free() frees the
 * ports still on the list, so neither pointer can dangle. Every port owns
 * a ring of frame copies bounded by queue_limit.
 *
 * Buffers are all one size (the MTU's frame) and go back to a free list
 * on the wire when delivered: a frame costs two copies and no malloc once
 * the wire is warm (glibc's fast per-thread caches stop below a full
 * frame). Frames keep their flags, TERN_FRAME_CSUM_PENDING among them:
 * the bytes never leave memory between two ports. */
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

struct tern_wire {
    struct tern_wire_config cfg;
    size_t buf_size; /* the largest frame the MTU allows */
    struct wire_buf *free_bufs;
    uint32_t free_count, free_max;
    struct wire_port *ports;
    uint32_t ports_made; /* names ports wire0, wire1, ... */
};

void tern_wire_config_default(struct tern_wire_config *cfg)
{
    cfg->mtu = WIRE_DEFAULT_MTU;
    cfg->queue_limit = WIRE_DEFAULT_QUEUE_LIMIT;
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
    }
    if (c.mtu > MAX_MTU) {
        errno = EINVAL;
        return NULL;
    }
    struct tern_wire *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->cfg = c;
    w->buf_size = (size_t)c.mtu + ETH_HEADER_LEN;
    w->free_max = (uint32_t)(WIRE_FREE_BYTES / w->buf_size);
    return w;
}

static uint8_t *buf_get(struct tern_wire *w)
{
    struct wire_buf *b = w->free_bufs;
    if (!b)
        return malloc(w->buf_size);
    w->free_bufs = b->next;
    w->free_count--;
    return (uint8_t *)b;
}

static void buf_put(struct tern_wire *w, uint8_t *data)
{
    if (w->free_count >= w->free_max) {
        free(data);
        return;
    }
    struct wire_buf *b = (struct wire_buf *)(void *)data;
    b->next = w->free_bufs;
    w->free_bufs = b;
    w->free_count++;
}

static bool port_enqueue(struct wire_port *p, const struct tern_frame *f)
{
    uint32_t limit = p->wire->cfg.queue_limit;
    if (p->count == limit)
        return false;
    uint8_t *copy = buf_get(p->wire);
    if (!copy)
        return false;
    memcpy(copy, f->data, f->len);
    struct wire_frame *slot = &p->ring[(p->head + p->count) % limit];
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
    size_t max_len = (size_t)self->wire->cfg.mtu + ETH_HEADER_LEN;
    size_t accepted = 0;
    (void)now;

    for (size_t i = 0; i < n; i++) {
        if (frames[i].len > max_len) {
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
    p->head = (p->head + 1) % p->wire->cfg.queue_limit;
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
        buf_put(p->wire, f.data);
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
    while (p->count > 0)
        buf_put(p->wire, port_dequeue(p).data);
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
    while (w->free_bufs) {
        struct wire_buf *b = w->free_bufs;
        w->free_bufs = b->next;
        free(b);
    }
    free(w);
}
