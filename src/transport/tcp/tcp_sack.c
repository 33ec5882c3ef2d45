/* The SACK scoreboard: see tcp_sack.h. */
#include "transport/tcp/tcp_sack.h"

#include <stdlib.h>
#include <string.h>

void tern_tcp_sack_init(struct tern_tcp_sackboard *b)
{
    *b = (struct tern_tcp_sackboard){0};
}

void tern_tcp_sack_clear(struct tern_tcp_sackboard *b)
{
    free(b->r);
    tern_tcp_sack_init(b);
}

void tern_tcp_sack_advance(struct tern_tcp_sackboard *b, uint32_t una)
{
    unsigned keep = 0;
    for (unsigned i = 0; i < b->n; i++) {
        struct tern_tcp_sack_block r = b->r[i];
        if (tern_seq_le(r.end, una)) {
            b->sacked_bytes -= r.end - r.start;
            continue;
        }
        if (tern_seq_lt(r.start, una)) {
            b->sacked_bytes -= una - r.start;
            r.start = una;
        }
        b->r[keep++] = r;
    }
    b->n = (uint8_t)keep;
    if (b->n == 0)
        tern_tcp_sack_clear(b);
}

/* Merge [start, end) into the sorted ranges. Returns the bytes newly
 * covered, or -1 if it needed a slot the full board does not have. */
static long add_range(struct tern_tcp_sackboard *b, uint32_t start, uint32_t end)
{
    if (!b->r) {
        b->r = malloc(TERN_TCP_SACKBOARD_MAX * sizeof(*b->r));
        if (!b->r)
            return -1;
    }
    /* First range that ends at or after start (touching merges). */
    unsigned i = 0;
    while (i < b->n && tern_seq_lt(b->r[i].end, start))
        i++;
    /* Ranges from i that the new one touches or overlaps. */
    unsigned j = i;
    uint32_t lo = start, hi = end, covered = 0;
    while (j < b->n && tern_seq_le(b->r[j].start, end)) {
        lo = tern_seq_min(lo, b->r[j].start);
        hi = tern_seq_max(hi, b->r[j].end);
        covered += b->r[j].end - b->r[j].start;
        j++;
    }
    if (j == i) {
        if (b->n == TERN_TCP_SACKBOARD_MAX)
            return -1;
        memmove(&b->r[i + 1], &b->r[i], (b->n - i) * sizeof(*b->r));
        b->n++;
    } else if (j > i + 1) {
        memmove(&b->r[i + 1], &b->r[j], (b->n - j) * sizeof(*b->r));
        b->n = (uint8_t)(b->n - (j - i - 1));
    }
    b->r[i].start = lo;
    b->r[i].end = hi;
    uint32_t added = (hi - lo) - covered;
    b->sacked_bytes += added;
    return (long)added;
}

struct tern_tcp_sack_news tern_tcp_sack_update(struct tern_tcp_sackboard *b, uint32_t una,
                                               uint32_t max,
                                               const struct tern_tcp_sack_block *blocks,
                                               unsigned n)
{
    struct tern_tcp_sack_news news = {0};
    for (unsigned k = 0; k < n; k++) {
        uint32_t start = blocks[k].start, end = blocks[k].end;
        /* RFC 2883 section 4: a first block below the cumulative ACK, or
         * inside the second block, reports a duplicate: not new. */
        if (k == 0 && (tern_seq_le(end, una) ||
                       (n > 1 && tern_seq_ge(start, blocks[1].start) &&
                        tern_seq_le(end, blocks[1].end)))) {
            news.dsack++;
            continue;
        }
        if (!tern_seq_lt(start, end) || tern_seq_le(start, una) || tern_seq_gt(end, max)) {
            news.invalid++;
            continue;
        }
        long added = add_range(b, start, end);
        if (added < 0)
            news.dropped++;
        else if (added > 0)
            news.new_sacked = true;
    }
    if (b->n == 0 && b->r)
        tern_tcp_sack_clear(b);
    return news;
}

/* The SACKed bytes and ranges at or above seq. */
static void above(const struct tern_tcp_sackboard *b, uint32_t seq, uint32_t *bytes,
                  unsigned *ranges)
{
    *bytes = 0;
    *ranges = 0;
    for (unsigned i = b->n; i-- > 0;) {
        if (tern_seq_le(b->r[i].end, seq))
            break;
        uint32_t from = tern_seq_max(b->r[i].start, seq);
        *bytes += b->r[i].end - from;
        (*ranges)++;
    }
}

bool tern_tcp_sack_is_lost(const struct tern_tcp_sackboard *b, uint32_t seq, uint32_t smss)
{
    /* RFC 6675 section 4: lost when DupThresh discontiguous SACKed
     * sequences, or more than (DupThresh - 1) * SMSS SACKed bytes, lie
     * above it. A range counts once, however many segments it holds. */
    uint32_t bytes;
    unsigned ranges;
    above(b, seq, &bytes, &ranges);
    return ranges >= TERN_TCP_DUPTHRESH || bytes > (TERN_TCP_DUPTHRESH - 1) * smss;
}

uint32_t tern_tcp_sack_pipe(const struct tern_tcp_sackboard *b, uint32_t una, uint32_t max,
                            uint32_t high_rxt, uint32_t smss)
{
    uint32_t pipe = 0;
    uint32_t from = una;
    /* Walk the unSACKed stretches: each hole, then the tail past the last
     * range. Every byte of a hole has the same SACKed bytes above it, so
     * IsLost is decided once per hole. */
    for (unsigned i = 0; i <= b->n; i++) {
        uint32_t to = i < b->n ? b->r[i].start : max;
        if (tern_seq_lt(from, to)) {
            uint32_t len = to - from;
            if (i == b->n || !tern_tcp_sack_is_lost(b, from, smss))
                pipe += len;
            if (tern_seq_gt(high_rxt, from))
                pipe += (tern_seq_lt(high_rxt, to) ? high_rxt : to) - from;
        }
        if (i < b->n)
            from = b->r[i].end;
    }
    return pipe;
}

bool tern_tcp_sack_next_hole(const struct tern_tcp_sackboard *b, uint32_t una, uint32_t high_rxt,
                             uint32_t smss, bool lost_only, uint32_t *seq, uint32_t *len)
{
    uint32_t from = una;
    for (unsigned i = 0; i < b->n; i++) {
        uint32_t to = b->r[i].start;
        uint32_t s = tern_seq_max(from, high_rxt);
        if (tern_seq_lt(s, to) && (!lost_only || tern_tcp_sack_is_lost(b, s, smss))) {
            *seq = s;
            *len = to - s < smss ? to - s : smss;
            return true;
        }
        from = b->r[i].end;
    }
    return false;
}

bool tern_tcp_sack_holds(const struct tern_tcp_sackboard *b, uint32_t seq)
{
    for (unsigned i = 0; i < b->n; i++)
        if (tern_seq_between(seq, b->r[i].start, b->r[i].end))
            return true;
    return false;
}
