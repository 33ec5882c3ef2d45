/*
 * ternstat: ask a running, started Tern stack what it is doing, through
 * the control socket it serves (tern_stack_control), without stopping
 * its traffic.
 *
 *   ternstat SOCKET                     the socket table (like ss -tanei)
 *   ternstat SOCKET sockets -e          ... with each connection's events
 *   ternstat SOCKET events ID           one connection's recent events
 *   ternstat SOCKET json                the table as JSON
 *   ternstat SOCKET counters [all]      counters (nonzero, or all)
 *   ternstat SOCKET gauges | timers
 *   ternstat SOCKET pcap start FILE     capture every frame to FILE
 *   ternstat SOCKET pcap stop
 *
 * Exit status: 0 answered, 1 could not talk to the stack, 2 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: %s SOCKET [sockets [-e] | json | events ID | counters [all] | "
                        "gauges | timers | pcap start FILE | pcap stop]\n",
                argv[0]);
        return 2;
    }
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(argv[1]) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "ternstat: socket path too long\n");
        return 2;
    }
    strcpy(sun.sun_path, argv[1]);
    char cmd[512] = "";
    for (int i = 2; i < argc; i++) {
        if (strlen(cmd) + strlen(argv[i]) + 2 >= sizeof(cmd)) {
            fprintf(stderr, "ternstat: command too long\n");
            return 2;
        }
        if (i > 2)
            strcat(cmd, " ");
        strcat(cmd, argv[i]);
    }
    strcat(cmd, "\n");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        fprintf(stderr, "ternstat: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (send(fd, cmd, strlen(cmd), MSG_NOSIGNAL) != (ssize_t)strlen(cmd)) {
        fprintf(stderr, "ternstat: send: %s\n", strerror(errno));
        return 1;
    }
    char buf[65536];
    ssize_t n;
    size_t total = 0;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
        fwrite(buf, 1, (size_t)n, stdout);
        total += (size_t)n;
    }
    close(fd);
    if (n < 0 || total == 0) {
        fprintf(stderr, "ternstat: no answer (%s)\n", n < 0 ? strerror(errno) : "closed");
        return 1;
    }
    return 0;
}
