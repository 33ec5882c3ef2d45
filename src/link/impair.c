/* Impairment wrapper: loss, duplication, corruption, delay, jitter,
 * reordering and a rate limit, per direction, from a seeded generator.
 *
 * Each impaired direction holds its frames in a min-heap keyed by
 * (delivery time, sequence number): the sequence number makes ties leave in
 * arrival order, so without jitter and reordering order is kept, and with
 * an all-zero config every frame leaves in the call that brought it.
 *
 * Random draws happen in a fixed order per frame (loss, duplicate, then per
 * copy: corrupt, corrupt position, jitter, reorder) and only for non-zero
 * settings, and each direction has its own generator, so a run replays
 * exactly for a seed however sends and receives interleave.
 *
 * Stats count what crossed this link's upper edge: tx_frames/bytes are the
 * frames send() accepted, rx_frames/bytes those recv() returned. tx_dropped
 * and rx_dropped count every frame lost on the way, including impairment
 * loss and frames the inner link refused when forwarded. */
#include <tern/link.h>

#include "core/rand.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ETH_HEADER_LEN 14
#define MAX_MTU 65535
#define DEFAULT_QUEUE_LIMIT 4096

struct held_frame {
    tern_time_t due;
    uint64_t seq;
    uint8_t *data;
    size_t len;
    uint32_t flags; /* the frame's, TERN_FRAME_CSUM_PENDING kept unless damaged */
};

struct impair_dir {
    struct tern_impair_config cfg;
    struct tern_rng rng;
    struct held_frame *heap; /* cfg.queue_limit slots; NULL = clean direction */
    uint32_t count;
    uint64_t next_seq;
    tern_time_t serialiser_free_at; /* when the previous frame finished */
};

struct impair_link {
    struct tern_link link; /* first */
    struct tern_link *inner;
    struct impair_dir tx, rx;
    uint8_t *scratch; /* TERN_LINK_MAX_FRAME bytes, to pull from inner */
    uint8_t *seg;     /* as many, for the segments of a coalesced frame */
    tern_time_t pull_now;
};

static tern_time_t time_add(tern_time_t a, tern_time_t b)
{
    return a > TERN_TIME_NEVER - b ? TERN_TIME_NEVER : a + b;
}

/* ---- the holding queue ---- */

