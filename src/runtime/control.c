/*
 * The control socket of a started stack (tern_stack_control): a Unix
 * stream socket the runtime thread serves between polls, one command a
 * connection, so that `ternstat` can read the socket table, counters and
 * a connection's events, or start and stop a capture, while traffic runs.
 * Each command takes the stack's lock only as long as the matching public
 * call does; a slow client is bounded by socket timeouts and never holds
 * the lock.
 *
 * Commands (one line): sockets [-e], json, events ID, counters [all],
 * gauges, timers, pcap start FILE, pcap stop, help.
 */
#include <tern/runtime.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "runtime/rt.h"
#include "sock/api_internal.h"

#define CONTROL_LINE_MAX 512

int tern_stack_control(struct tern_stack *s, const char *path)
{
    struct tern_api_guard g = tern_api_enter(s);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (!path || strlen(path) >= sizeof(sun.sun_path))
        return tern_api_fail_why(&g, EINVAL, "the path must be 1..%zu bytes",
                                 sizeof(sun.sun_path) - 1);
    if (!s->rt)
        return tern_api_fail_why(&g, EINVAL,
                                 "the runtime thread serves the control socket: start the stack");
    if (s->control_fd >= 0)
        return tern_api_fail_why(&g, EALREADY, "the control socket is open at %s", s->control_path);
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return tern_api_fail(&g, errno);
    /* Only the owner may look inside (mode 0600 before anyone connects). */
    mode_t old = umask(077);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (rc < 0 || listen(fd, 8) < 0) {
        int err = errno;
        close(fd);
        return tern_api_fail_why(&g, err, "cannot listen at %s", path);
    }
    s->control_fd = fd;
    snprintf(s->control_path, sizeof(s->control_path), "%s", path);
    tern_rt_watch_link(s, fd);
    return tern_api_return(&g, 0);
}

void tern_control_close(struct tern_stack *s)
{
    if (s->control_fd < 0)
        return;
    close(s->control_fd);
    unlink(s->control_path);
    s->control_fd = -1;
}

static void run_command(struct tern_stack *s, char *line, FILE *out)
{
    char *argv[4] = {0};
    int argc = 0;
    for (char *tok = strtok(line, " \t\r\n"); tok && argc < 4; tok = strtok(NULL, " \t\r\n"))
        argv[argc++] = tok;
    const char *cmd = argc ? argv[0] : "sockets";
    if (strcmp(cmd, "sockets") == 0) {
        bool events = argc > 1 && strcmp(argv[1], "-e") == 0;
        struct tern_api_guard g = tern_api_enter(s);
        tern_sockets_dump_locked(s, out, events);
        tern_api_leave(g.s);
    } else if (strcmp(cmd, "json") == 0) {
        tern_sockets_dump_json(s, out);
    } else if (strcmp(cmd, "events") == 0 && argc > 1) {
        if (tern_socket_events_dump(s, strtoull(argv[1], NULL, 10), out) < 0)
            fprintf(out, "error: %s\n", strerror(errno));
    } else if (strcmp(cmd, "counters") == 0) {
        tern_counters_dump(s, out, !(argc > 1 && strcmp(argv[1], "all") == 0));
    } else if (strcmp(cmd, "gauges") == 0) {
        tern_gauges_dump(s, out);
    } else if (strcmp(cmd, "timers") == 0) {
        tern_timers_dump(s, out);
    } else if (strcmp(cmd, "pcap") == 0 && argc > 2 && strcmp(argv[1], "start") == 0) {
        if (tern_capture_start(s, argv[2]) == 0)
            fprintf(out, "capturing to %s\n", argv[2]);
        else
            fprintf(out, "error: %s\n", strerror(errno));
    } else if (strcmp(cmd, "pcap") == 0 && argc > 1 && strcmp(argv[1], "stop") == 0) {
        if (tern_capture_stop(s) == 0)
            fprintf(out, "capture stopped\n");
        else
            fprintf(out, "error: %s\n", strerror(errno));
    } else {
        fprintf(out, "commands: sockets [-e] | json | events ID | counters [all] | gauges | "
                     "timers | pcap start FILE | pcap stop | help\n");
    }
}

void tern_control_serve(struct tern_stack *s, int listen_fd)
{
    /* One client at a time, each bounded in time: read a line, answer,
     * close. A client that dawdles loses its answer, not the stack. */
    for (int n = 0; n < 16; n++) {
        int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            return;
        struct timeval tv = {.tv_sec = 2};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        char line[CONTROL_LINE_MAX];
        size_t have = 0;
        while (have < sizeof(line) - 1) {
            ssize_t r = recv(c, line + have, sizeof(line) - 1 - have, 0);
            if (r <= 0)
                break;
            have += (size_t)r;
            if (memchr(line, '\n', have))
                break;
        }
        line[have] = 0;
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        if (out) {
            run_command(s, line, out);
            fclose(out);
            for (size_t off = 0; off < len;) {
                ssize_t w = send(c, buf + off, len - off, MSG_NOSIGNAL);
                if (w <= 0)
                    break;
                off += (size_t)w;
            }
            free(buf);
        }
        close(c);
    }
}
