/*
 * Byte rings: the send and receive buffers of stream sockets.
 *
 * Ownership. A ring is a plain value embedded in its owner (a TCB or a
 * socket) and owns exactly one heap block, `buf`. Only tern_ring_destroy()
 * and tern_ring_shrink_idle() free it; every other function borrows the
 * ring. Like the rest of the core it is single-threaded: the owner's stack
 * serialises every call. Data is copied in and out (DESIGN.md rule 5): the
 * ring never keeps a pointer into caller memory.
 *
 * Two capacities, because an idle connection must cost almost nothing
 * (docs/tcp-plan.md: under 1 KB per idle connection):
 *   - `limit` is the logical size, SO_SNDBUF / SO_RCVBUF: how many bytes
 *     the ring may hold. It bounds the memory (DESIGN.md rule 7).
 *   - `cap` is what is allocated now. It starts at 0 (buf == NULL) and
 *     grows, only when a write needs it, to the next power of two at
 *     least TERN_RING_MIN_ALLOC, clamped to `limit`. Growth copies the
 *     bytes to the front of the new block. tern_ring_shrink_idle() frees
 *     the block when the ring is empty, so an idle connection holds none.
 *
 * Semantics:
 *   - Caller-supplied byte counts are size_t and are clamped, never
 *     truncated; results are uint32_t and never exceed the bytes the call
 *     could act on. No call fails silently: every one returns how many
 *     bytes it moved.
 *   - Writes take at most tern_ring_space() bytes: always a prefix of
 *     what was offered, so the caller resends the rest. If growing the
 *     block fails, a write takes only what fits in the current block:
 *     "took less than min(n, space)" tells the caller that memory, not
 *     the limit, stopped it, so it can report why.
 *   - tern_ring_set_limit() may go below the bytes held: nothing is lost,
 *     space() is 0 until reads or discards bring len under the new limit.
 *     The block is not shrunk until it is empty and shrink_idle runs.
 *   - Offsets count from the oldest byte held (offset 0 = the next byte a
 *     read returns, = snd_una for a send buffer). An offset past len
 *     yields 0 bytes.
 *   - Pointers obtained from tern_ring_spans() stay valid until the next
 *     call that writes, grows, shrinks or destroys the ring; reads,
 *     peeks and discards do not move bytes.
 *
 * Invariants (checked by tern_ring_check in debug builds): len <= cap,
 * cap <= TERN_RING_LIMIT_MAX, head < cap whenever cap > 0, head == 0 and
 * buf == NULL when cap == 0, and len <= limit unless the limit was lowered
 * since the bytes were written.
 */
#ifndef TERN_BUF_RING_H
#define TERN_BUF_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* The largest limit: RFC 7323's largest window (65535 << 14) rounded up,
 * and small enough that head + offset never overflows a uint32_t. */
#define TERN_RING_LIMIT_MAX (1u << 30)
/* The first allocation: small enough for an interactive connection, big
 * enough that a stream of small writes does not realloc at every step. */
#define TERN_RING_MIN_ALLOC 512u

struct tern_ring {
    uint8_t *buf;   /* NULL until the first write that needs bytes */
    uint32_t cap;   /* bytes allocated at buf; 0 when buf is NULL */
    uint32_t head;  /* index in buf of the oldest byte held */
    uint32_t len;   /* bytes held, starting at head, wrapping at cap */
    uint32_t limit; /* most bytes the ring may hold (SO_SNDBUF/SO_RCVBUF) */
};

/* A contiguous piece of the ring's bytes, for reading in place. */
struct tern_ring_span {
    const uint8_t *base;
    uint32_t len;
};

/* An empty ring that may hold up to `limit` bytes (clamped to
 * TERN_RING_LIMIT_MAX). Allocates nothing. */
void tern_ring_init(struct tern_ring *r, uint32_t limit);
/* Free the block and drop every byte; the ring is left empty with limit 0
 * and may be initialised again. */
void tern_ring_destroy(struct tern_ring *r);
/* Change the logical size (clamped to TERN_RING_LIMIT_MAX). Never drops
 * bytes, never allocates. */
void tern_ring_set_limit(struct tern_ring *r, uint32_t limit);
/* Free the block if the ring holds nothing; returns the bytes released
 * (0 if the ring held data or had no block). */
uint32_t tern_ring_shrink_idle(struct tern_ring *r);

static inline uint32_t tern_ring_len(const struct tern_ring *r) { return r->len; }
static inline uint32_t tern_ring_limit(const struct tern_ring *r) { return r->limit; }
/* Bytes a write may take now: 0 while len >= limit. */
static inline uint32_t tern_ring_space(const struct tern_ring *r)
{
    return r->len < r->limit ? r->limit - r->len : 0;
}
/* Bytes of memory the ring holds now (for per-connection accounting). */
static inline uint32_t tern_ring_alloc_bytes(const struct tern_ring *r) { return r->cap; }

/* Append up to n bytes of src; returns the bytes taken (a prefix of src). */
uint32_t tern_ring_write(struct tern_ring *r, const void *src, size_t n);
/* Append up to n bytes gathered from iov[0..iovcnt) in order; zero-length
 * iovecs are skipped. Returns the bytes taken (a prefix of the gather). */
uint32_t tern_ring_write_iov(struct tern_ring *r, const struct iovec *iov, size_t iovcnt,
                             size_t n);

/* Copy up to n of the oldest bytes into dst and consume them. */
uint32_t tern_ring_read(struct tern_ring *r, void *dst, size_t n);
/* Copy up to n bytes starting `off` bytes after the oldest into dst,
 * consuming nothing (a retransmission reads the send buffer this way). */
uint32_t tern_ring_peek_at(const struct tern_ring *r, uint32_t off, void *dst, size_t n);
/* Scatter up to n of the oldest bytes over iov[0..iovcnt) (zero-length
 * iovecs are skipped); consume them unless `peek` (MSG_PEEK). */
uint32_t tern_ring_read_iov(struct tern_ring *r, const struct iovec *iov, size_t iovcnt,
                            size_t n, bool peek);
/* Drop up to n of the oldest bytes (acknowledged data leaving the send
 * buffer); returns the bytes dropped. */
uint32_t tern_ring_discard(struct tern_ring *r, size_t n);

/* The bytes [off, off + n) as at most two contiguous pieces, in order:
 * sp[0] then sp[1]. Clamped to the bytes held; returns the total, which is
 * sp[0].len + sp[1].len. Unused pieces are {NULL, 0}; sp[1] is used only
 * when the range wraps. Lets TCP output checksum and copy a segment's
 * payload straight from the send buffer. */
uint32_t tern_ring_spans(const struct tern_ring *r, uint32_t off, size_t n,
                         struct tern_ring_span sp[2]);

#endif
