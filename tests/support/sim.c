#include "sim.h"

#include "testing.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct in_addr sim_addr(int i)
{
    struct in_addr a = {.s_addr = htonl(0xc0000201u + (uint32_t)i)}; /* 192.0.2.(i+1) */
    return a;
}

struct sockaddr_in sim_sin(int i, uint16_t port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr = sim_addr(i)};
    return sin;
}

void sim_init(struct sim *sim, int n, const struct sim_opts *o)
{
    struct sim_opts def = {0};
    if (!o)
        o = &def;
    assert_true(n >= 1 && n <= SIM_MAX);
    memset(sim, 0, sizeof(*sim));
    sim->n = n;
    sim->now = 1; /* not 0, so a zero timestamp shows a bug */
    struct tern_wire_config wc;
    tern_wire_config_default(&wc);
    if (o->mtu)
        wc.mtu = o->mtu;
    wc.offload = o->offload;
    sim->wire = tern_wire_new(&wc);
    assert_non_null(sim->wire);
    sim->raw = tern_wire_port_new(sim->wire);
    assert_non_null(sim->raw);
    for (int i = 0; i < n; i++) {
        struct tern_stack_config cfg;
        if (o->cfg)
            cfg = *o->cfg;
        else
            tern_stack_config_default(&cfg);
        cfg.seed = (o->seed ? o->seed : 1) * 1000 + (uint64_t)i;
        sim->st[i] = tern_stack_new(&cfg);
        assert_non_null(sim->st[i]);
        struct tern_link *l = tern_wire_port_new(sim->wire);
        assert_non_null(l);
        if (o->tx) {
            l = tern_impair_new(l, o->tx, NULL, cfg.seed ^ 0x5eed);
            assert_non_null(l);
        }
        if (o->wrap) {
            l = o->wrap(l, i, o->wrap_arg);
            assert_non_null(l);
        }
        if (i == 0 && o->pcap) {
            l = tern_pcap_tee_new(l, o->pcap);
            assert_non_null(l);
        }
        sim->link[i] = l;
        sim->ifindex[i] = tern_if_add(sim->st[i], l, NULL);
        assert_true(sim->ifindex[i] >= 1);
        assert_int_equal(tern_if_addr_add(sim->st[i], sim->ifindex[i], sim_addr(i), 24), 0);
    }
}

static void poll_until_quiet(struct sim *sim)
{
    /* Frames on the wire arrive at once, so keep polling at the same
     * instant until a whole round moves nothing. Bounded. */
    for (int round = 0; round < 10000; round++) {
        int moved = 0;
        for (int i = 0; i < sim->n; i++)
            moved += tern_stack_poll(sim->st[i], sim->now);
        if (moved == 0)
            return;
    }
    fail_msg("stacks never went quiet at t=%llu", (unsigned long long)sim->now);
}

static uint64_t next_deadline(struct sim *sim)
{
    uint64_t t = TERN_TIME_NEVER;
    for (int i = 0; i < sim->n; i++) {
        uint64_t d = tern_stack_next_deadline(sim->st[i]);
        if (d < t)
            t = d;
    }
    return t;
}

bool sim_run_until(struct sim *sim, bool (*cond)(struct sim *, void *), void *arg,
                   uint64_t max_ns)
{
    uint64_t end = sim->now + max_ns;
    int stuck = 0;
    for (;;) {
        poll_until_quiet(sim);
        if (cond && cond(sim, arg))
            return true;
        uint64_t t = next_deadline(sim);
        if (t <= sim->now) {
            /* Something is ready at this very instant (a frame another
             * stack's link forwarded after we polled it): poll again
             * without moving time. */
            if (++stuck > 10000)
                fail_msg("a deadline stays at t=%llu", (unsigned long long)sim->now);
            continue;
        }
        stuck = 0;
        if (sim->now >= end)
            return false;
        sim->now = t < end ? t : end;
    }
}

void sim_run(struct sim *sim, uint64_t dur_ns) { sim_run_until(sim, NULL, NULL, dur_ns); }