static bool held_before(const struct held_frame *a, const struct held_frame *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void held_swap(struct held_frame *a, struct held_frame *b)
{
    struct held_frame t = *a;
    *a = *b;
    *b = t;
}

static void heap_push(struct impair_dir *d, struct held_frame f)
{
    uint32_t i = d->count++;
    d->heap[i] = f;
    while (i > 0 && held_before(&d->heap[i], &d->heap[(i - 1) / 2])) {
        held_swap(&d->heap[i], &d->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
}

static struct held_frame heap_pop(struct impair_dir *d)
{
    struct held_frame top = d->heap[0];
    d->heap[0] = d->heap[--d->count];
    uint32_t i = 0;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < d->count && held_before(&d->heap[l], &d->heap[m]))
            m = l;
        if (r < d->count && held_before(&d->heap[r], &d->heap[m]))
            m = r;
        if (m == i)
            break;
        held_swap(&d->heap[i], &d->heap[m]);
        i = m;
    }
    return top;
}

static bool heap_due(const struct impair_dir *d, tern_time_t now)
{
    return d->count > 0 && d->heap[0].due <= now;
}

static tern_time_t heap_deadline(const struct impair_dir *d)
{
    return d->count > 0 ? d->heap[0].due : TERN_TIME_NEVER;
}

/* ---- impairing one frame ---- */

static tern_time_t serialisation_ns(const struct impair_dir *d, size_t len)
{
    /* Rounded up so that a rate is never exceeded. len * 8e9 fits in 64 bits
     * for any frame a link carries. */
    uint64_t bits_ns = (uint64_t)len * 8 * TERN_NS_PER_SEC;
    return (bits_ns + d->cfg.rate_bps - 1) / d->cfg.rate_bps;
}

static tern_time_t delivery_time(struct impair_dir *d, size_t len, tern_time_t now)
{
    tern_time_t t = now;
    if (d->cfg.rate_bps) {
        /* A frame starts serialising once the previous one has finished. */
        tern_time_t start = now > d->serialiser_free_at ? now : d->serialiser_free_at;
        t = time_add(start, serialisation_ns(d, len));
        d->serialiser_free_at = t;
    }
    t = time_add(t, d->cfg.delay_ns);
    if (d->cfg.jitter_ns)
        t = time_add(t, d->cfg.jitter_ns == TERN_TIME_NEVER
                            ? tern_rng_next(&d->rng)
                            : tern_rng_below(&d->rng, d->cfg.jitter_ns + 1));
    if (tern_rng_chance_ppm(&d->rng, d->cfg.reorder_ppm))
        t = time_add(t, d->cfg.reorder_ns);
    return t;
}

/* Queues one copy of a frame; false when there is no room for it. */
static bool hold_copy(struct impair_dir *d, const struct tern_frame *in, tern_time_t now)
{
    size_t len = in->len;
    if (d->count == d->cfg.queue_limit)
        return false;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return false;
    memcpy(copy, in->data, len);
    struct tern_frame f = {.data = copy, .len = len, .cap = len, .flags = in->flags};
    if (tern_rng_chance_ppm(&d->rng, d->cfg.corrupt_ppm) && len > ETH_HEADER_LEN) {
        /* Past the Ethernet header, so the frame still reaches its stack
         * and the damage is for IP and transport checksums to find: a
         * checksum left pending is filled first, or nobody would look. */
        tern_frame_csum_fill(&f);
        uint64_t bit = tern_rng_below(&d->rng, (uint64_t)(len - ETH_HEADER_LEN) * 8);
        copy[ETH_HEADER_LEN + bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    struct held_frame h = {
        .due = delivery_time(d, len, now),
        .seq = d->next_seq++,
        .data = copy,
        .len = len,
        .flags = f.flags,
    };
    heap_push(d, h);
    return true;
}

/* Applies the direction's impairments to one frame. Returns false if the
 * frame was refused (too big, queue full); a frame lost to the loss rate
 * counts as taken, as a real network takes it and then loses it. */
static bool impair_frame(struct impair_dir *d, const struct tern_frame *f, tern_time_t now,
                         uint64_t *dropped)
{
    size_t len = f->len;
    if (len > (size_t)d->cfg.mtu + ETH_HEADER_LEN || d->count == d->cfg.queue_limit) {
        (*dropped)++;
        return false;
    }
    if (tern_rng_chance_ppm(&d->rng, d->cfg.loss_ppm)) {
        (*dropped)++;
        return true;
    }
    bool twice = tern_rng_chance_ppm(&d->rng, d->cfg.duplicate_ppm);
    if (!hold_copy(d, f, now)) {
        (*dropped)++;
        return false;
    }
    if (twice && !hold_copy(d, f, now))
        (*dropped)++;
    return true;
}

/* ---- the link ---- */

static void forward_due(struct impair_link *im, tern_time_t now)
{
    while (heap_due(&im->tx, now)) {
        struct held_frame f = heap_pop(&im->tx);
        struct tern_frame out = { .data = f.data, .len = f.len, .cap = f.len, .flags = f.flags };
        if (tern_link_send(im->inner, &out, 1, now) != 1)
            im->link.stats.tx_dropped++;
        free(f.data);
    }
}

/* Hands one frame to the tx side; false if it was refused. One frame at a
 * time even when clean, so that the stats know which frames were taken. */
static bool take_tx(struct impair_link *im, const struct tern_frame *f, tern_time_t now)
{
    if (im->tx.heap)
        return impair_frame(&im->tx, f, now, &im->link.stats.tx_dropped);
    if (tern_link_send(im->inner, f, 1, now) == 1)
        return true;
    im->link.stats.tx_dropped++;
    return false;
}

static size_t impair_send(struct tern_link *l, const struct tern_frame *frames, size_t n,
                          tern_time_t now)
{
    struct impair_link *im = (struct impair_link *)l;
    size_t accepted = 0;

    forward_due(im, now);
    for (size_t i = 0; i < n; i++) {
        if (take_tx(im, &frames[i], now)) {
            l->stats.tx_frames++;
            l->stats.tx_bytes += frames[i].len;
            accepted++;
        }
    }
    forward_due(im, now);
    return accepted;
}

static bool impair_segment(void *arg, const struct tern_frame *seg)
{
    struct impair_link *im = arg;
    impair_frame(&im->rx, seg, im->pull_now, &im->link.stats.rx_dropped);
    return true;
}

/* Takes what the inner link has into the rx holding queue, at most a
 * queue's worth per call so that one call's work stays bounded. */
static void pull_inner(struct impair_link *im, tern_time_t now)
{
    for (uint32_t i = 0; i < im->rx.cfg.queue_limit; i++) {
        struct tern_frame f = { .data = im->scratch, .cap = TERN_LINK_MAX_FRAME };
        if (tern_link_recv(im->inner, &f, 1, now) != 1)
            break;
        if (f.gso_size) {
            /* Coalesced by the inner link (a TAP device's GRO): each
             * segment meets the impairments on its own, as on a wire. */
            im->pull_now = now;
            tern_frame_gso_split(&f, im->seg, TERN_LINK_MAX_FRAME, true, impair_segment, im);
            continue;
        }
        impair_frame(&im->rx, &f, now, &im->link.stats.rx_dropped);
    }
}

static size_t impair_recv(struct tern_link *l, struct tern_frame *frames, size_t n,
                          tern_time_t now)
{
    struct impair_link *im = (struct impair_link *)l;
    size_t filled = 0;

    forward_due(im, now);
    if (!im->rx.heap) {
        filled = tern_link_recv(im->inner, frames, n, now);
    } else {
        pull_inner(im, now);
        while (filled < n && heap_due(&im->rx, now)) {
            struct held_frame f = heap_pop(&im->rx);
            if (f.len > frames[filled].cap) {
                l->stats.rx_dropped++;
            } else {
                memcpy(frames[filled].data, f.data, f.len);
                frames[filled].len = f.len;
                frames[filled].flags = f.flags;
                filled++;
            }
            free(f.data);
        }
    }
    l->stats.rx_frames += filled;
    for (size_t i = 0; i < filled; i++)
        l->stats.rx_bytes += frames[i].len;
    return filled;
}

static tern_time_t impair_next_deadline(struct tern_link *l, tern_time_t now)
{
    struct impair_link *im = (struct impair_link *)l;
    tern_time_t t = tern_link_next_deadline(im->inner, now);
    tern_time_t tx = heap_deadline(&im->tx), rx = heap_deadline(&im->rx);
    if (tx < t)
        t = tx;
    if (rx < t)
        t = rx;
    return t;
}

static int impair_pollfd(struct tern_link *l)
{
    return tern_link_pollfd(((struct impair_link *)l)->inner);
}

static void dir_free(struct impair_dir *d)
{
    for (uint32_t i = 0; i < d->count; i++)
        free(d->heap[i].data);
    free(d->heap);
}

static void impair_destroy(struct tern_link *l)
{
    struct impair_link *im = (struct impair_link *)l;
    dir_free(&im->tx);
    dir_free(&im->rx);
    free(im->scratch);
    free(im->seg);
    tern_link_free(im->inner);
    free(im);
}

/* A clean direction (cfg NULL) keeps heap NULL and costs nothing. */
static int dir_init(struct impair_dir *d, const struct tern_impair_config *cfg,
                    uint32_t inner_mtu, uint64_t seed)
{
    if (!cfg)
        return 0;
    if (cfg->mtu > MAX_MTU) {
        errno = EINVAL;
        return -1;
    }
    d->cfg = *cfg;
    if (!d->cfg.mtu)
        d->cfg.mtu = inner_mtu;
    if (!d->cfg.queue_limit)
        d->cfg.queue_limit = DEFAULT_QUEUE_LIMIT;
    tern_rng_seed(&d->rng, seed);
    d->heap = calloc(d->cfg.queue_limit, sizeof(*d->heap));
    return d->heap ? 0 : -1;
}

struct tern_link *tern_impair_new(struct tern_link *inner, const struct tern_impair_config *tx,
                                  const struct tern_impair_config *rx, uint64_t seed)
{
    if (!inner) {
        errno = EINVAL;
        return NULL;
    }
    struct impair_link *im = calloc(1, sizeof(*im));
    if (!im) {
        tern_link_free(inner);
        return NULL;
    }
    im->inner = inner;
    /* Distinct seeds per direction keep the two streams independent. */
    if (dir_init(&im->tx, tx, inner->info.mtu, seed) != 0 ||
        dir_init(&im->rx, rx, inner->info.mtu, seed ^ 0x5bd1e9955bd1e995ull) != 0 ||
        (rx && !(im->scratch = malloc(TERN_LINK_MAX_FRAME))) ||
        (rx && !(im->seg = malloc(TERN_LINK_MAX_FRAME)))) {
        int err = errno;
        impair_destroy(&im->link);
        errno = err;
        return NULL;
    }
    im->link.ops.send = impair_send;
    im->link.ops.recv = impair_recv;
    im->link.ops.next_deadline = impair_next_deadline;
    im->link.ops.pollfd = impair_pollfd;
    im->link.ops.destroy = impair_destroy;
    /* The stack sees the inner link's MTU even when a smaller one is
     * configured: that is how a path MTU black hole looks. A frame to be
     * damaged has its pending checksum filled first (hold_copy); a link's
     * promise that it verified what it hands over is withdrawn. */
    im->link.info = inner->info;
    if (rx && rx->corrupt_ppm)
        im->link.info.caps &= ~(uint32_t)TERN_LINK_CAP_RX_CSUM_OK;
    /* Loss and the rest apply to frames as a wire carries them: the
     * stack cuts its super-frames up before they reach us, and the inner
     * link's coalesced frames are cut up when they arrive. */
    if (tx)
        im->link.info.caps &= ~(uint32_t)TERN_LINK_CAP_TSO;
    /* recv() forwards what send() holds back (forward_due): one thread. */
    im->link.info.caps &= ~(uint32_t)TERN_LINK_CAP_TX_UNLOCKED;
    if (rx)
        im->link.info.rx_frame_max = 0;
    return &im->link;
}
