/* The out-of-order queue: see tcp_reass.h for the contract. Positions are
 * compared as offsets from rcv_nxt (or from the first block), which are
 * plain unsigned numbers once everything is known to lie within
 * TERN_TCP_REASS_SPAN_MAX of it, so no comparison below depends on where
 * the wrap of 2^32 falls. */
#include "transport/tcp/tcp_reass.h"

#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

/* One malloc'd copy of a piece of a segment: [seq, seq + len). Only the
 * first chunk of a block may have been partly taken; its live bytes start
 * at the block's start. */
struct reass_chunk {
    struct reass_chunk *next;
    uint32_t seq, len;
    uint8_t data[];
};

/* A maximal run of held bytes [start, end), start < end. */
struct reass_block {
    struct tern_list node;
    uint32_t start, end;
    uint64_t stamp; /* q->clock when a segment last landed in it; distinct */
    struct reass_chunk *head, *tail;
};

#define BLOCK_OF(n) tern_container_of((n), struct reass_block, node)

static struct reass_block *first_block(const struct tern_tcp_reass *q)
{
    return tern_list_empty(&q->blocks) ? NULL : BLOCK_OF(q->blocks.next);
}

static uint32_t reass_clamp_limit(uint32_t limit)
{
    return limit > TERN_TCP_REASS_LIMIT_MAX ? TERN_TCP_REASS_LIMIT_MAX : limit;
}

void tern_tcp_reass_init(struct tern_tcp_reass *q, uint32_t limit)
{
    tern_list_init(&q->blocks);
    q->limit = reass_clamp_limit(limit);
    q->charge = 0;
    q->held = 0;
    q->nblocks = 0;
    q->clock = 0;
}

void tern_tcp_reass_set_limit(struct tern_tcp_reass *q, uint32_t limit)
{
    q->limit = reass_clamp_limit(limit);
}

static void chunk_free(struct tern_tcp_reass *q, struct reass_chunk *c)
{
    q->charge -= c->len + TERN_TCP_REASS_CHUNK_COST;
    free(c);
}

/* Unlink and free a block with every chunk still on it. */
static void block_free(struct tern_tcp_reass *q, struct reass_block *b)
{
    struct reass_chunk *c = b->head;
    while (c) {
        struct reass_chunk *next = c->next;
        chunk_free(q, c);
        c = next;
    }
    q->held -= b->end - b->start;
    q->charge -= TERN_TCP_REASS_BLOCK_COST;
    q->nblocks--;
    tern_list_remove(&b->node);
    free(b);
}

/* Consume the first n (< the block's length) bytes of a block. */
static void block_consume(struct tern_tcp_reass *q, struct reass_block *b, uint32_t n)
{
    TERN_ASSERT(NULL, n < b->end - b->start, "consume %u of a %u-byte block", n,
                b->end - b->start);
    b->start += n;
    q->held -= n;
    /* Free the chunks that now lie wholly before the start. */
    while (b->start - b->head->seq >= b->head->len) {
        struct reass_chunk *c = b->head;
        b->head = c->next;
        chunk_free(q, c);
    }
}

/* Drop what lies below rcv_nxt: it was delivered with an in-order segment
 * that covered it (the first copy, the one in the ring, won). */
static void drop_below(struct tern_tcp_reass *q, uint32_t rcv_nxt)
{
    struct reass_block *b;
    while ((b = first_block(q)) && tern_seq_lt(b->start, rcv_nxt)) {
        if (tern_seq_le(b->end, rcv_nxt)) {
            block_free(q, b);
        } else {
            block_consume(q, b, rcv_nxt - b->start);
            break;
        }
    }
}

uint32_t tern_tcp_reass_purge(struct tern_tcp_reass *q)
{
    uint32_t dropped = q->held;
    struct reass_block *b;
    while ((b = first_block(q)))
        block_free(q, b);
    TERN_ASSERT(NULL, q->held == 0 && q->charge == 0 && q->nblocks == 0,
                "purge left held %u charge %u blocks %u", q->held, q->charge, q->nblocks);
    return dropped;
}

void tern_tcp_reass_destroy(struct tern_tcp_reass *q)
{
    tern_tcp_reass_purge(q);
    q->limit = 0;
}

