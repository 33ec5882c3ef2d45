/* Writes a pcap of two Tern stacks exchanging UDP, for checking the pcap
 * checker itself: `pcapgen clean FILE` records a healthy exchange,
 * `pcapgen corrupt FILE` records frames that an impairment wrapper
 * corrupted after the stack built them, which the checker must reject.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <tern/tern.h>

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "clean") && strcmp(argv[1], "corrupt"))) {
        fprintf(stderr, "usage: %s clean|corrupt FILE\n", argv[0]);
        return 2;
    }
    bool corrupt = strcmp(argv[1], "corrupt") == 0;
    struct tern_wire *wire = tern_wire_new(NULL);
    /* The tee sits inside the impairment: it records the damaged frames. */
    struct tern_link *la = tern_pcap_tee_new(tern_wire_port_new(wire), argv[2]);
    struct tern_impair_config bad = {.corrupt_ppm = 500000};
    if (la && corrupt)
        la = tern_impair_new(la, &bad, NULL, 42);
    struct tern_link *lb = tern_wire_port_new(wire);
    /* Distinct seeds: stacks on one link need distinct MAC addresses. */
    struct tern_stack_config ca, cb;
    tern_stack_config_default(&ca);
    tern_stack_config_default(&cb);
    cb.seed = ca.seed + 1;
    struct tern_stack *a = tern_stack_new(&ca), *b = tern_stack_new(&cb);
    if (!la || !lb || !a || !b) {
        perror("pcapgen");
        return 1;
    }
    struct in_addr ia = {htonl(0xc0000201)}, ib = {htonl(0xc0000202)};
    tern_if_addr_add(a, tern_if_add(a, la, NULL), ia, 24);
    tern_if_addr_add(b, tern_if_add(b, lb, NULL), ib, 24);
    int sa = tern_socket(a, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9), .sin_addr = ib};
    uint64_t now = 1;
    for (int i = 0; i < 50; i++) {
        char msg[64];
        int n = snprintf(msg, sizeof(msg), "datagram %d", i);
        tern_sendto(a, sa, msg, (size_t)n, 0, (struct sockaddr *)&to, sizeof(to));
        for (int r = 0; r < 4; r++) {
            tern_stack_poll(a, now);
            tern_stack_poll(b, now);
        }
        now += 100 * TERN_NS_PER_MS;
    }
    tern_close(a, sa);
    tern_stack_free(a);
    tern_stack_free(b);
    tern_link_free(la);
    tern_link_free(lb);
    tern_wire_free(wire);
    return 0;
}
