/* Byte rings: every operation checked against a flat array holding the
 * same bytes, across wrap-around, growth, lowered limits and idle frees. */
#include "testing.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "buf/ring.h"
#include "core/rand.h"

#if defined(__SANITIZE_ADDRESS__)
#define RING_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RING_TEST_ASAN 1
#endif
#endif

#ifdef RING_TEST_ASAN
/* Allocation-failure injection without touching the library: under ASan,
 * a request above 1 MiB returns NULL instead of memory. The tests below
 * allocate far less than that except where they mean to fail. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1:max_allocation_size_mb=1";
}
#endif

/* The reference: the bytes held, oldest first, in a flat array. */
#define MODEL_MAX 8192u
struct model {
    uint8_t b[MODEL_MAX];
    uint32_t len;
    uint32_t limit;
};

static uint32_t model_space(const struct model *m)
{
    return m->len < m->limit ? m->limit - m->len : 0;
}

static void model_consume(struct model *m, uint32_t n)
{
    memmove(m->b, m->b + n, m->len - n);
    m->len -= n;
}

static uint32_t min32(uint32_t a, uint32_t b) { return a < b ? a : b; }

/* The ring's fields agree with its contract and with the model. */
static void check_ring(const struct tern_ring *r, const struct model *m, uint32_t peak_limit)
{
    assert_int_equal(tern_ring_len(r), m->len);
    assert_int_equal(tern_ring_limit(r), m->limit);
    assert_int_equal(tern_ring_space(r), model_space(m));
    assert_true(r->len <= r->cap);
    assert_true(r->cap <= peak_limit);
    if (r->cap) {
        assert_non_null(r->buf);
        assert_true(r->head < r->cap);
    } else {
        assert_null(r->buf);
        assert_int_equal(r->head, 0);
    }
}

static void check_contents(const struct tern_ring *r, const struct model *m)
{
    static const size_t big = MODEL_MAX + 100;
    uint8_t *out = malloc(big);
    assert_non_null(out);
    assert_int_equal(tern_ring_peek_at(r, 0, out, big), m->len);
    assert_memory_equal(out, m->b, m->len);
    free(out);
}

/* Limits small enough that the ring wraps constantly, sometimes not a
 * power of two, sometimes below what is held. */
static uint32_t random_limit(struct tern_rng *g)
{
    switch (tern_rng_below(g, 4)) {
    case 0: return (uint32_t)tern_rng_below(g, 64);
    case 1: return 512u << tern_rng_below(g, 4); /* 512 .. 4096 */
    default: return (uint32_t)tern_rng_below(g, MODEL_MAX + 1);
    }
}

static size_t random_count(struct tern_rng *g)
{
    switch (tern_rng_below(g, 8)) {
    case 0: return 0;
    case 1: return SIZE_MAX; /* clamped, never truncated */
    case 2: return (size_t)1 << 32 | 5; /* would be 5 if truncated */
    default: return (size_t)tern_rng_below(g, 1500);
    }
}

/* Up to six iovecs, some of length zero, over buf[0..total). */
static size_t random_iov(struct tern_rng *g, struct iovec *iov, uint8_t *buf, size_t total)
{
    size_t cnt = (size_t)tern_rng_below(g, 7), used = 0;
    for (size_t i = 0; i < cnt; i++) {
        size_t k = tern_rng_below(g, 3) == 0 ? 0 : (size_t)tern_rng_below(g, total - used + 1);
        iov[i] = (struct iovec){.iov_base = k ? buf + used : NULL, .iov_len = k};
        used += k;
    }
    return cnt;
}

struct fuzz_stats {
    unsigned wrapped_spans, short_writes, limit_below_len, idle_frees, grows;
};

