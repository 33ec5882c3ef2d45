/*
 * The stack instance (private view). Everything mutable that the library
 * has lives here or hangs from here (DESIGN.md rule 1).
 *
 * Ownership: the stack owns its sockets, timers, packets, neighbour and
 * reassembly state; it borrows its links. tern_stack_free() tears down in
 * an order that first cancels every timer and drops every queued packet,
 * then checks the live counts are zero, then frees.
 */
#ifndef TERN_CORE_STACK_H
#define TERN_CORE_STACK_H

#include <tern/stack.h>

#include <pthread.h>

#include "buf/pkt.h"
#include "core/rand.h"
#include "core/timer.h"
#include "link/arp.h"
#include "net/iface.h"
#include "net/pmtu.h"
#include "net/reasm.h"
#include "net/route.h"
#include "obs/counters.h"
#include "obs/probe.h"
#include "sock/pcb.h"
#include "sock/socket.h"
#include "transport/tcp/tcp_cc.h"

#define TERN_STACK_MAGIC 0x57ac4e11u
#define TERN_RX_BATCH 32
/* Datagrams to ourselves wait at most this many buffer bytes for a poll. */
#define TERN_LOOPBACK_MAX_BYTES (4u << 20)

/* Why the last failed call of each thread failed (tern_error_detail). */
#define TERN_ERR_SLOTS 16
struct tern_err_detail {
    pthread_t tid;
    bool used;
    int err;
    const char *fn;  /* the call (a string literal: __func__) */
    char msg[200];   /* "" until asked for when no reason was given */
};

struct tern_stack {
    uint32_t magic;
    struct tern_stack_config cfg;
    uint64_t now;
    bool in_teardown;

    struct tern_rng rng;
    struct tern_siphash_key key_port;  /* RFC 6056 */
    struct tern_siphash_key key_ipid;  /* RFC 6864/7739: per-destination IP IDs */
    struct tern_siphash_key key_flow;  /* tuple hash (table, ISN), reuseport */
    struct tern_siphash_key key_tsoff; /* TCP timestamp offsets */
    struct tern_siphash_key key_cookie; /* RFC 4987 SYN cookies */

    uint64_t counters[TERN_COUNTER__COUNT];
    /* Which counters count drops ("drop." names): they fire tern:drop. */
    uint64_t drop_bits[(TERN_COUNTER__COUNT + 63) / 64];

    struct tern_pkt_pool pool;
    struct tern_timer_wheel wheel;

    struct tern_iface ifaces[TERN_MAX_IFACES];
    /* Interfaces are added in the first free slot and never removed, so
     * those in use are ifaces[0..nifaces): the per-packet walks stop
     * there instead of looking at every slot. */
    int nifaces;
    struct tern_route_table routes;
    /* Bumped on every change to interfaces, addresses or routes: what
     * route_cache holds from an older generation is not used. */
    uint32_t route_gen;
    struct tern_route_cache route_cache;
    struct tern_arp_table arp;
    struct tern_reasm reasm;
    struct tern_pmtu_cache pmtu;

    /* IPv4 identification: counters spread by a keyed hash of the
     * destination (RFC 7739 section 5.3), so IDs don't leak traffic
     * volume to third parties. */
    uint16_t ipid_table[256];
    /* The last destination's counter slot: a transfer sends to one
     * destination over and over, and its hash need not be taken again. */
    bool ipid_last_valid;
    uint8_t ipid_last_slot;
    uint32_t ipid_last_dst;
    /* The connection 4-tuples hashed last (tern_tuple_hash): consecutive
     * segments mostly belong to one connection, and a new connection's
     * ISN and table slot hash the same tuple. */
    struct tern_siphash_memo tuple_memo;
    /* Likewise the endpoints' timestamp offset and ephemeral port offset
     * (RFC 6056 algorithm 4's first hash), for connections to one peer
     * one after another. */
    struct tern_siphash_memo ts_off_memo, port_memo;

    /* ICMP error rate limit: a token bucket (RFC 1812 section 4.3.2.8). */
    uint64_t icmp_tokens_ns;  /* accumulated credit in ns of rate */
    uint64_t icmp_last_ns;