void sim_finish(struct sim *sim)
{
    /* Longer than ARP's lifetime and reassembly's timeout. */
    sim_run(sim, 120 * TERN_NS_PER_SEC);
    for (int i = 0; i < sim->n; i++) {
        struct tern_live live;
        tern_stack_live(sim->st[i], &live);
        if (live.packets || live.sockets || live.timers || live.arp_entries ||
            live.reasm_datagrams) {
            tern_sockets_dump(sim->st[i], stderr);
            tern_timers_dump(sim->st[i], stderr);
        }
        assert_int_equal(live.packets, 0);
        assert_int_equal(live.sockets, 0);
        assert_int_equal(live.timers, 0);
        assert_int_equal(live.arp_entries, 0);
        assert_int_equal(live.reasm_datagrams, 0);
        tern_stack_free(sim->st[i]);
        tern_link_free(sim->link[i]);
    }
    tern_link_free(sim->raw);
    tern_wire_free(sim->wire);
}

const uint8_t SIM_RAW_MAC[6] = {0x02, 0x52, 0x41, 0x57, 0x00, 0x01};

void sim_raw_send(struct sim *sim, const void *frame, size_t len)
{
    struct tern_frame f = {.data = (uint8_t *)frame, .len = len, .cap = len};
    assert_int_equal(tern_link_send(sim->raw, &f, 1, sim->now), 1);
}

size_t sim_raw_recv(struct sim *sim, int proto, uint8_t *buf, size_t cap)
{
    for (;;) {
        struct tern_frame f = {.data = buf, .cap = cap};
        if (tern_link_recv(sim->raw, &f, 1, sim->now) == 0)
            return 0;
        /* The stacks' ports leave checksums to the wire; a sniffer fills
         * them, and the tests then check every one. */
        tern_frame_csum_fill(&f);
        if (proto < 0)
            return f.len;
        if (f.len >= 34 && buf[12] == 0x08 && buf[13] == 0x00 && buf[23] == proto)
            return f.len;
    }
}

void sim_raw_arp_hello(struct sim *sim, int i)
{
    uint8_t f[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    uint32_t spa = SIM_RAW_IP, tpa = ntohl(sim_addr(i).s_addr);
    memcpy(f + 6, SIM_RAW_MAC, 6);
    const uint8_t head[10] = {0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1};
    memcpy(f + 12, head, sizeof(head));
    memcpy(f + 22, SIM_RAW_MAC, 6);
    const uint8_t ips[4] = {(uint8_t)(spa >> 24), (uint8_t)(spa >> 16), (uint8_t)(spa >> 8),
                            (uint8_t)spa};
    memcpy(f + 28, ips, 4);
    const uint8_t tips[4] = {(uint8_t)(tpa >> 24), (uint8_t)(tpa >> 16), (uint8_t)(tpa >> 8),
                             (uint8_t)tpa};
    memcpy(f + 38, tips, 4);
    sim_raw_send(sim, f, sizeof(f));
}

void sim_ip_fix_checksum(uint8_t *ip)
{
    size_t ihl = (size_t)(ip[0] & 0xf) * 4;
    ip[10] = ip[11] = 0;
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < ihl; i += 2)
        sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    ip[10] = (uint8_t)(~sum >> 8);
    ip[11] = (uint8_t)~sum;
}

size_t sim_raw_ipv4(struct sim *sim, int i, uint8_t *frame, uint8_t proto, uint16_t id,
                    uint16_t frag_off, bool mf, const void *payload, size_t len)
{
    uint8_t mac[6];
    assert_int_equal(tern_if_get_mac(sim->st[i], sim->ifindex[i], mac), 0);
    memcpy(frame, mac, 6);
    memcpy(frame + 6, SIM_RAW_MAC, 6);
    frame[12] = 0x08;
    frame[13] = 0x00;
    uint8_t *ip = frame + 14;
    uint32_t src = SIM_RAW_IP, dst = ntohl(sim_addr(i).s_addr);
    size_t total = 20 + len;
    uint16_t ff = (uint16_t)((mf ? 0x2000 : 0) | (frag_off / 8));
    const uint8_t hdr[20] = {0x45, 0, (uint8_t)(total >> 8), (uint8_t)total,
                             (uint8_t)(id >> 8), (uint8_t)id, (uint8_t)(ff >> 8), (uint8_t)ff,
                             64, proto, 0, 0,
                             (uint8_t)(src >> 24), (uint8_t)(src >> 16), (uint8_t)(src >> 8),
                             (uint8_t)src,
                             (uint8_t)(dst >> 24), (uint8_t)(dst >> 16), (uint8_t)(dst >> 8),
                             (uint8_t)dst};
    memcpy(ip, hdr, 20);
    sim_ip_fix_checksum(ip);
    if (len)
        memcpy(ip + 20, payload, len);
    return 14 + total;
}

