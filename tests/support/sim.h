/* The simulation harness: N stacks on one in-memory wire, in virtual time.
 * Stack i has 192.0.2.(i+1)/24 on its only interface. */
#ifndef TERN_TEST_SIM_H
#define TERN_TEST_SIM_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>

#include <tern/tern.h>

#define SIM_MAX 8

struct sim_opts {
    uint64_t seed;
    uint32_t mtu;                        /* default 1500 */
    bool offload;                        /* the wire's (tern_wire_config) */
    const struct tern_impair_config *tx; /* impairment on every port's sends */
    const char *pcap;                    /* tee on stack 0's link, if set */
    const struct tern_stack_config *cfg; /* base config (seed still per stack) */
    /* A link of the test's own around stack i's port (inside the pcap
     * tee, outside impairment), or NULL. Returns the outer link. */
    struct tern_link *(*wrap)(struct tern_link *inner, int i, void *arg);
    void *wrap_arg;
};

struct sim {
    int n;
    uint64_t now;
    struct tern_wire *wire;
    struct tern_stack *st[SIM_MAX];
    struct tern_link *link[SIM_MAX]; /* outermost link of each stack */
    int ifindex[SIM_MAX];
    struct tern_link *raw; /* a port of the test's own on the wire */
};

void sim_init(struct sim *sim, int n, const struct sim_opts *o);
/* Poll every stack until quiet, then jump to the next deadline; stop at
 * now + dur. */
void sim_run(struct sim *sim, uint64_t dur_ns);
/* Run until cond(arg) holds or max_ns passes; returns whether it held. */
bool sim_run_until(struct sim *sim, bool (*cond)(struct sim *, void *), void *arg,
                   uint64_t max_ns);
/* Let every timer run out (ARP entries, reassembly), then assert that
 * every stack has no live packet, socket, timer or queue; free all. */
void sim_finish(struct sim *sim);
/* The raw port: the test plays a host of its own, 192.0.2.100 with MAC
 * SIM_RAW_MAC, crafting frames and reading what the stacks send. */
#define SIM_RAW_IP 0xc0000264u
extern const uint8_t SIM_RAW_MAC[6];
void sim_raw_send(struct sim *sim, const void *frame, size_t len);
/* Introduce the raw host to stack i with an ARP request, so that the
 * stack can answer it. */
void sim_raw_arp_hello(struct sim *sim, int i);
/* Next frame the stacks sent that is an IPv4 packet of `proto` (or any
 * frame if proto < 0); its length, 0 if none. Skips others. */
size_t sim_raw_recv(struct sim *sim, int proto, uint8_t *buf, size_t cap);
/* Build Ethernet + IPv4 header (+ payload) from the raw host to stack i;
 * returns the frame length. */
size_t sim_raw_ipv4(struct sim *sim, int i, uint8_t *frame, uint8_t proto, uint16_t id,
                    uint16_t frag_off, bool mf, const void *payload, size_t len);
/* Recompute the header checksum of the IPv4 header at `ip` (its IHL). */
void sim_ip_fix_checksum(uint8_t *ip);
struct in_addr sim_addr(int i);
struct sockaddr_in sim_sin(int i, uint16_t port);
/* A bound UDP socket on stack i (port 0 = ephemeral). */
int sim_udp(struct sim *sim, int i, uint16_t port);
uint64_t sim_counter(struct sim *sim, int i, const char *name);
/* ---- TCP between stacks of the simulation ---- */

struct sim_tcp {
    int cstack, sstack;          /* the client's and the server's stack */
    int listener, server, client;
};
/* Stack sstack listens on `port` (backlog 16), stack cstack connects
 * (non-blocking: EINPROGRESS), and time runs until the server accepted
 * (5 s of virtual time at most, else the test fails). */
void sim_tcp_open(struct sim *sim, struct sim_tcp *c, int cstack, int sstack, uint16_t port);
/* The same with SO_RCVBUF set on the listener first (its connections
 * inherit it), unless rcvbuf is 0. */
void sim_tcp_open_rcvbuf(struct sim *sim, struct sim_tcp *c, int cstack, int sstack,
                         uint16_t port, int rcvbuf);
/* Close what of it is still open (handles >= 0). */
void sim_tcp_close(struct sim *sim, struct sim_tcp *c);

/* Byte i of a checked transfer: a function of its position and a salt,
 * so a byte lost, doubled or moved is seen. */
uint8_t sim_pattern(uint64_t i, uint32_t salt);
/* One direction of a checked transfer: send `total` pattern bytes from
 * (from_stack, from_fd), read and check them at (to_stack, to_fd). */
struct sim_flow {
    int from_stack, from_fd, to_stack, to_fd;
    uint64_t total, sent, received;
    uint32_t salt;
    bool eof;
    int error; /* the first errno the reader met (EAGAIN excluded) */
};
/* A sim_run_until condition: push what the send buffer takes, read and
 * check what arrived; true once everything arrived or an error came. */
bool sim_flow_pump(struct sim *sim, void *arg);

/* A path for a test's temporary file (under $TERN_TEST_TMP or /tmp). */
void sim_tmp_path(char *buf, size_t n, const char *name);

#endif
