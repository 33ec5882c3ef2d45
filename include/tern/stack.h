/*
 * A Tern stack instance: everything mutable hangs from it (DESIGN.md
 * rule 1). Several stacks live in one process and never see each other.
 *
 * Time: the stack never reads a clock. tern_stack_poll(s, now) moves it to
 * `now` (monotonic nanoseconds, never decreasing), takes frames from its
 * links and fires timers; API calls act at the time of the last poll.
 * In this owned mode nothing runs between polls, so no call ever blocks:
 * a call that would have to wait fails with EAGAIN whether or not the
 * socket is non-blocking.
 *
 * Threads: a stack is used by one thread at a time.
 */
#ifndef TERN_STACK_H
#define TERN_STACK_H

#include <stdio.h>
#include <netinet/in.h>

#include <tern/common.h>
#include <tern/link.h>

struct tern_stack;

/* Every knob, its default and its range (tern_stack_config_default). */
struct tern_stack_config {
    uint64_t seed;                /* PRNG, hash keys and random MACs; same seed, same run.
                                   * Stacks sharing a link need distinct seeds (or MACs).
                                   * (default 1) */
    uint32_t max_sockets;         /* open sockets, 1..1<<21 (default 4096) */
    uint64_t max_packets;         /* live packet buffers (default 65536) */
    uint32_t pkt_cache;           /* free small buffers kept for reuse (default 1024) */
    uint32_t arp_cache_max;       /* neighbour entries (default 1024) */
    uint32_t arp_pending_bytes;   /* buffer bytes queued per unresolved neighbour, 8x that
                                   * across all of them (default 212992, Linux's) */
    tern_time_t arp_reachable_ns; /* lifetime of a resolved entry (default 60 s) */
    tern_time_t arp_retry_ns;     /* between requests while resolving (default 1 s) */
    uint32_t arp_retries;         /* requests before giving up (default 3) */
    uint64_t reasm_max_bytes;     /* buffer bytes held by IPv4 reassembly (default 4 MiB, as Linux) */
    tern_time_t reasm_timeout_ns; /* lifetime of an incomplete datagram (default 30 s, as Linux) */
    uint32_t icmp_rate_per_sec;   /* ICMP errors sent per second (default 1000, as Linux) */
    uint32_t icmp_burst;          /* ... and their burst (default 50) */
    uint16_t ephemeral_lo;        /* RFC 6056 range (default 49152..65535, IANA's) */
    uint16_t ephemeral_hi;
    uint8_t ip_default_ttl;       /* default 64 */
    uint32_t udp_rcvbuf;          /* default SO_RCVBUF bytes (default 212992, Linux's) */
    uint32_t udp_sndbuf;          /* default SO_SNDBUF bytes (default 212992) */
    uint32_t tcp_rcvbuf;          /* TCP's default SO_RCVBUF (default 262144); buffers are
                                   * allocated as data arrives, so an idle connection
                                   * costs none of it */
    uint32_t tcp_sndbuf;          /* TCP's default SO_SNDBUF (default 262144) */
    uint32_t tcp_rcvbuf_max;      /* receive buffer autotuning: a connection whose reader
                                   * keeps up with a window-limited sender doubles its
                                   * buffer each round trip up to this (Linux's tcp_rmem
                                   * goes to 6 MiB); SO_RCVBUF, or a value not above
                                   * tcp_rcvbuf, turns it off (default 0: off). Worth it
                                   * on long paths (a 256 KiB window moves 2.6 MB/s over
                                   * 100 ms); off by default because Tern does not pace:
                                   * a window of megabytes leaves in one burst, and a
                                   * link with a short queue (the wire's 1024 frames)
                                   * drops the rest */
    uint32_t tcp_sndbuf_max;      /* send buffer autotuning: grown to twice the
                                   * congestion window up to this (Linux's tcp_wmem:
                                   * 4 MiB); SO_SNDBUF turns it off (default 0: off) */
    tern_time_t tcp_timewait_ns;  /* TIME_WAIT duration, 2MSL (default 60 s, Linux's;
                                   * RFC 9293 asks 4 min); 1 ms..10 min */
    uint32_t tcp_timewait_max;    /* TIME_WAIT records kept at once; past it a closing
                                   * connection skips TIME_WAIT, counted (default 65536,
                                   * Linux's tcp_max_tw_buckets idea) */
    uint8_t tcp_syncookies;       /* 0 never, 1 when a listener's SYN queue is full
                                   * (default, Linux's), 2 always (RFC 4987) */
    uint8_t tcp_event_ring;       /* events each TCP connection remembers for debugging
                                   * (tern_socket_events_dump), 0..64 (default 8; 18 bytes
                                   * each, in the connection block) */
    bool tcp_sack;                /* offer and accept SACK (RFC 2018) (default on) */
    bool tcp_timestamps;          /* offer and accept timestamps (RFC 7323) (default on) */
    bool tcp_tlp;                 /* tail loss probes (RFC 8985 section 7), with SACK
                                   * (default on) */
    uint8_t tcp_congestion;       /* enum tern_tcp_cc: TERN_TCP_CC_CUBIC (default, as
                                   * Linux) or TERN_TCP_CC_NEWRENO; TCP_CONGESTION sets
                                   * it per socket by name */
};

/* Congestion control algorithms (tern_stack_config.tcp_congestion). */
enum tern_tcp_cc {
    TERN_TCP_CC_CUBIC = 0,   /* RFC 9438 */
    TERN_TCP_CC_NEWRENO = 1, /* RFC 5681, RFC 6582 */
};

