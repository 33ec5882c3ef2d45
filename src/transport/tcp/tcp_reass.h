/*
 * The TCP receiver's out-of-order queue and the SACK blocks it reports.
 *
 * RFC 9293 section 3.10.7.4 says segments that begin beyond RCV.NXT
 * "SHOULD be held for later processing" (SHLD-31); this is where they are
 * held until the hole before them fills, and what RFC 2018 section 4's
 * SACK option describes.
 *
 * Ownership. A queue is a plain value embedded in its owner (the TCB) and
 * owns every byte it holds: insert copies the caller's bytes (DESIGN.md
 * rule 5), take_in_order and purge free them. It allocates nothing while
 * empty, so an in-order connection pays only the struct. Single-threaded
 * like the rest of the core: the owner's stack serialises every call. Only
 * purge, destroy, take_in_order and insert (dropping bytes that fell below
 * RCV.NXT) free memory.
 *
 * Shape. A sorted list of blocks. A block is a maximal run of held bytes:
 * blocks never overlap and are never adjacent (an insert that touches or
 * bridges blocks merges them into one), so a block is exactly what a SACK
 * block reports (RFC 2018 section 3: "a contiguous and isolated block")
 * and the block count is the count of holes a sender has left. A block's
 * bytes are a chain of chunks, one malloc'd copy per piece of a segment
 * that brought new bytes, so merging is a splice, not a copy, and no byte is
 * ever copied twice on the way in.
 *
 * Overlap. A segment is trimmed against what is held: bytes already held
 * keep their first copy and only the new pieces are copied. That is RFC
 * 9293 section 3.10.7.4's rule at RCV.NXT ("only the new parts are
 * processed") applied to every held byte; the RFC says nothing about
 * overlaps among held segments. Other stacks differ: 4.4BSD's tcp_reass
 * (and FreeBSD after it) trims a new segment against the one before it
 * but lets it trim or replace the ones after it, and Linux replaces a held
 * segment that a new one covers whole. An honest sender resends the same
 * bytes, so only forged or corrupted data can tell the difference, and
 * keeping what is held costs no copy. Nothing below RCV.NXT is ever held.
 *
 * Bounds (DESIGN.md rule 7). `limit` bounds the memory charged: every
 * chunk is charged its bytes plus TERN_TCP_REASS_CHUNK_COST and every block
 * TERN_TCP_REASS_BLOCK_COST, which is near what malloc really spends, so a
 * flood of one-byte segments is bounded by memory and not only by count.
 * An insert that would go past the limit, or past TERN_TCP_REASS_MAX_BLOCKS
 * blocks (a fragmentation attack: many tiny segments with holes between),
 * changes nothing and says so; the queue is never left half-updated, and
 * a malloc failure is reported the same way as the limit. Nothing already
 * held is evicted to make room (no reneging, RFC 2018 section 8).
 * Because of the per-chunk charge, a window's worth of data needs a limit a
 * little above the window (about 2% more for 1460-byte segments, more for
 * smaller ones); the
 * caller sizes it, e.g. from SO_RCVBUF, and counts each refusal (DESIGN.md
 * rule 6); the sender retransmits what was refused.
 *
 * Sequence numbers. All positions are modulo 2^32 (RFC 9293 section 3.4).
 * The caller passes RCV.NXT to every call; it never moves backwards, and a
 * segment must lie within TERN_TCP_REASS_SPAN_MAX of it once trimmed (the
 * caller's acceptability test against the window guarantees that: RFC 7323
 * section 2.3's largest window is below 2^30). Breaking that is a bug in
 * the caller and fails an assertion.
 *
 * Contract with TCP input. In-order data normally goes straight to the
 * receive ring; after RCV.NXT advances, take_in_order hands over whatever
 * became contiguous. The queue holds bytes only: a FIN that arrives out of
 * order must be remembered by the caller (its sequence number) and acted
 * on when RCV.NXT reaches it.
 */
#ifndef TERN_TRANSPORT_TCP_REASS_H
#define TERN_TRANSPORT_TCP_REASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/list.h"
#include "wire/tcp.h"

/* The most blocks (runs of held bytes, one per hole before them) a queue
 * keeps: the answer to floods of tiny segments with holes between
 * (SegmentSmack: CVE-2018-5390 in Linux, CVE-2018-6922 in FreeBSD), cheap
 * to walk, and well above what ordinary loss leaves in one window.
 * FreeBSD caps its queue at 100 segments (net.inet.tcp.reass.maxqueuelen);
 * counting runs, not segments, lets a long train of small in-window
 * segments behind one hole through. */
#define TERN_TCP_REASS_MAX_BLOCKS 256u
/* Memory charged per chunk and per block, beyond the data bytes: the
 * header of each allocation plus malloc's own overhead, rounded up. Fixed,
 * not sizeof(), so that the same inputs refuse the same segments on every
 * platform (DESIGN.md rule 2). */
#define TERN_TCP_REASS_CHUNK_COST 32u
#define TERN_TCP_REASS_BLOCK_COST 64u
/* The largest limit; keeps every charge inside a uint32_t. */
#define TERN_TCP_REASS_LIMIT_MAX (1u << 31)
/* How far beyond RCV.NXT a held byte may lie. */
#define TERN_TCP_REASS_SPAN_MAX (1u << 30)