/* A copy of data[0..len) as the bytes [seq, seq + len). */
static struct reass_chunk *chunk_new(uint32_t seq, const uint8_t *data, uint32_t len)
{
    struct reass_chunk *c = malloc(sizeof(*c) + len);
    if (!c)
        return NULL;
    c->next = NULL;
    c->seq = seq;
    c->len = len;
    memcpy(c->data, data, len);
    return c;
}

static void chain_free(struct reass_chunk *c)
{
    while (c) {
        struct reass_chunk *next = c->next;
        free(c);
        c = next;
    }
}

/* The run of blocks a segment [a, b) (offsets from rcv_nxt) overlaps or
 * touches, and the pieces of it that nothing holds yet. */
struct reass_plan {
    struct reass_block *first, *last; /* NULL when it touches no block */
    struct tern_list *after;          /* with no block touched: insert after this */
    uint32_t ntouched;
    uint32_t new_bytes;
    uint32_t npieces;
};

static void plan_insert(struct tern_tcp_reass *q, uint32_t rcv_nxt, uint32_t a, uint32_t b,
                        struct reass_plan *pl)
{
    memset(pl, 0, sizeof(*pl));
    /* From the highest block down: the common case extends the last one. */
    struct tern_list *it = q->blocks.prev;
    while (it != &q->blocks && BLOCK_OF(it)->start - rcv_nxt > b)
        it = it->prev;
    /* `it` is the last block starting at or before b, or the head. */
    if (it == &q->blocks || BLOCK_OF(it)->end - rcv_nxt < a) {
        pl->after = it;
        pl->new_bytes = b - a;
        pl->npieces = 1;
        return;
    }
    pl->last = BLOCK_OF(it);
    pl->first = pl->last;
    pl->ntouched = 1;
    while (pl->first->node.prev != &q->blocks &&
           BLOCK_OF(pl->first->node.prev)->end - rcv_nxt >= a) {
        pl->first = BLOCK_OF(pl->first->node.prev);
        pl->ntouched++;
    }
    /* The gaps: before each touched block, and after the last. */
    uint32_t cursor = a;
    for (const struct tern_list *n = &pl->first->node;; n = n->next) {
        const struct reass_block *blk = BLOCK_OF(n);
        uint32_t s = blk->start - rcv_nxt, e = blk->end - rcv_nxt;
        if (s > cursor) {
            pl->new_bytes += s - cursor;
            pl->npieces++;
        }
        if (e > cursor)
            cursor = e;
        if (blk == pl->last)
            break;
    }
    if (cursor < b) {
        pl->new_bytes += b - cursor;
        pl->npieces++;
    }
}

/* Copies of the gap pieces of the plan, chained in order; NULL if malloc
 * failed (nothing is left allocated then). */
static struct reass_chunk *plan_copy(const struct reass_plan *pl, uint32_t rcv_nxt, uint32_t a,
                                     uint32_t b, const uint8_t *data)
{
    struct reass_chunk *head = NULL, **tailp = &head;
    uint32_t cursor = a;
    const struct tern_list *n = pl->first ? &pl->first->node : NULL;
    for (;;) {
        /* The next gap ends at the next touched block's start, or at b. */
        uint32_t gap_end = b, next_cursor = b;
        const struct reass_block *blk = n ? BLOCK_OF(n) : NULL;
        if (blk) {
            gap_end = blk->start - rcv_nxt;
            if (gap_end > b)
                gap_end = b;
            next_cursor = blk->end - rcv_nxt;
        }
        if (gap_end > cursor) {
            struct reass_chunk *c =
                chunk_new(rcv_nxt + cursor, data + (cursor - a), gap_end - cursor);
            if (!c) {
                chain_free(head);
                return NULL;
            }
            *tailp = c;
            tailp = &c->next;
        }
        if (!blk)
            break;
        if (next_cursor > cursor)
            cursor = next_cursor;
        n = (blk == pl->last) ? NULL : n->next;
    }
    return head;
}

