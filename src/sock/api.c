/* The BSD-shaped calls (tern/socket.h). Argument checking follows what
 * Linux returns for the same mistakes, so ported programs see the errno
 * they expect. */
#include <tern/socket.h>

#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include "buf/iov.h"
#include "net/ipv4.h"
#include "runtime/events.h"
#include "runtime/rt.h"
#include "sock/api_internal.h"
#include "transport/ping.h"
#include "transport/tcp/tcp.h"
#include "transport/udp.h"
#include "wire/ipv4.h"

#define SOCK_MIN_BUF 2304 /* Linux's SOCK_MIN_RCVBUF */
#define SOCK_MAX_BUF 212992 /* Linux's default rmem_max/wmem_max */
#define ICMP_ECHO_HLEN 8

static struct tern_pcb_table *table_of(struct tern_stack *s, const struct tern_socket *so)
{
    switch (so->kind) {
    case SOCK_KIND_PING: return &s->ping_pcbs;
    case SOCK_KIND_TCP: return &s->tcp_pcbs;
    default: return &s->udp_pcbs;
    }
}

/* Look the handle up or fail the call with EBADF (ECANCELED while a
 * threaded stack is going away). The call may change what the socket is
 * ready for: its waiters hear of it when the call leaves. */
#define GET_SOCK(so, g, fd)                                                    \
    if ((g).s->rt && (g).s->rt->stopping)                                      \
        return tern_api_fail(&(g), ECANCELED);                                 \
    struct tern_socket *so = tern_sock_lookup((g).s, (fd));                    \
    if (!so)                                                                   \
        return tern_api_fail(&(g), EBADF);                                     \
    tern_sock_touch((g).s, so)

/* Whether a call that would wait may: a threaded stack, a blocking
 * socket, no MSG_DONTWAIT. */
static bool may_block(const struct tern_stack *s, const struct tern_socket *so, int flags)
{
    return s->rt && !so->nonblock && !(flags & MSG_DONTWAIT);
}

/* Wait for fd's socket to be touched; the caller looks it up again. */
static int wait_on(struct tern_api_guard *g, struct tern_socket *so, uint64_t deadline)
{
    return tern_api_wait(g, &so, 1, deadline);
}

int tern_socket(struct tern_stack *s, int domain, int type, int protocol)
{
    struct tern_api_guard g = tern_api_enter(s);
    int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    enum tern_sock_kind kind;
    if (domain != AF_INET)
        return tern_api_fail(&g, EAFNOSUPPORT);
    if (base == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP))
        kind = SOCK_KIND_UDP;
    else if (base == SOCK_DGRAM && protocol == IPPROTO_ICMP)
        kind = SOCK_KIND_PING;
    else if (base == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP))
        kind = SOCK_KIND_TCP;
    else if (base == SOCK_DGRAM || base == SOCK_STREAM)
        return tern_api_fail(&g, EPROTONOSUPPORT);
    else
        return tern_api_fail(&g, ESOCKTNOSUPPORT);
    int proto = protocol ? protocol : kind == SOCK_KIND_TCP ? IPPROTO_TCP : IPPROTO_UDP;
    struct tern_socket *so = tern_sock_new(s, kind, base, proto);
    if (!so)
        return tern_api_fail(&g, errno);
    if (kind == SOCK_KIND_TCP) {
        int err = tern_tcp_attach(s, so);
        if (err) {
            tern_sock_release_user(s, so);
            return tern_api_fail(&g, err);
        }
    }
    so->nonblock = (type & SOCK_NONBLOCK) != 0;
    return tern_api_return(&g, so->handle);
}

static int sockaddr_in_get(struct tern_stack *s, const struct sockaddr *sa, socklen_t len,
                           uint32_t *addr, uint16_t *port)
{
    if (!sa) {
        tern_why(s, "the address is NULL");
        return EINVAL;
    }
    if (len < (socklen_t)sizeof(struct sockaddr_in)) {
        tern_why(s, "address length %u is shorter than a sockaddr_in (%zu)", (unsigned)len,
                 sizeof(struct sockaddr_in));
        return EINVAL;
    }
    if (sa->sa_family != AF_INET) {
        tern_why(s, "address family %u is not AF_INET (%u)", (unsigned)sa->sa_family,
                 (unsigned)AF_INET);
        return EAFNOSUPPORT;
    }
    struct sockaddr_in sin;
    memcpy(&sin, sa, sizeof(sin));
    *addr = ntohl(sin.sin_addr.s_addr);
    *port = ntohs(sin.sin_port);
    return 0;
}

static void sockaddr_in_put(struct sockaddr *sa, socklen_t *len, uint32_t addr, uint16_t port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(addr)};
    /* POSIX: truncate to the caller's room, report the full length. */
    if (sa && len) {
        size_t n = *len < sizeof(sin) ? *len : sizeof(sin);
        memcpy(sa, &sin, n);
    }
    if (len)
        *len = sizeof(sin);
}

static bool addr_bindable(struct tern_stack *s, uint32_t addr)
{
    if (addr == 0 || addr == TERN_IPV4_BROADCAST || tern_ipv4_is_multicast(addr) ||
        tern_iface_is_local(s, addr))
        return true;
    for (int i = 0; i < TERN_MAX_IFACES; i++)
        if (s->ifaces[i].used && tern_iface_is_bcast(&s->ifaces[i], addr))
            return true;
    return false;
}

/* Put the socket's PCB into its table at (laddr, lport), taking the
 * protocol's reference. lport 0 picks an ephemeral port. */
static int pcb_bind(struct tern_stack *s, struct tern_socket *so, uint32_t laddr, uint16_t lport,
                    uint32_t faddr, uint16_t fport, bool implicit)
{
    struct tern_pcb_table *t = table_of(s, so);
    struct tern_inpcb *pcb = &so->pcb;
    /* A port connect() picks for TCP may be shared with connections to
     * other peers (tern_pcb_ephemeral); one chosen otherwise is not. */
    bool shared = lport == 0 && faddr != 0 && t->tcp_rules;
    if (lport == 0) {
        lport = tern_pcb_ephemeral(s, t, laddr, faddr, fport);
        /* Out of ports, as Linux: bind(0) and listen say EADDRINUSE, a
         * TCP connect EADDRNOTAVAIL, a datagram socket's implicit bind
         * (connect, sendto) EAGAIN. */
        if (lport == 0) {
            tern_why(s, "no ephemeral port left in %u-%u%s", s->cfg.ephemeral_lo,
                     s->cfg.ephemeral_hi, shared ? " for this peer" : "");
            return shared ? EADDRNOTAVAIL : implicit ? EAGAIN : EADDRINUSE;
        }
    } else if (tern_pcb_conflicts(t, pcb, laddr, lport, pcb->reuseaddr, pcb->reuseport)) {
        tern_why(s, "port %u is held by another %s socket or TIME_WAIT record, and SO_REUSEADDR "
                    "or SO_REUSEPORT is not set on both (a listener shares with nobody)",
                 lport, t->name);
        return EADDRINUSE;
    }
    pcb->laddr = laddr;
    pcb->lport = lport;
    pcb->connect_port = shared;
    if (tern_pcb_insert(s, t, pcb) < 0) {
        pcb->laddr = 0;
        pcb->lport = 0;
        pcb->connect_port = false;
        return ENOMEM;
    }
    tern_sock_take_proto(s, so);
    return 0;
}

