/* A connection's recent history: see tcp_trace.h. */
#include "transport/tcp/tcp_trace.h"

#include "core/stack.h"
#include "obs/probe.h"
#include "transport/tcp/tcp.h"

const char *tern_tcp_ev_name(unsigned ev)
{
    switch (ev) {
    case TERN_TCPE_RX: return "rx";
    case TERN_TCPE_TX: return "tx";
    case TERN_TCPE_STATE: return "state";
    case TERN_TCPE_RETRANSMIT: return "retransmit";
    case TERN_TCPE_TIMER: return "timer";
    case TERN_TCPE_DROP: return "drop";
    }
    return "?";
}

static void flags_str(uint8_t f, char *out)
{
    static const char names[] = "FSRPAUEC";
    int n = 0;
    for (int i = 0; i < 8; i++)
        if (f & (1u << i))
            out[n++] = names[i];
    if (!n)
        out[n++] = '.';
    out[n] = 0;
}

void tern_tcp_events_print(const struct tern_stack *s, const struct tern_tcpcb *tp, FILE *f,
                           const char *indent)
{
    uint32_t cap = tp->events_cap;
    uint32_t n = tp->events_next < cap ? tp->events_next : cap;
    uint32_t now_us = (uint32_t)(s->now / 1000);
    for (uint32_t i = 0; i < n; i++) {
        const struct tern_tcp_event *e = &tp->events[(tp->events_next - n + i) % cap];
        char fl[9];
        flags_str(e->flags, fl);
        uint32_t ago = now_us - e->t_us;
        fprintf(f, "%s-%u.%06us %-10s %-12s", indent, ago / 1000000, ago % 1000000,
                tern_tcp_ev_name(e->ev), tern_tcp_state_name(e->state));
        switch (e->ev) {
        case TERN_TCPE_RX:
        case TERN_TCPE_TX:
            fprintf(f, " %-6s seq %u ack %u wnd %u len %u\n", fl, e->seq, e->ack, e->aux, e->len);
            break;
        case TERN_TCPE_STATE:
            fprintf(f, " from %s\n", tern_tcp_state_name(e->aux));
            break;
        case TERN_TCPE_RETRANSMIT:
            fprintf(f, " %s seq %u len %u\n",
                    e->aux == 0 ? "timeout" : e->aux == 1 ? "fast" : e->aux == 2 ? "sack" : "probe", e->seq, e->len);
            break;
        case TERN_TCPE_TIMER:
            fprintf(f, " %s\n", tern_tcp_timer_name(e->aux));
            break;
        case TERN_TCPE_DROP:
            fprintf(f, " %s seq %u ack %u len %u\n", tern_counter_name(e->aux), e->seq, e->ack,
                    e->len);
            break;
        default:
            fputc('\n', f);
        }
    }
}
