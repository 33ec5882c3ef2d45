/* Deferred transmission (rt.h, struct tern_tx_defer): frames for links
 * with TERN_LINK_CAP_TX_UNLOCKED leave the stack's lock before they
 * leave the process.
 *
 * Order: the core leaves frames on s->tx_pending in the order it made
 * them; a leaving call moves them to the queue's tail under both locks;
 * one thread at a time (busy) sends the queue from its head, so they
 * reach each link in that order whichever threads make and send them. The sender claims the queue while it still holds the stack's
 * lock (tern_rt_tx_claim) and is still counted inside the stack, so a
 * shutdown that waits for `inside` to fall to zero then waits for busy
 * to clear before anything is freed.
 *
 * Locks, always in this order: the stack's lock, then send_lock, then
 * tx.lock. The sender holds send_lock (never the stack's) while frames
 * go to links; tx.lock is held only to move list heads. Packets are
 * freed, and counters bumped, only under the stack's lock (the pool and
 * the counters are the stack's): the sender leaves them on `done`. */
#include "runtime/rt.h"

#include <tern/link.h>

#include "buf/pkt.h"
#include "core/stack.h"
#include "net/iface.h"

void tern_rt_tx_init(struct tern_tx_defer *tx)
{
    pthread_mutex_init(&tx->lock, NULL);
    pthread_mutex_init(&tx->send_lock, NULL);
    pthread_cond_init(&tx->idle, NULL);
    tern_list_init(&tx->q);
    tern_list_init(&tx->done);
    tx->busy = false;
    tx->sent = tx->refused = 0;
    atomic_init(&tx->has_done, false);
}

void tern_rt_tx_destroy(struct tern_tx_defer *tx)
{
    pthread_mutex_destroy(&tx->lock);
    pthread_mutex_destroy(&tx->send_lock);
    pthread_cond_destroy(&tx->idle);
}

bool tern_rt_tx_deferred(const struct tern_stack *s, const struct tern_link *l)
{
    return s->rt && (l->info.caps & TERN_LINK_CAP_TX_UNLOCKED);
}

/* s->tx_pending to the end of the queue, in order (both locks held). */
static void take_pending(struct tern_stack *s, struct tern_tx_defer *tx)
{
    struct tern_list *n;
    while ((n = tern_list_pop_front(&s->tx_pending)) != NULL)
        tern_list_push_back(&tx->q, n);
}

bool tern_rt_tx_claim(struct tern_stack *s)
{
    /* A call that made no frame for such a link leaves without the
     * queue's lock. */
    if (tern_list_empty(&s->tx_pending))
        return false;
    struct tern_tx_defer *tx = &s->rt->tx;
    bool mine = false;
    pthread_mutex_lock(&tx->lock);
    take_pending(s, tx);
    if (!tx->busy) {
        tx->busy = true;
        mine = true;
    }
    pthread_mutex_unlock(&tx->lock);
    return mine;
}

/* One queued packet to its link. */
static bool send_pkt(struct tern_stack *s, struct tern_pkt *p)
{
    /* Interfaces are never removed, and this one was complete before
     * the packet was queued under the stack's lock (the queue's lock
     * orders the two). */
    struct tern_link *l = s->ifaces[p->ifindex - 1].link; /* tern_iface_get's index */
    struct tern_frame f = {.data = tern_pkt_data(p), .len = p->len, .cap = p->len,
                           .gso_size = p->gso_size};
    if (p->csum == TERN_PKT_CSUM_PENDING)
        f.flags = TERN_FRAME_CSUM_PENDING;
    return tern_link_send(l, &f, 1, tern_rt_now()) == 1; /* s->now is the lock's */
}

void tern_rt_tx_send(struct tern_stack *s)
{
    struct tern_tx_defer *tx = &s->rt->tx;
    pthread_mutex_lock(&tx->send_lock);
    pthread_mutex_lock(&tx->lock);
    while (!tern_list_empty(&tx->q)) {
        struct tern_list batch;
        tern_list_splice_init(&batch, &tx->q);
        pthread_mutex_unlock(&tx->lock);
        uint64_t sent = 0, refused = 0;
        struct tern_list *n;
        for (n = batch.next; n != &batch; n = n->next) {
            if (send_pkt(s, tern_pkt_of(n)))
                sent++;
            else
                refused++;
        }
        pthread_mutex_lock(&tx->lock);
        while ((n = tern_list_pop_front(&batch)) != NULL)
            tern_list_push_back(&tx->done, n);
        tx->sent += sent;
        tx->refused += refused;
        atomic_store_explicit(&tx->has_done, true, memory_order_relaxed);
    }
    tx->busy = false;
    pthread_cond_broadcast(&tx->idle);
    pthread_mutex_unlock(&tx->lock);
    pthread_mutex_unlock(&tx->send_lock);
}

void tern_rt_tx_reap(struct tern_stack *s)
{
    struct tern_tx_defer *tx = &s->rt->tx;
    struct tern_list done;
    pthread_mutex_lock(&tx->lock);
    tern_list_splice_init(&done, &tx->done);
    uint64_t sent = tx->sent, refused = tx->refused;
    tx->sent = tx->refused = 0;
    atomic_store_explicit(&tx->has_done, false, memory_order_relaxed);
    pthread_mutex_unlock(&tx->lock);
    tern_count_n(s, TERN_C_LINK_TX_FRAMES, sent);
    tern_count_n(s, TERN_C_DROP_LINK_TX_REFUSED, refused);
    tern_pkt_queue_purge_take(s, &done);
}

void tern_rt_tx_drain(struct tern_stack *s)
{
    struct tern_tx_defer *tx = &s->rt->tx;
    pthread_mutex_lock(&tx->lock);
    take_pending(s, tx);
    while (tx->busy)
        pthread_cond_wait(&tx->idle, &tx->lock);
    bool any = !tern_list_empty(&tx->q);
    if (any)
        tx->busy = true;
    pthread_mutex_unlock(&tx->lock);
    if (any)
        tern_rt_tx_send(s);
    tern_rt_tx_reap(s);
}

void tern_rt_tx_stats_begin(const struct tern_stack *s)
{
    if (s->rt)
        pthread_mutex_lock(&s->rt->tx.send_lock);
}

void tern_rt_tx_stats_end(const struct tern_stack *s)
{
    if (s->rt)
        pthread_mutex_unlock(&s->rt->tx.send_lock);
}
