/* The main demo: two Tern stacks on an in-memory wire, in virtual time.
 * Stack A pings stack B, they exchange UDP, then a short TCP request and
 * answer; every frame is captured to a pcap, and the demo prints what
 * happened, A's socket table and each stack's counters.
 *
 *   tern_demo [--pcap FILE]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tern/tern.h>

struct world {
    struct tern_stack *a, *b;
    uint64_t now;
};

/* Move virtual time to the next thing either stack waits for (at most
 * `step` ahead), then poll both until neither receives anything. */
static void run(struct world *w, uint64_t step)
{
    uint64_t next = tern_stack_next_deadline(w->a);
    uint64_t nb = tern_stack_next_deadline(w->b);
    if (nb < next)
        next = nb;
    if (next > w->now)
        w->now = next <= w->now + step ? next : w->now + step;
    for (int round = 0; round < 1000; round++) {
        int moved = tern_stack_poll(w->a, w->now) + tern_stack_poll(w->b, w->now);
        if (!moved)
            break;
    }
}

static void die(const char *what)
{
    fprintf(stderr, "tern_demo: %s: %s\n", what, strerror(errno));
    exit(1);
}

int main(int argc, char **argv)
{
    const char *pcap = "tern-demo.pcap";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pcap") == 0 && i + 1 < argc)
            pcap = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--pcap FILE]\n", argv[0]);
            return 2;
        }
    }
    /* A wire with 1 ms of delay each way: a LAN a little far away. */
    struct tern_wire *wire = tern_wire_new(NULL);
    struct tern_impair_config delay = {.delay_ns = TERN_NS_PER_MS};
    struct tern_link *la =
        tern_pcap_tee_new(tern_impair_new(tern_wire_port_new(wire), &delay, NULL, 1), pcap);
    struct tern_link *lb = tern_impair_new(tern_wire_port_new(wire), &delay, NULL, 2);
    if (!wire || !la || !lb)
        die("links");

    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    struct world w = {.now = TERN_NS_PER_SEC};
    cfg.seed = 1;
    w.a = tern_stack_new(&cfg);
    cfg.seed = 2;
    w.b = tern_stack_new(&cfg);
    if (!w.a || !w.b)
        die("stacks");
    struct in_addr ip_a, ip_b;
    inet_pton(AF_INET, "192.0.2.1", &ip_a);
    inet_pton(AF_INET, "192.0.2.2", &ip_b);
    int ia = tern_if_add(w.a, la, NULL), ib = tern_if_add(w.b, lb, NULL);
    if (ia < 0 || ib < 0 || tern_if_addr_add(w.a, ia, ip_a, 24) < 0 ||
        tern_if_addr_add(w.b, ib, ip_b, 24) < 0)
        die("addresses");
    run(&w, 0); /* both stacks at the demo's start time */
    printf("stack A 192.0.2.1/24 and stack B 192.0.2.2/24 on one wire, 1 ms each way "
           "(virtual time; pcap: %s)\n", pcap);

    /* Ping: an ICMP "ping socket", as on Linux. */
    int ping = tern_socket(w.a, AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    struct sockaddr_in to_b = {.sin_family = AF_INET, .sin_addr = ip_b};
    int replies = 0;
    for (int seq = 1; seq <= 3; seq++) {
        uint8_t echo[8 + 32] = {8, 0, 0, 0, 0, 0, 0, (uint8_t)seq};
        memset(echo + 8, 'p', 32);
        uint64_t sent_at = w.now;
        if (tern_sendto(w.a, ping, echo, sizeof(echo), 0, (struct sockaddr *)&to_b,
                        sizeof(to_b)) < 0)
            die("ping send");
        for (int i = 0; i < 500; i++) {
            run(&w, 10 * TERN_NS_PER_MS);
            uint8_t reply[128];
            ssize_t n = tern_recv(w.a, ping, reply, sizeof(reply), 0);
            if (n >= 8 && reply[0] == 0) {
                printf("  ping 192.0.2.2 seq=%d: reply, %zd bytes, time %.3f ms%s\n", seq, n,
                       (double)(w.now - sent_at) / 1e6,
                       seq == 1 ? " (ARP resolution first)" : "");
                replies++;
                break;
            }
        }
    }

    /* UDP: B serves, A asks. */
    int srv = tern_socket(w.b, AF_INET, SOCK_DGRAM, 0);
    int cli = tern_socket(w.a, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in srv_addr = {.sin_family = AF_INET, .sin_port = htons(7),
                                   .sin_addr = ip_b};
    if (srv < 0 || cli < 0 ||
        tern_bind(w.b, srv, (struct sockaddr *)&srv_addr, sizeof(srv_addr)) < 0 ||
        tern_connect(w.a, cli, (struct sockaddr *)&srv_addr, sizeof(srv_addr)) < 0)
        die("udp sockets");
    const char *msg = "hello from stack A";
    if (tern_send(w.a, cli, msg, strlen(msg), 0) < 0)
        die("udp send");
    char buf[256];
    struct sockaddr_in from;
    socklen_t fl = sizeof(from);
    ssize_t n = -1;
    for (int i = 0; i < 50 && n < 0; i++) {
        run(&w, 10 * TERN_NS_PER_MS);
        n = tern_recvfrom(w.b, srv, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &fl);
    }
    if (n < 0)
        die("udp recv at B");
    buf[n] = 0;
    char fromstr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &from.sin_addr, fromstr, sizeof(fromstr));
    printf("  B got \"%s\" from %s:%u; echoing it back\n", buf, fromstr, ntohs(from.sin_port));
    tern_sendto(w.b, srv, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
    n = -1;
    for (int i = 0; i < 50 && n < 0; i++) {
        run(&w, 10 * TERN_NS_PER_MS);
        n = tern_recv(w.a, cli, buf, sizeof(buf) - 1, 0);
    }
    if (n < 0)
        die("udp recv at A");
    buf[n] = 0;
    printf("  A got the echo: \"%s\"\n", buf);
    bool udp_ok = strcmp(buf, msg) == 0;

    /* TCP: B listens, A connects, asks, B answers and both close. */
    int lsn = tern_socket(w.b, AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in web = {.sin_family = AF_INET, .sin_port = htons(80), .sin_addr = ip_b};
    if (lsn < 0 || tern_bind(w.b, lsn, (struct sockaddr *)&web, sizeof(web)) < 0 ||
        tern_listen(w.b, lsn, 8) < 0)
        die("tcp listener");
    int conn = tern_socket(w.a, AF_INET, SOCK_STREAM, 0);
    uint64_t started = w.now;
    tern_connect(w.a, conn, (struct sockaddr *)&web, sizeof(web)); /* EINPROGRESS */
    int srv_conn = -1;
    for (int i = 0; i < 100 && srv_conn < 0; i++) {
        run(&w, 10 * TERN_NS_PER_MS);
        srv_conn = tern_accept(w.b, lsn, NULL, NULL);
    }
    if (srv_conn < 0)
        die("tcp accept");
    printf("  TCP: connected in %.3f ms (SYN, SYN-ACK, ACK)\n", (double)(w.now - started) / 1e6);
    const char *ask = "GET / please", *answer = "200 here you are";
    tern_send(w.a, conn, ask, strlen(ask), 0);
    char tbuf[64] = {0};
    ssize_t got = -1;
    for (int i = 0; i < 100 && got < 0; i++) {
        run(&w, 10 * TERN_NS_PER_MS);
        got = tern_recv(w.b, srv_conn, tbuf, sizeof(tbuf) - 1, 0);
    }
    printf("  TCP: B read \"%s\", answers and closes\n", got > 0 ? tbuf : "");
    tern_send(w.b, srv_conn, answer, strlen(answer), 0);
    tern_close(w.b, srv_conn);
    char abuf[64] = {0};
    size_t have = 0;
    bool eof = false;
    for (int i = 0; i < 100 && !eof; i++) {
        run(&w, 10 * TERN_NS_PER_MS);
        ssize_t n2;
        while ((n2 = tern_recv(w.a, conn, abuf + have, sizeof(abuf) - 1 - have, 0)) > 0)
            have += (size_t)n2;
        eof = n2 == 0;
    }
    printf("  TCP: A read \"%s\" then end of stream; closes\n", abuf);
    tern_close(w.a, conn);
    run(&w, 10 * TERN_NS_PER_MS);
    bool tcp_ok = eof && strcmp(abuf, answer) == 0;

    printf("\nsockets of stack A:\n");
    tern_sockets_dump(w.a, stdout);
    printf("\ncounters of stack A (non-zero):\n");
    tern_counters_dump(w.a, stdout, true);
    printf("\ncounters of stack B (non-zero):\n");
    tern_counters_dump(w.b, stdout, true);

    tern_close(w.a, ping);
    tern_close(w.a, cli);
    tern_close(w.b, srv);
    tern_close(w.b, lsn);
    tern_stack_free(w.a);
    tern_stack_free(w.b);
    tern_link_free(la);
    tern_link_free(lb);
    tern_wire_free(wire);
    bool ok = replies == 3 && udp_ok && tcp_ok;
    printf("\n%s: %d/3 ping replies, UDP echo %s, TCP exchange %s\n", ok ? "OK" : "FAILED",
           replies, udp_ok ? "matched" : "did not match", tcp_ok ? "complete" : "incomplete");
    return ok ? 0 : 1;
}
