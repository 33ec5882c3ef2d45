/* What the threaded race programs share: started stacks joined by a
 * tern_pipe, a seeded PRNG for timings, and a watchdog that aborts with a
 * message when a case hangs (so a deadlock ends as a core dump naming the
 * case, not as a CTest timeout).
 *
 * Seeds: TERN_RACE_SEED in the environment replaces the default seed of
 * every program, which prints the seed it uses; the same seed gives the
 * same choices and delays (thread interleavings still vary);
 * TERN_RACE_SCALE multiplies the rounds. */
#ifndef TERN_TEST_THREADS_RACE_H
#define TERN_TEST_THREADS_RACE_H

#include "testing.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tern/tern.h>

/* ---- Time ---- */

static inline uint64_t race_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline uint64_t race_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * TERN_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static inline void race_sleep_us(unsigned us)
{
    if (us)
        usleep(us);
}

/* ---- A seeded PRNG (splitmix64): one per thread ---- */

struct race_rng {
    uint64_t s;
};

static inline uint64_t race_rng_next(struct race_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint32_t race_rng_below(struct race_rng *r, uint32_t n)
{
    return n ? (uint32_t)(race_rng_next(r) % n) : 0;
}

/* The program's seed: TERN_RACE_SEED or `def`, printed once. */
static inline uint64_t race_seed(uint64_t def)
{
    static uint64_t seed;
    static bool told;
    if (!told) {
        const char *e = getenv("TERN_RACE_SEED");
        seed = e && *e ? strtoull(e, NULL, 0) : def;
        fprintf(stderr, "race: seed %llu (TERN_RACE_SEED to change)\n",
                (unsigned long long)seed);
        told = true;
    }
    return seed;
}

/* TERN_RACE_SCALE=N multiplies the rounds of the stress loops (a soak
 * outside CI); 1 by default. */
static inline int race_scale(void)
{
    const char *e = getenv("TERN_RACE_SCALE");
    int n = e && *e ? atoi(e) : 1;
    return n < 1 ? 1 : n;
}

static inline struct race_rng race_rng_for(uint64_t seed, uint64_t stream)
{
    struct race_rng r = {seed * 0x100000001b3ull + stream * 0x9e3779b97f4a7c15ull + 1};
    race_rng_next(&r);
    return r;
}

/* ---- Watchdog ---- */

struct race_watchdog {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool armed, quit;
    uint64_t deadline_ms;
    unsigned limit_s;
    char what[160];
};

static struct race_watchdog race_wd = {.lock = PTHREAD_MUTEX_INITIALIZER,
                                       .cond = PTHREAD_COND_INITIALIZER};

static inline void *race_wd_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&race_wd.lock);
    while (!race_wd.quit) {
        if (race_wd.armed && race_now_ms() >= race_wd.deadline_ms) {
            fprintf(stderr,
                    "\nwatchdog: \"%s\" still running after %u s: a hang (deadlock or a "
                    "blocked call nobody woke); aborting for a core dump\n",
                    race_wd.what, race_wd.limit_s);
            fflush(stderr);
            abort();
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&race_wd.cond, &race_wd.lock, &ts);
    }
    pthread_mutex_unlock(&race_wd.lock);
    return NULL;
}

/* Abort unless race_wd_disarm comes within limit_s seconds. */
static inline void race_wd_arm(unsigned limit_s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void race_wd_arm(unsigned limit_s, const char *fmt, ...)
{
    pthread_mutex_lock(&race_wd.lock);
    if (!race_wd.thread) {
        race_wd.quit = false;
        if (pthread_create(&race_wd.thread, NULL, race_wd_main, NULL) != 0)
            abort();
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(race_wd.what, sizeof(race_wd.what), fmt, ap);
    va_end(ap);
    race_wd.limit_s = limit_s;
    race_wd.deadline_ms = race_now_ms() + (uint64_t)limit_s * 1000;
    race_wd.armed = true;
    pthread_mutex_unlock(&race_wd.lock);
}

static inline void race_wd_disarm(void)
{
    pthread_mutex_lock(&race_wd.lock);
    race_wd.armed = false;
    pthread_mutex_unlock(&race_wd.lock);
}

/* Stop the watchdog thread (at the end of main). */
static inline void race_wd_end(void)
{
    pthread_mutex_lock(&race_wd.lock);
    race_wd.quit = true;
    pthread_cond_signal(&race_wd.cond);
    pthread_t t = race_wd.thread;
    pthread_mutex_unlock(&race_wd.lock);
    if (t)
        pthread_join(t, NULL);
    race_wd.thread = 0;
}

/* ---- Stacks ---- */

#define RACE_MAX_STACKS 2

struct race_net {
    int n;
    struct tern_stack *st[RACE_MAX_STACKS];
    struct tern_link *l[RACE_MAX_STACKS];
};

/* Stack i has 192.0.2.(i+1)/24. */
static inline struct in_addr race_addr(int i)
{
    struct in_addr a = {.s_addr = htonl(0xc0000201u + (uint32_t)i)};
    return a;
}

static inline struct sockaddr_in race_sin(int i, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr = race_addr(i)};
    return a;
}

/* An address on the stacks' subnet that nobody has: a connect to it
 * stays in SYN_SENT (its ARP is never answered). */
static inline struct sockaddr_in race_sin_nobody(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(0xc0000263u)}; /* 192.0.2.99 */
    return a;
}