/* The protocol lets go: out of the table, then its reference. */
static void pcb_unbind(struct tern_stack *s, struct tern_socket *so)
{
    if (!so->pcb.table)
        return;
    tern_pcb_remove(s, &so->pcb);
    tern_sock_release_proto(s, so);
}

int tern_bind(struct tern_stack *s, int fd, const struct sockaddr *addr, socklen_t len)
{
    struct tern_api_guard g = tern_api_enter(s);
    GET_SOCK(so, g, fd);
    uint32_t laddr;
    uint16_t lport;
    int err = sockaddr_in_get(s, addr, len, &laddr, &lport);
    if (err)
        return tern_api_fail(&g, err);
    if (so->pcb.table)
        return tern_api_fail_why(&g, EINVAL, "socket #%llu is bound already, to port %u",
                                 (unsigned long long)so->id, so->pcb.lport);
    if (!addr_bindable(s, laddr))
        return tern_api_fail_why(&g, EADDRNOTAVAIL, "%u.%u.%u.%u is not an address of this stack",
                                 laddr >> 24, (laddr >> 16) & 255, (laddr >> 8) & 255,
                                 laddr & 255);
    if (so->pcb.bound_addr)
        return tern_api_fail_why(&g, EINVAL, "socket #%llu is bound already, to an address "
                                 "(IP_BIND_ADDRESS_NO_PORT)", (unsigned long long)so->id);
    if (lport == 0 && laddr != 0 && so->bind_no_port) {
        /* The address now, the port when it connects (or listens, or
         * sends), as Linux's IP_BIND_ADDRESS_NO_PORT. bind(0.0.0.0, 0)
         * still takes its port at once: there is no address to keep
         * (Linux leaves even that socket unbound). */
        so->pcb.laddr = laddr;
        so->pcb.bound_addr = true;
        return tern_api_return(&g, 0);
    }
    err = pcb_bind(s, so, laddr, lport, 0, 0, false);
    if (err)
        return tern_api_fail(&g, err);
    so->pcb.bound_addr = laddr != 0;
    so->pcb.bound_port = true;
    return tern_api_return(&g, 0);
}

static bool is_broadcast_dst(struct tern_stack *s, uint32_t dst, int ifindex)
{
    struct tern_iface *ifp = tern_iface_get(s, ifindex);
    return dst == TERN_IPV4_BROADCAST || (ifp && tern_iface_is_bcast(ifp, dst));
}

/* Route towards dst; fills the source address and interface. */
static int route_for(struct tern_stack *s, struct tern_socket *so, uint32_t *dst, uint32_t *src,
                     int *ifindex)
{
    if (*dst == 0)
        *dst = tern_ipv4_this_host(s); /* 0.0.0.0 means this host, as on Linux */
    *src = so->pcb.laddr;
    if (*src == TERN_IPV4_BROADCAST || tern_ipv4_is_multicast(*src))
        *src = 0; /* bound to a group address: send from the interface's */
    int rc = tern_ipv4_route_src(s, *dst, src, ifindex);
    if (rc < 0) {
        tern_why(s, "no route to %u.%u.%u.%u (or no source address for it)", *dst >> 24,
                 (*dst >> 16) & 255, (*dst >> 8) & 255, *dst & 255);
        return -rc;
    }
    if (is_broadcast_dst(s, *dst, *ifindex) && !so->broadcast) {
        tern_why(s, "the destination is a broadcast address and SO_BROADCAST is off");
        return EACCES; /* as Linux */
    }
    return 0;
}

static void disconnect(struct tern_stack *s, struct tern_socket *so)
{
    struct tern_inpcb *pcb = &so->pcb;
    pcb->faddr = 0;
    pcb->fport = 0;
    pcb->connected = false;
    /* Linux's udp_disconnect: what connect chose implicitly goes again. */
    if (!pcb->bound_addr)
        pcb->laddr = 0;
    if (!pcb->bound_port) {
        pcb_unbind(s, so);
        pcb->lport = 0;
    } else if (pcb->table) {
        tern_pcb_rehash(s, pcb);
    }
}

