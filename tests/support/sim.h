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
    const struct tern_impair_config *tx; /* impairment on every port's sends */
    const char *pcap;                    /* tee on stack 0's link, if set */
};

struct sim {
    int n;
    uint64_t now;
    struct tern_wire *wire;
    struct tern_stack *st[SIM_MAX];
    struct tern_link *link[SIM_MAX]; /* outermost link of each stack */
    int ifindex[SIM_MAX];
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
struct in_addr sim_addr(int i);
struct sockaddr_in sim_sin(int i, uint16_t port);
/* A bound UDP socket on stack i (port 0 = ephemeral). */
int sim_udp(struct sim *sim, int i, uint16_t port);
uint64_t sim_counter(struct sim *sim, int i, const char *name);
/* A path for a test's temporary file (under $TERN_TEST_TMP or /tmp). */
void sim_tmp_path(char *buf, size_t n, const char *name);

#endif
