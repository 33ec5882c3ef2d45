/* Kernel sockets for the comparison: 127.0.0.1 only. */
#ifndef TERN_BENCH_KERNEL_H
#define TERN_BENCH_KERNEL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

/* A TCP listener on 127.0.0.1 at an ephemeral port (so runs by several
 * people at once do not collide); its address in *addr. -1 on error. */
int kernel_listener(struct sockaddr_in *addr, int backlog);

/* Sockets made inside a private network namespace whose loopback has
 * `mtu`: a listener as above and an unconnected client socket. The
 * namespace has no name and no device but lo; it lives as long as its
 * sockets. Without `offload`, lo's TSO and GSO are off, so every packet
 * is within the MTU. Needs CAP_SYS_ADMIN; returns -1 with errno
 * otherwise. */
int kernel_netns_sockets(unsigned mtu, bool offload, int *listener, struct sockaddr_in *addr,
                         int *client);

/* Set SO_LINGER {1, 0}: close sends RST and skips TIME_WAIT. */
int kernel_linger0(int fd);

/* One sysctl file's first line, or "?". */
void kernel_sysctl(const char *path, char *buf, size_t len);

#endif
