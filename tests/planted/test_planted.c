/* Planted bugs are caught (issue 5). This program links tern_planted, the
 * library built with TERN_PLANT_BUGS (src/core/plant.h), and switches on
 * one bug at a time in a child process: each must end in a failed
 * invariant that names the object (a socket by its number, a TIME_WAIT
 * record by its socket's), not in a crash later or a silent leak.
 *
 *   skip_proto_release    the protocol never lets go of a reset connection
 *                         (one reference drop skipped): a leak
 *   double_proto_release  the protocol lets go twice (the FIN/RST side and
 *                         the close side each think they hold the last one)
 *   close_frees_early     close frees a socket whose connection still runs
 *   tcp_timer_left_armed  a connection is dropped with its timer armed
 *   tw_timer_left_armed   a TIME_WAIT record is freed with its timer armed
 *
 * Each scenario also runs without the bug and must end clean (sim_finish:
 * no socket, packet or timer left), so an abort can only come from the
 * bug. Last, the poison tern_timer_retire leaves: a timer of a freed
 * object armed again through a stale pointer is caught too. */
#include "testing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sim.h"
#include "core/stack.h"
#include "core/timer.h"

#define MS TERN_NS_PER_MS
#define PORT 80

/* Stack 0 listens (socket #1), stack 1 connects (socket #1 there), stack
 * 0 accepts (socket #2). */
struct conn {
    struct sim sim;
    int lfd, cfd, afd;
};