static void fuzz_one_seed(uint64_t seed, unsigned ops, struct fuzz_stats *st)
{
    struct tern_rng g;
    tern_rng_seed(&g, seed);
    struct model *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    uint8_t src[MODEL_MAX], dst[MODEL_MAX + 16];
    struct tern_ring r;
    m->limit = random_limit(&g);
    uint32_t peak = m->limit;
    tern_ring_init(&r, m->limit);

    for (unsigned op = 0; op < ops; op++) {
        uint32_t cap_before = r.cap;
        switch (tern_rng_below(&g, 10)) {
        case 0:
        case 1: { /* write */
            /* The ring reads at most space() <= MODEL_MAX bytes of src,
             * so any n, even SIZE_MAX, may be offered. */
            size_t n = random_count(&g);
            tern_rng_fill(&g, src, sizeof(src));
            uint32_t want = model_space(m);
            if (n < want)
                want = (uint32_t)n;
            assert_int_equal(tern_ring_write(&r, src, n), want);
            if (want < n)
                st->short_writes++;
            memcpy(m->b + m->len, src, want);
            m->len += want;
            break;
        }
        case 2: { /* write_iov */
            tern_rng_fill(&g, src, sizeof(src));
            struct iovec iov[6];
            size_t cnt = random_iov(&g, iov, src, 2000);
            size_t n = random_count(&g), offered = 0;
            for (size_t i = 0; i < cnt; i++)
                offered += iov[i].iov_len;
            uint32_t want = model_space(m);
            if (offered < want)
                want = (uint32_t)offered;
            if (n < want)
                want = (uint32_t)n;
            assert_int_equal(tern_ring_write_iov(&r, iov, cnt, n), want);
            /* The bytes taken are a prefix of the gather. */
            memcpy(m->b + m->len, src, want);
            m->len += want;
            break;
        }
        case 3: { /* read */
            size_t n = random_count(&g);
            uint32_t want = n < m->len ? (uint32_t)n : m->len;
            /* dst holds MODEL_MAX bytes, more than the ring can. */
            uint8_t *out = n == 0 ? NULL : dst; /* NULL is fine for 0 */
            assert_int_equal(tern_ring_read(&r, out, n), want);
            assert_memory_equal(dst, m->b, want);
            model_consume(m, want);
            break;
        }
        case 4: { /* read_iov, peek or not */
            struct iovec iov[6];
            memset(dst, 0xa5, sizeof(dst));
            size_t cnt = random_iov(&g, iov, dst, 2000);
            size_t n = random_count(&g), room = 0;
            bool peek = tern_rng_below(&g, 2);
            for (size_t i = 0; i < cnt; i++)
                room += iov[i].iov_len;
            uint32_t want = m->len;
            if (room < want)
                want = (uint32_t)room;
            if (n < want)
                want = (uint32_t)n;
            assert_int_equal(tern_ring_read_iov(&r, iov, cnt, n, peek), want);
            /* The iovecs are laid end to end over dst: the bytes land in
             * order, and nothing past them is touched. */
            assert_memory_equal(dst, m->b, want);
            if (want < sizeof(dst))
                assert_int_equal(dst[want], 0xa5);
            if (!peek)
                model_consume(m, want);
            break;
        }
        case 5: { /* peek_at */
            uint32_t off = (uint32_t)tern_rng_below(&g, m->len + 10);
            size_t n = random_count(&g);
            uint32_t want = off >= m->len ? 0 : m->len - off;
            if (n < want)
                want = (uint32_t)n;
            assert_int_equal(tern_ring_peek_at(&r, off, dst, n), want);
            if (want)
                assert_memory_equal(dst, m->b + off, want);
            break;
        }
        case 6: { /* discard */
            size_t n = tern_rng_below(&g, 4) == 0 ? random_count(&g)
                                                  : (size_t)tern_rng_below(&g, m->len + 1);
            uint32_t want = n < m->len ? (uint32_t)n : m->len;
            assert_int_equal(tern_ring_discard(&r, n), want);
            model_consume(m, want);
            break;
        }
        case 7: { /* spans */
            uint32_t off = (uint32_t)tern_rng_below(&g, m->len + 10);
            size_t n = random_count(&g);
            uint32_t want = off >= m->len ? 0 : m->len - off;
            if (n < want)
                want = (uint32_t)n;
            struct tern_ring_span sp[2];
            memset(sp, 0x5a, sizeof(sp));
            assert_int_equal(tern_ring_spans(&r, off, n, sp), want);
            assert_int_equal(sp[0].len + sp[1].len, want);
            if (sp[1].len) {
                st->wrapped_spans++;
                assert_true(sp[0].len > 0);
                /* The first piece runs to the end of the block, the
                 * second starts at its front. */
                assert_ptr_equal(sp[0].base + sp[0].len, r.buf + r.cap);
                assert_ptr_equal(sp[1].base, r.buf);
            } else {
                assert_null(sp[1].base);
            }
            if (sp[0].len) {
                assert_true(sp[0].base >= r.buf && sp[0].base + sp[0].len <= r.buf + r.cap);
                assert_memory_equal(sp[0].base, m->b + off, sp[0].len);
            } else {
                assert_null(sp[0].base);
            }
            if (sp[1].len)
                assert_memory_equal(sp[1].base, m->b + off + sp[0].len, sp[1].len);
            break;
        }
        case 8: { /* set_limit */
            m->limit = random_limit(&g);
            if (m->limit > peak)
                peak = m->limit;
            tern_ring_set_limit(&r, m->limit);
            assert_int_equal(r.cap, cap_before); /* never allocates or frees */
            if (m->limit < m->len)
                st->limit_below_len++;
            break;
        }
        case 9: { /* shrink_idle */
            uint32_t freed = tern_ring_shrink_idle(&r);
            if (m->len == 0) {
                assert_int_equal(freed, cap_before);
                assert_int_equal(tern_ring_alloc_bytes(&r), 0);
                if (freed)
                    st->idle_frees++;
            } else {
                assert_int_equal(freed, 0);
                assert_int_equal(r.cap, cap_before);
            }
            break;
        }
        }
        if (r.cap > cap_before)
            st->grows++;
        check_ring(&r, m, peak);
        if (op % 64 == 0)
            check_contents(&r, m);
    }
    check_contents(&r, m);
    tern_ring_destroy(&r);
    assert_null(r.buf);
    assert_int_equal(r.cap, 0);
    free(m);
}

