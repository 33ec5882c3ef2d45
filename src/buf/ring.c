#include "buf/ring.h"

#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

/* The ring has no stack to name in a panic: it is a leaf value, and its
 * owner's stack is not ours to reach. */
static void ring_check(const struct tern_ring *r)
{
#ifdef TERN_DEBUG
    TERN_ASSERT(NULL, r->cap <= TERN_RING_LIMIT_MAX, "ring %p cap %u", (const void *)r, r->cap);
    TERN_ASSERT(NULL, r->len <= r->cap, "ring %p len %u cap %u", (const void *)r, r->len,
                r->cap);
    TERN_ASSERT(NULL, r->cap ? r->head < r->cap : (r->head == 0 && r->buf == NULL),
                "ring %p head %u cap %u buf %p", (const void *)r, r->head, r->cap,
                (const void *)r->buf);
#else
    (void)r;
#endif
}

static uint32_t clamp_limit(uint32_t limit)
{
    return limit < TERN_RING_LIMIT_MAX ? limit : TERN_RING_LIMIT_MAX;
}

static uint32_t min_u32(uint32_t a, size_t b)
{
    return b < a ? (uint32_t)b : a;
}

/* Index in buf of the byte `off` after the oldest. off <= cap and
 * head < cap <= 2^30, so the sum cannot overflow. */
static uint32_t ring_pos(const struct tern_ring *r, uint32_t off)
{
    uint32_t p = r->head + off;
    return p >= r->cap ? p - r->cap : p;
}

void tern_ring_init(struct tern_ring *r, uint32_t limit)
{
    *r = (struct tern_ring){.limit = clamp_limit(limit)};
}

void tern_ring_destroy(struct tern_ring *r)
{
    free(r->buf);
    *r = (struct tern_ring){0};
}

void tern_ring_set_limit(struct tern_ring *r, uint32_t limit)
{
    ring_check(r);
    r->limit = clamp_limit(limit);
}

uint32_t tern_ring_shrink_idle(struct tern_ring *r)
{
    ring_check(r);
    if (r->len != 0 || r->cap == 0)
        return 0;
    uint32_t freed = r->cap;
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
    r->head = 0;
    return freed;
}

/* Make room for `need` bytes in all (need <= limit). The new block holds
 * the bytes at its front, so a grown ring is contiguous. False, and
 * counted, when memory runs out; the ring is then unchanged. */
static bool ring_grow(struct tern_ring *r, uint32_t need)
{
    if (need <= r->cap)
        return true;
    uint32_t cap = TERN_RING_MIN_ALLOC;
    while (cap < need) /* need <= 2^30: no overflow */
        cap <<= 1;
    /* A limit that is not a power of two is the last step. When the
     * limit was lowered below the block this never shrinks: need > cap. */
    if (cap > r->limit)
        cap = r->limit;
    if (cap < need)
        cap = need;
    uint8_t *nb = malloc(cap);
    if (!nb)
        return false;
    if (r->len) {
        struct tern_ring_span sp[2];
        tern_ring_spans(r, 0, r->len, sp);
        memcpy(nb, sp[0].base, sp[0].len);
        if (sp[1].len)
            memcpy(nb + sp[0].len, sp[1].base, sp[1].len);
    }
    free(r->buf);
    r->buf = nb;
    r->cap = cap;
    r->head = 0;
    return true;
}

/* Bytes the next write of up to n may take, growing the block for them.
 * Short of space() only when growth failed. */
static uint32_t ring_reserve(struct tern_ring *r, size_t n)
{
    uint32_t want = min_u32(tern_ring_space(r), n);
    if (want == 0)
        return 0;
    if (!ring_grow(r, r->len + want)) /* len + want <= limit <= 2^30 */
        want = r->cap - r->len;
    return want;
}

/* Append n bytes (n <= cap - len) at the tail. */
static void ring_put(struct tern_ring *r, const uint8_t *src, uint32_t n)
{
    if (n == 0)
        return;
    uint32_t tail = ring_pos(r, r->len);
    uint32_t first = min_u32(r->cap - tail, n);
    memcpy(r->buf + tail, src, first);
    if (n > first)
        memcpy(r->buf, src + first, n - first);
    r->len += n;
}

uint32_t tern_ring_write(struct tern_ring *r, const void *src, size_t n)
{
    ring_check(r);
    uint32_t take = ring_reserve(r, n);
    ring_put(r, src, take);
    return take;
}

uint32_t tern_ring_write_iov(struct tern_ring *r, const struct iovec *iov, size_t iovcnt,
                             size_t n)
{
    ring_check(r);
    /* What the iovecs offer, counted only as far as n: a sum of iov_len
     * can overflow size_t, the bounded one cannot. */
    size_t offered = 0;
    for (size_t i = 0; i < iovcnt && offered < n; i++)
        offered += iov[i].iov_len < n - offered ? iov[i].iov_len : n - offered;
    uint32_t take = ring_reserve(r, offered);
    uint32_t done = 0;
    for (size_t i = 0; i < iovcnt && done < take; i++) {
        uint32_t k = min_u32(take - done, iov[i].iov_len);
        ring_put(r, iov[i].iov_base, k);
        done += k;
    }
    return done;
}

uint32_t tern_ring_spans(const struct tern_ring *r, uint32_t off, size_t n,
                         struct tern_ring_span sp[2])
{
    ring_check(r);
    sp[0] = (struct tern_ring_span){NULL, 0};
    sp[1] = (struct tern_ring_span){NULL, 0};
    if (off >= r->len)
        return 0;
    uint32_t total = min_u32(r->len - off, n);
    if (total == 0)
        return 0;
    uint32_t start = ring_pos(r, off);
    uint32_t first = min_u32(r->cap - start, total);
    sp[0] = (struct tern_ring_span){r->buf + start, first};
    if (total > first)
        sp[1] = (struct tern_ring_span){r->buf, total - first};
    return total;
}

uint32_t tern_ring_peek_at(const struct tern_ring *r, uint32_t off, void *dst, size_t n)
{
    struct tern_ring_span sp[2];
    uint32_t got = tern_ring_spans(r, off, n, sp);
    if (sp[0].len)
        memcpy(dst, sp[0].base, sp[0].len);
    if (sp[1].len)
        memcpy((uint8_t *)dst + sp[0].len, sp[1].base, sp[1].len);
    return got;
}

uint32_t tern_ring_discard(struct tern_ring *r, size_t n)
{
    ring_check(r);
    uint32_t k = min_u32(r->len, n);
    if (k == 0)
        return 0;
    r->len -= k;
    /* An empty ring starts again at the front: the next bytes are
     * contiguous, which keeps segments in one span. */
    r->head = r->len ? ring_pos(r, k) : 0;
    return k;
}

uint32_t tern_ring_read(struct tern_ring *r, void *dst, size_t n)
{
    uint32_t got = tern_ring_peek_at(r, 0, dst, n);
    tern_ring_discard(r, got);
    return got;
}

uint32_t tern_ring_read_iov(struct tern_ring *r, const struct iovec *iov, size_t iovcnt,
                            size_t n, bool peek)
{
    ring_check(r);
    uint32_t want = min_u32(r->len, n);
    uint32_t done = 0;
    for (size_t i = 0; i < iovcnt && done < want; i++) {
        uint32_t k = min_u32(want - done, iov[i].iov_len);
        if (k)
            done += tern_ring_peek_at(r, done, iov[i].iov_base, k);
    }
    if (!peek)
        tern_ring_discard(r, done);
    return done;
}
