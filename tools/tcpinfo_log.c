/* See tcpinfo_log.h. */
#include "tcpinfo_log.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What one row records; a new row is written when it differs. */
struct row {
    uint8_t state, ca_state;
    uint32_t cwnd, ssthresh, mss, srtt, rttvar, rto, unacked, sacked, retransmits,
        total_retrans;
};

struct tcpinfo_log {
    FILE *f;
    bool have_last, failed;
    struct row last;
    unsigned long rows;
};

struct tcpinfo_log *tcpinfo_log_open(const char *path)
{
    struct tcpinfo_log *log = calloc(1, sizeof(*log));
    if (!log)
        return NULL;
    log->f = fopen(path, "w");
    if (!log->f) {
        free(log);
        return NULL;
    }
    if (fputs("time_ns,state,ca_state,cwnd_bytes,ssthresh_bytes,mss,srtt_us,rttvar_us,"
              "rto_us,unacked,sacked,retransmits,total_retrans\n",
              log->f) < 0) {
        int e = errno;
        fclose(log->f);
        free(log);
        errno = e;
        return NULL;
    }
    return log;
}

static bool row_equal(const struct row *a, const struct row *b)
{
    return a->state == b->state && a->ca_state == b->ca_state && a->cwnd == b->cwnd &&
           a->ssthresh == b->ssthresh && a->mss == b->mss && a->srtt == b->srtt &&
           a->rttvar == b->rttvar && a->rto == b->rto && a->unacked == b->unacked &&
           a->sacked == b->sacked && a->retransmits == b->retransmits &&
           a->total_retrans == b->total_retrans;
}

int tcpinfo_log_sample(struct tcpinfo_log *log, struct tern_stack *s, int fd, tern_time_t now)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    if (tern_getsockopt(s, fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return -1;
    struct row r = {
        .state = ti.tcpi_state,
        .ca_state = ti.tcpi_ca_state,
        .cwnd = ti.tcpi_snd_cwnd,
        .ssthresh = ti.tcpi_snd_ssthresh,
        .mss = ti.tcpi_snd_mss,
        .srtt = ti.tcpi_rtt,
        .rttvar = ti.tcpi_rttvar,
        .rto = ti.tcpi_rto,
        .unacked = ti.tcpi_unacked,
        .sacked = ti.tcpi_sacked,
        .retransmits = ti.tcpi_retransmits,
        .total_retrans = ti.tcpi_total_retrans,
    };
    if (log->have_last && row_equal(&r, &log->last))
        return 0;
    log->last = r;
    log->have_last = true;
    /* Linux (and Tern) report an unset ssthresh as 0x7fffffff segments. */
    char ssthresh[24] = "";
    if (r.ssthresh < 0x7fffffffu)
        snprintf(ssthresh, sizeof(ssthresh), "%llu",
                 (unsigned long long)r.ssthresh * (unsigned long long)r.mss);
    if (fprintf(log->f, "%llu,%u,%u,%llu,%s,%u,%u,%u,%u,%u,%u,%u,%u\n",
                (unsigned long long)now, r.state, r.ca_state,
                (unsigned long long)r.cwnd * (unsigned long long)r.mss, ssthresh, r.mss, r.srtt,
                r.rttvar, r.rto, r.unacked, r.sacked, r.retransmits, r.total_retrans) < 0) {
        log->failed = true;
        return -1;
    }
    log->rows++;
    return 1;
}

unsigned long tcpinfo_log_rows(const struct tcpinfo_log *log) { return log->rows; }

int tcpinfo_log_close(struct tcpinfo_log *log)
{
    int rc = 0;
    if (fclose(log->f) != 0) {
        rc = -1;
    } else if (log->failed) {
        errno = EIO;
        rc = -1;
    }
    free(log);
    return rc;
}
