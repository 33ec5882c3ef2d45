/* What the user's calls do to a TCP connection (RFC 9293 3.10.1-3.10.5,
 * "user calls"), with Linux's errno where RFC and POSIX leave a choice. */
#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>

#include "core/stack.h"
#include "transport/tcp/tcp.h"

int tern_tcp_connect(struct tern_stack *s, struct tern_socket *so)
{
    struct tern_tcpcb *tp = so->tcb;
    tern_tcp_prepare(s, tp);
    tern_tcp_set_state(s, tp, TCPS_SYN_SENT);
    tp->opened = true;
    tp->rtt_start_us = (uint32_t)(s->now / 1000);
    tern_tcp_output(s, tp); /* the SYN */
    return 0;
}

int tern_tcp_listen(struct tern_stack *s, struct tern_socket *so, int backlog)
{
    struct tern_tcpcb *tp = so->tcb;
    (void)s;
    if (tp->state != TCPS_CLOSED && tp->state != TCPS_LISTEN)
        return EINVAL;
    /* Linux clamps to somaxconn (4096) and treats <= 0 as... at least 1. */
    if (backlog < 1)
        backlog = 1;
    if (backlog > 4096)
        backlog = 4096;
    if (!tp->lq) {
        tp->lq = calloc(1, sizeof(*tp->lq));
        if (!tp->lq)
            return ENOMEM;
        tern_list_init(&tp->lq->req_q);
        tern_list_init(&tp->lq->accept_q);
    }
    tp->lq->backlog = (uint32_t)backlog;
    tern_tcp_set_state(s, tp, TCPS_LISTEN);
    return 0;
}

struct tern_socket *tern_tcp_accept(struct tern_stack *s, struct tern_socket *so)
{
    struct tern_tcpcb *ltp = so->tcb;
    if (ltp->state != TCPS_LISTEN) {
        errno = EINVAL;
        return NULL;
    }
    if (tern_list_empty(&ltp->lq->accept_q)) {
        errno = EAGAIN;
        return NULL;
    }
    struct tern_tcpcb *tp = tern_container_of(ltp->lq->accept_q.next, struct tern_tcpcb, child_node);
    struct tern_socket *child = tp->so;
    if (tern_sock_give_handle(s, child) < 0)
        return NULL; /* EMFILE: the child waits for a later accept */
    tern_tcp_unqueue_child(s, tp);
    return child;
}

long tern_tcp_send(struct tern_stack *s, struct tern_socket *so, const struct iovec *iov,
                   size_t iovcnt, size_t len)
{
    struct tern_tcpcb *tp = so->tcb;
    if (so->so_error) {
        int err = so->so_error;
        so->so_error = 0;
        return -err;
    }
    switch (tp->state) {
    case TCPS_ESTABLISHED:
    case TCPS_CLOSE_WAIT:
        break;
    case TCPS_SYN_SENT:
    case TCPS_SYN_RECEIVED:
        return -EAGAIN; /* not yet connected; a blocking stack would wait */
    case TCPS_CLOSED:
        tern_why(s, tp->opened ? "the connection is over (closed or reset)" : "never connected");
        return tp->opened ? -EPIPE : -ENOTCONN; /* after a reset or close: Linux's EPIPE */
    case TCPS_LISTEN:
        tern_why(s, "a listening socket sends nothing");
        return -ENOTCONN;
    default:
        tern_why(s, "this side has sent its FIN (state %s)", tern_tcp_state_name(tp->state));
        return -EPIPE; /* no SIGPIPE: a library sends no signals */
    }
    if (tp->fin_queued || so->shut_wr) {
        tern_why(s, "writing was shut down");
        return -EPIPE;
    }
    if (len == 0)
        return 0;
    uint32_t took = tern_ring_write_iov(&tp->snd, iov, iovcnt, len);
    if (took == 0)
        /* Room by the limit but no memory to grow into is not "full":
         * say so, or a non-blocking writer would spin on EAGAIN. */
        return tern_ring_space(&tp->snd) > 0 ? -ENOBUFS : -EAGAIN;
    tern_tcp_output(s, tp);
    return took;
}

/* Whether a receive window of `wnd` bytes past RCV.NXT is news enough
 * for an ACK of its own (RFC 9293 3.8.6.2.2): past the edge last told by
 * two segments or by half the buffer. */
static bool window_news(uint32_t wnd, uint32_t advertised, uint32_t mss, uint32_t limit)
{
    return wnd > advertised && (wnd - advertised >= 2u * mss || wnd - advertised >= limit / 2);
}

