/* Two Tern stacks joined by a link, driven from one thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "bench.h"
#include "qlink.h"

struct sockaddr_in pair_addr(int i, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(0xc0000201u + (uint32_t)i); /* 192.0.2.(i+1) */
    return a;
}

static int add_stacks(struct tern_pair *p, void (*tweak)(struct tern_stack_config *, void *),
                      void *arg)
{
    for (int i = 0; i < 2; i++) {
        struct tern_stack_config cfg;
        tern_stack_config_default(&cfg);
        if (tweak)
            tweak(&cfg, arg);
        cfg.seed = 1000 + (uint64_t)i; /* distinct MACs on the shared link */
        p->st[i] = tern_stack_new(&cfg);
        if (!p->st[i])
            return -1;
        int ifx = tern_if_add(p->st[i], p->link[i], NULL);
        if (ifx < 0 || tern_if_addr_add(p->st[i], ifx, pair_addr(i, 0).sin_addr, 24) < 0)
            return -1;
    }
    pair_settle(p); /* the gratuitous ARPs */
    return 0;
}

int pair_new_wire(struct tern_pair *p, uint32_t mtu, bool offload,
                  void (*tweak)(struct tern_stack_config *, void *), void *arg)
{
    memset(p, 0, sizeof(*p));
    struct tern_wire_config wc;
    tern_wire_config_default(&wc);
    wc.mtu = mtu;
    wc.offload = offload;
    p->wire = tern_wire_new(&wc);
    if (!p->wire)
        return -1;
    for (int i = 0; i < 2; i++)
        if (!(p->link[i] = tern_wire_port_new(p->wire)))
            goto fail;
    if (add_stacks(p, tweak, arg) < 0)
        goto fail;
    return 0;
fail:
    pair_free(p);
    errno = errno ? errno : ENOMEM;
    return -1;
}

int pair_new_qlink(struct tern_pair *p, uint32_t mtu, bool offload,
                   void (*tweak)(struct tern_stack_config *, void *), void *arg)
{
    memset(p, 0, sizeof(*p));
    struct qlink *q = qlink_new(mtu, offload);
    if (!q)
        return -1;
    p->qlink = q;
    p->link[0] = qlink_port(q, 0);
    p->link[1] = qlink_port(q, 1);
    if (add_stacks(p, tweak, arg) < 0) {
        pair_free(p);
        return -1;
    }
    return 0;
}

void pair_free(struct tern_pair *p)
{
    for (int i = 0; i < 2; i++)
        if (p->st[i])
            tern_stack_free(p->st[i]);
    if (p->wire) {
        tern_wire_free(p->wire); /* frees its ports */
    }
    qlink_free(p->qlink);
    memset(p, 0, sizeof(*p));
}

static int poll_both(struct tern_pair *p)
{
    uint64_t now = bench_now_ns();
    return tern_stack_poll(p->st[1], now) + tern_stack_poll(p->st[0], now);
}

void pair_settle(struct tern_pair *p)
{
    for (int round = 0; round < 100000; round++)
        if (poll_both(p) == 0)
            return;
}

bool pair_run_until(struct tern_pair *p, bool (*cond)(struct tern_pair *, void *), void *arg,
                    uint64_t max_ns)
{
    uint64_t end = bench_now_ns() + max_ns;
    do {
        poll_both(p);
        if (cond(p, arg))
            return true;
    } while (bench_now_ns() < end);
    return false;
}

static bool accepted(struct tern_pair *p, void *arg)
{
    struct tern_conn *c = arg;
    c->server = tern_accept4(p->st[1], c->listener, NULL, NULL, SOCK_NONBLOCK);
    return c->server >= 0;
}

int pair_connect(struct tern_pair *p, uint16_t port, struct tern_conn *c)
{
    c->server = c->client = -1;
    c->listener = tern_socket(p->st[1], AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = pair_addr(1, port);
    if (c->listener < 0 || tern_bind(p->st[1], c->listener, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        tern_listen(p->st[1], c->listener, 128) < 0)
        return -1;
    c->client = tern_socket(p->st[0], AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->client < 0)
        return -1;
    if (tern_connect(p->st[0], c->client, (struct sockaddr *)&a, sizeof(a)) < 0 &&
        errno != EINPROGRESS)
        return -1;
    if (!pair_run_until(p, accepted, c, 5 * TERN_NS_PER_SEC))
        return -1;
    pair_settle(p);
    return 0;
}

void pair_debug_counters(const struct tern_pair *p, const char *name1, const char *name0)
{
    for (int i = 0; i < 2; i++) {
        fprintf(stderr, "stack %d (%s):\n", i, i ? name1 : name0);
        tern_counters_dump(p->st[i], stderr, true);
    }
}