enum tern_tcp_reass_result tern_tcp_reass_insert(struct tern_tcp_reass *q, uint32_t rcv_nxt,
                                                 uint32_t seq, const void *data, size_t len)
{
    drop_below(q, rcv_nxt);
    if (len == 0)
        return TERN_TCP_REASS_DUPLICATE;
    TERN_ASSERT(NULL, len <= TERN_TCP_REASS_SPAN_MAX, "segment of %zu bytes", len);
    const uint8_t *p = data;
    uint32_t end = seq + (uint32_t)len;
    /* RFC 9293 section 3.10.7.4: only the new parts are processed. */
    if (tern_seq_le(end, rcv_nxt))
        return TERN_TCP_REASS_DUPLICATE;
    if (tern_seq_lt(seq, rcv_nxt)) {
        p += rcv_nxt - seq;
        seq = rcv_nxt;
    }
    uint32_t a = seq - rcv_nxt, b = end - rcv_nxt;
    TERN_ASSERT(NULL, b <= TERN_TCP_REASS_SPAN_MAX,
                "segment [%u, %u) ends too far beyond rcv_nxt %u", seq, end, rcv_nxt);

    struct reass_plan pl;
    plan_insert(q, rcv_nxt, a, b, &pl);
    if (pl.new_bytes == 0) {
        /* Wholly held: blocks are maximal, so inside one block. It is
         * still the segment that triggers the next ACK (RFC 2018
         * section 4). */
        TERN_ASSERT(NULL, pl.ntouched == 1, "duplicate across %u blocks", pl.ntouched);
        pl.first->stamp = ++q->clock;
        return TERN_TCP_REASS_DUPLICATE;
    }
    if (pl.ntouched == 0 && q->nblocks >= TERN_TCP_REASS_MAX_BLOCKS)
        return TERN_TCP_REASS_TOO_MANY_BLOCKS;
    /* The charge once done: merging n blocks into one frees n - 1. */
    uint64_t charge = (uint64_t)q->charge + pl.new_bytes +
                      (uint64_t)pl.npieces * TERN_TCP_REASS_CHUNK_COST;
    if (pl.ntouched == 0)
        charge += TERN_TCP_REASS_BLOCK_COST;
    else
        charge -= (uint64_t)(pl.ntouched - 1) * TERN_TCP_REASS_BLOCK_COST;
    if (charge > q->limit)
        return TERN_TCP_REASS_NO_MEMORY;

    /* Allocate everything before changing anything. */
    struct reass_chunk *fresh = plan_copy(&pl, rcv_nxt, a, b, p);
    if (!fresh)
        return TERN_TCP_REASS_NO_MEMORY;
    struct reass_block *into = pl.first;
    if (!into) {
        into = malloc(sizeof(*into));
        if (!into) {
            chain_free(fresh);
            return TERN_TCP_REASS_NO_MEMORY;
        }
        into->start = seq;
        into->end = end;
        into->head = into->tail = fresh;
        TERN_ASSERT(NULL, fresh->next == NULL, "a new block from %u pieces", pl.npieces);
        tern_list_insert_before(pl.after->next, &into->node);
        q->nblocks++;
    } else {
        /* Merge the touched blocks' chains and the fresh pieces by
         * position into the first block; the others go. */
        struct reass_chunk *head = NULL, **tailp = &head, *tail = NULL;
        struct reass_block *blk = pl.first;
        uint32_t new_end = pl.last->end;
        for (;;) {
            while (fresh && fresh->seq - rcv_nxt < blk->start - rcv_nxt) {
                *tailp = tail = fresh;
                tailp = &fresh->next;
                fresh = fresh->next;
            }
            *tailp = blk->head;
            tail = blk->tail;
            tailp = &tail->next;
            struct reass_block *next = blk == pl.last ? NULL : BLOCK_OF(blk->node.next);
            if (blk != pl.first) {
                tern_list_remove(&blk->node);
                free(blk);
                q->nblocks--;
            }
            if (!next)
                break;
            blk = next;
        }
        *tailp = fresh; /* what lies after the last block */
        while (tail->next)
            tail = tail->next;
        if (a < into->start - rcv_nxt)
            into->start = seq;
        if (b > new_end - rcv_nxt)
            new_end = end;
        into->end = new_end;
        into->head = head;
        into->tail = tail;
    }
    into->stamp = ++q->clock;
    q->held += pl.new_bytes;
    q->charge = (uint32_t)charge;
    return pl.new_bytes == len ? TERN_TCP_REASS_ADDED : TERN_TCP_REASS_TRIMMED;
}