int tern_connect(struct tern_stack *s, int fd, const struct sockaddr *addr, socklen_t len)
{
    struct tern_api_guard g = tern_api_enter(s);
    GET_SOCK(so, g, fd);
    if (so->kind == SOCK_KIND_TCP) {
        /* Linux's inet_stream_connect: EALREADY while the handshake
         * runs; 0 once after it completes, EISCONN after that; after a
         * failure the error once, then a new attempt may start. */
        struct tern_tcpcb *tp = so->tcb;
        enum tern_tcp_state st = tp->state;
        if (st == TCPS_SYN_SENT || st == TCPS_SYN_RECEIVED)
            return tern_api_fail_why(&g, EALREADY, "the handshake of socket #%llu is under way",
                                     (unsigned long long)so->id);
        if (st != TCPS_CLOSED && st != TCPS_LISTEN && tp->opened && !tp->connect_reported &&
            !tp->listener) {
            tp->connect_reported = true;
            return tern_api_return(&g, 0);
        }
        if (st != TCPS_CLOSED)
            return tern_api_fail_why(&g, EISCONN, "socket #%llu is %s", (unsigned long long)so->id,
                                     tern_tcp_state_name(st));
        if (tp->opened) {
            if (so->so_error) {
                int e = so->so_error;
                so->so_error = 0;
                return tern_api_fail(&g, e);
            }
            /* A fresh connection block for the new attempt. */
            bool nodelay = tp->nodelay, linger_zero = tp->linger_zero;
            tern_tcp_detach(s, so);
            if (tern_tcp_attach(s, so) != 0)
                return tern_api_fail(&g, ENOMEM);
            so->tcb->nodelay = nodelay;
            so->tcb->linger_zero = linger_zero;
            struct tern_inpcb *pcb = &so->pcb;
            pcb->connected = false;
            pcb->faddr = 0;
            pcb->fport = 0;
            if (!pcb->bound_addr)
                pcb->laddr = 0;
            if (!pcb->bound_port)
                pcb->lport = 0;
            so->shut_rd = so->shut_wr = false;
        }
    }
    if (addr && len >= (socklen_t)sizeof(sa_family_t) && addr->sa_family == AF_UNSPEC) {
        if (so->kind == SOCK_KIND_TCP)
            return tern_api_fail_why(&g, EAFNOSUPPORT, "AF_UNSPEC cannot disconnect a stream");
        disconnect(s, so);
        return tern_api_return(&g, 0);
    }
    uint32_t faddr, src;
    uint16_t fport;
    int ifindex = 0;
    int err = sockaddr_in_get(s, addr, len, &faddr, &fport);
    if (err)
        return tern_api_fail(&g, err);
    if (so->kind == SOCK_KIND_PING)
        fport = 0;
    if (so->kind == SOCK_KIND_TCP && fport == 0)
        return tern_api_fail_why(&g, ECONNREFUSED, "port 0: nothing listens there");
    err = route_for(s, so, &faddr, &src, &ifindex);
    if (err)
        return tern_api_fail(&g, so->kind == SOCK_KIND_TCP && err == EACCES ? ENETUNREACH : err);
    struct tern_inpcb *pcb = &so->pcb;
    if (!pcb->table) {
        err = pcb_bind(s, so, pcb->bound_addr ? pcb->laddr : src, 0, faddr, fport, true);
        if (err)
            return tern_api_fail(&g, err);
    } else if (!pcb->bound_addr) {
        pcb->laddr = src;
    }
    if (so->kind == SOCK_KIND_TCP &&
        tern_pcb_lookup_conn(s, pcb->table, pcb->laddr, pcb->lport, faddr, fport))
        return tern_api_fail_why(&g, EADDRNOTAVAIL,
                                 "local port %u to that peer is taken by a connection or a "
                                 "TIME_WAIT record", pcb->lport);
    pcb->faddr = faddr;
    pcb->fport = fport;
    pcb->connected = true;
    if (tern_pcb_rehash(s, pcb) < 0)
        return tern_api_fail(&g, ENOMEM);
    if (so->kind == SOCK_KIND_TCP) {
        tern_tcp_connect(s, so);
        /* An owned stack cannot wait for the handshake; a threaded one
         * waits on a blocking socket, up to SO_SNDTIMEO (then
         * EINPROGRESS, as Linux). */
        if (!may_block(s, so, 0))
            return tern_api_fail(&g, EINPROGRESS);
        uint64_t deadline = tern_rt_deadline_ns(tern_sock_sndtimeo(so));
        for (;;) {
            err = wait_on(&g, so, deadline);
            so = tern_sock_lookup(s, fd);
            if (!so)
                return tern_api_fail(&g, EBADF);
            if (err)
                return tern_api_fail(&g, err == ETIMEDOUT ? EINPROGRESS : err);
            enum tern_tcp_state st = so->tcb->state;
            if (st == TCPS_SYN_SENT || st == TCPS_SYN_RECEIVED)
                continue;
            if (st == TCPS_CLOSED) {
                int e = so->so_error ? so->so_error : ECONNREFUSED;
                so->so_error = 0;
                return tern_api_fail(&g, e);
            }
            so->tcb->connect_reported = true;
            return tern_api_return(&g, 0);
        }
    }
    return tern_api_return(&g, 0);
}

int tern_listen(struct tern_stack *s, int fd, int backlog)
{
    struct tern_api_guard g = tern_api_enter(s);
    GET_SOCK(so, g, fd);
    if (so->kind != SOCK_KIND_TCP)
        return tern_api_fail_why(&g, EOPNOTSUPP, "only a stream socket listens");
    struct tern_inpcb *pcb = &so->pcb;
    if (so->tcb->state != TCPS_CLOSED && so->tcb->state != TCPS_LISTEN)
        return tern_api_fail_why(&g, EINVAL, "socket #%llu is %s, not closed",
                                 (unsigned long long)so->id, tern_tcp_state_name(so->tcb->state));
    if (so->tcb->state == TCPS_LISTEN) {
        tern_tcp_listen(s, so, backlog); /* a new backlog, as Linux */
        return tern_api_return(&g, 0);
    }
    if (pcb->connected)
        return tern_api_fail_why(&g, EINVAL, "socket #%llu has a peer", (unsigned long long)so->id);
    if (!pcb->table) {
        /* Linux binds on listen (to the address bind() kept, if any). */
        int err = pcb_bind(s, so, pcb->bound_addr ? pcb->laddr : 0, 0, 0, 0, false);
        if (err)
            return tern_api_fail(&g, err);
    }
    /* SO_REUSEADDR shares a port with connections, never with another
     * listener (Linux's inet_csk_get_port at listen time). */
    pcb->listening = true;
    if (tern_pcb_conflicts(pcb->table, pcb, pcb->laddr, pcb->lport, pcb->reuseaddr,
                           pcb->reuseport)) {
        pcb->listening = false;
        return tern_api_fail_why(&g, EADDRINUSE, "another socket listens on port %u",
                                 pcb->lport);
    }
    /* A TCP socket joins its reuseport group only now that it listens
     * (pcb.h): re-file it. */
    if (pcb->reuseport && tern_pcb_rehash(s, pcb) < 0) {
        pcb->listening = false;
        tern_pcb_rehash(s, pcb); /* back as it was: no group to join, cannot fail */
        return tern_api_fail(&g, ENOMEM);
    }
    int err = tern_tcp_listen(s, so, backlog);
    if (err) {
        pcb->listening = false;
        if (pcb->reuseport)
            tern_pcb_rehash(s, pcb);
        return tern_api_fail(&g, err);
    }
    return tern_api_return(&g, 0);
}