long tern_tcp_recv(struct tern_stack *s, struct tern_socket *so, const struct iovec *iov,
                   size_t iovcnt, size_t len, int flags)
{
    struct tern_tcpcb *tp = so->tcb;
    if (tp->state == TCPS_LISTEN)
        return -ENOTCONN;
    uint32_t have = tern_ring_len(&tp->rcv);
    if (have == 0) {
        /* After the peer's FIN a reader gets EOF, even if a reset came
         * later: its error (EPIPE) is the writer's (Linux's tcp_recvmsg
         * looks at SOCK_DONE before sk_err). */
        if (tp->fin_received)
            return 0;
        if (so->so_error) {
            int err = so->so_error;
            so->so_error = 0;
            return -err;
        }
        if (so->shut_rd)
            return 0;
        if (tp->state == TCPS_CLOSED)
            return tp->opened ? 0 : -ENOTCONN;
        return -EAGAIN;
    }
    if ((flags & MSG_WAITALL) && have < len && !tp->fin_received && tp->state != TCPS_CLOSED)
        return -EAGAIN; /* all or nothing in a stack that cannot wait */
    uint32_t before = tern_tcp_rcv_window(tp);
    uint32_t got = tern_ring_read_iov(&tp->rcv, iov, iovcnt, len, (flags & MSG_PEEK) != 0);
    tern_tcp_reclaim_later(s, tp); /* an idle connection holds no buffer */
    if (!(flags & MSG_PEEK))
        tern_tcp_rcvbuf_autotune(s, tp);
    /* Tell the peer when reading opened the window a lot (RFC 9293
     * 3.8.6.2.2: by an MSS or half the buffer) past what it was last
     * told; a buffer smaller than an MSS only ever opens by half itself.
     * When the window was worth telling before this read too, the read
     * did not open it: something else held the edge back (a SYN offers
     * 65535 bytes unscaled). If the peer can still send two segments
     * into what it was told, and a delayed ACK is due, that ACK (within
     * TERN_TCP_DELACK_NS) or a reply sooner carries the news: a request
     * and its response cost no extra segment. A peer held up by the old
     * edge is told at once. */
    uint32_t after = tern_tcp_rcv_window(tp);
    if (!(flags & MSG_PEEK) && after > before &&
        (tp->state == TCPS_ESTABLISHED || tp->state == TCPS_FIN_WAIT_1 ||
         tp->state == TCPS_FIN_WAIT_2)) {
        uint32_t advertised = tern_seq_gt(tp->rcv_adv, tp->rcv_nxt) ? tp->rcv_adv - tp->rcv_nxt : 0;
        uint32_t limit = tern_ring_limit(&tp->rcv);
        bool peer_goes_on = advertised >= 2u * tp->mss;
        if (window_news(after, advertised, tp->mss, limit) &&
            !(window_news(before, advertised, tp->mss, limit) && peer_goes_on &&
              tern_tcp_timer_on(tp, TERN_TCPT_DELACK))) {
            tp->ack_now = true;
            tern_tcp_output(s, tp);
        }
    }
    return got;
}

int tern_tcp_shutdown(struct tern_stack *s, struct tern_socket *so, bool rd, bool wr)
{
    struct tern_tcpcb *tp = so->tcb;
    if (tp->state == TCPS_LISTEN) {
        /* Linux: shutting a listener's reading down stops it; SHUT_WR
         * alone does nothing and succeeds. */
        if (rd)
            tern_tcp_close(s, so);
        return 0;
    }
    if (tp->state == TCPS_SYN_SENT) {
        /* Linux aborts the attempt (tcp_disconnect), and a connect
         * waiting on it fails with ECONNRESET. */
        tern_tcp_drop(s, tp, ECONNRESET);
        return 0;
    }
    if (tp->state == TCPS_CLOSED)
        return ENOTCONN;
    if (rd)
        so->shut_rd = true;
    if (wr && !tp->fin_queued) {
        so->shut_wr = true;
        tp->fin_queued = true;
        /* In SYN_RECEIVED the FIN waits for ESTABLISHED (RFC 9293
         * 3.10.4): it cannot follow a SYN not yet acknowledged. */
        if (tp->state == TCPS_ESTABLISHED)
            tern_tcp_set_state(s, tp, TCPS_FIN_WAIT_1);
        else if (tp->state == TCPS_CLOSE_WAIT)
            tern_tcp_set_state(s, tp, TCPS_LAST_ACK);
        tern_tcp_output(s, tp);
    }
    return 0;
}

void tern_tcp_close(struct tern_stack *s, struct tern_socket *so)
{
    struct tern_tcpcb *tp = so->tcb;
    switch (tp->state) {
    case TCPS_LISTEN:
        /* Every connection not yet accepted moves to another member of
         * the reuseport group, or is reset and let go. */
        tern_tcp_listener_close(s, tp);
        tern_tcp_drop(s, tp, 0);
        return;
    case TCPS_CLOSED:
        tern_tcp_drop(s, tp, 0); /* leaves the table if it was bound */
        return;
    case TCPS_SYN_SENT:
        tern_tcp_drop(s, tp, 0);
        return;
    default:
        break;
    }
    /* Unread data or SO_LINGER 0: abort with a RST (RFC 9293 3.10.4,
     * RFC 2525 2.17), as Linux does. */
    if (tern_ring_len(&tp->rcv) > 0 || tp->linger_zero) {
        tern_tcp_send_ctl(s, tp, TERN_TCP_RST | TERN_TCP_ACK, tp->snd_max);
        tern_tcp_drop(s, tp, 0);
        return;
    }
    if (!tp->fin_queued)
        tern_tcp_shutdown(s, so, false, true);
    if (tp->state == TCPS_FIN_WAIT_2 && !tern_tcp_timer_on(tp, TERN_TCPT_FINWAIT2)) {
        tern_tcp_timer_set(s, tp, TERN_TCPT_FINWAIT2, s->now + TERN_TCP_FIN_TIMEOUT_NS);
    }
}

