/* A thread-safe link pair (tern/runtime.h): two ends joined by two
 * bounded queues under one mutex, each end with an eventfd that is
 * readable while frames wait for it, so a started stack's runtime thread
 * wakes when the other end sends.
 *
 * Ownership: the shared part is owned by both ends together and freed by
 * whichever is freed last; each end is freed by its owner (a stack's
 * caller) with tern_link_free. A frame sent towards an end that is gone
 * is dropped. Slot buffers are allocated once, when first used, and kept,
 * so steady traffic allocates nothing. */
#include <tern/runtime.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define PIPE_DEFAULT_MTU 1500
#define PIPE_DEFAULT_QUEUE 1024
#define ETH_HEADER_LEN 14

struct pipe_queue { /* frames travelling towards one end */
    uint8_t **slot;
    uint32_t *len;
    uint32_t head, count;
    int evfd;
    bool signalled; /* evfd holds a count */
};

struct pipe_shared {
    pthread_mutex_t lock;
    struct tern_pipe_config cfg;
    struct pipe_queue q[2];
    bool alive[2];
};

struct pipe_end {
    struct tern_link link; /* first: the link pointer is the end pointer */
    struct pipe_shared *sh;
    int idx;
};

void tern_pipe_config_default(struct tern_pipe_config *cfg)
{
    cfg->mtu = PIPE_DEFAULT_MTU;
    cfg->queue_limit = PIPE_DEFAULT_QUEUE;
}

static void signal_end(struct pipe_queue *q)
{
    if (q->signalled)
        return;
    uint64_t one = 1;
    q->signalled = write(q->evfd, &one, sizeof(one)) == sizeof(one);
}

static void unsignal_end(struct pipe_queue *q)
{
    if (!q->signalled)
        return;
    uint64_t v;
    q->signalled = read(q->evfd, &v, sizeof(v)) != sizeof(v);
}

static size_t pipe_send(struct tern_link *l, const struct tern_frame *frames, size_t n,
                        tern_time_t now)
{
    struct pipe_end *e = (struct pipe_end *)l;
    struct pipe_shared *sh = e->sh;
    struct pipe_queue *q = &sh->q[1 - e->idx];
    size_t max = (size_t)sh->cfg.mtu + ETH_HEADER_LEN;
    (void)now;
    pthread_mutex_lock(&sh->lock);
    for (size_t i = 0; i < n; i++) {
        l->stats.tx_frames++;
        l->stats.tx_bytes += frames[i].len;
        if (frames[i].len > max || !sh->alive[1 - e->idx] || q->count == sh->cfg.queue_limit) {
            l->stats.tx_dropped++;
            continue;
        }
        uint32_t at = (q->head + q->count) % sh->cfg.queue_limit;
        if (!q->slot[at] && !(q->slot[at] = malloc(max))) {
            l->stats.tx_dropped++;
            continue;
        }
        memcpy(q->slot[at], frames[i].data, frames[i].len);
        q->len[at] = (uint32_t)frames[i].len;
        q->count++;
    }
    if (q->count)
        signal_end(q);
    pthread_mutex_unlock(&sh->lock);
    return n;
}

static size_t pipe_recv(struct tern_link *l, struct tern_frame *frames, size_t n,
                        tern_time_t now)
{
    struct pipe_end *e = (struct pipe_end *)l;
    struct pipe_shared *sh = e->sh;
    struct pipe_queue *q = &sh->q[e->idx];
    size_t filled = 0;
    (void)now;
    pthread_mutex_lock(&sh->lock);
    while (filled < n && q->count > 0) {
        uint32_t at = q->head;
        q->head = (q->head + 1) % sh->cfg.queue_limit;
        q->count--;
        struct tern_frame *out = &frames[filled];
        if (q->len[at] > out->cap) {
            l->stats.rx_dropped++;
            continue;
        }
        memcpy(out->data, q->slot[at], q->len[at]);
        out->len = q->len[at];
        l->stats.rx_frames++;
        l->stats.rx_bytes += out->len;
        filled++;
    }
    if (q->count == 0)
        unsignal_end(q);
    pthread_mutex_unlock(&sh->lock);
    return filled;
}

