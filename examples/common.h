/*
 * What every example does the same way: the link options, a started
 * stack on that link, signals, the byte pattern, and the one-line summary
 * printed on exit.
 *
 * Link options (all examples):
 *   --tap NAME     attach to TAP device NAME (tern_tap_open)
 *   --addr A/LEN   the stack's IPv4 address and prefix
 *   --gw G         a default route via G (tern_route_add)
 *   --pcap FILE    record every frame of the link (tern_pcap_tee_new)
 *   --seed N       the stack's seed (its MAC address derives from it)
 *   --control PATH a control socket for ternstat (tern_stack_control)
 *   --no-offload   a plain TAP device: no TSO, no coalesced frames
 *                  (TERN_TAP_NO_OFFLOAD)
 *
 * Signals: SIGINT and SIGTERM set ex_stop, SIGUSR1 sets ex_dump; the
 * handlers do nothing else. Every blocking call of the examples carries a
 * timeout (EX_TICK_MS) so their loops see the flags soon.
 */
#ifndef TERN_EXAMPLES_COMMON_H
#define TERN_EXAMPLES_COMMON_H

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <tern/tern.h>

#define EX_TICK_MS 200

/* Lock-free atomics: a handler may set them (C11 7.14.1.1) and any thread
 * may read them. */
extern atomic_int ex_stop;
extern atomic_int ex_dump;

struct ex_link_opts {
    const char *tap;
    const char *pcap;
    const char *control;
    struct in_addr addr;
    unsigned prefixlen;
    bool have_addr;
    struct in_addr gw;
    bool have_gw;
    uint64_t seed;
    bool no_offload;
    /* Not a flag of every example: one that drives its stack itself
     * (owned mode) sets it, and ex_net_up leaves the stack unstarted. */
    bool owned;
};

#define EX_LINK_USAGE \
    "[--tap NAME --addr A/LEN [--gw G] [--pcap FILE] [--seed N] [--control PATH] [--no-offload]]"

/* A stack on one link, started (threaded mode) unless the options ask
 * for owned mode. */
struct ex_net {
    struct tern_stack *s;
    struct tern_link *link;
    int ifindex;
};

/* What a program did, for the line printed on exit. Updated from any
 * thread. */
struct ex_summary {
    _Atomic uint64_t served;  /* requests, echoes, commands: the program says */
    _Atomic uint64_t bytes_in, bytes_out;
    _Atomic uint64_t conns;
    _Atomic uint64_t errors;
};

/* argv[*i] is a link option: take it (and its value) and return 1; 0 if
 * it is not one; -1 (message printed) if its value is wrong. */
int ex_link_opt(struct ex_link_opts *o, int argc, char **argv, int *i);
/* Open the TAP link of `o` (with its pcap tee), make a stack on it,
 * configure the address and route and start the stack (unless o->owned).
 * 0 or -1 (message printed). */
int ex_net_up(struct ex_net *n, const struct ex_link_opts *o);
/* The same on a link the caller made (an end of a tern_pipe); the link
 * is the caller's. */
int ex_net_up_link(struct ex_net *n, struct tern_link *link, struct in_addr addr,
                   unsigned prefixlen, uint64_t seed);
/* Free the stack (stopping its runtime) and the link ex_net_up opened. */
void ex_net_down(struct ex_net *n, bool free_link);

/* SIGINT, SIGTERM -> ex_stop; SIGUSR1 -> ex_dump; SIGPIPE ignored. */
void ex_signals(void);

/* "A:P" or "A" (then `defport`) into an IPv4 address. 0 or -1. */
int ex_parse_addr_port(const char *str, uint16_t defport, struct sockaddr_in *out);
int ex_parse_prefix(const char *str, struct in_addr *addr, unsigned *prefixlen);
/* A whole decimal (or 0x) number in [min, max] into *out: 0; -1 with
 * "WHAT: 'STR' is not a number from MIN to MAX" printed. */
int ex_parse_num(const char *what, const char *str, unsigned long long min,
                 unsigned long long max, unsigned long long *out);
/* A port, 1..65535, the same way. */
int ex_parse_port(const char *what, const char *str, uint16_t *out);

/* SO_RCVTIMEO or SO_SNDTIMEO. */
int ex_set_timeo(struct tern_stack *s, int fd, int name, long ms);

/* The bulk protocol's pattern: byte i of an answer is the sum of the four
 * low bytes of i, mod 256 (position-dependent; a lost or repeated block
 * of any length below 2^32 shows). */
static inline uint8_t ex_pattern_byte(uint64_t i)
{
    return (uint8_t)(i + (i >> 8) + (i >> 16) + (i >> 24));
}
void ex_pattern_fill(uint8_t *buf, size_t len, uint64_t offset);

/* "PROG: VERB N WHAT, X bytes in, Y bytes out, C connections, E errors". */
void ex_summary_print(FILE *f, const char *prog, const char *verb, const char *what,
                      const struct ex_summary *sum);

/* Threads, one per connection, joined as they finish and at exit. */
#define EX_MAX_WORKERS 256
struct ex_worker {
    pthread_t thread;
    bool used;
    _Atomic bool done;
    void *(*fn)(void *);
    void *arg;
};
struct ex_workers {
    struct ex_worker w[EX_MAX_WORKERS];
};
/* Start fn(arg) on a thread. -1 when all slots are busy (after joining
 * the finished ones) or the thread cannot start. */
int ex_workers_spawn(struct ex_workers *ws, void *(*fn)(void *), void *arg);
void ex_workers_join_all(struct ex_workers *ws);

#endif
