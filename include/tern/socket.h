/*
 * The BSD-shaped socket API. Each call takes the stack first; the rest are
 * POSIX's own types, flags and errno values (a failed call returns -1 and
 * sets errno), so a program ports by adding the prefix and the stack.
 *
 * Sockets are handles: non-negative ints that carry a slot and a
 * generation. A closed or stale handle gives EBADF, never someone else's
 * socket (until a slot's generation wraps, after 1023 reuses of that slot;
 * slots are reused in FIFO order to push that far out). Handles are large
 * numbers (>= 1<<21), so they are not mistaken for kernel descriptors.
 *
 * Supported now: AF_INET with SOCK_STREAM (TCP; connect returns
 * EINPROGRESS and completes in later polls, as a non-blocking connect
 * does), SOCK_DGRAM (UDP, protocol 0 or IPPROTO_UDP)
 * and SOCK_DGRAM + IPPROTO_ICMP ("ping sockets", as on Linux: send an echo
 * request header and data, receive the echo reply; the identifier is the
 * socket's bound "port"). SOCK_NONBLOCK may be or'ed into the type.
 *
 * Owned-mode stacks never block: see tern/stack.h.
 */
#ifndef TERN_SOCKET_H
#define TERN_SOCKET_H

#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <tern/common.h>

struct tern_stack;

TERN_API int tern_socket(struct tern_stack *s, int domain, int type, int protocol);
TERN_API int tern_bind(struct tern_stack *s, int fd, const struct sockaddr *addr, socklen_t len);
TERN_API int tern_listen(struct tern_stack *s, int fd, int backlog);
TERN_API int tern_accept(struct tern_stack *s, int fd, struct sockaddr *addr, socklen_t *len);
/* flags: SOCK_NONBLOCK (SOCK_CLOEXEC accepted, meaningless here). */
TERN_API int tern_accept4(struct tern_stack *s, int fd, struct sockaddr *addr, socklen_t *len,
                          int flags);
TERN_API int tern_connect(struct tern_stack *s, int fd, const struct sockaddr *addr,
                          socklen_t len);
TERN_API ssize_t tern_send(struct tern_stack *s, int fd, const void *buf, size_t len, int flags);
TERN_API ssize_t tern_sendto(struct tern_stack *s, int fd, const void *buf, size_t len, int flags,
                             const struct sockaddr *to, socklen_t tolen);
TERN_API ssize_t tern_sendmsg(struct tern_stack *s, int fd, const struct msghdr *msg, int flags);
TERN_API ssize_t tern_recv(struct tern_stack *s, int fd, void *buf, size_t len, int flags);
TERN_API ssize_t tern_recvfrom(struct tern_stack *s, int fd, void *buf, size_t len, int flags,
                               struct sockaddr *from, socklen_t *fromlen);
TERN_API ssize_t tern_recvmsg(struct tern_stack *s, int fd, struct msghdr *msg, int flags);
TERN_API int tern_getsockname(struct tern_stack *s, int fd, struct sockaddr *addr,
                              socklen_t *len);
TERN_API int tern_getpeername(struct tern_stack *s, int fd, struct sockaddr *addr,
                              socklen_t *len);
TERN_API int tern_setsockopt(struct tern_stack *s, int fd, int level, int name, const void *val,
                             socklen_t len);
TERN_API int tern_getsockopt(struct tern_stack *s, int fd, int level, int name, void *val,
                             socklen_t *len);
TERN_API int tern_shutdown(struct tern_stack *s, int fd, int how);
TERN_API int tern_close(struct tern_stack *s, int fd);
/* F_GETFL / F_SETFL with O_NONBLOCK. */
TERN_API int tern_fcntl(struct tern_stack *s, int fd, int cmd, int arg);
/* poll(2) over Tern handles: POLLIN, POLLOUT, POLLERR, POLLHUP, POLLNVAL.
 * An owned-mode stack cannot wait, so timeout is ignored and the call
 * reports what is ready now. */
TERN_API int tern_poll(struct tern_stack *s, struct pollfd *fds, nfds_t nfds, int timeout);

#endif
