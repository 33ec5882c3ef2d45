/* libFuzzer target: one Ethernet frame into a stack that has an address,
 * a bound UDP socket, a ping socket and a TCP listener. Build with
 *   CC=clang cmake -S . -B build-fuzz -DTERN_FUZZ=ON -DTERN_SANITIZE=ON
 *   cmake --build build-fuzz --target fuzz_frame
 *   ./build-fuzz/tests/fuzz_frame -max_total_time=60
 * Each input gets a fresh stack, so runs are independent and exact; the
 * stack is then torn down, which checks nothing leaked. */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include <tern/tern.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tern_wire *wire = tern_wire_new(NULL);
    struct tern_link *port = tern_wire_port_new(wire), *inject = tern_wire_port_new(wire);
    struct tern_stack *s = tern_stack_new(NULL);
    int ifindex = tern_if_add(s, port, NULL);
    struct in_addr me = {htonl(0xc0000201)};
    tern_if_addr_add(s, ifindex, me, 24);
    int u = tern_socket(s, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(7)};
    tern_bind(s, u, (struct sockaddr *)&any, sizeof(any));
    int ping = tern_socket(s, AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    int listener = tern_socket(s, AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in l80 = {.sin_family = AF_INET, .sin_port = htons(80)};
    tern_bind(s, listener, (struct sockaddr *)&l80, sizeof(l80));
    tern_listen(s, listener, 8);
    if (size > 0 && size <= TERN_LINK_MAX_FRAME) {
        struct tern_frame f = {.data = (uint8_t *)data, .len = size, .cap = size};
        tern_link_send(inject, &f, 1, 1);
    }
    tern_stack_poll(s, 1);
    uint8_t buf[65536];
    while (tern_recv(s, u, buf, sizeof(buf), 0) >= 0) {
    }
    /* Let every timer (ARP, reassembly) run out. */
    tern_stack_poll(s, 1 + 120 * TERN_NS_PER_SEC);
    tern_close(s, u);
    tern_close(s, ping);
    tern_close(s, listener);
    tern_stack_free(s);
    tern_link_free(port);
    tern_link_free(inject);
    tern_wire_free(wire);
    return 0;
}
