/*
 * What the programs that run a Tern stack on a TAP device share (tap_peer.c,
 * tcp_peer.c): the monotonic clock, "A.B.C.D/LEN" arguments, signals, the
 * wait of an owned-mode loop, and the link's numbers at the end.
 */
#ifndef TERN_TESTS_TAP_LOOP_H
#define TERN_TESTS_TAP_LOOP_H

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tern/tern.h>

static inline uint64_t tap_mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * TERN_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* "A.B.C.D/LEN": 0, or -1 if it is not that. */
static inline int tap_parse_prefix(const char *arg, struct in_addr *addr, unsigned *len)
{
    char buf[64];
    const char *slash = strchr(arg, '/');
    if (!slash || (size_t)(slash - arg) >= sizeof(buf))
        return -1;
    memcpy(buf, arg, (size_t)(slash - arg));
    buf[slash - arg] = 0;
    char *end;
    unsigned long l = strtoul(slash + 1, &end, 10);
    if (*end || end == slash + 1 || l > 32 || inet_pton(AF_INET, buf, addr) != 1)
        return -1;
    *len = (unsigned)l;
    return 0;
}

/* Sleep in poll(2) until the link's descriptor (pollfd, -1 for none) is
 * readable or the stack's next deadline, at most cap_ms. Returns poll's
 * result (-1 with errno on failure; EINTR is not a failure and gives 0). */
static inline int tap_wait(struct tern_stack *s, int pollfd, int cap_ms)
{
    uint64_t now = tap_mono_now();
    uint64_t deadline = tern_stack_next_deadline(s);
    int timeout_ms = cap_ms;
    if (deadline <= now)
        timeout_ms = 0;
    else if (deadline - now < (uint64_t)cap_ms * TERN_NS_PER_MS)
        timeout_ms = (int)((deadline - now + TERN_NS_PER_MS - 1) / TERN_NS_PER_MS);
    struct pollfd pfd = {.fd = pollfd, .events = POLLIN};
    int r = poll(&pfd, pollfd >= 0 ? 1 : 0, timeout_ms);
    return r < 0 && errno == EINTR ? 0 : r;
}

/* SIGTERM and SIGINT call fn (which sets a flag for the loop). */
static inline void tap_on_signals(void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

static inline void tap_print_link_stats(const char *who, const struct tern_link *l)
{
    const struct tern_link_stats *st = &l->stats;
    printf("%s: link: tx %llu frames %llu bytes %llu dropped; "
           "rx %llu frames %llu bytes %llu dropped\n",
           who, (unsigned long long)st->tx_frames, (unsigned long long)st->tx_bytes,
           (unsigned long long)st->tx_dropped, (unsigned long long)st->rx_frames,
           (unsigned long long)st->rx_bytes, (unsigned long long)st->rx_dropped);
}

#endif