struct tern_tcp_reass {
    struct tern_list blocks; /* sorted by sequence number, lowest first */
    uint32_t limit;          /* most memory that may be charged */
    uint32_t charge;         /* memory charged now: data + per-allocation costs */
    uint32_t held;           /* bytes held (not yet taken) */
    uint32_t nblocks;
    uint64_t clock;          /* stamps blocks as inserts touch them, for SACK order */
};

enum tern_tcp_reass_result {
    TERN_TCP_REASS_ADDED,      /* every byte of the segment was new and is held */
    TERN_TCP_REASS_TRIMMED,    /* some bytes were new and are held; the rest were
                                * already held or below RCV.NXT (a partial duplicate) */
    TERN_TCP_REASS_DUPLICATE,  /* nothing new: all held already, below RCV.NXT, or empty */
    TERN_TCP_REASS_NO_MEMORY,  /* refused: the limit (or malloc) would not allow it */
    TERN_TCP_REASS_TOO_MANY_BLOCKS, /* refused: it would make a block past the cap */
};

/* What take_in_order hands bytes to: it consumes up to n bytes at p and
 * returns how many it took. Taking fewer than n stops the hand-over; the
 * rest stays queued. It must not call back into the queue. */
typedef size_t (*tern_tcp_reass_sink)(void *arg, const void *p, size_t n);

/* An empty queue that may charge up to `limit` bytes (clamped to
 * TERN_TCP_REASS_LIMIT_MAX). Allocates nothing. */
void tern_tcp_reass_init(struct tern_tcp_reass *q, uint32_t limit);
/* Free everything held (RST, abort, or simply clear); the limit stays and
 * the queue is ready for use. Returns the bytes dropped. */
uint32_t tern_tcp_reass_purge(struct tern_tcp_reass *q);
/* Purge and leave the queue with limit 0; it may be initialised again. */
void tern_tcp_reass_destroy(struct tern_tcp_reass *q);
/* Change the limit (clamped). Never drops bytes: a lower limit only
 * refuses inserts until takes bring the charge under it. */
void tern_tcp_reass_set_limit(struct tern_tcp_reass *q, uint32_t limit);

/* Hold the new bytes of the segment [seq, seq + len). Bytes below rcv_nxt
 * and bytes already held are trimmed off (first copy wins). Whatever the
 * result, bytes that were already below rcv_nxt before the call are
 * dropped first. The block that now contains the segment becomes the most
 * recent for SACK (also when the segment was an out-of-order duplicate,
 * because RFC 2018 section 4's first block names the segment that
 * triggered the ACK); a refused or below-rcv_nxt segment touches nothing.
 * A segment starting at or before rcv_nxt is accepted too (its in-order
 * part is held, for take_in_order to deliver), though TCP input normally
 * writes in-order data straight to the receive ring. */
enum tern_tcp_reass_result tern_tcp_reass_insert(struct tern_tcp_reass *q, uint32_t rcv_nxt,
                                                 uint32_t seq, const void *data, size_t len);

/* rcv_nxt has advanced (an in-order segment was accepted): drop any held
 * bytes now below it, then hand the bytes contiguous with rcv_nxt to
 * sink(arg, ...) in order, freeing them as they go. Returns the bytes the
 * sink took; the caller advances RCV.NXT by that much. If the sink takes
 * less than it was offered, the hand-over stops there and the rest stays
 * queued: call again (with the new RCV.NXT) when there is room. */
size_t tern_tcp_reass_take_in_order(struct tern_tcp_reass *q, uint32_t rcv_nxt,
                                    tern_tcp_reass_sink sink, void *arg);

/* Fill out[0..max) with SACK blocks per RFC 2018 section 4 and return how
 * many: first the block holding the most recently inserted segment, then
 * the other blocks in order of how recently a segment landed in them (the
 * order in which they were last reported first), so the oldest blocks are
 * the ones left out when there are more than `max`. Adjacent held bytes
 * are one block; no block starts at or below rcv_nxt (those bytes are
 * deliverable, so call after take_in_order). With timestamps only 3 fit
 * in the option (RFC 2018 section 3); D-SACK (RFC 2883) is the caller's. */
size_t tern_tcp_reass_sack_blocks(const struct tern_tcp_reass *q, uint32_t rcv_nxt,
                                  struct tern_tcp_sack_block *out, size_t max);

static inline uint32_t tern_tcp_reass_bytes_held(const struct tern_tcp_reass *q)
{
    return q->held;
}
static inline uint32_t tern_tcp_reass_blocks(const struct tern_tcp_reass *q)
{
    return q->nblocks;
}
static inline bool tern_tcp_reass_empty(const struct tern_tcp_reass *q) { return q->nblocks == 0; }
/* Memory charged against the limit now. */
static inline uint32_t tern_tcp_reass_charge(const struct tern_tcp_reass *q) { return q->charge; }

/* Assert every invariant: blocks sorted, non-empty, neither overlapping
 * nor adjacent, within TERN_TCP_REASS_SPAN_MAX of each other; chunks
 * contiguous and covering their block exactly; held, charge and nblocks
 * equal to what the lists add up to; no stamp past the clock. For tests
 * and debug builds: it walks everything. */
void tern_tcp_reass_check(const struct tern_tcp_reass *q);

#endif
