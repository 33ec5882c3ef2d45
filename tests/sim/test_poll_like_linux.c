/* Readiness as Linux reports it: the same steps on a Tern connection (two
 * stacks on the wire) and on a kernel connection over 127.0.0.1, and
 * tern_poll must give the mask poll(2) gives, step by step. */
#include "testing.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sim.h"

#define MS TERN_NS_PER_MS
#define EVENTS (POLLIN | POLLOUT | POLLRDHUP)

enum step { FRESH, ESTABLISHED, PEER_SENT, SHUT_WR_SELF, SHUT_RD_SELF, SHUT_RDWR_SELF, PEER_FIN,
            PEER_RST, STEP_COUNT };
static const char *const step_name[STEP_COUNT] = {
    "fresh", "established", "peer sent data", "shutdown(SHUT_WR)", "shutdown(SHUT_RD)",
    "shutdown(SHUT_RDWR)", "peer's FIN", "peer's RST"};

/* ---- the kernel ---- */

struct kpair {
    int listener, self, peer;
};

static void kernel_pair(struct kpair *k, bool connect_it)
{
    k->listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(k->listener, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(k->listener, (struct sockaddr *)&a, &al), 0);
    assert_int_equal(listen(k->listener, 4), 0);
    k->self = socket(AF_INET, SOCK_STREAM, 0);
    k->peer = -1;
    if (!connect_it)
        return;
    assert_int_equal(connect(k->self, (struct sockaddr *)&a, sizeof(a)), 0);
    k->peer = accept(k->listener, NULL, NULL);
    assert_true(k->peer >= 0);
}

static short kernel_mask(int fd)
{
    usleep(20000); /* loopback delivers within the call; this is margin */
    struct pollfd p = {.fd = fd, .events = EVENTS};
    assert_true(poll(&p, 1, 0) >= 0);
    return p.revents;
}

static void kernel_close(struct kpair *k)
{
    close(k->listener);
    close(k->self);
    if (k->peer >= 0)
        close(k->peer);
}

static short kernel_step(enum step st)
{
    struct kpair k;
    kernel_pair(&k, st != FRESH);
    char b = 'x';
    switch (st) {
    case FRESH:
    case ESTABLISHED:
        break;
    case PEER_SENT:
        assert_int_equal(send(k.peer, &b, 1, 0), 1);
        break;
    case SHUT_WR_SELF: shutdown(k.self, SHUT_WR); break;
    case SHUT_RD_SELF: shutdown(k.self, SHUT_RD); break;
    case SHUT_RDWR_SELF: shutdown(k.self, SHUT_RDWR); break;
    case PEER_FIN: shutdown(k.peer, SHUT_WR); break;
    case PEER_RST: {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(k.peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(k.peer);
        k.peer = -1;
        break;
    }
    case STEP_COUNT:
        break;
    }
    short m = kernel_mask(k.self);
    kernel_close(&k);
    return m;
}

/* ---- Tern ---- */

static short tern_step(enum step st)
{
    struct sim sim;
    sim_init(&sim, 2, NULL);
    struct sim_tcp c = {.cstack = 0, .sstack = 1, .listener = -1, .server = -1, .client = -1};
    if (st == FRESH) {
        c.client = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
    } else {
        sim_tcp_open(&sim, &c, 0, 1, 80);
        sim_run(&sim, 10 * MS);
    }
    struct {
        int self, peer;
    } t = {c.client, c.server};
    char b = 'x';
    switch (st) {
    case FRESH:
    case ESTABLISHED:
        break;
    case PEER_SENT:
        assert_int_equal(tern_send(sim.st[1], t.peer, &b, 1, 0), 1);
        break;
    case SHUT_WR_SELF: tern_shutdown(sim.st[0], t.self, SHUT_WR); break;
    case SHUT_RD_SELF: tern_shutdown(sim.st[0], t.self, SHUT_RD); break;
    case SHUT_RDWR_SELF: tern_shutdown(sim.st[0], t.self, SHUT_RDWR); break;
    case PEER_FIN: tern_shutdown(sim.st[1], t.peer, SHUT_WR); break;
    case PEER_RST: {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        tern_setsockopt(sim.st[1], t.peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        tern_close(sim.st[1], t.peer);
        t.peer = -1;
        break;
    }
    case STEP_COUNT:
        break;
    }
    sim_run(&sim, 10 * MS);
    struct pollfd p = {.fd = t.self, .events = EVENTS};
    assert_true(tern_poll(sim.st[0], &p, 1, 0) >= 0);
    struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* end quickly: nobody waits */
    tern_setsockopt(sim.st[0], t.self, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    c.server = t.peer; /* -1 if the step closed it */
    sim_tcp_close(&sim, &c);
    sim_finish(&sim);
    return p.revents;
}

static void test_poll_masks_match_linux(void **state)
{
    (void)state;
    int wrong = 0;
    for (int st = 0; st < STEP_COUNT; st++) {
        short k = kernel_step((enum step)st), t = tern_step((enum step)st);
        if (k != t) {
            fprintf(stderr, "%-22s kernel %#06x, tern %#06x\n", step_name[st], (unsigned short)k,
                    (unsigned short)t);
            wrong++;
        }
    }
    assert_int_equal(wrong, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poll_masks_match_linux),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