int sim_udp(struct sim *sim, int i, uint16_t port)
{
    int fd = tern_socket(sim->st[i], AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = sim_sin(i, port);
    assert_int_equal(tern_bind(sim->st[i], fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

uint64_t sim_counter(struct sim *sim, int i, const char *name)
{
    assert_true(tern_counter_find(name) >= 0);
    return tern_counter_by_name(sim->st[i], name);
}

void sim_tmp_path(char *buf, size_t n, const char *name)
{
    const char *dir = getenv("TERN_TEST_TMP");
    snprintf(buf, n, "%s/%s.%d", dir && *dir ? dir : "/tmp", name, (int)getpid());
}

/* ---- TCP between stacks ---- */

static bool tcp_accepted(struct sim *sim, void *arg)
{
    struct sim_tcp *c = arg;
    c->server = tern_accept(sim->st[c->sstack], c->listener, NULL, NULL);
    return c->server >= 0;
}

void sim_tcp_open(struct sim *sim, struct sim_tcp *c, int cstack, int sstack, uint16_t port)
{
    sim_tcp_open_rcvbuf(sim, c, cstack, sstack, port, 0);
}

void sim_tcp_open_rcvbuf(struct sim *sim, struct sim_tcp *c, int cstack, int sstack,
                         uint16_t port, int rcvbuf)
{
    *c = (struct sim_tcp){.cstack = cstack, .sstack = sstack, .server = -1};
    c->listener = tern_socket(sim->st[sstack], AF_INET, SOCK_STREAM, 0);
    assert_true(c->listener >= 0);
    if (rcvbuf > 0)
        assert_int_equal(tern_setsockopt(sim->st[sstack], c->listener, SOL_SOCKET, SO_RCVBUF,
                                         &rcvbuf, sizeof(rcvbuf)), 0);
    struct sockaddr_in a = sim_sin(sstack, port);
    assert_int_equal(tern_bind(sim->st[sstack], c->listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(sim->st[sstack], c->listener, 16), 0);
    c->client = tern_socket(sim->st[cstack], AF_INET, SOCK_STREAM, 0);
    assert_true(c->client >= 0);
    errno = 0;
    assert_int_equal(tern_connect(sim->st[cstack], c->client, (struct sockaddr *)&a, sizeof(a)),
                     -1);
    assert_int_equal(errno, EINPROGRESS);
    assert_true(sim_run_until(sim, tcp_accepted, c, 5 * TERN_NS_PER_SEC));
}

void sim_tcp_close(struct sim *sim, struct sim_tcp *c)
{
    if (c->client >= 0)
        tern_close(sim->st[c->cstack], c->client);
    if (c->server >= 0)
        tern_close(sim->st[c->sstack], c->server);
    if (c->listener >= 0)
        tern_close(sim->st[c->sstack], c->listener);
    c->client = c->server = c->listener = -1;
}

uint8_t sim_pattern(uint64_t i, uint32_t salt)
{
    return (uint8_t)((i * 7919u + (i >> 9) + salt) & 0xff);
}

bool sim_flow_pump(struct sim *sim, void *arg)
{
    struct sim_flow *t = arg;
    uint8_t buf[65536];
    while (t->sent < t->total) {
        size_t n = t->total - t->sent < sizeof(buf) ? (size_t)(t->total - t->sent) : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = sim_pattern(t->sent + i, t->salt);
        ssize_t w = tern_send(sim->st[t->from_stack], t->from_fd, buf, n, 0);
        if (w <= 0)
            break;
        t->sent += (uint64_t)w;
    }
    if (t->to_fd < 0)
        return t->sent == t->total;
    for (;;) {
        ssize_t r = tern_recv(sim->st[t->to_stack], t->to_fd, buf, sizeof(buf), 0);
        if (r < 0) {
            if (errno != EAGAIN && !t->error)
                t->error = errno;
            break;
        }
        if (r == 0) {
            t->eof = true;
            break;
        }
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != sim_pattern(t->received + (uint64_t)i, t->salt))
                fail_msg("byte %llu wrong", (unsigned long long)(t->received + (uint64_t)i));
        t->received += (uint64_t)r;
    }
    return t->received == t->total || t->error;
}
