/* A one-way TCP transfer with loss in the simulator, for the tseq test
 * (tests/tools/tseq_check.py): two stacks on the in-memory wire, every
 * port losing frames at random, stack 0 sending `bytes` to stack 1.
 *
 *   tseq_transfer PCAP CSV [loss_ppm [bytes [seed]]]
 *
 * Writes the pcap tee of stack 0's link to PCAP and stack 0's TCP_INFO
 * over time (tools/tcpinfo_log.h) to CSV, checks that every byte arrived
 * in order, and prints stack 0's counters that the test compares with
 * the picture, one "name value" a line. */
#include "testing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "tcpinfo_log.h"

#define MS TERN_NS_PER_MS
#define SEC TERN_NS_PER_SEC

static const char *pcap_path, *csv_path;
static uint32_t loss_ppm = 20000;
static uint64_t total = 1000000;
static uint64_t seed = 1;

static uint8_t pattern_byte(uint64_t pos) { return (uint8_t)((pos * 131u + (pos >> 11)) & 0xff); }

struct xfer {
    int listener, server, client;
    uint64_t sent, received;
    int error;
    struct tcpinfo_log *log;
};

static bool accepted(struct sim *sim, void *arg)
{
    struct xfer *x = arg;
    assert_true(tcpinfo_log_sample(x->log, sim->st[0], x->client, sim->now) >= 0);
    x->server = tern_accept(sim->st[1], x->listener, NULL, NULL);
    return x->server >= 0;
}

/* One step: sample the sender, feed it, drain the receiver. */
static bool pump(struct sim *sim, void *arg)
{
    struct xfer *x = arg;
    uint8_t buf[16384];
    assert_true(tcpinfo_log_sample(x->log, sim->st[0], x->client, sim->now) >= 0);
    while (x->sent < total) {
        size_t n = total - x->sent < sizeof(buf) ? (size_t)(total - x->sent) : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern_byte(x->sent + i);
        ssize_t w = tern_send(sim->st[0], x->client, buf, n, 0);
        if (w <= 0)
            break;
        x->sent += (uint64_t)w;
    }
    for (;;) {
        ssize_t r = tern_recv(sim->st[1], x->server, buf, sizeof(buf), 0);
        if (r <= 0) {
            if (r < 0 && errno != EAGAIN)
                x->error = errno;
            break;
        }
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != pattern_byte(x->received + (uint64_t)i))
                fail_msg("byte %llu wrong", (unsigned long long)(x->received + (uint64_t)i));
        x->received += (uint64_t)r;
    }
    return x->received == total || x->error;
}

static bool closed(struct sim *sim, void *arg)
{
    struct xfer *x = arg;
    uint8_t b;
    return tern_recv(sim->st[1], x->server, &b, 1, 0) == 0;
}

static void test_transfer_with_loss(void **state)
{
    (void)state;
    /* 20 Mbit/s with a 10 ms one-way delay: segments spread over time as
     * on a real path, not all at the instants the delay gives. */
    struct tern_impair_config imp = {.delay_ns = 10 * MS, .rate_bps = 20000000,
                                     .loss_ppm = loss_ppm};
    struct sim_opts o = {.seed = seed, .tx = &imp, .pcap = pcap_path};
    struct sim sim;
    sim_init(&sim, 2, &o);
    struct xfer x = {.server = -1};
    x.log = tcpinfo_log_open(csv_path);
    assert_non_null(x.log);
    x.listener = tern_socket(sim.st[1], AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sim_sin(1, 80);
    assert_int_equal(tern_bind(sim.st[1], x.listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(sim.st[1], x.listener, 4), 0);
    x.client = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
    assert_int_equal(tern_connect(sim.st[0], x.client, (struct sockaddr *)&a, sizeof(a)), -1);
    assert_true(sim_run_until(&sim, accepted, &x, 60 * SEC));
    assert_true(sim_run_until(&sim, pump, &x, 600 * SEC));
    assert_int_equal(x.error, 0);
    assert_int_equal(x.received, total);
    /* The sender closes; the receiver sees the end of the stream, then
     * closes too, so the capture ends with both FINs. */
    assert_int_equal(tern_close(sim.st[0], x.client), 0);
    assert_true(sim_run_until(&sim, closed, &x, 120 * SEC));
    assert_int_equal(tern_close(sim.st[1], x.server), 0);
    assert_int_equal(tern_close(sim.st[1], x.listener), 0);
    sim_run(&sim, 30 * SEC);
    printf("tcp.retransmit %llu\n", (unsigned long long)sim_counter(&sim, 0, "tcp.retransmit"));
    printf("tcp.retransmit_timeout %llu\n",
           (unsigned long long)sim_counter(&sim, 0, "tcp.retransmit_timeout"));
    printf("tcp.fast_retransmit %llu\n",
           (unsigned long long)sim_counter(&sim, 0, "tcp.fast_retransmit"));
    printf("tcpinfo.rows %lu\n", tcpinfo_log_rows(x.log));
    fflush(stdout);
    assert_int_equal(tcpinfo_log_close(x.log), 0);
    sim_finish(&sim);
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 6) {
        fprintf(stderr, "usage: %s PCAP CSV [loss_ppm [bytes [seed]]]\n", argv[0]);
        return 2;
    }
    pcap_path = argv[1];
    csv_path = argv[2];
    if (argc > 3)
        loss_ppm = (uint32_t)strtoul(argv[3], NULL, 0);
    if (argc > 4)
        total = strtoull(argv[4], NULL, 0);
    if (argc > 5)
        seed = strtoull(argv[5], NULL, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transfer_with_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