static void conn_up(struct conn *c)
{
    sim_init(&c->sim, 2, NULL);
    struct tern_stack *s0 = c->sim.st[0], *s1 = c->sim.st[1];
    c->lfd = tern_socket(s0, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = sim_sin(0, PORT);
    assert_int_equal(tern_bind(s0, c->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(s0, c->lfd, 4), 0);
    c->cfd = tern_socket(s1, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    errno = 0;
    assert_int_equal(tern_connect(s1, c->cfd, (struct sockaddr *)&a, sizeof(a)), -1);
    assert_int_equal(errno, EINPROGRESS);
    sim_run(&c->sim, 100 * MS);
    c->afd = tern_accept(s0, c->lfd, NULL, NULL);
    assert_true(c->afd >= 0);
}

static void conn_down(struct conn *c)
{
    if (c->afd >= 0)
        assert_int_equal(tern_close(c->sim.st[0], c->afd), 0);
    if (c->cfd >= 0)
        assert_int_equal(tern_close(c->sim.st[1], c->cfd), 0);
    assert_int_equal(tern_close(c->sim.st[0], c->lfd), 0);
    sim_finish(&c->sim); /* every socket, packet and timer gone */
}

static void linger0(struct tern_stack *s, int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(tern_setsockopt(s, fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
}

/* The server resets its connection (close with SO_LINGER 0), the client
 * takes the RST, then closes its socket. */
static void scenario_reset_then_close(void)
{
    struct conn c;
    conn_up(&c);
    linger0(c.sim.st[0], c.afd);
    assert_int_equal(tern_close(c.sim.st[0], c.afd), 0);
    c.afd = -1;
    sim_run(&c.sim, 100 * MS);
    char b;
    errno = 0;
    assert_int_equal(tern_recv(c.sim.st[1], c.cfd, &b, 1, 0), -1);
    assert_int_equal(errno, ECONNRESET);
    conn_down(&c);
}

/* The server closes with a FIN while the client still talks. */
static void scenario_orderly_close(void)
{
    struct conn c;
    conn_up(&c);
    assert_int_equal(tern_close(c.sim.st[0], c.afd), 0);
    c.afd = -1;
    sim_run(&c.sim, 100 * MS);
    conn_down(&c);
}

/* The server sends, then resets before the data is acknowledged: its
 * retransmission timer is armed when the connection is dropped. */
static void scenario_reset_with_data_in_flight(void)
{
    struct conn c;
    conn_up(&c);
    assert_int_equal(tern_send(c.sim.st[0], c.afd, "ping", 4, 0), 4);
    linger0(c.sim.st[0], c.afd);
    assert_int_equal(tern_close(c.sim.st[0], c.afd), 0);
    c.afd = -1;
    sim_run(&c.sim, 100 * MS);
    conn_down(&c);
}

/* The client closes first and ends in TIME_WAIT; the stacks go away
 * while the record waits. */
static void scenario_teardown_in_time_wait(void)
{
    struct conn c;
    conn_up(&c);
    assert_int_equal(tern_close(c.sim.st[1], c.cfd), 0);
    c.cfd = -1;
    sim_run(&c.sim, 100 * MS);
    assert_int_equal(tern_close(c.sim.st[0], c.afd), 0);
    c.afd = -1;
    sim_run(&c.sim, 100 * MS);
    struct tern_live live;
    tern_stack_live(c.sim.st[1], &live);
    assert_int_equal(live.tcp_timewait, 1);
    assert_int_equal(tern_close(c.sim.st[0], c.lfd), 0);
    for (int i = 0; i < c.sim.n; i++) {
        tern_stack_free(c.sim.st[i]); /* the record goes with its stack */
        tern_link_free(c.sim.link[i]);
    }
    tern_link_free(c.sim.raw);
    tern_wire_free(c.sim.wire);
}

struct plant {
    const char *bug;
    void (*scenario)(void);
    const char *report; /* what the invariant must say */
};

static const struct plant PLANTS[] = {
    {"skip_proto_release", scenario_reset_then_close,
     "socket #2: the protocol's reference was never released (state user+proto"},
    {"double_proto_release", scenario_reset_then_close,
     "socket #1: protocol reference released twice (state user)"},
    {"close_frees_early", scenario_orderly_close,
     "socket #2: last reference dropped while its PCB is still in the tcp table"},
    {"tcp_timer_left_armed", scenario_reset_with_data_in_flight,
     "socket #2 freed with a TCP timer armed (state CLOSED)"},
    {"tw_timer_left_armed", scenario_teardown_in_time_wait,
     "TIME_WAIT record of socket #1 freed with its tcp-timewait timer armed"},
};

static void run_planted(void *arg)
{
    const struct plant *p = arg;
    setenv("TERN_PLANT_BUG", p->bug, 1);
    p->scenario();
}

static void test_scenarios_are_clean_without_a_bug(void **state)
{
    (void)state;
    unsetenv("TERN_PLANT_BUG");
    for (size_t i = 0; i < sizeof(PLANTS) / sizeof(PLANTS[0]); i++)
        PLANTS[i].scenario();
}

static void expect_caught(size_t i)
{
    expect_abort(run_planted, (void *)&PLANTS[i], PLANTS[i].report);
}

static void test_skipped_reference_drop(void **state) { (void)state; expect_caught(0); }
static void test_reference_released_twice(void **state) { (void)state; expect_caught(1); }
static void test_close_frees_a_running_connection(void **state) { (void)state; expect_caught(2); }
static void test_connection_timer_left_armed(void **state) { (void)state; expect_caught(3); }
static void test_time_wait_timer_left_armed(void **state) { (void)state; expect_caught(4); }

/* A planted bug leaves the invariant's report on stderr: it must also say
 * "invariant failed" and print the socket table (tern_panic), not only a
 * message. */
static void test_report_has_the_socket_table(void **state)
{
    (void)state;
    expect_abort(run_planted, (void *)&PLANTS[1], "tern: sockets of stack");
    expect_abort(run_planted, (void *)&PLANTS[1], "tern: invariant failed at");
}

static void never_fires(struct tern_stack *s, struct tern_timer *t)
{
    (void)s;
    (void)t;
    fail_msg("a retired timer fired");
}

/* An object with a timer is "freed" (its timer retired, its memory kept
 * so the test can reach it as a stale pointer would), then armed again. */
static void arm_retired(void *arg)
{
    (void)arg;
    struct tern_stack *s = tern_stack_new(NULL);
    struct tern_timer t;
    tern_timer_init(&t, never_fires, "stale");
    tern_timer_arm(s, &t, TERN_NS_PER_SEC);
    tern_timer_cancel(s, &t);
    tern_timer_retire(s, &t, "object %d", 7);
    tern_timer_arm(s, &t, 2 * TERN_NS_PER_SEC);
}

static void retire_armed(void *arg)
{
    (void)arg;
    struct tern_stack *s = tern_stack_new(NULL);
    struct tern_timer t;
    tern_timer_init(&t, never_fires, "stale");
    tern_timer_arm(s, &t, TERN_NS_PER_SEC);
    tern_timer_retire(s, &t, "object %d", 7);
}

static void test_retired_timer_is_poisoned(void **state)
{
    (void)state;
    expect_abort(arm_retired, NULL, "arming a timer that was never initialised or whose "
                                    "object was freed");
    expect_abort(retire_armed, NULL, "object 7 freed with its stale timer armed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scenarios_are_clean_without_a_bug),
        cmocka_unit_test(test_skipped_reference_drop),
        cmocka_unit_test(test_reference_released_twice),
        cmocka_unit_test(test_close_frees_a_running_connection),
        cmocka_unit_test(test_connection_timer_left_armed),
        cmocka_unit_test(test_time_wait_timer_left_armed),
        cmocka_unit_test(test_report_has_the_socket_table),
        cmocka_unit_test(test_retired_timer_is_poisoned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
