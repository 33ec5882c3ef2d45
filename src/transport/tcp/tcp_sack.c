/* The SACK scoreboard: see tcp_sack.h. */
#include "transport/tcp/tcp_sack.h"

#include <stdlib.h>
#include <string.h>

void tern_tcp_sack_init(struct tern_tcp_sackboard *b)
{
    b->rs = NULL;
}

void tern_tcp_sack_clear(struct tern_tcp_sackboard *b)
{
    free(b->rs);
    tern_tcp_sack_init(b);
}

/* The ranges, and how many (none while the board is not allocated). */
static unsigned count(const struct tern_tcp_sackboard *b)
{
    return b->rs ? b->rs->n : 0;
}
static const struct tern_tcp_sack_block *ranges(const struct tern_tcp_sackboard *b)
{
    return b->rs ? b->rs->r : NULL;
}

uint32_t tern_tcp_sack_bytes(const struct tern_tcp_sackboard *b)
{
    return b->rs ? b->rs->sacked_bytes : 0;
}

bool tern_tcp_sack_fack(const struct tern_tcp_sackboard *b, uint32_t *fack)
{
    if (count(b) == 0)
        return false;
    *fack = b->rs->r[b->rs->n - 1].end;
    return true;
}

void tern_tcp_sack_advance(struct tern_tcp_sackboard *b, uint32_t una)
{
    struct tern_tcp_sack_ranges *rs = b->rs;
    if (!rs)
        return;
    unsigned keep = 0;
    for (unsigned i = 0; i < rs->n; i++) {
        struct tern_tcp_sack_block r = rs->r[i];
        if (tern_seq_le(r.end, una)) {
            rs->sacked_bytes -= r.end - r.start;
            continue;
        }
        if (tern_seq_lt(r.start, una)) {
            rs->sacked_bytes -= una - r.start;
            r.start = una;
        }
        rs->r[keep++] = r;
    }
    rs->n = (uint8_t)keep;
    if (rs->n == 0)
        tern_tcp_sack_clear(b);
}

/* Merge [start, end) into the sorted ranges. Returns the bytes newly
 * covered (the lowest of them in *low_new), or -1 if it needed a slot the
 * full board does not have. */
static long add_range(struct tern_tcp_sackboard *b, uint32_t start, uint32_t end,
                      uint32_t *low_new)
{
    if (!b->rs) {
        b->rs = calloc(1, sizeof(*b->rs));
        if (!b->rs)
            return -1;
    }
    struct tern_tcp_sack_ranges *rs = b->rs;
    /* First range that ends at or after start (touching merges). */
    unsigned i = 0;
    while (i < rs->n && tern_seq_lt(rs->r[i].end, start))
        i++;
    /* Ranges from i that the new one touches or overlaps. */
    unsigned j = i;
    uint32_t lo = start, hi = end, covered = 0;
    uint32_t first_new = start; /* below it, [start, end) is all covered */
    bool found_new = false;
    while (j < rs->n && tern_seq_le(rs->r[j].start, end)) {
        if (!found_new && tern_seq_lt(first_new, rs->r[j].start))
            found_new = true; /* a gap before this range */
        else if (!found_new)
            first_new = tern_seq_max(first_new, rs->r[j].end);
        lo = tern_seq_min(lo, rs->r[j].start);
        hi = tern_seq_max(hi, rs->r[j].end);
        covered += rs->r[j].end - rs->r[j].start;
        j++;
    }
    *low_new = first_new;
    if (j == i) {
        if (rs->n == TERN_TCP_SACKBOARD_MAX)
            return -1;
        memmove(&rs->r[i + 1], &rs->r[i], (rs->n - i) * sizeof(*rs->r));
        rs->n++;
    } else if (j > i + 1) {
        memmove(&rs->r[i + 1], &rs->r[j], (rs->n - j) * sizeof(*rs->r));
        rs->n = (uint8_t)(rs->n - (j - i - 1));
    }
    rs->r[i].start = lo;
    rs->r[i].end = hi;
    uint32_t added = (hi - lo) - covered;
    rs->sacked_bytes += added;
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
            news.dsack_end = end;
            continue;
        }
        if (!tern_seq_lt(start, end) || tern_seq_le(start, una) || tern_seq_gt(end, max)) {
            news.invalid++;
            continue;
        }
        uint32_t low;
        long added = add_range(b, start, end, &low);
        if (added < 0) {
            news.dropped++;
        } else if (added > 0) {
            news.new_sacked = true;
            if (!news.has_low_new || tern_seq_lt(low, news.low_new))
                news.low_new = low;
            news.has_low_new = true;
        }
    }
    if (b->rs && b->rs->n == 0)
        tern_tcp_sack_clear(b);
    return news;
}

/* The SACKed bytes and ranges at or above seq. */
static void above(const struct tern_tcp_sackboard *b, uint32_t seq, uint32_t *bytes,
                  unsigned *nranges)
{
    unsigned n = count(b);
    const struct tern_tcp_sack_block *r = ranges(b);
    *bytes = 0;
    *nranges = 0;
    for (unsigned i = n; i-- > 0;) {
        if (tern_seq_le(r[i].end, seq))
            break;
        uint32_t from = tern_seq_max(r[i].start, seq);
        *bytes += r[i].end - from;
        (*nranges)++;
    }
}