static void test_random_against_model(void **state)
{
    (void)state;
    static const uint64_t seeds[] = {1, 2, 3, 42, 0x5eed, 0xdeadbeefcafef00dull};
    struct fuzz_stats st = {0};
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
        fuzz_one_seed(seeds[i], 20000, &st);
    /* The sequences must have exercised what they are here for. */
    assert_true(st.wrapped_spans > 100);
    assert_true(st.short_writes > 100);
    assert_true(st.limit_below_len > 50);
    assert_true(st.idle_frees > 10);
    assert_true(st.grows > 100);
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t start)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((start + i) * 7 + ((start + i) >> 8));
}

/* The ring holds bytes [first, first + len) of the pattern. Compared in
 * chunks, so that checking a large ring allocates nothing. */
static void assert_pattern(const struct tern_ring *r, uint32_t first)
{
    uint8_t got[256], want[256];
    uint32_t n = tern_ring_len(r), off = 0;
    while (off < n) {
        uint32_t k = min32(n - off, sizeof(got));
        assert_int_equal(tern_ring_peek_at(r, off, got, sizeof(got)), k);
        fill_pattern(want, k, first + off);
        assert_memory_equal(got, want, k);
        off += k;
    }
}

static void test_lazy_allocation(void **state)
{
    (void)state;
    assert_true(sizeof(struct tern_ring) <= 32); /* part of the idle budget */
    struct tern_ring r;
    uint8_t b[4096];
    tern_ring_init(&r, 3000);
    assert_null(r.buf);
    assert_int_equal(tern_ring_alloc_bytes(&r), 0);
    assert_int_equal(tern_ring_space(&r), 3000);
    /* Nothing that moves no bytes allocates. */
    struct tern_ring_span sp[2];
    assert_int_equal(tern_ring_write(&r, b, 0), 0);
    assert_int_equal(tern_ring_write_iov(&r, NULL, 0, 100), 0);
    assert_int_equal(tern_ring_read(&r, b, sizeof(b)), 0);
    assert_int_equal(tern_ring_peek_at(&r, 0, b, sizeof(b)), 0);
    assert_int_equal(tern_ring_discard(&r, 10), 0);
    assert_int_equal(tern_ring_spans(&r, 0, 10, sp), 0);
    assert_int_equal(tern_ring_shrink_idle(&r), 0);
    tern_ring_set_limit(&r, 3000);
    assert_null(r.buf);

    /* Growth in powers of two, the last step clamped to the limit. */
    fill_pattern(b, sizeof(b), 0);
    assert_int_equal(tern_ring_write(&r, b, 1), 1);
    assert_int_equal(tern_ring_alloc_bytes(&r), TERN_RING_MIN_ALLOC);
    assert_int_equal(tern_ring_write(&r, b + 1, 600), 600);
    assert_int_equal(tern_ring_alloc_bytes(&r), 1024);
    assert_int_equal(tern_ring_write(&r, b + 601, 1447), 1447);
    assert_int_equal(tern_ring_alloc_bytes(&r), 2048);
    assert_int_equal(tern_ring_write(&r, b + 2048, sizeof(b) - 2048), 3000 - 2048);
    assert_int_equal(tern_ring_alloc_bytes(&r), 3000);
    assert_pattern(&r, 0);

    /* Held data keeps the block; an empty ring gives it back. */
    assert_int_equal(tern_ring_shrink_idle(&r), 0);
    assert_int_equal(tern_ring_discard(&r, 2999), 2999);
    assert_int_equal(tern_ring_shrink_idle(&r), 0);
    assert_int_equal(tern_ring_read(&r, b, 10), 1);
    assert_int_equal(tern_ring_shrink_idle(&r), 3000);
    assert_null(r.buf);
    assert_int_equal(tern_ring_alloc_bytes(&r), 0);
    assert_int_equal(tern_ring_shrink_idle(&r), 0);

    /* A small write after an idle free costs only the first step. */
    assert_int_equal(tern_ring_write(&r, b, 40), 40);
    assert_int_equal(tern_ring_alloc_bytes(&r), TERN_RING_MIN_ALLOC);
    tern_ring_destroy(&r);
    assert_null(r.buf);

    /* A zero limit never allocates; a huge one is clamped. */
    tern_ring_init(&r, 0);
    assert_int_equal(tern_ring_write(&r, b, sizeof(b)), 0);
    assert_null(r.buf);
    tern_ring_set_limit(&r, UINT32_MAX);
    assert_int_equal(tern_ring_limit(&r), TERN_RING_LIMIT_MAX);
    tern_ring_destroy(&r);
}

