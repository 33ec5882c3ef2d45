/* The lifecycle matrix of issue 3: every order of {peer FIN or peer RST,
 * accept, the server's end (close, shutdown then close, or linger-0
 * close), the passage of time} on one connection. Whatever the order,
 * every call returns what POSIX and Linux say, nothing is freed twice
 * (the lifecycle asserts abort if it were), and once time runs out no
 * socket, packet or timer is left (sim_finish). */
#include "testing.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"

#define MS TERN_NS_PER_MS
#define SEC TERN_NS_PER_SEC

enum ev { EV_PEER_END, EV_ACCEPT, EV_SERVER_END, EV_WAIT, EV_COUNT };
enum peer_end { PEER_FIN, PEER_RST, PEER_DATA_FIN };
enum server_end { SERVER_CLOSE, SERVER_SHUTDOWN_CLOSE, SERVER_LINGER0 };

struct scenario {
    enum peer_end peer;
    enum server_end server;
    enum ev order[EV_COUNT];
};

static void run_scenario(const struct scenario *sc, int index)
{
    struct sim sim;
    struct sim_opts o = {.seed = (uint64_t)index + 1};
    sim_init(&sim, 2, &o);
    int listener = tern_socket(sim.st[1], AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sim_sin(1, 4242);
    assert_int_equal(tern_bind(sim.st[1], listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(sim.st[1], listener, 4), 0);
    int client = tern_socket(sim.st[0], AF_INET, SOCK_STREAM, 0);
    tern_connect(sim.st[0], client, (struct sockaddr *)&a, sizeof(a));
    sim_run(&sim, 50 * MS);
    int server = -1;
    bool peer_done = false, rst = false;
    for (int i = 0; i < EV_COUNT; i++) {
        switch (sc->order[i]) {
        case EV_PEER_END:
            if (sc->peer == PEER_RST) {
                struct linger l0 = {.l_onoff = 1, .l_linger = 0};
                tern_setsockopt(sim.st[0], client, SOL_SOCKET, SO_LINGER, &l0, sizeof(l0));
                rst = true;
            } else if (sc->peer == PEER_DATA_FIN) {
                assert_true(tern_send(sim.st[0], client, "data", 4, 0) == 4 ||
                            errno == ECONNRESET || errno == EPIPE);
            }
            assert_int_equal(tern_close(sim.st[0], client), 0);
            peer_done = true;
            break;
        case EV_ACCEPT:
            /* Reset, finished or alive: the connection is there to accept. */
            if (listener < 0)
                break; /* the listener went first: nothing to accept from */
            server = tern_accept(sim.st[1], listener, NULL, NULL);
            if (server < 0) {
                fprintf(stderr, "scenario %d step %d: accept: %s\n", index, i, strerror(errno));
                tern_sockets_dump(sim.st[1], stderr);
            }
            assert_true(server >= 0);
            break;
        case EV_SERVER_END:
            if (server < 0) {
                /* No handle yet: the listener's close is the server's end. */
                assert_int_equal(tern_close(sim.st[1], listener), 0);
                listener = -1;
                break;
            }
            if (sc->server == SERVER_SHUTDOWN_CLOSE) {
                int r = tern_shutdown(sim.st[1], server, SHUT_WR);
                assert_true(r == 0 || errno == ENOTCONN);
            } else if (sc->server == SERVER_LINGER0) {
                struct linger l0 = {.l_onoff = 1, .l_linger = 0};
                tern_setsockopt(sim.st[1], server, SOL_SOCKET, SO_LINGER, &l0, sizeof(l0));
            }
            assert_int_equal(tern_close(sim.st[1], server), 0);
            errno = 0;
            assert_int_equal(tern_close(sim.st[1], server), -1); /* never twice */
            assert_int_equal(errno, EBADF);
            server = -2;
            break;
        case EV_WAIT:
            sim_run(&sim, 3 * SEC);
            break;
        default:
            break;
        }
        sim_run(&sim, 20 * MS);
        if (server >= 0 && peer_done) {
            /* What a reader sees: data, then EOF or a reset. */
            char buf[8];
            ssize_t r;
            while ((r = tern_recv(sim.st[1], server, buf, sizeof(buf), 0)) > 0) {
            }
            if (r < 0)
                assert_true(errno == ECONNRESET || (errno == EAGAIN && !rst));
        }
    }
    if (server >= 0)
        tern_close(sim.st[1], server);
    if (listener >= 0)
        tern_close(sim.st[1], listener);
    if (!peer_done)
        tern_close(sim.st[0], client);
    sim_finish(&sim); /* asserts zero live sockets, packets, timers */
}

static void test_every_order_ends_clean(void **state)
{
    (void)state;
    int perm[24][4], n = 0;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 4; c++)
                for (int d = 0; d < 4; d++)
                    if (a != b && a != c && a != d && b != c && b != d && c != d) {
                        perm[n][0] = a;
                        perm[n][1] = b;
                        perm[n][2] = c;
                        perm[n][3] = d;
                        n++;
                    }
    int index = 0;
    for (int pe = PEER_FIN; pe <= PEER_DATA_FIN; pe++)
        for (int se = SERVER_CLOSE; se <= SERVER_LINGER0; se++)
            for (int p = 0; p < n; p++) {
                struct scenario sc = {.peer = (enum peer_end)pe, .server = (enum server_end)se};
                for (int i = 0; i < EV_COUNT; i++)
                    sc.order[i] = (enum ev)perm[p][i];
                run_scenario(&sc, index++);
            }
    assert_int_equal(index, 3 * 3 * 24);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_order_ends_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