/* n (1 or 2) started stacks; two are joined by a tern_pipe, one has a
 * pipe end of its own that nothing reads. */
static inline void race_net_up(struct race_net *net, int n, uint64_t seed)
{
    memset(net, 0, sizeof(*net));
    net->n = n;
    struct tern_link *spare = NULL;
    assert_int_equal(tern_pipe_new(NULL, &net->l[0], n > 1 ? &net->l[1] : &spare), 0);
    for (int i = 0; i < n; i++) {
        struct tern_stack_config cfg;
        tern_stack_config_default(&cfg);
        cfg.seed = seed * 2 + (uint64_t)i + 1;
        /* Short TIME_WAIT, so ports come back within a run. */
        cfg.tcp_timewait_ns = 200 * TERN_NS_PER_MS;
        net->st[i] = tern_stack_new(&cfg);
        assert_non_null(net->st[i]);
        int ifx = tern_if_add(net->st[i], net->l[i], NULL);
        assert_true(ifx > 0);
        assert_int_equal(tern_if_addr_add(net->st[i], ifx, race_addr(i), 24), 0);
        assert_int_equal(tern_stack_start(net->st[i]), 0);
    }
    if (spare)
        net->l[1] = spare;
}

/* Free what is left (a stack already freed is NULL). */
static inline void race_net_down(struct race_net *net)
{
    for (int i = 0; i < RACE_MAX_STACKS; i++) {
        tern_stack_free(net->st[i]);
        net->st[i] = NULL;
    }
    for (int i = 0; i < RACE_MAX_STACKS; i++) {
        if (net->l[i])
            tern_link_free(net->l[i]);
        net->l[i] = NULL;
    }
}

/* SO_RCVTIMEO or SO_SNDTIMEO on a socket the caller owns. Usable from
 * any thread (cmocka's asserts are for the main one): a failure aborts
 * with a message. */
static inline void race_timeo(struct tern_stack *s, int fd, int name, long ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    if (tern_setsockopt(s, fd, SOL_SOCKET, name, &tv, sizeof(tv)) != 0) {
        fprintf(stderr, "race: setting a timeout on %#x: %s\n", (unsigned)fd, strerror(errno));
        abort();
    }
}

static inline int race_listener(struct tern_stack *s, int i, uint16_t port, bool reuseport,
                                int backlog)
{
    int l = tern_socket(s, AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    int one = 1;
    assert_int_equal(tern_setsockopt(s, l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    if (reuseport)
        assert_int_equal(tern_setsockopt(s, l, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
    struct sockaddr_in a = race_sin(i, port);
    assert_int_equal(tern_bind(s, l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(s, l, backlog), 0);
    return l;
}

/* A byte of the pattern stream `id` at offset `off`: a receiver can tell
 * a byte out of place or from another stream. */
static inline uint8_t race_pattern(uint32_t id, size_t off)
{
    uint32_t x = id * 2654435761u + (uint32_t)off * 40503u + (uint32_t)(off >> 8);
    return (uint8_t)(x ^ (x >> 13) ^ (x >> 21));
}

static inline void race_fill(uint8_t *buf, size_t len, uint32_t id)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = race_pattern(id, i);
}

static inline bool race_check(const uint8_t *buf, size_t len, uint32_t id)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != race_pattern(id, i))
            return false;
    return true;
}

#endif