static void test_limit_below_len(void **state)
{
    (void)state;
    struct tern_ring r;
    uint8_t b[8192];
    fill_pattern(b, sizeof(b), 0);
    tern_ring_init(&r, 2000);
    /* Wrap first, so that growth later has to unwrap. */
    assert_int_equal(tern_ring_write(&r, b, 1500), 1500);
    assert_int_equal(tern_ring_discard(&r, 1000), 1000);
    assert_int_equal(tern_ring_write(&r, b + 1500, 1000), 1000);
    uint32_t first = 1000; /* pattern index of the oldest byte */
    assert_true(r.head + r.len > r.cap);
    assert_pattern(&r, first);

    tern_ring_set_limit(&r, 500);
    assert_int_equal(tern_ring_len(&r), 1500); /* nothing lost */
    assert_int_equal(tern_ring_space(&r), 0);
    assert_int_equal(tern_ring_write(&r, b, 1), 0);
    struct iovec iov[2] = {{.iov_base = b, .iov_len = 10}, {.iov_base = b, .iov_len = 10}};
    assert_int_equal(tern_ring_write_iov(&r, iov, 2, 20), 0);
    assert_pattern(&r, first);

    /* Still over the limit after a read: still no space. */
    uint8_t out[1024];
    assert_int_equal(tern_ring_read(&r, out, 900), 900);
    first += 900;
    assert_int_equal(tern_ring_space(&r), 0);
    assert_int_equal(tern_ring_write(&r, b, 1), 0);
    /* Exactly at the limit: none either; one below: one byte. */
    assert_int_equal(tern_ring_discard(&r, 100), 100);
    first += 100;
    assert_int_equal(tern_ring_len(&r), 500);
    assert_int_equal(tern_ring_write(&r, b, 1), 0);
    assert_int_equal(tern_ring_discard(&r, 1), 1);
    first += 1;
    assert_int_equal(tern_ring_space(&r), 1);
    assert_int_equal(tern_ring_write(&r, b + first + 499, 5), 1);
    assert_pattern(&r, first);
    assert_int_equal(r.cap, 2000); /* the block is not shrunk under data */

    /* Raised well above: the ring grows past its old block, keeping the
     * wrapped bytes in order. */
    tern_ring_set_limit(&r, 6000);
    uint32_t len = tern_ring_len(&r);
    assert_int_equal(tern_ring_write(&r, b + first + len, 6000), 5500);
    assert_int_equal(r.cap, 6000);
    assert_pattern(&r, first);
    tern_ring_destroy(&r);
}