void tern_tcp_get_info(const struct tern_tcpcb *tp, struct tcp_info *ti)
{
    /* Linux's numbering of states in tcpi_state. */
    static const uint8_t linux_state[] = {
        [TCPS_CLOSED] = 7,     [TCPS_LISTEN] = 10,     [TCPS_SYN_SENT] = 2,
        [TCPS_SYN_RECEIVED] = 3, [TCPS_ESTABLISHED] = 1, [TCPS_FIN_WAIT_1] = 4,
        [TCPS_FIN_WAIT_2] = 5, [TCPS_CLOSE_WAIT] = 8,  [TCPS_CLOSING] = 11,
        [TCPS_LAST_ACK] = 9,   [TCPS_TIME_WAIT] = 6,
    };
    memset(ti, 0, sizeof(*ti));
    ti->tcpi_state = linux_state[tp->state];
    /* Linux's TCP_CA_Open 0, Disorder 1, Recovery 3, Loss 4. */
    ti->tcpi_ca_state = tp->in_recovery ? 3 : tp->retransmits ? 4 : tp->dupacks ? 1 : 0;
    ti->tcpi_retransmits = tp->retransmits;
    ti->tcpi_backoff = tp->backoff;
    ti->tcpi_options = (tp->ts_ok ? 1 : 0) | (tp->sack_ok ? 2 : 0) | (tp->wscale_ok ? 4 : 0);
    ti->tcpi_snd_wscale = tp->snd_wscale & 0xf;
    ti->tcpi_rcv_wscale = tp->rcv_wscale & 0xf;
    ti->tcpi_rto = (uint32_t)(tp->rto / 1000);
    ti->tcpi_snd_mss = tp->mss;
    ti->tcpi_rcv_mss = tp->our_mss;
    ti->tcpi_advmss = tp->our_mss;
    uint32_t mss = tp->mss ? tp->mss : 1;
    ti->tcpi_unacked = (tp->snd_max - tp->snd_una + mss - 1) / mss;
    ti->tcpi_rtt = (uint32_t)(tp->srtt / 1000);
    ti->tcpi_rttvar = (uint32_t)(tp->rttvar / 1000);
    ti->tcpi_snd_ssthresh = tp->ssthresh == UINT32_MAX ? 0x7fffffff : tp->ssthresh / mss;
    ti->tcpi_snd_cwnd = tp->cwnd / mss;
    ti->tcpi_total_retrans = (uint32_t)tp->total_retransmits;
    ti->tcpi_sacked = (tern_tcp_sack_bytes(&tp->sackb) + mss - 1) / mss;
    ti->tcpi_reordering = tp->reordering;
    ti->tcpi_rcv_space = tern_tcp_rcv_window(tp);
}

short tern_tcp_poll(struct tern_socket *so)
{
    /* Linux's tcp_poll: reading is shut by shutdown(SHUT_RD) or the
     * peer's FIN, writing by shutdown(SHUT_WR) or close's FIN; a socket
     * shut both ways, or reset, hangs up. A socket shut for writing
     * reports POLLOUT, so that a writer wakes and meets EPIPE. */
    struct tern_tcpcb *tp = so->tcb;
    if (tp->state == TCPS_LISTEN)
        return tern_list_empty(&tp->lq->accept_q) ? 0 : (POLLIN | POLLRDNORM);
    bool dead = tp->state == TCPS_CLOSED && tp->opened;
    bool rd_shut = so->shut_rd || tp->fin_received || dead;
    bool wr_shut = so->shut_wr || tp->fin_queued || dead;
    bool handshake = tp->state == TCPS_SYN_SENT || tp->state == TCPS_SYN_RECEIVED;
    short r = 0;
    if ((rd_shut && wr_shut) || tp->state == TCPS_CLOSED)
        r |= POLLHUP; /* a socket never connected too, as Linux */
    if (rd_shut)
        r |= POLLIN | POLLRDNORM | POLLRDHUP;
    if (!handshake) {
        if (tern_ring_len(&tp->rcv) > 0)
            r |= POLLIN | POLLRDNORM;
        if (wr_shut || tern_ring_space(&tp->snd) > 0)
            r |= POLLOUT | POLLWRNORM;
    }
    if (so->so_error)
        r |= POLLERR;
    return r;
}
