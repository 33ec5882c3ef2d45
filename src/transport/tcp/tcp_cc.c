/* The congestion control tables, and what they share. */
#include "transport/tcp/tcp_cc.h"

#include <string.h>

#include <tern/stack.h>

#include "transport/tcp/tcp.h"

void tern_tcp_cc_setup(struct tern_tcp_cc_ops ops[TERN_TCP_CC_COUNT])
{
    tern_tcp_cc_cubic_ops(&ops[TERN_TCP_CC_CUBIC]);
    tern_tcp_cc_newreno_ops(&ops[TERN_TCP_CC_NEWRENO]);
}

int tern_tcp_cc_by_name(const char *name)
{
    if (strcmp(name, "cubic") == 0)
        return TERN_TCP_CC_CUBIC;
    /* Linux calls NewReno "reno". */
    if (strcmp(name, "reno") == 0 || strcmp(name, "newreno") == 0)
        return TERN_TCP_CC_NEWRENO;
    return -1;
}

uint32_t tern_tcp_cc_half_flight(const struct tern_tcpcb *tp)
{
    uint32_t flight = tp->snd_max - tp->snd_una;
    uint32_t floor = 2u * tp->mss;
    return flight / 2 > floor ? flight / 2 : floor;
}

uint32_t tern_tcp_cc_slow_start(struct tern_tcpcb *tp, uint32_t acked)
{
    /* RFC 3465 section 2.2: grow by the bytes acknowledged, at most L
     * segments per ACK, so a stretch ACK cannot burst. */
    uint32_t grow = acked < 2u * tp->mss ? acked : 2u * tp->mss;
    uint32_t room = tp->ssthresh - tp->cwnd;
    if (grow >= room) {
        tp->cwnd = tp->ssthresh;
        return acked > room ? acked - room : 0;
    }
    tp->cwnd += grow;
    return 0;
}