static void test_peek_at_across_wrap(void **state)
{
    (void)state;
    struct tern_ring r;
    uint8_t b[2048], out[2048];
    fill_pattern(b, sizeof(b), 0);
    tern_ring_init(&r, TERN_RING_MIN_ALLOC);
    assert_int_equal(tern_ring_write(&r, b, 400), 400);
    assert_int_equal(tern_ring_discard(&r, 300), 300);
    assert_int_equal(tern_ring_write(&r, b + 400, 300), 300);
    /* Pattern bytes 300..700 held, from index 300 of a 512-byte block. */
    assert_int_equal(r.cap, TERN_RING_MIN_ALLOC);
    assert_int_equal(r.head, 300);
    assert_int_equal(tern_ring_len(&r), 400);
    for (uint32_t off = 0; off <= 410; off++) {
        for (size_t n = 0; n <= 420; n += 7) {
            uint32_t want = off >= 400 ? 0 : min32(400 - off, (uint32_t)n);
            memset(out, 0, sizeof(out));
            assert_int_equal(tern_ring_peek_at(&r, off, out, n), want);
            assert_memory_equal(out, b + 300 + off, want);
            if (want < sizeof(out))
                assert_int_equal(out[want], 0); /* wrote no further */
        }
    }
    /* Peeking consumed nothing. */
    assert_int_equal(tern_ring_len(&r), 400);
    assert_int_equal(tern_ring_peek_at(&r, UINT32_MAX, out, SIZE_MAX), 0);
    tern_ring_destroy(&r);
}