int tern_accept4(struct tern_stack *s, int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    struct tern_api_guard g = tern_api_enter(s);
    GET_SOCK(so, g, fd);
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
        return tern_api_fail_why(&g, EINVAL, "flags %#x: only SOCK_NONBLOCK and SOCK_CLOEXEC",
                                 (unsigned)flags);
    if (so->kind != SOCK_KIND_TCP)
        return tern_api_fail_why(&g, EOPNOTSUPP, "only a stream socket accepts");
    if (addr && !len)
        return tern_api_fail_why(&g, EFAULT, "an address buffer without its length");
    struct tern_socket *child;
    uint64_t deadline = tern_rt_deadline_ns(tern_sock_rcvtimeo(so));
    while (!(child = tern_tcp_accept(s, so))) {
        /* Threaded and blocking: wait for a connection, up to
         * SO_RCVTIMEO; a listener shut or closed meanwhile ends it. */
        int err = errno;
        if (err != EAGAIN || !may_block(s, so, 0))
            return tern_api_fail(&g, err);
        err = wait_on(&g, so, deadline);
        so = tern_sock_lookup(s, fd);
        if (!so)
            return tern_api_fail(&g, EBADF);
        if (err)
            return tern_api_fail(&g, err == ETIMEDOUT ? EAGAIN : err);
    }
    child->nonblock = (flags & SOCK_NONBLOCK) != 0;
    if (addr)
        sockaddr_in_put(addr, len, child->pcb.faddr, child->pcb.fport);
    return tern_api_return(&g, child->handle);
}

int tern_accept(struct tern_stack *s, int fd, struct sockaddr *addr, socklen_t *len)
{
    return tern_accept4(s, fd, addr, len, 0);
}

static ssize_t sock_sendmsg(struct tern_api_guard *g, struct tern_socket *so,
                            const struct msghdr *msg, int flags)
{
    struct tern_stack *s = g->s;
    if (flags & MSG_OOB)
        return tern_api_fail_why(g, EOPNOTSUPP, "MSG_OOB: no urgent data in Tern");
    if (msg->msg_iovlen > IOV_MAX || (msg->msg_iovlen && !msg->msg_iov))
        return tern_api_fail_why(g, msg->msg_iovlen > IOV_MAX ? EMSGSIZE : EFAULT,
                                 "msg_iovlen %zu with msg_iov %p (at most %d)",
                                 (size_t)msg->msg_iovlen, (void *)msg->msg_iov, IOV_MAX);
    if (so->kind == SOCK_KIND_TCP) {
        /* A stream ignores a destination address (as Linux, when
         * connected) and takes what fits in the send buffer; a blocking
         * send in a threaded stack waits for room until all is taken, up
         * to SO_SNDTIMEO, and then reports what it sent. */
        size_t total = 0;
        for (size_t i = 0; i < msg->msg_iovlen; i++)
            total += msg->msg_iov[i].iov_len;
        long r = tern_tcp_send(s, so, msg->msg_iov, msg->msg_iovlen, total);
        if (!may_block(s, so, flags) || (r >= 0 && (size_t)r == total) || (r < 0 && r != -EAGAIN))
            return r < 0 ? tern_api_fail(g, (int)-r) : tern_api_return_sz(g, r);
        size_t done = r > 0 ? (size_t)r : 0;
        int fd = so->handle;
        uint64_t deadline = tern_rt_deadline_ns(tern_sock_sndtimeo(so));
        while (done < total) {
            int err = wait_on(g, so, deadline);
            so = tern_sock_lookup(s, fd);
            if (!err && !so)
                err = EBADF;
            if (!err) {
                size_t skip = done, i = 0;
                while (skip >= msg->msg_iov[i].iov_len)
                    skip -= msg->msg_iov[i++].iov_len;
                struct iovec rest = {.iov_base = (char *)msg->msg_iov[i].iov_base + skip,
                                     .iov_len = msg->msg_iov[i].iov_len - skip};
                r = tern_tcp_send(s, so, &rest, 1, rest.iov_len);
                if (r > 0)
                    done += (size_t)r;
                else if (r < 0 && r != -EAGAIN)
                    err = (int)-r;
            }
            if (err) {
                if (done)
                    break;
                return tern_api_fail(g, err == ETIMEDOUT ? EAGAIN : err);
            }
        }
        return tern_api_return_sz(g, (ssize_t)done);
    }
    if (so->so_error) {
        int err = so->so_error;
        so->so_error = 0;
        return tern_api_fail(g, err);
    }
    if (so->shut_wr)
        return tern_api_fail(g, EPIPE); /* no SIGPIPE: a library sends no signals */
    size_t len = 0;
    for (size_t i = 0; i < msg->msg_iovlen; i++) {
        if (msg->msg_iov[i].iov_len > SIZE_MAX - len)
            return tern_api_fail_why(g, EINVAL, "the iovec lengths overflow");
        len += msg->msg_iov[i].iov_len;
    }
    uint32_t dst;
    uint16_t dport;
    if (msg->msg_name) {
        int err = sockaddr_in_get(s, msg->msg_name, msg->msg_namelen, &dst, &dport);
        if (err)
            return tern_api_fail(g, err);
        if (so->kind == SOCK_KIND_UDP && dport == 0)
            return tern_api_fail_why(g, EINVAL, "destination port 0");
    } else if (so->pcb.connected) {
        dst = so->pcb.faddr;
        dport = so->pcb.fport;
    } else {
        return tern_api_fail_why(g, EDESTADDRREQ, "no destination and socket #%llu has no peer",
                                 (unsigned long long)so->id);
    }
    if (so->kind == SOCK_KIND_UDP && len > TERN_UDP_MAX_PAYLOAD)
        return tern_api_fail_why(g, EMSGSIZE, "%zu bytes: a UDP datagram holds at most %u", len,
                                 (unsigned)TERN_UDP_MAX_PAYLOAD);
    if (so->kind == SOCK_KIND_PING) {
        /* Linux's ping_sendmsg: an echo request header is required. */
        uint8_t hdr[ICMP_ECHO_HLEN];
        if (len < ICMP_ECHO_HLEN || len > 65535 - 20)
            return tern_api_fail_why(g, len < ICMP_ECHO_HLEN ? EINVAL : EMSGSIZE,
                                     "%zu bytes: an echo request is 8 to %u bytes", len,
                                     65535u - 20u);
        tern_iov_gather(hdr, msg->msg_iov, msg->msg_iovlen, sizeof(hdr));
        if (hdr[0] != 8 || hdr[1] != 0)
            return tern_api_fail_why(g, EINVAL, "type %u code %u: not an echo request (8, 0)", hdr[0], hdr[1]);
    }
    uint32_t src;
    int ifindex = 0;
    int err = route_for(s, so, &dst, &src, &ifindex);
    if (err)
        return tern_api_fail(g, err);
    if (!so->pcb.table) {
        /* autobind, as on Linux (to the address bind() kept, if any) */
        err = pcb_bind(s, so, so->pcb.bound_addr ? so->pcb.laddr : 0, 0, 0, 0, true);
        if (err)
            return tern_api_fail(g, err);
    }
    int rc = so->kind == SOCK_KIND_PING
                 ? tern_ping_output(s, so, msg->msg_iov, msg->msg_iovlen, len, src, dst, ifindex)
                 : tern_udp_output(s, so, msg->msg_iov, msg->msg_iovlen, len, src, dst, dport,
                                   ifindex);
    /* A datagram lost later (no ARP answer) is lost silently, as UDP is;
     * only what fails now is reported. */
    if (rc < 0)
        return tern_api_fail(g, -rc);
    return tern_api_return_sz(g, (ssize_t)len);
}

