/* ternstat against a running threaded stack (issue 5): during a
 * transfer, the CLI prints a table that holds the connection, its events
 * and counters, and starts and stops a capture that then holds the
 * traffic. The CLI is the real program (tools/ternstat). */
#include "testing.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tern/tern.h>

#include "pcapcheck.h"
#include "sim.h"

#define PORT 7100

struct run {
    struct tern_stack *st[2];
    struct tern_link *l[2];
    int listener, server, client;
    _Atomic int stop;
    _Atomic uint64_t moved;
};

static struct in_addr addr_of(int i)
{
    struct in_addr a = {.s_addr = htonl(0xc0000201u + (uint32_t)i)};
    return a;
}

/* The client sends and the server reads until told to stop. */
static void *pump(void *arg)
{
    struct run *r = arg;
    static char buf[16384];
    while (!atomic_load(&r->stop)) {
        ssize_t w = tern_send(r->st[0], r->client, buf, sizeof(buf), MSG_DONTWAIT);
        ssize_t n = tern_recv(r->st[1], r->server, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0)
            atomic_fetch_add(&r->moved, (uint64_t)n);
        if (w <= 0 && n <= 0)
            usleep(1000);
    }
    return NULL;
}

static char *ternstat(const char *sock, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s %s %s 2>&1", TERN_TERNSTAT, sock, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        fwrite(buf, 1, n, m);
    fclose(m);
    int status = pclose(p);
    if (status != 0)
        fail_msg("ternstat %s exited %d:\n%s", args, status, out);
    return out;
}

static void test_ternstat_during_a_transfer(void **state)
{
    (void)state;
    struct run r = {.server = -1};
    assert_int_equal(tern_pipe_new(NULL, &r.l[0], &r.l[1]), 0);
    for (int i = 0; i < 2; i++) {
        struct tern_stack_config cfg;
        tern_stack_config_default(&cfg);
        cfg.seed = 300 + (uint64_t)i;
        r.st[i] = tern_stack_new(&cfg);
        int ifx = tern_if_add(r.st[i], r.l[i], NULL);
        assert_int_equal(tern_if_addr_add(r.st[i], ifx, addr_of(i), 24), 0);
    }
    char sock[256], pcap[256];
    sim_tmp_path(sock, sizeof(sock), "ternstat.sock");
    sim_tmp_path(pcap, sizeof(pcap), "ternstat.pcap");
    unlink(sock);
    /* Only a started stack serves a control socket. */
    errno = 0;
    assert_int_equal(tern_stack_control(r.st[1], sock), -1);
    assert_int_equal(errno, EINVAL);
    for (int i = 0; i < 2; i++)
        assert_int_equal(tern_stack_start(r.st[i]), 0);
    assert_int_equal(tern_stack_control(r.st[1], sock), 0);
    errno = 0;
    assert_int_equal(tern_stack_control(r.st[1], sock), -1);
    assert_int_equal(errno, EALREADY);
    struct stat st;
    assert_int_equal(stat(sock, &st), 0);
    assert_int_equal(st.st_mode & 077, 0); /* the owner's only */

    r.listener = tern_socket(r.st[1], AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT), .sin_addr = addr_of(1)};
    assert_int_equal(tern_bind(r.st[1], r.listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(r.st[1], r.listener, 4), 0);
    r.client = tern_socket(r.st[0], AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 10};
    tern_setsockopt(r.st[0], r.client, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    assert_int_equal(tern_connect(r.st[0], r.client, (struct sockaddr *)&a, sizeof(a)), 0);
    tern_setsockopt(r.st[1], r.listener, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    r.server = tern_accept(r.st[1], r.listener, NULL, NULL);
    assert_true(r.server >= 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, pump, &r), 0);
    usleep(100000);

    char *out = ternstat(sock, "");
    if (!strstr(out, "ESTABLISHED") || !strstr(out, "192.0.2.1:") || !strstr(out, "192.0.2.2:7100"))
        fail_msg("the table lacks the connection:\n%s", out);
    assert_non_null(strstr(out, "LISTEN"));
    assert_non_null(strstr(out, "cwnd:"));
    free(out);
    /* The server socket's id is the second on its stack (after the listener). */
    out = ternstat(sock, "events 2");
    if (!strstr(out, "socket #2 ESTABLISHED") || !strstr(out, "the last 8:") ||
        (!strstr(out, " rx ") && !strstr(out, " tx ")))
        fail_msg("no events for socket #2:\n%s", out);
    free(out);
    out = ternstat(sock, "counters");
    assert_non_null(strstr(out, "tcp.rx"));
    free(out);
    out = ternstat(sock, "json");
    assert_non_null(strstr(out, "\"state\":\"ESTABLISHED\""));
    free(out);
    out = ternstat(sock, "gauges");
    assert_non_null(strstr(out, "gauge.tcp.established"));
    free(out);

    /* A capture started and stopped while the data flows. */
    out = ternstat(sock, "pcap start");
    assert_non_null(strstr(out, "commands:")); /* no file: the help */
    free(out);
    char args[300];
    snprintf(args, sizeof(args), "pcap start %s", pcap);
    out = ternstat(sock, args);
    assert_non_null(strstr(out, "capturing to"));
    free(out);
    out = ternstat(sock, args);
    assert_non_null(strstr(out, "error:")); /* one at a time */
    free(out);
    /* Some data crosses during the capture, however busy the machine
     * (a fixed sleep was not always enough under load): 64 KiB, or 10 s. */
    uint64_t at_start = atomic_load(&r.moved);
    for (int i = 0; i < 1000 && atomic_load(&r.moved) - at_start < 65536; i++)
        usleep(10000);
    out = ternstat(sock, "pcap stop");
    assert_non_null(strstr(out, "capture stopped"));
    free(out);
    atomic_store(&r.stop, 1);
    pthread_join(t, NULL);
    assert_true(atomic_load(&r.moved) > 0);
    assert_int_equal(stat(pcap, &st), 0);
    assert_true(st.st_size > 24 + 16 + 1000); /* header and some full frames */
    assert_int_equal(pcap_check(pcap), 0);
    remove(pcap);

    tern_close(r.st[0], r.client);
    tern_close(r.st[1], r.server);
    tern_close(r.st[1], r.listener);
    for (int i = 0; i < 2; i++)
        tern_stack_free(r.st[i]);
    assert_int_not_equal(stat(sock, &st), 0); /* removed with the stack's runtime */
    for (int i = 0; i < 2; i++)
        tern_link_free(r.l[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ternstat_during_a_transfer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
