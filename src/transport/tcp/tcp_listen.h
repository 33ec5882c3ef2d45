/*
 * A listener's two queues (RFC 9293 3.10.7.2 LISTEN; Linux's request
 * socks and accept queue): pending handshakes as small request records,
 * not sockets, so a SYN flood allocates no socket and no buffer; and
 * established children waiting for accept. SYN cookies (RFC 4987 3.6)
 * answer SYNs the request queue has no room for.
 *
 * Ownership. A request is owned by its listener: it sits on the
 * listener's req_q and its PCB (kind TERN_PCB_REQUEST) in the TCP table's
 * connection hash, from tern_tcp_req_new to tern_tcp_req_free, the one
 * place it is freed (called when the handshake completes, fails or times
 * out, and when the listener goes). Its `listener` pointer is valid for
 * exactly that long, because a listener frees or hands over its requests
 * before it lets go of its socket. A child on the accept queue is a
 * socket the protocol holds (tcp.h).
 *
 * Bounds: requests and children are each limited by the backlog; past
 * the request limit SYN cookies answer (tern_stack_config.tcp_syncookies),
 * past the accept limit a SYN is dropped (counted), as on Linux.
 *
 * Reuseport: when a listener of a SO_REUSEPORT group closes, its
 * requests and unaccepted children move to another member of the group
 * instead of being reset (Linux resets them unless tcp_migrate_req is
 * set).
 */
#ifndef TERN_TRANSPORT_TCP_LISTEN_H
#define TERN_TRANSPORT_TCP_LISTEN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/list.h"
#include "core/timer.h"
#include "sock/pcb.h"
#include "wire/tcp.h"

struct tern_stack;
struct tern_tcpcb;
struct tern_socket;

/* What a handshake agreed, enough to make the connection. */
struct tern_tcp_synparams {
    uint32_t laddr, faddr;
    uint16_t lport, fport;
    uint32_t iss, irs;
    uint32_t peer_wnd;        /* the SYN's window (never scaled) */
    uint16_t peer_mss;        /* 0: the peer sent none */
    uint16_t our_mss;
    bool wscale_ok, sack_ok, ts_ok;
    uint8_t snd_wscale, rcv_wscale;
    uint32_t ts_recent, ts_offset;
    uint64_t rtt_ns;          /* the handshake's round trip, 0 = not timed */
};

/* A listener's queues, allocated when it starts listening (a connection
 * pays nothing for them). */
struct tern_tcp_lq {
    struct tern_list req_q, accept_q;
    uint32_t req_q_len, accept_q_len, backlog;
};

struct tern_tcp_req {
    struct tern_inpcb pcb;        /* kind TERN_PCB_REQUEST */
    struct tern_list node;        /* on the listener's req_q */
    struct tern_timer timer;      /* SYN,ACK retransmission */
    struct tern_tcpcb *listener;  /* the owner */
    struct tern_tcp_synparams p;
    uint64_t sent_at;             /* the first SYN,ACK */
    uint8_t retries;
};

static inline struct tern_tcp_req *tern_tcp_req_of(struct tern_inpcb *pcb)
{
    return tern_container_of(pcb, struct tern_tcp_req, pcb);
}

/* SYN,ACKs sent for one request before giving up (Linux's
 * tcp_synack_retries). */
#define TERN_TCP_SYNACK_RETRIES 5
/* A SYN cookie is good for two periods of this length (RFC 4987 3.6). */
#define TERN_TCP_COOKIE_PERIOD_NS (64 * 1000000000ull)

/* The parameters a listener answers a SYN with: our ISS, MSS, window
 * scale and timestamp offset; the peer's options taken as the stack's
 * configuration allows. */
void tern_tcp_syn_params(struct tern_stack *s, const struct tern_tcpcb *ltp,
                         struct tern_tcp_synparams *p, uint32_t laddr, uint16_t lport,
                         uint32_t faddr, uint16_t fport, uint32_t seq, uint32_t wnd,
                         const struct tern_tcp_opts *opt);
/* Queue a request on the listener and send its SYN,ACK. NULL (counted)
 * if memory or the table refuses. */
struct tern_tcp_req *tern_tcp_req_new(struct tern_stack *s, struct tern_tcpcb *ltp,
                                      const struct tern_tcp_synparams *p);
void tern_tcp_req_free(struct tern_stack *s, struct tern_tcp_req *req);
void tern_tcp_req_send_synack(struct tern_stack *s, const struct tern_tcp_req *req);

/* SYN cookies: answer a SYN with a SYN,ACK whose ISS encodes what the
 * handshake needs, keeping nothing. */
void tern_tcp_cookie_synack(struct tern_stack *s, const struct tern_tcpcb *ltp,
                            struct tern_tcp_synparams *p);
/* An ACK (seq, ack, its timestamp echo) for a listener: does it complete
 * a cookie handshake? Fills p (our side from ltp) if so. */
bool tern_tcp_cookie_check(struct tern_stack *s, const struct tern_tcpcb *ltp,
                           struct tern_tcp_synparams *p, uint32_t laddr, uint16_t lport,
                           uint32_t faddr, uint16_t fport, uint32_t seq, uint32_t ack,
                           const struct tern_tcp_opts *opt);

/* Make the established child of a completed handshake and put it on the
 * accept queue (the protocol's reference). NULL if the queue is full or
 * memory is short (counted); nothing changes then. */
struct tern_tcpcb *tern_tcp_child_new(struct tern_stack *s, struct tern_tcpcb *ltp,
                                      const struct tern_tcp_synparams *p);

/* The listener is closing: hand requests and children to another member
 * of its reuseport group, or reset and free them. */
void tern_tcp_listener_close(struct tern_stack *s, struct tern_tcpcb *ltp);
/* Stack teardown: free requests, unlink children; send nothing. */
void tern_tcp_listener_teardown(struct tern_stack *s, struct tern_tcpcb *ltp);
void tern_tcp_req_dump(const struct tern_stack *s, const struct tern_tcpcb *ltp, FILE *f);

#endif