    /* A duplicate segment the ACK about to be sent reports (D-SACK, RFC
     * 2883): set while one segment is processed, for the socket whose id
     * it names, and cleared when that segment is done, so a report goes
     * out at most once and never to another connection. 0: none. */
    uint64_t dsack_sock_id;
    uint32_t dsack_start, dsack_end;

    /* RFC 5961 section 7: challenge ACKs sent in the current second. */
    uint64_t chack_second;
    uint32_t chack_sent;

    struct tern_err_detail err_detail[TERN_ERR_SLOTS];
    /* The reason code deep in a call found for failing it (tern_why),
     * used by tern_api_fail when the call site has none of its own. */
    char why[160];
    bool why_set;
    uint32_t err_next; /* slot to take when a new thread fails */
    uint32_t err_last; /* the slot of the last failure */

    /* A live capture (obs/capture.c), NULL when off. */
    struct tern_pcapw *capture;
    /* The control socket (runtime/control.c): listening fd, -1 when off. */
    int control_fd;
    char control_path[108];

    /* Threaded mode's runtime (runtime/rt.h), NULL when owned. */
    struct tern_runtime *rt;
    /* Sockets whose readiness may have changed since the last delivery
     * (runtime/events.h). */
    struct tern_socket **dirty;
    uint32_t dirty_n, dirty_cap;
    bool dirty_all;  /* the list could not grow: look at every socket */

    /* TCP congestion control tables, by enum tern_tcp_cc (tcp_cc.h). */
    struct tern_tcp_cc_ops tcp_cc[TERN_TCP_CC_COUNT];
    /* TCP TIME_WAIT records (tcp_timewait.h) and their count
     * (tern_live.tcp_timewait). */
    struct tern_list tcp_tw;
    uint64_t tcp_timewait_count;
    /* Handshakes on listeners' SYN queues (tern_live.tcp_requests). */
    uint64_t tcp_req_count;

    /* RFC 6056 algorithm 3's table of per-hash increments. */
    uint16_t port_table[256];

    struct tern_sock_state socks;
    struct tern_pcb_table udp_pcbs;
    struct tern_pcb_table ping_pcbs;
    struct tern_pcb_table tcp_pcbs;

    /* Datagrams a stack sends to one of its own addresses: delivered at
     * the next poll, never by recursion inside the call that sent them. */
    struct tern_list loopback_q;
    uint64_t loopback_bytes; /* buffer bytes on it, at most TERN_LOOPBACK_MAX_BYTES */
    /* Threaded mode: frames for links with TERN_LINK_CAP_TX_UNLOCKED,
     * handed to the runtime's sender when the call leaves (runtime/tx.c).
     * The core only appends; it never locks. */
    struct tern_list tx_pending;
};

static inline void tern_count(struct tern_stack *s, enum tern_counter_id id)
{
    s->counters[id]++;
    if (s->drop_bits[id >> 6] & (1ull << (id & 63)))
        TERN_PROBE3(drop, s, id, tern_counter_name(id));
}
static inline void tern_count_n(struct tern_stack *s, enum tern_counter_id id, uint64_t n)
{
    s->counters[id] += n;
}
/* Say why the current call is about to fail (the first reason stands). */
__attribute__((format(printf, 2, 3)))
void tern_why(struct tern_stack *s, const char *fmt, ...);

/* The live capture: record a frame (only if one is running), close it. */
struct tern_pcapw;
void tern_capture_frame(struct tern_stack *s, const uint8_t *data, size_t len);
void tern_capture_close(struct tern_stack *s);

/* The dumps, for callers already in the stack (a panic). */
void tern_sockets_dump_locked(const struct tern_stack *s, FILE *f, bool events);
void tern_timers_dump_locked(const struct tern_stack *s, FILE *f);

/* tern_stack_next_deadline, for callers already in the stack. */
tern_time_t tern_stack_next_deadline_locked(struct tern_stack *s);

/* The congestion control a TCP connection uses. */
#define TERN_TCP_CC(s, tp) (&(s)->tcp_cc[(tp)->cc])

/* Drop a packet for a reason: the one way packets die on error paths. */
void tern_drop_take(struct tern_stack *s, struct tern_pkt *p, enum tern_counter_id why);

#endif