bool tern_tcp_sack_is_lost(const struct tern_tcp_sackboard *b, uint32_t seq, uint32_t smss,
                           unsigned dupthresh)
{
    /* RFC 6675 section 4: lost when DupThresh discontiguous SACKed
     * sequences, or more than (DupThresh - 1) * SMSS SACKed bytes, lie
     * above it. A range counts once, however many segments it holds. */
    uint32_t bytes;
    unsigned nranges;
    above(b, seq, &bytes, &nranges);
    return nranges >= dupthresh || bytes > (dupthresh - 1) * smss;
}

uint32_t tern_tcp_sack_pipe(const struct tern_tcp_sackboard *b, uint32_t una, uint32_t max,
                            uint32_t high_rxt, uint32_t smss, unsigned dupthresh)
{
    unsigned n = count(b);
    const struct tern_tcp_sack_block *r = ranges(b);
    uint32_t pipe = 0;
    uint32_t from = una;
    /* Walk the unSACKed stretches: each hole, then the tail past the last
     * range. Every byte of a hole has the same SACKed bytes above it, so
     * IsLost is decided once per hole. */
    for (unsigned i = 0; i <= n; i++) {
        uint32_t to = i < n ? r[i].start : max;
        if (tern_seq_lt(from, to)) {
            uint32_t len = to - from;
            if (i == n || !tern_tcp_sack_is_lost(b, from, smss, dupthresh))
                pipe += len;
            if (tern_seq_gt(high_rxt, from))
                pipe += (tern_seq_lt(high_rxt, to) ? high_rxt : to) - from;
        }
        if (i < n)
            from = r[i].end;
    }
    return pipe;
}

bool tern_tcp_sack_next_hole(const struct tern_tcp_sackboard *b, uint32_t una, uint32_t high_rxt,
                             uint32_t smss, unsigned dupthresh, bool lost_only, uint32_t *seq,
                             uint32_t *len)
{
    unsigned n = count(b);
    const struct tern_tcp_sack_block *r = ranges(b);
    uint32_t from = una;
    for (unsigned i = 0; i < n; i++) {
        uint32_t to = r[i].start;
        uint32_t s = tern_seq_max(from, high_rxt);
        if (tern_seq_lt(s, to) && (!lost_only || tern_tcp_sack_is_lost(b, s, smss, dupthresh))) {
            *seq = s;
            *len = to - s < smss ? to - s : smss;
            return true;
        }
        from = r[i].end;
    }
    return false;
}

bool tern_tcp_sack_holds(const struct tern_tcp_sackboard *b, uint32_t seq)
{
    unsigned n = count(b);
    const struct tern_tcp_sack_block *r = ranges(b);
    for (unsigned i = 0; i < n; i++)
        if (tern_seq_between(seq, r[i].start, r[i].end))
            return true;
    return false;
}

void tern_tcp_sack_rxt_note(struct tern_tcp_sackboard *b, uint32_t seq, uint32_t end,
                            uint32_t max)
{
    struct tern_tcp_sack_ranges *rs = b->rs;
    if (!rs || rs->rxt_on || !tern_seq_lt(seq, end))
        return; /* no board: no SACKed data above, nothing to judge by */
    rs->rxt_on = true;
    rs->rxt_seq = seq;
    rs->rxt_end = end;
    rs->rxt_max = max;
}

void tern_tcp_sack_rxt1_note(struct tern_tcp_sackboard *b, const struct tern_tcp_sack_rxt1 *r)
{
    if (!b->rs)
        return;
    b->rs->rxt1_on = true;
    b->rs->rxt1 = *r;
}

bool tern_tcp_sack_rxt1_take(struct tern_tcp_sackboard *b, struct tern_tcp_sack_rxt1 *r)
{
    if (!b->rs || !b->rs->rxt1_on)
        return false;
    b->rs->rxt1_on = false;
    *r = b->rs->rxt1;
    return true;
}

void tern_tcp_sack_rxt_forget(struct tern_tcp_sackboard *b)
{
    if (b->rs)
        b->rs->rxt_on = false;
}

bool tern_tcp_sack_rxt_lost(struct tern_tcp_sackboard *b, uint32_t una, uint32_t smss,
                            unsigned dupthresh, uint32_t *seq, uint32_t *len)
{
    struct tern_tcp_sack_ranges *rs = b->rs;
    if (!rs || !rs->rxt_on)
        return false;
    if (tern_seq_ge(una, rs->rxt_end) || tern_tcp_sack_holds(b, rs->rxt_seq) ||
        tern_tcp_sack_holds(b, rs->rxt_end - 1)) {
        rs->rxt_on = false; /* it arrived, or part of it: not lost */
        return false;
    }
    if (tern_seq_lt(rs->rxt_seq, una))
        rs->rxt_seq = una;
    /* What lies above rxt_max was first sent after the retransmission. */
    if (!tern_tcp_sack_is_lost(b, rs->rxt_max, smss, dupthresh))
        return false;
    *seq = rs->rxt_seq;
    uint32_t n = rs->rxt_end - rs->rxt_seq;
    *len = n < smss ? n : smss;
    rs->rxt_on = false;
    return true;
}