ssize_t tern_sendmsg(struct tern_stack *s, int fd, const struct msghdr *msg, int flags)
{
    struct tern_api_guard g = tern_api_enter(s);
    GET_SOCK(so, g, fd);
    if (!msg)
        return tern_api_fail(&g, EFAULT);
    return sock_sendmsg(&g, so, msg, flags);
}

ssize_t tern_sendto(struct tern_stack *s, int fd, const void *buf, size_t len, int flags,
                    const struct sockaddr *to, socklen_t tolen)
{
    struct tern_api_guard g = tern_api_enter(s);
    GET_SOCK(so, g, fd);
    if (!buf && len)
        return tern_api_fail(&g, EFAULT);
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    struct msghdr msg = {.msg_name = (void *)to, .msg_namelen = to ? tolen : 0,
                         .msg_iov = &iov, .msg_iovlen = 1};
    return sock_sendmsg(&g, so, &msg, flags);
}

ssize_t tern_send(struct tern_stack *s, int fd, const void *buf, size_t len, int flags)
{
    return tern_sendto(s, fd, buf, len, flags, NULL, 0);
}

/* One attempt: bytes, or -errno. */
static ssize_t recvmsg_once(struct tern_stack *s, struct tern_socket *so, struct msghdr *msg,
                            int flags)
{
    if (flags & MSG_OOB)
        return -EOPNOTSUPP;
    if (flags & MSG_ERRQUEUE)
        return -EAGAIN; /* no error queue (IP_RECVERR) yet */
    if (msg->msg_iovlen > IOV_MAX || (msg->msg_iovlen && !msg->msg_iov))
        return -(msg->msg_iovlen > IOV_MAX ? EMSGSIZE : EFAULT);
    if (so->kind == SOCK_KIND_TCP) {
        size_t room = 0;
        for (size_t i = 0; i < msg->msg_iovlen; i++)
            room += msg->msg_iov[i].iov_len;
        long r = tern_tcp_recv(s, so, msg->msg_iov, msg->msg_iovlen, room, flags);
        if (r < 0)
            return r;
        msg->msg_namelen = 0; /* a stream has no per-read sender */
        msg->msg_controllen = 0;
        msg->msg_flags = 0;
        return r;
    }
    if (so->so_error) {
        int err = so->so_error;
        so->so_error = 0;
        return -err;
    }
    struct tern_sock_dgram *dg = tern_sock_dg(so);
    if (tern_list_empty(&dg->rcvq))
        return so->shut_rd ? 0 : -EAGAIN;
    struct tern_pkt *p = tern_pkt_of(dg->rcvq.next);
    size_t room = 0;
    for (size_t i = 0; i < msg->msg_iovlen; i++)
        room += msg->msg_iov[i].iov_len;
    size_t copied = tern_iov_scatter(msg->msg_iov, msg->msg_iovlen, tern_pkt_data(p),
                                     p->len < room ? p->len : room);
    msg->msg_flags = copied < p->len ? MSG_TRUNC : 0;
    if (msg->msg_name) {
        socklen_t nl = msg->msg_namelen;
        sockaddr_in_put(msg->msg_name, &nl, p->ip_src.s_addr, p->src_port);
        msg->msg_namelen = nl;
    } else {
        msg->msg_namelen = 0;
    }
    msg->msg_controllen = 0;
    /* MSG_TRUNC asks for the datagram's real length (Linux). */
    ssize_t ret = (flags & MSG_TRUNC) ? (ssize_t)p->len : (ssize_t)copied;
    if (!(flags & MSG_PEEK))
        tern_pkt_free_take(s, tern_sock_rcvq_pop(so));
    return ret;
}

/* recvmsg with waiting: a blocking socket of a threaded stack waits for
 * data, up to SO_RCVTIMEO; with MSG_WAITALL a stream waits until the
 * whole request is filled, the stream ends or an error comes, and then
 * reports what it has (POSIX). */
static ssize_t sock_recvmsg(struct tern_api_guard *g, int fd, struct tern_socket *so,
                            struct msghdr *msg, int flags)
{
    struct tern_stack *s = g->s;
    bool block = may_block(s, so, flags);
    bool waitall = block && (flags & MSG_WAITALL) && so->kind == SOCK_KIND_TCP &&
                   !(flags & MSG_PEEK);
    size_t room = 0;
    for (size_t i = 0; waitall && i < msg->msg_iovlen; i++)
        room += msg->msg_iov[i].iov_len;
    uint64_t deadline = block ? tern_rt_deadline_ns(tern_sock_rcvtimeo(so)) : 0;
    size_t done = 0;
    for (;;) {
        ssize_t r;
        if (!waitall) {
            r = recvmsg_once(s, so, msg, flags);
        } else {
            /* Fill what is left of the caller's buffers. */
            r = 0;
            if (done < room) {
                size_t skip = done, i = 0;
                while (skip >= msg->msg_iov[i].iov_len)
                    skip -= msg->msg_iov[i++].iov_len;
                struct iovec rest = {.iov_base = (char *)msg->msg_iov[i].iov_base + skip,
                                     .iov_len = msg->msg_iov[i].iov_len - skip};
                struct msghdr m = {.msg_iov = &rest, .msg_iovlen = 1};
                r = recvmsg_once(s, so, &m, flags & ~MSG_WAITALL);
            }
            if (r > 0) {
                done += (size_t)r;
                if (done < room)
                    continue;
            }
            if (r >= 0 || (done && r != -EAGAIN)) {
                msg->msg_namelen = 0;
                msg->msg_controllen = 0;
                msg->msg_flags = 0;
                return tern_api_return_sz(g, (ssize_t)done);
            }
        }
        if (r >= 0)
            return tern_api_return_sz(g, r);
        if (r != -EAGAIN || !block)
            return tern_api_fail(g, (int)-r);
        int err = wait_on(g, so, deadline);
        so = tern_sock_lookup(s, fd);
        if (!err && !so)
            err = EBADF;
        if (err) {
            if (done)
                return tern_api_return_sz(g, (ssize_t)done);
            return tern_api_fail(g, err == ETIMEDOUT ? EAGAIN : err);
        }
    }
}



