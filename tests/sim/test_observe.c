/* What a stack shows of itself (issue 5): the socket table with TCP
 * details, its JSON form (parsed by a real JSON parser), a connection's
 * recent events, per-state gauges. */
#include "testing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stack.h"
#include "sim.h"
#include "transport/tcp/tcp.h"

#define MS TERN_NS_PER_MS
#define SEC TERN_NS_PER_SEC

static char *capture(void (*fn)(const struct tern_stack *, FILE *), struct tern_stack *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(s, f);
    fclose(f);
    return buf;
}

static void test_table_events_json_and_gauges(void **state)
{
    (void)state;
    struct tern_impair_config imp = {.delay_ns = 5 * MS, .loss_ppm = 20000};
    struct sim_opts o = {.tx = &imp, .seed = 3};
    struct sim sim;
    sim_init(&sim, 2, &o);
    struct sim_tcp c;
    sim_tcp_open(&sim, &c, 0, 1, 80);
    static char data[200000];
    assert_true(tern_send(sim.st[0], c.client, data, sizeof(data), 0) > 0);
    sim_run(&sim, 2 * SEC);

    char *t = capture(tern_sockets_dump, sim.st[0]);
    assert_non_null(strstr(t, "ESTABLISHED"));
    assert_non_null(strstr(t, "cc:cubic"));
    assert_non_null(strstr(t, "rtt:"));
    assert_non_null(strstr(t, "cwnd:"));
    assert_non_null(strstr(t, "timers:"));
    /* Queues beside their limits: the client's receive side is empty. */
    assert_non_null(strstr(t, " rcvq:0/262144 "));
    assert_non_null(strstr(t, "/262144 rcvq:")); /* the send buffer's limit */
    /* The interface: a wire port keeps frames in memory (tx-csum). */
    assert_non_null(strstr(t, "interfaces:\n  1 "));
    assert_non_null(strstr(t, " mtu 1500 offloads:tx-csum 192.0.2.1/24; rx "));
    assert_non_null(strstr(t, " dropped), tx "));
    free(t);
    t = capture(tern_sockets_dump, sim.st[1]);
    assert_non_null(strstr(t, "backlog:16 synq:0 acceptq:0"));
    free(t);

    /* The client's recent events: handshake long gone from a ring of 8,
     * data segments and ACKs remain. */
    struct tern_socket *so = tern_sock_lookup(sim.st[0], c.client);
    assert_non_null(so);
    assert_true(so->tcb->events_next > 8);
    char *ev = NULL;
    size_t evl = 0;
    FILE *f = open_memstream(&ev, &evl);
    assert_int_equal(tern_socket_events_dump(sim.st[0], so->id, f), 0);
    fclose(f);
    assert_non_null(strstr(ev, "the last 8"));
    assert_non_null(strstr(ev, "ESTABLISHED"));
    assert_true(strstr(ev, " rx ") || strstr(ev, " tx "));
    free(ev);
    f = fopen("/dev/null", "w");
    errno = 0;
    assert_int_equal(tern_socket_events_dump(sim.st[0], 999999, f), -1);
    assert_int_equal(errno, ENOENT);
    fclose(f);

    /* JSON, checked by Python's parser and read back. */
    char path[256];
    sim_tmp_path(path, sizeof(path), "observe.json");
    f = fopen(path, "w");
    assert_non_null(f);
    tern_sockets_dump_json(sim.st[0], f);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 -c 'import json,sys; d=json.load(open(\"%s\")); "
             "t=[x for x in d[\"sockets\"] if x[\"proto\"]==\"tcp\"][0]; "
             "assert t[\"state\"]==\"ESTABLISHED\"; assert t[\"tcp\"][\"cc\"]==\"cubic\"; "
             "assert len(t[\"tcp\"][\"events\"])==8; assert t[\"tcp\"][\"srtt_us\"]>0; "
             "assert d[\"tcp_states\"][\"ESTABLISHED\"]==1; i=d[\"interfaces\"][0]; "
             "assert i[\"mtu\"]==1500 and i[\"addrs\"]==[\"192.0.2.1/24\"]; "
             "assert i[\"offloads\"]==\"tx-csum\" and i[\"tx_frames\"]>100'",
             path);
    assert_int_equal(system(cmd), 0);
    remove(path);

    t = capture(tern_gauges_dump, sim.st[1]);
    assert_non_null(strstr(t, "gauge.tcp.established"));
    assert_non_null(strstr(t, "gauge.tcp.listen                            1"));
    free(t);

    sim_tcp_close(&sim, &c);
    sim_finish(&sim);
}

/* tcp_event_ring 0 turns the history off; the block shrinks with it. */
static void test_event_ring_can_be_off(void **state)
{
    (void)state;
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    cfg.tcp_event_ring = 0;
    struct tern_stack *s = tern_stack_new(&cfg);
    int fd = tern_socket(s, AF_INET, SOCK_STREAM, 0);
    struct tern_socket *so = tern_sock_lookup(s, fd);
    assert_int_equal(so->tcb->events_cap, 0);
    tern_close(s, fd);
    cfg.tcp_event_ring = 65;
    errno = 0;
    assert_null(tern_stack_new(&cfg));
    assert_int_equal(errno, EINVAL);
    tern_stack_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_events_json_and_gauges),
        cmocka_unit_test(test_event_ring_can_be_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