size_t tern_tcp_reass_take_in_order(struct tern_tcp_reass *q, uint32_t rcv_nxt,
                                    tern_tcp_reass_sink sink, void *arg)
{
    drop_below(q, rcv_nxt);
    size_t total = 0;
    uint32_t at = rcv_nxt;
    struct reass_block *b;
    /* Blocks are never adjacent, so only the first can be contiguous;
     * the loop ends when it is used up or the sink is full. */
    while ((b = first_block(q)) && b->start == at) {
        struct reass_chunk *c = b->head;
        uint32_t off = b->start - c->seq;
        size_t n = c->len - off;
        size_t got = sink(arg, c->data + off, n);
        TERN_ASSERT(NULL, got <= n, "sink took %zu of %zu bytes", got, n);
        if (got == b->end - b->start)
            block_free(q, b);
        else if (got)
            block_consume(q, b, (uint32_t)got);
        total += got;
        at += (uint32_t)got;
        if (got < n)
            break;
    }
    return total;
}

size_t tern_tcp_reass_sack_blocks(const struct tern_tcp_reass *q, uint32_t rcv_nxt,
                                  struct tern_tcp_sack_block *out, size_t max)
{
    /* RFC 2018 section 4: the block holding the latest segment first,
     * then the rest, most recently reported first. A block's stamp is
     * when a segment last landed in it, which is when it was last (or
     * will be) reported first, so "most recent first" is "highest stamp
     * first". Stamps are distinct; at most max passes over <= 256. */
    size_t n = 0;
    uint64_t below = UINT64_MAX;
    while (n < max) {
        const struct reass_block *best = NULL;
        const struct tern_list *it;
        tern_list_for_each(it, &q->blocks) {
            const struct reass_block *blk = BLOCK_OF(it);
            if (tern_seq_gt(blk->start, rcv_nxt) && blk->stamp < below &&
                (!best || blk->stamp > best->stamp))
                best = blk;
        }
        if (!best)
            break;
        out[n].start = best->start;
        out[n].end = best->end;
        n++;
        below = best->stamp;
    }
    return n;
}

void tern_tcp_reass_check(const struct tern_tcp_reass *q)
{
    uint64_t held = 0, charge = 0;
    uint32_t nblocks = 0;
    const struct reass_block *first = first_block(q);
    uint32_t prev_end = 0;
    const struct tern_list *it;
    tern_list_for_each(it, &q->blocks) {
        const struct reass_block *blk = BLOCK_OF(it);
        uint32_t s = blk->start - first->start, e = blk->end - first->start;
        TERN_ASSERT(NULL, s < e && e <= TERN_TCP_REASS_SPAN_MAX, "block [%u, %u) bad", blk->start,
                    blk->end);
        TERN_ASSERT(NULL, blk == first || s > prev_end,
                    "block [%u, %u) overlaps or touches the one before", blk->start, blk->end);
        TERN_ASSERT(NULL, blk->stamp >= 1 && blk->stamp <= q->clock, "stamp %llu past clock %llu",
                    (unsigned long long)blk->stamp, (unsigned long long)q->clock);
        prev_end = e;
        held += e - s;
        charge += TERN_TCP_REASS_BLOCK_COST;
        nblocks++;
        const struct reass_chunk *c = blk->head;
        TERN_ASSERT(NULL, c && blk->start - c->seq < c->len,
                    "block [%u, %u) does not start in its first chunk", blk->start, blk->end);
        uint32_t at = c->seq;
        for (; c; c = c->next) {
            TERN_ASSERT(NULL, c->seq == at && c->len > 0, "chunk at %u len %u, expected at %u",
                        c->seq, c->len, at);
            at += c->len;
            charge += c->len + TERN_TCP_REASS_CHUNK_COST;
            if (!c->next)
                TERN_ASSERT(NULL, c == blk->tail, "tail is not the last chunk");
        }
        TERN_ASSERT(NULL, at == blk->end, "chunks end at %u, block at %u", at, blk->end);
    }
    TERN_ASSERT(NULL, held == q->held && charge == q->charge && nblocks == q->nblocks,
                "counted held %llu charge %llu blocks %u; recorded %u %u %u",
                (unsigned long long)held, (unsigned long long)charge, nblocks, q->held, q->charge,
                q->nblocks);
    TERN_ASSERT(NULL, nblocks <= TERN_TCP_REASS_MAX_BLOCKS, "%u blocks", nblocks);
}