ssize_t tern_recvmsg(struct tern_stack *s, int fd, struct msghdr *msg, int flags)
{
    struct tern_api_guard g = tern_api_enter(s);
    GET_SOCK(so, g, fd);
    if (!msg)
        return tern_api_fail(&g, EFAULT);
    return sock_recvmsg(&g, fd, so, msg, flags);
}

ssize_t tern_recvfrom(struct tern_stack *s, int fd, void *buf, size_t len, int flags,
                      struct sockaddr *from, socklen_t *fromlen)
{
    struct tern_api_guard g = tern_api_enter(s);
    GET_SOCK(so, g, fd);
    if (!buf && len)
        return tern_api_fail(&g, EFAULT);
    if (from && !fromlen)
        return tern_api_fail(&g, EFAULT);
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr msg = {.msg_name = from, .msg_namelen = from ? *fromlen : 0,
                         .msg_iov = &iov, .msg_iovlen = 1};
    ssize_t r = sock_recvmsg(&g, fd, so, &msg, flags);
    if (r >= 0 && from)
        *fromlen = msg.msg_namelen;
    return r;
}

ssize_t tern_recv(struct tern_stack *s, int fd, void *buf, size_t len, int flags)
{
    return tern_recvfrom(s, fd, buf, len, flags, NULL, NULL);
}

int tern_getsockname(struct tern_stack *s, int fd, struct sockaddr *addr, socklen_t *len)
{
    struct tern_api_guard g = tern_api_enter(s);
    GET_SOCK(so, g, fd);
    if (!addr || !len)
        return tern_api_fail(&g, EFAULT);
    sockaddr_in_put(addr, len, so->pcb.laddr, so->pcb.lport);
    return tern_api_return(&g, 0);
}

int tern_getpeername(struct tern_stack *s, int fd, struct sockaddr *addr, socklen_t *len)
{
    struct tern_api_guard g = tern_api_enter(s);
    GET_SOCK(so, g, fd);
    if (!addr || !len)
        return tern_api_fail(&g, EFAULT);
    if (!so->pcb.connected)
        return tern_api_fail(&g, ENOTCONN);
    sockaddr_in_put(addr, len, so->pcb.faddr, so->pcb.fport);
    return tern_api_return(&g, 0);
}

static uint32_t clamp_buf(int v)
{
    /* Linux doubles the request (its accounting counts overhead) within
     * [SOCK_MIN_BUF, 2 * max]. */
    uint64_t req = (unsigned)v; /* Linux reads it unsigned: -1 is huge */
    if (req > SOCK_MAX_BUF)
        req = SOCK_MAX_BUF;
    req *= 2;
    return req < SOCK_MIN_BUF ? SOCK_MIN_BUF : (uint32_t)req;
}

int tern_setsockopt(struct tern_stack *s, int fd, int level, int name, const void *val,
                    socklen_t len)
{
    struct tern_api_guard g = tern_api_enter(s);
    GET_SOCK(so, g, fd);
    int v;
    if (!val)
        return tern_api_fail(&g, EFAULT);
    if (level == IPPROTO_TCP && name == TCP_CONGESTION && so->kind == SOCK_KIND_TCP) {
        /* A name, not an int: Linux's "reno" or "cubic". */
        char cc_name[16];
        size_t n = len < sizeof(cc_name) - 1 ? len : sizeof(cc_name) - 1;
        memcpy(cc_name, val, n);
        cc_name[n] = '\0';
        int cc = tern_tcp_cc_by_name(cc_name);
        if (cc < 0)
            return tern_api_fail(&g, ENOENT); /* Linux's answer for an unknown name */
        if (cc != so->tcb->cc) {
            so->tcb->cc = (uint8_t)cc;
            TERN_TCP_CC(s, so->tcb)->init(so->tcb, s->now);
        }
        return tern_api_return(&g, 0);
    }
    if (len < (socklen_t)sizeof(int))
        return tern_api_fail_why(&g, EINVAL, "option length %u is shorter than an int", (unsigned)len);
    memcpy(&v, val, sizeof(v));
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_REUSEADDR:
            so->pcb.reuseaddr = v != 0;
            break;
        case SO_REUSEPORT:
            so->pcb.reuseport = v != 0;
            break;
        case SO_BROADCAST:
            so->broadcast = v != 0;
            break;
        case SO_RCVBUF:
            so->rcvbuf = clamp_buf(v);
            so->rcvbuf_set = true; /* as Linux's SOCK_RCVBUF_LOCK */
            if (so->tcb) {
                tern_ring_set_limit(&so->tcb->rcv, so->rcvbuf);
                if (so->tcb->ooo)
                    tern_tcp_reass_set_limit(so->tcb->ooo, tern_tcp_ooo_limit(so->rcvbuf));
            }
            break;
        case SO_SNDBUF:
            so->sndbuf = clamp_buf(v);
            so->sndbuf_set = true;
            if (so->tcb)
                tern_ring_set_limit(&so->tcb->snd, so->sndbuf);
            break;
        case SO_KEEPALIVE:
            if (!so->tcb)
                return tern_api_fail_why(&g, ENOPROTOOPT, "level %d option %d is not supported for this socket", level, name);
            so->tcb->keepalive_on = v != 0;
            if (!so->tcb->last_rx)
                so->tcb->last_rx = s->now;
            tern_tcp_keepalive_arm(s, so->tcb);
            break;
        case SO_LINGER: {
            struct linger l;
            if (len < (socklen_t)sizeof(l) || so->kind != SOCK_KIND_TCP)
                return tern_api_fail(&g, so->kind != SOCK_KIND_TCP ? ENOPROTOOPT : EINVAL);
            memcpy(&l, val, sizeof(l));
            /* The abortive form resets on close; a time makes a blocking
             * close in a threaded stack wait (an owned stack never does). */
            so->tcb->linger_zero = l.l_onoff && l.l_linger == 0;
            so->linger_on = l.l_onoff != 0;
            so->linger_s = l.l_linger > 0 ? (uint32_t)l.l_linger : 0;
            break;
        }
        case SO_RCVTIMEO:
        case SO_SNDTIMEO: {
            struct timeval tv;
            if (len < (socklen_t)sizeof(tv))
                return tern_api_fail_why(&g, EINVAL, "option length %u is shorter than a struct timeval", (unsigned)len);
            memcpy(&tv, val, sizeof(tv));
            if (tv.tv_usec < 0 || tv.tv_usec >= 1000000)
                return tern_api_fail(&g, EDOM); /* Linux's answer */
            uint64_t ns = tv.tv_sec < 0 ? 0
                                        : (uint64_t)tv.tv_sec * TERN_NS_PER_SEC +
                                              (uint64_t)tv.tv_usec * 1000u;
            struct tern_sock_ext *x = tern_sock_ext(so);
            if (!x)
                return tern_api_fail(&g, ENOMEM);
            if (name == SO_RCVTIMEO)
                x->rcvtimeo_ns = ns;
            else
                x->sndtimeo_ns = ns;
            break;
        }
        default:
            return tern_api_fail_why(&g, ENOPROTOOPT, "level %d option %d is not supported for this socket", level, name);
        }
    } else if (level == IPPROTO_TCP && so->kind == SOCK_KIND_TCP) {
        switch (name) {
        case TCP_NODELAY:
            so->tcb->nodelay = v != 0;
            if (v)
                tern_tcp_output(s, so->tcb);
            break;
        case TCP_KEEPIDLE:
        case TCP_KEEPINTVL:
            if (v < 1 || v > 32767) /* Linux's MAX_TCP_KEEPIDLE/INTVL */
                return tern_api_fail_why(&g, EINVAL, "%d s is outside 1..32767", v);
            if (name == TCP_KEEPIDLE)
                so->tcb->keep_idle_s = (uint16_t)v;
            else
                so->tcb->keep_intvl_s = (uint16_t)v;
            tern_tcp_timer_stop(so->tcb, TERN_TCPT_KEEPALIVE); /* re-armed with the new time */
            tern_tcp_keepalive_arm(s, so->tcb);
            break;
        case TCP_USER_TIMEOUT:
            if (v < 0)
                return tern_api_fail_why(&g, EINVAL, "a negative timeout, %d ms", v);
            so->tcb->user_timeout_ms = (uint32_t)v;
            break;
        case TCP_KEEPCNT:
            if (v < 1 || v > 127)
                return tern_api_fail_why(&g, EINVAL, "%d probes is outside 1..127", v);
            so->tcb->keep_cnt = (uint8_t)v;
            break;
        case TCP_MAXSEG:
            /* A cap on the MSS we announce and send, read when the
             * connection opens; Linux's bounds (0 = no cap). */
            if (v != 0 && (v < 88 || v > 32767))
                return tern_api_fail_why(&g, EINVAL, "MSS %d is outside 88..32767 (0 clears it)", v);
            so->tcb->user_mss = (uint16_t)v;
            break;
        default:
            return tern_api_fail_why(&g, ENOPROTOOPT, "level %d option %d is not supported for this socket", level, name);
        }
    } else if (level == IPPROTO_IP) {
        switch (name) {
        case IP_TTL:
            if (v == -1)
                v = s->cfg.ip_default_ttl;
            if (v < 1 || v > 255)
                return tern_api_fail_why(&g, EINVAL, "TTL %d is outside 1..255 (-1 restores the default)", v);
            so->ttl = (uint8_t)v;
            break;
        case IP_TOS:
            so->tos = (uint8_t)v;
            break;
        case IP_BIND_ADDRESS_NO_PORT:
            so->bind_no_port = v != 0;
            break;
        default:
            return tern_api_fail_why(&g, ENOPROTOOPT, "level %d option %d is not supported for this socket", level, name);
        }
    } else {
        return tern_api_fail_why(&g, ENOPROTOOPT, "level %d option %d is not supported for this socket", level, name);
    }
    return tern_api_return(&g, 0);
}