TERN_API void tern_stack_config_default(struct tern_stack_config *cfg);
/* NULL config means defaults. NULL and errno (EINVAL, ENOMEM) on failure. */
TERN_API struct tern_stack *tern_stack_new(const struct tern_stack_config *cfg);
/* Frees everything the stack owns: sockets, timers, queues, packets.
 * Links are the caller's and stay. */
TERN_API void tern_stack_free(struct tern_stack *s);
/* Advance to `now`: receive from every link, process, fire due timers.
 * Returns the number of frames received. */
TERN_API int tern_stack_poll(struct tern_stack *s, tern_time_t now);
/* When the stack next needs a poll (timer or delayed link frame), or
 * TERN_TIME_NEVER. */
TERN_API tern_time_t tern_stack_next_deadline(struct tern_stack *s);
TERN_API tern_time_t tern_stack_now(const struct tern_stack *s);

/* ---- Interfaces, addresses, routes ---- */
/* Attach a link (borrowed: it must outlive the stack or be removed
 * first). mac NULL: a locally administered address from the seed.
 * Returns the interface index (>= 1) or -1 and errno. */
TERN_API int tern_if_add(struct tern_stack *s, struct tern_link *link, const uint8_t *mac);
TERN_API int tern_if_get_mac(struct tern_stack *s, int ifindex, uint8_t mac[6]);
/* Add an address (and its connected route); announces it with a
 * gratuitous ARP. EEXIST, ENODEV, EINVAL, ENOSPC. */
TERN_API int tern_if_addr_add(struct tern_stack *s, int ifindex, struct in_addr addr,
                              unsigned prefixlen);
TERN_API int tern_if_addr_del(struct tern_stack *s, int ifindex, struct in_addr addr);
/* gw 0.0.0.0: directly reachable on ifindex. prefixlen 0: default route. */
TERN_API int tern_route_add(struct tern_stack *s, struct in_addr dst, unsigned prefixlen,
                            struct in_addr gw, int ifindex);
TERN_API int tern_route_del(struct tern_stack *s, struct in_addr dst, unsigned prefixlen);

/* ---- Observability ---- */
/* Objects alive in a stack; all zero after every socket is closed and
 * every queue drained (tern_stack_free checks it). */
struct tern_live {
    uint64_t packets;
    uint64_t sockets;
    uint64_t timers;
    uint64_t arp_entries;
    uint64_t reasm_datagrams;
    uint64_t tcp_timewait;    /* TIME_WAIT connections (expire on their own) */
    uint64_t tcp_requests;    /* handshakes pending on listeners' SYN queues */
};
TERN_API void tern_stack_live(const struct tern_stack *s, struct tern_live *out);

/* Why the calling thread's last failed call on this stack failed, in
 * words: "tern_bind: EINVAL: address length 8 is shorter than a
 * sockaddr_in (16)". Copies at most len bytes, NUL-terminated, into buf
 * (if len > 0); returns that call's errno, 0 if none is recorded for this
 * thread. Kept per thread and per stack; a thread's next failure on the
 * stack replaces it. */
TERN_API int tern_error_detail(struct tern_stack *s, char *buf, size_t len);

/* A live capture of every frame the stack's interfaces send and receive,
 * into a pcap file (nanosecond, Ethernet), started and stopped while
 * traffic runs. 0, or -1 and errno (EALREADY: one runs; ENOENT: none to
 * stop; or the file's error). tern_stack_free stops it. */
TERN_API int tern_capture_start(struct tern_stack *s, const char *path);
TERN_API int tern_capture_stop(struct tern_stack *s);

/* Counters: every drop has one, named with its reason ("drop.ip.bad_checksum"). */
TERN_API size_t tern_counter_count(void);
TERN_API const char *tern_counter_name(size_t i);
TERN_API const char *tern_counter_help(size_t i);
TERN_API uint64_t tern_counter_get(const struct tern_stack *s, size_t i);
/* Index of a counter by name, or -1. */
TERN_API long tern_counter_find(const char *name);
TERN_API uint64_t tern_counter_by_name(const struct tern_stack *s, const char *name);
TERN_API void tern_counters_reset(struct tern_stack *s);
TERN_API void tern_counters_dump(const struct tern_stack *s, FILE *f, bool nonzero_only);
/* Gauges, like counters but of what is now: TCP connections per state,
 * sockets, packets and timers alive. */
TERN_API void tern_gauges_dump(const struct tern_stack *s, FILE *f);
/* The socket table, one line per socket, like `ss -uan`; then TIME_WAIT
 * records and the path MTUs learned per destination. */
TERN_API void tern_sockets_dump(const struct tern_stack *s, FILE *f);
/* The same as one JSON object: sockets (TCP ones with srtt, rto, cwnd,
 * ssthresh, retransmits, timers and their recent events), TIME_WAIT
 * records, path MTUs learned ("pmtu"), and the count of TCP connections
 * per state. */
TERN_API void tern_sockets_dump_json(const struct tern_stack *s, FILE *f);
/* The recent events of TCP socket `sock_id` (the id column of the socket
 * table), oldest first. 0, or -1 and errno (ENOENT, EOPNOTSUPP). */
TERN_API int tern_socket_events_dump(struct tern_stack *s, uint64_t sock_id, FILE *f);
TERN_API void tern_timers_dump(const struct tern_stack *s, FILE *f);

#endif