static tern_time_t pipe_next_deadline(struct tern_link *l, tern_time_t now)
{
    struct pipe_end *e = (struct pipe_end *)l;
    pthread_mutex_lock(&e->sh->lock);
    bool waiting = e->sh->q[e->idx].count > 0;
    pthread_mutex_unlock(&e->sh->lock);
    return waiting ? now : TERN_TIME_NEVER;
}

static int pipe_pollfd(struct tern_link *l)
{
    struct pipe_end *e = (struct pipe_end *)l;
    return e->sh->q[e->idx].evfd;
}

static void shared_free(struct pipe_shared *sh)
{
    for (int d = 0; d < 2; d++) {
        struct pipe_queue *q = &sh->q[d];
        for (uint32_t i = 0; q->slot && i < sh->cfg.queue_limit; i++)
            free(q->slot[i]);
        free(q->slot);
        free(q->len);
        if (q->evfd >= 0)
            close(q->evfd);
    }
    pthread_mutex_destroy(&sh->lock);
    free(sh);
}

static void pipe_destroy(struct tern_link *l)
{
    struct pipe_end *e = (struct pipe_end *)l;
    struct pipe_shared *sh = e->sh;
    pthread_mutex_lock(&sh->lock);
    sh->alive[e->idx] = false;
    bool last = !sh->alive[1 - e->idx];
    pthread_mutex_unlock(&sh->lock);
    free(e);
    if (last)
        shared_free(sh);
}

int tern_pipe_new(const struct tern_pipe_config *cfg, struct tern_link **a, struct tern_link **b)
{
    struct tern_pipe_config c;
    tern_pipe_config_default(&c);
    if (cfg) {
        if (cfg->mtu)
            c.mtu = cfg->mtu;
        if (cfg->queue_limit)
            c.queue_limit = cfg->queue_limit;
    }
    if (!a || !b || c.mtu < 68 || c.mtu > 65535) {
        errno = EINVAL;
        return -1;
    }
    struct pipe_shared *sh = calloc(1, sizeof(*sh));
    struct pipe_end *e[2] = {calloc(1, sizeof(struct pipe_end)), calloc(1, sizeof(struct pipe_end))};
    if (!sh || !e[0] || !e[1]) {
        free(sh);
        free(e[0]);
        free(e[1]);
        errno = ENOMEM;
        return -1;
    }
    sh->cfg = c;
    pthread_mutex_init(&sh->lock, NULL);
    bool ok = true;
    for (int d = 0; d < 2; d++) {
        sh->q[d].slot = calloc(c.queue_limit, sizeof(*sh->q[d].slot));
        sh->q[d].len = calloc(c.queue_limit, sizeof(*sh->q[d].len));
        sh->q[d].evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        ok = ok && sh->q[d].slot && sh->q[d].len && sh->q[d].evfd >= 0;
        sh->alive[d] = true;
    }
    if (!ok) {
        int err = errno ? errno : ENOMEM;
        shared_free(sh);
        free(e[0]);
        free(e[1]);
        errno = err;
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        e[i]->sh = sh;
        e[i]->idx = i;
        e[i]->link.ops = (struct tern_link_ops){.send = pipe_send, .recv = pipe_recv,
                                                .next_deadline = pipe_next_deadline,
                                                .pollfd = pipe_pollfd, .destroy = pipe_destroy};
        snprintf(e[i]->link.info.name, sizeof(e[i]->link.info.name), "pipe%d", i);
        e[i]->link.info.mtu = c.mtu;
        /* Both directions go through the shared mutex. */
        e[i]->link.info.caps = TERN_LINK_CAP_TX_UNLOCKED;
    }
    *a = &e[0]->link;
    *b = &e[1]->link;
    return 0;
}