int tern_getsockopt(struct tern_stack *s, int fd, int level, int name, void *val, socklen_t *len)
{
    struct tern_api_guard g = tern_api_enter(s);
    GET_SOCK(so, g, fd);
    int v;
    if (!val || !len)
        return tern_api_fail(&g, EFAULT);
    if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO || name == SO_LINGER)) {
        /* Structures, not ints: truncated to the caller's room (Linux). */
        union {
            struct timeval tv;
            struct linger l;
        } u = {0};
        size_t n;
        if (name == SO_LINGER) {
            u.l.l_onoff = so->linger_on || (so->tcb && so->tcb->linger_zero);
            u.l.l_linger = (int)so->linger_s;
            n = sizeof(u.l);
        } else {
            uint64_t ns = name == SO_RCVTIMEO ? tern_sock_rcvtimeo(so) : tern_sock_sndtimeo(so);
            u.tv.tv_sec = (time_t)(ns / TERN_NS_PER_SEC);
            u.tv.tv_usec = (suseconds_t)(ns % TERN_NS_PER_SEC / 1000);
            n = sizeof(u.tv);
        }
        if (n > *len)
            n = *len;
        memcpy(val, &u, n);
        *len = (socklen_t)n;
        return tern_api_return(&g, 0);
    }
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_REUSEADDR: v = so->pcb.reuseaddr; break;
        case SO_REUSEPORT: v = so->pcb.reuseport; break;
        case SO_BROADCAST: v = so->broadcast; break;
        case SO_RCVBUF: v = (int)so->rcvbuf; break;
        case SO_SNDBUF: v = (int)so->sndbuf; break;
        case SO_TYPE: v = so->type; break;
        case SO_PROTOCOL: v = so->protocol; break;
        case SO_DOMAIN: v = AF_INET; break;
        case SO_KEEPALIVE: v = so->tcb && so->tcb->keepalive_on; break;
        case SO_ACCEPTCONN: v = so->tcb && so->tcb->state == TCPS_LISTEN; break;
        case SO_ERROR:
            v = so->so_error;
            so->so_error = 0;
            break;
        default:
            return tern_api_fail_why(&g, ENOPROTOOPT, "level %d option %d is not supported for this socket", level, name);
        }
    } else if (level == IPPROTO_TCP && so->kind == SOCK_KIND_TCP) {
        switch (name) {
        case TCP_NODELAY: v = so->tcb->nodelay; break;
        case TCP_KEEPIDLE: v = (int)so->tcb->keep_idle_s; break;
        case TCP_KEEPINTVL: v = (int)so->tcb->keep_intvl_s; break;
        case TCP_KEEPCNT: v = (int)so->tcb->keep_cnt; break;
        case TCP_USER_TIMEOUT: v = (int)so->tcb->user_timeout_ms; break;
        case TCP_MAXSEG:
            /* Linux: the MSS in use once connected, else the cap or the
             * default. */
            v = so->tcb->opened ? so->tcb->mss : (so->tcb->user_mss ? so->tcb->user_mss : 536);
            break;
        case TCP_CONGESTION: {
            const char *nm = TERN_TCP_CC(s, so->tcb)->name;
            size_t n = strlen(nm) + 1;
            if (n > *len)
                n = *len;
            memcpy(val, nm, n);
            *len = (socklen_t)n;
            return tern_api_return(&g, 0);
        }
        case TCP_INFO: {
            /* Linux's struct, truncated to the caller's room as Linux does. */
            struct tcp_info ti;
            tern_tcp_get_info(so->tcb, &ti);
            size_t n = *len < sizeof(ti) ? *len : sizeof(ti);
            memcpy(val, &ti, n);
            *len = (socklen_t)n;
            return tern_api_return(&g, 0);
        }
        default:
            return tern_api_fail_why(&g, ENOPROTOOPT, "level %d option %d is not supported for this socket", level, name);
        }
    } else if (level == IPPROTO_IP) {
        switch (name) {
        case IP_TTL: v = so->ttl; break;
        case IP_TOS: v = so->tos; break;
        case IP_BIND_ADDRESS_NO_PORT: v = so->bind_no_port; break;
        default:
            return tern_api_fail_why(&g, ENOPROTOOPT, "level %d option %d is not supported for this socket", level, name);
        }
    } else {
        return tern_api_fail_why(&g, ENOPROTOOPT, "level %d option %d is not supported for this socket", level, name);
    }
    size_t n = *len < sizeof(v) ? *len : sizeof(v);
    memcpy(val, &v, n);
    *len = (socklen_t)n;
    return tern_api_return(&g, 0);
}

