/* Whole-stack fuzzing through the link: frames the stacks really sent,
 * mutated with a seeded generator (bit flips, boundary values in length
 * and offset fields, truncation, extension, a fixed-up IP checksum so the
 * damage reaches the layers above), fed to a stack with sockets open.
 * Under ASan/UBSan any out-of-bounds read or overflow fails the test; at
 * the end every queue must drain to zero live objects. The same input
 * path has a libFuzzer harness in tests/fuzz. */
#include "testing.h"

#include <stdlib.h>
#include <string.h>

#include "core/rand.h"
#include "sim.h"

#define MS TERN_NS_PER_MS
#define CORPUS_MAX 256

struct corpus {
    size_t n;
    size_t len[CORPUS_MAX];
    uint8_t frame[CORPUS_MAX][1600];
};

static void collect(struct sim *sim, struct corpus *c)
{
    uint8_t buf[2048];
    size_t n;
    while ((n = sim_raw_recv(sim, -1, buf, sizeof(buf))) > 0) {
        if (c->n < CORPUS_MAX && n <= sizeof(c->frame[0])) {
            memcpy(c->frame[c->n], buf, n);
            c->len[c->n++] = n;
        }
    }
}

/* Traffic of every kind we parse, captured as stack 1 sends it. */
static void build_corpus(struct sim *sim, struct corpus *c, int *listener)
{
    /* A TCP connection too: SYN, SYN-ACK's answer, data, FIN. */
    *listener = tern_socket(sim->st[0], AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in l = sim_sin(0, 80);
    tern_bind(sim->st[0], *listener, (struct sockaddr *)&l, sizeof(l));
    tern_listen(sim->st[0], *listener, 64);
    int tc = tern_socket(sim->st[1], AF_INET, SOCK_STREAM, 0);
    tern_connect(sim->st[1], tc, (struct sockaddr *)&l, sizeof(l));
    sim_run(sim, 10 * MS);
    static char text[3000];
    tern_send(sim->st[1], tc, text, sizeof(text), 0);
    tern_shutdown(sim->st[1], tc, SHUT_WR);
    int s1 = sim_udp(sim, 1, 0);
    int ping = tern_socket(sim->st[1], AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    struct sockaddr_in to = sim_sin(0, 7), closed = sim_sin(0, 9), far = sim_sin(0, 0);
    static uint8_t big[5000];
    uint8_t echo[40] = {8};
    tern_sendto(sim->st[1], s1, "hello", 5, 0, (struct sockaddr *)&to, sizeof(to));
    tern_sendto(sim->st[1], s1, big, sizeof(big), 0, (struct sockaddr *)&to, sizeof(to));
    tern_sendto(sim->st[1], s1, "x", 1, 0, (struct sockaddr *)&closed, sizeof(closed));
    tern_sendto(sim->st[1], ping, echo, sizeof(echo), 0, (struct sockaddr *)&far, sizeof(far));
    sim_run(sim, 10 * MS);
    collect(sim, c);
    tern_close(sim->st[1], tc);
    tern_close(sim->st[1], s1);
    tern_close(sim->st[1], ping);
}

static void fix_ip_checksum(uint8_t *f, size_t len)
{
    size_t ihl = len > 14 ? (size_t)(f[14] & 0xf) * 4 : 0;
    if (len >= 34 && f[12] == 0x08 && f[13] == 0x00 && ihl >= 20 && 14 + ihl <= len)
        sim_ip_fix_checksum(f + 14);
}

/* Recompute a TCP checksum over what the IP header says is the segment,
 * so that mutations of TCP fields reach the state machine. */
static void fix_tcp_checksum(uint8_t *f, size_t len)
{
    if (len < 34 || f[12] != 0x08 || f[13] != 0x00 || f[23] != 6)
        return;
    size_t ihl = (size_t)(f[14] & 0xf) * 4;
    size_t total = (size_t)(f[16] << 8 | f[17]);
    if (ihl < 20 || total < ihl + 20 || 14 + total > len)
        return;
    uint8_t *t = f + 14 + ihl;
    size_t tl = total - ihl;
    t[16] = t[17] = 0;
    uint32_t sum = (uint32_t)(f[26] << 8 | f[27]) + (uint32_t)(f[28] << 8 | f[29]) +
                   (uint32_t)(f[30] << 8 | f[31]) + (uint32_t)(f[32] << 8 | f[33]) + 6 +
                   (uint32_t)tl;
    for (size_t i = 0; i < tl; i += 2)
        sum += (uint32_t)(t[i] << 8 | (i + 1 < tl ? t[i + 1] : 0));
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    t[16] = (uint8_t)(~sum >> 8);
    t[17] = (uint8_t)~sum;
}

static size_t mutate(struct tern_rng *r, uint8_t *f, size_t len, size_t cap)
{
    static const uint8_t boundary[] = {0, 1, 0x7f, 0x80, 0xfe, 0xff, 0x40, 0x20, 0x45, 0x4f};
    /* Fields worth hitting: IP version/IHL, total length, id, flags and
     * offset, TTL, protocol, UDP ports and length, ICMP type/code, ARP op. */
    static const uint8_t hot[] = {14, 16, 17, 18, 19, 20, 21, 22, 23, 34, 35, 36, 37, 38, 39,
                                  40, 41, 42, 43, 20, 21};
    int edits = 1 + (int)tern_rng_below(r, 4);
    for (int e = 0; e < edits; e++) {
        switch (tern_rng_below(r, 6)) {
        case 0:
            f[tern_rng_below(r, len)] ^= (uint8_t)(1u << tern_rng_below(r, 8));
            break;
        case 1: {
            size_t at = hot[tern_rng_below(r, sizeof(hot))];
            if (at < len)
                f[at] = boundary[tern_rng_below(r, sizeof(boundary))];
            break;
        }
        case 2:
            len = 1 + tern_rng_below(r, len);
            break;
        case 3:
            if (len < cap) {
                size_t more = tern_rng_below(r, cap - len + 1);
                tern_rng_fill(r, f + len, more);
                len += more;
            }
            break;
        case 4:
            f[tern_rng_below(r, len)] = (uint8_t)tern_rng_next(r);
            break;
        default:
            break;
        }
    }
    if (tern_rng_below(r, 2)) {
        fix_ip_checksum(f, len);
        fix_tcp_checksum(f, len);
    }
    return len;
}

static void test_mutated_frames_never_hurt_the_stack(void **state)
{
    (void)state;
    struct sim sim;
    sim_init(&sim, 2, NULL);
    static struct corpus corpus;
    corpus.n = 0;
    int listener;
    build_corpus(&sim, &corpus, &listener);
    assert_true(corpus.n >= 8);
    /* Stack 0 listens where the traffic goes, so mutations can climb. */
    int u7 = sim_udp(&sim, 0, 7);
    int uany = tern_socket(sim.st[0], AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(9)};
    tern_bind(sim.st[0], uany, (struct sockaddr *)&any, sizeof(any));
    uint8_t mac0[6];
    tern_if_get_mac(sim.st[0], sim.ifindex[0], mac0);
    struct tern_rng r;
    tern_rng_seed(&r, 2026);
    uint8_t f[1514], sink[70000];
    enum { ROUNDS = 30000 };
    for (int i = 0; i < ROUNDS; i++) {
        size_t k = tern_rng_below(&r, corpus.n);
        size_t len = corpus.len[k];
        memcpy(f, corpus.frame[k], len);
        if (tern_rng_below(&r, 8))
            memcpy(f, mac0, 6); /* mostly aimed at stack 0 */
        len = mutate(&r, f, len, sizeof(f));
        sim_raw_send(&sim, f, len);
        if (i % 64 == 63) {
            sim_run(&sim, MS);
            while (tern_recv(sim.st[0], u7, sink, sizeof(sink), 0) >= 0) {
            }
            while (tern_recv(sim.st[0], uany, sink, sizeof(sink), 0) >= 0) {
            }
            while (sim_raw_recv(&sim, -1, sink, sizeof(sink)) > 0) {
            }
            int a;
            while ((a = tern_accept(sim.st[0], listener, NULL, NULL)) >= 0)
                tern_close(sim.st[0], a);
        }
    }
    sim_run(&sim, 10 * MS);
    /* The mutations reached many different checks. */
    static const char *const reasons[] = {
        "drop.ip.bad_checksum", "drop.ip.too_short", "drop.ip.bad_header_len",
        "drop.ip.bad_version", "drop.udp.bad_checksum", "drop.udp.too_short",
        "drop.eth.unknown_type", "drop.arp.malformed", "drop.icmp.bad_checksum",
        "drop.ip.not_for_us", "drop.tcp.bad_checksum", "drop.tcp.no_socket"};
    int reached = 0;
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        reached += sim_counter(&sim, 0, reasons[i]) > 0;
    if (getenv("FUZZ_VERBOSE"))
        tern_counters_dump(sim.st[0], stderr, true);
    assert_true(reached >= 8);
    assert_true(sim_counter(&sim, 0, "udp.rx") > 100);
    assert_true(sim_counter(&sim, 0, "tcp.rx") > 100);
    tern_close(sim.st[0], listener);
    tern_close(sim.st[0], u7);
    tern_close(sim.st[0], uany);
    sim_finish(&sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutated_frames_never_hurt_the_stack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