static void test_spans_cover_exactly(void **state)
{
    (void)state;
    struct tern_ring r;
    uint8_t b[1024];
    fill_pattern(b, sizeof(b), 0);
    tern_ring_init(&r, 1024);
    assert_int_equal(tern_ring_write(&r, b, 1000), 1000);
    assert_int_equal(tern_ring_discard(&r, 800), 800);
    assert_int_equal(tern_ring_write(&r, b, 600), 600); /* wraps at 1024 */
    /* Held: pattern 800..1000 then 0..600; the wrap is at offset 224. */
    uint8_t flat[800];
    memcpy(flat, b + 800, 200);
    memcpy(flat + 200, b, 600);
    uint32_t wrap_at = r.cap - r.head;
    assert_int_equal(wrap_at, 224);
    for (uint32_t off = 0; off <= 805; off++) {
        for (size_t n = 0; n <= 810; n += (n < 20 ? 1 : 13)) {
            struct tern_ring_span sp[2];
            uint32_t want = off >= 800 ? 0 : min32(800 - off, (uint32_t)n);
            assert_int_equal(tern_ring_spans(&r, off, n, sp), want);
            assert_int_equal(sp[0].len + sp[1].len, want);
            bool wraps = off < wrap_at && off + want > wrap_at;
            assert_int_equal(sp[1].len != 0, wraps);
            if (want)
                assert_memory_equal(sp[0].base, flat + off, sp[0].len);
            else
                assert_null(sp[0].base);
            if (wraps) {
                assert_int_equal(sp[0].len, wrap_at - off);
                assert_ptr_equal(sp[1].base, r.buf);
                assert_memory_equal(sp[1].base, flat + off + sp[0].len, sp[1].len);
            } else {
                assert_null(sp[1].base);
            }
        }
    }
    /* Past the end, or beyond any size: clamped, not wrapped around. */
    struct tern_ring_span sp[2];
    assert_int_equal(tern_ring_spans(&r, 799, SIZE_MAX, sp), 1);
    assert_int_equal(sp[0].len, 1);
    assert_int_equal(*sp[0].base, flat[799]);
    assert_int_equal(tern_ring_spans(&r, UINT32_MAX, 1, sp), 0);
    /* A drained ring starts again at the front of its block, so the next
     * segment's worth of bytes is one span, not two. */
    assert_int_equal(tern_ring_discard(&r, 800), 800);
    assert_int_equal(tern_ring_write(&r, b, 1000), 1000);
    assert_int_equal(tern_ring_spans(&r, 0, 1000, sp), 1000);
    assert_int_equal(sp[0].len, 1000);
    assert_int_equal(sp[1].len, 0);
    tern_ring_destroy(&r);
}

static void test_iov_zero_lengths(void **state)
{
    (void)state;
    struct tern_ring r;
    uint8_t b[64], out[64];
    fill_pattern(b, sizeof(b), 0);
    tern_ring_init(&r, 20);

    /* Gather: zero-length iovecs (NULL and not) are skipped, n and space
     * both bound the take, and the take is a prefix of the gather. */
    struct iovec in[] = {
        {.iov_base = NULL, .iov_len = 0}, {.iov_base = b, .iov_len = 3},
        {.iov_base = b + 3, .iov_len = 0}, {.iov_base = NULL, .iov_len = 0},
        {.iov_base = b + 3, .iov_len = 5}, {.iov_base = b + 8, .iov_len = 40},
    };
    assert_int_equal(tern_ring_write_iov(&r, in, 6, 0), 0);
    assert_int_equal(tern_ring_write_iov(&r, in, 4, 100), 3);
    assert_int_equal(tern_ring_write_iov(&r, in + 4, 2, 6), 6); /* stops inside an iovec */
    assert_int_equal(tern_ring_peek_at(&r, 0, out, sizeof(out)), 9);
    assert_memory_equal(out, b, 3);
    assert_memory_equal(out + 3, b + 3, 6);
    assert_int_equal(tern_ring_write_iov(&r, in + 5, 1, SIZE_MAX), 11); /* space */
    assert_int_equal(tern_ring_write_iov(&r, in, 6, SIZE_MAX), 0);      /* full */
    assert_int_equal(tern_ring_len(&r), 20);

    /* iov_len sums that overflow size_t: bounded by space, reads only
     * what it takes. */
    assert_int_equal(tern_ring_discard(&r, 20), 20);
    struct iovec huge[2] = {{.iov_base = b, .iov_len = SIZE_MAX / 2 + 1},
                            {.iov_base = b, .iov_len = SIZE_MAX / 2 + 1}};
    assert_int_equal(tern_ring_write_iov(&r, huge, 2, SIZE_MAX), 20);
    assert_int_equal(tern_ring_peek_at(&r, 0, out, 20), 20);
    assert_memory_equal(out, b, 20);

    /* Scatter, peeking then reading, across zero-length iovecs. */
    memset(out, 0, sizeof(out));
    struct iovec sc[] = {
        {.iov_base = NULL, .iov_len = 0}, {.iov_base = out, .iov_len = 4},
        {.iov_base = out + 4, .iov_len = 0}, {.iov_base = out + 4, .iov_len = 10},
        {.iov_base = NULL, .iov_len = 0},
    };
    assert_int_equal(tern_ring_read_iov(&r, sc, 5, SIZE_MAX, true), 14);
    assert_memory_equal(out, b, 14);
    assert_int_equal(tern_ring_len(&r), 20);
    assert_int_equal(tern_ring_read_iov(&r, sc, 5, 0, false), 0);
    assert_int_equal(tern_ring_read_iov(&r, sc, 0, 10, false), 0);
    assert_int_equal(tern_ring_read_iov(&r, sc, 1, 10, false), 0);
    memset(out, 0, sizeof(out));
    assert_int_equal(tern_ring_read_iov(&r, sc, 5, 9, false), 9); /* n inside an iovec */
    assert_memory_equal(out, b, 9);
    assert_int_equal(out[9], 0);
    assert_int_equal(tern_ring_len(&r), 11);
    assert_int_equal(tern_ring_read_iov(&r, sc, 5, SIZE_MAX, false), 11);
    assert_memory_equal(out, b + 9, 11);
    assert_int_equal(tern_ring_len(&r), 0);
    assert_int_equal(tern_ring_read_iov(&r, sc, 5, SIZE_MAX, false), 0);
    tern_ring_destroy(&r);
}