int tern_shutdown(struct tern_stack *s, int fd, int how)
{
    struct tern_api_guard g = tern_api_enter(s);
    GET_SOCK(so, g, fd);
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
        return tern_api_fail_why(&g, EINVAL, "how %d is none of SHUT_RD, SHUT_WR, SHUT_RDWR", how);
    if (so->kind == SOCK_KIND_TCP) {
        int err = tern_tcp_shutdown(s, so, how != SHUT_WR, how != SHUT_RD);
        return err ? tern_api_fail(&g, err) : tern_api_return(&g, 0);
    }
    /* Linux sets the flags even on an unconnected datagram socket (the
     * usual way to wake its reader), then reports ENOTCONN. */
    if (how != SHUT_WR)
        so->shut_rd = true;
    if (how != SHUT_RD)
        so->shut_wr = true;
    if (!so->pcb.connected)
        return tern_api_fail(&g, ENOTCONN);
    return tern_api_return(&g, 0);
}

int tern_close(struct tern_stack *s, int fd)
{
    struct tern_api_guard g = tern_api_enter(s);
    GET_SOCK(so, g, fd);
    /* Datagram protocols keep nothing after close: the protocol lets go
     * at once, then the user; the reaper frees at the end of this call.
     * Threads blocked on the socket wake and find the handle gone. */
    tern_epoll_forget_socket(s, so);
    tern_sock_pollfd_close(so);
    if (so->kind == SOCK_KIND_TCP)
        tern_tcp_close(s, so); /* the connection may go on without the user */
    else if (so->kind != SOCK_KIND_EPOLL)
        pcb_unbind(s, so);
    tern_sock_release_user(s, so);
    /* SO_LINGER with a time, threaded and blocking: wait (the socket is
     * the protocol's now, but kept while we wait on it) until our FIN is
     * acknowledged or the time runs out; the connection goes on either
     * way, as on Linux. */
    if (so->kind == SOCK_KIND_TCP && so->linger_on && so->linger_s && may_block(s, so, 0)) {
        uint64_t deadline = tern_rt_deadline_ns((uint64_t)so->linger_s * TERN_NS_PER_SEC);
        while (so->life != SOCK_LIFE_DEAD && so->tcb &&
               (so->tcb->state == TCPS_FIN_WAIT_1 || so->tcb->state == TCPS_CLOSING ||
                so->tcb->state == TCPS_LAST_ACK)) {
            if (wait_on(&g, so, deadline))
                break;
        }
    }
    return tern_api_return(&g, 0);
}

int tern_fcntl(struct tern_stack *s, int fd, int cmd, int arg)
{
    struct tern_api_guard g = tern_api_enter(s);
    GET_SOCK(so, g, fd);
    switch (cmd) {
    case F_GETFL:
        return tern_api_return(&g, O_RDWR | (so->nonblock ? O_NONBLOCK : 0));
    case F_SETFL:
        so->nonblock = (arg & O_NONBLOCK) != 0;
        return tern_api_return(&g, 0);
    default:
        return tern_api_fail_why(&g, EINVAL, "command %d: only F_GETFL and F_SETFL", cmd);
    }
}

int tern_poll(struct tern_stack *s, struct pollfd *fds, nfds_t nfds, int timeout)
{
    struct tern_api_guard g = tern_api_enter(s);
    if (nfds && !fds)
        return tern_api_fail(&g, EFAULT);
    /* Threaded: wait up to `timeout` ms for one to be ready (an owned
     * stack cannot wait and reports what is ready now). */
    uint64_t deadline = s->rt ? tern_rt_deadline_ms(timeout) : 0;
    for (;;) {
        int ready = 0;
        size_t live = 0;
        for (nfds_t i = 0; i < nfds; i++) {
            fds[i].revents = 0;
            if (fds[i].fd < 0)
                continue;
            struct tern_socket *so = tern_sock_lookup(s, fds[i].fd);
            if (!so)
                fds[i].revents = POLLNVAL;
            else
                fds[i].revents = tern_sock_mask(so) & (fds[i].events | POLLERR | POLLHUP);
            if (fds[i].revents)
                ready++;
            else if (so)
                live++;
        }
        if (ready || !live || deadline == 0)
            return tern_api_return(&g, ready);
        struct tern_socket *one, **socks = live == 1 ? &one : calloc(live, sizeof(*socks));
        if (!socks)
            return tern_api_fail(&g, ENOMEM);
        size_t k = 0;
        for (nfds_t i = 0; i < nfds; i++) {
            struct tern_socket *so = fds[i].fd < 0 ? NULL : tern_sock_lookup(s, fds[i].fd);
            if (so)
                socks[k++] = so;
        }
        int err = tern_api_wait(&g, socks, k, deadline);
        if (socks != &one)
            free(socks);
        if (err == ETIMEDOUT || err == EAGAIN)
            deadline = 0; /* one last look, then report */
        else if (err)
            return tern_api_fail(&g, err);
    }
}