static void test_alloc_failure_is_visible(void **state)
{
    (void)state;
#ifndef RING_TEST_ASAN
    skip(); /* needs ASan's max_allocation_size_mb to make malloc fail */
#else
    /* The source comes from mmap, which the injected limit leaves alone. */
    const uint32_t part = 300 * 1024, blen = 2 * 1024 * 1024;
    uint8_t *b = mmap(NULL, blen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(b != MAP_FAILED);
    fill_pattern(b, blen, 0);
    struct tern_ring r;
    tern_ring_init(&r, 4u << 20);
    assert_int_equal(tern_ring_write(&r, b, part), part);
    assert_int_equal(r.cap, 512 * 1024);
    /* Growing to 2 MiB fails: the write takes what the block holds, short
     * of both n and space, which tells the caller why. */
    uint32_t space = tern_ring_space(&r), n = 1024 * 1024 - part + 1;
    uint32_t took = tern_ring_write(&r, b + part, n);
    assert_int_equal(took, 512 * 1024 - part);
    assert_true(took < n && took < space);
    assert_int_equal(r.cap, 512 * 1024);
    assert_pattern(&r, 0);
    /* Not sticky: a write that needs only 1 MiB grows and takes it all. */
    uint32_t len = tern_ring_len(&r);
    assert_int_equal(tern_ring_write(&r, b + len, 1024 * 1024 - len), 1024 * 1024 - len);
    assert_int_equal(r.cap, 1024 * 1024);
    /* Full block, failing growth: nothing taken though there is space,
     * nothing lost. */
    assert_true(tern_ring_space(&r) >= 10);
    assert_int_equal(tern_ring_write(&r, b, 10), 0);
    struct iovec iov = {.iov_base = b, .iov_len = 10};
    assert_int_equal(tern_ring_write_iov(&r, &iov, 1, 10), 0);
    assert_int_equal(tern_ring_len(&r), 1024 * 1024);
    /* Draining makes room again without any allocation. */
    assert_int_equal(tern_ring_discard(&r, 100), 100);
    assert_int_equal(tern_ring_write(&r, b + 1024 * 1024, 100), 100);
    assert_pattern(&r, 100);
    tern_ring_destroy(&r);
    munmap(b, blen);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_lazy_allocation),
        cmocka_unit_test(test_limit_below_len),
        cmocka_unit_test(test_peek_at_across_wrap),
        cmocka_unit_test(test_spans_cover_exactly),
        cmocka_unit_test(test_iov_zero_lengths),
        cmocka_unit_test(test_alloc_failure_is_visible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
